//! One transport at one message size: the fork, the two protocols, the watchdog.
//!
//! # Protocol
//!
//! After the fork each process calls [`Endpoint::attach`] on its end (the child after pinning
//! itself, the client on its worker thread), then both run the same phases in the same order,
//! each closed by an end marker
//! ([`frame::END`] | count) that the server checks and answers:
//!
//! - round trip: the client sends message `n`, flushes, waits for the echo of `n`; the server
//!   checks that `n` is the number it expects next and echoes it. The first `warmup` of round
//!   trips are not recorded; then each round trip is timed (one `Instant::now()` per sample)
//!   into an HDR histogram for `duration`.
//! - throughput: the client streams messages (checking the clock every 64), records the time
//!   and count once `warmup` has passed, stops after `duration`, sends the end marker and waits
//!   for the server's acknowledgement, which arrives only after the server has received and
//!   checked every message. Rate = messages after the warm-up / time from then to the ack.
//!
//! # Failure reporting
//!
//! The child writes what went wrong into a page of shared memory created before the fork
//! (no allocation, no pipe) and exits with [`EXIT_FAILURE`]; the parent turns it into a
//! [`BenchError`] naming transport, size, phase and sequence number.
//!
//! # Watchdog
//!
//! The client runs on a worker thread (so pinning it leaves the caller's thread alone); the
//! caller's thread watches: when the child exits early it calls the pair's abort hook so a
//! client spinning on shared memory stops; past the time bound it kills the child with
//! SIGKILL and aborts. The child has `PR_SET_PDEATHSIG(SIGKILL)`, so it never outlives the
//! worker thread, and the worker waits until the child is reaped before it ends.
#![allow(unsafe_code)]

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mapipc::map::Mmap;
use mapipc::os::process as osproc;

use crate::error::{BenchError, Phase, Side};
use crate::frame::END;
use crate::sys::{self, ChildStatus};
use crate::transport::{Abort, Endpoint, Pair, Transport};

/// Exit status of a child that wrote a failure report.
pub(crate) const EXIT_FAILURE: i32 = 3;
/// Exit status of a child that panicked.
const EXIT_PANIC: i32 = 4;
/// Exit status of a child whose parent was already gone.
const EXIT_ORPHAN: i32 = 5;

/// Messages sent between two looks at the clock while streaming.
const STREAM_BATCH: u32 = 64;
/// How often the watchdog looks at the child.
const POLL: Duration = Duration::from_millis(50);
/// Extra time after the bound for an aborted client to return.
const GRACE: Duration = Duration::from_secs(10);
/// Largest recordable round trip (longer ones are recorded as this).
const MAX_NS: u64 = 60_000_000_000;

/// What to measure in one pair of processes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub warmup: Duration,
    pub duration: Duration,
    pub round_trip: bool,
    pub throughput: bool,
    /// The watchdog's bound; `None`: [`Plan::default_bound`].
    pub watchdog: Option<Duration>,
}

impl Plan {
    /// A minute plus ten times the planned time.
    pub fn default_bound(&self) -> Duration {
        let phases = u32::from(self.round_trip) + u32::from(self.throughput);
        Duration::from_secs(60) + (self.warmup + self.duration) * 10 * phases
    }

    fn bound(&self) -> Duration {
        self.watchdog.unwrap_or_else(|| self.default_bound())
    }
}

/// The client's error is only the echo of the server's death (end of file, abort).
fn peer_gone(f: &Failure) -> bool {
    matches!(
        f,
        Failure::Io { error, .. } if matches!(
            error.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
        )
    )
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

/// One-way throughput.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Throughput {
    pub msgs_per_s: f64,
    pub gb_per_s: f64,
}

/// The results of one pair.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Measured {
    pub latency: Option<Latency>,
    pub throughput: Option<Throughput>,
}

/// A verification or I/O failure on either side.
#[derive(Debug)]
enum Failure {
    Sequence {
        phase: Phase,
        expected: u64,
        got: u64,
    },
    Corrupt {
        phase: Phase,
        expected: u64,
        head: u64,
        tail: u64,
    },
    Count {
        phase: Phase,
        announced: u64,
        received: u64,
    },
    Io {
        phase: Phase,
        seq: u64,
        error: io::Error,
    },
    Panic,
}

impl Failure {
    fn io(phase: Phase, seq: u64) -> impl FnOnce(io::Error) -> Failure {
        move |error| Failure::Io { phase, seq, error }
    }

