//! [`Notifier`]: an event in one shared 32-bit word, with spin-then-park waiting, a waker
//! that makes no syscall when nobody is parked, deadlines and peer liveness checks.
//!
//! # Layout
//!
//! One naturally aligned `u32` (4 bytes; a zeroed word is a valid, idle notifier):
//!
//! | bits    | field   | meaning |
//! |---------|---------|---------|
//! | 0..10   | waiters | threads registered as (about to be) parked, saturating at 1023 |
//! | 10..32  | epoch   | bumped (wrapping) by every notify |
//!
//! Every update is one atomic read-modify-write of the whole word, so a notify and a
//! registration are totally ordered (the word's modification order); that is what makes the
//! wake-up impossible to lose.
//!
//! # Algorithm
//!
//! Waker (`notify_one` / `notify_all`):
//! - N1: `old = word.fetch_add(EPOCH_ONE, Release)` (**R1**: publishes everything the waker
//!   wrote before notifying, e.g. the data the waiter's predicate looks for);
//! - N2: if `waiters(old) == 0`, return without a syscall;
//! - N3: otherwise `k = futex_wake(word, 1 or all)`;
//! - N4 (clear, **C1**): if `k == 0` (nobody was parked: the count is made of waiters killed
//!   while parked, gone, or not parked yet), one `compare_exchange(old + EPOCH_ONE,
//!   clear(old + EPOCH_ONE), Relaxed, Relaxed)`, where `clear(v)` zeroes the count and adds
//!   2 to the epoch (`CLEAR_BUMP`). It fails, and nothing is done, if the word changed since
//!   N1. Relaxed: an RMW continues N1's release sequence, and it publishes nothing itself;
//! - N5: if N4 succeeded, `futex_wake(word, all)`: whoever parked between N3 and N4 was
//!   uncounted by N4 and is sent back to W7 to register again.
//!
//! Waiter (`wait_until(ready, opts)`), holding `reg`, the epoch at which its registration
//! was made or last confirmed:
//! - W1: `ready()`; then spin up to `opts.spin` times: spin hint, `ready()`;
//! - W2: register: `cur = word.fetch_update(Acquire, ..)` with `waiters + 1` (**A1**, pairs
//!   with R1); `reg = epoch(cur)`;
//! - loop:
//!   - W3: `ready()`; if it holds, deregister (D1) and return it;
//!   - W4: if the peer was found dead (W6), return `PeerGone`; if the deadline passed,
//!     return `TimedOut` (W3 was the last check of the predicate in both cases);
//!   - W5: `futex_wait(word, cur, min(check_interval, time to deadline))`;
//!   - W6: if `check_interval` elapsed since the last check, call `alive()`;
//!   - W7: `cur = word.load(Acquire)` (**A2**, pairs with R1); if `waiters(cur) == 0`
//!     (garbage, or a clear) or `epoch(cur) - reg >= 2` (a clear may have erased our
//!     registration), register again (W2); otherwise our registration is still counted:
//!     `reg = epoch(cur)`.
//!
//! Deregistration, D1: `fetch_update(Relaxed)` with `waiters - 1`, only if
//! `epoch(word) - reg <= 1` (and the count is neither 0 nor saturated). Relaxed: it only makes
//! later wakers skip a syscall we no longer need. It runs from a drop guard, so a panicking
//! predicate deregisters too.
//!
//! **Which registrations a clear erases.** N4 sets the count to 0, so it erases every
//! registration made before it in the word's modification order, and makes the epoch at
//! least `epoch(v) + 2` for every earlier value `v`. A registration is made (W2), or
//! confirmed counted (W7), at a value `v` with `reg = epoch(v)`; if a later N4 erases it,
//! every value from then on has `epoch - reg >= 2`. Contrapositive: `epoch - reg <= 1` in a
//! value means no clear erased the registration before that value. One notify alone
//! (`+1`) is trusted; two notifies without a clear are not, and the waiter then registers
//! again while its old registration stays counted: an over-count, which only costs a wake
//! syscall until the next notify that finds nobody parked clears it. So:
//! - D1 takes away only a registration still counted (never another waiter's);
//! - W7 never parks on a registration that was erased before the value it read.
//!
//! **No lost wake-up.** The waiter sleeps at W5 only on a value `cur` it read (W2 or W7)
//! *before* a `ready()` that failed (W3), at which its registration was counted (W2 made
//! it; W7 checked it). Take the notify N1 that follows the publication the predicate looks
//! for, and its place in the word's modification order:
//! - N1 is at or before the value `cur` was read from: every later write to the word is an
//!   RMW (registrations, deregistrations, other notifies, clears), so they continue N1's
//!   release sequence, and the Acquire that read `cur` (A1 or A2) synchronizes with R1: the
//!   following `ready()` sees the publication. It cannot have failed.
//! - N1 comes after `cur`, and no N4 erased our registration between `cur` and N1: N1's
//!   `old` counts us, so `waiters(old) >= 1` and the waker calls `futex_wake` (N3) after
//!   N1. The kernel compares the word with `cur` under its queue lock: either it already
//!   sees N1 (epoch changed: `Changed`, no sleep), or the waiter is queued before N3 takes
//!   that lock and is woken.
//! - An N4 erased our registration after `cur`: it changed the word to a value whose epoch
//!   no value at or before `cur` has (`+2` past them; the epoch only grows), so a
//!   `futex_wait` on `cur` that compares after N4 returns `Changed`; one queued before N4
//!   was queued after that clear's N3 (which woke nobody) and is woken by its N5, which
//!   runs after N4. Either way the waiter reaches W7, reads a value after N4, finds
//!   `epoch - reg >= 2` and registers again (A1, an RMW after N4): the first case if N1 is
//!   before that registration, the second if after.
//!
//! With `notify_one`, the woken waiter is one of those parked; a waiter between W2/W7 and W5
//! sees the changed epoch instead. Waiters passed to `notify_one` should be interchangeable
//! (waiting for the same condition); otherwise use `notify_all`. N4 runs only when N3 woke
//! nobody: for `notify_one` too, since a parked waiter it did not wake must stay counted.
//!
//! **Dead waiters.** A waiter killed while parked never deregisters; the first notify that
//! finds nobody parked (N3 wakes 0) clears its registration, so after it notifies make no
//! syscall again and [`Notifier::waiters`] reads 0. While live waiters stay parked at every
//! notify, the dead registration stays (it costs nothing then: those notifies need their
//! syscall anyway). A clear that races with a registration, a deregistration or another
//! notify fails and leaves the count to a later notify.
//!
//! # Hostile or garbage words
//!
//! - A garbage waiter count only changes whether wakers make a syscall (extra syscalls), or,
//!   if it reads 0 while someone is parked, delays that waiter to the end of its current slice
//!   (at most `check_interval`), where W7 re-registers it.
//! - At 0 the count is never decremented and at 1023 never incremented, so nothing
//!   overflows into the epoch or underflows.
//! - A word that keeps changing makes `futex_wait` return `Changed`; the loop re-checks the
//!   deadline and the liveness interval on every turn, so it ends on time.
//! - An epoch that wraps around to the exact value a waiter slept on (2^22 notifies between
//!   W7 and W5 with the same count) delays that waiter to the end of its slice; so does
//!   one that wraps between a registration and its check (W7, D1), which can then take an
//!   erased registration for counted.
//! - The count saturates: at 1023 it is sticky for registrations and deregistrations;
//!   only a clear (N4, [`Notifier::forget_waiters`]) resets it. A registration absorbed by
//!   the saturation that is parked when the clear happens is woken by N5 (the clear found
//!   nobody parked at N3, so it parked after) and registers again at W7.
//! - A garbage epoch (moved backwards, or forwards by 2 or more) makes live waiters take
//!   their registration for erased: they register again and leave the old one counted, which
//!   the next notify that finds nobody parked clears.
//!
//! Waiting without a deadline and without an `alive` callback has no bound by design (the
//! peer may never notify); it still wakes every `check_interval` to re-check the predicate.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU32, Ordering};

