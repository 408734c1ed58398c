//! Normalizes one chunk into an Arrow batch, dead letters and counters (what a worker thread
//! does): lines, whole JSON documents, Kafka messages or polled API records. Every record ends up counted once, as
//! an event, an ignored record or a dead letter. It never orders, groups or writes anything.

use std::collections::HashMap;

use serde_json::value::RawValue;
use strum::VariantNames;

use arrow::array::RecordBatch;
use mfascope_core::event::{
    Action, CanonicalBatch, Event, EventBatchBuilder, Factor, Outcome, Source,
};
use mfascope_core::ticket::{Ticket, TicketBatchBuilder};
use mfascope_normalize::{LeafSink, LogFormat, Normalizer, Reject};
use mfascope_sink::DeadLetter;
use mfascope_source::{Chunk, ChunkKind, MessageSpan, PolledSpan};

/// Counters a worker accumulates for one chunk.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) records: u64,
    /// Support tickets, and how many of them are MFA-related.
    pub(crate) tickets: u64,
    pub(crate) mfa_tickets: u64,
    pub(crate) ignored: HashMap<String, u64>,
    pub(crate) source: [u64; Source::VARIANTS.len()],
    pub(crate) action: [u64; Action::VARIANTS.len()],
    pub(crate) factor: [u64; Factor::VARIANTS.len()],
    pub(crate) outcome: [u64; Outcome::VARIANTS.len()],
}

/// A normalized chunk.
pub(crate) struct Processed {
    pub(crate) input: u32,
    /// Position of the first record (a byte offset, or a Kafka offset).
    pub(crate) start: u64,
    /// Position after the last record.
    pub(crate) end: u64,
    pub(crate) end_line: u64,
    pub(crate) bytes: u64,
    pub(crate) batch: Option<CanonicalBatch>,
    /// Support tickets (of the ticket schema).
    pub(crate) tickets: Option<RecordBatch>,
    /// Where each row of `batch` came from.
    pub(crate) rows: Vec<Row>,
    pub(crate) dead: Vec<DeadLetter>,
    pub(crate) counts: Counts,
}

/// Where an event came from: its record's line and byte offset, and a hash of the record's
/// bytes (repeated records are recognized by id and content).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) offset: u64,
    pub(crate) content: u64,
}

/// Collects the leaves of one chunk.
struct ChunkSink {
    builder: EventBatchBuilder,
    /// Created at the first ticket: most chunks hold none, and an empty builder per chunk
    /// allocated every column.
    tickets: Option<TicketBatchBuilder>,
    /// Where each event appended to `builder` came from.
    rows: Vec<Row>,
    dead: Vec<DeadLetter>,
    counts: Counts,
    path: String,
    line: u64,
    record_offset: u64,
    format_hint: Option<&'static str>,
    /// Dead letters keep no record text (pseudonymized ingest).
    withhold_raw: bool,
}

impl LeafSink for ChunkSink {
    fn event(&mut self, offset: usize, raw: &[u8], e: Event<'_>) {
        self.counts.records += 1;
        self.rows.push(Row {
            line: self.line,
            offset: self.record_offset + offset as u64,
            content: xxhash_rust::xxh3::xxh3_64(raw),
        });
        self.counts.source[e.source.key() as usize] += 1;
        self.counts.action[e.action.key() as usize] += 1;
        self.counts.factor[e.factor.key() as usize] += 1;
        self.counts.outcome[e.outcome.key() as usize] += 1;
        self.builder.append(&e);
    }
    fn ignored(&mut self, _offset: usize, kind: String) {
        self.counts.records += 1;
        *self.counts.ignored.entry(kind).or_default() += 1;
    }
    fn dead(&mut self, offset: usize, raw: &[u8], reject: Reject) {
        self.counts.records += 1;
        let format = reject.format.map(LogFormat::as_str).or(self.format_hint);
        let (path, line, offset) = (&self.path, self.line, self.record_offset + offset as u64);
        // Pseudonymized ingest: the text would carry identities (and costs a redaction pass).
        self.dead.push(if self.withhold_raw {
            DeadLetter::withheld(path, line, offset, format, reject.reason, raw.len() as u64)
        } else {
            DeadLetter::new(path, line, offset, format, reject.reason, raw)
        });
    }
    fn ticket(&mut self, _offset: usize, _raw: &[u8], t: Ticket) {
        self.counts.records += 1;
        self.counts.tickets += 1;
        self.counts.mfa_tickets += u64::from(t.match_reason.is_some());
        self.tickets.get_or_insert_default().append(&t);
    }
}

