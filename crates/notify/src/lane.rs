//! One receiver as the run sees it: its configuration, its outbox, the counters `/metrics` and
//! `notify status` show, and the wake-up the sender waits on. Shared by the thread that offers
//! notifications and the receiver's sender task; holds its outbox lock only around file work,
//! never across a request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use mfascope_core::sync::lock;

use crate::notification::Notification;
use crate::outbox::{Outbox, OutboxError, Queued};
use crate::{ReceiverConfig, now_ms};

/// What a receiver's delivery did in this run.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) enqueued: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) parked: AtomicU64,
    pub(crate) overflowed: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) refreshed: AtomicU64,
    pub(crate) refresh_failures: AtomicU64,
    /// Milliseconds from enqueue to acknowledgement.
    pub(crate) latency: Mutex<Option<hdrhistogram::Histogram<u64>>>,
    pub(crate) last_error: Mutex<Option<String>>,
}

pub(crate) struct Lane {
    pub(crate) config: ReceiverConfig,
    pub(crate) outbox: Mutex<Outbox>,
    pub(crate) stats: Stats,
    pub(crate) max_backoff: Duration,
    wake: tokio::sync::Notify,
    /// Set when the run ends: deliver until then, or until the queue is empty.
    drain_until: Mutex<Option<Instant>>,
    /// Alertmanager: the SLO alerts firing now, re-sent every refresh interval.
    firing: Mutex<Vec<Notification>>,
}

impl Lane {
    pub(crate) fn new(config: ReceiverConfig, outbox: Outbox, max_backoff: Duration) -> Lane {
        Lane {
            config,
            outbox: Mutex::new(outbox),
            stats: Stats::default(),
            max_backoff,
            wake: tokio::sync::Notify::new(),
            drain_until: Mutex::new(None),
            firing: Mutex::new(Vec::new()),
        }
    }

    /// Queue what this receiver carries of `items` and wake its sender.
    pub(crate) fn offer(&self, items: &[Notification]) -> Result<(), OutboxError> {
        let carried: Vec<Notification> = items
            .iter()
            .filter(|n| self.config.format.carries(n))
            .cloned()
            .collect();
        if carried.is_empty() {
            return Ok(());
        }
        let done = lock(&self.outbox).enqueue(&carried, now_ms())?;
        self.stats.enqueued.fetch_add(done.queued as u64, Relaxed);
        self.stats
            .overflowed
            .fetch_add(done.overflowed as u64, Relaxed);
        self.stats.parked.fetch_add(done.overflowed as u64, Relaxed);
        if done.queued > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }

    pub(crate) fn set_firing(&self, firing: Vec<Notification>) {
        *lock(&self.firing) = firing;
    }

    pub(crate) fn firing(&self) -> Vec<Notification> {
        lock(&self.firing).clone()
    }

    /// Park what outlived the age bound, then the next requests' worth of the queue.
    pub(crate) fn next_batch(&self) -> Result<Vec<Queued>, OutboxError> {
        let mut o = lock(&self.outbox);
        let expired = o.expire(now_ms())? as u64;
        self.stats.expired.fetch_add(expired, Relaxed);
        self.stats.parked.fetch_add(expired, Relaxed);
        Ok(o.front(self.config.format.batch()))
    }

    pub(crate) fn delivered(&self, batch: &[Queued]) -> Result<(), OutboxError> {
        lock(&self.outbox).ack(batch)?;
        self.stats.delivered.fetch_add(batch.len() as u64, Relaxed);
        let now = now_ms();
        let mut h = lock(&self.stats.latency);
        let h = h.get_or_insert_with(|| {
            hdrhistogram::Histogram::new_with_bounds(1, 30 * 86_400_000, 3).expect("valid bounds")
        });
        for q in batch {
            let _ = h.record((now - q.enqueued_ms).max(1) as u64);
        }
        Ok(())
    }

    pub(crate) fn refuse(
        &self,
        batch: &[Queued],
        reason: &str,
        status: Option<u16>,
        body: &str,
    ) -> Result<(), OutboxError> {
        lock(&self.outbox).refuse(batch, reason, status, body, now_ms())?;
        self.stats.parked.fetch_add(batch.len() as u64, Relaxed);
        self.fail(format!(
            "{reason}: {}",
            body.chars().take(200).collect::<String>()
        ));
        Ok(())
    }

    pub(crate) fn fail(&self, error: String) {
        tracing::warn!(receiver = %self.config.info().id, "delivery: {error}");
        *lock(&self.stats.last_error) = Some(error);
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        *lock(&self.drain_until)
    }

    pub(crate) fn drain(&self, until: Instant) {
        *lock(&self.drain_until) = Some(until);
        self.wake.notify_one();
    }

    /// Wait `d`, or less when woken (new notifications, the drain starting).
    pub(crate) async fn pause(&self, d: Duration) {
        let _ = tokio::time::timeout(d, self.wake.notified()).await;
    }

    /// Wait `d` (a backoff), cut short only by the drain deadline.
    pub(crate) async fn pause_until_deadline(&self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            let now = Instant::now();
            let end = self.deadline().map_or(until, |dl| dl.min(until));
            if now >= end {
                return;
            }
            self.pause(end - now).await;
        }
    }
}
