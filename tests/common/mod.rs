//! Helpers shared by the CLI integration tests: the binary, JSON runs, generated inputs.
#![allow(dead_code)]

pub mod s3;
pub mod tmux;
pub mod verifier;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Revocations with known exposure (session and device), appended to generated traffic.
pub const REVOKES: &str = r#"{"event_id":"r1","time":"2024-05-01T10:00:00Z","source":"canonical","user":"u1","action":"session_revoke","factor":"none","outcome":"success","session_id":"S1","vendor_event_type":"t"}
{"event_id":"u1","time":"2024-05-01T10:02:00Z","source":"canonical","user":"u1","action":"session_start","factor":"none","outcome":"success","session_id":"S1","vendor_event_type":"t"}
{"event_id":"r2","time":"2024-05-01T11:00:00Z","source":"canonical","user":"u2","action":"device_revoke","factor":"none","outcome":"success","device_id":"D2","vendor_event_type":"t"}
{"event_id":"u2a","time":"2024-05-01T11:03:00Z","source":"canonical","user":"u2","action":"mfa_verify","factor":"push","outcome":"success","device_id":"D2","vendor_event_type":"t"}
{"event_id":"u2b","time":"2024-05-01T11:09:00Z","source":"canonical","user":"u2","action":"mfa_verify","factor":"push","outcome":"success","device_id":"D2","vendor_event_type":"t"}
{"event_id":"r3","time":"2024-05-01T12:00:00Z","source":"canonical","user":"u3","action":"session_revoke","factor":"none","outcome":"success","session_id":"S3","vendor_event_type":"t"}
{"event_id":"u3","time":"2024-05-01T12:10:00Z","source":"canonical","user":"u3","action":"mfa_verify","factor":"totp","outcome":"failure","session_id":"S3","vendor_event_type":"t"}
{"event_id":"r4","time":"2024-05-01T13:00:00Z","source":"canonical","user":"u4","action":"device_revoke","factor":"none","outcome":"success","device_id":"D4","vendor_event_type":"t"}
{"event_id":"u4","time":"2024-05-01T13:06:00Z","source":"canonical","user":"u4","action":"primary_auth","factor":"password","outcome":"success","device_id":"D4","vendor_event_type":"t"}
"#;

/// The `mfascope` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfascope"))
}

/// Run with `--format json` (unless `args` choose a format); asserts the exit code and parses
/// stdout.
pub fn run_json_code(args: &[&str], code: i32) -> serde_json::Value {
    let mut cmd = bin();
    cmd.args(args);
    if !args.contains(&"--format") {
        cmd.args(["--format", "json"]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{:?}: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run with `--format json`, expecting success.
pub fn run_json(args: &[&str]) -> serde_json::Value {
    run_json_code(args, 0)
}

/// `mfascope generate` into `dir/NAME.ndjson` with extra arguments.
pub fn generate(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.ndjson"));
    let status = bin()
        .arg("generate")
        .args(args)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "generate {args:?}");
    out
}

/// The outage sample: 300,000 canonical events over three days with probes (seed 7) and a
/// 20-minute push outage from 2024-05-02T14:00Z, in `dir/outage.ndjson`.
pub fn outage_sample(dir: &Path) -> PathBuf {
    generate(
        dir,
        "outage",
        &[
            "--log-format",
            "canonical",
            "--events",
            "300000",
            "--days",
            "3",
            "--seed",
            "7",
            "--probes",
            "--incident",
            "push-outage@2024-05-02T14:00:00Z/20m",
        ],
    )
}

/// `mfascope ingest --format json` of `inputs` into `out`; returns the summary.
pub fn ingest_json(inputs: &[&Path], out: &Path) -> serde_json::Value {
    let mut args = vec!["ingest".to_string(), "--no-progress".into(), "--out".into()];
    args.push(out.display().to_string());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_json(&args)
}

/// Every `--log-format` of a registered vendor (and the canonical one), as `generate` names
/// them, in `LogFormat` declaration order.
pub static VENDORS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut formats: Vec<_> = mfascope::normalize::vendor::VENDORS
        .iter()
        .map(|v| v.format)
        .collect();
    formats.sort_by_key(|f| *f as u8);
    formats
        .into_iter()
        .map(mfascope::normalize::LogFormat::as_str)
        .collect()
});

