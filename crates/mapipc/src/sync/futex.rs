//! Shared futexes over a word, and the [`FutexWord`] abstraction that lets the same
//! algorithms run over a mapping (kernel futexes) and under loom (an emulated futex).
//!
//! [`futex_wait`] and [`futex_wake`] are thin over `os::futex` (the only place that makes the
//! `futex` syscall). They use *shared* futexes (no `FUTEX_PRIVATE_FLAG`): the kernel keys the
//! wait queue on the physical page, so a waiter in one process is woken by a waker in another
//! that maps the same memory, at any address.
//!
//! # The loom emulation
//!
//! In `cfg(loom)` builds `FutexWord` is also implemented for `loom::sync::atomic::AtomicU32`.
//! Its wait and wake go through one table per loom execution, guarded by a loom `Mutex` that
//! plays the role of the kernel's hash-bucket lock:
//! - wait: lock; if the word no longer holds `expected`, return [`WaitOutcome::Changed`];
//!   otherwise enqueue a ticket `(address, woken = false)` and sleep on a loom `Condvar`
//!   until the ticket is marked woken;
//! - wake(n): lock; mark up to `n` unwoken tickets of this address woken (oldest first),
//!   `notify_all` the condvar, return how many were marked.
//!
//! This is the futex contract (the value check and the enqueue are atomic with respect to
//! wakes; a wake only wakes waiters of its own address), so a lost wake-up in an algorithm
//! leaves a thread asleep forever, which loom reports as a deadlock. The word is read with a
//! `Relaxed` load inside the lock, weaker than the kernel's full barrier, so the model is, if
//! anything, more adversarial than the kernel. Timeouts are ignored (loom has no clock): a
//! timed wait blocks until woken.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::os;

/// Why a futex wait returned.
///
/// # Example
/// ```
/// use mapipc::sync::{futex_wait, WaitOutcome};
/// let word = std::sync::atomic::AtomicU32::new(1);
/// // The word does not hold 0, so the kernel does not sleep.
/// assert_eq!(futex_wait(&word, 0, None)?, WaitOutcome::Changed);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken by a wake, or spuriously (a signal): re-check the condition.
    Woken,
    /// The word did not hold `expected` when the kernel looked (`EAGAIN`).
    Changed,
    /// The timeout passed (`ETIMEDOUT`).
    TimedOut,
}

mod sealed {
    pub trait Sealed {}
}

/// A 32-bit atomic word that can be waited on: the operations the primitives of
/// [`sync`](super) need, plus futex wait and wake.
///
/// Sealed. Implemented for [`std::sync::atomic::AtomicU32`] (what [`Mmap::atomic_u32`]
/// returns; waits go to the kernel), and in `cfg(loom)` builds for
/// `loom::sync::atomic::AtomicU32` (waits go to the emulation described in the
/// [module docs](self)).
///
/// # Example
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use mapipc::sync::{FutexWord, WaitOutcome};
/// fn bump<W: FutexWord>(w: &W) -> u32 {
///     w.fetch_add(1, Ordering::AcqRel)
/// }
/// let word = AtomicU32::new(7);
/// assert_eq!(bump(&word), 7);
/// assert_eq!(FutexWord::compare_exchange(&word, 7, 9, Ordering::AcqRel, Ordering::Acquire), Err(8));
/// // Waiting for a value the word no longer holds returns at once.
/// assert_eq!(FutexWord::futex_wait(&word, 7, None)?, WaitOutcome::Changed);
/// assert_eq!(FutexWord::futex_wake(&word, 1)?, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`Mmap::atomic_u32`]: crate::map::Mmap::atomic_u32
pub trait FutexWord: sealed::Sealed + Sync {
    /// `AtomicU32::load`.
    fn load(&self, order: Ordering) -> u32;
    /// `AtomicU32::store`.
    fn store(&self, val: u32, order: Ordering);
    /// `AtomicU32::fetch_add` (wrapping).
    fn fetch_add(&self, val: u32, order: Ordering) -> u32;
    /// `AtomicU32::compare_exchange`.
    ///
    /// # Errors
    /// The current value, when it was not `current`.
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    /// `AtomicU32::fetch_update`: a compare-and-swap loop applying `f`.
    ///
    /// # Errors
    /// The current value, when `f` returned `None`.
    fn fetch_update<F: FnMut(u32) -> Option<u32>>(
        &self,
        set_order: Ordering,
        fetch_order: Ordering,
        f: F,
    ) -> Result<u32, u32>;
    /// Sleeps while the word holds `expected`, at most `timeout`. See [`futex_wait`].
    ///
    /// # Errors
    /// As [`futex_wait`].
    fn futex_wait(&self, expected: u32, timeout: Option<Duration>) -> io::Result<WaitOutcome>;
    /// Wakes at most `n` waiters of this word. See [`futex_wake`].
    ///
    /// # Errors
    /// As [`futex_wake`].
    fn futex_wake(&self, n: u32) -> io::Result<usize>;
    /// One iteration of a busy-wait loop: `std::hint::spin_loop`, or a loom yield.
    fn spin_hint();
}

