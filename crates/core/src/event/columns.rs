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
    if values.is_empty() {
        // A column of nulls only (arrow cannot normalize keys into no values).
        return vec![None; array.len()];
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enum_column_of_nulls_only_decodes_to_nones() {
        let strings = StringArray::from(vec![None::<&str>, None, None]);
        let dict = arrow::compute::cast(
            &strings,
            &DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
        )
        .unwrap();
        assert_eq!(dict.as_any_dictionary().values().len(), 0);
        assert_eq!(
            decode_enum::<crate::event::Factor>(dict.as_ref()),
            vec![None, None, None]
        );
    }
}
