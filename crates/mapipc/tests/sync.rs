//! Cross-process tests of `mapipc::sync`: the notifier and the robust mutex over an anonymous
//! shared mapping, between a test process and `fork`ed children.
//!
//! Every test that forks or could block holds a `common::Watchdog`: after
//! `common::WATCHDOG` it kills the child and aborts the test binary, so a hang fails loudly
//! instead of stalling the run. No test asserts on elapsed time. Children only touch
//! atomics, make futex/kill syscalls and end with `_exit`.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{child_wait_until, fork, Exit, Watchdog};
use mapipc::map::Mmap;
use mapipc::os::process::{kill9, pid_exists};
use mapipc::sync::{
    futex_wait, futex_wake, LockError, Notifier, RobustMutex, TryLockError, WaitError, WaitOptions,
    WaitOutcome,
};

const GENEROUS: Duration = Duration::from_secs(30);

/// In a child: sleep until killed (bounded by [`GENEROUS`] in case nobody kills it).
fn sleep_until_killed() -> i32 {
    thread::sleep(GENEROUS);
    3
}

struct Shared {
    map: Mmap,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            map: Mmap::anonymous(4096).unwrap(),
        }
    }
    fn word(&self, i: u64) -> &AtomicU32 {
        self.map.atomic_u32(i * 4).unwrap()
    }
}

#[test]
fn notifier_wakes_parked_waiter_in_other_process() {
    let sh = Shared::new();
    let (flag, word, made_syscall) = (sh.word(0), sh.word(1), sh.word(2));
    let mut child = fork(|| {
        let n = Notifier::new(word);
        // Wait until the parent is registered as parked. It cannot leave before the flag is
        // set, so this notify must see it and go to the kernel.
        if !child_wait_until(|| n.waiters() >= 1) {
            return 2;
        }
        made_syscall.store(n.notify_one() as u32 + 10, Ordering::Release);
        flag.store(0xfeed, Ordering::Release);
        n.notify_one();
        0
    });
    let _dog = Watchdog::new("notifier wake across fork", Some(child.pid));
    let mut opts = WaitOptions::new();
    opts.spin(0).timeout(GENEROUS);
    let got = Notifier::new(word).wait_until(
        || Some(flag.load(Ordering::Acquire)).filter(|&v| v != 0),
        &opts,
    );
    assert_eq!(got.unwrap(), 0xfeed);
    assert_eq!(child.wait(), Exit::Code(0));
    assert_eq!(
        made_syscall.load(Ordering::Acquire),
        11,
        "the notify saw a parked waiter"
    );
    assert_eq!(Notifier::new(word).waiters(), 0, "the waiter deregistered");
}

#[test]
fn notifier_streams_many_notifications_across_fork() {
    // A counter bumped by the child, each bump notified; the parent waits for each value in
    // turn, sometimes spinning, sometimes parking. Every value must arrive.
    const N: u32 = 2000;
    let sh = Shared::new();
    let (counter, word, ack) = (sh.word(0), sh.word(1), sh.word(2));
    let mut child = fork(|| {
        let n = Notifier::new(word);
        for i in 1..=N {
            counter.store(i, Ordering::Release);
            n.notify_one();
            // Every 100 values, wait for the parent to catch up, so that it parks sometimes.
            if i % 100 == 0 && !child_wait_until(|| ack.load(Ordering::Acquire) >= i) {
                return 2;
            }
        }
        0
    });
    let _dog = Watchdog::new("notifier stream", Some(child.pid));
    let n = Notifier::new(word);
    for i in 1..=N {
        let mut opts = WaitOptions::new();
        opts.spin(if i % 2 == 0 { 0 } else { 200 })
            .timeout(GENEROUS);
        let v = n
            .wait_until(
                || Some(counter.load(Ordering::Acquire)).filter(|&v| v >= i),
                &opts,
            )
            .unwrap();
        assert!(v >= i);
        ack.store(i, Ordering::Release);
    }
    assert_eq!(child.wait(), Exit::Code(0));
}

