//! A durable, replayable message log in memory-mapped files, with crash recovery (in the
//! spirit of Chronicle Queue): one [`Appender`] per queue writes records into fixed-size
//! segment files through a shared mapping; any number of [`Tailer`]s, in any processes,
//! read them in order from any position, waiting for new ones with a futex.
//!
//! ```
//! use mapipc::queue::{Appender, QueueOptions, StartAt, SyncPolicy, TailerOptions};
//! # let tmp = tempfile::tempdir()?;
//! let dir = tmp.path().join("orders");
//! let mut app = QueueOptions::new()
//!     .segment_size(1 << 20)
//!     .sync(SyncPolicy::BATCH)
//!     .open_appender(&dir)?;
//! for i in 0u64..1000 {
//!     app.append(format!("order {i}").as_bytes())?;
//! }
//!
//! // In another process, or later: replay from record 990 on.
//! let mut tail = TailerOptions::new().from(StartAt::Seq(990)).open(&dir)?;
//! let rec = tail.try_next()?.expect("record 990 exists");
//! assert_eq!((rec.seq(), rec.to_vec()?), (990, b"order 990".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Files
//!
//! A queue is a directory:
//!
//! | file | what |
//! |---|---|
//! | `queue.meta` | format, segment size, index interval; the notifier word, the appender lock and hints (4 KiB) |
//! | `{n:020}.seg` | segment `n`: a header, a sparse index, then records; fixed size, preallocated |
//! | `{n:020}.seg.pre` | the next segment, allocated ahead of need and not yet published |
//! | `{name}.tailer` | a named tailer's position (4 KiB) |
//! | `.queue.meta.tmp-{pid}-{ns}`, `.{name}.tailer.tmp-{pid}-{ns}` | a `queue.meta` or `{name}.tailer` being created |
//! | `{n:020}.seg.damaged-{ns}` | a last segment recovery set aside (see [Crash recovery](#crash-recovery)); never read by the queue, listed by [`stat`] ([`QueueStat::damaged`]), deleted only by [`remove_damaged`] |
//!
//! `queue.meta` and `{name}.tailer` are written under a temporary name and moved into
//! place with `RENAME_NOREPLACE`, so they never appear half-written and two processes
//! creating the same one at once end up with the same file. The creator holds an OFD write
//! lock on byte 4095 of its temporary file until the file is in place. A creator killed
//! meanwhile leaves its temporary file behind; an appender opening the queue and [`retain`]
//! remove such files, but only while they hold that lock themselves (so the creator is
//! gone) and only when the file was last modified more than a minute ago (which spares
//! creators of earlier releases, which took no lock). A creator whose file was removed
//! between its creation and its lock (stopped there for a minute) starts again.
//!
//! Integers are native-endian (mapipc targets Linux x86-64), except the bytes fed to the
//! record CRC, which are little-endian. Layouts are checked at compile time.
//!
//! ## `queue.meta` (format version 1)
//!
//! | offset | size | field | |
//! |---|---|---|---|
//! | 0 | 8 | magic `b"MAPIPCQM"` | |
//! | 8 | 4 | format version (1) | |
//! | 12 | 4 | header size (128) | |
//! | 16 | 8 | segment size | |
//! | 24 | 4 | index interval (records per index entry) | |
//! | 28 | 4 | flags (0) | |
//! | 32 | 8 | creation time, ns since the epoch | |
//! | 40 | 4 | CRC32C of bytes 0..40 | |
//! | 64 | 4 | notifier word | live, futex |
//! | 68 | 4 | appender state: 1 open, 0 closed cleanly | live |
//! | 72 | 4 | appender pid | informational |
//! | 80 | 8 | hint: next sequence number | live, `Release` after each commit |
//! | 88 | 8 | hint: `segment << 32 \| offset` of the last record (0: none) | live |
//! | 96 | 16 | boot id when the appender opened | the hints are trusted within this boot only |
//! | 112 | 8 | hint: current segment number | live |
//!
//! The appender lock is an open-file-description write lock (`F_OFD_SETLK`) on byte 0 of
//! `queue.meta`: the kernel releases it when the appender's process dies, whatever kills
//! it. Retention runs hold byte 1. The **position lock** is a `flock` on `queue.meta`
//! (independent of those byte-range locks): retention holds it exclusively, a named tailer
//! holds it shared while it creates its file or seeks; both wait a bounded time for it
//! (see [Retention](#retention)).
//!
//! ## Segment `{n:020}.seg`
//!
//! | offset | size | field | |
//! |---|---|---|---|
//! | 0 | 8 | magic `b"MAPIPCQS"` | |
//! | 8 | 4 | format version (1) | |
//! | 12 | 4 | header size (128) | |
//! | 16 | 8 | segment size (= the queue's) | |
//! | 24 | 8 | segment number (= the file name's) | |
//! | 32 | 8 | sequence number of its first record | |
//! | 40 | 8 | data offset: where records start (a multiple of 4096) | |
//! | 48 | 8 | index offset (128) | |
//! | 56 | 4 | index entries | |
//! | 60 | 4 | index interval | |
//! | 64 | 8 | creation time | |
//! | 72 | 4 | CRC32C of bytes 0..72 | |
//! | 76 | 4 | flags: 1 = sealed (ends with an end marker) | live, set after the three below |
//! | 80 | 8 | time it was sealed | |
//! | 88 | 8 | offset of the end marker | |
//! | 96 | 8 | sequence number after the last record | |
//! | 128 | 4 × entries | sparse index: entry `k` is the offset of record `first + k × interval` (0: unset) | live, `Release` |
//! | data offset | … | records | |
//!
//! Every field read from a segment header is checked against the queue's metadata and
//! the file name; the index entries are hints: the record an entry points to is checked
//! (committed, right sequence number, CRC) before it is used.
//!
//! ## Records
//!
//! Each record starts at a multiple of 8 with a 24-byte header, followed by the payload
//! and zero padding to the next multiple of 8:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | payload length |
//! | 4 | 4 | flags: bit 31 committed; bits 0..8 kind (0 data, 1 end marker); others 0 |
//! | 8 | 8 | sequence number |
//! | 16 | 4 | CRC32C of `length, kind, sequence number` (16 bytes, little-endian) then the payload |
//! | 20 | 4 | reserved, 0 |
//!
//! The flags word is the **commit word**: the appender writes the header and the payload,
//! then stores the flags with `Release`; a reader loads them with `Acquire` and ignores a
//! record whose committed bit is clear, so no process ever sees a partial record. A
//! segment keeps 24 bytes at its end for the **end marker** (kind 1, length 0, the next
//! sequence number), which is written when the next record does not fit; the log continues
//! at the data offset of segment `n + 1`. Sequence numbers start at 0 and have no gaps.
//!
//! # Appending
//!
//! One [`Appender`] at a time; a second one gets [`OpenError::AppenderBusy`] (or waits, with
//! [`QueueOptions::wait_for_lock`]). [`Appender::append`] copies a payload;
//! [`Appender::reserve`] returns a [`Grant`] to write a record in place and
//! [`commit`](Grant::commit) it. Each commit also stores the index entry (every
//! `interval` records), the hints, and notifies the notifier word (one atomic add; a
//! `futex_wake` only when a tailer is parked).
//!
//! Segments never grow: each is created full-size with `fallocate`, so writing into it
//! never needs a new block and a full disk can never turn into a SIGBUS. When the current
//! segment is half full, the next one is allocated as `{n+1}.seg.pre`. Rolling writes the
//! end marker, seals the segment, writes the new segment's header and renames it into
//! place. If the next segment cannot be allocated (`ENOSPC`), the append that needs it
//! fails with [`AppendError::NoSpace`] and nothing is written; a later append tries again.
//!
//! # Reading
//!
//! A [`Tailer`] starts at the start, the end or a sequence number ([`StartAt`]): the
//! segment is found by a binary search over the segment headers, then the sparse index,
//! then at most `interval` record headers. A damaged segment header only fails a seek to a
//! record that can be in no other segment (the search goes round it otherwise): a seek to
//! the start fails only when the oldest segment's header is damaged, one to the end only
//! when the last one's is; the error names the file and what was sought.
//! [`Tailer::try_next`] does not wait, [`Tailer::next_blocking`] waits,
//! [`Tailer::next_timeout`] waits up to a timeout. A [`Record`] is a view of the payload in
//! place; its CRC was checked before it was returned.
//!
//! Named tailers ([`TailerOptions::name`]) keep their position in `{name}.tailer`: a
//! 64-byte header (magic `b"MAPIPCQT"`, format version 2, header size, creation time, CRC
//! of bytes 0..24) and the next sequence number to deliver at offset 32, updated with one
//! atomic store in the shared mapping (so an update can never be half-written), followed
//! by a store of its complement at offset 48. A restarted reader continues from there;
//! when the two words disagree (a kill between the stores, or a damaged word), from the
//! lower position: records may be delivered again, never skipped. Version 1 files (of
//! earlier releases) are read as before (a complement of 0 means none) and upgraded to
//! version 2 when a tailer opens them: builds that only know version 1 refuse version-2
//! files rather than store a position without its complement. With
//! [`AckMode::Auto`] (at-least-once) a record counts as processed when the next one is
//! asked for or the tailer is dropped; with [`AckMode::Manual`], when [`Tailer::ack`] is
//! called. One tailer per name at a time (an OFD lock on the file). A record whose read did
//! not complete intact is never acknowledged: when the segment it came from was truncated
//! under the tailer and a read touched the lost part (the mapping is then poisoned; the
//! same for a page the kernel could not supply), the acknowledgements, automatic or not,
//! store the position of that record, not past it ([`Tailer::ack`] says so with
//! [`AckError::NotIntact`]), so a tailer reopened once the segment is whole reads it again.
//!
//! # Durability
//!
//! - **Process crash** (the appender killed at any instruction, `SIGKILL` included): every
//!   record whose commit word was stored survives, whatever the sync policy: the bytes are
//!   in the page cache, which belongs to the file, not to the process. That includes every
//!   record whose `append`/`commit` returned, and possibly the one being committed when it
//!   died. A record whose commit word was not stored is cut off by recovery.
//! - **Machine crash** (power loss, kernel panic): what was written back to disk survives.
//!   With [`SyncPolicy::Always`], every record whose `append` returned; with
//!   [`SyncPolicy::Batch`], every record below [`Appender::synced_seq`] at the time of the
//!   crash (at most `records` records or `interval` of appends are at risk); with
//!   [`SyncPolicy::None`], whatever the kernel had written back (usually all but the last
//!   ~30 s), possibly with holes, since pages are written back in no particular order.
//!   Sync means `msync(MS_SYNC)` of the dirty range (record data and index entries), which
//!   flushes the data and the metadata needed to read it back; rolls also sync the old
//!   segment (its last records, end marker and sealed header), then the new segment's
//!   header, then the directory. Under `None` a roll syncs nothing, and
//!   [`Appender::sync`] does all of it later: each segment rolled away from since the
//!   last sync (`fdatasync`), the current one from its header, then the directory, and
//!   only then moves [`Appender::synced_seq`]. This assumes the disk honours cache
//!   flushes. What was not written back can be missing in any shape: a segment listed
//!   in the directory whose header page, end or records never reached the disk, a
//!   sealed header without its end marker, index entries without their records;
//!   recovery repairs those of the last segment (below), and reports the others as
//!   damage. A record below [`Appender::synced_seq`] is never in the part lost.
//!
//! # Crash recovery
//!
//! When an appender opens the queue, it examines the last segment: from its last valid
//! index entry, it follows records while they are committed, have the expected sequence
//! number and a matching CRC. At the first position that is not:
//!
//! - if the previous appender closed cleanly during this boot and the position holds
//!   nothing (all zero), this is the end: nothing else is done;
//! - otherwise (after a crash, a reboot, or a torn or damaged record), the rest of the
//!   segment is searched for a valid record with a later sequence number (from the end of
//!   the damaged record when it was never committed, from the record itself when it was:
//!   the length of a committed record that fails its checks may be the damaged field, and
//!   must not hide valid records after it). If there is one,
//!   the damage is in the **middle** of the log: it is left as it is and reported in
//!   [`Recovery::damaged`], tailers report it as [`ReadError::Corrupt`] when they reach it
//!   (they never skip it silently), and the search goes on from that record. If there is
//!   none, the damage is a **torn tail**: the record is cut off ([`Recovery::cut`]), and
//!   every non-zero byte after the end is zeroed and written back, so a later append can
//!   never be confused with stale bytes. The cut record's header is zeroed last (as is an
//!   abandoned [`Grant`]'s): until its payload is gone, its length tells a recovery
//!   interrupted there what to skip, so that payload bytes that imitate records are never
//!   taken for records.
//!
//! After a crash, a reboot or a repair, index entries of the last segment past the end of
//! the log are zeroed too (an index page written back without its records), and a seal
//! whose end marker is not at the end of the log is cleared (a header page written back
//! without the end marker): appends continue in that segment.
//!
//! Before any of that, the last segment *file* is checked, because under
//! [`SyncPolicy::None`], whose rolls write nothing back, a machine crash can leave a new
//! segment's directory entry on disk without its header page (the other policies write
//! the header back before the rename), or a file without its end; damage or a hand-made
//! copy can leave the same. Each repair is listed in [`Recovery::segment_repairs`] ([`SegmentRepair`]),
//! and a repaired segment is always scanned in full as above:
//!
//! - a file **shorter** than a segment is extended with zeros to its size (`fallocate`,
//!   so appending into it still cannot fault on a full disk); its records that are whole
//!   are kept, a record cut by the end is cut off;
//! - an **unreadable header** (zeros, torn, garbage: a wrong magic or a CRC mismatch) is
//!   rewritten when the segment's first sequence number is proven: by the end marker of
//!   the segment before it (whose CRC covers that number), as 0 for segment 0, or, for the
//!   oldest segment left, by a valid record at its data offset. The sparse index, written
//!   with the header page, is cleared. The records that check out against the new header
//!   are kept (a header page lost while the records were written back loses nothing); a
//!   segment of zeros simply starts at the proven number again;
//! - when it is **not proven** (the segment before has no end marker: the end of that
//!   segment was lost too, so records may be missing between the two), the file is
//!   removed if it holds nothing but zeros, else renamed to `{n:020}.seg.damaged-{ns}`
//!   (its records cannot be tied to the log, but are kept for salvage by hand, until
//!   [`remove_damaged`] deletes them; [`stat`] lists them), and the segment before it is
//!   examined in its place, the same way.
//!
//! A header that reads whole (magic and CRC right) but does not fit the queue (another
//! segment size, number or format version) is not what a crash leaves: opening the
//! appender fails with [`OpenError::BadSegment`]. The repairs concern the last segment
//! only, so recovery stays bounded (one segment read, plus the end of the one before); a
//! segment before the last with a lost header or a short file is a hole that tailers
//! report as [`CorruptReason::BadSegment`] (naming the file and what is wrong) and
//! [`Tailer::skip_corrupt`] gets past, and that [`verify`] lists. Neither can hold a
//! record below [`Appender::synced_seq`], since [`Appender::sync`] writes back every
//! segment before it reports.
//!
//! A sealed last segment (a roll interrupted after its end marker) is continued in a new
//! one. Tailers treat an empty slot as the end of the log, unless the appender's hints
//! (trusted only within the boot they were written in) show later records, in which case
//! the slot is reported as damage ([`CorruptReason::Uncommitted`]). A segment missing in
//! the middle of the log (a later one exists) is damage too: reads reaching it report
//! [`ReadError::Corrupt`] with [`CorruptReason::BadSegment`], and
//! [`Tailer::skip_corrupt`] continues with the next segment there is.
//!
//! Everything read from the files is validated: a damaged or hostile file gives a typed
//! error naming the file, never a panic or a loop; a segment truncated under a mapping
//! gives [`AccessError::Truncated`](crate::map::AccessError::Truncated) (see
//! [`map`](crate::map)), not a SIGBUS; a tailer waiting for records checks the size of
//! the segment it reads every check interval, and a truncation ends its wait with
//! [`ReadError::Corrupt`] (no append can come after it).
//!
//! # Retention
//!
//! [`retain`] deletes whole segments, oldest first, beyond a count, an age (time since
//! the segment was sealed) or a total size ([`Retention`]). It never deletes the segment
//! being appended to, nor one holding records a named tailer has not acknowledged yet,
//! unless forced. An anonymous tailer whose position was deleted gets
//! [`ReadError::Gone`].
//!
//! Named tailers' positions only grow, except when a tailer is created or seeks (to any
//! position, an older one included): retention reads every position, then deletes, and a
//! tailer that appeared or moved back in between could be left pointing into a deleted
//! segment. The position lock closes that window. Retention holds it exclusively from
//! before it lists the tailers until its last deletion; a named tailer holds it shared
//! from before it looks for its new position until that position is stored (in its file,
//! created under the lock when new). So a retention run either sees the new position and
//! keeps its segment, or ran entirely before the tailer looked (and the tailer finds the
//! segments that are left). Reads and acknowledgements only move positions forward and
//! take no lock; a named tailer seeking waits while a retention run lasts, but a bounded
//! time: a retention run stopped (`SIGSTOP`) or hung holds the lock until it dies, so the
//! tailer polls the lock (non-blocking `flock`, sleeping 1 ms doubling to 50 ms between
//! tries) and gives up after its [`TailerOptions::lock_timeout`] (default
//! [`POSITION_LOCK_TIMEOUT`], 10 s) with [`ReadError::PositionLockTimeout`], not having
//! moved. Retention waits for the lock the same way while named tailers hold it: they do
//! for the length of one seek, but a tailer process stopped or hung in the middle of a seek
//! holds it until it dies, so after [`Retention::lock_timeout`] (default
//! [`POSITION_LOCK_TIMEOUT`] too) [`retain`] fails with
//! [`RetainError::PositionLockTimeout`], having deleted nothing (it takes the lock before
//! it looks at any segment or tailer). Forced retention takes the lock too, but deletes
//! regardless: the tailers then get [`ReadError::Gone`]. Before the position lock, a run
//! takes the retention lock (an OFD lock on byte 1 of `queue.meta`), which serializes
//! retention runs; a run stopped or hung holds it until it dies, so the next run polls it
//! the same way and fails with [`RetainError::RetentionLockTimeout`] once its
//! [`Retention::lock_timeout`] has passed, a budget shared by the two waits.
//! [`remove_damaged`] takes the retention lock too (not the position lock), and gives up
//! the same way with [`RemoveDamagedError::RetentionLockTimeout`] after its
//! [`RemoveDamagedOptions::lock_timeout`] (default [`POSITION_LOCK_TIMEOUT`]). Each of these
//! errors carries in `waited` the time the waits took, as measured: at least the budget.
//!
//! # Inspection
//!
//! [`stat`] describes a queue cheaply; [`verify`] reads every record of every segment and
//! lists each damage (sequence number, segment, offset, "CRC mismatch" or "corrupt").
//! Damage is in what they return; their error ([`InspectError`]) only says
//! that the queue could not be opened, listed or read.
#![deny(unsafe_code)]

