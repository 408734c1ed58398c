//! The vendor registry: everything mfascope knows about one log format is declared once, by the
//! format's own module, as a [`Vendor`], and listed in [`VENDORS`]. Format detection, mapping,
//! the generator's renderings, the rule engine's Sigma logsources, the docs and the tests all
//! iterate this list; none of them names a vendor.
//!
//! Adding a vendor: a module under `crates/normalize/src/` with its mapper, renderer and
//! `VENDOR`; one line in [`VENDORS`]; the `LogFormat` and `Source` vocabulary entries; a sample
//! under `sample-data/` (docs/ARCHITECTURE.md, "Adding a vendor"). The registry's own tests fail
//! while any of these is missing.

use std::borrow::Cow;

use serde_json::Value;

use crate::detect::Markers;
use crate::fields::Ctx;
use crate::{LogFormat, MapResult};
use mfascope_core::event::{Event, Source};

/// A Sigma logsource (`product`, `service`) whose rules run on a vendor's raw records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logsource {
    /// Logsource product (`okta`, `azure`, …).
    pub product: &'static str,
    /// Logsource service (`okta`, `signinlogs`, …).
    pub service: &'static str,
}

/// An attack scenario a vendor's log cannot express, and why: what the coverage matrix
/// (docs/detection.md) says instead of "missed".
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limit {
    /// The generator's scenario name (`otp_replay`, `sim_swap`, …).
    pub scenario: &'static str,
    /// What the vendor does not log, in one sentence.
    pub reason: &'static str,
    /// The vendor documentation that shows it.
    pub doc: &'static str,
}

/// One log format and everything mfascope does with it.
pub struct Vendor {
    /// The `--log-format` value; its name is the vendor's name everywhere.
    pub format: LogFormat,
    /// The `source` column value of the events it maps to.
    pub source: Source,
    /// What the format is, for people (`Okta System Log`).
    pub title: &'static str,
    /// Maps one JSON record to an event, an ignored record or a reason.
    pub map: for<'a> fn(&[u8], &'a mut Ctx) -> MapResult<'a>,
    /// True when a JSON record's top-level keys mark it as this format. Tried in [`VENDORS`]
    /// order, so a more specific format comes before a more general one.
    pub detect: fn(&Markers<'_>) -> bool,
    /// Appends `event` as this vendor logs it (no newline); false, with nothing appended, when
    /// the vendor does not log such a step. The generator's renderer.
    pub render: fn(&Event<'_>, &mut String) -> bool,
    /// Sigma logsources of the raw records (empty: vendor-field rules do not apply).
    pub logsources: &'static [Logsource],
    /// Which of [`Vendor::logsources`] an event belongs to, by its `vendor_event_type`.
    pub logsource_of: fn(&str) -> usize,
    /// The bundled sample under `sample-data/` (the demo and the tests ingest it).
    pub sample: &'static str,
    /// Attack scenarios this log cannot express (empty: every scenario can be detected).
    pub limits: &'static [Limit],
}

impl std::fmt::Debug for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vendor")
            .field("format", &self.format)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Every format mfascope reads, in detection order.
pub static VENDORS: &[&Vendor] = &[
    &crate::canonical::VENDOR,
    &crate::okta::VENDOR,
    &crate::gworkspace::VENDOR,
    &crate::cloudtrail::VENDOR,
    &crate::entra::VENDOR,
    &crate::duo::VENDOR,
    &crate::keycloak::VENDOR,
];

/// The vendor of `format`; `None` for [`LogFormat::Auto`].
pub fn of_format(format: LogFormat) -> Option<&'static Vendor> {
    VENDORS.iter().copied().find(|v| v.format == format)
}

/// The vendor whose events carry `source`, if a log format maps to it.
pub fn of_source(source: Source) -> Option<&'static Vendor> {
    VENDORS.iter().copied().find(|v| v.source == source)
}

/// Renders serialized as JSON text (the common case of [`Vendor::render`]).
pub(crate) fn push_json(out: &mut String, value: &Value) -> bool {
    out.push_str(&value.to_string());
    true
}

/// For vendors with one logsource.
pub(crate) fn first_logsource(_: &str) -> usize {
    0
}

/// An optional string field as a JSON value (null when absent).
pub(crate) fn s(o: &Option<Cow<'_, str>>) -> Value {
    o.as_deref()
        .map_or(Value::Null, |v| Value::String(v.to_string()))
}

