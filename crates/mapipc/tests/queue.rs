//! Tests of `mapipc::queue` with real processes: `fork`ed appenders and tailers (each
//! waited for under the watchdog of `common::Child::wait`, which kills it and fails the
//! test), SIGKILL at random points, damaged files, and property tests against an in-memory
//! model. No assertion depends on timing.

mod common;
mod queue_util;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use common::{fork, serial, spin_until, wait_until, Exit, Rng, WATCHDOG};
use queue_util::{check_log_of, segments, small_segments, tempdir};

use mapipc::map::{AccessError, Bounds, Mmap};
use mapipc::queue::{
    self, AckError, AckMode, AppendError, Appender, CorruptReason, InspectError, OpenError,
    QueueOptions, ReadError, RemoveDamagedOptions, Retention, StartAt, SyncPolicy,
    SyncPositionError, Tailer, TailerOptions,
};
use proptest::prelude::*;

/// The payload of record `seq` in these tests: its sequence number, then a filler whose
/// length and bytes depend on it (0 to 199 bytes).
fn payload(seq: u64) -> Vec<u8> {
    let mut v = seq.to_le_bytes().to_vec();
    let filler = (seq.wrapping_mul(31) % 200) as usize;
    v.extend(std::iter::repeat((seq % 251) as u8).take(filler));
    v
}

/// Opens (creating) the queue in `dir` with `segment_size` and appends records
/// `0..records` with the payloads of [`payload`]; returns the appender.
fn appender_with(dir: &Path, segment_size: u64, records: u64) -> Appender {
    let mut app = QueueOptions::new()
        .segment_size(segment_size)
        .open_appender(dir)
        .unwrap();
    for s in 0..records {
        app.append(&payload(s)).unwrap();
    }
    app
}

/// [`queue_util::check_log_of`] with this file's payloads.
fn check_log(dir: &Path) -> u64 {
    check_log_of(dir, payload)
}

/// Flips one byte of a file.
fn flip_byte(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).unwrap();
}

/// The file offset of the payload of the first record whose payload starts with `seq`'s
/// bytes (found by content).
fn offset_of_record(path: &Path, seq: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let needle = payload(seq);
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("record found in the file");
    pos as u64
}

#[test]
fn ten_million_records_across_segment_rolls_with_a_reader_in_another_process() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    const N: u64 = 10_000_000;
    // 1 MiB segments of 32-byte records: about 300 rolls.
    drop(appender_with(&dir, 1 << 20, 0));
    let mut reader = fork(|| {
        let mut t = Tailer::open(&dir).unwrap();
        let mut expected = 0u64;
        let mut buf = [0u8; 8];
        while expected < N {
            // Blocking reads: spin, then park on the notifier until the appender catches up.
            match t.next_timeout(WATCHDOG) {
                Ok(Some(rec)) => {
                    if rec.seq() != expected || rec.len() != 8 {
                        return 2;
                    }
                    rec.read_at(0, &mut buf).unwrap();
                    if u64::from_le_bytes(buf) != expected.wrapping_mul(0x9e37_79b9_7f4a_7c15) {
                        return 3;
                    }
                    expected += 1;
                }
                Ok(None) => return 4,
                Err(_) => return 5,
            }
        }
        0
    });
    let mut app = Appender::open(&dir).unwrap();
    for i in 0..N {
        let seq = app
            .append(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes())
            .unwrap();
        assert_eq!(seq, i);
    }
    drop(app);
    assert_eq!(
        reader.exit_code(),
        0,
        "the reader saw every record, in order"
    );
    let st = queue::stat(&dir).unwrap();
    assert_eq!((st.first_seq, st.next_seq), (Some(0), N));
    assert!(st.segments.len() > 250, "{} segments", st.segments.len());
    assert!(st.segments[..st.segments.len() - 1]
        .iter()
        .all(|s| s.sealed));
    // Random access lands on the right records.
    let mut t = Tailer::open(&dir).unwrap();
    for seq in [0, 1, 32_000, 32_767, 5_000_000, N - 1] {
        t.seek(StartAt::Seq(seq)).unwrap();
        assert_eq!(t.try_next().unwrap().unwrap().seq(), seq);
    }
}

#[test]
fn appender_killed_at_random_points_recovers_exactly_the_committed_prefix() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    // Small segments: kills land in rolls and preallocation too.
    drop(appender_with(&dir, 64 * 1024, 0));
    let acked_map = Mmap::anonymous(4096).unwrap();
    let acked = acked_map.atomic_u64(0).unwrap();
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let mut total = 0u64;
    for round in 0..50 {
        acked.store(total, Ordering::SeqCst);
        let mut child = fork(|| {
            let mut app = QueueOptions::new().open_appender(&dir).unwrap();
            let mut seq = app.next_seq();
            loop {
                if app.append(&payload(seq)).unwrap() != seq {
                    return 2;
                }
                seq += 1;
                // Counted only after `append` returned.
                acked.store(seq, Ordering::SeqCst);
            }
        });
        // Let it run a random while: at least until it appended something.
        let extra = rng.range(0, 2999);
        spin_until("the appender to make progress", || {
            acked.load(Ordering::SeqCst) >= total + 1 + extra
        });
        assert_eq!(
            child.kill9(),
            Exit::Signal(libc::SIGKILL),
            "round {round}: the child was killed, not ended on its own"
        );
        let acknowledged = acked.load(Ordering::SeqCst);
        // Recovery runs when the next appender opens.
        let app = QueueOptions::new().open_appender(&dir).unwrap();
        let rec = app.recovery().clone();
        assert!(!rec.clean_close, "round {round}: the crash is noticed");
        assert!(rec.damaged.is_empty(), "round {round}: {:?}", rec.damaged);
        let recovered = app.next_seq();
        drop(app);
        assert!(
            recovered >= acknowledged && recovered <= acknowledged + 1,
            "round {round}: recovered {recovered} records, {acknowledged} acknowledged"
        );
        assert_eq!(check_log(&dir), recovered, "round {round}");
        let report = queue::verify(&dir).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        assert_eq!(report.next_seq, recovered);
        total = recovered;
    }
    assert!(segments(&dir).len() > 2, "the kills spanned segment rolls");
}

#[test]
fn a_flipped_byte_in_the_middle_is_reported_and_can_be_skipped() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 1 << 20, 100));
    let seg = &segments(&dir)[0];
    flip_byte(seg, offset_of_record(seg, 50) + 3);

    let report = queue::verify(&dir).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!((p.seq, p.segment), (50, 0));
    assert!(matches!(p.reason, CorruptReason::CrcMismatch { .. }));
    assert!(p.to_string().contains("CRC mismatch"), "{p}");
    assert_eq!(report.records, 99);

    let mut t = Tailer::open(&dir).unwrap();
    for s in 0..50 {
        assert_eq!(t.try_next().unwrap().unwrap().seq(), s);
    }
    // Reported, again and again: never skipped silently.
    for _ in 0..3 {
        match t.try_next() {
            Err(ReadError::Corrupt(c)) => assert_eq!(c.seq, 50),
            other => panic!("expected corruption, got {other:?}"),
        }
    }
    let skipped = t.skip_corrupt().unwrap().unwrap();
    assert_eq!((skipped.first, skipped.next), (50, 51));
    for s in 51..100 {
        assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), payload(s));
    }
    assert!(t.try_next().unwrap().is_none());

    // Damage in the middle is not a torn tail: recovery keeps everything after it.
    let app = Appender::open(&dir).unwrap();
    assert_eq!(app.next_seq(), 100);
    assert!(app.recovery().cut.is_none());
}

#[test]
fn a_damaged_length_in_the_middle_is_skipped_by_searching() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 1 << 20, 100));
    let seg = &segments(&dir)[0];
    // The length field of record 40's header (24 bytes before its payload).
    flip_byte(seg, offset_of_record(seg, 40) - 24 + 1);
    let report = queue::verify(&dir).unwrap();
    assert!(
        report.problems.iter().any(|p| p.seq == 40),
        "{:?}",
        report.problems
    );
    assert_eq!(report.next_seq, 100);
    let mut t = TailerOptions::new()
        .from(StartAt::Seq(39))
        .open(&dir)
        .unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 39);
    assert!(matches!(t.try_next(), Err(ReadError::Corrupt(c)) if c.seq == 40));
    let skipped = t.skip_corrupt().unwrap().unwrap();
    assert_eq!((skipped.first, skipped.next), (40, 41));
    assert_eq!(
        t.try_next().unwrap().unwrap().to_vec().unwrap(),
        payload(41)
    );
    // A seek beyond the damage goes around it.
    let mut t = TailerOptions::new()
        .from(StartAt::Seq(70))
        .open(&dir)
        .unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 70);
}

