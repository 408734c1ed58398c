//! Panel data: time series of the `series.*` bindings, bucketed for the view's time range, from
//! the live aggregator and the dashboard's own per-minute extras. Pure functions of bounded
//! state: the work is proportional to the buckets in range, never to the events stored.

use crate::event::Factor;
use crate::sli::live::{Aggregator, Counter, MINUTE_MS, MinuteStats};

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
    /// Milliseconds.
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

/// The range `[from, to)` ending at the minute after `latest` (the data's freshest minute),
/// aligned to whole buckets.
pub fn window(latest: i64, range_minutes: i64) -> (i64, i64, i64) {
    let bucket = bucket_minutes(range_minutes) * MINUTE_MS;
    let to = (latest - latest.rem_euclid(bucket)) + bucket;
    (to - range_minutes * MINUTE_MS, to, bucket)
}

fn buckets(from: i64, to: i64, bucket: i64) -> impl Iterator<Item = i64> {
    (0..)
        .map(move |k| from + k * bucket)
        .take_while(move |b| *b < to)
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// A counter-based series (`series.*` bound to the aggregator) and its unit, or `None` for
/// other bindings.
pub fn counter_series(
    bind: &str,
    agg: &Aggregator,
    from: i64,
    to: i64,
    bucket: i64,
) -> Option<(Series, Unit)> {
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
        _ => return None,
    };
    let unit = match bind {
        "series.mfa_failures" | "series.rate_limited" => Unit::Count,
        _ => Unit::Ratio,
    };
    let series = buckets(from, to, bucket)
        .map(|b| (b, f(&agg.totals(b, b + bucket))))
        .collect();
    Some((series, unit))
}

/// The whole range as one value (the headline of a `stat`).
pub fn counter_total(bind: &str, agg: &Aggregator, from: i64, to: i64) -> Option<f64> {
    counter_series(bind, agg, from, to, to - from).and_then(|(s, _)| s.first()?.1)
}

/// Share of successful verifications that used a phishing-resistant factor.
pub fn phishing_resistant_series(dash: &DashState, from: i64, to: i64, bucket: i64) -> Series {
    buckets(from, to, bucket)
        .map(|b| {
            let e = dash.extra(b, b + bucket);
            (b, ratio(e.phishing_resistant, e.verify_successes))
        })
        .collect()
}

/// p95 verification latency per factor with data in range, one series each.
pub fn latency_p95_by_factor(
    agg: &Aggregator,
    from: i64,
    to: i64,
    bucket: i64,
) -> Vec<(Factor, Series)> {
    let hour = 60 * MINUTE_MS;
    let factors = agg.latency_factors(from - from.rem_euclid(hour), to + hour);
    factors
        .into_iter()
        .map(|f| {
            let s = buckets(from, to, bucket)
                .map(|b| {
                    let p95 = agg.latency(b, b + bucket, Some(f)).map(|l| l.p95_ms as f64);
                    (b, p95)
                })
                .collect();
            (f, s)
        })
        .collect()
}

/// Format a value of `unit` for a cell or a headline.
pub fn format(value: Option<f64>, unit: Unit) -> String {
    match (value, unit) {
        (None, _) => "–".into(),
        (Some(v), Unit::Ratio) => format!("{:.2}%", v * 100.0),
        (Some(v), Unit::Count) => format!("{v:.0}"),
        (Some(v), Unit::Millis) => format!("{v:.0} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, Event, EventBatchBuilder, Outcome, Source};
    use crate::sli::live::LiveConfig;

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
        agg.observe(&b.finish());
        agg
    }

    #[test]
    fn buckets_and_windows_align() {
        assert_eq!(bucket_minutes(15), 1);
        assert_eq!(bucket_minutes(360), 5);
        assert_eq!(bucket_minutes(30 * 1440), 1440);
        let (from, to, bucket) = window(T0 + 90_000, 60);
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
            T0,
            T0 + 3 * MINUTE_MS,
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
        let total = counter_total("series.mfa_success_rate", &a, T0, T0 + 3 * MINUTE_MS);
        assert_eq!(total, Some(2.0 / 3.0));
        let (f, _) =
            counter_series("series.mfa_failures", &a, T0, T0 + MINUTE_MS, MINUTE_MS).unwrap();
        assert_eq!(f, vec![(T0, Some(1.0))]);
        assert!(counter_series("alerts.firing", &a, T0, T0 + 1, 1).is_none());
        assert_eq!(format(total, Unit::Ratio), "66.67%");
        assert_eq!(format(None, Unit::Count), "–");
    }
}
