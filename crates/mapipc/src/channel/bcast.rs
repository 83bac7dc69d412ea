//! The broadcast ring: one producer, any number of independent subscribers, lossless or
//! lossy.
//!
//! # Algorithm
//!
//! A ring of variable-size, 16-byte aligned records with free-running positions, as the
//! SPSC ring, but records carry a sequence number and readers never free space:
//!
//! ```text
//! record: seq: u64 | len: u32, flags: u32 | payload, padded to 16 bytes
//! ```
//!
//! - The producer writes a record, then publishes `tail` with a Release store (pair **T**,
//!   with each subscriber's Acquire load).
//! - Space is reclaimed from the *oldest* record still intact, `(oldest_pos, oldest_seq)`,
//!   which the producer advances record by record before overwriting them and publishes
//!   in a *latch* (Linux's `seqcount_latch`): two copies of the pair and a version word.
//!   The producer makes the version odd, updates copy 0, makes it even, updates copy 1;
//!   a reader takes the copy the version points at (`version & 1`) and retries only if the
//!   version changed while it read. So a reader never waits for a producer preempted (or
//!   killed) in the middle of an update: the other copy is stable. A Release fence follows
//!   every update, before the overwriting stores (pair **O**).
//! - Copy 0's `oldest_pos` alone, one word that only grows, is what a subscriber checks
//!   after copying a record (is the record still intact?): no lock on the hot path.
//! - **Lossless**: before reclaiming, the producer checks every registered subscriber's
//!   position (Acquire, pair **S** with the subscriber's Release store after reading) and
//!   waits while one of them still needs the space. Dead subscribers are dropped from the
//!   table, so a crashed reader never stalls the producer. The producer caches the smallest
//!   position it found and scans again only when it needs more, or when the join counter
//!   moved: a subscriber stores its position, bumps the counter, issues a SeqCst fence and
//!   reads `oldest` again (moving up to it if it passed its position); the producer, after
//!   publishing a new `oldest` and before overwriting, issues a SeqCst fence and reads the
//!   counter (pair **J**). So either the producer sees the join and waits for the new
//!   subscriber, or the subscriber sees the new `oldest` and starts there. A subscriber that
//!   has taken nothing yet and finds its start reclaimed (the producer saw it only after
//!   publishing) moves up silently: it joined later, it lost nothing. It decides this before
//!   it hands its first record out: from then on an `oldest` found past it can only be that
//!   late reclaim (the producer, whose minimum did not include the newcomer yet, may have
//!   published an `oldest` several records past it, then sees the join and waits), so the
//!   records are intact and it reads on, never skipping what follows a record it handed
//!   out nor counting it lost (after the fence, every scan includes it, and no later
//!   `oldest` passes its published position). A subscriber that moves up in its join
//!   announces its new position the same way (stored, counter bumped, fence, `oldest` read
//!   again) until `oldest` stops passing it: a producer that saw the first bump may have read
//!   the start only, which lies outside its window when it lapped it by more than the ring,
//!   and ignored it. A producer that attaches (a predecessor may have died between
//!   publishing an `oldest` and its fence) scans the table before it overwrites anything.
//!   A subscriber dropped from the table as dead while alive is no longer waited for: it
//!   is evicted (see "Eviction" below). The lossless producer reclaims up to a sixteenth
//!   of the ring ahead of what it needs (never past the slowest subscriber), so that
//!   `oldest` is published, and the fence taken, once per sixteenth of the ring rather
//!   than once per message.
//! - **Lossy**: the producer never waits. A subscriber copies a record, then issues an
//!   Acquire fence and reads `oldest_pos` (pair **O**): if the producer reclaimed the record
//!   meanwhile, the copy may be torn and is discarded; the subscriber moves to the oldest
//!   intact record and reports exactly how many messages it missed:
//!   `oldest_seq - expected_seq`.
//!
//! # Eviction
//!
//! A live lossless subscriber can be dropped from the table: a peer that misjudges its
//! liveness (the region's peer table scribbled over, so that its id looks dead) frees its
//! entry (a producer blocked on it) or claims it (a new subscriber). The producer then no
//! longer keeps what it has not read. Three things keep this from going unnoticed:
//!
//! - **Tickets.** An entry's first word holds the peer id and the entry's ticket, which
//!   every claim bumps (`layout::claimed_entry`). A subscriber keeps the word its claim
//!   stored ([`Registration`]): the entry is its own while it holds that word. A peer id
//!   alone comes back (after 2^22 reuses of a region slot, or written by a peer); the word
//!   comes back after 2^32 claims of the entry.
//! - **Checks.** A subscriber compares the word before each store of its position (one
//!   load of the line the store writes), when it finds a record of its own reclaimed
//!   (after an Acquire fence: the producer freed the entry before publishing that
//!   `oldest`, pair **O**), and every check interval while it waits. Once the word is not
//!   its own it is *evicted*: it stores nothing more, hands out nothing more, and every
//!   look returns [`Next::Evicted`] (`RecvError::Evicted`). A record copied while the
//!   producer overwrote it is never validated as intact, nor, read in place, confirmed
//!   intact (`RecvRef::is_intact`).
//! - **Tags.** A subscriber stores its position (a multiple of 16) with the low 4 bits of
//!   its ticket in its 4 low bits. One that found its entry its own, then was dropped and
//!   stored (preempted between the two), writes its old tag into the next holder's entry:
//!   the producer takes a position whose tag is not the entry's for the start of its window
//!   ([`entry_position`]: it reclaims nothing) until the holder stores its own, at its next
//!   receive, or at its next check while it waits (`Registration::restore`). (A tag that
//!   matches needs 16 claims of the entry while the dropped subscriber stays preempted
//!   between its check and its store.)
//!
//! A lossy subscriber dropped from its entry loses nothing it is not told of (the producer
//! never waits for anyone): it stops storing its position and goes on.
//!
//! # Hostile peers
//!
//! Positions, sequence numbers, lengths and flags read from shared memory are validated
//! (a position outside `[tail - capacity, tail]` or beyond [`MAX_POSITION`] (sequence numbers
//! too), a sequence number out of order, a length
//! beyond the record or the ring, a padding record not ending the ring, a latch whose version
//! keeps changing for a second): [`RingError::Corrupted`]. Loops are bounded. A subscriber
//! position out of the producer's window is not waited for; one whose tag is not its
//! entry's is (see "Eviction").

use crate::sync::atomic::{fence, Ordering};

use super::layout::{freed_entry, off};
use super::ring::{Geometry, RingError, Where, MAX_POSITION};
use super::words::Words;

/// Record header bytes.
pub(crate) const HDR: u64 = 16;
/// Flag: padding up to the end of the ring.
const FLAG_PAD: u64 = 1;
/// Latch reads that spin before the reader starts yielding its CPU.
const LATCH_SPINS: u32 = 1 << 10;
/// How long a latch read retries before calling the latch corrupted. Only a producer that
/// completes half an update during every one of the reader's three loads, for this long,
/// can make a read fail: a hostile one.
#[cfg(not(loom))]
const LATCH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Low bits of a subscriber's position word: the tag, the low bits of the ticket of the
/// entry's holder that stored it (see "Eviction" in the module docs).
pub(crate) const TAG_MASK: u64 = 15;

/// A subscriber's position word without its tag.
#[inline]
pub(crate) fn untagged(raw: u64) -> u64 {
    raw & !TAG_MASK
}

/// The tag of the holder of a table entry whose first word is `w`.
#[inline]
fn tag_of(w: u64) -> u64 {
    (w >> 32) & TAG_MASK
}

/// The position subscriber-table entry `i` asks the producer to keep: `None` for a free
/// entry (the peer id is the word's low half, as everywhere else). A position stored under
/// another ticket than the entry's (by a subscriber dropped from the entry, storing late, or
/// garbage) says nothing of the holder's: `floor`, the least position worth waiting for,
/// until the holder stores its own.
pub(crate) fn entry_position<W: Words>(mem: &W, i: u32, floor: u64) -> Option<u64> {
    let f = off::subscriber(i);
    let w = mem.ctl_load(f, Ordering::Relaxed);
    if w as u32 == 0 {
        return None;
    }
    // Acquire pairs with the subscriber's Release store of its position (pair S).
    let raw = mem.ctl_load(f + 8, Ordering::Acquire);
    Some(if raw & TAG_MASK == tag_of(w) {
        untagged(raw)
    } else {
        floor
    })
}

/// A position read from shared memory: 16-byte aligned and not beyond [`MAX_POSITION`]
/// (near `u64::MAX`, the arithmetic on it would overflow).
#[inline]
fn valid_pos(pos: u64) -> bool {
    pos % 16 == 0 && pos <= MAX_POSITION
}

/// Bytes a record of `len` payload bytes takes.
#[inline]
pub(crate) fn record_size(len: u64) -> u64 {
    HDR + len.next_multiple_of(16)
}

/// Largest payload: half the ring less the header.
pub(crate) fn max_payload(geo: Geometry) -> u64 {
    geo.capacity() / 2 - HDR
}

/// Where the oldest intact record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Oldest {
    pub(crate) pos: u64,
    pub(crate) seq: u64,
}

/// Field offsets of latch copy `i` (0 or 1): `(pos, seq)`.
#[inline]
const fn oldest_copy(i: u64) -> (u64, u64) {
    if i == 0 {
        (off::OLDEST_POS, off::OLDEST_SEQ)
    } else {
        (off::OLDEST_POS1, off::OLDEST_SEQ1)
    }
}

/// Reads `(oldest_pos, oldest_seq)` consistently from the latch.
pub(crate) fn read_oldest<W: Words>(mem: &W) -> Result<Oldest, RingError> {
    #[cfg(not(loom))]
    let mut deadline = None;
    let mut tries = 0u32;
    loop {
        // Acquire pairs with the producer's Release store of the version (pair O): the copy
        // it points at is complete.
        let v1 = mem.ctl_load(off::OLDEST_VER, Ordering::Acquire);
        let (fp, fs) = oldest_copy(v1 & 1);
        let pos = mem.ctl_load(fp, Ordering::Relaxed);
        let seq = mem.ctl_load(fs, Ordering::Relaxed);
        // Acquire fence: if we read a value the producer stored after its next version
        // change (and the Release fence that follows it), the re-read sees that change.
        fence(Ordering::Acquire);
        if mem.ctl_load(off::OLDEST_VER, Ordering::Relaxed) == v1 {
            return Ok(Oldest { pos, seq });
        }
        // The producer finished half an update while we read: read again.
        tries += 1;
        if tries < LATCH_SPINS {
            crate::sync::atomic::spin_loop();
            continue;
        }
        #[cfg(loom)]
        break;
        #[cfg(not(loom))]
        {
            let now = std::time::Instant::now();
            if *deadline.get_or_insert(now + LATCH_PATIENCE) <= now {
                break;
            }
            std::thread::yield_now();
        }
    }
    Err(RingError::Corrupted {
        at: Where::Tail,
        what: "oldest-record latch version keeps changing",
    })
}

