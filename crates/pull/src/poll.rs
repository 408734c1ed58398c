//! One source's poller (its own thread): for each stream, fetch the time window from a little
//! before what was read (the overlap) to now less the vendor's delay, and hand the engine the
//! records it has not delivered yet, in cursor order, each chunk carrying the stream's cursor.
//! Records at or below the cursor committed by an earlier run, or delivered in this one, are
//! skipped: an overlap or a restart never delivers a record twice. It never writes outputs;
//! the engine commits each chunk's cursor with its rows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mfascope_source::{Cursor, PolledSpan};

use crate::api::{Api, Order, Polled};
use crate::http::{Http, PollError};
use crate::stats::Stats;

/// Records per chunk handed to the engine.
const CHUNK_RECORDS: usize = 500;
/// A window of a newest-first vendor holding more records than this is fetched again in
/// halves (bounded memory).
const WINDOW_RECORDS: usize = 20_000;

/// What pollers tell the source's thread.
pub(crate) enum Pulled {
    /// Records of `stream` for source `source`.
    Chunk {
        source: usize,
        stream: usize,
        data: Vec<u8>,
        spans: Vec<PolledSpan>,
    },
    /// The source has ended (read up to now, or failed: see its stats).
    Done { source: usize },
}

/// A stream's delivery state.
pub(crate) struct Stream {
    pub(crate) name: String,
    /// Everything at or below was delivered by an earlier run.
    floor: Option<Cursor>,
    /// The greatest cursor delivered (or committed before).
    reached: Option<Cursor>,
    /// Delivered in this run, at or after the overlap's start: late records are told apart.
    seen: BTreeSet<Cursor>,
    /// Everything before this time (ms) has been fetched in this run.
    fetched_to: Option<i64>,
    /// The window length for newest-first vendors (shrinks on dense windows).
    span_ms: i64,
}

impl Stream {
    pub(crate) fn new(name: String, committed: Option<Cursor>, span_ms: i64) -> Stream {
        Stream {
            name,
            floor: committed,
            reached: committed,
            seen: BTreeSet::new(),
            fetched_to: None,
            span_ms,
        }
    }
}

/// Timing of a source's polls.
pub(crate) struct Timing {
    pub(crate) since_ms: i64,
    pub(crate) interval: Duration,
    pub(crate) delay: Duration,
    pub(crate) overlap: Duration,
    pub(crate) window: Duration,
}

/// A source's poller.
pub(crate) struct Poller {
    pub(crate) index: usize,
    pub(crate) api: Box<dyn Api>,
    pub(crate) http: Http,
    pub(crate) streams: Vec<Stream>,
    pub(crate) timing: Timing,
    pub(crate) follow: bool,
    pub(crate) tx: Sender<Pulled>,
    pub(crate) stop: Arc<AtomicBool>,
}

impl Poller {
    fn stats(&self) -> &Stats {
        &self.http.stats
    }

    /// Poll until caught up (or, following, until stopped); a failing poll is counted and
    /// reported, and tried again at the next interval when following.
    pub(crate) fn run(mut self) {
        loop {
            let outcome = (0..self.streams.len()).try_for_each(|s| self.poll(s));
            Stats::add(&self.stats().polls, 1);
            match outcome {
                Ok(()) => {
                    let caught = self
                        .streams
                        .iter()
                        .filter_map(|s| s.fetched_to)
                        .min()
                        .unwrap_or_default();
                    self.stats().caught_up_ms.store(caught, Ordering::Relaxed);
                }
                Err(PollError::Stopped) => break,
                Err(e) => {
                    tracing::warn!(source = self.index, "{e}");
                    self.stats().failed(e.to_string());
                    if !self.follow {
                        break;
                    }
                }
            }
            if !self.follow
                || self
                    .http
                    .sleep_until(Instant::now() + self.timing.interval)
                    .is_err()
            {
                break;
            }
        }
        let _ = self.tx.send(Pulled::Done { source: self.index });
    }

