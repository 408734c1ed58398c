//! Attack-aware SLOs end to end: a push-bombing campaign beside a real outage. With attack
//! exclusion (the default) the campaign changes no SLO figure and pages nobody while the outage
//! still pages; with `--attack-exclusion off` the campaign burns the success SLO, pages, and the
//! episode says the burn is explained by the attack. Live (during ingest), history (`slo`) and
//! SQL (`sli`) agree on what was left out.

use std::path::Path;

use crate::common;

use common::{ingest_json, run_json};

/// Denied pushes in the campaign: one every 4 s for an hour, against one user.
const CAMPAIGN: usize = 900;
const VICTIM: &str = "victim@acme.example";

/// The campaign as canonical NDJSON, on the day after the outage (2024-05-03T03:00Z).
fn write_campaign(path: &Path) {
    let start = mfascope::time::parse_rfc3339("2024-05-03T03:00:00Z").unwrap();
    let lines: Vec<String> = (0..CAMPAIGN)
        .map(|i| {
            let t = mfascope::time::format_rfc3339(start + i as i64 * 4_000);
            format!(
                r#"{{"event_id":"atk-{i}","time":"{t}","source":"canonical","user":"{VICTIM}","action":"mfa_verify","factor":"push","outcome":"denied","reason":"user_denied","src_ip":"185.220.101.7","vendor_event_type":"push.denied"}}"#
            )
        })
        .collect();
    common::append(path, &lines);
}

fn slo<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing: {report}"))
}

/// Episodes without their attack fields (they differ only in which campaigns overlap).
fn plain_episodes(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            for k in ["attacks", "attack_attempts", "explained_by_attack"] {
                e.as_object_mut().unwrap().remove(k);
            }
            e
        })
        .collect()
}

fn in_campaign(e: &serde_json::Value) -> bool {
    e["firing_at"]
        .as_str()
        .unwrap()
        .starts_with("2024-05-03T03:")
}

fn sum(report: &serde_json::Value, query: &str, column: &str) -> u64 {
    report["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == query)
        .unwrap_or_else(|| panic!("{query} missing"))["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[column].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn push_bombing_burns_no_budget_and_pages_nobody_while_the_outage_still_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let outage = common::outage_sample(tmp.path());
    let campaign = tmp.path().join("campaign.ndjson");
    write_campaign(&campaign);

    let only = tmp.path().join("outage-only");
    ingest_json(&[&outage], &only);
    let both = tmp.path().join("outage-and-attack");
    let summary = ingest_json(&[&outage, &campaign], &both);
    let (only, both) = (only.display().to_string(), both.display().to_string());

    // Exclusion on (the default): every SLO figure and every episode is the outage's alone.
    let baseline = run_json(&["slo", "--data", &only]);
    let on = run_json(&["slo", "--data", &both]);
    assert_eq!(on["slos"], baseline["slos"]);
    assert_eq!(plain_episodes(&on), plain_episodes(&baseline));
    assert!(
        on["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["slo"] == "mfa-availability" && e["severity"] == "page"),
        "the outage no longer pages: {on}"
    );
    assert!(
        !on["episodes"].as_array().unwrap().iter().any(in_campaign),
        "the campaign fired an alert with exclusion on: {on}"
    );
    // Live state during ingest is the same as the replayed history.
    assert_eq!(summary["live"]["slo"]["slos"], on["slos"]);
    assert_eq!(summary["live"]["slo"]["episodes"], on["episodes"]);

    // SQL: M1's attempts are the SLO's total, and the campaign is counted apart.
    let sli = run_json(&["sli", "--data", &both, "--bucket", "1d"]);
    let success = slo(&on, "mfa-success-rate");
    assert_eq!(
        sum(&sli, "mfa_success_rate", "attempts"),
        success["total"].as_u64().unwrap()
    );
    assert_eq!(
        sum(&sli, "mfa_success_rate", "attack_attempts"),
        CAMPAIGN as u64
    );
    let avail = slo(&on, "mfa-availability");
    assert_eq!(
        sum(&sli, "availability", "good_minutes"),
        avail["good"].as_u64().unwrap()
    );

    // Exclusion off: the raw numbers, the campaign pages, and the episode names the attack.
    let off = run_json(&["slo", "--data", &both, "--attack-exclusion", "off"]);
    let raw = slo(&off, "mfa-success-rate");
    assert_eq!(
        raw["total"].as_u64().unwrap(),
        success["total"].as_u64().unwrap() + CAMPAIGN as u64
    );
    assert_eq!(raw["good"], success["good"]);
    let page = off["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["slo"] == "mfa-success-rate" && e["severity"] == "page" && in_campaign(e))
        .unwrap_or_else(|| panic!("the campaign did not page with exclusion off: {off}"));
    assert_eq!(page["explained_by_attack"], true, "{page}");
    let attack = &page["attacks"][0];
    assert_eq!(attack["rule"], "mfa_push_bombing");
    assert_eq!(attack["group"], format!("user={VICTIM}"));
    assert_eq!(attack["first_at"], "2024-05-03T03:00:00.000Z");
    // The outage's own pages are not blamed on an attack.
    for e in off["episodes"].as_array().unwrap() {
        if e["firing_at"]
            .as_str()
            .unwrap()
            .starts_with("2024-05-02T14:")
        {
            assert_eq!(e["explained_by_attack"], false, "{e}");
        }
    }

    // Alertmanager: the attack-driven page is routable (`cause="attack"`) and says why.
    let am = run_json(&[
        "alerts",
        "--data",
        &both,
        "--attack-exclusion",
        "off",
        "--format",
        "alertmanager",
    ]);
    let alert = am["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["cause"] == "attack")
        .unwrap_or_else(|| panic!("no attack-caused alert: {am}"));
    assert_eq!(alert["labels"]["slo"], "mfa-success-rate");
    let note = alert["annotations"]["attack"].as_str().unwrap();
    assert!(
        note.starts_with("burn explained by attack traffic") && note.contains("mfa_push_bombing"),
        "{note}"
    );
    // The text table shows it under the episode.
    let out = common::bin()
        .args(["alerts", "--data", &both, "--attack-exclusion", "off"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("↳ burn explained by attack traffic"),
        "{text}"
    );
}
