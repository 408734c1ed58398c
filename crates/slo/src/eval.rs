//! SLO math over per-minute good/total series: error budget, burn rates, and the
//! multi-window multi-burn-rate alert state machine (pending → firing → resolved), stepped in
//! event time minute by minute so a replay of history yields the same timeline as live.
//! Pure functions of the aggregator's counters; no I/O.

use serde::Serialize;

use std::collections::BTreeMap;

use super::maintenance::MaintenanceNote;
use super::spec::{Budgeting, Indicator, Rule, Slo};
use mfascope_core::time::{EventTime, TimeRange, format_rfc3339};
use mfascope_sli::live::{Aggregator, Counter, MINUTE_MS, MinuteStats};
use mfascope_sli::slice::significantly_below;

/// Burn-rate windows reported in status (label, ms).
pub const BURN_WINDOWS: &[(&str, i64)] = &[
    ("5m", 300_000),
    ("30m", 1_800_000),
    ("1h", 3_600_000),
    ("2h", 7_200_000),
    ("6h", 21_600_000),
    ("1d", 86_400_000),
    ("3d", 259_200_000),
];

/// Cumulative good/total per minute for one SLO.
pub struct Series {
    start: i64,
    good: Vec<u64>,
    total: Vec<u64>,
}

impl Series {
    /// The SLO's per-minute good/total over `range` (minute-aligned) from `agg`, less the
    /// events of its maintenance windows that exclude them from the budget.
    pub fn build(slo: &Slo, agg: &Aggregator, range: TimeRange) -> Series {
        let from = range.from.millis();
        let n = (range.millis() / MINUTE_MS) as usize;
        let mut good = vec![0u64; n + 1];
        let mut total = vec![0u64; n + 1];
        let count = Count::of(slo, agg);
        let excluding: Vec<usize> = slo
            .maintenance
            .iter()
            .filter(|w| w.exclude_from_budget)
            .map(|w| w.index)
            .collect();
        let mut held: BTreeMap<i64, MinuteStats> = BTreeMap::new();
        for &i in &excluding {
            for (minute, m) in agg.excluded(i, range) {
                held.entry(minute).or_default().merge(m);
            }
        }
        for (minute, m) in agg.minutes(range) {
            let i = ((minute - from) / MINUTE_MS) as usize + 1;
            let (g, t) = match held.get(&minute) {
                Some(out) => count.minute(&m.less(out), slo.budgeting),
                None => count.minute(m, slo.budgeting),
            };
            good[i] = g;
            total[i] = t;
        }
        for i in 1..=n {
            good[i] += good[i - 1];
            total[i] += total[i - 1];
        }
        Series {
            start: from,
            good,
            total,
        }
    }

    fn index(&self, t: i64) -> usize {
        (((t - self.start) / MINUTE_MS).max(0) as usize).min(self.good.len() - 1)
    }

    /// (good, total) over `[end - len, end)`.
    pub fn sums(&self, end: i64, len: i64) -> (u64, u64) {
        let (a, b) = (self.index(end - len), self.index(end));
        (self.good[b] - self.good[a], self.total[b] - self.total[a])
    }

    /// Burn rate over `[end - len, end)`: the error rate divided by the error budget rate;
    /// `None` without data.
    pub fn burn(&self, slo: &Slo, end: i64, len: i64) -> Option<f64> {
        let (g, t) = self.sums(end, len);
        (t > 0).then(|| ((t - g) as f64 / t as f64) / (1.0 - slo.target))
    }
}

/// How an SLO's good and total are read from one minute's counters.
struct Count<'a> {
    slo: &'a Slo,
    ratio: Option<(Counter, Counter, Option<Counter>)>,
    threshold: Option<(usize, Counter)>,
}

