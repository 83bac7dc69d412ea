//! The multi-producer single-consumer ring: lock-free claims with crash-safe records.
//!
//! # Algorithm
//!
//! A bounded ring of variable-size records in units of [`BLOCK`] bytes, with free-running
//! byte positions (index = position mod capacity). Every block starts with a *claim word*;
//! a record's first block also holds its payload length in the next word, then the payload:
//!
//! ```text
//! claim word (u64): state:3 | owner:8 | blocks:21 | tag:32
//!   tag    = (position / BLOCK) mod 2^32: which lap of the ring the word speaks for
//!   state  = FREE, CLAIMED, COMMITTED, ABORTED or PAD
//!   owner  = the producer's index in the channel's producer table
//!   blocks = the record's size in blocks (PAD: up to the end of the ring)
//! ```
//!
//! - **Free marks.** A block at position `q` that can be claimed holds `FREE | tag(q)`.
//!   The ring starts with every block marked free for lap 0; the consumer, after consuming
//!   a record, marks each of its blocks free for the *next* lap (`tag(q + capacity)`), then
//!   publishes its position with a Release store (pair **H**, with the producers' Acquire
//!   loads of it). It marks the record's first block last, with Release (pair **F**, with
//!   the Acquire load of a producer that finds that block free for the next lap and moves
//!   the hint one block on): the hint can lag at a pad or an aborted claim whose producer
//!   died before moving it, and the inner blocks of those still hold this lap's free marks;
//!   marked first, the first block would send a producer to claim one of them just before
//!   the consumer marks it, and that message would be lost.
//! - **Claim.** A producer reads the claim hint `x` (a lower bound of the frontier), checks
//!   that `x + size` is within one capacity of the consumer position, and CASes the word at
//!   `x` from `FREE | tag(x)` to `CLAIMED | owner | blocks | tag(x)` (AcqRel). The claim and
//!   its owner and size appear in one atomic step, so a producer dying right after it
//!   leaves a record the consumer can attribute and skip. A producer finding a word already
//!   claimed at `x` helps: it moves the hint past that record (CAS) and retries. Lock-free:
//!   every failed step is another producer's progress. A record that would straddle the end
//!   of the ring is preceded by a PAD record claimed the same way.
//! - **Commit.** The owner writes the payload and the length word, then CASes its claim
//!   word from CLAIMED to COMMITTED with Release (pair **C**, with the consumer's Acquire
//!   load of the claim word). If the CAS fails the consumer aborted the record: the send
//!   reports it.
//! - **Consume.** The consumer reads the claim word at its position (Acquire): FREE for this
//!   lap means empty; COMMITTED is delivered; PAD and ABORTED are skipped; CLAIMED is in
//!   progress: the consumer waits, and once the owner is dead (peer table) or the claim is
//!   older than the abort timeout, CASes it to ABORTED and skips it.
//! - **Consumer restarts.** A delivered record longer than a block is first marked
//!   `ABORTED | TAKEN` (an owner no producer has), then freed as above. A consumer killed
//!   while handing records back leaves, at the published position, blocks marked free for
//!   the next lap (consumed: the next consumer steps over them at attach, and so does a
//!   producer's takeover fence), then at most one record being freed: its first block still
//!   says what it was (a pad or an aborted claim is skipped again; a delivered one says
//!   ABORTED | TAKEN and is skipped, uncounted), never a delivered record whose payload
//!   already carries free marks. Producers claim nothing there meanwhile: their window ends
//!   one capacity past the published position.
//!
//! A producer whose claim was aborted while it was alive (the timeout) is not stopped from
//! writing: bytes it writes into its record after the consumer freed it land in records
//! claimed at the next lap. The abort timeout must exceed the time a producer may hold a
//! claim (`Receiver::set_abort_timeout`).
//!
//! Order is the claim order, hence FIFO per producer. The tag makes a stale claim attempt
//! (a producer that read the hint, stalled, and woke after the ring moved on) fail its CAS:
//! the word now carries another lap's tag. The tag wraps after 2^32 blocks (128 GiB of
//! traffic at 32-byte blocks), so a producer stalled across exactly that much traffic,
//! resuming at exactly the wrong moment, is the one case this does not cover.
//!
//! The hint is only ever a lower bound of the frontier (the end of the last claimed
//! record): it moves forward past claimed records, past blocks marked free for the next lap
//! (consumed, so the frontier is beyond them), and up to the consumer's position.
//!
//! # Hostile peers
//!
//! Every claim word, length, the hint and the consumer position are validated: a tag for
//! another lap, an unknown state, a size beyond the ring, a length beyond its record, an
//! owner beyond the producer table, a hint outside the consumer's window, a position beyond
//! [`MAX_POSITION`] give [`RingError::Corrupted`]; every loop is bounded.

use std::sync::atomic::Ordering;

use super::layout::off;
use super::ring::{Geometry, RingError, Where, MAX_POSITION};
use super::words::Words;

/// Block size: the unit of records and of claim words.
pub(crate) const BLOCK: u64 = 32;
/// Record header: claim word and length word.
pub(crate) const HDR: u64 = 16;
/// Largest record in blocks (21-bit field).
const MAX_BLOCKS: u64 = (1 << 21) - 1;
/// Most producer slots (8-bit owner field; index 255 is [`TAKEN`]).
pub(crate) const MAX_OWNERS: u32 = 255;
/// The owner of an ABORTED mark the consumer puts on a delivered record while handing it
/// back (never a producer's index): skipped, not counted as aborted.
const TAKEN: u64 = 0xff;

