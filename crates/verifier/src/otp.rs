//! One-time passwords exact to RFC 4226 (HOTP) and RFC 6238 (TOTP): HMAC-SHA-1/256/512,
//! 6–8 digits, any period, verification with a window (TOTP skew, HOTP look-ahead) that says
//! which step or counter matched so the caller can refuse it next time (replay), HOTP resync
//! from two consecutive codes, and `otpauth://` provisioning URIs. Codes are compared in
//! constant time.

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// The HMAC hash of an OTP credential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA-1 (RFC 4226; the authenticator-app default).
    #[default]
    Sha1,
    /// HMAC-SHA-256 (RFC 6238).
    Sha256,
    /// HMAC-SHA-512 (RFC 6238).
    Sha512,
}

impl Algorithm {
    /// The name in `otpauth://` URIs (`SHA1`, `SHA256`, `SHA512`).
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = OtpError;
    fn from_str(s: &str) -> Result<Self, OtpError> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Ok(Algorithm::Sha1),
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            _ => Err(OtpError::Algorithm(s.to_string())),
        }
    }
}

/// What is wrong with OTP parameters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtpError {
    /// Digits outside 6–8.
    #[error("digits must be 6, 7 or 8 (got {0})")]
    Digits(u32),
    /// Period of zero.
    #[error("the period must be at least 1 s")]
    Period,
    /// Unknown hash.
    #[error("algorithm {0:?}: use sha1, sha256 or sha512")]
    Algorithm(String),
    /// Not base32.
    #[error("the secret is not valid base32 (RFC 4648; A–Z and 2–7, padding optional)")]
    Base32,
    /// A secret too short to provision.
    #[error("the secret is {0} bits; RFC 4226 requires at least 128 for a new credential")]
    ShortSecret(usize),
    /// Time before the epoch or T0.
    #[error("time {0} is before T0")]
    Time(i64),
    /// A provisioning URI without a usable secret.
    #[error("otpauth URI: {0}")]
    BadUri(&'static str),
}

/// HOTP/TOTP parameters (missing fields take the defaults: SHA-1, 6 digits, 30 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Params {
    /// HMAC hash function (SHA-1, SHA-256 or SHA-512).
    pub algorithm: Algorithm,
    /// Code length, 6–8.
    pub digits: u32,
    /// TOTP time step in seconds.
    pub period: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

impl Params {
    /// Checked parameters.
    pub fn new(algorithm: Algorithm, digits: u32, period: u64) -> Result<Params, OtpError> {
        if !(6..=8).contains(&digits) {
            return Err(OtpError::Digits(digits));
        }
        if period == 0 {
            return Err(OtpError::Period);
        }
        Ok(Params {
            algorithm,
            digits,
            period,
        })
    }

    /// The TOTP time step of `unix` seconds (T0 = 0).
    pub fn step(&self, unix: i64) -> Result<u64, OtpError> {
        u64::try_from(unix)
            .map(|t| t / self.period)
            .map_err(|_| OtpError::Time(unix))
    }
}

