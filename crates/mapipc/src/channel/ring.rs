//! The single-producer single-consumer byte ring: framing, wrap-around and validation,
//! independent of where the memory lives.
//!
//! # Algorithm
//!
//! A bounded SPSC ring of variable-length records in the style of Lamport's SPSC queue
//! with free-running positions (as in the Linux kernel's `kfifo` and the BipBuffer's
//! contiguous records), where the consumer polls the next record's header rather than the
//! producer's position (as FastForward and the `rtrb`/`ringbuf` "cached index" designs do),
//! so that in steady state a message costs one cache-line transfer, the record's own:
//!
//! - `tail` (written only by the producer) and `head` (written only by the consumer) are
//!   byte positions that only grow; the ring index is `position & (capacity - 1)`.
//! - A record is an 8-byte header, one little-endian `u64`:
//!   `len: 32 | pad: 1 | lap: 31`, where `lap = (position / capacity) mod 2^31` of the
//!   record's start, followed by the payload, padded to a multiple of 8. Records are
//!   contiguous: when a record does not fit before the end of the ring, a padding record
//!   fills the rest and the record starts at index 0. Hence the largest payload is
//!   `capacity / 2 - 8`: an empty ring can always take it, padding included.
//! - **Placement by cache line.** The record after one that crosses a 64-byte line
//!   boundary starts at the next line boundary (the rest of that line is skipped); after one
//!   that does not, right after it. Both ends compute this from the record they just wrote
//!   or read, so no marker is stored: small records share lines (four 8-byte messages per
//!   line), and a record never starts in a line whose earlier bytes belong to a crossing
//!   record, where the producer writing the new record and the consumer reading the old one
//!   would work on the same line. Measured (BENCHMARKS.md, "Channel"): with 64-byte
//!   messages (72-byte records), a round trip 1.5x -> 1.1x the spin floor and a stream of
//!   plain sends +28%, batched streams unchanged; 8-byte messages unchanged. The cost is
//!   ring space: up to 56 bytes per crossing record (a 64-byte message takes 128).
//! - **Commit.** The producer writes the payload; then zeroes the word where the *next*
//!   record will start if that word could pass for a committed header there (stale payload
//!   bytes; in steady state it holds a header one lap old and is left alone, which keeps a
//!   store to a line the consumer may hold out of the way of this header); then stores the
//!   header with Release (pair **R**, with the consumer's Acquire load of the header); then
//!   a padding header before it, if any; then `tail` with Release (pair **T**, used by the
//!   consumer's slow path, by re-attaching ends and by `stat`).
//! - **Consume.** The consumer loads the header at `head` (Acquire, pair R). A header whose
//!   lap is `head`'s lap is committed: the whole record is visible. Anything else (a zero, a
//!   header one lap old; stale payload bytes that would pass for a header cannot be there:
//!   the producer zeroed them before committing the record that ends here) means "nothing
//!   yet"; only then does the consumer load `tail` (pair T), to tell an empty ring from a
//!   damaged header. It frees records with a Release store of `head`; the producer's Acquire
//!   load of `head` orders the consumer's reads before the reuse of the bytes (pair **H**).
//! - The producer caches `head` and reloads it only when the ring looks full; the consumer
//!   never needs `tail` while records keep coming.
//! - **Few stores per message.** Stores become visible in order, so every store on the
//!   producer's path waits in the store buffer behind the ring's, which wait for their lines
//!   to come back from the consumer; the producer's pace is its count of stores per message
//!   (BENCHMARKS.md, "Channel", session of 2026-11-27, 16:32 UTC). So the two common commits
//!   (a record inside an unflushed batch; a plain commit with no batch pending and no
//!   padding) are a few inlined lines that keep the reservation in registers, and everything
//!   else is out of line, taking the reservation as words (a reference or a struct would keep
//!   a copy of it in memory on the fast path too). Their pattern matters as much as their
//!   count: payload copies are aligned on the destination (`slots::copy_into_ring`), and a
//!   record written whole inside a batch goes out in address order, its header sharing a
//!   16-byte store with the first payload bytes; a stream of 64-byte messages went from
//!   0.98x to about 1.5x the ring floor with these (BENCHMARKS.md, "Channel", session of
//!   2026-11-27, 19:02 UTC).
//! - **Batches.** A batched commit withholds the Release store of the batch's *first*
//!   header (later headers are stored as usual); `flush` stores it, then `tail`. The
//!   consumer stops at the first unpublished header, so it sees the whole batch at once,
//!   and a flush costs one header store however long the batch. For the same reason the
//!   batch's later records need no ordering of their own: one can be written whole, its
//!   header sharing a store with its first payload bytes (`write_in_batch`, for
//!   `Sender::send_batched`); the flush's Release orders it all.
//! - **Re-attach.** A producer that died between storing a header and storing `tail` left a
//!   committed record `tail` does not count. A new producer starts at the consumer's or the
//!   stored position, whichever is further, and moves past committed headers, so such a
//!   record is neither lost nor overwritten.
//!
//! # Hostile peers
//!
//! Both positions and every header live in memory the other process can write. Nothing read
//! from there is trusted: positions must be 8-byte aligned, within one capacity of each
//! other and below [`MAX_POSITION`], a committed header must have a length in `1..=max_payload` that fits before the
//! end of the ring (a padding record: exactly up to the end), and when `tail` says a record
//! is there, its header must be committed. Anything else is [`RingError::Corrupted`]. Every
//! loop is bounded. Our own position is kept privately and only written out, so a peer
//! scribbling on it cannot make us read outside the ring. A peer can still make us wait (a
//! header that never commits), which liveness checks above this layer bound.

use std::sync::atomic::Ordering;

/// Bytes in a record header.
pub(crate) const HDR: u64 = 8;
/// Smallest ring.
pub(crate) const MIN_CAPACITY: u64 = 64;
/// Largest ring (1 TiB), far below where positions could overflow.
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;
/// Largest position (and, for broadcast, sequence number) accepted from shared memory, for
/// every channel kind. Honest ends never get there (2^63 bytes: decades of traffic at
/// 10 GB/s); anything above is garbage. Below it, the arithmetic of an end (a position plus
/// a few capacities at most) cannot overflow, which a peer writing a position near
/// `u64::MAX` made it do (a panic with overflow checks, wrapped positions without).
pub(crate) const MAX_POSITION: u64 = 1 << 63;

const PAD_BIT: u64 = 1 << 32;
const LAP_SHIFT: u32 = 33;
const LAP_MASK: u64 = (1 << 31) - 1;

/// Size of the record carrying `len` payload bytes.
#[inline]
pub(crate) fn record_size(len: u64) -> u64 {
    HDR + ((len + 7) & !7)
}

/// Cache-line size records are placed by (see the module docs).
pub(crate) const LINE: u64 = 64;

/// Where the record after one of `total` bytes at `start` begins: right after it, unless it
/// crossed a line boundary, then at the next line boundary.
#[inline]
pub(crate) fn next_start(start: u64, total: u64) -> u64 {
    let end = start + total;
    if start / LINE == (end - 1) / LINE {
        end
    } else {
        (end + LINE - 1) & !(LINE - 1)
    }
}

/// Ring size parameters, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    cap: u64,
    shift: u32,
}

