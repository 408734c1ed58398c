//! Store maintenance, under a lock of its own (`_state/maintenance`): migrating a store written
//! before the table format, compacting small files, expiring data past the retention policy,
//! vacuuming removed files. Each job changes a table in one Delta commit per partition (files
//! removed and added together), so readers see a partition before or after, never half. The
//! files a job writes are listed in `_state/maintenance/writing.json` before they are placed;
//! the next job deletes those no commit took (a crash mid-job). It never decides policy (the
//! caller passes it) and never touches an ingest's state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::TimestampMillisecondType;
use mfascope_table::{DataFile, Rewrite, Table};
use serde::{Deserialize, Serialize};

use super::location::Remote;
use super::parquet::{META_POSITIONS, write_partition};
use super::state::read_checkpoint;
use super::table::{FINDINGS, all_tables, create_with_existing, has_log, table_url, tables};
use super::{Location, OutDir, SinkError, io_err};

/// The state scope maintenance jobs lock.
pub const MAINTENANCE_SCOPE: &str = "_state/maintenance";

/// What `compact` merges.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Merged files grow up to about this many bytes; files this large are left alone.
    pub target_bytes: u64,
    /// A partition is compacted once it holds at least this many small files.
    pub min_files: usize,
    /// Files committed less than this long ago are left for a later run (an ingest may still
    /// replay them into its rule state after a restart).
    pub settle: Duration,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_bytes: 128 << 20,
            min_files: 8,
            settle: Duration::from_secs(600),
        }
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// Partitions compacted.
    pub partitions: u64,
    /// Files merged.
    pub files_in: u64,
    /// Files they were merged into.
    pub files_out: u64,
    /// Bytes of the merged files.
    pub bytes_in: u64,
    /// Bytes of the files written.
    pub bytes_out: u64,
    /// Rows moved.
    pub rows: u64,
    /// Files of an interrupted job deleted.
    pub orphans_removed: u64,
}

impl std::ops::AddAssign<&CompactReport> for CompactReport {
    fn add_assign(&mut self, r: &CompactReport) {
        self.partitions += r.partitions;
        self.files_in += r.files_in;
        self.files_out += r.files_out;
        self.bytes_in += r.bytes_in;
        self.bytes_out += r.bytes_out;
        self.rows += r.rows;
        self.orphans_removed += r.orphans_removed;
    }
}

/// Rows kept regardless of the retention policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hold {
    /// Users (`user` of events and findings, `requester` of tickets) whose rows are kept.
    pub users: BTreeSet<String>,
    /// Time ranges `[from, to)` (epoch ms) whose rows are kept.
    pub ranges: Vec<(i64, i64)>,
}

impl Hold {
    fn overlaps(&self, from: i64, to: i64) -> bool {
        self.ranges.iter().any(|&(a, b)| a < to && from < b)
    }

    fn holds(&self, user: Option<&str>, time: i64) -> bool {
        user.is_some_and(|u| self.users.contains(u)) || self.overlaps(time, time + 1)
    }
}

/// The retention policy of one `prune`.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Rows older than this (epoch ms) expire.
    pub cutoff_ms: i64,
    /// What is kept regardless.
    pub hold: Hold,
    /// Only report what would be removed.
    pub dry_run: bool,
}

/// What expired in one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableExpiry {
    /// `events`, `tickets` or `findings`.
    pub table: String,
    /// Files removed whole.
    pub files_removed: u64,
    /// Files rewritten without their expired rows.
    pub files_rewritten: u64,
    /// Rows removed.
    pub rows_removed: u64,
    /// Rows past the policy kept by the legal hold.
    pub rows_held: u64,
}

/// What a `prune` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExpireReport {
    /// Per table.
    pub tables: Vec<TableExpiry>,
    /// Dead-letter files removed (by the time they were written).
    pub dead_letter_files: u64,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
}

/// What `migrate` did to each table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    /// `(table, files added, rows)` for tables created from existing files.
    pub migrated: Vec<(String, u64, u64)>,
    /// Tables that already had a Delta log.
    pub already: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Writing {
    /// `(table, path relative to the table)` of files placed but maybe not committed.
    files: Vec<(String, String)>,
}

/// A maintenance session: holds the maintenance lock until dropped.
pub struct Maintenance {
    root: Location,
    out: OutDir,
    /// Files of an interrupted job deleted when the lock was taken (reported once).
    orphans_removed: u64,
}

