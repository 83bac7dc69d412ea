//! Hostile peers: shared words a buggy or hostile process can write, each set to a
//! value the ends must reject (`Corrupted`, a truncation error, `Disconnected`) rather than
//! panic on, loop on, or index the mapping with. Offsets below are those of
//! `channel/layout.rs` (the channel header at offset 0 of the region's data, the ring at
//! 4096). Nothing here asserts on time; the cross-process test runs under the watchdog of
//! `common::Child::wait`.

mod common;

use std::path::Path;
use std::time::Duration;

use mapipc::channel::{
    AttachError, Channel, ChannelOpenError, ChannelOptions, Kind, Policy, RecvTimeoutError,
    StartAt, TryRecvError, TrySendError,
};

/// Channel header fields (`channel/layout.rs`, `off`).
const TAIL: u64 = 64;
const NEXT_SEQ: u64 = 88;
const HEAD: u64 = 128;
const OLDEST_VER: u64 = 320;
const OLDEST_POS: u64 = 328;
const OLDEST_SEQ: u64 = 336;
const OLDEST_POS1: u64 = 344;
const OLDEST_SEQ1: u64 = 352;
/// Where the ring starts.
const RING: u64 = 4096;

/// A position no honest end reaches (2^64 bytes would take centuries of traffic), aligned
/// for every kind (MPSC blocks are 32 bytes).
const HUGE: u64 = !31;

/// Writes a word of the channel as a hostile peer would.
fn poke(chan: &Channel, off: u64, v: u64) {
    chan.region().write_pod(off, &v).unwrap();
}

fn mpsc(capacity: usize) -> Channel {
    ChannelOptions::new(Kind::Mpsc)
        .capacity(capacity)
        .max_producers(4)
        .anonymous()
        .unwrap()
}

fn bcast(policy: Policy) -> Channel {
    ChannelOptions::new(Kind::Broadcast)
        .capacity(4096)
        .policy(policy)
        .anonymous()
        .unwrap()
}

/// An MPSC claim word (`channel/mpsc.rs`): state CLAIMED (1), `owner`, one block, the tag of
/// position 0.
fn claimed_by(owner: u64) -> u64 {
    (1 << 61) | (owner << 53) | (1 << 32)
}

/// Attaching a sender is refused as corrupted, or its first send is.
fn assert_send_refused(chan: &Channel, what: &str) {
    match chan.sender() {
        Err(AttachError::Corrupted { .. }) => {}
        Ok(mut tx) => {
            let r = tx.try_send(b"hello");
            assert!(
                matches!(r, Err(TrySendError::Corrupted { .. })),
                "{what}: {r:?}"
            );
        }
        Err(e) => panic!("{what}: unexpected {e}"),
    }
}

/// Attaching a receiver is refused as corrupted, or its first receive is.
fn assert_recv_refused(chan: &Channel) {
    match chan.receiver() {
        Err(AttachError::Corrupted { .. }) => {}
        Ok(mut rx) => {
            let r = rx.try_recv();
            assert!(matches!(r, Err(TryRecvError::Corrupted { .. })), "{r:?}");
        }
        Err(e) => panic!("unexpected {e}"),
    }
}

/// A claim in progress whose owner field names no producer slot (8 bits hold up to 255; the
/// table has at most 192 entries, this channel 4): the consumer waiting on it must not index
/// the endpoint table with it (it panicked: "header field out of range").
#[test]
fn mpsc_claim_owner_beyond_the_table_is_corruption() {
    for owner in [255u64, 192, 191, 4] {
        let chan = mpsc(4096);
        let mut rx = chan.receiver().unwrap();
        rx.set_check_interval(Duration::from_millis(1));
        rx.set_abort_timeout(Duration::from_millis(20));
        poke(&chan, RING, claimed_by(owner));
        let r = rx.recv_timeout(Duration::from_millis(200));
        assert!(
            matches!(r, Err(RecvTimeoutError::Corrupted { offset, .. }) if offset % 4096 == 0),
            "owner {owner}: {r:?}"
        );
        // The polling receive too.
        let r = rx.try_recv();
        assert!(
            matches!(r, Err(TryRecvError::Corrupted { .. })),
            "owner {owner}: {r:?}"
        );
    }
}

