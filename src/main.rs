//! Thin binary: parse arguments, run, map errors to exit codes.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Allocator options, set before the first allocation: arena eager commit off, so arenas are
/// committed as they are used instead of all at once and purged pages leave the resident set
/// (~55 MB less on 3M events; `scripts/bench-memory`).
///
/// Freed pages are purged (returned to the OS) at once (delay 0) until the command is known;
/// [`tune_allocator_for`] then sets how long-running commands purge.
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

/// How freed pages go back to the OS once the command is known (`MIMALLOC_PURGE_DELAY`, in
/// milliseconds, overrides both ways):
/// - A command that reads the store once and exits purges 10 ms after a free: its queries
///   create and free a decompression context per Parquet column chunk, and purging each at once
///   costs system time (`mfascope sli` on 1M events: 2.8 → 2.2 s system CPU).
/// - Every other command (ingest, serve, …) purges on a clock: a thread purges every page freed
///   since its last turn every [`PURGE_EVERY`], and the ingest purges before saving its state
///   (the peak of a long stream) and purges each free at once while it saves, through
///   [`mfascope_core::memory`]. Purging each free at once (delay 0) cost 85,000 `madvise` calls
///   and the page faults after them per 1M Okta events; mimalloc's own delay instead purges
///   only when some thread frees a page after the delay passed, which let freed pages pile up
///   (a 50M-event stream peaked at 567 MiB at 10 ms against 397 at delay 0).
///   docs/performance.md has the measurements.
#[cfg(feature = "mimalloc")]
fn tune_allocator_for(invocation: &mfascope::cli::Invocation) {
    let reads_once =
        matches!(invocation, mfascope::cli::Invocation::Cli(cli) if cli.command.reads_once());
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    if reads_once {
        // SAFETY: sets a global option, which mimalloc reads each time it purges.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 10) };
        return;
    }
    let purger = std::thread::Builder::new().name("purge".into()).spawn(|| {
        loop {
            std::thread::sleep(PURGE_EVERY);
            purge_now();
        }
    });
    // Without the thread (none could be spawned), freed pages keep being purged at once.
    if purger.is_ok() {
        purge_at_once(false);
        mfascope_core::memory::set_hooks(mfascope_core::memory::Hooks {
            release: purge_now,
            eager: purge_at_once,
        });
    }
}

/// How often the purge thread returns freed pages: what the process frees between two turns
/// stays resident until the next, so a longer period raises the peak. 1M Okta events:
/// 1.4–1.6 → 1.0–1.2 s system CPU. 50M canonical events over 10M users (`scripts/bench-memory`):
/// peak 297.6 MiB (5 ms: 297.4; purging every free at once: 290.6 and 293.5; 50 ms: 317.3).
#[cfg(feature = "mimalloc")]
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// `true`: purge each freed page at once (while the ingest saves its state); `false`: leave
/// freed pages to the purge thread (mimalloc's own delay set far beyond [`PURGE_EVERY`]).
#[cfg(feature = "mimalloc")]
fn purge_at_once(on: bool) {
    // SAFETY: sets a global option, which mimalloc reads each time it schedules a purge.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, if on { 0 } else { 60_000 }) };
}

/// Return every page freed since the last purge to the OS (mimalloc's forced collect: this
/// thread's heap, then all arenas' scheduled purges).
#[cfg(feature = "mimalloc")]
fn purge_now() {
    // SAFETY: mimalloc's collect is thread-safe; it touches the caller's heap and the arenas.
    unsafe { libmimalloc_sys::mi_collect(true) };
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
