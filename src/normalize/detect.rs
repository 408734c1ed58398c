//! Per-record format detection from marker keys, and envelope expansion.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::LogFormat;

/// Leaves of a known envelope: `{"records":[…]}` (Azure Event Hubs), `{"Records":[…]}`
/// (CloudTrail files), `{"response":{"authlogs":[…]}}` (Duo Admin API). `None` when `obj` is
/// not an envelope. Only records that mention an envelope key pay for the check.
pub(super) fn envelope(obj: &[u8]) -> Option<Result<Vec<&RawValue>, String>> {
    let finder = |needle: &[u8]| memchr::memmem::find(obj, needle).is_some();
    if !(finder(b"\"records\"") || finder(b"\"Records\"") || finder(b"\"authlogs\"")) {
        return None;
    }
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        records: Option<Vec<&'a RawValue>>,
        #[serde(borrow, rename = "Records")]
        records_upper: Option<Vec<&'a RawValue>>,
        #[serde(borrow)]
        response: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct DuoResponse<'a> {
        #[serde(borrow)]
        authlogs: Option<Vec<&'a RawValue>>,
    }
    let env: Envelope = match serde_json::from_slice(obj) {
        Ok(e) => e,
        // Not an envelope after all (or broken JSON): let the leaf path report it.
        Err(_) => return None,
    };
    if let Some(r) = env.records.or(env.records_upper) {
        return Some(Ok(r));
    }
    let resp = env.response?;
    match serde_json::from_str::<DuoResponse>(resp.get()) {
        Ok(DuoResponse {
            authlogs: Some(logs),
        }) => Some(Ok(logs)),
        Ok(_) => None,
        Err(e) => Some(Err(format!("duo: response.authlogs: {e}"))),
    }
}

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct Markers<'a> {
    // okta
    eventType: Option<IgnoredAny>,
    published: Option<IgnoredAny>,
    uuid: Option<IgnoredAny>,
    // entra
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    properties: Option<IgnoredAny>,
    createdDateTime: Option<IgnoredAny>,
    userPrincipalName: Option<IgnoredAny>,
    activityDisplayName: Option<IgnoredAny>,
    activityDateTime: Option<IgnoredAny>,
    // duo
    txid: Option<IgnoredAny>,
    access_device: Option<IgnoredAny>,
    // google workspace
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    events: Option<IgnoredAny>,
    // cloudtrail
    eventSource: Option<IgnoredAny>,
    eventName: Option<IgnoredAny>,
    eventTime: Option<IgnoredAny>,
    // keycloak
    realmId: Option<IgnoredAny>,
    #[serde(borrow)]
    loggerName: Option<Cow<'a, str>>,
    // canonical
    event_id: Option<IgnoredAny>,
    action: Option<IgnoredAny>,
    outcome: Option<IgnoredAny>,
    factor: Option<IgnoredAny>,
    #[serde(rename = "type")]
    type_: Option<IgnoredAny>,
}

/// Detect the format of one JSON object. `Err` when it is not valid JSON (with position).
pub(super) fn format(obj: &[u8]) -> Result<Option<LogFormat>, String> {
    if let Err(e) = std::str::from_utf8(obj) {
        return Err(format!(
            "invalid UTF-8 at byte {} of the record",
            e.valid_up_to()
        ));
    }
    let m: Markers = serde_json::from_slice(obj).map_err(|e| invalid_json(&e))?;
    Ok(classify(&m))
}

fn classify(m: &Markers) -> Option<LogFormat> {
    use LogFormat::*;
    let has = |o: &Option<IgnoredAny>| o.is_some();
    if has(&m.event_id) && has(&m.action) && has(&m.outcome) && has(&m.factor) {
        return Some(Canonical);
    }
    if has(&m.eventType) && (has(&m.published) || has(&m.uuid)) {
        return Some(Okta);
    }
    if m.kind.as_deref() == Some("admin#reports#activity") || (has(&m.events) && m.kind.is_some()) {
        return Some(Gworkspace);
    }
    if has(&m.eventSource) && has(&m.eventName) && has(&m.eventTime) {
        return Some(Cloudtrail);
    }
    let entra_category = m
        .category
        .as_deref()
        .is_some_and(|c| c.ends_with("SignInLogs") || c == "AuditLogs");
    if (entra_category && has(&m.properties))
        || (has(&m.createdDateTime) && has(&m.userPrincipalName))
        || (has(&m.activityDisplayName) && has(&m.activityDateTime))
    {
        return Some(Entra);
    }
    if has(&m.txid) || (has(&m.access_device) && has(&m.factor)) {
        return Some(Duo);
    }
    if (has(&m.realmId) && has(&m.type_)) || m.loggerName.as_deref() == Some("org.keycloak.events")
    {
        return Some(Keycloak);
    }
    None
}

/// Reason for a JSON object of no known format, listing its first keys to help the user.
pub(super) fn unrecognized_reason(obj: &[u8]) -> String {
    let keys: Vec<String> =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(obj)
            .map(|m| m.keys().take(8).cloned().collect())
            .unwrap_or_default();
    format!(
        "unrecognized log format (top-level keys: {}); force one with --log-format",
        if keys.is_empty() {
            "none".into()
        } else {
            keys.join(", ")
        }
    )
}

fn invalid_json(e: &serde_json::Error) -> String {
    format!("invalid JSON at column {}: {e}", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_vendor_by_its_markers() {
        let cases: &[(&str, LogFormat)] = &[
            (
                r#"{"eventType":"user.session.start","published":"x","uuid":"u"}"#,
                LogFormat::Okta,
            ),
            (
                r#"{"category":"SignInLogs","properties":{}}"#,
                LogFormat::Entra,
            ),
            (
                r#"{"createdDateTime":"x","userPrincipalName":"a"}"#,
                LogFormat::Entra,
            ),
            (r#"{"txid":"t","factor":"duo_push"}"#, LogFormat::Duo),
            (
                r#"{"kind":"admin#reports#activity","events":[]}"#,
                LogFormat::Gworkspace,
            ),
            (
                r#"{"eventSource":"s","eventName":"n","eventTime":"t"}"#,
                LogFormat::Cloudtrail,
            ),
            (
                r#"{"realmId":"r","type":"LOGIN","time":1}"#,
                LogFormat::Keycloak,
            ),
            (
                r#"{"event_id":"e","action":"a","outcome":"o","factor":"f"}"#,
                LogFormat::Canonical,
            ),
        ];
        for (json, want) in cases {
            assert_eq!(format(json.as_bytes()).unwrap(), Some(*want), "{json}");
        }
        assert_eq!(format(br#"{"hello":"world"}"#).unwrap(), None);
        assert!(
            format(br#"{"eventType":"#)
                .unwrap_err()
                .contains("invalid JSON")
        );
    }

    #[test]
    fn expands_envelopes_only_when_present() {
        let ev = envelope(br#"{"records":[{"a":1},{"b":2}]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(ev.len(), 2);
        let duo =
            envelope(br#"{"stat":"OK","response":{"authlogs":[{"txid":"1"}],"metadata":{}}}"#);
        assert_eq!(duo.unwrap().unwrap().len(), 1);
        assert!(envelope(br#"{"eventType":"x"}"#).is_none());
        assert!(envelope(br#"{"note":"records","eventType":"x"}"#).is_none());
    }
}