mod appender;
mod error;
mod format;
mod inspect;
mod meta;
mod repair;
mod retention;
mod segment;
mod tailer;
mod tmpfile;
mod view;

/// Fuzzing entry points (built only with `--cfg fuzzing`, as cargo-fuzz does).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::format::{
        MetaHeader, SegmentHeader, SegmentLayout, TailerHeader, MAX_SEQ, RECORD_HEADER_SIZE,
    };

    /// Validates arbitrary bytes (zero-padded) as each on-disk header: the metadata
    /// header, a segment header (against the layout of a valid metadata header, or the
    /// default one), a named tailer's header. With `data[0] & 1`, the CRC fields are
    /// recomputed first so the checks past them are reached. Headers that pass must give
    /// layouts whose ranges fit their segment.
    pub fn headers(data: &[u8]) {
        let Some((&mode, data)) = data.split_first() else {
            return;
        };
        let fix_crc = mode & 1 != 0;
        let mut meta: MetaHeader = read(data);
        if fix_crc {
            meta.header_crc = meta.compute_crc();
        }
        let layout = match meta.validate() {
            Ok(l) => {
                check_layout(&l);
                l
            }
            Err(e) => {
                assert!(!e.is_empty());
                SegmentLayout::new(64 * 1024, 64).unwrap()
            }
        };
        let mut seg: SegmentHeader = read(data);
        if fix_crc {
            seg.header_crc = seg.compute_crc();
        }
        let number = seg.segment_number ^ u64::from(mode >> 1 & 1);
        if seg.validate(&layout, number).is_ok() {
            assert_eq!(seg.segment_number, number);
            assert!(seg.first_seq < MAX_SEQ);
            assert_eq!(seg.data_offset, layout.data_offset);
        }
        let mut tailer: TailerHeader = read(data);
        if fix_crc {
            tailer.header_crc = tailer.compute_crc();
        }
        if tailer.validate().is_ok() {
            assert!(tailer.next_seq < MAX_SEQ);
        }
    }

    fn read<T: bytemuck::Pod>(data: &[u8]) -> T {
        let mut t = T::zeroed();
        let bytes = bytemuck::bytes_of_mut(&mut t);
        let n = data.len().min(bytes.len());
        bytes[..n].copy_from_slice(&data[..n]);
        t
    }

    fn check_layout(l: &SegmentLayout) {
        assert!(l.data_offset % 4096 == 0, "data offset alignment");
        assert!(
            l.data_offset + 2 * RECORD_HEADER_SIZE <= l.segment_size,
            "no room for records"
        );
        assert!(l.index_slot(u64::from(l.index_entries) - 1).unwrap() + 4 <= l.data_offset);
        assert!(l.max_payload() < l.segment_size);
    }
}

