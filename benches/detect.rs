//! Rule-engine throughput, single thread (events/s per core): simulated canonical events with
//! attacks in Arrow batches of 8192 rows, sorted by time, through `Detector::process_sorted`
//! with the full built-in rule set (detections, correlations, per-user history). Also reports
//! the state left at the end (correlation entries, users in history), which is bounded by the
//! active keys, not by the number of events.
//! Run with `cargo bench --profile release --bench detect [-- EVENTS RUNS]`; `scripts/bench-detect`
//! calls it.

use std::time::Instant;

// The allocator of the `mfascope` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mfascope::detect::{DetectConfig, Detector, RuleSet};

mod common;

fn main() {
    let (events, runs) = common::args(2_000_000, 5);
    let batches: Vec<_> = common::batches(events, false)
        .iter()
        .map(mfascope::detect::order::sort_by_time)
        .collect();
    let rules = RuleSet::builtin();
    let mut rates = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let mut d = Detector::new(&rules, DetectConfig::default(), false).expect("built-in rules");
        let t = Instant::now();
        for b in &batches {
            d.process_sorted(b);
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(d.counters().events as usize, events);
        rates.push(events as f64 / secs);
        last = Some(d.counters());
    }
    let median = common::median(rates);
    let c = last.expect("at least one run");
    println!(
        "{{\"bench\": \"detect\", \"events\": {events}, \"runs\": {runs}, \"rules\": {}, \"median_events_per_s\": {median:.0}, \"threads\": 1, \"gated_in\": {}, \"findings\": {}, \"correlation_state\": {}, \"history_users\": {}}}",
        c.rules, c.gated_in, c.findings, c.correlation_state, c.history.users
    );
}
