//! One receiver's durable outbox, a directory (`OUT/_state/notify/<receiver>/`):
//!
//! - `queue/<enqueued ms>-<seq>.json`: each notification until its receiver acknowledged it
//!   (file name order is delivery order);
//! - `ledger/*.keys`: the idempotency keys ever enqueued, so what stored findings and SLO
//!   episodes owe is offered once per receiver — after a crash, exactly the missing ones;
//! - `parked/<key hash>.json`: notifications the receiver refused (with its response), the
//!   outbox overflowed for, or that outlived the age bound; listed by `mfascope notify status`
//!   and sent again by `mfascope notify retry`.
//!
//! Every file is written to a temporary name, synced and renamed. A notification is in the
//! queue before its key is in the ledger, so a crash in between repeats it (at least once),
//! never loses it. This module never sends anything (that is [`crate::deliver`]).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::notification::Notification;
use crate::store::OutboxRoot;

/// Ledger segments merged into one beyond this many.
const LEDGER_SEGMENTS: usize = 32;
/// Bytes of a refusing receiver's response kept with a parked notification.
const RESPONSE_KEPT: usize = 2048;

/// A notification waiting in the queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Queued {
    /// Idempotency key.
    pub key: String,
    /// When it was enqueued (epoch ms).
    pub enqueued_ms: i64,
    /// What to deliver.
    pub notification: Notification,
    /// Queue file name (not stored in it).
    #[serde(skip)]
    pub file: String,
}

/// A notification set aside, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Parked {
    /// Idempotency key.
    pub key: String,
    /// When it was enqueued (epoch ms).
    pub enqueued_ms: i64,
    /// When it was parked (epoch ms).
    pub parked_ms: i64,
    /// Why: the receiver's refusal, the outbox bound, the age bound.
    pub reason: String,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The start of the receiver's response body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response: String,
    /// What was not delivered.
    pub notification: Notification,
}

/// The receiver an outbox belongs to, as shown (never its secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverInfo {
    /// `<format>-<hash of the URL>`: the directory name.
    pub id: String,
    /// Format name.
    pub format: String,
    /// Scheme and host of the URL (the path and query can hold credentials).
    pub target: String,
}

/// Bounds of an outbox.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most notifications queued; more are parked as overflow.
    pub max_queued: usize,
    /// Oldest a queued notification may get (ms); older ones are parked as expired.
    pub max_age_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_queued: 100_000,
            max_age_ms: 7 * 24 * 3_600_000,
        }
    }
}

/// An outbox failed to read or write its directory.
#[derive(Debug, thiserror::Error)]
#[error("notification outbox {path}: {source}")]
pub struct OutboxError {
    path: String,
    source: std::io::Error,
}

impl OutboxError {
    /// An I/O failure on `path`.
    pub fn new(path: impl std::fmt::Display, source: std::io::Error) -> OutboxError {
        OutboxError {
            path: path.to_string(),
            source,
        }
    }
}

/// What one [`Outbox::enqueue`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// Queued for delivery.
    pub queued: usize,
    /// Parked because the queue was full.
    pub overflowed: usize,
}

/// One receiver's queue, ledger and parked notifications.
pub struct Outbox {
    dir: OutboxRoot,
    info: ReceiverInfo,
    limits: Limits,
    ledger: HashSet<String>,
    ledger_segments: usize,
    queue: BTreeMap<String, Queued>,
    parked: usize,
    seq: u64,
}

