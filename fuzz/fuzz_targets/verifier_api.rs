//! The verifier's HTTP API on arbitrary requests: routing, path parameters, the admin token
//! check, JSON bodies (wrong types, unknown fields, huge numbers), body limits, rate limits
//! and the engine behind them, with state on tmpfs. The input is a small text form of a
//! request: `METHOD PATH` on the first line, `Name: value` header lines, a blank line, then
//! the body; the admin token is `fuzz-admin-token`. Requests hyper would refuse (bad method,
//! URI or header) are skipped. Invariant: no panic, and no request is answered 500.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use mfascope::verifier::engine::{Config, Engine};
use mfascope::verifier::http::api::{AppState, router};
use mfascope::verifier::http::limits::{Limits, Rate};
use mfascope::verifier::http::telemetry::Telemetry;
use mfascope::verifier::password::Cost;
use mfascope::verifier::seal::Sealer;
use mfascope::verifier::store::Store;
use mfascope::verifier::token::sha256_hex;
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("mfascope-fuzz-verifier-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("verifier state directory");
        let store = Store::open(&dir).expect("verifier store");
        let sealer = Sealer::from_key_file(&dir.join("secret.key")).expect("sealing key");
        let config = Config {
            // The cheapest argon2id: the fuzzer is after parsing, not password hashing.
            password_cost: Cost {
                memory_kib: 8,
                iterations: 1,
                lanes: 1,
            },
            lockout: Duration::from_secs(1),
            ..Config::default()
        };
        let engine = Arc::new(Engine::new(config, store, sealer, Box::new(|_| {})));
        let rate = Rate {
            per_second: 1_000.0,
            burst: 100,
        };
        let state = AppState {
            engine,
            limits: Arc::new(Limits::new(rate, rate)),
            telemetry: Arc::new(Telemetry::default()),
            admin_token_hash: sha256_hex("fuzz-admin-token"),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime");
        Harness {
            rt,
            app: router(state, 64 << 10),
        }
    })
}

/// The request the text describes, or `None` when an HTTP parser would refuse it.
fn request(data: &[u8]) -> Option<Request<Body>> {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or((data, &[][..]), |i| (&data[..i], &data[i + 2..]));
    let (head, body) = split;
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, path) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder().method(method).uri(path);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    let mut req = builder.body(Body::from(body.to_vec())).ok()?;
    let peer: SocketAddr = "192.0.2.7:40000".parse().expect("address");
    req.extensions_mut().insert(ConnectInfo(peer));
    Some(req)
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = request(data) else {
        return;
    };
    let h = harness();
    let response =
        h.rt.block_on(h.app.clone().oneshot(req))
            .expect("the router is infallible");
    assert_ne!(
        response.status().as_u16(),
        500,
        "a request was answered 500 Internal Server Error"
    );
});
