//! Object-storage source: reads the log objects under bucket prefixes (`s3://`, `gs://`,
//! `az://`) as they are laid out by their writers — CloudTrail's
//! `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`, Entra ID diagnostic archives'
//! `insights-logs-signinlogs/…/PT1H.json` — and drives the engine with them through the source
//! contract. One scope (the output's `_state`); each object is one input identified by its URL
//! and version (ETag), positioned by decompressed byte like a file, and recorded as finished
//! once its last byte is committed, so a rerun or a restart never downloads it again.
//!
//! An object is downloaded whole before it is parsed (in memory when small, else spooled to a
//! temporary file), resuming a broken transfer by range request against the listed ETag: a
//! network failure never reaches the parser as a damaged record. With `--follow` the prefixes
//! are listed again every `list_every`, from after the greatest key seen (time-named keys of
//! one writer sort after older ones) and in full every [`FULL_LIST_EVERY`]th time (keys that
//! land under earlier prefixes: another account, region or day); S3 event notifications on
//! SQS ([`crate::sqs`], `--sqs-queue`) serve buckets too large to list.
//!
//! It never parses records (the normalizers recognise CloudTrail's `Records[]` envelope and
//! Entra's archive records) and never writes outputs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mfascope_sink::Location;
use mfascope_sink::location::Remote;
use mfascope_source::{
    FINISHED_LINE, Feed, FileReader, Fingerprint, Positions, ReadItem, ReaderConfig, RecordSource,
    Scope, SourceFailure,
};
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::Serialize;

use crate::sqs::Queue;

/// Objects up to this size are downloaded into memory; larger ones to a temporary file.
const IN_MEMORY: usize = 4 << 20;
/// Downloads in flight ahead of the reader (object stores answer each in tens of milliseconds:
/// one at a time would leave the parser idle).
const PREFETCH: usize = 8;
/// Attempts at downloading an object (object_store retries each request on its own too).
const ATTEMPTS: u32 = 5;
/// Every this many listings in `--follow`, the prefixes are listed in full.
pub const FULL_LIST_EVERY: u64 = 10;

/// What the object source did, beside the engine's counts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ObjectSummary {
    /// Listings of the prefixes (incremental ones included).
    pub listings: u64,
    /// Objects read by this run.
    pub read: u64,
    /// Objects finished by earlier runs, not downloaded again.
    pub already_ingested: u64,
    /// Keys that are not log objects, by reason (folder markers, CloudTrail digests).
    pub not_logs: BTreeMap<String, u64>,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Downloads resumed after a transfer failure.
    pub retries: u64,
    /// Listing or download failures (in `--follow`, retried at the next listing).
    pub errors: u64,
    /// Notifications received from the SQS queue (`--sqs-queue`).
    #[serde(skip_serializing_if = "is_zero")]
    pub messages: u64,
    /// Notifications deleted from the queue, every object they name committed.
    #[serde(skip_serializing_if = "is_zero")]
    pub messages_deleted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Object-storage prefixes as a [`RecordSource`].
pub struct ObjectSource {
    prefixes: Vec<Arc<Remote>>,
    reader: ReaderConfig,
    follow: bool,
    list_every: Duration,
    /// Counts, complete once [`RecordSource::run`] has returned.
    pub summary: ObjectSummary,
    next_input: u32,
    queue: Option<Queue>,
    /// Committed positions by identity, finished objects included.
    known: Positions,
}

impl ObjectSource {
    /// A source over `urls` (every one an object-store prefix), refusing an output inside one
    /// of them (the source would read its own files).
    pub fn new(
        urls: &[String],
        out: &Location,
        reader: ReaderConfig,
        list_every: Duration,
    ) -> Result<ObjectSource, String> {
        let mut prefixes = Vec::new();
        for url in urls {
            let Location::Remote(remote) = Location::parse(url)? else {
                return Err(format!("{url}: not an object-store URL"));
            };
            if let Location::Remote(o) = out {
                let inside = o.url().starts_with(&format!("{}/", remote.url()))
                    || o.url() == remote.url()
                    || remote.url().starts_with(&format!("{}/", o.url()));
                if inside {
                    return Err(format!(
                        "--out {} and the input {url} overlap: the input would read the output; \
                         write to another prefix or bucket",
                        o.url()
                    ));
                }
            }
            prefixes.push(remote);
        }
        Ok(ObjectSource {
            prefixes,
            follow: reader.follow,
            reader,
            list_every,
            summary: ObjectSummary::default(),
            next_input: 0,
            queue: None,
            known: Positions::new(),
        })
    }

