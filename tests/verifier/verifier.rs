//! The reference verifier over HTTP (`mfascope verifier serve` as a child process): login flows
//! with codes from Debian's oathtool, replay refusal, revocation, push devices, no user
//! enumeration, rate limits with Retry-After, lockout across restarts, bounded bodies, TLS
//! (rustls, checked with curl and an openssl certificate), and a scan proving planted secrets
//! never reach events, logs, metrics, state or Parquet.

use crate::common;

use common::verifier::{Reply, Verifier, oathtool, uri_secret};
use serde_json::{Value, json};

const PW: &str = "Pw-planted-5b1c9e";

fn create(v: &Verifier, user: &str) {
    let r = v.admin(
        "POST",
        "/v1/admin/users",
        &json!({"user": user, "password": PW}),
    );
    assert_eq!(r.status, 201, "{r:?}");
}

fn enroll(v: &Verifier, user: &str, body: Value) -> Value {
    let r = v.admin("POST", &format!("/v1/admin/users/{user}/factors"), &body);
    assert_eq!(r.status, 201, "{r:?}");
    r.json()
}

fn login(v: &Verifier, user: &str, password: &str) -> Reply {
    let body = json!({"user": user, "password": password}).to_string();
    v.call("POST", "/v1/login", None, Some(&body))
}

fn challenge(v: &Verifier, user: &str) -> String {
    let r = login(v, user, PW);
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["challenge"].as_str().unwrap().to_string()
}

fn verify(v: &Verifier, challenge: &str, body: Value) -> Reply {
    let path = format!("/v1/login/{challenge}/verify");
    v.call("POST", &path, None, Some(&body.to_string()))
}

