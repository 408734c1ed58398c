//! `mfascope ingest`: the flags become a [`Run`], its report is printed.

use crate::cli::out::{out, outln};

use std::sync::Arc;

use anyhow::Context;

use super::{IngestArgs, OutputFormat};
use crate::detect::{DetectConfig, HistoryConfig, RuleSet};
use crate::normalize::pseudonym::Pseudonymizer;
use crate::pipeline::{IngestOptions, stop_on_signals};
use crate::present::{ingest_table, kafka_table, live_table, objects_table, sources_table};
use crate::run::Run;

/// Default out-of-order allowance of streaming detection over files: logs collected from
/// several sources interleave by minutes.
const FILE_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(300);
/// … and over live sources (`--follow`, `--kafka`), whose events arrive about in time order: a
/// finding is reported within about this long of its last event.
pub(crate) const LIVE_ALLOWANCE: std::time::Duration = std::time::Duration::from_millis(500);

/// Apply `--pseudonymize-key`: events carry pseudonyms, no raw record is kept — so
/// vendor-field rules, which read raw records, cannot match (said on stderr).
pub(crate) fn pseudonymize(
    opts: &mut IngestOptions,
    key: Option<&std::path::Path>,
    rules: &RuleSet,
) -> anyhow::Result<()> {
    let Some(path) = key else {
        return Ok(());
    };
    opts.pseudonymize = Some(Arc::new(Pseudonymizer::from_key_file(path)?));
    opts.keep_raw = false;
    let vendor = rules.collection(false).rules.len();
    if vendor > 0 {
        tracing::warn!(
            "--pseudonymize-key keeps no raw vendor records: {vendor} vendor-field rule(s) cannot match"
        );
    }
    Ok(())
}

/// Run an ingest and print its summary.
pub fn run(a: IngestArgs) -> anyhow::Result<i32> {
    let mut opts = IngestOptions::new(a.paths, a.out);
    opts.format = a.log_format;
    opts.assume_date = a.assume_date;
    opts.reader.follow = a.follow;
    opts.reader.poll = a.poll_every;
    opts.segment_rows = a.segment_rows;
    opts.segment_bytes = a.segment_mib << 20;
    opts.max_latency = a.max_latency;
    opts.list_every = a.list_every;
    opts.sqs_queue = a.sqs_queue;
    opts.save_state = Some(a.state_every);
    opts.progress = !a.no_progress;
    opts.dedupe_window = a.dedupe_window;
    opts.tickets = a.tickets.config()?;
    if let Some(w) = a.workers {
        opts.workers = w;
    }
    let slos = a.slos.resolve()?;
    let rules = a.rules.load()?;
    // Vendor-field rules read the raw record; storing it also serves later hunts.
    opts.keep_raw = a.keep_raw || !rules.collection(false).rules.is_empty();
    pseudonymize(&mut opts, a.privacy.pseudonymize_key.as_deref(), &rules)?;
    let live = a.follow || a.kafka.kafka.is_some();
    let allowance =
        a.detect_allowance
            .unwrap_or(if live { LIVE_ALLOWANCE } else { FILE_ALLOWANCE });
    let detect = DetectConfig {
        allowance_ms: allowance.as_millis() as i64,
        max_state_entries: a.max_rule_state.max(1),
        history: HistoryConfig {
            max_users: a.max_rule_state.max(1),
            ..HistoryConfig::default()
        },
        ..DetectConfig::default()
    };
    let apis = a.sources.as_deref().map(mfascope_pull::load).transpose()?;
    let stop = stop_on_signals().context("installing signal handlers")?;
    let out = opts.out.clone();
    let policy = a.maintain.policy()?;
    let long_running = live || apis.is_some();
    let background = if long_running {
        crate::maintenance::Background::spawn(out.clone(), policy.clone())
    } else {
        None
    };
    let report = Run::new(opts)
        .kafka(a.kafka.options())
        .apis(apis)
        .slos(&slos)
        .attack(&a.slos.attack.policy())
        .rules(&rules, detect)
        .live(!a.no_live)
        .detect(!a.no_detect)
        .metrics(a.metrics_listen)
        .deliver(a.delivery.config()?)
        .announce_findings(live)
        .run(stop);
    let mut maintained = background.map(crate::maintenance::Background::stop);
    let report = report?;
    if !long_running && policy.retain.is_some() {
        maintained = Some(crate::maintenance::once(
            &out,
            &crate::maintenance::Policy {
                compact: None,
                ..policy
            },
        )?);
    }
    match a.format {
        OutputFormat::Json => {
            let mut v = serde_json::to_value(&report.summary)?;
            if let Some(k) = &report.kafka {
                v["kafka"] = serde_json::to_value(k)?;
            }
            if let Some(o) = &report.objects {
                v["objects"] = serde_json::to_value(o)?;
            }
            if let Some(a) = &report.apis {
                v["sources"] = serde_json::to_value(a)?;
            }
            v["live"] = serde_json::to_value(&report)?;
            if let Some(m) = &maintained {
                v["maintenance"] = serde_json::to_value(m)?;
            }
            outln!("{}", serde_json::to_string_pretty(&v)?);
        }
        OutputFormat::Table => {
            let kafka = report.kafka.as_ref().map(kafka_table).unwrap_or_default();
            let objects = report
                .objects
                .as_ref()
                .map(objects_table)
                .unwrap_or_default();
            let apis = report
                .apis
                .as_deref()
                .map(sources_table)
                .unwrap_or_default();
            out!(
                "{}{kafka}{objects}{apis}{}",
                ingest_table(&report.summary),
                live_table(&report)
            );
            if let Some(m) = &maintained {
                outln!(
                    "maintenance: {} rounds; compacted {} files into {}; {} rows expired; {} files vacuumed{}",
                    m.rounds,
                    m.compacted.files_in,
                    m.compacted.files_out,
                    m.rows_expired,
                    m.files_vacuumed,
                    if m.failures > 0 {
                        format!("; {} rounds failed (see the log)", m.failures)
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    let summary = &report.summary;
    let failed_sources = report.apis.iter().flatten().any(|s| s.errors > 0);
    let failed_inputs = !summary.unreadable.is_empty() || failed_sources;
    Ok(if (a.strict && summary.deadletter > 0) || failed_inputs {
        1
    } else {
        0
    })
}
