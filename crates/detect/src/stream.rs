//! The rule engine as an ingest batch observer: findings leave as soon as the watermark lets
//! their events through — announced on stderr when asked (follow mode) and stored under
//! `OUT/findings/` at least every `flush_every`, so a long-running `ingest --follow` keeps
//! neither its findings nor their file in memory.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::finding::{Finding, write_parquet};
use super::{DetectCounters, Detector};
use mfascope_core::event::CanonicalBatch;
use mfascope_core::observe::BatchObserver;
use mfascope_sink::Location;

/// Name of the rule engine's saved state (`_state/observers/rules.state`).
pub const STATE_NAME: &str = "rules";

/// Findings kept for the end-of-run report (the count is exact; the list is capped).
const REPORT_CAP: usize = 10_000;

struct State {
    detector: Detector,
    /// Ids of the findings stored (by earlier runs too): a finding fired again after a restart
    /// or a replay is not stored twice.
    stored: HashSet<String>,
    /// Findings not stored again because their id was.
    repeats: u64,
    /// State saves so far, the last one's bytes and milliseconds.
    saves: (u64, u64, u64),
    /// Milliseconds the state took to restore or rebuild at start.
    restore_ms: u64,
    pending: Vec<Finding>,
    reported: Vec<Finding>,
    written: Vec<String>,
    last_flush: Instant,
    /// When the last batch arrived (wall clock).
    last_batch: Instant,
    error: Option<String>,
}

/// Sees each finding as it fires (the live dashboard).
pub type FindingTap = Box<dyn Fn(&[Finding]) + Send + Sync>;

/// A [`Detector`] fed by the pipeline that stores its findings as it goes.
pub struct LiveDetector {
    state: Mutex<State>,
    out: Location,
    /// Where findings files are written: `OUT/findings`, or a local temp directory they are
    /// uploaded from when `OUT` is on object storage.
    dir: PathBuf,
    _upload_from: Option<tempfile::TempDir>,
    flush_every: Duration,
    announce: bool,
    /// Live sources: once no batch arrived for this long, evaluate what waits for the
    /// watermark (a burst followed by silence is reported without waiting for more traffic).
    idle_release: Option<Duration>,
    tap: Option<FindingTap>,
}

