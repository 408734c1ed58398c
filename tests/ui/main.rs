//! Integration tests: the terminal dashboard (snapshots and a real terminal).
//! One test binary per area, so DataFusion and rdkafka are linked once per area.

#[path = "../common/mod.rs"]
mod common;

mod dashboard;
mod dashboard_terminal;
