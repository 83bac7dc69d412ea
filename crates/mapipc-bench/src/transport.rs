//! The [`Transport`] abstraction: a way to move fixed-size messages between two processes.
//!
//! The harness measures a transport like this, for each message size:
//!
//! 1. in the parent, [`Transport::connect`] creates everything both ends share (pipes, a
//!    socket pair, a shared mapping...) and returns both [`Endpoint`]s in a [`Pair`];
//! 2. the harness forks: the parent keeps [`Pair::client`] and drops the server end, the child
//!    keeps [`Pair::server`] and never returns (it ends with `_exit`);
//! 3. the client drives a ping-pong (the server echoes every message) and then a one-way
//!    stream (the server acknowledges its end), checking sequence numbers on both sides.
//!
//! Adding a transport (a mapipc channel kind, say) means implementing [`Transport`] and
//! [`Endpoint`]; nothing else in the harness changes. Rules for implementations:
//!
//! - `connect` does all allocation and setup: the child runs only `Endpoint` methods between
//!   `fork` and `_exit`, so they should not allocate (the harness may fork from a
//!   multi-threaded process); the one exception is [`Endpoint::attach`], for what must be done
//!   by the process that uses the endpoint (a mapipc channel registers each end as a peer whose
//!   liveness the kernel tracks per process, so it attaches its ends there);
//! - `send` must move all `size` bytes of the message through the transport (one copy into the
//!   transport, as `send(&[u8])` does): stamping only the sequence-number words into a
//!   zero-copy grant would measure less work than the floors and kernel transports do;
//! - `recv` may read the message in place and only needs to return its head and tail words
//!   ([`Frame`]); the harness checks them;
//! - every blocking wait in the client endpoint must end when the server process dies: kernel
//!   objects see end-of-file once the server's descriptors close, shared-memory transports
//!   provide [`Pair::abort`], which the harness calls when the child exits or times out.
//!
//! # Example
//! A transport over a Unix socket pair, in a few lines (the built-in `uds` transport does
//! the same with buffered reads):
//! ```
//! use std::io::{self, Read, Write};
//! use std::os::unix::net::UnixStream;
//! use mapipc_bench::frame::{self, Frame};
//! use mapipc_bench::transport::{Class, Endpoint, Pair, Transport};
//!
//! struct Simple;
//! struct End { sock: UnixStream, buf: Vec<u8> }
//!
//! impl Endpoint for End {
//!     fn send(&mut self, seq: u64) -> io::Result<()> {
//!         frame::stamp(&mut self.buf, seq);
//!         self.sock.write_all(&self.buf)
//!     }
//!     fn recv(&mut self) -> io::Result<Frame> {
//!         self.sock.read_exact(&mut self.buf)?;
//!         Ok(Frame::read(&self.buf))
//!     }
//! }
//!
//! impl Transport for Simple {
//!     fn name(&self) -> &str { "simple-uds" }
//!     fn class(&self) -> Class { Class::Kernel }
//!     fn connect(&self, size: usize) -> io::Result<Pair> {
//!         let (a, b) = UnixStream::pair()?;
//!         Ok(Pair::new(
//!             End { sock: a, buf: frame::template(size) },
//!             End { sock: b, buf: frame::template(size) },
//!         ))
//!     }
//! }
//!
//! let config = mapipc_bench::Config::smoke(&[64]);
//! let report = mapipc_bench::run_transports(&config, &[&Simple], &|_| {})?;
//! assert_eq!(report.rows.len(), 5);
//! # Ok::<(), mapipc_bench::BenchError>(())
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;

pub use crate::frame::Frame;

/// The family of a transport. The table compares every row with the best [`Class::Kernel`]
/// transport and with the [`Class::Floor`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Kernel IPC: pipes, sockets.
    Kernel,
    /// A raw shared-memory lower bound (`shm-spin-floor`, `futex-floor`, `ring-floor`).
    Floor,
    /// A mapipc channel kind.
    Channel,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Kernel => "kernel",
            Class::Floor => "floor",
            Class::Channel => "channel",
        })
    }
}

