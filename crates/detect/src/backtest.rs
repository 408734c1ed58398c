//! `mfascope rules backtest`: every rule of a pack against its labelled evidence — its
//! `rsigma.exemplars` and a small log in the samples folder (`<rule name>.ndjson`: canonical
//! events, each labelled `"label": "attack"` or `"label": "benign"`) — scored as true
//! positives, false positives and misses through the real [`Detector`], so a rule change that
//! breaks a threshold fails CI naming the rule. It reads the samples and never writes.
//!
//! Scoring a sample log: a finding of the sample's rule is a true positive when its evidence
//! holds an attack event, else a false positive; a finding of any other rule that holds only
//! benign events is a false positive of that rule (benign means nothing should fire); the
//! sample's rule finding no attack at all is a miss.
//!
//! ```
//! use mfascope_detect::{RuleSet, backtest};
//!
//! let rules = RuleSet::builtin();
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(
//!     dir.path().join("mfa_bypass_used.ndjson"),
//!     concat!(
//!         r#"{"label":"attack","event_id":"a1","time":"2026-01-01T10:00:00Z","source":"canonical","user":"mia","action":"mfa_verify","factor":"bypass_code","outcome":"success","vendor_event_type":"t"}"#, "\n",
//!         r#"{"label":"benign","event_id":"b1","time":"2026-01-01T10:05:00Z","source":"canonical","user":"mia","action":"mfa_verify","factor":"bypass_code","outcome":"failure","vendor_event_type":"t"}"#, "\n",
//!     ),
//! )
//! .unwrap();
//! let report = backtest::run(&rules, Some(dir.path()), false).unwrap();
//! let bypass = report.rules.iter().find(|r| r.rule == "mfa_bypass_used").unwrap();
//! assert_eq!((bypass.sample_true_positives, bypass.false_positives, bypass.missed), (1, 0, 0));
//! assert!(report.passed());
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::rules::{RuleFile, is_canonical};
use super::sequel::result_key;
use super::{DetectConfig, DetectError, Detector, RuleSet, selftest};
use mfascope_core::event::{CanonicalBatch, Event, EventBatchBuilder};
use mfascope_normalize::{LeafSink, LogFormat, Normalizer, Reject};

/// How one rule did.
#[derive(Clone, Debug, Serialize)]
pub struct RuleScore {
    /// Rule `name` (the title when it has none): what samples are named after.
    pub rule: String,
    /// Rule title.
    pub title: String,
    /// Rule file.
    pub file: String,
    /// Whether the rule's matches are findings (base rules only feed correlations).
    pub produces_findings: bool,
    /// Exemplar cases run, and how many failed.
    pub exemplars: usize,
    /// Exemplar cases that failed.
    pub exemplars_failed: usize,
    /// The sample log, when there is one.
    pub sample: Option<String>,
    /// `match` exemplars that fired plus sample findings on attack events.
    pub true_positives: u64,
    /// … of them from the sample log.
    pub sample_true_positives: u64,
    /// `no-match` exemplars that fired plus findings on benign sample events only.
    pub false_positives: u64,
    /// `match` exemplars that did not fire plus sample attacks the rule did not find.
    pub missed: u64,
    /// Why the rule fails (empty when it passes).
    pub failures: Vec<String>,
}

impl RuleScore {
    /// True when every exemplar and sample behaved as labelled.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The backtest of a pack.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BacktestReport {
    /// One score per rule, in pack order.
    pub rules: Vec<RuleScore>,
    /// Sample logs read.
    pub samples: Vec<String>,
}

impl BacktestReport {
    /// True when every rule passed.
    pub fn passed(&self) -> bool {
        self.rules.iter().all(RuleScore::passed)
    }

    /// Rules that failed.
    pub fn failed(&self) -> impl Iterator<Item = &RuleScore> {
        self.rules.iter().filter(|r| !r.passed())
    }
}

/// Backtest `rules`: their exemplars, and the sample logs in `samples` (`<rule name>.ndjson`).
/// With `require_samples`, a canonical rule that produces findings and has no sample log fails.
pub fn run(
    rules: &RuleSet,
    samples: Option<&Path>,
    require_samples: bool,
) -> Result<BacktestReport, DetectError> {
    let mut report = BacktestReport {
        rules: scores(rules),
        samples: vec![],
    };
    let index: BTreeMap<String, usize> = report
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.rule.clone(), i))
        .collect();
    // Exemplars: a `match` case that fired is a true positive, one that did not a miss; a
    // `no-match` case that fired is a false positive.
    let tests = selftest::run(rules)?;
    for case in &tests.cases {
        let Some(score) = report
            .rules
            .iter_mut()
            .find(|r| r.file == case.file && r.title == case.rule)
        else {
            continue;
        };
        score.exemplars += 1;
        let matched = case.expect == "match";
        match (matched, case.passed) {
            (true, true) => score.true_positives += 1,
            (true, false) => score.missed += 1,
            (false, false) => score.false_positives += 1,
            (false, true) => {}
        }
        if !case.passed {
            score.exemplars_failed += 1;
            score.failures.push(format!(
                "exemplar \"{}\" ({}): {}",
                case.case, case.expect, case.detail
            ));
        }
    }
    for path in sample_files(samples)? {
        let display = path.display().to_string();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(&own) = index.get(&stem) else {
            return Err(DetectError::Sample(format!(
                "{display}: names no rule of the pack (a sample is named after the rule's `name`)"
            )));
        };
        let sample = Sample::read(&path)?;
        report.samples.push(display.clone());
        report.rules[own].sample = Some(display.clone());
        let mut detector = Detector::new(rules, DetectConfig::default(), false)?;
        detector.process_sorted(&sample.batch);
        let mut found_attack = false;
        for f in detector.take_findings() {
            let attack = f.evidence.iter().any(|e| sample.attack.contains(e));
            let name = f.rule_name.clone().unwrap_or_else(|| f.rule_title.clone());
            let Some(&i) = index.get(&name) else { continue };
            let score = &mut report.rules[i];
            if i == own && attack {
                score.true_positives += 1;
                score.sample_true_positives += 1;
                found_attack = true;
            } else if !attack {
                score.false_positives += 1;
                score.failures.push(format!(
                    "fires on benign events of {display} ({}: {})",
                    f.group_key,
                    f.evidence.join(", ")
                ));
            }
        }
        if !sample.attack.is_empty() && !found_attack {
            let score = &mut report.rules[own];
            score.missed += 1;
            score
                .failures
                .push(format!("misses the labelled attack in {display}"));
        }
    }
    if require_samples {
        for score in &mut report.rules {
            if score.produces_findings && score.sample.is_none() {
                score
                    .failures
                    .push(format!("no sample log ({}.ndjson)", score.rule));
            }
        }
    }
    Ok(report)
}

