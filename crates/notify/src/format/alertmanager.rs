//! Alertmanager API v2 `postableAlerts`. Labels identify an alert and route it, so they hold
//! no per-event values (users, IPs, counts go in annotations): an SLO alert is one alert per
//! SLO and condition, a rule's findings one alert per rule and technique. Firing alerts carry
//! no `endsAt` (Alertmanager keeps them for its `resolve_timeout` and the refresh re-sends
//! them); a resolution carries its `endsAt`.

use super::{Context, finding_severity};
use crate::notification::{AlertStatus, Notification};
use mfascope_core::time::format_rfc3339;

pub(super) fn alerts(items: &[Notification], ctx: &Context) -> serde_json::Value {
    items.iter().map(|n| alert(n, ctx)).collect()
}

fn alert(n: &Notification, ctx: &Context) -> serde_json::Value {
    let mut v = match n {
        Notification::SloAlert(a) => {
            let mut labels = serde_json::json!({
                "alertname": mfascope_slo::prometheus::alertname(&a.condition),
                "slo": a.slo,
                "severity": a.severity,
                "window": a.window,
                "service": "2fa",
                "source": "mfascope",
            });
            if a.explained_by_attack {
                // Routable: attack-driven burns go to security rather than to on-call.
                labels["cause"] = "attack".into();
            }
            let mut annotations = serde_json::json!({
                "summary": format!("{}: {} ({})", a.slo_name, a.condition, a.rule),
                "description": format!(
                    "{} burned its error budget at up to {:.1}x the sustainable rate ({}), from {}{}.",
                    a.slo_name,
                    a.peak,
                    a.rule,
                    a.firing_at,
                    a.resolved_at.as_deref().map(|t| format!(" to {t}")).unwrap_or_default()
                ),
            });
            if let Some(note) = &a.attack_note {
                annotations["attack"] = note.clone().into();
            }
            if let Some(window) = &a.maintenance {
                annotations["maintenance"] = window.clone().into();
            }
            let mut v = serde_json::json!({
                "labels": labels,
                "annotations": annotations,
                "startsAt": a.firing_at,
            });
            if a.status == AlertStatus::Resolved {
                v["endsAt"] = a.resolved_at.clone().into();
            }
            if let Some(base) = &ctx.external_url {
                v["generatorURL"] =
                    format!("{}/alerts?slo={}", base.trim_end_matches('/'), a.slo).into();
            }
            v
        }
        Notification::Finding { finding: f, .. } => {
            let mut labels = serde_json::json!({
                "alertname": f.rule_title,
                "rule": f.rule_id,
                "severity": finding_severity(&f.severity),
                "level": f.severity,
                "source": "mfascope",
            });
            if let Some(t) = f.attack.first() {
                labels["technique"] = t.clone().into();
            }
            let who = [("user", &f.user), ("src_ip", &f.src_ip)]
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!(" {k}={v}")))
                .collect::<String>();
            let mut v = serde_json::json!({
                "labels": labels,
                "annotations": {
                    "summary": f.summary,
                    "description": format!(
                        "{} ({}){who}: {} event(s) from {} to {}; finding {}, evidence {}.",
                        f.rule_title, f.severity, f.count,
                        format_rfc3339(f.first_time), format_rfc3339(f.last_time),
                        f.id, f.evidence.join(",")
                    ),
                    "attack": f.attack.join(","),
                    "finding_id": f.id,
                },
                "startsAt": format_rfc3339(f.first_time),
            });
            if let Some(base) = &ctx.external_url {
                v["generatorURL"] =
                    format!("{}/findings?id={}", base.trim_end_matches('/'), f.id).into();
            }
            v
        }
    };
    if let Some(url) = n.runbook_url() {
        v["annotations"]["runbook_url"] = url.into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{episode, finding};

    #[test]
    fn labels_route_and_never_carry_per_event_values() {
        let mut items = Notification::episode(&episode(true), Some("https://runbooks/mfa"));
        items.push(Notification::finding(finding(), None));
        let v = alerts(&items, &Context::default());
        assert_eq!(v[0]["labels"]["alertname"], "SLOBurn_fast_burn_1h");
        assert_eq!(v[0]["labels"]["window"], "1h");
        assert!(v[0].get("endsAt").is_none());
        assert_eq!(v[1]["endsAt"], "2024-05-02T14:04:00Z");
        assert_eq!(v[1]["annotations"]["runbook_url"], "https://runbooks/mfa");
        let f = &v[2]["labels"];
        assert_eq!(
            (f["severity"].as_str(), f["technique"].as_str()),
            (Some("page"), Some("T1621"))
        );
        for per_event in ["user", "src_ip", "finding_id"] {
            assert!(f.get(per_event).is_none(), "{per_event} is a label");
        }
        assert!(
            v[2]["annotations"]["description"]
                .as_str()
                .unwrap()
                .contains("user=alice")
        );
    }
}