use super::futex::FutexWord;

/// Bits of the word holding the parked-waiter count.
const WAITER_BITS: u32 = 10;
/// Mask of the waiter count; also its saturation value.
const WAITERS_MAX: u32 = (1 << WAITER_BITS) - 1;
/// Added by each notify.
const EPOCH_ONE: u32 = 1 << WAITER_BITS;
/// Added on top of [`EPOCH_ONE`] by a notify that clears the waiter count (N4), and by
/// [`Notifier::forget_waiters`]: two, so that one notify alone never looks like a clear.
const CLEAR_BUMP: u32 = 2 * EPOCH_ONE;
/// Mask of the epoch once shifted down.
const EPOCH_MASK: u32 = (1 << (32 - WAITER_BITS)) - 1;
/// `futex_wake`'s "everyone".
const WAKE_ALL: u32 = i32::MAX as u32;

#[inline]
fn waiters_of(word: u32) -> u32 {
    word & WAITERS_MAX
}

#[inline]
fn epoch_of(word: u32) -> u32 {
    word >> WAITER_BITS
}

/// Whether a registration made (or last confirmed) at epoch `reg` is still surely counted in
/// `word`: no clear can have erased it, since a clear advances the epoch by at least 2 past
/// every registration it erases (module docs). A garbage epoch that went backwards reads as
/// a large distance: not trusted.
#[inline]
fn registration_trusted(reg: u32, word: u32) -> bool {
    epoch_of(word).wrapping_sub(reg) & EPOCH_MASK <= 1
}

/// Default number of spin iterations before parking ([`WaitOptions::spin`]).
pub const DEFAULT_SPIN: u32 = 100;

