//! The row gate: a conservative, precomputed answer to "can any canonical detection rule match
//! a row with this (action, factor, outcome)?". Most rows (password steps, challenges, routine
//! successes) cannot, and skipping the engine for them is the largest saving in the detector.
//!
//! The gate is computed from the rules' detection ASTs over the finite space of the three
//! enum columns (each value or null: 18 × 16 × 8 combinations). A detection item on one of them
//! with plain string values allows exactly the combinations where the column holds one of the
//! values; any other item (another field, a modifier, a wildcard, a keyword) allows every
//! combination. `and` intersects, `or` and selectors (`1 of …`, `all of them`: taken over
//! every named detection) unite, `not` allows everything. The result over-approximates each
//! rule, so a row outside it is provably matched by no rule; correlations only consume
//! detection matches, so they never miss a row the gate skipped. A second set, over the rules
//! that are not sequel-only ([`super::sequel`]), tells rows only such rules can match.

use std::str::FromStr;

use rsigma_parser::{ConditionExpr, Detection, DetectionItem, SigmaRule, SigmaValue, StringPart};
use strum::VariantNames;

use super::row::{BatchView, Derived};
use mfascope_core::event::{Action, Factor, Outcome};

/// One slot per value plus one for null, per column; two per derived flag.
const A: usize = Action::VARIANTS.len() + 1;
const F: usize = Factor::VARIANTS.len() + 1;
const O: usize = Outcome::VARIANTS.len() + 1;
const SLOTS: usize = A * F * O * 2 * 2 * 2;

/// The gate's view of a row: enum column slots (0 = null, else dictionary key + 1), whether
/// `reason` is set, and two derived facts that are rare and that rules test (`travel_*`
/// present, `device_new_for_user` true).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    action: usize,
    factor: usize,
    outcome: usize,
    reason: bool,
    travel: bool,
    device_new: bool,
}

impl Key {
    fn index(self) -> usize {
        let flags = [self.reason, self.travel, self.device_new];
        flags.into_iter().fold(
            (self.action * F + self.factor) * O + self.outcome,
            |i, flag| i * 2 + usize::from(flag),
        )
    }

    fn all() -> impl Iterator<Item = Key> {
        (0..A).flat_map(|action| {
            (0..F).flat_map(move |factor| {
                (0..O).flat_map(move |outcome| {
                    (0..8).map(move |flags| Key {
                        action,
                        factor,
                        outcome,
                        reason: flags & 4 != 0,
                        travel: flags & 2 != 0,
                        device_new: flags & 1 != 0,
                    })
                })
            })
        })
    }
}

/// A set of row keys.
#[derive(Clone, PartialEq, Eq)]
struct Combos(Box<[bool; SLOTS]>);

impl Combos {
    fn all() -> Combos {
        Combos(Box::new([true; SLOTS]))
    }

    fn none() -> Combos {
        Combos(Box::new([false; SLOTS]))
    }

    /// The keys for which `pred` holds.
    fn where_key(pred: impl Fn(Key) -> bool) -> Combos {
        let mut c = Combos::none();
        Key::all().for_each(|k| c.0[k.index()] = pred(k));
        c
    }

    fn and(mut self, other: &Combos) -> Combos {
        self.0
            .iter_mut()
            .zip(other.0.iter())
            .for_each(|(x, y)| *x &= *y);
        self
    }

    fn or(mut self, other: &Combos) -> Combos {
        self.0
            .iter_mut()
            .zip(other.0.iter())
            .for_each(|(x, y)| *x |= *y);
        self
    }
}

#[derive(Clone, Copy)]
enum Column {
    Action,
    Factor,
    Outcome,
}

impl Column {
    fn of(field: &str) -> Option<Column> {
        match field {
            "action" => Some(Column::Action),
            "factor" => Some(Column::Factor),
            "outcome" => Some(Column::Outcome),
            _ => None,
        }
    }

    /// Slot of a value (`None`: not a value of the column, so no row holds it).
    fn slot(self, value: &str) -> Option<usize> {
        let key = match self {
            Column::Action => Action::from_str(value)
                .ok()
                .map(mfascope_core::event::Action::key),
            Column::Factor => Factor::from_str(value)
                .ok()
                .map(mfascope_core::event::Factor::key),
            Column::Outcome => Outcome::from_str(value)
                .ok()
                .map(mfascope_core::event::Outcome::key),
        }?;
        Some(key as usize + 1)
    }

    fn of_key(self, k: Key) -> usize {
        match self {
            Column::Action => k.action,
            Column::Factor => k.factor,
            Column::Outcome => k.outcome,
        }
    }
}

