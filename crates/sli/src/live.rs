//! The live SLI path: an incremental aggregator fed by the pipeline's record batches. It keeps
//! per-minute counters and latency histograms (hdrhistogram) — memory grows with the number of
//! minutes retained, never with the number of events — and answers the same questions as the SQL
//! queries in `queries/` (M1, M2, M6, M8, M9, M10) without rescanning anything.

use std::collections::{BTreeMap, HashMap, VecDeque};

use arrow::array::{Array, StringArray};
use arrow::datatypes::{TimestampMillisecondType, UInt32Type};
use hdrhistogram::Histogram;
use serde::Serialize;
use strum::{EnumCount, IntoEnumIterator};

use mfascope_core::attack::{AttackEvent, AttackFilter};
use mfascope_core::event::{Action, CanonicalBatch, Factor, Outcome, Source, col};
use mfascope_core::time::TimeRange;

/// Milliseconds per minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds per hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Uses of a revoked credential later than this after the revocation are not exposure (M9).
pub const REVOKE_HORIZON_MS: i64 = 86_400_000;
/// Significant digits of the latency histograms (values within 1 %).
pub const HISTOGRAM_SIGFIG: u8 = 2;

/// Per-minute counters, named as in SLO specs (`metricSource.spec.counter`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    strum::EnumCount,
    strum::EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum Counter {
    /// `mfa_verify` with outcome success, failure, denied, timeout or error (M1 denominator).
    MfaAttempts,
    /// `mfa_verify` with outcome success (M1 numerator).
    MfaSuccesses,
    /// Errors reported by the reference verifier or a synthetic probe (M6).
    PathErrors,
    /// `primary_auth`, `mfa_verify` and `rate_limited` events (M10 denominator).
    AuthAttempts,
    /// `primary_auth` and `mfa_verify` events (attempts a rate limit let through).
    AuthAttemptsNotRateLimited,
    /// `rate_limited` events (M10 numerator).
    RateLimited,
    /// Attempts stopped on purpose: policy denials, fraud reports, lockouts, rate limits (M8).
    Blocked,
    /// `enroll_start` events.
    EnrollStarts,
    /// Successful `enroll_complete` events.
    EnrollCompletions,
    /// `recovery_request` events.
    Recoveries,
    /// Successful session and device revocations with an id to follow (M9 denominator).
    Revocations,
    /// `mfa_verify` events with a latency (M2 denominator).
    LatencyMeasured,
    /// `mfa_verify` events with a latency from the reference verifier or a probe.
    PathLatencyMeasured,
    /// Support tickets created in the minute (latest version of each; M5 denominator).
    Tickets,
    /// Of those, MFA-related ones (M5).
    MfaTickets,
    /// Of those, not MFA-related ones (the good events of a ticket-share SLO).
    TicketsNotMfa,
    /// `mfa_verify` attempts recognised as attack traffic (a campaign of an attack-exclusion
    /// rule). With exclusion on they are taken out of every other counter but `blocked`.
    AttackAttempts,
    /// Of those, the successful ones (an approved bombing push: a compromise, not a success
    /// of the 2FA service).
    AttackSuccesses,
}

/// Measurements with thresholds counted per minute (for threshold SLOs).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum Measure {
    /// Challenge → verification latency of `mfa_verify` events.
    LatencyMs,
    /// Latency of `mfa_verify` events measured by the reference verifier or a synthetic probe
    /// (the 2FA path without human think time).
    PathLatencyMs,
    /// How long a revoked session or device kept working (M9).
    RevokeExposureMs,
}

/// Thresholds to count per minute, from the SLO specs in use: for each `(measure, bound)`, the
/// measurements strictly below `bound`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Thresholds(pub Vec<(Measure, u64)>);

impl Thresholds {
    /// Position of `(measure, bound)`, adding it when new.
    pub fn add(&mut self, measure: Measure, bound: u64) -> usize {
        match self.index(measure, bound) {
            Some(i) => i,
            None => {
                self.0.push((measure, bound));
                self.0.len() - 1
            }
        }
    }

    /// Position of `(measure, bound)`.
    pub fn index(&self, measure: Measure, bound: u64) -> Option<usize> {
        self.0.iter().position(|t| *t == (measure, bound))
    }
}

/// Aggregator settings.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Minutes of counters kept (the longest SLO window plus its longest alert window).
    pub retention_minutes: i64,
    /// Minutes of per-minute latency histograms kept (hourly ones are kept for the retention).
    pub histogram_minutes: i64,
    /// Thresholds counted per minute.
    pub thresholds: Thresholds,
    /// Open revocations followed at most (oldest evicted first, counted).
    pub max_open_revocations: usize,
    /// Events counted a second time, apart, per exclusion (maintenance windows): an SLO
    /// subtracts the exclusions that apply to it from its counters.
    pub exclusions: Vec<Exclusion>,
}

