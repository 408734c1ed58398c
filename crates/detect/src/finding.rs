//! Findings: what a rule firing becomes. Built from rsigma results plus the triggering row,
//! rendered as a table, JSON or Alertmanager alerts, and stored as Parquet under
//! `OUT/findings/`. Findings carry canonical fields and event ids only, never secrets.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, ListBuilder, RecordBatch, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow::datatypes::SchemaRef;
use rsigma_eval::{EvaluationResult, ResultBody};
use serde::{Deserialize, Serialize};

use super::row::{Row, opt_str};
use mfascope_core::time::format_rfc3339;

/// One detection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: a hash of rule, group and time span (identical across re-runs).
    pub id: String,
    /// Sigma rule id (the title when the rule has none).
    pub rule_id: String,
    /// Sigma rule name (v2 `name`), when the rule has one.
    pub rule_name: Option<String>,
    /// Rule title.
    pub rule_title: String,
    /// Sigma level: informational, low, medium, high, critical.
    pub severity: String,
    /// MITRE ATT&CK technique ids from the rule tags (`T1621`, `T1556.006`).
    pub attack: Vec<String>,
    /// Group key of a correlation (`user=alice`), or the user of a single-event match.
    pub group_key: String,
    /// User, when the finding is about one.
    pub user: Option<String>,
    /// Client IP, when the finding is about one.
    pub src_ip: Option<String>,
    /// Earliest contributing event (second precision for correlations).
    #[serde(with = "mfascope_core::event::time_serde")]
    pub first_time: i64,
    /// The event that made the rule fire.
    #[serde(with = "mfascope_core::event::time_serde")]
    pub last_time: i64,
    /// Events (or distinct values) counted by the rule.
    pub count: u64,
    /// Ids of contributing events (capped).
    pub evidence: Vec<String>,
    /// One line for people.
    pub summary: String,
}

/// ATT&CK technique ids among Sigma tags (`attack.t1556.006` → `T1556.006`).
pub fn attack_ids(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack.t"))
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .map(|rest| format!("T{}", rest.to_ascii_uppercase()))
        .collect()
}

