//! The on-disk format: file names, `#[repr(C)]` headers, record framing, CRCs and the
//! checks applied to everything read back. The layout is documented in the
//! [module docs](super); the `const` assertions below keep code and docs in step.

use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};

use bytemuck::{Pod, Zeroable};

/// Name of the metadata file in a queue directory.
pub(crate) const META_FILE: &str = "queue.meta";
/// Extension of segment files: `{number:020}.seg`.
pub(crate) const SEGMENT_EXT: &str = ".seg";
/// Extension of a preallocated, not yet published segment: `{number:020}.seg.pre`.
pub(crate) const PREALLOC_EXT: &str = ".seg.pre";
/// Extension of named-tailer files: `{name}.tailer`.
pub(crate) const TAILER_EXT: &str = ".tailer";
/// What follows the segment number in the name of a segment crash recovery set aside:
/// `{number:020}.seg.damaged-{ns}`.
pub(crate) const DAMAGED_INFIX: &str = ".seg.damaged-";

/// Magic of the metadata file.
pub(crate) const META_MAGIC: [u8; 8] = *b"MAPIPCQM";
/// Magic of a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"MAPIPCQS";
/// Magic of a named-tailer file.
pub(crate) const TAILER_MAGIC: [u8; 8] = *b"MAPIPCQT";
/// The one format version this code reads and writes (metadata and segment files).
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The format version of the named-tailer files this code writes. Version 2 added the
/// complement of the position (`next_seq_check`), which every writer must keep in step
/// with the position: builds that only know version 1 refuse version-2 files instead of
/// storing a position without its complement (which made this code resume at the older
/// position). Version-1 files are read as before and upgraded when a tailer opens them.
pub(crate) const TAILER_FORMAT_VERSION: u32 = 2;
/// The named-tailer format version without a mandatory complement.
pub(crate) const TAILER_FORMAT_V1: u32 = 1;

/// Size of the metadata file (one page; the header uses the first 128 bytes).
pub(crate) const META_FILE_SIZE: u64 = 4096;
/// Size of a named-tailer file.
pub(crate) const TAILER_FILE_SIZE: u64 = 4096;
/// Size of a segment's fixed header; the sparse index follows it.
pub(crate) const SEGMENT_HEADER_SIZE: u64 = 128;
/// Size of a record header; payloads follow it, padded to [`RECORD_ALIGN`].
pub(crate) const RECORD_HEADER_SIZE: u64 = 24;
/// Records start at offsets that are multiples of this.
pub(crate) const RECORD_ALIGN: u64 = 8;

/// Smallest segment size accepted.
///
/// # Example
/// See [`QueueOptions`](super::QueueOptions).
pub const MIN_SEGMENT_SIZE: u64 = 64 * 1024;
/// Largest segment size accepted (record offsets and lengths fit in 30 bits).
///
/// # Example
/// See [`QueueOptions`](super::QueueOptions).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 30;
/// Default segment size.
///
/// # Example
/// See [`Appender`](super::Appender).
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default number of records between two entries of a segment's sparse index.
///
/// # Example
/// See [`QueueStat`](super::QueueStat).
pub const DEFAULT_INDEX_INTERVAL: u32 = 64;
/// Largest index interval accepted.
///
/// # Example
/// See [`QueueOptions`](super::QueueOptions).
pub const MAX_INDEX_INTERVAL: u32 = 1 << 16;
/// Sequence numbers stay below this (so `seq + 1` never overflows, with room to spare).
pub(crate) const MAX_SEQ: u64 = 1 << 62;
/// Segment numbers stay below this (they are packed into 32 bits in the metadata hints).
pub(crate) const MAX_SEGMENT_NUMBER: u64 = u32::MAX as u64;

/// Record flag: the record is complete. Written last, with `Release`.
pub(crate) const FLAG_COMMITTED: u32 = 1 << 31;
/// Mask of the record kind in the flags.
pub(crate) const KIND_MASK: u32 = 0xff;
/// A record carrying user data.
pub(crate) const KIND_DATA: u32 = 0;
/// The end-of-segment marker: the next record is the first of the next segment.
pub(crate) const KIND_END: u32 = 1;