/// A span of events counted apart (a maintenance window): events in `range` of the listed apps
/// and factors. The aggregator only counts them; which SLOs leave them out is the SLO layer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// Event times covered.
    pub range: TimeRange,
    /// Only events of these apps (empty: every app).
    pub apps: Vec<String>,
    /// Only events of these factors (empty: every factor).
    pub factors: Vec<Factor>,
}

impl Exclusion {
    /// Whether an event at `t` of `app` and `factor` falls in it.
    pub fn covers(&self, t: i64, app: Option<&str>, factor: Factor) -> bool {
        self.range.from.millis() <= t
            && t < self.range.to.millis()
            && (self.apps.is_empty() || app.is_some_and(|a| self.apps.iter().any(|x| x == a)))
            && (self.factors.is_empty() || self.factors.contains(&factor))
    }

    /// Whether it covers every event of the minute starting at `minute` (tickets, which have
    /// neither app nor factor, are held apart only by such exclusions).
    fn covers_minute(&self, minute: i64) -> bool {
        self.apps.is_empty()
            && self.factors.is_empty()
            && self.range.from.millis() <= minute
            && minute < self.range.to.millis()
    }
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            retention_minutes: 33 * 1440,
            histogram_minutes: 6 * 60,
            thresholds: Thresholds::default(),
            max_open_revocations: 1_000_000,
            exclusions: Vec::new(),
        }
    }
}

/// Counters of one minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MinuteStats {
    /// Values indexed by [`Counter`].
    pub counters: [u64; Counter::COUNT],
    /// Per threshold of [`Thresholds`]: measurements of this minute below it (for revocations:
    /// revocations of this minute whose exposure stayed below it).
    pub below: Vec<u64>,
}

impl MinuteStats {
    /// One counter.
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    fn add(&mut self, c: Counter) {
        self.counters[c as usize] += 1;
    }

    /// These counts less `other`'s (a part of them), saturating at zero.
    pub fn less(&self, other: &MinuteStats) -> MinuteStats {
        let mut out = self.clone();
        for (a, b) in out.counters.iter_mut().zip(other.counters) {
            *a = a.saturating_sub(b);
        }
        for (x, y) in out.below.iter_mut().zip(&other.below) {
            *x = x.saturating_sub(*y);
        }
        out
    }

    /// Add another minute's counts (same thresholds).
    pub fn merge(&mut self, other: &MinuteStats) {
        for (a, b) in self.counters.iter_mut().zip(other.counters) {
            *a += b;
        }
        if self.below.len() < other.below.len() {
            self.below.resize(other.below.len(), 0);
        }
        for (x, y) in self.below.iter_mut().zip(&other.below) {
            *x += y;
        }
    }
}

/// Latency histograms per factor.
#[derive(Clone, Default)]
struct FactorHists(Vec<Option<Histogram<u32>>>);

impl FactorHists {
    fn record(&mut self, factor: usize, ms: u64) {
        if self.0.len() <= factor {
            self.0.resize(factor + 1, None);
        }
        // Auto-resizing: the histogram only grows to the largest latency seen (capped at 1 h).
        let _ = self.0[factor]
            .get_or_insert_with(|| Histogram::new(HISTOGRAM_SIGFIG).expect("valid sigfig"))
            .record(ms.min(HOUR_MS as u64));
    }

    /// Take one recorded value out again (attack traffic); a value never recorded is ignored.
    fn remove(&mut self, factor: usize, ms: u64) {
        let Some(Some(h)) = self.0.get_mut(factor) else {
            return;
        };
        let mut one = Histogram::<u32>::new(HISTOGRAM_SIGFIG).expect("valid sigfig");
        if one.record(ms.min(HOUR_MS as u64)).is_ok() {
            let _ = h.subtract(&one);
        }
    }

    fn merge_into(&self, out: &mut Histogram<u32>, factor: Option<usize>) {
        for (i, h) in self.0.iter().enumerate() {
            if let Some(h) = h
                && factor.is_none_or(|f| f == i)
            {
                out.add(h).expect("auto-resizing histogram");
            }
        }
    }
}

struct Revocation {
    minute: i64,
    time: i64,
    exposure: i64,
    /// Exclusions it was also counted in.
    excluded: Vec<usize>,
}

/// Pipeline counters of the aggregator.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveCounters {
    /// Events aggregated.
    pub events: u64,
    /// Events older than the retention when they arrived (not aggregated).
    pub too_old: u64,
    /// Open revocations dropped because the table was full.
    pub revocations_evicted: u64,
    /// Latest event time seen (epoch ms).
    pub watermark_ms: Option<i64>,
}

/// Latency percentiles of one bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Verifications with a latency.
    pub count: u64,
    /// Median (ms).
    pub p50_ms: u64,
    /// 95th percentile (ms).
    pub p95_ms: u64,
    /// 99th percentile (ms).
    pub p99_ms: u64,
    /// Largest (ms, within histogram precision).
    pub max_ms: u64,
}

