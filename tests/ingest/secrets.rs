//! Secrets never leave: known OTP codes, TOTP seeds, passwords, session tokens and recovery
//! codes are planted in records of every input format (as secret-named fields, inside URLs and
//! free text, in provisioning URIs, in Keycloak log lines, in envelopes and in records that
//! become dead letters), and every output of a run is searched for them: the Parquet of
//! events and findings read back by pyarrow, the dead letters and state files, the ingest summary,
//! its debug log, the `/metrics` page, `detect`, `query`, `sli`, `slo` and the dashboard's three
//! views. And `--pseudonymize-key`: users, actors and IPs become keyed pseudonyms, the same in
//! every run, with the same findings.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{VENDORS, bin, generate, get, metrics_address, py, value};
use serde_json::{Value, json};

const CODE: &str = "804216";
const SEED: &str = "JBSWY3DPEHPK3PXPKRSXG5CTMVRXEZLU";
const PASSWORD: &str = "Tr0ub4dor-Correct-Horse";
const TOKEN: &str = "sess_9f8e7d6c5b4a3921";
const RECOVERY: &str = "rc-5521-8842-1397";
const SECRETS: [&str; 5] = [CODE, SEED, PASSWORD, TOKEN, RECOVERY];

/// The planted secrets in the places vendors put them: secret-named fields (top level and
/// nested), a URL query, a free-text message and a provisioning URI.
fn plant(record: &mut Value) {
    let obj = record.as_object_mut().expect("a JSON object record");
    obj.insert("otp".into(), json!(CODE));
    obj.insert(
        "debugData".into(),
        json!({
            "passCode": CODE,
            "totp_secret": SEED,
            "password": PASSWORD,
            "sessionToken": TOKEN,
            "recoveryCode": RECOVERY,
        }),
    );
    obj.insert(
        "requestUri".into(),
        json!(format!(
            "/api/v1/authn/factors/opf1/verify?passCode={CODE}&stateToken={TOKEN}&rememberDevice=false"
        )),
    );
    obj.insert(
        "message".into(),
        json!(format!(
            "step-up answered: password={PASSWORD} recovery_code={RECOVERY}"
        )),
    );
    obj.insert(
        "enrollUri".into(),
        json!(format!("otpauth://totp/Acme:ann?secret={SEED}&issuer=Acme")),
    );
}

/// A Keycloak event line with the secrets among its `key="value"` pairs.
fn plant_line(line: &str) -> String {
    format!(
        "{line}, password=\"{PASSWORD}\", otp=\"{CODE}\", totp_secret=\"{SEED}\", token=\"{TOKEN}\", recovery_code=\"{RECOVERY}\", uri=\"otpauth://totp/x?secret={SEED}\""
    )
}

