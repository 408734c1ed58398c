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
            // Run from the temp dir so the status bar names `out`, not a random path.
            let out = Command::new(env!("CARGO_BIN_EXE_mfascope"))
                .current_dir(dir.path())
                .args(["dashboard", "--data", "out", "--snapshot", "--view", view])
                .args(["--size", size])
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{view} {size}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let frame = String::from_utf8(out.stdout).unwrap();
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
