//! `mfascope report weekly`: the page renders in a real browser (headless Chromium, Debian's
//! `chromium`), every chart draws, and the headline figures read from the rendered DOM equal
//! `mfascope sli --format json` over the same period.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{generate, run_json};

/// Headless Chromium: a screenshot of `url` at `size`, or the DOM after scripts ran.
fn chromium(args: &[&str]) -> std::process::Output {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!(
            "--user-data-dir={}",
            std::env::temp_dir().join("mfascope-chromium").display()
        ))
        .args(args)
        .output()
        .expect("chromium is installed by scripts/test (Debian package chromium)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Share of non-white pixels and distinct colours of a PNG, read by Pillow.
fn ink(png_path: &Path) -> (f64, usize) {
    let out = common::py(
        "import sys; from PIL import Image\n\
         im = Image.open(sys.argv[1]).convert('RGB'); px = list(im.getdata())\n\
         inked = sum(1 for p in px if min(p) < 235)\n\
         print(inked / len(px), len(set(px)))",
        &[png_path],
    );
    let out = String::from_utf8(out).unwrap();
    let (share, colours) = out.trim().split_once(' ').unwrap();
    (share.parse().unwrap(), colours.parse().unwrap())
}

#[test]
fn weekly_report_renders_in_chromium_with_every_chart_and_the_sli_figures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let okta = generate(
        d,
        "okta",
        &[
            "--log-format",
            "okta",
            "--events",
            "30000",
            "--days",
            "14",
            "--seed",
            "8",
            "--attacks",
            "--incident",
            "push-outage@2024-05-10T10:00:00Z/2h",
            "--tickets",
            "jira",
        ],
    );
    let out = d.join("out");
    common::ingest_json(&[&okta, &d.join("okta.ndjson.tickets.json")], &out);
    let data = out.display().to_string();
    let html = d.join("weekly.html");
    let status = common::bin()
        .args(["report", "weekly", "--data", &data, "--out"])
        .arg(&html)
        .status()
        .unwrap();
    assert!(status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "self-contained"
    );
    assert!(!page.contains("<script"), "no scripts needed");
    // The whole page in a real browser.
    let shot = d.join("weekly.png");
    chromium(&[
        "--window-size=1100,4000",
        &format!("--screenshot={}", shot.display()),
        &format!("file://{}", html.display()),
    ]);
    let (inked, colours) = ink(&shot);
    assert!(inked > 0.05 && colours > 20, "page drew: {inked} {colours}");
    if let Ok(keep) = std::env::var("MFASCOPE_KEEP_REPORT") {
        std::fs::copy(&html, format!("{keep}.html")).unwrap();
        std::fs::copy(&shot, format!("{keep}.png")).unwrap();
    }
    // Every chart on its own, at its size: axes, lines or bars drawn.
    let charts: Vec<&str> = page
        .split("<div class=\"chart\" id=\"chart-")
        .skip(1)
        .collect();
    assert_eq!(charts.len(), 7);
    for chart in charts {
        let (id, rest) = chart.split_once('"').unwrap();
        let svg = &rest[rest.find("<svg").unwrap()..rest.find("</svg>").unwrap() + 6];
        let one = d.join(format!("chart-{id}.html"));
        std::fs::write(
            &one,
            format!("<!doctype html><body style=\"margin:0\">{svg}</body>"),
        )
        .unwrap();
        let png = d.join(format!("chart-{id}.png"));
        chromium(&[
            "--window-size=760,260",
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", one.display()),
        ]);
        let (inked, colours) = ink(&png);
        assert!(
            inked > 0.03 && colours > 3,
            "chart {id}: {inked} of the pixels, {colours} colours"
        );
    }
    // Headline figures as the browser shows them.
    let dom =
        String::from_utf8(chromium(&["--dump-dom", &format!("file://{}", html.display())]).stdout)
            .unwrap();
    let figure = |key: &str| -> String {
        let at = dom
            .find(&format!("data-figure=\"{key}\">"))
            .unwrap_or_else(|| panic!("{key} in DOM"));
        let rest = &dom[at..];
        rest[rest.find('>').unwrap() + 1..rest.find('<').unwrap()].to_string()
    };
    let period = &dom[dom.find("data-from=\"").unwrap() + 11..];
    let from = &period[..period.find('"').unwrap()];
    let period = &dom[dom.find("data-to=\"").unwrap() + 9..];
    let to = &period[..period.find('"').unwrap()];
    let sli = run_json(&[
        "sli", "--data", &data, "--from", from, "--to", to, "--bucket", "1d", "--format", "json",
    ]);
    let rows = |name: &str| -> Vec<serde_json::Value> {
        sli["queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .unwrap()["rows"]
            .as_array()
            .unwrap()
            .clone()
    };
    let sum = |name: &str, col: &str| {
        rows(name)
            .iter()
            .map(|r| r[col].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let (ok, all) = (
        sum("mfa_success_rate", "successes"),
        sum("mfa_success_rate", "attempts"),
    );
    assert!(all > 0);
    assert_eq!(
        figure("success_rate"),
        format!("{:.2} %", ok as f64 / all as f64 * 100.0)
    );
    assert_eq!(figure("attempts"), all.to_string());
    let p95 = rows("mfa_latency")
        .iter()
        .filter_map(|r| r["p95_ms"].as_f64())
        .fold(f64::MIN, f64::max);
    assert_eq!(figure("worst_daily_p95_ms"), format!("{p95:.0} ms"));
    assert_eq!(
        figure("recovery_requests"),
        sum("recovery_rate", "recoveries").to_string()
    );
    let (mfa, tickets) = (
        sum("mfa_support_tickets", "mfa_tickets"),
        sum("mfa_support_tickets", "tickets"),
    );
    assert!(tickets > 0);
    assert_eq!(figure("mfa_tickets"), format!("{mfa} of {tickets}"));
    let adoption = rows("phishing_resistant_adoption").last().unwrap()["adoption"]
        .as_f64()
        .unwrap();
    assert_eq!(
        figure("adoption_last_day"),
        format!("{:.2} %", adoption * 100.0)
    );
    let findings = run_json(&[
        "detect", "--data", &data, "--from", from, "--to", to, "--format", "json",
    ]);
    assert_eq!(
        figure("findings"),
        findings["findings"].as_array().unwrap().len().to_string()
    );
}
