//! Attack traffic for attack-aware SLOs: which events belong to a campaign of the chosen
//! correlation rules (default: push fatigue, OTP brute force, MFA spray), so the SLI counters can
//! take them out of the error budget. An event is attack traffic when it matches one of the
//! correlation's detection rules and lies in a window of the rule's `timespan` in which its group
//! (`group-by`) reaches the rule's threshold — every such event, not only the ten a finding
//! references, and for as long as the campaign goes on (findings are suppressed after the first).
//!
//! Owns the base-rule evaluation (rsigma) and the per-group windows. The result depends only on
//! the events, not on their arrival order (within the out-of-order allowance), so a live ingest
//! and a replay of the stored table mark the same events. Never emits findings (the
//! [`crate::Detector`] does) and never counts SLIs (the aggregator does).

use std::collections::hash_map;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rsigma_eval::{Event as _, EventValue};
use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationType, WindowMode};

use mfascope_core::attack::{AttackEvent, AttackFilter};
use mfascope_core::event::{Action, CanonicalBatch, Factor, Outcome, Source, col};

use super::gate::Gate;
use super::row::{BatchView, Derived, Row};
use super::rules::{RuleSet, fold_lower_case_fields};
use super::sequel::result_key;
use super::{DEFAULT_RULE_STATE, DetectError};

/// Correlation rules whose campaigns are attack traffic unless configured otherwise.
pub const DEFAULT_ATTACK_RULES: &[&str] = &["mfa_push_bombing", "mfa_otp_brute_force", "mfa_spray"];

/// Every canonical column a rule may read (keyword searches read them all).
const ALL_COLUMNS: &[&str] = &[
    col::EVENT_ID,
    col::TIME,
    col::SOURCE,
    col::TENANT,
    col::APP,
    col::USER,
    col::ACTOR,
    col::SESSION_ID,
    col::TRANSACTION_ID,
    col::ACTION,
    col::FACTOR,
    col::OUTCOME,
    col::REASON,
    col::LATENCY_MS,
    col::SRC_IP,
    col::COUNTRY,
    col::REGION,
    col::CITY,
    col::ASN,
    col::USER_AGENT,
    col::DEVICE_ID,
    col::PHISHING_RESISTANT,
    col::PRIVILEGED,
    col::VENDOR_EVENT_TYPE,
    col::RAW,
];

/// Columns every mark needs: identity, time, and what the SLI counters take out again.
const MARK_COLUMNS: &[&str] = &[
    col::EVENT_ID,
    col::TIME,
    col::SOURCE,
    col::ACTION,
    col::FACTOR,
    col::OUTCOME,
    col::REASON,
    col::LATENCY_MS,
];

/// Add the fields `d` tests to `out`; false when it searches values without a field (keywords,
/// array matches), which can read any column.
fn detection_fields(d: &rsigma_parser::Detection, out: &mut Vec<String>) -> bool {
    use rsigma_parser::Detection;
    match d {
        Detection::AllOf(items) => items.iter().all(|it| match &it.field.name {
            Some(name) => {
                out.push(name.clone());
                true
            }
            None => false,
        }),
        Detection::AnyOf(subs) => subs.iter().all(|d| detection_fields(d, out)),
        _ => false,
    }
}

/// The columns the marker reads for `rules` (base rules) and the campaigns' group and
/// distinct fields: the few they name, or every column when a rule searches keywords.
fn columns_for(rules: &[rsigma_parser::SigmaRule], campaigns: &[Campaign]) -> Vec<&'static str> {
    let mut fields: Vec<String> = Vec::new();
    for c in campaigns {
        fields.extend(c.group_by.iter().cloned());
        fields.extend(c.distinct.iter().cloned());
    }
    let named = rules.iter().all(|r| {
        r.detection
            .named
            .values()
            .all(|d| detection_fields(d, &mut fields))
    });
    if !named {
        return ALL_COLUMNS.to_vec();
    }
    let mut cols = MARK_COLUMNS.to_vec();
    for c in ALL_COLUMNS {
        if !cols.contains(c) && fields.iter().any(|f| f == c) {
            cols.push(c);
        }
    }
    cols
}

/// Marker settings.
#[derive(Clone, Copy, Debug)]
pub struct AttackConfig {
    /// How far (event time) events may arrive out of order and still join their campaign.
    pub allowance_ms: i64,
    /// Groups (rule × group key) followed at most; the stalest are dropped first (counted).
    pub max_groups: usize,
}

