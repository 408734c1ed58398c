//! OpenSLO spec parsing on arbitrary YAML (several documents, policies referenced across
//! files): the text is split at a NUL byte into two files. When the specs parse, everything
//! derived from them at start-up (thresholds, windows, scaling) is computed too.
//! Invariant: no panic; a spec is either accepted or refused with an error naming its file.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use mfascope::slo::spec::{SpecError, parse_files, thresholds};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files: Vec<(PathBuf, String)> = text
        .splitn(2, '\0')
        .enumerate()
        .map(|(i, t)| (PathBuf::from(format!("fuzz{i}.yaml")), t.to_string()))
        .collect();
    match parse_files(&files) {
        Ok(slos) => {
            let _ = thresholds(&slos);
            for slo in &slos {
                let _ = slo.longest_alert_window();
                let _ = slo.scale(60_000);
            }
        }
        Err(SpecError::Invalid { path, .. }) => {
            assert!(
                files.iter().any(|(p, _)| *p == path),
                "error names a given file"
            );
        }
        Err(e) => panic!("parse_files gave an error that is not about the specs: {e}"),
    }
});
