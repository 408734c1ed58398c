//! `mfascope rules lint`: schema problems in rule files with `file:line`. Combines the rsigma
//! linter (Sigma specification checks, with positions), parse and compile errors, and mfascope
//! checks: canonical-field rules may only name canonical or derived fields, rules that produce
//! findings should carry an ATT&CK tag, and every canonical rule should carry test cases.

use std::path::Path;

use rsigma_parser::{Severity, SigmaCollection, lint_yaml_str};
use serde::Serialize;

use super::row::DERIVED_FIELDS;
use super::rules::{CANONICAL_PRODUCT, RuleError, RuleFile, RuleSet, parse_file};
use mfascope_core::event::event_schema;

/// One lint finding.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LintIssue {
    /// Rule file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// `error` (the rule cannot work) or `warning`.
    pub severity: &'static str,
    /// What to fix.
    pub message: String,
}

impl std::fmt::Display for LintIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.path, self.line, self.severity, self.message
        )
    }
}

/// First line of `text` that names `field` as a key (`field:` or `field|…:`), else 1.
fn line_of(text: &str, field: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('|'))
        })
        .map_or(1, |i| i + 1)
}

/// Files of `dir` (or the built-in set) as (display path, text).
fn sources(dir: Option<&Path>) -> Result<Vec<(String, String)>, RuleError> {
    match dir {
        Some(dir) => super::rules::read_sources(dir),
        None => Ok(super::rules::BUILTIN
            .iter()
            .map(|(n, t)| (format!("builtin:{n}"), t.to_string()))
            .collect()),
    }
}

/// A `date`/`modified` written the Sigma v1 way (`2021/10/10`), which SigmaHQ's older rules use
/// and pySigma reads: a warning naming the ISO form instead of rsigma's error. `None` for any
/// other finding.
fn v1_date(rule: &str, message: &str) -> Option<String> {
    if rule != "invalid_date" && rule != "invalid_modified" {
        return None;
    }
    let value = message.split('"').nth(1)?;
    let parts: Vec<&str> = value.split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !digits(parts[0], 4) || !digits(parts[1], 2) || !digits(parts[2], 2) {
        return None;
    }
    let field = if rule == "invalid_date" {
        "date"
    } else {
        "modified"
    };
    Some(format!(
        "{field} {value:?} is written the Sigma v1 way: read as {}, as pySigma does (write \
         YYYY-MM-DD) [{rule}]",
        parts.join("-")
    ))
}

/// Lint the rules under `dir` (the built-in rules when `None`).
pub fn lint(dir: Option<&Path>) -> Result<Vec<LintIssue>, RuleError> {
    let mut issues = Vec::new();
    let mut parsed: Vec<RuleFile> = Vec::new();
    for (path, text) in sources(dir)? {
        for w in lint_yaml_str(&text) {
            let severity = match w.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info | Severity::Hint => continue,
            };
            let line = w.span.map_or(1, |s| s.start_line as usize + 1);
            let rule = w.rule.to_string();
            if rule == "deprecated_aggregation_syntax" {
                continue; // translated by parse_file; its note says how, below
            }
            let issue = match v1_date(&rule, &w.message) {
                Some(message) => LintIssue {
                    path: path.clone(),
                    line,
                    severity: "warning",
                    message,
                },
                None => LintIssue {
                    path: path.clone(),
                    line,
                    severity,
                    message: format!("{} [{rule}]", w.message),
                },
            };
            issues.push(issue);
        }
        match parse_file(&path, &text) {
            Ok(f) => {
                issues.extend(f.notes.iter().map(|n| LintIssue {
                    path: path.clone(),
                    line: n.line,
                    severity: "warning",
                    message: n.message.clone(),
                }));
                parsed.push(f);
            }
            Err(RuleError::Parse {
                path,
                line,
                message,
            }) => issues.push(LintIssue {
                path,
                line,
                severity: "error",
                message,
            }),
            Err(e) => return Err(e),
        }
    }
    let set = RuleSet::from_files(parsed);
    check_fields(&set, &mut issues);
    check_metadata(&set, &mut issues);
    if let Err(e) = super::Detector::new(&set, super::DetectConfig::default(), false) {
        issues.push(LintIssue {
            path: set
                .files
                .first()
                .map_or_else(String::new, |f| f.path.clone()),
            line: 1,
            severity: "error",
            message: e.to_string(),
        });
    }
    issues.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    issues.dedup();
    Ok(issues)
}