/// Combinations an item on another field allows: plain non-empty strings on `reason` need it
/// set; a numeric comparison or a number on `travel_km` / `travel_kmh` needs the travel facts
/// present; `device_new_for_user: true` needs the flag set. Anything else allows every
/// combination.
fn other_item(name: &str, it: &DetectionItem) -> Combos {
    use rsigma_parser::Modifier::{Gt, Gte, Lt, Lte};
    let numeric_only = it
        .field
        .modifiers
        .iter()
        .all(|m| matches!(m, Gt | Gte | Lt | Lte))
        && it
            .values
            .iter()
            .all(|v| matches!(v, SigmaValue::Integer(_) | SigmaValue::Float(_)));
    let plain_strings = it.field.modifiers.is_empty()
        && it
            .values
            .iter()
            .all(|v| matches!(v, SigmaValue::String(s) if !s.original.is_empty()));
    match name {
        "reason" if plain_strings && !it.values.is_empty() => Combos::where_key(|k| k.reason),
        "travel_km" | "travel_kmh" if numeric_only && !it.values.is_empty() => {
            Combos::where_key(|k| k.travel)
        }
        "device_new_for_user"
            if it.field.modifiers.is_empty()
                && !it.values.is_empty()
                && it
                    .values
                    .iter()
                    .all(|v| matches!(v, SigmaValue::Bool(true))) =>
        {
            Combos::where_key(|k| k.device_new)
        }
        _ => Combos::all(),
    }
}

/// Combinations a detection item allows.
fn item(it: &DetectionItem) -> Combos {
    let Some(name) = it.field.name.as_deref() else {
        return Combos::all();
    };
    let Some(column) = Column::of(name) else {
        return other_item(name, it);
    };
    if !it.field.modifiers.is_empty() || it.values.is_empty() {
        return Combos::all();
    }
    let mut keys = Vec::new();
    for v in &it.values {
        let SigmaValue::String(s) = v else {
            return Combos::all();
        };
        let mut text = String::new();
        for p in &s.parts {
            match p {
                StringPart::Plain(t) => text.push_str(t),
                _ => return Combos::all(),
            }
        }
        // Sigma equality ignores case; the columns hold lower-case names.
        keys.extend(column.slot(&text.to_ascii_lowercase()));
    }
    Combos::where_key(|k| keys.contains(&column.of_key(k)))
}

fn detection(d: &Detection) -> Combos {
    match d {
        Detection::AllOf(items) => items
            .iter()
            .fold(Combos::all(), |acc, it| acc.and(&item(it))),
        Detection::AnyOf(subs) => subs
            .iter()
            .fold(Combos::none(), |acc, s| acc.or(&detection(s))),
        _ => Combos::all(),
    }
}

fn condition(rule: &SigmaRule, e: &ConditionExpr) -> Combos {
    let named = |name: &str| {
        rule.detection
            .named
            .get(name)
            .map_or_else(Combos::all, detection)
    };
    match e {
        ConditionExpr::Identifier(name) => named(name),
        ConditionExpr::And(xs) => xs
            .iter()
            .fold(Combos::all(), |acc, x| acc.and(&condition(rule, x))),
        ConditionExpr::Or(xs) => xs
            .iter()
            .fold(Combos::none(), |acc, x| acc.or(&condition(rule, x))),
        ConditionExpr::Not(_) => Combos::all(),
        // Every named detection, whatever the pattern and quantifier: a superset.
        ConditionExpr::Selector { .. } => {
            if rule.detection.named.is_empty() {
                return Combos::all();
            }
            rule.detection
                .named
                .values()
                .fold(Combos::none(), |acc, d| acc.or(&detection(d)))
        }
    }
}

/// What the gate says about a row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Admit {
    /// No rule can match the row.
    No,
    /// Some rule that reports or counts on its own may match.
    Firm,
    /// Only rules that are later steps of ordered correlations may match (see
    /// [`super::sequel`]): the row matters only while such a correlation's first step is live.
    Sequel,
}

/// A row's enum-column slots and `reason` flag, computed once per row; the derived flags are
/// added by [`Gate::admit`].
#[derive(Clone, Copy, Debug)]
pub struct RowKey(usize);

/// Which rows may match at least one of a set of canonical detection rules.
#[derive(Clone)]
pub struct Gate {
    allowed: Combos,
    /// Rows some rule other than a sequel-only rule may match.
    firm: Combos,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate({}/{SLOTS} combinations)", self.open_slots())
    }
}

/// Combinations one rule may match.
fn rule_combos(rule: &SigmaRule) -> Combos {
    if rule.detection.conditions.is_empty() {
        return Combos::all();
    }
    rule.detection
        .conditions
        .iter()
        .fold(Combos::none(), |acc, e| acc.or(&condition(rule, e)))
}

