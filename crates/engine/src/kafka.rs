//! Kafka ingest with an exactly-once effect into Parquet (the kafka-delta-ingest pattern). A
//! consumer group member polls its partitions with librdkafka (`rdkafka`); each partition's
//! messages are normalized into their own segment, which a writer thread commits like a file
//! segment (Parquet made durable, then the partition's offsets in its own state under
//! `OUT/_state/kafka/TOPIC/PARTITION/`, through the intent log). Only then are the offsets
//! committed to Kafka, for lag monitoring; on assignment the consumer seeks to the offsets in
//! the partition state, so Kafka's committed offsets never decide what is ingested. A segment's
//! name derives from topic, partition and first offset, and the partition state is locked by
//! its owner, so instances sharing `OUT` never write the same rows, and a replay after a crash
//! rewrites exactly what was not committed.
//!
//! Each message is one record, or several separated by newlines; the format is detected per
//! record as for files, and rejects become dead letters naming `kafka://TOPIC/PARTITION` and
//! the message offset.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use serde::Serialize;

use super::{
    ChunkSink, Counts, IngestError, IngestOptions, OrderedStage, Processed, Summary, Work, Written,
};
use mfascope_core::event::EventBatchBuilder;
use mfascope_normalize::{LeafSink, Normalizer};
use mfascope_sink::{Location, OutDir, Segment, SinkError, commit_segment};

/// How often the running counters are published for `--metrics-listen` (not per message).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Rows normalized before a partition's messages are handed to its stage — and so to the live
/// SLIs and the rule engine — whatever the segment size …
const CHUNK_ROWS: usize = 4096;
/// … or after this long: live views lag the stream by at most this, not by `--max-latency`.
const CHUNK_WAIT: Duration = Duration::from_millis(50);

/// How long an assignment waits for the previous owner of a partition to release its state.
const OWNER_WAIT: Duration = Duration::from_secs(120);

/// Where to consume from.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// Bootstrap servers (`HOST:PORT[,…]`).
    pub brokers: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group: String,
    /// librdkafka properties passed through (`-X key=value`), applied last.
    pub properties: Vec<(String, String)>,
    /// Stop once every partition of the topics is committed up to its high watermark, by this
    /// instance or (sharing the output) by the others of its group (benchmarks, backfills);
    /// otherwise run until SIGINT/SIGTERM.
    pub exit_at_end: bool,
}

/// Per-partition counters in the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PartitionSummary {
    /// Messages consumed in this run.
    pub messages: u64,
    /// Next offset committed to Parquet (the partition state).
    pub committed_offset: Option<i64>,
    /// Consumer lag reported by librdkafka (messages behind the high watermark).
    pub lag: Option<i64>,
}

/// Kafka-specific part of the ingest summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KafkaSummary {
    /// Per `TOPIC/PARTITION`.
    pub partitions: BTreeMap<String, PartitionSummary>,
    /// Partition assignments received.
    pub assignments: u64,
    /// Partition revocations received.
    pub revocations: u64,
    /// Offset commits sent to Kafka (after the matching Parquet commits).
    pub offset_commits: u64,
    /// Messages delivered again below the committed position and skipped.
    pub redelivered: u64,
    /// Consumer errors seen (broker down, …); librdkafka retries by itself.
    pub consumer_errors: u64,
}

type PartitionKey = (String, i32);

fn key_text((topic, partition): &PartitionKey) -> String {
    format!("{topic}/{partition}")
}

/// State of one topic partition (scoped under `_state/kafka/`).
fn state_dir((topic, partition): &PartitionKey) -> String {
    format!("_state/kafka/{topic}/{partition}")
}

/// Checkpoint input key of a partition.
fn fingerprint(key: &PartitionKey) -> String {
    format!("kafka:{}", key_text(key))
}

/// A segment for the writer, with the partition state it commits into.
struct ToCommit {
    out: Arc<Mutex<OutDir>>,
    key: PartitionKey,
    segment: Segment,
}