/// One attack campaign as the SLO path saw it: the attack traffic of one rule and group key,
/// marks closer than the rule's timespan merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Campaign {
    /// Sigma `name` of the correlation rule.
    pub rule: String,
    /// Group key (`user=alice`, `src_ip=203.0.113.7`).
    pub group: String,
    /// First event (epoch ms).
    pub first_ms: i64,
    /// Last event (epoch ms).
    pub last_ms: i64,
    /// Events recognised as attack traffic.
    pub events: u64,
    /// Of those, `mfa_verify` attempts (taken out of the SLIs when exclusion is on).
    pub attempts: u64,
    /// The rule's timespan (ms).
    #[serde(skip)]
    pub window_ms: i64,
}

/// Attack traffic recognition attached to an aggregator.
struct Attacks {
    filter: Box<dyn AttackFilter>,
    /// Take attack traffic out of the SLI counters (`--attack-exclusion on`).
    exclude: bool,
    /// Campaigns per (rule, group), in time order.
    campaigns: HashMap<(String, String), Vec<Campaign>>,
}

/// The incremental aggregator.
pub struct Aggregator {
    config: LiveConfig,
    attacks: Option<Attacks>,
    /// Each ticket's counted version: `system\0id` → (minute, MFA-related, updated).
    tickets: HashMap<String, (i64, bool, i64)>,
    minutes: BTreeMap<i64, MinuteStats>,
    /// Per exclusion of the config: the counters of its events, per minute.
    excluded: Vec<BTreeMap<i64, MinuteStats>>,
    minute_hists: BTreeMap<i64, FactorHists>,
    hour_hists: BTreeMap<i64, FactorHists>,
    sessions: HashMap<String, Revocation>,
    devices: HashMap<String, Revocation>,
    revoke_order: VecDeque<(i64, bool, String)>,
    counters: LiveCounters,
    cumulative: [u64; Counter::COUNT],
}

/// Column accessors of one batch, tolerant of dictionary key types and string layouts (batches
/// from the pipeline and from Parquet via DataFusion differ there).
struct Columns {
    time: arrow::array::PrimitiveArray<TimestampMillisecondType>,
    source: Vec<Option<Source>>,
    action: Vec<Option<Action>>,
    factor: Vec<Option<Factor>>,
    outcome: Vec<Option<Outcome>>,
    reason: StringArray,
    latency: arrow::array::PrimitiveArray<UInt32Type>,
    session: StringArray,
    device: StringArray,
    /// Read only when an exclusion names apps.
    app: Option<StringArray>,
}

impl Columns {
    fn of(batch: &CanonicalBatch, with_app: bool) -> Columns {
        Columns {
            app: with_app.then(|| batch.strings(col::APP)),
            time: batch.times().clone(),
            source: batch.enums(col::SOURCE),
            action: batch.enums(col::ACTION),
            factor: batch.enums(col::FACTOR),
            outcome: batch.enums(col::OUTCOME),
            reason: batch.strings(col::REASON),
            latency: batch.u32s(col::LATENCY_MS).clone(),
            session: batch.strings(col::SESSION_ID),
            device: batch.strings(col::DEVICE_ID),
        }
    }
}

/// Columns the aggregator reads (for projections when replaying Parquet).
pub const COLUMNS: &[&str] = &[
    col::TIME,
    col::SOURCE,
    col::ACTION,
    col::FACTOR,
    col::OUTCOME,
    col::REASON,
    col::LATENCY_MS,
    col::SESSION_ID,
    col::DEVICE_ID,
];

/// What one event adds to the SLI counters (revocation bookkeeping aside).
struct Facts<'a> {
    source: Source,
    action: Action,
    outcome: Outcome,
    reason: Option<&'a str>,
    latency: Option<u32>,
}

/// Count an event in, or take attack traffic out again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tally {
    Add,
    /// Everything [`Tally::Add`] counted except `blocked` (M8 counts attacks stopped on purpose).
    Exclude,
}

