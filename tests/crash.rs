//! Crash consistency of file ingest: `kill -9` at varied moments, then restart; the output holds
//! every input event exactly once (the intent log is rolled forward, replays do not duplicate).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow::array::AsArray;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfascope"))
}

fn committed_ids(out: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for entry in walkdir::WalkDir::new(out.join("events"))
        .into_iter()
        .flatten()
    {
        if entry.path().extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let file = std::fs::File::open(entry.path()).unwrap();
        for batch in ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let col = batch.column_by_name("event_id").unwrap().as_string::<i32>();
            ids.extend(col.iter().map(|v| v.unwrap().to_string()));
        }
    }
    ids
}

#[test]
fn kill_9_at_varied_moments_then_restart_gives_exact_output() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("okta.ndjson");
    let status = bin()
        .args([
            "generate",
            "--log-format",
            "okta",
            "--events",
            "40000",
            "--seed",
            "5",
            "--days",
            "3",
            "--out",
        ])
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());
    let out = tmp.path().join("out");
    let ingest = || {
        let mut c = bin();
        c.args([
            "ingest",
            "--segment-mib",
            "1",
            "--no-progress",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out)
        .arg(&input)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    // Kill after 40, 90, 140, … ms: early ones land mid-run, late ones may find it finished.
    let mut killed_mid_run = 0;
    for i in 0..10u64 {
        let mut child = ingest().spawn().unwrap();
        std::thread::sleep(Duration::from_millis(40 + 50 * i));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        killed_mid_run >= 3,
        "the runs were killed mid-way ({killed_mid_run})"
    );
    let status = ingest().status().unwrap();
    assert!(status.success());

    let expected: HashSet<String> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["uuid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let ids = committed_ids(&out);
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        ids.len(),
        unique.len(),
        "no duplicates after {killed_mid_run} kills"
    );
    assert_eq!(
        unique, expected,
        "nothing lost after {killed_mid_run} kills"
    );
    assert!(!out.join("_state/pending.json").exists());
}
