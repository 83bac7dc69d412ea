//! Repairs of the last segment file that crash recovery makes before it walks the records:
//! the states a machine crash can leave when pages and directory entries reach the disk
//! in any order (see the [module docs](super#crash-recovery)).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::appender::Recovery;
use super::error::OpenError;
use super::format::{damaged_path, segment_path, SegmentLayout, MAX_SEQ, SEGMENT_MAGIC};
use super::segment::{Probe, Segment};
use crate::os;

/// A repair crash recovery made to a segment file before looking for the end of the log
/// (see [`Recovery::segment_repairs`]).
///
/// # Example
/// ```
/// use mapipc::queue::{Appender, SegmentRepair};
/// # let tmp = tempfile::tempdir()?;
/// let dir = tmp.path().join("q");
/// Appender::open(&dir)?.append(b"lost in the crash")?;
/// // A machine crash wrote the directory entry back, but not the segment's header page.
/// let seg = dir.join(format!("{:020}.seg", 0));
/// let f = std::fs::OpenOptions::new().write(true).open(&seg)?;
/// std::os::unix::fs::FileExt::write_all_at(&f, &[0; 4096], 0)?;
/// let app = Appender::open(&dir)?;
/// assert!(matches!(
///     &app.recovery().segment_repairs[..],
///     [SegmentRepair::HeaderRewritten { segment: 0, first_seq: 0, .. }]
/// ));
/// assert_eq!(app.next_seq(), 1); // the record, intact, is kept
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentRepair {
    /// The file was shorter than a segment (the end of a write-back lost, or a truncation):
    /// it was extended with zeros to its full size, and its records were then checked
    /// as usual.
    Extended {
        /// The file.
        file: PathBuf,
        /// Its segment number.
        segment: u64,
        /// Its length before.
        len: u64,
    },
    /// Its header was unreadable (zeros, torn, or not matching its CRC) and the first
    /// sequence number of the segment was proven: by the end marker of the previous
    /// segment, or (the oldest segment) by its first record. A fresh header was written and
    /// the sparse index cleared; the records that check out against it are kept.
    HeaderRewritten {
        /// The file.
        file: PathBuf,
        /// Its segment number.
        segment: u64,
        /// The sequence number of its first record.
        first_seq: u64,
        /// What was wrong with the header.
        why: String,
    },
    /// Its header was unreadable, its first sequence number could not be proven, and it
    /// held nothing else but zeros: it was deleted, and the log ends in the segment before.
    Removed {
        /// The file.
        file: PathBuf,
        /// Its segment number.
        segment: u64,
        /// What was wrong with the header.
        why: String,
    },
    /// Its header was unreadable, its first sequence number could not be proven (the
    /// previous segment has no end marker, so records may be missing between them), but it
    /// held non-zero bytes: it was renamed to `to` (`{n:020}.seg.damaged-{ns}`, which no
    /// queue operation reads or deletes) for salvage by hand, and the log ends in the
    /// segment before.
    SetAside {
        /// The file, as it was named.
        file: PathBuf,
        /// Its segment number.
        segment: u64,
        /// Its new name.
        to: PathBuf,
        /// What was wrong with the header.
        why: String,
    },
}

fn io_err(op: &'static str, file: &Path) -> impl FnOnce(std::io::Error) -> OpenError {
    let file = file.to_path_buf();
    move |source| OpenError::Io { op, file, source }
}

