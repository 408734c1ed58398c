//! The contract between the engine and what consumes canonical batches (live SLIs, the rule
//! engine, dashboards): [`BatchObserver`]. Owns nothing but the trait; the engine calls it, the
//! consumers above implement it.

use std::sync::{Arc, Mutex};

use crate::event::CanonicalBatch;

/// A consumer of every batch of canonical events, in input order, after latency pairing —
/// the live SLI aggregator and the rule engine. Called on the ordering thread: keep it cheap.
pub trait BatchObserver: Send + Sync {
    /// Look at one batch.
    fn observe(&self, batch: &CanonicalBatch);

    /// Look at one batch of support tickets ([`crate::ticket::ticket_schema`]). Consumers of
    /// events only (the rule engine) have nothing to do with them.
    fn observe_tickets(&self, _tickets: &arrow::array::RecordBatch) {}

    /// Called now and then while the input is idle (live sources), so time-based work — a
    /// rule engine releasing what waited for stragglers — happens without new events.
    fn tick(&self) {}

    /// This observer's state after every batch it has seen, as `(name, bytes)`, for the
    /// engine to commit with the segment those batches end (so a restart continues from it);
    /// `None` for observers that rebuild their state otherwise.
    fn save_state(&self) -> Option<(String, Vec<u8>)> {
        None
    }

    /// The scope this observer belongs to is closing (a revoked Kafka partition, the end of a
    /// run): finish what can be finished before its last state is saved, from which whoever
    /// opens the scope next continues. Observers of the whole run have nothing to do.
    fn close(&self) {}
}

/// A consumer that owns its state mutably; wrapped in a [`Mutex`] it is a [`BatchObserver`]
/// shared between the engine and the views that read it.
pub trait ObserveBatch: Send {
    /// Fold one batch into the state.
    fn observe_batch(&mut self, batch: &CanonicalBatch);

    /// Fold one batch of support tickets into the state (nothing for event-only consumers).
    fn observe_ticket_batch(&mut self, _tickets: &arrow::array::RecordBatch) {}
}

impl<T: ObserveBatch> BatchObserver for Mutex<T> {
    fn observe(&self, batch: &CanonicalBatch) {
        crate::sync::lock(self).observe_batch(batch);
    }

    fn observe_tickets(&self, tickets: &arrow::array::RecordBatch) {
        crate::sync::lock(self).observe_ticket_batch(tickets);
    }
}

/// Batch observers of one ingest run.
#[derive(Clone, Default)]
pub struct Observers(pub Vec<Arc<dyn BatchObserver>>);

impl Observers {
    /// Show `batch` to every observer, in order.
    pub fn observe(&self, batch: &CanonicalBatch) {
        for o in &self.0 {
            o.observe(batch);
        }
    }

    /// Show a batch of support tickets to every observer, in order.
    pub fn observe_tickets(&self, tickets: &arrow::array::RecordBatch) {
        for o in &self.0 {
            o.observe_tickets(tickets);
        }
    }

    /// [`BatchObserver::save_state`] of every observer that keeps state.
    pub fn save_state(&self) -> Vec<(String, Vec<u8>)> {
        self.0.iter().filter_map(|o| o.save_state()).collect()
    }

    /// [`BatchObserver::tick`] every observer.
    pub fn tick(&self) {
        for o in &self.0 {
            o.tick();
        }
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({})", self.0.len())
    }
}
