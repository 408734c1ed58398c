//! `mfascope dashboard --snapshot` on fixed data: every shipped view at 80×24 and 160×48,
//! compared with reviewed snapshots (`tests/snapshots/`, insta). A change in what a view shows
//! fails here until the new frame is reviewed (`cargo insta review`, or `INSTA_UPDATE=always`).

use std::process::Command;

use crate::common;

#[test]
fn every_view_at_two_sizes_matches_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    common::dashboard_data(dir.path());
    for view in ["executive", "oncall", "debug"] {
        for size in ["80x24", "160x48"] {
            let frame = snapshot(dir.path(), view, size, &[]);
            let (w, h) = size.split_once('x').unwrap();
            assert_eq!(
                frame.lines().count(),
                h.parse::<usize>().unwrap(),
                "{view} {size}"
            );
            assert!(
                frame
                    .lines()
                    .all(|l| l.chars().count() <= w.parse().unwrap()),
                "{view} {size}: a line is wider than the terminal"
            );
            insta::assert_snapshot!(format!("{view}_{size}"), frame);
        }
    }
}

/// One frame of `dashboard --snapshot` over `dir/out`, run from `dir` so the status bar names
/// `out`, not a random path.
fn snapshot(dir: &std::path::Path, view: &str, size: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mfascope"))
        .current_dir(dir)
        .args(["dashboard", "--data", "out", "--snapshot", "--view", view])
        .args(["--size", size])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{view} {size} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The executive view over `dir/out` with `extra` arguments, without the status line (it
/// names the source, `as of` included).
fn frame_without_status(dir: &std::path::Path, extra: &[&str]) -> String {
    snapshot(dir, "executive", "160x48", extra)
        .lines()
        .filter(|l| !l.contains("history out"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn as_of_shows_the_store_as_it_was_before_a_later_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::dashboard_data(dir.path());
    let version = std::fs::read_dir(out.join("events/_delta_log"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.strip_suffix(".json")?.parse::<u64>().ok()
        })
        .max()
        .unwrap();
    let before = frame_without_status(dir.path(), &[]);
    let more = common::generate(
        dir.path(),
        "more",
        &[
            "--log-format",
            "canonical",
            "--events",
            "5000",
            "--days",
            "2",
            "--seed",
            "4",
        ],
    );
    common::ingest_json(&[&more], &out);
    let latest = frame_without_status(dir.path(), &[]);
    assert_ne!(latest, before, "the later ingest changes the latest view");
    let as_of = version.to_string();
    assert_eq!(
        frame_without_status(dir.path(), &["--as-of", &as_of]),
        before
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_mfascope"))
        .args([
            "dashboard",
            "--data",
            "out",
            "--follow",
            "x.log",
            "--as-of",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--as-of"));
}
