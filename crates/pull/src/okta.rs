//! Okta System Log API (`GET /api/v1/logs`): bounded queries `since`/`until` in ascending
//! order, 1,000 events a page, the next page from the `Link: <…>; rel="next"` header. Access
//! with an API token (`SSWS`) or an OAuth 2.0 service app (`client_credentials` with a
//! `private_key_jwt` client assertion, scope `okta.logs.read`). Rate limits come from
//! `X-Rate-Limit-*` headers (the HTTP layer waits them out).

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::api::{Api, Bearer, Order, Page, get_with_bearer, json, polled, rfc3339, signed_jwt};
use crate::config::{Credentials, SourceConfig};
use crate::http::{Http, PollError, named};

pub(crate) struct Okta {
    url: String,
    auth: Auth,
}

enum Auth {
    Token(Zeroizing<String>),
    Key {
        client_id: String,
        key: Zeroizing<String>,
        token_url: String,
        bearer: Bearer,
    },
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    published: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    uuid: Option<std::borrow::Cow<'a, str>>,
}

impl Okta {
    pub(crate) fn new(c: &SourceConfig) -> Okta {
        let auth = match &c.credentials {
            Credentials::OktaKey { client_id, key } => Auth::Key {
                client_id: client_id.clone(),
                key: key.clone(),
                token_url: c
                    .token_url
                    .clone()
                    .unwrap_or_else(|| format!("{}/oauth2/v1/token", c.url)),
                bearer: Bearer::default(),
            },
            Credentials::OktaToken(t) => Auth::Token(t.clone()),
            _ => unreachable!("config gives okta sources okta credentials"),
        };
        Okta {
            url: c.url.clone(),
            auth,
        }
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let (start, end) = (part.find('<')?, part.find('>')?);
            Some(part[start + 1..end].to_string())
        })
}

impl Api for Okta {
    fn order(&self) -> Order {
        Order::Ascending
    }

    fn page(
        &mut self,
        http: &mut Http,
        _stream: &str,
        from_ms: i64,
        to_ms: i64,
        next: Option<&str>,
    ) -> Result<Page, PollError> {
        let url = match next {
            Some(n) => url::Url::parse(n)
                .map_err(|e| PollError::Invalid(format!("okta: next link {n:?}: {e}")))?,
            None => url::Url::parse_with_params(
                &format!("{}/api/v1/logs", self.url),
                [
                    ("since", rfc3339(from_ms)),
                    ("until", rfc3339(to_ms)),
                    ("sortOrder", "ASCENDING".into()),
                    ("limit", "1000".into()),
                ],
            )
            .map_err(|e| PollError::Invalid(format!("okta: url: {e}")))?,
        };
        let what = named("GET", &url);
        let reply = match &mut self.auth {
            Auth::Token(token) => {
                let header = Zeroizing::new(format!("SSWS {}", token.as_str()));
                http.send(&what, &mut |c| {
                    c.get(url.clone())
                        .header(reqwest::header::AUTHORIZATION, header.as_str())
                        .header(reqwest::header::ACCEPT, "application/json")
                })?
            }
            Auth::Key {
                client_id,
                key,
                token_url,
                bearer,
            } => {
                let (client_id, key, aud) = (client_id.clone(), key.clone(), token_url.clone());
                let form = move || {
                    let now = crate::api::epoch_secs();
                    let claims = serde_json::json!({
                        "iss": client_id, "sub": client_id, "aud": aud,
                        "iat": now, "exp": now + 300,
                        "jti": format!("{:016x}{:016x}", crate::http::random_u64(), crate::http::random_u64()),
                    });
                    let assertion = signed_jwt(&key, &claims, "okta key")?;
                    Ok(vec![
                        ("grant_type", "client_credentials".to_string()),
                        ("scope", "okta.logs.read".to_string()),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                        ),
                        ("client_assertion", assertion),
                    ])
                };
                get_with_bearer(http, bearer, &url, &token_url.clone(), &form)?
            }
        };
        let events: Vec<&RawValue> = json(&reply, &what)?;
        let mut records = Vec::with_capacity(events.len());
        for raw in events {
            let e: Event<'_> = serde_json::from_str(raw.get()).unwrap_or(Event {
                published: None,
                uuid: None,
            });
            records.push(polled(
                raw,
                e.published.as_deref(),
                e.uuid.as_deref(),
                from_ms,
            ));
        }
        // A bounded query's last page may still carry a next link; an empty page ends it.
        let next = if records.is_empty() {
            None
        } else {
            next_link(&reply.headers)
        };
        Ok(Page { records, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append(
            reqwest::header::LINK,
            "<https://x/api/v1/logs?limit=2>; rel=\"self\""
                .parse()
                .unwrap(),
        );
        h.append(
            reqwest::header::LINK,
            "<https://x/api/v1/logs?after=abc>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://x/api/v1/logs?after=abc")
        );
        h.clear();
        assert_eq!(next_link(&h), None);
    }
}
