//! Errors of the queue, one type per operation, and the description of a corruption.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::map::{AccessError, FlushError, MapError};

/// Where a damaged record (or segment) was found and what is wrong with it.
///
/// Its `Display` reads `corrupt record at sequence 41, segment 0 (`q/00…0.seg`), offset
/// 8192: CRC mismatch (stored 0x…, computed 0x…)`.
///
/// # Example
/// A byte of a record flips on disk; [`verify`](super::verify) names the record, and
/// tailers report the same [`Corruption`] in [`ReadError::Corrupt`] when they reach it.
/// ```
/// use std::os::unix::fs::FileExt;
/// use mapipc::queue::{verify, CorruptReason, QueueOptions};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(&q)?;
/// for m in [b"aaaa", b"bbbb", b"cccc"] {
///     app.append(m)?;
/// }
/// drop(app);
/// let seg = q.join(format!("{:020}.seg", 0));
/// let at = std::fs::read(&seg)?.windows(4).position(|w| w == b"bbbb").unwrap();
/// std::fs::OpenOptions::new().write(true).open(&seg)?.write_at(b"B", at as u64)?;
///
/// let report = verify(&q)?;
/// assert!(!report.is_ok());
/// assert_eq!((report.records, report.next_seq), (2, 3)); // records 0 and 2 are sound
/// let c = &report.problems[0];
/// assert_eq!((c.seq, c.segment, c.file.as_path()), (1, 0, seg.as_path()));
/// assert_eq!(c.offset, at as u64 - 24); // the record header precedes the payload
/// let CorruptReason::CrcMismatch { stored, computed } = c.reason else { panic!("{c}") };
/// assert_ne!(stored, computed);
/// assert!(c.to_string().starts_with("corrupt record at sequence 1, segment 0 ("));
/// assert!(c.to_string().contains("CRC mismatch"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The segment file.
    pub file: PathBuf,
    /// The segment number.
    pub segment: u64,
    /// Byte offset of the record in the segment file.
    pub offset: u64,
    /// The sequence number the record should have had (for a damaged segment header, the
    /// one the segment should start with, or the one sought; 0 when neither is known, as
    /// for the oldest segment).
    pub seq: u64,
    /// What is wrong.
    pub reason: CorruptReason,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupt record at sequence {}, segment {} (`{}`), offset {}: {}",
            self.seq,
            self.segment,
            self.file.display(),
            self.offset,
            self.reason
        )
    }
}

