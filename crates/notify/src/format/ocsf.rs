//! OCSF 1.3 Detection Finding (class 2004, category Findings): a finding as a security data
//! lake or SIEM with an OCSF schema takes it. Sigma level → `severity_id`; ATT&CK techniques →
//! `finding_info.attacks`; the user and the contributing event ids → `evidences`.

use crate::notification::Notification;

/// OCSF schema version the events follow.
const OCSF_VERSION: &str = "1.3.0";
const CLASS_UID: u32 = 2004;
/// Activity `Create`: a new finding.
const ACTIVITY_CREATE: u32 = 1;

pub(super) fn detection_finding(n: &Notification, now_ms: i64) -> serde_json::Value {
    let Notification::Finding {
        finding: f,
        runbook_url,
    } = n
    else {
        unreachable!("Format::carries keeps SLO alerts from OCSF receivers")
    };
    let severity_id = match f.severity.as_str() {
        "informational" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        "critical" => 5,
        _ => 0,
    };
    let attacks: Vec<serde_json::Value> = f
        .attack
        .iter()
        .map(|t| {
            serde_json::json!({
                "technique": {"uid": t, "name": t,
                    "src_url": format!("https://attack.mitre.org/techniques/{}/", t.replace('.', "/"))},
                "version": "15",
            })
        })
        .collect();
    let mut evidence =
        serde_json::json!({"group": f.group_key, "event_ids": f.evidence, "events": f.count});
    if let Some(ip) = &f.src_ip {
        evidence["src_ip"] = ip.clone().into();
    }
    let mut v = serde_json::json!({
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": f.severity,
        "status_id": 1,
        "status": "New",
        "time": f.last_time,
        "start_time": f.first_time,
        "end_time": f.last_time,
        "count": f.count,
        "message": f.summary,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f.id,
            "logged_time": now_ms,
            "product": {"name": "mfascope", "vendor_name": "mfascope", "version": env!("CARGO_PKG_VERSION")},
        },
        "finding_info": {
            "uid": f.id,
            "title": f.rule_title,
            "desc": f.summary,
            "first_seen_time": f.first_time,
            "last_seen_time": f.last_time,
            "types": ["2FA/MFA"],
            "analytic": {"uid": f.rule_id, "name": f.rule_name.as_deref().unwrap_or(&f.rule_title),
                "type_id": 1, "type": "Rule", "category": "Sigma"},
            "attacks": attacks,
        },
        "evidences": [{"data": evidence}],
    });
    if let Some(user) = &f.user {
        v["evidences"][0]["data"]["user"] = user.clone().into();
    }
    if let Some(url) = runbook_url {
        v["finding_info"]["src_url"] = url.clone().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::finding;

    #[test]
    fn a_high_finding_is_a_detection_finding_create_of_severity_high() {
        let v = detection_finding(&Notification::finding(finding(), None), 0);
        assert_eq!(
            (v["class_uid"].as_u64(), v["type_uid"].as_u64()),
            (Some(2004), Some(200_401))
        );
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["finding_info"]["attacks"][0]["technique"]["uid"], "T1621");
    }
}
