//! Live aggregator throughput, single thread (events/s per core): simulated canonical events
//! in Arrow batches of 8192 rows, fed to `Aggregator::observe` with the shipped SLOs' thresholds.
//! Run with `cargo bench --profile release --bench live [-- EVENTS RUNS]` (the release profile
//! reuses the test build); `scripts/bench-sli` calls it.

use std::time::Instant;

use mfascope::event::EventBatchBuilder;
use mfascope::generate::{GenerateOptions, simulate};
use mfascope::sli::live::Aggregator;
use mfascope::slo::{live_config, resolve_slos};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(2_000_000);
    let runs = args.get(1).copied().unwrap_or(5);
    let sim = simulate(&GenerateOptions {
        events,
        days: 7.0,
        attacks: true,
        probes: true,
        ..GenerateOptions::default()
    });
    let mut batches = Vec::new();
    for chunk in sim.events.chunks(8192) {
        let mut b = EventBatchBuilder::with_capacity(chunk.len());
        for e in chunk {
            b.append(e);
        }
        batches.push(b.finish());
    }
    drop(sim);
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
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{{\"bench\": \"live_aggregator\", \"events\": {events}, \"runs\": {runs}, \"median_events_per_s\": {median:.0}, \"threads\": 1}}"
    );
}
