//! `mapipc::queue` under crashes and damage: appenders and tailers killed at random points in
//! real processes, and the states such crashes (or damage) leave behind: a sealed last
//! segment whose successor was never published, a segment missing in the middle, a damaged
//! length field near the tail. Every child runs under the watchdog of
//! `common::Child::wait`; no assertion depends on timing.

mod common;
mod queue_util;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::{fork, serial, spin_until, Exit, Rng, WATCHDOG};
use queue_util::{check_log_of, segments, small_segments, tempdir};

use mapipc::map::Mmap;
use mapipc::queue::{
    self, AckMode, CorruptReason, QueueOptions, ReadError, StartAt, Tailer, TailerOptions,
};

/// The payload of record `seq`: its sequence number, then 0 to 2999 bytes derived from it
/// (records from empty-ish to several pages; some span page boundaries).
fn payload(seq: u64) -> Vec<u8> {
    let mut v = seq.to_le_bytes().to_vec();
    let filler = (seq.wrapping_mul(7919) % 3000) as usize;
    v.extend((0..filler).map(|i| (seq as u8).wrapping_add(i as u8)));
    v
}

/// [`queue_util::check_log_of`] with this file's payloads.
fn check_log(dir: &Path) -> u64 {
    check_log_of(dir, payload)
}

/// Reads from the start in a forked child (a hang is caught by the watchdog); the child
/// exits with 0 when `try_next` ended with `None` after exactly `expect` valid records, 3
/// on a wrong record, 4 on an error, 5 on a wrong count.
fn read_all_in_child(dir: &Path, expect: u64) -> Exit {
    let mut child = fork(|| {
        let mut t = match Tailer::open(dir) {
            Ok(t) => t,
            Err(_) => return 4,
        };
        let mut n = 0u64;
        loop {
            match t.try_next() {
                Ok(Some(rec)) if rec.seq() == n && rec.to_vec().ok() == Some(payload(n)) => n += 1,
                Ok(Some(_)) => return 3,
                Ok(None) => return if n == expect { 0 } else { 5 },
                Err(_) => return 4,
            }
        }
    });
    child.wait_or_kill().unwrap_or_else(|e| {
        panic!("the reader hung (killed by the watchdog: {e:?}) instead of returning")
    })
}

/// An appender killed after sealing its segment (end marker written) but before publishing
/// the next one leaves a sealed last segment and no successor. Tailers reaching the end
/// marker must see the end of the log (`try_next` returns `None`), not spin for ever
/// inside `try_next` (the position they look for is the end marker's, which `locate`
/// used to return as a record position, so `advance` went round the end marker, the
/// missing segment and `locate` again, without end).
#[test]
fn a_tailer_at_a_sealed_segment_whose_successor_is_unpublished_returns() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_segments(&dir);
    let mut seq = 0u64;
    while segments(&dir).len() < 2 {
        app.append(&payload(seq)).unwrap();
        seq += 1;
    }
    drop(app);
    // The state of a crash between the end marker and the rename: segment 1 (holding the
    // last record, appended after the roll) is not there.
    std::fs::remove_file(&segments(&dir)[1]).unwrap();
    let in_first = seq - 1;
    assert_eq!(read_all_in_child(&dir, in_first), Exit::Code(0));
    // Blocking reads with a deadline must time out too, not spin past it.
    let mut child = fork(|| {
        let mut t = TailerOptions::new().from(StartAt::End).open(&dir).unwrap();
        let timed_out = matches!(
            t.next_timeout(std::time::Duration::from_millis(50)),
            Ok(None)
        );
        if timed_out && t.next_seq() == in_first {
            0
        } else {
            3
        }
    });
    assert_eq!(child.wait_or_kill(), Ok(Exit::Code(0)));
    // A new appender finishes the roll; the log continues after the end marker.
    let mut app = QueueOptions::new().open_appender(&dir).unwrap();
    assert_eq!(app.next_seq(), in_first);
    for s in in_first..in_first + 10 {
        assert_eq!(app.append(&payload(s)).unwrap(), s);
    }
    drop(app);
    assert_eq!(check_log(&dir), in_first + 10);
}

/// Appends until the queue has `n` segments; returns the next sequence number.
fn fill_segments(dir: &Path, n: usize) -> u64 {
    let mut app = small_segments(dir);
    let mut seq = 0u64;
    while segments(dir).len() < n {
        app.append(&payload(seq)).unwrap();
        seq += 1;
    }
    for _ in 0..5 {
        app.append(&payload(seq)).unwrap();
        seq += 1;
    }
    seq
}

/// The first sequence number of a segment file (header offset 32).
fn first_seq_of(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    u64::from_ne_bytes(bytes[32..40].try_into().unwrap())
}

/// A segment deleted in the middle of the log is damage: a tailer reaching it must say so
/// (`ReadError::Corrupt`), never take it for the end of the log (which silently dropped
/// every later record, and made `mapipc queue tail` exit 0 after the gap, or spin); it can
/// then skip to the next segment. Seeking into the gap is refused as damage too, not as
/// "past the end".
#[test]
fn a_segment_missing_in_the_middle_is_reported_not_taken_for_the_end() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let next = fill_segments(&dir, 5);
    let segs = segments(&dir);
    let gap_first = first_seq_of(&segs[2]);
    let after_gap = first_seq_of(&segs[3]);
    std::fs::remove_file(&segs[2]).unwrap();

    let mut child = fork(|| {
        let mut t = Tailer::open(&dir).unwrap();
        let mut n = 0u64;
        loop {
            match t.try_next() {
                Ok(Some(rec)) if rec.seq() == n && rec.to_vec().ok() == Some(payload(n)) => n += 1,
                Ok(Some(_)) => return 3,
                Ok(None) => return 5,
                Err(ReadError::Corrupt(c))
                    if c.seq == gap_first
                        && n == gap_first
                        && matches!(c.reason, CorruptReason::BadSegment { .. }) =>
                {
                    break
                }
                Err(_) => return 4,
            }
        }
        match t.skip_corrupt() {
            Ok(Some(s)) if s.first == gap_first && s.next == after_gap => {}
            _ => return 6,
        }
        let mut n = after_gap;
        while let Ok(Some(rec)) = t.try_next() {
            if rec.seq() != n || rec.to_vec().ok() != Some(payload(n)) {
                return 3;
            }
            n += 1;
        }
        if n == next {
            0
        } else {
            7
        }
    });
    let ended = child
        .wait_or_kill()
        .unwrap_or_else(|e| panic!("the reader hung at the gap (killed: {e:?})"));
    assert_eq!(ended, Exit::Code(0), "see the exit codes of the child");

    let mut t = Tailer::open(&dir).unwrap();
    let err = t.seek(StartAt::Seq(gap_first + 1)).unwrap_err();
    assert!(
        matches!(&err, ReadError::Corrupt(c) if matches!(c.reason, CorruptReason::BadSegment { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("missing"), "{err}");
    // Records after the gap can still be sought.
    t.seek(StartAt::Seq(after_gap + 1)).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), after_gap + 1);
}

/// Offset of the record header of record `seq` in a segment file, found by walking the
/// records from the data offset (header offset 40).
fn record_offset(path: &Path, seq: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut off = u64::from_ne_bytes(bytes[40..48].try_into().unwrap()) as usize;
    loop {
        let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        let s = u64::from_ne_bytes(bytes[off + 8..off + 16].try_into().unwrap());
        if s == seq {
            return off as u64;
        }
        off += (24 + len).next_multiple_of(8);
    }
}

/// Flips bits of a byte of a file.
fn xor_byte(path: &Path, offset: u64, mask: u8) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= mask;
    f.write_all_at(&b, offset).unwrap();
}

