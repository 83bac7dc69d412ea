//! Calls that are the same on every Unix (POSIX, through rustix), shared by the Linux
//! implementation and the stub of other platforms, which both re-export them from their
//! `process` module.

/// `geteuid()`.
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("mine");
/// std::fs::write(&path, b"")?;
/// assert_eq!(mapipc::os::file::stat(&path)?.uid, mapipc::os::process::euid());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// `kill(pid, 0)`: whether a process with this pid exists.
///
/// Not a liveness check, and mapipc itself never uses it as one (peer liveness comes from
/// the region's slot locks, see [`region`](crate::region)): it is only used by tests.
/// - A **zombie** exists: a child that died but was not reaped yet (`waitpid`) still makes
///   this return `true`, so a parent polling its own dead child with it waits until it reaps
///   the child. Reap first, or use the region's peer table.
/// - The pid may belong to a different process than the one that once had it (pids are
///   reused).
/// - `EPERM` (the process exists but belongs to another user) counts as existing.
///
/// # Example
/// ```
/// use mapipc::os::process::{pid, pid_exists};
/// assert!(pid_exists(pid()));
/// assert!(!pid_exists(i32::MAX as u32)); // above any pid_max
/// ```
pub fn pid_exists(pid: u32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    match rustix::process::test_kill_process(p) {
        Ok(()) => true,
        Err(rustix::io::Errno::PERM) => true,
        Err(_) => false,
    }
}
