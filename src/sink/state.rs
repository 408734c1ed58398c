//! The output directory's state: an exclusive lock, the checkpoint (per input fingerprint:
//! committed offset and line), and the intent log of a segment being committed, which is rolled
//! forward on the next start. File ingest keeps one state in `_state/`; Kafka ingest keeps one
//! per topic partition (`_state/kafka/TOPIC/PARTITION/`), so instances of a consumer group can
//! share an output directory, each owning the partitions it is assigned.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SinkError, io_err};
use crate::source::Fingerprint;

/// Committed position of one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputState {
    /// Last name the input was read under.
    pub path: String,
    /// Bytes committed (the next record starts here).
    pub offset: u64,
    /// Line number of the next record.
    pub line: u64,
}

/// Checkpoint: what has been durably committed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// Segments committed so far.
    pub segments: u64,
    /// Inputs by fingerprint (hex).
    pub inputs: BTreeMap<String, InputState>,
}

impl Checkpoint {
    /// Resume positions for the reader.
    pub fn resume(&self) -> crate::source::Resume {
        self.inputs
            .iter()
            .filter_map(|(fp, s)| {
                Some((
                    Fingerprint(u64::from_str_radix(fp, 16).ok()?),
                    (s.offset, s.line),
                ))
            })
            .collect()
    }
}

/// Intent written before a segment's files are renamed into place.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// (staged, final) paths relative to the output root.
    pub renames: Vec<(PathBuf, PathBuf)>,
    pub checkpoint: Checkpoint,
}

/// An output directory opened for writing (holds the lock until dropped).
pub struct OutDir {
    /// Root (`--out`).
    pub root: PathBuf,
    /// State directory (`_state` or a partition's).
    state: PathBuf,
    _lock: File,
    /// Current checkpoint.
    pub checkpoint: Checkpoint,
}

impl OutDir {
    /// Create/open `root`, take the lock, finish an interrupted commit and clear stray temp files.
    pub fn open(root: &Path) -> Result<OutDir, SinkError> {
        OutDir::open_scoped(root, Path::new("_state"))
    }

    /// As [`OutDir::open`], with the state (lock, checkpoint, intent log, staging) in `state`,
    /// relative to `root`.
    pub fn open_scoped(root: &Path, state: &Path) -> Result<OutDir, SinkError> {
        let state = root.join(state);
        fs::create_dir_all(&state).map_err(io_err("creating", &state))?;
        let lock_path = state.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SinkError::Locked(state)),
            Err(fs::TryLockError::Error(e)) => return Err(io_err("locking", &lock_path)(e)),
        }
        let mut dir = OutDir {
            root: root.to_path_buf(),
            state,
            _lock: lock,
            checkpoint: Checkpoint::default(),
        };
        dir.checkpoint = dir.read_checkpoint()?;
        dir.recover()?;
        Ok(dir)
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.state.join(name)
    }

    fn read_checkpoint(&self) -> Result<Checkpoint, SinkError> {
        let path = self.state_file("checkpoint.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SinkError::CorruptState {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint {
                version: 1,
                ..Default::default()
            }),
            Err(e) => Err(io_err("reading", path)(e)),
        }
    }

    /// Roll an interrupted commit forward, then delete staged files no intent refers to.
    fn recover(&mut self) -> Result<(), SinkError> {
        let pending_path = self.state_file("pending.json");
        if let Ok(bytes) = fs::read(&pending_path) {
            let pending: Pending =
                serde_json::from_slice(&bytes).map_err(|e| SinkError::CorruptState {
                    path: pending_path.clone(),
                    reason: e.to_string(),
                })?;
            tracing::info!(
                files = pending.renames.len(),
                "finishing an interrupted commit"
            );
            for (tmp, dst) in &pending.renames {
                let (tmp, dst) = (self.root.join(tmp), self.root.join(dst));
                if tmp.exists() {
                    fs::rename(&tmp, &dst).map_err(io_err("renaming", &tmp))?;
                    sync_parent(&dst)?;
                }
            }
            self.write_checkpoint(&pending.checkpoint)?;
            fs::remove_file(&pending_path).map_err(io_err("removing", &pending_path))?;
        }
        self.clear_staging()
    }

    /// Where a segment's files are written before they are renamed into place.
    pub(crate) fn staging_dir(&self) -> PathBuf {
        self.state.join("staging")
    }

    /// Delete staged files no intent refers to (after a failed or interrupted write).
    pub(crate) fn clear_staging(&self) -> Result<(), SinkError> {
        let dir = self.staging_dir();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    fs::remove_file(entry.path()).map_err(io_err("removing", entry.path()))?;
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("reading", dir)(e)),
        }
    }

    /// Record the intent to rename `renames` and move to `checkpoint`.
    pub(crate) fn write_pending(&self, pending: &Pending) -> Result<(), SinkError> {
        let bytes = serde_json::to_vec(pending).expect("serializable");
        atomic_write(&self.state_file("pending.json"), &bytes)
    }

    /// Make `checkpoint` current and drop the intent log.
    pub(crate) fn finish_commit(&mut self, checkpoint: Checkpoint) -> Result<(), SinkError> {
        self.write_checkpoint(&checkpoint)?;
        let pending = self.state_file("pending.json");
        fs::remove_file(&pending).map_err(io_err("removing", &pending))?;
        sync_dir(&self.state)?;
        self.checkpoint = checkpoint;
        Ok(())
    }

    fn write_checkpoint(&self, cp: &Checkpoint) -> Result<(), SinkError> {
        let bytes = serde_json::to_vec_pretty(cp).expect("serializable");
        atomic_write(&self.state_file("checkpoint.json"), &bytes)
    }
}

/// Write `bytes` to `path` via a temp file, fsync, rename, fsync the directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let tmp = path.with_file_name(format!(
        ".tmp-{}",
        path.file_name().unwrap().to_string_lossy()
    ));
    let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    f.write_all(bytes).map_err(io_err("writing", &tmp))?;
    f.sync_all().map_err(io_err("syncing", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("renaming", &tmp))?;
    sync_parent(path)
}

/// fsync the directory holding `path` so a rename is durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), SinkError> {
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory", dir))
}