/// SPSC positions at the top of the `u64` range (aligned and equal, so "within one capacity
/// of each other"): attaching must report them, not overflow later (debug builds panicked
/// with "attempt to add with overflow" in the first reservation).
#[test]
fn spsc_positions_near_the_top_of_the_range_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 4096).unwrap();
    let mut tx = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    drop((tx.send(b"x"), rx.recv()));
    drop((tx, rx));
    poke(&chan, HEAD, HUGE - 8);
    poke(&chan, TAIL, HUGE - 8);
    assert_send_refused(&chan, "");
    assert_recv_refused(&chan);
    // Opening reports it at once.
    let r = Channel::open(&path).map(|_| ());
    assert!(
        matches!(r, Err(ChannelOpenError::Corrupted { .. })),
        "{r:?}"
    );
}

/// MPSC positions at the top of the range: a producer's claim must not overflow.
#[test]
fn mpsc_positions_near_the_top_of_the_range_are_corruption() {
    let chan = mpsc(4096);
    poke(&chan, HEAD, HUGE);
    poke(&chan, TAIL, HUGE);
    assert_send_refused(&chan, "");
}

/// Broadcast positions and sequence numbers at the top of the range: the producer must not
/// overflow computing where the next record ends or its sequence number.
#[test]
fn broadcast_positions_and_sequence_near_the_top_of_the_range_are_corruption() {
    // (tail and oldest position, next sequence number, oldest sequence number)
    for (pos, next, oldest) in [(HUGE, 0, 0), (0, u64::MAX, 0), (0, u64::MAX, u64::MAX)] {
        for policy in [Policy::Lossless, Policy::Lossy] {
            let chan = bcast(policy);
            poke(&chan, TAIL, pos);
            poke(&chan, NEXT_SEQ, next);
            poke(&chan, OLDEST_VER, 0);
            for (p, s) in [(OLDEST_POS, OLDEST_SEQ), (OLDEST_POS1, OLDEST_SEQ1)] {
                poke(&chan, p, pos);
                poke(&chan, s, oldest);
            }
            let what = format!("{policy} tail {pos:#x} next seq {next:#x} oldest seq {oldest:#x}");
            assert_send_refused(&chan, &what);
        }
    }
}

/// A subscriber that started at the newest message does not know which sequence number
/// comes next, so it takes the one in the record: a garbage one must be refused, not
/// overflow (`seq + 1`) when the record is consumed.
#[test]
fn broadcast_record_sequence_number_at_the_top_is_corruption() {
    for policy in [Policy::Lossless, Policy::Lossy] {
        let chan = bcast(policy);
        let mut tx = chan.sender().unwrap();
        let mut rx = chan.subscribe(StartAt::Newest).unwrap();
        tx.send(b"hello").unwrap();
        // The record's sequence number word, at ring index 0.
        poke(&chan, RING, u64::MAX);
        let r = rx.try_recv();
        assert!(
            matches!(r, Err(TryRecvError::Corrupted { .. })),
            "{policy}: {r:?}"
        );
        // Blocking receives and zero-copy ones go through the same look.
        let r = rx.recv_ref().map(|m| m.len());
        assert!(r.is_err(), "{policy}: {r:?}");
    }
}

