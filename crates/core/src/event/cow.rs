//! Serde helpers that borrow strings from the input when the parser allows it. serde borrows a
//! bare `Cow<str>` field marked `#[serde(borrow)]`, but an `Option<Cow<str>>` always allocates;
//! `#[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]` fixes that.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

struct CowVisitor;

impl<'de> Visitor<'de> for CowVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

struct OptVisitor;

impl<'de> Visitor<'de> for OptVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(CowVisitor).map(Some)
    }
}

/// Deserialize an optional string, borrowing it from the input when possible.
pub fn opt<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    d.deserialize_option(OptVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct T<'a> {
        #[serde(borrow, default, deserialize_with = "opt")]
        a: Option<Cow<'a, str>>,
        #[serde(borrow, default, deserialize_with = "opt")]
        b: Option<Cow<'a, str>>,
        #[serde(borrow, default, deserialize_with = "opt")]
        c: Option<Cow<'a, str>>,
    }

    #[test]
    fn borrows_plain_strings_and_owns_escaped_ones() {
        let t: T = serde_json::from_str(r#"{"a":"plain","b":"esc\"aped","c":null}"#).unwrap();
        assert!(matches!(t.a, Some(Cow::Borrowed("plain"))));
        assert!(matches!(t.b, Some(Cow::Owned(ref s)) if s == "esc\"aped"));
        assert!(t.c.is_none());
        assert!(serde_json::from_str::<T>(r#"{"a":5}"#).is_err());
    }
}
