//! Sessions after a completed login: opaque bearer tokens shown once, kept as SHA-256, with
//! expiry, introspection and revocation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::token::{sha256_hex, token};
use crate::sync::lock;

/// A session: the token is shown once; only its hash is kept.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NewSession {
    /// Bearer token (opaque, 256 bits).
    pub token: String,
    /// Session id (for logs and events; not a credential).
    pub session_id: String,
    /// Expiry (epoch ms).
    pub expires_at: i64,
}

/// What introspection says about a live session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// User.
    pub user: String,
    /// Session id.
    pub session_id: String,
    /// Expiry (epoch ms).
    pub expires_at: i64,
}

#[derive(Default)]
struct Live {
    by_hash: HashMap<String, SessionInfo>,
    /// Expired sessions are swept when the map reaches this size.
    sweep_at: usize,
}

/// Live sessions by token hash.
pub struct Sessions {
    ttl_ms: i64,
    live: Mutex<Live>,
}

impl Sessions {
    /// Sessions lasting `ttl`.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl_ms: ttl.as_millis() as i64,
            live: Mutex::default(),
        }
    }

    /// A new session for `user`.
    pub fn start(&self, user: &str, now: i64) -> NewSession {
        let session = NewSession {
            token: token(32),
            session_id: token(9),
            expires_at: now + self.ttl_ms,
        };
        let info = SessionInfo {
            user: user.into(),
            session_id: session.session_id.clone(),
            expires_at: session.expires_at,
        };
        let mut live = lock(&self.live);
        if live.by_hash.len() >= live.sweep_at {
            live.by_hash.retain(|_, s| s.expires_at > now);
            live.sweep_at = live.by_hash.len() * 2 + 4096;
        }
        live.by_hash.insert(sha256_hex(&session.token), info);
        session
    }

    /// The live session of `token`, if any.
    pub fn introspect(&self, token: &str, now: i64) -> Option<SessionInfo> {
        lock(&self.live)
            .by_hash
            .get(&sha256_hex(token))
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    /// End the session of `token`: what it was, if it was live.
    pub fn revoke(&self, token: &str, now: i64) -> Option<SessionInfo> {
        lock(&self.live)
            .by_hash
            .remove(&sha256_hex(token))
            .filter(|s| s.expires_at > now)
    }

    /// End every session of `user` (the user was deleted).
    pub fn revoke_user(&self, user: &str) {
        lock(&self.live).by_hash.retain(|_, s| s.user != user);
    }
}
