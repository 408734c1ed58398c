//! Thin binary: parse arguments, run, map errors to exit codes.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

/// mimalloc keeps freed pages resident for 10 ms before returning them (its default); the
/// ingest frees whole batches at a time, so peaks stack up. Return them at once instead
/// (`scripts/bench-memory`: ~75 MB less peak RSS on 1M events at the same speed).
#[cfg(feature = "mimalloc")]
fn tune_allocator() {
    // `mi_option_purge_delay` of mimalloc.h (v3, the version libmimalloc-sys builds); the
    // bindings do not name it.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a global option, which mimalloc reads whenever it purges.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

fn main() {
    #[cfg(feature = "mimalloc")]
    tune_allocator();
    let cli = mfascope::cli::Cli::parse();
    match mfascope::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", mfascope::cli::error_text(&e));
            std::process::exit(1);
        }
    }
}
