//! The SPSC channel's API semantics at their edges (issue 4): timeouts at the
//! edges, disconnection after drops and kills, batches, grants, Pod helpers, iterators,
//! zero-copy guards under back-pressure, re-attachment and `stat()` after restarts.
//!
//! Cross-process tests fork real processes, each under the watchdog of `common::Child` (or
//! `common::Watchdog` where the parent itself could block); nothing asserts on time.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{fork, seed, Exit, Rng, Watchdog};
use mapipc::channel::{
    pair, AttachError, Channel, ChannelOptions, Kind, OpenAttachError, RecvError, RecvTimeoutError,
    SendError, SendTimeoutError, TryRecvError, TrySendError, WaitStrategy,
};
use mapipc::map::Mmap;

/// Fills the ring of `tx` with 1000-byte messages; returns how many went in.
fn fill(tx: &mut mapipc::channel::Sender) -> usize {
    let mut n = 0;
    while tx.try_send(&[n as u8; 1000]).is_ok() {
        n += 1;
    }
    n
}

/// Zero timeouts: an empty channel times out at once, a ready one delivers; a full ring
/// times out, one with room sends.
#[test]
fn zero_timeouts_poll_once() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    assert!(matches!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    ));
    assert!(matches!(
        rx.recv_ref_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    ));
    tx.send_timeout(b"a", Duration::ZERO).unwrap();
    assert_eq!(rx.recv_timeout(Duration::ZERO).unwrap(), b"a");
    let n = fill(&mut tx);
    assert!(n > 0);
    assert!(matches!(
        tx.send_timeout(&[1; 1000], Duration::ZERO),
        Err(SendTimeoutError::Timeout)
    ));
    assert!(matches!(
        tx.send_timeout(&[1; 1000], Duration::from_nanos(1)),
        Err(SendTimeoutError::Timeout)
    ));
    // Nothing was overwritten.
    for i in 0..n {
        assert_eq!(rx.recv().unwrap(), vec![i as u8; 1000]);
    }
}

/// A timeout that the clock can represent but that is absurdly long (about 146 billion
/// years) must behave like a long wait: no overflow, no panic, and the peer's departure
/// still ends it.
#[test]
fn huge_representable_timeouts_still_end_on_disconnect() {
    let huge = Duration::from_secs(u64::MAX / 4);
    let (mut tx, mut rx) = pair(4096).unwrap();
    tx.send_timeout(b"x", huge).unwrap();
    assert_eq!(rx.recv_timeout(huge).unwrap(), b"x");
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(tx);
    });
    let _dog = Watchdog::new("huge_representable_timeouts", None);
    assert!(matches!(
        rx.recv_timeout(huge),
        Err(RecvTimeoutError::Disconnected)
    ));
    t.join().unwrap();
}

/// A batch committed but not flushed when the sender is dropped is published by the drop:
/// the receiver gets all of it, then `Disconnected`.
#[test]
fn unflushed_batch_is_published_when_the_sender_drops() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    for i in 0..5u8 {
        if i % 2 == 0 {
            let mut g = tx.reserve(3).unwrap();
            g.bytes().fill(i);
            g.commit_batched().unwrap();
        } else {
            tx.send_batched(&[i; 3]).unwrap();
        }
    }
    drop(tx);
    for i in 0..5u8 {
        assert_eq!(rx.recv().unwrap(), vec![i; 3]);
    }
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    let st = rx.channel().stat();
    assert_eq!((st.sent, st.received, st.bytes_used), (5, 5, 0));
}

/// `send_batched` on every kind, past the end of the ring many times: SPSC and broadcast
/// receivers see nothing of a batch before the flush, then all of it in order; MPSC (each
/// message visible once committed) gets the same messages.
#[test]
fn send_batched_delivers_in_order_on_every_kind() {
    for kind in [Kind::Spsc, Kind::Mpsc, Kind::Broadcast] {
        let chan = ChannelOptions::new(kind)
            .capacity(4096)
            .anonymous()
            .unwrap();
        let mut tx = chan.sender().unwrap();
        let mut rx = match kind {
            Kind::Broadcast => chan.subscribe(mapipc::channel::StartAt::Oldest).unwrap(),
            _ => chan.receiver().unwrap(),
        };
        let mut next = 0u32;
        for round in 0..200u32 {
            let n = 1 + round % 7;
            for k in 0..n {
                let len = 4 + ((round * 7 + k * 13) % 90) as usize;
                let mut msg = vec![(next % 251) as u8; len];
                msg[..4].copy_from_slice(&(next + k).to_le_bytes());
                tx.send_batched(&msg).unwrap();
            }
            if kind != Kind::Mpsc {
                assert!(
                    matches!(rx.try_recv(), Err(TryRecvError::Empty)),
                    "{kind:?}: a batch visible before its flush"
                );
            }
            tx.flush();
            for k in 0..n {
                let m = rx.try_recv().unwrap();
                let len = 4 + ((round * 7 + k * 13) % 90) as usize;
                assert_eq!(m.len(), len, "{kind:?}");
                assert_eq!(u32::from_le_bytes(m[..4].try_into().unwrap()), next + k);
                assert!(m[4..].iter().all(|&b| b == (next % 251) as u8), "{kind:?}");
            }
            next += n;
        }
    }
}