macro_rules! forward_atomic_ops {
    () => {
        #[inline]
        fn load(&self, order: Ordering) -> u32 {
            self.load(order)
        }
        #[inline]
        fn store(&self, val: u32, order: Ordering) {
            self.store(val, order)
        }
        #[inline]
        fn fetch_add(&self, val: u32, order: Ordering) -> u32 {
            self.fetch_add(val, order)
        }
        #[inline]
        fn compare_exchange(
            &self,
            current: u32,
            new: u32,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u32, u32> {
            self.compare_exchange(current, new, success, failure)
        }
        #[inline]
        fn fetch_update<F: FnMut(u32) -> Option<u32>>(
            &self,
            set_order: Ordering,
            fetch_order: Ordering,
            f: F,
        ) -> Result<u32, u32> {
            self.fetch_update(set_order, fetch_order, f)
        }
    };
}

impl sealed::Sealed for std::sync::atomic::AtomicU32 {}

impl FutexWord for std::sync::atomic::AtomicU32 {
    forward_atomic_ops!();

    fn futex_wait(&self, expected: u32, timeout: Option<Duration>) -> io::Result<WaitOutcome> {
        Ok(match os::futex::wait(self, expected, timeout)? {
            os::futex::WaitResult::Woken => WaitOutcome::Woken,
            os::futex::WaitResult::Changed => WaitOutcome::Changed,
            os::futex::WaitResult::TimedOut => WaitOutcome::TimedOut,
        })
    }

    fn futex_wake(&self, n: u32) -> io::Result<usize> {
        os::futex::wake(self, n)
    }

    #[inline]
    fn spin_hint() {
        std::hint::spin_loop();
    }
}

#[cfg(loom)]
impl sealed::Sealed for loom::sync::atomic::AtomicU32 {}

#[cfg(loom)]
impl FutexWord for loom::sync::atomic::AtomicU32 {
    forward_atomic_ops!();

    fn futex_wait(&self, expected: u32, _timeout: Option<Duration>) -> io::Result<WaitOutcome> {
        Ok(model::wait(self, expected))
    }

    fn futex_wake(&self, n: u32) -> io::Result<usize> {
        Ok(model::wake(self, n))
    }

    fn spin_hint() {
        loom::hint::spin_loop();
    }
}

/// `futex(word, FUTEX_WAIT, expected, timeout)` on a shared futex: sleeps while `*word ==
/// expected`, at most `timeout` (relative, `CLOCK_MONOTONIC`) when given.
///
/// Returns early with [`WaitOutcome::Changed`] when the word no longer holds `expected`, and
/// may return [`WaitOutcome::Woken`] spuriously: callers re-check their condition in a loop.
///
/// # Errors
/// The OS error of an unexpected failure (`EFAULT`, `EINVAL`, `ENOSYS`); none can happen for
/// a word reached through a reference on Linux.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use mapipc::sync::{futex_wait, WaitOutcome};
/// let map = mapipc::map::Mmap::anonymous(64)?;
/// let word = map.atomic_u32(0)?;
/// let r = futex_wait(word, 0, Some(Duration::from_millis(1)))?;
/// assert!(matches!(r, WaitOutcome::TimedOut | WaitOutcome::Woken));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "FUTEX_WAIT")]
pub fn futex_wait<W: FutexWord>(
    word: &W,
    expected: u32,
    timeout: Option<Duration>,
) -> io::Result<WaitOutcome> {
    word.futex_wait(expected, timeout)
}

/// `futex(word, FUTEX_WAKE, n)` on a shared futex: wakes at most `n` waiters of the word (in
/// any process mapping it) and returns how many were woken.
///
/// # Errors
/// As [`futex_wait`].
///
/// # Example
/// ```
/// let map = mapipc::map::Mmap::anonymous(64)?;
/// assert_eq!(mapipc::sync::futex_wake(map.atomic_u32(0)?, 1)?, 0); // nobody waits
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "FUTEX_WAKE")]
pub fn futex_wake<W: FutexWord>(word: &W, n: u32) -> io::Result<usize> {
    word.futex_wake(n)
}

#[cfg(loom)]
mod model {
    //! The loom futex emulation described in the module docs.
    use loom::sync::atomic::AtomicU32;
    use loom::sync::{Condvar, Mutex};
    use std::sync::atomic::Ordering;

    use super::WaitOutcome;

    struct Parked {
        addr: usize,
        ticket: u64,
        woken: bool,
    }

    #[derive(Default)]
    struct Queue {
        next_ticket: u64,
        parked: Vec<Parked>,
    }

    struct Table {
        queue: Mutex<Queue>,
        cv: Condvar,
    }

    loom::lazy_static! {
        static ref TABLE: Table = Table { queue: Mutex::new(Queue::default()), cv: Condvar::new() };
    }

    fn addr(word: &AtomicU32) -> usize {
        word as *const AtomicU32 as usize
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32) -> WaitOutcome {
        let mut q = TABLE.queue.lock().unwrap();
        if word.load(Ordering::Relaxed) != expected {
            return WaitOutcome::Changed;
        }
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.parked.push(Parked {
            addr: addr(word),
            ticket,
            woken: false,
        });
        loop {
            q = TABLE.cv.wait(q).unwrap();
            if let Some(i) = q.parked.iter().position(|p| p.ticket == ticket && p.woken) {
                q.parked.remove(i);
                return WaitOutcome::Woken;
            }
        }
    }

    pub(super) fn wake(word: &AtomicU32, n: u32) -> usize {
        let a = addr(word);
        let mut q = TABLE.queue.lock().unwrap();
        let mut woken = 0;
        for p in q
            .parked
            .iter_mut()
            .filter(|p| p.addr == a && !p.woken)
            .take(n as usize)
        {
            p.woken = true;
            woken += 1;
        }
        if woken > 0 {
            TABLE.cv.notify_all();
        }
        woken
    }
}
