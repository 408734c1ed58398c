//! Arrow schema of the canonical event table (`docs/schema.md` documents every column).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the canonical schema, written into every Parquet file's metadata.
pub const SCHEMA_VERSION: &str = "2";

/// Column names, in schema order.
pub mod col {
    pub const EVENT_ID: &str = "event_id";
    pub const TIME: &str = "time";
    pub const SOURCE: &str = "source";
    pub const TENANT: &str = "tenant";
    pub const APP: &str = "app";
    pub const USER: &str = "user";
    pub const ACTOR: &str = "actor";
    pub const SESSION_ID: &str = "session_id";
    pub const TRANSACTION_ID: &str = "transaction_id";
    pub const ACTION: &str = "action";
    pub const FACTOR: &str = "factor";
    pub const OUTCOME: &str = "outcome";
    pub const REASON: &str = "reason";
    pub const LATENCY_MS: &str = "latency_ms";
    pub const SRC_IP: &str = "src_ip";
    pub const COUNTRY: &str = "country";
    pub const REGION: &str = "region";
    pub const CITY: &str = "city";
    pub const ASN: &str = "asn";
    pub const USER_AGENT: &str = "user_agent";
    pub const DEVICE_ID: &str = "device_id";
    pub const PHISHING_RESISTANT: &str = "phishing_resistant";
    pub const PRIVILEGED: &str = "privileged";
    pub const VENDOR_EVENT_TYPE: &str = "vendor_event_type";
    pub const RAW: &str = "raw";

    /// Every column, in schema order.
    pub const ALL: &[&str] = &[
        EVENT_ID,
        TIME,
        SOURCE,
        TENANT,
        APP,
        USER,
        ACTOR,
        SESSION_ID,
        TRANSACTION_ID,
        ACTION,
        FACTOR,
        OUTCOME,
        REASON,
        LATENCY_MS,
        SRC_IP,
        COUNTRY,
        REGION,
        CITY,
        ASN,
        USER_AGENT,
        DEVICE_ID,
        PHISHING_RESISTANT,
        PRIVILEGED,
        VENDOR_EVENT_TYPE,
        RAW,
    ];
}

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let utf8 = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        utf8(EVENT_ID, false),
        Field::new(
            TIME,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(SOURCE, dict(), false),
        utf8(TENANT, true),
        utf8(APP, true),
        utf8(USER, false),
        utf8(ACTOR, true),
        utf8(SESSION_ID, true),
        utf8(TRANSACTION_ID, true),
        Field::new(ACTION, dict(), false),
        Field::new(FACTOR, dict(), false),
        Field::new(OUTCOME, dict(), false),
        utf8(REASON, true),
        Field::new(LATENCY_MS, DataType::UInt32, true),
        utf8(SRC_IP, true),
        utf8(COUNTRY, true),
        utf8(REGION, true),
        utf8(CITY, true),
        Field::new(ASN, DataType::UInt32, true),
        utf8(USER_AGENT, true),
        utf8(DEVICE_ID, true),
        Field::new(PHISHING_RESISTANT, DataType::Boolean, false),
        Field::new(PRIVILEGED, DataType::Boolean, true),
        utf8(VENDOR_EVENT_TYPE, false),
        utf8(RAW, true),
    ]))
});

/// The canonical event schema (shared, cheap to clone).
pub fn event_schema() -> SchemaRef {
    SCHEMA.clone()
}
