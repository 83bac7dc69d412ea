//! `region`, `info`, `write`, `demo` and the channel commands on files that are not what
//! they expect (files of /proc and /sys, FIFOs, dangling links, another user's files), and
//! `demo` interrupted by a signal or killed. Every test
//! runs the built binary under a watchdog (see `common`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::Duration;

mod common;

use common::*;

/// A file of /proc: it says 0 bytes, reading it gives some, and it cannot be mapped.
const PROC_FILE: &str = "/proc/self/status";

/// A readable file of /sys (4096 bytes by its size, not mappable), if this machine has one.
fn sys_file() -> Option<&'static str> {
    [
        "/sys/kernel/uevent_seqnum",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/power/state",
    ]
    .into_iter()
    .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
}

// A file of /proc looks like an empty file, which is what a region whose creator has not
// sized it yet looks like: the region commands waited a second for a creator, then blamed
// one that died. It cannot be mapped at all (an empty file can), so it is no region being
// made: say so at once.
clitest!(region_commands_refuse_a_proc_file_at_once, |dir| {
    for args in [
        &["region", "info", PROC_FILE][..],
        &["region", "read", PROC_FILE],
        &["region", "rm", PROC_FILE],
        &["stat", PROC_FILE],
    ] {
        let out = dir.run(args);
        let line = out.error();
        assert!(
            line.contains("`/proc/self/status` cannot be memory-mapped")
                && line.contains("generated on read"),
            "{args:?}: {line}"
        );
        assert!(!line.contains("creator"), "{args:?}: {line}");
    }
    assert!(Path::new(PROC_FILE).exists());
    // Reading /proc/PID/mem at offset 0 fails (nothing is mapped there): a check that reads
    // a byte to tell a generated file from an empty one must not take that for empty.
    let line = dir
        .run(&["region", "info", "/proc/self/mem"])
        .error()
        .to_string();
    assert!(
        line.contains("`/proc/self/mem` cannot be memory-mapped"),
        "{line}"
    );
});

// Errors of a region opened by path named it by `/proc/self/fd`: `/sys/... (fd 3)`.
clitest!(region_errors_name_the_file_as_given, |dir| {
    let Some(sys) = sys_file() else {
        eprintln!("skipped: no readable /sys file here");
        return;
    };
    let line = dir.run(&["region", "info", sys]).error().to_string();
    assert!(
        line.contains(&format!("`{sys}` cannot be memory-mapped")),
        "{line}"
    );
    assert!(!line.contains("(fd "), "{line}");
});

// `info` said a /proc file was "empty ... size it first with `mapipc write --create`", and
// that a /sys file maps as one page, while it cannot be mapped at all.
clitest!(info_says_proc_and_sys_files_cannot_be_mapped, |dir| {
    let mut files = vec![PROC_FILE, "/proc/self/mem"];
    files.extend(sys_file());
    for file in files {
        let text = dir.run(&["info", file]).ok().stdout_str();
        let mapping = text
            .lines()
            .find(|l| l.starts_with("mapping:"))
            .unwrap_or_else(|| panic!("{file}: no mapping line in\n{text}"));
        assert!(mapping.contains("not mappable"), "{file}: {mapping}");
        assert!(!mapping.contains("size it first"), "{file}: {mapping}");
        let json = dir.run(&["info", file, "--json"]).ok().stdout_str();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["mapping"]["mappable"], false, "{file}: {json}");
    }
    for file in [PROC_FILE, "/proc/self/mem"] {
        let mapping = dir.run(&["info", file]).ok().stdout_str();
        assert!(mapping.contains("generated on read"), "{file}: {mapping}");
        // `cat` printed nothing for /proc/self/mem and succeeded, as for an empty file.
        let line = dir.run(&["cat", file]).error().to_string();
        assert!(line.contains("generated on read"), "{file}: {line}");
    }
    // A real empty file is still told to size itself.
    dir.write("empty", b"");
    let text = dir.run(&["info", "empty"]).ok().stdout_str();
    assert!(text.contains("size it first"), "{text}");
});

