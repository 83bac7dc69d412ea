//! The SPSC channel across real processes: streaming with every byte checked, producer and
//! consumer killed at random points, reattachment, hostile writers, truncation.
//!
//! Every child runs under the watchdog of `common::Child::wait`; nothing asserts on time.
//! A failing random test prints its seed; rerun with `MAPIPC_TEST_SEED=<seed>`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{fork, seed, Exit, Rng};
use mapipc::channel::{
    pair, AttachError, Channel, ChannelCreateError, ChannelOpenError, ChannelOptions, Kind,
    OpenAttachError, Policy, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
    Sender, StartAt, TryRecvError, TrySendError, WaitStrategy,
};
use mapipc::map::{FaultCause, Mmap};

/// Deterministic content of message `seq`: its length and bytes.
fn message(seq: u64, max: usize, buf: &mut Vec<u8>) {
    let mut rng = Rng::new(seq ^ 0x5eed);
    let len = if seq % 97 == 0 {
        max // exercise the largest message now and then
    } else {
        rng.range(8, 300.min(max as u64)) as usize
    };
    buf.resize(len, 0);
    rng.fill(&mut buf[8..]);
    buf[..8].copy_from_slice(&seq.to_le_bytes());
}

fn stream_count() -> u64 {
    std::env::var("MAPIPC_STREAM_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000)
}

/// A channel file of `capacity` bytes in a new temporary directory (which lives as long as
/// the returned `TempDir`), with a sender and a receiver attached in this process.
fn file_channel_with_ends(capacity: usize) -> (tempfile::TempDir, PathBuf, Sender, Receiver) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, capacity).unwrap();
    let (tx, rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
    (dir, path, tx, rx)
}

