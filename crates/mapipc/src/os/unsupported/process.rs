//! Process identity, clocks and scheduling (stub). None of these can fail, so each returns
//! a portable value, from `std` where it has one; see each function. [`euid`] and
//! [`pid_exists`] are the POSIX calls Linux makes too. Only [`kill9`] is unsupported.

use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::unsupported;

pub use crate::os::posix::{euid, pid_exists};

/// The process id ([`std::process::id`], `getpid()`).
pub fn pid() -> u32 {
    std::process::id()
}

/// `kill(pid, SIGKILL)` on Linux; unsupported here (mapipc kills nothing on a platform it
/// does not support).
pub fn kill9(_pid: u32) -> io::Result<()> {
    Err(unsupported("kill(SIGKILL)"))
}

/// Nanoseconds since the epoch ([`SystemTime::now`]; 0 if the clock is before 1970).
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Monotonic nanoseconds ([`Instant`]) since this function was first called in this
/// process. Unlike Linux's `CLOCK_MONOTONIC` the origin is per process, so values from two
/// processes cannot be compared; mapipc only subtracts values from one process.
pub fn monotonic_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let elapsed = ORIGIN.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// [`monotonic_ns`] (there is no coarse clock to prefer here).
pub fn monotonic_coarse_ns() -> u64 {
    monotonic_ns()
}

/// Yields the CPU ([`std::thread::yield_now`]).
pub fn yield_now() {
    std::thread::yield_now();
}

/// Pins the calling thread to one CPU on Linux; here always `false` ("refused", as the
/// Linux version reports a refusal).
pub fn pin_to_cpu(_cpu: usize) -> bool {
    false
}

/// Number of CPUs this process may use ([`std::thread::available_parallelism`]; 1 when
/// unknown, as on Linux).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sleeps for `d` ([`std::thread::sleep`], which also resumes after signals until the
/// whole duration has passed).
pub fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// Ignores `SIGXFSZ` on Linux; nothing to do here.
///
/// # Errors
/// Never.
pub fn ignore_sigxfsz() -> io::Result<()> {
    Ok(())
}

/// Keeps forked children waitable on Linux; nothing to do here.
///
/// # Errors
/// Never.
pub fn keep_children_waitable() -> io::Result<()> {
    Ok(())
}
