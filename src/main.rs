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
    // Indices in `mi_option_t` of mimalloc.h (v3, the version libmimalloc-sys builds); the
    // bindings do not name them.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: sets global options, which mimalloc reads when it reserves and purges memory.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, purge_delay_ms());
    }
}

/// Milliseconds before freed pages are purged (see [`tune_allocator`]).
#[cfg(feature = "mimalloc")]
const DEFAULT_PURGE_DELAY_MS: std::os::raw::c_long = 0;

/// Index of `mi_option_purge_delay` in `mi_option_t` (mimalloc.h v3).
#[cfg(feature = "mimalloc")]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The purge delay: 0 ms, or `MIMALLOC_PURGE_DELAY` (which setting the option would
/// otherwise override). Runs before the first allocation, so it reads the environment with
/// `getenv` and parses without allocating.
#[cfg(feature = "mimalloc")]
fn purge_delay_ms() -> std::os::raw::c_long {
    // SAFETY: `getenv` with a NUL-terminated name; the result is read before anything can
    // change the environment (no other thread exists yet).
    let value = unsafe { libc::getenv(c"MIMALLOC_PURGE_DELAY".as_ptr()) };
    if value.is_null() {
        return DEFAULT_PURGE_DELAY_MS;
    }
    // SAFETY: a non-null `getenv` result is a NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(value) };
    text.to_str()
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(DEFAULT_PURGE_DELAY_MS)
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
