//! The rule engine's live state across restarts (issue 22): an attack whose denials straddle a
//! restart is found once, with the denials from before it as evidence; `kill -9` at random
//! moments of a run with attacks leaves every finding stored once and the stored set equal to
//! `mfascope detect` over the same history; a damaged, stale or foreign saved state is named in
//! a warning and the state is rebuilt from the stored events (never a panic, never empty).

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{append, assert_stored_once_and_as_detect, bin, generate, ingest_json, output_json};

/// A canonical push verification of bob at minute `minute` of 2024-05-01 10:00Z.
fn push(id: &str, minute: u32, outcome: &str) -> String {
    common::push("bob", id, minute, outcome)
}

/// The push-bombing findings of `rows` with their evidence.
fn bombings(rows: &[(String, String, Vec<String>)]) -> Vec<Vec<String>> {
    rows.iter()
        .filter(|r| r.1 == "mfa_push_bombing")
        .map(|r| r.2.clone())
        .collect()
}

#[test]
fn an_attack_straddling_a_restart_is_found_once_with_the_denials_from_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = (tmp.path().join("push.ndjson"), tmp.path().join("out"));
    append(
        &input,
        &(1..=3)
            .map(|i| push(&format!("d{i}"), i, "denied"))
            .collect::<Vec<_>>(),
    );
    let first = ingest_json(&[&input], &out);
    assert_eq!(first["live"]["detect"]["counters"]["findings"], 0);
    assert_eq!(first["live"]["rules_resumed"]["from"], "empty");
    // The stop: the rest of the attack arrives for the next run.
    let mut rest: Vec<String> = (4..=6)
        .map(|i| push(&format!("d{i}"), i, "denied"))
        .collect();
    rest.push(push("approved", 7, "success"));
    append(&input, &rest);
    let second = ingest_json(&[&input], &out);
    let resumed = &second["live"]["rules_resumed"];
    assert_eq!(resumed["from"], "saved", "{resumed}");
    assert!(resumed["state_bytes"].as_u64().unwrap() > 0);
    let rows = assert_stored_once_and_as_detect(&out);
    let bombing = bombings(&rows);
    assert_eq!(bombing.len(), 1, "{rows:?}");
    // The threshold (5) is reached by the second denial after the restart: the three from
    // before it are evidence; the sixth falls in the suppression period, as in one run.
    assert_eq!(bombing[0], ["d1", "d2", "d3", "d4", "d5"]);
    assert!(
        rows.iter().any(|r| r.1 == "mfa_push_fatigue_accepted"),
        "the approval after the bombing is found: {rows:?}"
    );
}

