//! Keycloak user events: the JSON `Event` representation (event-listener / admin REST output),
//! Quarkus JSON log records of the `org.keycloak.events` logger, and the plain server-log lines
//! `… [org.keycloak.events] (…) type=LOGIN_ERROR, realmId=…, error=…` (quoted or unquoted values).
//!
//! Keycloak's `LOGIN` does not say which factors ran; when a `credential_type` detail is present
//! (OTP/WebAuthn forms set it on errors) the event is an MFA step, otherwise primary auth.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use super::fields::{Scalar, hashed_id, nonempty};
use super::{LogFormat, MapResult, event, ignored, parse};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_core::time::{check_range, parse_log_datetime};

use crate::detect::Markers;
use crate::vendor::{Logsource, Vendor};
mod render;

/// The Keycloak events (JSON, or `org.keycloak.events` log lines) in the vendor registry.
pub(crate) static VENDOR: Vendor = Vendor {
    format: LogFormat::Keycloak,
    source: Source::Keycloak,
    title: "Keycloak events (JSON, or `org.keycloak.events` log lines)",
    map: map_json,
    detect,
    render,
    logsources: &[Logsource {
        product: "keycloak",
        service: "keycloak",
    }],
    logsource_of: crate::vendor::first_logsource,
    sample: "keycloak-server.log.gz",
    limits: &[],
};

fn detect(m: &Markers<'_>) -> bool {
    (m.has("realmId") && m.has("type")) || m.value("loggerName") == Some("org.keycloak.events")
}

/// Keycloak writes one event per completed authentication step, never one for the challenge.
fn render(e: &Event<'_>, out: &mut String) -> bool {
    if matches!(e.action, Action::MfaChallenge | Action::RiskSignal) {
        return false;
    }
    render::render_line(e, out);
    true
}

super::record_type!(JsonRecord => JsonEvent);

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct JsonEvent<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    time: Option<i64>,
    #[serde(
        borrow,
        default,
        rename = "type",
        deserialize_with = "mfascope_core::event::cow::opt"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    realmId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    realmName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    clientId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    sessionId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    ipAddress: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    error: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    details: Option<HashMap<Cow<'a, str>, Scalar<'a>>>,
    // Quarkus JSON logging
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    loggerName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    timestamp: Option<Cow<'a, str>>,
}

/// Keys of a key=value event line that we read (everything else is skipped, so secrets such as
/// codes and tokens in details never leave this function).
struct Fields<'a> {
    time: i64,
    id: Option<Cow<'a, str>>,
    kind: Cow<'a, str>,
    realm: Option<Cow<'a, str>>,
    client: Option<Cow<'a, str>>,
    user_id: Option<Cow<'a, str>>,
    username: Option<Cow<'a, str>>,
    session: Option<Cow<'a, str>>,
    ip: Option<Cow<'a, str>>,
    error: Option<Cow<'a, str>>,
    credential_type: Option<Cow<'a, str>>,
}

impl Fields<'_> {
    fn into_owned(self) -> Fields<'static> {
        let o = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
        Fields {
            time: self.time,
            id: o(self.id),
            kind: Cow::Owned(self.kind.into_owned()),
            realm: o(self.realm),
            client: o(self.client),
            user_id: o(self.user_id),
            username: o(self.username),
            session: o(self.session),
            ip: o(self.ip),
            error: o(self.error),
            credential_type: o(self.credential_type),
        }
    }
}

/// True when the line is an `org.keycloak.events` log line.
pub(super) fn is_event_line(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"org.keycloak.events").is_some()
}

/// Map a plain server-log line.
pub(super) fn map_line<'a>(line: &'a [u8], _ctx: &mut super::fields::Ctx) -> MapResult<'a> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {} of the record", e.valid_up_to()))?;
    let Some(logger_at) = text.find("[org.keycloak.events]") else {
        return Err("record is neither JSON nor a Keycloak `org.keycloak.events` log line".into());
    };
    let prefix = text[..logger_at].trim();
    // "2024-03-19 10:01:42,525 WARN" → date and time are the first two tokens.
    let mut tokens = prefix.split_whitespace();
    let (date, clock) = (tokens.next().unwrap_or(""), tokens.next().unwrap_or(""));
    if !date.contains('-') {
        return Err(format!(
            "keycloak: line has no date ({date:?}); log with a date pattern such as %d{{yyyy-MM-dd HH:mm:ss,SSS}}"
        ));
    }
    let time = parse_log_datetime(&format!("{date} {clock}"))
        .map_err(|e| format!("keycloak: timestamp: {e}"))?;
    let body = text[logger_at + "[org.keycloak.events]".len()..].trim_start();
    // Skip the "(thread)" part.
    let body = match body.strip_prefix('(') {
        Some(rest) => rest.find(')').map(|i| &rest[i + 1..]).unwrap_or(rest),
        None => body,
    };
    fields_from_kv(time, body).and_then(|f| map_fields(f, line))
}