/// Apply one event's contribution to a minute's counters.
fn tally(stats: &mut MinuteStats, thresholds: &Thresholds, f: &Facts<'_>, how: Tally) {
    let mut bump = |c: Counter| {
        let n = &mut stats.counters[c as usize];
        match how {
            Tally::Add => *n += 1,
            Tally::Exclude => *n = n.saturating_sub(1),
        }
    };
    let path = matches!(f.source, Source::Verifier | Source::Probe);
    match f.action {
        Action::MfaVerify => {
            if f.outcome != Outcome::Challenge && f.outcome != Outcome::Unknown {
                bump(Counter::MfaAttempts);
            }
            if f.outcome == Outcome::Success {
                bump(Counter::MfaSuccesses);
            }
            bump(Counter::AuthAttempts);
            bump(Counter::AuthAttemptsNotRateLimited);
            if f.latency.is_some() {
                bump(Counter::LatencyMeasured);
                if path {
                    bump(Counter::PathLatencyMeasured);
                }
            }
        }
        Action::PrimaryAuth => {
            bump(Counter::AuthAttempts);
            bump(Counter::AuthAttemptsNotRateLimited);
        }
        Action::RateLimited => {
            bump(Counter::AuthAttempts);
            bump(Counter::RateLimited);
        }
        Action::EnrollStart => bump(Counter::EnrollStarts),
        Action::EnrollComplete if f.outcome == Outcome::Success => {
            bump(Counter::EnrollCompletions);
        }
        Action::RecoveryRequest => bump(Counter::Recoveries),
        _ => {}
    }
    if how == Tally::Add
        && (matches!(f.action, Action::Lockout | Action::RateLimited)
            || (matches!(f.outcome, Outcome::Denied | Outcome::Failure)
                && f.reason.is_some_and(|r| BLOCKING_REASONS.contains(&r))))
    {
        bump(Counter::Blocked);
    }
    if path && f.outcome == Outcome::Error {
        bump(Counter::PathErrors);
    }
    if let (Action::MfaVerify, Some(ms)) = (f.action, f.latency) {
        for (n, (measure, bound)) in stats.below.iter_mut().zip(&thresholds.0) {
            let counts = match measure {
                Measure::LatencyMs => true,
                Measure::PathLatencyMs => path,
                Measure::RevokeExposureMs => false,
            };
            if counts && u64::from(ms) < *bound {
                match how {
                    Tally::Add => *n += 1,
                    Tally::Exclude => *n = n.saturating_sub(1),
                }
            }
        }
    }
}

const BLOCKING_REASONS: &[&str] = &[
    "blocked_by_policy",
    "policy_denied",
    "fraud_reported",
    "anomalous_push",
    // An identity provider's verdict it enforced (Okta ThreatInsight in enforce mode, …).
    "threat_detected",
];

impl Aggregator {
    /// An empty aggregator.
    pub fn new(config: LiveConfig) -> Aggregator {
        Aggregator {
            excluded: vec![BTreeMap::new(); config.exclusions.len()],
            config,
            attacks: None,
            tickets: HashMap::new(),
            minutes: BTreeMap::new(),
            minute_hists: BTreeMap::new(),
            hour_hists: BTreeMap::new(),
            sessions: HashMap::new(),
            devices: HashMap::new(),
            revoke_order: VecDeque::new(),
            counters: LiveCounters::default(),
            cumulative: [0; Counter::COUNT],
        }
    }

    /// Recognise attack traffic with `filter` (attack-aware SLOs): its events are counted as
    /// [`Counter::AttackAttempts`] and grouped into [`Campaign`]s, and with `exclude` taken
    /// out of every other SLI counter (and the latency histograms) but `blocked`.
    pub fn with_attack_filter(mut self, filter: Box<dyn AttackFilter>, exclude: bool) -> Self {
        self.attacks = Some(Attacks {
            filter,
            exclude,
            campaigns: HashMap::new(),
        });
        self
    }

    /// Whether an attack filter is attached.
    pub fn recognises_attacks(&self) -> bool {
        self.attacks.is_some()
    }

    /// Whether attack traffic is taken out of the SLIs.
    pub fn excludes_attacks(&self) -> bool {
        self.attacks.as_ref().is_some_and(|a| a.exclude)
    }

