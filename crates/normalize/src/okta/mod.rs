//! Okta System Log (`/api/v1/logs`): one event per record, NDJSON or JSON-array pages.
//!
//! Subject: the `target` of type `User` when an admin acted on someone else, otherwise the actor.
//! Factor: `debugContext.debugData.factor` (e.g. `OKTA_VERIFY_PUSH`), falling back to
//! `authenticationContext.credentialType`. Outcome: `outcome.result` refined by `outcome.reason`.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::{Ctx, contains_ci, nonempty};
use super::{LogFormat, MapResult, event, ignored, parse};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_core::time::parse_rfc3339;

use crate::detect::Markers;
use crate::vendor::{Logsource, Vendor};
mod render;

/// The Okta System Log (`/api/v1/logs` records, NDJSON or arrays) in the vendor registry.
pub(crate) static VENDOR: Vendor = Vendor {
    format: LogFormat::Okta,
    source: Source::Okta,
    title: "Okta System Log (`/api/v1/logs` records, NDJSON or arrays)",
    map,
    detect,
    render,
    logsources: &[Logsource {
        product: "okta",
        service: "okta",
    }],
    logsource_of: crate::vendor::first_logsource,
    sample: "okta-system-log.ndjson.gz",
    limits: &[],
};

fn detect(m: &Markers<'_>) -> bool {
    m.has("eventType") && (m.has("published") || m.has("uuid"))
}

fn render(e: &Event<'_>, out: &mut String) -> bool {
    crate::vendor::push_json(out, &render::render(e))
}

super::record_type!(RawRecord => Raw);

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Raw<'a> {
    #[serde(borrow)]
    uuid: Cow<'a, str>,
    #[serde(borrow)]
    published: Cow<'a, str>,
    #[serde(borrow)]
    eventType: Cow<'a, str>,
    #[serde(borrow, default)]
    actor: Option<Party<'a>>,
    #[serde(borrow, default)]
    target: Option<Vec<Party<'a>>>,
    #[serde(borrow, default)]
    client: Option<Client<'a>>,
    #[serde(borrow, default)]
    outcome: Option<RawOutcome<'a>>,
    #[serde(borrow, default)]
    authenticationContext: Option<AuthContext<'a>>,
    #[serde(borrow, default)]
    debugContext: Option<DebugContext<'a>>,
    #[serde(borrow, default)]
    transaction: Option<Transaction<'a>>,
    #[serde(default)]
    securityContext: Option<SecurityContext>,
    #[serde(borrow, default)]
    device: Option<Device<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Party<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    alternateId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    displayName: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        rename = "type",
        deserialize_with = "mfascope_core::event::cow::opt"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    detailEntry: Option<DetailEntry<'a>>,
}

/// `target[].detailEntry`: for a `PolicyEntity`, which kind of policy it is.
#[derive(Deserialize)]
#[allow(non_snake_case)]
struct DetailEntry<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    policyType: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Client<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    ipAddress: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    userAgent: Option<UserAgent<'a>>,
    #[serde(borrow, default)]
    geographicalContext: Option<Geo<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct UserAgent<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    rawUserAgent: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Geo<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    city: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    state: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    country: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawOutcome<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    result: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct AuthContext<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    externalSessionId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    credentialType: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct DebugContext<'a> {
    #[serde(borrow, default)]
    debugData: Option<DebugData<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct DebugData<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    factor: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    deviceFingerprint: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    behaviors: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Transaction<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct SecurityContext {
    #[serde(default)]
    asNumber: Option<u32>,
}

#[derive(Deserialize)]
struct Device<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    id: Option<Cow<'a, str>>,
}

