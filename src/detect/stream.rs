//! The rule engine as an ingest batch observer: findings leave as soon as the watermark lets
//! their events through — announced on stderr when asked (follow mode) and stored under
//! `OUT/findings/` at least every `flush_every`, so a long-running `ingest --follow` keeps
//! neither its findings nor their file in memory.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

use super::finding::{Finding, write_parquet};
use super::{DetectCounters, Detector};
use crate::pipeline::BatchObserver;

/// Findings kept for the end-of-run report (the count is exact; the list is capped).
const REPORT_CAP: usize = 10_000;

struct State {
    detector: Detector,
    pending: Vec<Finding>,
    reported: Vec<Finding>,
    written: Vec<PathBuf>,
    last_flush: Instant,
    error: Option<String>,
}

/// A [`Detector`] fed by the pipeline that stores its findings as it goes.
pub struct LiveDetector {
    state: Mutex<State>,
    dir: PathBuf,
    flush_every: Duration,
    announce: bool,
}

impl LiveDetector {
    /// Store findings under `dir` at least every `flush_every`; with `announce`, print one
    /// line per finding on stderr as it fires.
    pub fn new(detector: Detector, dir: PathBuf, flush_every: Duration, announce: bool) -> Self {
        LiveDetector {
            state: Mutex::new(State {
                detector,
                pending: Vec::new(),
                reported: Vec::new(),
                written: Vec::new(),
                last_flush: Instant::now(),
                error: None,
            }),
            dir,
            flush_every,
            announce,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn collect(&self, s: &mut State, force: bool) {
        let new = s.detector.take_findings();
        if self.announce {
            for f in &new {
                eprintln!(
                    "finding: {} {} {} {}",
                    f.severity,
                    f.attack.first().map_or("-", String::as_str),
                    f.group_key,
                    f.summary
                );
            }
        }
        s.pending.extend(new);
        if s.pending.is_empty() || !(force || s.last_flush.elapsed() >= self.flush_every) {
            return;
        }
        match write_parquet(&self.dir, &s.pending) {
            Ok(path) => {
                s.written.extend(path);
                let room = REPORT_CAP.saturating_sub(s.reported.len());
                let pending = std::mem::take(&mut s.pending);
                s.reported.extend(pending.into_iter().take(room));
            }
            Err(e) => {
                s.error = Some(format!(
                    "writing findings under {}: {e}",
                    self.dir.display()
                ));
            }
        }
        s.last_flush = Instant::now();
    }

    /// End of input: evaluate what is still buffered and store every finding. Returns the
    /// findings of the run (capped at 10,000; the counters hold the exact count), the
    /// counters and the files written, or the storage error.
    pub fn finish(&self) -> Result<(Vec<Finding>, DetectCounters, Vec<PathBuf>), String> {
        let mut s = self.lock();
        s.detector.finish();
        self.collect(&mut s, true);
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        Ok((
            std::mem::take(&mut s.reported),
            s.detector.counters(),
            std::mem::take(&mut s.written),
        ))
    }
}

impl BatchObserver for LiveDetector {
    fn observe(&self, batch: &RecordBatch) {
        let mut s = self.lock();
        s.detector.observe(batch);
        self.collect(&mut s, false);
    }
}
