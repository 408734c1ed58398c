//! Derives `latency_ms` for verifications whose vendor does not report it, by pairing an
//! `mfa_challenge` with the next `mfa_verify` of the same source, user and transaction (or
//! session). Runs on batches in input order; state is a bounded FIFO of open challenges.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt32Array};

use mfascope_core::event::{Action, CanonicalBatch, col};

/// Longest challenge → verification gap that still counts as one login (10 minutes).
pub const MAX_GAP_MS: i64 = 600_000;

/// Bounded challenge table; the oldest open challenge is evicted first.
pub struct LatencyPairer {
    open: HashMap<u64, i64>,
    order: VecDeque<u64>,
    capacity: usize,
    /// Verifications given a derived latency.
    pub paired: u64,
    /// Open challenges dropped because the table was full.
    pub evicted: u64,
}

impl Default for LatencyPairer {
    fn default() -> Self {
        Self::with_capacity(200_000)
    }
}

impl LatencyPairer {
    /// A pairer holding at most `capacity` open challenges.
    pub fn with_capacity(capacity: usize) -> Self {
        LatencyPairer {
            open: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            paired: 0,
            evicted: 0,
        }
    }

    /// The open challenges, oldest first, as bytes to commit with a checkpoint.
    pub fn save(&self) -> Vec<u8> {
        let open: Vec<(u64, i64)> = self
            .order
            .iter()
            .filter_map(|k| Some((*k, *self.open.get(k)?)))
            .collect();
        serde_json::to_vec(&open).expect("pairs serialize")
    }

    /// Continue from [`LatencyPairer::save`]'s bytes (the table's capacity stays this one's).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), serde_json::Error> {
        let open: Vec<(u64, i64)> = serde_json::from_slice(bytes)?;
        self.open = open.iter().copied().collect();
        self.order = open.into_iter().map(|(k, _)| k).collect();
        Ok(())
    }

    /// Fill missing `latency_ms` in `batch` where a challenge pairs. Engine batches only
    /// (built by `EventBatchBuilder`): batches read back through SQL are not paired again.
    pub fn apply(&mut self, batch: CanonicalBatch) -> CanonicalBatch {
        let (Some(action), Some(source)) = (
            batch.vocabulary_keys(col::ACTION),
            batch.vocabulary_keys(col::SOURCE),
        ) else {
            return batch;
        };
        let time = batch.times();
        let [user, txn, session] =
            [col::USER, col::TRANSACTION_ID, col::SESSION_ID].map(|c| batch.strings(c));
        let latency = batch.u32s(col::LATENCY_MS);

        let mut updated: Option<Vec<Option<u32>>> = None;
        for row in 0..batch.num_rows() {
            let a = action[row];
            if a != Action::MfaChallenge.key() && a != Action::MfaVerify.key() {
                continue;
            }
            let key_text = if txn.is_valid(row) {
                txn.value(row)
            } else if session.is_valid(row) {
                session.value(row)
            } else {
                continue;
            };
            let key = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (source[row], user.value(row), key_text).hash(&mut h);
                h.finish()
            };
            let t = time.value(row);
            if a == Action::MfaChallenge.key() {
                if self.open.insert(key, t).is_none() {
                    self.order.push_back(key);
                    if self.order.len() > self.capacity
                        && let Some(old) = self.order.pop_front()
                    {
                        self.open.remove(&old);
                        self.evicted += 1;
                    }
                }
            } else if latency.is_null(row)
                && let Some(start) = self.open.remove(&key)
            {
                let gap = t - start;
                if (0..=MAX_GAP_MS).contains(&gap) {
                    let v = updated.get_or_insert_with(|| latency.iter().collect());
                    v[row] = Some(gap as u32);
                    self.paired += 1;
                }
            }
        }
        // Keep the FIFO from growing with keys already paired.
        if self.order.len() > 2 * self.open.len() + 1024 {
            self.order.retain(|k| self.open.contains_key(k));
        }
        match updated {
            None => batch,
            Some(values) => {
                let record = batch.record_batch();
                let lat_idx = record
                    .schema()
                    .index_of(col::LATENCY_MS)
                    .expect("checked when the batch was made canonical");
                let mut columns = record.columns().to_vec();
                columns[lat_idx] = Arc::new(UInt32Array::from(values));
                let paired =
                    RecordBatch::try_new(record.schema(), columns).expect("the same column types");
                batch.derived(paired)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use mfascope_core::event::{Event, EventBatchBuilder, Factor, Outcome, Source};

    fn e(id: &str, t: i64, action: Action, txn: &str) -> Event<'static> {
        let mut e = Event::new(
            Source::Okta,
            id.to_string(),
            t,
            "alice",
            "x",
            (action, Factor::Push, Outcome::Success),
        );
        e.transaction_id = Some(txn.to_string().into());
        e
    }

    #[test]
    fn pairs_challenge_with_verification_across_batches() {
        let mut p = LatencyPairer::default();
        let mut b = EventBatchBuilder::default();
        b.append(&e("1", 1_000, Action::MfaChallenge, "T"));
        b.append(&e("2", 1_500, Action::MfaChallenge, "U"));
        let first = p.apply(b.finish_canonical()).into_record_batch();
        assert_eq!(first.column(13).null_count(), 2);
        b.append(&e("3", 3_250, Action::MfaVerify, "T"));
        b.append(&e("4", 999_999, Action::MfaVerify, "U")); // beyond the 10 min gap
        b.append(&e("5", 4_000, Action::MfaVerify, "Z")); // no challenge
        let out = p.apply(b.finish_canonical()).into_record_batch();
        let lat = out
            .column(13)
            .as_primitive::<arrow::datatypes::UInt32Type>();
        assert_eq!(
            lat.iter().collect::<Vec<_>>(),
            vec![Some(2_250), None, None]
        );
        assert_eq!(p.paired, 1);
    }
}
