//! The rule engine's state as bytes, so a restart continues exactly where the last commit left
//! off: rsigma's correlation windows, suppression times and evidence references
//! (`CorrelationEngine::export_state`, canonical and vendor engines), the live first steps of
//! ordered correlations, the per-user history, the rows waiting for the watermark and the
//! findings not yet stored. This module owns the format and its checks (magic, version,
//! length, checksum, the rules it was taken with); it never decides when state is saved or
//! where the bytes go — the ingest engine commits them with a segment's checkpoint.
//!
//! Layout: `MAGIC | format u32 | rules u64 | body len u64 | rows len u64 | xxh3 u64 | body |
//! rows` (little-endian), where `body` is zstd-compressed JSON and `rows` an Arrow IPC stream.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufWriter, Cursor, Write};

use arrow::array::RecordBatch;
use rsigma_eval::{CorrelationEngine, CorrelationSnapshot, GroupKey};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::enrich::{SavedHistory, UserHistory};
use super::finding::Finding;
use super::order::SavedOrder;
use mfascope_core::event::CanonicalBatch;

/// First bytes of every rule-state file.
const MAGIC: &[u8; 16] = b"mfascope-rules\n\0";
/// Version of this layout and of [`Body`].
pub const FORMAT: u32 = 1;
const HEADER: usize = MAGIC.len() + 4 + 8 * 4;

/// Why saved rule state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes do not start like a rule-state file.
    #[error("not a rule-state file (unknown header)")]
    NotASnapshot,
    /// The file ends early.
    #[error("truncated: {have} bytes of {want}")]
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes the header announces.
        want: usize,
    },
    /// Written by another version of mfascope.
    #[error("format version {found}, this build reads version {FORMAT}")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The contents do not match their checksum.
    #[error("checksum mismatch: the file is corrupt")]
    Checksum,
    /// The contents do not decode.
    #[error("cannot decode: {0}")]
    Decode(String),
}

/// The engine's state, serialized as JSON inside the file. Saved with the history and the
/// findings borrowed and the correlation engines exported as they are written
/// (`Body<&UserHistory, &[Finding], Exported>`), read back owned (`Body`).
#[derive(Serialize, Deserialize)]
pub(crate) struct Body<U = UserHistory, F = Vec<Finding>, C = CorrelationSnapshot> {
    pub engine: C,
    pub vendor: Vec<Option<C>>,
    pub sequels: Vec<Vec<(GroupKey, i64)>>,
    pub history: SavedHistory<U>,
    pub order: SavedOrder,
    pub last_evict_s: i64,
    pub correlation_evicted: u64,
    pub unstored: F,
}

/// A decoded file: the rules fingerprint it was taken with, its body and the waiting rows.
pub(crate) struct Decoded {
    pub rules: u64,
    pub body: Body,
    pub rows: Option<CanonicalBatch>,
}

/// A correlation engine whose state is exported only when it is serialized, as rsigma's
/// [`CorrelationSnapshot`] reads it back, and written draining: each group's window is
/// dropped once written. rsigma can only export a copy of every window; this way a save holds
/// that copy for one engine at a time and never beside all of its encoding (the copy of 75,000
/// groups is ~20 MiB, the ingest's peak at 50M events).
pub(crate) struct Exported<'a>(pub &'a CorrelationEngine);

impl Serialize for Exported<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let snapshot = self.0.export_state();
        // The fields and names of `CorrelationSnapshot`'s derived `Serialize`.
        let mut out = serializer.serialize_struct("CorrelationSnapshot", 5)?;
        out.serialize_field("version", &snapshot.version)?;
        out.serialize_field("windows", &Draining::from(snapshot.windows))?;
        out.serialize_field("last_alert", &Draining::from(snapshot.last_alert))?;
        out.serialize_field("event_buffers", &Draining::from(snapshot.event_buffers))?;
        out.serialize_field(
            "event_ref_buffers",
            &Draining::from(snapshot.event_ref_buffers),
        )?;
        out.end()
    }
}

/// Per-correlation groups, serialized as the map they are and dropped as they are written.
struct Draining<T>(RefCell<HashMap<String, Vec<T>>>);

impl<T> From<HashMap<String, Vec<T>>> for Draining<T> {
    fn from(groups: HashMap<String, Vec<T>>) -> Self {
        Draining(RefCell::new(groups))
    }
}

impl<T: Serialize> Serialize for Draining<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// One correlation's groups, dropped one by one as they are written.
        struct Groups<T>(RefCell<Vec<T>>);
        impl<T: Serialize> Serialize for Groups<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.take())
            }
        }
        serializer.collect_map(
            self.0
                .take()
                .into_iter()
                .map(|(id, groups)| (id, Groups(RefCell::new(groups)))),
        )
    }
}