impl Default for AttackConfig {
    fn default() -> Self {
        AttackConfig {
            allowance_ms: 5 * 60_000,
            max_groups: DEFAULT_RULE_STATE,
        }
    }
}

/// One chosen correlation rule, reduced to what marking needs.
#[derive(Debug)]
struct Campaign {
    name: Arc<str>,
    group_by: Vec<String>,
    /// `value_count`: the field whose distinct values are counted.
    distinct: Option<String>,
    window_ms: i64,
    /// Smallest count (or distinct count) that makes a window a campaign.
    threshold: usize,
}

/// One matching event in a group's window, kept compact: a group holds every matching event of
/// its span (most never marked), so the rule, group key and span that a mark reports are the
/// group's, not copied into each entry.
#[derive(Debug)]
struct Entry {
    time: i64,
    event_id: Box<str>,
    /// The `value_count` field's value.
    value: Option<Box<str>>,
    app: Option<Box<str>>,
    reason: Option<Box<str>>,
    latency_ms: Option<u32>,
    source: Source,
    action: Action,
    factor: Factor,
    outcome: Outcome,
    marked: bool,
}

impl Entry {
    /// The event as a mark of campaign `c`'s group `group` reports it.
    fn event(&self, c: &Campaign, group: &str) -> AttackEvent {
        AttackEvent {
            time_ms: self.time,
            source: self.source,
            event_id: self.event_id.to_string(),
            action: self.action,
            factor: self.factor,
            app: self.app.as_deref().map(str::to_string),
            outcome: self.outcome,
            reason: self.reason.as_deref().map(str::to_string),
            latency_ms: self.latency_ms,
            rule: c.name.clone(),
            group: group.to_string(),
            window_ms: c.window_ms,
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    /// In `(time, event_id)` order.
    entries: Vec<Entry>,
    /// Batch that last added to the group (groups idle for a whole batch may be dropped).
    touched: u64,
}

/// Counters of the marker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttackCounters {
    /// Events that matched a chosen rule's detection rules.
    pub candidates: u64,
    /// Events recognised as attack traffic.
    pub marked: u64,
    /// Groups dropped at `max_groups` (the stalest first).
    pub groups_evicted: u64,
}

/// Recognises attack traffic of chosen correlation rules ([`AttackFilter`]).
///
/// ```
/// use mfascope_core::attack::AttackFilter;
/// use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source};
/// use mfascope_detect::RuleSet;
/// use mfascope_detect::attack::{AttackConfig, AttackMarker, DEFAULT_ATTACK_RULES};
///
/// let rules = RuleSet::builtin();
/// let names: Vec<String> = DEFAULT_ATTACK_RULES.iter().map(|s| s.to_string()).collect();
/// let mut marker = AttackMarker::new(&rules, &names, AttackConfig::default())?;
/// let mut events = EventBatchBuilder::default();
/// let start = 1_714_557_600_000; // 2024-05-01T10:00:00Z
/// for i in 0..6 {
///     let step = (Action::MfaVerify, Factor::Push, Outcome::Denied);
///     events.append(&Event::new(Source::Okta, format!("e{i}"), start + i * 30_000, "bob", "t", step));
/// }
/// // Push bombing: the fifth denial makes the first five a campaign, the sixth joins it.
/// let marked = marker.observe(&events.finish_canonical());
/// assert_eq!(marked.len(), 6);
/// assert!(marked.iter().all(|e| &*e.rule == "mfa_push_bombing" && e.group == "user=bob"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AttackMarker {
    engine: rsigma_eval::Engine,
    /// Canonical columns the rules and campaigns read.
    columns: Vec<&'static str>,
    /// Rows no base rule can match skip the engine.
    gate: Gate,
    /// Base rule (result key) → campaigns it feeds.
    feeds: HashMap<String, Vec<usize>>,
    campaigns: Vec<Campaign>,
    groups: HashMap<(usize, String), Group>,
    /// Events already marked (by any rule) → their time, so each is marked once.
    marked: HashMap<(Source, String), i64>,
    config: AttackConfig,
    watermark: i64,
    batches: u64,
    counters: AttackCounters,
}

impl std::fmt::Debug for AttackMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttackMarker({:?})", self.counters)
    }
}

