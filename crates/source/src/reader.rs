//! Turns inputs into line-aligned chunks with positions (byte offset of the first byte and line
//! number of the first line), resuming at checkpointed offsets, and tails growing files in
//! `--follow` mode (rotation-safe: the old handle is drained before the new file is opened, and
//! identity is the content fingerprint, not the path).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Fingerprint, Origin, discover, fingerprint::HEAD_MAX, fingerprint_of};

/// Reader tuning.
#[derive(Clone, Debug)]
pub struct ReaderConfig {
    /// Target chunk size in bytes (chunks end at a line boundary).
    pub chunk_bytes: usize,
    /// Longest accepted line; longer ones become a dead letter and are skipped.
    pub max_record: usize,
    /// Largest multi-line JSON document (pretty-printed array or envelope) read whole.
    pub max_document: usize,
    /// Keep tailing files and watching directories for new ones.
    pub follow: bool,
    /// Poll interval in follow mode.
    pub poll: Duration,
    /// Chunk buffers handed back by consumers, reused to avoid page-faulting fresh memory.
    pub pool: BufferPool,
}

/// A bounded pool of byte buffers: consumers `put` chunk buffers back, the reader `take`s them.
#[derive(Clone, Debug)]
pub struct BufferPool {
    tx: crossbeam_channel::Sender<Vec<u8>>,
    rx: crossbeam_channel::Receiver<Vec<u8>>,
}

impl Default for BufferPool {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(16);
        BufferPool { tx, rx }
    }
}

impl BufferPool {
    /// An empty buffer with at least `capacity` bytes reserved.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let mut buf = self.rx.try_recv().unwrap_or_default();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    /// Return a buffer for reuse (dropped when the pool is full).
    pub fn put(&self, buf: Vec<u8>) {
        let _ = self.tx.try_send(buf);
    }
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            chunk_bytes: 1 << 20,
            max_record: 64 << 20,
            max_document: 1 << 30,
            follow: false,
            poll: Duration::from_millis(200),
            pool: BufferPool::default(),
        }
    }
}

/// How a chunk's bytes are split into records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// One record per line (NDJSON, one-line arrays/envelopes, text log lines).
    Lines,
    /// One or more (pretty-printed) top-level JSON values.
    Document,
    /// A CSV table (a `.csv` or `.csv.gz` input: header then rows), read whole like a document
    /// because every row needs the header.
    Csv,
    /// Messages one after the other (Kafka): each holds one record or several on lines of
    /// their own, and is positioned by its message offset rather than by bytes.
    Messages(Vec<MessageSpan>),
    /// Records polled from a vendor log API, one JSON value each, positioned by their place
    /// in the source's order ([`Cursor`]) rather than by bytes: the position committed after
    /// the chunk is its last span's cursor, as `(time_ms, key)`.
    Polled(Vec<PolledSpan>),
}

/// A record's place in a polled stream: its time, then a hash of its vendor id, so records of
/// the same millisecond have one order on every poll. A stream's committed cursor is the
/// greatest delivered; a restart skips every record at or below it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Milliseconds since the Unix epoch (the vendor's record time).
    pub time_ms: u64,
    /// 64-bit hash of the vendor's record id.
    pub key: u64,
}

/// Where a polled record ends in its chunk's bytes, and the stream's cursor after it (never
/// below the previous span's: a late record takes the cursor already reached).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolledSpan {
    /// End of the record's bytes in the chunk (its start is the previous span's end).
    pub end: usize,
    /// The stream's position once the record is committed.
    pub cursor: Cursor,
}

/// Where a message ends in its chunk's bytes, and its offset in its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageSpan {
    /// End of the message's bytes in the chunk (its start is the previous span's end).
    pub end: usize,
    /// The message's offset.
    pub offset: u64,
}

/// Line-aligned bytes of one input.
#[derive(Debug)]
pub struct Chunk {
    /// Input index (see [`ReadItem::Opened`]).
    pub input: u32,
    /// Input name for dead letters.
    pub path: Arc<str>,
    /// Byte offset of `data[0]` in the (decompressed) input.
    pub start: u64,
    /// 1-based line number of the first line.
    pub first_line: u64,
    /// Newlines in `data`.
    pub lines: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// How to split it.
    pub kind: ChunkKind,
}

