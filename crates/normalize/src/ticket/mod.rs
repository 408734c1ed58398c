//! Support tickets (the M5 SLI, "MFA-induced support tickets"): recognising ticket exports by
//! their envelopes (Zendesk `tickets[]`, Jira `issues[]`, ServiceNow `result[]`) and CSV files,
//! mapping each ticket to a [`Ticket`], redacting what must not be stored, and deciding whether it
//! is MFA-related ([`classify`]). Pure functions of bytes; it never reads files or writes rows.

pub mod classify;
pub mod csv;
mod jira;
mod servicenow;
mod zendesk;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::Value;
use serde_json::value::RawValue;

use mfascope_core::ticket::Ticket;
use mfascope_core::time::{check_range, parse_rfc3339};

use crate::pseudonym::Pseudonymizer;
use classify::{Classifier, TicketText};

/// How tickets are classified and read.
#[derive(Debug)]
pub struct TicketConfig {
    /// Which tickets are MFA-related.
    pub classifier: Classifier,
    /// Column names of CSV ticket exports.
    pub columns: csv::Columns,
}

impl Default for TicketConfig {
    fn default() -> Self {
        TicketConfig {
            classifier: Classifier::builtin(),
            columns: csv::Columns::default(),
        }
    }
}

/// The ticketing system an export came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// Zendesk Incremental Ticket Export (`GET /api/v2/incremental/tickets…`).
    Zendesk,
    /// Jira Cloud / Jira Service Management search (`GET /rest/api/3/search`).
    Jira,
    /// ServiceNow Table API (`GET /api/now/table/incident`).
    ServiceNow,
    /// A CSV file with a column mapping.
    Csv,
}

impl System {
    /// Lower-case name, as stored in the `system` column.
    pub fn as_str(self) -> &'static str {
        match self {
            System::Zendesk => "zendesk",
            System::Jira => "jira",
            System::ServiceNow => "servicenow",
            System::Csv => "csv",
        }
    }
}

/// The leaves of a ticket export, with what the export sideloads for them.
pub struct Export<'a> {
    /// Which system wrote it.
    pub system: System,
    /// One JSON object per ticket.
    pub tickets: Vec<&'a RawValue>,
    /// Zendesk `users[]` sideload (`include=users`): requester id → email.
    pub users: HashMap<u64, String>,
}

/// The export `obj` is, if it is one: `None` for anything else (so vendor log envelopes keep
/// their own path). Only objects that mention an envelope key pay for the parse.
pub fn envelope(obj: &[u8]) -> Option<Export<'_>> {
    let has = |needle: &[u8]| memchr::memmem::find(obj, needle).is_some();
    if !(has(b"\"tickets\"") || has(b"\"issues\"") || has(b"\"result\"")) {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        tickets: Option<Vec<&'a RawValue>>,
        #[serde(borrow)]
        issues: Option<Vec<&'a RawValue>>,
        #[serde(borrow)]
        result: Option<&'a RawValue>,
        #[serde(default)]
        users: Vec<zendesk::User>,
    }
    let env: Envelope = serde_json::from_slice(obj).ok()?;
    if let Some(tickets) = env.tickets {
        let users = env
            .users
            .into_iter()
            .filter_map(|u| Some((u.id, u.email?)))
            .collect();
        return Some(Export {
            system: System::Zendesk,
            tickets,
            users,
        });
    }
    if let Some(issues) = env.issues {
        return Some(Export {
            system: System::Jira,
            tickets: issues,
            users: HashMap::new(),
        });
    }
    // `result` is a common word: only an array of ServiceNow records (they carry `sys_id`)
    // makes a ServiceNow export.
    let result = env.result?;
    let rows: Vec<&RawValue> = serde_json::from_str(result.get()).ok()?;
    if !rows.is_empty() && !rows.iter().any(|r| r.get().contains("\"sys_id\"")) {
        return None;
    }
    Some(Export {
        system: System::ServiceNow,
        tickets: rows,
        users: HashMap::new(),
    })
}

/// Map one ticket of `export` (a JSON object) to a [`Ticket`]: the reason names the field.
pub fn map_json(
    export: &Export<'_>,
    leaf: &[u8],
    cfg: &TicketConfig,
    pseudonymizer: Option<&Pseudonymizer>,
) -> Result<Ticket, String> {
    let system = export.system.as_str();
    let value: Value =
        serde_json::from_slice(leaf).map_err(|e| format!("{system} ticket: invalid JSON: {e}"))?;
    let Value::Object(obj) = &value else {
        return Err(format!("{system} ticket: not a JSON object"));
    };
    let ticket = match export.system {
        System::Zendesk => zendesk::map(obj, &export.users),
        System::Jira => jira::map(obj),
        System::ServiceNow => servicenow::map(obj),
        System::Csv => unreachable!("CSV rows are not JSON"),
    }
    .map_err(|reason| format!("{system} ticket: {reason}"))?;
    Ok(finish(ticket, cfg, pseudonymizer))
}

