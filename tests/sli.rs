//! `mfascope sli` / `query` on real Parquet, checked against DuckDB computing the same
//! definitions independently (via `MFASCOPE_PYTHON`, set up by `scripts/test`).

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfascope"))
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = bin()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ingest_sample(dir: &Path) -> String {
    for (format, n, seed) in [("okta", "20000", "3"), ("duo", "6000", "4")] {
        let status = bin()
            .args([
                "generate",
                "--log-format",
                format,
                "--events",
                n,
                "--seed",
                seed,
                "--attacks",
                "--days",
                "2",
                "--out",
            ])
            .arg(dir.join(format!("{format}.ndjson")))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = dir.join("out").display().to_string();
    let status = bin()
        .args(["ingest", "--no-progress", "--format", "json", "--out", &out])
        .arg(dir.join("okta.ndjson"))
        .arg(dir.join("duo.ndjson"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    out
}

fn duckdb(out: &str, sql: &str) -> Option<serde_json::Value> {
    let python = std::env::var_os("MFASCOPE_PYTHON")?;
    let script = format!(
        "import duckdb, json\ncon = duckdb.connect()\ncon.sql(\"CREATE VIEW events AS SELECT * FROM read_parquet('{out}/events/**/*.parquet', hive_partitioning=false)\")\nrows = con.sql({sql:?}).fetchall()\nprint(json.dumps([[str(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else v for v in r] for r in rows]))"
    );
    let o = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

fn rows<'a>(report: &'a serde_json::Value, name: &str) -> &'a Vec<serde_json::Value> {
    report["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))["rows"]
        .as_array()
        .unwrap()
}

#[test]
fn sli_numbers_match_an_independent_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ingest_sample(tmp.path());
    let report = run_json(&["sli", "--data", &out, "--bucket", "1d", "--by", "factor"]);

    let m1 = rows(&report, "mfa_success_rate");
    assert!(!m1.is_empty());
    let total_attempts: i64 = m1.iter().map(|r| r["attempts"].as_i64().unwrap()).sum();
    let total_success: i64 = m1.iter().map(|r| r["successes"].as_i64().unwrap()).sum();
    assert!(
        total_attempts > 5000 && total_success < total_attempts,
        "{total_success}/{total_attempts}"
    );
    for r in m1 {
        let rate = r["success_rate"].as_f64().unwrap();
        let expect = r["successes"].as_f64().unwrap() / r["attempts"].as_f64().unwrap();
        assert!((rate - expect).abs() < 1e-12);
    }
    let m10 = rows(&report, "rate_limit_rejections");
    let rejected: i64 = m10.iter().map(|r| r["rejected"].as_i64().unwrap()).sum();
    assert!(rejected > 0, "the generator rate-limits some logins");

    if let Some(v) = duckdb(
        &out,
        "SELECT count(*) FILTER (WHERE outcome = 'success'), count(*) FROM events WHERE action = 'mfa_verify' AND outcome IN ('success','failure','denied','timeout','error')",
    ) {
        assert_eq!(v[0][0].as_i64().unwrap(), total_success);
        assert_eq!(v[0][1].as_i64().unwrap(), total_attempts);
    } else {
        eprintln!("MFASCOPE_PYTHON not set; skipping the DuckDB cross-check");
    }
    if let Some(v) = duckdb(
        &out,
        "SELECT count(*) FILTER (WHERE action = 'rate_limited') FROM events WHERE action IN ('primary_auth','mfa_verify','rate_limited')",
    ) {
        assert_eq!(v[0][0].as_i64().unwrap(), rejected);
    }

    // M7: distinct adopters per day, exactly as DuckDB counts them.
    let m7 = run_json(&[
        "sli",
        "--data",
        &out,
        "--bucket",
        "1d",
        "--only",
        "phishing_resistant_adoption",
    ]);
    let m7 = rows(&m7, "phishing_resistant_adoption");
    let adopters: i64 = m7.iter().map(|r| r["pr_users"].as_i64().unwrap()).sum();
    assert!(
        adopters > 0 && m7.iter().all(|r| r["adoption"].as_f64().unwrap() < 1.0),
        "{m7:?}"
    );
    if let Some(v) = duckdb(
        &out,
        "SELECT count(DISTINCT \"user\") FILTER (WHERE phishing_resistant), count(DISTINCT \"user\") FROM events WHERE action = 'mfa_verify' AND outcome = 'success' GROUP BY date_trunc('day', time) ORDER BY date_trunc('day', time)",
    ) {
        for (ours, theirs) in m7.iter().zip(v.as_array().unwrap()) {
            assert_eq!(ours["pr_users"].as_i64(), theirs[0].as_i64());
            assert_eq!(ours["active_users"].as_i64(), theirs[1].as_i64());
        }
    }

    // Latency: exact counts, approximate p95 close to DuckDB's exact quantile.
    let m2 = run_json(&[
        "sli",
        "--data",
        &out,
        "--bucket",
        "1d",
        "--only",
        "mfa_latency",
    ]);
    let m2 = rows(&m2, "mfa_latency");
    let with_latency: i64 = m2.iter().map(|r| r["with_latency"].as_i64().unwrap()).sum();
    if let Some(v) = duckdb(
        &out,
        "SELECT count(latency_ms), quantile_cont(latency_ms, 0.95) FROM events WHERE action = 'mfa_verify' AND latency_ms IS NOT NULL GROUP BY date_trunc('day', time) ORDER BY date_trunc('day', time)",
    ) {
        let duck_count: i64 = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .sum();
        assert_eq!(duck_count, with_latency);
        for (ours, theirs) in m2.iter().zip(v.as_array().unwrap()) {
            let (a, b) = (
                ours["p95_ms"].as_f64().unwrap(),
                theirs[1].as_f64().unwrap(),
            );
            assert!((a - b).abs() / b < 0.03, "p95 {a} vs DuckDB {b}");
        }
    }
}

#[test]
fn query_runs_ad_hoc_sql_and_bad_parameters_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ingest_sample(tmp.path());
    let v = run_json(&[
        "query",
        "--data",
        &out,
        "--sql",
        "SELECT count(*) AS n, count(DISTINCT source) AS sources FROM events",
    ]);
    assert_eq!(v[0]["n"].as_i64(), Some(26000));
    assert_eq!(v[0]["sources"].as_i64(), Some(2));
    let ranged = run_json(&[
        "query",
        "--data",
        &out,
        "--from",
        "2024-05-02T00:00:00Z",
        "--sql",
        "SELECT count(*) AS n, min(time) AS first FROM events",
    ]);
    let n = ranged[0]["n"].as_i64().unwrap();
    assert!(n > 0 && n < 26000, "{ranged}");
    assert!(
        ranged[0]["first"]
            .as_str()
            .unwrap()
            .starts_with("2024-05-02"),
        "{ranged}"
    );

    let bad = bin()
        .args(["sli", "--data", &out, "--by", "user"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a groupable column"));
    let empty = bin()
        .args(["sli", "--data"])
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&empty.stderr).contains("run `mfascope ingest"));
}
