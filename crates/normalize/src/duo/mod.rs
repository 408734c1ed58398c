//! Duo Admin API authentication log v2 (`/admin/v2/logs/authentication`), one record per line or
//! inside the `response.authlogs[]` envelope. `result` (success/denied/fraud/error) refined by
//! `reason` (user_approved, user_mistake, user_marked_fraud, no_response, anomalous_push,
//! bypass_user, invalid_passcode, locked_out, frequent_attempts, …); `factor` names the method.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::{Ctx, Scalar, nonempty};
use super::{LogFormat, MapResult, event, ignored, parse};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_core::time::{from_epoch_seconds, parse_rfc3339};

use crate::detect::Markers;
use crate::vendor::{Limit, Logsource, Vendor};
mod render;

/// The Duo Admin API authentication log v2 in the vendor registry.
pub(crate) static VENDOR: Vendor = Vendor {
    format: LogFormat::Duo,
    source: Source::Duo,
    title: "Duo Admin API authentication log v2",
    map,
    detect,
    render,
    logsources: &[Logsource {
        product: "cisco",
        service: "duo",
    }],
    logsource_of: crate::vendor::first_logsource,
    sample: "duo-authlogs-api.json.gz",
    limits: &[
        Limit {
            scenario: "mfa_disabled_by_admin",
            reason: "an administrator putting a user in bypass status is in the Administrator log (`user_update`), not in the authentication log mfascope reads; the authentication log only shows the later `bypass_user` logins",
            doc: "https://duo.com/docs/adminapi#administrator-logs",
        },
        Limit {
            scenario: "otp_replay",
            reason: "a reused passcode is logged with reason `invalid_passcode`, like any wrong code; the documented reasons have none for reuse",
            doc: "https://duo.com/docs/adminapi#authentication-logs",
        },
        Limit {
            scenario: "recovery_abuse",
            reason: "Duo holds no password and runs no account recovery; the authentication log records authentications and enrollments only",
            doc: "https://duo.com/docs/adminapi#authentication-logs",
        },
        Limit {
            scenario: "rogue_device_registration",
            reason: "the rule needs the account recovery that precedes the device, which Duo does not log (see recovery_abuse)",
            doc: "https://duo.com/docs/adminapi#authentication-logs",
        },
    ],
};

fn detect(m: &Markers<'_>) -> bool {
    m.has("txid") || (m.has("access_device") && m.has("factor"))
}

/// Duo writes one record per completed authentication, never one for the challenge.
fn render(e: &Event<'_>, out: &mut String) -> bool {
    // Duo logs no challenge, and a user's fraud report is the push result itself.
    !matches!(e.action, Action::MfaChallenge | Action::RiskSignal)
        && crate::vendor::push_json(out, &render::render(e))
}

super::record_type!(RawRecord => Raw);

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    txid: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    isotimestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    factor: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    result: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<User<'a>>,
    #[serde(borrow, default)]
    application: Option<Named<'a>>,
    #[serde(borrow, default)]
    access_device: Option<AccessDevice<'a>>,
    #[serde(borrow, default)]
    auth_device: Option<AuthDevice<'a>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    groups: Option<Vec<Cow<'a, str>>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AccessDevice<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    browser: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    browser_version: Option<Scalar<'a>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    os: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    location: Option<DuoLocation<'a>>,
}

#[derive(Deserialize)]
struct AuthDevice<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    key: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DuoLocation<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    city: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    state: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    country: Option<Cow<'a, str>>,
}

fn factor_for(f: &str) -> Factor {
    match f {
        "duo_push" | "verified_duo_push" | "duo_mobile_push" => Factor::Push,
        "phone_call" => Factor::Voice,
        "sms_passcode" | "sms_refresh" | "sms_passcode_login" => Factor::Sms,
        "duo_mobile_passcode" | "duo_mobile_passcode_totp" | "duo_mobile_passcode_hotp" => {
            Factor::Totp
        }
        "passcode" | "hardware_token" | "yubikey_code" | "digipass_go_7_token" => {
            Factor::HardwareOtp
        }
        "bypass_code" => Factor::BypassCode,
        "webauthn_credential" | "webauthn_security_key" | "webauthn_chrome_touchid" | "passkey" => {
            Factor::Webauthn
        }
        "u2f_token" => Factor::U2f,
        "remembered_device" | "trusted_network" | "trusted_mobile_authenticator" => Factor::None,
        "email_passcode" => Factor::Email,
        _ => Factor::Unknown,
    }
}