/// Segment header flag: the segment ends with an end marker and will never change.
pub(crate) const SEGMENT_SEALED: u32 = 1;

/// Metadata `appender_state`: no appender, and the last one closed cleanly.
pub(crate) const APPENDER_CLOSED: u32 = 0;
/// Metadata `appender_state`: an appender is (or was, if it crashed) running.
pub(crate) const APPENDER_OPEN: u32 = 1;

/// The metadata file's header (the file is [`META_FILE_SIZE`] bytes; the rest is zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct MetaHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub segment_size: u64,
    pub index_interval: u32,
    pub flags: u32,
    pub created_ns: u64,
    /// CRC32C of bytes `0..40` (everything above).
    pub header_crc: u32,
    pub _pad0: u32,
    pub _reserved0: [u64; 2],
    /// The notifier word (futex) tailers park on; appenders notify after every commit.
    pub notify: u32,
    /// [`APPENDER_OPEN`] while an appender runs, [`APPENDER_CLOSED`] after a clean close.
    pub appender_state: u32,
    /// Pid of the last appender (informational).
    pub appender_pid: u32,
    pub _pad1: u32,
    /// Hint: the next sequence number to be appended.
    pub next_seq: u64,
    /// Hint: `segment << 32 | offset` of the last committed record; 0 when none.
    pub last_record: u64,
    /// Boot id of the machine when the last appender opened the queue: the hints are
    /// trusted only within that boot.
    pub boot_id: [u8; 16],
    /// Hint: the number of the segment being appended to.
    pub current_segment: u64,
    pub _reserved1: u64,
}

/// Offsets of the live metadata words.
pub(crate) const META_NOTIFY: u64 = offset_of!(MetaHeader, notify) as u64;
pub(crate) const META_APPENDER_STATE: u64 = offset_of!(MetaHeader, appender_state) as u64;
pub(crate) const META_APPENDER_PID: u64 = offset_of!(MetaHeader, appender_pid) as u64;
pub(crate) const META_NEXT_SEQ: u64 = offset_of!(MetaHeader, next_seq) as u64;
pub(crate) const META_LAST_RECORD: u64 = offset_of!(MetaHeader, last_record) as u64;
pub(crate) const META_BOOT_ID: u64 = offset_of!(MetaHeader, boot_id) as u64;
pub(crate) const META_CURRENT_SEGMENT: u64 = offset_of!(MetaHeader, current_segment) as u64;
/// Bytes covered by the metadata header CRC.
pub(crate) const META_CRC_LEN: usize = offset_of!(MetaHeader, header_crc);
/// Byte of the metadata file the appender's lock covers (an OFD write lock).
pub(crate) const LOCK_APPENDER: u64 = 0;
/// Byte of the metadata file retention runs lock (an OFD write lock).
pub(crate) const LOCK_RETENTION: u64 = 1;

const _: () = {
    assert!(size_of::<MetaHeader>() == 128);
    assert!(offset_of!(MetaHeader, header_crc) == 40);
    assert!(offset_of!(MetaHeader, notify) == 64);
    assert!(offset_of!(MetaHeader, next_seq) == 80);
    assert!(offset_of!(MetaHeader, last_record) == 88);
    assert!(offset_of!(MetaHeader, boot_id) == 96);
    assert!(offset_of!(MetaHeader, current_segment) == 112);
};

