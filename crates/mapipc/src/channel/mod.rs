//! Lock-free, variable-size, zero-copy message channels between processes.
//!
//! A channel is a [`Region`] whose data holds a small header and a byte ring
//! ([`ring`](self) documents the algorithm: a bounded single-producer single-consumer ring
//! of contiguous, 8-byte aligned records with free-running positions). Messages are 1 byte
//! to [`Channel::max_message`] (`capacity / 2 - 8`) bytes.
//!
//! - **Related processes**: create the channel before `fork` ([`Channel::anonymous`]), then
//!   attach one end in each process after the fork ([`Channel::sender`],
//!   [`Channel::receiver`]).
//! - **Unrelated processes**: [`Channel::create`] a file (a path, or a bare name in
//!   `/dev/shm`), then [`Sender::open`] / [`Receiver::open`] it from each process.
//! - **Threads**: [`pair`].
//!
//! # Delivery
//! Exactly once and in order: every committed message is returned by exactly one successful
//! receive, and a full ring blocks the sender (or returns `Full`), never overwrites. The
//! receiver's position advances when [`Receiver::recv`] returns, or when a [`RecvRef`] is
//! dropped; a receiver killed while holding a `RecvRef` gets that message again when it
//! re-attaches. The sender's position advances when a message is committed; a sender killed
//! mid-message leaves nothing behind (the partial record was never published).
//!
//! # Speed
//! The producer's and the consumer's positions live on separate cache lines, each side
//! caches the other's position and reloads it only when the ring looks full or empty,
//! `send` copies once and `reserve`/`recv_ref` not at all, batches publish once, and a
//! wake-up costs a syscall only when the other side is parked: after publishing, a side
//! does one atomic read-modify-write on the other side's [`Notifier`] word, which tells it
//! whether anyone is registered as parked (the notifier's protocol, model-checked with
//! loom, guarantees no lost wake-up).
//!
//! # Failure
//! Each end registers as a peer of the region (a lock the kernel drops when the process
//! dies), so when either side drops or dies, even by `SIGKILL`, the other learns it within
//! the liveness check interval: the receiver drains what was committed and then gets
//! `Disconnected`; a sender blocked on a full ring gets `Disconnected`. A new producer or
//! consumer may attach to a file-backed channel afterwards and continues from the shared
//! positions. Every position and record header read from shared memory is validated:
//! garbage gives `Corrupted { offset, what }`, never an out-of-bounds access, a panic or an
//! endless loop; a truncated file gives `Truncated`, never SIGBUS.
//!
//! # Example
//! ```
//! let (mut tx, mut rx) = mapipc::channel::pair(64 * 1024)?;
//! tx.send(b"hello")?;
//! let mut grant = tx.reserve(5)?;
//! grant.bytes().copy_from_slice(b"world");
//! grant.commit();
//! assert_eq!(rx.recv()?, b"hello");
//! let msg = rx.recv_ref()?;
//! assert_eq!(msg.bytes().to_vec(), b"world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(unsafe_code)]

mod error;
mod layout;
pub(crate) mod ring;
mod slots;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{
    ChannelError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
pub use layout::Kind;
pub use slots::{Bytes, BytesMut};

use error::Fault;
use layout::{off, Fixed, RING_OFFSET};
use ring::{Consumer, Geometry, Peeked, Producer, RingError, RingMem, Where};
use slots::MappedRing;

use crate::os;
use crate::region::{IntoLocation, Peer, Region};
use crate::sync::{Notifier, WaitError, WaitOptions};

mod atomic {
    #[cfg(all(loom, test))]
    pub(crate) use loom::sync::atomic::AtomicU64;
    #[cfg(all(not(loom), any(test, fuzzing)))]
    pub(crate) use std::sync::atomic::AtomicU64;
}

/// Fuzzing entry points (built only with `--cfg fuzzing`, as cargo-fuzz does).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Runs the ring's producer and consumer over arbitrary memory.
    pub fn ring(data: &[u8]) {
        super::ring::fuzz_ring(data);
    }

    /// Lays arbitrary bytes over a channel's header and ring in a real mapping, then opens
    /// it and receives until empty or an error: nothing may crash, hang or panic.
    pub fn channel(data: &[u8]) {
        use super::{Channel, TryRecvError, RING_OFFSET};
        let Ok(region) = crate::region::Region::anonymous((RING_OFFSET + 4096) as usize) else {
            return;
        };
        let n = data.len().min(region.len());
        if region.write_at(0, &data[..n]).is_err() {
            return;
        }
        let Ok(chan) = Channel::from_region(region) else {
            return;
        };
        let _ = chan.stat();
        if let Ok(mut rx) = chan.receiver() {
            for _ in 0..1024 {
                match rx.try_recv() {
                    Ok(m) => assert!(!m.is_empty() && m.len() <= chan.max_message()),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    Err(_) => break,
                }
            }
        }
        if let Ok(mut tx) = chan.sender() {
            let _ = tx.try_send(b"fuzz");
        }
    }
}

/// The `content` kind a channel sets in its region header.
pub const REGION_CONTENT_CHANNEL: u32 = 0x4348_0001;

/// Smallest ring capacity accepted by the public constructors.
pub const MIN_CAPACITY: usize = 4096;

/// How a blocked end waits.
///
/// # Example
/// ```
/// use mapipc::channel::WaitStrategy;
/// let busy = WaitStrategy::BusyPoll; // lowest latency, burns a CPU
/// let park = WaitStrategy::Park; // futex at once: no CPU while idle
/// let default = WaitStrategy::default(); // spin a little, then park
/// assert_eq!(default, WaitStrategy::SpinThenPark { spins: 2000 });
/// # let _ = (busy, park);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Poll without ever sleeping (still checks deadlines and peer liveness).
    BusyPoll,
    /// Re-check `spins` times, then park on the futex.
    SpinThenPark {
        /// Iterations before parking.
        spins: u32,
    },
    /// Park on the futex immediately.
    Park,
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenPark { spins: 2000 }
    }
}

impl WaitStrategy {
    fn spins(self) -> u32 {
        match self {
            WaitStrategy::BusyPoll => u32::MAX,
            WaitStrategy::SpinThenPark { spins } => spins,
            WaitStrategy::Park => 0,
        }
    }
}

/// Default period of peer-liveness checks while waiting.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Shared state of one opened channel: the region and where things are in it.
struct Shared {
    region: Region,
    ring: MappedRing,
    geo: Geometry,
    kind: Kind,
    /// File offset of the channel header (for error messages).
    header_file_off: u64,
}

impl Shared {
    fn file(&self) -> String {
        self.region.name().to_string()
    }

    fn word(&self, field: u64) -> &AtomicU32 {
        self.ring.atomic_u32(field)
    }

    fn fault(&self, e: RingError) -> Fault {
        match e {
            RingError::Corrupted { at, what } => Fault::Corrupted {
                file: self.file(),
                offset: self.header_file_off
                    + match at {
                        Where::Ring(i) => RING_OFFSET + i,
                        Where::Head => off::HEAD,
                        Where::Tail => off::TAIL,
                    },
                what,
            },
            // The callers map Full and BadLength themselves.
            RingError::Full | RingError::BadLength { .. } => Fault::Corrupted {
                file: self.file(),
                offset: self.header_file_off,
                what: "unexpected ring state",
            },
        }
    }

    #[inline]
    fn check_truncated(&self) -> Result<(), Fault> {
        if self.region.as_mmap().is_truncated() {
            Err(Fault::Truncated { file: self.file() })
        } else {
            Ok(())
        }
    }

