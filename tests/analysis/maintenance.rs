//! Maintenance windows over the push-outage sample: the ticket alerts starting inside the
//! window are evaluated but never delivered (pages are, marked with the window), the window's
//! events leave the error budget when it says so — the figures checked against DuckDB over
//! the stored Parquet — and `slo` and `alerts` say why.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{self, Receiver, bin, run_json};

const START: &str = "2024-05-02T13:50:00Z";
const END: &str = "2024-05-02T15:00:00Z";

fn window_file(dir: &Path, name: &str, exclude: bool) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "windows:\n  - name: push-migration\n    start: {START}\n    end: {END}\n    reason: \
             push provider migration (CHG-4711)\n    excludeFromBudget: {exclude}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn in_window(e: &serde_json::Value) -> bool {
    let ms = |t: &str| mfascope::time::parse_rfc3339(t).unwrap();
    (ms(START)..ms(END)).contains(&ms(e["firing_at"].as_str().unwrap()))
}

/// `<episode>/firing` keys of `episodes`.
fn firing_keys<'a>(episodes: impl Iterator<Item = &'a serde_json::Value>) -> BTreeSet<String> {
    episodes
        .map(|e| {
            let ms = mfascope::time::parse_rfc3339(e["firing_at"].as_str().unwrap()).unwrap();
            format!(
                "slo/{}/{}/{ms}/firing",
                e["slo"].as_str().unwrap(),
                e["alert"].as_str().unwrap()
            )
        })
        .collect()
}

/// `mfascope alerts --format json` over `data` with the maintenance file `windows`.
fn alerts_with(data: &str, windows: &str) -> serde_json::Value {
    run_json(&[
        "alerts",
        "--data",
        data,
        "--format",
        "json",
        "--maintenance",
        windows,
    ])
}

