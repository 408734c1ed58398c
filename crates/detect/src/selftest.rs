//! `mfascope rules test`: runs the test cases rules carry under `rsigma.exemplars` (the rsigma
//! exemplar format: `event:` for detection rules, timed `events:` for correlations, each with
//! `expect: match | no-match`) through the real [`Detector`]. Exemplar events are canonical
//! events: unset fields get neutral defaults, and the derived history fields
//! (`src_ip_new_for_user`, …) may be pinned on single events; in sequences they are computed
//! from the earlier events as in production.

use rsigma_parser::{Exemplar, ExemplarPayload, Expect};
use serde::Serialize;

use super::row::{DERIVED_FIELDS, Derived};
use super::{DetectConfig, DetectError, Detector, RuleSet};
use mfascope_core::event::{EventBatchBuilder, event_schema};

/// Start of every exemplar timeline (offsets are added to it).
const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Derived fields a test event pins, by name.
type Pins = Vec<(String, serde_json::Value)>;

/// Outcome of one test case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Rule file.
    pub file: String,
    /// Rule title.
    pub rule: String,
    /// Case name.
    pub case: String,
    /// `match` or `no-match`.
    pub expect: String,
    /// Whether the rule behaved as expected.
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub detail: String,
}

/// Results of a test run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TestReport {
    /// Every case run.
    pub cases: Vec<CaseResult>,
    /// Rules lacking a `match` or a `no-match` case (`file: title (missing …)`).
    pub incomplete: Vec<String>,
}

impl TestReport {
    /// Failed cases.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| !c.passed).count()
    }
}

/// One canonical event from an exemplar mapping, plus pinned derived fields.
fn exemplar_event(
    value: &yaml_serde::Value,
    id: String,
    time_ms: i64,
) -> Result<(String, Pins), String> {
    let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(mut map) = json else {
        return Err("an exemplar event must be a mapping".into());
    };
    let schema = event_schema();
    let mut pins = Vec::new();
    for name in DERIVED_FIELDS {
        if let Some(v) = map.remove(*name) {
            Derived::default().set(name, &v)?;
            pins.push((name.to_string(), v));
        }
    }
    if let Some(unknown) = map.keys().find(|k| schema.field_with_name(k).is_err()) {
        return Err(format!(
            "unknown field `{unknown}` (canonical fields: docs/schema.md; derived: {})",
            DERIVED_FIELDS.join(", ")
        ));
    }
    let defaults = [
        ("event_id", id.into()),
        ("time", mfascope_core::time::format_rfc3339(time_ms).into()),
        ("source", "canonical".into()),
        ("user", "exemplar-user".into()),
        ("action", "other".into()),
        ("factor", "none".into()),
        ("outcome", "success".into()),
        ("vendor_event_type", "exemplar".into()),
    ];
    for (k, v) in defaults {
        map.entry(k).or_insert(v);
    }
    Ok((serde_json::Value::Object(map).to_string(), pins))
}

/// Run one case: does the rule (`id` or `title`) fire on the events?
fn run_case(
    rules: &RuleSet,
    target: (&Option<String>, &Option<String>, &str),
    events: &[(i64, &yaml_serde::Value)],
    case: &str,
) -> Result<bool, String> {
    let mut builder = EventBatchBuilder::default();
    let mut pins: Vec<Pins> = Vec::new();
    for (k, (t, value)) in events.iter().enumerate() {
        let (text, p) = exemplar_event(value, format!("{case}-{k:03}"), *t)?;
        let event: mfascope_core::event::Event<'_> =
            serde_json::from_str(&text).map_err(|e| format!("event {k}: {e}"))?;
        builder.append(&event);
        pins.push(p);
    }
    let batch = builder.finish_canonical();
    let mut detector = Detector::new(rules, DetectConfig::default(), true)
        .map_err(|e: DetectError| e.to_string())?;
    let (id, name, title) = target;
    let mut fired = false;
    detector.evaluate(
        &batch,
        |i, d: &mut Derived| {
            for (name, value) in &pins[i] {
                // Validated when the event was read.
                let _ = d.set(name, value);
            }
        },
        |_, results| {
            fired |= results.iter().any(|r| {
                let h = &r.header;
                (id.is_some() && h.rule_id == *id)
                    || (id.is_none() && h.rule_title == title)
                    || (name.is_some() && h.rule_id.is_none() && h.rule_title == title)
            });
        },
    );
    Ok(fired)
}

/// Run every exemplar of every rule.
pub fn run(rules: &RuleSet) -> Result<TestReport, DetectError> {
    // Fail early, with the compile error, when the rule set does not load.
    Detector::new(rules, DetectConfig::default(), true)?;
    let mut report = TestReport::default();
    let mut check =
        |file: &str,
         title: &str,
         target: (&Option<String>, &Option<String>, &str),
         cases: Result<Vec<Exemplar>, Vec<rsigma_parser::ExemplarShapeError>>| {
            let cases = match cases {
                Ok(c) => c,
                Err(errors) => {
                    report.cases.push(CaseResult {
                        file: file.into(),
                        rule: title.into(),
                        case: "rsigma.exemplars".into(),
                        expect: "-".into(),
                        passed: false,
                        detail: errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    });
                    return;
                }
            };
            let has = |e: Expect| cases.iter().any(|c| c.expect == e);
            let missing: Vec<&str> = [(Expect::Match, "match"), (Expect::NoMatch, "no-match")]
                .into_iter()
                .filter(|(e, _)| !has(*e))
                .map(|(_, n)| n)
                .collect();
            if !missing.is_empty() {
                report.incomplete.push(format!(
                    "{file}: {title} (no {} case)",
                    missing.join(" or ")
                ));
            }
            for case in cases {
                let events: Vec<(i64, &yaml_serde::Value)> = match &case.payload {
                    ExemplarPayload::Event(v) => vec![(BASE_MS, v)],
                    ExemplarPayload::Sequence(seq) => seq
                        .iter()
                        .map(|t| (BASE_MS + t.offset.seconds as i64 * 1000, &t.event))
                        .collect(),
                };
                let slug = format!("{}-{}", title.replace(' ', "_"), case.index);
                let (passed, detail) = match run_case(rules, target, &events, &slug) {
                    Ok(fired) => {
                        let want = case.expect == Expect::Match;
                        let detail = match (want, fired) {
                            (true, false) => "expected the rule to fire; it did not".to_string(),
                            (false, true) => "expected no firing; the rule fired".to_string(),
                            _ => String::new(),
                        };
                        (fired == want, detail)
                    }
                    Err(e) => (false, e),
                };
                report.cases.push(CaseResult {
                    file: file.into(),
                    rule: title.into(),
                    case: case.name.clone(),
                    expect: case.expect.as_str().into(),
                    passed,
                    detail,
                });
            }
        };
    for (file, rule) in rules.rules() {
        if !super::rules::is_canonical(rule) {
            continue;
        }
        check(
            &file.path,
            &rule.title,
            (&rule.id, &rule.name, &rule.title),
            rsigma_parser::exemplars(rule),
        );
    }
    for (file, corr) in rules.canonical_correlations() {
        check(
            &file.path,
            &corr.title,
            (&corr.id, &corr.name, &corr.title),
            rsigma_parser::correlation_exemplars(corr),
        );
    }
    Ok(report)
}
