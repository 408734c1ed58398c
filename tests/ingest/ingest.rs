//! End-to-end ingest tests against the real binary: accounting, idempotency, bad input, and an
//! independent Parquet reader (pyarrow via `MFASCOPE_PYTHON`, set up by `scripts/test`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfascope"))
}

fn json_summary(args: &[&str]) -> serde_json::Value {
    let out = bin()
        .args(args)
        .args(["--format", "json", "--no-progress"])
        .output()
        .expect("run mfascope");
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "mfascope failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn ingest(input: &Path, out: &Path) -> serde_json::Value {
    json_summary(&[
        "ingest",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn assert_accounted(v: &serde_json::Value) {
    assert_eq!(
        n(v, "records"),
        n(v, "events") + n(v, "tickets") + n(v, "deadletter") + n(v, "ignored"),
        "{v}"
    );
}

fn generate(dir: &Path, format: &str, events: usize, seed: u64) -> PathBuf {
    let out = dir.join(format!("{format}.ndjson"));
    let status = bin()
        .args([
            "generate",
            "--log-format",
            format,
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--attacks",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// Every dead letter under `out`.
fn dead_letters(out: &Path) -> Vec<serde_json::Value> {
    walkdir::WalkDir::new(out.join("deadletter"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The reason of the dead letter for `file` (a path suffix) at `line`.
fn reason(letters: &[serde_json::Value], file: &str, line: u64) -> String {
    letters
        .iter()
        .find(|d| d["line"] == line && d["file"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("no dead letter for {file}:{line}: {letters:?}"))["reason"]
        .as_str()
        .unwrap()
        .to_string()
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir.join("events"))
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .map(walkdir::DirEntry::into_path)
        .collect()
}

#[test]
fn every_vendor_format_round_trips_and_reingest_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for (i, f) in common::VENDORS.iter().enumerate() {
        generate(&input, f, 3000, i as u64 + 1);
    }
    let out = tmp.path().join("out");
    let first = ingest(input.as_path(), &out);
    assert_accounted(&first);
    // Duo and Keycloak log no challenge records, so their files hold fewer than 3000 lines.
    let lines: u64 = std::fs::read_dir(&input)
        .unwrap()
        .flatten()
        .filter(|e| !e.path().to_string_lossy().ends_with(".labels.jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count() as u64)
        .sum();
    assert!(lines > 6 * 3000 && lines < 7 * 3000, "{lines}");
    assert_eq!(n(&first, "records"), lines, "{first}");
    assert_eq!(n(&first, "deadletter"), 0, "{first}");
    for &source in common::VENDORS.iter() {
        assert!(
            first["by_source"][source].as_u64().unwrap_or(0) > 1000,
            "{source}: {first}"
        );
    }
    let files = parquet_files(&out);
    assert!(!files.is_empty());
    assert!(
        files
            .iter()
            .all(|f| f.to_str().unwrap().contains("/dt=2024-05-01/hour="))
    );

    // Same input again: nothing new is read or written.
    let again = ingest(input.as_path(), &out);
    assert_eq!(n(&again, "records"), 0, "{again}");
    assert_eq!(n(&again, "files_written"), 0);
    assert_eq!(parquet_files(&out).len(), files.len());

    // Without state, a replay rewrites the same deterministic file names (no duplicates).
    std::fs::remove_dir_all(out.join("_state")).unwrap();
    let replay = ingest(input.as_path(), &out);
    assert_eq!(n(&replay, "events"), n(&first, "events"));
    assert_eq!(parquet_files(&out).len(), files.len());
}

/// `--no-live --no-detect` (backfills; measuring the pipeline's share of ingest time) write the
/// same table while the aggregator and the rule engine see nothing.
#[test]
fn no_live_and_no_detect_write_the_same_table_without_the_observers() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generate(tmp.path(), "okta", 5000, 7);
    let relative = |out: &Path| {
        let mut files: Vec<_> = parquet_files(out)
            .into_iter()
            .map(|f| f.strip_prefix(out).unwrap().to_path_buf())
            .collect();
        files.sort();
        files
    };
    let full_out = tmp.path().join("full");
    let full = ingest(&input, &full_out);
    let bare_out = tmp.path().join("bare");
    let bare = json_summary(&[
        "ingest",
        input.to_str().unwrap(),
        "--out",
        bare_out.to_str().unwrap(),
        "--no-live",
        "--no-detect",
    ]);
    assert_eq!(n(&full, "events"), 5000, "{full}");
    assert_eq!(n(&bare, "events"), n(&full, "events"), "{bare}");
    assert_eq!(relative(&bare_out), relative(&full_out));
    assert_eq!(n(&full["live"]["counters"], "events"), 5000);
    assert_eq!(n(&full["live"]["detect"]["counters"], "events"), 5000);
    assert_eq!(n(&bare["live"]["counters"], "events"), 0, "{bare}");
    assert_eq!(
        n(&bare["live"]["detect"]["counters"], "events"),
        0,
        "{bare}"
    );
}

#[test]
fn independent_reader_sees_the_same_rows_and_values() {
    if std::env::var_os("MFASCOPE_PYTHON").is_none() {
        eprintln!("MFASCOPE_PYTHON not set (scripts/test sets it); skipping the pyarrow check");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = generate(tmp.path(), "okta", 5000, 42);
    let out = tmp.path().join("out");
    let s = ingest(input.as_path(), &out);
    assert_accounted(&s);
    let script = r#"
import json, sys, pyarrow.dataset as ds, pyarrow.compute as pc
t = ds.dataset(sys.argv[1] + "/events", format="parquet", partitioning="hive").to_table()
src = [json.loads(l) for l in open(sys.argv[2])]
ids = set(t.column("event_id").to_pylist())
print(json.dumps({
  "rows": t.num_rows,
  "distinct_ids": len(ids),
  "input_uuids_found": sum(1 for r in src if r["uuid"] in ids),
  "deny_push": pc.sum(pc.equal(t.column("vendor_event_type"), "user.mfa.okta_verify.deny_push")).as_py(),
  "deny_push_input": sum(1 for r in src if r["eventType"] == "user.mfa.okta_verify.deny_push"),
  "denied_outcomes": pc.sum(pc.equal(pc.cast(t.column("outcome"), "string"), "denied")).as_py(),
  "first_user": t.filter(pc.equal(t.column("event_id"), src[0]["uuid"])).column("user")[0].as_py(),
  "first_user_input": src[0]["actor"]["alternateId"],
  "schema_version": t.schema.metadata is not None,
}))
"#;
    let v: serde_json::Value =
        serde_json::from_slice(&common::py(script, &[&out, &input])).unwrap();
    assert_eq!(n(&v, "rows"), n(&s, "events"), "{v}");
    assert_eq!(
        n(&v, "distinct_ids"),
        n(&v, "rows"),
        "event ids unique: {v}"
    );
    assert_eq!(n(&v, "input_uuids_found"), n(&s, "events"), "{v}");
    assert_eq!(n(&v, "deny_push"), n(&v, "deny_push_input"), "{v}");
    assert!(n(&v, "denied_outcomes") >= n(&v, "deny_push"), "{v}");
    assert_eq!(v["first_user"], v["first_user_input"], "{v}");
}

#[test]
fn bad_input_becomes_precise_dead_letters_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let mut f = std::fs::File::create(input.join("bad.ndjson")).unwrap();
    writeln!(f, r#"{{"uuid":"a","published":"2024-05-01T10:00:00Z","eventType":"user.session.start","actor":{{"alternateId":"x"#).unwrap();
    f.write_all(b"{\"uuid\":\"b\",\"published\":\"2024-05-01T10:00:00Z\",\"eventType\":\"user.session.start\",\"actor\":{\"alternateId\":\"\xff\xfe\"}}\n").unwrap();
    writeln!(
        f,
        r#"{{"uuid":"c","eventType":"user.session.start","actor":{{"alternateId":"x"}}}}"#
    )
    .unwrap();
    writeln!(f, r#"{{"uuid":"d","published":"9999-01-01T00:00:00Z","eventType":"user.session.start","actor":{{"alternateId":"x"}}}}"#).unwrap();
    writeln!(f, r#"{{"uuid":"e","published":"2024-05-01T10:00:00Z","eventType":"user.session.start","actor":{{"alternateId":"x"}},"outcome":{{"result":[1]}}}}"#).unwrap();
    // A 10 MB line and 10 000 levels of nesting.
    writeln!(f, "{{\"eventType\":\"{}\"}}", "x".repeat(10 << 20)).unwrap();
    writeln!(f, "{}{}", "[".repeat(10_000), "]".repeat(10_000)).unwrap();
    writeln!(
        f,
        "{{\"published\":\"2024-05-01T10:00:00Z\",\"deep\":{}1{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    )
    .unwrap();
    drop(f);
    std::fs::File::create(input.join("empty.ndjson")).unwrap();
    // A truncated gzip with two complete records before the cut.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let okta = std::fs::read(generate(tmp.path(), "okta", 50, 3)).unwrap();
    gz.write_all(&okta).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(input.join("cut.ndjson.gz"), &bytes[..bytes.len() / 2]).unwrap();

    let out = tmp.path().join("out");
    let s = ingest(input.as_path(), &out);
    assert_accounted(&s);
    assert!(n(&s, "deadletter") >= 8, "{s}");
    let letters = dead_letters(&out);
    let reason = |line: u64, file: &str| reason(&letters, file, line);
    assert!(reason(1, "bad.ndjson").contains("EOF while parsing"));
    assert!(reason(2, "bad.ndjson").contains("UTF-8"));
    assert!(reason(3, "bad.ndjson").contains("published"));
    assert!(reason(4, "bad.ndjson").contains("outside the accepted range"));
    assert!(reason(5, "bad.ndjson").contains("outcome.result"));
    assert!(reason(6, "bad.ndjson").contains("eventType"));
    assert!(!reason(7, "bad.ndjson").is_empty());
    assert!(!reason(8, "bad.ndjson").is_empty());
    assert!(
        letters
            .iter()
            .any(|d| d["file"].as_str().unwrap().ends_with("cut.ndjson.gz")
                && d["reason"].as_str().unwrap().contains("gzip")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .all(|d| d["raw"].as_str().unwrap().len() <= 4096)
    );
    // Records decoded before the gzip cut still became events.
    assert!(s["by_source"]["okta"].as_u64().unwrap_or(0) > 0, "{s}");
}

#[test]
fn strict_fails_on_dead_letters_and_stdin_and_arrays_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let page = format!(
        "[{},{}]\n",
        r#"{"uuid":"p1","published":"2024-05-01T10:00:00Z","eventType":"user.session.start","actor":{"alternateId":"a@x"},"outcome":{"result":"SUCCESS"}}"#,
        r#"{"uuid":"p2","published":"2024-05-01T10:00:01Z","eventType":"user.session.start","actor":{"alternateId":"b@x"},"outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"}}"#,
    );
    let mut child = bin()
        .args([
            "ingest",
            "-",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
            "--strict",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{page}garbage\n").as_bytes())
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert_eq!(
        done.status.code(),
        Some(1),
        "--strict exits 1 on dead letters"
    );
    let s: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!((n(&s, "events"), n(&s, "deadletter")), (2, 1), "{s}");
}

#[test]
fn demo_reports_every_source_and_exactly_the_planted_bad_records() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["demo", "--format", "json", "--work"])
        .arg(tmp.path().join("demo"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_accounted(&s);
    assert_eq!(
        n(&s, "deadletter"),
        6,
        "the six records of bad-records.ndjson: {s}"
    );
    for &source in common::VENDORS.iter() {
        assert!(
            s["by_source"][source].as_u64().unwrap_or(0) > 500,
            "{source}: {s}"
        );
    }
    // The bundled Zendesk export: M5 shows its tickets, the posture headline is there, and the
    // weekly report was written.
    assert_eq!(n(&s, "tickets"), 9, "{s}");
    let m5 = s["sli"]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "mfa_support_tickets")
        .unwrap();
    let tickets: u64 = m5["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tickets"].as_u64().unwrap())
        .sum();
    assert_eq!(tickets, 9);
    assert!(s["posture"]["active_users"].as_u64().unwrap() > 100, "{s}");
    let report = std::fs::read_to_string(s["weekly_report"].as_str().unwrap()).unwrap();
    assert!(report.starts_with("<!doctype html>") && report.contains("<svg"));
}

#[test]
fn real_third_party_samples_map_without_dead_letters() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/logs");
    if !fixtures.is_dir() {
        eprintln!(
            "{} not present; skipping the third-party sample check",
            fixtures.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let s = ingest(&fixtures, &out);
    assert_accounted(&s);
    assert_eq!(n(&s, "deadletter"), 0, "{s}");
    assert_eq!(s["by_source"]["duo"].as_u64(), Some(19), "{s}");
    assert_eq!(s["by_source"]["okta"].as_u64(), Some(2), "{s}");
    // Service-principal and managed-identity sign-ins are not user 2FA: ignored, counted.
    assert_eq!(
        s["ignored_by_type"]["entra:ServicePrincipalSignInLogs"].as_u64(),
        Some(1),
        "{s}"
    );
    assert_eq!(
        s["ignored_by_type"]["okta:user.session.end"].as_u64(),
        Some(1),
        "{s}"
    );
    // Duo: one push marked as fraud, nine denied by mistake; the rest approved.
    let duo = fixtures.join("duo-auth.log");
    let raw = std::fs::read_to_string(&duo).unwrap();
    let fraud = raw.matches("\"user_marked_fraud\"").count() as u64;
    let mistakes = raw.matches("\"user_mistake\"").count() as u64;
    assert!(n(&s["by_outcome"], "denied") >= fraud + mistakes, "{s}");
    assert!(
        s["by_factor"]["webauthn"].as_u64().unwrap_or(0) >= 1,
        "Workspace security_key: {s}"
    );
}

#[test]
fn bad_input_corpus_is_accounted_record_by_record() {
    // The cases the first bad-input test leaves out: epoch-zero and far-future times, binary
    // garbage, an empty and an empty-content gzip, and a directory entry that cannot be read.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let okta = |id: &str, published: &str| {
        format!(
            r#"{{"uuid":"{id}","published":"{published}","eventType":"user.session.start","actor":{{"alternateId":"a@x"}},"outcome":{{"result":"SUCCESS"}}}}"#
        )
    };
    let lines = [
        okta("t1", "1970-01-01T00:00:00Z"),
        okta("t2", "2024-05-01T10:00:00Z"),
        okta("t3", "9999-12-31T23:59:59Z"),
        okta("t4", "not a time"),
    ];
    std::fs::write(input.join("times.ndjson"), lines.join("\n") + "\n").unwrap();
    // Garbage: NULs, control bytes, invalid UTF-8 and a stray gzip magic, on 3 lines.
    let mut garbage = b"\x00\x01\x02\xff\xfe\n".to_vec();
    garbage.extend(b"\x1f\x8b\x08garbage\n");
    garbage.extend((0u8..=255).filter(|b| *b != b'\n').collect::<Vec<_>>());
    garbage.push(b'\n');
    std::fs::write(input.join("garbage.ndjson"), &garbage).unwrap();
    std::fs::write(input.join("empty.ndjson.gz"), b"").unwrap();
    let nothing = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::fs::write(input.join("nothing.ndjson.gz"), nothing.finish().unwrap()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("gone"), input.join("dangling.ndjson")).unwrap();

    let out = tmp.path().join("out");
    let s = ingest(input.as_path(), &out);
    assert_accounted(&s);
    // 4 time lines + 3 garbage lines; empty gzips hold no record.
    assert_eq!(
        (n(&s, "records"), n(&s, "events"), n(&s, "deadletter")),
        (7, 1, 6),
        "{s}"
    );
    let letters = dead_letters(&out);
    let reason = |file: &str, line: u64| reason(&letters, file, line);
    assert!(reason("times.ndjson", 1).contains("outside the accepted range"));
    assert!(reason("times.ndjson", 3).contains("outside the accepted range"));
    assert!(reason("times.ndjson", 4).contains("published"));
    for line in 1..=3 {
        assert!(!reason("garbage.ndjson", line).is_empty());
    }
    #[cfg(unix)]
    {
        let unreadable = s["unreadable"].as_array().unwrap();
        assert!(
            unreadable
                .iter()
                .any(|u| u["path"].as_str().unwrap().ends_with("dangling.ndjson")),
            "the dangling link is named: {s}"
        );
    }
}

#[test]
fn repeated_event_ids_become_dead_letters_naming_the_id() {
    // Overlapping polls of the Okta API and a canonical export concatenated twice: a record
    // repeating the source, event_id and bytes of an earlier one is a duplicate; the same id
    // from another source, or with other content, is not.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let okta = |id: &str, user: &str| {
        format!(
            r#"{{"uuid":"{id}","published":"2024-05-01T10:00:00Z","eventType":"user.session.start","actor":{{"alternateId":"{user}"}},"outcome":{{"result":"SUCCESS"}}}}"#
        )
    };
    let poll1 = [okta("o1", "a@x"), okta("o2", "b@x"), okta("o3", "c@x")];
    // o2 again, but another record (vendors reuse ids): kept.
    let poll2 = [
        okta("o3", "c@x"),
        okta("o4", "d@x"),
        okta("o1", "a@x"),
        okta("o2", "z@x"),
    ];
    std::fs::write(input.join("poll1.ndjson"), poll1.join("\n") + "\n").unwrap();
    std::fs::write(input.join("poll2.ndjson"), poll2.join("\n") + "\n").unwrap();
    let canonical = r#"{"event_id":"o1","time":"2024-05-01T10:00:00Z","source":"canonical","user":"a@x","action":"mfa_verify","factor":"totp","outcome":"success","vendor_event_type":"t"}"#;
    std::fs::write(
        input.join("export.ndjson"),
        format!("{canonical}\n{canonical}\n"),
    )
    .unwrap();

    let out = tmp.path().join("out");
    let s = ingest(input.as_path(), &out);
    assert_accounted(&s);
    assert_eq!(
        (n(&s, "records"), n(&s, "events"), n(&s, "deadletter")),
        (9, 6, 3),
        "{s}"
    );
    assert_eq!(s["deadletter_by_reason"]["duplicate record"], 3, "{s}");
    assert_eq!(s["by_source"]["okta"], 5, "counts follow the events: {s}");
    let letters = dead_letters(&out);
    let reason = |file: &str, line: u64| reason(&letters, file, line);
    assert!(
        reason("poll2.ndjson", 1)
            .contains(r#"event_id "o3" with the same content was already ingested"#)
    );
    assert!(
        reason("poll2.ndjson", 3)
            .contains(r#"event_id "o1" with the same content was already ingested"#)
    );
    assert!(
        reason("export.ndjson", 2)
            .contains(r#"event_id "o1" with the same content was already ingested"#)
    );
    let stored = bin()
        .args(["query", "--format", "json", "--data", out.to_str().unwrap()])
        .args([
            "--sql",
            "SELECT source || '/' || event_id AS id FROM events ORDER BY 1",
        ])
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&stored.stdout).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "canonical/o1",
            "okta/o1",
            "okta/o2",
            "okta/o2",
            "okta/o3",
            "okta/o4"
        ]
    );

    // Off: every record is an event.
    let all = json_summary(&[
        "ingest",
        "--dedupe-window",
        "0",
        input.to_str().unwrap(),
        "--out",
        tmp.path().join("all").to_str().unwrap(),
    ]);
    assert_eq!((n(&all, "events"), n(&all, "deadletter")), (9, 0), "{all}");
}

/// A reader that stops early (`mfascope query … | head`) ends the command quietly with the
/// shell's status for a closed pipe (141), not a panic: the table is larger than the pipe's
/// buffer, so the write after the reader leaves fails.
#[test]
fn a_reader_closing_the_pipe_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let input = common::generate(
        tmp.path(),
        "events",
        &[
            "--log-format",
            "canonical",
            "--events",
            "3000",
            "--seed",
            "5",
        ],
    );
    let out = tmp.path().join("out");
    common::ingest_json(&[&input], &out);
    let mut child = bin()
        .args(["query", "--data", out.to_str().unwrap()])
        .args(["--sql", "SELECT event_id, \"user\" FROM events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with('+'), "a table: {first:?}");
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}
