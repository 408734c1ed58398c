//! Event-time ordering for the streaming rule engine: rows wait until the watermark (the
//! latest event time seen minus the out-of-order allowance) passes them, then leave sorted by
//! `(time, event_id)` — the order `mfascope detect` reads history in, so both paths feed the
//! engine identically. Rows older than what was already released are late: they are still
//! evaluated (never dropped) and counted.

use arrow::array::{Array, BooleanArray};
use arrow::compute::kernels::cmp::{gt, lt_eq};
use arrow::compute::{SortColumn, concat_batches, filter_record_batch, lexsort_to_indices};

use mfascope_core::event::{CanonicalBatch, col};

/// Sort a canonical batch by `(time, event_id)` (returned as it is when already in that order:
/// logs mostly arrive in time order, and sorting copies every column).
pub fn sort_by_time(batch: &CanonicalBatch) -> CanonicalBatch {
    if batch.num_rows() < 2 || is_sorted(batch) {
        return batch.clone();
    }
    let column = |name| batch.column(name).clone();
    let idx = lexsort_to_indices(
        &[
            SortColumn {
                values: column(col::TIME),
                options: None,
            },
            SortColumn {
                values: column(col::EVENT_ID),
                options: None,
            },
        ],
        None,
    )
    .expect("time and event_id sort");
    batch.derived(
        arrow::compute::take_record_batch(batch.record_batch(), &idx).expect("indices in range"),
    )
}

/// Whether the rows are in `(time, event_id)` order already.
fn is_sorted(batch: &CanonicalBatch) -> bool {
    let times = batch.times().values();
    let ids = arrow::array::AsArray::as_string_opt::<i32>(batch.column(col::EVENT_ID).as_ref());
    times.windows(2).enumerate().all(|(i, w)| {
        w[0] < w[1] || (w[0] == w[1] && ids.is_some_and(|ids| ids.value(i) <= ids.value(i + 1)))
    })
}

/// Rows released together at least (unless flushing): evaluating in larger sorted runs keeps
/// the concatenation cost per row small.
const MIN_RELEASE: usize = 8192;

/// Holds rows until the watermark passes them.
#[derive(Debug)]
pub struct Reorder {
    allowance_ms: i64,
    min_release: usize,
    pending: Vec<CanonicalBatch>,
    pending_rows: usize,
    max_time: i64,
    released_to: i64,
    late: u64,
}

impl Reorder {
    /// A buffer that waits `allowance_ms` of event time for stragglers.
    pub fn new(allowance_ms: i64) -> Reorder {
        Reorder {
            allowance_ms: allowance_ms.max(0),
            min_release: MIN_RELEASE,
            pending: Vec::new(),
            pending_rows: 0,
            max_time: i64::MIN,
            released_to: i64::MIN,
            late: 0,
        }
    }

    /// Rows that arrived after later rows had been released.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Rows waiting for the watermark.
    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    /// Add a batch; returns the rows now behind the watermark as runs whose concatenation is
    /// sorted (empty when none are, or when fewer than [`MIN_RELEASE`] are and the buffer is
    /// large). Input in time order (a backlog, most live streams) leaves without a copy: each
    /// batch is cut at the watermark and the pieces are released as they are.
    pub fn push(&mut self, batch: &CanonicalBatch) -> Vec<CanonicalBatch> {
        if batch.num_rows() == 0 {
            return Vec::new();
        }
        let t = batch.times();
        self.late += t.values().iter().filter(|&&x| x < self.released_to).count() as u64;
        self.max_time = self
            .max_time
            .max(t.values().iter().copied().max().unwrap_or(i64::MIN));
        self.pending.push(batch.clone());
        self.pending_rows += batch.num_rows();
        let watermark = self.max_time.saturating_sub(self.allowance_ms);
        let behind: Vec<usize> = self
            .pending
            .iter()
            .map(|b| {
                b.times()
                    .values()
                    .iter()
                    .filter(|&&x| x <= watermark)
                    .count()
            })
            .collect();
        let ready: usize = behind.iter().sum();
        // Release whatever is ready while the buffer is small (a quiet live stream must not
        // wait for a full run); a large buffer waits for a run.
        let cheap = self.pending_rows <= 4 * self.min_release;
        if ready == 0 || (ready < self.min_release && !cheap) {
            return Vec::new();
        }
        let parts = std::mem::take(&mut self.pending);
        self.pending_rows -= ready;
        if self.pending_rows == 0 {
            // Everything is behind the watermark (a backlog read in order): no cut.
            return self.release(parts);
        }
        let mut out = Vec::with_capacity(parts.len());
        for (part, behind) in parts.iter().zip(behind) {
            let (now, later) = cut(part, behind, watermark);
            out.extend(now);
            self.pending.extend(later);
        }
        self.release(out)
    }

