//! Where the verifier's canonical events go: an NDJSON file (appended) and/or a [`Publisher`]
//! (the binary plugs in a Kafka producer; this crate never links a broker client), written by
//! one thread off the request path. Requests only push onto a shared queue; the writer takes
//! the whole queue every few milliseconds (no wake-up per event). The queue is bounded: when
//! the outputs fall behind, requests wait rather than events being dropped; `finish` drains
//! and flushes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mfascope_core::event::Event;
use mfascope_core::sync::lock;

/// Events queued at most; senders wait beyond.
const QUEUE_CAP: usize = 1 << 16;
/// How often the writer takes the queue.
const TICK: Duration = Duration::from_millis(5);

/// Why a publisher failed (its own error, boxed: this crate knows no broker client).
pub type PublishError = Box<dyn std::error::Error + Send + Sync>;

/// A message stream the events are published to, one message per event keyed by user (a
/// Kafka topic in the binary). Driven by the writer thread only.
pub trait Publisher: Send {
    /// Where the events go, for error messages (`Kafka topic mfa-events`).
    fn name(&self) -> String;
    /// Queue one message; waits while the client's own queue is full.
    fn publish(&mut self, key: &[u8], payload: &[u8]) -> Result<(), PublishError>;
    /// Serve delivery reports without blocking.
    fn poll(&mut self) {}
    /// Deliver everything queued; an error when some message was not acknowledged.
    fn finish(&mut self) -> Result<(), PublishError>;
}

/// Opens the [`Publisher`] when the server starts (configuration is data until then).
pub trait OpenPublisher: Send + Sync + std::fmt::Debug {
    /// Where the events will go, for error messages (`Kafka topic mfa-events`).
    fn name(&self) -> String;
    /// Connect to the stream.
    fn open(&self) -> Result<Box<dyn Publisher>, PublishError>;
}

/// Event outputs.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// NDJSON file, appended to.
    pub ndjson: Option<PathBuf>,
    /// A message stream (Kafka topic).
    pub publish: Option<Arc<dyn OpenPublisher>>,
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
    /// The publisher could not be opened or refused a message.
    #[error("events to {to}: {source}")]
    Publish {
        /// The publisher's name.
        to: String,
        /// The cause.
        source: PublishError,
    },
    /// Messages the publisher did not deliver.
    #[error("{0}")]
    Undelivered(PublishError),
    /// The writer thread died.
    #[error("the event writer thread panicked")]
    Panicked,
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
        if outputs.ndjson.is_none() && outputs.publish.is_none() {
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
        let publisher = match &outputs.publish {
            Some(open) => Some(open.open().map_err(|source| EventsError::Publish {
                to: open.name(),
                source,
            })?),
            None => None,
        };
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("verifier-events".into())
            .spawn(move || write(&q, file, publisher))
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
            .unwrap_or_else(|_| Err(EventsError::Panicked))
    }
}

type FileOut = Option<(PathBuf, BufWriter<File>)>;

fn write(
    queue: &Queue,
    mut file: FileOut,
    mut publisher: Option<Box<dyn Publisher>>,
) -> Result<u64, EventsError> {
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
            if let Some(p) = &mut publisher {
                p.publish(e.user.as_bytes(), &line)
                    .map_err(|source| EventsError::Publish {
                        to: p.name(),
                        source,
                    })?;
            }
            written += 1;
        }
        flush_file(&mut file)?;
        if let Some(p) = &mut publisher {
            p.poll();
        }
        if closing {
            break;
        }
        std::thread::sleep(TICK);
    }
    if let Some(p) = &mut publisher {
        p.finish().map_err(EventsError::Undelivered)?;
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