#[test]
fn a_flipped_byte_at_the_tail_is_cut_by_recovery() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 1 << 20, 100));
    let seg = &segments(&dir)[0];
    flip_byte(seg, offset_of_record(seg, 99) + 2);

    let report = queue::verify(&dir).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].seq, 99);
    assert!(matches!(
        report.problems[0].reason,
        CorruptReason::CrcMismatch { .. }
    ));

    let mut t = TailerOptions::new()
        .from(StartAt::Seq(98))
        .open(&dir)
        .unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 98);
    assert!(matches!(t.try_next(), Err(ReadError::Corrupt(c)) if c.seq == 99));
    assert_eq!(
        t.skip_corrupt().unwrap(),
        None,
        "nothing valid after the tail"
    );

    let mut app = Appender::open(&dir).unwrap();
    let rec = app.recovery().clone();
    let cut = rec.cut.expect("the damaged tail record is cut");
    assert_eq!(cut.seq, 99);
    assert!(rec.zeroed_bytes > 0);
    assert_eq!(app.next_seq(), 99);
    assert_eq!(app.append(b"new 99").unwrap(), 99);
    drop(app);
    assert!(queue::verify(&dir).unwrap().is_ok());
    // The waiting tailer now reads the new record 99.
    let rec = t.try_next().unwrap().unwrap();
    assert_eq!((rec.seq(), rec.to_vec().unwrap()), (99, b"new 99".to_vec()));
}

#[test]
fn a_second_appender_is_refused_or_waits() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    Appender::open(&dir).unwrap();
    // The children are forked before this process takes the lock: a child forked while an
    // appender is open would share its lock (the open file description).
    let flags = Mmap::anonymous(4096).unwrap();
    let holding = flags.atomic_u32(0).unwrap();
    let parent = std::process::id();
    let mut refused = fork(|| {
        while holding.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        match QueueOptions::new().open_appender(&dir) {
            Err(OpenError::AppenderBusy { pid, .. }) if pid == parent => 7,
            Err(_) => 8,
            Ok(_) => 9,
        }
    });
    let mut waiter = fork(|| {
        while holding.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        let Ok(mut app) = QueueOptions::new().wait_for_lock(true).open_appender(&dir) else {
            return 8;
        };
        app.append(b"second").map_or(9, |_| 0)
    });
    let mut app = Appender::open(&dir).unwrap();
    app.append(b"first").unwrap();
    holding.store(1, Ordering::SeqCst);
    assert_eq!(
        refused.exit_code(),
        7,
        "the second appender is refused, naming us"
    );
    let err = QueueOptions::new().open_appender(&dir).unwrap_err();
    assert!(matches!(err, OpenError::AppenderBusy { .. }));
    assert!(err.to_string().contains("one appender at a time"), "{err}");
    // Give the waiter a chance to block on the lock (not needed for correctness).
    thread::sleep(Duration::from_millis(20));
    drop(app);
    assert_eq!(waiter.exit_code(), 0, "the waiting appender got the lock");
    let mut t = Tailer::open(&dir).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), b"first");
    assert_eq!(t.try_next().unwrap().unwrap().to_vec().unwrap(), b"second");
}

/// The number of tailers parked on the queue's notifier word (offset 64 of `queue.meta`,
/// see the format in the module docs).
fn parked_tailers(dir: &Path) -> u32 {
    let meta = mapipc::map::MapOptions::new()
        .read_write()
        .len(4096)
        .map_path(dir.join("queue.meta"))
        .unwrap();
    mapipc::sync::Notifier::new(meta.atomic_u32(64).unwrap()).waiters()
}

#[test]
fn a_tailer_in_another_process_sleeps_until_an_append_arrives() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    Appender::open(&dir).unwrap();
    let shared = Mmap::anonymous(4096).unwrap();
    let timed_out = shared.atomic_u32(0).unwrap();
    let received = shared.atomic_u32(4).unwrap();
    let mut child = fork(|| {
        let mut t = TailerOptions::new().spin(0).open(&dir).unwrap();
        // Nothing yet: a bounded wait times out.
        if t.next_timeout(Duration::from_millis(20)).unwrap().is_some() {
            return 2;
        }
        timed_out.store(1, Ordering::SeqCst);
        for seq in 0..3 {
            match t.next_timeout(WATCHDOG) {
                Ok(Some(rec)) if rec.seq() == seq && rec.to_vec().unwrap() == payload(seq) => {
                    received.store(seq as u32 + 1, Ordering::SeqCst);
                }
                _ => return 3,
            }
        }
        0
    });
    let mut app = Appender::open(&dir).unwrap();
    wait_until("the first wait to time out", || {
        timed_out.load(Ordering::SeqCst) != 0
    });
    for seq in 0..3 {
        // Append only once the child is parked on the futex: it must be woken.
        wait_until("the tailer to park", || parked_tailers(&dir) != 0);
        app.append(&payload(seq)).unwrap();
        // Wait until it has read it before the next round.
        wait_until("the tailer to wake up and read it", || {
            received.load(Ordering::SeqCst) == seq as u32 + 1
        });
    }
    assert_eq!(child.exit_code(), 0);
}

#[test]
fn a_tailer_waiting_at_a_segment_end_follows_the_roll() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_segments(&dir);
    let mut child = fork(|| {
        let mut t = TailerOptions::new().spin(0).open(&dir).unwrap();
        for seq in 0..5000 {
            match t.next_timeout(WATCHDOG) {
                Ok(Some(rec)) if rec.seq() == seq && rec.to_vec().unwrap() == payload(seq) => {}
                _ => return 3,
            }
        }
        0
    });
    for seq in 0..5000 {
        app.append(&payload(seq)).unwrap();
        if seq % 97 == 0 {
            thread::yield_now();
        }
    }
    assert_eq!(child.exit_code(), 0);
    assert!(segments(&dir).len() > 5);
}

#[test]
fn named_tailers_resume_where_they_stopped() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let app = appender_with(&dir, 64 * 1024, 2000);
    // Auto (at-least-once): what was returned before the drop counts as processed.
    {
        let mut t = TailerOptions::new().name("billing").open(&dir).unwrap();
        for s in 0..10 {
            assert_eq!(t.try_next().unwrap().unwrap().seq(), s);
        }
        // One name, one tailer at a time.
        let err = TailerOptions::new().name("billing").open(&dir).unwrap_err();
        assert!(matches!(err, OpenError::TailerBusy { .. }), "{err}");
    }
    let mut t = TailerOptions::new().name("billing").open(&dir).unwrap();
    assert_eq!(t.next_seq(), 10);
    assert_eq!(
        t.try_next().unwrap().unwrap().to_vec().unwrap(),
        payload(10)
    );
    drop(t);
    // Manual: only acknowledged records count.
    {
        let mut t = TailerOptions::new()
            .name("audit")
            .ack(AckMode::Manual)
            .open(&dir)
            .unwrap();
        for _ in 0..700 {
            t.try_next().unwrap().unwrap();
        }
        t.ack().unwrap();
        t.try_next().unwrap().unwrap();
    }
    let mut t = TailerOptions::new().name("audit").open(&dir).unwrap();
    assert_eq!(
        t.try_next().unwrap().unwrap().seq(),
        700,
        "across segments too"
    );
    drop(t);
    // An explicit start moves an existing named tailer.
    let t = TailerOptions::new()
        .name("audit")
        .from(StartAt::End)
        .open(&dir)
        .unwrap();
    assert_eq!(t.next_seq(), 2000);
    drop(t);
    let st = queue::stat(&dir).unwrap();
    let names: Vec<_> = st
        .tailers
        .iter()
        .map(|t| (t.name.as_str(), t.next_seq))
        .collect();
    assert_eq!(names, [("audit", 2000), ("billing", 11)]);
    // Bad names never become paths.
    for bad in ["", "../x", "a/b", ".hidden", "white space"] {
        let err = TailerOptions::new().name(bad).open(&dir).unwrap_err();
        assert!(
            matches!(err, OpenError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
    }
    drop(app);
}

/// A named tailer's position word with a flipped high bit (or a kill between the update
/// of the position and of its complement) is resumed from the lower of the two: records are
/// delivered again, never skipped (a flipped bit alone made the tailer silently skip every
/// record up to the garbage position, and retention treat them as processed). A file of an
/// earlier release, without the complement, still resumes where it stopped.
#[test]
fn a_damaged_named_tailer_position_never_skips_records() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let app = appender_with(&dir, 64 * 1024, 100);
    {
        let mut t = TailerOptions::new().name("w").open(&dir).unwrap();
        for s in 0..10 {
            assert_eq!(t.try_next().unwrap().unwrap().seq(), s);
        }
    }
    let file = dir.join("w.tailer");
    let word = |off: u64| {
        let b = std::fs::read(&file).unwrap();
        u64::from_le_bytes(b[off as usize..off as usize + 8].try_into().unwrap())
    };
    assert_eq!((word(32), word(48)), (10, !10u64));
    flip_byte(&file, 32 + 5); // position 10 + 2^40-ish: far past the end of the log
    assert!(word(32) > 1 << 39);
    assert_eq!(queue::stat(&dir).unwrap().tailers[0].next_seq, 10);
    let mut t = TailerOptions::new().name("w").open(&dir).unwrap();
    assert_eq!(t.next_seq(), 10);
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 10);
    drop(t); // stores 11, and its complement
    assert_eq!((word(32), word(48)), (11, !11u64));
    // Killed between the two stores of an update from 11 to 15: back to 11.
    let map = mapipc::map::MapOptions::new()
        .read_write()
        .map_path(&file)
        .unwrap();
    map.write_pod(32, &15u64).unwrap();
    assert_eq!(
        TailerOptions::new()
            .name("w")
            .open(&dir)
            .unwrap()
            .next_seq(),
        11
    );
    // A file without the complement (an earlier release, format version 1).
    set_tailer_version(&map, 1);
    map.write_pod(48, &0u64).unwrap();
    map.write_pod(32, &15u64).unwrap();
    assert_eq!(
        TailerOptions::new()
            .name("w")
            .open(&dir)
            .unwrap()
            .next_seq(),
        15
    );
    drop(app);
}

