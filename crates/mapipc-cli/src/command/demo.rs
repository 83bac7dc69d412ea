//! `mapipc demo`: the tutorial's two IPC scenarios, done with shared regions and notifiers
//! (no waiting for the writer to exit), then a channel; each step narrated.
//!
//! 1. Related processes: a [`Region::anonymous`] made before `fork`; the child joins the
//!    peer table, writes, bumps the generation and notifies; the parent sleeps on the
//!    region's [`Notifier`], with the child's liveness as the wait's `alive` check, reads
//!    the message while the child is still alive, then releases and reaps it.
//! 2. Unrelated processes: a named region in a temporary directory; this process sleeps on
//!    its notifier while a separate `mapipc region write` process (this same executable)
//!    writes and notifies.
//! 3. A channel: a separate `mapipc send` process sends messages that this process
//!    receives through [`mapipc::channel`].
//!
//! The narration is printed by this process only, from what it observed or read from the
//! shared memory, so its order does not depend on scheduling.
//!
//! The temporary directory (`$TMPDIR/mapipc-demo-XXXXXX`) is removed at the end, on an
//! error, and on `SIGINT`, `SIGTERM` or `SIGHUP`. A demo killed by `SIGKILL` (or a crash)
//! cannot remove it: the next demo does. Each demo holds an exclusive `flock` on the file
//! [`OWNER_LOCK`] in its directory for as long as it runs (the kernel drops it when the
//! process dies, however it dies); a directory whose lock can be taken has no live owner.
//! See [`remove_stale_dirs`] for what exactly is removed.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mapipc::channel::Channel;
use mapipc::region::Region;
use mapipc::sync::{Notifier, WaitError, WaitOptions};

use super::shown;
use crate::cli::DemoArgs;

/// The longest any step may wait for another process; only a broken system reaches it.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `mapipc demo`.
pub fn run(_args: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "mapipc demo: processes sharing memory, and waking each other up (pid {})",
        std::process::id()
    )?;
    for (stale, owner) in remove_stale_dirs(&std::env::temp_dir()) {
        writeln!(
            out,
            "removed {}, left behind by an earlier demo{} that ended without removing it",
            shown(stale.display()),
            owner.map_or(String::new(), |pid| format!(" (pid {pid})"))
        )?;
    }
    related_processes(out)?;
    // An error removes the directory (its `Drop`); a signal would end us without that. The
    // signals wait while the directory is made and the handler installed, so that one
    // arriving in between finds the handler ready.
    let (dir, _owner_lock) = with_exit_signals_blocked(|| {
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .context("cannot create a temporary directory")?;
        remove_on_signal(dir.path())?;
        let lock = lock_as_owner(dir.path()).with_context(|| {
            format!(
                "cannot create the owner lock of the temporary directory {}",
                shown(dir.path().display())
            )
        })?;
        Ok((dir, lock))
    })?;
    let ran = unrelated_processes(out, dir.path()).and_then(|()| channel(out, dir.path()));
    let shown = shown(dir.path().display());
    // Disarmed only once the directory is gone: a signal meanwhile finds less to remove.
    let closed = match ran {
        Ok(()) => dir
            .close()
            .with_context(|| format!("cannot remove the temporary directory {shown}")),
        Err(e) => {
            drop(dir);
            Err(e)
        }
    };
    CLEANUP_ARMED.store(false, Ordering::SeqCst);
    closed?;
    writeln!(out)?;
    writeln!(out, "removed {shown}")?;
    writeln!(
        out,
        "Nobody waited for a writer to exit: the readers waited on notifiers in shared memory \
         (asleep on a futex until a notify), and a writer that died would have ended those \
         waits with an error instead of a hang."
    )?;
    Ok(())
}

/// How the names of the demo's temporary directories start (in `$TMPDIR`).
const DIR_PREFIX: &str = "mapipc-demo-";

/// The file in a demo's temporary directory that its demo holds an exclusive `flock` on
/// while it runs; it holds the demo's pid (for messages only: the lock is what counts).
const OWNER_LOCK: &str = "owner.lock";

/// What [`lock_as_owner`] names the lock file until it is locked.
const OWNER_LOCK_NEW: &str = "owner.lock.new";

