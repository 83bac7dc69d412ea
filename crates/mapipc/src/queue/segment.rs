//! One mapped segment file: creation, validated opening, and the record-level primitives
//! everything else is built on (probing a record, walking the valid chain, finding the next
//! valid record after damage, zeroing garbage).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};

use super::error::{CorruptReason, OpenError};
use super::format::{
    header_crc, record_size, RecordHeader, SegmentHeader, SegmentLayout, FLAG_COMMITTED, KIND_DATA,
    KIND_END, KIND_MASK, MAX_SEQ, RECORD_ALIGN, RECORD_FLAGS, RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE, SEGMENT_SEALED, SEG_END_OFFSET, SEG_END_SEQ, SEG_FLAGS, SEG_SEALED_NS,
};
use crate::map::{AccessError, MapError, MapOptions, Mmap};

/// Bytes copied per step when a CRC or a scan reads mapped memory.
const CHUNK: usize = 64 * 1024;

/// Why a segment could not be opened.
#[derive(Debug)]
pub(crate) enum SegOpenError {
    /// No such file.
    Missing,
    /// The file is there but is not a valid segment of this queue.
    Bad(String),
    /// Mapping failed.
    Map(MapError),
    /// The file was truncated while the header was read.
    Access(AccessError),
}

impl SegOpenError {
    /// The error of an operation that needed the segment at `path`: a missing file is an
    /// `Io` error (`NotFound`), a bad one `BadSegment`.
    pub(crate) fn into_open_error(self, path: &Path) -> OpenError {
        match self {
            SegOpenError::Missing => OpenError::Io {
                op: "open segment",
                file: path.to_path_buf(),
                source: io::ErrorKind::NotFound.into(),
            },
            SegOpenError::Bad(why) => OpenError::BadSegment {
                file: path.to_path_buf(),
                why,
            },
            SegOpenError::Map(e) => OpenError::Map(e),
            SegOpenError::Access(e) => OpenError::Access(e),
        }
    }
}

/// What is at a record offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// No committed record: the commit word is zero. `torn` when other header bytes are not
    /// zero (a record being written, or one cut short by a crash).
    Empty { torn: bool },
    /// A valid data record; its payload starts at `offset + 24`, the next record at `next`.
    Data { len: u32, next: u64 },
    /// A valid end marker; the log continues in the next segment at `next_seq`.
    End { next_seq: u64 },
    /// A committed but damaged record.
    Bad(CorruptReason),
}

/// Where [`Segment::walk`] stopped.
#[derive(Clone, Debug)]
pub(crate) struct WalkEnd {
    /// Offset reached.
    pub off: u64,
    /// Sequence number expected there.
    pub seq: u64,
    /// Offset of the last valid data record passed, if any.
    pub last_data: Option<u64>,
    /// What is at `off`.
    pub stop: Probe,
    /// Whether the walk stopped because it reached `until_seq`.
    pub reached: bool,
}

/// A mapped segment.
#[derive(Debug)]
pub(crate) struct Segment {
    map: Mmap,
    pub number: u64,
    pub first_seq: u64,
    pub layout: SegmentLayout,
    pub path: PathBuf,
    writable: bool,
}

impl Segment {
    /// Turns a freshly allocated (all-zero) mapping of a segment file into segment
    /// `number` by writing its header. `path` is where the file will be published.
    pub fn init(
        map: Mmap,
        path: &Path,
        layout: SegmentLayout,
        number: u64,
        first_seq: u64,
        created_ns: u64,
    ) -> Result<Segment, AccessError> {
        let header = SegmentHeader::new(&layout, number, first_seq, created_ns);
        map.write_pod(0, &header)?;
        Ok(Segment {
            map,
            number,
            first_seq,
            layout,
            path: path.to_path_buf(),
            writable: true,
        })
    }

    /// Names the mapping after the segment's path, once the file made by
    /// [`init`](Self::init) under its `.seg.pre` name (and mapped under it) was renamed
    /// there: errors then name the file that exists.
    pub fn published(&mut self) {
        self.map.set_file_name(self.path.display().to_string());
    }

