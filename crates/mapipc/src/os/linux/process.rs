//! Process identity and signals: `getpid`, `geteuid`, `kill`, clocks.

use std::io;

pub use crate::os::posix::{euid, pid_exists};

/// `getpid()`.
///
/// # Example
/// ```
/// use mapipc::os::process;
/// assert_eq!(process::pid(), std::process::id());
/// assert!(process::pid_exists(process::pid()));
/// ```
pub fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// `kill(pid, SIGKILL)`.
///
/// # Example
/// ```
/// use std::os::unix::process::ExitStatusExt;
/// let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
/// mapipc::os::process::kill9(child.id())?;
/// assert_eq!(child.wait()?.signal(), Some(9));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn kill9(pid: u32) -> io::Result<()> {
    let p = rustix::process::Pid::from_raw(pid as i32)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::kill_process(
        p,
        rustix::process::Signal::KILL,
    )?)
}

/// `clock_gettime(CLOCK_REALTIME)` in nanoseconds since the epoch.
///
/// # Example
/// ```
/// use std::time::UNIX_EPOCH;
/// let before = UNIX_EPOCH.elapsed().unwrap().as_nanos() as u64;
/// let now = mapipc::os::process::realtime_ns();
/// assert!(now >= before - 1_000_000_000); // the same clock as SystemTime (give or take a step)
/// ```
pub fn realtime_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds.
///
/// # Example
/// ```
/// use mapipc::os::process;
/// let a = process::monotonic_ns();
/// let b = process::monotonic_ns();
/// assert!(b >= a); // never goes back
/// let c = process::monotonic_coarse_ns();
/// assert!(process::monotonic_coarse_ns() >= c);
/// ```
pub fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// `clock_gettime(CLOCK_MONOTONIC_COARSE)` in nanoseconds: the same clock as
/// [`monotonic_ns`], read without the hardware counter (a few ns against ~25 in a VM) and
/// advancing only at the kernel's tick (1 to 10 ms). For rate limits that run on every poll,
/// never for deadlines.
///
/// # Example
/// See [`monotonic_ns`].
pub fn monotonic_coarse_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// `sched_yield()`.
///
/// # Example
/// ```
/// let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
/// let f = flag.clone();
/// let t = std::thread::spawn(move || f.store(true, std::sync::atomic::Ordering::Release));
/// while !flag.load(std::sync::atomic::Ordering::Acquire) {
///     mapipc::os::process::yield_now(); // let the other thread run
/// }
/// t.join().unwrap();
/// ```
pub fn yield_now() {
    rustix::thread::sched_yield();
}

/// `sched_setaffinity(0, {cpu})`: pins the calling thread to one CPU. Returns `false` when
/// the CPU does not exist or the call is refused.
///
/// # Example
/// ```
/// use mapipc::os::process;
/// let cpus = process::available_cpus();
/// assert!(cpus >= 1);
/// // In a thread of its own, so the pinning does not outlive the example.
/// std::thread::spawn(|| {
///     assert!(!process::pin_to_cpu(1 << 20)); // no such CPU
///     if process::pin_to_cpu(0) {
///         assert_eq!(process::available_cpus(), 1);
///     }
/// })
/// .join()
/// .unwrap();
/// ```
pub fn pin_to_cpu(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    if cpu >= rustix::thread::CpuSet::MAX_CPU {
        return false;
    }
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}

/// Number of CPUs this process may run on (`sched_getaffinity`).
///
/// # Example
/// See [`pin_to_cpu`].
pub fn available_cpus() -> usize {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => set.count() as usize,
        Err(_) => 1,
    }
}

/// Sleeps for `d` (`clock_nanosleep(CLOCK_MONOTONIC)`, resumed after signals until the whole
/// duration has passed).
///
/// # Example
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// mapipc::os::process::sleep(Duration::from_millis(2));
/// assert!(start.elapsed() >= Duration::from_millis(2)); // at least, never less
/// ```
pub fn sleep(d: std::time::Duration) {
    let mut req = rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    };
    loop {
        match rustix::thread::clock_nanosleep_relative(rustix::thread::ClockId::Monotonic, &req) {
            rustix::thread::NanosleepRelativeResult::Interrupted(rem) => req = rem,
            _ => return,
        }
    }
}

/// Ignores `SIGXFSZ` for the whole process: a write, `fallocate` or `ftruncate` past the
/// file-size limit (`ulimit -f`) then fails with `EFBIG`, reported as an error, instead of
/// killing the process. For programs (the `mapipc` tool calls it first thing); a library
/// does not change a process's signal dispositions behind its back.
///
/// # Errors
/// When `sigaction` fails (not expected for this signal).
///
/// # Example
/// ```
/// // At the start of a program that writes files (a doctest is its own process).
/// mapipc::os::process::ignore_sigxfsz()?;
/// let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
/// // SAFETY: a null new action only reads the current one into `old`.
/// assert_eq!(unsafe { libc::sigaction(libc::SIGXFSZ, std::ptr::null(), old.as_mut_ptr()) }, 0);
/// // SAFETY: initialised by the successful call above.
/// assert_eq!(unsafe { old.assume_init() }.sa_sigaction, libc::SIG_IGN);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn ignore_sigxfsz() -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags); setting its
    // handler to SIG_IGN and installing it for SIGXFSZ touches no memory of ours afterwards.
    let rc = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGXFSZ, &act, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes sure the children this process forks stay waitable: when `SIGCHLD` is ignored
/// (`SIG_IGN`, which a program inherits across `exec` from a parent that ignored it) or its
/// action has `SA_NOCLDWAIT`, the kernel reaps children by itself and `waitpid` fails with
/// `ECHILD`, so a parent can learn neither how a child ended nor whether it did. `SIG_IGN`
/// becomes `SIG_DFL` (which also ignores the signal, but keeps zombies for `waitpid`); a
/// handler keeps its function, mask and other flags, without `SA_NOCLDWAIT`. Any other
/// disposition is left alone. For programs that fork (the `mapipc` tool calls it first
/// thing, the benchmark harness before forking its servers); a library does not change a
/// process's signal dispositions behind its back.
///
/// # Errors
/// When `sigaction` fails (not expected for this signal).
///
/// # Example
/// ```
/// mapipc::os::process::keep_children_waitable()?;
/// let status = std::process::Command::new("true").status()?;
/// assert!(status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn keep_children_waitable() -> io::Result<()> {
    // SAFETY: `old` is a valid out-pointer for `sigaction`, and an all-zero `sigaction` is a
    // valid value to pass as one; `new` is a copy of the current action with only the
    // handler (SIG_IGN -> SIG_DFL) or the SA_NOCLDWAIT flag changed, so installing it
    // installs nothing that was not installed before (or the default action).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) == -1 {
            return Err(io::Error::last_os_error());
        }
        let ignored = old.sa_sigaction == libc::SIG_IGN;
        let no_wait = old.sa_flags & libc::SA_NOCLDWAIT != 0;
        if !ignored && !no_wait {
            return Ok(());
        }
        let mut new = old;
        if ignored {
            new.sa_sigaction = libc::SIG_DFL;
        }
        new.sa_flags &= !libc::SA_NOCLDWAIT;
        if libc::sigaction(libc::SIGCHLD, &new, std::ptr::null_mut()) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
