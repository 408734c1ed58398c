//! Delivery of findings and SLO alerts: a signed webhook that is down while mfascope is killed
//! with -9 and restarted still receives every finding and alert transition of the run, each
//! idempotency key at least once, equal to `detect` and `alerts` over the same store.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{self, Receiver, bin, detect_ids, output_json, run_json};

/// The keys `detect` and `alerts` over `out` say a receiver is owed.
fn owed(out: &std::path::Path) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = detect_ids(out)
        .into_iter()
        .map(|id| format!("finding/{id}"))
        .collect();
    let alerts = run_json(&["alerts", "--data", &out.display().to_string()]);
    for e in alerts["episodes"].as_array().unwrap() {
        let ms = mfascope::time::parse_rfc3339(e["firing_at"].as_str().unwrap()).unwrap();
        let episode = format!(
            "slo/{}/{}/{ms}",
            e["slo"].as_str().unwrap(),
            e["alert"].as_str().unwrap()
        );
        keys.insert(format!("{episode}/firing"));
        if !e["resolved_at"].is_null() {
            keys.insert(format!("{episode}/resolved"));
        }
    }
    keys
}

#[test]
fn a_webhook_down_through_a_kill_9_still_gets_every_finding_and_alert_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = common::generate(
        tmp.path(),
        "outage-attacks",
        &[
            "--log-format",
            "canonical",
            "--events",
            "200000",
            "--days",
            "3",
            "--seed",
            "11",
            "--probes",
            "--attacks",
            "--incident",
            "push-outage@2024-05-02T14:00:00Z/20m",
        ],
    );
    let out = tmp.path().join("out");
    std::fs::write(tmp.path().join("key"), "test-signing-key\n").unwrap();
    let receiver = Receiver::start(tmp.path());
    receiver.set_down(true);
    let key = format!("file:{}", tmp.path().join("key").display());
    let ingest = || {
        let mut c = bin();
        c.args([
            "ingest",
            "--no-progress",
            "--format",
            "json",
            "--notify-drain",
            "180s",
            "--notify-max-backoff",
            "5s",
        ])
        .args([
            "--notify",
            &format!("{}/hook", receiver.url),
            "--notify-key",
            &key,
        ])
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        c
    };
    // First run: killed with -9 once something waits in the outbox for the dead receiver.
    let down_since = Instant::now();
    let mut first = ingest().spawn().unwrap();
    let outbox = out.join("_state/notify");
    let queued = || {
        std::fs::read_dir(&outbox)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|r| {
                std::fs::read_dir(r.path().join("queue")).is_ok_and(|mut q| q.next().is_some())
            })
    };
    let start = Instant::now();
    while !queued()
        && start.elapsed() < Duration::from_secs(240)
        && first.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(queued(), "nothing was queued for the receiver");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(receiver.received().is_empty(), "the receiver was down");

    // Second run: the receiver comes back two minutes after it went down; the run finishes
    // the input and drains its outbox.
    let mut second = ingest().spawn().unwrap();
    std::thread::sleep(Duration::from_secs(120).saturating_sub(down_since.elapsed()));
    assert!(receiver.received().is_empty(), "the receiver was down");
    receiver.set_down(false);
    assert!(second.wait().unwrap().success());

    let got = receiver.received();
    assert!(
        got.iter().all(|r| r["verified"] == true),
        "a signature did not verify"
    );
    let keys: BTreeSet<String> = got
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    for r in &got {
        assert_eq!(
            r["body"]["id"], r["key"],
            "the body names its idempotency key"
        );
        assert_eq!(r["body"]["version"], "1");
    }
    let owed = owed(&out);
    assert!(
        owed.iter().any(|k| k.starts_with("slo/")),
        "the outage fires alerts: {owed:?}"
    );
    assert!(
        owed.iter().any(|k| k.starts_with("finding/")),
        "the sample has findings"
    );
    let missing: Vec<_> = owed.difference(&keys).collect();
    let extra: Vec<_> = keys.difference(&owed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "receiver differs from detect/alerts: missing {missing:?}, extra {extra:?}"
    );
    // Nothing left waiting or parked.
    let status = crate::common::output_json(
        bin()
            .args(["notify", "status", "--format", "json", "--data"])
            .arg(&out),
    );
    assert_eq!(
        (status[0]["queued"].as_u64(), status[0]["parked"].as_u64()),
        (Some(0), Some(0)),
        "{status}"
    );
}

