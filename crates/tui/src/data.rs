//! Panel data: time series of the `series.*` bindings, bucketed for the view's time range, from
//! the live aggregator and the dashboard's own per-minute extras. Pure functions of bounded
//! state: the work is proportional to the buckets in range, never to the events stored.

use mfascope_core::event::Factor;
use mfascope_core::time::TimeRange;
use mfascope_sli::live::{Aggregator, Counter, HOUR_MS, MINUTE_MS, MinuteStats};
use mfascope_sli::slice::significantly_below;

use super::state::DashState;

/// A value per bucket start (epoch ms); `None` where the bucket has no denominator.
pub type Series = Vec<(i64, Option<f64>)>;

/// What a series measures, for axis labels and number formatting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A ratio 0–1, shown as a percentage.
    Ratio,
    /// A count per bucket.
    Count,
    /// A duration in milliseconds.
    Millis,
}

/// Bucket length (minutes) for a range (minutes): about 15–60 points per chart.
pub fn bucket_minutes(range_minutes: i64) -> i64 {
    match range_minutes {
        ..=60 => 1,
        61..=360 => 5,
        361..=1440 => 30,
        1441..=10080 => 360,
        _ => 1440,
    }
}

/// The time a view shows: its range and the length of its charts' buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The range shown.
    pub range: TimeRange,
    /// Bucket length in milliseconds.
    pub bucket: i64,
    /// The range's length as chosen (minutes), for axis labels.
    pub minutes: i64,
}

