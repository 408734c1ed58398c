//! Human-readable renderings of command results (the JSON form is the serde form).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::pipeline::Summary;

/// Render an ingest summary as aligned text.
pub fn ingest_table(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "records        {:>12}", s.records);
    let _ = writeln!(out, "  events       {:>12}", s.events);
    let _ = writeln!(out, "  dead letters {:>12}", s.deadletter);
    let _ = writeln!(out, "  ignored      {:>12}", s.ignored);
    let check = if s.records == s.events + s.deadletter + s.ignored {
        "ok"
    } else {
        "MISMATCH"
    };
    let _ = writeln!(
        out,
        "accounted      {:>12}  (records = events + dead letters + ignored)",
        check
    );
    let _ = writeln!(out, "inputs         {:>12}", s.inputs);
    let _ = writeln!(out, "bytes in       {:>12}", s.bytes_in);
    if s.bytes_already_ingested > 0 {
        let _ = writeln!(
            out,
            "already done   {:>12}  bytes skipped (committed by an earlier run)",
            s.bytes_already_ingested
        );
    }
    let _ = writeln!(out, "files written  {:>12}", s.files_written);
    let _ = writeln!(
        out,
        "elapsed        {:>11.2}s  ({:.0} events/s)",
        s.elapsed_s, s.events_per_s
    );
    if s.latency_derived > 0 {
        let _ = writeln!(
            out,
            "latency paired {:>12}  verifications",
            s.latency_derived
        );
    }
    for u in &s.unreadable {
        let _ = writeln!(out, "UNREADABLE     {}: {}", u.path, u.reason);
    }
    section(&mut out, "by source", &s.by_source);
    section(&mut out, "by action", &s.by_action);
    section(&mut out, "by factor", &s.by_factor);
    section(&mut out, "by outcome", &s.by_outcome);
    section(&mut out, "ignored by type", &s.ignored_by_type);
    section(&mut out, "dead letters by reason", &s.deadletter_by_reason);
    out
}

fn section(out: &mut String, title: &str, counts: &BTreeMap<String, u64>) {
    if counts.is_empty() {
        return;
    }
    let total: u64 = counts.values().sum();
    let _ = writeln!(out, "\n{title}");
    let mut rows: Vec<_> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, v) in rows {
        let _ = writeln!(
            out,
            "  {k:<40} {v:>10}  {:>5.1}%",
            *v as f64 * 100.0 / total.max(1) as f64
        );
    }
}

/// The Kafka part of an ingest summary: per partition messages, committed offset and lag.
pub fn kafka_table(k: &crate::pipeline::kafka::KafkaSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kafka          {:>12} assignments, {} revocations, {} offset commits, {} redelivered, {} consumer errors",
        k.assignments, k.revocations, k.offset_commits, k.redelivered, k.consumer_errors
    );
    let _ = writeln!(
        out,
        "  {:<30} {:>10} {:>16} {:>10}",
        "partition", "messages", "committed offset", "lag"
    );
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for (name, p) in &k.partitions {
        let _ = writeln!(
            out,
            "  {:<30} {:>10} {:>16} {:>10}",
            name,
            p.messages,
            opt(p.committed_offset),
            opt(p.lag)
        );
    }
    out
}
