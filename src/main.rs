//! Thin binary: parse arguments, run, map errors to exit codes.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() {
    let cli = mfascope::cli::Cli::parse();
    match mfascope::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", mfascope::cli::error_text(&e));
            std::process::exit(1);
        }
    }
}
