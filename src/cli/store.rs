//! `mfascope migrate`, `compact` and `prune`: the store's maintenance jobs, run by hand (long-
//! running ingest runs them in the background, `crate::maintenance`). Each prints what it did.

use crate::cli::out::{out, outln};

use std::path::PathBuf;
use std::time::Duration;

use super::OutputFormat;
use crate::sink::Location;
use crate::sink::maintain::{CompactOptions, Maintenance, Retention};

/// `mfascope migrate`.
#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The store: a directory or an object store URL.
    #[arg(long, value_parser = Location::parse)]
    pub data: Location,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// How removed files are vacuumed (`compact`, `prune`, ingest).
#[derive(clap::Args, Debug, Clone)]
pub struct VacuumArg {
    /// Files a commit removed are deleted this long after it; readers of older table
    /// versions (`--as-of`, a query still running, another engine) have until then.
    #[arg(long, default_value = "7d", value_parser = crate::time::parse_duration)]
    pub vacuum_after: Duration,
}

/// `mfascope compact`.
#[derive(clap::Args, Debug)]
pub struct CompactArgs {
    /// The store: a directory or an object store URL.
    #[arg(long, value_parser = Location::parse)]
    pub data: Location,
    /// Merged files grow up to about this size.
    #[arg(long, default_value_t = 128)]
    pub target_mib: u64,
    /// A partition is compacted once it holds at least this many files smaller than that.
    #[arg(long, default_value_t = 8)]
    pub min_files: usize,
    /// Files committed more recently are left for the next run.
    #[arg(long, default_value = "10m", value_parser = crate::time::parse_duration)]
    pub settle: Duration,
    /// Vacuum.
    #[command(flatten)]
    pub vacuum: VacuumArg,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

impl CompactArgs {
    /// The compaction these flags ask for.
    pub fn options(&self) -> CompactOptions {
        CompactOptions {
            target_bytes: self.target_mib.max(1) << 20,
            min_files: self.min_files.max(2),
            settle: self.settle,
        }
    }
}

/// `mfascope prune`.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// The store: a directory or an object store URL.
    #[arg(long, value_parser = Location::parse)]
    pub data: Location,
    /// Expire what is older than this (e.g. `400d`), by event time (dead letters: by when
    /// they were written).
    #[arg(long, value_parser = crate::time::parse_duration, required_unless_present = "before")]
    pub older_than: Option<Duration>,
    /// Expire what is before this instant (RFC 3339) instead.
    #[arg(long, conflicts_with = "older_than")]
    pub before: Option<String>,
    /// Legal hold (TOML: `users = [...]`, `[[ranges]] from/to`): rows kept regardless.
    #[arg(long, value_name = "FILE")]
    pub hold: Option<PathBuf>,
    /// Only report what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Vacuum.
    #[command(flatten)]
    pub vacuum: VacuumArg,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

fn print(format: OutputFormat, value: &serde_json::Value, text: String) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(value)?),
        OutputFormat::Table => out!("{text}"),
    }
    Ok(())
}

/// `mfascope migrate`.
pub fn run_migrate(a: MigrateArgs) -> anyhow::Result<i32> {
    let report = Maintenance::open(&a.data)?.migrate()?;
    let mut text = String::new();
    for (table, files, rows) in &report.migrated {
        text += &format!("{table}: {files} files, {rows} rows now in the Delta table\n");
    }
    for table in &report.already {
        text += &format!("{table}: already a Delta table\n");
    }
    if text.is_empty() {
        text = format!("{}: nothing to migrate (no tables yet)\n", a.data);
    }
    print(a.format, &serde_json::to_value(&report)?, text)?;
    Ok(0)
}

/// `mfascope compact`.
pub fn run_compact(a: CompactArgs) -> anyhow::Result<i32> {
    let mut m = Maintenance::open(&a.data)?;
    let report = m.compact(&a.options())?;
    let vacuumed = m.vacuum(a.vacuum.vacuum_after, false)?;
    let text = format!(
        "compacted {} partitions: {} files ({} bytes) → {} files ({} bytes), {} rows; \
         {} files vacuumed; {} files of an interrupted job removed\n",
        report.partitions,
        report.files_in,
        report.bytes_in,
        report.files_out,
        report.bytes_out,
        report.rows,
        vacuumed.len(),
        report.orphans_removed
    );
    let mut value = serde_json::to_value(&report)?;
    value["vacuumed"] = serde_json::to_value(&vacuumed)?;
    print(a.format, &value, text)?;
    Ok(0)
}

