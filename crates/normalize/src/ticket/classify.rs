//! Decides whether a support ticket is MFA-related (the M5 SLI) from configured rules: tags or
//! labels, categories, and keywords in the subject. Every match names the rule that made it, so
//! a reviewer can see why a ticket counts. It reads ticket fields only; it never stores them.

use std::collections::HashSet;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

/// The shipped rules (`rules/mfa-tickets.toml`).
pub const DEFAULT_RULES: &str = include_str!("../../../../rules/mfa-tickets.toml");

/// The rules file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("ticket rules {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("ticket rules {path}: {reason}")]
    Invalid {
        /// The file (or `built-in`).
        path: String,
        /// The parser's message, naming the line and key.
        reason: String,
    },
    /// The rules would match nothing.
    #[error("ticket rules {0}: no tags, categories or keywords; nothing could match")]
    Empty(String),
}

/// The ticket fields classification looks at.
#[derive(Clone, Copy, Debug, Default)]
pub struct TicketText<'a> {
    /// Tags (Zendesk), labels (Jira) or similar.
    pub tags: &'a [String],
    /// Category, issue type or request type.
    pub category: Option<&'a str>,
    /// The subject or summary line.
    pub subject: Option<&'a str>,
}

/// Compiled match rules.
#[derive(Debug)]
pub struct Classifier {
    tags: HashSet<String>,
    categories: HashSet<String>,
    keywords: Option<Regex>,
}

impl Classifier {
    /// The shipped rules.
    ///
    /// ```
    /// use mfascope_normalize::ticket::classify::{Classifier, TicketText};
    ///
    /// let c = Classifier::builtin();
    /// let t = TicketText { subject: Some("Locked out after getting a new phone"), ..Default::default() };
    /// assert_eq!(c.classify(&t).as_deref(), Some("subject: \"locked out\""));
    /// assert_eq!(c.classify(&TicketText { subject: Some("Printer on fire"), ..Default::default() }), None);
    /// ```
    pub fn builtin() -> Classifier {
        Classifier::parse(DEFAULT_RULES, "built-in").expect("the shipped ticket rules are valid")
    }

    /// Rules from a TOML file (`tags`, `categories`, `keywords`: lists of strings).
    pub fn load(path: &Path) -> Result<Classifier, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Classifier::parse(&text, &path.display().to_string())
    }

    /// Rules from TOML text; `name` names it in errors.
    pub fn parse(text: &str, name: &str) -> Result<Classifier, RulesError> {
        let rules: RulesFile = toml::from_str(text).map_err(|e| RulesError::Invalid {
            path: name.to_string(),
            reason: e.to_string().trim().to_string(),
        })?;
        let fold = |v: Vec<String>| -> HashSet<String> {
            v.into_iter()
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let (tags, categories) = (fold(rules.tags), fold(rules.categories));
        let mut keywords: Vec<String> = fold(rules.keywords).into_iter().collect();
        if tags.is_empty() && categories.is_empty() && keywords.is_empty() {
            return Err(RulesError::Empty(name.to_string()));
        }
        // Longest first, so "two factor app" wins over "two factor" in the reason.
        keywords.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let keywords = (!keywords.is_empty()).then(|| {
            let alternatives: Vec<String> = keywords
                .iter()
                .map(|k| regex::escape(k).replace(' ', r"[\s_-]+"))
                .collect();
            // Whole words: "otp" matches "OTP code" but not "hotpot".
            Regex::new(&format!(
                r"(?i)(?:^|\W)({})(?:\W|$)",
                alternatives.join("|")
            ))
            .expect("escaped keywords form a valid pattern")
        });
        Ok(Classifier {
            tags,
            categories,
            keywords,
        })
    }

    /// Why `t` is MFA-related (`tag: 2fa`, `category: MFA`, `subject: "lost phone"`), or
    /// `None` when no rule matches. Tags are looked at first, then the category, then the
    /// subject.
    pub fn classify(&self, t: &TicketText<'_>) -> Option<String> {
        if let Some(tag) = t
            .tags
            .iter()
            .find(|tag| self.tags.contains(&tag.trim().to_lowercase()))
        {
            return Some(format!("tag: {}", tag.trim()));
        }
        if let Some(c) = t
            .category
            .filter(|c| self.categories.contains(&c.trim().to_lowercase()))
        {
            return Some(format!("category: {}", c.trim()));
        }
        let m = self.keywords.as_ref()?.captures(t.subject?)?;
        let found = m.get(1)?.as_str().to_lowercase();
        Some(format!("subject: {found:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(s: &str) -> Option<String> {
        Classifier::builtin().classify(&TicketText {
            subject: Some(s),
            ..Default::default()
        })
    }

    #[test]
    fn keywords_match_whole_words_only_and_name_themselves() {
        assert_eq!(
            subject("Need a new OTP code").as_deref(),
            Some("subject: \"otp\"")
        );
        assert_eq!(subject("hotpot order for the team lunch"), None);
        assert_eq!(
            subject("Two-Factor reset please").as_deref(),
            Some("subject: \"two-factor\"")
        );
        assert_eq!(
            subject("two_factor broken").as_deref(),
            Some("subject: \"two_factor\"")
        );
        assert_eq!(subject("VPN is slow"), None);
    }

    #[test]
    fn tags_come_before_categories_before_the_subject() {
        let c = Classifier::builtin();
        let tags = vec!["billing".to_string(), " MFA ".to_string()];
        let t = TicketText {
            tags: &tags,
            category: Some("authenticator"),
            subject: Some("lost phone"),
        };
        assert_eq!(c.classify(&t).as_deref(), Some("tag: MFA"));
        let t = TicketText { tags: &[], ..t };
        assert_eq!(c.classify(&t).as_deref(), Some("category: authenticator"));
    }

    #[test]
    fn a_rules_file_is_checked_and_used() {
        let c = Classifier::parse("keywords = [\"badge\"]", "t.toml").unwrap();
        let t = TicketText {
            subject: Some("Badge reader broken"),
            ..Default::default()
        };
        assert_eq!(c.classify(&t).as_deref(), Some("subject: \"badge\""));
        let e = Classifier::parse("tags = []", "t.toml").unwrap_err();
        assert!(e.to_string().contains("nothing could match"), "{e}");
        let e = Classifier::parse("keyword = [\"x\"]", "t.toml").unwrap_err();
        assert!(
            e.to_string().contains("t.toml") && e.to_string().contains("keyword"),
            "{e}"
        );
    }
}
