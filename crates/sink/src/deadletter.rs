//! Dead-letter records: where a record was, why it failed, and its redacted, truncated bytes.

use serde::{Deserialize, Serialize};

use mfascope_normalize::redact::redact_raw;

/// Largest raw excerpt kept in a dead letter.
pub const RAW_MAX: usize = 4096;

/// The `raw` of a dead letter when raw records are withheld (pseudonymized ingest): the
/// file, line and offset still point at the record.
pub const RAW_WITHHELD: &str = "[withheld: --pseudonymize-key]";

/// One record that did not become an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Input file (`-` for stdin).
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset in the (decompressed) input.
    pub offset: u64,
    /// Format the record was taken for, when known.
    pub format: Option<String>,
    /// Precise reason.
    pub reason: String,
    /// Length of the raw record in bytes.
    pub raw_len: u64,
    /// The record, secrets redacted, cut to 4 KiB.
    pub raw: String,
}

impl DeadLetter {
    /// A dead letter for `raw` at a position.
    pub fn new(
        file: &str,
        line: u64,
        offset: u64,
        format: Option<&str>,
        reason: String,
        raw: &[u8],
    ) -> Self {
        let (len, text) = (raw.len() as u64, redact_raw(raw, RAW_MAX));
        Self::with_text(file, (line, offset), format, reason, len, text)
    }

    /// A dead letter for a record of `raw_len` bytes whose text is not kept (see
    /// [`RAW_WITHHELD`]): the position, length and reason still point at it.
    pub fn withheld(
        file: &str,
        line: u64,
        offset: u64,
        format: Option<&str>,
        reason: String,
        raw_len: u64,
    ) -> Self {
        let text = RAW_WITHHELD.to_string();
        Self::with_text(file, (line, offset), format, reason, raw_len, text)
    }

    fn with_text(
        file: &str,
        (line, offset): (u64, u64),
        format: Option<&str>,
        reason: String,
        raw_len: u64,
        raw: String,
    ) -> Self {
        DeadLetter {
            file: file.to_string(),
            line,
            offset,
            format: format.map(str::to_string),
            reason,
            raw_len,
            raw,
        }
    }
}
