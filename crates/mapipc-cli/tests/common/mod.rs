//! What every CLI test file shares: a fresh temporary directory per test, running the
//! built `mapipc` binary as a real process under a watchdog that kills it after
//! [`TIMEOUT`] and fails the test, and assertions on the one-line error contract.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Generous: these processes take milliseconds; the limit only catches hangs.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Kills a process that is still running after [`TIMEOUT`]; `finish` fails the test then.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn new(pid: u32) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(TIMEOUT) {
                flag.store(true, Ordering::SeqCst);
                // SAFETY: kill(2) with a pid and a signal number has no memory-safety
                // preconditions; the pid is our unreaped child, so it cannot be recycled.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        });
        Watchdog {
            done: Some(done),
            fired,
            thread: Some(thread),
        }
    }

    /// Stops the watchdog; panics if it had to kill the process.
    pub fn finish(mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            t.join().expect("watchdog thread");
        }
        assert!(
            !self.fired.load(Ordering::SeqCst),
            "the process did not finish within {TIMEOUT:?} and was killed"
        );
    }
}

/// What a finished process left.
pub struct Out {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts success with empty stderr.
    pub fn ok(&self) -> &Self {
        assert!(
            self.status.success() && self.stderr.is_empty(),
            "expected success, got {:?}\nstderr: {}",
            self.status,
            self.stderr
        );
        self
    }

    /// Asserts a runtime error: status 1 (not a signal), and stderr is exactly one line
    /// `error: ...`. Returns that line.
    pub fn error(&self) -> &str {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit status 1, got {:?} (signal {:?})\nstderr: {}",
            self.status,
            self.status.signal(),
            self.stderr
        );
        assert_one_error_line(&self.stderr);
        self.stderr.trim_end()
    }

    /// Asserts a usage error: status 2, clap's message with one `error:` line.
    pub fn usage_error(&self) -> &str {
        assert_eq!(
            self.status.code(),
            Some(2),
            "expected usage error, got {:?}\nstderr: {}",
            self.status,
            self.stderr
        );
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        assert_eq!(
            self.stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1,
            "{}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        &self.stderr
    }
}

pub fn assert_one_error_line(stderr: &str) {
    assert!(
        stderr.starts_with("error: ") && stderr.ends_with('\n') && stderr.lines().count() == 1,
        "expected exactly one line `error: ...`, got:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A fresh temporary directory, the working directory of every command run from it.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("mapipc-cli-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mapipc"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `mapipc ARGS` with no standard input.
    pub fn run(&self, args: &[&str]) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        finish(cmd.spawn().expect("spawn mapipc"), None)
    }

    /// Runs `mapipc ARGS` with `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        finish(cmd.spawn().expect("spawn mapipc"), Some(input.to_vec()))
    }

    /// Runs `mapipc ARGS` with standard input read from `file` (`/dev/zero`: endless).
    pub fn run_with_stdin_from(&self, args: &[&str], file: &str) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(std::fs::File::open(file).expect("open the input file"));
        finish(cmd.spawn().expect("spawn mapipc"), None)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }
}

/// Feeds stdin, collects stdout and stderr, waits, all under a watchdog.
pub fn finish(mut child: Child, input: Option<Vec<u8>>) -> Out {
    let dog = Watchdog::new(child.id());
    let feeder = match (child.stdin.take(), input) {
        (Some(mut stdin), Some(input)) => Some(thread::spawn(move || {
            // The child may legitimately exit without reading everything.
            let _ = stdin.write_all(&input);
        })),
        _ => None,
    };
    let output = child.wait_with_output().expect("wait for mapipc");
    dog.finish();
    if let Some(f) = feeder {
        f.join().expect("stdin feeder");
    }
    Out {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Bytes with no period that divides a page, so misplaced offsets show.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// `clitest!(name, |dir| { ... })`: a test with a fresh [`TestDir`].
#[macro_export]
macro_rules! clitest {
    ($name:ident, |$dir:ident| $body:block) => {
        #[test]
        fn $name() {
            let $dir = TestDir::new();
            $body
        }
    };
}
