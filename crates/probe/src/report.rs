//! What a probe run says: the verdict against the thresholds, a JSON summary, a table for
//! people, JUnit XML (one testcase per check) and the events as canonical NDJSON.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::{Value, json};

use super::{CheckRun, ProbeError, ProbeRun, percentile};

/// One check over all iterations.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckSummary {
    /// Check name.
    pub check: &'static str,
    /// How often the check ran.
    pub runs: usize,
    /// Runs that passed.
    pub passed: usize,
    /// Median wall time (ms).
    pub p50_ms: f64,
    /// p95 wall time (ms).
    pub p95_ms: f64,
    /// p95 of the second-factor step (ms), when the check has one.
    pub verify_p95_ms: Option<f64>,
    /// `#iteration: message` of each failed run.
    pub failures: Vec<String>,
}

/// The verdict.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    /// Passed runs / runs.
    pub success_rate: f64,
    /// p95 of every second-factor step (ms).
    pub verify_p95_ms: Option<f64>,
    /// Whether the thresholds hold.
    pub ok: bool,
    /// Why not.
    pub violations: Vec<String>,
}

impl ProbeRun {
    /// Per-check summaries, in the configured order.
    pub fn checks(&self) -> Vec<CheckSummary> {
        let mut order: Vec<&'static str> = Vec::new();
        for r in &self.runs {
            if !order.contains(&r.check) {
                order.push(r.check);
            }
        }
        order
            .into_iter()
            .map(|name| {
                let runs: Vec<&CheckRun> = self.runs.iter().filter(|r| r.check == name).collect();
                let took: Vec<f64> = runs.iter().map(|r| r.took_ms).collect();
                let verify: Vec<f64> = runs.iter().filter_map(|r| r.verify_ms).collect();
                CheckSummary {
                    check: name,
                    runs: runs.len(),
                    passed: runs.iter().filter(|r| r.passed).count(),
                    p50_ms: percentile(&took, 50.0).unwrap_or(0.0),
                    p95_ms: percentile(&took, 95.0).unwrap_or(0.0),
                    verify_p95_ms: percentile(&verify, 95.0),
                    failures: runs
                        .iter()
                        .filter_map(|r| {
                            r.message.as_ref().map(|m| format!("#{}: {m}", r.iteration))
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Thresholds applied.
    pub fn verdict(&self) -> Verdict {
        let passed = self.runs.iter().filter(|r| r.passed).count();
        let success_rate = if self.runs.is_empty() {
            0.0
        } else {
            passed as f64 / self.runs.len() as f64
        };
        let verify: Vec<f64> = self.runs.iter().filter_map(|r| r.verify_ms).collect();
        let verify_p95_ms = percentile(&verify, 95.0);
        let mut violations = Vec::new();
        if self.runs.is_empty() {
            violations.push("no check ran".to_string());
        }
        let min = self.options.min_success;
        if success_rate < min {
            violations.push(format!(
                "success rate {:.1} % is below --min-success {:.1} % ({passed}/{} checks passed)",
                success_rate * 100.0,
                min * 100.0,
                self.runs.len()
            ));
        }
        if let (Some(max), Some(p95)) = (self.options.max_p95_ms, verify_p95_ms)
            && p95 > max
        {
            violations.push(format!(
                "second-factor p95 {p95:.1} ms is above --max-p95 {max} ms"
            ));
        }
        Verdict {
            success_rate,
            verify_p95_ms,
            ok: violations.is_empty(),
            violations,
        }
    }

    /// The JSON summary.
    pub fn summary(&self) -> Value {
        json!({
            "target": self.url,
            "kind": self.options.config.kind.as_ref(),
            "iterations": self.options.count.max(1),
            "took_s": self.took.as_secs_f64(),
            "thresholds": {
                "min_success": self.options.min_success,
                "max_p95_ms": self.options.max_p95_ms,
            },
            "verdict": self.verdict(),
            "checks": self.checks(),
            "runs": self.runs,
            "events": self.events.len(),
        })
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "probe {} ({})\n",
            self.url,
            self.options.config.kind.as_ref()
        );
        out += &format!(
            "{:<26} {:>5} {:>7} {:>9} {:>9} {:>12}\n",
            "check", "runs", "passed", "p50 ms", "p95 ms", "verify p95"
        );
        for c in self.checks() {
            let verify = c
                .verify_p95_ms
                .map_or_else(|| "-".to_string(), |v| format!("{v:.1} ms"));
            out += &format!(
                "{:<26} {:>5} {:>7} {:>9.1} {:>9.1} {:>12}\n",
                c.check, c.runs, c.passed, c.p50_ms, c.p95_ms, verify
            );
            for f in &c.failures {
                out += &format!("  FAIL {f}\n");
            }
        }
        let v = self.verdict();
        let p95 = v
            .verify_p95_ms
            .map_or_else(|| "-".to_string(), |p| format!("{p:.1} ms"));
        out += &format!(
            "success {:.1} %, second-factor p95 {p95}, {} events → {}\n",
            v.success_rate * 100.0,
            self.events.len(),
            if v.ok { "PASS" } else { "FAIL" }
        );
        for why in &v.violations {
            out += &format!("  {why}\n");
        }
        out
    }

    /// JUnit XML: one testcase per check (its iterations aggregated).
    pub fn junit(&self) -> String {
        let kind = self.options.config.kind.as_ref();
        let mut suite = TestSuite::new(format!("mfascope probe {kind} {}", self.url));
        for c in self.checks() {
            let status = if c.failures.is_empty() {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("{}/{} runs failed", c.runs - c.passed, c.runs));
                s.set_description(c.failures.join("\n"));
                s
            };
            let mut case = TestCase::new(c.check, status);
            case.set_classname(format!("mfascope.probe.{kind}"));
            let total: f64 = self
                .runs
                .iter()
                .filter(|r| r.check == c.check)
                .map(|r| r.took_ms)
                .sum();
            case.set_time(Duration::from_secs_f64(total / 1000.0));
            case.add_property(("p50_ms", format!("{:.1}", c.p50_ms).as_str()));
            case.add_property(("p95_ms", format!("{:.1}", c.p95_ms).as_str()));
            if let Some(v) = c.verify_p95_ms {
                case.add_property(("verify_p95_ms", format!("{v:.1}").as_str()));
            }
            suite.add_test_case(case);
        }
        suite.set_time(self.took);
        let mut report = Report::new("mfascope-probe");
        report.add_test_suite(suite);
        report
            .to_string()
            .expect("a JUnit report of plain strings serializes")
    }

    /// Write the events as canonical NDJSON to `path`.
    pub fn write_events(&self, path: &Path) -> Result<(), ProbeError> {
        let io = |source| ProbeError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        for e in &self.events {
            serde_json::to_writer(&mut w, e).expect("events serialize");
            w.write_all(b"\n").map_err(io)?;
        }
        w.flush().map_err(io)
    }
}
