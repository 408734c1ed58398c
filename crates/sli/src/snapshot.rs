//! A table of the store as DataFusion reads it: exactly the files of one Delta version (the
//! latest, or `--as-of`), read as the canonical schema with the `dt`/`hour` partition columns.
//! Files in the directory that no commit added yet (a segment mid-commit) or that a commit
//! removed (compaction, retention) are never read, so a query sees whole commits only. It
//! owns the mapping from a Delta snapshot to a scan, and the columns of that snapshot held in
//! memory for scans that share them ([`SnapshotTable::hold`]); it never writes.

use std::sync::Arc;

use arrow::array::Array;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::stats::{ColumnStatistics, Precision, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use mfascope_sink::Location;
use mfascope_sink::table::{PARTITIONS, table_url};
use mfascope_table::{AsOf, DataFile, Table};

/// The files of one version of a store table.
#[derive(Debug)]
pub struct SnapshotTable {
    file_schema: SchemaRef,
    schema: SchemaRef,
    store: ObjectStoreUrl,
    /// Object store path prefix of the table (`a/b/events`), files under it.
    prefix: String,
    files: Vec<DataFile>,
    /// Columns of every file, read once and held for the scans that read only those.
    held: std::sync::OnceLock<Held>,
}

/// Some columns of every file of a snapshot, decoded.
#[derive(Debug)]
struct Held {
    /// Per table-schema column, its index in the held batches (`None`: not held).
    column: Vec<Option<usize>>,
    /// The batches of each file, in [`SnapshotTable::files`] order.
    files: Vec<Vec<arrow::array::RecordBatch>>,
    /// A file's index by its object store path (`prefix/path`), as scans name it.
    by_path: std::collections::HashMap<String, usize>,
}

/// What [`SnapshotTable::hold`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holding {
    /// Columns are held: `bytes` of Arrow memory over `rows` rows. `unheld` names the columns
    /// some reader needs that did not fit the cap: the scans reading them read the files.
    Held {
        bytes: usize,
        rows: usize,
        unheld: Vec<String>,
    },
    /// Not even the cheapest reader's columns fit the cap (estimated from the files read so
    /// far, at `bytes`); nothing is held and scans read the files.
    OverCap { bytes: usize },
    /// Nothing to hold (no file, or no column of the table asked for).
    Nothing,
}

impl SnapshotTable {
    /// Table `name` of the store at `data` as of `as_of`, read as `schema`; `None` when the
    /// table has no Delta log (nothing was ingested into it).
    pub async fn open(
        data: &Location,
        name: &str,
        schema: SchemaRef,
        as_of: AsOf,
    ) -> Result<Option<SnapshotTable>, String> {
        let (url, store) = table_url(data, name).map_err(|e| e.to_string())?;
        let Some(mut table) = Table::open(url.clone(), store, as_of)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let files = table.files().await.map_err(|e| e.to_string())?;
        let store =
            ObjectStoreUrl::parse(&url[..url::Position::BeforePath]).map_err(|e| e.to_string())?;
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(PARTITIONS.map(|p| Field::new(p, DataType::Utf8, false)));
        Ok(Some(SnapshotTable {
            file_schema: schema,
            schema: Arc::new(Schema::new(fields)),
            store,
            prefix: url.path().trim_matches('/').to_string(),
            files,
            held: std::sync::OnceLock::new(),
        }))
    }

    /// The data files of that version.
    pub fn files(&self) -> &[DataFile] {
        &self.files
    }

    /// Rows per event-time hour (epoch ms of its start), from the files' partition values and
    /// recorded row counts, without reading them; `None` when a file lacks either.
    pub fn rows_by_hour(&self) -> Option<std::collections::BTreeMap<i64, u64>> {
        let mut hours = std::collections::BTreeMap::new();
        for f in &self.files {
            let start = mfascope_sink::segment::partition_start(&f.partition)?;
            if f.rows == 0 {
                return None;
            }
            *hours.entry(start).or_insert(0) += f.rows;
        }
        Some(hours)
    }
}

