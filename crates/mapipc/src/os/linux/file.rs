//! File calls: `open`, `fstat`, `fcntl(F_GETFL)`, `fallocate`/`ftruncate`, `memfd_create`,
//! seals, open-file-description byte-range locks, `flock`, `fsync`, `unlink`.
//!
//! # References
//! - [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html),
//!   [`fallocate(2)`](https://man7.org/linux/man-pages/man2/fallocate.2.html),
//!   [`memfd_create(2)`](https://man7.org/linux/man-pages/man2/memfd_create.2.html),
//!   [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) (seals, OFD locks),
//!   [`flock(2)`](https://man7.org/linux/man-pages/man2/flock.2.html)

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self, FallocateFlags, FileType, Mode, OFlags, SealFlags};
use rustix::io::Errno;

pub use crate::os::types::{AccessMode, FileInfo, FileKind, OpenHow, Seals};

/// `open(path, flags | O_CLOEXEC, mode)`.
pub fn open(path: &Path, how: OpenHow) -> io::Result<OwnedFd> {
    let mut flags = OFlags::CLOEXEC;
    flags |= if how.write && !how.directory {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    if how.create {
        flags |= OFlags::CREATE;
    }
    if how.exclusive {
        flags |= OFlags::EXCL;
    }
    if how.no_follow {
        flags |= OFlags::NOFOLLOW;
    }
    if how.directory {
        flags |= OFlags::DIRECTORY;
    }
    if how.nonblock {
        flags |= OFlags::NONBLOCK;
    }
    Ok(fs::open(path, flags, Mode::from_raw_mode(how.mode))?)
}

/// Opens a new open file description for `fd` through `/proc/self/fd/N`, with its own
/// locks and the same access as asked (`write`).
pub fn reopen(fd: BorrowedFd<'_>, write: bool) -> io::Result<OwnedFd> {
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    open(
        &path,
        OpenHow {
            write,
            ..OpenHow::default()
        },
    )
}

/// `fstat(fd)`.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    let st = fs::fstat(fd)?;
    Ok(stat_info(&st))
}

/// `stat(path)`: follows symbolic links.
pub fn stat(path: &Path) -> io::Result<FileInfo> {
    let st = fs::stat(path)?;
    Ok(stat_info(&st))
}

/// `lstat(path)`: does not follow a final symbolic link.
pub fn lstat(path: &Path) -> io::Result<FileInfo> {
    let st = fs::lstat(path)?;
    Ok(stat_info(&st))
}

fn stat_info(st: &fs::Stat) -> FileInfo {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => FileKind::Regular,
        FileType::Directory => FileKind::Directory,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    };
    FileInfo {
        size: st.st_size as u64,
        kind,
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
        dev: st.st_dev,
        ino: st.st_ino,
        mtime: st.st_mtime,
    }
}

/// `fcntl(fd, F_GETFL) & O_ACCMODE`.
pub fn access_mode(fd: BorrowedFd<'_>) -> io::Result<AccessMode> {
    let fl = fs::fcntl_getfl(fd)?;
    if fl.contains(OFlags::PATH) {
        return Ok(AccessMode::PathOnly);
    }
    Ok(if fl.contains(OFlags::RDWR) {
        AccessMode::ReadWrite
    } else if fl.contains(OFlags::WRONLY) {
        AccessMode::WriteOnly
    } else {
        AccessMode::ReadOnly
    })
}

/// Makes the file at least `size` bytes long with its blocks allocated: `fallocate(fd, 0, 0,
/// size)`, so that a full disk is an error now rather than a SIGBUS when a page is first
/// written. Falls back to `ftruncate` on filesystems without `fallocate` (the blocks are then
/// not reserved). Never shrinks the file.
///
/// On failure (a full disk) the file is put back to its length before the call: a
/// filesystem may have grown it and kept the blocks it managed to allocate (ext4 does), which
/// would leave a huge file eating the disk that was just found full.
pub fn allocate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    if size == 0 {
        return Ok(());
    }
    let before = fs::fstat(fd)?.st_size as u64;
    match fs::fallocate(fd, FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => {
            if before < size {
                fs::ftruncate(fd, size)?;
            }
            Ok(())
        }
        Err(e) => {
            // Also frees blocks allocated past the old end. Best effort: the error reported
            // is the allocation's. (This assumes nobody else extends the file at the same
            // moment, as for mapipc's own files: created exclusively, or under a lock.)
            let _ = fs::ftruncate(fd, before);
            Err(e.into())
        }
    }
}

/// `ftruncate(fd, size)`: sets the length (grows with a hole, or shrinks).
pub fn set_len(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    Ok(fs::ftruncate(fd, size)?)
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`.
pub fn memfd_create(name: &str) -> io::Result<OwnedFd> {
    Ok(fs::memfd_create(
        name,
        fs::MemfdFlags::CLOEXEC | fs::MemfdFlags::ALLOW_SEALING,
    )?)
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
pub fn add_seals(fd: BorrowedFd<'_>, seals: Seals) -> io::Result<()> {
    let mut f = SealFlags::empty();
    if seals.seal {
        f |= SealFlags::SEAL;
    }
    if seals.shrink {
        f |= SealFlags::SHRINK;
    }
    if seals.grow {
        f |= SealFlags::GROW;
    }
    if seals.write {
        f |= SealFlags::WRITE;
    }
    Ok(fs::fcntl_add_seals(fd, f)?)
}

/// `fcntl(fd, F_GET_SEALS)`; a file that does not support seals has none.
pub fn get_seals(fd: BorrowedFd<'_>) -> io::Result<Seals> {
    match fs::fcntl_get_seals(fd) {
        Ok(f) => Ok(Seals {
            seal: f.contains(SealFlags::SEAL),
            shrink: f.contains(SealFlags::SHRINK),
            grow: f.contains(SealFlags::GROW),
            write: f.contains(SealFlags::WRITE),
        }),
        Err(Errno::INVAL) => Ok(Seals::default()),
        Err(e) => Err(e.into()),
    }
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`.
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)
}

