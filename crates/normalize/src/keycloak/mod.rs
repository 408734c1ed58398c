//! Keycloak user events: the JSON `Event` representation (event-listener / admin REST output),
//! Quarkus JSON log records of the `org.keycloak.events` logger, and the plain server-log lines
//! `… [org.keycloak.events] (…) type=LOGIN_ERROR, realmId=…, error=…` (quoted or unquoted values).
//!
//! Admin events (`operationType=…, resourcePath=…`) are read for what they do to a user's
//! second factors: an admin deleting a credential is a factor removal; the rest are ignored.
//!
//! What real Keycloak 26 writes (checked against a running server, `tests/ingest/keycloak.rs`),
//! and so how events map:
//! - `LOGIN` does not say which factors ran. A login or failure that went through a credential
//!   form carries `selected_credential_id` (browser OTP form) or `credential_type` (the login
//!   that completes an OTP enrolment): those are MFA steps; a `LOGIN` without either is primary
//!   auth. The direct grant (`grant_type=password` with `totp`) says neither, so its logins are
//!   primary auth and a wrong code is indistinguishable from a wrong password there.
//! - Steps after the first name the user only by id (an OTP failure, the lockout), so the
//!   canonical `user` is Keycloak's `userId`, and the `username` only when there is no id.
//! - A brute-force lockout is its own event (`USER_DISABLED_BY_TEMPORARY_LOCKOUT`, since
//!   Keycloak 24); attempts refused while locked (`LOGIN_ERROR` `user_temporarily_disabled`)
//!   are failed primary auth with reason `locked_out`, not further lockouts.
//! - Enrolling OTP writes `UPDATE_TOTP` and `UPDATE_CREDENTIAL` (`credential_type=otp`) for one
//!   action; the second is ignored as its duplicate (likewise `REMOVE_CREDENTIAL` next to
//!   `REMOVE_TOTP`).
//! - Lines of dateless console patterns (the WildFly-era default, `%d{HH:mm:ss,SSS}`) take the
//!   date from `--assume-date`; without it they are dead letters saying the date is missing.

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

/// Keycloak's event JSON, or a record of its Quarkus JSON log (any logger: the others are
/// ignored, not dead letters).
fn detect(m: &Markers<'_>) -> bool {
    (m.has("realmId") && m.has("type"))
        || m.value("loggerName") == Some("org.keycloak.events")
        || (m.has("loggerName") && m.has("loggerClassName") && m.has("sequence"))
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
    /// A credential form ran (`selected_credential_id`; its value is never kept).
    selected_credential: bool,
    /// Admin events: `operationType`, `resourceType`, `resourcePath`.
    admin: Option<AdminOp<'a>>,
}

/// What an admin event did.
struct AdminOp<'a> {
    operation: Cow<'a, str>,
    resource_type: Option<Cow<'a, str>>,
    resource_path: Option<Cow<'a, str>>,
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
            selected_credential: self.selected_credential,
            admin: self.admin.map(|a| AdminOp {
                operation: Cow::Owned(a.operation.into_owned()),
                resource_type: o(a.resource_type),
                resource_path: o(a.resource_path),
            }),
        }
    }
}

/// True when the line is an `org.keycloak.events` log line.
pub(super) fn is_event_line(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"org.keycloak.events").is_some()
}

/// Map a plain server-log line: `DATE TIME LEVEL [org.keycloak.events] (thread) k=v, …`, or
/// `TIME LEVEL …` from a dateless pattern, dated by `ctx.assume_date`.
pub(super) fn map_line<'a>(line: &'a [u8], ctx: &mut super::fields::Ctx) -> MapResult<'a> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {} of the record", e.valid_up_to()))?;
    let Some(logger_at) = text.find("[org.keycloak.events]") else {
        if is_server_log_line(text) {
            // Another logger of the same server log (startup, warnings): not an event.
            return ignored(LogFormat::Keycloak, "log");
        }
        return Err("record is neither JSON nor a Keycloak `org.keycloak.events` log line".into());
    };
    let prefix = text[..logger_at].trim();
    // "2024-03-19 10:01:42,525 WARN" → date and time are the first two tokens;
    // "21:01:45,403 WARN" (dateless pattern) → the time is the first.
    let mut tokens = prefix.split_whitespace();
    let first = tokens.next().unwrap_or("");
    let stamp = if first.contains('-') {
        format!("{first} {}", tokens.next().unwrap_or(""))
    } else if let Some(date) = ctx.assume_date {
        format!("{date} {first}")
    } else {
        return Err(
            "keycloak: the line has no date (its log pattern writes only the time of day): pass \
             --assume-date YYYY-MM-DD for such logs, or log with a dated pattern such as \
             %d{yyyy-MM-dd HH:mm:ss,SSS}"
                .into(),
        );
    };
    let time = parse_log_datetime(&stamp).map_err(|e| format!("keycloak: timestamp: {e}"))?;
    let body = text[logger_at + "[org.keycloak.events]".len()..].trim_start();
    // Skip the "(thread)" part.
    let body = match body.strip_prefix('(') {
        Some(rest) => rest.find(')').map(|i| &rest[i + 1..]).unwrap_or(rest),
        None => body,
    };
    fields_from_kv(time, body).and_then(|f| map_fields(f, line))
}

