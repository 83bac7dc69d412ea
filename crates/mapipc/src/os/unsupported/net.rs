//! Passing file descriptors over a Unix socket (stub): regions cannot exist here, so there
//! is nothing to pass and both calls fail with an "unsupported" error. See the [`os` module
//! docs](crate::os).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::unsupported;

/// `sendmsg` with `SCM_RIGHTS` on Linux; unsupported here.
pub fn send_fd(_sock: BorrowedFd<'_>, _fd: BorrowedFd<'_>, _payload: &[u8]) -> io::Result<()> {
    Err(unsupported("sendmsg(SCM_RIGHTS)"))
}

/// `recvmsg` with `SCM_RIGHTS` on Linux; unsupported here.
pub fn recv_fd(_sock: BorrowedFd<'_>, _buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    Err(unsupported("recvmsg(SCM_RIGHTS)"))
}

/// Borrow helper so callers can pass `&UnixStream` (no system call; the same as on Linux).
pub fn borrow<T: AsFd>(t: &T) -> BorrowedFd<'_> {
    t.as_fd()
}
