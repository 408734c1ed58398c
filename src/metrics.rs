//! Prometheus exposition (`--metrics-listen ADDR`): pipeline counters, the live aggregator's
//! cumulative counters, every SLO's SLI, objective, remaining budget, burn rates and firing
//! alerts, and the rule engine's state and evictions, rendered from a snapshot at scrape time
//! (OpenMetrics text via `prometheus-client`).
//! Names follow Prometheus conventions: `mfascope_` prefix, base units, `_total` counters,
//! ratios 0–1, no per-user labels.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use strum::IntoEnumIterator;

use crate::detect::DetectCounters;
use crate::detect::suppress::SuppressedCount;
pub use crate::pipeline::PipelineProgress;
use crate::pipeline::kafka::KafkaSummary;
use crate::sli::live::{Aggregator, Counter, HOUR_MS};
use crate::slo::SloReport;
use crate::time::TimeRange;

type Labels = Vec<(String, String)>;

/// Help text as the exposition wants it: the library ends it with a period itself.
fn help(text: &str) -> &str {
    text.strip_suffix('.').unwrap_or(text)
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: PromCounter = PromCounter::default();
    c.inc_by(value);
    registry.register(name, self::help(help), c);
}

fn gauge_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
) -> Family<Labels, Gauge<f64, AtomicU64>> {
    let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    match unit {
        Some(u) => registry.register_with_unit(name, self::help(help), u, family.clone()),
        None => registry.register(name, self::help(help), family.clone()),
    }
    family
}

fn counter_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, PromCounter> {
    let family = Family::<Labels, PromCounter>::default();
    registry.register(name, self::help(help), family.clone());
    family
}

/// A counter family over rows of `T`: name, help, and the row's value.
type CounterOf<'a, T> = (&'a str, &'a str, fn(&T) -> u64);

