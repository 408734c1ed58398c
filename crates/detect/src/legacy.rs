//! Sigma v1 pipe aggregations (`condition: selection | count(field) by group > N` with
//! `detection.timeframe`), rewritten as the Sigma v2 correlation the specification replaced them
//! with, before rsigma parses the file: a base rule holding the search and an `event_count`
//! (`count()`) or `value_count` (`count(field)`, distinct values) correlation over it, grouped
//! by the `by` field, within the timeframe. The correlation keeps the rule's id, title, level and
//! metadata, so findings carry what the author wrote.
//!
//! It owns that text-to-text rewrite only; it never evaluates anything. What has no
//! correlation counterpart (`min`, `max`, `avg`, `sum`, `near`, an aggregation without
//! `timeframe`, an aggregation inside a list of conditions) is refused with the reason.

use yaml_serde::{Mapping, Value};

/// One rewritten (or refused) document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// 1-based line of the document in the original file.
    pub line: usize,
    /// What was done, or why it cannot be.
    pub message: String,
}

/// A file's text with every legacy aggregation translated.
#[derive(Debug, Clone, Default)]
pub struct Translated {
    /// The text rsigma parses (the input itself when nothing was translated).
    pub text: String,
    /// One note per translated document.
    pub notes: Vec<Note>,
}

/// Translate the legacy aggregations of a (multi-document) rule file. `Err` names the first
/// document that uses an aggregation with no correlation counterpart.
///
/// ```
/// let v1 = "title: Many failures\nid: 6a3c1f52-0000-4000-8000-000000000001\n\
///           logsource: {product: mfascope, service: auth}\n\
///           detection:\n  fail: {outcome: failure}\n  timeframe: 10m\n  \
///           condition: fail | count() by user > 5\nlevel: high\n";
/// let t = mfascope_detect::legacy::translate(v1).unwrap();
/// assert!(t.text.contains("type: event_count"));
/// assert_eq!(t.notes.len(), 1);
/// ```
pub fn translate(text: &str) -> Result<Translated, Note> {
    if !text.contains('|') {
        return Ok(Translated {
            text: text.to_string(),
            notes: vec![],
        });
    }
    let mut out = String::with_capacity(text.len() + 512);
    let mut notes = vec![];
    for (line, doc) in documents(text) {
        match translate_document(doc, line)? {
            Some((rewritten, message)) => {
                notes.push(Note { line, message });
                out.push_str(&rewritten);
            }
            None => out.push_str(doc),
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("---\n");
    }
    if let Some(joined) = out.strip_suffix("---\n") {
        out.truncate(joined.len());
    }
    if notes.is_empty() {
        out = text.to_string();
    }
    Ok(Translated { text: out, notes })
}

/// The YAML documents of `text` with the 1-based line each starts on.
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = vec![];
    let (mut start, mut start_line, mut offset) = (0, 1, 0);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "---" {
            if offset > start || i > 0 {
                docs.push((start_line, &text[start..offset]));
            }
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs.retain(|(_, d)| !d.trim().is_empty());
    docs
}

/// The search, the aggregation function and the aggregation after the pipe, when the
/// condition has one.
fn aggregation(condition: &str) -> Option<(&str, &str, &str)> {
    let (search, rest) = condition.split_once('|')?;
    let rest = rest.trim();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let func = &rest[..end];
    matches!(func, "count" | "min" | "max" | "avg" | "sum" | "near").then_some((
        search.trim(),
        func,
        rest,
    ))
}

/// A parsed `count(field) by group OP N`.
struct Count<'a> {
    field: &'a str,
    group: Option<&'a str>,
    op: &'static str,
    n: u64,
}

fn parse_count(agg: &str) -> Result<Count<'_>, String> {
    let bad = || {
        format!(
            "`| {agg}` is not a legacy aggregation mfascope can read \
             (`count([field]) [by field] >|>=|<|<=|== N`)"
        )
    };
    let rest = agg.strip_prefix("count").ok_or_else(bad)?.trim_start();
    let rest = rest.strip_prefix('(').ok_or_else(bad)?;
    let (field, rest) = rest.split_once(')').ok_or_else(bad)?;
    let mut rest = rest.trim_start();
    let mut group = None;
    if let Some(after) = rest.strip_prefix("by ") {
        let after = after.trim_start();
        let end = after
            .find(|c: char| c.is_whitespace() || "<>=!".contains(c))
            .ok_or_else(bad)?;
        group = Some(&after[..end]);
        rest = after[end..].trim_start();
    }
    let (op, rest) = [
        (">=", "gte"),
        ("<=", "lte"),
        ("==", "eq"),
        (">", "gt"),
        ("<", "lt"),
        ("=", "eq"),
    ]
    .iter()
    .find_map(|(sym, op)| rest.strip_prefix(sym).map(|r| (*op, r)))
    .ok_or_else(bad)?;
    let n = rest.trim().parse().map_err(|_| bad())?;
    Ok(Count {
        field: field.trim(),
        group,
        op,
        n,
    })
}

