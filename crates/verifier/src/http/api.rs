//! The verifier's JSON API over HTTP: routes, request/response shapes, status codes, admin and
//! bearer authentication, per-IP and per-user limits, request metrics. The logic lives in
//! [`Engine`]; this module only translates.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/admin/users` `{user,password}` | admin | create a user |
//! | `DELETE /v1/admin/users/{user}` | admin | delete a user |
//! | `POST /v1/admin/users/{user}/factors` `{kind,…}` | admin | enroll totp/hotp/recovery/push |
//! | `DELETE /v1/admin/users/{user}/factors/{id}` | admin | revoke a factor |
//! | `POST /v1/admin/users/{user}/factors/{id}/resync` `{first,second}` | admin | HOTP resync |
//! | `POST /v1/login` `{user,password}` | anyone | password step → challenge |
//! | `POST /v1/login/{challenge}/push` `{factor}` | anyone | send a push |
//! | `POST /v1/login/{challenge}/verify` `{factor, code│recovery_code│push}` | anyone | second factor → session |
//! | `GET /v1/device/pushes`, `POST /v1/device/pushes/{id}` `{approve}` | device token | the simulated device |
//! | `GET /v1/session`, `DELETE /v1/session` | session token | introspect, revoke |
//! | `GET /healthz`, `GET /metrics` | anyone | liveness, Prometheus |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::limits::Limits;
use super::telemetry::Telemetry;
use crate::engine::{Client, Engine, Proof, VerifyError};
use crate::otp::Params;
use crate::token::sha256_hex;

/// What the handlers share.
pub struct AppState {
    /// The verifier.
    pub engine: Arc<Engine>,
    /// Rate limits.
    pub limits: Arc<Limits>,
    /// The server's own Prometheus metrics.
    pub telemetry: Arc<Telemetry>,
    /// SHA-256 (hex) of the admin token.
    pub admin_token_hash: String,
}

type Shared = Arc<AppState>;

