//! Maps raw vendor records to canonical events. Format detection is per record (sticky to the
//! last format seen, re-detected when a record does not fit), envelopes (`records[]`,
//! `Records[]`, `response.authlogs[]`, JSON arrays) are expanded into their leaf records, and
//! every leaf ends as exactly one of: an event, an ignored non-auth record (counted by type), or
//! a dead letter with a precise reason. Pure functions of bytes; no I/O, no threads.

mod canonical;
mod cloudtrail;
mod detect;
mod duo;
mod entra;
pub mod fields;
mod gworkspace;
mod keycloak;
pub mod latency;
mod okta;
pub mod pseudonym;
pub mod redact;
pub mod ticket;
pub mod vendor;

pub use detect::Markers;

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use mfascope_core::event::Event;
use mfascope_core::ticket::Ticket;
use pseudonym::Pseudonymizer;
use ticket::TicketConfig;

/// Input log formats (`--log-format`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum LogFormat {
    /// Detect per record.
    Auto,
    /// Okta System Log.
    Okta,
    /// Microsoft Entra ID sign-in and audit logs.
    Entra,
    /// Duo Admin API authentication log v2.
    Duo,
    /// Google Workspace login activities.
    Gworkspace,
    /// AWS CloudTrail.
    Cloudtrail,
    /// Keycloak events (JSON or `org.keycloak.events` log lines).
    Keycloak,
    /// mfascope canonical NDJSON.
    Canonical,
}

impl LogFormat {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What one leaf record mapped to.
#[derive(Debug)]
pub enum Mapped<'a> {
    /// A canonical event.
    Event(Box<Event<'a>>),
    /// A record that is not about authentication; `kind` is `format:type`.
    Ignored(String),
}

/// Why a record could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// The format the record was taken for, when known.
    pub format: Option<LogFormat>,
    /// Precise reason naming the field or position.
    pub reason: String,
}

/// Receives the leaves of one raw record. `offset` is the leaf's byte offset within the record.
/// Events borrow the parser's buffers, so a sink copies what it keeps before returning.
pub trait LeafSink {
    /// A mapped event; `raw` is the leaf's bytes.
    fn event(&mut self, offset: usize, raw: &[u8], event: Event<'_>);
    /// A deliberately ignored record of the given kind.
    fn ignored(&mut self, offset: usize, kind: String);
    /// A record that failed; `raw` is the leaf's bytes.
    fn dead(&mut self, offset: usize, raw: &[u8], reject: Reject);
    /// A support ticket (from a ticket export); `raw` is the ticket's bytes.
    fn ticket(&mut self, offset: usize, raw: &[u8], ticket: Ticket);
}

/// Result of a vendor mapper.
pub(crate) type MapResult<'a> = Result<Mapped<'a>, String>;

/// Per-worker normalizer state: the forced or last detected format and lookup caches.
///
/// ```
/// use mfascope_core::event::{Action, Event, Factor, Outcome};
/// use mfascope_normalize::{LeafSink, LogFormat, Normalizer, Reject};
///
/// /// Keeps the events; every record must map.
/// #[derive(Default)]
/// struct Events(Vec<Event<'static>>);
///
/// impl LeafSink for Events {
///     fn event(&mut self, _offset: usize, _raw: &[u8], e: Event<'_>) {
///         self.0.push(e.into_owned());
///     }
///     fn ignored(&mut self, _offset: usize, kind: String) {
///         panic!("ignored {kind}");
///     }
///     fn dead(&mut self, _offset: usize, _raw: &[u8], reject: Reject) {
///         panic!("dead letter: {}", reject.reason);
///     }
///     fn ticket(&mut self, _offset: usize, _raw: &[u8], t: mfascope_core::ticket::Ticket) {
///         panic!("ticket {}", t.id);
///     }
/// }
///
/// // An Okta System Log record; the format is detected from its keys.
/// let okta = br#"{"uuid":"u1","published":"2024-05-01T10:00:00.000Z",
///     "actor":{"alternateId":"alice@example.com","type":"User"},
///     "eventType":"user.authentication.auth_via_mfa","outcome":{"result":"SUCCESS"},
///     "debugContext":{"debugData":{"factor":"OKTA_VERIFY_PUSH"}}}"#;
/// let mut events = Events::default();
/// Normalizer::new(LogFormat::Auto).record(okta, &mut events);
/// let e = &events.0[0];
/// assert_eq!((e.action, e.factor, e.outcome), (Action::MfaVerify, Factor::Push, Outcome::Success));
/// assert_eq!(e.user, "alice@example.com");
/// ```
pub struct Normalizer {
    forced: Option<LogFormat>,
    output: Output,
    last: Option<LogFormat>,
    ctx: fields::Ctx,
    tickets: Arc<TicketConfig>,
}

impl Normalizer {
    /// A normalizer for `format` (`Auto` detects per record).
    pub fn new(format: LogFormat) -> Self {
        Normalizer {
            forced: (format != LogFormat::Auto).then_some(format),
            output: Output::default(),
            last: None,
            ctx: fields::Ctx::default(),
            tickets: ticket::default_config(),
        }
    }