/// A line of Keycloak's (JBoss/Quarkus) server-log layout, `[DATE] TIME LEVEL [logger] …`.
fn is_server_log_line(text: &str) -> bool {
    let mut tokens = text.split_whitespace();
    let mut token = tokens.next().unwrap_or("");
    if token.contains('-') {
        token = tokens.next().unwrap_or("");
    }
    let clock = token.contains(':')
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || b":,.".contains(&b));
    let level = matches!(
        tokens.next(),
        Some("TRACE" | "DEBUG" | "INFO" | "WARN" | "WARNING" | "ERROR" | "FATAL")
    );
    clock && level && tokens.next().is_some_and(|t| t.starts_with('['))
}

fn fields_from_kv(time: i64, body: &str) -> Result<Fields<'_>, String> {
    let kv = parse_kv(body);
    let get = |k: &str| {
        kv.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| Cow::Borrowed(*v))
    };
    let admin = get("operationType").map(|operation| AdminOp {
        operation,
        resource_type: nonempty(get("resourceType")),
        resource_path: nonempty(get("resourcePath")),
    });
    let kind = match (&admin, get("type")) {
        (_, Some(kind)) => kind,
        (Some(a), None) => Cow::Owned(format!(
            "admin:{}:{}",
            a.operation,
            a.resource_type.as_deref().unwrap_or("")
        )),
        (None, None) => return Err("keycloak: type: missing in event line".into()),
    };
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
        selected_credential: nonempty(get("selected_credential_id")).is_some(),
        admin,
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
    if let Some(logger) = &j.loggerName {
        if logger != "org.keycloak.events" {
            // Another logger of the same server log (startup, warnings): not an event.
            return ignored(LogFormat::Keycloak, "log");
        }
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
        selected_credential: nonempty(detail("selected_credential_id")).is_some(),
        admin: None,
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
    if let Some(admin) = &f.admin {
        return map_admin(&f, admin, raw);
    }
    let cred = credential_factor(f.credential_type.as_deref());
    // A step through a credential form other than the password's: an MFA step.
    let mfa = match cred {
        Some(Factor::Password) => None,
        Some(factor) => Some(factor),
        None if f.selected_credential => Some(Factor::Unknown),
        None => None,
    };
    let error = f.error.as_deref();
    use Action::*;
    let (action, factor, outcome, reason): (Action, Factor, Outcome, Option<&'static str>) =
        match f.kind.as_ref() {
            "LOGIN" => match mfa {
                Some(factor) => (MfaVerify, factor, Outcome::Success, None),
                None => (PrimaryAuth, Factor::Password, Outcome::Success, None),
            },
            "LOGIN_ERROR" => match (error, mfa) {
                (Some("user_temporarily_disabled"), _) => (
                    PrimaryAuth,
                    mfa.unwrap_or(Factor::Password),
                    Outcome::Failure,
                    Some("locked_out"),
                ),
                (Some("expired_code" | "invalid_code"), _) => (
                    PrimaryAuth,
                    Factor::None,
                    Outcome::Failure,
                    Some("expired_session"),
                ),
                (_, Some(factor)) => (MfaVerify, factor, Outcome::Failure, Some("invalid_code")),
                (Some("invalid_user_credentials"), None) => (
                    PrimaryAuth,
                    Factor::Password,
                    Outcome::Failure,
                    Some("invalid_credentials"),
                ),
                (Some("user_not_found"), None) => (
                    PrimaryAuth,
                    Factor::Password,
                    Outcome::Failure,
                    Some("user_not_found"),
                ),
                _ => (PrimaryAuth, Factor::Password, Outcome::Failure, None),
            },
            "UPDATE_TOTP" => (EnrollComplete, Factor::Totp, ok(error), None),
            "REMOVE_TOTP" => (FactorRemove, Factor::Totp, ok(error), None),
            // Keycloak 24+ writes these next to UPDATE_TOTP / REMOVE_TOTP for the same action.
            "UPDATE_CREDENTIAL" | "REMOVE_CREDENTIAL" if cred == Some(Factor::Totp) => {
                return ignored(LogFormat::Keycloak, &format!("{}(otp)", f.kind));
            }
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
    // Keycloak's id names the user on every step; the username only on some (see above).
    let user = f
        .user_id
        .or(f.username)
        .ok_or("keycloak: userId/username: missing; no subject")?;
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

/// An admin event: deleting one of a user's credentials (`users/UID/credentials/CID`, logged as
/// `DELETE` or, by Keycloak 26, `ACTION`) removes a factor of that user, done by the admin;
/// every other admin operation is ignored.
fn map_admin<'a>(f: &Fields<'a>, admin: &AdminOp<'a>, raw: &[u8]) -> MapResult<'a> {
    let path: Vec<&str> = admin
        .resource_path
        .as_deref()
        .unwrap_or("")
        .split('/')
        .collect();
    let removes_credential = matches!(admin.operation.as_ref(), "DELETE" | "ACTION")
        && admin.resource_type.as_deref() == Some("USER")
        && matches!(path.as_slice(), ["users", _, "credentials", _]);
    if !removes_credential {
        return ignored(LogFormat::Keycloak, &f.kind);
    }
    let mut e = Event::new(
        Source::Keycloak,
        Cow::Owned(hashed_id(Source::Keycloak, raw)),
        f.time,
        Cow::Owned(path[1].to_string()),
        Cow::Owned(f.kind.to_string()),
        (
            Action::FactorRemove,
            Factor::Unknown,
            ok(f.error.as_deref()),
        ),
    );
    e.actor = f.user_id.clone().map(|a| Cow::Owned(a.into_owned()));
    e.tenant = f.realm.clone().map(|r| Cow::Owned(r.into_owned()));
    e.src_ip = f.ip.clone().map(|r| Cow::Owned(r.into_owned()));
    e.reason = f.error.clone().map(|r| Cow::Owned(r.into_owned()));
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
            ("u-1", Some("demo"), None)
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
        assert!(
            err.contains("no date") && err.contains("--assume-date"),
            "{err}"
        );
        let mut ctx = crate::fields::Ctx {
            assume_date: chrono::NaiveDate::from_ymd_opt(2019, 7, 2),
            ..Default::default()
        };
        let e = ev(map_line(
            b"21:01:45,403 WARN  [org.keycloak.events] (default task-1) type=LOGIN_ERROR, realmId=test, clientId=test, userId=null, ipAddress=172.18.0.1, error=invalid_redirect_uri, username=dave",
            &mut ctx,
        ));
        assert_eq!(
            mfascope_core::time::format_rfc3339(e.time),
            "2019-07-02T21:01:45.403Z"
        );
        assert_eq!(
            (e.user.as_ref(), e.reason.as_deref(), e.src_ip.as_deref()),
            ("dave", Some("invalid_redirect_uri"), Some("172.18.0.1"))
        );
        let err = map_line(b"hello world", &mut Default::default()).unwrap_err();
        assert!(err.contains("neither JSON"), "{err}");
    }

    #[test]
    fn json_event_and_lockout() {
        let e = ev(map_json(br#"{"id":"k1","time":1714557600000,"type":"USER_DISABLED_BY_TEMPORARY_LOCKOUT","realmId":"r","userId":"u-3","details":{"username":"carol"}}"#, &mut Default::default()));
        assert_eq!(
            (e.action, e.reason.as_deref(), e.user.as_ref()),
            (Action::Lockout, Some("locked_out"), "u-3")
        );
        let mut ctx = crate::fields::Ctx::default();
        let r = map_json(
            br#"{"time":1714557600000,"type":"LOGOUT","realmId":"r","userId":"u"}"#,
            &mut ctx,
        );
        assert!(matches!(r, Ok(Mapped::Ignored(k)) if k == "keycloak:LOGOUT"));
    }

    /// Lines as Keycloak 26.4 writes them (from `scripts/keycloak`, ids shortened).
    const REAL: &[&str] = &[
        r#"2026-12-06 07:30:46,412 WARN  [org.keycloak.events] (executor-thread-2) type="LOGIN_ERROR", realmId="2600", realmName="mfascope", clientId="mfascope-probe", userId="a765", ipAddress="127.0.0.1", error="invalid_user_credentials", auth_method="openid-connect", auth_type="code", selected_credential_id="eb04", redirect_uri="http://127.0.0.1/callback", code_id="3eca""#,
        r#"2026-12-06 07:30:46,510 DEBUG [org.keycloak.events] (executor-thread-2) type="LOGIN", realmId="2600", realmName="mfascope", clientId="mfascope-probe", userId="a765", sessionId="3eca", ipAddress="127.0.0.1", auth_method="openid-connect", auth_type="code", selected_credential_id="eb04", username="alice""#,
        r#"2026-12-06 07:29:44,528 DEBUG [org.keycloak.events] (executor-thread-1) type="LOGIN", realmId="2600", realmName="mfascope", clientId="mfascope-probe", userId="b623", sessionId="4e73", ipAddress="127.0.0.1", auth_method="openid-connect", grant_type="password", username="probe""#,
        r#"2026-12-06 07:29:44,780 DEBUG [org.keycloak.events] (kc-bruteforce-685-3) type="USER_DISABLED_BY_TEMPORARY_LOCKOUT", realmId="2600", realmName="mfascope", clientId="null", userId="073d", ipAddress="127.0.0.1", reason="brute_force_attack detected", not_before="2026-12-06T07:30:44", num_failures="2""#,
        r#"2026-12-06 07:29:45,180 WARN  [org.keycloak.events] (executor-thread-1) type="LOGIN_ERROR", realmId="2600", realmName="mfascope", clientId="mfascope-probe", userId="073d", ipAddress="127.0.0.1", error="user_temporarily_disabled", auth_method="openid-connect", grant_type="password", username="bob""#,
        r#"2026-12-06 07:31:20,851 DEBUG [org.keycloak.events] (executor-thread-1) type="UPDATE_TOTP", realmId="2600", realmName="mfascope", clientId="mfascope-probe", userId="01a3", ipAddress="127.0.0.1", credential_type="otp", custom_required_action="CONFIGURE_TOTP", username="carol""#,
        r#"2026-12-06 07:31:20,852 DEBUG [org.keycloak.events] (executor-thread-1) type="UPDATE_CREDENTIAL", realmId="2600", realmName="mfascope", clientId="mfascope-probe", userId="01a3", ipAddress="127.0.0.1", credential_type="otp", custom_required_action="CONFIGURE_TOTP", username="carol""#,
        r#"2026-12-06 07:31:21,291 DEBUG [org.keycloak.events] (executor-thread-1) operationType="ACTION", realmId="d1de", realmName="master", clientId="aced", userId="f7ce", ipAddress="127.0.0.1", resourceType="USER", resourcePath="users/01a3/credentials/f767""#,
        r#"2026-12-06 07:31:22,000 DEBUG [org.keycloak.events] (executor-thread-1) operationType="UPDATE", realmId="d1de", realmName="master", clientId="aced", userId="f7ce", ipAddress="127.0.0.1", resourceType="USER", resourcePath="users/01a3""#,
        "2026-12-06 07:29:37,554 INFO  [org.keycloak.services] (main) KC-SERVICES0032: Import finished successfully",
        "07:29:37,971 INFO  [io.quarkus] (main) Profile dev activated. ",
        "\tat org.keycloak.Foo.bar(Foo.java:12)",
    ];

    #[test]
    fn real_keycloak_26_lines_map_as_documented() {
        let got: Vec<String> = REAL
            .iter()
            .map(|l| match map_line(l.as_bytes(), &mut Default::default()) {
                Ok(crate::Mapped::Event(e)) => format!(
                    "{} {} {} {} {}",
                    e.user,
                    <&str>::from(e.action),
                    <&str>::from(e.factor),
                    <&str>::from(e.outcome),
                    e.actor.as_deref().unwrap_or("-")
                ),
                Ok(crate::Mapped::Ignored(k)) => format!("ignored {k}"),
                Err(e) => format!("rejected {e}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "a765 mfa_verify unknown failure -",
                "a765 mfa_verify unknown success -",
                "b623 primary_auth password success -",
                "073d lockout password failure -",
                "073d primary_auth password failure -",
                "01a3 enroll_complete totp success -",
                "ignored keycloak:UPDATE_CREDENTIAL(otp)",
                "01a3 factor_remove unknown success f7ce",
                "ignored keycloak:admin:UPDATE:USER",
                "ignored keycloak:log",
                "ignored keycloak:log",
                "rejected record is neither JSON nor a Keycloak `org.keycloak.events` log line",
            ]
        );
    }
}