#[test]
fn wait_times_out() {
    let _dog = Watchdog::new("wait_times_out", None);
    let sh = Shared::new();
    let n = Notifier::new(sh.word(0));
    let r = n.wait_until(
        || None::<()>,
        WaitOptions::new().timeout(Duration::from_millis(20)),
    );
    assert!(matches!(r, Err(WaitError::TimedOut)), "{r:?}");
    // A deadline in the past still checks the predicate once.
    let mut past = WaitOptions::new();
    past.deadline(Instant::now());
    assert_eq!(n.wait_until(|| Some(5), &past).unwrap(), 5);
    let r = n.wait_until(|| None::<()>, &past);
    assert!(matches!(r, Err(WaitError::TimedOut)), "{r:?}");
    assert_eq!(n.waiters(), 0);
}

#[test]
fn notify_without_waiter_makes_no_syscall() {
    let _dog = Watchdog::new("notify_without_waiter", None);
    let sh = Shared::new();
    let n = Notifier::new(sh.word(0));
    let e0 = n.epoch();
    assert!(!n.notify_one());
    assert!(!n.notify_all());
    assert_eq!(n.epoch(), e0 + 2, "each notify bumps the epoch");
    assert_eq!(n.waiters(), 0);

    // With a thread parked, the notify does make the syscall.
    let flag = sh.word(1);
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            n.wait_until(
                || (flag.load(Ordering::Acquire) == 1).then_some(()),
                WaitOptions::new().spin(0).timeout(GENEROUS),
            )
        });
        while n.waiters() == 0 {
            thread::yield_now();
        }
        // The waiter cannot leave before the flag is set: this notify must see it.
        assert!(n.notify_all());
        flag.store(1, Ordering::Release);
        n.notify_all();
        waiter.join().unwrap().unwrap();
    });
    assert_eq!(n.waiters(), 0);
    assert!(!n.notify_one());
}

#[test]
fn waiter_returns_peer_gone_when_peer_is_killed() {
    let sh = Shared::new();
    let (flag, word) = (sh.word(0), sh.word(1));
    let mut child = fork(sleep_until_killed);
    let _dog = Watchdog::new("peer gone", Some(child.pid));
    let pid = child.pid as u32;
    let n = Notifier::new(word);
    thread::scope(|s| {
        // Once the parent is parked: SIGKILL the peer and reap it (a zombie still "exists").
        let killer = s.spawn(|| {
            while n.waiters() == 0 {
                thread::yield_now();
            }
            kill9(pid).unwrap();
            child.wait()
        });
        let alive = || pid_exists(pid);
        let mut opts = WaitOptions::new();
        opts.spin(0)
            .check_interval(Duration::from_millis(10))
            .alive(&alive)
            .timeout(GENEROUS);
        let r = n.wait_until(|| (flag.load(Ordering::Acquire) == 1).then_some(()), &opts);
        assert!(matches!(r, Err(WaitError::PeerGone)), "{r:?}");
        assert_eq!(killer.join().unwrap(), Exit::Signal(libc::SIGKILL));
    });
    assert_eq!(n.waiters(), 0);
}

#[test]
fn data_published_before_the_peer_died_is_delivered() {
    // The child publishes, does NOT notify, and exits: the waiter must return the data, not
    // PeerGone, because it re-checks the predicate after the liveness check fails.
    let sh = Shared::new();
    let (flag, word) = (sh.word(0), sh.word(1));
    let mut child = fork(|| {
        if !child_wait_until(|| Notifier::new(word).waiters() >= 1) {
            return 2;
        }
        flag.store(77, Ordering::Release);
        0
    });
    let _dog = Watchdog::new("published then died", Some(child.pid));
    let pid = child.pid as u32;
    let n = Notifier::new(word);
    thread::scope(|s| {
        let reaper = s.spawn(|| child.wait());
        let alive = || pid_exists(pid);
        let mut opts = WaitOptions::new();
        opts.spin(0)
            .check_interval(Duration::from_millis(10))
            .alive(&alive)
            .timeout(GENEROUS);
        let got = n.wait_until(
            || Some(flag.load(Ordering::Acquire)).filter(|&v| v != 0),
            &opts,
        );
        assert_eq!(got.unwrap(), 77);
        assert_eq!(reaper.join().unwrap(), Exit::Code(0));
    });
}