impl MetaHeader {
    pub fn new(segment_size: u64, index_interval: u32, created_ns: u64) -> MetaHeader {
        let mut h = MetaHeader {
            magic: META_MAGIC,
            version: FORMAT_VERSION,
            header_size: size_of::<MetaHeader>() as u32,
            segment_size,
            index_interval,
            created_ns,
            ..MetaHeader::zeroed()
        };
        h.header_crc = h.compute_crc();
        h
    }

    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&bytemuck::bytes_of(self)[..META_CRC_LEN])
    }

    /// Checks the immutable part; returns what is wrong.
    pub fn validate(&self) -> Result<SegmentLayout, String> {
        if self.magic != META_MAGIC {
            return Err(format!(
                "bad magic {:02x?} (expected {:?})",
                self.magic,
                String::from_utf8_lossy(&META_MAGIC)
            ));
        }
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                self.version
            ));
        }
        if self.header_size as usize != size_of::<MetaHeader>() {
            return Err(format!("header size {} (expected 128)", self.header_size));
        }
        let crc = self.compute_crc();
        if crc != self.header_crc {
            return Err(format!(
                "header CRC mismatch (stored {:#010x}, computed {crc:#010x})",
                self.header_crc
            ));
        }
        SegmentLayout::new(self.segment_size, self.index_interval)
    }
}

/// A segment file's header, at offset 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct SegmentHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub segment_size: u64,
    pub segment_number: u64,
    pub first_seq: u64,
    pub data_offset: u64,
    pub index_offset: u64,
    pub index_entries: u32,
    pub index_interval: u32,
    pub created_ns: u64,
    /// CRC32C of bytes `0..72` (everything above).
    pub header_crc: u32,
    /// Live: [`SEGMENT_SEALED`] once the end marker is written (set with `Release` after
    /// the three fields below).
    pub flags: u32,
    pub sealed_ns: u64,
    pub end_offset: u64,
    pub end_seq: u64,
    pub _reserved: [u64; 3],
}

pub(crate) const SEG_FLAGS: u64 = offset_of!(SegmentHeader, flags) as u64;
pub(crate) const SEG_SEALED_NS: u64 = offset_of!(SegmentHeader, sealed_ns) as u64;
pub(crate) const SEG_END_OFFSET: u64 = offset_of!(SegmentHeader, end_offset) as u64;
pub(crate) const SEG_END_SEQ: u64 = offset_of!(SegmentHeader, end_seq) as u64;
const SEG_CRC_LEN: usize = offset_of!(SegmentHeader, header_crc);

const _: () = {
    assert!(size_of::<SegmentHeader>() as u64 == SEGMENT_HEADER_SIZE);
    assert!(offset_of!(SegmentHeader, header_crc) == 72);
    assert!(offset_of!(SegmentHeader, flags) == 76);
    assert!(offset_of!(SegmentHeader, end_seq) == 96);
};

impl SegmentHeader {
    pub fn new(layout: &SegmentLayout, number: u64, first_seq: u64, created_ns: u64) -> Self {
        let mut h = SegmentHeader {
            magic: SEGMENT_MAGIC,
            version: FORMAT_VERSION,
            header_size: SEGMENT_HEADER_SIZE as u32,
            segment_size: layout.segment_size,
            segment_number: number,
            first_seq,
            data_offset: layout.data_offset,
            index_offset: SEGMENT_HEADER_SIZE,
            index_entries: layout.index_entries,
            index_interval: layout.index_interval,
            created_ns,
            ..SegmentHeader::zeroed()
        };
        h.header_crc = h.compute_crc();
        h
    }

    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&bytemuck::bytes_of(self)[..SEG_CRC_LEN])
    }

    /// Checks the immutable part against the queue's layout and the number in the file
    /// name; returns what is wrong.
    pub fn validate(&self, layout: &SegmentLayout, number: u64) -> Result<(), String> {
        if self.magic != SEGMENT_MAGIC {
            return Err(format!(
                "bad magic {:02x?} (expected {:?})",
                self.magic,
                String::from_utf8_lossy(&SEGMENT_MAGIC)
            ));
        }
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                self.version
            ));
        }
        let crc = self.compute_crc();
        if crc != self.header_crc {
            return Err(format!(
                "header CRC mismatch (stored {:#010x}, computed {crc:#010x})",
                self.header_crc
            ));
        }
        let checks: [(&str, u64, u64); 7] = [
            ("header size", self.header_size.into(), SEGMENT_HEADER_SIZE),
            ("segment size", self.segment_size, layout.segment_size),
            ("segment number", self.segment_number, number),
            ("data offset", self.data_offset, layout.data_offset),
            ("index offset", self.index_offset, SEGMENT_HEADER_SIZE),
            (
                "index entries",
                self.index_entries.into(),
                layout.index_entries.into(),
            ),
            (
                "index interval",
                self.index_interval.into(),
                layout.index_interval.into(),
            ),
        ];
        for (what, found, expected) in checks {
            if found != expected {
                return Err(format!("{what} is {found}, expected {expected}"));
            }
        }
        if self.first_seq >= MAX_SEQ {
            return Err(format!(
                "first sequence number {} is out of range",
                self.first_seq
            ));
        }
        Ok(())
    }
}

