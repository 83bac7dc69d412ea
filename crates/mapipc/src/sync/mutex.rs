//! [`RobustMutex`]: a futex-based mutex in one shared 32-bit word that records its owner, so
//! that the next `lock()` after the owner died (holding it) takes it over and says so.
//!
//! # Layout
//!
//! One naturally aligned `u32` (zero is the unlocked state to initialise a new word with):
//!
//! | bits   | field     | meaning |
//! |--------|-----------|---------|
//! | 0..31  | owner     | the owner's id (`1..=`[`MAX_OWNER_ID`]), 0 when unlocked |
//! | 31     | contended | someone may be parked: unlock must `futex_wake` |
//!
//! Owner ids are the caller's: typically a peer-slot index and generation from the region's
//! peer table, so that a dead process's id is never reused for a live one. They identify a
//! *process*: threads of one process may share an id (the mutex still excludes them from each
//! other; a relock by the holder itself waits, like any other contender).
//!
//! # Algorithm
//!
//! Ulrich Drepper's "Futexes Are Tricky" mutex no. 3 (states unlocked / locked / locked with
//! waiters), with the owner id in place of the "locked" value:
//! - L1 (fast path): `compare_exchange(0, me, Acquire)`: one atomic operation, no syscall;
//! - L2: if the word is 0, `compare_exchange(0, me | CONTENDED, Acquire)`: a thread coming
//!   back from sleep cannot know whether others sleep too, so it keeps the bit set;
//! - L3: if the word is held and the bit clear, set it (`compare_exchange`, `Relaxed`), then
//!   `futex_wait(word, owner | CONTENDED, slice)`; slices last at most `check_interval`;
//! - L4 (owner died): at the first contention and then at most once per `check_interval`,
//!   ask `alive(owner)`; if the owner is dead, `compare_exchange(dead value, me | CONTENDED,
//!   Acquire)` takes the lock over and the guard reports [`MutexGuard::owner_died`];
//! - U (unlock, guard drop): `compare_exchange(me, 0, Release)`; if the contended bit was set,
//!   `compare_exchange(me | CONTENDED, 0, Release)` then `futex_wake(1)`. Release pairs with
//!   the Acquire of L1, L2 and L4: the next owner sees what the previous one wrote.
//! - T (timeout): a contender that gives up after one of its futex waits returned `Woken`
//!   calls `futex_wake(1)` before returning: it may have been the waiter an unlock woke,
//!   and the waiters still parked behind it (on a word that may now be free, or held by a
//!   fast-path locker without the contended bit) would otherwise sleep until their next
//!   check interval.
//!
//! A waiter sleeps only on `owner | CONTENDED` that it (or another waiter) set with an RMW;
//! the unlocking RMW comes later in the word's modification order and sees the bit, so it
//! wakes someone; or it came earlier and the kernel's compare sees the changed word.
//!
//! # Dead owners and hostile peers
//!
//! - An owner that died holding the lock is detected through `alive` within about one check
//!   interval (immediately if it was already dead at the first contention).
//! - The state is not "repaired" by the mutex: the new owner's guard says `owner_died()`, and
//!   it is the caller's job to check or rebuild the protected data before unlocking.
//! - `alive` receives the raw owner id read from shared memory: it must treat an unknown id
//!   as dead (then a garbage owner is taken over) or alive (then the contender waits until
//!   its timeout); it must not panic on it.
//! - The contended bit with no owner (never written by this code) is garbage: it is taken
//!   over at once, reported as `owner_died()`.
//! - An unlock whose word no longer names the unlocking owner (someone took over, or garbage)
//!   leaves the word alone.
//! - Every turn of the contention loop checks the deadline, so a word that keeps changing
//!   cannot keep [`lock_timeout`](RobustMutex::lock_timeout) past its timeout.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::futex::{FutexWord, WaitOutcome};
use super::notifier::DEFAULT_CHECK_INTERVAL;

/// Bit 31: somebody may be parked on the word.
const CONTENDED: u32 = 1 << 31;
/// The largest owner id (ids use the low 31 bits and are non-zero).
pub const MAX_OWNER_ID: u32 = CONTENDED - 1;

#[inline]
fn owner_of(word: u32) -> u32 {
    word & MAX_OWNER_ID
}