/// The `range_minutes` ending at the minute after `latest` (the data's freshest minute),
/// aligned to whole buckets.
pub fn window(latest: i64, range_minutes: i64) -> Window {
    let bucket = bucket_minutes(range_minutes) * MINUTE_MS;
    let to = (latest - latest.rem_euclid(bucket)) + bucket;
    Window {
        range: TimeRange::new(to - range_minutes * MINUTE_MS, to),
        bucket,
        minutes: range_minutes,
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The success ratio below which (significantly) a minute of the 2FA path is bad: the shipped
/// availability SLO's `timeSliceTarget`, as in `queries/m06_availability.sql`.
pub const AVAILABILITY_SLICE_TARGET: f64 = 0.98;

/// M6 per bucket: good minutes / minutes with verification traffic or a path error, by the
/// same minute rule as the SQL query and the SLO evaluator.
pub fn availability_series(agg: &Aggregator, range: TimeRange, bucket: i64) -> Series {
    range
        .buckets(bucket)
        .map(|b| {
            let (mut good, mut minutes) = (0, 0);
            for (_, m) in agg.minutes(b) {
                let (attempts, errors) = (m.get(Counter::MfaAttempts), m.get(Counter::PathErrors));
                if attempts == 0 && errors == 0 {
                    continue;
                }
                minutes += 1;
                let below = significantly_below(
                    m.get(Counter::MfaSuccesses),
                    attempts,
                    AVAILABILITY_SLICE_TARGET,
                );
                if errors == 0 && !below {
                    good += 1;
                }
            }
            (b.from.millis(), ratio(good, minutes))
        })
        .collect()
}

/// A counter-based series (`series.*` bound to the aggregator) and its unit, or `None` for
/// other bindings.
pub fn counter_series(
    bind: &str,
    agg: &Aggregator,
    range: TimeRange,
    bucket: i64,
) -> Option<(Series, Unit)> {
    if bind == "series.availability" {
        return Some((availability_series(agg, range, bucket), Unit::Ratio));
    }
    let f: fn(&MinuteStats) -> Option<f64> = match bind {
        "series.mfa_success_rate" => {
            |m| ratio(m.get(Counter::MfaSuccesses), m.get(Counter::MfaAttempts))
        }
        "series.mfa_failures" => {
            |m| Some((m.get(Counter::MfaAttempts) - m.get(Counter::MfaSuccesses)) as f64)
        }
        "series.enroll_completion" => |m| {
            ratio(
                m.get(Counter::EnrollCompletions),
                m.get(Counter::EnrollStarts),
            )
        },
        "series.recovery_rate" => {
            |m| ratio(m.get(Counter::Recoveries), m.get(Counter::AuthAttempts))
        }
        "series.rate_limited" => |m| Some(m.get(Counter::RateLimited) as f64),
        "series.mfa_tickets" => |m| Some(m.get(Counter::MfaTickets) as f64),
        "series.attack_attempts" => |m| Some(m.get(Counter::AttackAttempts) as f64),
        "series.mfa_ticket_share" => |m| ratio(m.get(Counter::MfaTickets), m.get(Counter::Tickets)),
        _ => return None,
    };
    let unit = match bind {
        "series.mfa_failures"
        | "series.rate_limited"
        | "series.mfa_tickets"
        | "series.attack_attempts" => Unit::Count,
        _ => Unit::Ratio,
    };
    let series = range
        .buckets(bucket)
        .map(|b| (b.from.millis(), f(&agg.totals(b))))
        .collect();
    Some((series, unit))
}

/// The whole range as one value (the headline of a `stat`).
pub fn counter_total(bind: &str, agg: &Aggregator, range: TimeRange) -> Option<f64> {
    counter_series(bind, agg, range, range.millis()).and_then(|(s, _)| s.first()?.1)
}

/// Share of successful verifications that used a phishing-resistant factor.
pub fn phishing_resistant_series(dash: &DashState, range: TimeRange, bucket: i64) -> Series {
    range
        .buckets(bucket)
        .map(|b| {
            let e = dash.extra(b);
            (
                b.from.millis(),
                ratio(e.phishing_resistant, e.verify_successes),
            )
        })
        .collect()
}

/// p95 verification latency per factor with data in range, one series each.
pub fn latency_p95_by_factor(
    agg: &Aggregator,
    range: TimeRange,
    bucket: i64,
) -> Vec<(Factor, Series)> {
    agg.latency_factors(whole_hours(range))
        .into_iter()
        .map(|f| {
            let s = range
                .buckets(bucket)
                .map(|b| {
                    let p95 = agg.latency(b, Some(f)).map(|l| l.p95_ms as f64);
                    (b.from.millis(), p95)
                })
                .collect();
            (f, s)
        })
        .collect()
}

/// The 2FA success rate of legitimate users and with attack traffic counted, per bucket
/// (the attack-aware success chart): whichever way `--attack-exclusion` is set, the
/// aggregator's counters and its attack counters give both.
pub fn success_with_attacks(agg: &Aggregator, range: TimeRange, bucket: i64) -> [Series; 2] {
    let excluded = agg.excludes_attacks();
    let (mut legit, mut all) = (Series::new(), Series::new());
    for b in range.buckets(bucket) {
        let m = agg.totals(b);
        let (s, a) = (m.get(Counter::MfaSuccesses), m.get(Counter::MfaAttempts));
        let (xs, xa) = (
            m.get(Counter::AttackSuccesses),
            m.get(Counter::AttackAttempts),
        );
        let (legit_rate, all_rate) = if excluded {
            (ratio(s, a), ratio(s + xs, a + xa))
        } else {
            (
                ratio(s.saturating_sub(xs), a.saturating_sub(xa)),
                ratio(s, a),
            )
        };
        legit.push((b.from.millis(), legit_rate));
        all.push((b.from.millis(), all_rate));
    }
    [legit, all]
}

/// `range` widened to whole hours (the hourly latency histograms' grain).
pub fn whole_hours(range: TimeRange) -> TimeRange {
    TimeRange::new(range.from.floor(HOUR_MS), range.to.plus_millis(HOUR_MS))
}

/// Format a value of `unit` for a cell or a headline: percentages with two decimals, counts
/// with thousands separators, durations in ms below 10 s and in s above.
pub fn format(value: Option<f64>, unit: Unit) -> String {
    match (value, unit) {
        (None, _) => "–".into(),
        (Some(v), Unit::Ratio) => format!("{:.2}%", v * 100.0),
        (Some(v), Unit::Count) => thousands(v.round() as i64),
        (Some(v), Unit::Millis) if v.abs() >= 10_000.0 => format!("{:.1} s", v / 1000.0),
        (Some(v), Unit::Millis) => format!("{v:.0} ms"),
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The top of a count or duration axis: the next 1, 2 or 5 × 10ⁿ at or above `max` (at
/// least 1), so the three labels (0, half, top) are round numbers.
pub fn axis_top(max: f64) -> f64 {
    if max <= 1.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p)
}

/// An axis label: like [`format`], with one decimal where a small count is not whole.
pub fn axis_label(v: f64, unit: Unit) -> String {
    if unit == Unit::Count && v < 10.0 && v.fract() != 0.0 {
        format!("{v:.1}")
    } else {
        format(Some(v), unit)
    }
}

/// A length of time in minutes as text: `15m`, `6h`, `1d`.
pub fn minutes_text(m: i64) -> String {
    match m {
        m if m % 1440 == 0 => format!("{}d", m / 1440),
        m if m % 60 == 0 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Action, Event, EventBatchBuilder, Outcome, Source};
    use mfascope_sli::live::LiveConfig;

    const T0: i64 = 1_714_557_600_000; // 2024-05-01T10:00:00Z

    fn agg(events: &[(i64, Action, Outcome)]) -> Aggregator {
        let mut b = EventBatchBuilder::default();
        for (k, (t, a, o)) in events.iter().enumerate() {
            b.append(&Event::new(
                Source::Canonical,
                format!("e{k}"),
                *t,
                "u",
                "t",
                (*a, Factor::Totp, *o),
            ));
        }
        let mut agg = Aggregator::new(LiveConfig::default());
        agg.observe(&b.finish_canonical());
        agg
    }

    #[test]
    fn numbers_are_formatted_for_reading() {
        assert_eq!(format(Some(20_000.0), Unit::Count), "20,000");
        assert_eq!(format(Some(-1_234_567.0), Unit::Count), "-1,234,567");
        assert_eq!(format(Some(999.0), Unit::Count), "999");
        assert_eq!(format(Some(62_514.0), Unit::Millis), "62.5 s");
        assert_eq!(format(Some(850.0), Unit::Millis), "850 ms");
        assert_eq!(format(Some(0.98987), Unit::Ratio), "98.99%");
        assert_eq!(format(None, Unit::Ratio), "–");
        assert_eq!(axis_top(1.0), 1.0);
        assert_eq!(axis_top(1.3), 2.0);
        assert_eq!(axis_top(62_514.0), 100_000.0);
        assert_eq!(axis_top(420.0), 500.0);
        assert_eq!(axis_label(0.5, Unit::Count), "0.5");
        assert_eq!(axis_label(2.5, Unit::Count), "2.5");
        assert_eq!(axis_label(50.0, Unit::Count), "50");
        assert_eq!(minutes_text(15), "15m");
        assert_eq!(minutes_text(360), "6h");
        assert_eq!(minutes_text(1440), "1d");
    }

    #[test]
    fn buckets_and_windows_align() {
        assert_eq!(bucket_minutes(15), 1);
        assert_eq!(bucket_minutes(360), 5);
        assert_eq!(bucket_minutes(30 * 1440), 1440);
        let w = window(T0 + 90_000, 60);
        let (from, to, bucket) = (w.range.from.millis(), w.range.to.millis(), w.bucket);
        assert_eq!(bucket, MINUTE_MS);
        assert_eq!(
            to,
            T0 + 2 * MINUTE_MS,
            "the minute holding the latest event is included"
        );
        assert_eq!(to - from, 60 * MINUTE_MS);
    }

    #[test]
    fn success_rate_per_bucket_and_total() {
        let a = agg(&[
            (T0, Action::MfaVerify, Outcome::Success),
            (T0 + 1000, Action::MfaVerify, Outcome::Failure),
            (T0 + MINUTE_MS, Action::MfaVerify, Outcome::Success),
        ]);
        let (s, unit) = counter_series(
            "series.mfa_success_rate",
            &a,
            TimeRange::new(T0, T0 + 3 * MINUTE_MS),
            MINUTE_MS,
        )
        .unwrap();
        assert_eq!(unit, Unit::Ratio);
        assert_eq!(
            s,
            vec![
                (T0, Some(0.5)),
                (T0 + MINUTE_MS, Some(1.0)),
                (T0 + 2 * MINUTE_MS, None)
            ]
        );
        let total = counter_total(
            "series.mfa_success_rate",
            &a,
            TimeRange::new(T0, T0 + 3 * MINUTE_MS),
        );
        assert_eq!(total, Some(2.0 / 3.0));
        let (f, _) = counter_series(
            "series.mfa_failures",
            &a,
            TimeRange::new(T0, T0 + MINUTE_MS),
            MINUTE_MS,
        )
        .unwrap();
        assert_eq!(f, vec![(T0, Some(1.0))]);
        assert!(counter_series("alerts.firing", &a, TimeRange::new(T0, T0 + 1), 1).is_none());
        assert_eq!(format(total, Unit::Ratio), "66.67%");
        assert_eq!(format(None, Unit::Count), "–");
    }
}
