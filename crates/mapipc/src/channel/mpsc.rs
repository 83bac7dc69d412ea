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
//!   state  = FREE, CLAIMED, COMMITTED, ABORTED, PAD, REVOKED or RELEASED
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
//!   reports it (and the owner releases the record if it was revoked, below).
//! - **Consume.** The consumer reads the claim word at its position (Acquire): FREE for this
//!   lap means empty; COMMITTED is delivered; PAD and ABORTED are skipped; CLAIMED is in
//!   progress: the consumer waits, and once the owner is dead (peer table) CASes it to
//!   ABORTED and skips it, or once the claim is older than the abort timeout (the owner may
//!   be alive) revokes it (below).
//! - **Revoke.** The owner of a claim older than the abort timeout may be alive (slow,
//!   stopped, holding a grant) and write into its record later: its blocks must not go to
//!   other producers before it is done. The consumer CASes the claim word from CLAIMED to
//!   `REVOKED` (same owner, size and tag), counts it as aborted (under a note, see
//!   "Counting"), moves past it (later records are delivered as usual) but does not mark
//!   its blocks free: it *holds* them, and publishes no position past the oldest record it
//!   holds, so the producers' window (one capacity past the published position) never
//!   reaches them. The owner's commit or abandon CAS then fails; it CASes `REVOKED` to
//!   `RELEASED` with Release (pair **R**, with the consumer's Acquire load of the claim
//!   word when it looks at what it holds): everything the owner wrote into the record
//!   happens before the consumer marks its blocks free for the next lap, hence before the
//!   next producer there writes. If the owner dies instead, the consumer (asking the peer
//!   table about the oldest record it holds, at most every lock-query interval and whenever
//!   a wait's liveness check runs) or a process taking its slot over (its attach fence)
//!   CASes `REVOKED` to `RELEASED` in its place. Only the consumer marks a released record
//!   free, so no two parties ever mark the same blocks. Meanwhile the ring is that much
//!   shorter: once the consumer is a lap past the record, producers get `Full` until it is
//!   released (a producer stopped for good while holding a revoked claim stalls the other
//!   producers, where it used to damage their messages). `stat()` counts a revoked message
//!   as aborted once, when revoked, and its bytes as used until released.
//! - **Consumer restarts.** A delivered record longer than a block is first marked
//!   `ABORTED | TAKEN` (an owner no producer has), then freed as above. A consumer killed
//!   while handing records back leaves, at the published position, blocks marked free for
//!   the next lap (consumed: the next consumer steps over them at attach, and so does a
//!   producer's takeover fence), then at most one record being freed: its first block still
//!   says what it was (a pad or an aborted claim is skipped again; a delivered one says
//!   ABORTED | TAKEN and is skipped, uncounted), never a delivered record whose payload
//!   already carries free marks. Producers claim nothing there meanwhile: their window ends
//!   one capacity past the published position. A consumer holding revoked records published
//!   the oldest one's position: after it lie blocks it marked free for the next lap (stepped
//!   over, at attach or when met), other revoked records (`REVOKED`: held again, not counted
//!   again; `RELEASED`: marked free) and records it delivered or skipped, as above.
//!
//! The held records are the consumer's private list: a restarted consumer rebuilds it by
//! meeting them again from the published position. A claim word of a record it holds that
//! changes to anything but `RELEASED` is reported as corruption.
//!
//! # Counting
//!
//! The consumer's counts (`received`, `aborted`, in the header) must survive its death at
//! any point, without a store per message more than publishing takes.
//!
//! - **Aborted records.** An aborted record is counted where the ring still shows it
//!   uncounted: before its blocks are handed back (an aborted claim: skipped after, it would
//!   be free marks) and right after the CAS that revokes it (a `REVOKED` record met again is
//!   not counted). Between the two stores a kill would lose the count or count it twice, so
//!   the consumer first writes a *note*: the count it is about to store, then the record's
//!   position (`ABORT_TARGET`, `ABORT_NOTE`); it clears the note when done. A consumer
//!   attaching after a killed one reads the note: a record it names that is `REVOKED` or
//!   `RELEASED` (revoked) while the count is one short of the target was not counted: it
//!   stores the target; one still `ABORTED` while the count is the target was counted but
//!   not handed back: it marks it `ABORTED | TAKEN` (skipped uncounted when met); anything
//!   else needs nothing (killed before the CAS, or after finishing). Only aborted records pay
//!   for the note (three stores).
//! - **Received messages.** The count is stored when the consumer publishes (also while it
//!   holds a revoked record and its position stays put), after the records it counts were
//!   handed back: a consumer killed in between (inside `drain`, for instance, which
//!   publishes once) leaves it short, and the free marks do not say what the blocks held. A
//!   consumer attaching repairs it: each producer slot's count (stored by its producers as
//!   they publish, with Release, pair **N**, read first, with Acquire) less that slot's
//!   committed records from the published position on is at least the number of that
//!   slot's messages consumed, as every record a count covers is visible committed or
//!   handed back. The count becomes the sum if it is higher (by at most a ring of records:
//!   more is garbage). A producer that has not stored its count yet (mid-send, or killed
//!   before publishing) leaves the repair short by its messages.
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
//! [`MAX_POSITION`] give [`RingError::Corrupted`]; every loop is bounded. The counts are
//! statistics, repaired within bounds: a note raises the aborted count by one at most, and
//! only for a record in the consumer's window in the state the note's step leaves; the
//! received count rises by a ring of records at most.

use std::collections::VecDeque;
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
/// Aborted by the consumer while its owner may still write into it (the abort timeout): the
/// consumer moved past it, its blocks stay held until the owner is done with them.
pub(crate) const REVOKED: u64 = 5;
/// A [`REVOKED`] record its owner is done with (it saw the abort), or whose owner died: the
/// consumer hands its blocks back.
pub(crate) const RELEASED: u64 = 6;

/// A named point between two of the consumer's stores where a test can make it die: with
/// `crash::arm(name)`, reaching the point panics (the test catches it and leaves the
/// consumer as a killed process would, `Receiver::abandon`). Nothing in other builds.
#[inline(always)]
pub(crate) fn crash_point(_name: &'static str) {
    #[cfg(all(test, not(loom)))]
    crash::hit(_name);
}

