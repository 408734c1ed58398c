//! The Sigma rule parser and compiler on arbitrary YAML: `parse_file` (documents, line
//! numbers of errors), then — when it parses — the detector built from it (canonical and
//! vendor rules, correlations, the row gate, ordered-correlation sequels) evaluating real
//! events from `sample-data/`. Invariant: no panic; a rule either fails with an error naming
//! a line ≥ 1, or compiles and runs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mfascope::detect::rules::parse_file;
use mfascope::detect::{DetectConfig, Detector, RuleError, RuleSet};
use mfascope::event::CanonicalBatch;
use mfascope::normalize::{LogFormat, Normalizer};
use mfascope::pipeline::normalize_chunk;
use mfascope::source::{FileReader, Origin, ReadItem, ReaderConfig, Resume};

/// Up to 2,000 events of each of two bundled samples (verifier and Okta, raw kept for
/// vendor-field rules).
fn events() -> &'static Vec<CanonicalBatch> {
    static EVENTS: OnceLock<Vec<CanonicalBatch>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data/");
        ["canonical-verifier.ndjson.gz", "okta-system-log.ndjson.gz"]
            .iter()
            .filter_map(|name| {
                let origin = Origin::File(format!("{dir}{name}").into());
                let (mut reader, _) = FileReader::open(&origin, 0, &Resume::default(), false)
                    .expect("bundled sample opens")
                    .expect("a file is read at once");
                let cfg = ReaderConfig {
                    chunk_bytes: 1 << 20,
                    ..ReaderConfig::default()
                };
                let mut normalizer = Normalizer::new(LogFormat::Auto).keep_raw(true);
                match reader.next_item(&cfg, true) {
                    Some(ReadItem::Chunk(c)) => normalize_chunk(&mut normalizer, &c)
                        .batch
                        .map(|b| b.derived(b.record_batch().slice(0, b.num_rows().min(2_000)))),
                    _ => None,
                }
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = match parse_file("fuzz.yml", text) {
        Ok(f) => f,
        Err(RuleError::Parse { line, message, .. }) => {
            assert!(line >= 1 && !message.is_empty());
            return;
        }
        Err(e) => panic!("parse_file gave a non-parse error: {e}"),
    };
    let set = RuleSet::from_files(vec![file]);
    let Ok(mut detector) = Detector::new(&set, DetectConfig::default(), true) else {
        return;
    };
    for batch in events() {
        detector.observe(batch);
    }
    detector.finish();
    let rows: usize = events().iter().map(CanonicalBatch::num_rows).sum();
    assert_eq!(
        detector.counters().events,
        rows as u64,
        "every event evaluated once"
    );
});