const COUNT_PY: &str = r#"
import json, sys, duckdb
data, start, end = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.sql(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/events/dt=*/hour=*/*.parquet', hive_partitioning=false)")
total, good = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE outcome = 'success') FROM events
    WHERE action = 'mfa_verify' AND outcome NOT IN ('challenge', 'unknown')
    AND time >= TIMESTAMPTZ '{start}' AND time < TIMESTAMPTZ '{end}'""").fetchone()
print(json.dumps({"events": total, "bad": total - good}))
"#;

#[test]
fn a_maintenance_window_silences_tickets_and_leaves_the_budget_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let input = common::outage_sample(tmp.path());
    let out = tmp.path().join("out");
    let data = out.display().to_string();
    let silence = window_file(tmp.path(), "silence.yaml", false);
    let exclude = window_file(tmp.path(), "exclude.yaml", true);
    std::fs::write(tmp.path().join("key"), "test-signing-key\n").unwrap();
    let key = format!("file:{}", tmp.path().join("key").display());
    let receiver = Receiver::start(tmp.path());
    let status = bin()
        .args([
            "ingest",
            "--no-progress",
            "--format",
            "json",
            "--maintenance",
            &silence,
        ])
        .args([
            "--notify",
            &format!("{}/hook", receiver.url),
            "--notify-key",
            &key,
            "--notify-drain",
            "60s",
        ])
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    // Without the window the outage raises tickets and pages inside it.
    let plain = run_json(&["alerts", "--data", &data, "--format", "json"]);
    let plain: Vec<&serde_json::Value> = plain["episodes"].as_array().unwrap().iter().collect();
    let tickets = firing_keys(
        plain
            .iter()
            .copied()
            .filter(|e| in_window(e) && e["severity"] == "ticket"),
    );
    let pages = firing_keys(
        plain
            .iter()
            .copied()
            .filter(|e| in_window(e) && e["severity"] == "page"),
    );
    assert!(!tickets.is_empty() && !pages.is_empty(), "{plain:#?}");

    // With it, the same episodes, the tickets silenced and the pages marked.
    let marked = alerts_with(&data, &silence);
    let marked = marked["episodes"].as_array().unwrap();
    assert_eq!(marked.len(), plain.len());
    for e in marked.iter().filter(|e| in_window(e)) {
        assert_eq!(e["maintenance"]["window"], "push-migration", "{e}");
        assert_eq!(
            e["maintenance"]["silenced"],
            e["severity"] == "ticket",
            "{e}"
        );
    }
    assert!(
        marked
            .iter()
            .filter(|e| !in_window(e))
            .all(|e| e["maintenance"].is_null())
    );
    let table = String::from_utf8(common::output_ok(bin().args([
        "alerts",
        "--data",
        &data,
        "--maintenance",
        &silence,
    ])))
    .unwrap();
    assert!(
        table.contains("silenced (not delivered): maintenance push-migration (push provider migration (CHG-4711))"),
        "{table}"
    );

    // The receiver got the pages, with the window, and no ticket of the window.
    let got = receiver.received();
    let keys: BTreeSet<String> = got
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    assert!(
        keys.is_disjoint(&tickets),
        "silenced tickets were sent: {:?}",
        keys.intersection(&tickets).collect::<Vec<_>>()
    );
    assert!(
        pages.is_subset(&keys),
        "pages missing: {:?}",
        pages.difference(&keys).collect::<Vec<_>>()
    );
    for r in got
        .iter()
        .filter(|r| pages.contains(r["key"].as_str().unwrap()))
    {
        assert_eq!(
            r["body"]["maintenance"], "push-migration: push provider migration (CHG-4711)",
            "{r}"
        );
    }

    // Excluded from the budget: the success SLO counts the window's events apart — as many
    // as DuckDB finds in the Parquet — and its budget is that of the data without them.
    let slo = |extra: &[&str]| {
        let mut args = vec![
            "slo",
            "--data",
            &data,
            "--format",
            "json",
            "--attack-exclusion",
            "off",
        ];
        args.extend_from_slice(extra);
        let v = run_json(&args);
        let s = v["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "mfa-success-rate")
            .unwrap()
            .clone();
        (v, s)
    };
    let (_, before) = slo(&[]);
    let (with, after) = slo(&["--maintenance", &exclude]);
    let want: serde_json::Value = serde_json::from_slice(&common::py(
        COUNT_PY,
        &[&out, Path::new(START), Path::new(END)],
    ))
    .unwrap();
    let m = &after["maintenance"][0];
    assert_eq!(
        (m["window"].as_str(), m["excluded_from_budget"].as_bool()),
        (Some("push-migration"), Some(true))
    );
    assert_eq!(
        (&m["events"], &m["bad"]),
        (&want["events"], &want["bad"]),
        "{m} vs DuckDB {want}"
    );
    assert!(
        want["bad"].as_u64().unwrap() > 100,
        "the outage is in the window: {want}"
    );
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(&after, "total"), n(&before, "total") - n(m, "events"));
    assert_eq!(
        n(&after, "total") - n(&after, "good"),
        n(&before, "total") - n(&before, "good") - n(m, "bad")
    );
    assert!(after["budget_remaining"].as_f64() > before["budget_remaining"].as_f64());
    // No alert of the outage fires once its events are out of the budget.
    let excluded = alerts_with(&data, &exclude);
    let outage = excluded["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| in_window(e) && e["slo"] == "mfa-success-rate")
        .count();
    assert_eq!(outage, 0, "{:#?}", excluded["episodes"]);
    assert!(
        with["slos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["maintenance"].as_array().unwrap().len() == 1)
    );
    let table = String::from_utf8(common::output_ok(bin().args([
        "slo",
        "--data",
        &data,
        "--attack-exclusion",
        "off",
        "--maintenance",
        &exclude,
    ])))
    .unwrap();
    assert!(
        table.contains(&format!(
            "maintenance push-migration (push provider migration (CHG-4711)), 2024-05-02T13:50:00.000Z to 2024-05-02T15:00:00.000Z: {} events ({} bad) excluded from the budget",
            want["events"], want["bad"]
        )),
        "{table}"
    );
}