    fn into_error(self, transport: &str, size: usize, side: Side) -> BenchError {
        let transport = transport.to_string();
        match self {
            Failure::Sequence {
                phase,
                expected,
                got,
            } => BenchError::Sequence {
                transport,
                size,
                phase,
                side,
                expected,
                got,
            },
            Failure::Corrupt {
                phase,
                expected,
                head,
                tail,
            } => BenchError::Corrupted {
                transport,
                size,
                phase,
                side,
                expected,
                head,
                tail,
            },
            Failure::Count {
                phase,
                announced,
                received,
            } => BenchError::Count {
                transport,
                size,
                phase,
                side,
                announced,
                received,
            },
            Failure::Io { phase, seq, error } => BenchError::Io {
                transport,
                size,
                phase,
                side,
                seq,
                source: error,
            },
            Failure::Panic => BenchError::ServerDied {
                transport,
                size,
                status: "panicked".into(),
            },
        }
    }
}

/// Receives one message and checks it is number `expected` (or an end marker).
#[inline]
fn recv_checked(
    ep: &mut dyn Endpoint,
    size: usize,
    phase: Phase,
    expected: u64,
) -> Result<u64, Failure> {
    let f = ep.recv().map_err(Failure::io(phase, expected))?;
    f.check(size).map_err(|c| Failure::Corrupt {
        phase,
        expected,
        head: c.head,
        tail: c.tail,
    })
}

// ---------------------------------------------------------------------------------------
// Server (child)

fn serve_phase(ep: &mut dyn Endpoint, size: usize, phase: Phase) -> Result<(), Failure> {
    let echo = phase == Phase::RoundTrip;
    let mut expected = 0u64;
    loop {
        let seq = recv_checked(ep, size, phase, expected)?;
        if seq & END != 0 {
            let announced = seq & !END;
            if announced != expected {
                return Err(Failure::Count {
                    phase,
                    announced,
                    received: expected,
                });
            }
            ep.send(seq).map_err(Failure::io(phase, seq))?;
            return ep.flush().map_err(Failure::io(phase, seq));
        }
        if seq != expected {
            return Err(Failure::Sequence {
                phase,
                expected,
                got: seq,
            });
        }
        if echo {
            ep.send(seq).map_err(Failure::io(phase, seq))?;
            ep.flush().map_err(Failure::io(phase, seq))?;
        }
        expected += 1;
    }
}

fn serve(ep: &mut dyn Endpoint, size: usize, plan: &Plan) -> Result<(), Failure> {
    if plan.round_trip {
        serve_phase(ep, size, Phase::RoundTrip)?;
    }
    if plan.throughput {
        serve_phase(ep, size, Phase::Throughput)?;
    }
    Ok(())
}

/// The failure page: a few words of shared memory the child fills before it exits.
struct FailurePage {
    map: Mmap,
}

impl FailurePage {
    const KIND: u64 = 0;
    const PHASE: u64 = 8;
    const A: u64 = 16;
    const B: u64 = 24;
    const C: u64 = 32;

    fn new() -> io::Result<FailurePage> {
        let map = Mmap::anonymous(4096).map_err(io::Error::other)?;
        Ok(FailurePage { map })
    }

    fn store(&self, offset: u64, v: u64) {
        if let Ok(w) = self.map.atomic_u64(offset) {
            w.store(v, std::sync::atomic::Ordering::Release);
        }
    }

    fn load(&self, offset: u64) -> u64 {
        self.map
            .atomic_u64(offset)
            .map_or(0, |w| w.load(std::sync::atomic::Ordering::Acquire))
    }

    fn phase_code(p: Phase) -> u64 {
        match p {
            Phase::RoundTrip => 0,
            Phase::Throughput => 1,
        }
    }

    /// In the child: records `f` (no allocation).
    fn write(&self, f: &Failure) {
        let (kind, phase, a, b, c) = match f {
            Failure::Sequence {
                phase,
                expected,
                got,
            } => (1, *phase, *expected, *got, 0),
            Failure::Corrupt {
                phase,
                expected,
                head,
                tail,
            } => (2, *phase, *expected, *head, *tail),
            Failure::Count {
                phase,
                announced,
                received,
            } => (3, *phase, *announced, *received, 0),
            Failure::Io { phase, seq, error } => {
                let code = match error.raw_os_error() {
                    Some(errno) => errno as u64,
                    None => (1 << 32) | io_kind_code(error.kind()),
                };
                (4, *phase, *seq, code, 0)
            }
            Failure::Panic => (5, Phase::RoundTrip, 0, 0, 0),
        };
        self.store(Self::PHASE, Self::phase_code(phase));
        self.store(Self::A, a);
        self.store(Self::B, b);
        self.store(Self::C, c);
        self.store(Self::KIND, kind);
    }

