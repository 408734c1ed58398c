//! Helpers shared by the CLI integration tests: the binary, JSON runs, generated inputs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `mfascope` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfascope"))
}

/// Run with `--format json` (unless `args` choose a format); asserts the exit code and parses
/// stdout.
pub fn run_json_code(args: &[&str], code: i32) -> serde_json::Value {
    let mut cmd = bin();
    cmd.args(args);
    if !args.contains(&"--format") {
        cmd.args(["--format", "json"]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{:?}: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run with `--format json`, expecting success.
pub fn run_json(args: &[&str]) -> serde_json::Value {
    run_json_code(args, 0)
}

/// `mfascope generate` into `dir/NAME.ndjson` with extra arguments.
pub fn generate(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.ndjson"));
    let status = bin()
        .arg("generate")
        .args(args)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "generate {args:?}");
    out
}

/// `mfascope ingest --format json` of `inputs` into `out`; returns the summary.
pub fn ingest_json(inputs: &[&Path], out: &Path) -> serde_json::Value {
    let mut args = vec!["ingest".to_string(), "--no-progress".into(), "--out".into()];
    args.push(out.display().to_string());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_json(&args)
}
