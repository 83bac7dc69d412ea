//! The producer end of every channel kind.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bcast::{self, BcastProducer, Blocked};
use super::error::{Fault, SendError, SendTimeoutError, TrySendError};
use super::layout::{off, Kind, Policy};
use super::mpsc::{self, MpscProducer};
use super::ring::{self, Producer, RingError, RingMem};
use super::slots::BytesMut;
use super::words::Words;
use super::{
    AttachError, Blocking, Channel, OpenAttachError, Shared, WaitOutcome, WaitStrategy, Waiter,
    DEFAULT_CHECK_INTERVAL, LOCK_QUERY_INTERVAL_NS,
};
use crate::os;
use crate::region::{IntoLocation, Peer};

/// Per-kind producer state.
enum TxCore {
    Spsc(Producer),
    Mpsc { p: MpscProducer, slot: u32 },
    Bcast(BcastProducer),
}

/// Space reserved for one message, per kind.
#[derive(Clone, Copy, Debug)]
enum Res {
    Spsc(ring::Reservation),
    Mpsc(mpsc::Claim),
    Bcast(bcast::Reservation),
}

impl Res {
    #[inline]
    fn data(&self) -> u64 {
        match self {
            Res::Spsc(r) => r.data,
            Res::Mpsc(c) => c.data,
            Res::Bcast(r) => r.data,
        }
    }

    #[inline]
    fn raw(self) -> RawRes {
        match self {
            Res::Spsc(r) => RawRes {
                start: r.start,
                data: r.data,
                len: r.len,
                extra: r.pad,
            },
            Res::Mpsc(c) => RawRes {
                start: c.pos,
                data: c.data,
                len: c.len,
                extra: c.word(),
            },
            Res::Bcast(r) => RawRes {
                start: r.start,
                data: r.data,
                len: r.len,
                extra: 0,
            },
        }
    }
}

/// A [`Res`] as plain words, which kind it is being the sender's: what a [`Grant`] holds, so
/// that the compiler keeps it in registers (an enum there stayed in memory, and every store
/// on the producer's path waits behind the ring's stores: BENCHMARKS.md, "Channel").
/// `start` is the record's position, `extra` the SPSC padding or the MPSC claim word.
#[derive(Clone, Copy, Debug)]
struct RawRes {
    start: u64,
    data: u64,
    len: u64,
    extra: u64,
}

impl RawRes {
    /// The SPSC reservation these words carry.
    #[inline]
    fn spsc(self) -> ring::Reservation {
        ring::Reservation {
            start: self.start,
            data: self.data,
            len: self.len,
            pad: self.extra,
        }
    }

    /// The reservation these words carry, for `core`'s kind.
    #[inline]
    fn res(self, core: &TxCore) -> Res {
        match core {
            TxCore::Spsc(_) => Res::Spsc(self.spsc()),
            TxCore::Mpsc { .. } => Res::Mpsc(mpsc::Claim::from_parts(
                self.start, self.data, self.len, self.extra,
            )),
            TxCore::Bcast(_) => Res::Bcast(bcast::Reservation {
                start: self.start,
                data: self.data,
                len: self.len,
            }),
        }
    }
}

enum SendFail {
    Full,
    Timeout,
    BadLength(usize),
    Disconnected,
    Aborted,
    Fault(Fault),
}

/// The producer end. Not `Clone`: each producer attaches on its own (one per SPSC or
/// broadcast channel; up to `max_producers` on an MPSC channel).
///
/// # Example
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// tx.send(b"hello")?;
/// assert_eq!(rx.recv()?, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sender {
    shared: Arc<Shared>,
    me: u32,
    pid: u32,
    _peer: Peer,
    core: TxCore,
    /// Messages sent, continued from the shared counter (which a peer can write: it wraps
    /// rather than overflow).
    sent: u64,
    /// SPSC and MPSC: committed messages whose wake-up was deferred (batched).
    wake_pending: bool,
    wait: WaitStrategy,
    check_interval: Duration,
    /// The coarse monotonic time before which a non-blocking send on a full ring does not
    /// query the consumer's liveness again; 0 before the first query.
    next_lock_query: u64,
    /// The consumer's epoch when a liveness query last found it gone: until a consumer
    /// attaches (which bumps the epoch) it stays gone, without asking again.
    gone_at_epoch: Option<u32>,
    /// Where [`reserve_slow_raw`](Self::reserve_slow_raw) leaves its reservation, so that the
    /// fast and slow paths of [`reserve`](Self::reserve) meet on plain words.
    slow_res: RawRes,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("file", &self.shared.file())
            .field("kind", &self.shared.kind)
            .field("peer", &self.me)
            .field("sent", &self.sent)
            .finish()
    }
}

