//! A segment is the unit of commit: the events (and support tickets) of a contiguous stretch of
//! input, split by hour, plus its dead letters and the input positions it advances. Commit order:
//! temp files (fsync) → intent log → renames (fsync dirs) → Delta commits → checkpoint; on
//! object storage uploads → intent log → server-side copies → Delta commits → checkpoint. Names derive from where the segment starts, so a replay
//! after a crash writes the same names.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

use super::state::observer_state_rel;
use super::table::TableAdd;
use super::{
    Checkpoint, DeadLetter, InputState, OutDir, SinkError, io_err, parquet::write_partition,
};

/// Where a segment's data came from in one input.
#[derive(Debug, Clone, Serialize)]
pub struct Position {
    /// Input fingerprint (hex).
    pub fingerprint: String,
    /// Input name.
    pub path: String,
    /// First byte covered.
    pub start: u64,
    /// One past the last byte covered.
    pub end: u64,
    /// Line number after the covered bytes.
    #[serde(skip)]
    pub end_line: u64,
}

/// Events, dead letters and positions to commit together.
#[derive(Debug, Default)]
pub struct Segment {
    /// Stable name (`part-<hash of first input and start offset>`).
    pub id: String,
    /// Event batches by hour index (epoch ms / 3 600 000).
    pub partitions: BTreeMap<i64, Vec<RecordBatch>>,
    /// Support-ticket batches by hour index of creation (the `tickets` table).
    pub tickets: BTreeMap<i64, Vec<RecordBatch>>,
    /// Records that failed.
    pub dead_letters: Vec<DeadLetter>,
    /// Inputs advanced, in order.
    pub positions: Vec<Position>,
    /// The observers' state after this segment's events (name, bytes), committed with it; `None`
    /// when not saved this time (the segment's event files join the checkpoint's replay list).
    pub state: Option<Vec<(String, Vec<u8>)>>,
}

/// What a commit wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct SegmentStats {
    /// Files made visible.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Event and ticket rows.
    pub rows: u64,
}

/// Epoch ms of the start of the hour partition `[("dt", …), ("hour", …)]` (the inverse of
/// [`partition_dir`]); `None` when either value is missing or malformed.
pub fn partition_start(part: &[(String, String)]) -> Option<i64> {
    let get = |k: &str| part.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let day = chrono::NaiveDate::parse_from_str(get("dt")?, "%Y-%m-%d").ok()?;
    let hour: u32 = get("hour")?.parse().ok()?;
    Some(day.and_hms_opt(hour, 0, 0)?.and_utc().timestamp_millis())
}

/// Relative directory of an hour partition.
pub fn partition_dir(hour: i64) -> String {
    let t: DateTime<Utc> = DateTime::from_timestamp(hour * 3600, 0).expect("hour in range");
    format!(
        "dt={:04}-{:02}-{:02}/hour={:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

/// Write and commit `seg`, advancing the checkpoint of `out`.
pub fn commit_segment(out: &mut OutDir, seg: Segment) -> Result<SegmentStats, SinkError> {
    let mut stats = SegmentStats::default();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut adds: Vec<TableAdd> = Vec::new();
    let positions_json = serde_json::to_string(&seg.positions).expect("serializable");
    // Stage outside `events/` so readers never see partial files; publishing makes them
    // visible atomically (a rename, or a server-side copy on object storage).
    let staging = out.staging_dir();
    let result = (|| {
        fs::create_dir_all(&staging).map_err(io_err("creating", &staging))?;
        for (table, parts) in [("events", &seg.partitions), ("tickets", &seg.tickets)] {
            for (hour, batches) in parts {
                let path = format!("{}/{}.parquet", partition_dir(*hour), seg.id);
                let tmp = staging.join(format!("{}.{table}.{hour}.parquet", seg.id));
                let written = write_partition(&tmp, batches, &positions_json)?;
                files.push((tmp, format!("{table}/{path}")));
                adds.push(TableAdd {
                    table: table.to_string(),
                    path,
                    size: written.bytes,
                    rows: written.rows,
                    time: Some(written.time),
                });
                let (rows, bytes) = (written.rows, written.bytes);
                stats.rows += rows;
                stats.bytes += bytes;
            }
        }
        for (name, bytes) in seg.state.iter().flatten() {
            let tmp = staging.join(format!("{}.state.{name}", seg.id));
            write_synced(&tmp, bytes)?;
            files.push((tmp, observer_state_rel(out.scope(), name)));
        }
        if !seg.dead_letters.is_empty() {
            let dst = format!("deadletter/{}.ndjson", seg.id);
            let tmp = staging.join(format!("{}.deadletter.ndjson", seg.id));
            write_dead_letters(&tmp, &seg.dead_letters)?;
            files.push((tmp, dst));
        }
        Ok::<_, SinkError>(())
    })();
    if let Err(e) = result {
        // Nothing was made visible; drop what was staged.
        out.clear_staging()?;
        return Err(e);
    }

    let mut checkpoint: Checkpoint = out.checkpoint.clone();
    checkpoint.version = 1;
    checkpoint.segments += 1;
    if let Some(state) = &seg.state {
        checkpoint.replay.clear();
        checkpoint.saved = state.iter().map(|(name, _)| name.clone()).collect();
    } else {
        checkpoint.replay.extend(
            files
                .iter()
                .filter(|(_, dst)| dst.starts_with("events/"))
                .map(|(_, dst)| dst.clone()),
        );
    }
    for p in &seg.positions {
        checkpoint.inputs.insert(
            p.fingerprint.clone(),
            InputState {
                path: p.path.clone(),
                offset: p.end,
                line: p.end_line,
            },
        );
    }
    stats.files = files.len() as u64;
    out.publish(files, adds, checkpoint)?;
    Ok(stats)
}

fn write_synced(tmp: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut file = File::create(tmp).map_err(io_err("creating", tmp))?;
    file.write_all(bytes).map_err(io_err("writing", tmp))?;
    file.sync_all().map_err(io_err("syncing", tmp))
}

fn write_dead_letters(tmp: &Path, letters: &[DeadLetter]) -> Result<(), SinkError> {
    let file = File::create(tmp).map_err(io_err("creating", tmp))?;
    let mut w = BufWriter::new(file);
    for dl in letters {
        serde_json::to_writer(&mut w, dl).map_err(|e| io_err("writing", tmp)(e.into()))?;
        w.write_all(b"\n").map_err(io_err("writing", tmp))?;
    }
    let file = w
        .into_inner()
        .map_err(|e| io_err("writing", tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err("syncing", tmp))
}
