//! Dashboard view definitions (`dashboards/*.toml`): rows of panels, each panel a kind (how it
//! is drawn) and a binding (what data it shows). Parsed and validated up front, so a typo in a
//! view is an error naming the file, the panel and the valid choices — never a blank panel.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How a panel is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, strum::EnumString, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    /// A headline number with its trend as a sparkline.
    Stat,
    /// A time chart with labelled axes.
    Chart,
    /// One gauge per SLO (budget left, burn rate).
    Gauges,
    /// A sortable table with a selectable row.
    Table,
    /// The selected row (event or finding) in full, with its evidence.
    Detail,
}

/// Data a panel can show.
pub const BINDINGS: &[(&str, &[Kind], &str)] = &[
    (
        "series.mfa_success_rate",
        &[Kind::Stat, Kind::Chart],
        "2FA verifications that succeeded (ratio); as a chart, legitimate users' rate beside \
         the rate with attack traffic counted",
    ),
    (
        "series.availability",
        &[Kind::Stat, Kind::Chart],
        "minutes the 2FA path worked / minutes with traffic (M6: no verifier or probe error, \
         success rate not significantly below 98 %)",
    ),
    (
        "series.mfa_failures",
        &[Kind::Stat, Kind::Chart],
        "verifications that did not succeed (failed, denied, timed out, error) per bucket",
    ),
    (
        "series.latency_p95_by_factor",
        &[Kind::Chart, Kind::Table],
        "p95 challenge → verification latency per factor (ms)",
    ),
    (
        "series.enroll_completion",
        &[Kind::Stat, Kind::Chart],
        "enrollments completed / started (ratio)",
    ),
    (
        "series.recovery_rate",
        &[Kind::Stat, Kind::Chart],
        "recovery requests per authentication attempt (ratio)",
    ),
    (
        "series.rate_limited",
        &[Kind::Stat, Kind::Chart],
        "rate-limited attempts per bucket",
    ),
    (
        "series.mfa_tickets",
        &[Kind::Stat, Kind::Chart],
        "MFA-related support tickets created per bucket (M5; ingested ticket exports)",
    ),
    (
        "series.attack_attempts",
        &[Kind::Stat, Kind::Chart],
        "verification attempts recognised as attack traffic per bucket (push fatigue, OTP brute \
         force, spray; left out of the SLIs unless --attack-exclusion off)",
    ),
    (
        "series.mfa_ticket_share",
        &[Kind::Stat, Kind::Chart],
        "MFA-related support tickets / all tickets created (M5; ratio)",
    ),
    (
        "series.phishing_resistant_share",
        &[Kind::Stat, Kind::Chart],
        "successful verifications that were phishing-resistant (factor or vendor signal; ratio)",
    ),
    (
        "slo.budgets",
        &[Kind::Gauges, Kind::Table],
        "every SLO: error budget left, burn rates",
    ),
    (
        "alerts.firing",
        &[Kind::Table],
        "burn-rate alerts firing now",
    ),
    (
        "findings",
        &[Kind::Table],
        "detection findings (optionally only `rules`)",
    ),
    ("events.recent", &[Kind::Table], "the latest events"),
    (
        "events.idp_errors",
        &[Kind::Table],
        "the latest events with outcome `error`",
    ),
    (
        "events.enrollment",
        &[Kind::Table],
        "the latest enrollments and device registrations",
    ),
    (
        "events.verdicts",
        &[Kind::Table],
        "the latest verdicts: fraud reported by users, threats the identity provider flagged",
    ),
    (
        "top.failures_by_country",
        &[Kind::Table],
        "failed verifications by country",
    ),
    (
        "impact",
        &[Kind::Table],
        "SLOs violated, lockouts, rate limits, high-severity findings, fraud reports and IdP verdicts",
    ),
    (
        "selection",
        &[Kind::Detail],
        "the row selected in the focused table",
    ),
];

/// One panel of a row.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// How it is drawn.
    pub kind: Kind,
    /// Its title.
    pub title: String,
    /// What it shows (one of [`BINDINGS`]).
    pub bind: String,
    /// Share of the row's width.
    #[serde(default = "one")]
    pub width: u16,
    /// For `findings`: only these rules (by `name`), all when empty.
    #[serde(default)]
    pub rules: Vec<String>,
}

/// A row of panels.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Share of the screen's height.
    #[serde(default = "one")]
    pub height: u16,
    /// Lines the row keeps at least (small terminals).
    #[serde(default = "three")]
    pub min_lines: u16,
    /// Its panels, left to right.
    pub panels: Vec<Panel>,
}

/// A view (`dashboards/NAME.toml`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct View {
    /// Short name (`--view NAME`).
    pub name: String,
    /// Title in the tab bar.
    pub title: String,
    /// Default time range of its charts (`30m`, `6h`, `30d`, …).
    pub range: String,
    /// Its rows, top to bottom.
    pub rows: Vec<Row>,
}

fn one() -> u16 {
    1
}

fn three() -> u16 {
    3
}

/// A view file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Unreadable or not TOML of the expected shape.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words that say what to fix.
        reason: String,
    },
    /// No view files where they were looked for.
    #[error("no dashboards/*.toml in {0}")]
    Empty(PathBuf),
}

