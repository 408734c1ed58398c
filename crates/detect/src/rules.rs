//! Loading Sigma rule files: the built-in set compiled into the binary (`rules/*.yml`), or a
//! folder given with `--rules` (default `./rules` when present). Each file is parsed with
//! `rsigma-parser`; parse errors name the file and the line of the offending document.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rsigma_parser::{CorrelationRule, SigmaCollection, SigmaRule, parse_sigma_yaml};

/// Logsource product of the rules written against canonical fields.
pub const CANONICAL_PRODUCT: &str = "mfascope";

/// The custom top-level Sigma field naming a rule's runbook (docs/rules.md).
pub const RUNBOOK_KEY: &str = "runbook_url";

/// The rules shipped with mfascope (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "push_fatigue.yml",
        include_str!("../../../rules/push_fatigue.yml"),
    ),
    (
        "otp_brute_force.yml",
        include_str!("../../../rules/otp_brute_force.yml"),
    ),
    (
        "mfa_spray.yml",
        include_str!("../../../rules/mfa_spray.yml"),
    ),
    (
        "recovery_abuse.yml",
        include_str!("../../../rules/recovery_abuse.yml"),
    ),
    (
        "rogue_device.yml",
        include_str!("../../../rules/rogue_device.yml"),
    ),
    (
        "mfa_disabled.yml",
        include_str!("../../../rules/mfa_disabled.yml"),
    ),
    (
        "bypass_code.yml",
        include_str!("../../../rules/bypass_code.yml"),
    ),
    ("sim_swap.yml", include_str!("../../../rules/sim_swap.yml")),
    (
        "otp_replay.yml",
        include_str!("../../../rules/otp_replay.yml"),
    ),
    (
        "impossible_travel.yml",
        include_str!("../../../rules/impossible_travel.yml"),
    ),
    (
        "vendor_verdicts.yml",
        include_str!("../../../rules/vendor_verdicts.yml"),
    ),
];

/// Rule loading failures; each names the file (and line when known).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A rules folder or file could not be read.
    #[error("reading rules {path}: {source}")]
    Io {
        /// The rule file that could not be read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A document is not valid Sigma.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file being read.
        path: String,
        /// 1-based line of the document (or of the error when the YAML parser knows it).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No rule files where some were expected.
    #[error("no Sigma rules (*.yml, *.yaml) under {0}")]
    Empty(PathBuf),
}

/// One rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// Display path (relative to the rules folder, or `builtin:<name>`).
    pub path: String,
    /// File text (kept for linting and line numbers).
    pub text: String,
    /// Parsed documents.
    pub collection: SigmaCollection,
    /// Legacy aggregations translated into correlations (lint reports them as warnings).
    pub notes: Vec<super::legacy::Note>,
}

/// All loaded rule files.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Files in load order (sorted by path).
    pub files: Vec<RuleFile>,
    /// Suppressions applied before evaluation ([`crate::suppress`]).
    pub suppressions: Option<crate::suppress::Suppressions>,
}

/// The rule files of `dir` (a folder, walked recursively, or one file) as (display path
/// relative to `dir`, text), sorted by path.
pub fn read_sources(dir: &Path) -> Result<Vec<(String, String)>, RuleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RuleError::Io { path, source }
    };
    if dir.is_file() {
        let text = std::fs::read_to_string(dir).map_err(io(dir))?;
        return Ok(vec![(dir.display().to_string(), text)]);
    }
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RuleError::Io {
            path: dir.to_path_buf(),
            source: e.into(),
        })?
        .into_iter()
        .map(walkdir::DirEntry::into_path)
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(RuleError::Empty(dir.to_path_buf()));
    }
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(io(p))?;
            Ok((p.strip_prefix(dir).unwrap_or(p).display().to_string(), text))
        })
        .collect()
}

/// True for rules written against canonical fields (logsource product `mfascope`).
pub fn is_canonical(rule: &SigmaRule) -> bool {
    rule.logsource
        .product
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(CANONICAL_PRODUCT))
}

/// 1-based line where each YAML document of `text` starts.
pub fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" && i > 0 {
            starts.push(i + 2);
        }
    }
    starts
}

