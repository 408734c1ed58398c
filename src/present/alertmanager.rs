//! Alertmanager payloads: SLO alert episodes as the webhook (version 4) body Alertmanager
//! sends its receivers, and findings as the `postableAlerts` its v2 API accepts. Rendering
//! only; sending is the delivery's business.

use crate::detect::Finding;
use crate::slo::Episode;
use mfascope_core::time::format_rfc3339;

/// Alertmanager webhook (version 4) payload for `episodes`.
pub fn slo_episodes(episodes: &[Episode], receiver: &str) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = episodes
        .iter()
        .map(|e| {
            let mut labels = serde_json::json!({
                "alertname": crate::slo::prometheus::alertname(&e.alert),
                "slo": e.slo,
                "severity": e.severity,
                "service": "2fa",
            });
            let mut annotations = serde_json::json!({
                "summary": format!("{}: {}", e.slo_display_name, e.rule),
                "description": format!("peak {:.2}", e.peak),
            });
            if e.explained_by_attack {
                // Routable: send attack-driven burns to security rather than paging on-call.
                labels["cause"] = "attack".into();
            }
            if let Some(note) = e.attack_note() {
                annotations["attack"] = note.into();
            }
            serde_json::json!({
                "status": if e.resolved_ms.is_some() { "resolved" } else { "firing" },
                "labels": labels,
                "annotations": annotations,
                "startsAt": e.firing_at,
                "endsAt": e.resolved_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "generatorURL": "",
                "fingerprint": format!("{:016x}", xxhash_rust::xxh3::xxh3_64(
                    format!("{}/{}/{}", e.slo, e.alert, e.firing_ms).as_bytes())),
            })
        })
        .collect();
    let firing = episodes.iter().any(|e| e.resolved_ms.is_none());
    serde_json::json!({
        "version": "4",
        "groupKey": "{}:{service=\"2fa\"}",
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": receiver,
        "groupLabels": {"service": "2fa"},
        "commonLabels": {"service": "2fa"},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    })
}

/// Findings as Alertmanager v2 `postableAlerts` (one alert per finding).
pub fn findings(findings: &[Finding]) -> serde_json::Value {
    findings
        .iter()
        .map(|f| {
            let mut labels = serde_json::json!({
                "alertname": f.rule_title,
                "rule_id": f.rule_id,
                "severity": f.severity,
                "finding_id": f.id,
                "source": "mfascope",
            });
            for (k, v) in [("user", &f.user), ("src_ip", &f.src_ip)] {
                if let Some(v) = v {
                    labels[k] = v.clone().into();
                }
            }
            if let Some(t) = f.attack.first() {
                labels["attack"] = t.clone().into();
            }
            serde_json::json!({
                "labels": labels,
                "annotations": {
                    "summary": f.summary,
                    "evidence": f.evidence.join(","),
                    "attack": f.attack.join(","),
                },
                "startsAt": format_rfc3339(f.first_time),
            })
        })
        .collect()
}
