//! Planned maintenance windows (`--maintenance FILE`): when they are, what they cover (SLOs,
//! apps, factors), why, which alert severities they silence, and whether their events leave
//! the error budget. Owns the file format and attaching windows to SLOs; the counting apart is
//! the aggregator's ([`mfascope_sli::live::Exclusion`]), the subtraction and the silencing the
//! evaluator's. Never reads events.
//!
//! ```yaml
//! windows:
//!   - name: push-provider-migration
//!     start: 2024-05-02T13:00:00Z
//!     end: 2024-05-02T14:30:00Z
//!     reason: Okta Verify push provider migration (CHG-4711)
//!     scope: {slos: [mfa-availability], factors: [push]}   # optional; empty: everything
//!     silence: [ticket]                                     # the default
//!     excludeFromBudget: true                               # default false
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{Slo, SpecError};
use mfascope_core::event::Factor;
use mfascope_core::time::{TimeRange, format_rfc3339, parse_rfc3339};
use mfascope_sli::live::Exclusion;

/// One maintenance window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Window {
    /// Position in its file: the index of its [`Exclusion`] in the aggregator's config.
    #[serde(skip)]
    pub index: usize,
    /// Name (unique in the file).
    pub name: String,
    /// Start (RFC 3339, inclusive).
    pub start: String,
    /// End (RFC 3339, exclusive).
    pub end: String,
    /// Epoch ms of `start`.
    #[serde(skip)]
    pub start_ms: i64,
    /// Epoch ms of `end`.
    #[serde(skip)]
    pub end_ms: i64,
    /// Why (shown wherever the window has an effect).
    pub reason: String,
    /// SLOs it applies to (empty: every SLO).
    pub slos: Vec<String>,
    /// Apps whose events it covers (empty: every app).
    pub apps: Vec<String>,
    /// Factors whose events it covers (empty: every factor).
    pub factors: Vec<Factor>,
    /// Alert severities not delivered when they start firing inside it.
    pub silence: Vec<String>,
    /// Its events leave the SLIs and error budgets of its SLOs (and so their burn rates).
    pub exclude_from_budget: bool,
}

impl Window {
    /// Whether instant `t` (epoch ms) is inside it.
    pub fn contains(&self, t: i64) -> bool {
        self.start_ms <= t && t < self.end_ms
    }

    /// Whether it applies to the SLO named `slo`.
    pub fn applies_to(&self, slo: &str) -> bool {
        self.slos.is_empty() || self.slos.iter().any(|s| s == slo)
    }

    /// What the aggregator counts apart for it.
    pub fn exclusion(&self) -> Exclusion {
        Exclusion {
            range: TimeRange::new(self.start_ms, self.end_ms),
            apps: self.apps.clone(),
            factors: self.factors.clone(),
        }
    }

    /// `name (reason)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.reason)
    }
}

/// What a window did to an alert episode that started firing inside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MaintenanceNote {
    /// The window's name.
    pub window: String,
    /// Its reason.
    pub reason: String,
    /// The episode is not delivered (its severity is one the window silences).
    pub silenced: bool,
}

impl MaintenanceNote {
    /// One line on it: `silenced (not delivered): maintenance NAME (REASON)` or `delivered: …`.
    pub fn summary(&self) -> String {
        let what = if self.silenced {
            "silenced (not delivered)"
        } else {
            "delivered"
        };
        format!("{what}: maintenance {} ({})", self.window, self.reason)
    }