impl<'a> Count<'a> {
    fn of(slo: &'a Slo, agg: &Aggregator) -> Count<'a> {
        let thresholds = &agg.config().thresholds;
        Count {
            slo,
            ratio: slo.indicator.ratio_counters(),
            threshold: slo
                .indicator
                .threshold()
                .and_then(|(m, b)| Some((thresholds.index(m, b)?, Indicator::threshold_total(m)))),
        }
    }

    /// (good, total) of one minute, in events or (timeslices) as one slice.
    fn minute(&self, m: &MinuteStats, budgeting: Budgeting) -> (u64, u64) {
        match (self.ratio, self.threshold, budgeting) {
            (Some((g, t, bad_if)), _, Budgeting::Timeslices) => {
                let (g, t) = (m.get(g), m.get(t));
                let errors = bad_if.map_or(0, |c| m.get(c));
                let has = t > 0 || errors > 0;
                let target = self.slo.time_slice_target.unwrap_or(self.slo.target);
                let ok = has && errors == 0 && !significantly_below(g, t, target);
                (u64::from(ok), u64::from(has))
            }
            (Some((g, t, _)), _, Budgeting::Occurrences) => (m.get(g), m.get(t)),
            (None, Some((idx, total)), _) => (m.below.get(idx).copied().unwrap_or(0), m.get(total)),
            (None, None, _) => (0, 0),
        }
    }
}

/// What one maintenance window did to an SLO over its window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaintenanceImpact {
    /// The window's name.
    pub window: String,
    /// Its reason.
    pub reason: String,
    /// Its start and end (RFC 3339).
    pub start: String,
    /// End (exclusive).
    pub end: String,
    /// Its events left the SLI and the error budget.
    pub excluded_from_budget: bool,
    /// Events it covered that the SLO counts (its total), within the SLO window.
    pub events: u64,
    /// Of those, bad ones.
    pub bad: u64,
}

impl MaintenanceImpact {
    /// One line on it, e.g. `maintenance push-migration (CHG-4711), START to END: 1204 events
    /// (310 bad) excluded from the budget`.
    pub fn summary(&self) -> String {
        let how = if self.excluded_from_budget {
            "excluded from the budget"
        } else {
            "counted in the budget (the window has no excludeFromBudget)"
        };
        format!(
            "maintenance {} ({}), {} to {}: {} events ({} bad) {how}",
            self.window, self.reason, self.start, self.end, self.events, self.bad
        )
    }
}

/// The impact of each of `slo`'s maintenance windows overlapping `range` (its window at the
/// instant evaluated), counted in events whatever the budgeting method.
pub fn maintenance_impact(slo: &Slo, agg: &Aggregator, range: TimeRange) -> Vec<MaintenanceImpact> {
    let count = Count::of(slo, agg);
    slo.maintenance
        .iter()
        .filter(|w| w.start_ms < range.to.millis() && w.end_ms > range.from.millis())
        .map(|w| {
            let (mut good, mut total) = (0, 0);
            for (_, m) in agg.excluded(w.index, range) {
                let (g, t) = count.minute(m, Budgeting::Occurrences);
                good += g;
                total += t;
            }
            MaintenanceImpact {
                window: w.name.clone(),
                reason: w.reason.clone(),
                start: w.start.clone(),
                end: w.end.clone(),
                excluded_from_budget: w.exclude_from_budget,
                events: total,
                bad: total.saturating_sub(good),
            }
        })
        .collect()
}

/// One burn rate in a status report.
#[derive(Clone, Debug, Serialize)]
pub struct Burn {
    /// Window label (`5m` … `3d`).
    pub window: &'static str,
    /// Burn rate (1.0 spends the budget exactly over the SLO window); null without data.
    pub rate: Option<f64>,
}

/// An SLO's state at one instant.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// SLO id.
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// Objective (0–1).
    pub target: f64,
    /// Window (e.g. `30d`).
    pub window: String,
    /// Budgeting method.
    pub budgeting: Budgeting,
    /// Instant evaluated (end of the window, RFC 3339).
    pub at: String,
    /// Good events (or good minutes) in the window.
    pub good: u64,
    /// All events (or minutes with data) in the window.
    pub total: u64,
    /// good / total; null without data.
    pub sli: Option<f64>,
    /// Share of the error budget left (negative when overspent); null without data.
    pub budget_remaining: Option<f64>,
    /// Burn rates over the standard windows.
    pub burn_rates: Vec<Burn>,
    /// The objective is missed over the window.
    pub violated: bool,
    /// Alerts firing at `at`.
    pub firing: Vec<String>,
    /// Maintenance windows overlapping the window, and what they did.
    pub maintenance: Vec<MaintenanceImpact>,
    /// The SLO's runbook (`metadata.annotations.runbook_url`).
    pub runbook_url: Option<String>,
}