/// A producer killed with a batch committed but not flushed: none of the batch is
/// delivered (documented), the messages before it are, then `Disconnected`; a new producer
/// then appends after the committed prefix and the stale batch never shows up.
#[test]
fn killed_with_unflushed_batch_then_new_producer() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 4096).unwrap();
    let flag = Mmap::anonymous(4096).unwrap();
    let (c2, f2) = (chan.clone(), &flag);
    let mut child = fork(move || {
        let mut tx = c2.sender().unwrap();
        tx.send(b"plain-1").unwrap();
        tx.send(b"plain-2").unwrap();
        // Through grants and written whole (`send_batched`), alternately.
        for i in 0..4u8 {
            if i % 2 == 0 {
                let mut g = tx.reserve(40).unwrap();
                g.bytes().fill(0xb0 + i);
                g.commit_batched().unwrap();
            } else {
                tx.send_batched(&[0xb0 + i; 40]).unwrap();
            }
        }
        f2.atomic_u64(0).unwrap().store(1, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let f = flag.atomic_u64(0).unwrap();
    common::wait_until("batch committed", || f.load(Ordering::Acquire) == 1);
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    let mut rx = chan.receiver().unwrap();
    assert_eq!(rx.recv().unwrap(), b"plain-1");
    assert_eq!(rx.recv().unwrap(), b"plain-2");
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    let mut tx = chan.sender().unwrap();
    for len in [8usize, 16, 40, 3] {
        tx.send(&vec![len as u8; len]).unwrap();
    }
    for len in [8usize, 16, 40, 3] {
        assert_eq!(rx.recv().unwrap(), vec![len as u8; len]);
    }
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let st = chan.stat();
    assert_eq!(st.sent, st.received, "{st:?}");
    assert!(st.positions_valid);
}

/// Grants: dropped uncommitted (abort), then more sends; max and max+1 and 0.
#[test]
fn grant_abort_then_sends_and_length_edges() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    let max = tx.max_message();
    for _ in 0..50 {
        let mut g = tx.reserve(max).unwrap();
        g.bytes().fill(0xee);
    }
    assert!(matches!(
        tx.reserve(max + 1),
        Err(SendError::BadLength { len, max: m }) if len == max + 1 && m == max
    ));
    assert!(matches!(
        tx.reserve(0),
        Err(SendError::BadLength { len: 0, .. })
    ));
    assert!(matches!(
        tx.try_reserve(0),
        Err(TrySendError::BadLength { len: 0, .. })
    ));
    for round in 0..20u8 {
        let mut g = tx.reserve(max).unwrap();
        g.bytes().fill(round);
        g.commit().unwrap();
        {
            let mut g = tx.reserve(7).unwrap();
            g.bytes().fill(0xdd);
        }
        assert_eq!(rx.recv().unwrap(), vec![round; max]);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    }
    assert_eq!(tx.channel().stat().sent, 20);
}

/// Pod helpers: a type too large for the channel is refused with BadLength, a zero-sized
/// one too; a length mismatch on receive is reported; alignment does not matter.
#[test]
fn pod_helpers_edges() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    let big = [0u64; 1024]; // 8 KiB > max message
    assert!(matches!(
        tx.send_pod(&big),
        Err(SendError::BadLength { len: 8192, .. })
    ));
    assert!(matches!(
        tx.send_pod(&()),
        Err(SendError::BadLength { len: 0, .. })
    ));
    // A 1-byte message, then a u128 (16-byte aligned type) read from an 8-aligned record.
    tx.send(&[1]).unwrap();
    tx.send_pod(&0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128)
        .unwrap();
    // The 1-byte message is not a u64: reported as such, not as a broken channel, and
    // left for a plain receive.
    let e = rx.recv_pod::<u64>().unwrap_err();
    assert!(
        matches!(
            e,
            RecvError::WrongLength {
                len: 1,
                expected: 8
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_fault());
    assert_eq!(rx.recv().unwrap(), [1]);
    assert_eq!(
        rx.recv_pod::<u128>().unwrap(),
        0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10
    );
}

/// The blocking iterator ends after the last message once the sender is gone, and again
/// when a new sender attaches, sends and leaves.
#[test]
fn iterator_ends_and_resumes_with_a_new_producer() {
    let chan = Channel::anonymous(4096).unwrap();
    let mut tx = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    tx.send(b"1").unwrap();
    drop(tx);
    let v: Vec<_> = rx.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(v, vec![b"1".to_vec()]);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    let mut tx = chan.sender().unwrap();
    tx.send(b"2").unwrap();
    drop(tx);
    let v: Vec<_> = rx.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(v, vec![b"2".to_vec()]);
}

/// A `RecvRef` held while the producer fills the ring: the producer gets `Full` (and a
/// timed send times out), never overwriting the held message.
#[test]
fn held_recv_ref_blocks_the_producer_never_overwritten() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    tx.send(&[0xaa; 1500]).unwrap();
    let m = rx.recv_ref().unwrap();
    let mut n = 1;
    while tx.try_send(&[n as u8; 100]).is_ok() {
        n += 1;
    }
    assert!(matches!(
        tx.send_timeout(&[9; 100], Duration::from_millis(5)),
        Err(SendTimeoutError::Timeout)
    ));
    assert_eq!(m.to_vec(), vec![0xaa; 1500]);
    drop(m);
    for i in 1..n {
        assert_eq!(rx.recv().unwrap(), vec![i as u8; 100]);
    }
}

/// A second producer or consumer in the same process, or in another one, is refused with
/// `Busy` naming the role.
#[test]
fn second_end_in_another_process_is_busy() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 4096).unwrap();
    let _tx = chan.sender().unwrap();
    let _rx = chan.receiver().unwrap();
    let p = path.clone();
    let mut child = fork(move || {
        let tx = mapipc::channel::Sender::open(&p);
        let rx = mapipc::channel::Receiver::open(&p);
        match (tx, rx) {
            (
                Err(OpenAttachError::Attach(AttachError::Busy {
                    role: "producer", ..
                })),
                Err(OpenAttachError::Attach(AttachError::Busy {
                    role: "consumer", ..
                })),
            ) => 0,
            _ => 1,
        }
    });
    child.expect_ok("second ends refused");
}