impl Maintenance {
    /// Take the maintenance lock of the store at `root` and delete the uncommitted files of
    /// an interrupted job.
    pub fn open(root: &Location) -> Result<Maintenance, SinkError> {
        let out = OutDir::open_unchecked(root, MAINTENANCE_SCOPE)?;
        let mut m = Maintenance {
            root: root.clone(),
            out,
            orphans_removed: 0,
        };
        m.orphans_removed = m.clear_orphans()?;
        Ok(m)
    }

    fn writing_rel(&self) -> String {
        format!("{MAINTENANCE_SCOPE}/writing.json")
    }

    fn set_writing(&self, w: &Writing) -> Result<(), SinkError> {
        let bytes = serde_json::to_vec(w).expect("serializable");
        match &self.root {
            Location::Local(dir) => {
                super::state::atomic_write(&dir.join(self.writing_rel()), &bytes)
            }
            Location::Remote(r) => r.put_overwrite(&self.writing_rel(), bytes),
        }
    }

    /// Delete files an interrupted job placed but never committed; returns how many.
    fn clear_orphans(&mut self) -> Result<u64, SinkError> {
        let Some(bytes) = self.root.read(&self.writing_rel())? else {
            return Ok(0);
        };
        let writing: Writing =
            serde_json::from_slice(&bytes).map_err(|e| SinkError::CorruptState {
                path: self.root.describe(&self.writing_rel()),
                reason: e.to_string(),
            })?;
        let mut removed = 0;
        let mut by_table: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (t, p) in &writing.files {
            by_table.entry(t).or_default().push(p);
        }
        for (name, paths) in by_table {
            let live: BTreeSet<String> = match self.table(name)? {
                Some(mut t) => block(t.files())?.into_iter().map(|f| f.path).collect(),
                None => BTreeSet::new(),
            };
            for p in paths {
                if !live.contains(p) {
                    tracing::info!(file = %self.root.describe(&format!("{name}/{p}")), "removing a file an interrupted maintenance job never committed");
                    self.root.remove(&format!("{name}/{p}"))?;
                    removed += 1;
                }
            }
        }
        self.set_writing(&Writing::default())?;
        Ok(removed)
    }

    fn table(&self, name: &str) -> Result<Option<Table>, SinkError> {
        let (url, store) = table_url(&self.root, name)?;
        block(Table::open(url, store, mfascope_table::AsOf::Latest))
    }

    /// Make a store written before the table format a set of Delta tables: each table's
    /// existing Parquet files join it in the commit that creates it, so running it again, or
    /// after a crash, changes nothing or finishes the job. Every ingest state is locked (and
    /// its interrupted commit finished) first, so no writer is mid-commit.
    pub fn migrate(&mut self) -> Result<MigrateReport, SinkError> {
        let mut scopes = BTreeSet::new();
        for suffix in ["checkpoint.json", "pending.json"] {
            for rel in self.root.files_under("_state", suffix)? {
                if let Some((scope, _)) = rel.rsplit_once('/')
                    && scope != MAINTENANCE_SCOPE
                {
                    scopes.insert(scope.to_string());
                }
            }
        }
        let _writers: Vec<OutDir> = scopes
            .iter()
            .map(|s| OutDir::open_unchecked(&self.root, s))
            .collect::<Result<_, _>>()?;
        let mut report = MigrateReport::default();
        for (name, schema, partitions) in all_tables() {
            if has_log(&self.root, name)? {
                report.already.push(name.to_string());
                continue;
            }
            if let Some((n, rows)) = create_with_existing(&self.root, name, &schema, partitions)? {
                tracing::info!(table = name, files = n, rows, "migrated to a Delta table");
                report.migrated.push((name.to_string(), n, rows));
            }
        }
        Ok(report)
    }

    /// Files any ingest may still read back: every state's replay list (in its checkpoint or
    /// its interrupted commit's intent).
    fn replay_files(&self) -> Result<BTreeSet<String>, SinkError> {
        let mut out = BTreeSet::new();
        for rel in self.root.files_under("_state", "checkpoint.json")? {
            if let Some((scope, _)) = rel.rsplit_once('/') {
                out.extend(read_checkpoint(&self.root, scope)?.replay);
            }
        }
        for rel in self.root.files_under("_state", "pending.json")? {
            if let Some(bytes) = self.root.read(&rel)?
                && let Ok(p) = serde_json::from_slice::<super::state::Pending>(&bytes)
            {
                out.extend(p.checkpoint.replay);
            }
        }
        Ok(out)
    }

