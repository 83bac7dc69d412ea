//! `ring-floor`: a raw single-producer single-consumer ring of fixed-size slots in an anonymous
//! shared mapping, the throughput floor for shared-memory channels.
//!
//! # Self-contained
//!
//! This file is also compiled outside the harness: `crates/mapipc/benches/*.rs` include it with
//! `#[path = "../../mapipc-bench/src/floors/ring.rs"] mod ring_floor;` (add
//! `#[allow(dead_code)]` on that line if the bench uses only part of the API). It may
//! therefore use only `std`, `libc` and the public API of `mapipc`: no `crate::` path, no other
//! harness module, no other dependency. Keep it that way.
//!
//! # Layout and protocol
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | `head: AtomicU64`, messages consumed (published) | consumer |
//! | 128 | `tail: AtomicU64`, messages produced (published) | producer |
//! | 256 | `aborted: AtomicU64` | a watchdog |
//! | 384 | `slots × slot_size` bytes, `slot_size` = message length rounded up to 8 | producer |
//!
//! The indices grow forever; message `i` lives in slot `i % slots` (`slots` is a power of
//! two). Each side keeps its own index and a cached copy of the other's in private memory,
//! and touches the shared indices only:
//!
//! - the producer publishes `tail` (release) every `publish_every` messages
//!   ([`PUBLISH_EVERY`] = 32 unless [`RingFloor::with_publish_every`] says otherwise), on
//!   [`Producer::flush`], and before it waits for room; it re-reads `head` (acquire) only when
//!   its cached copy says the ring is full;
//! - the consumer publishes `head` likewise every `publish_every` messages and before it
//!   waits for data; it re-reads `tail` only when its cached copy says the ring is empty.
//!
//! Both wait by busy polling. Publishing before waiting is what keeps the batching from
//! deadlocking: a side never waits on a state the other side could not see. Messages are
//! written with one copy ([`Producer::push`]) and read in place ([`Consumer::pop`] hands the
//! callback a view of the slot), so the ring does the least work a fixed-slot ring can do;
//! there is no validation of what the peer wrote beyond what keeps every access inside the
//! mapping (slot indices are masked; see "Raw access").
//!
//! A round trip uses two rings, one per direction, flushing after each message.
//!
//! # Raw access
//!
//! A floor must cost no more than the mechanism itself, so after [`RingFloor::new`] has
//! checked the geometry against the mapping once (every index word in bounds, writable and
//! aligned; `SLOTS + slots × slot_size` bytes mapped), slots and index words are reached
//! through `Mmap::as_mut_ptr` without further checks (but one comparison per received message,
//! in `Slot::new`): copies through raw pointers (never a
//! reference to shared bytes, as in `mapipc::map`) and atomics. Slot indices are masked, so
//! no value a peer writes can move an access outside the mapping. (Going through
//! `Mmap::read_at`/`write_at` instead costs about 25 ns per message here, as much as the
//! whole raw push and pop of an 8-byte message several times over.)
//!
//! # Example
//! ```
//! # use mapipc_bench::floors::ring::RingFloor;
//! let ring = RingFloor::new(64, 16)?;
//! let (mut tx, mut rx) = (ring.producer(), ring.consumer());
//! for i in 0..100u64 {
//!     let mut msg = [0u8; 16];
//!     msg[..8].copy_from_slice(&i.to_le_bytes());
//!     tx.push(&msg)?;
//!     tx.flush()?; // in one thread, publish before reading back
//!     assert_eq!(rx.pop(|m| m.read_u64_le(0))?, Some(i));
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mapipc::map::{MapOptions, Mmap};

pub use super::slot::Slot;

const HEAD: u64 = 0;
const TAIL: u64 = 128;
const ABORTED: u64 = 256;
const SLOTS: u64 = 384;

/// How many messages each side handles between two publications of its index, by default.
pub const PUBLISH_EVERY: u64 = 32;

fn map_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("ring-floor: {e}"))
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn aborted_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "ring-floor: aborted (the peer is gone)",
    )
}

/// The shared ring, created before `fork` and inherited by the child.
#[derive(Clone, Debug)]
pub struct RingFloor {
    map: Arc<Mmap>,
    slots: u64,
    len: usize,
    slot_size: u64,
    publish_every: u64,
}

