//! The SPSC channel against the raw shared-memory floors (issue 4):
//! `cargo bench -p mapipc --bench channel`.
//!
//! Every variant runs between this process (pinned to one CPU) and a forked child (pinned to
//! another when there are two), the child created for that variant only and killed after it,
//! so that a busy-polling child never competes with the next variant's. Messages carry a
//! sequence number in their first 8 bytes and a check word in their last 8 (the harness's
//! `frame` format); the child checks both on every message and exits on a mismatch, which a
//! watchdog thread turns into a failed run.
//!
//! Round trip (one message each way, timed in the parent; 8 and 64 bytes):
//! - `shm_spin_floor`: the `shm-spin-floor` baton, busy spin;
//! - `two_line_floor` (for information): the least any pair of one-way channels can cost, one
//!   cache line each way instead of the baton's one line for both: a sequence word and the
//!   message slot per direction, no flow control (a ping-pong needs none; round trips only).
//!   A channel pair pays at least this. At 8 B it costs more than the one-line baton (both
//!   directions share the baton's line); at 64 B less (the baton's replies rewrite the lines
//!   the peer just read);
//! - `moving_floor` (for information): the two-line floor with each direction's mailbox
//!   moving through a ring of the channel's capacity, a slot per message the size of the
//!   channel's record (as a channel's records move through its ring): what a pair of channels
//!   pays for touching fresh lines, before any flow control, validation or API;
//! - `ring_floor`: two `ring-floor` rings, one each way, flushed after every message (for
//!   information: a ring that publishes an index, as the channel does, so each hand-over moves
//!   the index's cache line and then the slot's);
//! - `spsc_busy_poll`: a pair of channels, [`WaitStrategy::BusyPoll`] on all four ends, `send`
//!   and `recv_ref`;
//! - `futex_floor`: the `futex-floor` baton, `FUTEX_WAIT`/`FUTEX_WAKE` on every hand-over;
//! - `spsc_parked`: the same channels with [`WaitStrategy::Park`]: every receive sleeps at once;
//! - `spsc_spin_then_park`: the library default strategy (for information: a reply that comes
//!   within its spin window never parks).
//!
//! Throughput (the parent streams, the child checks every message; the time runs until the
//! child has acknowledged the last one; 64 bytes and 64 KiB):
//! - `ring_floor`: the `ring-floor` fixed-slot ring, indices published every 32 messages;
//! - `spsc_batched`: [`Sender::send_batched`] (one copy of the whole message, the record
//!   written whole inside the batch) and [`Sender::flush`] every 32 messages (the floor's
//!   policy); with `MAPIPC_CHANNEL_GRANT=1`, the zero-copy path instead:
//!   [`Sender::reserve`], one copy into the grant, [`Grant::commit_batched`] (until
//!   2026-11-27 19:02 UTC, the only path measured);
//!   the child receives with [`Receiver::drain`] of up to 32 messages, reading the words in
//!   place and handing the space back once per call (as the floor's consumer publishes its
//!   index every 32 messages);
//! - `spsc_send`: plain [`Sender::send`], which publishes every message (for information);
//! - `spsc_batched` at 56 B (for information): 64-byte records, one cache line per message
//!   like the floor's 64-byte slots, where a 64-byte message takes a 72-byte record (its
//!   8-byte header): how much of the 64 B gap is the header's extra bytes.
//!
//! One thread (`one_thread`, for information): the CPU cost per message of the ring floor and
//! of the batched channel path with nothing in the way (no other process, no line transfers):
//! 32 messages of 64 bytes written, published, and read back in place by the same thread.
//!
//! Both ends busy-poll in the throughput variants, as the ring floor does. Each channel gets
//! the ring floor's bytes of ring (its `slots_for` slots times their size, rounded up to a
//! power of two): the same footprint, so the channel holds fewer messages than the floor has
//! slots when its records' 8-byte headers do not fit in the rounding (63 messages of 64 KiB
//! in 4 MiB against the floor's 64). Until 2026-11-27 the channels held as many messages as
//! the floor has slots, rounded up to a power of two of bytes, which doubled the 64 B and
//! 64 KiB rings (the 64 KiB ratio was 0.08 lower at 8 MiB than at 4 MiB).
//! `MAPIPC_CHANNEL_SMALL_RING=8192` (a power of two, at least 4096) gives the ring floor and
//! the channels of the 8 and 64 B variants that many bytes of ring each instead: how much of
//! the figures is the rings' cache footprint.
//!
//! Targets (issue 4), as ratios measured side by side in one run: busy-poll round trip at most
//! 1.3x `shm_spin_floor`; 64 B throughput at least 1.0x `ring_floor` msgs/s; 64 KiB throughput
//! at least 0.9x `ring_floor` GB/s; parked round trip at most 1.1x `futex_floor`.
//!
//! Criterion runs the variants one after the other, and on a shared machine the load drifts
//! between them, so before criterion the bench alternates short blocks of every variant for
//! `MAPIPC_CHANNEL_PAIRED` rounds (default 10; 0 skips this) and prints the median of the
//! per-round ratios next to the targets: those are the numbers to compare.
//! `MAPIPC_CHANNEL_ONLY=spsc_busy_poll,two_line_floor:8` limits the paired rounds to the
//! variants named (`name` or `name:size`), for quicker experiments. Results:
//! BENCHMARKS.md, "Channel (issue 4)".
//!
//! Streams stamp each message (its sequence number into its first and last 8 bytes) right
//! before sending it, and every variant copies it with wide loads that cannot take their
//! data from those narrow stores: each copy waits until the stamp reaches the cache, behind
//! the previous message's stores into the ring, so every producer runs at about one
//! cache-line hand-over per message. That is what a producer writing a message and then
//! sending it does. `MAPIPC_CHANNEL_STAMP_AHEAD=1` stamps each message four sends ahead
//! instead, which shows what the rings do without that stall (BENCHMARKS.md, session of
//! 2026-11-27, 11:16 UTC); the targets are stated for the default.
//!
//! Either way a producer's stores set its pace: stores become visible in order, each ring
//! store waits for its line to come back from the consumer, and every store behind it (a
//! saved register, a struct spilled to the stack, a counter) waits in the store buffer too
//! (BENCHMARKS.md, session of 2026-11-27, 16:32 UTC).