/// Rewrites the format version of a named tailer's file (mapped as `map`), and the header
/// CRC over it (bytes 0..24, stored at 24).
fn set_tailer_version(map: &Mmap, version: u32) {
    map.write_pod(8, &version).unwrap();
    let mut head = [0u8; 24];
    map.read_at(0, &mut head).unwrap();
    map.write_pod(24, &crc32c::crc32c(&head)).unwrap();
}

/// The complement of a named tailer's position came without a format-version change: a
/// build that knows only the position could store one into a newer file, leaving the
/// complement of an older position behind, and the newer build then resumed at that older
/// position (every record in between delivered again). Tailer files are now version 2,
/// which such builds refuse (they read version 1 only); version-1 files are read as before
/// (no complement: the position; a disagreeing one: the lower) and upgraded to version 2,
/// with the complement, when a tailer opens them. Unknown versions are refused by name.
#[test]
fn tailer_files_are_version_2_and_version_1_files_are_read_then_upgraded() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let app = appender_with(&dir, 64 * 1024, 100);
    let file = dir.join("w.tailer");
    let words = || {
        let b = std::fs::read(&file).unwrap();
        let w = |off: usize| u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        (version, w(32), w(48))
    };
    {
        let mut t = TailerOptions::new().name("w").open(&dir).unwrap();
        for s in 0..10 {
            assert_eq!(t.try_next().unwrap().unwrap().seq(), s);
        }
    }
    assert_eq!(words(), (2, 10, !10), "a new file is version 2");
    let map = mapipc::map::MapOptions::new()
        .read_write()
        .map_path(&file)
        .unwrap();
    let stat_pos = || {
        let st = queue::stat(&dir).unwrap();
        assert_eq!(st.tailers[0].problem, None);
        st.tailers[0].next_seq
    };

    // Version 1 without the complement (a release before it): the position, as before.
    set_tailer_version(&map, 1);
    map.write_pod(48, &0u64).unwrap();
    map.write_pod(32, &15u64).unwrap();
    assert_eq!(stat_pos(), 15);
    let t = TailerOptions::new().name("w").open(&dir).unwrap();
    assert_eq!(t.next_seq(), 15);
    assert_eq!(
        words(),
        (2, 15, !15),
        "upgraded by the open, under its lock"
    );
    assert_eq!(stat_pos(), 15);
    drop(t);

    // Version 1 whose complement an older build did not update (position 40 stored alone
    // over a complement of 11): the lower, as before; then upgraded.
    set_tailer_version(&map, 1);
    map.write_pod(48, &!11u64).unwrap();
    map.write_pod(32, &40u64).unwrap();
    assert_eq!(stat_pos(), 11);
    let mut t = TailerOptions::new().name("w").open(&dir).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 11);
    drop(t);
    assert_eq!(words(), (2, 12, !12));

    // Version 2 with the complement zeroed (damage): no record is skipped.
    map.write_pod(48, &0u64).unwrap();
    assert_eq!(stat_pos(), 12);
    assert_eq!(
        TailerOptions::new()
            .name("w")
            .open(&dir)
            .unwrap()
            .next_seq(),
        12
    );

    // A version this build does not know.
    set_tailer_version(&map, 3);
    let err = TailerOptions::new().name("w").open(&dir).unwrap_err();
    assert!(matches!(err, OpenError::BadTailer { .. }), "{err}");
    assert!(err.to_string().contains("format version 3"), "{err}");
    assert!(err.to_string().contains("w.tailer"), "{err}");
    let st = queue::stat(&dir).unwrap();
    assert!(
        st.tailers[0]
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("format version 3")),
        "{:?}",
        st.tailers[0]
    );
    drop(app);
}

/// The upgrade of a version-1 tailer file stores the version, then the header CRC over
/// it. A kill between the two left a header whose CRC matched neither version, and every
/// later open refused the file as damaged ("header CRC mismatch"): the tailer's position
/// was lost. Another process opening the file between the two stores (without the lock,
/// which it takes only after a first check) was told the same instead of "busy". That
/// state reads as the version-1 file it was, and the next open finishes the upgrade.
#[test]
fn a_tailer_file_upgrade_cut_between_version_and_crc_reads_as_version_1() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let app = appender_with(&dir, 64 * 1024, 100);
    let file = dir.join("w.tailer");
    drop(TailerOptions::new().name("w").open(&dir).unwrap());
    let map = mapipc::map::MapOptions::new()
        .read_write()
        .map_path(&file)
        .unwrap();
    // What the upgrade of a version-1 file at position 15 leaves when cut after its
    // version store: the position and complement, version 2, the version-1 CRC.
    let cut_upgrade = || {
        set_tailer_version(&map, 1);
        map.write_pod(32, &15u64).unwrap();
        map.write_pod(48, &!15u64).unwrap();
        map.write_pod(8, &2u32).unwrap();
    };
    cut_upgrade();
    let st = queue::stat(&dir).unwrap();
    assert_eq!(
        (st.tailers[0].problem.as_deref(), st.tailers[0].next_seq),
        (None, 15)
    );
    let mut t = TailerOptions::new().name("w").open(&dir).unwrap();
    assert_eq!(t.next_seq(), 15);
    let mut head = [0u8; 28];
    map.read_at(0, &mut head).unwrap();
    assert_eq!(
        (
            u32::from_le_bytes(head[8..12].try_into().unwrap()),
            u32::from_le_bytes(head[24..28].try_into().unwrap())
        ),
        (2, crc32c::crc32c(&head[..24])),
        "the open finished the upgrade"
    );
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 15);

    // The same state seen by a second open while the first tailer holds the lock (as
    // between its two stores): busy, not damaged.
    cut_upgrade();
    let err = TailerOptions::new().name("w").open(&dir).unwrap_err();
    assert!(matches!(err, OpenError::TailerBusy { .. }), "{err}");
    drop(t);
    drop(app);
}

/// A second open of a named tailer reads the file's 64-byte header before it asks for the
/// lock. While the tailer holding the lock upgrades the file from version 1 (a store of
/// the version, then one of the CRC), that copy can be torn: the version read before the
/// first store, the CRC after the second (a reader stopped in the middle of its copy). It
/// was refused as damaged ("header CRC mismatch", `BadTailer`); the name is busy, and says
/// so. The same bytes in a file nobody holds are damage.
#[test]
fn a_header_read_torn_by_an_upgrade_under_the_lock_is_busy_not_damaged() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let app = appender_with(&dir, 64 * 1024, 100);
    let file = dir.join("w.tailer");
    let t = TailerOptions::new().name("w").open(&dir).unwrap();
    let map = mapipc::map::MapOptions::new()
        .read_write()
        .map_path(&file)
        .unwrap();
    // What the torn copy holds: the version before the upgrade, the CRC after it.
    map.write_pod(8, &1u32).unwrap();
    let err = TailerOptions::new().name("w").open(&dir).unwrap_err();
    assert!(matches!(err, OpenError::TailerBusy { .. }), "{err}");
    drop(t);
    let err = TailerOptions::new().name("w").open(&dir).unwrap_err();
    assert!(
        matches!(&err, OpenError::BadTailer { why, .. } if why.contains("CRC mismatch")),
        "{err}"
    );
    drop(app);
}

