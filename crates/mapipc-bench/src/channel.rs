//! The mapipc channel kinds as [`Transport`]s: `spsc`, `mpsc` and `broadcast`, each in `spin`
//! and `park` modes, one producer and one consumer (or subscriber) per direction.
//!
//! # How a channel is measured
//!
//! A transport is a pair of channels, one per direction, created in anonymous shared memory
//! by [`Transport::connect`] before the fork. Each process attaches its ends after the fork
//! ([`Endpoint::attach`]): the client (parent) the sender of the first channel and the
//! receiver of the second, the server (child) the other two. Attaching in the process that
//! uses the end is how mapipc channels are meant to be used across `fork`, and it is what
//! makes the channel's own liveness work: each end is a peer of the region held by a lock of
//! that process, so when the server dies the client's blocked calls return `Disconnected`
//! (within the channel's check interval, 50 ms).
//!
//! - **send** copies all `size` bytes of the message into the ring (`Sender::send_batched`,
//!   one copy, the record written whole inside a batch) and publishes every
//!   [`PUBLISH_EVERY`] messages and on [`Endpoint::flush`], exactly the publication policy of `ring-floor` (the harness
//!   flushes after every message of a round trip, so a ping-pong publishes every message);
//! - **recv** reads the message in place (`Receiver::recv_ref`): the head and tail words are
//!   read from the ring, then the guard is dropped, which hands the space back. Each call
//!   waits with the mode's [`WaitStrategy`]. (Draining batches with `Receiver::drain` and
//!   handing their space back at once measured the same throughput, the sender being the
//!   slower side, and a longer round trip: a ping-pong always finds the ring empty first.)
//!
//! # Kinds
//!
//! - `spsc` ([`SpscLink`]): the single-producer ring;
//! - `mpsc` ([`MpscLink`]): a multi-producer channel with one producer attached, so the row
//!   is the cost of the multi-producer protocol (a CAS per claim, a commit word per record)
//!   for the same traffic;
//! - `broadcast` ([`BroadcastLink`]): lossless, one subscriber per direction (the producer
//!   waits for it, so nothing is dropped and every message is checked exactly as for `spsc`).
//!
//! The kinds differ only in how the channel is created and how the receiving end attaches;
//! sending and receiving are the same calls ([`ChanSender`], [`ChanReceiver`]). Several
//! producer processes into one consumer, and fan-out to several subscriber processes (lossless
//! and lossy), do not fit a two-process harness: [`crate::kinds`] measures them.
//!
//! Modes ([`Mode`]): `spin` sets [`WaitStrategy::BusyPoll`] on all four ends (an SPSC end and
//! an MPSC consumer then tell their peer they never park, so publishing skips the wake-up
//! barrier; MPSC producers and broadcast ends always make it, since several ends may park on
//! the same word); `park` keeps the
//! library default, [`WaitStrategy::SpinThenPark`] (spin about 2000 times, then sleep on the
//! futex). A ping-pong whose answers come back within the spin window therefore never parks
//! in `park` mode; the criterion bench `cargo bench -p mapipc --bench channel` also measures
//! [`WaitStrategy::Park`] (sleep at once), the mode to compare with `futex-floor`.
//!
//! # Adding a channel kind
//!
//! Implement [`Link`] (one direction: create it, attach a sender or a receiver, and unblock the
//! client when the server died without attaching) with a [`LinkSender`] and a
//! [`LinkReceiver`], and register `ChannelTransport::<YourLink>::new(Mode::Spin)` and
//! `Mode::Park` in [`crate::builtin_transports`]. Everything else (framing, checks, the
//! harness protocol) is shared.
//!
//! # Example
//! ```
//! use mapipc_bench::channel::{ChannelTransport, Mode, SpscLink};
//! use mapipc_bench::{run_transports, Config, Metric, Transport};
//! let spsc = ChannelTransport::<SpscLink>::new(Mode::Park);
//! assert_eq!((spsc.name(), spsc.mode()), ("spsc", Some("park")));
//! let report = run_transports(&Config::smoke(&[64]), &[&spsc], &|_| {})?;
//! assert!(report.value("spsc", Some("park"), 64, Metric::ThroughputMsgsPerS).unwrap() > 0.0);
//! # Ok::<(), mapipc_bench::BenchError>(())
//! ```

