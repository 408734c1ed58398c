//! Typed access to the columns of a canonical batch, tolerant of the layouts batches arrive in
//! (the pipeline builds `Dictionary(Int8, Utf8)` enums and `Utf8` strings; DataFusion may hand
//! back other dictionary key types or string views when it reads Parquet).

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::DataType;

/// Decode an enum column (a dictionary of variant names) into typed values; unknown names and
/// nulls decode to `None`.
pub fn decode_enum<T: std::str::FromStr + Copy>(array: &dyn Array) -> Vec<Option<T>> {
    let dict = array
        .as_any_dictionary_opt()
        .expect("enum columns are dictionaries");
    let values = arrow::compute::cast(dict.values(), &DataType::Utf8)
        .expect("dictionary values are strings");
    let values = values.as_string::<i32>();
    let lookup: Vec<Option<T>> = (0..values.len())
        .map(|i| values.value(i).parse().ok())
        .collect();
    let keys = dict.normalized_keys();
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                None
            } else {
                lookup.get(keys[i]).copied().flatten()
            }
        })
        .collect()
}

/// A string column of the canonical schema as plain `Utf8` (cast from views or dictionaries).
pub fn utf8(batch: &RecordBatch, name: &str) -> StringArray {
    let column = batch.column_by_name(name).expect("canonical schema");
    arrow::compute::cast(column, &DataType::Utf8)
        .expect("string column")
        .as_string::<i32>()
        .clone()
}