    /// Opens and validates segment `number` at `path`. With `write`, the mapping is
    /// read-write (appenders); otherwise read-write when the file permits (so the commit
    /// words can be read with atomic loads), else read-only.
    pub fn open(
        path: &Path,
        number: u64,
        layout: SegmentLayout,
        write: bool,
    ) -> Result<Segment, SegOpenError> {
        let (seg, header) = Segment::open_unvalidated(path, number, layout, write)?;
        header
            .validate(&layout, number)
            .map_err(SegOpenError::Bad)?;
        Ok(seg)
    }

    /// [`open`](Self::open) without the header checks: the header is returned as read, for
    /// crash recovery to judge (and [`rewrite_header`](Self::rewrite_header)); the
    /// segment's `first_seq` is the header's, unchecked, until then.
    pub fn open_unvalidated(
        path: &Path,
        number: u64,
        layout: SegmentLayout,
        write: bool,
    ) -> Result<(Segment, SegmentHeader), SegOpenError> {
        let mut opts = MapOptions::new();
        opts.read_write().len(layout.segment_size as usize);
        let mut writable = true;
        let map = match opts.map_path(path) {
            Ok(m) => m,
            Err(MapError::Open { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                // A symbolic link that leads nowhere is damage, not a segment deleted by
                // retention (which callers look past, or retry). Only a link counts: a
                // regular file found now was published by a roll since the open failed.
                let dangling = matches!(
                    crate::os::file::lstat(path),
                    Ok(info) if info.kind == crate::os::file::FileKind::Symlink
                );
                return Err(if dangling {
                    SegOpenError::Bad(
                        "it is a symbolic link to a file that does not exist".to_string(),
                    )
                } else {
                    SegOpenError::Missing
                });
            }
            Err(MapError::Open { source, .. })
                if !write
                    && matches!(
                        source.raw_os_error(),
                        Some(libc::EACCES) | Some(libc::EROFS) | Some(libc::EPERM)
                    ) =>
            {
                writable = false;
                match MapOptions::new()
                    .read_only()
                    .len(layout.segment_size as usize)
                    .map_path(path)
                {
                    Ok(m) => m,
                    Err(e) => return Err(classify_map_error(e, &layout)),
                }
            }
            Err(e) => return Err(classify_map_error(e, &layout)),
        };
        let header: SegmentHeader = map.read_pod(0).map_err(SegOpenError::Access)?;
        let seg = Segment {
            map,
            number,
            first_seq: header.first_seq,
            layout,
            path: path.to_path_buf(),
            writable,
        };
        Ok((seg, header))
    }

    /// Replaces an unreadable header (crash recovery, appenders only) with a fresh one for
    /// a segment whose first record is `first_seq`, clears the sparse index (it was written
    /// with the header page, so it is as suspect), and writes both back before anything
    /// else is written to the segment.
    pub fn rewrite_header(
        &mut self,
        first_seq: u64,
        created_ns: u64,
    ) -> Result<(), crate::map::FlushError> {
        let header = SegmentHeader::new(&self.layout, self.number, first_seq, created_ns);
        let index_from = SEGMENT_HEADER_SIZE;
        self.map.fill(
            index_from,
            (self.layout.data_offset - index_from) as usize,
            0,
        )?;
        self.map.write_pod(0, &header)?;
        self.first_seq = first_seq;
        self.flush_range(0, self.layout.data_offset)
    }

    /// Whether every byte of the segment from `from` on is zero (read in chunks).
    pub fn is_zero_from(&self, from: u64) -> Result<bool, AccessError> {
        let mut buf = vec![0u8; CHUNK];
        let mut off = from;
        while off < self.layout.segment_size {
            let n = ((self.layout.segment_size - off) as usize).min(CHUNK);
            self.map.read_at(off, &mut buf[..n])?;
            if buf[..n].iter().any(|b| *b != 0) {
                return Ok(false);
            }
            off += n as u64;
        }
        Ok(true)
    }

    /// The mapping (for payload access by views).
    pub fn map(&self) -> &Mmap {
        &self.map
    }

    /// Loads a 32-bit word with `Acquire` ordering: an atomic load when the mapping is
    /// writable, else a copy followed by an acquire fence (read-only access, where the map
    /// layer hands out no atomic views).
    #[inline]
    pub fn load_u32(&self, off: u64) -> Result<u32, AccessError> {
        if self.writable {
            Ok(self.map.atomic_u32(off)?.load(Ordering::Acquire))
        } else {
            let v = self.map.read_pod::<u32>(off)?;
            fence(Ordering::Acquire);
            Ok(v)
        }
    }

    /// Stores a 32-bit word with `Release` ordering (appenders only).
    #[inline]
    pub fn store_u32(&self, off: u64, v: u32) -> Result<(), AccessError> {
        self.map.atomic_u32(off)?.store(v, Ordering::Release);
        Ok(())
    }

    /// Whether the segment is sealed (its end marker is written), per the header flag.
    pub fn sealed_flag(&self) -> Result<bool, AccessError> {
        Ok(self.load_u32(SEG_FLAGS)? & SEGMENT_SEALED != 0)
    }

    /// Where the header says the end marker is, as `(offset, sequence number)`, when the
    /// sealed flag is set. Not trusted: callers check the end marker there.
    pub fn sealed_end(&self) -> Result<Option<(u64, u64)>, AccessError> {
        if !self.sealed_flag()? {
            return Ok(None);
        }
        let off = self.map.read_pod::<u64>(SEG_END_OFFSET)?;
        let seq = self.map.read_pod::<u64>(SEG_END_SEQ)?;
        Ok(Some((off, seq)))
    }

    /// The time the segment was sealed (ns since the epoch), or 0.
    pub fn sealed_ns(&self) -> Result<u64, AccessError> {
        self.map.read_pod::<u64>(SEG_SEALED_NS)
    }

    /// The creation time recorded in the header.
    pub fn created_ns(&self) -> Result<u64, AccessError> {
        Ok(self.map.read_pod::<SegmentHeader>(0)?.created_ns)
    }

    /// Records the end of the segment in the header and sets the sealed flag (after the end
    /// marker itself is committed).
    pub fn mark_sealed(
        &self,
        end_offset: u64,
        end_seq: u64,
        now_ns: u64,
    ) -> Result<(), AccessError> {
        self.map.write_pod(SEG_SEALED_NS, &now_ns)?;
        self.map.write_pod(SEG_END_OFFSET, &end_offset)?;
        self.map.write_pod(SEG_END_SEQ, &end_seq)?;
        let flags = self.load_u32(SEG_FLAGS)?;
        self.store_u32(SEG_FLAGS, flags | SEGMENT_SEALED)
    }

    /// Clears a seal whose end marker is not there (crash recovery: the header page reached
    /// the disk, the end marker's page did not), and writes the header back.
    pub fn clear_seal(&self) -> Result<(), crate::map::FlushError> {
        let flags = self.load_u32(SEG_FLAGS)?;
        self.store_u32(SEG_FLAGS, flags & !SEGMENT_SEALED)?;
        self.map.write_pod(SEG_SEALED_NS, &0u64)?;
        self.map.write_pod(SEG_END_OFFSET, &0u64)?;
        self.map.write_pod(SEG_END_SEQ, &0u64)?;
        self.flush_range(0, SEGMENT_HEADER_SIZE)
    }

    /// Index entry `k` (the offset of record `first_seq + k * interval`), 0 when unset or
    /// out of range. Not trusted: callers check the record it points to.
    pub fn index_entry(&self, k: u64) -> Result<u64, AccessError> {
        match self.layout.index_slot(k) {
            Some(slot) => Ok(u64::from(self.load_u32(slot)?)),
            None => Ok(0),
        }
    }

    /// Sets index entry `k` (appenders only; out-of-range entries are ignored).
    pub fn set_index_entry(&self, k: u64, off: u64) -> Result<(), AccessError> {
        if let Some(slot) = self.layout.index_slot(k) {
            self.store_u32(slot, off as u32)?;
        }
        Ok(())
    }

    /// The record header at `off` (a plain copy; see [`probe`](Self::probe) for checks).
    pub fn read_header(&self, off: u64) -> Result<RecordHeader, AccessError> {
        self.map.read_pod(off)
    }

    /// Examines the record at `off`, which should carry sequence number `seq`: commit word
    /// (Acquire), header fields, length bounds and CRC. A data record's payload is copied
    /// into `sink` when given (cleared first; one pass for the copy and the CRC).
    pub fn probe(
        &self,
        off: u64,
        seq: u64,
        sink: Option<&mut Vec<u8>>,
    ) -> Result<Probe, AccessError> {
        let flags = self.load_u32(off + RECORD_FLAGS)?;
        let h = self.read_header(off)?;
        if flags & FLAG_COMMITTED == 0 {
            return Ok(Probe::Empty { torn: !h.is_zero() });
        }
        self.check_header(off, flags, &h, Some(seq), sink)
    }

    /// The checks of [`probe`](Self::probe) on a header already read; `seq` is the sequence
    /// number expected, or `None` to accept any in range.
    fn check_header(
        &self,
        off: u64,
        flags: u32,
        h: &RecordHeader,
        seq: Option<u64>,
        sink: Option<&mut Vec<u8>>,
    ) -> Result<Probe, AccessError> {
        let kind = flags & KIND_MASK;
        if flags & !(FLAG_COMMITTED | KIND_MASK) != 0
            || !(kind == KIND_DATA || kind == KIND_END)
            || h.reserved != 0
        {
            return Ok(Probe::Bad(CorruptReason::BadFlags { flags }));
        }
        let seq_ok = match seq {
            Some(s) => h.seq == s,
            None => h.seq < MAX_SEQ,
        };
        if !seq_ok {
            return Ok(Probe::Bad(CorruptReason::SeqMismatch { found: h.seq }));
        }
        if kind == KIND_END {
            if h.len != 0 {
                return Ok(Probe::Bad(CorruptReason::BadLength {
                    len: h.len.into(),
                    max: 0,
                }));
            }
            let computed = header_crc(0, KIND_END, h.seq);
            if computed != h.crc {
                return Ok(Probe::Bad(CorruptReason::CrcMismatch {
                    stored: h.crc,
                    computed,
                }));
            }
            return Ok(Probe::End { next_seq: h.seq });
        }
        let data_end = self.layout.data_end();
        let max = data_end.saturating_sub(off + RECORD_HEADER_SIZE);
        let len = u64::from(h.len);
        if off + record_size(len) > data_end {
            return Ok(Probe::Bad(CorruptReason::BadLength { len, max }));
        }
        let mut crc = header_crc(h.len, KIND_DATA, h.seq);
        let start = off + RECORD_HEADER_SIZE;
        match sink {
            Some(buf) => {
                buf.clear();
                buf.resize(h.len as usize, 0);
                self.map.read_at(start, buf)?;
                crc = crc32c::crc32c_append(crc, buf);
            }
            None => crc = self.crc_range(crc, start, h.len as usize)?,
        }
        if crc != h.crc {
            return Ok(Probe::Bad(CorruptReason::CrcMismatch {
                stored: h.crc,
                computed: crc,
            }));
        }
        Ok(Probe::Data {
            len: h.len,
            next: off + record_size(len),
        })
    }

    /// CRC32C continued over `len` mapped bytes at `off`, copied out in small chunks (the
    /// mapping is shared memory: no slice of it is ever formed).
    pub fn crc_range(&self, mut crc: u32, off: u64, len: usize) -> Result<u32, AccessError> {
        // Small enough that zeroing it costs little next to a short record.
        let mut buf = [0u8; 512];
        let mut pos = 0usize;
        while pos < len {
            let n = (len - pos).min(buf.len());
            self.map.read_at(off + pos as u64, &mut buf[..n])?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            pos += n;
        }
        Ok(crc)
    }

    /// Follows valid records from `(off, seq)` and stops at the first position that is not
    /// a valid committed data record, or at `until_seq`.
    pub fn walk(
        &self,
        mut off: u64,
        mut seq: u64,
        until_seq: Option<u64>,
    ) -> Result<WalkEnd, AccessError> {
        let mut last_data = None;
        loop {
            if until_seq == Some(seq) {
                let stop = Probe::Empty { torn: false };
                return Ok(WalkEnd {
                    off,
                    seq,
                    last_data,
                    stop,
                    reached: true,
                });
            }
            if !self.layout.is_record_offset(off) {
                // Only reachable from a bad starting offset; treat as damage at `off`.
                let stop = Probe::Bad(CorruptReason::BadLength {
                    len: off,
                    max: self.layout.data_end(),
                });
                return Ok(WalkEnd {
                    off,
                    seq,
                    last_data,
                    stop,
                    reached: false,
                });
            }
            match self.probe(off, seq, None)? {
                Probe::Data { next, .. } => {
                    last_data = Some(off);
                    off = next;
                    seq += 1;
                }
                stop => {
                    return Ok(WalkEnd {
                        off,
                        seq,
                        last_data,
                        stop,
                        reached: false,
                    })
                }
            }
        }
    }

    /// The latest index entry whose record checks out, as `(offset, seq)`; the data start
    /// when none does. Entries are written in order, so the set ones form a prefix: a
    /// binary search finds its end.
    pub fn last_indexed(&self) -> Result<(u64, u64), AccessError> {
        let (mut lo, mut hi) = (0u64, u64::from(self.layout.index_entries));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.index_entry(mid)? != 0 {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        // `lo` is the first unset entry; the target is the one before it.
        if lo == 0 {
            return Ok((self.layout.data_offset, self.first_seq));
        }
        let target = self.first_seq + (lo - 1) * u64::from(self.layout.index_interval);
        self.index_start(target)
    }

    /// The best place to start walking towards `target_seq`: the index entry at or below it
    /// whose record checks out (committed, right sequence number), else the data start.
    pub fn index_start(&self, target_seq: u64) -> Result<(u64, u64), AccessError> {
        let interval = u64::from(self.layout.index_interval);
        if target_seq < self.first_seq {
            return Ok((self.layout.data_offset, self.first_seq));
        }
        let mut k = ((target_seq - self.first_seq) / interval)
            .min(u64::from(self.layout.index_entries).saturating_sub(1));
        // A few entries back at most: later entries are written after earlier ones, so a bad
        // one is the last or the result of damage; give up on the index after that.
        for _ in 0..4 {
            if k == 0 {
                break;
            }
            let off = self.index_entry(k)?;
            let seq = self.first_seq + k * interval;
            if off != 0 && self.layout.is_record_offset(off) {
                if let Probe::Data { .. } | Probe::End { .. } = self.probe(off, seq, None)? {
                    return Ok((off, seq));
                }
            }
            k -= 1;
        }
        Ok((self.layout.data_offset, self.first_seq))
    }

    /// The first offset after `from` (exclusive, 8-aligned) where a valid committed record
    /// (data or end marker) with a sequence number of at least `min_seq` starts; `None` when
    /// there is none in this segment. Used to get past damage: payload bytes that imitate a
    /// record (header and CRC) can mislead it, which is why it is only used after damage.
    pub fn resync(
        &self,
        from: u64,
        min_seq: u64,
    ) -> Result<Option<(u64, RecordHeader)>, AccessError> {
        let end = self.layout.data_end();
        let mut off = (from + RECORD_ALIGN).next_multiple_of(RECORD_ALIGN);
        if off < self.layout.data_offset {
            off = self.layout.data_offset;
        }
        let mut buf = vec![0u8; CHUNK + RECORD_HEADER_SIZE as usize];
        while off <= end {
            let avail = (self.layout.segment_size - off) as usize;
            let n = avail.min(buf.len());
            self.map.read_at(off, &mut buf[..n])?;
            let last = (n as u64).saturating_sub(RECORD_HEADER_SIZE);
            let mut i = 0u64;
            while i <= last && off + i <= end {
                let at = i as usize;
                let flags =
                    u32::from_le_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]);
                if flags & FLAG_COMMITTED != 0 && flags & !(FLAG_COMMITTED | KIND_MASK) == 0 {
                    let h: RecordHeader =
                        bytemuck::pod_read_unaligned(&buf[at..at + RECORD_HEADER_SIZE as usize]);
                    if h.seq >= min_seq {
                        let p = self.check_header(off + i, flags, &h, None, None)?;
                        if matches!(p, Probe::Data { .. } | Probe::End { .. }) {
                            return Ok(Some((off + i, h)));
                        }
                    }
                }
                i += RECORD_ALIGN;
            }
            if n < buf.len() {
                break;
            }
            off += CHUNK as u64;
        }
        Ok(None)
    }