/// Default longest uninterrupted sleep between liveness checks
/// ([`WaitOptions::check_interval`]).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Shortest accepted check interval: shorter ones are raised to this.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// An event in a shared 32-bit word: waiters wait until a predicate holds, wakers notify.
///
/// The notifier holds no state of its own besides the reference: any number of `Notifier`s
/// (in any number of processes) over the same word are the same event. The predicate is the
/// caller's: the notifier only guarantees that a waiter whose predicate becomes true before a
/// notify is not left asleep. See the [module docs](self) for the algorithm and layout.
///
/// # Example
/// ```
/// use std::sync::atomic::Ordering;
/// use std::time::Duration;
/// use mapipc::sync::{Notifier, WaitError, WaitOptions};
///
/// let map = mapipc::map::Mmap::anonymous(4096)?;
/// let (data, word) = (map.atomic_u32(0)?, map.atomic_u32(4)?);
/// let n = Notifier::new(word);
/// assert!(!n.notify_one()); // nobody parked: no syscall
///
/// let mut opts = WaitOptions::new();
/// opts.timeout(Duration::from_millis(10));
/// let r = n.wait_until(|| (data.load(Ordering::Acquire) != 0).then_some(()), &opts);
/// assert!(matches!(r, Err(WaitError::TimedOut)));
///
/// data.store(42, Ordering::Release);
/// n.notify_all();
/// let v = n.wait_until(|| Some(data.load(Ordering::Acquire)).filter(|&v| v != 0), &opts)?;
/// assert_eq!(v, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Notifier<'a, W: FutexWord = AtomicU32> {
    word: &'a W,
}

impl<W: FutexWord> Clone for Notifier<'_, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W: FutexWord> Copy for Notifier<'_, W> {}

