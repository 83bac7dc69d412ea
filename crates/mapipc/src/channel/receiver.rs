//! The consumer end of every channel kind (for broadcast: a subscriber).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bcast::{Checked, Next, Subscriber};
use super::error::{Fault, RecvError, RecvTimeoutError, TryRecvError};
use super::layout::{off, Kind, Policy};
use super::mpsc::{Found, MpscConsumer};
use super::ring::{Consumer, Peeked, RingError, RingMem};
use super::slots::Bytes;
use super::words::Words;
use super::{
    AttachError, Blocking, Channel, OpenAttachError, Shared, WaitOutcome, WaitStrategy, Waiter,
    DEFAULT_ABORT_TIMEOUT, DEFAULT_CHECK_INTERVAL, LOCK_QUERY_INTERVAL_NS,
};
use crate::os;
use crate::region::{IntoLocation, Peer};

/// Where a new broadcast subscriber starts.
///
/// # Example
/// See [`Channel::subscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartAt {
    /// At the oldest message still in the ring.
    #[default]
    Oldest,
    /// After the newest message: only messages sent from now on.
    Newest,
}

/// How long an MPSC claim must be in progress before the consumer checks its owner's
/// liveness (a live producer commits within microseconds).
const STUCK_GRACE: Duration = Duration::from_millis(1);

/// An MPSC claim the consumer is waiting on.
#[derive(Clone, Copy, Debug)]
struct Stuck {
    word: u64,
    owner: u32,
    since: Instant,
    checked: Option<Instant>,
}

/// Per-kind consumer state.
enum RxCore {
    Spsc(Consumer),
    Mpsc {
        c: MpscConsumer,
        stuck: Option<Stuck>,
        /// The coarse monotonic time before which a look does not ask again whether the
        /// owner of the oldest revoked record we hold is alive (0: ask at the next look).
        next_held_check: u64,
    },
    Sub {
        s: Subscriber,
        /// Lossy: records are copied and checked before anyone sees them.
        lossy: bool,
        /// The position last written to our table entry.
        published: u64,
    },
}

/// Polls a waiting SPSC receive makes inline before the general wait (see `Receiver::peek`):
/// about 6 µs here (a poll is a `pause`, ~25 ns on this machine), far longer than a reply
/// takes to come back in a ping-pong.
const INLINE_SPINS: u32 = 256;
/// The same with a deadline, which is not checked meanwhile (under a microsecond).
const INLINE_SPINS_WITH_DEADLINE: u32 = 32;

/// A record found at our position.
#[derive(Clone, Copy, Debug)]
struct Msg {
    data: u64,
    len: u64,
    end: u64,
    seq: u64,
}

impl Msg {
    /// An SPSC record (no sequence number).
    #[inline(always)]
    fn spsc(p: Peeked) -> Msg {
        Msg {
            data: p.data,
            len: p.len,
            end: p.end,
            seq: 0,
        }
    }
}

enum Poll {
    Msg(Msg),
    Empty,
    Lagged(u64),
    /// Broadcast, lossless: this subscriber was dropped from the table (for good).
    Evicted,
}

enum RecvFail {
    Empty,
    Timeout,
    Disconnected,
    Lagged(u64),
    Evicted,
    Fault(Fault),
}

/// The consumer end (SPSC, MPSC) or a subscriber (broadcast). Not `Clone`: each attaches on
/// its own.
///
/// # Example
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// tx.send(b"hello")?;
/// assert_eq!(rx.recv()?, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Receiver {
    shared: Arc<Shared>,
    me: u32,
    pid: u32,
    _peer: Peer,
    core: RxCore,
    /// Messages received over the channel's life, continued from the shared counter (which a
    /// peer can write: it wraps rather than overflow).
    received: u64,
    wait: WaitStrategy,
    check_interval: Duration,
    abort_timeout: Duration,
    /// Lossy subscribers copy each record here before handing it out.
    scratch: Vec<u8>,
    /// Broadcast: messages lost by a torn read not yet reported.
    pending_lag: u64,
    /// Broadcast: damage met while consuming a record (a garbage latch), not reported yet.
    /// The record was not consumed, and the next look would find it again as it was: this
    /// is reported instead, so that a receive does not take it, fail, and look again for
    /// ever.
    pending_fault: Option<RingError>,
    /// When a polling receive may next ask the kernel about the producers' liveness.
    /// The coarse monotonic time (`os::process::monotonic_coarse_ns`) before which a polling
    /// receive does not query the producers' liveness again; 0 before the first query.
    next_lock_query: u64,
    /// The producers' epoch when a liveness query last found them all gone: until a
    /// producer attaches (which bumps the epoch) they stay gone, without asking again.
    gone_at_epoch: Option<u32>,
    /// A guard left its message in the channel because the mapping was poisoned when it
    /// dropped (see [`RecvRef`]): every receive (`peek`) reports the fault from then on (a
    /// poisoned mapping stays poisoned), rather than hand that message out again.
    held_poisoned: bool,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("file", &self.shared.file())
            .field("kind", &self.shared.kind)
            .field("peer", &self.me)
            .field("received", &self.received)
            .finish()
    }
}

impl Receiver {
    pub(super) fn attach(shared: Arc<Shared>, start: StartAt) -> Result<Receiver, AttachError> {
        let s = &*shared;
        // Read before the positions (see `Shared::repaired_received`). MPSC: the producers'
        // counts, read before the ring (see `Shared::repaired_received_mpsc`).
        let sent = s.ring.ctl_load(off::SENT, Ordering::Acquire);
        let producer_counts = match s.kind {
            Kind::Mpsc => s.producer_counts(),
            _ => Vec::new(),
        };
        let (peer, core) = match s.kind {
            Kind::Spsc | Kind::Mpsc => {
                let peer = s.attach_end(
                    off::CONSUMER,
                    off::CONSUMER_EPOCH,
                    off::SPACE_WORD,
                    "consumer",
                )?;
                let core = if s.kind == Kind::Spsc {
                    RxCore::Spsc(Consumer::attach(s.geo, &s.ring).map_err(|e| s.corrupted(e))?)
                } else {
                    RxCore::Mpsc {
                        c: MpscConsumer::attach(s.geo, s.max_endpoints, &s.ring)
                            .map_err(|e| s.corrupted(e))?,
                        stuck: None,
                        next_held_check: 0,
                    }
                };
                s.advertise_strategy(off::CONSUMER_NEVER_PARKS, WaitStrategy::default());
                (peer, core)
            }
            Kind::Broadcast => {
                let peer = s.region.join()?;
                let (slot, word, _) = s.attach_entry(peer.id(), "subscriber")?;
                let lossless = s.policy == Policy::Lossless;
                let sub = Subscriber::attach(s.geo, &s.ring, start == StartAt::Newest)
                    .and_then(|mut sub| sub.register(&s.ring, slot, word, lossless).map(|()| sub))
                    .map_err(|e| {
                        s.detach_entry(slot, peer.id());
                        s.corrupted(e)
                    })?;
                if lossless {
                    // A producer waiting for the position we may have moved up from.
                    s.wake_all(off::SPACE_WORD);
                }
                let core = RxCore::Sub {
                    published: sub.pos(),
                    s: sub,
                    lossy: s.policy == Policy::Lossy,
                };
                (peer, core)
            }
        };
        let received = s.ring.ctl_load(off::RECEIVED, Ordering::Relaxed);
        let received = match &core {
            // A predecessor killed right after publishing left the count short.
            RxCore::Spsc(c) => s.repaired_received(received, sent, c.head()),
            // A predecessor killed while counting an aborted record, or after taking
            // messages it had not counted yet, left the counts short.
            RxCore::Mpsc { c, .. } => {
                c.finish_noted_abort(&s.ring);
                s.repaired_received_mpsc(received, &producer_counts, c)
            }
            _ => received,
        };
        let rx = Receiver {
            me: peer.id(),
            pid: os::process::pid(),
            _peer: peer,
            core,
            received,
            wait: WaitStrategy::default(),
            check_interval: DEFAULT_CHECK_INTERVAL,
            abort_timeout: DEFAULT_ABORT_TIMEOUT,
            scratch: Vec::new(),
            pending_lag: 0,
            pending_fault: None,
            next_lock_query: 0,
            gone_at_epoch: None,
            held_poisoned: false,
            shared,
        };
        // A page of the ring the walks above met lost: reported now, and the end detached
        // again (by its drop).
        let attached = rx.shared.check_attached();
        attached.map(|()| rx).map_err(AttachError::from)
    }