/// Why a correlation rule cannot define attack traffic.
fn unsupported(name: &str, why: &str) -> DetectError {
    DetectError::Compile(format!(
        "attack exclusion rule {name}: {why} (attack traffic is defined by event_count or \
         value_count correlations with a sliding window and a lower bound, gte or gt)"
    ))
}

impl AttackMarker {
    /// A marker for the correlation rules named `names` (Sigma `name` or `id`) of `rules`.
    pub fn new(
        rules: &RuleSet,
        names: &[String],
        config: AttackConfig,
    ) -> Result<AttackMarker, DetectError> {
        let mut campaigns = Vec::new();
        let mut feeds: HashMap<String, Vec<usize>> = HashMap::new();
        let mut collection = rsigma_parser::SigmaCollection::new();
        let mut gated = Vec::new();
        for name in names {
            let Some((_, c)) = rules
                .correlations()
                .find(|(_, c)| c.name.as_ref() == Some(name) || c.id.as_ref() == Some(name))
            else {
                let known: Vec<&str> = rules
                    .correlations()
                    .filter_map(|(_, c)| c.name.as_deref())
                    .collect();
                return Err(DetectError::Compile(format!(
                    "attack exclusion rule {name}: no such correlation rule (known: {}); \
                     name one with --attack-rules or turn exclusion off with \
                     --attack-exclusion off",
                    known.join(", ")
                )));
            };
            let value_count = match c.correlation_type {
                CorrelationType::EventCount => false,
                CorrelationType::ValueCount => true,
                other => return Err(unsupported(name, &format!("type {}", other.as_str()))),
            };
            if c.window != WindowMode::Sliding {
                return Err(unsupported(name, "the window is not sliding"));
            }
            let CorrelationCondition::Threshold {
                predicates, field, ..
            } = &c.condition
            else {
                return Err(unsupported(name, "no threshold condition"));
            };
            let mut threshold = None;
            for (op, n) in predicates {
                let at_least = match op {
                    ConditionOperator::Gte => *n,
                    ConditionOperator::Gt => n + 1,
                    _ => return Err(unsupported(name, "the condition has an upper bound")),
                };
                threshold = Some(threshold.unwrap_or(0).max(at_least));
            }
            let Some(threshold) = threshold else {
                return Err(unsupported(name, "no lower bound"));
            };
            let distinct = if value_count {
                Some(
                    field
                        .as_ref()
                        .and_then(|f| f.first().cloned())
                        .ok_or_else(|| unsupported(name, "value_count without a field"))?,
                )
            } else {
                None
            };
            let index = campaigns.len();
            for base in &c.rules {
                let Some((_, rule)) = rules
                    .rules()
                    .find(|(_, r)| r.name.as_ref() == Some(base) || r.id.as_ref() == Some(base))
                else {
                    return Err(unsupported(
                        name,
                        &format!("it counts {base}, which is not a detection rule of the set"),
                    ));
                };
                let key = result_key(&rule.id, &rule.title);
                if !feeds.contains_key(&key) {
                    // The gate reads the rules as written (folding rewrites their items).
                    gated.push(rule.clone());
                    let mut rule = rule.clone();
                    fold_lower_case_fields(&mut rule);
                    collection.rules.push(rule);
                }
                feeds.entry(key).or_default().push(index);
            }
            campaigns.push(Campaign {
                name: Arc::from(c.name.clone().unwrap_or_else(|| name.clone())),
                group_by: c.group_by.clone(),
                distinct,
                window_ms: (c.timespan.seconds as i64).saturating_mul(1000),
                threshold: threshold.max(1) as usize,
            });
        }
        let gate = Gate::of(&gated);
        let columns = columns_for(&gated, &campaigns);
        let mut engine = rsigma_eval::Engine::new();
        if !collection.rules.is_empty() {
            for f in rules.collection(true).filters {
                collection.filters.push(f);
            }
            engine
                .add_collection(&collection)
                .map_err(|e| DetectError::Compile(e.to_string()))?;
        }
        Ok(AttackMarker {
            engine,
            columns,
            gate,
            feeds,
            campaigns,
            groups: HashMap::new(),
            marked: HashMap::new(),
            config,
            watermark: i64::MIN,
            batches: 0,
            counters: AttackCounters::default(),
        })
    }

    /// Counters so far.
    pub fn counters(&self) -> AttackCounters {
        self.counters
    }