/// Action for an Okta event type; `None` for event types that are not about authentication.
fn action_for(event_type: &str) -> Option<Action> {
    use Action::*;
    Some(match event_type {
        "user.session.start"
        | "user.authentication.auth_via_IDP"
        | "user.authentication.auth_via_social"
        | "user.authentication.auth" => PrimaryAuth,
        "user.authentication.auth_via_mfa"
        | "user.authentication.verify"
        | "user.mfa.okta_verify.deny_push"
        | "user.mfa.okta_verify.deny_push_upgrade_needed" => MfaVerify,
        "system.push.send_factor_verify_push"
        | "system.sms.send_factor_verify_message"
        | "system.voice.send_mfa_challenge_call"
        | "system.email.send_factor_verify_message"
        | "system.voice.send_call"
        | "system.sms.send_sms" => MfaChallenge,
        "user.mfa.factor.activate" | "user.mfa.factor.update" => EnrollComplete,
        "user.mfa.factor.deactivate"
        | "user.mfa.factor.reset_all"
        | "user.mfa.factor.suspend"
        | "system.mfa.factor.deactivate" => FactorRemove,
        "user.mfa.attempt_bypass" => Bypass,
        "system.email.password_reset.sent_message"
        | "system.sms.send_password_reset_message"
        | "user.account.reset_password_request"
        | "user.account.unlock_token" => RecoveryRequest,
        "user.account.reset_password" | "user.account.unlock" => RecoveryComplete,
        "user.account.lock" | "user.account.lock.limit" => Lockout,
        "system.org.rate_limit.violation"
        | "system.operation.rate_limit.violation"
        | "system.client.rate_limit.violation"
        | "core.concurrency.org.limit.violation" => RateLimited,
        "user.authentication.sso" => SessionStart,
        "user.session.clear" | "user.session.expire" => SessionRevoke,
        "device.enrollment.create" | "device.user.add" => DeviceRegister,
        "device.lifecycle.deactivate"
        | "device.lifecycle.delete"
        | "device.lifecycle.suspend"
        | "device.user.remove" => DeviceRevoke,
        "security.threat.detected"
        | "user.risk.detect"
        | "user.account.report_suspicious_activity_by_enduser" => RiskSignal,
        "policy.evaluate_sign_on" => Other,
        t if t.starts_with("policy.lifecycle.") || t.starts_with("policy.rule.") => PolicyChange,
        t if t.starts_with("user.mfa.") => Other,
        _ => return None,
    })
}

/// Whether a target is the authenticator (MFA) enrollment policy: deactivating or deleting it
/// (or one of its rules) stops requiring MFA.
fn is_mfa_enroll_policy(target: &Party<'_>) -> bool {
    target.kind.as_deref() == Some("PolicyEntity")
        && target
            .detailEntry
            .as_ref()
            .and_then(|d| d.policyType.as_deref())
            .is_some_and(|t| t.eq_ignore_ascii_case("MFA_ENROLL"))
}

/// Factor from Okta's factor names (`debugData.factor`, `credentialType`, push/sms event types).
fn factor_for(name: &str) -> Factor {
    // Upper-cased on the stack: this runs per event. No known name is longer.
    let mut buf = [0u8; 32];
    let Some(upper) = buf.get_mut(..name.len()) else {
        return Factor::Unknown;
    };
    upper.copy_from_slice(name.as_bytes());
    upper.make_ascii_uppercase();
    match std::str::from_utf8(upper).unwrap_or_default() {
        "OKTA_VERIFY_PUSH" | "PUSH" | "OKTA_VERIFY" | "DUO" | "CUSTOM_APP_PUSH" => Factor::Push,
        "GOOGLE_AUTHENTICATOR"
        | "OKTA_VERIFY_OTP"
        | "OKTA_SOFT_TOKEN"
        | "OTP"
        | "TOKEN:SOFTWARE:TOTP"
        | "CUSTOM_OTP" => Factor::Totp,
        "SMS_FACTOR" | "SMS" | "PHONE_NUMBER" => Factor::Sms,
        "CALL_FACTOR" | "CALL" | "VOICE" => Factor::Voice,
        "EMAIL_FACTOR" | "EMAIL" => Factor::Email,
        "WEBAUTHN" | "FIDO_WEBAUTHN" | "FIDO2" | "ASSERTION" => Factor::Webauthn,
        "U2F" | "FIDO_U2F" => Factor::U2f,
        "YUBIKEY_TOKEN" | "RSA_TOKEN" | "SYMANTEC_VIP" | "TOKEN:HARDWARE" | "RSA_SECURID" => {
            Factor::HardwareOtp
        }
        "SIGNED_NONCE" | "OKTA_VERIFY_FASTPASS" | "FASTPASS" => Factor::Biometric,
        "PASSWORD" | "PASSWORD_AS_FACTOR" => Factor::Password,
        "SECURITY_QUESTION" | "RECOVERY_QUESTION" => Factor::RecoveryCode,
        _ => Factor::Unknown,
    }
}

