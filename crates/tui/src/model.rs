//! What every frame is drawn from, kept current by one writer at a time: the SLI aggregator and
//! the dashboard's own state over the events that pass the filter ([`Model`]), and the newest
//! findings ([`FindingLog`]). The pipeline feeds them batch by batch in live mode; a replay of
//! the stored Parquet fills them at start and again whenever the filter changes.

use mfascope_core::event::CanonicalBatch;

use super::filter::Filter;
use super::state::DashState;
use mfascope_detect::finding::Finding;
use mfascope_sli::live::Aggregator;

/// Findings kept for the tables (the newest; counts stay exact).
pub const FINDINGS: usize = 1_000;

/// The SLI aggregator and dashboard state of the events passing `filter`.
pub struct Model {
    /// What the events are narrowed to.
    pub filter: Filter,
    /// Live SLI state.
    pub agg: Aggregator,
    /// Rings and per-minute extras.
    pub dash: DashState,
}

impl Model {
    /// Empty state for the events passing `filter`, counted by `agg` (fresh: it sees only
    /// what passes the filter).
    pub fn new(filter: Filter, agg: Aggregator) -> Model {
        Model {
            filter,
            agg,
            dash: DashState::default(),
        }
    }

    /// Take in the rows of one canonical batch that pass the filter.
    pub fn observe(&mut self, batch: &CanonicalBatch) {
        let batch = self.filter.apply(batch);
        if batch.num_rows() > 0 {
            self.agg.observe(&batch);
            self.dash.observe(&batch);
        }
    }
}

impl mfascope_core::observe::ObserveBatch for Model {
    fn observe_batch(&mut self, batch: &CanonicalBatch) {
        self.observe(batch);
    }

    /// Tickets have no app, factor or country: the filter does not apply to them.
    fn observe_ticket_batch(&mut self, tickets: &arrow::array::RecordBatch) {
        self.agg.observe_tickets(tickets);
    }
}

/// The newest findings (oldest first) and exact counts of all of them.
#[derive(Clone, Debug, Default)]
pub struct FindingLog {
    /// At most [`FINDINGS`], oldest first.
    pub list: Vec<Finding>,
    /// Findings seen.
    pub total: u64,
    /// … of them with severity high or critical.
    pub severe: u64,
}

impl FindingLog {
    /// Add findings (in the order they fired).
    pub fn push(&mut self, new: &[Finding]) {
        self.total += new.len() as u64;
        self.severe += new
            .iter()
            .filter(|f| matches!(f.severity.as_str(), "high" | "critical"))
            .count() as u64;
        self.list.extend_from_slice(new);
        if self.list.len() > 2 * FINDINGS {
            self.list.drain(..self.list.len() - FINDINGS);
        }
    }

    /// The findings kept, oldest first.
    pub fn kept(&self) -> &[Finding] {
        let from = self.list.len().saturating_sub(FINDINGS);
        &self.list[from..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(i: usize, severity: &str) -> Finding {
        Finding {
            id: format!("f{i}"),
            severity: severity.into(),
            ..Finding::default()
        }
    }

    #[test]
    fn the_log_keeps_the_newest_and_counts_all() {
        let mut log = FindingLog::default();
        for i in 0..2_500 {
            log.push(&[finding(i, if i % 10 == 0 { "high" } else { "low" })]);
        }
        assert_eq!(log.total, 2_500);
        assert_eq!(log.severe, 250);
        assert_eq!(log.kept().len(), FINDINGS);
        assert_eq!(log.kept()[0].id, "f1500");
        assert_eq!(log.kept().last().unwrap().id, "f2499");
        assert!(log.list.len() <= 2 * FINDINGS, "memory stays bounded");
    }
}