/// A bit flipped in the length field of a committed record near the tail makes the record
/// fail its CRC, and its stated extent now reaches past the end of the log. Recovery used
/// to trust that extent, search for later records only beyond it, find none, call the
/// damage a torn tail and zero it *and every valid committed record after it*. A damaged
/// committed record is damage in the middle when valid records follow it: they are kept.
#[test]
fn a_damaged_length_near_the_tail_does_not_make_recovery_erase_later_records() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = QueueOptions::new().open_appender(&dir).unwrap();
    // Small records, so that the last index entry (every 64) is at record 64 and records
    // 80..100 take less than the 4096 bytes the flip adds to the length of record 80.
    let small = |s: u64| s.to_le_bytes().to_vec();
    for s in 0..100u64 {
        app.append(&small(s)).unwrap();
    }
    drop(app);
    let seg = &segments(&dir)[0];
    let off = record_offset(seg, 80);
    xor_byte(seg, off + 1, 0x10); // length += 4096

    let app = QueueOptions::new().open_appender(&dir).unwrap();
    let rec = app.recovery().clone();
    let next = app.next_seq();
    drop(app);
    assert!(
        rec.cut.is_none(),
        "a committed record was cut: {:?}",
        rec.cut
    );
    assert_eq!(rec.damaged.len(), 1, "{:?}", rec.damaged);
    assert_eq!(rec.damaged[0].seq, 80);
    assert_eq!(next, 100, "records 81..100 survive recovery");

    let mut t = Tailer::open(&dir).unwrap();
    for s in 0..80u64 {
        assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), small(s));
    }
    assert!(matches!(t.try_next(), Err(ReadError::Corrupt(c)) if c.seq == 80));
    let skipped = t.skip_corrupt().unwrap().unwrap();
    assert_eq!((skipped.first, skipped.next), (80, 81));
    for s in 81..100u64 {
        assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), small(s));
    }
}

/// An appender (copying and zero-copy appends, records up to 3 KiB, 64 KiB segments so
/// kills land in rolls) and a named tailer (manual acknowledgement after checking each
/// record) in two processes, both SIGKILLed at random points, 30 times. After each round:
/// recovery finds exactly the acknowledged prefix (or one more), the log is exactly
/// `payload(0..n)`, `verify` is clean, and the tailer's stored position never passed the
/// log nor went backwards.
#[test]
fn appender_and_named_tailer_killed_at_random_points() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(small_segments(&dir));
    let shared = Mmap::anonymous(4096).unwrap();
    let acked = shared.atomic_u64(0).unwrap();
    let read = shared.atomic_u64(8).unwrap();
    let bad = shared.atomic_u64(16).unwrap();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    let mut tailer_pos = 0u64;
    for round in 0..30 {
        acked.store(total, Ordering::SeqCst);
        read.store(tailer_pos, Ordering::SeqCst);
        let mut writer = fork(|| {
            let mut app = QueueOptions::new().open_appender(&dir).unwrap();
            let mut seq = app.next_seq();
            loop {
                let p = payload(seq);
                let got = if seq % 3 == 0 {
                    let mut g = app.reserve(p.len()).unwrap();
                    g.copy_from_slice(&p).unwrap();
                    g.commit().unwrap()
                } else {
                    app.append(&p).unwrap()
                };
                if got != seq {
                    return 2;
                }
                seq += 1;
                acked.store(seq, Ordering::SeqCst);
            }
        });
        let mut reader = fork(|| {
            let mut t = TailerOptions::new()
                .name("worker")
                .ack(AckMode::Manual)
                .spin(0)
                .open(&dir)
                .unwrap();
            loop {
                let expect = t.next_seq();
                match t.next_timeout(WATCHDOG) {
                    Ok(Some(rec)) => {
                        if rec.seq() != expect || rec.to_vec().ok() != Some(payload(expect)) {
                            bad.store(1 + expect, Ordering::SeqCst);
                            return 3;
                        }
                    }
                    _ => {
                        bad.store(u64::MAX, Ordering::SeqCst);
                        return 4;
                    }
                }
                t.ack().unwrap();
                read.store(expect + 1, Ordering::SeqCst);
            }
        });
        let extra = rng.range(0, 1500);
        spin_until("the appender to make progress", || {
            acked.load(Ordering::SeqCst) > total + extra || bad.load(Ordering::SeqCst) != 0
        });
        // Kill in either order.
        let (first, second) = if rng.range(0, 1) == 0 {
            (&mut writer, &mut reader)
        } else {
            (&mut reader, &mut writer)
        };
        first.kill9();
        second.kill9();
        assert_eq!(
            bad.load(Ordering::SeqCst),
            0,
            "round {round}: the reader saw a bad record"
        );
        let acknowledged = acked.load(Ordering::SeqCst);
        let app = QueueOptions::new().open_appender(&dir).unwrap();
        let rec = app.recovery().clone();
        assert!(rec.damaged.is_empty(), "round {round}: {:?}", rec.damaged);
        let recovered = app.next_seq();
        drop(app);
        assert!(
            recovered == acknowledged || recovered == acknowledged + 1,
            "round {round}: recovered {recovered}, {acknowledged} acknowledged"
        );
        assert_eq!(check_log(&dir), recovered, "round {round}");
        let report = queue::verify(&dir).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        let st = queue::stat(&dir).unwrap();
        let pos = st.tailers[0].next_seq;
        let read_ok = read.load(Ordering::SeqCst);
        assert!(
            pos >= tailer_pos && pos <= recovered && (pos == read_ok || pos == read_ok + 1),
            "round {round}: stored position {pos}, previously {tailer_pos}, checked {read_ok}, \
             log {recovered}"
        );
        tailer_pos = pos;
        total = recovered;
    }
    assert!(segments(&dir).len() > 3, "the kills spanned segment rolls");
}

/// A segment replaced by a symbolic link to nothing is damage named as such: it used to
/// look like a segment deleted by retention during each lookup, which was retried until
/// the tailer gave up with "segments keep disappearing while listed".
#[test]
fn a_dangling_symlink_segment_is_reported_as_such() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let next = fill_segments(&dir, 5);
    let segs = segments(&dir);
    let after = first_seq_of(&segs[3]);
    std::fs::remove_file(&segs[2]).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &segs[2]).unwrap();

    let mut t = Tailer::open(&dir).unwrap();
    let err = loop {
        match t.try_next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the log seemed to end at {}", t.next_seq()),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, ReadError::Corrupt(c) if matches!(c.reason, CorruptReason::BadSegment { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(t.skip_corrupt().unwrap().unwrap().next, after);
    let mut n = after;
    while let Some(rec) = t.try_next().unwrap() {
        assert_eq!(rec.seq(), n);
        n += 1;
    }
    assert_eq!(n, next);
    let report = queue::verify(&dir).unwrap();
    assert!(
        report.problems.iter().any(|p| p.segment == 2),
        "{:?}",
        report.problems
    );
}

/// Retention deleting segments (no named tailer protects them) while an anonymous tailer
/// in another process follows the appender across rolls: the tailer reads only correct,
/// contiguous records, or is told its position is gone; never garbage, never a hang.
#[test]
fn retention_under_a_following_tailer_gives_records_or_gone() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_segments(&dir);
    const N: u64 = 20_000;
    let mut child = fork(|| {
        let mut t = TailerOptions::new().spin(0).open(&dir).unwrap();
        // Retention may already have deleted the first records.
        let mut expect = t.next_seq();
        while expect < N {
            match t.next_timeout(WATCHDOG) {
                Ok(Some(rec)) => {
                    // After `Gone`, the tailer is moved to the oldest record there is.
                    if rec.seq() != expect || rec.to_vec().ok() != Some(payload(expect)) {
                        return 3;
                    }
                    expect += 1;
                }
                Ok(None) => return 4,
                Err(ReadError::Gone {
                    first_available, ..
                }) if first_available > expect => {
                    if t.seek(StartAt::Start).is_err() {
                        return 6;
                    }
                    expect = t.next_seq();
                }
                Err(_) => return 5,
            }
        }
        0
    });
    for s in 0..N {
        app.append(&payload(s)).unwrap();
        if s % 500 == 0 {
            queue::retain(&dir, queue::Retention::new().max_segments(2)).unwrap();
        }
    }
    assert_eq!(child.exit_code(), 0);
}