/// Cuts a file to `len` bytes, as another process may at any time.
fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// A zero-copy message held while the file is cut: its bytes now read as zeros (the SIGBUS
/// handler maps a throw-away page), and `is_intact`, the call that says whether the bytes
/// read are the message as sent, must say they are not (it said `true` on every kind but
/// a lossy broadcast).
#[test]
fn a_message_held_in_place_across_a_truncation_is_not_intact() {
    for (kind, policy) in [
        (Kind::Spsc, Policy::Lossless),
        (Kind::Mpsc, Policy::Lossless),
        (Kind::Broadcast, Policy::Lossless),
        (Kind::Broadcast, Policy::Lossy),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chan");
        let chan = ChannelOptions::new(kind)
            .capacity(4096)
            .policy(policy)
            .create(&path)
            .unwrap();
        let mut tx = chan.sender().unwrap();
        let mut rx = chan.receiver().unwrap();
        tx.send(b"hello, world").unwrap();
        let m = rx.recv_ref().unwrap();
        assert!(m.is_intact());
        truncate(&path, 0);
        let got = m.to_vec();
        assert!(
            got == b"hello, world" || !m.is_intact(),
            "{kind} {policy}: {got:?} called intact"
        );
        drop(m);
        let r = rx.try_recv();
        assert!(matches!(r, Err(TryRecvError::Truncated { .. })), "{r:?}");
    }
}

/// A lossy subscriber's drain copies each record before the callback sees it: a copy from a
/// cut file (zeros) must not reach the callback as a message. The record's header lies in
/// the ring's first page and its payload in the second, which is cut: the header is found
/// and valid, only the payload reads as zeros.
#[test]
fn a_lossy_drain_never_hands_a_cut_record_to_its_callback() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = ChannelOptions::new(Kind::Broadcast)
        .capacity(8192)
        .policy(Policy::Lossy)
        .create(&path)
        .unwrap();
    let mut tx = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    // A 4080-byte record (16-byte header, 4064 bytes), then one whose header ends the ring's
    // first page.
    tx.send(&[7; 4064]).unwrap();
    tx.send(b"hello, world").unwrap();
    assert_eq!(rx.recv().unwrap(), [7; 4064]);
    let second_page = chan.region().data_offset() + RING + 4096;
    assert_eq!(second_page % 4096, 0, "the ring's pages are the file's");
    truncate(&path, second_page);
    let mut seen = Vec::new();
    let r = rx.drain(usize::MAX, |b| seen.push(b.to_vec()));
    assert!(
        seen.iter().all(|m| m == b"hello, world"),
        "{r:?}: the callback got {seen:?}"
    );
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Truncated { .. })));
}

/// Runs `f` on a thread and returns its result; fails the test if it does not return
/// within the watchdog's limit (a call that never ends). Nothing is asserted about time.
fn within_watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(common::WATCHDOG)
        .expect("the call did not return: it loops on the garbage")
}

/// A broadcast latch whose copy 0 says the record being read was reclaimed while the copy
/// the version points at is garbage: the record's consume fails validation and is not
/// consumed, and the next look found the same intact-looking record again, for ever: even
/// `try_recv` never returned (found by `scribbled_words_never_panic_any_end`).
#[test]
fn a_garbage_broadcast_latch_behind_a_record_is_reported_not_looped_on() {
    for policy in [Policy::Lossless, Policy::Lossy] {
        let r = within_watchdog(move || {
            let chan = bcast(policy);
            let mut tx = chan.sender().unwrap();
            let mut rx = chan.receiver().unwrap();
            tx.send(b"hello").unwrap();
            // Copy 0: reclaimed up to far past our record; the version is odd, so readers
            // take copy 1, whose position is not even aligned.
            poke(&chan, OLDEST_POS, 1 << 20);
            poke(&chan, OLDEST_VER, 1);
            poke(&chan, OLDEST_POS1, 8);
            let first = format!("{:?}", rx.try_recv());
            let second = format!("{:?}", rx.recv_timeout(Duration::from_millis(10)));
            (first, second)
        });
        assert!(r.0.contains("Corrupted"), "{policy}: {r:?}");
        assert!(r.1.contains("Corrupted"), "{policy}: {r:?}");
    }
}