/// Stdout of a Python script run on `args` by the test peers' interpreter (`MFASCOPE_PYTHON`,
/// with pyarrow and duckdb: scripts/test sets it up).
pub fn py(script: &str, args: &[&Path]) -> Vec<u8> {
    output_ok(Command::new(s3::python()).args(["-c", script]).args(args))
}

/// Run `cmd`, assert it succeeded (showing its stderr and stdout otherwise) and return its
/// stdout.
pub fn output_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

/// [`output_ok`], its stdout parsed as JSON.
pub fn output_json(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_slice(&output_ok(cmd)).unwrap()
}

/// HTTP GET `path` from `addr` (raw response: status line, headers, body).
pub fn get(addr: &str, path: &str) -> String {
    try_get(addr, path).unwrap_or_else(|| panic!("GET http://{addr}{path}: no answer"))
}

/// [`get`], or `None` when nothing answers (the server has exited).
pub fn try_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The value of an exposition line `series VALUE` (series with its labels, exactly).
pub fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Read an ingest's stderr up to its `metrics: http://ADDR/metrics` line; returns ADDR and the
/// rest of the stream.
pub fn metrics_address(
    stderr: std::process::ChildStderr,
) -> (String, std::io::BufReader<std::process::ChildStderr>) {
    use std::io::BufRead;
    let mut stderr = std::io::BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no metrics address"
        );
        if let Some(rest) = line.trim().strip_prefix("metrics: http://") {
            return (rest.trim_end_matches("/metrics").to_string(), stderr);
        }
    }
}

/// Append `lines` to `path` (created when missing).
pub fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// A canonical `mfa_verify` record stamped now.
pub fn verify_line(id: &str, user: &str, factor: &str, outcome: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!(
        r#"{{"event_id":"{id}","time":"{now}","source":"canonical","user":"{user}","action":"mfa_verify","factor":"{factor}","outcome":"{outcome}","vendor_event_type":"t"}}"#
    )
}

/// The dashboard tests' fixed data: 20,000 canonical events over two days with attacks
/// (seed 3), ingested into `dir/out`; returns that directory.
pub fn dashboard_data(dir: &Path) -> PathBuf {
    let input = generate(
        dir,
        "events",
        &[
            "--log-format",
            "canonical",
            "--events",
            "20000",
            "--days",
            "2",
            "--seed",
            "3",
            "--attacks",
        ],
    );
    let out = dir.join("out");
    ingest_json(&[&input], &out);
    out
}