impl Geometry {
    /// `cap` must be a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    pub(crate) fn new(cap: u64) -> Option<Geometry> {
        (cap.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap)).then_some(
            Geometry {
                cap,
                shift: cap.trailing_zeros(),
            },
        )
    }

    /// Ring bytes.
    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.cap
    }

    /// Largest payload: `capacity / 2 - 8`.
    #[inline]
    pub(crate) fn max_payload(&self) -> u64 {
        self.cap / 2 - HDR
    }

    #[inline]
    fn index(&self, pos: u64) -> u64 {
        pos & (self.cap - 1)
    }

    #[inline]
    fn lap(&self, pos: u64) -> u64 {
        (pos >> self.shift) & LAP_MASK
    }

    /// The committed header of a record of `len` bytes (or padding) starting at `pos`.
    #[inline]
    fn header(&self, pos: u64, len: u64, pad: bool) -> u64 {
        (len & 0xffff_ffff) | if pad { PAD_BIT } else { 0 } | (self.lap(pos) << LAP_SHIFT)
    }

    /// Decodes a header read at `pos`: `Some((len, pad))` if it is committed for `pos`'s lap.
    #[inline]
    fn committed(&self, pos: u64, w: u64) -> Option<(u64, bool)> {
        let len = w & 0xffff_ffff;
        let pad = w & PAD_BIT != 0;
        (w >> LAP_SHIFT == self.lap(pos) && (pad || len != 0)).then_some((len, pad))
    }

    /// Whether `tail` says a record is at `pos` while its header is not committed there: a
    /// damaged header (the producer stores headers before `tail`). For periodic checks.
    pub(crate) fn damaged_at<M: RingMem>(&self, mem: &M, pos: u64) -> bool {
        // Acquire pairs with the producer's Release store of `tail` (pair T).
        let tail = mem.load_tail(Ordering::Acquire);
        (tail > pos || !self.near(pos, tail)) && !self.committed_at(mem, pos)
    }

    /// Whether the record header at `pos` is committed (for wait predicates).
    #[inline]
    pub(crate) fn committed_at<M: RingMem>(&self, mem: &M, pos: u64) -> bool {
        // Acquire pairs with the producer's Release store of the header (pair R).
        let w = mem.load_word(self.index(pos), Ordering::Acquire);
        self.committed(pos, w).is_some()
    }

    /// Positions read from shared memory: aligned, within one capacity of each other, and
    /// not beyond [`MAX_POSITION`].
    #[inline]
    fn near(&self, a: u64, b: u64) -> bool {
        a & 7 == 0 && b & 7 == 0 && a.abs_diff(b) <= self.cap && a.max(b) <= MAX_POSITION
    }
}

/// What can go wrong in the ring itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RingError {
    /// Not enough free space now.
    Full,
    /// Length 0 or above the maximum payload.
    BadLength {
        /// Requested length.
        len: u64,
        /// Maximum payload.
        max: u64,
    },
    /// Shared state violates the ring's invariants.
    Corrupted {
        /// Where it was found.
        at: Where,
        /// What was wrong.
        what: &'static str,
    },
}

/// Where corruption was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Where {
    /// A record at this ring index.
    Ring(u64),
    /// The consumer position.
    Head,
    /// The producer position.
    Tail,
}

/// The memory a ring lives in: two positions and `capacity` bytes of records.
///
/// Implementations may assume every `off` they get is 8-byte aligned and that
/// `off + len <= capacity` (the ring checks this before calling), and must be sound for any
/// bytes a peer may have written.
pub(crate) trait RingMem {
    /// Loads the consumer position.
    fn load_head(&self, order: Ordering) -> u64;
    /// Stores the consumer position.
    fn store_head(&self, head: u64, order: Ordering);
    /// Loads the producer position.
    fn load_tail(&self, order: Ordering) -> u64;
    /// Stores the producer position.
    fn store_tail(&self, tail: u64, order: Ordering);
    /// Atomically loads the 8-byte word at `off` (little-endian).
    fn load_word(&self, off: u64, order: Ordering) -> u64;
    /// Atomically stores the 8-byte word at `off` (little-endian).
    fn store_word(&self, off: u64, w: u64, order: Ordering);
    /// Copies `dst.len()` bytes from `off`. (The channel itself copies into a `Vec` with
    /// `MappedRing::read_into_vec`; tests and the fuzz target use this.)
    #[cfg_attr(not(any(test, fuzzing)), allow(dead_code))]
    fn read_bytes(&self, off: u64, dst: &mut [u8]);
    /// Copies `src` to `off`.
    fn write_bytes(&self, off: u64, src: &[u8]);
    /// Writes a whole record: `header` at `off` and `src` right after it, with plain stores
    /// in any order (implementations may merge the header with the first payload bytes).
    /// Only for records no reader can reach yet (inside an unflushed batch): the Release
    /// store that reveals them orders these stores.
    fn write_record(&self, off: u64, header: u64, src: &[u8]) {
        self.write_bytes(off + HDR, src);
        self.store_word(off, header, Ordering::Relaxed);
    }
}

/// Space claimed by the producer for one record, not yet committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Position of the record header (after any padding).
    pub(crate) start: u64,
    /// Ring index of the payload.
    pub(crate) data: u64,
    /// Payload length.
    pub(crate) len: u64,
    /// Padding bytes before `start` (0 if none), written at commit.
    pub(crate) pad: u64,
}

impl Reservation {
    /// Where the next record starts.
    #[inline]
    pub(crate) fn end(&self) -> u64 {
        next_start(self.start, record_size(self.len))
    }
}

/// The producer's private state.
#[derive(Debug, Clone)]
pub(crate) struct Producer {
    geo: Geometry,
    /// Our position: everything before it is committed.
    tail: u64,
    /// The consumer position as last read.
    cached_head: u64,
    /// The first header of a batch not yet flushed: its ring index and the word to store.
    hidden: Option<(u64, u64)>,
}