pub(crate) const FREE: u64 = 0;
pub(crate) const CLAIMED: u64 = 1;
pub(crate) const COMMITTED: u64 = 2;
pub(crate) const ABORTED: u64 = 3;
pub(crate) const PAD: u64 = 4;

/// Bound on the attempts of one claim (each normally follows another producer's
/// progress); beyond it the shared state is taken as corrupted.
const CLAIM_ATTEMPTS: u32 = 1 << 20;

#[inline]
pub(crate) fn tag(pos: u64) -> u64 {
    (pos / BLOCK) & 0xffff_ffff
}

#[inline]
pub(crate) fn pack(state: u64, owner: u64, blocks: u64, tag: u64) -> u64 {
    (state << 61) | ((owner & 0xff) << 53) | ((blocks & MAX_BLOCKS) << 32) | (tag & 0xffff_ffff)
}

/// `(state, owner, blocks, tag)`.
#[inline]
pub(crate) fn unpack(w: u64) -> (u64, u64, u64, u64) {
    (
        w >> 61,
        (w >> 53) & 0xff,
        (w >> 32) & MAX_BLOCKS,
        w & 0xffff_ffff,
    )
}

/// The claim word of a free block at position `pos`.
#[inline]
pub(crate) fn free_word(pos: u64) -> u64 {
    pack(FREE, 0, 0, tag(pos))
}

/// Blocks taken by a record of `len` payload bytes.
#[inline]
pub(crate) fn blocks_for(len: u64) -> u64 {
    (HDR + len).div_ceil(BLOCK)
}

/// Largest MPSC payload for a ring: half the ring, and what 21 bits of blocks can say.
pub(crate) fn max_payload(geo: Geometry) -> u64 {
    (geo.capacity() / 2).min(MAX_BLOCKS * BLOCK) - HDR
}

/// Marks every block of a fresh ring free for lap 0.
pub(crate) fn init_ring<W: Words>(geo: Geometry, mem: &W) {
    for q in (0..geo.capacity()).step_by(BLOCK as usize) {
        mem.word_store(q, free_word(q), Ordering::Relaxed);
    }
}

/// A claimed record, not yet committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    /// Position of the record.
    pub(crate) pos: u64,
    /// Ring index of the payload.
    pub(crate) data: u64,
    /// Payload length.
    pub(crate) len: u64,
    /// The claim word as we wrote it.
    word: u64,
}

/// One producer's private state.
#[derive(Debug, Clone)]
pub(crate) struct MpscProducer {
    geo: Geometry,
    owner: u64,
    cached_head: u64,
}

impl MpscProducer {
    pub(crate) fn new(geo: Geometry, owner: u32) -> MpscProducer {
        MpscProducer {
            geo,
            owner: owner as u64,
            // Unknown: the first claim reads the consumer position (a claim checks the
            // hint against it, and 0 would let a hint far behind a garbage position pass).
            cached_head: u64::MAX,
        }
    }

    fn refresh_head<W: Words>(&mut self, mem: &W) -> Result<u64, RingError> {
        // Acquire pairs with the consumer's Release store of its position (pair H): the
        // free marks and its reads of the freed records happen before our claims.
        let head = mem.ctl_load(off::HEAD, Ordering::Acquire);
        if head % BLOCK != 0 || head > MAX_POSITION {
            return Err(RingError::Corrupted {
                at: Where::Head,
                what: "consumer position",
            });
        }
        self.cached_head = head;
        Ok(head)
    }

