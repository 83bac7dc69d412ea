//! The harness's process plumbing: `fork`, `_exit`, `waitpid`, `prctl(PR_SET_PDEATHSIG)`,
//! `pthread_sigmask`, `pipe2`. This is the only file of the crate that calls `libc`; it has no counterpart in
//! `mapipc::os` because only a benchmark harness forks itself.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// What `fork` returned in this process.
pub(crate) enum Forked {
    /// We are the child.
    Child,
    /// We are the parent; the child's pid.
    Parent(u32),
}

/// `fork()`.
///
/// # Safety
/// The child may only do simple, async-signal-safe-ish work on data prepared before the call
/// (no locks another thread could have held, ideally no allocation) and must end with
/// [`exit_child`], never returning into the caller's stack frames.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: `fork` has no memory-safety preconditions of its own; the obligations on what
    // the child does afterwards are the caller's (see `# Safety`).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p as u32)),
    }
}

/// `_exit(code)`: ends the child without running atexit handlers or destructors, which
/// belong to the parent's copy of the program.
pub(crate) fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)` then `getppid() == parent`: the child is killed when the
/// thread that forked it ends, so a busy-spinning child never outlives a killed harness.
/// Returns false when the parent is already gone.
pub(crate) fn die_with_parent(parent: u32) -> bool {
    // SAFETY: plain syscalls with integer arguments.
    let ok = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } == 0;
    // SAFETY: as above.
    ok && unsafe { libc::getppid() } as u32 == parent
}

/// `pthread_sigmask(SIG_BLOCK, {SIGPIPE})` for the calling thread (and so for a child it
/// forks): a write to a pipe or socket whose reader died then fails with `EPIPE` instead of
/// killing the process, whatever the program's SIGPIPE disposition (a CLI may restore the
/// default to behave well in shell pipelines). SIGPIPE is sent to the writing thread, so
/// blocking it there is enough; the pending signal is discarded when the thread ends.
pub(crate) fn block_sigpipe() -> io::Result<()> {
    // SAFETY: `set` is initialised by `sigemptyset` before use; both pointers are valid for
    // the calls (the old mask is not requested).
    let r = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl std::fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildStatus::Exited(c) => write!(f, "exited with status {c}"),
            ChildStatus::Signaled(s) => write!(f, "was killed by signal {s}"),
        }
    }
}

/// `waitpid(pid, WNOHANG)` (`block == false`) or `waitpid(pid, 0)`: reaps the child if it has
/// ended; `None` while it runs.
pub(crate) fn wait_child(pid: u32, block: bool) -> io::Result<Option<ChildStatus>> {
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, flags) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        return Ok(Some(if libc::WIFSIGNALED(status) {
            ChildStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ChildStatus::Exited(libc::WEXITSTATUS(status))
        }));
    }
}

/// `pipe2(O_CLOEXEC)`: the (read, write) ends.
pub(crate) fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors the call writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by `pipe2` and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(r), File::from(w)))
}
