//! The one ingest engine every source drives: the source's thread sends items through the
//! [`Feed`]; worker threads normalize chunks in parallel; this thread restores the order the
//! source sent them in and applies each to its scope's [`OrderedStage`]; writer threads
//! commit segments (Parquet + dead letters + the scope's checkpoint), each scope's in order on
//! one of them, and acknowledge their positions to the source. Channels are bounded, so
//! memory stays bounded whatever the input.
//! It knows nothing of files or Kafka: that is the sources' business.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::chunk::{Processed, process_chunk};
use crate::stage::OrderedStage;
use crate::{IngestError, IngestOptions, Summary, Written};
use mfascope_core::sync::lock;
use mfascope_normalize::Normalizer;
use mfascope_sink::state::read_checkpoint;
use mfascope_sink::{Location, OutDir, Segment, SinkError, commit_segment};
use mfascope_source::{Feed, NamedInput, Positions, ReadItem, RecordSource, Scope, ScopeId};

/// What a source sends, numbered in its order.
enum Msg {
    Open {
        scope: ScopeId,
        out: Arc<Mutex<OutDir>>,
        inputs: Vec<NamedInput>,
    },
    Item {
        scope: ScopeId,
        item: ReadItem,
    },
    Close {
        scope: ScopeId,
        done: Sender<()>,
    },
}

/// What a worker hands on: a normalized chunk, or a message that needs no normalizing.
enum Work {
    Normalized {
        scope: ScopeId,
        chunk: Box<Processed>,
    },
    Other(Msg),
}

/// What the writer does, in order.
enum ToWriter {
    Commit {
        scope: ScopeId,
        out: Arc<Mutex<OutDir>>,
        segment: Segment,
    },
    /// Answer once everything the scope's writer was given before is committed (a scope's
    /// close).
    Release(Sender<()>),
}

/// What the engine and the source's [`Feed`] share.
#[derive(Default)]
struct Shared {
    /// Latest committed position per scope and input.
    acks: Mutex<BTreeMap<(ScopeId, String), u64>>,
    /// Why a scope could not be opened.
    refused: Mutex<Option<SinkError>>,
    /// The engine stopped on an error: waiting sources give up.
    failed: AtomicBool,
    /// Segments handed to the writer and not committed yet.
    in_flight: AtomicUsize,
}

/// The engine end of a source's [`Feed`].
struct EngineFeed {
    root: Location,
    seq: u64,
    tx: Sender<(u64, Msg)>,
    shared: Arc<Shared>,
}

impl EngineFeed {
    fn post(&mut self, msg: Msg) -> bool {
        self.seq += 1;
        self.tx.send((self.seq, msg)).is_ok()
    }
}

impl Feed for EngineFeed {
    fn open(&mut self, scope: &Scope) -> Option<Positions> {
        let waited = Instant::now();
        let out = loop {
            match OutDir::open_scoped(&self.root, &scope.state) {
                Ok(out) => break out,
                Err(SinkError::Locked(_))
                    if waited.elapsed() < scope.wait
                        && !self.shared.failed.load(Ordering::Relaxed) =>
                {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    lock(&self.shared.refused).get_or_insert(e);
                    return None;
                }
            }
        };
        let positions = out.checkpoint.positions();
        let opened = self.post(Msg::Open {
            scope: scope.id,
            out: Arc::new(Mutex::new(out)),
            inputs: scope.inputs.clone(),
        });
        opened.then_some(positions)
    }

    fn send(&mut self, scope: ScopeId, item: ReadItem) -> bool {
        self.post(Msg::Item { scope, item })
    }

