//! One source's HTTP client: paces requests (a least interval, the vendor's rate-limit headers,
//! `Retry-After`), retries 5xx answers and network failures with exponential backoff and jitter, and waits out 429s as the vendor's headers say. It counts what it did in the
//! source's [`Stats`]. It never reads response bodies beyond handing them back, and never
//! puts a credential in an error (requests are named by method and URL without query).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use crate::pace::{Pace, PaceFile, epoch_at, instant_at, now_ms};
use crate::stats::Stats;

/// Attempts at a request failing with 5xx or a network error.
const ATTEMPTS: u32 = 6;
/// 429 answers in a row before a poll gives up (it is tried again at the next interval).
const THROTTLES: u32 = 12;
/// First backoff ceiling; doubled per attempt up to [`BACKOFF_CAP`]; the wait is drawn
/// uniformly from its upper half (Google's documented schedule: 1 s plus jitter, 2 s, 4 s …).
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Why a request or a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The API answered with an error status.
    #[error("HTTP {status} from {what}{}", detail_suffix(detail))]
    Status {
        /// The status.
        status: StatusCode,
        /// `GET https://host/path`.
        what: String,
        /// The vendor's message, shortened.
        detail: String,
    },
    /// No answer (connection, TLS, timeout).
    #[error("{what}: {detail}")]
    Network {
        /// `GET https://host/path`.
        what: String,
        /// The transport's error.
        detail: String,
    },
    /// An answer that is not what the vendor documents.
    #[error("{0}")]
    Invalid(String),
    /// The run is stopping.
    #[error("stopped")]
    Stopped,
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl PollError {
    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            PollError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An answer with a success status.
pub(crate) struct Reply {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// A source's HTTP client (blocking, on its own single-threaded runtime).
pub(crate) struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    pub(crate) stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    every: Duration,
    /// When the last answer (or failure) came back: `every` is counted from it, so the vendor
    /// sees at least `every` between requests whatever the network's delays.
    last_sent: Option<Instant>,
    hold_until: Option<Instant>,
    /// The vendor's request budget left in its window, and when the window ends (epoch ms).
    budget: Option<(u64, i64)>,
    pace: PaceFile,
}

impl Http {
    pub(crate) fn new(
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
        every: Duration,
        pace: Option<std::path::PathBuf>,
    ) -> Result<Http, PollError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PollError::Invalid(format!("starting the HTTP runtime: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("mfascope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PollError::Invalid(format!("building the HTTP client: {e}")))?;
        let pace = PaceFile(pace);
        let saved = pace.load();
        // A request whose answer was lost in a crash is taken as throttled.
        let lost = saved
            .in_flight_ms
            .map_or(0, |t| t + 2 * BACKOFF_BASE.as_millis() as i64);
        Ok(Http {
            rt,
            client,
            stats,
            stop,
            every,
            last_sent: None,
            hold_until: Some(instant_at(saved.not_before_ms.max(lost))),
            budget: saved.remaining.map(|r| (r, saved.reset_ms)),
            pace,
        })
    }

    /// Sleep until `until`, or fail with [`PollError::Stopped`] when the run stops.
    pub(crate) fn sleep_until(&self, until: Instant) -> Result<(), PollError> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(PollError::Stopped);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(Duration::from_millis(100)));
        }
    }

    /// Send the request `build` makes (again on each attempt) once its turn comes; `what`
    /// names it in errors. Error statuses other than 429 and 5xx are returned at once (the
    /// caller refreshes a token on 401).
    pub(crate) fn send(
        &mut self,
        what: &str,
        build: &mut dyn FnMut(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Reply, PollError> {
        let (mut failures, mut throttles) = (0u32, 0u32);
        loop {
            let turn = [self.hold_until, self.last_sent.map(|t| t + self.every)]
                .into_iter()
                .flatten()
                .max();
            if let Some(turn) = turn {
                self.sleep_until(turn)?;
            }
            if self.stop.load(Ordering::Relaxed) {
                return Err(PollError::Stopped);
            }
            // The vendor's window is spent: wait for its reset. Otherwise this request is
            // taken from the budget before it is sent (a kill mid-request still counts it).
            match self.budget {
                Some((0, reset)) if reset > now_ms() => {
                    self.hold_until = Some(instant_at(reset));
                    continue;
                }
                Some((left, reset)) if reset > now_ms() => self.budget = Some((left - 1, reset)),
                _ => self.budget = None,
            }
            self.save_pace(Instant::now() + self.every, Some(now_ms()));
            Stats::add(&self.stats.requests, 1);
            let answer = self.rt.block_on(async {
                let resp = build(&self.client).send().await?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body.to_vec()))
            });
            self.last_sent = Some(Instant::now());
            let (status, headers, body) = match answer {
                Ok(a) => a,
                Err(e) => {
                    failures += 1;
                    let err = PollError::Network {
                        what: what.to_string(),
                        detail: e.without_url().to_string(),
                    };
                    if failures >= ATTEMPTS {
                        return Err(err);
                    }
                    Stats::add(&self.stats.retries, 1);
                    tracing::debug!("{err}; retrying");
                    self.back_off(failures);
                    continue;
                }
            };
            self.note_limits(&headers, status);
            self.save_pace(
                self.last_sent.unwrap_or_else(Instant::now) + self.every,
                None,
            );
            if status.is_success() {
                return Ok(Reply { headers, body });
            }
            let err = PollError::Status {
                status,
                what: what.to_string(),
                detail: vendor_message(&body),
            };
            if status == StatusCode::TOO_MANY_REQUESTS {
                throttles += 1;
                Stats::add(&self.stats.throttled, 1);
                if throttles >= THROTTLES {
                    return Err(err);
                }
                self.back_off(throttles);
                continue;
            }
            if status.is_server_error() {
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(err);
                }
                Stats::add(&self.stats.retries, 1);
                self.back_off(failures);
                continue;
            }
            return Err(err);
        }
    }

    /// Wait before attempt `n + 1` (unless the vendor already said how long), kept for a
    /// restart too.
    fn back_off(&mut self, n: u32) {
        let now = Instant::now();
        if self.hold_until.is_none_or(|h| h <= now) {
            self.hold_until = Some(now + backoff(n));
        }
        self.save_pace(self.last_sent.unwrap_or(now) + self.every, None);
    }

    /// Keep the pace for a restart: no request before `next` (nor before a hold), the budget
    /// left, and the request in flight since `in_flight_ms`, if any.
    fn save_pace(&self, next: Instant, in_flight_ms: Option<i64>) {
        let not_before = self.hold_until.map_or(next, |h| h.max(next));
        let (remaining, reset_ms) = self.budget.map_or((None, 0), |(r, t)| (Some(r), t));
        self.pace.save(&Pace {
            not_before_ms: epoch_at(not_before),
            remaining,
            reset_ms,
            in_flight_ms,
        });
    }

    /// Rate-limit headers: `Retry-After` (seconds or an HTTP date) on any answer, Okta's
    /// `X-Rate-Limit-Remaining` with `X-Rate-Limit-Reset` (epoch seconds): the budget, and a
    /// hold until the reset once it is spent.
    fn note_limits(&mut self, headers: &HeaderMap, status: StatusCode) {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let now = Instant::now();
        let mut hold = None;
        if let Some(after) = text("retry-after") {
            hold = retry_after(after.trim()).map(|d| now + d);
        }
        let remaining = text("x-rate-limit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
        let reset = text("x-rate-limit-reset").and_then(|v| v.trim().parse::<u64>().ok());
        if let (Some(left), Some(reset)) = (remaining, reset) {
            self.budget = Some((left, epoch_at(now + until_epoch(reset))));
        }
        let exhausted = remaining == Some(0) || status == StatusCode::TOO_MANY_REQUESTS;
        if exhausted
            && hold.is_none()
            && let Some(reset) = reset
        {
            hold = Some(now + until_epoch(reset));
        }
        if let Some(h) = hold {
            self.hold_until = Some(self.hold_until.map_or(h, |old| old.max(h)));
        }
    }
}