#[allow(dead_code)]
#[path = "../../mapipc-bench/src/frame.rs"]
mod frame;
#[allow(dead_code)]
#[path = "../../mapipc-bench/src/floors/futex.rs"]
mod futex_floor;
#[allow(dead_code)]
#[path = "../../mapipc-bench/src/floors/ring.rs"]
mod ring_floor;
#[allow(dead_code)]
#[path = "../../mapipc-bench/src/floors/slot.rs"]
mod slot;
#[allow(dead_code)]
#[path = "../../mapipc-bench/src/floors/spin.rs"]
mod spin_floor;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use frame::{Frame, END};
use mapipc::channel::{Channel, Receiver, Sender, WaitStrategy};
use mapipc::os::process::pin_to_cpu;

// ---------------------------------------------------------------------------------------
// Ends: one process's way to send to and receive from the other.

trait End {
    /// Copies the whole message into the transport; it may stay unpublished until `flush`.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    /// Publishes everything sent.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Waits for the next message and reads its head and tail words in place.
    fn recv(&mut self, size: usize) -> io::Result<Frame>;
}

fn frame_from(read: impl Fn(usize) -> Option<u64>, size: usize) -> Frame {
    Frame {
        head: read(0).unwrap_or(0),
        tail: read(frame::tail_offset(size)).unwrap_or(0),
    }
}

struct SpinEnd(spin_floor::Side);

impl End for SpinEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0.send(msg)
    }
    fn recv(&mut self, size: usize) -> io::Result<Frame> {
        self.0.recv(|m| frame_from(|at| m.read_u64_le(at), size))
    }
}

/// `two_line_floor` and `moving_floor`: one mailbox per direction, each a sequence word and
/// the message right after it (as the baton's slot), busy spin, no flow control (a ping-pong
/// needs none), in one anonymous shared mapping: each direction's mailboxes are `slots` slots
/// of `slot` bytes, message `n` in slot `n % slots`; the `aborted` word follows them.
/// `two_line_floor`: one slot of 256 bytes per direction, so the two never share a cache line
/// or an adjacent-line prefetch pair. `moving_floor`: slots the size of a channel record
/// (`8 + len` rounded up to 8) filling a ring of the channel's capacity, as a channel's
/// records move through its ring.
struct MailboxSetup {
    map: Arc<mapipc::map::Mmap>,
    name: &'static str,
    len: usize,
    slot: usize,
    slots: usize,
}

impl MailboxSetup {
    fn two_line(len: usize) -> io::Result<MailboxSetup> {
        if len == 0 || 8 + len > 256 {
            return Err(io::Error::other(
                "two_line_floor: messages of 1 to 248 bytes",
            ));
        }
        MailboxSetup::new("two_line_floor", len, 256, 1)
    }

    fn moving(len: usize, ring: usize) -> io::Result<MailboxSetup> {
        let slot = 8 + len.next_multiple_of(8);
        if ring < slot {
            return Err(io::Error::other("moving_floor: a ring smaller than a slot"));
        }
        MailboxSetup::new("moving_floor", len, slot, ring / slot)
    }

    fn new(name: &'static str, len: usize, slot: usize, slots: usize) -> io::Result<MailboxSetup> {
        let map = mapipc::map::MapOptions::new()
            .len(2 * slot * slots + 128)
            .populate()
            .map_anonymous()
            .map_err(io::Error::other)?;
        Ok(MailboxSetup {
            map: Arc::new(map),
            name,
            len,
            slot,
            slots,
        })
    }

    fn ring_bytes(&self) -> usize {
        self.slot * self.slots
    }

    fn end(&self, out: usize, inn: usize) -> MailboxEnd {
        MailboxEnd {
            map: self.map.clone(),
            name: self.name,
            len: self.len,
            slot: self.slot,
            slots: self.slots,
            out,
            inn,
            aborted: 2 * self.ring_bytes(),
            sent: 0,
            seen: 0,
            out_at: 0,
            in_at: 0,
        }
    }
}

