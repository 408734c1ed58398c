//! The live path (incremental aggregator fed by the ingest pipeline's batches) and the SQL path
//! (`queries/*.sql` over the Parquet the same ingest wrote) agree: exact counts per hour for
//! M1, M6, M8, M9 and M10, and latency percentiles within the histogram's precision.

use crate::common;

use std::sync::{Arc, Mutex};

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType, UInt32Type};
use common::generate;
use mfascope::pipeline::{IngestOptions, ingest};
use mfascope::sli::live::{Aggregator, Counter, HOUR_MS, LiveConfig, Measure, Thresholds};
use mfascope::sli::slice::significantly_below;
use mfascope::sli::{Bucket, Engine, Params, resolve_queries};
use mfascope::time::TimeRange;

fn i64_at(batch: &arrow::array::RecordBatch, name: &str, row: usize) -> i64 {
    let c = batch.column_by_name(name).unwrap();
    c.as_primitive_opt::<Int64Type>()
        .map(|a| a.value(row))
        .or_else(|| {
            c.as_primitive_opt::<UInt32Type>()
                .map(|a| a.value(row) as i64)
        })
        .unwrap_or_else(|| c.as_primitive::<Float64Type>().value(row) as i64)
}

#[test]
fn live_aggregator_and_sql_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let traffic = generate(
        tmp.path(),
        "traffic",
        &[
            "--log-format",
            "canonical",
            "--events",
            "80000",
            "--seed",
            "21",
            "--attacks",
            "--probes",
            "--incident",
            "push-outage@2024-05-01T15:00:00Z/12m",
        ],
    );
    let revokes = tmp.path().join("zz-revokes.ndjson");
    std::fs::write(&revokes, common::REVOKES).unwrap();
    let mut thresholds = Thresholds::default();
    thresholds.add(Measure::RevokeExposureMs, 300_000);
    let agg = Arc::new(Mutex::new(Aggregator::new(LiveConfig {
        thresholds,
        ..LiveConfig::default()
    })));
    let out = tmp.path().join("out");
    let mut opts = IngestOptions::new(
        vec![traffic.display().to_string(), revokes.display().to_string()],
        out.clone(),
    );
    opts.progress = false;
    opts.observers.0.push(agg.clone());
    let summary = ingest(&opts, Arc::new(false.into())).unwrap();
    let agg = agg.lock().unwrap();
    assert_eq!(agg.counters().events, summary.events);

    let params = Params::new(None, None, Bucket::Hour, vec![]).unwrap();
    let queries = resolve_queries(Some(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/queries"
    ))))
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = rt
        .block_on(Engine::open(&out.as_path().into(), &params))
        .unwrap();
    let run = |name: &str| {
        let q = queries.iter().find(|q| q.name == name).unwrap();
        rt.block_on(engine.run(name, &params.render(q))).unwrap()
    };
    let hour_of = |b: &arrow::array::RecordBatch, row: usize| {
        let ms = arrow::compute::cast(
            b.column_by_name("bucket").unwrap(),
            &arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
        )
        .unwrap();
        ms.as_primitive::<TimestampMillisecondType>().value(row)
    };
    let mut checked = 0;
    // Counter-based SLIs: (query, [(sql column, live counter)]).
    let pairs: &[(&str, &[(&str, Counter)])] = &[
        (
            "mfa_success_rate",
            &[
                ("successes", Counter::MfaSuccesses),
                ("attempts", Counter::MfaAttempts),
            ],
        ),
        (
            "rate_limit_rejections",
            &[
                ("rejected", Counter::RateLimited),
                ("attempts", Counter::AuthAttempts),
            ],
        ),
        ("blocked_attempts", &[("blocked", Counter::Blocked)]),
        ("mfa_latency", &[("with_latency", Counter::LatencyMeasured)]),
        ("time_to_revoke", &[("revocations", Counter::Revocations)]),
    ];
    for (query, columns) in pairs {
        let batches = run(query);
        assert!(
            batches
                .iter()
                .map(arrow::array::RecordBatch::num_rows)
                .sum::<usize>()
                > 0,
            "{query}"
        );
        for b in &batches {
            for row in 0..b.num_rows() {
                let hour = hour_of(b, row);
                let live = agg.totals(TimeRange::new(hour, hour + HOUR_MS));
                for (column, counter) in *columns {
                    assert_eq!(
                        i64_at(b, column, row) as u64,
                        live.get(*counter),
                        "{query}.{column} at {hour}"
                    );
                    checked += 1;
                }
            }
        }
    }
    // M9: revocations whose exposure stayed under 5 minutes (r2 was used 9 minutes later).
    let mut within = 0;
    for b in run("time_to_revoke") {
        for row in 0..b.num_rows() {
            let hour = hour_of(&b, row);
            let live = agg.totals(TimeRange::new(hour, hour + HOUR_MS));
            assert_eq!(
                i64_at(&b, "within_5m", row) as u64,
                live.below[0],
                "M9 at {hour}"
            );
            within += live.below[0];
            let revocations = live.get(Counter::Revocations);
            if hour == 1_714_561_200_000 {
                // 11:00 holds r2 only: exposed 9 minutes.
                assert_eq!(i64_at(&b, "exposure_max_ms", row), 540_000);
            }
            assert!(live.below[0] <= revocations);
        }
    }
    assert!(within > 0);
    // M6: good minutes judged by the same rule.
    for b in run("availability") {
        for row in 0..b.num_rows() {
            let hour = hour_of(&b, row);
            let (mut minutes, mut good) = (0, 0);
            for (_, m) in agg.minutes(TimeRange::new(hour, hour + HOUR_MS)) {
                let (s, a, e) = (
                    m.get(Counter::MfaSuccesses),
                    m.get(Counter::MfaAttempts),
                    m.get(Counter::PathErrors),
                );
                if a > 0 || e > 0 {
                    minutes += 1;
                    good += u64::from(e == 0 && !significantly_below(s, a, 0.98));
                }
            }
            assert_eq!(i64_at(&b, "minutes", row) as u64, minutes, "M6 at {hour}");
            assert_eq!(i64_at(&b, "good_minutes", row) as u64, good, "M6 at {hour}");
            checked += 2;
        }
    }
    // M2: exact nearest-rank percentiles from the raw latencies vs the live histograms
    // (2 significant digits: within 1 %).
    let raw = rt
        .block_on(engine.run(
            "raw",
            "SELECT CAST(time AS BIGINT) AS t, latency_ms FROM events \
             WHERE action = 'mfa_verify' AND latency_ms IS NOT NULL",
        ))
        .unwrap();
    let mut by_hour: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
    for b in &raw {
        let h = b.column(0).as_primitive::<Int64Type>();
        let l = b.column(1).as_primitive::<UInt32Type>();
        for i in 0..b.num_rows() {
            let hour = h.value(i).div_euclid(HOUR_MS) * HOUR_MS;
            by_hour.entry(hour).or_default().push(l.value(i));
        }
    }
    for (hour, mut values) in by_hour {
        values.sort_unstable();
        let live = agg
            .latency(TimeRange::new(hour, hour + HOUR_MS), None)
            .unwrap();
        assert_eq!(live.count, values.len() as u64);
        for (q, got) in [(0.5, live.p50_ms), (0.95, live.p95_ms), (0.99, live.p99_ms)] {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let exact = values[rank - 1] as f64;
            assert!(
                (got as f64 - exact).abs() <= exact * 0.01 + 1.0,
                "p{q} at {hour}: live {got}, exact {exact}"
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");
}