    /// Columns [`Aggregator::observe`] reads (for projections when replaying Parquet): the
    /// aggregator's own, and the attack filter's.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut cols = COLUMNS.to_vec();
        if self.reads_apps() {
            cols.push(col::APP);
        }
        if let Some(a) = &self.attacks {
            for c in a.filter.columns() {
                if !cols.contains(&c) {
                    cols.push(c);
                }
            }
        }
        cols
    }

    fn reads_apps(&self) -> bool {
        self.config.exclusions.iter().any(|x| !x.apps.is_empty())
    }

    /// Exclusions (indexes into [`LiveConfig::exclusions`]) covering an event.
    fn exclusions_of(&self, t: i64, app: Option<&str>, factor: Factor) -> Vec<usize> {
        let exclusions = self.config.exclusions.iter().enumerate();
        exclusions
            .filter(|(_, x)| x.covers(t, app, factor))
            .map(|(i, _)| i)
            .collect()
    }

    /// Attack campaigns held whose events overlap `range`, in order of their first event.
    pub fn campaigns(&self, range: TimeRange) -> Vec<&Campaign> {
        let (from, to) = (range.from.millis(), range.to.millis());
        let mut out: Vec<&Campaign> = self
            .attacks
            .iter()
            .flat_map(|a| a.campaigns.values().flatten())
            .filter(|c| c.last_ms >= from && c.first_ms < to)
            .collect();
        out.sort_by(|a, b| (a.first_ms, &a.rule, &a.group).cmp(&(b.first_ms, &b.rule, &b.group)));
        out
    }

    /// Count attack traffic the filter recognised: per minute, into its campaign, and (with
    /// exclusion) out of the SLI counters it was counted in when it arrived.
    fn take_out(&mut self, marks: Vec<AttackEvent>) {
        let Some(attacks) = &mut self.attacks else {
            return;
        };
        let floor = self
            .counters
            .watermark_ms
            .map_or(i64::MIN, |w| w - self.config.retention_minutes * MINUTE_MS);
        for e in marks {
            if e.time_ms < floor {
                continue;
            }
            let attempt = e.action == Action::MfaVerify
                && !matches!(e.outcome, Outcome::Challenge | Outcome::Unknown);
            record_campaign(&mut attacks.campaigns, &e, attempt);
            let minute = e.time_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
            let Some(stats) = self.minutes.get_mut(&minute) else {
                continue;
            };
            if attempt {
                stats.add(Counter::AttackAttempts);
                self.cumulative[Counter::AttackAttempts as usize] += 1;
                if e.outcome == Outcome::Success {
                    stats.add(Counter::AttackSuccesses);
                    self.cumulative[Counter::AttackSuccesses as usize] += 1;
                }
            }
            if !attacks.exclude {
                continue;
            }
            let facts = Facts {
                source: e.source,
                action: e.action,
                outcome: e.outcome,
                reason: e.reason.as_deref(),
                latency: e.latency_ms,
            };
            tally(stats, &self.config.thresholds, &facts, Tally::Exclude);
            let exclusions = self.config.exclusions.iter().zip(&mut self.excluded);
            for (_, held) in
                exclusions.filter(|(x, _)| x.covers(e.time_ms, e.app.as_deref(), e.factor))
            {
                if let Some(stats) = held.get_mut(&minute) {
                    tally(stats, &self.config.thresholds, &facts, Tally::Exclude);
                }
            }
            if let (Action::MfaVerify, Some(ms)) = (e.action, e.latency_ms) {
                let (f, ms) = (e.factor as usize, u64::from(ms));
                if let Some(h) = self.minute_hists.get_mut(&minute) {
                    h.remove(f, ms);
                }
                let hour = e.time_ms.div_euclid(HOUR_MS) * HOUR_MS;
                if let Some(h) = self.hour_hists.get_mut(&hour) {
                    h.remove(f, ms);
                }
            }
        }
    }

    /// The settings.
    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    /// Pipeline counters.
    pub fn counters(&self) -> &LiveCounters {
        &self.counters
    }

    /// Events counted by `c` since the aggregator started (monotonic, unlike the retained
    /// minutes).
    pub fn cumulative(&self, c: Counter) -> u64 {
        self.cumulative[c as usize]
    }

    /// Aggregate one batch of canonical events (pipeline batches or Parquet rows projected to
    /// at least [`COLUMNS`]). Rows should arrive roughly in time order: a use of a revoked
    /// credential only counts as exposure when it arrives after the revocation.
    pub fn observe(&mut self, batch: &CanonicalBatch) {
        let c = Columns::of(batch, self.reads_apps());
        let floor = self
            .counters
            .watermark_ms
            .map_or(i64::MIN, |w| w - self.config.retention_minutes * MINUTE_MS);
        for row in 0..batch.num_rows() {
            let t = c.time.value(row);
            if t < floor {
                self.counters.too_old += 1;
                continue;
            }
            self.counters.events += 1;
            let (Some(source), Some(action), Some(factor), Some(outcome)) =
                (c.source[row], c.action[row], c.factor[row], c.outcome[row])
            else {
                continue;
            };
            let minute = t.div_euclid(MINUTE_MS) * MINUTE_MS;
            let thresholds = &self.config.thresholds;
            let stats = self.minutes.entry(minute).or_insert_with(|| MinuteStats {
                below: vec![0; thresholds.0.len()],
                ..MinuteStats::default()
            });
            let before = stats.counters;
            let reason = (!c.reason.is_null(row)).then(|| c.reason.value(row));
            let latency = (!c.latency.is_null(row)).then(|| c.latency.value(row));
            let facts = Facts {
                source,
                action,
                outcome,
                reason,
                latency,
            };
            tally(stats, thresholds, &facts, Tally::Add);
            let excluded = if self.config.exclusions.is_empty() {
                Vec::new()
            } else {
                let app = c
                    .app
                    .as_ref()
                    .and_then(|a| (!a.is_null(row)).then(|| a.value(row)));
                let excluded = self.exclusions_of(t, app, factor);
                for &i in &excluded {
                    let held = self.excluded[i]
                        .entry(minute)
                        .or_insert_with(|| MinuteStats {
                            below: vec![0; thresholds.0.len()],
                            ..MinuteStats::default()
                        });
                    tally(held, thresholds, &facts, Tally::Add);
                }
                excluded
            };
            let stats = self.minutes.get_mut(&minute).expect("minute entered above");
            if let (Action::MfaVerify, Some(ms)) = (action, latency) {
                let (f, ms) = (factor as usize, u64::from(ms));
                self.minute_hists.entry(minute).or_default().record(f, ms);
                let hour = t.div_euclid(HOUR_MS) * HOUR_MS;
                self.hour_hists.entry(hour).or_default().record(f, ms);
            }
            for ((total, now), was) in self.cumulative.iter_mut().zip(stats.counters).zip(before) {
                *total += now - was;
            }
            let session = (!c.session.is_null(row)).then(|| c.session.value(row));
            let device = (!c.device.is_null(row)).then(|| c.device.value(row));
            match (action, outcome) {
                (Action::SessionRevoke | Action::DeviceRevoke, Outcome::Success) => {
                    let is_session = action == Action::SessionRevoke;
                    if let Some(id) = if is_session { session } else { device } {
                        count_revocation(stats, thresholds);
                        self.cumulative[Counter::Revocations as usize] += 1;
                        for &i in &excluded {
                            let held = self.excluded[i].get_mut(&minute).expect("tallied above");
                            count_revocation(held, thresholds);
                        }
                        self.open_revocation(is_session, id, (minute, t), excluded);
                    }
                }
                (Action::FactorRemove | Action::PolicyChange, _) => {}
                (_, Outcome::Success) => {
                    if let Some(id) = session {
                        self.use_after_revoke(true, id, t);
                    }
                    if let Some(id) = device {
                        self.use_after_revoke(false, id, t);
                    }
                }
                _ => {}
            }
            if self.counters.watermark_ms.is_none_or(|w| t > w) {
                self.counters.watermark_ms = Some(t);
            }
        }
        if let Some(a) = &mut self.attacks {
            let marks = a.filter.observe(batch);
            self.take_out(marks);
        }
        self.expire();
    }

    /// Aggregate one batch of support tickets (the ticket schema, or at least its
    /// `ticket_id`, `system`, `time`, `updated` and `mfa_related` columns). A ticket seen again
    /// counts once, as its latest version (by `updated`), as the `tickets` view of the SQL path
    /// does.
    pub fn observe_tickets(&mut self, batch: &arrow::array::RecordBatch) {
        use arrow::array::{AsArray, BooleanArray};
        use mfascope_core::ticket::col as tcol;
        let (Some(id), Some(system), Some(time), Some(updated), Some(mfa)) = (
            batch.column_by_name(tcol::TICKET_ID),
            batch.column_by_name(tcol::SYSTEM),
            batch.column_by_name(tcol::TIME),
            batch.column_by_name(tcol::UPDATED),
            batch.column_by_name(tcol::MFA_RELATED),
        ) else {
            return;
        };
        let as_strings = |a: &arrow::array::ArrayRef| {
            arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)
                .map(|a| a.as_string::<i32>().clone())
        };
        let (Ok(id), Ok(system)) = (as_strings(id), as_strings(system)) else {
            return;
        };
        let time = time.as_primitive::<TimestampMillisecondType>();
        let updated = updated.as_primitive::<TimestampMillisecondType>();
        let mfa: &BooleanArray = mfa.as_boolean();
        let floor = self
            .counters
            .watermark_ms
            .map_or(i64::MIN, |w| w - self.config.retention_minutes * MINUTE_MS);
        for row in 0..batch.num_rows() {
            let t = time.value(row);
            if t < floor {
                self.counters.too_old += 1;
                continue;
            }
            let key = format!("{}\0{}", system.value(row), id.value(row));
            let version = if updated.is_null(row) {
                i64::MIN
            } else {
                updated.value(row)
            };
            let is_mfa = mfa.value(row);
            let minute = t.div_euclid(MINUTE_MS) * MINUTE_MS;
            if let Some(&(old_minute, old_mfa, old_version)) = self.tickets.get(&key) {
                if version < old_version {
                    continue;
                }
                self.count_ticket(old_minute, old_mfa, false);
            }
            self.tickets.insert(key, (minute, is_mfa, version));
            self.count_ticket(minute, is_mfa, true);
        }
    }

    fn count_ticket(&mut self, minute: i64, mfa: bool, add: bool) {
        let below = self.config.thresholds.0.len();
        let kind = if mfa {
            Counter::MfaTickets
        } else {
            Counter::TicketsNotMfa
        };
        let bump = |n: &mut u64| {
            if add {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
            }
        };
        for c in [Counter::Tickets, kind] {
            bump(&mut self.cumulative[c as usize]);
        }
        let exclusions = self.config.exclusions.iter().zip(&mut self.excluded);
        let held = exclusions
            .filter(|(x, _)| x.covers_minute(minute))
            .map(|(_, held)| held);
        for minutes in std::iter::once(&mut self.minutes).chain(held) {
            let stats = minutes.entry(minute).or_insert_with(|| MinuteStats {
                below: vec![0; below],
                ..MinuteStats::default()
            });
            for c in [Counter::Tickets, kind] {
                bump(&mut stats.counters[c as usize]);
            }
        }
    }

    fn open_revocation(
        &mut self,
        is_session: bool,
        id: &str,
        (minute, time): (i64, i64),
        excluded: Vec<usize>,
    ) {
        let table = if is_session {
            &mut self.sessions
        } else {
            &mut self.devices
        };
        table.insert(
            id.to_string(),
            Revocation {
                minute,
                time,
                exposure: 0,
                excluded,
            },
        );
        self.revoke_order
            .push_back((time, is_session, id.to_string()));
        while self.revoke_order.len() > self.config.max_open_revocations {
            if let Some((t, s, id)) = self.revoke_order.pop_front() {
                self.counters.revocations_evicted += 1;
                self.forget_revocation(s, &id, t);
            }
        }
    }

    fn forget_revocation(&mut self, is_session: bool, id: &str, time: i64) {
        let table = if is_session {
            &mut self.sessions
        } else {
            &mut self.devices
        };
        if table.get(id).is_some_and(|r| r.time == time) {
            table.remove(id);
        }
    }

    fn use_after_revoke(&mut self, is_session: bool, id: &str, t: i64) {
        let table = if is_session {
            &mut self.sessions
        } else {
            &mut self.devices
        };
        let Some(r) = table.get_mut(id) else {
            return;
        };
        let exposure = t - r.time;
        if exposure <= 0 || exposure > REVOKE_HORIZON_MS || exposure <= r.exposure {
            return;
        }
        let before = r.exposure;
        r.exposure = exposure;
        let (minute, excluded) = (r.minute, r.excluded.clone());
        let bounds = &self.config.thresholds.0;
        // The revocation's exposure crossed these bounds: no longer below them.
        let crossed = |stats: &mut MinuteStats| {
            for (n, (measure, bound)) in stats.below.iter_mut().zip(bounds) {
                let bound = *bound as i64;
                if *measure == Measure::RevokeExposureMs && before < bound && exposure >= bound {
                    *n = n.saturating_sub(1);
                }
            }
        };
        if let Some(stats) = self.minutes.get_mut(&minute) {
            crossed(stats);
        }
        for i in excluded {
            if let Some(stats) = self.excluded[i].get_mut(&minute) {
                crossed(stats);
            }
        }
    }

    fn expire(&mut self) {
        let Some(w) = self.counters.watermark_ms else {
            return;
        };
        let keep_from = w - self.config.retention_minutes * MINUTE_MS;
        let floor = |t: i64, unit: i64| t.div_euclid(unit) * unit;
        self.minutes = self.minutes.split_off(&floor(keep_from, MINUTE_MS));
        for held in &mut self.excluded {
            *held = held.split_off(&floor(keep_from, MINUTE_MS));
        }
        let hist_from = w - self.config.histogram_minutes * MINUTE_MS;
        self.minute_hists = self.minute_hists.split_off(&floor(hist_from, MINUTE_MS));
        self.hour_hists = self.hour_hists.split_off(&floor(keep_from, HOUR_MS));
        if let Some(a) = &mut self.attacks {
            a.campaigns.retain(|_, list| {
                list.retain(|c| c.last_ms >= keep_from);
                !list.is_empty()
            });
        }
        while let Some((t, s, _)) = self.revoke_order.front()
            && *t < w - REVOKE_HORIZON_MS
        {
            let (t, s, id) = (*t, *s, self.revoke_order.pop_front().expect("front").2);
            self.forget_revocation(s, &id, t);
        }
    }

    /// Minutes with data in `range`, in order.
    pub fn minutes(&self, range: TimeRange) -> impl Iterator<Item = (i64, &MinuteStats)> {
        self.minutes.range(range.as_millis()).map(|(k, v)| (*k, v))
    }

    /// The counters of exclusion `index` ([`LiveConfig::exclusions`]) per minute in `range`:
    /// what its events added to [`Aggregator::minutes`].
    pub fn excluded(
        &self,
        index: usize,
        range: TimeRange,
    ) -> impl Iterator<Item = (i64, &MinuteStats)> {
        self.excluded
            .get(index)
            .into_iter()
            .flat_map(move |m| m.range(range.as_millis()))
            .map(|(k, v)| (*k, v))
    }

    /// Earliest and latest minute held.
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((
            *self.minutes.first_key_value()?.0,
            *self.minutes.last_key_value()?.0,
        ))
    }

    /// Counters summed over `range`.
    pub fn totals(&self, range: TimeRange) -> MinuteStats {
        let mut out = MinuteStats::default();
        for (_, m) in self.minutes(range) {
            out.merge(m);
        }
        out
    }

    /// Latency percentiles over `range` for one factor or all. Ranges aligned to whole hours
    /// use the hourly histograms (kept for the whole retention); others need per-minute
    /// histograms, which are kept for [`LiveConfig::histogram_minutes`]. `None` without data.
    pub fn latency(&self, range: TimeRange, factor: Option<Factor>) -> Option<LatencySummary> {
        let mut h = Histogram::<u32>::new(HISTOGRAM_SIGFIG).expect("valid sigfig");
        let f = factor.map(|f| f as usize);
        let (from, to) = (range.from.millis(), range.to.millis());
        if from % HOUR_MS == 0 && to % HOUR_MS == 0 {
            for (_, hs) in self.hour_hists.range(from..to) {
                hs.merge_into(&mut h, f);
            }
        } else {
            for (_, hs) in self.minute_hists.range(from..to) {
                hs.merge_into(&mut h, f);
            }
        }
        (!h.is_empty()).then(|| LatencySummary {
            count: h.len(),
            p50_ms: h.value_at_quantile(0.50),
            p95_ms: h.value_at_quantile(0.95),
            p99_ms: h.value_at_quantile(0.99),
            max_ms: h.max(),
        })
    }

    /// Factors with latency data in `range` (hour-aligned).
    pub fn latency_factors(&self, range: TimeRange) -> Vec<Factor> {
        Factor::iter()
            .filter(|f| {
                self.hour_hists.range(range.as_millis()).any(|(_, hs)| {
                    hs.0.get(*f as usize)
                        .is_some_and(|h| h.as_ref().is_some_and(|h| !h.is_empty()))
                })
            })
            .collect()
    }

    /// Approximate heap held, in bytes (minutes, histograms and open revocations).
    pub fn memory_bytes(&self) -> usize {
        let hist = |m: &BTreeMap<i64, FactorHists>| -> usize {
            m.values()
                .flat_map(|h| h.0.iter().flatten())
                .map(|h| h.distinct_values() * 4 + 64)
                .sum()
        };
        (self.minutes.len() + self.excluded.iter().map(BTreeMap::len).sum::<usize>())
            * (std::mem::size_of::<MinuteStats>() + 8 * self.config.thresholds.0.len())
            + hist(&self.minute_hists)
            + hist(&self.hour_hists)
            + (self.sessions.len() + self.devices.len()) * 96
    }
}

