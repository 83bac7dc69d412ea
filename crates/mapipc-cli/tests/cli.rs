//! Integration tests of the `mapipc` binary: every test runs the built executable as a real
//! process, in a fresh temporary directory, under a watchdog that kills it after
//! [`TIMEOUT`] and fails the test.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

mod common;

use common::*;

// ---------------------------------------------------------------------------------------
// cat

clitest!(cat_whole_file, |dir| {
    let data = pattern(10_000);
    dir.write("f", &data);
    let out = dir.run(&["cat", "f"]);
    out.ok();
    assert_eq!(out.stdout, data);
});

clitest!(cat_offsets_aligned_unaligned_and_len, |dir| {
    let data = pattern(3 * 4096 + 17);
    dir.write("f", &data);
    for (offset, len) in [
        ("4096", None),
        ("1", None),
        ("4097", Some("100")),
        ("1000", Some("1")),
        ("4k", Some("4KiB")),
        ("12300", None),
    ] {
        let mut args = vec!["cat", "f", "--offset", offset];
        if let Some(len) = len {
            args.extend(["--len", len]);
        }
        let out = dir.run(&args);
        out.ok();
        let start: usize = match offset {
            "4k" => 4096,
            o => o.parse().unwrap(),
        };
        let end = match len {
            Some("4KiB") => start + 4096,
            Some(l) => start + l.parse::<usize>().unwrap(),
            None => data.len(),
        };
        assert_eq!(out.stdout, &data[start..end], "{args:?}");
    }
});

clitest!(cat_streams_a_multi_chunk_file, |dir| {
    // More than three 1 MiB chunks, not a multiple of anything.
    let data = pattern(3 * (1 << 20) + 12_345);
    dir.write("big", &data);
    let out = dir.run(&["cat", "big", "--offset", "3"]);
    out.ok();
    assert_eq!(out.stdout.len(), data.len() - 3);
    assert!(out.stdout == data[3..]);
});

clitest!(cat_empty_file_and_empty_ranges_print_nothing, |dir| {
    dir.write("empty", b"");
    dir.write("f", b"hello");
    for args in [
        &["cat", "empty"][..],
        &["cat", "empty", "--offset", "0"],
        &["cat", "f", "--len", "0"],
        &["cat", "f", "--offset", "5"],
        &["cat", "f", "--offset", "2", "--len", "0"],
    ] {
        let out = dir.run(args);
        out.ok();
        assert!(out.stdout.is_empty(), "{args:?}");
    }
});

clitest!(cat_missing_file, |dir| {
    let out = dir.run(&["cat", "nope.bin"]);
    let line = out.error();
    assert!(line.contains("`nope.bin`"), "{line}");
    assert!(line.contains("No such file"), "{line}");
    assert!(out.stdout.is_empty());
});

clitest!(cat_directory, |dir| {
    std::fs::create_dir(dir.path("sub")).unwrap();
    let line = dir.run(&["cat", "sub"]).error().to_string();
    assert!(
        line.contains("`sub`") && line.contains("directory"),
        "{line}"
    );
});