    /// Claims room for `len` payload bytes.
    pub(crate) fn try_claim<W: Words>(&mut self, mem: &W, len: u64) -> Result<Claim, RingError> {
        let max = max_payload(self.geo);
        if len == 0 || len > max {
            return Err(RingError::BadLength { len, max });
        }
        let cap = self.geo.capacity();
        let nb = blocks_for(len);
        let bytes = nb * BLOCK;
        for _ in 0..CLAIM_ATTEMPTS {
            let x = mem.ctl_load(off::TAIL, Ordering::Acquire);
            if x % BLOCK != 0 || x > MAX_POSITION {
                return Err(RingError::Corrupted {
                    at: Where::Tail,
                    what: "claim position",
                });
            }
            if x < self.cached_head || x - self.cached_head > cap {
                let head = self.refresh_head(mem)?;
                if x < head {
                    // The hint lags behind records already consumed: move it up.
                    let _ = mem.ctl_cas(off::TAIL, x, head);
                    continue;
                }
                if x - head > cap {
                    return Err(RingError::Corrupted {
                        at: Where::Tail,
                        what: "claim position beyond the ring",
                    });
                }
            }
            let idx = x & (cap - 1);
            let to_end = cap - idx;
            let (need, pad) = if to_end < bytes {
                (to_end, true)
            } else {
                (bytes, false)
            };
            if x + need - self.cached_head > cap {
                let head = self.refresh_head(mem)?;
                if x < head {
                    continue;
                }
                if x + need - head > cap {
                    // A ring this full holds a record at `head` (`x > head` here). A block
                    // there still free for `head`'s lap means nothing was claimed past it:
                    // the hint is garbage, and waiting for room would wait for ever.
                    if mem.word_load(head & (cap - 1), Ordering::Acquire) == free_word(head) {
                        return Err(RingError::Corrupted {
                            at: Where::Tail,
                            what: "claim position past a free block",
                        });
                    }
                    return Err(RingError::Full);
                }
            }
            let w = mem.word_load(idx, Ordering::Acquire);
            if w == free_word(x) {
                let new = if pad {
                    pack(PAD, self.owner, to_end / BLOCK, tag(x))
                } else {
                    pack(CLAIMED, self.owner, nb, tag(x))
                };
                // AcqRel: the claim is ours; Acquire also orders after the free mark.
                if mem.word_cas(idx, w, new).is_ok() {
                    let _ = mem.ctl_cas(off::TAIL, x, x + need);
                    if pad {
                        continue;
                    }
                    return Ok(Claim {
                        pos: x,
                        data: idx + HDR,
                        len,
                        word: new,
                    });
                }
                continue;
            }
            let (st, _, wb, t) = unpack(w);
            let valid_size = match st {
                PAD => wb * BLOCK == to_end,
                CLAIMED | COMMITTED | ABORTED => wb >= 1 && wb * BLOCK <= to_end,
                _ => false,
            };
            if t == tag(x) && valid_size {
                // Someone claimed `x`: help the hint past that record, then retry.
                let _ = mem.ctl_cas(off::TAIL, x, x + wb * BLOCK);
                continue;
            }
            if w == free_word(x + cap) {
                // `x` was consumed already (the consumer marks blocks free for the next lap
                // before publishing its position): the frontier is past this block.
                let _ = mem.ctl_cas(off::TAIL, x, x + BLOCK);
                continue;
            }
            let head = self.refresh_head(mem)?;
            if x < head {
                let _ = mem.ctl_cas(off::TAIL, x, head);
                continue;
            }
            return Err(RingError::Corrupted {
                at: Where::Ring(idx),
                what: "claim word",
            });
        }
        Err(RingError::Corrupted {
            at: Where::Tail,
            what: "claims did not converge",
        })
    }

    /// Publishes a claimed record whose payload was written. `false`: the consumer aborted
    /// it first (its owner looked dead or it was older than the abort timeout).
    pub(crate) fn commit<W: Words>(&self, mem: &W, c: &Claim) -> bool {
        let idx = c.pos & (self.geo.capacity() - 1);
        mem.word_store(idx + 8, c.len, Ordering::Relaxed);
        let (_, owner, nb, t) = unpack(c.word);
        // Release pairs with the consumer's Acquire load of the claim word (pair C): the
        // payload and length written above are visible once it sees COMMITTED.
        mem.word_cas(idx, c.word, pack(COMMITTED, owner, nb, t))
            .is_ok()
    }

    /// Gives a claimed record up (a dropped grant): the consumer skips it.
    pub(crate) fn abandon<W: Words>(&self, mem: &W, c: &Claim) {
        let idx = c.pos & (self.geo.capacity() - 1);
        let (_, owner, nb, t) = unpack(c.word);
        let _ = mem.word_cas(idx, c.word, pack(ABORTED, owner, nb, t));
    }
}

/// What the consumer found at its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing claimed yet.
    Empty,
    /// A committed record.
    Record {
        /// Ring index of the payload.
        data: u64,
        /// Payload length.
        len: u64,
        /// Position just past the record.
        end: u64,
    },
    /// A record still being written by `owner`; `word` identifies this claim.
    InProgress {
        /// Producer index.
        owner: u32,
        /// The claim word seen.
        word: u64,
    },
}

/// The consumer's private state.
#[derive(Debug, Clone)]
pub(crate) struct MpscConsumer {
    geo: Geometry,
    /// Producer slots of the channel: a claim naming another owner is garbage.
    owners: u32,
    head: u64,
    published: u64,
    /// Records skipped because they were aborted, since the last call to `take_aborted`.
    aborted: u64,
}

impl MpscConsumer {
    /// Attaches at the published consumer position. `owners`: the channel's producer slots
    /// (its `max_producers`); claims are attributed to one of them.
    pub(crate) fn attach<W: Words>(
        geo: Geometry,
        owners: u32,
        mem: &W,
    ) -> Result<MpscConsumer, RingError> {
        let head = mem.ctl_load(off::HEAD, Ordering::Acquire);
        if head % BLOCK != 0 || head > MAX_POSITION {
            return Err(RingError::Corrupted {
                at: Where::Head,
                what: "consumer position",
            });
        }
        // A predecessor killed between handing records back (their blocks marked free for
        // the next lap) and publishing its position left those marks at the position: the
        // records were consumed, continue after them. Producers claim no block there before
        // the position moves past it (their window ends a capacity after it), so the marks
        // stay until we publish. At most a ring of them.
        let cap = geo.capacity();
        let mut pos = head;
        for _ in 0..cap / BLOCK {
            if mem.word_load(pos & (cap - 1), Ordering::Acquire) != free_word(pos + cap) {
                break;
            }
            pos += BLOCK;
        }
        Ok(MpscConsumer {
            geo,
            owners,
            head: pos,
            published: head,
            aborted: 0,
        })
    }

