//! The Kafka source, with an exactly-once effect into Parquet (the kafka-delta-ingest pattern).
//! A consumer group member polls its partitions with librdkafka (`rdkafka`); each assigned
//! partition is a scope of the engine, with its own stage, segments and state under
//! `OUT/_state/kafka/TOPIC/PARTITION/` (opened on assignment: the consumer seeks to the offset
//! committed there; closed on revocation: what was buffered is committed first). The engine
//! commits the partition's segments like file segments (Parquet made durable, then the offsets
//! in the partition state, through the intent log) and acknowledges them; only then are the
//! offsets committed to Kafka, for lag monitoring, so Kafka's committed offsets never decide
//! what is ingested. A segment's name derives from topic, partition and first offset, and the
//! partition state is locked by its owner, so instances sharing `OUT` never write the same
//! rows, and a replay after a crash rewrites exactly what was not committed.
//!
//! Each message is one record, or several separated by newlines; the format is detected per
//! record as for files, and rejects become dead letters naming `kafka://TOPIC/PARTITION` and
//! the message offset.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use serde::Serialize;

use crate::{IngestError, IngestOptions, PipelineProgress, Summary};
use mfascope_source::{
    BufferPool, Chunk, ChunkKind, Feed, MessageSpan, NamedInput, ReadItem, RecordSource, Scope,
    ScopeId, SourceFailure,
};

/// How often the running counters are published for `--metrics-listen` (not per message).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Messages gathered before a partition's chunk is handed to the engine — and so to the live
/// SLIs and the rule engine — whatever the segment size …
const CHUNK_MESSAGES: usize = 4096;
/// … or bytes …
const CHUNK_BYTES: usize = 1 << 20;
/// … or after this long: live views lag the stream by at most this, not by `--max-latency`.
const CHUNK_WAIT: Duration = Duration::from_millis(50);
/// A chunk's buffer, reserved whole: growing it message by message copied every byte about
/// twice more (the source thread's largest cost after librdkafka's).
const CHUNK_BUFFER: usize = CHUNK_BYTES + (256 << 10);

/// With `--exit-at-end`, how often the partitions' ends are fetched from the broker once all
/// that was consumed is committed.
const END_CHECK_EVERY: Duration = Duration::from_millis(100);

/// How a partition is named as an input (`kafka://TOPIC/PARTITION`).
const SCHEME: &str = "kafka://";

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
    /// Whether this member holds the partition now.
    pub assigned: bool,
    /// Messages consumed in this run.
    pub messages: u64,
    /// Next offset committed to Parquet (the partition state).
    pub committed_offset: Option<i64>,
    /// Messages between the offset committed to Parquet and the partition's end (its last
    /// stable offset, from the consumer's statistics); librdkafka's own figure until this
    /// instance has committed.
    pub lag: Option<i64>,
    /// The partition's end as the broker last reported it (last stable offset).
    pub end_offset: Option<i64>,
    /// Messages the broker no longer held when they were due (see [`LostRange`]).
    pub lost: u64,
}

/// Offsets the broker deleted (retention, `DeleteRecords`) before they were ingested: the
/// position was out of range, and consumption resumed at the earliest offset the broker still
/// holds (`auto.offset.reset=earliest`). Reported, never filled in.
#[derive(Clone, Debug, Serialize)]
pub struct LostRange {
    /// `TOPIC/PARTITION`.
    pub partition: String,
    /// First offset that was never ingested.
    pub from: i64,
    /// Offset consumption resumed at (the log start offset then).
    pub to: i64,
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
    /// Ranges deleted by the broker before they were ingested, in the order met.
    pub lost: Vec<LostRange>,
}

type PartitionKey = (String, i32);

fn key_text((topic, partition): &PartitionKey) -> String {
    format!("{topic}/{partition}")
}

/// Where the partitions' states are, under the output root.
pub const KAFKA_STATE: &str = "_state/kafka";

