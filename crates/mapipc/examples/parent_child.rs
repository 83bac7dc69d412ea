//! Related processes: the tutorial's first example (a parent and a `fork`ed child sharing
//! a mapping), done right.
//!
//! In the tutorial the child copies a string into a `MAP_SHARED` mapping and the parent
//! calls `wait(NULL)` before reading it: the parent only knows the data is there because the
//! child *exited*. Shared memory carries bytes, not a wake-up. Here:
//!
//! 1. the parent makes a [`Region::anonymous`] before forking (a sealed memfd: the child
//!    inherits the same pages, and nobody can shrink it, so no access can SIGBUS);
//! 2. the child [joins](Region::join) the region's peer table (the kernel holds a lock for
//!    it that is released when the child dies, however it dies), publishes its peer id,
//!    writes a message, [bumps the generation](Region::bump_generation) and notifies through
//!    the region's [notifier word](Region::notify_word);
//! 3. the parent blocks in [`Notifier::wait_until`] until the generation changes: it wakes
//!    up because of the notify, not because the child exited (the child is still alive at
//!    that moment: it waits for the parent's go-ahead before leaving). The wait's `alive`
//!    callback asks the peer table whether the child is still alive, so if the child dies
//!    before writing, the parent gets [`WaitError::PeerGone`] within a check interval
//!    instead of hanging;
//! 4. the parent reads and prints the message, then reaps the child with `waitpid`.
//!
//! Run it with
//!
//! ```text
//! cargo run -p mapipc --example parent_child
//! cargo run -p mapipc --example parent_child -- --child-crashes
//! ```
//!
//! `--child-crashes` makes the child kill itself with `SIGKILL` after joining, without
//! writing or notifying: the parent's wait then ends with `PeerGone` (expected: the example
//! still exits with status 0). Any real failure exits with status 1.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mapipc::region::Region;
use mapipc::sync::{Notifier, WaitError, WaitOptions};

/// The tutorial's message.
const MESSAGE: &[u8] = b"nihao a, son!!!";

// Layout of the region's user data (all offsets relative to it).
/// The child's peer id (`AtomicU32`, 0 until it joined).
const CHILD_ID_AT: u64 = 0;
/// Set to 1 by the parent once it has read the message: the child may exit.
const DONE_AT: u64 = 4;
/// The message length (`u32`).
const LEN_AT: u64 = 8;
/// The message bytes.
const MSG_AT: u64 = 16;
/// Bytes of user data.
const DATA_LEN: usize = 4096;

/// Longest the parent waits for the child (a child that never joins is caught by this; one
/// that joined and died is caught by the liveness check much sooner).
const TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    let crash = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--child-crashes") => true,
        Some(other) => {
            eprintln!("error: unknown argument `{other}` (the only option is --child-crashes)");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(crash) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(crash: bool) -> Result<(), Box<dyn std::error::Error>> {
    let region = Region::anonymous(DATA_LEN)?;
    let seen = region.generation()?;
    println!(
        "parent (pid {}): made an anonymous region ({} bytes of user data, generation {seen})",
        std::process::id(),
        region.len()
    );
    // Nothing buffered may be duplicated into the child.
    std::io::stdout().flush()?;

    // SAFETY: fork has no memory-safety preconditions. This process has a single thread
    // when it forks (no lock can be held by a thread that does not exist in the child), so
    // the child may allocate; it leaves with `_exit` and never returns into `main`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork failed: {}", std::io::Error::last_os_error()).into());
    }
    if pid == 0 {
        let code = child(&region, crash);
        // SAFETY: ends the child at once, without running the parent's destructors or
        // exit handlers a second time.
        unsafe { libc::_exit(code) };
    }
    println!("parent: forked child {pid}; waiting on the region's notifier");

    // The child's liveness, from the region's peer table: alive while its slot lock is held.
    // Before the child has joined (id 0) there is nothing to check yet; the timeout covers a
    // child that dies before joining.
    let child_id = region.atomic_u32(CHILD_ID_AT)?;
    let liveness = region.liveness();
    let alive = || {
        let id = child_id.load(Ordering::Acquire);
        id == 0 || liveness.is_alive(id)
    };
    let mut opts = WaitOptions::new();
    opts.timeout(TIMEOUT)
        .check_interval(Duration::from_millis(20))
        .alive(&alive);
    let notifier = Notifier::new(region.notify_word()?);
    // The predicate: a new generation. `generation()` is an Acquire load, so the message the
    // child wrote before bumping it is visible once the new value is seen.
    let waited = notifier.wait_until(|| region.generation().ok().filter(|&g| g != seen), &opts);
    let result = match waited {
        Ok(generation) => read_message(&region, generation),
        Err(WaitError::PeerGone) => {
            println!(
                "parent: the wait ended with PeerGone: child {pid} (peer {}) died without \
                 writing; no hang",
                child_id.load(Ordering::Acquire)
            );
            if crash {
                Ok(())
            } else {
                Err("the child died before writing its message".into())
            }
        }
        Err(e) => Err(format!("waiting for the child: {e}").into()),
    };
    // Let the child go, whatever happened, then reap it.
    region.atomic_u32(DONE_AT)?.store(1, Ordering::Release);
    notifier.notify_all();
    let (status, exited_ok) = reap(pid)?;
    println!("parent: reaped child {pid}: {status}");
    result?;
    if !crash && !exited_ok {
        return Err(format!("the child failed: {status}").into());
    }
    Ok(())
}