/// A consumer parked on an empty channel is SIGKILLed; a new consumer attaches. `stat()`
/// must not report the new (not waiting) consumer as parked, nor the dead one.
#[test]
fn stat_parked_is_right_after_a_parked_consumer_was_killed() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let _tx = chan.sender().unwrap();
    let c2 = chan.clone();
    let mut child = fork(move || {
        let mut rx = c2.receiver().unwrap();
        rx.set_wait_strategy(WaitStrategy::Park);
        let _ = rx.recv();
        2
    });
    common::wait_until("consumer parked", || chan.stat().consumer.parked);
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    let st = chan.stat();
    assert!(!st.consumer.alive);
    assert!(!st.consumer.parked, "a dead consumer is not parked: {st:?}");
    let _rx = chan.receiver().unwrap();
    let st = chan.stat();
    assert!(st.consumer.alive);
    assert!(
        !st.consumer.parked,
        "the new consumer is not waiting: {st:?}"
    );
}

/// The same for a producer parked on a full ring.
#[test]
fn stat_parked_is_right_after_a_parked_producer_was_killed() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let _rx = chan.receiver().unwrap();
    let c2 = chan.clone();
    let mut child = fork(move || {
        let mut tx = c2.sender().unwrap();
        tx.set_wait_strategy(WaitStrategy::Park);
        loop {
            if tx.send(&[1; 1000]).is_err() {
                return 2;
            }
        }
    });
    common::wait_until("producer parked", || chan.stat().producer.parked);
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    assert!(!chan.stat().producer.parked, "{:?}", chan.stat());
    let _tx = chan.sender().unwrap();
    assert!(!chan.stat().producer.parked, "{:?}", chan.stat());
}

/// The producer is SIGKILLed at random points while streaming; a consumer in this process
/// receives everything. Afterwards (a new producer attached and sent one more), the
/// counters agree with what was delivered: `sent == received == delivered`.
#[test]
fn sent_counter_survives_producer_kills() {
    let _s = common::serial();
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 1 << 16).unwrap();
    let mut rx = chan.receiver().unwrap();
    let mut delivered = 0u64;
    for round in 0..60 {
        let c2 = chan.clone();
        let mut child = fork(move || {
            let mut tx = c2.sender().unwrap();
            tx.set_wait_strategy(WaitStrategy::BusyPoll);
            loop {
                if tx.send(&[7; 8]).is_err() {
                    return 2;
                }
            }
        });
        // The child's attach is this round's first (each round the parent attaches once too).
        common::wait_until("producer attached", || {
            let p = chan.stat().producer;
            p.alive && p.attaches > 2 * round
        });
        let until = delivered + rng.range(100, 5000);
        while delivered < until {
            rx.recv().unwrap();
            delivered += 1;
        }
        assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL), "round {round}");
        loop {
            match rx.recv() {
                Ok(_) => delivered += 1,
                Err(RecvError::Disconnected) => break,
                Err(e) => panic!("{e}"),
            }
        }
        // The restart: a new producer attaches (and leaves, for the next round's child).
        drop(chan.sender().unwrap());
        let st = chan.stat();
        assert_eq!(
            (st.sent, st.received),
            (delivered, delivered),
            "seed {seed} round {round}: counters after a producer kill and restart"
        );
    }
}

/// The consumer is SIGKILLed at random points while receiving; afterwards `received`
/// agrees with the consumer position (everything sent and consumed is counted once).
#[test]
fn received_counter_survives_consumer_kills() {
    let _s = common::serial();
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 1 << 12).unwrap();
    let mut tx = chan.sender().unwrap();
    for round in 0..150 {
        let c2 = chan.clone();
        let mut child = fork(move || {
            let mut rx = c2.receiver().unwrap();
            rx.set_wait_strategy(WaitStrategy::BusyPoll);
            loop {
                if rx.recv().is_err() {
                    return 2;
                }
            }
        });
        // The child's attach is this round's first (each round the parent attaches once too).
        common::wait_until("consumer attached", || {
            let c = chan.stat().consumer;
            c.alive && c.attaches > 2 * round
        });
        let n = rng.range(100, 5000);
        for _ in 0..n {
            tx.send(&[5; 8]).unwrap();
        }
        assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL), "round {round}");
        // Drain the rest here, then compare.
        let mut rx = chan.receiver().unwrap();
        while rx.try_recv().is_ok() {}
        drop(rx);
        let st = chan.stat();
        assert_eq!(st.bytes_used, 0);
        assert_eq!(
            st.sent, st.received,
            "seed {seed} round {round}: every message consumed once, counters disagree"
        );
    }
}