fn span_label(ms: i64) -> String {
    match ms {
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms => format!("{}m", ms / 60_000),
    }
}

/// Status of `slo` at `at` (exclusive, minute-aligned) from `series`.
pub fn status(slo: &Slo, series: &Series, at: EventTime, firing: Vec<String>) -> Status {
    let at = at.millis();
    let (good, total) = series.sums(at, slo.window_ms);
    let sli = (total > 0).then(|| good as f64 / total as f64);
    let budget_remaining = sli.map(|s| 1.0 - (1.0 - s) / (1.0 - slo.target));
    Status {
        name: slo.name.clone(),
        display_name: slo.display_name.clone(),
        target: slo.target,
        window: span_label(slo.window_ms),
        budgeting: slo.budgeting,
        at: format_rfc3339(at),
        good,
        total,
        sli,
        budget_remaining,
        burn_rates: BURN_WINDOWS
            .iter()
            .map(|(window, len)| Burn {
                window,
                rate: series.burn(slo, at, *len),
            })
            .collect(),
        violated: sli.is_some_and(|s| s < slo.target),
        firing,
        maintenance: Vec::new(),
        runbook_url: slo.runbook_url.clone(),
    }
}

/// Alert lifecycle states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The rule holds but not yet for `alertAfter`.
    Pending,
    /// The alert is active.
    Firing,
    /// The rule stopped holding after firing.
    Resolved,
}

/// One state change.
#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    /// When (end of the minute evaluated, RFC 3339).
    pub at: String,
    /// SLO id.
    pub slo: String,
    /// Condition name.
    pub alert: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// New state.
    pub state: AlertState,
    /// Burn rate over the long window (for budget conditions: budget share consumed).
    pub value: Option<f64>,
    /// Burn rate over the short window.
    pub short_value: Option<f64>,
    /// Threshold the value was compared with.
    pub threshold: f64,
}

/// One alert from firing to resolution.
#[derive(Clone, Debug, Serialize)]
pub struct Episode {
    /// SLO id.
    pub slo: String,
    /// SLO display name.
    pub slo_display_name: String,
    /// Condition name.
    pub alert: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// Rule, e.g. `burn rate >= 14.4 over 1h and 5m`.
    pub rule: String,
    /// When it started firing (RFC 3339).
    pub firing_at: String,
    /// When it resolved; null while firing.
    pub resolved_at: Option<String>,
    /// Highest value seen while firing.
    pub peak: f64,
    /// Epoch ms of `firing_at` (for ordering and webhooks).
    #[serde(skip)]
    pub firing_ms: i64,
    /// Epoch ms of `resolved_at`.
    #[serde(skip)]
    pub resolved_ms: Option<i64>,
    /// The rule's long window (ms, scaled): the burn that fired it lies in
    /// `[firing_ms - window_ms, firing_ms]`.
    #[serde(skip)]
    pub window_ms: i64,
    /// Attack campaigns (attack-exclusion rules' traffic) overlapping the episode, from the
    /// start of its long window at firing to its resolution.
    pub attacks: Vec<EpisodeAttack>,
    /// `mfa_verify` attempts recognised as attack traffic in the long window when it fired.
    pub attack_attempts: u64,
    /// The burn is attack traffic rather than an outage: exclusion is off, the SLO counts
    /// verification attempts, and attack attempts make at least half of its bad events in the
    /// long window when it fired.
    pub explained_by_attack: bool,
    /// The maintenance window it started firing in, and whether that silences it.
    pub maintenance: Option<MaintenanceNote>,
}

impl Episode {
    /// Whether it is delivered (not silenced by a maintenance window).
    pub fn delivered(&self) -> bool {
        !self.maintenance.as_ref().is_some_and(|m| m.silenced)
    }
}