impl Producer {
    /// Attaches at the published positions, validating them, and moves past records a
    /// previous producer committed without publishing `tail` (see the module docs).
    pub(crate) fn attach<M: RingMem>(geo: Geometry, mem: &M) -> Result<Producer, RingError> {
        let tail = mem.load_tail(Ordering::Acquire);
        let head = mem.load_head(Ordering::Acquire);
        if !geo.near(head, tail) {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "producer and consumer positions",
            });
        }
        let mut pos = tail.max(head);
        // Bounded: each step passes at least 8 bytes of at most one capacity.
        for _ in 0..=(geo.cap / HDR) {
            if pos - head >= geo.cap {
                break;
            }
            let idx = geo.index(pos);
            match geo.committed(pos, mem.load_word(idx, Ordering::Acquire)) {
                Some((len, true)) if HDR + len == geo.cap - idx => pos += geo.cap - idx,
                Some((len, false))
                    if len <= geo.max_payload() && record_size(len) <= geo.cap - idx =>
                {
                    pos = next_start(pos, record_size(len))
                }
                _ => break,
            }
        }
        if pos - head > geo.cap {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "committed records beyond the ring",
            });
        }
        if pos != tail {
            mem.store_tail(pos, Ordering::Release);
        }
        Ok(Producer {
            geo,
            tail: pos,
            cached_head: head,
            hidden: None,
        })
    }

    /// Our position: where the next record goes.
    #[inline]
    pub(crate) fn tail(&self) -> u64 {
        self.tail
    }

    /// Reloads the consumer position (pair **H**: Acquire).
    pub(crate) fn refresh_head<M: RingMem>(&mut self, mem: &M) -> Result<u64, RingError> {
        // Acquire pairs with the consumer's Release store in `Consumer::publish` (pair H).
        let head = mem.load_head(Ordering::Acquire);
        if !self.geo.near(head, self.tail) || head > self.tail || head < self.cached_head {
            return Err(RingError::Corrupted {
                at: Where::Head,
                what: "consumer position",
            });
        }
        self.cached_head = head;
        Ok(head)
    }

    /// Claims space for a record of `len` payload bytes (and padding before it if the
    /// record would straddle the end of the ring). Nothing is written until
    /// [`commit`](Self::commit).
    #[inline]
    pub(crate) fn try_reserve<M: RingMem>(
        &mut self,
        mem: &M,
        len: u64,
    ) -> Result<Reservation, RingError> {
        let max = self.geo.max_payload();
        if len == 0 || len > max {
            return Err(RingError::BadLength { len, max });
        }
        let total = record_size(len);
        let to_end = self.geo.cap - self.geo.index(self.tail);
        let pad = if to_end < total { to_end } else { 0 };
        // The record, and the rest of its last line if it crosses a line boundary.
        let need = next_start(self.tail + pad, total) - self.tail;
        if self.tail + need - self.cached_head > self.geo.cap {
            self.refresh_head(mem)?;
            if self.tail + need - self.cached_head > self.geo.cap {
                return Err(RingError::Full);
            }
        }
        let start = self.tail + pad;
        Ok(Reservation {
            start,
            data: self.geo.index(start) + HDR,
            len,
            pad,
        })
    }

    /// Publishes a reserved record whose payload was written: zero the next record's
    /// header slot, store this header (pair **R**), the padding header before it, then
    /// `tail` (pair **T**).
    ///
    /// With `batch`, the first header of a batch (the record's, or its padding's) is kept
    /// back (in `hidden`, not in the ring) and the later ones are stored normally: the
    /// consumer, stopped where that header is missing, cannot reach the others, so the whole
    /// batch appears at once when [`flush`](Self::flush) stores that one header. The consumer
    /// never chases a batch through lines still being written, which is what makes batches
    /// fast; and the header word is stored once, so a consumer polling it does not pull its
    /// line away between two stores (a batch of one, flushed at once, is a plain commit).
    #[inline(always)]
    pub(crate) fn commit<M: RingMem>(&mut self, mem: &M, r: &Reservation, batch: bool) {
        debug_assert!(r.start >= self.tail && r.start - self.tail == r.pad);
        if batch && r.pad == 0 && self.hidden.is_some() {
            // Inside an unflushed batch (the common case of a batched stream), what the
            // general path below comes to: the record's header, and our position. Kept this
            // small so that it inlines into the caller's loop with the reservation in
            // registers: every store on a producer's path waits in the store buffer behind
            // the ring's stores, which wait for their lines (BENCHMARKS.md, "Channel").
            // Release pairs with the consumer's Acquire load of the header (pair R).
            mem.store_word(
                self.geo.index(r.start),
                self.geo.header(r.start, r.len, false),
                Ordering::Release,
            );
            self.tail = r.end();
            return;
        }
        if !batch && r.pad == 0 && self.hidden.is_none() {
            // A plain commit with no batch pending and no padding: the general path's steps
            // for that case, in the same order (see there).
            let end = r.end();
            if end + HDR <= self.cached_head + self.geo.cap {
                self.clear_lookalike(mem, end);
            }
            // Release pairs with the consumer's Acquire load of the header (pair R).
            mem.store_word(
                self.geo.index(r.start),
                self.geo.header(r.start, r.len, false),
                Ordering::Release,
            );
            self.tail = end;
            // Release pairs with the consumer's Acquire load of `tail` (pair T).
            mem.store_tail(end, Ordering::Release);
            return;
        }
        self.commit_general(mem, r.start, r.len, r.pad, batch);
    }

    /// Writes and commits, in one go, a record whose reservation lies inside an unflushed
    /// batch: no reader can reach it before [`flush`](Self::flush), so its header need not
    /// be stored last, on its own, with Release: it may share a store with the first
    /// payload bytes ([`RingMem::write_record`]). Returns false, having written nothing,
    /// for any other reservation (a batch's first record, or one after padding).
    #[inline(always)]
    pub(crate) fn write_in_batch<M: RingMem>(
        &mut self,
        mem: &M,
        r: &Reservation,
        src: &[u8],
    ) -> bool {
        debug_assert!(r.start >= self.tail && r.start - self.tail == r.pad);
        debug_assert_eq!(r.len, src.len() as u64);
        if r.pad != 0 || self.hidden.is_none() {
            return false;
        }
        mem.write_record(
            self.geo.index(r.start),
            self.geo.header(r.start, r.len, false),
            src,
        );
        self.tail = r.end();
        true
    }

    /// [`commit`](Self::commit) past its fast path. (The reservation as words, which travel
    /// in registers: a reference, or a struct passed by value, would keep a copy of it in
    /// memory on the fast path too.)
    #[inline(never)]
    fn commit_general<M: RingMem>(&mut self, mem: &M, start: u64, len: u64, pad: u64, batch: bool) {
        let r = &Reservation {
            start,
            data: self.geo.index(start) + HDR,
            len,
            pad,
        };
        let end = r.end();
        // The next record's header slot must not look committed before its turn. When the
        // ring is exactly full it is the header of the record the consumer is at, one lap
        // old, which does not look committed for `end`'s lap either. Only stale payload
        // bytes can look committed, so the slot is zeroed only then: in steady state it holds
        // a header one lap old, and not storing to it keeps a store to a line the consumer
        // may hold (often the next one) off the way of this record's header (stores become
        // visible in order). Only the producer writes ring words (we, or one before us that
        // detached or died before we attached), so what we load is what the consumer will
        // find: our earlier stores to the word happen before the Release of pair R.
        // In an unflushed batch the consumer cannot get past the batch's first header before
        // `flush`, and every `end` but the last becomes the next record's header meanwhile:
        // `flush` checks the last one.
        if !batch && self.hidden.is_none() && end + HDR <= self.cached_head + self.geo.cap {
            self.clear_lookalike(mem, end);
        }
        // The first header the consumer meets: the padding's if any, else the record's.
        let first = self.tail;
        let first_idx = self.geo.index(first);
        let first_header = if r.pad > 0 {
            self.geo.header(first, r.pad - HDR, true)
        } else {
            self.geo.header(r.start, r.len, false)
        };
        let hide_first = batch && self.hidden.is_none();
        if hide_first {
            // Kept back until `flush`. The word there must not pass for a committed header
            // meanwhile: the commit before ours checked it (above, as its next slot), but not
            // when there was none since we attached (`attach` stops at a word that passes for
            // a header of this lap with an impossible length).
            self.clear_lookalike(mem, first);
            self.hidden = Some((first_idx, first_header));
        }
        // Release pairs with the consumer's Acquire load of the header (pair R): the payload
        // and the zeroed next slot are visible once the header is.
        if r.pad > 0 {
            let rec = self.geo.header(r.start, r.len, false);
            mem.store_word(self.geo.index(r.start), rec, Ordering::Release);
        }
        if !hide_first {
            // After the record's header if there is padding: a consumer that skips the
            // padding finds the record committed.
            mem.store_word(first_idx, first_header, Ordering::Release);
        }
        self.tail = end;
        if self.hidden.is_none() {
            // Release pairs with the consumer's Acquire load of `tail` (pair T).
            mem.store_tail(end, Ordering::Release);
        }
    }

    /// Zeroes the word at `pos` if it would pass for a committed header there (stale payload
    /// bytes); leaves it alone otherwise, sparing a store to a line the consumer may hold.
    #[inline]
    fn clear_lookalike<M: RingMem>(&self, mem: &M, pos: u64) {
        let idx = self.geo.index(pos);
        if self
            .geo
            .committed(pos, mem.load_word(idx, Ordering::Relaxed))
            .is_some()
        {
            mem.store_word(idx, 0, Ordering::Relaxed);
        }
    }

    /// Publishes a batch committed with `batch` (one header store), then stores `tail`.
    #[inline]
    pub(crate) fn flush<M: RingMem>(&mut self, mem: &M) {
        let Some((idx, w)) = self.hidden.take() else {
            return;
        };
        // The slot after the batch, which `commit` left to us (see there).
        if self.tail + HDR <= self.cached_head + self.geo.cap {
            self.clear_lookalike(mem, self.tail);
        }
        // Release (pair R): every record of the batch was written before this store.
        mem.store_word(idx, w, Ordering::Release);
        // Release pairs with the consumer's Acquire load of `tail` (pair T).
        mem.store_tail(self.tail, Ordering::Release);
    }
}