/// Reads and prints the message the child published with generation `generation`.
fn read_message(region: &Region, generation: u64) -> Result<(), Box<dyn std::error::Error>> {
    // The length comes from shared memory: check it before using it.
    let len = region.read_pod::<u32>(LEN_AT)? as usize;
    let room = region.len() - MSG_AT as usize;
    if len > room {
        return Err(format!("the region holds an impossible message length {len}").into());
    }
    let message = region.read_vec(MSG_AT, len)?;
    println!(
        "parent: the wait returned generation {generation} while the child is still alive; \
         read {:?}",
        String::from_utf8_lossy(&message)
    );
    Ok(())
}

/// The child: join, publish the peer id, write, bump, notify, wait to be released.
/// Returns the exit status.
fn child(region: &Region, crash: bool) -> i32 {
    let Ok(peer) = region.join() else { return 10 };
    let Ok(id_word) = region.atomic_u32(CHILD_ID_AT) else {
        return 11;
    };
    id_word.store(peer.id(), Ordering::Release);
    let me = std::process::id();
    if crash {
        println!(
            "child (pid {me}): joined as peer {}; now dying by SIGKILL",
            peer.id()
        );
        let _ = std::io::stdout().flush();
        // SAFETY: raise has no memory-safety preconditions; SIGKILL ends this process.
        unsafe { libc::raise(libc::SIGKILL) };
        return 12;
    }
    let written = region.write_at(MSG_AT, MESSAGE).is_ok()
        && region.write_pod(LEN_AT, &(MESSAGE.len() as u32)).is_ok();
    let Ok(generation) = region.bump_generation() else {
        return 13;
    };
    if !written {
        return 14;
    }
    let Ok(word) = region.notify_word() else {
        return 15;
    };
    let notifier = Notifier::new(word);
    let woke = notifier.notify_all();
    println!(
        "child (pid {me}): joined as peer {}, wrote {:?}, generation -> {generation}, \
         notified ({})",
        peer.id(),
        String::from_utf8_lossy(MESSAGE),
        if woke {
            "the parent was parked: one futex wake"
        } else {
            "the parent was not parked yet: no syscall"
        }
    );
    let _ = std::io::stdout().flush();
    // Stay alive until the parent has read the message: its wake-up came from the notify,
    // not from our exit.
    let Ok(done) = region.atomic_u32(DONE_AT) else {
        return 16;
    };
    let released = notifier.wait_until(
        || (done.load(Ordering::Acquire) == 1).then_some(()),
        WaitOptions::new().timeout(TIMEOUT),
    );
    drop(peer);
    if released.is_ok() {
        0
    } else {
        17
    }
}

/// `waitpid(pid)`: how the child ended, and whether it exited with status 0.
fn reap(pid: libc::pid_t) -> Result<(String, bool), Box<dyn std::error::Error>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid, writable c_int; `pid` is our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitpid({pid}) failed: {err}").into());
        }
    }
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let text = if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    };
    Ok((text, exited_ok))
}