    /// Read the objects S3 event notifications on `queue` announce instead of listing.
    pub fn with_queue(mut self, queue: Queue) -> ObjectSource {
        self.queue = Some(queue);
        self
    }

    /// One listing of every prefix (`full`, or after the greatest key seen), reading each log
    /// object not finished yet, [`PREFETCH`] downloads ahead. Returns whether any was read.
    fn list_and_read(
        &mut self,
        full: bool,
        after: &mut [Option<object_store::path::Path>],
        stop: &AtomicBool,
        feed: &mut dyn Feed,
    ) -> Result<bool, Stopped> {
        let first = self.summary.listings == 0;
        self.summary.listings += 1;
        let mut progressed = false;
        for (i, remote) in self.prefixes.clone().iter().enumerate() {
            let store = remote.store();
            let prefix = remote.prefix().clone();
            let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
            let mut listing = match (&after[i], full) {
                (Some(offset), false) => store.list_with_offset(prefix.as_ref(), offset),
                _ => store.list(prefix.as_ref()),
            };
            let mut listed_all = false;
            let mut ahead: VecDeque<Download> = VecDeque::new();
            loop {
                if stop.load(Ordering::Relaxed) {
                    ahead.iter().for_each(|d| d.body.abort());
                    return Ok(progressed);
                }
                while !listed_all && ahead.len() < PREFETCH {
                    let meta = match Remote::block_on(listing.next()) {
                        None => {
                            listed_all = true;
                            break;
                        }
                        Some(Ok(meta)) => meta,
                        Some(Err(e)) => {
                            self.summary.errors += 1;
                            let what = format!("listing {}: {e}", remote.url());
                            if first && !self.follow {
                                return Err(Stopped::Failed(what.into()));
                            }
                            tracing::warn!("{what}; listing again in {:?}", self.list_every);
                            listed_all = true;
                            break;
                        }
                    };
                    if after[i].as_ref().is_none_or(|a| meta.location > *a) {
                        after[i] = Some(meta.location.clone());
                    }
                    if let Some(d) = self.wanted(remote, &store, meta, first) {
                        ahead.push_back(d);
                    }
                }
                let Some(next) = ahead.pop_front() else {
                    break;
                };
                match self.read_object(next, feed)? {
                    Ok(_) => progressed = true,
                    Err((name, reason)) => {
                        self.summary.errors += 1;
                        if self.follow {
                            tracing::warn!(%name, "{reason}; trying again at the next listing");
                        } else if !feed.send(0, ReadItem::Unreadable { path: name, reason }) {
                            return Err(Stopped::EngineGone);
                        }
                    }
                }
            }
        }
        Ok(progressed)
    }