/// One assigned partition: its state, what is buffered and the next offset expected.
struct Assigned {
    /// Holds the partition state, and so its lock, while assigned (and while segments of it
    /// wait for the writer).
    _state: Arc<Mutex<OutDir>>,
    stage: OrderedStage,
    sink: ChunkSink,
    input: u32,
    /// Offset of the first buffered message.
    first: Option<i64>,
    /// Next offset to ingest.
    next: i64,
    bytes: u64,
    started: Option<Instant>,
}

/// State shared by the poll loop and the rebalance callback (both on the polling thread).
struct Shared {
    opts: IngestOptions,
    assigned: HashMap<PartitionKey, Assigned>,
    to_writer: Sender<ToCommit>,
    /// Summaries of stages that were flushed and dropped (revoked partitions).
    done: Vec<Summary>,
    kafka: KafkaSummary,
    next_input: u32,
    /// A failure inside a callback, reported by the poll loop.
    failed: Option<IngestError>,
}

/// The rdkafka context: rebalance handling and statistics.
struct Context {
    shared: Mutex<Shared>,
}

impl Context {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        let mut shared = self.lock();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                let key = key_text(&(topic.clone(), *partition));
                if let Some(s) = shared.kafka.partitions.get_mut(&key) {
                    s.lag = Some(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut shared = self.lock();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                shared.kafka.assignments += 1;
                let keys: Vec<PartitionKey> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                for key in keys {
                    match shared.assign(&key) {
                        Ok(Some(next)) => {
                            if let Err(e) =
                                tpl.set_partition_offset(&key.0, key.1, Offset::Offset(next))
                            {
                                tracing::error!(partition = %key_text(&key), error = %e, "cannot seek");
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            shared.failed.get_or_insert(e.into());
                        }
                    }
                }
                tracing::info!(partitions = tpl.count(), "partitions assigned");
                if let Err(e) = consumer.assign(tpl) {
                    shared
                        .failed
                        .get_or_insert(IngestError::Internal(format!("assigning partitions: {e}")));
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                shared.kafka.revocations += 1;
                for e in tpl.elements() {
                    shared.revoke(&(e.topic().to_string(), e.partition()));
                }
                tracing::info!(partitions = tpl.count(), "partitions revoked");
                if let Err(e) = consumer.unassign() {
                    tracing::warn!(error = %e, "unassigning partitions");
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
        }
    }
}

impl Shared {
    /// Take ownership of a partition's state (waiting for a previous owner to let go) and
    /// return the offset to resume at, when the state has one.
    fn assign(&mut self, key: &PartitionKey) -> Result<Option<i64>, SinkError> {
        let root = self.opts.out.clone();
        let scope = state_dir(key);
        let waited = Instant::now();
        let out = loop {
            match OutDir::open_scoped(&root, &scope) {
                Ok(out) => break out,
                Err(SinkError::Locked(_)) if waited.elapsed() < OWNER_WAIT => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        };
        let next = out
            .checkpoint
            .inputs
            .get(&fingerprint(key))
            .map(|s| s.offset as i64);
        let out = Arc::new(Mutex::new(out));
        let to_writer = self.to_writer.clone();
        let (writer_out, writer_key) = (out.clone(), key.clone());
        let mut stage = OrderedStage::new(
            &self.opts,
            Box::new(move |segment| {
                to_writer
                    .send(ToCommit {
                        out: writer_out.clone(),
                        key: writer_key.clone(),
                        segment,
                    })
                    .is_ok()
            }),
        );
        let input = self.next_input;
        self.next_input += 1;
        let path = format!("kafka://{}", key_text(key));
        stage.register(input, fingerprint(key), path.clone());
        let entry = self.kafka.partitions.entry(key_text(key)).or_default();
        entry.committed_offset = next;
        self.assigned.insert(
            key.clone(),
            Assigned {
                _state: out,
                stage,
                sink: new_sink(path, self.opts.pseudonymize.is_some()),
                input,
                first: None,
                next: next.unwrap_or(0),
                bytes: 0,
                started: None,
            },
        );
        Ok(next)
    }

    /// Commit what a revoked partition buffered and let its state go (once the writer is done).
    fn revoke(&mut self, key: &PartitionKey) {
        if let Some(mut a) = self.assigned.remove(key) {
            if !flush(&mut a) {
                self.failed
                    .get_or_insert(IngestError::Internal("the writer stopped".into()));
            }
            let mut summary = std::mem::take(&mut a.stage.summary);
            summary.latency_derived = a.stage.pairer.paired;
            self.done.push(summary);
        }
    }
}

fn new_sink(path: String, withhold_raw: bool) -> ChunkSink {
    ChunkSink {
        builder: EventBatchBuilder::default(),
        rows: Vec::new(),
        dead: Vec::new(),
        counts: Counts::default(),
        path,
        line: 0,
        record_offset: 0,
        format_hint: None,
        withhold_raw,
    }
}

/// Hand a partition's buffered messages to its stage and the stage's segment to the writer;
/// false when the writer has gone away.
fn flush(a: &mut Assigned) -> bool {
    hand_over(a) && a.stage.flush()
}

/// Hand a partition's normalized messages to its stage (live observers see them now; the
/// stage commits its segment on size, or when [`flush`]ed); false when the writer has gone.
fn hand_over(a: &mut Assigned) -> bool {
    let Some(first) = a.first.take() else {
        return true;
    };
    let path = a.sink.path.clone();
    let withhold_raw = a.sink.withhold_raw;
    let mut sink = std::mem::replace(&mut a.sink, new_sink(path, withhold_raw));
    let processed = Processed {
        input: a.input,
        start: first as u64,
        end: a.next as u64,
        end_line: 0,
        bytes: std::mem::take(&mut a.bytes),
        batch: (!sink.builder.is_empty()).then(|| sink.builder.finish_canonical()),
        rows: sink.rows,
        dead: sink.dead,
        counts: sink.counts,
    };
    a.started = None;
    a.stage.apply(Work::Processed(Box::new(processed)))
}

/// Normalize one message into its partition's buffer.
fn take_message(normalizer: &mut Normalizer, a: &mut Assigned, offset: i64, payload: &[u8]) {
    a.first.get_or_insert(offset);
    a.started.get_or_insert_with(Instant::now);
    a.bytes += payload.len() as u64;
    a.sink.line = offset as u64;
    let mut pos = 0;
    let mut records = 0;
    while pos < payload.len() {
        let end = memchr::memchr(b'\n', &payload[pos..]).map_or(payload.len(), |i| pos + i);
        let record = &payload[pos..end];
        if !record.iter().all(u8::is_ascii_whitespace) {
            a.sink.record_offset = offset as u64;
            normalizer.record(record, &mut a.sink);
            records += 1;
        }
        pos = end + 1;
    }
    if records == 0 {
        // An empty message is a record too: nothing lost, nothing invented.
        a.sink.dead(
            0,
            payload,
            mfascope_normalize::Reject {
                format: None,
                reason: "empty Kafka message".into(),
            },
        );
    }
    a.next = offset + 1;
}

/// Build the consumer: manual offset management, earliest start without state.
fn consumer(k: &KafkaOptions, context: Context) -> Result<BaseConsumer<Context>, IngestError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "1000")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        // Larger fetches: a broker answering each fetch with one small batch per partition
        // (Tansu) is then fetched from several times faster; a short wait keeps latency low.
        .set("max.partition.fetch.bytes", "16777216")
        .set("fetch.max.bytes", "67108864")
        .set("fetch.wait.max.ms", "100");
    for (key, value) in &k.properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer<Context> = config
        .create_with_context(context)
        .map_err(|e| IngestError::Internal(format!("creating the Kafka consumer: {e}")))?;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| {
        IngestError::Internal(format!("subscribing to {}: {e}", k.topics.join(",")))
    })?;
    Ok(consumer)
}

/// The next offset in a partition's checkpoint under `root` (read-only; for partitions another
/// instance owns).
fn checkpointed(root: &Location, key: &PartitionKey) -> Option<i64> {
    let cp = mfascope_sink::state::read_checkpoint(root, &state_dir(key)).ok()?;
    cp.inputs.get(&fingerprint(key)).map(|s| s.offset as i64)
}

/// Whether every partition of the topics is committed up to its high watermark — by this
/// instance (nothing buffered) or, for partitions it does not own, by the instance that does
/// (its checkpoint in the shared output).
fn at_end(consumer: &BaseConsumer<Context>, topics: &[String], shared: &Shared) -> bool {
    let timeout = Duration::from_secs(5);
    if shared
        .assigned
        .values()
        .any(|a| a.first.is_some() || a.stage.has_pending())
    {
        return false;
    }
    topics.iter().all(|topic| {
        let Ok(metadata) = consumer.fetch_metadata(Some(topic), timeout) else {
            return false;
        };
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(rdkafka::metadata::MetadataPartition::id)
            })
            .collect();
        !partitions.is_empty()
            && partitions.into_iter().all(|partition| {
                let key = (topic.clone(), partition);
                let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, timeout) else {
                    return false;
                };
                let next = match shared.assigned.get(&key) {
                    Some(a) => Some(a.next),
                    None => checkpointed(&shared.opts.out, &key),
                };
                next.is_some_and(|n| n >= high) || high == 0
            })
    })
}