/// `retain` killed with SIGKILL at random points, 40 times, in a process of its own that
/// runs retention (`--max-segments 2`) in a loop, while an appender and two named tailers
/// (manual acknowledgement after checking each record) run in three other processes. One
/// tailer reopens itself every 500 records, the other also seeks back to the start of the
/// queue first: a tailer moving back while retention runs is the race the position lock
/// closes. The tailers must never be told their records are gone (retention is not
/// forced) and must resume where they stored their position. After each kill: `verify` is
/// clean, no named tailer's position is before the oldest record, and the log from the
/// oldest record is contiguous and correct up to what the appender had published. At the
/// end, with everything stopped: recovery finds no damage, both tailers reopen and read.
#[test]
fn retain_killed_at_random_points_beside_an_appender_and_tailers() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(small_segments(&dir));
    let shared = Mmap::anonymous(4096).unwrap();
    let appended = shared.atomic_u64(0).unwrap();
    let acked = [
        shared.atomic_u64(8).unwrap(),
        shared.atomic_u64(16).unwrap(),
    ];
    let bad = shared.atomic_u64(24).unwrap();
    let runs = shared.atomic_u64(32).unwrap();
    let stop = shared.atomic_u64(40).unwrap();
    let names = ["steady", "rewinder"];
    // Tailers are created before the appender starts, at the start.
    for name in names {
        TailerOptions::new().name(name).open(&dir).unwrap();
    }
    // The appender stays at most this far ahead of the slower tailer (the disk is tmpfs).
    const AHEAD: u64 = 3000;
    let mut writer = fork(|| {
        let mut app = QueueOptions::new().open_appender(&dir).unwrap();
        let mut seq = app.next_seq();
        while stop.load(Ordering::SeqCst) == 0 {
            let slowest = acked[0]
                .load(Ordering::SeqCst)
                .min(acked[1].load(Ordering::SeqCst));
            if seq > slowest + AHEAD {
                std::thread::yield_now();
                continue;
            }
            if app.append(&payload(seq)).ok() != Some(seq) {
                bad.store(1, Ordering::SeqCst);
                return 2;
            }
            seq += 1;
            appended.store(seq, Ordering::SeqCst);
        }
        0
    });
    let reader = |i: usize| {
        let (dir, acked, bad, stop) = (&dir, &acked, bad, stop);
        fork(move || {
            let fail = |code: u64| {
                bad.store(100 * (i as u64 + 1) + code, Ordering::SeqCst);
                code as i32
            };
            let open = || {
                TailerOptions::new()
                    .name(names[i])
                    .ack(AckMode::Manual)
                    .open(dir)
            };
            let Ok(mut t) = open() else { return fail(1) };
            let mut n = 0u64;
            while stop.load(Ordering::SeqCst) == 0 {
                let expect = t.next_seq();
                match t.try_next() {
                    Ok(Some(rec)) => {
                        if rec.seq() != expect || rec.to_vec().ok() != Some(payload(expect)) {
                            return fail(3);
                        }
                    }
                    Ok(None) => {
                        std::thread::yield_now();
                        continue;
                    }
                    Err(ReadError::Gone { .. }) => return fail(5),
                    Err(_) => return fail(4),
                }
                if t.ack().is_err() {
                    return fail(4);
                }
                acked[i].store(expect + 1, Ordering::SeqCst);
                n += 1;
                if n % 500 == 0 {
                    if i == 1 {
                        if t.seek(StartAt::Start).is_err() {
                            return fail(6);
                        }
                        acked[i].store(t.next_seq(), Ordering::SeqCst);
                    }
                    let at = t.next_seq();
                    drop(t);
                    t = match open() {
                        Ok(t) if t.next_seq() == at => t,
                        _ => return fail(7),
                    };
                }
            }
            0
        })
    };
    let mut readers = [reader(0), reader(1)];
    // The log from the oldest record, checked up to `upto` (all published); returns the
    // oldest record.
    let check_from_start = |upto: u64, round: usize| -> u64 {
        let mut t = Tailer::open(&dir).unwrap();
        let first = t.next_seq();
        let mut n = first;
        while n < upto {
            let rec = t.try_next().unwrap().unwrap_or_else(|| {
                panic!("round {round}: the log ends at {n}, {upto} were appended")
            });
            assert_eq!(rec.seq(), n, "round {round}");
            assert_eq!(
                rec.to_vec().unwrap(),
                payload(n),
                "round {round}: record {n}"
            );
            n += 1;
        }
        first
    };
    let mut rng = Rng::new(common::seed());
    for round in 0..40 {
        let before = runs.load(Ordering::SeqCst);
        let mut retainer = fork(|| loop {
            match queue::retain(&dir, queue::Retention::new().max_segments(2)) {
                Ok(_) => runs.fetch_add(1, Ordering::SeqCst),
                Err(_) => {
                    bad.store(900, Ordering::SeqCst);
                    return 9;
                }
            };
        });
        let target = before + rng.range(0, 3);
        spin_until("retention runs", || {
            runs.load(Ordering::SeqCst) >= target || bad.load(Ordering::SeqCst) != 0
        });
        for _ in 0..rng.range(0, 3000) {
            std::thread::yield_now();
        }
        assert_eq!(
            retainer.kill9(),
            Exit::Signal(libc::SIGKILL),
            "round {round}"
        );
        assert_eq!(
            bad.load(Ordering::SeqCst),
            0,
            "round {round}: a child failed (100 x tailer + code; 900 retain)"
        );
        let upto = appended.load(Ordering::SeqCst);
        let report = queue::verify(&dir).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        let st = queue::stat(&dir).unwrap();
        let first = st.first_seq.unwrap();
        for t in &st.tailers {
            assert_eq!(t.problem, None, "round {round}: {}", t.name);
            assert!(
                t.next_seq >= first,
                "round {round}: tailer {} at {}, the oldest record is {first}",
                t.name,
                t.next_seq
            );
        }
        assert!(check_from_start(upto, round) <= first);
    }
    stop.store(1, Ordering::SeqCst);
    writer.expect_ok("the appender");
    for r in &mut readers {
        r.expect_ok("a tailer");
    }
    assert!(runs.load(Ordering::SeqCst) > 0);
    let app = QueueOptions::new().open_appender(&dir).unwrap();
    assert!(app.recovery().damaged.is_empty(), "{:?}", app.recovery());
    let end = app.next_seq();
    drop(app);
    assert!(queue::verify(&dir).unwrap().is_ok());
    let first = check_from_start(end, 40);
    assert!(first > 0, "retention deleted segments");
    for name in names {
        let mut t = TailerOptions::new().name(name).open(&dir).unwrap();
        let at = t.next_seq();
        assert!(
            at >= first && at <= end,
            "{name} at {at}, log {first}..{end}"
        );
        match t.try_next() {
            Ok(Some(rec)) => assert_eq!(rec.seq(), at),
            Ok(None) => assert_eq!(at, end),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

/// The largest record a segment holds, appended into a partly filled segment (so it rolls)
/// by both append paths, reads back intact; one byte more is refused with nothing written.
#[test]
fn largest_records_roll_and_read_back() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_segments(&dir);
    let max = app.max_payload() as usize;
    app.append(b"small").unwrap();
    let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    assert_eq!(app.append(&big).unwrap(), 1);
    let mut g = app.reserve(max).unwrap();
    g.copy_from_slice(&big).unwrap();
    assert_eq!(g.commit().unwrap(), 2);
    assert!(app.append(&vec![0u8; max + 1]).is_err());
    assert!(app.reserve(max + 1).is_err());
    assert_eq!(app.append(b"").unwrap(), 3);
    drop(app);
    let mut t = Tailer::open(&dir).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), b"small");
    assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), big);
    assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), big);
    assert!(t.try_next().unwrap().unwrap().is_empty());
    assert!(t.try_next().unwrap().is_none());
    assert!(queue::verify(&dir).unwrap().is_ok());
}

/// Two processes that both want to append, waiting for the lock: one at a time, and the
/// log is the two runs one after the other.
#[test]
fn two_waiting_appenders_take_turns() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(small_segments(&dir));
    let run = || {
        fork(|| {
            let mut app = match QueueOptions::new().wait_for_lock(true).open_appender(&dir) {
                Ok(a) => a,
                Err(_) => return 2,
            };
            let first = app.next_seq();
            for i in 0..3000u64 {
                if app.append(&payload(first + i)).ok() != Some(first + i) {
                    return 3;
                }
            }
            0
        })
    };
    let mut a = run();
    let mut b = run();
    assert_eq!(a.exit_code(), 0);
    assert_eq!(b.exit_code(), 0);
    assert_eq!(check_log(&dir), 6000);
}