/// A robust, process-shared mutex over a shared 32-bit word (see the [module docs](self)).
///
/// The mutex guards no data itself: it is a lock word next to the data it protects in a
/// shared region. `alive(id)` tells whether the process with owner id `id` is alive; it comes
/// from the region's peer table. It is called only on contention (once when a `lock` call
/// first finds the lock held, then at most once per check interval), but should stay cheap.
///
/// # Example
/// ```
/// use mapipc::sync::RobustMutex;
/// let map = mapipc::map::Mmap::anonymous(64)?;
/// let m = RobustMutex::new(map.atomic_u32(0)?);
/// let alive = |_id: u32| true;
/// {
///     let g = m.lock(1, &alive)?;
///     assert!(!g.owner_died());
///     assert_eq!(m.owner(), Some(1));
///     assert!(m.try_lock(2, &alive).is_err());
/// }
/// assert!(!m.is_locked());
///
/// // The owner "dies" holding the lock (its guard is forgotten, and `alive` says so):
/// std::mem::forget(m.lock(3, &alive)?);
/// let dead3 = |id: u32| id != 3;
/// let g = m.lock(4, &dead3)?;
/// assert!(g.owner_died()); // repair the protected data here
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RobustMutex<'a, W: FutexWord = AtomicU32> {
    word: &'a W,
    check_interval: Duration,
}

impl<W: FutexWord> fmt::Debug for RobustMutex<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustMutex")
            .field("owner", &self.owner())
            .field("contended", &self.is_contended())
            .field("check_interval", &self.check_interval)
            .finish()
    }
}

