//! What the dashboard shows besides the live SLI aggregator, the SLO report and the findings:
//! bounded rings of recent events (all, IdP errors, enrollments and device registrations) and
//! per-minute counters the aggregator does not keep (phishing-resistant successes, failures by
//! country). Fed by the same batches as every other consumer; memory stays bounded however long
//! the stream is, so a refresh costs the same over 10k or 10M events.

use std::collections::{BTreeMap, HashMap, VecDeque};

use arrow::array::Array;

use mfascope_core::event::{Action, CanonicalBatch, Factor, Outcome, Source, col};
use mfascope_core::time::TimeRange;
use mfascope_sli::live::MINUTE_MS;

/// Events kept in the "recent" ring.
pub const RECENT: usize = 500;
/// Events kept in each of the narrower rings.
pub const NARROW: usize = 200;
/// Countries counted at most (the rest go to `other`).
pub const MAX_COUNTRIES: usize = 300;
/// Minutes of per-minute counters kept (33 days, as the aggregator).
pub const RETENTION_MINUTES: i64 = 33 * 1440;

/// One event as the dashboard shows it (no secrets: canonical columns only).
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// Event time (epoch ms).
    pub time: i64,
    /// Event id.
    pub event_id: String,
    /// Emitting system.
    pub source: Option<Source>,
    /// The user the event is about.
    pub user: String,
    /// Target application.
    pub app: Option<String>,
    /// What happened.
    pub action: Option<Action>,
    /// The factor involved, when the event names one.
    pub factor: Option<Factor>,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// Normalized reason.
    pub reason: Option<String>,
    /// Client country (ISO code).
    pub country: Option<String>,
    /// Client IP.
    pub src_ip: Option<String>,
    /// Device id.
    pub device_id: Option<String>,
}

/// A bounded ring, newest last.
#[derive(Clone, Debug)]
pub struct Ring {
    cap: usize,
    rows: VecDeque<EventRow>,
}

impl Ring {
    /// An empty ring holding at most `cap` rows.
    pub fn new(cap: usize) -> Ring {
        Ring {
            cap,
            rows: VecDeque::with_capacity(cap),
        }
    }

    fn push(&mut self, row: EventRow) {
        if self.rows.len() == self.cap {
            self.rows.pop_front();
        }
        self.rows.push_back(row);
    }

    /// Rows, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &EventRow> {
        self.rows.iter().rev()
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Per-minute counters the aggregator does not keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// Successful verifications.
    pub verify_successes: u64,
    /// … of them with a phishing-resistant factor.
    pub phishing_resistant: u64,
    /// Accounts locked out.
    pub lockouts: u64,
    /// Verdicts: fraud reported by users, threats flagged by the identity provider.
    pub verdicts: u64,
}

/// The dashboard's own state.
#[derive(Clone, Debug)]
pub struct DashState {
    /// The latest events.
    pub recent: Ring,
    /// The latest events with outcome `error`.
    pub idp_errors: Ring,
    /// The latest enrollments and device registrations.
    pub enrollment: Ring,
    /// The latest verdicts: `risk_signal` events and verifications reported as fraud.
    pub verdicts: Ring,
    /// Failed, denied or timed-out verifications by country (`other` beyond the bound).
    pub failures_by_country: HashMap<String, u64>,
    /// Counters by minute (epoch ms of the minute).
    pub minutes: BTreeMap<i64, Extra>,
    /// Events seen.
    pub events: u64,
    /// Latest event time seen.
    pub latest: Option<i64>,
}

impl Default for DashState {
    fn default() -> Self {
        DashState {
            recent: Ring::new(RECENT),
            idp_errors: Ring::new(NARROW),
            enrollment: Ring::new(NARROW),
            verdicts: Ring::new(NARROW),
            failures_by_country: HashMap::new(),
            minutes: BTreeMap::new(),
            events: 0,
            latest: None,
        }
    }
}