    fn close(&mut self, scope: ScopeId) -> bool {
        let (done, wait) = bounded(1);
        if !self.post(Msg::Close { scope, done }) {
            return false;
        }
        loop {
            match wait.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) if self.shared.failed.load(Ordering::Relaxed) => {
                    return false;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn committed(&mut self) -> Vec<(ScopeId, String, u64)> {
        std::mem::take(&mut *lock(&self.shared.acks))
            .into_iter()
            .map(|((scope, fp), at)| (scope, fp, at))
            .collect()
    }

    fn peek(&self, state: &str) -> Option<Positions> {
        Some(read_checkpoint(&self.root, state).ok()?.positions())
    }
}

/// Run `source` through the engine until it ends (or `stop` is set and it returns); the
/// source is handed back with the summary (it may carry counters of its own).
pub fn run<S: RecordSource + 'static>(
    mut source: S,
    opts: &IngestOptions,
    stop: Arc<AtomicBool>,
) -> Result<(Summary, S), IngestError> {
    let started = Instant::now();
    let workers = opts.workers.max(1);
    let shared = Arc::new(Shared::default());
    let (item_tx, item_rx) = bounded::<(u64, Msg)>(workers * 2);
    let (done_tx, done_rx) = bounded::<(u64, Work)>(workers * 2);
    let spawn_failed = |e: std::io::Error| IngestError::Internal(e.to_string());

    let feed = EngineFeed {
        root: opts.out.clone(),
        seq: 0,
        tx: item_tx,
        shared: shared.clone(),
    };
    let source_stop = stop.clone();
    let source_handle = thread::Builder::new()
        .name("source".into())
        .spawn(move || {
            let result = source.run(&source_stop, Box::new(feed));
            (source, result)
        })
        .map_err(spawn_failed)?;

    let worker_handles = spawn_workers(opts, &item_rx, &done_tx)?;
    drop(item_rx);
    drop(done_tx);

    // Scopes (Kafka partitions) commit independently, so they are spread over the writers: the
    // segments several partitions flush together (at a rebalance, at the end) are written side
    // by side. Each queue holds a few segments: one being written while the next ones fill
    // (each at most --segment-mib, so this bounds memory too).
    let mut writers = Vec::with_capacity(WRITERS);
    let mut writer_handles = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let (tx, rx) = bounded::<ToWriter>(4);
        let acks = shared.clone();
        writer_handles.push(
            thread::Builder::new()
                .name(format!("writer-{i}"))
                .spawn(move || writer(&rx, &acks))
                .map_err(spawn_failed)?,
        );
        writers.push(tx);
    }

