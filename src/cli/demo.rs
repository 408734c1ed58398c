//! `mfascope demo`: the main job on the bundled sample data.

use crate::cli::out::{out, outln};

use anyhow::Context;

use super::sli::report_slis;
use super::{DemoArgs, OutputFormat};
use crate::detect::DetectConfig;
use crate::pipeline::{IngestOptions, stop_on_signals};
use crate::present::{ingest_table, live_table, posture_headline};
use crate::run::Run;
use crate::sli::{Bucket, Params, resolve_queries};

/// Ingest `sample-data/` into a fresh work directory and print the report.
pub fn run(a: DemoArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        a.data.is_dir(),
        "sample data directory {} not found (run from the checkout or pass --data)",
        a.data.display()
    );
    if a.work.exists() {
        std::fs::remove_dir_all(&a.work)
            .with_context(|| format!("clearing {}", a.work.display()))?;
    }
    // The log files only: the folder also holds its README and the attack labels.
    let inputs = ["*.gz", "*.ndjson", "*.log"]
        .iter()
        .map(|pattern| a.data.join(pattern).display().to_string())
        .filter(|pattern| glob::glob(pattern).is_ok_and(|mut m| m.next().is_some()))
        .collect();
    let mut opts = IngestOptions::new(inputs, a.work.join("out"));
    opts.progress = false;
    let slos = a.slos.resolve()?;
    let out = opts.out.clone();
    let dir = a.work.join("out");
    let rules = a.rules.load()?;
    // The sample files (one per vendor) each cover the same two days and are read one after
    // the other: let the streaming rule engine wait for the whole sample, so it sees events in
    // time order (bounded: the sample is small).
    let detect = DetectConfig {
        allowance_ms: 7 * 86_400_000,
        ..DetectConfig::default()
    };
    let stop = stop_on_signals().context("installing signal handlers")?;
    let policy = a.slos.attack.policy();
    let attack = (&policy, &rules);
    let report = Run::new(opts)
        .slos(&slos)
        .attack(&policy)
        .rules(&rules, detect)
        .run(stop)
        .context("demo ingest")?;
    let summary = &report.summary;
    let posture = super::report::posture(&super::report::PostureArgs {
        range: super::DataRange {
            data: out.clone(),
            from: None,
            to: None,
            as_of: None,
        },
        privileged: None,
        sms_price: 0.0079,
        format: a.format,
    })?;
    let weekly = a.work.join("weekly-report.html");
    let document = super::report::document(
        &super::report::DocumentArgs {
            data: out.clone(),
            to: None,
            out: weekly.clone(),
            format: super::report::DocumentFormat::Html,
            privileged: None,
            sms_price: 0.0079,
            slos: a.slos.clone(),
            rules: a.rules.clone(),
        },
        "weekly",
        7,
    )?;
    std::fs::write(&weekly, document.html())
        .with_context(|| format!("writing {}", weekly.display()))?;
    let queries = resolve_queries(a.queries.as_deref())?;
    let params = Params::new(None, None, Bucket::Day, vec![])?;
    match a.format {
        OutputFormat::Json => {
            let mut v = serde_json::to_value(summary)?;
            v["sli"] = report_slis(&out, &params, &queries, a.format, attack)?;
            v["live"] = serde_json::to_value(&report)?;
            v["posture"] = serde_json::to_value(&posture)?;
            v["weekly_report"] = serde_json::json!(weekly.display().to_string());
            outln!("{}", serde_json::to_string_pretty(&v)?);
        }
        OutputFormat::Table => {
            outln!(
                "mfascope demo: ingested {} into {}\n",
                a.data.display(),
                dir.display()
            );
            out!("{}", ingest_table(summary));
            outln!("\nSLIs per day:\n");
            report_slis(&out, &params, &queries, a.format, attack)?;
            outln!("{}", live_table(&report));
            outln!("2FA coverage posture: {}", posture_headline(&posture));
            outln!(
                "  (details: mfascope report posture --data {})\n",
                dir.display()
            );
            outln!(
                "Weekly report: {}  (open it in a browser; mfascope report weekly|monthly --data {} --out FILE)",
                weekly.display(),
                dir.display()
            );
            outln!(
                "Delta table: {}/events  (read it with DuckDB: SELECT * FROM delta_scan('{}/events'))",
                dir.display(),
                dir.display()
            );
            outln!(
                "Dashboard: mfascope dashboard --data {}  (views: executive, oncall, debug; ? for keys)",
                dir.display()
            );
        }
    }
    Ok(0)
}
