//! The rule engine as ingest batch observers. A [`LiveDetector`] runs the rules over one scope's
//! events (a file ingest's store, or one Kafka partition: the partition is the unit of rule
//! state, as it is of offsets); [`LiveRules`] holds a run's detectors and the [`FindingStore`]
//! they share. Findings leave as soon as the watermark lets their events through — announced
//! on stderr when asked (follow mode) and stored under `OUT/findings/` at least every
//! `flush_every`, never one whose id is stored already — so a long-running `ingest --follow`
//! keeps neither its findings nor their file in memory. This module never reads events from
//! the store (rebuilding state is the caller's, through [`LiveDetector::learn_history`] and
//! [`BatchObserver::observe`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::finding::{Finding, read_stored_ids, write_parquet};
use super::{DetectCounters, Detector};
use mfascope_core::event::CanonicalBatch;
use mfascope_core::observe::BatchObserver;
use mfascope_core::sync::lock;
use mfascope_sink::Location;

/// Name of the rule engine's saved state (`_state/observers/rules.state`).
pub const STATE_NAME: &str = "rules";

/// Findings kept for the end-of-run report (the count is exact; the list is capped).
const REPORT_CAP: usize = 10_000;

/// Sees each finding as it fires (the live dashboard).
pub type FindingTap = Box<dyn Fn(&[Finding]) + Send + Sync>;

/// What the store knows and did.
#[derive(Default)]
struct Stored {
    /// Ids of the findings stored (by earlier runs and other instances too).
    ids: HashSet<String>,
    /// Findings files whose ids are in `ids`.
    files: HashSet<String>,
    /// Findings not stored again because their id was.
    repeats: u64,
    reported: Vec<Finding>,
    written: Vec<String>,
    error: Option<String>,
}

/// Where a run's findings go: `OUT/findings/` (each id once, across restarts, replays and
/// the instances sharing `OUT`), the tap, and stderr when announcing.
pub struct FindingStore {
    stored: Mutex<Stored>,
    out: Location,
    /// Where findings files are written: `OUT/findings`, or a local temp directory they are
    /// uploaded from when `OUT` is on object storage.
    dir: PathBuf,
    _upload_from: Option<mfascope_sink::scratch::Scratch>,
    /// The findings table each written file is added to (the file is read only once added).
    table: Mutex<mfascope_sink::table::FindingsTable>,
    flush_every: Duration,
    announce: bool,
    tap: Option<FindingTap>,
}

