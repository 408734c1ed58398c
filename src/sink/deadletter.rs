//! Dead-letter records: where a record was, why it failed, and its redacted, truncated bytes.

use serde::{Deserialize, Serialize};

use crate::normalize::redact::redact_raw;

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
        DeadLetter {
            file: file.to_string(),
            line,
            offset,
            format: format.map(str::to_string),
            reason,
            raw_len: raw.len() as u64,
            raw: redact_raw(raw, RAW_MAX),
        }
    }

    /// The same dead letter without the record's text (see [`RAW_WITHHELD`]).
    pub fn withhold_raw(mut self) -> Self {
        self.raw = RAW_WITHHELD.to_string();
        self
    }
}
