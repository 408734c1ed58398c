//! Returning freed memory to the operating system before a known allocation peak. The binary
//! owns the allocator and installs the hook (mimalloc's forced collect); libraries call
//! [`release`] where a burst of allocation follows (saving live state), so pages freed since
//! the allocator last purged do not add to that peak. Without a hook, [`release`] does nothing.
//!
//! This module never allocates and never decides *when* memory is purged otherwise: that is
//! the allocator's configuration, set by the binary.

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Install the function [`release`] calls (the first call wins; later ones are ignored).
pub fn set_release_hook(hook: fn()) {
    let _ = HOOK.set(hook);
}

/// Return freed memory to the OS now, if the binary installed a way to.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static CALLS: AtomicUsize = AtomicUsize::new(0);
/// mfascope_core::memory::release(); // no hook yet: nothing happens
/// mfascope_core::memory::set_release_hook(|| {
///     CALLS.fetch_add(1, Ordering::Relaxed);
/// });
/// mfascope_core::memory::release();
/// assert_eq!(CALLS.load(Ordering::Relaxed), 1);
/// ```
pub fn release() {
    if let Some(hook) = HOOK.get() {
        hook();
    }
}