fn fields_from_kv(time: i64, body: &str) -> Result<Fields<'_>, String> {
    let kv = parse_kv(body);
    let get = |k: &str| {
        kv.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| Cow::Borrowed(*v))
    };
    let kind = get("type").ok_or("keycloak: type: missing in event line")?;
    Ok(Fields {
        time,
        id: get("id"),
        kind,
        realm: nonempty(get("realmName")).or_else(|| nonempty(get("realmId"))),
        client: nonempty(get("clientId")),
        user_id: nonempty(get("userId")),
        username: nonempty(get("username")),
        session: nonempty(get("sessionId")),
        ip: nonempty(get("ipAddress")),
        error: nonempty(get("error")),
        credential_type: nonempty(get("credential_type")),
    })
}

/// Split `k=v, k="v, with comma", …`.
fn parse_kv(body: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = body.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(", ") {
                Some(end) => (&after[..end], &after[end..]),
                None => (after.trim_end(), ""),
            }
        };
        out.push((key, value));
        rest = next.trim_start_matches([',', ' ']);
    }
    out
}

/// Map a JSON event (or a JSON log record of the events logger).
pub(super) fn map_json<'a>(raw: &[u8], ctx: &'a mut super::fields::Ctx) -> MapResult<'a> {
    let j = parse::<JsonRecord>(LogFormat::Keycloak, raw, &mut ctx.json)?;
    if j.loggerName.is_some() {
        let message = j
            .message
            .ok_or("keycloak: message: missing in JSON log record")?;
        let ts = j
            .timestamp
            .ok_or("keycloak: timestamp: missing in JSON log record")?;
        let time = parse_log_datetime(&ts).map_err(|e| format!("keycloak: timestamp: {e}"))?;
        let fields = match &message {
            Cow::Borrowed(m) => fields_from_kv(time, m)?,
            // Escaped message text: the fields must own their values.
            Cow::Owned(m) => fields_from_kv(time, m)?.into_owned(),
        };
        return map_fields(fields, raw);
    }
    let time = check_range(j.time.ok_or("keycloak: time: missing")?)
        .map_err(|e| format!("keycloak: time: {e}"))?;
    let details = j.details.unwrap_or_default();
    let detail = |k: &str| details.get(k).map(|s| s.0.clone());
    let f = Fields {
        time,
        id: j.id,
        kind: j.kind.ok_or("keycloak: type: missing")?,
        realm: nonempty(j.realmName).or_else(|| nonempty(j.realmId)),
        client: nonempty(j.clientId),
        user_id: nonempty(j.userId),
        username: nonempty(detail("username")),
        session: nonempty(j.sessionId),
        ip: nonempty(j.ipAddress),
        error: nonempty(j.error),
        credential_type: nonempty(detail("credential_type")),
    };
    map_fields(f, raw)
}

fn credential_factor(t: Option<&str>) -> Option<Factor> {
    Some(match t? {
        "otp" | "totp" => Factor::Totp,
        "hotp" => Factor::Hotp,
        "webauthn" | "webauthn-passwordless" => Factor::Webauthn,
        "password" => Factor::Password,
        "recovery-authn-codes" => Factor::RecoveryCode,
        _ => Factor::Unknown,
    })
}