impl SnapshotTable {
    /// A file of the snapshot as DataFusion scans it: its partition values, and its row count
    /// and time bounds as statistics when the log has them.
    fn file(&self, f: &DataFile) -> PartitionedFile {
        let file = PartitionedFile::new(self.object_path(f), f.size as u64).with_partition_values(
            PARTITIONS
                .iter()
                .map(|p| ScalarValue::Utf8(f.partition_value(p).map(str::to_string)))
                .collect(),
        );
        let (Some((lo, hi)), Ok(time_idx)) = (f.time, self.schema.index_of("time")) else {
            return file;
        };
        let tz = match self.schema.field(time_idx).data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => return file,
        };
        let mut columns = vec![ColumnStatistics::new_unknown(); self.schema.fields().len()];
        columns[time_idx] = ColumnStatistics {
            min_value: Precision::Exact(ScalarValue::TimestampMillisecond(Some(lo), tz.clone())),
            max_value: Precision::Exact(ScalarValue::TimestampMillisecond(Some(hi), tz)),
            null_count: Precision::Exact(0),
            ..ColumnStatistics::new_unknown()
        };
        file.with_statistics(Arc::new(Statistics {
            num_rows: Precision::Exact(f.rows as usize),
            total_byte_size: Precision::Inexact(f.size as usize),
            column_statistics: columns,
        }))
    }

    /// A file's object store path (`prefix/path`), as scans name it.
    fn object_path(&self, f: &DataFile) -> String {
        format!("{}/{}", self.prefix, f.path)
    }

    /// `time` ascending, when every file has its time bounds (and the table a `time`).
    fn time_ordering(&self, files: &[&DataFile]) -> Option<LexOrdering> {
        if files.is_empty() || files.iter().any(|f| f.time.is_none()) {
            return None;
        }
        let idx = self.schema.index_of("time").ok()?;
        LexOrdering::new([PhysicalSortExpr::new_default(Arc::new(Column::new(
            "time", idx,
        )))])
    }
}

/// Partition column `p` of `file`'s rows in `batch` (its one value repeated).
fn partition_column(
    file: &DataFile,
    p: usize,
    batch: &arrow::array::RecordBatch,
) -> arrow::array::ArrayRef {
    let value = file.partition_value(PARTITIONS[p]).unwrap_or_default();
    Arc::new(arrow::array::StringArray::from_iter_values(
        std::iter::repeat_n(value, batch.num_rows()),
    ))
}

/// Whether `filter` reads partition columns only (and some).
fn on_partitions(filter: &Expr) -> bool {
    let cols = filter.column_refs();
    !cols.is_empty() && cols.iter().all(|c| PARTITIONS.contains(&c.name.as_str()))
}

impl SnapshotTable {
    /// The files whose partition values pass every partition-only filter.
    fn choose(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> datafusion::error::Result<Vec<&DataFile>> {
        let filters: Vec<&Expr> = filters.iter().filter(|f| on_partitions(f)).collect();
        if filters.is_empty() || self.files.is_empty() {
            return Ok(self.files.iter().collect());
        }
        let schema = Arc::new(Schema::new(
            PARTITIONS
                .map(|p| Field::new(p, DataType::Utf8, false))
                .to_vec(),
        ));
        let column = |p: &str| -> arrow::array::ArrayRef {
            Arc::new(arrow::array::StringArray::from_iter_values(
                self.files
                    .iter()
                    .map(|f| f.partition_value(p).unwrap_or_default()),
            ))
        };
        let batch = arrow::array::RecordBatch::try_new(
            schema.clone(),
            PARTITIONS.iter().map(|p| column(p)).collect(),
        )?;
        let df_schema = datafusion::common::DFSchema::try_from(schema)?;
        let mut keep = vec![true; self.files.len()];
        for filter in filters {
            let expr = state.create_physical_expr((*filter).clone(), &df_schema)?;
            let values = expr.evaluate(&batch)?.into_array(batch.num_rows())?;
            let values = arrow::array::AsArray::as_boolean_opt(&values).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!(
                    "partition filter {filter} is not a predicate"
                ))
            })?;
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= values.is_valid(i) && values.value(i);
            }
        }
        Ok(self
            .files
            .iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect())
    }
}

