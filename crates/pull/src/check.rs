//! `sources check`: one authenticated request per stream of each source (the last hour, first
//! page), told in one line per source — what it can read, or what to fix. Transient answers
//! (429, 5xx, network) are waited out and retried as in a run, so a busy vendor is not mistaken
//! for a wrong set-up; any other error is the diagnosis. It never stores anything.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use reqwest::StatusCode;

use crate::config::{Kind, SourceConfig};
use crate::http::{Http, PollError};
use crate::stats::Stats;

/// One source's verdict.
#[derive(Debug, Clone)]
pub struct CheckLine {
    /// The source's name.
    pub name: String,
    /// Its vendor.
    pub kind: &'static str,
    /// The request succeeded for every stream.
    pub ok: bool,
    /// What it can read, or the failure and what to fix.
    pub message: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.ok { "ok" } else { "FAILED" };
        write!(
            f,
            "{} ({}): {verdict}: {}",
            self.name, self.kind, self.message
        )
    }
}

/// What to fix for an error status.
fn hint(kind: Kind, status: StatusCode) -> &'static str {
    match (status.as_u16(), kind) {
        (401, Kind::Okta) => "check `token` (or `client_id` and `key`)",
        (401, Kind::Duo) => "check `ikey` and `skey` (and the `url` host they belong to)",
        (401, Kind::Graph) => "check `tenant`, `client_id` and `client_secret`",
        (401, Kind::Gworkspace) => "check `key` and `subject`",
        (403, Kind::Okta) => "the token's admin or the service app lacks okta.logs.read",
        (403, Kind::Duo) => "grant the Admin API application \"Grant read log\"",
        (403, Kind::Graph) => "grant the app AuditLog.Read.All (application) with admin consent",
        (403, Kind::Gworkspace) => {
            "delegate admin.reports.audit.readonly to the service account's client id; \
             `subject` must be an administrator"
        }
        (404, _) => "check `url` (the API base)",
        (400, Kind::Gworkspace | Kind::Graph) => "check `token_url` and the credentials",
        _ => "",
    }
}

/// Check every source; one line each, in the file's order.
pub fn check(sources: &[SourceConfig]) -> Vec<CheckLine> {
    sources.iter().map(check_one).collect()
}

fn check_one(c: &SourceConfig) -> CheckLine {
    let line = |ok, message| CheckLine {
        name: c.name.clone(),
        kind: c.kind.name(),
        ok,
        message,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let from = now - 3_600_000;
    let run = || -> Result<Vec<String>, PollError> {
        let stats = Arc::new(Stats::default());
        let mut http = Http::new(
            stats,
            Arc::new(AtomicBool::new(false)),
            c.request_every,
            None,
        )?;
        let mut api = crate::api(c)?;
        let mut read = Vec::new();
        for stream in &c.streams {
            let page = api.page(&mut http, stream, from, now, None)?;
            let more = if page.next.is_some() { "+" } else { "" };
            read.push(format!(
                "{stream}: {}{more} records in the last hour",
                page.records.len()
            ));
        }
        Ok(read)
    };
    match run() {
        Ok(read) => line(true, format!("can read {}", read.join("; "))),
        Err(e) => {
            let fix = e.status().map(|s| hint(c.kind, s)).unwrap_or_default();
            let fix = if fix.is_empty() {
                String::new()
            } else {
                format!(" — {fix}")
            };
            line(false, format!("{e}{fix}"))
        }
    }
}