/// What is wrong with a damaged record.
///
/// # Example
/// A segment lost from the middle of the log: a reader that tells damage apart, skips it
/// with [`Tailer::skip_corrupt`](super::Tailer::skip_corrupt) and counts what it lost.
/// ```
/// use mapipc::queue::{CorruptReason, QueueOptions, ReadError, Tailer};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(&q)?;
/// while !q.join(format!("{:020}.seg", 2)).exists() {
///     app.append(&[7u8; 1000])?;
/// }
/// let appended = app.next_seq();
/// drop(app);
/// std::fs::remove_file(q.join(format!("{:020}.seg", 1)))?;
///
/// let mut t = Tailer::open(&q)?;
/// let (mut read, mut lost, mut damage) = (0, 0, Vec::new());
/// loop {
///     match t.try_next() {
///         Ok(Some(_)) => read += 1,
///         Ok(None) => break,
///         Err(ReadError::Corrupt(c)) => {
///             damage.push(match &c.reason {
///                 CorruptReason::BadSegment { .. } => "segment",
///                 CorruptReason::CrcMismatch { .. } => "payload",
///                 _ => "record header",
///             });
///             let skipped = t.skip_corrupt()?.expect("records follow the damage");
///             lost += skipped.next - skipped.first;
///         }
///         Err(e) => return Err(e.into()),
///     }
/// }
/// assert_eq!(damage, ["segment"]);
/// assert!(lost > 0 && read > 0);
/// assert_eq!(read + lost, appended);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptReason {
    /// The CRC32C stored in the record does not match its contents.
    CrcMismatch {
        /// The CRC in the record header.
        stored: u32,
        /// The CRC of what is there.
        computed: u32,
    },
    /// The record's length does not fit in the segment.
    BadLength {
        /// The length in the header.
        len: u64,
        /// The most that fits at this offset.
        max: u64,
    },
    /// Unknown flag bits or record kind, or non-zero reserved bytes.
    BadFlags {
        /// The flags word.
        flags: u32,
    },
    /// The record carries another sequence number than its place in the log.
    SeqMismatch {
        /// The sequence number in the header.
        found: u64,
    },
    /// The record was never committed, although the log goes on after it.
    Uncommitted,
    /// The segment's header is damaged, or does not continue the previous segment.
    BadSegment {
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            CorruptReason::BadLength { len, max } => write!(
                f,
                "corrupt header: length {len} does not fit in the segment (at most {max})"
            ),
            CorruptReason::BadFlags { flags } => {
                write!(f, "corrupt header: unknown flags {flags:#010x}")
            }
            CorruptReason::SeqMismatch { found } => {
                write!(f, "corrupt header: it carries sequence number {found}")
            }
            CorruptReason::Uncommitted => {
                write!(f, "corrupt: never committed, but later records exist")
            }
            CorruptReason::BadSegment { what } => write!(f, "corrupt segment: {what}"),
        }
    }
}

