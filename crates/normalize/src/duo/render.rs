//! duo: a canonical event rendered as the vendor logs it (the inverse of the mapper), so
//! generated traffic exercises the real mapping code.

use serde_json::{Value, json};

use crate::vendor::{country_name, s};
use mfascope_core::event::{Action, Event, Factor, Outcome};
use mfascope_core::time::format_rfc3339;

pub(super) fn render(e: &Event<'_>) -> Value {
    let factor = match e.factor {
        Factor::Push => "duo_push",
        Factor::Totp => "duo_mobile_passcode",
        Factor::Sms => "sms_passcode",
        Factor::Voice => "phone_call",
        Factor::Webauthn => "webauthn_security_key",
        Factor::U2f => "u2f_token",
        Factor::HardwareOtp => "hardware_token",
        Factor::BypassCode => "bypass_code",
        _ => "not_available",
    };
    let (event_type, result, reason) = match (e.action, e.outcome, e.reason.as_deref()) {
        (Action::EnrollStart | Action::EnrollComplete, _, _) => {
            ("enrollment", "success", Value::Null)
        }
        (Action::Lockout, _, _) => ("authentication", "denied", json!("locked_out")),
        (Action::RateLimited, _, _) => ("authentication", "denied", json!("frequent_attempts")),
        (Action::Bypass, _, _) => ("authentication", "success", json!("bypass_user")),
        (_, Outcome::Success, _) => (
            "authentication",
            "success",
            json!(if matches!(e.factor, Factor::Push) {
                "user_approved"
            } else {
                "valid_passcode"
            }),
        ),
        (_, Outcome::Denied, Some("fraud_reported")) => {
            ("authentication", "fraud", json!("user_marked_fraud"))
        }
        (_, Outcome::Denied, _) => ("authentication", "denied", json!("user_mistake")),
        (_, Outcome::Timeout, _) => ("authentication", "denied", json!("no_response")),
        (_, _, _) => ("authentication", "denied", json!("invalid_passcode")),
    };
    let loc = json!({"city": s(&e.city), "country": country_name(e.country.as_deref()), "state": s(&e.region)});
    json!({
        "access_device": {"browser": "Chrome", "browser_version": "124.0.6367.91", "flash_version": "uninstalled", "hostname": null, "ip": s(&e.src_ip), "is_encryption_enabled": true, "is_firewall_enabled": true, "is_password_set": true, "java_version": "uninstalled", "location": loc, "os": "Mac OS X", "os_version": "14.4"},
        "alias": "", "application": {"key": "DIY231J8BR23QK4UKBY8", "name": s(&e.app)},
        "auth_device": {"ip": s(&e.src_ip), "location": loc, "name": s(&e.device_id)},
        "email": e.user, "event_type": event_type, "factor": factor,
        "isotimestamp": format_rfc3339(e.time), "ood_software": null, "reason": reason, "result": result,
        "timestamp": e.time / 1000, "trusted_endpoint_status": "not trusted", "txid": e.event_id,
        "user": {"groups": if e.privileged == Some(true) { json!(["Duo Admins"]) } else { json!(["Duo Users"]) }, "key": "DU3KC77WJ06Y5HIV7XKQ", "name": e.user}
    })
}
