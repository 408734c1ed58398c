//! Helpers of `scripts/bench-verifier` (the load itself comes from wrk):
//! `prepare URL ADMIN_TOKEN_FILE USERS REQUESTS PLAN` provisions USERS HOTP users on a running
//! verifier, opens REQUESTS challenges (password step, in order) and writes one line per
//! verify request to PLAN: `challenge factor code`, round-robin over the users so each user's
//! codes arrive in counter order; `argon2` prints the password-hashing cost at the verifier's
//! default (OWASP) and the benchmark's cheap setting, per hash and as logins/s per core;
//! `enumeration URL ADMIN_TOKEN_FILE ROUNDS` times the password step of an unknown user against
//! a known user's wrong password (interleaved, ROUNDS each) and prints both medians and their
//! ratio: answers that take as long tell an attacker nothing about which users exist.
//! Run with `cargo bench --profile release --bench verify_load -- …`.

use std::io::Write;
use std::time::Instant;

use futures::StreamExt;
use mfascope::verifier::otp::{self, Params};
use mfascope::verifier::password::{self, Cost};
use serde_json::{Value, json};

fn prepare(url: &str, token_file: &str, users: usize, requests: usize, plan: &str) {
    let admin = std::fs::read_to_string(token_file).expect("admin token file");
    let admin = format!("Bearer {}", admin.trim());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let post = |path: String, body: Value, auth: Option<String>| {
        let client = client.clone();
        async move {
            let mut req = client.post(format!("{url}{path}")).json(&body);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let resp = req.send().await.expect("the verifier answers");
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        }
    };
    let t = Instant::now();
    let keys: Vec<(String, String, Vec<u8>)> = rt.block_on(
        futures::stream::iter(0..users)
            .map(|i| {
                let (post, admin) = (&post, admin.clone());
                async move {
                    let user = format!("bench-{i}");
                    let pw = json!({"user": user, "password": "bench-password"});
                    post("/v1/admin/users".into(), pw, Some(admin.clone())).await;
                    let f = post(
                        format!("/v1/admin/users/{user}/factors"),
                        json!({"kind": "hotp", "counter": 0}),
                        Some(admin),
                    )
                    .await;
                    let key = otp::secret_from_uri(f["uri"].as_str().unwrap()).unwrap();
                    (user, f["factor_id"].as_str().unwrap().to_string(), key)
                }
            })
            .buffered(32)
            .collect(),
    );
    eprintln!(
        "{users} users enrolled in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let challenges: Vec<String> = rt.block_on(
        futures::stream::iter(0..requests)
            .map(|j| {
                let user = keys[j % users].0.clone();
                let post = &post;
                async move {
                    let c = post(
                        "/v1/login".into(),
                        json!({"user": user, "password": "bench-password"}),
                        None,
                    )
                    .await;
                    c["challenge"].as_str().unwrap().to_string()
                }
            })
            .buffered(64)
            .collect(),
    );
    eprintln!(
        "{requests} challenges opened in {:.1} s ({:.0} logins/s at the bench's argon2 cost)",
        t.elapsed().as_secs_f64(),
        requests as f64 / t.elapsed().as_secs_f64()
    );
    let mut out = std::io::BufWriter::new(std::fs::File::create(plan).expect("plan file"));
    for (j, c) in challenges.iter().enumerate() {
        let (_, factor, key) = &keys[j % users];
        let code = otp::code(key, (j / users) as u64, &Params::default());
        writeln!(out, "{c} {factor} {code}").unwrap();
    }
    out.flush().unwrap();
}

fn argon2() {
    for (name, cost) in [
        ("default (OWASP: 19 MiB, t=2, p=1)", Cost::default()),
        (
            "bench setting (64 KiB, t=1)",
            Cost {
                memory_kib: 64,
                iterations: 1,
                lanes: 1,
            },
        ),
    ] {
        let phc = password::hash("correct horse", cost);
        let runs = 20;
        let t = Instant::now();
        for _ in 0..runs {
            assert!(password::verify("correct horse", &phc));
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        println!(
            "argon2id {name}: {ms:.2} ms per password check = {:.0} logins/s per core",
            1000.0 / ms
        );
    }
}

fn enumeration(url: &str, token_file: &str, rounds: usize) {
    let admin = std::fs::read_to_string(token_file).expect("admin token file");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value, auth: Option<&str>| {
        let mut req = client.post(format!("{url}{path}")).json(&body);
        if let Some(a) = auth {
            req = req.header("Authorization", format!("Bearer {}", a.trim()));
        }
        async move { req.send().await.expect("the verifier answers").status() }
    };
    let (mut unknown, mut wrong) = rt.block_on(async {
        let user = json!({"user": "timing-known", "password": "the right one"});
        let created = post("/v1/admin/users", user, Some(&admin)).await;
        assert!(created.is_success(), "create user: {created}");
        let login = |user: String| {
            let sent = post(
                "/v1/login",
                json!({"user": user, "password": "a wrong one"}),
                None,
            );
            async move {
                let t = Instant::now();
                let status = sent.await;
                assert_eq!(status, 401, "a refused password step");
                t.elapsed().as_secs_f64() * 1000.0
            }
        };
        let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            unknown.push(login(format!("timing-unknown-{i}")).await);
            wrong.push(login("timing-known".into()).await);
        }
        (unknown, wrong)
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (u, w) = (median(&mut unknown), median(&mut wrong));
    let ratio = u / w;
    println!(
        "password step, {rounds} each, interleaved: unknown user median {u:.2} ms, known user \
         with a wrong password median {w:.2} ms, ratio {ratio:.3} -> within 10 %: {}",
        if (ratio - 1.0).abs() <= 0.10 {
            "YES"
        } else {
            "NO"
        }
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("prepare") if args.len() == 6 => prepare(
            &args[1],
            &args[2],
            args[3].parse().expect("USERS"),
            args[4].parse().expect("REQUESTS"),
            &args[5],
        ),
        Some("argon2") => argon2(),
        Some("enumeration") if args.len() == 4 => {
            enumeration(&args[1], &args[2], args[3].parse().expect("ROUNDS"));
        }
        _ => eprintln!(
            "usage: verify_load prepare URL ADMIN_TOKEN_FILE USERS REQUESTS PLAN | argon2 | \
             enumeration URL ADMIN_TOKEN_FILE ROUNDS"
        ),
    }
}
