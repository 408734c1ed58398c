//! Where the verifier's canonical events go: an NDJSON file (appended) and/or a Kafka topic,
//! written by one thread off the request path. The channel is bounded: when the outputs fall
//! behind, requests wait rather than events being dropped; `finish` drains and flushes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::event::Event;

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

enum Msg {
    Event(Box<Event<'static>>),
    Close,
}

/// The writer thread and the way to it.
pub struct EventWriter {
    tx: Sender<Msg>,
    thread: JoinHandle<Result<u64, EventsError>>,
}

/// The sending half, given to the engine's emit callback.
#[derive(Clone)]
pub struct EventSender(Sender<Msg>);

impl EventSender {
    /// Queue one event (waits while the writer is behind).
    pub fn send(&self, e: Event<'static>) {
        // The writer only goes away after `finish`, when no request is left.
        let _ = self.0.send(Msg::Event(Box::new(e)));
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
        let (tx, rx) = crossbeam_channel::bounded(1 << 16);
        let thread = std::thread::Builder::new()
            .name("verifier-events".into())
            .spawn(move || write(rx, file, kafka))
            .map_err(|source| EventsError::File {
                path: "<writer thread>".into(),
                source,
            })?;
        Ok(Some((
            EventWriter {
                tx: tx.clone(),
                thread,
            },
            EventSender(tx),
        )))
    }

    /// Write what is queued, flush, stop: the number of events written.
    pub fn finish(self) -> Result<u64, EventsError> {
        let _ = self.tx.send(Msg::Close);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(EventsError::Undelivered(u64::MAX)))
    }
}

type FileOut = Option<(PathBuf, BufWriter<File>)>;
type KafkaSink = Option<(String, BaseProducer<Delivery>)>;

fn write(rx: Receiver<Msg>, mut file: FileOut, kafka: KafkaSink) -> Result<u64, EventsError> {
    let mut written = 0u64;
    let mut line = Vec::with_capacity(512);
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(_) => {
                // Idle: make what was written visible before waiting.
                flush_file(&mut file)?;
                if let Some((_, p)) = &kafka {
                    p.poll(Duration::ZERO);
                }
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(m) => m,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Msg::Close,
                }
            }
        };
        let e = match msg {
            Msg::Event(e) => e,
            Msg::Close => break,
        };
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
