//! PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`): an episode
//! triggers and resolves one incident through its `dedup_key`; a finding triggers one incident
//! keyed by its id (acknowledged and resolved by people).

use super::{Context, finding_severity};
use crate::notification::{AlertStatus, Notification};
use crate::secret::Secret;
use mfascope_core::time::format_rfc3339;

pub(super) fn event(n: &Notification, routing_key: &Secret, ctx: &Context) -> serde_json::Value {
    let routing_key = routing_key.expose_str();
    let (dedup_key, action, severity, class, group, details) = match n {
        Notification::SloAlert(a) => (
            a.episode.clone(),
            match a.status {
                AlertStatus::Firing => "trigger",
                AlertStatus::Resolved => "resolve",
            },
            if a.severity == "page" {
                "critical"
            } else {
                "warning"
            },
            "slo_burn",
            a.slo.clone(),
            serde_json::json!({
                "slo": a.slo, "condition": a.condition, "rule": a.rule,
                "peak_burn_rate": a.peak, "firing_at": a.firing_at,
                "attack": a.attack_note, "maintenance": a.maintenance,
            }),
        ),
        Notification::Finding { finding: f, .. } => (
            format!("finding/{}", f.id),
            "trigger",
            match finding_severity(&f.severity) {
                "page" => "critical",
                "ticket" => "warning",
                _ => "info",
            },
            "detection",
            f.rule_id.clone(),
            serde_json::json!({
                "rule": f.rule_title, "level": f.severity, "group": f.group_key,
                "user": f.user, "src_ip": f.src_ip, "events": f.count,
                "first": format_rfc3339(f.first_time), "last": format_rfc3339(f.last_time),
                "attack": f.attack, "finding_id": f.id,
            }),
        ),
    };
    if action == "resolve" {
        return serde_json::json!({
            "routing_key": routing_key, "event_action": action, "dedup_key": dedup_key,
        });
    }
    let mut links = Vec::new();
    if let Some(url) = n.runbook_url() {
        links.push(serde_json::json!({"href": url, "text": "Runbook"}));
    }
    if let Some(base) = &ctx.external_url {
        links.push(serde_json::json!({"href": base, "text": "mfascope"}));
    }
    let summary: String = n.summary().chars().take(1024).collect();
    serde_json::json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "client": "mfascope",
        "payload": {
            "summary": summary,
            "source": "mfascope",
            "severity": severity,
            "timestamp": format_rfc3339(n.time_ms()),
            "component": "2fa",
            "group": group,
            "class": class,
            "custom_details": details,
        },
        "links": links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::episode;

    #[test]
    fn an_episode_triggers_and_resolves_one_dedup_key() {
        let key = Secret::new("R0UTING");
        let n = Notification::episode(&episode(true), None);
        let (t, r) = (
            event(&n[0], &key, &Context::default()),
            event(&n[1], &key, &Context::default()),
        );
        assert_eq!(
            (t["event_action"].as_str(), r["event_action"].as_str()),
            (Some("trigger"), Some("resolve"))
        );
        assert_eq!(t["dedup_key"], r["dedup_key"]);
        assert_eq!(t["payload"]["severity"], "critical");
        assert!(r.get("payload").is_none());
    }
}
