//! The harness end to end: every transport runs and reports all five metrics; corrupted,
//! dropped and stuck transports fail the run loudly with the sequence number; the report's
//! JSON and SVG outputs.
//!
//! Each test forks a real server process. The harness's own watchdog bounds every child; the
//! tests set it to 60 s (or less where a hang is the point). Measurements run one at a time
//! (they pin and spin on two CPUs), and nothing asserts on the figures themselves.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

use mapipc_bench::channel::{BroadcastLink, ChannelTransport, Mode, MpscLink, SpscLink};
use mapipc_bench::floors::SpinFloorTransport;
use mapipc_bench::frame::{self, Frame, END};
use mapipc_bench::kernel::Uds;
use mapipc_bench::{
    run, run_transports, BenchError, Class, Config, Endpoint, Metric, Pair, Phase, Progress,
    Report, Side, Transport,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn smoke(only: &str) -> Config {
    let mut c = Config::smoke(&[64]);
    c.only = vec![only.into()];
    c.watchdog = Some(Duration::from_secs(60));
    c
}

fn quick_run_reports_all_metrics(name: &str) {
    let _g = serial();
    let report = run(&smoke(name), &|_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(report.rows.len(), 5, "{name}: {:?}", report.rows);
    for metric in Metric::ALL {
        let v = report
            .value(name, None, 64, metric)
            .unwrap_or_else(|| panic!("{name}: no {metric}"));
        assert!(v.is_finite() && v > 0.0, "{name} {metric} = {v}");
    }
    assert!(report.rows.iter().all(|r| r.mode.is_none()));
}

#[test]
fn pipe_runs() {
    quick_run_reports_all_metrics("pipe");
}

#[test]
fn uds_runs() {
    quick_run_reports_all_metrics("uds");
}

#[test]
fn tcp_runs() {
    quick_run_reports_all_metrics("tcp");
}

#[test]
fn shm_spin_floor_runs() {
    quick_run_reports_all_metrics("shm-spin-floor");
}

#[test]
fn futex_floor_runs() {
    quick_run_reports_all_metrics("futex-floor");
}

#[test]
fn ring_floor_runs() {
    quick_run_reports_all_metrics("ring-floor");
}

/// Runs channel kind `kind` in both modes at `sizes` and checks all five metrics of each.
fn channel_kind_runs_in_both_modes(kind: &str, sizes: &[usize]) {
    let _g = serial();
    let mut config = smoke(kind);
    config.sizes = sizes.to_vec();
    let report = run(&config, &|_| {}).unwrap_or_else(|e| panic!("{kind}: {e}"));
    assert_eq!(report.rows.len(), 2 * sizes.len() * 5, "{:?}", report.rows);
    for mode in ["spin", "park"] {
        for &size in sizes {
            for metric in Metric::ALL {
                let v = report
                    .value(kind, Some(mode), size, metric)
                    .unwrap_or_else(|| panic!("{kind} {mode} {size}: no {metric}"));
                assert!(
                    v.is_finite() && v > 0.0,
                    "{kind} {mode} {size} {metric} = {v}"
                );
            }
        }
    }
    assert!(report.rows.iter().all(|r| r.transport == kind));
    assert!(report.table().contains(kind));
}

#[test]
fn spsc_runs_in_both_modes() {
    channel_kind_runs_in_both_modes("spsc", &[8, 65536]);
}

#[test]
fn mpsc_runs_in_both_modes() {
    channel_kind_runs_in_both_modes("mpsc", &[64]);
}

#[test]
fn broadcast_runs_in_both_modes() {
    channel_kind_runs_in_both_modes("broadcast", &[64]);
}

#[test]
fn mpsc_and_broadcast_carry_the_largest_messages() {
    // 64 KiB records wrap the ring every 64 messages (and need padding records at its end).
    for kind in ["mpsc:spin", "broadcast:park"] {
        let _g = serial();
        let mut config = smoke(kind);
        config.sizes = vec![65536];
        let report = run(&config, &|_| {}).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(report.rows.len(), 5, "{kind}: {:?}", report.rows);
        assert!(report
            .rows
            .iter()
            .all(|r| r.value.is_finite() && r.value > 0.0));
    }
}

#[test]
fn sizes_and_probes_and_progress() {
    let _g = serial();
    let mut config = smoke("ring-floor");
    config.sizes = vec![8, 65536];
    config.probe = true;
    let events = Mutex::new(Vec::new());
    let report = run(&config, &|p| events.lock().unwrap().push(p)).unwrap();
    assert_eq!(report.sizes(), [8, 65536]);
    assert_eq!(report.rows.len(), 10);
    let probes = &report.machine.placement_probes;
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].before, "ring-floor");
    assert!(probes[0].rtt_p50_ns > 0.0);
    let events = events.into_inner().unwrap();
    assert!(matches!(events[0], Progress::Started { total: 2, .. }));
    assert!(events.iter().any(|e| matches!(e, Progress::Probe(_))));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Progress::Measured { .. }))
            .count(),
        2
    );
    assert_eq!(events.last(), Some(&Progress::Finished));
    // The table has one block per size and every transport in it.
    let table = report.table();
    assert!(table.contains("8 B messages") && table.contains("65536 B messages"));
    assert!(table.contains("ring-floor"));
}

