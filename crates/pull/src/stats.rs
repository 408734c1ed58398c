//! What each source did, as counters readable while it runs (`/metrics`) and after (the
//! summary). It owns no behaviour.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

/// Running counters of one source.
#[derive(Debug, Default)]
pub struct Stats {
    /// Polls completed or failed.
    pub polls: AtomicU64,
    /// HTTP requests sent (token requests included).
    pub requests: AtomicU64,
    /// Records delivered to the engine.
    pub records: AtomicU64,
    /// Records fetched again (overlap, restart) and skipped as already delivered.
    pub repeats: AtomicU64,
    /// 429 answers waited out.
    pub throttled: AtomicU64,
    /// Requests retried after a 5xx answer or a network failure.
    pub retries: AtomicU64,
    /// Polls that failed after their retries.
    pub errors: AtomicU64,
    /// Access tokens fetched (first one and refreshes).
    pub tokens: AtomicU64,
    /// Everything up to this time (ms since the epoch) has been read; 0 before the first poll.
    pub caught_up_ms: AtomicI64,
    /// The last failure, one line.
    pub last_error: Mutex<Option<String>>,
}

impl Stats {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A copy for the summary.
    pub fn report(&self, name: &str, kind: &str) -> SourceReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let caught = self.caught_up_ms.load(Ordering::Relaxed);
        SourceReport {
            name: name.to_string(),
            kind: kind.to_string(),
            polls: get(&self.polls),
            requests: get(&self.requests),
            records: get(&self.records),
            repeats: get(&self.repeats),
            throttled: get(&self.throttled),
            retries: get(&self.retries),
            errors: get(&self.errors),
            tokens: get(&self.tokens),
            caught_up: (caught > 0).then(|| mfascope_core::time::format_rfc3339(caught)),
            lag_seconds: self.lag_seconds(),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Seconds between now and the time everything has been read up to (None before).
    pub fn lag_seconds(&self) -> Option<f64> {
        let caught = self.caught_up_ms.load(Ordering::Relaxed);
        (caught > 0)
            .then(|| (chrono::Utc::now().timestamp_millis() - caught).max(0) as f64 / 1000.0)
    }

    pub(crate) fn failed(&self, message: String) {
        Stats::add(&self.errors, 1);
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message);
    }
}

/// One source in the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// Its name.
    pub name: String,
    /// Its vendor.
    pub kind: String,
    /// Polls.
    pub polls: u64,
    /// HTTP requests.
    pub requests: u64,
    /// Records delivered.
    pub records: u64,
    /// Records fetched again and skipped.
    pub repeats: u64,
    /// 429 answers waited out.
    pub throttled: u64,
    /// Requests retried.
    pub retries: u64,
    /// Failed polls.
    pub errors: u64,
    /// Access tokens fetched.
    pub tokens: u64,
    /// Read up to (RFC 3339).
    pub caught_up: Option<String>,
    /// Seconds behind now.
    pub lag_seconds: Option<f64>,
    /// The last failure.
    pub last_error: Option<String>,
}