    /// Count `n` keys or notifications that hold no log object to read, by `reason`.
    fn not_read(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.summary.not_logs.entry(reason.into()).or_default() += n;
        }
    }

    /// The download of a listed key, started, when it is a log object not finished yet.
    fn wanted(
        &mut self,
        remote: &Remote,
        store: &Arc<dyn ObjectStore>,
        meta: ObjectMeta,
        first: bool,
    ) -> Option<Download> {
        if let Some(reason) = not_a_log(&meta) {
            self.not_read(reason, u64::from(first));
            return None;
        }
        let fingerprint = identity(remote, &meta);
        let resume = self.known.get(&fingerprint.to_string()).copied();
        if resume.is_some_and(|(_, line)| line == FINISHED_LINE) {
            self.summary.already_ingested += u64::from(first);
            return None;
        }
        Some(Download {
            name: object_name(remote, &meta),
            fingerprint,
            resume,
            size: meta.size,
            body: Remote::spawn(download(store.clone(), meta)),
        })
    }

    /// Wait for a download and send its records, then its finish (returned: the identity and
    /// the end to see committed); `Ok(Err((name, why)))` when it could not be downloaded
    /// (nothing of it was sent).
    fn read_object(
        &mut self,
        d: Download,
        feed: &mut dyn Feed,
    ) -> Result<Result<Need, Unread>, Stopped> {
        let body = match Remote::block_on(d.body) {
            Ok(Ok((body, retries))) => {
                self.summary.retries += retries;
                self.summary.bytes_downloaded += d.size;
                body
            }
            Ok(Err(e)) => return Ok(Err((d.name, e))),
            Err(e) => return Ok(Err((d.name, format!("the download task failed: {e}")))),
        };
        let input = self.next_input;
        self.next_input += 1;
        let positions = d.resume.map(|at| (d.fingerprint, at)).into_iter().collect();
        let name: Arc<str> = d.name.as_str().into();
        let (mut reader, opened) =
            match FileReader::from_read(Box::new(body), name, d.fingerprint, input, &positions) {
                Ok(r) => r,
                Err(e) => {
                    return Ok(Err((d.name, format!("reading the downloaded object: {e}"))));
                }
            };
        let sent = feed.send(0, opened)
            && std::iter::from_fn(|| reader.next_item(&self.reader, true))
                .all(|item| feed.send(0, item));
        let end = reader.offset();
        if !(sent && feed.send(0, ReadItem::Finished { input, offset: end })) {
            return Err(Stopped::EngineGone);
        }
        let key = d.fingerprint.to_string();
        self.known.insert(key.clone(), (end, FINISHED_LINE));
        self.summary.read += 1;
        Ok(Ok((key, end)))
    }

    /// Read what the queue's notifications announce until `stop` (or, without `--follow`,
    /// until the queue is empty); a message is deleted once every object it names is committed
    /// (a crash before that redelivers it, and its finished objects are skipped).
    fn run_queue(
        &mut self,
        queue: &Queue,
        stop: &AtomicBool,
        feed: &mut dyn Feed,
    ) -> Result<(), Stopped> {
        // (receipt, objects to see committed: identity → end)
        let mut waiting: Vec<(String, Vec<Need>)> = Vec::new();
        let mut committed: HashMap<String, u64> = HashMap::new();
        while !stop.load(Ordering::Relaxed) {
            let messages = match Remote::block_on(queue.receive()) {
                Ok(m) => m,
                Err(e) if self.summary.messages == 0 && !self.follow => {
                    return Err(Stopped::Failed(e.into()));
                }
                Err(e) => {
                    self.summary.errors += 1;
                    tracing::warn!("{e}; receiving again in 1s");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if messages.is_empty() && !self.follow {
                break;
            }
            if messages.is_empty() && !feed.send(0, ReadItem::Idle) {
                return Err(Stopped::EngineGone);
            }
            // Every object of the batch is downloading before the first is read.
            let mut batch = Vec::new();
            for m in messages {
                self.summary.messages += 1;
                self.not_read(
                    "notification of no new object (removal, test event)",
                    m.other,
                );
                let downloads = self.announced_downloads(&m.objects);
                batch.push((m.receipt, downloads));
            }
            for (receipt, downloads) in batch {
                let Some(downloads) = downloads else {
                    continue; // left on the queue: it comes back
                };
                let (mut needs, mut complete) = (Vec::new(), true);
                for d in downloads {
                    match self.read_object(d, feed)? {
                        Ok(need) => needs.push(need),
                        Err((name, reason)) => {
                            self.summary.errors += 1;
                            tracing::warn!(%name, "{reason}; the notification comes back");
                            complete = false;
                        }
                    }
                }
                if complete {
                    waiting.push((receipt, needs));
                }
            }
            self.delete_committed(queue, feed, &mut waiting, &mut committed);
        }
        if !feed.close(0) {
            return Err(Stopped::EngineGone);
        }
        self.delete_committed(queue, feed, &mut waiting, &mut committed);
        Ok(())
    }

    /// Start downloading the announced log objects not finished yet; `None` when one could not
    /// be looked up (the message is left on the queue to come back).
    fn announced_downloads(&mut self, objects: &[(String, String)]) -> Option<Vec<Download>> {
        let mut downloads = Vec::new();
        for (bucket, key) in objects {
            let Some(remote) = self
                .prefixes
                .iter()
                .find(|r| holds(r, bucket, key))
                .cloned()
            else {
                self.not_read("announced outside the prefixes", 1);
                continue;
            };
            let store = remote.store();
            let meta = match Remote::block_on(store.head(&key.as_str().into())) {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => {
                    self.not_read("gone before it was read (or a folder marker)", 1);
                    continue;
                }
                Err(e) => {
                    self.summary.errors += 1;
                    tracing::warn!("s3://{bucket}/{key}: {e}; the notification comes back");
                    downloads.iter().for_each(|d: &Download| d.body.abort());
                    return None;
                }
            };
            downloads.extend(self.wanted(&remote, &store, meta, true));
        }
        Some(downloads)
    }

    /// Delete the messages whose objects are all committed.
    fn delete_committed(
        &mut self,
        queue: &Queue,
        feed: &mut dyn Feed,
        waiting: &mut Vec<(String, Vec<Need>)>,
        committed: &mut HashMap<String, u64>,
    ) {
        committed.extend(feed.committed().into_iter().map(|(_, fp, at)| (fp, at)));
        waiting.retain(|(receipt, needs)| {
            let done = needs
                .iter()
                .all(|(fp, end)| committed.get(fp).is_some_and(|at| at >= end));
            if !done {
                return true;
            }
            match Remote::block_on(queue.delete(receipt)) {
                Ok(()) => {
                    self.summary.messages_deleted += 1;
                    false
                }
                Err(e) => {
                    // Redelivered later: its objects are finished and skipped then.
                    tracing::warn!("{e}");
                    self.summary.errors += 1;
                    false
                }
            }
        });
    }
}

/// Whether `remote`'s prefix holds `key` of `bucket`.
fn holds(remote: &Remote, bucket: &str, key: &str) -> bool {
    let prefix = remote.prefix().as_ref();
    remote.base().host_str() == Some(bucket)
        && (prefix.is_empty()
            || key == prefix
            || key.strip_prefix(prefix).is_some_and(|r| r.starts_with('/')))
}

/// An object's identity and the end to see committed before its notification is deleted.
type Need = (String, u64);
/// An object that could not be read: its name and why.
type Unread = (String, String);

/// An object being downloaded ahead of the reader.
struct Download {
    name: String,
    fingerprint: Fingerprint,
    resume: Option<(u64, u64)>,
    size: u64,
    body: tokio::task::JoinHandle<Result<(tempfile::SpooledTempFile, u64), String>>,
}

/// Why listing and reading stopped early.
enum Stopped {
    /// The engine has gone away (its error is its own to report).
    EngineGone,
    /// The source cannot go on.
    Failed(SourceFailure),
}

impl RecordSource for ObjectSource {
    fn run(
        &mut self,
        stop: &Arc<AtomicBool>,
        mut feed: Box<dyn Feed>,
    ) -> Result<(), SourceFailure> {
        let scope = Scope::whole_output();
        let Some(positions) = feed.open(&scope) else {
            return Ok(());
        };
        self.known = positions;
        if let Some(queue) = self.queue.take() {
            return match self.run_queue(&queue, stop, feed.as_mut()) {
                Ok(()) | Err(Stopped::EngineGone) => Ok(()),
                Err(Stopped::Failed(e)) => Err(e),
            };
        }
        let mut after = vec![None; self.prefixes.len()];
        loop {
            let full = self.summary.listings.is_multiple_of(FULL_LIST_EVERY);
            let progressed = match self.list_and_read(full, &mut after, stop, feed.as_mut()) {
                Ok(p) => p,
                Err(Stopped::EngineGone) => return Ok(()),
                Err(Stopped::Failed(e)) => return Err(e),
            };
            if !self.follow || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if !progressed && !feed.send(0, ReadItem::Idle) {
                return Ok(());
            }
            let listed = Instant::now();
            while listed.elapsed() < self.list_every {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                std::thread::sleep(self.reader.poll.min(self.list_every));
            }
        }
    }
}

/// Why a listed key is not read as a log object, if it is not one.
fn not_a_log(meta: &ObjectMeta) -> Option<&'static str> {
    let key = meta.location.as_ref();
    if meta.size == 0 {
        // object_store drops the trailing `/` of folder markers: every empty key is skipped
        // (an empty object holds no records either way).
        Some("empty object (folder marker)")
    } else if key.contains("/CloudTrail-Digest/") {
        Some("CloudTrail digest (integrity hashes, no events)")
    } else {
        None
    }
}