/// The damaged segment `c` names, and the text of the error, checked: a header problem of
/// segment `n` (its file named), for sequence number `seq`.
fn assert_damaged_segment(err: &ReadError, dir: &Path, n: u64, seq: u64, what: &str) {
    let file = dir.join(format!("{n:020}.seg"));
    match err {
        ReadError::Corrupt(c) => {
            assert_eq!((c.segment, c.seq, &c.file), (n, seq, &file), "{err}");
            assert!(
                matches!(&c.reason, CorruptReason::BadSegment { what: w } if w.contains(what)),
                "{err}"
            );
        }
        other => panic!("seek to {seq}: expected segment {n} reported as damaged, got {other}"),
    }
    assert!(err.to_string().contains(&format!("{n:020}.seg")), "{err}");
}

/// A seek binary-searches the segment headers. A damaged header on its way used to fail
/// the seek for *every* sequence number whose search opened that segment, even one held by
/// a healthy segment before or after it. Now a seek to a record of a healthy segment
/// succeeds and reads it; a seek to one only a damaged segment can hold reports that
/// segment (file and header problem), the first of a run of damaged ones. Damaged: the
/// search's first probe (the middle), the first segment, the last one, two adjacent ones,
/// several apart, a middle one cut short.
#[test]
fn a_seek_finds_records_in_healthy_segments_around_damaged_headers() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let next = fill_segments(&dir, 9);
    let segs = segments(&dir);
    let len = segs.len();
    let firsts: Vec<u64> = segs.iter().map(|p| first_seq_of(p)).collect();
    // The segment index holding `s` (the last one for `s >= next`).
    let holder = |s: u64| firsts.iter().rposition(|&f| f <= s).unwrap();
    let cases: [(&[usize], bool); 7] = [
        (&[len / 2], false),
        (&[0], false),
        (&[len - 1], false),
        (&[3, 4], false),
        (&[1, len / 2, len - 2], false),
        (&[0, 1, 2], false),
        (&[len / 2], true),
    ];
    for (damaged, cut) in cases {
        // Opened while healthy; moved by `seek` below.
        let mut t = Tailer::open(&dir).unwrap();
        for &i in damaged {
            if cut {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&segs[i])
                    .unwrap();
                f.set_len(10_000).unwrap();
            } else {
                xor_byte(&segs[i], 33, 0x40); // the first sequence number: CRC mismatch
            }
        }
        let what = if cut { "10000 bytes" } else { "CRC" };
        for s in 0..=next + 1 {
            let h = holder(s);
            let in_damaged = damaged.contains(&h);
            let r = t.seek(StartAt::Seq(s));
            if in_damaged {
                // The first damaged segment of the run holding `s`.
                let mut first = h;
                while first > 0 && damaged.contains(&(first - 1)) {
                    first -= 1;
                }
                let err = r.expect_err("a record only a damaged segment can hold");
                assert_damaged_segment(&err, &dir, first as u64, s, what);
                continue;
            }
            if s > next {
                assert!(
                    matches!(r, Err(ReadError::PastEnd { next: n, .. }) if n == next),
                    "seek to {s} with {damaged:?} damaged: {r:?}"
                );
                continue;
            }
            r.unwrap_or_else(|e| panic!("seek to {s} with {damaged:?} damaged: {e}"));
            assert_eq!(t.next_seq(), s);
            if s == next {
                assert!(t.try_next().unwrap().is_none());
                continue;
            }
            let rec = t.try_next().unwrap().unwrap();
            assert_eq!((rec.seq(), rec.to_vec().unwrap()), (s, payload(s)));
            // Reading on from the last record before a damaged segment reports it.
            if h + 1 < len && damaged.contains(&(h + 1)) && s + 1 == firsts[h + 1] {
                let err = t.try_next().unwrap_err();
                assert_damaged_segment(&err, &dir, h as u64 + 1, s + 1, what);
            }
        }
        drop(t);
        if cut {
            // The cut segment lost its records: build the same queue again.
            std::fs::remove_dir_all(&dir).unwrap();
            assert_eq!(fill_segments(&dir, 9), next);
        } else {
            for &i in damaged {
                xor_byte(&segs[i], 33, 0x40);
            }
        }
        assert!(queue::verify(&dir).unwrap().is_ok(), "{damaged:?} restored");
    }
}

/// Two adjacent segments with damaged headers: a reader reaching them, a tailer sought
/// into them, and a named tailer resuming inside them all get past the whole run with one
/// `skip_corrupt` (it stopped at the second header with the same error again, for ever).
#[test]
fn skip_corrupt_gets_past_a_run_of_damaged_segment_headers() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let next = fill_segments(&dir, 7);
    let segs = segments(&dir);
    let firsts: Vec<u64> = segs.iter().map(|p| first_seq_of(p)).collect();
    // A named tailer whose position is inside segment 4.
    let inside = firsts[4] + 1;
    drop(
        TailerOptions::new()
            .name("w")
            .from(StartAt::Seq(inside))
            .open(&dir)
            .unwrap(),
    );
    xor_byte(&segs[3], 33, 0x40);
    xor_byte(&segs[4], 0, 0xff); // the magic

    let read_rest = |t: &mut Tailer, from: u64| {
        let mut n = from;
        while let Some(rec) = t.try_next().unwrap() {
            assert_eq!((rec.seq(), rec.to_vec().unwrap()), (n, payload(n)));
            n += 1;
        }
        assert_eq!(n, next);
    };
    // Reading into the run.
    let mut t = Tailer::open(&dir).unwrap();
    let err = loop {
        match t.try_next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the damaged segments were not reported"),
            Err(e) => break e,
        }
    };
    assert_damaged_segment(&err, &dir, 3, firsts[3], "CRC");
    let skipped = t.skip_corrupt().unwrap().unwrap();
    assert_eq!((skipped.first, skipped.next), (firsts[3], firsts[5]));
    read_rest(&mut t, firsts[5]);
    // Sought into the run: refused, naming its first segment and both.
    let err = TailerOptions::new()
        .from(StartAt::Seq(inside))
        .open(&dir)
        .unwrap_err();
    let queue::OpenError::Read(err) = err else {
        panic!("{err}")
    };
    assert_damaged_segment(&err, &dir, 3, inside, "CRC");
    assert!(
        err.to_string()
            .contains("the header of segment 4 is damaged too"),
        "{err}"
    );
    // A named tailer resuming inside the run.
    let mut t = TailerOptions::new().name("w").open(&dir).unwrap();
    assert_eq!(t.next_seq(), inside);
    let err = t.try_next().unwrap_err();
    assert_damaged_segment(&err, &dir, 3, inside, "CRC");
    let skipped = t.skip_corrupt().unwrap().unwrap();
    assert_eq!((skipped.first, skipped.next), (inside, firsts[5]));
    read_rest(&mut t, firsts[5]);
}

