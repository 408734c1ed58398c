//! Returning freed memory to the operating system around a known allocation peak. The binary
//! owns the allocator and installs the hooks (mimalloc: a forced collect, and its purge delay);
//! libraries wrap a burst of allocation (saving live state) in [`at_peak`], so neither the pages
//! freed before it nor those it frees itself (a growing buffer's earlier copies) add to that
//! peak. Without hooks, [`at_peak`] just runs its closure.
//!
//! This module never allocates and never decides *when* memory is purged otherwise: that is
//! the allocator's configuration, set by the binary.

use std::sync::OnceLock;

/// What the binary's allocator offers.
#[derive(Clone, Copy, Debug)]
pub struct Hooks {
    /// Return every page freed so far to the OS.
    pub release: fn(),
    /// `true`: return each page to the OS as it is freed; `false`: back to the binary's
    /// default.
    pub eager: fn(bool),
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Install the hooks [`at_peak`] calls (the first call wins; later ones are ignored).
pub fn set_hooks(hooks: Hooks) {
    let _ = HOOKS.set(hooks);
}

/// Run `f`, a burst of allocation, after returning the pages freed so far, with every page it
/// frees returned at once.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static RELEASED: AtomicUsize = AtomicUsize::new(0);
/// static EAGER: AtomicUsize = AtomicUsize::new(0);
/// // No hooks yet: only the closure runs.
/// assert_eq!(mfascope_core::memory::at_peak(|| 1), 1);
/// mfascope_core::memory::set_hooks(mfascope_core::memory::Hooks {
///     release: || {
///         RELEASED.fetch_add(1, Ordering::Relaxed);
///     },
///     eager: |on| {
///         EAGER.fetch_add(if on { 10 } else { 1 }, Ordering::Relaxed);
///     },
/// });
/// let saved = mfascope_core::memory::at_peak(|| {
///     assert_eq!(EAGER.load(Ordering::Relaxed), 10, "eager while the burst runs");
///     2
/// });
/// assert_eq!(saved, 2);
/// assert_eq!(RELEASED.load(Ordering::Relaxed), 1);
/// assert_eq!(EAGER.load(Ordering::Relaxed), 11, "back to the default after it");
/// ```
pub fn at_peak<T>(f: impl FnOnce() -> T) -> T {
    let Some(hooks) = HOOKS.get() else {
        return f();
    };
    (hooks.release)();
    (hooks.eager)(true);
    // Back to the default even when `f` panics.
    struct Restore(fn(bool));
    impl Drop for Restore {
        fn drop(&mut self) {
            (self.0)(false);
        }
    }
    let _restore = Restore(hooks.eager);
    f()
}
