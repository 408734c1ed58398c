//! `mfascope slo` (status, `slo check`) and `mfascope alerts` over ingested history: the
//! events are replayed through the live aggregator, then the SLO math runs on its counters.

use std::fmt::Write;

use super::sli::{range, runtime};
use super::{AlertFormat, AlertsArgs, OutputFormat, SloArgs, SloHistoryArgs, SloMode};
use crate::sli::live::Aggregator;
use crate::sli::{Engine, Params};
use crate::slo::{Slo, SloReport, alertmanager_payload, evaluate, live_config, resolve_slos};

/// Exit code when an objective is violated (`slo check`).
pub const EXIT_VIOLATED: i32 = 3;

/// Replay `data` in `[from, to)` through a live aggregator sized for `slos` and evaluate.
pub fn evaluate_history(
    data: &crate::sink::Location,
    slos: &[Slo],
    from: Option<i64>,
    to: Option<i64>,
) -> anyhow::Result<SloReport> {
    let params = Params::new(from, to, crate::sli::Bucket::Hour, vec![])?;
    let mut agg = Aggregator::new(live_config(slos));
    runtime()?.block_on(async {
        let engine = Engine::open(data, &params).await?;
        engine.replay(&mut agg).await
    })?;
    Ok(evaluate(slos, &agg, to))
}

/// The report for `slo` / `alerts` arguments.
fn report(h: &SloHistoryArgs) -> anyhow::Result<SloReport> {
    let (from, to) = range(&h.range.from, &h.range.to)?;
    let slos = resolve_slos(h.slos.path.as_deref())?;
    evaluate_history(&h.range.data, &slos, from, to)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0))
}

/// Status table, one row per SLO.
pub fn status_table(r: &SloReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "SLO status at {} (data from {})\n",
        r.at,
        r.data_from.as_deref().unwrap_or("-")
    );
    let _ = write!(
        out,
        "{:<24} {:>8} {:>6} {:>9} {:>12} {:>9}",
        "slo", "target", "window", "sli", "budget left", "events"
    );
    for w in crate::slo::eval::BURN_WINDOWS {
        let _ = write!(out, " {:>7}", format!("burn{}", w.0));
    }
    let _ = writeln!(out, "  state");
    for s in &r.slos {
        let _ = write!(
            out,
            "{:<24} {:>8} {:>6} {:>9} {:>12} {:>9}",
            s.name,
            pct(Some(s.target)),
            s.window,
            pct(s.sli),
            pct(s.budget_remaining),
            s.total
        );
        for b in &s.burn_rates {
            let _ = write!(
                out,
                " {:>7}",
                b.rate.map_or("-".into(), |v| format!("{v:.2}"))
            );
        }
        let state = match (s.sli, s.violated, s.firing.is_empty()) {
            (None, _, _) => "no data".to_string(),
            (_, true, _) => format!("VIOLATED {}", s.firing.join(",")),
            (_, false, false) => format!("FIRING {}", s.firing.join(",")),
            _ => "ok".to_string(),
        };
        let _ = writeln!(out, "  {state}");
    }
    out
}

/// Alert episodes table; with `last`, only the most recent episodes (and a count of the rest).
pub fn alerts_table(r: &SloReport, last: Option<usize>) -> String {
    let mut out = String::new();
    if r.episodes.is_empty() {
        let _ = writeln!(
            out,
            "no alerts fired between {} and {}",
            r.data_from.as_deref().unwrap_or("-"),
            r.at
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{:<20} {:<20} {:<24} {:<18} {:<7} {:>8}  rule",
        "firing at", "resolved at", "slo", "alert", "sev", "peak"
    );
    let skip = last.map_or(0, |n| r.episodes.len().saturating_sub(n));
    if skip > 0 {
        let _ = writeln!(
            out,
            "… {skip} earlier episodes (see `mfascope alerts --data …`)"
        );
    }
    for e in &r.episodes[skip..] {
        let _ = writeln!(
            out,
            "{:<20} {:<20} {:<24} {:<18} {:<7} {:>8.2}  {}",
            e.firing_at,
            e.resolved_at.as_deref().unwrap_or("(firing)"),
            e.slo,
            e.alert,
            e.severity,
            e.peak,
            e.rule
        );
    }
    out
}

/// `mfascope slo [check]`.
pub fn run_slo(a: SloArgs) -> anyhow::Result<i32> {
    let report = report(&a.history)?;
    match a.format {
        OutputFormat::Table => print!("{}", status_table(&report)),
        OutputFormat::Json => {
            let mut v = serde_json::to_value(&report)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("transitions");
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    if a.mode == Some(SloMode::Check) && report.violated() {
        let missed: Vec<&str> = report
            .slos
            .iter()
            .filter(|s| s.violated)
            .map(|s| s.name.as_str())
            .collect();
        eprintln!("slo check: objective violated: {}", missed.join(", "));
        return Ok(EXIT_VIOLATED);
    }
    Ok(0)
}

/// `mfascope alerts`.
pub fn run_alerts(a: AlertsArgs) -> anyhow::Result<i32> {
    let report = report(&a.history)?;
    match a.format {
        AlertFormat::Table => print!("{}", alerts_table(&report, None)),
        AlertFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "at": report.at,
                "data_from": report.data_from,
                "episodes": report.episodes,
                "transitions": report.transitions,
            }))?
        ),
        AlertFormat::Alertmanager => println!(
            "{}",
            serde_json::to_string_pretty(&alertmanager_payload(&report.episodes, "mfascope"))?
        ),
    }
    Ok(0)
}
