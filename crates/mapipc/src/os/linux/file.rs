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
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file::{self, OpenHow};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("f");
/// let how = OpenHow { write: true, create: true, exclusive: true, mode: 0o600, ..OpenHow::default() };
/// let fd = file::open(&path, how)?;
/// assert_eq!(file::fstat(fd.as_fd())?.mode, 0o600);
/// let again = file::open(&path, how).unwrap_err(); // O_EXCL: it exists now
/// assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file::{self, AccessMode};
/// let fd = file::memfd_create("reopen")?;
/// let ro = file::reopen(fd.as_fd(), false)?;
/// assert_eq!(file::access_mode(ro.as_fd())?, AccessMode::ReadOnly);
/// assert!(file::same_file(fd.as_fd(), ro.as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file::{self, FileKind};
/// let fd = file::memfd_create("fstat")?;
/// file::pwrite_all(fd.as_fd(), b"12345", 0)?;
/// let info = file::fstat(fd.as_fd())?;
/// assert_eq!((info.size, info.kind), (5, FileKind::Regular));
/// assert_eq!(info.uid, mapipc::os::process::euid());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    let st = fs::fstat(fd)?;
    Ok(stat_info(&st))
}

/// `stat(path)`: follows symbolic links.
///
/// # Example
/// ```
/// use mapipc::os::file::{self, FileKind};
/// # let dir = tempfile::tempdir()?;
/// let target = dir.path().join("target");
/// let link = dir.path().join("link");
/// std::fs::write(&target, b"abc")?;
/// std::os::unix::fs::symlink(&target, &link)?;
/// assert_eq!(file::stat(&link)?.kind, FileKind::Regular);
/// assert_eq!(file::stat(&link)?.size, 3);
/// assert_eq!(file::lstat(&link)?.kind, FileKind::Symlink);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stat(path: &Path) -> io::Result<FileInfo> {
    let st = fs::stat(path)?;
    Ok(stat_info(&st))
}

/// `lstat(path)`: does not follow a final symbolic link.
///
/// # Example
/// See [`stat`].
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
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file::{access_mode, AccessMode};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// # std::fs::write(&path, b"")?;
/// let ro = std::fs::File::open(&path)?;
/// let rw = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
/// assert_eq!(access_mode(ro.as_fd())?, AccessMode::ReadOnly);
/// assert_eq!(access_mode(rw.as_fd())?, AccessMode::ReadWrite);
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file;
/// let fd = file::memfd_create("alloc")?;
/// file::allocate(fd.as_fd(), 8192)?;
/// assert_eq!(file::fstat(fd.as_fd())?.size, 8192);
/// file::allocate(fd.as_fd(), 100)?; // never shrinks
/// assert_eq!(file::fstat(fd.as_fd())?.size, 8192);
/// file::set_len(fd.as_fd(), 100)?; // this does
/// assert_eq!(file::fstat(fd.as_fd())?.size, 100);
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// See [`allocate`].
pub fn set_len(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    Ok(fs::ftruncate(fd, size)?)
}

/// `fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, len)`: allocates the blocks of a range (a
/// hole gets blocks of zeros) without changing the file's length or contents.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file;
/// let fd = file::memfd_create("reserve")?;
/// file::set_len(fd.as_fd(), 8192)?;
/// file::reserve(fd.as_fd(), 4096, 4096)?;
/// assert_eq!(file::fstat(fd.as_fd())?.size, 8192);
/// assert!(file::space_available(fd.as_fd()).is_ok());
/// let full = std::io::Error::from_raw_os_error(28); // ENOSPC
/// assert!(file::no_space(&full));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn reserve(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    Ok(fs::fallocate(fd, FallocateFlags::KEEP_SIZE, offset, len)?)
}

/// `fstatfs(fd)`: the bytes available to unprivileged users on the file's file system
/// (`f_bavail * f_bsize`).
///
/// # Example
/// See [`reserve`].
pub fn space_available(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let st = fs::fstatfs(fd)?;
    Ok((st.f_bavail as u64).saturating_mul(st.f_bsize as u64))
}

