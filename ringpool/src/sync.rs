//! std vs loom primitives, so the wake protocol can be model-checked.
//!
//! Everything the sleep/wake protocol touches (flags, counters, the futex
//! words) comes from here. Under `--cfg loom` these are loom's instrumented
//! types and the protocol code in `protocol::park`/`protocol::doorbell` is checked
//! exhaustively by `tests/loom.rs`; otherwise they are std's.

// Under loom only the protocol modules are compiled, which use a subset.
#![cfg_attr(loom, allow(unused_imports, dead_code))]

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex};

pub(crate) use std::sync::atomic::Ordering;

/// Locks `m`, ignoring poisoning: the pool's own critical sections never
/// panic, and a job's panic is caught before it can reach a lock.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(e) => e.into_inner(),
    }
}

#[cfg(loom)]
pub(crate) use loom::sync::MutexGuard;
#[cfg(not(loom))]
pub(crate) use std::sync::MutexGuard;
