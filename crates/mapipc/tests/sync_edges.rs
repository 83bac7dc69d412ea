//! Edge cases of `mapipc::sync` and of the region's peer table, found in review: lost
//! wake-ups with many waiters, extreme timeouts, the
//! robust mutex with dead or garbage owners, and peers across fork, threads and a full table.
//!
//! Cross-process tests fork real children and hold a `common::Watchdog`. Lost wake-ups are
//! made visible by a check interval of an hour: the notifier's periodic re-check would
//! otherwise hide one as a delay, and the watchdog turns the hang into a failure. No test
//! asserts on elapsed time.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{child_wait_until, fork, serial, wait_until, Watchdog};
use mapipc::map::Mmap;
use mapipc::region::{JoinError, Region, RegionOptions};
use mapipc::sync::{futex_wait, LockError, Notifier, RobustMutex, WaitError, WaitOptions};

/// A check interval long enough that only a real wake-up ends a sleep within a test.
const HOUR: Duration = Duration::from_secs(3600);

fn words(map: &Mmap, i: u64) -> &AtomicU32 {
    map.atomic_u32(i * 4).unwrap()
}

/// Takes one token from `tokens` if there is one.
fn take(tokens: &AtomicU32) -> Option<()> {
    tokens
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
        .ok()
        .map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Notifier
// ---------------------------------------------------------------------------------------

/// N forked waiters each take one token per round; the parent adds tokens one at a time with
/// `notify_one`. With a one-hour check interval, any lost wake-up hangs (watchdog).
#[test]
fn notify_one_many_waiters_many_rounds_no_lost_wakeup() {
    let _s = serial();
    let _w = Watchdog::new("notify_one_many_waiters_many_rounds_no_lost_wakeup", None);
    const WAITERS: u32 = 4;
    const ROUNDS: u32 = 300;
    let map = Mmap::anonymous(4096).unwrap();
    let (word, tokens, done) = (words(&map, 0), words(&map, 1), words(&map, 2));
    let mut children: Vec<_> = (0..WAITERS)
        .map(|_| {
            fork(|| {
                let n = Notifier::new(word);
                let mut opts = WaitOptions::new();
                opts.spin(0).check_interval(HOUR);
                for _ in 0..ROUNDS {
                    if n.wait_until(|| take(tokens), &opts).is_err() {
                        return 2;
                    }
                    done.fetch_add(1, Ordering::AcqRel);
                }
                0
            })
        })
        .collect();
    let n = Notifier::new(word);
    for i in 0..WAITERS * ROUNDS {
        tokens.fetch_add(1, Ordering::Release);
        n.notify_one();
        if i % 7 == 0 {
            thread::yield_now();
        }
    }
    for c in &mut children {
        c.expect_ok("a waiter");
    }
    assert_eq!(done.load(Ordering::Acquire), WAITERS * ROUNDS);
    assert_eq!(tokens.load(Ordering::Acquire), 0);
    // A waiter that saw two notifies between registering and deregistering cannot tell them
    // from a clear (both move the epoch by 2), and leaves its registration counted; the next
    // notify that finds nobody parked clears it (module docs, "Dead waiters"). Every waiter
    // has exited: this notify wakes nobody, and the count must then be 0.
    n.notify_one();
    assert_eq!(n.waiters(), 0, "every registration deregistered or cleared");
}

/// As above with `notify_all` and a shared round counter every waiter waits for.
#[test]
fn notify_all_many_waiters_many_rounds_no_lost_wakeup() {
    let _s = serial();
    let _w = Watchdog::new("notify_all_many_waiters_many_rounds_no_lost_wakeup", None);
    const WAITERS: u32 = 4;
    const ROUNDS: u32 = 200;
    let map = Mmap::anonymous(4096).unwrap();
    let (word, round, acks) = (words(&map, 0), words(&map, 1), words(&map, 2));
    let mut children: Vec<_> = (0..WAITERS)
        .map(|_| {
            fork(|| {
                let n = Notifier::new(word);
                let mut opts = WaitOptions::new();
                opts.spin(0).check_interval(HOUR);
                for r in 1..=ROUNDS {
                    let ok =
                        n.wait_until(|| (round.load(Ordering::Acquire) >= r).then_some(()), &opts);
                    if ok.is_err() {
                        return 2;
                    }
                    acks.fetch_add(1, Ordering::AcqRel);
                }
                0
            })
        })
        .collect();
    let n = Notifier::new(word);
    for r in 1..=ROUNDS {
        round.store(r, Ordering::Release);
        n.notify_all();
        // Wait (polling) for every waiter to ack this round, so the next starts clean.
        let want = r * WAITERS;
        assert!(child_wait_until(|| acks.load(Ordering::Acquire) >= want));
    }
    for c in &mut children {
        c.expect_ok("a waiter");
    }
    assert_eq!(n.waiters(), 0);
}

/// The epoch wraps from 2^22 - 1 to 0 without touching the waiter count, and a waiter parked
/// (or about to park) on the last epoch is woken by the wrapping notify.
#[test]
fn epoch_wraps_without_disturbing_waiters() {
    let _w = Watchdog::new("epoch_wraps_without_disturbing_waiters", None);
    let map = Mmap::anonymous(64).unwrap();
    let (word, flag) = (words(&map, 0), words(&map, 1));
    word.store(!0x3ff, Ordering::Relaxed); // epoch 2^22 - 1, no waiters
    let n = Notifier::new(word);
    assert_eq!(n.epoch(), (1 << 22) - 1);
    thread::scope(|s| {
        let t = s.spawn(|| {
            let mut opts = WaitOptions::new();
            opts.spin(0).check_interval(HOUR);
            n.wait_until(|| (flag.load(Ordering::Acquire) == 1).then_some(()), &opts)
        });
        wait_until("the waiter to register", || n.waiters() == 1);
        flag.store(1, Ordering::Release);
        assert!(n.notify_all(), "a registered waiter means a wake syscall");
        t.join().unwrap().unwrap();
    });
    // Epoch 0: the waiter was parked and woken. Epoch 2: it was not parked yet, so the
    // notify woke nobody and cleared its registration (+2 more, wrapping too).
    assert!(matches!(n.epoch(), 0 | 2), "{}", n.epoch());
    assert_eq!(n.waiters(), 0);
}

/// A zero timeout, a deadline in the past, and huge timeouts and check intervals: no error,
/// no panic; a ready predicate wins over an expired deadline.
#[test]
fn extreme_timeouts_and_intervals() {
    let _w = Watchdog::new("extreme_timeouts_and_intervals", None);
    let map = Mmap::anonymous(64).unwrap();
    let (word, flag) = (words(&map, 0), words(&map, 1));
    let n = Notifier::new(word);
    let never = || None::<()>;
    let past = Instant::now() - Duration::from_millis(1);
    // `WaitOptions` is `Copy`: `*` copies each built value out of its temporary.
    for opts in [
        *WaitOptions::new().timeout(Duration::ZERO),
        *WaitOptions::new().deadline(past),
        *WaitOptions::new().spin(u32::MAX).deadline(past),
        *WaitOptions::new().spin(0).timeout(Duration::ZERO),
        *WaitOptions::new()
            .check_interval(Duration::MAX)
            .timeout(Duration::from_millis(5)),
        *WaitOptions::new()
            .check_interval(Duration::ZERO)
            .timeout(Duration::from_millis(5)),
    ] {
        assert!(
            matches!(n.wait_until(never, &opts), Err(WaitError::TimedOut)),
            "{opts:?}"
        );
        assert_eq!(n.wait_until(|| Some(9), &opts).unwrap(), 9, "{opts:?}");
        assert_eq!(n.waiters(), 0);
    }
    // A futex wait with the largest timeout is a valid call.
    word.store(5, Ordering::Relaxed);
    assert!(futex_wait(word, 6, Some(Duration::MAX)).is_ok());
    word.store(0, Ordering::Relaxed);
    // The largest check interval and no deadline: a real notify still ends the wait.
    thread::scope(|s| {
        let t = s.spawn(|| {
            let mut opts = WaitOptions::new();
            opts.spin(0)
                .check_interval(Duration::MAX)
                .timeout(Duration::MAX);
            n.wait_until(|| (flag.load(Ordering::Acquire) == 1).then_some(()), &opts)
        });
        wait_until("the waiter to register", || n.waiters() == 1);
        flag.store(1, Ordering::Release);
        n.notify_all();
        t.join().unwrap().unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// Robust mutex
// ---------------------------------------------------------------------------------------

/// A holder SIGKILLed while another process is parked on the lock: the parked process takes
/// it over and is told; nothing deadlocks.
#[test]
fn mutex_holder_killed_while_others_are_parked() {
    let _s = serial();
    let region = Region::anonymous(64).unwrap();
    let lock = region.atomic_u32(0).unwrap();
    let res = region.atomic_u32(4).unwrap();
    let holder = fork(|| {
        let me = region.join().unwrap();
        let m = RobustMutex::new(lock);
        let g = m.lock(me.id(), &|_| true).unwrap();
        std::mem::forget(g);
        thread::sleep(Duration::from_secs(60));
        0
    });
    let mut holder = holder;
    let _w = Watchdog::new(
        "mutex_holder_killed_while_others_are_parked",
        Some(holder.pid),
    );
    let mut m = RobustMutex::new(lock);
    m.check_interval(Duration::from_millis(5));
    wait_until("the holder to lock", || m.is_locked());
    let live = region.liveness();
    let mut contenders: Vec<_> = (0..2)
        .map(|_| {
            let live = live.clone();
            let region = &region;
            fork(move || {
                let me = region.join().unwrap();
                let mut m = RobustMutex::new(lock);
                m.check_interval(Duration::from_millis(5));
                let alive = move |id: u32| live.is_alive(id);
                match m.lock(me.id(), &alive) {
                    Ok(g) => {
                        if g.owner_died() {
                            res.fetch_add(1, Ordering::AcqRel);
                        }
                        0
                    }
                    Err(_) => 2,
                }
            })
        })
        .collect();
    wait_until("a contender to park", || m.is_contended());
    holder.kill9();
    for c in &mut contenders {
        c.expect_ok("a contender");
    }
    assert_eq!(
        res.load(Ordering::Acquire),
        1,
        "exactly one takeover reported"
    );
    assert!(!m.is_locked());
}

/// Garbage owner words (ids no join can produce, a contended bit alone, an id of a slot that
/// does not exist) are taken over at once and reported as `owner_died`.
#[test]
fn mutex_with_garbage_owner_words() {
    let _w = Watchdog::new("mutex_with_garbage_owner_words", None);
    let region = RegionOptions::new().max_peers(2).anonymous(64).unwrap();
    let me = region.join().unwrap();
    let word = region.atomic_u32(0).unwrap();
    let live = region.liveness();
    let alive = move |id: u32| live.is_alive(id);
    for garbage in [
        1u32 << 31,
        u32::MAX,
        0x7fff_ffff,
        0x100 | 200, // slot 199 of 2
        3 << 8 | 2,  // slot 1, never joined
    ] {
        word.store(garbage, Ordering::Relaxed);
        let m = RobustMutex::new(word);
        let g = m
            .lock_timeout(me.id(), &alive, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{garbage:#x}: {e}"));
        assert!(g.owner_died(), "{garbage:#x}");
        drop(g);
        assert!(!m.is_locked(), "{garbage:#x}");
    }
}

/// Relocking from the holder's own thread with the same id waits like any contender (a
/// timeout reports the holder), and does not unlock or corrupt the word.
#[test]
fn mutex_relock_by_the_holder() {
    let map = Mmap::anonymous(64).unwrap();
    let m = RobustMutex::new(words(&map, 0));
    let g = m.lock(1, &|_| true).unwrap();
    let r = m.lock_timeout(1, &|_| true, Duration::from_millis(5));
    assert!(matches!(r, Err(LockError::TimedOut { owner: 1 })), "{r:?}");
    assert!(m.try_lock(1, &|_| true).is_err());
    assert_eq!(m.owner(), Some(1));
    assert!(g.unlock());
    assert!(!m.is_locked());
}

// ---------------------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------------------

/// A full table gives `JoinError::Full` naming the slots; a leaver's slot is reusable at once
/// and the old id stays dead.
#[test]
fn full_table_and_quick_rejoin() {
    let region = RegionOptions::new().max_peers(2).anonymous(0).unwrap();
    let a = region.join().unwrap();
    let b = region.join().unwrap();
    match region.join() {
        Err(JoinError::Full { slots: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    let old = a.id();
    drop(a);
    for _ in 0..1000 {
        let c = region.join().unwrap();
        assert_ne!(c.id(), old);
        assert!(!region.is_alive(old));
        assert!(region.is_alive(c.id()));
        drop(c);
    }
    assert!(region.is_alive(b.id()));
}

/// Threads of one process each join: distinct slots and ids, all alive, all freed.
#[test]
fn threads_each_join() {
    let region = RegionOptions::new().max_peers(8).anonymous(0).unwrap();
    let ids: Vec<u32> = thread::scope(|s| {
        let hs: Vec<_> = (0..8).map(|_| s.spawn(|| region.join().unwrap())).collect();
        let peers: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let mut slots: Vec<u32> = peers.iter().map(|p| p.slot()).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), 8);
        assert!(peers.iter().all(|p| region.is_alive(p.id())));
        peers.iter().map(|p| p.id()).collect()
    });
    assert!(ids.iter().all(|&id| !region.is_alive(id)));
    assert!(region.peers().unwrap().is_empty());
}

/// A child forked after its parent joined is not the parent's peer: its own join gets
/// another slot, and it sees the parent alive.
#[test]
fn fork_after_join_child_joins_separately() {
    let _s = serial();
    let region = Region::anonymous(0).unwrap();
    let parent = region.join().unwrap();
    let pid = parent.id();
    let mut child = fork(|| {
        let me = match region.join() {
            Ok(me) => me,
            Err(_) => return 2,
        };
        if me.slot() == parent.slot() || me.id() == pid || !region.is_alive(pid) {
            return 3;
        }
        0
    });
    let _w = Watchdog::new("fork_after_join_child_joins_separately", Some(child.pid));
    child.expect_ok("the child");
    assert!(region.is_alive(pid));
    assert_eq!(
        region.peers().unwrap().iter().filter(|p| p.alive).count(),
        1
    );
}

/// Whether thread `tid` of this process sleeps in a futex wait.
fn in_futex_wait(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
        .is_ok_and(|w| w.contains("futex"))
}

fn gettid() -> i32 {
    // SAFETY: `gettid` has no preconditions.
    unsafe { libc::gettid() }
}

/// A contender woken by an unlock that then gives up (`lock_until`) must pass the wake-up on:
/// another contender parked behind it with `lock()` would otherwise sleep on a free lock
/// until its next liveness check (here an hour: the watchdog fires).
///
/// The interleaving, made deterministic: owner 1 holds; W1 (`lock_until`, parked first, so
/// the kernel wakes it first) and W2 (`lock()`) park; owner 1 releases while a fast-path
/// thief (id 4) takes the free lock before W1 runs, then wakes one waiter, W1; W1 reads the
/// thief's word, and while it asks whether the thief is alive (the liveness callback, the
/// hook used here) the thief releases without a wake (no contended bit) and W1's deadline
/// passes. W1 times out; W2 must still get the lock.
#[test]
fn mutex_timed_out_waiter_passes_its_wakeup_on() {
    let _w = Watchdog::new("mutex_timed_out_waiter_passes_its_wakeup_on", None);
    let map = Mmap::anonymous(64).unwrap();
    let (lock, w1_tid, w2_tid, calls) = (
        words(&map, 0),
        words(&map, 1),
        words(&map, 2),
        words(&map, 3),
    );
    let m = RobustMutex::new(lock);
    let held = m.lock(1, &|_| true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    thread::scope(|s| {
        let w1 = s.spawn(move || {
            w1_tid.store(gettid() as u32, Ordering::Release);
            let alive = |owner: u32| {
                if calls.fetch_add(1, Ordering::AcqRel) == 1 {
                    // The thief's release, no contended bit: no wake.
                    assert_eq!(owner, 4);
                    assert!(lock
                        .compare_exchange(4, 0, Ordering::Release, Ordering::Relaxed)
                        .is_ok());
                    // W1 is preempted here until its deadline passes.
                    while Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                true
            };
            // A maximal check interval: `alive` is asked at every turn, and the only sleep
            // lasts until the deadline.
            RobustMutex::new(lock)
                .check_interval(Duration::MAX)
                .lock_until(3, &alive, deadline)
                .map(|g| g.owner_died())
        });
        wait_until("W1 to park", || {
            let t = w1_tid.load(Ordering::Acquire) as i32;
            t != 0 && m.is_contended() && in_futex_wait(t)
        });
        let w2 = s.spawn(move || {
            w2_tid.store(gettid() as u32, Ordering::Release);
            let g = RobustMutex::new(lock)
                .check_interval(HOUR)
                .lock(2, &|_| true);
            g.map(|g| g.owner_id())
        });
        wait_until("W2 to park", || {
            let t = w2_tid.load(Ordering::Acquire) as i32;
            t != 0 && in_futex_wait(t)
        });
        // Owner 1's release, with the thief's fast-path lock slipped in before the wake.
        std::mem::forget(held);
        assert!(lock
            .compare_exchange(1 | 1 << 31, 4, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok());
        assert_eq!(mapipc::sync::futex_wake(lock, 1).unwrap(), 1);
        let r1 = w1.join().unwrap();
        assert!(matches!(r1, Err(LockError::TimedOut { .. })), "{r1:?}");
        assert_eq!(calls.load(Ordering::Acquire), 2, "W1 was the waiter woken");
        assert_eq!(w2.join().unwrap().unwrap(), 2);
    });
    assert!(!m.is_locked());
}