/// The files a demo makes in its temporary directory (in the directory of
/// [`TempFiles::dir`]): those of scenarios 2 and 3, and the owner lock.
const TEMP_FILES: [&str; 3] = ["region", "channel", OWNER_LOCK];

/// Creates [`OWNER_LOCK`] in `dir`, holding this process's pid, locked (`flock`, exclusive)
/// by the returned file, which keeps it locked until it is closed or the process dies. It is
/// created and locked under another name, then renamed: a demo cleaning up that found the
/// lock file between its creation and its locking would take it for a dead demo's.
fn lock_as_owner(dir: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsFd;
    let new = dir.join(OWNER_LOCK_NEW);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&new)?;
    if !mapipc::os::file::flock_exclusive(file.as_fd(), false)? {
        bail!("someone else locked {}", shown(new.display()));
    }
    file.write_all(std::process::id().to_string().as_bytes())?;
    std::fs::rename(&new, dir.join(OWNER_LOCK))?;
    Ok(file)
}

/// Removes the temporary directories of earlier demos that died without removing them
/// (killed by `SIGKILL`, or crashed); returns each one removed, with the pid its demo
/// wrote (untrusted: for the message only). Best effort: a directory that cannot be
/// checked or removed is left as it is, and the demo goes on.
///
/// A directory of `tmp` is taken for a dead demo's only when all of these hold:
/// - its name starts with [`DIR_PREFIX`], it is a directory (not a symbolic link to one)
///   and it belongs to this user;
/// - it holds [`OWNER_LOCK`], a regular file of this user (opened without following a
///   symbolic link and without blocking), whose `flock` this process can take: a live demo
///   holds it, and the kernel releases it when the demo dies, however it dies;
/// - the lock file is still the one at that name once locked (another demo cleaning up
///   at the same time may have removed it);
/// - it holds nothing but files a demo makes ([`TEMP_FILES`]).
///
/// Those files are then removed, the lock file last, and the directory with `rmdir`, which
/// fails (and leaves it) if anything else appeared in it meanwhile.
fn remove_stale_dirs(tmp: &Path) -> Vec<(std::path::PathBuf, Option<u32>)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return removed;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .as_bytes()
            .starts_with(DIR_PREFIX.as_bytes())
        {
            continue;
        }
        let dir = entry.path();
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() && m.uid() == me => {}
            _ => continue,
        }
        let lock_path = dir.join(OWNER_LOCK);
        let Ok(mut lock) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&lock_path)
        else {
            continue;
        };
        let held = match lock.metadata() {
            Ok(m) if m.is_file() && m.uid() == me => (m.dev(), m.ino()),
            _ => continue,
        };
        if !mapipc::os::file::flock_exclusive(lock.as_fd(), false).unwrap_or(false) {
            continue; // its demo is running
        }
        match std::fs::symlink_metadata(&lock_path) {
            Ok(m) if (m.dev(), m.ino()) == held => {}
            _ => continue,
        }
        let only_ours = std::fs::read_dir(&dir).is_ok_and(|mut names| {
            names.all(|e| e.is_ok_and(|e| TEMP_FILES.iter().any(|f| e.file_name() == *f)))
        });
        if !only_ours {
            continue;
        }
        let mut pid = String::new();
        let _ = (&mut lock).take(16).read_to_string(&mut pid);
        for name in TEMP_FILES {
            let _ = std::fs::remove_file(dir.join(name));
        }
        if std::fs::remove_dir(&dir).is_ok() {
            removed.push((dir, pid.trim().parse().ok()));
        }
    }
    removed
}

/// What [`on_signal`] removes, as C strings made before the handler is installed (it may
/// not allocate).
struct TempFiles {
    /// The process that made them: not a child that inherited the handler.
    owner: u32,
    files: Vec<CString>,
    dir: CString,
}

/// Set once, by [`remove_on_signal`]; never freed, so a handler running on another thread
/// cannot see it go.
static CLEANUP: OnceLock<TempFiles> = OnceLock::new();
/// Whether [`on_signal`] should remove [`CLEANUP`]'s files: from when the directory exists
/// until the demo has finished with it (then its `TempDir` removes it).
static CLEANUP_ARMED: AtomicBool = AtomicBool::new(false);