    /// Opens a channel file and attaches its consumer end (or subscribes, for broadcast).
    ///
    /// # Errors
    /// [`OpenAttachError::Open`]: as [`Channel::open`]; [`OpenAttachError::Attach`]: as
    /// [`Channel::receiver`].
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
    pub fn open(location: impl IntoLocation) -> Result<Receiver, OpenAttachError> {
        Ok(Channel::open(location)?.receiver()?)
    }

    /// Sets how a receive waits (default: spin a little, then park).
    ///
    /// With [`WaitStrategy::BusyPoll`] on an SPSC or MPSC channel the receiver tells the
    /// senders it never parks, so sends skip the wake-up barrier.
    ///
    /// # Example
    /// A receiver that parks at once: the producer sees it parked (in
    /// [`Stat`](super::Stat)), and its send wakes it.
    /// ```
    /// use mapipc::channel::WaitStrategy;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// rx.set_wait_strategy(WaitStrategy::Park);
    /// let chan = rx.channel();
    /// let t = std::thread::spawn(move || rx.recv());
    /// while !chan.stat().consumer.parked {
    ///     std::thread::yield_now();
    /// }
    /// tx.send(b"wake up")?;
    /// assert_eq!(t.join().unwrap()?, b"wake up");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
        if self.shared.kind != Kind::Broadcast {
            self.shared
                .advertise_strategy(off::CONSUMER_NEVER_PARKS, wait);
        }
    }

    /// Sets how often a blocked receive checks that the producer is alive (default 50 ms),
    /// and that the channel's file was not truncated. Values under 1 ms count as 1 ms.
    ///
    /// # Example
    /// A receive waiting on an empty channel whose producer is alive: only the periodic
    /// check can end it, when the file is cut.
    /// ```
    /// use std::time::Duration;
    /// use mapipc::channel::{Channel, RecvError};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c");
    /// let chan = Channel::create(&path, 4096)?;
    /// let _tx = chan.sender()?;
    /// let mut rx = chan.receiver()?;
    /// rx.set_check_interval(Duration::from_millis(5));
    /// let cut = path.clone();
    /// let vandal = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(20));
    ///     std::fs::OpenOptions::new().write(true).open(cut)?.set_len(0)
    /// });
    /// match rx.recv() {
    ///     Err(RecvError::Truncated { file }) => assert!(file.ends_with("c")),
    ///     other => panic!("expected Truncated, got {other:?}"),
    /// }
    /// vandal.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_check_interval(&mut self, interval: Duration) {
        self.check_interval = interval.max(Duration::from_millis(1));
    }

    /// MPSC: how long a claimed record may stay uncommitted while its producer looks alive
    /// before it is aborted and skipped (default 5 s). A dead producer's claims are aborted
    /// as soon as its death is seen.
    ///
    /// A live producer whose claim is aborted learns it only when it commits or drops its
    /// [`Grant`](super::Grant) ([`SendError::Aborted`](super::SendError::Aborted)). Later
    /// messages are delivered meanwhile, but the claim's space is held until then (or until
    /// the producer dies), since it may still write into it: once the other producers have
    /// gone a lap round the ring, they wait for that space (`Full`). Keep the timeout above
    /// the longest time a producer may hold a grant or be stopped (`SIGSTOP`, a debugger).
    ///
    /// # Example
    /// A live producer holds a claim too long: the consumer aborts it and goes on.
    /// ```
    /// use std::time::Duration;
    /// use mapipc::channel::{ChannelOptions, Kind, SendError};
    /// let chan = ChannelOptions::new(Kind::Mpsc).anonymous()?;
    /// let mut slow = chan.sender()?;
    /// let mut fast = chan.sender()?;
    /// let mut rx = chan.receiver()?;
    /// rx.set_abort_timeout(Duration::from_millis(10));
    /// let mut grant = slow.reserve(5)?; // claimed first, not committed
    /// fast.send(b"after")?;
    /// assert_eq!(rx.recv()?, b"after"); // waited 10 ms on the claim, then skipped it
    /// grant.bytes().copy_from_slice(b"stale");
    /// assert!(matches!(grant.commit(), Err(SendError::Aborted)));
    /// assert_eq!(chan.stat().aborted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_abort_timeout(&mut self, timeout: Duration) {
        self.abort_timeout = timeout;
    }

    /// The channel this end belongs to: its [`stat`](Channel::stat), or another end.
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::AttachError;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"one")?;
    /// tx.send(b"two")?;
    /// rx.recv()?;
    /// let chan = rx.channel();
    /// assert_eq!((chan.stat().sent, chan.stat().received), (2, 1));
    /// assert!(matches!(chan.receiver(), Err(AttachError::Busy { .. }))); // `rx` is live
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn channel(&self) -> Channel {
        Channel {
            shared: self.shared.clone(),
        }
    }

    /// Whether a live producer is attached now (MPSC: any of them). Asks the kernel (a
    /// lock query per registered producer).
    ///
    /// # Example
    /// ```
    /// let chan = mapipc::channel::Channel::anonymous(4096)?;
    /// let rx = chan.receiver()?;
    /// assert!(!rx.producer_alive()); // none attached yet
    /// let tx = chan.sender()?;
    /// assert!(rx.producer_alive());
    /// drop(tx);
    /// assert!(!rx.producer_alive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer_alive(&self) -> bool {
        let s = &self.shared;
        match s.kind {
            Kind::Mpsc => s.any_producer_alive(),
            _ => s.end_alive(off::PRODUCER),
        }
    }

    /// Whether the producers are gone, for a polling receive: a clean detach is seen at
    /// once (no syscall); a killed producer by a lock query at most every
    /// [`LOCK_QUERY_INTERVAL_NS`] of the coarse clock, and then for good until a producer
    /// attaches (a dead process stays dead; an attach bumps the epoch).
    fn producers_gone_polling(&mut self) -> Result<bool, Fault> {
        let s = &self.shared;
        if s.producers_detached() {
            return Ok(true);
        }
        let epoch = s.word(off::PRODUCER_EPOCH).load(Ordering::Acquire);
        if epoch != 0 && self.gone_at_epoch == Some(epoch) {
            return Ok(true);
        }
        let now = os::process::monotonic_coarse_ns();
        if now < self.next_lock_query {
            return Ok(false);
        }
        self.next_lock_query = now.saturating_add(LOCK_QUERY_INTERVAL_NS);
        // On the same tick, whether the file was cut under us (an `fstat`): a cut ring reads
        // as zeros, which an MPSC consumer takes for free claim words, an empty ring, for
        // ever; the waits check this every check interval, polling calls here.
        s.check_truncated_now()?;
        if epoch == 0 {
            return Ok(false);
        }
        let gone = s.producers_gone();
        self.gone_at_epoch = gone.then_some(epoch);
        Ok(gone)
    }

    /// MPSC: decides whether the claim in progress at our position should be aborted:
    /// `Some(true)` because its owner is dead, `Some(false)` because it outlived the abort
    /// timeout (its owner may be alive and still write into it).
    fn should_abort(
        shared: &Shared,
        stuck: &mut Option<Stuck>,
        owner: u32,
        word: u64,
        producers_dead: bool,
        check_interval: Duration,
        abort_timeout: Duration,
    ) -> Option<bool> {
        // The producers were all gone when we looked, but one may have attached and claimed
        // since: abort at once only a claim whose owner's slot is empty or dead.
        if producers_dead && Self::owner_dead(shared, owner) {
            return Some(true);
        }
        let now = Instant::now();
        let st = match stuck {
            Some(st) if st.word == word => st,
            _ => stuck.insert(Stuck {
                word,
                owner,
                since: now,
                checked: None,
            }),
        };
        let age = now.duration_since(st.since);
        if age >= STUCK_GRACE
            && (age >= abort_timeout
                || st
                    .checked
                    .map_or(true, |t| now.duration_since(t) >= check_interval))
        {
            st.checked = Some(now);
            if Self::owner_dead(shared, st.owner) {
                return Some(true);
            }
        }
        (age >= abort_timeout).then_some(false)
    }

    /// MPSC: whether producer slot `owner` is empty or held by a dead process (a lock query).
    fn owner_dead(shared: &Shared, owner: u32) -> bool {
        let id = shared.entry_peer(owner);
        id == 0 || !shared.region.is_alive(id)
    }

    /// Whether the producer registration (SPSC, broadcast) holds our own peer id. Each end
    /// joins the region on its own, so that is never another end's: garbage, which would
    /// pass for a live producer for as long as we live (we are alive).
    fn producer_is_me(&self) -> bool {
        self.shared.kind != Kind::Mpsc
            && self.shared.word(off::PRODUCER).load(Ordering::Acquire) == self.me
    }

    /// The producers are gone: `Disconnected`, unless the file was truncated (`Truncated`:
    /// no producer can come back; or `PageUnavailable`) or the producer registration (SPSC,
    /// broadcast) is garbage, which is corruption.
    #[cold]
    fn disconnected(&self) -> RecvFail {
        if let Err(f) = self.shared.check_truncated_now() {
            return RecvFail::Fault(f);
        }
        if self.shared.kind == Kind::Mpsc {
            return RecvFail::Disconnected;
        }
        if self.producer_is_me() {
            return RecvFail::Fault(Fault::Corrupted {
                file: self.shared.file(),
                offset: self.shared.header_file_off + off::PRODUCER,
                what: "producer registration names the consumer",
            });
        }
        match self
            .shared
            .check_registration(off::PRODUCER, "producer registration")
        {
            Ok(()) => RecvFail::Disconnected,
            Err(f) => RecvFail::Fault(f),
        }
    }

    /// MPSC: the position and current claim word of the oldest revoked record we hold.
    fn held_seen(&self) -> Option<(u64, u64)> {
        match &self.core {
            RxCore::Mpsc { c, .. } => c
                .held_front()
                .zip(c.held_front_word(&self.shared.ring))
                .map(|((_, pos), w)| (pos, w)),
            _ => None,
        }
    }

    /// The consumer position we last stored in shared memory (SPSC, MPSC).
    fn published(&self) -> Option<u64> {
        match &self.core {
            RxCore::Spsc(c) => Some(c.published()),
            RxCore::Mpsc { c, .. } => Some(c.published()),
            RxCore::Sub { .. } => None,
        }
    }

    /// One look at our position, without waiting. `producers_dead`: every producer is gone,
    /// so MPSC claims in progress are aborted at once.
    #[inline]
    fn poll_once(&mut self, producers_dead: bool, thorough: bool) -> Result<Poll, Fault> {
        if self.pending_lag > 0 {
            return Ok(Poll::Lagged(std::mem::take(&mut self.pending_lag)));
        }
        let shared = &*self.shared;
        if let Some(e) = self.pending_fault.take() {
            return Err(shared.fault(e));
        }
        let ring = &shared.ring;
        let mut reaped = false;
        let r = match &mut self.core {
            RxCore::Spsc(c) => match c.try_peek(ring, thorough) {
                Ok(Some(p)) => Ok(Poll::Msg(Msg::spsc(p))),
                Ok(None) => Ok(Poll::Empty),
                Err(e) => Err(shared.fault(e)),
            },
            RxCore::Mpsc {
                c,
                stuck,
                next_held_check,
            } => {
                // Revoked records whose owners are done (or, asked at most every lock query
                // interval, dead) are handed back.
                if let Some((owner, _)) = c.held_front() {
                    let now = os::process::monotonic_coarse_ns();
                    if producers_dead || now >= *next_held_check {
                        *next_held_check = now.saturating_add(LOCK_QUERY_INTERVAL_NS);
                        if Self::owner_dead(shared, owner) {
                            c.release_front(ring);
                        }
                    }
                    match c.reap(ring) {
                        Ok(freed) => reaped = freed,
                        Err(e) => return Err(shared.fault(e)),
                    }
                }
                // Bounded: each round aborts one claim or returns.
                loop {
                    match c.try_peek(ring) {
                        Ok(Found::Record { data, len, end }) => {
                            *stuck = None;
                            break Ok(Poll::Msg(Msg {
                                data,
                                len,
                                end,
                                seq: 0,
                            }));
                        }
                        Ok(Found::Empty) => break Ok(Poll::Empty),
                        Ok(Found::InProgress { owner, word }) => {
                            let abort = Self::should_abort(
                                shared,
                                stuck,
                                owner,
                                word,
                                producers_dead,
                                self.check_interval,
                                self.abort_timeout,
                            );
                            if !abort.is_some_and(|dead| c.abort(ring, word, dead)) {
                                break Ok(Poll::Empty);
                            }
                            // Aborted: skipped (and counted) by now or by the next peek.
                        }
                        Err(e) => break Err(shared.fault(e)),
                    }
                }
            }
            RxCore::Sub { s, .. } => match s.try_next(ring) {
                Ok(Next::Record {
                    data,
                    len,
                    seq,
                    end,
                }) => Ok(Poll::Msg(Msg {
                    data,
                    len,
                    end,
                    seq,
                })),
                Ok(Next::Empty) => Ok(Poll::Empty),
                Ok(Next::Lagged { missed }) => Ok(Poll::Lagged(missed)),
                // A file cut under us reads as zeros, our entry too: say what happened.
                Ok(Next::Evicted) if shared.truncated_now() => Err(shared.file_fault()),
                Ok(Next::Evicted) => Ok(Poll::Evicted),
                Err(e) => Err(shared.fault(e)),
            },
        };
        if reaped {
            // Blocks handed back: publish now, a wait that follows would not.
            self.publish();
        }
        r
    }

    /// The next message, waiting as asked. The fast path is inline; waiting lives in
    /// [`peek_slow`](Self::peek_slow).
    #[inline]
    fn peek(&mut self, block: Blocking) -> Result<Msg, RecvFail> {
        if self.held_poisoned {
            return Err(RecvFail::Fault(self.shared.file_fault()));
        }
        let mut spun = 0;
        if let RxCore::Spsc(c) = &mut self.core {
            let ring = &self.shared.ring;
            if let Some(p) = c.peek_ready(ring) {
                return Ok(Msg::spsc(p));
            }
            // A waiting receive whose strategy spins polls here first, inline, a few
            // microseconds at most: a message arriving meanwhile is taken without going
            // through the general wait, whose calls, closures and results returned through
            // memory cost a ping-pong about a quarter of its round trip (8 B, BENCHMARKS.md).
            // Nothing else is checked meanwhile (the busy-poll wait checks nothing before its
            // first 1024 polls either, 64 with a deadline); these polls count against a
            // spin-then-park budget.
            let budget = match block {
                Blocking::No => 0,
                Blocking::Until(None) => INLINE_SPINS,
                Blocking::Until(Some(_)) => INLINE_SPINS_WITH_DEADLINE,
            };
            let spins = self.wait.spins().min(budget);
            if spins > 0 {
                // Hand consumed space back first, as any wait does.
                if c.has_unpublished() {
                    Self::publish_spsc(&self.shared, c, self.received);
                }
                while spun < spins {
                    std::hint::spin_loop();
                    spun += 1;
                    if let Some(p) = c.peek_ready(ring) {
                        return Ok(Msg::spsc(p));
                    }
                }
            }
        }
        match self.poll_once(false, false) {
            Ok(Poll::Msg(m)) => Ok(m),
            Ok(Poll::Lagged(n)) => Err(RecvFail::Lagged(n)),
            Ok(Poll::Evicted) => Err(RecvFail::Evicted),
            Ok(Poll::Empty) => self.peek_slow(block, spun),
            Err(f) => Err(RecvFail::Fault(f)),
        }
    }

    #[cold]
    #[inline(never)]
    fn peek_slow(&mut self, block: Blocking, spun: u32) -> Result<Msg, RecvFail> {
        // The spins `peek` already made count against the strategy's.
        let strategy = self.wait.less_spins(spun);
        // Asking whether a producer is alive is a syscall (a lock query). A wait without a
        // deadline skips that query before its first wait, which checks liveness itself every
        // check interval: the outcome is the same (`Disconnected` once the ring is empty and
        // the producers dead), and a message arriving while we look is not delayed by a
        // syscall. Producers that detached cleanly are seen at once from their registration.
        let mut query_liveness = !matches!(block, Blocking::Until(None));
        // The first look of a blocking receive skips the `tail` check (a cache-line transfer
        // from the producer): the wait checks for a damaged header every check interval.
        let mut thorough = matches!(block, Blocking::No);
        let damaged = std::cell::Cell::new(false);
        let truncated = std::cell::Cell::new(false);
        let position_overwritten = std::cell::Cell::new(false);
        let evicted = std::cell::Cell::new(false);
        loop {
            // Empty: hand back consumed space before possibly sleeping.
            self.publish();
            // Snapshot what a change would be measured against *before* looking: a change
            // between the look and the snapshot would otherwise be missed.
            let (pos, kind, cap) = {
                let pos = match &self.core {
                    RxCore::Spsc(c) => c.head(),
                    RxCore::Mpsc { c, .. } => c.head(),
                    RxCore::Sub { s: sub, .. } => sub.pos(),
                };
                (pos, self.shared.kind, self.shared.geo.capacity())
            };
            // Checked before each wait (a load of our own line) and every check interval
            // during it.
            let published = self.published();
            if position_overwritten_at(&self.shared, published) {
                return Err(RecvFail::Fault(self.shared.position_overwritten_fault()));
            }
            let word_seen = self
                .shared
                .ring
                .word_load(pos & (cap - 1), Ordering::Acquire);
            // Broadcast: what `tail` said before the look. Waking on any change of it (not on
            // `tail != pos`) keeps a garbage `tail` the look finds nothing behind from
            // spinning for ever without a liveness check.
            let tail_seen = match kind {
                Kind::Broadcast => self.shared.ring.load_tail(Ordering::Acquire),
                _ => 0,
            };
            // MPSC: the oldest revoked record we hold (producers may wait for its blocks):
            // its owner releasing it ends the wait, as does its owner's death.
            let held_seen = self.held_seen();
            let epoch = self
                .shared
                .word(off::PRODUCER_EPOCH)
                .load(Ordering::Acquire);
            let producer = self.shared.word(off::PRODUCER).load(Ordering::Acquire);
            let gone = match block {
                Blocking::No => self.producers_gone_polling().map_err(RecvFail::Fault)?,
                _ if query_liveness => self.shared.producers_gone(),
                _ => self.shared.producers_detached(),
            } || self.producer_is_me();
            match self.poll_once(gone, thorough).map_err(RecvFail::Fault)? {
                Poll::Msg(m) => return Ok(m),
                Poll::Lagged(n) => return Err(RecvFail::Lagged(n)),
                Poll::Evicted => return Err(RecvFail::Evicted),
                Poll::Empty if gone => return Err(self.disconnected()),
                Poll::Empty => {}
            }
            let deadline = match block {
                Blocking::No => return Err(RecvFail::Empty),
                Blocking::Until(d) => d,
            };
            let s = &*self.shared;
            // Whose death ends the wait: the owner of a stuck MPSC claim (or the claim's age
            // reaching the abort timeout, owner alive or not), else the producers.
            let stuck_owner = match &self.core {
                RxCore::Mpsc { stuck, .. } => stuck.map(|st| (st.owner, st.since)),
                _ => None,
            };
            if self.held_seen() != held_seen {
                // The look revoked a claim or handed a held record back: look again, with
                // the new oldest held record as what a change is measured against.
                continue;
            }
            let held_owner = match &self.core {
                RxCore::Mpsc { c, .. } => c.held_front().map(|(owner, _)| owner),
                _ => None,
            };
            let abort_timeout = self.abort_timeout;
            let me = self.me;
            // Broadcast: our claim on our table entry, the position we stored last, and
            // whether we are lossless.
            let sub = match &self.core {
                RxCore::Sub {
                    s: sub,
                    lossy,
                    published,
                } => Some((sub.registration(), *published, !*lossy)),
                _ => None,
            };
            let mut ready = || {
                let moved = match kind {
                    // The next record's header: the line the producer writes anyway.
                    Kind::Spsc => s.geo.committed_at(&s.ring, pos),
                    Kind::Mpsc => s.ring.word_load(pos & (cap - 1), Ordering::Acquire) != word_seen,
                    Kind::Broadcast => s.ring.load_tail(Ordering::Acquire) != tail_seen,
                };
                moved
                    || held_seen.is_some_and(|(p, w)| {
                        s.ring.word_load(p & (cap - 1), Ordering::Acquire) != w
                    })
                    || s.word(off::PRODUCER_EPOCH).load(Ordering::Acquire) != epoch
                    || s.word(off::PRODUCER).load(Ordering::Acquire) != producer
            };
            let alive = || {
                // Every check interval: a truncated file ends the wait (no producer can attach
                // to it any more).
                if s.truncated_now() {
                    truncated.set(true);
                    return false;
                }
                // Our published position overwritten: producers, which check it, would refuse
                // to attach, and we would wait for them for ever.
                if position_overwritten_at(s, published) {
                    position_overwritten.set(true);
                    return false;
                }
                if let Some((reg, published, lossless)) = sub {
                    // Lossless, our entry taken from us (see `RecvError::Evicted`): said now
                    // rather than at the next message.
                    if lossless && !reg.held(&s.ring) {
                        evicted.set(true);
                        return false;
                    }
                    // Our position word overwritten by a subscriber dropped from our entry
                    // (or garbage): store ours again, or a lossless producer waits for us
                    // while we wait for it.
                    if reg.restore(&s.ring, published) && lossless {
                        s.wake_all(off::SPACE_WORD);
                    }
                }
                if held_owner.is_some_and(|owner| Self::owner_dead(s, owner)) {
                    return false;
                }
                match (kind, stuck_owner) {
                    (Kind::Mpsc, Some((owner, since))) => {
                        let id = s.entry_peer(owner);
                        id != 0 && s.region.is_alive(id) && since.elapsed() < abort_timeout
                    }
                    // A damaged header ends the wait (reported by the thorough look that
                    // follows), as does the producers' death.
                    (Kind::Spsc, _) if s.geo.damaged_at(&s.ring, pos) => {
                        damaged.set(true);
                        false
                    }
                    // Our own id as the producer's is garbage (see `producer_is_me`).
                    _ => {
                        !s.producers_gone()
                            && (kind == Kind::Mpsc
                                || s.word(off::PRODUCER).load(Ordering::Acquire) != me)
                    }
                }
            };
            let outcome = Waiter { deadline }
                .wait(
                    s,
                    off::DATA_WORD,
                    strategy,
                    self.check_interval,
                    &mut ready,
                    &alive,
                )
                .map_err(RecvFail::Fault)?;
            match outcome {
                WaitOutcome::Ready => {
                    // Something changed: look at once, without asking the kernel about the
                    // producers (a message is the common case, and should not wait on a
                    // syscall).
                    match self.poll_once(false, false).map_err(RecvFail::Fault)? {
                        Poll::Msg(m) => return Ok(m),
                        Poll::Lagged(n) => return Err(RecvFail::Lagged(n)),
                        Poll::Evicted => return Err(RecvFail::Evicted),
                        Poll::Empty => {}
                    }
                    // A predicate that keeps firing (garbage in shared memory) must not
                    // outlive the deadline.
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(RecvFail::Timeout);
                    }
                }
                WaitOutcome::PeerGone if truncated.get() => {
                    return Err(RecvFail::Fault(self.shared.file_fault()));
                }
                WaitOutcome::PeerGone if position_overwritten.get() => {
                    return Err(RecvFail::Fault(self.shared.position_overwritten_fault()));
                }
                WaitOutcome::PeerGone if evicted.get() => {
                    if let RxCore::Sub { s: sub, .. } = &mut self.core {
                        sub.check_evicted(&self.shared.ring);
                    }
                    return Err(RecvFail::Evicted);
                }
                WaitOutcome::PeerGone => {
                    query_liveness = !damaged.get();
                    thorough = true;
                    // The owner of a stuck claim died, or the claim outlived the abort
                    // timeout: let the next look check it now.
                    if let RxCore::Mpsc {
                        stuck,
                        next_held_check,
                        ..
                    } = &mut self.core
                    {
                        if let Some(st) = stuck {
                            st.checked = None;
                            st.since = st.since.min(Instant::now() - STUCK_GRACE);
                        }
                        // The owner of the oldest held record may have died: ask now.
                        *next_held_check = 0;
                    }
                }
                WaitOutcome::TimedOut => {
                    // Last look: data may have arrived at the deadline.
                    return match self.poll_once(false, true).map_err(RecvFail::Fault)? {
                        Poll::Msg(m) => Ok(m),
                        Poll::Lagged(n) => Err(RecvFail::Lagged(n)),
                        Poll::Evicted => Err(RecvFail::Evicted),
                        Poll::Empty => Err(RecvFail::Timeout),
                    };
                }
            }
        }
    }

    /// Consumes `m` locally (published by [`publish`](Self::publish)). For a subscriber,
    /// `false` when the record was overwritten while we read it (lossy): it is not consumed,
    /// we moved to the oldest intact record, and the next look reports the lag.
    #[inline]
    fn consume(&mut self, m: &Msg) -> bool {
        let ring = &self.shared.ring;
        match &mut self.core {
            RxCore::Spsc(c) => c.consume(&Peeked {
                data: m.data,
                len: m.len,
                end: m.end,
            }),
            RxCore::Mpsc { c, .. } => c.consume(ring, m.end),
            RxCore::Sub { s, .. } => match s.validate(ring, m.seq, m.end) {
                Ok(Checked::Intact) => {}
                Ok(Checked::Lost(missed)) => {
                    self.pending_lag = self.pending_lag.saturating_add(missed);
                    return false;
                }
                // Lossless, dropped from the table: the record may have been overwritten
                // while read; not consumed, and every look from now on reports the eviction.
                Ok(Checked::Evicted) => return false,
                // The record was overwritten (or copy 0 of the latch says so) and the latch
                // is garbage. The record is not consumed; the next look reports the damage
                // (it would find the record again as it was: `try_next` does not consult the
                // latch for a record that looks sane).
                Err(e) => {
                    self.pending_fault = Some(e);
                    return false;
                }
            },
        }
        self.received = self.received.wrapping_add(1);
        true
    }

    /// Consumes a broadcast record the caller already found intact
    /// ([`RecvRef::is_intact`]); any other record as [`consume`](Self::consume) does.
    #[cold]
    fn consume_confirmed(&mut self, m: &Msg) {
        match &mut self.core {
            RxCore::Sub { s, .. } => {
                s.advance(m.seq, m.end);
                self.received = self.received.wrapping_add(1);
            }
            _ => {
                self.consume(m);
            }
        }
    }

    /// SPSC: hands consumed space back, updates the counter and wakes a parked producer.
    #[inline]
    fn publish_spsc(s: &Shared, c: &mut Consumer, received: u64) {
        c.publish(&s.ring);
        // Release: a producer attaching later reads it first, then the position it counts up
        // to (`Shared::repaired_sent`).
        s.ring.ctl_store(off::RECEIVED, received, Ordering::Release);
        s.wake_if_parked(off::SPACE_WORD, off::PRODUCER_NEVER_PARKS);
    }

    /// Hands consumed space back and wakes producers waiting for it.
    #[inline]
    fn publish(&mut self) {
        let s = &*self.shared;
        match &mut self.core {
            RxCore::Spsc(c) => {
                if c.has_unpublished() {
                    Self::publish_spsc(s, c, self.received);
                }
            }
            RxCore::Mpsc { c, .. } => {
                if c.has_unpublished() {
                    let moved = c.publish(&s.ring);
                    // Also while a held record keeps the position put.
                    s.ring
                        .ctl_store(off::RECEIVED, self.received, Ordering::Relaxed);
                    if moved {
                        s.wake_all(off::SPACE_WORD);
                    }
                }
            }
            RxCore::Sub {
                s: sub,
                lossy,
                published,
            } => {
                if sub.pos() != *published {
                    // Pair S; nothing is stored once the entry was taken from us (see
                    // `Subscriber::publish`), and a lossless subscriber is then evicted.
                    if !sub.publish(&s.ring) && sub.evicted() {
                        return;
                    }
                    *published = sub.pos();
                    if !*lossy {
                        s.wake_all(off::SPACE_WORD);
                    }
                }
            }
        }
    }

    /// Copies the message into `out`; `false` if it was overwritten meanwhile (lossy).
    #[inline]
    fn take(&mut self, m: &Msg, out: &mut Vec<u8>) -> Result<bool, Fault> {
        let s = &*self.shared;
        s.ring.read_into_vec(m.data, m.len as usize, out);
        s.check_truncated()?;
        if !self.consume(m) {
            return Ok(false);
        }
        self.publish();
        Ok(true)
    }

    fn recv_into_inner(&mut self, out: &mut Vec<u8>, block: Blocking) -> Result<(), RecvFail> {
        loop {
            let m = self.peek(block)?;
            if self.take(&m, out).map_err(RecvFail::Fault)? {
                return Ok(());
            }
            // Overwritten while we copied: the next look reports the lag.
        }
    }

    /// Receives the next message, waiting for one.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] when the producers are gone and everything they committed
    /// was received, [`RecvError::Lagged`] (lossy broadcast: receiving again continues),
    /// [`RecvError::Evicted`] (lossless broadcast: for good), [`RecvError::Corrupted`],
    /// [`RecvError::Truncated`], [`RecvError::PageUnavailable`] (a page of the channel file
    /// the kernel could not supply).
    ///
    /// # Example
    /// See [`pair`](super::pair).
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
    #[inline]
    pub fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<(), RecvError> {
        match self.recv_into_inner(out, Blocking::Until(None)) {
            Ok(()) => Ok(()),
            Err(e) => Err(recv_error(&self.shared, e)),
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
            Err(e) => Err(try_recv_error(&self.shared, e)),
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
        // A timeout past what the clock can represent waits without a deadline.
        self.recv_until(Instant::now().checked_add(timeout))
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
        self.recv_until(Some(deadline))
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>, RecvTimeoutError> {
        let mut v = Vec::new();
        match self.recv_into_inner(&mut v, Blocking::Until(deadline)) {
            Ok(()) => Ok(v),
            Err(e) => Err(recv_timeout_error(&self.shared, e)),
        }
    }

    /// Receives a plain-old-data value sent with [`Sender::send_pod`](super::Sender::send_pod),
    /// read in place (any alignment).
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`RecvError::WrongLength`] when the next message is not
    /// `size_of::<T>()` bytes: it is left in the channel, for [`recv`](Self::recv) to take.
    ///
    /// # Example
    /// See [`pair`](super::pair).
    pub fn recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T, RecvError> {
        let expected = std::mem::size_of::<T>();
        loop {
            let m = self.recv_ref()?;
            if m.len() == expected {
                if let Some(v) = m.bytes().read_pod::<T>(0) {
                    if m.is_intact() {
                        return Ok(v);
                    }
                }
            } else if m.is_intact() {
                let len = m.len();
                m.leave();
                return Err(RecvError::WrongLength { len, expected });
            }
            // Lossy broadcast, overwritten while we read it: dropping the guard leaves it,
            // and the next receive reports the lag.
        }
    }

    /// The guard over `m`. (A guard whose message was read while the mapping was poisoned
    /// leaves it in the channel when it drops and sets `held_poisoned`: the next receive
    /// reports the fault instead of handing the message out again; see [`RecvRef`].)
    #[inline]
    fn guard(&mut self, m: Msg) -> RecvRef<'_> {
        RecvRef {
            rx: self,
            m,
            confirmed: std::cell::Cell::new(false),
        }
    }

    /// Receives the next message in place (zero-copy), waiting for one. The space is handed
    /// back to the producer when the returned guard is dropped.
    ///
    /// On a lossy broadcast channel the producer may overwrite the message while the guard
    /// lives: check [`RecvRef::is_intact`] after reading it (a torn message is then reported
    /// as [`RecvError::Lagged`] by the next receive).
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
            Ok(m) => Ok(self.guard(m)),
            Err(e) => Err(recv_error(&self.shared, e)),
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
            Ok(m) => Ok(self.guard(m)),
            Err(e) => Err(try_recv_error(&self.shared, e)),
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
        // A timeout past what the clock can represent waits without a deadline.
        match self.peek(Blocking::Until(Instant::now().checked_add(timeout))) {
            Ok(m) => Ok(self.guard(m)),
            Err(e) => Err(recv_timeout_error(&self.shared, e)),
        }
    }

    /// Hands every message available now (at most `max`) to `f` in place, then gives all
    /// their space back at once (one release store, at most one wake-up). Returns how many
    /// were handled; 0 when empty. Does not wait. (Lossy broadcast: each message is copied
    /// and checked first, so `f` never sees a torn one, nor one read from a cut file.)
    ///
    /// SPSC: until that release store the messages are, for the channel, still in the ring:
    /// a receiver killed during the call (inside `f`, say) gets every message this call
    /// handed to `f` again when it re-attaches, as with a [`RecvRef`] held at a kill. MPSC:
    /// each message's blocks are handed back as soon as `f` returns for it, so only the
    /// message `f` was handling comes again.
    ///
    /// # Errors
    /// [`TryRecvError::Disconnected`] when nothing is left and the producers are gone,
    /// [`TryRecvError::Lagged`], [`TryRecvError::Evicted`], corruption and truncation
    /// errors. A problem met after some messages were handled ends the call with `Ok(n)` and
    /// is reported by the next call (which meets it first); only a truncation of the file
    /// found right after `f` read a message (whose bytes may then be zeros) is reported at
    /// once, without consuming that message. A mapping already poisoned when the call starts
    /// is reported before `f` sees anything. Handled messages stay
    /// consumed, also when `f` panics; the message it panicked on does not.
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
        // A mapping already poisoned (the file cut under it, or a page the kernel could not
        // supply): what `f` would read may be the zeros the fault handler put there, or a
        // message a `RecvRef` left in place for that reason. Reported before `f` sees
        // anything. (Once per call; a fault while `f` reads is caught after it, below.)
        if let Err(e) = self.shared.check_truncated() {
            return Err(e.into());
        }
        if let RxCore::Spsc(c) = &mut self.core {
            // The SPSC fast path: committed records taken inline, their space handed back
            // once. Anything else (empty, padding alone, damage, disconnection) is left to
            // the general loop below, which reports it when nothing was taken.
            let shared = &*self.shared;
            let mut n = 0;
            while n < max {
                let Some(p) = c.peek_ready(&shared.ring) else {
                    break;
                };
                // SAFETY: the record lies inside the ring (validated by `peek_ready`) and
                // stays ours until `consume` + `publish`, after `f` returns.
                f(unsafe { Bytes::new(shared.ring.ptr(p.data), p.len as usize) });
                if let Err(e) = shared.check_truncated() {
                    self.publish();
                    return Err(e.into());
                }
                // Counted with each message, not after the loop: a callback that panics
                // leaves the messages before it consumed (their space goes back at the next
                // publication) and counted alike.
                c.consume(&p);
                self.received = self.received.wrapping_add(1);
                n += 1;
            }
            if n > 0 {
                self.publish();
                return Ok(n);
            }
        }
        let lossy = matches!(self.core, RxCore::Sub { lossy: true, .. });
        let mut n = 0;
        // Calls of `f` (bounded by `max`): `n`, plus a record found damaged after `f` read it
        // (not consumed, and the loop then ends).
        let mut calls = 0;
        let result = loop {
            if calls >= max {
                break Ok(n);
            }
            // A record that failed its check after `f` saw it left the damage for the next
            // look (`consume`): report it at the next call, first, rather than let the look
            // below take it and the `n > 0` arm drop it (the record would then be handed to
            // `f` again by every call, and the damage never reported).
            if n > 0 && self.pending_fault.is_some() {
                break Ok(n);
            }
            match self.poll_once(false, true) {
                Ok(Poll::Msg(m)) => {
                    if lossy {
                        // Copied and checked before `f` sees it (never a torn message), and
                        // consumed after `f` returns (a panicking `f` leaves it, as the
                        // other kinds do).
                        let mut buf = std::mem::take(&mut self.scratch);
                        self.shared
                            .ring
                            .read_into_vec(m.data, m.len as usize, &mut buf);
                        // A copy from a cut file is zeros, not the message: `f` must not see
                        // it (reported at once, as below after an in-place read).
                        if let Err(e) = self.shared.check_truncated() {
                            self.scratch = buf;
                            break Err(e.into());
                        }
                        let intact = match &self.core {
                            RxCore::Sub { s, .. } => s.still_intact(&self.shared.ring, s.pos()),
                            _ => true,
                        };
                        if intact {
                            calls += 1;
                            // SAFETY: `buf` is our own allocation, alive during the call.
                            f(unsafe { Bytes::new(buf.as_ptr(), buf.len()) });
                            self.consume_confirmed(&m);
                            n += 1;
                        } else {
                            // Overwritten while we copied: moves past it and counts the lag.
                            self.consume(&m);
                        }
                        self.scratch = buf;
                        continue;
                    }
                    // A lossless subscriber's record was checked by the look (`try_next`):
                    // one found reclaimed while joining was moved past before anyone saw it,
                    // a garbage latch reported; the record handed over is never overwritten
                    // while `f` reads it, and is consumed after (barring new damage).
                    let ptr = self.shared.ring.ptr(m.data);
                    calls += 1;
                    // SAFETY: the record lies inside the ring (validated by the peek) and
                    // stays ours until `consume` + `publish`, after `f` returns.
                    f(unsafe { Bytes::new(ptr, m.len as usize) });
                    if let Err(e) = self.shared.check_truncated() {
                        break Err(e.into());
                    }
                    if !self.consume(&m) {
                        // Not consumed (a broadcast record found reclaimed, or the
                        // oldest-record latch garbage, after `f` read it): not counted; the
                        // next look reports the lag or the damage.
                        continue;
                    }
                    n += 1;
                }
                Ok(Poll::Lagged(missed)) if n == 0 => break Err(TryRecvError::Lagged { missed }),
                // Reported by the next call too (every look does).
                Ok(Poll::Evicted) if n == 0 => {
                    break Err(try_recv_error(&self.shared, RecvFail::Evicted))
                }
                Ok(Poll::Evicted) => break Ok(n),
                // Kept for the next call, which reports it first (the position is already
                // past the lost messages).
                Ok(Poll::Lagged(missed)) => {
                    self.pending_lag = self.pending_lag.saturating_add(missed);
                    break Ok(n);
                }
                Ok(Poll::Empty) => {
                    if n == 0 {
                        match self.producers_gone_polling() {
                            Err(e) => break Err(e.into()),
                            Ok(false) => {}
                            Ok(true) => match self.poll_once(true, true) {
                                Ok(Poll::Msg(_)) => continue,
                                Ok(Poll::Lagged(missed)) => {
                                    break Err(TryRecvError::Lagged { missed })
                                }
                                Ok(Poll::Evicted) => {
                                    break Err(try_recv_error(&self.shared, RecvFail::Evicted))
                                }
                                Ok(Poll::Empty) => {
                                    break Err(try_recv_error(&self.shared, self.disconnected()))
                                }
                                Err(e) => break Err(e.into()),
                            },
                        }
                    }
                    break Ok(n);
                }
                // As in the SPSC fast path: the messages handled come first, the next call
                // meets the problem again and reports it.
                Err(_) if n > 0 => break Ok(n),
                Err(e) => break Err(e.into()),
            }
        };
        self.publish();
        result
    }

    /// A blocking iterator: yields messages until the producers are gone (then ends).
    /// [`RecvError::Lagged`] is yielded and the iteration goes on; any other error is
    /// yielded once, then the iteration ends.
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

    /// Waits until a producer attaches (a new one, after the previous left) or there is
    /// something to receive, up to `deadline`. Returns whether either happened (or the
    /// channel's file was truncated meanwhile: nobody can attach to it any more): then
    /// receive again, which reports what happened. A producer that attaches, sends and
    /// leaves while we wait (or just before) is not missed: its messages are waiting, or its
    /// attach moved the producer epoch, and either ends the wait.
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
        let shared = Arc::clone(&self.shared);
        let s = &*shared;
        let check_interval = self.check_interval;
        let epoch = s.word(off::PRODUCER_EPOCH).load(Ordering::Acquire);
        let published = self.published();
        let mut ready = || {
            // Something to receive (a lag or a fault too: the next receive reports it).
            match self.poll_once(false, true) {
                Ok(Poll::Msg(_) | Poll::Evicted) | Err(_) => return true,
                Ok(Poll::Lagged(n)) => {
                    self.pending_lag = self.pending_lag.saturating_add(n);
                    return true;
                }
                Ok(Poll::Empty) => {}
            }
            // Our position overwritten: no producer can attach (the receive reports it).
            position_overwritten_at(s, published)
                || s.word(off::PRODUCER_EPOCH).load(Ordering::Acquire) != epoch
                || !s.producers_gone() && s.end_ever_attached(off::PRODUCER_EPOCH)
        };
        if ready() {
            return true;
        }
        // A truncated file ends the wait too: the next receive reports it.
        let alive = || !s.truncated_now();
        let _ = Waiter { deadline }.wait(
            s,
            off::DATA_WORD,
            WaitStrategy::Park,
            check_interval,
            &mut ready,
            &alive,
        );
        ready() || s.truncated_now()
    }
}

