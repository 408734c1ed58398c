//! Skipping rows that can only be a later step of an ordered correlation whose first step is
//! not live. A `temporal_ordered` correlation `[F, D, …]` fires only when its steps occur in
//! order inside the window, so a row matching `D` alone can take part only if `F` fired for
//! the row's group within the timespan before it (or fires later in the same second: rsigma
//! orders steps by whole seconds). Rows the gate marks [`Admit::Sequel`] are let through only
//! then; the rest are counted as skipped. The built-in case: every approved push matches
//! `mfa_push_accepted`, which only matters after push fatigue (`mfa_push_bombing`) fired for
//! that user, so skipping the others removes most of the engine's work without changing a
//! finding.
//!
//! The analysis is conservative. A correlation qualifies only when it is `temporal_ordered`
//! with a sliding window, no aliases, a condition that fails without the ordered sequence,
//! and a first step that is a correlation with the same `group-by` (its results carry the
//! group). A detection rule is sequel-only when it reports nothing on its own and every
//! correlation referencing it qualifies with the rule at a later step.
//!
//! [`Admit::Sequel`]: super::gate::Admit::Sequel

use std::collections::{HashMap, HashSet};

use rsigma_eval::{EvaluationResult, Event, GroupByField, GroupKey};
use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, SigmaCollection,
    SigmaRule, WindowMode,
};

/// Result key of a rule or correlation: its id, else its title (as in findings).
pub fn result_key(id: &Option<String>, title: &str) -> String {
    id.clone().unwrap_or_else(|| title.into())
}

/// A qualifying ordered correlation and where its first step is live.
#[derive(Debug)]
struct Ordered {
    /// Result key of the first step (a correlation).
    first: String,
    group_by: Vec<GroupByField>,
    timespan_s: i64,
    /// The first step fires for the group of the row that triggers it (no aliases, group-by
    /// on event columns only), so only rows of the same group can make it fire.
    same_group_fires: bool,
    /// Group → event-time second the first step last fired.
    live: HashMap<GroupKey, i64>,
}

/// The ordered correlations whose later steps may be skipped, and their live first steps.
#[derive(Debug, Default)]
pub struct Sequels {
    ordered: Vec<Ordered>,
    /// No first step depends, through correlations, on a sequel-only rule: only rows that may
    /// match a firm rule can make a first step fire.
    firm_triggers: bool,
    skipped: u64,
}

/// Whether a threshold holds for an aggregated value of 0.
fn holds_at_zero(predicates: &[(ConditionOperator, u64)]) -> bool {
    predicates.iter().all(|&(op, v)| match op {
        ConditionOperator::Lt => 0 < v,
        ConditionOperator::Lte => true,
        ConditionOperator::Gt => false,
        ConditionOperator::Gte | ConditionOperator::Eq => v == 0,
        ConditionOperator::Neq => v != 0,
    })
}

/// The first step of `c` when `c` qualifies (see the module comment).
fn qualifying_first<'a>(
    c: &CorrelationRule,
    correlations: &'a [CorrelationRule],
) -> Option<&'a CorrelationRule> {
    let condition_needs_order = match &c.condition {
        CorrelationCondition::Threshold { predicates, .. } => !holds_at_zero(predicates),
        CorrelationCondition::Extended(_) => true,
    };
    if c.correlation_type != CorrelationType::TemporalOrdered
        || c.window != WindowMode::Sliding
        || !c.aliases.is_empty()
        || c.group_by.is_empty()
        || !condition_needs_order
    {
        return None;
    }
    let first = c.rules.first()?;
    correlations
        .iter()
        .find(|f| f.id.as_ref() == Some(first) || f.name.as_ref() == Some(first))
        .filter(|f| f.group_by == c.group_by)
}

