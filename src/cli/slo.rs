//! `mfascope slo` (status, `slo check`) and `mfascope alerts` over ingested history: the
//! events are replayed through the live aggregator, then the SLO math runs on its counters.

use crate::cli::out::{out, outln};

use super::sli::{range, runtime};
use super::{
    AlertFormat, AlertsArgs, OutputFormat, RulesFormat, SloArgs, SloHistoryArgs, SloMode,
    SloRulesArgs,
};
use crate::attack::AttackPolicy;
use crate::detect::RuleSet;
use crate::present::alertmanager;
use crate::present::{alerts_table, status_table};
use crate::sli::{Engine, Params};
use crate::slo::{Slo, SloReport, evaluate, prometheus, resolve_slos};

/// Exit code when an objective is violated (`slo check`).
pub const EXIT_VIOLATED: i32 = 3;

/// Replay `data` in `[from, to)` through a live aggregator sized for `slos`, recognising attack
/// traffic by `attack` (policy, rules), and evaluate.
pub fn evaluate_history(
    data: &crate::sink::Location,
    slos: &[Slo],
    from: Option<i64>,
    to: Option<i64>,
    as_of: crate::sli::AsOf,
    (policy, rules): (&AttackPolicy, &RuleSet),
) -> anyhow::Result<SloReport> {
    let params = Params::new(from, to, crate::sli::Bucket::Hour, vec![])?.as_of(as_of);
    let mut agg = policy.aggregator(slos, rules)?;
    runtime()?.block_on(async {
        let engine = Engine::open(data, &params).await?;
        engine.replay(&mut agg).await
    })?;
    Ok(evaluate(slos, &agg, to))
}

/// The report for `slo` / `alerts` arguments.
fn report(h: &SloHistoryArgs) -> anyhow::Result<SloReport> {
    let (from, to) = range(&h.range.from, &h.range.to)?;
    let slos = h.slos.resolve()?;
    let rules = h.rules.load()?;
    evaluate_history(
        &h.range.data,
        &slos,
        from,
        to,
        h.range.as_of()?,
        (&h.slos.attack.policy(), &rules),
    )
}

/// `mfascope slo [check]`.
pub fn run_slo(a: SloArgs) -> anyhow::Result<i32> {
    let report = report(&a.history)?;
    match a.format {
        OutputFormat::Table => out!("{}", status_table(&report)),
        OutputFormat::Json => {
            let mut v = serde_json::to_value(&report)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("transitions");
            }
            outln!("{}", serde_json::to_string_pretty(&v)?);
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

/// `mfascope slo rules`.
pub fn run_rules(r: &SloRulesArgs) -> anyhow::Result<i32> {
    let slos = resolve_slos(r.slos.as_deref())?;
    out!(
        "{}",
        match r.format {
            RulesFormat::Prometheus => prometheus::rules(&slos),
            RulesFormat::PromtoolTests => prometheus::promtool_tests(&slos, &r.rule_file),
        }
    );
    Ok(0)
}

/// `mfascope alerts`.
pub fn run_alerts(a: AlertsArgs) -> anyhow::Result<i32> {
    let report = report(&a.history)?;
    match a.format {
        AlertFormat::Table => out!("{}", alerts_table(&report, None)),
        AlertFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "at": report.at,
                "data_from": report.data_from,
                "episodes": report.episodes,
                "transitions": report.transitions,
            }))?
        ),
        AlertFormat::Alertmanager => outln!(
            "{}",
            serde_json::to_string_pretty(&alertmanager::slo_episodes(
                &report.episodes,
                "mfascope"
            ))?
        ),
    }
    Ok(0)
}
