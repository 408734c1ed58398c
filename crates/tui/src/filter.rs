//! The dashboard filter (`/`): `app:`, `factor:`, `user:` and `country:` terms, parsed from
//! what the user types and applied alike to table rows and to the batches the SLI panels are
//! computed from.

use arrow::array::{Array, BooleanArray, StringArray};
use arrow::compute::filter_record_batch;

use super::state::EventRow;
use mfascope_core::event::{CanonicalBatch, Factor, col};

/// What the user narrowed the data to (`/`), e.g. `factor:push country:BR`; a bare word matches
/// users containing it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Application (exact).
    pub app: Option<String>,
    /// Only events with this factor (all when `None`).
    pub factor: Option<Factor>,
    /// User (substring, case-insensitive).
    pub user: Option<String>,
    /// Country (ISO code, case-insensitive).
    pub country: Option<String>,
}

impl Filter {
    /// Parse `key:value` terms (`app`, `factor`, `user`, `country`); a bare word is a user.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut f = Filter::default();
        for term in text.split_whitespace() {
            let (key, value) = term.split_once([':', '=']).unwrap_or(("user", term));
            let value = value.trim();
            if value.is_empty() {
                return Err(format!("{term}: empty value"));
            }
            match key {
                "app" => f.app = Some(value.to_string()),
                "user" => f.user = Some(value.to_lowercase()),
                "country" => f.country = Some(value.to_uppercase()),
                "factor" => {
                    f.factor = Some(value.parse().map_err(|_| {
                        let known: Vec<&str> = <Factor as strum::VariantNames>::VARIANTS.to_vec();
                        format!("factor {value:?}: one of {}", known.join(", "))
                    })?);
                }
                other => {
                    return Err(format!(
                        "{other}: filter by app, factor, user or country (e.g. factor:push)"
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether an event with these fields passes (the one rule both tables and batches use).
    fn passes(
        &self,
        app: Option<&str>,
        factor: Option<Factor>,
        user: &str,
        country: Option<&str>,
    ) -> bool {
        self.app.as_deref().is_none_or(|a| app == Some(a))
            && self.factor.is_none_or(|f| factor == Some(f))
            && self
                .user
                .as_ref()
                .is_none_or(|u| user.to_lowercase().contains(u.as_str()))
            && self
                .country
                .as_ref()
                .is_none_or(|c| country.is_some_and(|x| x.eq_ignore_ascii_case(c)))
    }

    /// Whether an event passes.
    pub fn matches(&self, e: &EventRow) -> bool {
        self.passes(e.app.as_deref(), e.factor, &e.user, e.country.as_deref())
    }

    /// The rows of a canonical batch that pass (the batch itself when nothing is filtered).
    pub fn apply(&self, batch: &CanonicalBatch) -> CanonicalBatch {
        if self.is_empty() {
            return batch.clone();
        }
        let [app, user, country] = [col::APP, col::USER, col::COUNTRY].map(|c| batch.strings(c));
        let factor: Vec<Option<Factor>> = batch.enums(col::FACTOR);
        fn value(a: &StringArray, i: usize) -> Option<&str> {
            (!a.is_null(i)).then(|| a.value(i))
        }
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|i| {
                Some(self.passes(value(&app, i), factor[i], user.value(i), value(&country, i)))
            })
            .collect();
        let kept = filter_record_batch(batch.record_batch(), &keep)
            .expect("the mask has the batch's length");
        batch.derived(kept)
    }

    /// Whether a finding about `user` passes (findings carry no app, factor or country: those
    /// terms do not exclude them).
    pub fn matches_user(&self, user: Option<&str>) -> bool {
        self.user
            .as_ref()
            .is_none_or(|u| user.is_some_and(|x| x.to_lowercase().contains(u.as_str())))
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut terms = Vec::new();
        if let Some(a) = &self.app {
            terms.push(format!("app:{a}"));
        }
        if let Some(x) = self.factor {
            terms.push(format!("factor:{x}"));
        }
        if let Some(u) = &self.user {
            terms.push(format!("user:{u}"));
        }
        if let Some(c) = &self.country {
            terms.push(format!("country:{c}"));
        }
        f.write_str(&terms.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Action, Event, EventBatchBuilder, Outcome, Source};

    #[test]
    fn filter_matches_events() {
        let row = EventRow {
            time: 0,
            event_id: "e".into(),
            source: None,
            user: "Alice@Example.com".into(),
            app: Some("vpn".into()),
            action: None,
            factor: Some(Factor::Push),
            outcome: None,
            reason: None,
            country: Some("br".into()),
            src_ip: None,
            device_id: None,
        };
        for (text, want) in [
            ("", true),
            ("alice", true),
            ("user:bob", false),
            ("factor:push country:BR", true),
            ("factor:totp", false),
            ("app:vpn", true),
            ("app:crm", false),
        ] {
            assert_eq!(Filter::parse(text).unwrap().matches(&row), want, "{text}");
        }
        assert!(Filter::parse("colour:red").is_err());
        assert!(Filter::parse("user:").is_err());
    }

    #[test]
    fn batches_keep_exactly_the_rows_that_pass() {
        let mut b = EventBatchBuilder::default();
        for (i, (user, factor, country)) in [
            ("alice@x", Factor::Push, Some("BR")),
            ("bob@x", Factor::Push, Some("br")),
            ("alice@x", Factor::Totp, Some("BR")),
            ("carol@x", Factor::Push, None),
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = Event::new(
                Source::Canonical,
                format!("e{i}"),
                1_714_557_600_000 + i as i64,
                user,
                "t",
                (Action::MfaVerify, factor, Outcome::Success),
            );
            e.country = country.map(|c| c.to_string().into());
            b.append(&e);
        }
        let batch = b.finish_canonical();
        let ids = |f: &str| -> Vec<String> {
            let out = Filter::parse(f).unwrap().apply(&batch);
            let id = out.strings(col::EVENT_ID);
            (0..out.num_rows())
                .map(|i| id.value(i).to_string())
                .collect()
        };
        assert_eq!(ids(""), ["e0", "e1", "e2", "e3"]);
        assert_eq!(ids("factor:push country:br"), ["e0", "e1"]);
        assert_eq!(ids("alice"), ["e0", "e2"]);
        assert_eq!(ids("country:DE").len(), 0);
    }
}
