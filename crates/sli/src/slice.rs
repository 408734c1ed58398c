//! The M6 minute rule: whether a time slice's success ratio is significantly below its target.
//! Shared by the SQL path (registered as the `significantly_below` UDF) and the SLO evaluator,
//! so both judge a minute the same way.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// Significance level at which a time slice is judged below its target.
pub const SLICE_SIGNIFICANCE: f64 = 0.01;

/// Whether `good` of `total` is significantly below `target`: the chance of seeing this many
/// failures or more, were the true success rate `target`, is under [`SLICE_SIGNIFICANCE`]
/// (one-sided binomial test; normal approximation with continuity correction once the
/// variance is large). A minute with a handful of attempts is not bad because of one failure.
pub fn significantly_below(good: u64, total: u64, target: f64) -> bool {
    if total == 0 || good >= total {
        return false;
    }
    let (n, failures, q) = (total as f64, (total - good) as f64, 1.0 - target);
    if q <= 0.0 {
        return true;
    }
    let variance = n * q * (1.0 - q);
    let tail = if variance >= 9.0 {
        let z = (failures - 0.5 - n * q) / variance.sqrt();
        0.5 * erfc(z / std::f64::consts::SQRT_2)
    } else {
        // P(X >= failures) = 1 - P(X <= failures - 1), X ~ Binomial(n, q), summed in log space.
        let k = total - good;
        let mut log_term = n * (1.0 - q).ln();
        let mut below = log_term.exp();
        for i in 1..k {
            let i = i as f64;
            log_term += ((n - i + 1.0) / i).ln() + (q / (1.0 - q)).ln();
            below += log_term.exp();
        }
        (1.0 - below).max(0.0)
    };
    tail < SLICE_SIGNIFICANCE
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// `significantly_below(good BIGINT, total BIGINT, target DOUBLE) -> BOOLEAN` for SQL.
pub fn udf() -> ScalarUDF {
    create_udf(
        "significantly_below",
        vec![DataType::Int64, DataType::Int64, DataType::Float64],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let good = arrays[0].as_primitive::<Int64Type>();
            let total = arrays[1].as_primitive::<Int64Type>();
            let target = arrays[2].as_primitive::<Float64Type>();
            let out: BooleanArray = (0..good.len())
                .map(|i| {
                    (!good.is_null(i) && !total.is_null(i) && !target.is_null(i)).then(|| {
                        significantly_below(
                            good.value(i).max(0) as u64,
                            total.value(i).max(0) as u64,
                            target.value(i),
                        )
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_tolerate_noise_but_not_outages() {
        assert!(!significantly_below(7, 8, 0.98), "one failure in 8");
        assert!(!significantly_below(33, 35, 0.98), "two failures in 35");
        assert!(significantly_below(30, 35, 0.98), "five failures in 35");
        assert!(significantly_below(20, 35, 0.98), "an outage");
        assert!(
            significantly_below(900, 1000, 0.98),
            "10 % failing at volume"
        );
        assert!(
            !significantly_below(975, 1000, 0.98),
            "2.5 % failing is within noise"
        );
        assert!(!significantly_below(0, 0, 0.98));
        assert!(!significantly_below(1000, 1000, 0.98));
        // Exact tail: P(X >= 2 | n = 8, q = 0.02) = 0.0103 (not < 0.01); P(X >= 3) < 0.01.
        assert!(!significantly_below(6, 8, 0.98));
        assert!(significantly_below(5, 8, 0.98));
        assert!((erfc(0.0) - 1.0).abs() < 1e-6 && (erfc(1.0) - 0.157_299_2).abs() < 1e-6);
    }
}
