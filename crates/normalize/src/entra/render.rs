//! entra: a canonical event rendered as the vendor logs it (the inverse of the mapper), so
//! generated traffic exercises the real mapping code.

use serde_json::{Value, json};

use crate::vendor::s;
use mfascope_core::event::{Action, Event, Factor, Outcome};
use mfascope_core::time::format_rfc3339;

fn entra_method(f: Factor) -> &'static str {
    match f {
        Factor::Push => "Mobile app notification",
        Factor::Totp => "OATH verification code",
        Factor::Sms => "Text message",
        Factor::Voice => "Phone call approval (Authentication phone)",
        Factor::Webauthn | Factor::U2f => "FIDO2 security key",
        Factor::Email => "Email OTP",
        Factor::BypassCode => "Temporary Access Pass",
        _ => "Password",
    }
}

pub(super) fn render(e: &Event<'_>) -> Value {
    use Action::*;
    let audit = match e.action {
        EnrollStart => Some("User started security info registration"),
        EnrollComplete => Some("User registered security info"),
        FactorRemove => Some("User deleted security info"),
        RecoveryRequest => Some("Self-service password reset flow activity progress"),
        RecoveryComplete => Some("Reset password (self-service)"),
        PolicyChange => Some("Disable Strong Authentication"),
        DeviceRegister => Some("Register device"),
        DeviceRevoke => Some("Delete device"),
        SessionRevoke => Some("Invalidate all refresh tokens for user"),
        _ => None,
    };
    if let Some(activity) = audit {
        let initiator = e.actor.as_deref().unwrap_or(&e.user);
        return json!({
            "category": "AuditLogs", "tenantId": s(&e.tenant), "time": format_rfc3339(e.time), "operationName": activity,
            "properties": {
                "id": e.event_id, "activityDateTime": format_rfc3339(e.time), "activityDisplayName": activity,
                "category": "UserManagement", "correlationId": s(&e.transaction_id), "loggedByService": "Authentication Methods",
                "result": if e.outcome == Outcome::Failure { "failure" } else { "success" },
                "initiatedBy": {"user": {"userPrincipalName": initiator, "ipAddress": s(&e.src_ip)}},
                "targetResources": [{"userPrincipalName": e.user, "type": "User"}],
                "additionalDetails": [{"key": "Method", "value": entra_method(e.factor)}]
            }
        });
    }
    if e.action == RiskSignal {
        let kind = if e.reason.as_deref() == Some("fraud_reported") {
            "userReportedSuspiciousActivity"
        } else {
            "unfamiliarFeatures"
        };
        return json!({
            "category": "UserRiskEvents", "tenantId": s(&e.tenant), "time": format_rfc3339(e.time),
            "operationName": "User Risk Detection",
            "properties": {
                "id": e.event_id, "requestId": s(&e.transaction_id), "correlationId": s(&e.transaction_id),
                "riskEventType": kind, "riskState": "atRisk", "riskLevel": "medium", "riskDetail": "none",
                "source": "IdentityProtection", "detectionTimingType": "realtime", "activity": "signin",
                "ipAddress": s(&e.src_ip),
                "location": {"city": s(&e.city), "state": s(&e.region), "countryOrRegion": s(&e.country)},
                "activityDateTime": format_rfc3339(e.time), "detectedDateTime": format_rfc3339(e.time),
                "userPrincipalName": e.user, "tokenIssuerType": "AzureAD"
            }
        });
    }
    let (code, detail): (i64, &str) = match (e.action, e.outcome, e.reason.as_deref()) {
        (PrimaryAuth, Outcome::Success, _) => (50074, "Strong Authentication is required."),
        (PrimaryAuth, _, _) => (
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        (MfaChallenge, _, _) => (50074, "Strong Authentication is required."),
        (MfaVerify, Outcome::Success, _) => (0, "MFA successfully completed"),
        (MfaVerify, Outcome::Denied, Some("fraud_reported")) => (
            500121,
            "MFA denied; user declined the authentication and reported fraud",
        ),
        (MfaVerify, Outcome::Denied, _) => (500121, "MFA denied; user declined the authentication"),
        (MfaVerify, Outcome::Timeout, _) => (
            500121,
            "MFA denied; user did not respond to mobile app notification",
        ),
        (MfaVerify, _, _) => (500121, "MFA denied; invalid verification code entered"),
        (Lockout, _, _) => (
            50053,
            "Account is locked because user tried to sign in too many times.",
        ),
        (RateLimited, _, _) => (500183, "Too many MFA attempts"),
        (_, _, _) => (0, ""),
    };
    let t = e.time;
    let first = t - e.latency_ms.unwrap_or(0) as i64;
    let mut steps = vec![
        json!({"authenticationStepDateTime": format_rfc3339(first), "authenticationMethod": "Password", "succeeded": true, "authenticationStepResultDetail": "Correct password"}),
    ];
    if matches!(e.action, MfaVerify) {
        steps.push(json!({"authenticationStepDateTime": format_rfc3339(t), "authenticationMethod": entra_method(e.factor), "succeeded": e.outcome == Outcome::Success, "authenticationStepResultDetail": detail}));
    }
    json!({
        "category": "SignInLogs", "tenantId": s(&e.tenant), "time": format_rfc3339(t), "operationName": "Sign-in activity",
        "resultType": code.to_string(), "callerIpAddress": s(&e.src_ip), "correlationId": s(&e.transaction_id),
        "properties": {
            "id": e.event_id, "createdDateTime": format_rfc3339(t), "userPrincipalName": e.user, "userDisplayName": e.user,
            "appDisplayName": s(&e.app), "correlationId": s(&e.transaction_id), "sessionId": s(&e.session_id),
            "ipAddress": s(&e.src_ip), "userAgent": s(&e.user_agent), "isInteractive": true,
            "authenticationRequirement": "multiFactorAuthentication",
            "status": {"errorCode": code, "failureReason": if code == 0 { Value::Null } else { json!(detail) }, "additionalDetails": detail},
            "location": {"city": s(&e.city), "state": s(&e.region), "countryOrRegion": s(&e.country)},
            "deviceDetail": {"deviceId": s(&e.device_id), "browser": "Chrome 124.0.0", "operatingSystem": "Windows10"},
            "authenticationDetails": steps
        }
    })
}