/// Test builds: the crash points' trigger (see [`crash_point`]), per thread.
#[cfg(all(test, not(loom)))]
pub(crate) mod crash {
    use std::cell::Cell;

    thread_local! {
        static ARMED: Cell<Option<&'static str>> = const { Cell::new(None) };
    }

    /// The next time this thread reaches crash point `name`, it panics there.
    pub(crate) fn arm(name: &'static str) {
        ARMED.with(|a| a.set(Some(name)));
    }

    /// Whether the armed point was reached (and disarms it).
    pub(crate) fn disarm() -> bool {
        ARMED.with(|a| a.take()).is_none()
    }

    pub(super) fn hit(name: &'static str) {
        if ARMED.with(|a| a.get()) == Some(name) {
            ARMED.with(|a| a.set(None));
            panic!("killed at crash point {name:?}");
        }
    }
}

/// The low bits of a note naming a position (block-aligned): a note is never 0.
const NOTED: u64 = 1;

/// Test builds: the channel's aborted count.
#[cfg(test)]
pub(crate) fn aborted_count<W: Words>(mem: &W) -> u64 {
    mem.ctl_load(off::ABORTED, Ordering::Relaxed)
}

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

impl Claim {
    /// The claim word as written (for carrying a claim as plain words, in a `Grant`).
    #[inline]
    pub(crate) fn word(&self) -> u64 {
        self.word
    }

    /// A claim back from the parts [`word`](Self::word) and the public fields gave.
    #[inline]
    pub(crate) fn from_parts(pos: u64, data: u64, len: u64, word: u64) -> Claim {
        Claim {
            pos,
            data,
            len,
            word,
        }
    }
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
                CLAIMED | COMMITTED | ABORTED | REVOKED | RELEASED => {
                    wb >= 1 && wb * BLOCK <= to_end
                }
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
    /// it first (its owner looked dead or it was older than the abort timeout); we write
    /// into it no more, and hand its blocks back if the consumer holds them for us.
    pub(crate) fn commit<W: Words>(&self, mem: &W, c: &Claim) -> bool {
        let idx = c.pos & (self.geo.capacity() - 1);
        mem.word_store(idx + 8, c.len, Ordering::Relaxed);
        let (_, owner, nb, t) = unpack(c.word);
        // Release pairs with the consumer's Acquire load of the claim word (pair C): the
        // payload and length written above are visible once it sees COMMITTED.
        if mem
            .word_cas(idx, c.word, pack(COMMITTED, owner, nb, t))
            .is_ok()
        {
            return true;
        }
        self.release(mem, c);
        false
    }

    /// Gives a claimed record up (a dropped grant): the consumer skips it.
    pub(crate) fn abandon<W: Words>(&self, mem: &W, c: &Claim) {
        let idx = c.pos & (self.geo.capacity() - 1);
        let (_, owner, nb, t) = unpack(c.word);
        if mem
            .word_cas(idx, c.word, pack(ABORTED, owner, nb, t))
            .is_err()
        {
            self.release(mem, c);
        }
    }