impl Sender {
    pub(super) fn attach(shared: Arc<Shared>) -> Result<Sender, AttachError> {
        let s = &*shared;
        let (peer, core, sent) = match s.kind {
            Kind::Spsc | Kind::Broadcast => {
                let peer = s.attach_end(
                    off::PRODUCER,
                    off::PRODUCER_EPOCH,
                    off::DATA_WORD,
                    "producer",
                )?;
                // Read before the positions (see `Shared::repaired_sent`).
                let received = s.ring.ctl_load(off::RECEIVED, Ordering::Acquire);
                let core = if s.kind == Kind::Spsc {
                    TxCore::Spsc(Producer::attach(s.geo, &s.ring).map_err(|e| s.corrupted(e))?)
                } else {
                    TxCore::Bcast(
                        BcastProducer::attach(
                            s.geo,
                            &s.ring,
                            s.policy == Policy::Lossless,
                            s.max_endpoints,
                        )
                        .map_err(|e| s.corrupted(e))?,
                    )
                };
                let sent_field = if s.kind == Kind::Spsc {
                    off::SENT
                } else {
                    off::NEXT_SEQ
                };
                let sent = s.ring.ctl_load(sent_field, Ordering::Relaxed);
                let sent = match &core {
                    // A predecessor killed right after publishing left the count short.
                    TxCore::Spsc(p) => s.repaired_sent(sent, received, p.tail()),
                    _ => sent,
                };
                (peer, core, sent)
            }
            Kind::Mpsc => {
                let peer = s.region.join()?;
                let (slot, _, sent) = s.attach_entry(peer.id(), "producer")?;
                fence_dead_claims(s, slot, peer.id());
                s.word(off::PRODUCER_EPOCH).fetch_add(1, Ordering::AcqRel);
                s.wake_all(off::DATA_WORD);
                (
                    peer,
                    TxCore::Mpsc {
                        p: MpscProducer::new(s.geo, slot),
                        slot,
                    },
                    sent,
                )
            }
        };
        s.advertise_strategy(off::PRODUCER_NEVER_PARKS, WaitStrategy::default());
        let tx = Sender {
            me: peer.id(),
            pid: os::process::pid(),
            _peer: peer,
            core,
            sent,
            wake_pending: false,
            wait: WaitStrategy::default(),
            check_interval: DEFAULT_CHECK_INTERVAL,
            next_lock_query: 0,
            gone_at_epoch: None,
            slow_res: RawRes {
                start: 0,
                data: 0,
                len: 0,
                extra: 0,
            },
            shared,
        };
        // A page of the ring the walks above met lost: reported now, and the end detached
        // again (by its drop).
        let attached = tx.shared.check_attached();
        attached.map(|()| tx).map_err(AttachError::from)
    }

    /// Opens a channel file and attaches a producer end.
    ///
    /// # Errors
    /// [`OpenAttachError::Open`]: as [`Channel::open`]; [`OpenAttachError::Attach`]: as
    /// [`Channel::sender`].
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
    pub fn open(location: impl IntoLocation) -> Result<Sender, OpenAttachError> {
        Ok(Channel::open(location)?.sender()?)
    }