/// State of one topic partition (scoped under [`KAFKA_STATE`]).
fn state_dir((topic, partition): &PartitionKey) -> String {
    format!("{KAFKA_STATE}/{topic}/{partition}")
}

/// Checkpoint input key of a partition.
fn fingerprint(key: &PartitionKey) -> String {
    format!("kafka:{}", key_text(key))
}

/// One assigned partition: its engine scope, the messages gathered for its next chunk and the
/// offsets it has reached.
struct Partition {
    scope: ScopeId,
    /// `kafka://TOPIC/PARTITION`, naming it in dead letters.
    path: Arc<str>,
    buffer: Vec<u8>,
    spans: Vec<MessageSpan>,
    /// When the first gathered message arrived.
    started: Option<Instant>,
    /// Next offset to ingest.
    next: i64,
    /// Next offset committed to Parquet (the partition state).
    committed: Option<i64>,
    /// Whether the next message must follow `next` (a committed position, or a message taken
    /// in this assignment); a partition without state starts wherever the broker's log does.
    contiguous: bool,
    /// Chunks were handed over since the partition was last flushed on reaching its end.
    unflushed: bool,
}

impl Partition {
    /// `TOPIC/PARTITION`, its key in the run's summary.
    fn name(&self) -> &str {
        &self.path[SCHEME.len()..]
    }

    /// Gather one message for the next chunk.
    fn take(&mut self, offset: i64, payload: &[u8]) {
        self.started.get_or_insert_with(Instant::now);
        self.buffer.extend_from_slice(payload);
        self.spans.push(MessageSpan {
            end: self.buffer.len(),
            offset: offset as u64,
        });
        self.next = offset + 1;
        self.contiguous = true;
    }
}

/// State shared by the poll loop and the rebalance callback (both on the source's thread).
struct Shared {
    feed: Box<dyn Feed>,
    assigned: HashMap<PartitionKey, Partition>,
    /// The partition of every scope opened so far (acknowledgements may follow a revocation).
    scopes: HashMap<ScopeId, PartitionKey>,
    next_scope: ScopeId,
    kafka: KafkaSummary,
    pool: BufferPool,
    /// The engine refused an item or a scope: it reports why; the source stops.
    engine_gone: bool,
}

/// The rdkafka context: rebalance handling and statistics.
struct Context {
    shared: Mutex<Shared>,
}

impl Context {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        mfascope_core::sync::lock(&self.shared)
    }
}

impl ClientContext for Context {
    /// Client-level errors, logged (rdkafka's default logs each at `error`). Reaching a
    /// partition's end with `--exit-at-end` is not one: the poll loop gets it too and acts.
    fn error(&self, error: KafkaError, reason: &str) {
        if let KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) =
            error
        {
            tracing::debug!(%reason, "partition end");
        } else {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }

    fn stats(&self, statistics: Statistics) {
        let mut shared = self.lock();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 {
                    continue;
                }
                let key = key_text(&(topic.clone(), *partition));
                let end = if p.ls_offset >= 0 {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                if let Some(s) = shared.kafka.partitions.get_mut(&key) {
                    if end >= 0 {
                        s.end_offset = Some(end);
                    }
                    s.lag = match (s.committed_offset, s.end_offset) {
                        (Some(committed), Some(end)) => Some((end - committed).max(0)),
                        _ if p.consumer_lag >= 0 => Some(p.consumer_lag),
                        _ => s.lag,
                    };
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
        // Cooperative protocols (cooperative-sticky, and KIP-848's `consumer`) hand over only
        // the partitions that move: they are added to or taken from the assignment, which the
        // eager protocols replace as a whole.
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                shared.kafka.assignments += 1;
                let keys: Vec<PartitionKey> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                for key in keys {
                    let Some(next) = shared.assign(&key) else {
                        break;
                    };
                    if let Some(next) = next
                        && let Err(e) =
                            tpl.set_partition_offset(&key.0, key.1, Offset::Offset(next))
                    {
                        tracing::error!(partition = %key_text(&key), error = %e, "cannot seek");
                    }
                }
                tracing::info!(partitions = tpl.count(), cooperative, "partitions assigned");
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = assigned {
                    tracing::error!(error = %e, "assigning partitions");
                    shared.engine_gone = true;
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                shared.kafka.revocations += 1;
                for e in tpl.elements() {
                    shared.revoke(&(e.topic().to_string(), e.partition()));
                }
                tracing::info!(partitions = tpl.count(), cooperative, "partitions revoked");
                let unassigned = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = unassigned {
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
    /// Open a partition's scope (the engine takes its state, waiting for a previous owner to
    /// let go); `None` when the engine refused, else the offset to resume at, if committed.
    fn assign(&mut self, key: &PartitionKey) -> Option<Option<i64>> {
        let scope = self.next_scope;
        self.next_scope += 1;
        let path = format!("{SCHEME}{}", key_text(key));
        let fingerprint = fingerprint(key);
        let positions = self.feed.open(&Scope {
            id: scope,
            state: state_dir(key),
            wait: OWNER_WAIT,
            inputs: vec![NamedInput {
                input: 0,
                fingerprint: fingerprint.clone(),
                path: path.clone(),
            }],
        });
        let Some(positions) = positions else {
            self.engine_gone = true;
            return None;
        };
        let committed = positions.get(&fingerprint).map(|&(at, _)| at as i64);
        let summary = self.kafka.partitions.entry(key_text(key)).or_default();
        summary.committed_offset = committed;
        summary.assigned = true;
        self.scopes.insert(scope, key.clone());
        self.assigned.insert(
            key.clone(),
            Partition {
                scope,
                path: path.into(),
                buffer: self.pool.take(CHUNK_BUFFER),
                spans: Vec::new(),
                started: None,
                next: committed.unwrap_or(0),
                committed,
                contiguous: committed.is_some(),
                unflushed: false,
            },
        );
        Some(committed)
    }

    /// Commit what a revoked partition gathered and let its state go.
    fn revoke(&mut self, key: &PartitionKey) {
        if let Some(summary) = self.kafka.partitions.get_mut(&key_text(key)) {
            summary.assigned = false;
        }
        if let Some(mut p) = self.assigned.remove(key)
            && !(hand_over(&mut *self.feed, &self.pool, &mut p) && self.feed.close(p.scope))
        {
            self.engine_gone = true;
        }
    }

    /// Hand over the chunks that are due (full, or waited `wait`).
    fn hand_over_due(&mut self, wait: Duration) {
        let now = Instant::now();
        for p in self.assigned.values_mut() {
            let due = p.spans.len() >= CHUNK_MESSAGES
                || p.buffer.len() >= CHUNK_BYTES
                || p.started.is_some_and(|t| now.duration_since(t) >= wait);
            if due && !hand_over(&mut *self.feed, &self.pool, p) {
                self.engine_gone = true;
            }
        }
    }

    /// Hand over and commit what the assigned partitions numbered `partition` gathered (the
    /// event names no topic; flushing a partition early only costs a smaller file).
    fn flush_caught_up(&mut self, partition: i32) {
        for ((_, number), p) in &mut self.assigned {
            if *number != partition {
                continue;
            }
            let handed = p.spans.is_empty() || hand_over(&mut *self.feed, &self.pool, p);
            if !(handed && (!p.unflushed || self.feed.send(p.scope, ReadItem::Flush))) {
                self.engine_gone = true;
            }
            p.unflushed = false;
        }
    }

    /// Whether every message this member consumed is committed to Parquet (vacuously with no
    /// partition assigned).
    fn settled(&self) -> bool {
        self.assigned
            .values()
            .all(|p| p.spans.is_empty() && p.committed.unwrap_or(0) >= p.next)
    }

    /// The offsets the engine committed since last asked, to commit to Kafka too.
    fn acknowledged(&mut self) -> Option<TopicPartitionList> {
        let acks = self.feed.committed();
        if acks.is_empty() {
            return None;
        }
        let mut tpl = TopicPartitionList::new();
        for (scope, _, at) in acks {
            let Some(key) = self.scopes.get(&scope) else {
                continue;
            };
            let at = at as i64;
            let _ = tpl.add_partition_offset(&key.0, key.1, Offset::Offset(at));
            if let Some(p) = self.assigned.get_mut(key) {
                p.committed = Some(at);
            }
            self.kafka
                .partitions
                .entry(key_text(key))
                .or_default()
                .committed_offset = Some(at);
        }
        self.kafka.offset_commits += 1;
        Some(tpl)
    }
}

/// Send a partition's gathered messages to the engine as one chunk; false when the engine
/// has gone away.
fn hand_over(feed: &mut dyn Feed, pool: &BufferPool, p: &mut Partition) -> bool {
    let Some(first) = p.spans.first() else {
        return true;
    };
    let chunk = Chunk {
        input: 0,
        path: p.path.clone(),
        start: first.offset,
        first_line: 0,
        lines: 0,
        data: std::mem::replace(&mut p.buffer, pool.take(CHUNK_BUFFER)),
        kind: ChunkKind::Messages(std::mem::take(&mut p.spans)),
    };
    p.started = None;
    p.unflushed = true;
    feed.send(p.scope, ReadItem::Chunk(chunk))
}

/// Build the consumer: manual offset management, earliest start without state.
fn consumer(k: &KafkaOptions, context: Context) -> Result<BaseConsumer<Context>, SourceFailure> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "1000")
        // Fetches of librdkafka's default 1 MiB per partition, at most 16 MiB per response:
        // responses then come from the allocator's heap. With 16 MiB per partition (up to
        // 64 MiB per response) each was a fresh mapping, page-faulted in as the socket filled
        // it: 1M events took ~1 s more system CPU and 35 MB more RSS. A short wait keeps
        // latency low once caught up.
        .set("max.partition.fetch.bytes", "1048576")
        .set("fetch.max.bytes", "16777216")
        .set("fetch.wait.max.ms", "100")
        // When the engine is slower than the fetches (a backlog), librdkafka's queue fills
        // and it postpones the partitions' next fetch by this long (default 1 s): the queue
        // then ran dry and the engine idled — 1M events took 14.9 s against 8.5 s with 10 ms.
        .set("fetch.queue.backoff.ms", "10")
        // Prefetched messages held for the engine (librdkafka's default is 64 MiB): with the
        // short backoff, 16 MiB keeps the engine fed and the process 130 MB smaller.
        .set("queued.max.messages.kbytes", "16384")
        // Partition-end events let a run that stops at the end commit as soon as it is there.
        .set(
            "enable.partition.eof",
            if k.exit_at_end { "true" } else { "false" },
        );
    // The classic protocol's member timeouts are the client's: a dead member's partitions move
    // after 6 s. KIP-848's `consumer` protocol takes them from the broker's group settings
    // (librdkafka refuses them there).
    let kip848 = k
        .properties
        .iter()
        .any(|(key, value)| key == "group.protocol" && value == "consumer");
    if !kip848 {
        config
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000");
    }
    for (key, value) in &k.properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer<Context> = config
        .create_with_context(context)
        .map_err(|e| format!("creating the Kafka consumer: {e}"))?;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| format!("subscribing to {}: {e}", k.topics.join(",")))?;
    Ok(consumer)
}

/// Whether every partition of the topics is committed up to its high watermark — by this
/// instance (its acknowledgements; asked only once [`Shared::settled`], so nothing is gathered)
/// or, for partitions it does not own, by the instance that does (its checkpoint in the shared
/// output).
fn at_end(consumer: &BaseConsumer<Context>, topics: &[String], shared: &Shared) -> bool {
    let timeout = Duration::from_secs(5);
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
                let committed = match shared.assigned.get(&key) {
                    Some(p) => p.committed,
                    None => shared
                        .feed
                        .peek(&state_dir(&key))
                        .and_then(|positions| positions.get(&fingerprint(&key)).copied())
                        .map(|(at, _)| at as i64),
                };
                committed.is_some_and(|n| n >= high) || high == 0
            })
    })
}

