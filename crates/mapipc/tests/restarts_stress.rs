//! The queue's and the SPSC channel's crash handling under a busy, healthy system,
//! with real processes: an appender rolling 64 KiB segments while retention deletes old ones
//! and tailers of every sort read (nothing may be reported as damage), a named tailer
//! killed over and over (never skipping a record), SPSC ends killed and re-attached
//! (every message delivered once, in order, and the repaired counters never above the
//! truth), and MPSC receivers killed and re-attached (the same, per sender, and no damaged
//! message). Every child runs under the watchdog of `common::Child::wait`; no assertion
//! depends on timing. Every test forks, so each holds `common::serial()`: a child inherits
//! the open file descriptions of tests running meanwhile, and with them their locks (a named
//! tailer's lock kept alive by another test's child made its owner's next open `TailerBusy`).

mod common;
mod queue_util;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{fork, seed, Child, Exit, Rng};
use queue_util::tempdir;

use mapipc::channel::{Channel, RecvTimeoutError, SendError};
use mapipc::map::Mmap;
use mapipc::queue::{
    self, AckMode, OpenError, QueueOptions, ReadError, Retention, StartAt, Tailer, TailerOptions,
};

/// The payload of record `seq`: its sequence number, then 0 to 399 bytes derived from it
/// (a few hundred records per 64 KiB segment: many rolls).
fn payload(seq: u64) -> Vec<u8> {
    let mut v = seq.to_le_bytes().to_vec();
    let filler = (seq.wrapping_mul(7919) % 400) as usize;
    v.extend((0..filler).map(|i| (seq as u8).wrapping_add(i as u8)));
    v
}

/// Words shared with forked children.
struct Words(Mmap);

impl Words {
    fn new() -> Words {
        Words(Mmap::anonymous(4096).unwrap())
    }
    fn at(&self, i: u64) -> &AtomicU64 {
        self.0.atomic_u64(i * 8).unwrap()
    }
}

/// A child's verdict, with what went wrong on its standard error.
fn fail(code: i32, what: String) -> i32 {
    // Straight to the standard error: the harness's capture would keep it in the child.
    let line = format!("child {}: {what}\n", std::process::id());
    // SAFETY: writes a buffer we own to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    code
}

fn small_queue(dir: &std::path::Path) -> mapipc::queue::Appender {
    QueueOptions::new()
        .segment_size(64 * 1024)
        .open_appender(dir)
        .unwrap()
}