/// Count one revocation in a minute (its exposure is below every bound until a use shows
/// otherwise).
fn count_revocation(stats: &mut MinuteStats, thresholds: &Thresholds) {
    stats.add(Counter::Revocations);
    for (n, (measure, _)) in stats.below.iter_mut().zip(&thresholds.0) {
        *n += u64::from(*measure == Measure::RevokeExposureMs);
    }
}

/// Add one mark to its campaign: the campaign of the same rule and group it is within the
/// rule's timespan of (campaigns it bridges merge), or a new one.
fn record_campaign(
    campaigns: &mut HashMap<(String, String), Vec<Campaign>>,
    e: &AttackEvent,
    attempt: bool,
) {
    let list = campaigns
        .entry((e.rule.to_string(), e.group.clone()))
        .or_default();
    let (t, w) = (e.time_ms, e.window_ms);
    match list
        .iter_mut()
        .find(|c| t >= c.first_ms - w && t <= c.last_ms + w)
    {
        Some(c) => {
            c.first_ms = c.first_ms.min(t);
            c.last_ms = c.last_ms.max(t);
            c.events += 1;
            c.attempts += u64::from(attempt);
        }
        None => list.push(Campaign {
            rule: e.rule.to_string(),
            group: e.group.clone(),
            first_ms: t,
            last_ms: t,
            events: 1,
            attempts: u64::from(attempt),
            window_ms: w,
        }),
    }
    list.sort_by_key(|c| c.first_ms);
    let mut merged: Vec<Campaign> = Vec::with_capacity(list.len());
    for c in list.drain(..) {
        match merged.last_mut() {
            Some(m) if c.first_ms <= m.last_ms + m.window_ms => {
                m.last_ms = m.last_ms.max(c.last_ms);
                m.events += c.events;
                m.attempts += c.attempts;
            }
            _ => merged.push(c),
        }
    }
    *list = merged;
}

impl mfascope_core::observe::ObserveBatch for Aggregator {
    fn observe_batch(&mut self, batch: &CanonicalBatch) {
        self.observe(batch);
    }

    fn observe_ticket_batch(&mut self, tickets: &arrow::array::RecordBatch) {
        self.observe_tickets(tickets);
    }
}