/// Counts the message records (padding aside) from the record start `from`, following
/// committed headers as the consumer does, up to `to` or, without `to`, up to the first
/// header not committed (or one capacity). Returns the count and where it stopped; `None`
/// when the records do not lead exactly to `to`, or a header is malformed (garbage: the
/// caller then does without the count). Bounded: each step passes at least 8 bytes of at
/// most one capacity.
///
/// For repairing the message counters when an end attaches (see `Shared::repair_counters`):
/// the records between the consumer position and the producer's are those sent and not yet
/// received.
pub(crate) fn count_records<M: RingMem>(
    geo: Geometry,
    mem: &M,
    from: u64,
    to: Option<u64>,
) -> Option<(u64, u64)> {
    if from & 7 != 0 {
        return None;
    }
    let mut pos = from;
    let mut n = 0;
    for _ in 0..=(geo.cap / HDR) {
        if let Some(to) = to {
            if pos == to {
                return Some((n, pos));
            }
            if pos > to {
                return None;
            }
        }
        if pos - from >= geo.cap {
            break;
        }
        let idx = geo.index(pos);
        // Acquire pairs with the producer's Release store of the header (pair R).
        match geo.committed(pos, mem.load_word(idx, Ordering::Acquire)) {
            Some((len, true)) if HDR + len == geo.cap - idx => pos += geo.cap - idx,
            Some((len, false)) if len <= geo.max_payload() && record_size(len) <= geo.cap - idx => {
                n += 1;
                pos = next_start(pos, record_size(len));
            }
            _ => break,
        }
    }
    match to {
        None => Some((n, pos)),
        Some(to) => (pos == to).then_some((n, pos)),
    }
}

/// A record found by the consumer, not yet freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Peeked {
    /// Ring index of the payload.
    pub(crate) data: u64,
    /// Payload length.
    pub(crate) len: u64,
    /// Position just past the record.
    pub(crate) end: u64,
}

/// The consumer's private state.
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    geo: Geometry,
    /// Our position: everything before it is consumed (locally).
    head: u64,
    /// What we last published.
    published: u64,
}

impl Consumer {
    /// Attaches at the published positions, validating them.
    pub(crate) fn attach<M: RingMem>(geo: Geometry, mem: &M) -> Result<Consumer, RingError> {
        let head = mem.load_head(Ordering::Acquire);
        let tail = mem.load_tail(Ordering::Acquire);
        if !geo.near(head, tail) {
            return Err(RingError::Corrupted {
                at: Where::Head,
                what: "producer and consumer positions",
            });
        }
        Ok(Consumer {
            geo,
            head,
            published: head,
        })
    }

    /// Our position.
    #[inline]
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The next record if a committed, well-formed message record is at our position (or
    /// right after a padding record there, which it skips): the common case, small enough
    /// to inline, its result in registers. `None` means "ask [`try_peek`](Self::try_peek)":
    /// nothing committed yet, or a damaged header (which `try_peek` reports).
    ///
    /// Returning through memory costs more than the look itself when the caller reads the
    /// result back with wider loads than the callee's stores (no store-to-load forwarding:
    /// the load waits for every older store to reach the cache), which is why this part is
    /// separate from `try_peek`.
    #[inline(always)]
    pub(crate) fn peek_ready<M: RingMem>(&mut self, mem: &M) -> Option<Peeked> {
        let mut idx = self.geo.index(self.head);
        // Acquire pairs with the producer's Release store of the header (pair R).
        let (mut len, pad) = self
            .geo
            .committed(self.head, mem.load_word(idx, Ordering::Acquire))?;
        if pad {
            // Padding fills the ring to its end, and the record after it starts at index 0
            // (its header was stored before the padding's, so it is committed too).
            if HDR + len != self.geo.cap - idx {
                return None;
            }
            self.head += self.geo.cap - idx;
            idx = 0;
            // Acquire: as above (pair R).
            let (l, pad) = self
                .geo
                .committed(self.head, mem.load_word(0, Ordering::Acquire))?;
            if pad {
                return None;
            }
            len = l;
        }
        let total = record_size(len);
        (len <= self.geo.max_payload() && total <= self.geo.cap - idx).then_some(Peeked {
            data: idx + HDR,
            len,
            end: next_start(self.head, total),
        })
    }

    /// The next record, skipping padding, or `None` when the ring is empty.
    ///
    /// `thorough`: when no header is committed at our position, also load `tail` to tell an
    /// empty ring from a damaged header. That load costs a cache-line transfer from the
    /// producer, so the hot path (a receiver about to spin on the header anyway) skips it and
    /// lets a periodic check do it.
    #[inline]
    pub(crate) fn try_peek<M: RingMem>(
        &mut self,
        mem: &M,
        thorough: bool,
    ) -> Result<Option<Peeked>, RingError> {
        match self.peek_ready(mem) {
            Some(p) => Ok(Some(p)),
            None => self.try_peek_slow(mem, thorough),
        }
    }

    /// [`try_peek`](Self::try_peek) past its common case: empty, padding, or damage.
    #[inline(never)]
    fn try_peek_slow<M: RingMem>(
        &mut self,
        mem: &M,
        thorough: bool,
    ) -> Result<Option<Peeked>, RingError> {
        // At most one padding record can precede a record; a third round means garbage.
        for _ in 0..3 {
            let idx = self.geo.index(self.head);
            let to_end = self.geo.cap - idx;
            // Acquire pairs with the producer's Release store of the header (pair R).
            let mut w = mem.load_word(idx, Ordering::Acquire);
            if self.geo.committed(self.head, w).is_none() {
                if !thorough {
                    return Ok(None);
                }
                // Nothing committed here: empty, unless `tail` says otherwise.
                // Acquire pairs with the producer's Release store of `tail` (pair T).
                let tail = mem.load_tail(Ordering::Acquire);
                if !self.geo.near(self.head, tail) {
                    return Err(RingError::Corrupted {
                        at: Where::Tail,
                        what: "producer position",
                    });
                }
                if tail <= self.head {
                    return Ok(None);
                }
                // The producer stores a header before `tail`: it must be there now.
                w = mem.load_word(idx, Ordering::Acquire);
            }
            let bad = |what| RingError::Corrupted {
                at: Where::Ring(idx),
                what,
            };
            let Some((len, pad)) = self.geo.committed(self.head, w) else {
                return Err(bad("record header"));
            };
            if pad {
                if HDR + len != to_end {
                    return Err(bad("padding record"));
                }
                self.head += to_end;
                continue;
            }
            if len > self.geo.max_payload() {
                return Err(bad("record length"));
            }
            let total = record_size(len);
            if total > to_end {
                return Err(bad("record overruns the end of the ring"));
            }
            return Ok(Some(Peeked {
                data: idx + HDR,
                len,
                end: next_start(self.head, total),
            }));
        }
        Err(RingError::Corrupted {
            at: Where::Ring(self.geo.index(self.head)),
            what: "padding loop",
        })
    }

    /// Frees a peeked record locally; [`publish`](Self::publish) hands the space back.
    #[inline]
    pub(crate) fn consume(&mut self, p: &Peeked) {
        debug_assert!(p.end > self.head);
        self.head = p.end;
    }

    /// Whether consumed space has not been handed back yet.
    #[inline]
    pub(crate) fn has_unpublished(&self) -> bool {
        self.head != self.published
    }

    /// The position we last published (what `head` in shared memory should hold: only we
    /// write it).
    #[inline]
    pub(crate) fn published(&self) -> u64 {
        self.published
    }

    /// Hands consumed space back to the producer (pair **H**: Release).
    #[inline]
    pub(crate) fn publish<M: RingMem>(&mut self, mem: &M) {
        if self.head != self.published {
            // Release pairs with the producer's Acquire load in `Producer::refresh_head`
            // (pair H): our reads of the freed records happen before their reuse.
            mem.store_head(self.head, Ordering::Release);
            self.published = self.head;
        }
    }
}

#[cfg(any(test, fuzzing))]
pub(crate) mod heap {
    //! A ring in ordinary heap memory for tests: every word atomic (loom's under
    //! `cfg(loom)`), so the model checker sees payload words through the same memory model as
    //! the headers.
    //!
    //! Loom does not produce every stale value a weak load may return (its docs: it cannot
    //! emulate some reorderings across different variables), so a missing Release/Acquire
    //! would often go unseen as a stale payload value. Under `cfg(loom)` each word therefore
    //! also has a `loom::cell::UnsafeCell` that payload copies (`write_bytes`/`read_bytes`)
    //! access: loom tracks happens-before for those accesses and fails the model when a
    //! payload read is not ordered after the write it reads (or a write after a read of the
    //! bytes it reuses), which is exactly what pairs R and H must guarantee.