impl Gate {
    /// The gate of `rules` (an empty set lets nothing through); every rule is firm.
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a SigmaRule>) -> Gate {
        Gate::with_sequels(rules, |_| false)
    }

    /// The gate of `rules`, where `sequel_only` tells the rules whose matches only ever serve
    /// as later steps of ordered correlations.
    pub fn with_sequels<'a>(
        rules: impl IntoIterator<Item = &'a SigmaRule>,
        sequel_only: impl Fn(&SigmaRule) -> bool,
    ) -> Gate {
        let (mut allowed, mut firm) = (Combos::none(), Combos::none());
        for rule in rules {
            let c = rule_combos(rule);
            if !sequel_only(rule) {
                firm = firm.or(&c);
            }
            allowed = allowed.or(&c);
        }
        Gate { allowed, firm }
    }

    /// The slots of row `i` that do not depend on derived facts.
    #[inline]
    pub fn key(&self, view: &BatchView, i: usize) -> RowKey {
        let k = |key: Option<i8>| key.map_or(0, |k| k as usize + 1);
        let base = (k(view.action[i].map(Action::key)) * F + k(view.factor[i].map(Factor::key)))
            * O
            + k(view.outcome[i].map(Outcome::key));
        RowKey(base * 2 + usize::from(super::row::opt_str(&view.reason, i).is_some()))
    }

    /// Whether a row may match a rule with some derived facts: when not, the derived facts
    /// need not be computed. (Items only ever require a derived flag to be set, so the gate
    /// is monotone in the flags and "both set" is the most permissive case.)
    #[inline]
    pub fn may_admit(&self, key: RowKey) -> bool {
        self.allowed.0[Self::index(key, true, true)]
    }

    /// Whether a row may match a firm rule with some derived facts.
    #[inline]
    pub fn may_be_firm(&self, key: RowKey) -> bool {
        self.firm.0[Self::index(key, true, true)]
    }

    /// What the gate says about a row with its derived facts.
    #[inline]
    pub fn admit(&self, key: RowKey, derived: &Derived) -> Admit {
        let travel = derived.travel_kmh.is_some() || derived.travel_km.is_some();
        let index = Self::index(key, travel, derived.device_new == Some(true));
        if self.firm.0[index] {
            Admit::Firm
        } else if self.allowed.0[index] {
            Admit::Sequel
        } else {
            Admit::No
        }
    }

    /// Whether row `i` of `view`, with its derived facts, may match a rule.
    pub fn admits(&self, view: &BatchView, i: usize, derived: &Derived) -> bool {
        self.admit(self.key(view, i), derived) != Admit::No
    }

    fn index(RowKey(k): RowKey, travel: bool, device_new: bool) -> usize {
        (k * 2 + usize::from(travel)) * 2 + usize::from(device_new)
    }

    /// A SQL predicate over the canonical `action`, `factor` and `outcome` columns that holds
    /// for every row the gate may let through (each column's values in some allowed
    /// combination; a column is left out where every value is allowed). `None` when nothing is
    /// ruled out; `Some("false")` when nothing passes.
    pub fn sql_filter(&self) -> Option<String> {
        let mut seen = [vec![false; A], vec![false; F], vec![false; O]];
        for k in Key::all().filter(|k| self.allowed.0[k.index()]) {
            seen[0][k.action] = true;
            seen[1][k.factor] = true;
            seen[2][k.outcome] = true;
        }
        if seen[0].iter().all(|s| !s) {
            return Some("false".into());
        }
        let names: [&[&str]; 3] = [Action::VARIANTS, Factor::VARIANTS, Outcome::VARIANTS];
        let columns = ["action", "factor", "outcome"];
        let terms: Vec<String> = seen
            .iter()
            .zip(names)
            .zip(columns)
            .filter(|((s, _), _)| !s.iter().all(|x| *x))
            .map(|((s, names), column)| {
                let values: Vec<String> = names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| s[i + 1])
                    .map(|(_, v)| format!("'{v}'"))
                    .collect();
                let mut alts = Vec::new();
                if !values.is_empty() {
                    alts.push(format!(
                        "CAST({column} AS VARCHAR) IN ({})",
                        values.join(", ")
                    ));
                }
                if s[0] {
                    alts.push(format!("{column} IS NULL"));
                }
                format!("({})", alts.join(" OR "))
            })
            .collect();
        (!terms.is_empty()).then(|| terms.join(" AND "))
    }

    /// Combinations let through (for diagnostics and tests).
    pub fn open_slots(&self) -> usize {
        self.allowed.0.iter().filter(|x| **x).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Event, EventBatchBuilder, Source};

    fn gate(yaml: &str) -> Gate {
        let c = rsigma_parser::parse_sigma_yaml(yaml).unwrap();
        Gate::of(&c.rules)
    }

    /// Whether `g` admits one event with these values and derived facts.
    fn admits(g: &Gate, (a, f, o): (Action, Factor, Outcome), derived: &Derived) -> bool {
        let mut b = EventBatchBuilder::default();
        b.append(&Event::new(Source::Canonical, "e", 0, "u", "t", (a, f, o)));
        let view = BatchView::of(&b.finish_canonical());
        g.admits(&view, 0, derived)
    }

    const HEAD: &str = "title: t\nlogsource: {product: mfascope}\ndetection:\n";
    use Action::*;

    #[test]
    fn equality_on_enum_columns_narrows_and_or_widens() {
        let g = gate(&format!(
            "{HEAD}  a: {{action: mfa_verify, outcome: [denied, Timeout]}}\n  b: {{action: bypass}}\n  condition: a or b\n"
        ));
        let d = Derived::default();
        assert!(admits(&g, (MfaVerify, Factor::Push, Outcome::Denied), &d));
        assert!(admits(&g, (MfaVerify, Factor::Sms, Outcome::Timeout), &d));
        assert!(!admits(&g, (MfaVerify, Factor::Push, Outcome::Success), &d));
        assert!(admits(&g, (Bypass, Factor::None, Outcome::Failure), &d));
        assert!(!admits(
            &g,
            (PrimaryAuth, Factor::Password, Outcome::Denied),
            &d
        ));
    }

    #[test]
    fn sql_filter_bounds_the_columns_the_rules_constrain() {
        let g = gate(&format!(
            "{HEAD}  a: {{action: mfa_verify, outcome: [denied, Timeout]}}\n  condition: a\n"
        ));
        assert_eq!(
            g.sql_filter().as_deref(),
            Some(
                "(CAST(action AS VARCHAR) IN ('mfa_verify')) AND \
                 (CAST(outcome AS VARCHAR) IN ('denied', 'timeout'))"
            )
        );
        let open = gate(&format!("{HEAD}  a: {{user: bob}}\n  condition: a\n"));
        assert_eq!(open.sql_filter(), None);
        assert_eq!(
            Gate::of(std::iter::empty()).sql_filter().as_deref(),
            Some("false")
        );
    }

    #[test]
    fn derived_facts_narrow_when_a_rule_needs_them() {
        let g = gate(&format!(
            "{HEAD}  s: {{action: mfa_verify, travel_kmh|gt: 1000}}\n  t: {{action: enroll_complete, device_new_for_user: true}}\n  condition: s or t\n"
        ));
        let plain = Derived::default();
        let travel = Derived {
            travel_kmh: Some(5000.0),
            ..Derived::default()
        };
        let new_device = Derived {
            device_new: Some(true),
            ..Derived::default()
        };
        let ok = (MfaVerify, Factor::Totp, Outcome::Success);
        assert!(!admits(&g, ok, &plain));
        assert!(admits(&g, ok, &travel));
        let enroll = (EnrollComplete, Factor::Sms, Outcome::Success);
        assert!(!admits(&g, enroll, &plain));
        assert!(admits(&g, enroll, &new_device));
    }

    #[test]
    fn anything_it_cannot_reason_about_lets_rows_through() {
        for cond in [
            "  s: {action: mfa_verify}\n  condition: not s\n",
            "  s: {action|contains: verify}\n  condition: s\n",
            "  s: {action: 'mfa_*'}\n  condition: s\n",
            "  s: {user: bob}\n  condition: s\n",
            "  s: {travel_kmh: null}\n  condition: s\n",
            "  s: {device_new_for_user: false}\n  condition: s\n",
            "  s: {reason: ''}\n  condition: s\n",
            "  s: {reason|re: '.*'}\n  condition: s\n",
            "  s: [{action: bypass}, {user: bob}]\n  condition: s\n",
            "  s: {action: bypass}\n  t: {user: bob}\n  condition: 1 of s*\n",
        ] {
            let g = gate(&format!("{HEAD}{cond}"));
            let row = (PrimaryAuth, Factor::Password, Outcome::Success);
            assert!(
                admits(&g, row, &Derived::default()),
                "{cond} must admit every row"
            );
        }
    }

    #[test]
    fn the_builtin_rules_close_the_gate_for_routine_rows() {
        let set = crate::RuleSet::builtin();
        let g = Gate::of(&set.collection(true).rules);
        let d = Derived::default();
        assert!(!admits(
            &g,
            (PrimaryAuth, Factor::Password, Outcome::Success),
            &d
        ));
        assert!(!admits(
            &g,
            (MfaChallenge, Factor::Push, Outcome::Challenge),
            &d
        ));
        assert!(!admits(&g, (MfaVerify, Factor::Totp, Outcome::Success), &d));
        assert!(admits(&g, (MfaVerify, Factor::Push, Outcome::Denied), &d));
        assert!(!admits(
            &g,
            (PolicyChange, Factor::None, Outcome::Success),
            &d
        ));
        assert!(admits(
            &g,
            (Bypass, Factor::BypassCode, Outcome::Success),
            &d
        ));
    }
}