    /// Zeroes the non-zero chunks of `from..to`; returns the range actually written (to be
    /// flushed), if any. Untouched chunks are only read, so a mostly empty segment does not
    /// get dirtied.
    pub fn zero_range(&self, from: u64, to: u64) -> Result<Option<(u64, u64)>, AccessError> {
        let mut buf = vec![0u8; CHUNK];
        let mut off = from;
        let mut dirty: Option<(u64, u64)> = None;
        while off < to {
            let n = ((to - off) as usize).min(CHUNK);
            self.map.read_at(off, &mut buf[..n])?;
            if buf[..n].iter().any(|b| *b != 0) {
                self.map.fill(off, n, 0)?;
                let end = off + n as u64;
                dirty = Some(match dirty {
                    Some((a, _)) => (a, end),
                    None => (off, end),
                });
            }
            off += n as u64;
        }
        Ok(dirty)
    }

    /// Writes `data` at `off` (appenders).
    #[inline]
    pub fn write_at(&self, off: u64, data: &[u8]) -> Result<(), AccessError> {
        self.map.write_at(off, data)
    }

    /// What is wrong when the file is now shorter than a segment (someone truncated it under
    /// us, maybe sparing every page touched so far); `None` while it is whole. An `fstat`,
    /// for periodic checks such as those of a tailer waiting for records.
    pub fn shrunk(&self) -> Option<String> {
        let size = crate::os::file::fstat(self.map.file_fd()?).ok()?.size;
        (size < self.layout.segment_size).then(|| {
            format!(
                "the file was truncated to {size} bytes under us, a segment of this queue is {}",
                self.layout.segment_size
            )
        })
    }