fn map_fields<'a>(f: Fields<'a>, raw: &[u8]) -> MapResult<'a> {
    let cred = credential_factor(f.credential_type.as_deref());
    let error = f.error.as_deref();
    use Action::*;
    let (action, factor, outcome, reason): (Action, Factor, Outcome, Option<&'static str>) =
        match f.kind.as_ref() {
            "LOGIN" => match cred {
                Some(fac) if fac != Factor::Password => (MfaVerify, fac, Outcome::Success, None),
                _ => (PrimaryAuth, Factor::Password, Outcome::Success, None),
            },
            "LOGIN_ERROR" => match (error, cred) {
                (Some("user_temporarily_disabled" | "user_disabled"), _) => (
                    Lockout,
                    cred.unwrap_or(Factor::Password),
                    Outcome::Failure,
                    Some("locked_out"),
                ),
                (_, Some(fac)) if fac != Factor::Password => {
                    (MfaVerify, fac, Outcome::Failure, Some("invalid_code"))
                }
                (Some("invalid_user_credentials"), _) => (
                    PrimaryAuth,
                    Factor::Password,
                    Outcome::Failure,
                    Some("invalid_credentials"),
                ),
                (Some("user_not_found"), _) => (
                    PrimaryAuth,
                    Factor::Password,
                    Outcome::Failure,
                    Some("user_not_found"),
                ),
                (Some("expired_code" | "invalid_code"), _) => (
                    PrimaryAuth,
                    Factor::None,
                    Outcome::Failure,
                    Some("expired_session"),
                ),
                _ => (PrimaryAuth, Factor::Password, Outcome::Failure, None),
            },
            "UPDATE_TOTP" => (EnrollComplete, Factor::Totp, ok(error), None),
            "REMOVE_TOTP" => (FactorRemove, Factor::Totp, ok(error), None),
            "UPDATE_CREDENTIAL" | "UPDATE_CREDENTIAL_ERROR" => (
                EnrollComplete,
                cred.unwrap_or(Factor::Unknown),
                ok(error),
                None,
            ),
            "REMOVE_CREDENTIAL" | "REMOVE_CREDENTIAL_ERROR" => (
                FactorRemove,
                cred.unwrap_or(Factor::Unknown),
                ok(error),
                None,
            ),
            "UPDATE_TOTP_ERROR" => (EnrollComplete, Factor::Totp, Outcome::Failure, None),
            "SEND_RESET_PASSWORD" | "SEND_RESET_PASSWORD_ERROR" => {
                (RecoveryRequest, Factor::Email, ok(error), None)
            }
            "RESET_PASSWORD" | "RESET_PASSWORD_ERROR" => {
                (RecoveryComplete, Factor::Password, ok(error), None)
            }
            "USER_DISABLED_BY_TEMPORARY_LOCKOUT" | "USER_DISABLED_BY_PERMANENT_LOCKOUT" => (
                Lockout,
                Factor::Password,
                Outcome::Failure,
                Some("locked_out"),
            ),
            "LOGOUT" | "CODE_TO_TOKEN" | "REFRESH_TOKEN" | "INTROSPECT_TOKEN" | "CLIENT_LOGIN"
            | "USER_INFO_REQUEST" => {
                return ignored(LogFormat::Keycloak, &f.kind);
            }
            "REVOKE_GRANT" => (SessionRevoke, Factor::None, ok(error), None),
            other if other.ends_with("_ERROR") => (Other, Factor::None, Outcome::Failure, None),
            other => return ignored(LogFormat::Keycloak, other),
        };
    let user = f
        .username
        .or(f.user_id)
        .ok_or("keycloak: username/userId: missing; no subject")?;
    let id = match f.id {
        Some(id) => id,
        None => Cow::Owned(hashed_id(Source::Keycloak, raw)),
    };
    let mut e = Event::new(
        Source::Keycloak,
        id,
        f.time,
        user,
        f.kind,
        (action, factor, outcome),
    );
    e.tenant = f.realm;
    e.app = f.client;
    e.session_id = f.session;
    e.src_ip = f.ip;
    e.reason = reason.map(Cow::Borrowed).or(f.error);
    event(e)
}

fn ok(error: Option<&str>) -> Outcome {
    if error.is_some() {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mapped, expect_event as ev};

    #[test]
    fn quoted_quarkus_line_with_otp_error() {
        let line = br#"2024-03-19 10:01:42,525 WARN  [org.keycloak.events] (executor-thread-3) type="LOGIN_ERROR", realmId="4f2c", realmName="demo", clientId="account-console", userId="u-1", sessionId="null", ipAddress="127.0.0.1", error="invalid_user_credentials", auth_method="openid-connect", credential_type="otp", username="alice""#;
        let e = ev(map_line(line, &mut Default::default()));
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Totp, Outcome::Failure)
        );
        assert_eq!(
            (e.user.as_ref(), e.tenant.as_deref(), e.session_id),
            ("alice", Some("demo"), None)
        );
    }

    #[test]
    fn unquoted_line_and_line_without_date() {
        let line = b"2024-03-19 10:01:42,525 INFO  [org.keycloak.events] (default task-1) type=UPDATE_TOTP, realmId=master, clientId=account, userId=u-2, ipAddress=10.0.0.5, username=bob";
        let e = ev(map_line(line, &mut Default::default()));
        assert_eq!((e.action, e.factor), (Action::EnrollComplete, Factor::Totp));
        let err = map_line(
            b"10:01:42,525 INFO  [org.keycloak.events] (t) type=LOGIN, userId=x",
            &mut Default::default(),
        )
        .unwrap_err();
        assert!(err.contains("no date"), "{err}");
        let err = map_line(b"hello world", &mut Default::default()).unwrap_err();
        assert!(err.contains("neither JSON"), "{err}");
    }

    #[test]
    fn json_event_and_lockout() {
        let e = ev(map_json(br#"{"id":"k1","time":1714557600000,"type":"USER_DISABLED_BY_TEMPORARY_LOCKOUT","realmId":"r","userId":"u-3","details":{"username":"carol"}}"#, &mut Default::default()));
        assert_eq!(
            (e.action, e.reason.as_deref(), e.user.as_ref()),
            (Action::Lockout, Some("locked_out"), "carol")
        );
        let mut ctx = crate::fields::Ctx::default();
        let r = map_json(
            br#"{"time":1714557600000,"type":"LOGOUT","realmId":"r","userId":"u"}"#,
            &mut ctx,
        );
        assert!(matches!(r, Ok(Mapped::Ignored(k)) if k == "keycloak:LOGOUT"));
    }
}