    /// Whether the end registered in `field` is attached and alive.
    fn end_alive(&self, field: u64) -> bool {
        let id = self.word(field).load(Ordering::Acquire);
        id != 0 && self.region.is_alive(id)
    }

    /// Whether the end in `field` ever attached (its epoch is non-zero).
    fn end_ever_attached(&self, epoch_field: u64) -> bool {
        self.word(epoch_field).load(Ordering::Acquire) != 0
    }

    /// Wakes the waiter parked on `word_field` if there is one: call after publishing.
    /// One atomic read-modify-write of the notifier word; a syscall only when someone is
    /// registered as parked (see [`Notifier`] for why no wake-up is lost).
    ///
    /// Skipped entirely while the other end advertises that it busy-polls (`never_parks`,
    /// on the notifier word's own cache line, which that end writes only when it changes
    /// strategy): then publishing costs no barrier at all. An end that switches from
    /// busy-polling to parking clears the flag first; a publication racing with that switch
    /// may skip its wake-up, which delays that end by at most one liveness-check interval.
    #[inline]
    fn wake_if_parked(&self, word_field: u64, never_parks_field: u64) {
        if self.word(never_parks_field).load(Ordering::Relaxed) == 0 {
            Notifier::new(self.word(word_field)).notify_all();
        }
    }

    /// Advertises whether this end busy-polls (see [`wake_if_parked`](Self::wake_if_parked)).
    fn advertise_strategy(&self, never_parks_field: u64, wait: WaitStrategy) {
        let flag = u32::from(wait == WaitStrategy::BusyPoll);
        self.word(never_parks_field).store(flag, Ordering::Release);
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    fn attach_end(
        &self,
        field: u64,
        epoch_field: u64,
        wake_field: u64,
        role: &'static str,
    ) -> Result<Peer, ChannelError> {
        let peer = self.region.join()?;
        let me = peer.id();
        let word = self.word(field);
        loop {
            let cur = word.load(Ordering::Acquire);
            if cur != 0 && cur != me && self.region.is_alive(cur) {
                return Err(ChannelError::Busy {
                    file: self.file(),
                    role,
                    peer: cur,
                    pid: peer_pid(&self.region, cur),
                });
            }
            // AcqRel: we take over from whatever was there (a dead or absent end).
            if word
                .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
        }
        self.word(epoch_field).fetch_add(1, Ordering::AcqRel);
        // Wake the other end if it waits for one of us to attach.
        Notifier::new(self.word(wake_field)).notify_all();
        Ok(peer)
    }

    fn detach_end(&self, field: u64, me: u32, wake_field: u64, never_parks_field: u64) {
        // Only clear our own registration: a successor may already have taken over.
        if self
            .word(field)
            .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.word(never_parks_field).store(0, Ordering::Release);
        }
        // Tell a parked peer at once rather than at its next liveness check.
        Notifier::new(self.word(wake_field)).notify_all();
    }

    fn stat(&self) -> Stat {
        let tail = self.ring.counter(off::TAIL).load(Ordering::Acquire);
        let head = self.ring.counter(off::HEAD).load(Ordering::Acquire);
        let end = |id_field, epoch_field, word_field| {
            let id = self.word(id_field).load(Ordering::Acquire);
            EndStat {
                attached: id != 0,
                alive: id != 0 && self.region.is_alive(id),
                peer: id,
                pid: if id != 0 {
                    peer_pid(&self.region, id)
                } else {
                    0
                },
                attaches: self.word(epoch_field).load(Ordering::Relaxed),
                parked: Notifier::new(self.word(word_field)).waiters() > 0,
            }
        };
        Stat {
            kind: self.kind,
            capacity: self.geo.capacity(),
            max_message: self.geo.max_payload(),
            bytes_used: tail.wrapping_sub(head).min(self.geo.capacity()),
            sent: self.ring.counter(off::SENT).load(Ordering::Relaxed),
            received: self.ring.counter(off::RECEIVED).load(Ordering::Relaxed),
            producer: end(off::PRODUCER, off::PRODUCER_EPOCH, off::SPACE_WORD),
            consumer: end(off::CONSUMER, off::CONSUMER_EPOCH, off::DATA_WORD),
            positions_valid: head <= tail && tail - head <= self.geo.capacity(),
        }
    }
}

/// The pid a peer registered with, 0 if unknown.
fn peer_pid(region: &Region, id: u32) -> u32 {
    region
        .peers()
        .ok()
        .and_then(|ps| ps.into_iter().find(|p| p.id == id))
        .map_or(0, |p| p.pid)
}

/// A channel's shared memory, opened in this process. Attach ends with
/// [`sender`](Self::sender) and [`receiver`](Self::receiver).
///
/// # Example
/// ```
/// use mapipc::channel::Channel;
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("chan");
/// Channel::create(&path, 1 << 16)?;
/// // ... in any process:
/// let chan = Channel::open(&path)?;
/// let mut tx = chan.sender()?;
/// tx.send(b"to whoever attaches")?;
/// assert_eq!(chan.stat().sent, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Channel {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("file", &self.shared.file())
            .field("kind", &self.shared.kind)
            .field("capacity", &self.shared.geo.capacity())
            .finish()
    }
}

fn geometry_for(capacity: usize) -> Result<Geometry, ChannelError> {
    let cap = (capacity.max(MIN_CAPACITY) as u64)
        .checked_next_power_of_two()
        .unwrap_or(0);
    Geometry::new(cap).ok_or(ChannelError::BadCapacity {
        capacity: capacity as u64,
        min: MIN_CAPACITY as u64,
    })
}

impl Channel {
    /// Creates a channel in anonymous shared memory, for related processes: create it
    /// before `fork`, then attach one end in each process.
    ///
    /// `capacity` is the ring size in bytes, rounded up to a power of two (at least
    /// [`MIN_CAPACITY`]).
    ///
    /// # Errors
    /// [`ChannelError::BadCapacity`], [`ChannelError::Create`].
    ///
    /// # Example
    /// ```no_run
    /// let chan = mapipc::channel::Channel::anonymous(1 << 20)?;
    /// // SAFETY: the child only uses the channel and exits.
    /// match unsafe { libc::fork() } {
    ///     0 => {
    ///         let mut tx = chan.sender().unwrap();
    ///         tx.send(b"from the child").unwrap();
    ///         unsafe { libc::_exit(0) };
    ///     }
    ///     _ => {
    ///         let mut rx = chan.receiver()?;
    ///         assert_eq!(rx.recv()?, b"from the child");
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn anonymous(capacity: usize) -> Result<Channel, ChannelError> {
        let geo = geometry_for(capacity)?;
        let region = Region::anonymous((RING_OFFSET + geo.capacity()) as usize)?;
        Channel::init(region, geo, Kind::Spsc)
    }