#[test]
fn a_killed_named_tailer_gets_the_record_it_was_processing_again() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = Appender::open(&dir).unwrap();
    for s in 0..100 {
        app.append(&payload(s)).unwrap();
    }
    drop(app);
    let shared = Mmap::anonymous(4096).unwrap();
    let seen = shared.atomic_u64(0).unwrap();
    let mut child = fork(|| {
        let mut t = TailerOptions::new().name("worker").open(&dir).unwrap();
        loop {
            let rec = t.try_next().unwrap().unwrap();
            seen.store(rec.seq() + 1, Ordering::SeqCst);
            if rec.seq() == 41 {
                // "Processing" record 41 when the kill comes.
                loop {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
    });
    spin_until("the tailer to reach record 41", || {
        seen.load(Ordering::SeqCst) >= 42
    });
    child.kill9();
    // The lock died with the process; the position says 41 was not finished.
    let mut t = TailerOptions::new().name("worker").open(&dir).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 41);
}

#[test]
fn retention_deletes_old_segments_but_not_what_tailers_need() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_segments(&dir);
    // A named tailer that has read nothing pins everything.
    drop(TailerOptions::new().name("slow").open(&dir).unwrap());
    for s in 0..3000 {
        app.append(&payload(s)).unwrap();
    }
    let before = segments(&dir).len();
    assert!(before >= 6, "{before} segments");
    assert!(matches!(
        queue::retain(&dir, &Retention::new()),
        Err(queue::RetainError::NoBound)
    ));
    let report = queue::retain(&dir, Retention::new().max_segments(2)).unwrap();
    assert!(report.deleted.is_empty());
    let (name, pos, kept) = report.kept_for_tailer.clone().unwrap();
    assert_eq!((name.as_str(), pos), ("slow", 0));
    assert_eq!(kept, before as u64 - 2);
    // Once it has acknowledged 1500 records, the segments before that can go.
    {
        let mut t = TailerOptions::new()
            .name("slow")
            .ack(AckMode::Manual)
            .open(&dir)
            .unwrap();
        for _ in 0..1500 {
            t.try_next().unwrap().unwrap();
        }
        t.ack().unwrap();
    }
    let report = queue::retain(&dir, Retention::new().max_segments(2)).unwrap();
    assert!(!report.deleted.is_empty());
    let first = report.first_seq.unwrap();
    assert!(first <= 1500, "kept everything from {first}");
    let mut t = TailerOptions::new().name("slow").open(&dir).unwrap();
    assert_eq!(t.try_next().unwrap().unwrap().seq(), 1500);
    drop(t);
    // An anonymous tailer from the start begins at the oldest record left.
    let mut t = Tailer::open(&dir).unwrap();
    assert_eq!(
        t.try_next().unwrap().unwrap().to_vec().unwrap(),
        payload(first)
    );
    // By size, forced: only the segment being appended to (and the bound) is left.
    let report =
        queue::retain(&dir, Retention::new().max_bytes(2 * 64 * 1024).force(true)).unwrap();
    assert_eq!(report.remaining, 2);
    assert_eq!(segments(&dir).len(), 2);
    // The tailer left behind learns that its position is gone.
    let mut t = TailerOptions::new().name("slow").open(&dir).unwrap();
    match t.try_next() {
        Err(ReadError::Gone {
            seq,
            first_available,
            ..
        }) => {
            assert_eq!(seq, 1501, "it read 1500 before");
            assert_eq!(Some(first_available), queue::stat(&dir).unwrap().first_seq);
        }
        other => panic!("expected Gone, got {other:?}"),
    }
    t.seek(StartAt::Start).unwrap();
    assert!(t.try_next().unwrap().is_some());
    drop(t);
    // By age: a bound of 0 removes every sealed segment, never the current one.
    let report = queue::retain(&dir, Retention::new().max_age(Duration::ZERO).force(true)).unwrap();
    assert_eq!(report.remaining, 1);
    app.append(b"still appending").unwrap();
    assert!(queue::verify(&dir).unwrap().is_ok());
}

/// A read past a record's payload, and a write outside an appender's grant, fail with
/// `AccessError::OutOfBounds` naming the segment file the record is in (its path, as the
/// queue names it), and the message quotes it: in the first segment, and in the next one
/// after a roll (which the appender creates under a temporary `.seg.pre` name). The
/// message says what its length is (the payload's, not the mapping's), and a
/// `copy_from_slice` of the wrong length says so rather than calling its range outside.
#[test]
fn out_of_bounds_errors_name_the_segment_file_of_the_record() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let check = |err: AccessError, segment: u64, offset: u64, len: usize, bounds: Bounds| {
        let seg = dir.join(format!("{segment:020}.seg")).display().to_string();
        match &err {
            AccessError::OutOfBounds {
                file,
                offset: o,
                len: l,
                map_len,
                bounds: b,
            } => assert_eq!(
                (file.as_str(), *o, *l, *map_len, *b),
                (seg.as_str(), offset, len, 16, bounds),
                "{err}"
            ),
            other => panic!("expected OutOfBounds, got {other:?}"),
        }
        let end = u128::from(offset) + len as u128;
        let want = match bounds {
            Bounds::RecordPayload => {
                format!("range {offset}..{end} is outside the 16-byte record payload in `{seg}`")
            }
            Bounds::GrantPayload => format!(
                "range {offset}..{end} is outside the 16-byte payload of the grant in `{seg}`"
            ),
            Bounds::GrantLength => format!(
                "{len} bytes given for the 16-byte payload of the grant in `{seg}`: \
                 copy_from_slice takes exactly its length"
            ),
            other => panic!("unexpected bounds {other:?}"),
        };
        assert_eq!(err.to_string(), want);
    };
    let mut app = small_segments(&dir);
    let mut firsts = Vec::new();
    for segment in [0, 1] {
        while segments(&dir).len() < segment + 1 {
            app.append(&[1u8; 1000]).unwrap();
        }
        let segment = segment as u64;
        let mut g = app.reserve(16).unwrap();
        let grant = Bounds::GrantPayload;
        check(g.write_at(10, &[0; 8]).unwrap_err(), segment, 10, 8, grant);
        check(g.write_pod(12, &0u64).unwrap_err(), segment, 12, 8, grant);
        let short = g.copy_from_slice(b"short").unwrap_err();
        check(short, segment, 0, 5, Bounds::GrantLength);
        g.fill(7).unwrap();
        firsts.push(g.commit().unwrap());
    }
    drop(app);
    let mut t = Tailer::open(&dir).unwrap();
    for (segment, seq) in firsts.into_iter().enumerate() {
        let rec = loop {
            let rec = t.try_next().unwrap().expect("the record is there");
            if rec.seq() == seq {
                break rec;
            }
        };
        assert_eq!(rec.to_vec().unwrap(), [7; 16]);
        let segment = segment as u64;
        let payload = Bounds::RecordPayload;
        check(
            rec.read_at(10, &mut [0; 8]).unwrap_err(),
            segment,
            10,
            8,
            payload,
        );
        let past = usize::MAX;
        let err = rec.read_at(past, &mut [0; 1]).unwrap_err();
        check(err, segment, past as u64, 1, payload);
    }
}

#[test]
fn zero_copy_grants_commit_abandon_and_bounds() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = small_segments(&dir);
    let mut g = app.reserve(16).unwrap();
    g.write_pod(0, &0x1122_3344_5566_7788u64).unwrap();
    g.write_at(8, b"abcdefgh").unwrap();
    assert!(g.write_at(9, b"abcdefgh").is_err());
    assert!(g.copy_from_slice(b"short").is_err());
    assert_eq!(g.commit().unwrap(), 0);
    // Abandoned: nothing published, the room is reused.
    let mut g = app.reserve(100).unwrap();
    g.fill(0xee).unwrap();
    drop(g);
    assert_eq!(app.append(b"after").unwrap(), 1);
    // Too large for any segment: an error, nothing written.
    let max = app.max_payload();
    let err = app.append(&vec![0u8; max as usize + 1]).unwrap_err();
    assert!(matches!(err, AppendError::TooLarge { .. }), "{err}");
    assert_eq!(
        app.append(&vec![7u8; max as usize]).unwrap(),
        2,
        "the largest fits"
    );
    drop(app);
    let mut t = Tailer::open(&dir).unwrap();
    let r = t.try_next().unwrap().unwrap();
    let mut v = r.to_vec().unwrap();
    assert_eq!(&v[8..], b"abcdefgh");
    assert_eq!(
        u64::from_ne_bytes(v[..8].try_into().unwrap()),
        0x1122_3344_5566_7788
    );
    t.try_next().unwrap().unwrap().copy_into(&mut v).unwrap();
    assert_eq!(v, b"after");
    assert_eq!(t.try_next().unwrap().unwrap().len(), max as usize);
    assert!(queue::verify(&dir).unwrap().is_ok());
}