/// Parse one file; any document that is not valid Sigma is an error naming its line. Sigma v1
/// pipe aggregations are first translated into correlations ([`super::legacy`]).
pub fn parse_file(path: &str, text: &str) -> Result<RuleFile, RuleError> {
    let translated = super::legacy::translate(text).map_err(|n| RuleError::Parse {
        path: path.to_string(),
        line: n.line,
        message: n.message,
    })?;
    let parsed_text = translated.text.as_str();
    let mut collection = parse_sigma_yaml(parsed_text).map_err(|e| RuleError::Parse {
        path: path.to_string(),
        line: yaml_line(&e.to_string()).unwrap_or(1),
        message: e.to_string(),
    })?;
    if let Some(message) = collection.errors.first() {
        // The parser reports per-document errors without positions: point at the first
        // document that did not produce a rule (documents are parsed in order).
        let parsed =
            collection.rules.len() + collection.correlations.len() + collection.filters.len();
        let starts = document_lines(parsed_text);
        let line = yaml_line(message)
            .or_else(|| starts.get(parsed).copied())
            .unwrap_or(1);
        return Err(RuleError::Parse {
            path: path.to_string(),
            line,
            message: message.clone(),
        });
    }
    for rule in &mut collection.rules {
        if let (None, Some(name)) = (&rule.id, &rule.name) {
            rule.id = Some(derived_id(name));
        }
    }
    Ok(RuleFile {
        path: path.to_string(),
        text: text.to_string(),
        collection,
        notes: translated.notes,
    })
}

/// A stable id for a rule that has a `name` but no `id`: rsigma feeds a correlation only from
/// detection rules that carry an id, so a base rule referenced by name alone (as correlations
/// written by hand and translated legacy aggregations do) would otherwise never count.
fn derived_id(name: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(format!("mfascope-rule:{name}").as_bytes());
    uuid::Uuid::from_u128(h).to_string()
}