impl Outbox {
    /// Open (or create) the outbox of `info` under `root` (`OUT/_state/notify`, a local
    /// directory or on the object store of `OUT`).
    pub fn open(
        root: &OutboxRoot,
        info: ReceiverInfo,
        limits: Limits,
    ) -> Result<Outbox, OutboxError> {
        let dir = root.join(&info.id);
        dir.create(&["queue", "ledger", "parked"])?;
        dir.write(
            "receiver.json",
            &serde_json::to_vec_pretty(&info).expect("receiver info serializes"),
        )?;
        let mut ledger = HashSet::new();
        let segments = dir.list("ledger", ".keys")?;
        for name in &segments {
            let path = format!("ledger/{name}");
            let bytes = dir.read(&path)?.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            ledger.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
        }
        let mut queue = BTreeMap::new();
        let mut seen = HashSet::new();
        for name in dir.list("queue", ".json")? {
            let path = format!("queue/{name}");
            let Some(mut q) = read_json::<Queued>(&dir, &path)? else {
                continue;
            };
            if !seen.insert(q.key.clone()) {
                // Enqueued again after a crash between queue and ledger: one copy is enough.
                dir.remove(&path)?;
                continue;
            }
            ledger.insert(q.key.clone());
            q.file = name.clone();
            queue.insert(name, q);
        }
        let parked = dir.list("parked", ".json")?.len();
        Ok(Outbox {
            dir,
            info,
            limits,
            ledger,
            ledger_segments: segments.len(),
            queue,
            parked,
            seq: 0,
        })
    }

    /// Who this outbox delivers to.
    pub fn info(&self) -> &ReceiverInfo {
        &self.info
    }

    /// Whether `key` was ever enqueued here.
    pub fn knows(&self, key: &str) -> bool {
        self.ledger.contains(key)
    }

    /// Queue the notifications of `items` whose keys were never enqueued, in order; park what
    /// exceeds the bound. Returns what it did.
    pub fn enqueue(
        &mut self,
        items: &[Notification],
        now_ms: i64,
    ) -> Result<Enqueued, OutboxError> {
        let mut done = Enqueued::default();
        let mut keys = Vec::new();
        let mut fresh = HashSet::new();
        for n in items {
            let key = n.key();
            if self.ledger.contains(&key) || !fresh.insert(key.clone()) {
                continue;
            }
            let q = Queued {
                key: key.clone(),
                enqueued_ms: now_ms,
                notification: n.clone(),
                file: String::new(),
            };
            if self.queue.len() >= self.limits.max_queued {
                let reason = format!(
                    "outbox full ({} notifications queued for {})",
                    self.queue.len(),
                    self.info.target
                );
                self.park(&q, reason, None, "", now_ms)?;
                done.overflowed += 1;
            } else {
                self.push(q, now_ms)?;
                done.queued += 1;
            }
            keys.push(key);
        }
        if !keys.is_empty() {
            self.record(&keys, now_ms)?;
        }
        Ok(done)
    }

    /// The oldest `n` queued notifications, in delivery order.
    pub fn front(&self, n: usize) -> Vec<Queued> {
        self.queue.values().take(n).cloned().collect()
    }

    /// Notifications queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Notifications parked.
    pub fn parked_len(&self) -> usize {
        self.parked
    }

    /// Enqueue time of the oldest queued notification.
    pub fn oldest_ms(&self) -> Option<i64> {
        // Queue file names start with the enqueue time: the first is the oldest.
        self.queue.values().next().map(|q| q.enqueued_ms)
    }

    /// The receiver acknowledged these: out of the queue.
    pub fn ack(&mut self, delivered: &[Queued]) -> Result<(), OutboxError> {
        for q in delivered {
            if self.queue.remove(&q.file).is_some() {
                self.dir.remove(&format!("queue/{}", q.file))?;
            }
        }
        Ok(())
    }

    /// Set these aside with the receiver's answer.
    pub fn refuse(
        &mut self,
        refused: &[Queued],
        reason: &str,
        status: Option<u16>,
        response: &str,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        for q in refused {
            self.park(q, reason.to_string(), status, response, now_ms)?;
            self.ack(std::slice::from_ref(q))?;
        }
        Ok(())
    }

    /// Park the queued notifications older than the age bound; how many.
    pub fn expire(&mut self, now_ms: i64) -> Result<usize, OutboxError> {
        // In enqueue order: only the front can be too old.
        let old: Vec<Queued> = self
            .queue
            .values()
            .take_while(|q| now_ms - q.enqueued_ms > self.limits.max_age_ms)
            .cloned()
            .collect();
        let reason = format!(
            "undelivered for longer than the outbox's age bound ({} h)",
            self.limits.max_age_ms / 3_600_000
        );
        self.refuse(&old, &reason, None, "", now_ms)?;
        Ok(old.len())
    }

