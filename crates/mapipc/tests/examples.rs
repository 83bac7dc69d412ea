//! Runs the programs in `crates/mapipc/examples/` as real processes and checks their exit
//! status and output, each under a watchdog that kills a hung example and fails the test.
//!
//! The example binaries live next to this test's: `target/<profile>/examples/` is
//! `current_exe()/../../examples/`. `cargo test` builds examples but does not run them, and
//! `cargo test --test examples` does not even build them (a binary left there could be stale),
//! so when run by cargo (`CARGO` set) this file first runs
//! `cargo build -p mapipc --examples` for the same profile and target directory, once: a
//! no-op when they are current. Run directly without cargo, it uses the binaries that are
//! there and says how to build them if they are missing.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;

use common::{wait_until, Exit, WATCHDOG};
use mapipc::region::Region;
use mapipc::sync::Notifier;

/// `target/<profile>/examples`, with the examples built for this profile.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/examples-HASH
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps");
        if let Ok(cargo) = std::env::var("CARGO") {
            build_examples(&cargo, profile_dir);
        }
        profile_dir.join("examples")
    })
}

/// `cargo build -p mapipc --examples` into the same profile directory as this test.
fn build_examples(cargo: &str, profile_dir: &Path) {
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name");
    let target_dir = profile_dir.parent().expect("target directory");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "mapipc", "--examples"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        // `dev` and `test` both build into `debug`.
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build --examples");
    assert!(
        out.status.success(),
        "building the examples failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn example(name: &str) -> PathBuf {
    let path = examples_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the examples first (`cargo build -p mapipc --examples`, or run \
         this test through cargo)",
        path.display()
    );
    path
}