/// Counter families over `rows`: one series per row, labelled by `label`.
fn counter_families<T>(
    r: &mut Registry,
    rows: &[T],
    label: impl Fn(&T) -> Labels,
    families: &[CounterOf<T>],
) {
    for &(name, help, pick) in families {
        let family = counter_family(r, name, help);
        for row in rows {
            family.get_or_create(&label(row)).inc_by(pick(row));
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Kafka consumer metrics: per partition (labels `topic`, `partition`) messages consumed, the
/// offset committed to Parquet and the lag; commits and rebalances in total.
fn kafka_metrics(r: &mut Registry, k: &KafkaSummary) {
    let messages = counter_family(
        r,
        "mfascope_kafka_messages",
        "Kafka messages consumed, per partition.",
    );
    let committed = gauge_family(
        r,
        "mfascope_kafka_committed_offset",
        "Next offset of the partition committed to Parquet (then to Kafka).",
        None,
    );
    let lag = gauge_family(
        r,
        "mfascope_kafka_consumer_lag",
        "Messages between the offset committed to Parquet and the partition's end (last stable offset).",
        None,
    );
    let assigned = gauge_family(
        r,
        "mfascope_kafka_assigned",
        "1 while this member holds the partition, 0 after it was revoked.",
        None,
    );
    let lost = counter_family(
        r,
        "mfascope_kafka_lost_messages",
        "Messages the broker deleted (retention, DeleteRecords) before they were ingested.",
    );
    for (key, p) in &k.partitions {
        let (topic, partition) = key.rsplit_once('/').unwrap_or((key, ""));
        let l = labels(&[("topic", topic), ("partition", partition)]);
        messages.get_or_create(&l).inc_by(p.messages);
        if let Some(o) = p.committed_offset {
            committed.get_or_create(&l).set(o as f64);
        }
        if let Some(n) = p.lag {
            lag.get_or_create(&l).set(n as f64);
        }
        lost.get_or_create(&l).inc_by(p.lost);
        assigned
            .get_or_create(&l)
            .set(f64::from(u8::from(p.assigned)));
    }
    for (name, help, value) in [
        (
            "mfascope_kafka_offset_commits",
            "Offset commits sent to Kafka after the matching Parquet commits.",
            k.offset_commits,
        ),
        (
            "mfascope_kafka_assignments",
            "Partition assignments received (rebalances).",
            k.assignments,
        ),
        (
            "mfascope_kafka_revocations",
            "Partition revocations received (rebalances).",
            k.revocations,
        ),
        (
            "mfascope_kafka_redelivered",
            "Messages delivered again below the committed position and skipped.",
            k.redelivered,
        ),
        (
            "mfascope_kafka_consumer_errors",
            "Consumer errors seen (librdkafka retries by itself).",
            k.consumer_errors,
        ),
    ] {
        counter(r, name, help, value);
    }
}

/// The streaming rule engine: events, findings, and its bounded state (per-user history,
/// correlation groups) with what the bounds dropped.
/// Each receiver's delivery, labelled by receiver id (never its URL).
fn delivery_metrics(r: &mut Registry, delivery: &[mfascope_notify::ReceiverStatus]) {
    if delivery.is_empty() {
        return;
    }
    counter_families(
        r,
        delivery,
        |s| labels(&[("receiver", &s.receiver.id)]),
        &[
            (
                "mfascope_notify_enqueued",
                "Notifications queued for a receiver.",
                |s| s.enqueued,
            ),
            (
                "mfascope_notify_delivered",
                "Notifications a receiver acknowledged (2xx).",
                |s| s.delivered,
            ),
            (
                "mfascope_notify_failed_attempts",
                "Delivery attempts that failed and are retried.",
                |s| s.failed_attempts,
            ),
            (
                "mfascope_notify_parked",
                "Notifications parked (refused by the receiver, outbox overflow, age bound); see `mfascope notify status`.",
                |s| s.parked_now,
            ),
            (
                "mfascope_notify_overflow",
                "Notifications parked because the outbox was full.",
                |s| s.overflowed,
            ),
            (
                "mfascope_notify_expired",
                "Notifications parked because they outlived the outbox's age bound.",
                |s| s.expired,
            ),
        ],
    );
    let queued = gauge_family(
        r,
        "mfascope_notify_queued",
        "Notifications waiting in a receiver's outbox.",
        None,
    );
    let parked = gauge_family(
        r,
        "mfascope_notify_parked_now",
        "Notifications parked in a receiver's outbox.",
        None,
    );
    let oldest = gauge_family(
        r,
        "mfascope_notify_oldest_age",
        "Age of the oldest notification waiting in a receiver's outbox.",
        Some(Unit::Seconds),
    );
    for s in delivery {
        let l = labels(&[("receiver", &s.receiver.id)]);
        queued.get_or_create(&l).set(s.queued as f64);
        parked.get_or_create(&l).set(s.parked as f64);
        oldest
            .get_or_create(&l)
            .set(s.oldest_ms.unwrap_or(0) as f64 / 1000.0);
    }
}

/// Vendor log-API sources (label `source`, the name in the sources file): polls, records,
/// failures and how far behind now each has read.
fn source_metrics(r: &mut Registry, sources: &[mfascope_pull::SourceReport]) {
    if sources.is_empty() {
        return;
    }
    counter_families(
        r,
        sources,
        |s| labels(&[("source", &s.name), ("kind", &s.kind)]),
        &[
            ("mfascope_source_polls", "Polls of a vendor log API.", |s| {
                s.polls
            }),
            (
                "mfascope_source_requests",
                "HTTP requests to a vendor log API (token requests included).",
                |s| s.requests,
            ),
            (
                "mfascope_source_records",
                "Records a vendor log API delivered to the engine.",
                |s| s.records,
            ),
            (
                "mfascope_source_errors",
                "Polls of a vendor log API that failed after their retries.",
                |s| s.errors,
            ),
            (
                "mfascope_source_throttled",
                "429 answers of a vendor log API waited out.",
                |s| s.throttled,
            ),
            (
                "mfascope_source_retries",
                "Requests to a vendor log API retried after a 5xx answer or a network failure.",
                |s| s.retries,
            ),
        ],
    );
    let lag = gauge_family(
        r,
        "mfascope_source_lag",
        "Time between now and the point a vendor log API source has read everything up to.",
        Some(Unit::Seconds),
    );
    for s in sources {
        if let Some(l) = s.lag_seconds {
            lag.get_or_create(&labels(&[("source", &s.name), ("kind", &s.kind)]))
                .set(l);
        }
    }
}

/// Events each suppression withheld from the rules (label `suppression`, the name in the
/// suppressions file: a handful, chosen by people, never per user).
fn suppressed_metrics(r: &mut Registry, suppressed: &[SuppressedCount]) {
    if suppressed.is_empty() {
        return;
    }
    let family = counter_family(
        r,
        "mfascope_detect_suppressed_events",
        "Events a suppression withheld from the rules it names (all rules when it names none).",
    );
    for s in suppressed {
        family
            .get_or_create(&labels(&[("suppression", &s.name)]))
            .inc_by(s.events);
    }
}

fn detect_metrics(r: &mut Registry, d: &DetectCounters) {
    for (name, help, value) in [
        (
            "mfascope_detect_events",
            "Events evaluated by the streaming rule engine.",
            d.events,
        ),
        ("mfascope_detect_findings", "Findings produced.", d.findings),
        (
            "mfascope_detect_history_evicted",
            "Users dropped from the per-user history at its bound (least recently seen first).",
            d.history.evicted_capacity,
        ),
        (
            "mfascope_detect_history_expired",
            "Users dropped from the per-user history after its TTL.",
            d.history.expired,
        ),
        (
            "mfascope_detect_correlation_evicted",
            "Correlation groups dropped at the state bound (stalest first).",
            d.correlation_evicted,
        ),
        (
            "mfascope_detect_state_saves",
            "Times the rule engine's state was saved with a commit.",
            d.state_saves,
        ),
    ] {
        counter(r, name, help, value);
    }
    let saved = gauge_family(
        r,
        "mfascope_detect_state_saved",
        "The rule engine's saved state (what: bytes of the last save; save_seconds, its \
         duration; restore_seconds, the time to restore or rebuild it at start).",
        None,
    );
    for (what, v) in [
        ("bytes", d.state_bytes as f64),
        ("save_seconds", d.state_save_ms as f64 / 1000.0),
        ("restore_seconds", d.state_restore_ms as f64 / 1000.0),
    ] {
        saved.get_or_create(&labels(&[("what", what)])).set(v);
    }
    let state = gauge_family(
        r,
        "mfascope_detect_state_entries",
        "Rule engine state entries now (kind: history_users, correlation, correlation_refs).",
        None,
    );
    for (kind, n) in [
        ("history_users", d.history.users),
        ("correlation", d.correlation_state),
        ("correlation_refs", d.correlation_refs),
    ] {
        state
            .get_or_create(&labels(&[("kind", kind)]))
            .set(n as f64);
    }
}

/// Render the exposition for the current state (`detect`: the streaming rule engine's
/// counters, when one runs).
pub fn render(
    progress: &PipelineProgress,
    agg: &Aggregator,
    report: &SloReport,
    detect: Option<(&DetectCounters, &[SuppressedCount])>,
    tally: &SloTally,
    delivery: &[mfascope_notify::ReceiverStatus],
    sources: &[mfascope_pull::SourceReport],
) -> String {
    let mut r = Registry::default();
    tally.register(&mut r);
    delivery_metrics(&mut r, delivery);
    source_metrics(&mut r, sources);
    if let Some((d, suppressed)) = detect {
        detect_metrics(&mut r, d);
        suppressed_metrics(&mut r, suppressed);
    }
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        &mut r,
        "mfascope_ingest_records",
        "Input records read.",
        load(&progress.records),
    );
    counter(
        &mut r,
        "mfascope_ingest_events",
        "Canonical events produced.",
        load(&progress.events),
    );
    counter(
        &mut r,
        "mfascope_ingest_deadletters",
        "Records written to the dead-letter output.",
        load(&progress.deadletter),
    );
    counter(
        &mut r,
        "mfascope_ingest_ignored",
        "Non-authentication records ignored on purpose.",
        load(&progress.ignored),
    );
    let bytes: PromCounter = PromCounter::default();
    bytes.inc_by(load(&progress.bytes_in));
    r.register_with_unit(
        "mfascope_ingest_input",
        "Input bytes consumed",
        Unit::Bytes,
        bytes,
    );

    let kafka = progress
        .kafka
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(k) = kafka {
        kafka_metrics(&mut r, &k);
    }

    let live = agg.counters();
    counter(
        &mut r,
        "mfascope_live_events",
        "Events aggregated by the live SLI state.",
        live.events,
    );
    counter(
        &mut r,
        "mfascope_live_too_old_events",
        "Events older than the live retention when they arrived.",
        live.too_old,
    );
    counter(
        &mut r,
        "mfascope_live_revocations_evicted",
        "Open revocations dropped because the table was full.",
        live.revocations_evicted,
    );
    let events_by = counter_family(
        &mut r,
        "mfascope_sli_events",
        "Events counted per SLI counter since start.",
    );
    for c in Counter::iter() {
        let name: &'static str = c.into();
        events_by
            .get_or_create(&labels(&[("counter", name)]))
            .inc_by(agg.cumulative(c));
    }
    let watermark = gauge_family(
        &mut r,
        "mfascope_live_watermark",
        "Latest event time seen (Unix time).",
        Some(Unit::Seconds),
    );
    if let Some(w) = live.watermark_ms {
        watermark.get_or_create(&vec![]).set(w as f64 / 1000.0);
    }

    let latency = gauge_family(
        &mut r,
        "mfascope_mfa_latency",
        "Challenge-to-verification latency over the last full hour of event time.",
        Some(Unit::Seconds),
    );
    if let Some(w) = live.watermark_ms {
        let to = w.div_euclid(HOUR_MS) * HOUR_MS;
        let last_hour = TimeRange::new(to - HOUR_MS, to);
        for factor in agg.latency_factors(last_hour) {
            if let Some(s) = agg.latency(last_hour, Some(factor)) {
                for (q, v) in [("0.5", s.p50_ms), ("0.95", s.p95_ms), ("0.99", s.p99_ms)] {
                    latency
                        .get_or_create(&labels(&[("factor", factor.as_str()), ("quantile", q)]))
                        .set(v as f64 / 1000.0);
                }
            }
        }
    }

    let sli = gauge_family(
        &mut r,
        "mfascope_slo_sli",
        "SLI over the SLO window (0-1).",
        Some(Unit::Other("ratio".into())),
    );
    let objective = gauge_family(
        &mut r,
        "mfascope_slo_objective",
        "SLO target (0-1).",
        Some(Unit::Other("ratio".into())),
    );
    let budget = gauge_family(
        &mut r,
        "mfascope_slo_error_budget_remaining",
        "Share of the error budget left (negative when overspent).",
        Some(Unit::Other("ratio".into())),
    );
    let burn = gauge_family(
        &mut r,
        "mfascope_slo_burn_rate",
        "Error rate over the window divided by the error budget rate.",
        None,
    );
    let firing = gauge_family(
        &mut r,
        "mfascope_slo_alert_firing",
        "1 while a burn-rate or budget alert fires.",
        None,
    );
    for s in &report.slos {
        let l = labels(&[("slo", &s.name)]);
        objective.get_or_create(&l).set(s.target);
        if let Some(v) = s.sli {
            sli.get_or_create(&l).set(v);
        }
        if let Some(v) = s.budget_remaining {
            budget.get_or_create(&l).set(v);
        }
        for b in &s.burn_rates {
            if let Some(v) = b.rate {
                burn.get_or_create(&labels(&[("slo", &s.name), ("window", b.window)]))
                    .set(v);
            }
        }
    }
    for e in report.episodes.iter().filter(|e| e.resolved_ms.is_none()) {
        firing
            .get_or_create(&labels(&[
                ("slo", &e.slo),
                ("alert", &e.alert),
                ("severity", &e.severity),
            ]))
            .set(1.0);
    }
    let mut out = String::new();
    encode(&mut out, &r).expect("writing to a String cannot fail");
    out
}

/// Per-SLO good and valid events (time slices for Timeslices SLOs, measurements for threshold
/// SLOs) of the event-time minutes closed so far, judged as mfascope's evaluator judges them:
/// the counters the generated Prometheus rules (`slo rules --format prometheus`) compute their
/// error ratios from. A minute is added once the watermark is a full minute past it; a
/// restarted run starts again from the history it resumed (a counter reset to Prometheus).
#[derive(Default)]
pub struct SloTally {
    /// Minutes before this (epoch ms) are counted.
    through_ms: Option<i64>,
    counts: std::collections::BTreeMap<String, (u64, u64)>,
}

impl SloTally {
    /// Count the minutes of `slos` that closed since the last call.
    pub fn advance(&mut self, slos: &[crate::slo::Slo], agg: &Aggregator) {
        const MINUTE_MS: i64 = 60_000;
        let (Some(watermark), Some((first, _))) = (agg.counters().watermark_ms, agg.span()) else {
            return;
        };
        // The minute the watermark is in is still open: the closed minutes are those the
        // delivery evaluates, so Prometheus rules over these counters see what mfascope sees.
        let to = watermark.div_euclid(MINUTE_MS) * MINUTE_MS;
        let from = self.through_ms.unwrap_or(first).max(first);
        if to <= from {
            return;
        }
        let range = TimeRange::new(from, to);
        for slo in slos {
            let series = crate::slo::eval::Series::build(slo, agg, range);
            let (good, valid) = series.sums(to, to - from);
            let c = self.counts.entry(slo.name.clone()).or_default();
            c.0 += good;
            c.1 += valid;
        }
        self.through_ms = Some(to);
    }

    fn register(&self, r: &mut Registry) {
        for (name, help, pick) in [
            (
                "mfascope_slo_good",
                "Good events (or time slices) per SLO, of the minutes closed so far.",
                (|c: &(u64, u64)| c.0) as fn(&(u64, u64)) -> u64,
            ),
            (
                "mfascope_slo_valid",
                "Valid events (or time slices with data) per SLO, of the minutes closed so far.",
                |c: &(u64, u64)| c.1,
            ),
        ] {
            let family = counter_family(r, name, help);
            for (slo, c) in &self.counts {
                family
                    .get_or_create(&labels(&[("slo", slo)]))
                    .inc_by(pick(c));
            }
        }
    }
}

/// Serve `GET /metrics` (and `/healthz`) on `addr` from a background thread; `scrape` renders
/// the body. Returns the bound address (useful with port 0).
pub fn serve(
    addr: SocketAddr,
    scrape: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "metrics endpoint cannot start");
                    return;
                }
            };
            rt.block_on(async move {
                let app = axum::Router::new()
                    .route(
                        "/metrics",
                        axum::routing::get(move || {
                            let scrape = scrape.clone();
                            async move {
                                (
                                    [(
                                        axum::http::header::CONTENT_TYPE,
                                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                    )],
                                    scrape(),
                                )
                            }
                        }),
                    )
                    .route("/healthz", axum::routing::get(|| async { "ok\n" }));
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        if let Err(e) = axum::serve(l, app).await {
                            tracing::error!(error = %e, "metrics endpoint stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "metrics endpoint cannot listen"),
                }
            });
        })?;
    Ok(bound)
}
