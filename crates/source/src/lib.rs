//! Input discovery and reading: files, globs, directories (recursive), `-` for stdin, gzip
//! (detected by magic bytes), and `--follow` tailing; and the source contract ([`RecordSource`],
//! [`Feed`]) every source drives the engine through. A source yields raw bytes with positions;
//! it never interprets content.

mod feed;
mod fingerprint;
mod reader;

use std::path::{Path, PathBuf};

pub use feed::{
    FILE_STATE, Feed, FileSource, NamedInput, Positions, RecordSource, Scope, ScopeId,
    SourceFailure, resume,
};
pub use fingerprint::{Fingerprint, fingerprint_of};
pub use reader::{
    BufferPool, Chunk, ChunkKind, Cursor, FINISHED_LINE, FileReader, MessageSpan, PolledSpan,
    ReadItem, Reader, ReaderConfig, Resume,
};

/// Errors found while discovering inputs.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A path given on the command line does not exist and matches no glob.
    #[error("input {0}: no such file, directory or glob match")]
    NotFound(String),
    /// A glob pattern is malformed.
    #[error("input {pattern}: invalid glob: {source}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// The pattern's syntax error.
        source: glob::PatternError,
    },
}

/// Where bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl Origin {
    /// Name used in dead letters, checkpoints and messages.
    pub fn display(&self) -> String {
        match self {
            Origin::File(p) => p.display().to_string(),
            Origin::Stdin => "-".into(),
        }
    }
}

/// What discovery found: inputs in a deterministic order, and entries that could not be read.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Inputs, sorted within each argument.
    pub inputs: Vec<Origin>,
    /// Unreadable directory entries (path, reason) — reported, never silently skipped.
    pub unreadable: Vec<(String, String)>,
}

/// Expand command-line inputs. Directories are walked recursively (dot-files skipped); globs
/// are expanded; `-` is stdin.
pub fn discover(args: &[String]) -> Result<Discovery, SourceError> {
    let mut d = Discovery::default();
    for arg in args {
        if arg == "-" {
            d.inputs.push(Origin::Stdin);
            continue;
        }
        let path = Path::new(arg);
        if path.is_dir() {
            walk_dir(path, &mut d);
        } else if path.exists() {
            d.inputs.push(Origin::File(path.to_path_buf()));
        } else if arg.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(arg)
                .map_err(|source| SourceError::Glob {
                    pattern: arg.clone(),
                    source,
                })?
                .filter_map(|r| match r {
                    Ok(p) => Some(p),
                    Err(e) => {
                        d.unreadable
                            .push((e.path().display().to_string(), e.error().to_string()));
                        None
                    }
                })
                .collect();
            if matched.is_empty() {
                return Err(SourceError::NotFound(arg.clone()));
            }
            matched.sort();
            for p in matched {
                if p.is_dir() {
                    walk_dir(&p, &mut d);
                } else {
                    d.inputs.push(Origin::File(p));
                }
            }
        } else {
            return Err(SourceError::NotFound(arg.clone()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    d.inputs.retain(|o| seen.insert(o.clone()));
    Ok(d)
}

fn walk_dir(dir: &Path, d: &mut Discovery) {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walker
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name()))
    {
        match entry {
            Ok(e) if e.file_type().is_file() => d.inputs.push(Origin::File(e.into_path())),
            Ok(_) => {}
            Err(e) => d.unreadable.push((
                e.path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| dir.display().to_string()),
                e.io_error()
                    .map(std::string::ToString::to_string)
                    .unwrap_or_else(|| e.to_string()),
            )),
        }
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with('.') || n.ends_with(".labels.jsonl"))
}