    /// Creates a channel file (a path, or a bare name in `/dev/shm`); fails if it exists.
    ///
    /// # Errors
    /// [`ChannelError::BadCapacity`], [`ChannelError::Create`] (exists, bad name, disk full).
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("c");
    /// let chan = mapipc::channel::Channel::create(&path, 4096)?;
    /// assert_eq!(chan.capacity(), 4096);
    /// assert_eq!(chan.max_message(), 2040);
    /// assert!(mapipc::channel::Channel::create(&path, 4096).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(location: impl IntoLocation, capacity: usize) -> Result<Channel, ChannelError> {
        let geo = geometry_for(capacity)?;
        let region = Region::create(location, (RING_OFFSET + geo.capacity()) as usize)?;
        Channel::init(region, geo, Kind::Spsc)
    }

    /// Lays a channel out in a freshly created region (for example a sealed memfd region that
    /// will be passed to another process). The region's data must be large enough.
    ///
    /// # Errors
    /// [`ChannelError::BadCapacity`] when the region is too small for `capacity`.
    ///
    /// # Example
    /// ```
    /// use mapipc::region::Region;
    /// let region = Region::memfd("chan", 4096 + 8192)?;
    /// let chan = mapipc::channel::Channel::create_in(region, 8192)?;
    /// assert_eq!(chan.capacity(), 8192);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_in(region: Region, capacity: usize) -> Result<Channel, ChannelError> {
        let geo = geometry_for(capacity)?;
        if RING_OFFSET + geo.capacity() > region.len() as u64 {
            return Err(ChannelError::BadCapacity {
                capacity: capacity as u64,
                min: MIN_CAPACITY as u64,
            });
        }
        Channel::init(region, geo, Kind::Spsc)
    }

    fn init(region: Region, geo: Geometry, kind: Kind) -> Result<Channel, ChannelError> {
        let fixed = Fixed::new(kind, geo.capacity(), geo.max_payload());
        // Write everything but the magic, then the magic: an opener never sees a
        // half-written header with a valid magic.
        let mut staged = fixed;
        staged.magic = [0; 8];
        region.write_pod(0, &staged)?;
        region.write_at(0, &fixed.magic)?;
        region.set_content_kind(REGION_CONTENT_CHANNEL)?;
        Channel::from_region(region)
    }

    /// Opens a channel file created by [`create`](Self::create), validating its header.
    ///
    /// # Errors
    /// [`ChannelError::Open`] (missing file, not a region, bad name),
    /// [`ChannelError::BadHeader`] (not a channel, damaged header).
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("plain");
    /// std::fs::write(&path, vec![0xab; 8192])?;
    /// let err = mapipc::channel::Channel::open(&path).unwrap_err();
    /// assert!(matches!(err, mapipc::channel::ChannelError::Open(_)));
    /// assert!(err.to_string().contains("not a mapipc region"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(location: impl IntoLocation) -> Result<Channel, ChannelError> {
        Channel::from_region(Region::open(location)?)
    }

    /// Opens the channel laid out in `region` (for example one received over a Unix
    /// socket with [`Region::receive`]), validating its header.
    ///
    /// # Errors
    /// [`ChannelError::BadHeader`].
    ///
    /// # Example
    /// See [`create_in`](Self::create_in).
    pub fn from_region(region: Region) -> Result<Channel, ChannelError> {
        let file = region.name().to_string();
        let bad = |what| ChannelError::BadHeader {
            file: file.clone(),
            what,
        };
        let fixed: Fixed = region
            .read_pod(0)
            .map_err(|_| bad("region too small for a channel header"))?;
        let (kind, geo) = fixed.validate(region.len() as u64).map_err(bad)?;
        let header_off = region.data_offset();
        let ring = MappedRing::new(region.as_mmap(), header_off, geo.capacity())
            .ok_or_else(|| bad("channel does not fit the mapping"))?;
        let shared = Shared {
            header_file_off: region.as_mmap().file_offset() + header_off,
            region,
            ring,
            geo,
            kind,
        };
        // Validate the positions once so a damaged file is reported at open.
        if let Err(e) = Consumer::attach(geo, &shared.ring) {
            let Fault::Corrupted { file, offset, what } = shared.fault(e) else {
                unreachable!("attach only reports corruption")
            };
            return Err(ChannelError::Corrupted { file, offset, what });
        }
        Ok(Channel {
            shared: Arc::new(shared),
        })
    }

    /// Attaches the producer end. Fails with [`ChannelError::Busy`] while another live
    /// process is the producer; takes over from a dead one.
    ///
    /// # Errors
    /// [`ChannelError::Busy`], [`ChannelError::Join`] (peer table full),
    /// [`ChannelError::Corrupted`].
    ///
    /// # Example
    /// See [`Channel`].
    pub fn sender(&self) -> Result<Sender, ChannelError> {
        let s = &self.shared;
        let peer = s.attach_end(
            off::PRODUCER,
            off::PRODUCER_EPOCH,
            off::DATA_WORD,
            "producer",
        )?;
        let core = Producer::attach(s.geo, &s.ring).map_err(|e| self.attach_fault(e))?;
        let sent = s.ring.counter(off::SENT).load(Ordering::Relaxed);
        s.advertise_strategy(off::PRODUCER_NEVER_PARKS, WaitStrategy::default());
        Ok(Sender {
            shared: self.shared.clone(),
            me: peer.id(),
            pid: os::process::pid(),
            _peer: peer,
            core,
            sent,
            wait: WaitStrategy::default(),
            check_interval: DEFAULT_CHECK_INTERVAL,
        })
    }

    /// Attaches the consumer end, continuing from the last consumed position. Fails with
    /// [`ChannelError::Busy`] while another live process is the consumer.
    ///
    /// # Errors
    /// As [`sender`](Self::sender).
    ///
    /// # Example
    /// See [`pair`].
    pub fn receiver(&self) -> Result<Receiver, ChannelError> {
        let s = &self.shared;
        let peer = s.attach_end(
            off::CONSUMER,
            off::CONSUMER_EPOCH,
            off::SPACE_WORD,
            "consumer",
        )?;
        let core = Consumer::attach(s.geo, &s.ring).map_err(|e| self.attach_fault(e))?;
        let received = s.ring.counter(off::RECEIVED).load(Ordering::Relaxed);
        s.advertise_strategy(off::CONSUMER_NEVER_PARKS, WaitStrategy::default());
        Ok(Receiver {
            shared: self.shared.clone(),
            me: peer.id(),
            pid: os::process::pid(),
            _peer: peer,
            core,
            received,
            wait: WaitStrategy::default(),
            check_interval: DEFAULT_CHECK_INTERVAL,
            next_lock_query: None,
        })
    }

    fn attach_fault(&self, e: RingError) -> ChannelError {
        match self.shared.fault(e) {
            Fault::Corrupted { file, offset, what } => {
                ChannelError::Corrupted { file, offset, what }
            }
            other => ChannelError::BadHeader {
                file: self.shared.file(),
                what: if matches!(other, Fault::Truncated { .. }) {
                    "truncated"
                } else {
                    "unusable"
                },
            },
        }
    }

    /// Ring capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.shared.geo.capacity() as usize
    }

    /// Largest message in bytes (`capacity / 2 - 8`).
    pub fn max_message(&self) -> usize {
        self.shared.geo.max_payload() as usize
    }

    /// The channel kind.
    pub fn kind(&self) -> Kind {
        self.shared.kind
    }

    /// The region holding the channel (for [`Region::send_to`] and the like).
    pub fn region(&self) -> &Region {
        &self.shared.region
    }

    /// A snapshot of the channel's counters and ends.
    pub fn stat(&self) -> Stat {
        self.shared.stat()
    }
}

/// Creates a channel in anonymous shared memory and attaches both ends in this process
/// (for threads, or as a quick start).
///
/// # Errors
/// As [`Channel::anonymous`].
///
/// # Example
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// let t = std::thread::spawn(move || {
///     for i in 0..1000u32 {
///         tx.send(&i.to_le_bytes()).unwrap();
///     }
/// });
/// for i in 0..1000u32 {
///     assert_eq!(rx.recv_pod::<u32>()?, i);
/// }
/// t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pair(capacity: usize) -> Result<(Sender, Receiver), ChannelError> {
    let chan = Channel::anonymous(capacity)?;
    Ok((chan.sender()?, chan.receiver()?))
}