impl<'a, W: FutexWord> RobustMutex<'a, W> {
    /// A mutex over `word`. Any value is accepted; zero is the unlocked state.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// assert!(!mapipc::sync::RobustMutex::new(map.atomic_u32(0)?).is_locked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(word: &'a W) -> Self {
        RobustMutex {
            word,
            check_interval: DEFAULT_CHECK_INTERVAL,
        }
    }

    /// The longest sleep between two liveness checks of the owner (default
    /// [`DEFAULT_CHECK_INTERVAL`]; values under 1 ms are
    /// raised to 1 ms): how long a contender may wait before noticing that the owner died.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let mut m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// m.check_interval(Duration::from_millis(10));
    /// assert!(m.try_lock(1, &|_| true).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_interval(&mut self, interval: Duration) -> &mut Self {
        self.check_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Takes the lock if that needs no waiting: it is free, or its owner is dead (`alive`
    /// says so; then the guard reports [`owner_died`](MutexGuard::owner_died)).
    ///
    /// # Errors
    /// [`TryLockError::InvalidOwnerId`] if `me` is 0 or above [`MAX_OWNER_ID`];
    /// [`TryLockError::WouldBlock`] if a live owner holds it.
    ///
    /// # Example
    /// ```
    /// use mapipc::sync::{RobustMutex, TryLockError};
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = RobustMutex::new(map.atomic_u32(0)?);
    /// let alive = |_| true;
    /// let g = m.try_lock(7, &alive)?;
    /// assert!(matches!(m.try_lock(8, &alive), Err(TryLockError::WouldBlock { owner: 7 })));
    /// drop(g);
    /// assert!(m.try_lock(8, &alive).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_lock(
        &self,
        me: u32,
        alive: &dyn Fn(u32) -> bool,
    ) -> Result<MutexGuard<'a, W>, TryLockError> {
        check_id(me).map_err(|id| TryLockError::InvalidOwnerId { id })?;
        // L1.
        let cur = match self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => return Ok(self.guard(me, false)),
            Err(cur) => cur,
        };
        let owner = owner_of(cur);
        if owner == 0 || !alive(owner) {
            // L4 (or garbage). Keep the contended bit: parked waiters must still be woken.
            let new = me | (cur & CONTENDED);
            if self
                .word
                .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(self.guard(me, true));
            }
        }
        Err(TryLockError::WouldBlock { owner })
    }

    /// Takes the lock, waiting as long as it takes; takes it over if its owner died.
    ///
    /// # Errors
    /// [`LockError::InvalidOwnerId`] if `me` is 0 or above [`MAX_OWNER_ID`];
    /// [`LockError::Os`] if the futex wait failed (not expected on Linux).
    ///
    /// # Example
    /// ```
    /// use mapipc::sync::RobustMutex;
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let (lock, counter) = (map.atomic_u32(0)?, map.atomic_u32(4)?);
    /// let alive = |_| true;
    /// std::thread::scope(|s| {
    ///     for id in 1..=2 {
    ///         s.spawn(move || {
    ///             let m = RobustMutex::new(lock);
    ///             for _ in 0..1000 {
    ///                 let _g = m.lock(id, &alive).unwrap();
    ///                 // a non-atomic read-modify-write, made safe by the lock
    ///                 let v = counter.load(std::sync::atomic::Ordering::Relaxed);
    ///                 counter.store(v + 1, std::sync::atomic::Ordering::Relaxed);
    ///             }
    ///         });
    ///     }
    /// });
    /// assert_eq!(map.read_pod::<u32>(4)?, 2000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(
        &self,
        me: u32,
        alive: &dyn Fn(u32) -> bool,
    ) -> Result<MutexGuard<'a, W>, LockError> {
        self.lock_inner(me, alive, None)
    }

    /// As [`lock`](Self::lock), giving up after `timeout` (a timeout too large to represent
    /// means none).
    ///
    /// # Errors
    /// As [`lock_until`](Self::lock_until).
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::sync::{LockError, RobustMutex};
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = RobustMutex::new(map.atomic_u32(0)?);
    /// let alive = |_| true;
    /// let _g = m.lock(1, &alive)?;
    /// let r = m.lock_timeout(2, &alive, Duration::from_millis(5));
    /// assert!(matches!(r, Err(LockError::TimedOut { owner: 1 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(
        &self,
        me: u32,
        alive: &dyn Fn(u32) -> bool,
        timeout: Duration,
    ) -> Result<MutexGuard<'a, W>, LockError> {
        self.lock_inner(me, alive, Instant::now().checked_add(timeout))
    }

    /// As [`lock`](Self::lock), giving up at `deadline`.
    ///
    /// # Errors
    /// [`LockError::InvalidOwnerId`]; [`LockError::TimedOut`] (with the owner id last seen)
    /// when the deadline passed; [`LockError::Os`] if the futex wait failed.
    ///
    /// # Example
    /// ```
    /// use std::time::Instant;
    /// use mapipc::sync::RobustMutex;
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = RobustMutex::new(map.atomic_u32(0)?);
    /// let g = m.lock_until(1, &|_| true, Instant::now())?; // free: no waiting needed
    /// assert_eq!(g.owner_id(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_until(
        &self,
        me: u32,
        alive: &dyn Fn(u32) -> bool,
        deadline: Instant,
    ) -> Result<MutexGuard<'a, W>, LockError> {
        self.lock_inner(me, alive, Some(deadline))
    }

    fn lock_inner(
        &self,
        me: u32,
        alive: &dyn Fn(u32) -> bool,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'a, W>, LockError> {
        check_id(me).map_err(|id| LockError::InvalidOwnerId { id })?;
        // L1.
        let mut cur = match self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => return Ok(self.guard(me, false)),
            Err(cur) => cur,
        };

        // The owner id `alive` last reported dead, and when to ask `alive` next (`None`:
        // at the next contention).
        let mut dead_owner: Option<u32> = None;
        let mut next_alive_check: Option<Instant> = None;
        // Whether a futex wait of ours returned `Woken`: we may have been the one waiter an
        // unlock woke (T, below).
        let mut woken = false;
        loop {
            let owner = owner_of(cur);
            // A CAS that would give us the lock: L2 (free), L4 (dead owner, or garbage).
            let take = if cur == 0 {
                Some(false)
            } else if owner == 0 || dead_owner == Some(owner) {
                Some(true)
            } else {
                None
            };
            if let Some(died) = take {
                match self.word.compare_exchange(
                    cur,
                    me | CONTENDED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(self.guard(me, died)),
                    Err(now) => cur = now,
                }
            } else {
                // L4: is the owner alive? First contention, then once per interval.
                let now = Instant::now();
                if next_alive_check.map_or(true, |t| now >= t) {
                    next_alive_check = now.checked_add(self.check_interval);
                    if !alive(owner) {
                        dead_owner = Some(owner);
                        continue;
                    }
                }
                // L3: announce a sleeper.
                if cur & CONTENDED == 0 {
                    match self.word.compare_exchange(
                        cur,
                        cur | CONTENDED,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => cur |= CONTENDED,
                        Err(now) => cur = now,
                    }
                }
            }

            // Every turn checks the deadline, whatever the word does.
            let now = Instant::now();
            let mut slice = self.check_interval;
            if let Some(deadline) = deadline {
                if now >= deadline {
                    // T: an unlock wakes one waiter and counts on it to take the lock, or to
                    // set the contended bit again before sleeping. Leaving instead may leave
                    // the word free (or held without the bit, so its unlock wakes nobody)
                    // while others still sleep on an older value: pass the wake-up on. A
                    // spare wake only makes a waiter re-check the word.
                    if woken {
                        let _ = self.word.futex_wake(1);
                    }
                    return Err(LockError::TimedOut {
                        owner: owner_of(cur),
                    });
                }
                slice = slice.min(deadline - now);
            }
            // Sleep only on a value we cannot take: held by an owner not known dead, with
            // the contended bit set (so the unlock will wake us).
            let o = owner_of(cur);
            if cur & CONTENDED != 0 && o != 0 && dead_owner != Some(o) {
                let outcome = self.word.futex_wait(cur, Some(slice)).map_err(|e| {
                    // As T: an error must not swallow a wake-up either.
                    if woken {
                        let _ = self.word.futex_wake(1);
                    }
                    LockError::Os(e)
                })?;
                woken |= outcome == WaitOutcome::Woken;
                cur = self.word.load(Ordering::Relaxed);
            }
        }
    }

    fn guard(&self, me: u32, owner_died: bool) -> MutexGuard<'a, W> {
        MutexGuard {
            word: self.word,
            me,
            owner_died,
        }
    }

    /// The owner id in the word (unvalidated: it may be garbage), or `None` when unlocked.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// assert_eq!(m.owner(), None);
    /// let _g = m.lock(9, &|_| true)?;
    /// assert_eq!(m.owner(), Some(9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn owner(&self) -> Option<u32> {
        match owner_of(self.word.load(Ordering::Relaxed)) {
            0 => None,
            o => Some(o),
        }
    }

    /// Whether the word is non-zero (locked, or garbage).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// assert!(!m.is_locked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    /// Whether the contended bit is set (someone may be parked).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// let _g = m.lock(1, &|_| true)?;
    /// assert!(!m.is_contended()); // taken on the fast path
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_contended(&self) -> bool {
        self.word.load(Ordering::Relaxed) & CONTENDED != 0
    }

    /// Unlocks whatever the word holds and wakes every waiter; returns whether it was
    /// locked. For administration (`mapipc region` tools) and recovery when no owner will
    /// ever come back. A live owner's guard then finds the lock gone and leaves it alone,
    /// unless the same owner id locked it again meanwhile (threads of one process share an
    /// id): that guard's drop then releases the new holding.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// std::mem::forget(m.lock(1, &|_| true)?);
    /// assert!(m.force_unlock());
    /// assert!(!m.is_locked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn force_unlock(&self) -> bool {
        let old = self
            .word
            .fetch_update(Ordering::Release, Ordering::Relaxed, |_| Some(0));
        let old = match old {
            Ok(v) | Err(v) => v,
        };
        if old & CONTENDED != 0 {
            let _ = self.word.futex_wake(i32::MAX as u32);
        }
        old != 0
    }
}

