//! SLO spec files in OpenSLO v1 shape (`kind: SLO` and `kind: AlertPolicy` documents in YAML),
//! parsed into the typed objectives the evaluator uses. `docs/slo.md` documents the subset and
//! the mfascope extensions (`shortWindow`, `budgetconsumption`, `badSliceIfAny`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use mfascope_core::time::parse_span_ms;
use mfascope_sli::live::{Counter, Measure, Thresholds};

/// Length of the window the shipped alert policies are written for (Google SRE Workbook).
pub const REFERENCE_WINDOW_MS: i64 = 30 * 86_400_000;

/// Spec problems; each names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Unreadable file or directory.
    #[error("SLO specs {path}: {reason}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// What is wrong, in words that say what to fix.
        reason: String,
    },
    /// Invalid content.
    #[error("SLO spec {path}: {what}: {reason}")]
    Invalid {
        /// The file being read.
        path: PathBuf,
        /// Document or field.
        what: String,
        /// Why, and what is accepted.
        reason: String,
    },
}

/// How the error budget is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budgeting {
    /// Good events / all events.
    Occurrences,
    /// Good time slices / time slices with data.
    Timeslices,
}

/// What the SLO measures, resolved against the live aggregator's per-minute counters.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Indicator {
    /// good / total counters.
    Ratio {
        /// Good events.
        good: &'static str,
        /// All events.
        total: &'static str,
        /// A slice with any of this counter is bad (Timeslices only).
        bad_slice_if_any: Option<&'static str>,
    },
    /// Share of measurements strictly below a threshold.
    Threshold {
        /// Measured quantity.
        measure: &'static str,
        /// Strict upper bound of a good measurement (`op: lt`; `lte` adds one).
        below: u64,
    },
}

impl Indicator {
    /// Counter names resolved to counters (validated at parse time).
    pub fn ratio_counters(&self) -> Option<(Counter, Counter, Option<Counter>)> {
        match self {
            Indicator::Ratio {
                good,
                total,
                bad_slice_if_any,
            } => Some((
                good.parse().ok()?,
                total.parse().ok()?,
                bad_slice_if_any.and_then(|c| c.parse().ok()),
            )),
            Indicator::Threshold { .. } => None,
        }
    }

    /// Measure and bound of a threshold indicator.
    pub fn threshold(&self) -> Option<(Measure, u64)> {
        match self {
            Indicator::Threshold { measure, below } => Some((measure.parse().ok()?, *below)),
            Indicator::Ratio { .. } => None,
        }
    }

    /// The counter of all measurements of a threshold indicator.
    pub fn threshold_total(measure: Measure) -> Counter {
        match measure {
            Measure::LatencyMs => Counter::LatencyMeasured,
            Measure::PathLatencyMs => Counter::PathLatencyMeasured,
            Measure::RevokeExposureMs => Counter::Revocations,
        }
    }
}

/// One alert condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    /// Condition name (`metadata.name`).
    pub name: String,
    /// `page` or `ticket` (free text, reported as is).
    pub severity: String,
    /// What triggers it.
    pub rule: Rule,
    /// How long the rule must hold before the alert fires (pending until then).
    pub alert_after_ms: i64,
    /// How long a firing alert keeps firing after the rule stops holding (hysteresis, like
    /// Prometheus `keep_firing_for`): a dip shorter than this continues the same episode.
    /// `keepFiringFor`, default the rule's short window scaled to the SLO (0 without one).
    pub keep_firing_for_ms: i64,
}

/// Alert trigger.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// Burn rate over the long window (and the short window, when given) at or above
    /// `threshold`. Windows are written for a 30-day SLO and scaled to the SLO's window.
    BurnRate {
        /// Burn-rate multiple.
        threshold: f64,
        /// Long window (ms, as written).
        long_ms: i64,
        /// Short window (ms, as written).
        short_ms: Option<i64>,
    },
    /// At least `fraction` of the whole error budget consumed within the window.
    BudgetConsumption {
        /// Budget share (0–1).
        fraction: f64,
        /// Window (ms, as written).
        window_ms: i64,
    },
}

