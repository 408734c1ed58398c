//! Kafka ingest against Apache Kafka on 127.0.0.1 (one node started by `scripts/test`, which
//! sets `MFASCOPE_KAFKA`; tests needing their own start one, or a cluster of three, with
//! `scripts/kafka-broker`), with an independent producer (confluent-kafka,
//! `scripts/kafka-produce`) and an independent Parquet reader (pyarrow): the output holds
//! exactly the produced events — none missing, none duplicated — across kill -9 of consumers
//! and brokers, a broker restart, rebalances under both group protocols, over SASL/SCRAM and
//! TLS, and with offsets the broker deleted (reported, never invented).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

fn broker() -> String {
    std::env::var("MFASCOPE_KAFKA").expect(
        "MFASCOPE_KAFKA is not set: run scripts/test (it starts the broker), or \
         `export MFASCOPE_KAFKA=$(scripts/kafka-broker start)`",
    )
}

fn python() -> String {
    std::env::var("MFASCOPE_PYTHON").expect(
        "MFASCOPE_PYTHON is not set: run scripts/test (it installs pyarrow, confluent-kafka)",
    )
}

/// The base port of a bootstrap list (the first node's), naming the broker to
/// `scripts/kafka-broker`.
fn port(addr: &str) -> &str {
    addr.split(',').next().unwrap().rsplit(':').next().unwrap()
}

