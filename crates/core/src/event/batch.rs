//! [`CanonicalBatch`]: a record batch checked once against the canonical schema, with typed
//! column accessors, so consumers never look columns up by name and `expect` them.

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType, UInt32Type};

use super::columns::{decode_enum, utf8};
use super::event_schema;

/// Why a batch is not canonical.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// A column a consumer reads is absent.
    #[error("canonical batch: column `{0}` is missing")]
    Missing(String),
    /// A column could not be converted to its canonical type.
    #[error("canonical batch: converting a column: {0}")]
    Convert(String),
    /// A column has a type no accessor reads.
    #[error("canonical batch: column `{name}` is {found}, expected {expected}")]
    Type {
        /// The column.
        name: String,
        /// Its type in the batch.
        found: DataType,
        /// What the canonical schema allows.
        expected: &'static str,
    },
}

/// A batch of canonical events whose columns were checked once against the canonical schema:
/// each checked column has a type the accessors read — the engine's own layout, or what
/// DataFusion hands back from Parquet (other dictionary key types, string views). Cheap to
/// clone (the columns are shared).
///
/// ```
/// use mfascope_core::event::{Action, CanonicalBatch, Event, EventBatchBuilder, Factor, Outcome, Source, col};
///
/// let mut b = EventBatchBuilder::default();
/// let step = (Action::MfaVerify, Factor::Push, Outcome::Success);
/// b.append(&Event::new(Source::Okta, "e1", 1_714_557_600_000, "alice", "t", step));
/// let batch: CanonicalBatch = b.finish_canonical();
/// assert_eq!(batch.times().value(0), 1_714_557_600_000);
/// assert_eq!(batch.enums::<Outcome>(col::OUTCOME), vec![Some(Outcome::Success)]);
///
/// // A projection is checked for the columns its consumer reads.
/// let projected = batch.record_batch().project(&[0]).unwrap();
/// assert!(CanonicalBatch::with_columns(projected, &[col::TIME]).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct CanonicalBatch {
    batch: RecordBatch,
}

impl CanonicalBatch {
    /// Check every column of the canonical schema.
    pub fn new(batch: RecordBatch) -> Result<Self, BatchError> {
        let schema = event_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        Self::with_columns(batch, &names)
    }

    /// Check the columns in `needed` (a projection for a consumer that reads only those). The
    /// accessors of other columns panic: reading an undeclared column is a programming error.
    pub fn with_columns(batch: RecordBatch, needed: &[&str]) -> Result<Self, BatchError> {
        let schema = event_schema();
        for name in needed {
            let field = schema
                .field_with_name(name)
                .map_err(|_| BatchError::Missing((*name).to_string()))?;
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| BatchError::Missing((*name).to_string()))?;
            let expected = kind(field.data_type());
            if !matches_kind(column.data_type(), expected) {
                return Err(BatchError::Type {
                    name: (*name).to_string(),
                    found: column.data_type().clone(),
                    expected: expected.describe(),
                });
            }
        }
        Ok(CanonicalBatch { batch })
    }

    /// [`CanonicalBatch::with_columns`], with every canonical column the projection left out
    /// added as nulls, for consumers that look at every column but read only `needed` (a
    /// rule engine whose rules name few fields).
    pub fn padded(batch: RecordBatch, needed: &[&str]) -> Result<Self, BatchError> {
        use std::sync::Arc;
        let checked = Self::with_columns(batch, needed)?.batch;
        let schema = event_schema();
        let rows = checked.num_rows();
        let mut fields: Vec<arrow::datatypes::FieldRef> =
            checked.schema().fields().iter().cloned().collect();
        let mut columns: Vec<ArrayRef> = checked.columns().to_vec();
        for field in schema.fields() {
            if checked.column_by_name(field.name()).is_none() {
                columns.push(arrow::array::new_null_array(field.data_type(), rows));
                fields.push(Arc::new(field.as_ref().clone().with_nullable(true)));
            }
        }
        let batch = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
            .expect("null columns of the canonical types, as many rows as the batch");
        Ok(CanonicalBatch { batch })
    }

    /// A batch the engine's builder made (every column canonical by construction).
    pub(crate) fn built(batch: RecordBatch) -> Self {
        CanonicalBatch { batch }
    }

    /// The same rows' columns under the same checks, for a batch derived from this one by row
    /// selection (`take`, `filter`, `slice`): the columns and their types do not change.
    pub fn derived(&self, batch: RecordBatch) -> Self {
        debug_assert_eq!(batch.schema(), self.batch.schema());
        CanonicalBatch { batch }
    }

    /// Rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }

    /// The Arrow batch (for writers and SQL).
    pub fn record_batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The Arrow batch, by value.
    pub fn into_record_batch(self) -> RecordBatch {
        self.batch
    }

    /// A checked column as it is stored.
    ///
    /// # Panics
    /// When the column was not checked at construction (a consumer reading a column it did
    /// not declare).
    pub fn column(&self, name: &str) -> &ArrayRef {
        self.batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("column `{name}` read but not declared"))
    }

    /// Event times, milliseconds since the epoch.
    pub fn times(&self) -> &PrimitiveArray<TimestampMillisecondType> {
        self.column(super::col::TIME).as_primitive()
    }

    /// A string column as plain `Utf8` (cast from views or dictionaries).
    pub fn strings(&self, name: &str) -> StringArray {
        utf8(&self.batch, name)
    }

    /// An enum column decoded into its vocabulary (unknown names and nulls: `None`).
    pub fn enums<T: std::str::FromStr + Copy>(&self, name: &str) -> Vec<Option<T>> {
        decode_enum(self.column(name).as_ref())
    }

    /// The keys of an enum column in the engine's own layout (`Dictionary(Int8, Utf8)` whose
    /// values are the vocabulary in declaration order), so a key is the variant's index.
    /// `None` for batches read back through SQL, which may carry other dictionaries.
    pub fn vocabulary_keys(&self, name: &str) -> Option<&[i8]> {
        let dict = self
            .column(name)
            .as_dictionary_opt::<arrow::datatypes::Int8Type>()?;
        Some(dict.keys().values())
    }

    /// This batch with its enum columns in the engine's own layout (see
    /// [`CanonicalBatch::vocabulary_keys`]): batches read back from storage carry dictionaries
    /// of their own. Values outside the vocabulary read as nulls.
    pub fn in_vocabulary(&self) -> CanonicalBatch {
        self.derived(
            enums_in_vocabulary(self.record_batch()).expect("enum columns are text dictionaries"),
        )
    }

    /// A `UInt32` column (`latency_ms`, `asn`).
    pub fn u32s(&self, name: &str) -> &PrimitiveArray<UInt32Type> {
        self.column(name).as_primitive()
    }

    /// A Boolean column (`phishing_resistant`, `privileged`).
    pub fn bools(&self, name: &str) -> &BooleanArray {
        self.column(name).as_boolean()
    }
}