/// A parsed SLO.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slo {
    /// Id (`metadata.name`).
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// What it promises.
    pub description: String,
    /// Service it belongs to.
    pub service: String,
    /// What is measured.
    pub indicator: Indicator,
    /// Rolling window (ms).
    pub window_ms: i64,
    /// Budgeting method.
    pub budgeting: Budgeting,
    /// Objective (0–1).
    pub target: f64,
    /// Timeslices: a slice is good when its ratio reaches this.
    pub time_slice_target: Option<f64>,
    /// Alert conditions from the referenced policies.
    pub conditions: Vec<Condition>,
    /// Runbook for its alerts (`metadata.annotations.runbook_url`), carried into every
    /// payload and the dashboard.
    pub runbook_url: Option<String>,
    /// Maintenance windows that apply to it ([`crate::maintenance::attach`]).
    pub maintenance: Vec<crate::maintenance::Window>,
    /// File it came from.
    pub path: PathBuf,
}

impl Slo {
    /// Scale a window written for 30 days to this SLO's window.
    pub fn scale(&self, ms: i64) -> i64 {
        ((ms as i128 * self.window_ms as i128) / REFERENCE_WINDOW_MS as i128).max(60_000) as i64
    }

    /// Longest window any alert of this SLO looks back over (scaled).
    pub fn longest_alert_window(&self) -> i64 {
        self.conditions
            .iter()
            .map(|c| match c.rule {
                Rule::BurnRate { long_ms, .. } => self.scale(long_ms),
                Rule::BudgetConsumption { window_ms, .. } => self.scale(window_ms),
            })
            .max()
            .unwrap_or(0)
    }
}

/// Thresholds the live aggregator must count for `slos`.
pub fn thresholds(slos: &[Slo]) -> Thresholds {
    let mut t = Thresholds::default();
    for s in slos {
        if let Some((measure, below)) = s.indicator.threshold() {
            t.add(measure, below);
        }
    }
    t
}

// ---- OpenSLO document shapes -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: serde_json::Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    /// OpenSLO annotations; `runbook_url` names the SLO's runbook.
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SloDoc {
    #[serde(default)]
    description: String,
    #[serde(default)]
    service: String,
    indicator: InlineSli,
    time_window: Vec<TimeWindow>,
    budgeting_method: String,
    objectives: Vec<Objective>,
    #[serde(default)]
    alert_policies: Vec<AlertPolicyRef>,
}

