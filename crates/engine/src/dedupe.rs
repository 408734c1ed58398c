//! Records delivered twice inside the input — overlapping API polls, at-least-once delivery, a
//! file concatenated twice. A record with the source, event id *and* bytes of an earlier one
//! becomes a dead letter naming the id, so counts are not doubled and nothing is lost; the same
//! id with other content (vendors reuse ids: an Entra correlation, a Duo transaction's steps) is
//! a distinct event and kept. Remembers the most recent `window` records of the run (a 128-bit
//! hash each, ~26 bytes with the index): repeats further apart than that, or across
//! restarts, are kept.

use hashbrown::HashTable;

use arrow::compute::filter_record_batch;

use strum::VariantNames;

use mfascope_core::event::{CanonicalBatch, Source, col};

/// Records remembered by default.
pub const DEFAULT_WINDOW: usize = 250_000;

/// The recent records of a run.
#[derive(Debug)]
pub struct Dedupe {
    window: usize,
    /// The window's record hashes (128-bit), the oldest overwritten first.
    ring: Vec<u128>,
    /// The slot of `ring` written next.
    next: usize,
    /// Slots of `ring` by the hash they hold (its low 64 bits hash the table: the value is a
    /// hash already). A set of the hashes themselves took 50–70 bytes per record under churn
    /// (17-byte buckets; hashbrown doubles a table whose deleted slots fill it, up to 4× the
    /// window's buckets), beside a queue of the hashes; slots take 5 bytes per bucket.
    index: HashTable<u32>,
    /// The bytes hashed per record, reused (no allocation per record).
    key: Vec<u8>,
}

/// A row that repeated a record already ingested.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeat {
    /// Row index in the batch given to [`Dedupe::filter`].
    pub row: usize,
    /// The repeated id.
    pub event_id: String,
    /// The row's source (`okta`, `canonical`, …).
    pub source: &'static str,
}

impl Dedupe {
    /// Remember up to `window` records (0 turns the check off; at most 2³² − 1).
    pub fn new(window: usize) -> Self {
        Dedupe {
            window: window.min(u32::MAX as usize),
            ring: Vec::new(),
            next: 0,
            index: HashTable::new(),
            key: Vec::new(),
        }
    }

    /// True the first time `(source, id, content)` is offered within the window.
    fn first(&mut self, source: i8, id: &str, content: u64) -> bool {
        self.key.clear();
        self.key.push(source as u8);
        self.key.extend_from_slice(&content.to_le_bytes());
        self.key.extend_from_slice(id.as_bytes());
        let h = xxhash_rust::xxh3::xxh3_128(&self.key);
        let ring = &self.ring;
        if self
            .index
            .find(h as u64, |&s| ring[s as usize] == h)
            .is_some()
        {
            return false;
        }
        let slot = self.next;
        if slot < self.ring.len() {
            // The window is full: the oldest record leaves it.
            let old = std::mem::replace(&mut self.ring[slot], h);
            if let Ok(entry) = self.index.find_entry(old as u64, |&s| s as usize == slot) {
                entry.remove();
            }
        } else {
            self.ring.push(h);
        }
        let ring = &self.ring;
        self.index
            .insert_unique(h as u64, slot as u32, |&s| ring[s as usize] as u64);
        self.next = (slot + 1) % self.window;
        true
    }

