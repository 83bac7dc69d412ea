//! Integration tests of `mapipc queue ...`: every test runs the built executable as a real
//! process, in a fresh temporary directory, under a watchdog that kills it after
//! [`TIMEOUT`] and fails the test. No assertion depends on timing.

use std::io::Read;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

mod common;

use common::*;

impl TestDir {
    /// Appends each of `msgs` with `mapipc queue append q ...`.
    fn append(&self, msgs: &[&str]) {
        let mut args = vec!["queue", "append", "q"];
        args.extend(msgs);
        self.run(&args).ok();
    }

    fn stdout_lines(&self, args: &[&str]) -> Vec<String> {
        let out = self.run(args);
        out.ok();
        out.stdout_str().lines().map(str::to_string).collect()
    }
}

/// Flips one byte of a file.
fn flip_byte(path: &std::path::Path, offset: u64) {
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

clitest!(append_arguments_and_stdin_lines_then_tail_them, |dir| {
    dir.append(&["first", "second record", ""]);
    let out = dir.run_with_stdin(&["queue", "append", "q"], b"line 1\nline 2\n\nno newline");
    out.ok();
    assert!(out.stdout.is_empty());
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q"]),
        [
            "first",
            "second record",
            "",
            "line 1",
            "line 2",
            "",
            "no newline"
        ]
    );
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--seq", "--from", "3", "--count", "2"]),
        ["3\tline 1", "4\tline 2"]
    );
    // Bytes that are not UTF-8 go through unchanged.
    dir.run_with_stdin(&["queue", "append", "q"], b"\xff\xfe\x00x\n")
        .ok();
    let out = dir.run(&["queue", "tail", "q", "--from", "7"]);
    out.ok();
    assert_eq!(out.stdout, b"\xff\xfe\x00x\n");
    // From the end: nothing, and exit 0 without --follow.
    let out = dir.run(&["queue", "tail", "q", "--from", "end"]);
    out.ok();
    assert!(out.stdout.is_empty());
});

clitest!(sync_policies_and_segment_sizes, |dir| {
    for sync in ["none", "batch", "always"] {
        dir.run(&[
            "queue",
            "append",
            "q",
            "--sync",
            sync,
            "--segment-size",
            "64KiB",
            sync,
        ])
        .ok();
    }
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q"]),
        ["none", "batch", "always"]
    );
    let err = dir
        .run(&["queue", "append", "q", "--segment-size", "1MiB", "x"])
        .error()
        .to_string();
    assert!(err.contains("segment size 65536"), "{err}");
    let err = dir
        .run(&["queue", "append", "q2", "--segment-size", "1000", "x"])
        .error()
        .to_string();
    assert!(err.contains("multiple of 4096"), "{err}");
    dir.run(&["queue", "append", "q", "--sync", "sometimes", "x"])
        .usage_error();
});

clitest!(tail_errors_and_usage, |dir| {
    dir.append(&["a", "b"]);
    let err = dir
        .run(&["queue", "tail", "q", "--from", "5"])
        .error()
        .to_string();
    assert!(
        err.contains("past the end") && err.contains("next is 2"),
        "{err}"
    );
    let err = dir.run(&["queue", "tail", "nowhere"]).error().to_string();
    assert!(err.contains("`nowhere` is not a queue"), "{err}");
    dir.run(&["queue", "tail", "q", "--timeout", "1s"])
        .usage_error();
    dir.run(&["queue", "tail", "q", "--from", "yesterday"])
        .usage_error();
    dir.run(&["queue", "tail", "q", "--follow", "--timeout", "soon"])
        .usage_error();
    let err = dir
        .run(&["queue", "tail", "q", "--name", "../evil"])
        .error()
        .to_string();
    assert!(err.contains("invalid tailer name"), "{err}");
});

