//! `mfascope ingest`.

use anyhow::Context;

use super::{IngestArgs, OutputFormat};
use crate::pipeline::{IngestOptions, ingest, stop_on_signals};
use crate::report::ingest_table;

/// Run an ingest and print its summary.
pub fn run(a: IngestArgs) -> anyhow::Result<i32> {
    let mut opts = IngestOptions::new(a.paths, a.out);
    opts.format = a.log_format;
    opts.reader.follow = a.follow;
    opts.segment_rows = a.segment_rows;
    opts.segment_bytes = a.segment_mib << 20;
    opts.max_latency = a.max_latency;
    opts.progress = !a.no_progress;
    if let Some(w) = a.workers {
        opts.workers = w;
    }
    let stop = stop_on_signals().context("installing signal handlers")?;
    let summary =
        ingest(&opts, stop).with_context(|| format!("ingest into {}", opts.out.display()))?;
    match a.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        OutputFormat::Table => print!("{}", ingest_table(&summary)),
    }
    let failed_inputs = !summary.unreadable.is_empty();
    Ok(if (a.strict && summary.deadletter > 0) || failed_inputs {
        1
    } else {
        0
    })
}
