//! Live SLO state across a restart: an ingest stopped while an outage pages and started again
//! on the rest of its input shows the same status, budgets and alert episodes as one
//! uninterrupted run — the firing alert stays one episode and resolves at the same minute.

use std::io::{BufRead, BufReader, Write};

use crate::common;

use common::{ingest_json, run_json};

fn availability_pages(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["slo"] == "mfa-availability" && e["alert"] == "fast-burn-1h")
        .cloned()
        .collect()
}

#[test]
fn a_page_firing_at_a_restart_stays_one_episode_and_resolves_as_if_uninterrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = common::outage_sample(tmp.path());

    // Uninterrupted: the whole input in one run.
    let whole = tmp.path().join("whole");
    let uninterrupted = ingest_json(&[&sample], &whole);

    // Interrupted: the run stops ten minutes into the outage (the input ends there) and a
    // second run picks up the rest of the same, grown, file.
    let growing = tmp.path().join("growing.ndjson");
    let mut out = std::fs::File::create(&growing).unwrap();
    let mut rest = Vec::new();
    for line in BufReader::new(std::fs::File::open(&sample).unwrap()).lines() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if rest.is_empty() && v["time"].as_str().unwrap() < "2024-05-02T14:10:00" {
            writeln!(out, "{line}").unwrap();
        } else {
            rest.push(line);
        }
    }
    drop(out);
    let resumed = tmp.path().join("resumed");
    let before = ingest_json(&[&growing], &resumed);
    let firing = availability_pages(&before["live"]["slo"]);
    assert_eq!(
        firing.len(),
        1,
        "not paging at the stop: {}",
        before["live"]["slo"]
    );
    assert!(firing[0]["resolved_at"].is_null(), "{}", firing[0]);
    common::append(&growing, &rest);
    let after = ingest_json(&[&growing], &resumed);

    // The second run's live state is the uninterrupted run's: one episode, same start, same
    // resolution; every status and episode equal.
    let pages = availability_pages(&after["live"]["slo"]);
    assert_eq!(pages.len(), 1, "{}", after["live"]["slo"]);
    assert_eq!(pages[0]["firing_at"], firing[0]["firing_at"]);
    assert_eq!(pages, availability_pages(&uninterrupted["live"]["slo"]));
    assert!(!pages[0]["resolved_at"].is_null());
    assert_eq!(
        after["live"]["slo"]["slos"],
        uninterrupted["live"]["slo"]["slos"]
    );
    assert_eq!(
        after["live"]["slo"]["episodes"],
        uninterrupted["live"]["slo"]["episodes"]
    );
    // And the history of the resumed store agrees with both.
    let history = run_json(&["slo", "--data", &resumed.display().to_string()]);
    assert_eq!(history["slos"], after["live"]["slo"]["slos"]);
}