    use super::super::atomic::AtomicU64;
    use super::RingMem;
    use std::sync::atomic::Ordering;

    /// Ring memory on the heap.
    pub(crate) struct HeapRing {
        pub(crate) head: AtomicU64,
        pub(crate) tail: AtomicU64,
        words: Box<[AtomicU64]>,
        /// Causality tracking of payload accesses, one cell per word (see the module docs).
        #[cfg(loom)]
        payload: Box<[loom::cell::UnsafeCell<()>]>,
    }

    impl HeapRing {
        pub(crate) fn new(cap: u64) -> HeapRing {
            HeapRing {
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                words: (0..cap / 8).map(|_| AtomicU64::new(0)).collect(),
                #[cfg(loom)]
                payload: (0..cap / 8)
                    .map(|_| loom::cell::UnsafeCell::new(()))
                    .collect(),
            }
        }

        /// Records a payload access of the words under `off..off + len` with loom.
        #[cfg(loom)]
        fn track(&self, off: u64, len: usize, write: bool) {
            super::super::atomic::track_payload(&self.payload, off, len, write);
        }

        /// Scribbles a word, as a hostile peer would.
        #[cfg_attr(loom, allow(dead_code))]
        pub(crate) fn poke(&self, off: u64, v: u64) {
            self.words[(off / 8) as usize].store(v, Ordering::Relaxed)
        }
    }

    impl RingMem for HeapRing {
        fn load_head(&self, order: Ordering) -> u64 {
            self.head.load(order)
        }
        fn store_head(&self, head: u64, order: Ordering) {
            self.head.store(head, order)
        }
        fn load_tail(&self, order: Ordering) -> u64 {
            self.tail.load(order)
        }
        fn store_tail(&self, tail: u64, order: Ordering) {
            self.tail.store(tail, order)
        }
        fn load_word(&self, off: u64, order: Ordering) -> u64 {
            self.words[(off / 8) as usize].load(order)
        }
        fn store_word(&self, off: u64, w: u64, order: Ordering) {
            self.words[(off / 8) as usize].store(w, order)
        }
        fn read_bytes(&self, off: u64, dst: &mut [u8]) {
            #[cfg(loom)]
            self.track(off, dst.len(), false);
            for (k, chunk) in dst.chunks_mut(8).enumerate() {
                let w = self.words[(off / 8) as usize + k]
                    .load(Ordering::Relaxed)
                    .to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
        }
        fn write_bytes(&self, off: u64, src: &[u8]) {
            #[cfg(loom)]
            self.track(off, src.len(), true);
            for (k, chunk) in src.chunks(8).enumerate() {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                self.words[(off / 8) as usize + k].store(u64::from_le_bytes(w), Ordering::Relaxed);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapRing;
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn send(p: &mut Producer, m: &HeapRing, data: &[u8]) -> Result<(), RingError> {
        let r = p.try_reserve(m, data.len() as u64)?;
        m.write_bytes(r.data, data);
        p.commit(m, &r, false);
        Ok(())
    }

    /// A ring of `cap` bytes in heap memory, with a producer and a consumer attached.
    fn ring(cap: u64) -> (Geometry, HeapRing, Producer, Consumer) {
        let g = Geometry::new(cap).unwrap();
        let m = HeapRing::new(cap);
        let p = Producer::attach(g, &m).unwrap();
        let c = Consumer::attach(g, &m).unwrap();
        (g, m, p, c)
    }

    fn recv(c: &mut Consumer, m: &HeapRing) -> Result<Option<Vec<u8>>, RingError> {
        let Some(pk) = c.try_peek(m, true)? else {
            return Ok(None);
        };
        let mut v = vec![0; pk.len as usize];
        m.read_bytes(pk.data, &mut v);
        c.consume(&pk);
        c.publish(m);
        Ok(Some(v))
    }

    #[test]
    fn records_placed_by_lines_and_taken_by_peek_ready() {
        let (g, m, mut p, mut c) = ring(256);
        assert_eq!(c.peek_ready(&m), None, "empty");
        // (payload length, position of the record, where the next one starts). A record that
        // crosses a line boundary makes the next start at the following line; one that does
        // not fit before the end of the ring gets padding there and starts at index 0.
        let steps: [(u64, u64, u64); 10] = [
            (64, 0, 128),  // 72 bytes: crosses 64, the next starts at 128
            (8, 128, 144), // small records share a line
            (8, 144, 160),
            (120, 256, 384), // 96 bytes left before the end: padding, then index 0
            (8, 384, 400),
            (8, 400, 416),
            (8, 416, 432),
            (8, 432, 448),  // ends exactly at a line boundary: nothing skipped
            (48, 448, 504), // 56 bytes, inside one line
            (16, 512, 536), // 8 bytes left before the end: padding, then index 0
        ];
        for (i, (len, at, next)) in steps.into_iter().enumerate() {
            let data = vec![i as u8; len as usize];
            send(&mut p, &m, &data).unwrap();
            let pk = c.peek_ready(&m).expect("a committed record");
            assert_eq!(
                (pk.data, pk.len, pk.end),
                (g.index(at) + HDR, len, next),
                "step {i}"
            );
            let mut v = vec![0; len as usize];
            m.read_bytes(pk.data, &mut v);
            assert_eq!(v, data, "step {i}");
            c.consume(&pk);
            c.publish(&m);
            assert_eq!(c.peek_ready(&m), None, "step {i}: consumed everything");
        }
        // A damaged header is left to `try_peek`, which reports it.
        send(&mut p, &m, &[1; 8]).unwrap();
        let at = c.head();
        m.poke(g.index(at), g.header(at, 4000, false));
        assert_eq!(c.peek_ready(&m), None);
        assert!(matches!(
            c.try_peek(&m, true),
            Err(RingError::Corrupted { .. })
        ));
    }

    #[test]
    fn geometry_rules() {
        assert!(Geometry::new(63).is_none());
        assert!(Geometry::new(96).is_none());
        assert!(Geometry::new(1 << 41).is_none());
        let g = Geometry::new(4096).unwrap();
        assert_eq!(g.max_payload(), 2040);
        assert!(g.max_payload() >= g.capacity() / 4);
        // A header is committed only for its own lap, and a zero word never is.
        let h = g.header(4096 + 8, 5, false);
        assert_eq!(g.committed(4096 + 8, h), Some((5, false)));
        assert_eq!(g.committed(8, h), None);
        assert_eq!(g.committed(0, 0), None);
    }

    #[test]
    fn wraps_with_padding_and_keeps_order() {
        let (_, m, mut p, mut c) = ring(64);
        for round in 0..100u8 {
            let a = vec![round; 20]; // 32-byte record
            send(&mut p, &m, &a).unwrap();
            let b = vec![round ^ 0xff; 9]; // 24-byte record
            send(&mut p, &m, &b).unwrap();
            assert_eq!(recv(&mut c, &m).unwrap().unwrap(), a);
            assert_eq!(recv(&mut c, &m).unwrap().unwrap(), b);
            assert_eq!(recv(&mut c, &m).unwrap(), None);
        }
    }

    #[test]
    fn max_payload_always_fits_an_empty_ring() {
        let (g, m, mut p, mut c) = ring(128);
        for shift in 0..40 {
            send(&mut p, &m, &vec![1; 1 + shift % 7]).unwrap();
            recv(&mut c, &m).unwrap().unwrap();
            let big = vec![shift as u8; g.max_payload() as usize];
            send(&mut p, &m, &big).unwrap();
            assert_eq!(recv(&mut c, &m).unwrap().unwrap(), big);
        }
        assert_eq!(
            p.try_reserve(&m, g.max_payload() + 1),
            Err(RingError::BadLength { len: 57, max: 56 })
        );
        assert!(matches!(
            p.try_reserve(&m, 0),
            Err(RingError::BadLength { .. })
        ));
    }

    #[test]
    fn full_is_reported_and_never_overwrites() {
        let (_, m, mut p, mut c) = ring(64);
        send(&mut p, &m, &[1; 24]).unwrap(); // 32
        send(&mut p, &m, &[2; 24]).unwrap(); // 64: full
        assert_eq!(send(&mut p, &m, &[3; 1]), Err(RingError::Full));
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![1; 24]);
        send(&mut p, &m, &[3; 1]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![2; 24]);
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![3; 1]);
        assert_eq!(recv(&mut c, &m).unwrap(), None);
    }

    /// A payload that spells the header a later record would have cannot inject a
    /// message: the producer zeroes the next header slot before committing.
    #[test]
    fn payload_bytes_never_look_like_a_committed_header() {
        let (g, m, mut p, mut c) = ring(128);
        // Lap 0: a record at 0..56 whose payload holds, at index 16, the header a lap-1
        // record at position 144 (index 16) would have.
        let mut evil = vec![0u8; 48];
        evil[8..16].copy_from_slice(&g.header(128 + 16, 5, false).to_le_bytes());
        send(&mut p, &m, &evil).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), evil);
        send(&mut p, &m, &[1; 56]).unwrap(); // 56..120
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![1; 56]);
        // 8 bytes of padding at 120, then a record at 128..144 (lap 1).
        send(&mut p, &m, &[7; 8]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![7; 8]);
        assert_eq!(c.head(), 128 + 16);
        // The evil bytes were at index 16, where the consumer now looks: zeroed.
        assert_eq!(recv(&mut c, &m).unwrap(), None);
    }