    /// The note for an episode of `severity` firing at `t`, from the first of `windows`
    /// containing `t`.
    pub fn at(windows: &[Window], t: i64, severity: &str) -> Option<MaintenanceNote> {
        let w = windows.iter().find(|w| w.contains(t))?;
        Some(MaintenanceNote {
            window: w.name.clone(),
            reason: w.reason.clone(),
            silenced: w.silence.iter().any(|s| s == severity),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    windows: Vec<WindowDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WindowDoc {
    name: String,
    start: String,
    end: String,
    reason: String,
    #[serde(default)]
    scope: ScopeDoc,
    silence: Option<Vec<String>>,
    #[serde(default)]
    exclude_from_budget: bool,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeDoc {
    #[serde(default)]
    slos: Vec<String>,
    #[serde(default)]
    apps: Vec<String>,
    #[serde(default)]
    factors: Vec<String>,
}

/// Read a maintenance file.
pub fn read(path: &Path) -> Result<Vec<Window>, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
        path: path.to_path_buf(),
        reason: format!("{e}: give --maintenance a readable YAML file"),
    })?;
    parse(path, &text)
}

/// Parse maintenance windows from `text` (read from `path`).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Window>, SpecError> {
    let invalid = |what: String, reason: String| SpecError::Invalid {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let doc: FileDoc = serde_saphyr::from_str(text).map_err(|e| {
        invalid(
            "YAML".into(),
            format!("{e} (expected `windows:` with name, start, end, reason)"),
        )
    })?;
    let mut out: Vec<Window> = Vec::new();
    for (index, w) in doc.windows.into_iter().enumerate() {
        let what = format!("windows[{index}] {:?}", w.name);
        let time = |field: &str, s: &str| {
            parse_rfc3339(s).map_err(|e| invalid(format!("{what}.{field}"), e))
        };
        let (start_ms, end_ms) = (time("start", &w.start)?, time("end", &w.end)?);
        if end_ms <= start_ms {
            return Err(invalid(what, "end must be after start".into()));
        }
        if out.iter().any(|o| o.name == w.name) {
            return Err(invalid(
                what,
                "the name is used twice; names must be unique".into(),
            ));
        }
        let factors = w
            .scope
            .factors
            .iter()
            .map(|f| {
                f.parse::<Factor>().map_err(|_| {
                    invalid(
                        format!("{what}.scope.factors"),
                        format!("unknown factor {f:?} (use the canonical names: push, totp, …)"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        out.push(Window {
            index,
            name: w.name,
            start: format_rfc3339(start_ms),
            end: format_rfc3339(end_ms),
            start_ms,
            end_ms,
            reason: w.reason,
            slos: w.scope.slos,
            apps: w.scope.apps,
            factors,
            silence: w.silence.unwrap_or_else(|| vec!["ticket".to_string()]),
            exclude_from_budget: w.exclude_from_budget,
        });
    }
    Ok(out)
}

/// Attach `windows` (read from `path`) to the SLOs they apply to; a window naming an SLO not
/// in `slos` is an error.
pub fn attach(slos: &mut [Slo], windows: &[Window], path: &Path) -> Result<(), SpecError> {
    for w in windows {
        if let Some(missing) = w.slos.iter().find(|n| !slos.iter().any(|s| &s.name == *n)) {
            let known: Vec<&str> = slos.iter().map(|s| s.name.as_str()).collect();
            return Err(SpecError::Invalid {
                path: PathBuf::from(path),
                what: format!("window {:?}.scope.slos", w.name),
                reason: format!("no SLO {missing:?} (SLOs: {})", known.join(", ")),
            });
        }
        for slo in slos.iter_mut().filter(|s| w.applies_to(&s.name)) {
            slo.maintenance.push(w.clone());
        }
    }
    Ok(())
}

/// The aggregator's exclusions for the windows attached to `slos`, at their file positions
/// (positions of windows no SLO has cover nothing).
pub fn exclusions(slos: &[Slo]) -> Vec<Exclusion> {
    let windows = || slos.iter().flat_map(|s| &s.maintenance);
    let n = windows().map(|w| w.index + 1).max().unwrap_or(0);
    let mut out = vec![
        Exclusion {
            range: TimeRange::new(0, 0),
            apps: Vec::new(),
            factors: Vec::new(),
        };
        n
    ];
    for w in windows() {
        out[w.index] = w.exclusion();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Vec<Window>, String> {
        parse(Path::new("m.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_window_is_read_with_its_defaults() {
        let w = parse_text(
            "windows:\n  - name: m1\n    start: 2024-05-02T13:00:00Z\n    end: 2024-05-02T14:00:00Z\n    reason: upgrade\n    scope: {factors: [push]}\n",
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].start_ms, w[0].end_ms - w[0].start_ms),
            (1_714_654_800_000, 3_600_000)
        );
        assert_eq!(w[0].silence, ["ticket"]);
        assert_eq!(w[0].factors, [Factor::Push]);
        assert!(!w[0].exclude_from_budget && w[0].applies_to("any"));
        assert!(w[0].contains(1_714_654_800_000) && !w[0].contains(w[0].end_ms));
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let bad_end = parse_text(
            "windows:\n  - {name: m, start: 2024-05-02T13:00:00Z, end: 2024-05-02T12:00:00Z, reason: r}\n",
        )
        .unwrap_err();
        assert!(
            bad_end.contains("m.yaml") && bad_end.contains("end must be after start"),
            "{bad_end}"
        );
        let factor = parse_text(
            "windows:\n  - {name: m, start: 2024-05-02T13:00:00Z, end: 2024-05-02T14:00:00Z, reason: r, scope: {factors: [pidgeon]}}\n",
        )
        .unwrap_err();
        assert!(
            factor.contains("scope.factors") && factor.contains("pidgeon"),
            "{factor}"
        );
        let field = parse_text(
            "windows:\n  - {name: m, start: 2024-05-02T13:00:00Z, end: 2024-05-02T14:00:00Z, reason: r, excludeFromBudgets: true}\n",
        )
        .unwrap_err();
        assert!(field.contains("excludeFromBudgets"), "{field}");
    }

    #[test]
    fn windows_attach_to_the_slos_they_name_and_an_unknown_slo_is_an_error() {
        let mut slos = crate::resolve_slos(None).unwrap();
        let text = |slo: &str| {
            format!(
                "windows:\n  - {{name: m, start: 2024-05-02T13:00:00Z, end: 2024-05-02T14:00:00Z, reason: r, scope: {{slos: [{slo}]}}}}\n"
            )
        };
        let w = parse_text(&text("mfa-availability")).unwrap();
        attach(&mut slos, &w, Path::new("m.yaml")).unwrap();
        let with: Vec<&str> = slos
            .iter()
            .filter(|s| !s.maintenance.is_empty())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(with, ["mfa-availability"]);
        assert_eq!(exclusions(&slos).len(), 1);
        let unknown = parse_text(&text("mfa-availabilty")).unwrap();
        let e = attach(&mut slos, &unknown, Path::new("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.yaml") && e.contains("scope.slos") && e.contains("mfa-availabilty"),
            "{e}"
        );
    }

    #[test]
    fn a_factor_scoped_window_leaves_only_its_events_out_of_the_budget() {
        use mfascope_core::event::{Action, Event, EventBatchBuilder, Outcome, Source};
        use mfascope_sli::live::Aggregator;
        let start = 1_714_557_600_000; // 2024-05-01T10:00:00Z
        let mut events = EventBatchBuilder::default();
        for i in 0..660 {
            // Pushes every 6 s for an hour (every 10th fails), then 60 TOTP successes.
            let (factor, outcome, t) = match i {
                0..600 if i % 10 == 0 => (Factor::Push, Outcome::Failure, start + i * 6_000),
                0..600 => (Factor::Push, Outcome::Success, start + i * 6_000),
                _ => (Factor::Totp, Outcome::Success, start + (i - 600) * 60_000),
            };
            let step = (Action::MfaVerify, factor, outcome);
            events.append(&Event::new(
                Source::Okta,
                format!("e{i}"),
                t,
                "alice",
                "t",
                step,
            ));
        }
        let batch = events.finish_canonical();
        let report = |windows: &str| {
            let mut slos = crate::resolve_slos(None).unwrap();
            let w = parse_text(windows).unwrap();
            attach(&mut slos, &w, Path::new("m.yaml")).unwrap();
            let mut agg = Aggregator::new(crate::live_config(&slos));
            agg.observe(&batch);
            let r = crate::evaluate(&slos, &agg, None);
            r.slos
                .into_iter()
                .find(|s| s.name == "mfa-success-rate")
                .unwrap()
        };
        let before = report("windows: []\n");
        assert_eq!((before.good, before.total), (600, 660));
        let window = "windows:\n  - {name: m, start: 2024-05-01T10:30:00Z, end: 2024-05-01T10:40:00Z, reason: r, scope: {factors: [push]}, excludeFromBudget: true}\n";
        let after = report(window);
        // 100 pushes in the window (10 failed) leave; the TOTP successes in it stay.
        assert_eq!((after.good, after.total), (510, 560));
        let m = &after.maintenance[0];
        assert_eq!((m.events, m.bad, m.excluded_from_budget), (100, 10, true));
        let counted = report(&window.replace("true", "false"));
        assert_eq!((counted.good, counted.total), (600, 660));
        assert_eq!(
            (
                counted.maintenance[0].events,
                counted.maintenance[0].excluded_from_budget
            ),
            (100, false)
        );
    }
}
