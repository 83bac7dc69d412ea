//! Lock-free, variable-size, zero-copy message channels between processes.
//!
//! A channel is a [`Region`] whose data holds a small header and a byte ring of contiguous,
//! aligned, variable-size records with free-running positions. Three kinds
//! ([`Kind`], chosen at creation with [`ChannelOptions`]):
//!
//! - **SPSC** (the default): one producer, one consumer; the fastest (`ring.rs` documents
//!   the algorithm: Lamport's ring with cached positions). Messages of 1 byte to
//!   `capacity / 2 - 8` bytes.
//! - **MPSC**: up to `max_producers` producer processes (default 64) and one consumer;
//!   lock-free claims with a commit flag per record, crash-safe: a producer that dies
//!   between claim and commit leaves a record the consumer aborts and skips; one that
//!   holds a claim past the abort timeout has it skipped, its space held until it lets go
//!   (`mpsc.rs`).
//!   Order is FIFO per producer.
//! - **Broadcast**: one producer, up to `max_subscribers` (default 32) independent
//!   subscribers joining and leaving at any time, [`Policy::Lossless`] (the producer waits
//!   for the slowest live subscriber; dead ones are dropped, and a live one taken for dead
//!   gets [`RecvError::Evicted`]) or [`Policy::Lossy`] (the producer never waits; a lapped
//!   subscriber gets [`RecvError::Lagged`] with the exact number it missed) (`bcast.rs`).
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
//! dropped (SPSC [`Receiver::drain`]: when it returns; MPSC `drain`: as each call of its
//! callback returns); a receiver killed while holding a `RecvRef` gets that message again
//! when it re-attaches, and one killed inside `drain` every message that call handed out
//! (SPSC) or the one its callback was handling (MPSC). The sender's position advances when a message is committed; a sender killed
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
//! positions (and repairs the counters a killed predecessor left short). Every position and record header read from shared memory is validated:
//! garbage gives `Corrupted { offset, what }`, never an out-of-bounds access, a panic or an
//! endless loop; a truncated file gives `Truncated`, never SIGBUS, and an end waiting on
//! it (for a message, for room, for a new peer) learns it within the check interval too,
//! from the file's size, even when no page it touches was cut. A page of the file that the
//! kernel cannot supply (an I/O error; a hole, punched or left by a sparse copy, on a full
//! tmpfs or disk: channels are allocated whole at creation, so only these leave one) gives
//! `PageUnavailable` with the page's offset and the cause, never SIGBUS either (the map
//! layer tells it from a truncation: see [`crate::map`]'s SIGBUS docs).
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

pub(crate) mod bcast;
mod error;
mod layout;
pub(crate) mod mpsc;
mod receiver;
pub(crate) mod ring;
mod sender;
mod slots;
pub(crate) mod words;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{
    AttachError, ChannelCreateError, ChannelOpenError, OpenAttachError, PairError, ParseKindError,
    ParsePolicyError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
pub use layout::{Kind, Policy};
pub use receiver::{Iter, Receiver, RecvRef, StartAt, TryIter};
pub use sender::{Grant, Sender};
pub use slots::{Bytes, BytesMut};

use error::{Damage, Fault, Unusable};
use layout::{off, Fixed, MAX_ENDPOINTS, RING_OFFSET};
use ring::{Consumer, Geometry, RingError, Where};
use slots::MappedRing;
use words::Words;

use crate::map::AccessError;
use crate::region::{IntoLocation, Peer, Region, RegionOptions};
use crate::sync::{Notifier, WaitError, WaitOptions};

mod atomic {
    #[cfg(all(loom, test))]
    pub(crate) use loom::sync::atomic::AtomicU64;
    #[cfg(all(not(loom), any(test, fuzzing)))]
    pub(crate) use std::sync::atomic::AtomicU64;

    /// The test memories' causality tracking under loom: records a read or a write of the
    /// payload words under `off..off + len` (byte offsets) in `cells`, one cell per word.
    #[cfg(all(loom, test))]
    pub(crate) fn track_payload(
        cells: &[loom::cell::UnsafeCell<()>],
        off: u64,
        len: usize,
        write: bool,
    ) {
        let first = (off / 8) as usize;
        for cell in &cells[first..first + len.div_ceil(8)] {
            if write {
                cell.with_mut(|_| ());
            } else {
                cell.with(|_| ());
            }
        }
    }
}

/// Fuzzing entry points (built only with `--cfg fuzzing`, as cargo-fuzz does).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Runs the ring's producer and consumer over arbitrary memory.
    pub fn ring(data: &[u8]) {
        super::ring::fuzz_ring(data);
    }

    /// Runs the MPSC consumer and a producer over arbitrary ring memory on the heap
    /// (`mpsc::fuzz_ring` documents the input).
    pub fn mpsc_ring(data: &[u8]) {
        super::mpsc::fuzz_ring(data);
    }

    /// Runs broadcast subscribers and the producer over arbitrary header fields and ring
    /// memory on the heap (`bcast::fuzz_ring` documents the input).
    pub fn bcast_ring(data: &[u8]) {
        super::bcast::fuzz_ring(data);
    }

    /// Validates arbitrary bytes (zero-padded) as a channel header's fixed line, against an
    /// area size taken from the 8 bytes after it: a header that passes must describe a ring
    /// inside the area.
    pub fn fixed(data: &[u8]) {
        use super::{Fixed, RING_OFFSET};
        let mut fixed: Fixed = bytemuck::Zeroable::zeroed();
        let bytes = bytemuck::bytes_of_mut(&mut fixed);
        let n = data.len().min(bytes.len());
        bytes[..n].copy_from_slice(&data[..n]);
        let area = match data.get(64..72) {
            Some(b) => u64::from_le_bytes(b.try_into().unwrap()),
            None => RING_OFFSET.saturating_add(fixed.capacity),
        };
        if let Ok((kind, geo)) = fixed.validate(area) {
            assert_eq!(kind as u32, fixed.kind);
            assert_eq!(geo.capacity(), fixed.capacity);
            assert!(
                RING_OFFSET + geo.capacity() <= area,
                "ring outside the area"
            );
            assert!(fixed.max_payload < geo.capacity(), "maximum payload");
        }
    }

