//! Delivery of findings and SLO alerts: a signed webhook that is down while mfascope is killed
//! with -9 and restarted still receives every finding and alert transition of the run, each
//! idempotency key at least once, equal to `detect` and `alerts` over the same store.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{self, Receiver, bin, detect_ids, run_json};

/// The keys `detect` and `alerts` over `out` say a receiver is owed.
fn owed(out: &std::path::Path) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = detect_ids(out)
        .into_iter()
        .map(|id| format!("finding/{id}"))
        .collect();
    let alerts = run_json(&["alerts", "--data", &out.display().to_string()]);
    for e in alerts["episodes"].as_array().unwrap() {
        let ms = mfascope::time::parse_rfc3339(e["firing_at"].as_str().unwrap()).unwrap();
        let episode = format!(
            "slo/{}/{}/{ms}",
            e["slo"].as_str().unwrap(),
            e["alert"].as_str().unwrap()
        );
        keys.insert(format!("{episode}/firing"));
        if !e["resolved_at"].is_null() {
            keys.insert(format!("{episode}/resolved"));
        }
    }
    keys
}

#[test]
fn a_webhook_down_through_a_kill_9_still_gets_every_finding_and_alert_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = common::generate(
        tmp.path(),
        "outage-attacks",
        &[
            "--log-format",
            "canonical",
            "--events",
            "200000",
            "--days",
            "3",
            "--seed",
            "11",
            "--probes",
            "--attacks",
            "--incident",
            "push-outage@2024-05-02T14:00:00Z/20m",
        ],
    );
    let out = tmp.path().join("out");
    std::fs::write(tmp.path().join("key"), "test-signing-key\n").unwrap();
    let receiver = Receiver::start(tmp.path());
    receiver.set_down(true);
    let key = format!("file:{}", tmp.path().join("key").display());
    let ingest = || {
        let mut c = bin();
        c.args([
            "ingest",
            "--no-progress",
            "--format",
            "json",
            "--notify-drain",
            "90s",
        ])
        .args([
            "--notify",
            &format!("{}/hook", receiver.url),
            "--notify-key",
            &key,
        ])
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        c
    };
    // First run: killed with -9 once something waits in the outbox for the dead receiver.
    let mut first = ingest().spawn().unwrap();
    let outbox = out.join("_state/notify");
    let queued = || {
        std::fs::read_dir(&outbox)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|r| {
                std::fs::read_dir(r.path().join("queue")).is_ok_and(|mut q| q.next().is_some())
            })
    };
    let start = Instant::now();
    while !queued()
        && start.elapsed() < Duration::from_secs(240)
        && first.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(queued(), "nothing was queued for the receiver");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(receiver.received().is_empty(), "the receiver was down");

    // Second run: the receiver comes back a few seconds in; the run finishes the input and
    // drains its outbox.
    let mut second = ingest().spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    receiver.set_down(false);
    assert!(second.wait().unwrap().success());

    let got = receiver.received();
    assert!(
        got.iter().all(|r| r["verified"] == true),
        "a signature did not verify"
    );
    let keys: BTreeSet<String> = got
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    for r in &got {
        assert_eq!(
            r["body"]["id"], r["key"],
            "the body names its idempotency key"
        );
        assert_eq!(r["body"]["version"], "1");
    }
    let owed = owed(&out);
    assert!(
        owed.iter().any(|k| k.starts_with("slo/")),
        "the outage fires alerts: {owed:?}"
    );
    assert!(
        owed.iter().any(|k| k.starts_with("finding/")),
        "the sample has findings"
    );
    let missing: Vec<_> = owed.difference(&keys).collect();
    let extra: Vec<_> = keys.difference(&owed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "receiver differs from detect/alerts: missing {missing:?}, extra {extra:?}"
    );
    // Nothing left waiting or parked.
    let status = crate::common::output_json(
        bin()
            .args(["notify", "status", "--format", "json", "--data"])
            .arg(&out),
    );
    assert_eq!(
        (status[0]["queued"].as_u64(), status[0]["parked"].as_u64()),
        (Some(0), Some(0)),
        "{status}"
    );
}
