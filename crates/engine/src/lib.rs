//! Wires source → normalize → batch → sinks for file ingest ([`kafka`] does it for Kafka). A reader thread cuts inputs into
//! line-aligned chunks; worker threads normalize chunks into Arrow batches in parallel; this
//! thread restores input order, derives latencies, splits by hour and groups segments; a writer
//! thread commits each segment (Parquet + dead letters + checkpoint). Channels are bounded, so
//! memory stays bounded whatever the input size. Counters prove records = events + dead letters
//! + ignored.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use crossbeam_channel::bounded;
use serde::Serialize;
use serde_json::value::RawValue;
use strum::VariantNames;

use dedupe::Dedupe;
use mfascope_core::event::{
    Action, CanonicalBatch, Event, EventBatchBuilder, Factor, Outcome, Source, col,
};
pub use mfascope_core::observe::{BatchObserver, Observers};
use mfascope_normalize::latency::LatencyPairer;
use mfascope_normalize::pseudonym::Pseudonymizer;
use mfascope_normalize::{LeafSink, LogFormat, Normalizer, Reject};
use mfascope_sink::segment::Position;
use mfascope_sink::{DeadLetter, Location, OutDir, Segment, SinkError, commit_segment};
use mfascope_source::{Chunk, ChunkKind, ReadItem, Reader, ReaderConfig};
pub use progress::PipelineProgress;

pub mod dedupe;
pub mod kafka;
mod progress;

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
    /// Replace user, actor and client IP by keyed pseudonyms; no raw record is kept.
    pub pseudonymize: Option<Arc<Pseudonymizer>>,
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
    /// Show a progress bar (only honoured on a terminal).
    pub progress: bool,
    /// Consumers fed every batch (live SLIs, rules).
    pub observers: Observers,
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
            pseudonymize: None,
            dedupe_window: dedupe::DEFAULT_WINDOW,
            workers: thread::available_parallelism().map_or(2, std::num::NonZero::get),
            segment_rows: 200_000,
            segment_bytes: 16 << 20,
            max_latency: Duration::from_secs(1),
            reader: ReaderConfig::default(),
            progress: true,
            observers: Observers::default(),
            progress_counters: Arc::default(),
        }
    }
}

/// An input that could not be read at all.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    /// The input's path as given.
    pub path: String,
    /// Why it could not be opened.
    pub reason: String,
}

/// What an ingest did; `records == events + deadletter + ignored` always holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Leaf records read.
    pub records: u64,
    /// Canonical events written.
    pub events: u64,
    /// Records written to dead letters.
    pub deadletter: u64,
    /// Records deliberately ignored as not about authentication.
    pub ignored: u64,
    /// Ignored records by `format:type`.
    pub ignored_by_type: BTreeMap<String, u64>,
    /// Dead letters by reason class (reason up to the first `:`).
    pub deadletter_by_reason: BTreeMap<String, u64>,
    /// Files made visible (Parquet and dead-letter files).
    pub files_written: u64,
    /// Bytes of Parquet and dead letters written.
    pub bytes_written: u64,
    /// Input bytes read (decompressed).
    pub bytes_in: u64,
    /// Input bytes skipped because an earlier run committed them.
    pub bytes_already_ingested: u64,
    /// Inputs opened.
    pub inputs: u64,
    /// Inputs that could not be opened.
    pub unreadable: Vec<Unreadable>,
    /// Segments committed.
    pub segments: u64,
    /// Verifications whose latency was derived from a paired challenge.
    pub latency_derived: u64,
    /// Events by source.
    pub by_source: BTreeMap<String, u64>,
    /// Events by action.
    pub by_action: BTreeMap<String, u64>,
    /// Events by factor.
    pub by_factor: BTreeMap<String, u64>,
    /// Events by outcome.
    pub by_outcome: BTreeMap<String, u64>,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Events per second.
    pub events_per_s: f64,
}