impl ChunkSink {
    fn new(normalizer: &Normalizer, chunk: &Chunk) -> ChunkSink {
        ChunkSink {
            builder: EventBatchBuilder::with_capacity(chunk.lines as usize + 1),
            tickets: None,
            rows: Vec::new(),
            dead: Vec::new(),
            counts: Counts::default(),
            path: chunk.path.to_string(),
            line: chunk.first_line,
            record_offset: chunk.start,
            format_hint: None,
            withhold_raw: normalizer.withholds_raw(),
        }
    }

    /// What the chunk became, covering input positions `start..end`.
    fn finish(mut self, input: u32, start: u64, end: u64, end_line: u64, bytes: u64) -> Processed {
        Processed {
            input,
            start,
            end,
            end_line,
            bytes,
            batch: (!self.builder.is_empty()).then(|| self.builder.finish_canonical()),
            tickets: self
                .tickets
                .as_mut()
                .filter(|t| !t.is_empty())
                .map(TicketBatchBuilder::finish),
            rows: self.rows,
            dead: self.dead,
            counts: self.counts,
        }
    }
}

pub(crate) fn process_chunk(normalizer: &mut Normalizer, chunk: &Chunk) -> Processed {
    let data = &chunk.data;
    let mut sink = ChunkSink::new(normalizer, chunk);
    match &chunk.kind {
        ChunkKind::Lines => {
            let mut pos = 0usize;
            while pos < data.len() {
                let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
                sink.record_offset = chunk.start + pos as u64;
                normalizer.record(&data[pos..end], &mut sink);
                sink.line += 1;
                pos = end + 1;
            }
        }
        ChunkKind::Document => process_document(normalizer, chunk, &mut sink),
        ChunkKind::Csv => normalizer.csv_tickets(
            data,
            &mut CsvRows {
                sink: &mut sink,
                data,
                counted: 0,
            },
        ),
        ChunkKind::Messages(spans) => return process_messages(normalizer, chunk, spans, sink),
        ChunkKind::Polled(spans) => return process_polled(normalizer, chunk, spans, sink),
    }
    let end = chunk.start + data.len() as u64;
    sink.finish(
        chunk.input,
        chunk.start,
        end,
        chunk.first_line + chunk.lines,
        data.len() as u64,
    )
}

/// Positions each CSV row (line and offset, from its byte offset) before the chunk's sink
/// takes it: rows arrive in order, so newlines are counted once.
struct CsvRows<'a> {
    sink: &'a mut ChunkSink,
    data: &'a [u8],
    counted: usize,
}

impl CsvRows<'_> {
    fn at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.data.len());
        if offset > self.counted {
            self.sink.line +=
                memchr::memchr_iter(b'\n', &self.data[self.counted..offset]).count() as u64;
            self.counted = offset;
        }
        offset
    }
}

impl LeafSink for CsvRows<'_> {
    fn event(&mut self, offset: usize, raw: &[u8], event: Event<'_>) {
        let at = self.at(offset);
        self.sink.event(at, raw, event);
    }
    fn ignored(&mut self, offset: usize, kind: String) {
        let at = self.at(offset);
        self.sink.ignored(at, kind);
    }
    fn dead(&mut self, offset: usize, raw: &[u8], reject: Reject) {
        let at = self.at(offset);
        self.sink.dead(at, raw, reject);
    }
    fn ticket(&mut self, offset: usize, raw: &[u8], ticket: Ticket) {
        let at = self.at(offset);
        self.sink.ticket(at, raw, ticket);
    }
}

/// What one chunk became: every record counted once, as an event, an ignored record or a dead
/// letter. The same path the ingest workers take, exposed for fuzzing and tests.
#[derive(Debug)]
pub struct ChunkTally {
    /// Records seen (leaves of envelopes and arrays count one each).
    pub records: u64,
    /// The events, as the batch the Parquet sink would write.
    pub batch: Option<CanonicalBatch>,
    /// Deliberately ignored records.
    pub ignored: u64,
    /// Records that failed, with their reasons.
    pub dead: Vec<DeadLetter>,
}