/// Consumes the topics as a member of the group: each assigned partition is a scope of the
/// engine (see the module documentation).
pub struct KafkaSource {
    options: KafkaOptions,
    /// Longest time a message waits before its chunk is handed over.
    chunk_wait: Duration,
    pool: BufferPool,
    progress: Arc<PipelineProgress>,
    /// The consumer's counters, complete once [`RecordSource::run`] has returned.
    pub summary: KafkaSummary,
}

impl KafkaSource {
    /// A source for `options`, handing chunks over at least as often as `opts.max_latency`
    /// and publishing its counters into `opts.progress_counters`.
    pub fn new(options: KafkaOptions, opts: &IngestOptions) -> Self {
        KafkaSource {
            options,
            chunk_wait: CHUNK_WAIT.min(opts.max_latency),
            pool: opts.reader.pool.clone(),
            progress: opts.progress_counters.clone(),
            summary: KafkaSummary::default(),
        }
    }

    fn publish(&self, kafka: &KafkaSummary) {
        *mfascope_core::sync::lock(&self.progress.kafka) = Some(kafka.clone());
    }
}

impl RecordSource for KafkaSource {
    fn run(&mut self, stop: &Arc<AtomicBool>, feed: Box<dyn Feed>) -> Result<(), SourceFailure> {
        let context = Context {
            shared: Mutex::new(Shared {
                feed,
                assigned: HashMap::new(),
                scopes: HashMap::new(),
                next_scope: 0,
                kafka: KafkaSummary::default(),
                pool: self.pool.clone(),
                engine_gone: false,
            }),
        };
        let consumer = consumer(&self.options, context)?;
        let poll_every = self.chunk_wait.max(Duration::from_millis(10));
        let mut last_end_check = Instant::now();
        let mut last_publish = Instant::now();
        let mut gap = None;
        let mut fatal = None;
        while !stop.load(Ordering::Relaxed) {
            let polled = consumer.poll(poll_every);
            let idle = polled.is_none();
            let mut shared = consumer.context().lock();
            match polled {
                None => {}
                // At a partition's end with --exit-at-end: commit it now rather than after
                // --max-latency (the run ends once every partition is committed to its end).
                Some(Err(KafkaError::PartitionEOF(partition))) => shared.flush_caught_up(partition),
                // Wrong credentials do not heal by retrying: stop and say so.
                Some(Err(
                    e @ (KafkaError::MessageConsumptionFatal(_)
                    | KafkaError::MessageConsumption(RDKafkaErrorCode::Authentication)),
                )) => {
                    shared.kafka.consumer_errors += 1;
                    fatal = Some(format!(
                        "the Kafka consumer cannot go on: {e} (check the brokers' address and \
                         the security properties given with -X: security.protocol, \
                         sasl.mechanisms, sasl.username, sasl.password, ssl.ca.location)"
                    ));
                }
                Some(Err(e)) => {
                    shared.kafka.consumer_errors += 1;
                    tracing::warn!(error = %e, "Kafka consumer error (retrying)");
                }
                Some(Ok(m)) => {
                    let key = (m.topic().to_string(), m.partition());
                    let shared = &mut *shared;
                    if let Some(p) = shared.assigned.get_mut(&key) {
                        if m.offset() < p.next {
                            shared.kafka.redelivered += 1;
                        } else {
                            if p.contiguous && m.offset() > p.next {
                                gap = Some((key.clone(), p.next, m.offset()));
                            }
                            p.take(m.offset(), m.payload().unwrap_or_default());
                            if let Some(entry) = shared.kafka.partitions.get_mut(p.name()) {
                                entry.messages += 1;
                            }
                        }
                    }
                }
            }
            if let Some((key, expected, offset)) = gap.take() {
                drop(shared);
                let lost = lost_range(&consumer, &key, expected, offset);
                shared = consumer.context().lock();
                if let Some(range) = lost {
                    let entry = shared.kafka.partitions.entry(key_text(&key)).or_default();
                    entry.lost += (range.to - range.from) as u64;
                    shared.kafka.lost.push(range);
                }
            }
            shared.hand_over_due(self.chunk_wait);
            if shared.engine_gone || fatal.is_some() {
                break;
            }
            let acknowledged = shared.acknowledged();
            if last_publish.elapsed() >= PUBLISH_EVERY {
                last_publish = Instant::now();
                self.publish(&shared.kafka);
            }
            // The broker is asked only once everything this member consumed is committed (until
            // then it cannot be at the end), and then at once: the run ends with its last commit,
            // not up to half a second after it.
            let done = self.options.exit_at_end
                && idle
                && shared.settled()
                && last_end_check.elapsed() >= END_CHECK_EVERY
                && {
                    last_end_check = Instant::now();
                    at_end(&consumer, &self.options.topics, &shared)
                };
            drop(shared);
            commit(&consumer, acknowledged.as_ref());
            if done {
                break;
            }
        }
        // Commit what is gathered and wait for the engine, then tell Kafka.
        let mut shared = consumer.context().lock();
        let keys: Vec<PartitionKey> = shared.assigned.keys().cloned().collect();
        for key in keys {
            shared.revoke(&key);
        }
        let acknowledged = shared.acknowledged();
        self.summary = std::mem::take(&mut shared.kafka);
        drop(shared);
        commit(&consumer, acknowledged.as_ref());
        self.publish(&self.summary);
        match fatal {
            Some(why) => Err(why.into()),
            None => Ok(()),
        }
    }
}