fn error(r: &Reply) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn oathtool_codes_log_in_once_and_sessions_and_factors_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let v = Verifier::start(&dir.path().join("state"), &[]);
    create(&v, "alice");
    let totp = enroll(
        &v,
        "alice",
        json!({"kind": "totp", "algorithm": "sha256", "digits": 8}),
    );
    let secret = uri_secret(totp["uri"].as_str().unwrap());
    let totp_id = totp["factor_id"].as_str().unwrap();
    let code = oathtool(&["--totp=sha256", "-d", "8", "-b", &secret]);

    let c = challenge(&v, "alice");
    let r = verify(&v, &c, json!({"factor": totp_id, "code": code}));
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.json()["token"].as_str().unwrap().to_string();
    let me = v.call("GET", "/v1/session", Some(&token), None);
    assert_eq!(
        (me.status, me.json()["user"].as_str()),
        (200, Some("alice"))
    );

    let c = challenge(&v, "alice");
    let r = verify(&v, &c, json!({"factor": totp_id, "code": code}));
    assert_eq!((r.status, error(&r)), (401, "replayed".into()), "{r:?}");

    // HOTP: look-ahead accepted, a counter behind refused, the next one accepted.
    let hotp = enroll(&v, "alice", json!({"kind": "hotp", "counter": 0}));
    let hsecret = uri_secret(hotp["uri"].as_str().unwrap());
    let hotp_id = hotp["factor_id"].as_str().unwrap();
    for (counter, status) in [(3, 200), (2, 401), (3, 401), (4, 200)] {
        let code = oathtool(&["--hotp", "-c", &counter.to_string(), "-b", &hsecret]);
        let c = challenge(&v, "alice");
        let r = verify(&v, &c, json!({"factor": hotp_id, "code": code}));
        assert_eq!(r.status, status, "HOTP counter {counter}: {r:?}");
    }

    // A token far beyond the look-ahead: refused, then resynchronised from two codes.
    let hcode = |c: u64| oathtool(&["--hotp", "-c", &c.to_string(), "-b", &hsecret]);
    let c = challenge(&v, "alice");
    let r = verify(&v, &c, json!({"factor": hotp_id, "code": hcode(60)}));
    assert_eq!((r.status, error(&r)), (401, "wrong_code".into()));
    let path = format!("/v1/admin/users/alice/factors/{hotp_id}/resync");
    let r = v.admin(
        "POST",
        &path,
        &json!({"first": hcode(61), "second": hcode(62)}),
    );
    assert_eq!(
        (r.status, r.json()["next_counter"].as_u64()),
        (200, Some(63)),
        "{r:?}"
    );
    let c = challenge(&v, "alice");
    assert_eq!(
        verify(&v, &c, json!({"factor": hotp_id, "code": hcode(63)})).status,
        200
    );

    // Revoking the session ends it; revoking a factor removes it from the challenge.
    assert_eq!(
        v.call("DELETE", "/v1/session", Some(&token), None).status,
        200
    );
    assert_eq!(v.call("GET", "/v1/session", Some(&token), None).status, 401);
    let path = format!("/v1/admin/users/alice/factors/{totp_id}");
    assert_eq!(v.admin("DELETE", &path, &Value::Null).status, 200);
    let r = login(&v, "alice", PW).json();
    let kinds: Vec<&str> = r["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["hotp"]);
    let c = r["challenge"].as_str().unwrap().to_string();
    let r = verify(&v, &c, json!({"factor": totp_id, "code": code}));
    assert_eq!((r.status, error(&r)), (404, "no_such_factor".into()));

    // Admin routes need the admin token.
    let r = v.call(
        "POST",
        "/v1/admin/users",
        Some("guess"),
        Some(r#"{"user":"x","password":"y"}"#),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn no_enumeration_and_rate_limits_answer_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let v = Verifier::start(
        &dir.path().join("state"),
        &["--user-rate", "0.01", "--user-burst", "2", "--ip-rate", "0"],
    );
    create(&v, "bob");
    let wrong = login(&v, "bob", "not-the-password");
    let unknown = login(&v, "nobody", "not-the-password");
    assert_eq!(wrong.status, 401);
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));
    // Both used one attempt of their user's burst of 2: the next passes, the one after is 429
    // — for the unknown user exactly as for the real one.
    assert_eq!(login(&v, "bob", "x").status, 401);
    assert_eq!(login(&v, "nobody", "x").status, 401);
    let (bob, nobody) = (login(&v, "bob", PW), login(&v, "nobody", "x"));
    assert_eq!((bob.status, error(&bob)), (429, "rate_limited".into()));
    assert_eq!((bob.status, &bob.body), (nobody.status, &nobody.body));
    let wait: u64 = bob.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1, "Retry-After {wait}");
    create(&v, "carol");
    assert_eq!(
        login(&v, "carol", PW).status,
        200,
        "other users are not limited"
    );

    let ip = Verifier::start(
        &dir.path().join("state-ip"),
        &["--ip-rate", "0.2", "--ip-burst", "3"],
    );
    let statuses: Vec<u16> = (0..5).map(|_| login(&ip, "x", "y").status).collect();
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
    let r = login(&ip, "x", "y");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let metrics = ip.call("GET", "/metrics", None, None).body;
    assert!(
        metrics.contains(r#"mfascope_verifier_rate_limited_total{scope="ip"} 3"#),
        "{metrics}"
    );
}