impl Episode {
    /// One line on the attack campaigns in the episode's span, e.g. `burn explained by attack
    /// traffic (612 attack attempts in the window): mfa_push_bombing user=alice (600 attempts)`;
    /// `None` when no campaign overlaps it.
    pub fn attack_note(&self) -> Option<String> {
        let first = self.attacks.iter().max_by_key(|a| a.attempts)?;
        let more = match self.attacks.len() - 1 {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let lead = if self.explained_by_attack {
            "burn explained by attack traffic"
        } else {
            "attack traffic overlaps"
        };
        Some(format!(
            "{lead} ({} attack attempts in the window): {} {} ({} attempts, {} to {}){more}",
            self.attack_attempts,
            first.rule,
            first.group,
            first.attempts,
            first.first_at,
            first.last_at
        ))
    }
}

/// One attack campaign overlapping an [`Episode`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EpisodeAttack {
    /// Correlation rule (`mfa_push_bombing`, …).
    pub rule: String,
    /// Its group key (`user=alice`).
    pub group: String,
    /// First event of the campaign (RFC 3339).
    pub first_at: String,
    /// Last event of the campaign so far (RFC 3339).
    pub last_at: String,
    /// Verification attempts in it.
    pub attempts: u64,
}

/// Fill the attack fields of `episode` from `agg` (evaluated up to `end`).
pub fn link_attacks(slo: &Slo, series: &Series, agg: &Aggregator, episode: &mut Episode, end: i64) {
    let from = episode.firing_ms - episode.window_ms;
    let to = episode
        .resolved_ms
        .unwrap_or(end)
        .max(episode.firing_ms + 1);
    episode.attacks = agg
        .campaigns(TimeRange::new(from, to))
        .into_iter()
        .map(|c| EpisodeAttack {
            rule: c.rule.clone(),
            group: c.group.clone(),
            first_at: format_rfc3339(c.first_ms),
            last_at: format_rfc3339(c.last_ms),
            attempts: c.attempts,
        })
        .collect();
    let window = TimeRange::new(from, episode.firing_ms);
    episode.attack_attempts = agg.totals(window).get(Counter::AttackAttempts);
    let counts_attempts = slo
        .indicator
        .ratio_counters()
        .is_some_and(|(_, total, _)| total == Counter::MfaAttempts)
        && slo.budgeting == Budgeting::Occurrences;
    let (good, total) = series.sums(episode.firing_ms, episode.window_ms);
    let bad = total.saturating_sub(good);
    episode.explained_by_attack =
        !agg.excludes_attacks() && counts_attempts && bad > 0 && episode.attack_attempts * 2 >= bad;
}

enum Track {
    Idle,
    Pending(i64),
    /// Firing episode `.0`; `.1`: since when the rule has stopped holding (kept firing for
    /// the condition's `keep_firing_for_ms`).
    Firing(usize, Option<i64>),
}

/// A rule in words, e.g. `burn rate >= 14.4 over 1h and 5m` (windows scaled to `slo`).
pub(crate) fn describe(slo: &Slo, rule: &Rule) -> String {
    match *rule {
        Rule::BurnRate {
            threshold,
            long_ms,
            short_ms,
        } => match short_ms {
            Some(s) => format!(
                "burn rate >= {threshold} over {} and {}",
                span_label(slo.scale(long_ms)),
                span_label(slo.scale(s))
            ),
            None => format!(
                "burn rate >= {threshold} over {}",
                span_label(slo.scale(long_ms))
            ),
        },
        Rule::BudgetConsumption {
            fraction,
            window_ms,
        } => format!(
            ">= {:.0} % of the error budget spent in {}",
            fraction * 100.0,
            span_label(slo.scale(window_ms))
        ),
    }
}

/// The rule's long window, scaled to the SLO.
fn long_window(slo: &Slo, rule: &Rule) -> i64 {
    match *rule {
        Rule::BurnRate { long_ms, .. } => slo.scale(long_ms),
        Rule::BudgetConsumption { window_ms, .. } => slo.scale(window_ms),
    }
}