fn span_text(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl Finding {
    /// Turn an rsigma result for `row` into a finding; `max_evidence` caps the event ids.
    pub fn from_result(r: &EvaluationResult, row: &Row<'_>, max_evidence: usize) -> Finding {
        let h = &r.header;
        let rule_id = h.rule_id.clone().unwrap_or_else(|| h.rule_title.clone());
        let severity = h
            .level
            .as_ref()
            .map(|l| format!("{l:?}").to_ascii_lowercase())
            .unwrap_or_else(|| "medium".into());
        let (v, i) = (row.view, row.i);
        let last_time = row.time_ms();
        let this_id = v.event_id.value(i).to_string();
        let (group_key, user, src_ip, first_time, count, evidence, summary) = match &r.body {
            ResultBody::Correlation(c) => {
                let group_key = c
                    .group_key
                    .iter()
                    .map(|(k, val)| format!("{k}={val}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let pick = |name: &str| {
                    c.group_key
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, val)| val.clone())
                };
                let refs = c.event_refs.as_deref().unwrap_or_default();
                let first = refs
                    .iter()
                    .map(|e| e.timestamp.saturating_mul(1000))
                    .min()
                    .unwrap_or(last_time)
                    .min(last_time);
                let mut evidence: Vec<String> = refs.iter().filter_map(|e| e.id.clone()).collect();
                if !evidence.contains(&this_id) {
                    evidence.push(this_id.clone());
                }
                let count = c.aggregated_value.max(0.0).round() as u64;
                let what = match c.correlation_type {
                    rsigma_parser::CorrelationType::EventCount => format!("{count} events"),
                    rsigma_parser::CorrelationType::ValueCount => {
                        format!("{count} distinct values")
                    }
                    _ => "rules matched in sequence".to_string(),
                };
                let summary = format!(
                    "{}: {what} within {} for {group_key}",
                    h.rule_title,
                    span_text(c.timespan_secs)
                );
                (
                    group_key,
                    pick("user"),
                    pick("src_ip"),
                    first,
                    count,
                    evidence,
                    summary,
                )
            }
            ResultBody::Detection(d) => {
                let mut evidence = vec![this_id];
                // A travel finding is about a pair of logins: name the earlier one too.
                if let Some(from) = &row.derived.travel_from
                    && d.matched_fields
                        .iter()
                        .any(|m| m.field.starts_with("travel_"))
                {
                    evidence.insert(0, from.to_string());
                }
                let user = v.user.value(i).to_string();
                let ip = opt_str(&v.src_ip, i).map(str::to_string);
                let word = |w: Option<&'static str>| w.unwrap_or("unknown");
                let mut summary = format!(
                    "{}: {} {} {} for {user}",
                    h.rule_title,
                    word(v.action[i].map(mfascope_core::event::Action::as_str)),
                    word(v.factor[i].map(mfascope_core::event::Factor::as_str)),
                    word(v.outcome[i].map(mfascope_core::event::Outcome::as_str)),
                );
                if let Some(ip) = &ip {
                    let _ = write!(summary, " from {ip}");
                }
                if let Some(c) = opt_str(&v.country, i) {
                    let _ = write!(summary, " ({c})");
                }
                (
                    format!("user={user}"),
                    Some(user),
                    ip,
                    last_time,
                    1,
                    evidence,
                    summary,
                )
            }
        };
        let mut evidence = evidence;
        evidence.truncate(max_evidence.max(1));
        let id = {
            let key = format!("{rule_id}\u{1f}{group_key}\u{1f}{first_time}\u{1f}{last_time}");
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
        };
        Finding {
            id,
            rule_id,
            rule_name: None,
            rule_title: h.rule_title.clone(),
            severity,
            attack: attack_ids(&h.tags),
            group_key,
            user,
            src_ip,
            first_time,
            last_time,
            count,
            evidence,
            summary,
        }
    }
}

/// Arrow schema of the findings table.
pub fn findings_schema() -> SchemaRef {
    mfascope_core::finding::findings_schema()
}

/// Findings as one record batch.
pub fn to_batch(findings: &[Finding]) -> RecordBatch {
    let mut cols: Vec<StringBuilder> = (0..9).map(|_| StringBuilder::new()).collect();
    let mut lists = [
        ListBuilder::new(StringBuilder::new()),
        ListBuilder::new(StringBuilder::new()),
    ];
    let mut times = [
        TimestampMillisecondBuilder::new().with_timezone("UTC"),
        TimestampMillisecondBuilder::new().with_timezone("UTC"),
    ];
    let mut count = UInt64Builder::new();
    for f in findings {
        for (b, v) in cols.iter_mut().zip([
            Some(&f.id),
            Some(&f.rule_id),
            f.rule_name.as_ref(),
            Some(&f.rule_title),
            Some(&f.severity),
            Some(&f.group_key),
            f.user.as_ref(),
            f.src_ip.as_ref(),
            Some(&f.summary),
        ]) {
            b.append_option(v);
        }
        for (b, values) in lists.iter_mut().zip([&f.attack, &f.evidence]) {
            for v in values {
                b.values().append_value(v);
            }
            b.append(true);
        }
        times[0].append_value(f.first_time);
        times[1].append_value(f.last_time);
        count.append_value(f.count);
    }
    let mut s: Vec<ArrayRef> = cols
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    let [attack, evidence] = lists.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [first, last] = times.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let summary = s.pop().expect("summary");
    let columns = vec![
        s[0].clone(),
        s[1].clone(),
        s[2].clone(),
        s[3].clone(),
        s[4].clone(),
        attack,
        s[5].clone(),
        s[6].clone(),
        s[7].clone(),
        first,
        last,
        Arc::new(count.finish()),
        evidence,
        summary,
    ];
    RecordBatch::try_new(findings_schema(), columns).expect("columns match the findings schema")
}