fn check_id(me: u32) -> Result<(), u32> {
    if me == 0 || me > MAX_OWNER_ID {
        Err(me)
    } else {
        Ok(())
    }
}

/// Proof of holding a [`RobustMutex`]; dropping it unlocks.
///
/// # Example
/// ```
/// let map = mapipc::map::Mmap::anonymous(64)?;
/// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
/// let g = m.lock(5, &|_| true)?;
/// assert_eq!((g.owner_id(), g.owner_died()), (5, false));
/// assert!(g.unlock());
/// assert!(!m.is_locked());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct MutexGuard<'a, W: FutexWord = AtomicU32> {
    word: &'a W,
    me: u32,
    owner_died: bool,
}

impl<W: FutexWord> fmt::Debug for MutexGuard<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("owner_id", &self.me)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl<W: FutexWord> MutexGuard<'_, W> {
    /// True when the lock was taken over from an owner that died holding it (or from a
    /// garbage word): the protected data may be half-updated and should be checked or
    /// rebuilt before unlocking.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// assert!(!m.lock(1, &|_| true)?.owner_died());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// The owner id this guard locked with.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// assert_eq!(m.lock(3, &|_| true)?.owner_id(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn owner_id(&self) -> u32 {
        self.me
    }

    /// Unlocks now. Returns `false` when the word no longer named this owner (the lock was
    /// taken over or force-unlocked meanwhile), in which case it was left alone.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let m = mapipc::sync::RobustMutex::new(map.atomic_u32(0)?);
    /// let g = m.lock(3, &|_| true)?;
    /// m.force_unlock();
    /// assert!(!g.unlock());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unlock(self) -> bool {
        let released = self.release();
        std::mem::forget(self);
        released
    }

    /// U: see the module docs.
    fn release(&self) -> bool {
        // Release pairs with the Acquire of the next owner's L1/L2/L4.
        let mut cur =
            match self
                .word
                .compare_exchange(self.me, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(cur) => cur,
            };
        loop {
            if owner_of(cur) != self.me {
                return false;
            }
            match self
                .word
                .compare_exchange(cur, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur & CONTENDED != 0 {
            // A failure (impossible for a valid reference) leaves waiters to their next
            // slice; a guard drop has no way to report it.
            let _ = self.word.futex_wake(1);
        }
        true
    }
}

impl<W: FutexWord> Drop for MutexGuard<'_, W> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Why [`RobustMutex::lock`], [`lock_timeout`](RobustMutex::lock_timeout) or
/// [`lock_until`](RobustMutex::lock_until) failed.
///
/// # Example
/// ```
/// use mapipc::sync::{LockError, RobustMutex};
/// let map = mapipc::map::Mmap::anonymous(64)?;
/// let r = RobustMutex::new(map.atomic_u32(0)?).lock(0, &|_| true);
/// assert!(matches!(r, Err(LockError::InvalidOwnerId { id: 0 })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The caller's owner id is 0 or above [`MAX_OWNER_ID`].
    #[error("invalid mutex owner id {id}: ids are 1..={MAX_OWNER_ID}")]
    InvalidOwnerId {
        /// The id given.
        id: u32,
    },
    /// The deadline passed while a live owner held the lock (or, `owner` 0, while others
    /// kept taking it first).
    #[error("timed out waiting for the mutex {}", held_by(*.owner))]
    TimedOut {
        /// The owner id last seen in the word (0: it was free at that moment).
        owner: u32,
    },
    /// The futex wait failed.
    #[error("futex wait on the mutex failed: {0}")]
    Os(#[source] io::Error),
}

/// How [`LockError::TimedOut`] names the holder last seen.
fn held_by(owner: u32) -> String {
    if owner == 0 {
        "(free when the deadline passed: others took it first)".to_string()
    } else {
        format!("held by owner {owner}")
    }
}

/// Why [`RobustMutex::try_lock`] failed.
///
/// # Example
/// ```
/// use mapipc::sync::{RobustMutex, TryLockError};
/// let map = mapipc::map::Mmap::anonymous(64)?;
/// let r = RobustMutex::new(map.atomic_u32(0)?).try_lock(u32::MAX, &|_| true);
/// assert!(matches!(r, Err(TryLockError::InvalidOwnerId { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TryLockError {
    /// The caller's owner id is 0 or above [`MAX_OWNER_ID`].
    #[error("invalid mutex owner id {id}: ids are 1..={MAX_OWNER_ID}")]
    InvalidOwnerId {
        /// The id given.
        id: u32,
    },
    /// A live owner holds the lock.
    #[error("the mutex is held by owner {owner}")]
    WouldBlock {
        /// The owner id in the word.
        owner: u32,
    },
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Loom models of the mutex. Run with:
    //! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mapipc --release --lib sync::`
    use super::*;
    use loom::sync::atomic::{AtomicU32 as LoomU32, AtomicUsize};
    use loom::sync::Arc;

    /// Two threads increment a counter with a non-atomic load + store under the lock: the
    /// result must be exact, and the lock free at the end.
    #[test]
    fn two_threads_count_exactly() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(0));
            let counter = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (1..=2)
                .map(|id| {
                    let (w, c) = (word.clone(), counter.clone());
                    loom::thread::spawn(move || {
                        let m = RobustMutex::new(&*w);
                        let g = m.lock(id, &|_| true).unwrap();
                        assert!(!g.owner_died());
                        let v = c.load(Ordering::Relaxed);
                        c.store(v + 1, Ordering::Relaxed);
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(counter.load(Ordering::Relaxed), 2);
            assert_eq!(word.load(Ordering::Relaxed), 0);
        });
    }

    /// Three contenders (the main thread too), so that a woken waiter must pass the wake-up
    /// on through the contended bit.
    #[test]
    fn three_threads_count_exactly() {
        loom::model(|| {
            let word = Arc::new(LoomU32::new(0));
            let counter = Arc::new(AtomicUsize::new(0));
            let bump = |w: &LoomU32, c: &AtomicUsize, id: u32| {
                let _g = RobustMutex::new(w).lock(id, &|_| true).unwrap();
                let v = c.load(Ordering::Relaxed);
                c.store(v + 1, Ordering::Relaxed);
            };
            let threads: Vec<_> = (1..=2)
                .map(|id| {
                    let (w, c) = (word.clone(), counter.clone());
                    loom::thread::spawn(move || bump(&w, &c, id))
                })
                .collect();
            bump(&word, &counter, 3);
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(counter.load(Ordering::Relaxed), 3);
            assert_eq!(word.load(Ordering::Relaxed), 0);
        });
    }
}