/// The sequence number of the message that will be written at `tail`: `oldest_seq` plus
/// the records from `oldest_pos` to `tail`, counted while `oldest` does not move. `None`
/// when the ring kept changing (a lossy producer lapping it during every count) or does not
/// add up (garbage): the subscriber then takes the first record's word for it, and cannot
/// count what it misses before that record.
fn seq_at<W: Words>(geo: Geometry, mem: &W, tail: u64) -> Result<Option<u64>, RingError> {
    let cap = geo.capacity();
    for _ in 0..8 {
        let o = read_oldest(mem)?;
        if !valid_pos(o.pos) || o.seq > MAX_POSITION || o.pos > tail || tail - o.pos > cap {
            continue;
        }
        let (mut p, mut seq) = (o.pos, o.seq);
        // Bounded: each step passes at least 16 bytes of at most `cap`.
        for _ in 0..=(cap / 16) {
            if p >= tail {
                break;
            }
            let idx = p & (cap - 1);
            let to_end = cap - idx;
            let w0 = mem.word_load(idx, Ordering::Relaxed);
            let w1 = mem.word_load(idx + 8, Ordering::Relaxed);
            let (len, flags) = (w1 & 0xffff_ffff, w1 >> 32);
            if flags == FLAG_PAD && len + HDR == to_end {
                p += to_end;
                continue;
            }
            let size = record_size(len);
            if flags != 0 || len == 0 || size > to_end || size > tail - p || w0 != seq {
                break;
            }
            seq += 1;
            p += size;
        }
        // Acquire fence: the headers read above were intact if `oldest` did not pass the
        // first of them meanwhile (pair O, as `Subscriber::still_intact`).
        fence(Ordering::Acquire);
        if p == tail && mem.ctl_load(off::OLDEST_POS, Ordering::Relaxed) <= o.pos {
            return Ok(Some(seq));
        }
    }
    Ok(None)
}

/// Publishes a new `oldest` in the latch: version odd, copy 0, version even, copy 1.
/// Works whatever state a dead producer left: an odd version means copy 1 is the stable
/// one, and only copy 0 is written before the version is even again.
fn write_oldest<W: Words>(mem: &W, o: Oldest) {
    let v = mem.ctl_load(off::OLDEST_VER, Ordering::Relaxed);
    let odd = v | 1;
    // Release pairs with the readers' Acquire load of the version (pair O): whoever sees
    // the odd version sees copy 1 as the previous update left it.
    mem.ctl_store(off::OLDEST_VER, odd, Ordering::Release);
    // Release fence: a reader that sees one of the copy 0 stores below then sees the odd
    // version in its re-read, and retries (pair O).
    fence(Ordering::Release);
    mem.ctl_store(off::OLDEST_POS, o.pos, Ordering::Relaxed);
    mem.ctl_store(off::OLDEST_SEQ, o.seq, Ordering::Relaxed);
    // Release pairs with the readers' Acquire load of the version (pair O): copy 0 is
    // complete for whoever sees the even version.
    mem.ctl_store(off::OLDEST_VER, odd.wrapping_add(1), Ordering::Release);
    fence(Ordering::Release);
    mem.ctl_store(off::OLDEST_POS1, o.pos, Ordering::Relaxed);
    mem.ctl_store(off::OLDEST_SEQ1, o.seq, Ordering::Relaxed);
}

/// A reservation in the broadcast ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Position of the record.
    pub(crate) start: u64,
    /// Ring index of the payload.
    pub(crate) data: u64,
    /// Payload length.
    pub(crate) len: u64,
}

/// Why the producer cannot write now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Lossless: the subscriber in this table slot still needs the space.
    By(u32),
}

/// The producer's private state.
#[derive(Debug, Clone)]
pub(crate) struct BcastProducer {
    geo: Geometry,
    lossless: bool,
    max_subscribers: u32,
    tail: u64,
    published: u64,
    next_seq: u64,
    oldest: Oldest,
    /// Lossless: the smallest subscriber position as last computed.
    cached_min: u64,
    /// Lossless: the join counter when `cached_min` was computed.
    joins_seen: u64,
    /// A reservation published the batch before it (see `try_reserve`): subscribers
    /// parked meanwhile still need waking.
    self_published: bool,
}

impl BcastProducer {
    /// Attaches at the published state, validating it.
    pub(crate) fn attach<W: Words>(
        geo: Geometry,
        mem: &W,
        lossless: bool,
        max_subscribers: u32,
    ) -> Result<BcastProducer, RingError> {
        let tail = mem.ctl_load(off::TAIL, Ordering::Acquire);
        let next_seq = mem.ctl_load(off::NEXT_SEQ, Ordering::Acquire);
        let oldest = read_oldest(mem)?;
        if !valid_pos(tail)
            || !valid_pos(oldest.pos)
            || oldest.pos > tail
            || tail - oldest.pos > geo.capacity()
            || oldest.seq > next_seq
            || next_seq > MAX_POSITION
        {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "producer position or oldest record",
            });
        }
        Ok(BcastProducer {
            geo,
            lossless,
            max_subscribers,
            tail,
            published: tail,
            next_seq,
            oldest,
            // Unknown: the first reservation that overwrites anything scans the table, even
            // one that reclaims nothing. A predecessor may have published an `oldest` past a
            // subscriber whose join it had not seen yet, then died before its fence and
            // scan (pair J) made it wait: that subscriber may be reading what lies there.
            cached_min: 0,
            // Unknown: the first reclaim scans the table.
            joins_seen: mem
                .ctl_load(off::SUB_JOINS, Ordering::Acquire)
                .wrapping_sub(1),
            self_published: false,
        })
    }

    /// Smallest position among registered subscribers that still lie in the window
    /// `[tail - capacity, tail]` (others are lapped or garbage, and not waited for), and
    /// the slot holding it. A position stored under another ticket counts as the window's
    /// start ([`entry_position`]): nothing is reclaimed until its holder stores its own.
    fn min_subscriber<W: Words>(&self, mem: &W) -> (u64, Option<u32>) {
        let cap = self.geo.capacity();
        let mut min = self.tail;
        let mut who = None;
        for i in 0..self.max_subscribers {
            let Some(pos) = entry_position(mem, i, self.tail.saturating_sub(cap)) else {
                continue;
            };
            if pos <= self.tail && self.tail - pos <= cap && pos < min {
                min = pos;
                who = Some(i);
            }
        }
        (min, who)
    }

    /// Reserves room for `len` payload bytes, reclaiming the oldest records (lossy, or
    /// lossless when no subscriber needs them). Padding is written here.
    pub(crate) fn try_reserve<W: Words>(
        &mut self,
        mem: &W,
        len: u64,
    ) -> Result<Result<Reservation, Blocked>, RingError> {
        let max = max_payload(self.geo);
        if len == 0 || len > max {
            return Err(RingError::BadLength { len, max });
        }
        let cap = self.geo.capacity();
        let size = record_size(len);
        let idx = self.tail & (cap - 1);
        let to_end = cap - idx;
        let pad = if to_end < size { to_end } else { 0 };
        let end = self.tail + pad + size;
        let need_oldest = end.saturating_sub(cap);
        // Lossless: scan again when the cached minimum does not cover what we overwrite
        // (also after a scan that blocked us below an `oldest` already published), or when
        // we are about to reclaim and a subscriber joined since the last scan.
        if self.lossless {
            let stale = need_oldest > self.cached_min;
            if stale || need_oldest > self.oldest.pos {
                // Acquire pairs with the subscribers' bump of the counter, made after
                // storing their position (pair J): a scan after seeing it sees the position.
                let joins = mem.ctl_load(off::SUB_JOINS, Ordering::Acquire);
                if stale || joins != self.joins_seen {
                    if let Some(who) = self.rescan(mem, joins, need_oldest) {
                        return Ok(Err(Blocked::By(who)));
                    }
                }
            }
        }
        if need_oldest > self.oldest.pos {
            // Lossless: reclaim up to a sixteenth of the ring ahead, as far as the slowest
            // subscriber allows (`cached_min`, fresh: a scan just ran, or it covered
            // `need_oldest` and positions only grow), so that the fence below comes once
            // per sixteenth of the ring rather than once per message (it waits for this
            // record's stores to reach the cache: +260 ns on a slow-placement round trip).
            // Records already reclaimed are overwritten without it: a subscriber joining
            // later reads an `oldest` past them (pair J).
            //
            // Never past the published `tail` (records batched but not published yet): a
            // subscriber or `stat` reading an `oldest` beyond `tail` takes it for
            // corruption. A batch longer than the ring publishes itself first rather than
            // reclaim records no subscriber could see.
            if need_oldest > self.published {
                self.publish(mem);
                self.self_published = true;
            }
            let ahead = if self.lossless {
                (need_oldest + cap / 16)
                    .min(self.cached_min)
                    .min(self.published)
            } else {
                need_oldest
            };
            self.reclaim(mem, need_oldest, ahead)?;
            if self.lossless {
                // SeqCst fence after publishing the new `oldest`, before overwriting (pair
                // J, with the fence of `Subscriber::register`): a subscriber that joined
                // meanwhile either is seen here or sees the new `oldest` and starts there.
                fence(Ordering::SeqCst);
                let joins = mem.ctl_load(off::SUB_JOINS, Ordering::Acquire);
                if joins != self.joins_seen {
                    if let Some(who) = self.rescan(mem, joins, need_oldest) {
                        // Nothing was overwritten: the new subscriber, still below the
                        // `oldest` published, moves up to it when it reads (it took nothing
                        // yet), and we go on once its position passes `need_oldest`.
                        return Ok(Err(Blocked::By(who)));
                    }
                }
            }
        }
        if pad > 0 {
            mem.word_store(idx, u64::MAX, Ordering::Relaxed); // no message has this seq
            mem.word_store(
                idx + 8,
                ((to_end - HDR) & 0xffff_ffff) | (FLAG_PAD << 32),
                Ordering::Relaxed,
            );
        }
        let start = self.tail + pad;
        Ok(Ok(Reservation {
            start,
            data: (start & (cap - 1)) + HDR,
            len,
        }))
    }

    /// Lossless: scans the subscriber positions again (the join counter read `joins`) and
    /// returns the slot that still needs the space before `need`, if one does.
    fn rescan<W: Words>(&mut self, mem: &W, joins: u64, need: u64) -> Option<u32> {
        self.joins_seen = joins;
        let (min, who) = self.min_subscriber(mem);
        self.cached_min = min;
        (need > min).then(|| who.unwrap_or(0))
    }

    /// Advances `oldest` past every record starting before `need`, then past those that
    /// end by `ahead`, and publishes it.
    fn reclaim<W: Words>(&mut self, mem: &W, need: u64, ahead: u64) -> Result<(), RingError> {
        let cap = self.geo.capacity();
        let mut o = self.oldest;
        // Bounded: each step passes at least 16 bytes of at most `cap`.
        for _ in 0..=(cap / 16) {
            if o.pos >= need.max(ahead) {
                break;
            }
            let idx = o.pos & (cap - 1);
            let w1 = mem.word_load(idx + 8, Ordering::Relaxed);
            let (len, flags) = (w1 & 0xffff_ffff, w1 >> 32);
            let pad = flags == FLAG_PAD;
            let step = if pad {
                cap - idx
            } else {
                let seq = mem.word_load(idx, Ordering::Relaxed);
                if flags != 0 || seq != o.seq {
                    return Err(RingError::Corrupted {
                        at: Where::Ring(idx),
                        what: "record header (reclaiming)",
                    });
                }
                record_size(len)
            };
            if step == 0 || step > cap - idx || o.pos + step > self.tail {
                return Err(RingError::Corrupted {
                    at: Where::Ring(idx),
                    what: "record size (reclaiming)",
                });
            }
            // Past `need`, only records that end by `ahead` (a subscriber may be at the next).
            if o.pos >= need && o.pos + step > ahead {
                break;
            }
            if !pad {
                o.seq += 1;
            }
            o.pos += step;
        }
        if o.pos < need {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "reclaim loop",
            });
        }
        write_oldest(mem, o);
        // Order the new `oldest` before the overwriting stores that follow (pair O): a
        // subscriber that sees overwritten bytes then sees the new `oldest` after its fence.
        fence(Ordering::Release);
        self.oldest = o;
        Ok(())
    }

    /// Writes the header of a reserved record and moves past it; [`publish`](Self::publish)
    /// makes it visible.
    pub(crate) fn commit<W: Words>(&mut self, mem: &W, r: &Reservation) {
        let idx = r.start & (self.geo.capacity() - 1);
        mem.word_store(idx, self.next_seq, Ordering::Relaxed);
        mem.word_store(idx + 8, r.len, Ordering::Relaxed);
        self.next_seq += 1;
        self.tail = r.start + record_size(r.len);
    }

    /// Whether committed records are unpublished, or were published by a reservation
    /// without a wake-up yet (the flag is cleared).
    pub(crate) fn take_unpublished(&mut self) -> bool {
        std::mem::take(&mut self.self_published) || self.tail != self.published
    }

    /// Publishes committed records (pair **T**).
    pub(crate) fn publish<W: Words>(&mut self, mem: &W) {
        if self.tail != self.published {
            mem.ctl_store(off::NEXT_SEQ, self.next_seq, Ordering::Relaxed);
            // Release pairs with the subscribers' Acquire load of `tail` (pair T).
            mem.ctl_store(off::TAIL, self.tail, Ordering::Release);
            self.published = self.tail;
        }
    }

    /// Forgets the cached minimum (after a subscriber slot was freed).
    pub(crate) fn invalidate_min(&mut self) {
        self.cached_min = 0;
    }
}

