//! Hostile-peer review: shared words a buggy or hostile process can write, each set to a
//! value the ends must reject (`Corrupted`, a truncation error, `Disconnected`) rather than
//! panic on, loop on, or index the mapping with. Offsets below are those of
//! `channel/layout.rs` (the channel header at offset 0 of the region's data, the ring at
//! 4096). Nothing here asserts on time; the cross-process test runs under the watchdog of
//! `common::Child::wait`.

mod common;

use std::path::Path;
use std::time::Duration;

use mapipc::channel::{
    Channel, ChannelError, ChannelOptions, Kind, Policy, RecvTimeoutError, StartAt, TryRecvError,
    TrySendError,
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
    match chan.sender() {
        Err(ChannelError::Corrupted { .. }) => {}
        Ok(mut tx) => {
            let r = tx.try_send(b"hello");
            assert!(matches!(r, Err(TrySendError::Corrupted { .. })), "{r:?}");
        }
        Err(e) => panic!("unexpected {e}"),
    }
    match chan.receiver() {
        Err(ChannelError::Corrupted { .. }) => {}
        Ok(mut rx) => {
            let r = rx.try_recv();
            assert!(matches!(r, Err(TryRecvError::Corrupted { .. })), "{r:?}");
        }
        Err(e) => panic!("unexpected {e}"),
    }
    // Opening reports it at once.
    let r = Channel::open(&path).map(|_| ());
    assert!(matches!(r, Err(ChannelError::Corrupted { .. })), "{r:?}");
}

/// MPSC positions at the top of the range: a producer's claim must not overflow.
#[test]
fn mpsc_positions_near_the_top_of_the_range_are_corruption() {
    let chan = mpsc(4096);
    poke(&chan, HEAD, HUGE);
    poke(&chan, TAIL, HUGE);
    match chan.sender() {
        Err(ChannelError::Corrupted { .. }) => {}
        Ok(mut tx) => {
            let r = tx.try_send(b"hello");
            assert!(matches!(r, Err(TrySendError::Corrupted { .. })), "{r:?}");
        }
        Err(e) => panic!("unexpected {e}"),
    }
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
            match chan.sender() {
                Err(ChannelError::Corrupted { .. }) => {}
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