fn mac(algorithm: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .expect("HMAC takes keys of any length");
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// RFC 4226 §5.3 dynamic truncation of an HMAC value to a 31-bit number.
pub fn truncate(hmac: &[u8]) -> u32 {
    let offset = (hmac[hmac.len() - 1] & 0x0f) as usize;
    u32::from_be_bytes([
        hmac[offset] & 0x7f,
        hmac[offset + 1],
        hmac[offset + 2],
        hmac[offset + 3],
    ])
}

/// The code for `counter` (HOTP), or for a TOTP time step.
pub fn code(key: &[u8], counter: u64, p: &Params) -> String {
    let value = truncate(&mac(p.algorithm, key, &counter.to_be_bytes())) % 10u32.pow(p.digits);
    format!("{value:0width$}", width = p.digits as usize)
}

/// The TOTP code at `unix` seconds.
pub fn totp(key: &[u8], unix: i64, p: &Params) -> Result<String, OtpError> {
    Ok(code(key, p.step(unix)?, p))
}

/// Whether `candidate` is the code of `counter`, in constant time (a wrong length is simply
/// wrong).
pub fn matches(key: &[u8], counter: u64, p: &Params, candidate: &str) -> bool {
    let expected = code(key, counter, p);
    expected.len() == candidate.len() && bool::from(expected.as_bytes().ct_eq(candidate.as_bytes()))
}

/// An HMAC keyed once, for computing many counters' codes of one credential.
enum Keyed {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl Keyed {
    fn new(algorithm: Algorithm, key: &[u8]) -> Keyed {
        fn k<M: hmac::digest::KeyInit>(key: &[u8]) -> M {
            M::new_from_slice(key).expect("HMAC takes keys of any length")
        }
        match algorithm {
            Algorithm::Sha1 => Keyed::Sha1(k(key)),
            Algorithm::Sha256 => Keyed::Sha256(k(key)),
            Algorithm::Sha512 => Keyed::Sha512(k(key)),
        }
    }

    /// The truncated value (RFC 4226 §5.3) of `counter`.
    fn value(&self, counter: u64) -> u32 {
        fn run<M: Mac + Clone>(m: &M, counter: u64) -> u32 {
            let mut m = m.clone();
            m.update(&counter.to_be_bytes());
            truncate(&m.finalize().into_bytes())
        }
        match self {
            Keyed::Sha1(m) => run(m, counter),
            Keyed::Sha256(m) => run(m, counter),
            Keyed::Sha512(m) => run(m, counter),
        }
    }
}

/// The counter among `from..=to` whose code is `candidate`. Every counter of the window is
/// computed and compared (no early exit), so the time taken does not say where it matched.
pub fn find(key: &[u8], from: u64, to: u64, p: &Params, candidate: &str) -> Option<u64> {
    // A candidate of the wrong shape matches nothing (its length and digits are not secret).
    let want: u32 = match candidate.parse() {
        Ok(v)
            if candidate.len() == p.digits as usize
                && candidate.bytes().all(|b| b.is_ascii_digit()) =>
        {
            v
        }
        _ => return None,
    };
    let keyed = Keyed::new(p.algorithm, key);
    let modulus = 10u32.pow(p.digits);
    let mut found = None;
    for c in from..=to {
        let hit: bool = (keyed.value(c) % modulus).ct_eq(&want).into();
        if hit && found.is_none() {
            found = Some(c);
        }
    }
    found
}

/// TOTP verification at `unix` with ±`skew` steps, refusing steps at or below `last_used`
/// (replay): the matching step, to be stored as the new `last_used`.
pub fn verify_totp(
    key: &[u8],
    p: &Params,
    unix: i64,
    skew: u64,
    last_used: Option<u64>,
    candidate: &str,
) -> Result<Option<u64>, OtpError> {
    let now = p.step(unix)?;
    let mut from = now.saturating_sub(skew);
    if let Some(used) = last_used {
        from = from.max(used + 1);
    }
    let to = now + skew;
    Ok((from <= to)
        .then(|| find(key, from, to, p, candidate))
        .flatten())
}

/// HOTP verification: the next expected counter and up to `look_ahead` after it; the matching
/// counter (the next expected one becomes it + 1).
pub fn verify_hotp(
    key: &[u8],
    p: &Params,
    next: u64,
    look_ahead: u64,
    candidate: &str,
) -> Option<u64> {
    find(key, next, next + look_ahead, p, candidate)
}

/// HOTP resynchronisation (RFC 4226 §7.4): two consecutive codes found within `window`
/// counters after `next`; the counter of the second, so the next expected is it + 1.
pub fn resync_hotp(
    key: &[u8],
    p: &Params,
    next: u64,
    window: u64,
    first: &str,
    second: &str,
) -> Option<u64> {
    let mut found = None;
    for c in next..next + window {
        if matches(key, c, p, first) && matches(key, c + 1, p, second) && found.is_none() {
            found = Some(c + 1);
        }
    }
    found
}

/// Base32 (RFC 4648, no padding) of a secret, as authenticator apps take it.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The secret of an `otpauth://` provisioning URI.
pub fn secret_from_uri(uri: &str) -> Result<Vec<u8>, OtpError> {
    let url = url::Url::parse(uri).map_err(|_| OtpError::BadUri("does not parse"))?;
    let secret = url
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned())
        .ok_or(OtpError::BadUri("no secret parameter"))?;
    secret_from_base32(&secret)
}

/// A base32 secret as bytes: case, spaces and padding are forgiven (as oathtool and pyotp do).
pub fn secret_from_base32(text: &str) -> Result<Vec<u8>, OtpError> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD
        .decode(clean.as_bytes())
        .map_err(|_| OtpError::Base32)
}

/// What a provisioning URI provisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Time-based, with its period.
    Totp,
    /// Counter-based, starting at this counter.
    Hotp(u64),
}

/// Shortest secret a new credential may have (RFC 4226 §4, R6: 128 bits).
pub const MIN_SECRET_BYTES: usize = 16;