/// Makes `SIGINT` (Ctrl-C), `SIGTERM` and `SIGHUP` remove the demo's temporary directory
/// and files before ending the process as the signal would have.
fn remove_on_signal(dir: &Path) -> Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).context("a NUL in the path");
    let files = TempFiles {
        owner: std::process::id(),
        files: TEMP_FILES
            .iter()
            .map(|f| c(&dir.join(f)))
            .collect::<Result<_>>()?,
        dir: c(dir)?,
    };
    if CLEANUP.set(files).is_err() {
        bail!("the demo's signal handler was installed twice");
    }
    CLEANUP_ARMED.store(true, Ordering::SeqCst);
    let action = exit_action();
    for sig in EXIT_SIGNALS {
        // SAFETY: `action` is a valid `sigaction`; the handler only makes
        // async-signal-safe calls (`getpid`, `unlink`, `rmdir`, `raise`) on data that is
        // never freed or changed once set.
        let r = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
        if r != 0 {
            return Err(io::Error::last_os_error()).context("cannot install a signal handler");
        }
    }
    Ok(())
}

/// The action [`remove_on_signal`] installs for each of [`EXIT_SIGNALS`]: [`on_signal`],
/// reset to the default action once run (`raise` then ends the process), with the other
/// exit signals blocked while it runs. Without that, a second signal (Ctrl-C, then a
/// `kill`) arriving while the first one's handler was removing the files ran the handler
/// again, which found the cleanup taken, raised its signal and ended the process at once,
/// halfway through the removal: files were left behind.
fn exit_action() -> libc::sigaction {
    // SAFETY: `sigaction` is plain data (all zeroes is a valid value); sigemptyset and
    // sigaddset get a pointer to its mask and valid signal numbers.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in EXIT_SIGNALS {
            libc::sigaddset(&mut action.sa_mask, sig);
        }
        action
    }
}

/// Runs `f` with `SIGINT`, `SIGTERM` and `SIGHUP` blocked in this thread (the only one
/// then); one that arrives meanwhile is delivered when `f` returns.
fn with_exit_signals_blocked<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask gets
    // valid pointers to it and to `old`, which it fills.
    let old = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in EXIT_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r)).context("cannot block signals");
        }
        old
    };
    let result = f();
    // SAFETY: `old` is the mask pthread_sigmask returned above.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r)).context("cannot unblock signals");
    }
    result
}