/// Values a scribbler writes: edges of every field's range, and values near the live
/// positions (so that lap, alignment and window checks are hit, not only the magnitude).
fn nasty(rng: &mut common::Rng, near: u64) -> u64 {
    let base = match rng.range(0, 9) {
        0 => 0,
        1 => u64::MAX,
        2 => HUGE,
        3 => 1 << 63,
        4 => near,
        5 => near.wrapping_add(4096),
        6 => near.wrapping_sub(4096),
        7 => u64::from(u32::MAX),
        8 => rng.next_u64(),
        _ => rng.range(0, 1 << 16),
    };
    match rng.range(0, 3) {
        0 => base,
        1 => base.wrapping_add(rng.range(0, 64)),
        2 => base.wrapping_sub(rng.range(0, 64)),
        _ => base ^ (1 << rng.range(0, 63)),
    }
}

/// Randomised in-process scribbler over every kind: live ends, a few messages in flight,
/// then words of the header (positions, counters, latch, registrations, notifier words,
/// the endpoint table) and of the ring near the positions set to nasty values; then every
/// kind of call on both ends, and re-attaching. Nothing may panic; every wait has a
/// deadline (a hang fails under the watchdog).
#[test]
fn scribbled_words_never_panic_any_end() {
    let _watchdog = common::Watchdog::new("scribbled_words_never_panic_any_end", None);
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    // (offsets of header words a peer can write)
    let fields: Vec<u64> = [
        64, 72, 88, 128, 136, 152, 192, 256, 320, 328, 336, 344, 352, 384, 392,
    ]
    .into_iter()
    .chain((0..8).flat_map(|i| [1024 + 16 * i, 1024 + 16 * i + 8]))
    .collect();
    let iterations = 3000;
    for it in 0..iterations {
        let kind = [Kind::Spsc, Kind::Mpsc, Kind::Broadcast][it % 3];
        let policy = if rng.range(0, 1) == 0 {
            Policy::Lossless
        } else {
            Policy::Lossy
        };
        let what = format!("seed {seed} iteration {it} {kind} {policy}");
        let r = std::panic::catch_unwind(|| {
            let mut rng = common::Rng::new(seed ^ it as u64);
            let chan = ChannelOptions::new(kind)
                .capacity(4096)
                .policy(policy)
                .max_producers(4)
                .max_subscribers(4)
                .anonymous()
                .unwrap();
            let mut tx = chan.sender().unwrap();
            let mut rx = chan.receiver().unwrap();
            tx.set_check_interval(Duration::from_millis(1));
            rx.set_check_interval(Duration::from_millis(1));
            rx.set_abort_timeout(Duration::from_millis(2));
            for _ in 0..rng.range(0, 120) {
                let len = rng.range(1, 300) as usize;
                let _ = tx.try_send(&vec![0x5a; len]);
                if rng.range(0, 2) == 0 {
                    let _ = rx.try_recv();
                }
            }
            let mut log = Vec::new();
            let head = chan.region().read_pod::<u64>(HEAD).unwrap();
            let tail = chan.region().read_pod::<u64>(TAIL).unwrap();
            for _ in 0..rng.range(1, 4) {
                let (off, v) = if rng.range(0, 2) > 0 {
                    let f = fields[rng.range(0, fields.len() as u64 - 1) as usize];
                    (f, nasty(&mut rng, tail))
                } else {
                    let p = [head, tail][rng.range(0, 1) as usize];
                    let off = RING + ((p.wrapping_add(rng.range(0, 64) * 8)) & 4095 & !7);
                    let v = match rng.range(0, 2) {
                        // A header that passes for committed at some lap, nasty length.
                        0 => {
                            (rng.range(0, 3) << 33)
                                | (rng.range(0, 1) << 32)
                                | (nasty(&mut rng, 0) & 0xffff_ffff)
                        }
                        // A claim word of some state, owner and size, the tag of `p`.
                        1 => {
                            (rng.range(0, 7) << 61)
                                | (rng.range(0, 255) << 53)
                                | (rng.range(0, 200) << 32)
                                | ((p.wrapping_add(4096) / 32) & 0xffff_ffff)
                        }
                        _ => nasty(&mut rng, p),
                    };
                    (off, v)
                };
                log.push((off, v));
                chan.region().write_pod(off, &v).unwrap();
            }
            let mut ops = || {
                for _ in 0..4 {
                    let _ = rx.try_recv();
                }
                let _ = rx.recv_timeout(Duration::from_millis(2));
                if let Ok(m) = rx.try_recv_ref() {
                    let _ = (m.to_vec(), m.is_intact());
                }
                let _ = rx.drain(usize::MAX, |b| {
                    let _ = b.to_vec();
                });
                let _ = tx.try_send(b"after");
                let _ = tx.send_timeout(&[1; 100], Duration::from_millis(2));
                if let Ok(mut g) = tx.try_reserve(40) {
                    g.bytes().fill(3);
                    let _ = g.commit();
                }
                let _ = chan.stat();
            };
            ops();
            drop((tx, rx));
            let _ = chan.stat();
            if let Ok(mut tx) = chan.sender() {
                let _ = tx.try_send(b"again");
                let _ = tx.send_timeout(b"again", Duration::from_millis(2));
            }
            if let Ok(mut rx) = chan.receiver() {
                rx.set_check_interval(Duration::from_millis(1));
                let _ = rx.try_recv();
                let _ = rx.recv_timeout(Duration::from_millis(2));
            }
            if let Ok(mut rx) = chan.subscribe(StartAt::Newest) {
                let _ = rx.try_recv();
            }
            log
        });
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{what}: panicked: {msg:?}");
        }
    }
}