    /// Add row `i` to the windows of the campaigns its base rules feed; returns newly marked
    /// events.
    fn add(&mut self, row: &Row<'_>, campaign: usize, out: &mut Vec<AttackEvent>) {
        let c = &self.campaigns[campaign];
        let text = |v: EventValue<'_>| match v {
            EventValue::Str(s) => s.into_owned(),
            other => format!("{other:?}"),
        };
        let mut key = String::new();
        for field in &c.group_by {
            // An event without the group's key cannot be attributed to a campaign.
            let Some(v) = row.get_field(field) else {
                return;
            };
            if !key.is_empty() {
                key.push(' ');
            }
            key.push_str(field);
            key.push('=');
            key.push_str(&text(v));
        }
        let value = match &c.distinct {
            Some(field) => match row.get_field(field) {
                Some(v) => Some(text(v)),
                None => return,
            },
            None => None,
        };
        let (view, i) = (row.view, row.i);
        let Some(source) = view.source[i] else {
            return;
        };
        let (Some(action), Some(factor), Some(outcome)) =
            (view.action[i], view.factor[i], view.outcome[i])
        else {
            return;
        };
        let time = row.time_ms();
        let entry = Entry {
            time,
            event_id: view.event_id.value(i).into(),
            value: value.map(String::into_boxed_str),
            app: row.get_field(col::APP).and_then(|v| match v {
                EventValue::Str(s) => Some(s.into()),
                _ => None,
            }),
            reason: super::row::opt_str(&view.reason, i).map(Box::from),
            latency_ms: row.get_field(col::LATENCY_MS).and_then(|v| match v {
                EventValue::Int(n) => u32::try_from(n).ok(),
                _ => None,
            }),
            source,
            action,
            factor,
            outcome,
            marked: false,
        };
        let (window, threshold, distinct) = (c.window_ms, c.threshold, c.distinct.is_some());
        let batch = self.batches;
        let id = (campaign, key);
        if !self.groups.contains_key(&id) {
            self.groups.insert(id.clone(), Group::default());
        }
        let group = self.groups.get_mut(&id).expect("inserted above");
        group.touched = batch;
        let at = group
            .entries
            .partition_point(|e| (e.time, &*e.event_id) < (time, &*entry.event_id));
        // Most groups hold one or two entries: grow by what is there, not by four at once.
        if group.entries.len() == group.entries.capacity() {
            group.entries.reserve_exact(group.entries.len().max(1));
        }
        group.entries.insert(at, entry);
        // Windows that can newly qualify end at this entry or at a later one within the span.
        let entries = &mut group.entries;
        let mut j = at;
        while j < entries.len() && entries[j].time <= time + window {
            let end = entries[j].time;
            let from = entries.partition_point(|e| e.time < end - window);
            let count = if distinct {
                entries[from..=j]
                    .iter()
                    .filter_map(|e| e.value.as_deref())
                    .collect::<HashSet<_>>()
                    .len()
            } else {
                j + 1 - from
            };
            if count >= threshold {
                for e in &mut entries[from..=j] {
                    if !e.marked {
                        e.marked = true;
                        let mark = (e.source, e.event_id.to_string());
                        if let hash_map::Entry::Vacant(slot) = self.marked.entry(mark) {
                            slot.insert(e.time);
                            self.counters.marked += 1;
                            out.push(e.event(c, &id.1));
                        }
                    }
                }
            }
            j += 1;
        }
    }

    /// Drop what no event arriving within the allowance can join any more.
    fn expire(&mut self) {
        let horizon = self.watermark.saturating_sub(self.config.allowance_ms);
        let batch = self.batches;
        let campaigns = &self.campaigns;
        self.groups.retain(|(c, _), g| {
            let keep_from = horizon.saturating_sub(campaigns[*c].window_ms);
            let last = g.entries.last().map_or(i64::MIN, |e| e.time);
            if last < keep_from && g.touched < batch {
                return false;
            }
            // Entries older than the group's own latest minus the allowance and the span cannot
            // share a window with anything that may still arrive (the latest is at most the
            // watermark, so this is never tighter than the global horizon).
            let own = last
                .saturating_sub(self.config.allowance_ms)
                .saturating_sub(campaigns[*c].window_ms);
            let cut = g.entries.partition_point(|e| e.time < own);
            g.entries.drain(..cut);
            !g.entries.is_empty()
        });
        let longest = self
            .campaigns
            .iter()
            .map(|c| c.window_ms)
            .max()
            .unwrap_or(0);
        let forget = horizon.saturating_sub(2 * longest + self.config.allowance_ms);
        self.marked.retain(|_, t| *t >= forget);
        if self.groups.len() > self.config.max_groups {
            let mut latest: Vec<(i64, (usize, String))> = self
                .groups
                .iter()
                .map(|(k, g)| (g.entries.last().map_or(i64::MIN, |e| e.time), k.clone()))
                .collect();
            latest.sort();
            let excess = self.groups.len() - self.config.max_groups;
            for (_, k) in latest.into_iter().take(excess) {
                self.groups.remove(&k);
                self.counters.groups_evicted += 1;
            }
        }
    }
}

