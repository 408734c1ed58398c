//! Appends canonical events column by column and finishes them into a `RecordBatch`.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, DictionaryArray, Int8Builder, RecordBatch, StringArray,
    StringBuilder, TimestampMillisecondBuilder, UInt32Builder,
};
use arrow::datatypes::Int8Type;
use strum::VariantNames;

use super::{Action, CanonicalBatch, Event, Factor, Outcome, Source, event_schema};

/// Column builders for the canonical schema.
pub struct EventBatchBuilder {
    event_id: StringBuilder,
    time: TimestampMillisecondBuilder,
    source: Int8Builder,
    tenant: StringBuilder,
    app: StringBuilder,
    user: StringBuilder,
    actor: StringBuilder,
    session_id: StringBuilder,
    transaction_id: StringBuilder,
    action: Int8Builder,
    factor: Int8Builder,
    outcome: Int8Builder,
    reason: StringBuilder,
    latency_ms: UInt32Builder,
    src_ip: StringBuilder,
    country: StringBuilder,
    region: StringBuilder,
    city: StringBuilder,
    asn: UInt32Builder,
    user_agent: StringBuilder,
    device_id: StringBuilder,
    phishing_resistant: BooleanBuilder,
    privileged: BooleanBuilder,
    vendor_event_type: StringBuilder,
    raw: StringBuilder,
    rows: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl EventBatchBuilder {
    /// Builders sized for about `rows` events.
    pub fn with_capacity(rows: usize) -> Self {
        let s = |bytes_per_row| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        EventBatchBuilder {
            event_id: s(36),
            time: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            source: Int8Builder::with_capacity(rows),
            tenant: s(8),
            app: s(16),
            user: s(24),
            actor: s(4),
            session_id: s(24),
            transaction_id: s(24),
            action: Int8Builder::with_capacity(rows),
            factor: Int8Builder::with_capacity(rows),
            outcome: Int8Builder::with_capacity(rows),
            reason: s(8),
            latency_ms: UInt32Builder::with_capacity(rows),
            src_ip: s(14),
            country: s(2),
            region: s(8),
            city: s(8),
            asn: UInt32Builder::with_capacity(rows),
            user_agent: s(96),
            device_id: s(16),
            phishing_resistant: BooleanBuilder::with_capacity(rows),
            privileged: BooleanBuilder::with_capacity(rows),
            vendor_event_type: s(32),
            raw: s(0),
            rows: 0,
        }
    }

    /// Number of events appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no event was appended since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Append one event.
    pub fn append(&mut self, e: &Event<'_>) {
        self.event_id.append_value(&e.event_id);
        self.time.append_value(e.time);
        self.source.append_value(e.source.key());
        self.tenant.append_option(e.tenant.as_deref());
        self.app.append_option(e.app.as_deref());
        self.user.append_value(&e.user);
        self.actor.append_option(e.actor.as_deref());
        self.session_id.append_option(e.session_id.as_deref());
        self.transaction_id
            .append_option(e.transaction_id.as_deref());
        self.action.append_value(e.action.key());
        self.factor.append_value(e.factor.key());
        self.outcome.append_value(e.outcome.key());
        self.reason.append_option(e.reason.as_deref());
        self.latency_ms.append_option(e.latency_ms);
        self.src_ip.append_option(e.src_ip.as_deref());
        self.country.append_option(e.country.as_deref());
        self.region.append_option(e.region.as_deref());
        self.city.append_option(e.city.as_deref());
        self.asn.append_option(e.asn);
        self.user_agent.append_option(e.user_agent.as_deref());
        self.device_id.append_option(e.device_id.as_deref());
        self.phishing_resistant.append_value(e.phishing_resistant);
        self.privileged.append_option(e.privileged);
        self.vendor_event_type.append_value(&e.vendor_event_type);
        self.raw.append_option(e.raw.as_deref());
        self.rows += 1;
    }

    /// Finish the appended rows as a [`CanonicalBatch`] (canonical by construction).
    pub fn finish_canonical(&mut self) -> CanonicalBatch {
        CanonicalBatch::built(self.finish())
    }

    /// Finish the appended events into a batch and reset the builder.
    pub fn finish(&mut self) -> RecordBatch {
        fn dict(keys: &mut Int8Builder, values: &'static [&'static str]) -> ArrayRef {
            let values = Arc::new(StringArray::from(values.to_vec()));
            Arc::new(
                DictionaryArray::<Int8Type>::try_new(keys.finish(), values)
                    .expect("keys come from the vocabulary"),
            )
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.time.finish()),
            dict(&mut self.source, Source::VARIANTS),
            Arc::new(self.tenant.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.actor.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.transaction_id.finish()),
            dict(&mut self.action, Action::VARIANTS),
            dict(&mut self.factor, Factor::VARIANTS),
            dict(&mut self.outcome, Outcome::VARIANTS),
            Arc::new(self.reason.finish()),
            Arc::new(self.latency_ms.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.city.finish()),
            Arc::new(self.asn.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.device_id.finish()),
            Arc::new(self.phishing_resistant.finish()),
            Arc::new(self.privileged.finish()),
            Arc::new(self.vendor_event_type.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(event_schema(), columns).expect("builder matches the schema")
    }
}