/// Map one Duo authentication log entry.
pub(super) fn map<'a>(raw: &[u8], ctx: &'a mut Ctx) -> MapResult<'a> {
    let super::fields::Ctx { json, geo, .. } = ctx;
    let r = parse::<RawRecord>(LogFormat::Duo, raw, json)?;
    let time = match (&r.isotimestamp, r.timestamp) {
        (Some(iso), _) => parse_rfc3339(iso).map_err(|e| format!("duo: isotimestamp: {e}"))?,
        (None, Some(ts)) => from_epoch_seconds(ts).map_err(|e| format!("duo: timestamp: {e}"))?,
        (None, None) => return Err("duo: isotimestamp: missing (and no timestamp)".into()),
    };
    let event_type = r.event_type.as_deref().unwrap_or("authentication");
    let result = r.result.as_deref().unwrap_or("").to_ascii_lowercase();
    let reason = r.reason.as_deref().unwrap_or("").to_ascii_lowercase();
    let mut factor = r
        .factor
        .as_deref()
        .map(factor_for)
        .unwrap_or(Factor::Unknown);

    use Action::*;
    let (action, outcome, norm_reason): (Action, Outcome, Option<&'static str>) = match event_type {
        "enrollment" => (
            EnrollComplete,
            if result == "success" {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            None,
        ),
        "authentication" => match (result.as_str(), reason.as_str()) {
            (_, "bypass_user") => {
                factor = Factor::BypassCode;
                (Bypass, Outcome::Success, Some("bypass_user"))
            }
            (_, "locked_out") => (Lockout, Outcome::Failure, Some("locked_out")),
            (_, "frequent_attempts") => (RateLimited, Outcome::Failure, Some("rate_limited")),
            (_, "user_marked_fraud") | ("fraud", _) => {
                (MfaVerify, Outcome::Denied, Some("fraud_reported"))
            }
            (_, "no_response" | "queued_inflight_auth_expired") => {
                (MfaVerify, Outcome::Timeout, Some("no_response"))
            }
            (_, "user_mistake" | "user_cancelled") => {
                (MfaVerify, Outcome::Denied, Some("user_denied"))
            }
            (_, "anomalous_push") => (MfaVerify, Outcome::Denied, Some("anomalous_push")),
            (_, "invalid_passcode" | "verification_code_incorrect") => {
                (MfaVerify, Outcome::Failure, Some("invalid_code"))
            }
            (_, "deny_unenrolled_user") => (MfaVerify, Outcome::Denied, Some("not_enrolled")),
            (_, "allow_unenrolled_user") => (MfaVerify, Outcome::Success, Some("not_enrolled")),
            ("success", "remembered_device" | "trusted_network" | "trusted_location") => {
                factor = Factor::None;
                (SessionStart, Outcome::Success, Some("remembered"))
            }
            ("success", _) => (MfaVerify, Outcome::Success, None),
            (
                "denied",
                "location_restricted"
                | "platform_restricted"
                | "software_restricted"
                | "out_of_date"
                | "user_disabled"
                | "invalid_device"
                | "endpoint_is_not_trusted",
            ) => (MfaVerify, Outcome::Denied, Some("blocked_by_policy")),
            ("denied", _) => (MfaVerify, Outcome::Denied, None),
            ("error", _) => (MfaVerify, Outcome::Error, None),
            _ => (MfaVerify, Outcome::Unknown, None),
        },
        other => return ignored(LogFormat::Duo, other),
    };

    let user = r
        .user
        .as_ref()
        .and_then(|u| nonempty(u.name.clone()))
        .ok_or("duo: user.name: missing")?;
    let privileged = r
        .user
        .as_ref()
        .and_then(|u| u.groups.as_ref())
        .map(|g| g.iter().any(|g| g.to_ascii_lowercase().contains("admin")));
    let access = r.access_device.as_ref();
    let loc = access.and_then(|a| a.location.as_ref());
    let ua = access.and_then(|a| {
        let browser = nonempty(a.browser.clone())?;
        let version = a
            .browser_version
            .as_ref()
            .map(|v| v.0.as_ref())
            .unwrap_or("");
        let os = a.os.as_deref().unwrap_or("");
        Some(Cow::Owned(
            format!("{browser} {version} ({os})").replace(" ()", ""),
        ))
    });

    let mut e = Event::new(
        Source::Duo,
        r.txid.clone(),
        time,
        user,
        Cow::Owned(format!(
            "{event_type}:{}",
            r.reason.as_deref().unwrap_or(&result)
        )),
        (action, factor, outcome),
    );
    e.transaction_id = Some(r.txid);
    e.app = r.application.and_then(|a| nonempty(a.name));
    e.reason = norm_reason.map(Cow::Borrowed).or_else(|| {
        (outcome != Outcome::Success)
            .then(|| nonempty(r.reason))
            .flatten()
    });
    e.src_ip = access.and_then(|a| nonempty(a.ip.clone()));
    e.country = geo.country(loc.and_then(|l| l.country.clone()));
    e.region = loc.and_then(|l| nonempty(l.state.clone()));
    e.city = loc.and_then(|l| nonempty(l.city.clone()));
    e.user_agent = ua;
    e.device_id = r
        .auth_device
        .and_then(|d| nonempty(d.key).or(nonempty(d.name)));
    e.privileged = privileged.filter(|&p| p);
    event(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(json: &str) -> Event<'static> {
        crate::expect_event(map(json.as_bytes(), &mut Ctx::default()))
    }

    const BASE: &str = r#""txid":"t1","isotimestamp":"2024-05-01T10:00:00+00:00","event_type":"authentication","user":{"name":"carol"},"access_device":{"ip":"192.0.2.7","browser":"Chrome","browser_version":"120.0","os":"Windows","location":{"country":"United States","state":"Michigan","city":"Ann Arbor"}}"#;

    #[test]
    fn approved_push_fraud_and_timeout() {
        let e = ev(&format!(
            r#"{{{BASE},"factor":"duo_push","result":"success","reason":"user_approved"}}"#
        ));
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Push, Outcome::Success)
        );
        assert_eq!(e.country.as_deref(), Some("US"));
        let e = ev(&format!(
            r#"{{{BASE},"factor":"duo_push","result":"fraud","reason":"user_marked_fraud"}}"#
        ));
        assert_eq!(
            (e.outcome, e.reason.as_deref()),
            (Outcome::Denied, Some("fraud_reported"))
        );
        let e = ev(&format!(
            r#"{{{BASE},"factor":"duo_push","result":"denied","reason":"no_response"}}"#
        ));
        assert_eq!(
            (e.outcome, e.reason.as_deref()),
            (Outcome::Timeout, Some("no_response"))
        );
    }

    #[test]
    fn bypass_and_passcode_failures() {
        let e = ev(&format!(
            r#"{{{BASE},"factor":"bypass_code","result":"success","reason":"bypass_user"}}"#
        ));
        assert_eq!((e.action, e.factor), (Action::Bypass, Factor::BypassCode));
        let e = ev(&format!(
            r#"{{{BASE},"factor":"passcode","result":"denied","reason":"invalid_passcode"}}"#
        ));
        assert_eq!(
            (e.factor, e.outcome, e.reason.as_deref()),
            (Factor::HardwareOtp, Outcome::Failure, Some("invalid_code"))
        );
    }

    #[test]
    fn epoch_timestamp_fallback_and_missing_user() {
        let e = ev(
            r#"{"txid":"t2","timestamp":1714557600,"event_type":"enrollment","factor":"not_available","result":"success","user":{"name":"dan"}}"#,
        );
        assert_eq!(e.action, Action::EnrollComplete);
        assert_eq!(e.time, 1_714_557_600_000);
        let err = map(
            br#"{"txid":"t3","timestamp":1714557600,"result":"success"}"#,
            &mut Ctx::default(),
        )
        .unwrap_err();
        assert!(err.contains("user.name"), "{err}");
    }
}