/// A record header; the payload follows, then zero padding to [`RECORD_ALIGN`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct RecordHeader {
    /// Payload length (data), or 0 (end marker).
    pub len: u32,
    /// [`FLAG_COMMITTED`] | kind. The commit word: written last, with `Release`.
    pub flags: u32,
    /// Sequence number of this record (end marker: the first of the next segment).
    pub seq: u64,
    /// CRC32C of `len, kind, seq` (16 bytes, little-endian) then the payload (data only).
    pub crc: u32,
    /// Zero.
    pub reserved: u32,
}

pub(crate) const RECORD_FLAGS: u64 = offset_of!(RecordHeader, flags) as u64;

const _: () = {
    assert!(size_of::<RecordHeader>() as u64 == RECORD_HEADER_SIZE);
    assert!(offset_of!(RecordHeader, flags) == 4);
    assert!(offset_of!(RecordHeader, seq) == 8);
    assert!(offset_of!(RecordHeader, crc) == 16);
};

impl RecordHeader {
    pub fn is_zero(&self) -> bool {
        *self == RecordHeader::default()
    }
}

/// The CRC of a record's framing fields, to be continued over the payload with
/// [`crc32c::crc32c_append`].
#[inline]
pub(crate) fn header_crc(len: u32, kind: u32, seq: u64) -> u32 {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&len.to_le_bytes());
    b[4..8].copy_from_slice(&kind.to_le_bytes());
    b[8..16].copy_from_slice(&seq.to_le_bytes());
    crc32c::crc32c(&b)
}

/// Bytes a record with `len` payload bytes takes (header, payload, padding).
#[inline]
pub(crate) fn record_size(len: u64) -> u64 {
    (RECORD_HEADER_SIZE + len).next_multiple_of(RECORD_ALIGN)
}

/// A named tailer's file header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct TailerHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub created_ns: u64,
    /// CRC32C of bytes `0..24`.
    pub header_crc: u32,
    pub _pad: u32,
    /// Live: the next sequence number to deliver (everything below is acknowledged).
    pub next_seq: u64,
    /// Live, informational: when `next_seq` was last stored (ns since the epoch).
    pub updated_ns: u64,
    /// Live: `!next_seq`, stored right after it. In version-1 files it may be 0 (files of
    /// releases before it existed), which reads as "no check". See [`tailer_position`].
    pub next_seq_check: u64,
    pub _reserved: u64,
}

/// The position a named tailer's file of format `version` holds, from its `next_seq` and
/// `next_seq_check` words, and whether they agree. A kill between the two stores of an
/// update, or a damaged word, makes them disagree: the lower of the two positions is taken
/// (positions only grow, so the update's old one; a damaged word can then only make
/// records be delivered again, at least once as always, never skipped, where a flipped high
/// bit in `next_seq` alone made the tailer silently skip every record up to it).
///
/// In a version-1 file a check word of 0 means "no check" (a file of a release before the
/// complement); in a version-2 file it is a damaged word like any other.
pub(crate) fn tailer_position(version: u32, next_seq: u64, check: u64) -> (u64, bool) {
    if version == TAILER_FORMAT_V1 && check == 0 {
        return (next_seq, true);
    }
    (next_seq.min(!check), next_seq == !check)
}