    /// A live channel of `kind` with a valid header and `data[1] % 64` messages sent, whose
    /// shared memory (header lines, endpoint table, ring) then takes the fuzzer's writes:
    /// `(offset: u16, value: u64)` pairs, or with bit 5 of `data[0]` the rest of the input
    /// laid over it from the second line.
    /// Receivers and subscribers (one attached before the damage, one after), `stat` and a
    /// sender must then only return messages or errors: no crash, hang or panic, and no
    /// message longer than the channel's maximum.
    ///
    /// Other bits of `data[0]`: 0, receive with `drain`; 1, also wait 200 µs for a message;
    /// 2, lossy (broadcast); 3, keep the first sender attached; 4, attach a receiver
    /// (subscriber) before the messages are sent; 6, subscribe at the newest message; 7,
    /// receive by reference.
    pub fn live(kind: super::Kind, data: &[u8]) {
        use super::{ChannelOptions, Kind, Policy, Receiver, StartAt, TryRecvError, RING_OFFSET};
        const CAP: u64 = 4096;
        let [mode, sends, rest @ ..] = data else {
            return;
        };
        let policy = if mode & 4 != 0 {
            Policy::Lossy
        } else {
            Policy::Lossless
        };
        let Ok(chan) = ChannelOptions::new(kind)
            .capacity(CAP as usize)
            .policy(policy)
            .max_producers(4)
            .max_subscribers(4)
            .anonymous()
        else {
            return;
        };
        let attach = |newest: bool| match kind {
            Kind::Broadcast => chan.subscribe(if newest {
                StartAt::Newest
            } else {
                StartAt::Oldest
            }),
            _ => chan.receiver(),
        };
        let mut early = if mode & 16 != 0 {
            attach(false).ok()
        } else {
            None
        };
        let mut tx = chan.sender().ok();
        if let Some(tx) = tx.as_mut() {
            for i in 0..usize::from(sends % 64) {
                if tx.try_send(&[i as u8; 256][..1 + (i * 37) % 256]).is_err() {
                    break;
                }
            }
        }
        if let Some(rx) = early.as_mut() {
            let _ = rx.try_recv();
        }
        if mode & 8 == 0 {
            tx = None;
        }
        let region = chan.region();
        let end = RING_OFFSET + CAP;
        if mode & 32 != 0 {
            let n = rest.len().min((end - 64) as usize);
            let _ = region.write_at(64, &rest[..n]);
        } else {
            for patch in rest.chunks_exact(10) {
                let off = u64::from(u16::from_le_bytes([patch[0], patch[1]])) % end;
                let n = (end - off).min(8) as usize;
                let _ = region.write_at(off, &patch[2..2 + n]);
            }
        }
        let _ = chan.stat();
        let max = chan.max_message();
        let by_ref = mode & 128 != 0;
        let batch = mode & 1 != 0;
        let wait = mode & 2 != 0;
        let drain = |rx: &mut Receiver| {
            let mut errors = 0;
            // At most a ring's worth of records (8 bytes at least each), a few losses, and
            // errors asked again (each must leave the receiver usable or keep failing).
            for _ in 0..CAP / 8 + 16 {
                let got = if batch {
                    let mut ok = true;
                    let n = rx.drain(64, |m| ok &= !m.is_empty() && m.len() <= max);
                    assert!(ok, "message length");
                    match n {
                        Ok(0) => Err(TryRecvError::Empty),
                        Ok(_) => Ok(vec![0]),
                        Err(e) => Err(e),
                    }
                } else if by_ref {
                    rx.try_recv_ref().map(|m| {
                        let _ = m.is_intact();
                        m.to_vec()
                    })
                } else {
                    rx.try_recv()
                };
                match got {
                    Ok(m) => assert!(!m.is_empty() && m.len() <= max, "message length"),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Lagged { missed }) => assert!(missed > 0, "lost nothing"),
                    Err(_) => {
                        errors += 1;
                        if errors == 3 {
                            return;
                        }
                    }
                }
            }
            panic!("receiving did not stop");
        };
        // A short wait: the waiting path (notifier word, liveness checks) over the damage.
        let wait = |rx: &mut Receiver| {
            if wait {
                let _ = rx.recv_timeout(std::time::Duration::from_micros(200));
            }
        };
        if let Some(rx) = early.as_mut() {
            drain(rx);
        }
        if let Ok(mut rx) = attach(mode & 64 != 0) {
            drain(&mut rx);
            wait(&mut rx);
        }
        if tx.is_none() {
            tx = chan.sender().ok();
        }
        if let Some(tx) = tx.as_mut() {
            for len in [1, 100, max] {
                let _ = tx.try_send(&vec![7; len]);
            }
        }
        if let Some(rx) = early.as_mut() {
            drain(rx);
            wait(rx);
        }
        let _ = chan.stat();
    }

    /// Lays arbitrary bytes over a channel's header and ring in a real mapping, then opens
    /// it and receives until empty or an error: nothing may crash, hang or panic.
    pub fn channel(data: &[u8]) {
        use super::{Channel, RING_OFFSET};
        let Ok(region) = crate::region::Region::anonymous((RING_OFFSET + 4096) as usize) else {
            return;
        };
        let n = data.len().min(region.len());
        if region.write_at(0, &data[..n]).is_err() {
            return;
        }
        if let Ok(chan) = Channel::from_region(region) {
            exercise(&chan);
        }
    }

    /// Uses a channel opened over arbitrary bytes: `stat`, a receiver (a subscriber from
    /// the oldest message for a broadcast channel) taking up to 1024 messages, each at most
    /// the channel's maximum, then a sender's `try_send`. Nothing may crash, hang or panic.
    pub fn exercise(chan: &super::Channel) {
        use super::{Kind, StartAt, TryRecvError};
        let _ = chan.stat();
        let rx = match chan.kind() {
            Kind::Broadcast => chan.subscribe(StartAt::Oldest),
            _ => chan.receiver(),
        };
        if let Ok(mut rx) = rx {
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

    /// The same strategy once `spun` of its spins were made elsewhere.
    fn less_spins(self, spun: u32) -> WaitStrategy {
        match self {
            WaitStrategy::SpinThenPark { spins } => WaitStrategy::SpinThenPark {
                spins: spins.saturating_sub(spun),
            },
            other => other,
        }
    }
}

/// Polling calls that find nothing to do (`try_recv` and `drain` on an empty channel,
/// `try_send` on a full one) ask the kernel whether the other side is alive (a lock query,
/// a syscall of ~0.5 µs) at most this often, in nanoseconds of the coarse monotonic clock
/// (`os::process::monotonic_coarse_ns`, ~3 ns to read where `Instant::now` costs ~25; it
/// advances at the kernel's tick, so the queries come at most once per tick when that is
/// longer). A clean detach is seen at once, without a query.
const LOCK_QUERY_INTERVAL_NS: u64 = 1_000_000;

/// Default period of peer-liveness checks while waiting.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Default abort timeout of MPSC claims whose owner still looks alive.
pub const DEFAULT_ABORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared state of one opened channel: the region and where things are in it.
pub(crate) struct Shared {
    region: Region,
    ring: MappedRing,
    geo: Geometry,
    kind: Kind,
    policy: Policy,
    /// MPSC: producer slots; broadcast: subscriber slots.
    max_endpoints: u32,
    max_payload: u64,
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

    /// The consumer position in shared memory is not the one the consumer stored.
    pub(crate) fn position_overwritten_fault(&self) -> Fault {
        self.fault(RingError::Corrupted {
            at: Where::Head,
            what: "consumer position (overwritten by another process)",
        })
    }

    fn fault(&self, e: RingError) -> Fault {
        match e {
            // Words of a file cut under the mapping, or of a page the kernel could not
            // supply, read as zeros, which the ring reports as damage (a header missing where
            // `tail` says a record is): say what happened.
            RingError::Corrupted { .. } if self.truncated_now() => self.file_fault(),
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

    /// Before reporting the end registered in `field` (`off::PRODUCER` or `off::CONSUMER`)
    /// gone: a registration holding a value no peer of the region can have was written by
    /// someone else, and is corruption, not a departure.
    fn check_registration(&self, field: u64, what: &'static str) -> Result<(), Fault> {
        let id = self.word(field).load(Ordering::Acquire);
        if id == 0 || self.region.is_peer_id(id) {
            Ok(())
        } else {
            Err(Fault::Corrupted {
                file: self.file(),
                offset: self.header_file_off + field,
                what,
            })
        }
    }

    /// For the periodic checks of a wait: whether the file was truncated, touched past its
    /// end or not (an `fstat`), or the mapping is poisoned by a page the kernel could not
    /// supply. A waiting end whose channel was truncated would otherwise wait for ever: no
    /// peer can attach to it any more.
    fn truncated_now(&self) -> bool {
        self.region.is_poisoned() || self.region.file_shrunk()
    }

    /// The [`file_fault`](Self::file_fault) if [`truncated_now`](Self::truncated_now):
    /// before reporting the other end gone, which a truncation also looks like (and which a
    /// caller would wait out).
    fn check_truncated_now(&self) -> Result<(), Fault> {
        if self.truncated_now() {
            Err(self.file_fault())
        } else {
            Ok(())
        }
    }

    /// The fault of a channel file that lost bytes under the mapping: `PageUnavailable`
    /// when the map layer diagnosed the fault that poisoned the mapping as a page the kernel
    /// could not supply (see [`crate::map`]'s SIGBUS docs; diagnosed once, then kept),
    /// `Truncated` otherwise (a truncation, or a file found shorter without a fault).
    #[cold]
    fn file_fault(&self) -> Fault {
        match self.region.as_mmap().poison_error() {
            Some(AccessError::Fault {
                file_offset,
                file_len,
                cause,
                ..
            }) => Fault::PageUnavailable {
                file: self.file(),
                file_offset,
                file_len,
                cause,
            },
            _ => Fault::Truncated { file: self.file() },
        }
    }

    /// Whether the mapping is poisoned: [`check_truncated`](Self::check_truncated) fails.
    #[inline]
    fn is_poisoned(&self) -> bool {
        self.region.as_mmap().is_poisoned()
    }

    /// The [`file_fault`](Self::file_fault) if the mapping is poisoned (a SIGBUS hit it,
    /// or a size check found the file shorter).
    #[inline]
    fn check_truncated(&self) -> Result<(), Fault> {
        if self.is_poisoned() {
            Err(self.file_fault())
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

    /// The peer id in endpoint-table entry `i` (0: free).
    fn entry_peer(&self, i: u32) -> u32 {
        self.ring.ctl_load(off::subscriber(i), Ordering::Acquire) as u32
    }

    /// MPSC: whether any producer is attached and alive. Frees entries of dead producers on
    /// the way (one liveness check per occupied entry, stopping at the first live one).
    fn any_producer_alive(&self) -> bool {
        let mut alive = false;
        for i in 0..self.max_endpoints {
            let f = off::producer(i);
            let w = self.ring.ctl_load(f, Ordering::Acquire);
            let id = w as u32;
            if id == 0 {
                continue;
            }
            if self.region.is_alive(id) {
                alive = true;
                break;
            }
            let _ = self.ring.ctl_cas(f, w, layout::freed_entry(w));
        }
        alive
    }

    /// The producers' side left cleanly: some producer attached once and none is registered
    /// now. No syscall (a killed producer stays registered: see [`producers_gone`]).
    ///
    /// [`producers_gone`]: Self::producers_gone
    fn producers_detached(&self) -> bool {
        if !self.end_ever_attached(off::PRODUCER_EPOCH) {
            return false;
        }
        match self.kind {
            Kind::Mpsc => (0..self.max_endpoints).all(|i| self.entry_peer(i) == 0),
            Kind::Spsc | Kind::Broadcast => self.word(off::PRODUCER).load(Ordering::Acquire) == 0,
        }
    }

    /// The producers' side is gone: some producer attached once, none is attached and alive.
    /// Asks the kernel about each registered producer's lock (a syscall each).
    fn producers_gone(&self) -> bool {
        if !self.end_ever_attached(off::PRODUCER_EPOCH) {
            return false;
        }
        match self.kind {
            Kind::Mpsc => !self.any_producer_alive(),
            Kind::Spsc | Kind::Broadcast => !self.end_alive(off::PRODUCER),
        }
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
    /// The flag is only honoured where a single end parks on the word (SPSC both ways, the
    /// MPSC consumer); several producers or subscribers always get the wake-up.
    #[inline]
    fn wake_if_parked(&self, word_field: u64, never_parks_field: u64) {
        if self.word(never_parks_field).load(Ordering::Relaxed) == 0 {
            Notifier::new(self.word(word_field)).notify_all();
        }
    }

    /// Wakes every waiter on `word_field` (several producers or subscribers).
    #[inline]
    fn wake_all(&self, word_field: u64) {
        Notifier::new(self.word(word_field)).notify_all();
    }

    /// Advertises whether this end busy-polls (see [`wake_if_parked`](Self::wake_if_parked)).
    fn advertise_strategy(&self, never_parks_field: u64, wait: WaitStrategy) {
        let flag = u32::from(wait == WaitStrategy::BusyPoll);
        self.word(never_parks_field).store(flag, Ordering::Release);
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Registers a single end (the SPSC/broadcast producer, the SPSC/MPSC consumer).
    fn attach_end(
        &self,
        field: u64,
        epoch_field: u64,
        wake_field: u64,
        role: &'static str,
    ) -> Result<Peer, AttachError> {
        let peer = self.region.join()?;
        let me = peer.id();
        let word = self.word(field);
        loop {
            let cur = word.load(Ordering::Acquire);
            if cur != 0 && cur != me && self.region.is_alive(cur) {
                return Err(AttachError::Busy {
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
        // The word this end parks on (the other end's wake word is the other one): only this
        // end waits on it, so a waiter count there is a predecessor killed while parked. The
        // next notify that finds nobody parked would clear it; until then it would make
        // wake-ups of ours syscalls and `stat` report us parked: clear it now.
        let own_word = if wake_field == off::DATA_WORD {
            off::SPACE_WORD
        } else {
            off::DATA_WORD
        };
        Notifier::new(self.word(own_word)).forget_waiters();
        self.word(epoch_field).fetch_add(1, Ordering::AcqRel);
        // Wake the other end if it waits for one of us to attach.
        Notifier::new(self.word(wake_field)).notify_all();
        Ok(peer)
    }

    /// SPSC: the message count a producer attaching at `tail` continues from. Each end
    /// stores its count (`SENT`, `RECEIVED`) right after publishing its position, so an end
    /// killed between the two left its count short, for good, by what it published last (a
    /// message, or a whole batch at a flush). The count cannot be less than what the
    /// consumer counted plus the messages still in the ring: `received` (read *before*
    /// this call) counts up to a consumer position at or before the one read here, so
    /// the sum never exceeds the messages really sent. Garbage positions or records leave
    /// `sent` as it is (it is only a statistic).
    fn repaired_sent(&self, sent: u64, received: u64, tail: u64) -> u64 {
        // Acquire pairs with the consumer's Release store of `received` (stored after the
        // position it counts up to).
        let head = self.ring.ctl_load(off::HEAD, Ordering::Acquire);
        match ring::count_records(self.geo, &self.ring, head, Some(tail)) {
            // Not over a page that faulted during the walk (it read zeros): the attach
            // reports that fault instead.
            Some((in_ring, _))
                if received.saturating_add(in_ring) > sent && !self.region.is_poisoned() =>
            {
                let fixed = received.saturating_add(in_ring);
                self.ring.ctl_store(off::SENT, fixed, Ordering::Release);
                fixed
            }
            _ => sent,
        }
    }

    /// SPSC: the message count a consumer attaching at `head` continues from: the mirror of
    /// [`repaired_sent`](Self::repaired_sent). At least `sent` (read *before* this call;
    /// every record it counts is visible, see the Release store in `Sender::publish`) less
    /// the committed records from `head` on.
    fn repaired_received(&self, received: u64, sent: u64, head: u64) -> u64 {
        match ring::count_records(self.geo, &self.ring, head, None) {
            // As in `repaired_sent`: not over a page that faulted during the walk.
            Some((in_ring, _))
                if sent.saturating_sub(in_ring) > received && !self.region.is_poisoned() =>
            {
                let fixed = sent - in_ring;
                self.ring.ctl_store(off::RECEIVED, fixed, Ordering::Release);
                fixed
            }
            _ => received,
        }
    }

    /// MPSC: each producer slot's message count (stored by its producers as they publish).
    /// Acquire pairs with their Release stores (pair **N**, `Sender::publish`): the records
    /// a count covers are visible.
    fn producer_counts(&self) -> Vec<u64> {
        (0..self.max_endpoints)
            .map(|i| self.ring.ctl_load(off::producer(i) + 8, Ordering::Acquire))
            .collect()
    }

    /// MPSC: the message count a consumer attaching as `c` continues from. A predecessor
    /// killed after taking messages (their blocks handed back) but before storing its count
    /// left it short, and the blocks no longer say what they held. Each slot's producers
    /// committed at least `counts[i]` messages (read *before* this call: the records they
    /// cover are visible, pair **N**); those not in the ring any more, committed, were
    /// consumed. So the messages consumed are at least the sum over the slots of `counts[i]`
    /// less the slot's committed records from the published position on; that is the
    /// count, unless it is already higher. A count a producer has not stored yet (mid-send,
    /// a batch not flushed, or killed in between) leaves the repair short by its messages.
    /// It raises the count by at most a ring of records (what a consumer can take before
    /// publishing); garbage counts or records leave it as it is (it is only a statistic).
    fn repaired_received_mpsc(&self, received: u64, counts: &[u64], c: &mpsc::MpscConsumer) -> u64 {
        let Some(in_ring) = c.committed_by_owner(&self.ring) else {
            return received;
        };
        let floor = counts.iter().zip(in_ring).fold(0u64, |sum, (&sent, n)| {
            sum.saturating_add(sent.saturating_sub(n))
        });
        let most = self.geo.capacity() / mpsc::BLOCK;
        // Not from a walk that met a lost page (it read zeros there: too few records, a
        // count too high); the attach then fails (`check_attached`).
        if floor > received && floor - received <= most && !self.region.is_poisoned() {
            self.ring.ctl_store(off::RECEIVED, floor, Ordering::Release);
            floor
        } else {
            received
        }
    }

    /// Registers in the endpoint table (MPSC producers, broadcast subscribers): takes a free
    /// entry or one whose holder is dead, bumping its ticket (`layout::claimed_entry`).
    /// Returns the entry index, the word stored in it (ours for as long as we hold the
    /// entry), and the value of its second word (the count or position the previous holder
    /// left).
    fn attach_entry(&self, me: u32, role: &'static str) -> Result<(u32, u64, u64), AttachError> {
        for i in 0..self.max_endpoints {
            let f = off::subscriber(i);
            let w = self.ring.ctl_load(f, Ordering::Acquire);
            let id = w as u32;
            if id != 0 && (id == me || self.region.is_alive(id)) {
                continue;
            }
            let mine = layout::claimed_entry(w, me);
            if self.ring.ctl_cas(f, w, mine).is_ok() {
                let second = self.ring.ctl_load(f + 8, Ordering::Acquire);
                return Ok((i, mine, second));
            }
        }
        Err(AttachError::Full {
            file: self.file(),
            role,
            max: self.max_endpoints,
        })
    }

    /// Leaves endpoint-table entry `i` if `me` still holds it (also to clear a dead peer's
    /// entry). The peer id is the entry's low half, as [`entry_peer`](Self::entry_peer)
    /// reads it: garbage in the high half must not make the entry impossible to clear.
    fn detach_entry(&self, i: u32, me: u32) {
        let f = off::subscriber(i);
        let w = self.ring.ctl_load(f, Ordering::Acquire);
        if w as u32 == me {
            let _ = self.ring.ctl_cas(f, w, layout::freed_entry(w));
        }
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

    fn end_stat(&self, id: u32, attaches: u32, word_field: Option<u64>) -> EndStat {
        let alive = id != 0 && self.region.is_alive(id);
        EndStat {
            attached: id != 0,
            alive,
            peer: id,
            pid: if id != 0 {
                peer_pid(&self.region, id)
            } else {
                0
            },
            attaches,
            // A dead end is not waiting, though one killed while parked left its registration
            // (until a notify finds nobody parked and clears it).
            parked: alive && word_field.is_some_and(|w| Notifier::new(self.word(w)).waiters() > 0),
        }
    }

    fn stat(&self) -> Stat {
        let cap = self.geo.capacity();
        // The consumer's position (or the broadcast ring's oldest record) before and after
        // the producer's. All only grow, and honest ends keep each within a capacity of the
        // others (an SPSC consumer may even be ahead of the published `tail`: it follows the
        // record headers, which a commit stores before `tail`, and a batch's whole length at
        // a flush), so `before <= tail + cap` (broadcast: `before <= tail`) and
        // `tail <= after + cap` hold however the reads interleave with the ends' stores.
        // (Reading `tail` first, and requiring `head <= tail`, made a busy, healthy channel
        // look inconsistent now and then.)
        let head = self.ring.ctl_load(off::HEAD, Ordering::Acquire);
        let oldest_before = (self.kind == Kind::Broadcast)
            .then(|| bcast::read_oldest(&self.ring).map(|o| o.pos).ok())
            .flatten();
        let tail = self.ring.ctl_load(off::TAIL, Ordering::Acquire);
        let head_after = self.ring.ctl_load(off::HEAD, Ordering::Acquire);
        let producer_epoch = self.word(off::PRODUCER_EPOCH).load(Ordering::Relaxed);
        let consumer_epoch = self.word(off::CONSUMER_EPOCH).load(Ordering::Relaxed);
        let single = |field| self.word(field).load(Ordering::Acquire);
        let mut st = Stat {
            kind: self.kind,
            policy: (self.kind == Kind::Broadcast).then_some(self.policy),
            capacity: cap,
            max_message: self.max_payload,
            bytes_used: 0,
            sent: 0,
            received: self.ring.ctl_load(off::RECEIVED, Ordering::Relaxed),
            aborted: self.ring.ctl_load(off::ABORTED, Ordering::Relaxed),
            producer: self.end_stat(single(off::PRODUCER), producer_epoch, Some(off::SPACE_WORD)),
            consumer: self.end_stat(single(off::CONSUMER), consumer_epoch, Some(off::DATA_WORD)),
            producers: Vec::new(),
            subscribers: Vec::new(),
            positions_valid: true,
        };
        match self.kind {
            Kind::Spsc => {
                st.bytes_used = tail.saturating_sub(head_after).min(cap);
                st.sent = self.ring.ctl_load(off::SENT, Ordering::Relaxed);
                st.positions_valid = (head | tail) % 8 == 0
                    && head <= tail.saturating_add(cap)
                    && tail <= head_after.saturating_add(cap);
            }
            Kind::Mpsc => {
                st.bytes_used = tail.saturating_sub(head).min(cap);
                // The claim hint is a lower bound of the frontier (the end of the last
                // claimed record), which honest producers keep within a capacity of the
                // consumer (their claims refuse a hint further on). It may lag behind
                // `head`, but by less than a capacity: claims happen at the hint, so the
                // frontier is at most one record past it, and the consumer never passes
                // the frontier.
                st.positions_valid = head % mpsc::BLOCK == 0
                    && tail % mpsc::BLOCK == 0
                    && head <= tail.saturating_add(cap)
                    && tail <= head_after.saturating_add(cap);
                let mut sent = 0u64;
                for i in 0..self.max_endpoints {
                    let id = self.entry_peer(i);
                    let count = self.ring.ctl_load(off::producer(i) + 8, Ordering::Relaxed);
                    sent = sent.wrapping_add(count);
                    if id != 0 {
                        st.producers.push(self.end_stat(id, producer_epoch, None));
                    }
                }
                // Each producer stores its count when it publishes: one killed between a
                // commit and its publication left messages the consumer may have received
                // uncounted. Whatever was received was sent.
                st.sent = sent.max(st.received);
                st.producer = st.producers.first().copied().unwrap_or(st.producer);
                st.producer.parked = Notifier::new(self.word(off::SPACE_WORD)).waiters() > 0;
            }
            Kind::Broadcast => {
                let oldest = bcast::read_oldest(&self.ring)
                    .map(|o| o.pos)
                    .unwrap_or(tail);
                let before = oldest_before.unwrap_or(oldest);
                st.bytes_used = tail.saturating_sub(oldest).min(cap);
                st.sent = self.ring.ctl_load(off::NEXT_SEQ, Ordering::Relaxed);
                // The oldest record never passes the producer's position (read after it
                // here), as the producer's own attach requires.
                st.positions_valid = (before | tail) % 8 == 0
                    && before <= tail
                    && tail <= oldest.saturating_add(cap);
                for i in 0..self.max_endpoints {
                    let id = self.entry_peer(i);
                    if id == 0 {
                        continue;
                    }
                    let pos = bcast::untagged(
                        self.ring
                            .ctl_load(off::subscriber(i) + 8, Ordering::Relaxed),
                    );
                    st.subscribers.push(SubscriberStat {
                        end: self.end_stat(id, 0, None),
                        slot: i,
                        position: pos,
                        behind: tail.saturating_sub(pos),
                    });
                }
            }
        }
        st
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

/// How to create a channel: kind, capacity, broadcast policy, endpoint limits.
///
/// # Example
/// ```
/// use mapipc::channel::{ChannelOptions, Kind, Policy};
/// let chan = ChannelOptions::new(Kind::Broadcast)
///     .capacity(1 << 16)
///     .policy(Policy::Lossy)
///     .max_subscribers(8)
///     .anonymous()?;
/// assert_eq!(chan.kind(), Kind::Broadcast);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    kind: Kind,
    capacity: usize,
    policy: Policy,
    max_producers: u32,
    max_subscribers: u32,
}

impl ChannelOptions {
    /// Defaults: 64 KiB ring, lossless, 64 producers (MPSC), 32 subscribers (broadcast).
    pub fn new(kind: Kind) -> ChannelOptions {
        ChannelOptions {
            kind,
            capacity: 64 * 1024,
            policy: Policy::Lossless,
            max_producers: 64,
            max_subscribers: 32,
        }
    }

    /// Ring size in bytes, rounded up to a power of two (at least [`MIN_CAPACITY`]).
    ///
    /// The largest message is half the ring less 8 bytes (MPSC and broadcast: 16). In an
    /// SPSC ring a message takes an 8-byte header plus its length rounded up to 8, and one
    /// whose record crosses a 64-byte cache-line boundary also takes the rest of that line (a
    /// 64-byte message takes 128 bytes, four 8-byte ones share a line), which keeps the two
    /// ends off each other's lines. In an MPSC ring a message takes a 16-byte header plus its
    /// length, rounded up to 32-byte blocks; in a broadcast ring a 16-byte header plus its
    /// length rounded up to 16. Beyond that, size is a trade: a
    /// larger ring absorbs bursts without blocking the producer and costs memory. With one
    /// message in flight (request-response) it barely matters: on the development VM a
    /// 64-byte round trip measured 176–192 ns with 8 KiB rings and 179–198 ns with 512 KiB
    /// ones (BENCHMARKS.md, "Channel").
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::{ChannelOptions, Kind};
    /// let chan = ChannelOptions::new(Kind::Spsc).capacity(8 * 1024).anonymous()?;
    /// assert_eq!(chan.stat().capacity, 8 * 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&mut self, bytes: usize) -> &mut Self {
        self.capacity = bytes;
        self
    }

    /// Broadcast policy (ignored by the other kinds).
    pub fn policy(&mut self, policy: Policy) -> &mut Self {
        self.policy = policy;
        self
    }

    /// MPSC: most producers attached at once (1 to 192).
    pub fn max_producers(&mut self, n: u32) -> &mut Self {
        self.max_producers = n;
        self
    }

    /// Broadcast: most subscribers attached at once (1 to 192).
    pub fn max_subscribers(&mut self, n: u32) -> &mut Self {
        self.max_subscribers = n;
        self
    }

    fn check(&self) -> Result<(Geometry, Fixed), ChannelCreateError> {
        let geo = geometry_for(self.capacity)?;
        let max_endpoints = match self.kind {
            Kind::Spsc => 0,
            Kind::Mpsc => self.max_producers,
            Kind::Broadcast => self.max_subscribers,
        };
        let limit = match self.kind {
            Kind::Mpsc => MAX_ENDPOINTS.min(mpsc::MAX_OWNERS),
            _ => MAX_ENDPOINTS,
        };
        if self.kind != Kind::Spsc && !(1..=limit).contains(&max_endpoints) {
            return Err(ChannelCreateError::BadEndpoints {
                requested: max_endpoints,
                max: limit,
            });
        }
        let policy = if self.kind == Kind::Broadcast {
            self.policy
        } else {
            Policy::Lossless
        };
        let fixed = Fixed::new(
            self.kind,
            geo.capacity(),
            layout::max_payload(self.kind, geo),
            policy,
            max_endpoints,
        );
        Ok((geo, fixed))
    }

    /// Creates the channel in anonymous shared memory (for related processes: create before
    /// `fork`, attach after).
    ///
    /// # Errors
    /// [`ChannelCreateError::BadCapacity`], [`ChannelCreateError::BadEndpoints`],
    /// [`ChannelCreateError::Region`].
    ///
    /// # Example
    /// See [`ChannelOptions`].
    pub fn anonymous(&self) -> Result<Channel, ChannelCreateError> {
        let (geo, fixed) = self.check()?;
        let region = Region::anonymous((RING_OFFSET + geo.capacity()) as usize)?;
        Channel::init(region, geo, fixed)
    }

    /// Creates a channel file (a path, or a bare name in `/dev/shm`); fails if it exists.
    ///
    /// # Errors
    /// As [`anonymous`](Self::anonymous); [`ChannelCreateError::Region`]
    /// ([`CreateError::AlreadyExists`](crate::region::CreateError::AlreadyExists)) when the
    /// file exists.
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::{ChannelOptions, Kind};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("jobs");
    /// let chan = ChannelOptions::new(Kind::Mpsc).max_producers(4).create(&path)?;
    /// let mut a = chan.sender()?;
    /// let mut b = chan.sender()?; // several producers
    /// a.send(b"from a")?;
    /// b.send(b"from b")?;
    /// let mut rx = chan.receiver()?;
    /// assert_eq!(rx.recv()?, b"from a");
    /// assert_eq!(rx.recv()?, b"from b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(&self, location: impl IntoLocation) -> Result<Channel, ChannelCreateError> {
        let (geo, fixed) = self.check()?;
        let region = Region::create(location, (RING_OFFSET + geo.capacity()) as usize)?;
        Channel::init(region, geo, fixed)
    }

    /// Lays the channel out in a freshly created region (for example a sealed memfd region
    /// that will be passed to another process). The region's data must be large enough.
    ///
    /// # Errors
    /// [`ChannelCreateError::BadCapacity`], [`ChannelCreateError::BadEndpoints`];
    /// [`ChannelCreateError::RegionTooSmall`] when the region cannot hold the channel,
    /// [`ChannelCreateError::ReadOnly`] when it is mapped read-only.
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::{ChannelOptions, Kind};
    /// use mapipc::region::Region;
    /// let region = Region::memfd("chan", 4096 + 8192)?;
    /// let chan = ChannelOptions::new(Kind::Spsc).capacity(8192).create_in(region)?;
    /// assert_eq!(chan.capacity(), 8192);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_in(&self, region: Region) -> Result<Channel, ChannelCreateError> {
        let (geo, fixed) = self.check()?;
        Channel::init(region, geo, fixed)
    }
}

/// A channel's shared memory, opened in this process. Attach ends with
/// [`sender`](Self::sender) and [`receiver`](Self::receiver) (for broadcast also
/// [`subscribe`](Self::subscribe)).
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

fn geometry_for(capacity: usize) -> Result<Geometry, ChannelCreateError> {
    let cap = (capacity.max(MIN_CAPACITY) as u64)
        .checked_next_power_of_two()
        .unwrap_or(0);
    Geometry::new(cap).ok_or(ChannelCreateError::BadCapacity {
        capacity: capacity as u64,
        min: MIN_CAPACITY as u64,
    })
}

impl Channel {
    /// Creates an SPSC channel in anonymous shared memory, for related processes: create it
    /// before `fork`, then attach one end in each process. Other kinds:
    /// [`ChannelOptions::anonymous`].
    ///
    /// `capacity` is the ring size in bytes, rounded up to a power of two (at least
    /// [`MIN_CAPACITY`]).
    ///
    /// # Errors
    /// [`ChannelCreateError::BadCapacity`], [`ChannelCreateError::Region`].
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
    pub fn anonymous(capacity: usize) -> Result<Channel, ChannelCreateError> {
        ChannelOptions::new(Kind::Spsc)
            .capacity(capacity)
            .anonymous()
    }

    /// Creates an SPSC channel file (a path, or a bare name in `/dev/shm`); fails if it
    /// exists. Other kinds: [`ChannelOptions::create`].
    ///
    /// # Errors
    /// [`ChannelCreateError::BadCapacity`], [`ChannelCreateError::Region`] (exists, bad name,
    /// disk full).
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
    pub fn create(
        location: impl IntoLocation,
        capacity: usize,
    ) -> Result<Channel, ChannelCreateError> {
        ChannelOptions::new(Kind::Spsc)
            .capacity(capacity)
            .create(location)
    }

    /// Lays an SPSC channel out in a freshly created region. See
    /// [`ChannelOptions::create_in`].
    ///
    /// # Errors
    /// As [`ChannelOptions::create_in`].
    ///
    /// # Example
    /// ```
    /// use mapipc::region::Region;
    /// let region = Region::memfd("chan", 4096 + 8192)?;
    /// let chan = mapipc::channel::Channel::create_in(region, 8192)?;
    /// assert_eq!(chan.capacity(), 8192);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_in(region: Region, capacity: usize) -> Result<Channel, ChannelCreateError> {
        ChannelOptions::new(Kind::Spsc)
            .capacity(capacity)
            .create_in(region)
    }

    fn init(region: Region, geo: Geometry, fixed: Fixed) -> Result<Channel, ChannelCreateError> {
        let file = || region.name().to_string();
        let needed = RING_OFFSET + geo.capacity();
        let too_small = || ChannelCreateError::RegionTooSmall {
            file: file(),
            len: region.len() as u64,
            needed,
        };
        if needed > region.len() as u64 {
            return Err(too_small());
        }
        // The ring is written through raw pointers below (MPSC): a region opened read-only
        // must be refused before, as the header writes would refuse it after.
        if region.is_read_only() {
            return Err(ChannelCreateError::ReadOnly { file: file() });
        }
        if fixed.kind == Kind::Mpsc as u32 {
            // Every block free for lap 0, before anyone can see the channel.
            let ring = MappedRing::new(region.as_mmap(), region.data_offset(), geo.capacity())
                .ok_or_else(too_small)?;
            mpsc::init_ring(geo, &ring);
        }
        // Write everything but the magic, then the magic: an opener never sees a
        // half-written header with a valid magic.
        let mut staged = fixed;
        staged.magic = [0; 8];
        let write = |e| ChannelCreateError::write(file(), e);
        region.write_pod(0, &staged).map_err(write)?;
        region.write_at(0, &fixed.magic).map_err(write)?;
        region
            .set_content_kind(REGION_CONTENT_CHANNEL)
            .map_err(write)?;
        Ok(Channel::load(region)?)
    }

    /// Opens a channel file created by [`create`](Self::create) or
    /// [`ChannelOptions::create`], validating its header.
    ///
    /// # Errors
    /// [`ChannelOpenError::Region`] (missing file, not a region, bad name),
    /// [`ChannelOpenError::BadHeader`] (not a channel, damaged header),
    /// [`ChannelOpenError::Corrupted`] (damaged positions), [`ChannelOpenError::Truncated`],
    /// [`ChannelOpenError::PageUnavailable`].
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("plain");
    /// std::fs::write(&path, vec![0xab; 8192])?;
    /// let err = mapipc::channel::Channel::open(&path).unwrap_err();
    /// assert!(matches!(err, mapipc::channel::ChannelOpenError::Region(_)));
    /// assert!(err.to_string().contains("not a mapipc region"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(location: impl IntoLocation) -> Result<Channel, ChannelOpenError> {
        Ok(Channel::load(Region::open(location)?)?)
    }

    /// Opens a channel file for inspection only: the file is opened for reading and mapped
    /// read-only, so [`stat`](Self::stat) needs only read permission (a channel of another
    /// user, or on a read-only mount). Files of other users are accepted (nothing is written
    /// to them, and what is read is validated as from any peer). No end can attach:
    /// [`sender`](Self::sender), [`receiver`](Self::receiver) and
    /// [`subscribe`](Self::subscribe) fail with [`AttachError::Join`]
    /// ([`JoinError::ReadOnly`](crate::region::JoinError::ReadOnly)).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::{AttachError, Channel};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("ch");
    /// let chan = Channel::create(&path, 4096)?;
    /// chan.sender()?.send(b"hi")?;
    /// let look = Channel::open_read_only(&path)?;
    /// assert_eq!(look.stat().sent, 1);
    /// assert!(matches!(look.receiver(), Err(AttachError::Join(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(location: impl IntoLocation) -> Result<Channel, ChannelOpenError> {
        let region = RegionOptions::new()
            .read_only(true)
            .allow_foreign_owner(true)
            .open(location)?;
        Ok(Channel::load(region)?)
    }

    /// Opens the channel laid out in `region` (for example one received over a Unix
    /// socket with [`Region::receive`]), validating its header.
    ///
    /// # Errors
    /// [`ChannelOpenError::BadHeader`], [`ChannelOpenError::Corrupted`],
    /// [`ChannelOpenError::Truncated`], [`ChannelOpenError::PageUnavailable`].
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::{Channel, ChannelOpenError};
    /// use mapipc::region::Region;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("chan");
    /// Channel::create(&path, 4096)?.sender()?.send(b"kept")?;
    /// let region = Region::open(&path)?; // or one received with Region::receive
    /// let chan = Channel::from_region(region)?;
    /// assert_eq!(chan.region().name(), path.display().to_string());
    /// assert_eq!(chan.receiver()?.recv()?, b"kept");
    ///
    /// let plain = Region::anonymous(8192)?; // a region that holds no channel
    /// assert!(matches!(Channel::from_region(plain), Err(ChannelOpenError::BadHeader { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_region(region: Region) -> Result<Channel, ChannelOpenError> {
        Ok(Channel::load(region)?)
    }

    /// [`from_region`](Self::from_region), with its failure for the caller to say in its
    /// operation's terms (creation reads back the channel it laid out).
    fn load(region: Region) -> Result<Channel, Unusable> {
        let file = region.name().to_string();
        let header_file_off = region.as_mmap().file_offset() + region.data_offset();
        let bad = |what| Unusable::BadHeader {
            file: file.clone(),
            offset: header_file_off,
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
            header_file_off,
            region,
            ring,
            geo,
            kind,
            policy: Policy::from_u32(fixed.policy).unwrap_or_default(),
            max_endpoints: fixed.max_endpoints,
            max_payload: fixed.max_payload,
        };
        // Validate the positions once so a damaged file is reported at open.
        let check = match kind {
            Kind::Spsc => Consumer::attach(geo, &shared.ring).map(|_| ()),
            Kind::Mpsc => {
                mpsc::MpscConsumer::attach(geo, shared.max_endpoints, &shared.ring).map(|_| ())
            }
            Kind::Broadcast => bcast::Subscriber::attach(geo, &shared.ring, false).map(|_| ()),
        };
        if let Err(e) = check {
            return Err(Unusable::Damage(shared.corrupted(e)));
        }
        Ok(Channel {
            shared: Arc::new(shared),
        })
    }

    /// Attaches a producer end. SPSC and broadcast: fails with [`AttachError::Busy`]
    /// while another live process is the producer, and takes over from a dead one. MPSC:
    /// takes a free producer slot ([`AttachError::Full`] when all are held by live
    /// producers).
    ///
    /// # Errors
    /// [`AttachError::Busy`], [`AttachError::Full`], [`AttachError::Join`] (region peer
    /// table full, or opened read-only), [`AttachError::Corrupted`],
    /// [`AttachError::Truncated`], [`AttachError::PageUnavailable`].
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::{AttachError, ChannelOptions, Kind};
    /// let chan = ChannelOptions::new(Kind::Mpsc).max_producers(2).anonymous()?;
    /// let a = chan.sender()?;
    /// let _b = chan.sender()?;
    /// assert!(matches!(chan.sender(), Err(AttachError::Full { max: 2, .. })));
    /// drop(a); // frees its slot
    /// chan.sender()?.send(b"third producer")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sender(&self) -> Result<Sender, AttachError> {
        Sender::attach(self.shared.clone())
    }

    /// Attaches the consumer end (SPSC, MPSC), continuing from the last consumed position;
    /// fails with [`AttachError::Busy`] while another live process is the consumer. For a
    /// broadcast channel, subscribes at the oldest retained message (see
    /// [`subscribe`](Self::subscribe)).
    ///
    /// # Errors
    /// As [`sender`](Self::sender).
    ///
    /// # Example
    /// ```
    /// let chan = mapipc::channel::Channel::anonymous(4096)?;
    /// let mut tx = chan.sender()?;
    /// tx.send(b"one")?;
    /// tx.send(b"two")?;
    /// let mut rx = chan.receiver()?;
    /// assert_eq!(rx.recv()?, b"one");
    /// drop(rx);
    /// // A new consumer continues where the last one stopped.
    /// let mut rx = chan.receiver()?;
    /// assert_eq!(rx.recv()?, b"two");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn receiver(&self) -> Result<Receiver, AttachError> {
        Receiver::attach(self.shared.clone(), StartAt::Oldest)
    }

    /// Subscribes to a broadcast channel, starting at the oldest retained message or after
    /// the newest one. For SPSC and MPSC channels this is [`receiver`](Self::receiver)
    /// (`start` is ignored: the consumer continues from the last consumed position).
    ///
    /// # Errors
    /// As [`sender`](Self::sender); [`AttachError::Full`] when `max_subscribers` live
    /// subscribers are attached.
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::{ChannelOptions, Kind, StartAt};
    /// let chan = ChannelOptions::new(Kind::Broadcast).anonymous()?;
    /// let mut tx = chan.sender()?;
    /// tx.send(b"before")?;
    /// let mut all = chan.subscribe(StartAt::Oldest)?;
    /// let mut new = chan.subscribe(StartAt::Newest)?;
    /// tx.send(b"after")?;
    /// assert_eq!(all.recv()?, b"before");
    /// assert_eq!(all.recv()?, b"after");
    /// assert_eq!(new.recv()?, b"after");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, start: StartAt) -> Result<Receiver, AttachError> {
        Receiver::attach(self.shared.clone(), start)
    }

    /// Ring capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.shared.geo.capacity() as usize
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.shared.max_payload as usize
    }

    /// The channel kind.
    pub fn kind(&self) -> Kind {
        self.shared.kind
    }

    /// The broadcast policy (`Lossless` for the other kinds).
    pub fn policy(&self) -> Policy {
        self.shared.policy
    }

    /// The region holding the channel (for [`Region::send_to`] and the like).
    pub fn region(&self) -> &Region {
        &self.shared.region
    }

    /// A snapshot of the channel's counters and ends.
    ///
    /// # Example
    /// See [`Stat`].
    pub fn stat(&self) -> Stat {
        self.shared.stat()
    }
}

impl Shared {
    /// Damage the checks at open or attach found, for [`AttachError`] or
    /// [`ChannelOpenError`].
    fn corrupted(&self, e: RingError) -> Damage {
        self.damage(self.fault(e))
    }

    /// After an end attached: the walks of its attach (over the records past a position, to
    /// find the producer's or repair a count) read ring pages that no other check reads,
    /// and one the kernel could not supply (or a cut one) poisons the mapping without an
    /// error. Reported now, before the end hands out a message read from a poisoned mapping
    /// or commits one written to it: a receiver would otherwise consume intact messages as
    /// damaged (`RecvRef::is_intact` says false for each).
    fn check_attached(&self) -> Result<(), Damage> {
        self.check_truncated().map_err(|f| self.damage(f))
    }

    /// `f` as damage found at open or attach.
    fn damage(&self, f: Fault) -> Damage {
        match f {
            Fault::Corrupted { file, offset, what } => Damage::Corrupted { file, offset, what },
            // `fault` reports damage found in a file that shrank as what it is.
            Fault::Truncated { file } => Damage::Truncated { file },
            Fault::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            } => Damage::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            },
            // `fault` and `file_fault` make no futex call: not reached.
            Fault::Io { file, .. } => Damage::Corrupted {
                file,
                offset: self.header_file_off,
                what: "unusable",
            },
        }
    }
}

