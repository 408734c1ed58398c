//! keycloak: a canonical event rendered as an `org.keycloak.events` log line (the inverse of the
//! line mapper), so generated traffic exercises the real mapping code.

use mfascope_core::event::{Action, Event, Outcome};

pub(super) fn render_line(e: &Event<'_>, out: &mut String) {
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
        // The canonical user of a Keycloak event is its userId (see the mapper).
        e.user,
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