impl<W: FutexWord> fmt::Debug for Notifier<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("epoch", &self.epoch())
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl<'a, W: FutexWord> Notifier<'a, W> {
    /// A notifier over `word`. Any value is accepted; zero is the idle state to initialise a
    /// new word with.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let n = mapipc::sync::Notifier::new(map.atomic_u32(0)?);
    /// assert_eq!(n.waiters(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(word: &'a W) -> Self {
        Notifier { word }
    }

    /// Wakes one parked waiter, if any. Returns whether a wake syscall was made (`false`:
    /// nobody was registered, the notify cost one atomic operation). When waiters were
    /// counted but the wake found nobody parked (say, one was killed while parked), the
    /// notify also clears the count, so that later notifies skip the syscall again (N4 in
    /// the [module docs](self)).
    ///
    /// Everything written before the call is visible to a waiter whose predicate runs after
    /// it wakes.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let n = mapipc::sync::Notifier::new(map.atomic_u32(0)?);
    /// let before = n.epoch();
    /// assert!(!n.notify_one());
    /// assert_eq!(n.epoch(), before.wrapping_add(1) & ((1 << 22) - 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify_one(&self) -> bool {
        self.notify(1)
    }

    /// Wakes every parked waiter. Returns whether a wake syscall was made. Clears a count
    /// nobody was parked behind, as [`notify_one`](Self::notify_one) does.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let n = mapipc::sync::Notifier::new(map.atomic_u32(0)?);
    /// assert!(!n.notify_all());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify_all(&self) -> bool {
        self.notify(WAKE_ALL)
    }

    fn notify(&self, n: u32) -> bool {
        // N1 / R1: publish what was written before the notify, and bump the epoch so that a
        // waiter about to sleep on the old value sees a change.
        let old = self.word.fetch_add(EPOCH_ONE, Ordering::Release);
        // N2: nobody registered, nobody to wake.
        if waiters_of(old) == 0 {
            return false;
        }
        // N3. A failure (impossible for a valid reference) leaves the waiters to their next
        // slice; there is nothing better a notify could do with the error.
        if let Ok(0) = self.word.futex_wake(n) {
            // N4 / C1: nobody was parked, so the registrations counted in `old` belong to
            // waiters killed while parked, gone, or not parked yet. Clear them if the word
            // is still what N1 made of it, and advance the epoch by two more so that every
            // waiter registered before sees that its registration may be gone (module
            // docs). Relaxed: the CAS is an RMW, so it continues N1's release sequence; it
            // publishes nothing of its own.
            let seen = old.wrapping_add(EPOCH_ONE);
            let cleared = (seen & !WAITERS_MAX).wrapping_add(CLEAR_BUMP);
            if self
                .word
                .compare_exchange(seen, cleared, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                // N5: a waiter that parked between N3 and N4 was just uncounted: wake it,
                // so that it registers again (W7).
                let _ = self.word.futex_wake(WAKE_ALL);
            }
        }
        true
    }

    /// Waits until `ready` returns `Some`, and returns its value.
    ///
    /// `ready` is called once, then up to `opts.spin` more times in a spin loop (which also
    /// ends at the deadline, or after spinning for a check interval), then the thread parks
    /// on the futex and calls `ready` again after every wake-up (some are
    /// spurious). It must read shared state with `Acquire` (or stronger) loads to see what
    /// the notifier published. The thread never sleeps longer than the check interval at a
    /// time; between sleeps it calls `opts.alive` (when given) at most once per interval.
    ///
    /// # Errors
    /// - [`WaitError::TimedOut`]: the deadline passed;
    /// - [`WaitError::PeerGone`]: `opts.alive` returned `false`;
    /// - [`WaitError::Os`]: the futex wait failed (not expected on Linux).
    ///
    /// In the first two cases `ready` was checked one last time after the condition was
    /// noticed, so a value published before the deadline or the peer's death is returned.
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use mapipc::sync::{Notifier, WaitError, WaitOptions};
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let (flag, word) = (map.atomic_u32(0)?, map.atomic_u32(4)?);
    /// // A dead peer: the waiter gives up after one check interval instead of hanging.
    /// let dead = || false;
    /// let mut opts = WaitOptions::new();
    /// opts.check_interval(std::time::Duration::from_millis(5)).alive(&dead);
    /// let r = Notifier::new(word).wait_until(|| (flag.load(Ordering::Acquire) == 1).then_some(()), &opts);
    /// assert!(matches!(r, Err(WaitError::PeerGone)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_until<T>(
        &self,
        mut ready: impl FnMut() -> Option<T>,
        opts: &WaitOptions<'_>,
    ) -> Result<T, WaitError> {
        // W1: the fast path, then the spin phase. However many spins the caller asked for,
        // the phase ends at the deadline or after a check interval of spinning, so that the
        // deadline and the liveness checks of the parking loop still apply. The clock is
        // read every 1024 spins, from the 1024th on (short spins never read it); with a
        // deadline every 64, which then passes by microseconds at most, not tens of them.
        if let Some(v) = ready() {
            return Ok(v);
        }
        let clock_every: u32 = if opts.deadline.is_some() { 64 } else { 1024 };
        let mut spin_start: Option<Instant> = None;
        for i in 0..opts.spin {
            W::spin_hint();
            if let Some(v) = ready() {
                return Ok(v);
            }
            if i % clock_every == clock_every - 1 {
                let now = Instant::now();
                let start = *spin_start.get_or_insert(now);
                if opts.deadline.is_some_and(|d| now >= d)
                    || now.duration_since(start) >= opts.check_interval
                {
                    break;
                }
            }
        }

        // W2 / A1.
        let registration = Registration {
            word: self.word,
            epoch: Cell::new(0),
        };
        let mut cur = registration.register();
        let interval = opts.check_interval.max(MIN_CHECK_INTERVAL);
        let mut next_alive_check = Instant::now().checked_add(interval);
        let mut peer_gone = false;
        loop {
            // W3.
            if let Some(v) = ready() {
                return Ok(v);
            }
            // W4.
            if peer_gone {
                return Err(WaitError::PeerGone);
            }
            let now = Instant::now();
            let mut slice = interval;
            if let Some(deadline) = opts.deadline {
                if now >= deadline {
                    return Err(WaitError::TimedOut);
                }
                slice = slice.min(deadline - now);
            }
            // W5.
            self.word
                .futex_wait(cur, Some(slice))
                .map_err(WaitError::Os)?;
            // W6.
            if let Some(alive) = opts.alive {
                let now = Instant::now();
                if next_alive_check.map_or(true, |t| now >= t) {
                    next_alive_check = now.checked_add(interval);
                    peer_gone = !alive();
                }
            }
            // W7 / A2.
            cur = self.word.load(Ordering::Acquire);
            if waiters_of(cur) == 0 || !registration_trusted(registration.epoch.get(), cur) {
                cur = registration.register();
            } else {
                registration.epoch.set(epoch_of(cur));
            }
        }
    }

    /// The number of waiters currently registered as parked (or about to park), as the word
    /// says: a snapshot, for statistics. 1023 means "1023 or more".
    ///
    /// It can count more than are parked: a waiter killed while parked, or a live one that
    /// saw two notifies while registered and registered again (its first registration is
    /// then left counted, since it cannot tell it from a cleared one), stays counted until
    /// the next notify that finds nobody parked clears the count (see the module docs).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// assert_eq!(mapipc::sync::Notifier::new(map.atomic_u32(0)?).waiters(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiters(&self) -> u32 {
        waiters_of(self.word.load(Ordering::Relaxed))
    }

    /// Sets the waiter count to zero and advances the epoch by two, as a notify's clear
    /// (N4) does, without waking anyone. A notify already clears registrations nobody is
    /// parked behind; this is for a word only one party ever waits on, when that party is
    /// replaced, to drop a predecessor's registration (one killed while parked) before the
    /// next notify. Harmless if someone is in fact parked: it is woken at the end of its
    /// current slice (at most its check interval) and registers again; the epoch step tells
    /// it that its registration is gone, so it does not take away another's (module docs).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let word = map.atomic_u32(0)?;
    /// word.store(3 | 5 << 10, std::sync::atomic::Ordering::Relaxed); // 3 waiters, epoch 5
    /// let n = mapipc::sync::Notifier::new(word);
    /// n.forget_waiters();
    /// assert_eq!((n.waiters(), n.epoch()), (0, 7));
    /// n.forget_waiters(); // no waiters: nothing changes
    /// assert_eq!((n.waiters(), n.epoch()), (0, 7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forget_waiters(&self) {
        // Relaxed: like a deregistration, it only makes later wakers skip a syscall.
        let _ = self
            .word
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (waiters_of(v) != 0).then(|| (v & !WAITERS_MAX).wrapping_add(CLEAR_BUMP))
            });
    }

    /// The epoch, modulo 2^22: advanced by one by every notify, and by two more when a
    /// notify clears stale registrations (see the module docs). A snapshot, for statistics,
    /// or for waiting on the next notify regardless of any data:
    ///
    /// # Example
    /// ```
    /// use mapipc::sync::{Notifier, WaitOptions};
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let n = Notifier::new(map.atomic_u32(0)?);
    /// let seen = n.epoch();
    /// n.notify_all(); // normally from another thread or process
    /// n.wait_until(|| (n.epoch() != seen).then_some(()), &WaitOptions::new())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn epoch(&self) -> u32 {
        epoch_of(self.word.load(Ordering::Acquire))
    }
}