/// A third process scribbles over a live broadcast channel (its header, latch and table
/// half the time, anywhere the other half) while a forked producer streams and the parent
/// subscribes, under both policies: every end stops with an error or keeps going, none
/// crashes or hangs. (`channel.rs` and `kinds.rs` do this for SPSC and MPSC.)
#[test]
fn broadcast_hostile_writer_never_crashes_or_hangs() {
    let _serial = common::serial();
    let seed = common::seed();
    for (round, policy) in [
        Policy::Lossless,
        Policy::Lossy,
        Policy::Lossless,
        Policy::Lossy,
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chan");
        let chan = ChannelOptions::new(Kind::Broadcast)
            .capacity(8192)
            .policy(policy)
            .max_subscribers(4)
            .create(&path)
            .unwrap();
        let c2 = chan.clone();
        let mut producer = common::fork(move || {
            let Ok(mut tx) = c2.sender() else { return 0 };
            tx.set_check_interval(Duration::from_millis(5));
            for seq in 0u64.. {
                let len = 8 + (seq % 200) as usize;
                let mut m = vec![(seq % 251) as u8; len];
                m[..8].copy_from_slice(&seq.to_le_bytes());
                match tx.send_timeout(&m, Duration::from_secs(2)) {
                    Ok(()) => {}
                    Err(mapipc::channel::SendTimeoutError::Corrupted { .. }) => return 2,
                    Err(_) => return 0,
                }
            }
            0
        });
        let p2 = path.clone();
        let mut vandal = common::fork(move || {
            let map = mapipc::map::MapOptions::new()
                .read_write()
                .map_path(&p2)
                .unwrap();
            let hdr = map.find(b"MAPIPCCH").unwrap().expect("the channel header");
            let mut rng = common::Rng::new(seed ^ round as u64);
            for i in 0..3000 {
                let end = if i % 2 == 0 {
                    hdr + 1024 + 64
                } else {
                    map.len() as u64 - 8
                };
                let off = rng.range(hdr + 64, end) & !7;
                let near = map.load_u64(hdr + TAIL, std::sync::atomic::Ordering::Relaxed);
                let v = nasty(&mut rng, near.unwrap_or(0));
                map.write_pod(off, &v).unwrap();
                std::thread::yield_now();
            }
            0
        });
        // Subscribe again after each error, for as long as the vandal writes.
        let (mut received, mut errors) = (0u64, 0u64);
        while vandal.try_wait().is_none() {
            let start = if errors % 2 == 0 {
                StartAt::Oldest
            } else {
                StartAt::Newest
            };
            let Ok(mut rx) = chan.subscribe(start) else {
                errors += 1;
                continue;
            };
            rx.set_check_interval(Duration::from_millis(5));
            for _ in 0..100_000 {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(m) => {
                        assert!(!m.is_empty() && m.len() <= chan.max_message());
                        received += 1;
                    }
                    Err(RecvTimeoutError::Lagged { .. }) => {}
                    Err(_) => break,
                }
                let _ = rx.drain(16, |b| assert!(b.len() <= chan.max_message()));
            }
            errors += 1;
        }
        eprintln!("{policy}: {received} messages, {errors} subscriptions ended");
        vandal.expect_ok("vandal");
        let exit = producer.wait();
        assert!(
            matches!(exit, common::Exit::Code(0 | 2)),
            "{policy}: producer must end cleanly: {exit:?}"
        );
        let _ = Channel::open(&path).map(|c| c.stat());
    }
}

