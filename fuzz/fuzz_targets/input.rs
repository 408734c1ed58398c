//! Input framing on arbitrary bytes: gzip detection and decoding, line vs document detection,
//! oversized lines and documents, then every chunk through the normalizers — the whole file
//! ingest path short of the sinks. The input is written to a file on tmpfs and read by the
//! same `FileReader` ingest uses, with small limits so the oversize paths are reachable.
//! Invariants: no panic; reading ends; items come in input order; every record and every
//! unreadable stretch is accounted.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mfascope::normalize::{LogFormat, Normalizer};
use mfascope::pipeline::normalize_chunk;
use mfascope::source::{FileReader, Origin, ReadItem, ReaderConfig, Resume};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("mfascope-fuzz-input-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write the fuzz input to tmpfs");
    let cfg = ReaderConfig {
        chunk_bytes: 512,
        max_record: 4096,
        max_document: 16 << 10,
        ..ReaderConfig::default()
    };
    // A gzip corrupt within its head cannot be opened: ingest names it as unreadable, with
    // this error as the reason.
    let opened = match FileReader::open(&Origin::File(path.clone()), 0, &Resume::default(), false) {
        Ok(opened) => opened,
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "an unreadable input needs a reason"
            );
            return;
        }
    };
    let Some((mut reader, first)) = opened else {
        panic!("a regular file opens without waiting for its identity");
    };
    assert!(matches!(first, ReadItem::Opened { .. }));
    let mut normalizer = Normalizer::new(LogFormat::Auto);
    let mut last_offset = 0u64;
    // Each item consumes input; the bound only catches a reader that stops making progress.
    for _ in 0..=(data.len() * 64 + 64) {
        match reader.next_item(&cfg, true) {
            None => return,
            Some(ReadItem::Chunk(chunk)) => {
                assert!(chunk.start >= last_offset, "chunks go forward");
                last_offset = chunk.start + chunk.data.len() as u64;
                let tally = normalize_chunk(&mut normalizer, &chunk);
                let events = tally.batch.as_ref().map_or(0, |b| b.num_rows() as u64);
                assert_eq!(
                    tally.records,
                    events + tally.ignored + tally.dead.len() as u64
                );
            }
            Some(ReadItem::Error {
                reason,
                len,
                offset,
                ..
            }) => {
                assert!(!reason.is_empty());
                assert!(offset >= last_offset, "errors go forward");
                last_offset = offset + len;
            }
            Some(other) => panic!("unexpected item reading a regular file: {other:?}"),
        }
    }
    panic!("the reader made no progress");
});
