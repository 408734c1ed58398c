//! Operational incidents injected into simulated traffic (`--incident`), so SLO burn-rate
//! alerts can be exercised on known ground truth.

use std::str::FromStr;

use mfascope_core::time::{parse_rfc3339, parse_span_ms};

/// What goes wrong during an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentKind {
    /// The push provider is down: every push verification times out (no response).
    PushOutage,
    /// A slow degradation: a share (`rate`) of all verifications fail with a provider error.
    Degradation,
}

/// One incident: `KIND@START/DURATION[/RATE]`, e.g. `push-outage@2024-05-03T10:00:00Z/20m`
/// or `degradation@2024-05-02T00:00:00Z/2d/0.06`.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    /// What goes wrong.
    pub kind: IncidentKind,
    /// First affected instant (epoch ms).
    pub start_ms: i64,
    /// How long it lasts (ms).
    pub duration_ms: i64,
    /// Share of verifications affected (1.0 for an outage).
    pub rate: f64,
}

impl Incident {
    /// Whether `t` (epoch ms) falls inside the incident.
    pub fn covers(&self, t: i64) -> bool {
        t >= self.start_ms && t < self.start_ms + self.duration_ms
    }
}

impl FromStr for Incident {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "invalid incident {s:?}: use KIND@START/DURATION[/RATE] with KIND push-outage or \
                 degradation, e.g. push-outage@2024-05-03T10:00:00Z/20m or \
                 degradation@2024-05-02T00:00:00Z/2d/0.06"
            )
        };
        let (kind, rest) = s.split_once('@').ok_or_else(usage)?;
        let kind = match kind {
            "push-outage" => IncidentKind::PushOutage,
            "degradation" => IncidentKind::Degradation,
            _ => return Err(usage()),
        };
        let mut parts = rest.split('/');
        let start_ms = parse_rfc3339(parts.next().unwrap_or_default()).map_err(|_| usage())?;
        let duration_ms = parts
            .next()
            .and_then(parse_span_ms)
            .filter(|d| *d > 0)
            .ok_or_else(usage)?;
        let rate = match (kind, parts.next()) {
            (_, Some(r)) => r
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(usage)?,
            (IncidentKind::PushOutage, None) => 1.0,
            (IncidentKind::Degradation, None) => 0.05,
        };
        if parts.next().is_some() {
            return Err(usage());
        }
        Ok(Incident {
            kind,
            start_ms,
            duration_ms,
            rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_incidents() {
        let i: Incident = "push-outage@2024-05-03T10:00:00Z/20m".parse().unwrap();
        assert_eq!(i.kind, IncidentKind::PushOutage);
        assert_eq!(i.duration_ms, 1_200_000);
        assert_eq!(i.rate, 1.0);
        assert!(i.covers(i.start_ms) && !i.covers(i.start_ms + 1_200_000));
        let d: Incident = "degradation@2024-05-02T00:00:00Z/2d/0.06".parse().unwrap();
        assert_eq!((d.duration_ms, d.rate), (172_800_000, 0.06));
        for bad in [
            "outage@2024-05-03T10:00:00Z/20m",
            "push-outage@yesterday/20m",
            "push-outage@2024-05-03T10:00:00Z/20x",
            "degradation@2024-05-03T10:00:00Z/1h/2",
        ] {
            assert!(bad.parse::<Incident>().is_err(), "{bad}");
        }
    }
}