/// A score for every canonical rule and correlation of the pack.
fn scores(rules: &RuleSet) -> Vec<RuleScore> {
    let only = super::correlation_only(rules);
    let score = |file: &RuleFile, name: &Option<String>, title: &str, findings: bool| RuleScore {
        rule: name.clone().unwrap_or_else(|| title.to_string()),
        title: title.to_string(),
        file: file.path.clone(),
        produces_findings: findings,
        exemplars: 0,
        exemplars_failed: 0,
        sample: None,
        true_positives: 0,
        sample_true_positives: 0,
        false_positives: 0,
        missed: 0,
        failures: vec![],
    };
    rules
        .rules()
        .filter(|(_, r)| is_canonical(r))
        .map(|(f, r)| {
            let findings = !only.contains(&result_key(&r.id, &r.title));
            score(f, &r.name, &r.title, findings)
        })
        .chain(
            rules
                .canonical_correlations()
                .map(|(f, c)| score(f, &c.name, &c.title, true)),
        )
        .collect()
}

/// The `*.ndjson` files of the samples folder, sorted.
fn sample_files(dir: Option<&Path>) -> Result<Vec<PathBuf>, DetectError> {
    let Some(dir) = dir else {
        return Ok(vec![]);
    };
    let io = |e: std::io::Error| DetectError::Sample(format!("{}: {e}", dir.display()));
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|x| x == "ndjson") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// One sample log: its events in `(time, event_id)` order and the ids labelled `attack`.
struct Sample {
    batch: CanonicalBatch,
    attack: HashSet<String>,
}

impl Sample {
    /// Read `path`; a line without a valid label, or that is not a canonical event, is an
    /// error naming the file and line.
    fn read(path: &Path) -> Result<Sample, DetectError> {
        let display = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| DetectError::Sample(format!("{display}: {e}")))?;
        #[derive(serde::Deserialize)]
        struct Labelled<'a> {
            #[serde(borrow)]
            label: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow)]
            event_id: Option<std::borrow::Cow<'a, str>>,
        }
        let mut sink = Events::default();
        let mut normalizer = Normalizer::new(LogFormat::Canonical);
        let mut attack = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let at = |what: String| DetectError::Sample(format!("{display}:{}: {what}", n + 1));
            if line.trim().is_empty() {
                continue;
            }
            let l: Labelled =
                serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
            match l.label.as_deref() {
                Some("attack") => {
                    attack.insert(l.event_id.unwrap_or_default().into_owned());
                }
                Some("benign") => {}
                other => {
                    return Err(at(format!(
                        "label: {other:?}; every event is labelled \"attack\" or \"benign\""
                    )));
                }
            }
            let before = sink.events.len();
            normalizer.record(line.as_bytes(), &mut sink);
            if let Some(reason) = sink.rejected.take() {
                return Err(at(reason));
            }
            if sink.events.len() != before + 1 {
                return Err(at("not a canonical event".into()));
            }
        }
        let mut builder = EventBatchBuilder::default();
        for e in &sink.events {
            builder.append(e);
        }
        Ok(Sample {
            batch: super::order::sort_by_time(&builder.finish_canonical()),
            attack,
        })
    }
}

/// Collects the events of a sample; the first rejection is kept to be reported.
#[derive(Default)]
struct Events {
    events: Vec<Event<'static>>,
    rejected: Option<String>,
}

impl LeafSink for Events {
    fn event(&mut self, _: usize, _: &[u8], e: Event<'_>) {
        self.events.push(e.into_owned());
    }
    fn ignored(&mut self, _: usize, kind: String) {
        self.rejected = Some(format!("ignored as {kind}"));
    }
    fn dead(&mut self, _: usize, _: &[u8], reject: Reject) {
        self.rejected = Some(reject.reason);
    }
    fn ticket(&mut self, _: usize, _: &[u8], t: mfascope_core::ticket::Ticket) {
        self.rejected = Some(format!("a support ticket ({}), not an event", t.id));
    }
}
