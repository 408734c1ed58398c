//! Tuning without forking rules: suppressions (allow-lists) read from a TOML file — users,
//! client IPs or networks, apps and an event-time window, for every rule or for named ones —
//! matched against each event before the rule engine evaluates it. An event a suppression
//! matches never reaches the rules it is withheld from: for every rule the engine skips it; for
//! named rules a Sigma filter (`… and not suppressed`) is added to them and to the base rules
//! their correlations count. Each suppression counts the events it withheld. Stored events
//! are never touched.
//!
//! ```toml
//! [[suppress]]
//! name = "red-team-q1"                       # shown wherever the count is
//! reason = "authorised red-team exercise, SEC-1234"
//! rules = ["mfa_push_bombing"]               # rule names or ids; omit for every rule
//! users = ["svc-redteam@acme.example"]       # any of them (case-insensitive)
//! src_ips = ["203.0.113.0/24", "198.51.100.7"]
//! apps = ["Okta Dashboard"]
//! from = "2026-03-01T00:00:00Z"              # event time, inclusive
//! until = "2026-03-08T00:00:00Z"             # exclusive
//! ```
//!
//! Selectors of different kinds must all match (user and IP and app and window); values of
//! one kind are alternatives.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::row::{BatchView, opt_str};
use super::rules::RuleSet;

/// At most this many suppressions (one bit each per event).
pub const MAX_SUPPRESSIONS: usize = 64;

/// Prefix of the per-suppression event field the generated filters test
/// (`suppressed_0`, `suppressed_1`, …).
pub const FIELD_PREFIX: &str = "suppressed_";

/// A suppressions file that cannot be used; the message names the file and the entry.
#[derive(Debug, thiserror::Error)]
#[error("suppressions {path}: {message}")]
pub struct SuppressError {
    /// The file.
    pub path: String,
    /// What is wrong, and where.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suppress: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    src_ips: Vec<String>,
    #[serde(default)]
    apps: Vec<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// One suppression, ready to match.
#[derive(Clone, Debug)]
struct Suppression {
    name: String,
    reason: Option<String>,
    /// Rule names or ids as written; empty: every rule.
    rules: Vec<String>,
    users: HashSet<String>,
    nets: Vec<IpNet>,
    apps: HashSet<String>,
    from: Option<i64>,
    until: Option<i64>,
}

impl Suppression {
    fn matches(&self, e: &Fields<'_>) -> bool {
        if self.from.is_some_and(|f| e.time < f) || self.until.is_some_and(|u| e.time >= u) {
            return false;
        }
        let named = |v: Option<&str>, set: &HashSet<String>| {
            set.is_empty() || v.is_some_and(|v| set.contains(&*folded(v)))
        };
        named(Some(e.user), &self.users)
            && named(e.app, &self.apps)
            && (self.nets.is_empty()
                || e.ip
                    .is_some_and(|ip| self.nets.iter().any(|n| n.contains(&ip))))
    }
}

/// The fields of one event that suppressions select on, read once per event.
struct Fields<'a> {
    time: i64,
    user: &'a str,
    app: Option<&'a str>,
    ip: Option<IpAddr>,
}

/// `v` lower-cased, without allocating when it already is (the usual case).
fn folded(v: &str) -> std::borrow::Cow<'_, str> {
    if v.chars().any(char::is_uppercase) {
        std::borrow::Cow::Owned(v.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// What one suppression withheld.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SuppressedCount {
    /// The suppression's name.
    pub name: String,
    /// Why it exists, as its file says.
    pub reason: Option<String>,
    /// The rules it applies to (empty: every rule).
    pub rules: Vec<String>,
    /// Events it withheld from them.
    pub events: u64,
}

/// The suppressions of one file, with what each has withheld so far.
#[derive(Clone, Debug)]
pub struct Suppressions {
    path: String,
    text: String,
    entries: Vec<Suppression>,
    counts: Vec<u64>,
    /// Some suppression selects client networks (else no event's IP is parsed).
    by_network: bool,
}

/// Which suppressions matched one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Withheld {
    /// One bit per suppression that names rules (its `suppressed_N` field is true).
    pub mask: u64,
    /// A suppression for every rule matched: the event is not evaluated.
    pub all: bool,
}

