//! The harness's process plumbing: `fork`, `_exit`, `pidfd_open`, `pidfd_send_signal`,
//! `waitid(P_PIDFD)`, `prctl(PR_SET_PDEATHSIG)`, `pthread_sigmask`, `pipe2`. This is the only
//! file of the crate that makes system calls (through `libc` and `rustix`); it has no
//! counterpart in `mapipc::os` because only a benchmark harness forks itself.
//!
//! A forked child is held by a [`Child`]: a pidfd, opened right after the fork, through
//! which it is signalled and reaped. A bare pid would not do: once something else in the
//! process reaps the child (a `waitpid(-1)` elsewhere, a SIGCHLD handler), its pid is free
//! and may be given to an unrelated process, which a `kill(pid)` would then hit. A pidfd
//! stays bound to our child: signalling it after it was reaped fails with `ESRCH`. Needs
//! Linux 5.4 (`pidfd_open` is 5.3, `waitid(P_PIDFD)` 5.4).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

/// What `fork` returned in this process.
pub(crate) enum Forked {
    /// We are the child.
    Child,
    /// We are the parent; the child, held by its pidfd.
    Parent(Child),
}

/// `fork()`, then, in the parent, [`Child::open`] on the new child. If that fails (too many
/// open files, a kernel older than 5.4), the child is killed by its pid and reaped, and the
/// error returned: the child cannot have been reaped by anyone else yet unless something
/// else in the process waits for any child, which is the one case a pidfd guards against
/// afterwards and cannot guard against here.
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
        p => match Child::open(p as u32) {
            Ok(child) => Ok(Forked::Parent(child)),
            Err(e) => {
                // SAFETY: kill(2) with a pid and a signal number has no memory-safety
                // preconditions; `p` is the child just forked (see the doc above).
                unsafe { libc::kill(p, libc::SIGKILL) };
                let mut status = 0;
                // SAFETY: `status` is a valid out-pointer for the duration of the call.
                while unsafe { libc::waitpid(p, &mut status, 0) } == -1
                    && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                {
                }
                Err(io::Error::new(
                    e.kind(),
                    format!("cannot open a pidfd for the forked child {p}: {e}"),
                ))
            }
        },
    }
}

/// A child process of ours, held by a pidfd: [`Child::kill`] can only reach this child
/// (never a process that was given its pid after it was reaped), and [`Child::wait`] reaps
/// it through the same descriptor.
#[derive(Debug)]
pub(crate) struct Child {
    fd: OwnedFd,
}