#[test]
fn garbage_in_notifier_word_never_panics_or_hangs() {
    let _dog = Watchdog::new("garbage notifier", None);
    let sh = Shared::new();
    let word = sh.word(0);
    let n = Notifier::new(word);
    let mut short = WaitOptions::new();
    short
        .spin(3)
        .check_interval(Duration::from_millis(2))
        .timeout(Duration::from_millis(10));
    for garbage in [
        u32::MAX,
        0x3ff,
        0x3fe,
        0xffff_fc00,
        1,
        0x8000_0001,
        0xdead_beef,
    ] {
        word.store(garbage, Ordering::Relaxed);
        let r = n.wait_until(|| None::<()>, &short);
        assert!(matches!(r, Err(WaitError::TimedOut)), "{garbage:#x}: {r:?}");
        // Counts that reach the maximum (1023) stay there; others come back to where they
        // were after the waiter's registration and deregistration.
        let count = garbage & 0x3ff;
        let expected = if count + 1 >= 0x3ff { 0x3ff } else { count };
        assert_eq!(n.waiters(), expected, "{garbage:#x}");
        // A non-zero count makes the notify try a wake (an extra syscall, nothing worse);
        // it wakes nobody, so the notify clears the count, even a saturated one.
        assert_eq!(n.notify_one(), count != 0, "{garbage:#x}");
        assert_eq!(n.waiters(), 0, "{garbage:#x}");
    }

    // A peer scribbling on the word while we wait: the wait still ends at its deadline.
    let stop = AtomicU32::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            let mut x = 0x9e37_79b9u32;
            while stop.load(Ordering::Relaxed) == 0 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                word.store(x, Ordering::Relaxed);
                let _ = futex_wake(word, i32::MAX as u32);
                thread::yield_now();
            }
        });
        for _ in 0..20 {
            let r = n.wait_until(|| None::<()>, &short);
            assert!(matches!(r, Err(WaitError::TimedOut)), "{r:?}");
        }
        stop.store(1, Ordering::Relaxed);
    });

    // Garbage erasing a parked waiter's registration makes wakers skip the syscall (a lost
    // wake-up); the waiter still gets the data at the end of its check interval, where it
    // also registers again.
    word.store(0, Ordering::Relaxed);
    let flag = sh.word(1);
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut opts = WaitOptions::new();
            opts.spin(0)
                .check_interval(Duration::from_millis(5))
                .timeout(GENEROUS);
            n.wait_until(|| (flag.load(Ordering::Acquire) == 1).then_some(()), &opts)
        });
        while n.waiters() == 0 {
            thread::yield_now();
        }
        word.store(0, Ordering::Relaxed); // the "hostile" write
        flag.store(1, Ordering::Release); // published, never notified
        waiter.join().unwrap().unwrap();
    });
    assert_eq!(n.waiters(), 0);
}

#[test]
fn futex_wait_and_wake_across_fork() {
    let sh = Shared::new();
    let (word, parked) = (sh.word(0), sh.word(1));
    let mut child = fork(|| {
        // Announce, then sleep on the futex until the parent changes the word.
        parked.store(1, Ordering::Release);
        let end = Instant::now() + GENEROUS;
        while word.load(Ordering::Acquire) == 0 {
            if Instant::now() > end || futex_wait(word, 0, Some(GENEROUS)).is_err() {
                return 2;
            }
        }
        0
    });
    let _dog = Watchdog::new("futex across fork", Some(child.pid));
    while parked.load(Ordering::Acquire) == 0 {
        thread::yield_now();
    }
    assert_eq!(futex_wait(word, 1, None).unwrap(), WaitOutcome::Changed);
    word.store(1, Ordering::Release);
    futex_wake(word, 1).unwrap();
    assert_eq!(child.wait(), Exit::Code(0));
}

