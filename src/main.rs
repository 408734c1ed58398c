//! Thin binary: parse arguments, run, map errors to exit codes.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Allocator options, set before the first allocation: arena eager commit off, so arenas are
/// committed as they are used instead of all at once and purged pages leave the resident set
/// (~55 MB less on 3M events; `scripts/bench-memory`).
///
/// Freed pages are purged (returned to the OS) at once (delay 0): it costs system time (85,000
/// `madvise` calls and the page faults after them per 1M Okta events, 2.2 s of system CPU), but
/// any delay kept freed pages resident across threads and raised the peak of a 50M-event
/// stream from 397 to 567 MiB (10 ms) and 656 MiB (1 ms) (docs/performance.md).
/// `MIMALLOC_PURGE_DELAY` (milliseconds) overrides it for short runs where speed matters more.
///
/// Arena options only take effect before mimalloc reserves its first arena (at the first
/// allocation), hence a constructor: it runs after mimalloc's own (priority 101) and before
/// `main`, where the Rust runtime has already allocated.
#[cfg(feature = "mimalloc")]
extern "C" fn tune_allocator() {
    // SAFETY: sets global options, which mimalloc reads when it reserves and purges memory. A
    // default leaves an option mimalloc read from its environment as it is.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set_default(PURGE_DELAY, 0);
    }
}

// Indices in `mi_option_t` of mimalloc.h (v3, the version libmimalloc-sys builds); the bindings
// do not name them.
#[cfg(feature = "mimalloc")]
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
#[cfg(feature = "mimalloc")]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Runs [`tune_allocator`] as an ELF constructor (before any Rust allocation).
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

/// A command that reads the store once and exits keeps freed pages 10 ms before purging them,
/// unless `MIMALLOC_PURGE_DELAY` says otherwise: its queries create and free a decompression
/// context per Parquet column chunk, and purging each at once costs system time (`mfascope
/// sli` on 1M events: 2.8 → 2.2 s system CPU, docs/performance.md). Ingest keeps delay 0.
#[cfg(feature = "mimalloc")]
fn tune_allocator_for(invocation: &mfascope::cli::Invocation) {
    let reads_once =
        matches!(invocation, mfascope::cli::Invocation::Cli(cli) if cli.command.reads_once());
    if reads_once && std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a global option, which mimalloc reads each time it purges.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 10) };
    }
}

fn main() {
    #[cfg(all(feature = "mimalloc", not(target_os = "linux")))]
    tune_allocator();
    let invocation = mfascope::cli::parse();
    #[cfg(feature = "mimalloc")]
    tune_allocator_for(&invocation);
    let result = match invocation {
        mfascope::cli::Invocation::SloRules(args) => mfascope::cli::slo::run_rules(&args),
        mfascope::cli::Invocation::Cli(cli) => mfascope::cli::run(*cli),
    };
    match result {
        Ok(code) => std::process::exit(code),
        // The reader closed stdout (`| head`): nothing is wrong, end as a shell tool would.
        Err(e) if mfascope::cli::is_broken_pipe(&e) => std::process::exit(141),
        Err(e) => {
            eprintln!("error: {}", mfascope::cli::error_text(&e));
            std::process::exit(1);
        }
    }
}