// `write` into a /proc file said "past the end of ... (0 bytes); use --create SIZE to
// extend it", which only leads to "cannot be memory-mapped".
clitest!(write_refuses_a_proc_file_as_generated, |dir| {
    let line = dir
        .run(&["write", PROC_FILE, "--offset", "0", "x"])
        .error()
        .to_string();
    assert!(
        line.contains("`/proc/self/status`") && line.contains("generated on read"),
        "{line}"
    );
    assert!(!line.contains("--create"), "{line}");
});

// `info` on a dangling symbolic link said only "No such file or directory", about a link
// that `ls` shows is there.
clitest!(
    info_on_a_dangling_link_names_the_link_and_its_target,
    |dir| {
        std::os::unix::fs::symlink("nowhere", dir.path("link")).unwrap();
        let line = dir.run(&["info", "link"]).error().to_string();
        assert!(
            line.contains("`link`, a symbolic link to `nowhere`") && line.contains("No such file"),
            "{line}"
        );
    }
);

// Opening is not harmless for every file: a FIFO's open wakes a writer waiting for a
// reader (a watchdog device's arms it). Region and channel commands opened the path first
// and looked at what it was afterwards. inotify reports every open of the FIFO.
clitest!(region_commands_do_not_open_a_fifo, |dir| {
    let fifo = dir.path("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c_path` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // SAFETY: inotify_init1 takes flags only; the fd is owned below.
    let ino = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(ino >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `ino` is a new fd nobody else owns.
    let ino = unsafe { OwnedFd::from_raw_fd(ino) };
    // SAFETY: a valid inotify fd and a valid NUL-terminated path.
    let wd = unsafe { libc::inotify_add_watch(ino.as_raw_fd(), c_path.as_ptr(), libc::IN_OPEN) };
    assert!(wd >= 0, "{}", std::io::Error::last_os_error());
    for args in [
        &["region", "info", "./fifo"][..],
        &["region", "read", "./fifo"],
        &["region", "read", "./fifo", "--wait", "--timeout", "1s"],
        &["region", "write", "./fifo", "--offset", "0", "x"],
        &["region", "rm", "./fifo"],
        &["stat", "./fifo"],
        &["recv", "./fifo", "--nonblock"],
    ] {
        let line = dir.run(args).error().to_string();
        assert!(line.contains("`./fifo` is a FIFO"), "{args:?}: {line}");
    }
    let mut buf = [0u8; 4096];
    // SAFETY: `buf` is writable for its length; the fd is non-blocking.
    let n = unsafe { libc::read(ino.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(
        n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock,
        "the FIFO was opened ({n} bytes of inotify events)"
    );
});

/// Runs `mapipc demo` with `TMPDIR=tmp` to completion; returns its output.
fn demo_output(dir: &TestDir, tmp: &Path) -> String {
    let mut cmd = dir.command(&["demo"]);
    cmd.env("TMPDIR", tmp).stdin(Stdio::null());
    let out = finish(cmd.spawn().expect("spawn mapipc demo"), None);
    out.ok();
    out.stdout_str()
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Where a demo's narration can be held with its named region existing: `(created_end,
/// room)`, the length of its output up to the line saying the region was created, and the
/// room [`start_held_demo`] leaves (about the middle of scenarios 2 and 3), measured by a
/// complete run.
fn demo_layout(dir: &TestDir, tmp: &Path) -> (usize, usize) {
    let text = demo_output(dir, tmp);
    assert_eq!(entries(tmp), Vec::<String>::new(), "after a complete run");
    // The region exists once this line is out; the directory goes just before "removed".
    let created = text.find("   reader: created region").expect(&text);
    let created_end = created + text[created..].find('\n').unwrap() + 1;
    let removed = text.find("\nremoved ").expect(&text);
    assert!(
        removed < PIPE,
        "the demo's output no longer fits a page: {removed}"
    );
    (created_end, (created_end + removed) / 2)
}

/// The pipe [`start_held_demo`] gives a demo as its standard output.
const PIPE: usize = 4096;

/// Starts `mapipc demo` with `TMPDIR=tmp`, held at a known point of its narration: its
/// standard output is a one-page pipe that is filled beforehand, leaving `room` bytes, and
/// never read. Returns once the first `created_end` bytes of its output are in the pipe (see
/// [`demo_layout`]), with the pipe's reading end (to keep the demo blocked).
fn start_held_demo(
    dir: &TestDir,
    tmp: &Path,
    (created_end, room): (usize, usize),
) -> (Child, Watchdog, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are new and owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETPIPE_SZ on a pipe fd we own.
    let size = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE as libc::c_int) };
    assert_eq!(
        size,
        PIPE as libc::c_int,
        "{}",
        std::io::Error::last_os_error()
    );
    let fill = vec![b'#'; PIPE - room];
    // SAFETY: `fill` is readable for its length; the pipe is empty and larger.
    let n = unsafe { libc::write(wr.as_raw_fd(), fill.as_ptr().cast(), fill.len()) };
    assert_eq!(n, fill.len() as isize);

    let mut cmd = dir.command(&["demo"]);
    cmd.env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::from(wr))
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn mapipc demo");
    drop(cmd); // our copy of the pipe's writing end
    let dog = Watchdog::new(child.id());
    // Wait until the line after the region's creation is in the pipe.
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int, into `queued`.
        let r = unsafe { libc::ioctl(rd.as_raw_fd(), libc::FIONREAD, &mut queued) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        if queued as usize >= fill.len() + created_end {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the demo ended before being held: {status:?}");
        }
        thread::sleep(Duration::from_millis(1));
    }
    (child, dog, rd)
}

// Interrupted (Ctrl-C, `kill`, a closed terminal) while its named region and channel
// existed, `demo` died by the signal's default action and left its temporary directory
// behind. Here it is held at a known point of its narration (see `start_held_demo`).
#[test]
fn demo_interrupted_removes_its_temporary_files() {
    let dir = TestDir::new();
    let tmp = dir.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let layout = demo_layout(&dir, &tmp);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let (mut child, dog, _rd) = start_held_demo(&dir, &tmp, layout);
        assert_eq!(
            entries(&tmp).len(),
            1,
            "the demo's directory exists while it runs"
        );
        // SAFETY: kill with our unreaped child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let status = child.wait().unwrap();
        dog.finish();
        assert_eq!(status.signal(), Some(sig), "{status:?}");
        assert_eq!(
            entries(&tmp),
            Vec::<String>::new(),
            "left behind by a demo ended by signal {sig}"
        );
    }
}

/// Makes `tmp/name` holding `files` (each a small file), as a directory of a demo would
/// look; returns its path.
fn fake_demo_dir(tmp: &Path, name: &str, files: &[&str]) -> std::path::PathBuf {
    let d = tmp.join(name);
    std::fs::create_dir(&d).unwrap();
    for f in files {
        std::fs::write(d.join(f), b"1").unwrap();
    }
    d
}

// SIGKILL cannot be caught: the killed demo's directory stays, and the next demo removes
// it, knowing it dead by the lock its owner held (released by the kernel on its death).
// Directories it cannot prove dead and its own, or holding anything a demo does not make,
// are left alone.
#[test]
fn demo_removes_what_a_killed_demo_left_and_nothing_else() {
    use std::os::unix::fs::symlink;
    let dir = TestDir::new();
    let tmp = dir.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let layout = demo_layout(&dir, &tmp);
    let (mut child, dog, _rd) = start_held_demo(&dir, &tmp, layout);
    let killed_pid = child.id();
    // SAFETY: kill with our unreaped child's pid.
    let r = unsafe { libc::kill(killed_pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(r, 0);
    let status = child.wait().unwrap();
    dog.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let left = entries(&tmp);
    assert_eq!(
        left.len(),
        1,
        "the killed demo left its directory: {left:?}"
    );
    let stale = tmp.join(&left[0]);
    assert!(stale.join("owner.lock").exists(), "{:?}", entries(&stale));

    // Look-alikes that must stay:
    // a live demo's (its lock held, here by this test process);
    let live = fake_demo_dir(&tmp, "mapipc-demo-live", &["owner.lock", "region"]);
    let live_lock = std::fs::File::open(live.join("owner.lock")).unwrap();
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(live_lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0);
    // a dead one's holding a file no demo makes;
    let extra = fake_demo_dir(&tmp, "mapipc-demo-extra", &["owner.lock", "precious"]);
    // one without a lock (no owner to tell dead or alive);
    let nolock = fake_demo_dir(&tmp, "mapipc-demo-nolock", &["region", "channel"]);
    // a symbolic link to a dead one's;
    let victim = fake_demo_dir(&tmp, "victim", &["owner.lock", "region"]);
    symlink(&victim, tmp.join("mapipc-demo-link")).unwrap();
    // a directory by another name;
    let other = fake_demo_dir(&tmp, "other", &["owner.lock", "region"]);
    // a lock file that is a symbolic link.
    let linked = fake_demo_dir(&tmp, "mapipc-demo-linked", &["region"]);
    symlink(victim.join("owner.lock"), linked.join("owner.lock")).unwrap();

    let text = demo_output(&dir, &tmp);
    let said = format!(
        "removed {}, left behind by an earlier demo (pid {killed_pid}) that ended without removing it\n",
        stale.display()
    );
    assert!(text.contains(&said), "{said}\nnot in:\n{text}");
    assert!(!stale.exists(), "the killed demo's directory is gone");
    assert_eq!(
        text.matches(", left behind by an earlier demo").count(),
        1,
        "{text}"
    );
    let mut now = entries(&tmp);
    now.sort();
    assert_eq!(
        now,
        [
            "mapipc-demo-extra",
            "mapipc-demo-link",
            "mapipc-demo-linked",
            "mapipc-demo-live",
            "mapipc-demo-nolock",
            "other",
            "victim"
        ]
    );
    for (d, files) in [
        (&live, &["owner.lock", "region"][..]),
        (&extra, &["owner.lock", "precious"]),
        (&nolock, &["channel", "region"]),
        (&victim, &["owner.lock", "region"]),
        (&other, &["owner.lock", "region"]),
        (&linked, &["owner.lock", "region"]),
    ] {
        let mut have = entries(d);
        have.sort();
        assert_eq!(have, files, "{}", d.display());
    }

    // Once its owner is gone (the lock released), the live one's goes too.
    drop(live_lock);
    let text = demo_output(&dir, &tmp);
    assert!(
        text.contains(&format!(
            "removed {}, left behind by an earlier demo (pid 1) that ended without removing it\n",
            live.display()
        )),
        "{text}"
    );
    assert!(!live.exists());
}

/// Polls `region info --json PATH` until it lists `n` live peers; fails if one of
/// `children` (the processes meant to be those peers) ends first.
fn wait_for_peers(dir: &TestDir, path: &str, n: usize, children: &mut [&mut Child]) {
    loop {
        let out = dir.run(&["region", "info", path, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out.ok().stdout_str()).unwrap();
        let alive = v["peers"]
            .as_array()
            .map_or(0, |p| p.iter().filter(|p| p["alive"] == true).count());
        if alive == n {
            return;
        }
        for c in children.iter_mut() {
            if let Some(status) = c.try_wait().unwrap() {
                panic!("a reader ended before joining: {status:?}");
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn spawn_reader(dir: &TestDir, extra: &[&str]) -> Child {
    let mut args = vec!["region", "read", "./r", "--len", "5", "--wait"];
    args.extend(extra);
    let mut cmd = dir.command(&args);
    cmd.stdin(Stdio::null());
    cmd.spawn().expect("spawn a reader")
}

// `region read --wait` ended when the file was truncated, not when it was removed: then no
// `region write` could ever reach it (it opens the name), and the reader waited for ever.
// It stops once the name no longer leads to the region and no other live peer has it.
clitest!(region_read_wait_ends_when_the_region_is_removed, |dir| {
    dir.run(&["region", "create", "./r", "--size", "4KiB"]).ok();
    let mut reader = spawn_reader(&dir, &[]);
    wait_for_peers(&dir, "./r", 1, &mut [&mut reader]);
    dir.run(&["region", "rm", "./r"]).ok();
    let out = finish(reader, None);
    let line = out.error();
    assert!(
        line.contains("region `./r` was removed or replaced while waiting for a write"),
        "{line}"
    );
    assert!(out.stdout.is_empty());
});

// A removed region that another live peer still has may still be written: keep waiting
// while it is there, stop once it is gone.
clitest!(
    region_read_wait_on_a_removed_region_waits_while_a_peer_has_it,
    |dir| {
        dir.run(&["region", "create", "./r", "--size", "4KiB"]).ok();
        let mut waiter = spawn_reader(&dir, &[]);
        let mut other = spawn_reader(&dir, &["--timeout", "2s"]);
        wait_for_peers(&dir, "./r", 2, &mut [&mut waiter, &mut other]);
        dir.run(&["region", "rm", "./r"]).ok();
        // `waiter` is alive all along: `other` waits until its timeout (status 3).
        let out = finish(other, None);
        assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
        assert!(out.stderr.contains("timed out"), "{}", out.stderr);
        // Alone now, `waiter` stops on the removal.
        let line = finish(waiter, None).error().to_string();
        assert!(line.contains("was removed or replaced"), "{line}");
    }
);

// `region read` copied the whole range into one buffer before printing it: a region larger
// than the memory left aborted the process ("memory allocation failed", SIGABRT). It
// streams in chunks now, as `cat` does. Here its heap is limited (RLIMIT_DATA counts
// private writable memory, not the shared mapping of the region) to a third of the data.
clitest!(region_read_streams_a_region_larger_than_its_heap, |dir| {
    use std::os::unix::process::CommandExt;
    const LEN: usize = 48 << 20;
    dir.run(&["region", "create", "./big", "--size", "48MiB"])
        .ok();
    let marker = b"across a chunk boundary";
    let at = (1 << 20) - 5;
    dir.run(&[
        "region",
        "write",
        "./big",
        "--offset",
        &at.to_string(),
        std::str::from_utf8(marker).unwrap(),
    ])
    .ok();
    let mut cmd = dir.command(&["region", "read", "./big"]);
    cmd.stdin(Stdio::null());
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe, on a local.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: (LEN / 3) as libc::rlim_t,
                rlim_max: (LEN / 3) as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = finish(cmd.spawn().expect("spawn mapipc"), None);
    out.ok();
    assert_eq!(out.stdout.len(), LEN);
    assert_eq!(&out.stdout[at..at + marker.len()], marker);
    assert!(out.stdout[..at].iter().all(|&b| b == 0));
});

// `region create ./nodir/r` said "cannot create region `./nodir/r`: No such file or
// directory", as if the region were what is missing; `chan create` names the directory.
clitest!(region_create_names_a_missing_or_wrong_directory, |dir| {
    dir.write("file", b"x");
    for (path, why) in [
        ("./nodir/r", "its directory `./nodir` does not exist"),
        ("./file/r", "its directory `./file` is not a directory"),
    ] {
        let line = dir
            .run(&["region", "create", path, "--size", "4KiB"])
            .error()
            .to_string();
        assert!(
            line.contains(&format!("cannot create region `{path}`: {why}")),
            "{line}"
        );
    }
    assert!(!dir.path("nodir").exists());
});

// Another user's region: `region write` and `region read --wait` were refused with the
// library's words ("RegionOptions::allow_foreign_owner to accept it"), an option the command
// line does not have; `region rm` was refused too, though removing takes write permission
// on the directory only (as `rm`, or `region rm --force`, shows). As root, the commands run
// as `nobody`; as anyone else this test cannot change user, and says so.
clitest!(
    another_users_region_is_refused_in_the_commands_words,
    |dir| {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let probe = dir.write("owner-probe", b"");
        if std::fs::metadata(&probe).unwrap().uid() != 0 {
            eprintln!("skipped: only root can run the commands as another user");
            return;
        }
        std::fs::set_permissions(dir.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let r = dir.path("r");
        let r = r.to_str().unwrap();
        dir.run(&["region", "create", r, "--size", "4KiB"]).ok();
        std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o666)).unwrap();
        let as_nobody = |args: &[&str]| {
            let mut cmd = dir.command(args);
            cmd.uid(65534).gid(65534).stdin(Stdio::null());
            finish(cmd.spawn().expect("spawn mapipc as nobody"), None)
        };
        for args in [
            &["region", "write", r, "--offset", "0", "x"][..],
            &["region", "read", r, "--wait", "--timeout", "1s"],
        ] {
            let line = as_nobody(args).error().to_string();
            assert!(
                line.contains("belongs to uid 0, not to you (uid 65534)"),
                "{args:?}: {line}"
            );
            assert!(!line.contains("RegionOptions"), "{args:?}: {line}");
        }
        assert_eq!(
            as_nobody(&["region", "read", r, "--len", "1"]).ok().stdout,
            b"\0"
        );
        as_nobody(&["region", "rm", r]).ok();
        assert!(!Path::new(r).exists());
    }
);

// `info DIR` on a queue whose `queue.meta` the user may not read said "format: none
// (nothing to read)", as for any directory; it now says the metadata cannot be read.
clitest!(info_on_a_queue_with_unreadable_metadata_says_so, |dir| {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let probe = dir.write("owner-probe", b"");
    if std::fs::metadata(&probe).unwrap().uid() != 0 {
        eprintln!("skipped: only root can run the commands as another user");
        return;
    }
    std::fs::set_permissions(dir.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let q = dir.path("q");
    let q = q.to_str().unwrap();
    dir.run(&["queue", "append", q, "one"]).ok();
    std::fs::set_permissions(q, std::fs::Permissions::from_mode(0o711)).unwrap();
    let meta = dir.path("q/queue.meta");
    std::fs::set_permissions(&meta, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = dir.command(&["info", q]);
    cmd.uid(65534).gid(65534).stdin(Stdio::null());
    let text = finish(cmd.spawn().expect("spawn mapipc as nobody"), None)
        .ok()
        .stdout_str();
    let format = text.lines().find(|l| l.starts_with("format:")).unwrap();
    assert!(
        format.contains("queue.meta") && format.contains("Permission denied"),
        "{format}"
    );
});

// `send`, `recv` and `stat` on a FIFO, a symlink, another user's channel or one they may not
// open said it in the library's words for regions ("not a region",
// `RegionOptions::allow_foreign_owner`, "cannot open region").
clitest!(
    channel_commands_refuse_what_is_not_theirs_in_their_words,
    |dir| {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let fifo = dir.path("fifo");
        let fifo = fifo.to_str().unwrap();
        let c_fifo = std::ffi::CString::new(fifo).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        let c = dir.path("c");
        let c = c.to_str().unwrap();
        dir.run(&["chan", "create", c, "--capacity", "4KiB"]).ok();
        let link = dir.path("link");
        std::os::unix::fs::symlink(c, &link).unwrap();
        let link = link.to_str().unwrap();
        for (path, says) in [
            (fifo, "is a FIFO, not a channel"),
            (
                link,
                "is a symbolic link: channels are not opened through symlinks",
            ),
        ] {
            for args in [
                &["send", path, "x", "--nonblock"][..],
                &["recv", path, "--nonblock"],
                &["stat", path],
            ] {
                let line = dir.run(args).error().to_string();
                assert!(line.contains(says), "{args:?}: {line}");
                assert!(!line.contains("region"), "{args:?}: {line}");
            }
        }
        let probe = dir.write("owner-probe", b"");
        if std::fs::metadata(&probe).unwrap().uid() != 0 {
            eprintln!(
                "skipped the other user's channel: only root can run commands as another user"
            );
            return;
        }
        std::fs::set_permissions(dir.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::set_permissions(c, std::fs::Permissions::from_mode(0o666)).unwrap();
        let as_nobody = |args: &[&str]| {
            let mut cmd = dir.command(args);
            cmd.uid(65534).gid(65534).stdin(Stdio::null());
            finish(cmd.spawn().expect("spawn mapipc as nobody"), None)
        };
        for args in [&["send", c, "x"][..], &["recv", c, "--nonblock"]] {
            let line = as_nobody(args).error().to_string();
            assert!(
                line.contains("belongs to uid 0, not to you (uid 65534)"),
                "{args:?}: {line}"
            );
            assert!(!line.contains("RegionOptions"), "{args:?}: {line}");
        }
        // Looking is fine: stat opens read-only.
        let out = as_nobody(&["stat", c]);
        assert!(!out.ok().stdout.is_empty());
        // A channel the user may not open is a channel, not a "region".
        std::fs::set_permissions(c, std::fs::Permissions::from_mode(0o600)).unwrap();
        for args in [
            &["send", c, "x", "--nonblock"][..],
            &["recv", c, "--nonblock"],
            &["stat", c],
        ] {
            let line = as_nobody(args).error().to_string();
            assert!(
                line.contains(&format!("cannot open channel `{c}`: Permission denied")),
                "{args:?}: {line}"
            );
            assert!(!line.contains("region"), "{args:?}: {line}");
        }
    }
);