/// `line N` inside a YAML error message.
fn yaml_line(message: &str) -> Option<usize> {
    let at = message.find("line ")?;
    message[at + 5..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

impl RuleSet {
    /// The built-in rules.
    pub fn builtin() -> RuleSet {
        let files = BUILTIN
            .iter()
            .map(|(name, text)| {
                parse_file(&format!("builtin:{name}"), text).expect("built-in rules parse")
            })
            .collect();
        RuleSet {
            files,
            suppressions: None,
        }
    }

    /// A set of already parsed files.
    pub fn from_files(files: Vec<RuleFile>) -> RuleSet {
        RuleSet {
            files,
            suppressions: None,
        }
    }

    /// Every `*.yml` / `*.yaml` under `dir` (recursively, sorted by path).
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleError> {
        let files = read_sources(dir)?
            .iter()
            .map(|(path, text)| parse_file(path, text))
            .collect::<Result<_, _>>()?;
        Ok(RuleSet {
            files,
            suppressions: None,
        })
    }

    /// `--rules` when given, else `./rules` when it holds rule files, else the built-in set.
    pub fn resolve(dir: Option<&Path>) -> Result<RuleSet, RuleError> {
        match dir {
            Some(d) => RuleSet::load_dir(d),
            None => match RuleSet::load_dir(Path::new("rules")) {
                Ok(set) => Ok(set),
                Err(RuleError::Empty(_) | RuleError::Io { .. }) => Ok(RuleSet::builtin()),
                Err(e) => Err(e),
            },
        }
    }

    /// These rules with `suppressions` applied before evaluation.
    pub fn with_suppressions(mut self, suppressions: crate::suppress::Suppressions) -> RuleSet {
        self.suppressions = Some(suppressions);
        self
    }

    /// Detection rules of every file.
    pub fn rules(&self) -> impl Iterator<Item = (&RuleFile, &SigmaRule)> {
        self.files
            .iter()
            .flat_map(|f| f.collection.rules.iter().map(move |r| (f, r)))
    }

    /// Correlation rules of every file.
    pub fn correlations(&self) -> impl Iterator<Item = (&RuleFile, &CorrelationRule)> {
        self.files
            .iter()
            .flat_map(|f| f.collection.correlations.iter().map(move |r| (f, r)))
    }

    /// Correlation rules that run on canonical fields (those [`RuleSet::collection`] keeps
    /// for `canonical`), with their files.
    pub fn canonical_correlations(&self) -> impl Iterator<Item = (&RuleFile, &CorrelationRule)> {
        let canonical = self.collection(true).correlations;
        self.correlations()
            .filter(move |(_, c)| canonical.iter().any(|k| k.title == c.title && k.id == c.id))
    }

    /// One collection holding the canonical-field rules (`canonical`: logsource product
    /// `mfascope`) or the vendor rules (every other product), the correlations that reference
    /// them (by id or name, through chains), and every filter.
    pub fn collection(&self, canonical: bool) -> SigmaCollection {
        self.collection_where(|rule| is_canonical(rule) == canonical)
    }

    /// The detection rules selected by `keep`, the correlations that reference them (by id or
    /// name, through chains), and every filter.
    pub fn collection_where(&self, keep: impl Fn(&SigmaRule) -> bool) -> SigmaCollection {
        let mut out = SigmaCollection::new();
        let mut refs: HashMap<String, bool> = HashMap::new();
        for (_, rule) in self.rules() {
            let kept = keep(rule);
            for key in rule.id.iter().chain(rule.name.iter()) {
                refs.insert(key.clone(), kept);
            }
            if kept {
                out.rules.push(rule.clone());
            }
        }
        // Correlations may reference other correlations: resolve to a fixed point.
        let mut pending: Vec<&CorrelationRule> = self.correlations().map(|(_, c)| c).collect();
        loop {
            let before = pending.len();
            pending.retain(|c| {
                let Some(kept) = c.rules.iter().find_map(|r| refs.get(r).copied()) else {
                    return true;
                };
                for key in c.id.iter().chain(c.name.iter()) {
                    refs.insert(key.clone(), kept);
                }
                if kept {
                    out.correlations.push((*c).clone());
                }
                false
            });
            if pending.len() == before {
                break;
            }
        }
        for f in &self.files {
            out.filters.extend(f.collection.filters.iter().cloned());
        }
        out
    }

    /// Runbooks of the rules that name one (the custom top-level field `runbook_url`, see
    /// docs/rules.md), by the id findings carry (the rule's `id`, else its title).
    pub fn runbooks(&self) -> HashMap<String, String> {
        fn url(attrs: &HashMap<String, yaml_serde::Value>) -> Option<String> {
            attrs.get(RUNBOOK_KEY)?.as_str().map(str::to_string)
        }
        let rules = self
            .rules()
            .map(|(_, r)| (&r.id, &r.title, url(&r.custom_attributes)));
        let correlations = self
            .correlations()
            .map(|(_, c)| (&c.id, &c.title, url(&c.custom_attributes)));
        rules
            .chain(correlations)
            .filter_map(|(id, title, url)| {
                Some((id.clone().unwrap_or_else(|| title.clone()), url?))
            })
            .collect()
    }

    /// Number of detection and correlation rules.
    pub fn len(&self) -> usize {
        self.rules().count() + self.correlations().count()
    }

    /// True when no rule is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Canonical fields whose values are always lower-case words (`docs/schema.md`).
const LOWER_CASE_FIELDS: &[&str] = &["action", "factor", "outcome", "source", "reason"];

/// Compile plain equality on the lower-case canonical fields as case-sensitive equality on the
/// lower-cased pattern. The result is the same as Sigma's case-insensitive default (the event
/// side is already lower case) without lower-casing every event value on every comparison.
pub fn fold_lower_case_fields(rule: &mut SigmaRule) {
    use rsigma_parser::{Detection, Modifier, SigmaValue, StringPart};
    fn walk(d: &mut Detection) {
        match d {
            Detection::AllOf(items) => {
                for item in items {
                    let plain = item.field.modifiers.is_empty()
                        && item
                            .field
                            .name
                            .as_deref()
                            .is_some_and(|n| LOWER_CASE_FIELDS.contains(&n))
                        && item.values.iter().all(|v| {
                            matches!(v, SigmaValue::String(s)
                                if s.parts.iter().all(|p| matches!(p, StringPart::Plain(_))))
                        });
                    if !plain {
                        continue;
                    }
                    for v in &mut item.values {
                        if let SigmaValue::String(s) = v {
                            s.original = s.original.to_lowercase();
                            for p in &mut s.parts {
                                if let StringPart::Plain(text) = p {
                                    *text = text.to_lowercase();
                                }
                            }
                        }
                    }
                    item.field.modifiers.push(Modifier::Cased);
                }
            }
            Detection::AnyOf(subs) => subs.iter_mut().for_each(walk),
            _ => {}
        }
    }
    rule.detection.named.values_mut().for_each(walk);
}