fn ofd_flock(kind: libc::c_short, start: u64, len: u64) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start as libc::off_t,
        l_len: len as libc::off_t,
        l_pid: 0,
    }
}

/// Takes a write lock on bytes `start..start+len` of the open file description:
/// `fcntl(fd, F_OFD_SETLK or F_OFD_SETLKW, {F_WRLCK, start, len})`.
///
/// Open-file-description locks belong to the description, not the process, and the kernel
/// releases them when the last fd of the description is closed, in particular when the
/// process holding them dies: this is how mapipc detects dead peers without their help.
/// Returns `Ok(false)` when another description holds a conflicting lock and `wait` is false.
pub fn ofd_lock(fd: BorrowedFd<'_>, start: u64, len: u64, wait: bool) -> io::Result<bool> {
    let fl = ofd_flock(libc::F_WRLCK as libc::c_short, start, len);
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    loop {
        // SAFETY: `fl` is a valid, initialised `struct flock` that outlives the call; the
        // kernel only reads it for F_OFD_SETLK(W).
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &fl as *const libc::flock) };
        if r == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Releases bytes `start..start+len`: `fcntl(fd, F_OFD_SETLK, {F_UNLCK, start, len})`.
pub fn ofd_unlock(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<()> {
    let fl = ofd_flock(libc::F_UNLCK as libc::c_short, start, len);
    // SAFETY: as in `ofd_lock`.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl as *const libc::flock) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether another open file description holds a lock on any of `start..start+len`:
/// `fcntl(fd, F_OFD_GETLK, {F_WRLCK, start, len})`. Locks held through `fd`'s own
/// description are not reported.
pub fn ofd_is_locked(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    let mut fl = ofd_flock(libc::F_WRLCK as libc::c_short, start, len);
    // SAFETY: `fl` is a valid `struct flock`; the kernel writes the result into it.
    let r = unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_OFD_GETLK,
            &mut fl as *mut libc::flock,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// `flock(fd, LOCK_EX [| LOCK_NB])`; returns `Ok(false)` when `wait` is false and someone
/// else holds the lock.
pub fn flock_exclusive(fd: BorrowedFd<'_>, wait: bool) -> io::Result<bool> {
    let op = if wait {
        fs::FlockOperation::LockExclusive
    } else {
        fs::FlockOperation::NonBlockingLockExclusive
    };
    loop {
        match fs::flock(fd, op) {
            Ok(()) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(Errno::WOULDBLOCK) if !wait => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}

/// `flock(fd, LOCK_SH [| LOCK_NB])`; returns `Ok(false)` when `wait` is false and someone
/// holds an exclusive lock.
pub fn flock_shared(fd: BorrowedFd<'_>, wait: bool) -> io::Result<bool> {
    let op = if wait {
        fs::FlockOperation::LockShared
    } else {
        fs::FlockOperation::NonBlockingLockShared
    };
    loop {
        match fs::flock(fd, op) {
            Ok(()) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(Errno::WOULDBLOCK) if !wait => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}

/// `flock(fd, LOCK_UN)`.
pub fn flock_unlock(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(fs::flock(fd, fs::FlockOperation::Unlock)?)
}

/// `fsync(fd)`.
pub fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(fs::fsync(fd)?)
}

/// `fdatasync(fd)`.
pub fn fdatasync(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(fs::fdatasync(fd)?)
}

/// `pwrite(fd, buf, offset)`, repeated until all of `buf` is written.
pub fn pwrite_all(fd: BorrowedFd<'_>, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::pwrite(fd, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `pread(fd, buf, offset)`; returns the bytes read (0 at end of file).
pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match rustix::io::pread(fd, &mut *buf, offset) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `unlink(path)`.
pub fn unlink(path: &Path) -> io::Result<()> {
    Ok(fs::unlink(path)?)
}

/// `readlink("/proc/self/fd/N")`: a human-readable name for an fd, for error messages.
pub fn fd_name(fd: BorrowedFd<'_>) -> String {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match std::fs::read_link(&link) {
        Ok(p) => format!("{} (fd {})", p.display(), fd.as_raw_fd()),
        Err(_) => format!("fd {}", fd.as_raw_fd()),
    }
}

/// Whether two fds refer to the same file (same device and inode).
pub fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<bool> {
    let (x, y) = (fstat(a)?, fstat(b)?);
    Ok(x.dev == y.dev && x.ino == y.ino)
}

/// Creates an owned fd that refers to `fd`'s description (helper for `impl AsFd`).
pub fn dup_of(fd: impl AsFd) -> io::Result<OwnedFd> {
    dup(fd.as_fd())
}
