//! The broadcast join protocol (late lossless subscribers, `SUB_JOINS`), the
//! count of a subscriber starting at the newest message, and the lossless producer
//! reclaiming ahead: what a subscriber is told, what the producer waits for, what `stat`
//! says.

mod common;
mod kinds_util;

use common::{fork, Watchdog};
use kinds_util::bcast;
use mapipc::channel::{Policy, RecvError, StartAt, TryRecvError};

/// A lossless producer with no subscriber batches (commits without publishing) a little
/// less than a ring of messages: reclaiming ahead must never publish an `oldest` past the
/// published `tail`, or a subscriber joining then (or `stat`) takes the channel for
/// corrupt.
#[test]
fn lossless_batch_never_reclaims_past_the_published_tail() {
    let _w = Watchdog::new(
        "lossless_batch_never_reclaims_past_the_published_tail",
        None,
    );
    for policy in [Policy::Lossless, Policy::Lossy] {
        let ch = bcast(4096, policy);
        let mut tx = ch.sender().unwrap();
        // Fill the ring once, published.
        for i in 0..200u32 {
            tx.send(&[i as u8; 48]).unwrap();
        }
        // Then a batch of most of a ring, not published.
        for i in 0..70u32 {
            let mut g = tx.reserve(48).unwrap();
            g.bytes().copy_from_slice(&[i as u8; 48]);
            g.commit_batched().unwrap();
            let st = ch.stat();
            assert!(
                st.positions_valid,
                "{policy:?}: stat says the positions are corrupt after batched message {i}: {st:?}"
            );
            let mut rx = ch.subscribe(StartAt::Oldest).unwrap();
            match rx.try_recv() {
                Ok(_) | Err(TryRecvError::Empty) => {}
                Err(e) => panic!("{policy:?}: a subscriber joining mid-batch ({i}) got {e}"),
            }
        }
        tx.flush();
        // After the flush the batch is all there, in order, up to its last message.
        let mut rx = ch.subscribe(StartAt::Oldest).unwrap();
        let mut last = None;
        loop {
            match rx.try_recv() {
                Ok(m) => {
                    assert!(m.len() == 48 && m.iter().all(|&b| b == m[0]), "{policy:?}");
                    if let Some(l) = last {
                        assert_eq!(m[0], u8::wrapping_add(l, 1), "{policy:?}: out of order");
                    }
                    last = Some(m[0]);
                }
                Err(TryRecvError::Empty) => break,
                Err(e) => panic!("{policy:?}: after the flush: {e}"),
            }
        }
        assert_eq!(last, Some(69), "{policy:?}: the batch's last message");
    }
}

