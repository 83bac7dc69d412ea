//! `stat` (a cheap description of a queue) and `verify` (a full check of every record).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::error::{CorruptReason, Corruption, InspectError};
use super::format::{
    damaged_path, record_size, segment_path, tailer_path, tailer_position, TailerHeader,
    TAILER_NEXT_SEQ, TAILER_NEXT_SEQ_CHECK,
};
use super::meta::Meta;
use super::segment::{Probe, SegOpenError, Segment};
use super::{list_dir, Listing};
use crate::map::{MapError, MapOptions, Mmap};
use crate::os;

/// A queue at a glance, from [`stat`].
///
/// # Example
/// ```
/// use mapipc::queue::{stat, QueueOptions, TailerOptions, DEFAULT_INDEX_INTERVAL};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(&q)?;
/// while !q.join(format!("{:020}.seg", 1)).exists() {
///     app.append(&[7u8; 1000])?;
/// }
/// let mut reader = TailerOptions::new().name("reader").open(&q)?;
/// reader.try_next()?;
/// reader.try_next()?; // acknowledges record 0 (`AckMode::Auto`)
///
/// let st = stat(&q)?;
/// assert_eq!((st.first_seq, st.next_seq), (Some(0), app.next_seq()));
/// assert_eq!(st.records(), app.next_seq());
/// assert_eq!(st.disk_bytes(), 2 * 64 * 1024);
/// assert_eq!(st.index_interval, DEFAULT_INDEX_INTERVAL);
/// let [old, current] = &st.segments[..] else { panic!("{:?}", st.segments) };
/// assert!(old.sealed && old.sealed_ns >= old.created_ns && old.problem.is_none());
/// assert!(!current.sealed && current.first_seq > 0 && current.first_seq < st.next_seq);
/// let t = &st.tailers[0];
/// assert_eq!((t.name.as_str(), t.next_seq, t.active), ("reader", 1, true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QueueStat {
    /// The queue directory.
    pub dir: PathBuf,
    /// Size of each segment file.
    pub segment_size: u64,
    /// Records per sparse-index entry.
    pub index_interval: u32,
    /// The largest payload a record can carry.
    pub max_payload: u64,
    /// The segments, oldest first.
    pub segments: Vec<SegmentStat>,
    /// The oldest sequence number still in the queue (`None` without segments).
    pub first_seq: Option<u64>,
    /// The sequence number the next append gets.
    pub next_seq: u64,
    /// The pid of the running appender, if one holds the lock (as recorded by it).
    pub appender: Option<u32>,
    /// The named tailers.
    pub tailers: Vec<TailerStat>,
    /// Segments crash recovery set aside (`{n:020}.seg.damaged-{ns}`), oldest segment
    /// first: not part of the log, kept for salvage until [`remove_damaged`] deletes them.
    ///
    /// [`remove_damaged`]: super::remove_damaged
    pub damaged: Vec<DamagedFile>,
}

impl QueueStat {
    /// Records in the queue (`next_seq - first_seq`).
    ///
    /// # Example
    /// See [`QueueStat`].
    pub fn records(&self) -> u64 {
        self.first_seq
            .map_or(0, |f| self.next_seq.saturating_sub(f))
    }

    /// Disk space of the segment files.
    ///
    /// # Example
    /// See [`QueueStat`].
    pub fn disk_bytes(&self) -> u64 {
        self.segments.len() as u64 * self.segment_size
    }

    /// Size of the files in [`damaged`](Self::damaged), not counted in
    /// [`disk_bytes`](Self::disk_bytes).
    ///
    /// # Example
    /// See [`remove_damaged`](super::remove_damaged).
    pub fn damaged_bytes(&self) -> u64 {
        self.damaged.iter().map(|d| d.bytes).sum()
    }
}