/// What a subscriber found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing new.
    Empty,
    /// A record: copy it, then call [`Subscriber::validate`].
    Record {
        /// Ring index of the payload.
        data: u64,
        /// Payload length.
        len: u64,
        /// Its sequence number.
        seq: u64,
        /// Position just past it.
        end: u64,
    },
    /// We were lapped: `missed` messages are gone; we moved to the oldest intact one.
    Lagged {
        /// Messages lost.
        missed: u64,
    },
    /// Lossless: we were dropped from the subscriber table while alive (see "Eviction" in
    /// the module docs): the producer no longer keeps what we have not read. Every look
    /// from now on says so.
    Evicted,
}

/// What [`Subscriber::validate`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    /// The record was intact while copied: we moved past it.
    Intact,
    /// It was overwritten (or is being reclaimed): we moved to the oldest intact record,
    /// and `missed` messages are lost, this one included (0: a joining subscriber's start,
    /// reclaimed before the producer saw it, which was not ours to lose).
    Lost(u64),
    /// Lossless: it may have been overwritten, and we were evicted ([`Next::Evicted`]):
    /// nothing consumed.
    Evicted,
}

/// A subscriber's claim on its table entry: the entry's field, and the word the claim stored
/// in it (the entry's ticket and our peer id). The entry is ours while it holds that word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Registration {
    entry: u64,
    word: u64,
}

impl Registration {
    /// Whether our entry still holds our word.
    #[inline]
    pub(crate) fn held<W: Words>(&self, mem: &W) -> bool {
        mem.ctl_load(self.entry, Ordering::Relaxed) == self.word
    }

    /// [`held`](Self::held), after finding a record of ours reclaimed (an `oldest` past
    /// it, an overwritten word, a `tail` lapping it): the Acquire fence pairs with the
    /// producer's Release fence after publishing that `oldest` (pair **O**), which it
    /// crossed after freeing our entry: having seen what came after the fence, we see the
    /// entry freed.
    #[inline]
    pub(crate) fn held_after_reclaim<W: Words>(&self, mem: &W) -> bool {
        fence(Ordering::Acquire);
        self.held(mem)
    }

    /// Stores `pos` with our tag (pair S, Release: pairs with the producer's Acquire scan).
    #[inline]
    fn store<W: Words>(&self, mem: &W, pos: u64) {
        mem.ctl_store(self.entry + 8, pos | tag_of(self.word), Ordering::Release);
    }

    /// While waiting: stores `published` (the position we stored last) again if the entry
    /// is ours and its position word holds something else, a position a subscriber dropped
    /// from the entry stored late (or garbage), which the producer treats as the window's
    /// start ([`entry_position`]) until we store ours. Returns whether it stored.
    pub(crate) fn restore<W: Words>(&self, mem: &W, published: u64) -> bool {
        if !self.held(mem)
            || mem.ctl_load(self.entry + 8, Ordering::Relaxed) == published | tag_of(self.word)
        {
            return false;
        }
        self.store(mem, published);
        true
    }
}

/// A subscriber's private state.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    geo: Geometry,
    pos: u64,
    /// The sequence number expected next (unknown only when starting at the newest message
    /// of a ring that kept changing, or was garbage, while we counted its records).
    seq: Option<u64>,
    /// Lossless, nothing handed out yet: finding our start reclaimed means the producer saw
    /// our registration only after publishing a new `oldest` (see the module docs): we move
    /// up to it without reporting a loss.
    joining: bool,
    /// Registered on a lossless ring: the producer never overwrites a record we have not
    /// read, and an `oldest` found past us once we handed a record out is the reclaim that
    /// saw our join late (see the module docs), not a loss.
    lossless: bool,
    /// Our table entry (a zero word before [`register`](Self::register)). An entry found
    /// holding another word was taken from us by a peer that took us for dead (see
    /// "Eviction" in the module docs): the producer no longer waits for us.
    reg: Registration,
    /// Lossless: we found our entry taken from us. Every look returns [`Next::Evicted`].
    evicted: bool,
}

impl Subscriber {
    /// Starts at the oldest retained message (`newest == false`) or after the newest.
    pub(crate) fn attach<W: Words>(
        geo: Geometry,
        mem: &W,
        newest: bool,
    ) -> Result<Subscriber, RingError> {
        if newest {
            let tail = mem.ctl_load(off::TAIL, Ordering::Acquire);
            if !valid_pos(tail) {
                return Err(RingError::Corrupted {
                    at: Where::Tail,
                    what: "producer position",
                });
            }
            Ok(Subscriber {
                geo,
                pos: tail,
                seq: seq_at(geo, mem, tail)?,
                joining: false,
                lossless: false,
                reg: Registration { entry: 0, word: 0 },
                evicted: false,
            })
        } else {
            let o = read_oldest(mem)?;
            if !valid_pos(o.pos) || o.seq > MAX_POSITION {
                return Err(RingError::Corrupted {
                    at: Where::Tail,
                    what: "oldest record",
                });
            }
            Ok(Subscriber {
                geo,
                pos: o.pos,
                seq: Some(o.seq),
                joining: false,
                lossless: false,
                reg: Registration { entry: 0, word: 0 },
                evicted: false,
            })
        }
    }

    /// Makes us known to the producer: stores our position in table entry `slot`, which our
    /// claim set to `word` (its ticket and our peer id), bumps the join counter, and moves
    /// up to `oldest` if the producer reclaimed our start meanwhile (pair **J**, see the
    /// module docs). `lossless`: until we take a record, a start found reclaimed later is
    /// no loss either. An entry that no longer holds `word` was taken from us already: we
    /// store nothing in it, and a lossless subscriber is evicted.
    ///
    /// A position we moved up to is announced the same way (stored, counter bumped, fence,
    /// `oldest` read again) until `oldest` no longer passes it: a producer that saw the
    /// previous bump may have read only the previous position, and one the producer lapped
    /// by more than the ring lies outside its window, so its scan ignored it. Without a new
    /// bump it would go on overwriting past the position we moved up to, unseen, while a
    /// lossless subscriber takes what it reads there as intact (`readable`).
    pub(crate) fn register<W: Words>(
        &mut self,
        mem: &W,
        slot: u32,
        word: u64,
        lossless: bool,
    ) -> Result<(), RingError> {
        self.reg = Registration {
            entry: off::subscriber(slot),
            word,
        };
        self.lossless = lossless;
        if !self.reg.held(mem) {
            self.evicted = lossless;
            return Ok(());
        }
        // Bounded: each round needs the producer to publish an `oldest` past the position
        // we announced just before, before it sees that announcement; a producer that sees
        // it waits for us. Only a peer rewriting `oldest` keeps it up for long.
        let mut rounds = 0u32;
        loop {
            // Release pairs with the producer's Acquire scan of positions (pair S).
            self.reg.store(mem, self.pos);
            // Bounded: only other subscribers joining at the same moment make a CAS fail;
            // past the bound (a peer rewriting the counter), the fence and the re-read
            // below still cover this join.
            for _ in 0..1024 {
                let n = mem.ctl_load(off::SUB_JOINS, Ordering::Relaxed);
                // AcqRel (Release part): the position stored above is visible to a producer
                // whose Acquire load sees the new count (pair J).
                if mem.ctl_cas(off::SUB_JOINS, n, n.wrapping_add(1)).is_ok() {
                    break;
                }
            }
            // SeqCst fence (pair J, with the producer's fence after publishing `oldest`).
            fence(Ordering::SeqCst);
            let o = read_oldest(mem)?;
            if !valid_pos(o.pos) || o.seq > MAX_POSITION {
                return Err(RingError::Corrupted {
                    at: Where::Tail,
                    what: "oldest record",
                });
            }
            if o.pos <= self.pos {
                break;
            }
            self.pos = o.pos;
            self.seq = Some(o.seq);
            rounds += 1;
            if rounds >= 1024 {
                return Err(RingError::Corrupted {
                    at: Where::Tail,
                    what: "oldest record keeps passing our start",
                });
            }
        }
        self.joining = lossless;
        Ok(())
    }

