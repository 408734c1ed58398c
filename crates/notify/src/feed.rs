//! What a run owes its receivers: the findings stored under `OUT/findings/` (each file read
//! once) and the transitions of the SLO alert episodes evaluated over closed minutes. Both are
//! functions of the store, so a restarted run offers the same notifications, and the outboxes'
//! ledgers keep only the ones never enqueued. Reads, never writes.

use std::collections::{HashMap, HashSet};

use mfascope_detect::finding::read_stored_findings;
use mfascope_sink::Location;
use mfascope_slo::SloReport;

use crate::notification::Notification;

/// Reads what is owed, a little more each call.
pub struct Feed {
    out: Location,
    read: HashSet<String>,
    rule_runbooks: HashMap<String, String>,
}

impl Feed {
    /// A feed over `out`; findings of a rule in `rule_runbooks` (rule id → URL) carry that
    /// runbook (SLO alerts carry their SLO's, from the report).
    pub fn new(out: &Location, rule_runbooks: HashMap<String, String>) -> Feed {
        Feed {
            out: out.clone(),
            read: HashSet::new(),
            rule_runbooks,
        }
    }

    /// The findings of the files stored since the last call.
    pub fn new_findings(&mut self) -> Result<Vec<Notification>, String> {
        Ok(read_stored_findings(&self.out, &mut self.read)?
            .into_iter()
            .map(|f| {
                let runbook = self.rule_runbooks.get(&f.rule_id).cloned();
                Notification::finding(f, runbook)
            })
            .collect())
    }

    /// Every transition of `report`'s episodes, and the alerts firing at its end; episodes a
    /// maintenance window silences are left out.
    pub fn episodes(&self, report: &SloReport) -> (Vec<Notification>, Vec<Notification>) {
        let (mut all, mut firing) = (Vec::new(), Vec::new());
        for e in report.episodes.iter().filter(|e| e.delivered()) {
            let runbook = report
                .slos
                .iter()
                .find(|s| s.name == e.slo)
                .and_then(|s| s.runbook_url.as_deref());
            let transitions = Notification::episode(e, runbook);
            if e.resolved_ms.is_none() {
                firing.extend(transitions.iter().cloned());
            }
            all.extend(transitions);
        }
        (all, firing)
    }
}