// Opening a FIFO for reading blocks until a writer appears: cat must refuse it without
// opening it (the watchdog turns a hang into a failure).
clitest!(cat_and_write_refuse_a_fifo_without_blocking, |dir| {
    let fifo = dir.path("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c_path` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let line = dir.run(&["cat", "fifo"]).error().to_string();
    assert!(
        line.contains("`fifo` is a FIFO, not a regular file"),
        "{line}"
    );
    let line = dir
        .run(&["write", "fifo", "--offset", "0", "x"])
        .error()
        .to_string();
    assert!(
        line.contains("`fifo` is a FIFO, not a regular file"),
        "{line}"
    );
    let out = dir.run(&["info", "fifo"]);
    out.ok();
    assert!(
        out.stdout_str().contains("not mappable"),
        "{}",
        out.stdout_str()
    );
});

clitest!(cat_offset_past_end, |dir| {
    dir.write("f", b"hello");
    let line = dir.run(&["cat", "f", "--offset", "6"]).error().to_string();
    assert!(line.contains("offset 6") && line.contains("`f`"), "{line}");
    assert!(line.contains("5 bytes"), "{line}");
    dir.write("empty", b"");
    let line = dir
        .run(&["cat", "empty", "--offset", "1"])
        .error()
        .to_string();
    assert!(
        line.contains("offset 1") && line.contains("0 bytes"),
        "{line}"
    );
});

clitest!(cat_len_past_end, |dir| {
    dir.write("f", b"hello");
    let out = dir.run(&["cat", "f", "--offset", "2", "--len", "4"]);
    let line = out.error();
    assert!(line.contains("2..6") && line.contains("5 bytes"), "{line}");
    assert!(
        out.stdout.is_empty(),
        "nothing is printed before the range is checked"
    );
});

clitest!(cat_into_a_closed_pipe_exits_0_silently, |dir| {
    dir.write("big", &pattern(8 << 20));
    let mut child = dir
        .command(&["cat", "big"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id());
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(first[..], pattern(10)[..]);
    // Like `| head -c 10`: the reader goes away while cat still has megabytes to write.
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    dog.finish();
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(stderr, "");
});

// The file shrinks while cat streams it. Deterministic: cat maps the whole 16 MiB file and
// copies 1 MiB chunks to stdout; stdout is a pipe (64 KiB) that the test reads only 4 KiB of
// before truncating the file to 0. At that point cat has copied its first chunk at most and
// is blocked writing it, so its next chunk touches pages past the new end of file: SIGBUS,
// which the library turns into an error.
clitest!(
    cat_of_a_file_truncated_during_the_read_fails_cleanly,
    |dir| {
        const SIZE: usize = 16 << 20;
        let data = pattern(SIZE);
        let path = dir.write("shrinking", &data);
        let mut child = dir
            .command(&["cat", "shrinking"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let dog = Watchdog::new(child.id());
        let mut stdout = child.stdout.take().unwrap();
        let mut got = vec![0u8; 4096];
        stdout.read_exact(&mut got).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        stdout.read_to_end(&mut got).unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        dog.finish();
        assert_eq!(status.signal(), None, "killed by a signal: {status:?}");
        assert_eq!(status.code(), Some(1), "{status:?}: {stderr}");
        assert_one_error_line(&stderr);
        assert!(stderr.contains("truncated"), "{stderr}");
        assert!(stderr.contains("shrinking"), "{stderr}");
        assert!(
            got.len() < SIZE,
            "cat printed the whole file ({} bytes)",
            got.len()
        );
        assert!(
            got[..] == data[..got.len()],
            "what was printed is the file's prefix"
        );
    }
);

// ---------------------------------------------------------------------------------------
// write

clitest!(write_create_makes_a_0600_file_of_that_size, |dir| {
    dir.run(&[
        "write", "new.bin", "--offset", "1000", "--create", "8KiB", "hello",
    ])
    .ok();
    let path = dir.path("new.bin");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 8192);
    assert_eq!(&bytes[1000..1005], b"hello");
    assert!(bytes[..1000].iter().chain(&bytes[1005..]).all(|b| *b == 0));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // And cat reads it back through a mapping.
    let out = dir.run(&["cat", "new.bin", "--offset", "1000", "--len", "5"]);
    out.ok();
    assert_eq!(out.stdout, b"hello");
});

clitest!(write_create_extends_but_never_shrinks, |dir| {
    dir.write("f", &pattern(100));
    dir.run(&["write", "f", "--offset", "5000", "--create", "6000", "tail"])
        .ok();
    let bytes = std::fs::read(dir.path("f")).unwrap();
    assert_eq!(bytes.len(), 6000);
    assert_eq!(&bytes[..100], &pattern(100)[..], "existing bytes kept");
    assert_eq!(&bytes[5000..5004], b"tail");
    dir.run(&["write", "f", "--offset", "0", "--create", "10", "head"])
        .ok();
    let bytes = std::fs::read(dir.path("f")).unwrap();
    assert_eq!(bytes.len(), 6000, "a smaller --create does not shrink");
    assert_eq!(&bytes[..4], b"head");
    assert_eq!(&bytes[5000..5004], b"tail");
});

clitest!(write_into_existing_file_at_unaligned_offset, |dir| {
    let mut expected = pattern(10_000);
    dir.write("f", &expected);
    dir.run(&["write", "f", "--offset", "4095", "across a page"])
        .ok();
    expected[4095..4095 + 13].copy_from_slice(b"across a page");
    assert_eq!(std::fs::read(dir.path("f")).unwrap(), expected);
});

clitest!(write_from_stdin, |dir| {
    let input = pattern(70_000);
    dir.run_with_stdin(
        &["write", "f", "--offset", "3", "--create", "1MiB", "--stdin"],
        &input,
    )
    .ok();
    let bytes = std::fs::read(dir.path("f")).unwrap();
    assert_eq!(bytes.len(), 1 << 20);
    assert_eq!(&bytes[3..3 + input.len()], &input[..]);
});

clitest!(
    write_past_end_without_create_leaves_the_file_unchanged,
    |dir| {
        let original = pattern(12);
        dir.write("f", &original);
        let out = dir.run(&["write", "f", "--offset", "10", "hello"]);
        let line = out.error();
        assert!(line.contains("`f`"), "names the file: {line}");
        assert!(line.contains("12 bytes"), "gives its size: {line}");
        assert!(line.contains("10..15"), "gives the range: {line}");
        assert!(line.contains("--create"), "says how to fix it: {line}");
        assert_eq!(std::fs::read(dir.path("f")).unwrap(), original);
    }
);

clitest!(write_past_a_too_small_create_changes_nothing, |dir| {
    let line = dir
        .run(&["write", "f", "--offset", "4096", "--create", "4096", "x"])
        .error()
        .to_string();
    assert!(
        line.contains("4096..4097") && line.contains("--create"),
        "{line}"
    );
    assert!(!dir.path("f").exists(), "the file was not created");
});

clitest!(write_missing_file_without_create, |dir| {
    let line = dir
        .run(&["write", "missing.bin", "--offset", "0", "x"])
        .error()
        .to_string();
    assert!(line.contains("`missing.bin`"), "{line}");
    assert!(
        line.contains("does not exist") && line.contains("--create"),
        "{line}"
    );
    assert!(!dir.path("missing.bin").exists());
});

clitest!(write_to_a_directory, |dir| {
    std::fs::create_dir(dir.path("sub")).unwrap();
    let line = dir
        .run(&["write", "sub", "--offset", "0", "x"])
        .error()
        .to_string();
    assert!(
        line.contains("`sub`") && line.contains("directory"),
        "{line}"
    );
});

clitest!(write_empty_data_is_a_checked_no_op, |dir| {
    let original = pattern(10);
    dir.write("f", &original);
    dir.run(&["write", "f", "--offset", "10", ""]).ok();
    dir.run_with_stdin(&["write", "f", "--offset", "0", "--stdin"], b"")
        .ok();
    assert_eq!(std::fs::read(dir.path("f")).unwrap(), original);
    // Still checked: past the end is an error, a missing file too.
    dir.run(&["write", "f", "--offset", "11", ""]).error();
    dir.run(&["write", "nope", "--offset", "0", ""]).error();
    // --create still creates.
    dir.run(&["write", "new", "--offset", "0", "--create", "4k", ""])
        .ok();
    assert_eq!(std::fs::metadata(dir.path("new")).unwrap().len(), 4096);
});

// ---------------------------------------------------------------------------------------
// info

clitest!(info_on_a_file, |dir| {
    let path = dir.write("f", &pattern(10_000));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = dir.run(&["info", "f"]);
    out.ok();
    let text = out.stdout_str();
    for expected in [
        "file:",
        "a regular file",
        "10000 bytes",
        "0640 (rw-r-----)",
        "page size:",
        "3 pages",
        "not page-aligned",
        "1808 of its 4096 bytes",
        "no mapipc header (plain file)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
});

clitest!(info_on_an_empty_file, |dir| {
    dir.write("empty", b"");
    let out = dir.run(&["info", "empty"]);
    out.ok();
    let text = out.stdout_str();
    assert!(text.contains("0 bytes"), "{text}");
    assert!(
        text.contains("not mappable") && text.contains("empty"),
        "{text}"
    );
});

clitest!(info_json, |dir| {
    dir.write("f", &pattern(8192));
    let out = dir.run(&["info", "f", "--json"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["size"], 8192);
    assert_eq!(v["type"], "regular file");
    assert_eq!(v["mapping"]["mappable"], true);
    assert_eq!(
        v["mapping"]["pages"],
        8192 / v["page_size"].as_u64().unwrap()
    );
    assert_eq!(v["format"]["id"], "plain");
    dir.write("empty", b"");
    let out = dir.run(&["info", "empty", "--json"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["mapping"]["mappable"], false);
    assert!(v["mapping"]["reason"].as_str().unwrap().contains("empty"));
});

// A channel file whose header fails validation: `info` still describes what it can read
// (the region header, and what is wrong with the channel), and then fails like every other
// command on a damaged file: one `error:` line, exit status 1. A healthy channel succeeds.
clitest!(info_on_a_damaged_channel_describes_it_and_fails, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    let out = dir.run(&["info", c]);
    assert!(out.ok().stdout_str().contains("capacity"));
    let mut bytes = std::fs::read(c).unwrap();
    let magic = bytes
        .windows(8)
        .position(|w| w == b"MAPIPCCH")
        .expect("the channel header");
    bytes[magic + 24..magic + 28].copy_from_slice(&[1, 2, 3, 4]); // the ring capacity
    std::fs::write(c, &bytes).unwrap();
    for args in [&["info", c][..], &["info", c, "--json"][..]] {
        let out = dir.run(args);
        let line = out.error();
        assert!(line.contains("capacity"), "{line}");
        let text = out.stdout_str();
        assert!(
            text.replace('_', " ").contains("channel error") && text.contains("region"),
            "the description is still printed:\n{text}"
        );
    }
});

// Intact files are not damaged: a channel or region reached through a symbolic link (its
// header is read from the target) and a queue segment copied out of its queue (described;
// its queue cannot be summarised) both succeed.
clitest!(
    info_on_intact_files_through_links_and_copies_succeeds,
    |dir| {
        dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
            .ok();
        dir.run(&["region", "create", "./r", "--size", "4KiB"]).ok();
        std::os::unix::fs::symlink(dir.path("c"), dir.path("c-link")).unwrap();
        std::os::unix::fs::symlink(dir.path("r"), dir.path("r-link")).unwrap();
        let out = dir.run(&["info", "./c-link"]);
        let text = out.ok().stdout_str();
        assert!(text.contains("capacity") && text.contains("link"), "{text}");
        dir.run(&["info", "./r-link"]).ok();
        dir.run(&["queue", "append", "./q", "a", "b"]).ok();
        std::fs::create_dir(dir.path("copy")).unwrap();
        let seg = std::fs::read_dir(dir.path("q"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "seg"))
            .expect("a segment");
        let copy = dir.path("copy").join(seg.file_name().unwrap());
        std::fs::copy(&seg, &copy).unwrap();
        dir.run(&["info", seg.to_str().unwrap()]).ok();
        dir.run(&["info", copy.to_str().unwrap()]).ok();
        std::os::unix::fs::symlink(&seg, dir.path("seg-link")).unwrap();
        let out = dir.run(&["info", "./seg-link"]);
        assert!(out.ok().stdout_str().contains("records"));
    }
);

// A queue segment whose header fails validation, inside its queue: `info` on the segment
// and on the queue directory describes the queue (with the problem) and fails.
clitest!(info_on_a_queue_with_a_damaged_segment_fails, |dir| {
    dir.run(&["queue", "append", "./q", "a", "b"]).ok();
    dir.run(&["info", "./q"]).ok();
    let seg = std::fs::read_dir(dir.path("q"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a segment");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8..12].copy_from_slice(&[0xff; 4]); // its format version
    std::fs::write(&seg, &bytes).unwrap();
    for target in [seg.to_str().unwrap(), "./q"] {
        let out = dir.run(&["info", target]);
        let line = out.error();
        assert!(line.contains("segment"), "{line}");
        assert!(
            out.stdout_str().contains("queue problems"),
            "{}",
            out.stdout_str()
        );
    }
    // Likewise a named tailer's position file.
    dir.run(&["queue", "append", "./q2", "a"]).ok();
    dir.run(&["queue", "tail", "./q2", "--name", "t", "--count", "1"])
        .ok();
    let tailer = dir.path("q2").join("t.tailer");
    let mut bytes = std::fs::read(&tailer).unwrap();
    bytes[8..12].copy_from_slice(&[0xff; 4]);
    std::fs::write(&tailer, &bytes).unwrap();
    let line = dir.run(&["info", "./q2"]).error().to_string();
    assert!(line.contains("tailer `t`"), "{line}");
});

// Positions no honest end writes (a broadcast channel's oldest record past the producer's
// position): `stat` and `info` describe the channel, flag it, and fail with one error line.
clitest!(
    info_on_a_queue_with_a_fifo_for_a_segment_does_not_hang,
    |dir| {
        // `info DIR` checked whether each damaged queue file was merely unreadable by opening
        // it for reading: on a FIFO that open waits for a writer, for ever.
        dir.run(&["queue", "append", "./q", "--segment-size", "64KiB", "a"])
            .ok();
        let seg = dir.path("q/00000000000000000000.seg");
        std::fs::remove_file(&seg).unwrap();
        let c_path = std::ffi::CString::new(seg.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c_path` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let out = dir.run(&["info", "./q"]);
        let line = out.error();
        assert!(
            line.contains("segment 0") && line.contains("is a FIFO, not a regular file"),
            "{line}"
        );
        assert!(
            out.stdout_str().contains("queue problems"),
            "{}",
            out.stdout_str()
        );
    }
);

clitest!(stat_and_info_fail_on_inconsistent_positions, |dir| {
    dir.run(&[
        "chan",
        "create",
        "./b",
        "--capacity",
        "4KiB",
        "--kind",
        "broadcast",
    ])
    .ok();
    dir.run(&["stat", "./b"]).ok();
    let mut bytes = std::fs::read(dir.path("b")).unwrap();
    let hdr = bytes
        .windows(8)
        .position(|w| w == b"MAPIPCCH")
        .expect("the channel header");
    bytes[hdr + 328..hdr + 336].copy_from_slice(&16u64.to_le_bytes()); // the oldest record
    std::fs::write(dir.path("b"), &bytes).unwrap();
    for args in [
        &["stat", "./b"][..],
        &["stat", "./b", "--json"],
        &["info", "./b"],
    ] {
        let out = dir.run(args);
        let line = out.error();
        assert!(line.contains("inconsistent"), "{args:?}: {line}");
        assert!(!out.stdout.is_empty(), "{args:?}: described first");
    }
});

clitest!(info_missing_file, |dir| {
    let line = dir.run(&["info", "nope"]).error().to_string();
    assert!(
        line.contains("`nope`") && line.contains("No such file"),
        "{line}"
    );
});

// ---------------------------------------------------------------------------------------
// demo

clitest!(demo_runs_the_scenarios_with_regions_and_a_channel, |dir| {
    let out = dir.run(&["demo"]);
    out.ok();
    let text = out.stdout_str();
    for expected in [
        // 1: the parent waits on the notifier and reads while the child is alive.
        "joined the peer table as peer",
        "bumped the generation to 1",
        "parent: waited on the notifier, not in waitpid",
        "read \"hello from the forked child\" (child alive: yes)",
        "released the child and reaped it: exit status 0",
        // 2: a separate `mapipc region write` process wakes this one.
        "mapipc region write ",
        "the write and notify ended its wait: generation 1, read \"hello from another process, \
         through a named region\"",
        // 3: a channel.
        "got [\"first\", \"second\", \"third\"], in order",
        "exited: exit status: 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The temporary directory it announces as removed (last: first come those of earlier
    // demos that were killed, if any) is gone.
    let removed = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("removed "))
        .expect("the demo says what it removed");
    assert!(!Path::new(removed).exists(), "{removed} still exists");
});

// ---------------------------------------------------------------------------------------
// sizes, usage, global flags

clitest!(bad_sizes_are_usage_errors_naming_the_problem, |dir| {
    dir.write("f", b"hello");
    for (args, expected) in [
        (&["cat", "f", "--offset", "-1"][..], "negative"),
        (&["cat", "f", "--len", "-4KiB"], "negative"),
        (&["cat", "f", "--offset", "abc"], "not a size"),
        (&["cat", "f", "--len", "12 parsecs"], "not a size"),
        (&["cat", "f", "--offset", ""], "empty"),
        (&["cat", "f", "--offset", "100EiB"], "too large"),
        (
            &["write", "f", "--offset", "0", "--create", "0", "x"],
            "at least 1 byte",
        ),
        (&["write", "f", "--offset", "x1", "x"], "not a size"),
    ] {
        let out = dir.run(args);
        let stderr = out.usage_error();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(dir.path("f")).unwrap(), b"hello");
});

clitest!(usage_errors_exit_2, |dir| {
    // No subcommand: clap prints the help on stderr, status 2.
    let out = dir.run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.contains("Usage: mapipc <COMMAND>"),
        "{}",
        out.stderr
    );
    dir.usage_error_for(&["frobnicate"]);
    dir.usage_error_for(&["cat"]);
    dir.usage_error_for(&["write", "f", "x"]); // no --offset
    dir.usage_error_for(&["write", "f", "--offset", "0"]); // neither DATA nor --stdin
    dir.usage_error_for(&["write", "f", "--offset", "0", "--stdin", "x"]); // both
});

impl TestDir {
    fn usage_error_for(&self, args: &[&str]) {
        self.run(args).usage_error();
    }
}

clitest!(help_and_version, |dir| {
    let out = dir.run(&["--version"]);
    out.ok();
    assert_eq!(
        out.stdout_str(),
        format!("mapipc {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = dir.run(&["--help"]);
    out.ok();
    let text = out.stdout_str();
    for cmd in ["cat", "write", "info", "demo", "region", "Examples:"] {
        assert!(text.contains(cmd), "{text}");
    }
    for cmd in ["cat", "write", "info", "demo"] {
        let out = dir.run(&[cmd, "--help"]);
        out.ok();
        assert!(out.stdout_str().contains("Example"), "{cmd} --help");
    }
    for sub in ["create", "info", "rm", "write", "read"] {
        let out = dir.run(&["region", sub, "--help"]);
        out.ok();
        let text = out.stdout_str();
        assert!(text.contains("Examples:"), "region {sub} --help: {text}");
        assert!(text.contains("/dev/shm"), "region {sub} --help: {text}");
    }
});

// ---------------------------------------------------------------------------------------
// chan create / send / recv / stat

impl Out {
    /// Asserts exit status 3 (timed out, or nothing to do with --nonblock) with one
    /// `error:` line.
    fn status3(&self) -> &str {
        assert_eq!(
            self.status.code(),
            Some(3),
            "expected exit status 3, got {:?}\nstderr: {}",
            self.status,
            self.stderr
        );
        assert_one_error_line(&self.stderr);
        self.stderr.trim_end()
    }
}

impl TestDir {
    /// Starts `mapipc ARGS` in the background with piped stdout.
    fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        cmd.spawn().expect("spawn mapipc")
    }

    /// `mapipc stat PATH --json`, parsed.
    fn stat_json(&self, path: &str) -> serde_json::Value {
        let out = self.run(&["stat", path, "--json"]);
        serde_json::from_slice(&out.ok().stdout).expect("stat --json prints JSON")
    }

    /// As [`spawn`](Self::spawn), with a pipe to its stdin.
    fn spawn_with_stdin(&self, args: &[&str]) -> Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        cmd.spawn().expect("spawn mapipc")
    }
}

clitest!(chan_send_then_recv_in_order, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "64KiB"]).ok();
    dir.run(&["send", c, "one", "two"]).ok();
    dir.run_with_stdin(&["send", c], b"three\nfour\n").ok();
    let out = dir.run(&["recv", c, "--count", "3"]);
    assert_eq!(out.ok().stdout_str(), "one\ntwo\nthree\n");
    // The sender is gone: recv prints what is left and exits 0.
    let out = dir.run(&["recv", c]);
    assert_eq!(out.ok().stdout_str(), "four\n");
});

clitest!(chan_create_refuses_existing_unless_forced, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    let line = dir
        .run(&["chan", "create", c, "--capacity", "4KiB"])
        .error()
        .to_string();
    assert!(
        line.contains(&format!("cannot create channel `{c}`: it already exists")),
        "{line}"
    );
    dir.run(&["chan", "create", c, "--capacity", "8KiB", "--force"])
        .ok();
    let out = dir.run(&["stat", c, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.ok().stdout).unwrap();
    assert_eq!(v["capacity"], 8192);
    assert_eq!(v["kind"], "spsc");
});

clitest!(
    chan_create_force_keeps_the_old_channel_when_the_new_one_fails,
    |dir| {
        // `--force` used to remove PATH first, then check the options and create: a usage
        // error, a refused option or a failed allocation left no channel at all, and the
        // messages waiting in the old one were lost.
        dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
            .ok();
        dir.run(&["send", "./c", "precious"]).ok();
        let force = |capacity: &str, extra: &[&str]| {
            let mut args = vec!["chan", "create", "./c", "--capacity", capacity, "--force"];
            args.extend_from_slice(extra);
            dir.run(&args)
        };
        force("4KiB", &["--policy", "lossy"]).usage_error();
        let line = force("4KiB", &["--kind", "mpsc", "--max-producers", "0"])
            .error()
            .to_string();
        assert!(line.contains("0 producers"), "{line}");
        let line = force("2TiB", &[]).error().to_string();
        assert!(
            line.contains("cannot replace `./c` (left as it was)")
                && line.contains("not supported"),
            "{line}"
        );
        assert_eq!(
            dir.stat_json("./c")["sent"],
            1,
            "the old channel is still there"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path(""))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "c")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(
            dir.run(&["recv", "./c", "--nonblock"]).ok().stdout_str(),
            "precious\n"
        );
        // A directory at PATH is not replaced either.
        std::fs::create_dir(dir.path("d")).unwrap();
        let line = dir
            .run(&["chan", "create", "./d", "--capacity", "4KiB", "--force"])
            .error()
            .to_string();
        assert!(line.contains("cannot replace `./d`"), "{line}");
        assert!(dir.path("d").is_dir());
    }
);

clitest!(
    chan_recv_from_newest_is_refused_where_it_cannot_apply,
    |dir| {
        // An spsc or mpsc receiver continues from the last consumed message; `--from newest`
        // used to be ignored there, printing the old messages it was asked to skip.
        for kind in ["spsc", "mpsc"] {
            dir.run(&[
                "chan",
                "create",
                "./c",
                "--capacity",
                "4KiB",
                "--force",
                "--kind",
                kind,
            ])
            .ok();
            dir.run(&["send", "./c", "old"]).ok();
            let out = dir.run(&["recv", "./c", "--from", "newest", "--nonblock"]);
            assert_eq!(out.status.code(), Some(2), "{kind}: {}", out.stderr);
            assert_one_error_line(&out.stderr);
            assert!(
                out.stderr
                    .contains("--from newest applies to broadcast channels only"),
                "{}",
                out.stderr
            );
            assert!(out.stdout.is_empty(), "{kind}: {}", out.stdout_str());
            // Nothing was consumed; the default (oldest) is what these channels do.
            let out = dir.run(&["recv", "./c", "--from", "oldest", "--nonblock"]);
            assert_eq!(out.ok().stdout_str(), "old\n", "{kind}");
        }
    }
);

clitest!(chan_recv_waits_for_a_late_sender, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    let rx = dir.spawn(&["recv", c, "--count", "2", "--timeout", "60s"]);
    // The receiver waits for a sender; this one comes later.
    dir.run(&["send", c, "late", "sender"]).ok();
    let out = finish(rx, None);
    assert_eq!(out.ok().stdout_str(), "late\nsender\n");
});

clitest!(chan_recv_follow_ends_when_the_file_is_truncated, |dir| {
    // `recv --follow` outlives its senders, waiting for the next; once the file is
    // truncated nobody can attach again, and it says so instead of waiting for ever.
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "64KiB"]).ok();
    let rx = dir.spawn(&["recv", c, "--follow"]);
    dir.run(&["send", c, "one"]).ok();
    // Until `one` was received, the channel shows a message waiting.
    await_cond("the receiver took the message", || {
        dir.run(&["stat", c, "--json"])
            .ok()
            .stdout_str()
            .contains("\"received\":1")
    });
    let f = std::fs::OpenOptions::new().write(true).open(c).unwrap();
    f.set_len(f.metadata().unwrap().len() - 4096).unwrap();
    let out = finish(rx, None);
    assert_eq!(
        out.error(),
        format!("error: channel `{c}` was truncated under us: its data is gone")
    );
    assert_eq!(out.stdout_str(), "one\n");
});

/// On this thread only: a mount namespace of its own, with a tmpfs of `size` (`256k`) on
/// `dir`. The processes it starts inherit the namespace; it goes away with them and the
/// thread. `false` without the privilege (root, `CAP_SYS_ADMIN`).
fn private_tmpfs_for_this_thread(dir: &Path, size: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let mount_point = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    let options = std::ffi::CString::new(format!("size={size}")).unwrap();
    // SAFETY: plain syscalls with valid NUL-terminated strings (or NULL where allowed);
    // `unshare` moves only this thread (its fs context is unshared with it) into the new
    // namespace, where nothing mounted reaches the parent's (`MS_PRIVATE`).
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            eprintln!("unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error());
            return false;
        }
        let null = std::ptr::null();
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        assert_eq!(
            libc::mount(null, c"/".as_ptr(), null, flags, std::ptr::null()),
            0
        );
        let tmpfs = c"tmpfs".as_ptr();
        let data = options.as_ptr().cast();
        if libc::mount(tmpfs, mount_point.as_ptr(), tmpfs, 0, data) != 0 {
            eprintln!("mount -t tmpfs: {}", std::io::Error::last_os_error());
            return false;
        }
    }
    true
}

clitest!(
    chan_a_page_the_kernel_cannot_supply_is_not_called_a_truncation,
    |dir| {
        // A hole in the channel's ring (punched by someone, or left by a sparse copy) on a full
        // tmpfs: reading or writing it faults, and `recv` and `send` say why in one `error:`
        // line naming the file and the page, status 1. They said "truncated" before, and
        // `recv` consumed the messages before the hole without printing them.
        thread::scope(|s| {
            s.spawn(|| {
                if !private_tmpfs_for_this_thread(dir.dir.path(), "256k") {
                    eprintln!("skipped: no private tmpfs (needs root); nothing was checked");
                    return;
                }
                let c = dir.path("c");
                let c = c.to_str().unwrap();
                dir.run(&["chan", "create", c, "--capacity", "64KiB"]).ok();
                let lines: String = (0..150).map(|i| format!("{i:0200}\n")).collect();
                dir.run_with_stdin(&["send", c], lines.as_bytes()).ok();
                // The ring ends the file: its pages from 16 KiB on go.
                let len = std::fs::metadata(c).unwrap().len();
                let hole = len - 48 * 1024;
                let file = std::fs::OpenOptions::new().write(true).open(c).unwrap();
                let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
                // SAFETY: a plain syscall on an fd we own.
                let r = unsafe {
                    libc::fallocate(file.as_raw_fd(), mode, hole as i64, (len - hole) as i64)
                };
                assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
                let mut filler = std::fs::File::create(dir.path("filler")).unwrap();
                let full = loop {
                    if let Err(e) = filler.write_all(&[0x5a; 4096]) {
                        break e;
                    }
                };
                assert_eq!(full.raw_os_error(), Some(libc::ENOSPC), "{full}");

                let out = dir.run(&["recv", c]);
                assert_eq!(
                    out.error(),
                    format!(
                        "error: the kernel could not supply the page at offset {hole} of channel \
                     `{c}` (no space left on its file system to allocate it); the file was not \
                     truncated (it is {len} bytes), but the channel's data there is lost"
                    )
                );
                // The receiver met the hole attaching (counting the records it continues from):
                // it consumed nothing, rather than every message before the hole unprinted, as
                // damaged.
                assert_eq!(out.stdout_str(), "");
                let stat = dir.run(&["stat", c, "--json"]).ok().stdout_str();
                assert!(stat.contains("\"received\":0"), "{stat}");

                let out = dir.run(&["send", c, "more"]);
                let line = out.error();
                assert!(
                    line.starts_with("error: the kernel could not supply the page at offset ")
                        && line.contains(&format!("of channel `{c}` (no space left"))
                        && line.contains("the file was not truncated"),
                    "{line}"
                );
            });
        });
    }
);

clitest!(
    chan_recv_follow_ends_when_the_file_is_removed_or_replaced,
    |dir| {
        // Waiting for the next sender is pointless once the name leads elsewhere: a new sender
        // would open another file (or none).
        for replace in [false, true] {
            dir.run(&["chan", "create", "./c", "--capacity", "4KiB", "--force"])
                .ok();
            let rx = dir.spawn(&["recv", "./c", "--follow"]);
            dir.run(&["send", "./c", "one"]).ok();
            await_cond("the receiver took the message", || {
                dir.run(&["stat", "./c", "--json"])
                    .ok()
                    .stdout_str()
                    .contains("\"received\":1")
            });
            std::fs::remove_file(dir.path("c")).unwrap();
            if replace {
                dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
                    .ok();
            }
            let out = finish(rx, None);
            let line = out.error();
            assert!(
                line.contains(
                    "channel `./c` was removed or replaced while waiting for a new sender"
                ),
                "{line}"
            );
            assert_eq!(out.stdout_str(), "one\n");
        }
    }
);

clitest!(
    chan_recv_waiting_for_a_first_sender_ends_when_the_file_is_removed,
    |dir| {
        // No sender ever attached, and the name is gone: none can come. With a sender
        // attached, the channel lives on without its name (below: the message arrives).
        for with_sender in [false, true] {
            dir.run(&["chan", "create", "./c", "--capacity", "4KiB", "--force"])
                .ok();
            let rx = dir.spawn(&["recv", "./c", "--count", "1"]);
            let attached = |end: &str| dir.stat_json("./c")[end]["attached"] == true;
            await_cond("the receiver attached", || attached("consumer"));
            let tx = with_sender.then(|| {
                let tx = dir.spawn_with_stdin(&["send", "./c"]);
                await_cond("the sender attached", || attached("producer"));
                tx
            });
            std::fs::remove_file(dir.path("c")).unwrap();
            if let Some(mut tx) = tx {
                // Well after the receiver's next look at the file's name.
                std::thread::sleep(std::time::Duration::from_millis(300));
                tx.stdin.take().unwrap().write_all(b"still here\n").unwrap();
                finish(tx, None).ok();
                assert_eq!(finish(rx, None).ok().stdout_str(), "still here\n");
            } else {
                let out = finish(rx, None);
                let line = out.error();
                assert!(
                    line.contains(
                        "channel `./c` was removed or replaced while waiting for a sender"
                    ),
                    "{line}"
                );
            }
        }
    }
);

clitest!(
    chan_send_waiting_for_a_receiver_ends_when_the_file_is_removed,
    |dir| {
        // The ring is full and no receiver ever came; once the name is gone none can.
        dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
            .ok();
        let msg = "x".repeat(1000);
        let tx = dir.spawn(&["send", "./c", &msg, &msg, &msg, &msg, &msg]);
        await_cond("the sender filled the ring", || {
            let v = dir.stat_json("./c");
            v["sent"].as_u64().unwrap() >= 1 && v["producer"]["parked"] == true
        });
        std::fs::remove_file(dir.path("c")).unwrap();
        let out = finish(tx, None);
        let line = out.error();
        assert!(
            line.contains("was removed or replaced while waiting for a receiver"),
            "{line}"
        );
    }
);

clitest!(
    chan_recv_ends_when_the_reader_of_its_output_goes_away,
    |dir| {
        // `mapipc recv c --follow | head -1`: once head has its line and exits, recv must end
        // (status 0, as on any closed pipe) while it waits, not only when the next message
        // comes, which may be never: here the sender stays attached and sends nothing more.
        dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
            .ok();
        for (i, extra) in [&["--follow"][..], &["--timeout", "1h"]].iter().enumerate() {
            let mut tx = dir.spawn_with_stdin(&["send", "./c"]);
            let mut to_tx = tx.stdin.take().unwrap();
            to_tx.write_all(b"one\n").unwrap();
            // Sent, and the sender still attached (a receiver that finds the last sender
            // gone would print what is left and exit at once).
            await_cond("the message was sent", || {
                dir.stat_json("./c")["sent"] == i as u64 + 1
            });
            let mut args = vec!["recv", "./c"];
            args.extend_from_slice(extra);
            let mut rx = dir.spawn(&args);
            let mut first = String::new();
            {
                use std::io::BufRead;
                let mut lines = std::io::BufReader::new(rx.stdout.take().unwrap());
                lines.read_line(&mut first).unwrap();
            } // the reader goes away
            assert_eq!(first, "one\n");
            let out = finish(rx, None);
            out.ok();
            drop(to_tx);
            finish(tx, None).ok();
        }
    }
);

clitest!(
    chan_recv_waiting_ends_when_its_position_is_overwritten,
    |dir| {
        // Garbage over the consumer's published position: every sender is refused as corrupted,
        // and a waiting recv, which did not read its own position back, waited for ever for
        // one. (The library's wait reports it now; the CLI checks the positions too.)
        for follow in [false, true] {
            dir.run(&["chan", "create", "./c", "--capacity", "4KiB", "--force"])
                .ok();
            if follow {
                dir.run(&["send", "./c", "one"]).ok();
            }
            let mut args = vec!["recv", "./c"];
            if follow {
                args.push("--follow");
            }
            let rx = dir.spawn(&args);
            await_cond("the receiver attached", || {
                let v = dir.stat_json("./c");
                v["consumer"]["attached"] == true && v["received"] == u64::from(follow)
            });
            let bytes = std::fs::read(dir.path("c")).unwrap();
            let hdr = bytes
                .windows(8)
                .position(|w| w == b"MAPIPCCH")
                .expect("the channel header");
            // Only the 8 bytes of the consumer's published position (`head`), in place.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.path("c"))
                .unwrap();
            std::os::unix::fs::FileExt::write_all_at(
                &file,
                &999_999u64.to_le_bytes(),
                (hdr + 128) as u64,
            )
            .unwrap();
            let line = dir.run(&["send", "./c", "x"]).error().to_string();
            assert!(line.contains("corrupted"), "{line}");
            let out = finish(rx, None);
            let line = out.error();
            assert!(line.contains("corrupted"), "{line}");
        }
    }
);

clitest!(chan_recv_consumes_only_what_it_wrote_out, |dir| {
    // A receiver whose output fails (here a full disk) leaves the message in the channel:
    // the next receiver gets everything.
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    dir.run(&["send", "./c", "a", "b", "c"]).ok();
    for args in [&["recv", "./c", "--nonblock"][..], &["recv", "./c"]] {
        let mut cmd = dir.command(args);
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create("/dev/full").unwrap());
        let out = finish(cmd.spawn().unwrap(), None);
        let line = out.error();
        assert!(
            line.contains(
                "message not delivered; it stays in the channel: cannot write to standard \
                 output: No space left on device"
            ),
            "{args:?}: {line}"
        );
    }
    let out = dir.run(&["recv", "./c", "--nonblock"]);
    assert_eq!(out.ok().stdout_str(), "a\nb\nc\n");
});

clitest!(a_failing_stdout_is_named_whatever_the_command, |dir| {
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    dir.run(&["region", "create", "./r", "--size", "64"]).ok();
    for args in [
        &["stat", "./c"][..],
        &["stat", "./c", "--json"],
        &["region", "info", "./r"],
        &["info", "./c"],
    ] {
        let mut cmd = dir.command(args);
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create("/dev/full").unwrap());
        let out = finish(cmd.spawn().unwrap(), None);
        assert_eq!(
            out.error(),
            "error: cannot write to standard output: No space left on device (os error 28)",
            "{args:?}"
        );
    }
});

clitest!(an_action_done_but_not_reported_says_it_was_done, |dir| {
    // With stdout failing, the creation still happened: the error says so, so that nobody
    // retries into "already exists" wondering.
    for (args, said) in [
        (
            &["region", "create", "./r", "--size", "64"][..],
            "region `./r` was created; saying so failed",
        ),
        (
            &["chan", "create", "./c", "--capacity", "4KiB"],
            "channel `./c` was created; saying so failed",
        ),
        (
            &["region", "rm", "./r"],
            "region `./r` was removed; saying so failed",
        ),
    ] {
        let mut cmd = dir.command(args);
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create("/dev/full").unwrap());
        let out = finish(cmd.spawn().unwrap(), None);
        let line = out.error();
        assert!(line.contains(said), "{args:?}: {line}");
    }
    assert!(!dir.path("r").exists() && dir.path("c").exists());
});

clitest!(chan_sender_fills_then_waits_for_a_receiver, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    // 400 messages of 100 bytes do not fit a 4 KiB ring: the sender must wait.
    let lines: String = (0..400).map(|i| format!("{i:0100}\n")).collect();
    let mut cmd = dir.command(&["send", c]);
    cmd.stdin(Stdio::piped());
    let mut tx = cmd.spawn().unwrap();
    let mut stdin = tx.stdin.take().unwrap();
    let feeder = thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let out = dir.run(&["recv", c, "--count", "400", "--timeout", "60s"]);
    let got = out.ok().stdout_str();
    assert_eq!(got.lines().count(), 400);
    for (i, l) in got.lines().enumerate() {
        assert_eq!(l, format!("{i:0100}"));
    }
    feeder.join().unwrap().unwrap();
    let out = finish(tx, None);
    out.ok();
});

clitest!(chan_nonblock_and_timeout_exit_3, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    assert!(dir
        .run(&["recv", c, "--nonblock"])
        .status3()
        .contains("empty"));
    assert!(dir
        .run(&["recv", c, "--timeout", "50ms"])
        .status3()
        .contains("timed out"));
    let big = "x".repeat(2000);
    dir.run(&["send", c, &big, &big]).ok();
    assert!(dir
        .run(&["send", c, "--nonblock", &big])
        .status3()
        .contains("full"));
    assert!(dir
        .run(&["send", c, "--timeout", "50ms", &big])
        .status3()
        .contains("timed out"));
});

clitest!(
    chan_recv_count_n_short_of_n_exits_3_unless_the_sender_is_gone,
    |dir| {
        // `recv --count N` that runs out of messages before N while a sender is attached fell
        // short: status 3 with --nonblock (it exited 0 after printing fewer than N) as with
        // --timeout. With the sender gone and everything it sent printed, fewer than N is the
        // end of the stream: status 0.
        dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
            .ok();
        let mut tx = dir.spawn_with_stdin(&["send", "./c"]);
        let mut to_tx = tx.stdin.take().unwrap();
        let mut sent = 0u64;
        let mut send_two = |a: &str, b: &str| {
            to_tx.write_all(format!("{a}\n{b}\n").as_bytes()).unwrap();
            sent += 2;
            // Sent, and the sender still attached.
            await_cond("the messages were sent", || {
                dir.stat_json("./c")["sent"] == sent
            });
        };
        send_two("a", "b");
        let out = dir.run(&["recv", "./c", "--nonblock", "--count", "5"]);
        let line = out.status3();
        assert!(
            line.contains("channel `./c` is empty (--nonblock): 2 of 5 messages received"),
            "{line}"
        );
        assert_eq!(out.stdout_str(), "a\nb\n");
        send_two("c", "d");
        let out = dir.run(&["recv", "./c", "--nonblock", "--count", "2"]);
        assert_eq!(out.ok().stdout_str(), "c\nd\n");
        let out = dir.run(&["recv", "./c", "--nonblock", "--count", "1"]);
        let line = out.status3();
        assert!(line.contains("0 of 1 messages received"), "{line}");
        assert!(out.stdout.is_empty());
        // Without --count, --nonblock prints what is there: 0 if that was something.
        send_two("e", "f");
        let out = dir.run(&["recv", "./c", "--nonblock"]);
        assert_eq!(out.ok().stdout_str(), "e\nf\n");
        send_two("g", "h");
        let out = dir.run(&["recv", "./c", "--timeout", "50ms", "--count", "5"]);
        let line = out.status3();
        assert!(
            line.contains("timed out") && line.contains("(2 of 5 received)"),
            "{line}"
        );
        assert_eq!(out.stdout_str(), "g\nh\n");
        // The sender leaves with two messages in the ring: both are printed, then 0.
        send_two("i", "j");
        drop(to_tx);
        finish(tx, None).ok();
        let out = dir.run(&["recv", "./c", "--nonblock", "--count", "5"]);
        assert_eq!(out.ok().stdout_str(), "i\nj\n");
        for extra in [&["--nonblock"][..], &["--timeout", "50ms"]] {
            let mut args = vec!["recv", "./c", "--count", "5"];
            args.extend_from_slice(extra);
            let out = dir.run(&args);
            assert!(out.ok().stdout.is_empty(), "{args:?}");
        }
    }
);

clitest!(chan_timeouts_beyond_the_clock_mean_no_deadline, |dir| {
    // A --timeout too large to add to the clock used to panic (overflow): it waits without a
    // deadline instead.
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    let huge = "18446744073709551615s";
    dir.run(&["send", "./c", "--timeout", huge, "x"]).ok();
    let out = dir.run(&["recv", "./c", "--timeout", huge, "--count", "1"]);
    assert_eq!(out.ok().stdout_str(), "x\n");
});

clitest!(chan_too_large_and_empty_messages_are_errors, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    let big = "x".repeat(2041);
    let line = dir.run(&["send", c, &big]).error().to_string();
    assert!(
        line.contains("2041 bytes") && line.contains("2040"),
        "{line}"
    );
    let line = dir
        .run_with_stdin(&["send", c], b"a\n\nb\n")
        .error()
        .to_string();
    assert!(line.contains("line 2"), "{line}");
    // The message before the bad one was sent.
    assert_eq!(
        dir.run(&["recv", c, "--count", "1"]).ok().stdout_str(),
        "a\n"
    );
});

clitest!(chan_a_bad_argument_is_named_by_its_position, |dir| {
    // `argument is 0 bytes` did not say which of several arguments was meant.
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    let line = dir.run(&["send", "./c", "a", "", "b"]).error().to_string();
    assert!(
        line.contains("argument 2 is 0 bytes") && line.contains("(1 sent before it)"),
        "{line}"
    );
    let text = dir.run(&["stat", "./c"]).ok().stdout_str();
    assert!(text.contains("(1 message waiting)"), "{text}");
});

clitest!(a_file_size_limit_is_an_error_not_a_signal, |dir| {
    // Past `ulimit -f` the kernel sends SIGXFSZ, which kills by default: mapipc ignores it,
    // so the sizing fails with EFBIG, reported, and the refused --create leaves nothing.
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -f 8 && exec \"$0\" write lim --offset 0 --create 1MiB x",
        env!("CARGO_BIN_EXE_mapipc"),
    ])
    .current_dir(dir.path(""))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let out = finish(cmd.spawn().unwrap(), None);
    let line = out.error();
    assert!(line.contains("File too large"), "{line}");
    assert!(!dir.path("lim").exists());
});

clitest!(endless_standard_input_is_refused_not_buffered, |dir| {
    // Every command that reads standard input stops after what could be used (the largest
    // message, the room left in the file or region, the largest record) and names the
    // problem; reading all of /dev/zero first would never end.
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    let line = dir
        .run_with_stdin_from(&["send", "./c"], "/dev/zero")
        .error()
        .to_string();
    assert!(
        line.contains("line 1 of standard input is more than 2040 bytes"),
        "{line}"
    );
    // A frame whose length prefix is far beyond the largest message: refused from its
    // prefix, without reading (or allocating) its body.
    let line = dir
        .run_with_stdin(&["send", "./c", "--binary"], &0x7fff_ffffu32.to_le_bytes())
        .error()
        .to_string();
    assert!(
        line.contains("frame 1 of standard input is 2147483647 bytes"),
        "{line}"
    );
    assert_eq!(
        dir.run(&["stat", "./c", "--json"])
            .ok()
            .stdout_str()
            .matches("\"sent\":0")
            .count(),
        1,
        "nothing sent"
    );

    let line = dir
        .run_with_stdin_from(
            &[
                "write", "./f", "--create", "4KiB", "--offset", "0", "--stdin",
            ],
            "/dev/zero",
        )
        .error()
        .to_string();
    assert!(line.contains("more than the 4096 bytes"), "{line}");
    assert!(
        !dir.path("f").exists(),
        "a refused --create creates nothing"
    );

    dir.run(&["region", "create", "./r", "--size", "64"]).ok();
    dir.run(&["region", "write", "./r", "--offset", "0", "kept"])
        .ok();
    let line = dir
        .run_with_stdin_from(
            &["region", "write", "./r", "--offset", "60", "--stdin"],
            "/dev/zero",
        )
        .error()
        .to_string();
    assert!(
        line.contains("more than the 4 bytes of user data"),
        "{line}"
    );
    let out = dir.run(&["region", "read", "./r", "--len", "4"]);
    assert_eq!(out.ok().stdout, b"kept");

    let line = dir
        .run_with_stdin_from(
            &["queue", "append", "./q", "--segment-size", "64KiB"],
            "/dev/zero",
        )
        .error()
        .to_string();
    assert!(
        line.contains("line 1 of standard input is more than") && line.contains("largest record"),
        "{line}"
    );
});

clitest!(chan_binary_frames_round_trip, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "64KiB"]).ok();
    let msgs: Vec<Vec<u8>> = vec![vec![0, 10, 13, 255], b"line\nbreak".to_vec(), vec![7; 1000]];
    let mut input = Vec::new();
    for m in &msgs {
        input.extend_from_slice(&(m.len() as u32).to_le_bytes());
        input.extend_from_slice(m);
    }
    dir.run_with_stdin(&["send", c, "--binary"], &input).ok();
    let out = dir.run(&["recv", c, "--binary", "--count", "3"]);
    assert_eq!(out.ok().stdout, input);
    // Input that ends inside a length prefix is a cut frame, not the end of the input.
    let line = dir
        .run_with_stdin(&["send", c, "--binary"], &[2, 0, 0, 0, b'h', b'i', 1])
        .error()
        .to_string();
    assert!(
        line.contains("frame 2 of standard input is cut short: 1 of the 4 bytes"),
        "{line}"
    );
    assert_eq!(
        dir.run(&["recv", c, "--nonblock"]).ok().stdout_str(),
        "hi\n"
    );
    // Input that ends inside a frame's body says how much of it came (it said "failed to
    // fill whole buffer"), and sends nothing of it.
    let line = dir
        .run_with_stdin(&["send", c, "--binary"], &[5, 0, 0, 0, b'a', b'b'])
        .error()
        .to_string();
    assert!(
        line.ends_with("frame 1 of standard input is cut short: 2 of its 5 bytes"),
        "{line}"
    );
    assert_eq!(dir.stat_json(c)["sent"], 4);
});

clitest!(chan_commands_on_foreign_and_missing_files, |dir| {
    dir.write("plain", &pattern(20_000));
    for args in [
        vec!["send", "./plain", "x"],
        vec!["recv", "./plain", "--nonblock"],
        vec!["stat", "./plain"],
        vec!["send", "./missing", "x"],
        vec!["recv", "./missing"],
        vec!["stat", "./missing"],
        vec!["stat", "bad/../name"],
    ] {
        let out = dir.run(&args);
        out.error();
    }
    // A region file whose channel header is garbage: refused, no crash.
    let p = dir.path("c");
    dir.run(&["chan", "create", p.to_str().unwrap(), "--capacity", "4KiB"])
        .ok();
    let mut bytes = std::fs::read(&p).unwrap();
    for b in &mut bytes[4096..4096 + 64] {
        *b = 0x5a;
    }
    std::fs::write(&p, &bytes).unwrap();
    let line = dir.run(&["recv", "./c", "--nonblock"]).error().to_string();
    assert!(line.contains("not a mapipc channel"), "{line}");
});

clitest!(chan_info_recognises_channel_files, |dir| {
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    dir.run(&["send", "./c", "queued"]).ok();
    let text = dir.run(&["info", "c"]).ok().stdout_str();
    assert!(text.contains("mapipc shared region"), "{text}");
    assert!(text.contains("channel:") && text.contains("spsc"), "{text}");
    let v: serde_json::Value =
        serde_json::from_slice(&dir.run(&["info", "c", "--json"]).ok().stdout).unwrap();
    assert_eq!(v["format"]["id"], "region");
    assert_eq!(v["header"]["sent"], 1);
});

// ---------------------------------------------------------------------------------------
// region create / info / rm / write / read

impl TestDir {
    /// `mapipc region info PATH --json`, parsed.
    fn region_json(&self, path: &str) -> serde_json::Value {
        let out = self.run(&["region", "info", path, "--json"]);
        serde_json::from_slice(&out.ok().stdout).expect("valid JSON")
    }
}

/// Polls `cond` until it holds; panics after [`TIMEOUT`] (a hang guard, not a time check).
fn await_cond(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `v` (from `region info --json`) lists a peer of process `pid` with this liveness.
fn has_peer(v: &serde_json::Value, pid: u32, alive: bool) -> bool {
    v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["pid"] == pid && p["alive"] == alive)
}

clitest!(region_create_info_rm, |dir| {
    let out = dir.run(&["region", "create", "./r", "--size", "4KiB"]);
    assert!(
        out.ok()
            .stdout_str()
            .contains("created region `./r`: 4096 bytes"),
        "{}",
        out.stdout_str()
    );
    let meta = std::fs::metadata(dir.path("r")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 8192, "a 4 KiB header, then the user data");
    // It exists now: create fails, and leaves it alone.
    let line = dir
        .run(&["region", "create", "./r", "--size", "8KiB"])
        .error()
        .to_string();
    assert!(
        line.contains("`./r`") && line.contains("already exists"),
        "{line}"
    );
    assert_eq!(std::fs::metadata(dir.path("r")).unwrap().len(), 8192);

    let text = dir.run(&["region", "info", "./r"]).ok().stdout_str();
    for expected in [
        "region      ./r",
        "version     1",
        "user data   4096 bytes (4.0 KiB) at offset 4096",
        "content     raw bytes",
        "generation  0",
        "notifier    epoch 0, 0 waiters parked",
        "peer slots  32",
        "peers       0 (0 alive, 0 dead)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let v = dir.region_json("./r");
    assert_eq!(v["data_len"], 4096);
    assert_eq!(v["total_size"], 8192);
    assert_eq!(v["generation"], 0);
    assert_eq!(v["max_peers"], 32);
    assert_eq!(v["peers"].as_array().unwrap().len(), 0);
    assert!(v["creator_pid"].as_u64().unwrap() > 0);

    let out = dir.run(&["region", "rm", "./r"]);
    assert!(out.ok().stdout_str().contains("removed region `./r`"));
    assert!(!dir.path("r").exists());
    let line = dir.run(&["region", "rm", "./r"]).error().to_string();
    assert!(line.contains("`./r` does not exist"), "{line}");
    // A zero-size region (only for its notifier and peers) is allowed.
    dir.run(&["region", "create", "./z", "--size", "0"]).ok();
    assert_eq!(dir.region_json("./z")["data_len"], 0);
});

clitest!(region_write_then_read, |dir| {
    dir.run(&["region", "create", "./r", "--size", "4KiB"]).ok();
    dir.run(&["region", "write", "./r", "--offset", "10", "hello"])
        .ok();
    let out = dir.run(&["region", "read", "./r", "--offset", "10", "--len", "5"]);
    assert_eq!(out.ok().stdout, b"hello");
    assert_eq!(
        dir.region_json("./r")["generation"],
        1,
        "each write bumps it"
    );

    // The whole user data by default; binary-safe; --stdin.
    let input = pattern(1000);
    dir.run_with_stdin(
        &["region", "write", "./r", "--offset", "4000", "--stdin"],
        &input[..96],
    )
    .ok();
    let out = dir.run(&["region", "read", "./r"]);
    let all = &out.ok().stdout;
    assert_eq!(all.len(), 4096);
    assert_eq!(&all[10..15], b"hello");
    assert_eq!(&all[4000..], &input[..96]);
    assert!(all[..10].iter().all(|b| *b == 0));
    assert_eq!(dir.region_json("./r")["generation"], 2);

    // Past the end of the user data: nothing written, generation unchanged.
    let line = dir
        .run(&["region", "write", "./r", "--offset", "4094", "abc"])
        .error()
        .to_string();
    assert!(
        line.contains("4094..4097") && line.contains("`./r`") && line.contains("4096 bytes"),
        "{line}"
    );
    assert_eq!(dir.region_json("./r")["generation"], 2);
    let out = dir.run(&["region", "read", "./r", "--offset", "4094"]);
    assert_eq!(out.ok().stdout, &input[94..96]);
    let line = dir
        .run(&["region", "read", "./r", "--offset", "4090", "--len", "7"])
        .error()
        .to_string();
    assert!(line.contains("4090..4097"), "{line}");
    dir.run(&["region", "read", "./r", "--offset", "5000"])
        .error();
});

clitest!(
    region_read_wait_blocks_until_a_write_from_another_process,
    |dir| {
        dir.run(&["region", "create", "./r", "--size", "4KiB"]).ok();
        let reader = dir.spawn(&[
            "region",
            "read",
            "./r",
            "--offset",
            "0",
            "--len",
            "11",
            "--wait",
            "--timeout",
            "60s",
        ]);
        let reader_pid = reader.id();
        // Until the reader is asleep on the notifier and listed as a live peer.
        await_cond("the reader to park", || {
            let v = dir.region_json("./r");
            v["notifier"]["waiters"].as_u64().unwrap() >= 1 && has_peer(&v, reader_pid, true)
        });
        let text = dir.run(&["region", "info", "./r"]).ok().stdout_str();
        assert!(text.contains("1 waiter parked"), "{text}");
        assert!(
            text.contains(&format!("pid {reader_pid:<8} alive")),
            "{text}"
        );
        // A write from another process wakes it up.
        dir.run(&["region", "write", "./r", "--offset", "0", "from writer"])
            .ok();
        let out = finish(reader, None);
        assert_eq!(out.ok().stdout, b"from writer");
        // The reader left: its peer slot is free again.
        let v = dir.region_json("./r");
        assert_eq!(v["peers"].as_array().unwrap().len(), 0, "{v}");
        assert_eq!(v["notifier"]["waiters"], 0);
        assert_eq!(v["generation"], 1);
    }
);

clitest!(region_read_wait_times_out_with_status_3, |dir| {
    dir.run(&["region", "create", "./r", "--size", "64"]).ok();
    // A write before the reader starts is not what it waits for.
    dir.run(&["region", "write", "./r", "--offset", "0", "old"])
        .ok();
    let out = dir.run(&["region", "read", "./r", "--wait", "--timeout", "50ms"]);
    let line = out.status3();
    assert!(
        line.contains("timed out after 50ms") && line.contains("`./r`"),
        "{line}"
    );
    assert!(line.contains("generation still 1"), "{line}");
    assert!(out.stdout.is_empty());
    // --timeout only makes sense with --wait.
    dir.usage_error_for(&["region", "read", "./r", "--timeout", "1s"]);
});

clitest!(region_read_wait_ends_when_the_file_is_truncated, |dir| {
    // The cut spares the header (generation and notifier): only the file's size tells.
    dir.run(&["region", "create", "./r", "--size", "64KiB"])
        .ok();
    let reader = dir.spawn(&["region", "read", "./r", "--wait"]);
    await_cond("the reader to wait", || {
        dir.run(&["region", "info", "./r"])
            .ok()
            .stdout_str()
            .contains("1 waiter parked")
    });
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path("r"))
        .unwrap();
    f.set_len(8192).unwrap();
    let out = finish(reader, None);
    let line = out.error();
    assert!(
        line.contains("region `./r` was truncated while waiting for a write"),
        "{line}"
    );
});

clitest!(region_info_shows_a_killed_peer_as_dead, |dir| {
    dir.run(&["region", "create", "./r", "--size", "64"]).ok();
    // The timeout only ends it if the test fails before killing it.
    let mut reader = dir.spawn(&["region", "read", "./r", "--wait", "--timeout", "120s"]);
    let pid = reader.id();
    let dog = Watchdog::new(pid);
    await_cond("the reader to join", || {
        has_peer(&dir.region_json("./r"), pid, true)
    });
    reader.kill().unwrap();
    let status = reader.wait().unwrap();
    dog.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The kernel dropped its slot lock: dead, without its help.
    let v = dir.region_json("./r");
    assert!(has_peer(&v, pid, false), "{v}");
    let text = dir.run(&["region", "info", "./r"]).ok().stdout_str();
    assert!(text.contains("(0 alive, 1 dead)"), "{text}");
    assert!(text.contains(&format!("pid {pid:<8} DEAD")), "{text}");
});

clitest!(region_bad_input_gives_one_error_line, |dir| {
    // Garbage in a region file.
    let garbage = pattern(10_000);
    dir.write("g", &garbage);
    for args in [
        &["region", "info", "./g"][..],
        &["region", "read", "./g", "--len", "1"],
        &["region", "write", "./g", "--offset", "0", "x"],
    ] {
        let line = dir.run(args).error().to_string();
        assert!(
            line.contains("`./g` is not a mapipc region"),
            "{args:?}: {line}"
        );
    }
    let line = dir.run(&["region", "rm", "./g"]).error().to_string();
    assert!(
        line.contains("not removing `./g`") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(std::fs::read(dir.path("g")).unwrap(), garbage, "untouched");
    dir.run(&["region", "rm", "./g", "--force"]).ok();
    assert!(!dir.path("g").exists());
    // A short file and a region whose header was damaged.
    dir.write("short", b"MAPIPCRG");
    let line = dir.run(&["region", "info", "./short"]).error().to_string();
    assert!(line.contains("too small"), "{line}");
    dir.run(&["region", "create", "./r", "--size", "64"]).ok();
    let mut bytes = std::fs::read(dir.path("r")).unwrap();
    bytes[8] = 99; // the format version
    std::fs::write(dir.path("r"), &bytes).unwrap();
    let line = dir.run(&["region", "info", "./r"]).error().to_string();
    assert!(line.contains("format version 99"), "{line}");

    // Names: a bare name may not contain `..`; with a '/' it is a path.
    for bad in ["a..b", "..", "."] {
        let line = dir.run(&["region", "info", bad]).error().to_string();
        assert!(line.contains(&format!("bad region name `{bad}`")), "{line}");
    }
    let line = dir.run(&["region", "info", "../x"]).error().to_string();
    assert!(line.contains("region `../x` does not exist"), "{line}");
    // Missing regions, bare and path.
    let line = dir
        .run(&["region", "read", "mapipc-cli-test-no-such-region"])
        .error()
        .to_string();
    assert!(
        line.contains("`/dev/shm/mapipc-cli-test-no-such-region` does not exist"),
        "{line}"
    );
    dir.run(&["region", "write", "./missing", "--offset", "0", "x"])
        .error();
    assert!(!dir.path("missing").exists(), "write never creates");
    dir.run(&["region", "create", "./nodir/r", "--size", "1"])
        .error();
    // Usage errors.
    dir.usage_error_for(&["region", "create", "./r2"]); // no --size
    dir.usage_error_for(&["region", "write", "./r2", "x"]); // no --offset
    dir.usage_error_for(&["region", "create", "./r2", "--size", "-1"]);
});

clitest!(region_write_refuses_a_channel, |dir| {
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    let before = std::fs::read(dir.path("c")).unwrap();
    let line = dir
        .run(&["region", "write", "./c", "--offset", "0", "x"])
        .error()
        .to_string();
    assert!(
        line.contains("holds a channel") && line.contains("mapipc send"),
        "{line}"
    );
    assert_eq!(std::fs::read(dir.path("c")).unwrap(), before);
    // But info shows what it is.
    let text = dir.run(&["region", "info", "./c"]).ok().stdout_str();
    assert!(text.contains("content     a channel"), "{text}");
});

/// Removes a /dev/shm file when dropped, so a failing test leaves nothing behind.
struct ShmGuard(PathBuf);

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

clitest!(region_bare_name_lives_in_dev_shm, |dir| {
    let name = format!("mapipc-cli-test-{}", std::process::id());
    let file = Path::new("/dev/shm").join(&name);
    let _guard = ShmGuard(file.clone());
    let out = dir.run(&["region", "create", &name, "--size", "128"]);
    assert!(
        out.ok()
            .stdout_str()
            .contains(&format!("created region `/dev/shm/{name}`")),
        "{}",
        out.stdout_str()
    );
    assert!(file.exists());
    dir.run(&["region", "write", &name, "--offset", "0", "shm"])
        .ok();
    let out = dir.run(&["region", "read", &name, "--len", "3"]);
    assert_eq!(out.ok().stdout, b"shm");
    let v = dir.region_json(&name);
    assert_eq!(v["path"], file.display().to_string());
    assert_eq!(v["generation"], 1);
    dir.run(&["region", "rm", &name]).ok();
    assert!(!file.exists());
});

clitest!(bare_names_point_at_the_file_meant, |dir| {
    // A bare NAME is /dev/shm/NAME; with nothing there but a `NAME` in the current
    // directory, commands that open say how to name that file.
    let name = format!("mapipc-cli-test-hint-{}", std::process::id());
    dir.write(&name, b"not in /dev/shm");
    for args in [
        &["region", "info", &name][..],
        &["region", "read", &name],
        &["region", "rm", &name],
        &["stat", &name],
        &["recv", &name, "--nonblock"],
        &["send", &name, "x"],
    ] {
        let line = dir.run(args).error().to_string();
        assert!(
            line.contains(&format!("`/dev/shm/{name}` does not exist"))
                && line.contains(&format!("write `./{name}`")),
            "{args:?}: {line}"
        );
    }
    assert!(dir.path(&name).exists(), "nothing removed");
    // Without such a file, the plain message.
    std::fs::remove_file(dir.path(&name)).unwrap();
    let line = dir.run(&["stat", &name]).error().to_string();
    assert!(!line.contains("./"), "{line}");

    // The other way round: `info` takes a path, and a channel created by a bare name is in
    // /dev/shm.
    let file = Path::new("/dev/shm").join(&name);
    let _guard = ShmGuard(file.clone());
    dir.run(&["chan", "create", &name, "--capacity", "4KiB"])
        .ok();
    let line = dir.run(&["info", &name]).error().to_string();
    assert!(
        line.contains(&format!("`mapipc info {}`", file.display())),
        "{line}"
    );
    dir.run(&["info", file.to_str().unwrap()]).ok();
});

// ---------------------------------------------------------------------------------------
// channel kinds: mpsc and broadcast from the shell

clitest!(chan_mpsc_several_senders_one_receiver, |dir| {
    let c = dir.path("m");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--kind", "mpsc", "--capacity", "16KiB"])
        .ok();
    let senders: Vec<Child> = (0..3)
        .map(|k| {
            let msgs: Vec<String> = (0..200).map(|i| format!("{k}-{i}")).collect();
            let mut args = vec!["send", c];
            args.extend(msgs.iter().map(String::as_str));
            dir.spawn(&args)
        })
        .collect();
    let out = dir.run(&["recv", c, "--count", "600", "--follow", "--timeout", "60s"]);
    let text = out.ok().stdout_str();
    for s in senders {
        finish(s, None).ok();
    }
    // Every message once, each sender's in order.
    let mut next = [0usize; 3];
    for line in text.lines() {
        let (k, i) = line.split_once('-').unwrap();
        let (k, i): (usize, usize) = (k.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[k], "sender {k} out of order");
        next[k] += 1;
    }
    assert_eq!(next, [200; 3]);
    let v: serde_json::Value =
        serde_json::from_slice(&dir.run(&["stat", c, "--json"]).ok().stdout).unwrap();
    assert_eq!(v["kind"], "mpsc");
    assert_eq!(v["sent"], 600);
    assert_eq!(v["aborted"], 0);
});

clitest!(chan_broadcast_every_subscriber_gets_every_message, |dir| {
    let c = dir.path("b");
    let c = c.to_str().unwrap();
    dir.run(&[
        "chan",
        "create",
        c,
        "--kind",
        "broadcast",
        "--capacity",
        "4KiB",
    ])
    .ok();
    let subs: Vec<Child> = (0..2)
        .map(|_| dir.spawn(&["recv", c, "--count", "500", "--timeout", "60s"]))
        .collect();
    // Wait until both subscribed, so the lossless producer waits for them.
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&dir.run(&["stat", c, "--json"]).ok().stdout).unwrap();
        if v["subscribers"].as_array().unwrap().len() == 2 {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let lines: String = (0..500).map(|i| format!("{i:050}\n")).collect();
    dir.run_with_stdin(&["send", c], lines.as_bytes()).ok();
    for s in subs {
        assert_eq!(finish(s, None).ok().stdout_str(), lines);
    }
});

/// What a peer scribbling over the region's peer table does to a live subscriber: bumps the
/// generation of its peer slot (region header: the table's offset at 72, the slot size at
/// 76, the generation 4 bytes into a slot), so that its id looks dead while its process and
/// its slot lock are alive. (The library's `bcast_joins` tests do the same.)
fn make_look_dead(path: &Path, peer: u32) {
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
    let generation = u64::from(word(72)) + slot * u64::from(word(76)) + 4;
    let g = word(generation);
    f.write_all_at(&(g ^ 1).to_ne_bytes(), generation).unwrap();
}

// A lossless broadcast `recv` taken for dead while alive (its peer slot scribbled over, and
// its subscriber slot taken by a new subscriber) ends with one `error:` line naming the
// channel file and the eviction, and status 1: messages may have been lost, which is a
// failure, not a timeout (3).
clitest!(chan_recv_evicted_names_the_file_and_exits_1, |dir| {
    let path = dir.path("b");
    let c = path.to_str().unwrap();
    dir.run(&[
        "chan",
        "create",
        c,
        "--kind",
        "broadcast",
        "--capacity",
        "4KiB",
        "--max-subscribers",
        "2",
    ])
    .ok();
    let chan = mapipc::channel::Channel::open(&path).unwrap();
    // Attached throughout: `recv` waits for the next message rather than end.
    let mut tx = chan.sender().unwrap();
    let rx = dir.spawn(&["recv", c, "--timeout", "60s"]);
    await_cond("recv to subscribe", || chan.stat().subscribers.len() == 1);
    tx.send(b"hello").unwrap();
    await_cond("recv to take the message", || {
        chan.stat()
            .subscribers
            .first()
            .is_some_and(|s| s.behind == 0)
    });
    make_look_dead(&path, chan.stat().subscribers[0].end.peer);
    // Takes the slot of `recv`, which looks dead.
    let _y = chan.subscribe(mapipc::channel::StartAt::Newest).unwrap();
    let out = finish(rx, None);
    let line = out.error().to_string();
    assert_eq!(out.stdout_str(), "hello\n");
    for part in [
        format!("`{c}`"),
        "dropped as dead".to_string(),
        "1 received".to_string(),
    ] {
        assert!(line.contains(&part), "no {part:?} in: {line}");
    }
});

// The `--nonblock` branch of the same: a lossless broadcast `recv --nonblock` dropped as
// dead while alive ends with the same one `error:` line and status 1, not 0 for having
// printed something. It is held alive mid-read by its standard output: more messages than
// a pipe holds (64 KiB), and the test reads the pipe only once it has evicted it.
clitest!(chan_recv_nonblock_evicted_exits_1, |dir| {
    let path = dir.path("b");
    let c = path.to_str().unwrap();
    dir.run(&[
        "chan",
        "create",
        c,
        "--kind",
        "broadcast",
        "--capacity",
        "1MiB",
        "--max-subscribers",
        "2",
    ])
    .ok();
    let chan = mapipc::channel::Channel::open(&path).unwrap();
    let mut tx = chan.sender().unwrap();
    let lines: Vec<String> = (0..300).map(|i| format!("{i:0999}\n")).collect();
    for line in &lines {
        tx.send(&line.as_bytes()[..line.len() - 1]).unwrap();
    }
    let rx = dir.spawn(&["recv", c, "--nonblock"]);
    await_cond("recv to subscribe", || chan.stat().subscribers.len() == 1);
    make_look_dead(&path, chan.stat().subscribers[0].end.peer);
    // Takes the slot of `recv`, which looks dead.
    let _y = chan.subscribe(mapipc::channel::StartAt::Newest).unwrap();
    let out = finish(rx, None);
    let line = out.error().to_string();
    // What it printed before it learned of the eviction is what was sent, in order.
    let printed = out.stdout_str();
    let n = printed.lines().count();
    assert!(n < lines.len(), "printed all {n}: never evicted");
    assert_eq!(printed, lines[..n].concat());
    for part in [
        format!("`{c}`"),
        "dropped as dead".to_string(),
        format!("{n} received"),
    ] {
        assert!(line.contains(&part), "no {part:?} in: {line}");
    }
});

clitest!(chan_kind_options_are_checked, |dir| {
    let c = dir.path("x");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--kind", "fifo", "--capacity", "4KiB"])
        .usage_error();
    let line = dir
        .run(&[
            "chan",
            "create",
            c,
            "--kind",
            "mpsc",
            "--max-producers",
            "0",
            "--capacity",
            "4KiB",
        ])
        .error()
        .to_string();
    assert!(line.contains("producers or subscribers"), "{line}");
    // Options of another kind are refused, not ignored; nothing is created.
    for (kind, flag, value) in [
        ("spsc", "--policy", "lossy"),
        ("spsc", "--max-producers", "5"),
        ("mpsc", "--max-subscribers", "5"),
        ("broadcast", "--max-producers", "5"),
    ] {
        let out = dir.run(&[
            "chan",
            "create",
            c,
            "--kind",
            kind,
            flag,
            value,
            "--capacity",
            "4KiB",
        ]);
        let stderr = out.usage_error();
        assert!(
            stderr.contains(&format!("{flag} applies to")) && stderr.contains(kind),
            "{stderr}"
        );
        assert!(!dir.path("x").exists());
    }
});

// ---------------------------------------------------------------------------------------
// bench (no assertion on the figures: only on what is reported and how)

/// The metric names of issue 6, exactly.
const BENCH_METRICS: [&str; 5] = [
    "rtt_p50_ns",
    "rtt_p99_ns",
    "rtt_p999_ns",
    "throughput_msgs_per_s",
    "throughput_gb_per_s",
];

clitest!(bench_quick_writes_table_json_and_plot, |dir| {
    let out = dir.run(&[
        "bench",
        "--quick",
        "--only",
        "pipe,spsc",
        "--json",
        "bench.json",
        "--plot",
        "bench.svg",
    ]);
    assert!(
        out.status.success(),
        "{:?}\nstderr: {}",
        out.status,
        out.stderr
    );
    // The table: one block per size, every transport and mode in it, the probe line.
    let table = out.stdout_str();
    for needle in [
        "8 B messages",
        "64 B messages",
        "pipe ",
        "spin",
        "park",
        "placement probe",
        "p50/kern",
        "tput/ring",
        "wrote `bench.json`",
        "wrote `bench.svg`",
    ] {
        assert!(table.contains(needle), "no {needle:?} in:\n{table}");
    }
    // Without a terminal, progress is logged one line per event on stderr.
    assert!(
        out.stderr
            .contains("placement probe before spsc (spin): spin ping-pong p50"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("error"), "{}", out.stderr);

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("bench.json")).unwrap())
            .expect("bench.json is valid JSON");
    let machine = &json["machine"];
    assert!(machine["cpu_model"].is_string(), "{machine}");
    assert!(machine["cores"].as_u64().unwrap() >= 1, "{machine}");
    assert!(machine["kernel"].is_string(), "{machine}");
    let rows = json["rows"].as_array().expect("rows");
    // pipe, spsc spin, spsc park; sizes 8 and 64; five metrics each.
    assert_eq!(rows.len(), 3 * 2 * 5, "{rows:?}");
    for row in rows {
        let mut keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["metric", "mode", "size", "transport", "value"],
            "{row}"
        );
        let (transport, mode) = (row["transport"].as_str().unwrap(), &row["mode"]);
        match transport {
            "pipe" => assert!(mode.is_null(), "{row}"),
            "spsc" => assert!(mode == "spin" || mode == "park", "{row}"),
            other => panic!("unexpected transport {other}"),
        }
        assert!([8, 64].contains(&row["size"].as_u64().unwrap()), "{row}");
        assert!(
            BENCH_METRICS.contains(&row["metric"].as_str().unwrap()),
            "{row}"
        );
        let value = row["value"].as_f64().unwrap();
        assert!(value.is_finite() && value > 0.0, "{row}");
    }
    for transport in ["pipe", "spsc"] {
        for metric in BENCH_METRICS {
            assert!(
                rows.iter()
                    .any(|r| r["transport"] == transport && r["metric"] == metric),
                "no {metric} for {transport}"
            );
        }
    }
    let svg = std::fs::read_to_string(dir.path("bench.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("spsc (park)"),
        "bad chart"
    );
});

clitest!(bench_rejects_unknown_transports_and_bad_sizes, |dir| {
    for only in ["foo", "pipe,nope", "spsc:fast", "uds:spin", "", ","] {
        let out = dir.run(&["bench", "--only", only, "--json", "bench.json"]);
        let line = out.usage_error();
        let name = only.rsplit(',').next().unwrap();
        assert!(
            line.contains(&format!("unknown transport \"{name}\"")),
            "{line}"
        );
        assert!(line.contains("spsc:spin, spsc:park"), "{line}");
        assert!(out.stdout.is_empty());
    }
    assert!(!dir.path("bench.json").exists(), "nothing is written");
    for (args, expected) in [
        (
            &["bench", "--sizes", "4"][..],
            "message size 4 is outside 8..=",
        ),
        (&["bench", "--sizes", "64,2MiB"], "outside 8..="),
        (&["bench", "--sizes", "64,abc"], "not a size"),
        (&["bench", "--duration", "0"], "from 0.001 to 3600"),
        // Reported in whole milliseconds: it would read "0 ms per phase".
        (&["bench", "--duration", "0.0005"], "from 0.001 to 3600"),
        (&["bench", "--duration", "500us"], "at least 1ms"),
        (&["bench", "--duration", "soon"], "expected seconds"),
    ] {
        let out = dir.run(args);
        let stderr = out.usage_error();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
});

clitest!(bench_refuses_an_unwritable_output_before_measuring, |dir| {
    // Not after minutes of measuring: the only stderr line is the error (no progress).
    let missing = dir.path("no-such-dir/bench.json");
    for args in [
        &["bench", "--json", missing.to_str().unwrap()][..],
        &["bench", "--plot", dir.path("").to_str().unwrap()],
    ] {
        let out = dir.run(args);
        let line = out.error();
        assert!(
            line.starts_with("error: cannot write `"),
            "{args:?}: {line}"
        );
        assert!(out.stdout.is_empty());
    }
    // An existing file is checked without being touched before the run's end.
    dir.write("old.json", b"kept");
    dir.run(&["bench", "--only", "nope", "--json", "old.json"])
        .usage_error();
    assert_eq!(std::fs::read(dir.path("old.json")).unwrap(), b"kept");
});

clitest!(
    bench_refuses_a_fifo_a_device_or_a_directory_as_output,
    |dir| {
        // A FIFO would block the run until a reader opened it (here: until the watchdog);
        // devices and directories are not where results go. Refused before measuring, with one
        // `error:` line and nothing on stdout.
        let fifo = dir.path("out.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        std::fs::create_dir(dir.path("d")).unwrap();
        std::os::unix::fs::symlink(&fifo, dir.path("link-to-fifo")).unwrap();
        let run = ["--only", "uds", "--sizes", "8", "--duration", "1ms"];
        for (flag, target, what) in [
            ("--json", "out.fifo", "a FIFO"),
            ("--plot", "out.fifo", "a FIFO"),
            ("--json", "link-to-fifo", "a FIFO"),
            ("--json", "/dev/null", "a character device"),
            ("--plot", "d", "a directory"),
        ] {
            let out = dir.run(&[&["bench", flag, target][..], &run].concat());
            let line = out.error();
            assert!(
                line.starts_with(&format!("error: cannot write `{target}`: it is {what}")),
                "{flag} {target}: {line}"
            );
            assert!(line.contains("only regular files"), "{line}");
            assert!(out.stdout.is_empty(), "{flag} {target}: measured anyway");
        }
    }
);

/// Runs mapipc with `args` as a parent that ignores SIGCHLD would start it (the disposition
/// is passed on across exec): the kernel would then reap the command's children itself and
/// its `waitpid` fail with ECHILD ("No child processes"). Asserts it succeeded and returns
/// its standard output.
fn run_with_sigchld_ignored(dir: &TestDir, args: &[&str]) -> String {
    use std::os::unix::process::CommandExt;
    let mut cmd = dir.command(args);
    cmd.stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only calls signal(2),
    // which is async-signal-safe, with constant arguments.
    unsafe {
        cmd.pre_exec(|| {
            if libc::signal(libc::SIGCHLD, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = finish(cmd.spawn().expect("spawn mapipc"), None);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\nstderr: {}",
        out.status,
        out.stderr
    );
    out.stdout_str()
}

clitest!(bench_runs_when_started_with_sigchld_ignored, |dir| {
    let args = [
        "bench",
        "--only",
        "uds",
        "--sizes",
        "64",
        "--duration",
        "20ms",
    ];
    let stdout = run_with_sigchld_ignored(&dir, &args);
    assert!(stdout.contains("64 B messages"), "{stdout}");
});

clitest!(demo_runs_when_started_with_sigchld_ignored, |dir| {
    // The demo forks a child in its first scenario and waits for it.
    let stdout = run_with_sigchld_ignored(&dir, &["demo"]);
    assert!(stdout.contains("removed "), "{stdout}");
});

clitest!(bench_refuses_one_file_for_json_and_plot, |dir| {
    // The chart would overwrite the JSON after the whole run. Refused before measuring.
    std::fs::create_dir(dir.path("d")).unwrap();
    let bench_json_plot = |json: &str, plot: &str| {
        let args = ["--only", "uds", "--sizes", "8", "--duration", "1ms"];
        let files = ["--json", json, "--plot", plot];
        dir.run(&[&["bench"][..], &args, &files].concat())
    };
    for (json, plot) in [("out", "out"), ("out", "./out"), ("d/../out", "out")] {
        let out = bench_json_plot(json, plot);
        let line = out.usage_error();
        assert!(line.contains("same file"), "{json} {plot}: {line}");
        assert!(out.stdout.is_empty());
        assert!(!dir.path("out").exists());
    }
    // A link to the JSON file is the same file too; the file keeps its contents.
    dir.write("old.json", b"kept");
    std::os::unix::fs::symlink("old.json", dir.path("link.svg")).unwrap();
    let out = bench_json_plot("old.json", "link.svg");
    assert!(out.usage_error().contains("same file"));
    assert_eq!(std::fs::read(dir.path("old.json")).unwrap(), b"kept");
    // A dangling link to where the other file will be is the same file too (the chart
    // overwrote the JSON); nothing is left behind, and the link stays.
    std::os::unix::fs::symlink("new.json", dir.path("dangling.svg")).unwrap();
    for (json, plot) in [("new.json", "dangling.svg"), ("dangling.svg", "new.json")] {
        let out = bench_json_plot(json, plot);
        assert!(out.usage_error().contains("same file"), "{json} {plot}");
        assert!(out.stdout.is_empty());
        assert!(!dir.path("new.json").exists(), "{json} {plot}");
        assert!(std::fs::symlink_metadata(dir.path("dangling.svg")).is_ok());
    }
});

clitest!(bench_writes_its_files_when_stdout_fails, |dir| {
    // The run's results are not lost with the table: a reader gone before the end (`| less`
    // quit during the run: EPIPE, a normal way to stop, status 0) or a full disk behind `>`
    // (status 1, the error names standard output) still gets the JSON and the chart.
    let args = [
        "bench",
        "--only",
        "uds",
        "--sizes",
        "8",
        "--duration",
        "1ms",
        "--json",
        "out.json",
        "--plot",
        "out.svg",
    ];
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = dir.command(&args);
    cmd.stdin(Stdio::null()).stdout(writer);
    let out = finish(cmd.spawn().expect("spawn mapipc"), None);
    assert!(out.status.success(), "{:?}: {}", out.status, out.stderr);
    let json = std::fs::read_to_string(dir.path("out.json")).expect("out.json written");
    serde_json::from_str::<serde_json::Value>(&json).expect("valid JSON");
    assert!(std::fs::read_to_string(dir.path("out.svg"))
        .unwrap()
        .contains("<svg"));

    std::fs::remove_file(dir.path("out.json")).unwrap();
    std::fs::remove_file(dir.path("out.svg")).unwrap();
    let mut cmd = dir.command(&args);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    cmd.stdin(Stdio::null()).stdout(full);
    let out = finish(cmd.spawn().expect("spawn mapipc"), None);
    // (Progress lines come first on stderr without a terminal.)
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cannot write to standard output"),
        "{}",
        out.stderr
    );
    let json = std::fs::read_to_string(dir.path("out.json")).expect("out.json written");
    serde_json::from_str::<serde_json::Value>(&json).expect("valid JSON");
    assert!(dir.path("out.svg").exists());
});

clitest!(bench_help_has_examples, |dir| {
    let out = dir.run(&["bench", "--help"]);
    out.ok();
    let text = out.stdout_str();
    for needle in [
        "Examples:",
        "mapipc bench --quick",
        "--only",
        "spsc:park",
        "rtt_p999_ns",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
});

// ---------------------------------------------------------------------------------------
// Inspection with read permission only

clitest!(inspection_needs_read_permission_only, |dir| {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    // Another user is needed: as root, the looking commands run as `nobody` (65534) against
    // a channel root owns with mode 0644, which that user can read but not write. As
    // anyone else this test cannot change user, and says so.
    let probe = dir.write("owner-probe", b"");
    if std::fs::metadata(&probe).unwrap().uid() != 0 {
        eprintln!("skipped: only root can run the commands as another user");
        return;
    }
    std::fs::set_permissions(dir.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    dir.run(&["send", c, "hello"]).ok();
    std::fs::set_permissions(c, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut cmd = dir.command(args);
        cmd.uid(65534).gid(65534).stdin(Stdio::null());
        finish(cmd.spawn().expect("spawn mapipc as nobody"), None)
    };
    let out = as_nobody(&["stat", c, "--json"]);
    let st: serde_json::Value = serde_json::from_str(&out.ok().stdout_str()).unwrap();
    assert_eq!(st["sent"], 1, "{st}");
    assert_eq!(st["received"], 0, "{st}");
    assert!(as_nobody(&["info", c]).ok().stdout_str().contains("spsc"));
    assert!(as_nobody(&["region", "info", c])
        .ok()
        .stdout_str()
        .contains("created"));
    let out = as_nobody(&["region", "read", c, "--len", "8"]);
    assert_eq!(out.ok().stdout, b"MAPIPCCH");
    // Receiving consumes, which needs write permission: refused, message kept.
    let err = as_nobody(&["recv", c, "--nonblock"]).error().to_string();
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(
        dir.run(&["recv", c, "--count", "1"]).ok().stdout_str(),
        "hello\n"
    );
});

clitest!(
    channel_of_another_format_version_is_refused_by_name,
    |dir| {
        // Version 2 placed SPSC records without regard to cache lines, version 3 had no
        // subscriber-slot tickets (its broadcast positions carry no tag): a version-4
        // reader would misread them, so such a file is refused, saying what to do.
        dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
            .ok();
        let fresh = std::fs::read(dir.path("c")).unwrap();
        for version in [2, 3] {
            let mut bytes = fresh.clone();
            bytes[4096 + 8] = version; // the channel header's format version, after its magic
            std::fs::write(dir.path("c"), &bytes).unwrap();
            for args in [&["stat", "./c"][..], &["recv", "./c", "--nonblock"][..]] {
                let line = dir.run(args).error().to_string();
                assert!(
                    line.contains("format version") && line.contains("reads version 4"),
                    "version {version}, {args:?}: {line}"
                );
            }
        }
    }
);

clitest!(channel_commands_name_a_missing_channel_as_one, |dir| {
    // The library opens every kind as a region and says so; the commands say what they
    // were asked to open.
    for args in [
        &["send", "./nope", "x"][..],
        &["recv", "./nope", "--nonblock"],
        &["stat", "./nope"],
    ] {
        let line = dir.run(args).error().to_string();
        assert!(
            line.contains("channel `./nope` does not exist"),
            "{args:?}: {line}"
        );
    }
    assert!(!dir.path("nope").exists());
    let line = dir
        .run(&["chan", "create", "./no/dir/c", "--capacity", "4k"])
        .error()
        .to_string();
    assert!(
        line.contains(
            "cannot create channel `./no/dir/c`: its directory `./no/dir` does not exist"
        ),
        "{line}"
    );
    dir.write("f", b"a file");
    let line = dir
        .run(&["chan", "create", "./f/c", "--capacity", "4k"])
        .error()
        .to_string();
    assert!(
        line.contains("its directory `./f` is not a directory"),
        "{line}"
    );
});

// ---------------------------------------------------------------------------------------
// Names with control characters: printed escaped, never raw

/// Asserts that `text` holds no control character other than the newlines ending its lines,
/// and has `lines` lines.
fn assert_no_raw_controls(text: &str, lines: usize, what: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: a raw control character in {text:?}"
    );
    assert_eq!(text.lines().count(), lines, "{what}: {text:?}");
}

clitest!(names_with_control_characters_are_printed_escaped, |dir| {
    // A name that would forge a second line, and one that would clear the screen.
    let forged = "./r\nremoved region `important`";
    let shown = "./r\\nremoved region `important`";
    let out = dir.run(&["region", "create", forged, "--size", "4KiB"]);
    out.ok();
    let stdout = out.stdout_str();
    assert_no_raw_controls(&stdout, 1, "region create");
    assert!(
        stdout.starts_with(&format!("created region `{shown}`:")),
        "{stdout}"
    );
    let out = dir.run(&["region", "info", forged]);
    out.ok();
    assert!(out.stdout_str().contains(shown), "{}", out.stdout_str());
    assert_no_raw_controls(&out.stdout_str(), out.stdout_str().lines().count(), "info");
    assert!(!out.stdout_str().contains("\nremoved"));
    let out = dir.run(&["region", "rm", forged]);
    out.ok();
    assert_eq!(out.stdout_str(), format!("removed region `{shown}`\n"));

    let cls = "./c\x1b[2J\x1b[H\r";
    let out = dir.run(&["chan", "create", cls, "--capacity", "4KiB"]);
    out.ok();
    assert_no_raw_controls(&out.stdout_str(), 1, "chan create");
    assert!(
        out.stdout_str()
            .contains("channel `./c\\u{1b}[2J\\u{1b}[H\\r`"),
        "{}",
        out.stdout_str()
    );
    let out = dir.run(&["stat", cls]);
    out.ok();
    assert_no_raw_controls(&out.stdout_str(), out.stdout_str().lines().count(), "stat");
    // JSON keeps the exact name (escaped the JSON way).
    let out = dir.run(&["stat", cls, "--json"]);
    out.ok();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["path"], cls);
    let out = dir.run(&["recv", cls, "--nonblock"]);
    assert_eq!(out.status.code(), Some(3));
    assert_one_error_line(&out.stderr);
    assert_no_raw_controls(&out.stderr, 1, "recv error");
    assert!(out.stderr.contains("./c\\u{1b}[2J"), "{}", out.stderr);

    // Errors: from the command's own checks and from the library's messages alike.
    for args in [
        &["region", "info", "./missing\x1b[2K\rerror: forged"][..],
        &["cat", "./missing\nerror: forged"],
        &["info", "./missing\x07"],
        &["send", "./missing\x1b]0;title\x07", "m"],
        &["region", "create", "./no\ndir/r", "--size", "4KiB"],
    ] {
        let out = dir.run(args);
        let line = out.error();
        assert_no_raw_controls(&out.stderr, 1, &format!("{args:?}"));
        assert!(
            line.contains("./missing\\") || line.contains("no\\ndir"),
            "{line}"
        );
    }
    // The library opens (and quotes) a file whose name it is given: a FIFO named so.
    let fifo = dir.path("f\x1b[2J");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for args in [
        &["region", "info", "./f\x1b[2J"][..],
        &["cat", "./f\x1b[2J"],
        &["stat", "./f\x1b[2J"],
    ] {
        let out = dir.run(args);
        out.error();
        assert_no_raw_controls(&out.stderr, 1, &format!("{args:?}"));
    }

    // Queue files: the directory, and what `info` prints about a file.
    let q = "./q\n\x1b[1m";
    dir.run(&["queue", "append", q, "one", "two"]).ok();
    let out = dir.run(&["queue", "stat", q]);
    out.ok();
    assert!(
        out.stdout_str().contains("./q\\n\\u{1b}[1m"),
        "{}",
        out.stdout_str()
    );
    assert_no_raw_controls(
        &out.stdout_str(),
        out.stdout_str().lines().count(),
        "queue stat",
    );
    assert!(!out.stdout_str().lines().any(|l| l.starts_with('\x1b')));
    let named = dir.write("file\nname", b"data");
    let out = dir.run(&["info", named.to_str().unwrap()]);
    out.ok();
    assert!(out
        .stdout_str()
        .lines()
        .next()
        .unwrap()
        .ends_with("file\\nname"));
    assert_no_raw_controls(&out.stdout_str(), out.stdout_str().lines().count(), "info");
});

clitest!(json_output_escapes_del_and_c1_controls, |dir| {
    // DEL and the C1 controls (U+0080..U+009F, U+009B a one-character CSI) went out raw
    // inside --json strings: a hostile name reached the terminal. They are `\u` escapes now,
    // and the JSON still decodes to the exact name.
    let tail = "\u{7f}\u{9b}2J\u{85}\u{9d}0;t\u{9c}";
    let check = |args: &[&str], key: &str, want: &str| -> serde_json::Value {
        let out = dir.run(args);
        let text = out.ok().stdout_str();
        assert_no_raw_controls(&text, 1, &format!("{args:?}"));
        assert!(text.contains("\\u007f\\u009b2J\\u0085"), "{args:?}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[key], want, "{args:?}: {text}");
        v
    };
    let f = format!("./f{tail}");
    dir.write(&f, b"data");
    check(&["info", &f, "--json"], "file", &f);
    let c = format!("./c{tail}");
    dir.run(&["chan", "create", &c, "--capacity", "4KiB"]).ok();
    check(&["stat", &c, "--json"], "path", &c);
    check(&["info", &c, "--json"], "file", &c);
    let r = format!("./r{tail}");
    dir.run(&["region", "create", &r, "--size", "4KiB"]).ok();
    check(&["region", "info", &r, "--json"], "path", &r);
    let q = format!("./q{tail}");
    dir.run(&["queue", "append", &q, "one"]).ok();
    check(&["queue", "stat", &q, "--json"], "dir", &q);
});

clitest!(demo_prints_a_hostile_temporary_directory_escaped, |dir| {
    // TMPDIR comes from the environment: its name is printed escaped too.
    let tmp = dir.path("t\nmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut cmd = dir.command(&["demo"]);
    cmd.env("TMPDIR", &tmp).stdin(Stdio::null());
    let out = finish(cmd.spawn().expect("spawn mapipc demo"), None);
    out.ok();
    let stdout = out.stdout_str();
    assert!(!stdout.contains("t\nmp"), "{stdout}");
    assert!(stdout.contains("t\\nmp/mapipc-demo-"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("removed ") && l.contains("t\\nmp")),
        "{stdout}"
    );
});

/// `mapipc recv c >&-`: standard output closed. The Rust runtime opens /dev/null in its
/// place, so every message printed would be consumed and lost; `recv` refuses instead, and
/// the messages stay in the channel. An explicit `>/dev/null` still discards, as asked.
#[test]
fn recv_refuses_a_closed_standard_output_and_consumes_nothing() {
    let dir = TestDir::new();
    dir.run(&["chan", "create", "./c", "--capacity", "4KiB"])
        .ok();
    dir.run(&["send", "./c", "kept", "dropped"]).ok();
    let closed = |redirect: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "exec \"$0\" recv ./c --count 1 --nonblock {redirect}"
            ))
            .arg(env!("CARGO_BIN_EXE_mapipc"))
            .current_dir(dir.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        finish(cmd.spawn().expect("spawn sh"), None)
    };
    let out = closed(">&-");
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("standard output is closed"),
        "{}",
        out.stderr
    );
    assert_one_error_line(&out.stderr);
    assert_eq!(dir.stat_json("./c")["received"], 0, "nothing was consumed");
    // Discarding on purpose is allowed: the first message goes.
    closed(">/dev/null").ok();
    assert_eq!(
        dir.run(&["recv", "./c", "--nonblock"]).ok().stdout_str(),
        "dropped\n"
    );
}

/// A usage error quotes the bad value; one holding a newline could forge a line of output
/// (`error: ...` of its own choosing). It is printed escaped, as names are everywhere else,
/// with the usage status 2.
#[test]
fn usage_errors_print_control_characters_escaped() {
    let dir = TestDir::new();
    for args in [
        &["bench", "--sizes", "12\nerror: forged"][..],
        &["bench", "--sizes=12\nerror: forged"][..],
        &["chan", "create", "./c", "--capacity", "4\u{1b}[2Jk"][..],
    ] {
        let out = dir.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(
            !out.stderr.lines().any(|l| l.starts_with("error: forged")),
            "{args:?}: {}",
            out.stderr
        );
        // (clap drops escape sequences from what it quotes; newlines it keeps, and they are
        // shown escaped.)
        assert!(!out.stderr.contains('\u{1b}'), "{args:?}: {}", out.stderr);
        if args.iter().any(|a| a.contains('\n')) {
            assert!(
                out.stderr.contains("12\\nerror: forged"),
                "{args:?}: the value is shown escaped: {}",
                out.stderr
            );
        }
    }
}

// `--binary` frames too long or empty, `--count 0`, `--timeout 0`.
clitest!(chan_binary_length_edges_count_zero_timeout_zero, |dir| {
    let c = dir.path("c");
    let c = c.to_str().unwrap();
    dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
    let max = dir.stat_json(c)["max_message"].as_u64().unwrap() as usize;
    // A receiver that has no producer yet times out at once with --timeout 0.
    dir.run(&["recv", c, "--timeout", "0s"]).status3();
    let frame = |len: u32, body: &[u8]| {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(body);
        v
    };
    // The largest message goes; one byte more is refused before its body is read, and the
    // frames before it are sent, those after it not.
    let mut input = frame(max as u32, &vec![b'm'; max]);
    input.extend(frame(max as u32 + 1, &vec![b'x'; max + 1]));
    input.extend(frame(1, b"z"));
    let line = dir
        .run_with_stdin(&["send", c, "--binary"], &input)
        .error()
        .to_string();
    assert!(
        line.contains(&format!("frame 2 of standard input is {} bytes", max + 1))
            && line.contains("(1 sent before it)"),
        "{line}"
    );
    // A length no channel can take, with no body behind it: refused at once, not read.
    let line = dir
        .run_with_stdin(&["send", c, "--binary"], &[0xff; 4])
        .error()
        .to_string();
    assert!(
        line.contains("frame 1 of standard input is 4294967295 bytes"),
        "{line}"
    );
    // An empty frame is not a message.
    let line = dir
        .run_with_stdin(&["send", c, "--binary"], &frame(0, b""))
        .error()
        .to_string();
    assert!(
        line.contains("frame 1 of standard input is 0 bytes"),
        "{line}"
    );
    // --count 0 takes nothing.
    let out = dir.run(&["recv", c, "--count", "0"]);
    assert!(out.ok().stdout.is_empty());
    assert_eq!(dir.stat_json(c)["received"], 0);
    // --timeout 0 still delivers what is there, then ends as the producer is gone.
    let out = dir.run(&["recv", c, "--binary", "--timeout", "0s"]);
    assert_eq!(out.ok().stdout, frame(max as u32, &vec![b'm'; max]));
    // A full ring with --timeout 0: status 3, nothing lost.
    let big = "b".repeat(max);
    dir.run(&["send", c, &big, &big]).ok();
    dir.run(&["send", c, "--timeout", "0s", &big]).status3();
    let st = dir.stat_json(c);
    assert_eq!(
        (st["sent"].as_u64(), st["received"].as_u64()),
        (Some(3), Some(1))
    );
});
