//! Renderings of results: ingest summaries, Kafka state, SLO status and alert timelines,
//! findings and a run's live state as text tables, and Alertmanager payloads
//! ([`alertmanager`]). The JSON form of each result is its serde form; this module computes
//! nothing, it only lays out what it is given.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::detect::{DetectCounters, Finding};
use crate::pipeline::Summary;
use crate::run::RunReport;
use crate::slo::SloReport;
use mfascope_core::time::format_rfc3339;

pub mod alertmanager;
pub mod chart;
mod delivery;
mod posture;
pub mod report;

pub use delivery::{delivery_table, notify_status};
pub use posture::{posture_headline, posture_table};

/// Render an ingest summary as aligned text.
pub fn ingest_table(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "records        {:>12}", s.records);
    let _ = writeln!(out, "  events       {:>12}", s.events);
    if s.tickets > 0 {
        let _ = writeln!(
            out,
            "  tickets      {:>12}  ({} MFA-related)",
            s.tickets, s.mfa_tickets
        );
    }
    let _ = writeln!(out, "  dead letters {:>12}", s.deadletter);
    let _ = writeln!(out, "  ignored      {:>12}", s.ignored);
    let check = if s.records == s.events + s.tickets + s.deadletter + s.ignored {
        "ok"
    } else {
        "MISMATCH"
    };
    let _ = writeln!(
        out,
        "accounted      {check:>12}  (records = events + tickets + dead letters + ignored)"
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
        "  {:<30} {:>10} {:>16} {:>10} {:>10}",
        "partition", "messages", "committed offset", "lag", "lost"
    );
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for (name, p) in &k.partitions {
        let _ = writeln!(
            out,
            "  {:<30} {:>10} {:>16} {:>10} {:>10}",
            name,
            p.messages,
            opt(p.committed_offset),
            opt(p.lag),
            p.lost
        );
    }
    for range in &k.lost {
        let _ = writeln!(
            out,
            "  LOST {}: offsets {}..{} deleted by the broker before they were ingested",
            range.partition,
            range.from,
            range.to - 1
        );
    }
    out
}

/// What the object-storage source listed and downloaded.
pub fn objects_table(o: &crate::pipeline::object::ObjectSummary) -> String {
    let mut out = format!(
        "objects        {:>12} read, {} already ingested, {} bytes downloaded, {} listings, {} transfers resumed, {} errors\n",
        o.read, o.already_ingested, o.bytes_downloaded, o.listings, o.retries, o.errors
    );
    for (reason, n) in &o.not_logs {
        let _ = writeln!(out, "  not read: {n} {reason}");
    }
    out
}

/// One row per vendor log-API source: what it read, how it was paced, where it stands.
pub fn sources_table(sources: &[mfascope_pull::SourceReport]) -> String {
    let row = |cells: [&dyn std::fmt::Display; 10]| {
        let [a, b, c, d, e, f, g, h, i, j] = cells;
        format!("  {a:<24} {b:>9} {c:>8} {d:>6} {e:>9} {f:>10} {g:>8} {h:>7} {i:>7}  {j}\n")
    };
    let mut out = format!("sources        {:>12} polled\n", sources.len());
    out += &row([
        &"source",
        &"records",
        &"repeats",
        &"polls",
        &"requests",
        &"throttled",
        &"retried",
        &"failed",
        &"tokens",
        &"read up to",
    ]);
    for s in sources {
        let name = if s.name == s.kind {
            s.name.clone()
        } else {
            format!("{} ({})", s.name, s.kind)
        };
        out += &row([
            &name,
            &s.records,
            &s.repeats,
            &s.polls,
            &s.requests,
            &s.throttled,
            &s.retries,
            &s.errors,
            &s.tokens,
            &s.caught_up.as_deref().unwrap_or("-"),
        ]);
        if let Some(e) = &s.last_error {
            let _ = writeln!(out, "    last error: {e}");
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0))
}

/// Status table, one row per SLO.
pub fn status_table(r: &SloReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "SLO status at {} (data from {})\n",
        r.at,
        r.data_from.as_deref().unwrap_or("-")
    );
    let _ = write!(
        out,
        "{:<24} {:>8} {:>6} {:>9} {:>12} {:>9}",
        "slo", "target", "window", "sli", "budget left", "events"
    );
    for w in crate::slo::eval::BURN_WINDOWS {
        let _ = write!(out, " {:>7}", format!("burn{}", w.0));
    }
    let _ = writeln!(out, "  state");
    for s in &r.slos {
        let _ = write!(
            out,
            "{:<24} {:>8} {:>6} {:>9} {:>12} {:>9}",
            s.name,
            pct(Some(s.target)),
            s.window,
            pct(s.sli),
            pct(s.budget_remaining),
            s.total
        );
        for b in &s.burn_rates {
            let _ = write!(
                out,
                " {:>7}",
                b.rate.map_or("-".into(), |v| format!("{v:.2}"))
            );
        }
        let state = match (s.sli, s.violated, s.firing.is_empty()) {
            (None, _, _) => "no data".to_string(),
            (_, true, _) => format!("VIOLATED {}", s.firing.join(",")),
            (_, false, false) => format!("FIRING {}", s.firing.join(",")),
            _ => "ok".to_string(),
        };
        let _ = writeln!(out, "  {}", state.trim_end());
        for m in &s.maintenance {
            let _ = writeln!(out, "{:<24} ↳ {}", "", m.summary());
        }
    }
    if let Some(line) = attack_traffic_line(r) {
        let _ = writeln!(out, "\n{line}");
    }
    out
}

