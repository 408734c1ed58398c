//! Where the verifier's canonical events go: an NDJSON file (appended) and/or a Kafka topic,
//! written by one thread off the request path. Requests only push onto a shared queue; the
//! writer takes the whole queue every few milliseconds (no wake-up per event). The queue is
//! bounded: when the outputs fall behind, requests wait rather than events being dropped;
//! `finish` drains and flushes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::event::Event;
use crate::sync::lock;

/// Events queued at most; senders wait beyond.
const QUEUE_CAP: usize = 1 << 16;
/// How often the writer takes the queue.
const TICK: Duration = Duration::from_millis(5);

/// A Kafka topic to produce events to.
#[derive(Clone, Debug)]
pub struct KafkaOut {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// librdkafka properties passed through (SASL/SSL).
    pub properties: Vec<(String, String)>,
}

/// Event outputs.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// NDJSON file, appended to.
    pub ndjson: Option<PathBuf>,
    /// Kafka topic.
    pub kafka: Option<KafkaOut>,
}

/// Why events could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The NDJSON file.
    #[error("events file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The Kafka producer.
    #[error("events to Kafka topic {topic}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// The cause.
        source: KafkaError,
    },
    /// Messages Kafka did not acknowledge.
    #[error("{0} events were not acknowledged by Kafka (see the log)")]
    Undelivered(u64),
}

/// Counts deliveries Kafka refused.
#[derive(Default)]
struct Delivery {
    failed: AtomicU64,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "an event was not delivered to Kafka");
        }
    }
}

#[derive(Default)]
struct Queue {
    events: Mutex<Vec<Event<'static>>>,
    /// Signalled when the writer took the queue.
    taken: Condvar,
    closed: AtomicBool,
}

/// The writer thread and the way to it.
pub struct EventWriter {
    queue: Arc<Queue>,
    thread: JoinHandle<Result<u64, EventsError>>,
}

/// The sending half, given to the engine's emit callback.
#[derive(Clone)]
pub struct EventSender(Arc<Queue>);

impl EventSender {
    /// Queue one event (waits while the writer is behind).
    pub fn send(&self, e: Event<'static>) {
        let mut events = lock(&self.0.events);
        while events.len() >= QUEUE_CAP && !self.0.closed.load(Ordering::Relaxed) {
            events = self
                .0
                .taken
                .wait(events)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        events.push(e);
    }
}

impl EventWriter {
    /// Open the outputs and start the writer; `None` when there are none.
    pub fn start(outputs: Outputs) -> Result<Option<(EventWriter, EventSender)>, EventsError> {
        if outputs.ndjson.is_none() && outputs.kafka.is_none() {
            return Ok(None);
        }
        let file = match &outputs.ndjson {
            Some(path) => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| EventsError::File {
                        path: path.clone(),
                        source,
                    })?;
                Some((path.clone(), BufWriter::with_capacity(1 << 16, f)))
            }
            None => None,
        };
        let kafka = match &outputs.kafka {
            Some(k) => {
                let mut config = ClientConfig::new();
                config
                    .set("bootstrap.servers", &k.brokers)
                    .set("linger.ms", "5")
                    .set("enable.idempotence", "true");
                for (key, value) in &k.properties {
                    config.set(key, value);
                }
                let producer: BaseProducer<Delivery> = config
                    .create_with_context(Delivery::default())
                    .map_err(|source| EventsError::Kafka {
                        topic: k.topic.clone(),
                        source,
                    })?;
                Some((k.topic.clone(), producer))
            }
            None => None,
        };
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("verifier-events".into())
            .spawn(move || write(&q, file, kafka))
            .map_err(|source| EventsError::File {
                path: "<writer thread>".into(),
                source,
            })?;
        let sender = EventSender(queue.clone());
        Ok(Some((EventWriter { queue, thread }, sender)))
    }

    /// Write what is queued, flush, stop: the number of events written.
    pub fn finish(self) -> Result<u64, EventsError> {
        self.queue.closed.store(true, Ordering::Relaxed);
        self.queue.taken.notify_all();
        self.thread
            .join()
            .unwrap_or_else(|_| Err(EventsError::Undelivered(u64::MAX)))
    }
}

type FileOut = Option<(PathBuf, BufWriter<File>)>;
type KafkaSink = Option<(String, BaseProducer<Delivery>)>;

fn write(queue: &Queue, mut file: FileOut, kafka: KafkaSink) -> Result<u64, EventsError> {
    let mut written = 0u64;
    let mut line = Vec::with_capacity(512);
    let mut batch = Vec::new();
    loop {
        // Closed is read before taking the queue: nothing sent before `finish` is missed.
        let closing = queue.closed.load(Ordering::Relaxed);
        std::mem::swap(&mut batch, &mut *lock(&queue.events));
        queue.taken.notify_all();
        for e in batch.drain(..) {
            line.clear();
            serde_json::to_writer(&mut line, &e).expect("events serialize");
            if let Some((path, w)) = &mut file {
                line.push(b'\n');
                w.write_all(&line).map_err(|source| EventsError::File {
                    path: path.clone(),
                    source,
                })?;
                line.pop();
            }
            if let Some((topic, p)) = &kafka {
                produce(p, topic, e.user.as_bytes(), &line)?;
            }
            written += 1;
        }
        flush_file(&mut file)?;
        if let Some((_, p)) = &kafka {
            p.poll(Duration::ZERO);
        }
        if closing {
            break;
        }
        std::thread::sleep(TICK);
    }
    if let Some((topic, p)) = &kafka {
        p.flush(Duration::from_secs(30))
            .map_err(|source| EventsError::Kafka {
                topic: topic.clone(),
                source,
            })?;
        let failed = p.context().failed.load(Ordering::Relaxed);
        if failed > 0 {
            return Err(EventsError::Undelivered(failed));
        }
    }
    Ok(written)
}

fn flush_file(file: &mut FileOut) -> Result<(), EventsError> {
    if let Some((path, w)) = file {
        w.flush().map_err(|source| EventsError::File {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

fn produce(
    p: &BaseProducer<Delivery>,
    topic: &str,
    key: &[u8],
    payload: &[u8],
) -> Result<(), EventsError> {
    loop {
        match p.send(BaseRecord::to(topic).key(key).payload(payload)) {
            Ok(()) => {
                p.poll(Duration::ZERO);
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                p.poll(Duration::from_millis(50));
            }
            Err((source, _)) => {
                return Err(EventsError::Kafka {
                    topic: topic.into(),
                    source,
                });
            }
        }
    }
}