impl Summary {
    /// Add the counts of another part of the same run (a Kafka partition's stage).
    pub fn add(&mut self, other: &Summary) {
        let add = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
            for (k, v) in from {
                *into.entry(k.clone()).or_default() += v;
            }
        };
        self.records += other.records;
        self.events += other.events;
        self.deadletter += other.deadletter;
        self.ignored += other.ignored;
        self.bytes_in += other.bytes_in;
        self.latency_derived += other.latency_derived;
        self.inputs += other.inputs;
        add(&mut self.ignored_by_type, &other.ignored_by_type);
        add(&mut self.deadletter_by_reason, &other.deadletter_by_reason);
        add(&mut self.by_source, &other.by_source);
        add(&mut self.by_action, &other.by_action);
        add(&mut self.by_factor, &other.by_factor);
        add(&mut self.by_outcome, &other.by_outcome);
    }

    /// Record what the writer committed and the run's wall time and rate.
    fn close(&mut self, written: Written, started: Instant) {
        self.files_written = written.files;
        self.bytes_written = written.bytes;
        self.segments = written.segments;
        self.elapsed_s = started.elapsed().as_secs_f64();
        self.events_per_s = if self.elapsed_s > 0.0 {
            self.events as f64 / self.elapsed_s
        } else {
            0.0
        };
    }
}

/// What a writer thread committed.
#[derive(Clone, Copy, Debug, Default)]
struct Written {
    files: u64,
    bytes: u64,
    segments: u64,
}

