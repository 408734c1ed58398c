//! Slack incoming-webhook messages (Block Kit): a header, the summary, the figures as fields,
//! a context line with the idempotency key (Slack keeps no keys; people can match repeats).

use super::{Context, finding_severity};
use crate::notification::{AlertStatus, Notification};
use mfascope_core::time::format_rfc3339;

/// Slack's limit on a header's text.
const HEADER_MAX: usize = 150;
/// … and on a section's text.
const TEXT_MAX: usize = 3000;

pub(super) fn message(n: &Notification, ctx: &Context) -> serde_json::Value {
    let (header, fields): (String, Vec<(&str, String)>) = match n {
        Notification::SloAlert(a) => {
            let lead = match a.status {
                AlertStatus::Firing => format!(":rotating_light: {} {}", a.severity, a.slo_name),
                AlertStatus::Resolved => format!(":white_check_mark: resolved {}", a.slo_name),
            };
            let mut fields = vec![
                ("Condition", format!("{} ({})", a.condition, a.rule)),
                ("Peak burn", format!("{:.1}x", a.peak)),
                ("Firing since", a.firing_at.clone()),
            ];
            if let Some(at) = &a.resolved_at {
                fields.push(("Resolved at", at.clone()));
            }
            if let Some(note) = &a.attack_note {
                fields.push(("Attack", note.clone()));
            }
            if let Some(window) = &a.maintenance {
                fields.push(("Maintenance", window.clone()));
            }
            (lead, fields)
        }
        Notification::Finding { finding: f, .. } => {
            let mut fields = vec![
                ("Rule", format!("{} ({})", f.rule_title, f.rule_id)),
                (
                    "Severity",
                    format!("{} ({})", finding_severity(&f.severity), f.severity),
                ),
                ("Group", f.group_key.clone()),
                ("Events", f.count.to_string()),
                ("First", format_rfc3339(f.first_time)),
                ("Last", format_rfc3339(f.last_time)),
            ];
            if !f.attack.is_empty() {
                fields.push(("ATT&CK", f.attack.join(", ")));
            }
            (format!(":warning: {}", f.rule_title), fields)
        }
    };
    let mut context = format!("mfascope · `{}`", n.key());
    if let Some(url) = n.runbook_url() {
        context.push_str(&format!(" · <{url}|runbook>"));
    }
    if let Some(base) = &ctx.external_url {
        context.push_str(&format!(" · <{base}|mfascope>"));
    }
    serde_json::json!({
        "text": clip(&n.summary(), TEXT_MAX),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(&header, HEADER_MAX), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(&n.summary(), TEXT_MAX)}},
            {"type": "section", "fields": fields.iter().take(10).map(|(k, v)| serde_json::json!({
                "type": "mrkdwn", "text": clip(&format!("*{k}*\n{v}"), 2000)
            })).collect::<Vec<_>>()},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&context, TEXT_MAX)}]},
        ],
    })
}

/// At most `max` characters, an ellipsis marking a cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::finding;

    #[test]
    fn long_titles_are_clipped_to_slacks_limits() {
        let mut f = finding();
        f.rule_title = "x".repeat(400);
        let v = message(&Notification::finding(f, None), &Context::default());
        let header = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), HEADER_MAX);
        assert!(header.ends_with('…'));
    }
}