#[test]
fn a_size_given_twice_is_measured_once() {
    // `--sizes 64,8,64` (or `4KiB,4096`): one measurement per size, not two sets of rows for
    // the same (transport, size, metric) of which the table and the chart show only the first.
    let _g = serial();
    let mut config = smoke("uds");
    config.sizes = vec![64, 8, 64];
    let events = Mutex::new(Vec::new());
    let report = run(&config, &|p| events.lock().unwrap().push(p)).unwrap();
    assert_eq!(report.rows.len(), 10, "{:?}", report.rows);
    for size in [8, 64] {
        assert_eq!(report.rows.iter().filter(|r| r.size == size).count(), 5);
    }
    let events = events.into_inner().unwrap();
    assert!(
        matches!(events[0], Progress::Started { total: 2, .. }),
        "{:?}",
        events[0]
    );
    let measured: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Progress::Measured { size, .. } => Some(*size),
            _ => None,
        })
        .collect();
    assert_eq!(measured, [64, 8]); // the order given, each size once
}

// ---------------------------------------------------------------------------------------
// Transports that misbehave on purpose.

/// What a [`Faulty`] transport does wrong, at the message numbered `at` of phase `phase`
/// (0: round trip, 1: throughput).
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The client skips a sequence number (a dropped message).
    ClientSkips,
    /// The client sends a number twice (a duplicated message).
    ClientRepeats,
    /// The server echoes a wrong number.
    ServerEchoesWrong,
    /// The server fails with an I/O error.
    ServerFails,
    /// The server stops answering (blocks forever).
    ServerHangs,
    /// The server cannot attach its end (so it never receives nor sends anything).
    ServerAttachFails,
}

struct Faulty<T> {
    inner: T,
    fault: Fault,
    phase: u32,
    /// Counted messages, not time: a phase always carries messages 0 and 1 of the round
    /// trip (the warm-up and the measured loop make one round trip each at least) and
    /// 0..128 of throughput (one batch of 64 each), however slow the machine; beyond those
    /// a loaded machine may end a 20 ms smoke phase before the fault, and the run succeeds.
    /// So `at` stays below 2 (round trip) or 128 (throughput).
    at: u64,
}

struct FaultyEnd {
    inner: Box<dyn Endpoint>,
    fault: Option<Fault>,
    phase: u32,
    at: u64,
    /// End markers seen or sent so far: the current phase.
    ends: u32,
    received: u64,
}

impl FaultyEnd {
    fn due(&self, seq: u64) -> bool {
        self.ends == self.phase && seq == self.at
    }
}

impl Endpoint for FaultyEnd {
    fn attach(&mut self) -> io::Result<()> {
        if let Some(Fault::ServerAttachFails) = self.fault {
            return Err(io::Error::other("injected attach failure"));
        }
        self.inner.attach()
    }

    fn send(&mut self, seq: u64) -> io::Result<()> {
        let seq = match self.fault {
            Some(Fault::ClientSkips | Fault::ServerEchoesWrong) if self.due(seq) => seq + 1,
            Some(Fault::ClientRepeats) if self.due(seq) => seq - 1,
            _ => seq,
        };
        if seq & END != 0 {
            self.ends += 1;
        }
        self.inner.send(seq)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn recv(&mut self) -> io::Result<Frame> {
        let f = self.inner.recv()?;
        let due = self.due(self.received);
        self.received += 1;
        match self.fault {
            Some(Fault::ServerFails) if due => return Err(io::Error::other("injected failure")),
            Some(Fault::ServerHangs) if due => loop {
                std::thread::sleep(Duration::from_secs(1));
            },
            _ => {}
        }
        if f.head & END != 0 {
            self.received = 0;
        }
        Ok(f)
    }
}

impl<T: Transport> Transport for Faulty<T> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn class(&self) -> Class {
        self.inner.class()
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        assert!(self.at < [2, 128][self.phase as usize], "see `Faulty::at`");
        let pair = self.inner.connect(size)?;
        let on_client = matches!(self.fault, Fault::ClientSkips | Fault::ClientRepeats);
        let wrap = |inner, fault| FaultyEnd {
            inner,
            fault,
            phase: self.phase,
            at: self.at,
            ends: 0,
            received: 0,
        };
        let (c, s) = if on_client {
            (Some(self.fault), None)
        } else {
            (None, Some(self.fault))
        };
        Ok(Pair {
            client: Box::new(wrap(pair.client, c)),
            server: Box::new(wrap(pair.server, s)),
            abort: pair.abort,
        })
    }
}

