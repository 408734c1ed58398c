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
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
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
    version: u64,
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
        let Some(table) = Table::open(url.clone(), store, as_of)
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
            version: table.version(),
        }))
    }

    /// The Delta version read.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The data files of that version.
    pub fn files(&self) -> &[DataFile] {
        &self.files
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
        // Files in groups of about equal bytes, one group per target partition.
        let groups_n = state.config().target_partitions().max(1);
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); groups_n];
        let mut files = chosen;
        files.sort_by_key(|f| std::cmp::Reverse(f.size));
        for f in files {
            let file = PartitionedFile::new(format!("{}/{}", self.prefix, f.path), f.size as u64)
                .with_partition_values(
                    PARTITIONS
                        .iter()
                        .map(|p| ScalarValue::Utf8(f.partition_value(p).map(str::to_string)))
                        .collect(),
                );
            let lightest = groups
                .iter_mut()
                .min_by_key(|(bytes, _)| *bytes)
                .expect("at least one group");
            lightest.0 += f.size as u64;
            lightest.1.push(file);
        }
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
                .with_file_groups(
                    groups
                        .into_iter()
                        .filter(|(_, files)| !files.is_empty())
                        .map(|(_, files)| FileGroup::new(files))
                        .collect(),
                )
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        format.create_physical_plan(state, config).await
    }
}