use std::fmt;
use std::io;
use std::marker::PhantomData;

use mapipc::channel::{
    Bytes, Channel, ChannelOptions, Kind, Policy, Receiver, RecvError, SendError, Sender, StartAt,
    WaitStrategy,
};

use crate::floors::RingFloorTransport;
use crate::frame::{self, Frame};
use crate::transport::{Class, Endpoint, Pair, Transport};

/// Messages committed between two publications while streaming (as `ring-floor`).
pub const PUBLISH_EVERY: u32 = 32;

/// How the ends of a channel wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `spin`: every end busy-polls ([`WaitStrategy::BusyPoll`]).
    Spin,
    /// `park`: every end spins a little, then parks on the futex (the library default,
    /// [`WaitStrategy::SpinThenPark`]).
    Park,
}

impl Mode {
    /// `"spin"` or `"park"`, the `mode` of the rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Spin => "spin",
            Mode::Park => "park",
        }
    }

    /// The wait strategy every end uses in this mode.
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::WaitStrategy;
    /// use mapipc_bench::channel::Mode;
    /// assert_eq!(Mode::Spin.wait_strategy(), WaitStrategy::BusyPoll);
    /// assert_eq!(Mode::Park.wait_strategy(), WaitStrategy::default());
    /// ```
    pub fn wait_strategy(self) -> WaitStrategy {
        match self {
            Mode::Spin => WaitStrategy::BusyPoll,
            Mode::Park => WaitStrategy::default(),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sending end of one direction of a channel kind.
pub trait LinkSender: Send + 'static {
    /// Copies `msg` (all of it) into the channel, waiting while it is full. It may stay
    /// unpublished until [`flush`](Self::flush).
    ///
    /// # Errors
    /// The receiver is gone (`ConnectionAborted`), or the channel failed.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;

    /// Publishes everything sent so far.
    ///
    /// # Errors
    /// The channel failed.
    fn flush(&mut self) -> io::Result<()>;
}

/// The receiving end of one direction of a channel kind.
pub trait LinkReceiver: Send + 'static {
    /// Waits for the next message and returns its head and tail words, read in place. A
    /// message shorter than 8 bytes is returned with zero words (the harness then reports
    /// it as corrupted).
    ///
    /// # Errors
    /// The sender is gone and everything was received (`ConnectionAborted`), or the channel
    /// failed.
    fn recv(&mut self, size: usize) -> io::Result<Frame>;
}

/// One direction of a channel kind: the shared memory (created before the fork, inherited by
/// the child) and how each process attaches its end.
pub trait Link: Clone + Send + Sync + 'static {
    /// The kind's name: `spsc`, `mpsc`, `broadcast`.
    const NAME: &'static str;
    /// The sending end.
    type Tx: LinkSender;
    /// The receiving end.
    type Rx: LinkReceiver;

    /// Creates the channel for messages of exactly `size` bytes.
    ///
    /// # Errors
    /// Whatever creating the channel fails with.
    fn create(size: usize) -> io::Result<Self>;

    /// Attaches a sender in this process.
    ///
    /// # Errors
    /// Whatever attaching fails with.
    fn sender(&self, wait: WaitStrategy) -> io::Result<Self::Tx>;

    /// Attaches a receiver in this process.
    ///
    /// # Errors
    /// Whatever attaching fails with.
    fn receiver(&self, wait: WaitStrategy) -> io::Result<Self::Rx>;

    /// Called in the parent once the server process has exited or was killed: makes the
    /// client's pending and future waits on this link end, even if the server died before
    /// attaching its end (a dead attached end is already noticed by the channel itself).
    fn abort(&self);
}

/// A channel error as an `io::Error`: a gone peer is `ConnectionAborted`, which the harness
/// reads as the echo of the other process's death.
fn channel_io(e: impl std::error::Error + Send + Sync + 'static, disconnected: bool) -> io::Error {
    if disconnected {
        io::Error::new(io::ErrorKind::ConnectionAborted, e)
    } else {
        io::Error::other(e)
    }
}

