//! A secret named in a configuration file by where it lives — `{ file = "…" }` or
//! `{ env = "…" }` — never by its value. Probe targets and vendor log-API sources read their
//! tokens, keys and passwords through it; the value is zeroed when dropped.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret given by file or environment variable.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// File whose first line is the secret (relative to the configuration file's folder).
    pub file: Option<PathBuf>,
    /// Environment variable holding the secret.
    pub env: Option<String>,
}

impl SecretRef {
    /// The secret's first line, trimmed; `what` names it in errors (`[okta] token`).
    ///
    /// ```
    /// use mfascope_core::secret::SecretRef;
    /// unsafe { std::env::set_var("MFASCOPE_DOC_TOKEN", "s3cret") };
    /// let r = SecretRef { file: None, env: Some("MFASCOPE_DOC_TOKEN".into()) };
    /// assert_eq!(r.read(std::path::Path::new("."), "token").unwrap().as_str(), "s3cret");
    /// ```
    pub fn read(&self, base: &Path, what: &str) -> Result<zeroize::Zeroizing<String>, String> {
        self.read_all(base, what).map(|text| {
            zeroize::Zeroizing::new(text.lines().next().unwrap_or_default().trim().to_string())
        })
    }

    /// The whole secret (a PEM key or a service-account JSON file spans lines).
    pub fn read_all(&self, base: &Path, what: &str) -> Result<zeroize::Zeroizing<String>, String> {
        let bad = |msg: String| format!("{what}: {msg}");
        let text = match (&self.file, &self.env) {
            (Some(f), None) => {
                let path = base.join(f);
                std::fs::read_to_string(&path)
                    .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?
            }
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| bad(format!("environment variable {var} is not set")))?,
            _ => return Err(bad("give exactly one of file = \"…\" or env = \"…\"".into())),
        };
        if text.trim().is_empty() {
            return Err(bad("the secret is empty".into()));
        }
        Ok(zeroize::Zeroizing::new(text))
    }
}
