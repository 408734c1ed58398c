//! Query files: `-- key: value` header, SQL with `${bucket}` / `${group_cols}` parameters.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::SliError;
use mfascope_core::time::format_rfc3339;

/// Canonical columns allowed in `--by` (low cardinality; never per-user).
pub const GROUP_COLUMNS: &[&str] = &[
    "app", "factor", "source", "country", "tenant", "region", "reason", "action", "outcome",
];

/// One SLI query file.
#[derive(Debug, Clone, Serialize)]
pub struct Query {
    /// Id (`name:` header, else the file stem).
    pub name: String,
    /// One-line title.
    pub title: String,
    /// What the number means.
    pub definition: String,
    /// What the SLI counts as good.
    pub numerator: String,
    /// What the SLI counts at all.
    pub denominator: String,
    /// What can make the figure misleading, and how the query avoids it.
    pub gotchas: String,
    /// File it came from.
    pub path: PathBuf,
    /// SQL with `${…}` parameters.
    #[serde(skip)]
    pub template: String,
}

/// `(file name, text)` of each file, compiled in.
macro_rules! shipped {
    ($($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!("../../../queries/", $file)))),+]
    };
}

/// The shipped queries, compiled in so the binary works from any directory (a test checks
/// that every file of `queries/` is here).
const BUILTIN: &[(&str, &str)] = shipped![
    "m01_mfa_success_rate.sql",
    "m02_mfa_latency.sql",
    "m03_enrollment_completion.sql",
    "m04_recovery_rate.sql",
    "m05_mfa_support_tickets.sql",
    "m06_availability.sql",
    "m07_phishing_resistant_adoption.sql",
    "m08_blocked_attempts.sql",
    "m09_time_to_revoke.sql",
    "m10_rate_limit_rejections.sql",
];

/// Queries to run: `dir` when given, else `./queries` when it exists (so files added there show
/// up), else the shipped set.
pub fn resolve_queries(dir: Option<&Path>) -> Result<Vec<Query>, SliError> {
    match dir {
        Some(d) => load_queries(d),
        None if Path::new("queries").is_dir() => load_queries(Path::new("queries")),
        None => BUILTIN
            .iter()
            .map(|(name, text)| parse_query(Path::new(name), text))
            .collect(),
    }
}

/// Load every `*.sql` in `dir`, sorted by file name.
pub fn load_queries(dir: &Path) -> Result<Vec<Query>, SliError> {
    let bad = |path: &Path, reason: String| SliError::BadQuery {
        path: path.to_path_buf(),
        reason,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(bad(dir, "no .sql files".into()));
    }
    paths
        .iter()
        .map(|p| {
            parse_query(
                p,
                &std::fs::read_to_string(p).map_err(|e| bad(p, e.to_string()))?,
            )
        })
        .collect()
}

fn parse_query(path: &Path, text: &str) -> Result<Query, SliError> {
    let mut q = Query {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        title: String::new(),
        definition: String::new(),
        numerator: String::new(),
        denominator: String::new(),
        gotchas: String::new(),
        path: path.to_path_buf(),
        template: text.to_string(),
    };
    for line in text.lines().map_while(|l| l.strip_prefix("--")) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "name" => q.name = value,
            "title" => q.title = value,
            "definition" => q.definition = value,
            "numerator" => q.numerator = value,
            "denominator" => q.denominator = value,
            "gotchas" => q.gotchas = value,
            _ => {}
        }
    }
    if q.title.is_empty() {
        return Err(SliError::BadQuery {
            path: path.to_path_buf(),
            reason: "missing `-- title:` header".into(),
        });
    }
    Ok(q)
}

/// Bucket width (`--bucket`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Bucket {
    /// One minute.
    #[value(name = "1m")]
    Minute,
    /// One hour.
    #[value(name = "1h")]
    Hour,
    /// One day.
    #[value(name = "1d")]
    Day,
}

impl Bucket {
    /// Interval literal for `date_bin`.
    pub fn interval(self) -> &'static str {
        match self {
            Bucket::Minute => "1 minute",
            Bucket::Hour => "1 hour",
            Bucket::Day => "1 day",
        }
    }
}

