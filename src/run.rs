//! One ingest run, composed: a source (files or Kafka) driving the engine, with the live SLI
//! aggregator and SLOs, the streaming rule engine, an optional Prometheus endpoint and any
//! further observers (the live dashboard's model) attached, ending in a typed [`RunReport`].
//! `mfascope ingest`, `mfascope demo` and the live `mfascope dashboard` all run ingest through
//! [`Run`]; this module prints nothing (rendering is [`crate::present`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::attack::AttackPolicy;
use crate::delivery::{Delivery, DeliveryConfig};
use crate::detect::stream::{FindingStore, FindingTap, LiveRules};
use crate::detect::{DetectConfig, DetectCounters, Finding, RuleSet};
use crate::observe::BatchObserver;
use crate::pipeline::kafka::{KAFKA_STATE, KafkaOptions, KafkaSummary};
use crate::pipeline::object::ObjectSummary;
use crate::pipeline::{IngestOptions, PipelineProgress, Summary};
use crate::resume::{RulesResumed, ScopedRules};
use crate::sli::live::{Aggregator, LiveCounters};
use crate::slo::{Slo, SloReport, evaluate};
use crate::source::FILE_STATE;
use crate::sync::lock;

/// Shortest wait of the live rule engine before a quiet input releases what waits for the
/// watermark.
const MIN_IDLE_RELEASE: Duration = Duration::from_millis(200);

/// How often an ingest saves the rule engine's state with a scope's segment (it is also saved
/// with the scope's last segment: at the end of a run, on a Kafka revocation).
pub const SAVE_STATE_EVERY: Duration = Duration::from_secs(10);

/// What a run produced: the engine's counts, the live SLO state and the findings.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Records, events, dead letters, files and rates of the run.
    #[serde(skip)]
    pub summary: Summary,
    /// Per-partition state, when the source was Kafka.
    #[serde(skip)]
    pub kafka: Option<KafkaSummary>,
    /// Listings and downloads, when the source was object storage.
    #[serde(skip)]
    pub objects: Option<ObjectSummary>,
    /// Each vendor log-API source's polls, records and failures (`--sources`).
    #[serde(skip)]
    pub apis: Option<Vec<mfascope_pull::SourceReport>>,
    /// The live aggregator's counters.
    pub counters: LiveCounters,
    /// Every SLO evaluated at the end of the run.
    pub slo: SloReport,
    /// The streaming rule engine's findings and counters.
    pub detect: DetectReport,
    /// How the rule engine's state was brought back at start (file ingest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_resumed: Option<RulesResumed>,
    /// How each Kafka partition's rule state was brought back when this instance was
    /// assigned it, by `TOPIC/PARTITION` (the latest assignment).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rules_resumed_partitions: BTreeMap<String, RulesResumed>,
    /// Each receiver's delivery of findings and SLO alerts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delivery: Vec<mfascope_notify::ReceiverStatus>,
}

/// The rule engine's part of a [`RunReport`].
#[derive(Debug, Serialize)]
pub struct DetectReport {
    /// Rules, events, state and evictions.
    pub counters: DetectCounters,
    /// The findings (capped for the report; the count is exact).
    pub findings: Vec<Finding>,
    /// What each suppression withheld from the rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<crate::detect::suppress::SuppressedCount>,
    /// Findings files written under `OUT/findings/`.
    #[serde(skip)]
    pub files: Vec<String>,
}

/// An ingest run being composed.
///
/// ```no_run
/// use mfascope::pipeline::IngestOptions;
/// use mfascope::run::Run;
///
/// let opts = IngestOptions::new(vec!["okta.ndjson".into()], std::path::PathBuf::from("out"));
/// let report = Run::new(opts)
///     .slos(&mfascope::slo::resolve_slos(None)?)
///     .rules(&mfascope::detect::RuleSet::resolve(None)?, Default::default())
///     .run(Default::default())?;
/// println!("{} events, {} findings", report.summary.events, report.detect.findings.len());
/// # Ok::<(), anyhow::Error>(())
/// ```
pub struct Run {
    opts: IngestOptions,
    kafka: Option<KafkaOptions>,
    slos: Vec<Slo>,
    attack: AttackPolicy,
    resume: bool,
    rules: RuleSet,
    detect: DetectConfig,
    metrics: Option<SocketAddr>,
    announce: bool,
    tap: Option<FindingTap>,
    delivery: Option<DeliveryConfig>,
    apis: Option<mfascope_pull::ApiSource>,
    /// Feed the live SLI aggregator (`--no-live` turns it off).
    live: bool,
    /// Run the streaming rule engine (`--no-detect` turns it off).
    detect_on: bool,
}