    /// Merge the small files of every partition holding at least `min_files` of them into
    /// files of about `target_bytes`, rows sorted by time.
    pub fn compact(&mut self, opts: &CompactOptions) -> Result<CompactReport, SinkError> {
        let mut report = CompactReport {
            orphans_removed: std::mem::take(&mut self.orphans_removed),
            ..Default::default()
        };
        let replay = self.replay_files()?;
        let settled_before = chrono::Utc::now().timestamp_millis() - opts.settle.as_millis() as i64;
        for (name, _) in tables() {
            let Some(mut table) = self.table(name)? else {
                continue;
            };
            let files = block(table.files())?;
            let mut partitions: BTreeMap<Vec<(String, String)>, Vec<DataFile>> = BTreeMap::new();
            for f in files {
                let small = (f.size as u64) < opts.target_bytes;
                let settled = f.modified_ms <= settled_before;
                if small && settled && !replay.contains(&format!("{name}/{}", f.path)) {
                    partitions.entry(f.partition.clone()).or_default().push(f);
                }
            }
            for (_, mut small) in partitions {
                if small.len() < opts.min_files.max(2) {
                    continue;
                }
                small.sort_by(|a, b| a.path.cmp(&b.path));
                let mut bins: Vec<Vec<DataFile>> = vec![Vec::new()];
                let mut bytes = 0u64;
                for f in small {
                    if bytes + f.size as u64 > opts.target_bytes && !bins.last().unwrap().is_empty()
                    {
                        bins.push(Vec::new());
                        bytes = 0;
                    }
                    bytes += f.size as u64;
                    bins.last_mut().unwrap().push(f);
                }
                bins.retain(|b| b.len() > 1);
                if bins.is_empty() {
                    continue;
                }
                let mut remove = Vec::new();
                let mut add = Vec::new();
                for bin in bins {
                    let mut batches = Vec::new();
                    let mut positions = Vec::new();
                    for f in &bin {
                        let (b, p) = read_parquet(&self.root, &format!("{name}/{}", f.path))?;
                        batches.extend(b.into_iter().filter(|b| b.num_rows() > 0));
                        positions.extend(p);
                    }
                    let merged = self.place(name, &bin, "compact", (batches, positions))?;
                    report.files_in += bin.len() as u64;
                    report.bytes_in += bin.iter().map(|f| f.size as u64).sum::<u64>();
                    if let Some(m) = merged {
                        report.files_out += 1;
                        report.bytes_out += m.size as u64;
                        report.rows += m.rows;
                        add.push(m);
                    }
                    remove.extend(bin);
                }
                block(table.replace(
                    &remove,
                    add,
                    Rewrite::Compact {
                        target_size: opts.target_bytes as i64,
                    },
                ))?;
                self.set_writing(&Writing::default())?;
                report.partitions += 1;
            }
        }
        Ok(report)
    }