#[async_trait::async_trait]
impl TableProvider for SnapshotTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // Filters on the partition columns choose the files exactly; the others stay above the
        // scan and the optimizer pushes them into the Parquet reader (row-group and page
        // pruning on `time` statistics).
        Ok(filters
            .iter()
            .map(|f| {
                if on_partitions(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let chosen = self.choose(state, filters)?;
        if chosen.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let (groups, ordering) = self.groups(&chosen, state.config().target_partitions());
        if let Some(plan) = self.held_scan(&groups, &ordering, projection, limit)? {
            return Ok(plan);
        }
        self.file_scan(state, groups, ordering, projection.cloned(), limit)
            .await
    }
}

impl SnapshotTable {
    /// `files` in at most `target` groups, and the order the groups' rows come in. With every
    /// file's time bounds (Delta statistics), files go into groups of ordered, non-overlapping
    /// files, and the scan declares time order: aggregates over time read in a fixed order, so
    /// approximate ones (t-digest percentiles) come out the same on every run. Without them,
    /// contiguous groups in path order.
    fn groups(&self, files: &[&DataFile], target: usize) -> (Vec<FileGroup>, Vec<LexOrdering>) {
        let target = target.max(1);
        let ordering = self.time_ordering(files);
        let files: Vec<PartitionedFile> = files.iter().map(|f| self.file(f)).collect();
        let grouped = ordering.as_ref().and_then(|order| {
            FileScanConfig::split_groups_by_statistics_with_target_partitions(
                &self.schema,
                &[FileGroup::new(files.clone())],
                order,
                target,
            )
            .ok()
            .filter(|g| g.len() <= target)
        });
        match grouped {
            Some(groups) => (groups, ordering.into_iter().collect()),
            None => {
                let per_group = files.len().div_ceil(target).max(1);
                let groups = files
                    .chunks(per_group)
                    .map(|c| FileGroup::new(c.to_vec()))
                    .collect();
                (groups, vec![])
            }
        }
    }

    /// A Parquet scan of `groups` (one output partition each).
    async fn file_scan(
        &self,
        state: &dyn Session,
        groups: Vec<FileGroup>,
        ordering: Vec<LexOrdering>,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let table_schema = TableSchemaBuilder::new(self.file_schema.clone())
            .with_table_partition_cols(
                PARTITIONS
                    .iter()
                    .map(|p| Arc::new(Field::new(*p, DataType::Utf8, false)))
                    .collect::<Vec<_>>(),
            )
            .build();
        let format = ParquetFormat::default();
        let config =
            FileScanConfigBuilder::new(self.store.clone(), format.file_source(table_schema))
                .with_file_groups(groups)
                .with_output_ordering(ordering)
                .with_projection_indices(projection)?
                .with_limit(limit)
                .build();
        format.create_physical_plan(state, config).await
    }

    /// Read the columns that `readers` name (each reader: the columns one query or pass reads)
    /// once from every file of the snapshot and hold them, so that the scans reading only held
    /// columns (and the partition columns) are served from memory instead of opening every file
    /// again: a pack of SLI queries scans the same table a dozen times, and over a small table
    /// opening the files costs more than reading them. When everything would exceed `cap`
    /// bytes (extrapolated, once a fiftieth of the rows is read, from the files read so far
    /// over the rows the log records), the columns of the readers that fit are kept, cheapest
    /// additions first, and the other readers' scans read the files as before. Files are read
    /// `parallel` at a time. Holding twice keeps the first.
    pub async fn hold(
        &self,
        state: &dyn Session,
        readers: &[Vec<&str>],
        cap: usize,
        parallel: usize,
    ) -> datafusion::error::Result<Holding> {
        use futures::StreamExt;
        let readers: Vec<Vec<usize>> = readers
            .iter()
            .map(|columns| {
                let mut indices: Vec<usize> = columns
                    .iter()
                    .filter_map(|c| self.file_schema.index_of(c).ok())
                    .collect();
                indices.sort_unstable();
                indices.dedup();
                indices
            })
            .filter(|indices| !indices.is_empty())
            .collect();
        let mut indices: Vec<usize> = readers.iter().flatten().copied().collect();
        indices.sort_unstable();
        indices.dedup();
        let wanted = indices.clone();
        if indices.is_empty() || self.files.is_empty() {
            return Ok(Holding::Nothing);
        }
        if cap == 0 {
            return Ok(Holding::OverCap { bytes: 0 });
        }
        let total_rows: u64 = self.files.iter().map(|f| f.rows).sum();
        let mut files: Vec<Vec<arrow::array::RecordBatch>> = Vec::with_capacity(self.files.len());
        // Bytes held per column (in `indices` order) and rows, over the files read so far.
        let (mut bytes, mut rows) = (vec![0usize; indices.len()], 0usize);
        'read: while files.len() < self.files.len() {
            let mut reads = self.read_files(state, files.len(), &indices, parallel);
            while let Some(batches) = reads.next().await {
                let batches = batches?;
                for batch in &batches {
                    for (held, column) in bytes.iter_mut().zip(batch.columns()) {
                        *held += column.get_array_memory_size();
                    }
                    rows += batch.num_rows();
                }
                files.push(batches);
                // Small files cost more per row (buffers, dictionaries), so the estimate waits
                // for a fiftieth of the rows; the bytes actually held stop it at once.
                let sampled = rows > 0 && rows as u64 >= total_rows / 50;
                let projected: Vec<u128> = bytes
                    .iter()
                    .map(|&b| {
                        if sampled {
                            b as u128 * u128::from(total_rows.max(rows as u64)) / rows as u128
                        } else {
                            b as u128
                        }
                    })
                    .collect();
                if projected.iter().sum::<u128>() <= cap as u128 {
                    continue;
                }
                let cost = |column: &usize| projected[indices.binary_search(column).expect("held")];
                let kept = fitting(&readers, &indices, cost, cap as u128);
                if kept.is_empty() {
                    return Ok(Holding::OverCap {
                        bytes: bytes.iter().sum(),
                    });
                }
                let at: Vec<usize> = kept
                    .iter()
                    .map(|c| indices.binary_search(c).expect("kept ⊂ held"))
                    .collect();
                for batches in &mut files {
                    for batch in batches.iter_mut() {
                        *batch = batch.project(&at)?;
                    }
                }
                bytes = at.iter().map(|&k| bytes[k]).collect();
                indices = kept;
                // Reads under way are of the columns dropped too: start again from here.
                continue 'read;
            }
        }
        let mut column = vec![None; self.schema.fields().len()];
        for (k, &i) in indices.iter().enumerate() {
            column[i] = Some(k);
        }
        let by_path = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (self.object_path(f), i))
            .collect();
        let _ = self.held.set(Held {
            column,
            files,
            by_path,
        });
        let unheld = wanted
            .iter()
            .filter(|c| indices.binary_search(c).is_err())
            .map(|&c| self.file_schema.field(c).name().clone())
            .collect();
        Ok(Holding::Held {
            bytes: bytes.iter().sum(),
            rows,
            unheld,
        })
    }

    /// The `indices` columns of the snapshot's files from the `from`th on, each file read by a
    /// plan of its own (a scan of several lets an idle partition take a sibling's files, and
    /// each file's rows must be known to be its own), `parallel` at a time, in order.
    fn read_files<'s>(
        &'s self,
        state: &'s dyn Session,
        from: usize,
        indices: &[usize],
        parallel: usize,
    ) -> impl futures::Stream<Item = datafusion::error::Result<Vec<arrow::array::RecordBatch>>> + 's
    {
        use futures::StreamExt;
        let task = state.task_ctx();
        let indices = indices.to_vec();
        futures::stream::iter(&self.files[from..])
            .map(move |f| {
                let (task, indices) = (task.clone(), indices.clone());
                let group = FileGroup::new(vec![self.file(f)]);
                async move {
                    let plan = self
                        .file_scan(state, vec![group], vec![], Some(indices), None)
                        .await?;
                    let read = tokio::spawn(datafusion::physical_plan::common::collect(
                        plan.execute(0, task)?,
                    ));
                    match read.await {
                        Ok(batches) => batches,
                        Err(e) => Err(datafusion::error::DataFusionError::External(Box::new(e))),
                    }
                }
            })
            .buffered(parallel.max(1))
    }

    /// `groups` served from the held columns, when they hold every projected one.
    fn held_scan(
        &self,
        groups: &[FileGroup],
        ordering: &[LexOrdering],
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> datafusion::error::Result<Option<Arc<dyn ExecutionPlan>>> {
        let (Some(held), Some(projection)) = (self.held.get(), projection) else {
            return Ok(None);
        };
        let on_files = self.file_schema.fields().len();
        if projection
            .iter()
            .any(|&i| i < on_files && held.column[i].is_none())
        {
            return Ok(None);
        }
        let schema = Arc::new(self.schema.project(projection)?);
        let mut partitions = Vec::with_capacity(groups.len());
        for group in groups {
            let mut batches = Vec::new();
            for file in group.iter() {
                let Some(&i) = held.by_path.get(file.object_meta.location.as_ref()) else {
                    return Ok(None);
                };
                for batch in &held.files[i] {
                    let columns = projection
                        .iter()
                        .map(|&c| match held.column[c] {
                            Some(k) => batch.column(k).clone(),
                            None => partition_column(&self.files[i], c - on_files, batch),
                        })
                        .collect();
                    batches.push(arrow::array::RecordBatch::try_new_with_options(
                        schema.clone(),
                        columns,
                        &arrow::array::RecordBatchOptions::new()
                            .with_row_count(Some(batch.num_rows())),
                    )?);
                }
            }
            partitions.push(batches);
        }
        // The time order of the groups, over the projected columns (none without `time`).
        let ordering: Vec<LexOrdering> = match schema.index_of("time") {
            Ok(at) if !ordering.is_empty() => LexOrdering::new([PhysicalSortExpr::new_default(
                Arc::new(Column::new("time", at)),
            )])
            .into_iter()
            .collect(),
            _ => vec![],
        };
        let source =
            datafusion::datasource::memory::MemorySourceConfig::try_new(&partitions, schema, None)?
                .try_with_sort_information(ordering)?
                .with_limit(limit);
        Ok(Some(
            datafusion::datasource::source::DataSourceExec::from_data_source(source),
        ))
    }
}