impl DashState {
    /// Take in one canonical batch.
    pub fn observe(&mut self, batch: &CanonicalBatch) {
        let n = batch.num_rows();
        if n == 0 {
            return;
        }
        let time = batch.times();
        let source: Vec<Option<Source>> = batch.enums(col::SOURCE);
        let action: Vec<Option<Action>> = batch.enums(col::ACTION);
        let factor: Vec<Option<Factor>> = batch.enums(col::FACTOR);
        let outcome: Vec<Option<Outcome>> = batch.enums(col::OUTCOME);
        let [event_id, user, app, reason, country, src_ip, device_id] = [
            col::EVENT_ID,
            col::USER,
            col::APP,
            col::REASON,
            col::COUNTRY,
            col::SRC_IP,
            col::DEVICE_ID,
        ]
        .map(|c| batch.strings(c));
        let phishing_resistant = batch.bools(col::PHISHING_RESISTANT);
        let opt = |a: &arrow::array::StringArray, i: usize| {
            (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        // Only the tail of a large batch can end up in the rings.
        let keep_from = n.saturating_sub(RECENT);
        for i in 0..n {
            let t = time.value(i);
            self.events += 1;
            self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
            let minute = t - t.rem_euclid(MINUTE_MS);
            let extra = self.minutes.entry(minute).or_default();
            let (a, f, o) = (action[i], factor[i], outcome[i]);
            if a == Some(Action::MfaVerify) && o == Some(Outcome::Success) {
                extra.verify_successes += 1;
                // The column: the factor, or the vendor's own signal (Okta FastPass, …).
                if phishing_resistant.value(i) {
                    extra.phishing_resistant += 1;
                }
            }
            if a == Some(Action::Lockout) {
                extra.lockouts += 1;
            }
            let failed = a == Some(Action::MfaVerify)
                && matches!(
                    o,
                    Some(Outcome::Failure | Outcome::Denied | Outcome::Timeout)
                );
            if failed {
                let key = opt(&country, i).unwrap_or_else(|| "unknown".into());
                let full = self.failures_by_country.len() >= MAX_COUNTRIES;
                let key = if full && !self.failures_by_country.contains_key(&key) {
                    "other".to_string()
                } else {
                    key
                };
                *self.failures_by_country.entry(key).or_default() += 1;
            }
            let verdict = a == Some(Action::RiskSignal)
                || (!reason.is_null(i) && reason.value(i) == "fraud_reported");
            if verdict {
                extra.verdicts += 1;
            }
            let error = o == Some(Outcome::Error);
            let enrollment = matches!(
                a,
                Some(Action::EnrollStart | Action::EnrollComplete | Action::DeviceRegister)
            );
            if i < keep_from && !error && !enrollment && !verdict {
                continue;
            }
            let row = EventRow {
                time: t,
                event_id: event_id.value(i).to_string(),
                source: source[i],
                user: user.value(i).to_string(),
                app: opt(&app, i),
                action: a,
                factor: f,
                outcome: o,
                reason: opt(&reason, i),
                country: opt(&country, i),
                src_ip: opt(&src_ip, i),
                device_id: opt(&device_id, i),
            };
            if error {
                self.idp_errors.push(row.clone());
            }
            if enrollment {
                self.enrollment.push(row.clone());
            }
            if verdict {
                self.verdicts.push(row.clone());
            }
            if i >= keep_from {
                self.recent.push(row);
            }
        }
        if let Some(latest) = self.latest {
            let horizon = latest - RETENTION_MINUTES * MINUTE_MS;
            self.minutes = self.minutes.split_off(&horizon);
        }
    }

    /// Counters summed over `range`.
    pub fn extra(&self, range: TimeRange) -> Extra {
        self.minutes
            .range(range.as_millis())
            .fold(Extra::default(), |mut acc, (_, e)| {
                acc.verify_successes += e.verify_successes;
                acc.phishing_resistant += e.phishing_resistant;
                acc.lockouts += e.lockouts;
                acc.verdicts += e.verdicts;
                acc
            })
    }
}

impl mfascope_core::observe::ObserveBatch for DashState {
    fn observe_batch(&mut self, batch: &CanonicalBatch) {
        self.observe(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Event, EventBatchBuilder};

    fn batch(events: &[(&str, Action, Factor, Outcome, Option<&str>)]) -> CanonicalBatch {
        let mut b = EventBatchBuilder::default();
        for (k, (user, action, factor, outcome, country)) in events.iter().enumerate() {
            let mut e = Event::new(
                Source::Canonical,
                format!("e{k}"),
                1_714_557_600_000 + k as i64 * 1000,
                *user,
                "t",
                (*action, *factor, *outcome),
            );
            e.country = country.map(|c| c.to_string().into());
            b.append(&e);
        }
        b.finish_canonical()
    }

    #[test]
    fn rings_are_bounded_and_keep_the_newest() {
        let mut s = DashState::default();
        let rows: Vec<_> = (0..RECENT + 50)
            .map(|_| ("u", Action::MfaVerify, Factor::Totp, Outcome::Success, None))
            .collect();
        s.observe(&batch(&rows));
        assert_eq!(s.recent.len(), RECENT);
        assert_eq!(s.events, (RECENT + 50) as u64);
        let newest = s.recent.newest_first().next().unwrap();
        assert_eq!(newest.event_id, format!("e{}", RECENT + 49));
    }

    #[test]
    fn counts_phishing_resistance_failures_by_country_errors_and_enrollments() {
        let mut s = DashState::default();
        s.observe(&batch(&[
            (
                "a",
                Action::MfaVerify,
                Factor::Webauthn,
                Outcome::Success,
                Some("DE"),
            ),
            (
                "b",
                Action::MfaVerify,
                Factor::Totp,
                Outcome::Success,
                Some("DE"),
            ),
            (
                "c",
                Action::MfaVerify,
                Factor::Push,
                Outcome::Denied,
                Some("BR"),
            ),
            (
                "c",
                Action::MfaVerify,
                Factor::Push,
                Outcome::Timeout,
                Some("BR"),
            ),
            ("d", Action::MfaVerify, Factor::Sms, Outcome::Failure, None),
            ("e", Action::MfaVerify, Factor::Totp, Outcome::Error, None),
            (
                "f",
                Action::EnrollComplete,
                Factor::Webauthn,
                Outcome::Success,
                None,
            ),
            ("g", Action::Lockout, Factor::None, Outcome::Success, None),
            (
                "h",
                Action::RiskSignal,
                Factor::None,
                Outcome::Unknown,
                None,
            ),
        ]));
        let all = s.extra(TimeRange::ALL);
        assert_eq!(all.verify_successes, 2);
        assert_eq!(all.phishing_resistant, 1);
        assert_eq!(all.lockouts, 1);
        assert_eq!(all.verdicts, 1);
        assert_eq!(s.verdicts.newest_first().next().unwrap().user, "h");
        assert_eq!(s.failures_by_country["BR"], 2);
        assert_eq!(s.failures_by_country["unknown"], 1);
        assert!(!s.failures_by_country.contains_key("DE"));
        assert_eq!(s.idp_errors.len(), 1);
        assert_eq!(s.enrollment.len(), 1);
        assert_eq!(s.enrollment.newest_first().next().unwrap().user, "f");
    }
}