    let mut apply = Apply {
        opts,
        shared: shared.clone(),
        writers,
        scopes: HashMap::new(),
        closed: Vec::new(),
        failure: None,
        progress: ProgressBar::new(opts.progress),
    };
    if !apply.drain(&done_rx) {
        // Stop everything and report the error below.
        shared.failed.store(true, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
    }
    let summaries = apply.finish();
    drop(done_rx);
    let (mut written, mut write_failed) = (Written::default(), None);
    for handle in writer_handles {
        match handle
            .join()
            .map_err(|_| IngestError::Internal("a writer thread panicked".into()))?
        {
            Ok(more) => written.merge(more),
            Err(e) => {
                write_failed.get_or_insert(e);
            }
        }
    }
    let (source, source_result) = source_handle
        .join()
        .map_err(|_| IngestError::Internal("the source thread panicked".into()))?;
    for h in worker_handles {
        let _ = h.join();
    }
    // The first cause wins: a state that could not be opened, the writer's error, an engine
    // error, then the source's own.
    if let Some(e) = lock(&shared.refused).take() {
        return Err(e.into());
    }
    if let Some(e) = write_failed {
        return Err(e.into());
    }
    let summaries = summaries?;
    source_result.map_err(IngestError::Source)?;
    let mut summary = Summary::default();
    summaries.iter().for_each(|s| summary.add(s));
    summary.close(written, started);
    Ok((summary, source))
}

/// Normalize workers: chunks become batches in parallel; other messages pass through.
fn spawn_workers(
    opts: &IngestOptions,
    items: &Receiver<(u64, Msg)>,
    done: &Sender<(u64, Work)>,
) -> Result<Vec<thread::JoinHandle<()>>, IngestError> {
    (0..opts.workers.max(1))
        .map(|i| {
            let (rx, tx) = (items.clone(), done.clone());
            let mut normalizer = Normalizer::new(opts.format)
                .keep_raw(opts.keep_raw)
                .assume_date(opts.assume_date)
                .pseudonymize(opts.pseudonymize.clone())
                .tickets(opts.tickets.clone());
            let pool = opts.reader.pool.clone();
            thread::Builder::new()
                .name(format!("normalize-{i}"))
                .spawn(move || {
                    for (seq, msg) in rx {
                        let work = match msg {
                            Msg::Item {
                                scope,
                                item: ReadItem::Chunk(mut chunk),
                            } => {
                                let processed = process_chunk(&mut normalizer, &chunk);
                                pool.put(std::mem::take(&mut chunk.data));
                                Work::Normalized {
                                    scope,
                                    chunk: Box::new(processed),
                                }
                            }
                            other => Work::Other(other),
                        };
                        if tx.send((seq, work)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| IngestError::Internal(e.to_string()))
        })
        .collect()
}

/// Writer threads (segments of different scopes are committed side by side).
const WRITERS: usize = 2;

/// The engine thread's state: the open scopes' stages, in the order their items arrive.
struct Apply<'a> {
    opts: &'a IngestOptions,
    shared: Arc<Shared>,
    /// One queue per writer thread; a scope always uses the same one.
    writers: Vec<Sender<ToWriter>>,
    scopes: HashMap<ScopeId, OrderedStage>,
    /// Summaries of closed scopes.
    closed: Vec<Summary>,
    failure: Option<IngestError>,
    progress: ProgressBar,
}

impl Apply<'_> {
    /// Apply the workers' output in the order the source sent it until the source and the
    /// workers are done (true), or until the engine must stop (false: its failure is in
    /// `self.failure`).
    fn drain(&mut self, done: &Receiver<(u64, Work)>) -> bool {
        let mut reorder: BTreeMap<u64, Work> = BTreeMap::new();
        let mut next = 1u64;
        loop {
            match done.recv_timeout(self.opts.max_latency / 4) {
                Ok((seq, work)) => {
                    reorder.insert(seq, work);
                    while let Some(work) = reorder.remove(&next) {
                        next += 1;
                        self.work(work);
                    }
                    self.publish();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return true,
            }
            // Checked on every wake-up: in follow mode the reader reports idle polls more
            // often than the receive times out.
            self.flush_due();
            self.opts.observers.tick();
            for stage in self.scopes.values() {
                stage.tick();
            }
            if self.failure.is_some() {
                return false;
            }
        }
    }

    fn work(&mut self, work: Work) {
        let ok = match work {
            Work::Normalized { scope, chunk } => self
                .stage(scope)
                .is_some_and(|stage| stage.apply_chunk(chunk)),
            Work::Other(Msg::Item {
                scope,
                item: ReadItem::Flush,
            }) => self.stage(scope).is_some_and(|stage| stage.flush(false)),
            Work::Other(Msg::Item { scope, item }) => self.stage(scope).is_some_and(|stage| {
                stage.apply_item(item);
                true
            }),
            Work::Other(Msg::Open { scope, out, inputs }) => {
                let writer = self.writer(scope).clone();
                let shared = self.shared.clone();
                let state = out.clone();
                let mut stage = OrderedStage::new(
                    self.opts,
                    Box::new(move |segment| {
                        let out = out.clone();
                        shared.in_flight.fetch_add(1, Ordering::Relaxed);
                        writer
                            .send(ToWriter::Commit {
                                scope,
                                out,
                                segment,
                            })
                            .is_ok()
                    }),
                );
                let opened = {
                    let state = lock(&state);
                    stage.resume(&state);
                    self.opts.scoped.as_ref().map(|s| s.open(&state))
                };
                match opened {
                    Some(Ok(observer)) => stage.adopt(observer),
                    Some(Err(e)) => {
                        self.failure.get_or_insert(IngestError::Resume(e));
                    }
                    None => {}
                }
                for i in inputs {
                    stage.register(i.input, i.fingerprint, i.path);
                }
                self.scopes.insert(scope, stage);
                true
            }
            Work::Other(Msg::Close { scope, done }) => {
                let flushed = self.scopes.remove(&scope).is_none_or(|mut stage| {
                    let flushed = stage.flush(true);
                    self.closed.push(stage.into_summary());
                    flushed
                });
                // The stage (and its handle on the scope's state) is gone; the writer answers
                // once the scope's last segment is committed and the state released.
                flushed && self.writer(scope).send(ToWriter::Release(done)).is_ok()
            }
        };
        if !ok {
            self.fail_writer();
        }
    }

    /// The writer queue of `scope`.
    fn writer(&self, scope: ScopeId) -> &Sender<ToWriter> {
        &self.writers[scope as usize % self.writers.len()]
    }

    /// The stage of an open scope (an item for another is the source's bug: reported).
    fn stage(&mut self, scope: ScopeId) -> Option<&mut OrderedStage> {
        let stage = self.scopes.get_mut(&scope);
        if stage.is_none() {
            self.failure.get_or_insert(IngestError::Internal(format!(
                "the source sent an item for scope {scope}, which it has not opened"
            )));
        }
        stage
    }

    fn fail_writer(&mut self) {
        self.failure
            .get_or_insert(IngestError::Internal("the writer stopped".into()));
    }

    /// Commit segments that waited `max_latency` (follow mode, slow streams) — once the
    /// writer has committed what it was given: while it is busy, the due segments keep
    /// growing and go together when it is free (group commit), so a stream read faster than
    /// one commit per scope per `max_latency` is written in fewer, larger commits instead of
    /// stalling the read on each (a backlog of 4 Kafka partitions read at 60k events/s spent
    /// three quarters of each second waiting on the writer). Size-bounded flushes are not
    /// deferred. An event waits at most `max_latency` plus one commit.
    fn flush_due(&mut self) {
        if self.shared.in_flight.load(Ordering::Relaxed) > 0 {
            return;
        }
        let max_latency = self.opts.max_latency;
        let mut ok = true;
        for stage in self.scopes.values_mut() {
            if stage.due(max_latency) {
                ok &= stage.flush(false);
            }
        }
        if !ok {
            self.fail_writer();
        }
    }

    /// Running counters for `--metrics-listen` and the progress bar.
    fn publish(&self) {
        let mut total = Summary::default();
        for s in self
            .closed
            .iter()
            .chain(self.scopes.values().map(|s| &s.summary))
        {
            total.add_totals(s);
        }
        self.opts.progress_counters.publish(&total);
        self.progress.show(&total);
    }

    /// Flush every open scope (unless the run failed: what is uncommitted is read again by
    /// the next run) and return the scopes' summaries.
    fn finish(mut self) -> Result<Vec<Summary>, IngestError> {
        let failed = self.failure.is_some();
        for (_, mut stage) in std::mem::take(&mut self.scopes) {
            if !failed && !stage.flush(true) {
                self.fail_writer();
            }
            self.closed.push(stage.into_summary());
        }
        self.publish();
        self.progress.finish();
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.closed),
        }
    }
}

/// Commits segments in order, records their positions for the sources, answers releases.
fn writer(rx: &Receiver<ToWriter>, shared: &Shared) -> Result<Written, SinkError> {
    let mut written = Written::default();
    for msg in rx {
        match msg {
            ToWriter::Commit {
                scope,
                out,
                segment,
            } => {
                let ends: Vec<(String, u64)> = segment
                    .positions
                    .iter()
                    .map(|p| (p.fingerprint.clone(), p.end))
                    .collect();
                let committed = commit_segment(&mut lock(&out), segment);
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                written.add(committed?);
                let mut acks = lock(&shared.acks);
                for (fp, end) in ends {
                    acks.insert((scope, fp), end);
                }
            }
            ToWriter::Release(done) => {
                let _ = done.send(());
            }
        }
    }
    Ok(written)
}

/// A spinner with bytes read and counts, on a terminal only.
struct ProgressBar(Option<indicatif::ProgressBar>);

impl ProgressBar {
    fn new(wanted: bool) -> Self {
        ProgressBar((wanted && std::io::stderr().is_terminal()).then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {binary_bytes} read ({binary_bytes_per_sec}) {msg}",
                )
                .expect("valid template"),
            );
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        }))
    }

    fn show(&self, s: &Summary) {
        if let Some(pb) = &self.0 {
            pb.set_position(s.bytes_in);
            pb.set_message(format!(
                "{} events, {} dead letters",
                s.events, s.deadletter
            ));
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}