/// Normalize one chunk as an ingest worker does.
pub fn normalize_chunk(normalizer: &mut Normalizer, chunk: &Chunk) -> ChunkTally {
    let p = process_chunk(normalizer, chunk);
    ChunkTally {
        records: p.counts.records,
        batch: p.batch,
        ignored: p.counts.ignored.values().sum(),
        dead: p.dead,
    }
}

/// Split a multi-line document into top-level JSON values and normalize each.
fn process_document(normalizer: &mut Normalizer, chunk: &Chunk, sink: &mut ChunkSink) {
    let data = &chunk.data;
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<&RawValue>();
    let mut counted_to = 0usize;
    let mut line = chunk.first_line;
    loop {
        let before = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let bytes = value.get().as_bytes();
                let offset = bytes.as_ptr() as usize - data.as_ptr() as usize;
                line += memchr::memchr_iter(b'\n', &data[counted_to..offset]).count() as u64;
                counted_to = offset;
                sink.line = line;
                sink.record_offset = chunk.start + offset as u64;
                normalizer.record(bytes, sink);
            }
            Some(Err(e)) => {
                let rest = &data[before..];
                let skip = rest
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(0);
                let offset = before + skip;
                line += memchr::memchr_iter(b'\n', &data[counted_to..offset]).count() as u64;
                sink.line = line;
                sink.record_offset = chunk.start + offset as u64;
                sink.dead(
                    0,
                    &data[offset..],
                    Reject {
                        format: None,
                        reason: format!(
                            "invalid JSON document at line {} column {}: {e}",
                            chunk.first_line + e.line() as u64 - 1,
                            e.column()
                        ),
                    },
                );
                break;
            }
        }
    }
}

/// Normalize Kafka messages: each is one record or several on lines of their own, and dead
/// letters name the message offset (as line and offset). An empty message is a dead letter too:
/// nothing lost, nothing invented.
fn process_messages(
    normalizer: &mut Normalizer,
    chunk: &Chunk,
    spans: &[MessageSpan],
    mut sink: ChunkSink,
) -> Processed {
    let data = &chunk.data;
    let mut from = 0;
    for span in spans {
        let payload = &data[from..span.end];
        from = span.end;
        sink.line = span.offset;
        sink.record_offset = span.offset;
        let mut records = 0;
        let mut pos = 0;
        while pos < payload.len() {
            let end = memchr::memchr(b'\n', &payload[pos..]).map_or(payload.len(), |i| pos + i);
            let record = &payload[pos..end];
            if !record.iter().all(u8::is_ascii_whitespace) {
                normalizer.record(record, &mut sink);
                records += 1;
            }
            pos = end + 1;
        }
        if records == 0 {
            sink.dead(
                0,
                payload,
                Reject {
                    format: None,
                    reason: "empty Kafka message".into(),
                },
            );
        }
    }
    let first = spans.first().map_or(chunk.start, |s| s.offset);
    let end = spans.last().map_or(first, |s| s.offset + 1);
    sink.finish(chunk.input, first, end, 0, data.len() as u64)
}

/// Normalize records polled from a vendor API: each span is one JSON value. Dead letters name
/// the stream (path), line 0 and the record's time in milliseconds as offset (the raw record
/// carries the vendor id). The position committed is the last span's cursor; the chunk's
/// start, which names its segment, is a hash of the first cursor (unique per record).
fn process_polled(
    normalizer: &mut Normalizer,
    chunk: &Chunk,
    spans: &[PolledSpan],
    mut sink: ChunkSink,
) -> Processed {
    let data = &chunk.data;
    let mut from = 0;
    sink.line = 0;
    for span in spans {
        sink.record_offset = span.cursor.time_ms;
        normalizer.record(&data[from..span.end], &mut sink);
        from = span.end;
    }
    let Some(last) = spans.last() else {
        return sink.finish(chunk.input, chunk.start, chunk.start, 0, 0);
    };
    let first = spans[0].cursor;
    let mut named = [0u8; 16];
    named[..8].copy_from_slice(&first.time_ms.to_le_bytes());
    named[8..].copy_from_slice(&first.key.to_le_bytes());
    let start = xxhash_rust::xxh3::xxh3_64(&named);
    sink.finish(
        chunk.input,
        start,
        last.cursor.time_ms,
        last.cursor.key,
        data.len() as u64,
    )
}
