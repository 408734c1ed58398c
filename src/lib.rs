//! mfascope: security telemetry and SLO analysis for two-factor authentication events.
//!
//! Data flows one way: [`source`] → [`normalize`] → batches ([`event`]) → sinks ([`sink`]) →
//! views ([`report`], CLI). [`pipeline`] wires them; [`generate`] makes realistic traffic.

pub mod cli;
pub mod event;
pub mod generate;
pub mod metrics;
pub mod normalize;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod sli;
pub mod slo;
pub mod source;
pub mod time;
