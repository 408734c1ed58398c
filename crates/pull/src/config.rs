//! The sources file (`sources.toml`): one `[[source]]` table per vendor log API, validated
//! before anything is polled. It owns names, defaults and the reading of secrets (from files
//! or the environment only); it never makes a request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mfascope_core::secret::SecretRef;
use mfascope_core::time::{format_rfc3339, parse_duration, parse_rfc3339};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The vendor a source polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Okta System Log API (`/api/v1/logs`).
    Okta,
    /// Duo Admin API v2 authentication logs.
    Duo,
    /// Microsoft Graph sign-ins and directory audits.
    Graph,
    /// Google Workspace Admin SDK Reports API.
    Gworkspace,
}

impl Kind {
    /// The name used in `kind = "…"`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Okta => "okta",
            Kind::Duo => "duo",
            Kind::Graph => "graph",
            Kind::Gworkspace => "gworkspace",
        }
    }
}

/// A `[[source]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    kind: Kind,
    name: Option<String>,
    url: Option<String>,
    token: Option<SecretRef>,
    client_id: Option<String>,
    key: Option<SecretRef>,
    ikey: Option<SecretRef>,
    skey: Option<SecretRef>,
    tenant: Option<String>,
    client_secret: Option<SecretRef>,
    token_url: Option<String>,
    subject: Option<String>,
    streams: Option<Vec<String>>,
    since: Option<String>,
    interval: Option<String>,
    delay: Option<String>,
    overlap: Option<String>,
    window: Option<String>,
    request_every: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    source: Vec<Table>,
}

/// How a source authenticates, secrets read.
pub enum Credentials {
    /// Okta API token (`Authorization: SSWS …`).
    OktaToken(Zeroizing<String>),
    /// Okta OAuth 2.0 service app: client id and its private key (PEM), `private_key_jwt`.
    OktaKey {
        /// The service app's client id.
        client_id: String,
        /// Its private key, PEM.
        key: Zeroizing<String>,
    },
    /// Duo Admin API integration key and secret key.
    Duo {
        /// Integration key.
        ikey: Zeroizing<String>,
        /// Secret key.
        skey: Zeroizing<String>,
    },
    /// Entra app registration with a client secret (client-credentials grant).
    Graph {
        /// Application (client) id.
        client_id: String,
        /// Its client secret.
        secret: Zeroizing<String>,
    },
    /// Google service account key (JSON) and the admin it acts for (domain-wide delegation).
    Google {
        /// The service account key file's text.
        key: Zeroizing<String>,
        /// The administrator impersonated.
        subject: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[credentials redacted]")
    }
}

/// A validated source.
#[derive(Debug)]
pub struct SourceConfig {
    /// Its vendor.
    pub kind: Kind,
    /// Its name: state prefix `_state/api/NAME`, metrics label, dead-letter path.
    pub name: String,
    /// API base URL.
    pub url: String,
    /// The token endpoint (OAuth sources).
    pub token_url: Option<String>,
    /// Secrets, read.
    pub credentials: Credentials,
    /// The vendor's streams read (Graph: `signIns`, `directoryAudits`; Google: applications).
    pub streams: Vec<String>,
    /// Where the first poll starts (ms since the epoch).
    pub since_ms: i64,
    /// Pause between polls in `--follow`.
    pub interval: Duration,
    /// How far behind now a poll ends (the vendor's documented delay).
    pub delay: Duration,
    /// How far before the last record a poll starts again (late records, clock skew).
    pub overlap: Duration,
    /// Longest time window fetched whole (vendors that answer newest first; a window holding
    /// more than 20,000 records is fetched again in halves).
    pub window: Duration,
    /// Least time between two requests (Duo's one request a minute).
    pub request_every: Duration,
}

/// The sources file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What to fix.
    pub message: String,
}