/// Forks a producer that sends `last` (if any) on `chan` and then idles until killed.
fn fork_idle_producer(chan: &Channel, last: Option<&'static [u8]>) -> common::Child {
    let c2 = chan.clone();
    fork(move || {
        let mut tx = c2.sender().unwrap();
        if let Some(m) = last {
            tx.send(m).unwrap();
        }
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

/// Forks a consumer that attaches to `chan` and then idles until killed.
fn fork_idle_consumer(chan: &Channel) -> common::Child {
    let c2 = chan.clone();
    fork(move || {
        let _rx = c2.receiver().unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

/// A read-write mapping of a whole file: to write into a live channel as another process.
fn map_rw(path: &Path) -> Mmap {
    mapipc::map::MapOptions::new()
        .read_write()
        .map_path(path)
        .unwrap()
}

/// A file-backed channel of `kind` and 4 KiB, in a fresh directory.
fn file_channel_of(kind: Kind) -> (tempfile::TempDir, PathBuf, Channel) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = ChannelOptions::new(kind)
        .capacity(4096)
        .create(&path)
        .unwrap();
    (dir, path, chan)
}

/// Writes `value` over the word `field` bytes into the channel header of the file, as
/// another process would.
fn poke_header(path: &Path, field: u64, value: u64) {
    let map = map_rw(path);
    let hdr = map.find(b"MAPIPCCH").unwrap().expect("the channel header");
    map.write_pod(hdr + field, &value).unwrap();
}

/// Cuts `bytes` off the end of a file.
fn cut(path: &Path, bytes: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(f.metadata().unwrap().len() - bytes).unwrap();
}

/// A forked producer streams 10 million sequence-numbered messages of random sizes through
/// a 256 KiB ring; the parent checks every byte and the order, then sees `Disconnected`.
#[test]
fn fork_stream_ten_million_messages_every_byte_checked() {
    let _g = common::serial();
    let n = stream_count();
    let chan = Channel::anonymous(256 * 1024).unwrap();
    let max = chan.max_message();
    let c2 = chan.clone();
    let mut child = fork(move || {
        let mut tx = c2.sender().unwrap();
        let mut buf = Vec::new();
        for seq in 0..n {
            message(seq, max, &mut buf);
            if tx.send(&buf).is_err() {
                return 1;
            }
        }
        0
    });
    let mut rx = chan.receiver().unwrap();
    let mut want = Vec::new();
    let mut got = Vec::new();
    for seq in 0..n {
        rx.recv_into(&mut got).unwrap();
        message(seq, max, &mut want);
        assert!(got == want, "message {seq} differs");
    }
    child.expect_ok("producer");
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    let st = chan.stat();
    assert_eq!((st.sent, st.received), (n, n));
}

/// The same through a file-backed channel between two unrelated processes: this test
/// binary re-executed as the producer (`MAPIPC_CHILD_ROLE=producer`).
#[test]
fn spawned_producer_streams_through_a_channel_file() {
    if let Ok(path) = std::env::var("MAPIPC_CHILD_PRODUCER") {
        // We are the spawned producer.
        let n: u64 = std::env::var("MAPIPC_CHILD_COUNT")
            .unwrap()
            .parse()
            .unwrap();
        let mut tx = mapipc::channel::Sender::open(&path).unwrap();
        let max = tx.max_message();
        let mut buf = Vec::new();
        for seq in 0..n {
            message(seq, max, &mut buf);
            tx.send(&buf).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 128 * 1024).unwrap();
    let max = chan.max_message();
    let n = stream_count();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "spawned_producer_streams_through_a_channel_file",
            "--nocapture",
        ])
        .env("MAPIPC_CHILD_PRODUCER", &path)
        .env("MAPIPC_CHILD_COUNT", n.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut rx = chan.receiver().unwrap();
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for seq in 0..n {
        match rx.recv_into(&mut got) {
            Ok(()) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("message {seq}: {e}");
            }
        }
        message(seq, max, &mut want);
        assert!(got == want, "message {seq} differs");
    }
    assert!(child.wait().unwrap().success());
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
}

/// The producer is SIGKILLed at a random point, 50 times: the consumer receives exactly
/// the committed prefix (contiguous sequence numbers, every one the child saw acknowledged
/// and at most the one in flight), then `Disconnected`.
#[test]
fn producer_killed_at_random_points_consumer_gets_committed_prefix() {
    let _g = common::serial();
    let seed = seed();
    let mut rng = Rng::new(seed);
    for round in 0..50 {
        let chan = Channel::anonymous(4096).unwrap();
        // Sends that returned, counted by the child in shared memory.
        let acked = Mmap::anonymous(4096).unwrap();
        let max = chan.max_message();
        let c2 = chan.clone();
        let a2 = &acked;
        let mut child = fork(move || {
            let mut tx = c2.sender().unwrap();
            let done = a2.atomic_u64(0).unwrap();
            let mut buf = Vec::new();
            for seq in 0.. {
                message(seq, max, &mut buf);
                if tx.send(&buf).is_err() {
                    return 1;
                }
                done.store(seq + 1, Ordering::Release);
            }
            0
        });
        let mut rx = chan.receiver().unwrap();
        // Killed before it attached, the producer would never have been there: a receiver
        // then waits for one, by design. Kill only an attached producer.
        while chan.stat().producer.attaches == 0 {
            std::thread::yield_now();
        }
        let kill_after = rng.range(0, 3000);
        let mut next = 0u64;
        let (mut want, mut got) = (Vec::new(), Vec::new());
        let mut killed = false;
        loop {
            if !killed && next >= kill_after {
                assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
                killed = true;
            }
            match rx.recv_into(&mut got) {
                Ok(()) => {
                    message(next, max, &mut want);
                    assert!(
                        got == want,
                        "seed {seed} round {round}: message {next} differs"
                    );
                    next += 1;
                }
                Err(RecvError::Disconnected) => {
                    assert!(
                        killed,
                        "seed {seed} round {round}: disconnected before the kill"
                    );
                    break;
                }
                Err(e) => panic!("seed {seed} round {round}: {e}"),
            }
        }
        let acked = acked.atomic_u64(0).unwrap().load(Ordering::Acquire);
        assert!(
            next == acked || next == acked + 1,
            "seed {seed} round {round}: received {next}, child acknowledged {acked}"
        );
        assert_eq!(chan.stat().received, next);
    }
}

/// The consumer is SIGKILLed at random points and restarted; the union of what all
/// consumers processed is every message exactly once, except that the message being
/// processed at a kill (logged, but its `RecvRef` not yet dropped) is delivered again, and
/// only as the first message of the next consumer.
#[test]
fn consumer_killed_and_restarted_no_loss_no_duplicates() {
    let _g = common::serial();
    const N: u64 = 200_000;
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 16 * 1024).unwrap();
    // log[0] = count, log[1..] = sequence numbers processed, in order.
    let log = Mmap::anonymous(((N as usize) + 1000) * 8 + 8).unwrap();
    let max = chan.max_message();

    let c2 = chan.clone();
    let mut producer = fork(move || {
        let mut tx = c2.sender().unwrap();
        let mut buf = Vec::new();
        for seq in 0..N {
            message(seq, max, &mut buf);
            loop {
                match tx.send(&buf) {
                    Ok(()) => break,
                    // The consumer was killed while the ring was full: wait for the next.
                    Err(SendError::Disconnected) => {
                        tx.wait_for_receiver(None);
                    }
                    Err(_) => return 1,
                }
            }
        }
        0
    });

    let mut restarts: Vec<u64> = Vec::new(); // log index where each consumer started
    loop {
        let start = log.atomic_u64(0).unwrap().load(Ordering::Acquire);
        restarts.push(start);
        let l2 = &log;
        let path2 = path.clone();
        let mut consumer = fork(move || {
            let mut rx = match mapipc::channel::Receiver::open(&path2) {
                Ok(rx) => rx,
                Err(_) => return 2,
            };
            let count = l2.atomic_u64(0).unwrap();
            loop {
                let m = match rx.recv_ref() {
                    Ok(m) => m,
                    Err(RecvError::Disconnected) => return 0,
                    Err(_) => return 1,
                };
                let seq: u64 = m.bytes().read_pod(0).unwrap();
                let i = count.load(Ordering::Relaxed);
                l2.write_pod(8 + i * 8, &seq).unwrap();
                count.store(i + 1, Ordering::Release);
                drop(m); // consumed only now
            }
        });
        let logged = log.atomic_u64(0).unwrap().load(Ordering::Acquire);
        if logged >= N || restarts.len() > 40 {
            let e = consumer.wait_or(|| format!("{:?}", chan.stat()));
            assert_eq!(e, Exit::Code(0), "last consumer");
            break;
        }
        // Let it run for a random while, then kill it.
        std::thread::sleep(Duration::from_micros(rng.range(100, 20_000)));
        match consumer.try_wait() {
            Some(e) => {
                assert_eq!(e, Exit::Code(0), "consumer failed");
                break;
            }
            None => {
                consumer.kill9();
            }
        }
    }
    producer.expect_ok("producer");
    // Check the log.
    let count = log.atomic_u64(0).unwrap().load(Ordering::Acquire);
    let mut expected = 0u64;
    let mut redeliveries = 0;
    for i in 0..count {
        let seq: u64 = log.read_pod(8 + i * 8).unwrap();
        if seq == expected {
            expected += 1;
        } else if seq + 1 == expected && restarts.contains(&i) && i > 0 {
            let prev: u64 = log.read_pod(8 + (i - 1) * 8).unwrap();
            assert_eq!(
                prev, seq,
                "seed {seed}: duplicate {seq} at {i} not at a restart"
            );
            redeliveries += 1;
        } else {
            panic!("seed {seed}: log[{i}] = {seq}, expected {expected} (restarts {restarts:?})");
        }
    }
    assert_eq!(expected, N, "seed {seed}: lost messages");
    assert!(redeliveries < restarts.len());
    assert!(
        restarts.len() >= 2,
        "seed {seed}: no consumer was killed: the test tested nothing"
    );
}

/// A producer that died is replaced by a new one on a file-backed channel: the consumer
/// gets everything in order, nothing lost or duplicated.
#[test]
fn new_producer_continues_after_the_old_one_died() {
    let _g = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 8192).unwrap();
    for (first, last) in [(0u64, 100u64), (100, 250), (250, 300)] {
        let p = path.clone();
        let mut child = fork(move || {
            let mut tx = mapipc::channel::Sender::open(&p).unwrap();
            for seq in first..last {
                tx.send(&seq.to_le_bytes()).unwrap();
            }
            // Die without detaching.
            // SAFETY: ends the process at once, skipping destructors on purpose.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            0
        });
        assert_eq!(child.wait(), Exit::Signal(libc::SIGKILL));
    }
    let mut rx = chan.receiver().unwrap();
    for seq in 0..300u64 {
        assert_eq!(rx.recv_pod::<u64>().unwrap(), seq);
    }
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    assert_eq!(chan.stat().producer.attaches, 3);
}

/// Two live producers on one SPSC channel: the second is refused with `Busy`.
#[test]
fn second_live_producer_is_refused() {
    let chan = Channel::anonymous(4096).unwrap();
    let _tx = chan.sender().unwrap();
    match chan.sender() {
        Err(AttachError::Busy { role, .. }) => assert_eq!(role, "producer"),
        other => panic!("expected Busy, got {other:?}"),
    }
    let _rx = chan.receiver().unwrap();
    assert!(matches!(chan.receiver(), Err(AttachError::Busy { .. })));
}

/// A sender blocked on a full ring learns that the receiver was killed.
#[test]
fn blocked_sender_gets_disconnected_when_receiver_dies() {
    let _g = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let mut consumer = fork_idle_consumer(&chan);
    // Wait until the consumer attached.
    while !chan.stat().consumer.alive {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut tx = chan.sender().unwrap();
    while tx.try_send(&[7; 1000]).is_ok() {}
    let c3 = chan.clone();
    let victim = consumer.pid;
    let mut killer = fork(move || {
        // Kill the consumer once the sender is parked on the full ring.
        while !c3.stat().producer.parked {
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: signalling a sibling whose pid is not reaped yet.
        unsafe { libc::kill(victim, libc::SIGKILL) };
        0
    });
    tx.set_wait_strategy(WaitStrategy::Park);
    assert!(matches!(tx.send(&[8; 1000]), Err(SendError::Disconnected)));
    killer.expect_ok("killer");
    assert_eq!(consumer.wait(), Exit::Signal(libc::SIGKILL));
}

/// A receiver waiting on an empty channel learns that the producer was killed.
#[test]
fn blocked_receiver_gets_disconnected_when_producer_dies() {
    let _g = common::serial();
    for strategy in [
        WaitStrategy::Park,
        WaitStrategy::BusyPoll,
        WaitStrategy::default(),
    ] {
        let chan = Channel::anonymous(4096).unwrap();
        let mut producer = fork_idle_producer(&chan, Some(b"last words"));
        let mut rx = chan.receiver().unwrap();
        rx.set_wait_strategy(strategy);
        assert_eq!(rx.recv().unwrap(), b"last words");
        let c3 = chan.clone();
        let pid = producer.pid;
        let mut killer = fork(move || {
            while !c3.stat().consumer.parked && !matches!(strategy, WaitStrategy::BusyPoll) {
                std::thread::sleep(Duration::from_millis(1));
            }
            // SAFETY: signalling the producer, a sibling whose pid is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            0
        });
        assert!(
            matches!(rx.recv(), Err(RecvError::Disconnected)),
            "{strategy:?}"
        );
        killer.expect_ok("killer");
        assert_eq!(producer.wait(), Exit::Signal(libc::SIGKILL));
    }
}

/// A registration word (which process is the producer or the consumer) overwritten with a
/// value no peer can have is reported as corruption, naming the field, not as the other end
/// having left.
#[test]
fn garbage_registration_is_corruption_not_a_departure() {
    let (_dir, path, mut tx, mut rx) = file_channel_with_ends(4096);
    tx.send(b"one").unwrap();
    let map = map_rw(&path);
    let hdr = map.find(b"MAPIPCCH").unwrap().unwrap();
    // The producer's registration (channel header offset 384) and the consumer's (392).
    map.write_pod(hdr + 384, &u32::MAX).unwrap();
    assert_eq!(rx.try_recv().unwrap(), b"one");
    match rx.try_recv() {
        Err(TryRecvError::Corrupted { offset, what, .. }) => {
            assert_eq!(offset, hdr + 384);
            assert!(what.contains("producer registration"), "{what}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    map.write_pod(hdr + 392, &u32::MAX).unwrap();
    let err = loop {
        match tx.try_send(&[7; 100]) {
            Ok(()) => continue,
            Err(e) => break e,
        }
    };
    match err {
        TrySendError::Corrupted { offset, what, .. } => {
            assert_eq!(offset, hdr + 392);
            assert!(what.contains("consumer registration"), "{what}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

/// A third process scribbles random bytes over the header and the ring of a live channel:
/// the ends report `Corrupted` (or receive garbage payloads), and nobody crashes or hangs.
/// Half the writes go to the channel's shared fields (the first 512 bytes of its header:
/// positions, counters, registrations), half anywhere in the channel, so that most rounds
/// hit something an end must notice.
#[test]
fn hostile_writer_gives_corrupted_never_a_crash_or_hang() {
    let _g = common::serial();
    let seed = seed();
    let mut rounds_corrupted = 0;
    for round in 0..5u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chan");
        let chan = Channel::create(&path, 8192).unwrap();
        let c2 = chan.clone();
        let mut producer = fork(move || {
            // The vandal may corrupt the positions before we attach: that is a clean end.
            let Ok(mut tx) = c2.sender() else { return 0 };
            tx.set_check_interval(Duration::from_millis(5));
            let mut seq = 0u64;
            loop {
                match tx.send_timeout(&seq.to_le_bytes(), Duration::from_secs(2)) {
                    Ok(()) => seq += 1,
                    // Noticed the damage: a distinct clean exit.
                    Err(SendTimeoutError::Corrupted { .. }) => return 2,
                    Err(_) => return 0,
                }
            }
        });
        let p2 = path.clone();
        let mut vandal = fork(move || {
            let map = mapipc::map::MapOptions::new()
                .read_write()
                .map_path(&p2)
                .unwrap();
            // The channel's own header (after the region's header and peer table, whose
            // damage is the region's to report: a scribbled peer slot reads as a peer gone).
            let hdr = map.find(b"MAPIPCCH").unwrap().expect("the channel header");
            let mut rng = Rng::new(seed ^ round);
            for i in 0..2000 {
                let end = if i % 2 == 0 {
                    hdr + 512
                } else {
                    map.len() as u64 - 8
                };
                let off = rng.range(hdr, end);
                map.write_pod(off & !7, &rng.next_u64()).unwrap();
                std::thread::yield_now();
            }
            0
        });
        // The vandal may already have scribbled over the positions: attaching then reports
        // the corruption instead of receiving it.
        let mut rx = match chan.receiver() {
            Ok(rx) => rx,
            Err(AttachError::Corrupted { .. }) => {
                rounds_corrupted += 1;
                vandal.expect_ok("vandal");
                let exit = producer.wait();
                assert!(
                    matches!(exit, Exit::Code(0 | 2)),
                    "producer must end cleanly: {exit:?}"
                );
                continue;
            }
            Err(e) => panic!("unexpected error attaching: {e}"),
        };
        rx.set_check_interval(Duration::from_millis(5));
        let mut corrupted = false;
        for _ in 0..1_000_000 {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(_) => {}
                Err(RecvTimeoutError::Corrupted { .. }) => {
                    corrupted = true;
                    break;
                }
                Err(_) => break,
            }
        }
        drop(rx);
        vandal.expect_ok("vandal");
        let exit = producer.wait();
        assert!(
            matches!(exit, Exit::Code(0 | 2)),
            "producer must end cleanly: {exit:?}"
        );
        // Garbage may also land only in payloads: then nobody notices, rightly.
        rounds_corrupted += (corrupted || exit == Exit::Code(2)) as u32;
        // Whatever happened, opening again reports a usable or a corrupted channel, no crash.
        let _ = Channel::open(&path).map(|c| c.stat());
    }
    assert!(
        rounds_corrupted > 0,
        "seed {seed}: 10000 random writes never noticed"
    );
}

/// The channel file is truncated under live ends: an error, never SIGBUS.
#[test]
fn truncated_channel_file_gives_an_error_not_sigbus() {
    let (_dir, path, mut tx, mut rx) = file_channel_with_ends(64 * 1024);
    tx.send(b"before").unwrap();
    assert_eq!(rx.recv().unwrap(), b"before");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let r = tx.send(&[1; 100]);
    assert!(matches!(r, Err(SendError::Truncated { .. })), "{r:?}");
    let r = rx.try_recv();
    assert!(matches!(r, Err(TryRecvError::Truncated { .. })), "{r:?}");
}

/// Punches a hole of `len` bytes at `offset` into the file at `path` (its length stays):
/// what another process (`fallocate --punch-hole`) or a sparse copy (`cp --sparse=always`)
/// leaves in a channel file that was allocated whole.
fn punch_hole(path: &Path, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: a plain syscall on an fd we own.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset as i64, len as i64) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A page of the channel file that the kernel cannot supply (here a hole in the ring on a
/// full tmpfs, where even a read must allocate the page) is reported as what it is, naming
/// the file, the page and the cause, by the receiver that reads it and the sender that
/// writes it, and by ends attaching afterwards. All said `Truncated` before, sending the user
/// after a truncation that never happened (and the ends attaching succeeded).
///
/// Channels are allocated whole at creation (`fallocate`), so one that does not fit is
/// refused there (checked too); the hole is punched afterwards, as another process or a
/// sparse copy of the file would leave it. The child mounts the tmpfs in a mount namespace
/// of its own, which needs root; without it the test says so and checks nothing.
#[test]
fn a_channel_page_the_kernel_cannot_supply_is_not_a_truncation() {
    const CAP: usize = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let name = path.to_str().unwrap().to_string();
    let mut child = fork(|| {
        if let Err(code) = common::mount_private_tmpfs(dir.path(), "256k") {
            return code;
        }
        match Channel::create(dir.path().join("big"), 1 << 20) {
            Err(e @ ChannelCreateError::Region(_)) if e.to_string().contains("big") => {}
            other => {
                eprintln!("a channel larger than its tmpfs: {other:?}");
                return 2;
            }
        }
        let Ok(chan) = Channel::create(&path, CAP) else {
            return 21;
        };
        let ring = chan.region().data_offset() + 4096;
        let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
            return 22;
        };
        if len != ring + CAP as u64 {
            return 23; // the ring does not end the file: the offsets below are wrong
        }
        // Each end maps the file on its own: each meets the hole itself.
        let (Ok(mut tx), Ok(mut rx)) = (Sender::open(&path), Receiver::open(&path)) else {
            return 24;
        };
        for i in 0..150u8 {
            if tx.try_send(&[i; 200]).is_err() {
                return 25;
            }
        }
        // The ring from 16 KiB on loses its pages, messages and free space alike.
        let hole = ring + 16 * 1024;
        if punch_hole(&path, hole, len - hole).is_err() {
            return 26;
        }
        if !common::fill_file_system(dir.path(), "filler") {
            return 27;
        }
        let mut got = 0u8;
        let err = loop {
            match rx.try_recv() {
                Ok(m) if m == [got; 200] => got += 1,
                Ok(_) => return 28,
                Err(e) => break e,
            }
        };
        if got == 0 || got == 150 {
            return 29; // no message before the hole, or none lost in it
        }
        match &err {
            TryRecvError::Truncated { .. } => return 1, // the wrong diagnosis
            TryRecvError::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause: FaultCause::NoSpace,
            } if file.contains(&name) && *file_offset == hole && *file_len == len => {}
            _ => {
                eprintln!("receiver: {err:?}");
                return 3;
            }
        }
        let text = err.to_string();
        if !err.is_fault()
            || !text.contains(&name)
            || !text.contains(&format!("offset {hole}"))
            || !text.contains("could not supply")
            || !text.contains("not truncated")
        {
            eprintln!("{text}");
            return 4;
        }
        // Poisoned: the receiver says the same from now on.
        if rx.try_recv().map_err(|e| e.to_string()) != Err(text) {
            return 5;
        }
        // The sender writes its next message into the hole.
        let err = loop {
            if let Err(e) = tx.try_send(&[0xee; 200]) {
                break e;
            }
        };
        let tail_page = match &err {
            TrySendError::Truncated { .. } => return 1,
            TrySendError::PageUnavailable {
                file,
                file_offset,
                cause: FaultCause::NoSpace,
                ..
            } if file.contains(&name)
                && (hole..len).contains(file_offset)
                && *file_offset % mapipc::os::mem::page_size() as u64 == 0 =>
            {
                *file_offset
            }
            _ => {
                eprintln!("sender: {err:?}");
                return 6;
            }
        };
        // Ends attaching now meet the hole in the walks of their attach (the receiver from
        // its position, the sender from the producer's): they say so at once, rather than
        // hand out messages from a poisoned mapping (each would say it is not intact, and a
        // receiver would consume it) or commit one whose bytes go nowhere.
        drop((rx, tx));
        match Receiver::open(&path) {
            Err(OpenAttachError::Attach(AttachError::PageUnavailable {
                file,
                file_offset,
                cause: FaultCause::NoSpace,
                ..
            })) if file.contains(&name) && file_offset == hole => {}
            other => {
                eprintln!("a receiver attaching: {other:?}");
                return 7;
            }
        }
        match Sender::open(&path) {
            Err(OpenAttachError::Attach(AttachError::PageUnavailable {
                file_offset,
                cause: FaultCause::NoSpace,
                ..
            })) if file_offset == tail_page => 0,
            other => {
                eprintln!("a sender attaching: {other:?}");
                8
            }
        }
    });
    child.expect_ok_unless_no_tmpfs("1: said Truncated, 2-8: see the child");
}

/// Runs `f` on a thread and returns its result, failing the test if it takes more than 30 s
/// (a wait that never ends).
fn within_30s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(Duration::from_secs(30))
        .expect("the wait did not end within 30 s")
}

/// Cuts the last page off a channel file: the pages its ends poll stay, so only the file's
/// size tells (no access faults).
fn cut_last_page(path: &std::path::Path) {
    cut(path, 4096);
}

/// Ends waiting on a channel whose file is then truncated stop waiting with `Truncated`: a
/// blocked receive, a blocked send, and a receiver between producers (`wait_for_producer`),
/// none of which would otherwise ever end (nobody can attach to the file any more).
#[test]
fn waiting_ends_learn_of_a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();

    // A receive blocked on an empty ring, its producer alive.
    let path = dir.path().join("recv");
    let chan = Channel::create(&path, 64 * 1024).unwrap();
    let _tx = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    let cut = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            cut_last_page(&path);
        })
    };
    let r = within_30s(move || rx.recv());
    assert!(matches!(r, Err(RecvError::Truncated { .. })), "{r:?}");
    cut.join().unwrap();

    // A send blocked on a full ring, its receiver alive.
    let path = dir.path().join("send");
    let chan = Channel::create(&path, 4096).unwrap();
    let mut tx = chan.sender().unwrap();
    let _rx = chan.receiver().unwrap();
    while tx.try_send(&[7; 100]).is_ok() {}
    cut_last_page(&path);
    let r = within_30s(move || tx.send(&[7; 100]));
    assert!(matches!(r, Err(SendError::Truncated { .. })), "{r:?}");

    // A receiver whose producer left, waiting for a new one as `mapipc recv --follow` does:
    // the truncation ends the wait, and the receive reports it (not `Disconnected`).
    let path = dir.path().join("follow");
    let chan = Channel::create(&path, 64 * 1024).unwrap();
    let mut rx = chan.receiver().unwrap();
    drop(chan.sender().unwrap());
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    cut_last_page(&path);
    let r = within_30s(move || {
        let woke = rx.wait_for_producer(None);
        (woke, rx.recv())
    });
    assert!(r.0, "wait_for_producer returns on truncation");
    assert!(matches!(r.1, Err(RecvError::Truncated { .. })), "{:?}", r.1);
}

/// Garbage in a file is refused at open with a clear error.
#[test]
fn foreign_and_damaged_files_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, vec![0xab; 16384]).unwrap();
    let e = Channel::open(&plain).unwrap_err();
    assert!(!e.to_string().is_empty());
    let path = dir.path().join("chan");
    Channel::create(&path, 4096).unwrap();
    // Damage the channel's capacity field.
    let chan = Channel::open(&path).unwrap();
    let off = chan.region().data_offset() + 24;
    drop(chan);
    map_rw(&path).write_pod(off, &12345u64).unwrap();
    match Channel::open(&path) {
        Err(ChannelOpenError::BadHeader { what, .. }) => {
            assert!(what.contains("capacity"), "{what}")
        }
        other => panic!("expected BadHeader, got {other:?}"),
    }
    // A file of format version 3 (before subscriber-slot tickets): refused, naming the
    // version this build reads.
    let old = dir.path().join("v3");
    Channel::create(&old, 4096).unwrap();
    let off = Channel::open(&old).unwrap().region().data_offset() + 8;
    map_rw(&old).write_pod(off, &3u32).unwrap();
    match Channel::open(&old) {
        Err(ChannelOpenError::BadHeader { what, .. }) => {
            assert!(
                what.contains("version 4") && what.contains("re-create"),
                "{what}"
            )
        }
        other => panic!("expected BadHeader, got {other:?}"),
    }
}

/// try_send reports Full and never overwrites; messages of bad length are refused.
#[test]
fn back_pressure_and_lengths() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    let max = tx.max_message();
    assert!(matches!(
        tx.try_send(&[]),
        Err(TrySendError::BadLength { len: 0, .. })
    ));
    assert!(matches!(
        tx.try_send(&vec![0; max + 1]),
        Err(TrySendError::BadLength { .. })
    ));
    let mut n = 0u32;
    while tx.try_send(&n.to_le_bytes()).is_ok() {
        n += 1;
    }
    assert!(matches!(tx.try_send(b"x"), Err(TrySendError::Full)));
    for i in 0..n {
        assert_eq!(rx.recv_pod::<u32>().unwrap(), i);
    }
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let big = vec![9u8; max];
    tx.send(&big).unwrap();
    assert_eq!(rx.recv().unwrap(), big);
}

