//! Attack traffic as the SLO path sees it: the events a detector recognised as part of an attack
//! campaign ([`AttackEvent`]) and the contract of what recognises them ([`AttackFilter`]). Owns
//! the vocabulary only: the recognising lives in the rule engine, the counting (and taking the
//! events out of the SLIs) in the live aggregator.

use std::sync::Arc;

use crate::event::{Action, CanonicalBatch, Factor, Outcome, Source};

/// One event recognised as attack traffic, with what the SLI counters need to take it out
/// again (it was counted when it arrived, before the campaign was recognisable).
#[derive(Clone, Debug, PartialEq)]
pub struct AttackEvent {
    /// Event time (epoch ms).
    pub time_ms: i64,
    /// Where the event came from.
    pub source: Source,
    /// Its id (unique per source).
    pub event_id: String,
    /// The canonical step.
    pub action: Action,
    /// The factor.
    pub factor: Factor,
    /// The application, when the event names one.
    pub app: Option<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// The vendor's reason (blocked attempts are told apart by it).
    pub reason: Option<String>,
    /// Challenge → verification latency, when measured.
    pub latency_ms: Option<u32>,
    /// Sigma `name` of the correlation rule whose campaign it belongs to.
    pub rule: Arc<str>,
    /// The campaign's group key (`user=alice`, `src_ip=203.0.113.7`).
    pub group: String,
    /// The rule's timespan: marks of one group closer than this belong to one campaign.
    pub window_ms: i64,
}

/// Recognises attack traffic in a stream of canonical batches.
pub trait AttackFilter: Send {
    /// Look at one batch; returns the events (of this batch or earlier ones) newly recognised
    /// as attack traffic. Each event is returned at most once.
    fn observe(&mut self, batch: &CanonicalBatch) -> Vec<AttackEvent>;

    /// Canonical columns [`AttackFilter::observe`] reads (for projections of stored events).
    fn columns(&self) -> Vec<&'static str>;

    /// A SQL predicate over the canonical columns that every event the filter can recognise
    /// satisfies (replays of stored events read only those rows); `None` reads every row.
    fn sql_filter(&self) -> Option<String> {
        None
    }
}
