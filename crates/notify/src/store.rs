//! Where outboxes keep their files: a local directory (temporary file, fsync, rename) or a
//! prefix in the object store of `--out` (a put there is atomic: a crash leaves the old or the
//! new object), so a run on a machine whose disk does not survive keeps its outboxes with its
//! table. Names and bytes only; what the files mean is the outbox's.

use std::io::Write;
use std::path::{Path, PathBuf};

use mfascope_sink::Location;

use crate::outbox::OutboxError;

/// A folder of outbox files.
#[derive(Clone, Debug)]
pub struct OutboxRoot {
    at: Location,
    /// `/`-separated path under `at` (object stores; empty for local directories, whose path
    /// is in `at`).
    rel: String,
}

impl From<&Path> for OutboxRoot {
    fn from(p: &Path) -> Self {
        OutboxRoot {
            at: Location::Local(p.to_path_buf()),
            rel: String::new(),
        }
    }
}

impl From<PathBuf> for OutboxRoot {
    fn from(p: PathBuf) -> Self {
        OutboxRoot::from(p.as_path())
    }
}

impl OutboxRoot {
    /// The outboxes of a run writing to `out` (`OUT/_state/notify`, local or on the object
    /// store).
    pub fn of(out: &Location) -> OutboxRoot {
        match out {
            Location::Local(p) => OutboxRoot::from(p.join(crate::OUTBOX_DIR)),
            Location::Remote(_) => OutboxRoot {
                at: out.clone(),
                rel: crate::OUTBOX_DIR.to_string(),
            },
        }
    }

    /// The folder `name` inside this one.
    pub fn join(&self, name: &str) -> OutboxRoot {
        match &self.at {
            Location::Local(p) => OutboxRoot::from(p.join(name)),
            Location::Remote(_) => OutboxRoot {
                at: self.at.clone(),
                rel: self.rel_of(name),
            },
        }
    }

    fn rel_of(&self, name: &str) -> String {
        if self.rel.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.rel)
        }
    }

    /// Where `name` is, for messages.
    pub fn describe(&self, name: &str) -> String {
        match &self.at {
            Location::Local(p) => p.join(name).display().to_string(),
            Location::Remote(r) => r.describe(&self.rel_of(name)),
        }
    }

    fn error(&self, name: &str, e: impl std::fmt::Display) -> OutboxError {
        OutboxError::new(self.describe(name), std::io::Error::other(e.to_string()))
    }

    /// Make the folders `subs` (local directories; object stores have none to make).
    pub fn create(&self, subs: &[&str]) -> Result<(), OutboxError> {
        if let Location::Local(p) = &self.at {
            for s in subs {
                let d = p.join(s);
                std::fs::create_dir_all(&d).map_err(|e| OutboxError::new(d.display(), e))?;
            }
        }
        Ok(())
    }

    /// Write `name` durably and atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), OutboxError> {
        match &self.at {
            Location::Local(p) => write_atomic(&p.join(name), bytes),
            Location::Remote(r) => r
                .put_overwrite(&self.rel_of(name), bytes.to_vec())
                .map_err(|e| self.error(name, e)),
        }
    }

    /// The bytes of `name`; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        match &self.at {
            Location::Local(p) => match std::fs::read(p.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(OutboxError::new(self.describe(name), e)),
            },
            Location::Remote(r) => r
                .get(&self.rel_of(name))
                .map(|o| o.map(|(b, _)| b))
                .map_err(|e| self.error(name, e)),
        }
    }

    /// Remove `name`; a missing one is not an error.
    pub fn remove(&self, name: &str) -> Result<(), OutboxError> {
        match &self.at {
            Location::Local(p) => match std::fs::remove_file(p.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(OutboxError::new(self.describe(name), e))
                }
                _ => Ok(()),
            },
            Location::Remote(r) => r
                .delete(&self.rel_of(name))
                .map_err(|e| self.error(name, e)),
        }
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> Result<bool, OutboxError> {
        match &self.at {
            Location::Local(p) => Ok(p.join(name).exists()),
            Location::Remote(r) => r
                .exists(&self.rel_of(name))
                .map_err(|e| self.error(name, e)),
        }
    }

    /// Names of the files of folder `sub` ending in `suffix`, sorted.
    pub fn list(&self, sub: &str, suffix: &str) -> Result<Vec<String>, OutboxError> {
        let mut names: Vec<String> = self
            .entries(sub)?
            .into_iter()
            .filter(|n| n.ends_with(suffix) && !n.starts_with('.') && !n.contains('/'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Names of the folders directly inside this one that hold `file`, sorted.
    pub fn folders_with(&self, file: &str) -> Result<Vec<String>, OutboxError> {
        let mut out: Vec<String> = match &self.at {
            Location::Local(p) => match std::fs::read_dir(p) {
                Ok(entries) => entries
                    .flatten()
                    .filter(|e| e.path().join(file).exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(OutboxError::new(p.display(), e)),
            },
            Location::Remote(_) => self
                .entries("")?
                .into_iter()
                .filter_map(|n| Some(n.strip_suffix(&format!("/{file}"))?.to_string()))
                .filter(|n| !n.contains('/'))
                .collect(),
        };
        out.sort();
        Ok(out)
    }

    /// Paths under `sub` (local: file names in the directory; object store: every key under
    /// it, relative to it).
    fn entries(&self, sub: &str) -> Result<Vec<String>, OutboxError> {
        match &self.at {
            Location::Local(p) => {
                let dir = if sub.is_empty() {
                    p.clone()
                } else {
                    p.join(sub)
                };
                Ok(std::fs::read_dir(&dir)
                    .map_err(|e| OutboxError::new(dir.display(), e))?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect())
            }
            Location::Remote(r) => {
                let rel = if sub.is_empty() {
                    self.rel.clone()
                } else {
                    self.rel_of(sub)
                };
                let skip = if rel.is_empty() { 0 } else { rel.len() + 1 };
                Ok(r.list(&rel)
                    .map_err(|e| self.error(sub, e))?
                    .into_iter()
                    .filter(|k| k.len() > skip)
                    .map(|k| k[skip..].to_string())
                    .collect())
            }
        }
    }
}

/// Write `bytes` to `path` durably: temporary file, fsync, rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutboxError> {
    let dir = path.parent().expect("outbox files live in a directory");
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |e| OutboxError::new(p, e)
    };
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