/// A real Alertmanager (Debian `prometheus-alertmanager`) on 127.0.0.1, notifying `webhook`;
/// killed on drop.
struct Alertmanager {
    _service: Service,
    url: String,
}

/// A server of the Prometheus family the test started on 127.0.0.1, ready (`/-/ready`
/// answers); killed on drop.
struct Service(std::process::Child);

impl Service {
    /// Start `cmd` (its flags put it on `port`) and wait until it is ready.
    fn start(what: &str, cmd: &mut std::process::Command, port: u16) -> (Service, String) {
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e} (Debian package; scripts/test installs it)"));
        let (service, url) = (Service(child), format!("http://127.0.0.1:{port}"));
        wait_for(&format!("{what} ready"), || {
            curl_ok(&format!("{url}/-/ready"))
        });
        (service, url)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Alertmanager {
    fn start(dir: &std::path::Path, webhook: &str) -> Alertmanager {
        let port = free_port();
        let config = dir.join("am.yml");
        std::fs::write(
            &config,
            format!(
                "route: {{ receiver: hook, group_by: [alertname, slo], group_wait: 1s, \
                 group_interval: 1s, repeat_interval: 1h }}\n\
                 receivers: [ {{ name: hook, webhook_configs: [ {{ url: \"{webhook}/am\", \
                 send_resolved: true }} ] }} ]\n"
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new("prometheus-alertmanager");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        let (service, url) = Service::start("prometheus-alertmanager", &mut cmd, port);
        Alertmanager {
            _service: service,
            url,
        }
    }

    /// The alerts it holds (active and silenced).
    fn alerts(&self) -> Vec<serde_json::Value> {
        curl_json(&format!("{}/api/v2/alerts", self.url))
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn is_page(a: &serde_json::Value) -> bool {
    a["labels"]["alertname"] == "SLOBurn_fast_burn_1h" && a["labels"]["slo"] == "mfa-availability"
}

#[test]
fn a_live_outage_pages_through_a_real_alertmanager_that_groups_silences_and_resolves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = common::outage_sample(tmp.path());
    let receiver = Receiver::start(tmp.path());
    let am = Alertmanager::start(tmp.path(), &receiver.url);
    // Silence the availability page only: Alertmanager must hold it but notify nobody.
    common::output_ok(std::process::Command::new("amtool").args([
        &format!("--alertmanager.url={}", am.url),
        "silence",
        "add",
        "alertname=SLOBurn_fast_burn_1h",
        "slo=mfa-availability",
        "--duration=1h",
        "--comment=mfascope delivery test",
    ]));
    // The outage replayed live: events up to 14:12 (mid-outage) first, the rest later.
    let text = std::fs::read_to_string(&sample).unwrap();
    let (before, after): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| {
        l.split("\"time\":\"")
            .nth(1)
            .is_some_and(|t| t < "2024-05-02T14:12")
    });
    let live = tmp.path().join("live.ndjson");
    std::fs::write(&live, before.join("\n") + "\n").unwrap();
    let out = tmp.path().join("out");
    let mut ingest = bin()
        .args([
            "ingest",
            "--no-progress",
            "--follow",
            "--alertmanager",
            &am.url,
            "--out",
        ])
        .arg(&out)
        .arg(&live)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    wait_for("the page in Alertmanager", || {
        am.alerts().iter().any(is_page)
    });
    let page = am.alerts().into_iter().find(is_page).unwrap();
    assert_eq!(page["status"]["state"], "suppressed", "{page}");
    assert_eq!(page["labels"]["severity"], "page");
    assert!(
        page["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("burned")
    );
    // Other SLOs' alerts of the outage are notified, grouped by alert and SLO; the silenced
    // page is not.
    wait_for("a webhook notification", || !receiver.received().is_empty());
    let groups: Vec<serde_json::Value> = receiver
        .received()
        .into_iter()
        .map(|r| r["body"].clone())
        .collect();
    for g in &groups {
        assert!(
            g["groupLabels"]["slo"].is_string() && g["groupLabels"]["alertname"].is_string(),
            "{g}"
        );
        assert!(
            !g["alerts"].as_array().unwrap().iter().any(is_page),
            "the silenced page was notified: {g}"
        );
    }

    // Recovery: the page resolves (Alertmanager no longer holds it as active).
    common::append(
        &live,
        &after.iter().map(|l| (*l).to_string()).collect::<Vec<_>>(),
    );
    wait_for("the page to resolve", || !am.alerts().iter().any(is_page));
    wait_for("a resolved notification", || {
        receiver
            .received()
            .iter()
            .any(|r| r["body"]["status"] == "resolved")
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &ingest.id().to_string()])
        .status();
    assert!(ingest.wait().unwrap().success());
}

#[test]
fn slack_pagerduty_hec_and_ocsf_bodies_match_their_published_shapes_and_keep_secrets_off_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(tmp.path());
    let routing = tmp.path().join("routing");
    let token = tmp.path().join("token");
    std::fs::write(&routing, "R0ut1ngKey0123456789abcdefABCDEF\n").unwrap();
    std::fs::write(&token, "0f3b2c1d-hec-token\n").unwrap();
    let (routing, token) = (
        format!("file:{}", routing.display()),
        format!("file:{}", token.display()),
    );
    let out = tmp.path().join("out");
    let mut cmd = bin();
    // With a metrics endpoint sharing the delivery, the run still drains before it ends.
    cmd.args(["ingest", "--no-progress", "--format", "json"])
        .args(["--metrics-listen", "127.0.0.1:0", "--out"])
        .arg(&out);
    for (path, format, key) in [
        ("slack", "slack", &routing),
        ("pagerduty", "pagerduty", &routing),
        ("hec", "splunk-hec", &token),
        ("ocsf", "ocsf", &routing),
    ] {
        cmd.args(["--notify", &format!("{}/{path}", receiver.url)])
            .args(["--notify-format", format, "--notify-key", key]);
    }
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/sample-data"));
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let delivery = report["live"]["delivery"].as_array().unwrap();
    assert_eq!(delivery.len(), 4);
    for d in delivery {
        assert_eq!(
            (d["queued"].as_u64(), d["parked"].as_u64()),
            (Some(0), Some(0)),
            "{d}"
        );
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/payload_check.py");
    let counts = common::output_json(
        std::process::Command::new(common::s3::python())
            .arg(script)
            .arg(tmp.path().join("received.jsonl")),
    );
    let findings = common::stored_findings(&out).len() as u64;
    assert_eq!(counts["ocsf"].as_u64(), Some(findings), "{counts}");
    assert_eq!(
        counts["hec_events"].as_u64(),
        counts["slack"].as_u64(),
        "{counts}"
    );
    assert!(
        counts["pagerduty"].as_u64() > Some(findings),
        "findings and alert transitions: {counts}"
    );

    // The routing key and token went on the wire only: not in the outboxes, logs or report.
    let mut on_disk = String::from_utf8_lossy(&output.stderr).into_owned();
    on_disk.push_str(&String::from_utf8_lossy(&output.stdout));
    for entry in walkdir::WalkDir::new(out.join("_state"))
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_file() {
            on_disk.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    for secret in ["R0ut1ngKey0123456789abcdefABCDEF", "0f3b2c1d-hec-token"] {
        assert!(!on_disk.contains(secret), "{secret} leaked");
    }
}

/// An SLO whose 30-day policy scales to one-minute windows (12h window: 1h → 1m, 5m → 1m), so a
/// live outage pages within two minutes of wall-clock time.
const SHORT_SLO: &str = "apiVersion: openslo/v1
kind: SLO
metadata: {name: push-success, displayName: Push success}
spec:
  description: Push verifications that succeed.
  service: 2fa
  indicator:
    metadata: {name: push-success-ratio}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: mfascope, spec: {counter: mfa_successes}}}
        total: {metricSource: {type: mfascope, spec: {counter: mfa_attempts}}}
  timeWindow: [{duration: 12h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.98}]
  alertPolicies: [{alertPolicyRef: fast}]
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: fast}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {name: fast-burn-1h}
      spec:
        severity: page
        condition: {kind: burnrate, op: gte, threshold: 14.4, lookbackWindow: 1h, shortWindow: 5m}
";

/// A real Prometheus (Debian `prometheus`) on 127.0.0.1 scraping `target` every second and
/// evaluating `rules` every second, alerting `alertmanager`; killed on drop.
struct Prometheus {
    _service: Service,
    url: String,
}

impl Prometheus {
    fn start(
        dir: &std::path::Path,
        target: &str,
        rules: &std::path::Path,
        alertmanager: &str,
    ) -> Prometheus {
        let port = free_port();
        let config = dir.join("prom.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [\"{}\"]\n\
                 scrape_configs: [{{job_name: mfascope, static_configs: [{{targets: [\"{target}\"]}}]}}]\n\
                 alerting: {{alertmanagers: [{{static_configs: [{{targets: [\"{}\"]}}]}}]}}\n",
                rules.display(),
                alertmanager.trim_start_matches("http://")
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let (service, url) = Service::start("prometheus", &mut cmd, port);
        Prometheus {
            _service: service,
            url,
        }
    }

    /// Its alerts (`/api/v1/alerts`).
    fn alerts(&self) -> Vec<serde_json::Value> {
        curl_json(&format!("{}/api/v1/alerts", self.url))
            .and_then(|v| v["data"]["alerts"].as_array().cloned())
            .unwrap_or_default()
    }
}

/// A port free on 127.0.0.1 for a service the test starts.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn curl_ok(url: &str) -> bool {
    std::process::Command::new("curl")
        .args(["-fs", url])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn curl_json(url: &str) -> Option<serde_json::Value> {
    let out = std::process::Command::new("curl")
        .args(["-fs", url])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn epoch_ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

/// The generated Prometheus rules and mfascope's own evaluator page for the same live outage:
/// a real Prometheus scraping `ingest --follow --metrics-listen` fires the page for the same
/// closed minute as mfascope's episode, and both reach the same real Alertmanager.
#[test]
fn prometheus_with_the_generated_rules_pages_for_the_same_minute_as_mfascope_live() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("slo.yaml");
    std::fs::write(&spec, SHORT_SLO).unwrap();
    let rules = tmp.path().join("rules.yml");
    let generated = common::output_ok(
        bin()
            .args(["slo", "rules", "--format", "prometheus", "--slos"])
            .arg(&spec),
    );
    std::fs::write(&rules, generated).unwrap();
    let receiver = Receiver::start(tmp.path());
    let am = Alertmanager::start(tmp.path(), &receiver.url);

    // Healthy pushes stamped now, every 200 ms; from the next minute boundary M (at least 5 s
    // away) every push fails. mfascope's page fires when the minute [M, M+1m) closes.
    let live = tmp.path().join("live.ndjson");
    let mut n = 0;
    let mut line = |outcome: &str| {
        n += 1;
        common::verify_line(
            &format!("p{n}"),
            &format!("user{}", n % 50),
            "push",
            outcome,
        )
    };
    common::append(&live, &[line("success")]);
    let out = tmp.path().join("out");
    let mut ingest = bin()
        .args([
            "ingest",
            "--no-progress",
            "--follow",
            "--attack-exclusion",
            "off",
        ])
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--alertmanager",
            &am.url,
            "--slos",
        ])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .arg(&live)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (metrics, _stderr) = common::metrics_address(ingest.stderr.take().unwrap());
    let prometheus = Prometheus::start(tmp.path(), &metrics, &rules, &am.url);
    let now = || chrono::Utc::now().timestamp_millis();
    let outage = (now() + 5_000).div_euclid(60_000) * 60_000 + 60_000;
    let is_page = |a: &serde_json::Value| a["labels"]["alertname"] == "SLOBurn_fast_burn_1h";
    let (mut ours, mut theirs) = (None, None);
    let start = Instant::now();
    while ours.is_none() || theirs.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "no page: mfascope {ours:?}, Prometheus {theirs:?}"
        );
        common::append(
            &live,
            &[line(if now() >= outage {
                "failure"
            } else {
                "success"
            })],
        );
        for a in am.alerts().iter().filter(|a| is_page(a)) {
            // mfascope labels its alerts `source: mfascope`; Prometheus's carry the rule's.
            let slot = if a["labels"]["source"] == "mfascope" {
                &mut ours
            } else {
                &mut theirs
            };
            slot.get_or_insert((now(), a.clone()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let fired = prometheus
        .alerts()
        .into_iter()
        .find(|a| is_page(a))
        .expect("Prometheus holds the page");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &ingest.id().to_string()])
        .status();
    assert!(ingest.wait().unwrap().success());

    let alerts = run_json(&[
        "alerts",
        "--data",
        &out.display().to_string(),
        "--slos",
        &spec.display().to_string(),
    ]);
    let episode = alerts["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["alert"] == "fast-burn-1h")
        .cloned()
        .unwrap();
    let t = epoch_ms(episode["firing_at"].as_str().unwrap());
    assert_eq!(
        t,
        outage + 60_000,
        "mfascope pages when the outage's first minute closes: {episode}"
    );
    let (ours_seen, ours) = ours.unwrap();
    assert_eq!(epoch_ms(ours["startsAt"].as_str().unwrap()), t, "{ours}");
    assert_eq!(ours["labels"]["slo"], "push-success");
    let (theirs_seen, theirs) = theirs.unwrap();
    assert_eq!(
        (&theirs["labels"]["slo"], &theirs["labels"]["severity"]),
        (&"push-success".into(), &"page".into()),
        "{theirs}"
    );
    // Prometheus sees the counters of the same closed minute: it fires after mfascope's
    // episode starts and before the next minute closes.
    let active = epoch_ms(fired["activeAt"].as_str().unwrap());
    assert!(
        (t..t + 60_000).contains(&active),
        "Prometheus fired at {active}, mfascope's episode at {t}"
    );
    eprintln!(
        "page: mfascope episode {t}; Alertmanager has mfascope's after {} ms, Prometheus's after {} ms (Prometheus active after {} ms)",
        ours_seen - t,
        theirs_seen - t,
        active - t
    );
}

/// With `--out s3://…` the outboxes live on the object store beside the table: a run whose
/// receiver stays down leaves its notifications there (`notify status` reads them from the
/// bucket), and the next run, on a machine with nothing local, delivers every one.
#[test]
fn outboxes_on_object_storage_survive_the_machine_and_deliver_everything() {
    use crate::common::s3::S3Server;
    let s3 = S3Server::start("notify");
    let tmp = tempfile::tempdir().unwrap();
    let input = common::generate(
        tmp.path(),
        "attacks",
        &[
            "--log-format",
            "canonical",
            "--events",
            "20000",
            "--days",
            "1",
            "--seed",
            "5",
            "--attacks",
        ],
    );
    std::fs::write(tmp.path().join("key"), "test-signing-key\n").unwrap();
    let key = format!("file:{}", tmp.path().join("key").display());
    let receiver = Receiver::start(tmp.path());
    receiver.set_down(true);
    let url = s3.url("prod");
    let hook = format!("{}/hook", receiver.url);
    let run = |drain: &str| {
        let mut c = bin();
        s3.env(&mut c);
        c.args([
            "ingest",
            "--no-progress",
            "--format",
            "json",
            "--notify",
            &hook,
        ])
        .args([
            "--notify-key",
            &key,
            "--notify-drain",
            drain,
            "--notify-max-backoff",
            "1s",
        ])
        .args(["--out", &url])
        .arg(&input)
        .current_dir(tmp.path());
        output_json(&mut c)
    };
    let first = run("2s");
    let queued = first["live"]["delivery"][0]["queued"].as_u64().unwrap();
    assert!(queued > 0, "{}", first["live"]["delivery"]);
    assert!(!tmp.path().join("_state").exists() && !tmp.path().join("prod").exists());
    let mut status = bin();
    s3.env(&mut status);
    let status = output_json(status.args(["notify", "status", "--format", "json", "--data", &url]));
    assert_eq!(status[0]["queued"].as_u64(), Some(queued), "{status}");
    let objects = s3.python(
        "print(len([f for f in s3.get_file_info(pafs.FileSelector('notify/prod/_state/notify', \
         recursive=True)) if '/queue/' in f.path]))",
    );
    assert_eq!(objects.trim(), queued.to_string());

    receiver.set_down(false);
    let second = run("60s");
    assert_eq!(
        second["live"]["delivery"][0]["queued"], 0,
        "{}",
        second["live"]["delivery"]
    );
    let got: BTreeSet<String> = receiver
        .received()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    let mut detect = bin();
    s3.env(&mut detect);
    let findings = output_json(detect.args(["detect", "--format", "json", "--data", &url]));
    let owed: BTreeSet<String> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("finding/{}", f["id"].as_str().unwrap()))
        .collect();
    assert!(!owed.is_empty());
    assert!(
        owed.is_subset(&got),
        "missing: {:?}",
        owed.difference(&got).collect::<Vec<_>>()
    );
}