/// Seeks at the edges: the first and last record, the next one to come, past it, the first
/// record of each segment and the end marker's position, a position deleted by retention
/// (just before the oldest record), and a queue without any segment (as it is between the
/// creation of its metadata and of its first segment, or after its segments were removed by
/// hand): there the next sequence number is the metadata's, and a seek past it was taken
/// as a position to wait at.
#[test]
fn seeks_at_the_edges_of_the_log() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    // No segment at all.
    drop(small_segments(&dir));
    for p in segments(&dir) {
        std::fs::remove_file(p).unwrap();
    }
    let mut t = Tailer::open(&dir).unwrap();
    assert_eq!(t.next_seq(), 0);
    t.seek(StartAt::End).unwrap();
    assert_eq!(t.next_seq(), 0);
    t.seek(StartAt::Seq(0)).unwrap();
    assert!(t.try_next().unwrap().is_none());
    let r = t.seek(StartAt::Seq(5));
    assert!(
        matches!(
            r,
            Err(ReadError::PastEnd {
                seq: 5,
                next: 0,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(matches!(
        TailerOptions::new().from(StartAt::Seq(1)).open(&dir),
        Err(queue::OpenError::Read(e)) if matches!(*e, ReadError::PastEnd { next: 0, .. })
    ));
    // An empty segment.
    let mut app = small_segments(&dir);
    let r = t.seek(StartAt::Seq(1));
    assert!(
        matches!(r, Err(ReadError::PastEnd { next: 0, .. })),
        "{r:?}"
    );
    t.seek(StartAt::Seq(0)).unwrap();
    app.append(&payload(0)).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 0);
    drop(app);
    drop(t);
    // Several segments.
    std::fs::remove_dir_all(&dir).unwrap();
    let next = fill_segments(&dir, 6);
    let segs = segments(&dir);
    let firsts: Vec<u64> = segs.iter().map(|p| first_seq_of(p)).collect();
    let mut t = Tailer::open(&dir).unwrap();
    let mut want = vec![0, next - 1];
    for &f in &firsts[1..] {
        want.extend([f - 1, f]); // the last record of a segment (before its end marker)
    }
    for s in want {
        t.seek(StartAt::Seq(s)).unwrap();
        let rec = t.try_next().unwrap().unwrap();
        assert_eq!((rec.seq(), rec.to_vec().unwrap()), (s, payload(s)));
    }
    t.seek(StartAt::Start).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 0);
    t.seek(StartAt::End).unwrap();
    assert_eq!(t.next_seq(), next);
    assert!(t.try_next().unwrap().is_none());
    t.seek(StartAt::Seq(next)).unwrap();
    assert!(t.try_next().unwrap().is_none());
    let r = t.seek(StartAt::Seq(next + 1));
    assert!(
        matches!(r, Err(ReadError::PastEnd { next: n, .. }) if n == next),
        "{r:?}"
    );
    let r = t.seek(StartAt::Seq(u64::MAX));
    assert!(matches!(r, Err(ReadError::PastEnd { .. })), "{r:?}");
    // Retention.
    queue::retain(&dir, queue::Retention::new().max_segments(3)).unwrap();
    let oldest = first_seq_of(&segments(&dir)[0]);
    assert_eq!(oldest, firsts[firsts.len() - 3]);
    for s in [0, oldest - 1] {
        let r = t.seek(StartAt::Seq(s));
        assert!(
            matches!(r, Err(ReadError::Gone { seq, first_available, .. })
                if seq == s && first_available == oldest),
            "{r:?}"
        );
    }
    t.seek(StartAt::Seq(oldest)).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), oldest);
    t.seek(StartAt::Start).unwrap();
    assert_eq!(t.next_seq(), oldest);
}

/// Seeks while an appender in another process appends and rolls segment after segment:
/// every record committed before a seek is found by it and read back intact; a seek to a
/// record appended while it runs either finds it or says it is past the end (never an
/// error or a wrong position); a seek to the next record to come waits there for it.
#[test]
fn seeks_while_an_appender_in_another_process_rolls() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(small_segments(&dir));
    const N: u64 = 6000;
    let shared = Mmap::anonymous(4096).unwrap();
    let committed = shared.atomic_u64(0).unwrap();
    let mut child = fork(|| {
        let mut app = match QueueOptions::new().open_appender(&dir) {
            Ok(a) => a,
            Err(_) => return 2,
        };
        for s in 0..N {
            if app.append(&payload(s)).ok() != Some(s) {
                return 3;
            }
            committed.store(s + 1, Ordering::SeqCst);
        }
        0
    });
    let mut rng = Rng::new(common::seed());
    let mut t = Tailer::open(&dir).unwrap();
    let mut seeks = 0u64;
    loop {
        let done = committed.load(Ordering::SeqCst);
        let s = match rng.range(0, 3) {
            0 if done > 0 => done - 1,
            1 => done,
            2 => done + rng.range(0, 50),
            _ => rng.range(0, done + 1),
        };
        match t.seek(StartAt::Seq(s)) {
            Ok(()) => {
                assert_eq!(t.next_seq(), s);
                if s < N {
                    let rec = t.next_timeout(WATCHDOG).unwrap().expect("the record comes");
                    assert_eq!((rec.seq(), rec.to_vec().unwrap()), (s, payload(s)));
                }
            }
            Err(ReadError::PastEnd { next, .. }) if s > done => {
                assert!(
                    next <= s && next >= done,
                    "seek to {s}: next {next}, {done} done"
                )
            }
            Err(e) => panic!("seek to {s} with {done} committed: {e}"),
        }
        seeks += 1;
        if done == N {
            break;
        }
    }
    assert_eq!(child.exit_code(), 0);
    assert!(seeks > 0);
    assert_eq!(check_log(&dir), N);
}

/// `seek(Start)` and `seek(End)` with damaged segment headers at the edges of the log. The
/// oldest record is in the first segment, the end in the last: when one of those headers
/// is damaged, the seek fails (nothing is skipped silently), naming the damaged file, what
/// was sought, and for the start where reading can go on; it used to name the tailer's
/// old position as the sequence number. A damaged header elsewhere does not matter to
/// either seek. On error the tailer does not move.
#[test]
fn start_and_end_seeks_with_damaged_edge_segments() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let next = fill_segments(&dir, 6);
    let segs = segments(&dir);
    let len = segs.len();
    let firsts: Vec<u64> = segs.iter().map(|p| first_seq_of(p)).collect();
    let mut t = Tailer::open(&dir).unwrap();
    let middle = firsts[2] + 3;

    // The first segment, then the first two.
    for run in [1usize, 2] {
        t.seek(StartAt::Seq(middle)).unwrap();
        for p in &segs[..run] {
            xor_byte(p, 33, 0x40);
        }
        let err = t.seek(StartAt::Start).unwrap_err();
        assert_damaged_segment(&err, &dir, 0, 0, "CRC");
        let text = err.to_string();
        assert!(text.contains("the start of the queue"), "{text}");
        let go_on = format!(
            "segment {run}, the first readable one, starts at sequence number {}",
            firsts[run]
        );
        assert!(text.contains(&go_on), "{text}");
        assert!(!text.contains(&format!("sequence {middle}")), "{text}");
        assert_eq!(t.next_seq(), middle, "the tailer did not move");
        let rec = t.try_next().unwrap().unwrap();
        assert_eq!(
            (rec.seq(), rec.to_vec().unwrap()),
            (middle, payload(middle))
        );
        t.seek(StartAt::Seq(middle)).unwrap();
        // The default tailer starts at the start: refused the same way.
        match Tailer::open(&dir) {
            Err(queue::OpenError::Read(e)) => assert_damaged_segment(&e, &dir, 0, 0, "CRC"),
            other => panic!("{other:?}"),
        }
        // The end and the records after the damage are reachable.
        t.seek(StartAt::End).unwrap();
        assert_eq!(t.next_seq(), next);
        t.seek(StartAt::Seq(firsts[run])).unwrap();
        assert_eq!(t.try_next().unwrap().unwrap().seq(), firsts[run]);
        for p in &segs[..run] {
            xor_byte(p, 33, 0x40);
        }
        assert!(queue::verify(&dir).unwrap().is_ok());
    }

    // The last segment (the seek to the end takes the slow path too: no hints).
    xor_byte(&segs[len - 1], 33, 0x40);
    t.seek(StartAt::Seq(middle)).unwrap();
    let err = t.seek(StartAt::End).unwrap_err();
    let last = (len - 1) as u64;
    assert_damaged_segment(&err, &dir, last, firsts[len - 1], "CRC");
    assert!(err.to_string().contains("the end of the queue"), "{err}");
    assert_eq!(t.next_seq(), middle, "the tailer did not move");
    t.seek(StartAt::Start).unwrap();
    assert_eq!(t.next_seq(), 0);
    match TailerOptions::new().from(StartAt::End).open(&dir) {
        Err(queue::OpenError::Read(e)) => {
            assert_damaged_segment(&e, &dir, last, firsts[len - 1], "CRC")
        }
        other => panic!("{other:?}"),
    }
    xor_byte(&segs[len - 1], 33, 0x40);

    // A damaged segment in the middle matters to neither.
    xor_byte(&segs[len / 2], 33, 0x40);
    t.seek(StartAt::End).unwrap();
    assert_eq!(t.next_seq(), next);
    t.seek(StartAt::Start).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 0);
}

/// The image of a committed, empty data record carrying sequence number `seq`: what a
/// payload holds when it carries records of a queue (a mirror, say).
fn record_image(seq: u64) -> [u8; 24] {
    let mut crc_in = [0u8; 16];
    crc_in[8..].copy_from_slice(&seq.to_le_bytes());
    let mut b = [0u8; 24];
    b[4..8].copy_from_slice(&(1u32 << 31).to_le_bytes());
    b[8..16].copy_from_slice(&seq.to_le_bytes());
    b[16..20].copy_from_slice(&crc32c::crc32c(&crc_in).to_le_bytes());
    b
}