/// Write `findings` to `dir/findings-<first>-<hash>.parquet` (temp file, fsync, rename). The
/// name is a function of the content, so re-running over the same data replaces the file.
/// Returns `None` when there is nothing to write.
pub fn write_parquet(dir: &Path, findings: &[Finding]) -> std::io::Result<Option<PathBuf>> {
    if findings.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let first = findings.iter().map(|f| f.first_time).min().unwrap_or(0);
    let ids: String = findings.iter().map(|f| f.id.as_str()).collect();
    let name = format!(
        "findings-{}-{:016x}.parquet",
        format_rfc3339(first).replace([':', '.'], ""),
        xxhash_rust::xxh3::xxh3_64(ids.as_bytes())
    );
    let path = dir.join(name);
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let file = File::create(&tmp)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, findings_schema(), None)
        .map_err(std::io::Error::other)?;
    writer
        .write(&to_batch(findings))
        .map_err(std::io::Error::other)?;
    let file = writer.into_inner().map_err(std::io::Error::other)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(Some(path))
}

/// Add to `ids` the ids of the findings stored under `OUT/findings/` (local or object storage)
/// in files not in `read` yet (which it then names), so a restarted or replaying run — or the
/// next owner of a Kafka partition — never stores a finding twice. Reads only the `id` column;
/// findings are few beside events, so this stays small.
pub fn read_stored_ids(
    out: &mfascope_sink::Location,
    read: &mut std::collections::HashSet<String>,
    ids: &mut std::collections::HashSet<String>,
) -> Result<(), String> {
    use arrow::array::AsArray;
    each_new_file(out, read, Some("id"), |batch, named| {
        let column = batch
            .column_by_name("id")
            .ok_or_else(|| named(&"no id column"))?;
        ids.extend(
            column
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string),
        );
        Ok(())
    })
}

/// The findings stored under `OUT/findings/` in files not in `read` yet (which it then names),
/// in file order: what a delivery that starts or resumes has to offer its receivers.
pub fn read_stored_findings(
    out: &mfascope_sink::Location,
    read: &mut std::collections::HashSet<String>,
) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    each_new_file(out, read, None, |batch, named| {
        findings.extend(from_batch(batch).map_err(|e| named(&e))?);
        Ok(())
    })?;
    Ok(findings)
}

/// Findings back from a batch of the findings schema.
fn from_batch(batch: &RecordBatch) -> Result<Vec<Finding>, String> {
    use arrow::array::{Array, AsArray, ListArray, StringArray};
    use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no {name} column"))
    };
    let text = |name: &str| -> Result<&StringArray, String> {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("{name} is not a string column"))
    };
    let list = |name: &str| -> Result<&ListArray, String> {
        column(name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| format!("{name} is not a list column"))
    };
    let time = |name: &str| {
        column(name)?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| format!("{name} is not a millisecond timestamp"))
    };
    let [
        id,
        rule_id,
        rule_name,
        rule_title,
        severity,
        group_key,
        user,
        src_ip,
        summary,
    ] = [
        "id",
        "rule_id",
        "rule_name",
        "rule_title",
        "severity",
        "group_key",
        "user",
        "src_ip",
        "summary",
    ]
    .map(text);
    let (id, rule_id, rule_name, rule_title) = (id?, rule_id?, rule_name?, rule_title?);
    let (severity, group_key, user, src_ip, summary) =
        (severity?, group_key?, user?, src_ip?, summary?);
    let (attack, evidence) = (list("attack")?, list("evidence")?);
    let (first, last) = (time("first_time")?, time("last_time")?);
    let count = column("count")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or("count is not a UInt64 column")?;
    let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    let strings = |l: &ListArray, i: usize| -> Vec<String> {
        let values = l.value(i);
        values
            .as_string::<i32>()
            .iter()
            .flatten()
            .map(str::to_string)
            .collect()
    };
    Ok((0..batch.num_rows())
        .map(|i| Finding {
            id: id.value(i).to_string(),
            rule_id: rule_id.value(i).to_string(),
            rule_name: opt(rule_name, i),
            rule_title: rule_title.value(i).to_string(),
            severity: severity.value(i).to_string(),
            attack: strings(attack, i),
            group_key: group_key.value(i).to_string(),
            user: opt(user, i),
            src_ip: opt(src_ip, i),
            first_time: first.value(i),
            last_time: last.value(i),
            count: count.value(i),
            evidence: strings(evidence, i),
            summary: summary.value(i).to_string(),
        })
        .collect())
}

