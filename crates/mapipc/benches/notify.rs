//! Wake-up round trip between two processes (issue 3): `cargo bench -p mapipc --bench notify`.
//!
//! The parent forks an echo child over an anonymous shared mapping (or two pipes), the two
//! pinned to different CPUs when there are two. One round trip: the parent publishes a
//! sequence number and wakes the child; the child echoes it back and wakes the parent. Round
//! trips are timed in the parent with `iter_custom`.
//!
//! - `notifier_parked`: [`Notifier`] with `spin(0)`: both sides park at once, so every
//!   notify finds a parked waiter and makes the wake syscall;
//! - `raw_futex`: the baseline: two words, `futex_wait` / `futex_wake` called directly
//!   (through `mapipc::sync`, thin over `os::futex`), no timeouts, no waiter count;
//! - `pipe`: one byte each way through two pipes, blocking reads;
//! - `notifier_spin`: [`Notifier`] with the default spin-then-park under a continuous
//!   stream of round trips: the waiter is spinning when the message arrives, no syscalls;
//! - `raw_futex_timed`: `raw_futex` with a 100 ms timeout on every wait, as the notifier's
//!   liveness slices have: isolates what the timed wait costs.
//!
//! Targets: `notifier_parked` at most 1.1x `raw_futex` and below `pipe`; `notifier_spin`
//! at least 10x below `pipe`. Results: BENCHMARKS.md, "Notify (issue 3)".
//!
//! Environment knobs:
//! - `MAPIPC_NOTIFY_PAIRED=ROUNDS`: before the criterion runs, alternate blocks of 2000
//!   round trips of each variant for ROUNDS rounds and print medians and per-round ratios
//!   (robust against load drifting between criterion's back-to-back runs on a shared box);
//! - `MAPIPC_NOTIFY_SPIN=N`: spin count of `notifier_spin` (default: the library's
//!   `DEFAULT_SPIN`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mapipc::map::Mmap;
use mapipc::os::process::pin_to_cpu;
use mapipc::sync::{futex_wait, futex_wake, Notifier, WaitOptions};

/// The CPUs this process may run on (`sched_getaffinity`).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE and `set` is initialised.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// A forked echo process; killed and reaped on drop.
struct Child {
    pid: i32,
}

impl Child {
    /// Forks; the child pins itself to `cpu` (if any), dies with the parent
    /// (`PR_SET_PDEATHSIG`), runs `body` and `_exit`s.
    fn spawn(cpu: Option<usize>, body: impl FnOnce()) -> Child {
        // SAFETY: `fork` has no memory-safety preconditions; the child only touches atomics
        // in the shared mapping, makes simple syscalls, and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: plain prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            if let Some(cpu) = cpu {
                pin_to_cpu(cpu);
            }
            body();
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        Child { pid }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = mapipc::os::process::kill9(self.pid as u32);
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// Four words in a fresh shared mapping: ping, pong, and a notifier word for each.
struct Words {
    map: Mmap,
}

impl Words {
    fn new() -> Words {
        Words {
            map: Mmap::anonymous(4096).unwrap(),
        }
    }
    /// Words 64 bytes apart (separate cache lines).
    fn at(&self, i: u64) -> &AtomicU32 {
        self.map.atomic_u32(i * 64).unwrap()
    }
    fn ping(&self) -> &AtomicU32 {
        self.at(0)
    }
    fn pong(&self) -> &AtomicU32 {
        self.at(1)
    }
    fn ping_notifier(&self) -> Notifier<'_> {
        Notifier::new(self.at(2))
    }
    fn pong_notifier(&self) -> Notifier<'_> {
        Notifier::new(self.at(3))
    }
}

/// The next sequence number (never 0, the initial value of the words).
fn next(seq: &Cell<u32>) -> u32 {
    let s = seq.get().wrapping_add(1).max(1);
    seq.set(s);
    s
}