/// Threads in one process: a grant dropped without commit sends nothing; batched commits
/// publish together.
#[test]
fn grants_abort_and_batch() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    {
        let mut g = tx.reserve(10).unwrap();
        g.bytes().fill(1);
    } // dropped: aborted
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    for i in 0..3u8 {
        let mut g = tx.reserve(4).unwrap();
        g.bytes().fill(i);
        g.commit_batched().unwrap();
    }
    // Batched commits are visible to a polling receiver at once; what waits for the flush is
    // the wake-up of a parked one (and the counters).
    assert_eq!(tx.channel().stat().sent, 0, "counted before the flush");
    tx.flush();
    assert_eq!(tx.channel().stat().sent, 3);
    for i in 0..3u8 {
        assert_eq!(rx.recv().unwrap(), vec![i; 4]);
    }
    let mut g = tx.reserve(100).unwrap();
    g.bytes().write_at(0, b"short");
    g.truncate(5);
    g.commit().unwrap();
    assert_eq!(rx.recv().unwrap(), b"short");
}

/// A timeout too large to add to the clock (`Duration::MAX`) means no deadline, not a
/// panic (it used to overflow the `Instant` addition).
#[test]
fn timeouts_beyond_the_clock_mean_no_deadline() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    tx.send_timeout(b"one", Duration::MAX).unwrap();
    tx.send_timeout(b"two", Duration::MAX).unwrap();
    assert_eq!(rx.recv_timeout(Duration::MAX).unwrap(), b"one");
    assert_eq!(rx.recv_ref_timeout(Duration::MAX).unwrap().to_vec(), b"two");
}