    /// Sets how a send waits for room (default: spin a little, then park).
    ///
    /// With [`WaitStrategy::BusyPoll`] on an SPSC channel the sender tells the receiver it
    /// never parks, so the receiver's releases skip the wake-up barrier: the fastest mode
    /// when both ends have a CPU to burn.
    ///
    /// # Example
    /// Both ends busy-poll (each skips the other's wake-up), and every message still
    /// arrives, in order, through a ring far smaller than what is sent:
    /// ```
    /// use mapipc::channel::WaitStrategy;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.set_wait_strategy(WaitStrategy::BusyPoll);
    /// rx.set_wait_strategy(WaitStrategy::BusyPoll);
    /// let t = std::thread::spawn(move || {
    ///     for i in 0..10_000u32 {
    ///         tx.send_pod(&i).unwrap();
    ///     }
    /// });
    /// for i in 0..10_000u32 {
    ///     assert_eq!(rx.recv_pod::<u32>()?, i);
    /// }
    /// t.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
        if self.shared.kind == Kind::Spsc {
            self.shared
                .advertise_strategy(off::PRODUCER_NEVER_PARKS, wait);
        }
    }

    /// Sets how often a blocked send checks that the receiver is alive (default 50 ms), and
    /// that the channel's file was not truncated. Values under 1 ms count as 1 ms.
    ///
    /// # Example
    /// A send blocked on a full ring, with a live receiver that never receives: only the
    /// periodic check can end it, when the file is cut.
    /// ```
    /// use std::time::Duration;
    /// use mapipc::channel::{Channel, SendError};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c");
    /// let chan = Channel::create(&path, 4096)?;
    /// let _rx = chan.receiver()?;
    /// let mut tx = chan.sender()?;
    /// tx.set_check_interval(Duration::from_millis(5));
    /// while tx.try_send(&[0; 500]).is_ok() {} // fill the ring
    /// let cut = path.clone();
    /// let vandal = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(20));
    ///     std::fs::OpenOptions::new().write(true).open(cut)?.set_len(0)
    /// });
    /// match tx.send(&[0; 500]) {
    ///     Err(SendError::Truncated { file }) => assert!(file.ends_with("c")),
    ///     other => panic!("expected Truncated, got {other:?}"),
    /// }
    /// vandal.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_check_interval(&mut self, interval: Duration) {
        self.check_interval = interval.max(Duration::from_millis(1));
    }

    /// The channel this end belongs to: its [`stat`](Channel::stat), or another end.
    ///
    /// # Example
    /// ```
    /// let (mut tx, _rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"counted")?;
    /// let chan = tx.channel();
    /// assert_eq!(chan.stat().sent, 1);
    /// assert_eq!(chan.stat().producer.pid, std::process::id());
    /// assert!(chan.sender().is_err()); // SPSC: `tx` is its live producer
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn channel(&self) -> Channel {
        Channel {
            shared: self.shared.clone(),
        }
    }

    /// Largest message in bytes (as [`Channel::max_message`]).
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::SendError;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// let max = tx.max_message();
    /// assert_eq!(max, 2040); // SPSC: half the ring less 8 bytes
    /// tx.send(&vec![1; max])?;
    /// match tx.send(&vec![1; max + 1]) {
    ///     Err(SendError::BadLength { len, max: m }) => assert_eq!((len, m), (max + 1, max)),
    ///     other => panic!("expected BadLength, got {other:?}"),
    /// }
    /// assert_eq!(rx.recv()?.len(), max);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.shared.max_payload as usize
    }

    fn consumer_gone(&self) -> bool {
        let s = &self.shared;
        s.kind != Kind::Broadcast
            && (self.consumer_is_me()
                || s.end_ever_attached(off::CONSUMER_EPOCH) && !s.end_alive(off::CONSUMER))
    }

    /// Whether the consumer registration (SPSC, MPSC) holds our own peer id. Each end joins
    /// the region on its own, so that is never the consumer's: garbage, which would pass for
    /// a live consumer for as long as we live, and keep a real one from attaching.
    fn consumer_is_me(&self) -> bool {
        self.shared.kind != Kind::Broadcast
            && self.shared.word(off::CONSUMER).load(Ordering::Acquire) == self.me
    }

    /// [`consumer_gone`](Self::consumer_gone) for a non-blocking send on a full ring: a
    /// clean detach is seen at once (no syscall); a killed consumer by a lock query at most
    /// every [`LOCK_QUERY_INTERVAL_NS`] of the coarse clock (a `try_send` loop on a full
    /// ring made one per call, ~0.5 µs each), and then for good until a consumer attaches
    /// (a dead process stays dead; an attach bumps the epoch).
    fn consumer_gone_polling(&mut self) -> bool {
        if self.consumer_is_me() {
            return true;
        }
        let s = &self.shared;
        let epoch = s.word(off::CONSUMER_EPOCH).load(Ordering::Acquire);
        if s.kind == Kind::Broadcast || epoch == 0 {
            return false;
        }
        if s.word(off::CONSUMER).load(Ordering::Acquire) == 0 || self.gone_at_epoch == Some(epoch) {
            return true;
        }
        let now = os::process::monotonic_coarse_ns();
        if now < self.next_lock_query {
            return false;
        }
        self.next_lock_query = now.saturating_add(LOCK_QUERY_INTERVAL_NS);
        let gone = !s.end_alive(off::CONSUMER);
        self.gone_at_epoch = gone.then_some(epoch);
        gone
    }

    /// The consumer is gone: `Disconnected`, unless the file was truncated (`Truncated`: no
    /// consumer can come back; or `PageUnavailable`) or its registration is garbage, which
    /// is corruption.
    #[cold]
    fn disconnected(&self) -> SendFail {
        if let Err(f) = self.shared.check_truncated_now() {
            return SendFail::Fault(f);
        }
        if self.consumer_is_me() {
            return SendFail::Fault(Fault::Corrupted {
                file: self.shared.file(),
                offset: self.shared.header_file_off + off::CONSUMER,
                what: "consumer registration names the producer",
            });
        }
        match self
            .shared
            .check_registration(off::CONSUMER, "consumer registration")
        {
            Ok(()) => SendFail::Disconnected,
            Err(f) => SendFail::Fault(f),
        }
    }

    /// One reservation attempt, without waiting.
    #[inline]
    fn try_reserve_once(&mut self, len: u64) -> Result<Res, RingError> {
        let ring = &self.shared.ring;
        match &mut self.core {
            TxCore::Spsc(p) => p.try_reserve(ring, len).map(Res::Spsc),
            TxCore::Mpsc { p, .. } => p.try_claim(ring, len).map(Res::Mpsc),
            TxCore::Bcast(p) => match p.try_reserve(ring, len)? {
                Ok(r) => Ok(Res::Bcast(r)),
                Err(Blocked::By(_)) => Err(RingError::Full),
            },
        }
    }

    /// Reserves room for `len` bytes, waiting as asked. The fast path is inline; waiting
    /// lives in [`reserve_slow`](Self::reserve_slow).
    #[inline]
    fn reserve_inner(&mut self, len: usize, block: Blocking) -> Result<Res, SendFail> {
        // The SPSC fast path, small enough to be inlined into the caller even across crates:
        // a reservation returned through memory costs a store-forwarding stall that waits for
        // every earlier ring store to reach the cache (BENCHMARKS.md, "Channel").
        if let TxCore::Spsc(p) = &mut self.core {
            if let Ok(r) = p.try_reserve(&self.shared.ring, len as u64) {
                return Ok(Res::Spsc(r));
            }
        }
        self.reserve_inner_slow(len, block)
    }

    /// [`reserve_inner`](Self::reserve_inner) past the SPSC fast path.
    #[inline(never)]
    fn reserve_inner_slow(&mut self, len: usize, block: Blocking) -> Result<Res, SendFail> {
        match self.try_reserve_once(len as u64) {
            Ok(r) => Ok(r),
            Err(RingError::Full) => self.reserve_slow(len, block),
            Err(RingError::BadLength { .. }) => Err(SendFail::BadLength(len)),
            Err(e) => Err(SendFail::Fault(self.shared.fault(e))),
        }
    }

    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self, len: usize, block: Blocking) -> Result<Res, SendFail> {
        // Full. Publish anything batched first, so the other side can make room.
        self.publish();
        let deadline = match block {
            Blocking::No => {
                return Err(if self.consumer_gone_polling() {
                    self.disconnected()
                } else {
                    SendFail::Full
                })
            }
            Blocking::Until(d) => d,
        };
        let truncated = std::cell::Cell::new(false);
        let me = self.me;
        loop {
            // Snapshot what a change would be measured against *before* looking: a change
            // between the look and the snapshot would otherwise be missed, and we would
            // sleep with room available.
            let s = &*self.shared;
            let head_seen = s.ring.ctl_load(off::HEAD, Ordering::Acquire);
            let blocker = match &self.core {
                TxCore::Bcast(_) => Some(slowest_subscriber(s)),
                _ => None,
            };
            // Broadcast: every subscriber entry and the join counter. The reservation may be
            // refused because of a subscriber other than `blocker` (one joining after the
            // snapshot, below the `oldest` just published): it moving up, or anyone joining
            // or leaving, must end the wait too, or we sleep while every subscriber waits for
            // our next message.
            let table = blocker.map(|_| subscriber_table(s));
            match self.try_reserve_once(len as u64) {
                Ok(r) => return Ok(r),
                // A reservation may have published a batch before finding no room: wake
                // the subscribers for it before we sleep.
                Err(RingError::Full) => self.publish(),
                Err(RingError::BadLength { .. }) => return Err(SendFail::BadLength(len)),
                Err(e) => return Err(SendFail::Fault(self.shared.fault(e))),
            }
            let s = &*self.shared;
            let outcome = {
                let mut ready = || match blocker {
                    // Broadcast: a subscriber moved, joined or left.
                    Some(_) => table.as_ref() != Some(&subscriber_table(s)),
                    // SPSC / MPSC: the consumer freed space (or left).
                    None => {
                        s.ring.ctl_load(off::HEAD, Ordering::Acquire) != head_seen
                            || s.word(off::CONSUMER).load(Ordering::Acquire) == 0
                                && s.end_ever_attached(off::CONSUMER_EPOCH)
                    }
                };
                let alive = || {
                    // A truncated file ends the wait: no consumer can attach to it any more.
                    if s.truncated_now() {
                        truncated.set(true);
                        return false;
                    }
                    match blocker {
                        Some((slot, _)) => {
                            let id = s.entry_peer(slot);
                            id == 0 || s.region.is_alive(id)
                        }
                        // Our own id as the consumer's is garbage (see `consumer_is_me`).
                        None => {
                            s.word(off::CONSUMER).load(Ordering::Acquire) != me
                                && (!s.end_ever_attached(off::CONSUMER_EPOCH)
                                    || s.end_alive(off::CONSUMER))
                        }
                    }
                };
                Waiter { deadline }
                    .wait(
                        s,
                        off::SPACE_WORD,
                        self.wait,
                        self.check_interval,
                        &mut ready,
                        &alive,
                    )
                    .map_err(SendFail::Fault)?
            };
            match outcome {
                WaitOutcome::Ready => {
                    // Woken because the receiver left: nobody will make room.
                    if blocker.is_none() && self.consumer_gone() {
                        return match self.try_reserve_once(len as u64) {
                            Ok(r) => Ok(r),
                            Err(RingError::Full) => Err(self.disconnected()),
                            Err(RingError::BadLength { .. }) => Err(SendFail::BadLength(len)),
                            Err(e) => Err(SendFail::Fault(self.shared.fault(e))),
                        };
                    }
                    // A predicate that keeps firing (garbage in shared memory) must not
                    // outlive the deadline.
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(SendFail::Timeout);
                    }
                }
                WaitOutcome::TimedOut => {
                    // One last try: room may have come at the deadline.
                    return match self.try_reserve_once(len as u64) {
                        Ok(r) => Ok(r),
                        Err(RingError::Full) => Err(SendFail::Timeout),
                        Err(RingError::BadLength { .. }) => Err(SendFail::BadLength(len)),
                        Err(e) => Err(SendFail::Fault(self.shared.fault(e))),
                    };
                }
                WaitOutcome::PeerGone if truncated.get() => {
                    return Err(SendFail::Fault(self.shared.file_fault()));
                }
                WaitOutcome::PeerGone => match (blocker, &mut self.core) {
                    (Some((slot, _)), TxCore::Bcast(p)) => {
                        // A dead subscriber never stalls a lossless producer: drop it.
                        let s = &*self.shared;
                        let id = s.entry_peer(slot);
                        if id != 0 && !s.region.is_alive(id) {
                            s.detach_entry(slot, id);
                        }
                        p.invalidate_min();
                    }
                    _ => return Err(self.disconnected()),
                },
            }
        }
    }

    /// Publishes committed messages and wakes the other side.
    #[inline]
    fn publish(&mut self) {
        let s = &*self.shared;
        match &mut self.core {
            TxCore::Spsc(p) => {
                // Plain commits are visible already (each stores its header); batched ones
                // are revealed here. Then the counter, and waking a parked consumer.
                p.flush(&s.ring);
                if self.wake_pending {
                    self.wake_pending = false;
                    // Release: a consumer attaching later reads it first, then counts the
                    // records it sees (`Shared::repaired_received`): these must be visible.
                    s.ring.ctl_store(off::SENT, self.sent, Ordering::Release);
                    s.wake_if_parked(off::DATA_WORD, off::CONSUMER_NEVER_PARKS);
                }
            }
            TxCore::Mpsc { slot, .. } => {
                if self.wake_pending {
                    self.wake_pending = false;
                    // Release (pair **N**, with the Acquire load of a consumer attaching, in
                    // `Shared::producer_counts`): the commits counted are visible to it, as it
                    // counts what is left in the ring (`Shared::repaired_received_mpsc`). A
                    // plain store on x86.
                    s.ring
                        .ctl_store(off::producer(*slot) + 8, self.sent, Ordering::Release);
                    s.wake_if_parked(off::DATA_WORD, off::CONSUMER_NEVER_PARKS);
                }
            }
            TxCore::Bcast(p) => {
                if p.take_unpublished() {
                    p.publish(&s.ring);
                    s.wake_all(off::DATA_WORD);
                }
            }
        }
    }

    /// Commits a reservation whose payload was written; publishes unless `batch`.
    #[inline]
    fn commit_res(&mut self, r: &Res, batch: bool) -> Result<(), SendFail> {
        let ring = &self.shared.ring;
        match (&mut self.core, r) {
            (TxCore::Spsc(p), Res::Spsc(r)) => {
                p.commit(ring, r, batch);
                self.wake_pending = true;
            }
            (TxCore::Mpsc { p, .. }, Res::Mpsc(c)) => {
                if !p.commit(ring, c) {
                    // A consumer holding the record's blocks for us may wait for them.
                    self.shared
                        .wake_if_parked(off::DATA_WORD, off::CONSUMER_NEVER_PARKS);
                    return Err(SendFail::Aborted);
                }
                self.wake_pending = true;
            }
            (TxCore::Bcast(p), Res::Bcast(r)) => p.commit(ring, r),
            _ => unreachable!("a reservation always comes from this end's own core"),
        }
        self.sent = self.sent.wrapping_add(1);
        if !batch {
            self.publish();
        }
        Ok(())
    }

    /// The error of a send that found the mapping poisoned (as `Shared::check_truncated`).
    #[cold]
    #[inline(never)]
    fn poisoned_send_error(&self) -> SendError {
        SendError::from(self.shared.file_fault())
    }

    /// [`Grant::finish`] past its SPSC fast path.
    #[inline(never)]
    fn finish_slow(&mut self, r: Res, batch: bool) -> Result<(), SendError> {
        match self.commit_res(&r, batch) {
            Ok(()) => self.shared.check_truncated().map_err(SendError::from),
            Err(e) => Err(self.send_error(e)),
        }
    }

    /// Gives up a reservation (a grant dropped without commit).
    fn abandon(&mut self, r: &Res) {
        if let (TxCore::Mpsc { p, .. }, Res::Mpsc(c)) = (&self.core, r) {
            // MPSC claims are visible at once: mark it aborted so the consumer skips it.
            p.abandon(&self.shared.ring, c);
            self.shared
                .wake_if_parked(off::DATA_WORD, off::CONSUMER_NEVER_PARKS);
        }
        // SPSC and broadcast reservations were never published: the space is reused.
    }

    #[inline]
    fn send_inner(&mut self, data: &[u8], block: Blocking) -> Result<(), SendFail> {
        let r = self.reserve_inner(data.len(), block)?;
        RingMem::write_bytes(&self.shared.ring, r.data(), data);
        self.commit_res(&r, false)?;
        self.shared.check_truncated().map_err(SendFail::Fault)
    }

    fn bad_length(&self, len: usize) -> (usize, usize) {
        (len, self.max_message())
    }

    /// Sends one message (copied once into the ring), waiting while the ring is full.
    ///
    /// # Errors
    /// [`SendError::BadLength`] for an empty or too long message, [`SendError::Disconnected`]
    /// when the ring is full and the receiver is gone, [`SendError::Aborted`] (MPSC: the
    /// consumer gave up on it), [`SendError::Corrupted`], [`SendError::Truncated`],
    /// [`SendError::PageUnavailable`] (a page of the channel file the kernel could not
    /// supply).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"hi")?;
    /// assert!(tx.send(b"").is_err());
    /// assert_eq!(rx.recv()?, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn send(&mut self, data: &[u8]) -> Result<(), SendError> {
        // The SPSC fast path, every step inlined so that nothing goes through memory on the
        // way (see `Grant::finish`).
        if let TxCore::Spsc(p) = &mut self.core {
            let ring = &self.shared.ring;
            if let Ok(r) = p.try_reserve(ring, data.len() as u64) {
                RingMem::write_bytes(ring, r.data, data);
                p.commit(ring, &r, false);
                self.wake_pending = true;
                self.sent = self.sent.wrapping_add(1);
                self.publish();
                if self.shared.is_poisoned() {
                    return Err(self.poisoned_send_error());
                }
                return Ok(());
            }
        }
        self.send_slow(data)
    }

    /// Sends one message as part of a batch: as [`Grant::commit_batched`] after a copy, so
    /// receivers see it at the next [`flush`](Self::flush) (or plain send).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send_batched(b"one")?;
    /// tx.send_batched(b"two")?;
    /// assert!(rx.try_recv().is_err());
    /// tx.flush();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [&b"one"[..], b"two"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn send_batched(&mut self, data: &[u8]) -> Result<(), SendError> {
        if let TxCore::Spsc(p) = &mut self.core {
            let ring = &self.shared.ring;
            if let Ok(r) = p.try_reserve(ring, data.len() as u64) {
                if !p.write_in_batch(ring, &r, data) {
                    RingMem::write_bytes(ring, r.data, data);
                    p.commit(ring, &r, true);
                }
                return self.spsc_committed(true);
            }
        }
        self.send_batched_slow(data)
    }

    /// What follows an SPSC commit (by [`Grant`] or [`send_batched`](Self::send_batched)):
    /// count it, publish it unless it joins a batch, and report a mapping poisoned meanwhile.
    #[inline(always)]
    fn spsc_committed(&mut self, batch: bool) -> Result<(), SendError> {
        // Set already inside a batch: no store then (each store on this path waits behind
        // the ring's in the store buffer).
        if !self.wake_pending {
            self.wake_pending = true;
        }
        self.sent = self.sent.wrapping_add(1);
        if !batch {
            self.publish();
        }
        if self.shared.is_poisoned() {
            return Err(self.poisoned_send_error());
        }
        Ok(())
    }

    #[inline(never)]
    fn send_batched_slow(&mut self, data: &[u8]) -> Result<(), SendError> {
        let mut g = self.reserve(data.len())?;
        g.bytes().copy_from_slice(data);
        g.commit_batched()
    }

    /// [`send`](Self::send) past its SPSC fast path.
    #[inline(never)]
    fn send_slow(&mut self, data: &[u8]) -> Result<(), SendError> {
        match self.send_inner(data, Blocking::Until(None)) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.send_error(e)),
        }
    }

    fn send_error(&self, e: SendFail) -> SendError {
        match e {
            SendFail::BadLength(len) => {
                let (len, max) = self.bad_length(len);
                SendError::BadLength { len, max }
            }
            SendFail::Disconnected => SendError::Disconnected,
            SendFail::Aborted => SendError::Aborted,
            SendFail::Fault(f) => f.into(),
            SendFail::Full | SendFail::Timeout => unreachable!("blocking send never times out"),
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
            Err(e) => Err(self.try_send_error(e)),
        }
    }

    fn try_send_error(&self, e: SendFail) -> TrySendError {
        match e {
            SendFail::Full | SendFail::Timeout => TrySendError::Full,
            SendFail::BadLength(len) => {
                let (len, max) = self.bad_length(len);
                TrySendError::BadLength { len, max }
            }
            SendFail::Disconnected => TrySendError::Disconnected,
            SendFail::Aborted => TrySendError::Aborted,
            SendFail::Fault(f) => f.into(),
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
        // A timeout past what the clock can represent waits without a deadline.
        self.send_until(data, Instant::now().checked_add(timeout))
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
        self.send_until(data, Some(deadline))
    }

    fn send_until(
        &mut self,
        data: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError> {
        match self.send_inner(data, Blocking::Until(deadline)) {
            Ok(()) => Ok(()),
            Err(SendFail::Timeout | SendFail::Full) => Err(SendTimeoutError::Timeout),
            Err(SendFail::BadLength(len)) => {
                let (len, max) = self.bad_length(len);
                Err(SendTimeoutError::BadLength { len, max })
            }
            Err(SendFail::Disconnected) => Err(SendTimeoutError::Disconnected),
            Err(SendFail::Aborted) => Err(SendTimeoutError::Aborted),
            Err(SendFail::Fault(f)) => Err(f.into()),
        }
    }

    /// Sends a plain-old-data value as one message of `size_of::<T>()` bytes.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    ///
    /// # Example
    /// See [`pair`](super::pair).
    pub fn send_pod<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<(), SendError> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Sends every message of `msgs`, publishing them together (one release store and at
    /// most one wake-up per batch), waiting for room as needed. Returns how many were sent
    /// (all of them, unless an error is returned).
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
            let step = self
                .reserve_inner(m.len(), Blocking::Until(None))
                .and_then(|r| {
                    RingMem::write_bytes(&self.shared.ring, r.data(), m);
                    self.commit_res(&r, true)
                });
            if let Err(e) = step {
                self.publish();
                return Err(self.send_error(e));
            }
            n += 1;
        }
        self.publish();
        self.shared.check_truncated().map_err(SendError::from)?;
        Ok(n)
    }

    /// Reserves room for a message of `len` bytes to be written in place (zero-copy),
    /// waiting while the ring is full. [`Grant::commit`] publishes it; dropping the grant
    /// without committing abandons it (nothing is delivered).
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
    /// g.commit()?;
    /// let m = rx.recv_ref()?;
    /// assert_eq!(m.bytes().read_pod::<u64>(0), Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let fast = match &mut self.core {
            TxCore::Spsc(p) => p.try_reserve(&self.shared.ring, len as u64).ok(),
            _ => None,
        };
        let r = match fast {
            Some(r) => Res::Spsc(r).raw(),
            None => {
                self.reserve_slow_raw(len)?;
                self.slow_res
            }
        };
        Ok(Grant { sender: self, r })
    }

    /// [`reserve`](Self::reserve) past its SPSC fast path: the reservation goes to
    /// `slow_res`.
    #[inline(never)]
    fn reserve_slow_raw(&mut self, len: usize) -> Result<(), SendError> {
        match self.reserve_inner_slow(len, Blocking::Until(None)) {
            Ok(r) => {
                self.slow_res = r.raw();
                Ok(())
            }
            Err(e) => Err(self.send_error(e)),
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
                r: r.raw(),
            }),
            Err(e) => Err(self.try_send_error(e)),
        }
    }

    /// Publishes messages committed with [`Grant::commit_batched`].
    ///
    /// # Example
    /// See [`Grant::commit_batched`].
    #[inline]
    pub fn flush(&mut self) {
        self.publish();
    }

    /// Waits until a receiver is attached and alive, up to `deadline`. Returns whether one
    /// is, or whether the channel's file was truncated meanwhile (nobody can attach to it
    /// any more; the next send reports it). Useful after [`SendError::Disconnected`] when a
    /// new receiver may come.
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
        // A truncated file ends the wait too: the next send reports it.
        let alive = || !s.truncated_now();
        let _ = Waiter { deadline }.wait(
            s,
            off::SPACE_WORD,
            WaitStrategy::Park,
            self.check_interval,
            &mut ready,
            &alive,
        );
        s.end_alive(off::CONSUMER) || s.truncated_now()
    }
}