/// State of one end in a [`Stat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndStat {
    /// An end is registered.
    pub attached: bool,
    /// The registered end's process is alive.
    pub alive: bool,
    /// Its peer id in the region (0 if none).
    pub peer: u32,
    /// Its pid as registered (0 if none or unknown).
    pub pid: u32,
    /// How many times an end attached over the channel's life.
    pub attaches: u32,
    /// It is parked on the futex, waiting.
    pub parked: bool,
}

/// A snapshot of a channel, from [`Channel::stat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Channel kind.
    pub kind: Kind,
    /// Ring bytes.
    pub capacity: u64,
    /// Largest message.
    pub max_message: u64,
    /// Bytes published and not yet consumed (records, headers and padding).
    pub bytes_used: u64,
    /// Messages published over the channel's life.
    pub sent: u64,
    /// Messages consumed over the channel's life.
    pub received: u64,
    /// The producer end.
    pub producer: EndStat,
    /// The consumer end.
    pub consumer: EndStat,
    /// The shared positions are consistent (false means corruption).
    pub positions_valid: bool,
}

/// Wait bookkeeping shared by both ends.
struct Waiter {
    deadline: Option<Instant>,
}

enum WaitOutcome {
    Ready,
    TimedOut,
    PeerGone,
}

impl Waiter {
    /// Waits on the notifier word `word_field` until `ready()` holds, the deadline passes, or
    /// `alive()` says the other side is gone.
    fn wait(
        &self,
        shared: &Shared,
        word_field: u64,
        strategy: WaitStrategy,
        check_interval: Duration,
        ready: &mut dyn FnMut() -> bool,
        alive: &dyn Fn() -> bool,
    ) -> Result<WaitOutcome, Fault> {
        if strategy == WaitStrategy::BusyPoll {
            // The clock is first read after 1024 polls, not before the first one: most waits
            // end sooner, and a clock read (~25 ns) at the start of every wait would delay
            // the caller's reaction to a message that arrives meanwhile. The liveness interval
            // then starts those 1024 polls (microseconds) late, which is harmless.
            let mut last_check: Option<Instant> = None;
            let mut n: u32 = 0;
            loop {
                if ready() {
                    return Ok(WaitOutcome::Ready);
                }
                std::hint::spin_loop();
                n = n.wrapping_add(1);
                if n % 1024 == 0 {
                    let now = Instant::now();
                    if self.deadline.is_some_and(|d| now >= d) {
                        return Ok(WaitOutcome::TimedOut);
                    }
                    let last_check = last_check.get_or_insert(now);
                    if now.duration_since(*last_check) >= check_interval {
                        *last_check = now;
                        if !alive() {
                            return Ok(if ready() {
                                WaitOutcome::Ready
                            } else {
                                WaitOutcome::PeerGone
                            });
                        }
                    }
                }
            }
        }
        let notifier = Notifier::new(shared.word(word_field));
        let mut opts = WaitOptions::new()
            .spin(strategy.spins())
            .check_interval(check_interval)
            .alive(alive);
        if let Some(d) = self.deadline {
            opts = opts.deadline(d);
        }
        match notifier.wait_until(|| ready().then_some(()), &opts) {
            Ok(()) => Ok(WaitOutcome::Ready),
            Err(WaitError::TimedOut) => Ok(WaitOutcome::TimedOut),
            Err(WaitError::PeerGone) => Ok(WaitOutcome::PeerGone),
            Err(e) => Err(Fault::Io {
                file: shared.file(),
                source: std::io::Error::other(e),
            }),
        }
    }
}

/// The producer end. Not `Clone`: one producer per SPSC channel.
pub struct Sender {
    shared: Arc<Shared>,
    me: u32,
    pid: u32,
    _peer: Peer,
    core: Producer,
    sent: u64,
    wait: WaitStrategy,
    check_interval: Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("file", &self.shared.file())
            .field("peer", &self.me)
            .field("sent", &self.sent)
            .finish()
    }
}

enum Blocking {
    No,
    Until(Option<Instant>),
}

enum SendFail {
    Full,
    Timeout,
    BadLength(usize),
    Disconnected,
    Fault(Fault),
}

