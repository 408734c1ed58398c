//! The ingest engine: source → normalize → batch → sinks, one engine for every source. A
//! source ([`mfascope_source::RecordSource`]: files here, Kafka in [`kafka`]) sends line-aligned
//! chunks with their positions through a [`mfascope_source::Feed`]; worker threads normalize
//! chunks into Arrow batches in parallel; the engine thread restores the source's order and
//! applies each item to its scope's ordered stage (latency pairing, repeats, hour split,
//! segment grouping, observers); a writer thread commits each segment (Parquet + dead letters +
//! checkpoint) and acknowledges its positions to the source. Channels are bounded, so memory
//! stays bounded whatever the input size. Counters prove records = events + dead letters +
//! ignored.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::AtomicBool;
//! use mfascope_engine::{IngestOptions, ingest};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let input = dir.path().join("okta.ndjson");
//! std::fs::write(&input, "not json\n").unwrap();
//! let mut opts = IngestOptions::new(vec![input.display().to_string()], dir.path().join("out"));
//! opts.progress = false;
//! let summary = ingest(&opts, Arc::new(AtomicBool::new(false))).unwrap();
//! assert_eq!((summary.records, summary.deadletter), (1, 1));
//! ```

use std::sync::Arc;

use mfascope_normalize::ticket::TicketConfig;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

pub use chunk::{ChunkTally, normalize_chunk};
pub use drive::run;
pub use mfascope_core::observe::{BatchObserver, Observers};
use mfascope_normalize::LogFormat;
use mfascope_normalize::pseudonym::Pseudonymizer;
use mfascope_sink::{Location, SinkError};
use mfascope_source::{FileSource, ReaderConfig};
pub use progress::PipelineProgress;
use summary::Written;
pub use summary::{Summary, Unreadable};

mod chunk;
pub mod dedupe;
mod drive;
pub mod kafka;
pub mod object;
mod progress;
pub mod sqs;
mod stage;
mod summary;

/// Ingest options.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Paths, globs, directories or `-`.
    pub inputs: Vec<String>,
    /// Output directory.
    pub out: Location,
    /// Input format (`Auto` detects per record).
    pub format: LogFormat,
    /// Keep each vendor record, redacted, in the `raw` column (vendor-field rules need it).
    pub keep_raw: bool,
    /// The date of log lines that carry only a time of day (else they are dead letters).
    pub assume_date: Option<chrono::NaiveDate>,
    /// Replace user, actor and client IP by keyed pseudonyms; no raw record is kept.
    pub pseudonymize: Option<Arc<Pseudonymizer>>,
    /// How support-ticket exports are classified and CSV columns read.
    pub tickets: Arc<TicketConfig>,
    /// Recent records remembered to turn repeats into dead letters (0: off).
    pub dedupe_window: usize,
    /// Parser threads.
    pub workers: usize,
    /// Rows after which a segment is committed.
    pub segment_rows: usize,
    /// Arrow bytes after which a segment is committed (bounds memory with wide rows).
    pub segment_bytes: usize,
    /// Longest time an event waits before its segment is committed (follow mode).
    pub max_latency: Duration,
    /// Reader tuning (chunk size, follow).
    pub reader: ReaderConfig,
    /// How often `--follow` lists object-store prefixes again.
    pub list_every: Duration,
    /// Read the objects S3 event notifications on this SQS queue announce instead of listing.
    pub sqs_queue: Option<String>,
    /// Show a progress bar (only honoured on a terminal).
    pub progress: bool,
    /// Consumers fed every batch (live SLIs, rules).
    pub observers: Observers,
    /// Consumers whose state belongs to one scope (a Kafka partition, a file ingest's store),
    /// made as each scope opens; fed after [`IngestOptions::observers`].
    pub scoped: Option<Arc<dyn ScopeObservers>>,
    /// Commit the observers' saved state (and the latency pairing table) with a segment at
    /// most this often and with a scope's last segment; `None`: never (the checkpoint then
    /// records that no saved state goes with it).
    pub save_state: Option<Duration>,
    /// Running counters, readable while the pipeline runs (metrics endpoint).
    pub progress_counters: Arc<PipelineProgress>,
}

impl IngestOptions {
    /// Defaults for `inputs` → `out`.
    pub fn new(inputs: Vec<String>, out: impl Into<Location>) -> Self {
        IngestOptions {
            inputs,
            out: out.into(),
            format: LogFormat::Auto,
            keep_raw: false,
            assume_date: None,
            pseudonymize: None,
            tickets: mfascope_normalize::ticket::default_config(),
            dedupe_window: dedupe::DEFAULT_WINDOW,
            workers: thread::available_parallelism().map_or(2, std::num::NonZero::get),
            segment_rows: 200_000,
            segment_bytes: 16 << 20,
            max_latency: Duration::from_secs(1),
            reader: ReaderConfig::default(),
            list_every: Duration::from_secs(30),
            sqs_queue: None,
            progress: true,
            observers: Observers::default(),
            scoped: None,
            save_state: None,
            progress_counters: Arc::default(),
        }
    }
}

/// Makes the observer whose state belongs to one scope of the engine: the scope is the unit of
/// state, as it is of positions (a Kafka partition moves between instances with its offsets
/// and its rule state). The engine opens it when the scope opens, feeds it that scope's
/// batches only, saves its state with the scope's commits and closes it with the scope's last
/// commit ([`BatchObserver::close`], then its final save).
pub trait ScopeObservers: Send + Sync {
    /// The observer of the scope whose (settled, locked) state is `out`, brought to that
    /// state's checkpoint; an error stops the run (it names what could not be read).
    fn open(&self, out: &mfascope_sink::OutDir) -> Result<Arc<dyn BatchObserver>, String>;
}

impl std::fmt::Debug for dyn ScopeObservers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScopeObservers")
    }
}

/// Ingest failures.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Writing outputs failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A pipeline thread died.
    #[error("internal error: {0}")]
    Internal(String),
    /// The live state of a scope could not be brought back (it names what could not be read).
    #[error("{0}")]
    Resume(String),
    /// The source failed on its own account (a Kafka consumer that cannot be created, …).
    #[error("{0}")]
    Source(mfascope_source::SourceFailure),
}

/// Run a file ingest until inputs are exhausted (or `stop` is set, in follow mode).
pub fn ingest(opts: &IngestOptions, stop: Arc<AtomicBool>) -> Result<Summary, IngestError> {
    let files = FileSource {
        inputs: opts.inputs.clone(),
        config: opts.reader.clone(),
    };
    run(files, opts, stop).map(|(summary, _)| summary)
}

/// Run an ingest of object-store prefixes (every input an `s3://`, `gs://` or `az://` URL).
pub fn ingest_objects(
    opts: &IngestOptions,
    stop: Arc<AtomicBool>,
) -> Result<(Summary, object::ObjectSummary), IngestError> {
    let failed = |e: String| IngestError::Source(e.into());
    let mut source = object::ObjectSource::new(
        &opts.inputs,
        &opts.out,
        opts.reader.clone(),
        opts.list_every,
    )
    .map_err(failed)?;
    if let Some(url) = &opts.sqs_queue {
        source = source.with_queue(sqs::Queue::new(url).map_err(failed)?);
    }
    run(source, opts, stop).map(|(summary, source)| (summary, source.summary))
}

/// Receives stop requests from SIGINT/SIGTERM.
pub fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}