impl FindingStore {
    /// Store findings under `OUT/findings/` at least every `flush_every` (never one whose id
    /// is stored already); with `announce`, print one line per finding on stderr as it fires;
    /// hand each new one to `tap`.
    pub fn new(
        out: &Location,
        flush_every: Duration,
        announce: bool,
        tap: Option<FindingTap>,
    ) -> std::io::Result<Self> {
        let (dir, upload_from) = match out {
            Location::Local(root) => (root.join("findings"), None),
            Location::Remote(_) => {
                let tmp = mfascope_sink::scratch::Scratch::new("mfascope-findings-")?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let store = FindingStore {
            stored: Mutex::new(Stored::default()),
            out: out.clone(),
            dir,
            _upload_from: upload_from,
            table: Mutex::new(mfascope_sink::table::FindingsTable::new(out)),
            flush_every,
            announce,
            tap,
        };
        store.refresh().map_err(std::io::Error::other)?;
        Ok(store)
    }

    /// Learn the ids of findings stored since (by the instance a Kafka partition comes from).
    pub fn refresh(&self) -> Result<(), String> {
        let mut s = lock(&self.stored);
        let s = &mut *s;
        read_stored_ids(&self.out, &mut s.files, &mut s.ids)
    }

    /// The findings of `new` not stored before, each announced and tapped once.
    fn keep_new(&self, mut new: Vec<Finding>) -> Vec<Finding> {
        let mut s = lock(&self.stored);
        let before = new.len();
        new.retain(|f| s.ids.insert(f.id.clone()));
        s.repeats += (before - new.len()) as u64;
        drop(s);
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
        new
    }

    /// Write `findings` to one file under `OUT/findings/`; false (the error kept for the end
    /// of the run) when that failed, and they stay with the caller.
    fn store(&self, findings: &[Finding]) -> bool {
        let mut s = lock(&self.stored);
        match self.write(findings) {
            Ok(Some((rel, shown))) => {
                s.files.insert(rel);
                s.written.push(shown);
                let room = REPORT_CAP.saturating_sub(s.reported.len());
                s.reported.extend(findings.iter().take(room).cloned());
                true
            }
            Ok(None) => true,
            Err(e) => {
                s.error = Some(format!(
                    "writing findings under {}: {e}",
                    self.out.describe("findings")
                ));
                false
            }
        }
    }

    /// Write a findings file and add it to the findings table: its path relative to `OUT`
    /// and as shown to users. A file written but not added (a crash in between) is never
    /// read: its findings are still pending in the rule state saved before, or not found yet.
    fn write(&self, findings: &[Finding]) -> Result<Option<(String, String)>, String> {
        let written = write_parquet(&self.dir, findings).map_err(|e| e.to_string())?;
        let Some(path) = written else {
            return Ok(None);
        };
        let name = path.file_name().unwrap_or_default().display().to_string();
        let bytes = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        let rel = format!("findings/{name}");
        let shown = match &self.out {
            Location::Local(_) => path.display().to_string(),
            Location::Remote(remote) => {
                remote.put_file(&path, &rel).map_err(|e| e.to_string())?;
                let _ = std::fs::remove_file(&path);
                remote.describe(&rel)
            }
        };
        lock(&self.table)
            .add(&name, bytes, findings.len() as u64)
            .map_err(|e| e.to_string())?;
        Ok(Some((rel, shown)))
    }
}

/// One scope's detector and the findings it has not stored yet.
struct State {
    detector: Detector,
    pending: Vec<Finding>,
    /// State saves so far, the last one's bytes and milliseconds.
    saves: (u64, u64, u64),
    /// Milliseconds the state took to restore or rebuild at start.
    restore_ms: u64,
    last_flush: Instant,
    /// When the last batch arrived (wall clock).
    last_batch: Instant,
    /// The scope closed: its state went on with its last commit (gauges no longer count).
    closed: bool,
}

/// A [`Detector`] fed one scope's batches by the pipeline, storing its findings as it goes.
pub struct LiveDetector {
    state: Mutex<State>,
    store: Arc<FindingStore>,
    /// Live sources: once no batch arrived for this long, evaluate what waits for the
    /// watermark (a burst followed by silence is reported without waiting for more traffic).
    idle_release: Option<Duration>,
}

impl LiveDetector {
    /// `detector` storing its findings through `store`.
    pub fn new(detector: Detector, store: Arc<FindingStore>) -> Self {
        LiveDetector {
            state: Mutex::new(State {
                detector,
                pending: Vec::new(),
                saves: (0, 0, 0),
                restore_ms: 0,
                last_flush: Instant::now(),
                last_batch: Instant::now(),
                closed: false,
            }),
            store,
            idle_release: None,
        }
    }

    /// Evaluate rows waiting for the watermark once the input has been idle for `after`
    /// (wall clock; live sources).
    pub fn release_when_idle(mut self, after: Duration) -> Self {
        self.idle_release = Some(after);
        self
    }

    /// This scope's counters so far (state sizes and evictions included) and whether the
    /// scope has closed (its state went on with its last commit).
    pub fn counters(&self) -> (DetectCounters, bool) {
        let s = self.lock();
        let c = DetectCounters {
            state_saves: s.saves.0,
            state_bytes: s.saves.1,
            state_save_ms: s.saves.2,
            state_restore_ms: s.restore_ms,
            ..s.detector.counters()
        };
        (c, s.closed)
    }

    /// What each suppression withheld in this scope so far.
    pub fn suppressed(&self) -> Vec<crate::suppress::SuppressedCount> {
        self.lock().detector.suppressed()
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

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Move new findings to `pending`; store them when `force`d or due.
    fn collect(&self, s: &mut State, force: bool) {
        let new = self.store.keep_new(s.detector.take_findings());
        s.pending.extend(new);
        if s.pending.is_empty() || !(force || s.last_flush.elapsed() >= self.store.flush_every) {
            return;
        }
        if self.store.store(&s.pending) {
            s.pending.clear();
        }
        s.last_flush = Instant::now();
    }

    /// End of input: evaluate what is still buffered and store every finding.
    fn finish(&self) {
        let mut s = self.lock();
        s.detector.finish();
        self.collect(&mut s, true);
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
        if !s.closed && s.detector.pending_rows() > 0 && s.last_batch.elapsed() >= after {
            s.detector.finish();
            self.collect(&mut s, false);
        }
    }

    /// The scope's events stop here: evaluate what waits for the watermark (as a quiet live
    /// input does) and store every finding, so the state saved next — the one the scope's next
    /// owner continues from — holds nothing this instance still has to store.
    fn close(&self) {
        self.finish();
        self.lock().closed = true;
    }
}

/// A run's live rule engine: its detectors (one per scope) and their finding store.
pub struct LiveRules {
    store: Arc<FindingStore>,
    detectors: Mutex<Vec<(String, Arc<LiveDetector>)>>,
}

impl LiveRules {
    /// No detector yet; findings go to `store`.
    pub fn new(store: FindingStore) -> Self {
        LiveRules {
            store: Arc::new(store),
            detectors: Mutex::new(Vec::new()),
        }
    }

    /// The store the detectors share.
    pub fn store(&self) -> Arc<FindingStore> {
        self.store.clone()
    }

    /// Count `detector` (of the scope named `scope`) in the run's counters and findings.
    pub fn add(&self, scope: &str, detector: Arc<LiveDetector>) {
        lock(&self.detectors).push((scope.to_string(), detector));
    }

    /// Counters summed over the scopes; state gauges over the scopes still open (`ended`:
    /// over every scope's last detector, the state each saved last).
    fn counters_of(&self, ended: bool) -> DetectCounters {
        let detectors = lock(&self.detectors);
        let mut total = DetectCounters::default();
        for (i, (scope, d)) in detectors.iter().enumerate() {
            let (mut c, closed) = d.counters();
            // A scope reopened in this run: its earlier detector's state went on to the later.
            let superseded = detectors[i + 1..].iter().any(|(s, _)| s == scope);
            if superseded || (closed && !ended) {
                c.correlation_state = 0;
                c.correlation_refs = 0;
                c.correlation_evicted = 0;
                c.history.users = 0;
                c.state_bytes = 0;
            }
            total.add(&c);
        }
        total.repeats_not_stored = lock(&self.store.stored).repeats;
        total
    }

    /// What each suppression withheld, summed over the scopes, in file order.
    pub fn suppressed(&self) -> Vec<crate::suppress::SuppressedCount> {
        let mut total: Vec<crate::suppress::SuppressedCount> = Vec::new();
        for (_, d) in lock(&self.detectors).iter() {
            for c in d.suppressed() {
                match total.iter_mut().find(|t| t.name == c.name) {
                    Some(t) => t.events += c.events,
                    None => total.push(c),
                }
            }
        }
        total
    }

    /// Counters so far, summed over the scopes (state gauges over the scopes still open).
    pub fn counters(&self) -> DetectCounters {
        self.counters_of(false)
    }

    /// End of input: evaluate what every detector still buffers and store every finding.
    /// Returns the findings of the run (capped at 10,000; the counters hold the exact count),
    /// the counters and the files written, or the storage error.
    pub fn finish(&self) -> Result<(Vec<Finding>, DetectCounters, Vec<String>), String> {
        let detectors: Vec<Arc<LiveDetector>> = lock(&self.detectors)
            .iter()
            .map(|(_, d)| d.clone())
            .collect();
        for d in &detectors {
            d.finish();
        }
        let counters = self.counters_of(true);
        let mut s = lock(&self.store.stored);
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        Ok((
            std::mem::take(&mut s.reported),
            counters,
            std::mem::take(&mut s.written),
        ))
    }
}