impl Setup for MailboxSetup {
    type End = MailboxEnd;
    fn client(&self) -> io::Result<MailboxEnd> {
        Ok(self.end(0, self.ring_bytes()))
    }
    fn server(&self) -> io::Result<MailboxEnd> {
        Ok(self.end(self.ring_bytes(), 0))
    }
    fn abort(&self) {
        if let Ok(w) = self.map.atomic_u64(2 * self.ring_bytes() as u64) {
            w.store(1, Ordering::Release);
        }
    }
}

struct MailboxEnd {
    map: Arc<mapipc::map::Mmap>,
    name: &'static str,
    len: usize,
    slot: usize,
    slots: usize,
    /// Offsets of our outgoing and incoming mailboxes, and of the `aborted` word.
    out: usize,
    inn: usize,
    aborted: usize,
    /// Messages sent, and received.
    sent: u64,
    seen: u64,
    /// Offsets of the next outgoing and incoming slots (kept, not computed from the counts:
    /// a division on every hand-over would cost more than the floor).
    out_at: usize,
    in_at: usize,
}

impl MailboxEnd {
    /// The slot offset after `at`, wrapping at the end of the mailboxes.
    fn advance(&self, at: usize) -> usize {
        if at + self.slot == self.slot * self.slots {
            0
        } else {
            at + self.slot
        }
    }
}

impl End for MailboxEnd {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if msg.len() != self.len {
            return Err(io::Error::other(format!(
                "{}: wrong message length",
                self.name
            )));
        }
        let at = self.out + self.out_at;
        self.out_at = self.advance(self.out_at);
        let seq = self.map.atomic_u64(at as u64).map_err(io::Error::other)?;
        let p = self.map.as_mut_ptr().wrapping_add(at + 8);
        // SAFETY: `at + 8 + len <= out + slots * slot`, inside the live mapping (sized in
        // `new`; `8 + len <= slot`); `msg` is private memory. In a ping-pong the peer reads
        // this slot only after our Release below, and has answered (so is done with it)
        // before we come back to it.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p, msg.len()) };
        self.sent += 1;
        seq.store(self.sent, Ordering::Release);
        Ok(())
    }
    #[inline]
    fn recv(&mut self, size: usize) -> io::Result<Frame> {
        let at = self.inn + self.in_at;
        let seq = self.map.atomic_u64(at as u64).map_err(io::Error::other)?;
        let aborted = self
            .map
            .atomic_u64(self.aborted as u64)
            .map_err(io::Error::other)?;
        let want = self.seen + 1;
        while seq.load(Ordering::Acquire) != want {
            if aborted.load(Ordering::Relaxed) != 0 {
                return Err(io::Error::other(format!("{}: aborted", self.name)));
            }
            std::hint::spin_loop();
        }
        self.seen = want;
        self.in_at = self.advance(self.in_at);
        let m = slot::Slot::new(&self.map, at + 8, self.len, self.name);
        Ok(frame_from(|at| m.read_u64_le(at), size))
    }
}

struct FutexEnd(futex_floor::Side);

impl End for FutexEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0.send(msg)
    }
    fn recv(&mut self, size: usize) -> io::Result<Frame> {
        self.0.recv(|m| frame_from(|at| m.read_u64_le(at), size))
    }
}

struct RingEnd {
    tx: ring_floor::Producer,
    rx: ring_floor::Consumer,
}

impl End for RingEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.push(msg)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tx.flush()
    }
    fn recv(&mut self, size: usize) -> io::Result<Frame> {
        self.rx.pop(|m| frame_from(|at| m.read_u64_le(at), size))
    }
}

/// Messages committed between two publications in `spsc_batched` (as the ring floor).
const PUBLISH_EVERY: u32 = 32;

struct SpscEnd {
    tx: Sender,
    rx: Receiver,
    batched: bool,
    /// Batched sends through a grant (`MAPIPC_CHANNEL_GRANT`) rather than `send_batched`.
    grant: bool,
    unpublished: u32,
    /// Batched receive: frames drained but not yet returned by `recv`.
    inbox: std::collections::VecDeque<Frame>,
}