    /// Our claim was aborted: if the consumer revoked it (it holds the blocks until we are
    /// done), says we are, with Release (pair **R**, with the consumer's Acquire load of the
    /// RELEASED mark in `reap`): every byte we wrote into the record happens before the
    /// consumer hands its blocks to other producers.
    fn release<W: Words>(&self, mem: &W, c: &Claim) {
        let idx = c.pos & (self.geo.capacity() - 1);
        let (_, owner, nb, t) = unpack(c.word);
        let _ = mem.word_cas(
            idx,
            pack(REVOKED, owner, nb, t),
            pack(RELEASED, owner, nb, t),
        );
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
    /// Our position when we last published: the received count stored then counts the
    /// records delivered before it (while we hold a revoked record the published position
    /// stays put, but the count must not).
    reported: u64,
    /// Revoked records behind `head` whose blocks are held for their owners, oldest first:
    /// `(position, revoked claim word)`. We publish no position past the oldest.
    held: VecDeque<(u64, u64)>,
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
            reported: pos,
            held: VecDeque::new(),
        })
    }

    /// Completes the aborted count a predecessor killed in the middle of counting a record
    /// left (see "Counting" in the module docs), then clears its note. Called by a consumer
    /// as it attaches (never by a mere look at the channel: this writes).
    /// Everything read is checked: a note that does not name a record at or past our
    /// position, for a lap within our window, in the state the note's step left it, raises
    /// nothing, and the count rises by one at most.
    pub(crate) fn finish_noted_abort<W: Words>(&self, mem: &W) {
        // Acquire: the note's target, stored before it.
        let note = mem.ctl_load(off::ABORT_NOTE, Ordering::Acquire);
        if note == 0 {
            return;
        }
        let target = mem.ctl_load(off::ABORT_TARGET, Ordering::Relaxed);
        let count = mem.ctl_load(off::ABORTED, Ordering::Relaxed);
        let cap = self.geo.capacity();
        let pos = note & !(BLOCK - 1);
        if note % BLOCK == NOTED && pos >= self.published && pos - self.published < cap {
            let idx = pos & (cap - 1);
            let w = mem.word_load(idx, Ordering::Acquire);
            let (st, owner, nb, t) = unpack(w);
            if t == tag(pos) && nb >= 1 && nb * BLOCK <= cap - idx {
                match st {
                    // Revoked, not counted yet.
                    REVOKED | RELEASED
                        if owner < u64::from(self.owners) && count.wrapping_add(1) == target =>
                    {
                        mem.ctl_store(off::ABORTED, target, Ordering::Release);
                    }
                    // Counted, not handed back yet: skipped, uncounted, when met.
                    ABORTED if owner != TAKEN && count == target => {
                        let _ = mem.word_cas(idx, w, pack(ABORTED, TAKEN, nb, t));
                    }
                    _ => {}
                }
            }
        }
        mem.ctl_store(off::ABORT_NOTE, 0, Ordering::Release);
    }

    /// Announces that we are about to count the aborted record at `pos` (our position):
    /// stores the count it will make, then the note naming it. Returns that count.
    fn note_abort<W: Words>(&self, mem: &W, pos: u64) -> u64 {
        let target = mem
            .ctl_load(off::ABORTED, Ordering::Relaxed)
            .wrapping_add(1);
        mem.ctl_store(off::ABORT_TARGET, target, Ordering::Relaxed);
        // Release: after the target (and before what the caller does next, which is
        // ordered after it: a CAS, or a Release store).
        mem.ctl_store(off::ABORT_NOTE, pos | NOTED, Ordering::Release);
        target
    }

    /// Clears the note once the record it names is counted and dealt with.
    fn end_note<W: Words>(&self, mem: &W) {
        // Release: after everything the note covered.
        mem.ctl_store(off::ABORT_NOTE, 0, Ordering::Release);
    }

    /// The committed records from the published position to the frontier, per producer
    /// slot: with the producers' message counts read *before* this call, what a consumer
    /// taking a killed one's place needs to count the messages it took (see "Counting" in
    /// the module docs). `None` for anything it does not understand.
    pub(crate) fn committed_by_owner<W: Words>(&self, mem: &W) -> Option<Vec<u64>> {
        let cap = self.geo.capacity();
        let mut n = vec![0u64; self.owners as usize];
        let mut pos = self.published;
        // Bounded: every record lies within a capacity of the published position.
        while pos < self.published + cap {
            let idx = pos & (cap - 1);
            // Acquire pairs with the Release store of the owner's count (pair **N**): a
            // record whose owner's count we read is seen committed (or handed back).
            let w = mem.word_load(idx, Ordering::Acquire);
            if w == free_word(pos) {
                break; // the frontier
            }
            if w == free_word(pos + cap) {
                pos += BLOCK; // handed back by a predecessor
                continue;
            }
            let (st, owner, nb, t) = unpack(w);
            let to_end = cap - idx;
            let valid = t == tag(pos)
                && match st {
                    PAD => nb * BLOCK == to_end,
                    CLAIMED | COMMITTED | ABORTED | REVOKED | RELEASED => {
                        nb >= 1 && nb * BLOCK <= to_end
                    }
                    _ => false,
                };
            if !valid {
                return None;
            }
            if st == COMMITTED {
                *n.get_mut(owner as usize)? += 1;
            }
            pos += nb * BLOCK;
        }
        Some(n)
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
        mark_free(self.geo, mem, first, end);
        self.head = end;
    }

    /// The record at our position, skipping padding and aborted records.
    pub(crate) fn try_peek<W: Words>(&mut self, mem: &W) -> Result<Found, RingError> {
        let cap = self.geo.capacity();
        // Each round consumes a PAD or ABORTED record or returns; bound the skips so a
        // ring full of garbage cannot keep us here.
        for _ in 0..=(cap / BLOCK) {
            if self
                .held
                .front()
                .is_some_and(|&(p, _)| self.head >= p + cap)
            {
                // A lap past the oldest held record: the producers' window ends here.
                return Ok(Found::Empty);
            }
            let idx = self.head & (cap - 1);
            let to_end = cap - idx;
            // Acquire pairs with the owner's Release CAS to COMMITTED (pair C).
            let w = mem.word_load(idx, Ordering::Acquire);
            if w == free_word(self.head) {
                return Ok(Found::Empty);
            }
            if w == free_word(self.head + cap) {
                // Handed back already by a predecessor (killed before publishing a position
                // past it, or holding a revoked record before it): step over.
                self.head += BLOCK;
                continue;
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
                CLAIMED | COMMITTED | ABORTED | REVOKED | RELEASED
                    if nb >= 1 && nb * BLOCK <= to_end =>
                {
                    match st {
                        // The owner indexes the producer table when the claim is checked:
                        // one beyond it was not written by a producer of this channel.
                        CLAIMED if owner >= u64::from(self.owners) => {
                            return Err(bad("claim owner"))
                        }
                        CLAIMED => {
                            return Ok(Found::InProgress {
                                owner: owner as u32,
                                word: w,
                            })
                        }
                        // A record a killed predecessor had taken (or had counted) is not
                        // counted.
                        ABORTED if owner == TAKEN => {
                            self.free_to(mem, self.head + nb * BLOCK, false)
                        }
                        ABORTED => {
                            // Counted before its blocks are handed back, under a note
                            // (see "Counting" in the module docs).
                            let target = self.note_abort(mem, self.head);
                            crash_point("abort noted");
                            mem.ctl_store(off::ABORTED, target, Ordering::Release);
                            crash_point("abort counted");
                            self.free_to(mem, self.head + nb * BLOCK, false);
                            crash_point("abort freed");
                            self.end_note(mem);
                        }
                        // Revoked by a predecessor (counted then): held for its owner, or, done
                        // with, handed back.
                        REVOKED if owner >= u64::from(self.owners) => {
                            return Err(bad("claim owner"))
                        }
                        REVOKED => self.hold(w),
                        RELEASED => self.free_to(mem, self.head + nb * BLOCK, false),
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
                    }
                }
                _ => return Err(bad("claim word")),
            }
        }
        Err(RingError::Corrupted {
            at: Where::Ring(self.head & (cap - 1)),
            what: "skipping loop",
        })
    }

    /// Aborts the in-progress record identified by `word` (found at our position by
    /// [`try_peek`](Self::try_peek)). `true` if we aborted it; `false` if its owner committed
    /// or abandoned it meanwhile.
    ///
    /// `owner_dead`: its owner is dead, so the record is marked ABORTED and handed back at
    /// once (by the next look). Otherwise the owner may still be writing into it (it was
    /// too slow): the record is marked REVOKED and counted, under a note (see "Counting" in
    /// the module docs), and we move past it, but its blocks stay held (our published
    /// position stays at it) until the owner says it is done (RELEASED, pair **R**) or is
    /// found dead ([`release_front`](Self::release_front)).
    pub(crate) fn abort<W: Words>(&mut self, mem: &W, word: u64, owner_dead: bool) -> bool {
        let idx = self.head & (self.geo.capacity() - 1);
        let (_, owner, nb, t) = unpack(word);
        if owner_dead {
            // Counted when skipped, by the next look.
            return mem.word_cas(idx, word, pack(ABORTED, owner, nb, t)).is_ok();
        }
        let target = self.note_abort(mem, self.head);
        crash_point("revoke noted");
        let revoked = mem.word_cas(idx, word, pack(REVOKED, owner, nb, t)).is_ok();
        if revoked {
            crash_point("revoked");
            mem.ctl_store(off::ABORTED, target, Ordering::Release);
            crash_point("revoke counted");
            self.hold(pack(REVOKED, owner, nb, t));
        }
        self.end_note(mem);
        revoked
    }

    /// Moves past the revoked record at our position, holding its blocks. Its size was
    /// validated by the caller.
    fn hold(&mut self, word: u64) {
        let (_, _, nb, _) = unpack(word);
        self.held.push_back((self.head, word));
        self.head += nb * BLOCK;
    }

    /// The oldest held record's owner and position, whose liveness the caller checks
    /// ([`release_front`](Self::release_front) if it is dead).
    pub(crate) fn held_front(&self) -> Option<(u32, u64)> {
        self.held.front().map(|&(pos, w)| (unpack(w).1 as u32, pos))
    }

    /// The claim word of the oldest held record as it is now (`None`: nothing held): a
    /// waiting consumer wakes when it changes (the owner released it).
    pub(crate) fn held_front_word<W: Words>(&self, mem: &W) -> Option<u64> {
        let cap = self.geo.capacity();
        self.held
            .front()
            .map(|&(pos, _)| mem.word_load(pos & (cap - 1), Ordering::Acquire))
    }

    /// The owner of the oldest held record is dead: releases the record on its behalf.
    pub(crate) fn release_front<W: Words>(&mut self, mem: &W) {
        if let Some(&(pos, w)) = self.held.front() {
            let (_, owner, nb, t) = unpack(w);
            let idx = pos & (self.geo.capacity() - 1);
            let _ = mem.word_cas(idx, w, pack(RELEASED, owner, nb, t));
        }
    }

    /// Hands back the blocks of the held records their owners released (pair **R**), in
    /// any order (producers reach none of them before our published position passes it).
    /// A held record's word changed to anything else is damage. `true`: some were handed
    /// back (publish).
    pub(crate) fn reap<W: Words>(&mut self, mem: &W) -> Result<bool, RingError> {
        let before = self.held.len();
        let cap = self.geo.capacity();
        let geo = self.geo;
        let mut bad = None;
        self.held.retain(|&(pos, w)| {
            let idx = pos & (cap - 1);
            let (_, owner, nb, t) = unpack(w);
            // Acquire pairs with the owner's Release CAS to RELEASED (pair R): its writes
            // into the record happen before our free marks, hence before other producers'.
            let now = mem.word_load(idx, Ordering::Acquire);
            if now == w {
                return true;
            }
            if now == pack(RELEASED, owner, nb, t) {
                mark_free(geo, mem, pos, pos + nb * BLOCK);
                return false;
            }
            bad.get_or_insert(RingError::Corrupted {
                at: Where::Ring(idx),
                what: "held claim word",
            });
            true
        });
        bad.map_or(Ok(self.held.len() != before), Err)
    }

    /// Consumes a record returned by [`try_peek`](Self::try_peek).
    pub(crate) fn consume<W: Words>(&mut self, mem: &W, end: u64) {
        self.free_to(mem, end, true);
    }

    /// Our position.
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The position to publish: ours, or the oldest held record's, whose blocks (and what
    /// follows) the producers must not reach yet.
    fn target(&self) -> u64 {
        self.held.front().map_or(self.head, |&(pos, _)| pos)
    }

    /// Whether we consumed records since we last published, or have space to hand back.
    pub(crate) fn has_unpublished(&self) -> bool {
        self.head != self.reported || self.target() != self.published
    }

    /// The position we last published (what `head` in shared memory should hold: only we
    /// write it).
    #[inline]
    pub(crate) fn published(&self) -> u64 {
        self.published
    }

    /// Hands consumed space back to the producers (pair **H**: Release). Returns whether
    /// the published position moved (the caller wakes waiting producers); either way the
    /// caller stores the received count, which now counts up to our position.
    pub(crate) fn publish<W: Words>(&mut self, mem: &W) -> bool {
        self.reported = self.head;
        let target = self.target();
        if target == self.published {
            return false;
        }
        // Release pairs with the producers' Acquire loads in `refresh_head` (pair H).
        mem.ctl_store(off::HEAD, target, Ordering::Release);
        self.published = target;
        true
    }
}

