//! The stored layout of security findings (`OUT/findings/`, a Delta table of Parquet files):
//! the schema the rule engine writes and every reader (history, reports, retention) reads.
//! It owns no finding logic (the detect crate does).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let utf8 = |n: &str, null| Field::new(n, DataType::Utf8, null);
    let list = |n: &str| {
        Field::new(
            n,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        )
    };
    let ts = |n: &str| {
        Field::new(
            n,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        utf8("id", false),
        utf8("rule_id", false),
        utf8("rule_name", true),
        utf8("rule_title", false),
        utf8("severity", false),
        list("attack"),
        utf8("group_key", false),
        utf8("user", true),
        utf8("src_ip", true),
        ts("first_time"),
        ts("last_time"),
        Field::new("count", DataType::UInt64, false),
        list("evidence"),
        utf8("summary", false),
    ]))
});

/// The Arrow schema of stored findings.
pub fn findings_schema() -> SchemaRef {
    SCHEMA.clone()
}