/// What a finished example left.
#[derive(Debug)]
struct Out {
    status: Exit,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts exit status 0 and an empty stderr; returns stdout.
    fn ok(&self) -> &str {
        assert!(
            self.status == Exit::Code(0) && self.stderr.is_empty(),
            "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts exit status 1 (not a signal) and a single `error:` line; returns it.
    fn error(&self) -> &str {
        assert_eq!(
            self.status,
            Exit::Code(1),
            "expected exit status 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.starts_with("error: ") && self.stderr.lines().count() == 1,
            "expected one `error:` line, got:\n{}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self.stderr.trim_end()
    }
}

/// Starts example `name` with `args` in `dir`, stdout and stderr piped.
fn spawn(name: &str, args: &[&str], dir: &Path) -> Child {
    Command::new(example(name))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"))
}

/// Waits for `child` and collects its output; kills it and fails after [`WATCHDOG`].
fn finish(mut child: Child) -> Out {
    let stdout = read_in_background(child.stdout.take().expect("piped stdout"));
    let stderr = read_in_background(child.stderr.take().expect("piped stderr"));
    let status = common::Child::adopt(child).wait_or_kill();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let status = status.unwrap_or_else(|e| {
        panic!(
            "the example did not finish within {WATCHDOG:?} and was killed ({e:?})\n\
             stdout:\n{stdout}"
        )
    });
    Out {
        status,
        stdout,
        stderr,
    }
}

/// Reads `pipe` to its end on a thread of its own (so that neither pipe fills up and blocks
/// the example while the other is read).
fn read_in_background(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn run(name: &str, args: &[&str], dir: &Path) -> Out {
    finish(spawn(name, args, dir))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mapipc-examples-")
        .tempdir()
        .expect("tempdir")
}

// ---------------------------------------------------------------------------------------
// parent_child

#[test]
fn parent_child_parent_reads_the_message_after_the_notify() {
    let dir = tempdir();
    let out = run("parent_child", &[], dir.path());
    let text = out.ok();
    assert!(text.contains("waiting on the region's notifier"), "{text}");
    assert!(
        text.contains("child (pid") && text.contains("generation -> 1, notified"),
        "{text}"
    );
    assert!(
        text.contains(
            "parent: the wait returned generation 1 while the child is still alive; \
             read \"nihao a, son!!!\""
        ),
        "{text}"
    );
    assert!(text.contains(": exit status 0"), "{text}");
    // The parent read before it reaped.
    let read = text.find("read \"nihao").unwrap();
    let reaped = text.find("parent: reaped child").unwrap();
    assert!(read < reaped, "{text}");
}

#[test]
fn parent_child_crashed_child_gives_peer_gone_not_a_hang() {
    let dir = tempdir();
    let out = run("parent_child", &["--child-crashes"], dir.path());
    let text = out.ok();
    assert!(text.contains("now dying by SIGKILL"), "{text}");
    assert!(text.contains("the wait ended with PeerGone"), "{text}");
    assert!(
        text.contains(&format!("killed by signal {}", libc::SIGKILL)),
        "{text}"
    );
    assert!(!text.contains("nihao"), "nothing was written: {text}");
}

#[test]
fn parent_child_rejects_unknown_arguments() {
    let dir = tempdir();
    let out = run("parent_child", &["--bogus"], dir.path());
    assert_eq!(out.status, Exit::Code(2), "{out:?}");
    assert!(out.stderr.contains("--bogus"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// unrelated_reader + unrelated_writer

#[test]
fn unrelated_reader_first_blocks_until_the_writer_notifies() {
    let dir = tempdir();
    let path = dir.path().join("r");
    let p = path.to_str().unwrap();
    let reader = spawn("unrelated_reader", &[p, "--timeout", "60"], dir.path());
    // Wait until the reader is parked on the region's notifier: then it is really blocked,
    // and only the writer's notify can wake it.
    let mut region = None;
    wait_until("the reader to create the region", || {
        region = Region::open(&path).ok();
        region.is_some()
    });
    let region = region.unwrap();
    let word = region.notify_word().unwrap();
    wait_until("the reader to park", || Notifier::new(word).waiters() >= 1);
    assert_eq!(region.generation().unwrap(), 0);

    let out = run("unrelated_writer", &[p, "across processes"], dir.path());
    let text = out.ok();
    assert!(text.contains("opened region"), "the reader made it: {text}");
    assert!(
        text.contains("generation -> 1") && text.contains("woke it"),
        "{text}"
    );

    let out = finish(reader);
    let text = out.ok();
    assert!(text.contains("created region"), "{text}");
    assert!(text.contains("waiting on the region's notifier"), "{text}");
    assert!(
        text.contains("reader: generation 1: \"across processes\""),
        "{text}"
    );
    assert!(text.contains("reader: removed"), "{text}");
    assert!(!path.exists(), "the reader removes the region");
}

#[test]
fn unrelated_writer_first_then_reader_in_dev_shm() {
    let dir = tempdir();
    // A bare name: /dev/shm/NAME. Unique per test run.
    let name = format!("mapipc-examples-test-{}", std::process::id());
    let shm = Path::new("/dev/shm").join(&name);
    let _cleanup = RemoveOnDrop(shm.clone());
    let out = run("unrelated_writer", &[&name], dir.path());
    let text = out.ok();
    assert!(
        text.contains("created region") && text.contains("nobody was parked"),
        "{text}"
    );
    assert!(shm.exists(), "the region stays for the reader");

    let out = run("unrelated_reader", &[&name, "--timeout", "60"], dir.path());
    let text = out.ok();
    assert!(text.contains("already written (generation 1)"), "{text}");
    assert!(
        text.contains("reader: generation 1: \"hello from an unrelated process\""),
        "{text}"
    );
    assert!(!shm.exists(), "the reader removes {}", shm.display());
}

/// Removes a file when dropped, so that a failing test leaves nothing in /dev/shm.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn unrelated_reader_times_out_keeps_on_request_and_next_ignores_old_data() {
    let dir = tempdir();
    let path = dir.path().join("r");
    let p = path.to_str().unwrap();
    // Nobody writes: exit 1 after the timeout, the region kept because of --keep.
    let out = run(
        "unrelated_reader",
        &[p, "--timeout", "0.05", "--keep"],
        dir.path(),
    );
    assert!(out.error().contains("no writer wrote"), "{out:?}");
    assert!(out.stdout.contains("kept"), "{}", out.stdout);
    assert!(path.exists());

    run("unrelated_writer", &[p, "first"], dir.path()).ok();
    // --next: the write that is already there does not count.
    let out = run(
        "unrelated_reader",
        &[p, "--next", "--timeout", "0.05", "--keep"],
        dir.path(),
    );
    assert!(out.error().contains("no writer wrote"), "{out:?}");
    // Without --next it is read, and the region removed.
    let out = run("unrelated_reader", &[p], dir.path());
    assert!(
        out.ok().contains("generation 1: \"first\""),
        "{}",
        out.stdout
    );
    assert!(!path.exists());

    // A timeout without --keep removes the region it created.
    let out = run("unrelated_reader", &[p, "--timeout", "0.01"], dir.path());
    out.error();
    assert!(!path.exists());
}

#[test]
fn unrelated_examples_refuse_bad_regions_and_names() {
    let dir = tempdir();
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0x5au8; 8192]).unwrap();
    let g = garbage.to_str().unwrap();
    for name in ["unrelated_reader", "unrelated_writer"] {
        let out = run(name, &[g], dir.path());
        let line = out.error();
        assert!(line.contains("garbage"), "names the file: {line}");
        assert!(
            garbage.exists(),
            "a file that is not a region is left alone"
        );
        let out = run(name, &["a..b"], dir.path());
        assert!(out.error().contains("`a..b`"), "{:?}", out.stderr);
    }
    let out = run("unrelated_reader", &[g, "--timeout", "soon"], dir.path());
    assert_eq!(out.status, Exit::Code(2), "{out:?}");
    let big = "x".repeat(5000);
    let p = dir.path().join("r");
    let out = run("unrelated_writer", &[p.to_str().unwrap(), &big], dir.path());
    assert!(out.error().contains("5000 bytes"), "{:?}", out.stderr);
}
