//! The journal file with group commit: changes are appended to an in-memory tail in state
//! order (under the state lock), and written by whichever request syncs first — one `write`
//! for every change queued so far — outside the state lock. A request is answered only after
//! its changes are written, so an answered change survives a crash of the process.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use mfascope_core::sync::lock;

/// A position in the journal: synced once everything up to it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

impl Ticket {
    /// Nothing to wait for.
    pub const NONE: Ticket = Ticket(0);
}

#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    /// Ticket of the last change in `bytes`.
    last: u64,
}

struct Written {
    file: File,
    /// Everything up to this ticket is written.
    upto: u64,
}

/// The journal.
pub struct Journal {
    path: PathBuf,
    tail: Mutex<Tail>,
    written: Mutex<Written>,
}

impl Journal {
    /// A journal appending to `file` (at `path`, for errors).
    pub fn new(path: PathBuf, file: File) -> Journal {
        Journal {
            path,
            tail: Mutex::default(),
            written: Mutex::new(Written { file, upto: 0 }),
        }
    }

    /// Queue one serialized change (without its newline); its ticket.
    pub fn append(&self, line: &[u8]) -> Ticket {
        let mut t = lock(&self.tail);
        t.bytes.extend_from_slice(line);
        t.bytes.push(b'\n');
        t.last += 1;
        Ticket(t.last)
    }

    /// Return once everything up to `ticket` is written.
    pub fn sync(&self, ticket: Ticket) -> std::io::Result<()> {
        let mut w = lock(&self.written);
        if w.upto >= ticket.0 {
            return Ok(());
        }
        let (bytes, last) = {
            let mut t = lock(&self.tail);
            (std::mem::take(&mut t.bytes), t.last)
        };
        w.file.write_all(&bytes)?;
        w.upto = last;
        Ok(())
    }

    /// The file, for errors.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sync_writes_every_queued_change_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = Journal::new(path.clone(), File::create(&path).unwrap());
        let a = j.append(b"1");
        let b = j.append(b"2");
        j.sync(b).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n2\n");
        j.sync(a).unwrap();
        let c = j.append(b"3");
        j.sync(c).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n2\n3\n");
    }
}
