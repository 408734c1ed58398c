//! `mfascope probe` end to end: against the reference verifier (every check, JUnit read by
//! Python's XML parser, events accepted by `mfascope ingest` and read back by pyarrow), against
//! a real privacyIDEA (scripts/privacyidea), and the exit code 3 when a check fails or a
//! threshold is missed.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::py;
use common::verifier::Verifier;

/// `(tests, failures, testcase names)` of a JUnit file, read by Python's XML parser.
fn junit(path: &Path) -> (u64, u64, Vec<String>) {
    let script = "import sys, xml.etree.ElementTree as E\n\
                  r = E.parse(sys.argv[1]).getroot()\n\
                  print(r.get('tests'), r.get('failures'))\n\
                  print(' '.join(c.get('name') for c in r.iter('testcase')))";
    let text = String::from_utf8(py(script, &[path])).unwrap();
    let mut lines = text.lines();
    let mut counts = lines.next().unwrap().split(' ').map(|n| n.parse().unwrap());
    let names = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .map(String::from)
        .collect();
    (counts.next().unwrap(), counts.next().unwrap(), names)
}

/// Count rows per source in stored Parquet with pyarrow.
fn parquet_sources(out: &Path) -> serde_json::Value {
    let script = "import sys, json, collections, pyarrow.dataset as ds\n\
                  t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table(columns=['source'])\n\
                  print(json.dumps(collections.Counter(str(s) for s in t.column('source').to_pylist())))";
    serde_json::from_slice(&py(script, &[&out.join("events")])).unwrap()
}