#[test]
fn damaged_stale_or_foreign_rule_state_is_named_and_rebuilt_from_the_stored_events() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("push.ndjson");
    append(
        &input,
        &(1..=3)
            .map(|i| push(&format!("d{i}"), i, "denied"))
            .collect::<Vec<_>>(),
    );
    let first = tmp.path().join("first");
    ingest_json(&[&input], &first);
    let mut rest: Vec<String> = (4..=6)
        .map(|i| push(&format!("d{i}"), i, "denied"))
        .collect();
    rest.push(push("approved", 7, "success"));
    let more = tmp.path().join("more.ndjson");
    std::fs::copy(&input, &more).unwrap();
    append(&more, &rest);
    // Rules with one extra (harmless) rule: state taken with the built-in set is foreign.
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for entry in std::fs::read_dir("rules").unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), rules.join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(
        rules.join("extra.yml"),
        "title: Bypass code used\nid: 0d7c9f1e-3b8e-4c55-9a61-2f0d3c4b5a69\nname: extra_bypass\nlogsource:\n    product: mfascope\ndetection:\n    selection:\n        factor: bypass_code\n    condition: selection\nlevel: low\n",
    )
    .unwrap();
    let state = |out: &Path| out.join("_state/observers/rules.state");
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, &str, &str)> = vec![
        (
            "truncated",
            Box::new(|p| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, &b[..b.len() / 2]).unwrap();
            }),
            "truncated",
            "rebuilt",
        ),
        (
            "wrong version",
            Box::new(|p| {
                let mut b = std::fs::read(p).unwrap();
                b[16] = 99;
                std::fs::write(p, b).unwrap();
            }),
            "format version 99",
            "rebuilt",
        ),
        (
            "flipped byte",
            Box::new(|p| {
                let mut b = std::fs::read(p).unwrap();
                let last = b.len() - 1;
                b[last] ^= 0x55;
                std::fs::write(p, b).unwrap();
            }),
            "checksum",
            "rebuilt",
        ),
        (
            "deleted",
            Box::new(|p| std::fs::remove_file(p).unwrap()),
            "missing",
            "rebuilt",
        ),
        ("other rules", Box::new(|_| {}), "other rules", "rebuilt"),
    ];
    for (name, damage, says, from) in cases {
        let out = tmp.path().join(name.replace(' ', "-"));
        copy_dir(&first, &out);
        damage(&state(&out));
        let mut cmd = bin();
        cmd.args(["ingest", "--no-progress", "--format", "json", "--out"])
            .arg(&out)
            .arg(&more);
        if name == "other rules" {
            cmd.arg("--rules").arg(&rules);
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let resumed = &summary["live"]["rules_resumed"];
        assert_eq!(resumed["from"], from, "{name}: {resumed}");
        let warning = resumed["warning"].as_str().unwrap_or_default();
        let file = state(&out).display().to_string();
        assert!(
            warning.contains(&file) && warning.contains(says),
            "{name}: {warning}"
        );
        assert!(
            stderr.contains(&file),
            "{name}: the warning is logged: {stderr}"
        );
        let rows = common::stored_findings(&out);
        assert_eq!(
            bombings(&rows),
            [["d1", "d2", "d3", "d4", "d5"]],
            "{name}: found once, with the denials from before the restart"
        );
    }
}

/// Copy the directory tree `from` to `to`.
fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().flatten() {
        let dst = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(entry.path(), &dst).unwrap();
        }
    }
}

#[test]
fn kill_9_at_10_random_moments_of_a_run_with_attacks_stores_every_finding_once() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generate(
        tmp.path(),
        "attacks",
        &[
            "--log-format",
            "canonical",
            "--events",
            "600000",
            "--days",
            "2",
            "--seed",
            "11",
            "--attacks",
        ],
    );
    let out = tmp.path().join("out");
    // Small segments and a save every few commits: kills land between saves and mid-commit,
    // so restarts go through the saved state *and* the replay of what was committed after
    // it. One parser thread: a whole run takes longer than the ten short ones add up to.
    let ingest = || {
        let mut c = bin();
        c.args([
            "ingest",
            "--no-progress",
            "--format",
            "json",
            "--segment-rows",
            "5000",
            "--workers",
            "1",
            "--state-every",
            "150ms",
            "--out",
        ])
        .arg(&out)
        .arg(&input)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let killed_mid_run = common::kill_9_at_moments(10, 0x2545_f491_4f6c_dd1d, (250, 600), ingest);
    assert!(
        killed_mid_run >= 7,
        "the runs were killed mid-way ({killed_mid_run})"
    );
    let last = output_json(
        Command::new(env!("CARGO_BIN_EXE_mfascope"))
            .args(["ingest", "--no-progress", "--format", "json", "--out"])
            .arg(&out)
            .arg(&input),
    );
    assert_eq!(
        last["live"]["rules_resumed"]["from"], "saved",
        "{}",
        last["live"]["rules_resumed"]
    );
    let rows = assert_stored_once_and_as_detect(&out);
    assert!(
        !bombings(&rows).is_empty(),
        "the generated attacks are found: {rows:?}"
    );
}