impl Run {
    /// A run of `opts` (files, or Kafka with [`Run::kafka`]) with no SLOs and no rules yet.
    pub fn new(opts: IngestOptions) -> Run {
        Run {
            opts,
            kafka: None,
            slos: Vec::new(),
            attack: AttackPolicy::default(),
            resume: true,
            rules: RuleSet::default(),
            detect: DetectConfig::default(),
            metrics: None,
            announce: false,
            tap: None,
            delivery: None,
            apis: None,
            live: true,
            detect_on: true,
        }
    }

    /// Whether the live SLI aggregator sees the events (default: yes). Off (`--no-live`), the
    /// run's SLO report and `/metrics` SLIs stay empty; the table is the same.
    pub fn live(mut self, on: bool) -> Run {
        self.live = on;
        self
    }

    /// Whether the streaming rule engine sees the events (default: yes). Off (`--no-detect`),
    /// no findings are made (a later `mfascope detect` over the store finds them).
    pub fn detect(mut self, on: bool) -> Run {
        self.detect_on = on;
        self
    }

    /// Poll these vendor log APIs instead of reading files (`--sources`).
    pub fn apis(mut self, sources: Option<Vec<mfascope_pull::SourceConfig>>) -> Run {
        let follow = self.opts.reader.follow;
        // The request pace lives beside the state of a local output, else in the temp dir
        // (per output: another machine has its own pace anyway).
        let pace_dir = match self.opts.out.local() {
            Some(dir) => dir.join("_state/pace"),
            None => std::env::temp_dir().join("mfascope-pace").join(format!(
                "{:016x}",
                xxhash_rust::xxh3::xxh3_64(self.opts.out.describe("").as_bytes())
            )),
        };
        self.apis = sources.map(|s| mfascope_pull::ApiSource::new(s, follow, pace_dir));
        self
    }

    /// Consume from Kafka instead of the files of the options.
    pub fn kafka(mut self, kafka: Option<KafkaOptions>) -> Run {
        self.kafka = kafka;
        self
    }

    /// Evaluate these SLOs live (the aggregator keeps what they need).
    pub fn slos(mut self, slos: &[Slo]) -> Run {
        self.slos = slos.to_vec();
        self
    }

    /// Recognise attack traffic (from the rules of [`Run::rules`]) by `policy` [default: the
    /// default rules, excluded from the SLIs].
    pub fn attack(mut self, policy: &AttackPolicy) -> Run {
        self.attack = policy.clone();
        self
    }

    /// Whether the live SLO state starts from the events already stored under `OUT` (default:
    /// yes, so a restarted run — files or Kafka — shows what an uninterrupted one would); off
    /// for callers that rebuild it themselves (the dashboard's model).
    pub fn resume_slos(mut self, resume: bool) -> Run {
        self.resume = resume;
        self
    }

    /// Run these rules on every event; findings are stored under `OUT/findings/`.
    pub fn rules(mut self, rules: &RuleSet, config: DetectConfig) -> Run {
        self.rules = rules.clone();
        self.detect = config;
        self
    }

    /// Serve Prometheus metrics on `addr` while the run lasts.
    pub fn metrics(mut self, addr: Option<SocketAddr>) -> Run {
        self.metrics = addr;
        self
    }

    /// Deliver findings and SLO alert episodes to these receivers (through durable outboxes).
    pub fn deliver(mut self, delivery: Option<DeliveryConfig>) -> Run {
        self.delivery = delivery;
        self
    }

    /// Print each finding on stderr as it fires.
    pub fn announce_findings(mut self, announce: bool) -> Run {
        self.announce = announce;
        self
    }

    /// Hand every new finding to `tap` as well (the dashboard's finding log).
    pub fn tap(mut self, tap: FindingTap) -> Run {
        self.tap = Some(tap);
        self
    }

