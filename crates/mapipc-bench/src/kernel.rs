//! Kernel transports: `pipe` (two pipes), `uds` (a Unix stream socket pair) and `tcp`
//! (loopback, `TCP_NODELAY`).
//!
//! All three are byte streams carrying fixed-size messages back to back. Sending is one
//! `write` of the whole message from a buffer allocated once (the sequence number is stamped
//! into it in place). Receiving goes through a [`FrameReader`]: one `read` takes everything
//! the kernel has (up to 64 KiB or two messages), and messages are checked in that buffer,
//! so a stream of small messages costs one `read` per batch, not per message, while a
//! ping-pong still returns each message as soon as it arrives.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;

use crate::frame::{self, Frame};
use crate::sys;
use crate::transport::{Class, Endpoint, Pair, Transport};

/// Reads fixed-size messages from a byte stream with few syscalls and no allocation after
/// construction.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    size: usize,
}

impl<R: Read> FrameReader<R> {
    /// A reader of `size`-byte messages (`size >= 8`) from `inner`.
    ///
    /// # Example
    /// ```
    /// use mapipc_bench::frame;
    /// use mapipc_bench::kernel::FrameReader;
    /// let mut bytes = Vec::new();
    /// for seq in 0..3 {
    ///     let mut m = frame::template(16);
    ///     frame::stamp(&mut m, seq);
    ///     bytes.extend_from_slice(&m);
    /// }
    /// let mut r = FrameReader::new(&bytes[..], 16);
    /// for seq in 0..3 {
    ///     assert_eq!(r.next_frame()?.check(16), Ok(seq));
    /// }
    /// assert!(r.next_frame().is_err()); // end of stream
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: R, size: usize) -> FrameReader<R> {
        let cap = (64 << 10).max(2 * size);
        FrameReader {
            inner,
            buf: vec![0u8; cap].into_boxed_slice(),
            start: 0,
            end: 0,
            size,
        }
    }

    /// The next message's frame, reading from the stream only when no whole message is
    /// buffered.
    ///
    /// # Errors
    /// Read errors; `UnexpectedEof` when the stream ends (the peer closed or died).
    #[inline]
    pub fn next_frame(&mut self) -> io::Result<Frame> {
        while self.end - self.start < self.size {
            self.fill()?;
        }
        let f = Frame::read(&self.buf[self.start..self.start + self.size]);
        self.start += self.size;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(f)
    }

    #[cold]
    fn fill(&mut self) -> io::Result<()> {
        if self.start + self.size > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                // A plain error kind: no allocation (this may run in the forked child).
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// An endpoint over a byte stream: writes whole messages, reads through a [`FrameReader`].
#[derive(Debug)]
pub struct StreamEndpoint<R, W> {
    reader: FrameReader<R>,
    writer: W,
    msg: Vec<u8>,
}

impl<R: Read, W: Write> StreamEndpoint<R, W> {
    /// An endpoint sending `size`-byte messages to `writer` and reading them from `reader`.
    pub fn new(reader: R, writer: W, size: usize) -> Self {
        StreamEndpoint {
            reader: FrameReader::new(reader, size),
            writer,
            msg: frame::template(size),
        }
    }
}

impl<R: Read + Send, W: Write + Send> Endpoint for StreamEndpoint<R, W> {
    #[inline]
    fn send(&mut self, seq: u64) -> io::Result<()> {
        frame::stamp(&mut self.msg, seq);
        self.writer.write_all(&self.msg)
    }

    #[inline]
    fn recv(&mut self) -> io::Result<Frame> {
        self.reader.next_frame()
    }
}

/// `pipe`: two pipes, one per direction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pipe;

impl Transport for Pipe {
    fn name(&self) -> &str {
        "pipe"
    }

    fn class(&self) -> Class {
        Class::Kernel
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        let (to_server_r, to_server_w) = sys::pipe()?;
        let (to_client_r, to_client_w) = sys::pipe()?;
        Ok(Pair::new(
            StreamEndpoint::<File, File>::new(to_client_r, to_server_w, size),
            StreamEndpoint::<File, File>::new(to_server_r, to_client_w, size),
        ))
    }
}

/// `uds`: a Unix domain socket pair (`SOCK_STREAM`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Uds;

impl Transport for Uds {
    fn name(&self) -> &str {
        "uds"
    }

    fn class(&self) -> Class {
        Class::Kernel
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        let (c, s) = UnixStream::pair()?;
        Ok(Pair::new(
            StreamEndpoint::new(c.try_clone()?, c, size),
            StreamEndpoint::new(s.try_clone()?, s, size),
        ))
    }
}

/// `tcp`: a loopback TCP connection with `TCP_NODELAY` on both ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcp;

impl Transport for Tcp {
    fn name(&self) -> &str {
        "tcp"
    }

    fn class(&self) -> Class {
        Class::Kernel
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let c = TcpStream::connect(listener.local_addr()?)?;
        let (s, _) = listener.accept()?;
        c.set_nodelay(true)?;
        s.set_nodelay(true)?;
        Ok(Pair::new(
            StreamEndpoint::new(c.try_clone()?, c, size),
            StreamEndpoint::new(s.try_clone()?, s, size),
        ))
    }
}
