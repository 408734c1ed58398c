//! `mfascope detect` (rules over stored history) and `mfascope rules lint|test|backtest`.

use crate::cli::out::{out, outln};

use anyhow::Context;

use super::sli::{range, runtime};
use super::{DetectArgs, FindingFormat, OutputFormat, RulesArgs, RulesMode};
use crate::detect::finding::write_parquet;
use crate::detect::suppress::SuppressedCount;
use crate::detect::{DetectConfig, DetectCounters, Detector, Finding, RuleSet};
use crate::present::alertmanager;
use crate::present::{findings_text, suppressed_text};
use crate::sli::{Bucket, Engine, Params};

/// Run `rules` over the events of `data` in `[from, to)`, in `(time, event_id)` order.
pub fn detect_history(
    data: &crate::sink::Location,
    from: Option<i64>,
    to: Option<i64>,
    as_of: crate::sli::AsOf,
    rules: &RuleSet,
    config: DetectConfig,
) -> anyhow::Result<(Vec<Finding>, DetectCounters, Vec<SuppressedCount>)> {
    let params = Params::new(from, to, Bucket::Hour, vec![])?.as_of(as_of);
    let mut detector = Detector::new(rules, config, false)?;
    runtime()?.block_on(async {
        let engine = Engine::open(data, &params).await?;
        engine
            .for_each_in_order("detect", crate::event::col::ALL, None, |b| {
                detector.process_sorted(b);
            })
            .await
    })?;
    let (counters, suppressed) = (detector.counters(), detector.suppressed());
    Ok((detector.take_findings(), counters, suppressed))
}

/// `mfascope detect`.
pub fn run_detect(a: DetectArgs) -> anyhow::Result<i32> {
    let (from, to) = range(&a.range.from, &a.range.to)?;
    let rules = a.rules.load()?;
    let (findings, counters, suppressed) = detect_history(
        &a.range.data,
        from,
        to,
        a.range.as_of()?,
        &rules,
        DetectConfig::default(),
    )?;
    if let Some(out) = &a.out {
        let dir = out.join("findings");
        if let Some(path) = write_parquet(&dir, &findings)
            .with_context(|| format!("writing findings under {}", dir.display()))?
        {
            eprintln!("findings: {}", path.display());
        }
    }
    match a.format {
        FindingFormat::Table => out!(
            "{}{}",
            findings_text(&findings, &counters),
            suppressed_text(&suppressed)
        ),
        FindingFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "counters": counters,
                "findings": findings,
                "suppressed": suppressed,
            }))?
        ),
        FindingFormat::Alertmanager => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&alertmanager::findings(&findings))?
            );
        }
    }
    Ok(0)
}

/// `mfascope rules lint|test|backtest`; exit 1 on lint errors, failed tests or a rule that
/// regressed.
pub fn run_rules(a: RulesArgs) -> anyhow::Result<i32> {
    let dir = a.rules.path.clone().or_else(|| {
        let local = std::path::PathBuf::from("rules");
        local.is_dir().then_some(local)
    });
    match a.mode {
        RulesMode::Lint => {
            let issues = crate::detect::lint::lint(dir.as_deref())?;
            let errors = issues.iter().filter(|i| i.severity == "error").count();
            match a.format {
                OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&issues)?),
                OutputFormat::Table => {
                    for i in &issues {
                        outln!("{i}");
                    }
                    outln!("{errors} errors, {} warnings", issues.len() - errors);
                }
            }
            Ok(i32::from(errors > 0))
        }
        RulesMode::Test => {
            let rules = RuleSet::resolve(dir.as_deref())?;
            let report = crate::detect::selftest::run(&rules)?;
            let failed = report.failed();
            match a.format {
                OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Table => {
                    for c in &report.cases {
                        let mark = if c.passed { "ok  " } else { "FAIL" };
                        outln!(
                            "{mark} {} :: {} :: {} ({})",
                            c.file,
                            c.rule,
                            c.case,
                            c.expect
                        );
                        if !c.passed {
                            outln!("     {}", c.detail);
                        }
                    }
                    for r in &report.incomplete {
                        outln!("incomplete {r}");
                    }
                    outln!(
                        "{} cases, {} passed, {failed} failed; {} rules without both a match and a no-match case",
                        report.cases.len(),
                        report.cases.len() - failed,
                        report.incomplete.len()
                    );
                }
            }
            Ok(i32::from(
                failed > 0 || (a.strict && !report.incomplete.is_empty()),
            ))
        }
        RulesMode::Backtest => {
            let rules = RuleSet::resolve(dir.as_deref())?;
            let samples = a.data.clone().or_else(|| {
                let tests = dir.as_ref()?.join("tests");
                tests.is_dir().then_some(tests)
            });
            let report = crate::detect::backtest::run(&rules, samples.as_deref(), a.strict)?;
            if let Some(path) = &a.junit {
                std::fs::write(path, backtest_junit(&report)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            match a.format {
                OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Table => out!("{}", backtest_table(&report)),
            }
            Ok(i32::from(!report.passed()))
        }
    }
}

/// The backtest as a table: one row per rule, then why each failing rule failed.
fn backtest_table(report: &crate::detect::backtest::BacktestReport) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "{:<36} {:>9} {:>6} {:>4} {:>4} {:>6}  {}\n",
        "rule", "exemplars", "sample", "TP", "FP", "missed", "result"
    );
    for r in &report.rules {
        let sample = match (&r.sample, r.produces_findings) {
            (Some(_), _) => "yes",
            (None, true) => "-",
            // A base rule only feeds correlations: its exemplars are its test.
            (None, false) => "base",
        };
        let result = if r.passed() { "ok" } else { "FAIL" };
        let _ = writeln!(
            out,
            "{:<36} {:>9} {:>6} {:>4} {:>4} {:>6}  {result}",
            r.rule, r.exemplars, sample, r.true_positives, r.false_positives, r.missed
        );
    }
    for r in report.failed() {
        for why in &r.failures {
            let _ = writeln!(out, "FAIL {} ({}): {why}", r.rule, r.file);
        }
    }
    let failed = report.failed().count();
    let _ = writeln!(
        out,
        "{} rules, {} sample logs, {} passed, {failed} failed",
        report.rules.len(),
        report.samples.len(),
        report.rules.len() - failed
    );
    out
}

/// The backtest as JUnit XML: a suite per rule file, a test case per rule.
fn backtest_junit(report: &crate::detect::backtest::BacktestReport) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in &report.rules {
        let status = if r.passed() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("{}: {}", r.rule, r.failures.join("; ")));
            s.set_description(r.failures.join("\n"));
            s
        };
        let mut case = TestCase::new(r.rule.as_str(), status);
        case.set_classname(r.file.as_str());
        case.set_system_out(format!(
            "true positives {}, false positives {}, missed {}, exemplars {}, sample {}",
            r.true_positives,
            r.false_positives,
            r.missed,
            r.exemplars,
            r.sample.as_deref().unwrap_or("none")
        ));
        let idx = match suites.iter().position(|s| s.name.as_str() == r.file) {
            Some(i) => i,
            None => {
                suites.push(TestSuite::new(r.file.as_str()));
                suites.len() - 1
            }
        };
        suites[idx].add_test_case(case);
    }
    let mut junit = Report::new("mfascope rules backtest");
    junit.add_test_suites(suites);
    Ok(junit.to_string()?)
}