/// Writes `dir/planted-VENDOR.ndjson` for every vendor: generated traffic with attacks, the
/// secrets planted in every record, plus an envelope of planted records (where the vendor has
/// one) and three records that become dead letters (truncated, unrecognized, garbage text), all
/// carrying the secrets. Returns the files and the number of records in them.
fn planted_inputs(dir: &Path) -> (Vec<PathBuf>, u64) {
    let mut files = Vec::new();
    let mut records = 0;
    for &vendor in VENDORS.iter() {
        let generated = generate(
            dir,
            &format!("gen-{vendor}"),
            &[
                "--log-format",
                vendor,
                "--events",
                "400",
                "--attacks",
                "--seed",
                "5",
            ],
        );
        let mut lines: Vec<String> = Vec::new();
        let mut planted: Vec<Value> = Vec::new();
        for line in std::fs::read_to_string(&generated).unwrap().lines() {
            if vendor == "keycloak" {
                lines.push(plant_line(line));
            } else {
                let mut v: Value = serde_json::from_str(line).unwrap();
                plant(&mut v);
                lines.push(v.to_string());
                planted.push(v);
            }
        }
        records += lines.len() as u64;
        let envelope = match vendor {
            "entra" => Some(json!({ "records": planted[..3] })),
            "cloudtrail" => Some(json!({ "Records": planted[..3] })),
            "duo" => Some(json!({ "response": { "authlogs": planted[..3] }, "stat": "OK" })),
            _ => None,
        };
        if let Some(e) = envelope {
            lines.push(e.to_string());
            records += 3;
        }
        // Dead letters: a cut record, a record of no known format, a line of text.
        let first = lines[0].clone();
        lines.push(first[..first.len() - 1].to_string());
        let mut unknown = json!({ "what": "not an auth log" });
        plant(&mut unknown);
        lines.push(unknown.to_string());
        lines.push(format!(
            "garbage {vendor} password={PASSWORD} code={CODE} secret={SEED} token={TOKEN}"
        ));
        records += 3;
        let path = dir.join(format!("planted-{vendor}.ndjson"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        files.push(path);
    }
    // A bypass code used with secrets beside it: a finding carrying the event's fields.
    let bypass = dir.join("planted-bypass.ndjson");
    std::fs::write(
        &bypass,
        format!(
            r#"{{"event_id":"b1","time":"2024-05-01T10:00:00Z","source":"canonical","user":"ann","action":"mfa_verify","factor":"bypass_code","outcome":"success","otp":"{CODE}","totp_secret":"{SEED}","password":"{PASSWORD}","session_token":"{TOKEN}","vendor_event_type":"verify"}}"#
        ) + "\n",
    )
    .unwrap();
    files.push(bypass);
    (files, records + 1)
}

/// Where a secret shows up in `text`, if anywhere (a code only as a whole number).
fn leak(text: &str) -> Option<&'static str> {
    SECRETS.into_iter().find(|s| {
        text.match_indices(s).any(|(i, _)| {
            if *s != CODE {
                return true;
            }
            let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
            !digit(text[..i].chars().last()) && !digit(text[i + s.len()..].chars().next())
        })
    })
}

fn assert_clean(what: &str, text: &str) {
    if let Some(secret) = leak(text) {
        let at = text.find(secret).unwrap();
        let from = at.saturating_sub(200);
        panic!(
            "{secret} leaked into {what}: …{}…",
            &text[text.floor_char_boundary(from)..text.ceil_char_boundary(at + 100)]
        );
    }
}

/// Every Parquet file under `dir`, read by pyarrow, as JSON text (one line per file).
fn parquet_text(dir: &Path) -> String {
    let script = r#"
import glob, json, sys, pyarrow.parquet as pq
for f in sorted(glob.glob(sys.argv[1] + "/**/*.parquet", recursive=True)):
    print(json.dumps({"file": f, "rows": pq.read_table(f).to_pylist()}, default=str))
"#;
    String::from_utf8(py(script, &[dir])).unwrap()
}

/// Every non-Parquet file under `dir` (state, checkpoints, intent logs), as text.
fn other_files_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in walk(dir) {
        if entry.extension().is_none_or(|x| x != "parquet") {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&entry).unwrap()));
        }
    }
    text
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// stdout of a successful `mfascope ARGS`.
fn stdout(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn planted_secrets_in_every_format_reach_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (inputs, records) = planted_inputs(tmp.path());
    let out = tmp.path().join("out");
    // A live run: debug log on stderr, metrics scraped while it runs, raw records kept.
    let mut child = bin()
        .args(["ingest", "--follow", "--no-progress", "--format", "json"])
        .args([
            "--keep-raw",
            "--log",
            "debug",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--out")
        .arg(&out)
        .args(&inputs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, mut stderr) = metrics_address(child.stderr.take().unwrap());
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let page = get(&addr, "/metrics");
        if value(&page, "mfascope_ingest_records_total") == Some(records as f64) {
            break page;
        }
        assert!(Instant::now() < deadline, "never caught up:\n{page}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let log = log.join().unwrap();
    assert!(output.status.success(), "{log}");
    let summary = String::from_utf8(output.stdout).unwrap();
    let s: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(s["records"], records, "{summary}");
    // 3 broken records per vendor (a cut Keycloak line is still an event line), and the
    // envelope records repeating ids of events (an ignored record has no id to repeat).
    let repeats = s["deadletter_by_reason"]["duplicate record"]
        .as_u64()
        .unwrap();
    assert!((6..=9).contains(&repeats), "{summary}");
    assert_eq!(
        s["deadletter"],
        3 * VENDORS.len() as u64 - 1 + repeats,
        "{summary}"
    );
    let findings = s["live"]["detect"]["findings"].as_array().unwrap().len();
    assert!(findings > 0, "the run must produce findings to search");
    assert!(log.lines().count() > 10, "a debug log to search: {log}");

    // Everything the run wrote, read back independently.
    let parquet = parquet_text(&out);
    assert!(parquet.contains("/events/") && parquet.contains("/findings/"));
    let files = other_files_text(&out);
    // The secrets were there to find: the kept raw records and dead letters show redactions.
    assert!(parquet.matches("[REDACTED]").count() > 1000);
    assert!(parquet.contains("rememberDevice=false"), "raw kept");
    assert!(files.matches("[REDACTED]").count() >= 3 * VENDORS.len());

    let data = out.to_str().unwrap();
    let mut outputs = vec![
        ("Parquet (events, findings)", parquet),
        ("dead letters and state files", files),
        ("ingest summary", summary),
        ("debug log", log),
        ("/metrics", page),
        (
            "detect",
            stdout(&["detect", "--data", data, "--format", "json"]),
        ),
        (
            "query",
            stdout(&[
                "query",
                "--data",
                data,
                "--sql",
                "SELECT * FROM events",
                "--format",
                "json",
            ]),
        ),
        ("sli", stdout(&["sli", "--data", data, "--format", "json"])),
        ("slo", stdout(&["slo", "--data", data, "--format", "json"])),
    ];
    for view in ["executive", "oncall", "debug"] {
        outputs.push((
            "dashboard",
            stdout(&[
                "dashboard",
                "--data",
                data,
                "--snapshot",
                "--view",
                view,
                "--size",
                "200x60",
            ]),
        ));
    }
    for (what, text) in &outputs {
        assert!(!text.is_empty(), "{what} is empty");
        assert_clean(what, text);
    }
}

/// `ingest --pseudonymize-key KEY --format json` of `inputs` into `out`.
fn ingest_pseudonymized(inputs: &[&Path], out: &Path, key: &Path) -> Value {
    let mut args = vec!["ingest", "--no-progress", "--pseudonymize-key"];
    args.push(key.to_str().unwrap());
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    common::run_json(&args)
}

/// (user, actor, src_ip) of every event, ordered by event id, as pyarrow reads them.
fn identities(out: &Path) -> Vec<Value> {
    let script = r#"
import json, sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1] + "/events", format="parquet", partitioning="hive").to_table(
    columns=["event_id", "user", "actor", "src_ip", "raw"]).sort_by("event_id")
print(json.dumps(t.to_pylist()))
"#;
    serde_json::from_slice(&py(script, &[out])).unwrap()
}

#[test]
fn pseudonymize_key_replaces_identities_consistently_and_keeps_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let input = generate(
        d,
        "okta",
        &[
            "--log-format",
            "okta",
            "--events",
            "20000",
            "--attacks",
            "--seed",
            "9",
        ],
    );
    let bad = d.join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"actor\":{\"alternateId\":\"carol@acme.example\"},\"published\":\"never\"\n",
    )
    .unwrap();
    let (key, other_key) = (d.join("key"), d.join("other-key"));
    std::fs::write(&key, [0x5a; 32]).unwrap();
    std::fs::write(&other_key, [0xa5; 32]).unwrap();

    let plain = common::ingest_json(&[&input], &d.join("plain"));
    let a = ingest_pseudonymized(&[&input, &bad], &d.join("a"), &key);
    let b = ingest_pseudonymized(&[&input], &d.join("b"), &key);
    let c = ingest_pseudonymized(&[&input], &d.join("c"), &other_key);

    // The same findings, on pseudonyms.
    let rules = |s: &Value| -> Vec<String> {
        let mut v: Vec<String> = s["live"]["detect"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} {} {}", f["rule_name"], f["count"], f["evidence"]))
            .collect();
        v.sort();
        v
    };
    assert!(!rules(&plain).is_empty());
    assert_eq!(rules(&plain), rules(&a));
    assert_eq!(rules(&a), rules(&b));
    assert_eq!(rules(&a), rules(&c));
    let plain_ids = identities(&d.join("plain"));
    let (ids_a, ids_b, ids_c) = (
        identities(&d.join("a")),
        identities(&d.join("b")),
        identities(&d.join("c")),
    );
    assert_eq!(plain_ids.len(), 20000);
    // Same key, another run: the same pseudonyms; another key: others.
    assert_eq!(ids_a, ids_b);
    assert_eq!(ids_a.len(), plain_ids.len());
    let mut users = std::collections::HashMap::new();
    for ((p, x), y) in plain_ids.iter().zip(&ids_a).zip(&ids_c) {
        assert_eq!(p["event_id"], x["event_id"]);
        for field in ["user", "actor", "src_ip"] {
            if p[field].as_str().is_some_and(|v| !v.is_empty()) {
                let (pv, xv) = (p[field].as_str().unwrap(), x[field].as_str().unwrap());
                assert_ne!(pv, xv, "{field} kept");
                let prefix = if field == "src_ip" { "ip-" } else { "u-" };
                assert!(xv.starts_with(prefix) && !xv.contains(pv), "{xv}");
                assert_ne!(x[field], y[field], "another key, another pseudonym");
            }
        }
        // One user, one pseudonym; distinct users, distinct pseudonyms.
        let pseudonym = x["user"].to_string();
        let previous = users.insert(p["user"].to_string(), pseudonym.clone());
        assert!(previous.is_none_or(|prev| prev == pseudonym));
        assert_eq!(x["raw"], Value::Null, "no raw record kept");
    }
    let distinct: std::collections::HashSet<&String> = users.values().collect();
    assert_eq!(distinct.len(), users.len());

    // No real user name or IP anywhere in what the run wrote, dead letters included.
    let written = parquet_text(&d.join("a")) + &other_files_text(&d.join("a")) + &a.to_string();
    for p in plain_ids.iter().step_by(97) {
        for field in ["user", "src_ip"] {
            if let Some(v) = p[field].as_str().filter(|v| !v.is_empty()) {
                assert!(!written.contains(v), "{field} {v} written");
            }
        }
    }
    assert!(!written.contains("carol@acme.example"), "dead letter text");
    assert!(written.contains("[withheld: --pseudonymize-key]"));
    assert_eq!(a["deadletter"], 1);

    // Raw records cannot be both kept and pseudonymized; a short key is refused.
    let refused = |extra: &[&str]| {
        bin()
            .arg("ingest")
            .args(extra)
            .arg("--pseudonymize-key")
            .arg(&key)
            .args(["--out", d.join("x").to_str().unwrap()])
            .arg(&input)
            .output()
            .unwrap()
    };
    assert_eq!(refused(&["--keep-raw"]).status.code(), Some(2));
    std::fs::write(&key, "short\n").unwrap();
    let out = refused(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds 5 bytes"), "{err}");
}
