//! The single-producer single-consumer byte ring: framing, wrap-around and validation,
//! independent of where the memory lives.
//!
//! # Algorithm
//!
//! A bounded SPSC ring of variable-length records in the style of Lamport's SPSC queue
//! with free-running positions (as in the Linux kernel's `kfifo` and the BipBuffer's
//! contiguous records):
//!
//! - `tail` (written only by the producer) and `head` (written only by the consumer) are
//!   byte positions that only grow; the ring index is `position & (capacity - 1)`, the ring
//!   holds `tail - head` bytes, `0 <= tail - head <= capacity`.
//! - A record is an 8-byte header (`len: u32` little end, `flags: u32` high end of one
//!   little-endian `u64`) followed by the payload, padded to a multiple of 8. Records are
//!   contiguous: when a record does not fit before the end of the ring, a padding record
//!   (`flags = PAD`) fills the rest and the record starts at index 0. Hence the largest
//!   payload is `capacity / 2 - 8`: an empty ring can always take it, padding included.
//! - The producer writes header and payload, then publishes with a Release store of `tail`;
//!   the consumer's Acquire load of `tail` makes them visible (pair **T**). The consumer
//!   reads the record, then frees it with a Release store of `head`; the producer's Acquire
//!   load of `head` orders the consumer's reads before the producer's reuse of the bytes
//!   (pair **H**).
//! - Each side caches the other's position and reloads it only when its cached view says
//!   "full" (producer) or "empty" (consumer), so in steady state neither side touches the
//!   other's cache line per message.
//!
//! # Hostile peers
//!
//! Both positions and every header live in memory the other process can write. Nothing read
//! from there is trusted: a position must keep `0 <= tail - head <= capacity` with 8-byte
//! alignment, a header must have known flags, a length in `1..=max_payload` and fit both the
//! bytes published and the space before the end of the ring, and a padding record must end
//! exactly at the end of the ring. Anything else is [`RingError::Corrupted`]. Every loop is
//! bounded. Our own position is kept privately and only written out, so a peer scribbling on
//! it cannot make us read outside the ring.

use std::sync::atomic::Ordering;

/// Bytes in a record header.
pub(crate) const HDR: u64 = 8;
/// Header flag: padding to the end of the ring, skip it.
pub(crate) const FLAG_PAD: u32 = 1;
/// Smallest ring.
pub(crate) const MIN_CAPACITY: u64 = 64;
/// Largest ring (1 TiB), far below where positions could overflow.
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;

/// Size of the record carrying `len` payload bytes.
#[inline]
pub(crate) fn record_size(len: u64) -> u64 {
    HDR + ((len + 7) & !7)
}

#[inline]
fn pack(len: u64, flags: u32) -> u64 {
    (len & 0xffff_ffff) | ((flags as u64) << 32)
}

#[inline]
fn unpack(w: u64) -> (u64, u32) {
    (w & 0xffff_ffff, (w >> 32) as u32)
}

/// Ring size parameters, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    cap: u64,
}

impl Geometry {
    /// `cap` must be a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    pub(crate) fn new(cap: u64) -> Option<Geometry> {
        (cap.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap))
            .then_some(Geometry { cap })
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

    /// Checks a producer/consumer position pair read from shared memory.
    #[inline]
    fn valid_pair(&self, head: u64, tail: u64) -> bool {
        head <= tail && tail - head <= self.cap && head & 7 == 0 && tail & 7 == 0
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
    /// Reads the 8 bytes at `off` as a little-endian word.
    fn read_word(&self, off: u64) -> u64;
    /// Writes the 8 bytes at `off` as a little-endian word.
    fn write_word(&self, off: u64, w: u64);
    /// Copies `dst.len()` bytes from `off`. (The channel itself copies into a `Vec` with
    /// `MappedRing::read_into_vec`; tests and the fuzz target use this.)
    #[cfg_attr(not(any(test, fuzzing)), allow(dead_code))]
    fn read_bytes(&self, off: u64, dst: &mut [u8]);
    /// Copies `src` to `off`.
    fn write_bytes(&self, off: u64, src: &[u8]);
}