#[test]
fn lockout_survives_a_restart_bodies_are_bounded_and_push_needs_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let v = Verifier::start(&state, &["--lockout-after", "2", "--lockout", "10m"]);
    create(&v, "dave");
    let totp = enroll(&v, "dave", json!({"kind": "totp"}));
    let id = totp["factor_id"].as_str().unwrap().to_string();
    let push = enroll(&v, "dave", json!({"kind": "push"}));
    let (push_id, device) = (
        push["factor_id"].as_str().unwrap().to_string(),
        push["device_token"].as_str().unwrap().to_string(),
    );

    // Push: only the enrolled device sees and answers it.
    let c = challenge(&v, "dave");
    let r = v.call(
        "POST",
        &format!("/v1/login/{c}/push"),
        None,
        Some(&json!({"factor": push_id}).to_string()),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let p = r.json()["push_id"].as_str().unwrap().to_string();
    let pending = v.call("GET", "/v1/device/pushes", Some("other-device"), None);
    assert_eq!(pending.json()["pushes"], json!([]));
    let r = verify(&v, &c, json!({"factor": push_id, "push": true}));
    assert_eq!((r.status, error(&r)), (202, "push_pending".into()));
    let pending = v.call("GET", "/v1/device/pushes", Some(&device), None);
    assert_eq!(pending.json()["pushes"], json!([p]));
    let answer = json!({"approve": true}).to_string();
    let path = format!("/v1/device/pushes/{p}");
    assert_eq!(
        v.call("POST", &path, Some("other-device"), Some(&answer))
            .status,
        404
    );
    assert_eq!(
        v.call("POST", &path, Some(&device), Some(&answer)).status,
        200
    );
    assert_eq!(
        verify(&v, &c, json!({"factor": push_id, "push": true})).status,
        200
    );

    // Two wrong codes lock dave; the lock is on disk.
    for _ in 0..2 {
        let c = challenge(&v, "dave");
        let r = verify(&v, &c, json!({"factor": id, "code": "000000"}));
        assert_eq!(error(&r), "wrong_code", "{r:?}");
    }
    let r = login(&v, "dave", PW);
    assert_eq!((r.status, error(&r)), (429, "locked".into()));
    let (status, _) = v.stop();
    assert!(status.success(), "{status:?}");
    let v = Verifier::start(&state, &["--lockout-after", "2"]);
    let r = login(&v, "dave", PW);
    assert_eq!(
        (r.status, error(&r)),
        (429, "locked".into()),
        "after a restart"
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((500..=600).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        login(&v, "dave", "wrong").status,
        401,
        "a lock is only revealed to the password"
    );

    // Bodies: too large → 413; malformed → 400 naming the field.
    let big = format!(r#"{{"user":"dave","password":"{}"}}"#, "a".repeat(20_000));
    assert_eq!(v.call("POST", "/v1/login", None, Some(&big)).status, 413);
    let r = v.call(
        "POST",
        "/v1/login",
        None,
        Some(r#"{"user":"dave","password":7}"#),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"].as_str().unwrap().contains("password"),
        "{r:?}"
    );
}

/// Every whitespace/punctuation-separated token of `text`.
fn tokens(text: &str) -> std::collections::HashSet<&str> {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
        .collect()
}

#[test]
fn planted_secrets_never_reach_events_logs_metrics_state_or_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    let v = Verifier::start(
        &dir.path().join("state"),
        &["--events-out", events.to_str().unwrap()],
    );
    create(&v, "erin");
    let totp = enroll(&v, "erin", json!({"kind": "totp"}));
    let secret = uri_secret(totp["uri"].as_str().unwrap());
    let recovery = enroll(&v, "erin", json!({"kind": "recovery"}));
    let codes: Vec<String> = recovery["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let device = enroll(&v, "erin", json!({"kind": "push"}))["device_token"]
        .as_str()
        .unwrap()
        .to_string();
    let code = oathtool(&["--totp", "-b", &secret]);
    let c = challenge(&v, "erin");
    let r = verify(&v, &c, json!({"factor": totp["factor_id"], "code": code}));
    assert_eq!(r.status, 200);
    let session = r.json()["token"].as_str().unwrap().to_string();
    let c = challenge(&v, "erin");
    let r = verify(
        &v,
        &c,
        json!({"factor": recovery["factor_id"], "recovery_code": codes[0]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(login(&v, "erin", "Wrong-planted-77aa").status, 401);
    let metrics = v.call("GET", "/metrics", None, None).body;
    let admin = v.admin_token();
    let key = std::fs::read_to_string(v.state.join("secret.key")).unwrap();
    let (status, log) = v.stop();
    assert!(status.success());

    let out = dir.path().join("parquet");
    let summary = common::ingest_json(&[&events], &out);
    let lines = std::fs::read_to_string(&events).unwrap().lines().count() as u64;
    assert_eq!(summary["events"].as_u64(), Some(lines), "{summary}");
    assert_eq!(summary["deadletter"].as_u64(), Some(0), "{summary}");
    let stored = common::run_json(&[
        "query",
        "--data",
        out.to_str().unwrap(),
        "--sql",
        "SELECT * FROM events",
    ]);

    let secret_hex = data_encoding::HEXLOWER.encode(
        &data_encoding::BASE32_NOPAD
            .decode(secret.as_bytes())
            .unwrap(),
    );
    let mut planted = vec![
        PW.to_string(),
        "Wrong-planted-77aa".into(),
        secret.clone(),
        secret_hex,
        session,
        device,
        admin,
        key.trim().to_string(),
    ];
    planted.extend(codes.iter().cloned());
    planted.extend(codes.iter().map(|c| c.replace('-', "")));
    let mut state = String::new();
    for f in ["journal.ndjson", "state.json"] {
        state += &std::fs::read_to_string(dir.path().join("state").join(f)).unwrap_or_default();
    }
    let outputs = [
        ("events", std::fs::read_to_string(&events).unwrap()),
        ("log", log),
        ("metrics", metrics),
        ("state", state),
        ("parquet", stored.to_string()),
    ];
    for (name, text) in &outputs {
        assert!(
            text.len() > 100,
            "{name} is empty: the scan would prove nothing"
        );
        for p in &planted {
            assert!(
                !text.contains(p.as_str()),
                "a planted secret reached the {name}"
            );
        }
        // The accepted code is short: it must not appear as a token of its own.
        assert!(
            !tokens(text).contains(code.as_str()),
            "the OTP code reached the {name}"
        );
    }
}

/// `curl -sS ARGS…`: exit status and stdout + stderr.
fn curl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("curl")
        .arg("-sS")
        .args(args)
        .output()
        .expect("curl (Debian package) runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A self-signed P-256 certificate for `name` (also valid for 127.0.0.1) made by openssl in
/// `dir`: (certificate, key) PEM files.
fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
        ])
        .arg(format!("subjectAltName=IP:127.0.0.1,DNS:{name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

#[test]
fn tls_serves_the_api_with_the_given_certificate_and_nothing_in_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(tmp.path(), "localhost");
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let v = Verifier::start(
        &tmp.path().join("state"),
        &["--tls-cert", cert_s, "--tls-key", key_s],
    );
    assert_eq!(v.scheme, "https");
    let url = v.url();
    let admin = format!("Authorization: Bearer {}", v.admin_token());
    // The API over TLS, trusting exactly the given certificate.
    let (ok, text) = curl(&[
        "--cacert",
        cert_s,
        "-X",
        "POST",
        "-H",
        &admin,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"user":"tls-user","password":"pw over tls"}"#,
        &format!("{url}/v1/admin/users"),
    ]);
    assert!(ok && text.contains(r#""user":"tls-user""#), "{text}");
    let login = format!("{url}/v1/login");
    let wrong = r#"{"user":"tls-user","password":"wrong"}"#;
    let (_, text) = curl(&[
        "--cacert",
        cert_s,
        "-d",
        wrong,
        "-H",
        "Content-Type: application/json",
        &login,
    ]);
    assert!(text.contains("invalid_credentials"), "{text}");
    // The certificate is what the client checks: without trusting it, no connection.
    let (ok, text) = curl(&[&format!("{url}/healthz")]);
    assert!(!ok && text.contains("certificate"), "{text}");
    // Plain HTTP on the TLS port gets no answer from the API.
    let (ok, text) = curl(&[&format!("http://{}/healthz", v.addr)]);
    assert!(!ok && !text.contains("status"), "{text}");
    // A key that is not the certificate's: refused at start, naming both files.
    let (_, other_key) = self_signed(tmp.path(), "other");
    let bad = common::bin()
        .args(["verifier", "serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(tmp.path().join("state2"))
        .args(["--tls-cert", cert_s, "--tls-key"])
        .arg(&other_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(cert_s) && stderr.contains(other_key.to_str().unwrap()),
        "{stderr}"
    );
}
