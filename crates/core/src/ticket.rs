//! The canonical support ticket (the `tickets` table beside `events`, source of the M5 SLI
//! "MFA-induced support tickets"): row type, Arrow schema and batch builder. Vendor exports
//! (Zendesk, Jira, ServiceNow, CSV) are mapped to it by the normalizer; it holds no mapping.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, ListBuilder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the ticket schema, written into every Parquet file's metadata.
pub const TICKET_SCHEMA_VERSION: &str = "1";

/// Column names, in schema order.
pub mod col {
    pub const TICKET_ID: &str = "ticket_id";
    pub const TIME: &str = "time";
    pub const UPDATED: &str = "updated";
    pub const SYSTEM: &str = "system";
    pub const REQUESTER: &str = "requester";
    pub const SUBJECT: &str = "subject";
    pub const STATUS: &str = "status";
    pub const CATEGORY: &str = "category";
    pub const TAGS: &str = "tags";
    pub const MFA_RELATED: &str = "mfa_related";
    pub const MATCH_REASON: &str = "match_reason";
}

/// One support ticket as exported by a ticketing system.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ticket {
    /// The system's own id (`35436`, `ITSM-12`, `INC0010001`).
    pub id: String,
    /// Creation time, epoch milliseconds UTC (the partition time).
    pub created: i64,
    /// Last update, epoch milliseconds UTC; the latest export of a ticket wins in queries.
    pub updated: Option<i64>,
    /// `zendesk`, `jira`, `servicenow` or `csv`.
    pub system: &'static str,
    /// Who asked: an email when the export has one, else the system's user id prefixed with
    /// the system (`zendesk:user:20978392`); pseudonymized like event users when configured.
    pub requester: Option<String>,
    /// Subject or summary with OTP-like codes and secrets redacted; dropped when
    /// pseudonymizing (free text can name people).
    pub subject: Option<String>,
    /// Status as the system names it.
    pub status: Option<String>,
    /// Category, issue type or request type.
    pub category: Option<String>,
    /// Tags, labels or components.
    pub tags: Vec<String>,
    /// Why the ticket counts as MFA-related (`tag: 2fa`, `subject: "lost phone"`), if it does.
    pub match_reason: Option<String>,
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let utf8 = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let ts = |name: &str, nullable| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            nullable,
        )
    };
    Arc::new(Schema::new(vec![
        utf8(TICKET_ID, false),
        ts(TIME, false),
        ts(UPDATED, true),
        utf8(SYSTEM, false),
        utf8(REQUESTER, true),
        utf8(SUBJECT, true),
        utf8(STATUS, true),
        utf8(CATEGORY, true),
        Field::new(
            TAGS,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new(MFA_RELATED, DataType::Boolean, false),
        utf8(MATCH_REASON, true),
    ]))
});

/// The ticket table's schema (shared, cheap to clone).
pub fn ticket_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Column builders for the ticket schema.
///
/// ```
/// use mfascope_core::ticket::{Ticket, TicketBatchBuilder};
///
/// let mut b = TicketBatchBuilder::default();
/// b.append(&Ticket { id: "1".into(), created: 0, system: "zendesk", ..Default::default() });
/// let batch = b.finish();
/// assert_eq!(batch.num_rows(), 1);
/// assert_eq!(batch.schema().field(0).name(), "ticket_id");
/// ```
pub struct TicketBatchBuilder {
    id: StringBuilder,
    time: TimestampMillisecondBuilder,
    updated: TimestampMillisecondBuilder,
    system: StringBuilder,
    requester: StringBuilder,
    subject: StringBuilder,
    status: StringBuilder,
    category: StringBuilder,
    tags: ListBuilder<StringBuilder>,
    mfa_related: BooleanBuilder,
    match_reason: StringBuilder,
    rows: usize,
}

impl Default for TicketBatchBuilder {
    fn default() -> Self {
        let ts = || TimestampMillisecondBuilder::new().with_timezone("UTC");
        TicketBatchBuilder {
            id: StringBuilder::new(),
            time: ts(),
            updated: ts(),
            system: StringBuilder::new(),
            requester: StringBuilder::new(),
            subject: StringBuilder::new(),
            status: StringBuilder::new(),
            category: StringBuilder::new(),
            tags: ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
                "item",
                DataType::Utf8,
                true,
            ))),
            mfa_related: BooleanBuilder::new(),
            match_reason: StringBuilder::new(),
            rows: 0,
        }
    }
}

impl TicketBatchBuilder {
    /// Append one ticket.
    pub fn append(&mut self, t: &Ticket) {
        self.id.append_value(&t.id);
        self.time.append_value(t.created);
        self.updated.append_option(t.updated);
        self.system.append_value(t.system);
        self.requester.append_option(t.requester.as_deref());
        self.subject.append_option(t.subject.as_deref());
        self.status.append_option(t.status.as_deref());
        self.category.append_option(t.category.as_deref());
        for tag in &t.tags {
            self.tags.values().append_value(tag);
        }
        self.tags.append(true);
        self.mfa_related.append_value(t.match_reason.is_some());
        self.match_reason.append_option(t.match_reason.as_deref());
        self.rows += 1;
    }

    /// Rows appended since the last finish.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The appended tickets as a batch of [`ticket_schema`]; the builder is empty afterwards.
    pub fn finish(&mut self) -> RecordBatch {
        self.rows = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.updated.finish()),
            Arc::new(self.system.finish()),
            Arc::new(self.requester.finish()),
            Arc::new(self.subject.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.mfa_related.finish()),
            Arc::new(self.match_reason.finish()),
        ];
        RecordBatch::try_new(ticket_schema(), columns).expect("builders match the ticket schema")
    }
}