clitest!(
    follow_timeout_bounds_the_whole_run_backlog_included,
    |dir| {
        // A million records take far longer than 1 ms to print: --timeout cuts the backlog
        // (it used to be checked only while waiting, after the whole backlog).
        let input: String = (0..1_000_000).map(|i| format!("{i}\n")).collect();
        dir.run_with_stdin(
            &["queue", "append", "q", "--sync", "none"],
            input.as_bytes(),
        )
        .ok();
        let out = dir.run(&["queue", "tail", "q", "--follow", "--timeout", "1ms"]);
        assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
        assert!(out.stderr.contains("timed out after 1ms"), "{}", out.stderr);
        let printed = out.stdout.iter().filter(|&&b| b == b'\n').count();
        assert!(printed < 1_000_000, "the whole backlog was printed");
        assert!(
            out.stderr.contains(&format!("({printed} printed)")),
            "{}",
            out.stderr
        );
    }
);

clitest!(follow_ends_when_the_queue_is_removed, |dir| {
    // A queue whose directory is gone gets no more records: following it stops with an
    // error instead of waiting for ever.
    dir.append(&["a"]);
    let tail = dir
        .command(&["queue", "tail", "q", "--follow"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    dir.append(&["b"]);
    // The tailer parks once it has caught up: the notifier's waiter count (the low 10 bits
    // of the word at offset 64 of the metadata file) says so.
    let q = dir.path("q");
    let start = std::time::Instant::now();
    while {
        let meta = std::fs::read(q.join("queue.meta")).unwrap_or_default();
        meta.len() < 68 || u32::from_le_bytes(meta[64..68].try_into().unwrap()) & 0x3ff == 0
    } {
        assert!(
            start.elapsed() < TIMEOUT,
            "gave up waiting for the tailer to park"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_dir_all(&q).unwrap();
    let out = finish(tail, None);
    let line = out.error();
    assert!(
        line.contains("queue `q` was removed or replaced while waiting for record 2"),
        "{line}"
    );
    assert_eq!(out.stdout_str(), "a\nb\n");
});

clitest!(follow_times_out_with_status_3, |dir| {
    dir.append(&["a"]);
    let out = dir.run(&["queue", "tail", "q", "--follow", "--timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_one_error_line(&out.stderr);
    assert!(
        out.stderr
            .contains("timed out after 100ms waiting for record 1"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, b"a\n", "what was there is printed first");
});

clitest!(
    follow_wakes_up_for_a_record_appended_by_another_process,
    |dir| {
        dir.append(&["a", "b"]);
        // Waits for record 2 whatever the order in which the two processes start.
        let mut cmd = dir.command(&[
            "queue", "tail", "q", "--from", "2", "--follow", "--count", "2",
        ]);
        cmd.stdin(Stdio::null());
        let follower = cmd.spawn().unwrap();
        dir.append(&["c"]);
        dir.append(&["d"]);
        let out = finish(follower, None);
        out.ok();
        assert_eq!(out.stdout_str(), "c\nd\n");
    }
);

clitest!(named_tailers_resume_after_what_they_printed, |dir| {
    dir.append(&["1", "2", "3", "4", "5"]);
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--name", "w", "--count", "2"]),
        ["1", "2"]
    );
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--name", "w", "--count", "1"]),
        ["3"]
    );
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--name", "w"]),
        ["4", "5"]
    );
    assert!(dir
        .stdout_lines(&["queue", "tail", "q", "--name", "w"])
        .is_empty());
    dir.append(&["6"]);
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--name", "w"]),
        ["6"]
    );
    // --from moves it.
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--name", "w", "--from", "0", "--count", "1"]),
        ["1"]
    );
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--name", "w", "--count", "1"]),
        ["2"]
    );
    // Other names are independent.
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--name", "x", "--count", "1"]),
        ["1"]
    );
});