    /// Feed every batch to `observer` too, after the aggregator and before the rule engine.
    pub fn observer(mut self, observer: Arc<dyn BatchObserver>) -> Run {
        self.opts.observers.0.push(observer);
        self
    }

    /// Whether the source is live (follow or Kafka): a quiet input then releases what the rule
    /// engine holds for stragglers.
    fn is_live(&self) -> bool {
        self.opts.reader.follow || self.kafka.is_some()
    }

    /// Compose the run and start it on its own thread; it runs until the input ends or `stop`
    /// is set.
    pub fn start(mut self, stop: Arc<AtomicBool>) -> anyhow::Result<Running> {
        // Live state belongs to the engine's scopes — a file ingest's store, or each Kafka
        // partition — and is saved with their commits; a scope's rule engine continues from
        // it when the scope opens (crate::resume).
        crate::resume::settle(&self.opts.out)?;
        self.opts.save_state = Some(self.opts.save_state.unwrap_or(SAVE_STATE_EVERY));
        let mut agg = self.attack.aggregator(&self.slos, &self.rules)?;
        if self.resume && self.live {
            crate::resume::slos(&self.opts.out, &mut agg)?;
        }
        let agg = Arc::new(Mutex::new(agg));
        if self.live {
            self.opts.observers.0.insert(0, agg.clone());
        }
        let store = FindingStore::new(
            &self.opts.out,
            self.opts.max_latency.max(Duration::from_secs(1)),
            self.announce,
            self.tap.take(),
        )
        .context("reading the stored findings")?;
        let detectors = Arc::new(LiveRules::new(store));
        // Live sources: a quiet input releases what the rule engine holds for stragglers.
        let idle_release = self.is_live().then(|| {
            Duration::from_millis(self.detect.allowance_ms.max(0) as u64).max(MIN_IDLE_RELEASE)
        });
        let scoped = Arc::new(ScopedRules::new(
            detectors.clone(),
            &self.rules,
            self.detect,
            idle_release,
        )?);
        if self.detect_on {
            self.opts.scoped = Some(scoped.clone());
        }
        let progress = self.opts.progress_counters.clone();
        let delivery = match &self.delivery {
            Some(config) => Some(Delivery::start(
                config,
                &self.opts.out,
                agg.clone(),
                (&self.slos, &self.rules),
            )?),
            None => None,
        };
        if let Some(addr) = self.metrics {
            let notifier = delivery.as_ref().map(Delivery::notifier);
            let (agg, slos, progress) = (agg.clone(), self.slos.clone(), progress.clone());
            let rules = detectors.clone();
            let tally = Mutex::new(crate::metrics::SloTally::default());
            let sources = self
                .apis
                .as_ref()
                .map(mfascope_pull::ApiSource::stats)
                .unwrap_or_default();
            let scrape = Arc::new(move || {
                let agg = lock(&agg);
                let report = evaluate(&slos, &agg, None);
                let mut tally = lock(&tally);
                tally.advance(&slos, &agg);
                let delivery = notifier.as_ref().map(|n| n.status()).unwrap_or_default();
                crate::metrics::render(
                    &progress,
                    &agg,
                    &report,
                    Some((&rules.counters(), &rules.suppressed()[..])),
                    &tally,
                    &delivery,
                    &sources
                        .iter()
                        .map(|(name, kind, stats)| stats.report(name, kind))
                        .collect::<Vec<_>>(),
                )
            });
            let bound = crate::metrics::serve(addr, scrape)
                .with_context(|| format!("--metrics-listen {addr}"))?;
            eprintln!("metrics: http://{bound}/metrics");
        }
        let complete_at_end = !self.is_live();
        let (opts, kafka, apis) = (self.opts, self.kafka, self.apis);
        let handle = std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || drive(&opts, kafka.as_ref(), apis, stop))
            .context("starting the ingest thread")?;
        Ok(Running {
            progress,
            agg,
            detectors,
            scoped,
            slos: self.slos,
            handle,
            delivery,
            complete_at_end,
        })
    }

    /// [`Run::start`] and wait for the end.
    pub fn run(self, stop: Arc<AtomicBool>) -> anyhow::Result<RunReport> {
        self.start(stop)?.finish()
    }
}