/// `scheme://bucket/key` of a listed object.
fn object_name(remote: &Remote, meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        remote.base().as_str().trim_end_matches('/'),
        meta.location
    )
}

/// An object's identity in checkpoints: its URL and version (a rewritten object is read again).
fn identity(remote: &Remote, meta: &ObjectMeta) -> Fingerprint {
    let version = meta
        .e_tag
        .clone()
        .or_else(|| meta.version.clone())
        .unwrap_or_else(|| format!("{}@{}", meta.size, meta.last_modified.timestamp_millis()));
    let text = format!("{}\n{version}", object_name(remote, meta));
    Fingerprint(xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// The whole object, in memory or spooled to a temporary file, with the number of transfers
/// resumed; a transfer that breaks resumes where it stopped (range request, same ETag).
async fn download(
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
) -> Result<(tempfile::SpooledTempFile, u64), String> {
    let mut body = tempfile::SpooledTempFile::new(IN_MEMORY);
    let mut got = 0u64;
    let mut attempt = 0u32;
    loop {
        let opts = GetOptions {
            if_match: meta.e_tag.clone(),
            range: (got > 0).then_some(GetRange::Offset(got)),
            ..GetOptions::default()
        };
        let fetched: Result<(), Failure> = async {
            let mut stream = store
                .get_opts(&meta.location, opts)
                .await
                .map_err(Failure::Store)?
                .into_stream();
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(Failure::Store)?;
                body.write_all(&bytes).map_err(Failure::Local)?;
                got += bytes.len() as u64;
            }
            Ok(())
        }
        .await;
        match fetched {
            Ok(()) if got == meta.size => break,
            Ok(()) => {
                return Err(format!(
                    "downloaded {got} bytes of {} listed: the object changed while it was read",
                    meta.size
                ));
            }
            Err(Failure::Store(e)) if retryable(&e) && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                let wait = Duration::from_millis(250 << attempt);
                tracing::debug!("downloading {}: {e}; resuming in {wait:?}", meta.location);
                tokio::time::sleep(wait).await;
            }
            Err(Failure::Store(object_store::Error::Precondition { .. })) => {
                return Err(
                    "the object was replaced while it was read (its ETag changed); \
                     the new version is read at the next listing"
                        .into(),
                );
            }
            Err(Failure::Store(e)) => return Err(format!("downloading: {e}")),
            Err(Failure::Local(e)) => {
                return Err(format!("spooling the download to a temporary file: {e}"));
            }
        }
    }
    body.rewind()
        .map_err(|e| format!("rewinding the download: {e}"))?;
    Ok((body, u64::from(attempt)))
}

enum Failure {
    Store(object_store::Error),
    Local(std::io::Error),
}

/// Failures worth another attempt: transport and server errors, not answers about the object.
fn retryable(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    !matches!(
        e,
        E::NotFound { .. }
            | E::InvalidPath { .. }
            | E::Precondition { .. }
            | E::NotModified { .. }
            | E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
            | E::NotSupported { .. }
            | E::NotImplemented { .. }
            | E::UnknownConfigurationKey { .. }
    )
}