pub(crate) const TAILER_NEXT_SEQ: u64 = offset_of!(TailerHeader, next_seq) as u64;
pub(crate) const TAILER_NEXT_SEQ_CHECK: u64 = offset_of!(TailerHeader, next_seq_check) as u64;
pub(crate) const TAILER_UPDATED_NS: u64 = offset_of!(TailerHeader, updated_ns) as u64;
pub(crate) const TAILER_VERSION: u64 = offset_of!(TailerHeader, version) as u64;
pub(crate) const TAILER_HEADER_CRC: u64 = offset_of!(TailerHeader, header_crc) as u64;
const TAILER_CRC_LEN: usize = offset_of!(TailerHeader, header_crc);

const _: () = {
    assert!(size_of::<TailerHeader>() == 64);
    assert!(offset_of!(TailerHeader, next_seq) == 32);
};

impl TailerHeader {
    pub fn new(next_seq: u64, created_ns: u64) -> Self {
        let mut h = TailerHeader {
            magic: TAILER_MAGIC,
            version: TAILER_FORMAT_VERSION,
            header_size: size_of::<TailerHeader>() as u32,
            created_ns,
            next_seq,
            updated_ns: created_ns,
            next_seq_check: !next_seq,
            ..TailerHeader::zeroed()
        };
        h.header_crc = h.compute_crc();
        h
    }

    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&bytemuck::bytes_of(self)[..TAILER_CRC_LEN])
    }

    /// Checks the header of a version-1 or version-2 file; returns the version to read it
    /// as, or what is wrong.
    ///
    /// A header of version 2 whose CRC is that of the same header at version 1 is a
    /// version-1 file whose upgrade was interrupted (the version is rewritten before the
    /// CRC, two stores a kill can fall between, and a reader without the tailer's lock can
    /// see between them): it is read as version 1, and upgraded again.
    pub fn validate(&self) -> Result<u32, String> {
        if self.magic != TAILER_MAGIC {
            return Err(format!("bad magic {:02x?}", self.magic));
        }
        if !(TAILER_FORMAT_V1..=TAILER_FORMAT_VERSION).contains(&self.version)
            || self.header_size as usize != size_of::<Self>()
        {
            return Err(format!(
                "format version {} / header size {} not supported (this build reads versions \
                 {TAILER_FORMAT_V1} to {TAILER_FORMAT_VERSION}, of 64 bytes)",
                self.version, self.header_size
            ));
        }
        let crc = self.compute_crc();
        let version = if crc == self.header_crc {
            self.version
        } else if self.version == TAILER_FORMAT_VERSION
            && self.header_crc
                == (TailerHeader {
                    version: TAILER_FORMAT_V1,
                    ..*self
                })
                .compute_crc()
        {
            TAILER_FORMAT_V1
        } else {
            return Err(format!(
                "header CRC mismatch (stored {:#010x}, computed {crc:#010x})",
                self.header_crc
            ));
        };
        if self.next_seq >= MAX_SEQ {
            return Err(format!("position {} is out of range", self.next_seq));
        }
        Ok(version)
    }
}

/// Where things are in a segment of a given size; a pure function of the segment size and
/// the index interval, both fixed when the queue is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentLayout {
    pub segment_size: u64,
    pub index_interval: u32,
    pub index_entries: u32,
    /// Where the first record starts (a multiple of 4096, after the index).
    pub data_offset: u64,
}

