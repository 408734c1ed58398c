//! `mfascope dashboard` in a real terminal: the binary runs in a tmux session (its own server
//! socket), keys go in with `send-keys`, the screen comes back with `capture-pane`. Over
//! history: views, help, time range, filter and quit, with the numbers shown checked against
//! `mfascope sli --format json` on the same data. Live: a push-fatigue burst appended to a
//! followed file shows up as a finding on the on-call view within 2 s.

use std::path::Path;
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{append, verify_line as line};

use crate::common;

/// The headline of the stat panel titled `title`: the first line inside its border.
fn stat_value(screen: &str, title: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    let (row, line) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains(&format!("┌ {title} ")))
        .unwrap_or_else(|| panic!("no panel {title:?} on\n{screen}"));
    let col = line[..line.find(&format!("┌ {title} ")).unwrap()]
        .chars()
        .count();
    let inside: String = lines[row + 1].chars().skip(col + 1).collect();
    inside.split('│').next().unwrap().trim().to_string()
}

/// M6 availability over all rows of `sli --only availability` (JSON), as the dashboard prints
/// it; `factor` picks the rows of one factor (`--by factor`).
fn availability(data: &Path, factor: Option<&str>) -> String {
    let mut args = vec!["sli", "--data", data.to_str().unwrap(), "--bucket", "1d"];
    args.extend(["--only", "availability", "--format", "json"]);
    if factor.is_some() {
        args.extend(["--by", "factor"]);
    }
    let report = common::run_json(&args);
    let rows = report["queries"][0]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {report}"));
    let (mut good, mut minutes) = (0.0, 0.0);
    for r in rows
        .iter()
        .filter(|r| factor.is_none_or(|f| r["factor"] == f))
    {
        good += r["good_minutes"].as_f64().unwrap();
        minutes += r["minutes"].as_f64().unwrap();
    }
    assert!(minutes > 0.0, "no minutes for {factor:?} in {report}");
    format!("{:.2}%", 100.0 * good / minutes)
}

fn dashboard() -> String {
    format!("NO_COLOR=1 {} dashboard", env!("CARGO_BIN_EXE_mfascope"))
}

#[test]
fn views_help_filter_and_quit_in_a_real_terminal_show_the_sli_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::dashboard_data(dir.path());
    let t = Tmux::start(
        dir.path(),
        &format!("{} --data out", dashboard()),
        (160, 48),
    );
    t.wait_for("Phishing-resistant 2FA");
    t.wait_for("Business impact");

    // View 2, range widened to cover both days: the headline is M6 over all the data.
    t.keys(&["2"]);
    t.wait_for("2FA availability");
    t.keys(&["]", "]", "]"]);
    let s = t.wait_for("range 30d");
    assert_eq!(
        stat_value(&s, "2FA availability"),
        availability(&data, None),
        "{s}"
    );

    // Help opens on `?` and any key closes it.
    t.keys(&["?"]);
    t.wait_for("Keys (any key closes)");
    t.keys(&["x"]);
    t.wait("the help to close", |s| {
        !s.contains("Keys (any key closes)")
    });

    // A filter narrows the SLI panels too: the headline becomes M6 of push verifications.
    t.keys(&["/"]);
    t.text("factor:push");
    t.keys(&["Enter"]);
    t.wait_for("filter factor:push");
    let want = availability(&data, Some("push"));
    let s = t.wait(&format!("availability {want}"), |s| {
        s.contains("filter factor:push") && stat_value(s, "2FA availability") == want
    });
    assert!(s.contains("range 30d"), "{s}");

    // Tab goes on to the debug view; Esc clears the filter; q quits and restores the terminal.
    t.keys(&["Tab"]);
    t.wait_for("Live events");
    t.keys(&["Escape"]);
    t.wait("the filter to clear", |s| !s.contains("filter factor:push"));
    t.keys(&["q"]);
    let s = t.wait_for("dashboard exited with 0");
    assert!(
        !s.contains("Live events"),
        "the terminal was not restored:\n{s}"
    );
}

#[test]
fn a_push_fatigue_burst_appears_on_the_oncall_view_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("live.ndjson");
    append(
        &input,
        &(0..50)
            .map(|i| line(&format!("b{i}"), &format!("u{i}"), "totp", "success"))
            .collect::<Vec<_>>(),
    );
    let t = Tmux::start(
        dir.path(),
        &format!(
            "{} --data out --follow live.ndjson --view oncall",
            dashboard()
        ),
        (160, 48),
    );
    // The first events arrived: the status bar counts them and gives their age.
    t.wait("50 events", |s| {
        s.contains("50 events") && s.contains("newest event")
    });
    assert!(t.screen().contains("follow live.ndjson"));
    let burst: Vec<String> = (0..5)
        .map(|i| line(&format!("p{i}"), "mallory@acme.example", "push", "denied"))
        .collect();
    let appended = Instant::now();
    append(&input, &burst);
    let s = t.wait("the push-fatigue finding", |s| {
        s.lines()
            .any(|l| l.contains("mallory") && l.contains("mfa_push"))
    });
    let elapsed = appended.elapsed();
    eprintln!("the finding was on screen {elapsed:?} after the burst was appended");
    // The acceptance bound (produce → on screen), not a benchmark.
    assert!(
        elapsed <= Duration::from_secs(2),
        "the finding took {elapsed:?} to show:\n{s}"
    );
    t.keys(&["q"]);
    let s = t.wait_for("dashboard exited with 0");
    // The in-process ingest committed what it read: the stored events and findings.
    assert!(s.contains("55"), "ingest summary missing:\n{s}");
    let findings = std::fs::read_dir(dir.path().join("out/findings"))
        .unwrap()
        .count();
    assert!(findings >= 1, "findings were not stored");
}