#[derive(Deserialize)]
struct InlineSli {
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
    spec: SliSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SliSpec {
    #[serde(default)]
    ratio_metric: Option<RatioMetric>,
    #[serde(default)]
    threshold_metric: Option<MetricRef>,
}

#[derive(Deserialize)]
struct RatioMetric {
    good: MetricRef,
    total: MetricRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricRef {
    metric_source: MetricSource,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricSource {
    #[serde(rename = "type")]
    kind: String,
    spec: SourceSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourceSpec {
    #[serde(default)]
    counter: Option<String>,
    #[serde(default)]
    measure: Option<String>,
    #[serde(default)]
    bad_slice_if_any: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeWindow {
    duration: String,
    #[serde(default = "yes")]
    is_rolling: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Objective {
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    target: f64,
    #[serde(default)]
    time_slice_target: Option<f64>,
    #[serde(default)]
    time_slice_window: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlertPolicyRef {
    alert_policy_ref: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyDoc {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    conditions: Vec<ConditionDoc>,
}

#[derive(Deserialize)]
struct ConditionDoc {
    metadata: Metadata,
    spec: ConditionSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionSpec {
    #[serde(default)]
    severity: String,
    condition: ConditionRule,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConditionRule {
    kind: String,
    #[serde(default)]
    op: Option<String>,
    threshold: f64,
    lookback_window: String,
    #[serde(default)]
    short_window: Option<String>,
    #[serde(default)]
    alert_after: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
}

// ---- loading -----------------------------------------------------------------------------

/// The shipped specs, compiled in.
const BUILTIN: (&str, &str) = (
    "slos/default.yaml",
    include_str!("../../../slos/default.yaml"),
);

/// SLOs to evaluate: `path` (a file or a directory of `*.yaml`/`*.yml`) when given, else
/// `./slos` when it exists, else the shipped defaults.
pub fn resolve_slos(path: Option<&Path>) -> Result<Vec<Slo>, SpecError> {
    let files: Vec<(PathBuf, String)> = match path {
        Some(p) => read_specs(p)?,
        None if Path::new("slos").is_dir() => read_specs(Path::new("slos"))?,
        None => vec![(PathBuf::from(BUILTIN.0), BUILTIN.1.to_string())],
    };
    parse_files(&files)
}

fn read_specs(path: &Path) -> Result<Vec<(PathBuf, String)>, SpecError> {
    let io = |p: &Path, e: std::io::Error| SpecError::Io {
        path: p.to_path_buf(),
        reason: e.to_string(),
    };
    let mut paths = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io(path, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    if paths.is_empty() {
        return Err(SpecError::Io {
            path: path.to_path_buf(),
            reason: "no .yaml files".into(),
        });
    }
    paths
        .drain(..)
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
            Ok((p, text))
        })
        .collect()
}

/// Parse spec texts (all files together, so an SLO may reference a policy in another file).
pub fn parse_files(files: &[(PathBuf, String)]) -> Result<Vec<Slo>, SpecError> {
    let mut slos: Vec<(PathBuf, Metadata, SloDoc)> = Vec::new();
    let mut policies: HashMap<String, Vec<Condition>> = HashMap::new();
    for (path, text) in files {
        let invalid = |what: &str, reason: String| SpecError::Invalid {
            path: path.clone(),
            what: what.to_string(),
            reason,
        };
        let docs: Vec<Doc> =
            serde_saphyr::from_multiple(text).map_err(|e| invalid("YAML", e.to_string()))?;
        for doc in docs {
            let what = format!("{} {:?}", doc.kind, doc.metadata.name);
            if doc.api_version != "openslo/v1" {
                return Err(invalid(
                    &what,
                    format!("apiVersion {:?}: only openslo/v1 is read", doc.api_version),
                ));
            }
            match doc.kind.as_str() {
                "SLO" => {
                    let spec: SloDoc = typed(doc.spec).map_err(|e| invalid(&what, e))?;
                    slos.push((path.clone(), doc.metadata, spec));
                }
                "AlertPolicy" => {
                    let spec: PolicyDoc = typed(doc.spec).map_err(|e| invalid(&what, e))?;
                    let conditions = spec
                        .conditions
                        .into_iter()
                        .map(|c| condition(c).map_err(|e| invalid(&what, e)))
                        .collect::<Result<_, _>>()?;
                    policies.insert(doc.metadata.name, conditions);
                }
                other => {
                    return Err(invalid(
                        &what,
                        format!("kind {other:?}: use SLO or AlertPolicy"),
                    ));
                }
            }
        }
    }
    slos.into_iter()
        .map(|(path, meta, doc)| {
            let what = format!("SLO {:?}", meta.name);
            slo(meta, doc, &policies, path.clone()).map_err(|reason| SpecError::Invalid {
                path,
                what,
                reason,
            })
        })
        .collect()
}

fn typed<T: for<'de> Deserialize<'de>>(v: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| format!("spec.{}: {}", e.path(), e.inner()))
}

fn span(field: &str, s: &str) -> Result<i64, String> {
    parse_span_ms(s)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("{field} {s:?}: use a duration such as 5m, 1h, 30d"))
}

fn condition(c: ConditionDoc) -> Result<Condition, String> {
    let r = c.spec.condition;
    if let Some(op) = &r.op
        && op != "gte"
    {
        return Err(format!(
            "condition {:?}: op {op:?}: only gte is supported",
            c.metadata.name
        ));
    }
    let short = r
        .short_window
        .as_deref()
        .map(|s| span("shortWindow", s))
        .transpose()?;
    // Unscaled, like the windows: `Slo::scale` applies when evaluating.
    let default_keep = short.unwrap_or(0);
    let rule = match r.kind.as_str() {
        "burnrate" => Rule::BurnRate {
            threshold: r.threshold,
            long_ms: span("lookbackWindow", &r.lookback_window)?,
            short_ms: short,
        },
        "budgetconsumption" if (0.0..=1.0).contains(&r.threshold) => Rule::BudgetConsumption {
            fraction: r.threshold,
            window_ms: span("lookbackWindow", &r.lookback_window)?,
        },
        other => {
            return Err(format!(
                "condition {:?}: kind {other:?}: use burnrate, or budgetconsumption with a \
                 threshold between 0 and 1",
                c.metadata.name
            ));
        }
    };
    Ok(Condition {
        name: c.metadata.name,
        severity: if c.spec.severity.is_empty() {
            "ticket".into()
        } else {
            c.spec.severity
        },
        rule,
        alert_after_ms: optional_span("alertAfter", r.alert_after.as_deref())?.unwrap_or(0),
        keep_firing_for_ms: optional_span("keepFiringFor", r.keep_firing_for.as_deref())?
            .unwrap_or(default_keep),
    })
}

/// A span field that may be absent (`5m`, `1h`, `0m`).
fn optional_span(field: &str, value: Option<&str>) -> Result<Option<i64>, String> {
    value
        .map(|s| parse_span_ms(s).ok_or_else(|| format!("{field} {s:?}: use e.g. 5m")))
        .transpose()
}

fn counter_name(field: &str, name: Option<&str>) -> Result<&'static str, String> {
    let name = name.ok_or_else(|| format!("{field}: metricSource.spec.counter is required"))?;
    let c: Counter = name.parse().map_err(|_| {
        format!(
            "{field}: unknown counter {name:?}; use one of {}",
            <Counter as strum::VariantNames>::VARIANTS.join(", ")
        )
    })?;
    Ok(c.into())
}

fn source_spec<'a>(field: &str, m: &'a MetricRef) -> Result<&'a SourceSpec, String> {
    if m.metric_source.kind != "mfascope" {
        return Err(format!(
            "{field}: metricSource.type {:?}: only `mfascope` (the canonical event counters) is \
             evaluated",
            m.metric_source.kind
        ));
    }
    Ok(&m.metric_source.spec)
}

fn slo(
    meta: Metadata,
    doc: SloDoc,
    policies: &HashMap<String, Vec<Condition>>,
    path: PathBuf,
) -> Result<Slo, String> {
    let [window] = doc.time_window.as_slice() else {
        return Err("spec.timeWindow: give exactly one window".into());
    };
    if !window.is_rolling {
        return Err("spec.timeWindow: only rolling windows (isRolling: true) are evaluated".into());
    }
    let window_ms = span("spec.timeWindow.duration", &window.duration)?;
    let budgeting = match doc.budgeting_method.as_str() {
        "Occurrences" => Budgeting::Occurrences,
        "Timeslices" => Budgeting::Timeslices,
        other => {
            return Err(format!(
                "spec.budgetingMethod {other:?}: use Occurrences or Timeslices"
            ));
        }
    };
    let [objective] = doc.objectives.as_slice() else {
        return Err("spec.objectives: give exactly one objective".into());
    };
    if !(0.0 < objective.target && objective.target < 1.0) {
        return Err(format!(
            "spec.objectives[0].target {}: must be between 0 and 1 (exclusive)",
            objective.target
        ));
    }
    if budgeting == Budgeting::Timeslices {
        match (&objective.time_slice_target, &objective.time_slice_window) {
            (Some(t), Some(w)) if (0.0..=1.0).contains(t) && parse_span_ms(w) == Some(60_000) => {}
            _ => {
                return Err(
                    "spec.objectives[0]: Timeslices need timeSliceTarget (0-1) and \
                            timeSliceWindow: 1m"
                        .into(),
                );
            }
        }
    }
    let indicator = match (
        &doc.indicator.spec.ratio_metric,
        &doc.indicator.spec.threshold_metric,
    ) {
        (Some(r), None) => {
            let good = source_spec("ratioMetric.good", &r.good)?;
            let total = source_spec("ratioMetric.total", &r.total)?;
            Indicator::Ratio {
                good: counter_name("ratioMetric.good", good.counter.as_deref())?,
                total: counter_name("ratioMetric.total", total.counter.as_deref())?,
                bad_slice_if_any: total
                    .bad_slice_if_any
                    .as_deref()
                    .map(|c| counter_name("ratioMetric.total.badSliceIfAny", Some(c)))
                    .transpose()?,
            }
        }
        (None, Some(t)) => {
            let spec = source_spec("thresholdMetric", t)?;
            let measure: Measure = spec
                .measure
                .as_deref()
                .unwrap_or_default()
                .parse()
                .map_err(|_| {
                    format!(
                        "thresholdMetric: metricSource.spec.measure must be one of {}",
                        <Measure as strum::VariantNames>::VARIANTS.join(", ")
                    )
                })?;
            let value = objective
                .value
                .filter(|v| *v >= 0.0)
                .ok_or("spec.objectives[0].value: a threshold SLO needs a value (ms)")?
                as u64;
            let below = match objective.op.as_deref() {
                Some("lt") => value,
                Some("lte") => value + 1,
                _ => return Err("spec.objectives[0].op: use lt or lte".into()),
            };
            if budgeting != Budgeting::Occurrences {
                return Err("threshold SLOs use budgetingMethod: Occurrences".into());
            }
            Indicator::Threshold {
                measure: measure.into(),
                below,
            }
        }
        _ => {
            return Err(
                "spec.indicator.spec: give exactly one of ratioMetric or thresholdMetric".into(),
            );
        }
    };
    let mut conditions = Vec::new();
    for r in &doc.alert_policies {
        let policy = policies.get(&r.alert_policy_ref).ok_or_else(|| {
            format!(
                "spec.alertPolicies: no AlertPolicy named {:?} in the spec files",
                r.alert_policy_ref
            )
        })?;
        conditions.extend(policy.iter().cloned());
    }
    let runbook_url = meta.annotations.get("runbook_url").cloned();
    Ok(Slo {
        runbook_url,
        display_name: meta.display_name.unwrap_or_else(|| meta.name.clone()),
        name: meta.name,
        description: doc.description,
        service: doc.service,
        indicator,
        window_ms,
        budgeting,
        target: objective.target,
        time_slice_target: objective.time_slice_target,
        conditions,
        maintenance: Vec::new(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_specs_parse() {
        let slos = resolve_slos(Some(Path::new(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/slos"
        ))))
        .unwrap();
        let names: Vec<&str> = slos.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mfa-success-rate",
                "mfa-latency-p95",
                "mfa-availability",
                "time-to-revoke",
                "rate-limit-rejections"
            ]
        );
        let success = &slos[0];
        assert_eq!(success.target, 0.98);
        assert_eq!(success.window_ms, REFERENCE_WINDOW_MS);
        assert_eq!(success.conditions.len(), 6);
        assert_eq!(
            success.conditions[0].rule,
            Rule::BurnRate {
                threshold: 14.4,
                long_ms: 3_600_000,
                short_ms: Some(300_000)
            }
        );
        assert_eq!(
            slos[1].indicator,
            Indicator::Threshold {
                measure: "path_latency_ms",
                below: 2000
            }
        );
        assert_eq!(slos[2].budgeting, Budgeting::Timeslices);
        assert_eq!(
            thresholds(&slos).0,
            [
                (Measure::PathLatencyMs, 2000),
                (Measure::RevokeExposureMs, 300_000)
            ]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |text: &str| {
            parse_files(&[(PathBuf::from("x.yaml"), text.to_string())])
                .unwrap_err()
                .to_string()
        };
        let base = "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: s}\nspec:\n  indicator:\n    spec:\n      ratioMetric:\n        good: {metricSource: {type: mfascope, spec: {counter: mfa_successes}}}\n        total: {metricSource: {type: mfascope, spec: {counter: COUNTER}}}\n  timeWindow: [{duration: 30d, isRolling: true}]\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.98}]\n";
        assert!(
            bad(&base.replace("COUNTER", "nope")).contains("unknown counter \"nope\""),
            "{}",
            bad(&base.replace("COUNTER", "nope"))
        );
        let e = bad(&base
            .replace("COUNTER", "mfa_attempts")
            .replace("30d", "thirty"));
        assert!(e.contains("x.yaml") && e.contains("timeWindow"), "{e}");
        let e = bad(&base.replace("COUNTER", "mfa_attempts").replace(
            "objectives: [{target: 0.98}]",
            "objectives: [{target: 0.98}]\n  alertPolicies: [{alertPolicyRef: missing}]",
        ));
        assert!(e.contains("no AlertPolicy named \"missing\""), "{e}");
        let e = bad("apiVersion: openslo/v2\nkind: SLO\nmetadata: {name: s}\nspec: {}\n");
        assert!(e.contains("only openslo/v1"), "{e}");
        assert!(
            parse_files(&[(
                PathBuf::from("x.yaml"),
                base.replace("COUNTER", "mfa_attempts")
            )])
            .is_ok()
        );
    }
}