use std::io;
use std::path::Path;

pub use appender::{Appender, Grant, QueueOptions, Recovery, SyncPolicy};
pub use error::{
    AckError, AppendError, CorruptReason, Corruption, InspectError, OpenError, ReadError,
    RemoveDamagedError, RetainError, SyncPositionError,
};
pub use format::{
    DEFAULT_INDEX_INTERVAL, DEFAULT_SEGMENT_SIZE, MAX_INDEX_INTERVAL, MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
};
pub use inspect::{stat, verify, DamagedFile, QueueStat, SegmentStat, TailerStat, VerifyReport};
pub use repair::SegmentRepair;
pub use retention::{
    remove_damaged, remove_damaged_with, retain, RemoveDamagedOptions, RetainReport, Retention,
};
pub use tailer::{AckMode, Record, Skipped, StartAt, Tailer, TailerOptions, POSITION_LOCK_TIMEOUT};

use format::{parse_damaged_name, parse_prealloc_name, parse_segment_name, parse_tailer_name};
use meta::Meta;

/// What a queue directory holds, sorted.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub segments: Vec<u64>,
    pub prealloc: Vec<u64>,
    pub tailers: Vec<String>,
    /// Segments crash recovery set aside: `(segment number, ns)` of
    /// `{n:020}.seg.damaged-{ns}`.
    pub damaged: Vec<(u64, u64)>,
}

