//! The probe's HTTP client: one request at a time, timed, answering status, JSON body and
//! `Retry-After`. Transport failures come back as a message naming the URL (never a body).

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use serde_json::Value;

use super::ProbeError;

/// One answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`Null` when the body is not JSON).
    pub body: Value,
    /// Round trip.
    pub took: Duration,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<u64>,
}

impl Answer {
    /// `status error-code` for messages: never the whole body (it may hold a token).
    pub fn describe(&self) -> String {
        match self.body.get("error").and_then(Value::as_str) {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }

    /// A string field of the body.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }
}

/// A blocking client for one base URL.
pub struct Http {
    base: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// What to send.
pub enum Body<'a> {
    /// No body.
    Empty,
    /// JSON.
    Json(&'a Value),
    /// Form-encoded.
    Form(&'a [(&'a str, &'a str)]),
}

impl Http {
    /// A client for `base` with a per-request `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Http, ProbeError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("mfascope-probe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProbeError::Config(format!("HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProbeError::Config(format!("async runtime: {e}")))?;
        Ok(Http {
            base: base.trim_end_matches('/').to_string(),
            client,
            rt,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send `method path` with `body`, as `bearer` when given.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Body<'_>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method.clone(), &url);
        if let Some(t) = bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(v),
            Body::Form(f) => req.form(f),
        };
        let started = Instant::now();
        self.rt.block_on(async {
            let route = path.split('/').take(3).collect::<Vec<_>>().join("/");
            let fail = |e: reqwest::Error| {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "failed"
                };
                format!("{method} {}{route}…: {what}", self.base)
            };
            let resp = req.send().await.map_err(fail)?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let bytes = resp.bytes().await.map_err(fail)?;
            Ok(Answer {
                status,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                took: started.elapsed(),
                retry_after,
            })
        })
    }
}