/// A segment crash recovery set aside as `{n:020}.seg.damaged-{ns}` (its start could not
/// be tied to the log, and it held records): listed by [`stat`], deleted only by
/// [`remove_damaged`](super::remove_damaged).
///
/// # Example
/// See [`remove_damaged`](super::remove_damaged).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DamagedFile {
    /// The number of the segment it was.
    pub segment: u64,
    /// When recovery set it aside, ns since the epoch.
    pub set_aside_ns: u64,
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
}

/// The set-aside segments in `listing`, with their sizes; one removed since the listing is
/// left out. Fails with the file that cannot be examined.
pub(crate) fn damaged_files(
    dir: &Path,
    listing: &Listing,
) -> Result<Vec<DamagedFile>, (PathBuf, std::io::Error)> {
    let mut files = Vec::new();
    for &(segment, set_aside_ns) in &listing.damaged {
        let path = damaged_path(dir, segment, set_aside_ns);
        match os::file::lstat(&path) {
            Ok(info) => files.push(DamagedFile {
                segment,
                set_aside_ns,
                path,
                bytes: info.size,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err((path, e)),
        }
    }
    Ok(files)
}

/// One segment, as [`stat`] sees it.
///
/// # Example
/// See [`QueueStat`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SegmentStat {
    /// The segment number.
    pub number: u64,
    /// The file.
    pub path: PathBuf,
    /// Sequence number of its first record.
    pub first_seq: u64,
    /// Whether it is sealed (complete, with an end marker).
    pub sealed: bool,
    /// When it was created, ns since the epoch.
    pub created_ns: u64,
    /// When it was sealed, ns since the epoch (0 while open).
    pub sealed_ns: u64,
    /// What is wrong with its header, if anything (the other fields are then 0).
    pub problem: Option<String>,
}

/// A named tailer, as [`stat`] sees it.
///
/// # Example
/// See [`QueueStat`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TailerStat {
    /// Its name.
    pub name: String,
    /// Its position file.
    pub path: PathBuf,
    /// The next sequence number it will read (everything below is acknowledged).
    pub next_seq: u64,
    /// Whether a process has it open.
    pub active: bool,
    /// What is wrong with its file, if anything.
    pub problem: Option<String>,
}

/// Describes the queue in `dir`: layout, segments, sequence range, appender, named
/// tailers, segments set aside by crash recovery. Reads only headers (and at most an index
/// interval of records in the last segment); use [`verify`] to check every record.
///
/// # Errors
/// [`InspectError::NotAQueue`], [`InspectError::BadMeta`], [`InspectError::Map`] when the queue
/// cannot be opened; [`InspectError::Io`] when its directory cannot be listed (or a
/// set-aside segment's size cannot be read);
/// [`InspectError::Access`] when a file is truncated while it is read. Damaged segment and
/// tailer files are not errors: see [`SegmentStat::problem`] and [`TailerStat::problem`].
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// let mut app = mapipc::queue::Appender::open(&q)?;
/// app.append(b"x")?;
/// let st = mapipc::queue::stat(&q)?;
/// assert_eq!((st.first_seq, st.next_seq, st.records()), (Some(0), 1, 1));
/// assert_eq!(st.appender, Some(std::process::id()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn stat(dir: impl AsRef<Path>) -> Result<QueueStat, InspectError> {
    let dir = dir.as_ref();
    let meta = Meta::open(dir)?;
    let layout = meta.layout;
    let listing = list_dir(dir).map_err(|source| InspectError::Io {
        op: "list",
        file: dir.to_path_buf(),
        source,
    })?;
    let mut segments = Vec::new();
    let mut last: Option<Segment> = None;
    for &n in &listing.segments {
        let path = segment_path(dir, n);
        let mut st = SegmentStat {
            number: n,
            path: path.clone(),
            first_seq: 0,
            sealed: false,
            created_ns: 0,
            sealed_ns: 0,
            problem: None,
        };
        match Segment::open(&path, n, layout, false) {
            Ok(seg) => {
                st.first_seq = seg.first_seq;
                st.sealed = seg.sealed_flag()?;
                st.created_ns = seg.created_ns()?;
                st.sealed_ns = seg.sealed_ns()?;
                last = Some(seg);
            }
            Err(SegOpenError::Missing) => continue,
            Err(SegOpenError::Bad(why)) => st.problem = Some(why),
            Err(SegOpenError::Map(e)) => st.problem = Some(e.to_string()),
            Err(SegOpenError::Access(e)) => st.problem = Some(e.to_string()),
        }
        segments.push(st);
    }
    let next_seq = match &last {
        Some(seg) => {
            let (off, seq) = seg.last_indexed()?;
            let end = seg.walk(off, seq, None)?;
            match end.stop {
                Probe::End { next_seq } => next_seq,
                _ => end.seq,
            }
        }
        None => meta.raw_next_seq(),
    };
    let first_seq = segments
        .iter()
        .find(|s| s.problem.is_none())
        .map(|s| s.first_seq);
    let appender = meta.appender_active().then(|| meta.appender_pid());
    let tailers = listing
        .tailers
        .iter()
        .map(|name| tailer_stat(dir, name))
        .collect();
    let damaged = damaged_files(dir, &listing).map_err(|(file, source)| InspectError::Io {
        op: "examine",
        file,
        source,
    })?;
    Ok(QueueStat {
        dir: dir.to_path_buf(),
        segment_size: layout.segment_size,
        index_interval: layout.index_interval,
        max_payload: layout.max_payload(),
        segments,
        first_seq,
        next_seq,
        appender,
        tailers,
        damaged,
    })
}