#[test]
fn mutex_recovered_after_owner_killed_while_holding_it() {
    let sh = Shared::new();
    let (lock, data) = (sh.word(0), sh.word(1));
    let mut child = fork(|| {
        let m = RobustMutex::new(lock);
        let guard = m.lock(1, &|_| true);
        let Ok(guard) = guard else { return 2 };
        data.store(0xbad, Ordering::Release); // a half-done update, never finished
        std::mem::forget(guard);
        sleep_until_killed()
    });
    let _dog = Watchdog::new("robust mutex recovery", Some(child.pid));
    let pid = child.pid as u32;
    let mut m = RobustMutex::new(lock);
    m.check_interval(Duration::from_millis(10));
    while m.owner() != Some(1) {
        thread::yield_now();
    }
    let alive = |id: u32| id != 1 || pid_exists(pid);
    thread::scope(|s| {
        // Kill the owner only once we are parked on the lock (contended bit set).
        let killer = s.spawn(|| {
            while !m.is_contended() {
                thread::yield_now();
            }
            kill9(pid).unwrap();
            child.wait()
        });
        let g = m.lock_timeout(2, &alive, GENEROUS).unwrap();
        assert!(g.owner_died(), "the takeover is reported");
        assert_eq!(g.owner_id(), 2);
        assert_eq!(
            data.load(Ordering::Acquire),
            0xbad,
            "the dead owner's write is visible"
        );
        data.store(0, Ordering::Release); // "repair"
        assert!(g.unlock());
        assert_eq!(killer.join().unwrap(), Exit::Signal(libc::SIGKILL));
    });
    // Back to normal.
    let g = m.lock(2, &alive).unwrap();
    assert!(!g.owner_died());
    drop(g);
    assert!(!m.is_locked());
}

#[test]
fn mutex_owned_by_already_dead_process_is_taken_over() {
    let sh = Shared::new();
    let lock = sh.word(0);
    let mut child = fork(|| match RobustMutex::new(lock).lock(5, &|_| true) {
        Ok(g) => {
            std::mem::forget(g);
            0 // exit holding the lock
        }
        Err(_) => 2,
    });
    let _dog = Watchdog::new("mutex of a dead process", Some(child.pid));
    assert_eq!(child.wait(), Exit::Code(0));
    let m = RobustMutex::new(lock);
    assert_eq!(m.owner(), Some(5));
    let alive = |id: u32| id != 5 || pid_exists(child.pid as u32);
    let g = m.try_lock(6, &alive).unwrap();
    assert!(g.owner_died());
    drop(g);
    std::mem::forget(m.lock(5, &|_| true).unwrap());
    let g = m.lock(6, &alive).unwrap();
    assert!(g.owner_died());
}

#[test]
fn mutex_counts_exactly_across_processes() {
    const PER_PROCESS: u32 = 100_000;
    let sh = Shared::new();
    let (lock, counter, start) = (sh.word(0), sh.word(1), sh.word(2));
    let work = |id: u32| -> bool {
        let m = RobustMutex::new(lock);
        for _ in 0..PER_PROCESS {
            let Ok(g) = m.lock_timeout(id, &|_| true, GENEROUS) else {
                return false;
            };
            // Not atomic as a whole: only the lock makes it exact.
            let v = counter.load(Ordering::Relaxed);
            counter.store(v + 1, Ordering::Relaxed);
            if g.owner_died() || !g.unlock() {
                return false;
            }
        }
        true
    };
    let mut child = fork(|| {
        if !child_wait_until(|| start.load(Ordering::Acquire) == 1) {
            return 2;
        }
        if work(2) {
            0
        } else {
            3
        }
    });
    let _dog = Watchdog::new("mutex counter", Some(child.pid));
    start.store(1, Ordering::Release);
    assert!(work(1));
    assert_eq!(child.wait(), Exit::Code(0));
    assert_eq!(counter.load(Ordering::Acquire), 2 * PER_PROCESS);
    assert!(!RobustMutex::new(lock).is_locked());
}

