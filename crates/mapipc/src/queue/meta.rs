//! The metadata file `queue.meta`: creation (race-free), validation, the appender lock, the
//! notifier word and the hints.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::error::{MetaOpenError, OpenError};
use super::format::{
    MetaHeader, SegmentLayout, APPENDER_OPEN, LOCK_APPENDER, LOCK_RETENTION, MAX_SEQ,
    META_APPENDER_PID, META_APPENDER_STATE, META_BOOT_ID, META_CURRENT_SEGMENT, META_FILE,
    META_FILE_SIZE, META_LAST_RECORD, META_NEXT_SEQ, META_NOTIFY,
};
use super::tmpfile;
use crate::map::{AccessError, MapError, MapOptions, Mmap};
use crate::os;

/// How many times [`Meta::lock_positions_shared`] found the position lock held exclusively
/// (unit tests wait for a tailer to be waiting for retention).
#[cfg(test)]
pub(crate) static POSITION_LOCK_CONTENDED: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// When the last appender opened the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Boot {
    /// No appender ever did.
    Never,
    /// During the current boot of the machine.
    This,
    /// Before the machine rebooted.
    Other,
}

/// The mapped metadata file.
#[derive(Debug)]
pub(crate) struct Meta {
    map: Mmap,
    pub dir: PathBuf,
    pub path: PathBuf,
    pub layout: SegmentLayout,
    writable: bool,
}

/// Directory permissions matching file permissions `mode`: `x` wherever `r` is set.
pub(crate) fn dir_mode(mode: u32) -> u32 {
    (mode | ((mode & 0o444) >> 2)) & 0o777
}

impl Meta {
    /// Opens the metadata file of an existing queue. Read-write when permitted (the
    /// notifier word needs it), else read-only.
    pub fn open(dir: &Path) -> Result<Meta, MetaOpenError> {
        let path = dir.join(META_FILE);
        let mut writable = true;
        let map = match MapOptions::new()
            .read_write()
            .len(META_FILE_SIZE as usize)
            .map_path(&path)
        {
            Ok(m) => m,
            Err(MapError::Open { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EACCES) | Some(libc::EROFS) | Some(libc::EPERM)
                ) =>
            {
                writable = false;
                MapOptions::new()
                    .read_only()
                    .len(META_FILE_SIZE as usize)
                    .map_path(&path)
                    .map_err(|e| meta_map_error(e, dir, &path))?
            }
            Err(e) => return Err(meta_map_error(e, dir, &path)),
        };
        let header: MetaHeader = map.read_pod(0)?;
        let layout = header.validate().map_err(|why| MetaOpenError::BadMeta {
            file: path.clone(),
            why,
        })?;
        Ok(Meta {
            map,
            dir: dir.to_path_buf(),
            path,
            layout,
            writable,
        })
    }