/// Opens the last of `segments` (sorted) for appending, after repairing what a machine
/// crash can leave there (listed in `report.segment_repairs`): a file shorter than a
/// segment is extended; an unreadable header is rewritten when the segment's first
/// sequence number is proven, else the file is removed (all zero) or set aside, and the
/// segment before it is tried in turn. `None` when no segment is left. A header that is
/// readable (its magic and CRC check out) but does not fit the queue is not crash damage:
/// it is an error, [`OpenError::BadSegment`], as is a segment that is not a regular file.
///
/// Bounded: each segment tried costs at most one read of it and one walk of its
/// predecessor's last index interval.
pub(crate) fn open_last(
    dir: &Path,
    layout: SegmentLayout,
    segments: &mut Vec<u64>,
    report: &mut Recovery,
) -> Result<Option<Segment>, OpenError> {
    while let Some(&n) = segments.last() {
        let path = segment_path(dir, n);
        extend_if_short(&path, n, layout, report)?;
        let (mut seg, header) = Segment::open_unvalidated(&path, n, layout, true)
            .map_err(|e| e.into_open_error(&path))?;
        let why = match header.validate(&layout, n) {
            Ok(()) => return Ok(Some(seg)),
            Err(why) => why,
        };
        if header.magic == SEGMENT_MAGIC && header.compute_crc() == header.header_crc {
            // Written whole, but for another layout or format: not what a crash leaves.
            return Err(OpenError::BadSegment { file: path, why });
        }
        let previous = n.checked_sub(1).filter(|p| segments.contains(p));
        let first_seq = match previous {
            Some(p) => end_of(dir, p, layout)?,
            // Segment 0 starts the log at 0 (a queue whose segments were all removed by
            // hand continues in a later number).
            None if n == 0 => Some(0),
            None => first_record_seq(&seg, layout)?,
        };
        if let Some(first_seq) = first_seq {
            seg.rewrite_header(first_seq, os::process::realtime_ns())?;
            report.segment_repairs.push(SegmentRepair::HeaderRewritten {
                file: path,
                segment: n,
                first_seq,
                why,
            });
            return Ok(Some(seg));
        }
        let zero = seg.is_zero_from(0)?;
        drop(seg);
        if zero {
            os::file::unlink(&path).map_err(io_err("remove an empty segment", &path))?;
            report.segment_repairs.push(SegmentRepair::Removed {
                file: path,
                segment: n,
                why,
            });
        } else {
            let to = damaged_path(dir, n, os::process::realtime_ns());
            os::storage::rename(&path, &to).map_err(io_err("set aside a segment", &path))?;
            report.segment_repairs.push(SegmentRepair::SetAside {
                file: path,
                segment: n,
                to,
                why,
            });
        }
        os::storage::fsync_dir(dir).map_err(io_err("sync the directory", dir))?;
        segments.pop();
    }
    Ok(None)
}

/// Extends the segment file at `path` to its full size when it is a regular file shorter
/// than that (with `fallocate`, so writing into it can never fail for lack of space), and
/// writes the new size back.
fn extend_if_short(
    path: &Path,
    n: u64,
    layout: SegmentLayout,
    report: &mut Recovery,
) -> Result<(), OpenError> {
    let Ok(info) = os::file::lstat(path) else {
        // Let the open report it.
        return Ok(());
    };
    if info.kind != os::file::FileKind::Regular || info.size >= layout.segment_size {
        return Ok(());
    }
    let how = os::file::OpenHow {
        write: true,
        no_follow: true,
        ..Default::default()
    };
    let fd = os::file::open(path, how).map_err(io_err("open segment", path))?;
    os::file::allocate(fd.as_fd(), layout.segment_size)
        .map_err(io_err("extend a short segment", path))?;
    os::file::fdatasync(fd.as_fd()).map_err(io_err("write back", path))?;
    report.segment_repairs.push(SegmentRepair::Extended {
        file: path.to_path_buf(),
        segment: n,
        len: info.size,
    });
    Ok(())
}

/// The sequence number segment `p` ends with, proven by its end marker (which carries a
/// CRC): found where its sealed header says, else by walking from its last index entry.
/// `None` when segment `p` cannot be opened or has no end marker there.
fn end_of(dir: &Path, p: u64, layout: SegmentLayout) -> Result<Option<u64>, OpenError> {
    let Ok(seg) = Segment::open(&segment_path(dir, p), p, layout, false) else {
        return Ok(None);
    };
    if let Some((off, seq)) = seg.sealed_end()? {
        if layout.is_record_offset(off) {
            if let Probe::End { next_seq } = seg.probe(off, seq, None)? {
                return Ok(Some(next_seq));
            }
        }
    }
    let (off, seq) = seg.last_indexed()?;
    let end = seg.walk(off, seq, None)?;
    Ok(match end.stop {
        Probe::End { next_seq } => Some(next_seq),
        _ => None,
    })
}

/// The sequence number of the record at the data offset of `seg`, when a valid one (data
/// or end marker, CRC checked) is there.
fn first_record_seq(seg: &Segment, layout: SegmentLayout) -> Result<Option<u64>, OpenError> {
    let h = seg.read_header(layout.data_offset)?;
    if h.seq >= MAX_SEQ {
        return Ok(None);
    }
    Ok(match seg.probe(layout.data_offset, h.seq, None)? {
        Probe::Data { .. } | Probe::End { .. } => Some(h.seq),
        _ => None,
    })
}