#[test]
fn mutex_garbage_and_timeouts() {
    let _dog = Watchdog::new("mutex garbage", None);
    let sh = Shared::new();
    let word = sh.word(0);
    let mut m = RobustMutex::new(word);
    m.check_interval(Duration::from_millis(2));
    let alive = |id: u32| id < 100; // ids 1..100 are "live peers"; anything else is dead

    // The contended bit with no owner: taken over at once, reported.
    word.store(0x8000_0000, Ordering::Relaxed);
    let g = m.try_lock(1, &alive).unwrap();
    assert!(g.owner_died());
    drop(g);
    assert!(!m.is_locked());

    // A garbage owner that `alive` does not know: taken over (lock and try_lock).
    for garbage in [0xdead_beef, 0x7fff_ffff, 12345] {
        word.store(garbage, Ordering::Relaxed);
        let g = m.lock_timeout(2, &alive, GENEROUS).unwrap();
        assert!(g.owner_died(), "{garbage:#x}");
        assert_eq!(m.owner(), Some(2));
        drop(g);
        assert!(!m.is_locked(), "{garbage:#x}");
    }

    // A garbage owner that looks alive: waits, and ends at the timeout.
    word.store(0x8000_0000 | 42, Ordering::Relaxed);
    let r = m.lock_timeout(2, &alive, Duration::from_millis(20));
    assert!(matches!(r, Err(LockError::TimedOut { owner: 42 })), "{r:?}");
    let r = m.try_lock(2, &alive);
    assert!(
        matches!(r, Err(TryLockError::WouldBlock { owner: 42 })),
        "{r:?}"
    );

    // Bad ids are refused.
    assert!(matches!(
        m.lock(0, &alive),
        Err(LockError::InvalidOwnerId { id: 0 })
    ));
    assert!(matches!(
        m.try_lock(0x8000_0000, &alive),
        Err(TryLockError::InvalidOwnerId { .. })
    ));

    // A guard whose lock was taken from it leaves the word alone on unlock.
    word.store(0, Ordering::Relaxed);
    let g = m.lock(3, &alive).unwrap();
    word.store(4, Ordering::Relaxed); // someone "took over"
    assert!(!g.unlock());
    assert_eq!(m.owner(), Some(4));
    assert!(m.force_unlock());
    assert!(!m.is_locked());
}

/// However long a spin phase the caller asks for, it ends at the deadline, and a dead peer
/// is still reported: the spin phase gives way to the parking loop after a check interval.
#[test]
fn a_huge_spin_count_still_honours_the_deadline_and_liveness() {
    let map = Mmap::anonymous(64).unwrap();
    let word = map.atomic_u32(0).unwrap();
    let never = || None::<()>;
    let _dog = Watchdog::new("a wait spinning u32::MAX times", None);
    let deadline = Instant::now() + Duration::from_millis(20);
    let mut opts = WaitOptions::new();
    opts.spin(u32::MAX).deadline(deadline);
    let r = Notifier::new(word).wait_until(never, &opts);
    assert!(matches!(r, Err(WaitError::TimedOut)), "{r:?}");
    let dead = || false;
    let mut opts = WaitOptions::new();
    opts.spin(u32::MAX)
        .check_interval(Duration::from_millis(5))
        .alive(&dead);
    let r = Notifier::new(word).wait_until(never, &opts);
    assert!(matches!(r, Err(WaitError::PeerGone)), "{r:?}");
}