impl SegmentLayout {
    /// The layout for a segment size and index interval, or what is wrong with them.
    pub fn new(segment_size: u64, index_interval: u32) -> Result<SegmentLayout, String> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size)
            || segment_size % 4096 != 0
        {
            return Err(format!(
                "segment size {segment_size} must be a multiple of 4096 between {MIN_SEGMENT_SIZE} \
                 (64 KiB) and {MAX_SEGMENT_SIZE} (1 GiB)"
            ));
        }
        if !(1..=MAX_INDEX_INTERVAL).contains(&index_interval) {
            return Err(format!(
                "index interval {index_interval} must be between 1 and {MAX_INDEX_INTERVAL}"
            ));
        }
        let max_records = segment_size / RECORD_HEADER_SIZE;
        let entries = max_records / u64::from(index_interval) + 1;
        let data_offset = (SEGMENT_HEADER_SIZE + entries * 4).next_multiple_of(4096);
        if data_offset + 2 * RECORD_HEADER_SIZE + RECORD_ALIGN > segment_size {
            return Err(format!(
                "index interval {index_interval} leaves no room for records in a segment of \
                 {segment_size} bytes"
            ));
        }
        Ok(SegmentLayout {
            segment_size,
            index_interval,
            index_entries: entries as u32,
            data_offset,
        })
    }

    /// Records must end at or before this offset: the room after it is kept for the end
    /// marker.
    pub fn data_end(&self) -> u64 {
        self.segment_size - RECORD_HEADER_SIZE
    }

    /// The largest payload a record can carry.
    pub fn max_payload(&self) -> u64 {
        self.data_end() - self.data_offset - RECORD_HEADER_SIZE
    }

    /// Offset of index entry `k`.
    pub fn index_slot(&self, k: u64) -> Option<u64> {
        (k < u64::from(self.index_entries)).then(|| SEGMENT_HEADER_SIZE + 4 * k)
    }

    /// Whether `off` can start a record.
    pub fn is_record_offset(&self, off: u64) -> bool {
        off >= self.data_offset
            && off % RECORD_ALIGN == 0
            && off + RECORD_HEADER_SIZE <= self.segment_size
    }
}

/// `dir/{number:020}.seg`.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}{SEGMENT_EXT}"))
}

/// `dir/{number:020}.seg.pre`.
pub(crate) fn prealloc_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}{PREALLOC_EXT}"))
}

/// `dir/{name}.tailer`.
pub(crate) fn tailer_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{TAILER_EXT}"))
}

/// The segment number in a file name `{digits}.seg`, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    parse_segment_number(name.strip_suffix(SEGMENT_EXT)?)
}

/// A segment number as file names write it: 20 decimal digits.
fn parse_segment_number(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n < MAX_SEGMENT_NUMBER)
}

/// The segment number in a file name `{digits}.seg.pre`, if it is one.
pub(crate) fn parse_prealloc_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(PREALLOC_EXT)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `dir/{number:020}.seg.damaged-{ns}`: where crash recovery sets aside segment `number`
/// at `ns` (ns since the epoch).
pub(crate) fn damaged_path(dir: &Path, number: u64, ns: u64) -> PathBuf {
    dir.join(format!("{number:020}{DAMAGED_INFIX}{ns}"))
}

/// The segment number and time in a file name `{digits:020}.seg.damaged-{ns}`, exactly as
/// [`damaged_path`] writes it (the time in decimal without leading zeros), if it is one.
pub(crate) fn parse_damaged_name(name: &str) -> Option<(u64, u64)> {
    let (digits, ns) = name.split_once(DAMAGED_INFIX)?;
    let number = parse_segment_number(digits)?;
    let canonical = ns.bytes().all(|b| b.is_ascii_digit()) && (ns == "0" || !ns.starts_with('0'));
    let ns: u64 = ns.parse().ok().filter(|_| canonical)?;
    Some((number, ns))
}

/// Checks a tailer name: 1 to 64 of `A-Z a-z 0-9 _ - .`, not starting with `.`.
pub(crate) fn check_tailer_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters long");
    }
    if name.starts_with('.') {
        return Err("must not start with `.`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err("may only contain letters, digits, `_`, `-` and `.`");
    }
    Ok(())
}

