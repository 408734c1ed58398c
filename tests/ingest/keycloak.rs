//! Real Keycloak logs round-trip: a private Keycloak 26 (`scripts/keycloak`, its own port so
//! its logs hold only this test's traffic) is driven through a known mix — sign-ins with the
//! OTP step, wrong codes, a brute-force lockout, an OTP enrolment and its removal by an admin
//! (`tests/common/keycloak_driver.py`) — and each form of Keycloak's own log output is
//! ingested: the JSON console, the dated server log, and the events logger in a dateless
//! pattern (old WildFly releases' default) with and without `--assume-date`. The canonical
//! events and the SLIs equal what the driver did.

use std::path::Path;
use std::process::Command;

use crate::common;

/// Stops the private Keycloak however the test ends.
struct Keycloak(&'static str);
impl Drop for Keycloak {
    fn drop(&mut self) {
        let _ = Command::new("scripts/keycloak")
            .arg("stop")
            .env("MFASCOPE_KEYCLOAK_PORT", self.0)
            .status();
    }
}

/// Events per `action/outcome` in an output (pyarrow).
fn counts(out: &Path) -> serde_json::Value {
    let script = "import json, sys, collections, pyarrow.dataset as ds\n\
                  t = ds.dataset(sys.argv[1] + '/events', format='parquet', partitioning='hive')\
                  .to_table(columns=['action', 'outcome', 'source'])\n\
                  assert set(t.column('source').to_pylist()) == {'keycloak'}\n\
                  c = collections.Counter(f'{a}/{o}' for a, o in zip(t.column('action').to_pylist(), \
                  t.column('outcome').to_pylist()))\n\
                  print(json.dumps(dict(sorted(c.items()))))";
    serde_json::from_slice(&common::py(script, &[out])).unwrap()
}

/// The SLI report of an output (`mfascope sli --data OUT --bucket 1d`).
fn sli_report(out: &Path) -> serde_json::Value {
    let out = out.display().to_string();
    common::run_json(&["sli", "--data", &out, "--bucket", "1d"])
}

/// The sum of `field` over the rows of SLI `query` in `report`.
fn sli(report: &serde_json::Value, query: &str, field: &str) -> u64 {
    let q = report["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == query)
        .unwrap_or_else(|| panic!("no SLI {query}: {report}"));
    q["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_u64().unwrap())
        .sum()
}

#[test]
fn real_keycloak_logs_become_the_events_and_slis_the_driver_caused() {
    let port = "18090";
    let _guard = Keycloak(port);
    let started = Command::new("scripts/keycloak")
        .arg("start")
        .env("MFASCOPE_KEYCLOAK_PORT", port)
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "scripts/keycloak start: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let dir = Command::new("scripts/keycloak")
        .arg("dir")
        .env("MFASCOPE_KEYCLOAK_PORT", port)
        .output()
        .unwrap();
    let kc = std::path::PathBuf::from(String::from_utf8(dir.stdout).unwrap().trim());
    let driven = common::output_json(
        Command::new(common::s3::python())
            .arg("tests/common/keycloak_driver.py")
            .arg(kc.join("credentials.json")),
    );
    assert_eq!(driven["lockouts"], 1, "{driven}");
    // What the driver did, as canonical events.
    let n = |k: &str| driven[k].as_u64().unwrap();
    let expected = serde_json::json!({
        "enroll_complete/success": n("enrolled"),
        "factor_remove/success": n("removed_by_admin"),
        "lockout/failure": n("lockouts"),
        "mfa_verify/failure": n("mfa_failure"),
        "mfa_verify/success": n("mfa_success"),
        "primary_auth/failure": n("refused_locked"),
        "primary_auth/success": n("admin_logins"),
    });
    let total: u64 = expected
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    // Keycloak writes each record as it happens; give the file handlers a moment.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let work = tempfile::tempdir().unwrap();
    let dated = kc.join("keycloak.log");
    let text = std::fs::read_to_string(&dated).unwrap();
    let date = text
        .lines()
        .find(|l| l.contains("[org.keycloak.events]"))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();

    // The events logger without a date: every event line is a dead letter saying so …
    let events_log = kc.join("events.log");
    let lines = std::fs::read_to_string(&events_log)
        .unwrap()
        .lines()
        .count() as u64;
    let undated = work.path().join("undated");
    let s = common::ingest_json(&[&events_log], &undated);
    assert_eq!(
        (s["events"].as_u64(), s["deadletter"].as_u64()),
        (Some(0), Some(lines)),
        "{s}"
    );
    let reasons = common::py(
        "import glob, json, sys\n\
         print(json.dumps(sorted({json.loads(l)['reason'] for f in glob.glob(sys.argv[1] + '/deadletter/*.ndjson') for l in open(f)})))",
        &[&undated],
    );
    let reasons: Vec<String> = serde_json::from_slice(&reasons).unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("no date") && reasons[0].contains("--assume-date"),
        "{reasons:?}"
    );

    // Every secret scripts/keycloak made, none of which may reach a table.
    let creds = std::fs::read_to_string(kc.join("credentials.json")).unwrap();
    let creds: serde_json::Value = serde_json::from_str(&creds).unwrap();
    let mut secrets = vec![creds["client_secret"].as_str().unwrap().to_string()];
    for user in creds["users"].as_object().unwrap().values() {
        for field in ["password", "totp_secret"] {
            if let Some(s) = user[field].as_str() {
                secrets.push(s.to_string());
            }
        }
    }

    // … and with `--assume-date`, the same events as the dated forms.
    for (name, input, extra) in [
        (
            "events-dateless",
            events_log.clone(),
            vec!["--assume-date", date.as_str()],
        ),
        ("server-log", dated.clone(), vec![]),
        ("console-json", kc.join("console.json"), vec![]),
    ] {
        let out = work.path().join(name);
        let mut args = vec!["ingest", "--no-progress", "--format", "json", "--out"];
        let out_s = out.display().to_string();
        let input_s = input.display().to_string();
        args.push(&out_s);
        args.extend(extra.iter().copied());
        args.push(&input_s);
        let s = common::run_json(&args);
        assert_eq!(s["events"].as_u64(), Some(total), "{name}: {s}");
        // Dead letters: only what is neither a JSON record nor a server-log line (the console
        // also carries the JVM's warnings and kc.sh's own messages).
        let stray = common::py(
            r"import re, sys
log = re.compile(r'^(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d,\d+ +[A-Z]+ +\[')
print(sum(1 for l in open(sys.argv[1]) if l.strip() and not l.startswith('{') and not log.match(l)))",
            &[&input],
        );
        let stray: u64 = String::from_utf8(stray).unwrap().trim().parse().unwrap();
        assert_eq!(s["deadletter"].as_u64(), Some(stray), "{name}: {s}");
        assert_eq!(counts(&out), expected, "{name}");
        // M1: the MFA steps; M3: the enrolment; M8: the lockout.
        let report = sli_report(&out);
        for (query, field, want) in [
            ("mfa_success_rate", "successes", n("mfa_success")),
            (
                "mfa_success_rate",
                "attempts",
                n("mfa_success") + n("mfa_failure"),
            ),
            ("enrollment_completion", "completed", n("enrolled")),
            ("blocked_attempts", "lockouts", n("lockouts")),
        ] {
            assert_eq!(sli(&report, query, field), want, "{name}: {query}.{field}");
        }
        // Nothing secret reached the table.
        common::assert_no_secret_in_tree(&out, &secrets);
    }
}