/// Broadcast: a fingerprint of the join counter and every subscriber entry (peer id,
/// position), which a blocked producer compares before and while it waits (no allocation:
/// the wait's spin phase calls it in a loop). Two states with the same fingerprint (a
/// chance of 2^-64 per change) would leave the producer waiting for the next change.
fn subscriber_table(s: &Shared) -> u64 {
    let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    let mut h = mix(0, s.ring.ctl_load(off::SUB_JOINS, Ordering::Acquire));
    for i in 0..s.max_endpoints {
        h = mix(h, u64::from(s.entry_peer(i)));
        h = mix(
            h,
            s.ring.ctl_load(off::subscriber(i) + 8, Ordering::Acquire),
        );
    }
    h
}

/// The subscriber slot holding the smallest position, and that position (broadcast), as
/// the producer's scan sees them (`bcast::entry_position`).
fn slowest_subscriber(s: &Shared) -> (u32, u64) {
    let tail = s.ring.ctl_load(off::TAIL, Ordering::Acquire);
    let floor = tail.saturating_sub(s.geo.capacity());
    let mut best = (0, tail);
    for i in 0..s.max_endpoints {
        let Some(pos) = bcast::entry_position(&s.ring, i, floor) else {
            continue;
        };
        if pos <= tail && tail - pos <= s.geo.capacity() && pos < best.1 {
            best = (i, pos);
        }
    }
    best
}