/// The tailer name in a file name `{name}.tailer`, if it is a valid one.
pub(crate) fn parse_tailer_name(name: &str) -> Option<&str> {
    let n = name.strip_suffix(TAILER_EXT)?;
    check_tailer_name(n).ok().map(|()| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_names_are_parsed_exactly() {
        let dir = Path::new("/q");
        for (n, ns) in [(0, 0), (7, 1_764_000_000_123_456_789), (12, u64::MAX)] {
            let path = damaged_path(dir, n, ns);
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(parse_damaged_name(name), Some((n, ns)), "{name}");
        }
        for name in [
            "00000000000000000002.seg.damaged-",
            "00000000000000000002.seg.damaged-012",
            "00000000000000000002.seg.damaged-12x",
            "00000000000000000002.seg.damaged-12.bak",
            "00000000000000000002.seg.damaged-+12",
            "00000000000000000002.seg.damaged-18446744073709551616",
            "0000000000000000002.seg.damaged-12",
            "x0000000000000000002.seg.damaged-12",
            "00000000000000000002.seg",
            "00000000000000000002.seg.pre",
            ".00000000000000000002.seg.damaged-12",
        ] {
            assert_eq!(parse_damaged_name(name), None, "{name}");
        }
    }

    #[test]
    fn layouts() {
        let l = SegmentLayout::new(1 << 20, 64).unwrap();
        assert_eq!(l.data_offset, 4096);
        assert_eq!(l.index_entries as u64, (1 << 20) / 24 / 64 + 1);
        let big = SegmentLayout::new(64 << 20, 64).unwrap();
        assert!(big.data_offset > SEGMENT_HEADER_SIZE + 4 * big.index_entries as u64 - 1);
        assert_eq!(big.data_offset % 4096, 0);
        assert!(SegmentLayout::new(1000, 64).is_err());
        assert!(SegmentLayout::new(MIN_SEGMENT_SIZE, 0).is_err());
        assert!(SegmentLayout::new(MIN_SEGMENT_SIZE, 1).is_ok());
        assert!(SegmentLayout::new(MAX_SEGMENT_SIZE + 4096, 64).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_prealloc_name("00000000000000000007.seg.pre"), Some(7));
        assert_eq!(parse_tailer_name("billing.tailer"), Some("billing"));
        assert_eq!(parse_tailer_name(".x.tailer"), None);
        assert!(check_tailer_name("a/b").is_err());
        assert!(check_tailer_name("").is_err());
        assert!(check_tailer_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn headers_roundtrip_and_validate() {
        let l = SegmentLayout::new(1 << 20, 64).unwrap();
        let h = SegmentHeader::new(&l, 3, 100, 1);
        assert!(h.validate(&l, 3).is_ok());
        assert!(h.validate(&l, 4).unwrap_err().contains("segment number"));
        let mut bad = h;
        bad.first_seq = 7;
        assert!(bad.validate(&l, 3).unwrap_err().contains("CRC"));
        let m = MetaHeader::new(1 << 20, 64, 1);
        assert_eq!(m.validate().unwrap(), l);
        let t = TailerHeader::new(5, 1);
        assert!(t.validate().is_ok());
        assert_eq!(t.version, 2);
        let mut v1 = t;
        v1.version = 1;
        assert!(v1.validate().unwrap_err().contains("CRC"));
        v1.header_crc = v1.compute_crc();
        assert_eq!(v1.validate(), Ok(1));
        // An upgrade cut between its version and CRC stores reads as version 1.
        let mut cut = v1;
        cut.version = 2;
        assert_eq!(cut.validate(), Ok(1));
        assert_eq!(t.validate(), Ok(2));
        let mut v3 = t;
        v3.version = 3;
        v3.header_crc = v3.compute_crc();
        assert!(v3.validate().unwrap_err().contains("format version 3"));
    }

    #[test]
    fn tailer_positions() {
        // Version 1: no check word (0) is no check; otherwise the lower of the two.
        assert_eq!(tailer_position(1, 15, 0), (15, true));
        assert_eq!(tailer_position(1, 15, !15), (15, true));
        assert_eq!(tailer_position(1, 40, !11), (11, false));
        // Version 2: the check word is always there; 0 is damage (u64::MAX: the position).
        assert_eq!(tailer_position(2, 15, !15), (15, true));
        assert_eq!(tailer_position(2, 40, !11), (11, false));
        assert_eq!(tailer_position(2, 15, 0), (15, false));
    }

    #[test]
    fn record_sizes() {
        assert_eq!(record_size(0), 24);
        assert_eq!(record_size(1), 32);
        assert_eq!(record_size(8), 32);
        assert_eq!(record_size(64), 88);
    }
}