/// Why a queue could not be opened or created (appenders, tailers, `retain`).
///
/// # Example
/// ```
/// use mapipc::queue::{Appender, OpenError, ReadError, StartAt, TailerOptions};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// Appender::open(&q)?.append(b"only record")?;
///
/// // What a reader might tell its operator.
/// fn explain(e: &OpenError) -> &'static str {
///     match e {
///         OpenError::NotAQueue { .. } | OpenError::BadMeta { .. } => "not a queue",
///         OpenError::TailerBusy { .. } => "a reader of that name is running",
///         OpenError::Read(r) if matches!(**r, ReadError::PastEnd { .. }) => "not there yet",
///         _ => "cannot open",
///     }
/// }
///
/// // A directory whose `queue.meta` is some other file:
/// let foreign = tmp.path().join("foreign");
/// std::fs::create_dir(&foreign)?;
/// std::fs::write(foreign.join("queue.meta"), b"not a queue")?;
/// let err = TailerOptions::new().open(&foreign).unwrap_err();
/// assert_eq!(explain(&err), "not a queue");
/// assert!(err.to_string().contains("queue.meta"), "names the file");
///
/// // One tailer per name at a time:
/// let _worker = TailerOptions::new().name("worker").open(&q)?;
/// let err = TailerOptions::new().name("worker").open(&q).unwrap_err();
/// assert!(matches!(&err, OpenError::TailerBusy { name, .. } if name == "worker"));
///
/// // A new tailer is positioned when it opens: record 1 is the next one, 2 is not yet.
/// assert!(TailerOptions::new().from(StartAt::Seq(1)).open(&q).is_ok());
/// let err = TailerOptions::new().from(StartAt::Seq(2)).open(&q).unwrap_err();
/// assert_eq!(explain(&err), "not there yet");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory or its metadata file does not exist.
    #[error("`{dir}` is not a queue: {why}")]
    NotAQueue {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        why: String,
    },
    /// A file or directory operation failed.
    #[error("cannot {op} `{file}`: {source}")]
    Io {
        /// What was being done, e.g. `create the queue directory`.
        op: &'static str,
        /// The file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Mapping a queue file failed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// Accessing a mapped queue file failed (it was truncated under us).
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Writing back the repairs of crash recovery failed.
    #[error(transparent)]
    Flush(#[from] FlushError),
    /// The metadata file is damaged or of another format.
    #[error("`{file}` is not a valid queue metadata file: {why}")]
    BadMeta {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A segment file is damaged in a way recovery cannot handle (its header).
    #[error("`{file}` is not a valid segment of this queue: {why}")]
    BadSegment {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Another appender holds the queue's lock.
    #[error(
        "another appender (pid {pid}, as recorded) is appending to `{dir}`: a queue has one \
         appender at a time (use QueueOptions::wait_for_lock, or `--wait`, to wait for it)"
    )]
    AppenderBusy {
        /// The queue directory.
        dir: PathBuf,
        /// The pid recorded in the metadata (informational).
        pid: u32,
    },
    /// Another tailer with the same name is open.
    #[error("named tailer `{name}` is already in use (`{file}` is locked by another tailer)")]
    TailerBusy {
        /// The name.
        name: String,
        /// Its file.
        file: PathBuf,
    },
    /// A tailer name with characters that do not make a safe file name.
    #[error("invalid tailer name `{name}`: {why}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A named tailer's file is damaged.
    #[error("`{file}` is not a valid tailer position file: {why}")]
    BadTailer {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Invalid creation options (segment size, index interval).
    #[error("invalid queue options for `{dir}`: {why}")]
    InvalidOptions {
        /// The queue directory.
        dir: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The queue exists with another segment size than the one asked for.
    #[error(
        "`{dir}` already exists with segment size {existing} bytes, not {requested}: the \
         segment size is fixed when a queue is created"
    )]
    SegmentSizeMismatch {
        /// The queue directory.
        dir: PathBuf,
        /// The queue's segment size.
        existing: u64,
        /// The size asked for.
        requested: u64,
    },
    /// Positioning a new tailer failed.
    #[error(transparent)]
    Read(#[from] Box<ReadError>),
}

impl From<ReadError> for OpenError {
    fn from(e: ReadError) -> Self {
        OpenError::Read(Box::new(e))
    }
}

/// Why an append failed. Nothing was published: the record is not in the log, and the
/// appender can be used again (for example after freeing disk space).
///
/// # Example
/// ```
/// use mapipc::queue::{AppendError, QueueOptions};
/// # let tmp = tempfile::tempdir()?;
/// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(tmp.path().join("q"))?;
/// let max = app.max_payload() as usize;
/// let big = vec![1u8; max + 1];
/// match app.append(&big) {
///     Err(AppendError::TooLarge { len, max }) => {
///         assert_eq!((len, max), (big.len() as u64, app.max_payload()));
///         // e.g. split the payload, or store it elsewhere and append a reference
///     }
///     Err(AppendError::NoSpace { .. }) => { /* free disk space; the next append retries */ }
///     Err(AppendError::Poisoned(_)) => { /* drop the appender and open it again */ }
///     Err(e) => return Err(e.into()),
///     Ok(_) => panic!("an oversize record was appended"),
/// }
/// assert!(matches!(app.reserve(max + 1), Err(AppendError::TooLarge { .. })));
/// // Nothing was written, and the appender goes on:
/// assert_eq!(app.append(&big[..max])?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The payload is larger than a segment can hold.
    #[error("a record of {len} bytes does not fit in a segment (at most {max} bytes of payload)")]
    TooLarge {
        /// The payload length.
        len: u64,
        /// The largest payload.
        max: u64,
    },
    /// The next segment could not be created or allocated (typically `ENOSPC`: the disk is
    /// full). Reported here rather than as a crash when a page is first written.
    #[error("cannot allocate the next segment `{file}`: {source}")]
    NoSpace {
        /// The segment file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file operation failed.
    #[error("cannot {op} `{file}`: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Mapping a new segment failed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A segment was truncated under the appender.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Writing back (sync policy) failed: the records are in the log (visible to tailers,
    /// safe from a process crash) but not known to be on disk.
    #[error(transparent)]
    Sync(#[from] FlushError),
    /// The sequence numbers are exhausted (2^62 records).
    #[error("the queue has reached the largest sequence number")]
    SeqExhausted,
    /// A previous failure left the appender unable to continue safely; open a new one.
    #[error("the appender is unusable after an earlier failure ({0}); open it again")]
    Poisoned(String),
}

/// Why a read, a seek or a skip failed.
///
/// # Example
/// Retention deleted the oldest records; a reader asking for a sequence number outside the
/// queue moves as close as it can ([`ReadError::Corrupt`]: see [`Corruption`]).
/// ```
/// use mapipc::queue::{retain, QueueOptions, ReadError, Retention, StartAt, Tailer};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(&q)?;
/// while !q.join(format!("{:020}.seg", 2)).exists() {
///     app.append(&[7u8; 1000])?;
/// }
/// let mut t = Tailer::open(&q)?; // anonymous: retention does not wait for it
/// let oldest = retain(&q, Retention::new().max_segments(1))?.first_seq.unwrap();
///
/// fn seek_clamped(t: &mut Tailer, seq: u64) -> Result<(), ReadError> {
///     match t.seek(StartAt::Seq(seq)) {
///         Err(ReadError::Gone { first_available, .. }) => t.seek(StartAt::Seq(first_available)),
///         Err(ReadError::PastEnd { next, .. }) => t.seek(StartAt::Seq(next)),
///         other => other,
///     }
/// }
/// assert!(matches!(t.seek(StartAt::Seq(0)), Err(ReadError::Gone { seq: 0, .. })));
/// seek_clamped(&mut t, 0)?;
/// assert_eq!(t.try_next()?.unwrap().seq(), oldest);
/// seek_clamped(&mut t, u64::MAX)?;
/// assert_eq!(t.next_seq(), app.next_seq());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The record at the tailer's position is damaged. The position does not move: call
    /// [`Tailer::skip_corrupt`](super::Tailer::skip_corrupt) to go past it, or stop.
    #[error("{0}")]
    Corrupt(Corruption),
    /// The record asked for was deleted by retention.
    #[error(
        "sequence number {seq} is no longer in the queue `{dir}` (retention deleted it; the \
         oldest record is {first_available})"
    )]
    Gone {
        /// The queue directory.
        dir: PathBuf,
        /// The sequence number asked for.
        seq: u64,
        /// The oldest sequence number still in the queue.
        first_available: u64,
    },
    /// A seek to a sequence number that was never appended.
    #[error("sequence number {seq} is past the end of the queue `{dir}` (next is {next})")]
    PastEnd {
        /// The queue directory.
        dir: PathBuf,
        /// The sequence number asked for.
        seq: u64,
        /// The next sequence number to be appended.
        next: u64,
    },
    /// A file operation failed.
    #[error("cannot {op} `{file}`: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A segment could not be mapped.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A segment was truncated under the reader.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A named tailer's seek (or its creation, or its move when opened with
    /// [`TailerOptions::from`](super::TailerOptions::from)) gave up waiting for the queue's
    /// position lock, a `flock` on `queue.meta`: a retention run holds it exclusively, and
    /// has held it longer than the tailer's
    /// [`lock_timeout`](super::TailerOptions::lock_timeout) (a `retain` process stopped
    /// or hung, or another process locking the file). The tailer did not move; the seek can
    /// be retried. Who holds the lock is not known: `flock` does not say.
    #[error(
        "timed out after {waited:.1?} waiting for the position lock on `{file}`: it is held \
         exclusively, by a retention run (a stopped or hung `retain`?) or another process \
         locking the file"
    )]
    PositionLockTimeout {
        /// The metadata file (`queue.meta`).
        file: PathBuf,
        /// How long the seek waited for the lock, as measured: at least the lock timeout.
        waited: Duration,
    },
    /// The notifier's futex wait failed.
    #[error("waiting for the next record of `{dir}` failed: {source}")]
    Wait {
        /// The queue directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`Tailer::ack`](super::Tailer::ack) failed: the named tailer's position could not
/// be stored in its file (`NAME.tailer` in the queue directory), or the last record returned
/// was read from a segment truncated under the tailer and is not acknowledged.
///
/// # Example
/// ```
/// use mapipc::queue::{AckError, AckMode, Appender, TailerOptions};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// Appender::open(&q)?.append(b"job")?;
/// let mut t = TailerOptions::new().name("worker").ack(AckMode::Manual).open(&q)?;
/// assert!(t.try_next()?.is_some());
/// t.ack()?;
///
/// // Someone truncates the position file under the tailer:
/// let file = q.join("worker.tailer");
/// std::fs::OpenOptions::new().write(true).open(&file)?.set_len(0)?;
/// match t.ack() {
///     Err(AckError::Access { file: f, .. }) => assert_eq!(f, file),
///     other => panic!("expected AckError::Access, got {other:?}"),
/// }
/// assert!(t.ack().unwrap_err().to_string().contains("worker.tailer"), "names the file");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A record whose segment is truncated under the tailer before it is read:
/// ```
/// use mapipc::map::AccessError;
/// use mapipc::queue::{AckError, AckMode, Appender, TailerOptions};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// let mut app = Appender::open(&q)?;
/// app.append(b"job 0")?;
/// app.append(b"job 1")?;
/// let mut t = TailerOptions::new().name("worker").ack(AckMode::Manual).open(&q)?;
/// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"job 0");
/// let rec = t.try_next()?.unwrap();
/// # let seg = std::fs::read_dir(&q)?.map(|e| e.unwrap().path())
/// #     .find(|p| p.extension().is_some_and(|e| e == "seg")).unwrap();
/// std::fs::OpenOptions::new().write(true).open(&seg)?.set_len(4096)?; // someone truncates
/// assert!(matches!(rec.to_vec(), Err(AccessError::Truncated { .. })));
/// match t.ack() {
///     Err(AckError::NotIntact { seq, .. }) => assert_eq!(seq, 1), // job 0 is acknowledged
///     other => panic!("expected AckError::NotIntact, got {other:?}"),
/// }
/// drop(t);
/// assert_eq!(TailerOptions::new().name("worker").open(&q)?.next_seq(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The position file cannot be written: it was truncated under the tailer's mapping
    /// (the mapping is then poisoned; open the tailer again).
    #[error("cannot store the tailer's position in `{file}`: {source}")]
    Access {
        /// The tailer's position file.
        file: PathBuf,
        /// What the mapping reported.
        #[source]
        source: AccessError,
    },
    /// The last record returned was read from a segment whose mapping is poisoned since
    /// (its file was truncated under the tailer, or the kernel could not supply a page of
    /// it; see [`Mmap::is_poisoned`](crate::map::Mmap::is_poisoned)): what was read of it
    /// may be zeros, so it is not acknowledged. The records before it are. A tailer opened
    /// again under the same name reads it again, once the segment is whole.
    #[error(
        "record {seq} is not acknowledged: it was read from `{file}`, whose mapping is \
         poisoned since ({source}); the records before it are"
    )]
    NotIntact {
        /// The segment file the record was read from.
        file: PathBuf,
        /// The record withheld (the position stored is this one).
        seq: u64,
        /// What the segment's mapping reports.
        #[source]
        source: AccessError,
    },
}

