//! Dashboard frame cost against stored history: the same views drawn (SLO evaluation included)
//! from the state of 10,000 events and of EVENTS events over the same seven days. Frames read
//! bounded state only, so the ratio should stay near 1 however large EVENTS is. Run with
//! `cargo bench --profile release --bench dashboard [-- EVENTS RUNS]`.

use std::time::Instant;

use mfascope::sli::live::Aggregator;
use mfascope::slo::{evaluate, live_config, resolve_slos};
use mfascope::tui::app::{App, Filter};
use mfascope::tui::model::{FindingLog, Model};
use mfascope::tui::render::{Snapshot, Status, Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

mod common;

/// Median milliseconds per frame over every shipped view at 160×48, and the events behind it.
fn frame_ms(events: usize, runs: usize) -> (f64, u64) {
    let slos = resolve_slos(None).expect("shipped SLOs");
    let mut model = Model::new(Filter::default(), Aggregator::new(live_config(&slos)));
    for b in common::batches(events, true) {
        model.observe(&b);
    }
    let findings = FindingLog::default();
    let views = mfascope::tui::spec::load(None).expect("shipped views");
    let mut app = App::new(views, None).expect("views");
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("test backend");
    let mut times = Vec::new();
    for _ in 0..runs {
        for view in 0..app.views.len() {
            app.current = view;
            let t = Instant::now();
            let report = evaluate(&slos, &model.agg, None);
            let snap = Snapshot {
                agg: &model.agg,
                report: &report,
                findings: &findings,
                dash: &model.dash,
                status: Status::default(),
                rule_runbooks: &Default::default(),
            };
            terminal
                .draw(|f| draw(f, &mut app, &snap, Theme { color: true }))
                .expect("draw");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    (common::median(times), model.dash.events)
}

fn main() {
    let (events, runs) = common::args(2_000_000, 20);
    let (small_ms, small) = frame_ms(10_000, runs);
    let (large_ms, large) = frame_ms(events, runs);
    println!(
        "{{\"bench\": \"dashboard_frame\", \"size\": \"160x48\", \"runs\": {runs}, \"small_events\": {small}, \"small_median_ms\": {small_ms:.3}, \"large_events\": {large}, \"large_median_ms\": {large_ms:.3}, \"ratio_large_to_small\": {:.2}}}",
        large_ms / small_ms
    );
}
