//! Vendor log APIs read where they live: `mfascope ingest --sources FILE` against a mock of the
//! Okta System Log, Duo Admin v2, Microsoft Graph audit-log and Google Reports APIs written from
//! their documentation (tests/common/vendor_api.py: paging, cursors, rate-limit headers, 429
//! and 503 injected on a schedule, tokens expiring every few seconds, Duo signatures and Google
//! JWTs verified). The events read back by pyarrow equal a local ingest of exactly the records
//! the mock served; the mock counts no rate-limit violation; a kill -9 at 10 moments, an
//! overlap, a rerun and late records change nothing; `sources check` names what to fix.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// A service-account key (RSA, PKCS#8) as Google hands it out, and its public half for the
/// mock; argv: directory.
const GOOGLE_KEY: &str = r#"
import json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                      serialization.NoEncryption()).decode()
open(sys.argv[1] + '/google-public.pem', 'wb').write(k.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
json.dump({'type': 'service_account', 'project_id': 'acme-logs', 'private_key_id': 'k1',
           'private_key': pem, 'client_email': 'mfascope@acme-logs.iam.gserviceaccount.com',
           'client_id': '1', 'token_uri': 'https://oauth2.googleapis.com/token'},
          open(sys.argv[1] + '/google-key.json', 'w'))
"#;

/// Late records: the first `n` records the mock serves of every stream, with new ids, stamped
/// `age` seconds ago; added to the mock (POST /_add) and written to DIR/late-VENDOR.ndjson for
/// the ground truth. argv: mock address, served dir, out dir, n, age, tag. Prints the count.
const LATE: &str = r#"
import datetime, json, os, sys, urllib.request
addr, served, out, n, age, tag = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)
iso = at.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'
def okta(r, i): r['uuid'] = i; r['published'] = iso
def duo(r, i): r['txid'] = i; r['isotimestamp'] = iso; r['timestamp'] = int(at.timestamp())
def signin(r, i): r['id'] = i; r['createdDateTime'] = iso
def audit(r, i): r['id'] = i; r['activityDateTime'] = iso
def google(r, i): r['id']['uniqueQualifier'] = i; r['id']['time'] = iso
streams = {'okta': ('okta', okta), 'duo': ('duo', duo), 'signIns': ('entra', signin),
           'directoryAudits': ('entra', audit), 'login': ('google', google),
           'user_accounts': ('google', google)}
total = 0
for stream, (vendor, stamp) in streams.items():
    path = os.path.join(served, stream + '.ndjson')
    if not os.path.exists(path):
        continue
    lines = []
    for k, line in enumerate(open(path).readlines()[:n]):
        r = json.loads(line)
        stamp(r, f'late-{tag}-{stream}-{k}')
        lines.append(json.dumps(r))
    body = ('\n'.join(lines) + '\n').encode()
    with open(os.path.join(out, f'late-{vendor}.ndjson'), 'a') as f:
        f.write(body.decode())
    req = urllib.request.Request(f'http://{addr}/_add?vendor={vendor}', data=body, method='POST')
    total += json.load(urllib.request.urlopen(req))['added']
print(total)
"#;

/// (source, event_id) pairs of two outputs read by pyarrow: rows and distinct pairs of `got`,
/// pairs missing from it and unexpected in it against `want`, dead letters of both.
const COMPARE: &str = r#"
import glob, json, sys, pyarrow.dataset as ds
def pairs(root):
    t = ds.dataset(root + '/events', format='parquet', partitioning='hive') \
        .to_table(columns=['source', 'event_id'])
    return list(zip(t.column('source').to_pylist(), t.column('event_id').to_pylist()))
def dead(root):
    files = glob.glob(root + '/deadletter/**/*.parquet', recursive=True)
    return ds.dataset(files, format='parquet').count_rows() if files else 0
want, got = set(pairs(sys.argv[1])), pairs(sys.argv[2])
print(json.dumps({'want': len(want), 'rows': len(got), 'distinct': len(set(got)),
    'missing': len(want - set(got)), 'unexpected': len(set(got) - want),
    'sources': sorted({s for s, _ in got}),
    'dead_want': dead(sys.argv[1]), 'dead_got': dead(sys.argv[2])}))
"#;

/// Rows under an output's events, read by pyarrow.
const COUNT: &str = r#"
import sys, pyarrow.dataset as ds
print(ds.dataset(sys.argv[1] + '/events', format='parquet', partitioning='hive').count_rows())
"#;

