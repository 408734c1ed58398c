//! Integration tests: ingest from files, stdin, object storage and Kafka; crash safety, secrets.
//! One test binary per area, so DataFusion and rdkafka are linked once per area.

#[path = "../common/mod.rs"]
mod common;

mod apis;
mod bucket;
mod crash;
mod follow;
mod ingest;
mod kafka;
mod keycloak;
mod object_store;
mod secrets;
mod store;
