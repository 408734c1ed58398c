//! Sessions after a completed login: opaque bearer tokens shown once, kept as SHA-256, with
//! expiry, introspection and revocation.

use std::time::Duration;

use super::expiring::Sharded;
use super::token::{random, sha256_hex};

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
    /// The user the session belongs to.
    pub user: String,
    /// Session id.
    pub session_id: String,
    /// Expiry (epoch ms).
    pub expires_at: i64,
}

/// Live sessions by token hash.
pub struct Sessions {
    ttl_ms: i64,
    live: Sharded<SessionInfo>,
}

impl Sessions {
    /// Sessions lasting `ttl`.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl_ms: ttl.as_millis() as i64,
            live: Sharded::default(),
        }
    }

    /// A new session for `user`.
    pub fn start(&self, user: &str, now: i64) -> NewSession {
        // One draw from the OS for both: a 256-bit token and a 72-bit id.
        let bytes = zeroize::Zeroizing::new(random(41));
        let b64 = |b: &[u8]| data_encoding::BASE64URL_NOPAD.encode(b);
        let session = NewSession {
            token: b64(&bytes[..32]),
            session_id: b64(&bytes[32..]),
            expires_at: now + self.ttl_ms,
        };
        let info = SessionInfo {
            user: user.into(),
            session_id: session.session_id.clone(),
            expires_at: session.expires_at,
        };
        let key = sha256_hex(&session.token);
        let expires_at = session.expires_at;
        self.live
            .with(&key.clone(), |m| m.insert(key, expires_at, info, now));
        session
    }

    /// The live session of `token`, if any.
    pub fn introspect(&self, token: &str, now: i64) -> Option<SessionInfo> {
        let key = sha256_hex(token);
        self.live.with(&key, |m| m.get(&key, now).cloned())
    }

    /// End the session of `token`: what it was, if it was live.
    pub fn revoke(&self, token: &str, now: i64) -> Option<SessionInfo> {
        let key = sha256_hex(token);
        self.live.with(&key, |m| m.remove(&key, now))
    }

    /// End every session of `user` (the user was deleted).
    pub fn revoke_user(&self, user: &str) {
        self.live.retain(|s| s.user != user);
    }
}
