//! Delivery as text: each receiver's outbox after a run, and `mfascope notify status` with the
//! parked notifications and why. Receivers are shown by id and scheme://host, never their
//! URL path or keys.

use std::fmt::Write;

use mfascope_notify::ReceiverStatus;
use mfascope_notify::outbox::Parked;

/// Each receiver's delivery in a run.
pub fn delivery_table(status: &[ReceiverStatus]) -> String {
    let mut out = String::new();
    if status.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nDelivery\n{:<28} {:<26} {:>9} {:>9} {:>8} {:>7} {:>7}  latency p50/p99",
        "receiver", "target", "enqueued", "delivered", "retries", "queued", "parked"
    );
    for s in status {
        let latency = s.latency_ms.map_or_else(
            || "-".to_string(),
            |(p50, p99)| format!("{p50} ms / {p99} ms"),
        );
        let _ = writeln!(
            out,
            "{:<28} {:<26} {:>9} {:>9} {:>8} {:>7} {:>7}  {latency}",
            s.receiver.id,
            s.receiver.target,
            s.enqueued,
            s.delivered,
            s.failed_attempts,
            s.queued,
            s.parked
        );
        if s.overflowed + s.expired > 0 {
            let _ = writeln!(
                out,
                "  parked in this run: {} over the outbox bound, {} over the age bound",
                s.overflowed, s.expired
            );
        }
        if s.queued > 0 {
            let _ = writeln!(
                out,
                "  {} notification(s) wait in the outbox: the next run delivers them",
                s.queued
            );
        }
        if let Some(e) = &s.last_error {
            let _ = writeln!(out, "  last error: {e}");
        }
    }
    out
}

/// `mfascope notify status`: each outbox and its parked notifications.
pub fn notify_status(outboxes: &[(ReceiverStatus, Vec<Parked>)]) -> String {
    let mut out = String::new();
    if outboxes.is_empty() {
        out.push_str("no outboxes: no run delivered to a receiver yet\n");
        return out;
    }
    for (s, parked) in outboxes {
        let oldest = s
            .oldest_ms
            .map_or_else(String::new, |ms| format!(", oldest waiting {}s", ms / 1000));
        let _ = writeln!(
            out,
            "{} ({} {}): {} queued{oldest}, {} parked",
            s.receiver.id, s.receiver.format, s.receiver.target, s.queued, s.parked
        );
        for p in parked {
            let status = p
                .status
                .map_or_else(String::new, |c| format!(" [HTTP {c}]"));
            let _ = writeln!(
                out,
                "  parked {}  {}{status}: {}",
                mfascope_core::time::format_rfc3339(p.parked_ms),
                p.key,
                p.reason
            );
            if !p.response.is_empty() {
                let line: String = p.response.chars().take(160).collect();
                let _ = writeln!(out, "    response: {}", line.replace('\n', " "));
            }
        }
    }
    out
}