impl Sender {
    /// Opens a channel file and attaches its producer end.
    ///
    /// # Errors
    /// As [`Channel::open`] and [`Channel::sender`].
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("c");
    /// mapipc::channel::Channel::create(&path, 4096)?;
    /// let mut tx = mapipc::channel::Sender::open(&path)?;
    /// tx.send(b"queued until a receiver comes")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(location: impl IntoLocation) -> Result<Sender, ChannelError> {
        Channel::open(location)?.sender()
    }

    /// Sets how a send waits for room (default: spin a little, then park).
    ///
    /// With [`WaitStrategy::BusyPoll`] the sender tells the receiver it never parks, so the
    /// receiver's releases skip the wake-up barrier: the fastest mode when both ends have a
    /// CPU to burn.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
        self.shared
            .advertise_strategy(off::PRODUCER_NEVER_PARKS, wait);
    }

    /// Sets how often a blocked send checks that the receiver is alive (default 50 ms).
    pub fn set_check_interval(&mut self, interval: Duration) {
        self.check_interval = interval.max(Duration::from_millis(1));
    }

    /// The channel this end belongs to.
    pub fn channel(&self) -> Channel {
        Channel {
            shared: self.shared.clone(),
        }
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.shared.geo.max_payload() as usize
    }

    fn consumer_gone(&self) -> bool {
        let s = &self.shared;
        s.end_ever_attached(off::CONSUMER_EPOCH) && !s.end_alive(off::CONSUMER)
    }

    /// Reserves room for `len` bytes, waiting as asked.
    /// Reserves room for `len` bytes, waiting as asked. The fast path (room in the cached
    /// view) is inline; waiting lives in [`reserve_slow`](Self::reserve_slow).
    #[inline]
    fn reserve_inner(
        &mut self,
        len: usize,
        block: Blocking,
    ) -> Result<ring::Reservation, SendFail> {
        match self.core.try_reserve(&self.shared.ring, len as u64) {
            Ok(r) => Ok(r),
            Err(RingError::Full) => self.reserve_slow(len, block),
            Err(RingError::BadLength { .. }) => Err(SendFail::BadLength(len)),
            Err(e) => Err(SendFail::Fault(self.shared.fault(e))),
        }
    }

    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self, len: usize, block: Blocking) -> Result<ring::Reservation, SendFail> {
        // Full. Publish anything batched first, so the consumer can make room.
        self.publish();
        let deadline = match block {
            Blocking::No => {
                return Err(if self.consumer_gone() {
                    SendFail::Disconnected
                } else {
                    SendFail::Full
                })
            }
            Blocking::Until(d) => d,
        };
        let Sender {
            shared,
            core,
            wait,
            check_interval,
            ..
        } = self;
        let s = &**shared;
        loop {
            let mut fault = None;
            let mut ready = || match core.refresh_head(&s.ring) {
                Ok(_) => core.fits_cached(len as u64),
                Err(e) => {
                    fault = Some(e);
                    true
                }
            };
            let alive = || !s.end_ever_attached(off::CONSUMER_EPOCH) || s.end_alive(off::CONSUMER);
            let outcome = Waiter { deadline }
                .wait(
                    s,
                    off::SPACE_WORD,
                    *wait,
                    *check_interval,
                    &mut ready,
                    &alive,
                )
                .map_err(SendFail::Fault)?;
            if let Some(e) = fault {
                return Err(SendFail::Fault(s.fault(e)));
            }
            match outcome {
                WaitOutcome::Ready => match core.try_reserve(&s.ring, len as u64) {
                    Ok(r) => return Ok(r),
                    Err(RingError::Full) => continue,
                    Err(RingError::BadLength { .. }) => return Err(SendFail::BadLength(len)),
                    Err(e) => return Err(SendFail::Fault(s.fault(e))),
                },
                WaitOutcome::TimedOut => return Err(SendFail::Timeout),
                WaitOutcome::PeerGone => return Err(SendFail::Disconnected),
            }
        }
    }

    #[inline]
    fn publish(&mut self) {
        if self.core.has_unpublished() {
            let s = &*self.shared;
            self.core.publish(&s.ring);
            s.ring
                .counter(off::SENT)
                .store(self.sent, Ordering::Relaxed);
            s.wake_if_parked(off::DATA_WORD, off::CONSUMER_NEVER_PARKS);
        }
    }

    #[inline]
    fn send_inner(&mut self, data: &[u8], block: Blocking) -> Result<(), SendFail> {
        let r = self.reserve_inner(data.len(), block)?;
        self.shared.ring.write_bytes(r.data, data);
        self.core.commit(&self.shared.ring, &r);
        self.sent += 1;
        self.publish();
        self.shared.check_truncated().map_err(SendFail::Fault)
    }

    fn bad_length(&self, len: usize) -> (usize, usize) {
        (len, self.max_message())
    }

    /// Sends one message (copied once into the ring), waiting while the ring is full.
    ///
    /// # Errors
    /// [`SendError::BadLength`] for an empty or too long message, [`SendError::Disconnected`]
    /// when the ring is full and the receiver is gone, [`SendError::Corrupted`],
    /// [`SendError::Truncated`].
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"hi")?;
    /// assert!(tx.send(b"").is_err());
    /// assert_eq!(rx.recv()?, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> Result<(), SendError> {
        match self.send_inner(data, Blocking::Until(None)) {
            Ok(()) => Ok(()),
            Err(SendFail::BadLength(len)) => {
                let (len, max) = self.bad_length(len);
                Err(SendError::BadLength { len, max })
            }
            Err(SendFail::Disconnected) => Err(SendError::Disconnected),
            Err(SendFail::Fault(f)) => Err(f.into()),
            Err(SendFail::Full | SendFail::Timeout) => {
                unreachable!("blocking send never times out")
            }
        }
    }

    /// Sends one message if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`], plus the errors of [`send`](Self::send).
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::TrySendError;
    /// let (mut tx, _rx) = mapipc::channel::pair(4096)?;
    /// let msg = [0u8; 2000];
    /// tx.try_send(&msg)?;
    /// tx.try_send(&msg)?;
    /// assert!(matches!(tx.try_send(&msg), Err(TrySendError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send(&mut self, data: &[u8]) -> Result<(), TrySendError> {
        match self.send_inner(data, Blocking::No) {
            Ok(()) => Ok(()),
            Err(SendFail::Full) => Err(TrySendError::Full),
            Err(SendFail::BadLength(len)) => {
                let (len, max) = self.bad_length(len);
                Err(TrySendError::BadLength { len, max })
            }
            Err(SendFail::Disconnected) => Err(TrySendError::Disconnected),
            Err(SendFail::Fault(f)) => Err(f.into()),
            Err(SendFail::Timeout) => Err(TrySendError::Full),
        }
    }

    /// Sends one message, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], plus the errors of [`send`](Self::send).
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::channel::SendTimeoutError;
    /// let (mut tx, _rx) = mapipc::channel::pair(4096)?;
    /// tx.send(&[1; 2000])?;
    /// tx.send(&[2; 2000])?;
    /// let r = tx.send_timeout(&[3; 2000], Duration::from_millis(10));
    /// assert!(matches!(r, Err(SendTimeoutError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<(), SendTimeoutError> {
        self.send_deadline(data, Instant::now() + timeout)
    }

    /// Sends one message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`send_timeout`](Self::send_timeout).
    ///
    /// # Example
    /// ```
    /// let (mut tx, _rx) = mapipc::channel::pair(4096)?;
    /// tx.send_deadline(b"x", std::time::Instant::now())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_deadline(
        &mut self,
        data: &[u8],
        deadline: Instant,
    ) -> Result<(), SendTimeoutError> {
        match self.send_inner(data, Blocking::Until(Some(deadline))) {
            Ok(()) => Ok(()),
            Err(SendFail::Timeout | SendFail::Full) => Err(SendTimeoutError::Timeout),
            Err(SendFail::BadLength(len)) => {
                let (len, max) = self.bad_length(len);
                Err(SendTimeoutError::BadLength { len, max })
            }
            Err(SendFail::Disconnected) => Err(SendTimeoutError::Disconnected),
            Err(SendFail::Fault(f)) => Err(f.into()),
        }
    }

    /// Sends a plain-old-data value as one message of `size_of::<T>()` bytes.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    ///
    /// # Example
    /// See [`pair`].
    pub fn send_pod<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<(), SendError> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Sends every message of `msgs`, publishing them together (one release store and at
    /// most one wake-up per ring-full), waiting for room as needed. Returns how many were
    /// sent (all of them, unless an error is returned).
    ///
    /// # Errors
    /// As [`send`](Self::send); messages before the failing one are sent.
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send_batch([&b"a"[..], b"bc", b"def"])?;
    /// assert_eq!(rx.recv()?, b"a");
    /// assert_eq!(rx.recv()?, b"bc");
    /// assert_eq!(rx.recv()?, b"def");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_batch<'m>(
        &mut self,
        msgs: impl IntoIterator<Item = &'m [u8]>,
    ) -> Result<usize, SendError> {
        let mut n = 0;
        for m in msgs {
            let r = match self.reserve_inner(m.len(), Blocking::Until(None)) {
                Ok(r) => r,
                Err(e) => {
                    self.publish();
                    return Err(match e {
                        SendFail::BadLength(len) => {
                            let (len, max) = self.bad_length(len);
                            SendError::BadLength { len, max }
                        }
                        SendFail::Disconnected => SendError::Disconnected,
                        SendFail::Fault(f) => f.into(),
                        SendFail::Full | SendFail::Timeout => unreachable!("blocking"),
                    });
                }
            };
            let s = &*self.shared;
            s.ring.write_bytes(r.data, m);
            self.core.commit(&s.ring, &r);
            self.sent += 1;
            n += 1;
        }
        self.publish();
        self.shared.check_truncated().map_err(SendError::from)?;
        Ok(n)
    }

    /// Reserves room for a message of `len` bytes to be written in place (zero-copy),
    /// waiting while the ring is full. [`Grant::commit`] publishes it; dropping the grant
    /// without committing abandons it (nothing is sent).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// let mut g = tx.reserve(12)?;
    /// g.bytes().write_pod(0, &7u64);
    /// g.bytes().write_at(8, b"tail");
    /// g.commit();
    /// let m = rx.recv_ref()?;
    /// assert_eq!(m.bytes().read_pod::<u64>(0), Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        match self.reserve_inner(len, Blocking::Until(None)) {
            Ok(r) => Ok(Grant {
                sender: self,
                r,
                batch: false,
            }),
            Err(SendFail::BadLength(len)) => {
                let (len, max) = self.bad_length(len);
                Err(SendError::BadLength { len, max })
            }
            Err(SendFail::Disconnected) => Err(SendError::Disconnected),
            Err(SendFail::Fault(f)) => Err(f.into()),
            Err(SendFail::Full | SendFail::Timeout) => unreachable!("blocking"),
        }
    }

    /// Reserves room if there is some now.
    ///
    /// # Errors
    /// As [`try_send`](Self::try_send).
    ///
    /// # Example
    /// ```
    /// let (mut tx, _rx) = mapipc::channel::pair(4096)?;
    /// let g = tx.try_reserve(100)?;
    /// drop(g); // abandoned: nothing sent
    /// assert_eq!(tx.channel().stat().sent, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>, TrySendError> {
        match self.reserve_inner(len, Blocking::No) {
            Ok(r) => Ok(Grant {
                sender: self,
                r,
                batch: false,
            }),
            Err(SendFail::Full | SendFail::Timeout) => Err(TrySendError::Full),
            Err(SendFail::BadLength(len)) => {
                let (len, max) = self.bad_length(len);
                Err(TrySendError::BadLength { len, max })
            }
            Err(SendFail::Disconnected) => Err(TrySendError::Disconnected),
            Err(SendFail::Fault(f)) => Err(f.into()),
        }
    }

    /// Publishes messages committed with [`Grant::commit_batched`].
    #[inline]
    pub fn flush(&mut self) {
        self.publish();
    }

    /// Waits until a receiver is attached and alive, up to `deadline`. Returns whether one
    /// is. Useful after [`SendError::Disconnected`] when a new receiver may come.
    ///
    /// # Example
    /// ```
    /// let chan = mapipc::channel::Channel::anonymous(4096)?;
    /// let mut tx = chan.sender()?;
    /// assert!(!tx.wait_for_receiver(Some(std::time::Instant::now())));
    /// let _rx = chan.receiver()?;
    /// assert!(tx.wait_for_receiver(None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_receiver(&mut self, deadline: Option<Instant>) -> bool {
        let s = &*self.shared;
        let mut ready = || s.end_alive(off::CONSUMER);
        if ready() {
            return true;
        }
        let alive = || true;
        let _ = Waiter { deadline }.wait(
            s,
            off::SPACE_WORD,
            WaitStrategy::Park,
            self.check_interval,
            &mut ready,
            &alive,
        );
        s.end_alive(off::CONSUMER)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if os::process::pid() != self.pid {
            // Inherited across fork: the end belongs to the parent.
            return;
        }
        self.publish();
        self.shared.detach_end(
            off::PRODUCER,
            self.me,
            off::DATA_WORD,
            off::PRODUCER_NEVER_PARKS,
        );
    }
}