    /// Every parked notification, oldest first.
    pub fn parked(&self) -> Result<Vec<Parked>, OutboxError> {
        let mut all = Vec::new();
        for name in self.dir.list("parked", ".json")? {
            all.extend(read_json::<Parked>(&self.dir, &format!("parked/{name}"))?);
        }
        all.sort_by_key(|p| (p.parked_ms, p.key.clone()));
        Ok(all)
    }

    /// Put the parked notifications back in the queue (all, or those whose key starts with
    /// `prefix`); how many.
    pub fn requeue_parked(
        &mut self,
        prefix: Option<&str>,
        now_ms: i64,
    ) -> Result<usize, OutboxError> {
        let mut n = 0;
        for p in self.parked()? {
            if prefix.is_some_and(|pre| !p.key.starts_with(pre)) {
                continue;
            }
            let q = Queued {
                key: p.key.clone(),
                enqueued_ms: now_ms,
                notification: p.notification,
                file: String::new(),
            };
            self.push(q, now_ms)?;
            self.dir.remove(&self.parked_path(&p.key))?;
            self.parked = self.parked.saturating_sub(1);
            n += 1;
        }
        Ok(n)
    }

    fn push(&mut self, mut q: Queued, now_ms: i64) -> Result<(), OutboxError> {
        self.seq += 1;
        q.file = format!(
            "{now_ms:013}-{:06}-{}.json",
            std::process::id() % 1_000_000,
            self.seq_text()
        );
        self.dir.write(
            &format!("queue/{}", q.file),
            &serde_json::to_vec(&q).expect("queued notifications serialize"),
        )?;
        self.queue.insert(q.file.clone(), q);
        Ok(())
    }

    fn seq_text(&self) -> String {
        format!("{:09}", self.seq)
    }

    fn park(
        &mut self,
        q: &Queued,
        reason: String,
        status: Option<u16>,
        response: &str,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        let mut cut = response.len().min(RESPONSE_KEPT);
        while !response.is_char_boundary(cut) {
            cut -= 1;
        }
        let p = Parked {
            key: q.key.clone(),
            enqueued_ms: q.enqueued_ms,
            parked_ms: now_ms,
            reason,
            status,
            response: response[..cut].to_string(),
            notification: q.notification.clone(),
        };
        let path = self.parked_path(&q.key);
        let existed = self.dir.exists(&path)?;
        self.dir.write(
            &path,
            &serde_json::to_vec_pretty(&p).expect("parked notifications serialize"),
        )?;
        if !existed {
            self.parked += 1;
        }
        Ok(())
    }

    fn parked_path(&self, key: &str) -> String {
        let hash = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        format!("parked/{hash:016x}.json")
    }

    /// Add `keys` to the ledger (a new segment; segments merged beyond a bound).
    fn record(&mut self, keys: &[String], now_ms: i64) -> Result<(), OutboxError> {
        let name = format!(
            "{now_ms:013}-{}-{}.keys",
            std::process::id(),
            self.seq_text()
        );
        self.dir.write(
            &format!("ledger/{name}"),
            (keys.join("\n") + "\n").as_bytes(),
        )?;
        self.ledger.extend(keys.iter().cloned());
        self.ledger_segments += 1;
        if self.ledger_segments > LEDGER_SEGMENTS {
            let segments = self.dir.list("ledger", ".keys")?;
            let mut all: Vec<&String> = self.ledger.iter().collect();
            all.sort();
            let text: String = all.iter().map(|k| format!("{k}\n")).collect();
            let merged = format!("{now_ms:013}-{}-merged.keys", std::process::id());
            self.dir
                .write(&format!("ledger/{merged}"), text.as_bytes())?;
            for old in segments.iter().filter(|s| **s != merged) {
                self.dir.remove(&format!("ledger/{old}"))?;
            }
            self.ledger_segments = 1;
        }
        Ok(())
    }
}

