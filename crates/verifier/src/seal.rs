//! Secrets at rest: OTP seeds are sealed with ChaCha20-Poly1305 under a 256-bit key kept in a
//! key file of its own (created with mode 0600 when missing), each bound to its slot (user and
//! factor id as associated data) so a sealed secret copied to another user's record does not
//! open. The state files then hold no usable secret without the key file.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

/// Why a key file or a sealed value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file cannot be read or created.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The key file does not hold 32 bytes (64 hex digits).
    #[error(
        "key file {0}: expected 64 hex digits (a 256-bit key); regenerate it or restore the right one"
    )]
    BadKey(PathBuf),
    /// A sealed value is malformed, or was sealed under another key or for another slot.
    #[error("a sealed secret does not open with this key file (another key, or a moved record)")]
    Open,
}

/// Seals and opens secrets under one key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// The key of `path`, created (random, mode 0600) when the file does not exist.
    pub fn from_key_file(path: &Path) -> Result<Sealer, SealError> {
        let io = |source| SealError::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        let text = super::token::secret_file(path, || {
            let key = Zeroizing::new(ChaCha20Poly1305::generate_key(&mut OsRng).to_vec());
            Zeroizing::new(data_encoding::HEXLOWER.encode(key.as_slice()))
        })
        .map_err(io)?;
        let key = Zeroizing::new(
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(text.trim().as_bytes())
                .map_err(|_| SealError::BadKey(path.to_path_buf()))?,
        );
        if key.len() != 32 {
            return Err(SealError::BadKey(path.to_path_buf()));
        }
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// `secret` sealed for `slot`, as base64 of nonce ‖ ciphertext.
    pub fn seal(&self, slot: &str, secret: &[u8]) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: slot.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 seals any length");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        data_encoding::BASE64.encode(&out)
    }

    /// The secret of a value sealed for `slot`.
    pub fn open(&self, slot: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let bytes = data_encoding::BASE64
            .decode(sealed.as_bytes())
            .map_err(|_| SealError::Open)?;
        if bytes.len() < 12 {
            return Err(SealError::Open);
        }
        let (nonce, body) = bytes.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: slot.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_in_their_slot_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let s = Sealer::from_key_file(&key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = s.seal("alice/f1", b"12345678901234567890");
        assert!(!sealed.contains("12345678901234567890"));
        assert_eq!(
            s.open("alice/f1", &sealed).unwrap().as_slice(),
            b"12345678901234567890"
        );
        assert!(s.open("mallory/f1", &sealed).is_err(), "bound to its slot");
        let again = Sealer::from_key_file(&key).unwrap();
        assert!(
            again.open("alice/f1", &sealed).is_ok(),
            "the key file is reused"
        );
        let other = Sealer::from_key_file(&dir.path().join("other")).unwrap();
        assert!(other.open("alice/f1", &sealed).is_err(), "another key");
        assert_ne!(
            sealed,
            s.seal("alice/f1", b"12345678901234567890"),
            "fresh nonce"
        );
        std::fs::write(&key, "abcd\n").unwrap();
        assert!(matches!(
            Sealer::from_key_file(&key),
            Err(SealError::BadKey(_))
        ));
    }
}
