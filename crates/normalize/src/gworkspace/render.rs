//! gworkspace: a canonical event rendered as the vendor logs it (the inverse of the mapper), so
//! generated traffic exercises the real mapping code.

use serde_json::{Value, json};

use crate::vendor::s;
use mfascope_core::event::{Action, Event, Factor, Outcome};
use mfascope_core::time::format_rfc3339;

pub(super) fn render(e: &Event<'_>) -> Value {
    let method = match e.factor {
        Factor::Push => "internal_two_factor",
        Factor::Totp => "google_authenticator",
        Factor::Sms => "idv_preregistered_phone",
        Factor::Webauthn | Factor::U2f => "security_key",
        Factor::RecoveryCode => "backup_code",
        _ => "password",
    };
    let (name, params) = match (e.action, e.outcome) {
        (Action::PrimaryAuth, Outcome::Success) => (
            "login_success",
            json!([{"name": "login_challenge_method", "multiValue": ["password"]}, {"name": "login_type", "value": "google_password"}]),
        ),
        (Action::PrimaryAuth, _) => (
            "login_failure",
            json!([{"name": "login_failure_type", "value": "login_failure_invalid_password"}, {"name": "login_type", "value": "google_password"}]),
        ),
        (Action::MfaVerify, Outcome::Success) => (
            "login_verification",
            json!([{"name": "login_challenge_method", "multiValue": [method]}, {"name": "login_challenge_status", "value": "passed"}, {"name": "is_second_factor", "boolValue": true}]),
        ),
        (Action::MfaVerify, _) => (
            "login_verification",
            json!([{"name": "login_challenge_method", "multiValue": [method]}, {"name": "login_challenge_status", "value": "failed"}, {"name": "is_second_factor", "boolValue": true}]),
        ),
        (Action::MfaChallenge, _) => (
            "login_challenge",
            json!([{"name": "login_challenge_method", "multiValue": [method]}, {"name": "is_second_factor", "boolValue": true}]),
        ),
        (Action::EnrollComplete | Action::EnrollStart, _) if e.factor == Factor::Sms => {
            ("recovery_phone_edit", json!([]))
        }
        (Action::EnrollComplete | Action::EnrollStart, _) => ("2sv_enroll", json!([])),
        // Google logs no per-factor removal but a passkey's; only turning 2SV off is 2sv_disable.
        (Action::FactorRemove, _) => ("passkey_removed", json!([])),
        (Action::PolicyChange, _) if e.reason.as_deref() == Some("mfa_disabled") => {
            ("2sv_disable", json!([]))
        }
        (Action::PolicyChange, _) => ("2sv_enroll", json!([])),
        (Action::Lockout, _) => ("account_disabled_generic", json!([])),
        // Google's own verdict; it has no event for a user's report (see the vendor's limits).
        (Action::RiskSignal, _) if e.reason.as_deref() == Some("threat_detected") => (
            "suspicious_login",
            json!([{"name": "affected_email_address", "value": e.user}]),
        ),
        _ => (
            "logout",
            json!([{"name": "login_type", "value": "google_password"}]),
        ),
    };
    // Account changes are the user_accounts application's; sign-ins the login application's.
    let (application, kind) = match name {
        "2sv_enroll" | "2sv_disable" => ("user_accounts", "2sv_change"),
        "recovery_phone_edit" => ("user_accounts", "recovery_info_change"),
        "passkey_removed" => ("user_accounts", "passkey_change"),
        _ => ("login", "login"),
    };
    let mut v = json!({
        "kind": "admin#reports#activity",
        "id": {"time": format_rfc3339(e.time), "uniqueQualifier": e.event_id, "applicationName": application, "customerId": s(&e.tenant)},
        "etag": "\"acme-etag\"",
        "actor": {"email": e.user, "profileId": "1149"},
        "ipAddress": s(&e.src_ip),
        "events": [{"type": kind, "name": name, "parameters": params}]
    });
    if let Some(country) = e.country.as_deref() {
        v["networkInfo"] = json!({"regionCode": country});
        if let Some(asn) = e.asn {
            v["networkInfo"]["ipAsn"] = json!([asn]);
        }
    }
    v
}
