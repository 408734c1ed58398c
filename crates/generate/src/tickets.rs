//! Support tickets that follow the simulated traffic (`mfascope generate --tickets SYSTEM`):
//! a steady stream of ordinary IT tickets, plus MFA tickets that users open some minutes to
//! hours after their second factor failed them (so incidents bring a wave of them), after
//! account recovery, and from requesters the IdP does not know. Each ticket is labelled with
//! whether it is MFA-related and why it was opened; rendered as a Zendesk, Jira, ServiceNow or
//! CSV export.

use std::collections::HashSet;
use std::fmt::Write;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;
use serde_json::json;

use mfascope_core::event::{Action, Event, Outcome};
use mfascope_core::ticket::Ticket;
use mfascope_core::time::format_rfc3339;

use super::Label;

/// Ticketing systems `--tickets` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TicketSystem {
    /// Zendesk Incremental Ticket Export JSON (with the `users` sideload).
    Zendesk,
    /// Jira Service Management search JSON.
    Jira,
    /// ServiceNow Table API JSON (incident).
    Servicenow,
    /// CSV with a header row.
    Csv,
}

impl TicketSystem {
    /// File extension of the export.
    pub fn extension(self) -> &'static str {
        match self {
            TicketSystem::Csv => "csv",
            _ => "json",
        }
    }
}

/// Ground truth for one generated ticket.
#[derive(Clone, Debug, Serialize)]
pub struct TicketLabel {
    /// The ticket's id in the export.
    pub id: String,
    /// Whether the ticket is about MFA.
    pub mfa: bool,
    /// `baseline`, `mfa_failure`, `recovery` or `unknown_requester`.
    pub cause: &'static str,
    /// The requester, as exported.
    pub requester: String,
    /// Creation time (RFC 3339).
    pub created: String,
}

const OTHER_SUBJECTS: &[&str] = &[
    "VPN keeps disconnecting",
    "Printer on floor 3 is jammed",
    "Request access to the finance share",
    "Laptop battery drains fast",
    "Email signature update",
    "Monitor flickers",
    "New starter equipment",
    "Password expired",
];
/// Subjects of MFA tickets: each contains a shipped keyword.
const MFA_SUBJECTS: &[&str] = &[
    "Push notification never arrives",
    "Lost phone, cannot sign in",
    "Authenticator app shows wrong codes",
    "Locked out after too many attempts",
    "SMS code not received",
    "Need to register a new phone",
    "Security key not recognised",
    "Okta Verify keeps timing out",
];