/// Parameters shared by every query of a run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Inclusive start (epoch ms).
    pub from: Option<i64>,
    /// Exclusive end (epoch ms).
    pub to: Option<i64>,
    /// Bucket width.
    pub bucket: Bucket,
    /// Group-by columns (validated against [`GROUP_COLUMNS`]).
    pub by: Vec<String>,
    /// Which version of the store's tables to read (`--as-of`).
    pub as_of: mfascope_table::AsOf,
}

impl Params {
    /// Validated parameters.
    pub fn new(
        from: Option<i64>,
        to: Option<i64>,
        bucket: Bucket,
        by: Vec<String>,
    ) -> Result<Params, SliError> {
        for col in &by {
            if !GROUP_COLUMNS.contains(&col.as_str()) {
                return Err(SliError::BadParam(format!(
                    "--by {col}: not a groupable column; use any of {}",
                    GROUP_COLUMNS.join(", ")
                )));
            }
        }
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(SliError::BadParam("--from must be before --to".into()));
        }
        Ok(Params {
            from,
            to,
            bucket,
            by,
            as_of: mfascope_table::AsOf::Latest,
        })
    }

    /// Read the tables as of `as_of` (a version or a time) instead of their latest commit.
    #[must_use]
    pub fn as_of(mut self, as_of: mfascope_table::AsOf) -> Params {
        self.as_of = as_of;
        self
    }

    /// `WHERE` clause restricting `events_all` to the range (empty without one).
    pub(super) fn time_filter(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = self.from {
            parts.push(format!("time >= TIMESTAMP '{}'", format_rfc3339(f)));
        }
        if let Some(t) = self.to {
            parts.push(format!("time < TIMESTAMP '{}'", format_rfc3339(t)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    /// The query's SQL with its `${…}` parameters filled in.
    pub fn render(&self, q: &Query) -> String {
        let group = |alias: &str| {
            self.by.iter().fold(String::new(), |mut acc, col| {
                let _ = write!(acc, ", {alias}{col}");
                acc
            })
        };
        let join = |alias: &str| {
            self.by.iter().fold(String::new(), |mut acc, col| {
                let _ = write!(acc, " AND s.{col} IS NOT DISTINCT FROM {alias}.{col}");
                acc
            })
        };
        let mut sql = q
            .template
            .replace("${bucket}", self.bucket.interval())
            .replace("${group_cols}", &group(""))
            .replace("${join_cols}", &join("c"));
        // `${group_cols_X}` / `${join_cols_X}`: the same against table alias X.
        for (prefix, expand) in [
            ("${group_cols_", &group as &dyn Fn(&str) -> String),
            ("${join_cols_", &join),
        ] {
            while let Some(start) = sql.find(prefix) {
                let alias_start = start + prefix.len();
                let Some(len) = sql[alias_start..].find('}') else {
                    break;
                };
                let alias = sql[alias_start..alias_start + len].to_string();
                let qualified = if prefix.starts_with("${group") {
                    expand(&format!("{alias}."))
                } else {
                    expand(&alias)
                };
                sql.replace_range(start..alias_start + len + 1, &qualified);
            }
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_is_shipped_in_the_binary() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("queries");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let shipped: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(shipped, files, "BUILTIN must list every file of queries/");
        for (name, text) in BUILTIN {
            parse_query(Path::new(name), text).unwrap();
        }
    }

    #[test]
    fn header_and_parameters() {
        let q = parse_query(Path::new("m.sql"), "-- name: m\n-- title: T\nSELECT date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols} FROM events GROUP BY 1 ${group_cols}").unwrap();
        assert_eq!((q.name.as_str(), q.title.as_str()), ("m", "T"));
        let p = Params::new(
            None,
            None,
            Bucket::Hour,
            vec!["app".into(), "factor".into()],
        )
        .unwrap();
        assert_eq!(
            p.render(&q),
            "-- name: m\n-- title: T\nSELECT date_bin(INTERVAL '1 hour', time) AS bucket , app, factor FROM events GROUP BY 1 , app, factor"
        );
        assert!(
            Params::new(None, None, Bucket::Hour, vec!["user".into()]).is_err(),
            "no per-user grouping"
        );
        assert!(parse_query(Path::new("x.sql"), "SELECT 1").is_err());
    }
}