/// What the source reported beside the engine's summary.
#[derive(Default)]
struct Sourced {
    kafka: Option<KafkaSummary>,
    objects: Option<ObjectSummary>,
    apis: Option<Vec<mfascope_pull::SourceReport>>,
}

/// The engine driven by the run's source, until it ends or `stop` is set.
fn drive(
    opts: &IngestOptions,
    kafka: Option<&KafkaOptions>,
    apis: Option<mfascope_pull::ApiSource>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Summary, Sourced)> {
    if let Some(source) = apis {
        let (s, source) = crate::pipeline::run(source, opts, stop)
            .with_context(|| format!("ingest into {} from the sources file", opts.out))?;
        let sourced = Sourced {
            apis: Some(source.reports()),
            ..Sourced::default()
        };
        return Ok((s, sourced));
    }
    let context = || format!("ingest into {}", opts.out);
    let remote = opts
        .inputs
        .iter()
        .filter(|i| crate::sink::Location::names_remote(i))
        .count();
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
            let sourced = Sourced {
                kafka: Some(ks),
                ..Sourced::default()
            };
            (s, sourced)
        }
        None if remote > 0 => {
            anyhow::ensure!(
                remote == opts.inputs.len(),
                "give object-store URLs (s3://, gs://, az://) or local paths, not both: run one \
                 ingest per kind into the same --out one after the other"
            );
            let (s, objects) = crate::pipeline::ingest_objects(opts, stop)
                .with_context(|| format!("{} from {}", context(), opts.inputs.join(" ")))?;
            let sourced = Sourced {
                objects: Some(objects),
                ..Sourced::default()
            };
            (s, sourced)
        }
        None => (
            crate::pipeline::ingest(opts, stop).with_context(context)?,
            Sourced::default(),
        ),
    })
}

/// A run in progress.
pub struct Running {
    progress: Arc<PipelineProgress>,
    agg: Arc<Mutex<Aggregator>>,
    detectors: Arc<LiveRules>,
    scoped: Arc<ScopedRules>,
    slos: Vec<Slo>,
    handle: JoinHandle<anyhow::Result<(Summary, Sourced)>>,
    delivery: Option<Delivery>,
    /// The input ends complete (files, not follow or Kafka): the last minute counts.
    complete_at_end: bool,
}

impl Running {
    /// The engine's running counters (events, Kafka lag), readable after the run too.
    pub fn progress(&self) -> Arc<PipelineProgress> {
        self.progress.clone()
    }

    /// True once the run has ended by itself (input exhausted, or an error).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Wait for the end: the engine's result, then the rule engine's remaining findings
    /// stored and the SLOs evaluated. When the engine failed, its error is returned and the
    /// findings of the uncommitted events are not stored (a rerun resumes and finds them).
    pub fn finish(self) -> anyhow::Result<RunReport> {
        let joined = self
            .handle
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the ingest thread panicked")));
        let (summary, sourced) = match joined {
            Ok(done) => done,
            Err(e) => {
                // What is stored is still owed; the rest comes with the rerun.
                if let Some(d) = self.delivery {
                    d.finish(false);
                }
                return Err(e);
            }
        };
        let stored = self.detectors.finish().map_err(anyhow::Error::msg);
        // Delivery ends after the last findings are stored: they are offered too.
        let delivery = self
            .delivery
            .map(|d| d.finish(self.complete_at_end && stored.is_ok()))
            .unwrap_or_default();
        let (findings, counters, files) = stored?;
        let mut resumed = self.scoped.resumed();
        let rules_resumed = resumed.remove(FILE_STATE);
        let rules_resumed_partitions = resumed
            .into_iter()
            .map(|(scope, r)| {
                let partition = scope.strip_prefix(KAFKA_STATE).unwrap_or(&scope);
                (partition.trim_start_matches('/').to_string(), r)
            })
            .collect();
        let agg = lock(&self.agg);
        Ok(RunReport {
            summary,
            kafka: sourced.kafka,
            objects: sourced.objects,
            apis: sourced.apis,
            counters: agg.counters().clone(),
            slo: evaluate(&self.slos, &agg, None),
            detect: DetectReport {
                counters,
                findings,
                suppressed: self.detectors.suppressed(),
                files,
            },
            rules_resumed,
            rules_resumed_partitions,
            delivery,
        })
    }
}
