//! `mfascope probe`: synthetic 2FA login checks against a verifier, for CI gates (exit 3 when
//! a check fails or a threshold is missed).

use crate::cli::out::{out, outln};

use std::path::PathBuf;

use anyhow::Context;

use super::OutputFormat;
use crate::probe::config::ProbeConfig;
use crate::probe::{ProbeOptions, run as run_probe};

/// `mfascope probe`.
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// Base URL of the 2FA server (overrides `url` of the config).
    #[arg(long)]
    pub target: Option<String>,
    /// Probe config (target kind, checks, where credentials come from).
    #[arg(long)]
    pub config: PathBuf,
    /// Run every check this many times.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Write a JUnit XML report (one testcase per check).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the probe's observations as canonical events (NDJSON) for `mfascope ingest`.
    #[arg(long)]
    pub events_out: Option<PathBuf>,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    pub summary_out: Option<PathBuf>,
    /// Required share of passing check runs, 0–1.
    #[arg(long, default_value_t = 1.0)]
    pub min_success: f64,
    /// Largest acceptable p95 of the second-factor step, in ms.
    #[arg(long, value_name = "MS")]
    pub max_p95: Option<f64>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// Run `mfascope probe`: 0 when every threshold holds, 3 otherwise.
pub fn run(a: ProbeArgs) -> anyhow::Result<i32> {
    if !(0.0..=1.0).contains(&a.min_success) {
        anyhow::bail!(
            "--min-success must be between 0 and 1, got {}",
            a.min_success
        );
    }
    let config = ProbeConfig::load(&a.config)?;
    let result = run_probe(ProbeOptions {
        config,
        target: a.target,
        count: a.count,
        min_success: a.min_success,
        max_p95_ms: a.max_p95,
    })?;
    let summary = serde_json::to_string_pretty(&result.summary())?;
    match a.format {
        OutputFormat::Table => out!("{}", result.table()),
        OutputFormat::Json => outln!("{summary}"),
    }
    if let Some(path) = &a.summary_out {
        std::fs::write(path, &summary)
            .with_context(|| format!("writing the summary {}", path.display()))?;
    }
    if let Some(path) = &a.junit {
        std::fs::write(path, result.junit())
            .with_context(|| format!("writing the JUnit report {}", path.display()))?;
    }
    if let Some(path) = &a.events_out {
        result.write_events(path)?;
    }
    Ok(if result.verdict().ok { 0 } else { 3 })
}