/// Whether `c` depends, through the correlations it references, on one of `rules`.
fn depends_on(c: &CorrelationRule, collection: &SigmaCollection, rules: &HashSet<String>) -> bool {
    let mut pending = vec![c];
    let mut seen = HashSet::new();
    while let Some(c) = pending.pop() {
        if !seen.insert(result_key(&c.id, &c.title)) {
            continue;
        }
        for r in &c.rules {
            let named = |id: &Option<String>, name: &Option<String>| {
                id.as_ref() == Some(r) || name.as_ref() == Some(r)
            };
            if collection
                .rules
                .iter()
                .any(|d| named(&d.id, &d.name) && rules.contains(&result_key(&d.id, &d.title)))
            {
                return true;
            }
            pending.extend(
                collection
                    .correlations
                    .iter()
                    .filter(|x| named(&x.id, &x.name)),
            );
        }
    }
    false
}

impl Sequels {
    /// Analyse the canonical `collection`. `reports` tells whether a detection rule (by result
    /// key) reports its own matches; such rules are never sequel-only. Returns the state and
    /// a predicate for sequel-only detection rules (for the gate).
    pub fn of(
        collection: &SigmaCollection,
        reports: impl Fn(&str) -> bool,
    ) -> (Sequels, HashSet<String>) {
        let qualifying: Vec<(&CorrelationRule, &CorrelationRule)> = collection
            .correlations
            .iter()
            .filter_map(|c| Some((c, qualifying_first(c, &collection.correlations)?)))
            .collect();
        let refers = |c: &CorrelationRule, r: &SigmaRule| -> Option<usize> {
            c.rules
                .iter()
                .position(|x| r.id.as_ref() == Some(x) || r.name.as_ref() == Some(x))
        };
        let sequel_only: HashSet<String> = collection
            .rules
            .iter()
            .filter(|r| !reports(&result_key(&r.id, &r.title)))
            .filter(|r| {
                let mut referenced = false;
                for c in &collection.correlations {
                    let Some(step) = refers(c, r) else { continue };
                    referenced = true;
                    let later_step_of_qualifying =
                        step > 0 && qualifying.iter().any(|(q, _)| std::ptr::eq(*q, c));
                    if !later_step_of_qualifying {
                        return false;
                    }
                }
                referenced
            })
            .map(|r| result_key(&r.id, &r.title))
            .collect();
        let firm_triggers = qualifying
            .iter()
            .all(|(_, first)| !depends_on(first, collection, &sequel_only));
        let ordered = qualifying
            .into_iter()
            .filter(|(c, _)| {
                collection.rules.iter().any(|r| {
                    sequel_only.contains(&result_key(&r.id, &r.title)) && refers(c, r).is_some()
                })
            })
            .map(|(c, first)| Ordered {
                first: result_key(&first.id, &first.title),
                group_by: c
                    .group_by
                    .iter()
                    .cloned()
                    .map(GroupByField::Direct)
                    .collect(),
                timespan_s: c.timespan.seconds as i64,
                same_group_fires: first.aliases.is_empty()
                    && !c
                        .group_by
                        .iter()
                        .any(|f| super::row::DERIVED_FIELDS.contains(&f.as_str())),
                live: HashMap::new(),
            })
            .collect();
        (
            Sequels {
                ordered,
                firm_triggers,
                skipped: 0,
            },
            sequel_only,
        )
    }

    /// Where each ordered correlation's first step is live, for a snapshot.
    pub(crate) fn save(&self) -> Vec<Vec<(GroupKey, i64)>> {
        self.ordered
            .iter()
            .map(|o| o.live.iter().map(|(k, t)| (k.clone(), *t)).collect())
            .collect()
    }

    /// Restore [`Sequels::save`]'s output, taken with the same rules.
    pub(crate) fn restore(&mut self, saved: Vec<Vec<(GroupKey, i64)>>) {
        for (o, live) in self.ordered.iter_mut().zip(saved) {
            o.live = live.into_iter().collect();
        }
    }

    /// Whether some ordered correlation's first step is live for `event`'s group at `secs`.
    pub fn live_for(&self, event: &impl Event, secs: i64) -> bool {
        self.ordered.iter().any(|o| {
            !o.live.is_empty()
                && o.live
                    .get(&GroupKey::extract(event, &o.group_by, &[]))
                    .is_some_and(|&fired| secs - fired <= o.timespan_s)
        })
    }