/// Messages: the sequence number, then filler whose length varies with it (records of
/// many sizes, so that padding records end the ring at many places).
fn message(seq: u64) -> Vec<u8> {
    let mut m = vec![seq as u8; 8 + (seq.wrapping_mul(7919) % 200) as usize];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

fn seq_of(m: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(m.get(..8)?.try_into().ok()?);
    (m == message(seq).as_slice()).then_some(seq)
}

/// Exit codes of the subscriber children.
const BAD_MESSAGE: i32 = 10;
const TOLD_LAGGED: i32 = 11;
const NOT_CONSECUTIVE: i32 = 12;
const SKIPPED_AT_START: i32 = 13;
const LOST_COUNT: i32 = 14;
const HUNG: i32 = 15;
const OTHER: i32 = 16;

/// A subscriber child: joins `rounds` times (oldest and newest in turn, sometimes pausing
/// before its first read), reads a few messages each time, and checks them.
/// Lossless: never told it lagged, messages consecutive, and the first one not after what
/// was published when `subscribe` returned (a later one means it silently skipped
/// messages published after it joined). Lossy: delivered + missed accounts for every
/// message after the first one; before it, a subscriber from the newest message whose
/// count of the ring failed (`seq_at`: the producer lapped it during every try) is told
/// nothing of what it missed, a documented limit, so only the lower bound is checked.
fn subscriber_child(ch: &mapipc::channel::Channel, lossless: bool, seed: u64, rounds: u32) -> i32 {
    use std::time::Duration;
    let mut rng = common::Rng::new(seed);
    let limit = Duration::from_secs(60);
    for round in 0..rounds {
        let start = if round % 2 == 0 {
            StartAt::Oldest
        } else {
            StartAt::Newest
        };
        let before = ch.stat().sent;
        let Ok(mut rx) = ch.subscribe(start) else {
            return OTHER;
        };
        let st_after = ch.stat();
        let after = st_after.sent;
        if rng.range(0, 4) == 0 {
            std::thread::sleep(Duration::from_micros(rng.range(0, 2000)));
        }
        let want = rng.range(1, 300);
        let mut next: Option<u64> = None;
        let mut missed_before_first = 0u64;
        let mut got = 0;
        while got < want {
            match rx.recv_timeout(limit) {
                Ok(m) => {
                    let Some(seq) = seq_of(&m) else {
                        eprintln!("bad message of {} bytes", m.len());
                        return BAD_MESSAGE;
                    };
                    match next {
                        None => {
                            // The first: where we started, plus what we were told we missed.
                            let from = seq - missed_before_first;
                            if lossless && seq > after {
                                eprintln!("{start:?}: first message {seq}, but {after} were published when subscribe returned (before: {before})");
                                return SKIPPED_AT_START;
                            }
                            if start == StartAt::Newest
                                && (from < before || lossless && from > after)
                            {
                                eprintln!("{start:?}: started at {from} (first {seq}, missed {missed_before_first}); published {before}..{after}; stat after subscribe: {st_after:?}");
                                return LOST_COUNT;
                            }
                        }
                        Some(n) if n != seq => {
                            eprintln!("{start:?}: expected {n}, got {seq}");
                            return NOT_CONSECUTIVE;
                        }
                        Some(_) => {}
                    }
                    next = Some(seq + 1);
                    got += 1;
                }
                Err(mapipc::channel::RecvTimeoutError::Lagged { missed }) => {
                    if lossless {
                        eprintln!("{start:?}: lossless subscriber told it missed {missed} (next {next:?})");
                        return TOLD_LAGGED;
                    }
                    match &mut next {
                        None => missed_before_first += missed,
                        Some(n) => *n += missed,
                    }
                }
                Err(mapipc::channel::RecvTimeoutError::Disconnected) => return 0,
                Err(mapipc::channel::RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "{start:?}: nothing for 60 s (next {next:?}, got {got}, published {before}..{after}): {:?}",
                        ch.stat()
                    );
                    return HUNG;
                }
                Err(e) => {
                    eprintln!("{e}");
                    return OTHER;
                }
            }
        }
    }
    0
}

fn join_storm(policy: Policy, capacity: usize, total: u64, subscribers: u32) {
    let _serial = common::serial();
    let _w = Watchdog::new("join_storm", None);
    let seed = common::seed();
    eprintln!("seed {seed}");
    let ch = bcast(capacity, policy);
    let lossless = policy == Policy::Lossless;
    // One subscriber from before the first message to the last: it gets every message.
    let mut whole = ch.subscribe(StartAt::Oldest).unwrap();
    let mut children = Vec::new();
    for i in 0..subscribers {
        let ch = ch.clone();
        children.push(fork(move || {
            subscriber_child(&ch, lossless, seed ^ u64::from(i), 1_000_000)
        }));
    }
    let producer = {
        let ch = ch.clone();
        fork(move || {
            let Ok(mut tx) = ch.sender() else {
                return OTHER;
            };
            for seq in 0..total {
                if tx
                    .send_timeout(&message(seq), std::time::Duration::from_secs(60))
                    .is_err()
                {
                    return HUNG;
                }
            }
            0
        })
    };
    let mut next = 0u64;
    loop {
        match whole.recv() {
            Ok(m) => {
                assert_eq!(
                    seq_of(&m),
                    Some(next),
                    "{policy:?}: the whole-run subscriber"
                );
                next += 1;
            }
            Err(RecvError::Lagged { missed }) => {
                assert!(!lossless, "lossless: the whole-run subscriber lagged");
                next += missed;
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(next, total, "{policy:?}: delivered + missed");
    let mut p = producer;
    p.expect_ok("producer");
    for (i, mut c) in children.into_iter().enumerate() {
        let code = c.exit_code();
        assert_eq!(code, 0, "{policy:?}: subscriber {i} (seed {seed})");
    }
}

/// Lossless: subscribers join and leave all the time, from the oldest and the newest
/// message, while the producer laps a small ring; none is ever told it lagged or skips a
/// message.
#[test]
fn lossless_join_storm() {
    join_storm(Policy::Lossless, 1024, 300_000, 3);
}

/// Lossy: the same storm; every subscriber's delivered + missed accounts for every message.
#[test]
fn lossy_join_storm() {
    join_storm(Policy::Lossy, 1024, 300_000, 3);
}
