//! Random ids and bearer tokens (from the OS CSPRNG) and the hashes kept in their place.

use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use sha2::{Digest, Sha256};

/// `n` random bytes.
pub fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    OsRng.fill_bytes(&mut b);
    b
}

/// A random opaque id or token of `bytes` bytes (base64url, no padding).
pub fn token(bytes: usize) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&random(bytes))
}

/// Lower-case hex SHA-256 of `text`: what is stored instead of a token or a recovery code.
pub fn sha256_hex(text: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(text.as_bytes()))
}

/// The trimmed content of the secret file `path`, created first (mode 0600, content from
/// `generate`) when it does not exist.
pub fn secret_file(
    path: &std::path::Path,
    generate: impl FnOnce() -> zeroize::Zeroizing<String>,
) -> std::io::Result<zeroize::Zeroizing<String>> {
    use std::io::Write;
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(path)?;
        writeln!(f, "{}", generate().as_str())?;
        f.sync_all()?;
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
    Ok(zeroize::Zeroizing::new(text.trim().to_string()))
}

/// A unique event id (not a credential): a random per-process prefix and a counter, so ids
/// never repeat across runs and cost no system call.
pub fn event_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| token(12));
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}
