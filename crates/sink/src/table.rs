//! The store's Delta tables (`events/`, `tickets/`) as the sink commits to them: which tables
//! there are and their schemas, where each one lives (a directory URL, and the object store
//! when remote), and the idempotent commit of a segment's files under the writer's app
//! transaction. It never writes or moves data files (the segment does) and never decides what
//! a segment holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use mfascope_table::{DataFile, Table};
use serde::{Deserialize, Serialize};

use super::{Location, SinkError, location::Remote};

/// The tables of a store: name (the directory under the root) and schema.
pub fn tables() -> [(&'static str, SchemaRef); 2] {
    [
        ("events", mfascope_core::event::event_schema()),
        ("tickets", mfascope_core::ticket::ticket_schema()),
    ]
}

/// The partition columns of every table (hive directories `dt=YYYY-MM-DD/hour=HH`).
pub const PARTITIONS: [&str; 2] = ["dt", "hour"];

/// A data file of a segment, to be added to `table` when the segment commits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableAdd {
    /// `events` or `tickets`.
    pub table: String,
    /// Path relative to the table (`dt=…/hour=…/NAME.parquet`).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// Earliest and latest `time` (epoch ms), recorded as the file's statistics.
    #[serde(default)]
    pub time: Option<(i64, i64)>,
}

impl TableAdd {
    /// The Delta data file: partition values from the path's `dt=`/`hour=` directories.
    pub fn data_file(&self) -> DataFile {
        DataFile {
            path: self.path.clone(),
            size: self.size as i64,
            rows: self.rows,
            partition: partition_of(&self.path),
            modified_ms: 0,
            time: self.time,
        }
    }
}

/// `[("dt", …), ("hour", …)]` from a path `dt=…/hour=…/NAME`.
pub fn partition_of(path: &str) -> Vec<(String, String)> {
    PARTITIONS
        .iter()
        .map(|p| {
            let prefix = format!("{p}=");
            let value = path
                .split('/')
                .find_map(|seg| seg.strip_prefix(&prefix))
                .unwrap_or_default();
            ((*p).to_string(), value.to_string())
        })
        .collect()
}

/// The URL of table `name` under `root` (a directory URL, ending in `/`) and the object store
/// to reach it with (`None` for a local directory).
pub fn table_url(
    root: &Location,
    name: &str,
) -> Result<(url::Url, Option<Arc<dyn object_store::ObjectStore>>), SinkError> {
    match root {
        Location::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(super::io_err("creating", dir))?;
            let abs = dir
                .canonicalize()
                .map_err(super::io_err("resolving", dir))?;
            let url = url::Url::from_directory_path(abs.join(name)).map_err(|()| {
                SinkError::CorruptState {
                    path: dir.display().to_string(),
                    reason: "the output directory has no absolute file URL".into(),
                }
            })?;
            Ok((url, None))
        }
        Location::Remote(remote) => {
            let text = format!("{}/", remote.describe(name).trim_end_matches('/'));
            let url = url::Url::parse(&text).map_err(|e| SinkError::CorruptState {
                path: text.clone(),
                reason: e.to_string(),
            })?;
            Ok((url, Some(remote.store())))
        }
    }
}

/// Whether table `name` under `root` has a Delta log.
pub fn has_log(root: &Location, name: &str) -> Result<bool, SinkError> {
    root.has_file_under(&format!("{name}/_delta_log"), ".json")
}

/// The open tables of one writer, each opened (created when new) on its first commit.
#[derive(Default)]
pub(crate) struct Tables {
    open: BTreeMap<String, Table>,
}

impl Tables {
    /// Add `adds` to their tables as the writer `app`'s commit `version`. After a crash
    /// (`recovering`), each table once: a table whose log already holds that version of `app`
    /// is left as it is; otherwise the version is new (the writer holds its scope's lock).
    pub(crate) fn commit(
        &mut self,
        root: &Location,
        adds: &[TableAdd],
        (app, version): (&str, i64),
        recovering: bool,
    ) -> Result<(), SinkError> {
        let mut by_table: BTreeMap<&str, Vec<DataFile>> = BTreeMap::new();
        for add in adds {
            by_table
                .entry(add.table.as_str())
                .or_default()
                .push(add.data_file());
        }
        for (name, files) in by_table {
            if !self.open.contains_key(name) {
                let schema = tables()
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, s)| s)
                    .ok_or_else(|| SinkError::CorruptState {
                        path: root.describe(name),
                        reason: format!("`{name}` is not a table of the store"),
                    })?;
                let (url, store) = table_url(root, name)?;
                let table =
                    Remote::block_on(Table::open_or_create(url, store, &schema, &PARTITIONS))?;
                self.open.insert(name.to_string(), table);
            }
            let table = self.open.get_mut(name).expect("opened above");
            Remote::block_on(async {
                if recovering {
                    table.refresh().await?;
                    if table.txn_version(app).await?.is_some_and(|v| v >= version) {
                        return Ok(());
                    }
                }
                table.append(files, Some((app, version))).await.map(drop)
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_come_from_the_hive_directories() {
        assert_eq!(
            partition_of("dt=2024-05-01/hour=07/part-1.parquet"),
            vec![
                ("dt".to_string(), "2024-05-01".to_string()),
                ("hour".to_string(), "07".to_string())
            ]
        );
    }
}
