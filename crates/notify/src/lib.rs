//! Delivery of findings and SLO alert episodes to the tools people already use: Alertmanager,
//! webhooks (mfascope's signed JSON, Slack, PagerDuty, Splunk HEC, OCSF). A [`Notifier`] keeps
//! one durable [`outbox::Outbox`] per receiver under `OUT/_state/notify/` and a sender per
//! receiver that retries until the receiver acknowledges; what it cannot deliver is parked and
//! listed, never dropped. It renders and sends; it never decides what fires (the rule engine and
//! the SLO evaluator do) and never writes the table.
//!
//! ```no_run
//! use mfascope_notify::{Notifier, Options, ReceiverConfig, format::Format};
//!
//! let am = ReceiverConfig::new(Format::Alertmanager, "http://127.0.0.1:9093/api/v2/alerts");
//! let root = std::path::Path::new("out/_state/notify").into();
//! let notifier = Notifier::start(&root, vec![am], Options::default())?;
//! notifier.offer(&[/* notifications */])?;
//! let status = notifier.finish(std::time::Duration::from_secs(10));
//! println!("{} queued", status[0].queued);
//! # Ok::<(), mfascope_notify::NotifyError>(())
//! ```

mod deliver;
pub mod feed;
pub mod format;
mod lane;
pub mod notification;
pub mod outbox;
pub mod secret;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use format::{Context, Format};
use lane::Lane;
use outbox::{Limits, Outbox, OutboxError, ReceiverInfo};

pub use feed::Feed;
pub use notification::{AlertStatus, Notification, SloAlert};
pub use secret::{Secret, SecretError};

/// Where a run's outboxes live, under `OUT`.
pub const OUTBOX_DIR: &str = "_state/notify";

pub use store::OutboxRoot;

/// One receiver.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// Its format.
    pub format: Format,
    /// Its URL (a secret: Slack's webhook URL is the credential).
    pub url: Secret,
    /// What rendering needs (key, external URL).
    pub ctx: Context,
}

impl ReceiverConfig {
    /// A receiver at `url` in `format`, no key yet.
    pub fn new(format: Format, url: &str) -> ReceiverConfig {
        ReceiverConfig {
            format,
            url: Secret::new(url),
            ctx: Context::default(),
        }
    }

    /// How it is named and shown: `<format>-<hash of the URL>`, scheme and host only.
    pub fn info(&self) -> ReceiverInfo {
        let url = self.url.expose_str();
        let hash = xxhash_rust::xxh3::xxh3_64(url.as_bytes());
        let target = match url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = host.rsplit('@').next().unwrap_or(host);
                format!("{scheme}://{host}")
            }
            None => "(not a URL)".to_string(),
        };
        ReceiverInfo {
            id: format!("{}-{:012x}", self.format, hash >> 16),
            format: self.format.to_string(),
            target,
        }
    }
}

/// How delivery behaves.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Bounds of each outbox.
    pub limits: Limits,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// How often firing SLO alerts are re-sent to Alertmanager (below its `resolve_timeout`,
    /// 5m by default).
    pub refresh_every: Duration,
    /// Longest a request may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            max_backoff: Duration::from_secs(300),
            refresh_every: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A receiver's delivery, as `/metrics` and `mfascope notify status` show it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReceiverStatus {
    /// Who.
    pub receiver: ReceiverInfo,
    /// Waiting in the outbox.
    pub queued: usize,
    /// Parked (refused, overflowed, expired), in total.
    pub parked: usize,
    /// Age of the oldest waiting one (ms).
    pub oldest_ms: Option<i64>,
    /// Enqueued in this run.
    pub enqueued: u64,
    /// Acknowledged in this run.
    pub delivered: u64,
    /// Failed attempts (retried) in this run.
    pub failed_attempts: u64,
    /// Parked in this run.
    pub parked_now: u64,
    /// Parked in this run because the outbox was full.
    pub overflowed: u64,
    /// Parked in this run because they outlived the age bound.
    pub expired: u64,
    /// Firing alerts re-sent to Alertmanager in this run.
    pub refreshed: u64,
    /// Delivery latency from enqueue to acknowledgement in this run: median and p99 (ms).
    pub latency_ms: Option<(u64, u64)>,
    /// The last failure, when there was one.
    pub last_error: Option<String>,
}

