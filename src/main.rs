//! Thin binary: parse arguments, run, map errors to exit codes.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Allocator options, set before the first allocation: an ingest frees whole batches at a time,
/// so with mimalloc's defaults freed memory stays resident and peaks stack up.
/// - purge delay 0: freed pages are returned at once instead of after 10 ms (~75 MB less peak
///   RSS on 1M events at the same speed);
/// - arena eager commit off: arenas are committed as they are used instead of all at once,
///   so purged pages leave the resident set (~55 MB less on 3M events; `scripts/bench-memory`).
///
/// Arena options only take effect before mimalloc reserves its first arena (at the first
/// allocation), hence a constructor: it runs after mimalloc's own (priority 101) and before
/// `main`, where the Rust runtime has already allocated.
#[cfg(feature = "mimalloc")]
extern "C" fn tune_allocator() {
    // Indices in `mi_option_t` of mimalloc.h (v3, the version libmimalloc-sys builds); the
    // bindings do not name them.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets global options, which mimalloc reads when it reserves and purges memory.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// Runs [`tune_allocator`] as an ELF constructor (before any Rust allocation).
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

fn main() {
    #[cfg(all(feature = "mimalloc", not(target_os = "linux")))]
    tune_allocator();
    let result = match mfascope::cli::parse() {
        mfascope::cli::Invocation::SloRules(args) => mfascope::cli::slo::run_rules(&args),
        mfascope::cli::Invocation::Cli(cli) => mfascope::cli::run(*cli),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", mfascope::cli::error_text(&e));
            std::process::exit(1);
        }
    }
}