impl End for SpscEnd {
    /// Inlined into the measuring loop, as the floors' sends are: a call per message would
    /// add the stores of its frame (saved registers, return address) to every message, and a
    /// producer's stores are what its stream is made of (see the module docs).
    #[inline(always)]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if !self.batched {
            return self.tx.send(msg).map_err(io::Error::other);
        }
        if self.grant {
            let mut grant = self.tx.reserve(msg.len()).map_err(io::Error::other)?;
            grant.bytes().copy_from_slice(msg);
            grant
                .commit_batched()
                .expect("spsc commits are never aborted");
        } else {
            self.tx.send_batched(msg).map_err(io::Error::other)?;
        }
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
    /// Reads the words in place; the space goes back when the guard drops. (As the `spsc`
    /// transport of `mapipc bench`.)
    /// Batched: [`Receiver::drain`] up to 32 at a time, busy-polling while empty.
    #[inline]
    fn recv(&mut self, size: usize) -> io::Result<Frame> {
        if self.batched {
            while self.inbox.is_empty() {
                let inbox = &mut self.inbox;
                let n = self
                    .rx
                    .drain(PUBLISH_EVERY as usize, |b| {
                        inbox.push_back(frame_from(
                            |at| b.read_pod::<u64>(at).map(u64::from_le),
                            size,
                        ))
                    })
                    .map_err(io::Error::other)?;
                if n == 0 {
                    std::hint::spin_loop();
                }
            }
            return Ok(self.inbox.pop_front().expect("drained above"));
        }
        let m = self.rx.recv_ref().map_err(io::Error::other)?;
        let bytes = m.bytes();
        Ok(frame_from(
            |at| bytes.read_pod::<u64>(at).map(u64::from_le),
            size,
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Setups: what both processes share, created before the fork; each attaches its end after.

trait Setup: Send + Sync + 'static {
    type End: End;
    fn client(&self) -> io::Result<Self::End>;
    fn server(&self) -> io::Result<Self::End>;
    /// Unblocks the client's waits once the server is gone (floors only; channels notice a
    /// dead peer themselves).
    fn abort(&self) {}
}

struct SpinSetup(spin_floor::SpinFloor);

impl Setup for SpinSetup {
    type End = SpinEnd;
    fn client(&self) -> io::Result<SpinEnd> {
        Ok(SpinEnd(self.0.side_a()))
    }
    fn server(&self) -> io::Result<SpinEnd> {
        Ok(SpinEnd(self.0.side_b()))
    }
    fn abort(&self) {
        self.0.abort();
    }
}

struct FutexSetup(futex_floor::FutexFloor);

impl Setup for FutexSetup {
    type End = FutexEnd;
    fn client(&self) -> io::Result<FutexEnd> {
        Ok(FutexEnd(self.0.side_a()))
    }
    fn server(&self) -> io::Result<FutexEnd> {
        Ok(FutexEnd(self.0.side_b()))
    }
    fn abort(&self) {
        self.0.abort();
    }
}

struct RingSetup {
    to_server: ring_floor::RingFloor,
    to_client: ring_floor::RingFloor,
}

impl Setup for RingSetup {
    type End = RingEnd;
    fn client(&self) -> io::Result<RingEnd> {
        Ok(RingEnd {
            tx: self.to_server.producer(),
            rx: self.to_client.consumer(),
        })
    }
    fn server(&self) -> io::Result<RingEnd> {
        Ok(RingEnd {
            tx: self.to_client.producer(),
            rx: self.to_server.consumer(),
        })
    }
    fn abort(&self) {
        self.to_server.abort();
        self.to_client.abort();
    }
}

struct SpscSetup {
    to_server: Channel,
    to_client: Channel,
    wait: WaitStrategy,
    batched: bool,
}

impl SpscSetup {
    fn end(&self, out: &Channel, inn: &Channel) -> io::Result<SpscEnd> {
        let mut tx = out.sender().map_err(io::Error::other)?;
        let mut rx = inn.receiver().map_err(io::Error::other)?;
        tx.set_wait_strategy(self.wait);
        rx.set_wait_strategy(self.wait);
        Ok(SpscEnd {
            tx,
            rx,
            batched: self.batched,
            unpublished: 0,
            grant: std::env::var_os("MAPIPC_CHANNEL_GRANT").is_some(),
            inbox: std::collections::VecDeque::with_capacity(PUBLISH_EVERY as usize),
        })
    }
}

impl Setup for SpscSetup {
    type End = SpscEnd;
    fn client(&self) -> io::Result<SpscEnd> {
        self.end(&self.to_server, &self.to_client)
    }
    fn server(&self) -> io::Result<SpscEnd> {
        self.end(&self.to_client, &self.to_server)
    }
}

/// `MAPIPC_CHANNEL_SMALL_RING`: for messages of at most 64 bytes, the bytes of ring both the
/// ring floor and the channels get instead of their defaults (a power of two).
fn small_ring(size: usize) -> Option<usize> {
    let v = std::env::var("MAPIPC_CHANNEL_SMALL_RING").ok()?;
    (size <= 64).then(|| {
        v.parse::<usize>()
            .ok()
            .filter(|b| b.is_power_of_two() && *b >= 4096)
            .unwrap_or_else(|| panic!("MAPIPC_CHANNEL_SMALL_RING: a power of two, at least 4096"))
    })
}

/// The ring floor's slot count for `size`-byte messages (as `RingFloorTransport::slots_for`):
/// about 1 MiB of slots, between 64 and 4096; or `MAPIPC_CHANNEL_SMALL_RING` bytes of them.
fn ring_slots(size: usize) -> usize {
    if let Some(bytes) = small_ring(size) {
        return bytes / size.next_multiple_of(8);
    }
    let fit = (1usize << 20) / size.next_multiple_of(8);
    (1usize << (usize::BITS - 1 - fit.max(1).leading_zeros())).clamp(64, 4096)
}

/// A channel with the ring floor's bytes of ring for `size`-byte messages (its slots times
/// their size, rounded up to a power of two, at least two records); or
/// `MAPIPC_CHANNEL_SMALL_RING` bytes. The same footprint, so the channel holds fewer messages
/// than the floor has slots when its 8-byte headers do not fit in the rounding (64 KiB: 63
/// messages in 4 MiB against the floor's 64; 64 B: 3640 against 4096).
fn spsc_capacity(size: usize) -> usize {
    if let Some(bytes) = small_ring(size) {
        return bytes;
    }
    let record = 8 + size.next_multiple_of(8);
    (ring_slots(size) * size.next_multiple_of(8))
        .max(2 * record)
        .next_power_of_two()
}

// ---------------------------------------------------------------------------------------
// The forked server and the parent's side.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum What {
    RoundTrip,
    Throughput,
}

/// Child exit codes.
const BAD_RECV: i32 = 2;
const BAD_FRAME: i32 = 3;
const BAD_COUNT: i32 = 4;
const BAD_SEQ: i32 = 5;
const BAD_SEND: i32 = 6;
const BAD_ATTACH: i32 = 7;

/// The child's loop: checks every message; echoes each one (round trip) or only the end
/// marker, which carries the number of messages streamed (throughput).
fn serve<E: End>(ep: &mut E, size: usize, what: What) -> i32 {
    let mut msg = frame::template(size);
    let mut expected = 0u64;
    loop {
        let Ok(f) = ep.recv(size) else {
            return BAD_RECV;
        };
        let Ok(seq) = f.check(size) else {
            return BAD_FRAME;
        };
        let answer = if seq & END != 0 {
            if seq & !END != expected {
                return BAD_COUNT;
            }
            expected = 0;
            true
        } else {
            if seq != expected {
                return BAD_SEQ;
            }
            expected += 1;
            what == What::RoundTrip
        };
        if answer {
            frame::stamp(&mut msg, seq);
            if ep.send(&msg).is_err() || ep.flush().is_err() {
                return BAD_SEND;
            }
        }
    }
}

/// `MAPIPC_CHANNEL_STAMP_AHEAD` set: streams stamp each message a few sends ahead (see the
/// module docs).
fn stamp_ahead() -> bool {
    static AHEAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AHEAD.get_or_init(|| std::env::var_os("MAPIPC_CHANNEL_STAMP_AHEAD").is_some())
}

/// A running variant: the parent's end and the forked server.
trait Running {
    /// Runs `iters` round trips or streams `iters` messages; the time it took.
    fn run(&mut self, iters: u64) -> Duration;
}

struct Pair<S: Setup> {
    client: S::End,
    msg: Vec<u8>,
    size: usize,
    what: What,
    /// Next round-trip sequence number (the server expects them consecutive).
    seq: u64,
    pid: i32,
    stop: Arc<AtomicBool>,
    watchdog: Option<thread::JoinHandle<()>>,
}

impl<S: Setup> Pair<S> {
    fn start(name: &str, setup: S, size: usize, what: What, server_cpu: Option<usize>) -> Self {
        let setup = Arc::new(setup);
        // SAFETY: `fork` has no memory-safety preconditions. The child pins itself, attaches
        // its end (which may allocate: glibc's allocator is fork-safe, and this thread is the
        // only one of ours doing anything), serves, and ends with `_exit`, never returning
        // into criterion.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: plain prctl with integer arguments: die with the parent.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            if let Some(cpu) = server_cpu {
                pin_to_cpu(cpu);
            }
            let code = match setup.server() {
                Ok(mut ep) => serve(&mut ep, size, what),
                Err(_) => BAD_ATTACH,
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        let client = setup
            .client()
            .unwrap_or_else(|e| panic!("{name}: cannot attach the client: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let (stop, setup, name) = (stop.clone(), setup.clone(), name.to_string());
            thread::spawn(move || watch(pid, &stop, &*setup, &name))
        };
        Pair {
            client,
            msg: frame::template(size),
            size,
            what,
            seq: 0,
            pid,
            stop,
            watchdog: Some(watchdog),
        }
    }

    fn round_trips(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let seq = self.seq;
            frame::stamp(&mut self.msg, seq);
            self.client.send(&self.msg).expect("send");
            self.client.flush().expect("flush");
            let got = self.client.recv(self.size).expect("recv").check(self.size);
            assert_eq!(got, Ok(seq), "round trip {seq}: wrong echo");
            self.seq += 1;
        }
        start.elapsed()
    }

    fn stream(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        if stamp_ahead() {
            // Each message stamped 4 sends before its own, in one of 8 buffers: the copy's
            // wide loads then never wait for the stamp's narrow stores (see the module docs).
            let mut bufs: Vec<Vec<u8>> = (0..8).map(|_| self.msg.clone()).collect();
            for seq in 0..iters.min(4) {
                frame::stamp(&mut bufs[seq as usize % 8], seq);
            }
            for seq in 0..iters {
                if seq + 4 < iters {
                    frame::stamp(&mut bufs[(seq + 4) as usize % 8], seq + 4);
                }
                self.client.send(&bufs[seq as usize % 8]).expect("send");
            }
        } else {
            for seq in 0..iters {
                frame::stamp(&mut self.msg, seq);
                self.client.send(&self.msg).expect("send");
            }
        }
        let marker = END | iters;
        frame::stamp(&mut self.msg, marker);
        self.client.send(&self.msg).expect("send");
        self.client.flush().expect("flush");
        let got = self.client.recv(self.size).expect("recv").check(self.size);
        let elapsed = start.elapsed();
        assert_eq!(got, Ok(marker), "stream of {iters}: wrong acknowledgement");
        elapsed
    }
}

impl<S: Setup> Running for Pair<S> {
    fn run(&mut self, iters: u64) -> Duration {
        match self.what {
            What::RoundTrip => self.round_trips(iters),
            What::Throughput => self.stream(iters),
        }
    }
}

impl<S: Setup> Drop for Pair<S> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        let _ = mapipc::os::process::kill9(self.pid as u32);
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; `pid` is our unreaped child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// Ends the whole run if the server exits on its own (it only does on a failed check).
fn watch<S: Setup>(pid: i32, stop: &AtomicBool, setup: &S, name: &str) {
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: `siginfo_t` is plain data; zeroed is a valid value to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child for `Drop` to reap.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: `si_pid` is valid for the SIGCHLD information `waitid` fills in.
        if r == 0 && unsafe { info.si_pid() } == pid {
            // SAFETY: as above, for `si_status`.
            let code = unsafe { info.si_status() };
            setup.abort();
            eprintln!(
                "channel bench: the {name} server exited with status {code} \
                 (2 receive failed, 3 corrupted message, 4 wrong count, 5 wrong sequence \
                 number, 6 send failed, 7 attach failed)"
            );
            std::process::exit(1);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// The variants.

struct Variant {
    name: &'static str,
    what: What,
    size: usize,
}

const VARIANTS: [Variant; 23] = [
    rt("shm_spin_floor", 8),
    rt("two_line_floor", 8),
    rt("moving_floor", 8),
    rt("ring_floor", 8),
    rt("spsc_busy_poll", 8),
    rt("shm_spin_floor", 64),
    rt("two_line_floor", 64),
    rt("moving_floor", 64),
    rt("ring_floor", 64),
    rt("spsc_busy_poll", 64),
    rt("futex_floor", 8),
    rt("spsc_parked", 8),
    rt("futex_floor", 64),
    rt("spsc_parked", 64),
    rt("spsc_spin_then_park", 8),
    rt("spsc_spin_then_park", 64),
    tp("ring_floor", 64),
    tp("spsc_batched", 64),
    tp("spsc_send", 64),
    tp("spsc_batched", 56),
    tp("ring_floor", 65536),
    tp("spsc_batched", 65536),
    tp("spsc_send", 65536),
];

const fn rt(name: &'static str, size: usize) -> Variant {
    Variant {
        name,
        what: What::RoundTrip,
        size,
    }
}

const fn tp(name: &'static str, size: usize) -> Variant {
    Variant {
        name,
        what: What::Throughput,
        size,
    }
}

fn spsc(size: usize, wait: WaitStrategy, batched: bool) -> io::Result<SpscSetup> {
    let chan = || Channel::anonymous(spsc_capacity(size)).map_err(io::Error::other);
    Ok(SpscSetup {
        to_server: chan()?,
        to_client: chan()?,
        wait,
        batched,
    })
}

impl Variant {
    fn label(&self) -> String {
        format!("{} {} B", self.name, self.size)
    }

    fn start(&self, server_cpu: Option<usize>) -> Box<dyn Running> {
        let (name, size, what) = (self.label(), self.size, self.what);
        let go = |r: io::Result<Box<dyn Running>>| {
            r.unwrap_or_else(|e| panic!("{name}: cannot set up: {e}"))
        };
        go(match self.name {
            "shm_spin_floor" => spin_floor::SpinFloor::new(size)
                .map(|f| Box::new(Pair::start(&name, SpinSetup(f), size, what, server_cpu)) as _),
            "moving_floor" => MailboxSetup::moving(size, spsc_capacity(size))
                .map(|setup| Box::new(Pair::start(&name, setup, size, what, server_cpu)) as _),
            "two_line_floor" => MailboxSetup::two_line(size)
                .map(|setup| Box::new(Pair::start(&name, setup, size, what, server_cpu)) as _),
            "futex_floor" => futex_floor::FutexFloor::new(size)
                .map(|f| Box::new(Pair::start(&name, FutexSetup(f), size, what, server_cpu)) as _),
            "ring_floor" => (|| {
                let slots = ring_slots(size);
                let setup = RingSetup {
                    to_server: ring_floor::RingFloor::new(slots, size)?,
                    to_client: ring_floor::RingFloor::new(slots, size)?,
                };
                Ok(Box::new(Pair::start(&name, setup, size, what, server_cpu)) as _)
            })(),
            other => {
                let (wait, batched) = match other {
                    "spsc_busy_poll" | "spsc_send" => (WaitStrategy::BusyPoll, false),
                    "spsc_batched" => (WaitStrategy::BusyPoll, true),
                    "spsc_parked" => (WaitStrategy::Park, false),
                    "spsc_spin_then_park" => (WaitStrategy::default(), false),
                    _ => unreachable!("unknown variant {other}"),
                };
                spsc(size, wait, batched)
                    .map(|setup| Box::new(Pair::start(&name, setup, size, what, server_cpu)) as _)
            }
        })
    }

    /// Round trips: ns each; throughput: messages per second.
    fn rate(&self, iters: u64, d: Duration) -> f64 {
        match self.what {
            What::RoundTrip => d.as_nanos() as f64 / iters as f64,
            What::Throughput => iters as f64 / d.as_secs_f64(),
        }
    }
}

/// The CPUs this process may run on (`sched_getaffinity`).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE and `set` is initialised.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Paired comparison.

/// Measures one block of `v`: a fresh server, 20 ms of warm-up, then at least `BLOCK` of
/// measurement in chunks; returns the rate.
fn block(v: &Variant, server_cpu: Option<usize>) -> f64 {
    const WARMUP: Duration = Duration::from_millis(20);
    const BLOCK: Duration = Duration::from_millis(60);
    let mut pair = v.start(server_cpu);
    let chunk = match (v.what, v.size) {
        (What::RoundTrip, _) => 200,
        (What::Throughput, s) if s >= 4096 => 64,
        (What::Throughput, _) => 20_000,
    };
    let warm_end = Instant::now() + WARMUP;
    while Instant::now() < warm_end {
        pair.run(chunk);
    }
    let (mut iters, mut spent) = (0u64, Duration::ZERO);
    while spent < BLOCK {
        spent += pair.run(chunk);
        iters += chunk;
    }
    v.rate(iters, spent)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `MAPIPC_CHANNEL_PAIRED` rounds of one block per variant; prints the medians and the
/// per-round ratios against the targets.
fn paired(rounds: usize, server_cpu: Option<usize>) {
    let only = std::env::var("MAPIPC_CHANNEL_ONLY").unwrap_or_default();
    let wanted = |v: &Variant| {
        only.is_empty()
            || only
                .split(',')
                .any(|w| w == v.name || w == format!("{}:{}", v.name, v.size))
    };
    let mut per_round: Vec<Vec<f64>> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        per_round.push(
            VARIANTS
                .iter()
                .map(|v| {
                    if wanted(v) {
                        block(v, server_cpu)
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
        );
    }
    let idx = |name: &str, size: usize, what: What| {
        VARIANTS
            .iter()
            .position(|v| v.name == name && v.size == size && v.what == what)
            .expect("variant")
    };
    eprintln!("paired: {rounds} rounds, one ~60 ms block per variant per round; medians:");
    for (i, v) in VARIANTS.iter().enumerate() {
        let m = median(per_round.iter().map(|r| r[i]).collect());
        if m.is_nan() {
            continue;
        }
        match v.what {
            What::RoundTrip => eprintln!("  {:32} {:>12.0} ns per round trip", v.label(), m),
            What::Throughput => eprintln!(
                "  {:32} {:>12.2} M msgs/s  {:>8.2} GB/s",
                v.label(),
                m / 1e6,
                m * v.size as f64 / 1e9
            ),
        }
    }
    eprintln!("median of per-round ratios, against the issue 4 targets:");
    let checks: [(&str, usize, &str, bool, f64); 6] = [
        ("spsc_busy_poll", 8, "shm_spin_floor", true, 1.3),
        ("spsc_busy_poll", 64, "shm_spin_floor", true, 1.3),
        ("spsc_parked", 8, "futex_floor", true, 1.1),
        ("spsc_parked", 64, "futex_floor", true, 1.1),
        ("spsc_batched", 64, "ring_floor", false, 1.0),
        ("spsc_batched", 65536, "ring_floor", false, 0.9),
    ];
    let ratio = |x: usize, y: usize| median(per_round.iter().map(|r| r[x] / r[y]).collect());
    // Variants left out by `MAPIPC_CHANNEL_ONLY` measured NaN: skip lines that need them.
    let measured = |xs: &[usize]| xs.iter().all(|&i| !per_round[0][i].is_nan());
    {
        let [a, b, f] = [
            ("spsc_batched", 56),
            ("spsc_batched", 64),
            ("ring_floor", 64),
        ]
        .map(|(name, size)| idx(name, size, What::Throughput));
        if measured(&[a, b, f]) {
            eprintln!(
                "  (information) throughput in msgs/s: spsc_batched 56 B (64-byte records, a line \
             per message as the floor's slots) / ring_floor 64 B {:.2}x; spsc_batched 56 B / \
             spsc_batched 64 B {:.2}x (72-byte records: 72 / 64 = 1.125)",
                ratio(a, f),
                ratio(a, b),
            );
        }
    }
    for size in [8, 64] {
        let [a, b, c, d, e] = [
            "spsc_busy_poll",
            "ring_floor",
            "shm_spin_floor",
            "two_line_floor",
            "moving_floor",
        ]
        .map(|name| idx(name, size, What::RoundTrip));
        if !measured(&[a, b, c, d, e]) {
            continue;
        }
        eprintln!(
            "  (information) {size} B round trip: two_line_floor / shm_spin_floor {:.2}x, \
             moving_floor / shm_spin_floor {:.2}x, ring_floor / shm_spin_floor {:.2}x; \
             spsc_busy_poll / two_line_floor {:.2}x, spsc_busy_poll / moving_floor {:.2}x, \
             spsc_busy_poll / ring_floor {:.2}x",
            ratio(d, c),
            ratio(e, c),
            ratio(b, c),
            ratio(a, d),
            ratio(a, e),
            ratio(a, b),
        );
    }
    for (name, size, floor, at_most, target) in checks {
        let what = if at_most {
            What::RoundTrip
        } else {
            What::Throughput
        };
        let (a, b) = (idx(name, size, what), idx(floor, size, what));
        if !measured(&[a, b]) {
            continue;
        }
        let ratios: Vec<f64> = per_round.iter().map(|r| r[a] / r[b]).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        let r = median(ratios);
        let met = if at_most { r <= target } else { r >= target };
        let (what, op) = if at_most {
            ("round trip", "<=")
        } else {
            ("throughput", ">=")
        };
        eprintln!(
            "  {name} / {floor}, {size} B {what}: {r:.2}x (rounds {lo:.2} to {hi:.2}); \
             target {op} {target}x: {}",
            if met { "met" } else { "NOT met" }
        );
    }
}

// ---------------------------------------------------------------------------------------
// Criterion.

fn channel_benches(c: &mut Criterion) {
    let cpus = allowed_cpus();
    let server_cpu = if cpus.len() >= 2 && pin_to_cpu(cpus[0]) {
        Some(cpus[1])
    } else {
        None
    };
    eprintln!(
        "channel bench: allowed CPUs {cpus:?}; parent on {:?}, server on {server_cpu:?}",
        server_cpu.map(|_| cpus[0])
    );
    let rounds = std::env::var("MAPIPC_CHANNEL_PAIRED")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10);
    if rounds > 0 {
        paired(rounds, server_cpu);
    }
    let mut rt = c.benchmark_group("round_trip");
    for v in VARIANTS.iter().filter(|v| v.what == What::RoundTrip) {
        let mut pair = v.start(server_cpu);
        rt.bench_function(BenchmarkId::new(v.name, format!("{}B", v.size)), |b| {
            b.iter_custom(|iters| pair.run(iters))
        });
    }
    rt.finish();
    let mut tp = c.benchmark_group("throughput");
    for v in VARIANTS.iter().filter(|v| v.what == What::Throughput) {
        let mut pair = v.start(server_cpu);
        tp.throughput(if v.size >= 4096 {
            Throughput::Bytes(v.size as u64)
        } else {
            Throughput::Elements(1)
        });
        tp.bench_function(BenchmarkId::new(v.name, format!("{}B", v.size)), |b| {
            b.iter_custom(|iters| pair.run(iters))
        });
    }
    tp.finish();
    one_thread(c);
}

/// `one_thread`: the CPU cost of a message with no other process and no cache-line
/// transfers: one thread writes 32 messages of 64 bytes, publishes them, and reads the 32
/// back in place (values below are per message), for `ring_floor` and for the channel's
/// batched path (`send_batched`, `flush`, `drain`).
fn one_thread(c: &mut Criterion) {
    const N: usize = 32;
    let msg = [7u8; 64];
    let mut g = c.benchmark_group("one_thread");
    g.throughput(Throughput::Elements(N as u64));
    let ring = ring_floor::RingFloor::new(4096, msg.len()).expect("ring floor");
    let (mut tx, mut rx) = (ring.producer(), ring.consumer());
    g.bench_function("ring_floor/64B", |b| {
        b.iter(|| {
            for _ in 0..N {
                tx.push(std::hint::black_box(&msg)).expect("push");
            }
            tx.flush().expect("flush");
            let mut sum = 0u64;
            for _ in 0..N {
                sum ^= rx
                    .pop(|m| m.read_u64_le(0).unwrap_or(0) ^ m.read_u64_le(56).unwrap_or(0))
                    .expect("pop");
            }
            sum
        })
    });
    let (mut tx, mut rx) = mapipc::channel::pair(512 * 1024).expect("channel");
    g.bench_function("spsc_batched/64B", |b| {
        b.iter(|| {
            for _ in 0..N {
                tx.send_batched(std::hint::black_box(&msg)).expect("send");
            }
            tx.flush();
            let mut sum = 0u64;
            let n = rx
                .drain(N, |m| {
                    sum ^= m.read_pod::<u64>(0).unwrap_or(0) ^ m.read_pod::<u64>(56).unwrap_or(0)
                })
                .expect("drain");
            assert_eq!(n, N);
            sum
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = channel_benches
}
criterion_main!(benches);