#[test]
fn a_full_disk_is_an_error_from_append_not_a_crash() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 256 * 1024, 0));
    // A child whose files may not grow past 128 KiB: allocating the next 256 KiB segment
    // fails with EFBIG, as fallocate fails with ENOSPC on a full disk. The first segment
    // exists already.
    let mut child = fork(|| {
        // SAFETY: plain libc calls with valid arguments; SIGXFSZ is ignored so that the
        // limit gives EFBIG instead of killing the child.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 128 * 1024,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
        }
        let Ok(mut app) = QueueOptions::new().open_appender(&dir) else {
            return 2;
        };
        let mut n = 0u64;
        let err = loop {
            match app.append(&payload(n)) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
            if n > 100_000 {
                return 4;
            }
        };
        if !matches!(&err, AppendError::NoSpace { .. }) || !err.to_string().contains(".seg") {
            return 5;
        }
        // Nothing was written by the failed append; trying again fails the same way.
        if !matches!(app.append(&payload(n)), Err(AppendError::NoSpace { .. })) {
            return 6;
        }
        drop(app);
        if check_log(&dir) != n {
            return 7;
        }
        0
    });
    assert_eq!(child.exit_code(), 0);
    let n = check_log(&dir);
    assert!(n > 100);
    // Without the limit, appending continues after the last good record, in a new segment.
    let mut app = QueueOptions::new().open_appender(&dir).unwrap();
    assert!(app.recovery().is_clean());
    assert_eq!(app.append(&payload(n)).unwrap(), n);
    drop(app);
    assert_eq!(check_log(&dir), n + 1);
    assert_eq!(segments(&dir).len(), 2);
}

#[test]
fn damaged_or_foreign_files_give_typed_errors() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 64 * 1024, 1000));
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    // A damaged segment header in the middle: readers and verify name it.
    flip_byte(&segs[1], 33);
    let report = queue::verify(&dir).unwrap();
    assert!(
        report.problems.iter().any(|p| p.segment == 1
            && matches!(&p.reason, CorruptReason::BadSegment { what } if what.contains("CRC"))),
        "{:?}",
        report.problems
    );
    let mut t = Tailer::open(&dir).unwrap();
    let err = loop {
        match t.try_next() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the damaged segment was not reported"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, ReadError::Corrupt(c) if c.segment == 1),
        "{err}"
    );
    assert!(
        err.to_string().contains("00000000000000000001.seg"),
        "{err}"
    );
    // Skipping goes on with the segment after it.
    let skipped = t.skip_corrupt().unwrap().unwrap();
    assert!(skipped.next > skipped.first);
    assert_eq!(
        t.try_next().unwrap().unwrap().to_vec().unwrap(),
        payload(skipped.next)
    );
    flip_byte(&segs[1], 33);
    assert!(queue::verify(&dir).unwrap().is_ok());

    // A segment file cut short: for readers, an error naming it, not a SIGBUS; the
    // appender's recovery (a machine crash can lose the end of a file) extends it back to
    // its size, says so, and keeps the records that are whole.
    let last = segs.last().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(10_000).unwrap();
    let err = TailerOptions::new()
        .from(StartAt::End)
        .open(&dir)
        .unwrap_err();
    assert!(
        matches!(&err, OpenError::Read(r) if matches!(**r, ReadError::Corrupt(_))),
        "{err}"
    );
    assert!(err.to_string().contains("10000 bytes"), "{err}");
    let app = Appender::open(&dir).unwrap();
    assert!(
        matches!(
            &app.recovery().segment_repairs[..],
            [queue::SegmentRepair::Extended { len: 10_000, .. }]
        ),
        "{:?}",
        app.recovery()
    );
    drop(app);
    assert_eq!(f.metadata().unwrap().len(), 64 * 1024);

    // Metadata that is not ours.
    let meta = dir.join("queue.meta");
    let good = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, vec![0xabu8; 4096]).unwrap();
    for err in [
        Tailer::open(&dir).unwrap_err(),
        Appender::open(&dir).unwrap_err(),
    ] {
        assert!(matches!(err, OpenError::BadMeta { .. }), "{err}");
        assert!(err.to_string().contains("queue.meta"), "{err}");
    }
    std::fs::write(&meta, &good[..100]).unwrap();
    assert!(matches!(Tailer::open(&dir), Err(OpenError::BadMeta { .. })));
    std::fs::write(&meta, &good).unwrap();
    assert!(matches!(
        Tailer::open(tmp.path().join("nope")),
        Err(OpenError::NotAQueue { .. })
    ));
    assert!(matches!(
        QueueOptions::new()
            .create(false)
            .open_appender(tmp.path().join("nope")),
        Err(OpenError::NotAQueue { .. })
    ));
    assert!(matches!(
        QueueOptions::new()
            .segment_size(1 << 20)
            .open_appender(&dir),
        Err(OpenError::SegmentSizeMismatch {
            existing: 65536,
            ..
        })
    ));
    assert!(matches!(
        QueueOptions::new()
            .segment_size(1000)
            .open_appender(tmp.path().join("q2")),
        Err(OpenError::InvalidOptions { .. })
    ));

    // A named tailer's file cut short: `stat` (and so retention) says so in the queue's
    // words, as opening the tailer does (it said "grow the file first (MapOptions::create)").
    drop(TailerOptions::new().name("w").open(&dir).unwrap());
    let tailer_file = dir.join("w.tailer");
    std::fs::write(&tailer_file, b"abc").unwrap();
    let st = queue::stat(&dir).unwrap();
    let problem = st.tailers[0]
        .problem
        .as_deref()
        .expect("the short tailer file");
    assert_eq!(problem, "the file is 3 bytes, expected 4096");
    let err = TailerOptions::new().name("w").open(&dir).unwrap_err();
    assert!(err.to_string().contains("the file is 3 bytes"), "{err}");
}

#[test]
fn a_segment_truncated_under_live_mappings_is_an_error_not_a_crash() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = appender_with(&dir, 1 << 20, 500);
    let mut t = Tailer::open(&dir).unwrap();
    assert!(t.try_next().unwrap().is_some());
    let seg = &segments(&dir)[0];
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let err = loop {
        match t.try_next() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("end of log reported instead of the truncation"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ReadError::Access(_)), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    let err = app.append(&payload(500)).unwrap_err();
    assert!(matches!(err, AppendError::Access(_)), "{err}");
}

/// A named tailer's position file truncated under it: `ack` and `sync_position` report it
/// with their own errors, naming the file; an automatic acknowledgement (made by the next
/// read) reports it as a read error. Anonymous tailers have nothing to store.
#[test]
fn a_position_file_truncated_under_a_named_tailer_fails_ack_and_sync_position() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let _app = appender_with(&dir, 1 << 20, 10);
    let mut anon = Tailer::open(&dir).unwrap();
    let mut manual = TailerOptions::new()
        .name("m")
        .ack(AckMode::Manual)
        .open(&dir)
        .unwrap();
    let mut auto = TailerOptions::new().name("a").open(&dir).unwrap();
    for t in [&mut anon, &mut manual, &mut auto] {
        assert_eq!(t.try_next().unwrap().unwrap().seq(), 0);
        t.ack().unwrap();
        t.sync_position().unwrap();
    }
    for name in ["m", "a"] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(format!("{name}.tailer")))
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    let file = dir.join("m.tailer");
    let err = manual.ack().unwrap_err();
    assert!(
        matches!(&err, AckError::Access { file: f, source } if *f == file
            && matches!(source, AccessError::Truncated { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("m.tailer"), "{err}");
    let err = manual.sync_position().unwrap_err();
    assert!(
        matches!(&err, SyncPositionError::Access { file: f, .. } if *f == file),
        "{err:?}"
    );
    assert!(err.to_string().contains("m.tailer"), "{err}");
    // Reading goes on for the manual tailer (it stores nothing when it reads)...
    assert_eq!(manual.try_next().unwrap().unwrap().seq(), 1);
    // ... but not for the automatic one, whose read stores the position first.
    let err = auto.try_next().unwrap_err();
    assert!(matches!(err, ReadError::Access(_)), "{err}");
    assert!(matches!(auto.ack(), Err(AckError::Access { .. })));
    // Anonymous: nothing to store, nothing to fail.
    anon.ack().unwrap();
    anon.sync_position().unwrap();
    assert_eq!(anon.try_next().unwrap().unwrap().seq(), 1);
}

/// `stat` and `verify` fail only when the queue cannot be opened, listed or read; damaged
/// segment files are in what they return.
#[test]
fn stat_and_verify_errors_are_about_opening_damage_is_reported() {
    let tmp = tempdir();
    let missing = tmp.path().join("missing");
    assert!(matches!(
        queue::stat(&missing),
        Err(InspectError::NotAQueue { dir, .. }) if dir == missing
    ));
    assert!(matches!(
        queue::verify(&missing),
        Err(InspectError::NotAQueue { dir, .. }) if dir == missing
    ));

    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 64 * 1024, 10));
    let bad_seg = dir.join(format!("{:020}.seg", 1));
    std::fs::write(&bad_seg, b"not a segment").unwrap();
    let st = queue::stat(&dir).unwrap();
    assert!(st.segments[1].problem.is_some(), "{:?}", st.segments);
    let report = queue::verify(&dir).unwrap();
    assert!(
        report.problems.iter().any(|c| c.file == bad_seg),
        "{:?}",
        report.problems
    );

    let meta = dir.join("queue.meta");
    std::fs::write(&meta, b"short").unwrap();
    let err = queue::stat(&dir).unwrap_err();
    assert!(
        matches!(&err, InspectError::BadMeta { file, .. } if *file == meta),
        "{err}"
    );
    assert!(err.to_string().contains("queue.meta"), "{err}");
    let err = queue::verify(&dir).unwrap_err();
    assert!(
        matches!(&err, InspectError::BadMeta { file, .. } if *file == meta),
        "{err}"
    );
    assert!(err.to_string().contains("queue.meta"), "{err}");
}