/// Space reserved for one message, written in place. Dropping it without
/// [`commit`](Self::commit) abandons the message.
pub struct Grant<'a> {
    sender: &'a mut Sender,
    r: ring::Reservation,
    batch: bool,
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("len", &self.r.len).finish()
    }
}

impl Grant<'_> {
    /// The reserved bytes.
    #[inline]
    pub fn bytes(&mut self) -> BytesMut<'_> {
        let p = self.sender.shared.ring.ptr(self.r.data);
        // SAFETY: `data..data+len` was reserved for us by the ring inside the live mapping,
        // and nobody reads it until we publish; the view borrows `self`.
        unsafe { BytesMut::new(p, self.r.len as usize) }
    }

    /// Reserved length.
    pub fn len(&self) -> usize {
        self.r.len as usize
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.r.len == 0
    }

    /// Shortens the message to its first `len` bytes before committing (for writers that
    /// reserve a maximum and use less). `len` must be in `1..=self.len()`; other values are
    /// ignored.
    pub fn truncate(&mut self, len: usize) {
        if len >= 1 && len as u64 <= self.r.len {
            self.r.len = len as u64;
        }
    }

    /// Publishes the message and wakes a parked receiver.
    #[inline]
    pub fn commit(mut self) {
        self.finish(false);
    }

    /// Commits without publishing yet: later messages join it and
    /// [`Sender::flush`] (or the next plain send) publishes them together.
    #[inline]
    pub fn commit_batched(mut self) {
        self.finish(true);
    }

    #[inline]
    fn finish(&mut self, batch: bool) {
        self.batch = true; // committed: Drop must not abandon
        let s = &mut *self.sender;
        s.core.commit(&s.shared.ring, &self.r);
        s.sent += 1;
        if !batch {
            s.publish();
        }
    }
}

impl Drop for Grant<'_> {
    #[inline]
    fn drop(&mut self) {
        // Not committed: the reservation (and any padding written for it) stays unpublished
        // and the next reservation reuses the space.
        let _ = self.batch;
    }
}

/// The consumer end. Not `Clone`: one consumer per SPSC channel.
pub struct Receiver {
    shared: Arc<Shared>,
    me: u32,
    pid: u32,
    _peer: Peer,
    core: Consumer,
    received: u64,
    wait: WaitStrategy,
    check_interval: Duration,
    /// Before this, non-blocking receives do not query the producer's lock again.
    next_lock_query: Option<Instant>,
}

/// Shortest time between two queries of the producer's lock by non-blocking receives on an
/// empty ring (`try_recv`, `drain`): they see a dead producer at most this late.
const LOCK_QUERY_INTERVAL: Duration = Duration::from_millis(1);

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("file", &self.shared.file())
            .field("peer", &self.me)
            .field("received", &self.received)
            .finish()
    }
}

enum RecvFail {
    Empty,
    Timeout,
    Disconnected,
    Fault(Fault),
}

impl Receiver {
    /// Opens a channel file and attaches its consumer end.
    ///
    /// # Errors
    /// As [`Channel::open`] and [`Channel::receiver`].
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("c");
    /// mapipc::channel::Channel::create(&path, 4096)?;
    /// let mut rx = mapipc::channel::Receiver::open(&path)?;
    /// assert!(rx.try_recv().is_err()); // empty, and no producer yet
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(location: impl IntoLocation) -> Result<Receiver, ChannelError> {
        Channel::open(location)?.receiver()
    }