/// Secrets the mock expects (Duo's are the example keys of Duo's documentation).
const SECRETS: [(&str, &str); 4] = [
    ("okta.token", "okta-test-token"),
    ("duo.ikey", "DIWJ8X6AEYOR5OMC6TQ1"),
    ("duo.skey", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"),
    ("graph.secret", "graph-secret"),
];

/// The mock with three days of generated traffic of each vendor (ending now), its secrets, a
/// sources file pointing at it, and the records it serves (`served/STREAM.ndjson`).
struct Vendors {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Vendors {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vendors {
    fn start(events: u32) -> Vendors {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let start = (chrono::Utc::now() - chrono::Duration::days(3))
            .format("%Y-%m-%dT%H:00:00Z")
            .to_string();
        let mut mock = Command::new(common::s3::python());
        mock.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/vendor_api.py"));
        for (flag, format) in [
            ("--okta", "okta"),
            ("--duo", "duo"),
            ("--entra", "entra"),
            ("--google", "gworkspace"),
        ] {
            let records = common::generate(
                d,
                format,
                &[
                    "--log-format",
                    format,
                    "--events",
                    &events.to_string(),
                    "--days",
                    "3",
                    "--start",
                    &start,
                    "--seed",
                    "25",
                    "--attacks",
                ],
            );
            mock.arg(flag).arg(records);
        }
        common::py(GOOGLE_KEY, &[d]);
        for (file, secret) in SECRETS {
            std::fs::write(d.join(file), format!("{secret}\n")).unwrap();
        }
        let port_file = d.join("port");
        mock.arg("--port-file")
            .arg(&port_file)
            .arg("--served")
            .arg(d.join("served"))
            .arg("--google-public")
            .arg(d.join("google-public.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = mock.spawn().unwrap();
        let t = Instant::now();
        while !port_file.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the mock did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let port = std::fs::read_to_string(&port_file).unwrap();
        let vendors = Vendors {
            child,
            addr: format!("127.0.0.1:{}", port.trim()),
            dir,
        };
        vendors.write_sources("sources.toml", &[]);
        vendors
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A sources file for the four vendors, each polled every second from four days back;
    /// `replace` swaps text in it (a wrong secret file, say).
    fn write_sources(&self, name: &str, replace: &[(&str, &str)]) -> PathBuf {
        let since = (chrono::Utc::now() - chrono::Duration::days(4)).to_rfc3339();
        let url = format!("http://{}", self.addr);
        let mut text = format!(
            r#"
[[source]]
kind = "okta"
url = "{url}"
token = {{ file = "okta.token" }}
since = "{since}"
interval = "1s"

[[source]]
kind = "duo"
url = "{url}"
ikey = {{ file = "duo.ikey" }}
skey = {{ env = "TEST_DUO_SKEY" }}
since = "{since}"
interval = "1s"
delay = "0s"
request_every = "1s"

[[source]]
name = "entra"
kind = "graph"
url = "{url}/v1.0"
token_url = "{url}/graph-token"
tenant = "acme"
client_id = "graph-client"
client_secret = {{ file = "graph.secret" }}
since = "{since}"
interval = "1s"

[[source]]
name = "google"
kind = "gworkspace"
url = "{url}"
token_url = "{url}/google-token"
key = {{ file = "google-key.json" }}
subject = "admin@example.com"
since = "{since}"
interval = "1s"
"#
        );
        for (from, to) in replace {
            assert!(text.contains(from), "{from}");
            text = text.replace(from, to);
        }
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `mfascope ingest --sources sources.toml --out OUT EXTRA…` (run in the mock's directory,
    /// where the secret files lie).
    fn ingest(&self, out: &Path, extra: &[&str]) -> Command {
        let mut cmd = common::bin();
        cmd.current_dir(self.dir.path())
            .env("TEST_DUO_SKEY", SECRETS[2].1)
            .args(["ingest", "--no-progress", "--format", "json", "--sources"])
            .arg(self.path("sources.toml"))
            .arg("--out")
            .arg(out)
            .args(extra);
        cmd
    }

    /// What the mock counted.
    fn stats(&self) -> serde_json::Value {
        let page = common::get(&self.addr, "/_stats");
        let body = page.split("\r\n\r\n").nth(1).unwrap();
        serde_json::from_str(body).unwrap()
    }

    /// Events in the ground truth.
    fn want(&self) -> u64 {
        let truth = self.truth();
        serde_json::from_slice::<serde_json::Value>(&common::py(COUNT, &[&truth]))
            .unwrap()
            .as_u64()
            .unwrap()
    }

    /// The ground truth: a local ingest of every record served (and of late records added).
    fn truth(&self) -> PathBuf {
        let truth = self.path("truth");
        let _ = std::fs::remove_dir_all(&truth);
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path("served"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.extend(
            std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("late-")
                }),
        );
        let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        common::ingest_json(&files, &truth);
        truth
    }

    fn compare(&self, out: &Path) -> serde_json::Value {
        let truth = self.truth();
        serde_json::from_slice(&common::py(COMPARE, &[&truth, out])).unwrap()
    }

    /// Add `n` late records per stream stamped `age` seconds ago; returns how many.
    fn add_late(&self, n: u32, age: f64, tag: &str) -> u64 {
        let out = common::output_ok(Command::new(common::s3::python()).args([
            "-c",
            LATE,
            &self.addr,
            &self.path("served").display().to_string(),
            &self.dir.path().display().to_string(),
            &n.to_string(),
            &age.to_string(),
            tag,
        ]));
        String::from_utf8(out).unwrap().trim().parse().unwrap()
    }
}

fn assert_exact(c: &serde_json::Value) {
    assert!(c["want"].as_u64().unwrap() > 2000, "{c}");
    common::assert_exact_ids(c);
    assert_eq!(c["dead_got"], c["dead_want"], "{c}");
    assert_eq!(
        c["sources"],
        serde_json::json!(["duo", "entra", "gworkspace", "okta"]),
        "{c}"
    );
}

/// The mock saw the client pace itself, sign and retry as the vendors document (and, for a
/// run long enough to see tokens expire, renew them).
fn assert_played_by_the_rules(stats: &serde_json::Value, expiry: bool) {
    let n = |k: &str| stats[k].as_u64().unwrap_or(0);
    for vendor in ["okta", "duo", "graph", "google"] {
        assert_eq!(n(&format!("{vendor}.violations")), 0, "{vendor}: {stats}");
        assert!(
            n(&format!("{vendor}.injected_503")) > 0,
            "{vendor}: {stats}"
        );
        assert!(
            n(&format!("{vendor}.injected_429")) > 0,
            "{vendor}: {stats}"
        );
        assert_eq!(n(&format!("{vendor}.bad_tokens")), 0, "{vendor}: {stats}");
    }
    assert!(n("duo.signatures_verified") > 0, "{stats}");
    assert_eq!(n("duo.bad_signatures"), 0, "{stats}");
    assert_eq!(n("google.bad_assertions"), 0, "{stats}");
    for vendor in ["graph", "google"].into_iter().filter(|_| expiry) {
        // Tokens live 4 s: some expired mid-run and were refreshed.
        assert!(
            n(&format!("{vendor}.expired_tokens")) > 0,
            "{vendor}: {stats}"
        );
        assert!(
            n(&format!("{vendor}.tokens_issued")) > 1,
            "{vendor}: {stats}"
        );
    }
}

#[test]
fn every_vendor_api_is_read_exactly_through_faults_throttling_and_token_expiry() {
    let vendors = Vendors::start(1500);
    let out = vendors.path("out");
    let first = common::output_json(&mut vendors.ingest(&out, &[]));
    let sources = first["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 4, "{first}");
    for s in sources {
        assert_eq!(s["errors"], 0, "{s}");
        assert!(s["records"].as_u64().unwrap() > 100, "{s}");
        assert!(s["caught_up"].is_string(), "{s}");
    }
    assert_exact(&vendors.compare(&out));
    assert_played_by_the_rules(&vendors.stats(), true);

    // A rerun reads the overlap again and delivers nothing twice.
    let again = common::output_json(&mut vendors.ingest(&out, &[]));
    assert_eq!(again["events"], 0, "{again}");
    let repeats: u64 = again["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["records"].as_u64().unwrap())
        .sum();
    assert_eq!(repeats, 0, "{again}");
    assert_exact(&vendors.compare(&out));
}

#[test]
fn kill_9_at_10_moments_while_polling_leaves_the_exact_id_set() {
    let vendors = Vendors::start(1500);
    let out = vendors.path("out");
    let killed = common::kill_9_at_moments(10, 0xd0_0d1e, (500, 4000), || {
        let mut cmd = vendors.ingest(&out, &["--follow", "--max-latency", "200ms"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    });
    assert_eq!(killed, 10, "a --follow run ended by itself");
    let last = common::output_json(&mut vendors.ingest(&out, &[]));
    for s in last["sources"].as_array().unwrap() {
        assert_eq!(s["errors"], 0, "{s}");
    }
    assert_exact(&vendors.compare(&out));
    // Restarts included: each run keeps to the pace the one before it was told.
    assert_played_by_the_rules(&vendors.stats(), false);
}

#[test]
fn late_records_inside_the_overlap_are_read_once_while_following() {
    let vendors = Vendors::start(600);
    let out = vendors.path("out");
    let mut follow = vendors.ingest(&out, &["--follow", "--metrics-listen", "127.0.0.1:0"]);
    let mut child = follow
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _stderr) = common::metrics_address(child.stderr.take().unwrap());
    let events = || {
        let page = common::get(&addr, "/metrics");
        common::value(&page, "mfascope_ingest_events_total").unwrap_or(0.0) as u64
    };
    let wait_for = |want: u64| {
        let t = Instant::now();
        while events() < want {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "read {} of {want} events",
                events()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait_for(vendors.want());
    // Late arrivals stamped 20 s ago (behind what was read, inside the 60 s overlap), then
    // fresh ones: each read once, however many polls pass over them.
    let late = vendors.add_late(3, 20.0, "a");
    let fresh = vendors.add_late(3, 0.5, "b");
    assert!(late >= 15 && fresh == late, "{late} {fresh}");
    wait_for(vendors.want());
    std::thread::sleep(Duration::from_secs(4));
    let page = common::get(&addr, "/metrics");
    for (source, kind) in [
        ("okta", "okta"),
        ("duo", "duo"),
        ("entra", "graph"),
        ("google", "gworkspace"),
    ] {
        let labels = format!("{{source=\"{source}\",kind=\"{kind}\"}}");
        let series = |name: &str| common::value(&page, &format!("{name}{labels}"));
        assert!(
            series("mfascope_source_polls_total") >= Some(1.0),
            "{source}: {page}"
        );
        assert!(
            series("mfascope_source_records_total") > Some(100.0),
            "{source}: {page}"
        );
        assert_eq!(
            series("mfascope_source_errors_total"),
            Some(0.0),
            "{source}: {page}"
        );
        let lag = series("mfascope_source_lag_seconds");
        assert!(lag.is_some_and(|l| l < 30.0), "{source} lag {lag:?}");
    }
    common::terminate(&child);
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    let repeats: u64 = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["repeats"].as_u64().unwrap())
        .sum();
    assert!(repeats > 0, "the overlap re-read nothing: {report}");
    assert_exact(&vendors.compare(&out));
}

#[test]
fn a_wrong_secret_is_named_by_check_and_fails_only_its_source() {
    let vendors = Vendors::start(300);
    std::fs::write(vendors.path("wrong.secret"), "not-the-secret\n").unwrap();
    std::fs::write(vendors.path("wrong.token"), "00-wrong-okta-token\n").unwrap();
    let good = vendors.path("sources.toml");
    let check = |file: &Path| {
        common::bin()
            .current_dir(vendors.dir.path())
            .env("TEST_DUO_SKEY", SECRETS[2].1)
            .args(["sources", "check", "--sources"])
            .arg(file)
            .output()
            .unwrap()
    };
    let ok = check(&good);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(": ok: can read"))
            .count(),
        4,
        "{text}"
    );

    vendors.write_sources(
        "sources.toml",
        &[
            ("\"graph.secret\"", "\"wrong.secret\""),
            ("\"okta.token\"", "\"wrong.token\""),
        ],
    );
    let bad = check(&good);
    let text = String::from_utf8_lossy(&bad.stdout).to_string();
    assert_eq!(bad.status.code(), Some(1), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
    };
    assert!(
        line("okta (okta): FAILED: HTTP 401").contains("check `token`"),
        "{text}"
    );
    assert!(
        line("entra (graph): FAILED: HTTP 401").contains("client_secret"),
        "{text}"
    );
    assert!(line("duo (duo): ok").contains("authentication"), "{text}");
    assert!(line("google (gworkspace): ok").contains("login"), "{text}");
    assert!(
        !text.contains("not-the-secret") && !text.contains("wrong-okta-token"),
        "{text}"
    );

    // An ingest reads the good sources and reports the failing ones, exit 1.
    let out = vendors.path("out");
    let run = vendors.ingest(&out, &[]).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    for s in report["sources"].as_array().unwrap() {
        let failed = ["okta", "entra"].contains(&s["name"].as_str().unwrap());
        assert_eq!(s["errors"].as_u64().unwrap() > 0, failed, "{s}");
        assert_eq!(s["records"].as_u64().unwrap() > 0, !failed, "{s}");
        if failed {
            assert!(s["last_error"].as_str().unwrap().contains("401"), "{s}");
        }
    }
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}
