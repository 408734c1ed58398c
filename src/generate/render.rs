//! Renders canonical events as records in each vendor's documented shape (the inverse of the
//! normalizers), so generated traffic exercises the real mapping code.

use serde_json::{Value, json};

use crate::event::{Action, Event, Factor, Outcome};
use crate::normalize::LogFormat;
use crate::time::format_rfc3339;

/// Append `e` rendered as one `format` record (no trailing newline) to `out`; false (and
/// nothing appended) when the vendor does not log such a step — Duo and Keycloak write one
/// record per completed authentication, never one for the challenge.
pub fn render(format: LogFormat, e: &Event<'_>, out: &mut String) -> bool {
    if e.action == Action::MfaChallenge && matches!(format, LogFormat::Duo | LogFormat::Keycloak) {
        return false;
    }
    let v = match format {
        LogFormat::Okta => okta(e),
        LogFormat::Entra => entra(e),
        LogFormat::Duo => duo(e),
        LogFormat::Gworkspace => gworkspace(e),
        LogFormat::Cloudtrail => cloudtrail(e),
        LogFormat::Keycloak => {
            keycloak_line(e, out);
            return true;
        }
        LogFormat::Canonical | LogFormat::Auto => {
            let mut c = e.clone();
            if c.source != crate::event::Source::Probe {
                c.source = crate::event::Source::Canonical;
                c.vendor_event_type = c.action.as_str().into();
            }
            serde_json::to_value(&c).expect("serializable")
        }
    };
    out.push_str(&v.to_string());
    true
}

fn s(o: &Option<std::borrow::Cow<'_, str>>) -> Value {
    o.as_deref()
        .map_or(Value::Null, |v| Value::String(v.to_string()))
}

fn country_name(code: Option<&str>) -> &str {
    match code {
        Some("US") => "United States",
        Some("DE") => "Germany",
        Some("FR") => "France",
        Some("GB") => "United Kingdom",
        Some("IN") => "India",
        Some("BR") => "Brazil",
        Some("JP") => "Japan",
        Some("RU") => "Russia",
        Some("NG") => "Nigeria",
        Some("VN") => "Vietnam",
        Some(other) => other,
        None => "",
    }
}

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

fn okta(e: &Event<'_>) -> Value {
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
    };
    let (result, reason) = match (e.outcome, e.reason.as_deref()) {
        (Outcome::Success, _) => ("SUCCESS", Value::Null),
        (Outcome::Challenge, _) if e.action == MfaChallenge => ("SUCCESS", Value::Null),
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
        "debugContext": {"debugData": {"deviceFingerprint": s(&e.device_id), "factor": okta_factor(e.factor), "requestId": e.transaction_id.as_deref().unwrap_or(""), "requestUri": "/api/v1/authn/factors/verify", "threatSuspected": "false", "url": "/api/v1/authn/factors/verify?rememberDevice=false"}},
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

fn entra_method(f: Factor) -> &'static str {
    match f {
        Factor::Push => "Mobile app notification",
        Factor::Totp => "OATH verification code",
        Factor::Sms => "Text message",
        Factor::Voice => "Phone call approval (Authentication phone)",
        Factor::Webauthn | Factor::U2f => "FIDO2 security key",
        Factor::Email => "Email OTP",
        _ => "Password",
    }
}

