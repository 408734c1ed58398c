//! Field helpers shared by the vendor mappers: empty/null filtering, stable ids, country codes,
//! lenient scalar types vendors disagree on.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;

use serde::Deserialize;

use mfascope_core::event::Source;

/// Per-worker mapping context: the JSON parse buffers and lookup caches. Mappers split it
/// (`let Ctx { json, geo, .. } = ctx;`) so parsed records can borrow `json` while `geo` is used.
#[derive(Default)]
pub struct Ctx {
    /// Reusable parse buffers.
    pub json: JsonScratch,
    /// Country lookups.
    pub geo: Countries,
    /// The date of log lines whose pattern has only a time of day (`--assume-date`).
    pub assume_date: Option<chrono::NaiveDate>,
}

/// Reusable buffers for the SIMD JSON parser, which rewrites its input in place: the record is
/// copied here first (with the parser's padding) so the raw bytes stay intact for dead letters.
/// The tape is kept between records too: allocating one per record left the allocator emptying
/// and returning a page to the kernel every few records (most of ingest's `madvise` calls).
pub struct JsonScratch {
    pub(super) bytes: Vec<u8>,
    pub(super) buffers: simd_json::Buffers,
    pub(super) tape: simd_json::Tape<'static>,
}

impl Default for JsonScratch {
    fn default() -> Self {
        Self {
            bytes: Vec::new(),
            buffers: simd_json::Buffers::default(),
            tape: simd_json::Tape(Vec::new()),
        }
    }
}

/// Cache of vendor country values → ISO codes.
#[derive(Default)]
pub struct Countries {
    countries: HashMap<String, Option<&'static str>>,
}

impl Countries {
    /// ISO 3166-1 alpha-2 code for a vendor country value (code, name or alias); the vendor's
    /// value is kept when it cannot be mapped, so nothing is invented.
    pub fn country<'a>(&mut self, value: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
        let value = nonempty(value)?;
        if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
            return Some(value);
        }
        // Looked up by `&str` first: the key is only copied the first time a value is seen.
        let code = match self.countries.get(value.as_ref()) {
            Some(&code) => code,
            None => *self
                .countries
                .entry(value.to_string())
                .or_insert_with(|| lookup_country(&value)),
        };
        Some(code.map(Cow::Borrowed).unwrap_or(value))
    }
}

fn lookup_country(name: &str) -> Option<&'static str> {
    let compact: String = name.chars().filter(|c| c.is_alphanumeric()).collect();
    let country = celes::Country::from_str(name)
        .or_else(|_| celes::Country::from_str(&compact))
        .ok()?;
    Some(country.alpha2)
}

/// `None` for missing, empty, `"null"` or `"-"` values.
pub fn nonempty(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|s| {
        let t = s.trim();
        !t.is_empty() && t != "null" && t != "-"
    })
}

/// Stable id for records without a vendor id: `source:` + xxh3-128 of the raw bytes.
pub fn hashed_id(source: Source, raw: &[u8]) -> String {
    format!(
        "{}:{:032x}",
        source.as_str(),
        xxhash_rust::xxh3::xxh3_128(raw)
    )
}

/// A JSON scalar that vendors send as string, number or bool; kept as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Any<'a> {
            #[serde(borrow)]
            S(Cow<'a, str>),
            I(i64),
            U(u64),
            F(f64),
            B(bool),
        }
        Ok(Scalar(match Any::deserialize(d)? {
            Any::S(s) => s,
            Any::I(i) => Cow::Owned(i.to_string()),
            Any::U(u) => Cow::Owned(u.to_string()),
            Any::F(f) => Cow::Owned(f.to_string()),
            Any::B(b) => Cow::Owned(b.to_string()),
        }))
    }
}

/// One object or a list of them (Google Workspace `events` arrive both ways).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A list.
    Many(Vec<T>),
    /// A single object.
    One(T),
}

impl<T> OneOrMany<T> {
    /// As a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => std::slice::from_ref(t),
        }
    }
}

/// Lower-case ASCII comparison helper for vendor free text.
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_country_names_to_codes_and_keeps_unknown_values() {
        let mut ctx = Countries::default();
        assert_eq!(
            ctx.country(Some("United States".into())).as_deref(),
            Some("US")
        );
        assert_eq!(ctx.country(Some("FR".into())).as_deref(), Some("FR"));
        assert_eq!(ctx.country(Some("Germany".into())).as_deref(), Some("DE"));
        assert_eq!(
            ctx.country(Some("Atlantis".into())).as_deref(),
            Some("Atlantis")
        );
        assert_eq!(ctx.country(Some("".into())), None);
    }
}