/// The signals after which the demo removes its temporary files before ending.
const EXIT_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Removes the temporary files and directory, then dies of `sig` (its default action,
/// restored by `SA_RESETHAND`), so the exit status says what ended the demo.
extern "C" fn on_signal(sig: libc::c_int) {
    if CLEANUP_ARMED.swap(false, Ordering::SeqCst) {
        if let Some(t) = CLEANUP.get() {
            if t.owner == std::process::id() {
                for f in &t.files {
                    // SAFETY: a valid NUL-terminated path; unlink is async-signal-safe.
                    unsafe { libc::unlink(f.as_ptr()) };
                }
                // SAFETY: as above, for rmdir.
                unsafe { libc::rmdir(t.dir.as_ptr()) };
            }
        }
    }
    // SAFETY: raise is async-signal-safe.
    unsafe { libc::raise(sig) };
}

// Scenario 1's layout of the region's user data.
/// The child's peer id (0 until it joined).
const CHILD_ID_AT: u64 = 0;
/// Set to 1 by the parent when the child may exit.
const DONE_AT: u64 = 4;
/// Set by the child after its notify: 1 if the notify made no syscall (nobody was parked
/// yet), 2 if it woke a parked waiter with a futex wake.
const REPORT_AT: u64 = 8;
/// The child's pid.
const PID_AT: u64 = 12;
/// The message length.
const LEN_AT: u64 = 16;
/// The message.
const MSG_AT: u64 = 24;

/// Scenario 1: `fork` and an anonymous region.
fn related_processes(out: &mut dyn Write) -> Result<()> {
    const MESSAGE: &[u8] = b"hello from the forked child";

    writeln!(out)?;
    writeln!(out, "1. Related processes: fork() and an anonymous region")?;
    let region = Region::anonymous(4096).context("cannot make an anonymous region")?;
    let seen = region.generation()?;
    writeln!(
        out,
        "   parent: made an anonymous region ({} bytes of user data, generation {seen}) and \
         forks; the child inherits it",
        region.len()
    )?;
    // Whatever is buffered would otherwise be in both processes' buffers.
    out.flush()?;

    let parent = std::process::id();
    // SAFETY: fork has no memory-safety preconditions. This process has a single thread
    // here (the demo starts no thread before this point), so the child may allocate; it
    // only works on the region and leaves with `_exit`, never returning into `main`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error()).context("fork failed");
    }
    if pid == 0 {
        let code = child(&region, MESSAGE, parent);
        // SAFETY: `_exit` ends the child at once, without running destructors or exit
        // handlers and without flushing the stdio buffers inherited from the parent.
        unsafe { libc::_exit(code) };
    }

    // The child's liveness comes from the region's peer table; before it has joined
    // (id 0) there is nothing to check, and the timeout covers a child that never joins.
    let child_id = region.atomic_u32(CHILD_ID_AT)?;
    let liveness = region.liveness();
    let alive = || {
        let id = child_id.load(Ordering::Acquire);
        id == 0 || liveness.is_alive(id)
    };
    let notifier = Notifier::new(region.notify_word()?);
    let waited = notifier.wait_until(
        || region.generation().ok().filter(|&g| g != seen),
        WaitOptions::new()
            .timeout(STEP_TIMEOUT)
            .check_interval(Duration::from_millis(20))
            .alive(&alive),
    );
    let id = child_id.load(Ordering::Acquire);
    // Whatever happened, let the child go before reporting.
    let release = || -> Result<()> {
        region.atomic_u32(DONE_AT)?.store(1, Ordering::Release);
        notifier.notify_all();
        Ok(())
    };
    let generation = match waited {
        Ok(g) => g,
        Err(e) => {
            release()?;
            let status = wait_for_child(pid)?;
            return match e {
                WaitError::PeerGone => {
                    bail!("the forked child (pid {pid}, peer {id}) died without writing ({status})")
                }
                e => Err(anyhow::Error::new(e).context(format!(
                    "waiting for the forked child (pid {pid}) ({status})"
                ))),
            };
        }
    };
    let still_alive = liveness.is_alive(id);
    // The child says whether its notify had to wake us (it knows once the notify returned).
    let report = region.atomic_u32(REPORT_AT)?;
    let reported = notifier.wait_until(
        || Some(report.load(Ordering::Acquire)).filter(|&r| r != 0),
        WaitOptions::new()
            .timeout(STEP_TIMEOUT)
            .check_interval(Duration::from_millis(20))
            .alive(&alive),
    );
    let woke = matches!(reported, Ok(2));
    let child_pid = region.read_pod::<u32>(PID_AT)?;
    let message = read_message(&region)?;
    release()?;
    let status = wait_for_child(pid)?;

    writeln!(
        out,
        "   child (pid {child_pid}): joined the peer table as peer {id}, wrote {} bytes, bumped \
         the generation to {generation} and notified{}",
        message.len(),
        if woke {
            ": the parent was asleep, one futex wake"
        } else {
            " (the parent was not asleep yet: no syscall)"
        }
    )?;
    writeln!(
        out,
        "   parent: waited on the notifier, not in waitpid, the child's liveness as its alive \
         check; saw generation {generation} and read {:?} (child alive: {})",
        String::from_utf8_lossy(&message),
        if still_alive { "yes" } else { "no" }
    )?;
    if message != MESSAGE {
        bail!(
            "the region does not hold the child's message: {:?}",
            String::from_utf8_lossy(&message)
        );
    }
    writeln!(
        out,
        "   parent: then released the child and reaped it: {status}"
    )?;
    if status != "exit status 0" {
        bail!("the forked child (pid {pid}) failed: {status}");
    }
    Ok(())
}

/// Reads scenario 1's message, validating its length (it comes from shared memory).
fn read_message(region: &Region) -> Result<Vec<u8>> {
    let len = region.read_pod::<u32>(LEN_AT)? as usize;
    let room = region.len() - MSG_AT as usize;
    if len > room {
        bail!("the region holds an impossible message length {len} (at most {room})");
    }
    Ok(region.read_vec(MSG_AT, len)?)
}