    /// Our position.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Our claim on our table entry.
    pub(crate) fn registration(&self) -> Registration {
        self.reg
    }

    /// Stores our position in our table entry (pair **S**) if the entry is still ours: the
    /// producer keeps what lies after it (lossless), `stat` shows it. Once the entry holds
    /// another word (see "Eviction" in the module docs) nothing is stored, ever: the position
    /// would pass for the new holder's; a lossless subscriber is then evicted, and the next
    /// look says so. Returns whether it stored. One load of the line the store writes, and a
    /// compare.
    #[inline]
    pub(crate) fn publish<W: Words>(&mut self, mem: &W) -> bool {
        if self.reg.held(mem) {
            self.reg.store(mem, self.pos);
            true
        } else {
            self.evicted |= self.lossless;
            false
        }
    }

    /// Whether we were evicted (see [`Next::Evicted`]).
    pub(crate) fn evicted(&self) -> bool {
        self.evicted
    }

    /// Frees our table entry if it is still ours (one taken from us is its new holder's).
    pub(crate) fn leave<W: Words>(&self, mem: &W) {
        if self.reg.word != 0 {
            let _ = mem.ctl_cas(self.reg.entry, self.reg.word, freed_entry(self.reg.word));
        }
    }

    /// Lossless: whether we are evicted, our entry found taken from us now or before. An
    /// `oldest` found past us is then a record the producer did not keep for us.
    #[inline]
    pub(crate) fn check_evicted<W: Words>(&mut self, mem: &W) -> bool {
        if self.lossless && !self.reg.held_after_reclaim(mem) {
            self.evicted = true;
        }
        self.evicted
    }

    /// Moves to the oldest intact record after finding ours reclaimed: `Some(missed)`, the
    /// messages skipped (0 when only padding was), or `None` when the stable copy of the
    /// latch does not point past us yet: the producer is in the middle of reclaiming our
    /// record (copy 0 already says so), and we wait for it rather than move backwards.
    fn resync<W: Words>(&mut self, mem: &W) -> Result<Option<u64>, RingError> {
        let o = read_oldest(mem)?;
        if !valid_pos(o.pos) || o.seq > MAX_POSITION {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "oldest record",
            });
        }
        if o.pos <= self.pos {
            return Ok(None);
        }
        let missed = match self.seq {
            _ if self.joining => 0,
            Some(s) if o.seq >= s => o.seq - s,
            Some(_) => {
                return Err(RingError::Corrupted {
                    at: Where::Tail,
                    what: "oldest record moved backwards",
                })
            }
            None => 0,
        };
        self.pos = o.pos;
        self.seq = Some(o.seq);
        Ok(Some(missed))
    }

    /// [`try_next`](Self::try_next) found our record reclaimed: what to report, or `None` to
    /// look again (we only skipped padding). A lossless subscriber whose entry was taken is
    /// evicted: the loss is not a count it could go on from.
    fn after_reclaim<W: Words>(&mut self, mem: &W) -> Result<Option<Next>, RingError> {
        if self.check_evicted(mem) {
            return Ok(Some(Next::Evicted));
        }
        Ok(match self.resync(mem)? {
            Some(0) => None,
            Some(missed) => Some(Next::Lagged { missed }),
            None => Some(Next::Empty),
        })
    }

    /// The next record at our position, if any.
    pub(crate) fn try_next<W: Words>(&mut self, mem: &W) -> Result<Next, RingError> {
        if self.evicted {
            return Ok(Next::Evicted);
        }
        let cap = self.geo.capacity();
        for _ in 0..3 {
            // Acquire pairs with the producer's Release store of `tail` (pair T).
            let tail = mem.ctl_load(off::TAIL, Ordering::Acquire);
            if tail == self.pos {
                return Ok(Next::Empty);
            }
            if tail < self.pos || !valid_pos(tail) {
                return Err(RingError::Corrupted {
                    at: Where::Tail,
                    what: "producer position",
                });
            }
            if tail - self.pos > cap {
                if let Some(next) = self.after_reclaim(mem)? {
                    return Ok(next);
                }
                continue;
            }
            let idx = self.pos & (cap - 1);
            let to_end = cap - idx;
            let seq = mem.word_load(idx, Ordering::Relaxed);
            let w1 = mem.word_load(idx + 8, Ordering::Relaxed);
            let (len, flags) = (w1 & 0xffff_ffff, w1 >> 32);
            if flags == FLAG_PAD && len + HDR == to_end {
                if !self.readable(mem)? {
                    if let Some(next) = self.after_reclaim(mem)? {
                        return Ok(next);
                    }
                    continue;
                }
                self.pos += to_end;
                continue;
            }
            let size = record_size(len);
            let sane = flags == 0
                && len >= 1
                && len <= max_payload(self.geo)
                && size <= to_end
                && size <= tail - self.pos
                // Started at the newest message, we take the record's word for its
                // sequence number: it must still leave room to count on.
                && self.seq.map_or(seq <= MAX_POSITION, |s| s == seq);
            if !sane {
                // Overwritten under us, or garbage: tell which.
                if !self.still_intact(mem, self.pos) {
                    if let Some(next) = self.after_reclaim(mem)? {
                        return Ok(next);
                    }
                    continue;
                }
                return Err(RingError::Corrupted {
                    at: Where::Ring(idx),
                    what: "record header",
                });
            }
            if self.lossless {
                // Decided before the record is handed out, in place or copied: a joining
                // subscriber whose start was reclaimed moves up now, before anyone saw it
                // (found after, the record would be seen and then skipped, uncounted, and
                // the messages after it lost). From here on the record is ours: an `oldest`
                // found past it later is the reclaim that saw our join late (`readable`).
                if !self.readable(mem)? {
                    if let Some(next) = self.after_reclaim(mem)? {
                        return Ok(next);
                    }
                    continue;
                }
                self.joining = false;
            }
            return Ok(Next::Record {
                data: idx + HDR,
                len,
                seq,
                end: self.pos + size,
            });
        }
        Err(RingError::Corrupted {
            at: Where::Ring(self.pos & (cap - 1)),
            what: "padding loop",
        })
    }

    /// Whether the record at `pos` was not reclaimed: call after reading it. The Acquire
    /// fence orders our reads of the record before the read of `oldest_pos` (pair **O**):
    /// if one of them saw a byte the producer wrote over the record, we see the `oldest_pos`
    /// it stored before. One load of a word that only grows: no lock to wait for. A garbage
    /// value only makes us keep a copy from inside the ring, or resynchronise (validated).
    #[inline]
    pub(crate) fn still_intact<W: Words>(&self, mem: &W, pos: u64) -> bool {
        fence(Ordering::Acquire);
        mem.ctl_load(off::OLDEST_POS, Ordering::Relaxed) <= pos
    }

    /// Whether the record at our position can be read intact: it was not reclaimed
    /// ([`still_intact`](Self::still_intact)), or we are a lossless subscriber past its
    /// join. The producer never overwrites a record a registered lossless subscriber has not
    /// read; it can only have published an `oldest` past us before its fence saw our join
    /// (pair J), and it then waits for us (see the module docs). A joining subscriber moves
    /// up to that `oldest` instead (`false`). An `oldest` past us that is garbage is
    /// corruption. A subscriber whose table entry no longer holds its word was dropped as
    /// dead (its liveness misjudged): the producer no longer waits for it, so an `oldest`
    /// past it is not the late reclaim (`false`; the callers then report it evicted). The
    /// producer clears the entry (or a new subscriber claims it) before the scan that skips
    /// us, hence before it publishes that `oldest` (pair O): having seen the `oldest` (or an
    /// overwritten byte), we see the entry changed.
    #[inline]
    fn readable<W: Words>(&self, mem: &W) -> Result<bool, RingError> {
        if self.still_intact(mem, self.pos) {
            return Ok(true);
        }
        if !self.lossless || self.joining || !self.reg.held_after_reclaim(mem) {
            return Ok(false);
        }
        let o = read_oldest(mem)?;
        if !valid_pos(o.pos) || o.seq > MAX_POSITION {
            return Err(RingError::Corrupted {
                at: Where::Tail,
                what: "oldest record",
            });
        }
        Ok(true)
    }

    /// Moves past a record the caller already knows was intact when read (see
    /// [`still_intact`](Self::still_intact)).
    pub(crate) fn advance(&mut self, seq: u64, end: u64) {
        self.pos = end;
        self.seq = Some(seq + 1);
        self.joining = false;
    }

    /// After copying a record found by [`try_next`](Self::try_next): [`Checked::Intact`]
    /// and we move past it if it was intact during the copy; [`Checked::Lost`] if it was
    /// overwritten (or is being reclaimed right now): we moved past it, to the oldest intact
    /// record. Either way the record is never found again, so it is delivered at most once.
    /// A lossless subscriber's record (the one [`try_next`](Self::try_next) returned) is
    /// intact while the subscriber holds its entry: [`Checked::Intact`], the latch's damage,
    /// or [`Checked::Evicted`] once the entry was taken from it.
    pub(crate) fn validate<W: Words>(
        &mut self,
        mem: &W,
        seq: u64,
        end: u64,
    ) -> Result<Checked, RingError> {
        if self.readable(mem)? {
            self.advance(seq, end);
            return Ok(Checked::Intact);
        }
        if self.check_evicted(mem) {
            return Ok(Checked::Evicted);
        }
        match self.resync(mem)? {
            Some(missed) => Ok(Checked::Lost(missed)),
            None => {
                // Being reclaimed: lost, count it and step over it (its header was checked).
                // Joining: reclaimed before the producer saw us, not ours to lose.
                self.pos = end;
                self.seq = self.seq.map(|s| s + 1);
                Ok(Checked::Lost(u64::from(!self.joining)))
            }
        }
    }
}