clitest!(a_reader_that_goes_away_stores_only_what_it_printed, |dir| {
    let lines: Vec<String> = (0..20_000).map(|i| format!("record {i}")).collect();
    dir.run_with_stdin(
        &["queue", "append", "q"],
        (lines.join("\n") + "\n").as_bytes(),
    )
    .ok();
    // `| head -c 100`: the reader closes the pipe early; tail exits 0 (broken pipe).
    let mut cmd = dir.command(&["queue", "tail", "q", "--name", "h"]);
    cmd.stdin(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let dog = Watchdog::new(child.id());
    let mut first = vec![0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let status = child.wait().unwrap();
    dog.finish();
    assert!(status.success(), "{status:?}");
    // The position is at most what reached the pipe, and nothing printed is lost.
    let rest = dir.stdout_lines(&["queue", "tail", "q", "--name", "h"]);
    assert!(!rest.is_empty());
    let resumed: usize = rest[0].strip_prefix("record ").unwrap().parse().unwrap();
    assert!(resumed <= 20_000 - rest.len());
    assert_eq!(rest.len(), 20_000 - resumed);
});

clitest!(stat_describes_the_queue, |dir| {
    dir.run(&[
        "queue",
        "append",
        "q",
        "--segment-size",
        "64KiB",
        "a",
        "b",
        "c",
    ])
    .ok();
    dir.run(&["queue", "tail", "q", "--name", "reader", "--count", "1"])
        .ok();
    let out = dir.run(&["queue", "stat", "q"]);
    out.ok();
    let text = out.stdout_str();
    assert!(text.contains("65536 bytes (64.0 KiB)"), "{text}");
    assert!(text.contains("3 (sequence numbers 0 to 2)"), "{text}");
    assert!(text.contains("reader: next 1, 2 behind"), "{text}");
    assert!(text.contains("appender:       none"), "{text}");
    let out = dir.run(&["queue", "stat", "q", "--json"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["next_seq"], 3);
    assert_eq!(v["first_seq"], 0);
    assert_eq!(v["segment_size"], 65536);
    assert_eq!(v["segments"][0]["sealed"], false);
    assert_eq!(v["tailers"][0]["name"], "reader");
    assert_eq!(v["tailers"][0]["next_seq"], 1);
    assert!(dir
        .run(&["queue", "stat", "nowhere"])
        .error()
        .contains("not a queue"));
});

clitest!(verify_names_each_damaged_record, |dir| {
    let lines: Vec<String> = (0..100).map(|i| format!("record number {i:03}")).collect();
    dir.run_with_stdin(
        &["queue", "append", "q"],
        (lines.join("\n") + "\n").as_bytes(),
    )
    .ok();
    let out = dir.run(&["queue", "verify", "q"]);
    out.ok();
    assert!(
        out.stdout_str().contains("100 valid records"),
        "{}",
        out.stdout_str()
    );
    let seg = dir.path("q").join("00000000000000000000.seg");
    let bytes = std::fs::read(&seg).unwrap();
    let at = |needle: &str| {
        bytes
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap() as u64
    };
    flip_byte(&seg, at("record number 050") + 5);
    flip_byte(&seg, at("record number 099") + 5);
    let out = dir.run(&["queue", "verify", "q"]);
    let err = out.error().to_string();
    assert!(err.contains("2 problems found"), "{err}");
    let text = out.stdout_str();
    let problems: Vec<&str> = text.lines().filter(|l| l.starts_with("corrupt")).collect();
    assert_eq!(problems.len(), 2, "{text}");
    for (line, seq) in problems.iter().zip([50, 99]) {
        assert!(
            line.contains(&format!("sequence {seq}, segment 0")),
            "{line}"
        );
        assert!(
            line.contains("offset ") && line.contains("CRC mismatch"),
            "{line}"
        );
    }
    // tail stops at the damage with an error naming it, after printing what comes before.
    let out = dir.run(&["queue", "tail", "q"]);
    let err = out.error().to_string();
    assert!(
        err.contains("sequence 50") && err.contains("CRC mismatch"),
        "{err}"
    );
    assert_eq!(out.stdout_str().lines().count(), 50);
    // The next appender cuts the damaged last record, and says so; the one in the middle
    // stays.
    let out = dir.run(&["queue", "append", "q", "new 99"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "warning: `q`: cut off the unfinished or damaged record at the end of the log: \
             corrupt record at sequence 99"
        ),
        "{}",
        out.stderr
    );
    let out = dir.run(&["queue", "verify", "q"]);
    assert!(out.error().contains("1 problem found"));
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q", "--from", "99"]),
        ["new 99"]
    );
});

clitest!(retain_removes_temporary_files_of_killed_creators, |dir| {
    dir.append(&["x"]);
    // As a process killed while creating the named tailer `w` leaves it, an hour ago.
    let stale = dir.path("q").join(".w.tailer.tmp-4242-17");
    let fresh = dir.path("q").join(".v.tailer.tmp-4242-18");
    for f in [&stale, &fresh] {
        std::fs::write(f, [0u8; 4096]).unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let out = dir.run(&["queue", "retain", "q", "--max-segments", "5"]);
    out.ok();
    let text = out.stdout_str();
    assert!(text.contains("removed .w.tailer.tmp-4242-17"), "{text}");
    assert!(!text.contains(".v.tailer"), "{text}");
    assert!(!stale.exists());
    // A recent one may belong to a creator still at work.
    assert!(fresh.exists());
});

clitest!(retain_deletes_old_segments_and_respects_tailers, |dir| {
    let lines: Vec<String> = (0..3000).map(|i| format!("{i:0100}")).collect();
    let input = lines.join("\n") + "\n";
    dir.run_with_stdin(
        &["queue", "append", "q", "--segment-size", "64KiB"],
        input.as_bytes(),
    )
    .ok();
    dir.run(&["queue", "tail", "q", "--name", "slow", "--count", "1"])
        .ok();
    let out = dir.run(&["queue", "retain", "q", "--max-segments", "2"]);
    out.ok();
    assert!(
        out.stdout_str().contains("tailer `slow`"),
        "{}",
        out.stdout_str()
    );
    assert!(!out.stdout_str().contains("deleted"));
    let out = dir.run(&["queue", "retain", "q", "--max-segments", "2", "--force"]);
    out.ok();
    let text = out.stdout_str();
    assert!(text.contains("deleted 00000000000000000000.seg"), "{text}");
    assert!(text.contains("2 segments left"), "{text}");
    let first = dir.stdout_lines(&["queue", "tail", "q", "--count", "1", "--seq"]);
    assert!(!first[0].starts_with("0\t"));
    let err = dir
        .run(&["queue", "tail", "q", "--name", "slow"])
        .error()
        .to_string();
    assert!(err.contains("no longer in the queue"), "{err}");
    dir.run(&["queue", "retain", "q"]).usage_error();
    // The tailer left behind still pins everything, unless forced.
    dir.run(&["queue", "retain", "q", "--max-age", "0s", "--force"])
        .ok();
    assert_eq!(
        std::fs::read_dir(dir.path("q"))
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg"))
            .count(),
        1
    );
});

/// Opens `queue.meta` (its own open file description) and takes locks on it with `take`,
/// without waiting; they are held until the file is dropped, as by a `retain` run or a
/// named tailer stopped (`SIGSTOP`) or hung while holding them.
fn hold_locks(
    meta: &std::path::Path,
    take: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> std::io::Result<bool>,
) -> std::fs::File {
    use std::os::fd::AsFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(meta)
        .unwrap();
    assert!(take(f.as_fd()).unwrap(), "the locks are free");
    f
}

clitest!(lock_timeouts_end_with_status_3_naming_queue_meta, |dir| {
    use mapipc::os::file::{flock_exclusive, flock_shared, ofd_lock};
    dir.append(&["a", "b", "c"]);
    let meta = dir.path("q").join("queue.meta");
    let status3 = |args: &[&str], want: &[&str]| {
        let out = dir.run(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", out.stderr);
        assert_one_error_line(&out.stderr);
        for w in want {
            assert!(
                out.stderr.contains(w),
                "{args:?}: no {w:?} in {}",
                out.stderr
            );
        }
        // The time waited, as measured: at least the 200 ms asked for.
        assert!(
            waited_in(&out.stderr) >= std::time::Duration::from_millis(200),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    };
    let retain = ["queue", "retain", "q", "--max-segments", "1"];
    let retain_200ms = [&retain[..], &["--lock-timeout", "200ms"]].concat();
    let named = [
        "queue",
        "tail",
        "q",
        "--name",
        "r",
        "--lock-timeout",
        "200ms",
    ];

    // A `retain` run stopped while it holds its locks: the retention lock (byte 1), then
    // the position lock (the exclusive `flock`).
    let held = hold_locks(&meta, |fd| {
        Ok(ofd_lock(fd, 1, 1, false)? && flock_exclusive(fd, false)?)
    });
    status3(
        &retain_200ms,
        &[
            "timed out after ",
            "retention lock on `q/queue.meta`",
            "another retention run",
            "--lock-timeout",
        ],
    );
    // A named tailer created (or moved) waits for the position lock.
    status3(
        &named,
        &["timed out after ", "position lock on `q/queue.meta`"],
    );
    assert!(!dir.path("q").join("r.tailer").exists());
    // Anonymous tailers take no lock.
    assert_eq!(dir.stdout_lines(&["queue", "tail", "q"]), ["a", "b", "c"]);
    drop(held);

    // A named tailer stopped in the middle of a seek (the shared `flock`).
    let held = hold_locks(&meta, |fd| flock_shared(fd, false));
    status3(
        &retain_200ms,
        &[
            "timed out after ",
            "retention lock, then the position lock on `q/queue.meta`",
            "named tailer",
        ],
    );
    drop(held);

    // Once the locks are free, the same commands succeed.
    dir.run(&retain_200ms).ok();
    assert_eq!(dir.stdout_lines(&named), ["a", "b", "c"]);
    // Usage: the flag needs a duration, and --name for tail (anonymous tailers take no lock).
    dir.run(&[&retain[..], &["--lock-timeout", "soon"]].concat())
        .usage_error();
    dir.run(&["queue", "tail", "q", "--lock-timeout", "1s"])
        .usage_error();
});

// `queue remove-damaged` waited a fixed 10 s for a `retain` run holding the queue's retention
// lock, with no flag to change it; now `--lock-timeout` sets the wait, and a timeout ends with
// status 3 and one `error:` line naming the queue's `queue.meta`, as the other lock timeouts.
clitest!(remove_damaged_lock_timeout_ends_with_status_3, |dir| {
    use mapipc::os::file::{flock_exclusive, ofd_lock};
    dir.append(&["a"]);
    let damaged = dir
        .path("q")
        .join("00000000000000000009.seg.damaged-1764000000000000000");
    std::fs::write(&damaged, [1u8; 100]).unwrap();
    let args = ["queue", "remove-damaged", "q", "--lock-timeout", "100ms"];
    // A `retain` run stopped while it holds its locks.
    let held = hold_locks(&dir.path("q").join("queue.meta"), |fd| {
        Ok(ofd_lock(fd, 1, 1, false)? && flock_exclusive(fd, false)?)
    });
    let out = dir.run(&args);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_one_error_line(&out.stderr);
    for w in [
        "error: timed out after ",
        "waiting for the retention lock on `q/queue.meta`",
        "another retention run",
        "nothing was deleted; --lock-timeout sets how long to wait",
    ] {
        assert!(out.stderr.contains(w), "no {w:?} in {}", out.stderr);
    }
    assert!(
        waited_in(&out.stderr) >= std::time::Duration::from_millis(100),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert!(damaged.exists(), "nothing deleted");
    drop(held);

    // Once the lock is free, the same command removes the file.
    let text = dir.run(&args).ok().stdout_str();
    assert!(text.ends_with("1 set-aside segment removed\n"), "{text}");
    assert!(!damaged.exists());
    dir.run(&["queue", "remove-damaged", "q", "--lock-timeout", "soon"])
        .usage_error();
});

/// The time a lock-timeout message says was waited (`timed out after 100.2ms waiting ...`,
/// as `Duration`'s `Debug` writes it).
fn waited_in(message: &str) -> std::time::Duration {
    let text = message
        .split("timed out after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no wait in {message}"));
    let number = text.trim_end_matches(|c: char| c.is_alphabetic());
    let unit_ns: u128 = match &text[number.len()..] {
        "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "µs" => 1_000,
        "ns" => 1,
        other => panic!("unit {other:?} in {text}"),
    };
    // Exactly, in integers: `Debug` writes at most 9 decimals.
    let (whole, decimals) = number.split_once('.').unwrap_or((number, ""));
    let parse = |digits: &str| digits.parse::<u128>().unwrap_or_else(|_| panic!("{text}"));
    let mut ns = parse(whole) * unit_ns;
    if !decimals.is_empty() {
        ns += parse(decimals) * unit_ns / 10u128.pow(decimals.len() as u32);
    }
    std::time::Duration::from_nanos(u64::try_from(ns).unwrap())
}

clitest!(one_appender_at_a_time_unless_waiting, |dir| {
    dir.append(&["0"]);
    let app = mapipc::queue::Appender::open(dir.path("q")).unwrap();
    let err = dir.run(&["queue", "append", "q", "x"]).error().to_string();
    assert!(err.contains("another appender"), "{err}");
    let mut cmd = dir.command(&["queue", "append", "q", "--wait", "waited"]);
    cmd.stdin(Stdio::null());
    let waiter = cmd.spawn().unwrap();
    thread::sleep(Duration::from_millis(50));
    drop(app);
    finish(waiter, None).ok();
    assert_eq!(dir.stdout_lines(&["queue", "tail", "q"]), ["0", "waited"]);
});

clitest!(queue_help_has_examples, |dir| {
    for sub in [
        "append",
        "tail",
        "stat",
        "verify",
        "retain",
        "remove-damaged",
    ] {
        let out = dir.run(&["queue", sub, "--help"]);
        out.ok();
        assert!(out.stdout_str().contains("Examples:"), "{sub}");
    }
});

clitest!(info_recognises_queue_files, |dir| {
    dir.append(&["a", "b"]);
    let seg = std::fs::read_dir(dir.path("q"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a segment file");
    let text = dir
        .stdout_lines(&["info", seg.to_str().unwrap()])
        .join("\n");
    assert!(text.contains("mapipc queue segment"), "{text}");
    assert!(text.contains("records:") && text.contains(" 2"), "{text}");
    // The directory itself.
    let q = dir.path("q");
    let text = dir.stdout_lines(&["info", q.to_str().unwrap()]).join("\n");
    assert!(text.contains("mapipc queue directory"), "{text}");
    assert!(text.contains("records:") && text.contains(" 2"), "{text}");
    // Any other directory has no format.
    let text = dir.stdout_lines(&["info", "."]).join("\n");
    assert!(text.contains("format:        none"), "{text}");
});

// After a machine crash (the appender never closed, in another boot) that left the last
// segment's header unwritten, `queue append` repairs it (the library's recovery) and says so
// on stderr, one `warning:` line naming the file; the records are all there and appending
// goes on. A clean open says nothing.
clitest!(append_after_a_crash_reports_what_recovery_repaired, |dir| {
    use std::os::unix::fs::FileExt;
    dir.append(&["a", "b", "c"]);
    let write_at = |name: &str, offset: u64, bytes: &[u8]| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path(name))
            .unwrap();
        f.write_all_at(bytes, offset).unwrap();
    };
    // queue.meta: appender state "open" (offset 68), another boot's id (offset 96).
    write_at("q/queue.meta", 68, &1u32.to_ne_bytes());
    write_at("q/queue.meta", 96, &[0x5a; 16]);
    write_at("q/00000000000000000000.seg", 0, &[0; 64]);
    let out = dir.run(&["queue", "append", "q", "d"]);
    assert!(out.status.success(), "{}", out.stderr);
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].starts_with("warning: `q`: rewrote the header of ")
            && warnings[0].contains("00000000000000000000.seg")
            && warnings[0].ends_with("starts at record 0"),
        "{}",
        out.stderr
    );
    assert_eq!(
        dir.stdout_lines(&["queue", "tail", "q"]),
        ["a", "b", "c", "d"]
    );
    let out = dir.run(&["queue", "append", "q", "e"]);
    out.ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
});
