//! `ingest --follow` against a real growing, rotating file: every line lands exactly once, a
//! stop commits what was read, and a restart resumes at the checkpoint.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use common::append;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfascope"))
}

/// Event ids in every committed Parquet file under `out` (duplicates kept).
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

/// Wait (bounded) until `n` events are committed; returns whether it happened.
fn wait_for(out: &Path, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if committed_ids(out).len() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn follows_appends_and_rotation_then_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.ndjson");
    let status = bin()
        .args([
            "generate",
            "--log-format",
            "okta",
            "--events",
            "600",
            "--seed",
            "9",
            "--out",
        ])
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    let lines: Vec<String> = std::fs::read_to_string(&source)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let expected: HashSet<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["uuid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(expected.len(), 600);

    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let live = logs.join("okta.log");
    let out = tmp.path().join("out");
    append(&live, &lines[..200]);
    let child = bin()
        .args([
            "ingest",
            "--follow",
            "--max-latency",
            "200ms",
            "--format",
            "json",
            "--no-progress",
            "--out",
        ])
        .arg(&out)
        .arg(&logs)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(&out, 200),
        "first 200 events committed while following"
    );

    append(&live, &lines[200..300]);
    assert!(wait_for(&out, 300), "appended lines committed");

    // Rotate: rename, a late write to the old file, then a new file under the old name.
    std::fs::rename(&live, logs.join("okta.log.1")).unwrap();
    append(&logs.join("okta.log.1"), &lines[300..350]);
    append(&live, &lines[350..500]);
    assert!(wait_for(&out, 500), "rotated and new file committed");

    // Stop with SIGTERM: the run commits and prints its summary.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "exit {:?}", done.status);
    let summary: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(summary["events"].as_u64(), Some(500), "{summary}");

    // Lines written while stopped are picked up by the next run, nothing twice.
    append(&live, &lines[500..]);
    let again = bin()
        .args(["ingest", "--format", "json", "--no-progress", "--out"])
        .arg(&out)
        .arg(&logs)
        .output()
        .unwrap();
    assert!(again.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        summary["events"].as_u64(),
        Some(100),
        "only the new lines: {summary}"
    );

    let ids = committed_ids(&out);
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "no duplicates");
    assert_eq!(unique, expected, "exactly the produced events");
}

/// A live stream that goes quiet right after a push-bombing burst still reports the finding
/// while it runs (the rule engine evaluates what waited for stragglers once the input is idle),
/// not only at shutdown.
#[test]
fn a_burst_followed_by_silence_is_reported_while_following() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("live.ndjson");
    let out = tmp.path().join("out");
    let line = |id: String, user: &str, factor: &str, outcome: &str| {
        common::verify_line(&id, user, factor, outcome)
    };
    append(
        &input,
        &(0..50)
            .map(|i| line(format!("b{i}"), &format!("u{i}"), "totp", "success"))
            .collect::<Vec<_>>(),
    );
    let mut guard = KillOnDrop(Some(
        bin()
            .args([
                "ingest",
                "--follow",
                "--no-progress",
                "--format",
                "json",
                "--out",
            ])
            .arg(&out)
            .arg(&input)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let child = guard.0.as_mut().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    assert!(wait_for(&out, 50), "the first events were not committed");
    append(
        &input,
        &(0..5)
            .map(|i| line(format!("p{i}"), "mallory", "push", "denied"))
            .collect::<Vec<_>>(),
    );
    // Nothing more is written: the finding must come from the idle release.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut announced = None;
    while announced.is_none() && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200))
            && l.starts_with("finding:")
            && l.contains("mallory")
        {
            announced = Some(l);
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "ingest exited early");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = guard.0.take().unwrap().wait().unwrap();
    let line = announced.expect("no finding announced for the burst while following");
    assert!(
        line.contains("T1621"),
        "push bombing is tagged T1621: {line}"
    );
    assert!(status.success());
}

/// A child process killed if the test fails before stopping it.
struct KillOnDrop(Option<std::process::Child>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