/// A read-only open (for inspection) reads a live channel, sees its ends alive through the
/// slot locks, and can neither attach an end nor write.
#[test]
fn read_only_open_inspects_a_live_channel_and_cannot_attach() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro");
    let done = dir.path().join("done");
    Channel::create(&path, 4096).unwrap();
    let mut child = {
        let (path, done) = (path.clone(), done.clone());
        fork(move || {
            let Ok(chan) = Channel::open(&path) else {
                return 2;
            };
            let Ok(mut tx) = chan.sender() else {
                return 3;
            };
            if tx.send(b"one").is_err() || tx.send(b"two").is_err() {
                return 4;
            }
            if common::child_wait_until(|| done.exists()) {
                0
            } else {
                5
            }
        })
    };
    common::wait_until("the child's producer to send", || {
        Channel::open_read_only(&path).is_ok_and(|c| c.stat().sent == 2)
    });
    let look = Channel::open_read_only(&path).unwrap();
    assert!(look.region().is_read_only());
    let st = look.stat();
    assert!(st.producer.attached && st.producer.alive, "{st:?}");
    assert_eq!(st.producer.pid, child.pid as u32);
    assert_eq!((st.sent, st.received, st.bytes_used), (2, 0, 32));
    for attach in [look.sender().map(drop), look.receiver().map(drop)] {
        assert!(
            matches!(
                attach,
                Err(AttachError::Join(
                    mapipc::region::JoinError::ReadOnly { .. }
                ))
            ),
            "{attach:?}"
        );
    }
    assert!(matches!(
        look.region().write_at(0, b"x"),
        Err(mapipc::map::AccessError::NotWritable { .. })
    ));
    std::fs::write(&done, b"").unwrap();
    child.expect_ok("producer child");
    let st = look.stat();
    assert!(!st.producer.alive, "{st:?}");
    // Nothing was consumed by looking.
    let chan = Channel::open(&path).unwrap();
    let mut rx = chan.receiver().unwrap();
    assert_eq!(rx.try_recv().unwrap(), b"one");
}

