//! Codes the probe types: the current TOTP code, and a code certain to be wrong (outside the
//! whole acceptance window).

use mfascope_verifier::otp::{self, Params};

/// Unix seconds now.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The TOTP code of `key` at `unix`.
pub fn totp_at(key: &[u8], p: &Params, unix: i64) -> Result<String, String> {
    otp::totp(key, unix, p).map_err(|e| format!("TOTP parameters: {e}"))
}

/// A code that matches none of the steps within ±`window` of `unix`.
pub fn wrong_code(key: &[u8], p: &Params, unix: i64, window: i64) -> Result<String, String> {
    let near = (-window..=window)
        .map(|k| unix + k * p.period as i64)
        .filter(|t| *t >= 0)
        .map(|t| totp_at(key, p, t))
        .collect::<Result<Vec<_>, _>>()?;
    let modulus = 10u64.pow(p.digits);
    let good: u64 = totp_at(key, p, unix)?.parse().unwrap_or(0);
    (0..100u64)
        .map(|i| {
            format!(
                "{:0width$}",
                (good + modulus / 2 + i) % modulus,
                width = p.digits as usize
            )
        })
        .find(|c| !near.contains(c))
        .ok_or_else(|| "no wrong code found (cannot happen)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrong_code_is_outside_the_window() {
        let key = b"12345678901234567890";
        let p = Params::default();
        for t in [59, 1_111_111_109, 2_000_000_000] {
            let bad = wrong_code(key, &p, t, 2).unwrap();
            assert_eq!(bad.len(), 6);
            for k in -2..=2 {
                let at = (t + k * 30).max(0);
                assert_ne!(bad, totp_at(key, &p, at).unwrap());
            }
        }
    }
}
