//! The store's table format under maintenance: compaction and retention while an independent
//! Delta reader (delta-rs' Python package) and DuckDB (over the snapshot's file list) count
//! rows in a loop — every count is the true count at some commit; `kill -9` at random moments
//! of compaction and of retention — exact afterwards; a legal hold; migration of a store an
//! older mfascope wrote.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{bin, generate, kill_9_at_moments};

/// Where Python is (the venv with deltalake, pyarrow, duckdb).
fn python() -> String {
    std::env::var("MFASCOPE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Run a Python `script` with the store `out` as its argument and parse the JSON it prints.
fn py_json<T: serde::de::DeserializeOwned>(script: &str, out: &Path) -> T {
    let o = Command::new(python())
        .args(["-c", script])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The event ids of the latest table version, read by the deltalake package.
fn table_ids(out: &Path) -> Vec<String> {
    py_json(
        r#"
import json, os, sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1] + "/events").to_pyarrow_table(columns=["event_id"])
print(json.dumps(t.column("event_id").to_pylist()), flush=True)
os._exit(0)  # deltalake's runtime can abort at interpreter teardown ("terminate called …")
"#,
        out,
    )
}

/// `(event_id, time ms, user)` of the canonical records in `input`.
fn input_events(input: &Path) -> Vec<(String, i64, String)> {
    std::fs::read_to_string(input)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let time = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            (
                v["event_id"].as_str().unwrap().to_string(),
                time,
                v["user"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Canonical traffic over two days, dealt round-robin into 16 files ingested one run each: up
/// to 16 small files per hour partition.
fn small_files_store(dir: &Path) -> (PathBuf, PathBuf) {
    let input = generate(
        dir,
        "events",
        &[
            "--log-format",
            "canonical",
            "--events",
            "3000",
            "--days",
            "2",
            "--seed",
            "11",
        ],
    );
    let out = dir.join("out");
    let text = std::fs::read_to_string(&input).unwrap();
    let mut parts = vec![String::new(); 16];
    for (i, line) in text.lines().enumerate() {
        parts[i % 16] += line;
        parts[i % 16].push('\n');
    }
    for (i, part) in parts.iter().enumerate() {
        let path = dir.join(format!("part-{i:02}.ndjson"));
        std::fs::write(&path, part).unwrap();
        let status = bin()
            .args(["ingest", "--no-progress", "--out"])
            .arg(&out)
            .arg(&path)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    (input, out)
}

fn mfascope(args: &[&str], out: &Path) -> serde_json::Value {
    let o = bin()
        .args(args)
        .arg("--data")
        .arg(out)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

const COMPACT: &[&str] = &[
    "compact",
    "--settle",
    "0s",
    "--min-files",
    "2",
    "--vacuum-after",
    "0s",
];

/// Files per hour partition in the latest table version.
fn files_per_partition(out: &Path) -> Vec<usize> {
    py_json(
        r#"
import json, os, sys, collections, pyarrow as pa
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1] + "/events")
adds = pa.table(t.get_add_actions(flatten=True)).to_pylist()
c = collections.Counter((a["partition.dt"], a["partition.hour"]) for a in adds)
print(json.dumps(sorted(c.values())), flush=True)
os._exit(0)
"#,
        out,
    )
}

/// Which events a retention before `cutoff` keeps, holding `user` and `[from, to)`.
fn kept(
    events: &[(String, i64, String)],
    cutoff: i64,
    user: &str,
    range: (i64, i64),
) -> BTreeSet<String> {
    events
        .iter()
        .filter(|(_, t, u)| *t >= cutoff || u == user || (range.0 <= *t && *t < range.1))
        .map(|(id, _, _)| id.clone())
        .collect()
}

fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .timestamp_millis()
}

fn hold_file(dir: &Path, user: &str) -> PathBuf {
    let path = dir.join("hold.toml");
    std::fs::write(
        &path,
        format!("users = [\"{user}\"]\n[[ranges]]\nfrom = \"{HOLD_FROM}\"\nto = \"{HOLD_TO}\"\n"),
    )
    .unwrap();
    path
}

/// `prune` before [`CUTOFF`] under the legal hold `hold`, vacuuming at once.
fn prune_args(hold: &Path) -> [&str; 7] {
    let hold = hold.to_str().unwrap();
    [
        "prune",
        "--before",
        CUTOFF,
        "--hold",
        hold,
        "--vacuum-after",
        "0s",
    ]
}

const HOLD_FROM: &str = "2024-05-01T03:00:00Z";
const HOLD_TO: &str = "2024-05-01T04:30:00Z";
const CUTOFF: &str = "2024-05-01T18:30:00Z";

#[test]
fn readers_count_true_totals_while_compaction_and_retention_run() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = small_files_store(dir.path());
    let events = input_events(&input);
    let user = events[0].2.clone();
    let before = files_per_partition(&out);
    assert!(
        before.iter().max().copied().unwrap_or(0) >= 5,
        "small files per partition: {before:?}"
    );
    let expected = kept(&events, ms(CUTOFF), &user, (ms(HOLD_FROM), ms(HOLD_TO)));
    assert!(expected.len() < events.len() && !expected.is_empty());

    // The readers: delta-rs (Python) and DuckDB over the snapshot's files, in a loop.
    let stop = dir.path().join("stop");
    let reader = r#"
import json, os, sys, duckdb, pyarrow as pa
from deltalake import DeltaTable
out, stop = sys.argv[1], sys.argv[2]
seen = []
superseded = 0
while not os.path.exists(stop) or len(seen) < 4:
    t = DeltaTable(out + "/events")
    try:
        ids = t.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist()
        # The commit's own count: the numRecords of the files it names.
        logged = sum(pa.table(t.get_add_actions(flatten=True)).column("num_records").to_pylist())
        files = t.file_uris()
        n, d = duckdb.sql(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet({files!r})").fetchall()[0]
    except (OSError, duckdb.IOException):
        # prune vacuums at once here (--vacuum-after 0s): a version a later commit replaced
        # may lose its files mid-read, as the store's docs say; read the new one. A file
        # missing from the latest version is a real fault.
        if DeltaTable(out + "/events").version() > t.version():
            superseded += 1
            continue
        raise
    seen.append(["delta", t.version(), len(ids), len(set(ids)), logged])
    seen.append(["duckdb", t.version(), n, d, logged])
print(json.dumps(seen), flush=True)
print(f"{superseded} reads of a superseded version lost files to vacuum", file=sys.stderr)
os._exit(0)
"#;
    let readers = Command::new(python())
        .args(["-c", reader])
        .arg(&out)
        .arg(&stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let compacted = mfascope(COMPACT, &out);
    let hold = hold_file(dir.path(), &user);
    let pruned = mfascope(&prune_args(&hold), &out);
    std::fs::write(&stop, "").unwrap();
    let o = readers.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    let seen: Vec<(String, u64, usize, usize, usize)> = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!(
        "{} reads; compacted {} files into {}; pruned {}",
        seen.len(),
        compacted["files_in"],
        compacted["files_out"],
        pruned["tables"]
    );
    let versions: BTreeSet<u64> = seen.iter().map(|s| s.1).collect();
    eprintln!("versions read: {versions:?}");
    for (reader, version, rows, distinct, logged) in &seen {
        // Each read is one commit whole: its rows are the commit's, each once. Compaction
        // commits keep the total; retention commits (one per partition) only lower it.
        assert_eq!(
            rows, distinct,
            "{reader} at version {version} read a duplicate"
        );
        assert_eq!(
            rows, logged,
            "{reader} at version {version}: rows differ from the commit's"
        );
        assert!(
            *rows >= expected.len() && *rows <= events.len(),
            "{reader} at version {version} read {rows} rows"
        );
    }
    assert!(compacted["files_in"].as_u64().unwrap() > compacted["files_out"].as_u64().unwrap());
    assert_eq!(compacted["rows"].as_u64().unwrap(), events.len() as u64);
    let after = files_per_partition(&out);
    assert!(
        after.iter().all(|&n| n <= 2),
        "files per partition after compaction: {after:?}"
    );

    // Exactly the expired rows are gone; the held ones stay.
    let ids: BTreeSet<String> = table_ids(&out).into_iter().collect();
    assert_eq!(ids, expected);
    let events_report = &pruned["tables"][0];
    assert_eq!(
        events_report["rows_removed"].as_u64().unwrap(),
        (events.len() - expected.len()) as u64,
        "{pruned}"
    );
    let held = events
        .iter()
        .filter(|(_, t, _)| *t < ms(CUTOFF))
        .filter(|(id, _, _)| expected.contains(id))
        .count();
    assert_eq!(events_report["rows_held"].as_u64().unwrap(), held as u64);
    // mfascope's own reader agrees, and time travel still sees the version before retention
    // (its files were vacuumed, so only its log: the count of a version before compaction
    // is not asked for).
    let q = mfascope(
        &["query", "--sql", "SELECT count(*) AS n FROM events"],
        &out,
    );
    assert_eq!(q[0]["n"].as_u64().unwrap(), expected.len() as u64);
}

#[test]
fn kill_9_during_compaction_and_during_retention_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = small_files_store(dir.path());
    let events = input_events(&input);
    let all: BTreeSet<String> = events.iter().map(|(id, _, _)| id.clone()).collect();
    let run = |args: &[&str]| {
        let mut c = bin();
        c.args(args)
            .arg("--data")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let killed = kill_9_at_moments(10, 26, (20, 600), || run(COMPACT));
    assert!(killed > 0, "no compaction was killed mid-run");
    let ids = table_ids(&out);
    assert_eq!(ids.len(), all.len(), "rows after killed compactions");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), all);
    mfascope(COMPACT, &out);
    let ids = table_ids(&out);
    assert_eq!(ids.len(), all.len());

    let user = events[0].2.clone();
    let hold = hold_file(dir.path(), &user);
    let prune = prune_args(&hold);
    // Partitions before the cutoff go whole; those holding held rows are rewritten.
    let killed = kill_9_at_moments(10, 7, (20, 400), || run(&prune));
    eprintln!("{killed} retention runs killed");
    mfascope(&prune, &out);
    let expected = kept(&events, ms(CUTOFF), &user, (ms(HOLD_FROM), ms(HOLD_TO)));
    let ids = table_ids(&out);
    assert_eq!(
        ids.len(),
        expected.len(),
        "rows after killed retention runs"
    );
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    // No file is left that the table does not name (an interrupted job's output is removed).
    let on_disk = walkdir::WalkDir::new(out.join("events"))
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .count();
    let listed: usize = files_per_partition(&out).iter().sum();
    assert_eq!(on_disk, listed);
}

#[test]
fn a_store_written_before_the_table_format_is_refused_until_migrated_once_even_if_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = small_files_store(dir.path());
    let all: BTreeSet<String> = input_events(&input).into_iter().map(|e| e.0).collect();
    // An older mfascope wrote the same files without a log.
    std::fs::remove_dir_all(out.join("events/_delta_log")).unwrap();
    for args in [
        vec![
            "sli".to_string(),
            "--data".into(),
            out.display().to_string(),
        ],
        vec![
            "ingest".to_string(),
            "--out".into(),
            out.display().to_string(),
            input.display().to_string(),
        ],
    ] {
        let o = bin().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} ran on an unmigrated store");
        assert!(
            err.contains("mfascope migrate --data") && err.contains("no Delta log"),
            "{err}"
        );
    }
    // Killed at random moments, a migration leaves no table or the whole one.
    let killed = kill_9_at_moments(5, 3, (5, 150), || {
        let mut c = bin();
        c.args(["migrate", "--data"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    });
    eprintln!("{killed} migrations killed mid-run");
    let first = mfascope(&["migrate"], &out);
    if killed == 5 {
        assert_eq!(first["migrated"][0][0], "events", "{first}");
    }
    let ids = table_ids(&out);
    assert_eq!(ids.len(), all.len());
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), all);
    let again = mfascope(&["migrate"], &out);
    assert_eq!(again["migrated"], serde_json::json!([]), "{again}");
    assert_eq!(table_ids(&out).len(), all.len());
    // Ingesting an input again resumes from its checkpoint: nothing doubles.
    let status = bin()
        .args(["ingest", "--no-progress", "--out"])
        .arg(&out)
        .arg(dir.path().join("part-00.ndjson"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(table_ids(&out).len(), all.len());
}

/// Trickle: an hour of events at 20 per second, followed with `--max-latency` far below the
/// arrival interval (time compressed 50×: a simulated second every 20 ms), so each second is a
/// commit of its own (as far as commits keep up); background compaction keeps the hour's
/// partition at a handful of files, and the row set is exact.
#[test]
fn an_hour_of_trickle_leaves_a_handful_of_files_per_partition() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("trickle.ndjson");
    std::fs::write(&input, "").unwrap();
    let out = dir.path().join("out");
    let child = bin()
        .args([
            "ingest",
            "--follow",
            "--no-progress",
            "--format",
            "json",
            "--max-latency",
            "10ms",
            "--state-every",
            "1s",
            "--maintain-every",
            "1s",
            "--maintain-cpu",
            "1",
            "--compact-settle",
            "0s",
            "--vacuum-after",
            "0s",
            "--out",
        ])
        .arg(&out)
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = ms("2024-05-01T10:00:00Z");
    let mut ids = BTreeSet::new();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    for second in 0..3600i64 {
        let mut chunk = String::new();
        for i in 0..20 {
            let id = format!("t{second}-{i}");
            let time = chrono::DateTime::from_timestamp_millis(start + second * 1000 + i * 50)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            chunk += &format!(
                r#"{{"event_id":"{id}","time":"{time}","source":"canonical","user":"u{}","action":"mfa_verify","factor":"totp","outcome":"success","vendor_event_type":"t"}}"#,
                i % 7
            );
            chunk.push('\n');
            ids.insert(id);
        }
        file.write_all(chunk.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(file);
    // Every event committed, then a few maintenance rounds over the last commits.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while table_ids(&out).len() < ids.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    std::thread::sleep(std::time::Duration::from_secs(4));
    crate::common::terminate(&child);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &report["maintenance"];
    eprintln!("maintenance: {m}");
    let commits = report["segments"].as_u64().unwrap_or_default();
    let files = files_per_partition(&out);
    eprintln!("{commits} commits; files per partition: {files:?}");
    assert!(m["compacted"]["files_in"].as_u64().unwrap() > 100, "{m}");
    // At most: the merged file, fewer than --compact-min-files (8) small ones, and the few
    // the last seconds committed that the ingest's replay list still names.
    assert!(
        files.iter().all(|&n| n <= 12),
        "files per hour partition after compaction: {files:?}"
    );
    let stored = table_ids(&out);
    assert_eq!(stored.len(), ids.len(), "rows");
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), ids);
}

/// The recipe of docs/scale-out.md: Spark with delta-spark (the reference Delta reader) and
/// DuckDB over the version's files read the compacted table — whose replaced small files are
/// still on disk until vacuum — exactly as mfascope does.
#[test]
fn spark_and_duckdb_read_the_compacted_table_as_mfascope_does() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = small_files_store(dir.path());
    let ids: BTreeSet<String> = input_events(&input).into_iter().map(|e| e.0).collect();
    // Compacted, not vacuumed: plain globbing would count every row twice now.
    let compacted = mfascope(&["compact", "--settle", "0s", "--min-files", "2"], &out);
    assert!(compacted["files_in"].as_u64().unwrap() > 0);
    let o = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/common/spark_read.py"
        ))
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spark: serde_json::Value = serde_json::from_slice(
        o.stdout
            .split(|&b| b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .unwrap(),
    )
    .unwrap();
    let sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    let digest = {
        let script =
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.read().encode()).hexdigest())";
        let mut p = Command::new(python())
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut p.stdin.take().unwrap(), sorted.join("\n").as_bytes())
            .unwrap();
        String::from_utf8(p.wait_with_output().unwrap().stdout).unwrap()
    };
    assert_eq!(spark["rows"].as_u64().unwrap(), ids.len() as u64, "{spark}");
    assert_eq!(spark["distinct"], spark["rows"]);
    assert_eq!(spark["ids_sha256"].as_str().unwrap(), digest.trim());
    let ours = mfascope(
        &[
            "query",
            "--sql",
            "SELECT count(*) FILTER (WHERE outcome = 'success') AS successes, count(*) AS attempts, \
             max(latency_ms) AS max_latency FROM events WHERE action = 'mfa_verify'",
        ],
        &out,
    );
    assert_eq!(
        ours[0]["successes"], spark["successes"],
        "{ours} vs {spark}"
    );
    assert_eq!(ours[0]["attempts"], spark["attempts"]);
    assert_eq!(ours[0]["max_latency"], spark["max_latency"]);
    // DuckDB over the version's file list (deltalake gives it), and plain globbing's double count.
    let script = r#"
