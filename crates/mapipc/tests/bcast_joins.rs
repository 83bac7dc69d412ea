//! The broadcast join protocol (late lossless subscribers, `SUB_JOINS`), the
//! count of a subscriber starting at the newest message, and the lossless producer
//! reclaiming ahead: what a subscriber is told, what the producer waits for, what `stat`
//! says.

mod common;
mod kinds_util;

use common::{fork, Watchdog};
use kinds_util::bcast;
use mapipc::channel::{
    Channel, Policy, Receiver, RecvError, RecvTimeoutError, Sender, StartAt, TryRecvError,
};

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
const DRAIN_CALLS: i32 = 17;

/// How a subscriber child takes its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// `recv_timeout`: copied, checked, then handed out.
    Copy,
    /// `drain`, in place (lossless) or copied (lossy), a few at a time.
    Drain,
    /// `recv_ref_timeout`: a guard over the bytes in place, checked with `is_intact`.
    InPlace,
}

/// What one subscription of a child received, checked message by message.
struct Check {
    lossless: bool,
    start: StartAt,
    read: Read,
    /// Messages published when `subscribe` was called, and when it returned.
    before: u64,
    after: u64,
    st_after: mapipc::channel::Stat,
    next: Option<u64>,
    missed_before_first: u64,
}

impl Check {
    fn message(&mut self, m: &[u8]) -> Result<(), i32> {
        let Some(seq) = seq_of(m) else {
            eprintln!("{:?}: bad message of {} bytes", self.read, m.len());
            return Err(BAD_MESSAGE);
        };
        let (start, after, before) = (self.start, self.after, self.before);
        match self.next {
            None => {
                // The first: where we started, plus what we were told we missed.
                let from = seq - self.missed_before_first;
                if self.lossless && seq > after {
                    eprintln!("{start:?} {:?}: first message {seq}, but {after} were published when subscribe returned (before: {before})", self.read);
                    return Err(SKIPPED_AT_START);
                }
                if start == StartAt::Newest && (from < before || self.lossless && from > after) {
                    eprintln!("{start:?} {:?}: started at {from} (first {seq}, missed {}); published {before}..{after}; stat after subscribe: {:?}", self.read, self.missed_before_first, self.st_after);
                    return Err(LOST_COUNT);
                }
            }
            Some(n) if n != seq => {
                eprintln!("{start:?} {:?}: expected {n}, got {seq}", self.read);
                return Err(NOT_CONSECUTIVE);
            }
            Some(_) => {}
        }
        self.next = Some(seq + 1);
        Ok(())
    }

    fn lagged(&mut self, missed: u64) -> Result<(), i32> {
        if self.lossless {
            eprintln!(
                "{:?} {:?}: lossless subscriber told it missed {missed} (next {:?})",
                self.start, self.read, self.next
            );
            return Err(TOLD_LAGGED);
        }
        match &mut self.next {
            None => self.missed_before_first += missed,
            Some(n) => *n += missed,
        }
        Ok(())
    }
}