    /// Whether only rows that may match a firm rule can make a first step fire.
    pub fn firm_triggers(&self) -> bool {
        self.firm_triggers
    }

    /// Whether `later` may make a first step fire for the group of `row` (the derived facts of
    /// `later` are not known yet, so group-by fields must be event columns).
    pub fn may_fire_for(&self, row: &impl Event, later: &impl Event) -> bool {
        self.ordered.iter().any(|o| {
            !o.same_group_fires
                || GroupKey::extract(row, &o.group_by, &[])
                    == GroupKey::extract(later, &o.group_by, &[])
        })
    }

    /// Record first-step firings among an event's `results` (at `secs`).
    pub fn observe(&mut self, results: &[EvaluationResult], secs: i64) {
        if self.ordered.is_empty() {
            return;
        }
        for r in results {
            let Some(body) = r.as_correlation() else {
                continue;
            };
            let key = r.header.rule_id.as_ref().unwrap_or(&r.header.rule_title);
            for o in self.ordered.iter_mut().filter(|o| &o.first == key) {
                let group = GroupKey::from_pairs(&body.group_key, &o.group_by);
                o.live.insert(group, secs);
            }
        }
    }

    /// Count a skipped row.
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Rows skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Live first steps kept (bounded by the groups active within each timespan).
    pub fn live_entries(&self) -> usize {
        self.ordered.iter().map(|o| o.live.len()).sum()
    }

    /// Forget first steps older than their correlation's timespan at `secs`.
    pub fn evict_expired(&mut self, secs: i64) {
        for o in &mut self.ordered {
            let span = o.timespan_s;
            o.live.retain(|_, fired| secs - *fired <= span);
        }
    }

    /// Ordered correlations whose later steps are skipped while their first step is not live.
    pub fn correlations(&self) -> usize {
        self.ordered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DetectConfig, Detector, Finding, RuleSet};
    use mfascope_core::event::{
        Action, Event as Canonical, EventBatchBuilder, Factor, Outcome, Source,
    };
    use mfascope_generate::{GenerateOptions, simulate};

    /// Findings of the built-in rules over `events`, with and without skipping, and the rows
    /// skipped.
    fn both_ways(events: &[Canonical]) -> (Vec<Finding>, Vec<Finding>, u64) {
        let rules = RuleSet::builtin();
        let mut out = Vec::new();
        let mut skipped = 0;
        for skip_sequels in [true, false] {
            let config = DetectConfig {
                skip_sequels,
                ..DetectConfig::default()
            };
            let mut d = Detector::new(&rules, config, false).unwrap();
            for chunk in events.chunks(8192) {
                let mut b = EventBatchBuilder::with_capacity(chunk.len());
                chunk.iter().for_each(|e| b.append(e));
                d.process_sorted(&crate::order::sort_by_time(&b.finish_canonical()));
            }
            if skip_sequels {
                skipped = d.counters().sequels_skipped;
            } else {
                assert_eq!(d.counters().sequels_skipped, 0);
            }
            out.push(d.take_findings());
        }
        let without = out.pop().unwrap();
        (out.pop().unwrap(), without, skipped)
    }

