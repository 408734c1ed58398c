//! Locking shared state that a panicking thread may have left poisoned: the data behind these
//! mutexes (counters, rings, findings, verifier state) stays consistent per operation, so the
//! guard is taken as is rather than propagating the panic.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, recovering the guard from a poisoned mutex.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
