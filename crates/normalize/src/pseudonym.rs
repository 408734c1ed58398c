//! Keyed pseudonyms (`--pseudonymize-key FILE`): the user, the actor and the client IP of
//! every event are replaced by an HMAC-SHA256 of the value under a secret key before any sink
//! sees them. The same key gives the same pseudonym in every run and every process, so
//! counts, joins and rules (per user, per IP) work as before; without the key a pseudonym
//! cannot be turned back into the value, nor can a guessed value be checked. Users and actors
//! share one space (an admin acting on themselves stays recognizable); IPs have their own.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use mfascope_core::event::Event;

/// Shortest accepted key.
pub const MIN_KEY_BYTES: usize = 32;

/// Bytes of the HMAC kept in a pseudonym (96 bits: no collision in practice below 10^12 values).
const KEPT: usize = 12;

/// A key file that cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum PseudonymError {
    /// The key file cannot be read.
    #[error("pseudonymization key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Too short to be a secret.
    #[error(
        "pseudonymization key {path} holds {len} bytes; at least {MIN_KEY_BYTES} random bytes are \
         needed (make one with `head -c 32 /dev/urandom > {path}`)"
    )]
    Short {
        /// The file.
        path: PathBuf,
        /// Bytes found.
        len: usize,
    },
}

/// Maps identities to pseudonyms under one key.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(key withheld)")
    }
}

impl Pseudonymizer {
    /// The key in `path` (its bytes, a trailing newline ignored).
    pub fn from_key_file(path: &Path) -> Result<Self, PseudonymError> {
        let bytes =
            zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| PseudonymError::Io {
                path: path.to_path_buf(),
                source,
            })?);
        let key = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let key = key.strip_suffix(b"\r").unwrap_or(key);
        if key.len() < MIN_KEY_BYTES {
            return Err(PseudonymError::Short {
                path: path.to_path_buf(),
                len: key.len(),
            });
        }
        Ok(Self::new(key))
    }

    /// A pseudonymizer for `key` (callers check its length).
    pub fn new(key: &[u8]) -> Self {
        Pseudonymizer {
            mac: Hmac::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// `u-` and 24 hex digits for a user or actor; an empty value stays empty.
    pub fn identity(&self, value: &str) -> String {
        self.pseudonym("u-", b'u', value)
    }

    /// `ip-` and 24 hex digits for an IP address; an empty value stays empty.
    pub fn ip(&self, value: &str) -> String {
        self.pseudonym("ip-", b'i', value)
    }

    fn pseudonym(&self, prefix: &str, space: u8, value: &str) -> String {
        if value.is_empty() {
            return String::new();
        }
        let mut mac = self.mac.clone();
        mac.update(&[space, 0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(prefix.len() + 2 * KEPT);
        out.push_str(prefix);
        out.push_str(&data_encoding::HEXLOWER.encode(&digest[..KEPT]));
        out
    }

    /// Replace the event's user, actor and client IP.
    pub fn apply(&self, e: &mut Event<'_>) {
        e.user = self.identity(&e.user).into();
        if let Some(actor) = &mut e.actor {
            *actor = self.identity(actor).into();
        }
        if let Some(ip) = &mut e.src_ip {
            *ip = self.ip(ip).into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_pseudonym_other_key_other_pseudonym() {
        let a = Pseudonymizer::new(&[7; 32]);
        let b = Pseudonymizer::new(&[8; 32]);
        let p = a.identity("ann@example.com");
        assert_eq!(p, Pseudonymizer::new(&[7; 32]).identity("ann@example.com"));
        assert_ne!(p, b.identity("ann@example.com"));
        assert_ne!(p, a.identity("bob@example.com"));
        assert!(p.starts_with("u-") && p.len() == 26, "{p}");
        // Users and IPs live in separate spaces; empty stays empty.
        assert_ne!(a.identity("10.0.0.1")[2..], a.ip("10.0.0.1")[3..]);
        assert_eq!(a.identity(""), "");
    }

    #[test]
    fn a_short_key_file_is_refused_naming_the_file_and_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"too short\n").unwrap();
        let e = Pseudonymizer::from_key_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("holds 9 bytes") && e.contains("/dev/urandom"),
            "{e}"
        );
        std::fs::write(&path, [1u8; 32]).unwrap();
        assert!(Pseudonymizer::from_key_file(&path).is_ok());
    }
}