    /// How ticket exports are classified and CSV columns read (default: the shipped rules and
    /// guessed headers).
    pub fn tickets(mut self, config: Arc<TicketConfig>) -> Self {
        self.tickets = config;
        self
    }

    /// Normalize a CSV ticket export (a whole file: header and rows). Each row is a ticket or a
    /// dead letter naming its column; `sink` gets each row's byte offset within `data`, in
    /// order.
    pub fn csv_tickets(&mut self, data: &[u8], sink: &mut impl LeafSink) {
        let pseudonymizer = self.output.pseudonymizer.as_deref();
        for row in ticket::csv::rows(data, &self.tickets, pseudonymizer) {
            emit_ticket(row.bytes.start, &data[row.bytes.clone()], row.ticket, sink);
        }
    }

    /// The date of log lines that carry only a time of day (Keycloak's dateless console
    /// patterns); without it such lines are dead letters saying the date is missing.
    pub fn assume_date(mut self, date: Option<chrono::NaiveDate>) -> Self {
        self.ctx.assume_date = date;
        self
    }

    /// Also keep each vendor record, redacted, in the event's `raw` field (for vendor-field
    /// rules). Costs a JSON parse and re-serialization per record that could hold a secret.
    pub fn keep_raw(mut self, keep: bool) -> Self {
        self.output.keep_raw = keep;
        self
    }

    /// Replace user, actor and client IP of every event by keyed pseudonyms. Raw vendor records
    /// carry the identities too, so none is kept (see [`Normalizer::withholds_raw`]).
    pub fn pseudonymize(mut self, with: Option<Arc<Pseudonymizer>>) -> Self {
        self.output.pseudonymizer = with;
        self
    }

    /// True when raw records must not leave the normalizer (pseudonymization): sinks keep a
    /// dead letter's position, length and reason but not its text.
    pub fn withholds_raw(&self) -> bool {
        self.output.pseudonymizer.is_some()
    }

    /// Normalize one raw record (a line, or a top-level JSON value), expanding envelopes.
    pub fn record(&mut self, raw: &[u8], sink: &mut impl LeafSink) {
        let trimmed_start = raw
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(raw.len());
        let body = trim_ascii_end(&raw[trimmed_start..]);
        match body.first() {
            None => {}
            Some(b'[') => self.array(raw, trimmed_start, body, sink),
            Some(b'{') => self.object(raw, trimmed_start, body, sink),
            Some(_) => self.text(trimmed_start, body, sink),
        }
    }

