//! Secrets a receiver needs (signing keys, tokens, routing keys, webhook URLs that are
//! credentials), read from a file or the environment. A [`Secret`] prints as `[redacted]`, so
//! no log line, error or status listing can show one.

use std::fmt;

/// Bytes that must never be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// A secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither `file:` nor `env:`.
    #[error("a secret is given as file:PATH or env:VAR, never as the value itself")]
    Syntax,
    /// The file could not be read.
    #[error("reading the secret file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The variable is not set.
    #[error("the environment variable {0} (named by env:{0}) is not set")]
    Env(String),
    /// Nothing in it.
    #[error("the secret from {0} is empty")]
    Empty(String),
}

impl Secret {
    /// Read `file:PATH` or `env:VAR`; surrounding whitespace (a trailing newline) is dropped.
    ///
    /// ```
    /// unsafe { std::env::set_var("MFASCOPE_DOC_KEY", "s3cret\n") };
    /// let key = mfascope_notify::Secret::read("env:MFASCOPE_DOC_KEY").unwrap();
    /// assert_eq!(key.expose(), b"s3cret");
    /// assert_eq!(format!("{key:?}"), "[redacted]");
    /// ```
    pub fn read(spec: &str) -> Result<Secret, SecretError> {
        let bytes = if let Some(path) = spec.strip_prefix("file:") {
            std::fs::read(path).map_err(|source| SecretError::File {
                path: path.to_string(),
                source,
            })?
        } else if let Some(var) = spec.strip_prefix("env:") {
            std::env::var(var)
                .map_err(|_| SecretError::Env(var.to_string()))?
                .into_bytes()
        } else {
            return Err(SecretError::Syntax);
        };
        let text = bytes.trim_ascii();
        if text.is_empty() {
            return Err(SecretError::Empty(spec.to_string()));
        }
        Ok(Secret(text.to_vec()))
    }

    /// A secret given in code (tests, URLs read from a flag).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// The bytes, for the one place that puts them on the wire.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text (tokens, keys and URLs are text).
    pub fn expose_str(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_or_env_never_from_the_flag_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "abc\n").unwrap();
        let s = Secret::read(&format!("file:{}", path.display())).unwrap();
        assert_eq!(s.expose(), b"abc");
        let refused = Secret::read("hunter2hunter2").unwrap_err().to_string();
        assert!(!refused.contains("hunter2"), "{refused}");
        assert!(matches!(
            Secret::read("env:MFASCOPE_SURELY_UNSET_VAR"),
            Err(SecretError::Env(_))
        ));
        std::fs::write(&path, "\n").unwrap();
        assert!(Secret::read(&format!("file:{}", path.display())).is_err());
    }
}