/// An error answer: `{"error": code, "message": …}`, with `Retry-After` when set.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    fn unauthorized(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("missing or wrong bearer token ({what})"),
        )
    }

    fn too_many(code: &'static str, message: String, wait: Duration) -> ApiError {
        ApiError {
            retry_after_s: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> ApiError {
        use StatusCode as S;
        let (status, code) = match &e {
            VerifyError::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            VerifyError::UserExists => (S::CONFLICT, "user_exists"),
            VerifyError::NoSuchUser => (S::NOT_FOUND, "no_such_user"),
            VerifyError::NoSuchChallenge => (S::NOT_FOUND, "no_such_challenge"),
            VerifyError::NoSuchFactor => (S::NOT_FOUND, "no_such_factor"),
            VerifyError::WrongCode => (S::UNAUTHORIZED, "wrong_code"),
            VerifyError::Replayed => (S::UNAUTHORIZED, "replayed"),
            VerifyError::Locked { retry_after_s } => {
                let wait = Duration::from_secs(*retry_after_s);
                return ApiError::too_many("locked", e.to_string(), wait);
            }
            VerifyError::PushPending => (S::ACCEPTED, "push_pending"),
            VerifyError::PushDenied => (S::FORBIDDEN, "push_denied"),
            VerifyError::PushTimedOut => (S::UNAUTHORIZED, "push_timeout"),
            VerifyError::Otp(_) => (S::BAD_REQUEST, "bad_parameters"),
            VerifyError::Store(_) | VerifyError::Seal(_) => {
                tracing::error!(error = %e, "verifier state");
                return ApiError::new(S::INTERNAL_SERVER_ERROR, "internal", "internal error");
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "message": self.message});
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

type ApiResult = Result<(StatusCode, axum::Json<Value>), ApiError>;

fn ok(status: StatusCode, body: Value) -> ApiResult {
    Ok((status, axum::Json(body)))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Parse a JSON body, naming the field that is wrong.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("request body at {path}: {inner}"),
        )
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn client(addr: SocketAddr, headers: &HeaderMap) -> Client {
    Client {
        ip: Some(addr.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

/// Run blocking engine work (argon2) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VerifyError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "verifier task failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        })?
        .map_err(ApiError::from)
}

fn user_limit(s: &AppState, user: &str) -> Result<(), ApiError> {
    s.limits.user(user).map_err(|(scope, wait)| {
        s.telemetry.limited(scope.as_str());
        ApiError::too_many(
            "rate_limited",
            "too many attempts for this user".into(),
            wait,
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    user: String,
    password: String,
}

async fn create_user(State(s): State<Shared>, raw: Bytes) -> ApiResult {
    let c: Credentials = body(&raw)?;
    if c.user.is_empty() || c.user.len() > 256 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "user: 1 to 256 bytes",
        ));
    }
    let engine = s.engine.clone();
    let user = c.user.clone();
    blocking(move || engine.create_user(&c.user, &c.password)).await?;
    ok(StatusCode::CREATED, json!({"user": user}))
}

async fn delete_user(State(s): State<Shared>, Path(user): Path<String>) -> ApiResult {
    s.engine.delete_user(&user)?;
    ok(StatusCode::OK, json!({"deleted": user}))
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Enroll {
    Totp {
        #[serde(flatten)]
        params: Params,
    },
    Hotp {
        #[serde(flatten)]
        params: Params,
        #[serde(default)]
        counter: u64,
    },
    Recovery,
    Push,
}

async fn enroll(State(s): State<Shared>, Path(user): Path<String>, raw: Bytes) -> ApiResult {
    let what: Enroll = body(&raw)?;
    let now = now_ms();
    let e = &s.engine;
    let enrollment = match what {
        Enroll::Totp { params } => e.enroll_otp(&user, params, None, now)?,
        Enroll::Hotp { params, counter } => e.enroll_otp(&user, params, Some(counter), now)?,
        Enroll::Recovery => e.enroll_recovery_codes(&user, now)?,
        Enroll::Push => e.enroll_push(&user, now)?,
    };
    ok(StatusCode::CREATED, json!(enrollment))
}

async fn revoke_factor(
    State(s): State<Shared>,
    Path((user, factor)): Path<(String, String)>,
) -> ApiResult {
    s.engine.revoke_factor(&user, &factor, now_ms())?;
    ok(StatusCode::OK, json!({"revoked": factor}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResyncIn {
    first: String,
    second: String,
}

async fn resync_hotp(
    State(s): State<Shared>,
    Path((user, factor)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult {
    let r: ResyncIn = body(&raw)?;
    let next = s.engine.resync_hotp(&user, &factor, &r.first, &r.second)?;
    ok(
        StatusCode::OK,
        json!({"factor": factor, "next_counter": next}),
    )
}

async fn login(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult {
    let c: Credentials = body(&raw)?;
    user_limit(&s, &c.user)?;
    let client = client(addr, &headers);
    let engine = s.engine.clone();
    let challenge = blocking(move || engine.login(&c.user, &c.password, &client, now_ms())).await?;
    let factors: Vec<Value> = challenge
        .factors
        .iter()
        .map(|(id, kind)| json!({"id": id, "kind": kind}))
        .collect();
    ok(
        StatusCode::OK,
        json!({"challenge": challenge.id, "factors": factors}),
    )
}

/// The per-user limit for a step on `challenge` (unknown challenges are the engine's error).
fn challenge_limit(s: &AppState, challenge: &str, now: i64) -> Result<(), ApiError> {
    if !s.limits.limits_users() {
        return Ok(());
    }
    match s.engine.challenge_user(challenge, now) {
        Some(user) => user_limit(s, &user),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushIn {
    factor: String,
}

async fn start_push(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(challenge): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult {
    let p: PushIn = body(&raw)?;
    let now = now_ms();
    challenge_limit(&s, &challenge, now)?;
    let started = s
        .engine
        .start_push(&challenge, &p.factor, &client(addr, &headers), now)?;
    ok(StatusCode::ACCEPTED, json!(started))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyIn {
    factor: String,
    code: Option<String>,
    recovery_code: Option<String>,
    #[serde(default)]
    push: bool,
}

async fn verify(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(challenge): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult {
    let v: VerifyIn = body(&raw)?;
    let proof = match (v.code, v.recovery_code, v.push) {
        (Some(c), None, false) => Proof::Code(c),
        (None, Some(c), false) => Proof::RecoveryCode(c),
        (None, None, true) => Proof::Push,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give exactly one of code, recovery_code or push: true",
            ));
        }
    };
    let now = now_ms();
    challenge_limit(&s, &challenge, now)?;
    let session = s
        .engine
        .verify(&challenge, &v.factor, &proof, &client(addr, &headers), now)?;
    ok(StatusCode::OK, json!(session))
}

async fn pending_pushes(State(s): State<Shared>, headers: HeaderMap) -> ApiResult {
    let device = bearer(&headers).ok_or_else(|| ApiError::unauthorized("device token"))?;
    ok(
        StatusCode::OK,
        json!({"pushes": s.engine.pending_pushes(device, now_ms())}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerIn {
    approve: bool,
}

async fn answer_push(
    State(s): State<Shared>,
    Path(push): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult {
    let a: AnswerIn = body(&raw)?;
    let device = bearer(&headers).ok_or_else(|| ApiError::unauthorized("device token"))?;
    if s.engine.answer_push(&push, device, a.approve, now_ms()) {
        ok(StatusCode::OK, json!({"push": push, "approved": a.approve}))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_push",
            "no pending push of this device with that id (answered or expired)",
        ))
    }
}

async fn introspect(State(s): State<Shared>, headers: HeaderMap) -> ApiResult {
    let token = bearer(&headers).ok_or_else(|| ApiError::unauthorized("session token"))?;
    match s.engine.introspect(token, now_ms()) {
        Some(info) => ok(StatusCode::OK, json!(info)),
        None => Err(ApiError::unauthorized("session expired or revoked")),
    }
}

async fn revoke_session(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult {
    let token = bearer(&headers).ok_or_else(|| ApiError::unauthorized("session token"))?;
    if s.engine
        .revoke_session(token, &client(addr, &headers), now_ms())
    {
        ok(StatusCode::OK, json!({"revoked": true}))
    } else {
        Err(ApiError::unauthorized("session expired or revoked"))
    }
}

/// Admin routes need the admin token (compared in constant time, as hashes).
async fn admin_auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let given = bearer(req.headers()).map(sha256_hex).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(s.admin_token_hash.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::unauthorized("admin token").into_response()
    }
}

/// Public routes share a per-IP budget.
async fn ip_limit(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match s.limits.ip(addr.ip()) {
        Ok(()) => next.run(req).await,
        Err((scope, wait)) => {
            s.telemetry.limited(scope.as_str());
            ApiError::too_many(
                "rate_limited",
                "too many requests from this address".into(),
                wait,
            )
            .into_response()
        }
    }
}

/// Count every answer by route template (never the raw path: it holds ids) and status.
async fn track(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let response = next.run(req).await;
    let (status, took) = (response.status().as_u16(), started.elapsed());
    tracing::debug!(%method, route, status, took_us = took.as_micros() as u64, "request");
    s.telemetry.request(&route, status, took);
    response
}

/// The router; `max_body` bytes per request body.
pub fn router(state: AppState, max_body: usize) -> Router {
    let state: Shared = Arc::new(state);
    let admin = Router::new()
        .route("/v1/admin/users", post(create_user))
        .route("/v1/admin/users/{user}", delete(delete_user))
        .route("/v1/admin/users/{user}/factors", post(enroll))
        .route(
            "/v1/admin/users/{user}/factors/{factor}",
            delete(revoke_factor),
        )
        .route(
            "/v1/admin/users/{user}/factors/{factor}/resync",
            post(resync_hotp),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), admin_auth));
    let public = Router::new()
        .route("/v1/login", post(login))
        .route("/v1/login/{challenge}/push", post(start_push))
        .route("/v1/login/{challenge}/verify", post(verify))
        .route("/v1/device/pushes", get(pending_pushes))
        .route("/v1/device/pushes/{push}", post(answer_push))
        .route("/v1/session", get(introspect).delete(revoke_session))
        .route_layer(middleware::from_fn_with_state(state.clone(), ip_limit));
    let telemetry = state.telemetry.clone();
    Router::new()
        .merge(admin)
        .merge(public)
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route(
            "/metrics",
            get(move || {
                let t = telemetry.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        t.render(),
                    )
                }
            }),
        )
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route (see /v1/…)",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