/// Scenario 1's child: join, write, bump, notify, wait to be released. Returns the exit
/// status. Prints nothing: the parent narrates.
fn child(region: &Region, message: &[u8], parent: u32) -> i32 {
    let Ok(peer) = region.join() else { return 10 };
    let word = |at| region.atomic_u32(at);
    let (Ok(id), Ok(report), Ok(done), Ok(notify)) = (
        word(CHILD_ID_AT),
        word(REPORT_AT),
        word(DONE_AT),
        region.notify_word(),
    ) else {
        return 11;
    };
    id.store(peer.id(), Ordering::Release);
    let written = region.write_pod(PID_AT, &std::process::id()).is_ok()
        && region.write_at(MSG_AT, message).is_ok()
        && region.write_pod(LEN_AT, &(message.len() as u32)).is_ok();
    if !written {
        return 12;
    }
    if region.bump_generation().is_err() {
        return 13;
    }
    let notifier = Notifier::new(notify);
    let woke = notifier.notify_all();
    report.store(if woke { 2 } else { 1 }, Ordering::Release);
    notifier.notify_all();
    // A parent that died (killed, interrupted) never releases us: do not outlive it by
    // the whole timeout.
    let parent_alive = || std::os::unix::process::parent_id() == parent;
    let released = notifier.wait_until(
        || (done.load(Ordering::Acquire) == 1).then_some(()),
        WaitOptions::new()
            .timeout(STEP_TIMEOUT)
            .check_interval(Duration::from_millis(20))
            .alive(&parent_alive),
    );
    drop(peer);
    if released.is_ok() {
        0
    } else {
        14
    }
}

/// `waitpid(pid)`; how the child ended.
fn wait_for_child(pid: libc::pid_t) -> Result<String> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid, writable c_int; `pid` is our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("waitpid({pid}) failed"));
        }
    }
    Ok(if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    })
}

/// Scenario 2: a named region; a separate process writes while this one sleeps.
fn unrelated_processes(out: &mut dyn Write, dir: &Path) -> Result<()> {
    const MESSAGE: &str = "hello from another process, through a named region";

    writeln!(out)?;
    writeln!(out, "2. Unrelated processes: a named region")?;
    let path = dir.join("region");
    let mut region = Region::create(&path, 4096)?;
    region.set_remove_on_drop(true);
    let seen = region.generation()?;
    writeln!(
        out,
        "   reader: created region {} ({} bytes of user data, generation {seen})",
        shown(path.display()),
        region.len()
    )?;
    writeln!(
        out,
        "   reader: goes to sleep on its notifier; once asleep, a separate process runs:"
    )?;
    writeln!(
        out,
        "           mapipc region write {} --offset 0 {MESSAGE:?}",
        shown(path.display())
    )?;
    out.flush()?;

    let exe = std::env::current_exe().context("cannot find the mapipc executable")?;
    let notifier = Notifier::new(region.notify_word()?);
    // Set when the writer process ended without success: the reader stops waiting then.
    let writer_failed = AtomicU32::new(0);
    let (waited, writer) = std::thread::scope(|s| {
        let writer = s.spawn(|| -> Result<(u32, ExitStatus, String)> {
            // Start the writer only once the reader is registered on the notifier (asleep or
            // about to be), so that what the narration says is what happens.
            let start = Instant::now();
            while notifier.waiters() == 0 && start.elapsed() < STEP_TIMEOUT {
                std::thread::sleep(Duration::from_millis(1));
            }
            let result = run_process(
                Command::new(&exe)
                    .args(["region", "write"])
                    .arg(&path)
                    .args(["--offset", "0", MESSAGE]),
            );
            if !matches!(&result, Ok((_, status, _)) if status.success()) {
                writer_failed.store(1, Ordering::Release);
                notifier.notify_all();
            }
            result
        });
        let alive = || writer_failed.load(Ordering::Acquire) == 0;
        let waited = notifier.wait_until(
            || region.generation().ok().filter(|&g| g != seen),
            WaitOptions::new()
                .timeout(STEP_TIMEOUT)
                .check_interval(Duration::from_millis(20))
                .alive(&alive),
        );
        (waited, writer.join())
    });
    let (writer_pid, status, stderr) = match writer {
        Ok(result) => result?,
        Err(_) => bail!("the thread starting the writer process panicked"),
    };
    if !status.success() {
        bail!(
            "the writer process (pid {writer_pid}) failed ({status}): {}",
            stderr.trim()
        );
    }
    let generation = waited.context("waiting for the writer process")?;
    writeln!(
        out,
        "   writer (pid {writer_pid}): opened the region, wrote, bumped the generation to \
         {generation}, notified; {status}"
    )?;
    let message = region.read_vec(0, MESSAGE.len())?;
    writeln!(
        out,
        "   reader: the write and notify ended its wait: generation {generation}, read {:?}",
        String::from_utf8_lossy(&message)
    )?;
    if message != MESSAGE.as_bytes() {
        bail!("the region does not hold the writer's message");
    }
    drop(region); // removes the file (set_remove_on_drop)
    writeln!(out, "   reader: removed the region")?;
    Ok(())
}