/// Reads a named tailer's position without taking its lock (see `read_tailer_position`).
pub(crate) fn tailer_stat(dir: &Path, name: &str) -> TailerStat {
    let path = tailer_path(dir, name);
    let mut st = TailerStat {
        name: name.to_string(),
        path: path.clone(),
        next_seq: 0,
        active: false,
        problem: None,
    };
    let map = match MapOptions::new()
        .read_only()
        .len(super::format::TAILER_FILE_SIZE as usize)
        .map_path(&path)
    {
        Ok(m) => m,
        // Said in the queue's words (as `Tailer::open` does), not the mapping's.
        Err(MapError::RangePastEnd { file_len, .. } | MapError::OffsetPastEnd { file_len, .. }) => {
            st.problem = Some(format!(
                "the file is {file_len} bytes, expected {}",
                super::format::TAILER_FILE_SIZE
            ));
            return st;
        }
        Err(MapError::EmptyFile { .. }) => {
            st.problem = Some("the file is empty".to_string());
            return st;
        }
        Err(e) => {
            st.problem = Some(e.to_string());
            return st;
        }
    };
    let checked = read_tailer_position(&map);
    match checked {
        Ok(seq) if seq < super::format::MAX_SEQ => st.next_seq = seq,
        Ok(seq) => st.problem = Some(format!("position {seq} is out of range")),
        Err(why) => st.problem = Some(why),
    }
    st.active = map
        .file_fd()
        .and_then(|fd| crate::os::file::ofd_is_locked(fd, 0, 1).ok())
        .unwrap_or(false);
    st
}

/// How many copies of a named tailer's header [`tailer_stat`] makes before it calls the
/// header damaged.
const TAILER_HEADER_READS: u32 = 16;

/// A test hook taking the attempt number.
#[cfg(test)]
type ReadHook = Box<dyn FnMut(u32)>;

#[cfg(test)]
thread_local! {
    /// Called by `read_tailer_position` with the attempt number before each copy of the
    /// header: unit tests play a tailer rewriting it there.
    static HEADER_READ_HOOK: std::cell::RefCell<Option<ReadHook>> =
        const { std::cell::RefCell::new(None) };
}