/// A failure to create the channel or attach an end, as an `io::Error`.
fn setup_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

/// The head and tail words of a message read in place.
#[inline]
fn frame_of(bytes: &Bytes<'_>, size: usize) -> Frame {
    let word = |at| bytes.read_pod::<u64>(at).map_or(0, u64::from_le);
    Frame {
        head: word(0),
        tail: word(frame::tail_offset(size)),
    }
}

/// Ring bytes for records of `record` bytes carrying `size`-byte messages: the bytes of
/// `ring-floor`'s slots (the same footprint), rounded up to a power of two, and at least two
/// records. A channel's records carry headers, so it holds fewer messages than the floor has
/// slots unless the rounding makes up for them. (Until 2026-11-27 it held as many messages as
/// the floor has slots, rounded up: up to twice the floor's memory, which made the 64 KiB
/// stream slower, as the channel bench measured.)
fn ring_bytes(size: usize, record: usize) -> usize {
    (RingFloorTransport::slots_for(size) * size.next_multiple_of(8))
        .max(2 * record)
        .next_power_of_two()
}

/// Creates a channel with `opts` and checks that it carries `size`-byte messages.
fn create_channel(kind: &str, opts: &ChannelOptions, size: usize) -> io::Result<Channel> {
    let chan = opts.anonymous().map_err(setup_err)?;
    if chan.max_message() < size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{kind}: {size}-byte messages exceed the channel's maximum of {}",
                chan.max_message()
            ),
        ));
    }
    Ok(chan)
}

/// A sender of any channel kind: [`mapipc::channel::Sender`] with the harness's publication
/// policy (one copy with `Sender::send_batched`, a flush every [`PUBLISH_EVERY`] messages
/// and on [`LinkSender::flush`]).
#[derive(Debug)]
pub struct ChanSender {
    tx: Sender,
    unpublished: u32,
}

impl ChanSender {
    pub(crate) fn new(mut tx: Sender, wait: WaitStrategy) -> ChanSender {
        tx.set_wait_strategy(wait);
        ChanSender { tx, unpublished: 0 }
    }
}

impl LinkSender for ChanSender {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.send_batched(msg).map_err(|e| {
            let gone = matches!(e, SendError::Disconnected);
            channel_io(e, gone)
        })?;
        self.unpublished += 1;
        if self.unpublished >= PUBLISH_EVERY {
            self.tx.flush();
            self.unpublished = 0;
        }
        Ok(())
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        self.tx.flush();
        self.unpublished = 0;
        Ok(())
    }
}

/// A receiver of any channel kind (a subscriber, for broadcast): each message is read in
/// place with `Receiver::recv_ref`. [`RecvError::Lagged`] (a lossy broadcast channel lapped
/// the subscriber) is an error: the harness's links are lossless, so it never happens unless
/// the channel loses messages.
#[derive(Debug)]
pub struct ChanReceiver {
    rx: Receiver,
}

impl ChanReceiver {
    fn new(mut rx: Receiver, wait: WaitStrategy) -> ChanReceiver {
        rx.set_wait_strategy(wait);
        ChanReceiver { rx }
    }
}

impl LinkReceiver for ChanReceiver {
    #[inline]
    fn recv(&mut self, size: usize) -> io::Result<Frame> {
        let m = self.rx.recv_ref().map_err(|e| {
            let gone = matches!(e, RecvError::Disconnected);
            channel_io(e, gone)
        })?;
        Ok(frame_of(&m.bytes(), size))
    }
}

/// Makes the client's waits on `chan` end once the server is gone (see [`Link::abort`]): a
/// stand-in end of each role takes the dead (or never attached) server's place and leaves at
/// once, so the client's end sees its peer gone. Where the client's own end holds the role,
/// the stand-in is refused (`Busy`) or attaches next to it and leaves: nothing changes there.
fn stand_in_ends(chan: &Channel) {
    drop(chan.sender());
    drop(chan.subscribe(StartAt::Newest));
}