    /// Hands the record `[self.head, end)` back, marking its blocks free for the next lap,
    /// and moves to `end` (published by [`publish`](Self::publish)). `delivered`: a
    /// committed record (not a pad or an aborted one).
    ///
    /// The first block is marked last, with Release (pair **F**, with the Acquire load of a
    /// producer that finds it free for the next lap and moves the hint on by one block): the
    /// other blocks are marked by then. Inside a pad or an aborted claim the other blocks
    /// still hold this lap's free marks; marked first, one could be claimed by a producer
    /// following the hint and then overwritten here, losing its message.
    ///
    /// A delivered record of several blocks is first marked ABORTED: a consumer killed while
    /// marking leaves a record the next one skips (its marks over the payload would otherwise
    /// be delivered as data), and the first block is never free before the others are (the
    /// next consumer steps over free marks at its position one block at a time).
    fn free_to<W: Words>(&mut self, mem: &W, end: u64, delivered: bool) {
        let cap = self.geo.capacity();
        let first = self.head;
        if delivered && end - first > BLOCK {
            let nb = (end - first) / BLOCK;
            mem.word_store(
                first & (cap - 1),
                pack(ABORTED, TAKEN, nb, tag(first)),
                Ordering::Relaxed,
            );
        }
        let mut q = end;
        while q > first + BLOCK {
            q -= BLOCK;
            // Release: ordered after the ABORTED mark (for a killed consumer's successor).
            mem.word_store(q & (cap - 1), free_word(q + cap), Ordering::Release);
        }
        // Release: pair F.
        mem.word_store(first & (cap - 1), free_word(first + cap), Ordering::Release);
        self.head = end;
    }

    /// The record at our position, skipping padding and aborted records.
    pub(crate) fn try_peek<W: Words>(&mut self, mem: &W) -> Result<Found, RingError> {
        let cap = self.geo.capacity();
        // Each round consumes a PAD or ABORTED record or returns; bound the skips so a
        // ring full of garbage cannot keep us here.
        for _ in 0..=(cap / BLOCK) {
            let idx = self.head & (cap - 1);
            let to_end = cap - idx;
            // Acquire pairs with the owner's Release CAS to COMMITTED (pair C).
            let w = mem.word_load(idx, Ordering::Acquire);
            if w == free_word(self.head) {
                return Ok(Found::Empty);
            }
            let (st, owner, nb, t) = unpack(w);
            let bad = |what| RingError::Corrupted {
                at: Where::Ring(idx),
                what,
            };
            if t != tag(self.head) {
                return Err(bad("claim word of another lap"));
            }
            match st {
                PAD => {
                    if nb * BLOCK != to_end {
                        return Err(bad("padding record"));
                    }
                    self.free_to(mem, self.head + to_end, false);
                }
                CLAIMED | COMMITTED | ABORTED if nb >= 1 && nb * BLOCK <= to_end => match st {
                    // The owner indexes the producer table when the claim is checked:
                    // one beyond it was not written by a producer of this channel.
                    CLAIMED if owner >= u64::from(self.owners) => return Err(bad("claim owner")),
                    CLAIMED => {
                        return Ok(Found::InProgress {
                            owner: owner as u32,
                            word: w,
                        })
                    }
                    ABORTED => {
                        // A record a killed predecessor had taken is not counted.
                        if owner != TAKEN {
                            self.aborted += 1;
                        }
                        self.free_to(mem, self.head + nb * BLOCK, false);
                    }
                    _ => {
                        let len = mem.word_load(idx + 8, Ordering::Relaxed);
                        if len == 0 || len > nb * BLOCK - HDR || len > max_payload(self.geo) {
                            return Err(bad("record length"));
                        }
                        return Ok(Found::Record {
                            data: idx + HDR,
                            len,
                            end: self.head + nb * BLOCK,
                        });
                    }
                },
                _ => return Err(bad("claim word")),
            }
        }
        Err(RingError::Corrupted {
            at: Where::Ring(self.head & (cap - 1)),
            what: "skipping loop",
        })
    }

    /// Aborts the in-progress record identified by `word` (its owner is dead or too slow).
    /// `true` if we aborted it; `false` if its owner committed it meanwhile.
    pub(crate) fn abort<W: Words>(&mut self, mem: &W, word: u64) -> bool {
        let idx = self.head & (self.geo.capacity() - 1);
        let (_, owner, nb, t) = unpack(word);
        mem.word_cas(idx, word, pack(ABORTED, owner, nb, t)).is_ok()
    }

    /// Consumes a record returned by [`try_peek`](Self::try_peek).
    pub(crate) fn consume<W: Words>(&mut self, mem: &W, end: u64) {
        self.free_to(mem, end, true);
    }

    /// Our position.
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// Whether consumed space is not yet handed back.
    pub(crate) fn has_unpublished(&self) -> bool {
        self.head != self.published
    }

    /// The position we last published (what `head` in shared memory should hold: only we
    /// write it).
    #[inline]
    pub(crate) fn published(&self) -> u64 {
        self.published
    }

    /// Hands consumed space back to the producers (pair **H**: Release).
    pub(crate) fn publish<W: Words>(&mut self, mem: &W) {
        if self.head != self.published {
            // Release pairs with the producers' Acquire loads in `refresh_head` (pair H).
            mem.ctl_store(off::HEAD, self.head, Ordering::Release);
            self.published = self.head;
        }
    }

