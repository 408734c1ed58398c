//! Event-time parsing and formatting shared by every normalizer, with one plausibility range so
//! absurd timestamps (1970, year 9999) become dead letters instead of partitions.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// Earliest accepted event time: 2000-01-01T00:00:00Z.
pub const MIN_MS: i64 = 946_684_800_000;
/// Latest accepted event time: 2100-01-01T00:00:00Z.
pub const MAX_MS: i64 = 4_102_444_800_000;

/// An instant in event time: milliseconds since the Unix epoch, UTC. Serialized as the number
/// (JSON outputs are unchanged); shown as RFC 3339.
///
/// ```
/// use mfascope_core::time::{EventTime, TimeRange};
///
/// let t = EventTime::parse_rfc3339("2024-05-02T13:07:30Z").unwrap();
/// assert_eq!(t.floor(60_000).to_string(), "2024-05-02T13:07:00.000Z");
/// let r = TimeRange::new(t, t.plus_millis(3_600_000));
/// assert!(r.contains(t) && !r.contains(r.to));
/// ```
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct EventTime(i64);

impl EventTime {
    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        EventTime(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Parse RFC 3339 (range-checked like every event time).
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        parse_rfc3339(s).map(EventTime)
    }

    /// The start of the `span_ms`-long bucket holding this instant (minute: 60 000).
    pub const fn floor(self, span_ms: i64) -> Self {
        EventTime(self.0 - self.0.rem_euclid(span_ms))
    }

    /// This instant moved by `ms` (negative: earlier).
    pub const fn plus_millis(self, ms: i64) -> Self {
        EventTime(self.0 + ms)
    }
}

impl From<i64> for EventTime {
    fn from(ms: i64) -> Self {
        EventTime(ms)
    }
}

impl std::fmt::Display for EventTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_rfc3339(self.0))
    }
}

/// A half-open range of event time, `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TimeRange {
    /// First instant in the range.
    pub from: EventTime,
    /// First instant after the range.
    pub to: EventTime,
}

impl TimeRange {
    /// `[from, to)`.
    pub fn new(from: impl Into<EventTime>, to: impl Into<EventTime>) -> Self {
        TimeRange {
            from: from.into(),
            to: to.into(),
        }
    }

    /// All of time (for totals over everything held).
    pub const ALL: TimeRange = TimeRange {
        from: EventTime(i64::MIN),
        to: EventTime(i64::MAX),
    };

    /// `[from, to)` in epoch milliseconds, for range look-ups in maps keyed by milliseconds.
    pub fn as_millis(self) -> std::ops::Range<i64> {
        self.from.0..self.to.0
    }

    /// The consecutive `span_ms`-long sub-ranges starting at `from` (the last may reach past
    /// `to`).
    pub fn buckets(self, span_ms: i64) -> impl Iterator<Item = TimeRange> {
        let span_ms = span_ms.max(1);
        (0..)
            .map(move |k| self.from.plus_millis(k * span_ms))
            .take_while(move |b| *b < self.to)
            .map(move |b| TimeRange::new(b, b.plus_millis(span_ms)))
    }

    /// The range's length in milliseconds (0 when empty).
    pub fn millis(self) -> i64 {
        (self.to.0 - self.from.0).max(0)
    }

    /// True when `t` is in the range.
    pub fn contains(self, t: EventTime) -> bool {
        self.from <= t && t < self.to
    }
}

/// Reject times outside [`MIN_MS`, `MAX_MS`) with a message naming the value and the range.
pub fn check_range(ms: i64) -> Result<i64, String> {
    if (MIN_MS..MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "time {} is outside the accepted range 2000-01-01..2100-01-01",
            DateTime::<Utc>::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                .unwrap_or_else(|| format!("{ms} ms")),
        ))
    }
}

/// Parse RFC 3339 (any number of fraction digits, `Z` or offset) into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let t =
        DateTime::parse_from_rfc3339(s).map_err(|e| format!("time {s:?} is not RFC 3339: {e}"))?;
    check_range(t.timestamp_millis())
}

/// Parse `YYYY-MM-DD HH:MM:SS[,.]fff` (server logs without zone; taken as UTC) or RFC 3339.
pub fn parse_log_datetime(s: &str) -> Result<i64, String> {
    if let Ok(ms) = parse_rfc3339(s) {
        return Ok(ms);
    }
    let normalized = s.replacen(',', ".", 1);
    let t = NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%d %H:%M:%S%.f").map_err(|e| {
        format!("time {s:?} is neither RFC 3339 nor 'YYYY-MM-DD HH:MM:SS,mmm': {e}")
    })?;
    check_range(Utc.from_utc_datetime(&t).timestamp_millis())
}

/// Epoch seconds (possibly fractional) to milliseconds, range-checked.
pub fn from_epoch_seconds(secs: f64) -> Result<i64, String> {
    if !secs.is_finite() {
        return Err(format!("epoch time {secs} is not a number"));
    }
    check_range((secs * 1000.0).round() as i64)
}

/// Format epoch milliseconds as RFC 3339 with millisecond precision and `Z`.
pub fn format_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A span such as `90s`, `20m`, `6h`, `2d`, `1w` (also `ms`) in milliseconds; `None` when
/// malformed or out of range.
pub fn parse_span_ms(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// Parse a duration such as `500ms`, `1s`, `2m`, `6h` or `30d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}; use e.g. 500ms, 1s, 2m, 6h, 30d"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?}; use ms, s, m, h or d"
            ));
        }
    };
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vendor_time_shapes() {
        assert_eq!(
            parse_rfc3339("2020-02-14T22:18:51.843Z").unwrap(),
            1_581_718_731_843
        );
        // Entra: seven fraction digits and an offset.
        assert_eq!(
            parse_rfc3339("2019-10-18T04:45:48.0729893-05:00").unwrap(),
            parse_rfc3339("2019-10-18T09:45:48.072Z").unwrap()
        );
        assert_eq!(
            parse_log_datetime("2024-03-19 10:01:42,525").unwrap(),
            parse_rfc3339("2024-03-19T10:01:42.525Z").unwrap()
        );
    }

    #[test]
    fn rejects_absurd_times() {
        assert!(
            parse_rfc3339("1970-01-01T00:00:00Z")
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            parse_rfc3339("9999-12-31T00:00:00Z")
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            parse_rfc3339("yesterday")
                .unwrap_err()
                .contains("not RFC 3339")
        );
    }

    #[test]
    fn durations_take_ms_to_days() {
        use std::time::Duration;
        assert_eq!(
            super::parse_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(super::parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(
            super::parse_duration("6h"),
            Ok(Duration::from_secs(6 * 3600))
        );
        assert_eq!(
            super::parse_duration("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert!(
            super::parse_duration("1w")
                .unwrap_err()
                .contains("ms, s, m, h or d")
        );
        assert!(super::parse_duration("soon").is_err());
    }
}