    /// One poll of stream `s`: every window from where it stands to now less the delay.
    fn poll(&mut self, s: usize) -> Result<(), PollError> {
        let to = chrono::Utc::now().timestamp_millis() - self.timing.delay.as_millis() as i64;
        let overlap = self.timing.overlap.as_millis() as i64;
        let stream = &self.streams[s];
        let low = stream
            .fetched_to
            .or(stream.reached.map(|c| c.time_ms as i64))
            .unwrap_or(self.timing.since_ms);
        let mut from = if stream.fetched_to.is_some() || stream.reached.is_some() {
            low - overlap
        } else {
            low
        }
        .max(0);
        // What is older than the overlap cannot be fetched again: forget it.
        let keep = Cursor {
            time_ms: from.max(0) as u64,
            key: 0,
        };
        let stream = &mut self.streams[s];
        stream.seen = stream.seen.split_off(&keep);
        if from >= to {
            return Ok(());
        }
        match self.api.order() {
            Order::Ascending => {
                self.ascending(s, from, to)?;
            }
            Order::Any => {
                let max_span = self.timing.window.as_millis().max(1000) as i64;
                while from < to {
                    let span = self.streams[s].span_ms.clamp(1000, max_span);
                    let end = (from + span).min(to);
                    if self.window(s, from, end)? {
                        from = end;
                        self.streams[s].fetched_to = Some(end);
                        self.streams[s].span_ms = (span * 2).min(max_span);
                    } else {
                        self.streams[s].span_ms = span / 2;
                    }
                }
            }
        }
        self.streams[s].fetched_to = Some(to);
        Ok(())
    }

    /// One page of stream `s` between `from` and `to` (after the vendor's `next` cursor).
    fn fetch(
        &mut self,
        s: usize,
        from: i64,
        to: i64,
        next: Option<&str>,
    ) -> Result<crate::api::Page, PollError> {
        let stream = &self.streams[s].name;
        self.api.page(&mut self.http, stream, from, to, next)
    }

    /// An oldest-first window, delivered page by page: records of the newest time seen so far
    /// wait for the next page (more of the same millisecond may follow).
    fn ascending(&mut self, s: usize, from: i64, to: i64) -> Result<(), PollError> {
        let mut pending: Vec<Polled> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self.fetch(s, from, to, next.as_deref())?;
            pending.extend(page.records);
            pending.sort_by_key(|p| p.cursor);
            next = page.next;
            let split = match (&next, pending.last()) {
                (Some(_), Some(last)) => {
                    let newest = last.cursor.time_ms;
                    pending.partition_point(|p| p.cursor.time_ms < newest)
                }
                _ => pending.len(),
            };
            let rest = pending.split_off(split);
            self.deliver(s, std::mem::replace(&mut pending, rest))?;
            if next.is_none() {
                return Ok(());
            }
        }
    }

    /// A window fetched whole, then delivered sorted; false when it held too many records
    /// (fetch it again in halves).
    fn window(&mut self, s: usize, from: i64, to: i64) -> Result<bool, PollError> {
        let mut all: Vec<Polled> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self.fetch(s, from, to, next.as_deref())?;
            all.extend(page.records);
            if all.len() > WINDOW_RECORDS && to - from > 1000 {
                return Ok(false);
            }
            next = page.next;
            if next.is_none() {
                break;
            }
        }
        all.sort_by_key(|p| p.cursor);
        self.deliver(s, all)?;
        Ok(true)
    }

    /// Hand sorted records to the engine, skipping those already delivered; the cursor never
    /// goes back (a late record takes the cursor already reached).
    fn deliver(&mut self, s: usize, records: Vec<Polled>) -> Result<(), PollError> {
        let (mut data, mut spans) = (Vec::new(), Vec::new());
        let mut repeats = 0;
        for r in records {
            let stream = &mut self.streams[s];
            let old = stream.floor.is_some_and(|f| r.cursor <= f);
            if old || !stream.seen.insert(r.cursor) {
                repeats += 1;
                continue;
            }
            let reached = stream.reached.map_or(r.cursor, |c| c.max(r.cursor));
            stream.reached = Some(reached);
            data.extend_from_slice(&r.bytes);
            spans.push(PolledSpan {
                end: data.len(),
                cursor: reached,
            });
            if spans.len() >= CHUNK_RECORDS {
                self.hand_over(s, &mut data, &mut spans)?;
            }
        }
        Stats::add(&self.stats().repeats, repeats);
        self.hand_over(s, &mut data, &mut spans)
    }

    fn hand_over(
        &mut self,
        s: usize,
        data: &mut Vec<u8>,
        spans: &mut Vec<PolledSpan>,
    ) -> Result<(), PollError> {
        if spans.is_empty() {
            return Ok(());
        }
        Stats::add(&self.stats().records, spans.len() as u64);
        let chunk = Pulled::Chunk {
            source: self.index,
            stream: s,
            data: std::mem::take(data),
            spans: std::mem::take(spans),
        };
        if self.stop.load(Ordering::Relaxed) {
            return Err(PollError::Stopped);
        }
        self.tx.send(chunk).map_err(|_| PollError::Stopped)
    }
}