/// Spawn `run()` `times` times and `kill -9` each run `base_ms + (seeded xorshift % spread_ms)`
/// after its start (the moments are printed); returns how many runs were killed mid-run.
pub fn kill_9_at_moments(
    times: usize,
    seed: u64,
    (base_ms, spread_ms): (u64, u64),
    mut run: impl FnMut() -> Command,
) -> usize {
    let mut rng = seed.max(1);
    let mut killed = 0;
    for _ in 0..times {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let after = std::time::Duration::from_millis(base_ms + rng % spread_ms.max(1));
        eprintln!("kill -9 after {after:?}");
        let mut child = run().spawn().unwrap();
        std::thread::sleep(after);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    eprintln!("{killed} of {times} runs killed mid-run");
    killed
}

/// The findings stored under `out/findings/`, read back with pyarrow: `(id, rule_name,
/// evidence)` rows, repeats kept.
pub fn stored_findings(out: &Path) -> Vec<(String, String, Vec<String>)> {
    let script = r#"
import json, sys, glob, pyarrow as pa, pyarrow.parquet as pq
files = glob.glob(sys.argv[1] + "/findings/*.parquet")
rows = []
if files:
    t = pa.concat_tables([pq.read_table(f) for f in files])
    rows = [[r["id"], r["rule_name"] or r["rule_id"], r["evidence"]] for r in t.to_pylist()]
print(json.dumps(rows))
"#;
    serde_json::from_slice::<Vec<(String, String, Vec<String>)>>(&py(script, &[out])).unwrap()
}

/// Finding ids of `mfascope detect` over `out`.
pub fn detect_ids(out: &Path) -> BTreeSet<String> {
    let report = run_json(&[
        "detect",
        "--data",
        &out.display().to_string(),
        "--format",
        "json",
    ]);
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every stored finding id once, and the set equal to `detect`'s over the same store.
pub fn assert_stored_once_and_as_detect(out: &Path) -> Vec<(String, String, Vec<String>)> {
    let rows = stored_findings(out);
    let ids: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    let unique: BTreeSet<String> = ids.iter().map(|s| (*s).clone()).collect();
    assert_eq!(ids.len(), unique.len(), "a finding stored twice: {ids:?}");
    let detect = detect_ids(out);
    let only_live: Vec<_> = unique.difference(&detect).collect();
    let only_detect: Vec<_> = detect.difference(&unique).collect();
    assert!(
        only_live.is_empty() && only_detect.is_empty(),
        "live findings differ from detect's: {} only live {only_live:?}, {} only detect \
         {only_detect:?}",
        only_live.len(),
        only_detect.len()
    );
    rows
}

/// A canonical push verification of `user`@acme.example at minute `minute` of 2024-05-01
/// 10:00Z.
pub fn push(user: &str, id: &str, minute: u32, outcome: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","time":"2024-05-01T10:{minute:02}:00.000Z","source":"canonical","user":"{user}@acme.example","action":"mfa_verify","factor":"push","outcome":"{outcome}","vendor_event_type":"t"}}"#
    )
}

/// A webhook receiver (tests/common/receiver.py) on 127.0.0.1: records requests in
/// `dir/received.jsonl`, verifies `X-Mfascope-Signature` with the key in `dir/key`, and
/// answers 503 while `dir/down` exists. Killed on drop.
pub struct Receiver {
    child: std::process::Child,
    /// Its base URL.
    pub url: String,
    dir: PathBuf,
}

impl Receiver {
    /// Start one in `dir`.
    pub fn start(dir: &Path) -> Receiver {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/receiver.py");
        let mut child = Command::new(s3::python())
            .arg(script)
            .args([
                dir.join("received.jsonl"),
                dir.join("key"),
                dir.join("down"),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Receiver {
            child,
            url: format!("http://127.0.0.1:{}", line.trim()),
            dir: dir.to_path_buf(),
        }
    }

    /// Answer 503 (`true`) or accept (`false`).
    pub fn set_down(&self, down: bool) {
        let flag = self.dir.join("down");
        if down {
            std::fs::write(flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// Every request accepted so far.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM to `child` (an ingest commits what it read and prints its report).
pub fn terminate(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// An id comparison (`want`, `rows`, `distinct`, `missing`, `unexpected`, as the tests'
/// pyarrow scripts print it) is exact: every wanted id stored once, nothing else.
pub fn assert_exact_ids(c: &serde_json::Value) {
    assert!(c["want"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(c["rows"], c["want"], "{c}");
    assert_eq!(c["distinct"], c["want"], "{c}");
    assert_eq!(
        (&c["missing"], &c["unexpected"]),
        (&0.into(), &0.into()),
        "{c}"
    );
}

/// Wait for `child` (its stdout and stderr piped) to exit and collect its output; kills it and
/// fails the test if it runs longer than `limit`.
pub fn wait_output(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::io::Read;
    fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    }
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap();
            panic!(
                "still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Fails when any of `secrets` appears in an output's events (every column, read back by
/// pyarrow, so compression cannot hide it) or dead letters.
pub fn assert_no_secret_in_tree(out: &Path, secrets: &[String]) {
    let text = py(
        "import glob, json, sys, pyarrow.dataset as ds\n\
         t = ds.dataset(sys.argv[1] + '/events', format='parquet', partitioning='hive').to_table()\n\
         print(json.dumps(t.to_pylist(), default=str))\n\
         for f in glob.glob(sys.argv[1] + '/deadletter/*.ndjson'):\n    print(open(f).read())",
        &[out],
    );
    let text = String::from_utf8_lossy(&text);
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret reached {}",
            out.display()
        );
    }
}