impl AttackFilter for AttackMarker {
    fn observe(&mut self, batch: &CanonicalBatch) -> Vec<AttackEvent> {
        let mut out = Vec::new();
        if self.campaigns.is_empty() {
            return out;
        }
        self.batches += 1;
        let view = BatchView::of(batch);
        let no_facts = Derived::default();
        for i in 0..view.len() {
            let row = Row {
                view: &view,
                i,
                derived: &no_facts,
            };
            self.watermark = self.watermark.max(row.time_ms());
            // Synthetic checks are never an attack.
            if view.source[i] == Some(Source::Probe) || !self.gate.admits(&view, i, &no_facts) {
                continue;
            }
            let results = self.engine.evaluate(&row);
            if results.is_empty() {
                continue;
            }
            let mut fed: Vec<usize> = results
                .iter()
                .filter_map(|r| {
                    let h = &r.header;
                    self.feeds.get(h.rule_id.as_ref().unwrap_or(&h.rule_title))
                })
                .flatten()
                .copied()
                .collect();
            fed.sort_unstable();
            fed.dedup();
            if !fed.is_empty() {
                self.counters.candidates += 1;
            }
            for c in fed {
                self.add(&row, c, &mut out);
            }
        }
        self.expire();
        out
    }

    fn columns(&self) -> Vec<&'static str> {
        self.columns.clone()
    }

    fn sql_filter(&self) -> Option<String> {
        if self.campaigns.is_empty() {
            return Some("false".into());
        }
        // Probes are never attack traffic; the gate's columns bound what the base rules match.
        let probes = "CAST(source AS VARCHAR) <> 'probe'".to_string();
        Some(match self.gate.sql_filter() {
            Some(gate) => format!("{probes} AND {gate}"),
            None => probes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome};

    const START: i64 = 1_714_557_600_000; // 2024-05-01T10:00:00Z

    fn marker(names: &[&str]) -> AttackMarker {
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        AttackMarker::new(&RuleSet::builtin(), &names, AttackConfig::default()).unwrap()
    }

    /// One `mfa_verify` event `id` of `user` from `ip` at `START + at_s` seconds.
    fn verify(id: &str, at_s: i64, user: &str, ip: &str, f: Factor, o: Outcome) -> Event<'static> {
        let mut e = Event::new(
            Source::Okta,
            id.to_string(),
            START + at_s * 1000,
            user.to_string(),
            "t",
            (Action::MfaVerify, f, o),
        );
        e.src_ip = Some(ip.to_string().into());
        e
    }

    fn batch(events: &[Event<'_>]) -> CanonicalBatch {
        let mut b = EventBatchBuilder::default();
        for e in events {
            b.append(e);
        }
        b.finish_canonical()
    }

    fn ids(marks: &[AttackEvent]) -> Vec<String> {
        let mut v: Vec<String> = marks.iter().map(|m| m.event_id.clone()).collect();
        v.sort();
        v
    }

    fn denials(n: i64, step_s: i64) -> Vec<Event<'static>> {
        (0..n)
            .map(|i| {
                let id = format!("d{i}");
                verify(
                    &id,
                    i * step_s,
                    "bob",
                    "198.51.100.9",
                    Factor::Push,
                    Outcome::Denied,
                )
            })
            .collect()
    }

    #[test]
    fn a_near_miss_marks_nothing() {
        // Four denials in 10 minutes, then a fifth 11 minutes after the first: never five at once.
        let mut m = marker(&["mfa_push_bombing"]);
        let mut events = denials(4, 60);
        events.push(verify(
            "late",
            11 * 60,
            "bob",
            "198.51.100.9",
            Factor::Push,
            Outcome::Denied,
        ));
        assert!(m.observe(&batch(&events)).is_empty());
        assert_eq!(m.counters().marked, 0);
    }

    #[test]
    fn marks_the_same_events_in_any_arrival_order() {
        let events = denials(7, 40);
        let mut in_order = marker(&["mfa_push_bombing"]);
        let forward = ids(&in_order.observe(&batch(&events)));
        // Reversed, and split over two batches: the campaign is the same set of events.
        let mut reversed: Vec<_> = events.iter().rev().cloned().collect();
        let second = reversed.split_off(3);
        let mut out_of_order = marker(&["mfa_push_bombing"]);
        let mut backward = out_of_order.observe(&batch(&reversed));
        backward.extend(out_of_order.observe(&batch(&second)));
        assert_eq!(forward.len(), 7);
        assert_eq!(forward, ids(&backward));
    }

    #[test]
    fn value_count_spray_needs_distinct_users() {
        let fail = |i: i64, user: String| {
            verify(
                &format!("s{i}"),
                i * 60,
                &user,
                "203.0.113.7",
                Factor::Totp,
                Outcome::Failure,
            )
        };
        // Ten failures from one IP but only nine users: not a spray.
        let mut nine: Vec<_> = (0..9).map(|i| fail(i, format!("u{i}"))).collect();
        nine.push(fail(9, "u0".into()));
        assert!(marker(&["mfa_spray"]).observe(&batch(&nine)).is_empty());
        // Ten distinct users: every failure is spray traffic, grouped by the IP.
        let ten: Vec<_> = (0..10).map(|i| fail(i, format!("u{i}"))).collect();
        let marks = marker(&["mfa_spray"]).observe(&batch(&ten));
        assert_eq!(marks.len(), 10);
        assert!(marks.iter().all(|m| m.group == "src_ip=203.0.113.7"));
    }

    #[test]
    fn probes_are_never_attack_traffic() {
        let mut events = denials(6, 30);
        for e in &mut events {
            e.source = Source::Probe;
        }
        assert!(
            marker(&["mfa_push_bombing"])
                .observe(&batch(&events))
                .is_empty()
        );
    }

    #[test]
    fn an_event_two_campaigns_match_is_marked_once() {
        // Ten users each denying a push from one IP: spray by IP; one of them denies five times
        // (push bombing too): the shared events appear once.
        let mut events: Vec<_> = (0..10)
            .map(|i| {
                let user = format!("u{i}");
                verify(
                    &format!("p{i}"),
                    i * 30,
                    &user,
                    "203.0.113.7",
                    Factor::Push,
                    Outcome::Denied,
                )
            })
            .collect();
        for i in 1..5 {
            let id = format!("b{i}");
            events.push(verify(
                &id,
                300 + i * 20,
                "u0",
                "203.0.113.7",
                Factor::Push,
                Outcome::Denied,
            ));
        }
        let marks = marker(&["mfa_push_bombing", "mfa_spray"]).observe(&batch(&events));
        let unique = ids(&marks);
        let mut dedup = unique.clone();
        dedup.dedup();
        assert_eq!(unique, dedup, "an event marked twice");
        assert_eq!(unique.len(), 14);
    }

    #[test]
    fn unknown_or_unsupported_rules_are_refused_with_the_known_names() {
        let err = AttackMarker::new(
            &RuleSet::builtin(),
            &["no_such_rule".to_string()],
            AttackConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("mfa_push_bombing") && err.contains("--attack-rules"),
            "{err}"
        );
        // A temporal (sequence) correlation cannot define attack traffic.
        let err = AttackMarker::new(
            &RuleSet::builtin(),
            &["mfa_recovery_abuse".to_string()],
            AttackConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("event_count or value_count"), "{err}");
    }

    #[test]
    fn the_default_rules_read_few_columns_and_only_failed_verifications() {
        let names: Vec<String> = DEFAULT_ATTACK_RULES
            .iter()
            .map(ToString::to_string)
            .collect();
        let m = AttackMarker::new(&RuleSet::builtin(), &names, AttackConfig::default()).unwrap();
        let filter = m.sql_filter().unwrap();
        assert!(
            filter.contains("IN ('mfa_verify')") && filter.contains("outcome"),
            "{filter}"
        );
        assert!(!m.columns().contains(&col::RAW), "{:?}", m.columns());
    }
}
