//! Push approvals for the simulated devices: a push waits for its device's answer until the
//! timeout; the device proves itself with the token it got at enrollment (only its hash is
//! kept).

use std::sync::Mutex;
use std::time::Duration;

use super::expiring::Expiring;
use super::token::{sha256_hex, token};
use mfascope_core::sync::lock;

/// Where a push stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushState {
    /// No answer yet, not expired.
    Pending,
    /// The device approved.
    Approved,
    /// The device denied.
    Denied,
    /// No answer within the timeout.
    TimedOut,
}

struct Push {
    device_hash: String,
    created: i64,
    answer: Option<bool>,
}

/// Open pushes by id.
pub struct Pushes {
    timeout_ms: i64,
    open: Mutex<Expiring<Push>>,
}

impl Pushes {
    /// Pushes that wait `timeout` for an answer.
    pub fn new(timeout: Duration) -> Pushes {
        Pushes {
            timeout_ms: timeout.as_millis() as i64,
            open: Mutex::default(),
        }
    }

    /// Send a push to the device whose token hashes to `device_hash`; its id and expiry (ms).
    pub fn start(&self, device_hash: &str, now: i64) -> (String, i64) {
        let id = token(12);
        let push = Push {
            device_hash: device_hash.into(),
            created: now,
            answer: None,
        };
        // Kept one more timeout after it expires, so the verify step can tell it timed out.
        let keep_until = now + 2 * self.timeout_ms.max(1);
        lock(&self.open).insert(id.clone(), keep_until, push, now);
        (id, now + self.timeout_ms)
    }

    /// Pushes waiting for the device with `device_token`.
    pub fn pending(&self, device_token: &str, now: i64) -> Vec<String> {
        let hash = sha256_hex(device_token);
        lock(&self.open)
            .iter(now)
            .filter(|(_, p)| {
                p.device_hash == hash && p.answer.is_none() && now - p.created <= self.timeout_ms
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The device's answer; `false` when the push is unknown, not this device's, answered or
    /// expired.
    pub fn answer(&self, push: &str, device_token: &str, approve: bool, now: i64) -> bool {
        let hash = sha256_hex(device_token);
        match lock(&self.open).get_mut(push, now) {
            Some(p)
                if p.device_hash == hash
                    && p.answer.is_none()
                    && now - p.created <= self.timeout_ms =>
            {
                p.answer = Some(approve);
                true
            }
            _ => false,
        }
    }

    /// Where `push` stands (`None` when unknown).
    pub fn state(&self, push: &str, now: i64) -> Option<PushState> {
        let open = lock(&self.open);
        let p = open.get(push, now)?;
        Some(match p.answer {
            Some(true) => PushState::Approved,
            Some(false) => PushState::Denied,
            None if now - p.created > self.timeout_ms => PushState::TimedOut,
            None => PushState::Pending,
        })
    }
}
