//! Futexes shared between processes: `FUTEX_WAIT` / `FUTEX_WAKE` without
//! `FUTEX_PRIVATE_FLAG`, so the kernel keys the wait queue on the physical page and a waiter
//! in one process is woken by a waker in another that maps the same memory.
//!
//! # References
//! - [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html),
//!   [`futex(7)`](https://man7.org/linux/man-pages/man7/futex.7.html)

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

pub use crate::os::types::WaitResult;

/// `futex(word, FUTEX_WAIT, expected, timeout)`: sleeps while `*word == expected`, at most
/// `timeout` (relative, `CLOCK_MONOTONIC`) when given.
///
/// # Example
/// ```
/// use std::sync::atomic::AtomicU32;
/// use mapipc::os::futex::{self, WaitResult};
/// let word = AtomicU32::new(1);
/// // The word no longer holds what the caller saw: no sleep at all.
/// assert_eq!(futex::wait(&word, 0, None)?, WaitResult::Changed);
/// assert_eq!(futex::wake(&word, u32::MAX)?, 0); // nobody was waiting
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<WaitResult> {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) => Ok(WaitResult::Woken),
        Err(Errno::AGAIN) => Ok(WaitResult::Changed),
        Err(Errno::INTR) => Ok(WaitResult::Woken),
        Err(Errno::TIMEDOUT) => Ok(WaitResult::TimedOut),
        Err(e) => Err(e.into()),
    }
}

/// `futex(word, FUTEX_WAKE, n)`: wakes at most `n` waiters; returns how many were woken.
///
/// # Example
/// See [`wait`].
pub fn wake(word: &AtomicU32, n: u32) -> io::Result<usize> {
    Ok(futex::wake(word, futex::Flags::empty(), n)?)
}