/// Space claimed by the producer for one record, not yet published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Position of the record header (after any padding).
    pub(crate) start: u64,
    /// Ring index of the payload.
    pub(crate) data: u64,
    /// Payload length.
    pub(crate) len: u64,
    /// Padding bytes written before `start` (0 if none).
    pub(crate) pad: u64,
}

impl Reservation {
    /// Position just past the record.
    #[inline]
    pub(crate) fn end(&self) -> u64 {
        self.start + record_size(self.len)
    }
}

/// The producer's private state.
#[derive(Debug, Clone)]
pub(crate) struct Producer {
    geo: Geometry,
    /// Our position: everything before it is published or locally committed.
    tail: u64,
    /// What we last published.
    published: u64,
    /// The consumer position as last read.
    cached_head: u64,
}

impl Producer {
    /// Attaches at the published positions, validating them.
    pub(crate) fn attach<M: RingMem>(geo: Geometry, mem: &M) -> Result<Producer, RingError> {
        let tail = mem.load_tail(Ordering::Acquire);
        let head = mem.load_head(Ordering::Acquire);
        if !geo.valid_pair(head, tail) {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "producer and consumer positions",
            });
        }
        Ok(Producer {
            geo,
            tail,
            published: tail,
            cached_head: head,
        })
    }

    /// Whether there is locally committed data not yet published.
    #[inline]
    pub(crate) fn has_unpublished(&self) -> bool {
        self.tail != self.published
    }

    /// Reloads the consumer position (pair **H**: Acquire).
    pub(crate) fn refresh_head<M: RingMem>(&mut self, mem: &M) -> Result<u64, RingError> {
        // Acquire pairs with the consumer's Release store in `Consumer::publish` (pair H).
        let head = mem.load_head(Ordering::Acquire);
        if !self.geo.valid_pair(head, self.tail) || head < self.cached_head {
            return Err(RingError::Corrupted {
                at: Where::Head,
                what: "consumer position",
            });
        }
        self.cached_head = head;
        Ok(head)
    }

    /// Claims space for a record of `len` payload bytes. Writes a padding record first if
    /// the record would straddle the end of the ring. Nothing is visible to the consumer
    /// until [`commit`](Self::commit) and [`publish`](Self::publish).
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
        let idx = self.geo.index(self.tail);
        let to_end = self.geo.cap - idx;
        let pad = if to_end < total { to_end } else { 0 };
        let need = pad + total;
        if self.tail + need - self.cached_head > self.geo.cap {
            self.refresh_head(mem)?;
            if self.tail + need - self.cached_head > self.geo.cap {
                return Err(RingError::Full);
            }
        }
        if pad > 0 {
            mem.write_word(idx, pack(pad - HDR, FLAG_PAD));
        }
        let start = self.tail + pad;
        Ok(Reservation {
            start,
            data: self.geo.index(start) + HDR,
            len,
            pad,
        })
    }

    /// Whether a record of `len` bytes fits now, given the cached consumer position.
    #[inline]
    pub(crate) fn fits_cached(&self, len: u64) -> bool {
        let total = record_size(len);
        let to_end = self.geo.cap - self.geo.index(self.tail);
        let need = if to_end < total {
            to_end + total
        } else {
            total
        };
        self.tail + need - self.cached_head <= self.geo.cap
    }

    /// Writes the record header and moves our position past it; call
    /// [`publish`](Self::publish) to make it (and earlier commits) visible.
    #[inline]
    pub(crate) fn commit<M: RingMem>(&mut self, mem: &M, r: &Reservation) {
        debug_assert!(r.start >= self.tail && r.start - self.tail == r.pad);
        mem.write_word(self.geo.index(r.start), pack(r.len, 0));
        self.tail = r.end();
    }

    /// Publishes every committed record (pair **T**: Release).
    #[inline]
    pub(crate) fn publish<M: RingMem>(&mut self, mem: &M) {
        if self.tail != self.published {
            // Release pairs with the consumer's Acquire load in `Consumer::refresh_tail`
            // (pair T): headers and payloads written above become visible with the position.
            mem.store_tail(self.tail, Ordering::Release);
            self.published = self.tail;
        }
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
    /// The producer position as last read.
    cached_tail: u64,
}

