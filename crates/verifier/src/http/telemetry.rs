//! The verifier's own Prometheus metrics: requests by route template and status, request
//! durations, events by action/factor/outcome, rate-limit refusals. Labels never carry a user,
//! a path parameter or anything secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use mfascope_core::event::{Action, Event, Factor, Outcome};
use mfascope_core::sync::lock;

type Labels = Vec<(&'static str, String)>;

fn duration_histogram() -> Histogram {
    // 100 µs … ~1.6 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// Metric families, registered once.
pub struct Telemetry {
    registry: Mutex<Registry>,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    events: Family<Labels, Counter>,
    /// The events family's counters by their (copyable) label values: no allocation per event.
    event_counters: Mutex<HashMap<(Action, Factor, Outcome), Counter>>,
    limited: Family<Labels, Counter>,
    limiter_keys: Gauge,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut r = Registry::with_prefix("mfascope_verifier");
        let requests = Family::<Labels, Counter>::default();
        r.register(
            "requests",
            "HTTP requests by route template and status",
            requests.clone(),
        );
        let durations = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        r.register_with_unit(
            "request_duration",
            "Time to answer, by route template",
            Unit::Seconds,
            durations.clone(),
        );
        let events = Family::<Labels, Counter>::default();
        r.register(
            "events",
            "Canonical events emitted, by action, factor and outcome",
            events.clone(),
        );
        let limited = Family::<Labels, Counter>::default();
        r.register(
            "rate_limited",
            "Requests refused by a rate limit (429), by scope (ip, user)",
            limited.clone(),
        );
        let limiter_keys = Gauge::default();
        r.register(
            "limiter_keys",
            "IPs and users the rate limiters currently track",
            limiter_keys.clone(),
        );
        Telemetry {
            registry: Mutex::new(r),
            requests,
            durations,
            events,
            event_counters: Mutex::default(),
            limited,
            limiter_keys,
        }
    }
}

impl Telemetry {
    /// Count one answered request.
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.durations
            .get_or_create(&vec![("route", route.to_string())])
            .observe(took.as_secs_f64());
    }

    /// Count one emitted event.
    pub fn event(&self, e: &Event<'_>) {
        let key = (e.action, e.factor, e.outcome);
        lock(&self.event_counters)
            .entry(key)
            .or_insert_with(|| {
                self.events
                    .get_or_create(&vec![
                        ("action", e.action.as_str().to_string()),
                        ("factor", e.factor.as_str().to_string()),
                        ("outcome", e.outcome.as_str().to_string()),
                    ])
                    .clone()
            })
            .inc();
    }

    /// Count one refusal by a rate limit.
    pub fn limited(&self, scope: &'static str) {
        self.limited
            .get_or_create(&vec![("scope", scope.to_string())])
            .inc();
    }

    /// Publish how many keys the limiters track.
    pub fn limiter_keys(&self, n: usize) {
        self.limiter_keys.set(n as i64);
    }

    /// OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &lock(&self.registry)).expect("writing to a String cannot fail");
        out
    }
}