/// `Link` for a channel kind's link type: `$options` builds the channel's options for
/// `size`-byte messages, `$receiver` attaches the receiving end.
macro_rules! channel_link {
    ($link:ident, $name:literal, $options:expr, $receiver:expr) => {
        impl $link {
            /// The channel of this link.
            pub fn channel(&self) -> &Channel {
                &self.chan
            }
        }

        impl Link for $link {
            const NAME: &'static str = $name;
            type Tx = ChanSender;
            type Rx = ChanReceiver;

            fn create(size: usize) -> io::Result<$link> {
                let opts: ChannelOptions = $options(size);
                let chan = create_channel(Self::NAME, &opts, size)?;
                Ok($link { chan })
            }

            fn sender(&self, wait: WaitStrategy) -> io::Result<ChanSender> {
                let tx = self.chan.sender().map_err(setup_err)?;
                Ok(ChanSender::new(tx, wait))
            }

            fn receiver(&self, wait: WaitStrategy) -> io::Result<ChanReceiver> {
                let rx = $receiver(&self.chan).map_err(setup_err)?;
                Ok(ChanReceiver::new(rx, wait))
            }

            fn abort(&self) {
                stand_in_ends(&self.chan);
            }
        }
    };
}

/// The `spsc` channel kind: [`mapipc::channel::Channel`] in anonymous shared memory.
#[derive(Clone, Debug)]
pub struct SpscLink {
    chan: Channel,
}

impl SpscLink {
    /// Ring capacity for `size`-byte messages: `ring-floor`'s bytes of slots (about 1 MiB, 64
    /// to 4096 slots), rounded up to a power of two.
    ///
    /// # Example
    /// ```
    /// use mapipc_bench::channel::SpscLink;
    /// assert_eq!(SpscLink::capacity_for(8), 32 << 10); // 4096 slots of 8 bytes
    /// assert_eq!(SpscLink::capacity_for(64), 256 << 10); // 4096 slots of 64 bytes
    /// assert_eq!(SpscLink::capacity_for(65536), 4 << 20); // 64 slots of 64 KiB
    /// ```
    pub fn capacity_for(size: usize) -> usize {
        ring_bytes(size, 8 + size.next_multiple_of(8))
    }
}

channel_link!(
    SpscLink,
    "spsc",
    |size| {
        let mut opts = ChannelOptions::new(Kind::Spsc);
        opts.capacity(SpscLink::capacity_for(size));
        opts
    },
    Channel::receiver
);

/// The `mpsc` channel kind with one producer attached: [`Kind::Mpsc`] in anonymous shared
/// memory, created with the library's defaults but its capacity (64 producer slots), so the
/// row shows what the multi-producer protocol (a CAS per claim, a commit flag per record,
/// blocks of 32 bytes) costs over `spsc` for the same traffic. Scaling with several producer
/// processes is measured by [`crate::kinds`].
#[derive(Clone, Debug)]
pub struct MpscLink {
    chan: Channel,
}

impl MpscLink {
    /// Ring capacity for `size`-byte messages: `ring-floor`'s bytes of slots, rounded up to a
    /// power of two (MPSC records take a 16-byte header and whole 32-byte blocks, so it holds
    /// fewer messages).
    ///
    /// # Example
    /// ```
    /// use mapipc_bench::channel::MpscLink;
    /// assert_eq!(MpscLink::capacity_for(8), 32 << 10); // 1024 records of 32 bytes
    /// assert_eq!(MpscLink::capacity_for(64), 256 << 10); // 2730 records of 96 bytes
    /// assert_eq!(MpscLink::capacity_for(65536), 4 << 20); // 63 records of 65568 bytes
    /// ```
    pub fn capacity_for(size: usize) -> usize {
        ring_bytes(size, (16 + size).next_multiple_of(32))
    }
}

channel_link!(
    MpscLink,
    "mpsc",
    |size| {
        let mut opts = ChannelOptions::new(Kind::Mpsc);
        opts.capacity(MpscLink::capacity_for(size));
        opts
    },
    Channel::receiver
);

/// The `broadcast` kind with one subscriber: [`Kind::Broadcast`], [`Policy::Lossless`] (the
/// producer waits for the subscriber, so nothing is dropped and every message is checked as
/// for `spsc`), in anonymous shared memory with the library's defaults but its capacity (32
/// subscriber slots). The subscriber starts at the oldest retained message
/// ([`StartAt::Oldest`]): the client may send its first message before the server has
/// subscribed. Fan-out to several subscriber processes, and the lossy policy, are measured by
/// [`crate::kinds`].
#[derive(Clone, Debug)]
pub struct BroadcastLink {
    chan: Channel,
}

