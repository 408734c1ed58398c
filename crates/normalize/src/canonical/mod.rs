//! mfascope canonical NDJSON: the event schema itself (written by the verifier, probes and the
//! generator). Unknown fields are ignored, so extra fields — secrets included — are never stored.

use super::fields::Ctx;
use super::{LogFormat, MapResult, event, parse};
use mfascope_core::event::{Event, Source};

use crate::detect::Markers;
use crate::vendor::Vendor;

/// The mfascope canonical NDJSON (docs/schema.md) in the vendor registry.
pub(crate) static VENDOR: Vendor = Vendor {
    format: LogFormat::Canonical,
    source: Source::Canonical,
    title: "mfascope canonical NDJSON (docs/schema.md)",
    map,
    detect,
    render,
    logsources: &[],
    logsource_of: crate::vendor::first_logsource,
    sample: "canonical-verifier.ndjson.gz",
    limits: &[],
};

fn detect(m: &Markers<'_>) -> bool {
    m.has("event_id") && m.has("action") && m.has("outcome") && m.has("factor")
}

/// Canonical NDJSON as mfascope writes it: the source becomes `canonical` (probe events keep
/// theirs) and the vendor event type names the action.
fn render(e: &Event<'_>, out: &mut String) -> bool {
    let mut c = e.clone();
    if c.source != Source::Probe {
        c.source = Source::Canonical;
        c.vendor_event_type = c.action.as_str().into();
    }
    crate::vendor::push_json(out, &serde_json::to_value(&c).expect("events serialize"))
}

super::record_type!(CanonicalRecord => Event);

/// Map one canonical record.
pub(super) fn map<'a>(raw: &[u8], ctx: &'a mut Ctx) -> MapResult<'a> {
    let mut e = parse::<CanonicalRecord>(LogFormat::Canonical, raw, &mut ctx.json)?;
    if e.event_id.trim().is_empty() {
        return Err("canonical: event_id: empty".into());
    }
    if e.user.trim().is_empty() {
        return Err("canonical: user: empty".into());
    }
    e.phishing_resistant |= e.factor.is_phishing_resistant();
    event(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mapped;
    use mfascope_core::event::{Action, Factor, Outcome};

    #[test]
    fn round_trips_and_rejects_bad_enums() {
        let raw = br#"{"event_id":"v-1","time":"2024-05-01T10:00:00.250Z","source":"verifier","user":"alice","action":"mfa_verify","factor":"totp","outcome":"failure","reason":"replay","latency_ms":420,"vendor_event_type":"verify","otp":"123456"}"#;
        let mut ctx = Ctx::default();
        let Mapped::Event(e) = map(raw, &mut ctx).unwrap() else {
            panic!()
        };
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Totp, Outcome::Failure)
        );
        assert_eq!(e.latency_ms, Some(420));
        let err = map(br#"{"event_id":"v","time":1714557600000,"source":"verifier","user":"a","action":"fly","factor":"totp","outcome":"success","vendor_event_type":"x"}"#, &mut Ctx::default()).unwrap_err();
        assert!(err.contains("action") && err.contains("fly"), "{err}");
    }
}