/// Delivers to a run's receivers on its own thread.
pub struct Notifier {
    lanes: Vec<Arc<Lane>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Delivery could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// An outbox could not be opened.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A receiver lacks what its format needs.
    #[error(transparent)]
    Render(#[from] format::RenderError),
    /// The HTTP client or the thread could not start.
    #[error("starting delivery: {0}")]
    Start(String),
}

impl Notifier {
    /// Open an outbox per receiver under `root` (local, or on the object store of the run's
    /// output) and start delivering what they hold.
    pub fn start(
        root: &OutboxRoot,
        receivers: Vec<ReceiverConfig>,
        opts: Options,
    ) -> Result<Notifier, NotifyError> {
        let mut lanes = Vec::new();
        for r in receivers {
            r.format.check(&r.ctx)?;
            let outbox = Outbox::open(root, r.info(), opts.limits)?;
            lanes.push(Arc::new(Lane::new(r, outbox, opts.max_backoff)));
        }
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("mfascope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Start(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NotifyError::Start(e.to_string()))?;
        let tasks = lanes.clone();
        let thread = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut set = tokio::task::JoinSet::new();
                    for lane in tasks {
                        if lane.config.format == Format::Alertmanager {
                            set.spawn(deliver::refresh(
                                lane.clone(),
                                client.clone(),
                                opts.refresh_every,
                            ));
                        }
                        set.spawn(deliver::run(lane, client.clone()));
                    }
                    while set.join_next().await.is_some() {}
                });
            })
            .map_err(|e| NotifyError::Start(e.to_string()))?;
        Ok(Notifier {
            lanes,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Queue `items` for every receiver that carries them and has not had their keys yet.
    pub fn offer(&self, items: &[Notification]) -> Result<(), OutboxError> {
        for lane in &self.lanes {
            lane.offer(items)?;
        }
        Ok(())
    }

    /// The SLO alerts firing now (re-sent to Alertmanager receivers every refresh interval).
    pub fn firing(&self, firing: &[Notification]) {
        for lane in &self.lanes {
            if lane.config.format == Format::Alertmanager {
                lane.set_firing(firing.to_vec());
            }
        }
    }

    /// Each receiver's delivery so far.
    pub fn status(&self) -> Vec<ReceiverStatus> {
        self.lanes.iter().map(|l| status(l)).collect()
    }

    /// Deliver what is queued for at most `drain`, then stop; what is left stays in the
    /// outboxes for the next run. Returns each receiver's status at the end (still readable
    /// by whoever shares the notifier, e.g. the metrics endpoint).
    pub fn finish(&self, drain: Duration) -> Vec<ReceiverStatus> {
        let until = Instant::now() + drain;
        for lane in &self.lanes {
            lane.drain(until);
        }
        let thread = mfascope_core::sync::lock(&self.thread).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        self.status()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if mfascope_core::sync::lock(&self.thread).is_some() {
            let now = Instant::now();
            for lane in &self.lanes {
                lane.drain(now);
            }
        }
    }
}

fn status(lane: &Lane) -> ReceiverStatus {
    let o = mfascope_core::sync::lock(&lane.outbox);
    let s = &lane.stats;
    let latency = mfascope_core::sync::lock(&s.latency)
        .as_ref()
        .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99)));
    ReceiverStatus {
        receiver: o.info().clone(),
        queued: o.len(),
        parked: o.parked_len(),
        oldest_ms: o.oldest_ms().map(|t| now_ms() - t),
        enqueued: s.enqueued.load(Relaxed),
        delivered: s.delivered.load(Relaxed),
        failed_attempts: s.failed_attempts.load(Relaxed),
        parked_now: s.parked.load(Relaxed),
        overflowed: s.overflowed.load(Relaxed),
        expired: s.expired.load(Relaxed),
        refreshed: s.refreshed.load(Relaxed),
        latency_ms: latency,
        last_error: mfascope_core::sync::lock(&s.last_error).clone(),
    }
}

/// Wall clock, epoch ms.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_is_shown_by_scheme_and_host_only() {
        let r = ReceiverConfig::new(
            Format::Slack,
            "https://hooks.slack.com/services/T000/B000/XXXXSECRET?x=1",
        );
        let info = r.info();
        assert_eq!(info.target, "https://hooks.slack.com");
        assert!(info.id.starts_with("slack-"));
        assert!(!format!("{info:?}{r:?}").contains("XXXXSECRET"));
        let with_user = ReceiverConfig::new(Format::Generic, "http://u:pw@host:8080/hook");
        assert_eq!(with_user.info().target, "http://host:8080");
    }
}
