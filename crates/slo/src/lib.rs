//! SLOs: OpenSLO v1 spec files ([`spec`]), and the error-budget, burn-rate and alert math over
//! the live aggregator's per-minute counters ([`eval`]). No I/O beyond reading spec files: the
//! same evaluation runs over a replay of history and over live batches.

pub mod eval;
pub mod maintenance;
pub mod prometheus;
pub mod spec;

use serde::Serialize;

pub use eval::{AlertState, Episode, EpisodeAttack, MaintenanceImpact, Status, Transition};
pub use maintenance::{MaintenanceNote, Window};
pub use spec::{Budgeting, Indicator, Slo, SpecError, resolve_slos};

use mfascope_core::time::{TimeRange, format_rfc3339};
use mfascope_sli::live::{Aggregator, Counter, LiveConfig, MINUTE_MS};

/// Aggregator settings that hold everything `slos` need: thresholds, counters for the
/// longest SLO window plus its longest alert window, and their maintenance windows' events
/// counted apart.
pub fn live_config(slos: &[Slo]) -> LiveConfig {
    let longest = slos
        .iter()
        .map(|s| s.window_ms + s.longest_alert_window())
        .max()
        .unwrap_or(0);
    let default = LiveConfig::default();
    LiveConfig {
        retention_minutes: (longest / MINUTE_MS + 60).max(default.retention_minutes),
        thresholds: spec::thresholds(slos),
        exclusions: maintenance::exclusions(slos),
        ..default
    }
}

/// Status of every SLO and the alert timeline.
#[derive(Clone, Debug, Serialize)]
pub struct SloReport {
    /// Instant evaluated (RFC 3339): the end of the last minute with data, or `--at`.
    pub at: String,
    /// First minute with data (RFC 3339); null without data.
    pub data_from: Option<String>,
    /// One status per SLO.
    pub slos: Vec<Status>,
    /// Every alert state change, in time order.
    pub transitions: Vec<Transition>,
    /// Alerts from firing to resolution, in order of firing.
    pub episodes: Vec<Episode>,
    /// Attack traffic recognised over the range; null when no attack rules ran.
    pub attack_traffic: Option<AttackTraffic>,
}

/// What the attack rules recognised over an evaluation's range.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AttackTraffic {
    /// Left out of the SLIs and budgets (`--attack-exclusion on`).
    pub excluded: bool,
    /// Verification attempts in campaigns.
    pub attempts: u64,
    /// Campaigns (rule × group key) with events in the range.
    pub campaigns: usize,
}

impl SloReport {
    /// Whether any objective is missed (the `slo check` gate).
    pub fn violated(&self) -> bool {
        self.slos.iter().any(|s| s.violated)
    }
}

/// Evaluate `slos` over everything `agg` holds, up to `at` (default: the end of the last minute
/// with data).
///
/// ```
/// use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source};
/// use mfascope_sli::live::Aggregator;
/// use mfascope_slo::{evaluate, live_config, resolve_slos};
///
/// let slos = resolve_slos(None)?; // ./slos, else the shipped SLOs
/// let mut agg = Aggregator::new(live_config(&slos));
/// let mut events = EventBatchBuilder::default();
/// let start = 1_714_557_600_000; // 2024-05-01T10:00:00Z
/// for i in 0..600 {
///     // One push verification every 6 s for an hour; every 10th fails.
///     let outcome = if i % 10 == 0 { Outcome::Failure } else { Outcome::Success };
///     let step = (Action::MfaVerify, Factor::Push, outcome);
///     events.append(&Event::new(Source::Okta, format!("e{i}"), start + i * 6_000, "alice", "t", step));
/// }
/// agg.observe(&events.finish_canonical());
/// let report = evaluate(&slos, &agg, None);
/// let success = report.slos.iter().find(|s| s.name == "mfa-success-rate").unwrap();
/// assert_eq!((success.good, success.total), (540, 600));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn evaluate(slos: &[Slo], agg: &Aggregator, at: Option<i64>) -> SloReport {
    let span = agg.span();
    let end = at
        .map(|t| t.div_euclid(MINUTE_MS) * MINUTE_MS)
        .or(span.map(|(_, last)| last + MINUTE_MS))
        .unwrap_or(0);
    let start = span.map_or(end, |(first, _)| first.min(end));
    let mut report = SloReport {
        at: format_rfc3339(end),
        data_from: span.map(|(first, _)| format_rfc3339(first)),
        slos: Vec::new(),
        transitions: Vec::new(),
        episodes: Vec::new(),
        attack_traffic: None,
    };
    let range = TimeRange::new(start, end);
    if agg.recognises_attacks() {
        report.attack_traffic = Some(AttackTraffic {
            excluded: agg.excludes_attacks(),
            attempts: agg.totals(range).get(Counter::AttackAttempts),
            campaigns: agg.campaigns(range).len(),
        });
    }
    for slo in slos {
        let series = eval::Series::build(slo, agg, range);
        let (transitions, mut episodes) = eval::alerts(slo, &series, range, range.from);
        for e in &mut episodes {
            eval::link_attacks(slo, &series, agg, e, end);
        }
        let firing = episodes
            .iter()
            .filter(|e| e.resolved_ms.is_none())
            .map(|e| e.alert.clone())
            .collect();
        let mut status = eval::status(slo, &series, end.into(), firing);
        status.maintenance =
            eval::maintenance_impact(slo, agg, TimeRange::new(end - slo.window_ms, end));
        report.slos.push(status);
        report.transitions.extend(transitions);
        report.episodes.extend(episodes);
    }
    report.transitions.sort_by(|a, b| a.at.cmp(&b.at));
    report.episodes.sort_by_key(|e| e.firing_ms);
    report
}
