//! Microsoft Graph audit logs: `GET {url}/auditLogs/signIns` (by `createdDateTime`) and
//! `/auditLogs/directoryAudits` (by `activityDateTime`), filtered to a time window with
//! `$filter=… ge … and … lt …`, 999 a page, the next page from `@odata.nextLink`. Access with
//! the client-credentials grant of an app registration (`{token_url}`, scope
//! `https://{graph host}/.default`); 429 answers carry `Retry-After`.

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::api::{Api, Bearer, Order, Page, get_with_bearer, json, polled, rfc3339};
use crate::config::{Credentials, SourceConfig};
use crate::http::{Http, PollError};

pub(crate) struct Graph {
    url: String,
    token_url: String,
    client_id: String,
    secret: Zeroizing<String>,
    scope: String,
    bearer: Bearer,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    value: Vec<&'a RawValue>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Record<'a> {
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    createdDateTime: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    activityDateTime: Option<std::borrow::Cow<'a, str>>,
}

impl Graph {
    pub(crate) fn new(c: &SourceConfig) -> Result<Graph, PollError> {
        let Credentials::Graph { client_id, secret } = &c.credentials else {
            unreachable!("config gives graph sources graph credentials")
        };
        let base =
            url::Url::parse(&c.url).map_err(|e| PollError::Invalid(format!("graph url: {e}")))?;
        let host = base.host_str().unwrap_or("graph.microsoft.com");
        Ok(Graph {
            url: c.url.clone(),
            token_url: c.token_url.clone().unwrap_or_default(),
            client_id: client_id.clone(),
            secret: secret.clone(),
            scope: format!("https://{host}/.default"),
            bearer: Bearer::default(),
        })
    }
}

/// The field a stream's window filters on.
fn time_field(stream: &str) -> &'static str {
    if stream == "directoryAudits" {
        "activityDateTime"
    } else {
        "createdDateTime"
    }
}

impl Api for Graph {
    fn order(&self) -> Order {
        Order::Any
    }

    fn page(
        &mut self,
        http: &mut Http,
        stream: &str,
        from_ms: i64,
        to_ms: i64,
        next: Option<&str>,
    ) -> Result<Page, PollError> {
        let url = match next {
            Some(n) => url::Url::parse(n),
            None => {
                let f = time_field(stream);
                url::Url::parse_with_params(
                    &format!("{}/auditLogs/{stream}", self.url),
                    [
                        (
                            "$filter",
                            format!("{f} ge {} and {f} lt {}", rfc3339(from_ms), rfc3339(to_ms)),
                        ),
                        ("$top", "999".into()),
                    ],
                )
            }
        }
        .map_err(|e| PollError::Invalid(format!("graph: url: {e}")))?;
        let (client_id, secret, scope) = (
            self.client_id.clone(),
            self.secret.clone(),
            self.scope.clone(),
        );
        let form = move || {
            Ok(vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", client_id.clone()),
                ("client_secret", secret.to_string()),
                ("scope", scope.clone()),
            ])
        };
        let reply = get_with_bearer(http, &mut self.bearer, &url, &self.token_url, &form)?;
        let answer: Answer<'_> = json(&reply, &crate::http::named("GET", &url))?;
        let mut records = Vec::with_capacity(answer.value.len());
        for raw in answer.value {
            let r: Record<'_> = serde_json::from_str(raw.get()).unwrap_or(Record {
                id: None,
                createdDateTime: None,
                activityDateTime: None,
            });
            let time = r
                .createdDateTime
                .as_deref()
                .or(r.activityDateTime.as_deref());
            records.push(polled(raw, time, r.id.as_deref(), from_ms));
        }
        Ok(Page {
            records,
            next: answer.next,
        })
    }
}