/// The outboxes under `root` (`OUT/_state/notify`), by receiver id.
pub fn receivers(root: &OutboxRoot) -> Result<Vec<ReceiverInfo>, OutboxError> {
    let mut out = Vec::new();
    for id in root.folders_with("receiver.json")? {
        out.extend(read_json::<ReceiverInfo>(&root.join(&id), "receiver.json")?);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The JSON file `name` of `dir`; `None` when it is gone (removed by a run meanwhile).
fn read_json<T: serde::de::DeserializeOwned>(
    dir: &OutboxRoot,
    name: &str,
) -> Result<Option<T>, OutboxError> {
    let Some(bytes) = dir.read(name)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        OutboxError::new(
            dir.describe(name),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{episode, finding};

    fn info() -> ReceiverInfo {
        ReceiverInfo {
            id: "generic-0123".into(),
            format: "generic".into(),
            target: "http://127.0.0.1:1".into(),
        }
    }

    fn items() -> Vec<Notification> {
        let mut items = Notification::episode(&episode(true), None);
        items.push(Notification::finding(finding(), None));
        items
    }

    #[test]
    fn each_key_is_queued_once_across_reopens_and_acks_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().into(), info(), Limits::default()).unwrap();
        assert_eq!(o.enqueue(&items(), 1).unwrap().queued, 3);
        assert_eq!(o.enqueue(&items(), 2).unwrap().queued, 0);
        let first = o.front(1);
        assert_eq!(first[0].key, items()[0].key());
        o.ack(&first).unwrap();
        drop(o);
        let mut o = Outbox::open(&dir.path().into(), info(), Limits::default()).unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o.enqueue(&items(), 3).unwrap(), Enqueued::default());
        let keys: Vec<String> = o.front(10).into_iter().map(|q| q.key).collect();
        assert_eq!(keys, [items()[1].key(), items()[2].key()]);
    }

    #[test]
    fn a_crash_between_queue_and_ledger_repeats_nothing_twice_in_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().into(), info(), Limits::default()).unwrap();
        o.enqueue(&items(), 1).unwrap();
        drop(o);
        // The ledger lost: as if the process died after writing the queue files.
        let ledger = dir.path().join("generic-0123/ledger");
        std::fs::remove_dir_all(&ledger).unwrap();
        std::fs::create_dir(&ledger).unwrap();
        let mut o = Outbox::open(&dir.path().into(), info(), Limits::default()).unwrap();
        assert_eq!(
            o.enqueue(&items(), 2).unwrap().queued,
            0,
            "queued keys are known"
        );
        assert_eq!(o.len(), 3);
    }

    #[test]
    fn overflow_and_age_park_rather_than_drop_and_parked_ones_requeue() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_queued: 2,
            max_age_ms: 1_000,
        };
        let mut o = Outbox::open(&dir.path().into(), info(), limits).unwrap();
        let done = o.enqueue(&items(), 0).unwrap();
        assert_eq!((done.queued, done.overflowed), (2, 1));
        assert_eq!(o.expire(500).unwrap(), 0);
        assert_eq!(o.expire(5_000).unwrap(), 2);
        assert_eq!((o.len(), o.parked_len()), (0, 3));
        let parked = o.parked().unwrap();
        assert!(parked.iter().any(|p| p.reason.starts_with("outbox full")));
        assert!(parked.iter().any(|p| p.reason.contains("age bound")));
        o.refuse(&[], "", None, "", 0).unwrap();
        assert_eq!(o.requeue_parked(Some("finding/"), 6_000).unwrap(), 1);
        assert_eq!((o.len(), o.parked_len()), (1, 2));
        drop(o);
        let o = Outbox::open(&dir.path().into(), info(), limits).unwrap();
        assert_eq!((o.len(), o.parked_len()), (1, 2));
        assert_eq!(receivers(&dir.path().into()).unwrap(), [info()]);
    }
}