fn probe(config: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = common::bin()
        .args(["probe", "--format", "json", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON summary; stderr: {stderr}"));
    (out.status.code(), summary, stderr)
}

fn lines(path: &Path) -> u64 {
    std::fs::read_to_string(path).unwrap().lines().count() as u64
}

const ALL_CHECKS: [&str; 8] = [
    "totp_success",
    "wrong_code",
    "replay",
    "recovery_code_single_use",
    "lockout",
    "push_approve",
    "push_deny",
    "push_timeout",
];

#[test]
fn every_check_passes_against_the_reference_verifier_and_the_events_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let verifier_events = d.join("verifier.ndjson");
    let v = Verifier::start(
        &d.join("state"),
        &[
            "--events-out",
            verifier_events.to_str().unwrap(),
            "--push-timeout",
            "1s",
            "--lockout-after",
            "3",
        ],
    );
    let config = v.probe_config(&d.join("probe.toml"), "", "lockout_after = 3\n");
    let (junit_path, probe_events) = (d.join("junit.xml"), d.join("probe.ndjson"));
    let (code, summary, stderr) = probe(
        &config,
        &[
            "--target",
            &v.url(),
            "--count",
            "2",
            "--max-p95",
            "1000",
            "--junit",
            junit_path.to_str().unwrap(),
            "--events-out",
            probe_events.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{summary:#}\n{stderr}");
    assert_eq!(summary["verdict"]["ok"], true);
    assert_eq!(summary["verdict"]["success_rate"], 1.0);
    assert_eq!(summary["runs"].as_array().unwrap().len(), 16);
    let (tests, failures, names) = junit(&junit_path);
    assert_eq!((tests, failures), (8, 0));
    assert_eq!(names, ALL_CHECKS);

    // The probe users are gone again.
    let state = std::fs::read_to_string(d.join("state/journal.ndjson")).unwrap();
    assert_eq!(
        state.matches(r#""op":"remove_user""#).count(),
        6,
        "3 users × 2 iterations deleted"
    );
    let (status, _) = v.stop();
    assert!(status.success());

    // Both event streams go through the pipeline; pyarrow reads them back.
    let out = d.join("parquet");
    let s = common::ingest_json(&[&verifier_events, &probe_events], &out);
    let (nv, np) = (lines(&verifier_events), lines(&probe_events));
    assert!(nv > 50 && np > 40, "{nv} verifier and {np} probe events");
    assert_eq!(s["events"].as_u64(), Some(nv + np), "{s}");
    assert_eq!(s["deadletter"].as_u64(), Some(0), "{s}");
    let sources = parquet_sources(&out);
    assert_eq!(sources["verifier"].as_u64(), Some(nv), "{sources}");
    assert_eq!(sources["probe"].as_u64(), Some(np), "{sources}");
    // What the probe saw, as the success-rate SLI computes it: its expected rejections (wrong,
    // replayed, reused, locked, denied, timed out) are failures, its logins successes.
    let sli = common::run_json(&[
        "sli",
        "--data",
        out.to_str().unwrap(),
        "--only",
        "mfa_success_rate",
        "--by",
        "source",
    ]);
    assert!(sli.to_string().contains("probe"), "{sli}");

    // Nothing secret in what the probe wrote.
    let admin = std::fs::read_to_string(d.join("state/admin.token")).unwrap();
    for f in [&junit_path, &probe_events] {
        assert!(!std::fs::read_to_string(f).unwrap().contains(admin.trim()));
    }
}

#[test]
fn a_failed_check_or_a_missed_threshold_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = Verifier::start(&d.join("state"), &["--push-timeout", "1s"]);
    let checks = "checks = [\"totp_success\", \"replay\"]\n";
    let config = v.probe_config(&d.join("probe.toml"), checks, "");
    let (code, summary, _) = probe(&config, &["--target", &v.url(), "--max-p95", "0.001"]);
    assert_eq!(code, Some(3), "{summary:#}");
    assert_eq!(summary["verdict"]["success_rate"], 1.0, "the checks passed");
    let why = summary["verdict"]["violations"].to_string();
    assert!(why.contains("--max-p95"), "{why}");

    // A dead target: every check fails, with a reason, in JUnit too.
    let junit_path = d.join("junit.xml");
    let (code, summary, _) = probe(
        &config,
        &[
            "--target",
            "http://127.0.0.1:9",
            "--junit",
            junit_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(3));
    assert_eq!(summary["verdict"]["success_rate"], 0.0);
    assert!(summary.to_string().contains("cannot connect"), "{summary}");
    assert_eq!(junit(&junit_path).1, 2);

    // A wrong admin token is a failed setup, not a crash.
    std::fs::write(d.join("state/admin.token"), "not-the-token\n").unwrap();
    let (code, summary, _) = probe(&config, &["--target", &v.url()]);
    assert_eq!(code, Some(3));
    assert!(summary.to_string().contains("setup failed"), "{summary}");

    // Config mistakes are named.
    std::fs::write(&config, "kind = \"privacyidea\"\nchecks = [\"lockout\"]\n[privacyidea]\nuser = \"a\"\npin = { env = \"X\" }\nsecret = { env = \"Y\" }\n").unwrap();
    let out = common::bin()
        .args(["probe", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("check lockout is not supported"), "{err}");
}

/// Stops the privacyIDEA test server however the test ends.
struct PrivacyIdea(std::path::PathBuf);

impl Drop for PrivacyIdea {
    fn drop(&mut self) {
        let _ = Command::new("scripts/privacyidea")
            .arg("stop")
            .env("MFASCOPE_PI_DIR", &self.0)
            .status();
    }
}

#[test]
fn totp_checks_pass_against_a_real_privacyidea() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inst = d.join("pi");
    let started = Command::new("scripts/privacyidea")
        .args(["start", "15071"])
        .env("MFASCOPE_PI_DIR", &inst)
        .output()
        .unwrap();
    let _guard = PrivacyIdea(inst.clone());
    if !started.status.success() {
        // Only where pip cannot install it (no PyPI): say so loudly.
        let err = String::from_utf8_lossy(&started.stderr);
        assert!(
            err.contains("pip") || err.contains("install"),
            "privacyIDEA did not start: {err}"
        );
        eprintln!("SKIPPED: privacyIDEA cannot be installed here: {err}");
        return;
    }
    let env = String::from_utf8(started.stdout).unwrap();
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let config = d.join("pi.toml");
    std::fs::write(
        &config,
        format!(
            "kind = \"privacyidea\"\nurl = \"{}\"\n[privacyidea]\nuser = \"{}\"\nrealm = \"{}\"\npin = {{ file = \"{}\" }}\nsecret = {{ file = \"{}\" }}\n",
            get("PI_URL"),
            get("PI_USER"),
            get("PI_REALM"),
            get("PI_PIN_FILE"),
            get("PI_SECRET_FILE")
        ),
    )
    .unwrap();
    let (junit_path, events) = (d.join("junit.xml"), d.join("events.ndjson"));
    let (code, summary, stderr) = probe(
        &config,
        &[
            "--junit",
            junit_path.to_str().unwrap(),
            "--events-out",
            events.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{summary:#}\n{stderr}");
    let (tests, failures, names) = junit(&junit_path);
    assert_eq!((tests, failures), (3, 0));
    assert_eq!(names, ["totp_success", "wrong_code", "replay"]);
    let out = d.join("parquet");
    let s = common::ingest_json(&[&events], &out);
    assert_eq!(s["events"].as_u64(), Some(3), "{s}");
    let reasons: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}/{}",
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        reasons,
        ["success/-", "failure/wrong_code", "failure/replay"]
    );

    // Neither the seed nor any code valid during the run (alone or after the PIN) is in what the
    // probe wrote.
    use mfascope::verifier::otp::{Params, secret_from_base32, totp};
    let pin = std::fs::read_to_string(get("PI_PIN_FILE")).unwrap();
    let seed = std::fs::read_to_string(get("PI_SECRET_FILE")).unwrap();
    let key = secret_from_base32(seed.trim()).unwrap();
    let now = chrono::Utc::now().timestamp();
    // privacyIDEA takes PIN and code together as one password.
    let codes: Vec<String> = (-20..=2)
        .map(|step| totp(&key, now + step * 30, &Params::default()).unwrap())
        .flat_map(|code| [format!("{}{code}", pin.trim()), code])
        .collect();
    let written = [
        std::fs::read_to_string(&junit_path).unwrap(),
        std::fs::read_to_string(&events).unwrap(),
        summary.to_string(),
        stderr,
    ]
    .join("\n");
    assert!(
        !written.contains(seed.trim()),
        "the seed was written: {written}"
    );
    for code in &codes {
        let whole = written.match_indices(code.as_str()).any(|(i, _)| {
            let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
            !digit(written[..i].chars().last()) && !digit(written[i + code.len()..].chars().next())
        });
        assert!(!whole, "code {code} was written: {written}");
    }
}

/// The suite's Keycloak (`scripts/test` starts it and sets `MFASCOPE_KEYCLOAK`) and the
/// credentials `scripts/keycloak` made for it.
fn keycloak() -> (String, serde_json::Value) {
    let url = std::env::var("MFASCOPE_KEYCLOAK").expect(
        "MFASCOPE_KEYCLOAK is not set: run scripts/test (it starts Keycloak), or \
         `export MFASCOPE_KEYCLOAK=$(scripts/keycloak start)`",
    );
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let dir = Command::new("scripts/keycloak")
        .arg("dir")
        .env("MFASCOPE_KEYCLOAK_PORT", port)
        .output()
        .unwrap();
    let dir = String::from_utf8(dir.stdout).unwrap();
    let creds = std::fs::read_to_string(Path::new(dir.trim()).join("credentials.json")).unwrap();
    (url, serde_json::from_str(&creds).unwrap())
}

/// Change the realm through Keycloak's admin REST API (as its admin, from the master realm; the
/// password goes by environment, never on a command line a failure would print).
fn update_realm(url: &str, creds: &serde_json::Value, change: &serde_json::Value) {
    let script = "import json, os, sys, requests\n\
                  url, change = sys.argv[1], json.loads(sys.argv[2])\n\
                  t = requests.post(url + '/realms/master/protocol/openid-connect/token', data={\n\
                      'grant_type': 'password', 'client_id': 'admin-cli', 'username': 'admin',\n\
                      'password': os.environ['KC_ADMIN_PASSWORD']}).json()['access_token']\n\
                  r = requests.put(url + '/admin/realms/mfascope', json=change,\n\
                      headers={'Authorization': 'Bearer ' + t})\n\
                  assert r.status_code == 204, r.status_code\n";
    let status = Command::new(common::s3::python())
        .args(["-c", script, url, &change.to_string()])
        .env(
            "KC_ADMIN_PASSWORD",
            creds["admin"]["password"].as_str().unwrap(),
        )
        .status()
        .unwrap();
    assert!(status.success(), "updating the realm with {change}");
}

/// The realm's OTP policy (tests/keycloak/realm.json), codes reusable or not. Keycloak replaces
/// the policy only when the whole of it is given.
fn otp_policy(reusable: bool) -> serde_json::Value {
    serde_json::json!({
        "otpPolicyType": "totp",
        "otpPolicyAlgorithm": "HmacSHA1",
        "otpPolicyDigits": 6,
        "otpPolicyPeriod": 30,
        "otpPolicyLookAheadWindow": 1,
        "otpPolicyInitialCounter": 0,
        "otpPolicyCodeReusable": reusable,
    })
}

/// Restores the realm's OTP policy however the test ends.
struct ReusableCodes<'a>(&'a str, &'a serde_json::Value);
impl Drop for ReusableCodes<'_> {
    fn drop(&mut self) {
        update_realm(self.0, self.1, &otp_policy(false));
    }
}

/// The `keycloak` probe kind against a real Keycloak 26 (password grant with `totp`): all four
/// checks pass, the events say what Keycloak answered, and no secret or code appears in what
/// the probe writes. Then the realm's OTP policy is changed under it (codes may be reused): the
/// probe exits 3 and the JUnit report fails exactly the replay check.
#[test]
fn the_keycloak_probe_passes_against_real_keycloak_and_fails_when_its_otp_policy_breaks() {
    let (url, creds) = keycloak();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = |name: &str, value: &serde_json::Value| {
        let path = d.join(name);
        std::fs::write(&path, value.as_str().unwrap()).unwrap();
        path.display().to_string()
    };
    let users = &creds["users"];
    let config = d.join("keycloak.toml");
    std::fs::write(
        &config,
        format!(
            "kind = \"keycloak\"\nurl = \"{url}\"\n[keycloak]\nrealm = \"mfascope\"\n\
             client_id = \"{}\"\nclient_secret = {{ file = \"{}\" }}\nuser = \"probe\"\n\
             password = {{ file = \"{}\" }}\nsecret = {{ file = \"{}\" }}\n\
             [keycloak.lockout]\nuser = \"lockout\"\npassword = {{ file = \"{}\" }}\n\
             secret = {{ file = \"{}\" }}\n",
            creds["client_id"].as_str().unwrap(),
            secret("client-secret", &creds["client_secret"]),
            secret("password", &users["probe"]["password"]),
            secret("totp", &users["probe"]["totp_secret"]),
            secret("lockout-password", &users["lockout"]["password"]),
            secret("lockout-totp", &users["lockout"]["totp_secret"]),
        ),
    )
    .unwrap();
    let (junit_path, events) = (d.join("junit.xml"), d.join("events.ndjson"));
    let args = [
        "--junit",
        junit_path.to_str().unwrap(),
        "--events-out",
        events.to_str().unwrap(),
    ];
    let (code, summary, stderr) = probe(&config, &args);
    assert_eq!(code, Some(0), "{summary:#}\n{stderr}");
    let (tests, failures, names) = junit(&junit_path);
    assert_eq!((tests, failures), (4, 0));
    assert_eq!(names, ["totp_success", "wrong_code", "replay", "lockout"]);
    let answers: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}:{}/{}",
                e["user"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or("-")
            )
        })
        .collect();
    let refused = |user: &str| format!("{user}:failure/invalid_grant");
    assert_eq!(
        answers,
        [
            "probe:success/-".to_string(),
            refused("probe"),
            refused("probe"),
            refused("lockout"),
            refused("lockout"),
            refused("lockout"),
            refused("lockout"),
        ]
    );
    // No secret, and no code valid during the run, in anything the probe wrote.
    use mfascope::verifier::otp::{Params, secret_from_base32, totp};
    let now = chrono::Utc::now().timestamp();
    let mut secrets: Vec<String> = ["probe", "lockout"]
        .iter()
        .flat_map(|u| {
            let key = secret_from_base32(users[u]["totp_secret"].as_str().unwrap()).unwrap();
            (-10..=2)
                .map(move |step| totp(&key, now + step * 30, &Params::default()).unwrap())
                .chain([
                    users[u]["password"].as_str().unwrap().to_string(),
                    users[u]["totp_secret"].as_str().unwrap().to_string(),
                ])
        })
        .collect();
    secrets.push(creds["client_secret"].as_str().unwrap().to_string());
    let written = [
        std::fs::read_to_string(&junit_path).unwrap(),
        std::fs::read_to_string(&events).unwrap(),
        summary.to_string(),
        stderr,
    ]
    .concat();
    for s in &secrets {
        assert!(
            !written.contains(s.as_str()),
            "a secret or code was written"
        );
    }

    // OTP broken under the probe: the realm now accepts a code twice.
    let _restore = ReusableCodes(&url, &creds);
    update_realm(&url, &creds, &otp_policy(true));
    let (code, summary, stderr) = probe(&config, &args);
    assert_eq!(code, Some(3), "{summary:#}\n{stderr}");
    let failed = String::from_utf8(py(
        "import sys, xml.etree.ElementTree as E\n\
         r = E.parse(sys.argv[1]).getroot()\n\
         print(' '.join(c.get('name') for c in r.iter('testcase') if c.find('failure') is not None))",
        &[&junit_path],
    ))
    .unwrap();
    assert_eq!(failed.trim(), "replay", "{summary:#}");
}