/// An appender that abandons zero-copy grants (dropping them clears the room) whose
/// payloads end with images of valid records (for the grant's own sequence number and the
/// next ones), killed at random points, 40 times. A kill while the room was being cleared
/// used to leave the record header cleared but payload bytes behind: recovery, finding an
/// empty slot and no length to skip, searched those bytes, took the images for records
/// after "damage in the middle" and the log continued with them (empty records never
/// appended, sequence numbers past the acknowledged ones). Recovery must find exactly the
/// acknowledged prefix (or one more), report no damage, and the log hold only what was
/// appended.
#[test]
fn an_appender_killed_while_abandoning_a_grant_leaves_no_records_behind() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(
        QueueOptions::new()
            .segment_size(4 << 20)
            .open_appender(&dir)
            .unwrap(),
    );
    const ROOM: usize = 256 * 1024;
    let shared = Mmap::anonymous(4096).unwrap();
    let acked = shared.atomic_u64(0).unwrap();
    let steps = shared.atomic_u64(8).unwrap();
    let mut rng = Rng::new(common::seed());
    let mut total = 0u64;
    for round in 0..40 {
        acked.store(total, Ordering::SeqCst);
        steps.store(0, Ordering::SeqCst);
        let mut child = fork(|| {
            let mut app = match QueueOptions::new().open_appender(&dir) {
                Ok(a) => a,
                Err(_) => return 2,
            };
            let mut seq = app.next_seq();
            let mut tail = Vec::new();
            loop {
                if app.append(&payload(seq)).ok() != Some(seq) {
                    return 3;
                }
                seq += 1;
                acked.store(seq, Ordering::SeqCst);
                tail.clear();
                for s in seq..seq + 8 {
                    tail.extend_from_slice(&record_image(s));
                }
                let Ok(mut g) = app.reserve(ROOM) else {
                    return 4;
                };
                if g.fill(0x5a).is_err() || g.write_at(ROOM - tail.len(), &tail).is_err() {
                    return 5;
                }
                drop(g);
                steps.fetch_add(1, Ordering::SeqCst);
            }
        });
        let at = rng.range(1, 30);
        spin_until("the appender to make progress", || {
            steps.load(Ordering::SeqCst) >= at
        });
        assert_eq!(
            child.kill9(),
            common::Exit::Signal(libc::SIGKILL),
            "round {round}: the child ended on its own"
        );
        let acknowledged = acked.load(Ordering::SeqCst);
        let app = QueueOptions::new().open_appender(&dir).unwrap();
        let rec = app.recovery().clone();
        let recovered = app.next_seq();
        drop(app);
        assert!(rec.damaged.is_empty(), "round {round}: {:?}", rec.damaged);
        assert!(
            recovered == acknowledged || recovered == acknowledged + 1,
            "round {round}: recovered {recovered}, {acknowledged} acknowledged"
        );
        assert_eq!(check_log(&dir), recovered, "round {round}");
        let report = queue::verify(&dir).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        total = recovered;
    }
}

/// Recovery of an unfinished zero-copy record (its header written, its payload ending
/// with images of valid records) clears it; an appender killed while recovery clears it,
/// 60 times at random points. Clearing from the header on used to leave the header
/// cleared and payload bytes behind, which the next recovery searched and took the images
/// for records. The log must stay exactly what was appended, without reported damage.
#[test]
fn an_appender_killed_during_recovery_leaves_no_records_behind() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    const ROOM: usize = 3 << 20;
    drop(
        QueueOptions::new()
            .segment_size(4 << 20)
            .open_appender(&dir)
            .unwrap(),
    );
    let shared = Mmap::anonymous(4096).unwrap();
    let started = shared.atomic_u64(0).unwrap();
    let mut rng = Rng::new(common::seed());
    let mut next = 0u64;
    for round in 0..60 {
        // An unfinished record: written, never committed nor abandoned (`_exit` runs no
        // destructor).
        let mut writer = fork(|| {
            let Ok(mut app) = QueueOptions::new().open_appender(&dir) else {
                return 2;
            };
            let seq = app.next_seq();
            if app.append(&payload(seq)).is_err() {
                return 3;
            }
            let Ok(mut g) = app.reserve(ROOM) else {
                return 4;
            };
            let mut tail = Vec::new();
            for s in seq + 1..seq + 9 {
                tail.extend_from_slice(&record_image(s));
            }
            if g.fill(0x5a).is_err() || g.write_at(ROOM - tail.len(), &tail).is_err() {
                return 5;
            }
            std::mem::forget(g);
            std::mem::forget(app);
            0
        });
        assert_eq!(writer.exit_code(), 0, "round {round}");
        next += 1;
        // Recovery, killed at a random point.
        started.store(0, Ordering::SeqCst);
        let mut recovering = fork(|| {
            started.store(1, Ordering::SeqCst);
            match QueueOptions::new().open_appender(&dir) {
                Ok(app) => {
                    std::mem::forget(app);
                    0
                }
                Err(_) => 2,
            }
        });
        spin_until("recovery to start", || started.load(Ordering::SeqCst) == 1);
        for _ in 0..rng.range(0, 20_000) {
            std::hint::spin_loop();
        }
        let exit = recovering.kill9();
        assert!(
            matches!(
                exit,
                common::Exit::Signal(libc::SIGKILL) | common::Exit::Code(0)
            ),
            "round {round}: {exit:?}"
        );
        let app = QueueOptions::new().open_appender(&dir).unwrap();
        let rec = app.recovery().clone();
        let recovered = app.next_seq();
        drop(app);
        assert!(rec.damaged.is_empty(), "round {round}: {:?}", rec.damaged);
        assert_eq!(recovered, next, "round {round}");
        assert_eq!(check_log(&dir), next, "round {round}");
        let report = queue::verify(&dir).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
    }
}

// ---------------------------------------------------------------------------------------
// Machine crashes. Under `SyncPolicy::None` the kernel writes dirty pages and directory
// entries back in any order (a roll writes nothing back), so after a power loss a segment
// can be listed while its header page, or its end, never reached the disk. (`Batch` and
// `Always` write a new segment's header back before its rename; between syncs they can
// lose records and index entries, not headers.) These tests build those states with
// `std::fs` on a queue made by the library.

/// Writes `bytes` at `offset` of a file.
fn write_file_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// What a machine crash leaves in `queue.meta`: an appender that never closed, in another
/// boot (so its hints are not trusted).
fn as_after_a_power_loss(dir: &Path) {
    let meta = dir.join("queue.meta");
    write_file_at(&meta, 68, &1u32.to_ne_bytes());
    write_file_at(&meta, 96, &[0x5a; 16]);
}

/// A queue of three 64 KiB segments made under `SyncPolicy::None`, synced once in segment
/// 1 (so segment 2 and everything after the sync are what a machine crash may lose).
/// Returns the next sequence number, the synced one, and each segment's first sequence
/// number.
fn unsynced_tail(dir: &Path) -> (u64, u64, Vec<u64>) {
    let mut app = small_segments(dir);
    let mut seq = 0u64;
    let mut synced = None;
    while segments(dir).len() < 3 {
        app.append(&payload(seq)).unwrap();
        seq += 1;
        if segments(dir).len() == 2 && synced.is_none() {
            app.sync().unwrap();
            synced = Some(app.synced_seq());
        }
    }
    for _ in 0..5 {
        app.append(&payload(seq)).unwrap();
        seq += 1;
    }
    drop(app);
    as_after_a_power_loss(dir);
    let firsts = segments(dir).iter().map(|p| first_seq_of(p)).collect();
    (seq, synced.unwrap(), firsts)
}

/// Opens the appender after a crash; it must recover, with `next_seq` and the log as
/// expected, nothing synced lost, and appending going on in order. Returns the recovery.
fn reopen_after_crash(dir: &Path, synced: u64, expect_next: u64) -> queue::Recovery {
    let mut app = QueueOptions::new()
        .open_appender(dir)
        .unwrap_or_else(|e| panic!("the queue cannot be opened after a crash: {e}"));
    let rec = app.recovery().clone();
    assert_eq!(app.next_seq(), expect_next, "{rec:?}");
    assert!(expect_next >= synced, "a synced record was lost");
    for s in expect_next..expect_next + 3 {
        assert_eq!(app.append(&payload(s)).unwrap(), s);
    }
    drop(app);
    assert_eq!(check_log(dir), expect_next + 3);
    let report = queue::verify(dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.next_seq, expect_next + 3);
    rec
}