/// Fuzzing entry: subscribers, then the producer, then a subscriber again over arbitrary
/// header fields and ring memory on the heap, checking that every record they report lies
/// inside the ring, that every loop ends and that nothing panics.
///
/// Input: a flags byte (bit 0: keep the header words' low 16 bits only, 16-byte aligned, so
/// positions land near each other; bit 1: lossless; bits 2..4: the capacity, 128 to 4096
/// bytes; bit 4: register the subscribers in the table), the header words `tail`,
/// `next_seq`, the latch (version, copy 0, copy 1) and the join counter, four
/// subscriber-table entries (two words each), then the ring's bytes (8 bytes each,
/// little-endian).
#[cfg(fuzzing)]
pub(crate) fn fuzz_ring(data: &[u8]) {
    use super::words::heap::HeapWords;
    const FIELDS: [u64; 8] = [
        off::TAIL,
        off::NEXT_SEQ,
        off::OLDEST_VER,
        off::OLDEST_POS,
        off::OLDEST_SEQ,
        off::OLDEST_POS1,
        off::OLDEST_SEQ1,
        off::SUB_JOINS,
    ];
    const SUBS: u32 = 4;
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let cap = [128, 256, 1024, 4096][usize::from(flags >> 2) & 3];
    let lossless = flags & 2 != 0;
    let geo = Geometry::new(cap).unwrap();
    let mem = HeapWords::new(cap);
    let mut words = rest
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .chain(std::iter::repeat(0));
    for field in FIELDS {
        let w = words.next().unwrap();
        let w = if flags & 1 != 0 { w & 0xfff0 } else { w };
        mem.ctl_store(field, w, Ordering::Relaxed);
    }
    for i in 0..SUBS {
        mem.ctl_store(off::subscriber(i), words.next().unwrap(), Ordering::Relaxed);
        mem.ctl_store(
            off::subscriber(i) + 8,
            words.next().unwrap(),
            Ordering::Relaxed,
        );
    }
    let ring_words = (rest
        .len()
        .saturating_sub(8 * (FIELDS.len() + 2 * SUBS as usize)))
    .div_ceil(8);
    for i in 0..(cap / 8).min(ring_words as u64) {
        mem.word_store(i * 8, words.next().unwrap(), Ordering::Relaxed);
    }
    let read = |s: &mut Subscriber| {
        let mut buf = Vec::new();
        // A record moves us at least 16 bytes towards `tail`, which is at most one capacity
        // ahead; a loss moves us up to `oldest` (never back), after which only records remain.
        for _ in 0..2 * (cap / 16) + 8 {
            match s.try_next(&mem) {
                Ok(Next::Record {
                    data,
                    len,
                    seq,
                    end,
                }) => {
                    assert!(data + len <= cap, "record outside the ring");
                    assert!(len >= 1 && len <= max_payload(geo), "record length");
                    assert!(end > s.pos() && end - s.pos() <= cap, "record end");
                    buf.resize(len as usize, 0);
                    mem.read_bytes(data, &mut buf);
                    if s.validate(&mem, seq, end).is_err() {
                        return;
                    }
                }
                Ok(Next::Lagged { missed }) => assert!(missed > 0, "a loss of nothing"),
                Ok(Next::Empty | Next::Evicted) | Err(_) => return,
            }
        }
        panic!("the subscriber did not stop");
    };
    for (slot, newest) in [(0, false), (1, true)] {
        if let Ok(mut s) = Subscriber::attach(geo, &mem, newest) {
            let word = mem.ctl_load(off::subscriber(slot), Ordering::Relaxed);
            if flags & 16 != 0 && s.register(&mem, slot, word, lossless).is_err() {
                continue;
            }
            read(&mut s);
        }
    }
    if let Ok(mut p) = BcastProducer::attach(geo, &mem, lossless, SUBS) {
        for len in [1, 16, 17, 100, max_payload(geo)] {
            match p.try_reserve(&mem, len) {
                Ok(Ok(r)) => {
                    assert!(r.data + r.len <= cap, "reservation outside the ring");
                    mem.write_bytes(r.data, &vec![0xa5; len as usize]);
                    p.commit(&mem, &r);
                    p.publish(&mem);
                }
                Ok(Err(Blocked::By(who))) => {
                    assert!(who < SUBS, "blocked by a slot beyond the table");
                    break;
                }
                Err(_) => break,
            }
        }
    }
    if let Ok(mut s) = Subscriber::attach(geo, &mem, false) {
        read(&mut s);
    }
}

/// Test helpers shared by the unit tests and the loom models.
#[cfg(test)]
mod test_io {
    use super::super::words::heap::HeapWords;
    use super::*;

    /// Publishes one message; `false` when a lossless producer is blocked.
    pub(super) fn send(
        p: &mut BcastProducer,
        m: &HeapWords,
        data: &[u8],
    ) -> Result<bool, RingError> {
        match p.try_reserve(m, data.len() as u64)? {
            Ok(r) => {
                m.write_bytes(r.data, data);
                p.commit(m, &r);
                p.publish(m);
                Ok(true)
            }
            Err(Blocked::By(_)) => Ok(false),
        }
    }

    /// Claims table entry `slot` for peer `id` as `Shared::attach_entry` does (its ticket
    /// bumped); returns the word stored.
    pub(super) fn claim(m: &HeapWords, slot: u32, id: u32) -> u64 {
        let w = super::super::layout::claimed_entry(
            m.ctl_load(off::subscriber(slot), Ordering::Relaxed),
            id,
        );
        m.ctl_store(off::subscriber(slot), w, Ordering::Release);
        w
    }

    /// Frees table entry `slot` as `Shared::detach_entry` does when the producer takes its
    /// holder for dead.
    pub(super) fn free(m: &HeapWords, slot: u32) {
        let w = m.ctl_load(off::subscriber(slot), Ordering::Relaxed);
        m.ctl_store(off::subscriber(slot), freed_entry(w), Ordering::Release);
    }

    /// What [`recv`] returns (as `Some(Err(EVICTED))`) when the subscriber was evicted.
    pub(super) const EVICTED: u64 = u64::MAX;

    /// Reads the next message: `Some(Ok(bytes))`, `Some(Err(missed))` when lagged (or
    /// [`EVICTED`]), `None` when there is none yet.
    pub(super) fn recv(
        s: &mut Subscriber,
        m: &HeapWords,
    ) -> Result<Option<Result<Vec<u8>, u64>>, RingError> {
        Ok(match s.try_next(m)? {
            Next::Empty => None,
            Next::Lagged { missed } => Some(Err(missed)),
            Next::Evicted => Some(Err(EVICTED)),
            Next::Record {
                data,
                len,
                seq,
                end,
            } => {
                let mut v = vec![0; len as usize];
                m.read_bytes(data, &mut v);
                Some(match s.validate(m, seq, end)? {
                    Checked::Intact => Ok(v),
                    Checked::Lost(missed) => Err(missed),
                    Checked::Evicted => Err(EVICTED),
                })
            }
        })
    }

    /// What [`in_place`] found.
    #[cfg(loom)]
    #[derive(Debug)]
    pub(super) enum InPlace {
        /// Nothing new.
        Empty,
        /// Lagged, or a record stepped over before anyone saw it: the messages lost
        /// ([`EVICTED`] when evicted).
        Skipped(u64),
        /// A record read in place, and whether it was then consumed as received.
        Seen(Vec<u8>, bool),
    }