/// One end of a connected transport, used by one process after the fork.
///
/// All messages have the size given to [`Transport::connect`]. See the [module
/// docs](self) for the rules an implementation follows.
pub trait Endpoint: Send {
    /// Called once in the process that uses this endpoint, after the fork and the pinning,
    /// before any message. Transports whose ends belong to a process (mapipc channel ends,
    /// registered as peers of their region) attach them here; it may allocate (glibc's
    /// allocator is fork-safe, as the channel's own fork tests rely on). The default does
    /// nothing.
    ///
    /// # Errors
    /// Whatever attaching fails with.
    fn attach(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Sends the message numbered `seq`: `size` bytes laid out by [`crate::frame::stamp`].
    /// Blocks while the transport is full.
    ///
    /// # Errors
    /// Any I/O error; the peer is gone.
    fn send(&mut self, seq: u64) -> io::Result<()>;

    /// Makes everything sent so far visible to the peer. Transports that batch publication
    /// (a ring publishing its index every 32 messages) do it here; the default does nothing.
    /// The harness flushes after every message of a ping-pong and at the end of a stream.
    ///
    /// # Errors
    /// Any I/O error.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Blocks until the next message arrives and returns its head and tail words.
    ///
    /// # Errors
    /// Any I/O error; the peer is gone (end of file, or the harness aborted the pair).
    fn recv(&mut self) -> io::Result<Frame>;
}

/// Unblocks the client endpoint of a pair whose server process died (see [`Pair::abort`]).
pub type Abort = Arc<dyn Fn() + Send + Sync>;

/// Both endpoints of a freshly connected transport, created before the fork.
pub struct Pair {
    /// The parent's end: it drives the measurement.
    pub client: Box<dyn Endpoint>,
    /// The child's end: it echoes and acknowledges.
    pub server: Box<dyn Endpoint>,
    /// For transports whose waits do not end by themselves when the peer dies (shared
    /// memory): called by the harness, from another thread, once the server process has
    /// exited or was killed; it must make every pending and future wait of `client` fail.
    pub abort: Option<Abort>,
}

impl Pair {
    /// A pair without an abort hook (kernel transports, which see end-of-file).
    pub fn new(client: impl Endpoint + 'static, server: impl Endpoint + 'static) -> Pair {
        Pair {
            client: Box::new(client),
            server: Box::new(server),
            abort: None,
        }
    }

    /// Adds an abort hook.
    pub fn with_abort(mut self, abort: impl Fn() + Send + Sync + 'static) -> Pair {
        self.abort = Some(Arc::new(abort));
        self
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("abort", &self.abort.is_some())
            .finish_non_exhaustive()
    }
}

/// An IPC mechanism to measure.
pub trait Transport: Send + Sync {
    /// The row name: `pipe`, `uds`, `tcp`, `shm-spin-floor`, `futex-floor`, `ring-floor`,
    /// or a mapipc channel kind (`spsc`, `mpsc`, `broadcast`).
    fn name(&self) -> &str;

    /// `Some("spin")` or `Some("park")` for mapipc channel kinds, `None` for kernel
    /// transports and floors.
    fn mode(&self) -> Option<&str> {
        None
    }

    /// The family, for the ratios in the table.
    fn class(&self) -> Class;

    /// Creates both endpoints for messages of exactly `size` bytes (`size >= 8`), in the
    /// parent, before the fork.
    ///
    /// # Errors
    /// Whatever the setup fails with.
    fn connect(&self, size: usize) -> io::Result<Pair>;
}

/// `name` or `name (mode)`, as used in messages and the table.
pub fn label(t: &dyn Transport) -> String {
    match t.mode() {
        Some(m) => format!("{} ({m})", t.name()),
        None => t.name().to_string(),
    }
}