impl RingFloor {
    /// Maps (and prefaults) a ring of `slots` slots for messages of exactly `len` bytes,
    /// publishing indices every [`PUBLISH_EVERY`] messages.
    ///
    /// # Errors
    /// `slots` is not a power of two of at least 2, `len` is 0, the size overflows, or the
    /// mapping fails.
    pub fn new(slots: usize, len: usize) -> io::Result<RingFloor> {
        RingFloor::with_publish_every(slots, len, PUBLISH_EVERY)
    }

    /// Like [`new`](Self::new), publishing indices every `publish_every` messages (at least 1;
    /// at most `slots` is useful, since a side also publishes whenever it has to wait).
    ///
    /// # Errors
    /// As [`new`](Self::new), and `publish_every == 0`.
    pub fn with_publish_every(
        slots: usize,
        len: usize,
        publish_every: u64,
    ) -> io::Result<RingFloor> {
        if !slots.is_power_of_two() || slots < 2 {
            return Err(invalid(
                "ring-floor: slots must be a power of two of at least 2",
            ));
        }
        if publish_every == 0 {
            return Err(invalid("ring-floor: publish_every must be at least 1"));
        }
        if len == 0 {
            return Err(invalid("ring-floor: zero-length messages"));
        }
        let slot_size = len
            .checked_next_multiple_of(8)
            .ok_or_else(|| invalid("ring-floor: message too large"))?;
        let bytes = slots
            .checked_mul(slot_size)
            .and_then(|b| b.checked_add(SLOTS as usize))
            .ok_or_else(|| invalid("ring-floor: ring too large"))?;
        let map = MapOptions::new()
            .len(bytes)
            .populate()
            .map_anonymous()
            .map_err(map_err)?;
        // Validate the index words once; `word` relies on it.
        for offset in [HEAD, TAIL, ABORTED] {
            map.atomic_u64(offset).map_err(map_err)?;
        }
        Ok(RingFloor {
            map: Arc::new(map),
            slots: slots as u64,
            len,
            slot_size: slot_size as u64,
            publish_every,
        })
    }

    /// Message length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (messages are at least one byte).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots as usize
    }

    /// The producing end (use it in one process only).
    pub fn producer(&self) -> Producer {
        Producer {
            ring: self.clone(),
            tail: 0,
            published: 0,
            cached_head: 0,
        }
    }

    /// The consuming end (use it in one process only).
    pub fn consumer(&self) -> Consumer {
        Consumer {
            ring: self.clone(),
            head: 0,
            published: 0,
            cached_tail: 0,
        }
    }

    /// Makes every wait on this ring, in any process, fail with
    /// `io::ErrorKind::ConnectionAborted` (for a watchdog whose peer process died).
    pub fn abort(&self) {
        self.word(ABORTED).store(1, Ordering::Release);
    }

    /// One of the index words `HEAD`, `TAIL`, `ABORTED`.
    #[inline]
    fn word(&self, offset: u64) -> &AtomicU64 {
        debug_assert!(offset == HEAD || offset == TAIL || offset == ABORTED);
        let p = self.map.as_mut_ptr().wrapping_add(offset as usize);
        // SAFETY: `new` checked with `Mmap::atomic_u64` that these offsets are inside the
        // mapping, 8-byte aligned and writable; the mapping lives as long as `self.map`, which
        // this borrow keeps; every bit pattern is a valid `AtomicU64`, and other processes
        // touch the word only atomically (this is what `Mmap::atomic_u64` hands out too).
        unsafe { &*p.cast::<AtomicU64>() }
    }

    /// Offset of the slot of message `index`: `SLOTS + (index % slots) × slot_size`, so that
    /// `offset + len <= SLOTS + slots × slot_size`, the mapping's length.
    #[inline]
    fn slot_offset(&self, index: u64) -> usize {
        (SLOTS + (index & (self.slots - 1)) * self.slot_size) as usize
    }
}

/// The producing end of a [`RingFloor`].
#[derive(Debug)]
pub struct Producer {
    ring: RingFloor,
    /// Messages written (private).
    tail: u64,
    /// The last `tail` stored in shared memory.
    published: u64,
    /// The consumer's `head` as last read.
    cached_head: u64,
}

