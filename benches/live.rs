//! Live aggregator throughput, single thread (events/s per core): simulated canonical events
//! in Arrow batches of 8192 rows, fed to `Aggregator::observe` with the shipped SLOs' thresholds.
//! Run with `cargo bench --profile release --bench live [-- EVENTS RUNS]` (the release profile
//! reuses the test build); `scripts/bench-sli` calls it.

use std::time::Instant;

use mfascope::sli::live::Aggregator;
use mfascope::slo::{live_config, resolve_slos};

mod common;

fn main() {
    let (events, runs) = common::args(2_000_000, 5);
    let batches = common::batches(events, true);
    let slos = resolve_slos(None).expect("shipped SLOs");
    let mut rates = Vec::new();
    for _ in 0..runs {
        let mut agg = Aggregator::new(live_config(&slos));
        let t = Instant::now();
        for b in &batches {
            agg.observe(b);
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(agg.counters().events as usize, events);
        rates.push(events as f64 / secs);
    }
    let median = common::median(rates);
    println!(
        "{{\"bench\": \"live_aggregator\", \"events\": {events}, \"runs\": {runs}, \"median_events_per_s\": {median:.0}, \"threads\": 1}}"
    );
}