fn run_one(t: &dyn Transport, config: &Config) -> Result<Report, BenchError> {
    let _g = serial();
    run_transports(config, &[t], &|_| {})
}

#[test]
fn a_dropped_message_fails_the_run_naming_the_sequence_number() {
    let t = Faulty {
        inner: Uds,
        fault: Fault::ClientSkips,
        phase: 1,
        at: 100,
    };
    let err = run_one(&t, &smoke("uds")).unwrap_err();
    match &err {
        BenchError::Sequence {
            transport,
            size,
            phase,
            side,
            expected,
            got,
        } => {
            assert_eq!((transport.as_str(), *size), ("uds", 64));
            assert_eq!((*phase, *side), (Phase::Throughput, Side::Server));
            assert_eq!((*expected, *got), (100, 101));
        }
        other => panic!("unexpected error: {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("uds") && msg.contains("64 B") && msg.contains("message 100"),
        "{msg}"
    );
}

#[test]
fn a_duplicated_message_fails_the_run_on_shared_memory_too() {
    let t = Faulty {
        inner: SpinFloorTransport,
        fault: Fault::ClientRepeats,
        phase: 0,
        at: 1,
    };
    let err = run_one(&t, &smoke("shm-spin-floor")).unwrap_err();
    assert!(
        matches!(
            err,
            BenchError::Sequence {
                phase: Phase::RoundTrip,
                side: Side::Server,
                expected: 1,
                got: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_wrong_echo_is_caught_by_the_client() {
    let t = Faulty {
        inner: Uds,
        fault: Fault::ServerEchoesWrong,
        phase: 0,
        at: 0,
    };
    let err = run_one(&t, &smoke("uds")).unwrap_err();
    assert!(
        matches!(
            err,
            BenchError::Sequence {
                phase: Phase::RoundTrip,
                side: Side::Client,
                expected: 0,
                got: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_server_error_unblocks_a_spinning_client_and_is_reported() {
    // The client spins on shared memory: only the watchdog's abort can end its wait.
    let t = Faulty {
        inner: SpinFloorTransport,
        fault: Fault::ServerFails,
        phase: 1,
        at: 10,
    };
    let err = run_one(&t, &smoke("shm-spin-floor")).unwrap_err();
    match &err {
        BenchError::Io {
            side, phase, seq, ..
        } => assert_eq!((*side, *phase, *seq), (Side::Server, Phase::Throughput, 10)),
        other => panic!("unexpected error: {other}"),
    }
}

/// A boxed transport, to wrap any channel kind in [`Faulty`].
struct Dyn(Box<dyn Transport>);

impl Transport for Dyn {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn mode(&self) -> Option<&str> {
        self.0.mode()
    }

    fn class(&self) -> Class {
        self.0.class()
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        self.0.connect(size)
    }
}

/// Runs `f` with each channel kind's transport in `mode` and its name.
fn for_each_kind(mode: Mode, mut f: impl FnMut(Dyn, &str)) {
    f(
        Dyn(Box::new(ChannelTransport::<SpscLink>::new(mode))),
        "spsc",
    );
    f(
        Dyn(Box::new(ChannelTransport::<MpscLink>::new(mode))),
        "mpsc",
    );
    f(
        Dyn(Box::new(ChannelTransport::<BroadcastLink>::new(mode))),
        "broadcast",
    );
}

#[test]
fn a_server_error_unblocks_a_channel_client_and_is_reported() {
    // The client streams into a channel: once the server is gone it gets `Disconnected` (the
    // channel's liveness check or the harness's abort), not a hang.
    for mode in [Mode::Spin, Mode::Park] {
        for_each_kind(mode, |inner, kind| {
            let t = Faulty {
                inner,
                fault: Fault::ServerFails,
                phase: 1,
                at: 10,
            };
            let err = run_one(&t, &smoke(kind)).unwrap_err();
            match &err {
                BenchError::Io {
                    side, phase, seq, ..
                } => assert_eq!((*side, *phase, *seq), (Side::Server, Phase::Throughput, 10)),
                other => panic!("{kind} {mode}: unexpected error: {other}"),
            }
        });
    }
}

#[test]
fn a_channel_server_that_never_attaches_does_not_hang_the_client() {
    // The client waits for an echo from a channel end nobody ever attached: only the
    // harness's abort (a stand-in end that attaches and leaves) can end that wait.
    for_each_kind(Mode::Spin, |inner, kind| {
        let t = Faulty {
            inner,
            fault: Fault::ServerAttachFails,
            phase: 0,
            at: 0,
        };
        let err = run_one(&t, &smoke(kind)).unwrap_err();
        match &err {
            BenchError::Io {
                side,
                phase,
                seq,
                source,
                ..
            } => {
                assert_eq!((*side, *phase, *seq), (Side::Server, Phase::RoundTrip, 0));
                assert_eq!(source.kind(), io::ErrorKind::Other, "{kind}: {source}");
            }
            other => panic!("{kind}: unexpected error: {other}"),
        }
    });
}

#[test]
fn a_dead_reader_gives_epipe_not_a_fatal_sigpipe() {
    // A CLI may restore SIGPIPE's default action (die) to behave in shell pipelines; the
    // harness blocks SIGPIPE on its own threads, so writing to the pipe of a server that died
    // is an error, not the end of this process.
    // SAFETY: `signal` with a valid signal number and `SIG_DFL`; no handler is installed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let t = Faulty {
        inner: mapipc_bench::kernel::Pipe,
        fault: Fault::ServerFails,
        phase: 1,
        at: 10,
    };
    let err = run_one(&t, &smoke("pipe")).unwrap_err();
    match &err {
        BenchError::Io {
            side, phase, seq, ..
        } => assert_eq!((*side, *phase, *seq), (Side::Server, Phase::Throughput, 10)),
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn a_hung_server_is_killed_by_the_watchdog() {
    let t = Faulty {
        inner: SpinFloorTransport,
        fault: Fault::ServerHangs,
        phase: 0,
        at: 0,
    };
    let mut config = smoke("shm-spin-floor");
    config.watchdog = Some(Duration::from_secs(1));
    let err = run_one(&t, &config).unwrap_err();
    assert!(
        matches!(err, BenchError::Timeout { ref transport, size: 64, .. } if transport == "shm-spin-floor"),
        "{err}"
    );
}

/// Writes real bytes over a socket and flips one bit of message `at`'s tail.
struct BitFlip {
    at: u64,
}

struct BitFlipEnd {
    sock: UnixStream,
    buf: Vec<u8>,
    flip_at: Option<u64>,
}

impl Endpoint for BitFlipEnd {
    fn send(&mut self, seq: u64) -> io::Result<()> {
        frame::stamp(&mut self.buf, seq);
        if Some(seq) == self.flip_at {
            let last = self.buf.len() - 1;
            self.buf[last] ^= 0x10;
        }
        self.sock.write_all(&self.buf)
    }

    fn recv(&mut self) -> io::Result<Frame> {
        self.sock.read_exact(&mut self.buf)?;
        Ok(Frame::read(&self.buf))
    }
}

impl Transport for BitFlip {
    fn name(&self) -> &str {
        "bitflip"
    }

    fn class(&self) -> Class {
        Class::Kernel
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        let (a, b) = UnixStream::pair()?;
        Ok(Pair::new(
            BitFlipEnd {
                sock: a,
                buf: frame::template(size),
                flip_at: Some(self.at),
            },
            BitFlipEnd {
                sock: b,
                buf: frame::template(size),
                flip_at: None,
            },
        ))
    }
}

#[test]
fn a_corrupted_message_fails_the_run_naming_the_sequence_number() {
    let err = run_one(&BitFlip { at: 20 }, &smoke("bitflip")).unwrap_err();
    match &err {
        BenchError::Corrupted {
            transport,
            side,
            expected,
            head,
            ..
        } => {
            assert_eq!(transport, "bitflip");
            assert_eq!((*side, *expected, *head), (Side::Server, 20, 20));
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("message 20"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Outputs

#[test]
fn json_has_the_exact_field_names_and_round_trips() {
    let report = run_one(&Uds, &smoke("uds")).unwrap();
    let json = report.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let top: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(top, ["machine", "rows"]);
    let machine = v["machine"].as_object().unwrap();
    for key in ["cpu_model", "cores", "kernel", "date"] {
        assert!(machine.contains_key(key), "machine lacks {key}: {json}");
    }
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let mut metrics = Vec::new();
    for row in rows {
        let mut keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["metric", "mode", "size", "transport", "value"]);
        assert_eq!(row["transport"], "uds");
        assert!(row["mode"].is_null());
        assert_eq!(row["size"], 64);
        assert!(row["value"].as_f64().unwrap() > 0.0);
        metrics.push(row["metric"].as_str().unwrap().to_string());
    }
    assert_eq!(
        metrics,
        [
            "rtt_p50_ns",
            "rtt_p99_ns",
            "rtt_p999_ns",
            "throughput_msgs_per_s",
            "throughput_gb_per_s"
        ]
    );
    assert_eq!(Report::from_json(&json).unwrap(), report);
    // A channel row carries its mode.
    let mut with_mode = report.clone();
    with_mode.rows[0].transport = "spsc".into();
    with_mode.rows[0].mode = Some("spin".into());
    let v: serde_json::Value = serde_json::from_str(&with_mode.to_json()).unwrap();
    assert_eq!(v["rows"][0]["mode"], "spin");
    assert_eq!(Report::from_json(&with_mode.to_json()).unwrap(), with_mode);
}

#[test]
fn svg_chart_is_written() {
    let report = run_one(&Uds, &smoke("uds")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.svg");
    mapipc_bench::write_svg(&report, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.len() > 1000, "{svg}");
    assert!(svg.contains("<svg"));
    assert!(svg.contains("uds"));
    let empty = Report {
        machine: report.machine.clone(),
        rows: vec![],
    };
    assert!(mapipc_bench::write_svg(&empty, dir.path().join("empty.svg")).is_err());
}

// ---------------------------------------------------------------------------------------
// A server reaped behind the harness's back.

/// Set once the [`Stolen`] client's wait on the spin floor has ended.
static STOLEN_CLIENT_RETURNED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// `shm-spin-floor` whose server sends its pid to the client and exits at once, and whose
/// client reaps it with its own `waitpid` (as a SIGCHLD handler or a `waitpid(-1)` elsewhere in
/// a program would): the harness's `waitpid` then fails with ECHILD.
struct Stolen;

struct StolenEnd {
    inner: Box<dyn Endpoint>,
    pid_pipe: UnixStream,
    server: bool,
}

impl Endpoint for StolenEnd {
    fn attach(&mut self) -> io::Result<()> {
        if self.server {
            let pid = std::process::id().to_le_bytes();
            let _ = self.pid_pipe.write_all(&pid);
            // SAFETY: `_exit` is async-signal-safe and never returns.
            unsafe { libc::_exit(0) }
        }
        let mut pid = [0u8; 4];
        self.pid_pipe.read_exact(&mut pid)?;
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call.
        let r = unsafe { libc::waitpid(u32::from_le_bytes(pid) as libc::pid_t, &mut status, 0) };
        assert!(r > 0, "the test could not reap the server");
        self.inner.attach()
    }

    fn send(&mut self, seq: u64) -> io::Result<()> {
        self.inner.send(seq)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn recv(&mut self) -> io::Result<Frame> {
        let r = self.inner.recv();
        if r.is_err() {
            STOLEN_CLIENT_RETURNED.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        r
    }
}

impl Transport for Stolen {
    fn name(&self) -> &str {
        "stolen"
    }

    fn class(&self) -> Class {
        Class::Floor
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        let Pair {
            client,
            server,
            abort,
        } = SpinFloorTransport.connect(size)?;
        let (a, b) = UnixStream::pair()?;
        let mut pair = Pair::new(
            StolenEnd {
                inner: client,
                pid_pipe: a,
                server: false,
            },
            StolenEnd {
                inner: server,
                pid_pipe: b,
                server: true,
            },
        );
        pair.abort = abort;
        Ok(pair)
    }
}

#[test]
fn a_server_reaped_elsewhere_fails_the_run_and_unblocks_the_spinning_client() {
    let _g = serial();
    let mut config = smoke("stolen");
    config.watchdog = Some(Duration::from_secs(60));
    let err = run_transports(&config, &[&Stolen], &|_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            BenchError::Process {
                what: "waitpid",
                ..
            }
        ),
        "{err}"
    );
    // The client, spinning for an echo that never comes, was aborted rather than left
    // spinning forever on its thread. Bounded wait (a watchdog, not a timing assertion).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !STOLEN_CLIENT_RETURNED.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the client still spins after the run returned"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