    /// Write `batches` (the rows kept of `files`, table `name`, one partition) as one new file
    /// `KIND-<hash of the inputs>.parquet` placed in the partition and recorded as being written;
    /// `None` when no row is left.
    fn place(
        &mut self,
        name: &str,
        files: &[DataFile],
        kind: &str,
        (batches, positions): (Vec<RecordBatch>, Vec<serde_json::Value>),
    ) -> Result<Option<DataFile>, SinkError> {
        if batches.is_empty() {
            return Ok(None);
        }
        let part = files[0].partition.clone();
        let dir: Vec<String> = part.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Named for its inputs: unique, and the same when a crashed job is run again.
        let id = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for f in files {
                f.path.hash(&mut h);
            }
            h.finish()
        };
        let path = format!("{}/{kind}-{id:016x}.parquet", dir.join("/"));
        let staging = self.out.staging_dir();
        std::fs::create_dir_all(&staging).map_err(io_err("creating", &staging))?;
        let tmp: PathBuf = staging.join(format!("{kind}.parquet"));
        let positions = serde_json::Value::Array(positions).to_string();
        let written = write_partition(&tmp, &batches, &positions)?;
        let mut writing = match self.root.read(&self.writing_rel())? {
            Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
            None => Writing::default(),
        };
        writing.files.push((name.to_string(), path.clone()));
        self.set_writing(&writing)?;
        self.root.place(&tmp, &format!("{name}/{path}"))?;
        Ok(Some(DataFile {
            path,
            size: written.bytes as i64,
            rows: written.rows,
            partition: part,
            modified_ms: 0,
            time: Some(written.time),
        }))
    }

    /// Remove the rows past `policy` (kept when held) from events, tickets and findings, and
    /// dead-letter files written before the cutoff.
    pub fn expire(&mut self, policy: &Retention) -> Result<ExpireReport, SinkError> {
        let mut report = ExpireReport {
            dry_run: policy.dry_run,
            ..Default::default()
        };
        let predicate = format!(
            "time < TIMESTAMP '{}'",
            mfascope_core::time::format_rfc3339(policy.cutoff_ms)
        );
        for (name, _) in tables() {
            let Some(mut table) = self.table(name)? else {
                continue;
            };
            let user_col = if name == "tickets" {
                "requester"
            } else {
                "user"
            };
            let mut expiry = TableExpiry {
                table: name.to_string(),
                ..Default::default()
            };
            let mut partitions: BTreeMap<Vec<(String, String)>, Vec<DataFile>> = BTreeMap::new();
            for f in block(table.files())? {
                partitions.entry(f.partition.clone()).or_default().push(f);
            }
            for (part, files) in partitions {
                let Some(start) = crate::segment::partition_start(&part) else {
                    continue;
                };
                if start >= policy.cutoff_ms {
                    continue;
                }
                let end = start + 3_600_000;
                let whole = end <= policy.cutoff_ms
                    && policy.hold.users.is_empty()
                    && !policy.hold.overlaps(start, end);
                let mut remove = Vec::new();
                let mut add = Vec::new();
                for f in files {
                    if whole {
                        expiry.files_removed += 1;
                        expiry.rows_removed += f.rows;
                        remove.push(f);
                        continue;
                    }
                    let rel = format!("{name}/{}", f.path);
                    let (batches, positions) = read_parquet(&self.root, &rel)?;
                    let (gone, held) = count_expired(&batches, user_col, policy);
                    expiry.rows_held += held;
                    if gone == 0 {
                        continue;
                    }
                    expiry.rows_removed += gone;
                    if gone == f.rows || policy.dry_run {
                        if gone == f.rows {
                            expiry.files_removed += 1;
                        } else {
                            expiry.files_rewritten += 1;
                        }
                        if !policy.dry_run {
                            remove.push(f);
                        }
                        continue;
                    }
                    let mut kept_rows = Vec::new();
                    for b in batches {
                        let keep = arrow::compute::not(&expired_mask(&b, user_col, policy))
                            .and_then(|keep| arrow::compute::filter_record_batch(&b, &keep))
                            .map_err(|e| corrupt(&self.root, &rel, e))?;
                        if keep.num_rows() > 0 {
                            kept_rows.push(keep);
                        }
                    }
                    let kept = self.place(
                        name,
                        std::slice::from_ref(&f),
                        "expire",
                        (kept_rows, positions),
                    )?;
                    expiry.files_rewritten += 1;
                    add.extend(kept);
                    remove.push(f);
                }
                if policy.dry_run || remove.is_empty() {
                    continue;
                }
                block(table.replace(
                    &remove,
                    add,
                    Rewrite::Expire {
                        predicate: predicate.clone(),
                    },
                ))?;
                self.set_writing(&Writing::default())?;
            }
            report.tables.push(expiry);
        }
        report.tables.push(self.expire_findings(policy)?);
        for (rel, modified) in self.root.files_modified_under("deadletter", ".ndjson")? {
            if modified < policy.cutoff_ms && !policy.hold.overlaps(modified, modified + 1) {
                report.dead_letter_files += 1;
                if !policy.dry_run {
                    self.root.remove(&rel)?;
                }
            }
        }
        Ok(report)
    }

    /// Findings files all of whose findings ended before the cutoff and none of which is held
    /// (findings are delivered by file, so a file goes whole or stays), removed from the
    /// findings table in one commit; vacuum deletes them later, as for events.
    fn expire_findings(&mut self, policy: &Retention) -> Result<TableExpiry, SinkError> {
        let mut expiry = TableExpiry {
            table: FINDINGS.into(),
            ..Default::default()
        };
        if !policy.dry_run {
            let schema = mfascope_core::finding::findings_schema();
            create_with_existing(&self.root, FINDINGS, &schema, &[])?;
        }
        let Some(mut table) = self.table(FINDINGS)? else {
            return Ok(expiry);
        };
        let mut remove = Vec::new();
        for f in block(table.files())? {
            let rel = format!("{FINDINGS}/{}", f.path);
            let (batches, _) = read_parquet(&self.root, &rel)?;
            let mut rows = 0u64;
            let mut all_expired = true;
            for b in &batches {
                let last = millis_column(b, "last_time");
                let first = millis_column(b, "first_time");
                let users = b
                    .column_by_name("user")
                    .map(|c| c.as_string::<i32>().clone());
                for i in 0..b.num_rows() {
                    rows += 1;
                    let (Some(first), Some(last)) = (&first, &last) else {
                        all_expired = false;
                        continue;
                    };
                    let user = users.as_ref().filter(|u| u.is_valid(i)).map(|u| u.value(i));
                    let held = user.is_some_and(|u| policy.hold.users.contains(u))
                        || policy.hold.overlaps(first.value(i), last.value(i) + 1);
                    if last.value(i) >= policy.cutoff_ms || held {
                        all_expired = false;
                    }
                }
            }
            if all_expired && rows > 0 {
                expiry.files_removed += 1;
                expiry.rows_removed += rows;
                remove.push(f);
            }
        }
        if !policy.dry_run && !remove.is_empty() {
            let predicate = format!(
                "last_time < TIMESTAMP '{}'",
                mfascope_core::time::format_rfc3339(policy.cutoff_ms)
            );
            block(table.replace(&remove, Vec::new(), Rewrite::Expire { predicate }))?;
        }
        Ok(expiry)
    }

    /// Delete the files removed from every table at least `retain` ago; returns their paths.
    pub fn vacuum(&mut self, retain: Duration, dry_run: bool) -> Result<Vec<String>, SinkError> {
        let mut deleted = Vec::new();
        for (name, _, _) in all_tables() {
            if let Some(mut table) = self.table(name)? {
                deleted.extend(
                    block(table.vacuum(retain, dry_run))?
                        .into_iter()
                        .map(|p| format!("{name}/{p}")),
                );
            }
        }
        Ok(deleted)
    }
}

