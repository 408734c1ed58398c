//! Local scratch directories of writers to object storage (segments staged before upload,
//! findings before they are stored): each holds an `flock` on the directory itself while its process
//! lives, so a start removes the ones a killed process left behind (`kill -9` runs no
//! destructor) instead of letting the temporary directory grow with every crash. It owns the
//! directories' creation and sweeping; it never touches what is inside a live one.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// A scratch directory under the system's temporary directory, removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    /// The directory itself, opened and locked while the process lives.
    _lock: File,
}

impl Scratch {
    /// A new locked directory named `PREFIX…` in `std::env::temp_dir()`, after removing the
    /// `PREFIX…` directories there whose process died.
    pub fn new(prefix: &str) -> io::Result<Scratch> {
        Self::new_in(&std::env::temp_dir(), prefix)
    }

    /// As [`Scratch::new`], in `base`. The directory is created under a hidden name, locked,
    /// then renamed, so a sweeping process never sees it unlocked.
    ///
    /// ```
    /// let base = tempfile::tempdir().unwrap();
    /// let dead = base.path().join("mfascope-doc-dead"); // nobody holds its lock
    /// std::fs::create_dir(&dead).unwrap();
    /// let live = mfascope_sink::scratch::Scratch::new_in(base.path(), "mfascope-doc-").unwrap();
    /// assert!(!dead.exists() && live.path().exists());
    /// ```
    pub fn new_in(base: &Path, prefix: &str) -> io::Result<Scratch> {
        sweep(base, prefix);
        let hidden = tempfile::Builder::new()
            .prefix(&format!(".{prefix}"))
            .tempdir_in(base)?
            .keep();
        let lock = File::open(&hidden)?;
        lock.try_lock().map_err(io::Error::from)?;
        let name = hidden
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let path = base.join(name.trim_start_matches('.'));
        fs::rename(&hidden, &path)?;
        Ok(Scratch { path, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Remove the `prefix…` directories in `base` whose lock nobody holds, holding it while
/// removing (best effort: one that cannot be removed is left for the next start).
fn sweep(base: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let named = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix));
        if !named || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(dir) = File::open(&path) else {
            continue;
        };
        if dir.try_lock().is_err() {
            continue; // a live process's
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed a dead process's scratch directory");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a dead process's scratch directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_scratch_directories_are_removed_and_live_ones_kept() {
        let base = tempfile::tempdir().unwrap();
        let dead = base.path().join("mfascope-staging-dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("part-1.parquet"), "staged").unwrap();
        let live = Scratch::new_in(base.path(), "mfascope-staging-").unwrap();
        let other = base.path().join("someone-else");
        fs::create_dir(&other).unwrap();

        let second = Scratch::new_in(base.path(), "mfascope-staging-").unwrap();
        assert!(!dead.exists(), "the dead process's directory is removed");
        assert!(live.path().exists(), "a live one is kept");
        assert!(other.exists(), "other prefixes are not touched");
        let kept = second.path().to_path_buf();
        drop(second);
        assert!(!kept.exists(), "dropping removes the directory");
    }
}