/// Whether the consumer position in shared memory differs from `published`, the one we
/// last stored there (`None`: a broadcast subscriber, whose position is private). Only the
/// consumer writes it (SPSC, MPSC), so another value was written by someone else.
fn position_overwritten_at(s: &Shared, published: Option<u64>) -> bool {
    published.is_some_and(|p| s.ring.ctl_load(off::HEAD, Ordering::Relaxed) != p)
}

fn recv_error(s: &Shared, e: RecvFail) -> RecvError {
    match e {
        RecvFail::Disconnected => RecvError::Disconnected,
        RecvFail::Lagged(missed) => RecvError::Lagged { missed },
        RecvFail::Evicted => RecvError::Evicted { file: s.file() },
        RecvFail::Fault(f) => f.into(),
        RecvFail::Empty | RecvFail::Timeout => unreachable!("blocking receive never times out"),
    }
}

fn try_recv_error(s: &Shared, e: RecvFail) -> TryRecvError {
    match e {
        RecvFail::Empty | RecvFail::Timeout => TryRecvError::Empty,
        RecvFail::Disconnected => TryRecvError::Disconnected,
        RecvFail::Lagged(missed) => TryRecvError::Lagged { missed },
        RecvFail::Evicted => TryRecvError::Evicted { file: s.file() },
        RecvFail::Fault(f) => f.into(),
    }
}