/// A fresh topic with `partitions` on the broker at `addr`.
fn topic(addr: &str, prefix: &str, partitions: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("{prefix}-{}-{nanos}", std::process::id());
    let out = Command::new("scripts/kafka-broker")
        .args(["topic", &name, &partitions.to_string()])
        .env("MFASCOPE_KAFKA_PORT", port(addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "creating topic {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

/// Produce `file`'s lines to `topic` (at `rate` messages/s; 0 = as fast as possible).
fn produce(addr: &str, topic: &str, file: &Path, rate: u32) -> Producer {
    Producer(
        Command::new(python())
            .arg("scripts/kafka-produce")
            .args([addr, topic])
            .arg(file)
            .arg(rate.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A running `scripts/kafka-produce`, killed if the test ends without waiting for it (a failed
/// assertion), so it does not go on retrying against a stopped broker.
struct Producer(Child);
impl Producer {
    fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.0.try_wait()
    }
}
impl Drop for Producer {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_ok(mut producer: Producer, what: &str) {
    let status = producer.0.wait().unwrap();
    assert!(status.success(), "{what} failed: {status}");
}

/// `mfascope ingest` from `topic` in `group` (tests use the unique topic name, so no member of
/// an earlier run is in the group) into `out`.
fn ingest(
    addr: &str,
    topic: &str,
    group: &str,
    out: impl AsRef<std::ffi::OsStr>,
    exit_at_end: bool,
) -> Command {
    let mut cmd = common::bin();
    cmd.args([
        "ingest",
        "--no-progress",
        "--format",
        "json",
        "--max-latency",
        "200ms",
    ])
    .args(["--kafka", addr, "--topic", topic, "--group", group, "--out"])
    .arg(out)
    .env("RUST_LOG", "warn");
    if exit_at_end {
        cmd.arg("--exit-at-end");
    }
    cmd
}

/// Generated canonical events plus `garbage` lines that must become dead letters.
fn events(dir: &Path, n: usize, garbage: usize) -> PathBuf {
    let file = common::generate(
        dir,
        "events",
        &[
            "--log-format",
            "canonical",
            "--events",
            &n.to_string(),
            "--days",
            "1",
            "--seed",
            "7",
        ],
    );
    let mut text = std::fs::read_to_string(&file).unwrap();
    for k in 0..garbage {
        text.push_str(&format!("not a record {k} {{\n"));
    }
    std::fs::write(&file, text).unwrap();
    file
}

/// `file`'s first `n` lines and the rest, as two files beside it (produced at different times).
fn split(file: &Path, n: usize) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = lines.split_at(n);
    let (first, second) = (
        file.with_extension("a.ndjson"),
        file.with_extension("b.ndjson"),
    );
    std::fs::write(&first, a.join("\n") + "\n").unwrap();
    std::fs::write(&second, b.join("\n") + "\n").unwrap();
    (first, second)
}

/// Compare the Parquet output with the produced file, by event id (pyarrow).
fn check(out: &Path, produced: &Path) -> serde_json::Value {
    let script = r#"
import json, os, sys, glob, pyarrow.dataset as ds
out, produced = sys.argv[1], sys.argv[2]
ids = []
for line in open(produced):
    try:
        ids.append(json.loads(line)["event_id"])
    except ValueError:
        pass
t = ds.dataset(out + "/events", format="parquet", partitioning="hive").to_table(columns=["event_id"])
got = t.column("event_id").to_pylist()
dead = sum(1 for f in glob.glob(out + "/deadletter/*.ndjson") for _ in open(f))
print(json.dumps({"produced": len(ids), "rows": len(got), "distinct": len(set(got)),
                  "missing": len(set(ids) - set(got)), "unexpected": len(set(got) - set(ids)),
                  "dead_letters": dead}))
"#;
    common::output_json(
        Command::new(python())
            .args(["-c", script])
            .arg(out)
            .arg(produced),
    )
}

fn assert_exact(c: &serde_json::Value, produced: u64, garbage: u64) {
    assert_eq!(c["produced"], produced, "{c}");
    assert_eq!(c["rows"], produced, "{c}");
    assert_eq!(c["distinct"], produced, "{c}");
    assert_eq!(c["missing"], 0, "{c}");
    assert_eq!(c["unexpected"], 0, "{c}");
    assert_eq!(c["dead_letters"], garbage, "{c}");
}

/// Rows committed so far (pyarrow), for waiting on a running ingest.
fn rows(out: &Path) -> u64 {
    if !out.join("events").exists() {
        return 0;
    }
    let script = "import sys, pyarrow.dataset as ds; print(ds.dataset(sys.argv[1] + '/events', format='parquet', partitioning='hive').count_rows())";
    let o = Command::new(python())
        .args(["-c", script])
        .arg(out)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn wait_for_rows(out: &Path, n: u64, limit: Duration) {
    let t = Instant::now();
    while rows(out) < n {
        assert!(
            t.elapsed() < limit,
            "only {} of {n} rows after {limit:?}",
            rows(out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A running ingest, killed if the test ends without stopping it (a failed assertion).
struct Running(Option<Child>);
impl Running {
    fn spawn(mut cmd: Command) -> Running {
        Running(Some(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        ))
    }
    /// `cmd` with `--metrics-listen` on a free port: the running ingest, its metrics address
    /// and the rest of its stderr (kept open while it runs).
    fn spawn_with_metrics(mut cmd: Command) -> (Running, String, impl std::io::Read) {
        cmd.args(["--metrics-listen", "127.0.0.1:0"]);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (metrics, stderr) = common::metrics_address(child.stderr.take().unwrap());
        (Running(Some(child)), metrics, stderr)
    }
    fn take(&mut self) -> Child {
        self.0.take().unwrap()
    }
}
impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait for an ingest to exit by itself (`--exit-at-end`) and return its summary.
fn finish_within(running: &mut Running, limit: Duration) -> serde_json::Value {
    let t = Instant::now();
    let c = running.0.as_mut().unwrap();
    while c.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < limit,
            "ingest --exit-at-end still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = running.take().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Stop a running ingest the way an operator does (SIGTERM) and return its summary.
fn terminate(child: Child) -> serde_json::Value {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A small deterministic pseudo-random sequence (kill timing).
struct Lcg(u64);
impl Lcg {
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Duration::from_millis(lo + (self.0 >> 33) % (hi - lo))
    }
}

#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 200_000, 5);
    let topic = topic(&addr, "kill9", 4);
    let out = dir.path().join("out");
    // ~65 s of production; a kill every 1–6 s, so at least 10 land while it produces.
    let mut producer = Some(produce(&addr, &topic, &file, 3_000));
    let mut rng = Lcg(std::process::id() as u64);
    let (mut kills, mut while_producing) = (0, 0);
    while producer.is_some() || kills < 12 {
        let mut child = Running::spawn(ingest(&addr, &topic, &topic, &out, false));
        std::thread::sleep(rng.millis(1_000, 6_000));
        let mut child = child.take();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        match producer.as_mut().map(|p| p.try_wait().unwrap()) {
            Some(None) => while_producing += 1,
            Some(Some(_)) => wait_ok(producer.take().unwrap(), "producer"),
            None => {}
        }
    }
    assert!(
        while_producing >= 10,
        "{while_producing} kills while producing"
    );
    let mut last = Running::spawn(ingest(&addr, &topic, &topic, &out, true));
    let summary = finish_within(&mut last, Duration::from_secs(240));
    assert_eq!(
        summary["records"].as_u64().unwrap(),
        summary["events"].as_u64().unwrap() + summary["deadletter"].as_u64().unwrap(),
        "{summary}"
    );
    assert_exact(&check(&out, &file), 200_000, 5);
}

/// A private broker (one node, or a cluster of three) on another base port: restarting or
/// killing the shared one would disturb other tests. Stopped (data deleted) when dropped.
struct PrivateBroker(String);
impl PrivateBroker {
    fn run(args: &[&str], port: &str) -> String {
        let out = Command::new("scripts/kafka-broker")
            .args(args)
            .env("MFASCOPE_KAFKA_PORT", port)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kafka-broker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("scripts/kafka-broker")
            .arg("stop")
            .env("MFASCOPE_KAFKA_PORT", &self.0)
            .status();
    }
}

#[test]
fn a_broker_restart_mid_stream_is_recovered_by_itself() {
    let _shared = broker(); // the suite's broker must be up; this test runs its own
    let port = "19093";
    let broker = PrivateBroker(port.into());
    let addr = PrivateBroker::run(&["start"], port);
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 40_000, 0);
    let (first, second) = split(&file, 20_000);
    let topic = topic(&addr, "restart", 2);
    let out = dir.path().join("out");
    wait_ok(produce(&addr, &topic, &first, 0), "producer");
    let mut child = Running::spawn(ingest(&addr, &topic, &topic, &out, false));
    wait_for_rows(&out, 20_000, Duration::from_secs(120));
    PrivateBroker::run(&["halt"], port);
    std::thread::sleep(Duration::from_secs(3));
    PrivateBroker::run(&["start"], port);
    wait_ok(
        produce(&addr, &topic, &second, 0),
        "producer after the restart",
    );
    wait_for_rows(&out, 40_000, Duration::from_secs(180));
    let summary = terminate(child.take());
    assert_eq!(summary["events"], 40_000, "{summary}");
    assert_exact(&check(&out, &file), 40_000, 0);
    drop(broker);
}

/// Two members share the partitions; one is killed with -9 mid-stream and the survivor takes
/// its partitions over once the dead member's session expires (6 s), with no restart, and the
/// output stays exact.
#[test]
fn two_instances_share_partitions_and_the_survivor_takes_over_from_a_killed_one() {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 100_000, 0);
    let (head, rest) = split(&file, 70_000);
    let topic = topic(&addr, "group", 4);
    let out = dir.path().join("out");
    let producer = produce(&addr, &topic, &head, 5_000);
    let mut a = Running::spawn(ingest(&addr, &topic, &topic, &out, false));
    let (mut b, metrics, _stderr) =
        Running::spawn_with_metrics(ingest(&addr, &topic, &topic, &out, false));
    // Both members hold partitions, then one is killed mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(1..4).contains(&owned(&common::get(&metrics, "/metrics"), &topic, 4)) {
        assert!(
            Instant::now() < deadline,
            "the two members did not share the partitions within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut killed = a.take();
    killed.kill().unwrap(); // SIGKILL, in the middle of the stream
    killed.wait().unwrap();
    let killed_at = Instant::now();
    while owned(&common::get(&metrics, "/metrics"), &topic, 4) < 4 {
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "the survivor did not take the killed member's partitions over"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("the survivor took over after {:?}", killed_at.elapsed());
    wait_ok(producer, "producer");
    wait_ok(produce(&addr, &topic, &rest, 5_000), "producer of the rest");
    wait_for_rows(&out, 100_000, Duration::from_secs(180));
    let summary = terminate(b.take());
    let consumed = messages(&summary);
    assert!(
        consumed > 0 && consumed < 100_000,
        "the killed instance had committed part of the stream: {summary}"
    );
    assert!(
        summary["kafka"]["assignments"].as_u64().unwrap() >= 2,
        "{summary}"
    );
    assert_exact(&check(&out, &file), 100_000, 0);
}

/// Partitions of `topic` (0..n) a member's metrics page shows it holding now.
fn owned(page: &str, topic: &str, n: u32) -> usize {
    (0..n)
        .filter(|p| {
            common::value(
                page,
                &format!("mfascope_kafka_assigned{{topic=\"{topic}\",partition=\"{p}\"}}"),
            ) == Some(1.0)
        })
        .count()
}

/// Messages a member's summary says it consumed.
fn messages(summary: &serde_json::Value) -> u64 {
    summary["kafka"]["partitions"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["messages"].as_u64().unwrap())
        .sum()
}

/// The exactly-once effect holds on object storage too (moto S3 on 127.0.0.1): partition state
/// leases are taken over at once from killed instances on this machine, staged uploads of an
/// interrupted commit are rolled forward or discarded, and `--exit-at-end` reads the
/// checkpoints from the bucket.
#[test]
fn kafka_into_s3_survives_kill_9_exactly() {
    let addr = broker();
    let s3 = common::s3::S3Server::start("kafka-out");
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 30_000, 2);
    let topic = topic(&addr, "s3", 2);
    let url = s3.url("stream");
    let ingest_s3 = |exit_at_end| {
        let mut cmd = ingest(&addr, &topic, &topic, &url, exit_at_end);
        s3.env(&mut cmd);
        cmd
    };
    let mut producer = Some(produce(&addr, &topic, &file, 3_000));
    let mut rng = Lcg(std::process::id() as u64 ^ 0x5eed);
    let mut kills = 0;
    while producer.is_some() || kills < 3 {
        let mut child = Running::spawn(ingest_s3(false));
        std::thread::sleep(rng.millis(1_500, 4_000));
        let mut child = child.take();
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if let Some(Some(_)) = producer.as_mut().map(|p| p.try_wait().unwrap()) {
            wait_ok(producer.take().unwrap(), "producer");
        }
    }
    let mut last = Running::spawn(ingest_s3(true));
    let summary = finish_within(&mut last, Duration::from_secs(180));
    assert_eq!(
        summary["records"].as_u64().unwrap(),
        summary["events"].as_u64().unwrap() + summary["deadletter"].as_u64().unwrap(),
        "{summary}"
    );
    let c = s3.check("stream", &file);
    assert_exact(&c, 30_000, 2);
    assert_eq!(c["staged"], serde_json::json!([]), "commit leftovers: {c}");
}

/// `--metrics-listen` with `--kafka`: a real scrape shows per-partition messages, committed
/// offsets and lag, and offset commits, agreeing with what was produced.
#[test]
fn kafka_consumer_metrics_are_scraped_while_consuming() {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 3_000, 0);
    let topic = topic(&addr, "metrics", 2);
    wait_ok(produce(&addr, &topic, &file, 0), "producer");
    let (mut child, metrics, _stderr) =
        Running::spawn_with_metrics(ingest(&addr, &topic, &topic, dir.path().join("out"), false));
    let series = |p: u32, name: &str| format!("{name}{{topic=\"{topic}\",partition=\"{p}\"}}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let page = loop {
        let page = common::get(&metrics, "/metrics");
        let total: f64 = (0..2)
            .filter_map(|p| common::value(&page, &series(p, "mfascope_kafka_messages_total")))
            .sum();
        let committed: f64 = (0..2)
            .filter_map(|p| common::value(&page, &series(p, "mfascope_kafka_committed_offset")))
            .sum();
        let lags: Vec<f64> = (0..2)
            .filter_map(|p| common::value(&page, &series(p, "mfascope_kafka_consumer_lag")))
            .collect();
        if total == 3_000.0 && committed == 3_000.0 && lags == [0.0, 0.0] {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed 3000 consumed and committed with lag 0:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        common::value(&page, "mfascope_kafka_offset_commits_total").unwrap() >= 1.0,
        "{page}"
    );
    assert_eq!(
        common::value(&page, "mfascope_kafka_assignments_total"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        common::value(&page, "mfascope_ingest_events_total"),
        Some(3_000.0)
    );
    let summary = terminate(child.take());
    assert_eq!(summary["events"], 3_000, "{summary}");
}

/// The live dashboard consumes Kafka in-process (a real terminal, tmux): the status bar names
/// the topic and shows every event and lag 0; on quit the ingest commits exactly what was
/// produced (dead letters included).
#[test]
fn the_dashboard_consumes_kafka_live_and_commits_exactly_on_quit() {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 3_000, 2);
    let topic = topic(&addr, "dashboard", 2);
    wait_ok(produce(&addr, &topic, &file, 0), "producer");
    let command = format!(
        "NO_COLOR=1 {} dashboard --data out --kafka {addr} --topic {topic} --group {topic} \
         --view debug",
        env!("CARGO_BIN_EXE_mfascope")
    );
    let t = common::tmux::Tmux::start(dir.path(), &command, (160, 48));
    t.wait("3,000 events with lag 0", |s| {
        s.contains(&format!("kafka {topic}")) && s.contains("3,000 events") && s.contains("lag 0")
    });
    t.keys(&["q"]);
    t.wait_for("dashboard exited with 0");
    assert_exact(&check(&dir.path().join("out"), &file), 3_000, 2);
}

#[test]
fn the_verifier_produces_its_events_to_kafka_exactly() {
    let addr = broker();
    let t = topic(&addr, "verifier", 2);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("verifier.ndjson");
    let v = common::verifier::Verifier::start(
        &d.join("state"),
        &[
            "--events-out",
            file.to_str().unwrap(),
            "--kafka",
            &addr,
            "--topic",
            &t,
            "--push-timeout",
            "1s",
        ],
    );
    let config = v.probe_config(&d.join("probe.toml"), "", "");
    let probe = common::bin()
        .args(["probe", "--target", &v.url(), "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        probe.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&probe.stdout)
    );
    let (status, log) = v.stop();
    assert!(status.success(), "{log}");
    let out = d.join("out");
    let summary = common::output_json(&mut ingest(&addr, &t, &t, &out, true));
    let n = std::fs::read_to_string(&file).unwrap().lines().count() as u64;
    assert!(n > 30, "{n} events");
    assert_eq!(summary["events"].as_u64(), Some(n), "{summary}");
    assert_exact(&check(&out, &file), n, 0);
}

/// Issue 22: the partition is the unit of rule state. Two push bombings, keyed to different
/// partitions (bob's key hashes to partition 0, carol's to 1, with the producer's CRC32
/// partitioner), straddle a rebalance — a second consumer joins after three denials each and
/// takes one partition over from the first, which saves its state with its last commit — and
/// then a `kill -9` of the first, whose partition its next owner restores from the state saved
/// with the last commit plus the files committed after it. The killed instance is restarted,
/// as an orchestrator does. Each attack is
/// found once with the denials from before both handovers as evidence, no finding id is stored
/// twice, and the stored set equals `mfascope detect` over the same history.
#[test]
fn attacks_straddling_a_rebalance_and_a_kill_are_each_found_once() {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = topic(&addr, "handover", 2);
    let out = dir.path().join("out");
    let batch = |name: &str, lines: Vec<String>| {
        let file = dir.path().join(name);
        common::append(&file, &lines);
        wait_ok(produce(&addr, &topic, &file, 0), name);
    };
    let denials = |minutes: std::ops::RangeInclusive<u32>| -> Vec<String> {
        minutes
            .flat_map(|m| {
                [
                    common::push("bob", &format!("b{m}"), m, "denied"),
                    common::push("carol", &format!("c{m}"), m, "denied"),
                ]
            })
            .collect()
    };
    batch("first.ndjson", denials(1..=3));
    let mut first = Running::spawn(ingest(&addr, &topic, &topic, &out, false));
    wait_for_rows(&out, 6, Duration::from_secs(60));
    // The second consumer joins mid-attack: the group rebalances and it takes a partition.
    let (mut second, metrics, _stderr) =
        Running::spawn_with_metrics(ingest(&addr, &topic, &topic, &out, false));
    let assigned = |page: &str| {
        (0..2)
            .filter_map(|p| {
                common::value(
                    page,
                    &format!(
                        "mfascope_kafka_committed_offset{{topic=\"{topic}\",partition=\"{p}\"}}"
                    ),
                )
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while assigned(&common::get(&metrics, "/metrics")) == 0 {
        assert!(
            Instant::now() < deadline,
            "the second consumer got no partition"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    batch("second.ndjson", denials(4..=4));
    wait_for_rows(&out, 8, Duration::from_secs(60));
    let mut killed = first.take();
    killed.kill().unwrap(); // SIGKILL, mid-attack
    killed.wait().unwrap();
    let mut restarted = Running::spawn(ingest(&addr, &topic, &topic, &out, false));
    let mut rest = denials(5..=6);
    rest.push(common::push("bob", "b-approved", 7, "success"));
    rest.push(common::push("carol", "c-approved", 7, "success"));
    batch("rest.ndjson", rest);
    wait_for_rows(&out, 14, Duration::from_secs(120));
    let summaries = [terminate(second.take()), terminate(restarted.take())];
    for s in &summaries {
        let resumed = s["live"]["rules_resumed_partitions"].as_object();
        assert!(
            resumed.is_some_and(|m| m.values().all(|r| r["from"] == "saved")),
            "every partition taken over continued from its saved state: {s}"
        );
    }
    let rows = common::assert_stored_once_and_as_detect(&out);
    for (user, p) in [("bob", 'b'), ("carol", 'c')] {
        let bombing: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r.1 == "mfa_push_bombing" && r.2.iter().any(|e| e.starts_with(p)))
            .map(|r| &r.2)
            .collect();
        let expected: Vec<String> = (1..=5).map(|m| format!("{p}{m}")).collect();
        assert_eq!(bombing, [&expected], "{user}: {rows:?}");
        assert!(
            rows.iter().any(|r| r.1 == "mfa_push_fatigue_accepted"
                && r.2.iter().any(|e| e == &format!("{p}-approved"))),
            "{user}'s approval after the bombing is found: {rows:?}"
        );
    }
}

/// `cmd` with librdkafka properties (`-X KEY=VALUE`).
fn with_properties(mut cmd: Command, properties: &[(&str, &str)]) -> Command {
    for (key, value) in properties {
        cmd.arg("-X").arg(format!("{key}={value}"));
    }
    cmd
}

/// A Python snippet against the broker with confluent-kafka's admin client (`admin` bound to
/// `sys.argv[1]`), printing one JSON value.
fn admin(addr: &str, code: &str, args: &[&str]) -> serde_json::Value {
    let script = format!(
        "import json, sys\nfrom confluent_kafka import TopicPartition\n\
         from confluent_kafka.admin import AdminClient\n\
         admin = AdminClient({{'bootstrap.servers': sys.argv[1]}})\n{code}"
    );
    common::output_json(
        Command::new(python())
            .args(["-c", &script, addr])
            .args(args),
    )
}

/// One of three brokers is killed with -9 mid-stream (the leader of partition 0, so leaders
/// move) and restarted: the producer (idempotent, acks=all) and the ingest ride through, and
/// the output holds every event once.
#[test]
fn a_broker_of_three_killed_mid_stream_loses_and_duplicates_nothing() {
    let _shared = broker();
    let port = "19195";
    let cluster = PrivateBroker(port.into());
    let addr = PrivateBroker::run(&["cluster", "3"], port);
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 60_000, 3);
    let topic = topic(&addr, "failover", 4);
    let out = dir.path().join("out");
    let producer = produce(&addr, &topic, &file, 5_000);
    let mut ingesting = Running::spawn(ingest(&addr, &topic, &topic, &out, false));
    wait_for_rows(&out, 10_000, Duration::from_secs(60));
    let leader = admin(
        &addr,
        "print(admin.list_topics(sys.argv[2], timeout=10).topics[sys.argv[2]].partitions[0].leader)",
        &[&topic],
    );
    let leader = leader.as_u64().unwrap().to_string();
    PrivateBroker::run(&["kill", &leader], port);
    std::thread::sleep(Duration::from_secs(5));
    PrivateBroker::run(&["restart", &leader], port);
    wait_ok(producer, "producer across the failover");
    wait_for_rows(&out, 60_000, Duration::from_secs(180));
    let summary = terminate(ingesting.take());
    assert_eq!(summary["events"], 60_000, "{summary}");
    assert_exact(&check(&out, &file), 60_000, 3);
    let moved = admin(
        &addr,
        "t = admin.list_topics(sys.argv[2], timeout=10).topics[sys.argv[2]]\n\
         print(json.dumps(sorted({p.leader for p in t.partitions.values()})))",
        &[&topic],
    );
    eprintln!("leaders after the failover: {moved} (node {leader} was killed)");
    drop(cluster);
}

/// Members join, die (kill -9) and leave (SIGTERM) while the stream runs, under a group
/// protocol given with `-X`: each hand-over commits or replays exactly.
fn group_churn_stays_exact(name: &str, protocol: &[(&str, &str)]) {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 60_000, 2);
    let (head, rest) = split(&file, 40_000);
    let topic = topic(&addr, name, 4);
    let out = dir.path().join("out");
    let member = || {
        Running::spawn(with_properties(
            ingest(&addr, &topic, &topic, &out, false),
            protocol,
        ))
    };
    let producer = produce(&addr, &topic, &head, 5_000);
    let mut a = member();
    std::thread::sleep(Duration::from_secs(2));
    let mut b = member();
    std::thread::sleep(Duration::from_secs(2));
    let (mut c, metrics, mut c_stderr) = Running::spawn_with_metrics(with_properties(
        ingest(&addr, &topic, &topic, &out, false),
        protocol,
    ));
    std::thread::sleep(Duration::from_secs(3));
    let mut killed = a.take();
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
    let mut d = member();
    wait_ok(producer, "producer");
    let left = terminate(b.take()); // leaves the group, committing what it gathered
    assert!(messages(&left) > 0, "{left}");
    wait_ok(produce(&addr, &topic, &rest, 5_000), "producer of the rest");
    wait_for_rows(&out, 60_000, Duration::from_secs(180));
    let page = common::try_get(&metrics, "/metrics").unwrap_or_else(|| {
        // The member stopped: say why (its stderr to the end).
        let status = c.0.as_mut().unwrap().wait().unwrap();
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut c_stderr, &mut rest);
        panic!("member c stopped answering on {metrics} ({status}): {rest}")
    });
    assert!(owned(&page, &topic, 4) >= 1);
    let summaries = [terminate(c.take()), terminate(d.take())];
    for s in &summaries {
        assert!(s["kafka"]["assignments"].as_u64().unwrap() >= 1, "{s}");
    }
    assert_exact(&check(&out, &file), 60_000, 2);
}

#[test]
fn the_classic_protocol_with_cooperative_sticky_hands_partitions_over_exactly() {
    group_churn_stays_exact(
        "cooperative",
        &[("partition.assignment.strategy", "cooperative-sticky")],
    );
}

#[test]
fn the_kip_848_consumer_protocol_hands_partitions_over_exactly() {
    group_churn_stays_exact("kip848", &[("group.protocol", "consumer")]);
}

/// The broker's SASL_SSL listener (SCRAM-SHA-512 over TLS, its own CA): the credentials and
/// CA file go in with `-X`; the ingest is exact, and the password appears nowhere in what it
/// prints or logs. A wrong password stops the ingest with an error naming the cause.
#[test]
fn consumes_over_sasl_scram_and_tls_and_never_prints_the_password() {
    let addr = broker();
    let secure = Command::new("scripts/kafka-broker")
        .arg("secure")
        .env("MFASCOPE_KAFKA_PORT", port(&addr))
        .output()
        .unwrap();
    assert!(secure.status.success());
    let secure = String::from_utf8(secure.stdout).unwrap();
    let properties: Vec<(&str, &str)> = secure.lines().filter_map(|l| l.split_once('=')).collect();
    let (_, bootstrap) = properties[0];
    assert!(bootstrap.ends_with(&(port(&addr).parse::<u32>().unwrap() + 2000).to_string()));
    let (_, password) = *properties
        .iter()
        .find(|(k, _)| *k == "sasl.password")
        .unwrap();
    let security = &properties[1..];
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 5_000, 2);
    let topic = topic(&addr, "sasl", 2);
    wait_ok(produce(&addr, &topic, &file, 0), "producer");
    let out = dir.path().join("out");
    let run = |properties: &[(&str, &str)], out: &Path| {
        let mut cmd = with_properties(ingest(bootstrap, &topic, &topic, out, true), properties);
        cmd.env("RUST_LOG", "debug");
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        common::wait_output(child, Duration::from_secs(120))
    };
    let ok = run(security, &out);
    let printed =
        String::from_utf8_lossy(&ok.stdout).to_string() + &String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{printed}");
    assert!(!printed.contains(password), "the SASL password was printed");
    assert_exact(&check(&out, &file), 5_000, 2);
    let wrong: Vec<(&str, &str)> = security
        .iter()
        .map(|&(k, v)| {
            if k == "sasl.password" {
                (k, "not-the-password")
            } else {
                (k, v)
            }
        })
        .collect();
    let failed = run(&wrong, &dir.path().join("refused"));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success(),
        "a wrong password must fail the ingest"
    );
    assert!(
        stderr.contains("Authentication") && stderr.contains("sasl.password"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

/// The broker deletes offsets the consumer had not ingested yet (`DeleteRecords`, as retention
/// does): the ingest resumes at the earliest offset the broker holds and reports the range it
/// could not ingest (summary, table, metric); everything else is ingested exactly.
#[test]
fn offsets_deleted_under_the_consumer_are_reported_and_the_rest_is_exact() {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = events(dir.path(), 20_000, 0);
    let (first, second) = split(&file, 10_000);
    let topic = topic(&addr, "range", 1);
    let out = dir.path().join("out");
    wait_ok(produce(&addr, &topic, &first, 0), "producer");
    let summary = finish_within(
        &mut Running::spawn(ingest(&addr, &topic, &topic, &out, true)),
        Duration::from_secs(120),
    );
    assert_eq!(summary["events"], 10_000, "{summary}");
    wait_ok(produce(&addr, &topic, &second, 0), "producer of the rest");
    let start = admin(
        &addr,
        "r = admin.delete_records([TopicPartition(sys.argv[2], 0, 15000)])\n\
         print(list(r.values())[0].result(30).low_watermark)",
        &[&topic],
    );
    assert_eq!(start, 15_000);
    let summary = finish_within(
        &mut Running::spawn(ingest(&addr, &topic, &topic, &out, true)),
        Duration::from_secs(120),
    );
    assert_eq!(summary["events"], 5_000, "{summary}");
    assert_eq!(
        summary["kafka"]["lost"],
        serde_json::json!([{"partition": format!("{topic}/0"), "from": 10_000, "to": 15_000}]),
        "{summary}"
    );
    assert_eq!(
        summary["kafka"]["partitions"][format!("{topic}/0")]["lost"],
        5_000
    );
    // What the table holds: the first 10,000 and the last 5,000 lines, each once.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = dir.path().join("kept.ndjson");
    std::fs::write(
        &kept,
        [&lines[..10_000], &lines[15_000..]].concat().join("\n") + "\n",
    )
    .unwrap();
    assert_exact(&check(&out, &kept), 15_000, 0);
}

/// Liveness after crashes, as a new user would try it: 100,000 Okta records in a 4-partition
/// topic, `ingest --kafka` killed with -9 three times at 2–4 s intervals, then started again.
/// The group must resume within the session timeout plus one rebalance (the time is printed;
/// no progress within 60 s is a stall and fails) and finish with exactly what ingesting the same
/// file gives.
#[test]
fn after_three_kill_9s_the_group_resumes_and_finishes_exactly() {
    let addr = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = common::generate(
        dir.path(),
        "okta",
        &[
            "--log-format",
            "okta",
            "--events",
            "100000",
            "--days",
            "1",
            "--seed",
            "11",
        ],
    );
    let topic = topic(&addr, "liveness", 4);
    wait_ok(produce(&addr, &topic, &file, 0), "producer");
    let out = dir.path().join("out");
    let mut rng = Lcg(std::process::id() as u64 ^ 0x11fe);
    for _ in 0..3 {
        let mut child = Running::spawn(ingest(&addr, &topic, &topic, &out, false));
        std::thread::sleep(rng.millis(2_000, 4_000));
        let mut child = child.take();
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let before = rows(&out);
    let started = Instant::now();
    let (mut last, metrics, _stderr) =
        Running::spawn_with_metrics(ingest(&addr, &topic, &topic, &out, true));
    loop {
        // Exited already (`--exit-at-end`: it caught up), or consumed a message: resumed.
        if last.0.as_mut().unwrap().try_wait().unwrap().is_some()
            || common::try_get(&metrics, "/metrics")
                .and_then(|page| common::value(&page, "mfascope_ingest_events_total"))
                .is_some_and(|n| n >= 1.0)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "stalled: no message consumed 60 s after the restart ({before} rows committed)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "time to resume after three kill -9s: {:.1} s ({before} rows committed before)",
        started.elapsed().as_secs_f64()
    );
    let summary = finish_within(&mut last, Duration::from_secs(180));
    assert_eq!(
        summary["records"].as_u64().unwrap(),
        summary["events"].as_u64().unwrap() + summary["deadletter"].as_u64().unwrap(),
        "{summary}"
    );
    // The same file ingested directly: the same event ids, each once.
    let direct = dir.path().join("direct");
    let status = common::bin()
        .args(["ingest", "--no-progress", "--out"])
        .arg(&direct)
        .arg(&file)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let same = common::output_json(
        Command::new(python())
            .args([
                "-c",
                "import json, sys, pyarrow.dataset as ds\n\
         ids = lambda d: ds.dataset(d + '/events', format='parquet', partitioning='hive')\
         .to_table(columns=['event_id']).column('event_id').to_pylist()\n\
         a, b = ids(sys.argv[1]), ids(sys.argv[2])\n\
         print(json.dumps({'kafka': len(a), 'distinct': len(set(a)), 'file': len(b), \
         'same': set(a) == set(b)}))",
            ])
            .arg(&out)
            .arg(&direct),
    );
    assert_eq!(same["kafka"], same["file"], "{same}");
    assert_eq!(same["distinct"], same["file"], "{same}");
    assert_eq!(same["same"], true, "{same}");
}