/// Exponential backoff with jitter: uniform in [c/2, c] for c = min(cap, base·2^n) — never
/// sooner than a second after the first failure.
fn backoff(n: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << n.min(16))
        .min(BACKOFF_CAP)
        .as_millis() as u64;
    Duration::from_millis(ceiling / 2 + random_u64() % (ceiling / 2 + 1))
}

/// A random number from the operating system (jitter, assertion ids).
pub(crate) fn random_u64() -> u64 {
    use rand::TryRngCore;
    rand::rngs::OsRng.try_next_u64().unwrap_or(0)
}

/// How long until the epoch second `reset` has passed on this machine's clock (a reset in the
/// past is waited as one second: the vendor's clock may be ahead).
fn until_epoch(reset: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(reset)
        .checked_sub(now)
        .unwrap_or(Duration::from_secs(1))
        + Duration::from_millis(50)
}

fn retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.clamp(0, 3_600_000) as u64))
}

/// The vendor's error message from a JSON error body (Okta `errorSummary`, Graph/Google
/// `error.message`, Duo `message`, OAuth `error_description`), else the body's start.
fn vendor_message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let found = [
        "/errorSummary",
        "/error/message",
        "/error_description",
        "/message_detail",
        "/message",
        "/error",
    ]
    .iter()
    .find_map(|p| v.pointer(p).and_then(|m| m.as_str()).map(str::to_string));
    let text = found.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    text.chars().take(200).collect()
}

/// `METHOD scheme://host/path` (no query: it may carry cursors, never secrets, but is long).
pub(crate) fn named(method: &str, url: &url::Url) -> String {
    format!(
        "{method} {}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default() + url.path()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn vendor_messages_are_found_where_each_vendor_puts_them() {
        assert_eq!(
            vendor_message(br#"{"errorSummary":"Invalid token provided"}"#),
            "Invalid token provided"
        );
        assert_eq!(
            vendor_message(br#"{"error":{"code":"x","message":"Access token has expired"}}"#),
            "Access token has expired"
        );
        assert_eq!(vendor_message(br#"{"code":40103,"message":"Invalid signature in request credentials","stat":"FAIL"}"#), "Invalid signature in request credentials");
        assert_eq!(vendor_message(b"plain"), "plain");
    }

    #[test]
    fn backoff_stays_within_its_cap() {
        for n in 0..40 {
            let ceiling = (BACKOFF_BASE * 2u32.pow(n.min(16))).min(BACKOFF_CAP);
            let wait = backoff(n);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "attempt {n}: {wait:?}"
            );
        }
        assert!(backoff(39) >= BACKOFF_CAP / 2);
    }
}
