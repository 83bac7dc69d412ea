//! Shared futexes (stub): Linux's `futex(2)` has no portable equivalent, so waiting and
//! waking fail with an "unsupported" error; see the [`os` module docs](crate::os).

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::unsupported;

pub use crate::os::types::WaitResult;

/// `futex(word, FUTEX_WAIT, expected, timeout)` on Linux; unsupported here (it returns at
/// once, never sleeps).
pub fn wait(
    _word: &AtomicU32,
    _expected: u32,
    _timeout: Option<Duration>,
) -> io::Result<WaitResult> {
    Err(unsupported("futex(FUTEX_WAIT)"))
}

/// `futex(word, FUTEX_WAKE, n)` on Linux; unsupported here.
pub fn wake(_word: &AtomicU32, _n: u32) -> io::Result<usize> {
    Err(unsupported("futex(FUTEX_WAKE)"))
}
