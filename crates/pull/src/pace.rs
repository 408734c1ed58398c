//! A source's pace that outlives its process: the earliest moment of its next request and the
//! vendor's remaining request budget, kept in a small JSON file rewritten before every request
//! and after every answer, so a restart (or a kill -9 with a request in flight) never exceeds
//! the vendor's rate limit. It owns that file only; it never sends or sleeps.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Longest wait a pace file can impose (a wrong clock must not stall a source for long).
const LONGEST: Duration = Duration::from_secs(3600);

/// The persisted pace (wall-clock epoch milliseconds: it must mean the same after a restart).
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pace {
    /// No request before this.
    pub(crate) not_before_ms: i64,
    /// Requests left in the vendor's window (Okta's `X-Rate-Limit-Remaining`), counting
    /// requests sent whose answer is not in yet.
    pub(crate) remaining: Option<u64>,
    /// When that window ends (`X-Rate-Limit-Reset`).
    pub(crate) reset_ms: i64,
    /// When a request was sent whose answer is not in yet: after a crash its answer is
    /// unknown (it may have said to wait), so the restart waits as after a 429.
    #[serde(default)]
    pub(crate) in_flight_ms: Option<i64>,
}

/// Epoch milliseconds now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The instant `epoch_ms` falls on (now when it has passed; at most [`LONGEST`] ahead).
pub(crate) fn instant_at(epoch_ms: i64) -> Instant {
    let ahead = Duration::from_millis((epoch_ms - now_ms()).max(0) as u64);
    Instant::now() + ahead.min(LONGEST)
}

/// Epoch milliseconds at `at`.
pub(crate) fn epoch_at(at: Instant) -> i64 {
    let now = Instant::now();
    let ahead = at.saturating_duration_since(now).as_millis() as i64;
    now_ms() + ahead
}

/// Where a source's pace is kept (none: `sources check`, which paces only itself).
pub(crate) struct PaceFile(pub(crate) Option<PathBuf>);

impl PaceFile {
    /// The saved pace; a missing or unreadable file is no constraint.
    pub(crate) fn load(&self) -> Pace {
        let Some(path) = &self.0 else {
            return Pace::default();
        };
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Replace the saved pace (written aside, then renamed over). A failure is logged and the
    /// run goes on: pacing within the process is unaffected.
    pub(crate) fn save(&self, pace: &Pace) {
        let Some(path) = &self.0 else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, serde_json::to_vec(pace).unwrap_or_default()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!(
                "keeping the request pace in {}: {e} (a restart may exceed the vendor's rate limit)",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_pace_is_read_back_and_a_missing_file_is_no_constraint() {
        let dir = tempfile::tempdir().unwrap();
        let file = PaceFile(Some(dir.path().join("sub/okta.json")));
        assert_eq!(file.load(), Pace::default());
        let pace = Pace {
            not_before_ms: now_ms() + 1500,
            remaining: Some(3),
            reset_ms: now_ms() + 60_000,
            in_flight_ms: None,
        };
        file.save(&pace);
        assert_eq!(file.load(), pace);
        let wait = instant_at(pace.not_before_ms).saturating_duration_since(Instant::now());
        assert!(wait > Duration::from_millis(1000) && wait <= Duration::from_millis(1500));
        assert!(instant_at(now_ms() + 86_400_000) <= Instant::now() + LONGEST);
    }
}
