//! The table format of the store: a Delta Lake log (`_delta_log/`) over the Parquet files
//! mfascope writes (`events/dt=…/hour=…/*.parquet`, the same for `tickets/`), so every reader —
//! mfascope, Spark, Trino, delta-rs, DuckDB's delta extension — sees whole commits only, and
//! compaction and retention can replace files under them.
//!
//! A writer's commit adds files and records its progress as a Delta app transaction (`txn`:
//! app id = the writer's state scope, version = its commit sequence) in the same log entry, the
//! way kafka-delta-ingest makes Kafka → Delta exactly-once: after a crash the writer compares
//! its intent with [`Table::txn_version`] and commits again only what is missing. Maintenance
//! ([`Table::replace`]) removes and adds files in one commit; [`Table::vacuum`] deletes files
//! removed long enough ago that no reader still reads them.
//!
//! It owns a table's `_delta_log/`; it never writes data files (the sink and the maintenance
//! jobs do) and never decides what to commit.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mfascope_table::TableError> {
//! use arrow::datatypes::{DataType, Field, Schema};
//! let schema = Schema::new(vec![Field::new("event_id", DataType::Utf8, false)]);
//! let url = url::Url::parse("file:///data/mfa/events/").unwrap();
//! let mut table = mfascope_table::Table::open_or_create(url, None, &schema, &["dt", "hour"]).await?;
//! let file = mfascope_table::DataFile {
//!     path: "dt=2024-05-01/hour=10/part-1.parquet".into(),
//!     size: 1234,
//!     rows: 10,
//!     partition: vec![("dt".into(), "2024-05-01".into()), ("hour".into(), "10".into())],
//!     modified_ms: 0,
//!     time: None,
//! };
//! table.append(vec![file], Some(("_state", 1))).await?;
//! assert_eq!(table.txn_version("_state").await?, Some(1));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::num::NonZero;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use chrono::{DateTime, Utc};
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{
    CommitBuilder, CommitData, CommitProperties, TableReference, TransactionError,
};
use deltalake_core::kernel::{Action, Add, StructType, Transaction};
use deltalake_core::logstore::CommitOrBytes;
use deltalake_core::operations::vacuum::VacuumMode;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

/// Why a table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The Delta log could not be read or written.
    #[error("Delta table {url}: {source}")]
    Delta {
        /// The table's location.
        url: String,
        /// delta-rs's error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// A file to remove is no longer in the table (another job removed it first).
    #[error("Delta table {url}: {path} was removed by another commit; run the job again")]
    Gone {
        /// The table's location.
        url: String,
        /// The file.
        path: String,
    },
    /// The schema has a type Delta cannot hold.
    #[error("Delta table {url}: schema: {detail}")]
    Schema {
        /// The table's location.
        url: String,
        /// What could not be converted.
        detail: String,
    },
}

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum AsOf {
    /// The latest commit.
    #[default]
    Latest,
    /// A table version.
    Version(u64),
    /// The last commit at or before a time.
    Time(DateTime<Utc>),
}

/// A Parquet file to make part of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Path relative to the table root (`dt=…/hour=…/NAME.parquet`).
    pub path: String,
    /// Bytes.
    pub size: i64,
    /// Rows (recorded as the file's `numRecords` statistic).
    pub rows: u64,
    /// Partition column values, in the table's partition order.
    pub partition: Vec<(String, String)>,
    /// When the commit that added it was made (epoch ms; 0 for a file not committed yet).
    pub modified_ms: i64,
    /// Earliest and latest value of the table's `time` column (epoch ms), when known: kept as
    /// the file's `minValues`/`maxValues` statistics, which readers use to skip files and to
    /// read them in time order.
    pub time: Option<(i64, i64)>,
}

