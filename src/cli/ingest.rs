//! `mfascope ingest`.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::detect::findings_text;
use super::slo::{alerts_table, status_table};
use super::{IngestArgs, OutputFormat};
use crate::detect::stream::{FindingTap, LiveDetector};
use crate::detect::{DetectConfig, Detector, HistoryConfig, RuleSet};
use crate::normalize::pseudonym::Pseudonymizer;
use crate::pipeline::kafka::{KafkaOptions, KafkaSummary};
use crate::pipeline::{IngestOptions, Summary, ingest, stop_on_signals};
use crate::report::ingest_table;
use crate::sli::live::Aggregator;
use crate::slo::{Slo, evaluate, live_config, resolve_slos};

/// Default out-of-order allowance of streaming detection over files: logs collected from
/// several sources interleave by minutes.
const FILE_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(300);
/// … and over live sources (`--follow`, `--kafka`), whose events arrive about in time order: a
/// finding is reported within about this long of its last event.
pub(crate) const LIVE_ALLOWANCE: std::time::Duration = std::time::Duration::from_millis(500);

/// Attach the streaming rule engine to `opts` as a batch observer (it stores its findings
/// under `OUT/findings/`). `live` (follow or Kafka) releases what waits for the watermark once
/// the input is idle; `announce` prints each finding on stderr as it fires; `tap` sees every
/// new finding.
pub fn attach_detector(
    opts: &mut IngestOptions,
    detection: (&RuleSet, DetectConfig),
    live: bool,
    announce: bool,
    tap: Option<FindingTap>,
) -> anyhow::Result<Arc<LiveDetector>> {
    let mut detector = LiveDetector::new(
        Detector::new(detection.0, detection.1, false)?,
        &opts.out,
        opts.max_latency.max(std::time::Duration::from_secs(1)),
        announce,
    )
    .context("creating a staging directory for findings")?;
    if live {
        let allowance = std::time::Duration::from_millis(detection.1.allowance_ms.max(0) as u64);
        detector = detector.release_when_idle(allowance.max(std::time::Duration::from_millis(200)));
    }
    if let Some(tap) = tap {
        detector = detector.with_tap(tap);
    }
    let detector = Arc::new(detector);
    opts.observers.0.push(detector.clone());
    Ok(detector)
}

/// Run the ingest from files, or from Kafka when `kafka` is given (its summary is returned
/// too), until the input ends or `stop` is set.
pub fn run_ingest(
    opts: &IngestOptions,
    kafka: Option<&KafkaOptions>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Summary, Option<KafkaSummary>)> {
    let context = || format!("ingest into {}", opts.out);
    Ok(match kafka {
        Some(k) => {
            let (s, ks) = crate::pipeline::kafka::ingest(opts, k, stop).with_context(|| {
                format!(
                    "{} from Kafka {} ({})",
                    context(),
                    k.brokers,
                    k.topics.join(",")
                )
            })?;
            (s, Some(ks))
        }
        None => (ingest(opts, stop).with_context(context)?, None),
    })
}

/// [`ingest_live_from`] files.
pub fn ingest_live(
    opts: IngestOptions,
    slos: &[Slo],
    detection: (&RuleSet, DetectConfig),
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<(Summary, serde_json::Value, String)> {
    let (summary, _, live, table) = ingest_live_from(opts, None, slos, detection, metrics_listen)?;
    Ok((summary, live, table))
}

/// Ingest with the live aggregator and the streaming rule engine attached, from files, or
/// from Kafka when `kafka` is given (its summary is returned too). Findings are stored under
/// `OUT/findings/`. Returns the summary and the live state as JSON (`{"counters", "slo",
/// "detect": {"counters", "findings"}}`) plus its table rendering.
pub fn ingest_live_from(
    mut opts: IngestOptions,
    kafka: Option<&KafkaOptions>,
    slos: &[Slo],
    detection: (&RuleSet, DetectConfig),
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<(Summary, Option<KafkaSummary>, serde_json::Value, String)> {
    let live = opts.reader.follow || kafka.is_some();
    let agg = Arc::new(Mutex::new(Aggregator::new(live_config(slos))));
    opts.observers.0.push(agg.clone());
    let detector = attach_detector(&mut opts, detection, live, live, None)?;
    if let Some(addr) = metrics_listen {
        let (agg, slos, progress) = (agg.clone(), slos.to_vec(), opts.progress_counters.clone());
        let rules = detector.clone();
        let scrape = Arc::new(move || {
            let agg = agg.lock().unwrap_or_else(|p| p.into_inner());
            let report = evaluate(&slos, &agg, None);
            crate::metrics::render(&progress, &agg, &report, Some(&rules.counters()))
        });
        let bound = crate::metrics::serve(addr, scrape)
            .with_context(|| format!("--metrics-listen {addr}"))?;
        eprintln!("metrics: http://{bound}/metrics");
    }
    let stop = stop_on_signals().context("installing signal handlers")?;
    let (summary, kafka_summary) = run_ingest(&opts, kafka, stop)?;
    let agg = agg.lock().unwrap_or_else(|p| p.into_inner());
    let report = evaluate(slos, &agg, None);
    let (findings, counters, _files) = detector.finish().map_err(anyhow::Error::msg)?;
    let table = format!(
        "\nLive SLO state (events of this run)\n{}\n{}\nFindings (streaming rule engine)\n{}",
        status_table(&report),
        alerts_table(&report, Some(12)),
        findings_text(&findings, &counters),
    );
    let json = serde_json::json!({
        "counters": agg.counters(),
        "slo": report,
        "detect": { "counters": counters, "findings": findings },
    });
    Ok((summary, kafka_summary, json, table))
}

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
    opts.reader.follow = a.follow;
    opts.segment_rows = a.segment_rows;
    opts.segment_bytes = a.segment_mib << 20;
    opts.max_latency = a.max_latency;
    opts.progress = !a.no_progress;
    opts.dedupe_window = a.dedupe_window;
    if let Some(w) = a.workers {
        opts.workers = w;
    }
    let slos = resolve_slos(a.slos.path.as_deref())?;
    let rules = RuleSet::resolve(a.rules.path.as_deref())?;
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
    let kafka = a.kafka.options();
    let (summary, kafka_summary, live, live_table) = ingest_live_from(
        opts,
        kafka.as_ref(),
        &slos,
        (&rules, detect),
        a.metrics_listen,
    )?;
    match a.format {
        OutputFormat::Json => {
            let mut v = serde_json::to_value(&summary)?;
            if let Some(k) = &kafka_summary {
                v["kafka"] = serde_json::to_value(k)?;
            }
            v["live"] = live;
            println!("{}", serde_json::to_string_pretty(&v)?)
        }
        OutputFormat::Table => {
            let kafka = kafka_summary
                .as_ref()
                .map(crate::report::kafka_table)
                .unwrap_or_default();
            print!("{}{kafka}{live_table}", ingest_table(&summary))
        }
    }
    let failed_inputs = !summary.unreadable.is_empty();
    Ok(if (a.strict && summary.deadletter > 0) || failed_inputs {
        1
    } else {
        0
    })
}
