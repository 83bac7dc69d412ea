//! Semantics of the MPSC and broadcast kinds that the other suites do not pin down: a
//! lossless producer and a subscriber that joins late, lag accounting of a subscriber that
//! started at the newest message, stray aborts of a live producer's claim, the message
//! counts of `stat`. Cross-process parts run in forked children under the watchdog of
//! `common::Child::wait`; nothing asserts on time.

mod common;
mod kinds_util;

use std::time::Duration;

use common::{fork, Watchdog};
use kinds_util::{bcast, mpsc};
use mapipc::channel::{
    Policy, Receiver, RecvError, RecvTimeoutError, SendError, StartAt, TryRecvError, TrySendError,
};
use proptest::prelude::*;

/// Message `i`: its number, then padding to 100 bytes (128-byte records: 32 per 4 KiB).
fn numbered(i: u64) -> Vec<u8> {
    let mut m = i.to_le_bytes().to_vec();
    m.resize(100, i as u8);
    m
}

fn number(m: &[u8]) -> u64 {
    u64::from_le_bytes(m[..8].try_into().unwrap())
}

/// Lossless: a subscriber that joins at the oldest retained message while the producer
/// runs must not lose any of the messages it starts from. The producer had scanned the
/// subscribers when the only one had read everything, and cached that minimum: it then
/// reclaimed a whole ring of records without looking again, under the new subscriber.
#[test]
fn lossless_late_subscriber_from_oldest_loses_nothing() {
    let chan = bcast(4096, Policy::Lossless);
    let mut tx = chan.sender().unwrap();
    let mut early = chan.subscribe(StartAt::Oldest).unwrap();
    let mut next = 0u64;
    // Fill the ring, let the early subscriber read everything, send one more (the producer
    // scans the subscribers once here).
    while tx.try_send(&numbered(next)).is_ok() {
        next += 1;
    }
    for i in 0..next {
        assert_eq!(number(&early.try_recv().unwrap()), i);
    }
    tx.try_send(&numbered(next)).unwrap();
    next += 1;
    assert_eq!(number(&early.try_recv().unwrap()), next - 1);
    // Join at the oldest retained message: the producer must now wait for us.
    let mut late = chan.subscribe(StartAt::Oldest).unwrap();
    let mut sent_after = 0;
    loop {
        match tx.try_send(&numbered(next)) {
            Ok(()) => {
                next += 1;
                sent_after += 1;
                assert!(
                    sent_after <= 64,
                    "the lossless producer never waited for us"
                );
            }
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let first = number(&late.try_recv().unwrap());
    let mut want = first + 1;
    loop {
        match late.try_recv() {
            Ok(m) => {
                assert_eq!(number(&m), want);
                want += 1;
            }
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("lossless subscriber: {e}"),
        }
    }
    assert_eq!(want, next);
}

/// Lossy: a subscriber started at the newest message and lapped before it read anything
/// is told exactly how many it missed (delivered + missed == sent since it subscribed).
#[test]
fn lossy_subscriber_from_newest_lapped_before_its_first_read_counts_the_loss() {
    let chan = bcast(4096, Policy::Lossy);
    let mut tx = chan.sender().unwrap();
    for i in 0..10 {
        tx.send(&numbered(i)).unwrap();
    }
    let mut rx = chan.subscribe(StartAt::Newest).unwrap();
    let sent = 100u64;
    for i in 10..10 + sent {
        tx.send(&numbered(i)).unwrap();
    }
    let (mut delivered, mut missed) = (0u64, 0u64);
    let mut last = None;
    loop {
        match rx.try_recv() {
            Ok(m) => {
                let n = number(&m);
                assert!(last.map_or(true, |l| n > l));
                last = Some(n);
                delivered += 1;
            }
            Err(TryRecvError::Lagged { missed: k }) => missed += k,
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        (delivered + missed, last),
        (sent, Some(10 + sent - 1)),
        "delivered {delivered}, missed {missed}"
    );
}

/// MPSC: producers come and go (each attaches, sends one message, leaves) while the
/// consumer polls with `try_recv`. Between two of them every producer is gone, and a poll
/// that sees that aborts the claims in progress at once; a producer that attaches and
/// claims right after that look is alive, and its claim must not be aborted (only the
/// abort timeout may abort a live producer's claim).
#[test]
fn mpsc_a_producer_attaching_while_all_others_are_gone_keeps_its_claim() {
    let _serial = common::serial();
    let n = std::env::var("MAPIPC_KINDS_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000u64)
        .min(20_000);
    let chan = mpsc(64 * 1024, 4);
    let mut rx = chan.receiver().unwrap();
    let c = chan.clone();
    let mut kid = fork(move || {
        let mut aborted = 0;
        for i in 0..n {
            let Ok(mut tx) = c.sender() else { return 2 };
            match tx.send(&i.to_le_bytes()) {
                Ok(()) => {}
                Err(SendError::Aborted) => aborted += 1,
                Err(_) => return 3,
            }
        }
        i32::from(aborted > 0)
    });
    let _watchdog = Watchdog::new("mpsc producers coming and going", Some(kid.pid));
    let mut got = Vec::new();
    let mut done = false;
    loop {
        match rx.try_recv() {
            Ok(m) => got.push(u64::from_le_bytes(m[..8].try_into().unwrap())),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) if done => break,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                done = kid.try_wait().is_some();
            }
            Err(e) => panic!("{e}"),
        }
    }
    let code = kid.exit_code();
    let aborted = chan.stat().aborted;
    assert_eq!(
        (code, aborted),
        (0, 0),
        "a live producer's claim was aborted ({aborted} records; child exit {code})"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert_eq!(got.len() as u64, n);
}

/// A lossy subscriber's view in the model: the sequence number it must account for next.
struct Tracked {
    rx: Receiver,
    next: u64,
}

impl Tracked {
    fn delivered(&mut self, n: u64) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            n,
            self.next,
            "delivered out of order (or a loss not reported)"
        );
        self.next += 1;
        Ok(())
    }

    fn lagged(&mut self, missed: u64) -> Result<(), TestCaseError> {
        prop_assert!(missed > 0, "Lagged {{ missed: 0 }}");
        self.next += missed;
        Ok(())
    }
}

/// Sends message number `n` (8-byte number, then `extra` bytes).
fn send_numbered(tx: &mut mapipc::channel::Sender, n: u64, extra: u8) {
    let mut m = n.to_le_bytes().to_vec();
    m.resize(8 + extra as usize, n as u8);
    tx.send(&m).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Lossy: whatever mix of `try_recv`, `recv_timeout`, `drain`, `recv_ref` (held while
    /// the producer laps it, then checked with `is_intact`), with subscribers joining at the
    /// oldest or newest message while the producer runs, each subscriber receives its
    /// messages in order and is told exactly how many it missed: at the end, delivered +
    /// missed == every message sent since it joined.
    #[test]
    fn lossy_accounting_is_exact_through_every_receive(
        ops in proptest::collection::vec((0u8..8, 0u8..4, 0u8..200), 1..300)
    ) {
        let chan = bcast(4096, Policy::Lossy);
        let mut tx = chan.sender().unwrap();
        let mut sent = 0u64;
        let mut subs = vec![Tracked { rx: chan.subscribe(StartAt::Oldest).unwrap(), next: 0 }];
        for (op, who, arg) in ops {
            let i = who as usize % subs.len();
            match op {
                0 | 1 => {
                    for _ in 0..=arg % 8 {
                        send_numbered(&mut tx, sent, arg);
                        sent += 1;
                    }
                }
                2 => match subs[i].rx.try_recv() {
                    Ok(m) => subs[i].delivered(number(&m))?,
                    Err(TryRecvError::Lagged { missed }) => subs[i].lagged(missed)?,
                    Err(TryRecvError::Empty) => prop_assert_eq!(subs[i].next, sent),
                    Err(e) => prop_assert!(false, "{}", e),
                },
                3 => match subs[i].rx.recv_timeout(Duration::ZERO) {
                    Ok(m) => subs[i].delivered(number(&m))?,
                    Err(RecvTimeoutError::Lagged { missed }) => subs[i].lagged(missed)?,
                    Err(RecvTimeoutError::Timeout) => prop_assert_eq!(subs[i].next, sent),
                    Err(e) => prop_assert!(false, "{}", e),
                },
                4 => {
                    let mut got = Vec::new();
                    match subs[i].rx.drain(1 + arg as usize % 40, |b| {
                        got.push(b.read_pod::<u64>(0).unwrap())
                    }) {
                        Ok(n) => prop_assert_eq!(n, got.len()),
                        Err(TryRecvError::Lagged { missed }) => {
                            prop_assert!(got.is_empty());
                            subs[i].lagged(missed)?;
                        }
                        Err(TryRecvError::Empty) => prop_assert!(got.is_empty()),
                        Err(e) => prop_assert!(false, "{}", e),
                    }
                    for n in got {
                        subs[i].delivered(n)?;
                    }
                }
                5 => {
                    // Held while the producer sends `arg % 40` more (maybe lapping it).
                    let t = &mut subs[i];
                    let got = match t.rx.try_recv_ref() {
                        Ok(m) => {
                            let n = m.bytes().read_pod::<u64>(0).unwrap();
                            for _ in 0..arg % 40 {
                                send_numbered(&mut tx, sent, arg);
                                sent += 1;
                            }
                            Ok(m.is_intact().then_some(n))
                        }
                        Err(e) => Err(e),
                    };
                    match got {
                        Ok(Some(n)) => t.delivered(n)?,
                        Ok(None) => {}
                        Err(TryRecvError::Lagged { missed }) => t.lagged(missed)?,
                        Err(TryRecvError::Empty) => prop_assert_eq!(t.next, sent),
                        Err(e) => prop_assert!(false, "{}", e),
                    }
                }
                6 if subs.len() < 4 => subs.push(Tracked {
                    rx: chan.subscribe(StartAt::Newest).unwrap(),
                    next: sent,
                }),
                7 if subs.len() > 1 => {
                    subs.remove(i);
                }
                _ => {}
            }
        }
        for t in &mut subs {
            loop {
                match t.rx.try_recv() {
                    Ok(m) => t.delivered(number(&m))?,
                    Err(TryRecvError::Lagged { missed }) => t.lagged(missed)?,
                    Err(TryRecvError::Empty) => break,
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
            prop_assert_eq!(t.next, sent, "delivered + missed != sent");
        }
        prop_assert_eq!(chan.stat().sent, sent);
    }
}

/// Lossless, across processes: subscribers join (at the oldest or the newest message) and
/// leave (cleanly, or killed) while the producer runs. Each one receives a gap-free run of
/// messages, never `Lagged`, and the producer finishes (a killed subscriber does not hold
/// it for good).
#[test]
fn lossless_subscribers_joining_and_leaving_under_a_running_producer_lose_nothing() {
    let _serial = common::serial();
    let n: u64 = 60_000;
    let chan = bcast(4096, Policy::Lossless);
    let c = chan.clone();
    let mut producer = fork(move || {
        let mut tx = c.sender().unwrap();
        // Start once the first subscriber is there: the run is paced by subscribers.
        if !common::child_wait_until(|| !c.stat().subscribers.is_empty()) {
            return 2;
        }
        for i in 0..n {
            if tx.send(&numbered(i)).is_err() {
                return 1;
            }
        }
        0
    });
    let mut subs = Vec::new();
    for j in 0..10u64 {
        common::wait_until("the producer's progress", || {
            chan.stat().sent >= j * n / 10 || producer.try_wait().is_some()
        });
        let c = chan.clone();
        let start = if j % 2 == 0 {
            StartAt::Oldest
        } else {
            StartAt::Newest
        };
        let kid = fork(move || {
            let mut rx = c.subscribe(start).unwrap();
            let mut last: Option<u64> = None;
            for _ in 0..n / 4 {
                match rx.recv() {
                    Ok(m) => {
                        let k = number(&m);
                        if last.is_some_and(|l| k != l + 1) {
                            return 2; // a gap, or a message twice
                        }
                        last = Some(k);
                    }
                    Err(RecvError::Disconnected) => break,
                    Err(RecvError::Lagged { .. }) => return 3,
                    Err(_) => return 4,
                }
            }
            0
        });
        subs.push((j, kid));
        // Every third one is killed while it reads.
        if j % 3 == 2 {
            let (_, kid) = subs.last_mut().unwrap();
            common::wait_until("a subscriber to join", || {
                chan.stat()
                    .subscribers
                    .iter()
                    .any(|s| s.end.pid == kid.pid as u32)
                    || kid.try_wait().is_some()
            });
            kid.kill9();
        }
    }
    producer.expect_ok("lossless producer");
    for (j, kid) in &mut subs {
        if *j % 3 == 2 {
            continue;
        }
        let code = kid.exit_code();
        assert_eq!(
            code, 0,
            "subscriber {j}: 2 = gap, 3 = Lagged on a lossless channel"
        );
    }
}

/// MPSC `stat`: a producer killed after committing a message (here: committed batched, not
/// flushed) leaves the message in the ring, and the consumer receives it; `sent` must
/// still count it (it may never be below `received`).
#[test]
fn mpsc_stat_counts_a_message_committed_by_a_producer_killed_before_its_flush() {
    let _serial = common::serial();
    let chan = mpsc(64 * 1024, 4);
    let mut rx = chan.receiver().unwrap();
    let c = chan.clone();
    let mut kid = fork(move || {
        let mut tx = c.sender().unwrap();
        let mut g = tx.reserve(8).unwrap();
        g.bytes().write_at(0, &7u64.to_le_bytes());
        if g.commit_batched().is_err() {
            return 1;
        }
        // SAFETY: raise(3) has no memory-safety preconditions; we die here, as if killed.
        unsafe { libc::raise(libc::SIGKILL) };
        2
    });
    assert_eq!(kid.wait(), common::Exit::Signal(libc::SIGKILL));
    assert_eq!(number(&rx.recv().unwrap()), 7);
    let st = chan.stat();
    assert!(
        st.sent >= st.received,
        "sent {} < received {}",
        st.sent,
        st.received
    );
}

/// Message `i` of the abort tests: its number, then padding to 48 bytes (64-byte records).
fn small(i: u64) -> Vec<u8> {
    let mut m = i.to_le_bytes().to_vec();
    m.resize(48, i as u8);
    m
}

/// The part of the abort tests before the slow owner writes: `fast` sends (and `rx`
/// receives at once) the messages that fit in the rest of the first lap, then, without
/// receiving, the next lap's first four, which would lie over the 4 blocks (a 100-byte
/// grant) claimed at position 0 and aborted by `rx` on its first receive (abort timeout:
/// 10 ms). Returns the next message number.
fn lap_past_an_aborted_grant(fast: &mut mapipc::channel::Sender, rx: &mut Receiver) -> u64 {
    rx.set_abort_timeout(Duration::from_millis(10));
    let mut next = 0;
    // 128 + 62 * 64 = 4096: the first lap.
    while next < 62 {
        fast.try_send(&small(next)).unwrap();
        assert_eq!(rx.recv().unwrap(), small(next));
        next += 1;
    }
    // The next lap: these must not go where the owner of the aborted claim may still write.
    while next < 66 {
        match fast.try_send(&small(next)) {
            Ok(()) => next += 1,
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        next, 62,
        "the next lap went over the aborted claim's blocks"
    );
    next
}

/// The rest of the abort tests, once the slow owner committed (or died): every message
/// `fast` sends arrives intact and in order, up to 66 of them, polling both ends (the
/// consumer hands the aborted claim's blocks back once its owner is done, or dead).
fn all_arrive_intact(fast: &mut mapipc::channel::Sender, rx: &mut Receiver, mut next: u64) {
    let mut got = 62;
    let _dog = Watchdog::new("messages after an aborted claim", None);
    while got < 66 {
        if next < 66 {
            match fast.try_send(&small(next)) {
                Ok(()) => next += 1,
                Err(TrySendError::Full) => {}
                Err(e) => panic!("{e}"),
            }
        }
        match rx.try_recv() {
            Ok(m) => {
                assert_eq!(m, small(got), "message {got} damaged");
                got += 1;
            }
            Err(TryRecvError::Empty) => std::thread::yield_now(),
            Err(e) => panic!("message {got}: {e}"),
        }
    }
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

/// A live producer holds a grant past the abort timeout: the consumer aborts the claim and
/// delivers what follows. The producer then fills the grant and commits (told `Aborted`):
/// its bytes must not land in the messages other producers sent over the next lap.
#[test]
fn mpsc_late_writes_to_an_aborted_grant_damage_no_other_message() {
    let chan = mpsc(4096, 4);
    let mut slow = chan.sender().unwrap();
    let mut fast = chan.sender().unwrap();
    let mut rx = chan.receiver().unwrap();
    let mut grant = slow.reserve(100).unwrap();
    let next = lap_past_an_aborted_grant(&mut fast, &mut rx);
    grant.bytes().copy_from_slice(&[0xee; 100]);
    assert!(matches!(grant.commit(), Err(SendError::Aborted)));
    all_arrive_intact(&mut fast, &mut rx, next);
    assert_eq!(chan.stat().aborted, 1);
}

/// The same with the slow producer in another process: it writes its grant and commits
/// only when told, after the next lap's messages were sent.
#[test]
fn mpsc_late_writes_of_another_process_to_an_aborted_grant_damage_no_other_message() {
    let _serial = common::serial();
    let chan = mpsc(4096, 4);
    let signals = mpsc(4096, 4);
    let mut rx = chan.receiver().unwrap();
    let mut claimed = signals.receiver().unwrap();
    let (c, sig) = (chan.clone(), signals.clone());
    let mut kid = fork(move || {
        let (Ok(mut slow), Ok(mut sig)) = (c.sender(), sig.sender()) else {
            return 2;
        };
        let Ok(mut grant) = slow.reserve(100) else {
            return 3;
        };
        if sig.send(b"claimed").is_err() {
            return 4;
        }
        // Told to go on: the parent received a second message on the signal channel.
        while sig.channel().stat().received < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        grant.bytes().copy_from_slice(&[0xee; 100]);
        match grant.commit() {
            Err(SendError::Aborted) => 0,
            _ => 5,
        }
    });
    let _dog = Watchdog::new("late writes of another process", Some(kid.pid));
    assert_eq!(claimed.recv().unwrap(), b"claimed");
    let mut fast = chan.sender().unwrap();
    let next = lap_past_an_aborted_grant(&mut fast, &mut rx);
    // Go: the child waits for a second received message on the signal channel.
    let mut poke = signals.sender().unwrap();
    poke.send(b"go").unwrap();
    assert_eq!(claimed.recv().unwrap(), b"go");
    kid.expect_ok("slow producer");
    all_arrive_intact(&mut fast, &mut rx, next);
    assert_eq!(chan.stat().aborted, 1);
}

/// The owner of a claim the consumer aborted (timeout) is killed before it learns of the
/// abort: the blocks it held must come back to the producers, without a hang, and the
/// messages sent over them arrive intact. `takeover`: a new producer takes the dead one's
/// slot (the only one free) before the consumer looks again, so the consumer sees the slot
/// alive and only the newcomer's attach fence can release the record.
fn blocks_of_an_aborted_claim_come_back_when_its_owner_is_killed(takeover: bool) {
    let _serial = common::serial();
    let chan = mpsc(4096, 2);
    let signals = mpsc(4096, 4);
    let mut rx = chan.receiver().unwrap();
    let mut claimed = signals.receiver().unwrap();
    let (c, sig) = (chan.clone(), signals.clone());
    let mut kid = fork(move || {
        let (Ok(mut slow), Ok(mut sig)) = (c.sender(), sig.sender()) else {
            return 2;
        };
        let Ok(_grant) = slow.reserve(100) else {
            return 3;
        };
        if sig.send(b"claimed").is_err() {
            return 4;
        }
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let _dog = Watchdog::new("owner of an aborted claim killed", Some(kid.pid));
    assert_eq!(claimed.recv().unwrap(), b"claimed");
    let mut fast = chan.sender().unwrap();
    let next = lap_past_an_aborted_grant(&mut fast, &mut rx);
    assert_eq!(kid.kill9(), common::Exit::Signal(libc::SIGKILL));
    let _newcomer = takeover.then(|| chan.sender().unwrap());
    all_arrive_intact(&mut fast, &mut rx, next);
    assert_eq!(chan.stat().aborted, 1);
}

#[test]
fn mpsc_blocks_of_an_aborted_claim_come_back_when_its_owner_is_killed() {
    blocks_of_an_aborted_claim_come_back_when_its_owner_is_killed(false);
}

#[test]
fn mpsc_blocks_of_an_aborted_claim_come_back_when_its_killed_owners_slot_is_taken() {
    blocks_of_an_aborted_claim_come_back_when_its_owner_is_killed(true);
}
