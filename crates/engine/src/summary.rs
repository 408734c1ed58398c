//! What an ingest did: the run's [`Summary`] (every record counted once, as an event, a support
//! ticket, a dead letter or an ignored record) and what the writer committed. Counts only; it renders nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// An input that could not be read at all.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    /// The input's path as given.
    pub path: String,
    /// Why it could not be opened.
    pub reason: String,
}

/// What an ingest did; `records == events + tickets + deadletter + ignored` always holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Leaf records read.
    pub records: u64,
    /// Canonical events written.
    pub events: u64,
    /// Support tickets written (to the `tickets` table).
    pub tickets: u64,
    /// Of those, MFA-related ones.
    pub mfa_tickets: u64,
    /// Records written to dead letters.
    pub deadletter: u64,
    /// Records deliberately ignored as not about authentication.
    pub ignored: u64,
    /// Ignored records by `format:type`.
    pub ignored_by_type: BTreeMap<String, u64>,
    /// Dead letters by reason class (reason up to the first `:`).
    pub deadletter_by_reason: BTreeMap<String, u64>,
    /// Files made visible (Parquet and dead-letter files).
    pub files_written: u64,
    /// Bytes of Parquet and dead letters written.
    pub bytes_written: u64,
    /// Input bytes read (decompressed).
    pub bytes_in: u64,
    /// Input bytes skipped because an earlier run committed them.
    pub bytes_already_ingested: u64,
    /// Inputs opened.
    pub inputs: u64,
    /// Inputs that could not be opened.
    pub unreadable: Vec<Unreadable>,
    /// Segments committed.
    pub segments: u64,
    /// Verifications whose latency was derived from a paired challenge.
    pub latency_derived: u64,
    /// Events by source.
    pub by_source: BTreeMap<String, u64>,
    /// Events by action.
    pub by_action: BTreeMap<String, u64>,
    /// Events by factor.
    pub by_factor: BTreeMap<String, u64>,
    /// Events by outcome.
    pub by_outcome: BTreeMap<String, u64>,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Events per second.
    pub events_per_s: f64,
}

impl Summary {
    /// Add the counts of another part of the same run (another scope's stage).
    pub fn add(&mut self, other: &Summary) {
        let add = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
            for (k, v) in from {
                *into.entry(k.clone()).or_default() += v;
            }
        };
        self.add_totals(other);
        self.latency_derived += other.latency_derived;
        self.inputs += other.inputs;
        self.bytes_already_ingested += other.bytes_already_ingested;
        self.unreadable.extend(other.unreadable.iter().cloned());
        add(&mut self.ignored_by_type, &other.ignored_by_type);
        add(&mut self.deadletter_by_reason, &other.deadletter_by_reason);
        add(&mut self.by_source, &other.by_source);
        add(&mut self.by_action, &other.by_action);
        add(&mut self.by_factor, &other.by_factor);
        add(&mut self.by_outcome, &other.by_outcome);
    }

    /// Add only the running totals the progress counters show (cheap: no maps).
    pub(crate) fn add_totals(&mut self, other: &Summary) {
        self.records += other.records;
        self.events += other.events;
        self.tickets += other.tickets;
        self.mfa_tickets += other.mfa_tickets;
        self.deadletter += other.deadletter;
        self.ignored += other.ignored;
        self.bytes_in += other.bytes_in;
    }

    /// Record what the writer committed and the run's wall time and rate.
    pub(crate) fn close(&mut self, written: Written, started: Instant) {
        self.files_written = written.files;
        self.bytes_written = written.bytes;
        self.segments = written.segments;
        self.elapsed_s = started.elapsed().as_secs_f64();
        self.events_per_s = if self.elapsed_s > 0.0 {
            self.events as f64 / self.elapsed_s
        } else {
            0.0
        };
    }
}

/// What a writer thread committed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Written {
    files: u64,
    bytes: u64,
    segments: u64,
}

impl Written {
    pub(crate) fn add(&mut self, stats: mfascope_sink::SegmentStats) {
        self.files += stats.files;
        self.bytes += stats.bytes;
        self.segments += 1;
    }

    /// Add what another writer wrote.
    pub(crate) fn merge(&mut self, other: Written) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.segments += other.segments;
    }
}