    /// In the parent, after the child ended: what it reported, if anything.
    fn read(&self) -> Option<Failure> {
        let phase = if self.load(Self::PHASE) == 1 {
            Phase::Throughput
        } else {
            Phase::RoundTrip
        };
        let (a, b, c) = (self.load(Self::A), self.load(Self::B), self.load(Self::C));
        Some(match self.load(Self::KIND) {
            1 => Failure::Sequence {
                phase,
                expected: a,
                got: b,
            },
            2 => Failure::Corrupt {
                phase,
                expected: a,
                head: b,
                tail: c,
            },
            3 => Failure::Count {
                phase,
                announced: a,
                received: b,
            },
            4 => Failure::Io {
                phase,
                seq: a,
                error: if b >> 32 == 0 {
                    io::Error::from_raw_os_error(b as i32)
                } else {
                    io::Error::from(io_kind_from_code(b & 0xffff_ffff))
                },
            },
            5 => Failure::Panic,
            _ => return None,
        })
    }
}

const IO_KINDS: [io::ErrorKind; 6] = [
    io::ErrorKind::Other,
    io::ErrorKind::UnexpectedEof,
    io::ErrorKind::ConnectionAborted,
    io::ErrorKind::BrokenPipe,
    io::ErrorKind::InvalidInput,
    io::ErrorKind::ConnectionReset,
];

fn io_kind_code(k: io::ErrorKind) -> u64 {
    IO_KINDS.iter().position(|x| *x == k).unwrap_or(0) as u64
}

fn io_kind_from_code(c: u64) -> io::ErrorKind {
    IO_KINDS
        .get(c as usize)
        .copied()
        .unwrap_or(io::ErrorKind::Other)
}

/// The body of the child process; returns its exit status.
fn child_main(
    server: &mut dyn Endpoint,
    size: usize,
    plan: &Plan,
    cpu: Option<usize>,
    parent: u32,
    page: &FailurePage,
) -> i32 {
    if !sys::die_with_parent(parent) {
        return EXIT_ORPHAN;
    }
    if let Some(cpu) = cpu {
        osproc::pin_to_cpu(cpu);
    }
    let body = || {
        server.attach().map_err(Failure::io(Phase::RoundTrip, 0))?;
        serve(server, size, plan)
    };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(f)) => {
            page.write(&f);
            EXIT_FAILURE
        }
        Err(_) => {
            page.write(&Failure::Panic);
            EXIT_PANIC
        }
    }
}

// ---------------------------------------------------------------------------------------
// Client (parent)

#[inline]
fn round_trip(ep: &mut dyn Endpoint, size: usize, seq: u64) -> Result<(), Failure> {
    let phase = Phase::RoundTrip;
    ep.send(seq).map_err(Failure::io(phase, seq))?;
    ep.flush().map_err(Failure::io(phase, seq))?;
    let got = recv_checked(ep, size, phase, seq)?;
    if got != seq {
        return Err(Failure::Sequence {
            phase,
            expected: seq,
            got,
        });
    }
    Ok(())
}

