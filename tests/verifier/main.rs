//! Integration tests: the reference verifier, OTP peers and probes.
//! One test binary per area, so DataFusion and rdkafka are linked once per area.

#[path = "../common/mod.rs"]
mod common;

mod otp;
mod probe;
mod verifier;
