//! okta: a canonical event rendered as the vendor logs it (the inverse of the mapper), so
//! generated traffic exercises the real mapping code.

use serde_json::{Value, json};

use crate::vendor::{country_name, s};
use mfascope_core::event::{Action, Event, Factor, Outcome};
use mfascope_core::time::format_rfc3339;

fn okta_factor(f: Factor) -> &'static str {
    match f {
        Factor::Push => "OKTA_VERIFY_PUSH",
        Factor::Totp => "GOOGLE_AUTHENTICATOR",
        Factor::Sms => "SMS_FACTOR",
        Factor::Voice => "CALL_FACTOR",
        Factor::Email => "EMAIL_FACTOR",
        Factor::Webauthn => "FIDO_WEBAUTHN",
        Factor::U2f => "U2F",
        Factor::HardwareOtp => "YUBIKEY_TOKEN",
        _ => "PASSWORD_AS_FACTOR",
    }
}

pub(super) fn render(e: &Event<'_>) -> Value {
    use Action::*;
    let (event_type, display) = match (e.action, e.outcome) {
        (PrimaryAuth, _) => ("user.session.start", "User login to Okta"),
        (MfaChallenge, _) => match e.factor {
            Factor::Sms => (
                "system.sms.send_factor_verify_message",
                "Send SMS for factor verification",
            ),
            Factor::Voice => (
                "system.voice.send_mfa_challenge_call",
                "Send voice call for factor verification",
            ),
            Factor::Email => (
                "system.email.send_factor_verify_message",
                "Send email for factor verification",
            ),
            _ => (
                "system.push.send_factor_verify_push",
                "Push notification sent for verification",
            ),
        },
        (MfaVerify, Outcome::Denied) if e.factor == Factor::Push => (
            "user.mfa.okta_verify.deny_push",
            "User rejected Okta push verify",
        ),
        (MfaVerify, _) if e.factor == Factor::BypassCode => {
            ("user.mfa.attempt_bypass", "Attempt bypass of factor")
        }
        (MfaVerify, _) => (
            "user.authentication.auth_via_mfa",
            "Authentication of user via MFA",
        ),
        (EnrollStart | EnrollComplete, _) => (
            "user.mfa.factor.activate",
            "Activate factor or authenticator",
        ),
        (FactorRemove, _) => (
            "user.mfa.factor.deactivate",
            "Reset factor or authenticator",
        ),
        (RecoveryRequest, _) => (
            "system.email.password_reset.sent_message",
            "Send user password reset email",
        ),
        (RecoveryComplete, _) => (
            "user.account.reset_password",
            "Fired when the user's Okta password is reset",
        ),
        (Lockout, _) => ("user.account.lock", "Max sign in attempts exceeded"),
        (RateLimited, _) => ("system.org.rate_limit.violation", "Rate limit violation"),
        (SessionRevoke, _) => ("user.session.clear", "Clear user session"),
        (SessionStart, _) => ("user.authentication.sso", "User single sign on to app"),
        (DeviceRegister, _) => ("device.enrollment.create", "Device enrolled"),
        (DeviceRevoke, _) => ("device.lifecycle.deactivate", "Device deactivated"),
        (Bypass, _) => ("user.mfa.attempt_bypass", "Attempt bypass of factor"),
        (PolicyChange, _) if e.reason.as_deref() == Some("mfa_disabled") => {
            ("policy.lifecycle.deactivate", "Deactivate policy")
        }
        (PolicyChange, _) => ("policy.lifecycle.update", "Update policy"),
        (Other, _) => ("policy.evaluate_sign_on", "Evaluation of sign-on policy"),
        (RiskSignal, _) if e.reason.as_deref() == Some("fraud_reported") => (
            "user.account.report_suspicious_activity_by_enduser",
            "User report suspicious activity",
        ),
        (RiskSignal, _) => ("security.threat.detected", "Request from suspicious actor"),
    };
    let (result, reason) = match (e.action, e.outcome, e.reason.as_deref()) {
        (RiskSignal, Outcome::Denied, _) => ("DENY", json!("Password Spray")),
        (RiskSignal, _, Some("threat_detected")) => ("ALLOW", json!("Password Spray")),
        (RiskSignal, _, _) => ("SUCCESS", Value::Null),
        (_, o, r) => outcome_reason(e.action, o, r),
    };
    let geo = json!({
        "city": s(&e.city), "country": country_name(e.country.as_deref()),
        "geolocation": {"lat": 37.7201, "lon": -121.919}, "postalCode": "94568", "state": s(&e.region)
    });
    let mut target = vec![
        json!({"alternateId": "unknown", "detailEntry": null, "displayName": s(&e.app), "id": "0oa1abcd2EFGH3ijk4x6", "type": "AppInstance"}),
    ];
    if e.action == PolicyChange {
        target.push(json!({"alternateId": "unknown", "detailEntry": {"policyType": "MFA_ENROLL"}, "displayName": "Authenticator enrollment policy", "id": "00p1abcd2EFGH3ijk4x6", "type": "PolicyEntity"}));
    }
    let actor_id = e.actor.as_deref().unwrap_or(&e.user);
    if e.actor.is_some() {
        target.push(json!({"alternateId": e.user, "detailEntry": null, "displayName": e.user, "id": "00u1abvz4pYqdM8ms4x6", "type": "User"}));
    }
    json!({
        "actor": {"alternateId": actor_id, "detailEntry": null, "displayName": actor_id.split('@').next(), "id": "00u1abvz4pYqdM8ms4x6", "type": "User"},
        "authenticationContext": {"authenticationProvider": null, "authenticationStep": 0, "credentialProvider": null, "credentialType": null, "externalSessionId": s(&e.session_id), "interface": null, "issuer": null},
        "client": {"device": "Computer", "geographicalContext": geo, "id": null, "ipAddress": s(&e.src_ip),
                   "userAgent": {"browser": "CHROME", "os": "Mac OS X", "rawUserAgent": s(&e.user_agent)}, "zone": "null"},
        "debugContext": {"debugData": {"deviceFingerprint": s(&e.device_id), "factor": (e.factor != Factor::None).then(|| okta_factor(e.factor)), "requestId": e.transaction_id.as_deref().unwrap_or(""), "requestUri": "/api/v1/authn/factors/verify", "threatSuspected": (e.action == RiskSignal).to_string(), "url": "/api/v1/authn/factors/verify?rememberDevice=false"}},
        "displayMessage": display,
        "eventType": event_type,
        "legacyEventType": null,
        "outcome": {"reason": reason, "result": result},
        "published": format_rfc3339(e.time),
        "request": {"ipChain": [{"geographicalContext": geo, "ip": s(&e.src_ip), "source": null, "version": "V4"}]},
        "securityContext": {"asNumber": e.asn, "asOrg": "acme transit", "domain": null, "isProxy": false, "isp": "acme isp"},
        "severity": if result == "SUCCESS" { "INFO" } else { "WARN" },
        "target": target,
        "transaction": {"detail": {}, "id": s(&e.transaction_id), "type": "WEB"},
        "uuid": e.event_id,
        "version": "0"
    })
}

/// `outcome.result` and `outcome.reason` of an authentication step.
fn outcome_reason(action: Action, outcome: Outcome, reason: Option<&str>) -> (&'static str, Value) {
    match (outcome, reason) {
        (Outcome::Success, _) => ("SUCCESS", Value::Null),
        (Outcome::Challenge, _) if action == Action::MfaChallenge => ("SUCCESS", Value::Null),
        (Outcome::Challenge, _) => ("CHALLENGE", Value::Null),
        (Outcome::Denied, _) => ("FAILURE", json!("User rejected Okta push verify")),
        (Outcome::Timeout, _) => ("FAILURE", json!("PUSH_TIMEOUT: verification timed out")),
        (_, Some("invalid_code" | "invalid_credentials")) => {
            ("FAILURE", json!("INVALID_CREDENTIALS"))
        }
        (_, Some("rate_limited")) => ("DENY", json!("Rate limit exceeded")),
        // Okta's E0000082 for a TOTP code submitted twice.
        (_, Some("replay")) => (
            "FAILURE",
            json!("Each code can only be used once. Please wait for a new code and try again."),
        ),
        (_, _) => ("FAILURE", json!("VERIFICATION_ERROR")),
    }
}