    fn array<'a>(&mut self, raw: &'a [u8], start: usize, body: &'a [u8], sink: &mut impl LeafSink) {
        match serde_json::from_slice::<Vec<&'a RawValue>>(body) {
            Ok(items) => self.leaves(raw, items, sink),
            Err(e) => sink.dead(
                start,
                body,
                Reject {
                    format: None,
                    reason: format!("invalid JSON array: {e}"),
                },
            ),
        }
    }

    fn leaves<'a>(&mut self, raw: &'a [u8], leaves: Vec<&'a RawValue>, sink: &mut impl LeafSink) {
        for leaf in leaves {
            let bytes = leaf.get().as_bytes();
            let offset = bytes.as_ptr() as usize - raw.as_ptr() as usize;
            if bytes.first() == Some(&b'{') {
                self.leaf(offset, bytes, sink);
            } else {
                sink.dead(
                    offset,
                    bytes,
                    Reject {
                        format: None,
                        reason: "envelope element is not a JSON object".into(),
                    },
                );
            }
        }
    }

    fn text(&mut self, offset: usize, line: &[u8], sink: &mut impl LeafSink) {
        let result = match self.forced {
            Some(LogFormat::Keycloak) | None => keycloak::map_line(line, &mut self.ctx),
            Some(f) => Err(format!("{}: record is not JSON", f.as_str())),
        };
        let format = Some(LogFormat::Keycloak).filter(|_| keycloak::is_event_line(line));
        emit(offset, line, format, result, sink, &self.output);
    }

    /// A top-level object: the forced or last format first (the hot path), then — only when
    /// that fails — envelope expansion, then detection.
    fn object<'a>(
        &mut self,
        raw: &'a [u8],
        offset: usize,
        obj: &'a [u8],
        sink: &mut impl LeafSink,
    ) {
        let Some(format) = self.forced.or(self.last) else {
            if !self.envelope(raw, offset, obj, sink) {
                self.detect_and_map(offset, obj, sink);
            }
            return;
        };
        let failure = match map_json(format, obj, &mut self.ctx) {
            Ok(mapped) => return emit(offset, obj, Some(format), Ok(mapped), sink, &self.output),
            Err(reason) => reason,
        };
        if self.envelope(raw, offset, obj, sink) {
            return;
        }
        if self.forced.is_some() {
            sink.dead(
                offset,
                obj,
                Reject {
                    format: Some(format),
                    reason: failure,
                },
            );
        } else {
            self.detect_and_map(offset, obj, sink);
        }
    }

    /// Expand `obj` when it is a known envelope; false when it is not one.
    fn envelope<'a>(
        &mut self,
        raw: &'a [u8],
        offset: usize,
        obj: &'a [u8],
        sink: &mut impl LeafSink,
    ) -> bool {
        match detect::envelope(obj) {
            Some(Ok(leaves)) => self.leaves(raw, leaves, sink),
            Some(Err(reason)) => sink.dead(
                offset,
                obj,
                Reject {
                    format: None,
                    reason,
                },
            ),
            None => match ticket::envelope(obj) {
                Some(export) => self.ticket_leaves(raw, &export, sink),
                None => return false,
            },
        }
        true
    }

    /// The tickets of a ticket export: each a ticket or a dead letter naming the field.
    fn ticket_leaves(&mut self, raw: &[u8], export: &ticket::Export<'_>, sink: &mut impl LeafSink) {
        let pseudonymizer = self.output.pseudonymizer.as_deref();
        for leaf in &export.tickets {
            let bytes = leaf.get().as_bytes();
            let offset = bytes.as_ptr() as usize - raw.as_ptr() as usize;
            let result = ticket::map_json(export, bytes, &self.tickets, pseudonymizer);
            emit_ticket(offset, bytes, result, sink);
        }
    }

    /// An envelope element: the forced or last format, else detection.
    fn leaf(&mut self, offset: usize, obj: &[u8], sink: &mut impl LeafSink) {
        if let Some(format) = self.forced {
            let result = map_json(format, obj, &mut self.ctx);
            return emit(offset, obj, Some(format), result, sink, &self.output);
        }
        if let Some(last) = self.last
            && let Ok(mapped) = map_json(last, obj, &mut self.ctx)
        {
            return emit(offset, obj, Some(last), Ok(mapped), sink, &self.output);
        }
        self.detect_and_map(offset, obj, sink);
    }

    fn detect_and_map(&mut self, offset: usize, obj: &[u8], sink: &mut impl LeafSink) {
        match detect::format(obj) {
            Ok(Some(format)) => {
                self.last = Some(format);
                let result = map_json(format, obj, &mut self.ctx);
                emit(offset, obj, Some(format), result, sink, &self.output);
            }
            Ok(None) => sink.dead(
                offset,
                obj,
                Reject {
                    format: None,
                    reason: detect::unrecognized_reason(obj),
                },
            ),
            Err(reason) => sink.dead(
                offset,
                obj,
                Reject {
                    format: None,
                    reason,
                },
            ),
        }
    }
}

/// What leaves the normalizer besides the mapped fields.
#[derive(Default)]
struct Output {
    keep_raw: bool,
    pseudonymizer: Option<Arc<Pseudonymizer>>,
}