import json, os, sys, duckdb
from deltalake import DeltaTable
files = DeltaTable(sys.argv[1] + "/events").file_uris()
table = duckdb.sql(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet({files!r})").fetchall()[0]
glob = duckdb.sql(f"SELECT count(*) FROM read_parquet('{sys.argv[1]}/events/**/*.parquet')").fetchall()[0][0]
print(json.dumps({"rows": table[0], "distinct": table[1], "glob": glob}), flush=True)
os._exit(0)
"#;
    let duck: serde_json::Value = py_json(script, &out);
    assert_eq!(duck["rows"].as_u64().unwrap(), ids.len() as u64, "{duck}");
    assert_eq!(duck["distinct"], duck["rows"]);
    assert_eq!(
        duck["glob"].as_u64().unwrap(),
        2 * ids.len() as u64,
        "{duck}"
    );
}

/// Findings are a Delta table too: delta-rs reads exactly the files on disk after an ingest
/// (nothing compacts findings), a findings file written but never committed (a crash between
/// the two) is read by no one, and retention removes through the log exactly the files with no
/// held finding, leaving them on disk for readers of older versions until vacuum.
#[test]
fn findings_are_a_delta_table_that_retention_expires_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // Three runs over three days: a findings file each.
    let out = dir.path().join("out");
    for (seed, start) in [
        ("5", "2024-05-01T00:00:00Z"),
        ("6", "2024-05-03T00:00:00Z"),
        ("7", "2024-05-05T00:00:00Z"),
    ] {
        let input = generate(
            dir.path(),
            &format!("events-{seed}"),
            &[
                "--log-format",
                "canonical",
                "--events",
                "4000",
                "--days",
                "1",
                "--start",
                start,
                "--seed",
                seed,
                "--attacks",
            ],
        );
        crate::common::ingest_json(&[&input], &out);
    }
    assert!(out.join("findings/_delta_log").is_dir());
    let read = r#"