fn recv_timeout_error(s: &Shared, e: RecvFail) -> RecvTimeoutError {
    match e {
        RecvFail::Timeout | RecvFail::Empty => RecvTimeoutError::Timeout,
        RecvFail::Disconnected => RecvTimeoutError::Disconnected,
        RecvFail::Lagged(missed) => RecvTimeoutError::Lagged { missed },
        RecvFail::Evicted => RecvTimeoutError::Evicted { file: s.file() },
        RecvFail::Fault(f) => f.into(),
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if os::process::pid() != self.pid {
            return;
        }
        self.publish();
        match self.core {
            RxCore::Sub { ref s, .. } => {
                // Only an entry still ours: one taken from us is its new holder's.
                s.leave(&self.shared.ring);
                // A lossless producer may be waiting for us.
                self.shared.wake_all(off::SPACE_WORD);
            }
            _ => self.shared.detach_end(
                off::CONSUMER,
                self.me,
                off::SPACE_WORD,
                off::CONSUMER_NEVER_PARKS,
            ),
        }
    }
}

/// A message received in place; its space goes back to the producer on drop.
///
/// Dropping the guard consumes the message, except when it was not delivered intact: a
/// broadcast record the producer overwrote meanwhile (lossy: the next receive reports the
/// lag; lossless, after dropping the subscriber as dead: the eviction), or a message read
/// while the channel's mapping was poisoned (its file truncated, or a page the kernel could
/// not supply: what was read may be zeros). That one stays in the channel, as with a
/// copying receive: from then on every receive of this receiver reports
/// [`Truncated`](RecvError::Truncated) or [`PageUnavailable`](RecvError::PageUnavailable)
/// rather than hand it out again ([`drain`](Receiver::drain) included), and a receiver that
/// attaches once the file is whole again gets the message.
/// Consuming it would move the position past a message nobody received intact, losing it
/// for every later receiver.
///
/// A broadcast subscriber's position is its own: what it consumes does not move any other
/// subscriber's. Not consuming keeps the message owed to this subscriber: a lossless
/// producer keeps it in the ring while the subscriber stays attached (so one subscribing at
/// [`StartAt::Oldest`] meanwhile gets it too), and may reclaim it once the subscriber
/// detaches, as after any subscriber leaves; a lossy producer never waits for anyone.
///
/// # Example
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// tx.send(b"in place")?;
/// let m = rx.recv_ref()?;
/// assert_eq!(m.len(), 8);
/// assert!(!m.is_empty());
/// assert_eq!(m.bytes().read_pod::<[u8; 2]>(3), Some(*b"pl"));
/// assert!(m.is_intact()); // nothing overwrote it (SPSC: nothing can)
/// assert_eq!(m.to_vec(), b"in place");
/// // The record (an 8-byte header and the message) stays in use until the guard goes.
/// assert_eq!(tx.channel().stat().bytes_used, 16);
/// drop(m);
/// assert_eq!(tx.channel().stat().bytes_used, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RecvRef<'a> {
    rx: &'a mut Receiver,
    m: Msg,
    /// [`is_intact`](RecvRef::is_intact) said true: the caller has the message, so drop
    /// consumes it without asking again (a lap after that is not this message's loss).
    confirmed: std::cell::Cell<bool>,
}

