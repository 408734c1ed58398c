//! Integration tests: SLIs (SQL and live), SLOs, detection and the metrics endpoint.
//! One test binary per area, so DataFusion and rdkafka are linked once per area.

#[path = "../common/mod.rs"]
mod common;

mod attack;
mod detect;
mod live;
mod maintenance;
mod metrics;
mod notify;
mod posture;
mod report;
mod resume;
mod rule_state;
mod sli;
mod slo;
mod tickets;