/// Why [`Tailer::sync_position`](super::Tailer::sync_position) failed: the named tailer's
/// position file (`NAME.tailer` in the queue directory) could not be written back to disk.
///
/// # Example
/// ```
/// use mapipc::queue::{Appender, SyncPositionError, TailerOptions};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// Appender::open(&q)?;
/// let mut t = TailerOptions::new().name("worker").open(&q)?;
/// t.ack()?;
/// t.sync_position()?; // the position is on disk
///
/// // Someone truncates the position file under the tailer:
/// let file = q.join("worker.tailer");
/// std::fs::OpenOptions::new().write(true).open(&file)?.set_len(0)?;
/// let err = t.sync_position().unwrap_err();
/// match &err {
///     SyncPositionError::Access { file: f, .. } => assert_eq!(f, &file),
///     SyncPositionError::Sync { .. } => panic!("msync failed: {err}"),
///     _ => panic!("{err}"),
/// }
/// assert!(err.to_string().contains("worker.tailer"), "names the file");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncPositionError {
    /// The position file was truncated under the tailer's mapping: the position stored in
    /// it is lost.
    #[error("cannot write back the tailer's position in `{file}`: {source}")]
    Access {
        /// The tailer's position file.
        file: PathBuf,
        /// What the mapping reported.
        #[source]
        source: AccessError,
    },
    /// `msync` failed (for example an I/O error writing back to disk).
    #[error("cannot write back the tailer's position in `{file}` (msync): {source}")]
    Sync {
        /// The tailer's position file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`stat`](super::stat) or [`verify`](super::verify) failed: the queue could not be
/// opened or listed, a segment could not be mapped (`verify`), or a file was truncated while
/// it was read. Both only read, and fail the same ways. Damage is not an error: `stat`
/// describes damaged segment and tailer files in [`QueueStat`](super::QueueStat), `verify`
/// lists it in [`VerifyReport::problems`](super::VerifyReport::problems).
///
/// # Example
/// ```
/// use mapipc::queue::{stat, InspectError};
/// # let tmp = tempfile::tempdir()?;
/// // What a monitoring script might print.
/// fn describe(dir: &std::path::Path) -> String {
///     match stat(dir) {
///         Ok(st) => format!("{} records", st.records()),
///         Err(InspectError::NotAQueue { .. }) => "no queue".to_string(),
///         Err(InspectError::BadMeta { file, why }) => format!("damaged {}: {why}", file.display()),
///         Err(e) => format!("error: {e}"),
///     }
/// }
/// assert_eq!(describe(&tmp.path().join("missing")), "no queue");
///
/// let foreign = tmp.path().join("foreign");
/// std::fs::create_dir(&foreign)?;
/// std::fs::write(foreign.join("queue.meta"), b"not a queue")?;
/// assert!(describe(&foreign).starts_with("damaged "));
/// assert!(describe(&foreign).contains("queue.meta"), "names the file");
///
/// // `verify` fails the same ways, and reports damage instead of failing on it.
/// use mapipc::queue::{verify, Appender};
/// let q = tmp.path().join("q");
/// assert!(matches!(verify(&q), Err(InspectError::NotAQueue { .. })));
/// Appender::open(&q)?.append(b"x")?;
/// let bad = q.join(format!("{:020}.seg", 5));
/// std::fs::write(&bad, b"garbage")?;
/// let report = verify(&q)?;
/// assert!(report.problems.iter().any(|c| c.file == bad), "{:?}", report.problems);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The directory or its metadata file does not exist.
    #[error("`{dir}` is not a queue: {why}")]
    NotAQueue {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        why: String,
    },
    /// The metadata file is damaged or of another format.
    #[error("`{file}` is not a valid queue metadata file: {why}")]
    BadMeta {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Listing the queue directory, or examining a segment set aside by crash recovery
    /// ([`QueueStat::damaged`](super::QueueStat::damaged)), failed.
    #[error("cannot {op} `{file}`: {source}")]
    Io {
        /// What was being done (`list`, `examine`).
        op: &'static str,
        /// The directory, or the set-aside segment.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The metadata file (or, for `verify`, a segment) could not be mapped.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A queue file was truncated while it was read.
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// What opening a queue's metadata file can fail with (`Meta::open`): a part of
/// [`OpenError`] and [`InspectError`], converted into each.
#[derive(Debug)]
pub(crate) enum MetaOpenError {
    NotAQueue { dir: PathBuf, why: String },
    BadMeta { file: PathBuf, why: String },
    Map(MapError),
    Access(AccessError),
}

impl From<MapError> for MetaOpenError {
    fn from(e: MapError) -> Self {
        MetaOpenError::Map(e)
    }
}

impl From<AccessError> for MetaOpenError {
    fn from(e: AccessError) -> Self {
        MetaOpenError::Access(e)
    }
}

/// Converts a [`MetaOpenError`] into each error enum that has its variants.
macro_rules! from_meta_open_error {
    ($($ty:ident),*) => {$(
        impl From<MetaOpenError> for $ty {
            fn from(e: MetaOpenError) -> Self {
                match e {
                    MetaOpenError::NotAQueue { dir, why } => $ty::NotAQueue { dir, why },
                    MetaOpenError::BadMeta { file, why } => $ty::BadMeta { file, why },
                    MetaOpenError::Map(e) => $ty::Map(e),
                    MetaOpenError::Access(e) => $ty::Access(e),
                }
            }
        }
    )*};
}
from_meta_open_error!(OpenError, InspectError);

impl From<MetaOpenError> for RetainError {
    fn from(e: MetaOpenError) -> Self {
        RetainError::Open(e.into())
    }
}

impl From<MetaOpenError> for RemoveDamagedError {
    fn from(e: MetaOpenError) -> Self {
        RemoveDamagedError::Open(e.into())
    }
}

/// Why a retention run failed.
///
/// # Example
/// ```
/// use mapipc::queue::{retain, Appender, OpenError, RetainError, Retention};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// Appender::open(&q)?;
/// // Without a bound nothing is looked at:
/// assert!(matches!(retain(&q, &Retention::new()), Err(RetainError::NoBound)));
///
/// // A periodic clean-up job, run before the queue exists:
/// let mut policy = Retention::new();
/// policy.max_segments(8);
/// let outcome = match retain(tmp.path().join("not-yet"), &policy) {
///     Ok(report) => format!("deleted {} segments", report.deleted.len()),
///     Err(RetainError::Open(OpenError::NotAQueue { .. })) => "no queue yet".to_string(),
///     Err(RetainError::Delete { file, source }) => format!("{}: {source}", file.display()),
///     Err(e) => return Err(e.into()),
/// };
/// assert_eq!(outcome, "no queue yet");
///
/// // A damaged named-tailer file stops it (the position it needs is unknown), unless forced:
/// std::fs::write(q.join("reader.tailer"), b"garbage")?;
/// let err = retain(&q, &policy).unwrap_err();
/// assert!(matches!(err, RetainError::BadTailer { .. }));
/// let mut forced = policy.clone();
/// forced.force(true);
/// assert_eq!(retain(&q, &forced)?.remaining, 1);
///
/// // So does a damaged segment header (which records it holds is unknown), forced or not:
/// std::fs::write(q.join("00000000000000000007.seg"), b"garbage")?;
/// let err = retain(&q, &forced).unwrap_err();
/// assert!(matches!(err, RetainError::BadSegment { .. }), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetainError {
    /// The queue could not be opened: the directory or its metadata file is missing or
    /// damaged.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// No bound was given.
    #[error("no retention bound given: set a maximum segment count, age or size")]
    NoBound,
    /// A file operation failed: taking the retention lock or the position lock on
    /// `queue.meta`, listing the directory, syncing it after the deletions.
    #[error("cannot {op} `{file}`: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A segment's header is not valid (or the file is not a segment of this queue's
    /// size): which records it holds is unknown, so nothing is deleted, even when forced.
    #[error("`{file}` is not a valid segment of this queue: {why}")]
    BadSegment {
        /// The segment file.
        file: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A segment could not be mapped to read its header.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A segment was truncated while its header was read.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A named tailer's position file is damaged: the position it needs kept is unknown,
    /// so nothing is deleted (unless forced).
    #[error("`{file}` is not a valid tailer position file: {why}")]
    BadTailer {
        /// The tailer's file.
        file: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Retention gave up waiting for the queue's retention lock, an OFD byte-range lock on
    /// `queue.meta` that serializes retention runs: another run holds it, and has held it
    /// longer than the [`lock_timeout`](super::Retention::lock_timeout) (a `retain` process
    /// stopped or hung, or another process locking the file). Nothing was looked at or
    /// deleted; the run can be retried. Who holds the lock is not known: an OFD lock has no
    /// owning process.
    #[error(
        "timed out after {waited:.1?} waiting for the retention lock on `{file}`: it is held, by \
         another retention run (a stopped or hung `retain`?) or another process locking the \
         file; nothing was deleted"
    )]
    RetentionLockTimeout {
        /// The metadata file (`queue.meta`).
        file: PathBuf,
        /// How long retention waited for the lock, as measured: at least its
        /// [`lock_timeout`](super::Retention::lock_timeout).
        waited: Duration,
    },
    /// Retention gave up waiting for the queue's position lock, a `flock` on `queue.meta`:
    /// it was held past what the wait for the retention lock left of the
    /// [`lock_timeout`](super::Retention::lock_timeout), by a named tailer (which holds it
    /// shared while it seeks or is created: a tailer process stopped or hung in the middle
    /// of a seek) or by another process locking the file. Nothing was deleted; the run can
    /// be retried. Who holds the lock is not known: `flock` does not say.
    #[error(
        "timed out after {waited:.1?} waiting for the retention lock, then the position lock on \
         `{file}`: the position lock is held, by a named tailer seeking or being created (one \
         stopped or hung in the middle?) or another process locking the file; nothing was \
         deleted"
    )]
    PositionLockTimeout {
        /// The metadata file (`queue.meta`).
        file: PathBuf,
        /// How long retention waited for its two locks in all, as measured: at least its
        /// [`lock_timeout`](super::Retention::lock_timeout).
        waited: Duration,
    },
    /// Deleting a segment failed.
    #[error("cannot delete `{file}`: {source}")]
    Delete {
        /// The segment file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`remove_damaged`](super::remove_damaged) failed.
///
/// # Example
/// ```
/// use mapipc::queue::{remove_damaged, OpenError, RemoveDamagedError};
/// # let tmp = tempfile::tempdir()?;
/// // Not a queue: nothing there is deleted, whatever its files are named.
/// let err = remove_damaged(tmp.path()).unwrap_err();
/// assert!(matches!(err, RemoveDamagedError::Open(OpenError::NotAQueue { .. })), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveDamagedError {
    /// The queue could not be opened: the directory or its metadata file is missing or
    /// damaged.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A file operation failed: taking the retention lock on `queue.meta`, listing the
    /// directory, reading a set-aside segment's size, syncing the directory after the
    /// deletions.
    #[error("cannot {op} `{file}`: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another retention run or removal held the retention lock on `queue.meta` past the
    /// [`lock_timeout`](super::RemoveDamagedOptions::lock_timeout) (default
    /// [`POSITION_LOCK_TIMEOUT`](super::POSITION_LOCK_TIMEOUT), 10 s; a stopped or hung
    /// one?); nothing was deleted.
    #[error(
        "timed out after {waited:.1?} waiting for the retention lock on `{file}`: it is held, by \
         another retention run (a stopped or hung `retain`?) or another process locking the \
         file; nothing was deleted"
    )]
    RetentionLockTimeout {
        /// `queue.meta`.
        file: PathBuf,
        /// How long it waited for the lock, as measured: at least the lock timeout.
        waited: Duration,
    },
    /// Deleting a set-aside segment failed (those before it in
    /// [`QueueStat::damaged`](super::QueueStat::damaged) are deleted).
    #[error("cannot delete `{file}`: {source}")]
    Delete {
        /// The set-aside segment.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