impl Child {
    /// `pidfd_open(pid)`, then a check that the process is our child (a non-blocking,
    /// non-reaping `waitid(P_PIDFD)`, which fails with `ECHILD` for any other process): a
    /// pid that was reaped by something else and given to another process is refused.
    pub(crate) fn open(pid: u32) -> io::Result<Child> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a pid"))?;
        let fd = rustix::process::pidfd_open(raw, PidfdFlags::empty())?;
        let child = Child { fd };
        child.waitid(WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG)?;
        Ok(child)
    }

    /// `pidfd_send_signal(SIGKILL)`. Once the child has been reaped (by [`Child::wait`] or
    /// by anything else), this fails with `ESRCH` and signals nobody.
    pub(crate) fn kill(&self) -> io::Result<()> {
        Ok(rustix::process::pidfd_send_signal(
            self.fd.as_fd(),
            Signal::KILL,
        )?)
    }

    /// `waitid(P_PIDFD, WEXITED)`, not blocking when `block == false`: reaps the child if it
    /// has ended and says how; `None` while it runs. Fails with `ECHILD` when something else
    /// reaped it.
    pub(crate) fn wait(&self, block: bool) -> io::Result<Option<ChildStatus>> {
        self.waitid(if block {
            WaitIdOptions::empty()
        } else {
            WaitIdOptions::NOHANG
        })
    }

    fn waitid(&self, options: WaitIdOptions) -> io::Result<Option<ChildStatus>> {
        loop {
            match rustix::process::waitid(
                WaitId::PidFd(self.fd.as_fd()),
                WaitIdOptions::EXITED | options,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(None) => return Ok(None),
                Ok(Some(st)) => {
                    return Ok(Some(match st.terminating_signal() {
                        Some(sig) => ChildStatus::Signaled(sig),
                        None => ChildStatus::Exited(st.exit_status().unwrap_or(0)),
                    }))
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Forks a child that sleeps until it is killed (or this test's thread ends).
    fn fork_sleeper() -> u32 {
        let parent = std::process::id();
        // SAFETY: the child makes only async-signal-safe calls (prctl, getppid, pause, _exit).
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            0 => {
                if die_with_parent(parent) {
                    loop {
                        // SAFETY: pause has no preconditions.
                        unsafe { libc::pause() };
                    }
                }
                exit_child(0)
            }
            pid => pid as u32,
        }
    }

    /// Kills and reaps `pid` by its number, as code other than the harness would.
    fn kill_and_reap_by_pid(pid: u32) {
        let mut status = 0;
        // SAFETY: plain syscalls; `pid` is an unreaped child of this process.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, &mut status, 0);
        }
    }

    #[test]
    fn kill_never_reaches_a_process_given_a_reaped_childs_pid() {
        // The kernel hands a freed pid out again only after the whole pid space went round,
        // unless told where to continue: /proc/sys/kernel/ns_last_pid (root only).
        const LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";
        if std::fs::OpenOptions::new()
            .write(true)
            .open(LAST_PID)
            .is_err()
        {
            eprintln!("skipped: {LAST_PID} is not writable (not root)");
            return;
        }
        // Other processes on the machine may take the pid first: try again then.
        for _ in 0..100 {
            let a = fork_sleeper();
            let child = Child::open(a).expect("pidfd of our child");
            // Something else in the process reaps it: its pid is free.
            kill_and_reap_by_pid(a);
            // Root in a container may open it and still not be allowed to write it.
            if let Err(e) = std::fs::write(LAST_PID, (a - 1).to_string()) {
                eprintln!("skipped: cannot write {LAST_PID}: {e}");
                drop(child);
                return;
            }
            let b = fork_sleeper();
            if b != a {
                kill_and_reap_by_pid(b);
                continue;
            }
            // `b` now holds the pid `a` had. The harness kills its (gone) child.
            let killed = child.kill();
            // `b` is ended with SIGTERM: a SIGKILL that reached it first (it is delivered
            // asynchronously) would have decided how it died.
            let mut status = 0;
            // SAFETY: plain syscalls; `status` is a valid out-pointer; `b` is our unreaped
            // child.
            unsafe {
                libc::kill(b as libc::pid_t, libc::SIGTERM);
                libc::waitpid(b as libc::pid_t, &mut status, 0);
            }
            assert_eq!(
                libc::WTERMSIG(status),
                libc::SIGTERM,
                "killing the reaped child killed the process given its pid ({b})"
            );
            assert_eq!(
                killed.map_err(|e| e.raw_os_error()),
                Err(Some(libc::ESRCH)),
                "a kill of a reaped child reaches nobody"
            );
            assert_eq!(
                child.wait(false).map_err(|e| e.raw_os_error()),
                Err(Some(libc::ECHILD)),
                "the wait says that something else reaped it"
            );
            // And a pid that is not our child is refused.
            assert!(Child::open(1).is_err(), "pid 1 is not our child");
            return;
        }
        panic!("the pid of a reaped child was never given out again in 100 tries");
    }

    #[test]
    fn wait_reports_how_the_child_ended() {
        let a = fork_sleeper();
        let child = Child::open(a).expect("pidfd of our child");
        assert_eq!(child.wait(false).unwrap(), None, "still running");
        child.kill().unwrap();
        assert_eq!(
            child.wait(true).unwrap(),
            Some(ChildStatus::Signaled(libc::SIGKILL))
        );
        // Reaped: the pidfd reaches nobody now.
        assert_eq!(
            child.kill().map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH))
        );
    }
}
