//! Per-record format detection from marker keys, and envelope expansion.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::LogFormat;
use crate::vendor::VENDORS;

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

/// Top-level keys whose value (a string) detection reads; the values of all others are skipped.
const VALUE_KEYS: [&str; 3] = ["category", "kind", "loggerName"];

/// What format detection sees of one JSON object: its top-level keys, and the string values of
/// [`VALUE_KEYS`]. Each vendor's [`Vendor::detect`](crate::vendor::Vendor::detect) decides from
/// it.
#[derive(Debug, Default)]
pub struct Markers<'a> {
    keys: Vec<Cow<'a, str>>,
    values: [Option<Cow<'a, str>>; VALUE_KEYS.len()],
}

impl Markers<'_> {
    /// True when the object has `key` at its top level.
    pub fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// The string value of `key`, one of [`VALUE_KEYS`].
    pub fn value(&self, key: &str) -> Option<&str> {
        let i = VALUE_KEYS.iter().position(|k| *k == key)?;
        self.values[i].as_deref()
    }
}

impl<'de> Deserialize<'de> for Markers<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Markers<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Markers<'de>, M::Error> {
                let mut m = Markers::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match VALUE_KEYS.iter().position(|k| *k == key) {
                        Some(i) => {
                            #[derive(Deserialize)]
                            struct Text<'a>(#[serde(borrow)] Option<Cow<'a, str>>);
                            m.values[i] = map.next_value::<Text<'de>>()?.0;
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    m.keys.push(key);
                }
                Ok(m)
            }
        }
        d.deserialize_map(Visit)
    }
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
    Ok(VENDORS.iter().find(|v| (v.detect)(&m)).map(|v| v.format))
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
