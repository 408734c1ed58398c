//! One Parquet file per (segment, hour partition): rows sorted by time, zstd (but for the
//! small-domain columns), dictionary encoding, time declared as the sorting column, schema
//! version and source positions in the file's key-value metadata. Written to a temp name and
//! fsynced; the segment renames it.

use std::fs::File;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::TimestampMillisecondType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{SinkError, io_err};
use mfascope_core::event::{SCHEMA_VERSION, col};
use mfascope_core::ticket::{TICKET_SCHEMA_VERSION, ticket_schema};

/// Metadata key holding the canonical schema version.
pub const META_SCHEMA_VERSION: &str = "mfascope.schema_version";
/// Metadata key holding the JSON list of source positions the file covers.
pub const META_POSITIONS: &str = "mfascope.positions";

/// Columns whose values are (nearly) unique per row: dictionary encoding only costs there.
const PLAIN_COLUMNS: &[&str] = &[
    col::EVENT_ID,
    col::TIME,
    col::TRANSACTION_ID,
    col::SESSION_ID,
    col::RAW,
];

/// Columns no query prunes files by (values unique per row, or spread over every hour): min/max
/// statistics there cost the writer a comparison per value and skip nothing.
const UNPRUNED_COLUMNS: &[&str] = &[
    col::EVENT_ID,
    col::USER,
    col::SESSION_ID,
    col::TRANSACTION_ID,
    col::SRC_IP,
    col::USER_AGENT,
    col::DEVICE_ID,
    col::RAW,
];

/// Columns of a small domain (enumerations, places, networks): dictionary encoding leaves a
/// few bits per row that zstd shrinks by 1.0–1.7×, while every column chunk it compresses costs
/// its reader and writer a zstd context pair (parquet-rs creates both per chunk): ~18 % of an
/// SLI pack's CPU over 1M events in 746 hourly files. Stored uncompressed, they cost ~4 % more
/// bytes (measured on the SLI bench's store).
const UNCOMPRESSED_COLUMNS: &[&str] = &[
    col::SOURCE,
    col::TENANT,
    col::APP,
    col::ACTION,
    col::FACTOR,
    col::OUTCOME,
    col::REASON,
    col::COUNTRY,
    col::REGION,
    col::CITY,
    col::ASN,
    col::PHISHING_RESISTANT,
    col::PRIVILEGED,
    col::VENDOR_EVENT_TYPE,
];

/// What [`write_partition`] wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Written {
    /// Rows.
    pub rows: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Earliest and latest `time` (epoch ms).
    pub time: (i64, i64),
}

/// Write `batches` (events, or support tickets: the schema of the first batch decides) sorted
/// by time to `tmp` (fsynced). Every batch must have the first one's schema. Batches that are already in time
/// order (the common case: logs arrive in order) are written as they are; otherwise they are
/// concatenated and sorted.
pub fn write_partition(
    tmp: &Path,
    batches: &[RecordBatch],
    positions_json: &str,
) -> Result<Written, SinkError> {
    let Some(first) = batches.first() else {
        return Err(SinkError::Io {
            op: "writing",
            path: tmp.to_path_buf(),
            source: std::io::Error::other("no rows for a partition file"),
        });
    };
    let schema = first.schema();
    if let Some(other) = batches.iter().find(|b| b.schema() != schema) {
        return Err(SinkError::CorruptState {
            path: tmp.display().to_string(),
            reason: format!(
                "rows of two schemas cannot share a file ({} and {} columns): they were written \
                 by different mfascope versions",
                schema.fields().len(),
                other.schema().fields().len()
            ),
        });
    }
    let version = if schema == ticket_schema() {
        TICKET_SCHEMA_VERSION
    } else {
        SCHEMA_VERSION
    };
    let time_idx = schema.index_of(col::TIME).expect("time column");
    let times = |b: &RecordBatch| {
        b.column(time_idx)
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .clone()
    };
    let mut in_order = true;
    let mut last = i64::MIN;
    for b in batches {
        let t = times(b);
        if t.first().is_some_and(|&first| first < last) || !t.windows(2).all(|w| w[0] <= w[1]) {
            in_order = false;
            break;
        }
        last = t.last().copied().unwrap_or(last);
    }
    let sorted: Vec<RecordBatch> = if in_order {
        batches.to_vec()
    } else {
        let all = concat_batches(&schema, batches).expect("a partition's batches share a schema");
        let idx = sort_to_indices(all.column(time_idx), Some(SortOptions::default()), None)
            .expect("timestamps sort");
        vec![take_record_batch(&all, &idx).expect("indices in range")]
    };
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: time_idx as i32,
            descending: false,
            nulls_first: false,
        }]))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(META_SCHEMA_VERSION.into(), version.to_string()),
            KeyValue::new(META_POSITIONS.into(), positions_json.to_string()),
        ]))
        .set_created_by(format!("mfascope {}", env!("CARGO_PKG_VERSION")));
    for name in PLAIN_COLUMNS {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*name), false);
    }
    for name in UNPRUNED_COLUMNS {
        props =
            props.set_column_statistics_enabled(ColumnPath::from(*name), EnabledStatistics::None);
    }
    // Sorted, mostly distinct milliseconds: deltas take a few bits each.
    props = props.set_column_encoding(ColumnPath::from(col::TIME), Encoding::DELTA_BINARY_PACKED);
    for name in UNCOMPRESSED_COLUMNS {
        props = props.set_column_compression(ColumnPath::from(*name), Compression::UNCOMPRESSED);
    }
    // Page-level statistics where queries filter: time (range scans) and the enums.
    for name in [col::TIME, col::SOURCE, col::ACTION, col::OUTCOME] {
        props =
            props.set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::Page);
    }
    let file = File::create(tmp).map_err(io_err("creating", tmp))?;
    let parquet_err = |source| SinkError::Parquet {
        path: tmp.to_path_buf(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(props.build())).map_err(parquet_err)?;
    let mut rows = 0;
    for b in &sorted {
        writer.write(b).map_err(parquet_err)?;
        rows += b.num_rows();
    }
    let time = {
        let first = sorted
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| times(b)[0]);
        let last = sorted
            .iter()
            .rev()
            .find(|b| b.num_rows() > 0)
            .map(|b| times(b)[b.num_rows() - 1]);
        (first.unwrap_or_default(), last.unwrap_or_default())
    };
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(io_err("syncing", tmp))?;
    let bytes = file
        .metadata()
        .map_err(io_err("reading the size of", tmp))?
        .len();
    Ok(Written {
        rows: rows as u64,
        bytes,
        time,
    })
}

/// The rows of the Parquet file `rel` under `root` (an event file named by a checkpoint's
/// replay list), as canonical batches with their enum columns in the engine's layout.
pub fn read_events(
    root: &super::Location,
    rel: &str,
) -> Result<Vec<mfascope_core::event::CanonicalBatch>, SinkError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let corrupt = |reason: String| SinkError::CorruptState {
        path: root.describe(rel),
        reason,
    };
    let bytes = root
        .read(rel)?
        .ok_or_else(|| corrupt("the checkpoint lists it but it is missing".into()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(ParquetRecordBatchReaderBuilder::build)
        .map_err(|e| corrupt(e.to_string()))?;
    reader
        .map(|batch| {
            let batch = batch.map_err(|e| corrupt(e.to_string()))?;
            mfascope_core::event::CanonicalBatch::new(batch)
                .map(|b| b.in_vocabulary())
                .map_err(|e| corrupt(e.to_string()))
        })
        .collect()
}