impl Notifier<'_> {
    /// The epoch in a notifier word's value read elsewhere (say, from a read-only
    /// mapping, where no `&AtomicU32` can be had): see [`epoch`](Self::epoch).
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use mapipc::sync::Notifier;
    /// let word = AtomicU32::new(0);
    /// Notifier::new(&word).notify_all();
    /// assert_eq!(Notifier::epoch_of(word.load(Ordering::Acquire)), 1);
    /// assert_eq!(Notifier::waiters_of(word.load(Ordering::Acquire)), 0);
    /// ```
    pub fn epoch_of(word: u32) -> u32 {
        epoch_of(word)
    }

    /// The waiter count in a notifier word's value: see [`waiters`](Self::waiters).
    ///
    /// # Example
    /// See [`epoch_of`](Self::epoch_of).
    pub fn waiters_of(word: u32) -> u32 {
        waiters_of(word)
    }
}

/// A waiter's registration in the waiter count; dropping it deregisters.
struct Registration<'a, W: FutexWord> {
    word: &'a W,
    /// The epoch at which the registration was made or last confirmed (W2, W7).
    epoch: Cell<u32>,
}

impl<W: FutexWord> Registration<'_, W> {
    /// W2: increments the waiter count (sticky at the maximum) with Acquire (A1), notes the
    /// epoch, and returns the word's new value. A previous registration of this waiter that
    /// was not cleared stays counted (see the module docs).
    fn register(&self) -> u32 {
        let inc = |v: u32| {
            Some(if waiters_of(v) == WAITERS_MAX {
                v
            } else {
                v + 1
            })
        };
        // `fetch_update` only fails when the closure returns `None`, which it never does.
        let old = match self
            .word
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, inc)
        {
            Ok(old) | Err(old) => old,
        };
        let new = inc(old).unwrap_or(old);
        self.epoch.set(epoch_of(new));
        new
    }
}

impl<W: FutexWord> Drop for Registration<'_, W> {
    fn drop(&mut self) {
        // D1, Relaxed: see the module docs. Saturated (sticky) and zero (garbage) counts are
        // left alone, and so is a count our registration may have been cleared from (it
        // would be someone else's we took away).
        let reg = self.epoch.get();
        let _ =
            self.word
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    match waiters_of(v) {
                        0 | WAITERS_MAX => None,
                        _ if !registration_trusted(reg, v) => None,
                        _ => Some(v - 1),
                    }
                });
    }
}

/// How [`Notifier::wait_until`] waits: spinning, deadline, liveness checks.
///
/// Built from [`WaitOptions::new`] (same as `Default`) with chained `&mut self` setters,
/// like the crate's other options types: spin
/// [`DEFAULT_SPIN`] times, no deadline, check interval [`DEFAULT_CHECK_INTERVAL`], no
/// liveness callback. A chain can also be passed straight to [`Notifier::wait_until`]: the
/// `&mut WaitOptions` it ends with coerces to the `&WaitOptions` the wait takes
/// (`n.wait_until(ready, WaitOptions::new().timeout(t))`).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use mapipc::sync::WaitOptions;
/// let peer_alive = || true;
/// let mut opts = WaitOptions::new();
/// opts.spin(0)                                   // park at once
///     .timeout(Duration::from_secs(1))           // give up after a second
///     .check_interval(Duration::from_millis(50)) // ask `peer_alive` every 50 ms
///     .alive(&peer_alive);
/// assert_eq!(opts.get_spin(), 0);
/// ```
#[derive(Clone, Copy)]
pub struct WaitOptions<'a> {
    spin: u32,
    deadline: Option<Instant>,
    check_interval: Duration,
    alive: Option<&'a dyn Fn() -> bool>,
}

impl Default for WaitOptions<'_> {
    fn default() -> Self {
        WaitOptions {
            spin: DEFAULT_SPIN,
            deadline: None,
            check_interval: DEFAULT_CHECK_INTERVAL,
            alive: None,
        }
    }
}

impl fmt::Debug for WaitOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("spin", &self.spin)
            .field("deadline", &self.deadline)
            .field("check_interval", &self.check_interval)
            .field("alive", &self.alive.map(|_| "Fn() -> bool"))
            .finish()
    }
}

impl<'a> WaitOptions<'a> {
    /// The defaults (see the type docs).
    ///
    /// # Example
    /// ```
    /// let opts = mapipc::sync::WaitOptions::new();
    /// assert_eq!(opts.get_spin(), mapipc::sync::DEFAULT_SPIN);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times to re-check the predicate in a busy loop before parking. Spinning
    /// saves the park/wake syscalls (microseconds) when the peer answers within a few
    /// hundred nanoseconds; 0 parks at once.
    ///
    /// # Example
    /// ```
    /// assert_eq!(mapipc::sync::WaitOptions::new().spin(0).get_spin(), 0);
    /// ```
    pub fn spin(&mut self, iterations: u32) -> &mut Self {
        self.spin = iterations;
        self
    }