    /// Sets how a receive waits (default: spin a little, then park).
    ///
    /// With [`WaitStrategy::BusyPoll`] the receiver tells the sender it never parks, so
    /// sends skip the wake-up barrier.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
        self.shared
            .advertise_strategy(off::CONSUMER_NEVER_PARKS, wait);
    }

    /// Sets how often a blocked receive checks that the producer is alive (default 50 ms).
    pub fn set_check_interval(&mut self, interval: Duration) {
        self.check_interval = interval.max(Duration::from_millis(1));
    }

    /// The channel this end belongs to.
    pub fn channel(&self) -> Channel {
        Channel {
            shared: self.shared.clone(),
        }
    }

    /// Whether a live producer is attached now.
    pub fn producer_alive(&self) -> bool {
        self.shared.end_alive(off::PRODUCER)
    }

    /// Producer gone: it attached at some point and is no longer attached and alive.
    fn producer_gone(&self) -> bool {
        let s = &self.shared;
        s.end_ever_attached(off::PRODUCER_EPOCH) && !s.end_alive(off::PRODUCER)
    }

    /// [`producer_gone`](Self::producer_gone) for receives that do not wait and find the
    /// ring empty, which a caller may repeat in a tight loop: a producer that detached is
    /// seen at once (its id word is 0), a dead one through its lock, a syscall made at most
    /// once per [`LOCK_QUERY_INTERVAL`] so that polling an empty channel stays cheap.
    fn producer_gone_polling(&mut self) -> bool {
        let s = &self.shared;
        if !s.end_ever_attached(off::PRODUCER_EPOCH) {
            return false;
        }
        let id = s.word(off::PRODUCER).load(Ordering::Acquire);
        if id == 0 {
            return true;
        }
        let now = Instant::now();
        if self.next_lock_query.is_some_and(|t| now < t) {
            return false;
        }
        self.next_lock_query = now.checked_add(LOCK_QUERY_INTERVAL);
        !s.region.is_alive(id)
    }

    /// The next record, waiting as asked. The fast path is inline; waiting lives in
    /// [`peek_slow`](Self::peek_slow).
    #[inline]
    fn peek(&mut self, block: Blocking) -> Result<Peeked, RecvFail> {
        match self.core.try_peek(&self.shared.ring) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => self.peek_slow(block),
            Err(e) => Err(RecvFail::Fault(self.shared.fault(e))),
        }
    }

    #[cold]
    #[inline(never)]
    fn peek_slow(&mut self, block: Blocking) -> Result<Peeked, RecvFail> {
        // Asking whether the producer is alive is a syscall (a lock query). A wait without a
        // deadline skips that query before its first wait, which checks liveness itself every
        // check interval: its outcome is the same (`Disconnected` once the ring is empty and
        // the producer dead), and a message arriving while we look is not delayed by a
        // syscall. A producer that detached cleanly is seen at once from its id word.
        let mut query_liveness = !matches!(block, Blocking::Until(None));
        loop {
            // Empty: hand back consumed space before possibly sleeping.
            self.publish();
            let gone = match block {
                Blocking::No => self.producer_gone_polling(),
                _ if query_liveness => self.producer_gone(),
                _ => {
                    let s = &self.shared;
                    s.end_ever_attached(off::PRODUCER_EPOCH)
                        && s.word(off::PRODUCER).load(Ordering::Acquire) == 0
                }
            };
            query_liveness = true;
            let Receiver {
                shared,
                core,
                wait,
                check_interval,
                ..
            } = self;
            let s = &**shared;
            if gone {
                // The producer published before leaving; one more look catches it.
                return match core.try_peek(&s.ring) {
                    Ok(Some(p)) => Ok(p),
                    Ok(None) => Err(RecvFail::Disconnected),
                    Err(e) => Err(RecvFail::Fault(s.fault(e))),
                };
            }
            let deadline = match block {
                Blocking::No => return Err(RecvFail::Empty),
                Blocking::Until(d) => d,
            };
            let head = core.head();
            let epoch = s.word(off::PRODUCER_EPOCH).load(Ordering::Acquire);
            let mut ready = || {
                s.ring.load_tail(Ordering::Acquire) != head
                    || s.word(off::PRODUCER).load(Ordering::Acquire) == 0
                        && s.word(off::PRODUCER_EPOCH).load(Ordering::Acquire) != 0
                    || s.word(off::PRODUCER_EPOCH).load(Ordering::Acquire) != epoch
            };
            let alive = || {
                let id = s.word(off::PRODUCER).load(Ordering::Acquire);
                if id == 0 {
                    // Never attached yet: keep waiting for one.
                    !s.end_ever_attached(off::PRODUCER_EPOCH)
                } else {
                    s.region.is_alive(id)
                }
            };
            let outcome = Waiter { deadline }
                .wait(
                    s,
                    off::DATA_WORD,
                    *wait,
                    *check_interval,
                    &mut ready,
                    &alive,
                )
                .map_err(RecvFail::Fault)?;
            match core.try_peek(&s.ring) {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                Err(e) => return Err(RecvFail::Fault(s.fault(e))),
            }
            if let WaitOutcome::TimedOut = outcome {
                return Err(RecvFail::Timeout);
            }
        }
    }

    #[inline]
    fn publish(&mut self) {
        if self.core.has_unpublished() {
            let s = &*self.shared;
            self.core.publish(&s.ring);
            s.ring
                .counter(off::RECEIVED)
                .store(self.received, Ordering::Relaxed);
            s.wake_if_parked(off::SPACE_WORD, off::PRODUCER_NEVER_PARKS);
        }
    }

    #[inline]
    fn take(&mut self, p: &Peeked, out: &mut Vec<u8>) -> Result<(), Fault> {
        let s = &*self.shared;
        s.ring.read_into_vec(p.data, p.len as usize, out);
        s.check_truncated()?;
        self.core.consume(p);
        self.received += 1;
        self.publish();
        Ok(())
    }

    #[inline]
    fn recv_into_inner(&mut self, out: &mut Vec<u8>, block: Blocking) -> Result<(), RecvFail> {
        let p = self.peek(block)?;
        self.take(&p, out).map_err(RecvFail::Fault)
    }

    /// Receives the next message, waiting for one.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] when the producer is gone and everything it committed was
    /// received, [`RecvError::Corrupted`], [`RecvError::Truncated`].
    ///
    /// # Example
    /// See [`pair`].
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_into(&mut v)?;
        Ok(v)
    }

    /// Receives the next message into `out` (replacing its contents), reusing its
    /// allocation.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"abc")?;
    /// let mut buf = Vec::with_capacity(64);
    /// rx.recv_into(&mut buf)?;
    /// assert_eq!(buf, b"abc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<(), RecvError> {
        match self.recv_into_inner(out, Blocking::Until(None)) {
            Ok(()) => Ok(()),
            Err(RecvFail::Disconnected) => Err(RecvError::Disconnected),
            Err(RecvFail::Fault(f)) => Err(f.into()),
            Err(RecvFail::Empty | RecvFail::Timeout) => unreachable!("blocking"),
        }
    }

    /// Receives a message if one is there now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], plus the errors of [`recv`](Self::recv).
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::TryRecvError;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    /// drop(tx);
    /// assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<Vec<u8>, TryRecvError> {
        let mut v = Vec::new();
        match self.recv_into_inner(&mut v, Blocking::No) {
            Ok(()) => Ok(v),
            Err(RecvFail::Empty | RecvFail::Timeout) => Err(TryRecvError::Empty),
            Err(RecvFail::Disconnected) => Err(TryRecvError::Disconnected),
            Err(RecvFail::Fault(f)) => Err(f.into()),
        }
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], plus the errors of [`recv`](Self::recv).
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// let (_tx, mut rx) = mapipc::channel::pair(4096)?;
    /// assert!(rx.recv_timeout(Duration::from_millis(5)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_deadline(Instant::now() + timeout)
    }

    /// Receives the next message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"now")?;
    /// assert_eq!(rx.recv_deadline(std::time::Instant::now())?, b"now");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        let mut v = Vec::new();
        match self.recv_into_inner(&mut v, Blocking::Until(Some(deadline))) {
            Ok(()) => Ok(v),
            Err(RecvFail::Timeout | RecvFail::Empty) => Err(RecvTimeoutError::Timeout),
            Err(RecvFail::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(RecvFail::Fault(f)) => Err(f.into()),
        }
    }

    /// Receives a plain-old-data value sent with [`Sender::send_pod`]. A message of another
    /// length is consumed and reported as corruption of the expected type.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`RecvError::Corrupted`] on a length mismatch.
    ///
    /// # Example
    /// See [`pair`].
    pub fn recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T, RecvError> {
        let file = self.shared.file();
        let m = self.recv_ref()?;
        let len = m.len();
        match m.bytes().read_pod::<T>(0) {
            Some(v) if len == std::mem::size_of::<T>() => Ok(v),
            _ => Err(RecvError::Corrupted {
                file,
                offset: 0,
                what: "message length differs from the expected type's size",
            }),
        }
    }

    #[inline]
    fn guard(&mut self, p: Peeked) -> RecvRef<'_> {
        RecvRef { rx: self, p }
    }

    /// Receives the next message in place (zero-copy), waiting for one. The space is handed
    /// back to the producer when the returned guard is dropped.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"in place")?;
    /// let m = rx.recv_ref()?;
    /// assert_eq!(m.len(), 8);
    /// assert_eq!(m.bytes().get(3), Some(b'p'));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn recv_ref(&mut self) -> Result<RecvRef<'_>, RecvError> {
        match self.peek(Blocking::Until(None)) {
            Ok(p) => Ok(self.guard(p)),
            Err(RecvFail::Disconnected) => Err(RecvError::Disconnected),
            Err(RecvFail::Fault(f)) => Err(f.into()),
            Err(RecvFail::Empty | RecvFail::Timeout) => unreachable!("blocking"),
        }
    }

    /// Zero-copy receive if a message is there now.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    ///
    /// # Example
    /// ```
    /// let (_tx, mut rx) = mapipc::channel::pair(4096)?;
    /// assert!(rx.try_recv_ref().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_ref(&mut self) -> Result<RecvRef<'_>, TryRecvError> {
        match self.peek(Blocking::No) {
            Ok(p) => Ok(self.guard(p)),
            Err(RecvFail::Empty | RecvFail::Timeout) => Err(TryRecvError::Empty),
            Err(RecvFail::Disconnected) => Err(TryRecvError::Disconnected),
            Err(RecvFail::Fault(f)) => Err(f.into()),
        }
    }

    /// Zero-copy receive, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"x")?;
    /// assert_eq!(rx.recv_ref_timeout(std::time::Duration::from_secs(1))?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<RecvRef<'_>, RecvTimeoutError> {
        match self.peek(Blocking::Until(Some(Instant::now() + timeout))) {
            Ok(p) => Ok(self.guard(p)),
            Err(RecvFail::Timeout | RecvFail::Empty) => Err(RecvTimeoutError::Timeout),
            Err(RecvFail::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(RecvFail::Fault(f)) => Err(f.into()),
        }
    }

    /// Hands every message available now (at most `max`) to `f` in place, then gives all
    /// their space back at once (one release store, at most one wake-up). Returns how many
    /// were handled; 0 when empty. Does not wait.
    ///
    /// # Errors
    /// [`TryRecvError::Disconnected`] when nothing is left and the producer is gone,
    /// corruption and truncation errors. Messages handled before an error stay consumed.
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// for i in 0..10u8 {
    ///     tx.send(&[i])?;
    /// }
    /// let mut sum = 0u32;
    /// let n = rx.drain(usize::MAX, |m| sum += m.get(0).unwrap() as u32)?;
    /// assert_eq!((n, sum), (10, 45));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain(
        &mut self,
        max: usize,
        mut f: impl FnMut(Bytes<'_>),
    ) -> Result<usize, TryRecvError> {
        let shared = self.shared.clone();
        let s = &*shared;
        let mut n = 0;
        let result = loop {
            if n >= max {
                break Ok(n);
            }
            match self.core.try_peek(&s.ring) {
                Ok(Some(p)) => {
                    // SAFETY: the record lies inside the ring (validated by `try_peek`) and
                    // stays ours until `consume` + `publish`, after `f` returns.
                    let view = unsafe { Bytes::new(s.ring.ptr(p.data), p.len as usize) };
                    f(view);
                    if let Err(e) = s.check_truncated() {
                        break Err(e.into());
                    }
                    self.core.consume(&p);
                    self.received += 1;
                    n += 1;
                }
                Ok(None) => {
                    if n == 0 && self.producer_gone_polling() {
                        // Re-check after seeing the producer gone (it publishes first).
                        match self.core.try_peek(&s.ring) {
                            Ok(Some(_)) => continue,
                            Ok(None) => break Err(TryRecvError::Disconnected),
                            Err(e) => break Err(s.fault(e).into()),
                        }
                    }
                    break Ok(n);
                }
                Err(e) => break Err(s.fault(e).into()),
            }
        };
        self.publish();
        result
    }

    /// A blocking iterator: yields messages until the producer is gone (then ends) or an
    /// error occurs (yielded once, then ends).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"1")?;
    /// tx.send(b"2")?;
    /// drop(tx);
    /// let all: Result<Vec<_>, _> = rx.iter().collect();
    /// assert_eq!(all?, vec![b"1".to_vec(), b"2".to_vec()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&mut self) -> Iter<'_> {
        Iter {
            rx: self,
            done: false,
        }
    }

    /// A non-blocking iterator over the messages available now.
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"a")?;
    /// assert_eq!(rx.try_iter().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&mut self) -> TryIter<'_> {
        TryIter { rx: self }
    }

    /// Waits until a producer attaches (a new one, after the previous left), up to
    /// `deadline`. Returns whether one is attached and alive.
    ///
    /// # Example
    /// ```
    /// let (tx, mut rx) = mapipc::channel::pair(4096)?;
    /// assert!(rx.wait_for_producer(Some(std::time::Instant::now())));
    /// drop(tx);
    /// assert!(!rx.wait_for_producer(Some(std::time::Instant::now())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_producer(&mut self, deadline: Option<Instant>) -> bool {
        let s = &*self.shared;
        let mut ready = || s.end_alive(off::PRODUCER);
        if ready() {
            return true;
        }
        let alive = || true;
        let _ = Waiter { deadline }.wait(
            s,
            off::DATA_WORD,
            WaitStrategy::Park,
            self.check_interval,
            &mut ready,
            &alive,
        );
        s.end_alive(off::PRODUCER)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if os::process::pid() != self.pid {
            return;
        }
        self.publish();
        self.shared.detach_end(
            off::CONSUMER,
            self.me,
            off::SPACE_WORD,
            off::CONSUMER_NEVER_PARKS,
        );
    }
}