/// A consumer killed while holding a `RecvRef` gets that message again on re-attach
/// (documented), and nothing else is lost or duplicated.
#[test]
fn consumer_killed_holding_recv_ref_redelivers_that_message_only() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let mut tx = chan.sender().unwrap();
    for i in 0..10u8 {
        tx.send(&[i; 10]).unwrap();
    }
    let flag = Mmap::anonymous(4096).unwrap();
    let (c2, f2) = (chan.clone(), &flag);
    let mut child = fork(move || {
        let mut rx = c2.receiver().unwrap();
        for _ in 0..3 {
            rx.recv().unwrap();
        }
        let m = rx.recv_ref().unwrap();
        f2.atomic_u64(0)
            .unwrap()
            .store(u64::from(m.bytes().get(0).unwrap()) + 1, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let f = flag.atomic_u64(0).unwrap();
    common::wait_until("consumer holds a RecvRef", || {
        f.load(Ordering::Acquire) != 0
    });
    assert_eq!(f.load(Ordering::Acquire), 4);
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    let mut rx = chan.receiver().unwrap();
    for i in 3..10u8 {
        assert_eq!(rx.recv().unwrap(), vec![i; 10]);
    }
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    assert_eq!(chan.stat().received, 10);
}

/// Deterministic form of `sent_counter_survives_producer_kills`: a producer killed after
/// publishing two messages but before storing its count (the count is set back by hand, as
/// such a kill leaves it). The next producer's attach repairs it from the positions.
#[test]
fn producer_count_lost_at_a_kill_is_repaired_on_reattach() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 4096).unwrap();
    let mut rx = chan.receiver().unwrap();
    let flag = Mmap::anonymous(4096).unwrap();
    let (c2, f2) = (chan.clone(), &flag);
    let mut child = fork(move || {
        let mut tx = c2.sender().unwrap();
        for i in 0..3u8 {
            tx.send(&[i; 5]).unwrap();
        }
        f2.atomic_u64(0).unwrap().store(1, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let f = flag.atomic_u64(0).unwrap();
    common::wait_until("three sent", || f.load(Ordering::Acquire) == 1);
    assert_eq!(rx.recv().unwrap(), [0; 5]);
    let sent_off = chan.region().data_offset() + 72;
    let map = mapipc::map::MapOptions::new()
        .read_write()
        .map_path(&path)
        .unwrap();
    assert_eq!(map.read_pod::<u64>(sent_off).unwrap(), 3, "SENT's offset");
    map.write_pod(sent_off, &1u64).unwrap();
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    let _tx = chan.sender().unwrap();
    assert_eq!(chan.stat().sent, 3);
    assert_eq!(rx.recv().unwrap(), [1; 5]);
    assert_eq!(rx.recv().unwrap(), [2; 5]);
    assert_eq!(chan.stat().received, 3);
}

/// The mirror: a consumer killed after handing back two messages' space but before storing
/// its count. The next consumer's attach repairs it.
#[test]
fn consumer_count_lost_at_a_kill_is_repaired_on_reattach() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let chan = Channel::create(&path, 4096).unwrap();
    let mut tx = chan.sender().unwrap();
    for i in 0..5u8 {
        tx.send(&[i; 5]).unwrap();
    }
    let flag = Mmap::anonymous(4096).unwrap();
    let (c2, f2) = (chan.clone(), &flag);
    let mut child = fork(move || {
        let mut rx = c2.receiver().unwrap();
        rx.recv().unwrap();
        rx.recv().unwrap();
        f2.atomic_u64(0).unwrap().store(1, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let f = flag.atomic_u64(0).unwrap();
    common::wait_until("two received", || f.load(Ordering::Acquire) == 1);
    let received_off = chan.region().data_offset() + 136;
    let map = mapipc::map::MapOptions::new()
        .read_write()
        .map_path(&path)
        .unwrap();
    assert_eq!(
        map.read_pod::<u64>(received_off).unwrap(),
        2,
        "RECEIVED's offset"
    );
    map.write_pod(received_off, &0u64).unwrap();
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    let mut rx = chan.receiver().unwrap();
    assert_eq!(chan.stat().received, 2);
    for i in 2..5u8 {
        assert_eq!(rx.recv().unwrap(), [i; 5]);
    }
    let st = chan.stat();
    assert_eq!((st.sent, st.received), (5, 5));
}

/// A consumer killed inside `drain`'s callback: the messages that call handed out are
/// delivered again to the next consumer (documented), the ones before it are not, and
/// nothing is lost.
#[test]
fn consumer_killed_inside_drain_gets_that_call_again() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let mut tx = chan.sender().unwrap();
    for i in 0..10u8 {
        tx.send(&[i]).unwrap();
    }
    let flag = Mmap::anonymous(4096).unwrap();
    let (c2, f2) = (chan.clone(), &flag);
    let mut child = fork(move || {
        let mut rx = c2.receiver().unwrap();
        // A first call that returns: its two messages are consumed for good.
        if !matches!(rx.drain(2, |_| {}), Ok(2)) {
            return 3;
        }
        let f = f2.atomic_u64(0).unwrap();
        let _ = rx.drain(usize::MAX, |m| {
            if m.get(0) == Some(5) {
                f.store(1, Ordering::Release);
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        });
        4
    });
    let f = flag.atomic_u64(0).unwrap();
    common::wait_until("consumer inside drain", || f.load(Ordering::Acquire) == 1);
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    let mut rx = chan.receiver().unwrap();
    for i in 2..10u8 {
        assert_eq!(rx.recv().unwrap(), [i]);
    }
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

/// A producer killed holding a grant it partly wrote: nothing of it is delivered, and a new
/// producer's messages take its place intact.
#[test]
fn producer_killed_mid_reserve_leaves_nothing() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let mut rx = chan.receiver().unwrap();
    let flag = Mmap::anonymous(4096).unwrap();
    let (c2, f2) = (chan.clone(), &flag);
    let mut child = fork(move || {
        let mut tx = c2.sender().unwrap();
        tx.send(b"committed").unwrap();
        let mut g = tx.reserve(1500).unwrap();
        g.bytes().fill(0xee);
        f2.atomic_u64(0).unwrap().store(1, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let f = flag.atomic_u64(0).unwrap();
    common::wait_until("grant written", || f.load(Ordering::Acquire) == 1);
    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
    assert_eq!(rx.recv().unwrap(), b"committed");
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    let mut tx = chan.sender().unwrap();
    tx.send(b"after").unwrap();
    tx.send(&[3; 1500]).unwrap();
    assert_eq!(rx.recv().unwrap(), b"after");
    assert_eq!(rx.recv().unwrap(), vec![3; 1500]);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

/// A busy-polling sender blocked on a full ring learns the receiver was killed; after a new
/// receiver attaches, a full ring is `Full` again, not `Disconnected`, and sends resume.
#[test]
fn busy_polling_sender_sees_receiver_death_then_a_new_receiver() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let c2 = chan.clone();
    let mut consumer = fork(move || {
        let _rx = c2.receiver().unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    common::wait_until("consumer attached", || chan.stat().consumer.alive);
    let mut tx = chan.sender().unwrap();
    tx.set_wait_strategy(WaitStrategy::BusyPoll);
    tx.set_check_interval(Duration::from_millis(5));
    let n = fill(&mut tx);
    let victim = consumer.pid;
    let mut killer = fork(move || {
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: signalling a sibling whose pid is not reaped yet.
        unsafe { libc::kill(victim, libc::SIGKILL) };
        0
    });
    let _dog = Watchdog::new("busy_polling_sender_sees_receiver_death", None);
    assert!(matches!(tx.send(&[1; 1000]), Err(SendError::Disconnected)));
    assert!(matches!(
        tx.try_send(&[1; 1000]),
        Err(TrySendError::Disconnected)
    ));
    killer.expect_ok("killer");
    assert_eq!(consumer.wait(), Exit::Signal(libc::SIGKILL));
    let mut rx = chan.receiver().unwrap();
    assert!(matches!(tx.try_send(&[1; 1000]), Err(TrySendError::Full)));
    assert_eq!(rx.recv().unwrap(), vec![0; 1000]);
    tx.send(&[0xab; 1000]).unwrap();
    for i in 1..n {
        assert_eq!(rx.recv().unwrap(), vec![i as u8; 1000]);
    }
    assert_eq!(rx.recv().unwrap(), vec![0xab; 1000]);
}

/// Two processes attach the consumer (then the producer) of one channel file at the same
/// moment, 30 times each: exactly one wins each time, the other gets `Busy`.
#[test]
fn racing_attaches_admit_exactly_one_end() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    Channel::create(&path, 4096).unwrap();
    for producer in [false, true] {
        for round in 0..30u64 {
            // Words: [0] start, [1] and [2] each child's result (1 won, 2 busy, 3 other
            // error), [3] release.
            let shm = Mmap::anonymous(4096).unwrap();
            let mut kids = Vec::new();
            for k in 1..=2u64 {
                let (p, m) = (path.clone(), &shm);
                kids.push(fork(move || {
                    let w = |i: u64| m.atomic_u64(8 * i).unwrap();
                    while w(0).load(Ordering::Acquire) == 0 {
                        std::hint::spin_loop();
                    }
                    // The winner keeps its end until both children answered.
                    let end: Result<Box<dyn std::any::Any>, OpenAttachError> = if producer {
                        mapipc::channel::Sender::open(&p).map(|e| Box::new(e) as _)
                    } else {
                        mapipc::channel::Receiver::open(&p).map(|e| Box::new(e) as _)
                    };
                    let code = match &end {
                        Ok(_) => 1,
                        Err(OpenAttachError::Attach(AttachError::Busy { .. })) => 2,
                        Err(_) => 3,
                    };
                    w(k).store(code, Ordering::Release);
                    if !common::child_wait_until(|| w(3).load(Ordering::Acquire) == 1) {
                        return 9;
                    }
                    drop(end);
                    0
                }));
            }
            shm.atomic_u64(0).unwrap().store(1, Ordering::Release);
            let res = |k: u64| shm.atomic_u64(8 * k).unwrap().load(Ordering::Acquire);
            common::wait_until("both answered", || res(1) != 0 && res(2) != 0);
            let mut got = [res(1), res(2)];
            got.sort_unstable();
            shm.atomic_u64(24).unwrap().store(1, Ordering::Release);
            for mut kid in kids {
                kid.expect_ok("racing attach");
            }
            assert_eq!(got, [1, 2], "producer {producer} round {round}");
        }
    }
}

// Edge cases found worth keeping by an adversarial review of the API (issue 4).

/// Grants: `truncate` shortens what `bytes()` exposes; a grant dropped in the middle of a
/// batch (also one whose reservation wrapped the ring, padding included) leaves the batch
/// intact; `flush` with nothing pending changes nothing.
#[test]
fn grants_inside_batches_and_idle_flushes() {
    let (mut tx, mut rx) = pair(256).unwrap();
    tx.flush();
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let mut g = tx.reserve(40).unwrap();
    g.bytes().fill(0x11);
    g.truncate(5);
    assert_eq!(g.bytes().len(), 5);
    assert!(!g.bytes().write_at(5, b"x"));
    g.commit().unwrap();
    assert_eq!(rx.recv().unwrap(), vec![0x11; 5]);
    for round in 0..40u8 {
        let mut g = tx.reserve(3 + round as usize % 20).unwrap();
        g.bytes().fill(round);
        g.commit_batched().unwrap();
        {
            // Dropped inside the batch, written with garbage that looks like headers.
            let mut g = tx.reserve(24 + round as usize % 50).unwrap();
            g.bytes().fill(round ^ 0xff);
        }
        let mut g = tx.reserve(8).unwrap();
        g.bytes().fill(round.wrapping_add(1));
        g.commit_batched().unwrap();
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        tx.flush();
        tx.flush();
        assert_eq!(rx.recv().unwrap(), vec![round; 3 + round as usize % 20]);
        assert_eq!(rx.recv().unwrap(), vec![round.wrapping_add(1); 8]);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    }
    let st = tx.channel().stat();
    assert_eq!((st.sent, st.received, st.bytes_used), (81, 81, 0), "{st:?}");
}

/// `RecvRef::leave` keeps the message for the next receive, also across a new consumer;
/// `drain(0, ..)` takes nothing and calls nothing.
#[test]
fn leave_and_drain_zero() {
    let chan = Channel::anonymous(4096).unwrap();
    let mut tx = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    tx.send(b"one").unwrap();
    tx.send(b"two").unwrap();
    let mut calls = 0;
    assert_eq!(rx.drain(0, |_| calls += 1).unwrap(), 0);
    assert_eq!(calls, 0);
    drop(rx.recv_ref().unwrap()); // "one" consumed
    rx.recv_ref().unwrap().leave(); // "two" left
    drop(rx);
    let st = chan.stat();
    assert_eq!((st.sent, st.received), (2, 1), "{st:?}");
    let mut rx = chan.receiver().unwrap();
    assert_eq!(rx.recv().unwrap(), b"two");
    drop(tx);
    assert_eq!(rx.drain(0, |_| calls += 1).unwrap(), 0);
    assert!(matches!(
        rx.drain(5, |_| calls += 1),
        Err(TryRecvError::Disconnected)
    ));
    assert_eq!(calls, 0);
    assert!(rx.try_iter().next().is_none());
    assert!(rx.iter().next().is_none());
    let st = chan.stat();
    assert_eq!((st.sent, st.received, st.bytes_used), (2, 2, 0), "{st:?}");
}

/// Deadlines in the past: a send with room goes through, one on a full ring times out
/// (never waits); a receive with a message delivers it, on an empty channel times out.
#[test]
fn deadlines_in_the_past() {
    let (mut tx, mut rx) = pair(4096).unwrap();
    let past = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(2));
    tx.send_deadline(b"a", past).unwrap();
    assert_eq!(rx.recv_deadline(past).unwrap(), b"a");
    assert!(matches!(
        rx.recv_deadline(past),
        Err(RecvTimeoutError::Timeout)
    ));
    let n = fill(&mut tx);
    let _dog = Watchdog::new("deadlines_in_the_past", None);
    assert!(matches!(
        tx.send_deadline(&[1; 1000], past),
        Err(SendTimeoutError::Timeout)
    ));
    assert!(matches!(
        tx.send_timeout(&[1; 1000], Duration::ZERO),
        Err(SendTimeoutError::Timeout)
    ));
    assert_eq!(rx.try_iter().count(), n);
}

/// Capacities at the limits: below the minimum rounds up, above the maximum (or past what
/// a power of two can hold) is `BadCapacity`, never a panic; the largest message fits an
/// empty ring of every size, one more byte does not.
#[test]
fn capacity_limits_and_largest_messages() {
    for cap in [0usize, 1, 63, 64, 65, 100, 128, 4096, 1 << 16] {
        let (mut tx, mut rx) = pair(cap).unwrap();
        let max = tx.max_message();
        assert_eq!(max, tx.channel().capacity() / 2 - 8, "cap {cap}");
        for round in 0..5u8 {
            tx.send(&vec![round; max]).unwrap();
            assert!(matches!(
                tx.try_send(&vec![0; max + 1]),
                Err(TrySendError::BadLength { .. })
            ));
            assert_eq!(rx.recv().unwrap(), vec![round; max]);
            // An odd-sized message between, to move the ring off its alignment.
            tx.send(&[round; 3]).unwrap();
            assert_eq!(rx.recv().unwrap(), [round; 3]);
        }
    }
    for cap in [(1usize << 40) + 1, usize::MAX, usize::MAX / 2 + 2] {
        assert!(matches!(
            Channel::anonymous(cap),
            Err(mapipc::channel::ChannelCreateError::BadCapacity { .. })
        ));
    }
}

/// A receive blocked before any producer ever attached waits (a timed one times out, not
/// `Disconnected`); a producer that then attaches in another process and is SIGKILLed
/// without sending ends the blocked receive with `Disconnected`; `stat()` agrees.
#[test]
fn receiver_waiting_for_a_first_producer_that_dies_silent() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let mut rx = chan.receiver().unwrap();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    ));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let st = chan.stat();
    assert!(!st.producer.attached && !st.producer.alive, "{st:?}");
    let c2 = chan.clone();
    let mut child = fork(move || {
        let _tx = c2.sender().unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let c3 = chan.clone();
    let pid = child.pid;
    let mut killer = fork(move || {
        common::child_wait_until(|| c3.stat().producer.alive && c3.stat().consumer.parked);
        // SAFETY: signalling a sibling whose pid is not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        0
    });
    rx.set_wait_strategy(WaitStrategy::Park);
    let _dog = Watchdog::new("receiver waiting for a first producer", None);
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    killer.expect_ok("killer");
    assert_eq!(child.wait(), Exit::Signal(libc::SIGKILL));
    let st = chan.stat();
    assert!(!st.producer.alive && !st.producer.parked, "{st:?}");
    assert!(st.consumer.alive && !st.consumer.parked, "{st:?}");
    assert_eq!((st.sent, st.received, st.bytes_used), (0, 0, 0), "{st:?}");
}

/// A sender on a full ring whose receiver never attached waits (times out, not
/// `Disconnected`); a receiver that attaches in another process and is SIGKILLed without
/// receiving ends the blocked send with `Disconnected`; a new receiver then gets every
/// message committed before, in order, and none of the one refused; the sender goes on.
#[test]
fn sender_on_a_full_ring_across_a_killed_receiver() {
    let _s = common::serial();
    let chan = Channel::anonymous(4096).unwrap();
    let mut tx = chan.sender().unwrap();
    let n = fill(&mut tx);
    assert!(matches!(
        tx.try_send(&[0xee; 1000]),
        Err(TrySendError::Full)
    ));
    assert!(matches!(
        tx.send_timeout(&[0xee; 1000], Duration::from_millis(5)),
        Err(SendTimeoutError::Timeout)
    ));
    let c2 = chan.clone();
    let mut child = fork(move || {
        let _rx = c2.receiver().unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let c3 = chan.clone();
    let pid = child.pid;
    let mut killer = fork(move || {
        common::child_wait_until(|| c3.stat().consumer.alive && c3.stat().producer.parked);
        // SAFETY: signalling a sibling whose pid is not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        0
    });
    tx.set_wait_strategy(WaitStrategy::Park);
    let _dog = Watchdog::new("sender across a killed receiver", None);
    {
        assert!(matches!(
            tx.send(&[0xee; 1000]),
            Err(SendError::Disconnected)
        ));
        // Still full and still no receiver: every kind of send says so at once.
        assert!(matches!(
            tx.try_send(&[0xee; 1000]),
            Err(TrySendError::Disconnected)
        ));
        assert!(matches!(
            tx.send_timeout(&[0xee; 1000], Duration::MAX),
            Err(SendTimeoutError::Disconnected)
        ));
    }
    killer.expect_ok("killer");
    assert_eq!(child.wait(), Exit::Signal(libc::SIGKILL));
    let st = chan.stat();
    assert!(!st.consumer.alive && !st.consumer.parked, "{st:?}");
    assert!(st.producer.alive && !st.producer.parked, "{st:?}");
    assert_eq!((st.sent, st.received), (n as u64, 0), "{st:?}");
    let mut rx = chan.receiver().unwrap();
    assert!(tx.wait_for_receiver(None));
    for i in 0..n {
        assert_eq!(rx.recv().unwrap(), vec![i as u8; 1000]);
    }
    tx.send(b"after").unwrap();
    assert_eq!(rx.recv().unwrap(), b"after");
    drop(tx);
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    let st = chan.stat();
    assert_eq!(
        (st.sent, st.received, st.bytes_used),
        (n as u64 + 1, n as u64 + 1, 0)
    );
}

/// `Receiver::open` / `Sender::open` on MPSC and broadcast channel files attach the
/// matching end and deliver; a second `Receiver::open` of the MPSC file is `Busy`.
#[test]
fn open_ends_of_other_kinds() {
    use mapipc::channel::{ChannelOptions, Kind, Receiver, Sender};
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Mpsc, Kind::Broadcast] {
        let path = dir.path().join(format!("{kind}"));
        ChannelOptions::new(kind)
            .capacity(4096)
            .create(&path)
            .unwrap();
        let mut rx = Receiver::open(&path).unwrap();
        let mut tx = Sender::open(&path).unwrap();
        tx.send(b"x").unwrap();
        assert_eq!(rx.recv().unwrap(), b"x", "{kind}");
        match kind {
            Kind::Mpsc => assert!(matches!(
                Receiver::open(&path),
                Err(OpenAttachError::Attach(AttachError::Busy { .. }))
            )),
            _ => {
                // Subscribed at the oldest retained message.
                let mut second = Receiver::open(&path).unwrap();
                tx.send(b"y").unwrap();
                assert_eq!(second.recv().unwrap(), b"x");
                assert_eq!(second.recv().unwrap(), b"y");
                assert_eq!(rx.recv().unwrap(), b"y");
            }
        }
        drop(tx);
        assert!(matches!(rx.recv(), Err(RecvError::Disconnected)), "{kind}");
    }
}

/// Timeouts just inside what the clock can represent (the deadline is an `Instant` a few
/// seconds short of the end of the clock's range): no overflow or panic in the waits'
/// arithmetic, and the peer's departure still ends them.
#[test]
fn timeouts_at_the_edge_of_the_clock() {
    let now = std::time::Instant::now();
    // The largest timeout `Instant` can add, found by halving (a few probes).
    let (mut lo, mut hi) = (Duration::ZERO, Duration::MAX);
    for _ in 0..128 {
        let mid = lo + (hi - lo) / 2;
        if now.checked_add(mid).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let edge = lo.saturating_sub(Duration::from_secs(3600));
    assert!(now.checked_add(edge).is_some());
    let _dog = Watchdog::new("timeouts at the edge of the clock", None);
    let (mut tx, mut rx) = pair(4096).unwrap();
    tx.send_timeout(b"x", edge).unwrap();
    assert_eq!(rx.recv_timeout(edge).unwrap(), b"x");
    let n = fill(&mut tx);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        for i in 0..n {
            assert_eq!(rx.recv_timeout(edge).unwrap(), vec![i as u8; 1000]);
        }
        assert_eq!(rx.recv_timeout(edge).unwrap(), [7; 1000]);
        // The sender leaves while we wait.
        assert!(matches!(
            rx.recv_timeout(edge),
            Err(RecvTimeoutError::Disconnected)
        ));
    });
    tx.set_wait_strategy(WaitStrategy::Park);
    tx.send_timeout(&[7; 1000], edge).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(tx);
    t.join().unwrap();
}

/// Producers SIGKILLed with an unflushed batch, round after round, each new producer
/// sending records of other random sizes (so the dead batch's headers, padding included
/// when it wrapped, lie where the new records' boundaries fall): every committed message is
/// delivered once, in order, byte for byte, and nothing of any dead batch ever is.
#[test]
fn killed_batches_at_random_places_never_surface() {
    let _s = common::serial();
    let chan = Channel::anonymous(1024).unwrap();
    let flag = Mmap::anonymous(4096).unwrap();
    let mut rx = chan.receiver().unwrap();
    let seed = seed();
    let mut rng = Rng::new(seed);
    let msg = |round: u64, i: u64, len: usize| -> Vec<u8> {
        let mut v = vec![(round as u8) ^ (i as u8); len];
        v[0] = round as u8;
        v[len - 1] = i as u8;
        v
    };
    for round in 0..60u64 {
        let plain = rng.range(0, 5);
        let batch = rng.range(1, 5);
        let lens: Vec<usize> = (0..plain + batch)
            .map(|_| rng.range(1, 121) as usize)
            .collect();
        let f = flag.atomic_u64(0).unwrap();
        f.store(0, Ordering::Release);
        let (c2, l2, f2) = (chan.clone(), lens.clone(), &flag);
        let mut child = fork(move || {
            let mut tx = c2.sender().unwrap();
            for (i, &len) in l2.iter().enumerate() {
                let m = msg(round, i as u64, len);
                if (i as u64) < plain {
                    tx.send(&m).unwrap();
                } else {
                    let mut g = tx.reserve(len).unwrap();
                    g.bytes().copy_from_slice(&m);
                    g.commit_batched().unwrap();
                }
            }
            f2.atomic_u64(0).unwrap().store(1, Ordering::Release);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        common::wait_until("round sent", || f.load(Ordering::Acquire) == 1);
        assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));
        for (i, &len) in lens.iter().enumerate().take(plain as usize) {
            assert_eq!(
                rx.try_recv().unwrap(),
                msg(round, i as u64, len),
                "seed {seed} round {round} message {i}"
            );
        }
        // (A non-blocking receive may say `Empty` for a moment: it asks about a killed
        // peer at most every few milliseconds.)
        match rx.recv() {
            Err(RecvError::Disconnected) => {}
            other => panic!("seed {seed} round {round}: {other:?} after the prefix ({lens:?})"),
        }
    }
    let st = chan.stat();
    assert_eq!(st.sent, st.received, "{st:?}");
    assert!(st.positions_valid && st.bytes_used == 0, "{st:?}");
}

/// A grant truncated after its tail was written with a word that passes for a committed
/// header where the shortened record ends (on a fresh ring the positions are known: the
/// record starts at 0, the shortened one ends at 16, where a header of lap 0 is just its
/// length): the receiver gets the short message and then nothing, committed plainly, in a
/// batch, or in a batch followed by a dropped grant.
#[test]
fn truncated_grant_tail_never_passes_for_a_record() {
    for how in 0..3 {
        let (mut tx, mut rx) = pair(4096).unwrap();
        let mut g = tx.reserve(64).unwrap();
        g.bytes().fill(0x5a);
        assert!(g.bytes().write_pod(8, &8u64)); // at ring position 16: "8 bytes, lap 0"
        g.truncate(8);
        match how {
            0 => g.commit().unwrap(),
            _ => {
                g.commit_batched().unwrap();
                if how == 2 {
                    let mut g = tx.reserve(40).unwrap();
                    g.bytes().fill(0);
                    assert!(g.bytes().write_pod(0, &8u64)); // the dropped grant's data
                }
                tx.flush();
            }
        }
        assert_eq!(rx.try_recv().unwrap(), [0x5a; 8], "case {how}");
        assert!(
            matches!(rx.try_recv(), Err(TryRecvError::Empty)),
            "case {how}"
        );
        tx.send(b"next").unwrap();
        assert_eq!(rx.try_recv().unwrap(), b"next", "case {how}");
        assert!(rx.channel().stat().positions_valid);
    }
}

/// The public API against a model, in random mixes: reservations truncated or not, then
/// committed, committed into a batch or dropped; flushes; `try_recv`, `recv_ref` dropped
/// or left, `drain` of a random count (0 included). A full ring publishes the open batch
/// (documented on `reserve`'s wait); a plain commit publishes it too.
#[test]
fn random_public_api_mixes_match_a_model() {
    use std::collections::VecDeque;
    let seed = seed();
    let mut rng = Rng::new(seed);
    for cap in [4096usize, 16384] {
        let (mut tx, mut rx) = pair(cap).unwrap();
        // Up to a quarter of the ring, so that the ring fills and wraps often.
        let max = tx.max_message() as u64 / 2;
        let mut visible: VecDeque<Vec<u8>> = VecDeque::new();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut tag = 0u8;
        for step in 0..20_000 {
            let ctx = || format!("seed {seed} cap {cap} step {step}");
            match rng.range(0, 10) {
                0..=4 => {
                    let len = rng.range(1, max) as usize; // both ends included
                    let mut g = match tx.try_reserve(len) {
                        Ok(g) => g,
                        Err(TrySendError::Full) => {
                            visible.extend(pending.drain(..));
                            continue;
                        }
                        Err(e) => panic!("{e:?} ({})", ctx()),
                    };
                    tag = tag.wrapping_add(1);
                    let mut m: Vec<u8> = (0..len).map(|i| tag ^ (i as u8)).collect();
                    assert!(g.bytes().copy_from_slice(&m));
                    if rng.range(0, 3) == 0 {
                        let short = rng.range(1, len as u64) as usize;
                        g.truncate(short);
                        m.truncate(short);
                    }
                    match rng.range(0, 4) {
                        0 => drop(g),
                        1 => {
                            g.commit_batched().unwrap();
                            pending.push(m);
                        }
                        _ => {
                            g.commit().unwrap();
                            visible.extend(pending.drain(..));
                            visible.push_back(m);
                        }
                    }
                }
                5 => {
                    tx.flush();
                    visible.extend(pending.drain(..));
                }
                6 => match rx.try_recv() {
                    Ok(v) => assert_eq!(Some(v), visible.pop_front(), "{}", ctx()),
                    Err(TryRecvError::Empty) => assert!(visible.is_empty(), "{}", ctx()),
                    Err(e) => panic!("{e:?} ({})", ctx()),
                },
                7 => match rx.try_recv_ref() {
                    Ok(m) => {
                        assert_eq!(Some(&m.to_vec()), visible.front(), "{}", ctx());
                        if rng.range(0, 2) == 0 {
                            m.leave();
                        } else {
                            drop(m);
                            visible.pop_front();
                        }
                    }
                    Err(TryRecvError::Empty) => assert!(visible.is_empty(), "{}", ctx()),
                    Err(e) => panic!("{e:?} ({})", ctx()),
                },
                _ => {
                    let k = rng.range(0, 4) as usize;
                    let mut got = Vec::new();
                    match rx.drain(k, |b| got.push(b.to_vec())) {
                        Ok(n) => assert_eq!(n, got.len(), "{}", ctx()),
                        Err(TryRecvError::Empty) => assert!(got.is_empty(), "{}", ctx()),
                        Err(e) => panic!("{e:?} ({})", ctx()),
                    }
                    assert_eq!(got.len(), k.min(visible.len()), "{}", ctx());
                    for v in got {
                        assert_eq!(Some(v), visible.pop_front(), "{}", ctx());
                    }
                }
            }
        }
        tx.flush();
        visible.extend(pending.drain(..));
        let rest: Vec<Vec<u8>> = rx.try_iter().collect();
        assert_eq!(rest, Vec::from(visible), "seed {seed} cap {cap}");
        let st = rx.channel().stat();
        assert_eq!(
            (st.sent, st.received, st.bytes_used),
            (st.sent, st.sent, 0),
            "{st:?}"
        );
        assert!(st.sent > 1000, "{st:?}");
    }
}
