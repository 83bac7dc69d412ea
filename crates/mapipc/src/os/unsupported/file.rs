//! File calls (stub): every fallible call fails with an "unsupported" error; see the [`os` module
//! docs](crate::os) for the policy and `os/linux/file.rs` for what each call does on Linux.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::unsupported;

pub use crate::os::types::{AccessMode, FileInfo, FileKind, OpenHow, Seals};

/// `open(path, flags | O_CLOEXEC, mode)` on Linux; unsupported here.
pub fn open(_path: &Path, _how: OpenHow) -> io::Result<OwnedFd> {
    Err(unsupported("open"))
}

/// A new open file description for `fd` (`/proc/self/fd/N`) on Linux; unsupported here.
pub fn reopen(_fd: BorrowedFd<'_>, _write: bool) -> io::Result<OwnedFd> {
    Err(unsupported("reopen (/proc/self/fd)"))
}

/// `fstat(fd)` on Linux; unsupported here.
pub fn fstat(_fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    Err(unsupported("fstat"))
}

/// `stat(path)` on Linux; unsupported here.
pub fn stat(_path: &Path) -> io::Result<FileInfo> {
    Err(unsupported("stat"))
}

/// `lstat(path)` on Linux; unsupported here.
pub fn lstat(_path: &Path) -> io::Result<FileInfo> {
    Err(unsupported("lstat"))
}

/// `fcntl(fd, F_GETFL) & O_ACCMODE` on Linux; unsupported here.
pub fn access_mode(_fd: BorrowedFd<'_>) -> io::Result<AccessMode> {
    Err(unsupported("fcntl(F_GETFL)"))
}

/// `fallocate` (or `ftruncate`) to at least `size` bytes on Linux; unsupported here.
pub fn allocate(_fd: BorrowedFd<'_>, _size: u64) -> io::Result<()> {
    Err(unsupported("fallocate"))
}

/// `ftruncate(fd, size)` on Linux; unsupported here.
pub fn set_len(_fd: BorrowedFd<'_>, _size: u64) -> io::Result<()> {
    Err(unsupported("ftruncate"))
}

/// `fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, len)` on Linux; unsupported here.
pub fn reserve(_fd: BorrowedFd<'_>, _offset: u64, _len: u64) -> io::Result<()> {
    Err(unsupported("fallocate"))
}

/// `fstatfs(fd)` on Linux; unsupported here.
pub fn space_available(_fd: BorrowedFd<'_>) -> io::Result<u64> {
    Err(unsupported("fstatfs"))
}

/// Whether `e` says the file system is out of space or quota (`ENOSPC`, `EDQUOT`) on
/// Linux; always false here, where no call that could say so exists.
pub fn no_space(_e: &io::Error) -> bool {
    false
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)` on Linux; unsupported here.
pub fn memfd_create(_name: &str) -> io::Result<OwnedFd> {
    Err(unsupported("memfd_create"))
}

/// `fcntl(fd, F_ADD_SEALS, seals)` on Linux; unsupported here.
pub fn add_seals(_fd: BorrowedFd<'_>, _seals: Seals) -> io::Result<()> {
    Err(unsupported("fcntl(F_ADD_SEALS)"))
}

/// `fcntl(fd, F_GET_SEALS)` on Linux; unsupported here.
pub fn get_seals(_fd: BorrowedFd<'_>) -> io::Result<Seals> {
    Err(unsupported("fcntl(F_GET_SEALS)"))
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)` on Linux; unsupported here.
pub fn dup(_fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Err(unsupported("fcntl(F_DUPFD_CLOEXEC)"))
}

/// An open-file-description write lock (`F_OFD_SETLK(W)`) on Linux; unsupported here.
pub fn ofd_lock(_fd: BorrowedFd<'_>, _start: u64, _len: u64, _wait: bool) -> io::Result<bool> {
    Err(unsupported("fcntl(F_OFD_SETLK)"))
}

/// Releases an open-file-description lock (`F_OFD_SETLK, F_UNLCK`) on Linux; unsupported
/// here.
pub fn ofd_unlock(_fd: BorrowedFd<'_>, _start: u64, _len: u64) -> io::Result<()> {
    Err(unsupported("fcntl(F_OFD_SETLK)"))
}

/// Whether another open file description holds a lock (`F_OFD_GETLK`) on Linux;
/// unsupported here.
pub fn ofd_is_locked(_fd: BorrowedFd<'_>, _start: u64, _len: u64) -> io::Result<bool> {
    Err(unsupported("fcntl(F_OFD_GETLK)"))
}

/// `flock(fd, LOCK_EX [| LOCK_NB])` on Linux; unsupported here.
pub fn flock_exclusive(_fd: BorrowedFd<'_>, _wait: bool) -> io::Result<bool> {
    Err(unsupported("flock"))
}

/// `flock(fd, LOCK_SH [| LOCK_NB])` on Linux; unsupported here.
pub fn flock_shared(_fd: BorrowedFd<'_>, _wait: bool) -> io::Result<bool> {
    Err(unsupported("flock"))
}

/// `flock(fd, LOCK_UN)` on Linux; unsupported here.
pub fn flock_unlock(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Err(unsupported("flock"))
}

/// `fsync(fd)` on Linux; unsupported here.
pub fn fsync(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Err(unsupported("fsync"))
}

/// `fdatasync(fd)` on Linux; unsupported here.
pub fn fdatasync(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Err(unsupported("fdatasync"))
}

/// `pwrite(fd, buf, offset)` until all is written on Linux; unsupported here.
pub fn pwrite_all(_fd: BorrowedFd<'_>, _buf: &[u8], _offset: u64) -> io::Result<()> {
    Err(unsupported("pwrite"))
}

/// `pread(fd, buf, offset)` on Linux; unsupported here.
pub fn pread(_fd: BorrowedFd<'_>, _buf: &mut [u8], _offset: u64) -> io::Result<usize> {
    Err(unsupported("pread"))
}

/// `unlink(path)` on Linux; unsupported here.
pub fn unlink(_path: &Path) -> io::Result<()> {
    Err(unsupported("unlink"))
}

/// A name for an fd, for error messages. Linux reads `/proc/self/fd/N`; here it is always
/// `"fd N"` (what Linux also gives when the link cannot be read).
pub fn fd_name(fd: BorrowedFd<'_>) -> String {
    format!("fd {}", fd.as_raw_fd())
}

/// Whether two fds refer to the same file (two `fstat`s on Linux); unsupported here.
pub fn same_file(_a: BorrowedFd<'_>, _b: BorrowedFd<'_>) -> io::Result<bool> {
    Err(unsupported("fstat"))
}

/// [`dup`] of anything `AsFd`; unsupported here.
pub fn dup_of(fd: impl AsFd) -> io::Result<OwnedFd> {
    dup(fd.as_fd())
}