    /// Give up with [`WaitError::TimedOut`] at `deadline`.
    ///
    /// # Example
    /// ```
    /// let at = std::time::Instant::now();
    /// assert_eq!(mapipc::sync::WaitOptions::new().deadline(at).get_deadline(), Some(at));
    /// ```
    pub fn deadline(&mut self, deadline: Instant) -> &mut Self {
        self.deadline = Some(deadline);
        self
    }

    /// Give up with [`WaitError::TimedOut`] `timeout` from now. A timeout too large to
    /// represent means no deadline.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::sync::WaitOptions;
    /// assert!(WaitOptions::new().timeout(Duration::from_secs(1)).get_deadline().is_some());
    /// assert!(WaitOptions::new().timeout(Duration::MAX).get_deadline().is_none());
    /// ```
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// The longest sleep between two checks of the predicate and of `alive` (values under
    /// 1 ms are raised to 1 ms). It bounds how long a dead peer, or garbage in the word, can
    /// keep a waiter asleep.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// let mut o = mapipc::sync::WaitOptions::new();
    /// o.check_interval(Duration::from_millis(20));
    /// assert_eq!(o.get_check_interval(), Duration::from_millis(20));
    /// ```
    pub fn check_interval(&mut self, interval: Duration) -> &mut Self {
        self.check_interval = interval;
        self
    }

    /// A liveness check for the counterpart, called at most once per check interval while
    /// parked; when it returns `false` the wait ends with [`WaitError::PeerGone`]. It is
    /// typically a lookup in the region's peer table.
    ///
    /// # Example
    /// ```
    /// let peer = || true;
    /// assert!(mapipc::sync::WaitOptions::new().alive(&peer).has_alive());
    /// ```
    pub fn alive(&mut self, alive: &'a dyn Fn() -> bool) -> &mut Self {
        self.alive = Some(alive);
        self
    }

    /// The spin count.
    ///
    /// # Example
    /// ```
    /// assert_eq!(mapipc::sync::WaitOptions::new().spin(7).get_spin(), 7);
    /// ```
    pub fn get_spin(&self) -> u32 {
        self.spin
    }

    /// The deadline, if any.
    ///
    /// # Example
    /// ```
    /// assert_eq!(mapipc::sync::WaitOptions::new().get_deadline(), None);
    /// ```
    pub fn get_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The check interval, as set (before the 1 ms floor).
    ///
    /// # Example
    /// ```
    /// use mapipc::sync::{WaitOptions, DEFAULT_CHECK_INTERVAL};
    /// assert_eq!(WaitOptions::new().get_check_interval(), DEFAULT_CHECK_INTERVAL);
    /// ```
    pub fn get_check_interval(&self) -> Duration {
        self.check_interval
    }

    /// Whether a liveness callback is set.
    ///
    /// # Example
    /// ```
    /// assert!(!mapipc::sync::WaitOptions::new().has_alive());
    /// ```
    pub fn has_alive(&self) -> bool {
        self.alive.is_some()
    }
}