/// A subscriber child: joins `rounds` times (oldest and newest in turn, each taking its
/// messages by copy, by `drain` and in place in turn, sometimes pausing before its first
/// read), reads a few messages each time, and checks them.
/// Lossless: never told it lagged, messages consecutive, and the first one not after what
/// was published when `subscribe` returned (a later one means it silently skipped
/// messages published after it joined); `drain` runs its callback once per message it
/// returns, never more than `max` times. Lossy: delivered + missed accounts for every
/// message after the first one; before it, a subscriber from the newest message whose
/// count of the ring failed (`seq_at`: the producer lapped it during every try) is told
/// nothing of what it missed, a documented limit, so only the lower bound is checked.
fn subscriber_child(ch: &mapipc::channel::Channel, lossless: bool, seed: u64, rounds: u32) -> i32 {
    match subscriber_rounds(ch, lossless, seed, rounds) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn subscriber_rounds(
    ch: &mapipc::channel::Channel,
    lossless: bool,
    seed: u64,
    rounds: u32,
) -> Result<(), i32> {
    use mapipc::channel::RecvTimeoutError;
    use std::time::{Duration, Instant};
    let mut rng = common::Rng::new(seed);
    let limit = Duration::from_secs(60);
    for round in 0..rounds {
        let start = if round % 2 == 0 {
            StartAt::Oldest
        } else {
            StartAt::Newest
        };
        let read = [Read::Copy, Read::Drain, Read::InPlace][(round / 2 % 3) as usize];
        let before = ch.stat().sent;
        let Ok(mut rx) = ch.subscribe(start) else {
            return Err(OTHER);
        };
        let st_after = ch.stat();
        let mut check = Check {
            lossless,
            start,
            read,
            before,
            after: st_after.sent,
            st_after,
            next: None,
            missed_before_first: 0,
        };
        if rng.range(0, 4) == 0 {
            std::thread::sleep(Duration::from_micros(rng.range(0, 2000)));
        }
        let want = rng.range(1, 300);
        let mut got = 0;
        // A hang detector only (reported, never a timing assertion): `drain` does not wait.
        let mut idle_since: Option<Instant> = None;
        while got < want {
            let r = match read {
                Read::Copy => rx.recv_timeout(limit).map(|m| {
                    check.message(&m)?;
                    got += 1;
                    Ok(())
                }),
                Read::InPlace => rx.recv_ref_timeout(limit).map(|m| {
                    let v = m.to_vec();
                    if !m.is_intact() {
                        // Lossy, overwritten while read: the next receive reports the lag.
                        if lossless {
                            eprintln!("{start:?} {read:?}: a lossless message not intact");
                            return Err(BAD_MESSAGE);
                        }
                        return Ok(());
                    }
                    check.message(&v)?;
                    got += 1;
                    Ok(())
                }),
                Read::Drain => {
                    let max = rng.range(1, 8) as usize;
                    let mut calls = 0usize;
                    let mut bad = Ok(());
                    match rx.drain(max, |m| {
                        calls += 1;
                        if bad.is_ok() {
                            bad = check.message(&m.to_vec());
                        }
                    }) {
                        Ok(n) => {
                            if calls > max || calls != n {
                                eprintln!("{start:?} {read:?}: drain({max}) returned {n}, its callback ran {calls} times");
                                return Err(DRAIN_CALLS);
                            }
                            bad?;
                            got += n as u64;
                            if n == 0 {
                                let since = *idle_since.get_or_insert_with(Instant::now);
                                if since.elapsed() > limit {
                                    Err(RecvTimeoutError::Timeout)
                                } else {
                                    std::thread::yield_now();
                                    Ok(Ok(()))
                                }
                            } else {
                                idle_since = None;
                                Ok(Ok(()))
                            }
                        }
                        Err(TryRecvError::Lagged { missed }) => {
                            Err(RecvTimeoutError::Lagged { missed })
                        }
                        Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                        Err(TryRecvError::Empty) => Ok(Ok(())),
                        Err(e) => {
                            eprintln!("{e}");
                            return Err(OTHER);
                        }
                    }
                }
            };
            match r {
                Ok(r) => r?,
                Err(RecvTimeoutError::Lagged { missed }) => check.lagged(missed)?,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "{start:?} {read:?}: nothing for 60 s (next {:?}, got {got}, published {before}..{}): {:?}",
                        check.next,
                        check.after,
                        ch.stat()
                    );
                    return Err(HUNG);
                }
                Err(e) => {
                    eprintln!("{e}");
                    return Err(OTHER);
                }
            }
        }
    }
    Ok(())
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
/// message, taking messages by copy, by `drain` and in place, while the producer laps a
/// small ring; none is ever told it lagged or skips a message, and `drain` runs its
/// callback once per message it counts (a joiner's first record handed to the callback in
/// place, then found reclaimed, was skipped uncounted, and the records after a joiner's
/// first one reported lost when the producer's reclaim saw its join late).
#[test]
fn lossless_join_storm() {
    join_storm(Policy::Lossless, 1024, 300_000, 3);
}

/// Lossy: the same storm; every subscriber's delivered + missed accounts for every message.
#[test]
fn lossy_join_storm() {
    join_storm(Policy::Lossy, 1024, 300_000, 3);
}

/// A lossless broadcast channel in a file of `dir` (a peer can write the region's peer
/// table through it, as `make_look_dead` does), 4096 bytes of ring, 2 subscriber slots.
fn lossless_file(dir: &std::path::Path) -> (mapipc::channel::Channel, std::path::PathBuf) {
    let path = dir.join("bcast");
    let ch = mapipc::channel::ChannelOptions::new(mapipc::channel::Kind::Broadcast)
        .capacity(4096)
        .policy(Policy::Lossless)
        .max_subscribers(2)
        .create(&path)
        .unwrap();
    (ch, path)
}

/// 100-byte messages (128-byte records: 32 fill the ring): the sequence number, then its
/// low byte.
fn fixed(seq: u64) -> Vec<u8> {
    let mut m = vec![seq as u8; 100];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

fn fixed_seq(m: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(m.get(..8)?.try_into().ok()?);
    (m == fixed(seq).as_slice()).then_some(seq)
}

/// What a peer scribbling over the region's peer table does to a live subscriber: bumps the
/// generation of its peer slot (region header: the table's offset at 72, the slot size at
/// 76, the generation 4 bytes into a slot), so that its id looks dead while its process and
/// its slot lock are alive.
fn make_look_dead(path: &std::path::Path, peer: u32) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let word = |off: u64| {
        let mut b = [0; 4];
        f.read_exact_at(&mut b, off).unwrap();
        u32::from_ne_bytes(b)
    };
    let slot = u64::from((peer & 0xff) - 1);
    let generation = word(72) as u64 + slot * word(76) as u64 + 4;
    let g = word(generation);
    f.write_all_at(&(g ^ 1).to_ne_bytes(), generation).unwrap();
}