/// One appender rolls 64 KiB segments as fast as it can while a retention process keeps
/// at most two segments (bounded by two named tailers), an unnamed tailer follows (seeking
/// on when retention takes records from under it) and another opens tailers at random
/// positions near the end. A healthy system: no read may report damage (a missing segment,
/// a bad segment, a CRC), no record may be skipped or repeated by the named tailers, and
/// nothing may hang.
#[test]
fn busy_rolls_with_retention_and_tailers_report_no_damage() {
    let _g = common::serial();
    const N: u64 = 60_000;
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(small_queue(&dir));
    for name in ["a", "b"] {
        drop(TailerOptions::new().name(name).open(&dir).unwrap());
    }
    // 0: records appended so far; 1: retention passes; 2: segments deleted; 3: times the
    // unnamed tailer was overtaken by retention.
    let words = Words::new();
    let w = &words;
    let d = &dir;

    let mut children: Vec<(&str, Child)> = Vec::new();
    children.push((
        "appender",
        fork(|| {
            let mut app = small_queue(d);
            for seq in 0..N {
                if let Err(e) = app.append(&payload(seq)) {
                    return fail(2, format!("append {seq}: {e}"));
                }
                w.at(0).store(seq + 1, Ordering::Release);
            }
            0
        }),
    ));
    children.push((
        "retention",
        fork(|| {
            let mut policy = Retention::new();
            policy.max_segments(2);
            loop {
                let done = w.at(0).load(Ordering::Acquire) == N;
                match queue::retain(d, &policy) {
                    Ok(r) => {
                        w.at(1).fetch_add(1, Ordering::Relaxed);
                        w.at(2).fetch_add(r.deleted.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => return fail(2, format!("retain: {e}")),
                }
                if done {
                    return 0;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }),
    ));
    for name in ["a", "b"] {
        children.push((
            "named tailer",
            fork(move || {
                let mut t = match TailerOptions::new().name(name).open(d) {
                    Ok(t) => t,
                    Err(e) => return fail(4, format!("open {name}: {e}")),
                };
                let mut next = 0u64;
                while next < N {
                    match t.next_timeout(Duration::from_secs(1)) {
                        Ok(Some(rec)) => {
                            if rec.seq() != next || rec.to_vec().ok() != Some(payload(next)) {
                                return fail(3, format!("{name}: got {} for {next}", rec.seq()));
                            }
                            next += 1;
                        }
                        Ok(None) => {}
                        Err(e) => return fail(5, format!("{name} at {next}: {e}")),
                    }
                }
                0
            }),
        ));
    }
    children.push((
        "unnamed tailer",
        fork(|| {
            let mut t = match Tailer::open(d) {
                Ok(t) => t,
                Err(e) => return fail(4, format!("open: {e}")),
            };
            // The oldest record still there: retention may have run already.
            let mut next = t.next_seq();
            while next < N {
                match t.next_timeout(Duration::from_secs(1)) {
                    Ok(Some(rec)) => {
                        if rec.seq() != next || rec.to_vec().ok() != Some(payload(next)) {
                            return fail(3, format!("unnamed: got {} for {next}", rec.seq()));
                        }
                        next += 1;
                        // Slower than the others now and then: retention overtakes it,
                        // and it stands at end markers while segments go.
                        if next % 2000 == 0 {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                    Ok(None) => {}
                    Err(ReadError::Gone {
                        first_available, ..
                    }) if first_available > next => {
                        if let Err(e) = t.seek(StartAt::Seq(first_available)) {
                            match e {
                                // Taken again before we got there: the next read says so.
                                ReadError::Gone { .. } => {}
                                e => return fail(5, format!("seek {first_available}: {e}")),
                            }
                        }
                        next = t.next_seq();
                        w.at(3).fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return fail(5, format!("unnamed at {next}: {e}")),
                }
            }
            0
        }),
    ));
    children.push((
        "random tailers",
        fork(|| {
            let mut rng = Rng::new(seed());
            loop {
                let appended = w.at(0).load(Ordering::Acquire);
                if appended == N {
                    return 0;
                }
                let from = appended.saturating_sub(rng.range(0, 3000));
                let mut t = match TailerOptions::new().from(StartAt::Seq(from)).open(d) {
                    Ok(t) => t,
                    Err(OpenError::Read(e)) if matches!(*e, ReadError::Gone { .. }) => continue,
                    Err(e) => return fail(4, format!("open at {from}: {e}")),
                };
                for k in from..from + 600 {
                    match t.try_next() {
                        Ok(Some(rec)) => {
                            if rec.seq() != k || rec.to_vec().ok() != Some(payload(k)) {
                                return fail(3, format!("random: got {} for {k}", rec.seq()));
                            }
                        }
                        Ok(None) | Err(ReadError::Gone { .. }) => break,
                        Err(e) => return fail(5, format!("random from {from} at {k}: {e}")),
                    }
                }
            }
        }),
    ));
    for (what, child) in &mut children {
        assert_eq!(
            child.wait(),
            Exit::Code(0),
            "{what} failed (see its stderr)"
        );
    }
    // The retention really ran alongside and deleted segments.
    assert!(
        words.at(2).load(Ordering::Relaxed) > 0,
        "retention deleted nothing"
    );
    eprintln!(
        "retention passes {}, segments deleted {}, unnamed tailer overtaken {} times",
        words.at(1).load(Ordering::Relaxed),
        words.at(2).load(Ordering::Relaxed),
        words.at(3).load(Ordering::Relaxed)
    );
}

/// A named tailer (automatic acknowledgement) is killed at random points, over and over,
/// while it reads a log of many segments; each incarnation records the first record it got
/// and each record once handled. The position kept in the tailer file (and its complement)
/// must make the next incarnation start at the last record handled or the one after it:
/// never further (a skipped record), never earlier (more than the one record in flight).
#[test]
fn named_tailer_killed_at_random_points_never_skips() {
    let _g = common::serial();
    const N: u64 = 20_000;
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_queue(&dir);
    for seq in 0..N {
        app.append(&payload(seq)).unwrap();
    }
    drop(app);
    drop(
        TailerOptions::new()
            .name("k")
            .ack(AckMode::Auto)
            .open(&dir)
            .unwrap(),
    );
    // 0: last record handled + 1 (0: none); 1: first record of the incarnation + 1.
    let words = Words::new();
    let (w, d) = (&words, &dir);
    let mut rng = Rng::new(seed());
    let mut incarnations = 0u64;
    loop {
        incarnations += 1;
        let handled = w.at(0).load(Ordering::Acquire);
        w.at(1).store(0, Ordering::Release);
        let mut child = fork(|| {
            let mut t = match TailerOptions::new().name("k").open(d) {
                Ok(t) => t,
                Err(e) => return fail(4, format!("open: {e}")),
            };
            let mut first = true;
            loop {
                match t.try_next() {
                    Ok(Some(rec)) => {
                        let seq = rec.seq();
                        if rec.to_vec().ok() != Some(payload(seq)) {
                            return fail(3, format!("payload of {seq}"));
                        }
                        if first {
                            w.at(1).store(seq + 1, Ordering::Release);
                            first = false;
                        }
                        w.at(0).store(seq + 1, Ordering::Release);
                    }
                    Ok(None) => return 0,
                    Err(e) => return fail(5, format!("read: {e}")),
                }
            }
        });
        // Let it read a little, then kill it wherever it is.
        let pause = rng.range(0, 3000);
        std::thread::sleep(Duration::from_micros(pause));
        let how = if rng.range(0, 8) == 0 {
            child.wait()
        } else {
            child.kill9()
        };
        if let Exit::Code(c) = how {
            assert_eq!(c, 0, "incarnation {incarnations} failed (see its stderr)");
        }
        let first = w.at(1).load(Ordering::Acquire);
        if first != 0 {
            let first = first - 1;
            // `handled` is the last record handled + 1; the record after it may have been
            // returned (and its predecessor acknowledged) before the kill.
            assert!(
                first + 1 >= handled && first <= handled,
                "incarnation {incarnations} started at {first}; the previous one had handled \
                 up to {handled} (exclusive)"
            );
        }
        if how == Exit::Code(0) && w.at(0).load(Ordering::Acquire) == N {
            break;
        }
        assert!(incarnations < 100_000, "never finished");
    }
}

/// The message of sender `k`, number `i`.
fn msg(k: u64, i: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&k.to_le_bytes());
    m[8..].copy_from_slice(&i.to_le_bytes());
    m
}

fn parse(m: &[u8]) -> (u64, u64) {
    assert_eq!(m.len(), 16, "message length");
    (
        u64::from_le_bytes(m[..8].try_into().unwrap()),
        u64::from_le_bytes(m[8..].try_into().unwrap()),
    )
}

/// SPSC: senders killed at random points and replaced while this process receives. Each
/// sender's messages must arrive once and in order (a prefix of what it sent), the receiver
/// must never report corruption (its position only it writes; the producer registration is
/// never its own id) and, once the last sender sent its messages and left, the counters
/// must be exactly what was received: repaired, never above the truth.
#[test]
fn spsc_senders_killed_and_replaced_counters_stay_true() {
    let _g = common::serial();
    const SENDERS: u64 = 60;
    const LAST: u64 = 5_000;
    let tmp = tempdir();
    let path = tmp.path().join("chan");
    let chan = Channel::create(&path, 4096).unwrap();
    let mut rx = chan.receiver().unwrap();
    let mut rng = Rng::new(seed());
    let mut received = 0u64;
    // The next number expected from each sender.
    let mut expect = vec![0u64; SENDERS as usize];
    let take = |m: Vec<u8>, expect: &mut Vec<u64>| {
        let (k, i) = parse(&m);
        assert!(k < SENDERS, "sender {k}");
        assert_eq!(i, expect[k as usize], "message of sender {k}");
        expect[k as usize] += 1;
    };
    for k in 0..SENDERS {
        let c2 = chan.clone();
        let last = k == SENDERS - 1;
        let mut child = fork(move || {
            let mut tx = match c2.sender() {
                Ok(tx) => tx,
                Err(e) => return fail(4, format!("sender {k}: {e}")),
            };
            let mut i = 0u64;
            loop {
                if last && i == LAST {
                    return 0;
                }
                match tx.send(&msg(k, i)) {
                    Ok(()) => i += 1,
                    Err(SendError::Disconnected) => return fail(6, "disconnected".into()),
                    Err(e) => return fail(5, format!("sender {k} at {i}: {e}")),
                }
            }
        });
        // Receive for a while (the sender blocks on the full ring meanwhile), then kill it
        // wherever it is, unless it is the last one.
        let quota = if last { u64::MAX } else { rng.range(0, 400) };
        let mut n = 0u64;
        while n < quota {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(m) => {
                    take(m, &mut expect);
                    received += 1;
                    n += 1;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if child.try_wait().is_some() {
                        break;
                    }
                }
                // Between two senders (the last one may not have attached yet).
                Err(RecvTimeoutError::Disconnected) => {
                    if !last || child.try_wait().is_some() {
                        break;
                    }
                }
                Err(e) => panic!("receive with sender {k} attached: {e}"),
            }
        }
        if last {
            child.expect_ok("the last sender");
        } else {
            let _ = child.kill9();
            // What it had published before the kill.
            while let Ok(m) = rx.try_recv() {
                take(m, &mut expect);
                received += 1;
            }
        }
    }
    assert_eq!(
        expect[SENDERS as usize - 1],
        LAST,
        "the last sender's messages"
    );
    let st = chan.stat();
    assert_eq!(st.received, received, "received counter");
    assert!(
        st.sent <= received,
        "sent counter {} above what was ever sent ({received})",
        st.sent
    );
    assert_eq!(
        st.sent, received,
        "sent counter after the last sender's repair"
    );
}

/// SPSC: receivers killed at random points and replaced while this process sends. Each
/// incarnation records the messages it handled in shared words; the next one must start at
/// the message after the last one returned (exactly once: the one returned just before a
/// kill may not have been recorded). At the end the counters must match what was sent.
#[test]
fn spsc_receivers_killed_and_replaced_counters_stay_true() {
    let _g = common::serial();
    const TOTAL: u64 = 200_000;
    let tmp = tempdir();
    let path = tmp.path().join("chan");
    let chan = Channel::create(&path, 4096).unwrap();
    let mut tx = chan.sender().unwrap();
    // 0: last message handled + 1; 1: first message of the incarnation + 1.
    let words = Words::new();
    let w = &words;
    let mut rng = Rng::new(seed());
    let mut sent = 0u64;
    let mut incarnations = 0u64;
    while sent < TOTAL || w.at(0).load(Ordering::Acquire) < TOTAL {
        incarnations += 1;
        let handled = w.at(0).load(Ordering::Acquire);
        w.at(1).store(0, Ordering::Release);
        let c2 = chan.clone();
        let mut child = fork(move || {
            let mut rx = match c2.receiver() {
                Ok(rx) => rx,
                Err(e) => return fail(4, format!("receiver: {e}")),
            };
            let mut first = true;
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(m) => {
                        let (_, i) = parse(&m);
                        if first {
                            w.at(1).store(i + 1, Ordering::Release);
                            first = false;
                        }
                        w.at(0).store(i + 1, Ordering::Release);
                        if i + 1 == TOTAL {
                            return 0;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(e) => return fail(5, format!("recv: {e}")),
                }
            }
        });
        let quota = rng.range(0, 3000);
        let mut n = 0;
        while n < quota && sent < TOTAL {
            match tx.send_timeout(&msg(0, sent), Duration::from_millis(20)) {
                Ok(()) => {
                    sent += 1;
                    n += 1;
                }
                Err(mapipc::channel::SendTimeoutError::Timeout) => {
                    if child.try_wait().is_some() {
                        break;
                    }
                }
                Err(e) => panic!("send {sent}: {e}"),
            }
        }
        let how = if sent == TOTAL {
            child.wait()
        } else {
            child.kill9()
        };
        if let Exit::Code(c) = how {
            assert_eq!(c, 0, "incarnation {incarnations} failed (see its stderr)");
        }
        let first = w.at(1).load(Ordering::Acquire);
        if first != 0 {
            let first = first - 1;
            assert!(
                first == handled || first == handled + 1,
                "incarnation {incarnations} started at {first}; the previous ones had \
                 handled up to {handled} (exclusive)"
            );
        }
        assert!(incarnations < 100_000, "never finished");
    }
    let st = chan.stat();
    assert!(
        st.sent <= TOTAL && st.received <= TOTAL,
        "counters above the truth: {st:?}"
    );
    assert_eq!((st.sent, st.received), (TOTAL, TOTAL), "counters");
}

/// A named tailer whose stored position is inside a segment since lost in the middle of the
/// log (a later segment exists) resumes lazily, so its first read reports the loss as
/// damage. [`Tailer::skip_corrupt`] must then continue with the next segment there is, as it
/// does for a tailer that reached the gap by reading: it returned `None` ("no damage"), and
/// a reader doing what the docs say (skip, else wait and read again) met the same error for
/// ever. Run in a child under the watchdog.
#[test]
fn named_tailer_resumed_inside_a_missing_segment_can_skip_it() {
    let _g = common::serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_queue(&dir);
    let mut seq = 0u64;
    while queue_util::segments(&dir).len() < 5 {
        app.append(&payload(seq)).unwrap();
        seq += 1;
    }
    let end = seq;
    drop(app);
    let st = queue::stat(&dir).unwrap();
    let (gap, after) = (st.segments[2].first_seq, st.segments[3].first_seq);
    for resume_at in [gap, gap + 3] {
        let name = format!("n{resume_at}");
        let mut t = TailerOptions::new().name(&name).open(&dir).unwrap();
        t.seek(StartAt::Seq(resume_at)).unwrap();
        drop(t);
    }
    std::fs::remove_file(&st.segments[2].path).unwrap();
    let d = &dir;
    for resume_at in [gap, gap + 3] {
        let mut child = fork(|| {
            let name = format!("n{resume_at}");
            let mut t = match TailerOptions::new().name(&name).open(d) {
                Ok(t) => t,
                Err(e) => return fail(4, format!("open: {e}")),
            };
            match t.try_next() {
                Err(ReadError::Corrupt(c))
                    if matches!(c.reason, queue::CorruptReason::BadSegment { .. }) => {}
                other => return fail(3, format!("first read: {:?}", other.map(|r| r.is_some()))),
            }
            match t.skip_corrupt() {
                Ok(Some(s)) if s.first == resume_at && s.next == after => {}
                other => return fail(6, format!("skip_corrupt from {resume_at}: {other:?}")),
            }
            let mut n = after;
            loop {
                match t.try_next() {
                    Ok(Some(rec)) if rec.seq() == n => n += 1,
                    Ok(Some(rec)) => return fail(3, format!("got {} for {n}", rec.seq())),
                    Ok(None) => break,
                    Err(e) => return fail(5, format!("at {n}: {e}")),
                }
            }
            if n == end {
                0
            } else {
                fail(7, format!("ended at {n}, not {end}"))
            }
        });
        assert_eq!(
            child.wait(),
            Exit::Code(0),
            "resumed at {resume_at} (gap {gap}..{after}): see the child's stderr"
        );
    }
}

/// Message `i` of MPSC sender `k`: `k`, `i`, then 0 to 183 bytes derived from both, so that
/// records of one to seven blocks (and pads before the wrap) come and go.
fn mpsc_msg(k: u64, i: u64) -> Vec<u8> {
    let mut v = k.to_le_bytes().to_vec();
    v.extend_from_slice(&i.to_le_bytes());
    let filler = (i.wrapping_mul(7919).wrapping_add(k * 31) % 184) as usize;
    v.extend((0..filler).map(|j| (i as u8).wrapping_mul(3) ^ (j as u8) ^ (k as u8)));
    v
}

/// MPSC: receivers killed at random points (inside a receive, too) and replaced while this
/// process sends from two producer slots. Each incarnation must start where the previous
/// ones stopped (exactly once: at most the one message in hand when the kill came is not
/// recorded, as for SPSC), keep each sender's order, and never see a damaged message or
/// report corruption. Before the fix, a kill between marking a consumed record's blocks free
/// for the next lap and publishing the position left the next receiver `Corrupted` ("claim
/// word of another lap") for good.
#[test]
fn mpsc_receivers_killed_and_replaced_continue_exactly() {
    let _g = common::serial();
    const TOTAL: u64 = 100_000; // per sender
    let tmp = tempdir();
    let path = tmp.path().join("chan");
    let chan = mapipc::channel::ChannelOptions::new(mapipc::channel::Kind::Mpsc)
        .capacity(4096)
        .create(&path)
        .unwrap();
    let mut txs = [chan.sender().unwrap(), chan.sender().unwrap()];
    // Per sender k: word 2k, the next message to handle; word 2k + 1, the first message
    // the current incarnation handled, + 1 (0: none yet).
    let words = Words::new();
    let w = &words;
    let mut rng = Rng::new(seed());
    let mut sent = [0u64; 2];
    let mut incarnations = 0u64;
    let done = |w: &Words| (0..2).all(|k| w.at(2 * k).load(Ordering::Acquire) == TOTAL);
    while sent != [TOTAL; 2] || !done(w) {
        incarnations += 1;
        let handled = [
            w.at(0).load(Ordering::Acquire),
            w.at(2).load(Ordering::Acquire),
        ];
        w.at(1).store(0, Ordering::Release);
        w.at(3).store(0, Ordering::Release);
        let c2 = chan.clone();
        let mut child = fork(move || {
            let mut rx = match c2.receiver() {
                Ok(rx) => rx,
                Err(e) => return fail(4, format!("receiver: {e}")),
            };
            let mut next = [
                w.at(0).load(Ordering::Acquire),
                w.at(2).load(Ordering::Acquire),
            ];
            let mut first = [true; 2];
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(m) if m.len() >= 16 => {
                        let k = u64::from_le_bytes(m[..8].try_into().unwrap());
                        let i = u64::from_le_bytes(m[8..16].try_into().unwrap());
                        if k > 1 || m != mpsc_msg(k, i) {
                            return fail(6, format!("damaged message {m:?}"));
                        }
                        let k = k as usize;
                        // The first message of each sender may be one past the last one
                        // recorded (returned, or taken from the ring, just before a kill).
                        if i != next[k] && !(first[k] && i == next[k] + 1) {
                            return fail(7, format!("sender {k}: got {i}, expected {}", next[k]));
                        }
                        if first[k] {
                            w.at(2 * k as u64 + 1).store(i + 1, Ordering::Release);
                            first[k] = false;
                        }
                        next[k] = i + 1;
                        w.at(2 * k as u64).store(i + 1, Ordering::Release);
                        if next == [TOTAL; 2] {
                            return 0;
                        }
                    }
                    Ok(m) => return fail(6, format!("short message {m:?}")),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(e) => return fail(5, format!("recv: {e}")),
                }
            }
        });
        // Send a random quota, alternating senders at random, then kill the receiver while
        // it is most likely still draining the ring.
        let quota = rng.range(0, 2000);
        let mut n = 0;
        while n < quota && sent != [TOTAL; 2] {
            let k = if sent[0] == TOTAL {
                1
            } else if sent[1] == TOTAL {
                0
            } else {
                (rng.next_u64() & 1) as usize
            };
            match txs[k].send_timeout(&mpsc_msg(k as u64, sent[k]), Duration::from_millis(20)) {
                Ok(()) => {
                    sent[k] += 1;
                    n += 1;
                }
                Err(mapipc::channel::SendTimeoutError::Timeout) => {
                    if child.try_wait().is_some() {
                        break;
                    }
                }
                Err(e) => panic!("send {k}/{}: {e}", sent[k]),
            }
        }
        let how = if sent == [TOTAL; 2] {
            child.wait()
        } else {
            child.kill9()
        };
        if let Exit::Code(c) = how {
            assert_eq!(c, 0, "incarnation {incarnations} failed (see its stderr)");
        }
        let skipped: u64 = (0..2)
            .map(|k| {
                let first = w.at(2 * k + 1).load(Ordering::Acquire);
                (first != 0 && first - 1 != handled[k as usize]) as u64
            })
            .sum();
        assert!(
            skipped <= 1,
            "incarnation {incarnations} skipped a message of both senders"
        );
        assert!(incarnations < 100_000, "never finished");
    }
    let st = chan.stat();
    assert_eq!(st.sent, 2 * TOTAL, "sent counter");
    // A receiver killed while taking a message may leave the count one short (`Stat`).
    assert!(
        st.received <= 2 * TOTAL && st.received >= 2 * TOTAL - (incarnations - 1),
        "received counter after {incarnations} incarnations: {st:?}"
    );
    assert_eq!(st.aborted, 0, "nothing was aborted: {st:?}");
}
