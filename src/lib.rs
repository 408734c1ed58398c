//! mfascope: security telemetry and SLO analysis for two-factor authentication events.
//!
//! This package is the top layer: composition of an ingest run ([`run`]), the Prometheus
//! endpoint ([`metrics`]), presentation ([`present`]), the verifier's Kafka output
//! ([`kafka_publish`]) and the CLI ([`cli`]), which only parses flags and prints. Everything else lives in the workspace crates below it, re-exported here
//! under the names the CLI, tests and benches use:
//!
//! - bottom: [`event`], [`time`], [`sync`] and the observer contract (`mfascope-core`);
//! - [`normalize`], [`source`], [`sink`]; the ingest engine [`pipeline`] (`mfascope-engine`);
//! - [`generate`], [`sli`], [`slo`], [`detect`]; the dashboard [`tui`];
//! - the reference verifier [`verifier`] and synthetic checks [`probe`].
//!
//! A crate depends only on crates below it (`docs/ARCHITECTURE.md`), so an upward import is a
//! compile error rather than a review comment.

pub mod attack;
pub mod cli;
pub mod delivery;
pub mod kafka_publish;
pub mod maintenance;
pub mod metrics;
pub mod present;
pub mod resume;
pub mod run;

pub use mfascope_core::{event, observe, sync, time};
pub use mfascope_detect as detect;
pub use mfascope_engine as pipeline;
pub use mfascope_generate as generate;
pub use mfascope_normalize as normalize;
pub use mfascope_probe as probe;
pub use mfascope_sink as sink;
pub use mfascope_sli as sli;
pub use mfascope_slo as slo;
pub use mfascope_source as source;
pub use mfascope_tui as tui;
pub use mfascope_verifier as verifier;

/// A multi-threaded runtime for DataFusion queries (the CLI's and the replays a run resumes
/// its live state with).
pub fn query_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")
}