/// Creates an SPSC channel in anonymous shared memory and attaches both ends in this
/// process (for threads, or as a quick start).
///
/// # Errors
/// [`PairError::Create`]: as [`Channel::anonymous`]; [`PairError::Attach`]: joining the
/// channel's region failed (an OS error).
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
pub fn pair(capacity: usize) -> Result<(Sender, Receiver), PairError> {
    let chan = Channel::anonymous(capacity)?;
    Ok((chan.sender()?, chan.receiver()?))
}

/// State of one end in a [`Stat`].
///
/// # Example
/// ```
/// let chan = mapipc::channel::Channel::anonymous(4096)?;
/// assert!(!chan.stat().producer.attached);
/// let tx = chan.sender()?;
/// let end = chan.stat().producer;
/// assert!(end.attached && end.alive);
/// assert_eq!(end.pid, std::process::id());
/// assert_eq!(end.attaches, 1);
/// drop(tx);
/// assert!(!chan.stat().producer.attached);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// How many times such an end attached over the channel's life.
    pub attaches: u32,
    /// It is alive and parked on the futex, waiting (an end killed while parked is not).
    pub parked: bool,
}

/// A broadcast subscriber in a [`Stat`].
///
/// # Example
/// ```
/// use mapipc::channel::{ChannelOptions, Kind, StartAt};
/// let chan = ChannelOptions::new(Kind::Broadcast).anonymous()?;
/// let mut tx = chan.sender()?;
/// let mut sub = chan.subscribe(StartAt::Oldest)?;
/// tx.send(b"12345678")?;
/// let before = chan.stat().subscribers[0];
/// assert!(before.end.alive);
/// assert!(before.behind > 0);
/// sub.recv()?;
/// let after = chan.stat().subscribers[0];
/// assert_eq!(after.behind, 0);
/// assert_eq!(after.position, before.position + before.behind);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriberStat {
    /// Its registration.
    pub end: EndStat,
    /// Its slot in the subscriber table.
    pub slot: u32,
    /// Its position (bytes published before the next message it reads).
    pub position: u64,
    /// Bytes published that it has not read yet.
    pub behind: u64,
}