/// A message received in place; its space goes back to the producer on drop.
pub struct RecvRef<'a> {
    rx: &'a mut Receiver,
    p: Peeked,
}

impl std::fmt::Debug for RecvRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvRef").field("len", &self.p.len).finish()
    }
}

impl RecvRef<'_> {
    /// The message bytes, in the ring.
    #[inline]
    pub fn bytes(&self) -> Bytes<'_> {
        // SAFETY: the record lies inside the ring (validated by `try_peek`) and stays ours
        // until this guard is dropped; the view borrows the guard.
        unsafe { Bytes::new(self.rx.shared.ring.ptr(self.p.data), self.p.len as usize) }
    }

    /// Message length.
    pub fn len(&self) -> usize {
        self.p.len as usize
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.p.len == 0
    }

    /// Copies the message out.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes().to_vec()
    }
}

impl Drop for RecvRef<'_> {
    #[inline]
    fn drop(&mut self) {
        let rx = &mut *self.rx;
        rx.core.consume(&self.p);
        rx.received += 1;
        rx.publish();
    }
}

/// Blocking iterator from [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    rx: &'a mut Receiver,
    done: bool,
}

impl Iterator for Iter<'_> {
    type Item = Result<Vec<u8>, RecvError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rx.recv() {
            Ok(v) => Some(Ok(v)),
            Err(RecvError::Disconnected) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Non-blocking iterator from [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a> {
    rx: &'a mut Receiver,
}

impl Iterator for TryIter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.rx.try_recv().ok()
    }
}
