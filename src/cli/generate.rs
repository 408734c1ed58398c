//! `mfascope generate`.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context;

use super::GenerateArgs;
use crate::generate::{GenerateOptions, generate};
use crate::time::parse_rfc3339;

/// Write synthetic traffic and its labels.
pub fn run(a: GenerateArgs) -> anyhow::Result<i32> {
    let opts = GenerateOptions {
        events: a.events,
        seed: a.seed,
        attacks: a.attacks,
        start_ms: parse_rfc3339(&a.start)
            .map_err(anyhow::Error::msg)
            .context("--start")?,
        days: a.days,
        incidents: a.incident,
        probes: a.probes,
        tickets: a.tickets,
        no_mfa_share: a.no_mfa_share,
    };
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.no_mfa_share),
        "--no-mfa-share {}: give a share between 0 and 1",
        a.no_mfa_share
    );
    anyhow::ensure!(
        !a.probes || a.log_format == crate::normalize::LogFormat::Canonical,
        "--probes needs --log-format canonical (probe events are mfascope's own)"
    );
    let file = File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut out: Box<dyn Write> = if a.out.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::write::GzEncoder::new(
            BufWriter::new(file),
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(BufWriter::with_capacity(1 << 20, file))
    };
    let labels_path = format!("{}.labels.jsonl", a.out.display());
    let mut labels = BufWriter::new(
        File::create(&labels_path).with_context(|| format!("creating {labels_path}"))?,
    );
    let ticket_paths = a.tickets.map(|system| {
        (
            format!("{}.tickets.{}", a.out.display(), system.extension()),
            format!("{}.tickets.labels.jsonl", a.out.display()),
        )
    });
    let mut ticket_files = match &ticket_paths {
        Some((export, labels)) => Some((
            BufWriter::new(File::create(export).with_context(|| format!("creating {export}"))?),
            BufWriter::new(File::create(labels).with_context(|| format!("creating {labels}"))?),
        )),
        None => None,
    };
    let tickets = ticket_files
        .as_mut()
        .map(|(export, labels)| crate::generate::TicketOutput { export, labels });
    let users_path = a
        .user_labels
        .then(|| format!("{}.users.jsonl", a.out.display()));
    let mut users = match &users_path {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("creating {p}"))?,
        )),
        None => None,
    };
    let n = generate(
        a.log_format,
        &opts,
        &mut out,
        &mut labels,
        users.as_mut().map(|u| u as &mut dyn Write),
        tickets,
    )
    .with_context(|| format!("writing {}", a.out.display()))?;
    out.flush()?;
    drop(out);
    labels.flush()?;
    if let Some(u) = users.as_mut() {
        u.flush()?;
    }
    if let (Some((export, labels)), Some((e, l))) = (ticket_files.as_mut(), &ticket_paths) {
        export.flush()?;
        labels.flush()?;
        eprintln!("wrote support tickets to {e} (labels: {l})");
    }
    eprintln!(
        "wrote {n} {} records to {} (labels: {labels_path})",
        a.log_format.as_str(),
        a.out.display()
    );
    Ok(0)
}
