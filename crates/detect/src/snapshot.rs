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

use std::io::{BufWriter, Cursor};

use arrow::array::RecordBatch;
use rsigma_eval::{CorrelationSnapshot, GroupKey};
use serde::{Deserialize, Serialize};
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
/// findings borrowed (`Body<&UserHistory, &[Finding]>`), read back owned (`Body`).
#[derive(Serialize, Deserialize)]
pub(crate) struct Body<U = UserHistory, F = Vec<Finding>> {
    pub engine: CorrelationSnapshot,
    pub vendor: Vec<Option<CorrelationSnapshot>>,
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
/// into the compressor: a save holds the compressed body, never the JSON text (several times
/// the state's size in memory, the ingest's peak with many users).
pub(crate) fn encode(
    rules: u64,
    body: &Body<&UserHistory, &[Finding]>,
    rows: Option<&CanonicalBatch>,
) -> Vec<u8> {
    let compress = || -> std::io::Result<Vec<u8>> {
        let mut json = BufWriter::with_capacity(64 << 10, zstd::Encoder::new(Vec::new(), 3)?);
        serde_json::to_writer(&mut json, body)?;
        json.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?
            .finish()
    };
    let body = compress().expect("rule state serializes and compresses in memory");
    let rows = rows.map_or_else(Vec::new, |r| ipc_bytes(r.record_batch()));
    let mut out = Vec::with_capacity(HEADER + body.len() + rows.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&rules.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&body, &rows).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&rows);
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

fn ipc_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut w = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema())
        .expect("IPC writer on a vector");
    w.write(batch).expect("IPC write to a vector");
    w.into_inner().expect("IPC finish on a vector")
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
