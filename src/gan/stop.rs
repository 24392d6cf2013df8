//! Stopping a run cleanly: a signal handler (or anything else) asks running
//! training loops to stop after the steps in flight; each loop then writes its
//! checkpoint and returns with `interrupted` set. The request remembers the
//! signal that made it, so the command can exit with `128 + signal`.
//!
//! Everything here is one atomic word, so it may be called from a signal handler.

use std::sync::atomic::{AtomicI32, Ordering};

/// 0: no stop requested; else the signal number (or any positive code) that asked.
static STOP: AtomicI32 = AtomicI32::new(0);

/// Asks running training loops to stop; `signal` is the signal number that
/// asked (any positive number). Returns whether a stop had already been requested.
pub fn request(signal: i32) -> bool {
    STOP.swap(signal.max(1), Ordering::SeqCst) != 0
}

/// The signal of the stop requested, if one was.
pub fn requested() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Forgets a stop request (for a library caller that runs again after a stop).
pub fn clear() {
    STOP.store(0, Ordering::SeqCst);
}
