//! One scope's ordered stage: items arrive in the order their source sent them; it counts,
//! derives latencies, turns repeats into dead letters, feeds the observers, splits by hour and
//! groups segments for the writer. It never parses records or writes files.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use strum::VariantNames;

use crate::chunk::Processed;
use crate::dedupe::Dedupe;
use crate::{IngestOptions, Summary, Unreadable};
use mfascope_core::event::{Action, CanonicalBatch, Factor, Outcome, Source, col};
use mfascope_core::observe::{BatchObserver, Observers};
use mfascope_normalize::latency::LatencyPairer;
use mfascope_sink::parquet::read_events;
use mfascope_sink::segment::Position;
use mfascope_sink::state::{observer_state_rel, read_observer_state};
use mfascope_sink::{DeadLetter, OutDir, Segment};
use mfascope_source::ReadItem;

/// Where a finished segment goes (the writer); false when it has gone away.
pub(crate) type SegmentSink = Box<dyn FnMut(Segment) -> bool + Send>;

/// One scope's ordered stage: derives latencies, drops repeats, splits by hour, groups segments
/// (items arrive in the order the source sent them).
pub(crate) struct OrderedStage {
    sink: SegmentSink,
    segment: Segment,
    segment_rows: usize,
    segment_bytes: usize,
    buffered_rows: usize,
    buffered_bytes: usize,
    segment_started: Option<Instant>,
    inputs: HashMap<u32, (String, String)>,
    positions: Vec<Position>,
    pairer: LatencyPairer,
    dedupe: Dedupe,
    pub(crate) summary: Summary,
    observers: Observers,
    /// The observers of this scope alone (also in `observers`), closed with it.
    own: Vec<Arc<dyn BatchObserver>>,
    /// Save the observers' state with a segment at most this often (see
    /// [`IngestOptions::save_state`]).
    save_every: Option<Duration>,
    last_saved: Instant,
    /// Segments were committed since the state was last saved: it is saved when the scope
    /// closes, with a segment of its own when no data is left.
    owed: bool,
}

/// Name of the latency pairing table among a segment's saved states.
const PAIRER_STATE: &str = "latency";

impl OrderedStage {
    pub(crate) fn new(opts: &IngestOptions, sink: SegmentSink) -> Self {
        OrderedStage {
            sink,
            segment: Segment::default(),
            segment_rows: opts.segment_rows.max(1),
            segment_bytes: opts.segment_bytes.max(1),
            buffered_rows: 0,
            buffered_bytes: 0,
            segment_started: None,
            inputs: HashMap::new(),
            positions: Vec::new(),
            pairer: LatencyPairer::default(),
            dedupe: Dedupe::new(opts.dedupe_window),
            summary: Summary::default(),
            observers: opts.observers.clone(),
            own: Vec::new(),
            save_every: opts.save_state,
            last_saved: Instant::now(),
            owed: false,
        }
    }

    /// Continue the latency pairing table from the scope's checkpoint: its saved table, then
    /// the event files committed after it. A table that cannot be read is reported and the
    /// pairing starts empty (a verification whose challenge came before then gets no derived
    /// latency; nothing is invented).
    pub(crate) fn resume(&mut self, out: &OutDir) {
        let saved = &out.checkpoint.saved;
        self.owed =
            !out.checkpoint.replay.is_empty() || (out.checkpoint.segments > 0 && saved.is_empty());
        if self.save_every.is_none() || !out.checkpoint.saved.iter().any(|n| n == PAIRER_STATE) {
            return;
        }
        let result = (|| {
            let saved = read_observer_state(&out.root, out.scope(), PAIRER_STATE)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the checkpoint names it but it is missing".to_string())?;
            self.pairer.restore(&saved).map_err(|e| e.to_string())?;
            for rel in &out.checkpoint.replay {
                for batch in read_events(&out.root, rel).map_err(|e| e.to_string())? {
                    self.pairer.apply(batch);
                }
            }
            Ok::<_, String>(())
        })();
        if let Err(reason) = result {
            let file = out
                .root
                .describe(&observer_state_rel(out.scope(), PAIRER_STATE));
            tracing::warn!(%file, %reason, "latency pairing table not restored; pairing starts empty");
            self.pairer = LatencyPairer::default();
        }
        self.pairer.paired = 0;
    }

    /// Feed `observer` this scope's batches from now on, save its state with the scope's and
    /// close it with the scope.
    pub(crate) fn adopt(&mut self, observer: Arc<dyn BatchObserver>) {
        self.observers.0.push(observer.clone());
        self.own.push(observer);
    }

    /// [`BatchObserver::tick`] this scope's own observers (the run's are ticked by the engine).
    pub(crate) fn tick(&self) {
        for o in &self.own {
            o.tick();
        }
    }

    pub(crate) fn due(&self, max_latency: Duration) -> bool {
        self.segment_started
            .is_some_and(|t| t.elapsed() >= max_latency)
    }

    /// Name an input for positions and dead letters.
    pub(crate) fn register(&mut self, input: u32, fingerprint: String, path: String) {
        self.inputs.insert(input, (fingerprint, path));
    }