    /// Creates the directory and the metadata file if missing, then opens it. Two
    /// processes creating the same queue at once both end up with the same file: the file
    /// is written under a temporary name and moved into place with `RENAME_NOREPLACE` (see
    /// `tmpfile` for how a creator killed meanwhile is cleaned up after).
    pub fn create_or_open(
        dir: &Path,
        layout: SegmentLayout,
        mode: u32,
    ) -> Result<(Meta, bool), OpenError> {
        os::storage::create_dir(dir, dir_mode(mode)).map_err(|source| OpenError::Io {
            op: "create the queue directory",
            file: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(META_FILE);
        let mut created = false;
        if os::file::lstat(&path).is_err() {
            let io_err = |op: &'static str, file: &Path| {
                let file = file.to_path_buf();
                move |source: io::Error| OpenError::Io { op, file, source }
            };
            let tmp = tmpfile::create(dir, META_FILE, mode, META_FILE_SIZE, |map| {
                let header = MetaHeader::new(
                    layout.segment_size,
                    layout.index_interval,
                    os::process::realtime_ns(),
                );
                map.write_pod(0, &header)?;
                map.flush()?;
                Ok(())
            })?;
            let moved = os::storage::rename_noreplace(&tmp.path, &path)
                .map_err(io_err("create the metadata file", &path));
            if !matches!(moved, Ok(true)) {
                let _ = os::file::unlink(&tmp.path);
            }
            // Releases the creation lock, now that the file is in place (or removed).
            drop(tmp);
            created = moved?;
            if created {
                os::storage::fsync_dir(dir).map_err(io_err("sync the directory", dir))?;
            }
        }
        Ok((Meta::open(dir)?, created))
    }

    /// Whether the file could be mapped read-write.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The notifier word, when the file is writable.
    pub fn notify_word(&self) -> Option<&AtomicU32> {
        if self.writable {
            self.map.atomic_u32(META_NOTIFY).ok()
        } else {
            None
        }
    }

    /// The notifier's epoch (advanced by every notify, wrapping), when writable: waiting
    /// for it to change is waiting for the next append or roll.
    pub fn notify_epoch(&self) -> Option<u32> {
        self.notify_word()
            .map(|w| crate::sync::Notifier::new(w).epoch())
    }

    fn load_u64(&self, off: u64) -> Result<u64, AccessError> {
        if self.writable {
            Ok(self.map.atomic_u64(off)?.load(Ordering::Acquire))
        } else {
            let v = self.map.read_pod::<u64>(off)?;
            fence(Ordering::Acquire);
            Ok(v)
        }
    }

    /// Takes the appender lock (an OFD write lock on byte 0): `Ok(false)` when another
    /// appender holds it and `wait` is false.
    pub fn lock_appender(&self, wait: bool) -> Result<bool, OpenError> {
        self.lock_byte(LOCK_APPENDER, wait)
    }

    /// Takes the retention lock (an OFD write lock on byte 1, which serializes retention
    /// runs), waiting at most `timeout` for another run holding it: `Ok(false)` when it
    /// still holds it then. A run stopped (`SIGSTOP`) or hung holds it until it dies, which
    /// would keep every later run waiting forever: hence the bound (`poll_lock`, as for the
    /// position lock).
    pub fn lock_retention(&self, timeout: Duration) -> io::Result<bool> {
        let fd = self.meta_fd()?;
        poll_lock(timeout, || os::file::ofd_lock(fd, LOCK_RETENTION, 1, false))
    }

    /// Releases the retention lock.
    pub fn unlock_retention(&self) {
        if let Some(fd) = self.map.file_fd() {
            let _ = os::file::ofd_unlock(fd, LOCK_RETENTION, 1);
        }
    }

    /// Takes the position lock exclusively (retention), waiting at most `timeout` for the
    /// named tailers holding it shared: `Ok(false)` when one still holds it then. A `flock`
    /// on `queue.meta`: while retention holds it, no named tailer's position can move
    /// backwards or appear, so the positions it read stay the oldest ones needed (see
    /// "Retention" in the module docs). A `flock` is independent of the byte-range locks on
    /// the same file, and, like them, belongs to the open file description: the kernel
    /// releases it when its holder dies.
    ///
    /// Named tailers hold the lock for one seek each, but a tailer process stopped
    /// (`SIGSTOP`) or hung in the middle of a seek holds it until it dies, which would keep
    /// retention waiting forever: hence the bound (`poll_lock`).
    pub fn lock_positions_exclusive(&self, timeout: Duration) -> io::Result<bool> {
        let fd = self.meta_fd()?;
        poll_lock(timeout, || os::file::flock_exclusive(fd, false))
    }

    /// Takes the position lock shared (a named tailer that moves its position or creates
    /// its file), waiting at most `timeout` for a retention run holding it exclusively:
    /// `Ok(false)` when it still holds it then. A retention run stopped (`SIGSTOP`) or hung
    /// would otherwise keep every named seek waiting forever; the kernel only releases the
    /// lock when its holder dies (`poll_lock`).
    pub fn lock_positions_shared(&self, timeout: Duration) -> io::Result<bool> {
        let fd = self.meta_fd()?;
        poll_lock(timeout, || {
            let taken = os::file::flock_shared(fd, false)?;
            #[cfg(test)]
            if !taken {
                POSITION_LOCK_CONTENDED.fetch_add(1, Ordering::SeqCst);
            }
            Ok(taken)
        })
    }

    fn meta_fd(&self) -> io::Result<std::os::fd::BorrowedFd<'_>> {
        self.map
            .file_fd()
            .ok_or_else(|| io::Error::other("the metadata mapping has no file"))
    }

    /// Releases the position lock.
    pub fn unlock_positions(&self) {
        if let Some(fd) = self.map.file_fd() {
            let _ = os::file::flock_unlock(fd);
        }
    }

    fn lock_byte(&self, byte: u64, wait: bool) -> Result<bool, OpenError> {
        self.meta_fd()
            .and_then(|fd| os::file::ofd_lock(fd, byte, 1, wait))
            .map_err(|source| OpenError::Io {
                op: "lock",
                file: self.path.clone(),
                source,
            })
    }

    /// Whether another open file description holds the appender lock (an appender is
    /// running).
    pub fn appender_active(&self) -> bool {
        self.map
            .file_fd()
            .and_then(|fd| os::file::ofd_is_locked(fd, LOCK_APPENDER, 1).ok())
            .unwrap_or(false)
    }

    /// The pid recorded by the last appender.
    pub fn appender_pid(&self) -> u32 {
        self.map.read_pod(META_APPENDER_PID).unwrap_or(0)
    }