fn emit<'a>(
    offset: usize,
    raw: &[u8],
    format: Option<LogFormat>,
    result: MapResult<'a>,
    sink: &mut impl LeafSink,
    out: &Output,
) {
    match result {
        Ok(Mapped::Event(mut e)) => {
            if let Some(p) = &out.pseudonymizer {
                p.apply(&mut e);
                e.raw = None;
            } else if out.keep_raw && format.is_some_and(|f| f != LogFormat::Canonical) {
                e.raw = Some(redact::redact_record(raw).into());
            }
            sink.event(offset, raw, *e);
        }
        Ok(Mapped::Ignored(kind)) => sink.ignored(offset, kind),
        Err(reason) => sink.dead(offset, raw, Reject { format, reason }),
    }
}

/// A mapped ticket, or a dead letter with the reason naming the field.
fn emit_ticket(
    offset: usize,
    raw: &[u8],
    result: Result<Ticket, String>,
    sink: &mut impl LeafSink,
) {
    match result {
        Ok(t) => sink.ticket(offset, raw, t),
        Err(reason) => sink.dead(
            offset,
            raw,
            Reject {
                format: None,
                reason,
            },
        ),
    }
}

fn map_json<'a>(format: LogFormat, raw: &[u8], ctx: &'a mut fields::Ctx) -> MapResult<'a> {
    let vendor = vendor::of_format(format).expect("auto is resolved before mapping");
    (vendor.map)(raw, ctx)
}

fn trim_ascii_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

/// A vendor record type for any borrow lifetime, so a failed fast parse can be repeated on the
/// original bytes by a path-tracking parser.
pub(crate) trait RecordType {
    /// The record borrowing for `'a`.
    type Of<'a>: serde::Deserialize<'a>;
}

/// Declares `$marker` as the [`RecordType`] of `$ty<'a>`.
macro_rules! record_type {
    ($marker:ident => $ty:ident) => {
        struct $marker;
        impl $crate::RecordType for $marker {
            type Of<'a> = $ty<'a>;
        }
    };
}
pub(crate) use record_type;

/// Parse `raw` with the SIMD parser (on a copy in `scratch`, so `raw` stays intact for dead
/// letters); on failure, re-parse `raw` with a path-tracking parser so the reason names the field
/// (`outcome.result: invalid type …`).
pub(crate) fn parse<'a, R: RecordType>(
    format: LogFormat,
    raw: &[u8],
    scratch: &'a mut fields::JsonScratch,
) -> Result<R::Of<'a>, String> {
    let fields::JsonScratch {
        bytes,
        buffers,
        tape: kept,
    } = scratch;
    bytes.clear();
    bytes.extend_from_slice(raw);
    bytes.resize(raw.len() + simd_json::INPUT_PADDING, b' ');
    let mut tape = std::mem::replace(kept, simd_json::Tape(Vec::new())).reset();
    let parsed = simd_json::fill_tape_padded(bytes, raw.len(), buffers, &mut tape).and_then(|()| {
        let mut de = simd_json::Deserializer::from_tape(tape);
        let value = <R::Of<'a> as serde::Deserialize>::deserialize(&mut de);
        *kept = de.into_tape().reset();
        value
    });
    parsed.map_err(|fast| explain::<R>(format, raw, &fast.to_string()))
}

#[cold]
fn explain<R: RecordType>(format: LogFormat, raw: &[u8], fast: &str) -> String {
    if let Err(e) = std::str::from_utf8(raw) {
        return format!("invalid UTF-8 at byte {} of the record", e.valid_up_to());
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    match serde_path_to_error::deserialize::<_, R::Of<'_>>(&mut de) {
        Err(e) if e.path().to_string() == "." => format!("{}: {}", format.as_str(), e.inner()),
        Err(e) => format!("{}: {}: {}", format.as_str(), e.path(), e.inner()),
        Ok(_) => format!("{}: {fast}", format.as_str()),
    }
}

/// Convenience for mappers: a boxed event result.
pub(crate) fn event(e: Event<'_>) -> MapResult<'_> {
    Ok(Mapped::Event(Box::new(e)))
}

/// Convenience for mappers: an ignored record of `format:kind`.
pub(crate) fn ignored<'a>(format: LogFormat, kind: &str) -> MapResult<'a> {
    Ok(Mapped::Ignored(format!("{}:{kind}", format.as_str())))
}

/// Test helper: the event a mapper produced (panics on ignored or rejected records).
#[cfg(test)]
pub(crate) fn expect_event(result: MapResult<'_>) -> Event<'static> {
    match result {
        Ok(Mapped::Event(e)) => e.into_owned(),
        Ok(Mapped::Ignored(k)) => panic!("ignored {k}"),
        Err(reason) => panic!("rejected: {reason}"),
    }
}
