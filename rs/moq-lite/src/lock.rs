//! Mutex access that survives poisoning.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, recovering the guard if a panic poisoned it: every structure this crate protects
/// with a mutex is left consistent at each panic point (updates are single inserts/removes), so
/// the data is still valid and refusing it would turn one panic into many.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