impl Suppressions {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<Suppressions, SuppressError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SuppressError {
            path: display.clone(),
            message: e.to_string(),
        })?;
        Suppressions::parse(&display, &text)
    }

    /// Parse a suppressions file's `text` (`path` names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Suppressions, SuppressError> {
        let err = |message: String| SuppressError {
            path: path.to_string(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if file.suppress.len() > MAX_SUPPRESSIONS {
            return Err(err(format!(
                "{} suppressions; at most {MAX_SUPPRESSIONS} (merge those that share rules)",
                file.suppress.len()
            )));
        }
        let mut names = BTreeSet::new();
        let mut entries = Vec::with_capacity(file.suppress.len());
        for e in file.suppress {
            let at = |what: String| err(format!("[[suppress]] \"{}\": {what}", e.name));
            if e.name.trim().is_empty() {
                return Err(err("[[suppress]] without a name".into()));
            }
            if !names.insert(e.name.clone()) {
                return Err(at("the name is used twice".into()));
            }
            let time = |key: &str, v: &Option<String>| {
                v.as_deref()
                    .map(|t| {
                        mfascope_core::time::parse_rfc3339(t).map_err(|m| at(format!("{key}: {m}")))
                    })
                    .transpose()
            };
            let (from, until) = (time("from", &e.from)?, time("until", &e.until)?);
            if let (Some(f), Some(u)) = (from, until)
                && f >= u
            {
                return Err(at("from is not before until".into()));
            }
            let nets = e
                .src_ips
                .iter()
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            at(format!(
                                "src_ips: \"{s}\" is not an IP address or CIDR network"
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if e.users.is_empty()
                && nets.is_empty()
                && e.apps.is_empty()
                && from.is_none()
                && until.is_none()
            {
                return Err(at(
                    "selects every event; name users, src_ips, apps or a from/until window".into(),
                ));
            }
            let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_lowercase()).collect();
            entries.push(Suppression {
                name: e.name,
                reason: e.reason,
                rules: e.rules,
                users: lower(e.users),
                nets,
                apps: lower(e.apps),
                from,
                until,
            });
        }
        Ok(Suppressions {
            path: path.to_string(),
            text: text.to_string(),
            counts: vec![0; entries.len()],
            by_network: entries.iter().any(|s| !s.nets.is_empty()),
            entries,
        })
    }

    /// The file's text (part of the rules' fingerprint in saved state).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Match row `i` of `view`, counting it for every suppression it falls under.
    pub fn withhold(&mut self, view: &BatchView, i: usize) -> Withheld {
        let mut w = Withheld::default();
        let fields = Fields {
            time: view.time.value(i),
            user: view.user.value(i),
            app: opt_str(&view.app, i),
            ip: self
                .by_network
                .then(|| opt_str(&view.src_ip, i)?.parse().ok())
                .flatten(),
        };
        for (k, s) in self.entries.iter().enumerate() {
            if s.matches(&fields) {
                self.counts[k] += 1;
                if s.rules.is_empty() {
                    w.all = true;
                } else {
                    w.mask |= 1 << k;
                }
            }
        }
        w
    }

    /// What each suppression withheld so far, in file order.
    pub fn counts(&self) -> Vec<SuppressedCount> {
        self.entries
            .iter()
            .zip(&self.counts)
            .map(|(s, &events)| SuppressedCount {
                name: s.name.clone(),
                reason: s.reason.clone(),
                rules: s.rules.clone(),
                events,
            })
            .collect()
    }

    /// Sigma filter documents for the suppressions that name rules: each excludes events whose
    /// `suppressed_N` field is true from the named detection rules and, for a correlation, from
    /// every rule it counts (through chains). A name that is no canonical rule of `rules` is
    /// an error.
    pub fn filters(&self, rules: &RuleSet) -> Result<String, SuppressError> {
        let canonical = rules.collection(true);
        let mut docs = String::new();
        for (k, s) in self.entries.iter().enumerate() {
            if s.rules.is_empty() {
                continue;
            }
            let mut targets = BTreeSet::new();
            for name in &s.rules {
                if !expand(&canonical, name, &mut targets, 0) {
                    return Err(SuppressError {
                        path: self.path.clone(),
                        message: format!(
                            "[[suppress]] \"{}\": rules: \"{name}\" is no rule of the pack on canonical fields (vendor-field rules cannot be suppressed by rule; omit `rules` to suppress for every rule)",
                            s.name
                        ),
                    });
                }
            }
            let list: Vec<String> = targets
                .iter()
                .map(|t| serde_json::to_string(t).expect("a string serializes"))
                .collect();
            docs.push_str(&format!(
                "---\ntitle: mfascope suppression {k}\nlogsource:\n    product: mfascope\nfilter:\n    rules: [{}]\n    selection:\n        {FIELD_PREFIX}{k}: true\n    condition: not selection\n",
                list.join(", ")
            ));
        }
        Ok(docs)
    }
}

/// Add the detection rules `name` (a rule or correlation name, id or title) stands for to
/// `out`, as the ids (or titles) rsigma filters match; false when nothing has that name.
fn expand(
    c: &rsigma_parser::SigmaCollection,
    name: &str,
    out: &mut BTreeSet<String>,
    depth: usize,
) -> bool {
    let is = |id: &Option<String>, n: &Option<String>, title: &str| {
        id.as_deref() == Some(name) || n.as_deref() == Some(name) || title == name
    };
    if let Some(r) = c.rules.iter().find(|r| is(&r.id, &r.name, &r.title)) {
        out.insert(r.id.clone().unwrap_or_else(|| r.title.clone()));
        return true;
    }
    match c.correlations.iter().find(|k| is(&k.id, &k.name, &k.title)) {
        Some(k) if depth < 16 => k.rules.iter().all(|r| expand(c, r, out, depth + 1)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source};

    fn view(events: &[(&str, &str, Option<&str>, i64)]) -> BatchView {
        let mut b = EventBatchBuilder::default();
        for (k, (user, ip, app, t)) in events.iter().enumerate() {
            let step = (Action::MfaVerify, Factor::Push, Outcome::Denied);
            let mut e = Event::new(Source::Okta, format!("e{k}"), *t, *user, "t", step);
            e.src_ip = Some((*ip).into());
            e.app = app.map(Into::into);
            b.append(&e);
        }
        BatchView::of(&b.finish_canonical())
    }

    const T0: i64 = 1_772_438_400_000; // 2026-03-02T08:00:00Z

    /// Every selector kind must match; values of one kind are alternatives; users and apps
    /// ignore case; networks contain addresses; the window is [from, until).
    #[test]
    fn an_event_is_withheld_only_when_every_selector_matches() {
        let mut s = Suppressions::parse(
            "s.toml",
            "[[suppress]]\nname = \"rt\"\nrules = [\"mfa_push_bombing\"]\nusers = [\"RT@x\", \"other@x\"]\nsrc_ips = [\"203.0.113.0/24\"]\napps = [\"VPN\"]\nfrom = \"2026-03-02T08:00:00Z\"\nuntil = \"2026-03-02T09:00:00Z\"\n\n[[suppress]]\nname = \"scanner\"\nsrc_ips = [\"198.51.100.7\"]\n",
        )
        .unwrap();
        let v = view(&[
            ("rt@x", "203.0.113.200", Some("vpn"), T0), // all match
            ("rt@x", "203.0.114.1", Some("VPN"), T0),   // IP outside the network
            ("rt@x", "203.0.113.1", None, T0),          // no app
            ("rt@x", "203.0.113.1", Some("VPN"), T0 + 3_600_000), // at `until`
            ("bob@x", "198.51.100.7", None, T0),        // the scanner: every rule
        ]);
        let got: Vec<Withheld> = (0..5).map(|i| s.withhold(&v, i)).collect();
        assert_eq!(
            got[0],
            Withheld {
                mask: 1,
                all: false
            }
        );
        assert!(
            got[1..4].iter().all(|w| *w == Withheld::default()),
            "{got:?}"
        );
        assert_eq!(got[4], Withheld { mask: 0, all: true });
        let counts: Vec<(String, u64)> =
            s.counts().into_iter().map(|c| (c.name, c.events)).collect();
        assert_eq!(counts, [("rt".to_string(), 1), ("scanner".to_string(), 1)]);
    }

    /// A correlation's suppression filters every detection rule its chain counts; an unknown
    /// rule, a bad network, a reversed window and an entry that selects everything are refused
    /// naming the entry.
    #[test]
    fn filters_reach_the_counted_rules_and_mistakes_are_named() {
        let rules = RuleSet::builtin();
        let s = Suppressions::parse(
            "s.toml",
            "[[suppress]]\nname = \"rt\"\nrules = [\"mfa_push_fatigue_accepted\"]\nusers = [\"rt@x\"]\n",
        )
        .unwrap();
        let docs = s.filters(&rules).unwrap();
        let parsed = rsigma_parser::parse_sigma_yaml(&docs).unwrap();
        assert_eq!(parsed.filters.len(), 1);
        let id = |name: &str| {
            rules
                .rules()
                .find(|(_, r)| r.name.as_deref() == Some(name))
                .and_then(|(_, r)| r.id.clone())
                .unwrap()
        };
        for base in ["mfa_push_denied", "mfa_push_accepted"] {
            assert!(docs.contains(&id(base)), "{base}: {docs}");
        }
        for (text, says) in [
            ("rules = [\"nope\"]\nusers = [\"a\"]", "\"nope\" is no rule"),
            ("src_ips = [\"300.1.1.1\"]", "not an IP address"),
            (
                "users = [\"a\"]\nfrom = \"2026-03-02T09:00:00Z\"\nuntil = \"2026-03-02T08:00:00Z\"",
                "from is not before until",
            ),
            ("rules = [\"mfa_spray\"]", "selects every event"),
        ] {
            let file = format!("[[suppress]]\nname = \"x\"\n{text}\n");
            let err = Suppressions::parse("s.toml", &file)
                .and_then(|s| s.filters(&rules).map(|_| s))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("[[suppress]] \"x\"") && err.contains(says),
                "{err}"
            );
        }
    }
}