impl std::fmt::Debug for RecvRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvRef").field("len", &self.m.len).finish()
    }
}

impl RecvRef<'_> {
    /// The message bytes, in the ring.
    ///
    /// # Example
    /// See [`RecvRef`].
    #[inline]
    pub fn bytes(&self) -> Bytes<'_> {
        // SAFETY: the record lies inside the ring (validated by the peek) and stays ours
        // until this guard is dropped (lossy broadcast: see `is_intact`); the view borrows
        // the guard.
        unsafe { Bytes::new(self.rx.shared.ring.ptr(self.m.data), self.m.len as usize) }
    }

    /// Message length.
    ///
    /// # Example
    /// See [`RecvRef`].
    pub fn len(&self) -> usize {
        self.m.len as usize
    }

    /// Always false (a message has at least one byte).
    ///
    /// # Example
    /// See [`RecvRef`].
    pub fn is_empty(&self) -> bool {
        self.m.len == 0
    }

    /// Copies the message out.
    ///
    /// # Example
    /// See [`RecvRef`].
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes().to_vec()
    }

    /// Whether the bytes read so far are the message as sent: true unless the channel's
    /// file was truncated under the mapping, or the kernel could not supply a page of it
    /// (the bytes then read as zeros: the next receive reports
    /// [`Truncated`](RecvError::Truncated) or
    /// [`PageUnavailable`](RecvError::PageUnavailable)), or, on a lossy broadcast channel, the
    /// producer overwrote the message, or, on a lossless one, the subscriber was dropped as
    /// dead (the next receive reports [`Evicted`](RecvError::Evicted)) and the producer
    /// overwrote the message. Call after reading. A message that is not intact is not
    /// consumed when the guard drops (see [`RecvRef`]).
    ///
    /// Once it returned true, the message counts as received: if the producer overwrites it
    /// later, before this guard is dropped, the next receive's
    /// [`Lagged`](RecvError::Lagged) count does not include it.
    ///
    /// # Example
    /// A lossy producer laps a subscriber while it holds a message:
    /// ```
    /// use mapipc::channel::{ChannelOptions, Kind, Policy, RecvError, StartAt};
    /// let chan = ChannelOptions::new(Kind::Broadcast)
    ///     .capacity(4096)
    ///     .policy(Policy::Lossy)
    ///     .anonymous()?;
    /// let mut tx = chan.sender()?;
    /// let mut sub = chan.subscribe(StartAt::Oldest)?;
    /// tx.send(&[1; 100])?;
    /// let m = sub.recv_ref()?;
    /// let copy = m.to_vec();
    /// for _ in 0..100 {
    ///     tx.send(&[2; 100])?; // never waits: overwrites what `sub` holds
    /// }
    /// assert!(!m.is_intact()); // `copy` may be torn: drop it
    /// drop((m, copy));
    /// match sub.recv() {
    ///     Err(RecvError::Lagged { missed }) => assert!(missed > 0),
    ///     other => panic!("expected Lagged, got {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_intact(&self) -> bool {
        // A cut page reads as the SIGBUS handler's throw-away page, and counts a fault.
        if self.rx.shared.check_truncated().is_err() {
            return false;
        }
        match &self.rx.core {
            RxCore::Sub { s, lossy, .. } => {
                let ring = &self.rx.shared.ring;
                // Lossless: the producer keeps the record for as long as our entry is ours;
                // one taken from us (see `RecvError::Evicted`) no longer protects it.
                let intact = s.still_intact(ring, s.pos())
                    || !*lossy && s.registration().held_after_reclaim(ring);
                if intact {
                    self.confirmed.set(true);
                }
                intact
            }
            _ => true,
        }
    }

    /// Leaves the message in the channel instead of consuming it: the next receive returns
    /// it again. For a consumer that could not hand the message on (its output failed, a
    /// disk is full): nothing it could not deliver is lost. (A broadcast subscriber's
    /// position is its own: the message stays for this subscriber.)
    ///
    /// # Example
    /// ```
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"important")?;
    /// let m = rx.recv_ref()?;
    /// // Writing it out failed (say, the disk is full): keep it for the next attempt.
    /// m.leave();
    /// assert_eq!(rx.recv()?, b"important");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn leave(self) {
        // Not consumed: our position stays at this record. Nothing else is owed (what was
        // consumed before is published by the next receive or drop of the receiver).
        std::mem::forget(self);
    }
}