    /// `msync(MS_SYNC)` of `from..to`.
    pub fn flush_range(&self, from: u64, to: u64) -> Result<(), crate::map::FlushError> {
        if to > from {
            #[cfg(test)]
            writeback_log::record(writeback_log::Event::Range {
                path: self.path.clone(),
                from,
                to,
            });
            self.map.flush_range(from, (to - from) as usize)
        } else {
            Ok(())
        }
    }
}

fn classify_map_error(e: MapError, layout: &SegmentLayout) -> SegOpenError {
    match e {
        MapError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            SegOpenError::Missing
        }
        MapError::RangePastEnd { file_len, .. } | MapError::OffsetPastEnd { file_len, .. } => {
            SegOpenError::Bad(format!(
                "the file is {file_len} bytes, a segment of this queue is {}",
                layout.segment_size
            ))
        }
        MapError::EmptyFile { .. } => SegOpenError::Bad(format!(
            "the file is empty, a segment of this queue is {} bytes",
            layout.segment_size
        )),
        other => SegOpenError::Map(other),
    }
}

/// Unit tests' record of the write-backs asked for (page-cache write-back cannot be observed
/// from user space): every [`Segment::flush_range`], the appender's `fdatasync` of a whole
/// segment file and `fsync` of the directory, in order, on the calling thread.
#[cfg(test)]
pub(crate) mod writeback_log {
    use std::cell::RefCell;
    use std::path::PathBuf;

    /// One write-back.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Event {
        /// `msync(MS_SYNC)` of `from..to` of the segment published at `path`.
        Range { path: PathBuf, from: u64, to: u64 },
        /// `fdatasync` of the whole file.
        File(PathBuf),
        /// `fsync` of the directory.
        Dir(PathBuf),
    }

    thread_local! {
        static LOG: RefCell<Option<Vec<Event>>> = const { RefCell::new(None) };
    }

    /// Starts recording on this thread (dropping what was recorded).
    pub(crate) fn start() {
        LOG.with(|l| *l.borrow_mut() = Some(Vec::new()));
    }

    /// What was recorded since the last `start` or `take`; recording goes on.
    pub(crate) fn take() -> Vec<Event> {
        LOG.with(|l| {
            l.borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        })
    }

    pub(crate) fn record(event: Event) {
        LOG.with(|l| {
            if let Some(log) = l.borrow_mut().as_mut() {
                log.push(event);
            }
        });
    }
}