/// After taking over an MPSC producer slot from a dead process, aborts the claims that
/// process left in the ring, so the consumer does not attribute them to us (claim words
/// carry the slot, not the process), and releases the revoked ones the consumer holds for
/// it (it would wait for us to release them, as we hold the slot now). Those lie behind the
/// consumer's own position, but not behind the one it publishes (the oldest it holds).
fn fence_dead_claims(s: &Shared, slot: u32, _me: u32) {
    let cap = s.geo.capacity();
    let mut pos = s.ring.ctl_load(off::HEAD, Ordering::Acquire);
    // Garbage (the claims report it): the walk below must not overflow the position.
    if pos % mpsc::BLOCK != 0 || pos > ring::MAX_POSITION {
        return;
    }
    // Bounded: records are at least one block and at most one ring of them is in flight
    // (with the blocks a consumer handed back past the position it published: together one
    // ring); each record is looked at again at most twice after a failed CAS (a claim
    // changes state at most twice: revoked, then released).
    for _ in 0..=3 * (cap / mpsc::BLOCK) {
        let idx = pos & (cap - 1);
        let w = s.ring.word_load(idx, Ordering::Acquire);
        if w == mpsc::free_word(pos + cap) {
            // Consumed by a consumer killed before publishing its position: step over.
            pos += mpsc::BLOCK;
            continue;
        }
        let (st, owner, nb, t) = mpsc::unpack(w);
        if t != mpsc::tag(pos) || st == mpsc::FREE || nb == 0 || nb * mpsc::BLOCK > cap - idx {
            return; // the frontier, or something we do not understand: stop
        }
        if owner == slot as u64 && (st == mpsc::CLAIMED || st == mpsc::REVOKED) {
            let to = if st == mpsc::CLAIMED {
                mpsc::ABORTED
            } else {
                mpsc::RELEASED
            };
            if s.ring
                .word_cas(idx, w, mpsc::pack(to, owner, nb, t))
                .is_err()
            {
                // The consumer aborted it meanwhile (or garbage moved): look again.
                continue;
            }
        }
        pos += nb * mpsc::BLOCK;
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if os::process::pid() != self.pid {
            // Inherited across fork: the end belongs to the parent.
            return;
        }
        self.publish();
        match self.core {
            TxCore::Mpsc { slot, .. } => {
                self.shared.detach_entry(slot, self.me);
                // The consumer may be waiting to learn that every producer left.
                self.shared.wake_all(off::DATA_WORD);
            }
            _ => self.shared.detach_end(
                off::PRODUCER,
                self.me,
                off::DATA_WORD,
                off::PRODUCER_NEVER_PARKS,
            ),
        }
    }
}

