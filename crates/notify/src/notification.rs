//! What is delivered: a finding, or one transition (firing, resolved) of an SLO alert episode,
//! in a receiver-neutral form that the outbox stores and every format renders. Each carries an
//! idempotency key that is the same on every run over the same events, so receivers can drop
//! repeats. Never holds a secret: findings and episodes carry canonical fields only.

use serde::{Deserialize, Serialize};

use mfascope_detect::Finding;
use mfascope_slo::Episode;

/// One thing to deliver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    /// A rule fired.
    Finding {
        /// The finding, as stored under `OUT/findings/`.
        finding: Finding,
        /// The rule's runbook, when it names one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runbook_url: Option<String>,
    },
    /// An SLO alert episode started firing or resolved.
    SloAlert(SloAlert),
}

/// Whether an SLO alert fires or resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AlertStatus {
    /// The episode started.
    Firing,
    /// The episode ended.
    Resolved,
}

/// One transition of an SLO alert episode, with the figures people need to act on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloAlert {
    /// The episode's id, the same for both transitions:
    /// `slo/<slo>/<condition>/<firing epoch ms>`.
    pub episode: String,
    /// This transition.
    pub status: AlertStatus,
    /// SLO id.
    pub slo: String,
    /// SLO display name.
    pub slo_name: String,
    /// Alert condition name (`fast-burn-1h`).
    pub condition: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// The rule, e.g. `burn rate >= 14.4 over 1h and 5m`.
    pub rule: String,
    /// The condition's long window (`1h`).
    pub window: String,
    /// When the episode started firing (RFC 3339).
    pub firing_at: String,
    /// Epoch ms of `firing_at`.
    pub firing_ms: i64,
    /// When it resolved (RFC 3339), for `resolved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// Highest burn rate seen while firing, so far.
    pub peak: f64,
    /// The burn is attack traffic rather than an outage.
    pub explained_by_attack: bool,
    /// One line on the attack campaigns overlapping the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack_note: Option<String>,
    /// The SLO's runbook, when its spec names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// The maintenance window it started firing in (`name: reason`), when one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
}

impl Notification {
    /// A finding to deliver.
    pub fn finding(finding: Finding, runbook_url: Option<String>) -> Notification {
        Notification::Finding {
            finding,
            runbook_url,
        }
    }

    /// The transitions of `episode` so far: its start, and its end once it resolved.
    pub fn episode(e: &Episode, runbook_url: Option<&str>) -> Vec<Notification> {
        let episode = format!("slo/{}/{}/{}", e.slo, e.alert, e.firing_ms);
        let alert = |status, resolved_at: Option<String>| {
            Notification::SloAlert(SloAlert {
                episode: episode.clone(),
                status,
                slo: e.slo.clone(),
                slo_name: e.slo_display_name.clone(),
                condition: e.alert.clone(),
                severity: e.severity.clone(),
                rule: e.rule.clone(),
                window: mfascope_slo::prometheus::duration(e.window_ms),
                firing_at: e.firing_at.clone(),
                firing_ms: e.firing_ms,
                resolved_at,
                peak: e.peak,
                explained_by_attack: e.explained_by_attack,
                attack_note: e.attack_note(),
                runbook_url: runbook_url.map(str::to_string),
                maintenance: e
                    .maintenance
                    .as_ref()
                    .map(|m| format!("{}: {}", m.window, m.reason)),
            })
        };
        let mut out = vec![alert(AlertStatus::Firing, None)];
        if let Some(at) = &e.resolved_at {
            out.push(alert(AlertStatus::Resolved, Some(at.clone())));
        }
        out
    }

    /// The idempotency key: `finding/<id>`, or `<episode>/firing|resolved`. The same on every
    /// run over the same events; receivers drop a key they have seen.
    pub fn key(&self) -> String {
        match self {
            Notification::Finding { finding, .. } => format!("finding/{}", finding.id),
            Notification::SloAlert(a) => format!("{}/{}", a.episode, a.status),
        }
    }

    /// One line for people (Slack text, PagerDuty summary, Alertmanager summary).
    pub fn summary(&self) -> String {
        match self {
            Notification::Finding { finding: f, .. } => {
                format!("[{}] {}: {}", f.severity, f.rule_title, f.summary)
            }
            Notification::SloAlert(a) => match a.status {
                AlertStatus::Firing => format!(
                    "{} {}: {} ({}), firing since {}",
                    a.severity, a.slo_name, a.condition, a.rule, a.firing_at
                ),
                AlertStatus::Resolved => format!(
                    "resolved: {} {} (fired {} to {})",
                    a.slo_name,
                    a.condition,
                    a.firing_at,
                    a.resolved_at.as_deref().unwrap_or("?")
                ),
            },
        }
    }

    /// When it happened (epoch ms): the finding's last event, the episode's start or end.
    pub fn time_ms(&self) -> i64 {
        match self {
            Notification::Finding { finding, .. } => finding.last_time,
            Notification::SloAlert(a) => a
                .resolved_at
                .as_deref()
                .and_then(|t| mfascope_core::time::parse_rfc3339(t).ok())
                .unwrap_or(a.firing_ms),
        }
    }

    /// The runbook, when there is one.
    pub fn runbook_url(&self) -> Option<&str> {
        match self {
            Notification::Finding { runbook_url, .. } => runbook_url.as_deref(),
            Notification::SloAlert(a) => a.runbook_url.as_deref(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn finding() -> Finding {
        Finding {
            id: "3f2a9c".into(),
            rule_id: "mfa_push_bombing".into(),
            rule_name: Some("mfa_push_bombing".into()),
            rule_title: "MFA push bombing".into(),
            severity: "high".into(),
            attack: vec!["T1621".into()],
            group_key: "user=alice".into(),
            user: Some("alice".into()),
            src_ip: Some("192.0.2.7".into()),
            first_time: 1_714_654_800_000,
            last_time: 1_714_655_100_000,
            count: 14,
            evidence: vec!["ev-1".into(), "ev-2".into()],
            summary: "14 push challenges for alice in 5m".into(),
        }
    }

    pub(crate) fn episode(resolved: bool) -> Episode {
        Episode {
            slo: "mfa-availability".into(),
            slo_display_name: "MFA availability".into(),
            alert: "fast-burn-1h".into(),
            severity: "page".into(),
            rule: "burn rate >= 14.4 over 1h and 5m".into(),
            firing_at: "2024-05-02T13:07:00Z".into(),
            resolved_at: resolved.then(|| "2024-05-02T14:04:00Z".into()),
            peak: 31.5,
            firing_ms: 1_714_655_220_000,
            resolved_ms: resolved.then_some(1_714_658_640_000),
            window_ms: 3_600_000,
            attacks: Vec::new(),
            attack_attempts: 0,
            explained_by_attack: false,
            maintenance: None,
        }
    }

    #[test]
    fn keys_name_the_finding_or_the_episode_and_its_transition() {
        let n = Notification::episode(&episode(true), None);
        let keys: Vec<String> = n.iter().map(Notification::key).collect();
        assert_eq!(
            keys,
            [
                "slo/mfa-availability/fast-burn-1h/1714655220000/firing",
                "slo/mfa-availability/fast-burn-1h/1714655220000/resolved"
            ]
        );
        assert_eq!(Notification::episode(&episode(false), None).len(), 1);
        assert_eq!(
            Notification::finding(finding(), None).key(),
            "finding/3f2a9c"
        );
        assert_eq!(n[1].time_ms(), 1_714_658_640_000);
        let Notification::SloAlert(a) = &n[1] else {
            panic!("an alert")
        };
        assert_eq!(a.window, "1h");
    }
}
