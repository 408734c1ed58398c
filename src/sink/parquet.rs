//! One Parquet file per (segment, hour partition): rows sorted by time, zstd, dictionary
//! encoding, time declared as the sorting column, schema version and source positions in the
//! file's key-value metadata. Written to a temp name and fsynced; the segment renames it.

use std::fs::File;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::TimestampMillisecondType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::WriterProperties;

use super::{SinkError, io_err};
use crate::event::{SCHEMA_VERSION, col, event_schema};

/// Metadata key holding the canonical schema version.
pub const META_SCHEMA_VERSION: &str = "mfascope.schema_version";
/// Metadata key holding the JSON list of source positions the file covers.
pub const META_POSITIONS: &str = "mfascope.positions";

/// Sort `batches` by time and write them to `tmp` (fsynced). Returns rows and bytes written.
pub fn write_partition(
    tmp: &Path,
    batches: &[RecordBatch],
    positions_json: &str,
) -> Result<(usize, u64), SinkError> {
    let schema = event_schema();
    let all = concat_batches(&schema, batches).expect("batches share the canonical schema");
    let time_idx = schema.index_of(col::TIME).expect("time column");
    let times = all
        .column(time_idx)
        .as_primitive::<TimestampMillisecondType>();
    let sorted_already = times.values().windows(2).all(|w| w[0] <= w[1]);
    let sorted = if sorted_already {
        all
    } else {
        let idx = sort_to_indices(all.column(time_idx), Some(SortOptions::default()), None)
            .expect("timestamps sort");
        take_record_batch(&all, &idx).expect("indices in range")
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_dictionary_enabled(true)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: time_idx as i32,
            descending: false,
            nulls_first: false,
        }]))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(META_SCHEMA_VERSION.into(), SCHEMA_VERSION.to_string()),
            KeyValue::new(META_POSITIONS.into(), positions_json.to_string()),
        ]))
        .set_created_by(format!("mfascope {}", env!("CARGO_PKG_VERSION")))
        .build();
    let file = File::create(tmp).map_err(io_err("creating", tmp))?;
    let parquet_err = |source| SinkError::Parquet {
        path: tmp.to_path_buf(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet_err)?;
    writer.write(&sorted).map_err(parquet_err)?;
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(io_err("syncing", tmp))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((sorted.num_rows(), bytes))
}