import glob, json, os, sys, pyarrow.parquet as pq
from deltalake import DeltaTable
out = sys.argv[1]
t = DeltaTable(out + "/findings")
files = sorted(os.path.basename(u) for u in t.file_uris())
users = {f: sorted({u for u in pq.read_table(out + "/findings/" + f).column("user").to_pylist() if u})
         for f in files}
ids = sorted(t.to_pyarrow_table(columns=["id"]).column("id").to_pylist())
on_disk = sorted(os.path.basename(p) for p in glob.glob(out + "/findings/*.parquet"))
print(json.dumps({"files": files, "users": users, "ids": ids, "on_disk": on_disk}), flush=True)
os._exit(0)
"#;
    #[derive(serde::Deserialize)]
    struct Findings {
        files: Vec<String>,
        users: std::collections::BTreeMap<String, Vec<String>>,
        ids: Vec<String>,
        on_disk: Vec<String>,
    }
    let before: Findings = py_json(read, &out);
    assert!(
        before.files.len() >= 2,
        "findings files: {:?}",
        before.files
    );
    assert_eq!(
        before.files, before.on_disk,
        "the table names every file written"
    );
    let distinct: BTreeSet<&String> = before.ids.iter().collect();
    assert_eq!(distinct.len(), before.ids.len(), "a finding stored twice");

    // A findings file that never reached the log (a crash between writing and committing it)
    // is not read by mfascope's readers (what delivery offers its receivers).
    let stored = || {
        let location = mfascope::sink::Location::Local(out.clone());
        let mut read = std::collections::HashSet::new();
        mfascope::detect::finding::read_stored_findings(&location, &mut read)
            .unwrap()
            .into_iter()
            .map(|f| f.id)
            .collect::<Vec<_>>()
    };
    let mut ids = stored();
    ids.sort();
    assert_eq!(ids, before.ids);
    let stray = out.join("findings/findings-2099-stray.parquet");
    std::fs::copy(out.join("findings").join(&before.files[0]), &stray).unwrap();
    assert_eq!(
        stored().len(),
        before.ids.len(),
        "a file outside the log was read"
    );
    std::fs::remove_file(&stray).unwrap();

    // Retention far in the future with one user held: exactly the files without that user's
    // findings leave the table, and stay on disk until vacuum.
    let held = before.users[&before.files[0]][0].clone();
    let hold = dir.path().join("hold-findings.toml");
    std::fs::write(&hold, format!("users = [\"{held}\"]\n")).unwrap();
    let pruned = mfascope(
        &[
            "prune",
            "--before",
            "2099-12-31T00:00:00Z",
            "--hold",
            hold.to_str().unwrap(),
        ],
        &out,
    );
    let kept: Vec<String> = before
        .files
        .iter()
        .filter(|f| before.users[*f].contains(&held))
        .cloned()
        .collect();
    assert!(!kept.is_empty() && kept.len() < before.files.len());
    let after: Findings = py_json(read, &out);
    assert_eq!(after.files, kept, "{pruned}");
    assert_eq!(
        after.on_disk, before.on_disk,
        "removed files wait for vacuum"
    );
    let findings_report = pruned["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "findings")
        .unwrap();
    assert_eq!(
        findings_report["files_removed"].as_u64().unwrap(),
        (before.files.len() - kept.len()) as u64
    );
}
