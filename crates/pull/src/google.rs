//! Google Workspace Admin SDK Reports API: `GET {url}/admin/reports/v1/activity/users/all/
//! applications/{application}` with `startTime`/`endTime`, 1,000 a page, the next page from
//! `nextPageToken`. Activities come newest first, so a window is fetched whole before it is
//! delivered. Access with a service account acting for an administrator (domain-wide
//! delegation: a JWT with `sub` signed by the account's key, exchanged at its `token_uri`
//! for scope `admin.reports.audit.readonly`).

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::api::{Api, Bearer, Order, Page, get_with_bearer, json, polled, rfc3339, signed_jwt};
use crate::config::{Credentials, SourceConfig};
use crate::http::{Http, PollError};

const SCOPE: &str = "https://www.googleapis.com/auth/admin.reports.audit.readonly";

pub(crate) struct Google {
    url: String,
    token_url: String,
    client_email: String,
    private_key: Zeroizing<String>,
    subject: String,
    bearer: Bearer,
}

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    token_uri: Option<String>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Answer<'a> {
    #[serde(borrow, default)]
    items: Vec<&'a RawValue>,
    nextPageToken: Option<String>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Activity {
    id: Option<Id>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Id {
    time: Option<String>,
    uniqueQualifier: Option<serde_json::Value>,
}

impl Google {
    pub(crate) fn new(c: &SourceConfig) -> Result<Google, PollError> {
        let Credentials::Google { key, subject } = &c.credentials else {
            unreachable!("config gives gworkspace sources google credentials")
        };
        let account: ServiceAccount = serde_json::from_str(key).map_err(|e| {
            PollError::Invalid(format!(
                "source {:?} key: not a service account key (JSON with client_email and \
                 private_key): {e}",
                c.name
            ))
        })?;
        Ok(Google {
            url: c.url.clone(),
            token_url: c
                .token_url
                .clone()
                .or(account.token_uri)
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            client_email: account.client_email,
            private_key: Zeroizing::new(account.private_key),
            subject: subject.clone(),
            bearer: Bearer::default(),
        })
    }
}

impl Api for Google {
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
        let mut params = vec![
            ("startTime", rfc3339(from_ms)),
            // endTime is inclusive.
            ("endTime", rfc3339(to_ms - 1)),
            ("maxResults", "1000".to_string()),
        ];
        if let Some(n) = next {
            params.push(("pageToken", n.to_string()));
        }
        let url = url::Url::parse_with_params(
            &format!(
                "{}/admin/reports/v1/activity/users/all/applications/{stream}",
                self.url
            ),
            &params,
        )
        .map_err(|e| PollError::Invalid(format!("gworkspace: url: {e}")))?;
        let (iss, sub, key, aud) = (
            self.client_email.clone(),
            self.subject.clone(),
            self.private_key.clone(),
            self.token_url.clone(),
        );
        let form = move || {
            let now = crate::api::epoch_secs();
            let claims = serde_json::json!({
                "iss": iss, "sub": sub, "scope": SCOPE, "aud": aud, "iat": now, "exp": now + 3600,
            });
            Ok(vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
                ),
                (
                    "assertion",
                    signed_jwt(&key, &claims, "service account key")?,
                ),
            ])
        };
        let reply = get_with_bearer(http, &mut self.bearer, &url, &self.token_url, &form)?;
        let answer: Answer<'_> = json(&reply, &crate::http::named("GET", &url))?;
        let mut records = Vec::with_capacity(answer.items.len());
        for raw in answer.items {
            let id = serde_json::from_str::<Activity>(raw.get())
                .ok()
                .and_then(|a| a.id);
            let time = id.as_ref().and_then(|i| i.time.clone());
            // Activities of one time are told apart by their unique qualifier.
            let key = id.as_ref().and_then(|i| {
                i.uniqueQualifier
                    .as_ref()
                    .map(|q| format!("{}/{}", i.time.as_deref().unwrap_or(""), q))
            });
            records.push(polled(raw, time.as_deref(), key.as_deref(), from_ms));
        }
        Ok(Page {
            records,
            next: answer.nextPageToken,
        })
    }
}