/// One line on the attack traffic an SLO evaluation recognised, when there was any.
pub fn attack_traffic_line(r: &SloReport) -> Option<String> {
    let a = r.attack_traffic.as_ref().filter(|a| a.attempts > 0)?;
    let how = if a.excluded {
        "left out of the SLIs and budgets (--attack-exclusion off counts them)"
    } else {
        "counted in the SLIs and budgets (--attack-exclusion off)"
    };
    Some(format!(
        "attack traffic: {} verification attempts in {} campaigns, {how}",
        a.attempts, a.campaigns
    ))
}

/// Alert episodes table; with `last`, only the most recent episodes (and a count of the rest).
pub fn alerts_table(r: &SloReport, last: Option<usize>) -> String {
    let mut out = String::new();
    if r.episodes.is_empty() {
        let _ = writeln!(
            out,
            "no alerts fired between {} and {}",
            r.data_from.as_deref().unwrap_or("-"),
            r.at
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{:<20} {:<20} {:<24} {:<18} {:<7} {:>8}  rule",
        "firing at", "resolved at", "slo", "alert", "sev", "peak"
    );
    let skip = last.map_or(0, |n| r.episodes.len().saturating_sub(n));
    if skip > 0 {
        let _ = writeln!(
            out,
            "… {skip} earlier episodes (see `mfascope alerts --data …`)"
        );
    }
    for e in &r.episodes[skip..] {
        let _ = writeln!(
            out,
            "{:<20} {:<20} {:<24} {:<18} {:<7} {:>8.2}  {}",
            e.firing_at,
            e.resolved_at.as_deref().unwrap_or("(firing)"),
            e.slo,
            e.alert,
            e.severity,
            e.peak,
            e.rule
        );
        if let Some(note) = e.attack_note() {
            let _ = writeln!(out, "{:<20} ↳ {note}", "");
        }
        if let Some(m) = &e.maintenance {
            let _ = writeln!(out, "{:<20} ↳ {}", "", m.summary());
        }
    }
    out
}

/// Findings and counters as text.
pub fn findings_text(findings: &[Finding], counters: &DetectCounters) -> String {
    format!(
        "{}\n{} findings from {} rules over {} events ({} late; {} users in history, {} evicted)\n",
        findings_table(findings),
        findings.len(),
        counters.rules,
        counters.events,
        counters.late_events,
        counters.history.users,
        counters.history.evicted_capacity + counters.history.expired,
    )
}

/// What each suppression withheld ("suppressed by …"), one line each; empty without any.
pub fn suppressed_text(suppressed: &[crate::detect::suppress::SuppressedCount]) -> String {
    let mut out = String::new();
    for s in suppressed {
        let rules = if s.rules.is_empty() {
            "every rule".to_string()
        } else {
            s.rules.join(", ")
        };
        let reason = s
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "suppressed by {}{reason}: {} events withheld from {rules}",
            s.name, s.events
        );
    }
    out
}

/// A run's live state: SLO status, the latest alert episodes and the streaming findings.
pub fn live_table(r: &RunReport) -> String {
    format!(
        "\nLive SLO state (events of this run)\n{}\n{}\nFindings (streaming rule engine)\n{}",
        status_table(&r.slo),
        alerts_table(&r.slo, Some(12)),
        findings_text(&r.detect.findings, &r.detect.counters),
    ) + &suppressed_text(&r.detect.suppressed)
        + &delivery_table(&r.delivery)
}

/// Findings as aligned text, most recent last.
pub fn findings_table(findings: &[Finding]) -> String {
    let mut out = String::new();
    if findings.is_empty() {
        out.push_str("no findings\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<24} {:<8} {:<11} {:<40} {:>5}  summary",
        "last seen", "severity", "att&ck", "group", "count"
    );
    for f in findings {
        let mut group = f.group_key.clone();
        if group.chars().count() > 40 {
            group = group.chars().take(39).collect::<String>() + "…";
        }
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:<11} {:<40} {:>5}  {}",
            format_rfc3339(f.last_time),
            f.severity,
            f.attack.first().map(String::as_str).unwrap_or("-"),
            group,
            f.count,
            f.summary
        );
    }
    out
}