/// Fingerprint of a rule set's texts (and whether every detection is reported): state
/// taken with other rules is not restored as it is.
pub(crate) fn rules_fingerprint(rules: &super::RuleSet, emit_all: bool) -> u64 {
    let mut h = Xxh3::new();
    h.update(&[u8::from(emit_all)]);
    for f in &rules.files {
        for part in [f.path.as_bytes(), f.text.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    // Other suppressions withhold other events: windows built under them are not reused.
    if let Some(s) = &rules.suppressions {
        h.update(b"suppressions");
        h.update(s.text().as_bytes());
    }
    h.digest()
}

/// Encode `body` and `rows` taken with the rules of fingerprint `rules`. The JSON is streamed
/// into the compressor, and the compressor and the rows write behind the header in the one
/// vector returned: a save holds neither the JSON text (several times the state's size) nor a
/// second copy of the compressed body.
pub(crate) fn encode<C: Serialize>(
    rules: u64,
    body: &Body<&UserHistory, &[Finding], C>,
    rows: Option<&CanonicalBatch>,
) -> Vec<u8> {
    let compress = |out: Vec<u8>| -> std::io::Result<Vec<u8>> {
        let mut json = BufWriter::with_capacity(64 << 10, zstd::Encoder::new(out, 3)?);
        serde_json::to_writer(&mut json, body)?;
        json.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?
            .finish()
    };
    // The header's room first; filled in once the lengths and the checksum are known.
    let mut out =
        compress(vec![0u8; HEADER]).expect("rule state serializes and compresses in memory");
    let body_len = out.len() - HEADER;
    if let Some(r) = rows {
        write_ipc(&mut out, r.record_batch());
    }
    let rows_len = out.len() - HEADER - body_len;
    let sum = {
        let (body, rows) = out[HEADER..].split_at(body_len);
        checksum(body, rows)
    };
    let mut header = &mut out[..HEADER];
    for part in [
        &MAGIC[..],
        &FORMAT.to_le_bytes(),
        &rules.to_le_bytes(),
        &(body_len as u64).to_le_bytes(),
        &(rows_len as u64).to_le_bytes(),
        &sum.to_le_bytes(),
    ] {
        header.write_all(part).expect("the header fits its bytes");
    }
    out
}

/// Decode and check a file written by [`encode`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, SnapshotError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    if bytes.len() < HEADER {
        return Err(SnapshotError::Truncated {
            have: bytes.len(),
            want: HEADER,
        });
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let at = MAGIC.len();
    let found = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if found != FORMAT {
        return Err(SnapshotError::Version { found });
    }
    let (rules, body_len, rows_len, sum) =
        (word(at + 4), word(at + 12), word(at + 20), word(at + 28));
    let want = usize::try_from(body_len.saturating_add(rows_len))
        .unwrap_or(usize::MAX)
        .saturating_add(HEADER);
    if bytes.len() != want {
        return Err(SnapshotError::Truncated {
            have: bytes.len(),
            want,
        });
    }
    let (body, rows) = bytes[HEADER..].split_at(body_len as usize);
    if checksum(body, rows) != sum {
        return Err(SnapshotError::Checksum);
    }
    let json = zstd::stream::decode_all(body).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let body: Body =
        serde_json::from_slice(&json).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let rows = if rows.is_empty() {
        None
    } else {
        Some(read_rows(rows)?)
    };
    Ok(Decoded { rules, body, rows })
}

fn checksum(body: &[u8], rows: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(body);
    h.update(rows);
    h.digest() ^ xxh3_64(&(body.len() as u64).to_le_bytes())
}

/// Append `batch` to `out` as an Arrow IPC stream.
fn write_ipc(out: &mut Vec<u8>, batch: &RecordBatch) {
    let mut w = arrow::ipc::writer::StreamWriter::try_new(out, &batch.schema())
        .expect("IPC writer on a vector");
    w.write(batch).expect("IPC write to a vector");
    w.finish().expect("IPC finish on a vector");
}

fn read_rows(bytes: &[u8]) -> Result<CanonicalBatch, SnapshotError> {
    let decode = |e: &dyn std::fmt::Display| SnapshotError::Decode(format!("waiting rows: {e}"));
    let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| decode(&e))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| decode(&e))?;
    let all = arrow::compute::concat_batches(&schema, &batches).map_err(|e| decode(&e))?;
    CanonicalBatch::new(all).map_err(|e| decode(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Body<&'static UserHistory, &'static [Finding]> {
        Body {
            engine: rsigma_eval::CorrelationEngine::default().export_state(),
            vendor: vec![],
            sequels: vec![],
            history: SavedHistory::default(),
            order: super::super::order::Reorder::new(0).save().0,
            last_evict_s: 7,
            correlation_evicted: 0,
            unstored: &[],
        }
    }

    /// The draining export writes what rsigma's own `Serialize` writes, and reads back as the
    /// engine's state.
    #[test]
    fn an_engine_exported_while_written_reads_back_as_rsigmas_snapshot() {
        use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source};
        let mut detector = crate::Detector::new(
            &crate::RuleSet::builtin(),
            crate::DetectConfig::default(),
            false,
        )
        .unwrap();
        let mut b = EventBatchBuilder::default();
        for i in 0..40i64 {
            let step = (Action::MfaVerify, Factor::Push, Outcome::Denied);
            let user = format!("u{}", i % 7);
            let t = 1_714_557_600_000 + i * 20_000;
            b.append(&Event::new(
                Source::Okta,
                format!("e{i}"),
                t,
                &user,
                "t",
                step,
            ));
        }
        detector.observe(&b.finish_canonical());
        let engine = &detector.engine;
        assert!(
            engine.state_count() > 0,
            "the events opened correlation windows"
        );
        let drained = serde_json::to_value(Exported(engine)).unwrap();
        assert_eq!(
            drained,
            serde_json::to_value(engine.export_state()).unwrap()
        );
        let back: CorrelationSnapshot = serde_json::from_value(drained).unwrap();
        let mut fresh = CorrelationEngine::default();
        assert!(fresh.import_state(back));
    }

    #[test]
    fn a_file_round_trips_and_every_damage_is_named() {
        let bytes = encode(42, &body(), None);
        let back = decode(&bytes).expect("round trip");
        assert_eq!((back.rules, back.body.last_evict_s), (42, 7));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(SnapshotError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&bytes[..10]),
            Err(SnapshotError::NotASnapshot)
        ));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(decode(&flipped), Err(SnapshotError::Checksum)));
        let mut version = bytes;
        version[MAGIC.len()] = 9;
        assert!(matches!(
            decode(&version),
            Err(SnapshotError::Version { found: 9 })
        ));
    }
}