/// The columns of the readers (among those whose columns are all in `held`) that fit `cap`
/// bytes, each column costing `cost`: the reader adding the fewest bytes first, as long as it
/// fits. Sorted; empty when not even the cheapest reader fits.
fn fitting(
    readers: &[Vec<usize>],
    held: &[usize],
    cost: impl Fn(&usize) -> u128,
    cap: u128,
) -> Vec<usize> {
    let mut left: Vec<&Vec<usize>> = readers
        .iter()
        .filter(|r| r.iter().all(|c| held.binary_search(c).is_ok()))
        .collect();
    let (mut kept, mut total) = (Vec::<usize>::new(), 0u128);
    loop {
        let adds =
            |r: &&Vec<usize>| -> u128 { r.iter().filter(|c| !kept.contains(c)).map(&cost).sum() };
        let Some((at, add)) = left
            .iter()
            .enumerate()
            .map(|(at, r)| (at, adds(r)))
            .min_by_key(|&(_, add)| add)
        else {
            break;
        };
        if total + add > cap {
            break;
        }
        total += add;
        let reader = left.swap_remove(at);
        kept.extend(reader.iter().copied());
        kept.sort_unstable();
        kept.dedup();
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::fitting;

    #[test]
    fn readers_adding_the_fewest_bytes_are_kept_first() {
        // Columns 0..4 cost 10, 100, 40, 1000 bytes.
        let cost = |c: &usize| [10u128, 100, 40, 1000][*c];
        let readers = vec![vec![0, 1], vec![0, 2], vec![3], vec![0, 2, 1], vec![5]];
        let held = [0, 1, 2, 3];
        assert_eq!(fitting(&readers, &held, cost, 10_000), vec![0, 1, 2, 3]);
        // [0, 2] (50) first, then [0, 2, 1] and [0, 1] (+100 each); [3] does not fit.
        assert_eq!(fitting(&readers, &held, cost, 200), vec![0, 1, 2]);
        assert_eq!(fitting(&readers, &held, cost, 60), vec![0, 2]);
        assert_eq!(fitting(&readers, &held, cost, 49), Vec::<usize>::new());
        // A reader naming a column no longer held is not served.
        assert_eq!(fitting(&readers, &[0, 1], cost, 10_000), vec![0, 1]);
    }
}