/// What the reader emits, in order.
#[derive(Debug)]
pub enum ReadItem {
    /// A new input; `resumed_at` bytes were already ingested in an earlier run.
    Opened {
        /// Index used by later items.
        input: u32,
        /// The input's path as given (`-` for stdin).
        path: Arc<str>,
        /// Content identity.
        fingerprint: Fingerprint,
        /// Offset reading starts at.
        resumed_at: u64,
        /// Line number reading starts at.
        resumed_line: u64,
    },
    /// Bytes to parse.
    Chunk(Chunk),
    /// Bytes that could not be read as records (oversized line, truncated gzip, read error).
    Error {
        /// Input index.
        input: u32,
        /// Input name.
        path: Arc<str>,
        /// Offset of the problem.
        offset: u64,
        /// Line of the problem.
        line: u64,
        /// Bytes it covers (consumed).
        len: u64,
        /// Precise reason.
        reason: String,
    },
    /// An input that could not be opened at all.
    Unreadable {
        /// The input's path as given (`-` for stdin).
        path: String,
        /// What is wrong, in words that say what to fix.
        reason: String,
    },
    /// Follow mode found no new data this poll (lets consumers flush on latency).
    Idle,
    /// Commit what the scope holds now, without waiting for `--max-latency`: the source has
    /// caught up and will stop (a Kafka partition at its end with `--exit-at-end`).
    Flush,
    /// The input was read to its end and is never read again: its position is recorded as
    /// finished ([`FINISHED_LINE`]) once everything sent before is committed.
    Finished {
        /// Input index.
        input: u32,
        /// Its final (decompressed) offset.
        offset: u64,
    },
}

/// The line number a finished input's position records: the source skips it without reading.
pub const FINISHED_LINE: u64 = u64::MAX;

/// How long a short file must stay unchanged before follow mode takes it as complete.
const SETTLE: Duration = Duration::from_secs(2);

/// Checkpointed position of an input, by fingerprint: (offset, next line number).
pub type Resume = HashMap<Fingerprint, (u64, u64)>;

/// Reads one input into chunks.
pub struct FileReader {
    input: u32,
    path: Arc<str>,
    reader: Box<dyn BufRead + Send>,
    pending: Vec<u8>,
    offset: u64,
    line: u64,
    kind: ChunkKind,
    eof: bool,
    skipping_long_line: bool,
    identity: Option<(u64, u64)>,
    gzip: bool,
    fingerprint: Fingerprint,
    document_done: bool,
    /// A read failed after `.0` bytes: reported once what was read before it is out.
    failed: Option<(u64, String)>,
    /// The stream failed: nothing more is read from it.
    broken: bool,
}

impl FileReader {
    /// Open `origin`, fingerprint it and position it at its checkpoint. With `wait_for_identity`
    /// (follow mode), a file too short to fingerprint for good yields `Ok(None)`: try again later.
    pub fn open(
        origin: &Origin,
        input: u32,
        resume: &Resume,
        wait_for_identity: bool,
    ) -> io::Result<Option<(FileReader, ReadItem)>> {
        let (raw, identity): (Box<dyn Read + Send>, Option<(u64, u64)>) = match origin {
            Origin::File(p) => {
                let f = File::open(p)?;
                let meta = f.metadata()?;
                if meta.is_dir() {
                    return Err(io::Error::other("is a directory"));
                }
                (Box::new(f), Some((meta.dev(), meta.ino())))
            }
            Origin::Stdin => (Box::new(io::stdin()), None),
        };
        let opened = Self::start(
            raw,
            origin.display().into(),
            is_csv(origin),
            Identity::Content { wait_for_identity },
            input,
            resume,
        )?;
        Ok(opened.map(|(mut reader, item)| {
            reader.identity = identity;
            (reader, item)
        }))
    }

    /// Read a stream that is not a local file (an object downloaded from a bucket) under the
    /// given identity, positioned at its checkpoint; `name` is its name in dead letters.
    pub fn from_read(
        raw: Box<dyn Read + Send>,
        name: Arc<str>,
        fingerprint: Fingerprint,
        input: u32,
        resume: &Resume,
    ) -> io::Result<(FileReader, ReadItem)> {
        let csv = is_csv_name(&name);
        Ok(
            Self::start(raw, name, csv, Identity::Given(fingerprint), input, resume)?
                .expect("a given identity never waits"),
        )
    }

