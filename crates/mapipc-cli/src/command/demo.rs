//! `mapipc demo`: the tutorial's two IPC scenarios, run with the library and narrated.
//!
//! 1. Related processes: an anonymous shared mapping made before `fork` is inherited by the
//!    child; the child writes, the parent waits for it (`waitpid`) and reads.
//! 2. Unrelated processes: a file mapped by this process, and a separate `mapipc write`
//!    process (this same executable) that maps and writes it; after it exits, the data is
//!    visible through the first process's mapping.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mapipc::map::{MapOptions, Mmap};

use crate::cli::DemoArgs;

/// How long the writer process of scenario 2 may take before it is killed.
const WRITER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `mapipc demo`.
pub fn run(_args: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    let page = mapipc::os::mem::page_size();
    writeln!(
        out,
        "mapipc demo: two ways for processes to share memory with mmap (page size {page} bytes)"
    )?;
    related_processes(out, page)?;
    unrelated_processes(out, page)?;
    writeln!(out)?;
    writeln!(
        out,
        "In both scenarios the reader knew the data was there only because it waited for the"
    )?;
    writeln!(
        out,
        "writer to exit: a shared mapping carries bytes, not a wake-up. Later mapipc versions"
    )?;
    writeln!(
        out,
        "add the missing signal (futex wake-ups, channels and queues over shared memory)."
    )?;
    Ok(())
}

/// Scenario 1: `fork` and an anonymous shared mapping.
fn related_processes(out: &mut dyn Write, page: usize) -> Result<()> {
    // Layout of the shared page: the message length (written last), the writer's pid, the
    // message bytes.
    const LEN_AT: u64 = 0;
    const PID_AT: u64 = 4;
    const MSG_AT: u64 = 8;
    const MESSAGE: &[u8] = b"hello from the forked child";

    writeln!(out)?;
    writeln!(
        out,
        "1. Related processes: fork() and an anonymous shared mapping"
    )?;
    let map = Mmap::anonymous(page).context("cannot map anonymous shared memory")?;
    writeln!(
        out,
        "   parent (pid {}): mapped {} bytes of anonymous shared memory \
         (MAP_SHARED|MAP_ANONYMOUS), all zeros",
        std::process::id(),
        map.len()
    )?;
    // Whatever is buffered would otherwise be in both processes' buffers (the child never
    // flushes, but better not to depend on it).
    out.flush()?;

    // SAFETY: the child only copies bytes into the mapping through the allocation-free
    // success paths of `write_pod`/`write_at`, calls getpid, and ends with `_exit`: no locks,
    // no allocation, nothing that another thread of the parent could have left half-done.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error()).context("fork failed");
    }
    if pid == 0 {
        let written = map.write_pod(PID_AT, &std::process::id()).is_ok()
            && map.write_at(MSG_AT, MESSAGE).is_ok()
            && map.write_pod(LEN_AT, &(MESSAGE.len() as u32)).is_ok();
        // SAFETY: `_exit` ends the child immediately without running destructors or atexit
        // handlers and without flushing the stdio buffers it inherited from the parent; it is
        // async-signal-safe.
        unsafe { libc::_exit(if written { 0 } else { 1 }) };
    }

    writeln!(
        out,
        "   parent: fork() -> child pid {pid}, which inherits the mapping: the same physical \
         pages, not a copy"
    )?;
    let status = wait_for_child(pid)?;
    if status != 0 {
        bail!(
            "the forked child (pid {pid}) could not write into the mapping (exit status {status})"
        );
    }
    writeln!(
        out,
        "   child (pid {pid}): wrote {} bytes at offset {MSG_AT} of the mapping, then exited",
        MESSAGE.len()
    )?;
    writeln!(out, "   parent: waitpid({pid}) -> exit status 0")?;

    // Read back and validate: the page is shared memory another process wrote.
    let len = map.read_pod::<u32>(LEN_AT)? as usize;
    let room = map.len() - MSG_AT as usize;
    if len > room {
        bail!("the shared page holds an impossible message length {len} (at most {room})");
    }
    let writer = map.read_pod::<u32>(PID_AT)?;
    let message = map.read_vec(MSG_AT, len)?;
    if writer != pid as u32 || message != MESSAGE {
        bail!(
            "the shared page does not hold the child's message: pid {writer}, message {:?}",
            String::from_utf8_lossy(&message)
        );
    }
    writeln!(
        out,
        "   parent: read {:?} from its own mapping (written by pid {writer})",
        String::from_utf8_lossy(&message)
    )?;
    Ok(())
}

/// `waitpid(pid)`; the child's exit status.
fn wait_for_child(pid: libc::pid_t) -> Result<i32> {
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
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        bail!(
            "the forked child (pid {pid}) was killed by signal {}",
            libc::WTERMSIG(status)
        )
    } else {
        bail!("the forked child (pid {pid}) ended with wait status {status:#x}")
    }
}

/// Scenario 2: two unrelated processes and one file.
fn unrelated_processes(out: &mut dyn Write, page: usize) -> Result<()> {
    const MESSAGE: &str = "hello from another process, through a shared file";

    writeln!(out)?;
    writeln!(
        out,
        "2. Unrelated processes: one file, mapped by each of them"
    )?;
    let dir = tempfile::Builder::new()
        .prefix("mapipc-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let path = dir.path().join("shared.bin");
    let reader = MapOptions::new()
        .read_only()
        .create(page as u64)
        .map_path(&path)?;
    let before = reader.read_vec(0, MESSAGE.len())?;
    let zeros = if before.iter().all(|b| *b == 0) {
        "zeros"
    } else {
        "not zeros"
    };
    writeln!(
        out,
        "   reader (pid {}): created {} ({page} bytes, mode 0600) and mapped it shared, \
         read-only; its first {} bytes are {zeros}",
        std::process::id(),
        path.display(),
        MESSAGE.len()
    )?;

    let exe = std::env::current_exe().context("cannot find the mapipc executable")?;
    writeln!(
        out,
        "   reader: starting a separate process: mapipc write {} --offset 0 {MESSAGE:?}",
        path.display()
    )?;
    out.flush()?;
    let mut child = Command::new(&exe)
        .arg("write")
        .arg(&path)
        .args(["--offset", "0", MESSAGE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let writer = child.id();
    let status = wait_with_timeout(&mut child, WRITER_TIMEOUT)?;
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        bail!(
            "the writer process (pid {writer}) failed ({status}): {}",
            stderr.trim()
        );
    }
    writeln!(
        out,
        "   writer (pid {writer}): mapped bytes 0..{} of the file shared, read-write, copied the \
         message in, flushed it (msync) and exited with status 0",
        MESSAGE.len()
    )?;

    let after = reader.read_vec(0, MESSAGE.len())?;
    if after != MESSAGE.as_bytes() {
        bail!(
            "the reader's mapping does not show the writer's data: read {:?}",
            String::from_utf8_lossy(&after)
        );
    }
    writeln!(
        out,
        "   reader: read {:?} through the mapping it made before the writer started (no read(), \
         no re-open)",
        String::from_utf8_lossy(&after)
    )?;
    drop(reader);
    let shown = dir.path().display().to_string();
    dir.close()
        .with_context(|| format!("cannot remove the temporary directory {shown}"))?;
    writeln!(out, "   reader: removed {shown}")?;
    Ok(())
}

/// Waits for `child`, killing it after `timeout`. The writer's stderr is a pipe it could
/// fill only with far more than an error line, so it is read after the exit.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for the writer")? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the writer process (pid {}) did not finish within {} s; killed it",
                child.id(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
