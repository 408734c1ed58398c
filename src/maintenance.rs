//! Store maintenance as long-running ingest runs it: a background thread that, every
//! `every`, compacts the partitions that crossed the small-file threshold, expires data past
//! `--retain` and vacuums, then rests long enough that its work stays within `cpu_share` of
//! one core. It skips a round while another process holds the maintenance lock (a manual
//! `mfascope compact` or `prune`) and logs what each round did. It never runs queries and never
//! blocks the ingest: the two meet only in the Delta log, where appends and rewrites commute.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sink::maintain::{CompactOptions, CompactReport, Hold, Maintenance, Retention};
use crate::sink::{Location, SinkError};

/// What the background maintenance does.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Compaction (`None`: off).
    pub compact: Option<CompactOptions>,
    /// Retention: data older than this expires (`None`: kept forever).
    pub retain: Option<Duration>,
    /// Rows kept regardless of `retain`.
    pub hold: Hold,
    /// Files removed from the tables are deleted this long after.
    pub vacuum_after: Duration,
    /// Time between rounds.
    pub every: Duration,
    /// Largest share of one core maintenance may use, averaged over a round and its rest.
    pub cpu_share: f64,
}

/// What the background maintenance did over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Rounds run.
    pub rounds: u64,
    /// Compaction totals.
    pub compacted: CompactReport,
    /// Rows expired.
    pub rows_expired: u64,
    /// Files vacuumed.
    pub files_vacuumed: u64,
    /// Rounds that failed (each logged with its reason).
    pub failures: u64,
}

/// The running background maintenance; [`Background::stop`] ends it.
pub struct Background {
    stop: Sender<()>,
    thread: JoinHandle<Totals>,
}

impl Background {
    /// Start maintaining `root` under `policy`; `None` when the policy does nothing.
    pub fn spawn(root: Location, policy: Policy) -> Option<Background> {
        if policy.compact.is_none() && policy.retain.is_none() {
            return None;
        }
        let (stop, stopped) = channel();
        let thread = std::thread::Builder::new()
            .name("maintenance".into())
            .spawn(move || run(&root, &policy, &stopped))
            .ok()?;
        Some(Background { stop, thread })
    }

    /// Stop after the current round and return the totals.
    pub fn stop(self) -> Totals {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
}

/// Longest time between vacuums (each one lists every removed file still in the log).
const VACUUM_EVERY: Duration = Duration::from_secs(3600);

fn run(root: &Location, policy: &Policy, stopped: &Receiver<()>) -> Totals {
    let mut totals = Totals::default();
    let mut rest = policy.every;
    let vacuum_every = VACUUM_EVERY.min(policy.vacuum_after).max(policy.every);
    let mut vacuumed: Option<Instant> = None;
    loop {
        match stopped.recv_timeout(rest) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return totals,
        }
        let started = Instant::now();
        let vacuum = vacuumed.is_none_or(|t| t.elapsed() >= vacuum_every);
        if vacuum {
            vacuumed = Some(started);
        }
        match round(root, policy, vacuum, &mut totals) {
            Ok(()) => totals.rounds += 1,
            Err(SinkError::Locked(_)) => {}
            Err(e) => {
                totals.failures += 1;
                tracing::warn!(error = %e, "store maintenance round failed; retrying next round");
            }
        }
        let worked = started.elapsed();
        let share = policy.cpu_share.clamp(0.01, 1.0);
        rest = policy.every.max(worked.mul_f64((1.0 - share) / share));
    }
}

/// One round of `policy` now (the end of an ingest that is not long-running).
pub fn once(root: &Location, policy: &Policy) -> Result<Totals, SinkError> {
    let mut totals = Totals::default();
    round(root, policy, true, &mut totals)?;
    totals.rounds = 1;
    Ok(totals)
}

fn round(
    root: &Location,
    policy: &Policy,
    vacuum: bool,
    totals: &mut Totals,
) -> Result<(), SinkError> {
    let mut m = Maintenance::open(root)?;
    if let Some(opts) = &policy.compact {
        let r = m.compact(opts)?;
        if r.files_in > 0 {
            tracing::info!(
                partitions = r.partitions,
                files_in = r.files_in,
                files_out = r.files_out,
                rows = r.rows,
                "compacted"
            );
        }
        totals.compacted += &r;
    }
    if let Some(retain) = policy.retain {
        let cutoff_ms = chrono::Utc::now().timestamp_millis() - retain.as_millis() as i64;
        let r = m.expire(&Retention {
            cutoff_ms,
            hold: policy.hold.clone(),
            dry_run: false,
        })?;
        let rows: u64 = r.tables.iter().map(|t| t.rows_removed).sum();
        if rows > 0 || r.dead_letter_files > 0 {
            tracing::info!(
                rows,
                dead_letter_files = r.dead_letter_files,
                "expired past retention"
            );
        }
        totals.rows_expired += rows;
    }
    if !vacuum {
        return Ok(());
    }
    let vacuumed = m.vacuum(policy.vacuum_after, false)?;
    if !vacuumed.is_empty() {
        tracing::info!(files = vacuumed.len(), "vacuumed removed files");
    }
    totals.files_vacuumed += vacuumed.len() as u64;
    Ok(())
}

/// Parse a legal-hold file (TOML):
///
/// ```toml
/// users = ["alice@example.com"]
/// [[ranges]]
/// from = "2024-01-01T00:00:00Z"
/// to = "2024-02-01T00:00:00Z"
/// ```
///
/// ```
/// let hold = mfascope::maintenance::parse_hold(
///     "users = [\"a@x\"]\n[[ranges]]\nfrom = \"2024-01-01T00:00:00Z\"\nto = \"2024-01-02T00:00:00Z\"\n",
/// ).unwrap();
/// assert!(hold.users.contains("a@x") && hold.ranges.len() == 1);
/// ```
pub fn parse_hold(text: &str) -> Result<Hold, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Range {
        from: String,
        to: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        users: Vec<String>,
        #[serde(default)]
        ranges: Vec<Range>,
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut hold = Hold {
        users: file.users.into_iter().collect(),
        ranges: Vec::new(),
    };
    for (i, r) in file.ranges.iter().enumerate() {
        let parse = |what: &str, v: &str| {
            crate::time::parse_rfc3339(v).map_err(|e| format!("ranges[{i}].{what}: {e}"))
        };
        let (from, to) = (parse("from", &r.from)?, parse("to", &r.to)?);
        if from >= to {
            return Err(format!("ranges[{i}]: `from` must be before `to`"));
        }
        hold.ranges.push((from, to));
    }
    Ok(hold)
}

/// Read the legal-hold file at `path` (none: nothing held).
pub fn load_hold(path: Option<&std::path::Path>) -> anyhow::Result<Hold> {
    let Some(path) = path else {
        return Ok(Hold::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading the legal hold {}: {e}", path.display()))?;
    parse_hold(&text).map_err(|e| anyhow::anyhow!("legal hold {}: {e}", path.display()))
}