impl Consumer {
    /// Attaches at the published positions, validating them.
    pub(crate) fn attach<M: RingMem>(geo: Geometry, mem: &M) -> Result<Consumer, RingError> {
        let head = mem.load_head(Ordering::Acquire);
        let tail = mem.load_tail(Ordering::Acquire);
        if !geo.valid_pair(head, tail) {
            return Err(RingError::Corrupted {
                at: Where::Head,
                what: "producer and consumer positions",
            });
        }
        Ok(Consumer {
            geo,
            head,
            published: head,
            cached_tail: tail,
        })
    }

    /// Our position.
    #[inline]
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// Reloads the producer position (pair **T**: Acquire).
    pub(crate) fn refresh_tail<M: RingMem>(&mut self, mem: &M) -> Result<u64, RingError> {
        // Acquire pairs with the producer's Release store in `Producer::publish` (pair T).
        let tail = mem.load_tail(Ordering::Acquire);
        if !self.geo.valid_pair(self.head, tail) || tail < self.cached_tail {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "producer position",
            });
        }
        self.cached_tail = tail;
        Ok(tail)
    }

    /// The next record, skipping padding, or `None` when the ring is empty.
    #[inline]
    pub(crate) fn try_peek<M: RingMem>(&mut self, mem: &M) -> Result<Option<Peeked>, RingError> {
        // At most one padding record can precede a record; a third round means garbage.
        for _ in 0..3 {
            if self.head == self.cached_tail {
                self.refresh_tail(mem)?;
                if self.head == self.cached_tail {
                    return Ok(None);
                }
            }
            let idx = self.geo.index(self.head);
            let to_end = self.geo.cap - idx;
            let avail = self.cached_tail - self.head;
            let (len, flags) = unpack(mem.read_word(idx));
            if flags == FLAG_PAD {
                if HDR + len != to_end || to_end > avail {
                    return Err(RingError::Corrupted {
                        at: Where::Ring(idx),
                        what: "padding record",
                    });
                }
                self.head += to_end;
                continue;
            }
            if flags != 0 {
                return Err(RingError::Corrupted {
                    at: Where::Ring(idx),
                    what: "record flags",
                });
            }
            if len == 0 || len > self.geo.max_payload() {
                return Err(RingError::Corrupted {
                    at: Where::Ring(idx),
                    what: "record length",
                });
            }
            let total = record_size(len);
            if total > to_end || total > avail {
                return Err(RingError::Corrupted {
                    at: Where::Ring(idx),
                    what: "record overruns the published data",
                });
            }
            return Ok(Some(Peeked {
                data: idx + HDR,
                len,
                end: self.head + total,
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
    //! A ring in ordinary heap memory for tests (and, under `cfg(loom)`, with every word in
    //! a loom cell so the model checker sees data races on payload bytes too).

    use super::super::atomic::AtomicU64;
    use super::RingMem;
    use std::sync::atomic::Ordering;

    #[cfg(loom)]
    use loom::cell::UnsafeCell;
    #[cfg(not(loom))]
    use std::cell::UnsafeCell;

    /// Ring memory on the heap.
    pub(crate) struct HeapRing {
        pub(crate) head: AtomicU64,
        pub(crate) tail: AtomicU64,
        words: Box<[UnsafeCell<u64>]>,
    }

    // SAFETY: the ring protocol gives each word one writer at a time and orders the other
    // side's accesses through the positions; loom checks this claim in the models.
    unsafe impl Sync for HeapRing {}

    impl HeapRing {
        pub(crate) fn new(cap: u64) -> HeapRing {
            HeapRing {
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                words: (0..cap / 8).map(|_| UnsafeCell::new(0)).collect(),
            }
        }

        #[cfg(not(loom))]
        fn get(&self, i: usize) -> u64 {
            // SAFETY: the protocol guarantees no concurrent writer of this word.
            unsafe { *self.words[i].get() }
        }
        #[cfg(not(loom))]
        fn set(&self, i: usize, v: u64) {
            // SAFETY: the protocol guarantees this side is the only accessor of the word.
            unsafe { *self.words[i].get() = v }
        }
        #[cfg(loom)]
        fn get(&self, i: usize) -> u64 {
            // SAFETY: loom checks that no concurrent writer exists.
            self.words[i].with(|p| unsafe { *p })
        }
        #[cfg(loom)]
        fn set(&self, i: usize, v: u64) {
            // SAFETY: loom checks that no concurrent accessor exists.
            self.words[i].with_mut(|p| unsafe { *p = v })
        }

        /// Scribbles a word, as a hostile peer would.
        #[allow(dead_code)]
        pub(crate) fn poke(&self, off: u64, v: u64) {
            self.set((off / 8) as usize, v)
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
        fn read_word(&self, off: u64) -> u64 {
            self.get((off / 8) as usize)
        }
        fn write_word(&self, off: u64, w: u64) {
            self.set((off / 8) as usize, w)
        }
        fn read_bytes(&self, off: u64, dst: &mut [u8]) {
            for (k, chunk) in dst.chunks_mut(8).enumerate() {
                let w = self.get((off / 8) as usize + k).to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
        }
        fn write_bytes(&self, off: u64, src: &[u8]) {
            for (k, chunk) in src.chunks(8).enumerate() {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                self.set((off / 8) as usize + k, u64::from_le_bytes(w));
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
        p.commit(m, &r);
        p.publish(m);
        Ok(())
    }

    fn recv(c: &mut Consumer, m: &HeapRing) -> Result<Option<Vec<u8>>, RingError> {
        let Some(pk) = c.try_peek(m)? else {
            return Ok(None);
        };
        let mut v = vec![0; pk.len as usize];
        m.read_bytes(pk.data, &mut v);
        c.consume(&pk);
        c.publish(m);
        Ok(Some(v))
    }

    #[test]
    fn geometry_rules() {
        assert!(Geometry::new(63).is_none());
        assert!(Geometry::new(96).is_none());
        assert!(Geometry::new(1 << 41).is_none());
        let g = Geometry::new(4096).unwrap();
        assert_eq!(g.max_payload(), 2040);
        assert!(g.max_payload() >= g.capacity() / 4);
    }

    #[test]
    fn wraps_with_padding_and_keeps_order() {
        let g = Geometry::new(64).unwrap();
        let m = HeapRing::new(64);
        let mut p = Producer::attach(g, &m).unwrap();
        let mut c = Consumer::attach(g, &m).unwrap();
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
        let g = Geometry::new(128).unwrap();
        let m = HeapRing::new(128);
        let mut p = Producer::attach(g, &m).unwrap();
        let mut c = Consumer::attach(g, &m).unwrap();
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
        let g = Geometry::new(64).unwrap();
        let m = HeapRing::new(64);
        let mut p = Producer::attach(g, &m).unwrap();
        let mut c = Consumer::attach(g, &m).unwrap();
        send(&mut p, &m, &[1; 24]).unwrap(); // 32
        send(&mut p, &m, &[2; 24]).unwrap(); // 64: full
        assert_eq!(send(&mut p, &m, &[3; 1]), Err(RingError::Full));
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![1; 24]);
        send(&mut p, &m, &[3; 1]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![2; 24]);
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![3; 1]);
    }

    #[test]
    fn garbage_is_corruption_not_a_crash() {
        let g = Geometry::new(64).unwrap();
        let m = HeapRing::new(64);
        let mut p = Producer::attach(g, &m).unwrap();
        send(&mut p, &m, b"hello").unwrap();
        // length larger than the ring
        m.poke(0, pack(1000, 0));
        let mut c = Consumer::attach(g, &m).unwrap();
        assert!(matches!(
            c.try_peek(&m),
            Err(RingError::Corrupted {
                what: "record length",
                ..
            })
        ));
        // unknown flags
        m.poke(0, pack(5, 0x80));
        assert!(matches!(c.try_peek(&m), Err(RingError::Corrupted { .. })));
        // padding that does not reach the end
        m.poke(0, pack(8, FLAG_PAD));
        assert!(matches!(c.try_peek(&m), Err(RingError::Corrupted { .. })));
        // a length that overruns what was published
        m.poke(0, pack(40, 0));
        assert!(matches!(c.try_peek(&m), Err(RingError::Corrupted { .. })));
        // tail beyond head + capacity
        m.poke(0, pack(5, 0));
        m.tail.store(1 << 20, Ordering::Relaxed);
        // the cached view still holds the valid record; past it, the bad tail is caught
        let pk = c.try_peek(&m).unwrap().unwrap();
        c.consume(&pk);
        assert!(matches!(
            c.try_peek(&m),
            Err(RingError::Corrupted {
                what: "producer position",
                ..
            })
        ));
        assert!(matches!(
            Consumer::attach(g, &m),
            Err(RingError::Corrupted { .. })
        ));
        // head ahead of tail seen by the producer
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

    proptest! {
        /// Random sends, aborted reservations and receives against a `VecDeque` model.
        #[test]
        fn matches_vecdeque_model(ops in proptest::collection::vec(op(), 1..400), cap_pow in 7u32..10) {
            let cap = 1u64 << cap_pow;
            let g = Geometry::new(cap).unwrap();
            let m = HeapRing::new(cap);
            let mut p = Producer::attach(g, &m).unwrap();
            let mut c = Consumer::attach(g, &m).unwrap();
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
                        // Reserve and abort: nothing becomes visible.
                        let _ = p.try_reserve(&m, n as u64);
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
                    match c.try_peek(&m) {
                        Ok(Some(pk)) => {
                            prop_assert!(pk.data + pk.len <= 128);
                            c.consume(&pk);
                        }
                        Ok(None) | Err(_) => break,
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

    /// The producer sends three records through a 64-byte ring (forcing a wrap with
    /// padding) while the consumer receives them; every interleaving must deliver them in
    /// order with intact bytes, and loom's cells catch any read of a word being written.
    #[test]
    fn wraparound_delivers_in_order() {
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapRing::new(64));
            let mp = m.clone();
            let prod = loom::thread::spawn(move || {
                let mut p = Producer::attach(g, &*mp).unwrap();
                for (i, len) in [20u64, 20, 12].into_iter().enumerate() {
                    loop {
                        match p.try_reserve(&*mp, len) {
                            Ok(r) => {
                                mp.write_bytes(r.data, &vec![i as u8 + 1; len as usize]);
                                p.commit(&*mp, &r);
                                p.publish(&*mp);
                                break;
                            }
                            Err(RingError::Full) => loom::thread::yield_now(),
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
            });
            let mut c = Consumer::attach(g, &*m).unwrap();
            let mut got = 0u8;
            while got < 3 {
                match c.try_peek(&*m).unwrap() {
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
                let opts = WaitOptions::new().spin(0);
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
                    p.commit(&*mp, &r);
                    p.publish(&*mp);
                    Notifier::new(&*dw).notify_one();
                }
            });
            let mut c = Consumer::attach(g, &*m).unwrap();
            let opts = WaitOptions::new().spin(0);
            for i in 0..2u8 {
                let pk = Notifier::new(&*data_word)
                    .wait_until(|| c.try_peek(&*m).unwrap(), &opts)
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
            match c.try_peek(&mem) {
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
                p.commit(&mem, &r);
                p.publish(&mem);
            }
        }
    }
}
