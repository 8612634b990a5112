//! The synchronisation primitives the executor uses: `std`'s, or in unit tests shuttle's, so
//! the shuttle tests explore the executor's thread interleavings.

#[cfg(not(test))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(test))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(test))]
pub(crate) use std::thread;

#[cfg(test)]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(test)]
pub(crate) use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(test)]
pub(crate) use shuttle::thread;

/// Locks `m`; a poisoned mutex (a panic while it was held) is still usable here because every
/// critical section leaves the state consistent before it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
