//! Process helpers shared by the integration tests: fork a child that runs a closure, wait
//! for it under a watchdog, kill it. No assertion here is about time: the watchdog only
//! turns a hang into a failure.
#![allow(dead_code)]

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// Longest a child may run before the watchdog kills it and fails the test.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `_exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A forked child process.
#[derive(Debug)]
pub struct Child {
    pub pid: libc::pid_t,
    reaped: bool,
}

/// Forks; the child runs `f` and `_exit`s with its result (101 if it panicked), never
/// returning into the test harness. `f` must only do simple work: the parent has threads.
pub fn fork(f: impl FnOnce() -> i32) -> Child {
    // SAFETY: `fork` has no memory-safety preconditions; the child runs `f` (simple work on
    // memory prepared by the parent; glibc's allocator is fork-safe) and `_exit`s without
    // running destructors or returning to the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    Child { pid, reaped: false }
}

fn decode(status: libc::c_int) -> Exit {
    if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    }
}

impl Child {
    /// Waits for the child; after [`WATCHDOG`] kills it and panics.
    pub fn wait(&mut self) -> Exit {
        self.wait_or(String::new)
    }

    /// As [`wait`](Self::wait), adding `state()` (for example a channel's counters) to the
    /// panic message when the watchdog fires, to diagnose the hang.
    pub fn wait_or(&mut self, state: impl Fn() -> String) -> Exit {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            if let Some(e) = self.try_wait() {
                return e;
            }
            if Instant::now() > deadline {
                let what = state();
                self.kill();
                let e = self.wait_blocking();
                panic!(
                    "child {} still running after {WATCHDOG:?}: killed ({e:?}); {what}",
                    self.pid
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits and asserts `_exit(0)`.
    pub fn expect_ok(&mut self, what: &str) {
        let e = self.wait();
        assert_eq!(
            e,
            Exit::Code(0),
            "{what}: child {} ended with {e:?}",
            self.pid
        );
    }

    /// Non-blocking wait.
    pub fn try_wait(&mut self) -> Option<Exit> {
        if self.reaped {
            return None;
        }
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if r == self.pid {
            self.reaped = true;
            Some(decode(status))
        } else {
            None
        }
    }

    fn wait_blocking(&mut self) -> Exit {
        let mut status = 0;
        loop {
            // SAFETY: as in `try_wait`.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                self.reaped = true;
                return decode(status);
            }
            assert_eq!(
                std::io::Error::last_os_error().kind(),
                std::io::ErrorKind::Interrupted
            );
        }
    }

    /// `SIGKILL`, then reap.
    pub fn kill9(&mut self) -> Exit {
        self.kill();
        self.wait_blocking()
    }

    fn kill(&self) {
        // SAFETY: signalling our own unreaped child (its pid cannot be reused yet).
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = self.wait_blocking();
        }
    }
}

/// A small deterministic generator (xorshift64*) for test data and random choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Fills `buf` with bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

/// A seed for this run: `MAPIPC_TEST_SEED` if set (to replay a failure), else the time.
pub fn seed() -> u64 {
    std::env::var("MAPIPC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}