    fn touch(&mut self) {
        self.segment_started.get_or_insert_with(Instant::now);
    }

    fn advance(&mut self, input: u32, start: u64, end: u64, end_line: u64) {
        let (fp, path) = self.inputs.get(&input).cloned().unwrap_or_default();
        match self.positions.iter_mut().find(|p| p.fingerprint == fp) {
            Some(p) => {
                p.end = end;
                p.end_line = end_line;
            }
            None => self.positions.push(Position {
                fingerprint: fp,
                path,
                start,
                end,
                end_line,
            }),
        }
        self.touch();
    }

    fn count_dead(&mut self, reason: &str) {
        self.summary.deadletter += 1;
        *self
            .summary
            .deadletter_by_reason
            .entry(reason_class(reason))
            .or_default() += 1;
    }

    /// Apply one in-order item that needs no normalizing (chunks are [`Self::apply_chunk`]'s).
    pub(crate) fn apply_item(&mut self, item: ReadItem) {
        match item {
            ReadItem::Opened {
                input,
                path,
                fingerprint,
                resumed_at,
                ..
            } => {
                self.register(input, fingerprint.to_string(), path.to_string());
                self.summary.inputs += 1;
                self.summary.bytes_already_ingested += resumed_at;
            }
            ReadItem::Error {
                input,
                path,
                offset,
                line,
                len,
                reason,
            } => {
                self.summary.records += 1;
                self.count_dead(&reason);
                self.segment
                    .dead_letters
                    .push(DeadLetter::new(&path, line, offset, None, reason, b""));
                self.advance(input, offset, offset + len, line + 1);
            }
            ReadItem::Unreadable { path, reason } => {
                tracing::warn!(%path, %reason, "input cannot be read");
                self.summary.unreadable.push(Unreadable { path, reason });
            }
            ReadItem::Finished { input, offset } => {
                self.advance(input, offset, offset, mfascope_source::FINISHED_LINE);
            }
            // Flush is the engine's (it commits the whole stage).
            ReadItem::Idle | ReadItem::Flush | ReadItem::Chunk(_) => {}
        }
    }

    /// Apply one in-order normalized chunk; false when the writer has gone away.
    pub(crate) fn apply_chunk(&mut self, mut p: Box<Processed>) -> bool {
        self.drop_repeats(&mut p);
        self.summary.bytes_in += p.bytes;
        self.summary.records += p.counts.records;
        for d in &p.dead {
            self.count_dead(&d.reason);
        }
        let ignored: u64 = p.counts.ignored.values().sum();
        self.summary.ignored += ignored;
        for (k, v) in p.counts.ignored {
            *self.summary.ignored_by_type.entry(k).or_default() += v;
        }
        add_counts(
            &mut self.summary.by_source,
            Source::VARIANTS,
            &p.counts.source,
        );
        add_counts(
            &mut self.summary.by_action,
            Action::VARIANTS,
            &p.counts.action,
        );
        add_counts(
            &mut self.summary.by_factor,
            Factor::VARIANTS,
            &p.counts.factor,
        );
        add_counts(
            &mut self.summary.by_outcome,
            Outcome::VARIANTS,
            &p.counts.outcome,
        );
        self.segment.dead_letters.extend(p.dead);
        self.summary.tickets += p.counts.tickets;
        self.summary.mfa_tickets += p.counts.mfa_tickets;
        if let Some(tickets) = p.tickets {
            self.observers.observe_tickets(&tickets);
            for (hour, part) in split_tickets_by_hour(&tickets) {
                self.buffered_rows += part.num_rows();
                self.buffered_bytes += part.get_array_memory_size();
                self.segment.tickets.entry(hour).or_default().push(part);
            }
        }
        if let Some(batch) = p.batch {
            self.summary.events += batch.num_rows() as u64;
            let batch = self.pairer.apply(batch);
            self.observers.observe(&batch);
            for (hour, part) in split_by_hour(&batch) {
                self.buffered_rows += part.num_rows();
                self.buffered_bytes += part.get_array_memory_size();
                self.segment.partitions.entry(hour).or_default().push(part);
            }
        }
        self.advance(p.input, p.start, p.end, p.end_line);
        if self.buffered_rows >= self.segment_rows || self.buffered_bytes >= self.segment_bytes {
            return self.flush(false);
        }
        true
    }