/// Evaluate (value, short value, holds) of one rule at `t`; `None` until the data covers the
/// rule's long window.
fn check(
    slo: &Slo,
    series: &Series,
    rule: &Rule,
    t: i64,
    data_start: i64,
) -> Option<(f64, Option<f64>, f64, bool)> {
    match *rule {
        Rule::BurnRate {
            threshold,
            long_ms,
            short_ms,
        } => {
            let long = slo.scale(long_ms);
            if t - data_start < long {
                return None;
            }
            let value = series.burn(slo, t, long).unwrap_or(0.0);
            let short = short_ms.map(|s| series.burn(slo, t, slo.scale(s)).unwrap_or(0.0));
            let holds = value >= threshold && short.is_none_or(|s| s >= threshold);
            Some((value, short, threshold, holds))
        }
        Rule::BudgetConsumption {
            fraction,
            window_ms,
        } => {
            let window = slo.scale(window_ms);
            if t - data_start < window {
                return None;
            }
            let burn = series.burn(slo, t, window).unwrap_or(0.0);
            let consumed = burn * window as f64 / slo.window_ms as f64;
            Some((consumed, None, fraction, consumed >= fraction))
        }
    }
}

/// Alert timeline of one SLO: every minute boundary after `range.from`, up to and including
/// `range.to`, evaluated in order. `data_start` is the first minute with data (a rule is only
/// judged once its long window is covered). Returns transitions and episodes (still-firing
/// episodes have no resolution).
pub fn alerts(
    slo: &Slo,
    series: &Series,
    range: TimeRange,
    data_start: EventTime,
) -> (Vec<Transition>, Vec<Episode>) {
    let (from, to, data_start) = (range.from.millis(), range.to.millis(), data_start.millis());
    let mut transitions = Vec::new();
    let mut episodes: Vec<Episode> = Vec::new();
    let mut tracks: Vec<Track> = slo.conditions.iter().map(|_| Track::Idle).collect();
    let mut t = from + MINUTE_MS;
    while t <= to {
        for (cond, track) in slo.conditions.iter().zip(tracks.iter_mut()) {
            let Some((value, short, threshold, holds)) =
                check(slo, series, &cond.rule, t, data_start)
            else {
                continue;
            };
            let mut emit = |state| {
                transitions.push(Transition {
                    at: format_rfc3339(t),
                    slo: slo.name.clone(),
                    alert: cond.name.clone(),
                    severity: cond.severity.clone(),
                    state,
                    value: Some(value),
                    short_value: short,
                    threshold,
                });
            };
            let fire = |episodes: &mut Vec<Episode>| {
                episodes.push(Episode {
                    slo: slo.name.clone(),
                    slo_display_name: slo.display_name.clone(),
                    alert: cond.name.clone(),
                    severity: cond.severity.clone(),
                    rule: describe(slo, &cond.rule),
                    firing_at: format_rfc3339(t),
                    resolved_at: None,
                    peak: value,
                    firing_ms: t,
                    resolved_ms: None,
                    window_ms: long_window(slo, &cond.rule),
                    attacks: Vec::new(),
                    attack_attempts: 0,
                    explained_by_attack: false,
                    maintenance: MaintenanceNote::at(&slo.maintenance, t, &cond.severity),
                });
                episodes.len() - 1
            };
            *track = match (std::mem::replace(track, Track::Idle), holds) {
                (Track::Idle, true) if cond.alert_after_ms == 0 => {
                    emit(AlertState::Firing);
                    Track::Firing(fire(&mut episodes), None)
                }
                (Track::Idle, true) => {
                    emit(AlertState::Pending);
                    Track::Pending(t)
                }
                (Track::Pending(since), true) if t - since >= cond.alert_after_ms => {
                    emit(AlertState::Firing);
                    Track::Firing(fire(&mut episodes), None)
                }
                (Track::Firing(i, _), true) => {
                    episodes[i].peak = episodes[i].peak.max(value);
                    Track::Firing(i, None)
                }
                (Track::Firing(i, quiet), false) => {
                    let since = quiet.unwrap_or(t);
                    if t - since >= slo.scale(cond.keep_firing_for_ms) {
                        emit(AlertState::Resolved);
                        episodes[i].resolved_at = Some(format_rfc3339(t));
                        episodes[i].resolved_ms = Some(t);
                        Track::Idle
                    } else {
                        Track::Firing(i, Some(since))
                    }
                }
                (keep @ Track::Pending(_), true) => keep,
                (_, false) => Track::Idle,
            };
        }
        t += MINUTE_MS;
    }
    (transitions, episodes)
}