/// Canonical rules may only use canonical and derived field names.
fn check_fields(set: &RuleSet, issues: &mut Vec<LintIssue>) {
    let schema = event_schema();
    let known = |f: &str| schema.field_with_name(f).is_ok() || DERIVED_FIELDS.contains(&f);
    let canonical = set.collection(true);
    for file in &set.files {
        let mut mine = SigmaCollection::new();
        mine.rules = file
            .collection
            .rules
            .iter()
            .filter(|r| {
                canonical
                    .rules
                    .iter()
                    .any(|c| c.id == r.id && c.title == r.title)
            })
            .cloned()
            .collect();
        mine.correlations = file
            .collection
            .correlations
            .iter()
            .filter(|r| {
                canonical
                    .correlations
                    .iter()
                    .any(|c| c.id == r.id && c.title == r.title)
            })
            .cloned()
            .collect();
        let fields = rsigma_eval::RuleFieldSet::collect(&mine, &[], false);
        for name in fields.names().filter(|f| !known(f)) {
            issues.push(LintIssue {
                path: file.path.clone(),
                line: line_of(&file.text, name),
                severity: "error",
                message: format!(
                    "unknown field `{name}` for logsource product {CANONICAL_PRODUCT}: use a \
                     canonical column (docs/schema.md) or a derived field ({})",
                    DERIVED_FIELDS.join(", ")
                ),
            });
        }
    }
}

/// Finding-producing rules need an ATT&CK tag; canonical rules need test cases; correlations
/// must reference loaded rules.
fn check_metadata(set: &RuleSet, issues: &mut Vec<LintIssue>) {
    let canonical = set.collection(true);
    let referenced = |key: &Option<String>| {
        key.as_ref().is_some_and(|k| {
            set.correlations()
                .any(|(_, c)| c.rules.iter().any(|r| r == k))
        })
    };
    let known_ref = |r: &String| {
        set.rules()
            .any(|(_, x)| x.id.as_ref() == Some(r) || x.name.as_ref() == Some(r))
            || set
                .correlations()
                .any(|(_, x)| x.id.as_ref() == Some(r) || x.name.as_ref() == Some(r))
    };
    let has_attack = |tags: &[String]| tags.iter().any(|t| t.starts_with("attack.t"));
    let warn = |file: &RuleFile, key: &str, message: String| LintIssue {
        path: file.path.clone(),
        line: line_of(&file.text, key),
        severity: "warning",
        message,
    };
    for (file, rule) in set.rules() {
        if !super::rules::is_canonical(rule)
            && !super::vendor::SPACES
                .iter()
                .any(|s| super::vendor::selects(rule, s))
        {
            issues.push(warn(
                file,
                "logsource",
                format!(
                    "`{}` is never evaluated: mfascope ingests no logsource {}/{} (supported: \
                     product mfascope, or {})",
                    rule.title,
                    rule.logsource.product.as_deref().unwrap_or("-"),
                    rule.logsource.service.as_deref().unwrap_or("-"),
                    super::vendor::SPACES
                        .iter()
                        .map(|s| format!("{}/{}", s.product, s.service))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let in_canonical = canonical
            .rules
            .iter()
            .any(|c| c.id == rule.id && c.title == rule.title);
        let standalone = !referenced(&rule.id) && !referenced(&rule.name);
        if standalone && !has_attack(&rule.tags) {
            issues.push(warn(
                file,
                "title",
                format!(
                    "`{}` produces findings but has no attack.tNNNN tag",
                    rule.title
                ),
            ));
        }
        if in_canonical
            && !rule
                .custom_attributes
                .contains_key(rsigma_parser::EXEMPLARS_KEY)
        {
            issues.push(warn(
                file,
                "title",
                format!("`{}` has no rsigma.exemplars test cases", rule.title),
            ));
        }
    }
    for (file, corr) in set.correlations() {
        for r in corr.rules.iter().filter(|r| !known_ref(r)) {
            issues.push(LintIssue {
                path: file.path.clone(),
                line: line_of(&file.text, "rules"),
                severity: "error",
                message: format!("`{}` references unknown rule `{r}`", corr.title),
            });
        }
        if !has_attack(&corr.tags) && !referenced(&corr.id) && !referenced(&corr.name) {
            issues.push(warn(
                file,
                "title",
                format!(
                    "`{}` produces findings but has no attack.tNNNN tag",
                    corr.title
                ),
            ));
        }
        if !corr
            .custom_attributes
            .contains_key(rsigma_parser::EXEMPLARS_KEY)
            && canonical.correlations.iter().any(|c| c.title == corr.title)
        {
            issues.push(warn(
                file,
                "title",
                format!("`{}` has no rsigma.exemplars test cases", corr.title),
            ));
        }
    }
}