/// The peer id of the one subscriber `stat` lists.
fn only_subscriber(ch: &mapipc::channel::Channel) -> u32 {
    let st = ch.stat();
    assert_eq!(st.subscribers.len(), 1, "{st:?}");
    st.subscribers[0].end.peer
}

/// A lossless channel whose one subscriber `x`, alive, received message 0 and was then
/// made to look dead (its peer slot scribbled over): the producer, blocked by it, dropped
/// it and overwrote its messages 1.. with 32..64. Returns the channel, the producer and `x`.
fn dropped_as_dead(dir: &std::path::Path) -> (Channel, Sender, Receiver) {
    let (ch, path) = lossless_file(dir);
    let mut tx = ch.sender().unwrap();
    tx.set_check_interval(std::time::Duration::from_millis(1));
    let mut x = ch.subscribe(StartAt::Oldest).unwrap();
    for seq in 0..32 {
        tx.send(&fixed(seq)).unwrap();
    }
    assert_eq!(fixed_seq(&x.recv().unwrap()), Some(0));
    make_look_dead(&path, only_subscriber(&ch));
    // Blocked by `x`, which looks dead: dropped, and its messages 1.. overwritten.
    for seq in 32..64 {
        tx.send(&fixed(seq)).unwrap();
    }
    (ch, tx, x)
}