/// Asserts that a tailer reading from the start reports segment `n`, starting at `first`,
/// as damaged (after reading every record before it), and that `verify` does too.
fn damage_is_reported(dir: &Path, n: u64, first: u64, what: &str) {
    let mut t = Tailer::open(dir).unwrap();
    let mut seq = 0u64;
    let err = loop {
        match t.try_next() {
            Ok(Some(rec)) => {
                assert_eq!(rec.seq(), seq);
                seq += 1;
            }
            Ok(None) => panic!("the damaged segment {n} was taken for the end of the log"),
            Err(e) => break e,
        }
    };
    assert_eq!(seq, first, "{err}");
    assert_damaged_segment(&err, dir, n, first, what);
    let report = queue::verify(dir).unwrap();
    assert!(
        report.problems.iter().any(|c| c.segment == n
            && matches!(c.reason, CorruptReason::BadSegment { .. })
            && c.to_string().contains(what)),
        "{:?}",
        report.problems
    );
}

/// The last segment listed, but its header page never written back (zeros), torn (its
/// first bytes only), or garbage: its records reached the disk and are intact. Recovery
/// used to fail with `BadSegment`; now it rewrites the header from the previous segment's
/// end marker and keeps every record. Before that, tailers and `verify` name the damage.
#[test]
fn a_last_segment_whose_header_page_was_lost_keeps_its_records() {
    let _g = serial();
    let mut rng = Rng::new(common::seed());
    for shape in ["zeros", "torn", "garbage"] {
        let tmp = tempdir();
        let dir = tmp.path().join("q");
        let (next, synced, firsts) = unsynced_tail(&dir);
        let last = segments(&dir)[2].clone();
        match shape {
            "zeros" => write_file_at(&last, 0, &[0; 4096]),
            "torn" => write_file_at(&last, 40, &[0; 4096 - 40]),
            _ => {
                let mut junk = [0u8; 4096];
                rng.fill(&mut junk);
                write_file_at(&last, 0, &junk);
            }
        }
        // (The current-segment hint in `queue.meta` points at it.)
        let what = if shape == "torn" { "CRC" } else { "magic" };
        damage_is_reported(&dir, 2, firsts[2], what);
        let rec = reopen_after_crash(&dir, synced, next);
        match &rec.segment_repairs[..] {
            [queue::SegmentRepair::HeaderRewritten {
                segment: 2,
                first_seq,
                file,
                ..
            }] => {
                assert_eq!(*first_seq, firsts[2], "{shape}");
                assert_eq!(file, &last);
            }
            other => panic!("{shape}: {other:?}"),
        }
        assert!(
            rec.deep_scan && !rec.is_clean() && rec.cut.is_none(),
            "{rec:?}"
        );
    }
}

/// The last segment listed, but none of it written back (all zeros): it holds no provable
/// record. It is rebuilt from the previous segment's end marker; the log ends there, which
/// loses nothing that was synced.
#[test]
fn a_last_segment_that_never_reached_the_disk_is_rebuilt_from_the_end_marker() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let (_, synced, firsts) = unsynced_tail(&dir);
    let last = segments(&dir)[2].clone();
    write_file_at(&last, 0, &vec![0; 64 * 1024]);
    assert!(synced <= firsts[2]);
    let rec = reopen_after_crash(&dir, synced, firsts[2]);
    assert!(
        matches!(&rec.segment_repairs[..],
            [queue::SegmentRepair::HeaderRewritten { segment: 2, first_seq, .. }] if *first_seq == firsts[2]),
        "{rec:?}"
    );
    assert_eq!(segments(&dir).len(), 3);
}

/// A machine crash that lost both the end marker of segment 1 (its sealed header made it
/// to disk) and all of segment 2: nothing proves where segment 2 starts, and it holds
/// nothing. It is removed, the stale seal of segment 1 is cleared, and the log goes on in
/// segment 1 after its last intact record. With segment 2's records on disk but not its
/// header, they cannot be tied to the log (records may be missing before them): the file
/// is set aside intact, not deleted.
#[test]
fn a_headerless_last_segment_after_an_unsealed_one_is_removed_or_set_aside() {
    let _g = serial();
    for keep_records in [false, true] {
        let tmp = tempdir();
        let dir = tmp.path().join("q");
        let (synced, firsts, segs, before) = lose_the_start_of_the_last_segment(&dir, keep_records);
        // Right after recovery, before any append rolls again: segment 1 is the last, no
        // longer sealed (its seal promised an end marker that is not there).
        let app = QueueOptions::new().open_appender(&dir).unwrap();
        let rec = app.recovery().clone();
        assert_eq!(app.next_seq(), firsts[2]);
        let st = queue::stat(&dir).unwrap();
        assert_eq!(st.segments.len(), 2);
        assert!(!st.segments[1].sealed, "{:?}", st.segments[1]);
        drop(app);
        reopen_after_crash(&dir, synced, firsts[2]);
        match (&rec.segment_repairs[..], keep_records) {
            (
                [queue::SegmentRepair::Removed {
                    segment: 2, file, ..
                }],
                false,
            ) => {
                assert_eq!(file, &segs[2]);
            }
            (
                [queue::SegmentRepair::SetAside {
                    segment: 2,
                    file,
                    to,
                    ..
                }],
                true,
            ) => {
                assert_eq!(file, &segs[2]);
                let kept = std::fs::read(to).unwrap();
                assert_eq!(kept[4096..], before[4096..], "set aside as it was");
            }
            other => panic!("{other:?}"),
        }
        // Appends went on in segment 1; the first did not fit there before either, so it
        // rolled into a new segment 2, which starts where the lost one did.
        let segs = segments(&dir);
        assert_eq!(segs.len(), 3);
        assert_eq!(first_seq_of(&segs[2]), firsts[2]);
    }
}

/// What a machine crash that lost the end marker of segment 1 (its sealed header made it
/// to disk) and segment 2's header page leaves, with segment 2's records on disk
/// (`keep_records`) or none of segment 2. Returns the synced sequence number and the first
/// sequence numbers of [`unsynced_tail`], the segment files, and segment 2's bytes before.
fn lose_the_start_of_the_last_segment(
    dir: &Path,
    keep_records: bool,
) -> (u64, Vec<u64>, Vec<std::path::PathBuf>, Vec<u8>) {
    let (_, synced, firsts) = unsynced_tail(dir);
    let segs = segments(dir);
    let end_off = u64::from_ne_bytes(std::fs::read(&segs[1]).unwrap()[88..96].try_into().unwrap());
    write_file_at(&segs[1], end_off, &[0; 24]);
    let before = std::fs::read(&segs[2]).unwrap();
    if keep_records {
        write_file_at(&segs[2], 0, &[0; 4096]);
    } else {
        write_file_at(&segs[2], 0, &vec![0; 64 * 1024]);
    }
    (synced, firsts, segs, before)
}