impl Producer {
    /// Copies `msg` into the next slot, waiting (busy polling) while the ring is full. The
    /// message becomes visible to the consumer at the next publication: at most
    /// `publish_every` messages later, or at [`flush`](Self::flush).
    ///
    /// # Errors
    /// `msg` is not exactly [`RingFloor::len`] bytes; the ring was aborted.
    pub fn push(&mut self, msg: &[u8]) -> io::Result<()> {
        if msg.len() != self.ring.len {
            return Err(invalid(
                "ring-floor: message length differs from the ring's",
            ));
        }
        if self.tail.wrapping_sub(self.cached_head) >= self.ring.slots {
            self.wait_for_room()?;
        }
        let offset = self.ring.slot_offset(self.tail);
        let p = self.ring.map.as_mut_ptr().wrapping_add(offset);
        // SAFETY: `msg.len() == len <= slot_size`, so `offset + msg.len() <= map.len()` (see
        // `slot_offset`): the destination is inside the live mapping, and `msg` is private
        // memory that cannot overlap it. The consumer does not read this slot until `tail`
        // is published past it (release), and has released it (`head`, acquire above).
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p, msg.len()) };
        self.tail = self.tail.wrapping_add(1);
        if self.tail.wrapping_sub(self.published) >= self.ring.publish_every {
            self.flush()?;
        }
        Ok(())
    }

    #[cold]
    fn wait_for_room(&mut self) -> io::Result<()> {
        self.flush()?;
        let head = self.ring.word(HEAD);
        let aborted = self.ring.word(ABORTED);
        loop {
            self.cached_head = head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) < self.ring.slots {
                return Ok(());
            }
            if aborted.load(Ordering::Acquire) != 0 {
                self.cached_head = head.load(Ordering::Acquire);
                if self.tail.wrapping_sub(self.cached_head) < self.ring.slots {
                    return Ok(());
                }
                return Err(aborted_error());
            }
            std::hint::spin_loop();
        }
    }

    /// Publishes every message pushed so far.
    ///
    /// # Errors
    /// Only if the mapping became inaccessible (it cannot for anonymous memory).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.published != self.tail {
            self.ring.word(TAIL).store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
        Ok(())
    }
}

/// The consuming end of a [`RingFloor`].
#[derive(Debug)]
pub struct Consumer {
    ring: RingFloor,
    /// Messages consumed (private).
    head: u64,
    /// The last `head` stored in shared memory.
    published: u64,
    /// The producer's `tail` as last read.
    cached_tail: u64,
}

impl Consumer {
    /// Waits (busy polling) for the next published message and calls `read` on it in place;
    /// its slot is handed back to the producer at the next publication of `head`.
    ///
    /// # Errors
    /// The ring was aborted.
    pub fn pop<R>(&mut self, read: impl FnOnce(&Slot<'_>) -> R) -> io::Result<R> {
        if self.head == self.cached_tail {
            self.wait_for_data()?;
        }
        let r = read(&Slot::new(
            &self.ring.map,
            self.ring.slot_offset(self.head),
            self.ring.len,
            "ring-floor",
        ));
        self.head = self.head.wrapping_add(1);
        if self.head.wrapping_sub(self.published) >= self.ring.publish_every {
            self.flush()?;
        }
        Ok(r)
    }

    #[cold]
    fn wait_for_data(&mut self) -> io::Result<()> {
        self.flush()?;
        let tail = self.ring.word(TAIL);
        let aborted = self.ring.word(ABORTED);
        loop {
            self.cached_tail = tail.load(Ordering::Acquire);
            if self.cached_tail != self.head {
                return Ok(());
            }
            if aborted.load(Ordering::Acquire) != 0 {
                self.cached_tail = tail.load(Ordering::Acquire);
                if self.cached_tail != self.head {
                    return Ok(());
                }
                return Err(aborted_error());
            }
            std::hint::spin_loop();
        }
    }

    /// Publishes `head`: hands every consumed slot back to the producer.
    ///
    /// # Errors
    /// Only if the mapping became inaccessible (it cannot for anonymous memory).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.published != self.head {
            self.ring.word(HEAD).store(self.head, Ordering::Release);
            self.published = self.head;
        }
        Ok(())
    }
}