/// Whether `e` says the file system is out of space or quota (`ENOSPC`, `EDQUOT`).
///
/// # Example
/// See [`reserve`].
pub fn no_space(e: &io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(|n| n == Errno::NOSPC.raw_os_error() || n == Errno::DQUOT.raw_os_error())
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file;
/// let fd = file::memfd_create("scratch")?;
/// assert_eq!(file::fstat(fd.as_fd())?.size, 0);
/// assert!(file::fd_name(fd.as_fd()).contains("memfd:scratch"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn memfd_create(name: &str) -> io::Result<OwnedFd> {
    Ok(fs::memfd_create(
        name,
        fs::MemfdFlags::CLOEXEC | fs::MemfdFlags::ALLOW_SEALING,
    )?)
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file::{self, Seals};
/// let fd = file::memfd_create("sealed")?;
/// file::set_len(fd.as_fd(), 4096)?;
/// assert_eq!(file::get_seals(fd.as_fd())?, Seals::default());
/// file::add_seals(fd.as_fd(), Seals { shrink: true, ..Seals::default() })?;
/// assert!(file::get_seals(fd.as_fd())?.shrink);
/// assert!(file::set_len(fd.as_fd(), 0).is_err()); // can never shrink now
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// See [`add_seals`].
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
///
/// # Example
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
/// use mapipc::os::file;
/// let fd = file::memfd_create("dup")?;
/// let copy = file::dup(fd.as_fd())?;
/// let other = file::dup_of(&fd)?;
/// assert_ne!(copy.as_raw_fd(), fd.as_raw_fd());
/// assert!(file::same_file(copy.as_fd(), other.as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file;
/// let a = file::memfd_create("locks")?;
/// let b = file::reopen(a.as_fd(), true)?; // a second open file description
/// assert!(file::ofd_lock(a.as_fd(), 0, 1, false)?);
/// assert!(file::ofd_is_locked(b.as_fd(), 0, 1)?);
/// assert!(!file::ofd_is_locked(a.as_fd(), 0, 1)?); // its own locks are not reported
/// assert!(!file::ofd_lock(b.as_fd(), 0, 1, false)?); // held by `a`
/// assert!(file::ofd_lock(b.as_fd(), 1, 1, false)?); // another byte is free
/// file::ofd_unlock(a.as_fd(), 0, 1)?;
/// assert!(file::ofd_lock(b.as_fd(), 0, 1, false)?);
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// See [`ofd_lock`].
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
///
/// # Example
/// See [`ofd_lock`].
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
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("lock");
/// # std::fs::write(&path, b"")?;
/// let a = std::fs::File::open(&path)?;
/// let b = std::fs::File::open(&path)?;
/// assert!(file::flock_exclusive(a.as_fd(), false)?);
/// assert!(!file::flock_shared(b.as_fd(), false)?); // `a` holds it exclusively
/// file::flock_unlock(a.as_fd())?;
/// assert!(file::flock_shared(b.as_fd(), false)?);
/// assert!(file::flock_shared(a.as_fd(), false)?); // shared locks coexist
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// See [`flock_exclusive`].
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
///
/// # Example
/// See [`flock_exclusive`].
pub fn flock_unlock(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(fs::flock(fd, fs::FlockOperation::Unlock)?)
}

/// `fsync(fd)`.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// let f = std::fs::File::create(&path)?;
/// file::pwrite_all(f.as_fd(), b"durable", 0)?;
/// file::fdatasync(f.as_fd())?; // the data
/// file::fsync(f.as_fd())?; // the data and the metadata
/// assert_eq!(std::fs::read(&path)?, b"durable");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(fs::fsync(fd)?)
}

/// `fdatasync(fd)`.
///
/// # Example
/// See [`fsync`].
pub fn fdatasync(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(fs::fdatasync(fd)?)
}

/// `pwrite(fd, buf, offset)`, repeated until all of `buf` is written.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::file;
/// let fd = file::memfd_create("rw")?;
/// file::pwrite_all(fd.as_fd(), b"world", 6)?; // leaves a hole of zeros before
/// let mut buf = [0xff; 16];
/// assert_eq!(file::pread(fd.as_fd(), &mut buf, 0)?, 11);
/// assert_eq!(&buf[..11], b"\0\0\0\0\0\0world");
/// assert_eq!(file::pread(fd.as_fd(), &mut buf, 11)?, 0); // end of file
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// # Example
/// See [`pwrite_all`].
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
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("gone");
/// std::fs::write(&path, b"x")?;
/// mapipc::os::file::unlink(&path)?;
/// assert!(!path.exists());
/// let again = mapipc::os::file::unlink(&path).unwrap_err();
/// assert_eq!(again.kind(), std::io::ErrorKind::NotFound);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unlink(path: &Path) -> io::Result<()> {
    Ok(fs::unlink(path)?)
}

/// `readlink("/proc/self/fd/N")`: a human-readable name for an fd, for error messages.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("named");
/// let f = std::fs::File::create(&path)?;
/// let name = mapipc::os::file::fd_name(f.as_fd());
/// assert!(name.starts_with(&path.display().to_string()), "{name}");
/// assert!(name.ends_with(')')); // "PATH (fd N)"
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn fd_name(fd: BorrowedFd<'_>) -> String {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match std::fs::read_link(&link) {
        Ok(p) => format!("{} (fd {})", p.display(), fd.as_raw_fd()),
        Err(_) => format!("fd {}", fd.as_raw_fd()),
    }
}

/// Whether two fds refer to the same file (same device and inode).
///
/// # Example
/// See [`reopen`] and [`dup`].
pub fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<bool> {
    let (x, y) = (fstat(a)?, fstat(b)?);
    Ok(x.dev == y.dev && x.ino == y.ino)
}

/// Creates an owned fd that refers to `fd`'s description (helper for `impl AsFd`).
///
/// # Example
/// See [`dup`].
pub fn dup_of(fd: impl AsFd) -> io::Result<OwnedFd> {
    dup(fd.as_fd())
}