/// A tailer waiting at the end of the log learns that its segment was truncated (no append
/// can come after that) instead of waiting for ever, though it touches no page of it.
#[test]
fn a_waiting_tailer_learns_its_segment_was_truncated() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let _app = appender_with(&dir, 1 << 20, 3);
    let mut t = Tailer::open(&dir).unwrap();
    for _ in 0..3 {
        assert!(t.try_next().unwrap().is_some());
    }
    let (done, result) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let r = t.next_blocking().map(|r| r.seq());
        let _ = done.send(r.map_err(|e| (matches!(e, ReadError::Corrupt(_)), e.to_string())));
    });
    wait_until("the tailer to park", || parked_tailers(&dir) == 1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segments(&dir)[0])
        .unwrap()
        .set_len(4096)
        .unwrap();
    let r = result
        .recv_timeout(WATCHDOG)
        .expect("watchdog: the tailer kept waiting");
    let (corrupt, text) = r.expect_err("no record can come");
    assert!(corrupt, "{text}");
    assert!(text.contains("truncated to 4096 bytes"), "{text}");
}

/// How the read of record 10 fails in [`reads_that_failed_are_not_acknowledged`].
#[derive(Clone, Copy, Debug)]
enum FailedRead {
    /// `try_next` returned record 10, then its segment was truncated and copying the
    /// payload failed.
    Payload,
    /// The segment was truncated after record 9 was read, and asking for record 10 failed.
    Next,
}

/// What the tailer does after the failed read in [`reads_that_failed_are_not_acknowledged`],
/// before it is dropped.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Nothing.
    Drop,
    /// Asks for the next record (which fails: the mapping is poisoned).
    AskNext,
    /// Calls `ack` (which says that record 10 is not acknowledged).
    Ack,
}

/// A named tailer whose read of record 10 failed because the segment was truncated under
/// it never acknowledges record 10, whether it is dropped, asks for the next record or is
/// told to acknowledge (`ack`, as `mapipc queue tail --name` does after an error): once the
/// segment is whole again (restored from a copy), the reopened tailer starts at record 10,
/// not 11. The records read before are acknowledged.
#[test]
fn reads_that_failed_are_not_acknowledged() {
    let _g = serial();
    let tmp = tempdir();
    let cases = [
        (AckMode::Auto, FailedRead::Payload, Then::Drop),
        (AckMode::Auto, FailedRead::Payload, Then::AskNext),
        (AckMode::Auto, FailedRead::Payload, Then::Ack),
        (AckMode::Manual, FailedRead::Payload, Then::Drop),
        (AckMode::Manual, FailedRead::Payload, Then::AskNext),
        (AckMode::Manual, FailedRead::Payload, Then::Ack),
        (AckMode::Auto, FailedRead::Next, Then::Drop),
        (AckMode::Auto, FailedRead::Next, Then::Ack),
        (AckMode::Manual, FailedRead::Next, Then::Ack),
    ];
    for (k, (mode, how, then)) in cases.into_iter().enumerate() {
        let case = format!("{mode:?}, {how:?}, {then:?}");
        let dir = tmp.path().join(format!("q{k}"));
        drop(appender_with(&dir, 1 << 20, 20));
        let seg = segments(&dir).remove(0);
        let whole = std::fs::read(&seg).unwrap();
        // The page holding record 10's payload, and all after it, are lost.
        let cut = offset_of_record(&seg, 10) & !4095;
        assert!(cut >= 4096, "{case}: the segment header survives");
        let truncate = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&seg)
                .unwrap()
                .set_len(cut)
                .unwrap();
        };
        let mut t = TailerOptions::new().name("w").ack(mode).open(&dir).unwrap();
        for s in 0..10 {
            let rec = t.try_next().unwrap().unwrap();
            assert_eq!(
                (rec.seq(), rec.to_vec().unwrap()),
                (s, payload(s)),
                "{case}"
            );
        }
        if mode == AckMode::Manual {
            t.ack().unwrap(); // 0..10: read intact
        }
        match how {
            FailedRead::Payload => {
                let rec = t.try_next().unwrap().unwrap();
                assert_eq!(rec.seq(), 10, "{case}");
                truncate();
                let err = rec.to_vec().unwrap_err();
                assert!(
                    matches!(err, AccessError::Truncated { .. }),
                    "{case}: {err}"
                );
            }
            FailedRead::Next => {
                truncate();
                let err = t.try_next().unwrap_err();
                assert!(matches!(err, ReadError::Access(_)), "{case}: {err}");
            }
        }
        match then {
            Then::Drop => {}
            Then::AskNext => {
                let err = t.try_next().unwrap_err();
                assert!(err.to_string().contains("truncated"), "{case}: {err}");
            }
            Then::Ack => match (how, t.ack()) {
                // Record 10 was returned: its read did not complete intact.
                (FailedRead::Payload, Err(err)) => {
                    assert!(
                        matches!(&err, AckError::NotIntact { file, seq: 10, source }
                            if *file == seg && matches!(source, AccessError::Truncated { .. })),
                        "{case}: {err:?}"
                    );
                    let text = err.to_string();
                    assert!(
                        text.contains("record 10 is not acknowledged"),
                        "{case}: {text}"
                    );
                    assert!(text.contains(".seg"), "{case}: names the segment: {text}");
                }
                (FailedRead::Payload, Ok(())) => panic!("{case}: ack reported no error"),
                // It was not returned: there is nothing to withhold, records 0..10 are
                // acknowledged.
                (FailedRead::Next, r) => r.unwrap_or_else(|e| panic!("{case}: {e}")),
            },
        }
        drop(t);
        std::fs::write(&seg, &whole).unwrap(); // restored from the copy
        let mut t = TailerOptions::new().name("w").open(&dir).unwrap();
        assert_eq!(t.next_seq(), 10, "{case}: record 10 was acknowledged");
        for s in 10..20 {
            let rec = t.try_next().unwrap().unwrap();
            assert_eq!(
                (rec.seq(), rec.to_vec().unwrap()),
                (s, payload(s)),
                "{case}"
            );
        }
        assert!(t.try_next().unwrap().is_none(), "{case}");
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append(usize, u8),
    Reserve(usize, u8, bool),
    Read(usize),
    Seek(usize, u64),
    SeekEnd(usize),
    ReopenAppender,
    ReopenTailer(usize),
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3000, any::<u8>()).prop_map(|(l, b)| Op::Append(l, b)),
        2 => (0usize..3000, any::<u8>(), any::<bool>()).prop_map(|(l, b, c)| Op::Reserve(l, b, c)),
        6 => (0usize..2).prop_map(Op::Read),
        1 => (0usize..2, any::<u64>()).prop_map(|(i, s)| Op::Seek(i, s)),
        1 => (0usize..2).prop_map(Op::SeekEnd),
        1 => Just(Op::ReopenAppender),
        1 => (0usize..2).prop_map(Op::ReopenTailer),
        1 => Just(Op::Sync),
    ]
}

fn record_bytes(len: usize, b: u8) -> Vec<u8> {
    (0..len).map(|i| b.wrapping_add(i as u8)).collect()
}

/// Runs random operations against the queue and a `Vec` of records, checking every read.
fn model_check(ops: &[Op], sync: SyncPolicy) {
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let open = || {
        QueueOptions::new()
            .segment_size(64 * 1024)
            .index_interval(4)
            .sync(sync)
            .open_appender(&dir)
            .unwrap()
    };
    let mut app = Some(open());
    let mut model: Vec<Vec<u8>> = Vec::new();
    let mut tailers = [Tailer::open(&dir).unwrap(), Tailer::open(&dir).unwrap()];
    let mut pos = [0u64; 2];
    for op in ops {
        match op {
            Op::Append(len, b) => {
                let seq = app
                    .as_mut()
                    .unwrap()
                    .append(&record_bytes(*len, *b))
                    .unwrap();
                assert_eq!(seq, model.len() as u64);
                model.push(record_bytes(*len, *b));
            }
            Op::Reserve(len, b, commit) => {
                let a = app.as_mut().unwrap();
                let mut g = a.reserve(*len).unwrap();
                g.copy_from_slice(&record_bytes(*len, *b)).unwrap();
                if *commit {
                    assert_eq!(g.commit().unwrap(), model.len() as u64);
                    model.push(record_bytes(*len, *b));
                }
            }
            Op::Read(i) => match tailers[*i].try_next().unwrap() {
                Some(rec) => {
                    assert_eq!(rec.seq(), pos[*i]);
                    assert_eq!(rec.to_vec().unwrap(), model[pos[*i] as usize]);
                    pos[*i] += 1;
                }
                None => assert_eq!(pos[*i], model.len() as u64),
            },
            Op::Seek(i, s) => {
                let s = s % (model.len() as u64 + 2);
                let r = tailers[*i].seek(StartAt::Seq(s));
                if s <= model.len() as u64 {
                    r.unwrap();
                    pos[*i] = s;
                } else {
                    assert!(matches!(r, Err(ReadError::PastEnd { .. })), "{r:?}");
                }
            }
            Op::SeekEnd(i) => {
                tailers[*i].seek(StartAt::End).unwrap();
                pos[*i] = model.len() as u64;
                assert_eq!(tailers[*i].next_seq(), pos[*i]);
            }
            Op::ReopenAppender => {
                drop(app.take());
                let a = open();
                assert!(a.recovery().is_clean(), "{:?}", a.recovery());
                assert_eq!(a.next_seq(), model.len() as u64);
                app = Some(a);
            }
            Op::ReopenTailer(i) => {
                tailers[*i] = TailerOptions::new()
                    .from(StartAt::Seq(pos[*i]))
                    .open(&dir)
                    .unwrap();
            }
            Op::Sync => app.as_mut().unwrap().sync().unwrap(),
        }
    }
    drop(app);
    let report = queue::verify(&dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.next_seq, model.len() as u64);
    assert_eq!(report.records, model.len() as u64);
}