    fn push(id: String, t_s: i64, user: &'static str, outcome: Outcome) -> Canonical<'static> {
        Canonical::new(
            Source::Canonical,
            id,
            t_s * 1000,
            user,
            "t",
            (Action::MfaVerify, Factor::Push, outcome),
        )
    }

    #[test]
    fn the_builtin_push_approval_rule_is_the_one_sequel() {
        let rules = RuleSet::builtin();
        let collection = rules.collection(true);
        let only = crate::correlation_only(&rules);
        let (sequels, sequel_only) = Sequels::of(&collection, |k| !only.contains(k));
        let accepted = collection
            .rules
            .iter()
            .find(|r| r.name.as_deref() == Some("mfa_push_accepted"))
            .unwrap();
        assert_eq!(
            sequel_only,
            HashSet::from([result_key(&accepted.id, &accepted.title)])
        );
        assert_eq!(sequels.correlations(), 1);
        assert!(sequels.firm_triggers());
        // A rule that reports on its own is never skipped.
        let (none, empty) = Sequels::of(&collection, |_| true);
        assert!(empty.is_empty());
        assert_eq!(none.correlations(), 0);
    }

    #[test]
    fn only_ordered_sliding_correlations_on_a_correlation_qualify() {
        let doc = |kind: &str, extra: &str| {
            format!(
                "title: a\nname: a\nlogsource: {{product: mfascope}}\ndetection: {{s: {{action: bypass}}, condition: s}}\n---\n\
                 title: b\nname: b\nlogsource: {{product: mfascope}}\ndetection: {{s: {{action: enroll_complete}}, condition: s}}\n---\n\
                 title: f\nname: f\ncorrelation: {{type: event_count, rules: [a], group-by: [user], timespan: 10m, condition: {{gte: 2}}}}\n---\n\
                 title: c\nname: c\ncorrelation: {{type: {kind}, rules: [f, b], group-by: [user], timespan: 10m{extra}}}\n"
            )
        };
        let sequel_rules = |yaml: &str| {
            let c = rsigma_parser::parse_sigma_yaml(yaml).unwrap();
            Sequels::of(&c, |_| false).1.len()
        };
        assert_eq!(sequel_rules(&doc("temporal_ordered", "")), 1);
        assert_eq!(sequel_rules(&doc("temporal", "")), 0);
        assert_eq!(
            sequel_rules(&doc("temporal_ordered", ", condition: {lte: 5}")),
            0
        );
        assert_eq!(
            sequel_rules(&doc("temporal_ordered", ", window: tumbling")),
            0
        );
    }

    #[test]
    fn skipping_sequels_fires_the_same_findings() {
        let mut events = simulate(&GenerateOptions {
            events: 200_000,
            days: 2.0,
            attacks: true,
            ..GenerateOptions::default()
        })
        .events;
        let end = events.iter().map(|e| e.time).max().unwrap() / 1000 + 3600;
        // Five denials, then an approval in the same second as the fifth denial but sorted
        // before it (ids order rows within a second): rsigma orders by whole seconds, so this
        // is push fatigue accepted, and the approval must not be skipped.
        for k in 0..5 {
            events.push(push(format!("z{k}"), end + k * 30, "edge", Outcome::Denied));
        }
        events.push(push("a".into(), end + 120, "edge", Outcome::Success));
        // An approval before the denials is not.
        events.push(push("b".into(), end + 3600, "early", Outcome::Success));
        for k in 0..5 {
            events.push(push(
                format!("c{k}"),
                end + 3601 + k,
                "early",
                Outcome::Denied,
            ));
        }
        // A legitimate approval, then push fatigue and an approval within ten minutes of the
        // first: the same finding, but only the approval after the fatigue is evidence.
        events.push(push("l0".into(), end + 7200, "legit", Outcome::Success));
        for k in 1..=5 {
            events.push(push(
                format!("l{k}"),
                end + 7200 + k * 60,
                "legit",
                Outcome::Denied,
            ));
        }
        events.push(push("l6".into(), end + 7600, "legit", Outcome::Success));
        let (with, without, skipped) = both_ways(&events);
        assert!(skipped > 10_000, "{skipped}");
        assert_eq!(with.len(), without.len());
        for (w, wo) in with.iter().zip(&without) {
            if w.user.as_deref() == Some("legit")
                && w.rule_name.as_deref() == Some("mfa_push_fatigue_accepted")
            {
                assert_eq!((&w.rule_id, w.last_time), (&wo.rule_id, wo.last_time));
                assert_eq!(
                    (&w.evidence[..], &wo.evidence[..]),
                    (
                        &["l6".to_string()][..],
                        &["l0".to_string(), "l6".to_string()][..]
                    )
                );
            } else {
                assert_eq!(w, wo);
            }
        }
        let accepted = |user: &str| {
            with.iter().any(|f| {
                f.rule_name.as_deref() == Some("mfa_push_fatigue_accepted")
                    && f.user.as_deref() == Some(user)
            })
        };
        assert!(accepted("edge"));
        assert!(!accepted("early"));
        assert!(accepted("legit"));
    }
}