    /// Rows of `p` repeating a record this run already ingested (same source, event id and
    /// bytes) become dead letters (their counts move with them).
    fn drop_repeats(&mut self, p: &mut Processed) {
        let Some(batch) = p.batch.take() else {
            return;
        };
        let contents: Vec<u64> = p.rows.iter().map(|r| r.content).collect();
        let (kept, repeats) = self.dedupe.filter(batch.clone(), &contents);
        if repeats.is_empty() {
            p.batch = Some(batch);
            return;
        }
        let path = self
            .inputs
            .get(&p.input)
            .map_or("", |(_, path)| path.as_str());
        let [source, action, factor, outcome] =
            [col::SOURCE, col::ACTION, col::FACTOR, col::OUTCOME].map(|c| {
                batch
                    .vocabulary_keys(c)
                    .map(<[i8]>::to_vec)
                    .unwrap_or_default()
            });
        let key = |keys: &[i8], row: usize| keys.get(row).map_or(0, |k| *k as usize);
        for r in repeats {
            p.counts.source[key(&source, r.row)] -= 1;
            p.counts.action[key(&action, r.row)] -= 1;
            p.counts.factor[key(&factor, r.row)] -= 1;
            p.counts.outcome[key(&outcome, r.row)] -= 1;
            let at = p.rows.get(r.row).copied().unwrap_or_default();
            p.dead.push(DeadLetter::new(
                path,
                at.line,
                at.offset,
                Some(r.source),
                format!(
                    "duplicate record: event_id {:?} with the same content was already \
                     ingested in this run (the first is kept)",
                    r.event_id
                ),
                b"",
            ));
        }
        p.batch = (kept.num_rows() > 0).then_some(kept);
    }

    /// The scope's counts, with the latencies its pairer derived.
    pub(crate) fn into_summary(self) -> Summary {
        let mut summary = self.summary;
        summary.latency_derived = self.pairer.paired;
        summary
    }

    /// Hand the current segment to the writer (`last`: the scope's last one); false when the
    /// writer has gone away.
    pub(crate) fn flush(&mut self, last: bool) -> bool {
        if last {
            for o in &self.own {
                o.close();
            }
        }
        let no_data = self.positions.is_empty() && self.segment.dead_letters.is_empty();
        if no_data && !(last && self.owed && self.save_every.is_some()) {
            return true;
        }
        let mut seg = std::mem::take(&mut self.segment);
        seg.positions = std::mem::take(&mut self.positions);
        seg.state = self.saved_state(last);
        seg.id = match seg.positions.first() {
            Some(first) => format!(
                "part-{:016x}",
                xxhash_rust::xxh3::xxh3_64(
                    format!("{}@{}", first.fingerprint, first.start).as_bytes()
                )
            ),
            // The closing scope's state alone (its staged file's name only).
            None => format!("state-{}", std::process::id()),
        };
        self.owed = seg.state.is_none();
        self.segment_started = None;
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        (self.sink)(seg)
    }
}

impl OrderedStage {
    /// What state goes with the segment being cut: the observers' and the pairing table's
    /// when saving is on and due (or `last`), nothing new (`None`) between saves, and an empty
    /// list when saving is off (so the checkpoint says no saved state goes with it).
    fn saved_state(&mut self, last: bool) -> Option<Vec<(String, Vec<u8>)>> {
        let Some(every) = self.save_every else {
            return Some(Vec::new());
        };
        if !last && self.last_saved.elapsed() < every {
            return None;
        }
        self.last_saved = Instant::now();
        // Saving copies every rule window and history: the highest point of a long stream's
        // memory. Pages freed before it, or by it, must not add to it.
        let (observers, pairer) = (&mut self.observers, &self.pairer);
        let state = mfascope_core::memory::at_peak(|| {
            let mut state = observers.save_state();
            state.push((PAIRER_STATE.to_string(), pairer.save()));
            state
        });
        Some(state)
    }
}

fn add_counts(map: &mut BTreeMap<String, u64>, names: &[&str], counts: &[u64]) {
    for (name, &n) in names.iter().zip(counts) {
        if n > 0 {
            *map.entry((*name).to_string()).or_default() += n;
        }
    }
}

fn reason_class(reason: &str) -> String {
    let class = reason.split(':').next().unwrap_or(reason);
    class.chars().take(60).collect()
}

/// Split a batch into per-hour batches (no copy when it spans one hour).
pub(crate) fn split_by_hour(batch: &CanonicalBatch) -> Vec<(i64, RecordBatch)> {
    split_times_by_hour(batch.record_batch(), batch.times())
}

/// Split a ticket batch into per-hour batches of creation time.
fn split_tickets_by_hour(batch: &RecordBatch) -> Vec<(i64, RecordBatch)> {
    let idx = batch
        .schema()
        .index_of(mfascope_core::ticket::col::TIME)
        .expect("tickets have a time column");
    let times = batch
        .column(idx)
        .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
        .clone();
    split_times_by_hour(batch, &times)
}

fn split_times_by_hour(
    batch: &RecordBatch,
    times: &arrow::array::TimestampMillisecondArray,
) -> Vec<(i64, RecordBatch)> {
    let hour = |ms: i64| ms.div_euclid(3_600_000);
    let Some(&first) = times.values().first() else {
        return vec![];
    };
    let h0 = hour(first);
    if times.values().iter().all(|&t| hour(t) == h0) {
        return vec![(h0, batch.clone())];
    }
    let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (i, &t) in times.values().iter().enumerate() {
        groups.entry(hour(t)).or_default().push(i as u32);
    }
    groups
        .into_iter()
        .map(|(h, rows)| {
            (
                h,
                take_record_batch(batch, &UInt32Array::from(rows)).expect("rows in range"),
            )
        })
        .collect()
}