/// The layouts the accessors read, per canonical column type.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Enum,
    Time,
    U32,
    Bool,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Text => "a string (Utf8, LargeUtf8, Utf8View or a dictionary of strings)",
            Kind::Enum => "a dictionary of strings",
            Kind::Time => "Timestamp(Millisecond)",
            Kind::U32 => "UInt32",
            Kind::Bool => "Boolean",
        }
    }
}

fn kind(canonical: &DataType) -> Kind {
    match canonical {
        DataType::Dictionary(..) => Kind::Enum,
        DataType::Timestamp(..) => Kind::Time,
        DataType::UInt32 => Kind::U32,
        DataType::Boolean => Kind::Bool,
        _ => Kind::Text,
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn matches_kind(t: &DataType, k: Kind) -> bool {
    match k {
        Kind::Text => is_text(t) || matches!(t, DataType::Dictionary(_, v) if is_text(v)),
        Kind::Enum => matches!(t, DataType::Dictionary(_, v) if is_text(v)),
        Kind::Time => matches!(t, DataType::Timestamp(TimeUnit::Millisecond, _)),
        Kind::U32 => t == &DataType::UInt32,
        Kind::Bool => t == &DataType::Boolean,
    }
}

impl AsRef<RecordBatch> for CanonicalBatch {
    fn as_ref(&self) -> &RecordBatch {
        &self.batch
    }
}

/// `batch` with its enum columns (source, action, factor, outcome: dictionaries of any key type,
/// or plain strings as SQL may hand them back) in the engine's own layout,
/// `Dictionary(Int8, Utf8)` whose values are the vocabulary in declaration order, so a key is
/// the variant's index. Values outside the vocabulary read as nulls; other columns are kept.
pub fn enums_in_vocabulary(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use super::{Action, Factor, Outcome, Source, col};
    use std::sync::Arc;
    use strum::VariantNames;
    let schema = batch.schema();
    let mut fields: Vec<arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
    let mut columns = batch.columns().to_vec();
    for (name, names) in [
        (col::SOURCE, Source::VARIANTS),
        (col::ACTION, Action::VARIANTS),
        (col::FACTOR, Factor::VARIANTS),
        (col::OUTCOME, Outcome::VARIANTS),
    ] {
        let Ok(idx) = schema.index_of(name) else {
            continue;
        };
        let text = arrow::compute::cast(&columns[idx], &DataType::Utf8)?;
        let keys: arrow::array::Int8Array = text
            .as_string::<i32>()
            .iter()
            .map(|v| {
                v.and_then(|v| names.iter().position(|n| *n == v))
                    .map(|k| k as i8)
            })
            .collect();
        let values = Arc::new(arrow::array::StringArray::from(names.to_vec()));
        let dict =
            arrow::array::DictionaryArray::<arrow::datatypes::Int8Type>::try_new(keys, values)?;
        fields[idx] = Arc::new(
            fields[idx]
                .as_ref()
                .clone()
                .with_data_type(dict.data_type().clone()),
        );
        columns[idx] = Arc::new(dict);
    }
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source, col};

    #[test]
    fn a_wrong_type_or_missing_column_is_named() {
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                col::TIME,
                DataType::Int64,
                false,
            )])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let err = CanonicalBatch::with_columns(b.clone(), &[col::TIME]).unwrap_err();
        assert!(err.to_string().contains("column `time` is Int64"), "{err}");
        let err = CanonicalBatch::with_columns(b, &[col::USER]).unwrap_err();
        assert_eq!(err, BatchError::Missing("user".into()));
    }

    #[test]
    fn builder_batches_are_canonical_with_vocabulary_keys() {
        let mut b = EventBatchBuilder::default();
        let step = (Action::MfaChallenge, Factor::Sms, Outcome::Challenge);
        b.append(&Event::new(
            Source::Duo,
            "e",
            1_714_557_600_000,
            "u",
            "t",
            step,
        ));
        let batch = b.finish_canonical();
        let checked = CanonicalBatch::new(batch.record_batch().clone()).unwrap();
        assert_eq!(
            checked.vocabulary_keys(col::FACTOR),
            Some(&[Factor::Sms.key()][..])
        );
        assert_eq!(checked.strings(col::USER).value(0), "u");
    }
}