/// The writer: commits segments in order, then reports each partition's new offset.
fn writer(
    rx: Receiver<ToCommit>,
    committed: Sender<(PartitionKey, i64)>,
) -> Result<Written, SinkError> {
    let mut written = Written::default();
    for c in rx {
        let end = c.segment.positions.last().map(|p| p.end as i64);
        let mut out = c
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        written.add(commit_segment(&mut out, c.segment)?);
        drop(out);
        if let Some(end) = end {
            let _ = committed.send((c.key, end));
        }
    }
    Ok(written)
}

/// Consume until stopped (or, with `exit_at_end`, until caught up), committing as it goes.
pub fn ingest(
    opts: &IngestOptions,
    k: &KafkaOptions,
    stop: Arc<AtomicBool>,
) -> Result<(Summary, KafkaSummary), IngestError> {
    let started = Instant::now();
    if let Some(dir) = opts.out.local() {
        std::fs::create_dir_all(dir).map_err(mfascope_sink::io_err("creating", dir))?;
    }
    // At most a few segments queued: bounded memory whatever the lag.
    let (to_writer, writer_rx) = bounded::<ToCommit>(4);
    let (committed_tx, committed_rx) = unbounded::<(PartitionKey, i64)>();
    let writer_handle = thread::Builder::new()
        .name("writer".into())
        .spawn(move || writer(writer_rx, committed_tx))
        .map_err(|e| IngestError::Internal(e.to_string()))?;
    let context = Context {
        shared: Mutex::new(Shared {
            opts: opts.clone(),
            assigned: HashMap::new(),
            to_writer,
            done: Vec::new(),
            kafka: KafkaSummary::default(),
            next_input: 0,
            failed: None,
        }),
    };
    let consumer = consumer(k, context)?;
    let mut normalizer = Normalizer::new(opts.format)
        .keep_raw(opts.keep_raw)
        .pseudonymize(opts.pseudonymize.clone());
    let poll_every = (opts.max_latency / 4)
        .min(CHUNK_WAIT)
        .max(Duration::from_millis(10));
    let mut failure = None;
    let mut last_end_check = Instant::now();
    let mut last_publish = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let polled = consumer.poll(poll_every);
        let idle = polled.is_none();
        {
            let mut shared = consumer.context().lock();
            if let Some(e) = shared.failed.take() {
                failure = Some(e);
                break;
            }
            match polled {
                None => {}
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    shared.kafka.consumer_errors += 1;
                    tracing::warn!(error = %e, "Kafka consumer error (retrying)");
                }
                Some(Ok(m)) => {
                    let key = (m.topic().to_string(), m.partition());
                    let payload = m.payload().unwrap_or_default();
                    let shared = &mut *shared;
                    if let Some(a) = shared.assigned.get_mut(&key) {
                        if m.offset() < a.next {
                            shared.kafka.redelivered += 1;
                        } else {
                            take_message(&mut normalizer, a, m.offset(), payload);
                            let entry = shared.kafka.partitions.entry(key_text(&key)).or_default();
                            entry.messages += 1;
                            if a.sink.builder.len() >= CHUNK_ROWS && !hand_over(a) {
                                failure = Some(IngestError::Internal("the writer stopped".into()));
                                break;
                            }
                        }
                    }
                }
            }
            let mut writer_gone = false;
            let chunk_wait = CHUNK_WAIT.min(opts.max_latency);
            for a in shared.assigned.values_mut() {
                if a.started.is_some_and(|t| t.elapsed() >= chunk_wait) && !hand_over(a) {
                    writer_gone = true;
                }
                if a.stage.due(opts.max_latency) && !flush(a) {
                    writer_gone = true;
                }
            }
            if writer_gone {
                failure = Some(IngestError::Internal("the writer stopped".into()));
                break;
            }
            if last_publish.elapsed() >= PUBLISH_EVERY {
                last_publish = Instant::now();
                publish_progress(opts, &shared);
            }
        }
        if idle {
            opts.observers.tick();
        }
        commit_offsets(&consumer, &committed_rx);
        if k.exit_at_end && idle && last_end_check.elapsed() >= Duration::from_millis(500) {
            last_end_check = Instant::now();
            let shared = consumer.context().lock();
            if at_end(&consumer, &k.topics, &shared) {
                break;
            }
        }
    }
    // Commit what is buffered, then wait for the writer.
    let summaries = {
        let mut shared = consumer.context().lock();
        let keys: Vec<PartitionKey> = shared.assigned.keys().cloned().collect();
        for key in keys {
            shared.revoke(&key);
        }
        if failure.is_none() {
            failure = shared.failed.take();
        }
        // Dropping the sender lets the writer finish.
        let (tx, _) = bounded(0);
        drop(std::mem::replace(&mut shared.to_writer, tx));
        std::mem::take(&mut shared.done)
    };
    let written = writer_handle
        .join()
        .map_err(|_| IngestError::Internal("writer thread panicked".into()))?;
    commit_offsets(&consumer, &committed_rx);
    let kafka = std::mem::take(&mut consumer.context().lock().kafka);
    let written = written?;
    if let Some(e) = failure {
        return Err(e);
    }
    let mut summary = Summary::default();
    summaries.iter().for_each(|s| summary.add(s));
    summary.close(written, started);
    Ok((summary, kafka))
}