impl Written {
    fn add(&mut self, stats: mfascope_sink::SegmentStats) {
        self.files += stats.files;
        self.bytes += stats.bytes;
        self.segments += 1;
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
}

/// Counters a worker accumulates for one chunk.
#[derive(Default)]
struct Counts {
    records: u64,
    ignored: HashMap<String, u64>,
    source: [u64; Source::VARIANTS.len()],
    action: [u64; Action::VARIANTS.len()],
    factor: [u64; Factor::VARIANTS.len()],
    outcome: [u64; Outcome::VARIANTS.len()],
}

/// A normalized chunk.
struct Processed {
    input: u32,
    /// Position of the first record (a byte offset, or a Kafka offset).
    start: u64,
    /// Position after the last record.
    end: u64,
    end_line: u64,
    bytes: u64,
    batch: Option<CanonicalBatch>,
    /// Where each row of `batch` came from.
    rows: Vec<Row>,
    dead: Vec<DeadLetter>,
    counts: Counts,
}

enum Work {
    Processed(Box<Processed>),
    Passthrough(ReadItem),
}

/// Run a file ingest until inputs are exhausted (or `stop` is set, in follow mode).
pub fn ingest(opts: &IngestOptions, stop: Arc<AtomicBool>) -> Result<Summary, IngestError> {
    let started = Instant::now();
    let mut out = OutDir::open(&opts.out)?;
    let resume = out.checkpoint.resume();
    let workers = opts.workers.max(1);

    let (item_tx, item_rx) = bounded::<(u64, ReadItem)>(workers * 2);
    let (done_tx, done_rx) = bounded::<(u64, Work)>(workers * 2);
    // Rendezvous: at most one segment being written while the next one fills.
    let (seg_tx, seg_rx) = bounded::<Segment>(0);

    let mut reader = Reader::new(opts.inputs.clone(), opts.reader.clone(), resume);
    let reader_stop = stop.clone();
    let reader_handle = thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let mut seq = 0u64;
            reader.run(&reader_stop, &mut |item| {
                seq += 1;
                item_tx.send((seq, item)).is_ok()
            });
        })
        .map_err(|e| IngestError::Internal(e.to_string()))?;

    let mut worker_handles = Vec::new();
    for i in 0..workers {
        let rx = item_rx.clone();
        let tx = done_tx.clone();
        let format = opts.format;
        let keep_raw = opts.keep_raw;
        let pseudonymize = opts.pseudonymize.clone();
        let pool = opts.reader.pool.clone();
        worker_handles.push(
            thread::Builder::new()
                .name(format!("normalize-{i}"))
                .spawn(move || {
                    let mut normalizer = Normalizer::new(format)
                        .keep_raw(keep_raw)
                        .pseudonymize(pseudonymize);
                    for (seq, item) in rx {
                        let work = match item {
                            ReadItem::Chunk(mut chunk) => {
                                let processed = process_chunk(&mut normalizer, &chunk);
                                pool.put(std::mem::take(&mut chunk.data));
                                Work::Processed(Box::new(processed))
                            }
                            other => Work::Passthrough(other),
                        };
                        if tx.send((seq, work)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| IngestError::Internal(e.to_string()))?,
        );
    }
    drop(item_rx);
    drop(done_tx);

    let writer_handle = thread::Builder::new()
        .name("writer".into())
        .spawn(move || -> Result<Written, SinkError> {
            let mut written = Written::default();
            for seg in seg_rx {
                written.add(commit_segment(&mut out, seg)?);
            }
            Ok(written)
        })
        .map_err(|e| IngestError::Internal(e.to_string()))?;

    let progress = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} {binary_bytes} read ({binary_bytes_per_sec}) {msg}",
            )
            .expect("valid template"),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    });

    let mut stage = OrderedStage::new(opts, Box::new(move |seg| seg_tx.send(seg).is_ok()));
    let mut reorder: BTreeMap<u64, Work> = BTreeMap::new();
    let mut next = 1u64;
    let mut send_failed = false;
    loop {
        let msg = done_rx.recv_timeout(opts.max_latency / 4);
        match msg {
            Ok((seq, work)) => {
                reorder.insert(seq, work);
                while let Some(work) = reorder.remove(&next) {
                    next += 1;
                    if !stage.apply(work) {
                        send_failed = true;
                    }
                    opts.progress_counters.publish(&stage.summary);
                    if let Some(pb) = &progress {
                        pb.set_position(stage.summary.bytes_in);
                        pb.set_message(format!(
                            "{} events, {} dead letters",
                            stage.summary.events, stage.summary.deadletter
                        ));
                    }
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        // Checked on every wake-up: in follow mode the reader reports idle polls more often
        // than the receive times out.
        if stage.due(opts.max_latency) && !stage.flush() {
            send_failed = true;
        }
        opts.observers.tick();
        if send_failed {
            // The writer failed; stop everything and report its error below.
            stop.store(true, Ordering::Relaxed);
            break;
        }
    }
    if !send_failed {
        stage.flush();
    }
    let mut summary = std::mem::take(&mut stage.summary);
    summary.latency_derived = stage.pairer.paired;
    drop(stage);
    drop(done_rx);
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let writer = writer_handle
        .join()
        .map_err(|_| IngestError::Internal("writer thread panicked".into()))?;
    let _ = reader_handle.join();
    for h in worker_handles {
        let _ = h.join();
    }
    summary.close(writer?, started);
    Ok(summary)
}

/// Where a finished segment goes (the writer); false when it has gone away.
type SegmentSink = Box<dyn FnMut(Segment) -> bool + Send>;

/// Restores order, derives latencies, splits by hour, groups segments.
struct OrderedStage {
    sink: SegmentSink,
    segment: Segment,
    segment_rows: usize,
    segment_bytes: usize,
    buffered_rows: usize,
    buffered_bytes: usize,
    segment_started: Option<Instant>,
    inputs: HashMap<u32, (String, String)>,
    positions: Vec<Position>,
    pairer: LatencyPairer,
    dedupe: Dedupe,
    summary: Summary,
    observers: Observers,
}

impl OrderedStage {
    fn new(opts: &IngestOptions, sink: SegmentSink) -> Self {
        OrderedStage {
            sink,
            segment: Segment::default(),
            segment_rows: opts.segment_rows.max(1),
            segment_bytes: opts.segment_bytes.max(1),
            buffered_rows: 0,
            buffered_bytes: 0,
            segment_started: None,
            inputs: HashMap::new(),
            positions: Vec::new(),
            pairer: LatencyPairer::default(),
            dedupe: Dedupe::new(opts.dedupe_window),
            summary: Summary::default(),
            observers: opts.observers.clone(),
        }
    }

    /// Whether positions or dead letters wait for a commit.
    fn has_pending(&self) -> bool {
        !self.positions.is_empty() || !self.segment.dead_letters.is_empty()
    }

    fn due(&self, max_latency: Duration) -> bool {
        self.segment_started
            .is_some_and(|t| t.elapsed() >= max_latency)
    }

    /// Name an input for positions and dead letters.
    fn register(&mut self, input: u32, fingerprint: String, path: String) {
        self.inputs.insert(input, (fingerprint, path));
    }

    fn touch(&mut self) {
        self.segment_started.get_or_insert_with(Instant::now);
    }

    fn advance(&mut self, input: u32, start: u64, end: u64, end_line: u64) {
        let (fp, path) = self.inputs.get(&input).cloned().unwrap_or_default();
        match self.positions.iter_mut().find(|p| p.fingerprint == fp) {
            Some(p) => {
                p.end = end;
                p.end_line = end_line;
            }
            None => self.positions.push(Position {
                fingerprint: fp,
                path,
                start,
                end,
                end_line,
            }),
        }
        self.touch();
    }

    fn count_dead(&mut self, reason: &str) {
        self.summary.deadletter += 1;
        *self
            .summary
            .deadletter_by_reason
            .entry(reason_class(reason))
            .or_default() += 1;
    }

    /// Apply one in-order item; false when the writer has gone away.
    fn apply(&mut self, work: Work) -> bool {
        match work {
            Work::Passthrough(ReadItem::Opened {
                input,
                path,
                fingerprint,
                resumed_at,
                ..
            }) => {
                self.register(input, fingerprint.to_string(), path.to_string());
                self.summary.inputs += 1;
                self.summary.bytes_already_ingested += resumed_at;
            }
            Work::Passthrough(ReadItem::Error {
                input,
                path,
                offset,
                line,
                len,
                reason,
            }) => {
                self.summary.records += 1;
                self.count_dead(&reason);
                self.segment
                    .dead_letters
                    .push(DeadLetter::new(&path, line, offset, None, reason, b""));
                self.advance(input, offset, offset + len, line + 1);
            }
            Work::Passthrough(ReadItem::Unreadable { path, reason }) => {
                tracing::warn!(%path, %reason, "input cannot be read");
                self.summary.unreadable.push(Unreadable { path, reason });
            }
            Work::Passthrough(ReadItem::Idle | ReadItem::Chunk(_)) => {}
            Work::Processed(mut p) => {
                self.drop_repeats(&mut p);
                self.summary.bytes_in += p.bytes;
                self.summary.records += p.counts.records;
                for d in &p.dead {
                    self.count_dead(&d.reason);
                }
                let ignored: u64 = p.counts.ignored.values().sum();
                self.summary.ignored += ignored;
                for (k, v) in p.counts.ignored {
                    *self.summary.ignored_by_type.entry(k).or_default() += v;
                }
                add_counts(
                    &mut self.summary.by_source,
                    Source::VARIANTS,
                    &p.counts.source,
                );
                add_counts(
                    &mut self.summary.by_action,
                    Action::VARIANTS,
                    &p.counts.action,
                );
                add_counts(
                    &mut self.summary.by_factor,
                    Factor::VARIANTS,
                    &p.counts.factor,
                );
                add_counts(
                    &mut self.summary.by_outcome,
                    Outcome::VARIANTS,
                    &p.counts.outcome,
                );
                self.segment.dead_letters.extend(p.dead);
                if let Some(batch) = p.batch {
                    self.summary.events += batch.num_rows() as u64;
                    let batch = self.pairer.apply(batch);
                    self.observers.observe(&batch);
                    for (hour, part) in split_by_hour(&batch) {
                        self.buffered_rows += part.num_rows();
                        self.buffered_bytes += part.get_array_memory_size();
                        self.segment.partitions.entry(hour).or_default().push(part);
                    }
                }
                self.advance(p.input, p.start, p.end, p.end_line);
                if self.buffered_rows >= self.segment_rows
                    || self.buffered_bytes >= self.segment_bytes
                {
                    return self.flush();
                }
            }
        }
        true
    }

    /// Rows of `p` repeating a record this run already ingested (same source, event id and
    /// bytes) become dead letters (their counts move with them).
    fn drop_repeats(&mut self, p: &mut Processed) {
        let Some(batch) = p.batch.take() else {
            return;
        };
        let contents: Vec<u64> = p.rows.iter().map(|r| r.content).collect();
        let (kept, repeats) = self.dedupe.filter(batch.clone(), &contents);
        if repeats.is_empty() {
            p.batch = Some(batch);
            return;
        }
        let path = self
            .inputs
            .get(&p.input)
            .map_or("", |(_, path)| path.as_str());
        let [source, action, factor, outcome] =
            [col::SOURCE, col::ACTION, col::FACTOR, col::OUTCOME].map(|c| {
                batch
                    .vocabulary_keys(c)
                    .map(<[i8]>::to_vec)
                    .unwrap_or_default()
            });
        let key = |keys: &[i8], row: usize| keys.get(row).map_or(0, |k| *k as usize);
        for r in repeats {
            p.counts.source[key(&source, r.row)] -= 1;
            p.counts.action[key(&action, r.row)] -= 1;
            p.counts.factor[key(&factor, r.row)] -= 1;
            p.counts.outcome[key(&outcome, r.row)] -= 1;
            let at = p.rows.get(r.row).copied().unwrap_or_default();
            p.dead.push(DeadLetter::new(
                path,
                at.line,
                at.offset,
                Some(r.source),
                format!(
                    "duplicate record: event_id {:?} with the same content was already \
                     ingested in this run (the first is kept)",
                    r.event_id
                ),
                b"",
            ));
        }
        p.batch = (kept.num_rows() > 0).then_some(kept);
    }

    /// Hand the current segment to the writer; false when the writer has gone away.
    fn flush(&mut self) -> bool {
        if self.positions.is_empty() && self.segment.dead_letters.is_empty() {
            return true;
        }
        let mut seg = std::mem::take(&mut self.segment);
        seg.positions = std::mem::take(&mut self.positions);
        let first = &seg.positions[0];
        seg.id = format!(
            "part-{:016x}",
            xxhash_rust::xxh3::xxh3_64(format!("{}@{}", first.fingerprint, first.start).as_bytes())
        );
        self.segment_started = None;
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        (self.sink)(seg)
    }
}

fn add_counts(map: &mut BTreeMap<String, u64>, names: &[&str], counts: &[u64]) {
    for (name, &n) in names.iter().zip(counts) {
        if n > 0 {
            *map.entry((*name).to_string()).or_default() += n;
        }
    }
}

fn reason_class(reason: &str) -> String {
    let class = reason.split(':').next().unwrap_or(reason);
    class.chars().take(60).collect()
}

/// Split a batch into per-hour batches (no copy when it spans one hour).
fn split_by_hour(batch: &CanonicalBatch) -> Vec<(i64, RecordBatch)> {
    let times = batch.times();
    let batch = batch.record_batch();
    let hour = |ms: i64| ms.div_euclid(3_600_000);
    let Some(&first) = times.values().first() else {
        return vec![];
    };
    let h0 = hour(first);
    if times.values().iter().all(|&t| hour(t) == h0) {
        return vec![(h0, batch.clone())];
    }
    let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (i, &t) in times.values().iter().enumerate() {
        groups.entry(hour(t)).or_default().push(i as u32);
    }
    groups
        .into_iter()
        .map(|(h, rows)| {
            (
                h,
                take_record_batch(batch, &UInt32Array::from(rows)).expect("rows in range"),
            )
        })
        .collect()
}

/// Where an event came from: its record's line and byte offset, and a hash of the record's
/// bytes (repeated records are recognized by id and content).
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    line: u64,
    offset: u64,
    content: u64,
}

/// Collects the leaves of one chunk (or of a Kafka partition's messages until a flush).
struct ChunkSink {
    builder: EventBatchBuilder,
    /// Where each event appended to `builder` came from.
    rows: Vec<Row>,
    dead: Vec<DeadLetter>,
    counts: Counts,
    path: String,
    line: u64,
    record_offset: u64,
    format_hint: Option<&'static str>,
    /// Dead letters keep no record text (pseudonymized ingest).
    withhold_raw: bool,
}

impl LeafSink for ChunkSink {
    fn event(&mut self, offset: usize, raw: &[u8], e: Event<'_>) {
        self.counts.records += 1;
        self.rows.push(Row {
            line: self.line,
            offset: self.record_offset + offset as u64,
            content: xxhash_rust::xxh3::xxh3_64(raw),
        });
        self.counts.source[e.source.key() as usize] += 1;
        self.counts.action[e.action.key() as usize] += 1;
        self.counts.factor[e.factor.key() as usize] += 1;
        self.counts.outcome[e.outcome.key() as usize] += 1;
        self.builder.append(&e);
    }
    fn ignored(&mut self, _offset: usize, kind: String) {
        self.counts.records += 1;
        *self.counts.ignored.entry(kind).or_default() += 1;
    }
    fn dead(&mut self, offset: usize, raw: &[u8], reject: Reject) {
        self.counts.records += 1;
        let format = reject.format.map(LogFormat::as_str).or(self.format_hint);
        let (path, line, offset) = (&self.path, self.line, self.record_offset + offset as u64);
        // Pseudonymized ingest: the text would carry identities (and costs a redaction pass).
        self.dead.push(if self.withhold_raw {
            DeadLetter::withheld(path, line, offset, format, reject.reason, raw.len() as u64)
        } else {
            DeadLetter::new(path, line, offset, format, reject.reason, raw)
        });
    }
}

fn process_chunk(normalizer: &mut Normalizer, chunk: &Chunk) -> Processed {
    let data = &chunk.data;
    let mut sink = ChunkSink {
        builder: EventBatchBuilder::with_capacity(chunk.lines as usize + 1),
        rows: Vec::new(),
        dead: Vec::new(),
        counts: Counts::default(),
        path: chunk.path.to_string(),
        line: chunk.first_line,
        record_offset: chunk.start,
        format_hint: None,
        withhold_raw: normalizer.withholds_raw(),
    };
    match chunk.kind {
        ChunkKind::Lines => {
            let mut pos = 0usize;
            while pos < data.len() {
                let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
                sink.record_offset = chunk.start + pos as u64;
                normalizer.record(&data[pos..end], &mut sink);
                sink.line += 1;
                pos = end + 1;
            }
        }
        ChunkKind::Document => process_document(normalizer, chunk, &mut sink),
    }
    Processed {
        input: chunk.input,
        start: chunk.start,
        end: chunk.start + data.len() as u64,
        end_line: chunk.first_line + chunk.lines,
        bytes: data.len() as u64,
        batch: (!sink.builder.is_empty()).then(|| sink.builder.finish_canonical()),
        rows: sink.rows,
        dead: sink.dead,
        counts: sink.counts,
    }
}

/// What one chunk became: every record counted once, as an event, an ignored record or a dead
/// letter. The same path the ingest workers take, exposed for fuzzing and tests.
#[derive(Debug)]
pub struct ChunkTally {
    /// Records seen (leaves of envelopes and arrays count one each).
    pub records: u64,
    /// The events, as the batch the Parquet sink would write.
    pub batch: Option<CanonicalBatch>,
    /// Deliberately ignored records.
    pub ignored: u64,
    /// Records that failed, with their reasons.
    pub dead: Vec<DeadLetter>,
}

/// Normalize one chunk as an ingest worker does.
pub fn normalize_chunk(normalizer: &mut Normalizer, chunk: &Chunk) -> ChunkTally {
    let p = process_chunk(normalizer, chunk);
    ChunkTally {
        records: p.counts.records,
        batch: p.batch,
        ignored: p.counts.ignored.values().sum(),
        dead: p.dead,
    }
}

/// Split a multi-line document into top-level JSON values and normalize each.
fn process_document(normalizer: &mut Normalizer, chunk: &Chunk, sink: &mut ChunkSink) {
    let data = &chunk.data;
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<&RawValue>();
    let mut counted_to = 0usize;
    let mut line = chunk.first_line;
    loop {
        let before = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let bytes = value.get().as_bytes();
                let offset = bytes.as_ptr() as usize - data.as_ptr() as usize;
                line += memchr::memchr_iter(b'\n', &data[counted_to..offset]).count() as u64;
                counted_to = offset;
                sink.line = line;
                sink.record_offset = chunk.start + offset as u64;
                normalizer.record(bytes, sink);
            }
            Some(Err(e)) => {
                let rest = &data[before..];
                let skip = rest
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(0);
                let offset = before + skip;
                line += memchr::memchr_iter(b'\n', &data[counted_to..offset]).count() as u64;
                sink.line = line;
                sink.record_offset = chunk.start + offset as u64;
                sink.dead(
                    0,
                    &data[offset..],
                    Reject {
                        format: None,
                        reason: format!(
                            "invalid JSON document at line {} column {}: {e}",
                            chunk.first_line + e.line() as u64 - 1,
                            e.column()
                        ),
                    },
                );
                break;
            }
        }
    }
}

/// Receives stop requests from SIGINT/SIGTERM.
pub fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}
