//! mfascope's own webhook body (version 1, docs/notify.md): the notification as JSON with its
//! idempotency key, signed with HMAC-SHA256 over `<unix seconds>.<body>` so a receiver can check
//! origin and freshness.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Request;
use crate::notification::Notification;
use crate::secret::Secret;

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Mfascope-Signature";

/// Version of the body's shape; bumped on an incompatible change.
const VERSION: &str = "1";

pub(super) fn request(n: &Notification, key: &Secret, now_ms: i64) -> Request {
    let key_text = n.key();
    let mut body = serde_json::json!({
        "version": VERSION,
        "id": key_text,
        "summary": n.summary(),
    });
    let fields = serde_json::to_value(n).expect("notifications serialize");
    if let (Some(body), serde_json::Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    if let Notification::SloAlert(a) = n {
        body["status"] = a.status.to_string().into();
    }
    let body = serde_json::to_vec(&body).expect("JSON values serialize");
    let t = now_ms.div_euclid(1000);
    Request {
        headers: vec![
            ("Idempotency-Key", key_text),
            (
                SIGNATURE_HEADER,
                format!("t={t},v1={}", sign(key, t, &body)),
            ),
        ],
        body,
    }
}

/// Hex HMAC-SHA256 of `<t>.<body>` under `key`.
///
/// ```
/// let key = mfascope_notify::Secret::new("k");
/// assert_eq!(mfascope_notify::format::sign(&key, 1, b"{}").len(), 64);
/// ```
pub fn sign(key: &Secret, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key size");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{episode, finding};

    #[test]
    fn the_body_names_its_key_and_the_signature_covers_time_and_body() {
        let key = Secret::new("k");
        let n = &Notification::episode(&episode(true), None)[1];
        let r = request(n, &key, 1_733_000_000_123);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["id"], n.key());
        assert_eq!(
            (v["kind"].as_str(), v["status"].as_str()),
            (Some("slo_alert"), Some("resolved"))
        );
        assert_eq!(r.headers[0], ("Idempotency-Key", n.key()));
        let expected = format!("t=1733000000,v1={}", sign(&key, 1_733_000_000, &r.body));
        assert_eq!(r.headers[1].1, expected);
        assert_ne!(
            sign(&key, 1_733_000_001, &r.body),
            sign(&key, 1_733_000_000, &r.body)
        );
        let f = request(&Notification::finding(finding(), None), &key, 0);
        let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
        assert_eq!(v["finding"]["id"], "3f2a9c");
    }
}