/// Tickets following `events` (time-ordered), for users named in them; attack traffic (the
/// labels' events) opens none.
pub fn tickets(
    events: &[Event<'_>],
    attacks: &[Label],
    seed: u64,
    span: (i64, i64),
) -> Vec<(Ticket, TicketLabel)> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x7469_636b_6574);
    let attack_ids: HashSet<&str> = attacks
        .iter()
        .flat_map(|l| l.event_ids.iter().map(String::as_str))
        .collect();
    let users: Vec<&str> = {
        let mut u: Vec<&str> = events.iter().map(|e| e.user.as_ref()).collect();
        u.sort_unstable();
        u.dedup();
        u
    };
    let mut out: Vec<(i64, &'static str, String, &'static str, bool)> = Vec::new();
    for e in events {
        if attack_ids.contains(e.event_id.as_ref()) || e.user.is_empty() {
            continue;
        }
        let failed = e.action == Action::MfaVerify && e.outcome != Outcome::Success;
        let p = match (failed, e.action) {
            (true, _) => 0.15,
            (false, Action::RecoveryComplete | Action::Lockout) => 0.3,
            _ => continue,
        };
        if rng.random_bool(p) {
            let delay = rng.random_range(5..240) * 60_000;
            let subject = MFA_SUBJECTS[rng.random_range(0..MFA_SUBJECTS.len())];
            let cause = if failed { "mfa_failure" } else { "recovery" };
            out.push((e.time + delay, subject, e.user.to_string(), cause, true));
        }
    }
    let (start, end) = span;
    let days = ((end - start) as f64 / 86_400_000.0).max(1.0 / 24.0);
    let baseline = ((users.len() as f64 * days * 0.02).ceil() as usize).max(1);
    for _ in 0..baseline {
        let t = rng.random_range(start..end.max(start + 1));
        let subject = OTHER_SUBJECTS[rng.random_range(0..OTHER_SUBJECTS.len())];
        let user = users
            .get(rng.random_range(0..users.len().max(1)))
            .copied()
            .unwrap_or("it@acme.example");
        out.push((t, subject, user.to_string(), "baseline", false));
    }
    // Contractors and partners the IdP does not log: MFA tickets no event user matches.
    for i in 0..(baseline / 40).max(1) {
        let t = rng.random_range(start..end.max(start + 1));
        let subject = MFA_SUBJECTS[rng.random_range(0..MFA_SUBJECTS.len())];
        out.push((
            t,
            subject,
            format!("contractor{i:03}@partner.example"),
            "unknown_requester",
            true,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
    out.into_iter()
        .enumerate()
        .map(|(i, (created, subject, requester, cause, mfa))| {
            // Half the MFA tickets are also tagged by the agent who triaged them.
            let tagged = mfa && i % 2 == 0;
            let id = (10_000 + i).to_string();
            let ticket = Ticket {
                id: id.clone(),
                created,
                updated: Some(created + 3_600_000),
                system: "generated",
                requester: Some(requester.clone()),
                subject: Some(subject.to_string()),
                status: Some(if i % 3 == 0 { "open" } else { "solved" }.to_string()),
                category: Some(if mfa { "access" } else { "hardware" }.to_string()),
                tags: if tagged {
                    vec!["mfa".into()]
                } else {
                    vec!["it".into()]
                },
                match_reason: None,
            };
            let label = TicketLabel {
                id,
                mfa,
                cause,
                requester,
                created: format_rfc3339(created),
            };
            (ticket, label)
        })
        .collect()
}

/// The tickets as one export of `system`.
pub fn render_tickets(system: TicketSystem, tickets: &[Ticket]) -> String {
    let iso = |ms: i64| format_rfc3339(ms).replace(".000Z", "Z");
    match system {
        TicketSystem::Zendesk => {
            let mut emails: Vec<&str> = tickets
                .iter()
                .filter_map(|t| t.requester.as_deref())
                .collect();
            emails.sort_unstable();
            emails.dedup();
            let user_id = |email: &str| 900_000 + emails.binary_search(&email).unwrap_or(0) as u64;
            let rows: Vec<_> = tickets
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id.parse::<u64>().unwrap_or(0),
                        "created_at": iso(t.created),
                        "updated_at": t.updated.map(iso),
                        "type": "incident",
                        "subject": t.subject,
                        "status": t.status,
                        "requester_id": t.requester.as_deref().map(user_id),
                        "tags": t.tags,
                    })
                })
                .collect();
            let users: Vec<_> = emails
                .iter()
                .map(|e| json!({"id": user_id(e), "email": e}))
                .collect();
            serde_json::to_string_pretty(&json!({
                "tickets": rows, "users": users, "count": tickets.len(),
                "end_of_stream": true, "next_page": null,
            }))
            .expect("serializable")
        }
        TicketSystem::Jira => {
            let jira_time = |ms: i64| format_rfc3339(ms).replace('Z', "+0000");
            let issues: Vec<_> = tickets
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id, "key": format!("ITSM-{}", t.id),
                        "fields": {
                            "summary": t.subject, "created": jira_time(t.created),
                            "updated": t.updated.map(jira_time),
                            "status": {"name": t.status}, "labels": t.tags,
                            "issuetype": {"name": "Service Request"},
                            "reporter": {"accountId": format!("acc-{}", t.id), "emailAddress": t.requester},
                        }
                    })
                })
                .collect();
            serde_json::to_string_pretty(&json!({
                "startAt": 0, "maxResults": tickets.len(), "total": tickets.len(), "issues": issues,
            }))
            .expect("serializable")
        }
        TicketSystem::Servicenow => {
            let sn_time = |ms: i64| format_rfc3339(ms)[..19].replace('T', " ");
            let result: Vec<_> = tickets
                .iter()
                .map(|t| {
                    json!({
                        "sys_id": format!("{:032x}", xxhash_rust::xxh3::xxh3_128(t.id.as_bytes())),
                        "number": format!("INC{:07}", t.id.parse::<u64>().unwrap_or(0)),
                        "short_description": t.subject,
                        "sys_created_on": sn_time(t.created),
                        "sys_updated_on": t.updated.map(sn_time),
                        "state": t.status, "category": t.category,
                        "sys_tags": t.tags.join(","),
                        "caller_id.email": t.requester,
                    })
                })
                .collect();
            serde_json::to_string_pretty(&json!({ "result": result })).expect("serializable")
        }
        TicketSystem::Csv => {
            let mut w = ::csv::Writer::from_writer(Vec::new());
            w.write_record([
                "Ticket ID",
                "Created",
                "Updated",
                "Requester",
                "Subject",
                "Status",
                "Category",
                "Tags",
            ])
            .expect("in memory");
            for t in tickets {
                w.write_record([
                    t.id.as_str(),
                    &format_rfc3339(t.created),
                    &t.updated.map(format_rfc3339).unwrap_or_default(),
                    t.requester.as_deref().unwrap_or(""),
                    t.subject.as_deref().unwrap_or(""),
                    t.status.as_deref().unwrap_or(""),
                    t.category.as_deref().unwrap_or(""),
                    &t.tags.join(","),
                ])
                .expect("in memory");
            }
            String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
        }
    }
}

/// The export id a ticket gets in `system` (labels name tickets as the export does).
pub fn exported_id(system: TicketSystem, id: &str) -> String {
    let mut s = String::new();
    match system {
        TicketSystem::Jira => {
            let _ = write!(s, "ITSM-{id}");
        }
        TicketSystem::Servicenow => {
            let _ = write!(s, "INC{:07}", id.parse::<u64>().unwrap_or(0));
        }
        _ => s.push_str(id),
    }
    s
}