/// The position in a named tailer's file, read without its lock (a tailer may hold it and
/// write the file meanwhile), or what is wrong with the file.
///
/// The header is rewritten only by the tailer holding the file, when it upgrades a version-1
/// file (two stores: the version, then the CRC); a copy made across them can mix old and
/// new and fail its CRC, but the next copy sees the stores done. So a copy that fails is
/// made again, up to [`TAILER_HEADER_READS`] times (yielding in between): only a header
/// that fails every time is damage. The live words (the position and its complement) are
/// read with atomic loads, after the header (the upgrade stores them before the version),
/// and combined as a tailer opening the file would (`format::tailer_position`).
fn read_tailer_position(map: &Mmap) -> Result<u64, String> {
    let mut attempt = 0;
    let version = loop {
        #[cfg(test)]
        HEADER_READ_HOOK.with(|h| {
            if let Some(hook) = h.borrow_mut().as_mut() {
                hook(attempt)
            }
        });
        let mut header = map.read_pod::<TailerHeader>(0).map_err(|e| e.to_string())?;
        // The live position, as a holder stored it (one atomic store), not a copy.
        header.next_seq = map
            .load_u64(TAILER_NEXT_SEQ, Ordering::Acquire)
            .map_err(|e| e.to_string())?;
        match header.validate() {
            Ok(version) => break version,
            Err(why) if attempt + 1 >= TAILER_HEADER_READS => return Err(why),
            Err(_) => {
                attempt += 1;
                crate::os::process::yield_now();
            }
        }
    };
    let seq = map.load_u64(TAILER_NEXT_SEQ, Ordering::Acquire);
    let check = map.load_u64(TAILER_NEXT_SEQ_CHECK, Ordering::Acquire);
    seq.and_then(|seq| check.map(|check| tailer_position(version, seq, check).0))
        .map_err(|e| e.to_string())
}