/// Sends the end marker for `count` messages and waits for the server's answer.
fn finish(ep: &mut dyn Endpoint, size: usize, phase: Phase, count: u64) -> Result<(), Failure> {
    let marker = END | count;
    ep.send(marker).map_err(Failure::io(phase, marker))?;
    ep.flush().map_err(Failure::io(phase, marker))?;
    let got = recv_checked(ep, size, phase, marker)?;
    if got != marker {
        return Err(Failure::Sequence {
            phase,
            expected: marker,
            got,
        });
    }
    Ok(())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn client_latency(
    ep: &mut dyn Endpoint,
    size: usize,
    plan: &Plan,
    hist: &mut Histogram<u64>,
) -> Result<Latency, Failure> {
    let mut seq = 0u64;
    let warm_end = Instant::now() + plan.warmup;
    loop {
        round_trip(ep, size, seq)?;
        seq += 1;
        if Instant::now() >= warm_end {
            break;
        }
    }
    let mut prev = Instant::now();
    let end = prev + plan.duration;
    loop {
        round_trip(ep, size, seq)?;
        seq += 1;
        let now = Instant::now();
        hist.saturating_record(nanos(now - prev).max(1));
        prev = now;
        if now >= end {
            break;
        }
    }
    finish(ep, size, Phase::RoundTrip, seq)?;
    Ok(Latency {
        p50: hist.value_at_quantile(0.5) as f64,
        p99: hist.value_at_quantile(0.99) as f64,
        p999: hist.value_at_quantile(0.999) as f64,
    })
}

fn client_throughput(
    ep: &mut dyn Endpoint,
    size: usize,
    plan: &Plan,
) -> Result<Throughput, Failure> {
    let phase = Phase::Throughput;
    let mut seq = 0u64;
    let warm_end = Instant::now() + plan.warmup;
    loop {
        for _ in 0..STREAM_BATCH {
            ep.send(seq).map_err(Failure::io(phase, seq))?;
            seq += 1;
        }
        if Instant::now() >= warm_end {
            break;
        }
    }
    let t0 = Instant::now();
    let seq0 = seq;
    let end = t0 + plan.duration;
    loop {
        for _ in 0..STREAM_BATCH {
            ep.send(seq).map_err(Failure::io(phase, seq))?;
            seq += 1;
        }
        if Instant::now() >= end {
            break;
        }
    }
    finish(ep, size, phase, seq)?;
    let secs = t0.elapsed().as_secs_f64();
    let msgs_per_s = (seq - seq0) as f64 / secs;
    Ok(Throughput {
        msgs_per_s,
        gb_per_s: msgs_per_s * size as f64 / 1e9,
    })
}

fn run_client(
    ep: &mut dyn Endpoint,
    size: usize,
    plan: &Plan,
    hist: &mut Histogram<u64>,
) -> Result<Measured, Failure> {
    ep.attach().map_err(Failure::io(Phase::RoundTrip, 0))?;
    let mut m = Measured::default();
    if plan.round_trip {
        m.latency = Some(client_latency(ep, size, plan, hist)?);
    }
    if plan.throughput {
        m.throughput = Some(client_throughput(ep, size, plan)?);
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------
// Supervision

struct Worker {
    child: sys::Child,
    result: mpsc::Receiver<Result<Measured, Failure>>,
    release: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
}

/// Spawns the client thread, which pins itself, forks the server and runs the client.
fn spawn(
    pair: Pair,
    size: usize,
    plan: Plan,
    cpus: Option<(usize, usize)>,
    page: Arc<FailurePage>,
) -> io::Result<Worker> {
    let Pair {
        mut client,
        mut server,
        ..
    } = pair;
    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_NS, 3).map_err(io::Error::other)?;
    let (pid_tx, pid_rx) = mpsc::channel::<io::Result<sys::Child>>();
    let (res_tx, res_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let thread = thread::Builder::new()
        .name("mapipc-bench-client".into())
        .spawn(move || {
            if let Err(e) = sys::block_sigpipe() {
                let _ = pid_tx.send(Err(e));
                return;
            }
            if let Some((cpu, _)) = cpus {
                osproc::pin_to_cpu(cpu);
            }
            let parent = osproc::pid();
            // SAFETY: the child only runs `child_main` on the server endpoint and the failure
            // page, both created before the fork, and ends with `_exit` (never returning into
            // this closure); endpoints are built not to allocate (see `transport`).
            match unsafe { sys::fork() } {
                Err(e) => {
                    let _ = pid_tx.send(Err(e));
                }
                Ok(sys::Forked::Child) => {
                    let code =
                        child_main(&mut *server, size, &plan, cpus.map(|c| c.1), parent, &page);
                    sys::exit_child(code)
                }
                Ok(sys::Forked::Parent(child)) => {
                    drop(server);
                    let _ = pid_tx.send(Ok(child));
                    let r = run_client(&mut *client, size, &plan, &mut hist);
                    let _ = res_tx.send(r);
                    // Stay alive (the child dies with this thread) and keep the client's
                    // descriptors open (so the child sees no end-of-file) until the caller
                    // has reaped the child.
                    let _ = release_rx.recv();
                    drop(client);
                }
            }
        })?;
    match pid_rx.recv() {
        Ok(Ok(child)) => Ok(Worker {
            child,
            result: res_rx,
            release: release_tx,
            thread,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other(
                "the client thread panicked before forking",
            ))
        }
    }
}

/// SIGKILL through the child's pidfd: after the child was reaped (by us, or by something
/// else in the process) it fails with ESRCH and reaches nobody, never a process that was
/// given the child's pid since.
fn kill(child: &sys::Child) {
    let _ = child.kill();
}

/// Measures `transport` at `size` in a fresh pair of processes.
pub(crate) fn run_pair(
    transport: &dyn Transport,
    label: &str,
    size: usize,
    plan: &Plan,
    cpus: Option<(usize, usize)>,
) -> Result<Measured, BenchError> {
    let process_err = |what: &'static str| {
        move |source| BenchError::Process {
            transport: label.to_string(),
            size,
            what,
            source,
        }
    };
    let pair = transport
        .connect(size)
        .map_err(|source| BenchError::Setup {
            transport: label.to_string(),
            size,
            source,
        })?;
    let abort: Option<Abort> = pair.abort.clone();
    let call_abort = || {
        if let Some(a) = &abort {
            a();
        }
    };
    let page = Arc::new(FailurePage::new().map_err(process_err("mmap"))?);
    let worker = spawn(pair, size, *plan, cpus, page.clone()).map_err(process_err("fork"))?;
    let child = &worker.child;
    // The wait fails (ECHILD) when something else in this process reaped the child (a
    // `waitpid(-1)` elsewhere, a SIGCHLD handler that reaps): its status is lost, and a client
    // spinning on shared memory would wait for it forever, so it is unblocked before the
    // error returns. Kills go through the child's pidfd, so none can reach a process that
    // was given its pid after it was reaped.
    let waitpid = |block: bool| {
        child.wait(block).map_err(|e| {
            call_abort();
            process_err("waitpid")(e)
        })
    };
    let started = Instant::now();
    let bound = plan.bound();
    let mut status: Option<ChildStatus> = None;
    let mut timed_out = false;

    // Wait for the client, watching the child.
    let client = loop {
        match worker.result.recv_timeout(POLL) {
            Ok(r) => break Some(r),
            Err(RecvTimeoutError::Disconnected) => break None,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if status.is_none() {
            status = waitpid(false)?;
            if status.is_some() {
                call_abort();
            }
        }
        if !timed_out && started.elapsed() > bound {
            timed_out = true;
            if status.is_none() {
                kill(child);
            }
            call_abort();
        }
        if started.elapsed() > bound + GRACE {
            // The client is stuck beyond any abort; leave its thread behind.
            if status.is_none() {
                kill(child);
                let _ = child.wait(true);
            }
            return Err(BenchError::Timeout {
                transport: label.to_string(),
                size,
                after: bound,
            });
        }
    };

    // Reap the child: at once if the client failed, else within the bound.
    if status.is_none() && !matches!(client, Some(Ok(_))) {
        kill(child);
    }
    while status.is_none() {
        status = waitpid(false)?;
        if status.is_none() {
            if started.elapsed() > bound {
                timed_out = true;
                kill(child);
                status = waitpid(true)?;
            } else {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let _ = worker.release.send(());
    let _ = worker.thread.join();
    let status = status.unwrap_or(ChildStatus::Signaled(0));

    let server_failure = page.read();
    let err = |f: Failure, side| f.into_error(label, size, side);
    let died = || BenchError::ServerDied {
        transport: label.to_string(),
        size,
        status: status.to_string(),
    };
    match (server_failure, client) {
        // What the server checked and reported comes first: it is the root cause.
        (
            Some(
                f @ (Failure::Sequence { .. }
                | Failure::Corrupt { .. }
                | Failure::Count { .. }
                | Failure::Panic),
            ),
            _,
        ) => Err(err(f, Side::Server)),
        _ if timed_out => Err(BenchError::Timeout {
            transport: label.to_string(),
            size,
            after: bound,
        }),
        (None, Some(Err(f))) if peer_gone(&f) && status != ChildStatus::Exited(0) => Err(died()),
        (Some(s), Some(Err(c))) if peer_gone(&c) => Err(err(s, Side::Server)),
        (_, Some(Err(f))) => Err(err(f, Side::Client)),
        (Some(f), _) => Err(err(f, Side::Server)),
        (None, None) => Err(BenchError::Process {
            transport: label.to_string(),
            size,
            what: "the client thread",
            source: io::Error::other("panicked"),
        }),
        (None, Some(Ok(m))) if status == ChildStatus::Exited(0) => Ok(m),
        (None, Some(Ok(_))) => Err(died()),
    }
}