    /// Aborted records skipped since the last call.
    pub(crate) fn take_aborted(&mut self) -> u64 {
        std::mem::take(&mut self.aborted)
    }
}

/// Fuzzing entry: the consumer, then producers, then the consumer again over arbitrary
/// ring memory on the heap, checking that every record and claim they report lies inside the
/// ring and that every loop ends.
///
/// Input: a flags byte (bit 0: keep the positions' low 16 bits only, so they land near each
/// other; bit 1: abort claims in progress; bits 2..4: the capacity, 128 to 4096 bytes;
/// bits 4..8: the producer slots, 0 for [`MAX_OWNERS`]), the consumer position and the
/// claim hint (8 bytes each, little-endian), then bytes laid over a ring freshly marked
/// free for lap 0.
#[cfg(fuzzing)]
pub(crate) fn fuzz_ring(data: &[u8]) {
    use super::words::heap::HeapWords;
    if data.len() < 17 {
        return;
    }
    let flags = data[0];
    let cap = [128, 256, 1024, 4096][usize::from(flags >> 2) & 3];
    let mut head = u64::from_le_bytes(data[1..9].try_into().unwrap());
    let mut hint = u64::from_le_bytes(data[9..17].try_into().unwrap());
    if flags & 1 != 0 {
        head &= 0xffff;
        hint &= 0xffff;
    }
    let owners = match u32::from(flags >> 4) {
        0 => MAX_OWNERS,
        n => n,
    };
    let geo = Geometry::new(cap).unwrap();
    let mem = HeapWords::new(cap);
    init_ring(geo, &mem);
    for (i, chunk) in data[17..].chunks(8).take((cap / 8) as usize).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        mem.word_store(i as u64 * 8, u64::from_le_bytes(w), Ordering::Relaxed);
    }
    mem.ctl_store(off::HEAD, head, Ordering::Relaxed);
    mem.ctl_store(off::TAIL, hint, Ordering::Relaxed);
    let abort = flags & 2 != 0;
    let drain = |c: &mut MpscConsumer| {
        let mut buf = Vec::new();
        // Every round consumes at least a block, aborts a claim (consumed by the next round)
        // or stops; consumed blocks are marked free for the next lap, so one lap at most.
        for _ in 0..2 * (cap / BLOCK) + 4 {
            match c.try_peek(&mem) {
                Ok(Found::Record { data, len, end }) => {
                    assert!(
                        data % 8 == 0 && data + len <= cap,
                        "record outside the ring"
                    );
                    assert!(len >= 1 && len <= max_payload(geo), "record length");
                    assert!(end > c.head() && end - c.head() <= cap, "record end");
                    buf.resize(len as usize, 0);
                    mem.read_bytes(data, &mut buf);
                    c.consume(&mem, end);
                    c.publish(&mem);
                }
                Ok(Found::InProgress { owner, word }) if abort => {
                    assert!(owner < owners, "claim owner beyond the table");
                    c.abort(&mem, word);
                }
                Ok(Found::InProgress { owner, .. }) => {
                    assert!(owner < owners, "claim owner beyond the table");
                    return;
                }
                Ok(Found::Empty) | Err(_) => return,
            }
        }
        panic!("the consumer did not stop");
    };
    if let Ok(mut c) = MpscConsumer::attach(geo, owners, &mem) {
        drain(&mut c);
    }
    let mut p = MpscProducer::new(geo, 0);
    for len in [1, 16, 17, 100, max_payload(geo)] {
        if let Ok(claim) = p.try_claim(&mem, len) {
            assert!(claim.pos % BLOCK == 0, "claim position");
            assert!(claim.data + claim.len <= cap, "claim outside the ring");
            mem.write_bytes(claim.data, &vec![0xa5; len as usize]);
            p.commit(&mem, &claim);
        }
    }
    if let Ok(mut c) = MpscConsumer::attach(geo, owners, &mem) {
        drain(&mut c);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::words::heap::HeapWords;
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn ring(cap: u64) -> (Geometry, HeapWords) {
        let geo = Geometry::new(cap).unwrap();
        let mem = HeapWords::new(cap);
        init_ring(geo, &mem);
        (geo, mem)
    }

    fn send(p: &mut MpscProducer, m: &HeapWords, data: &[u8]) -> Result<(), RingError> {
        let c = p.try_claim(m, data.len() as u64)?;
        m.write_bytes(c.data, data);
        assert!(p.commit(m, &c));
        Ok(())
    }

    fn recv(c: &mut MpscConsumer, m: &HeapWords) -> Result<Option<Vec<u8>>, RingError> {
        match c.try_peek(m)? {
            Found::Empty => Ok(None),
            Found::InProgress { .. } => panic!("in progress"),
            Found::Record { data, len, end } => {
                let mut v = vec![0; len as usize];
                m.read_bytes(data, &mut v);
                c.consume(m, end);
                c.publish(m);
                Ok(Some(v))
            }
        }
    }

    #[test]
    fn words_pack_round_trip() {
        let w = pack(COMMITTED, 200, 12345, 0xdead_beef);
        assert_eq!(unpack(w), (COMMITTED, 200, 12345, 0xdead_beef));
        assert_eq!(free_word(0), 0);
        assert_ne!(free_word(4096), free_word(0));
        assert_eq!(blocks_for(16), 1);
        assert_eq!(blocks_for(17), 2);
    }

    #[test]
    fn interleaved_producers_are_fifo_each_and_wrap() {
        let (geo, m) = ring(256);
        let mut a = MpscProducer::new(geo, 0);
        let mut b = MpscProducer::new(geo, 1);
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        for round in 0..200u32 {
            send(&mut a, &m, &[round as u8; 20]).unwrap();
            send(&mut b, &m, &[!(round as u8); 40]).unwrap();
            assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![round as u8; 20]);
            assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![!(round as u8); 40]);
            assert_eq!(recv(&mut c, &m).unwrap(), None);
        }
    }

    #[test]
    fn claim_left_by_a_dead_producer_is_aborted_and_skipped() {
        let (geo, m) = ring(256);
        let mut dead = MpscProducer::new(geo, 3);
        let mut live = MpscProducer::new(geo, 4);
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        let claim = dead.try_claim(&m, 30).unwrap(); // ... and never commits
        send(&mut live, &m, b"after").unwrap();
        let Found::InProgress { owner, word } = c.try_peek(&m).unwrap() else {
            panic!("expected a claim in progress")
        };
        assert_eq!(owner, 3);
        assert!(c.abort(&m, word));
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), b"after");
        assert_eq!(c.take_aborted(), 1);
        // A late commit of the aborted claim is refused.
        assert!(!dead.commit(&m, &claim));
    }

    #[test]
    fn full_then_room_again() {
        let (geo, m) = ring(128);
        let mut p = MpscProducer::new(geo, 0);
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        send(&mut p, &m, &[1; 48]).unwrap(); // 64 bytes
        send(&mut p, &m, &[2; 48]).unwrap(); // 128: full
        assert_eq!(p.try_claim(&m, 1), Err(RingError::Full));
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![1; 48]);
        send(&mut p, &m, &[3; 1]).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![2; 48]);
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), vec![3; 1]);
    }

    #[test]
    fn garbage_is_corruption() {
        let (geo, m) = ring(128);
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        m.word_store(0, pack(COMMITTED, 0, 1, 7), Ordering::Relaxed); // wrong lap
        assert!(matches!(c.try_peek(&m), Err(RingError::Corrupted { .. })));
        m.word_store(0, pack(COMMITTED, 0, 100, 0), Ordering::Relaxed); // too big
        assert!(matches!(c.try_peek(&m), Err(RingError::Corrupted { .. })));
        m.word_store(0, pack(7, 0, 1, 0), Ordering::Relaxed); // unknown state
        assert!(matches!(c.try_peek(&m), Err(RingError::Corrupted { .. })));
        m.word_store(0, pack(COMMITTED, 0, 1, 0), Ordering::Relaxed);
        m.word_store(8, 999, Ordering::Relaxed); // length beyond the record
        assert!(matches!(c.try_peek(&m), Err(RingError::Corrupted { .. })));
        let mut p = MpscProducer::new(geo, 0);
        m.ctl_store(off::TAIL, 13, Ordering::Relaxed);
        assert!(matches!(
            p.try_claim(&m, 4),
            Err(RingError::Corrupted { .. })
        ));
    }

    /// A consumer killed after consuming records (their blocks marked free for the next
    /// lap) but before publishing its position: the next consumer attaches at the old
    /// position and must continue after those records, neither failing on the marks
    /// (they carry the next lap's tag) nor delivering anything twice.
    #[test]
    fn a_consumer_killed_before_publishing_is_continued_after() {
        let (geo, m) = ring(256);
        let mut p = MpscProducer::new(geo, 0);
        // A one-block record, a pad's worth of records and a wrap: consumed unpublished at
        // every point of the sequence in turn.
        let msgs: Vec<Vec<u8>> = [8usize, 100, 16, 40, 112, 8, 60, 1]
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8 + 1; n])
            .collect();
        for sent in &msgs {
            send(&mut p, &m, sent).unwrap();
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
            let Found::Record { data, len, end } = c.try_peek(&m).unwrap() else {
                panic!("expected {sent:?}")
            };
            let mut v = vec![0; len as usize];
            m.read_bytes(data, &mut v);
            assert_eq!(&v, sent);
            c.consume(&m, end);
            // Killed here: `publish` never runs.
            let mut next = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
            assert_eq!(next.try_peek(&m), Ok(Found::Empty), "after {sent:?}");
            assert!(next.has_unpublished());
            next.publish(&m);
        }
        // The producers see the space handed back.
        for sent in &msgs {
            send(&mut p, &m, sent).unwrap();
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
            assert_eq!(recv(&mut c, &m).unwrap().as_ref(), Some(sent));
        }
    }

    /// A consumer killed in the middle of handing a delivered record of several blocks back
    /// (its first block says `ABORTED | TAKEN`, some inner blocks are marked free for the
    /// next lap, over the payload): the next consumer skips it, uncounted, and delivers what
    /// follows intact.
    #[test]
    fn a_consumer_killed_while_freeing_a_record_skips_it_uncounted() {
        let (geo, m) = ring(256);
        let mut p = MpscProducer::new(geo, 0);
        send(&mut p, &m, &[1; 100]).unwrap(); // 4 blocks
        send(&mut p, &m, &[2; 40]).unwrap();
        // What `free_to` leaves after the mark and the last inner block.
        m.word_store(0, pack(ABORTED, TAKEN, 4, tag(0)), Ordering::Relaxed);
        m.word_store(96, free_word(96 + 256), Ordering::Release);
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap(), Some(vec![2; 40]));
        assert_eq!(c.take_aborted(), 0);
        assert_eq!(recv(&mut c, &m).unwrap(), None);
    }

    proptest! {
        /// Random interleavings of 3 producers' claims, commits (possibly out of claim
        /// order) and abandons against a model: the consumer sees the committed messages in
        /// claim order, skips abandoned ones, and each producer's messages stay in order.
        #[test]
        fn matches_model(ops in proptest::collection::vec((0u8..3, 0u8..4, 1u64..60), 1..300)) {
            let (geo, m) = ring(512);
            let mut ps: Vec<MpscProducer> = (0..3).map(|i| MpscProducer::new(geo, i)).collect();
            let mut pending: Vec<Option<(Claim, Vec<u8>)>> = vec![None, None, None];
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
            // In claim order: (position, message or None if abandoned, committed yet?)
            let mut model: VecDeque<(u64, Option<Vec<u8>>)> = VecDeque::new();
            let mut committed: std::collections::HashSet<u64> = Default::default();
            let mut n = 0u8;
            for (who, what, len) in ops {
                let who = who as usize;
                match what {
                    0 | 1 if pending[who].is_none() => {
                        n = n.wrapping_add(1);
                        let msg = vec![n; len as usize];
                        match ps[who].try_claim(&m, len) {
                            Ok(cl) => {
                                m.write_bytes(cl.data, &msg);
                                model.push_back((cl.pos, Some(msg.clone())));
                                pending[who] = Some((cl, msg));
                            }
                            Err(RingError::Full) => {}
                            Err(e) => prop_assert!(false, "{e:?}"),
                        }
                    }
                    0..=2 => {
                        if let Some((cl, _)) = pending[who].take() {
                            if what == 2 && len % 5 == 0 {
                                ps[who].abandon(&m, &cl);
                                for e in model.iter_mut() { if e.0 == cl.pos { e.1 = None; } }
                            } else {
                                prop_assert!(ps[who].commit(&m, &cl));
                            }
                            committed.insert(cl.pos);
                        }
                    }
                    _ => loop {
                        match c.try_peek(&m).unwrap() {
                            Found::Empty => {
                                while matches!(model.front(), Some((_, None))) { model.pop_front(); }
                                prop_assert!(model.is_empty());
                                break;
                            }
                            Found::InProgress { .. } => {
                                while matches!(model.front(), Some((_, None))) { model.pop_front(); }
                                prop_assert!(!committed.contains(&model.front().unwrap().0));
                                break;
                            }
                            Found::Record { data, len, end } => {
                                // skip model entries that were abandoned
                                while matches!(model.front(), Some((_, None))) { model.pop_front(); }
                                let (_, want) = model.pop_front().unwrap();
                                let mut v = vec![0; len as usize];
                                m.read_bytes(data, &mut v);
                                prop_assert_eq!(Some(v), want);
                                c.consume(&m, end);
                                c.publish(&m);
                            }
                        }
                    },
                }
            }
        }

        /// Arbitrary ring memory never panics or loops the consumer or a producer.
        #[test]
        fn survives_arbitrary_memory(words in proptest::collection::vec(any::<u64>(), 32), head in any::<u64>(), hint in any::<u64>()) {
            let geo = Geometry::new(256).unwrap();
            let m = HeapWords::new(256);
            for (i, w) in words.iter().enumerate() { m.word_store(i as u64 * 8, *w, Ordering::Relaxed); }
            m.ctl_store(off::HEAD, head & 0xffff & !(BLOCK - 1), Ordering::Relaxed);
            m.ctl_store(off::TAIL, hint & 0xffff, Ordering::Relaxed);
            if let Ok(mut c) = MpscConsumer::attach(geo, MAX_OWNERS, &m) {
                for _ in 0..16 {
                    match c.try_peek(&m) {
                        Ok(Found::Record { data, len, end }) => {
                            prop_assert!(data + len <= 256);
                            c.consume(&m, end);
                        }
                        _ => break,
                    }
                }
            }
            let mut p = MpscProducer::new(geo, 0);
            for len in [1, 20, 100] {
                if let Ok(cl) = p.try_claim(&m, len) {
                    prop_assert!(cl.data + cl.len <= 256);
                }
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! `RUSTFLAGS="--cfg loom" cargo test -p mapipc --release --lib channel::mpsc::loom_tests`
    use super::super::words::heap::HeapWords;
    use super::*;
    use loom::sync::Arc;

    fn consume_all(c: &mut MpscConsumer, m: &HeapWords, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < n {
            match c.try_peek(m).unwrap() {
                Found::Record { data, len, end } => {
                    let mut v = vec![0; len as usize];
                    m.read_bytes(data, &mut v);
                    c.consume(m, end);
                    c.publish(m);
                    out.push(v);
                }
                Found::Empty | Found::InProgress { .. } => loom::thread::yield_now(),
            }
        }
        out
    }

    fn send_spin(p: &mut MpscProducer, m: &HeapWords, bytes: &[u8]) {
        loop {
            match p.try_claim(m, bytes.len() as u64) {
                Ok(c) => {
                    m.write_bytes(c.data, bytes);
                    assert!(p.commit(m, &c));
                    return;
                }
                Err(RingError::Full) => loom::thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// Two producers claim and commit concurrently while the consumer reads: every
    /// interleaving delivers both messages with intact bytes, every payload read ordered
    /// after its write (`HeapWords::tracked`).
    #[test]
    fn two_producers_race_for_claims() {
        loom::model(|| {
            let geo = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::tracked(64));
            init_ring(geo, &*m);
            let handles: Vec<_> = (0..2u8)
                .map(|owner| {
                    let m = m.clone();
                    loom::thread::spawn(move || {
                        let mut p = MpscProducer::new(geo, owner as u32);
                        send_spin(&mut p, &m, &[owner + 1; 8]);
                    })
                })
                .collect();
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &*m).unwrap();
            let mut got = consume_all(&mut c, &m, 2);
            got.sort();
            assert_eq!(got, vec![vec![1; 8], vec![2; 8]]);
            for h in handles {
                h.join().unwrap();
            }
        });
    }

    /// The consumer aborts a claim (its owner looked dead or too slow) while the owner
    /// commits it: exactly one of them wins. A commit that succeeds is delivered once, intact;
    /// one that reports the abort is skipped and counted once.
    #[test]
    fn abort_races_commit() {
        loom::model(|| {
            let geo = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::tracked(64));
            init_ring(geo, &*m);
            let mut p = MpscProducer::new(geo, 0);
            let claim = p.try_claim(&*m, 8).unwrap();
            let mp = m.clone();
            let owner = loom::thread::spawn(move || {
                mp.write_bytes(claim.data, &[5; 8]);
                p.commit(&*mp, &claim)
            });
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &*m).unwrap();
            let mut delivered = 0;
            // Each round aborts the claim, finds it committed, or ends.
            for _ in 0..3 {
                match c.try_peek(&*m).unwrap() {
                    Found::InProgress { word, .. } => {
                        c.abort(&*m, word);
                    }
                    Found::Record { data, len, end } => {
                        let mut v = vec![0; len as usize];
                        m.read_bytes(data, &mut v);
                        assert_eq!(v, vec![5; 8]);
                        delivered += 1;
                        c.consume(&*m, end);
                    }
                    Found::Empty => break,
                }
            }
            let committed = owner.join().unwrap();
            assert_eq!(c.try_peek(&*m).unwrap(), Found::Empty);
            assert_eq!(delivered, u64::from(committed));
            assert_eq!(c.take_aborted(), u64::from(!committed));
        });
    }

    /// A producer that died between claiming a padding record and moving the claim hint
    /// past it left the hint at the pad (the state is set up directly). The consumer skips
    /// the pad, marking its blocks free for the next lap, while a live producer claims: the
    /// live producer must not claim a block inside the pad (one still marked free for this
    /// lap) that the consumer is about to mark again, which would lose its message.
    #[test]
    fn hint_left_at_a_dead_producers_pad() {
        loom::model(|| {
            // 8 blocks; a 4-block and a 1-block record sent and consumed: head 160.
            let geo = Geometry::new(256).unwrap();
            let m = Arc::new(HeapWords::tracked(256));
            init_ring(geo, &*m);
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &*m).unwrap();
            let mut p = MpscProducer::new(geo, 0);
            send_spin(&mut p, &m, &[7; 112]);
            send_spin(&mut p, &m, &[8; 16]);
            assert_eq!(consume_all(&mut c, &m, 2).len(), 2);
            // The dead producer's pad: 3 blocks to the end of the ring, hint not moved.
            m.word_store(160, pack(PAD, 1, 3, tag(160)), Ordering::Release);
            let mp = m.clone();
            let live = loom::thread::spawn(move || {
                let mut p = MpscProducer::new(geo, 2);
                send_spin(&mut p, &mp, &[9; 8]);
            });
            // One look while the producer runs (it skips the pad), then, once the producer
            // is done, the message it committed must be there.
            let first = c.try_peek(&*m).unwrap();
            live.join().unwrap();
            let Found::Record { data, len, end } = c.try_peek(&*m).unwrap() else {
                panic!("the committed message is lost (first look: {first:?})")
            };
            let mut v = vec![0; len as usize];
            m.read_bytes(data, &mut v);
            assert_eq!(v, vec![9; 8]);
            c.consume(&*m, end);
            assert_eq!(c.try_peek(&*m).unwrap(), Found::Empty);
        });
    }

    /// One producer laps a two-record ring while the consumer frees blocks for the next
    /// lap: claims must wait for the free marks, the hint must move past consumed blocks,
    /// and the messages arrive in order.
    #[test]
    fn wraparound_with_free_marks() {
        loom::model(|| {
            let geo = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::tracked(64));
            init_ring(geo, &*m);
            let mp = m.clone();
            let h = loom::thread::spawn(move || {
                let mut p = MpscProducer::new(geo, 0);
                for k in 1..=3u8 {
                    send_spin(&mut p, &mp, &[k; 8]);
                }
            });
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &*m).unwrap();
            let got = consume_all(&mut c, &m, 3);
            assert_eq!(got, vec![vec![1; 8], vec![2; 8], vec![3; 8]]);
            h.join().unwrap();
        });
    }
}
