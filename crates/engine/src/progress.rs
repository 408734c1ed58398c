//! Running ingest counters, readable while the engine runs (the metrics endpoint and the live
//! dashboard read them; the engine publishes into them). Owns the atomics only; it renders
//! nothing.

use std::sync::atomic::AtomicU64;

/// Ingest counters shared with the metrics endpoint while the pipeline runs.
#[derive(Debug, Default)]
pub struct PipelineProgress {
    /// Records read.
    pub records: AtomicU64,
    /// Canonical events produced.
    pub events: AtomicU64,
    /// Dead letters.
    pub deadletter: AtomicU64,
    /// Records ignored on purpose (non-authentication events).
    pub ignored: AtomicU64,
    /// Input bytes consumed.
    pub bytes_in: AtomicU64,
    /// Kafka consumer state (per-partition messages, committed offsets, lag; commits and
    /// rebalances), when consuming from Kafka.
    pub kafka: std::sync::Mutex<Option<crate::kafka::KafkaSummary>>,
}

impl PipelineProgress {
    /// Publish the counters of `s`.
    pub fn publish(&self, s: &crate::Summary) {
        use std::sync::atomic::Ordering::Relaxed;
        self.records.store(s.records, Relaxed);
        self.events.store(s.events, Relaxed);
        self.deadletter.store(s.deadletter, Relaxed);
        self.ignored.store(s.ignored, Relaxed);
        self.bytes_in.store(s.bytes_in, Relaxed);
    }
}