/// A snapshot of a channel, from [`Channel::stat`].
///
/// # Example
/// ```
/// use mapipc::channel::{Channel, Kind};
/// let chan = Channel::anonymous(4096)?;
/// let mut tx = chan.sender()?;
/// let mut rx = chan.receiver()?;
/// tx.send(b"a")?;
/// tx.send(b"b")?;
/// rx.recv()?;
/// let st = chan.stat();
/// assert_eq!((st.kind, st.policy), (Kind::Spsc, None));
/// assert_eq!((st.capacity, st.max_message), (4096, 2040));
/// assert_eq!((st.sent, st.received), (2, 1));
/// assert!(st.bytes_used > 0); // "b" is still in the ring
/// assert!(st.producer.alive && st.consumer.alive);
/// assert!(st.positions_valid);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Channel kind.
    pub kind: Kind,
    /// Broadcast policy (`None` for the other kinds).
    pub policy: Option<Policy>,
    /// Ring bytes.
    pub capacity: u64,
    /// Largest message.
    pub max_message: u64,
    /// Bytes of the ring in use (SPSC/MPSC: not yet consumed; broadcast: retained).
    pub bytes_used: u64,
    /// Messages published over the channel's life. SPSC: an end killed right after
    /// publishing may leave this and `received` short by what it published last, until a
    /// new end of its kind attaches and repairs them from the positions. MPSC: at least
    /// `received` (a producer killed between a commit and its publication leaves its last
    /// messages uncounted until they are received).
    pub sent: u64,
    /// Messages consumed over the channel's life (SPSC, MPSC). MPSC: a consumer killed while
    /// taking messages may leave it short by those it took since it last published, until
    /// the next consumer attaches and repairs it from the producers' counts and what the
    /// ring still holds (short still by messages whose producer had not counted them yet:
    /// killed between a commit and its publication, say).
    pub received: u64,
    /// MPSC: records skipped because their producer died (or gave them up) before
    /// committing, or held their claim past the consumer's abort timeout (counted when
    /// the consumer gives up on them, once, also if it is killed meanwhile: the next
    /// consumer completes the count at attach; their space stays in `bytes_used` until the
    /// producer lets go of it, see [`Receiver::set_abort_timeout`]).
    pub aborted: u64,
    /// The producer end (SPSC, broadcast; MPSC: the first live producer).
    pub producer: EndStat,
    /// The consumer end (SPSC, MPSC).
    pub consumer: EndStat,
    /// MPSC: every attached producer.
    pub producers: Vec<EndStat>,
    /// Broadcast: every attached subscriber.
    pub subscribers: Vec<SubscriberStat>,
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
            // The clock is first read after 1024 polls (64 with a deadline, which is then
            // missed by a microsecond or two, not tens), not before the first one: most waits
            // end sooner, and a clock read at the start of every wait would delay the
            // reaction to a message arriving meanwhile. The liveness interval then starts
            // those polls (microseconds) late, which is harmless.
            let clock_every: u32 = if self.deadline.is_some() { 64 } else { 1024 };
            let mut last_check: Option<Instant> = None;
            let mut n: u32 = 0;
            loop {
                if ready() {
                    return Ok(WaitOutcome::Ready);
                }
                std::hint::spin_loop();
                n = n.wrapping_add(1);
                if n % clock_every == 0 {
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
        let mut opts = WaitOptions::new();
        opts.spin(strategy.spins())
            .check_interval(check_interval)
            .alive(alive);
        if let Some(d) = self.deadline {
            opts.deadline(d);
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

/// Blocking behaviour of an operation.
#[derive(Clone, Copy)]
enum Blocking {
    No,
    Until(Option<Instant>),
}