/// The English name vendors log for the countries the generator uses.
pub(crate) fn country_name(code: Option<&str>) -> &str {
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use clap::ValueEnum;

    use super::*;
    use crate::{LeafSink, Normalizer, Reject};
    use mfascope_core::event::{Action, Factor, Outcome};

    #[derive(Default)]
    struct Collect {
        events: Vec<Event<'static>>,
        dead: Vec<String>,
    }

    impl LeafSink for Collect {
        fn event(&mut self, _: usize, _: &[u8], e: Event<'_>) {
            self.events.push(e.into_owned());
        }
        fn ignored(&mut self, _: usize, _: String) {}
        fn dead(&mut self, _: usize, _: &[u8], reject: Reject) {
            self.dead.push(reject.reason);
        }
        fn ticket(&mut self, _: usize, _: &[u8], t: mfascope_core::ticket::Ticket) {
            self.dead.push(format!("unexpected ticket {}", t.id));
        }
    }

    #[test]
    fn every_log_format_has_exactly_one_vendor() {
        for format in LogFormat::value_variants() {
            let n = VENDORS.iter().filter(|v| v.format == *format).count();
            let want = usize::from(*format != LogFormat::Auto);
            assert_eq!(n, want, "{format:?} is registered {n} times");
        }
        for v in VENDORS {
            assert_eq!(of_source(v.source).map(|o| o.format), Some(v.format));
        }
    }

    /// The sample each vendor names ships with the project, is detected as that vendor's format
    /// and maps to its events without a dead letter.
    #[test]
    fn every_vendor_ships_a_sample_it_maps() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-data");
        for v in VENDORS {
            let path = format!("{dir}/{}", v.sample);
            let file = std::fs::File::open(&path)
                .unwrap_or_else(|e| panic!("{:?}: sample {path}: {e}", v.format));
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(file)
                .read_to_end(&mut text)
                .unwrap();
            let mut n = Normalizer::new(LogFormat::Auto);
            let mut sink = Collect::default();
            // As the reader frames files: a first line that opens a JSON value without closing
            // it starts a document read whole; otherwise every line is a record.
            let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
            let document = first.first() == Some(&b'{')
                && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_err();
            if document {
                n.record(&text, &mut sink);
            } else {
                for line in text.split(|b| *b == b'\n') {
                    n.record(line, &mut sink);
                }
            }
            assert!(
                sink.dead.is_empty(),
                "{:?}: {:?}",
                v.format,
                &sink.dead[..1]
            );
            assert!(
                sink.events.iter().filter(|e| e.source == v.source).count() > 10,
                "{:?}: {} events",
                v.format,
                sink.events.len()
            );
        }
    }

    /// What each vendor renders is detected as its own format and maps back without a dead
    /// letter, to events of its source and user (steps a vendor does not log are skipped).
    #[test]
    fn every_vendor_renders_what_its_mapper_reads() {
        let steps = [
            (Action::PrimaryAuth, Factor::Password, Outcome::Success),
            (Action::MfaChallenge, Factor::Push, Outcome::Challenge),
            (Action::MfaVerify, Factor::Push, Outcome::Success),
            (Action::MfaVerify, Factor::Totp, Outcome::Failure),
        ];
        for v in VENDORS {
            let (mut rendered, mut mapped) = (0, 0);
            for (k, step) in steps.iter().enumerate() {
                let mut e = Event::new(
                    v.source,
                    format!("0b9c2f1e-5a4d-4c3b-8a7f-00000000000{k}"),
                    1_714_557_600_000 + k as i64 * 1000,
                    "alice@example.com",
                    "t",
                    *step,
                );
                e.src_ip = Some("203.0.113.7".into());
                e.session_id = Some("s1".into());
                e.transaction_id = Some("t1".into());
                let mut line = String::new();
                if !(v.render)(&e, &mut line) {
                    assert!(line.is_empty(), "{:?}", v.format);
                    continue;
                }
                rendered += 1;
                assert_eq!(
                    crate::detect::format(line.as_bytes()).ok().flatten(),
                    (line.starts_with('{')).then_some(v.format),
                    "{:?} renders a record detected as another format: {line}",
                    v.format
                );
                let mut n = Normalizer::new(v.format);
                let mut sink = Collect::default();
                n.record(line.as_bytes(), &mut sink);
                assert!(
                    sink.dead.is_empty(),
                    "{:?}: {:?}: {line}",
                    v.format,
                    sink.dead
                );
                // A step the vendor logs without an authentication meaning (CloudTrail's
                // GetSessionToken for a challenge) is ignored, counted, never a dead letter.
                for got in &sink.events {
                    mapped += 1;
                    // Vendors name users their own way (an IAM user name has no domain).
                    assert!(got.user.contains("alice"), "{:?}: {line}", v.format);
                    assert_eq!(got.source, v.source, "{:?}: {line}", v.format);
                }
            }
            assert!(
                rendered >= 2 && mapped >= 2,
                "{:?} renders {rendered} of the steps, {mapped} map to events",
                v.format
            );
        }
    }

    /// A verdict renders only where the vendor logs one, and maps back to the same verdict:
    /// Okta and Entra log both the user's report and their own detections, Google only its own.
    #[test]
    fn verdicts_render_where_the_vendor_logs_them_and_map_back() {
        let mut rendered = vec![];
        for v in VENDORS.iter().filter(|v| v.format != LogFormat::Canonical) {
            for reason in ["fraud_reported", "threat_detected"] {
                let mut e = Event::new(
                    v.source,
                    "0b9c2f1e-5a4d-4c3b-8a7f-000000000009",
                    1_714_557_600_000,
                    "alice@example.com",
                    "t",
                    (Action::RiskSignal, Factor::None, Outcome::Unknown),
                );
                e.reason = Some(reason.into());
                let mut line = String::new();
                if !(v.render)(&e, &mut line) {
                    assert!(line.is_empty(), "{:?}", v.format);
                    continue;
                }
                rendered.push((v.format, reason));
                let mut sink = Collect::default();
                Normalizer::new(v.format).record(line.as_bytes(), &mut sink);
                assert!(sink.dead.is_empty(), "{:?}: {:?}", v.format, sink.dead);
                let got = &sink.events[..];
                assert_eq!(got.len(), 1, "{:?}: {line}", v.format);
                assert_eq!(
                    (got[0].action, got[0].reason.as_deref()),
                    (Action::RiskSignal, Some(reason)),
                    "{:?}: {line}",
                    v.format
                );
            }
        }
        assert_eq!(
            rendered,
            [
                (LogFormat::Okta, "fraud_reported"),
                (LogFormat::Okta, "threat_detected"),
                (LogFormat::Gworkspace, "threat_detected"),
                (LogFormat::Entra, "fraud_reported"),
                (LogFormat::Entra, "threat_detected"),
            ]
        );
    }
}