/// A channel cannot be laid out in a region opened read-only: every kind is refused before
/// anything is written (the MPSC ring used to be initialised through raw pointers first,
/// which crashed on the read-only mapping).
#[test]
fn create_in_a_read_only_region_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    mapipc::region::Region::create(&path, 8192).unwrap();
    for kind in [Kind::Spsc, Kind::Mpsc, Kind::Broadcast] {
        let ro = mapipc::region::RegionOptions::new()
            .read_only(true)
            .open(&path)
            .unwrap();
        let err = ChannelOptions::new(kind)
            .capacity(4096)
            .create_in(ro)
            .unwrap_err();
        assert!(
            matches!(err, ChannelCreateError::ReadOnly { .. }),
            "{kind:?}: {err}"
        );
    }
    // Nothing was written: the region holds no channel.
    assert!(Channel::open(&path).is_err());
}

/// `drain` against a model: random runs of plain and batched sends (through a grant, or
/// `send_batched`) of random lengths (the ring wraps, with padding records, many times),
/// drained with random limits. Every message comes out once, in order, intact; the space
/// goes back (the producer never sees the ring fuller than the model says); the counters
/// agree.
#[test]
fn drain_matches_a_model_across_wraps_and_batches() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let (mut tx, mut rx) = pair(4096).unwrap();
    let max = tx.max_message();
    let mut model = std::collections::VecDeque::<Vec<u8>>::new();
    let (mut sent, mut taken) = (0u64, 0u64);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        // Send while the model says a message of this length surely fits (messages take
        // at most their length + 8, + 56 of line placement, + 8 of padding: keep 128 spare).
        for _ in 0..rng.range(0, 12) {
            let len = if rng.range(0, 10) == 0 {
                rng.range(1, max as u64 / 4) as usize
            } else {
                rng.range(1, 80) as usize
            };
            let used: usize = model.iter().map(|m| m.len() + 128).sum();
            if used + len + 128 > 4096 / 2 {
                break;
            }
            buf.resize(len, 0);
            rng.fill(&mut buf);
            match rng.range(0, 3) {
                0 => tx
                    .try_send(&buf)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}")),
                1 => {
                    let mut g = tx
                        .try_reserve(len)
                        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                    g.bytes().copy_from_slice(&buf);
                    g.commit_batched().unwrap();
                }
                // Written whole inside a batch (header and payload together).
                _ => tx
                    .send_batched(&buf)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}")),
            }
            sent += 1;
            model.push_back(buf.clone());
        }
        tx.flush();
        let limit = rng.range(0, 8) as usize;
        let mut got = Vec::new();
        let n = match rx.drain(limit, |b| got.push(b.to_vec())) {
            Ok(n) => n,
            Err(TryRecvError::Empty) => 0,
            Err(e) => panic!("seed {seed}: {e}"),
        };
        assert_eq!(n, got.len(), "seed {seed}");
        assert_eq!(
            n,
            limit.min(model.len()),
            "seed {seed}: drain takes what is there"
        );
        for m in got {
            assert_eq!(Some(m), model.pop_front(), "seed {seed}");
        }
        taken += n as u64;
        assert_eq!(rx.channel().stat().received, taken, "seed {seed}");
    }
    assert!(sent > 10_000 && taken > 10_000, "seed {seed}: {sent} sent");
    // Everything handed back: an empty ring takes the largest message.
    while rx.drain(usize::MAX, |_| {}).unwrap_or(0) > 0 {}
    tx.try_send(&vec![1; max]).unwrap();
    drop(tx);
    assert!(matches!(
        rx.drain(usize::MAX, |b| assert_eq!(b.len(), max)),
        Ok(1)
    ));
    assert!(matches!(
        rx.drain(usize::MAX, |_| {}),
        Err(TryRecvError::Disconnected)
    ));
}