/// A segment recovery set aside is listed by `stat` (file and size), and deleted by
/// `remove_damaged` only, with nothing else: not even files named almost like it, nor the
/// queue's own. The log reads on as before.
#[test]
fn a_set_aside_segment_is_listed_by_stat_and_deleted_only_on_request() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let (synced, firsts, _, _) = lose_the_start_of_the_last_segment(&dir, true);
    let rec = reopen_after_crash(&dir, synced, firsts[2]);
    let [queue::SegmentRepair::SetAside { to, .. }] = &rec.segment_repairs[..] else {
        panic!("{rec:?}");
    };
    let name = to.file_name().unwrap().to_str().unwrap().to_string();
    let near_misses = [
        format!("{name}.bak"),
        format!("x{name}"),
        name.replace("damaged-", "damaged-0"),
        name.replace("damaged-", "damaged-x"),
        name.replace(".seg.", ".sg."),
        name[1..].to_string(),
        "00000000000000000002.seg.damaged-".to_string(),
    ];
    for n in &near_misses {
        std::fs::write(dir.join(n), b"not a set-aside segment").unwrap();
    }
    // A queue without one lists none.
    let other = tmp.path().join("other");
    drop(small_segments(&other));
    assert!(queue::stat(&other).unwrap().damaged.is_empty());

    let st = queue::stat(&dir).unwrap();
    match &st.damaged[..] {
        [d] => assert_eq!((d.segment, &d.path, d.bytes), (2, to, 64 * 1024), "{d:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(st.damaged_bytes(), 64 * 1024);
    let files = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = files(&dir);
    let removed = queue::remove_damaged(&dir).unwrap();
    assert_eq!(removed, st.damaged);
    assert!(!to.exists());
    let expected: Vec<_> = before.into_iter().filter(|n| *n != *name).collect();
    assert_eq!(files(&dir), expected);
    for n in &near_misses {
        assert!(dir.join(n).exists(), "{n}");
    }
    assert!(queue::remove_damaged(&dir).unwrap().is_empty());
    assert!(queue::stat(&dir).unwrap().damaged.is_empty());
    assert_eq!(check_log(&dir), firsts[2] + 3);
}

/// A segment that is not the last with a lost header page: the appender is not concerned
/// (recovery examines the last segment only, and appends go on); tailers and `verify`
/// report the hole precisely, and `skip_corrupt` gets past it. `None` promised no more
/// ("possibly with holes").
#[test]
fn a_lost_header_before_the_last_segment_is_reported_as_a_hole() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let next = fill_segments(&dir, 4);
    let segs = segments(&dir);
    let firsts: Vec<u64> = segs.iter().map(|p| first_seq_of(p)).collect();
    write_file_at(&segs[1], 0, &[0; 4096]);
    as_after_a_power_loss(&dir);
    let mut app = QueueOptions::new().open_appender(&dir).unwrap();
    assert_eq!(app.next_seq(), next);
    assert!(app.recovery().segment_repairs.is_empty());
    assert_eq!(app.append(&payload(next)).unwrap(), next);
    drop(app);
    damage_is_reported(&dir, 1, firsts[1], "bad magic");
    let mut t = Tailer::open(&dir).unwrap();
    while let Ok(Some(_)) = t.try_next() {}
    let skipped = t.skip_corrupt().unwrap().unwrap();
    assert_eq!((skipped.first, skipped.next), (firsts[1], firsts[2]));
    let mut n = firsts[2];
    while let Some(rec) = t.try_next().unwrap() {
        assert_eq!((rec.seq(), rec.to_vec().unwrap()), (n, payload(n)));
        n += 1;
    }
    assert_eq!(n, next + 1);
}

/// `queue.meta`'s hints after a machine crash: a current segment that was never written to
/// the directory, a next sequence number past the end. The appender goes by the segments.
#[test]
fn meta_hints_naming_a_missing_segment_are_not_followed() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let (next, synced, _) = unsynced_tail(&dir);
    let meta = dir.join("queue.meta");
    write_file_at(&meta, 112, &9u64.to_ne_bytes());
    write_file_at(&meta, 80, &(next + 1000).to_ne_bytes());
    let rec = reopen_after_crash(&dir, synced, next);
    assert_eq!(rec.segment, 2);
    assert!(rec.segment_repairs.is_empty(), "{rec:?}");
}

/// The last segment file shorter than a segment (its end never written back, or cut): it
/// used to fail the open. It is extended back to its size; the records that are whole are
/// kept, a record cut in two is cut off; a file cut inside its header is rebuilt as above.
#[test]
fn a_short_last_segment_is_extended_and_recovered() {
    let _g = serial();
    for cut in ["mid-record", "empty", "in-header"] {
        let tmp = tempdir();
        let dir = tmp.path().join("q");
        let (next, synced, firsts) = unsynced_tail(&dir);
        let last = segments(&dir)[2].clone();
        let torn = record_offset(&last, next - 2);
        let len = match cut {
            "mid-record" => torn + 30,
            "empty" => 0,
            _ => 100,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&last)
            .unwrap()
            .set_len(len)
            .unwrap();
        damage_is_reported(&dir, 2, firsts[2], "bytes");
        let expect = if cut == "mid-record" {
            next - 2
        } else {
            firsts[2]
        };
        let rec = reopen_after_crash(&dir, synced, expect);
        assert_eq!(std::fs::metadata(&last).unwrap().len(), 64 * 1024);
        match (&rec.segment_repairs[..], cut) {
            (
                [queue::SegmentRepair::Extended {
                    segment: 2, len: l, ..
                }],
                "mid-record" | "in-header",
            ) => {
                assert_eq!(*l, len)
            }
            (
                [queue::SegmentRepair::Extended {
                    segment: 2, len: 0, ..
                }, queue::SegmentRepair::HeaderRewritten { segment: 2, .. }],
                "empty",
            ) => {}
            other => panic!("{cut}: {other:?}"),
        }
        if cut == "mid-record" {
            let c = rec.cut.as_ref().expect("the torn record is cut off");
            assert_eq!((c.seq, c.offset), (next - 2, torn));
        }
    }
}

/// A short segment that is not the last: reported by tailers and `verify`, left alone by
/// the appender.
#[test]
fn a_short_segment_before_the_last_is_reported() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let next = fill_segments(&dir, 4);
    let segs = segments(&dir);
    let first = first_seq_of(&segs[1]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[1])
        .unwrap()
        .set_len(5000)
        .unwrap();
    damage_is_reported(&dir, 1, first, "5000 bytes");
    let app = QueueOptions::new().open_appender(&dir).unwrap();
    assert_eq!(app.next_seq(), next);
    assert_eq!(std::fs::metadata(&segs[1]).unwrap().len(), 5000);
}

/// Garbage in the header and body of the last segment (and a short file): recovery gives a
/// repair or an error, never a panic or a hang, and an appender it lets through works.
#[test]
fn garbage_in_the_last_segment_gives_repairs_or_errors() {
    let _g = serial();
    let seed = common::seed();
    let mut rng = Rng::new(seed);
    let mut opened = 0;
    for round in 0..48 {
        let tmp = tempdir();
        let dir = tmp.path().join("q");
        let (_, _, _) = unsynced_tail(&dir);
        let last = segments(&dir)[2].clone();
        let mut junk = vec![0u8; rng.range(1, 8192) as usize];
        rng.fill(&mut junk);
        if round % 3 == 0 {
            // Keep the magic: the CRC is what tells it is not a header.
            let n = junk.len().min(8);
            junk[..n].copy_from_slice(&b"MAPIPCQS"[..n]);
        }
        write_file_at(&last, rng.range(0, 200), &junk);
        if round % 4 == 1 {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&last)
                .unwrap()
                .set_len(rng.range(0, 70_000))
                .unwrap();
        }
        let mut child = fork(|| match QueueOptions::new().open_appender(&dir) {
            Ok(mut app) => {
                let s = app.next_seq();
                match app.append(b"after") {
                    Ok(got) if got == s => 0,
                    _ => 3,
                }
            }
            Err(_) => 1,
        });
        let ended = child
            .wait_or_kill()
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: recovery hung ({e:?})"));
        assert!(
            matches!(ended, Exit::Code(0) | Exit::Code(1)),
            "seed {seed} round {round}: {ended:?}"
        );
        if ended == Exit::Code(0) {
            opened += 1;
            // Garbage in the records may remain as damage in the middle (reported, as
            // recovery does); the header is whole.
            let st = queue::stat(&dir).unwrap();
            let seg2 = st.segments.iter().find(|s| s.number == 2).unwrap();
            assert!(
                seg2.problem.is_none(),
                "seed {seed} round {round}: {seg2:?}"
            );
        }
    }
    assert!(opened > 0, "seed {seed}: no round was repaired");
}

/// Index entries past the end of the last segment's log (an index page written back
/// without the records it points to): recovery after a crash clears them, so `verify`
/// finds nothing and they cannot point later appends' readers anywhere. They used to stay
/// (and `verify` reported each as damage).
#[test]
fn index_entries_past_the_end_are_cleared_after_a_crash() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let (next, synced, _) = unsynced_tail(&dir);
    let last = segments(&dir)[2].clone();
    // Entries 10..20 (records of segment 2 stop well before), pointing into the records.
    let junk: Vec<u8> = (0..10u32)
        .flat_map(|k| (4096 + 8 * k).to_ne_bytes())
        .collect();
    write_file_at(&last, 128 + 4 * 10, &junk);
    assert!(!queue::verify(&dir).unwrap().is_ok());
    let rec = reopen_after_crash(&dir, synced, next);
    assert!(rec.segment_repairs.is_empty(), "{rec:?}");
    assert!(rec.zeroed_bytes >= 40, "{rec:?}");
}