/// One way of doing a round trip with a forked echo child.
enum Pair {
    Notifier {
        w: Words,
        spin: u32,
        seq: Cell<u32>,
        _child: Child,
    },
    Futex {
        w: Words,
        to: Option<Duration>,
        seq: Cell<u32>,
        _child: Child,
    },
    Pipe {
        to_child: [i32; 2],
        to_parent: [i32; 2],
        _child: Child,
    },
}

impl Pair {
    /// Notifier echo; `spin` is used by both sides.
    fn notifier(spin: u32, child_cpu: Option<usize>) -> Pair {
        let w = Words::new();
        let child = Child::spawn(child_cpu, || {
            let mut opts = WaitOptions::new();
            opts.spin(spin);
            let mut last = 0;
            loop {
                let ready = || Some(w.ping().load(Ordering::Acquire)).filter(|&v| v != last);
                let Ok(v) = w.ping_notifier().wait_until(ready, &opts) else {
                    return;
                };
                last = v;
                w.pong().store(v, Ordering::Release);
                w.pong_notifier().notify_one();
            }
        });
        Pair::Notifier {
            w,
            spin,
            seq: Cell::new(0),
            _child: child,
        }
    }

    /// Raw futex echo: wake unconditionally, wait with timeout `to` (none for the baseline).
    fn futex(child_cpu: Option<usize>, to: Option<Duration>) -> Pair {
        let w = Words::new();
        let child = Child::spawn(child_cpu, || {
            let (ping, pong) = (w.ping(), w.pong());
            let mut last = 0;
            loop {
                let v = ping.load(Ordering::Acquire);
                if v == last {
                    let _ = futex_wait(ping, v, to);
                    continue;
                }
                last = v;
                pong.store(v, Ordering::Release);
                let _ = futex_wake(pong, 1);
            }
        });
        Pair::Futex {
            w,
            to,
            seq: Cell::new(0),
            _child: child,
        }
    }

    /// Pipe echo: one byte each way.
    fn pipe(child_cpu: Option<usize>) -> Pair {
        let mut to_child = [0i32; 2];
        let mut to_parent = [0i32; 2];
        // SAFETY: each array is a valid out-pointer for two fds.
        unsafe {
            assert_eq!(libc::pipe(to_child.as_mut_ptr()), 0);
            assert_eq!(libc::pipe(to_parent.as_mut_ptr()), 0);
        }
        let child = Child::spawn(child_cpu, || {
            let mut b = [0u8; 1];
            loop {
                // SAFETY: one byte from our own pipe fd into a local buffer.
                let n = unsafe { libc::read(to_child[0], b.as_mut_ptr().cast(), 1) };
                // SAFETY: one byte from a local buffer to our own pipe fd.
                if n != 1 || unsafe { libc::write(to_parent[1], b.as_ptr().cast(), 1) } != 1 {
                    return;
                }
            }
        });
        Pair::Pipe {
            to_child,
            to_parent,
            _child: child,
        }
    }

    fn round_trip(&self) {
        match self {
            Pair::Notifier { w, spin, seq, .. } => {
                let s = next(seq);
                w.ping().store(s, Ordering::Release);
                w.ping_notifier().notify_one();
                let back = || (w.pong().load(Ordering::Acquire) == s).then_some(());
                let mut opts = WaitOptions::new();
                opts.spin(*spin);
                w.pong_notifier().wait_until(back, &opts).unwrap();
            }
            Pair::Futex { w, seq, to, .. } => {
                let s = next(seq);
                w.ping().store(s, Ordering::Release);
                let _ = futex_wake(w.ping(), 1);
                loop {
                    let v = w.pong().load(Ordering::Acquire);
                    if v == s {
                        break;
                    }
                    let _ = futex_wait(w.pong(), v, *to);
                }
            }
            Pair::Pipe {
                to_child,
                to_parent,
                ..
            } => {
                let mut buf = [7u8; 1];
                // SAFETY: one byte to/from our own pipe fds and a local buffer.
                unsafe {
                    assert_eq!(libc::write(to_child[1], buf.as_ptr().cast(), 1), 1);
                    assert_eq!(libc::read(to_parent[0], buf.as_mut_ptr().cast(), 1), 1);
                }
            }
        }
    }