/// A damaged header after some committed messages: `drain` hands over the intact ones and
/// the next call reports the damage (with its place), not an empty ring, and never the
/// garbage as a message.
#[test]
fn drain_delivers_what_precedes_damage_then_reports_it() {
    let (_dir, path, mut tx, mut rx) = file_channel_with_ends(4096);
    for i in 0..3u64 {
        tx.send(&i.to_le_bytes()).unwrap();
    }
    // Three 16-byte records; at ring index 48 a header of this lap with an impossible
    // length, as a hostile producer could write.
    let map = map_rw(&path);
    let hdr = map.find(b"MAPIPCCH").unwrap().expect("the channel header");
    map.write_pod(hdr + 4096 + 48, &0xffff_fff0u64).unwrap();
    let mut got = Vec::new();
    let r = rx.drain(usize::MAX, |b| got.push(b.read_pod::<u64>(0).unwrap()));
    assert!(matches!(r, Ok(3)), "{r:?}");
    assert_eq!(got, [0, 1, 2]);
    match rx.drain(usize::MAX, |_| panic!("garbage delivered")) {
        Err(TryRecvError::Corrupted { what, .. }) => {
            assert!(what.contains("length"), "{what}")
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

/// Polling calls learn that the other end was killed: `try_send` on a full ring and
/// `try_recv`/`drain` on an empty one say `Full`/`Empty` while it lives and `Disconnected`
/// after its death (they ask the kernel at most once a millisecond or tick, so the test
/// polls until then, under the watchdog).
#[test]
fn polling_ends_learn_of_a_killed_peer() {
    let _s = common::serial();
    // The consumer dies under a polling sender.
    let chan = Channel::anonymous(4096).unwrap();
    let mut consumer = fork_idle_consumer(&chan);
    common::wait_until("the consumer to attach", || chan.stat().consumer.alive);
    let mut tx = chan.sender().unwrap();
    while tx.try_send(&[7; 100]).is_ok() {}
    for _ in 0..10_000 {
        assert!(matches!(tx.try_send(&[7; 100]), Err(TrySendError::Full)));
    }
    assert_eq!(consumer.kill9(), Exit::Signal(libc::SIGKILL));
    common::wait_until("try_send to see the consumer gone", || {
        match tx.try_send(&[7; 100]) {
            Err(TrySendError::Full) => false,
            Err(TrySendError::Disconnected) => true,
            other => panic!("unexpected: {other:?}"),
        }
    });
    // The producer dies under a polling receiver.
    let chan = Channel::anonymous(4096).unwrap();
    let mut producer = fork_idle_producer(&chan, Some(b"last words"));
    common::wait_until("the producer to attach", || chan.stat().producer.alive);
    let mut rx = chan.receiver().unwrap();
    common::wait_until("the message", || rx.drain(1, |_| {}).unwrap() == 1);
    for _ in 0..10_000 {
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        assert!(matches!(rx.drain(8, |_| {}), Ok(0)));
    }
    assert_eq!(producer.kill9(), Exit::Signal(libc::SIGKILL));
    common::wait_until("try_recv to see the producer gone", || {
        match rx.try_recv() {
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => true,
            other => panic!("unexpected: {other:?}"),
        }
    });
    assert!(matches!(
        rx.drain(8, |_| {}),
        Err(TryRecvError::Disconnected)
    ));
}

/// `drain` keeps `stat().received` in step with what it consumed when the callback panics:
/// caught (the next call goes on from the message it panicked on) or unwinding out of the
/// receiver's thread (its drop hands the space back).
#[test]
fn drain_counts_what_it_consumed_when_the_callback_panics() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    for i in 0..10u64 {
        tx.send(&i.to_le_bytes()).unwrap();
    }
    let mut seen = Vec::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rx.drain(usize::MAX, |b| {
            let v = b.read_pod::<u64>(0).unwrap();
            assert_ne!(v, 3, "the callback fails on message 3");
            seen.push(v);
        })
    }));
    assert!(r.is_err());
    let n = rx
        .drain(usize::MAX, |b| seen.push(b.read_pod::<u64>(0).unwrap()))
        .unwrap();
    assert_eq!((n, seen), (7, (0..10).collect::<Vec<_>>()));
    assert_eq!(rx.channel().stat().received, 10);

    let chan = Channel::anonymous(4096).unwrap();
    let mut tx = chan.sender().unwrap();
    for i in 0..10u64 {
        tx.send(&i.to_le_bytes()).unwrap();
    }
    let c2 = chan.clone();
    let r = std::thread::spawn(move || {
        let mut rx = c2.receiver().unwrap();
        rx.drain(usize::MAX, |b| {
            assert_ne!(
                b.read_pod::<u64>(0).unwrap(),
                5,
                "the callback fails on message 5"
            );
        })
    })
    .join();
    assert!(r.is_err());
    let st = chan.stat();
    assert_eq!((st.received, st.bytes_used), (5, 5 * 16));
}