fn block<T>(
    f: impl std::future::Future<Output = Result<T, mfascope_table::TableError>> + Send,
) -> Result<T, SinkError>
where
    T: Send,
{
    Remote::block_on(f).map_err(SinkError::from)
}

fn corrupt(root: &Location, rel: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::CorruptState {
        path: root.describe(rel),
        reason: e.to_string(),
    }
}

fn millis_column(b: &RecordBatch, name: &str) -> Option<arrow::array::TimestampMillisecondArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .cloned()
}

/// Per row of `b`: true when it is past the policy and not held.
fn expired_mask(b: &RecordBatch, user_col: &str, policy: &Retention) -> BooleanArray {
    let times = millis_column(b, "time");
    let users = b
        .column_by_name(user_col)
        .and_then(|c| c.as_string_opt::<i32>())
        .cloned();
    (0..b.num_rows())
        .map(|i| {
            let Some(t) = times.as_ref().filter(|t| t.is_valid(i)).map(|t| t.value(i)) else {
                return Some(false);
            };
            let user = users.as_ref().filter(|u| u.is_valid(i)).map(|u| u.value(i));
            Some(t < policy.cutoff_ms && !policy.hold.holds(user, t))
        })
        .collect()
}

/// `(rows expiring, rows past the policy but held)` of one file's batches.
fn count_expired(batches: &[RecordBatch], user_col: &str, policy: &Retention) -> (u64, u64) {
    let (mut gone, mut held) = (0, 0);
    let no_hold = Retention {
        hold: Hold::default(),
        ..policy.clone()
    };
    for b in batches {
        let expired = expired_mask(b, user_col, policy);
        let past = expired_mask(b, user_col, &no_hold);
        gone += expired.true_count() as u64;
        held += (past.true_count() - expired.true_count()) as u64;
    }
    (gone, held)
}

/// The batches of a Parquet file under the root and the source positions in its metadata.
fn read_parquet(
    root: &Location,
    rel: &str,
) -> Result<(Vec<RecordBatch>, Vec<serde_json::Value>), SinkError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = root
        .read(rel)?
        .ok_or_else(|| corrupt(root, rel, "the table lists it but it is missing"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| corrupt(root, rel, e))?;
    let positions = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == META_POSITIONS))
        .and_then(|k| k.value.as_deref())
        .and_then(|v| serde_json::from_str::<Vec<serde_json::Value>>(v).ok())
        .unwrap_or_default();
    let batches = builder
        .build()
        .map_err(|e| corrupt(root, rel, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(root, rel, e))?;
    Ok((batches, positions))
}

/// Rows of the Parquet file `bytes` (from its footer).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_partitions_start_on_the_hour() {
        let p = vec![
            ("dt".to_string(), "2024-05-01".to_string()),
            ("hour".to_string(), "07".to_string()),
        ];
        assert_eq!(
            crate::segment::partition_start(&p),
            Some(mfascope_core::time::parse_rfc3339("2024-05-01T07:00:00Z").unwrap())
        );
    }

    #[test]
    fn a_hold_keeps_its_users_and_ranges() {
        let hold = Hold {
            users: ["alice".to_string()].into(),
            ranges: vec![(100, 200)],
        };
        assert!(hold.holds(Some("alice"), 5));
        assert!(hold.holds(Some("bob"), 150));
        assert!(!hold.holds(Some("bob"), 200) && !hold.holds(None, 99));
    }
}