    /// Everything still waiting, sorted (end of input).
    pub fn flush(&mut self) -> Vec<CanonicalBatch> {
        self.pending_rows = 0;
        let parts = std::mem::take(&mut self.pending);
        self.release(parts)
    }

    /// `parts` as runs in `(time, event_id)` order: as they are when each is sorted and each
    /// starts where the previous ends (and runs are not tiny), else concatenated and sorted.
    fn release(&mut self, parts: Vec<CanonicalBatch>) -> Vec<CanonicalBatch> {
        let rows: usize = parts.iter().map(CanonicalBatch::num_rows).sum();
        if rows == 0 {
            return Vec::new();
        }
        let in_order = parts.len() == 1 || rows / parts.len() >= MIN_RUN;
        let in_order = in_order
            && parts.iter().all(is_sorted)
            && parts
                .windows(2)
                .all(|w| key(&w[0], w[0].num_rows() - 1) <= key(&w[1], 0));
        let runs = if in_order {
            parts
        } else {
            vec![sort_by_time(&concat(&parts[0], &parts))]
        };
        let last = runs.last().expect("rows were released");
        let t = last.times();
        self.released_to = self.released_to.max(t.value(t.len() - 1));
        runs
    }
}

/// Runs shorter than this on average are concatenated before release: evaluating a run has a
/// fixed cost (its columns decoded, its view built), but concatenating copies every column. A
/// 1 MiB chunk of Okta's ~1.9 KB records is a run of ~550 rows, which passes as it is.
const MIN_RUN: usize = 256;

/// The `(time, event_id)` of row `i`.
fn key(batch: &CanonicalBatch, i: usize) -> (i64, Option<&str>) {
    let ids = arrow::array::AsArray::as_string_opt::<i32>(batch.column(col::EVENT_ID).as_ref());
    (
        batch.times().value(i),
        ids.filter(|ids| ids.is_valid(i)).map(|ids| ids.value(i)),
    )
}

/// `part` cut into its `behind` rows at or behind `watermark` and the rows after it (either
/// `None` when empty): the first a slice when the rows are in time order, filtered copies
/// otherwise.
fn cut(
    part: &CanonicalBatch,
    behind: usize,
    watermark: i64,
) -> (Option<CanonicalBatch>, Option<CanonicalBatch>) {
    let times = part.times().values();
    let n = part.num_rows();
    if behind == n {
        return (Some(part.clone()), None);
    }
    if behind == 0 {
        return (None, Some(part.clone()));
    }
    if times.windows(2).all(|w| w[0] <= w[1]) {
        // The rows behind are evaluated at once: a slice. The rows after wait, usually a
        // small tail: copied, so the batch they came in is not kept alive with them.
        let batch = part.record_batch();
        let tail = arrow::array::UInt32Array::from_iter_values(behind as u32..n as u32);
        return (
            Some(part.derived(batch.slice(0, behind))),
            Some(part.derived(
                arrow::compute::take_record_batch(batch, &tail).expect("indices in range"),
            )),
        );
    }
    let scalar = arrow::array::Scalar::new(
        arrow::array::TimestampMillisecondArray::from(vec![watermark])
            .with_data_type(part.times().data_type().clone()),
    );
    let select = |mask: BooleanArray| {
        part.derived(filter_record_batch(part.record_batch(), &mask).expect("mask matches"))
    };
    (
        Some(select(
            lt_eq(part.times(), &scalar).expect("timestamps compare"),
        )),
        Some(select(
            gt(part.times(), &scalar).expect("timestamps compare"),
        )),
    )
}

/// The watermark and its counters in saved form (the waiting rows travel beside it, see
/// [`crate::snapshot`]).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedOrder {
    max_time: i64,
    released_to: i64,
    late: u64,
}

impl Reorder {
    /// The watermark and the rows waiting for it (one batch, `None` when none wait).
    pub(crate) fn save(&self) -> (SavedOrder, Option<CanonicalBatch>) {
        let rows = self
            .pending
            .first()
            .map(|first| concat(first, &self.pending));
        (
            SavedOrder {
                max_time: self.max_time,
                released_to: self.released_to,
                late: self.late,
            },
            rows,
        )
    }

