//! The output directory's state: an exclusive lock, the checkpoint (per input fingerprint:
//! committed offset and line), and the intent log of a segment being committed, which is rolled
//! forward on the next start. File ingest keeps one state in `_state/`; Kafka ingest keeps one
//! per topic partition (`_state/kafka/TOPIC/PARTITION/`), so instances of a consumer group can
//! share an output directory, each owning the partitions it is assigned. On object storage the
//! lock is a lease object and files are made visible by server-side copies from the state's
//! staging prefix; the intent log works the same way. A segment's event and ticket files join
//! their Delta tables (`table`) in one commit per table, under the scope's app transaction with
//! the checkpoint's segment count as version, after they are in place and before the
//! checkpoint: readers of the tables see a segment whole or not at all, and the roll-forward
//! commits it exactly once.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mfascope_core::sync::lock;
use serde::{Deserialize, Serialize};

use super::lease::Lease;
use super::table::{TableAdd, Tables, has_log, shared_tables, tables};
use super::{Location, SinkError, io_err};

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
    /// Event files (relative to the root, in commit order) committed since the observers'
    /// state was last saved with a segment: a restart restores that state, then replays these
    /// to reach this checkpoint exactly. Empty when the state was saved with the last segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replay: Vec<String>,
    /// Observers whose saved state (`observers/NAME.state`) goes with this checkpoint (with
    /// `replay`); a state file of another name is stale: a later run committed without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saved: Vec<String>,
}

impl Checkpoint {
    /// The committed position of every input: `(offset, next line)` by fingerprint, as a
    /// source resumes from them.
    pub fn positions(&self) -> mfascope_source::Positions {
        self.inputs
            .iter()
            .map(|(fp, s)| (fp.clone(), (s.offset, s.line)))
            .collect()
    }
}

/// Intent written before a segment's files are made visible.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// (staged, final) paths relative to the output root.
    pub renames: Vec<(PathBuf, PathBuf)>,
    /// The data files to add to the tables once in place.
    #[serde(default)]
    pub adds: Vec<TableAdd>,
    pub checkpoint: Checkpoint,
}

/// What keeps other processes out of a state while it is open.
enum Guard {
    /// `flock` on `STATE/lock` (local directories).
    File(#[allow(dead_code)] File),
    /// A renewed lease object `STATE/lock` (object storage), and the local directory segments
    /// are staged in before upload.
    Lease(Lease, crate::scratch::Scratch),
}

/// An output location opened for writing (holds the lock until dropped).
pub struct OutDir {
    /// Root (`--out`).
    pub root: Location,
    /// State prefix relative to the root (`_state` or a partition's), `/`-separated.
    scope: String,
    guard: Guard,
    /// Current checkpoint.
    pub checkpoint: Checkpoint,
    /// The store's Delta tables, shared with the process's other writers of `root`.
    tables: Arc<Mutex<Tables>>,
}

impl OutDir {
    /// Create/open `root` with the state (lock, checkpoint, intent log, staging) under `scope`
    /// (relative to `root`), take the lock, finish an interrupted commit and clear stray temp
    /// files.
    pub fn open_scoped(root: &Location, scope: &str) -> Result<OutDir, SinkError> {
        let dir = OutDir::open_unchecked(root, scope)?;
        for (name, _) in tables() {
            if !has_log(root, name)? && root.has_file_under(name, ".parquet")? {
                return Err(SinkError::Unmigrated(root.to_string()));
            }
        }
        Ok(dir)
    }

    /// [`OutDir::open_scoped`] without refusing a store an older mfascope wrote (migration
    /// itself, and maintenance).
    pub(crate) fn open_unchecked(root: &Location, scope: &str) -> Result<OutDir, SinkError> {
        let scope = scope.trim_matches('/').to_string();
        let guard = match root {
            Location::Local(dir) => {
                let state = dir.join(&scope);
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
                    Err(fs::TryLockError::WouldBlock) => {
                        return Err(SinkError::Locked(state.display().to_string()));
                    }
                    Err(fs::TryLockError::Error(e)) => {
                        return Err(io_err("locking", &lock_path)(e));
                    }
                }
                Guard::File(lock)
            }
            Location::Remote(remote) => {
                let lease = Lease::acquire(remote, &format!("{scope}/lock"))?;
                let staging = crate::scratch::Scratch::new("mfascope-staging-").map_err(io_err(
                    "creating a staging directory in",
                    std::env::temp_dir(),
                ))?;
                Guard::Lease(lease, staging)
            }
        };
        let mut dir = OutDir {
            root: root.clone(),
            checkpoint: read_checkpoint(root, &scope)?,
            scope,
            guard,
            tables: shared_tables(root),
        };
        // The scope may have been another writer's until now: its commits are not concurrent
        // with ours.
        lock(&dir.tables).refresh()?;
        dir.recover()?;
        Ok(dir)
    }