impl View {
    /// Parse and validate one view from `text` (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<View, SpecError> {
        let invalid = |reason: String| SpecError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let view: View = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        mfascope_core::time::parse_duration(&view.range)
            .map_err(|e| invalid(format!("range {:?}: {e}", view.range)))?;
        if view.rows.is_empty() {
            return Err(invalid("a view needs at least one [[rows]]".into()));
        }
        for (r, row) in view.rows.iter().enumerate() {
            if row.panels.is_empty() || row.height == 0 {
                return Err(invalid(format!(
                    "row {}: needs a height > 0 and at least one [[rows.panels]]",
                    r + 1
                )));
            }
            for p in &row.panels {
                let Some((_, kinds, _)) = BINDINGS.iter().find(|(b, _, _)| *b == p.bind) else {
                    let known: Vec<&str> = BINDINGS.iter().map(|(b, _, _)| *b).collect();
                    return Err(invalid(format!(
                        "panel {:?}: unknown bind {:?} (one of: {})",
                        p.title,
                        p.bind,
                        known.join(", ")
                    )));
                };
                if !kinds.contains(&p.kind) {
                    let fits: Vec<String> = kinds.iter().map(Kind::to_string).collect();
                    return Err(invalid(format!(
                        "panel {:?}: a {} cannot show {} (use: {})",
                        p.title,
                        p.kind,
                        p.bind,
                        fits.join(", ")
                    )));
                }
                if p.width == 0 {
                    return Err(invalid(format!("panel {:?}: width must be > 0", p.title)));
                }
                if !p.rules.is_empty() && p.bind != "findings" {
                    return Err(invalid(format!(
                        "panel {:?}: `rules` only applies to bind = \"findings\"",
                        p.title
                    )));
                }
            }
        }
        Ok(view)
    }
}

/// The views shipped with mfascope (`dashboards/` of the source tree), in tab order.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "executive.toml",
        include_str!("../../../dashboards/executive.toml"),
    ),
    (
        "oncall.toml",
        include_str!("../../../dashboards/oncall.toml"),
    ),
    ("debug.toml", include_str!("../../../dashboards/debug.toml")),
];

/// Load views: from `dir` when given (every `*.toml`, sorted by file name), else from
/// `./dashboards` when it exists, else the built-in ones.
pub fn load(dir: Option<&Path>) -> Result<Vec<View>, SpecError> {
    let local = Path::new("dashboards");
    let dir = dir.or_else(|| local.is_dir().then_some(local));
    let Some(dir) = dir else {
        return BUILT_IN
            .iter()
            .map(|(name, text)| View::parse(&Path::new("dashboards").join(name), text))
            .collect();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SpecError::Invalid {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort_by_key(|p| order(p));
    if files.is_empty() {
        return Err(SpecError::Empty(dir.to_path_buf()));
    }
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| SpecError::Invalid {
                path: p.clone(),
                reason: e.to_string(),
            })?;
            View::parse(p, &text)
        })
        .collect()
}

/// Shipped views first, in their order, then the others by name.
fn order(p: &Path) -> (usize, PathBuf) {
    let name = p.file_name().map(|n| n.to_string_lossy().to_string());
    let rank = BUILT_IN
        .iter()
        .position(|(b, _)| Some(b.to_string()) == name)
        .unwrap_or(BUILT_IN.len());
    (rank, p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_views_parse_in_tab_order() {
        let views = load(Some(Path::new(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/dashboards"
        ))))
        .unwrap();
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["executive", "oncall", "debug"]);
        let built_in = load(None).unwrap();
        assert_eq!(built_in.len(), 3);
    }

    fn parse(text: &str) -> Result<View, SpecError> {
        View::parse(Path::new("dashboards/x.toml"), text)
    }

    const HEAD: &str = "name = \"x\"\ntitle = \"X\"\nrange = \"1h\"\n[[rows]]\n[[rows.panels]]\n";

    #[test]
    fn a_typo_names_the_file_panel_and_choices() {
        let e = parse(&format!(
            "{HEAD}kind = \"chart\"\ntitle = \"T\"\nbind = \"series.succes\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("dashboards/x.toml: panel \"T\": unknown bind \"series.succes\""),
            "{e}"
        );
        assert!(e.contains("series.mfa_success_rate"), "{e}");
        let e = parse(&format!(
            "{HEAD}kind = \"gauges\"\ntitle = \"T\"\nbind = \"events.recent\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a gauges cannot show events.recent (use: table)"),
            "{e}"
        );
        let e = parse(&format!(
            "{HEAD}kind = \"pie\"\ntitle = \"T\"\nbind = \"findings\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown variant `pie`"), "{e}");
        let e = parse(&format!(
            "{HEAD}kind = \"table\"\ntitle = \"T\"\nbind = \"findings\"\ncolour = 1\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = parse("name = \"x\"\ntitle = \"X\"\nrange = \"soon\"\n[[rows]]\npanels = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("range \"soon\""), "{e}");
    }

    #[test]
    fn rules_filter_only_on_findings() {
        let ok = parse(&format!(
            "{HEAD}kind = \"table\"\ntitle = \"T\"\nbind = \"findings\"\nrules = [\"mfa_push_bombing\"]\n"
        ))
        .unwrap();
        assert_eq!(ok.rows[0].panels[0].rules, ["mfa_push_bombing"]);
        assert!(
            parse(&format!(
                "{HEAD}kind = \"table\"\ntitle = \"T\"\nbind = \"events.recent\"\nrules = [\"x\"]\n"
            ))
            .is_err()
        );
    }
}
