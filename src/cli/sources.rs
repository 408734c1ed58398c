//! `mfascope sources check`: validate a sources file and try each source once.

use crate::cli::out::outln;

use std::path::PathBuf;

use clap::Subcommand;

/// `mfascope sources …`.
#[derive(Subcommand, Debug)]
pub enum SourcesCommand {
    /// Validate the file, then make one authenticated request per source and stream (the
    /// last hour's first page): one line per source saying what it can read or what to fix.
    /// Exit 1 when any source fails.
    Check {
        /// The sources file (`[[source]]` tables).
        #[arg(long)]
        sources: PathBuf,
    },
}

/// Run a `sources` command.
pub fn run(c: SourcesCommand) -> anyhow::Result<i32> {
    let SourcesCommand::Check { sources } = c;
    let sources = mfascope_pull::load(&sources)?;
    let lines = mfascope_pull::check(&sources);
    for l in &lines {
        outln!("{l}");
    }
    Ok(if lines.iter().all(|l| l.ok) { 0 } else { 1 })
}