impl Drop for RecvRef<'_> {
    #[inline]
    fn drop(&mut self) {
        let m = self.m;
        if self.confirmed.get() {
            self.rx.consume_confirmed(&m);
        } else if self.rx.shared.is_poisoned() {
            // Read from a poisoned mapping (what was read may be zeros; `is_intact` says
            // false): not consumed, as a copying receive does not consume it either. The
            // next receive reports the fault, and a receiver attaching once the file is
            // whole again gets the message.
            self.rx.held_poisoned = true;
        } else {
            // A torn broadcast record is not consumed; the next receive reports the lag.
            self.rx.consume(&m);
        }
        self.rx.publish();
    }
}

/// Blocking iterator from [`Receiver::iter`].
///
/// # Example
/// Receives until the producer is gone:
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// let t = std::thread::spawn(move || {
///     for i in 0..1000u32 {
///         tx.send(&i.to_le_bytes()).unwrap();
///     }
///     // `tx` is dropped here: the iteration ends once all is received.
/// });
/// let mut n = 0u32;
/// for m in rx.iter() {
///     assert_eq!(m?, n.to_le_bytes());
///     n += 1;
/// }
/// assert_eq!(n, 1000);
/// t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
            Err(e @ RecvError::Lagged { .. }) => Some(Err(e)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Non-blocking iterator from [`Receiver::try_iter`]: ends at the first empty poll (or
/// error), skipping [`Lagged`](TryRecvError::Lagged) reports.
///
/// # Example
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// for word in [&b"a"[..], b"b", b"c"] {
///     tx.send(word)?;
/// }
/// let got: Vec<Vec<u8>> = rx.try_iter().collect();
/// assert_eq!(got, [b"a", b"b", b"c"]);
/// assert_eq!(rx.try_iter().next(), None); // empty now; the producer is still there
/// tx.send(b"d")?;
/// assert_eq!(rx.try_iter().next(), Some(b"d".to_vec()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TryIter<'a> {
    rx: &'a mut Receiver,
}

impl Iterator for TryIter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.rx.try_recv() {
                Ok(v) => return Some(v),
                Err(TryRecvError::Lagged { .. }) => continue,
                Err(_) => return None,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
impl Receiver {
    /// Test builds: leaves as a killed process would: nothing published, the registration
    /// left in place; only the region peer is dropped, so the others see the consumer dead.
    pub(crate) fn abandon(self) {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again, and each field is read out once.
        let (peer, shared) = unsafe { (std::ptr::read(&me._peer), std::ptr::read(&me.shared)) };
        drop(peer);
        drop(shared);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::super::mpsc::crash;
    use super::super::{Channel, ChannelOptions, Kind, SendError};
    use super::Receiver;

    fn mpsc_channel() -> Channel {
        ChannelOptions::new(Kind::Mpsc)
            .capacity(4096)
            .max_producers(4)
            .anonymous()
            .unwrap()
    }

    fn receiver(chan: &Channel) -> Receiver {
        let mut rx = chan.receiver().unwrap();
        rx.set_abort_timeout(Duration::from_millis(2));
        rx.set_check_interval(Duration::from_millis(1));
        rx
    }

    /// Receives with the consumer made to die at crash point `point` (which it must reach),
    /// then leaves it as a killed process would.
    fn killed_at(point: &'static str, mut rx: Receiver) {
        crash::arm(point);
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }));
        assert!(crash::disarm(), "crash point {point:?} not reached");
        assert!(died.is_err());
        rx.abandon();
    }

    /// A consumer killed anywhere between revoking a live producer's stuck claim (the
    /// abort timeout) and the end of counting it: the next consumer counts it once, holds
    /// it, and delivers what follows.
    #[test]
    fn a_consumer_killed_while_revoking_a_claim_leaves_it_counted_once() {
        for point in ["revoke noted", "revoked", "revoke counted"] {
            let chan = mpsc_channel();
            let mut slow = chan.sender().unwrap();
            let mut fast = chan.sender().unwrap();
            let grant = slow.reserve(8).unwrap(); // claimed, never committed in time
            fast.send(b"after").unwrap();
            killed_at(point, receiver(&chan));
            let mut rx = receiver(&chan);
            assert_eq!(rx.recv().unwrap(), b"after", "at {point:?}");
            assert_eq!(chan.stat().aborted, 1, "killed at {point:?}");
            assert!(matches!(grant.commit(), Err(SendError::Aborted)));
            fast.send(b"later").unwrap();
            assert_eq!(rx.recv().unwrap(), b"later");
            assert_eq!(chan.stat().aborted, 1, "killed at {point:?}");
        }
    }

    /// Garbage in the producers' message counts (a hostile peer) raises the received count
    /// a consumer attaching repairs from them by at most a ring of records (4096 / 32).
    #[test]
    fn garbage_producer_counts_raise_received_by_a_ring_of_records_at_most() {
        use super::super::layout::off;
        use super::super::words::Words;
        use std::sync::atomic::Ordering;
        let chan = mpsc_channel();
        let ring = &chan.shared.ring;
        for (count, want) in [(u64::MAX, 0), (129, 0), (128, 128), (u64::MAX - 5, 128)] {
            ring.ctl_store(off::producer(1) + 8, count, Ordering::Relaxed);
            drop(chan.receiver().unwrap());
            assert_eq!(chan.stat().received, want, "count {count}");
        }
    }

    /// A consumer killed anywhere between meeting a record its producer gave up (a dropped
    /// grant) and the end of skipping it: the next consumer counts it once.
    #[test]
    fn a_consumer_killed_while_skipping_an_aborted_record_leaves_it_counted_once() {
        for point in ["abort noted", "abort counted", "abort freed"] {
            let chan = mpsc_channel();
            let mut tx = chan.sender().unwrap();
            drop(tx.reserve(40).unwrap()); // given up: aborted
            tx.send(b"after").unwrap();
            killed_at(point, receiver(&chan));
            let mut rx = receiver(&chan);
            assert_eq!(rx.recv().unwrap(), b"after", "at {point:?}");
            assert_eq!(chan.stat().aborted, 1, "killed at {point:?}");
        }
    }
}