/// Commit to Kafka the offsets the writer made durable (asynchronously; informational).
fn commit_offsets(consumer: &BaseConsumer<Context>, committed: &Receiver<(PartitionKey, i64)>) {
    let mut tpl = TopicPartitionList::new();
    let mut latest: HashMap<PartitionKey, i64> = HashMap::new();
    for (key, offset) in committed.try_iter() {
        latest.insert(key, offset);
    }
    if latest.is_empty() {
        return;
    }
    let mut shared = consumer.context().lock();
    for ((topic, partition), offset) in &latest {
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        if let Some(p) = shared
            .kafka
            .partitions
            .get_mut(&key_text(&(topic.clone(), *partition)))
        {
            p.committed_offset = Some(*offset);
        }
    }
    shared.kafka.offset_commits += 1;
    drop(shared);
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::warn!(error = %e, "committing offsets to Kafka (they are informational)");
    }
}

/// Running counters for `--metrics-listen`: the stages' summaries so far, added up.
fn publish_progress(opts: &IngestOptions, shared: &Shared) {
    let mut total = Summary::default();
    shared.done.iter().for_each(|s| total.add(s));
    shared
        .assigned
        .values()
        .for_each(|a| total.add(&a.stage.summary));
    opts.progress_counters.publish(&total);
    *opts
        .progress_counters
        .kafka
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(shared.kafka.clone());
}