    /// Time `iters` round trips.
    fn time(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.round_trip();
        }
        start.elapsed()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Pair::Pipe {
            to_child,
            to_parent,
            ..
        } = self
        {
            for fd in to_child.iter().chain(to_parent.iter()) {
                // SAFETY: closing fds we created and no longer use.
                unsafe { libc::close(*fd) };
            }
        }
    }
}

/// The spin count of `notifier_spin`: `MAPIPC_NOTIFY_SPIN`, or the library default.
fn spin_for_stream() -> u32 {
    std::env::var("MAPIPC_NOTIFY_SPIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(mapipc::sync::DEFAULT_SPIN)
}

const NAMES: [&str; 5] = [
    "notifier_parked",
    "raw_futex",
    "pipe",
    "notifier_spin",
    "raw_futex_timed",
];

fn pairs(child_cpu: Option<usize>) -> [Pair; 5] {
    [
        Pair::notifier(0, child_cpu),
        Pair::futex(child_cpu, None),
        Pair::pipe(child_cpu),
        Pair::notifier(spin_for_stream(), child_cpu),
        Pair::futex(child_cpu, Some(Duration::from_millis(100))),
    ]
}

/// `MAPIPC_NOTIFY_PAIRED=ROUNDS`: besides criterion, alternate blocks of round trips of
/// every variant for ROUNDS rounds and print per-variant medians and the median of the
/// per-round ratios. On a shared, noisy machine the load drifts between criterion's
/// back-to-back benchmarks; alternating blocks exposes every variant to the same drift.
fn paired(pairs: &[Pair; 5], rounds: usize) {
    const BLOCK: u64 = 2000;
    let mut per_round: Vec<[f64; 5]> = Vec::with_capacity(rounds);
    for p in pairs {
        p.time(BLOCK); // warm up
    }
    for _ in 0..rounds {
        let mut r = [0.0; 5];
        for (i, p) in pairs.iter().enumerate() {
            r[i] = p.time(BLOCK).as_nanos() as f64 / BLOCK as f64;
        }
        per_round.push(r);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!("paired: {rounds} rounds x {BLOCK} round trips per variant, median ns/round trip");
    for (i, name) in NAMES.iter().enumerate() {
        eprintln!(
            "  {name:16} {:10.0}",
            median(per_round.iter().map(|r| r[i]).collect())
        );
    }
    let ratio = |a: usize, b: usize| median(per_round.iter().map(|r| r[a] / r[b]).collect());
    eprintln!("  notifier_parked / raw_futex  {:.3}", ratio(0, 1));
    eprintln!("  notifier_parked / pipe       {:.3}", ratio(0, 2));
    eprintln!("  pipe / notifier_spin         {:.1}", ratio(2, 3));
    eprintln!("  raw_futex_timed / raw_futex  {:.3}", ratio(4, 1));
}

fn notify_benches(c: &mut Criterion) {
    let cpus = allowed_cpus();
    let child_cpu = if cpus.len() >= 2 && pin_to_cpu(cpus[0]) {
        Some(cpus[1])
    } else {
        None
    };
    eprintln!(
        "notify bench: allowed CPUs {cpus:?}; parent on {:?}, child on {child_cpu:?}",
        child_cpu.map(|_| cpus[0])
    );
    let pairs = pairs(child_cpu);
    if let Some(rounds) = std::env::var("MAPIPC_NOTIFY_PAIRED")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&r| r > 0)
    {
        paired(&pairs, rounds);
    }
    for (name, pair) in NAMES.iter().zip(&pairs) {
        c.bench_function(name, |b| b.iter_custom(|iters| pair.time(iters)));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = notify_benches
}
criterion_main!(benches);