    /// `batch` without the rows already seen, and those rows; `contents[i]` is a hash of row
    /// `i`'s record bytes. The batch is returned untouched when nothing repeats.
    pub fn filter(
        &mut self,
        batch: CanonicalBatch,
        contents: &[u64],
    ) -> (CanonicalBatch, Vec<Repeat>) {
        if self.window == 0 {
            return (batch, Vec::new());
        }
        let ids = batch.strings(col::EVENT_ID);
        // Engine batches carry the vocabulary dictionary: read its keys in place (this runs on
        // every batch); decode only batches that come with another dictionary.
        let decoded: Vec<i8>;
        let sources: &[i8] = match batch.vocabulary_keys(col::SOURCE) {
            Some(keys) => keys,
            None => {
                decoded = batch
                    .enums::<Source>(col::SOURCE)
                    .iter()
                    .map(|s| s.unwrap_or(Source::Canonical).key())
                    .collect();
                &decoded
            }
        };
        let mut repeats = Vec::new();
        let keep: Vec<bool> = (0..batch.num_rows())
            .map(|i| {
                let content = contents.get(i).copied().unwrap_or_default();
                let first = self.first(sources[i], ids.value(i), content);
                if !first {
                    repeats.push(Repeat {
                        row: i,
                        event_id: ids.value(i).to_string(),
                        source: Source::VARIANTS[sources[i] as usize],
                    });
                }
                first
            })
            .collect();
        if repeats.is_empty() {
            return (batch, repeats);
        }
        let kept = filter_record_batch(batch.record_batch(), &keep.into())
            .expect("mask of the batch's length");
        (batch.derived(kept), repeats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_normalize::{LogFormat, Normalizer};
    use mfascope_source::{Chunk, ChunkKind};

    fn batch(ids: &[(&str, Source)]) -> CanonicalBatch {
        let text: String = ids
            .iter()
            .map(|(id, source)| {
                format!(
                    r#"{{"event_id":"{id}","time":"2024-05-01T10:00:00Z","source":"{}","user":"u","action":"mfa_verify","factor":"totp","outcome":"success","vendor_event_type":"t"}}"#,
                    source.as_str()
                ) + "\n"
            })
            .collect();
        let chunk = Chunk {
            input: 0,
            path: "t".into(),
            start: 0,
            first_line: 1,
            lines: ids.len() as u64,
            data: text.into_bytes(),
            kind: ChunkKind::Lines,
        };
        let tally =
            super::super::normalize_chunk(&mut Normalizer::new(LogFormat::Canonical), &chunk);
        assert!(tally.dead.is_empty(), "{:?}", tally.dead);
        tally.batch.unwrap()
    }

    /// Over many turns of the ring, exactly the last `window` records are remembered.
    #[test]
    fn the_window_holds_exactly_the_most_recent_records_as_it_turns() {
        let mut d = Dedupe::new(100);
        let id = |i: u64| format!("e{i}");
        for i in 0..10_000u64 {
            assert!(d.first(1, &id(i), i), "record {i} is new");
        }
        // Records 9,900..10,000 are remembered; 9,899 was forgotten (and is new again, which
        // makes 9,900 the oldest left and pushes it out).
        assert!(!d.first(1, &id(9_950), 9_950));
        assert!(d.first(1, &id(9_899), 9_899));
        assert!(d.first(1, &id(9_900), 9_900));
        assert!(!d.first(1, &id(9_999), 9_999));
        assert!(!d.first(1, &id(9_899), 9_899));
        assert_eq!(d.index.len(), 100);
    }

    #[test]
    fn a_repeated_record_is_dropped_within_the_window_the_same_id_with_other_content_kept() {
        let mut d = Dedupe::new(3);
        let (kept, repeats) = d.filter(
            batch(&[
                ("a", Source::Okta),
                ("a", Source::Okta),
                ("a", Source::Duo),
                ("b", Source::Okta),
                ("a", Source::Okta),
            ]),
            &[1, 1, 1, 1, 2],
        );
        assert_eq!(kept.num_rows(), 4);
        assert_eq!(
            repeats,
            [Repeat {
                row: 1,
                event_id: "a".into(),
                source: "okta"
            }]
        );
        // The window holds the 3 most recent records: the first "a"/okta was forgotten.
        let (kept, repeats) = d.filter(
            batch(&[
                ("b", Source::Okta),
                ("a", Source::Okta),
                ("a", Source::Okta),
            ]),
            &[1, 1, 2],
        );
        assert_eq!((kept.num_rows(), repeats.len()), (1, 2));
        assert_eq!((repeats[0].row, repeats[1].row), (0, 2));
        // Off: everything passes.
        let (kept, repeats) = Dedupe::new(0).filter(batch(&[("x", Source::Okta); 3]), &[1; 3]);
        assert_eq!((kept.num_rows(), repeats.len()), (3, 0));
    }
}