/// Scenario 3: a channel; a separate `mapipc send` process sends, this process receives.
fn channel(out: &mut dyn Write, dir: &Path) -> Result<()> {
    const MESSAGES: [&str; 3] = ["first", "second", "third"];

    writeln!(out)?;
    writeln!(out, "3. A channel: messages from another process, in order")?;
    let path = dir.join("channel");
    let chan = Channel::create(&path, 4096)?;
    let mut rx = chan.receiver()?;
    writeln!(
        out,
        "   receiver: created channel {} ({}-byte ring) and attached as its receiver",
        shown(path.display()),
        chan.capacity()
    )?;
    writeln!(
        out,
        "   receiver: starting: mapipc send {} {}",
        shown(path.display()),
        MESSAGES.join(" ")
    )?;
    out.flush()?;
    let exe = std::env::current_exe().context("cannot find the mapipc executable")?;
    let mut sender = Command::new(&exe)
        .arg("send")
        .arg(&path)
        .args(MESSAGES)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", shown(exe.display())))?;
    let sender_pid = sender.id();
    let mut got = Vec::new();
    for _ in MESSAGES {
        match rx.recv_deadline(Instant::now() + STEP_TIMEOUT) {
            Ok(m) => got.push(String::from_utf8_lossy(&m).into_owned()),
            Err(e) => {
                let _ = sender.kill();
                let (status, stderr) = finish_child(&mut sender)?;
                return Err(anyhow::Error::new(e).context(format!(
                    "receiving from the sender process (pid {sender_pid}, {status}: {})",
                    stderr.trim()
                )));
            }
        }
    }
    let (status, stderr) = finish_child(&mut sender)?;
    if !status.success() {
        bail!(
            "the sender process (pid {sender_pid}) failed ({status}): {}",
            stderr.trim()
        );
    }
    writeln!(
        out,
        "   receiver: got {:?}, in order; the sender (pid {sender_pid}) exited: {status}",
        got
    )?;
    if got != MESSAGES {
        bail!("the messages arrived wrong: {got:?}");
    }
    Ok(())
}

/// Runs a command to completion (killing it after [`STEP_TIMEOUT`]); returns its pid, exit
/// status and standard error.
fn run_process(cmd: &mut Command) -> Result<(u32, ExitStatus, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the mapipc executable")?;
    let pid = child.id();
    let (status, stderr) = finish_child(&mut child)?;
    Ok((pid, status, stderr))
}

/// Waits for `child`, killing it after [`STEP_TIMEOUT`], then reads its standard error (a
/// pipe it could fill only with far more than an error line).
fn finish_child(child: &mut Child) -> Result<(ExitStatus, String)> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .context("cannot wait for a child process")?
        {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the process {} did not finish within {} s; killed it",
                child.id(),
                STEP_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    Ok((status, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_handler_runs_with_every_exit_signal_blocked() {
        let action = exit_action();
        for sig in EXIT_SIGNALS {
            // SAFETY: a valid mask and signal number.
            let blocked = unsafe { libc::sigismember(&action.sa_mask, sig) };
            assert_eq!(blocked, 1, "signal {sig} is not blocked in the handler");
        }
        assert_eq!(action.sa_flags & libc::SA_RESETHAND, libc::SA_RESETHAND);
        assert_eq!(
            action.sa_sigaction,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
        );
    }
}