/// The `otpauth://` URI authenticator apps (and pyotp) load: `issuer:account` label, secret,
/// issuer, algorithm, digits and period (TOTP) or counter (HOTP). A secret shorter than
/// [`MIN_SECRET_BYTES`] is refused: provisioning one would create a credential the RFC
/// forbids (and pyotp refuses to load).
pub fn uri(
    kind: Kind,
    secret: &[u8],
    p: &Params,
    issuer: &str,
    account: &str,
) -> Result<String, OtpError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(OtpError::ShortSecret(secret.len() * 8));
    }
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let (kind_name, tail) = match kind {
        Kind::Totp => ("totp", format!("&period={}", p.period)),
        Kind::Hotp(counter) => ("hotp", format!("&counter={counter}")),
    };
    Ok(format!(
        "otpauth://{kind_name}/{}:{}?secret={}&issuer={}&algorithm={}&digits={}{tail}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer),
        p.algorithm.uri_name(),
        p.digits,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    /// RFC 4226 Appendix D.
    #[test]
    fn hotp_matches_rfc4226_appendix_d() {
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (count, w) in want.iter().enumerate() {
            assert_eq!(
                code(SECRET, count as u64, &Params::default()),
                *w,
                "count {count}"
            );
        }
        // Intermediate values of the appendix: HMAC-SHA-1 and the truncation of count 0.
        let h = mac(Algorithm::Sha1, SECRET, &0u64.to_be_bytes());
        assert_eq!(
            data_encoding::HEXLOWER.encode(&h),
            "cc93cf18508d94934c64b65d8ba7667fb7cde4b0"
        );
        assert_eq!(truncate(&h), 1_284_755_224);
    }

    /// RFC 6238 Appendix B, first row per hash (the whole table runs through the CLI in
    /// tests/otp.rs).
    #[test]
    fn totp_matches_rfc6238_appendix_b() {
        let p = |alg| Params::new(alg, 8, 30).unwrap();
        assert_eq!(totp(SECRET, 59, &p(Algorithm::Sha1)).unwrap(), "94287082");
        let seed256 = b"12345678901234567890123456789012";
        assert_eq!(
            totp(seed256, 59, &p(Algorithm::Sha256)).unwrap(),
            "46119246"
        );
        let seed512 = b"1234567890123456789012345678901234567890123456789012345678901234";
        assert_eq!(
            totp(seed512, 59, &p(Algorithm::Sha512)).unwrap(),
            "90693936"
        );
    }

    #[test]
    fn totp_window_skew_and_replay() {
        let p = Params::default();
        let t = 1_700_000_000;
        let step = p.step(t).unwrap();
        let prev = code(SECRET, step - 1, &p);
        assert_eq!(
            verify_totp(SECRET, &p, t, 1, None, &prev).unwrap(),
            Some(step - 1)
        );
        let two_back = code(SECRET, step - 2, &p);
        assert_eq!(
            verify_totp(SECRET, &p, t, 1, None, &two_back).unwrap(),
            None
        );
        let now = code(SECRET, step, &p);
        assert_eq!(
            verify_totp(SECRET, &p, t, 1, Some(step), &now).unwrap(),
            None,
            "a used step is refused"
        );
        assert_eq!(
            verify_totp(SECRET, &p, t, 1, Some(step - 1), &prev).unwrap(),
            None,
            "an older step than the last used is refused"
        );
        assert_eq!(verify_totp(SECRET, &p, t, 1, None, "12345").unwrap(), None);
        assert!(verify_totp(SECRET, &p, -1, 1, None, &now).is_err());
    }

    #[test]
    fn hotp_look_ahead_and_resync() {
        let p = Params::default();
        assert_eq!(verify_hotp(SECRET, &p, 0, 3, "969429"), Some(3));
        assert_eq!(verify_hotp(SECRET, &p, 0, 2, "969429"), None);
        assert_eq!(
            resync_hotp(SECRET, &p, 0, 100, "520489", "403154"),
            Some(10)
        );
        assert_eq!(resync_hotp(SECRET, &p, 0, 100, "520489", "755224"), None);
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(
            Params::new(Algorithm::Sha1, 5, 30),
            Err(OtpError::Digits(5))
        );
        assert_eq!(
            Params::new(Algorithm::Sha1, 9, 30),
            Err(OtpError::Digits(9))
        );
        assert_eq!(Params::new(Algorithm::Sha1, 6, 0), Err(OtpError::Period));
        assert_eq!("SHA-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert!("md5".parse::<Algorithm>().is_err());
    }

    #[test]
    fn base32_round_trips_and_forgives_format() {
        let b = base32(SECRET);
        assert_eq!(b, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(secret_from_base32(&b.to_lowercase()).unwrap(), SECRET);
        assert_eq!(
            secret_from_base32("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ").unwrap(),
            SECRET
        );
        assert_eq!(secret_from_base32("not base32!"), Err(OtpError::Base32));
    }

    #[test]
    fn uris_carry_every_parameter() {
        let p = Params::new(Algorithm::Sha256, 8, 60).unwrap();
        assert_eq!(
            uri(Kind::Totp, SECRET, &p, "ACME Corp", "alice@acme.example").unwrap(),
            "otpauth://totp/ACME%20Corp:alice%40acme.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Corp&algorithm=SHA256&digits=8&period=60"
        );
        let hotp = uri(Kind::Hotp(7), SECRET, &Params::default(), "i", "a").unwrap();
        assert!(hotp.ends_with("&counter=7"), "{hotp}");
        assert_eq!(
            uri(Kind::Totp, &SECRET[..10], &p, "i", "a"),
            Err(OtpError::ShortSecret(80))
        );
    }
}