/// A message arrived past the expected offset: transaction markers and compaction leave such
/// gaps harmlessly, but when the broker's log now starts past `expected`, the messages between
/// were deleted before they were ingested — reported (an error naming the range), never
/// filled in.
fn lost_range(
    consumer: &BaseConsumer<Context>,
    (topic, partition): &PartitionKey,
    expected: i64,
    offset: i64,
) -> Option<LostRange> {
    let (start, _) = match consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10)) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(partition = %key_text(&(topic.clone(), *partition)), expected, offset,
                error = %e, "offsets skipped, and the log start offset could not be read");
            return None;
        }
    };
    if start <= expected {
        return None;
    }
    let range = LostRange {
        partition: key_text(&(topic.clone(), *partition)),
        from: expected,
        to: start.min(offset),
    };
    tracing::error!(
        partition = %range.partition,
        from = range.from,
        to = range.to,
        "offsets {}..{} were deleted by the broker (retention or DeleteRecords) before they \
         were ingested; consumption resumed at {} (the policy: resume at the earliest offset \
         held and report the loss)",
        range.from,
        range.to - 1,
        range.to,
    );
    Some(range)
}

/// Commit to Kafka offsets the engine made durable (asynchronously; informational).
fn commit(consumer: &BaseConsumer<Context>, tpl: Option<&TopicPartitionList>) {
    if let Some(tpl) = tpl
        && let Err(e) = consumer.commit(tpl, CommitMode::Async)
    {
        tracing::warn!(error = %e, "committing offsets to Kafka (they are informational)");
    }
}

/// Consume until stopped (or, with `exit_at_end`, until caught up), committing as it goes.
pub fn ingest(
    opts: &IngestOptions,
    k: &KafkaOptions,
    stop: Arc<AtomicBool>,
) -> Result<(Summary, KafkaSummary), IngestError> {
    let (summary, source) = crate::run(KafkaSource::new(k.clone(), opts), opts, stop)?;
    Ok((summary, source.summary))
}
