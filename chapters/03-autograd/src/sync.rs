//! Locks that survive a panic elsewhere.
//!
//! A tensor's data, gradient and graph edges sit behind locks so that
//! tensors can be shared between threads. If a thread panics while holding
//! one, the standard library marks the lock "poisoned" and every later
//! `lock()` returns an error. Our locks only ever guard whole-value swaps
//! (a new gradient, a new data handle), which cannot be left half done, so
//! the value inside is always consistent: we take it and carry on, instead
//! of turning one panic into a cascade of them.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
