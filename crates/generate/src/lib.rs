//! Deterministic synthetic 2FA traffic: a population of users logging in over days with a
//! diurnal load curve, a realistic factor mix and latency distributions, failures, enrolments,
//! recoveries, revocations and rate limiting — plus labelled attack scenarios. Events are
//! simulated canonically ([`simulate`]) and rendered in any vendor format ([`render`]).

mod incident;
mod simulate;
pub mod tickets;

use std::io::Write;

use serde::Serialize;

use mfascope_core::event::Event;
use mfascope_normalize::{LogFormat, vendor};

pub use incident::{Incident, IncidentKind};
pub use simulate::{Simulation, UserLabel, simulate};
pub use tickets::{TicketLabel, TicketSystem};

/// Output formats of `mfascope generate`.
pub use mfascope_normalize::LogFormat as GenFormat;

/// Generator settings.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Records to produce.
    pub events: usize,
    /// Random seed (same seed, same output).
    pub seed: u64,
    /// Inject labelled attack scenarios.
    pub attacks: bool,
    /// First event time (epoch ms).
    pub start_ms: i64,
    /// Span covered, in days.
    pub days: f64,
    /// Operational incidents to inject.
    pub incidents: Vec<Incident>,
    /// Add one synthetic probe check per minute (source `probe`; canonical format only).
    pub probes: bool,
    /// Also write the support tickets the traffic causes, as this system's export.
    pub tickets: Option<TicketSystem>,
    /// Share of users who sign in with a password only (an app policy asks them for no second
    /// factor); 0 keeps every user on 2FA.
    pub no_mfa_share: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            events: 10_000,
            seed: 1,
            attacks: false,
            start_ms: 1_714_521_600_000, // 2024-05-01T00:00:00Z
            days: 1.0,
            incidents: Vec::new(),
            probes: false,
            tickets: None,
            no_mfa_share: 0.0,
        }
    }
}

/// Ground truth for one injected attack.
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    /// Scenario name (push_fatigue, recovery_abuse, …).
    pub scenario: &'static str,
    /// MITRE ATT&CK technique.
    pub attack: &'static str,
    /// Targeted user.
    pub user: String,
    /// Attacker IP, when the scenario has one.
    pub src_ip: Option<String>,
    /// First event time (RFC 3339).
    pub start: String,
    /// Last event time (RFC 3339).
    pub end: String,
    /// Event ids of the scenario's events.
    pub event_ids: Vec<String>,
}

/// A label as written: with the vendor's [`vendor::Limit`] when its log cannot express the
/// scenario (scripts/detect-eval then reports it as not expressible rather than missed).
#[derive(Serialize)]
struct LabelLine<'a> {
    #[serde(flatten)]
    label: &'a Label,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'static vendor::Limit>,
}

/// Where `generate` writes support tickets: the export and its labels (JSON lines).
pub struct TicketOutput<'a> {
    /// The export (`opts.tickets` says which system's).
    pub export: &'a mut dyn Write,
    /// One [`TicketLabel`] per ticket.
    pub labels: &'a mut dyn Write,
}

/// Simulate `opts.events` events, write those the vendor logs in `format` to `out` (one record
/// each), the attack labels to `labels`, one [`UserLabel`] per user to `users`, and with
/// `opts.tickets` the tickets they cause to `tickets`; returns the records written.
pub fn generate(
    format: GenFormat,
    opts: &GenerateOptions,
    out: &mut dyn Write,
    labels: &mut dyn Write,
    users: Option<&mut dyn Write>,
    tickets: Option<TicketOutput<'_>>,
) -> std::io::Result<usize> {
    let sim = simulate(opts);
    if let (Some(system), Some(t)) = (opts.tickets, tickets) {
        let span = (
            opts.start_ms,
            opts.start_ms + (opts.days * 86_400_000.0) as i64,
        );
        let made = tickets::tickets(&sim.events, &sim.labels, opts.seed, span);
        let rows: Vec<_> = made.iter().map(|(t, _)| t.clone()).collect();
        t.export
            .write_all(tickets::render_tickets(system, &rows).as_bytes())?;
        for (_, label) in made {
            let label = TicketLabel {
                id: tickets::exported_id(system, &label.id),
                ..label
            };
            serde_json::to_writer(&mut *t.labels, &label)?;
            t.labels.write_all(b"\n")?;
        }
    }
    let mut line = String::with_capacity(4096);
    let mut written = 0;
    for e in &sim.events {
        line.clear();
        if !render(format, e, &mut line) {
            continue;
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        written += 1;
    }
    let limits = vendor::of_format(format).map_or(&[][..], |v| v.limits);
    for label in &sim.labels {
        let limit = limits.iter().find(|l| l.scenario == label.scenario);
        serde_json::to_writer(&mut *labels, &LabelLine { label, limit })?;
        labels.write_all(b"\n")?;
    }
    if let Some(users) = users {
        for u in &sim.users {
            serde_json::to_writer(&mut *users, u)?;
            users.write_all(b"\n")?;
        }
    }
    Ok(written)
}

/// Append `e` rendered as one `format` record (no trailing newline) to `out`, with the vendor's
/// own renderer (canonical NDJSON for `Auto`); false, with nothing appended, when the vendor
/// does not log such a step (Duo and Keycloak never log a challenge on its own).
pub fn render(format: LogFormat, e: &Event<'_>, out: &mut String) -> bool {
    let vendor = vendor::of_format(format)
        .or_else(|| vendor::of_format(LogFormat::Canonical))
        .expect("canonical is registered");
    (vendor.render)(e, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor limit that names no scenario the generator injects would never be reported.
    #[test]
    fn every_vendor_limit_names_a_generated_scenario() {
        let opts = GenerateOptions {
            events: 20_000,
            attacks: true,
            ..GenerateOptions::default()
        };
        let scenarios: std::collections::BTreeSet<&str> =
            simulate(&opts).labels.iter().map(|l| l.scenario).collect();
        for v in vendor::VENDORS {
            for limit in v.limits {
                assert!(
                    scenarios.contains(limit.scenario),
                    "{:?}: limit for unknown scenario {}",
                    v.format,
                    limit.scenario
                );
            }
        }
    }
}