/// [`list_dir`] for the operations that report [`OpenError`]: a failure is
/// `OpenError::Io` with the operation `list`.
pub(crate) fn list_queue(dir: &Path) -> Result<Listing, OpenError> {
    list_dir(dir).map_err(|source| OpenError::Io {
        op: "list",
        file: dir.to_path_buf(),
        source,
    })
}

/// Lists the queue files in `dir`; other files are ignored.
pub(crate) fn list_dir(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for name in crate::os::storage::list_dir(dir)? {
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = parse_segment_name(name) {
            listing.segments.push(n);
        } else if let Some(n) = parse_prealloc_name(name) {
            listing.prealloc.push(n);
        } else if let Some(t) = parse_tailer_name(name) {
            listing.tailers.push(t.to_string());
        } else if let Some(d) = parse_damaged_name(name) {
            listing.damaged.push(d);
        }
    }
    listing.damaged.sort_unstable();
    listing.segments.sort_unstable();
    listing.prealloc.sort_unstable();
    listing.tailers.sort_unstable();
    Ok(listing)
}

/// `segment << 32 | offset` (offsets are below 2^30, segment numbers below 2^32).
pub(crate) fn pack_position(segment: u64, offset: u64) -> u64 {
    (segment << 32) | (offset & 0xffff_ffff)
}

/// The inverse of [`pack_position`].
pub(crate) fn unpack_position(v: u64) -> (u64, u64) {
    (v >> 32, v & 0xffff_ffff)
}

/// Wakes the tailers parked on the queue's notifier word: one atomic add, plus a
/// `futex_wake` only when a tailer is parked.
#[inline]
pub(crate) fn notify_tailers(meta: &Meta) {
    if let Some(word) = meta.notify_word() {
        crate::sync::Notifier::new(word).notify_all();
    }
}