    /// Reads the next message as `Receiver::drain` (lossless) and a `RecvRef` do: in
    /// place, then consumed.
    #[cfg(loom)]
    pub(super) fn in_place(s: &mut Subscriber, m: &HeapWords) -> Result<InPlace, RingError> {
        Ok(match s.try_next(m)? {
            Next::Empty => InPlace::Empty,
            Next::Lagged { missed } => InPlace::Skipped(missed),
            Next::Evicted => InPlace::Skipped(EVICTED),
            Next::Record {
                data,
                len,
                seq,
                end,
            } => {
                // As `drain`: `try_next` decided whether a lossless subscriber's record may
                // be handed out.
                let mut v = vec![0; len as usize];
                m.read_bytes(data, &mut v);
                let consumed = s.validate(m, seq, end)? == Checked::Intact;
                InPlace::Seen(v, consumed)
            }
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::words::heap::HeapWords;
    use super::test_io::{claim, free, recv, send, EVICTED};
    use super::*;
    use proptest::prelude::*;

    fn geo(cap: u64) -> Geometry {
        Geometry::new(cap).unwrap()
    }

    #[test]
    fn lossy_subscriber_learns_exactly_what_it_missed() {
        let g = geo(256);
        let m = HeapWords::new(256);
        let mut p = BcastProducer::attach(g, &m, false, 4).unwrap();
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        for i in 0..40u8 {
            assert!(send(&mut p, &m, &[i; 20]).unwrap()); // 48-byte records
        }
        // 256 bytes hold 5 records of 48: the oldest intact is 35.
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Err(35)));
        for i in 35..40u8 {
            assert_eq!(recv(&mut s, &m).unwrap(), Some(Ok(vec![i; 20])));
        }
        assert_eq!(recv(&mut s, &m).unwrap(), None);
        // A new subscriber at the newest sees only what comes next.
        let mut late = Subscriber::attach(g, &m, true).unwrap();
        assert_eq!(recv(&mut late, &m).unwrap(), None);
        send(&mut p, &m, b"next").unwrap();
        assert_eq!(recv(&mut late, &m).unwrap(), Some(Ok(b"next".to_vec())));
    }

    #[test]
    fn lossless_producer_waits_for_the_slowest_registered_subscriber() {
        let g = geo(256);
        let m = HeapWords::new(256);
        let mut p = BcastProducer::attach(g, &m, true, 4).unwrap();
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        // register in slot 2
        m.ctl_store(off::subscriber(2), 7, Ordering::Relaxed);
        m.ctl_store(off::subscriber(2) + 8, s.pos(), Ordering::Relaxed);
        let mut sent = 0u8;
        while send(&mut p, &m, &[sent; 20]).unwrap() {
            sent += 1;
        }
        assert_eq!(sent, 5);
        assert_eq!(p.try_reserve(&m, 20).unwrap(), Err(Blocked::By(2)));
        for i in 0..5u8 {
            assert_eq!(recv(&mut s, &m).unwrap(), Some(Ok(vec![i; 20])));
            m.ctl_store(off::subscriber(2) + 8, s.pos(), Ordering::Release);
        }
        assert!(send(&mut p, &m, &[5; 20]).unwrap());
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Ok(vec![5; 20])));
    }

    /// Lossless: a producer killed after publishing an `oldest` past a subscriber whose
    /// join it had not seen yet (pair J: its fence and scan would have made it wait), while
    /// the subscriber reads its first record in place. The next producer must not take the
    /// published `oldest` for "nobody needs what lies before": it scans the table before it
    /// overwrites anything, and waits; the record read is intact and counted received.
    #[test]
    fn lossless_producer_restarted_after_a_reclaim_that_missed_a_join_scans_first() {
        let g = geo(128);
        let m = HeapWords::new(128);
        let mut p1 = BcastProducer::attach(g, &m, true, 1).unwrap();
        for k in 1..=4u8 {
            assert!(send(&mut p1, &m, &[k; 16]).unwrap());
        }
        let w = claim(&m, 0, 7);
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        s.register(&m, 0, w, true).unwrap();
        let Next::Record {
            data,
            len,
            seq,
            end,
        } = s.try_next(&m).unwrap()
        else {
            panic!("no record");
        };
        // The dying producer's reclaim of record 1, published before its fence saw our join.
        write_oldest(&m, Oldest { pos: 32, seq: 1 });
        // `p1` is dead from here on: it does nothing more.
        let mut p2 = BcastProducer::attach(g, &m, true, 1).unwrap();
        let sent = send(&mut p2, &m, &[5; 16]).unwrap();
        let mut v = vec![0; len as usize];
        m.read_bytes(data, &mut v);
        let validated = s.validate(&m, seq, end).unwrap();
        assert!(
            !sent && v == [1; 16],
            "the new producer overwrote the record being read: {v:?}, validated {validated:?}"
        );
        assert_eq!(validated, Checked::Intact);
        assert!(s.publish(&m));
        assert!(send(&mut p2, &m, &[5; 16]).unwrap());
    }

    /// Lossless: a subscriber dropped from the table while alive (its liveness misjudged:
    /// `detach_entry`, then `invalidate_min`) is no longer waited for; a record of its
    /// overwritten while it read it is never handed out as intact: it is evicted, and
    /// every look says so from then on. It no longer stores its position in the entry.
    #[test]
    fn lossless_subscriber_dropped_as_dead_is_evicted() {
        let g = geo(128);
        let m = HeapWords::new(128);
        let mut p = BcastProducer::attach(g, &m, true, 1).unwrap();
        let w = claim(&m, 0, 7);
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        s.register(&m, 0, w, true).unwrap();
        for k in 1..=4u8 {
            assert!(send(&mut p, &m, &[k; 16]).unwrap());
        }
        assert!(!send(&mut p, &m, &[5; 16]).unwrap(), "not waited for");
        let Next::Record {
            data,
            len,
            seq,
            end,
        } = s.try_next(&m).unwrap()
        else {
            panic!("no record");
        };
        // Taken for dead: the producer clears the entry and scans again.
        free(&m, 0);
        p.invalidate_min();
        assert!(send(&mut p, &m, &[5; 16]).unwrap());
        let mut v = vec![0; len as usize];
        m.read_bytes(data, &mut v);
        assert_eq!(v, [5; 16], "overwritten, as the test intends");
        assert_eq!(s.validate(&m, seq, end).unwrap(), Checked::Evicted);
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Err(EVICTED)));
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Err(EVICTED)));
        let before = m.ctl_load(off::subscriber(0) + 8, Ordering::Relaxed);
        assert!(!s.publish(&m));
        assert_eq!(
            m.ctl_load(off::subscriber(0) + 8, Ordering::Relaxed),
            before
        );
    }

    /// Lossless: a subscriber dropped from the table while alive, not lapped yet, learns it
    /// at its next publication (its entry is not its own): nothing is stored, and the next
    /// look says it was evicted, before any record the producer no longer keeps for it.
    #[test]
    fn lossless_subscriber_dropped_as_dead_learns_it_when_it_publishes() {
        let g = geo(128);
        let m = HeapWords::new(128);
        let mut p = BcastProducer::attach(g, &m, true, 1).unwrap();
        let w = claim(&m, 0, 7);
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        s.register(&m, 0, w, true).unwrap();
        for k in 1..=2u8 {
            assert!(send(&mut p, &m, &[k; 16]).unwrap());
        }
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Ok(vec![1; 16])));
        free(&m, 0);
        let before = m.ctl_load(off::subscriber(0) + 8, Ordering::Relaxed);
        assert!(!s.publish(&m));
        assert_eq!(
            m.ctl_load(off::subscriber(0) + 8, Ordering::Relaxed),
            before
        );
        assert!(s.evicted());
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Err(EVICTED)));
    }

    /// Lossy: a subscriber dropped from its entry (taken for dead) is not evicted: its
    /// producer never waits for anyone, and it is told of every loss anyway. It stops
    /// storing its position (the entry is another's now) and reads on.
    #[test]
    fn lossy_subscriber_dropped_from_its_entry_reads_on() {
        let g = geo(128);
        let m = HeapWords::new(128);
        let mut p = BcastProducer::attach(g, &m, false, 1).unwrap();
        let w = claim(&m, 0, 7);
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        s.register(&m, 0, w, false).unwrap();
        send(&mut p, &m, &[1; 16]).unwrap();
        free(&m, 0);
        let w2 = claim(&m, 0, 9);
        m.ctl_store(off::subscriber(0) + 8, tag_of(w2), Ordering::Release);
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Ok(vec![1; 16])));
        assert!(!s.publish(&m));
        assert!(!s.evicted());
        assert_eq!(
            m.ctl_load(off::subscriber(0) + 8, Ordering::Relaxed),
            tag_of(w2),
            "stored into the new holder's entry"
        );
        for k in 2..=6u8 {
            send(&mut p, &m, &[k; 16]).unwrap();
        }
        // 4 records fit: 3 to 6 are there, 2 was overwritten.
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Err(1)));
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Ok(vec![3; 16])));
    }

    /// Lossless: a subscriber dropped from the table while alive, whose entry a subscriber
    /// with the same peer id then takes (ids come back after 2^22 reuses of a region slot,
    /// or from a peer scribbling over the table): its record overwritten while it reads it
    /// is never handed out as intact. The entry's ticket tells the two claims apart.
    #[test]
    fn lossless_subscriber_dropped_then_its_id_reused_is_not_fooled() {
        let g = geo(128);
        let m = HeapWords::new(128);
        let mut p = BcastProducer::attach(g, &m, true, 1).unwrap();
        let w = claim(&m, 0, 7);
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        s.register(&m, 0, w, true).unwrap();
        for k in 1..=4u8 {
            assert!(send(&mut p, &m, &[k; 16]).unwrap());
        }
        let Next::Record {
            data,
            len,
            seq,
            end,
        } = s.try_next(&m).unwrap()
        else {
            panic!("no record");
        };
        // Taken for dead: the entry cleared; then taken again by a peer with the same id,
        // which starts at the newest message.
        free(&m, 0);
        p.invalidate_min();
        let w2 = claim(&m, 0, 7);
        assert_eq!(w2 as u32, w as u32, "the same peer id");
        let mut other = Subscriber::attach(g, &m, true).unwrap();
        other.register(&m, 0, w2, true).unwrap();
        assert!(send(&mut p, &m, &[5; 16]).unwrap());
        let mut v = vec![0; len as usize];
        m.read_bytes(data, &mut v);
        assert_eq!(v, [5; 16], "overwritten, as the test intends");
        let validated = s.validate(&m, seq, end).unwrap();
        assert_eq!(
            validated,
            Checked::Evicted,
            "message 5's bytes taken for message 1"
        );
    }

    /// Lossless: a subscriber dropped from the table while alive checked its entry just
    /// before it was dropped, and stores its position late, after a new subscriber took the
    /// entry (preempted between the two): the producer must not go by that position and
    /// overwrite a record the new holder reads in place. The late position carries the old
    /// ticket's tag: the producer waits until the holder stores its own (which it does again
    /// while it waits: `Registration::restore`).
    #[test]
    fn lossless_late_position_of_a_dropped_subscriber_is_not_the_new_holders() {
        let g = geo(128);
        let m = HeapWords::new(128);
        let mut p = BcastProducer::attach(g, &m, true, 1).unwrap();
        let wx = claim(&m, 0, 7);
        let mut x = Subscriber::attach(g, &m, false).unwrap();
        x.register(&m, 0, wx, true).unwrap();
        for k in 1..=4u8 {
            assert!(send(&mut p, &m, &[k; 16]).unwrap());
        }
        for k in 1..=3u8 {
            assert_eq!(recv(&mut x, &m).unwrap(), Some(Ok(vec![k; 16])));
        }
        // `x` found its entry its own, then was dropped as dead before storing its position;
        // `y` took the entry, from the oldest message.
        assert!(x.registration().held(&m));
        free(&m, 0);
        p.invalidate_min();
        let wy = claim(&m, 0, 9);
        let mut y = Subscriber::attach(g, &m, false).unwrap();
        y.register(&m, 0, wy, true).unwrap();
        let Next::Record {
            data,
            len,
            seq,
            end,
        } = y.try_next(&m).unwrap()
        else {
            panic!("no record");
        };
        // `x`'s late store.
        x.registration().store(&m, x.pos());
        let sent = send(&mut p, &m, &[5; 16]).unwrap();
        let mut v = vec![0; len as usize];
        m.read_bytes(data, &mut v);
        assert!(!sent && v == [1; 16], "y's record overwritten: {v:?}");
        // `y`, waiting, finds its position word not the one it stored, and stores it again.
        assert!(y.registration().restore(&m, 0));
        assert!(!y.registration().restore(&m, 0));
        assert!(
            !send(&mut p, &m, &[5; 16]).unwrap(),
            "y still needs message 1"
        );
        assert_eq!(y.validate(&m, seq, end).unwrap(), Checked::Intact);
        assert!(y.publish(&m));
        assert!(send(&mut p, &m, &[5; 16]).unwrap());
        // `x` never stores into `y`'s entry.
        assert!(!x.publish(&m));
        assert_eq!(
            m.ctl_load(off::subscriber(0) + 8, Ordering::Relaxed),
            y.pos() | tag_of(wy)
        );
    }

    #[test]
    fn garbage_is_corruption_or_lag_never_a_panic() {
        let g = geo(128);
        let m = HeapWords::new(128);
        let mut p = BcastProducer::attach(g, &m, false, 4).unwrap();
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        send(&mut p, &m, b"ok").unwrap();
        m.word_store(8, 5000, Ordering::Relaxed); // absurd length
        assert!(matches!(s.try_next(&m), Err(RingError::Corrupted { .. })));
    }

    /// A producer stopped (preempted or killed) in the middle of an update leaves the latch
    /// version odd: readers take copy 1 at once instead of waiting, a record copied then is
    /// still validated (no lock on that path), and a new producer completes the latch.
    #[test]
    fn a_producer_stopped_mid_update_blocks_no_reader() {
        let g = geo(256);
        let m = HeapWords::new(256);
        let mut p = BcastProducer::attach(g, &m, false, 4).unwrap();
        let mut s = Subscriber::attach(g, &m, false).unwrap();
        for i in 0..6u8 {
            send(&mut p, &m, &[i; 20]).unwrap(); // 48-byte records: the 6th reclaims the 1st
        }
        let before = read_oldest(&m).unwrap();
        assert_eq!(before, Oldest { pos: 48, seq: 1 });
        // Half an update: version odd, copy 0 rewritten (message 1 is being reclaimed),
        // copy 1 not.
        let v = m.ctl_load(off::OLDEST_VER, Ordering::Relaxed);
        assert_eq!(v % 2, 0);
        m.ctl_store(off::OLDEST_VER, v + 1, Ordering::Relaxed);
        m.ctl_store(off::OLDEST_POS, 96, Ordering::Relaxed);
        m.ctl_store(off::OLDEST_SEQ, 2, Ordering::Relaxed);
        assert_eq!(read_oldest(&m).unwrap(), before, "copy 1 is the stable one");
        // The subscriber never blocks on the odd version: it lost message 0 (reclaimed),
        // and message 1 (being reclaimed: copied, then found gone), each reported once.
        let mut got = vec![];
        while let Some(r) = recv(&mut s, &m).unwrap() {
            got.push(r);
        }
        let mut want = vec![Err(1), Err(1)];
        want.extend((2..6u8).map(|i| Ok(vec![i; 20])));
        assert_eq!(got, want);
        // A new producer (the old one died) continues from the stable copy and makes the
        // version even again with both copies equal.
        let mut p2 = BcastProducer::attach(g, &m, false, 4).unwrap();
        send(&mut p2, &m, &[7; 20]).unwrap();
        let v2 = m.ctl_load(off::OLDEST_VER, Ordering::Relaxed);
        assert_eq!(v2 % 2, 0);
        let now = read_oldest(&m).unwrap();
        assert_eq!(now, Oldest { pos: 96, seq: 2 });
        assert_eq!(m.ctl_load(off::OLDEST_POS1, Ordering::Relaxed), now.pos);
        assert_eq!(m.ctl_load(off::OLDEST_SEQ1, Ordering::Relaxed), now.seq);
        assert_eq!(recv(&mut s, &m).unwrap(), Some(Ok(vec![7; 20])));
        assert_eq!(recv(&mut s, &m).unwrap(), None);
    }

    proptest! {
        /// Lossy: whatever the interleaving of sends and reads by 2 subscribers, each
        /// subscriber receives a subsequence of the messages in order, and the numbers it
        /// was told it missed fill exactly the gaps.
        #[test]
        fn lossy_accounting_is_exact(ops in proptest::collection::vec((0u8..3, 1u64..50), 1..400)) {
            let g = geo(256);
            let m = HeapWords::new(256);
            let mut p = BcastProducer::attach(g, &m, false, 4).unwrap();
            let mut subs = [Subscriber::attach(g, &m, false).unwrap(), Subscriber::attach(g, &m, false).unwrap()];
            let mut next = [0u64; 2]; // next sequence each subscriber should account for
            let mut sent = 0u64;
            for (op, len) in ops {
                if op == 2 {
                    let mut msg = vec![0u8; len.max(8) as usize];
                    msg[..8].copy_from_slice(&sent.to_le_bytes());
                    prop_assert!(send(&mut p, &m, &msg).unwrap());
                    sent += 1;
                } else {
                    let i = op as usize;
                    match recv(&mut subs[i], &m).unwrap() {
                        None => prop_assert_eq!(next[i], sent),
                        Some(Err(missed)) => { next[i] += missed; }
                        Some(Ok(v)) => {
                            let seq = u64::from_le_bytes(v[..8].try_into().unwrap());
                            prop_assert_eq!(seq, next[i]);
                            next[i] += 1;
                        }
                    }
                }
            }
        }

        /// Arbitrary memory never panics a subscriber or the producer.
        #[test]
        fn survives_arbitrary_memory(words in proptest::collection::vec(any::<u64>(), 32), ctl in proptest::collection::vec(any::<u64>(), 8)) {
            let g = geo(256);
            let m = HeapWords::new(256);
            for (i, w) in words.iter().enumerate() { m.word_store(i as u64 * 8, *w, Ordering::Relaxed); }
            for (f, v) in [off::TAIL, off::NEXT_SEQ, off::OLDEST_VER, off::OLDEST_POS, off::OLDEST_SEQ, off::OLDEST_POS1, off::OLDEST_SEQ1].into_iter().zip(&ctl) {
                m.ctl_store(f, v & 0xfff0, Ordering::Relaxed);
            }
            if let Ok(mut s) = Subscriber::attach(g, &m, false) {
                for _ in 0..16 {
                    match s.try_next(&m) {
                        Ok(Next::Record { data, len, seq, end }) => {
                            prop_assert!(data + len <= 256);
                            if s.validate(&m, seq, end).is_err() { break; }
                        }
                        Ok(Next::Lagged { .. }) => {}
                        _ => break,
                    }
                }
            }
            if let Ok(mut p) = BcastProducer::attach(g, &m, false, 4) {
                for len in [1, 30, 100] {
                    if let Ok(Ok(r)) = p.try_reserve(&m, len) {
                        prop_assert!(r.data + r.len <= 256);
                    }
                }
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! `RUSTFLAGS="--cfg loom" cargo test -p mapipc --release --lib channel::bcast::loom_tests`
    use super::super::words::heap::HeapWords;
    use super::test_io::{claim, free, in_place, recv, send, InPlace, EVICTED};
    use super::*;
    use loom::sync::Arc;

    /// A lossless producer that sent messages 1 to 4 of 16 bytes into a ring of `g`, then,
    /// on another thread, sends message 5 of `last_len` bytes, waiting for room.
    fn four_then_fifth(
        g: Geometry,
        m: &Arc<HeapWords>,
        last_len: usize,
    ) -> loom::thread::JoinHandle<()> {
        let mut p = BcastProducer::attach(g, &**m, true, 1).unwrap();
        for k in 1..=4u8 {
            assert!(send(&mut p, m, &[k; 16]).unwrap());
        }
        let mp = m.clone();
        loom::thread::spawn(move || {
            while !send(&mut p, &mp, &vec![5; last_len]).unwrap() {
                loom::thread::yield_now();
            }
        })
    }

    /// A lossless subscriber reading until message 5 with `read` (`None`: nothing yet;
    /// `Err(missed)`; `Ok(message)`): a lag of 0 before its first message is a start found
    /// reclaimed by a producer that saw the join late (nothing lost); any other lag fails.
    /// Every message must be untorn; its position is published after it (pair S), and the
    /// run must be consecutive. Returns the messages.
    fn read_lossless_to_5(
        s: &mut Subscriber,
        m: &HeapWords,
        mut read: impl FnMut(&mut Subscriber, &HeapWords) -> Option<Result<Vec<u8>, u64>>,
    ) -> Vec<u8> {
        let mut got: Vec<u8> = Vec::new();
        while got.last() != Some(&5) {
            match read(s, m) {
                None => loom::thread::yield_now(),
                Some(Err(0)) if got.is_empty() => {}
                Some(Err(missed)) => panic!("lossless subscriber lagged by {missed} after {got:?}"),
                Some(Ok(v)) => {
                    assert!(v.iter().all(|b| *b == v[0]), "torn message {v:?}");
                    // Pair S, as `Receiver::publish`.
                    assert!(s.publish(m), "our entry taken");
                    got.push(v[0]);
                }
            }
        }
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 1),
            "not consecutive: {got:?}"
        );
        got
    }

    /// The latch: a producer publishes two updates of `oldest` while a reader reads it;
    /// every read returns one of the three published pairs, never a mix (a position from
    /// one update with the sequence number of another).
    #[test]
    fn latch_reads_are_never_torn() {
        loom::model(|| {
            let m = Arc::new(HeapWords::new(64));
            let mw = m.clone();
            let h = loom::thread::spawn(move || {
                write_oldest(&*mw, Oldest { pos: 16, seq: 1 });
                write_oldest(&*mw, Oldest { pos: 48, seq: 3 });
            });
            for _ in 0..2 {
                let o = read_oldest(&*m).unwrap();
                assert!(
                    matches!((o.pos, o.seq), (0, 0) | (16, 1) | (48, 3)),
                    "torn read {o:?}"
                );
            }
            h.join().unwrap();
        });
    }

    /// Lossless: the producer laps a 64-byte ring (two 32-byte records) and must wait for the
    /// one registered subscriber, which hands back space by publishing its position (pair
    /// S). Payload copies are checked for happens-before (`HeapWords::tracked`): a record
    /// read before its publication, or overwritten before the subscriber's read of it is
    /// ordered before the overwrite, fails the model.
    #[test]
    fn lossless_reader_and_producer_are_ordered() {
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::tracked(64));
            let mut s = Subscriber::attach(g, &*m, false).unwrap();
            m.ctl_store(off::subscriber(0), 7, Ordering::Relaxed);
            m.ctl_store(off::subscriber(0) + 8, s.pos(), Ordering::Release);
            let mp = m.clone();
            let h = loom::thread::spawn(move || {
                let mut p = BcastProducer::attach(g, &*mp, true, 1).unwrap();
                for k in 1..=3u8 {
                    while !send(&mut p, &mp, &[k; 16]).unwrap() {
                        loom::thread::yield_now();
                    }
                }
            });
            let mut got = Vec::new();
            while got.len() < 3 {
                match recv(&mut s, &m).unwrap() {
                    None => loom::thread::yield_now(),
                    Some(Err(missed)) => panic!("lossless subscriber lagged by {missed}"),
                    Some(Ok(v)) => {
                        // Release pairs with the producer's Acquire scan (pair S).
                        m.ctl_store(off::subscriber(0) + 8, s.pos(), Ordering::Release);
                        got.push(v);
                    }
                }
            }
            assert_eq!(got, vec![vec![1; 16], vec![2; 16], vec![3; 16]]);
            h.join().unwrap();
        });
    }

    /// Lossless, a subscriber joining while the producer laps a 64-byte ring (two 32-byte
    /// records) with nobody else registered (pair **J**): in every interleaving it is never
    /// told it lagged, and what it reads is a run of consecutive messages ending with the
    /// last one, each intact (`HeapWords::tracked`: a record overwritten before the
    /// subscriber's read of it is ordered before the overwrite fails the model).
    #[test]
    fn lossless_late_subscriber_is_never_overwritten() {
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::tracked(64));
            let mp = m.clone();
            let h = loom::thread::spawn(move || {
                let mut p = BcastProducer::attach(g, &*mp, true, 1).unwrap();
                for k in 1..=3u8 {
                    while !send(&mut p, &mp, &[k; 16]).unwrap() {
                        loom::thread::yield_now();
                    }
                }
            });
            // As `Receiver::attach`: the entry's peer id, then the start, then `register`.
            m.ctl_store(off::subscriber(0), 7, Ordering::Release);
            let mut s = Subscriber::attach(g, &*m, false).unwrap();
            s.register(&*m, 0, 7, true).unwrap();
            let mut got: Vec<u8> = Vec::new();
            while got.last() != Some(&3) {
                match recv(&mut s, &m).unwrap() {
                    None => loom::thread::yield_now(),
                    // Reclaimed before the producer saw us: stepped over, nothing lost.
                    Some(Err(0)) => {}
                    Some(Err(missed)) => panic!("lossless subscriber lagged by {missed}"),
                    Some(Ok(v)) => {
                        assert!(v.iter().all(|b| *b == v[0]), "torn message {v:?}");
                        // Release pairs with the producer's Acquire scan (pair S).
                        m.ctl_store(off::subscriber(0) + 8, s.pos(), Ordering::Release);
                        got.push(v[0]);
                    }
                }
            }
            assert!(
                got.windows(2).all(|w| w[1] == w[0] + 1),
                "not consecutive: {got:?}"
            );
            h.join().unwrap();
        });
    }

    /// Lossless, a subscriber joining while the producer reclaims several records at once
    /// (a 64-byte record into a full 128-byte ring of 32-byte ones): the producer's minimum
    /// may not include the newcomer yet, so the `oldest` it publishes (pair J: before its
    /// fence, then it sees the join and waits) can pass records the subscriber reads after
    /// its first one. In every interleaving the subscriber is never told it lagged once it
    /// took a message, and what it takes is consecutive and intact, ending with the last.
    #[test]
    fn lossless_joiner_is_not_lapped_by_a_reclaim_that_missed_its_join() {
        loom::model(|| {
            let g = Geometry::new(128).unwrap();
            let m = Arc::new(HeapWords::tracked(128));
            let h = four_then_fifth(g, &m, 48);
            m.ctl_store(off::subscriber(0), 7, Ordering::Release);
            let mut s = Subscriber::attach(g, &*m, false).unwrap();
            s.register(&*m, 0, 7, true).unwrap();
            read_lossless_to_5(&mut s, &m, |s, m| recv(s, m).unwrap());
            h.join().unwrap();
        });
    }

    /// Lossless, as `Receiver::drain` and `RecvRef` read a joining subscriber's record: in
    /// place, then consumed. A record handed out (to the callback, in a guard) is never
    /// overwritten while read and is always consumed afterwards as received (never skipped
    /// as reclaimed before the producer saw us, nor counted lost): each message the reader
    /// saw is counted once, the run is consecutive, and nothing is lost after it.
    #[test]
    fn lossless_joiner_reading_in_place_counts_what_it_saw() {
        loom::model(|| {
            let g = Geometry::new(128).unwrap();
            let m = Arc::new(HeapWords::tracked(128));
            let h = four_then_fifth(g, &m, 48);
            m.ctl_store(off::subscriber(0), 7, Ordering::Release);
            let mut s = Subscriber::attach(g, &*m, false).unwrap();
            s.register(&*m, 0, 7, true).unwrap();
            read_lossless_to_5(&mut s, &m, |s, m| match in_place(s, m).unwrap() {
                InPlace::Empty => None,
                InPlace::Skipped(missed) => Some(Err(missed)),
                InPlace::Seen(v, consumed) => {
                    assert!(
                        consumed,
                        "message {} seen in place, then not consumed",
                        v[0]
                    );
                    Some(Ok(v))
                }
            });
            h.join().unwrap();
        });
    }

    /// Lossless, a subscriber whose start the producer lapped by more than the ring before
    /// it registered: `register` stores that start (out of the producer's window, so a scan
    /// ignores it), then moves up to `oldest` and stores that. A producer whose scan, after
    /// seeing the join, read the first store only, must still never overwrite a record the
    /// subscriber hands out as intact (`HeapWords::tracked` fails the model on a read not
    /// ordered before the overwrite), and the subscriber is never told it lagged.
    #[test]
    fn lossless_joiner_moved_up_past_a_lapped_start_is_seen_by_the_producer() {
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::tracked(64));
            let mut s = Subscriber::attach(g, &*m, false).unwrap();
            // Nobody registered: the producer laps our start (0) by more than the ring.
            let h = four_then_fifth(g, &m, 16);
            m.ctl_store(off::subscriber(0), 7, Ordering::Release);
            s.register(&*m, 0, 7, true).unwrap();
            let got = read_lossless_to_5(&mut s, &m, |s, m| recv(s, m).unwrap());
            assert!(got[0] >= 3, "started before the oldest record: {got:?}");
            h.join().unwrap();
        });
    }

    /// Lossless, eviction: the producer takes its one subscriber for dead (frees its entry,
    /// as `Sender` does when the subscriber's liveness is misjudged) and overwrites both
    /// records of a 64-byte ring while the subscriber reads. In every interleaving the
    /// subscriber accepts only intact messages, in order, is never told it lagged, and ends
    /// evicted (its entry is checked when it finds a record reclaimed, and when it
    /// publishes its position, which it never stores into the freed entry).
    #[test]
    fn lossless_evicted_subscriber_never_accepts_an_overwritten_record() {
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::new(64));
            let mut p = BcastProducer::attach(g, &*m, true, 1).unwrap();
            let w = claim(&m, 0, 7);
            let mut s = Subscriber::attach(g, &*m, false).unwrap();
            s.register(&*m, 0, w, true).unwrap();
            for k in 1..=2u8 {
                assert!(send(&mut p, &m, &[k; 16]).unwrap());
            }
            let mp = m.clone();
            let h = loom::thread::spawn(move || {
                free(&mp, 0);
                p.invalidate_min();
                for k in 3..=4u8 {
                    assert!(send(&mut p, &mp, &[k; 16]).unwrap(), "still waited for");
                }
            });
            let mut got: Vec<u8> = Vec::new();
            loop {
                match recv(&mut s, &m).unwrap() {
                    None => loom::thread::yield_now(),
                    Some(Err(EVICTED)) => break,
                    Some(Err(missed)) => panic!("lagged by {missed} after {got:?}"),
                    Some(Ok(v)) => {
                        assert!(v.iter().all(|b| *b == v[0]), "torn message {v:?}");
                        let _ = s.publish(&*m);
                        got.push(v[0]);
                    }
                }
            }
            assert!(
                got.iter()
                    .enumerate()
                    .all(|(i, k)| usize::from(*k) == i + 1),
                "not the run from message 1: {got:?}"
            );
            h.join().unwrap();
        });
    }

    /// Lossless, eviction: a subscriber dropped from its entry publishes its position (one
    /// check of the entry, then a store) while the producer frees the entry, a new
    /// subscriber claims it and reads its first record in place, and the producer tries to
    /// overwrite that record. Wherever the late store lands (before the entry is freed,
    /// between the claim and the new holder's own store, or after), the producer never
    /// takes it for the new holder's position: the record stays intact.
    #[test]
    fn lossless_late_store_of_a_dropped_subscriber_never_speaks_for_the_new_holder() {
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::new(64));
            let mut p = BcastProducer::attach(g, &*m, true, 1).unwrap();
            let wx = claim(&m, 0, 7);
            let mut x = Subscriber::attach(g, &*m, false).unwrap();
            x.register(&*m, 0, wx, true).unwrap();
            for k in 1..=2u8 {
                assert!(send(&mut p, &m, &[k; 16]).unwrap());
            }
            // `x` read both messages: its position is the ring's end.
            for k in 1..=2u8 {
                assert_eq!(recv(&mut x, &m).unwrap(), Some(Ok(vec![k; 16])));
            }
            let mx = m.clone();
            let h = loom::thread::spawn(move || x.publish(&*mx));
            free(&m, 0);
            p.invalidate_min();
            let wy = claim(&m, 0, 9);
            let mut y = Subscriber::attach(g, &*m, false).unwrap();
            y.register(&*m, 0, wy, true).unwrap();
            let Next::Record {
                data,
                len,
                seq,
                end,
            } = y.try_next(&*m).unwrap()
            else {
                panic!("no record");
            };
            let sent = send(&mut p, &m, &[3; 16]).unwrap();
            let mut v = vec![0; len as usize];
            m.read_bytes(data, &mut v);
            assert!(!sent && v == [1; 16], "y's record overwritten: {v:?}");
            assert_eq!(y.validate(&*m, seq, end).unwrap(), Checked::Intact);
            h.join().unwrap();
        });
    }

    /// Lossy: the producer laps a 64-byte ring (two 32-byte records) while a subscriber
    /// reads. In every interleaving each message the subscriber accepts has intact bytes
    /// (the sequence lock catches every torn copy) and delivered + reported-missed is exact.
    #[test]
    fn lossy_reader_never_accepts_a_torn_record() {
        loom::model(|| {
            let g = Geometry::new(64).unwrap();
            let m = Arc::new(HeapWords::new(64));
            let mut s = Subscriber::attach(g, &*m, false).unwrap();
            let mp = m.clone();
            let h = loom::thread::spawn(move || {
                let mut p = BcastProducer::attach(g, &*mp, false, 1).unwrap();
                for k in 1..=3u8 {
                    let r = p.try_reserve(&*mp, 16).unwrap().unwrap();
                    mp.write_bytes(r.data, &[k; 16]);
                    p.commit(&*mp, &r);
                    p.publish(&*mp);
                }
            });
            let mut accounted = 0u64;
            let mut last = 0u8;
            while accounted < 3 {
                match s.try_next(&*m).unwrap() {
                    Next::Empty => loom::thread::yield_now(),
                    Next::Lagged { missed } => accounted += missed,
                    Next::Evicted => panic!("an unregistered subscriber evicted"),
                    Next::Record {
                        data,
                        len,
                        seq,
                        end,
                    } => {
                        let mut v = vec![0; len as usize];
                        m.read_bytes(data, &mut v);
                        match s.validate(&*m, seq, end).unwrap() {
                            Checked::Intact => {
                                // Message k (seq k - 1) is `[k; 16]`: intact, in order, and
                                // the bytes belong to the sequence number read.
                                assert!(v.iter().all(|b| *b == v[0]) && v[0] > last, "{v:?}");
                                assert_eq!(u64::from(v[0]), seq + 1, "torn: {v:?} for seq {seq}");
                                last = v[0];
                                accounted += 1;
                            }
                            Checked::Lost(missed) => accounted += missed,
                            Checked::Evicted => panic!("an unregistered subscriber evicted"),
                        }
                    }
                }
            }
            assert_eq!(accounted, 3);
            h.join().unwrap();
        });
    }
}