impl BroadcastLink {
    /// Ring capacity for `size`-byte messages: `ring-floor`'s bytes of slots, rounded up to a
    /// power of two (broadcast records take a 16-byte header and the payload padded to 16
    /// bytes, so it holds fewer messages).
    ///
    /// # Example
    /// ```
    /// use mapipc_bench::channel::BroadcastLink;
    /// assert_eq!(BroadcastLink::capacity_for(8), 32 << 10); // 1024 records of 32 bytes
    /// assert_eq!(BroadcastLink::capacity_for(64), 256 << 10); // 3276 records of 80 bytes
    /// assert_eq!(BroadcastLink::capacity_for(65536), 4 << 20); // 63 records of 65552 bytes
    /// ```
    pub fn capacity_for(size: usize) -> usize {
        ring_bytes(size, 16 + size.next_multiple_of(16))
    }
}

channel_link!(
    BroadcastLink,
    "broadcast",
    |size| {
        let mut opts = ChannelOptions::new(Kind::Broadcast);
        opts.capacity(BroadcastLink::capacity_for(size))
            .policy(Policy::Lossless);
        opts
    },
    |chan: &Channel| chan.subscribe(StartAt::Oldest)
);

/// A channel kind in one mode, as a [`Transport`].
pub struct ChannelTransport<L: Link> {
    mode: Mode,
    _link: PhantomData<fn() -> L>,
}

impl<L: Link> ChannelTransport<L> {
    /// The kind `L` in `mode`.
    pub fn new(mode: Mode) -> Self {
        ChannelTransport {
            mode,
            _link: PhantomData,
        }
    }
}

impl<L: Link> fmt::Debug for ChannelTransport<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelTransport")
            .field("kind", &L::NAME)
            .field("mode", &self.mode)
            .finish()
    }
}

/// One process's two ends: the sender of `out`, the receiver of `inn`, attached by
/// [`Endpoint::attach`].
struct ChannelEnd<L: Link> {
    out: L,
    inn: L,
    wait: WaitStrategy,
    tx: Option<L::Tx>,
    rx: Option<L::Rx>,
    msg: Vec<u8>,
}

fn not_attached() -> io::Error {
    io::Error::other("channel end used before it was attached")
}

impl<L: Link> Endpoint for ChannelEnd<L> {
    fn attach(&mut self) -> io::Result<()> {
        self.tx = Some(self.out.sender(self.wait)?);
        self.rx = Some(self.inn.receiver(self.wait)?);
        Ok(())
    }

    #[inline]
    fn send(&mut self, seq: u64) -> io::Result<()> {
        frame::stamp(&mut self.msg, seq);
        match &mut self.tx {
            Some(tx) => tx.send(&self.msg),
            None => Err(not_attached()),
        }
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.tx {
            Some(tx) => tx.flush(),
            None => Err(not_attached()),
        }
    }

    #[inline]
    fn recv(&mut self) -> io::Result<Frame> {
        let size = self.msg.len();
        match &mut self.rx {
            Some(rx) => rx.recv(size),
            None => Err(not_attached()),
        }
    }
}

impl<L: Link> Transport for ChannelTransport<L> {
    fn name(&self) -> &str {
        L::NAME
    }

    fn mode(&self) -> Option<&str> {
        Some(self.mode.as_str())
    }

    fn class(&self) -> Class {
        Class::Channel
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        let to_server = L::create(size)?;
        let to_client = L::create(size)?;
        let wait = self.mode.wait_strategy();
        let end = |out: &L, inn: &L| ChannelEnd::<L> {
            out: out.clone(),
            inn: inn.clone(),
            wait,
            tx: None,
            rx: None,
            msg: frame::template(size),
        };
        let client = end(&to_server, &to_client);
        let server = end(&to_client, &to_server);
        Ok(Pair::new(client, server).with_abort(move || {
            to_server.abort();
            to_client.abort();
        }))
    }
}
