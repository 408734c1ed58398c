//! Every normalizer and per-record format detection on arbitrary bytes, through the path an
//! ingest worker takes (`pipeline::normalize_chunk`: records → events, ignored or dead letters
//! → an Arrow batch). The first byte picks the `--log-format` (auto or one vendor), whether the
//! redacted raw record is kept, and whether the chunk is line-split or read as JSON documents.
//! Invariant: every record is accounted for exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfascope::normalize::{LogFormat, Normalizer};
use mfascope::pipeline::normalize_chunk;
use mfascope::sink::deadletter::RAW_MAX;
use mfascope::source::{Chunk, ChunkKind};

const FORMATS: [LogFormat; 8] = [
    LogFormat::Auto,
    LogFormat::Okta,
    LogFormat::Entra,
    LogFormat::Duo,
    LogFormat::Gworkspace,
    LogFormat::Cloudtrail,
    LogFormat::Keycloak,
    LogFormat::Canonical,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector & 7)];
    let mut normalizer = Normalizer::new(format).keep_raw(selector & 8 != 0);
    let kind = if selector & 16 != 0 {
        ChunkKind::Document
    } else {
        ChunkKind::Lines
    };
    let chunk = Chunk {
        input: 0,
        path: "fuzz".into(),
        start: 0,
        first_line: 1,
        lines: memchr_count(body),
        data: body.to_vec(),
        kind,
    };
    let tally = normalize_chunk(&mut normalizer, &chunk);
    let events = tally.batch.as_ref().map_or(0, |b| b.num_rows() as u64);
    assert_eq!(
        tally.records,
        events + tally.ignored + tally.dead.len() as u64,
        "every record is an event, an ignored record or a dead letter"
    );
    for d in &tally.dead {
        assert!(!d.reason.is_empty(), "dead letter without a reason");
        assert!(
            d.offset <= body.len() as u64,
            "dead letter offset past the chunk"
        );
        assert!(d.raw.len() <= RAW_MAX, "dead letter raw text not cut");
    }
});

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}