/// The outcome of [`verify`].
///
/// # Example
/// See [`verify`] (a sound queue) and [`Corruption`] (a damaged one).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segments examined.
    pub segments: u64,
    /// Valid records found.
    pub records: u64,
    /// The first sequence number (`None` without segments).
    pub first_seq: Option<u64>,
    /// The sequence number after the last valid record.
    pub next_seq: u64,
    /// Every damage found, in log order.
    pub problems: Vec<Corruption>,
    /// Remarks that are not damage (e.g. an unfinished record at the tail).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether no damage was found.
    ///
    /// # Example
    /// See [`verify`] and [`Corruption`].
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads every record of every segment of the queue in `dir` and checks headers, CRCs,
/// sequence numbers, segment continuity and the sparse indexes. Damage does not stop the
/// scan: each is listed in [`VerifyReport::problems`] with its sequence number, segment and
/// offset, and the scan continues at the next valid record.
///
/// An unfinished record at the very end (an append in progress, or a crash that the next
/// appender's recovery will cut) is a note, not a problem.
///
/// # Errors
/// [`InspectError::NotAQueue`], [`InspectError::BadMeta`], [`InspectError::Map`] when the
/// queue cannot be opened (or a segment cannot be mapped); [`InspectError::Io`] when its
/// directory cannot be listed; [`InspectError::Access`] when a file is truncated while it
/// is read. Damage is never an error.
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// let mut app = mapipc::queue::Appender::open(&q)?;
/// for i in 0u32..100 { app.append(&i.to_le_bytes())?; }
/// let report = mapipc::queue::verify(&q)?;
/// assert!(report.is_ok());
/// assert_eq!((report.records, report.next_seq), (100, 100));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, InspectError> {
    let dir = dir.as_ref();
    let meta = Meta::open(dir)?;
    let layout = meta.layout;
    let listing = list_dir(dir).map_err(|source| InspectError::Io {
        op: "list",
        file: dir.to_path_buf(),
        source,
    })?;
    let appender_active = meta.appender_active();
    let mut report = VerifyReport {
        next_seq: meta.raw_next_seq(),
        ..VerifyReport::default()
    };
    let mut expected: Option<u64> = None;
    let mut prev: Option<u64> = None;
    let count = listing.segments.len();
    for (i, &n) in listing.segments.iter().enumerate() {
        let is_last = i + 1 == count;
        let path = segment_path(dir, n);
        let problem = |offset, seq, reason| Corruption {
            file: path.clone(),
            segment: n,
            offset,
            seq,
            reason,
        };
        if let Some(p) = prev {
            if n != p + 1 {
                report.problems.push(problem(
                    0,
                    expected.unwrap_or(0),
                    CorruptReason::BadSegment {
                        what: format!("segments {} to {} are missing", p + 1, n - 1),
                    },
                ));
                expected = None;
            }
        }
        prev = Some(n);
        let seg = match Segment::open(&path, n, layout, false) {
            Ok(seg) => seg,
            Err(SegOpenError::Missing) => continue,
            Err(SegOpenError::Bad(what)) => {
                report.segments += 1;
                report.problems.push(problem(
                    0,
                    expected.unwrap_or(0),
                    CorruptReason::BadSegment { what },
                ));
                expected = None;
                continue;
            }
            Err(SegOpenError::Map(e)) => return Err(e.into()),
            Err(SegOpenError::Access(e)) => return Err(e.into()),
        };
        report.segments += 1;
        if report.first_seq.is_none() {
            report.first_seq = Some(seg.first_seq);
        }
        if let Some(e) = expected {
            if seg.first_seq != e {
                report.problems.push(problem(
                    0,
                    e,
                    CorruptReason::BadSegment {
                        what: format!(
                            "it starts at sequence number {}, but the previous segment ends at {e}",
                            seg.first_seq
                        ),
                    },
                ));
            }
        }
        check_index(&seg, &mut report)?;
        let mut off = layout.data_offset;
        let mut seq = seg.first_seq;
        expected = None;
        loop {
            let end = seg.walk(off, seq, None)?;
            report.records += end.seq - seq;
            report.next_seq = end.seq;
            match end.stop {
                Probe::End { next_seq } => {
                    expected = Some(next_seq);
                    report.next_seq = next_seq;
                    break;
                }
                Probe::Data { .. } => unreachable!("walk stops only on non-data"),
                Probe::Empty { torn } => {
                    if let Some((r_off, h)) = seg.resync(end.off, end.seq)? {
                        // A running appender may have committed the empty slot (and more)
                        // since the walk looked at it: look again before calling it damage.
                        if !matches!(seg.probe(end.off, end.seq, None)?, Probe::Empty { .. }) {
                            off = end.off;
                            seq = end.seq;
                            continue;
                        }
                        report
                            .problems
                            .push(problem(end.off, end.seq, CorruptReason::Uncommitted));
                        off = r_off;
                        seq = h.seq;
                        continue;
                    }
                    if !is_last {
                        report.problems.push(problem(
                            end.off,
                            end.seq,
                            CorruptReason::BadSegment {
                                what: "it ends without an end marker, but a later segment exists"
                                    .to_string(),
                            },
                        ));
                    } else if torn {
                        report.notes.push(format!(
                            "unfinished record at sequence {}, segment {n}, offset {}: {}",
                            end.seq,
                            end.off,
                            if appender_active {
                                "an append in progress"
                            } else {
                                "the next appender's recovery will cut it"
                            }
                        ));
                    }
                    break;
                }
                Probe::Bad(reason) => {
                    report.problems.push(problem(end.off, end.seq, reason));
                    // Step over it when its framing is intact, else search.
                    let h = seg.read_header(end.off)?;
                    let after = end.off + record_size(h.len.into());
                    if h.seq == end.seq && after <= layout.data_end() {
                        if let Probe::Data { .. } | Probe::End { .. } =
                            seg.probe(after, end.seq + 1, None)?
                        {
                            off = after;
                            seq = end.seq + 1;
                            continue;
                        }
                    }
                    match seg.resync(end.off, end.seq + 1)? {
                        Some((r_off, h)) => {
                            off = r_off;
                            seq = h.seq;
                        }
                        None => break,
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Checks the sparse index: every set entry must point to the record it stands for, and
/// set entries must form a prefix (each is stored right after its record's commit).
fn check_index(seg: &Segment, report: &mut VerifyReport) -> Result<(), InspectError> {
    let interval = u64::from(seg.layout.index_interval);
    let mut first_unset: Option<u64> = None;
    let mut hole_reported = false;
    let problem = |k: u64, what: String| Corruption {
        file: seg.path.clone(),
        segment: seg.number,
        offset: super::format::SEGMENT_HEADER_SIZE + 4 * k,
        seq: seg.first_seq + k * interval,
        reason: CorruptReason::BadSegment { what },
    };
    for k in 0..u64::from(seg.layout.index_entries) {
        let off = seg.index_entry(k)?;
        if off == 0 {
            first_unset.get_or_insert(k);
            continue;
        }
        let seq = seg.first_seq + k * interval;
        // A damaged record the entry rightly points to is reported by the record scan.
        let valid = seg.layout.is_record_offset(off) && seg.read_header(off)?.seq == seq;
        if !valid {
            report.problems.push(problem(
                k,
                format!("index entry {k} points to offset {off}, where record {seq} is not"),
            ));
        } else if let (Some(j), false) = (first_unset, hole_reported) {
            hole_reported = true;
            report.problems.push(problem(
                j,
                format!("index entry {j} is unset, but later entries are set"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::format::TAILER_VERSION;
    use crate::queue::{retain, QueueOptions, RetainError, Retention, StartAt, TailerOptions};

    /// A tailer upgrading its file rewrites the version, then the CRC; a copy made across
    /// the two stores sees the old version with the new CRC. Two such copies in a row (the
    /// hook plays the holder's stores landing in the first two copies) made `stat` report
    /// the file as damaged and `retain` refuse with `BadTailer`: the header was read twice
    /// only. A header that fails every copy is still damage.
    #[test]
    fn a_header_torn_by_its_holder_twice_in_a_row_is_not_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("q");
        let mut app = QueueOptions::new()
            .segment_size(64 * 1024)
            .open_appender(&dir)
            .unwrap();
        for _ in 0..300 {
            app.append(&[7u8; 1000]).unwrap();
        }
        let t = TailerOptions::new()
            .name("w")
            .from(StartAt::Seq(250))
            .open(&dir)
            .unwrap();
        let file = std::rc::Rc::new(
            MapOptions::new()
                .read_write()
                .map_path(tailer_path(&dir, "w"))
                .unwrap(),
        );
        // The version word as a copy made during the upgrade sees it: `torn` copies.
        let tear = |torn: u32| {
            let file = file.clone();
            HEADER_READ_HOOK.with(|h| {
                *h.borrow_mut() = Some(Box::new(move |attempt| {
                    let version: u32 = if attempt < torn { 1 } else { 2 };
                    file.write_pod(TAILER_VERSION, &version).unwrap();
                }))
            })
        };
        tear(2);
        let st = stat(&dir).unwrap();
        assert_eq!(st.tailers.len(), 1);
        assert_eq!(st.tailers[0].problem, None);
        assert_eq!((st.tailers[0].next_seq, st.tailers[0].active), (250, true));
        let report = retain(&dir, Retention::new().max_segments(1)).unwrap();
        assert!(!report.deleted.is_empty());
        assert!(report.first_seq.unwrap() <= 250);

        // Damage: every copy fails.
        tear(u32::MAX);
        let st = stat(&dir).unwrap();
        assert!(
            st.tailers[0]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("CRC mismatch")),
            "{:?}",
            st.tailers[0].problem
        );
        let err = retain(&dir, Retention::new().max_segments(1)).unwrap_err();
        assert!(matches!(err, RetainError::BadTailer { .. }), "{err}");
        HEADER_READ_HOOK.with(|h| *h.borrow_mut() = None);
        drop((t, app));
    }
}