/// Space reserved for one message, written in place. Dropping it without
/// [`commit`](Self::commit) abandons the message.
///
/// # Example
/// Reserve the most a message may take, write it in place, keep what was written:
/// ```
/// use mapipc::channel::TryRecvError;
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// let mut g = tx.reserve(64)?;
/// assert_eq!(g.len(), 64);
/// assert!(!g.is_empty());
/// let line = b"status: ok";
/// assert!(g.bytes().copy_from_slice(line));
/// assert!(!g.bytes().write_at(60, b"too long")); // past the reservation: refused
/// g.truncate(line.len());
/// assert_eq!(g.len(), line.len());
/// g.truncate(0); // outside 1..=len: ignored
/// assert_eq!(g.len(), line.len());
/// g.commit()?;
/// assert_eq!(rx.recv()?, line);
///
/// // A grant dropped without a commit sends nothing.
/// drop(tx.reserve(8)?);
/// assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Grant<'a> {
    sender: &'a mut Sender,
    r: RawRes,
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("len", &self.r.len).finish()
    }
}

impl Grant<'_> {
    /// The reserved bytes.
    ///
    /// # Example
    /// See [`Grant`].
    #[inline(always)]
    pub fn bytes(&mut self) -> BytesMut<'_> {
        let p = self.sender.shared.ring.ptr(self.r.data);
        // SAFETY: `data..data+len` was reserved for us by the ring inside the live mapping,
        // and no honest peer reads it until we commit; the view borrows `self`.
        unsafe { BytesMut::new(p, self.r.len as usize) }
    }

    /// Reserved length (after [`truncate`](Self::truncate), the shortened one).
    ///
    /// # Example
    /// See [`Grant`].
    pub fn len(&self) -> usize {
        self.r.len as usize
    }

    /// Always false (a message has at least one byte).
    ///
    /// # Example
    /// See [`Grant`].
    pub fn is_empty(&self) -> bool {
        self.r.len == 0
    }

    /// Shortens the message to its first `len` bytes before committing (for writers that
    /// reserve a maximum and use less). `len` must be in `1..=self.len()`; other values are
    /// ignored.
    ///
    /// # Example
    /// See [`Grant`].
    pub fn truncate(&mut self, len: usize) {
        if len >= 1 && (len as u64) <= self.r.len {
            self.r.len = len as u64;
        }
    }

    /// Publishes the message and wakes a parked receiver.
    ///
    /// # Errors
    /// [`SendError::Aborted`] (MPSC: the consumer gave up on it first),
    /// [`SendError::Truncated`], [`SendError::PageUnavailable`].
    ///
    /// # Example
    /// See [`Grant`].
    #[inline(always)]
    pub fn commit(self) -> Result<(), SendError> {
        self.finish(false)
    }

    /// Commits without publishing yet: later messages join it and [`Sender::flush`] (or
    /// the next plain send) publishes them together. On an SPSC or broadcast channel the
    /// receivers see none of a batch until the flush, then all of it at once (an SPSC
    /// receiver never chases a batch being written, which is what makes batches fast), and
    /// a batch not flushed when the process dies was never published: nobody sees it. On
    /// an MPSC channel each message is visible once committed (the consumer follows the
    /// claims), and the flush only wakes a parked consumer.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::TryRecvError;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// for word in [&b"one"[..], b"two", b"three"] {
    ///     let mut g = tx.reserve(word.len())?;
    ///     g.bytes().copy_from_slice(word);
    ///     g.commit_batched()?;
    /// }
    /// // SPSC: nothing of the batch is visible before the flush...
    /// assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    /// tx.flush();
    /// // ...then all of it.
    /// let got: Vec<Vec<u8>> = rx.try_iter().collect();
    /// assert_eq!(got, [&b"one"[..], b"two", b"three"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn commit_batched(self) -> Result<(), SendError> {
        self.finish(true)
    }

    /// Commits; the grant is consumed without its `Drop` (which abandons).
    #[inline(always)]
    fn finish(self, batch: bool) -> Result<(), SendError> {
        let mut this = std::mem::ManuallyDrop::new(self);
        let r = this.r;
        let s = &mut *this.sender;
        if let TxCore::Spsc(p) = &mut s.core {
            p.commit(&s.shared.ring, &r.spsc(), batch);
            return s.spsc_committed(batch);
        }
        let r = r.res(&s.core);
        s.finish_slow(r, batch)
    }
}

impl Drop for Grant<'_> {
    #[inline]
    fn drop(&mut self) {
        // SPSC reservations were never published: nothing to undo.
        if !matches!(self.sender.core, TxCore::Spsc(_)) {
            let r = self.r.res(&self.sender.core);
            self.sender.abandon(&r);
        }
    }
}