/// Marks the blocks of `[first, end)` free for the next lap, the first block last, with
/// Release (pair **F**, with the Acquire load of a producer that finds it free for the next
/// lap and moves the hint on by one block): see [`MpscConsumer::free_to`].
fn mark_free<W: Words>(geo: Geometry, mem: &W, first: u64, end: u64) {
    let cap = geo.capacity();
    let mut q = end;
    while q > first + BLOCK {
        q -= BLOCK;
        // Release: ordered after the ABORTED mark (for a killed consumer's successor).
        mem.word_store(q & (cap - 1), free_word(q + cap), Ordering::Release);
    }
    // Release: pair F.
    mem.word_store(first & (cap - 1), free_word(first + cap), Ordering::Release);
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
    // Claims are aborted as if their owners were dead and alive in turn.
    let mut dead = false;
    let mut drain = |c: &mut MpscConsumer| {
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
                    dead = !dead;
                    c.abort(&mem, word, dead);
                    // Some owners release their revoked records at once, some die.
                    if dead {
                        c.release_front(&mem);
                    }
                    if c.reap(&mem).is_err() {
                        return;
                    }
                    c.publish(&mem);
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
        assert!(c.abort(&m, word, true));
        assert_eq!(recv(&mut c, &m).unwrap().unwrap(), b"after");
        assert_eq!(aborted_count(&m), 1);
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
        assert_eq!(aborted_count(&m), 0);
        assert_eq!(recv(&mut c, &m).unwrap(), None);
    }

    /// A revoked claim (its owner alive, too slow): the consumer delivers what follows but
    /// publishes no position past it, so the next lap waits for its blocks; a consumer
    /// restarted meanwhile holds it again without counting it or delivering anything twice;
    /// once the owner commits (refused: it releases the record) the blocks come back.
    #[test]
    fn a_revoked_claim_holds_its_blocks_across_a_consumer_restart() {
        let (geo, m) = ring(256);
        let mut slow = MpscProducer::new(geo, 0);
        let mut fast = MpscProducer::new(geo, 1);
        let claim = slow.try_claim(&m, 40).unwrap(); // 2 blocks at 0
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        send(&mut fast, &m, &[1; 16]).unwrap();
        let Found::InProgress { word, .. } = c.try_peek(&m).unwrap() else {
            panic!("expected the slow claim")
        };
        assert!(c.abort(&m, word, false));
        assert_eq!(aborted_count(&m), 1);
        assert_eq!(recv(&mut c, &m).unwrap(), Some(vec![1; 16]));
        assert_eq!(m.ctl_load(off::HEAD, Ordering::Relaxed), 0);
        // Up to the end of the lap, not over the held blocks.
        for k in 2..=6 {
            send(&mut fast, &m, &[k; 16]).unwrap();
        }
        assert_eq!(fast.try_claim(&m, 16), Err(RingError::Full));
        assert_eq!(recv(&mut c, &m).unwrap(), Some(vec![2; 16]));
        // Restarted here: delivers 3..=6 once, then finds nothing.
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        for k in 3..=6 {
            assert_eq!(recv(&mut c, &m).unwrap(), Some(vec![k; 16]));
        }
        assert_eq!(recv(&mut c, &m).unwrap(), None);
        assert_eq!(aborted_count(&m), 1);
        assert_eq!(fast.try_claim(&m, 16), Err(RingError::Full));
        assert_eq!(c.reap(&m), Ok(false));
        // The owner writes late, then commits: refused, released.
        m.write_bytes(claim.data, &[0xee; 40]);
        assert!(!slow.commit(&m, &claim));
        assert_eq!(c.reap(&m), Ok(true));
        c.publish(&m);
        for k in 7..=8 {
            send(&mut fast, &m, &[k; 16]).unwrap();
        }
        for k in 7..=8 {
            assert_eq!(recv(&mut c, &m).unwrap(), Some(vec![k; 16]));
        }
        assert_eq!(recv(&mut c, &m).unwrap(), None);
    }

    /// The committed records a consumer attaching after a killed one counts, per producer
    /// slot: from the published position, over what the dead one handed back without
    /// publishing, a revoked record it held, a record in progress and a pad, up to the
    /// frontier; anything it does not understand gives `None`.
    #[test]
    fn committed_records_are_counted_per_owner_from_the_published_position() {
        let (geo, m) = ring(256);
        let mut ps: Vec<_> = (0..3).map(|i| MpscProducer::new(geo, i)).collect();
        let mut c = MpscConsumer::attach(geo, 3, &m).unwrap();
        send(&mut ps[0], &m, &[9; 40]).unwrap(); // [0, 64)
        assert_eq!(recv(&mut c, &m).unwrap(), Some(vec![9; 40])); // published: 64
        let _slow = ps[2].try_claim(&m, 8).unwrap(); // 64: revoked below, held
        send(&mut ps[0], &m, &[1; 8]).unwrap(); // 96
        send(&mut ps[1], &m, &[2; 40]).unwrap(); // [128, 192)
        let Found::InProgress { word, .. } = c.try_peek(&m).unwrap() else {
            panic!("expected the slow claim")
        };
        assert!(c.abort(&m, word, false));
        assert_eq!(recv(&mut c, &m).unwrap(), Some(vec![1; 8]));
        let _busy = ps[1].try_claim(&m, 8).unwrap(); // 192, in progress
        send(&mut ps[0], &m, &[4; 40]).unwrap(); // a pad at 224, then [256, 320)
        assert_eq!(m.ctl_load(off::HEAD, Ordering::Relaxed), 64); // held at the slow claim
        let Found::Record { end, .. } = c.try_peek(&m).unwrap() else {
            panic!("expected [2; 40]")
        };
        c.consume(&m, end); // killed here, unpublished
        let next = MpscConsumer::attach(geo, 3, &m).unwrap();
        assert_eq!(next.committed_by_owner(&m), Some(vec![1, 0, 0]));
        // Garbage in its way: another lap's word, an owner beyond the slots.
        m.word_store(0, pack(COMMITTED, 0, 2, tag(256) + 1), Ordering::Relaxed);
        assert_eq!(next.committed_by_owner(&m), None);
        m.word_store(0, pack(COMMITTED, 5, 2, tag(256)), Ordering::Relaxed);
        assert_eq!(next.committed_by_owner(&m), None);
    }

    /// The claim word of a held record overwritten with anything but its release is
    /// corruption, reported by the look at what is held (and never a wait for ever).
    #[test]
    fn a_held_record_overwritten_is_corruption() {
        let (geo, m) = ring(256);
        let mut slow = MpscProducer::new(geo, 0);
        let _claim = slow.try_claim(&m, 40).unwrap();
        let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &m).unwrap();
        let Found::InProgress { word, .. } = c.try_peek(&m).unwrap() else {
            panic!("expected the claim")
        };
        assert!(c.abort(&m, word, false));
        m.word_store(0, pack(COMMITTED, 0, 2, tag(0)), Ordering::Relaxed);
        assert!(matches!(c.reap(&m), Err(RingError::Corrupted { .. })));
    }

    /// What the revoke model knows of a claimed record (pads are not modelled).
    #[derive(Clone, Debug)]
    struct Rec {
        pos: u64,
        nb: u64,
        owner: usize,
        seq: u32,
        msg: Vec<u8>,
        st: St,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum St {
        /// Claimed, not yet committed or abandoned by its owner.
        Claimed,
        Committed,
        Abandoned,
        /// Aborted as if its owner had died: the owner never comes back to it.
        DeadAborted,
        /// Revoked by the consumer, its owner alive: the consumer holds its blocks.
        Revoked,
        /// Revoked, then released (late commit or abandon, or its owner died), not reaped yet.
        Released,
    }

    /// What the consumer does with a claim in progress at its position.
    #[derive(Clone, Copy, Debug)]
    enum Stuck {
        Wait,
        /// Abort timeout, owner alive: `abort(.., false)`.
        Revoke,
        /// Owner dead: `abort(.., true)`.
        OwnerDead,
    }

    /// A ring driven by three producers and the consumer, step by step, against a model of
    /// what each record is and where it lies: records the consumer has not passed yet in
    /// claim order (`queue`) and the revoked records it holds (`held`).
    struct RevokeModel {
        geo: Geometry,
        m: HeapWords,
        ps: Vec<MpscProducer>,
        c: MpscConsumer,
        pending: Vec<Option<(Claim, u32)>>,
        queue: VecDeque<Rec>,
        held: VecDeque<Rec>,
        next_seq: u32,
        /// Messages whose commit succeeded.
        committed: std::collections::HashSet<u32>,
        delivered: std::collections::HashSet<u32>,
        last_delivered: Vec<Option<u32>>,
        /// Aborted records the consumer should have counted, and those it did.
        aborted_model: u64,
        aborted_seen: u64,
        /// End of the last claim: claims are made in position order.
        frontier: u64,
    }

    fn model_msg(seq: u32, len: u64) -> Vec<u8> {
        (0..len)
            .map(|i| (seq as u8).wrapping_add((i as u8).wrapping_mul(3)) ^ (seq >> 8) as u8)
            .collect()
    }

    impl RevokeModel {
        fn new(cap: u64) -> RevokeModel {
            let (geo, m) = ring(cap);
            let c = MpscConsumer::attach(geo, 3, &m).unwrap();
            RevokeModel {
                geo,
                ps: (0..3).map(|i| MpscProducer::new(geo, i)).collect(),
                c,
                m,
                pending: vec![None; 3],
                queue: VecDeque::new(),
                held: VecDeque::new(),
                next_seq: 0,
                committed: Default::default(),
                delivered: Default::default(),
                last_delivered: vec![None; 3],
                aborted_model: 0,
                aborted_seen: 0,
                frontier: 0,
            }
        }

        fn blocks(&self, pos: u64, nb: u64) -> Vec<u64> {
            let n = self.geo.capacity() / BLOCK;
            (0..nb).map(|k| (pos / BLOCK + k) % n).collect()
        }

        fn word_at(&self, pos: u64) -> u64 {
            self.m
                .word_load(pos & (self.geo.capacity() - 1), Ordering::Relaxed)
        }

        fn claim(&mut self, who: usize, len: u64) -> Result<(), TestCaseError> {
            let cap = self.geo.capacity();
            match self.ps[who].try_claim(&self.m, len) {
                Ok(cl) => {
                    let nb = blocks_for(len);
                    prop_assert_eq!(cl.len, len);
                    prop_assert!(cl.pos % BLOCK == 0 && cl.pos >= self.frontier);
                    // Inside the producers' window, which ends a lap past the oldest held
                    // record.
                    let published = self.c.published();
                    prop_assert!(cl.pos >= published && cl.pos + nb * BLOCK <= published + cap);
                    // No block of a record not yet handed back (in particular a held one)
                    // goes to this claim.
                    let mine = self.blocks(cl.pos, nb);
                    for r in self.queue.iter().chain(&self.held) {
                        let theirs = self.blocks(r.pos, r.nb);
                        prop_assert!(
                            mine.iter().all(|b| !theirs.contains(b)),
                            "claim at {} ({} blocks) over {:?}",
                            cl.pos,
                            nb,
                            r
                        );
                    }
                    self.frontier = cl.pos + nb * BLOCK;
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let msg = model_msg(seq, len);
                    self.m.write_bytes(cl.data, &msg);
                    self.queue.push_back(Rec {
                        pos: cl.pos,
                        nb,
                        owner: who,
                        seq,
                        msg,
                        st: St::Claimed,
                    });
                    self.pending[who] = Some((cl, seq));
                }
                Err(RingError::Full) => {
                    // Not spurious: the smallest step the claim needs (the record, or the
                    // pad to the end of the ring) does not fit in the window.
                    let tail = self.m.ctl_load(off::TAIL, Ordering::Relaxed);
                    let head = self.m.ctl_load(off::HEAD, Ordering::Relaxed);
                    let need = (blocks_for(len) * BLOCK).min(cap - (tail & (cap - 1)));
                    prop_assert!(tail + need > head + cap, "Full: tail {tail} head {head}");
                }
                Err(e) => prop_assert!(false, "claim: {e:?}"),
            }
            Ok(())
        }

        /// The owner finishes its claim: writes (late, if it was revoked) and commits, or
        /// abandons it.
        fn finish(&mut self, who: usize, abandon: bool) -> Result<(), TestCaseError> {
            let Some((cl, seq)) = self.pending[who].take() else {
                return Ok(());
            };
            let (_, owner, nb, t) = unpack(cl.word);
            let rec = match self.queue.iter_mut().find(|r| r.seq == seq) {
                Some(r) => r,
                None => match self.held.iter_mut().find(|r| r.seq == seq) {
                    Some(r) => r,
                    None => return Err(TestCaseError::fail(format!("claim {seq} of {who} lost"))),
                },
            };
            // Written again just before the commit: into held blocks if it was revoked.
            self.m.write_bytes(cl.data, &rec.msg);
            let ok = if abandon {
                self.ps[who].abandon(&self.m, &cl);
                None
            } else {
                Some(self.ps[who].commit(&self.m, &cl))
            };
            let now = self
                .m
                .word_load(cl.pos & (self.geo.capacity() - 1), Ordering::Relaxed);
            match rec.st {
                St::Claimed => {
                    prop_assert!(ok != Some(false), "commit of a live claim refused");
                    let (st, want) = if abandon {
                        (St::Abandoned, ABORTED)
                    } else {
                        self.committed.insert(seq);
                        (St::Committed, COMMITTED)
                    };
                    rec.st = st;
                    prop_assert_eq!(now, pack(want, owner, nb, t));
                }
                St::Revoked => {
                    prop_assert!(ok != Some(true), "commit of a revoked claim accepted");
                    rec.st = St::Released;
                    prop_assert_eq!(now, pack(RELEASED, owner, nb, t));
                }
                st => prop_assert!(false, "owner finishing a record {:?}", st),
            }
            Ok(())
        }

        /// Looks at the consumer's position until it finds nothing or a claim it leaves be.
        fn consume(&mut self, stuck: Stuck) -> Result<(), TestCaseError> {
            for _ in 0..4 * self.geo.capacity() / BLOCK {
                let found = self.c.try_peek(&self.m);
                self.aborted_seen = aborted_count(&self.m);
                let found = found.map_err(|e| TestCaseError::fail(format!("peek: {e:?}")))?;
                let head = self.c.head();
                // What the consumer moved past must be what it may skip.
                while self.queue.front().is_some_and(|r| r.pos < head) {
                    let r = self.queue.pop_front().unwrap();
                    prop_assert!(
                        matches!(r.st, St::Abandoned | St::DeadAborted),
                        "skipped {:?} (head {})",
                        r,
                        head
                    );
                    self.aborted_model += 1;
                }
                prop_assert_eq!(self.aborted_seen, self.aborted_model);
                match found {
                    Found::Empty => {
                        prop_assert!(self.queue.is_empty(), "Empty with {:?}", self.queue);
                        break;
                    }
                    Found::InProgress { owner, word } => {
                        let r = self.queue.front_mut();
                        prop_assert!(r.is_some(), "in progress: {word:x} unknown");
                        let r = r.unwrap();
                        prop_assert_eq!(r.pos, head);
                        prop_assert_eq!(r.st, St::Claimed);
                        prop_assert_eq!(r.owner, owner as usize);
                        prop_assert_eq!(Some(word), self.pending[r.owner].map(|(cl, _)| cl.word));
                        match stuck {
                            Stuck::Wait => break,
                            Stuck::Revoke => {
                                prop_assert!(self.c.abort(&self.m, word, false));
                                let mut r = self.queue.pop_front().unwrap();
                                r.st = St::Revoked;
                                prop_assert_eq!(self.c.head(), r.pos + r.nb * BLOCK);
                                self.held.push_back(r);
                                self.aborted_model += 1;
                                let f = &self.held[0];
                                prop_assert_eq!(self.c.held_front(), Some((f.owner as u32, f.pos)));
                            }
                            Stuck::OwnerDead => {
                                prop_assert!(self.c.abort(&self.m, word, true));
                                r.st = St::DeadAborted;
                                // Its owner died; the slot starts over with nothing pending.
                                self.pending[owner as usize] = None;
                            }
                        }
                    }
                    Found::Record { data, len, end } => {
                        let r = self.queue.pop_front();
                        prop_assert!(r.is_some(), "record at {} unknown", head);
                        let r = r.unwrap();
                        prop_assert_eq!(r.pos, head);
                        prop_assert_eq!(r.st, St::Committed, "delivered {:?}", &r);
                        prop_assert_eq!(end, r.pos + r.nb * BLOCK);
                        let mut v = vec![0; len as usize];
                        self.m.read_bytes(data, &mut v);
                        prop_assert_eq!(&v, &r.msg);
                        prop_assert!(self.delivered.insert(r.seq), "{} twice", r.seq);
                        let last = &mut self.last_delivered[r.owner];
                        prop_assert!(
                            !last.is_some_and(|l| l >= r.seq),
                            "{:?} after {:?}",
                            r,
                            last
                        );
                        *last = Some(r.seq);
                        self.c.consume(&self.m, end);
                    }
                }
                self.publish()?;
            }
            self.publish()
        }

        /// Publishes: the position is the oldest held record's, else the consumer's.
        fn publish(&mut self) -> Result<(), TestCaseError> {
            self.c.publish(&self.m);
            let want = self.held.front().map_or(self.c.head(), |r| r.pos);
            prop_assert_eq!(self.c.published(), want);
            prop_assert_eq!(self.m.ctl_load(off::HEAD, Ordering::Relaxed), want);
            Ok(())
        }

        /// The consumer hands back the held records their owners released.
        fn reap(&mut self) -> Result<(), TestCaseError> {
            let freed = self.c.reap(&self.m);
            let want = self.held.iter().any(|r| r.st == St::Released);
            prop_assert_eq!(freed, Ok(want));
            self.held.retain(|r| r.st != St::Released);
            for r in &self.held {
                prop_assert_eq!(unpack(self.word_at(r.pos)).0, REVOKED);
            }
            self.publish()
        }

        /// The owner of the oldest held record dies before it is done with it: the consumer
        /// releases it on the owner's behalf.
        fn front_owner_dies(&mut self) -> Result<(), TestCaseError> {
            let Some(&Rec {
                pos,
                owner: who,
                seq,
                st: St::Revoked,
                ..
            }) = self.held.front()
            else {
                return Ok(());
            };
            let before = self.word_at(pos);
            self.c.release_front(&self.m);
            let (_, owner, nb, t) = unpack(before);
            prop_assert_eq!(self.word_at(pos), pack(RELEASED, owner, nb, t));
            self.held[0].st = St::Released;
            let p = self.pending[who].take();
            prop_assert_eq!(p.map(|(_, s)| s), Some(seq));
            Ok(())
        }

        /// Every owner finishes, the consumer reaps and drains: everything committed (and
        /// not revoked) was delivered once, and the whole ring can be claimed again.
        fn drain(&mut self) -> Result<(), TestCaseError> {
            for who in 0..3 {
                self.finish(who, false)?;
            }
            self.consume(Stuck::Wait)?;
            self.reap()?;
            self.consume(Stuck::Wait)?;
            prop_assert!(self.queue.is_empty() && self.held.is_empty());
            prop_assert_eq!(&self.delivered, &self.committed);
            prop_assert_eq!(self.aborted_seen, self.aborted_model);
            let max = max_payload(self.geo);
            prop_assert!(self.ps[0].try_claim(&self.m, max).is_ok());
            Ok(())
        }
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

        /// As `matches_model`, with the consumer also aborting stuck claims: revoking them
        /// (owner alive: its blocks held until it commits or abandons late, which fails and
        /// releases them, or until it is found dead) or aborting them (owner dead), and
        /// handing released records back. Checks delivery (once, in claim order, intact,
        /// never a revoked or abandoned message), the aborted count, the published position
        /// (never past a held record), claims (never over the blocks of a record not handed
        /// back yet; `Full` only when the window is) and the late owner's outcome.
        #[test]
        fn matches_model_with_revokes(
            ops in proptest::collection::vec((0u8..3, 0u8..7, 1u64..60), 1..300)
        ) {
            let mut md = RevokeModel::new(512);
            for (who, what, arg) in ops {
                let who = who as usize;
                match what {
                    0..=2 if md.pending[who].is_none() => md.claim(who, arg)?,
                    0 | 1 => md.finish(who, false)?,
                    2 => md.finish(who, arg % 4 == 0)?,
                    3 | 4 => md.consume(match arg % 4 {
                        0 | 1 => Stuck::Revoke,
                        2 => Stuck::Wait,
                        _ => Stuck::OwnerDead,
                    })?,
                    5 => md.reap()?,
                    _ => md.front_owner_dies()?,
                }
            }
            md.drain()?;
        }

        /// Whatever a hostile peer wrote in the note of an aborted record being counted, its
        /// target, the count and the ring word the note names, finishing the note raises the
        /// count by one at most, never panics, and clears the note.
        #[test]
        fn a_garbage_abort_note_raises_the_count_by_one_at_most(
            note in any::<u64>(),
            target in any::<u64>(),
            count in any::<u64>(),
            word in any::<u64>(),
            head in 0u64..1024,
            near in any::<bool>(),
        ) {
            let (geo, m) = ring(256);
            let head = head * BLOCK;
            m.ctl_store(off::HEAD, head, Ordering::Relaxed);
            // Often a note for a block of the window, with the target next to the count.
            let (note, target) = if near {
                (head + (note % 8) * BLOCK + (note >> 60) % 2, count.wrapping_add(target % 3))
            } else {
                (note, target)
            };
            m.ctl_store(off::ABORT_NOTE, note, Ordering::Relaxed);
            m.ctl_store(off::ABORT_TARGET, target, Ordering::Relaxed);
            m.ctl_store(off::ABORTED, count, Ordering::Relaxed);
            let idx = (note & !(BLOCK - 1)) % 256;
            m.word_store(idx, word, Ordering::Relaxed);
            let c = MpscConsumer::attach(geo, 3, &m).unwrap();
            c.finish_noted_abort(&m);
            let after = aborted_count(&m);
            prop_assert!(after == count || after == count.wrapping_add(1));
            prop_assert_eq!(m.ctl_load(off::ABORT_NOTE, Ordering::Relaxed), 0);
        }

        /// Arbitrary ring memory never panics or loops the consumer or a producer.        /// Arbitrary ring memory never panics or loops the consumer or a producer.
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

    /// The consumer aborts a claim (its owner looked dead, or too slow: revoked) while the
    /// owner commits it: exactly one of them wins. A commit that succeeds is delivered once,
    /// intact; one that reports the abort is skipped and counted once.
    #[test]
    fn abort_races_commit() {
        abort_races_commit_as(true);
    }

    #[test]
    fn revoke_races_commit() {
        abort_races_commit_as(false);
    }

    fn abort_races_commit_as(owner_dead: bool) {
        loom::model(move || {
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
                        c.abort(&*m, word, owner_dead);
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
            assert_eq!(aborted_count(&*m), u64::from(!committed));
        });
    }

    /// The consumer revokes a slow producer's claim (abort timeout), delivers the next
    /// message and moves on; then the slow owner writes its record and commits (refused: it
    /// releases the record) while another producer (here the consumer's thread, between its
    /// looks at what it holds) tries to claim those blocks at the next lap. The claim must
    /// wait for the release: the message arrives intact, and no payload write is unordered
    /// with the owner's (`HeapWords::tracked`: only pair R orders them, no join does).
    #[test]
    fn revoked_claim_vs_late_owner_vs_next_lap_claimer() {
        loom::model(|| {
            // Two blocks: the slow claim at 0, a message at 32, then the next lap at 64.
            let geo = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::tracked(64));
            init_ring(geo, &*m);
            let mut slow = MpscProducer::new(geo, 0);
            let claim = slow.try_claim(&*m, 8).unwrap();
            let mut fast = MpscProducer::new(geo, 1);
            send_spin(&mut fast, &m, &[1; 8]);
            let mut c = MpscConsumer::attach(geo, MAX_OWNERS, &*m).unwrap();
            let Found::InProgress { word, .. } = c.try_peek(&*m).unwrap() else {
                panic!("expected the slow claim")
            };
            assert!(c.abort(&*m, word, false));
            assert_eq!(consume_all(&mut c, &m, 1), vec![vec![1; 8]]);
            let mo = m.clone();
            let owner = loom::thread::spawn(move || {
                mo.write_bytes(claim.data, &[5; 8]);
                assert!(!slow.commit(&*mo, &claim));
            });
            let next = loop {
                match fast.try_claim(&*m, 8) {
                    Ok(cl) => break cl,
                    Err(RingError::Full) => {
                        c.reap(&*m).unwrap();
                        c.publish(&*m);
                        loom::thread::yield_now();
                    }
                    Err(e) => panic!("{e:?}"),
                }
            };
            assert_eq!(next.pos, 64);
            m.write_bytes(next.data, &[2; 8]);
            assert!(fast.commit(&*m, &next));
            assert_eq!(consume_all(&mut c, &m, 1), vec![vec![2; 8]]);
            owner.join().unwrap();
            assert_eq!(aborted_count(&*m), 1);
            assert_eq!(c.try_peek(&*m).unwrap(), Found::Empty);
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

    /// A consumer taking a killed one's place counts the messages it took from the
    /// producers' counts (read first) and the committed records left in the ring, while a
    /// producer commits and stores its count: the count it reads never covers a record it
    /// then fails to see committed (pair **N**), so nothing still in the ring is counted as
    /// received. (With a Relaxed count store this fails.)
    #[test]
    fn received_repair_never_counts_a_message_still_in_the_ring() {
        loom::model(|| {
            let geo = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::new(64));
            init_ring(geo, &*m);
            let mp = m.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = MpscProducer::new(geo, 0);
                send_spin(&mut p, &mp, &[1; 8]);
                // `Sender::publish`: the slot's count, after the commit.
                mp.ctl_store(off::producer(0) + 8, 1, Ordering::Release);
            });
            let sent = m.ctl_load(off::producer(0) + 8, Ordering::Acquire);
            let c = MpscConsumer::attach(geo, 1, &*m).unwrap();
            let in_ring = c.committed_by_owner(&*m).unwrap();
            assert!(sent <= in_ring[0], "counted {sent}, seen {in_ring:?}");
            producer.join().unwrap();
        });
    }

    /// One producer laps a two-record ring while the consumer frees blocks for the next    /// One producer laps a two-record ring while the consumer frees blocks for the next
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