/// A channel file cut under a live receiver where the next record headers were: the
/// receiving calls report `Truncated`, not damage (the cut pages read as zeros, which would
/// otherwise look like a missing header).
#[test]
fn receiving_from_a_cut_file_reports_truncation_not_damage() {
    let (_dir, path, mut tx, mut rx) = file_channel_with_ends(64 * 1024);
    for i in 0..200u64 {
        let mut m = vec![0xa5u8; 200];
        m[..8].copy_from_slice(&i.to_le_bytes());
        tx.send(&m).unwrap();
    }
    cut(&path, 48 * 1024);
    let mut n = 0;
    let first = rx.drain(usize::MAX, |b| {
        assert_eq!(b.len(), 200);
        n += 1;
    });
    assert!(
        matches!(first, Ok(_) | Err(TryRecvError::Truncated { .. })),
        "{first:?}"
    );
    let second = rx.drain(usize::MAX, |_| n += 1);
    assert!(
        matches!(second, Err(TryRecvError::Truncated { .. })),
        "{second:?} after {n} messages"
    );
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Truncated { .. })));
}

/// Receives "first" in place from `rx`, cuts the ring's last 48 KiB of `path` (its first
/// records, the header page and a subscriber table are spared) and touches a cut page, so
/// that the mapping is poisoned, and drops the guard unconfirmed (`is_intact` says false).
fn hold_first_over_a_poisoned_mapping(chan: &Channel, rx: &mut Receiver, path: &Path) {
    let m = rx.recv_ref().unwrap();
    assert_eq!(m.to_vec(), b"first");
    cut(path, 48 * 1024);
    let map = chan.region().as_mmap();
    assert!(map.read_vec(map.len() as u64 - 1, 1).is_err());
    assert!(!m.is_intact());
}

/// Each receive of `rx` (in place, copying, and `drain`, which must not call its callback)
/// reports `Truncated`: its mapping is poisoned.
fn every_receive_reports_truncated(rx: &mut Receiver, what: &str) {
    match rx.recv_ref() {
        Err(RecvError::Truncated { .. }) => {}
        other => panic!("{what}: recv_ref: expected Truncated, got {other:?}"),
    }
    match rx.try_recv_ref() {
        Err(TryRecvError::Truncated { .. }) => {}
        other => panic!("{what}: try_recv_ref: expected Truncated, got {other:?}"),
    }
    match rx.recv_ref_timeout(Duration::from_secs(60)) {
        Err(RecvTimeoutError::Truncated { .. }) => {}
        other => panic!("{what}: recv_ref_timeout: expected Truncated, got {other:?}"),
    }
    match rx.recv() {
        Err(RecvError::Truncated { .. }) => {}
        other => panic!("{what}: recv: expected Truncated, got {other:?}"),
    }
    match rx.drain(usize::MAX, |b| {
        panic!("{what}: drain handed out {:?}", b.to_vec())
    }) {
        Err(TryRecvError::Truncated { .. }) => {}
        other => panic!("{what}: drain: expected Truncated, got {other:?}"),
    }
}

/// A message held in place (`RecvRef`) over a poisoned mapping (the file cut under it, and a
/// cut page touched) was never delivered intact (`is_intact` says so), so dropping the guard
/// does not consume it; every later receive in place, and `drain`, reports `Truncated` rather
/// than hand it out again, and a receiver attaching once the file is whole again gets it (SPSC and MPSC;
/// broadcast below). Before, the drop moved the consumer position past it, in the header
/// page the cut spared: lost to any later receiver.
#[test]
fn a_message_held_in_place_over_a_poisoned_mapping_is_not_consumed() {
    for kind in [Kind::Spsc, Kind::Mpsc] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chan");
        let chan = ChannelOptions::new(kind)
            .capacity(64 * 1024)
            .create(&path)
            .unwrap();
        let whole = std::fs::metadata(&path).unwrap().len();
        let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
        tx.send(b"first").unwrap();
        tx.send(b"second").unwrap();
        hold_first_over_a_poisoned_mapping(&chan, &mut rx, &path);
        // From then on: the error, not the message again.
        every_receive_reports_truncated(&mut rx, &format!("{kind:?}"));
        drop((rx, tx, chan));
        // The file made whole again (the cut bytes read as zeros): a new receiver starts at
        // the message no one received intact.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(whole)
            .unwrap();
        let mut rx = Receiver::open(&path).unwrap();
        assert_eq!(rx.recv().unwrap(), b"first", "{kind:?}");
        assert_eq!(rx.recv().unwrap(), b"second", "{kind:?}");
    }
}