fn entra(e: &Event<'_>) -> Value {
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
    let (code, detail): (i64, &str) = match (e.action, e.outcome, e.reason.as_deref()) {
        (PrimaryAuth, Outcome::Success, _) => (50074, "Strong Authentication is required."),
        (PrimaryAuth, _, _) => (
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        (MfaChallenge, _, _) => (50074, "Strong Authentication is required."),
        (MfaVerify, Outcome::Success, _) => (0, "MFA successfully completed"),
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

fn duo(e: &Event<'_>) -> Value {
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

fn gworkspace(e: &Event<'_>) -> Value {
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
        _ => (
            "logout",
            json!([{"name": "login_type", "value": "google_password"}]),
        ),
    };
    json!({
        "kind": "admin#reports#activity",
        "id": {"time": format_rfc3339(e.time), "uniqueQualifier": e.event_id, "applicationName": "login", "customerId": s(&e.tenant)},
        "etag": "\"acme-etag\"",
        "actor": {"email": e.user, "profileId": "1149"},
        "ipAddress": s(&e.src_ip),
        "events": [{"type": "login", "name": name, "parameters": params}]
    })
}

fn cloudtrail(e: &Event<'_>) -> Value {
    let user = e.user.split('@').next().unwrap_or(&e.user);
    let (name, source) = match e.action {
        Action::EnrollStart => ("CreateVirtualMFADevice", "iam.amazonaws.com"),
        Action::EnrollComplete => ("EnableMFADevice", "iam.amazonaws.com"),
        Action::FactorRemove => ("DeactivateMFADevice", "iam.amazonaws.com"),
        Action::MfaChallenge => ("GetSessionToken", "sts.amazonaws.com"),
        _ => ("ConsoleLogin", "signin.amazonaws.com"),
    };
    let mfa_arn = match e.factor {
        Factor::Webauthn | Factor::U2f => format!("arn:aws:iam::111122223333:u2f/user/{user}/key"),
        _ => format!("arn:aws:iam::111122223333:mfa/{user}"),
    };
    let mfa = matches!(e.action, Action::MfaVerify);
    let ok = matches!(e.outcome, Outcome::Success | Outcome::Challenge);
    let mut v = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDACKCEVSQ6C2EXAMPLE", "arn": format!("arn:aws:iam::111122223333:user/{user}"), "accountId": "111122223333", "userName": user},
        "eventTime": format_rfc3339(e.time).replace(".000Z", "Z"),
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": s(&e.src_ip), "userAgent": s(&e.user_agent),
        "requestParameters": null,
        "responseElements": {"ConsoleLogin": if ok { "Success" } else { "Failure" }},
        "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": if mfa { "Yes" } else { "No" }, "MFAIdentifier": if mfa { json!(mfa_arn) } else { Value::Null }},
        "eventID": e.event_id, "readOnly": false, "eventType": "AwsConsoleSignIn", "managementEvent": true,
        "recipientAccountId": "111122223333", "eventCategory": "Management"
    });
    if !ok {
        v["errorMessage"] = json!("Failed authentication");
    }
    if name != "ConsoleLogin" {
        v["requestParameters"] = json!({"userName": user, "serialNumber": mfa_arn});
        v.as_object_mut()
            .expect("object")
            .remove("additionalEventData");
    }
    v
}

fn keycloak_line(e: &Event<'_>, out: &mut String) {
    use std::fmt::Write;
    let (kind, error, cred) = match (e.action, e.outcome) {
        (Action::PrimaryAuth, Outcome::Success) => ("LOGIN", None, None),
        (Action::PrimaryAuth, _) => ("LOGIN_ERROR", Some("invalid_user_credentials"), None),
        (Action::MfaVerify, Outcome::Success) => ("LOGIN", None, Some("otp")),
        (Action::MfaVerify | Action::MfaChallenge, _) => {
            ("LOGIN_ERROR", Some("invalid_user_credentials"), Some("otp"))
        }
        (Action::EnrollStart | Action::EnrollComplete, _) => ("UPDATE_TOTP", None, None),
        (Action::FactorRemove, _) => ("REMOVE_TOTP", None, None),
        (Action::RecoveryRequest, _) => ("SEND_RESET_PASSWORD", None, None),
        (Action::RecoveryComplete, _) => ("RESET_PASSWORD", None, None),
        (Action::Lockout, _) => ("USER_DISABLED_BY_TEMPORARY_LOCKOUT", None, None),
        _ => ("LOGOUT", None, None),
    };
    let ts = chrono::DateTime::from_timestamp_millis(e.time)
        .expect("valid time")
        .format("%Y-%m-%d %H:%M:%S,%3f");
    let level = if error.is_some() { "WARN " } else { "DEBUG" };
    let _ = write!(
        out,
        "{ts} {level} [org.keycloak.events] (executor-thread-1) type=\"{kind}\", realmId=\"6f2c1e3a\", realmName=\"{}\", clientId=\"{}\", userId=\"{}\", sessionId=\"{}\", ipAddress=\"{}\"",
        e.tenant.as_deref().unwrap_or("acme"),
        e.app
            .as_deref()
            .unwrap_or("account")
            .replace(' ', "-")
            .to_lowercase(),
        xxhash_rust::xxh3::xxh3_64(e.user.as_bytes()),
        e.session_id.as_deref().unwrap_or("null"),
        e.src_ip.as_deref().unwrap_or("null"),
    );
    if let Some(err) = error {
        let _ = write!(out, ", error=\"{err}\"");
    }
    let _ = write!(out, ", auth_method=\"openid-connect\"");
    if let Some(c) = cred {
        let _ = write!(out, ", credential_type=\"{c}\"");
    }
    let _ = write!(out, ", username=\"{}\"", e.user);
}