    /// Whether the last appender closed cleanly, and in which boot it opened the queue.
    pub fn previous_appender(&self) -> Result<(bool, Boot), AccessError> {
        let state: u32 = self.map.read_pod(META_APPENDER_STATE)?;
        let boot: [u8; 16] = self.map.read_pod(META_BOOT_ID)?;
        let boot = if boot == [0u8; 16] {
            Boot::Never
        } else if boot == os::storage::boot_id() {
            Boot::This
        } else {
            Boot::Other
        };
        Ok((state != APPENDER_OPEN, boot))
    }

    /// Permission bits of the metadata file (files the queue creates later get the same).
    pub fn file_mode(&self) -> u32 {
        self.map
            .file_fd()
            .and_then(|fd| os::file::fstat(fd).ok())
            .map_or(0o600, |info| info.mode & 0o666)
    }

    /// Records a new appender: state, pid, boot id (appenders only).
    pub fn set_appender(&self, state: u32) -> Result<(), AccessError> {
        self.map.write_pod(META_BOOT_ID, &os::storage::boot_id())?;
        self.map.write_pod(META_APPENDER_PID, &os::process::pid())?;
        self.map
            .atomic_u32(META_APPENDER_STATE)?
            .store(state, Ordering::Release);
        Ok(())
    }

    /// Publishes the hints after a commit (appenders only).
    #[inline]
    pub fn set_hints(&self, next_seq: u64, last_record: u64) -> Result<(), AccessError> {
        self.map
            .atomic_u64(META_LAST_RECORD)?
            .store(last_record, Ordering::Release);
        self.map
            .atomic_u64(META_NEXT_SEQ)?
            .store(next_seq, Ordering::Release);
        Ok(())
    }

    /// Publishes the current segment number (appenders only).
    pub fn set_current_segment(&self, n: u64) -> Result<(), AccessError> {
        self.map
            .atomic_u64(META_CURRENT_SEGMENT)?
            .store(n, Ordering::Release);
        Ok(())
    }

    /// The hints `(next_seq, last_record)`, but only if they were written during this boot
    /// (after a machine crash they may describe records that never reached the disk).
    pub fn hints(&self) -> Option<(u64, u64)> {
        let (_, boot) = self.previous_appender().ok()?;
        if boot != Boot::This {
            return None;
        }
        let next = self.load_u64(META_NEXT_SEQ).ok()?;
        let last = self.load_u64(META_LAST_RECORD).ok()?;
        (next < MAX_SEQ).then_some((next, last))
    }

    /// The `next_seq` hint, whatever the boot (for `stat` and fresh segment numbering).
    pub fn raw_next_seq(&self) -> u64 {
        self.load_u64(META_NEXT_SEQ).unwrap_or(0)
    }

    /// The current segment hint, whatever the boot.
    pub fn raw_current_segment(&self) -> u64 {
        self.load_u64(META_CURRENT_SEGMENT).unwrap_or(0)
    }
}

/// Takes a lock with `try_lock` (a non-blocking attempt: `Ok(false)` when the lock is held
/// in a conflicting mode), trying for at most `timeout`: `Ok(false)` when it is still held
/// then. Neither `flock` nor OFD locks have a timed wait, so this polls, sleeping 1 ms
/// between the first tries, doubling up to 50 ms. It always tries once, even with no time
/// left.
fn poll_lock(
    timeout: Duration,
    mut try_lock: impl FnMut() -> io::Result<bool>,
) -> io::Result<bool> {
    const FIRST_PAUSE: Duration = Duration::from_millis(1);
    const MAX_PAUSE: Duration = Duration::from_millis(50);
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        if try_lock()? {
            return Ok(true);
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Ok(false);
        }
        os::process::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn meta_map_error(e: MapError, dir: &Path, path: &Path) -> MetaOpenError {
    match e {
        MapError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            let is_dir = os::storage::is_dir(dir);
            let why = if is_dir {
                format!("it has no `{META_FILE}` file")
            } else {
                "no such directory".to_string()
            };
            MetaOpenError::NotAQueue {
                dir: dir.to_path_buf(),
                why,
            }
        }
        MapError::RangePastEnd { file_len, .. } | MapError::OffsetPastEnd { file_len, .. } => {
            MetaOpenError::BadMeta {
                file: path.to_path_buf(),
                why: format!("the file is {file_len} bytes, expected {META_FILE_SIZE}"),
            }
        }
        MapError::EmptyFile { .. } => MetaOpenError::BadMeta {
            file: path.to_path_buf(),
            why: "the file is empty".to_string(),
        },
        other => MetaOpenError::Map(other),
    }
}