impl DataFile {
    /// The value of partition column `name`.
    pub fn partition_value(&self, name: &str) -> Option<&str> {
        self.partition
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why files are replaced (recorded as the commit's operation).
#[derive(Debug, Clone)]
pub enum Rewrite {
    /// Small files merged into larger ones: no row changes (`dataChange: false`).
    Compact {
        /// The target file size, bytes.
        target_size: i64,
    },
    /// Rows past the retention policy removed (`DELETE`); `predicate` says which, for readers
    /// of the table history.
    Expire {
        /// The policy as SQL (`time < TIMESTAMP '…'`).
        predicate: String,
    },
}

/// One Delta table of the store.
pub struct Table {
    url: String,
    /// The table as last read, with its file list (delta-rs materializes it).
    table: DeltaTable,
    /// The last version known: `table`'s, or later when this writer appended past it. Every
    /// version between the two is one of this writer's blind appends.
    version: u64,
}

/// delta-rs' commit protocol over any object store we pass in: a commit is a put that fails when
/// the version exists (`PutMode::Create`: `If-None-Match` on S3, generation preconditions on
/// GCS and Azure), so concurrent writers never overwrite each other's versions. delta-rs only
/// registers it for `file://` and `memory://`; the cloud schemes get it here instead of from the
/// `deltalake-aws`/`-gcp`/`-azure` crates (whose SDK clients we do not use: the store is ours).
struct ConditionalPutLogs;

impl deltalake_core::logstore::LogStoreFactory for ConditionalPutLogs {
    fn with_options(
        &self,
        prefixed_store: deltalake_core::logstore::ObjectStoreRef,
        root_store: deltalake_core::logstore::ObjectStoreRef,
        location: &url::Url,
        options: &deltalake_core::logstore::StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn deltalake_core::logstore::LogStore>> {
        Ok(deltalake_core::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_cloud_schemes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let factories = deltalake_core::logstore::logstore_factories();
        for scheme in ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"] {
            if let Ok(url) = url::Url::parse(scheme) {
                factories
                    .entry(url)
                    .or_insert_with(|| Arc::new(ConditionalPutLogs));
            }
        }
    });
}

fn builder(
    url: &url::Url,
    store: Option<Arc<dyn ObjectStore>>,
) -> Result<deltalake_core::DeltaTableBuilder, DeltaTableError> {
    register_cloud_schemes();
    let builder = deltalake_core::DeltaTableBuilder::from_url(url.clone())?;
    Ok(match store {
        Some(store) => builder.with_storage_backend(store, url.clone()),
        None => builder,
    })
}

/// The Delta schema of `schema` plus string partition columns. Unsigned integers widen to
/// `long` (Delta has no unsigned types; Spark reads Parquet `UINT_32` as `long`), dictionaries
/// are their values, millisecond UTC timestamps are `timestamp`.
fn delta_schema(schema: &Schema, partitions: &[&str]) -> Result<StructType, String> {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::UInt32 | DataType::UInt64 => {
                f.as_ref().clone().with_data_type(DataType::Int64)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    for p in partitions {
        fields.push(Field::new(*p, DataType::Utf8, true));
    }
    (&Schema::new(fields))
        .try_into_kernel()
        .map_err(|e| e.to_string())
}

impl Table {
    /// Open the table at `url` (a directory URL ending in `/`; `store` is the object store whose
    /// root is the URL's bucket, or `None` for local paths) as of `as_of`; `None` when it has
    /// no Delta log.
    pub async fn open(
        url: url::Url,
        store: Option<Arc<dyn ObjectStore>>,
        as_of: AsOf,
    ) -> Result<Option<Table>, TableError> {
        let name = url.to_string();
        let delta = |source| TableError::Delta {
            url: name.clone(),
            source: Box::new(source),
        };
        let mut table = builder(&url, store)
            .map_err(delta)?
            .build()
            .map_err(delta)?;
        // No log (or no directory): not a table — said without asking delta-rs, which logs
        // an error for it.
        let root = table.log_store().object_store(None);
        let first = futures::StreamExt::next(
            &mut root.list(Some(&object_store::path::Path::from("_delta_log"))),
        )
        .await;
        match first {
            None | Some(Err(object_store::Error::NotFound { .. })) => return Ok(None),
            Some(Err(e)) => return Err(delta(DeltaTableError::ObjectStore { source: e })),
            Some(Ok(_)) => {}
        }
        let loaded = match as_of {
            AsOf::Latest => table.load().await,
            AsOf::Version(v) => table.load_version(v).await,
            AsOf::Time(t) => table.load_with_datetime(t).await,
        };
        match loaded {
            Ok(()) => Ok(Some(Table::from_delta(name, table))),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(delta(e)),
        }
    }

    /// Open the table at `url`, creating it (with `schema` plus the string partition columns
    /// `partitions`) when it has no log yet. Two writers creating it at once both succeed.
    pub async fn open_or_create(
        url: url::Url,
        store: Option<Arc<dyn ObjectStore>>,
        schema: &Schema,
        partitions: &[&str],
    ) -> Result<Table, TableError> {
        if let Some(table) = Table::open(url.clone(), store.clone(), AsOf::Latest).await? {
            return Ok(table);
        }
        match Table::create_with_files(url.clone(), store.clone(), schema, partitions, vec![]).await
        {
            Ok(table) => Ok(table),
            // Another writer created it first: read theirs.
            Err(e) => Table::open(url, store, AsOf::Latest).await?.ok_or(e),
        }
    }

    /// Create the table at `url` with `files` already in it, in one commit (a store's files
    /// written before it had a log). Fails when the table exists.
    pub async fn create_with_files(
        url: url::Url,
        store: Option<Arc<dyn ObjectStore>>,
        schema: &Schema,
        partitions: &[&str],
        files: Vec<DataFile>,
    ) -> Result<Table, TableError> {
        let name = url.to_string();
        let kernel = delta_schema(schema, partitions).map_err(|detail| TableError::Schema {
            url: name.clone(),
            detail,
        })?;
        let delta = |e| TableError::Delta {
            url: name.clone(),
            source: Box::new(e),
        };
        let log_store = builder(&url, store)
            .and_then(deltalake_core::DeltaTableBuilder::build)
            .map_err(delta)?
            .log_store();
        let now = Utc::now().timestamp_millis();
        let table = deltalake_core::operations::create::CreateBuilder::new()
            .with_log_store(log_store)
            .with_columns(kernel.fields().cloned())
            .with_partition_columns(partitions.iter().map(ToString::to_string))
            .with_save_mode(SaveMode::ErrorIfExists)
            // Version 0 or nothing: retried past another writer's create, delta-rs would
            // commit this table's metadata again as version 1, and every writer appending
            // after it would fail ("Metadata changed since last commit").
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .with_actions(
                files
                    .into_iter()
                    .map(|f| Action::Add(add_action(f, now, true))),
            )
            .await
            .map_err(delta)?;
        Ok(Table::from_delta(name, table))
    }

    fn from_delta(url: String, table: DeltaTable) -> Table {
        let version = table.version().unwrap_or_default();
        Table {
            url,
            table,
            version,
        }
    }

    fn err(&self, source: DeltaTableError) -> TableError {
        TableError::Delta {
            url: self.url.clone(),
            source: Box::new(source),
        }
    }

    /// The table's location.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The version read (or last committed).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Read the commits made since this table was opened (other writers' included).
    pub async fn refresh(&mut self) -> Result<(), TableError> {
        self.table.update_state().await.map_err(|e| self.err(e))?;
        self.version = self.table.version().unwrap_or_default();
        Ok(())
    }

    /// The state read, brought up to this writer's own appends since (and no further: a
    /// commit made from it is checked against every other commit after them).
    async fn current(
        &mut self,
    ) -> Result<&deltalake_core::table::state::DeltaTableState, TableError> {
        if self.table.version() != Some(self.version) {
            self.table
                .update_incremental(Some(self.version))
                .await
                .map_err(|e| self.err(e))?;
        }
        self.table.snapshot().map_err(|e| self.err(e))
    }

    async fn commit(
        &mut self,
        actions: Vec<Action>,
        properties: CommitProperties,
        operation: DeltaOperation,
    ) -> Result<u64, TableError> {
        let snapshot = self.table.snapshot().map_err(|e| self.err(e))?;
        let committed = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(snapshot as &dyn TableReference),
                self.table.log_store(),
                operation,
            )
            .await
            .map_err(|e| self.err(e))?;
        // The commit's own snapshot (other writers' commits it was retried past included).
        self.table.state = Some(committed.snapshot());
        self.version = committed.version();
        Ok(self.version)
    }

    /// Commit `data` as the version after the last one known, when that is still free: one
    /// conditional put, without bringing the file list up to date (delta-rs rebuilds it after
    /// every commit, a cost that grows with the table's files). `None` when another writer took
    /// the version: the caller commits through delta-rs instead, which reads the commits in
    /// between and checks them for conflicts.
    async fn commit_next(&mut self, data: &CommitData) -> Result<Option<u64>, TableError> {
        let next = self.version + 1;
        let bytes = data
            .get_bytes()
            .map_err(|e| self.err(DeltaTableError::from(e)))?;
        match self
            .table
            .log_store()
            .write_commit_entry(next, CommitOrBytes::LogBytes(bytes), uuid::Uuid::new_v4())
            .await
        {
            Ok(()) => {
                self.version = next;
                self.checkpoint_if_due().await;
                Ok(Some(next))
            }
            Err(TransactionError::VersionAlreadyExists(_)) => Ok(None),
            Err(e) => Err(self.err(e.into())),
        }
    }

    /// After this writer's commit of `self.version`: when the table's checkpoint interval
    /// falls due on it, write the checkpoint (delta-rs's kernel replays the log once), then
    /// delete log entries past the table's log retention, as delta-rs's own commits do. A
    /// failure is logged and the commit stands: without a checkpoint readers replay more log.
    async fn checkpoint_if_due(&self) {
        use deltalake_core::table::config::TablePropertiesExt;
        let Ok(state) = self.table.snapshot() else {
            return;
        };
        let config = state.table_config();
        let version = self.version;
        if !(version + 1).is_multiple_of(config.checkpoint_interval().get()) {
            return;
        }
        let cleanup = config.enable_expired_log_cleanup();
        let cutoff =
            Utc::now().timestamp_millis() - config.log_retention_duration().as_millis() as i64;
        let log_store = self.table.log_store();
        let engine = checkpoint_engine(log_store.root_object_store(None));
        let root = self.url.clone();
        let written = tokio::task::spawn_blocking(move || {
            buoyant_kernel::Snapshot::builder_for(root)
                .at_version(version)
                .build(engine.as_ref())
                .and_then(|snapshot| snapshot.checkpoint(engine.as_ref(), None))
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let cleaned = match written {
            Ok(()) if cleanup => deltalake_core::checkpoints::cleanup_expired_logs_for(
                version,
                log_store.as_ref(),
                cutoff,
                None,
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
            other => other,
        };
        if let Err(e) = cleaned {
            tracing::warn!(table = %self.url, version, error = %e, "Delta checkpoint not written");
        }
    }

    /// Make `files` part of the table in one commit, with the writer's `(app id, version)`
    /// transaction when given; returns the table version. Concurrent appends by other writers
    /// are retried past, as Delta's conflict rules allow blind appends.
    pub async fn append(
        &mut self,
        files: Vec<DataFile>,
        txn: Option<(&str, i64)>,
    ) -> Result<u64, TableError> {
        let now = Utc::now().timestamp_millis();
        let actions = files
            .into_iter()
            .map(|f| Action::Add(add_action(f, now, true)))
            .collect();
        let txns: Vec<Transaction> = txn
            .map(|(app, version)| Transaction::new(app, version))
            .into_iter()
            .collect();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        let data = CommitData::new(actions, operation, HashMap::new(), txns);
        if let Some(version) = self.commit_next(&data).await? {
            return Ok(version);
        }
        let properties = data
            .app_transactions
            .into_iter()
            .fold(CommitProperties::default(), |p, t| {
                p.with_application_transaction(t)
            });
        let actions = data
            .actions
            .into_iter()
            .filter(|a| !matches!(a, Action::CommitInfo(_) | Action::Txn(_)))
            .collect();
        self.current().await?;
        self.commit(actions, properties, data.operation).await
    }

    /// Remove `remove` and add `add` in one commit. Fails (changing nothing) when a commit
    /// removed any of `remove` first; callers that remove files hold one lock (maintenance), so
    /// that check and the commit do not race.
    pub async fn replace(
        &mut self,
        remove: &[DataFile],
        add: Vec<DataFile>,
        why: Rewrite,
    ) -> Result<u64, TableError> {
        self.refresh().await?;
        let live: std::collections::HashSet<String> =
            self.files().await?.into_iter().map(|f| f.path).collect();
        if let Some(gone) = remove.iter().find(|f| !live.contains(&f.path)) {
            return Err(TableError::Gone {
                url: self.url.clone(),
                path: gone.path.clone(),
            });
        }
        let now = Utc::now().timestamp_millis();
        let data_change = !matches!(why, Rewrite::Compact { .. });
        let mut actions: Vec<Action> = remove
            .iter()
            .map(|f| {
                let add = add_action(f.clone(), now, data_change);
                Action::Remove(deltalake_core::kernel::Remove {
                    path: add.path,
                    data_change,
                    deletion_timestamp: Some(now),
                    extended_file_metadata: Some(true),
                    partition_values: Some(add.partition_values),
                    size: Some(add.size),
                    ..Default::default()
                })
            })
            .collect();
        actions.extend(
            add.into_iter()
                .map(|f| Action::Add(add_action(f, now, data_change))),
        );
        let operation = match why {
            Rewrite::Compact { target_size } => DeltaOperation::Optimize {
                predicate: None,
                target_size,
            },
            Rewrite::Expire { predicate } => DeltaOperation::Delete {
                predicate: Some(predicate),
            },
        };
        self.commit(actions, CommitProperties::default(), operation)
            .await
    }

    /// The last version the writer `app` committed, if any.
    pub async fn txn_version(&mut self, app: &str) -> Result<Option<i64>, TableError> {
        let log_store = self.table.log_store();
        let snapshot = self.current().await?;
        snapshot
            .transaction_version(log_store.as_ref(), app)
            .await
            .map_err(|e| self.err(e))
    }

    /// The table's files at the version read.
    pub async fn files(&mut self) -> Result<Vec<DataFile>, TableError> {
        let partitions: Vec<String> = self
            .current()
            .await?
            .metadata()
            .partition_columns()
            .to_vec();
        self.table
            .get_active_add_actions_by_partitions(&[])
            .map_ok(|view| {
                let values = view.partition_values_map();
                DataFile {
                    path: view.path().into_owned(),
                    size: view.size(),
                    rows: view.num_records().unwrap_or_default() as u64,
                    partition: partitions
                        .iter()
                        .map(|p| {
                            let v = values.get(p).cloned().flatten().unwrap_or_default();
                            (p.clone(), v)
                        })
                        .collect(),
                    modified_ms: view.modification_time(),
                    time: view.stats().as_deref().and_then(time_range),
                }
            })
            .try_collect()
            .await
            .map_err(|e| self.err(e))
    }

    /// Delete the files removed from the table at least `retain` ago (readers of older
    /// versions than that lose them); `dry_run` only lists them. Files no commit ever named
    /// are left alone: a writer may be about to commit them. Returns the deleted paths (those
    /// still there: removed files stay in the log until a checkpoint expires them). Nothing is
    /// committed when there is nothing to delete.
    pub async fn vacuum(
        &mut self,
        retain: std::time::Duration,
        dry_run: bool,
    ) -> Result<Vec<String>, TableError> {
        let retain = chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
        self.current().await?;
        let run = |dry_run: bool| {
            self.table
                .clone()
                .vacuum()
                .with_retention_period(retain)
                .with_enforce_retention_duration(false)
                .with_mode(VacuumMode::Lite)
                .with_dry_run(dry_run)
        };
        let (_, due) = run(true).await.map_err(|e| self.err(e))?;
        // Paths relative to the table (delta-rs gives some as absolute URLs or paths).
        let root = url::Url::parse(&self.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        let store = self.table.log_store().object_store(None);
        let mut present = Vec::new();
        for p in due.files_deleted {
            let rel = match p.find(&root) {
                Some(i) => p[i + root.len()..].to_string(),
                None => p,
            };
            match store
                .head(&object_store::path::Path::from(rel.as_str()))
                .await
            {
                Ok(_) => present.push(rel),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(DeltaTableError::ObjectStore { source: e })),
            }
        }
        if dry_run || present.is_empty() {
            return Ok(present);
        }
        let (table, _) = run(false).await.map_err(|e| self.err(e))?;
        self.table = table;
        self.version = self.table.version().unwrap_or_default();
        Ok(present)
    }
}

/// Files the checkpoint's log replay reads at once, and rows per batch it decodes.
const CHECKPOINT_READ_AHEAD: NonZero<usize> = NonZero::new(8).unwrap();
const CHECKPOINT_BATCH_ROWS: NonZero<usize> = NonZero::new(256).unwrap();

/// delta-rs's kernel engine over `store` (on the runtime the writer runs on), reading at most
/// [`CHECKPOINT_READ_AHEAD`] log files at once. delta-rs's own engine opens up to 1,000 at
/// once, each with a JSON decoder sized for 1,000 rows of the full action schema (~2 MB): a
/// checkpoint replaying its ~100 commits allocated ~200 MB for a moment, in the middle of an
/// ingest. Commits are a few lines each, so a few files at a time keep the replay as fast.
fn checkpoint_engine(store: Arc<dyn ObjectStore>) -> Arc<dyn buoyant_kernel::Engine> {
    use buoyant_kernel_engine::DefaultEngineBuilder;
    use buoyant_kernel_engine::executor::tokio::TokioMultiThreadExecutor;
    let handle = tokio::runtime::Handle::current();
    let builder = DefaultEngineBuilder::new(store)
        .with_buffer_size(CHECKPOINT_READ_AHEAD)
        .with_batch_size(CHECKPOINT_BATCH_ROWS);
    match handle.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => Arc::new(
            builder
                .with_task_executor(Arc::new(TokioMultiThreadExecutor::new(handle)))
                .build(),
        ),
        _ => Arc::new(builder.build()),
    }
}

/// The statistics of a file as Delta's `stats` JSON: `numRecords`, and the `time` column's
/// bounds (millisecond ISO-8601 strings, as the protocol writes timestamps).
fn stats_json(rows: u64, time: Option<(i64, i64)>) -> String {
    let mut stats = serde_json::json!({ "numRecords": rows });
    if let Some((min, max)) = time {
        let iso = |ms: i64| {
            DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        if let (Some(min), Some(max)) = (iso(min), iso(max)) {
            stats["minValues"] = serde_json::json!({ "time": min });
            stats["maxValues"] = serde_json::json!({ "time": max });
            stats["nullCount"] = serde_json::json!({ "time": 0 });
        }
    }
    stats.to_string()
}

/// The `time` bounds in a file's `stats` JSON.
fn time_range(stats: &str) -> Option<(i64, i64)> {
    let v: serde_json::Value = serde_json::from_str(stats).ok()?;
    let ms = |k: &str| {
        DateTime::parse_from_rfc3339(v[k]["time"].as_str()?)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    Some((ms("minValues")?, ms("maxValues")?))
}

fn add_action(f: DataFile, now: i64, data_change: bool) -> Add {
    Add {
        path: f.path,
        partition_values: f
            .partition
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect::<HashMap<_, _>>(),
        size: f.size,
        modification_time: now,
        data_change,
        stats: Some(stats_json(f.rows, f.time)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{RecordBatch, StringArray};

    use super::*;

    fn write_parquet(root: &std::path::Path, rel: &str, ids: &[&str]) -> DataFile {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "event_id",
            DataType::Utf8,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from_iter_values(ids.iter().copied()))],
        )
        .unwrap();
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let hour = rel.split('/').nth(1).unwrap().trim_start_matches("hour=");
        DataFile {
            path: rel.to_string(),
            size: std::fs::metadata(&path).unwrap().len() as i64,
            rows: ids.len() as u64,
            partition: vec![
                ("dt".into(), "2024-05-01".into()),
                ("hour".into(), hour.into()),
            ],
            modified_ms: 0,
            // Round-trips through the log's statistics (the tests compare whole `DataFile`s).
            time: Some((1_714_557_600_000, 1_714_557_600_999)),
        }
    }

    /// The files as written (commit times set to 0), after checking they are set.
    fn committed(files: Vec<DataFile>) -> Vec<DataFile> {
        files
            .into_iter()
            .map(|f| {
                assert!(f.modified_ms > 0, "{f:?}");
                DataFile {
                    modified_ms: 0,
                    ..f
                }
            })
            .collect()
    }

    fn paths(files: &[DataFile]) -> Vec<&str> {
        let mut p: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        p.sort_unstable();
        p
    }

    #[tokio::test]
    async fn commits_carry_the_writers_transaction_and_only_committed_files_count() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let schema = Schema::new(vec![Field::new("event_id", DataType::Utf8, false)]);
        assert!(
            Table::open(url.clone(), None, AsOf::Latest)
                .await
                .unwrap()
                .is_none()
        );
        let mut table = Table::open_or_create(url.clone(), None, &schema, &["dt", "hour"])
            .await
            .unwrap();
        assert_eq!(table.txn_version("scope-a").await.unwrap(), None);
        let a = write_parquet(
            dir.path(),
            "dt=2024-05-01/hour=10/part-a.parquet",
            &["1", "2"],
        );
        let v1 = table
            .append(vec![a.clone()], Some(("scope-a", 1)))
            .await
            .unwrap();
        // A file written but not committed is not part of the table.
        let b = write_parquet(dir.path(), "dt=2024-05-01/hour=11/part-b.parquet", &["3"]);
        let mut reopened = Table::open(url.clone(), None, AsOf::Latest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(committed(reopened.files().await.unwrap()), vec![a.clone()]);
        let v2 = table
            .append(vec![b.clone()], Some(("scope-a", 2)))
            .await
            .unwrap();
        assert_eq!(v2, v1 + 1);

        let mut reopened = Table::open(url.clone(), None, AsOf::Latest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reopened.txn_version("scope-a").await.unwrap(), Some(2));
        assert_eq!(reopened.txn_version("scope-b").await.unwrap(), None);
        assert_eq!(
            paths(&reopened.files().await.unwrap()),
            [
                "dt=2024-05-01/hour=10/part-a.parquet",
                "dt=2024-05-01/hour=11/part-b.parquet"
            ]
        );
        // Time travel: the version before `b`.
        let mut old = Table::open(url, None, AsOf::Version(v1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(committed(old.files().await.unwrap()), vec![a]);
    }

    #[tokio::test]
    async fn replace_swaps_files_in_one_commit_and_vacuum_deletes_only_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let schema = Schema::new(vec![Field::new("event_id", DataType::Utf8, false)]);
        let mut table = Table::open_or_create(url.clone(), None, &schema, &["dt", "hour"])
            .await
            .unwrap();
        let a = write_parquet(dir.path(), "dt=2024-05-01/hour=10/a.parquet", &["1"]);
        let b = write_parquet(dir.path(), "dt=2024-05-01/hour=10/b.parquet", &["2"]);
        table
            .append(vec![a.clone(), b.clone()], None)
            .await
            .unwrap();
        let merged = write_parquet(dir.path(), "dt=2024-05-01/hour=10/m.parquet", &["1", "2"]);
        // Written, never committed: vacuum must leave it (a writer may be about to commit it).
        let pending = write_parquet(dir.path(), "dt=2024-05-01/hour=10/p.parquet", &["9"]);
        let before = table.version();
        table
            .replace(
                &[a.clone(), b.clone()],
                vec![merged.clone()],
                Rewrite::Compact {
                    target_size: 1 << 27,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            committed(table.files().await.unwrap()),
            vec![merged.clone()]
        );
        assert_eq!(table.files().await.unwrap()[0].rows, 2);
        // A second replace of the same files conflicts and changes nothing.
        let mut stale = Table::open(url.clone(), None, AsOf::Version(before))
            .await
            .unwrap()
            .unwrap();
        assert!(
            stale
                .replace(
                    std::slice::from_ref(&a),
                    vec![],
                    Rewrite::Compact { target_size: 1 }
                )
                .await
                .is_err()
        );
        // Readers of the old version still find the old files until vacuum.
        let dry = table.vacuum(std::time::Duration::ZERO, true).await.unwrap();
        assert_eq!(dry.len(), 2, "{dry:?}");
        assert!(dir.path().join(&a.path).exists());
        let mut deleted = table
            .vacuum(std::time::Duration::ZERO, false)
            .await
            .unwrap();
        deleted.sort();
        assert_eq!(deleted, [a.path.clone(), b.path.clone()]);
        assert!(!dir.path().join(&a.path).exists() && !dir.path().join(&b.path).exists());
        assert!(dir.path().join(&merged.path).exists() && dir.path().join(&pending.path).exists());
        assert_eq!(committed(table.files().await.unwrap()), vec![merged]);
    }

    fn file(i: usize) -> DataFile {
        DataFile {
            path: format!("dt=2024-05-01/hour=10/part-{i}.parquet"),
            size: 1000,
            rows: 10,
            partition: vec![
                ("dt".into(), "2024-05-01".into()),
                ("hour".into(), "10".into()),
            ],
            modified_ms: 0,
            time: Some((1_714_557_600_000, 1_714_557_600_999)),
        }
    }

    /// Writers that find no table create it at the same moment (Kafka partitions of a new
    /// output on two threads, or two processes): every one gets the table, and all their
    /// appends land, whichever created it.
    #[test]
    fn writers_creating_a_new_table_at_once_all_append() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let url = url::Url::from_directory_path(dir.path()).unwrap();
            let writers: Vec<_> = (0..4usize)
                .map(|w| {
                    let url = url.clone();
                    std::thread::spawn(move || {
                        let schema =
                            Schema::new(vec![Field::new("event_id", DataType::Utf8, false)]);
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        rt.block_on(async {
                            let mut t =
                                Table::open_or_create(url, None, &schema, &["dt", "hour"]).await?;
                            for i in 0..3 {
                                t.append(
                                    vec![file(100 * w + i)],
                                    Some((&format!("w{w}"), i as i64)),
                                )
                                .await?;
                            }
                            Ok::<_, TableError>(())
                        })
                    })
                })
                .collect();
            for w in writers {
                if let Err(e) = w.join().unwrap() {
                    panic!("round {round}: {e}");
                }
            }
            let rt = tokio::runtime::Runtime::new().unwrap();
            let files = rt.block_on(async {
                let mut table = Table::open(url, None, AsOf::Latest).await.unwrap().unwrap();
                table.files().await.unwrap()
            });
            assert_eq!(files.len(), 12, "round {round}");
        }
    }

    /// Appends take the one-put path while the next version is free, and delta-rs's checked
    /// path when another writer took it: across both, every file and both writers'
    /// transactions are in the log, and the writers write the checkpoints that fall due.
    #[tokio::test]
    async fn appends_by_two_writers_across_checkpoints_keep_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let schema = Schema::new(vec![Field::new("event_id", DataType::Utf8, false)]);
        let mut a = Table::open_or_create(url.clone(), None, &schema, &["dt", "hour"])
            .await
            .unwrap();
        let mut b = Table::open_or_create(url.clone(), None, &schema, &["dt", "hour"])
            .await
            .unwrap();
        let mut expected = Vec::new();
        for i in 1..=230usize {
            let (writer, app) = if i % 7 == 0 {
                (&mut b, "b")
            } else {
                (&mut a, "a")
            };
            let version = writer
                .append(vec![file(i)], Some((app, i as i64)))
                .await
                .unwrap();
            assert_eq!(writer.version(), version);
            expected.push(file(i).path);
        }
        assert_eq!(a.txn_version("a").await.unwrap(), Some(230));
        assert!(
            dir.path()
                .join("_delta_log/00000000000000000099.checkpoint.parquet")
                .exists()
        );
        assert!(
            dir.path()
                .join("_delta_log/00000000000000000199.checkpoint.parquet")
                .exists()
        );
        let mut reopened = Table::open(url, None, AsOf::Latest).await.unwrap().unwrap();
        assert_eq!(reopened.version(), 230);
        assert_eq!(reopened.txn_version("b").await.unwrap(), Some(224));
        assert_eq!(reopened.txn_version("a").await.unwrap(), Some(230));
        let files = reopened.files().await.unwrap();
        expected.sort_unstable();
        assert_eq!(
            paths(&files),
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(files.iter().all(|f| f.time == file(0).time && f.rows == 10));
    }
}
