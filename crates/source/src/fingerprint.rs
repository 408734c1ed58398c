//! Content identity of an input, independent of its path, so a rotated or copied file is
//! recognised: xxh3 of the bytes up to the end of the first line that ends at or after byte 256
//! (capped at 4 KiB). Stable once a file has such a line; tiny files hash all their bytes.

use std::fmt;

/// Bytes the fingerprint needs at most.
pub const HEAD_MAX: usize = 4096;
const MIN_SPAN: usize = 256;

/// 64-bit content fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Fingerprint from the first bytes of a (decompressed) input.
pub fn fingerprint_of(head: &[u8]) -> Fingerprint {
    let head = &head[..head.len().min(HEAD_MAX)];
    let span = if head.len() > MIN_SPAN {
        memchr::memchr(b'\n', &head[MIN_SPAN - 1..]).map_or(head.len(), |i| MIN_SPAN + i)
    } else {
        head.len()
    };
    Fingerprint(xxhash_rust::xxh3::xxh3_64(&head[..span]))
}

/// True when `head` already determines the fingerprint for good: it holds a newline at or after
/// byte 256, or the full 4 KiB. A growing file is only opened in follow mode once it is stable,
/// so its identity does not change between runs.
pub fn is_stable(head: &[u8]) -> bool {
    head.len() >= HEAD_MAX
        || (head.len() >= MIN_SPAN && memchr::memchr(b'\n', &head[MIN_SPAN - 1..]).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_as_a_file_grows_and_independent_of_later_lines() {
        let line = format!("{}\n", "x".repeat(300));
        let a = fingerprint_of(line.as_bytes());
        let b = fingerprint_of(format!("{line}second line\n").as_bytes());
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint_of(format!("{}\n", "y".repeat(300)).as_bytes())
        );
    }
}