/// A capacity field claiming more ring than the file holds (with the matching maximum
/// payload, so that only the size is wrong) is refused at open, never mapped past the end.
#[test]
fn a_capacity_beyond_the_file_is_refused_at_open() {
    /// `capacity` and `max_payload` in the channel header (`layout::Fixed`).
    const CAPACITY: u64 = 24;
    const MAX_PAYLOAD: u64 = 40;
    for cap in [8192u64, 1 << 20, 1 << 40] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chan");
        let chan = Channel::create(&path, 4096).unwrap();
        poke(&chan, CAPACITY, cap);
        poke(&chan, MAX_PAYLOAD, cap / 2 - 8);
        let r = Channel::open(&path).map(|_| ());
        assert!(
            matches!(r, Err(ChannelOpenError::BadHeader { .. })),
            "capacity {cap}: {r:?}"
        );
    }
}

/// The producer registration overwritten with the consumer's own peer id after the producer
/// left: that id is alive (it is us), so the consumer waits for a producer that is gone.
/// An id equal to our own can never be the other end's (each end joins the region
/// separately): it is reported as corruption (`recv()` without a deadline waited for ever).
#[test]
fn a_producer_registration_naming_the_consumer_is_not_a_live_producer() {
    let chan = Channel::anonymous(4096).unwrap();
    let tx = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    drop(tx);
    let me = chan.stat().consumer.peer;
    chan.region().write_pod(384, &me).unwrap();
    let r = rx.recv_timeout(Duration::from_millis(200));
    assert!(
        matches!(
            r,
            Err(RecvTimeoutError::Corrupted { .. } | RecvTimeoutError::Disconnected)
        ),
        "{r:?}"
    );
    let r = within_watchdog(move || format!("{:?}", rx.recv()));
    assert!(r.contains("Corrupted"), "{r}");
}

/// The mirror: the consumer registration overwritten with the producer's own peer id, on a
/// full ring (after a consumer came and left, or before any came: that id also keeps a
/// real consumer from attaching). A blocked `send` waited for ever; a `try_send` said
/// `Full` for ever.
#[test]
fn a_consumer_registration_naming_the_producer_is_not_a_live_consumer() {
    for kind in [Kind::Spsc, Kind::Mpsc] {
        for consumer_came in [false, true] {
            let chan = ChannelOptions::new(kind)
                .capacity(4096)
                .anonymous()
                .unwrap();
            let mut tx = chan.sender().unwrap();
            if consumer_came {
                drop(chan.receiver().unwrap());
            }
            while tx.try_send(&[7; 100]).is_ok() {}
            let me = chan.stat().producer.peer;
            chan.region().write_pod(392, &me).unwrap();
            let r = tx.try_send(&[7; 100]);
            assert!(
                matches!(r, Err(TrySendError::Corrupted { .. })),
                "{kind:?}, consumer came {consumer_came}: try_send {r:?}"
            );
            let r = within_watchdog(move || format!("{:?}", tx.send(&[7; 100])));
            assert!(
                r.contains("Corrupted"),
                "{kind:?}, consumer came {consumer_came}: send {r}"
            );
        }
    }
}

