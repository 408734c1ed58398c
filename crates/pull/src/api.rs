//! What a vendor module provides to the poller ([`Api`]: its streams, their order, one page of
//! a time window), and what they share: records with their cursor, and OAuth access tokens
//! fetched, cached and refreshed. It never decides what to deliver (the poller does).

use std::time::{Duration, Instant};

use mfascope_source::Cursor;
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::http::{Http, PollError, Reply};
use crate::stats::Stats;

/// How a vendor returns a window's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// Oldest first across pages: records can be delivered page by page.
    Ascending,
    /// Any order (newest first): a window is fetched whole, then delivered sorted.
    Any,
}

/// A record fetched, with its place in the stream.
pub(crate) struct Polled {
    pub(crate) cursor: Cursor,
    pub(crate) bytes: Vec<u8>,
}

/// One page of a window.
pub(crate) struct Page {
    pub(crate) records: Vec<Polled>,
    /// The vendor's cursor for the next page of the same window.
    pub(crate) next: Option<String>,
}

/// A vendor log API.
pub(crate) trait Api: Send {
    /// The order pages come in.
    fn order(&self) -> Order;
    /// One page of `stream` for records in `[from_ms, to_ms)`; `next` is the previous page's
    /// cursor.
    fn page(
        &mut self,
        http: &mut Http,
        stream: &str,
        from_ms: i64,
        to_ms: i64,
        next: Option<&str>,
    ) -> Result<Page, PollError>;
}

/// A record's cursor from its time text and id (a record without them sorts at `fallback`
/// and is told apart by its bytes; the normalizer then says what it lacks).
pub(crate) fn polled(
    raw: &RawValue,
    time: Option<&str>,
    id: Option<&str>,
    fallback: i64,
) -> Polled {
    let time_ms = time
        .and_then(|t| mfascope_core::time::parse_rfc3339(t).ok())
        .unwrap_or(fallback)
        .max(0) as u64;
    let bytes = raw.get().as_bytes().to_vec();
    let key = match id {
        Some(id) => xxhash_rust::xxh3::xxh3_64(id.as_bytes()),
        None => xxhash_rust::xxh3::xxh3_64(&bytes),
    };
    Polled {
        cursor: Cursor { time_ms, key },
        bytes,
    }
}

/// Parse a JSON answer, naming the request when it is not what the vendor documents.
pub(crate) fn json<'a, T: Deserialize<'a>>(reply: &'a Reply, what: &str) -> Result<T, PollError> {
    serde_json::from_slice(&reply.body)
        .map_err(|e| PollError::Invalid(format!("{what}: answer is not the documented JSON: {e}")))
}

/// An OAuth access token, fetched when missing or about to expire.
#[derive(Default)]
pub(crate) struct Bearer {
    token: Option<(Zeroizing<String>, Instant)>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Bearer {
    /// The current token, fetched with `form` POSTed to `token_url` when there is none or it
    /// expires within a tenth of its life (at most a minute).
    pub(crate) fn get(
        &mut self,
        http: &mut Http,
        token_url: &str,
        form: &dyn Fn() -> Result<Vec<(&'static str, String)>, PollError>,
    ) -> Result<Zeroizing<String>, PollError> {
        if let Some((t, expires)) = &self.token
            && Instant::now() < *expires
        {
            return Ok(t.clone());
        }
        let url = url::Url::parse(token_url)
            .map_err(|e| PollError::Invalid(format!("token_url {token_url:?}: {e}")))?;
        let what = crate::http::named("POST", &url);
        let fields = form()?;
        let reply = http.send(&what, &mut |c| c.post(url.clone()).form(&fields))?;
        Stats::add(&http.stats.tokens, 1);
        let answer: TokenAnswer = json(&reply, &what)?;
        let life = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let margin = (life / 10).min(Duration::from_secs(60));
        let token = Zeroizing::new(answer.access_token);
        self.token = Some((token.clone(), Instant::now() + life - margin));
        Ok(token)
    }

    /// Forget the token (the API refused it: expired or revoked early).
    pub(crate) fn clear(&mut self) {
        self.token = None;
    }
}

/// GET `url` with a bearer token, fetching a new token once when the API answers 401.
pub(crate) fn get_with_bearer(
    http: &mut Http,
    bearer: &mut Bearer,
    url: &url::Url,
    token_url: &str,
    form: &dyn Fn() -> Result<Vec<(&'static str, String)>, PollError>,
) -> Result<Reply, PollError> {
    let what = crate::http::named("GET", url);
    let mut refreshed = false;
    loop {
        let token = bearer.get(http, token_url, form)?;
        match http.send(&what, &mut |c| {
            c.get(url.clone()).bearer_auth(token.as_str())
        }) {
            Err(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) && !refreshed => {
                bearer.clear();
                refreshed = true;
            }
            other => return other,
        }
    }
}

/// A signed JWT (RS256) for OAuth client assertions and Google's service-account grant.
pub(crate) fn signed_jwt(
    pem: &str,
    claims: &serde_json::Value,
    what: &str,
) -> Result<String, PollError> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| PollError::Invalid(format!("{what}: not an RSA private key in PEM: {e}")))?;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &key,
    )
    .map_err(|e| PollError::Invalid(format!("{what}: signing the assertion: {e}")))
}

/// Seconds since the epoch.
pub(crate) fn epoch_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// RFC 3339 with milliseconds, as every vendor's time filters accept.
pub(crate) fn rfc3339(ms: i64) -> String {
    mfascope_core::time::format_rfc3339(ms)
}