/// Lossless: a live subscriber whose liveness a peer misjudged (its peer slot scribbled
/// over) is dropped by the blocked producer, which then overwrites what it had not read.
/// Its next receive says it was evicted, and so does every one after: it is never handed a
/// message again (it is no longer protected), nor told a loss count as if it were lossy.
#[test]
fn lossless_subscriber_taken_for_dead_is_told_it_was_evicted() {
    let _w = Watchdog::new(
        "lossless_subscriber_taken_for_dead_is_told_it_was_evicted",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let (ch, _tx, mut x) = dropped_as_dead(dir.path());
    for _ in 0..4 {
        match x.try_recv() {
            Err(TryRecvError::Evicted { .. }) => {}
            Ok(m) => panic!("after being dropped: message {:?}", fixed_seq(&m)),
            Err(e) => panic!("after being dropped: {e:?}"),
        }
    }
    assert!(matches!(x.recv(), Err(RecvError::Evicted { .. })));
    // It holds no entry: a new subscriber and `x`'s drop leave each other alone.
    let mut y = ch.subscribe(StartAt::Oldest).unwrap();
    drop(x);
    assert_eq!(ch.stat().subscribers.len(), 1);
    assert!(fixed_seq(&y.recv().unwrap()).is_some());
}

/// Lossless: the eviction is reported as every other channel error is, naming the channel
/// file, by each of the three receives, with what happened and what to do (subscribe
/// again; what was sent since was not kept for it).
#[test]
fn lossless_subscriber_evicted_is_told_which_channel_and_what_to_do() {
    let _w = Watchdog::new(
        "lossless_subscriber_evicted_is_told_which_channel_and_what_to_do",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bcast");
    let quoted = format!("`{}`", path.display());
    let (_ch, _tx, mut x) = dropped_as_dead(dir.path());
    let file = path.to_str().unwrap();
    let says = |what: &str, msg: String| {
        for part in [
            quoted.as_str(),
            "dropped as dead",
            "subscribe again",
            "may be lost",
        ] {
            assert!(msg.contains(part), "{what}: no {part:?} in: {msg}");
        }
    };
    let r = x.try_recv();
    assert!(
        matches!(&r, Err(TryRecvError::Evicted { file: f }) if f == file),
        "try_recv: {r:?}"
    );
    says("try_recv", r.unwrap_err().to_string());
    let r = x.drain(usize::MAX, |_| {
        panic!("handed a message after the eviction")
    });
    assert!(
        matches!(&r, Err(TryRecvError::Evicted { file: f }) if f == file),
        "drain: {r:?}"
    );
    let r = x.recv();
    assert!(
        matches!(&r, Err(RecvError::Evicted { file: f }) if f == file),
        "recv: {r:?}"
    );
    says("recv", r.unwrap_err().to_string());
    let r = x.recv_timeout(std::time::Duration::from_secs(60));
    assert!(
        matches!(&r, Err(RecvTimeoutError::Evicted { file: f }) if f == file),
        "recv_timeout: {r:?}"
    );
    says("recv_timeout", r.unwrap_err().to_string());
    assert!(
        !x.try_recv().unwrap_err().is_fault(),
        "an eviction is no fault"
    );
}

/// Lossless: a subscriber dropped as dead while alive (its peer slot scribbled over) must
/// never write its position into its former table entry, which a new subscriber may hold:
/// the producer would go by that position, and overwrite what the new subscriber has not
/// read while it reads it in place, taking it for intact.
#[test]
fn lossless_subscriber_taken_for_dead_never_speaks_for_the_next_holder_of_its_entry() {
    let _w = Watchdog::new(
        "lossless_subscriber_taken_for_dead_never_speaks_for_the_next_holder_of_its_entry",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let (ch, mut tx, mut x) = dropped_as_dead(dir.path());
    // `y` takes the entry `x` held (the first free one), from the oldest message.
    let mut y = ch.subscribe(StartAt::Oldest).unwrap();
    // `x` goes on receiving (before the fix: a lag, then messages from the oldest on,
    // publishing its position into `y`'s entry as it goes).
    for _ in 0..16 {
        let _ = x.try_recv();
    }
    let m = y.recv_ref().unwrap();
    let first = fixed_seq(&m.to_vec()).expect("y's first message is intact");
    // The producer goes as far as the table lets it.
    let mut sent = 64;
    while sent < 80 && tx.try_send(&fixed(sent)).is_ok() {
        sent += 1;
    }
    let bytes = m.to_vec();
    assert!(
        !m.is_intact() || fixed_seq(&bytes) == Some(first),
        "y holds message {first} in place, told intact, and reads message {:?}",
        fixed_seq(&bytes)
    );
    drop(m);
    // Then `y` reads on, every message in order.
    let mut next = first + 1;
    while next < sent {
        let m = y.recv().unwrap();
        assert_eq!(fixed_seq(&m), Some(next));
        next += 1;
    }
}

/// Lossless: a subscriber waiting for a message when a new subscriber takes its table entry
/// (its peer slot scribbled over, it looks dead) is told it was evicted within a check
/// interval, not when the next message comes.
#[test]
fn lossless_subscriber_waiting_when_its_entry_is_taken_is_told_it_was_evicted() {
    let _w = Watchdog::new(
        "lossless_subscriber_waiting_when_its_entry_is_taken_is_told_it_was_evicted",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let (ch, path) = lossless_file(dir.path());
    let _tx = ch.sender().unwrap();
    let mut x = ch.subscribe(StartAt::Oldest).unwrap();
    x.set_check_interval(std::time::Duration::from_millis(1));
    make_look_dead(&path, only_subscriber(&ch));
    let _y = ch.subscribe(StartAt::Oldest).unwrap();
    let st = ch.stat();
    assert_eq!(st.subscribers.len(), 1, "y took x's entry: {st:?}");
    match x.recv_timeout(std::time::Duration::from_secs(60)) {
        Err(mapipc::channel::RecvTimeoutError::Evicted { .. }) => {}
        other => panic!("expected Evicted, got {other:?}"),
    }
}

/// Lossless: a subscriber's position word holding something it did not store (what a
/// subscriber dropped from the entry stores late, or garbage: the tag is not the entry's)
/// stops the producer, which cannot tell what the subscriber still needs; the subscriber,
/// waiting for the next message, stores its position again at its next check, and the
/// producer goes on (neither waits for the other for ever).
#[test]
fn lossless_position_word_overwritten_is_stored_again_by_a_waiting_subscriber() {
    let _w = Watchdog::new(
        "lossless_position_word_overwritten_is_stored_again_by_a_waiting_subscriber",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let (ch, _path) = lossless_file(dir.path());
    let mut tx = ch.sender().unwrap();
    tx.set_check_interval(std::time::Duration::from_millis(1));
    let mut y = ch.subscribe(StartAt::Oldest).unwrap();
    y.set_check_interval(std::time::Duration::from_millis(1));
    for seq in 0..32 {
        tx.send(&fixed(seq)).unwrap();
        assert_eq!(fixed_seq(&y.recv().unwrap()), Some(seq));
    }
    // Entry 0's position word (endpoint table at 1024 in the channel header, 16 bytes an
    // entry): `y`'s position with another tag.
    let word = 1024 + 8;
    let mine: u64 = ch.region().read_pod(word).unwrap();
    ch.region().write_pod(word, &(mine ^ 1)).unwrap();
    let waiter = std::thread::spawn(move || {
        let got = y.recv_timeout(std::time::Duration::from_secs(60));
        (y, got)
    });
    tx.send_timeout(&fixed(32), std::time::Duration::from_secs(60))
        .expect("the producer waited for ever");
    let (_y, got) = waiter.join().unwrap();
    assert_eq!(fixed_seq(&got.unwrap()), Some(32));
    let restored: u64 = ch.region().read_pod(word).unwrap();
    assert_ne!(restored, mine ^ 1);
}