impl LiveDetector {
    /// Store findings under `OUT/findings/` at least every `flush_every` (never one whose id
    /// is stored already); with `announce`, print one line per finding on stderr as it fires.
    pub fn new(
        detector: Detector,
        out: &Location,
        flush_every: Duration,
        announce: bool,
    ) -> std::io::Result<Self> {
        let stored = super::finding::stored_ids(out).map_err(std::io::Error::other)?;
        let (dir, upload_from) = match out {
            Location::Local(root) => (root.join("findings"), None),
            Location::Remote(_) => {
                let tmp = tempfile::Builder::new()
                    .prefix("mfascope-findings-")
                    .tempdir()?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        Ok(LiveDetector {
            state: Mutex::new(State {
                detector,
                stored,
                repeats: 0,
                saves: (0, 0, 0),
                restore_ms: 0,
                pending: Vec::new(),
                reported: Vec::new(),
                written: Vec::new(),
                last_flush: Instant::now(),
                last_batch: Instant::now(),
                error: None,
            }),
            out: out.clone(),
            dir,
            _upload_from: upload_from,
            flush_every,
            announce,
            idle_release: None,
            tap: None,
        })
    }

    /// Evaluate rows waiting for the watermark once the input has been idle for `after`
    /// (wall clock; live sources).
    pub fn release_when_idle(mut self, after: Duration) -> Self {
        self.idle_release = Some(after);
        self
    }

    /// Hand every new finding to `tap` too, as it fires.
    pub fn with_tap(mut self, tap: FindingTap) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Write `findings` under `OUT/findings/`; returns where, if anything was written.
    fn store(&self, findings: &[Finding]) -> Result<Option<String>, String> {
        let written = write_parquet(&self.dir, findings).map_err(|e| e.to_string())?;
        let Some(path) = written else {
            return Ok(None);
        };
        match &self.out {
            Location::Local(_) => Ok(Some(path.display().to_string())),
            Location::Remote(remote) => {
                let rel = format!(
                    "findings/{}",
                    path.file_name().unwrap_or_default().display()
                );
                remote.put_file(&path, &rel).map_err(|e| e.to_string())?;
                let _ = std::fs::remove_file(&path);
                Ok(Some(remote.describe(&rel)))
            }
        }
    }

    /// The rule engine's counters so far (state sizes and evictions included).
    pub fn counters(&self) -> DetectCounters {
        Self::counters_of(&self.lock())
    }

    fn counters_of(s: &State) -> DetectCounters {
        DetectCounters {
            repeats_not_stored: s.repeats,
            state_saves: s.saves.0,
            state_bytes: s.saves.1,
            state_save_ms: s.saves.2,
            state_restore_ms: s.restore_ms,
            ..s.detector.counters()
        }
    }

    /// Record how long bringing the state back took at start (for the counters).
    pub fn restored_in(&self, millis: u64) {
        self.lock().restore_ms = millis;
    }

    /// [`Detector::learn_history`] (rebuilding state from stored events).
    pub fn learn_history(&self, batch: &CanonicalBatch) {
        self.lock().detector.learn_history(batch);
    }

    /// [`Detector::state_span_ms`] and [`Detector::history_span_ms`] of the rules run.
    pub fn spans_ms(&self) -> (i64, i64) {
        let s = self.lock();
        (s.detector.state_span_ms(), s.detector.history_span_ms())
    }

    /// Continue from state saved by an earlier run ([`Detector::restore_state`]); the findings
    /// it had not stored yet are stored with the next ones (unless stored since). On an error
    /// nothing changed.
    pub fn restore(&self, bytes: &[u8]) -> Result<super::Restored, super::SnapshotError> {
        let mut s = self.lock();
        let mut restored = s.detector.restore_state(bytes)?;
        s.detector.findings.append(&mut restored.unstored);
        Ok(restored)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn collect(&self, s: &mut State, force: bool) {
        let mut new = s.detector.take_findings();
        let before = new.len();
        new.retain(|f| s.stored.insert(f.id.clone()));
        s.repeats += (before - new.len()) as u64;
        if let (Some(tap), false) = (&self.tap, new.is_empty()) {
            tap(&new);
        }
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
        match self.store(&s.pending) {
            Ok(path) => {
                s.written.extend(path);
                let room = REPORT_CAP.saturating_sub(s.reported.len());
                let pending = std::mem::take(&mut s.pending);
                s.reported.extend(pending.into_iter().take(room));
            }
            Err(e) => {
                s.error = Some(format!(
                    "writing findings under {}: {e}",
                    self.out.describe("findings")
                ));
            }
        }
        s.last_flush = Instant::now();
    }

    /// End of input: evaluate what is still buffered and store every finding. Returns the
    /// findings of the run (capped at 10,000; the counters hold the exact count), the
    /// counters and the files written, or the storage error.
    pub fn finish(&self) -> Result<(Vec<Finding>, DetectCounters, Vec<String>), String> {
        let mut s = self.lock();
        s.detector.finish();
        self.collect(&mut s, true);
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let counters = Self::counters_of(&s);
        Ok((
            std::mem::take(&mut s.reported),
            counters,
            std::mem::take(&mut s.written),
        ))
    }
}

impl BatchObserver for LiveDetector {
    fn observe(&self, batch: &CanonicalBatch) {
        let mut s = self.lock();
        s.last_batch = Instant::now();
        s.detector.observe(batch);
        self.collect(&mut s, false);
    }

    fn save_state(&self) -> Option<(String, Vec<u8>)> {
        let started = Instant::now();
        let mut s = self.lock();
        self.collect(&mut s, false);
        let bytes = s.detector.save_state(&s.pending);
        s.saves = (
            s.saves.0 + 1,
            bytes.len() as u64,
            started.elapsed().as_millis() as u64,
        );
        Some((STATE_NAME.to_string(), bytes))
    }

    fn tick(&self) {
        let Some(after) = self.idle_release else {
            return;
        };
        let mut s = self.lock();
        if s.detector.pending_rows() > 0 && s.last_batch.elapsed() >= after {
            s.detector.finish();
            self.collect(&mut s, false);
        }
    }
}
