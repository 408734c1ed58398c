//! A table of the store as DataFusion reads it: exactly the files of one Delta version (the
//! latest, or `--as-of`), read as the canonical schema with the `dt`/`hour` partition columns.
//! Files in the directory that no commit added yet (a segment mid-commit) or that a commit
//! removed (compaction, retention) are never read, so a query sees whole commits only. It
//! owns the mapping from a Delta snapshot to a scan; it never writes.

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
        let file = PartitionedFile::new(format!("{}/{}", self.prefix, f.path), f.size as u64)
            .with_partition_values(
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
        let target = state.config().target_partitions().max(1);
        let files: Vec<PartitionedFile> = chosen.iter().map(|f| self.file(f)).collect();
        let ordering = self.time_ordering(&chosen);
        // With every file's time bounds (Delta statistics), files go into groups of ordered,
        // non-overlapping files, and the scan declares time order: aggregates over time read
        // in a fixed order, so approximate ones (t-digest percentiles) come out the same on
        // every run. Without them, contiguous groups in path order.
        let grouped = match &ordering {
            Some(order) => FileScanConfig::split_groups_by_statistics_with_target_partitions(
                &self.schema,
                &[FileGroup::new(files.clone())],
                order,
                target,
            )
            .ok()
            .filter(|g| g.len() <= target),
            None => None,
        };
        let (groups, ordering) = match grouped {
            Some(groups) => (groups, ordering.into_iter().collect()),
            None => {
                let per_group = files.len().div_ceil(target);
                let groups = files
                    .chunks(per_group.max(1))
                    .map(|c| FileGroup::new(c.to_vec()))
                    .collect();
                (groups, vec![])
            }
        };
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
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        format.create_physical_plan(state, config).await
    }
}