/// Damages a queue with `damage` (offset in the data area of the last segment, bytes) and
/// checks that verify, recovery and reads all finish with results or typed errors.
fn survive_damage(records: u64, damage: &[(u64, Vec<u8>)]) {
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 64 * 1024, records));
    let seg = segments(&dir).pop().unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        for (off, bytes) in damage {
            f.write_all_at(bytes, 4096 + off % (60 * 1024)).unwrap();
        }
    }
    let report = queue::verify(&dir).unwrap();
    // Every record the readers return is one that was appended.
    let mut t = Tailer::open(&dir).unwrap();
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 1_000_000, "reading terminates");
        match t.try_next() {
            Ok(Some(rec)) => assert_eq!(rec.to_vec().unwrap(), payload(rec.seq())),
            Ok(None) => break,
            Err(ReadError::Corrupt(_)) => {
                if t.skip_corrupt().unwrap().is_none() {
                    break;
                }
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    let app = Appender::open(&dir).unwrap();
    assert!(app.next_seq() <= records.max(report.next_seq));
    drop(app);
    // After recovery the tail is clean: verify finds no more problems than before.
    let after = queue::verify(&dir).unwrap();
    assert!(
        after.problems.len() <= report.problems.len(),
        "{:?}",
        after.problems
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_a_model(ops in proptest::collection::vec(op(), 1..80)) {
        let _g = serial();
        model_check(&ops, SyncPolicy::None);
    }

    #[test]
    fn queue_matches_a_model_with_group_commit(ops in proptest::collection::vec(op(), 1..40)) {
        let _g = serial();
        model_check(&ops, SyncPolicy::Batch { records: 3, interval: Duration::from_secs(1) });
    }

    #[test]
    fn damage_never_crashes_or_hangs(
        records in 0u64..400,
        damage in proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 1..64)), 1..4),
    ) {
        let _g = serial();
        survive_damage(records, &damage);
    }
}

#[test]
fn verify_and_stat_while_an_appender_runs_report_no_damage() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    drop(appender_with(&dir, 64 * 1024, 0));
    let shared = Mmap::anonymous(4096).unwrap();
    let done = shared.atomic_u32(0).unwrap();
    let mut child = fork(|| {
        let mut app = QueueOptions::new().open_appender(&dir).unwrap();
        for seq in 0..100_000 {
            app.append(&payload(seq)).unwrap();
        }
        drop(app);
        done.store(1, Ordering::SeqCst);
        0
    });
    let mut rounds = 0;
    while done.load(Ordering::SeqCst) == 0 || rounds == 0 {
        let report = queue::verify(&dir).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        let st = queue::stat(&dir).unwrap();
        assert!(st.next_seq >= report.next_seq);
        rounds += 1;
    }
    assert_eq!(child.exit_code(), 0);
    let report = queue::verify(&dir).unwrap();
    assert!(report.is_ok() && report.notes.is_empty());
    assert_eq!(report.records, 100_000);
}

#[test]
fn an_index_entry_lost_in_a_crash_is_repaired_by_recovery() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = QueueOptions::new()
        .segment_size(1 << 20)
        .index_interval(64)
        .open_appender(&dir)
        .unwrap();
    for seq in 0..65 {
        app.append(&payload(seq)).unwrap();
    }
    drop(app);
    // As if the appender died between record 64's commit and its index entry (entry 1,
    // at 128 + 4 in the segment).
    let seg = &segments(&dir)[0];
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
        f.write_all_at(&[0u8; 4], 132).unwrap();
    }
    let mut app = Appender::open(&dir).unwrap();
    for seq in 65..200 {
        app.append(&payload(seq)).unwrap();
    }
    drop(app);
    let report = queue::verify(&dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let mut t = TailerOptions::new()
        .from(StartAt::Seq(70))
        .open(&dir)
        .unwrap();
    assert_eq!(
        t.try_next().unwrap().unwrap().to_vec().unwrap(),
        payload(70)
    );
}

/// A forked child holding locks on a queue's `queue.meta` until released: it opens the file
/// itself (its own open file description, so the locks go with it when it exits), takes
/// them with `take`, and waits. A watchdog turns a hang of the test into a failure.
struct LockHolder {
    child: common::Child,
    flags: Mmap,
    _watchdog: common::Watchdog,
}

impl LockHolder {
    /// Starts the child and waits until it holds the locks.
    fn start(
        test: &'static str,
        meta_file: &Path,
        take: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> bool,
    ) -> LockHolder {
        let flags = Mmap::anonymous(4096).unwrap();
        let holding = flags.atomic_u32(0).unwrap();
        let release = flags.atomic_u32(4).unwrap();
        let mut child = fork(|| {
            use std::os::fd::AsFd;
            let Ok(f) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(meta_file)
            else {
                return 2;
            };
            if !take(f.as_fd()) {
                return 3;
            }
            holding.store(1, Ordering::SeqCst);
            if !common::child_wait_until(|| release.load(Ordering::SeqCst) != 0) {
                return 4;
            }
            0
        });
        let watchdog = common::Watchdog::new(test, Some(child.pid));
        wait_until("the child to hold the locks", || {
            holding.load(Ordering::SeqCst) != 0 || child.try_wait().is_some()
        });
        assert_eq!(holding.load(Ordering::SeqCst), 1, "{:?}", child.try_wait());
        LockHolder {
            child,
            flags,
            _watchdog: watchdog,
        }
    }

    /// Lets the child drop its locks and exit; its exit code.
    fn release(mut self) -> i32 {
        self.flags.atomic_u32(4).unwrap().store(1, Ordering::SeqCst);
        self.child.exit_code()
    }
}

/// Takes the locks on `queue.meta` as `retain` does, waiting for them: the retention byte
/// lock (byte 1, an OFD lock), then the exclusive `flock` (the position lock).
fn lock_as_retain(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    matches!(mapipc::os::file::ofd_lock(fd, 1, 1, true), Ok(true))
        && matches!(mapipc::os::file::flock_exclusive(fd, true), Ok(true))
}

/// The queue's segment files with their lengths, to show that nothing was deleted or
/// changed.
fn segment_files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    segments(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect()
}

/// `remove_damaged` waited for the retention lock for a fixed `POSITION_LOCK_TIMEOUT` (10 s),
/// with no way to shorten it. With `RemoveDamagedOptions::lock_timeout`, a removal meeting a
/// retention run stopped while it holds the lock (a forked child that takes the locks as
/// `retain` does, and keeps them) gives up after that budget with
/// `RemoveDamagedError::RetentionLockTimeout` naming `queue.meta`, deleting nothing, and its
/// `waited` (the time it measured) is at least the budget; once the holder is gone the same
/// removal succeeds. The watchdog turns a hang into a failure.
#[test]
fn remove_damaged_gives_up_after_its_lock_timeout() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = appender_with(&dir, 64 * 1024, 10);
    let meta_file = dir.join("queue.meta");
    let damaged = dir.join("00000000000000000009.seg.damaged-1764000000000000000");
    std::fs::write(&damaged, [1u8; 100]).unwrap();
    let holder = LockHolder::start(
        "remove_damaged_gives_up_after_its_lock_timeout",
        &meta_file,
        lock_as_retain,
    );

    let timeout = Duration::from_millis(100);
    let mut opts = RemoveDamagedOptions::new();
    opts.lock_timeout(timeout);
    let err = queue::remove_damaged_with(&dir, &opts).unwrap_err();
    let queue::RemoveDamagedError::RetentionLockTimeout { file, waited } = &err else {
        panic!("expected the retention lock timeout, got {err:?}");
    };
    assert_eq!(file, &meta_file);
    assert!(*waited >= timeout, "waited {waited:?}, budget {timeout:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "timed out after {waited:.1?} waiting for the retention lock on `{}`",
            meta_file.display()
        )),
        "{msg}"
    );
    assert!(damaged.exists(), "nothing deleted");

    // The holder goes away: the same removal succeeds.
    assert_eq!(holder.release(), 0);
    let removed = queue::remove_damaged_with(&dir, &opts).unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0].path, damaged);
    assert!(!damaged.exists());
    app.append(b"more").unwrap();
}

