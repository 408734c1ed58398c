//! The source contract: what every source (files, Kafka, and the object-store and vendor-API
//! sources to come) does to drive the one ingest engine. A source opens *scopes* (units of
//! state with their own checkpoint: a whole file run, a Kafka partition), sends items with
//! their positions in order, closes scopes it gives up, and reads back which positions the
//! engine committed. It never parses records, writes outputs or touches state files itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::{Fingerprint, ReadItem, Reader, ReaderConfig, Resume};

/// A scope's number, chosen by its source; unique among the scopes a run has open.
pub type ScopeId = u32;

/// Committed positions of a scope's inputs, by fingerprint text: `(offset, next line)`.
/// Offsets are bytes for files and the next message offset for Kafka.
pub type Positions = BTreeMap<String, (u64, u64)>;

/// An input named up front when a scope opens (a Kafka partition is one input of its own
/// scope); file inputs are named by the [`ReadItem::Opened`] items instead.
#[derive(Clone, Debug)]
pub struct NamedInput {
    /// The input's number in the scope's items.
    pub input: u32,
    /// Its key in the scope's checkpoint.
    pub fingerprint: String,
    /// Its name in dead letters (`kafka://TOPIC/PARTITION`).
    pub path: String,
}

/// A scope to open.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The source's number for it.
    pub id: ScopeId,
    /// Its state prefix under the output (`_state`, `_state/kafka/TOPIC/PARTITION`).
    pub state: String,
    /// How long to wait for a previous owner (another instance) to release the state.
    pub wait: Duration,
    /// Inputs known before any item is sent.
    pub inputs: Vec<NamedInput>,
}

impl Scope {
    /// Scope 0 over the whole output (`_state`): a run with one checkpoint (files, buckets).
    pub fn whole_output() -> Scope {
        Scope {
            id: 0,
            state: FILE_STATE.into(),
            wait: Duration::ZERO,
            inputs: Vec::new(),
        }
    }
}

/// The engine, as a source sees it. Every method is called from the source's own thread; a
/// `false`/`None` answer means the engine cannot go on (its error is reported by the engine):
/// the source returns.
pub trait Feed: Send {
    /// Take a scope's state (waiting up to `scope.wait` for a previous owner) and return the
    /// positions committed by earlier runs.
    fn open(&mut self, scope: &Scope) -> Option<Positions>;
    /// Hand the engine an item of an open scope; items are applied in the order sent.
    fn send(&mut self, scope: ScopeId, item: ReadItem) -> bool;
    /// Flush a scope and wait until everything sent for it is committed; its state is
    /// released when this returns.
    fn close(&mut self, scope: ScopeId) -> bool;
    /// Positions committed since the last call, latest per scope and input (sources that need
    /// no acknowledgement never ask; the engine keeps only the latest of each).
    fn committed(&mut self) -> Vec<(ScopeId, String, u64)>;
    /// Positions committed under a state prefix by whoever owns it (read-only; another
    /// instance sharing the output may hold it).
    fn peek(&self, state: &str) -> Option<Positions>;
}

/// Why a source stopped on its own account (the engine's failures are the engine's to report).
pub type SourceFailure = Box<dyn std::error::Error + Send + Sync>;

/// A source of records: runs on its own thread until its inputs end or `stop` is set.
pub trait RecordSource: Send {
    /// Drive `feed` until done; dropping the feed tells the engine that nothing more comes.
    fn run(&mut self, stop: &Arc<AtomicBool>, feed: Box<dyn Feed>) -> Result<(), SourceFailure>;
}

/// The state prefix of a file run: its whole output has one checkpoint.
pub const FILE_STATE: &str = "_state";

/// Files, globs, directories and stdin (with `--follow`): one scope, positions per content
/// fingerprint.
#[derive(Clone, Debug)]
pub struct FileSource {
    /// Paths, globs, directories or `-`.
    pub inputs: Vec<String>,
    /// Chunking and follow-mode tuning.
    pub config: ReaderConfig,
}

impl RecordSource for FileSource {
    fn run(
        &mut self,
        stop: &Arc<AtomicBool>,
        mut feed: Box<dyn Feed>,
    ) -> Result<(), SourceFailure> {
        let scope = Scope::whole_output();
        let Some(positions) = feed.open(&scope) else {
            return Ok(());
        };
        let mut reader = Reader::new(self.inputs.clone(), self.config.clone(), resume(&positions));
        reader.run(stop, &mut |item| feed.send(scope.id, item));
        Ok(())
    }
}

/// Resume positions for the file reader (fingerprints are hex in checkpoints).
pub fn resume(positions: &Positions) -> Resume {
    positions
        .iter()
        .filter_map(|(fp, &at)| Some((Fingerprint(u64::from_str_radix(fp, 16).ok()?), at)))
        .collect()
}
