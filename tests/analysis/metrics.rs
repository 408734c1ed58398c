//! `ingest --follow --metrics-listen`: a real HTTP scrape of the Prometheus endpoint while the
//! pipeline runs shows pipeline counters, SLIs, budgets and burn rates that match the run's own
//! summary, with Prometheus naming and no per-user labels.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bin, generate, get, metrics_address, value};

#[test]
fn metrics_endpoint_serves_slis_budgets_and_pipeline_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generate(
        tmp.path(),
        "traffic",
        &[
            "--log-format",
            "canonical",
            "--events",
            "20000",
            "--seed",
            "41",
            "--probes",
            "--incident",
            "push-outage@2024-05-01T12:00:00Z/10m",
        ],
    );
    let out = tmp.path().join("out");
    let mut child = bin()
        .args(["ingest", "--follow", "--no-progress", "--format", "json"])
        .args(["--metrics-listen", "127.0.0.1:0", "--out"])
        .arg(&out)
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _stderr) = metrics_address(child.stderr.take().unwrap());
    assert!(get(&addr, "/healthz").ends_with("ok\n"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let page = get(&addr, "/metrics");
        if value(&page, "mfascope_ingest_records_total") == Some(20000.0)
            && value(&page, "mfascope_live_events_total") == Some(20000.0)
        {
            break page;
        }
        assert!(Instant::now() < deadline, "never caught up:\n{page}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        page.contains("content-type: application/openmetrics-text"),
        "{page}"
    );
    // The per-SLO counters the generated Prometheus rules read: the closed minutes' good and
    // valid events, as the evaluator judges them (good <= valid <= every attempt so far).
    let slo = |name: &str| value(&page, &format!("{name}{{slo=\"mfa-success-rate\"}}"));
    let (good, valid) = (
        slo("mfascope_slo_good_total").expect("good counter"),
        slo("mfascope_slo_valid_total").expect("valid counter"),
    );
    let attempts = value(&page, "mfascope_sli_events_total{counter=\"mfa_attempts\"}").unwrap();
    assert!(
        0.0 < good && good <= valid && valid <= attempts,
        "{good} {valid} {attempts}"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(
        value(&page, "mfascope_ingest_events_total"),
        summary["events"].as_f64()
    );
    let attempts = summary["live"]["slo"]["slos"][0]["total"].as_f64().unwrap();
    assert_eq!(
        value(&page, "mfascope_sli_events_total{counter=\"mfa_attempts\"}"),
        Some(attempts)
    );
    for slo in summary["live"]["slo"]["slos"].as_array().unwrap() {
        let name = slo["name"].as_str().unwrap();
        let objective = value(
            &page,
            &format!("mfascope_slo_objective_ratio{{slo=\"{name}\"}}"),
        );
        assert_eq!(objective, slo["target"].as_f64(), "{name}");
        if let Some(sli) = slo["sli"].as_f64() {
            let got = value(&page, &format!("mfascope_slo_sli_ratio{{slo=\"{name}\"}}")).unwrap();
            assert!((got - sli).abs() < 1e-9, "{name}: {got} vs {sli}");
            let budget = value(
                &page,
                &format!("mfascope_slo_error_budget_remaining_ratio{{slo=\"{name}\"}}"),
            )
            .unwrap();
            assert!((budget - slo["budget_remaining"].as_f64().unwrap()).abs() < 1e-9);
        }
    }
    assert!(page.contains("mfascope_slo_burn_rate{slo=\"mfa-availability\",window=\"1h\"}"));
    assert!(page.contains("mfascope_mfa_latency_seconds{"));
    // The outage ended long before the data did: nothing fires at the end of the data.
    assert!(!page.contains("mfascope_slo_alert_firing{"), "{page}");
    assert!(
        !page.contains("user=") && !page.contains("@acme"),
        "per-user data leaked"
    );
    // The rule engine: its events so far (it may still hold the last ones back for ordering)
    // and its bounded state.
    let detect = &summary["live"]["detect"]["counters"];
    let evaluated = value(&page, "mfascope_detect_events_total").unwrap();
    assert!(evaluated > 0.0 && evaluated <= detect["events"].as_f64().unwrap());
    let users = value(
        &page,
        "mfascope_detect_state_entries{kind=\"history_users\"}",
    )
    .unwrap();
    assert!(users > 0.0 && users <= detect["history"]["users"].as_f64().unwrap() + 0.5);
    assert_eq!(
        value(&page, "mfascope_detect_history_evicted_total"),
        Some(0.0)
    );
    assert_eq!(
        value(&page, "mfascope_detect_correlation_evicted_total"),
        Some(0.0)
    );
    // The saved state's size and restore time are served (a fresh store: nothing to restore).
    assert!(value(&page, "mfascope_detect_state_saved{what=\"bytes\"}").is_some());
    assert!(detect["state_saves"].as_u64().unwrap() >= 1, "{detect}");
    assert!(detect["state_bytes"].as_u64().unwrap() > 0, "{detect}");
    assert_eq!(summary["live"]["rules_resumed"]["from"], "empty");
}