/// Why [`Notifier::wait_until`] returned without a value.
///
/// # Example
/// ```
/// use mapipc::sync::WaitError;
/// assert_eq!(WaitError::PeerGone.to_string(), "the peer process being waited for is gone");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The deadline passed before the predicate held.
    #[error("timed out waiting for a notification")]
    TimedOut,
    /// The liveness callback reported that the counterpart died, and the predicate still
    /// did not hold.
    #[error("the peer process being waited for is gone")]
    PeerGone,
    /// The futex wait failed.
    #[error("futex wait failed: {0}")]
    Os(#[source] io::Error),
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// D1 takes away only a registration still counted. A waiter registered next to a dead
    /// registration, a notify that finds nobody parked and clears both, a second waiter
    /// registering after the clear: the first waiter's deregistration must leave the second
    /// one's count (taking it away would let the second park uncounted, its wake-ups
    /// skipped). The interleaving the loom model `clear_races_two_waiters` finds only with
    /// 3 preemptions, driven step by step.
    #[test]
    fn a_cleared_registration_never_takes_away_another() {
        let word = AtomicU32::new(1); // a waiter killed while parked
        let n = Notifier::new(&word);
        let a = Registration {
            word: &word,
            epoch: Cell::new(0),
        };
        a.register();
        assert_eq!(n.waiters(), 2);
        assert!(n.notify_one(), "counted waiters: a wake syscall");
        assert_eq!(n.waiters(), 0, "nobody was parked: cleared");
        let b = Registration {
            word: &word,
            epoch: Cell::new(0),
        };
        b.register();
        assert_eq!(n.waiters(), 1);
        drop(a);
        assert_eq!(
            n.waiters(),
            1,
            "the first waiter took away the second's registration"
        );
        drop(b);
        assert_eq!(n.waiters(), 0);
        // A registration that saw one notify (no clear) is still trusted.
        let c = Registration {
            word: &word,
            epoch: Cell::new(0),
        };
        c.register();
        let d = Registration {
            word: &word,
            epoch: Cell::new(0),
        };
        d.register();
        word.fetch_add(EPOCH_ONE, Ordering::Relaxed); // a notify's N1 alone
        drop(c);
        assert_eq!(n.waiters(), 1);
        drop(d);
        assert_eq!(n.waiters(), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Loom models of the park/wake protocol. Run with:
    //! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mapipc --release --lib sync::`
    use super::*;
    use loom::sync::atomic::AtomicU32 as LoomU32;
    use loom::sync::Arc;

    /// On another thread: a notify for nothing, then `flag` set to 1 (Relaxed: only the
    /// notifier's orderings publish it), then another notify; `all`: `notify_all`.
    fn spurious_then_flag(
        word: &Arc<LoomU32>,
        flag: &Arc<LoomU32>,
        all: bool,
    ) -> loom::thread::JoinHandle<()> {
        let (w, f) = (word.clone(), flag.clone());
        loom::thread::spawn(move || {
            let n = Notifier::new(&*w);
            let notify = || if all { n.notify_all() } else { n.notify_one() };
            notify();
            f.store(1, Ordering::Relaxed);
            notify();
        })
    }

    /// Waits on `word` until `flag` is 1 (a lost wake-up is a loom deadlock).
    fn wait_for_flag(word: &LoomU32, flag: &LoomU32) {
        Notifier::new(word)
            .wait_until(
                || (flag.load(Ordering::Relaxed) == 1).then_some(()),
                &opts(),
            )
            .unwrap();
    }

    /// Once all is quiet, one notify leaves no count (whatever registrations were left).
    fn quiet_notify_clears(word: &LoomU32) {
        let n = Notifier::new(word);
        n.notify_one();
        assert_eq!(n.waiters(), 0);
    }

    fn opts() -> WaitOptions<'static> {
        // No deadline and no liveness check (timeouts do not exist under loom), no spinning
        // (it only adds interleavings that end in the same states).
        let mut opts = WaitOptions::new();
        opts.spin(0);
        opts
    }

    /// One producer publishes a flag then notifies; the consumer must always finish.
    #[test]
    fn no_lost_wakeup_one_waiter() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(0));
            let flag = Arc::new(LoomU32::new(0));
            let (w2, f2) = (word.clone(), flag.clone());
            let producer = loom::thread::spawn(move || {
                f2.store(1, Ordering::Relaxed);
                // Relaxed store + the notify's Release RMW: the notifier itself must carry
                // the publication.
                Notifier::new(&*w2).notify_one();
            });
            let got = Notifier::new(&*word)
                .wait_until(|| (flag.load(Ordering::Relaxed) == 1).then_some(7), &opts())
                .unwrap();
            assert_eq!(got, 7);
            producer.join().unwrap();
            assert_eq!(Notifier::new(&*word).waiters(), 0);
        });
    }

    /// The predicate's data is published by the notify itself (Relaxed data, Release notify):
    /// checks that the Acquire side of the waiter synchronizes with it. The value read must
    /// be the one written.
    #[test]
    fn notify_publishes_data() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(0));
            let data = Arc::new(loom::cell::UnsafeCell::new(0u32));
            let flag = Arc::new(LoomU32::new(0));
            let (w2, d2, f2) = (word.clone(), data.clone(), flag.clone());
            let producer = loom::thread::spawn(move || {
                // SAFETY: the consumer reads `data` only after seeing the flag, which is
                // published (with this write) by the notify below; loom checks exactly that.
                d2.with_mut(|p| unsafe { *p = 99 });
                f2.store(1, Ordering::Release);
                Notifier::new(&*w2).notify_all();
            });
            Notifier::new(&*word)
                .wait_until(
                    || (flag.load(Ordering::Acquire) == 1).then_some(()),
                    &opts(),
                )
                .unwrap();
            // SAFETY: as above; a missing happens-before edge would be reported by loom.
            let v = data.with(|p| unsafe { *p });
            assert_eq!(v, 99);
            producer.join().unwrap();
        });
    }

    /// Two waiters and one notify_all: both must finish.
    #[test]
    fn notify_all_wakes_two_waiters() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(0));
            let flag = Arc::new(LoomU32::new(0));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let (w, f) = (word.clone(), flag.clone());
                    loom::thread::spawn(move || {
                        Notifier::new(&*w)
                            .wait_until(|| (f.load(Ordering::Acquire) == 1).then_some(()), &opts())
                            .unwrap();
                    })
                })
                .collect();
            flag.store(1, Ordering::Release);
            Notifier::new(&*word).notify_all();
            for t in waiters {
                t.join().unwrap();
            }
            assert_eq!(Notifier::new(&*word).waiters(), 0);
        });
    }

    /// Two waiters each waiting for its own token, two notify_one calls, one per token:
    /// interchangeable waiters (each takes any token) must both finish.
    #[test]
    fn notify_one_twice_two_waiters() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(0));
            let tokens = Arc::new(LoomU32::new(0));
            let take = |t: &LoomU32| {
                t.fetch_update(Ordering::Acquire, Ordering::Acquire, |v| v.checked_sub(1))
                    .ok()
                    .map(|_| ())
            };
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let (w, t) = (word.clone(), tokens.clone());
                    loom::thread::spawn(move || {
                        Notifier::new(&*w).wait_until(|| take(&t), &opts()).unwrap();
                    })
                })
                .collect();
            for _ in 0..2 {
                tokens.fetch_add(1, Ordering::Release);
                Notifier::new(&*word).notify_one();
            }
            for t in waiters {
                t.join().unwrap();
            }
            assert_eq!(tokens.load(Ordering::Relaxed), 0);
        });
    }

    /// A registration left by a waiter killed while parked (the word starts with a count of
    /// 1). The first notify finds nobody parked and clears it; the next makes no syscall.
    #[test]
    fn dead_registration_is_cleared() {
        loom::model(|| {
            let word = LoomU32::new(1);
            let n = Notifier::new(&word);
            assert!(n.notify_one(), "a counted waiter means a wake syscall");
            assert_eq!(n.waiters(), 0);
            assert_eq!(n.epoch(), 3, "a clear advances the epoch by 2 more");
            assert!(!n.notify_all());
        });
    }

    /// A dead registration, a live waiter and a producer that notifies once for nothing,
    /// then publishes the flag and notifies again. The first notify's clear may race the
    /// live waiter's registration, its parking (N5 must wake it) and its re-parking on the
    /// value N1 made: the waiter must still finish (a lost wake-up is a loom deadlock, as
    /// timeouts do not exist here), and once all is quiet one notify leaves no count.
    #[test]
    fn clear_races_a_live_waiter() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(1));
            let flag = Arc::new(LoomU32::new(0));
            let producer = spurious_then_flag(&word, &flag, false);
            wait_for_flag(&word, &flag);
            producer.join().unwrap();
            quiet_notify_clears(&word);
        });
    }

    /// A dead registration and two interchangeable waiters taking one token per
    /// `notify_one`, with a spurious notify first: clears race registrations, parking and
    /// deregistrations of both waiters. Both must finish (D1 never takes away the other's
    /// registration, W7 re-registers after a clear), and afterwards one notify leaves no
    /// count.
    ///
    /// Three threads: explored with at most 2 preemptions, whatever `LOOM_MAX_PREEMPTIONS`
    /// says (with 3 it takes about 10 minutes here, more than all other models together).
    /// At 2 it still deadlocks without W7's epoch check; D1's check, which it needs 3 to
    /// catch, has its own step-by-step test
    /// (`tests::a_cleared_registration_never_takes_away_another`).
    #[test]
    fn clear_races_two_waiters() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let word = Arc::new(LoomU32::new(1));
            let tokens = Arc::new(LoomU32::new(0));
            let take = |t: &LoomU32| {
                t.fetch_update(Ordering::Acquire, Ordering::Acquire, |v| v.checked_sub(1))
                    .ok()
                    .map(|_| ())
            };
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let (w, t) = (word.clone(), tokens.clone());
                    loom::thread::spawn(move || {
                        Notifier::new(&*w).wait_until(|| take(&t), &opts()).unwrap();
                    })
                })
                .collect();
            Notifier::new(&*word).notify_one();
            for _ in 0..2 {
                tokens.fetch_add(1, Ordering::Release);
                Notifier::new(&*word).notify_one();
            }
            for t in waiters {
                t.join().unwrap();
            }
            assert_eq!(tokens.load(Ordering::Relaxed), 0);
            let n = Notifier::new(&*word);
            n.notify_one();
            assert_eq!(n.waiters(), 0);
        });
    }

    /// The channels' attach: a new end drops a predecessor's registration
    /// (`forget_waiters`) and then waits on the word, while the other end publishes and
    /// notifies twice (the first notify may find the dead registration, or the new one not
    /// parked yet, and clear it). The waiter must finish, and a quiet notify leaves no count.
    #[test]
    fn forget_then_wait_races_notifies() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(1));
            let flag = Arc::new(LoomU32::new(0));
            let other_end = spurious_then_flag(&word, &flag, true);
            Notifier::new(&*word).forget_waiters();
            wait_for_flag(&word, &flag);
            other_end.join().unwrap();
            quiet_notify_clears(&word);
        });
    }

    /// A saturated count (1023: registrations are absorbed, deregistrations skipped): the
    /// waiter's registration changes nothing in the word, so only the epoch step and N5
    /// tell it that a clear erased it. It must finish, and a quiet notify leaves no count.
    #[test]
    fn clear_of_a_saturated_count_races_a_waiter() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(WAITERS_MAX));
            let flag = Arc::new(LoomU32::new(0));
            let producer = spurious_then_flag(&word, &flag, false);
            wait_for_flag(&word, &flag);
            producer.join().unwrap();
            quiet_notify_clears(&word);
        });
    }

    /// Two notifiers race on a dead registration while a waiter waits for the second one's
    /// flag with `notify_all`: at most one clear wins, and the waiter finishes.
    #[test]
    fn two_clears_race_a_waiter() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(1));
            let flag = Arc::new(LoomU32::new(0));
            let w2 = word.clone();
            let first = loom::thread::spawn(move || {
                Notifier::new(&*w2).notify_all();
            });
            let (w3, f3) = (word.clone(), flag.clone());
            let second = loom::thread::spawn(move || {
                f3.store(1, Ordering::Relaxed);
                Notifier::new(&*w3).notify_all();
            });
            wait_for_flag(&word, &flag);
            first.join().unwrap();
            second.join().unwrap();
            quiet_notify_clears(&word);
        });
    }
}