    /// The state prefix relative to the root (`_state` or a partition's).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    fn rel(&self, name: &str) -> String {
        format!("{}/{name}", self.scope)
    }

    /// Roll an interrupted commit forward, then delete staged files no intent refers to.
    fn recover(&mut self) -> Result<(), SinkError> {
        let pending_rel = self.rel("pending.json");
        if let Some(bytes) = self.root.read(&pending_rel)? {
            let pending: Pending =
                serde_json::from_slice(&bytes).map_err(|e| SinkError::CorruptState {
                    path: self.root.describe(&pending_rel),
                    reason: e.to_string(),
                })?;
            tracing::info!(
                files = pending.renames.len(),
                "finishing an interrupted commit"
            );
            match &self.root {
                Location::Local(root) => {
                    for (tmp, dst) in &pending.renames {
                        let (tmp, dst) = (root.join(tmp), root.join(dst));
                        if tmp.exists() {
                            fs::rename(&tmp, &dst).map_err(io_err("renaming", &tmp))?;
                            sync_parent(&dst)?;
                        }
                    }
                }
                Location::Remote(remote) => {
                    // Staged objects outlive the intent, so every one is still there.
                    for (staged, dst) in &pending.renames {
                        remote.copy(&slash(staged), &slash(dst))?;
                    }
                }
            }
            self.commit_tables(&pending.adds, &pending.checkpoint, true)?;
            self.finish_commit(pending.checkpoint)?;
        }
        self.clear_staging()?;
        if let Location::Remote(remote) = &self.root {
            for key in remote.list(&self.rel("staging"))? {
                remote.delete(&key)?;
            }
        }
        Ok(())
    }

    /// Local directory a segment's files are written to before they are made visible.
    pub(crate) fn staging_dir(&self) -> PathBuf {
        match (&self.guard, &self.root) {
            (Guard::Lease(_, tmp), _) => tmp.path().to_path_buf(),
            (Guard::File(_), Location::Local(root)) => root.join(&self.scope).join("staging"),
            (Guard::File(_), Location::Remote(_)) => unreachable!("remote states hold a lease"),
        }
    }

    /// Delete locally staged files (after a failed or interrupted write).
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

    /// Make the staged `files` (local temp file, final path relative to the root) visible and
    /// move to `checkpoint`, through the intent log: intent → renames (local) or uploads to the
    /// state's staging prefix, intent, server-side copies (object storage) → checkpoint.
    pub(crate) fn publish(
        &mut self,
        files: Vec<(PathBuf, String)>,
        adds: Vec<TableAdd>,
        checkpoint: Checkpoint,
    ) -> Result<(), SinkError> {
        match &self.root {
            Location::Local(root) => {
                let mut renames = Vec::with_capacity(files.len());
                for (tmp, dst) in files {
                    let dst = root.join(dst);
                    if let Some(dir) = dst.parent() {
                        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
                    }
                    renames.push((tmp, dst));
                }
                let relative = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).to_path_buf();
                self.write_pending(&Pending {
                    renames: renames
                        .iter()
                        .map(|(tmp, dst)| (relative(tmp), relative(dst)))
                        .collect(),
                    adds: adds.clone(),
                    checkpoint: checkpoint.clone(),
                })?;
                for (tmp, dst) in &renames {
                    fs::rename(tmp, dst).map_err(io_err("renaming", tmp))?;
                }
                let mut synced = std::collections::HashSet::new();
                for (_, dst) in &renames {
                    if synced.insert(dst.parent().map(Path::to_path_buf)) {
                        sync_parent(dst)?;
                    }
                }
                self.commit_tables(&adds, &checkpoint, false)?;
            }
            Location::Remote(remote) => {
                let remote = remote.clone();
                let mut renames = Vec::with_capacity(files.len());
                for (tmp, dst) in &files {
                    let name = tmp.file_name().unwrap_or_default().to_string_lossy();
                    let staged = self.rel(&format!("staging/{name}"));
                    remote.put_file(tmp, &staged)?;
                    renames.push((staged, dst.clone()));
                }
                if let Guard::Lease(lease, _) = &self.guard {
                    lease.ensure_held()?;
                }
                self.write_pending(&Pending {
                    renames: renames
                        .iter()
                        .map(|(s, d)| (PathBuf::from(s), PathBuf::from(d)))
                        .collect(),
                    adds: adds.clone(),
                    checkpoint: checkpoint.clone(),
                })?;
                for (staged, dst) in &renames {
                    remote.copy(staged, dst)?;
                }
                self.commit_tables(&adds, &checkpoint, false)?;
                self.finish_commit(checkpoint)?;
                for ((tmp, _), (staged, _)) in files.iter().zip(&renames) {
                    remote.delete(staged)?;
                    fs::remove_file(tmp).map_err(io_err("removing", tmp))?;
                }
                return Ok(());
            }
        }
        self.finish_commit(checkpoint)
    }

    /// Add a segment's files (already in place) to their tables as this scope's commit
    /// `checkpoint.segments`; when `recovering` (an interrupted commit), only to tables that do
    /// not hold it yet.
    fn commit_tables(
        &mut self,
        adds: &[TableAdd],
        checkpoint: &Checkpoint,
        recovering: bool,
    ) -> Result<(), SinkError> {
        if adds.is_empty() {
            return Ok(());
        }
        if let Guard::Lease(lease, _) = &self.guard {
            lease.ensure_held()?;
        }
        let version = i64::try_from(checkpoint.segments).unwrap_or(i64::MAX);
        lock(&self.tables).commit(&self.root, adds, (&self.scope, version), recovering)
    }

    /// Record the intent to make files visible and move to a checkpoint.
    fn write_pending(&self, pending: &Pending) -> Result<(), SinkError> {
        let bytes = serde_json::to_vec(pending).expect("serializable");
        self.write_state("pending.json", bytes)
    }

    /// Make `checkpoint` current and drop the intent log.
    fn finish_commit(&mut self, checkpoint: Checkpoint) -> Result<(), SinkError> {
        let bytes = serde_json::to_vec_pretty(&checkpoint).expect("serializable");
        self.write_state("checkpoint.json", bytes)?;
        match &self.root {
            Location::Local(root) => {
                let state = root.join(&self.scope);
                let pending = state.join("pending.json");
                fs::remove_file(&pending).map_err(io_err("removing", &pending))?;
                sync_dir(&state)?;
            }
            Location::Remote(remote) => remote.delete(&self.rel("pending.json"))?,
        }
        self.checkpoint = checkpoint;
        Ok(())
    }

    fn write_state(&self, name: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        match &self.root {
            Location::Local(root) => atomic_write(&root.join(&self.scope).join(name), &bytes),
            Location::Remote(remote) => remote.put_overwrite(&self.rel(name), bytes),
        }
    }
}

