//! mfascope: security telemetry and SLO analysis for two-factor authentication events.
//!
//! Data flows one way: [`source`] → [`normalize`] → batches ([`event`]) → sinks ([`sink`]) →
//! views ([`report`], CLI). [`pipeline`] wires them; [`generate`] makes realistic traffic.
//! Batch consumers beside the Parquet sink: live SLIs ([`sli`], [`slo`]) and the rule engine
//! ([`detect`]). Telemetry sources of our own: the reference 2FA server ([`verifier`]) and
//! synthetic login checks against any 2FA server ([`probe`]).

pub mod cli;
pub mod detect;
pub mod event;
pub mod generate;
pub mod metrics;
pub mod normalize;
pub mod pipeline;
pub mod probe;
pub mod report;
pub mod sink;
pub mod sli;
pub mod slo;
pub mod source;
pub mod sync;
pub mod time;
pub mod tui;
pub mod verifier;
