//! Process helpers shared by the integration tests: fork a child that runs a closure (or
//! adopt one started with `Command`), wait for it under a watchdog, kill it; poll a
//! condition under the same limit; guard a whole test with a watchdog thread; a
//! deterministic generator. No assertion here is about time: the watchdog only turns a hang
//! into a failure.
#![allow(dead_code)]

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Longest a child may run, or a condition take, before the watchdog kills the child (or
/// gives up) and fails the test.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `_exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A child process: forked by [`fork`], or spawned with `Command` and [adopted](Child::adopt).
/// Dropping it unreaped kills and reaps it, so a failing test leaves no process behind.
#[derive(Debug)]
pub struct Child {
    pub pid: libc::pid_t,
    /// How it ended, once reaped.
    exit: Option<Exit>,
}

/// Forks; the child runs `f` and `_exit`s with its result (101 if it panicked), never
/// returning into the test harness. `f` must only do simple work: the parent has threads.
pub fn fork(f: impl FnOnce() -> i32) -> Child {
    // SAFETY: `fork` has no memory-safety preconditions; the child runs `f` (simple work on
    // memory prepared by the parent; glibc's allocator is fork-safe) and `_exit`s without
    // running destructors or returning to the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    Child { pid, exit: None }
}

fn decode(status: libc::c_int) -> Exit {
    if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    }
}

impl Child {
    /// Takes over a process started with `std::process::Command` (after taking any pipes it
    /// needs): from now on it is waited for, and killed, like a forked child.
    pub fn adopt(child: std::process::Child) -> Child {
        Child {
            pid: child.id() as libc::pid_t,
            exit: None,
        }
    }

    /// Waits for the child; after [`WATCHDOG`] kills it and panics.
    pub fn wait(&mut self) -> Exit {
        self.wait_or(String::new)
    }

    /// As [`wait`](Self::wait), adding `state()` (for example a channel's counters, taken
    /// before the kill) to the panic message when the watchdog fires, to diagnose the hang.
    pub fn wait_or(&mut self, state: impl Fn() -> String) -> Exit {
        let pid = self.pid;
        self.wait_or_kill_noting(state).unwrap_or_else(|(e, what)| {
            panic!("child {pid} still running after {WATCHDOG:?}: killed ({e:?}); {what}")
        })
    }

    /// Waits for the child; after [`WATCHDOG`] kills it and returns `Err` with how it then
    /// ended, for a caller that wants to say more before failing.
    pub fn wait_or_kill(&mut self) -> Result<Exit, Exit> {
        self.wait_or_kill_noting(String::new).map_err(|(e, _)| e)
    }

    fn wait_or_kill_noting(&mut self, state: impl Fn() -> String) -> Result<Exit, (Exit, String)> {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            if let Some(e) = self.try_wait() {
                return Ok(e);
            }
            if Instant::now() > deadline {
                let what = state();
                return Err((self.kill9(), what));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits and asserts `_exit(0)`.
    pub fn expect_ok(&mut self, what: &str) {
        let e = self.wait();
        assert_eq!(
            e,
            Exit::Code(0),
            "{what}: child {} ended with {e:?}",
            self.pid
        );
    }

    /// Waits for a child that mounted a private tmpfs ([`mount_private_tmpfs`]) and asserts
    /// `_exit(0)`; a child that could not mount it ([`NO_NAMESPACE`], [`NO_MOUNT`]: not
    /// root) is reported as skipped, having checked nothing. `codes` explains the child's
    /// other exit codes in the failure message.
    pub fn expect_ok_unless_no_tmpfs(&mut self, codes: &str) {
        match self.wait() {
            Exit::Code(0) => {}
            Exit::Code(code @ (NO_NAMESPACE | NO_MOUNT)) => {
                eprintln!(
                    "skipped: a private tmpfs could not be mounted (exit {code}: needs root, \
                     CAP_SYS_ADMIN); nothing was checked"
                );
            }
            e => panic!("child ended with {e:?}; {codes}"),
        }
    }

    /// Waits and returns the exit code; fails the test if a signal killed the child.
    pub fn exit_code(&mut self) -> i32 {
        match self.wait() {
            Exit::Code(code) => code,
            Exit::Signal(sig) => panic!("child {} died of signal {sig}", self.pid),
        }
    }

    /// Non-blocking wait: `None` while the child runs, then how it ended (every time).
    pub fn try_wait(&mut self) -> Option<Exit> {
        if self.exit.is_some() {
            return self.exit;
        }
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if r == self.pid {
            self.exit = Some(decode(status));
        }
        self.exit
    }

    fn wait_blocking(&mut self) -> Exit {
        if let Some(e) = self.exit {
            return e;
        }
        let mut status = 0;
        loop {
            // SAFETY: as in `try_wait`.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                let e = decode(status);
                self.exit = Some(e);
                return e;
            }
            assert_eq!(
                std::io::Error::last_os_error().kind(),
                std::io::ErrorKind::Interrupted
            );
        }
    }

    /// `SIGKILL`, then reap. A child already reaped is not signalled (its pid may have been
    /// reused): how it ended is returned.
    pub fn kill9(&mut self) -> Exit {
        if self.exit.is_none() {
            // SAFETY: signalling our own unreaped child (its pid cannot be reused yet).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        self.wait_blocking()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.kill9();
        }
    }
}

/// Guards a whole test, for one whose parent could block where no kill would free it (a
/// futex, a lock, a spin on shared memory): if not dropped within [`WATCHDOG`], it
/// `SIGKILL`s `child` (when given), says which test hung and aborts the test binary.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn new(what: &'static str, child: Option<libc::pid_t>) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                eprintln!(
                    "watchdog: `{what}` hung for {WATCHDOG:?}; killing the child and aborting"
                );
                if let Some(pid) = child {
                    // SAFETY: kill(2) has no memory-safety preconditions; the test that
                    // owns the child is stuck, so it has not reaped it.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::process::abort();
            }
        });
        Watchdog {
            done: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn poll(mut cond: impl FnMut() -> bool, pause: impl Fn()) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > WATCHDOG {
            return false;
        }
        pause();
    }
    true
}

