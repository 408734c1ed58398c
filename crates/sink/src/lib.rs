//! Durable outputs under `--out`: hour-partitioned Parquet (`events/dt=…/hour=…`) in Delta
//! tables (`events/_delta_log/`), dead letters
//! (`deadletter/`), and the checkpoint state (`_state/`), committed together per segment with an
//! intent log so a crash at any moment neither loses nor duplicates rows — in a local directory
//! or under an object store prefix.

pub mod deadletter;
pub mod lease;
pub mod location;
pub mod maintain;
pub mod parquet;
pub mod scratch;
pub mod segment;
pub mod state;
pub mod table;

pub use deadletter::DeadLetter;
pub use location::Location;
pub use segment::{Segment, SegmentStats, commit_segment};
pub use state::{Checkpoint, InputState, OutDir};

use std::path::PathBuf;

/// Failures while writing outputs; every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A filesystem operation failed (full disk, permissions, …).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Parquet encoding failed.
    #[error("writing Parquet {path}: {source}")]
    Parquet {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The Parquet writer's error.
        source: ::parquet::errors::ParquetError,
    },
    /// An object store operation failed (credentials, network, bucket missing, …).
    #[error("{op} {url}: {source}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// The object's URL.
        url: String,
        /// The object store's error.
        source: object_store::Error,
    },
    /// State files are unreadable.
    #[error("state file {path} is corrupt: {reason}; move it away to re-ingest from scratch")]
    CorruptState {
        /// The file or directory the operation was on.
        path: String,
        /// What is wrong, in words that say what to fix.
        reason: String,
    },
    /// Another process holds the output directory (or a Kafka partition's state in it).
    #[error("{0} is locked by another mfascope ingest; wait for it or choose another --out")]
    Locked(String),
    /// The lock on object storage was lost (another process took it over after it expired);
    /// nothing more is committed.
    #[error("lost the lock {0}; stopped before committing (restart to resume from the checkpoint)")]
    LockLost(String),
    /// A table's Delta log could not be read or committed.
    #[error(transparent)]
    Table(#[from] mfascope_table::TableError),
    /// The store was written before the table format: its files are not in a Delta log yet.
    #[error(
        "{0} holds Parquet files but no Delta log (written by an older mfascope): run \
         `mfascope migrate --data {0}` once, then ingest again"
    )]
    Unmigrated(String),
}

/// Attach an operation and path to an I/O error.
pub fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> SinkError {
    let path = path.into();
    move |source| SinkError::Io { op, path, source }
}