/// Call `each` with the batches (only `column` when given) of every findings file under
/// `OUT/findings/` not in `read`, adding each file to `read` once it was read whole.
fn each_new_file(
    out: &mfascope_sink::Location,
    read: &mut std::collections::HashSet<String>,
    column: Option<&str>,
    mut each: impl FnMut(&RecordBatch, &dyn Fn(&dyn std::fmt::Display) -> String) -> Result<(), String>,
) -> Result<(), String> {
    use mfascope_sink::Location;
    use mfascope_sink::table::{FINDINGS, live_files};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    // The table's files; a store from before the table format has only the directory.
    let mut files: Vec<String> = match live_files(out, FINDINGS).map_err(|e| e.to_string())? {
        Some(files) => files
            .into_iter()
            .map(|f| format!("{FINDINGS}/{}", f.path))
            .collect(),
        None => match out {
            Location::Local(root) => match std::fs::read_dir(root.join(FINDINGS)) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| format!("{FINDINGS}/{}", e.file_name().to_string_lossy()))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(format!("listing {}: {e}", out.describe(FINDINGS))),
            },
            Location::Remote(remote) => remote
                .list(FINDINGS)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|k| k.trim_start_matches('/').to_string())
                .collect(),
        },
    };
    files.sort();
    for rel in files.iter().filter(|f| f.ends_with(".parquet")) {
        if read.contains(rel) {
            continue;
        }
        let Some(bytes) = out.read(rel).map_err(|e| e.to_string())? else {
            continue;
        };
        let named = |e: &dyn std::fmt::Display| format!("reading {}: {e}", out.describe(rel));
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .map_err(|e| named(&e))?;
        if let Some(column) = column {
            let mask = ProjectionMask::columns(builder.parquet_schema(), [column]);
            builder = builder.with_projection(mask);
        }
        for batch in builder.build().map_err(|e| named(&e))? {
            each(&batch.map_err(|e| named(&e))?, &named)?;
        }
        read.insert(rel.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_findings_read_back_whole_and_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let finding = |id: &str, user: Option<&str>| Finding {
            id: id.into(),
            rule_id: "r1".into(),
            rule_name: None,
            rule_title: "Push bombing".into(),
            severity: "high".into(),
            attack: vec!["T1621".into()],
            group_key: "user=alice".into(),
            user: user.map(str::to_string),
            src_ip: Some("192.0.2.1".into()),
            first_time: 1_714_654_000_000,
            last_time: 1_714_654_060_000,
            count: 12,
            evidence: vec!["e1".into(), "e2".into()],
            summary: "12 pushes".into(),
        };
        let all = vec![finding("a", Some("alice")), finding("b", None)];
        write_parquet(&dir.path().join("findings"), &all).unwrap();
        let out = mfascope_sink::Location::Local(dir.path().to_path_buf());
        let mut read = std::collections::HashSet::new();
        let back = read_stored_findings(&out, &mut read).unwrap();
        assert_eq!(back, all);
        assert!(read_stored_findings(&out, &mut read).unwrap().is_empty());
    }
}
