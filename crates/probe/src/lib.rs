//! Synthetic login probes (`mfascope probe`): scripted 2FA login flows against a real server —
//! the reference verifier, privacyIDEA or Keycloak — with per-check timings, verdicts against thresholds
//! (success ratio, p95 of the second-factor step), JUnit and JSON reports, and the observed
//! steps as canonical events (source `probe`) for the SLI pipeline. Nothing secret (passwords,
//! codes, tokens, OTP secrets) is ever put in a report, an event or a message.

pub mod client;
pub mod config;
mod keycloak;
mod otp_util;
mod privacyidea;
mod reference;
pub mod report;

use std::time::{Duration, Instant};

use client::Http;
use config::{Check, ProbeConfig, TargetKind};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_verifier::token::event_id;

/// Why the probe cannot run at all (check failures are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The config or a secret it names.
    #[error("probe config: {0}")]
    Config(String),
    /// A report file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// One run of one check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckRun {
    /// The check.
    pub check: &'static str,
    /// Iteration (1-based).
    pub iteration: u32,
    /// Whether it behaved as expected.
    pub passed: bool,
    /// Wall time of the whole check (ms).
    pub took_ms: f64,
    /// Round trip of its main second-factor step (ms), when it had one.
    pub verify_ms: Option<f64>,
    /// Each request: (step, ms).
    pub steps: Vec<(String, f64)>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Collects the steps and events of the check running now.
pub struct Recorder {
    target: String,
    check: &'static str,
    steps: Vec<(String, f64)>,
    verify: Option<Duration>,
    /// Every event so far.
    pub events: Vec<Event<'static>>,
}

impl Recorder {
    fn new(target: &str) -> Recorder {
        Recorder {
            target: target.into(),
            check: "",
            steps: Vec::new(),
            verify: None,
            events: Vec::new(),
        }
    }

    /// Note a request of the current check.
    pub fn step(&mut self, name: &str, took: Duration) {
        self.steps
            .push((name.to_string(), took.as_secs_f64() * 1000.0));
    }

    /// Note the check's main second-factor step (its latency is what thresholds look at).
    pub fn verify_step(&mut self, took: Duration) {
        self.verify = Some(took);
    }

    /// Emit a canonical event for what the server answered.
    pub fn event(
        &mut self,
        user: &str,
        what: (Action, Factor, Outcome),
        reason: Option<&str>,
        took: Duration,
    ) {
        let mut e = Event::new(
            Source::Probe,
            event_id(),
            chrono::Utc::now().timestamp_millis(),
            user.to_string(),
            format!("probe.{}", self.check),
            what,
        );
        e.reason = reason.map(|r| r.to_string().into());
        e.latency_ms = Some(took.as_millis().min(u32::MAX as u128) as u32);
        e.app = Some(self.target.clone().into());
        self.events.push(e);
    }
}

/// A probed server: per-iteration setup, the checks, cleanup.
trait Target {
    /// Prepare an iteration (e.g. provision throw-away users); nothing by default.
    fn begin(&mut self, _checks: &[Check], _rec: &mut Recorder) -> Result<(), String> {
        Ok(())
    }
    /// Run one check: `Err` says what went wrong.
    fn run(&mut self, check: Check, rec: &mut Recorder) -> Result<(), String>;
    /// Clean up after an iteration (best effort); nothing by default.
    fn end(&mut self, _rec: &mut Recorder) {}
}

/// How to probe.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// The config.
    pub config: ProbeConfig,
    /// Base URL (overrides the config's).
    pub target: Option<String>,
    /// Iterations of every check.
    pub count: u32,
    /// Required share of passing check runs (0–1).
    pub min_success: f64,
    /// Largest acceptable p95 of the second-factor step (ms).
    pub max_p95_ms: Option<f64>,
}

/// Everything a probe run found.
#[derive(Clone, Debug)]
pub struct ProbeRun {
    /// The options.
    pub options: ProbeOptions,
    /// Base URL probed.
    pub url: String,
    /// Every check run.
    pub runs: Vec<CheckRun>,
    /// The probe's events.
    pub events: Vec<Event<'static>>,
    /// Wall time.
    pub took: Duration,
}

/// Run the configured checks `count` times.
pub fn run(options: ProbeOptions) -> Result<ProbeRun, ProbeError> {
    let c = &options.config;
    let url = options
        .target
        .clone()
        .or_else(|| c.url.clone())
        .ok_or_else(|| ProbeError::Config("no target: give --target URL or url = …".into()))?;
    let http = Http::new(&url, c.timeout)?;
    let mut target: Box<dyn Target> = match c.kind {
        TargetKind::Mfascope => Box::new(reference::Reference::new(http, c)?),
        TargetKind::Privacyidea => Box::new(privacyidea::Privacyidea::new(http, c)?),
        TargetKind::Keycloak => Box::new(keycloak::Keycloak::new(http, c)?),
    };
    let checks = c.checks();
    let started = Instant::now();
    let mut rec = Recorder::new(&url);
    let mut runs = Vec::new();
    for iteration in 1..=options.count.max(1) {
        rec.check = "setup";
        let setup = target.begin(&checks, &mut rec);
        for &check in &checks {
            rec.check = check.as_str();
            rec.steps.clear();
            rec.verify = None;
            let t = Instant::now();
            let outcome = match &setup {
                Ok(()) => target.run(check, &mut rec),
                Err(e) => Err(format!("setup failed: {e}")),
            };
            runs.push(CheckRun {
                check: check.as_str(),
                iteration,
                passed: outcome.is_ok(),
                took_ms: t.elapsed().as_secs_f64() * 1000.0,
                verify_ms: rec.verify.map(|d| d.as_secs_f64() * 1000.0),
                steps: std::mem::take(&mut rec.steps),
                message: outcome.err(),
            });
        }
        rec.check = "cleanup";
        target.end(&mut rec);
    }
    Ok(ProbeRun {
        url,
        runs,
        events: rec.events,
        took: started.elapsed(),
        options,
    })
}

/// `Err(message)` unless `got` is `status` with error code `code` (if given).
pub(crate) fn expect(
    step: &str,
    got: &client::Answer,
    status: u16,
    code: Option<&str>,
) -> Result<(), String> {
    let code_ok = code.is_none_or(|c| got.str("error") == Some(c));
    if got.status == status && code_ok {
        return Ok(());
    }
    let want = match code {
        Some(c) => format!("{status} {c}"),
        None => status.to_string(),
    };
    Err(format!("{step}: expected {want}, got {}", got.describe()))
}

/// Nearest-rank percentile of `values` (ms), `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 95.0), None);
    }
}