/// Classify, redact and pseudonymize a mapped ticket.
pub(crate) fn finish(
    mut t: Ticket,
    cfg: &TicketConfig,
    pseudonymizer: Option<&Pseudonymizer>,
) -> Ticket {
    t.tags.retain(|tag| !tag.trim().is_empty());
    t.match_reason = cfg.classifier.classify(&TicketText {
        tags: &t.tags,
        category: t.category.as_deref(),
        subject: t.subject.as_deref(),
    });
    t.subject = t.subject.as_deref().map(redact_subject);
    if let Some(reason) = &mut t.match_reason
        && reason.starts_with("subject:")
    {
        *reason = redact_subject(reason);
    }
    if let Some(p) = pseudonymizer {
        t.requester = t.requester.as_deref().map(|r| p.identity(r));
        // Free text can name people; the match reason keeps the keyword that matched.
        t.subject = None;
    }
    t
}

/// Replace what could be a one-time code (a run of 6–10 digits) or a shared secret (16+
/// base32 characters) with `[redacted]`.
///
/// ```
/// use mfascope_normalize::ticket::redact_subject;
///
/// assert_eq!(redact_subject("code 123456 rejected"), "code [redacted] rejected");
/// assert_eq!(redact_subject("secret JBSWY3DPEHPK3PXP lost"), "secret [redacted] lost");
/// assert_eq!(redact_subject("Locked out since 2024"), "Locked out since 2024");
/// ```
pub fn redact_subject(s: &str) -> String {
    static SECRETS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(?:\d[\d ]{4,11}\d|[A-Z2-7]{16,}=*|[a-z2-7]{16,}=*)\b")
            .expect("valid pattern")
    });
    SECRETS
        .replace_all(s, |c: &regex::Captures<'_>| {
            let m = &c[0];
            let digits = m.bytes().filter(u8::is_ascii_digit).count();
            let base32 = !m.bytes().any(|b| b == b' ') && m.len() >= 16;
            if (6..=10).contains(&digits) && m.bytes().all(|b| b.is_ascii_digit() || b == b' ')
                || base32
                    && m.bytes()
                        .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            {
                "[redacted]".to_string()
            } else {
                m.to_string()
            }
        })
        .into_owned()
}

/// A ticket time: RFC 3339, Jira's `2024-01-01T10:30:00.000+0000`, or ServiceNow's
/// `2024-01-01 10:30:00` (UTC); `field` names it in the error.
pub(crate) fn parse_time(field: &str, s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = parse_rfc3339(s) {
        return Ok(ms);
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, f) {
            return check_range(t.timestamp_millis()).map_err(|e| format!("{field}: {e}"));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return check_range(t.and_utc().timestamp_millis())
                .map_err(|e| format!("{field}: {e}"));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        return check_range(t.and_utc().timestamp_millis()).map_err(|e| format!("{field}: {e}"));
    }
    Err(format!(
        "{field}: {s:?} is not a time (RFC 3339, 2024-01-01T10:30:00.000+0000 or 2024-01-01 10:30:00 UTC)"
    ))
}

/// A JSON string (or number, for ids) at `key`, trimmed; `None` when absent, null or empty.
pub(crate) fn text(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The required string at `key`, or an error naming it.
pub(crate) fn required(obj: &serde_json::Map<String, Value>, key: &str) -> Result<String, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(format!("{key}: missing")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(format!("{key}: empty")),
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!("{key}: expected a string, found {}", kind(other))),
    }
}

/// The required time at `key`.
pub(crate) fn required_time(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<i64, String> {
    parse_time(key, &required(obj, key)?)
}

/// The optional time at `key` (an unparsable value is still an error: nothing invented).
pub(crate) fn optional_time(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<i64>, String> {
    text(obj, key).map(|s| parse_time(key, &s)).transpose()
}

/// Strings of the array at `key` (non-strings are an error naming the index).
pub(crate) fn strings(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Vec<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!(
                    "{key}[{i}]: expected a string, found {}",
                    kind(other)
                )),
            })
            .collect(),
        Some(other) => Err(format!("{key}: expected an array, found {}", kind(other))),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The shipped configuration, compiled once and shared.