fn challenge_factor(event_type: &str) -> Factor {
    match event_type {
        "system.push.send_factor_verify_push" => Factor::Push,
        "system.sms.send_factor_verify_message" | "system.sms.send_sms" => Factor::Sms,
        "system.email.send_factor_verify_message" => Factor::Email,
        _ => Factor::Voice,
    }
}

/// Outcome and normalized reason from `outcome.result` / `outcome.reason`.
fn outcome_for(
    action: Action,
    result: &str,
    reason: Option<&str>,
) -> (Outcome, Option<&'static str>) {
    // Read from the vendor's reason only for a denial or failure (most events succeed).
    let has = |needle: &str| reason.is_some_and(|r| contains_ci(r, needle));
    let refined = || {
        if has("reject") || has("denied") {
            Some((Outcome::Denied, "user_denied"))
        } else if has("fraud") || has("suspicious") {
            Some((Outcome::Denied, "fraud_reported"))
        } else if has("timeout") || has("timed out") || has("expired") {
            Some((Outcome::Timeout, "no_response"))
        } else if has("only be used once") || has("already been used") {
            // E0000082: the TOTP code of this time step was already accepted.
            Some((Outcome::Failure, "replay"))
        } else if has("locked") {
            Some((Outcome::Failure, "locked_out"))
        } else if has("rate limit") || has("too many") {
            Some((Outcome::Failure, "rate_limited"))
        } else if has("invalid") || has("verification_error") {
            Some((
                Outcome::Failure,
                if action == Action::PrimaryAuth {
                    "invalid_credentials"
                } else {
                    "invalid_code"
                },
            ))
        } else {
            None
        }
    };
    let is = |value: &str| result.eq_ignore_ascii_case(value);
    if is("SUCCESS") || is("ALLOW") {
        (Outcome::Success, None)
    } else if is("CHALLENGE") {
        (Outcome::Challenge, None)
    } else if is("DENY") {
        refined().map_or((Outcome::Denied, Some("policy_denied")), |(o, r)| {
            (o, Some(r))
        })
    } else if is("FAILURE") {
        refined().map_or((Outcome::Failure, None), |(o, r)| (o, Some(r)))
    } else {
        // SKIPPED, UNKNOWN, empty, or a value Okta does not document.
        (Outcome::Unknown, None)
    }
}

