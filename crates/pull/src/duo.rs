//! Duo Admin API v2 authentication logs (`GET /admin/v2/logs/authentication`): `mintime` and
//! `maxtime` in milliseconds, oldest first (`sort=ts:asc`), 1,000 a page, the next page from
//! `metadata.next_offset` (the last record's timestamp and txid). Every request is signed as
//! Duo documents (HMAC-SHA1 over date, method, host, path and the sorted, percent-encoded
//! parameters; `Authorization: Basic ikey:signature`). Duo answers one log request a minute
//! and holds back the last two minutes: the source's defaults.

use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::api::{Api, Order, Page, json, polled};
use crate::config::{Credentials, SourceConfig};
use crate::http::{Http, PollError, named};

/// What Duo leaves unencoded: RFC 3986 unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) struct Duo {
    url: url::Url,
    ikey: Zeroizing<String>,
    skey: Zeroizing<String>,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    response: Response<'a>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    authlogs: Vec<&'a RawValue>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    next_offset: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    isotimestamp: Option<std::borrow::Cow<'a, str>>,
    timestamp: Option<i64>,
    #[serde(borrow)]
    txid: Option<std::borrow::Cow<'a, str>>,
}

impl Duo {
    pub(crate) fn new(c: &SourceConfig) -> Result<Duo, PollError> {
        let Credentials::Duo { ikey, skey } = &c.credentials else {
            unreachable!("config gives duo sources duo credentials")
        };
        Ok(Duo {
            url: url::Url::parse(&c.url)
                .map_err(|e| PollError::Invalid(format!("duo url: {e}")))?,
            ikey: ikey.clone(),
            skey: skey.clone(),
        })
    }
}

/// Duo's canonical request and its signature (hex HMAC-SHA1 with the secret key).
pub(crate) fn sign(
    skey: &str,
    date: &str,
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
) -> String {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort();
    let canon_params = sorted
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, UNRESERVED),
                utf8_percent_encode(v, UNRESERVED)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let canon = [
        date,
        &method.to_ascii_uppercase(),
        &host.to_ascii_lowercase(),
        path,
        &canon_params,
    ]
    .join("\n");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(skey.as_bytes()).expect("HMAC takes any key");
    mac.update(canon.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Api for Duo {
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
        let path = "/admin/v2/logs/authentication";
        let mut params = vec![
            ("limit".to_string(), "1000".to_string()),
            ("maxtime".to_string(), (to_ms - 1).to_string()),
            ("mintime".to_string(), from_ms.to_string()),
            ("sort".to_string(), "ts:asc".to_string()),
        ];
        if let Some(n) = next {
            params.push(("next_offset".to_string(), n.to_string()));
        }
        let mut url = self.url.clone();
        url.set_path(path);
        url.query_pairs_mut().extend_pairs(&params);
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let what = named("GET", &url);
        let (ikey, skey) = (self.ikey.clone(), self.skey.clone());
        let reply = http.send(&what, &mut |c| {
            // Signed afresh on each attempt: the date is part of the signature.
            let date = chrono::Utc::now().to_rfc2822();
            let sig = sign(&skey, &date, "GET", &host, path, &params);
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{sig}", ikey.as_str()));
            c.get(url.clone())
                .header("Date", date)
                .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
        })?;
        let answer: Answer<'_> = json(&reply, &what)?;
        let mut records = Vec::with_capacity(answer.response.authlogs.len());
        for raw in answer.response.authlogs {
            let r: Record<'_> = serde_json::from_str(raw.get()).unwrap_or(Record {
                isotimestamp: None,
                timestamp: None,
                txid: None,
            });
            let mut p = polled(raw, r.isotimestamp.as_deref(), r.txid.as_deref(), from_ms);
            if r.isotimestamp.is_none()
                && let Some(secs) = r.timestamp
            {
                p.cursor.time_ms = (secs.max(0) as u64) * 1000;
            }
            records.push(p);
        }
        let next = answer
            .response
            .metadata
            .next_offset
            .filter(|o| !o.is_empty() && !records.is_empty())
            .map(|o| {
                o.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        Ok(Page { records, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Duo's Admin API documentation ("Authentication" section) signs to the
    /// documented value.
    #[test]
    fn duo_documented_example_signs_as_documented() {
        let params = vec![
            ("realname".to_string(), "First Last".to_string()),
            ("username".to_string(), "root".to_string()),
        ];
        let sig = sign(
            "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep",
            "Tue, 21 Aug 2012 17:29:18 -0000",
            "POST",
            "api-xxxxxxxx.duosecurity.com",
            "/accounts/v1/account/list",
            &params,
        );
        assert_eq!(sig, "2d97d6166319781b5a3a07af39d366f491234edc");
    }
}
