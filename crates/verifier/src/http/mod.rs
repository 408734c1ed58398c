//! `mfascope verifier serve`: the engine behind a JSON API ([`api`]), with per-IP and per-user
//! rate limits ([`limits`]), its own Prometheus metrics ([`telemetry`]) and its canonical events
//! written to NDJSON and/or Kafka off the request path ([`events`]); plain HTTP or TLS
//! ([`tls`]).

pub mod api;
pub mod events;
pub mod limits;
pub mod telemetry;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::serve::ListenerExt;
use zeroize::Zeroizing;

use super::engine::{Config, Emit, Engine};
use super::seal::{SealError, Sealer};
use super::store::{Store, StoreError};
use super::token::{secret_file, sha256_hex, token};
use events::{EventWriter, EventsError, Outputs};
use limits::{Limits, Rate};
use telemetry::Telemetry;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks one; the bound address is printed).
    pub listen: SocketAddr,
    /// State directory (users, factors, journal).
    pub state: PathBuf,
    /// Key sealing OTP secrets (default `STATE/secret.key`, created 0600).
    pub key_file: Option<PathBuf>,
    /// Admin bearer token file (default `STATE/admin.token`, created 0600).
    pub admin_token_file: Option<PathBuf>,
    /// Where events go.
    pub outputs: Outputs,
    /// Engine settings.
    pub config: Config,
    /// Per-IP rate on public routes.
    pub ip_rate: Rate,
    /// Per-user rate on login steps.
    pub user_rate: Rate,
    /// Largest request body in bytes.
    pub max_body: usize,
    /// Async worker threads (0 = one per core).
    pub workers: usize,
    /// Serve HTTPS with this certificate and key (plain HTTP without).
    pub tls: Option<tls::TlsFiles>,
}

/// Why the server cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The state directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The event outputs.
    #[error(transparent)]
    Events(#[from] EventsError),
    /// The TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A file or the listener.
    #[error("{what}: {source}")]
    Io {
        /// What failed (names the path or address).
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ServeError {
    move |source| ServeError::Io { what, source }
}

/// Serve until SIGINT/SIGTERM; `on_ready` gets the base URL (`http://` or `https://` and the
/// bound address). Returns the number of events written.
pub fn serve(o: ServeOptions, on_ready: impl FnOnce(String)) -> Result<u64, ServeError> {
    std::fs::create_dir_all(&o.state)
        .map_err(io(format!("state directory {}", o.state.display())))?;
    let store = Store::open(&o.state)?;
    tracing::info!(state = %o.state.display(), users = store.state.users.len(), "verifier state loaded");
    let sealer = Sealer::from_key_file(&o.key_file.unwrap_or_else(|| o.state.join("secret.key")))?;
    let admin_path = o
        .admin_token_file
        .unwrap_or_else(|| o.state.join("admin.token"));
    let admin = secret_file(&admin_path, || Zeroizing::new(token(32)))
        .map_err(io(format!("admin token file {}", admin_path.display())))?;
    let tls = o.tls.as_ref().map(tls::acceptor).transpose()?;
    let telemetry = Arc::new(Telemetry::default());
    let writer = EventWriter::start(o.outputs)?;
    let emit: Emit = {
        let telemetry = telemetry.clone();
        let sender = writer.as_ref().map(|(_, s)| s.clone());
        Box::new(move |e| {
            telemetry.event(&e);
            if let Some(s) = &sender {
                s.send(e);
            }
        })
    };
    let engine = Arc::new(Engine::new(o.config, store, sealer, emit));
    let limits = Arc::new(Limits::new(o.ip_rate, o.user_rate));
    let state = api::AppState {
        engine,
        limits: limits.clone(),
        telemetry: telemetry.clone(),
        admin_token_hash: sha256_hex(&admin),
    };
    drop(admin);

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(io("signal handler".into()))?;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if o.workers > 0 {
        rt.worker_threads(o.workers);
    }
    let rt = rt
        .enable_all()
        .build()
        .map_err(io("async runtime".into()))?;
    let listen = o.listen;
    let max_body = o.max_body;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(io(format!("listen on {listen}")))?;
        let bound = listener
            .local_addr()
            .map_err(io(format!("listen on {listen}")))?;
        // Forget limiter keys that are back to a full budget.
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                telemetry.limiter_keys(limits.sweep());
            }
        });
        let app = api::router(state, max_body);
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %bound, scheme, "verifier listening");
        on_ready(format!("{scheme}://{bound}"));
        let shutdown = {
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = match tls {
            // `tap_io` (a no-op here) gives the TLS listener axum's peer-address extraction.
            Some(acceptor) => {
                let listener = tls::TlsListener::new(listener, acceptor)
                    .map_err(io(format!("listen on {listen}")))?
                    .tap_io(|_| {});
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        served.map_err(io(format!("serving on {bound}")))
    })?;
    drop(rt);
    match writer {
        Some((w, sender)) => {
            drop(sender);
            Ok(w.finish()?)
        }
        None => Ok(0),
    }
}