/// Map one Okta System Log event.
pub(super) fn map<'a>(raw: &[u8], ctx: &'a mut Ctx) -> MapResult<'a> {
    let super::fields::Ctx {
        json,
        geo: countries,
        ..
    } = ctx;
    let r = parse::<RawRecord>(LogFormat::Okta, raw, json)?;
    let event_type = r.eventType.as_ref();
    let Some(mut action) = action_for(event_type) else {
        return ignored(LogFormat::Okta, event_type);
    };
    let time = parse_rfc3339(&r.published).map_err(|e| format!("okta: published: {e}"))?;

    let actor = r
        .actor
        .as_ref()
        .and_then(|a| nonempty(a.alternateId.clone()));
    let targets = r.target.as_deref().unwrap_or_default();
    let target_user = targets
        .iter()
        .find(|t| t.kind.as_deref() == Some("User"))
        .and_then(|t| nonempty(t.alternateId.clone()));
    let (user, actor) = match (target_user, actor) {
        (Some(t), Some(a)) if t != a => (t, Some(a)),
        (Some(t), None) => (t, None),
        (_, Some(a)) => (a, None),
        (None, None) => {
            return Err("okta: actor.alternateId: missing; no subject for the event".into());
        }
    };

    let debug = r.debugContext.as_ref().and_then(|d| d.debugData.as_ref());
    let factor_name = debug.and_then(|d| nonempty(d.factor.clone())).or_else(|| {
        r.authenticationContext
            .as_ref()
            .and_then(|a| nonempty(a.credentialType.clone()))
    });
    let mut factor = match (action, factor_name.as_deref()) {
        (Action::MfaChallenge, _) => challenge_factor(event_type),
        (_, _) if event_type.starts_with("user.mfa.okta_verify.deny_push") => Factor::Push,
        (Action::PrimaryAuth, None) => Factor::Password,
        (
            Action::SessionStart
            | Action::SessionRevoke
            | Action::PolicyChange
            | Action::Other
            | Action::RiskSignal,
            None,
        ) => Factor::None,
        (_, Some(n)) => factor_for(n),
        (_, None) => Factor::Unknown,
    };
    if action == Action::Bypass {
        factor = Factor::BypassCode;
    }

    let out = r.outcome.as_ref();
    let result = out.and_then(|o| o.result.as_deref()).unwrap_or("");
    let vendor_reason = out.and_then(|o| nonempty(o.reason.clone()));
    let (mut outcome, mut reason) = outcome_for(action, result, vendor_reason.as_deref());
    match event_type {
        "user.mfa.okta_verify.deny_push" | "user.mfa.okta_verify.deny_push_upgrade_needed" => {
            outcome = Outcome::Denied;
            reason = Some("user_denied");
        }
        // Verdicts: blocked when Okta enforced them (ThreatInsight "log and enforce"), otherwise
        // only recorded; the user's own report is `fraud_reported`, Okta's `threat_detected`.
        "user.account.report_suspicious_activity_by_enduser" => {
            outcome = Outcome::Unknown;
            reason = Some("fraud_reported");
        }
        "security.threat.detected" | "user.risk.detect" => {
            outcome = if result.eq_ignore_ascii_case("DENY") {
                Outcome::Denied
            } else {
                Outcome::Unknown
            };
            reason = Some("threat_detected");
        }
        "user.account.lock" | "user.account.lock.limit" => reason = Some("locked_out"),
        "user.mfa.factor.reset_all" => reason = Some("reset_all"),
        "user.mfa.factor.suspend" => reason = Some("suspended"),
        "user.mfa.factor.update" => reason = Some("factor_updated"),
        "policy.lifecycle.deactivate"
        | "policy.lifecycle.delete"
        | "policy.rule.deactivate"
        | "policy.rule.delete"
            if targets.iter().any(is_mfa_enroll_policy) =>
        {
            reason = Some("mfa_disabled");
        }
        _ if action == Action::MfaChallenge && outcome == Outcome::Success => {
            outcome = Outcome::Challenge;
        }
        _ => {}
    }
    // A failed "sign-on" because MFA is pending is Okta's way of issuing the challenge.
    if action == Action::PrimaryAuth
        && vendor_reason
            .as_deref()
            .is_some_and(|r| contains_ci(r, "mfa required"))
    {
        action = Action::MfaChallenge;
        outcome = Outcome::Challenge;
    }

    let client = r.client.as_ref();
    let geo = client.and_then(|c| c.geographicalContext.as_ref());
    let fastpass = matches!(factor, Factor::Biometric)
        || debug
            .and_then(|d| d.behaviors.as_deref())
            .is_some_and(|b| contains_ci(b, "fastpass"));
    let app = targets
        .iter()
        .find(|t| t.kind.as_deref() == Some("AppInstance"))
        .and_then(|t| nonempty(t.displayName.clone()));

    let mut e = Event::new(
        Source::Okta,
        r.uuid,
        time,
        user,
        r.eventType.clone(),
        (action, factor, outcome),
    );
    e.actor = actor;
    e.app = app;
    e.reason = reason.map(Cow::Borrowed).or_else(|| {
        vendor_reason
            .filter(|_| outcome != Outcome::Success)
            .map(|r| Cow::Owned(r.to_ascii_lowercase().replace(' ', "_")))
    });
    e.session_id = r
        .authenticationContext
        .as_ref()
        .and_then(|a| nonempty(a.externalSessionId.clone()));
    e.transaction_id = r.transaction.as_ref().and_then(|t| nonempty(t.id.clone()));
    e.src_ip = client.and_then(|c| nonempty(c.ipAddress.clone()));
    e.user_agent = client
        .and_then(|c| c.userAgent.as_ref())
        .and_then(|u| nonempty(u.rawUserAgent.clone()));
    e.country = countries.country(geo.and_then(|g| g.country.clone()));
    e.region = geo.and_then(|g| nonempty(g.state.clone()));
    e.city = geo.and_then(|g| nonempty(g.city.clone()));
    e.asn = r.securityContext.as_ref().and_then(|s| s.asNumber);
    e.device_id = r
        .device
        .as_ref()
        .and_then(|d| nonempty(d.id.clone()))
        .or_else(|| debug.and_then(|d| nonempty(d.deviceFingerprint.clone())));
    e.phishing_resistant = factor.is_phishing_resistant() || fastpass;
    event(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mapped;

    fn ev(json: &str) -> Event<'static> {
        crate::expect_event(map(json.as_bytes(), &mut Ctx::default()))
    }

    const BASE: &str = r#""uuid":"u1","published":"2024-05-01T10:00:00.000Z","actor":{"alternateId":"alice@example.com","type":"User"},"client":{"ipAddress":"203.0.113.9","geographicalContext":{"country":"United States","state":"California","city":"Dublin"},"userAgent":{"rawUserAgent":"UA"}},"transaction":{"id":"T1"},"authenticationContext":{"externalSessionId":"S1"}"#;

    /// Okta's own verdicts and the user's report are risk signals, not authentication steps.
    #[test]
    fn verdicts_are_risk_signals() {
        let report = ev(&format!(
            r#"{{{BASE},"eventType":"user.account.report_suspicious_activity_by_enduser","outcome":{{"result":"SUCCESS"}}}}"#
        ));
        assert_eq!(
            (report.action, report.factor, report.outcome),
            (Action::RiskSignal, Factor::None, Outcome::Unknown)
        );
        assert_eq!(report.reason.as_deref(), Some("fraud_reported"));
        for (result, outcome) in [("DENY", Outcome::Denied), ("ALLOW", Outcome::Unknown)] {
            let threat = ev(&format!(
                r#"{{{BASE},"eventType":"security.threat.detected","outcome":{{"result":"{result}","reason":"Password Spray"}}}}"#
            ));
            assert_eq!(
                (threat.action, threat.outcome),
                (Action::RiskSignal, outcome)
            );
            assert_eq!(threat.reason.as_deref(), Some("threat_detected"));
            assert_eq!(threat.src_ip.as_deref(), Some("203.0.113.9"));
        }
    }

    #[test]
    fn push_verify_success_maps_to_mfa_verify_push() {
        let e = ev(&format!(
            r#"{{{BASE},"eventType":"user.authentication.auth_via_mfa","outcome":{{"result":"SUCCESS"}},"debugContext":{{"debugData":{{"factor":"OKTA_VERIFY_PUSH"}}}}}}"#
        ));
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Push, Outcome::Success)
        );
        assert_eq!(e.country.as_deref(), Some("US"));
        assert_eq!(e.transaction_id.as_deref(), Some("T1"));
        assert_eq!(e.session_id.as_deref(), Some("S1"));
        assert_eq!(e.user, "alice@example.com");
    }

    #[test]
    fn deny_push_is_denied_by_user() {
        let e = ev(&format!(
            r#"{{{BASE},"eventType":"user.mfa.okta_verify.deny_push","outcome":{{"result":"FAILURE","reason":"User rejected Okta push verify"}}}}"#
        ));
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Push, Outcome::Denied)
        );
        assert_eq!(e.reason.as_deref(), Some("user_denied"));
    }

    #[test]
    fn otp_failure_has_invalid_code_reason() {
        let e = ev(&format!(
            r#"{{{BASE},"eventType":"user.authentication.auth_via_mfa","outcome":{{"result":"FAILURE","reason":"INVALID_CREDENTIALS"}},"debugContext":{{"debugData":{{"factor":"GOOGLE_AUTHENTICATOR"}}}}}}"#
        ));
        assert_eq!((e.factor, e.outcome), (Factor::Totp, Outcome::Failure));
        assert_eq!(e.reason.as_deref(), Some("invalid_code"));
    }

    #[test]
    fn admin_reset_names_target_as_user_and_admin_as_actor() {
        let e = ev(&format!(
            r#"{{{BASE},"eventType":"user.mfa.factor.reset_all","outcome":{{"result":"SUCCESS"}},"target":[{{"alternateId":"bob@example.com","type":"User"}}]}}"#
        ));
        assert_eq!(e.action, Action::FactorRemove);
        assert_eq!(e.user, "bob@example.com");
        assert_eq!(e.actor.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn webauthn_is_phishing_resistant_and_push_challenge_is_a_challenge() {
        let e = ev(&format!(
            r#"{{{BASE},"eventType":"user.authentication.auth_via_mfa","outcome":{{"result":"SUCCESS"}},"debugContext":{{"debugData":{{"factor":"FIDO_WEBAUTHN"}}}}}}"#
        ));
        assert!(e.phishing_resistant);
        let c = ev(&format!(
            r#"{{{BASE},"eventType":"system.push.send_factor_verify_push","outcome":{{"result":"SUCCESS"}}}}"#
        ));
        assert_eq!(
            (c.action, c.factor, c.outcome),
            (Action::MfaChallenge, Factor::Push, Outcome::Challenge)
        );
    }

    #[test]
    fn non_auth_events_are_ignored_and_broken_ones_rejected() {
        let raw = format!(r#"{{{BASE},"eventType":"group.user_membership.add"}}"#);
        let mut ctx = crate::fields::Ctx::default();
        let r = map(raw.as_bytes(), &mut ctx);
        assert!(matches!(r, Ok(Mapped::Ignored(k)) if k == "okta:group.user_membership.add"));
        let err = map(
            br#"{"uuid":"u","eventType":"user.session.start"}"#,
            &mut Ctx::default(),
        )
        .unwrap_err();
        assert!(err.contains("published"), "{err}");
        let err = map(br#"{"uuid":"u","eventType":"user.session.start","published":"1970-01-01T00:00:00Z","actor":{"alternateId":"a"}}"#, &mut Ctx::default()).unwrap_err();
        assert!(err.contains("outside the accepted range"), "{err}");
        let err = map(br#"{"uuid":"u","eventType":"user.session.start","published":"2024-05-01T10:00:00Z","outcome":{"result":5}}"#, &mut Ctx::default()).unwrap_err();
        assert!(err.contains("outcome.result"), "{err}");
    }

    #[test]
    fn reused_code_is_a_replay_and_mfa_policy_deactivation_disables_mfa() {
        let e = ev(&format!(
            r#"{{{BASE},"eventType":"user.authentication.auth_via_mfa","outcome":{{"result":"FAILURE","reason":"Each code can only be used once. Please wait for a new code and try again."}},"debugContext":{{"debugData":{{"factor":"GOOGLE_AUTHENTICATOR"}}}}}}"#
        ));
        assert_eq!(
            (e.action, e.outcome, e.reason.as_deref()),
            (Action::MfaVerify, Outcome::Failure, Some("replay"))
        );
        let policy = |kind: &str| {
            ev(&format!(
                r#"{{{BASE},"eventType":"policy.lifecycle.deactivate","outcome":{{"result":"SUCCESS"}},"target":[{{"type":"PolicyEntity","displayName":"p","detailEntry":{{"policyType":"{kind}"}}}}]}}"#
            ))
        };
        let off = policy("MFA_ENROLL");
        assert_eq!(
            (off.action, off.reason.as_deref()),
            (Action::PolicyChange, Some("mfa_disabled"))
        );
        assert_eq!(policy("OktaSignOn").reason, None);
    }
}