/// Found by the `bcast_subscriber` fuzz target: a garbage oldest-record latch (copy 0 past
/// a record `drain` had handed to its callback in place) left the record unconsumed and the
/// damage pending, and `drain` counted the record and then dropped the pending damage:
/// every call handed the same message over again and returned `Ok(1)`, for ever, and never
/// reported the damage. Each call must report it, as `try_recv` does.
#[test]
fn broadcast_drain_reports_a_garbage_latch_rather_than_repeat_a_message() {
    let chan = bcast(Policy::Lossless);
    let mut rx = chan.subscribe(StartAt::Oldest).unwrap();
    let mut tx = chan.sender().unwrap();
    tx.send(b"once").unwrap();
    // Copy 0 (the one an even version points at, and the one a subscriber checks after
    // reading) says the record was reclaimed, at a position no valid latch holds.
    poke(&chan, OLDEST_POS, HUGE);
    for call in 0..5 {
        let mut seen = 0;
        let r = rx.drain(64, |m| {
            assert_eq!(m.to_vec(), b"once");
            seen += 1;
        });
        assert!(
            matches!(r, Err(TryRecvError::Corrupted { .. })),
            "call {call}: {r:?} (callback ran {seen} times)"
        );
        assert!(
            matches!(rx.try_recv(), Err(TryRecvError::Corrupted { .. })),
            "call {call}"
        );
    }
}

/// As above, with the damage met after a message was handled in the same call: that call
/// returns the messages consumed before it, and the next call reports the damage (before
/// the fix the damage was dropped, the damaged record counted, and handed over again by
/// every later call).
#[test]
fn broadcast_drain_reports_damage_met_after_some_messages_at_the_next_call() {
    let chan = bcast(Policy::Lossless);
    let mut rx = chan.subscribe(StartAt::Oldest).unwrap();
    let mut tx = chan.sender().unwrap();
    tx.send(b"first").unwrap();
    tx.send(b"second").unwrap();
    let mut seen = Vec::new();
    let r = rx.drain(64, |m| {
        let m = m.to_vec();
        if m == b"second" {
            // A hostile peer damages the latch while the record is read in place.
            poke(&chan, OLDEST_POS, HUGE);
        }
        seen.push(m);
    });
    assert!(
        matches!(r, Ok(1)),
        "only the first message was consumed: {r:?}"
    );
    assert_eq!(seen, [b"first".to_vec(), b"second".to_vec()]);
    for call in 0..3 {
        let r = rx.drain(64, |_| {});
        assert!(
            matches!(r, Err(TryRecvError::Corrupted { .. })),
            "call {call}: {r:?}"
        );
    }
}

/// The garbage latch of the test above is there before `drain` looks: the record is then
/// known reclaimed (or the latch damaged) before the callback would see it. `try_recv`
/// never hands it over; `drain` must not either (it handed it to the callback at every
/// call, each call then reporting the damage).
#[test]
fn broadcast_drain_never_hands_over_a_record_already_found_reclaimed() {
    let chan = bcast(Policy::Lossless);
    let mut rx = chan.subscribe(StartAt::Oldest).unwrap();
    let mut tx = chan.sender().unwrap();
    tx.send(b"once").unwrap();
    poke(&chan, OLDEST_POS, HUGE);
    let mut seen = 0;
    for call in 0..5 {
        let r = rx.drain(64, |_| seen += 1);
        assert!(
            matches!(r, Err(TryRecvError::Corrupted { .. })),
            "call {call}: {r:?}"
        );
    }
    assert_eq!(seen, 0, "the callback saw a record already known reclaimed");
}