/// A retention run stopped or hung while it holds the position lock (here a child that
/// takes the lock on `queue.meta` as `retain` does, the retention byte lock then the
/// exclusive `flock`, and keeps it) made every named tailer's creation and seek wait
/// forever. Now they give up after the tailer's lock timeout with
/// `ReadError::PositionLockTimeout` naming `queue.meta`, without moving; anonymous tailers
/// take no lock; once the holder is gone the same seeks succeed. The watchdog turns a hang
/// into a failure.
#[test]
fn a_named_seek_gives_up_on_a_stopped_retention_run() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = appender_with(&dir, 64 * 1024, 10);
    let meta_file = dir.join("queue.meta");
    TailerOptions::new().name("late").open(&dir).unwrap();
    let holder = LockHolder::start(
        "a_named_seek_gives_up_on_a_stopped_retention_run",
        &meta_file,
        lock_as_retain,
    );
    let timeout = Duration::from_millis(200);
    let is_lock_timeout = |e: &ReadError| {
        matches!(e, ReadError::PositionLockTimeout { file, waited }
            if *file == meta_file && *waited >= timeout)
    };

    // Creating a named tailer.
    let err = TailerOptions::new()
        .name("new")
        .lock_timeout(timeout)
        .open(&dir)
        .unwrap_err();
    match &err {
        OpenError::Read(e) => assert!(is_lock_timeout(e), "{e:?}"),
        other => panic!("expected the position lock timeout, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("queue.meta")
            && msg.contains("retention")
            && msg.contains("or another process locking the file"),
        "{msg}"
    );
    assert!(!dir.join("new.tailer").exists(), "no file created");
    // Moving an existing one when it opens.
    let err = TailerOptions::new()
        .name("late")
        .from(StartAt::Seq(5))
        .lock_timeout(timeout)
        .open(&dir)
        .unwrap_err();
    assert!(
        matches!(&err, OpenError::Read(e) if is_lock_timeout(e)),
        "{err:?}"
    );
    // Seeking one: resuming takes no lock, the seek does.
    let mut late = TailerOptions::new()
        .name("late")
        .lock_timeout(timeout)
        .open(&dir)
        .unwrap();
    let err = late.seek(StartAt::Seq(5)).unwrap_err();
    assert!(is_lock_timeout(&err), "{err:?}");
    assert_eq!(late.next_seq(), 0, "the tailer did not move");
    // Anonymous tailers take no lock.
    let mut anon = TailerOptions::new()
        .from(StartAt::Seq(3))
        .open(&dir)
        .unwrap();
    anon.seek(StartAt::Seq(7)).unwrap();
    assert_eq!(anon.try_next().unwrap().unwrap().seq(), 7);

    // The holder goes away: the same seeks succeed.
    assert_eq!(holder.release(), 0);
    late.seek(StartAt::Seq(5)).unwrap();
    assert_eq!(late.next_seq(), 5);
    drop(late);
    let t = TailerOptions::new()
        .name("new")
        .from(StartAt::Seq(2))
        .lock_timeout(timeout)
        .open(&dir)
        .unwrap();
    assert_eq!(t.next_seq(), 2);
    assert_eq!(
        TailerOptions::new()
            .name("late")
            .open(&dir)
            .unwrap()
            .next_seq(),
        5
    );
    app.append(b"more").unwrap();
}

/// `retain` on `dir` while another process holds a lock of `queue.meta`, forced and not:
/// each run fails as `refused` says, with a message naming `queue.meta`, `holder` and
/// the possibility of another process, and no segment is deleted or changed.
fn retain_refused(
    dir: &Path,
    policy: &Retention,
    before: &[(std::path::PathBuf, u64)],
    holder: &str,
    refused: impl Fn(&queue::RetainError) -> bool,
) {
    for force in [false, true] {
        let err = queue::retain(dir, policy.clone().force(force)).unwrap_err();
        assert!(refused(&err), "force {force}: {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("queue.meta")
                && msg.contains(holder)
                && msg.contains("or another process locking the file"),
            "{msg}"
        );
        assert_eq!(segment_files(dir), before, "no segment deleted or changed");
    }
}

/// The other way round: a named tailer's process stopped (or hung) in the middle of a seek
/// holds the position lock shared (a forked child holds the `flock` on `queue.meta` as a
/// seeking tailer does), which made `retain`, waiting for it exclusively, hang forever.
/// Now it gives up after its lock timeout with `RetainError::PositionLockTimeout` naming
/// `queue.meta`, having deleted no segment; once the holder is gone the same run succeeds.
/// The watchdog turns a hang into a failure.
#[test]
fn retention_gives_up_on_a_named_tailer_stopped_in_a_seek() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = appender_with(&dir, 64 * 1024, 2000);
    let meta_file = dir.join("queue.meta");
    // The shared `flock`, as a seeking named tailer takes it.
    let holder = LockHolder::start(
        "retention_gives_up_on_a_named_tailer_stopped_in_a_seek",
        &meta_file,
        |fd| matches!(mapipc::os::file::flock_shared(fd, true), Ok(true)),
    );
    let before = segment_files(&dir);
    assert!(before.len() >= 3, "{before:?}");

    let timeout = Duration::from_millis(200);
    let mut policy = Retention::new();
    policy.max_segments(1).lock_timeout(timeout);
    // Forced, it waits all the same (forcing only ignores what tailers need).
    retain_refused(&dir, &policy, &before, "named tailer", |err| {
        matches!(err, queue::RetainError::PositionLockTimeout { file, waited }
            if *file == meta_file && *waited >= timeout)
    });

    // The holder goes away: the same run succeeds.
    assert_eq!(holder.release(), 0);
    let report = queue::retain(&dir, &policy).unwrap();
    assert_eq!(report.deleted.len(), before.len() - 1, "{report:?}");
    assert_eq!(report.remaining, 1);
    assert_eq!(segments(&dir).len(), 1);
    app.append(b"more").unwrap();
}

/// Retention runs are serialized by the retention lock (an OFD lock on byte 1 of
/// `queue.meta`), which `retain` waited for without bound: a run stopped (`SIGSTOP`) or hung
/// while holding it (here a forked child that takes the locks as `retain` does and keeps
/// them) made every later run hang forever. Now `retain` gives up after its lock timeout
/// with `RetainError::RetentionLockTimeout` naming `queue.meta`, having deleted nothing,
/// forced or not; once the holder is gone the same run succeeds. The watchdog turns a hang
/// into a failure.
#[test]
fn retention_gives_up_on_a_stopped_retention_run() {
    let _g = serial();
    let tmp = tempdir();
    let dir = tmp.path().join("q");
    let mut app = appender_with(&dir, 64 * 1024, 2000);
    let meta_file = dir.join("queue.meta");
    let holder = LockHolder::start(
        "retention_gives_up_on_a_stopped_retention_run",
        &meta_file,
        lock_as_retain,
    );
    let before = segment_files(&dir);
    assert!(before.len() >= 3, "{before:?}");

    let timeout = Duration::from_millis(200);
    let mut policy = Retention::new();
    policy.max_segments(1).lock_timeout(timeout);
    retain_refused(&dir, &policy, &before, "another retention run", |err| {
        matches!(err, queue::RetainError::RetentionLockTimeout { file, waited }
            if *file == meta_file && *waited >= timeout)
    });
    // `remove_damaged` takes the same lock, and gives up after `POSITION_LOCK_TIMEOUT`
    // without deleting anything (before, it waited for ever).
    let damaged = dir.join("00000000000000000009.seg.damaged-1764000000000000000");
    std::fs::write(&damaged, [1u8; 100]).unwrap();
    let err = queue::remove_damaged(&dir).unwrap_err();
    assert!(
        matches!(&err, queue::RemoveDamagedError::RetentionLockTimeout { file, waited }
            if *file == meta_file && *waited >= queue::POSITION_LOCK_TIMEOUT),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("queue.meta") && msg.contains("or another process locking the file"),
        "{msg}"
    );
    assert!(damaged.exists());

    // The holder goes away: the same run succeeds.
    assert_eq!(holder.release(), 0);
    let report = queue::retain(&dir, &policy).unwrap();
    assert_eq!(report.deleted.len(), before.len() - 1, "{report:?}");
    assert_eq!(report.remaining, 1);
    assert_eq!(queue::remove_damaged(&dir).unwrap().len(), 1);
    assert!(!damaged.exists());
    app.append(b"more").unwrap();
}
