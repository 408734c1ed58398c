//! A run's delivery: what its store owes the receivers (stored findings, the SLO alert
//! episodes' transitions over closed minutes) offered to a [`Notifier`] every second, and once
//! more when the run ends. Offering is idempotent (each receiver's ledger keeps the keys it has
//! queued), so a restarted run offers exactly what is missing. This module decides when to
//! look; rendering, queueing and sending are `mfascope-notify`'s.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::sink::Location;
use crate::sli::live::Aggregator;
use crate::slo::{Slo, evaluate};
use crate::sync::lock;
use mfascope_notify::OutboxRoot;
use mfascope_notify::{Feed, Notifier, Options, ReceiverConfig, ReceiverStatus};

/// How often the store is looked at for new findings and episode transitions.
const TICK: Duration = Duration::from_secs(1);
const MINUTE_MS: i64 = 60_000;

/// Where delivery goes and how it behaves.
#[derive(Clone, Debug, Default)]
pub struct DeliveryConfig {
    /// The receivers.
    pub receivers: Vec<ReceiverConfig>,
    /// Outbox bounds, backoff, refresh.
    pub options: Options,
    /// How long an ending run waits for receivers to take what is queued.
    pub drain: Duration,
    /// The outboxes' directory [default: `OUT/_state/notify`, beside the table: a local
    /// directory or the object store of `OUT`].
    pub outbox: Option<PathBuf>,
}

impl DeliveryConfig {
    /// Where the outboxes of a run into `out` are.
    pub fn outbox_root(&self, out: &Location) -> OutboxRoot {
        match &self.outbox {
            Some(dir) => OutboxRoot::from(dir.as_path()),
            None => OutboxRoot::of(out),
        }
    }
}

/// Delivery running beside an ingest.
pub struct Delivery {
    notifier: Arc<Notifier>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    drain: Duration,
}

struct Shared {
    feed: Mutex<Feed>,
    agg: Arc<Mutex<Aggregator>>,
    slos: Vec<Slo>,
    notifier: Arc<Notifier>,
    /// Watermark of the last SLO evaluation (skipped while it does not move).
    evaluated_at: Mutex<Option<i64>>,
}

impl Delivery {
    /// Start delivering what `out` owes to `config`'s receivers: the findings of `rules` and
    /// the alerts of `slos` (each with its runbook).
    pub fn start(
        config: &DeliveryConfig,
        out: &Location,
        agg: Arc<Mutex<Aggregator>>,
        (slos, rules): (&[Slo], &crate::detect::RuleSet),
    ) -> anyhow::Result<Delivery> {
        let dir = config.outbox_root(out);
        let notifier = Arc::new(
            Notifier::start(&dir, config.receivers.clone(), config.options)
                .context("starting notification delivery")?,
        );
        let shared = Arc::new(Shared {
            feed: Mutex::new(Feed::new(out, rules.runbooks())),
            agg,
            slos: slos.to_vec(),
            notifier: notifier.clone(),
            evaluated_at: Mutex::new(None),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("notify-feed".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    s.offer(false);
                    std::thread::sleep(TICK);
                }
            })
            .context("starting the notification feed")?;
        Ok(Delivery {
            notifier,
            shared,
            stop,
            thread: Some(thread),
            drain: config.drain,
        })
    }

    /// Each receiver's delivery so far (for `/metrics`).
    pub fn notifier(&self) -> Arc<Notifier> {
        self.notifier.clone()
    }

    /// The run ended: offer what it owes one last time — with the last minute when the input
    /// is complete (`complete`), only closed minutes when it may continue (a stopped follow or
    /// Kafka run) — deliver for at most the drain time, and report.
    pub fn finish(mut self, complete: bool) -> Vec<ReceiverStatus> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.offer(complete);
        // The metrics endpoint may share the notifier: it drains all the same.
        self.notifier.finish(self.drain)
    }
}

impl Shared {
    /// Offer the findings stored since the last call and the episodes' transitions, evaluated
    /// over closed minutes (or over everything when `complete`). Failures are logged and the
    /// same notifications offered again on the next call.
    fn offer(&self, complete: bool) {
        match lock(&self.feed).new_findings() {
            Ok(findings) => {
                if let Err(e) = self.notifier.offer(&findings) {
                    tracing::error!("queueing findings for delivery: {e}");
                }
            }
            Err(e) => tracing::error!("reading stored findings for delivery: {e}"),
        }
        if self.slos.is_empty() {
            return;
        }
        let report = {
            let agg = lock(&self.agg);
            let Some(watermark) = agg.counters().watermark_ms else {
                return;
            };
            let mut last = lock(&self.evaluated_at);
            if !complete && *last == Some(watermark) {
                return;
            }
            *last = Some(watermark);
            // While the input goes on, the minute the watermark is in is not closed yet.
            let at = (!complete).then(|| watermark.div_euclid(MINUTE_MS) * MINUTE_MS);
            evaluate(&self.slos, &agg, at)
        };
        let (all, firing) = lock(&self.feed).episodes(&report);
        if let Err(e) = self.notifier.offer(&all) {
            tracing::error!("queueing SLO alerts for delivery: {e}");
            *lock(&self.evaluated_at) = None;
        }
        self.notifier.firing(&firing);
    }
}
