//! `--out` / `--data` on object storage, against a real S3-compatible server (moto on
//! 127.0.0.1, from PyPI) with pyarrow's own S3 client as the independent reader: the same rows
//! as a local run, readers (`sli`, `slo`, `detect`) on the URL give the local answers, kill -9
//! mid-commit loses and duplicates nothing, and a second writer is locked out.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use common::s3::S3Server;

/// Generated events (`format`) plus `garbage` lines that must become dead letters.
fn input(dir: &Path, format: &str, n: usize, garbage: usize) -> PathBuf {
    let file = common::generate(
        dir,
        format,
        &[
            "--log-format",
            format,
            "--events",
            &n.to_string(),
            "--days",
            "2",
            "--seed",
            "11",
            "--attacks",
        ],
    );
    let mut text = std::fs::read_to_string(&file).unwrap();
    for k in 0..garbage {
        text.push_str(&format!("{{\"truncated\": {k}\n"));
    }
    std::fs::write(&file, text).unwrap();
    file
}

fn mfascope(s3: &S3Server, args: &[&str]) -> Command {
    let mut cmd = common::bin();
    cmd.args(args);
    s3.env(&mut cmd);
    cmd
}

/// `mfascope ingest --format json FILE --out URL` against `s3`, expecting success.
fn ingest_json(s3: &S3Server, url: &str, file: &str) -> serde_json::Value {
    common::output_json(&mut mfascope(
        s3,
        &[
            "ingest",
            "--no-progress",
            "--format",
            "json",
            "--out",
            url,
            file,
        ],
    ))
}

fn assert_exact(c: &serde_json::Value, produced: u64, garbage: u64) {
    assert_eq!(c["produced"], produced, "{c}");
    assert_eq!(c["rows"], produced, "{c}");
    assert_eq!(c["distinct"], produced, "{c}");
    assert_eq!(c["missing"], 0, "{c}");
    assert_eq!(c["unexpected"], 0, "{c}");
    assert_eq!(c["dead_letters"], garbage, "{c}");
    assert_eq!(c["staged"], serde_json::json!([]), "commit leftovers: {c}");
}

#[test]
fn ingest_to_s3_equals_a_local_ingest_and_readers_take_the_url() {
    let s3 = S3Server::start("auth-logs");
    let dir = tempfile::tempdir().unwrap();
    let file = input(dir.path(), "canonical", 30_000, 3);
    let local = dir.path().join("local");
    let url = s3.url("prod/mfa");
    let f = file.display().to_string();

    let local_summary = common::ingest_json(&[&file], &local);
    let remote_summary = ingest_json(&s3, &url, &f);
    for key in ["records", "events", "deadletter", "ignored"] {
        assert_eq!(remote_summary[key], local_summary[key], "{key}");
    }
    assert_eq!(remote_summary["events"], 30_000);
    let c = s3.check("prod/mfa", &file);
    assert_exact(&c, 30_000, 3);
    assert!(c["findings"].as_u64().unwrap() > 0, "findings stored: {c}");

    // Readers on the URL answer exactly what they answer on the local copy.
    let l = local.display().to_string();
    for args in [vec!["sli", "--bucket", "1d"], vec!["slo"], vec!["detect"]] {
        let on = |data: &str| {
            let mut a = args.clone();
            a.extend(["--data", data, "--format", "json"]);
            common::output_json(&mut mfascope(&s3, &a))
        };
        let (want, got) = (on(&l), on(&url));
        assert_eq!(got, want, "{args:?} on {url} vs {l}");
    }
    // A prefix with nothing in it is reported as such, naming the URL.
    let out = mfascope(&s3, &["sli", "--data", &s3.url("nothing-here")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no events under s3://auth-logs/nothing-here"),
        "{err}"
    );
}

#[test]
fn kill_9_while_committing_to_s3_then_restart_gives_exact_output() {
    let s3 = S3Server::start("crash");
    let dir = tempfile::tempdir().unwrap();
    // Enough input that eight runs killed after 0.25 to 0.95 s cannot finish it: at least
    // four kills must land mid-run whatever the S3 server's speed.
    let file = input(dir.path(), "canonical", 150_000, 4);
    let url = s3.url("out");
    let f = file.display().to_string();
    // The runs' scratch directories (segments staged before upload) go here, to be counted.
    let scratch = dir.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let ingest = || {
        let mut c = mfascope(
            &s3,
            &[
                "ingest",
                "--no-progress",
                "--format",
                "json",
                "--segment-rows",
                "500",
                "--out",
                &url,
                &f,
            ],
        );
        c.env("TMPDIR", &scratch)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    // Kill after 250, 350, 450, … ms (each run resumes where the last committed, so each
    // kill lands further into the input); every restart must take the dead writer's lock at
    // once (same machine, process gone) and resume from the checkpoint.
    let mut killed_mid_run = 0;
    for i in 0..8u64 {
        let mut child = ingest().spawn().unwrap();
        std::thread::sleep(Duration::from_millis(250 + 100 * i));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed_mid_run += 1;
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("locked"), "restart {i} was locked out: {err}");
    }
    assert!(
        killed_mid_run >= 4,
        "only {killed_mid_run} kills landed mid-run"
    );
    let out = ingest().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exact(&s3.check("out", &file), 150_000, 4);
    // Each killed run left its staging directory; the next start removed it.
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "scratch directories left behind: {left:?}");
}

#[test]
fn a_second_writer_is_locked_out_of_a_prefix_until_the_first_stops() {
    let s3 = S3Server::start("locks");
    let dir = tempfile::tempdir().unwrap();
    let file = input(dir.path(), "canonical", 2_000, 0);
    let url = s3.url("shared");
    let f = file.display().to_string();
    let mut first = mfascope(
        &s3,
        &[
            "ingest",
            "--no-progress",
            "--format",
            "json",
            "--follow",
            "--out",
            &url,
            &f,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Wait for the first writer's lease object.
    let t = Instant::now();
    while !s3
        .python("print(s3.get_file_info('locks/shared/_state/lock').type == pafs.FileType.File)")
        .contains("True")
    {
        assert!(t.elapsed() < Duration::from_secs(30), "no lease object");
        std::thread::sleep(Duration::from_millis(200));
    }
    let second = mfascope(&s3, &["ingest", "--no-progress", "--out", &url, &f])
        .output()
        .unwrap();
    assert!(!second.status.success(), "the second writer must not run");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("s3://locks/shared/_state/lock is locked by another mfascope ingest"),
        "{err}"
    );
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(first.wait().unwrap().success());
    // Released on a clean stop: the next writer runs at once and has nothing new to add.
    let again = ingest_json(&s3, &url, &f);
    assert_eq!(again["events"], 0, "{again}");
    assert_exact(&s3.check("shared", &file), 2_000, 0);
}
