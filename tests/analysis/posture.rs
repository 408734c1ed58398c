//! `mfascope report posture` on generated data whose users are labelled (factor, privileged,
//! no second factor), checked against DuckDB queries over the same Parquet and the labels.

use crate::common;

use std::collections::BTreeSet;

use common::{generate, run_json};

const DUCK: &str = r#"
import json, sys, duckdb
data, glass = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.sql(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/events/dt=*/hour=*/*.parquet', hive_partitioning=false)")
q = lambda s: con.sql(s).fetchall()
mfa = "SELECT DISTINCT \"user\" FROM events WHERE action = 'mfa_verify'"
signin = "action IN ('primary_auth', 'session_start') AND outcome = 'success'"
print(json.dumps(dict(
  active=q("SELECT COUNT(DISTINCT \"user\") FROM events WHERE outcome = 'success'")[0][0],
  no_mfa=sorted(u for (u,) in q(f"SELECT DISTINCT \"user\" FROM events WHERE {signin} AND \"user\" NOT IN ({mfa})")),
  by_app={a: [n, s] for (a, n, s) in q(f"""SELECT COALESCE(app, '(none)'), COUNT(DISTINCT "user"), COUNT(*) FROM events
                                          WHERE {signin} AND "user" NOT IN ({mfa}) GROUP BY 1""")},
  weak=sorted(u for (u,) in q("""SELECT "user" FROM events WHERE action = 'mfa_verify' AND outcome = 'success'
                                  GROUP BY 1 HAVING bool_and(factor IN ('sms', 'voice', 'email'))""")),
  flagged=sorted(u for (u,) in q("SELECT DISTINCT \"user\" FROM events WHERE privileged")),
  pr=sorted(u for (u,) in q("SELECT DISTINCT \"user\" FROM events WHERE action = 'mfa_verify' AND outcome = 'success' AND phishing_resistant")),
  factors={f: [u, e, r] for (f, u, e, r) in q("""SELECT factor,
      COUNT(DISTINCT "user") FILTER (WHERE action = 'mfa_verify' AND outcome = 'success'),
      COUNT(*) FILTER (WHERE action = 'enroll_complete' AND outcome = 'success'),
      COUNT(*) FILTER (WHERE action = 'factor_remove' AND outcome = 'success')
    FROM events WHERE factor NOT IN ('password', 'none', 'unknown')
    GROUP BY 1 HAVING COUNT(*) FILTER (WHERE action IN ('mfa_verify', 'enroll_complete', 'factor_remove')) > 0""")},
  registrations=q("SELECT COUNT(*) FROM events WHERE action IN ('enroll_complete', 'device_register') AND outcome = 'success'")[0][0],
  glass=q(f"SELECT COUNT(*) FROM events WHERE lower(\"user\") = '{glass}'")[0][0],
  sms=q("SELECT COUNT(*) FROM events WHERE factor = 'sms' AND action = 'mfa_challenge'")[0][0],
)))
"#;

#[test]
fn posture_equals_duckdb_and_the_generator_labels() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(
        dir.path(),
        "c",
        &[
            "--log-format",
            "canonical",
            "--events",
            "20000",
            "--days",
            "7",
            "--seed",
            "9",
            "--no-mfa-share",
            "0.02",
            "--user-labels",
        ],
    );
    let out = dir.path().join("out");
    common::ingest_json(&[&input], &out);
    let users: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("c.ndjson.users.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let labelled = |f: &dyn Fn(&serde_json::Value) -> bool| -> BTreeSet<String> {
        users
            .iter()
            .filter(|u| f(u))
            .map(|u| u["user"].as_str().unwrap().to_string())
            .collect()
    };
    let glass = "user00017@acme.example";
    let privileged = dir.path().join("privileged.toml");
    std::fs::write(
        &privileged,
        format!("users = [\"USER00001@acme.example\"]\nbreak_glass = [\"{glass}\"]\n"),
    )
    .unwrap();
    let data = out.display().to_string();
    let p = run_json(&[
        "report",
        "posture",
        "--data",
        &data,
        "--privileged",
        privileged.to_str().unwrap(),
        "--sms-price",
        "0.01",
        "--format",
        "json",
    ]);
    let want: serde_json::Value =
        serde_json::from_slice(&common::py(DUCK, &[&out, std::path::Path::new(glass)])).unwrap();
    assert_eq!(p["active_users"], want["active"]);
    // Without a second factor: DuckDB's users, and exactly the labelled ones who signed in.
    let no_mfa: BTreeSet<String> = want["no_mfa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(p["users_without_mfa"].as_u64(), Some(no_mfa.len() as u64));
    assert!(!no_mfa.is_empty());
    assert!(
        no_mfa.is_subset(&labelled(&|u| u["no_mfa"] == true)),
        "{no_mfa:?}"
    );
    for app in p["without_mfa_by_app"].as_array().unwrap() {
        assert_eq!(
            serde_json::json!([app["users"], app["sign_ins"]]),
            want["by_app"][app["app"].as_str().unwrap()],
            "{app}"
        );
    }
    assert_eq!(
        p["without_mfa_by_app"].as_array().unwrap().len(),
        want["by_app"].as_object().unwrap().len()
    );
    // SMS/voice/email only: DuckDB's list, all of them labelled SMS users.
    let weak: Vec<String> = p["weak_only_users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap().to_string())
        .collect();
    let want_weak: Vec<String> = want["weak"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(weak, want_weak);
    let sms_users = labelled(&|u| u["factor"] == "sms");
    assert!(
        !weak.is_empty() && weak.iter().all(|u| sms_users.contains(u)),
        "{weak:?}"
    );
    // Privileged: the file's user (matched case-insensitively) plus the flagged ones, which
    // are the labelled privileged users; gaps are those without a phishing-resistant success.
    let flagged: BTreeSet<String> = want["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert!(flagged.is_subset(&labelled(&|u| u["privileged"] == true)));
    let mut all = flagged.clone();
    all.insert("user00001@acme.example".into());
    all.insert(glass.into());
    assert_eq!(p["privileged_users"].as_u64(), Some(all.len() as u64));
    let pr: BTreeSet<String> = want["pr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    let gaps: BTreeSet<String> = p["privileged_without_phishing_resistant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(gaps, all.difference(&pr).cloned().collect());
    // Factor inventory, registrations, break-glass use, SMS cost.
    for f in p["factors"].as_array().unwrap() {
        assert_eq!(
            serde_json::json!([f["users"], f["enrolled"], f["removed"]]),
            want["factors"][f["factor"].as_str().unwrap()],
            "{f}"
        );
    }
    assert_eq!(
        p["factors"].as_array().unwrap().len(),
        want["factors"].as_object().unwrap().len()
    );
    assert_eq!(
        p["registrations"].as_array().unwrap().len() as u64,
        want["registrations"].as_u64().unwrap()
    );
    assert_eq!(
        p["break_glass_use"].as_array().unwrap().len() as u64,
        want["glass"].as_u64().unwrap()
    );
    assert!(want["glass"].as_u64().unwrap() > 0);
    assert_eq!(p["sms"]["messages"], want["sms"]);
    assert!(
        (p["sms"]["cost"].as_f64().unwrap() - want["sms"].as_f64().unwrap() * 0.01).abs() < 1e-9
    );
}
