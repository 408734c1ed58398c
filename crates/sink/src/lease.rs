//! The lock of a state on object storage: a lease object taken with a conditional create and
//! renewed with conditional updates (`If-None-Match: *` / `If-Match: <etag>`), the object store
//! equivalent of the local `flock`. A holder that cannot renew (someone else took the lease, the
//! store is unreachable for longer than the lease) stops committing. A lease left by a crashed
//! process is taken over once it expires, or at once when its holder was a process on this
//! machine that no longer runs (kill -9 and restart on the same host).

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Sender, bounded};
use object_store::{PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::SinkError;
use super::location::Remote;

/// How long a lease is valid without renewal.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Commits stop this long before the lease would expire.
const MARGIN: Duration = Duration::from_secs(5);

/// Content of the lease object.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    host: String,
    boot_id: String,
    pid: u32,
    /// Process start time (clock ticks since boot), which tells a reused pid apart.
    start: u64,
    expires_unix_ms: u64,
}

impl Holder {
    fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            host: read_trim("/proc/sys/kernel/hostname"),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            pid,
            start: process_start(pid).unwrap_or(0),
            expires_unix_ms: now_ms() + LEASE.as_millis() as u64,
        }
    }

    /// Whether this lease can be taken over: expired, or held by a process of this machine
    /// (same boot) that is gone.
    fn is_stale(&self) -> bool {
        if now_ms() > self.expires_unix_ms {
            return true;
        }
        let me = Holder::me();
        !me.boot_id.is_empty()
            && me.boot_id == self.boot_id
            && me.host == self.host
            && process_start(self.pid) != Some(self.start)
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Start time of process `pid` (field 22 of `/proc/PID/stat`), `None` when it does not run.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

struct Held {
    version: UpdateVersion,
    /// Until when the last renewal is certainly valid (measured locally).
    valid_until: Instant,
    lost: Option<String>,
}

/// A held lease; renewed in the background, released on drop.
pub struct Lease {
    remote: Arc<Remote>,
    rel: String,
    held: Arc<Mutex<Held>>,
    stop: Option<Sender<()>>,
    renewer: Option<thread::JoinHandle<()>>,
}

impl Lease {
    /// Take the lease at `rel`; [`SinkError::Locked`] when a live holder has it.
    pub fn acquire(remote: &Arc<Remote>, rel: &str) -> Result<Lease, SinkError> {
        let err = |source| SinkError::Store {
            op: "taking the lock",
            url: remote.describe(rel),
            source,
        };
        let body = || serde_json::to_vec(&Holder::me()).expect("serializable");
        let asked = Instant::now();
        let result = match remote.put(rel, body(), PutMode::Create) {
            Err(object_store::Error::AlreadyExists { .. }) => {
                let Some((bytes, version)) = remote.get(rel)? else {
                    // Released meanwhile: try once more.
                    return Lease::acquire(remote, rel);
                };
                let stale = serde_json::from_slice::<Holder>(&bytes).map_or(true, |h| h.is_stale());
                if !stale {
                    return Err(SinkError::Locked(remote.describe(rel)));
                }
                tracing::info!(lock = %remote.describe(rel), "taking over a stale lock");
                match remote.put(rel, body(), PutMode::Update(version)) {
                    Err(
                        object_store::Error::Precondition { .. }
                        | object_store::Error::AlreadyExists { .. },
                    ) => {
                        return Err(SinkError::Locked(remote.describe(rel)));
                    }
                    other => other,
                }
            }
            other => other,
        };
        let put = result.map_err(err)?;
        let held = Arc::new(Mutex::new(Held {
            version: UpdateVersion {
                e_tag: put.e_tag,
                version: put.version,
            },
            valid_until: asked + LEASE,
            lost: None,
        }));
        let (stop, stopped) = bounded::<()>(1);
        let renewer = {
            let (remote, key, held) = (remote.clone(), rel.to_string(), held.clone());
            thread::Builder::new()
                .name("lease".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(RENEW_EVERY)
                    {
                        if !renew(&remote, &key, &held) {
                            break;
                        }
                    }
                })
                .map_err(|e| super::io_err("starting the lease renewer for", rel)(e))?
        };
        Ok(Lease {
            remote: remote.clone(),
            rel: rel.to_string(),
            held,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    /// Fail unless the lease is certainly still ours for a few seconds (checked before the
    /// step of a commit that makes files visible).
    pub fn ensure_held(&self) -> Result<(), SinkError> {
        let held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(why) = &held.lost {
            return Err(SinkError::LockLost(format!(
                "{}: {why}",
                self.remote.describe(&self.rel)
            )));
        }
        if Instant::now() + MARGIN > held.valid_until {
            drop(held);
            if !renew(&self.remote, &self.rel, &self.held) {
                return self.ensure_held();
            }
        }
        Ok(())
    }
}

/// Renew once; `false` when the lease is lost for good.
fn renew(remote: &Remote, rel: &str, held: &Mutex<Held>) -> bool {
    let version = held
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .version
        .clone();
    let asked = Instant::now();
    let body = serde_json::to_vec(&Holder::me()).expect("serializable");
    let result = remote.put(rel, body, PutMode::Update(version));
    let mut h = held
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match result {
        Ok(put) => {
            h.version = UpdateVersion {
                e_tag: put.e_tag,
                version: put.version,
            };
            h.valid_until = asked + LEASE;
            true
        }
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
            h.lost = Some("another process took the lock".into());
            false
        }
        Err(e) => {
            // Transient: keep trying while the last renewal is valid.
            tracing::warn!(lock = %remote.describe(rel), error = %e, "renewing the lock failed");
            if Instant::now() >= h.valid_until {
                h.lost = Some(format!("the lock expired while the store failed: {e}"));
                return false;
            }
            true
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        let lost = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .lost
            .is_some();
        if !lost {
            let _ = self.remote.delete(&self.rel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_start_is_read_and_a_dead_pid_has_none() {
        assert!(process_start(std::process::id()).is_some());
        assert_eq!(process_start(u32::MAX), None);
    }

    #[test]
    fn a_lease_of_a_gone_local_process_is_stale_a_live_one_is_not() {
        let mut h = Holder::me();
        assert!(!h.is_stale(), "this process holds it");
        h.start += 1;
        assert!(
            h.is_stale(),
            "same pid, other start time: the holder is gone"
        );
        let mut other_host = Holder::me();
        other_host.boot_id = "another-machine".into();
        other_host.start += 1;
        assert!(
            !other_host.is_stale(),
            "another machine's lease waits for expiry"
        );
        other_host.expires_unix_ms = now_ms() - 1;
        assert!(other_host.is_stale());
    }
}
