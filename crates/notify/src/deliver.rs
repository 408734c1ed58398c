//! Sending one receiver's queue, oldest first, until each notification is acknowledged (2xx):
//! network errors, timeouts, 408, 425, 429 and 5xx are retried with exponential backoff and
//! jitter (or after the receiver's `Retry-After`); any other answer parks the notification with
//! the response. One request at a time per receiver keeps order (an episode's resolution never
//! overtakes its start). Alertmanager receivers also get the firing SLO alerts again every
//! refresh interval, so Alertmanager does not resolve them by its own timeout.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::format::{Format, Request};
use crate::lane::Lane;
use crate::now_ms;

/// First retry delay; it doubles per failed attempt up to the configured bound.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// How a request ended.
enum Outcome {
    Delivered,
    Retry {
        after: Option<Duration>,
        error: String,
    },
    Refused {
        status: u16,
        body: String,
    },
}

/// Deliver `lane`'s queue until the drain deadline passes (or the queue is empty once one is
/// set).
pub(crate) async fn run(lane: Arc<Lane>, client: reqwest::Client) {
    let mut failures: u32 = 0;
    loop {
        let draining = lane.deadline();
        if draining.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let batch = match lane.next_batch() {
            Ok(b) => b,
            Err(e) => {
                lane.fail(e.to_string());
                lane.pause(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            if draining.is_some() {
                return;
            }
            lane.pause(Duration::from_secs(1)).await;
            continue;
        }
        let items: Vec<_> = batch.iter().map(|q| q.notification.clone()).collect();
        let request = match lane
            .config
            .format
            .render(&items, &lane.config.ctx, now_ms())
        {
            Ok(r) => r,
            Err(e) => {
                let _ = lane.refuse(&batch, &e.to_string(), None, "");
                continue;
            }
        };
        match send(&client, &lane.config.url.expose_str(), request).await {
            Outcome::Delivered => {
                failures = 0;
                if let Err(e) = lane.delivered(&batch) {
                    lane.fail(e.to_string());
                }
            }
            Outcome::Retry { after, error } => {
                failures = failures.saturating_add(1);
                lane.stats.failed_attempts.fetch_add(1, Relaxed);
                lane.fail(error);
                let wait = after.unwrap_or_else(|| backoff(failures, lane.max_backoff));
                lane.pause_until_deadline(wait).await;
            }
            Outcome::Refused { status, body } => {
                failures = 0;
                let reason = format!("the receiver refused it: HTTP {status}");
                if let Err(e) = lane.refuse(&batch, &reason, Some(status), &body) {
                    lane.fail(e.to_string());
                }
            }
        }
    }
}

/// Re-send the firing SLO alerts to an Alertmanager every `every` until the drain starts.
pub(crate) async fn refresh(lane: Arc<Lane>, client: reqwest::Client, every: Duration) {
    loop {
        lane.pause(every).await;
        if lane.deadline().is_some() {
            return;
        }
        let firing = lane.firing();
        if firing.is_empty() {
            continue;
        }
        for chunk in firing.chunks(Format::Alertmanager.batch()) {
            let Ok(request) = lane.config.format.render(chunk, &lane.config.ctx, now_ms()) else {
                continue;
            };
            match send(&client, &lane.config.url.expose_str(), request).await {
                Outcome::Delivered => lane.stats.refreshed.fetch_add(chunk.len() as u64, Relaxed),
                _ => lane.stats.refresh_failures.fetch_add(1, Relaxed),
            };
        }
    }
}

async fn send(client: &reqwest::Client, url: &str, request: Request) -> Outcome {
    let mut rb = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(request.body);
    for (k, v) in request.headers {
        rb = rb.header(k, v);
    }
    let response = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                after: None,
                error: describe(&e),
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let body = response.text().await.unwrap_or_default();
    let code = status.as_u16();
    if matches!(code, 408 | 425 | 429) || status.is_server_error() {
        Outcome::Retry {
            after,
            error: format!(
                "HTTP {code}: {}",
                body.chars().take(200).collect::<String>()
            ),
        }
    } else {
        Outcome::Refused { status: code, body }
    }
}

/// A network error without its URL (which may hold a credential).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

/// `Retry-After`: delay seconds or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    let wait = if let Ok(secs) = v.trim().parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
        let ms = at.timestamp_millis() - now_ms();
        Duration::from_millis(ms.max(0) as u64)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The wait after the `failures`-th failure in a row: between half and all of
/// `min(max, 1 s × 2^(failures-1))` ("equal jitter"), so receivers coming back are not hit by
/// every sender at once.
fn backoff(failures: u32, max: Duration) -> Duration {
    let cap = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(max);
    // Jitter, not secrecy: the clock's nanoseconds and the pid spread senders apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = nanos ^ u128::from(std::process::id());
    let r = xxhash_rust::xxh3::xxh3_64(&seed.to_le_bytes()) % 1_000;
    cap / 2 + cap / 2 * r as u32 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_bound() {
        let max = Duration::from_secs(300);
        for (n, cap) in [(1, 1), (2, 2), (4, 8), (12, 300), (40, 300)] {
            let d = backoff(n, max);
            let cap = Duration::from_secs(cap);
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {n}: {d:?} outside {:?}..={cap:?}",
                cap / 2
            );
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_bounded() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