/// `mfascope prune`.
pub fn run_prune(a: PruneArgs) -> anyhow::Result<i32> {
    let hold = crate::maintenance::load_hold(a.hold.as_deref())?;
    let cutoff_ms = match (&a.before, a.older_than) {
        (Some(t), _) => {
            crate::time::parse_rfc3339(t).map_err(|e| anyhow::anyhow!("--before {t}: {e}"))?
        }
        (None, Some(d)) => chrono::Utc::now().timestamp_millis() - d.as_millis() as i64,
        (None, None) => anyhow::bail!("give --older-than DURATION or --before TIME"),
    };
    let mut m = Maintenance::open(&a.data)?;
    let report = m.expire(&Retention {
        cutoff_ms,
        hold,
        dry_run: a.dry_run,
    })?;
    let vacuumed = if a.dry_run {
        m.vacuum(a.vacuum.vacuum_after, true)?
    } else {
        m.vacuum(a.vacuum.vacuum_after, false)?
    };
    let verb = if a.dry_run { "would remove" } else { "removed" };
    let mut text = format!(
        "retention: before {}{}\n",
        crate::time::format_rfc3339(cutoff_ms),
        if a.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    for t in &report.tables {
        text += &format!(
            "{}: {verb} {} rows ({} files whole, {} rewritten); {} rows held\n",
            t.table, t.rows_removed, t.files_removed, t.files_rewritten, t.rows_held
        );
        tracing::info!(
            table = %t.table,
            rows = t.rows_removed,
            files = t.files_removed,
            rewritten = t.files_rewritten,
            held = t.rows_held,
            dry_run = a.dry_run,
            "retention"
        );
    }
    text += &format!(
        "dead letters: {verb} {} files\nvacuum: {} files {}\n",
        report.dead_letter_files,
        vacuumed.len(),
        if a.dry_run { "due" } else { "deleted" }
    );
    let mut value = serde_json::to_value(&report)?;
    value["cutoff"] = crate::time::format_rfc3339(cutoff_ms).into();
    value["vacuumed"] = serde_json::to_value(&vacuumed)?;
    print(a.format, &value, text)?;
    Ok(0)
}

/// Background maintenance of long-running ingest (`--follow`, `--kafka`, `--sources`).
#[derive(clap::Args, Debug, Clone)]
pub struct MaintainArgs {
    /// Do not compact small files in the background (run `mfascope compact` instead).
    #[arg(long)]
    pub no_compact: bool,
    /// Compact a partition once it holds this many small files.
    #[arg(long, default_value_t = 8)]
    pub compact_min_files: usize,
    /// Merged files grow up to about this size.
    #[arg(long, default_value_t = 128)]
    pub compact_target_mib: u64,
    /// Files committed more recently are left for a later round.
    #[arg(long, default_value = "10m", value_parser = crate::time::parse_duration)]
    pub compact_settle: Duration,
    /// Expire data older than this (e.g. `400d`) in the background (and once at the end of
    /// an ingest that is not long-running).
    #[arg(long, value_parser = crate::time::parse_duration)]
    pub retain: Option<Duration>,
    /// Legal hold for `--retain` (see `mfascope prune --hold`).
    #[arg(long, value_name = "FILE", requires = "retain")]
    pub hold: Option<PathBuf>,
    /// Time between maintenance rounds.
    #[arg(long, default_value = "1m", value_parser = crate::time::parse_duration)]
    pub maintain_every: Duration,
    /// Largest share of one core maintenance uses (0.01–1).
    #[arg(long, default_value_t = 0.25)]
    pub maintain_cpu: f64,
    /// Vacuum.
    #[command(flatten)]
    pub vacuum: VacuumArg,
}

impl MaintainArgs {
    /// The policy these flags ask for.
    pub fn policy(&self) -> anyhow::Result<crate::maintenance::Policy> {
        anyhow::ensure!(
            self.maintain_cpu > 0.0 && self.maintain_cpu <= 1.0,
            "--maintain-cpu {}: give a share between 0.01 and 1",
            self.maintain_cpu
        );
        Ok(crate::maintenance::Policy {
            compact: (!self.no_compact).then(|| CompactOptions {
                target_bytes: self.compact_target_mib.max(1) << 20,
                min_files: self.compact_min_files.max(2),
                settle: self.compact_settle,
            }),
            retain: self.retain,
            hold: crate::maintenance::load_hold(self.hold.as_deref())?,
            vacuum_after: self.vacuum.vacuum_after,
            every: self.maintain_every,
            cpu_share: self.maintain_cpu,
        })
    }
}