/// Read and validate a sources file; secrets are read now, so a missing one fails early.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("okta.token"), "00abc\n").unwrap();
/// let file = dir.path().join("sources.toml");
/// std::fs::write(&file, r#"
/// [[source]]
/// kind = "okta"
/// url = "https://example.okta.com"
/// token = { file = "okta.token" }
/// "#).unwrap();
/// let sources = mfascope_pull::load(&file).unwrap();
/// assert_eq!((sources[0].name.as_str(), sources[0].streams.as_slice()), ("okta", &["logs".to_string()][..]));
/// ```
pub fn load(path: &Path) -> Result<Vec<SourceConfig>, ConfigError> {
    let fail = |message: String| ConfigError {
        file: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let parsed: FileToml = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
    if parsed.source.is_empty() {
        return Err(fail(
            "no [[source]] table: add one per vendor log API".into(),
        ));
    }
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut out: Vec<SourceConfig> = Vec::new();
    for (i, t) in parsed.source.into_iter().enumerate() {
        let c = source(t, &base).map_err(|m| fail(format!("[[source]] #{}: {m}", i + 1)))?;
        if out.iter().any(|o| o.name == c.name) {
            return Err(fail(format!(
                "two sources are named {:?}: give each `name = \"…\"` (it names its state)",
                c.name
            )));
        }
        out.push(c);
    }
    Ok(out)
}

fn duration(value: Option<&str>, key: &str, default: Duration) -> Result<Duration, String> {
    value.map_or(Ok(default), |v| {
        parse_duration(v).map_err(|e| format!("{key} = {v:?}: {e}"))
    })
}

fn source(t: Table, base: &Path) -> Result<SourceConfig, String> {
    let kind = t.kind;
    let name = t.name.clone().unwrap_or_else(|| kind.name().to_string());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "name = {name:?}: use letters, digits, '-', '_' or '.' (it names a state folder)"
        ));
    }
    let what = |key: &str| format!("source {name:?} ({}) {key}", kind.name());
    let secret = |r: &Option<SecretRef>, key: &str| -> Result<Zeroizing<String>, String> {
        r.as_ref()
            .ok_or_else(|| {
                format!(
                    "{}: missing (give {{ file = \"…\" }} or {{ env = \"…\" }})",
                    what(key)
                )
            })?
            .read(base, &what(key))
    };
    let plain = |v: &Option<String>, key: &str| -> Result<String, String> {
        v.clone().ok_or_else(|| format!("{}: missing", what(key)))
    };
    // Credential keys are each taken by some kinds only (the others are common to all).
    let given = [
        ("token", t.token.is_some(), &[Kind::Okta][..]),
        (
            "client_id",
            t.client_id.is_some(),
            &[Kind::Okta, Kind::Graph],
        ),
        ("key", t.key.is_some(), &[Kind::Okta, Kind::Gworkspace]),
        ("ikey", t.ikey.is_some(), &[Kind::Duo]),
        ("skey", t.skey.is_some(), &[Kind::Duo]),
        ("tenant", t.tenant.is_some(), &[Kind::Graph]),
        ("client_secret", t.client_secret.is_some(), &[Kind::Graph]),
        (
            "token_url",
            t.token_url.is_some(),
            &[Kind::Okta, Kind::Graph, Kind::Gworkspace],
        ),
        ("subject", t.subject.is_some(), &[Kind::Gworkspace]),
    ];
    if let Some((key, ..)) = given
        .iter()
        .find(|(_, set, kinds)| *set && !kinds.contains(&kind))
    {
        return Err(format!(
            "{}: not a key of a {} source",
            what(key),
            kind.name()
        ));
    }
    let (credentials, default_url, streams, delay, request_every) = match kind {
        Kind::Okta => {
            let creds = match (&t.token, &t.client_id) {
                (Some(_), None) => Credentials::OktaToken(secret(&t.token, "token")?),
                (None, Some(id)) => Credentials::OktaKey {
                    client_id: id.clone(),
                    key: Zeroizing::new(
                        t.key
                            .as_ref()
                            .ok_or_else(|| {
                                format!(
                                    "{}: missing (the service app's private key, PEM)",
                                    what("key")
                                )
                            })?
                            .read_all(base, &what("key"))?
                            .to_string(),
                    ),
                },
                _ => {
                    return Err(format!(
                        "{}: give `token` (an API token) or `client_id` and `key` (an OAuth \
                         service app's private key), not both",
                        what("credentials")
                    ));
                }
            };
            (
                creds,
                None,
                vec!["logs".to_string()],
                Duration::ZERO,
                Duration::ZERO,
            )
        }
        Kind::Duo => {
            let creds = Credentials::Duo {
                ikey: secret(&t.ikey, "ikey")?,
                skey: secret(&t.skey, "skey")?,
            };
            // Duo documents a two-minute delay before authentications show in the API, and
            // one request a minute to the log endpoints.
            (
                creds,
                None,
                vec!["authentication".to_string()],
                Duration::from_secs(120),
                Duration::from_secs(60),
            )
        }
        Kind::Graph => {
            let creds = Credentials::Graph {
                client_id: plain(&t.client_id, "client_id")?,
                secret: secret(&t.client_secret, "client_secret")?,
            };
            if t.token_url.is_none() && t.tenant.is_none() {
                return Err(format!("{}: missing (or give token_url)", what("tenant")));
            }
            (
                creds,
                Some("https://graph.microsoft.com/v1.0"),
                vec!["signIns".to_string(), "directoryAudits".to_string()],
                Duration::ZERO,
                Duration::ZERO,
            )
        }
        Kind::Gworkspace => {
            let key = t
                .key
                .as_ref()
                .ok_or_else(|| {
                    format!("{}: missing (the service account's JSON key)", what("key"))
                })?
                .read_all(base, &what("key"))?;
            let creds = Credentials::Google {
                key: Zeroizing::new(key.to_string()),
                subject: plain(
                    &t.subject,
                    "subject (the administrator the service account acts for)",
                )?,
            };
            (
                creds,
                Some("https://admin.googleapis.com"),
                vec![
                    "login".to_string(),
                    "user_accounts".to_string(),
                    "admin".to_string(),
                ],
                Duration::ZERO,
                Duration::ZERO,
            )
        }
    };
    let url = match (t.url.clone(), default_url) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => return Err(format!("{}: missing (the API base URL)", what("url"))),
    };
    url::Url::parse(&url).map_err(|e| format!("{} = {url:?}: {e}", what("url")))?;
    let streams = match t.streams {
        Some(s) if s.is_empty() => return Err(format!("{}: empty", what("streams"))),
        Some(s) => {
            if let Some(bad) = s.iter().find(|x| !streams.contains(x)) {
                return Err(format!(
                    "{}: {bad:?} is not one of {}",
                    what("streams"),
                    streams.join(", ")
                ));
            }
            s
        }
        None => streams,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let since_ms = match &t.since {
        Some(s) => parse_rfc3339(s).map_err(|e| format!("{} = {s:?}: {e}", what("since")))?,
        None => now - 24 * 3600 * 1000,
    };
    if since_ms > now {
        return Err(format!(
            "{} = {}: in the future",
            what("since"),
            format_rfc3339(since_ms)
        ));
    }
    Ok(SourceConfig {
        kind,
        url,
        token_url: t.token_url.clone().or_else(|| {
            t.tenant.as_ref().map(|tenant| {
                format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
            })
        }),
        credentials,
        streams,
        since_ms,
        interval: duration(t.interval.as_deref(), "interval", Duration::from_secs(30))?,
        delay: duration(t.delay.as_deref(), "delay", delay)?,
        overlap: duration(t.overlap.as_deref(), "overlap", Duration::from_secs(60))?,
        window: duration(t.window.as_deref(), "window", Duration::from_secs(86_400))?
            .max(Duration::from_secs(1)),
        request_every: duration(t.request_every.as_deref(), "request_every", request_every)?,
        name,
    })
}
