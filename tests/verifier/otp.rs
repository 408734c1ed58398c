//! `mfascope otp` against RFC 4226 Appendix D, RFC 6238 Appendix B and two independent
//! implementations: Debian's `oathtool` and PyPI's `pyotp` (both installed by `scripts/test`).
//! pyotp also loads the provisioning URIs and must find every parameter in them.

use std::path::Path;
use std::process::Command;

use crate::common;

/// The RFC 6238 Appendix A seeds (base32) per hash.
const SEEDS: [(&str, &str); 3] = [
    ("sha1", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
    (
        "sha256",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA",
    ),
    (
        "sha512",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA",
    ),
];

fn otp(args: &[&str]) -> String {
    let out = common::bin().arg("otp").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "otp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `--secret … --algorithm … --digits … --period …`.
fn params(secret: &str, alg: &str, digits: u32, period: u64) -> Vec<String> {
    [
        "--secret",
        secret,
        "--algorithm",
        alg,
        "--digits",
        &digits.to_string(),
        "--period",
        &period.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn totp(secret: &str, alg: &str, digits: u32, period: u64, time: i64) -> String {
    let mut args = vec!["code".to_string()];
    args.extend(params(secret, alg, digits, period));
    args.extend(["--time".to_string(), time.to_string()]);
    otp(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn hotp(secret: &str, digits: u32, counter: u64) -> String {
    otp(&[
        "code",
        "--secret",
        secret,
        "--digits",
        &digits.to_string(),
        "--counter",
        &counter.to_string(),
    ])
}

#[test]
fn codes_match_the_rfc_appendices() {
    let hotp_d = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    for (count, want) in hotp_d.iter().enumerate() {
        assert_eq!(
            hotp(SEEDS[0].1, 6, count as u64),
            *want,
            "RFC 4226 count {count}"
        );
    }
    let table: [(i64, [&str; 3]); 6] = [
        (59, ["94287082", "46119246", "90693936"]),
        (1_111_111_109, ["07081804", "68084774", "25091201"]),
        (1_111_111_111, ["14050471", "67062674", "99943326"]),
        (1_234_567_890, ["89005924", "91819424", "93441116"]),
        (2_000_000_000, ["69279037", "90698825", "38618901"]),
        (20_000_000_000, ["65353130", "77737706", "47863826"]),
    ];
    for (time, codes) in table {
        for ((alg, seed), want) in SEEDS.iter().zip(codes) {
            assert_eq!(
                totp(seed, alg, 8, 30, time),
                want,
                "RFC 6238 {alg} at {time}"
            );
        }
    }
}

/// Every vector of the shared fixture (`../shared/fixtures/rfc`), when the checkout has it
/// next door; the transcribed vectors above run regardless.
#[test]
fn codes_match_the_shared_rfc_fixture_when_present() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/rfc/otp_test_vectors.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("{} not present: skipped", path.display());
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for t in v["rfc4226_appendix_d"]["vectors"].as_array().unwrap() {
        let count = t["count"].as_u64().unwrap();
        assert_eq!(hotp(SEEDS[0].1, 6, count), t["hotp"], "count {count}");
        checked += 1;
    }
    let b = &v["rfc6238_appendix_b"];
    let seeds = b["seeds"].as_object().unwrap();
    for t in b["vectors"].as_array().unwrap() {
        let time = t["time"].as_i64().unwrap();
        for (alg, want) in t["totp"].as_object().unwrap() {
            let hex = seeds[alg]["hex"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let secret = mfascope::verifier::otp::base32(&bytes);
            let digits = b["digits"].as_u64().unwrap() as u32;
            let got = totp(&secret, &alg.to_lowercase(), digits, 30, time);
            assert_eq!(got, *want, "{alg} at {time}");
            checked += 1;
        }
    }
    assert!(
        checked >= 28,
        "only {checked} vectors in {}",
        path.display()
    );
}

/// Secrets of the lengths in use (80-bit legacy, 160, 256, 512 bits) and awkward times.
const SECRETS: [&str; 4] = [
    "JBSWY3DPEHPK3PXP",
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    "KRUGS4ZANFZSAYJAORSXG5BAONSWG4TFORSSA2LTEBTGK3LYMVZSAYLSMUQHEZLW",
    "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZGBQWEY3EMVTGOZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZGA",
];
const TIMES: [i64; 5] = [0, 59, 1_700_000_029, 2_147_483_648, 20_000_000_000];

#[test]
fn oathtool_computes_the_same_codes() {
    let mut compared = 0;
    for secret in SECRETS {
        for alg in ["sha1", "sha256", "sha512"] {
            for (digits, period) in [(6, 30), (7, 60), (8, 30)] {
                for time in TIMES {
                    let out = Command::new("oathtool")
                        .arg(format!("--totp={alg}"))
                        .args(["-d", &digits.to_string()])
                        .args(["-s", &format!("{period}s")])
                        .arg(format!("--now=@{time}"))
                        .args(["-b", secret])
                        .output()
                        .expect("oathtool (Debian package oathtool; scripts/test installs it)");
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let theirs = String::from_utf8(out.stdout).unwrap().trim().to_string();
                    assert_eq!(
                        totp(secret, alg, digits, period, time),
                        theirs,
                        "{alg} {digits} digits {period}s at {time} secret {secret}"
                    );
                    compared += 1;
                }
            }
        }
        for counter in [0, 1, 7, 1 << 33] {
            let out = Command::new("oathtool")
                .args(["--hotp", "-c", &counter.to_string(), "-b", secret])
                .output()
                .unwrap();
            let theirs = String::from_utf8(out.stdout).unwrap().trim().to_string();
            assert_eq!(hotp(secret, 6, counter), theirs, "HOTP {counter} {secret}");
            compared += 1;
        }
    }
    assert_eq!(compared, 4 * (3 * 3 * 5 + 4));
}

/// pyotp computes the same codes and loads our URIs with every parameter (secrets of 128
/// bits and more: pyotp, like `otp uri`, refuses to provision shorter ones).
#[test]
fn pyotp_computes_the_same_codes_and_loads_the_uris() {
    let mut cases = Vec::new();
    for secret in &SECRETS[1..] {
        for alg in ["sha1", "sha256", "sha512"] {
            for (digits, period) in [(6, 30), (8, 60)] {
                let mut args = vec!["uri".to_string()];
                args.extend(params(secret, alg, digits, period));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let named = ["--issuer", "ACME Corp", "--account", "alice@acme.example"];
                let uri = otp(&[&args[..], &named[..]].concat());
                for time in TIMES {
                    cases.push(serde_json::json!({
                        "uri": uri, "secret": secret, "alg": alg, "digits": digits,
                        "period": period, "time": time,
                        "ours": totp(secret, alg, digits, period, time),
                    }));
                }
            }
        }
        let uri = otp(&[
            "uri",
            "--secret",
            secret,
            "--account",
            "bob",
            "--counter",
            "5",
        ]);
        cases.push(serde_json::json!({
            "uri": uri, "secret": secret, "counter": 5, "ours": hotp(secret, 6, 5),
        }));
    }
    let script = r#"
import json, sys, pyotp
out = []
for c in json.load(sys.stdin):
    o = pyotp.parse_uri(c["uri"])
    if "counter" in c:
        # pyotp counts from the URI's counter: at(0) is the code of that counter.
        out.append({"code": o.at(0), "secret": o.secret, "name": o.name,
                    "counter": o.initial_count})
    else:
        out.append({"code": o.at(c["time"]), "secret": o.secret, "digits": o.digits,
                    "interval": o.interval, "digest": o.digest().name, "issuer": o.issuer,
                    "name": o.name})
json.dump(out, sys.stdout)
"#;
    let python = std::env::var("MFASCOPE_PYTHON").expect("MFASCOPE_PYTHON (scripts/test)");
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &cases).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pyotp script failed");
    let theirs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), cases.len());
    for (c, t) in cases.iter().zip(&theirs) {
        assert_eq!(t["code"], c["ours"], "{c} vs {t}");
        assert_eq!(t["secret"], c["secret"], "{t}");
        if c.get("counter").is_some() {
            assert_eq!(t["counter"], 5, "{t}");
            assert_eq!(t["name"], "bob", "{t}");
        } else {
            assert_eq!(t["digits"], c["digits"], "{t}");
            assert_eq!(t["interval"], c["period"], "{t}");
            assert_eq!(t["digest"], c["alg"], "{t}");
            assert_eq!(t["issuer"], "ACME Corp", "{t}");
            assert_eq!(t["name"], "alice@acme.example", "{t}");
        }
    }
}

#[test]
fn a_secret_below_128_bits_is_not_provisioned() {
    let out = common::bin()
        .args(["otp", "uri", "--secret", SECRETS[0], "--account", "a"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("80 bits; RFC 4226 requires at least 128"),
        "{err}"
    );
}

#[test]
fn bad_parameters_are_usage_errors_naming_the_problem() {
    for (args, want) in [
        (
            vec!["--secret", "GEZDGNBV", "--digits", "9"],
            "digits must be 6, 7 or 8",
        ),
        (vec!["--secret", "not base32!"], "not valid base32"),
        (
            vec!["--secret", "GEZDGNBV", "--algorithm", "md5"],
            "use sha1, sha256 or sha512",
        ),
        (
            vec!["--secret", "GEZDGNBV", "--period", "0"],
            "period must be at least 1",
        ),
    ] {
        let out = common::bin()
            .args(["otp", "code"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
