//! Passing file descriptors between unrelated processes over a Unix socket:
//! `sendmsg`/`recvmsg` with `SCM_RIGHTS`.
//!
//! # References
//! - [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html),
//!   [`cmsg(3)`](https://man7.org/linux/man-pages/man3/cmsg.3.html)

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Sends `payload` and one fd over a connected Unix socket in one `sendmsg`.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// use mapipc::os::{file, net};
/// let (a, b) = UnixStream::pair()?;
/// let fd = file::memfd_create("passed")?;
/// net::send_fd(net::borrow(&a), fd.as_fd(), b"hello")?;
/// let mut buf = [0; 16];
/// let (n, got) = net::recv_fd(net::borrow(&b), &mut buf)?;
/// assert_eq!(&buf[..n], b"hello");
/// assert!(file::same_file(fd.as_fd(), got.unwrap().as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &[u8]) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small for SCM_RIGHTS"));
    }
    let iov = [IoSlice::new(payload)];
    loop {
        match sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(n) if n == payload.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("short sendmsg while passing an fd")),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives up to `buf.len()` payload bytes and at most one fd from a Unix socket.
/// Returns the payload length and the fd, if one came. Extra fds are closed.
///
/// # Example
/// See [`send_fd`].
pub fn recv_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut got = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for fd in fds {
                if got.is_none() {
                    got = Some(fd);
                }
                // any further fd is dropped (closed) here
            }
        }
    }
    Ok((msg.bytes, got))
}

/// Borrow helper so callers can pass `&UnixStream`.
///
/// # Example
/// See [`send_fd`].
pub fn borrow<T: AsFd>(t: &T) -> BorrowedFd<'_> {
    t.as_fd()
}