    /// Bytes of an abandoned reservation (written, never committed) are stale payload too:
    /// a later, shorter record must not leave them looking like the next header.
    #[test]
    fn abandoned_reservation_bytes_never_look_like_a_committed_header() {
        let (g, m, mut p, mut c) = ring(128);
        // Reserve 0..56, write a lap-0 header for position 16 at index 16, abandon it.
        let r = p.try_reserve(&m, 48).unwrap();
        m.write_bytes(r.data + 8, &g.header(16, 5, false).to_le_bytes());
        // A record at 0..16: the word at 16 held that header and must be zeroed.
        send(&mut p, &m, &[3; 8]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![3; 8]);
        assert_eq!(recv(&mut c, &m).unwrap(), None);
        // Still a working ring afterwards.
        send(&mut p, &m, &[4; 8]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![4; 8]);
    }

    /// Batched records stay hidden until the flush, which reveals them all; a producer that
    /// dies before flushing leaves nothing behind (the next producer overwrites them).
    #[test]
    fn batched_records_appear_together_at_flush() {
        let (g, m, mut p, mut c) = ring(128);
        send(&mut p, &m, &[9; 56]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![9; 56]);
        for i in 0..3u8 {
            // the third one pads to the next lap
            let r = p.try_reserve(&m, 16).unwrap();
            m.write_bytes(r.data, &[i; 16]);
            p.commit(&m, &r, true);
            assert_eq!(recv(&mut c, &m).unwrap(), None, "hidden until the flush");
        }
        p.flush(&m);
        for i in 0..3u8 {
            assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![i; 16]);
        }
        assert_eq!(recv(&mut c, &m).unwrap(), None);
        // Hidden, then the producer "dies": a new one starts where the last flush ended.
        let r = p.try_reserve(&m, 8).unwrap();
        m.write_bytes(r.data, &[7; 8]);
        p.commit(&m, &r, true);
        let mut p2 = Producer::attach(g, &m).unwrap();
        send(&mut p2, &m, &[8; 8]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![8; 8]);
    }

    /// A batch's first header is kept back until the flush, so the word where it goes must
    /// not pass for a header meanwhile, even when no commit since attaching has checked it:
    /// here it holds garbage that looks committed (a length no record can have, so
    /// `attach` stops there).
    #[test]
    fn first_batch_after_attach_clears_a_header_lookalike() {
        let g = Geometry::new(128).unwrap();
        let m = HeapRing::new(128);
        m.poke(0, g.header(0, 1000, false));
        let mut p = Producer::attach(g, &m).unwrap();
        let mut c = Consumer::attach(g, &m).unwrap();
        let r = p.try_reserve(&m, 8).unwrap();
        assert_eq!(r.start, 0);
        m.write_bytes(r.data, &[5; 8]);
        p.commit(&m, &r, true);
        assert_eq!(c.try_peek(&m, false), Ok(None), "nothing before the flush");
        p.flush(&m);
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![5; 8]);
    }

    /// A producer that died after committing a record but before storing `tail`: the next
    /// producer moves past it, so it is neither lost nor overwritten.
    #[test]
    fn new_producer_moves_past_records_committed_without_tail() {
        let g = Geometry::new(128).unwrap();
        let m = HeapRing::new(128);
        let mut p = Producer::attach(g, &m).unwrap();
        send(&mut p, &m, b"one").unwrap();
        let stale_tail = m.tail.load(Ordering::Relaxed);
        send(&mut p, &m, b"two").unwrap();
        send(&mut p, &m, &[9; 40]).unwrap(); // forces padding later
        m.tail.store(stale_tail, Ordering::Relaxed); // "died before storing tail"
        let mut c = Consumer::attach(g, &m).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), b"one");
        let mut p2 = Producer::attach(g, &m).unwrap();
        send(&mut p2, &m, b"three").unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), b"two");
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![9; 40]);
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), b"three");
        assert_eq!(recv(&mut c, &m).unwrap(), None);
    }

    #[test]
    fn garbage_is_corruption_not_a_crash() {
        let g = Geometry::new(64).unwrap();
        let m = HeapRing::new(64);
        let mut p = Producer::attach(g, &m).unwrap();
        send(&mut p, &m, b"hello").unwrap();
        let mut c = Consumer::attach(g, &m).unwrap();
        // A committed header with a length larger than the ring.
        m.poke(0, g.header(0, 1000, false));
        assert!(matches!(
            c.try_peek(&m, true),
            Err(RingError::Corrupted {
                what: "record length",
                ..
            })
        ));
        // Padding that does not reach the end.
        m.poke(0, g.header(0, 8, true));
        assert!(matches!(
            c.try_peek(&m, true),
            Err(RingError::Corrupted { .. })
        ));
        // A record that overruns the end of the ring.
        m.poke(0, g.header(0, 60, false));
        assert!(matches!(
            c.try_peek(&m, true),
            Err(RingError::Corrupted { .. })
        ));
        // `tail` says there is a record but its header is not committed (another lap's).
        m.poke(0, (5 << 33) | 3);
        assert!(matches!(
            c.try_peek(&m, true),
            Err(RingError::Corrupted {
                what: "record header",
                ..
            })
        ));
        // `tail` beyond head + capacity.
        m.tail.store(1 << 20, Ordering::Relaxed);
        assert!(matches!(
            c.try_peek(&m, true),
            Err(RingError::Corrupted {
                what: "producer position",
                ..
            })
        ));
        assert!(matches!(
            Consumer::attach(g, &m),
            Err(RingError::Corrupted { .. })
        ));
        // The consumer position ahead of what the producer wrote.
        m.tail.store(16, Ordering::Relaxed);
        m.head.store(64, Ordering::Relaxed);
        assert!(matches!(
            p.refresh_head(&m),
            Err(RingError::Corrupted { .. })
        ));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send(usize),
        Reserve(usize),
        Recv,
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..=120).prop_map(Op::Send),
            1 => (1usize..=120).prop_map(Op::Reserve),
            4 => Just(Op::Recv),
            1 => Just(Op::Drain),
        ]
    }

    #[derive(Debug, Clone)]
    enum BatchOp {
        /// With `whole`, a batched record is written with its header in one go where it can
        /// be (`write_in_batch`).
        Commit {
            words: u64,
            batch: bool,
            whole: bool,
        },
        Flush,
        Recv,
    }

    fn batch_op() -> impl Strategy<Value = BatchOp> {
        prop_oneof![
            5 => (1u64..=15, any::<bool>(), any::<bool>())
                .prop_map(|(words, batch, whole)| BatchOp::Commit { words, batch, whole }),
            1 => Just(BatchOp::Flush),
            4 => Just(BatchOp::Recv),
        ]
    }

    proptest! {
        /// Random sends, abandoned reservations and receives against a `VecDeque` model.
        #[test]
        fn matches_vecdeque_model(ops in proptest::collection::vec(op(), 1..400), cap_pow in 7u32..10) {
            let cap = 1u64 << cap_pow;
            let (g, m, mut p, mut c) = ring(cap);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut counter = 0u8;
            for op in ops {
                match op {
                    Op::Send(n) => {
                        counter = counter.wrapping_add(1);
                        let msg: Vec<u8> = (0..n).map(|i| counter.wrapping_add(i as u8)).collect();
                        match send(&mut p, &m, &msg) {
                            Ok(()) => model.push_back(msg),
                            Err(RingError::Full) => {
                                // An empty ring takes any valid length, padding included.
                                prop_assert!(!model.is_empty(), "full while empty");
                            }
                            Err(RingError::BadLength { .. }) => prop_assert!(n as u64 > g.max_payload()),
                            Err(e) => prop_assert!(false, "unexpected {e:?}"),
                        }
                    }
                    Op::Reserve(n) => {
                        // Reserve, write garbage, abandon: nothing becomes visible.
                        if let Ok(r) = p.try_reserve(&m, n as u64) {
                            m.write_bytes(r.data, &vec![0xee; n]);
                        }
                    }
                    Op::Recv => {
                        let got = recv(&mut c, &m).unwrap();
                        prop_assert_eq!(got, model.pop_front());
                    }
                    Op::Drain => {
                        while let Some(v) = recv(&mut c, &m).unwrap() {
                            prop_assert_eq!(Some(v), model.pop_front());
                        }
                        prop_assert!(model.is_empty());
                    }
                }
            }
            while let Some(v) = recv(&mut c, &m).unwrap() {
                prop_assert_eq!(Some(v), model.pop_front());
            }
            prop_assert!(model.is_empty());
        }

        /// Batched and plain commits, flushes and receives against a model, with payloads
        /// made of words that would pass for committed headers one lap later at their own
        /// positions (the stale bytes the producer must never let the consumer take for a
        /// record): the consumer sees exactly the flushed messages, in order.
        #[test]
        fn batches_and_header_lookalikes_match_the_model(
            ops in proptest::collection::vec(batch_op(), 1..300),
            cap_pow in 7u32..10,
        ) {
            let cap = 1u64 << cap_pow;
            let (g, m, mut p, mut c) = ring(cap);
            // Visible messages, and those committed while a batch is open (visible at flush).
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut pending: Vec<Vec<u8>> = Vec::new();
            let mut open = false;
            for op in ops {
                match op {
                    BatchOp::Commit { words, batch, whole } => {
                        let len = words * 8;
                        let r = match p.try_reserve(&m, len) {
                            Ok(r) => r,
                            Err(RingError::Full) => {
                                prop_assert!(!model.is_empty() || !pending.is_empty(), "full while empty");
                                continue;
                            }
                            Err(RingError::BadLength { .. }) => {
                                prop_assert!(len > g.max_payload());
                                continue;
                            }
                            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
                        };
                        let msg: Vec<u8> = (0..words)
                            .flat_map(|k| {
                                let pos = r.start + HDR + 8 * k + cap;
                                g.header(pos, 8, false).to_le_bytes()
                            })
                            .collect();
                        if !(batch && whole && p.write_in_batch(&m, &r, &msg)) {
                            m.write_bytes(r.data, &msg);
                            p.commit(&m, &r, batch);
                        }
                        open |= batch;
                        if open {
                            pending.push(msg);
                        } else {
                            model.push_back(msg);
                        }
                    }
                    BatchOp::Flush => {
                        p.flush(&m);
                        model.extend(pending.drain(..));
                        open = false;
                    }
                    BatchOp::Recv => {
                        let got = recv(&mut c, &m).unwrap();
                        prop_assert_eq!(got, model.pop_front());
                    }
                }
            }
            p.flush(&m);
            model.extend(pending.drain(..));
            while let Some(v) = recv(&mut c, &m).unwrap() {
                prop_assert_eq!(Some(v), model.pop_front());
            }
            prop_assert!(model.is_empty());
        }

        /// Arbitrary ring contents and positions never panic the consumer or make it loop.
        #[test]
        fn consumer_survives_arbitrary_memory(words in proptest::collection::vec(any::<u64>(), 16), head in any::<u64>(), tail in any::<u64>()) {
            let g = Geometry::new(128).unwrap();
            let m = HeapRing::new(128);
            for (i, w) in words.iter().enumerate() {
                m.poke(i as u64 * 8, *w);
            }
            m.head.store(head & !7 & 0xffff, Ordering::Relaxed);
            m.tail.store(tail & !7 & 0xffff, Ordering::Relaxed);
            if let Ok(mut c) = Consumer::attach(g, &m) {
                for _ in 0..64 {
                    match c.try_peek(&m, true) {
                        Ok(Some(pk)) => {
                            prop_assert!(pk.data + pk.len <= 128);
                            c.consume(&pk);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            if let Ok(mut p) = Producer::attach(g, &m) {
                for len in [1, 7, 56] {
                    if let Ok(r) = p.try_reserve(&m, len) {
                        prop_assert!(r.data + r.len <= 128);
                        p.commit(&m, &r, false);
                    }
                }
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model checks of the ring indices: `RUSTFLAGS="--cfg loom" cargo test -p mapipc
    //! --release --lib channel::ring::loom_tests`.
    use super::heap::HeapRing;
    use super::*;
    use loom::sync::Arc;

    /// Streams records of `lens` (record `i` filled with `i + 1`, committed with
    /// `batch(i)`) through a 64-byte ring while a consumer receives them: every interleaving
    /// must deliver them in order with intact bytes, and loom's cells catch any read of a
    /// word being written. A full ring makes the producer flush (as `Sender` does) and wait.
    fn stream(lens: [u64; 3], batch: fn(usize) -> bool) {
        stream_with(lens, batch, false)
    }

    /// As [`stream`]; with `whole`, batched records are written with their headers in one
    /// go where they can be (`write_in_batch`, as `Sender::send_batched`).
    fn stream_with(lens: [u64; 3], batch: fn(usize) -> bool, whole: bool) {
        loom::model(move || {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapRing::new(64));
            let mp = m.clone();
            let prod = loom::thread::spawn(move || {
                let mut p = Producer::attach(g, &*mp).unwrap();
                for (i, len) in lens.into_iter().enumerate() {
                    loop {
                        match p.try_reserve(&*mp, len) {
                            Ok(r) => {
                                let data = vec![i as u8 + 1; len as usize];
                                if !(whole && batch(i) && p.write_in_batch(&*mp, &r, &data)) {
                                    mp.write_bytes(r.data, &data);
                                    p.commit(&*mp, &r, batch(i));
                                }
                                break;
                            }
                            Err(RingError::Full) => {
                                p.flush(&*mp);
                                loom::thread::yield_now();
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
                p.flush(&*mp);
            });
            let mut c = Consumer::attach(g, &*m).unwrap();
            let mut got = 0u8;
            while got < 3 {
                match c.try_peek(&*m, true).unwrap() {
                    Some(pk) => {
                        let mut buf = vec![0; pk.len as usize];
                        m.read_bytes(pk.data, &mut buf);
                        assert!(buf.iter().all(|b| *b == got + 1), "{buf:?}");
                        c.consume(&pk);
                        c.publish(&*m);
                        got += 1;
                    }
                    None => loom::thread::yield_now(),
                }
            }
            prod.join().unwrap();
        });
    }

    /// Three plain records through a 64-byte ring, forcing a wrap with padding.
    #[test]
    fn wraparound_delivers_in_order() {
        stream([20, 20, 12], |_| false);
    }

    /// Batches: one plain record, then batched ones, where the third needs padding and
    /// room the consumer has not freed yet (so the producer flushes and waits, and the
    /// third's padding header is the one hidden).
    #[test]
    fn batches_with_wraparound_deliver_in_order() {
        stream([12, 12, 20], |i| i > 0);
    }

    /// The same, with the batch's later records written whole (header and payload in any
    /// order, the header without Release): the flush's Release still orders them.
    #[test]
    fn batches_written_whole_deliver_in_order() {
        stream_with([12, 12, 20], |i| i > 0, true);
        stream_with([8, 8, 8], |_| true, true);
    }

    /// A batch appears whole: once the consumer sees its first record, the second is there
    /// too, without the producer's position (a non-thorough peek).
    #[test]
    fn batch_appears_at_once() {
        loom::model(|| {
            let g = Geometry::new(128).unwrap();
            let m = Arc::new(HeapRing::new(128));
            let mp = m.clone();
            let prod = loom::thread::spawn(move || {
                let mut p = Producer::attach(g, &*mp).unwrap();
                for i in 0..2u8 {
                    let r = p.try_reserve(&*mp, 16).unwrap();
                    mp.write_bytes(r.data, &[i + 1; 16]);
                    p.commit(&*mp, &r, true);
                }
                p.flush(&*mp);
            });
            let mut c = Consumer::attach(g, &*m).unwrap();
            let first = loop {
                if let Some(pk) = c.try_peek(&*m, true).unwrap() {
                    break pk;
                }
                loom::thread::yield_now();
            };
            let mut buf = [0u8; 16];
            m.read_bytes(first.data, &mut buf);
            assert_eq!(buf, [1; 16]);
            c.consume(&first);
            c.publish(&*m);
            let second = c
                .try_peek(&*m, false)
                .unwrap()
                .expect("the batch's second record");
            m.read_bytes(second.data, &mut buf);
            assert_eq!(buf, [2; 16]);
            prod.join().unwrap();
        });
    }

    /// Park/wake: the consumer parks on the channel's data notifier (no spinning) whenever the
    /// ring looks empty; the producer publishes, then notifies, as `Sender::publish` does. In
    /// every interleaving the consumer must get both records (a lost wake-up would leave it
    /// parked forever, which loom reports as a deadlock). The producer also parks on a space
    /// notifier when the 64-byte ring is full, which the consumer notifies after freeing.
    #[test]
    fn park_and_wake_lose_no_wakeup() {
        use crate::sync::{Notifier, WaitOptions};
        use loom::sync::atomic::AtomicU32;
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapRing::new(64));
            let data_word = Arc::new(AtomicU32::new(0));
            let space_word = Arc::new(AtomicU32::new(0));
            let (mp, dw, sw) = (m.clone(), data_word.clone(), space_word.clone());
            let prod = loom::thread::spawn(move || {
                let mut p = Producer::attach(g, &*mp).unwrap();
                let mut opts = WaitOptions::new();
                opts.spin(0);
                for (i, len) in [24u64, 24].into_iter().enumerate() {
                    let r = Notifier::new(&*sw)
                        .wait_until(
                            || match p.try_reserve(&*mp, len) {
                                Ok(r) => Some(r),
                                Err(RingError::Full) => None,
                                Err(e) => panic!("{e:?}"),
                            },
                            &opts,
                        )
                        .unwrap();
                    mp.write_bytes(r.data, &vec![i as u8 + 1; len as usize]);
                    p.commit(&*mp, &r, false);
                    Notifier::new(&*dw).notify_one();
                }
            });
            let mut c = Consumer::attach(g, &*m).unwrap();
            let mut opts = WaitOptions::new();
            opts.spin(0);
            for i in 0..2u8 {
                let pk = Notifier::new(&*data_word)
                    .wait_until(|| c.try_peek(&*m, true).unwrap(), &opts)
                    .unwrap();
                let mut buf = vec![0; pk.len as usize];
                m.read_bytes(pk.data, &mut buf);
                assert!(buf.iter().all(|b| *b == i + 1));
                c.consume(&pk);
                c.publish(&*m);
                Notifier::new(&*space_word).notify_one();
            }
            prod.join().unwrap();
        });
    }
}

/// Fuzzing entry: runs both ends of the ring over arbitrary memory (the first 16 bytes are
/// the positions, the rest the ring) and checks that nothing they report lies outside it.
#[cfg(fuzzing)]
pub(crate) fn fuzz_ring(data: &[u8]) {
    use heap::HeapRing;
    if data.len() < 16 + MIN_CAPACITY as usize {
        return;
    }
    let head = u64::from_le_bytes(data[0..8].try_into().unwrap());
    let tail = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let body = &data[16..];
    let cap = (1u64 << (63 - (body.len() as u64).leading_zeros())).min(1 << 16);
    let geo = Geometry::new(cap).unwrap();
    let mem = HeapRing::new(cap);
    for (i, chunk) in body[..cap as usize].chunks(8).enumerate() {
        mem.poke(i as u64 * 8, u64::from_le_bytes(chunk.try_into().unwrap()));
    }
    mem.head.store(head, Ordering::Relaxed);
    mem.tail.store(tail, Ordering::Relaxed);
    if let Ok(mut c) = Consumer::attach(geo, &mem) {
        let mut buf = Vec::new();
        // Bounded: each record is at least 8 bytes and at most `cap` bytes are published.
        for _ in 0..=(cap / 8) {
            match c.try_peek(&mem, true) {
                Ok(Some(p)) => {
                    assert!(p.data + p.len <= cap, "record outside the ring");
                    buf.resize(p.len as usize, 0);
                    mem.read_bytes(p.data, &mut buf);
                    c.consume(&p);
                    c.publish(&mem);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    if let Ok(mut p) = Producer::attach(geo, &mem) {
        for len in [1, 7, 64, geo.max_payload()] {
            if let Ok(r) = p.try_reserve(&mem, len) {
                assert!(r.data + r.len <= cap, "reservation outside the ring");
                p.commit(&mem, &r, false);
            }
        }
    }
}