/// Polls `cond`, sleeping 1 ms between tries, until it holds; fails the test after
/// [`WATCHDOG`].
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    let ok = poll(cond, || thread::sleep(Duration::from_millis(1)));
    assert!(
        ok,
        "watchdog: gave up waiting for {what} after {WATCHDOG:?}"
    );
}

/// As [`wait_until`], yielding instead of sleeping: for a wait whose end should follow the
/// condition closely (for example to stop a child soon after it reached some point).
pub fn spin_until(what: &str, cond: impl FnMut() -> bool) {
    let ok = poll(cond, thread::yield_now);
    assert!(
        ok,
        "watchdog: gave up waiting for {what} after {WATCHDOG:?}"
    );
}

/// In a forked child: polls `cond` (1 ms apart) until it holds; `false` after
/// [`WATCHDOG`], for the child to exit with an error code instead of panicking.
pub fn child_wait_until(cond: impl FnMut() -> bool) -> bool {
    poll(cond, || thread::sleep(Duration::from_millis(1)))
}

/// Tests that fork hold this: a child inherits every open file description of the process,
/// and with them the descriptions (locks, peer slots) of other tests running meanwhile,
/// which it would keep alive.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A small deterministic generator (xorshift64*) for test data and random choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Fills `buf` with bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

/// A seed for this run: `MAPIPC_TEST_SEED` if set (to replay a failure), else the time.
pub fn seed() -> u64 {
    std::env::var("MAPIPC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Exit code of a forked child that could not get a mount namespace of its own (see
/// [`mount_private_tmpfs`]).
pub const NO_NAMESPACE: i32 = 77;
/// Exit code of a forked child that could not mount its tmpfs.
pub const NO_MOUNT: i32 = 78;

/// In a forked child: moves it into a mount namespace of its own and mounts a tmpfs of
/// `size` (mount's syntax: `64k`) on `dir`, seen only by this child and the processes it
/// starts; it goes away with them. Needs root (`CAP_SYS_ADMIN`): `Err` with the code to exit
/// with, [`NO_NAMESPACE`] or [`NO_MOUNT`] (which the parent reports as skipped), or another
/// on an unexpected failure.
pub fn mount_private_tmpfs(dir: &std::path::Path, size: &str) -> Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    let mount_point = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| 19)?;
    let options = std::ffi::CString::new(format!("size={size}")).map_err(|_| 19)?;
    // SAFETY: plain syscalls with valid NUL-terminated strings (or NULL where allowed); they
    // change only this (child) process's mount namespace, which dies with it.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            eprintln!("unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error());
            return Err(NO_NAMESPACE);
        }
        // Nothing mounted here may reach the parent's namespace.
        let root = c"/".as_ptr();
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        let null = std::ptr::null();
        if libc::mount(null, root, null, flags, std::ptr::null()) != 0 {
            return Err(20);
        }
        let tmpfs = c"tmpfs".as_ptr();
        if libc::mount(
            tmpfs,
            mount_point.as_ptr(),
            tmpfs,
            0,
            options.as_ptr().cast(),
        ) != 0
        {
            eprintln!("mount -t tmpfs: {}", std::io::Error::last_os_error());
            return Err(NO_MOUNT);
        }
    }
    Ok(())
}

/// Fills the file system of `dir` with a file named `name` until it has no space left
/// (`ENOSPC`); `false` if writing stopped for another reason.
pub fn fill_file_system(dir: &std::path::Path, name: &str) -> bool {
    use std::io::Write;
    let Ok(mut file) = std::fs::File::create(dir.join(name)) else {
        return false;
    };
    let block = [0x5au8; 4096];
    loop {
        if let Err(e) = file.write_all(&block) {
            return e.raw_os_error() == Some(libc::ENOSPC);
        }
    }
}

/// In a forked child: sends this process's stderr (fd 2) to a new file `path` from now on,
/// for the parent to read once the child ended (what the SIGBUS handler says before the
/// process dies of it, for example). `Err(29)` if the file cannot be made.
pub fn stderr_to(path: &std::path::Path) -> Result<(), i32> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::create(path).map_err(|_| 29)?;
    // SAFETY: both fds are open; dup2 makes fd 2 a copy of the file's (closing the old one).
    if unsafe { libc::dup2(file.as_raw_fd(), 2) } != 2 {
        return Err(29);
    }
    Ok(())
}
