//! `ingest --follow --metrics-listen`: a real HTTP scrape of the Prometheus endpoint while the
//! pipeline runs shows pipeline counters, SLIs, budgets and burn rates that match the run's own
//! summary, with Prometheus naming and no per-user labels.

use crate::common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{bin, generate, get, metrics_address, value};

/// `ingest --follow INPUT --out OUT` serving `/metrics` on a free port, with `extra`
/// arguments: the child, the metrics address and the rest of its stderr.
fn follow_with_metrics(
    input: &Path,
    out: &Path,
    extra: &[&OsStr],
) -> (Child, String, impl Sized + use<>) {
    let mut child = bin()
        .args(["ingest", "--follow", "--no-progress", "--format", "json"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .arg(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, stderr) = metrics_address(child.stderr.take().unwrap());
    (child, addr, stderr)
}

/// Stop a following ingest as a service manager does (SIGTERM); its JSON summary.
fn stop(child: Child) -> serde_json::Value {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

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
    let (child, addr, _stderr) = follow_with_metrics(&input, &out, &[]);
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
    let summary = stop(child);

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

/// Suppressions: a red-team user's push bombing (and the approval after it) produces no
/// finding while another user's identical attack does; the events withheld are counted on
/// `/metrics` and in the run's summary; history (`detect`) agrees, and without the file the
/// red-team user's attack is found.
#[test]
fn a_suppressed_users_attack_produces_no_finding_and_is_counted_on_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("push.ndjson");
    let mut lines = String::new();
    for user in ["rt@acme.example", "bob@acme.example"] {
        for i in 0..7 {
            let outcome = if i < 6 { "denied" } else { "success" };
            lines.push_str(&format!(
                "{{\"event_id\":\"{user}-{i}\",\"time\":\"2026-03-02T09:0{i}:00Z\",\"source\":\"canonical\",\"user\":\"{user}\",\"action\":\"mfa_verify\",\"factor\":\"push\",\"outcome\":\"{outcome}\",\"src_ip\":\"203.0.113.9\",\"vendor_event_type\":\"t\"}}\n"
            ));
        }
    }
    std::fs::write(&input, lines).unwrap();
    let suppressions = tmp.path().join("suppressions.toml");
    std::fs::write(
        &suppressions,
        "[[suppress]]\nname = \"red-team-q1\"\nreason = \"authorised red-team exercise\"\nrules = [\"mfa_push_fatigue_accepted\"]\nusers = [\"RT@acme.example\"]\nsrc_ips = [\"203.0.113.0/24\"]\nfrom = \"2026-03-01T00:00:00Z\"\nuntil = \"2026-03-08T00:00:00Z\"\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let (child, addr, _stderr) = follow_with_metrics(
        &input,
        &out,
        &["--suppressions".as_ref(), suppressions.as_ref()],
    );
    let series = "mfascope_detect_suppressed_events_total{suppression=\"red-team-q1\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = get(&addr, "/metrics");
        if value(&page, series) == Some(7.0) {
            break;
        }
        assert!(Instant::now() < deadline, "never counted:\n{page}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let summary = stop(child);
    let detect = &summary["live"]["detect"];
    assert_eq!(detect["suppressed"][0]["name"], "red-team-q1");
    assert_eq!(detect["suppressed"][0]["events"], 7);
    let flagged = |findings: &serde_json::Value, user: &str| -> Vec<String> {
        findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["user"] == user)
            .map(|f| f["rule_name"].as_str().unwrap().to_string())
            .collect()
    };
    let both = ["mfa_push_bombing", "mfa_push_fatigue_accepted"];
    assert!(
        flagged(&detect["findings"], "rt@acme.example").is_empty(),
        "{detect}"
    );
    assert_eq!(flagged(&detect["findings"], "bob@acme.example"), both);

    // History agrees; without the suppressions the red-team user's attack is found.
    let data = out.display().to_string();
    let history = common::run_json(&[
        "detect",
        "--data",
        &data,
        "--format",
        "json",
        "--suppressions",
        suppressions.to_str().unwrap(),
    ]);
    assert!(flagged(&history["findings"], "rt@acme.example").is_empty());
    assert_eq!(history["suppressed"][0]["events"], 7);
    let unsuppressed = common::run_json(&["detect", "--data", &data, "--format", "json"]);
    assert_eq!(flagged(&unsuppressed["findings"], "rt@acme.example"), both);
}