pub fn default_config() -> Arc<TicketConfig> {
    static DEFAULT: LazyLock<Arc<TicketConfig>> = LazyLock::new(Arc::default);
    DEFAULT.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_vendor_shape_parse_to_the_same_instant() {
        let want = parse_rfc3339("2024-01-01T10:30:00Z").unwrap();
        for s in [
            "2024-01-01T10:30:00Z",
            "2024-01-01T10:30:00.000+0000",
            "2024-01-01T11:30:00.000+0100",
            "2024-01-01 10:30:00",
            "2024-01-01T10:30:00",
        ] {
            assert_eq!(parse_time("created", s), Ok(want), "{s}");
        }
        let e = parse_time("created_at", "yesterday").unwrap_err();
        assert!(
            e.starts_with("created_at: \"yesterday\" is not a time"),
            "{e}"
        );
    }

    #[test]
    fn subjects_lose_codes_and_secrets_but_keep_years_and_words() {
        assert_eq!(redact_subject("OTP 12345678 fails"), "OTP [redacted] fails");
        assert_eq!(redact_subject("code 123 456 bad"), "code [redacted] bad");
        assert_eq!(redact_subject("ticket 2024-01-01"), "ticket 2024-01-01");
        assert_eq!(
            redact_subject("authenticationfailures happen"),
            "authenticationfailures happen"
        );
    }

    #[test]
    fn result_arrays_without_servicenow_records_are_not_tickets() {
        assert!(envelope(br#"{"result":[{"x":1}]}"#).is_none());
        assert!(envelope(br#"{"result":"ok"}"#).is_none());
        let e = envelope(br#"{"result":[{"sys_id":"a","number":"INC1"}]}"#).unwrap();
        assert_eq!(e.system, System::ServiceNow);
    }
}

#[cfg(test)]
mod exports {
    //! Hand-made exports in each system's documented shape, through the normalizer.
    use super::*;
    use crate::{LeafSink, LogFormat, Normalizer, Reject};

    #[derive(Default)]
    struct Collect {
        tickets: Vec<Ticket>,
        dead: Vec<String>,
    }

    impl LeafSink for Collect {
        fn event(&mut self, _: usize, _: &[u8], e: mfascope_core::event::Event<'_>) {
            self.dead.push(format!("unexpected event {}", e.event_id));
        }
        fn ignored(&mut self, _: usize, kind: String) {
            self.dead.push(format!("unexpected ignored {kind}"));
        }
        fn dead(&mut self, _: usize, _: &[u8], reject: Reject) {
            self.dead.push(reject.reason);
        }
        fn ticket(&mut self, _: usize, _: &[u8], t: Ticket) {
            self.tickets.push(t);
        }
    }

    fn run(doc: &str, n: Normalizer) -> Collect {
        let mut c = Collect::default();
        let mut n = n;
        n.record(doc.as_bytes(), &mut c);
        c
    }

    #[test]
    fn zendesk_incremental_export_with_sideloaded_users() {
        let doc = r#"{"tickets":[
          {"id":35436,"created_at":"2024-05-01T09:00:00Z","updated_at":"2024-05-01T10:00:00Z",
           "type":"incident","subject":"Lost phone, cannot sign in","status":"open",
           "requester_id":20978392,"tags":["enterprise"]},
          {"id":35437,"created_at":"2024-05-01T11:00:00Z","subject":"Printer",
           "status":"solved","requester_id":999,"tags":[]},
          {"id":35438,"subject":"no date","requester_id":1}
        ],"users":[{"id":20978392,"email":"ann@example.com"}],
        "next_page":null,"end_of_stream":true,"end_time":1714561200}"#;
        let c = run(doc, Normalizer::new(LogFormat::Auto));
        assert_eq!(c.dead, ["zendesk ticket: created_at: missing"]);
        let [a, b] = &c.tickets[..] else {
            panic!("{:?}", c.tickets)
        };
        assert_eq!(a.id, "35436");
        assert_eq!(a.requester.as_deref(), Some("ann@example.com"));
        assert_eq!(a.match_reason.as_deref(), Some("subject: \"lost phone\""));
        assert_eq!(
            a.updated,
            Some(parse_rfc3339("2024-05-01T10:00:00Z").unwrap())
        );
        assert_eq!(b.requester.as_deref(), Some("zendesk:user:999"));
        assert_eq!(b.match_reason, None);
    }

    #[test]
    fn jira_service_management_search_results() {
        let doc = r#"{"expand":"names,schema","startAt":0,"maxResults":50,"total":2,"issues":[
          {"id":"10001","key":"ITSM-1","fields":{"summary":"Need a new authenticator",
            "created":"2024-05-01T10:30:00.000+0200","updated":"2024-05-02T08:00:00.000+0000",
            "status":{"name":"Waiting for support"},"labels":[],
            "issuetype":{"name":"Service Request"},
            "customfield_10010":{"requestType":{"id":"12","name":"Reset MFA"}},
            "reporter":{"accountId":"5b10a2844c20165700ede21g","emailAddress":"bob@example.com"}}},
          {"id":"10002","key":"ITSM-2","fields":{"summary":"VPN slow",
            "created":"2024-05-01T12:00:00.000+0000","labels":["network"],
            "components":[{"name":"VPN"}],"issuetype":{"name":"Incident"},
            "reporter":{"accountId":"abc"}}}
        ]}"#;
        let cfg = TicketConfig {
            classifier: Classifier::parse("categories = [\"Reset MFA\"]", "test").unwrap(),
            ..TicketConfig::default()
        };
        let c = run(doc, Normalizer::new(LogFormat::Auto).tickets(Arc::new(cfg)));
        assert!(c.dead.is_empty(), "{:?}", c.dead);
        let [a, b] = &c.tickets[..] else { panic!() };
        assert_eq!(a.created, parse_rfc3339("2024-05-01T08:30:00Z").unwrap());
        assert_eq!(a.category.as_deref(), Some("Reset MFA"));
        assert_eq!(a.match_reason.as_deref(), Some("category: Reset MFA"));
        assert_eq!(a.status.as_deref(), Some("Waiting for support"));
        assert_eq!(b.requester.as_deref(), Some("jira:user:abc"));
        assert_eq!(b.tags, ["network", "VPN"]);
    }

    #[test]
    fn servicenow_table_api_raw_and_display_values() {
        let doc = r#"{"result":[
          {"sys_id":"9d385017c611228701d22104cc95c371","number":"INC0010001",
           "short_description":"OTP code 482913 never arrives","sys_created_on":"2024-05-01 10:00:00",
           "sys_updated_on":"2024-05-01 12:00:00","state":"2","category":"inquiry",
           "subcategory":"mfa","caller_id":{"link":"https://x/api/now/table/sys_user/681","value":"681"},
           "caller_id.email":"cat@example.com"},
          {"sys_id":"a1","number":{"display_value":"INC0010002","value":"INC0010002"},
           "short_description":{"display_value":"Email quota","value":"Email quota"},
           "sys_created_on":{"display_value":"01/05/2024 03:00:00","value":"2024-05-01 10:00:00"},
           "state":{"display_value":"New","value":"1"},"caller_id":""},
          {"sys_id":"a2","number":"INC0010003","sys_created_on":"01.05.2024"}
        ]}"#;
        let c = run(doc, Normalizer::new(LogFormat::Auto));
        assert_eq!(c.dead.len(), 1);
        assert!(
            c.dead[0].starts_with("servicenow ticket: sys_created_on: \"01.05.2024\""),
            "{:?}",
            c.dead
        );
        let [a, b] = &c.tickets[..] else { panic!() };
        assert_eq!(
            a.subject.as_deref(),
            Some("OTP code [redacted] never arrives")
        );
        assert_eq!(a.requester.as_deref(), Some("cat@example.com"));
        assert_eq!(a.match_reason.as_deref(), Some("tag: mfa"));
        assert_eq!(
            (b.id.as_str(), b.status.as_deref()),
            ("INC0010002", Some("New"))
        );
        assert_eq!(b.created, parse_rfc3339("2024-05-01T10:00:00Z").unwrap());
        assert_eq!(b.requester, None);
    }

    #[test]
    fn pseudonymized_tickets_keep_no_subject_and_no_email() {
        let doc = r#"{"tickets":[{"id":1,"created_at":"2024-05-01T09:00:00Z",
            "subject":"2FA broken for Ann Smith","requester_id":7}],
            "users":[{"id":7,"email":"ann@example.com"}]}"#;
        let p = Arc::new(Pseudonymizer::new(&[7; 32]));
        let c = run(
            doc,
            Normalizer::new(LogFormat::Auto).pseudonymize(Some(p.clone())),
        );
        let t = &c.tickets[0];
        assert_eq!(t.subject, None);
        assert_eq!(
            t.requester.as_deref(),
            Some(p.identity("ann@example.com").as_str())
        );
        assert_eq!(t.match_reason.as_deref(), Some("subject: \"2fa\""));
    }
}
