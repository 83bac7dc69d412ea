//! mapipc's SIGBUS handler calls a handler installed before it the way the kernel would have:
//! with that handler's `sa_mask` blocked, and only once if it was installed with
//! `SA_RESETHAND` (later signals not ours then get the default action); with SIGBUS itself
//! unblocked if it was installed with `SA_NODEFER`.
//!
//! Its own test binary: the handler chain is process-wide state, fixed when the first
//! mapping is made, and the tests need a process where a handler is installed before that.
//! The work happens in forked children, so this process keeps its own disposition.

#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use common::{fork, stderr_to, Exit};
use mapipc::map::MapOptions;
use mapipc::os::sigbus::{foreign_faults, passed_on, PassedOn};

/// Calls of the earlier handler, of those how many ran with SIGUSR1 blocked, and how many
/// with SIGBUS blocked.
static CALLS: AtomicU32 = AtomicU32::new(0);
static MASKED: AtomicU32 = AtomicU32::new(0);
static BUS_BLOCKED: AtomicU32 = AtomicU32::new(0);

/// Whether `sig` is in this thread's blocked mask now.
fn is_blocked(sig: libc::c_int) -> bool {
    // SAFETY: all-zero is a valid out-parameter; a NULL `set` only queries the mask.
    let mut now: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `sigismember` reads the set filled in.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) == 0
            && libc::sigismember(&now, sig) == 1
    }
}

extern "C" fn earlier(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    CALLS.fetch_add(1, Ordering::Relaxed);
    if is_blocked(libc::SIGUSR1) {
        MASKED.fetch_add(1, Ordering::Relaxed);
    }
    if is_blocked(libc::SIGBUS) {
        BUS_BLOCKED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Installs [`earlier`] as the SIGBUS handler (`SA_SIGINFO | flags`, with `masked` in its
/// mask), then maps a file at `path`, which installs mapipc's handler over it. Err: the
/// child's exit code (10: sigaction failed, 11: the mapping).
fn install_earlier_then_map(
    flags: libc::c_int,
    masked: Option<libc::c_int>,
    path: &std::path::Path,
) -> Result<mapipc::map::Mmap, i32> {
    // SAFETY: an all-zero sigaction is valid; the fields set make a SA_SIGINFO handler with
    // the flags and mask asked for.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = earlier as *const () as usize;
        act.sa_flags = libc::SA_SIGINFO | flags;
        libc::sigemptyset(&mut act.sa_mask);
        if let Some(sig) = masked {
            libc::sigaddset(&mut act.sa_mask, sig);
        }
        if libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut()) != 0 {
            return Err(10);
        }
    }
    MapOptions::new()
        .read_write()
        .create(4096)
        .map_path(path)
        .map_err(|_| 11)
}

/// Before the fix the earlier handler ran without its mask (exit 3), and it ran again on
/// the second signal, which was then swallowed (exit 2).
#[test]
fn an_earlier_handler_gets_its_mask_and_resethand() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut child = fork(move || {
        // The earlier handler, with SIGUSR1 in its mask, for one delivery.
        let _map = match install_earlier_then_map(libc::SA_RESETHAND, Some(libc::SIGUSR1), &path) {
            Ok(map) => map,
            Err(code) => return code,
        };
        // SAFETY: plain calls; the signal is not a fault, so mapipc passes it on.
        unsafe { libc::raise(libc::SIGBUS) };
        if CALLS.load(Ordering::Relaxed) != 1 {
            return 4; // the earlier handler was not called
        }
        if MASKED.load(Ordering::Relaxed) != 1 {
            return 3; // called without its mask
        }
        // SA_RESETHAND: the second one gets the default action, termination.
        // SAFETY: as above.
        unsafe { libc::raise(libc::SIGBUS) };
        2
    });
    assert_eq!(child.wait(), Exit::Signal(libc::SIGBUS));
}

/// A handler installed with `SA_NODEFER` runs with SIGBUS unblocked, as the kernel would
/// have run it, and the mask is back as it was after it returns. Before the fix it ran with
/// SIGBUS blocked (exit 3). Each signal passed on is counted as sent (`passed_on`), and
/// nothing is said on stderr, since the process goes on.
#[test]
fn an_earlier_nodefer_handler_runs_with_sigbus_unblocked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let log = dir.path().join("stderr");
    let mut child = fork(|| {
        if let Err(code) = stderr_to(&log) {
            return code;
        }
        // The earlier handler, not deferring SIGBUS while it runs.
        let _map = match install_earlier_then_map(libc::SA_NODEFER, None, &path) {
            Ok(map) => map,
            Err(code) => return code,
        };
        for round in 1..=2 {
            // SAFETY: the signal is not a fault, so mapipc passes it on; the earlier handler
            // returns, so the process goes on.
            unsafe { libc::raise(libc::SIGBUS) };
            if CALLS.load(Ordering::Relaxed) != round {
                return 4; // the earlier handler was not called (each time)
            }
            if BUS_BLOCKED.load(Ordering::Relaxed) != 0 {
                return 3; // SIGBUS was blocked while it ran
            }
            if is_blocked(libc::SIGBUS) {
                return 5; // the mask was not restored
            }
            if passed_on(PassedOn::Sent) != round
                || passed_on(PassedOn::Unregistered) != 0
                || passed_on(PassedOn::NotReplaced) != 0
                || foreign_faults() != round
            {
                return 6; // not counted as sent
            }
        }
        0
    });
    assert_eq!(child.wait(), Exit::Code(0), "6: passed_on miscounted");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
}
