//! Codes the probe types: the current TOTP code, and a code certain to be wrong (outside the
//! whole acceptance window).

use std::time::Duration;

use zeroize::Zeroizing;

use mfascope_verifier::otp::{self, Params};

/// The last TOTP time step a server accepted, and its code. Servers take each code once, so a
/// probe's next success waits for a step it has not used, and its replay check resends the
/// accepted code.
#[derive(Default)]
pub struct Accepted(Option<(i64, Zeroizing<String>)>);

impl Accepted {
    /// The current code of `key` — after waiting for the next time step when this one was
    /// used — and its step, to [`Accepted::record`] once the server took it.
    pub fn fresh(&self, key: &[u8], p: &Params) -> Result<(i64, Zeroizing<String>), String> {
        let period = p.period as i64;
        let mut now = unix_now();
        if let Some((step, _)) = &self.0
            && now.div_euclid(period) <= *step
        {
            let next = (step + 1) * period;
            std::thread::sleep(Duration::from_millis(((next - now) * 1000 + 200) as u64));
            now = unix_now();
        }
        Ok((
            now.div_euclid(period),
            Zeroizing::new(totp_at(key, p, now)?),
        ))
    }

    /// The server accepted `code` of `step`.
    pub fn record(&mut self, step: i64, code: Zeroizing<String>) {
        self.0 = Some((step, code));
    }

    /// The code last accepted, if any.
    pub fn last(&self) -> Option<Zeroizing<String>> {
        self.0.as_ref().map(|(_, code)| code.clone())
    }
}

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
