//! The receivers' own formats: one request body (and headers) for a batch of notifications.
//! Rendering only — pure functions of the notifications, the receiver's secret and the clock;
//! sending and retrying are [`crate::deliver`]'s. Secrets enter a request here and nowhere else.

mod alertmanager;
mod generic;
mod ocsf;
mod pagerduty;
mod slack;
mod splunk;

use crate::notification::Notification;
use crate::secret::Secret;

pub use generic::{SIGNATURE_HEADER, sign};

/// A receiver's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::Display, strum::EnumString)]
#[strum(serialize_all = "kebab-case")]
pub enum Format {
    /// Alertmanager API v2 `postableAlerts` (`POST /api/v2/alerts`).
    Alertmanager,
    /// mfascope's versioned JSON (docs/notify.md), HMAC-signed.
    Generic,
    /// Slack incoming webhook (Block Kit).
    Slack,
    /// PagerDuty Events API v2, `dedup_key` per finding and episode.
    Pagerduty,
    /// Splunk HTTP Event Collector (`/services/collector/event`).
    SplunkHec,
    /// OCSF 1.3 Detection Finding (class 2004), findings only.
    Ocsf,
}

/// What a format needs besides the notifications.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// HMAC key (generic), HEC token (splunk-hec) or routing key (pagerduty).
    pub key: Option<Secret>,
    /// Where people find mfascope's view of an alert (`generatorURL`, links).
    pub external_url: Option<String>,
}

/// One HTTP request to a receiver.
#[derive(Debug)]
pub struct Request {
    /// The body (JSON).
    pub body: Vec<u8>,
    /// Headers beyond `Content-Type: application/json`.
    pub headers: Vec<(&'static str, String)>,
}

/// A receiver's format cannot be rendered as configured.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The format needs a secret and none was given.
    #[error("--notify-format {0} needs --notify-key (file:PATH or env:VAR): {1}")]
    MissingKey(Format, &'static str),
}

impl Format {
    /// Whether notifications of this kind go to receivers of this format (OCSF Detection
    /// Findings describe security detections: SLO alerts are not sent there).
    pub fn carries(self, n: &Notification) -> bool {
        !matches!((self, n), (Format::Ocsf, Notification::SloAlert(_)))
    }

    /// Most notifications in one request (the formats that take several).
    pub fn batch(self) -> usize {
        match self {
            Format::Alertmanager | Format::SplunkHec => 100,
            _ => 1,
        }
    }

    /// Check that `ctx` has what this format needs, before anything is queued for it.
    pub fn check(self, ctx: &Context) -> Result<(), RenderError> {
        let need = match self {
            Format::Generic => Some("the HMAC-SHA256 signing key"),
            Format::SplunkHec => Some("the HEC token"),
            Format::Pagerduty => Some("the integration's routing key"),
            _ => None,
        };
        match (need, &ctx.key) {
            (Some(what), None) => Err(RenderError::MissingKey(self, what)),
            _ => Ok(()),
        }
    }

    /// The request for `items` (at most [`Format::batch`]), at `now_ms`.
    pub fn render(
        self,
        items: &[Notification],
        ctx: &Context,
        now_ms: i64,
    ) -> Result<Request, RenderError> {
        self.check(ctx)?;
        let key = || ctx.key.as_ref().expect("checked above");
        Ok(match self {
            Format::Alertmanager => json(&alertmanager::alerts(items, ctx), Vec::new()),
            Format::Generic => generic::request(&items[0], key(), now_ms),
            Format::Slack => json(&slack::message(&items[0], ctx), Vec::new()),
            Format::Pagerduty => json(&pagerduty::event(&items[0], key(), ctx), Vec::new()),
            Format::SplunkHec => splunk::request(items, key()),
            Format::Ocsf => json(&ocsf::detection_finding(&items[0], now_ms), Vec::new()),
        })
    }
}

fn json(v: &serde_json::Value, headers: Vec<(&'static str, String)>) -> Request {
    Request {
        body: serde_json::to_vec(v).expect("JSON values serialize"),
        headers,
    }
}

/// Sigma level → an on-call severity: `critical`/`high` page, `medium`/`low` open a ticket,
/// `informational` is for information.
pub fn finding_severity(level: &str) -> &'static str {
    match level {
        "critical" | "high" => "page",
        "medium" | "low" => "ticket",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{episode, finding};

    #[test]
    fn formats_that_sign_or_route_refuse_to_render_without_their_key() {
        let n = Notification::finding(finding(), None);
        for f in [Format::Generic, Format::SplunkHec, Format::Pagerduty] {
            let e = f.render(std::slice::from_ref(&n), &Context::default(), 0);
            assert!(matches!(e, Err(RenderError::MissingKey(..))), "{f}");
        }
        let ok = Format::Slack.render(&[n], &Context::default(), 0).unwrap();
        assert!(!ok.body.is_empty());
    }

    #[test]
    fn ocsf_carries_findings_only() {
        let alert = Notification::episode(&episode(false), None).remove(0);
        assert!(!Format::Ocsf.carries(&alert));
        assert!(Format::Generic.carries(&alert));
        assert!(Format::Ocsf.carries(&Notification::finding(finding(), None)));
    }

    #[test]
    fn format_names_are_the_flag_values() {
        assert_eq!(Format::SplunkHec.to_string(), "splunk-hec");
        assert_eq!("pagerduty".parse::<Format>().unwrap(), Format::Pagerduty);
    }
}