    /// The decompressed offset the next item starts at.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn start(
        raw: Box<dyn Read + Send>,
        path: Arc<str>,
        csv: bool,
        id: Identity,
        input: u32,
        resume: &Resume,
    ) -> io::Result<Option<(FileReader, ReadItem)>> {
        let mut buffered = BufReader::with_capacity(256 << 10, raw);
        let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                256 << 10,
                flate2::bufread::MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        let mut head = Vec::with_capacity(HEAD_MAX);
        (&mut reader).take(HEAD_MAX as u64).read_to_end(&mut head)?;
        let fingerprint = match id {
            Identity::Content { wait_for_identity } => {
                if wait_for_identity && !super::fingerprint::is_stable(&head) {
                    return Ok(None);
                }
                fingerprint_of(&head)
            }
            Identity::Given(fp) => fp,
        };
        let kind = if csv {
            ChunkKind::Csv
        } else {
            detect_kind(&head)
        };
        let (mut offset, mut line) = resume.get(&fingerprint).copied().unwrap_or((0, 1));
        // Documents are committed whole; a recorded offset means "done".
        let document_done = kind.is_whole() && offset > 0;
        let pending = if document_done {
            Vec::new()
        } else if offset as usize <= head.len() {
            head.split_off(offset as usize)
        } else {
            let to_skip = offset - head.len() as u64;
            let skipped = io::copy(&mut (&mut reader).take(to_skip), &mut io::sink())?;
            if skipped < to_skip {
                // Smaller than what was ingested: nothing new.
                offset = head.len() as u64 + skipped;
                line = line.max(1);
            }
            Vec::new()
        };
        let opened = ReadItem::Opened {
            input,
            path: path.clone(),
            fingerprint,
            resumed_at: offset,
            resumed_line: line,
        };
        Ok(Some((
            FileReader {
                input,
                path,
                reader,
                pending,
                offset,
                line,
                kind,
                eof: false,
                skipping_long_line: false,
                identity: None,
                gzip,
                fingerprint,
                document_done,
                failed: None,
                broken: false,
            },
            opened,
        )))
    }

    /// Next item: a chunk, an error for unreadable bytes, or `None` at the current end.
    /// At end of input, a final line without newline is emitted only when `finalize` is set
    /// (not in follow mode, where the writer may still be appending to it).
    pub fn next_item(&mut self, cfg: &ReaderConfig, finalize: bool) -> Option<ReadItem> {
        loop {
            if self.kind.is_whole() {
                match self.read_document(cfg) {
                    Ok(item) => return item,
                    // What was read of the document goes on as lines, then the error.
                    Err(e) => self.fail(e),
                }
            }
            if let Some(item) = self.take_complete_lines(cfg) {
                return Some(item);
            }
            if self.eof {
                if finalize && !self.pending.is_empty() {
                    self.eof = !self.broken;
                    if self.skipping_long_line {
                        return Some(self.drop_pending_as_error(cfg));
                    }
                    let data = std::mem::take(&mut self.pending);
                    return Some(self.chunk(data));
                }
                // The error comes after every record read before it, in input order.
                if let Some((at, reason)) = self.failed.take() {
                    return Some(self.read_error(at, reason));
                }
                self.eof = self.broken;
                return None;
            }
            match self.fill(cfg.chunk_bytes) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => self.fail(e),
            }
        }
    }

    fn take_complete_lines(&mut self, cfg: &ReaderConfig) -> Option<ReadItem> {
        if self.skipping_long_line {
            match memchr::memchr(b'\n', &self.pending) {
                Some(i) => {
                    let dropped = self.pending.drain(..=i).count() as u64;
                    self.skipping_long_line = false;
                    self.offset += dropped;
                    self.line += 1;
                }
                None => {
                    self.offset += self.pending.len() as u64;
                    self.pending.clear();
                    return None;
                }
            }
        }
        let full = self.pending.len() >= cfg.chunk_bytes;
        if !full && !self.eof {
            return None;
        }
        match memchr::memrchr(b'\n', &self.pending) {
            Some(last) => {
                let mut rest = cfg.pool.take(cfg.chunk_bytes + (64 << 10));
                rest.extend_from_slice(&self.pending[last + 1..]);
                self.pending.truncate(last + 1);
                let data = std::mem::replace(&mut self.pending, rest);
                Some(self.chunk(data))
            }
            None if self.pending.len() >= cfg.max_record => {
                let item = ReadItem::Error {
                    input: self.input,
                    path: self.path.clone(),
                    offset: self.offset,
                    line: self.line,
                    len: 0,
                    reason: format!(
                        "record longer than {} MiB; skipped to the next line",
                        cfg.max_record >> 20
                    ),
                };
                self.skipping_long_line = true;
                Some(item)
            }
            None => None,
        }
    }

    fn drop_pending_as_error(&mut self, cfg: &ReaderConfig) -> ReadItem {
        let len = self.pending.len() as u64;
        self.pending.clear();
        self.skipping_long_line = false;
        self.offset += len;
        ReadItem::Error {
            input: self.input,
            path: self.path.clone(),
            offset: self.offset - len,
            line: self.line,
            len,
            reason: format!("tail of a record longer than {} MiB", cfg.max_record >> 20),
        }
    }

    fn chunk(&mut self, data: Vec<u8>) -> ReadItem {
        let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
        let chunk = Chunk {
            input: self.input,
            path: self.path.clone(),
            start: self.offset,
            first_line: self.line,
            lines,
            kind: self.kind.clone(),
            data,
        };
        self.offset += chunk.data.len() as u64;
        self.line += lines;
        ReadItem::Chunk(chunk)
    }

    fn read_document(&mut self, cfg: &ReaderConfig) -> io::Result<Option<ReadItem>> {
        if self.document_done {
            return Ok(None);
        }
        self.document_done = true;
        let limit = cfg.max_document as u64 + 1;
        (&mut self.reader)
            .take(limit)
            .read_to_end(&mut self.pending)?;
        if self.pending.len() as u64 >= limit {
            let len = self.pending.len() as u64;
            self.pending.clear();
            self.offset += len;
            return Ok(Some(ReadItem::Error {
                input: self.input,
                path: self.path.clone(),
                offset: 0,
                line: 1,
                len,
                reason: if self.kind == ChunkKind::Csv {
                    format!(
                        "CSV file larger than {} MiB; split it into smaller files (each with the header)",
                        cfg.max_document >> 20
                    )
                } else {
                    format!(
                        "multi-line JSON document larger than {} MiB; convert it to NDJSON (jq -c '.[]')",
                        cfg.max_document >> 20
                    )
                },
            }));
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let data = std::mem::take(&mut self.pending);
        Ok(Some(self.chunk(data)))
    }

    fn fill(&mut self, want: usize) -> io::Result<usize> {
        let target = want.max(64 << 10);
        self.pending.reserve(target);
        // Reads straight into the spare capacity (no intermediate copy).
        loop {
            match (&mut self.reader)
                .take(target as u64)
                .read_to_end(&mut self.pending)
            {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The stream failed: stop reading it; what was decoded before the error is still
    /// processed as records, and the error reported after them.
    fn fail(&mut self, e: io::Error) {
        let at = self.offset + self.pending.len() as u64;
        let what = if self.gzip { "gzip stream" } else { "read" };
        self.failed = Some((at, format!("{what} failed after byte {at}: {e}")));
        self.eof = true;
        self.broken = true;
        self.kind = ChunkKind::Lines;
    }

    fn read_error(&mut self, at: u64, reason: String) -> ReadItem {
        ReadItem::Error {
            input: self.input,
            path: self.path.clone(),
            offset: at,
            line: self.line,
            len: 0,
            reason,
        }
    }

    /// True when the input is a plain file that can be tailed.
    fn followable(&self) -> bool {
        self.identity.is_some() && !self.gzip && self.kind == ChunkKind::Lines
    }
}

/// A CSV table by its name (`.csv`, `.csv.gz`; standard input is never one).
fn is_csv(origin: &Origin) -> bool {
    match origin {
        Origin::File(p) => is_csv_name(&p.to_string_lossy()),
        Origin::Stdin => false,
    }
}

fn is_csv_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// How an input is identified in checkpoints.
enum Identity {
    /// By its first bytes ([`fingerprint_of`]); with `wait_for_identity`, not before they are
    /// settled.
    Content { wait_for_identity: bool },
    /// By its source (an object's key and version).
    Given(Fingerprint),
}

impl ChunkKind {
    /// True for inputs read and committed whole (documents and CSV tables).
    pub fn is_whole(&self) -> bool {
        matches!(self, ChunkKind::Document | ChunkKind::Csv)
    }
}

/// Pretty-printed JSON (first line opens but does not close a value) is read as a document.
fn detect_kind(head: &[u8]) -> ChunkKind {
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let rest = &head[start..];
    if !matches!(rest.first(), Some(b'[' | b'{')) {
        return ChunkKind::Lines;
    }
    match memchr::memchr(b'\n', rest) {
        Some(nl) => {
            // A pretty-printed value's first line opens it: `[`, `{`, `{"Records": [`, `[{`, `"k":`.
            let first = rest[..nl].trim_ascii_end();
            if matches!(first.last(), Some(b'[' | b'{' | b',' | b':')) {
                ChunkKind::Document
            } else {
                ChunkKind::Lines
            }
        }
        None if head.len() < HEAD_MAX => {
            // Whole input on one line (or a single value without newline).
            ChunkKind::Lines
        }
        None => ChunkKind::Lines,
    }
}

/// Reads every input in order, then (in follow mode) keeps tailing until `stop` is set.
pub struct Reader {
    args: Vec<String>,
    cfg: ReaderConfig,
    resume: Resume,
}

struct Followed {
    reader: FileReader,
    path: Option<PathBuf>,
}

impl Reader {
    /// A reader over command-line `args` (paths, globs, directories, `-`).
    pub fn new(args: Vec<String>, cfg: ReaderConfig, resume: Resume) -> Self {
        Reader { args, cfg, resume }
    }

    /// Emit items to `send` until inputs are exhausted (or `stop`, in follow mode). `send`
    /// returns false when the consumer has gone away.
    pub fn run(&mut self, stop: &AtomicBool, send: &mut dyn FnMut(ReadItem) -> bool) {
        let mut next_input = 0u32;
        let mut followed: Vec<Followed> = Vec::new();
        let mut seen: HashMap<Fingerprint, usize> = HashMap::new();
        let mut known_paths: HashMap<PathBuf, (u64, u64)> = HashMap::new();
        loop {
            let discovery = match discover(&self.args) {
                Ok(d) => d,
                Err(e) if self.cfg.follow && next_input > 0 => {
                    tracing::debug!("re-discovery: {e}");
                    Default::default()
                }
                Err(e) => {
                    send(ReadItem::Unreadable {
                        path: self.args.join(" "),
                        reason: e.to_string(),
                    });
                    return;
                }
            };
            if next_input == 0 {
                for (path, reason) in &discovery.unreadable {
                    if !send(ReadItem::Unreadable {
                        path: path.clone(),
                        reason: reason.clone(),
                    }) {
                        return;
                    }
                }
            }
            // Drain what we already follow before opening newcomers (rotation order).
            let mut progressed = self.drain_followed(&mut followed, stop, send);
            for origin in discovery.inputs {
                let identity = match &origin {
                    Origin::File(p) => std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino())),
                    Origin::Stdin => None,
                };
                if let (Origin::File(p), Some(id)) = (&origin, identity) {
                    if known_paths.get(p) == Some(&id) {
                        continue;
                    }
                } else if next_input > 0 {
                    continue; // stdin is read once
                }
                // A short, still-growing file is opened once its identity is settled; one left
                // alone for a while is taken as it is.
                let wait = self.cfg.follow
                    && match &origin {
                        Origin::File(p) => std::fs::metadata(p)
                            .and_then(|m| m.modified())
                            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < SETTLE)),
                        Origin::Stdin => false,
                    };
                let (mut reader, opened) =
                    match FileReader::open(&origin, next_input, &self.resume, wait) {
                        Ok(Some(r)) => r,
                        // Too short to identify yet: look again next poll.
                        Ok(None) => continue,
                        Err(e) => {
                            if !self.cfg.follow || next_input == 0 {
                                send(ReadItem::Unreadable {
                                    path: origin.display(),
                                    reason: e.to_string(),
                                });
                            }
                            continue;
                        }
                    };
                if let Origin::File(p) = &origin {
                    known_paths.insert(p.clone(), identity.unwrap_or_default());
                }
                let ReadItem::Opened { fingerprint, .. } = &opened else {
                    unreachable!()
                };
                if let Some(&i) = seen.get(fingerprint) {
                    // Same content under another name (rename/rotation or a copy): already read.
                    if let Some(f) = followed.get_mut(i) {
                        f.path = match &origin {
                            Origin::File(p) => Some(p.clone()),
                            _ => None,
                        };
                    }
                    continue;
                }
                next_input += 1;
                if !send(opened) {
                    return;
                }
                let fp = reader.fingerprint;
                while let Some(item) =
                    reader.next_item(&self.cfg, !self.cfg.follow || !reader.followable())
                {
                    progressed = true;
                    if !send(item) {
                        return;
                    }
                }
                if self.cfg.follow && reader.followable() {
                    seen.insert(fp, followed.len());
                    let path = match &origin {
                        Origin::File(p) => Some(p.clone()),
                        _ => None,
                    };
                    followed.push(Followed { reader, path });
                } else {
                    seen.insert(fp, usize::MAX);
                }
            }
            if !self.cfg.follow || stop.load(Ordering::Relaxed) {
                return;
            }
            if !progressed && !send(ReadItem::Idle) {
                return;
            }
            std::thread::sleep(self.cfg.poll);
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    fn drain_followed(
        &self,
        followed: &mut [Followed],
        stop: &AtomicBool,
        send: &mut dyn FnMut(ReadItem) -> bool,
    ) -> bool {
        let mut progressed = false;
        for f in followed.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            // A rotated-away file is drained and finalized (its writer has moved on).
            let rotated = f.path.as_ref().is_some_and(|p| {
                std::fs::metadata(p)
                    .map(|m| Some((m.dev(), m.ino())) != f.reader.identity)
                    .unwrap_or(true)
            });
            while let Some(item) = f.reader.next_item(&self.cfg, rotated) {
                progressed = true;
                if !send(item) {
                    return progressed;
                }
            }
            if rotated {
                f.path = None;
            }
        }
        progressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item of `path`, read to the end.
    fn items(path: &std::path::Path) -> Vec<ReadItem> {
        let origin = Origin::File(path.to_path_buf());
        let (mut reader, _) = FileReader::open(&origin, 0, &Resume::default(), false)
            .unwrap()
            .unwrap();
        let cfg = ReaderConfig {
            chunk_bytes: 512,
            ..ReaderConfig::default()
        };
        std::iter::from_fn(|| reader.next_item(&cfg, true)).collect()
    }

    /// Found by the `input` fuzz target: a gzip whose checksum fails after its data reported the
    /// error before the records decoded ahead of it, at an offset past them.
    #[test]
    fn a_failing_gzip_reports_its_error_after_the_records_read_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..100)
            .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(40)))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let mut bytes = gz.finish().unwrap();
        let crc = bytes.len() - 8;
        bytes[crc] ^= 0xff;
        let path = dir.path().join("bad-crc.ndjson.gz");
        std::fs::write(&path, &bytes).unwrap();

        let items = items(&path);
        let mut next = 0u64;
        let mut lines = 0u64;
        for item in &items[..items.len() - 1] {
            let ReadItem::Chunk(c) = item else {
                panic!("only chunks before the error: {item:?}");
            };
            assert_eq!(c.start, next, "chunks in input order, no gap");
            next += c.data.len() as u64;
            lines += c.lines;
        }
        assert_eq!((next, lines), (text.len() as u64, 100));
        let Some(ReadItem::Error {
            offset,
            line,
            reason,
            ..
        }) = items.last()
        else {
            panic!("the error comes last: {items:?}");
        };
        assert_eq!((*offset, *line), (text.len() as u64, 101), "{reason}");
        assert!(
            reason.starts_with("gzip stream failed after byte"),
            "{reason}"
        );
    }
}