/// The same for a broadcast subscriber, whose position is its own: a record held in place
/// over a poisoned mapping and dropped unconfirmed is not consumed (the position the
/// subscriber publishes stays at it), and every later receive of that subscriber reports
/// `Truncated` rather than hand out the record after it. A subscriber attaching once the file
/// is whole again starts at the oldest record the ring retains, whatever the other
/// subscribers did, so it gets the record either way; what the held position changes is
/// what a lossless producer may reclaim. Lossless: while the faulted subscriber stays
/// attached, a producer filling the ring keeps the record (the subscriber is still owed it),
/// so a subscriber attaching meanwhile gets it. Lossy: the producer never waits for anyone,
/// and keeps nothing for anyone. Once the faulted subscriber detaches, the record is owed to
/// no one, as after any subscriber leaves: broadcast keeps nothing for subscribers to come.
/// Before bdc4ec2, the drop moved and published the subscriber's position past the record:
/// its next `recv_ref` handed out the next record, and a lossless producer reclaimed the
/// record nobody had received intact.
#[test]
fn a_broadcast_record_held_in_place_over_a_poisoned_mapping_is_not_consumed() {
    for policy in [Policy::Lossless, Policy::Lossy] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chan");
        let chan = ChannelOptions::new(Kind::Broadcast)
            .policy(policy)
            .capacity(64 * 1024)
            .create(&path)
            .unwrap();
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut tx = chan.sender().unwrap();
        let mut sub = chan.subscribe(StartAt::Oldest).unwrap();
        tx.send(b"first").unwrap();
        tx.send(b"second").unwrap();
        hold_first_over_a_poisoned_mapping(&chan, &mut sub, &path);
        // From then on: the error, not the next record.
        every_receive_reports_truncated(&mut sub, &format!("{policy:?}"));
        // The producer of the poisoned mapping goes; the subscriber stays attached.
        drop(tx);
        // The file made whole again (the cut bytes read as zeros), and mapped afresh (the
        // first mapping stays poisoned): the subscriber's position is still at the record.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(whole)
            .unwrap();
        let chan2 = Channel::open(&path).unwrap();
        let st = chan2.stat();
        assert_eq!(st.subscribers.len(), 1, "{policy:?}");
        assert_eq!(st.subscribers[0].position, 0, "{policy:?}: position moved");
        let mut tx = chan2.sender().unwrap();
        if policy == Policy::Lossless {
            // A producer filling the ring keeps what the faulted subscriber is owed: each
            // record (8 bytes and the header) takes the space of "first", which it would
            // reclaim as soon as the ring is full.
            let mut sent = 0;
            loop {
                match tx.try_send(&[7; 8]) {
                    Ok(()) => sent += 1,
                    Err(TrySendError::Full) => break,
                    Err(e) => panic!("{policy:?}: try_send: {e:?}"),
                }
                assert!(sent <= 64 * 1024 / 32, "{policy:?}: the ring never filled");
            }
            assert_eq!(sent, 64 * 1024 / 32 - 2, "{policy:?}");
        }
        let mut late = chan2.subscribe(StartAt::Oldest).unwrap();
        assert_eq!(late.recv().unwrap(), b"first", "{policy:?}");
        assert_eq!(late.recv().unwrap(), b"second", "{policy:?}");
        drop(late);
        if policy == Policy::Lossless {
            // The faulted subscriber detached: nothing is owed any more, and the producer
            // reclaims the record for its next message.
            drop(sub);
            tx.try_send(&[8; 8]).unwrap();
            let mut later = chan2.subscribe(StartAt::Oldest).unwrap();
            assert_eq!(later.recv().unwrap(), [7; 8], "{policy:?}");
        }
    }
}

/// `stat()` of a busy, healthy channel never reports its positions inconsistent, whatever
/// the interleaving of its reads with the ends' stores (it read the producer's position
/// first, and a consumer overtaking that reading looked like damage: `mapipc stat` warned
/// "corrupted" now and then).
#[test]
fn stat_of_a_busy_channel_never_says_inconsistent() {
    for kind in [Kind::Spsc, Kind::Mpsc, Kind::Broadcast] {
        let chan = ChannelOptions::new(kind)
            .capacity(4096)
            .anonymous()
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (mut tx, mut rx) = (chan.sender().unwrap(), chan.receiver().unwrap());
        let s1 = stop.clone();
        let producer = std::thread::spawn(move || {
            while !s1.load(Ordering::Relaxed) {
                let _ = tx.send_timeout(&[1u8; 8], Duration::from_millis(10));
            }
        });
        let s2 = stop.clone();
        let consumer = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let _ = rx.drain(usize::MAX, |_| {});
            }
        });
        let bad = (0..50_000).filter(|_| !chan.stat().positions_valid).count();
        stop.store(true, Ordering::Relaxed);
        producer.join().unwrap();
        consumer.join().unwrap();
        assert_eq!(
            bad, 0,
            "{kind:?}: inconsistent positions in {bad} of 50000 stats"
        );
    }
}

/// Positions a hostile process wrote are still flagged by `stat()`: an SPSC consumer
/// position more than a capacity past the producer's, or misaligned; a broadcast oldest
/// record past the producer's position (which the producer's own attach refuses); an MPSC
/// claim hint and consumer position more than a capacity apart (which claims refuse).
#[test]
fn stat_flags_positions_no_honest_end_writes() {
    // (kind, field offset from the channel header, value)
    let cases: [(Kind, u64, u64); 6] = [
        (Kind::Spsc, 128, 3 * 4096), // head three capacities past tail
        (Kind::Spsc, 64, 12),        // tail misaligned
        (Kind::Spsc, 64, u64::MAX - 7),
        (Kind::Broadcast, 328, 16),  // oldest record past tail (0)
        (Kind::Mpsc, 64, 2 * 4096),  // claim hint two capacities past the consumer
        (Kind::Mpsc, 128, 2 * 4096), // consumer two capacities past the claim hint
    ];
    for (kind, field, value) in cases {
        let (_dir, path, chan) = file_channel_of(kind);
        assert!(chan.stat().positions_valid, "{kind:?}: a new channel");
        poke_header(&path, field, value);
        assert!(
            !chan.stat().positions_valid,
            "{kind:?}: word {field} = {value:#x} passes"
        );
    }
}

/// A receiver waiting on an SPSC or MPSC channel whose consumer position another process
/// overwrote reports the corruption: producers refuse to attach to such a channel, so it
/// would otherwise wait for one for ever. Likewise `wait_for_producer` returns, and the
/// receive after it reports the damage.
#[test]
fn a_waiting_receiver_learns_that_its_position_was_overwritten() {
    for kind in [Kind::Spsc, Kind::Mpsc] {
        for via_wait_for_producer in [false, true] {
            let (_dir, path, chan) = file_channel_of(kind);
            let mut rx = chan.receiver().unwrap();
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let waiter = std::thread::spawn(move || {
                if via_wait_for_producer {
                    assert!(
                        rx.wait_for_producer(None),
                        "the wait ended without a reason"
                    );
                }
                done_tx.send(rx.recv()).unwrap();
            });
            std::thread::sleep(Duration::from_millis(50));
            poke_header(&path, 128, 1024 * 1024);
            let got = done_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the receiver still waits a minute after its position was overwritten");
            waiter.join().unwrap();
            match got {
                Err(RecvError::Corrupted { what, .. }) => {
                    assert!(what.contains("consumer position"), "{kind:?}: {what}")
                }
                other => panic!("{kind:?}, wait_for_producer {via_wait_for_producer}: {other:?}"),
            }
            // Producers refuse it too (an MPSC producer at its first claim).
            match chan.sender() {
                Err(_) => assert_eq!(kind, Kind::Spsc),
                Ok(mut tx) => assert!(
                    matches!(tx.try_send(b"x"), Err(TrySendError::Corrupted { .. })),
                    "{kind:?}: a send did not see the damage"
                ),
            }
        }
    }
}