/// A path relative to the root as an object key suffix.
fn slash(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// The checkpoint of the state `scope` under `root` (empty when none was committed).
pub fn read_checkpoint(root: &Location, scope: &str) -> Result<Checkpoint, SinkError> {
    let rel = format!("{}/checkpoint.json", scope.trim_matches('/'));
    match root.read(&rel)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| SinkError::CorruptState {
            path: root.describe(&rel),
            reason: e.to_string(),
        }),
        None => Ok(Checkpoint {
            version: 1,
            ..Default::default()
        }),
    }
}

/// Relative path of observer `name`'s saved state under the state `scope`.
pub fn observer_state_rel(scope: &str, name: &str) -> String {
    format!("{}/observers/{name}.state", scope.trim_matches('/'))
}

/// The state observer `name` saved under `scope` with the last snapshot, if any.
pub fn read_observer_state(
    root: &Location,
    scope: &str,
    name: &str,
) -> Result<Option<Vec<u8>>, SinkError> {
    root.read(&observer_state_rel(scope, name))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Remote;
    use crate::table::table_url;
    use mfascope_table::{AsOf, Table};

    fn add(name: &str) -> TableAdd {
        TableAdd {
            table: "events".into(),
            path: format!("dt=2024-05-01/hour=07/{name}.parquet"),
            size: 1,
            rows: 1,
            time: None,
        }
    }

    fn segments(n: u64) -> Checkpoint {
        Checkpoint {
            version: 1,
            segments: n,
            ..Checkpoint::default()
        }
    }

    /// A scope taken over from another process (a Kafka partition after a rebalance) commits
    /// after that process's commits of the same scope, although this process's shared table
    /// handle was read before them (delta-rs took them for a concurrent transaction of the same
    /// app and refused the commit: a member exited mid-rebalance).
    #[test]
    fn a_scope_taken_over_from_another_process_commits_after_its_commits() {
        let dir = tempfile::tempdir().unwrap();
        let root = Location::Local(dir.path().to_path_buf());
        let mut p0 = OutDir::open_scoped(&root, "_state/kafka/t/0").unwrap();
        p0.commit_tables(&[add("p0-1")], &segments(1), false)
            .unwrap();
        // Another member owned partition 1 and committed its first segment.
        let (url, store) = table_url(&root, "events").unwrap();
        Remote::block_on(async {
            let mut other = Table::open(url.clone(), store.clone(), AsOf::Latest)
                .await
                .unwrap()
                .unwrap();
            other
                .append(vec![add("p1-1").data_file()], Some(("_state/kafka/t/1", 1)))
                .await
                .unwrap();
        });
        // This process takes partition 1 over and commits its second segment.
        let mut p1 = OutDir::open_scoped(&root, "_state/kafka/t/1").unwrap();
        p1.commit_tables(&[add("p1-2")], &segments(2), false)
            .unwrap();
        let files = Remote::block_on(async {
            let mut table = Table::open(url, store, AsOf::Latest)
                .await
                .unwrap()
                .unwrap();
            table.files().await.unwrap()
        });
        let mut paths: Vec<String> = files.into_iter().map(|f| f.path).collect();
        paths.sort();
        assert_eq!(
            paths,
            ["p0-1", "p1-1", "p1-2"].map(|n| add(n).path),
            "every segment is in the table once"
        );
    }
}
