//! The store's Delta tables (`events/`, `tickets/`, `findings/`) as their writers commit to
//! them: which tables there are and their schemas, where each one lives (a directory URL, and
//! the object store when remote), the idempotent commit of a segment's files under the
//! writer's app transaction, and the findings files the rule engine adds. It never writes or
//! moves data files (the segment and the rule engine do) and never decides what they hold.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use arrow::datatypes::SchemaRef;
use mfascope_core::sync::lock;
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

/// The partition columns of the event tables (hive directories `dt=YYYY-MM-DD/hour=HH`).
pub const PARTITIONS: [&str; 2] = ["dt", "hour"];

/// The findings table: one flat directory of Parquet files, no partition columns.
pub const FINDINGS: &str = "findings";

/// Every table of a store with its schema and partition columns (event tables first).
pub fn all_tables() -> Vec<(&'static str, SchemaRef, &'static [&'static str])> {
    let mut all: Vec<_> = tables()
        .into_iter()
        .map(|(name, schema)| (name, schema, &PARTITIONS[..]))
        .collect();
    all.push((FINDINGS, mfascope_core::finding::findings_schema(), &[]));
    all
}

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

/// The files of table `name` under `root` at its latest version; `None` when it has no log.
pub fn live_files(root: &Location, name: &str) -> Result<Option<Vec<DataFile>>, SinkError> {
    let (url, store) = table_url(root, name)?;
    Remote::block_on(async move {
        match Table::open(url, store, mfascope_table::AsOf::Latest).await? {
            Some(mut table) => table.files().await.map(Some),
            None => Ok(None),
        }
    })
    .map_err(Into::into)
}

/// Create table `name` when it has no log, with the Parquet files already under it (written
/// before the store had the table format) in the creating commit; returns the files and rows
/// it took in, `None` when it had a log or no files. Another writer creating it at the same
/// moment makes this one a no-op.
pub(crate) fn create_with_existing(
    root: &Location,
    name: &str,
    schema: &SchemaRef,
    partitions: &[&str],
) -> Result<Option<(u64, u64)>, SinkError> {
    if has_log(root, name)? {
        return Ok(None);
    }
    let mut files = Vec::new();
    for rel in root.files_under(name, ".parquet")? {
        let path = rel[name.len() + 1..].to_string();
        let bytes = root.read(&rel)?.unwrap_or_default();
        let rows = parquet_rows(&bytes).map_err(|reason| SinkError::CorruptState {
            path: root.describe(&rel),
            reason,
        })?;
        files.push(DataFile {
            partition: if partitions.is_empty() {
                Vec::new()
            } else {
                partition_of(&path)
            },
            path,
            size: bytes.len() as i64,
            rows,
            modified_ms: 0,
            time: None,
        });
    }
    if files.is_empty() {
        return Ok(None);
    }
    let taken = (files.len() as u64, files.iter().map(|f| f.rows).sum());
    let (url, store) = table_url(root, name)?;
    match Remote::block_on(Table::create_with_files(
        url, store, schema, partitions, files,
    )) {
        Ok(_) => Ok(Some(taken)),
        Err(_) if has_log(root, name)? => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Rows of a Parquet file, from its footer.
pub(crate) fn parquet_rows(bytes: &[u8]) -> Result<u64, String> {
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::copy_from_slice(bytes))
        .map_err(|e| e.to_string())?;
    Ok(meta.file_metadata().num_rows() as u64)
}

/// The findings table as the rule engine adds its files: opened (created, with any findings
/// files from before the table format) on the first add and kept open, so an add is one put.
pub struct FindingsTable {
    root: Location,
    table: Option<Table>,
}

impl FindingsTable {
    /// The findings table of the store at `root`.
    pub fn new(root: &Location) -> Self {
        FindingsTable {
            root: root.clone(),
            table: None,
        }
    }

    /// Add the file `findings/NAME` (`bytes` long, `rows` findings) in one commit.
    pub fn add(&mut self, name: &str, bytes: u64, rows: u64) -> Result<u64, SinkError> {
        let file = DataFile {
            path: name.to_string(),
            size: bytes as i64,
            rows,
            partition: Vec::new(),
            modified_ms: 0,
            time: None,
        };
        if self.table.is_none() {
            let schema = mfascope_core::finding::findings_schema();
            create_with_existing(&self.root, FINDINGS, &schema, &[])?;
            let (url, store) = table_url(&self.root, FINDINGS)?;
            self.table = Some(Remote::block_on(Table::open_or_create(
                url,
                store,
                &schema,
                &[],
            ))?);
        }
        let table = self.table.as_mut().expect("opened above");
        Ok(Remote::block_on(table.append(vec![file], None))?)
    }
}

/// The open tables of a store, each opened (created when new) on its first commit.
#[derive(Default)]
pub(crate) struct Tables {
    open: BTreeMap<String, Table>,
}

/// The tables of the store at `root`, shared by every writer of this process that commits to
/// it (the Kafka partitions' scopes, on two writer threads): the process's own commits then
/// follow each other version after version, one conditional put each. With a handle per scope
/// nearly every commit found its version taken by a sibling and fell back to delta-rs's
/// conflict check, which rebuilds the table's state (1M events from 4 partitions: ~1 CPU-s of
/// the run's 24). Other processes' commits still take that path. Held while the process has a
/// writer of the store open.
pub(crate) fn shared_tables(root: &Location) -> Arc<Mutex<Tables>> {
    static OPEN: LazyLock<Mutex<HashMap<String, Weak<Mutex<Tables>>>>> =
        LazyLock::new(Default::default);
    let mut open = lock(&OPEN);
    open.retain(|_, tables| tables.strong_count() > 0);
    let key = root.to_string();
    if let Some(tables) = open.get(&key).and_then(Weak::upgrade) {
        return tables;
    }
    let tables = Arc::new(Mutex::new(Tables::default()));
    open.insert(key, Arc::downgrade(&tables));
    tables
}

impl Tables {
    /// Read the commits made since the open tables were last read. A writer taking over a
    /// scope (a Kafka partition another member committed to until it released the lock) calls
    /// this first: its next commit is then checked only against commits made after the
    /// takeover; checked against the previous owner's commits of the same app id, delta-rs
    /// takes them for a concurrent transaction of that app and refuses the commit.
    pub(crate) fn refresh(&mut self) -> Result<(), SinkError> {
        for table in self.open.values_mut() {
            Remote::block_on(table.refresh())?;
        }
        Ok(())
    }

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
