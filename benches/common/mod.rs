//! Set-up shared by the single-thread benches: arguments, simulated canonical traffic in Arrow
//! batches of 8192 rows, and the median of repeated runs.

use mfascope::event::{CanonicalBatch, EventBatchBuilder};
use mfascope::generate::{GenerateOptions, simulate};

/// `EVENTS RUNS` from the command line (after `--`), with defaults.
pub fn args(events: usize, runs: usize) -> (usize, usize) {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    (
        args.first().copied().unwrap_or(events),
        args.get(1).copied().unwrap_or(runs),
    )
}

/// Seven days of simulated traffic with attacks (and probes when asked), in batches.
pub fn batches(events: usize, probes: bool) -> Vec<CanonicalBatch> {
    let sim = simulate(&GenerateOptions {
        events,
        days: 7.0,
        attacks: true,
        probes,
        ..GenerateOptions::default()
    });
    sim.events
        .chunks(8192)
        .map(|chunk| {
            let mut b = EventBatchBuilder::with_capacity(chunk.len());
            for e in chunk {
                b.append(e);
            }
            b.finish_canonical()
        })
        .collect()
}

/// Median of `rates`.
pub fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