    /// Restore [`Reorder::save`]'s output.
    pub(crate) fn restore(&mut self, saved: SavedOrder, rows: Option<CanonicalBatch>) {
        self.max_time = saved.max_time;
        self.released_to = saved.released_to;
        self.late = saved.late;
        self.pending.clear();
        self.pending_rows = 0;
        if let Some(rows) = rows.filter(|r| r.num_rows() > 0) {
            self.pending_rows = rows.num_rows();
            self.pending.push(rows);
        }
    }
}

/// The rows of `parts` (batches of `like`'s columns) as one batch.
fn concat(like: &CanonicalBatch, parts: &[CanonicalBatch]) -> CanonicalBatch {
    if let [one] = parts {
        return one.clone();
    }
    let all = concat_batches(
        &like.record_batch().schema(),
        parts.iter().map(CanonicalBatch::record_batch),
    )
    .expect("same schema");
    like.derived(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source};

    fn batch(times: &[i64]) -> CanonicalBatch {
        let mut b = EventBatchBuilder::default();
        for (k, t) in times.iter().enumerate() {
            b.append(&Event::new(
                Source::Canonical,
                format!("e{t}-{k}"),
                *t,
                "u",
                "t",
                (Action::Other, Factor::None, Outcome::Success),
            ));
        }
        b.finish_canonical()
    }

    fn released(runs: Vec<CanonicalBatch>) -> Vec<i64> {
        runs.iter()
            .flat_map(|b| b.times().values().to_vec())
            .collect()
    }

    #[test]
    fn rows_wait_for_the_watermark_and_leave_sorted() {
        let mut r = Reorder {
            min_release: 1,
            ..Reorder::new(10)
        };
        assert_eq!(released(r.push(&batch(&[5, 1, 3]))), Vec::<i64>::new());
        assert_eq!(released(r.push(&batch(&[14, 2]))), vec![1, 2, 3]);
        assert_eq!(r.pending_rows(), 2);
        assert_eq!(r.late(), 0);
        // 0 is older than what was released: late, but still evaluated.
        assert_eq!(released(r.push(&batch(&[40, 0]))), vec![0, 5, 14]);
        assert_eq!(r.late(), 1);
        assert_eq!(released(r.flush()), vec![40]);
    }

    #[test]
    fn rows_in_time_order_leave_as_slices_of_their_batch() {
        let mut r = Reorder {
            min_release: 1,
            ..Reorder::new(10)
        };
        let input = batch(&[1, 2, 3, 20, 21]);
        let start = input.times().values().as_ptr();
        let first = r.push(&input);
        assert_eq!(released(first.clone()), vec![1, 2, 3]);
        assert_eq!(first[0].times().values().as_ptr(), start, "not copied");
        // What waits is copied out of the batch (which would otherwise stay alive with it).
        assert_ne!(
            r.pending[0].times().values().as_ptr(),
            start.wrapping_add(3)
        );
        let second = r.push(&batch(&[30, 40]));
        assert_eq!(released(second.clone()), vec![20, 21, 30]);
        // Three rows from two batches: short runs are joined into one sorted copy.
        assert_eq!(second.len(), 1);
        assert_eq!(r.pending_rows(), 1);
        assert_eq!(released(r.flush()), vec![40]);
    }

    #[test]
    fn ties_in_time_are_ordered_by_event_id_and_sorted_input_is_kept() {
        let ids = |b: &CanonicalBatch| -> Vec<String> {
            let c = arrow::array::AsArray::as_string::<i32>(b.column(col::EVENT_ID).as_ref());
            c.iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect()
        };
        // Same time, ids `e7-1` before `e7-0` after the swap below: out of order.
        let b = batch(&[7, 7, 9]);
        let swapped = b.derived(
            arrow::compute::take_record_batch(
                b.record_batch(),
                &arrow::array::UInt32Array::from(vec![1, 0, 2]),
            )
            .unwrap(),
        );
        assert!(!is_sorted(&swapped));
        assert_eq!(ids(&sort_by_time(&swapped)), ["e7-0", "e7-1", "e9-2"]);
        assert!(is_sorted(&b));
        assert_eq!(ids(&sort_by_time(&b)), ["e7-0", "e7-1", "e9-2"]);
        assert!(!is_sorted(&batch(&[9, 7])));
    }
}