/// Top-level keys that describe the rule and move to the correlation.
const METADATA: &[&str] = &[
    "title",
    "id",
    "name",
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "falsepositives",
    "level",
    "related",
];

/// The rewritten document (base rule, `---`, correlation) and a note, or `None` when the
/// document has no legacy aggregation.
fn translate_document(doc: &str, line: usize) -> Result<Option<(String, String)>, Note> {
    if !doc.contains('|') {
        return Ok(None);
    }
    let Ok(Value::Mapping(rule)) = yaml_serde::from_str::<Value>(doc) else {
        return Ok(None); // rsigma reports what is wrong with it
    };
    let Some(Value::Mapping(detection)) = rule.get("detection") else {
        return Ok(None);
    };
    let refuse = |message: String| Note { line, message };
    let conditions: Vec<&str> = match detection.get("condition") {
        Some(Value::String(c)) => vec![c.as_str()],
        Some(Value::Sequence(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(None),
    };
    let Some(at) = conditions.iter().position(|c| aggregation(c).is_some()) else {
        return Ok(None);
    };
    if conditions.len() > 1 {
        return Err(refuse(
            "a list of conditions with a legacy aggregation cannot become one correlation; \
             split it into one rule per condition"
                .into(),
        ));
    }
    let (search, func, agg) = aggregation(conditions[at]).expect("found above");
    if func != "count" {
        return Err(refuse(format!(
            "legacy aggregation `| {agg}`: Sigma correlations count events (event_count), \
             distinct values (value_count) or order rules (temporal); `{func}` has no \
             counterpart, so the rule cannot run; rewrite it as a correlation rule"
        )));
    }
    let count = parse_count(agg).map_err(refuse)?;
    let Some(timeframe) = detection.get("timeframe").and_then(Value::as_str) else {
        return Err(refuse(format!(
            "legacy aggregation `| {agg}` has no `timeframe` under `detection`: without one \
             Sigma v1 counted over the whole search, which a streaming correlation cannot; \
             add e.g. `timeframe: 10m`"
        )));
    };
    let title = rule.get("title").and_then(Value::as_str).unwrap_or("rule");
    let key = rule
        .get("name")
        .or_else(|| rule.get("id"))
        .and_then(Value::as_str)
        .map_or_else(|| slug(title), str::to_string);
    let base_name = format!("{key}_events");

    // The base rule: everything but the rule's identity and aggregation.
    let mut base = Mapping::new();
    base.insert("title".into(), format!("{title} (events)").into());
    base.insert("name".into(), base_name.clone().into());
    for (k, v) in &rule {
        let k = k.as_str().unwrap_or_default();
        if k == "detection" || METADATA.contains(&k) {
            continue;
        }
        base.insert(k.into(), v.clone());
    }
    let mut det = detection.clone();
    det.remove("timeframe");
    det.insert("condition".into(), search.into());
    base.insert("detection".into(), Value::Mapping(det));
    base.insert("level".into(), "informational".into());

    // The correlation: the rule's identity and metadata, and the aggregation.
    let mut corr = Mapping::new();
    for k in METADATA {
        if let Some(v) = rule.get(*k) {
            corr.insert((*k).into(), v.clone());
        }
    }
    let mut c = Mapping::new();
    let kind = if count.field.is_empty() {
        "event_count"
    } else {
        "value_count"
    };
    c.insert("type".into(), kind.into());
    c.insert("rules".into(), Value::Sequence(vec![base_name.into()]));
    if let Some(g) = count.group {
        c.insert("group-by".into(), Value::Sequence(vec![g.into()]));
    }
    c.insert("timespan".into(), timeframe.into());
    let mut cond = Mapping::new();
    if !count.field.is_empty() {
        cond.insert("field".into(), count.field.into());
    }
    cond.insert(count.op.into(), count.n.into());
    c.insert("condition".into(), Value::Mapping(cond));
    corr.insert("correlation".into(), Value::Mapping(c));
    // Custom top-level fields (runbook_url, …) stay with the rule users see.
    for (k, v) in &rule {
        let name = k.as_str().unwrap_or_default();
        let detection_side = ["detection", "logsource", "fields"].contains(&name);
        if !METADATA.contains(&name) && !detection_side && !name.starts_with("rsigma.") {
            corr.insert(k.clone(), v.clone());
        }
    }
    let ser = |m: &Mapping| {
        yaml_serde::to_string(m).map_err(|e| Note {
            line,
            message: format!("translating the legacy aggregation: {e}"),
        })
    };
    let text = format!("{}---\n{}", ser(&base)?, ser(&corr)?);
    let message = format!(
        "legacy aggregation `| {agg}` (Sigma v1) translated into a {kind} correlation over \
         `{search}` within {timeframe}; write it as a correlation rule to silence this"
    );
    Ok(Some((text, message)))
}

/// `Many MFA failures` → `many_mfa_failures`.
fn slug(title: &str) -> String {
    let mut s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    s.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "title: Push spam\nid: 0d7c1e10-0000-4000-8000-000000000002\nstatus: test\n\
        runbook_url: https://runbooks.example/push\n\
        logsource:\n  product: mfascope\n  service: auth\n\
        detection:\n  push:\n    action: mfa_verify\n    factor: push\n    outcome: denied\n\
        \x20 timeframe: 10m\n  condition: push | count(src_ip) by user >= 3\nlevel: high\n";

    #[test]
    fn count_field_by_group_becomes_a_value_count_correlation_keeping_the_rules_identity() {
        let t = translate(&format!("title: other\n---\n{V1}")).unwrap();
        assert_eq!(t.notes.len(), 1);
        assert_eq!(t.notes[0].line, 3);
        let docs: Vec<Value> = t
            .text
            .split("\n---\n")
            .map(|d| yaml_serde::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 3, "{}", t.text);
        let (base, corr) = (&docs[1], &docs[2]);
        assert_eq!(
            base["name"].as_str(),
            Some("0d7c1e10-0000-4000-8000-000000000002_events")
        );
        assert_eq!(base["detection"]["condition"].as_str(), Some("push"));
        assert!(base["detection"].get("timeframe").is_none());
        assert!(base.get("id").is_none());
        assert_eq!(
            corr["id"].as_str(),
            Some("0d7c1e10-0000-4000-8000-000000000002")
        );
        assert_eq!(corr["level"].as_str(), Some("high"));
        assert_eq!(
            corr["runbook_url"].as_str(),
            Some("https://runbooks.example/push")
        );
        let c = &corr["correlation"];
        assert_eq!(c["type"].as_str(), Some("value_count"));
        assert_eq!(c["group-by"][0].as_str(), Some("user"));
        assert_eq!(c["timespan"].as_str(), Some("10m"));
        assert_eq!(c["condition"]["field"].as_str(), Some("src_ip"));
        assert_eq!(c["condition"]["gte"].as_u64(), Some(3));
    }

    #[test]
    fn what_has_no_correlation_counterpart_is_refused_with_the_reason() {
        let no_frame = V1.replace("  timeframe: 10m\n", "");
        let e = translate(&no_frame).unwrap_err();
        assert!(e.message.contains("no `timeframe`"), "{}", e.message);
        let max = V1.replace("count(src_ip) by user >= 3", "max(latency_ms) by user > 30");
        let e = translate(&max).unwrap_err();
        assert!(e.message.contains("`max` has no"), "{}", e.message);
        let near = V1.replace("count(src_ip) by user >= 3", "near push and other");
        assert!(translate(&near).unwrap_err().message.contains("`near`"));
        let junk = V1.replace("count(src_ip) by user >= 3", "count(src_ip) by user");
        assert!(
            translate(&junk)
                .unwrap_err()
                .message
                .contains("not a legacy aggregation")
        );
    }

    #[test]
    fn files_without_aggregations_are_untouched() {
        let modern = V1.replace(" | count(src_ip) by user >= 3", "");
        let t = translate(&modern).unwrap();
        assert_eq!(t.text, modern);
        assert!(t.notes.is_empty());
        // A pipe in a value or a field modifier is not an aggregation.
        let modifier = modern.replace("outcome: denied", "reason|contains: a|b");
        assert_eq!(translate(&modifier).unwrap().text, modifier);
    }
}
