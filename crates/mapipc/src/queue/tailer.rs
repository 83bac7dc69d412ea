//! Tailers: positioned readers of a queue, anonymous or named (with a persistent position).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::error::{AckError, CorruptReason, Corruption, OpenError, ReadError, SyncPositionError};
use super::format::{
    check_tailer_name, segment_path, tailer_path, tailer_position, SegmentLayout, TailerHeader,
    RECORD_HEADER_SIZE, TAILER_FILE_SIZE, TAILER_FORMAT_VERSION, TAILER_HEADER_CRC,
    TAILER_NEXT_SEQ, TAILER_NEXT_SEQ_CHECK, TAILER_UPDATED_NS, TAILER_VERSION,
};
use super::meta::Meta;
use super::segment::{Probe, SegOpenError, Segment};
use super::tmpfile;
use super::{list_dir, unpack_position};
use crate::map::{AccessError, Bounds, FlushError, MapError, MapOptions, Mmap};
use crate::os;
use crate::sync::{Notifier, WaitError, WaitOptions};

/// Where a tailer starts.
///
/// # Example
/// ```
/// use mapipc::queue::{Appender, StartAt, TailerOptions};
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// let mut app = Appender::open(&q)?;
/// for m in [b"a", b"b", b"c"] { app.append(m)?; }
/// let mut t = TailerOptions::new().from(StartAt::Seq(1)).open(&q)?;
/// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"b");
/// let mut end = TailerOptions::new().from(StartAt::End).open(&q)?;
/// assert!(end.try_next()?.is_none()); // only what comes next
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still in the queue.
    Start,
    /// After the last record: only records appended from now on.
    End,
    /// The record with this sequence number (it need not exist yet if it is the next one).
    Seq(u64),
}

/// When a named tailer's position is stored.
///
/// # Example
/// ```
/// use mapipc::queue::{AckMode, Appender, TailerOptions};
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// let mut app = Appender::open(&q)?;
/// app.append(b"job 1")?;
/// app.append(b"job 2")?;
/// {
///     let mut t = TailerOptions::new().name("worker").ack(AckMode::Manual).open(&q)?;
///     let job = t.try_next()?.unwrap().to_vec()?;
///     assert_eq!(job, b"job 1");
///     // ... process it, then acknowledge together with its effects:
///     t.ack()?;
///     let _ = t.try_next()?; // "job 2" read but never acknowledged
/// }
/// let mut t = TailerOptions::new().name("worker").open(&q)?;
/// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"job 2"); // delivered again
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AckMode {
    /// At-least-once: a record counts as processed when the next one is asked for or when
    /// the tailer is dropped. After a crash, the record being processed is delivered again.
    /// So is a record whose segment was truncated under the tailer once it was returned,
    /// when a read of it then failed (see [`Tailer::ack`]): it never counts as processed.
    #[default]
    Auto,
    /// The caller acknowledges with [`Tailer::ack`] (exactly-once when the
    /// acknowledgement is made atomically with the processing, e.g. idempotent effects or
    /// effects stored with the position).
    Manual,
}

/// How to open a [`Tailer`].
///
/// Defaults: anonymous, from [`StartAt::Start`], [`AckMode::Auto`], spin 100 times before
/// parking in blocking reads.
///
/// # Example
/// ```
/// use mapipc::queue::{AckMode, Appender, StartAt, TailerOptions};
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// let mut app = Appender::open(&q)?;
/// for i in 0u32..5 {
///     app.append(&i.to_le_bytes())?;
/// }
/// let mut opts = TailerOptions::new();
/// opts.name("billing") // its position is kept in `billing.tailer`
///     .from(StartAt::Seq(2)) // where a new name starts (default: the start)
///     .ack(AckMode::Manual)
///     .spin(0); // blocking reads park at once
/// let mut t = opts.open(&q)?;
/// assert_eq!((t.name(), t.next_seq()), (Some("billing"), 2));
/// assert_eq!(t.next_blocking()?.seq(), 2); // there already: no wait
/// t.ack()?;
/// assert_eq!(t.try_next()?.unwrap().seq(), 3); // read, never acknowledged
/// drop(t);
///
/// // Without `from`, a named tailer resumes after what it acknowledged...
/// let t = TailerOptions::new().name("billing").open(&q)?;
/// assert_eq!(t.next_seq(), 3);
/// drop(t);
/// // ... and with it, it moves there.
/// let t = TailerOptions::new().name("billing").from(StartAt::End).open(&q)?;
/// assert_eq!(t.next_seq(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TailerOptions {
    from: Option<StartAt>,
    name: Option<String>,
    ack: AckMode,
    spin: u32,
    lock_timeout: Duration,
}

/// How long the queue's position lock is waited for, by default (10 s), both by a named
/// tailer created or seeking while a [`retain`](super::retain) run holds the lock, and by
/// a `retain` run while named tailers hold it for a seek; a `retain` run's wait for the
/// retention lock, while another run holds it, counts against the same budget, and
/// [`remove_damaged`](super::remove_damaged) waits as long for that lock. Holders
/// normally keep these locks for milliseconds; a holder stopped or hung past this makes
/// the waiter fail instead of waiting forever: the seek with
/// [`ReadError::PositionLockTimeout`], retention with
/// [`RetainError::RetentionLockTimeout`](super::RetainError::RetentionLockTimeout) or
/// [`RetainError::PositionLockTimeout`](super::RetainError::PositionLockTimeout), the
/// removal with
/// [`RemoveDamagedError::RetentionLockTimeout`](super::RemoveDamagedError::RetentionLockTimeout),
/// each with the time it waited. Set per tailer with [`TailerOptions::lock_timeout`], per
/// retention run with [`Retention::lock_timeout`](super::Retention::lock_timeout), per
/// removal with
/// [`RemoveDamagedOptions::lock_timeout`](super::RemoveDamagedOptions::lock_timeout).
///
/// # Example
/// ```
/// use std::time::Duration;
/// assert_eq!(mapipc::queue::POSITION_LOCK_TIMEOUT, Duration::from_secs(10));
/// ```
pub const POSITION_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for TailerOptions {
    fn default() -> Self {
        TailerOptions {
            from: None,
            name: None,
            ack: AckMode::Auto,
            spin: 100,
            lock_timeout: POSITION_LOCK_TIMEOUT,
        }
    }
}

impl TailerOptions {
    /// The defaults.
    ///
    /// # Example
    /// See [`TailerOptions`].
    pub fn new() -> TailerOptions {
        TailerOptions::default()
    }

    /// Where to start. For a named tailer that already exists, setting this moves it (and
    /// its stored position) there; left unset, it resumes where it stopped. An anonymous
    /// or new tailer starts at [`StartAt::Start`] unless told otherwise.
    ///
    /// # Example
    /// See [`TailerOptions`].
    pub fn from(&mut self, at: StartAt) -> &mut Self {
        self.from = Some(at);
        self
    }

    /// Makes this a named tailer: its position is kept in `{name}.tailer` in the queue
    /// directory, so a restarted reader continues where it stopped. Names are 1 to 64 of
    /// `A-Z a-z 0-9 _ - .`, not starting with `.`. One tailer per name at a time.
    ///
    /// # Example
    /// See [`TailerOptions`].
    pub fn name(&mut self, name: &str) -> &mut Self {
        self.name = Some(name.to_string());
        self
    }

    /// When a named tailer's position is stored (default [`AckMode::Auto`]).
    ///
    /// # Example
    /// See [`TailerOptions`].
    pub fn ack(&mut self, mode: AckMode) -> &mut Self {
        self.ack = mode;
        self
    }

    /// Spin this many times before parking in blocking reads (default 100; 0 parks at
    /// once).
    ///
    /// # Example
    /// See [`TailerOptions`].
    pub fn spin(&mut self, spins: u32) -> &mut Self {
        self.spin = spins;
        self
    }

    /// How long a named tailer waits for the queue's position lock when it is created or
    /// seeks (the opening with [`from`](Self::from) and every [`Tailer::seek`]) while a
    /// [`retain`](super::retain) run holds it (default [`POSITION_LOCK_TIMEOUT`], 10 s).
    /// Past it, the seek fails with [`ReadError::PositionLockTimeout`] (wrapped in
    /// [`OpenError::Read`] when opening) and the tailer does not move. Anonymous tailers
    /// take no lock.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::queue::{Appender, StartAt, TailerOptions};
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// Appender::open(&q)?.append(b"x")?;
    /// let mut t = TailerOptions::new()
    ///     .name("impatient")
    ///     .lock_timeout(Duration::from_millis(500))
    ///     .open(&q)?;
    /// t.seek(StartAt::End)?; // no retention run: the lock is free at once
    /// assert_eq!(t.next_seq(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lock_timeout = timeout;
        self
    }

    /// Opens a tailer on the queue in `dir` (which must exist).
    ///
    /// # Errors
    /// [`OpenError::NotAQueue`], [`OpenError::BadMeta`]; for named tailers
    /// [`OpenError::InvalidName`], [`OpenError::TailerBusy`], [`OpenError::BadTailer`];
    /// [`OpenError::Read`] when positioning fails ([`ReadError::PastEnd`] for a
    /// sequence number not yet appended, [`ReadError::Gone`] for one deleted by retention,
    /// a corrupt segment header, or, for a named tailer created or moved with
    /// [`from`](Self::from), [`ReadError::PositionLockTimeout`] when a retention run held
    /// the position lock longer than the [`lock_timeout`](Self::lock_timeout)).
    ///
    /// # Example
    /// ```
    /// use mapipc::queue::{OpenError, TailerOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let err = TailerOptions::new().open(dir.path().join("missing")).unwrap_err();
    /// assert!(matches!(err, OpenError::NotAQueue { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, dir: impl AsRef<Path>) -> Result<Tailer, OpenError> {
        Tailer::open_with(dir.as_ref(), self)
    }
}

/// Records skipped by [`Tailer::skip_corrupt`].
///
/// # Example
/// See [`Tailer::skip_corrupt`] (a damaged record) and
/// [`CorruptReason`](super::CorruptReason) (a whole segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The first sequence number skipped.
    pub first: u64,
    /// The sequence number reading continues at (everything in `first..next` is skipped).
    pub next: u64,
}

/// A committed record, viewed in place in the segment mapping (zero-copy). Its CRC was
/// checked when it was read. Reading copies out through the map layer; borrowing the bytes
/// is [`unsafe`](Self::as_slice).
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// # mapipc::queue::Appender::open(&q)?.append(b"hello world")?;
/// let mut t = mapipc::queue::Tailer::open(&q)?;
/// let rec = t.try_next()?.unwrap();
/// assert_eq!((rec.seq(), rec.len(), rec.is_empty()), (0, 11, false));
/// let mut word = [0u8; 5];
/// rec.read_at(6, &mut word)?;
/// assert_eq!(&word, b"world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Record<'a> {
    map: &'a Mmap,
    off: u64,
    len: usize,
    seq: u64,
}

impl Record<'_> {
    /// The record's sequence number.
    ///
    /// # Example
    /// See [`Record`].
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The payload length.
    ///
    /// # Example
    /// See [`Record`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    ///
    /// # Example
    /// See [`Record`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies payload bytes from `offset` into `buf`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] past the payload; [`AccessError::Truncated`] if the
    /// segment file was truncated under us.
    ///
    /// # Example
    /// See [`Record`].
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        match offset.checked_add(buf.len()) {
            Some(end) if end <= self.len => self.map.read_at(self.off + offset as u64, buf),
            _ => Err(AccessError::OutOfBounds {
                file: self.map.file_name().to_string(),
                offset: offset as u64,
                len: buf.len(),
                map_len: self.len,
                bounds: Bounds::RecordPayload,
            }),
        }
    }

    /// The payload, copied into a new `Vec`.
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// See [`Tailer`].
    pub fn to_vec(&self) -> Result<Vec<u8>, AccessError> {
        let mut v = vec![0u8; self.len];
        self.read_at(0, &mut v)?;
        Ok(v)
    }

    /// Copies the payload into `buf` (cleared first), reusing its allocation.
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// # mapipc::queue::Appender::open(&q)?.append(b"abc")?;
    /// let mut t = mapipc::queue::Tailer::open(&q)?;
    /// let mut buf = Vec::with_capacity(4096);
    /// t.try_next()?.unwrap().copy_into(&mut buf)?;
    /// assert_eq!(buf, b"abc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copy_into(&self, buf: &mut Vec<u8>) -> Result<(), AccessError> {
        buf.clear();
        buf.resize(self.len, 0);
        self.read_at(0, buf)
    }

    /// Borrows the payload in place.
    ///
    /// # Safety
    /// The payload lives in a shared file mapping. While the slice lives, nobody may write
    /// or truncate the segment file. The appender never rewrites committed records, so
    /// this holds unless someone edits the queue's files by hand or maliciously (or
    /// retention with `force` plus an external truncation).
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// # mapipc::queue::Appender::open(&q)?.append(b"abc")?;
    /// let mut t = mapipc::queue::Tailer::open(&q)?;
    /// let rec = t.try_next()?.unwrap();
    /// // SAFETY: nobody edits the queue's files behind the appender's back.
    /// assert_eq!(unsafe { rec.as_slice() }, b"abc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(unsafe_code)]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range was bounds-checked when the record was read (it fits in the
        // segment); immutability is the caller's obligation.
        unsafe { super::view::slice(self.map, self.off, self.len) }
    }
}

/// Where the tailer is.
#[derive(Debug)]
enum Pos {
    /// Reading at `off` in `seg`.
    At { seg: Segment, off: u64 },
    /// The segment holding `seq` is not open: try segment `hint` first (the one after an
    /// end marker), else find it by listing the directory.
    Pending { hint: Option<u64> },
}

/// The named tailer's position file.
#[derive(Debug)]
struct Named {
    name: String,
    map: Mmap,
}

impl Named {
    /// Stores the position, then its complement (see `format::tailer_position`).
    fn store(&self, seq: u64) -> Result<(), AccessError> {
        self.map
            .atomic_u64(TAILER_NEXT_SEQ)?
            .store(seq, Ordering::Release);
        self.map
            .atomic_u64(TAILER_NEXT_SEQ_CHECK)?
            .store(!seq, Ordering::Release);
        self.map
            .write_pod(TAILER_UPDATED_NS, &os::process::realtime_ns())
    }

    /// The position: the lower of the two words when they disagree (an update interrupted
    /// by a kill, or damage: records are then delivered again, never skipped). The file is
    /// of the current format version (files of version 1 are upgraded when opened).
    fn load(&self) -> Result<u64, AccessError> {
        self.load_as(TAILER_FORMAT_VERSION)
    }

    /// [`load`](Self::load) from a file of format `version`.
    fn load_as(&self, version: u32) -> Result<u64, AccessError> {
        let seq = self
            .map
            .atomic_u64(TAILER_NEXT_SEQ)?
            .load(Ordering::Acquire);
        let check = self
            .map
            .atomic_u64(TAILER_NEXT_SEQ_CHECK)?
            .load(Ordering::Acquire);
        Ok(tailer_position(version, seq, check).0)
    }
}

#[cfg(test)]
thread_local! {
    /// Run once (then cleared) by `locate_within` when the segment to search is open, before
    /// it is searched: unit tests make rolls and retention happen there.
    static LOCATE_HOOK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Result of finding a sequence number in the segments.
enum Located {
    At { seg: Segment, off: u64, seq: u64 },
    NotYet { hint: Option<u64> },
    PastEnd { next: u64 },
    Gone { first_available: u64 },
}

/// A reader of a queue: reads records in order from its position, without blocking
/// ([`try_next`](Self::try_next)), blocking ([`next_blocking`](Self::next_blocking)) or with a timeout
/// ([`next_timeout`](Self::next_timeout)). Any number of tailers, in any processes.
///
/// A damaged record is reported as [`ReadError::Corrupt`] and the position does not move:
/// stop, or call [`skip_corrupt`](Self::skip_corrupt). Nothing is ever skipped silently.
///
/// # Example
/// ```
/// use mapipc::queue::{Appender, Tailer};
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// let mut app = Appender::open(&q)?;
/// app.append(b"one")?;
/// let mut t = Tailer::open(&q)?;
/// assert_eq!((t.name(), t.dir(), t.next_seq()), (None, q.as_path(), 0));
/// let rec = t.try_next()?.unwrap();
/// assert_eq!((rec.seq(), rec.to_vec()?), (0, b"one".to_vec()));
/// assert!(t.try_next()?.is_none());
/// app.append(b"two")?;
/// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"two");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Tailer {
    meta: Meta,
    dir: PathBuf,
    layout: SegmentLayout,
    pos: Pos,
    /// The next sequence number to read.
    seq: u64,
    named: Option<Named>,
    ack: AckMode,
    spin: u32,
    /// How long a named seek waits for the position lock.
    lock_timeout: Duration,
}

impl Tailer {
    /// An anonymous tailer from the start of the queue in `dir`.
    ///
    /// # Errors
    /// As [`TailerOptions::open`].
    ///
    /// # Example
    /// See [`Tailer`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Tailer, OpenError> {
        TailerOptions::new().open(dir)
    }

    fn open_with(dir: &Path, opts: &TailerOptions) -> Result<Tailer, OpenError> {
        let meta = Meta::open(dir)?;
        let layout = meta.layout;
        let mut t = Tailer {
            meta,
            dir: dir.to_path_buf(),
            layout,
            pos: Pos::Pending { hint: None },
            seq: 0,
            named: None,
            ack: opts.ack,
            spin: opts.spin,
            lock_timeout: opts.lock_timeout,
        };
        let Some(name) = &opts.name else {
            t.seek(opts.from.unwrap_or(StartAt::Start))?;
            return Ok(t);
        };
        check_tailer_name(name).map_err(|why| OpenError::InvalidName {
            name: name.clone(),
            why,
        })?;
        let path = tailer_path(dir, name);
        let existing = open_tailer_file(&path, name)?;
        match (existing, opts.from) {
            (Some(named), None) => {
                // Resume lazily: a position deleted by retention or not yet reached is
                // reported (or waited for) by the reads, not here.
                t.seq = named.load()?;
                t.named = Some(named);
            }
            (Some(named), Some(at)) => {
                // As `seek` does for a named tailer, but `t` gets the file only once the
                // position is stored (dropped on an error, it would store its own).
                t.lock_positions()?;
                let moved = t
                    .seek_to(at)
                    .and_then(|()| named.store(t.seq).map_err(ReadError::from));
                t.meta.unlock_positions();
                moved?;
                t.named = Some(named);
            }
            (None, from) => {
                // Under the shared position lock, as a seek of a named tailer: a retention
                // run cannot delete the segment found before the new file stores the
                // position in it.
                t.lock_positions()?;
                let created = t
                    .seek_to(from.unwrap_or(StartAt::Start))
                    .map_err(OpenError::from)
                    .and_then(|()| create_tailer_file(&path, name, t.seq, &t.meta));
                t.meta.unlock_positions();
                t.named = Some(created?);
            }
        }
        Ok(t)
    }

    /// The tailer's name, if it is a named one.
    ///
    /// # Example
    /// See [`Tailer`].
    pub fn name(&self) -> Option<&str> {
        self.named.as_ref().map(|n| n.name.as_str())
    }

    /// The sequence number the next read returns.
    ///
    /// # Example
    /// See [`Tailer`].
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// The queue directory.
    ///
    /// # Example
    /// See [`Tailer`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the tailer. For a named tailer, the new position is stored at once, under the
    /// queue's position lock: while a [`retain`](super::retain) run lasts, the seek waits
    /// for it, so retention never deletes the segment the tailer moves to. It waits at most
    /// the tailer's [`lock_timeout`](TailerOptions::lock_timeout) (default
    /// [`POSITION_LOCK_TIMEOUT`], 10 s), so a stopped or hung retention run cannot make it
    /// hang.
    ///
    /// # Errors
    /// [`ReadError::PastEnd`] for a sequence number beyond the next one to be appended,
    /// [`ReadError::Gone`] for one deleted by retention, [`ReadError::Corrupt`] (with
    /// [`CorruptReason::BadSegment`] naming the file, what is wrong and what was sought)
    /// when the record can only be in a segment whose header is damaged: for
    /// [`StartAt::Start`], the oldest segment (its records are the oldest; the error also
    /// names the first readable segment, where a seek can go on), for [`StartAt::End`], the
    /// last one (the end is in it).
    /// Nothing is skipped silently, and damaged segments elsewhere do not matter to a
    /// seek. [`ReadError::PositionLockTimeout`] for a named tailer when a retention run
    /// held the position lock longer than the tailer's lock timeout. On error the tailer
    /// does not move.
    ///
    /// # Example
    /// ```
    /// use mapipc::queue::{Appender, ReadError, StartAt, Tailer};
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// let mut app = Appender::open(&q)?;
    /// for i in 0u32..10 { app.append(&i.to_le_bytes())?; }
    /// let mut t = Tailer::open(&q)?;
    /// t.seek(StartAt::Seq(7))?;
    /// assert_eq!(t.try_next()?.unwrap().seq(), 7);
    /// assert!(matches!(t.seek(StartAt::Seq(11)), Err(ReadError::PastEnd { next: 10, .. })));
    /// t.seek(StartAt::End)?;
    /// assert_eq!(t.next_seq(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seek(&mut self, at: StartAt) -> Result<(), ReadError> {
        if self.named.is_none() {
            return self.seek_to(at);
        }
        // A named tailer finds its new position and stores it under the shared position
        // lock: a retention run cannot delete the segment found before the position that
        // protects it is stored (see "Retention" in the module docs).
        self.lock_positions()?;
        let moved = self.seek_to(at).and_then(|()| match &self.named {
            Some(n) => n.store(self.seq).map_err(ReadError::from),
            None => Ok(()),
        });
        self.meta.unlock_positions();
        moved
    }

    /// Takes the shared position lock, waiting at most `lock_timeout` while a retention
    /// run holds it.
    fn lock_positions(&self) -> Result<(), ReadError> {
        let start = Instant::now();
        let taken = self
            .meta
            .lock_positions_shared(self.lock_timeout)
            .map_err(|source| ReadError::Io {
                op: "lock the tailer positions of",
                file: self.meta.path.clone(),
                source,
            })?;
        if taken {
            Ok(())
        } else {
            Err(ReadError::PositionLockTimeout {
                file: self.meta.path.clone(),
                waited: start.elapsed(),
            })
        }
    }

    /// [`seek`](Self::seek) without storing the position.
    fn seek_to(&mut self, at: StartAt) -> Result<(), ReadError> {
        match at {
            StartAt::Start => self.seek_start(),
            StartAt::End => self.seek_end(),
            StartAt::Seq(seq) => {
                // Read before the listing: while there is no segment, nothing is appended.
                let first_to_come = self.meta.raw_next_seq();
                self.seek_seq(seq, first_to_come)
            }
        }
    }

    /// [`seek`](Self::seek) to `seq`; `first_to_come` is the metadata's next sequence
    /// number, read before the segments were listed.
    fn seek_seq(&mut self, seq: u64, first_to_come: u64) -> Result<(), ReadError> {
        match self.locate(seq)? {
            Located::At { seg, off, seq } => {
                self.pos = Pos::At { seg, off };
                self.seq = seq;
            }
            // No segment at all (the queue is being created, or its segments were
            // removed by hand): the first append gets the metadata's next sequence
            // number.
            Located::NotYet { hint: None } if seq != first_to_come => {
                return Err(if seq > first_to_come {
                    ReadError::PastEnd {
                        dir: self.dir.clone(),
                        seq,
                        next: first_to_come,
                    }
                } else {
                    ReadError::Gone {
                        dir: self.dir.clone(),
                        seq,
                        first_available: first_to_come,
                    }
                });
            }
            Located::NotYet { hint } => {
                self.pos = Pos::Pending { hint };
                self.seq = seq;
            }
            Located::PastEnd { next } if next == seq => {
                self.pos = Pos::Pending { hint: None };
                self.seq = seq;
            }
            Located::PastEnd { next } => {
                return Err(ReadError::PastEnd {
                    dir: self.dir.clone(),
                    seq,
                    next,
                })
            }
            Located::Gone { first_available } => {
                return Err(ReadError::Gone {
                    dir: self.dir.clone(),
                    seq,
                    first_available,
                })
            }
        }
        Ok(())
    }

    fn seek_start(&mut self) -> Result<(), ReadError> {
        for _ in 0..8 {
            // Read before the listing: while there is no segment, nothing is appended (read
            // after it, an appender creating the first segment and appending in between
            // would make the tailer start after its first records).
            let first_to_come = self.meta.raw_next_seq();
            let listing = list_dir(&self.dir).map_err(|source| ReadError::Io {
                op: "list",
                file: self.dir.clone(),
                source,
            })?;
            if listing.segments.is_empty() {
                // No segment yet: the first append gets the `next_seq` hint (0 for a new
                // queue).
                self.seq = first_to_come;
                self.pos = Pos::Pending { hint: None };
                return Ok(());
            }
            // The damaged headers before the first readable one: `(first, last, what is
            // wrong with the first)`.
            let mut damaged: Option<(u64, u64, String)> = None;
            for &n in &listing.segments {
                match self.open_segment(n) {
                    Ok(seg) => {
                        if let Some((first, last, what)) = damaged {
                            return Err(self.start_damaged(first, last, what, Some(&seg)));
                        }
                        self.seq = seg.first_seq;
                        let off = seg.layout.data_offset;
                        self.pos = Pos::At { seg, off };
                        return Ok(());
                    }
                    // Deleted by retention since the listing: try the next one.
                    Err(SegOpenError::Missing) => continue,
                    // The oldest records are in it: found only to say where reading can go
                    // on.
                    Err(SegOpenError::Bad(what)) => match &mut damaged {
                        None => damaged = Some((n, n, what)),
                        Some((_, last, _)) => *last = n,
                    },
                    Err(e) => return Err(self.seg_error(e, n, 0)),
                }
            }
            if let Some((first, last, what)) = damaged {
                return Err(self.start_damaged(first, last, what, None));
            }
            // Every segment listed was deleted by retention since: list again.
        }
        Err(ReadError::Io {
            op: "find the first segment in",
            file: self.dir.clone(),
            source: std::io::Error::other("segments keep disappearing while listed"),
        })
    }

    /// The error of a seek to the start when the oldest segments, `first..=last`, have
    /// damaged headers (`what` is wrong with the first's): the oldest records are in them,
    /// at sequence numbers no header tells. It names the first; `readable` is the first
    /// readable segment after them, where reading can go on.
    fn start_damaged(
        &self,
        first: u64,
        last: u64,
        mut what: String,
        readable: Option<&Segment>,
    ) -> ReadError {
        if last == first + 1 {
            what.push_str(&format!(" (the header of segment {last} is damaged too)"));
        } else if last > first {
            let from = first + 1;
            what.push_str(&format!(
                " (the headers of segments {from} to {last} are damaged too)"
            ));
        }
        what.push_str("; sought: the start of the queue, whose oldest records are in it");
        match readable {
            Some(seg) => what.push_str(&format!(
                " (segment {}, the first readable one, starts at sequence number {}: seek there \
                 to read on)",
                seg.number, seg.first_seq
            )),
            None => what.push_str(" (no later segment is readable)"),
        }
        // Where the damaged segment starts is unknown: 0, as `verify` reports it.
        self.seg_error(SegOpenError::Bad(what), first, 0)
    }

    fn seek_end(&mut self) -> Result<(), ReadError> {
        // Fast path: the hints name the last record; check it, then walk to the end.
        if let Some((next, last)) = self.meta.hints() {
            if last != 0 {
                let (n, off) = unpack_position(last);
                if let Ok(seg) = self.open_segment(n) {
                    if seg.layout.is_record_offset(off) {
                        let h = seg.read_header(off)?;
                        if h.seq < next {
                            if let Probe::Data { next: after, .. } = seg.probe(off, h.seq, None)? {
                                let end = seg.walk(after, h.seq + 1, None)?;
                                return self.settle_end(seg, end.off, end.seq, end.stop);
                            }
                        }
                    }
                }
            }
        }
        // Slow path: the last segment, from its last index entry.
        let mut attempts = 8;
        let seg = loop {
            let listing = list_dir(&self.dir).map_err(|source| ReadError::Io {
                op: "list",
                file: self.dir.clone(),
                source,
            })?;
            let Some(&n) = listing.segments.last() else {
                return self.seek_start();
            };
            match self.open_segment(n) {
                Ok(seg) => break seg,
                Err(SegOpenError::Bad(what)) => {
                    return Err(self.end_damaged(n, what, &listing.segments))
                }
                // The appender rolled, and retention deleted it, since the listing.
                Err(SegOpenError::Missing) if attempts > 0 => attempts -= 1,
                Err(e) => return Err(self.seg_error(e, n, self.meta.raw_next_seq())),
            }
        };
        let (off, seq) = seg.last_indexed()?;
        let end = seg.walk(off, seq, None)?;
        self.settle_end(seg, end.off, end.seq, end.stop)
    }

    /// The error of a seek to the end when the last segment, `n` (of the listing `segs`),
    /// has a damaged header (`what`): the end of the log is in it, at a sequence number no
    /// header tells. The sequence number reported is where the segment should start (where
    /// the segment before it ends), or 0 when that is unknown too.
    fn end_damaged(&self, n: u64, what: String, segs: &[u64]) -> ReadError {
        let start = n
            .checked_sub(1)
            .filter(|prev| segs.contains(prev))
            .and_then(|prev| self.open_segment(prev).ok())
            .and_then(|prev| {
                let (off, seq) = prev.last_indexed().ok()?;
                match prev.walk(off, seq, None).ok()?.stop {
                    Probe::End { next_seq } => Some(next_seq),
                    _ => None,
                }
            });
        let what = format!("{what}; sought: the end of the queue, which is in it");
        self.seg_error(SegOpenError::Bad(what), n, start.unwrap_or(0))
    }

    fn settle_end(
        &mut self,
        seg: Segment,
        off: u64,
        seq: u64,
        stop: Probe,
    ) -> Result<(), ReadError> {
        self.seq = seq;
        self.pos = match stop {
            Probe::End { .. } => Pos::Pending {
                hint: Some(seg.number + 1),
            },
            // At the end, or at damage at the tail, which reads will report.
            _ => Pos::At { seg, off },
        };
        Ok(())
    }

    fn open_segment(&self, n: u64) -> Result<Segment, SegOpenError> {
        Segment::open(&segment_path(&self.dir, n), n, self.layout, false)
    }

    /// The error of segment `n` failing to open, for a read or seek of `seq`.
    fn seg_error(&self, e: SegOpenError, n: u64, seq: u64) -> ReadError {
        let file = segment_path(&self.dir, n);
        match e {
            SegOpenError::Missing => ReadError::Io {
                op: "open segment",
                file,
                source: std::io::ErrorKind::NotFound.into(),
            },
            SegOpenError::Bad(what) => ReadError::Corrupt(Corruption {
                file,
                segment: n,
                offset: 0,
                seq,
                reason: CorruptReason::BadSegment { what },
            }),
            SegOpenError::Map(e) => ReadError::Map(e),
            SegOpenError::Access(e) => ReadError::Access(e),
        }
    }

    /// Finds the segment and offset of `seq`.
    fn locate(&self, seq: u64) -> Result<Located, ReadError> {
        self.locate_within(seq, 8)
    }

    /// [`locate`](Self::locate), starting over (at most `attempts` times) when retention
    /// deletes a segment between the listing and the opening, or when the segment after the
    /// last one listed was published since the listing.
    ///
    /// The segment is found by a binary search over the headers that can be read. A
    /// damaged header says nothing of where its segment starts: the nearest readable header
    /// in the range searched stands in for it, so a damaged segment only matters to a
    /// sequence number that can be nowhere else (it is then reported, naming the first
    /// damaged segment of the run that must hold it).
    fn locate_within(&self, seq: u64, attempts: u32) -> Result<Located, ReadError> {
        let again = || {
            if attempts == 0 {
                Err(ReadError::Io {
                    op: "find a segment in",
                    file: self.dir.clone(),
                    source: std::io::Error::other("segments keep disappearing while listed"),
                })
            } else {
                self.locate_within(seq, attempts - 1)
            }
        };
        let listing = list_dir(&self.dir).map_err(|source| ReadError::Io {
            op: "list",
            file: self.dir.clone(),
            source,
        })?;
        let segs = &listing.segments;
        if segs.is_empty() {
            return Ok(Located::NotYet { hint: None });
        }
        // Invariants: `below` is a readable segment (with its index) whose first sequence
        // number is <= seq, `above` the index of a readable one whose first sequence number
        // (`above_first`) is > seq, or `segs.len()`; `damaged` holds the indices (and what
        // is wrong) of the headers found damaged. Each segment is opened at most once.
        let mut below: Option<(usize, Segment)> = None;
        let (mut above, mut above_first) = (segs.len(), u64::MAX);
        let mut damaged: Vec<(usize, String)> = Vec::new();
        loop {
            let lo = below.as_ref().map_or(0, |(i, _)| i + 1);
            if lo >= above {
                break;
            }
            let mid = lo + (above - lo) / 2;
            let mut readable = None;
            for k in outward(mid, lo, above) {
                if damaged.iter().any(|(i, _)| *i == k) {
                    continue;
                }
                match self.open_segment(segs[k]) {
                    Ok(s) => {
                        readable = Some((k, s));
                        break;
                    }
                    // Deleted by retention just now: start over.
                    Err(SegOpenError::Missing) => return again(),
                    Err(SegOpenError::Bad(what)) => damaged.push((k, what)),
                    Err(e) => return Err(self.seg_error(e, segs[k], seq)),
                }
            }
            match readable {
                // Every header in `lo..above` is damaged.
                None => break,
                Some((k, s)) if s.first_seq <= seq => below = Some((k, s)),
                Some((k, s)) => (above, above_first) = (k, s.first_seq),
            }
        }
        // Between `below` and `above`, only damaged segments.
        let run = below.as_ref().map_or(0, |(i, _)| i + 1)..above;
        let Some((_, seg)) = below else {
            if run.is_empty() {
                // The oldest segment starts after `seq`.
                return Ok(Located::Gone {
                    first_available: above_first,
                });
            }
            // `seq` is in the damaged segments at the start, or was deleted before them:
            // which, their headers cannot tell.
            return Err(self.damaged_run(segs, run, &damaged, seq));
        };
        #[cfg(test)]
        if let Some(hook) = LOCATE_HOOK.with(|h| h.borrow_mut().take()) {
            hook();
        }
        let (mut off, mut at) = seg.index_start(seq)?;
        loop {
            let end = seg.walk(off, at, Some(seq))?;
            let next_seq = match end.stop {
                // The end marker carries the sequence number the next segment starts with:
                // `seq` is not in this segment (standing at the marker, reads would go
                // round it, the missing next segment and this lookup for ever).
                _ if end.reached => match seg.probe(end.off, seq, None)? {
                    Probe::End { .. } => seq,
                    _ => {
                        return Ok(Located::At {
                            seg,
                            off: end.off,
                            seq,
                        })
                    }
                },
                Probe::End { next_seq } => next_seq,
                Probe::Empty { .. } => return Ok(Located::PastEnd { next: end.seq }),
                Probe::Data { .. } => unreachable!("walk stops only on non-data"),
                Probe::Bad(_) => {
                    // Damage before `seq`: look past it.
                    match seg.resync(end.off, end.seq + 1)? {
                        Some((r_off, h)) if h.seq <= seq => {
                            off = r_off;
                            at = h.seq;
                            continue;
                        }
                        // `seq` is inside the damage: stand at it, reads report it.
                        _ => {
                            return Ok(Located::At {
                                seg,
                                off: end.off,
                                seq: end.seq,
                            })
                        }
                    }
                }
            };
            // `seq` is after this segment. The next one is damaged: it holds `seq`, or a
            // later damaged one of the run does (`seq` is below `above_first`).
            if !run.is_empty() && segs[run.start] == seg.number + 1 {
                return Err(self.damaged_run(segs, run, &damaged, seq));
            }
            let located = self.after_end(&seg, next_seq, seq, segs)?;
            let next = seg.number + 1;
            if !segs.contains(&next) {
                // Retention deleted `seg` since the listing: the log went on after it (the
                // last segment is never deleted), maybe beyond `next`, deleted too. `seq` is
                // then gone, or in a later segment: not past the end, nor to be waited for
                // in `next`.
                if os::file::lstat(&seg.path).is_err() {
                    return again();
                }
                // A roll published the next segment since the listing: `seq` may be there
                // (when rolls keep coming, "past the end" stays true of the listing's
                // time).
                if let Located::PastEnd { .. } = located {
                    if attempts > 0 && os::file::lstat(&segment_path(&self.dir, next)).is_ok() {
                        return self.locate_within(seq, attempts - 1);
                    }
                }
            }
            return Ok(located);
        }
    }

    /// The error of a seek to `seq`, which can only be in the segments `segs[run]`, whose
    /// headers are damaged (`damaged` says what is wrong with each): it names the first.
    fn damaged_run(
        &self,
        segs: &[u64],
        run: std::ops::Range<usize>,
        damaged: &[(usize, String)],
        seq: u64,
    ) -> ReadError {
        let n = segs[run.start];
        let mut what = damaged
            .iter()
            .find(|(i, _)| *i == run.start)
            .map_or_else(|| "its header is damaged".to_string(), |(_, w)| w.clone());
        if run.len() > 1 {
            let (a, b) = (segs[run.start + 1], segs[run.end - 1]);
            let also = if a == b {
                format!("the header of segment {a} is")
            } else {
                format!("the headers of segments {a} to {b} are")
            };
            what.push_str(&format!(
                " ({also} damaged too: sequence number {seq} is in one of these segments)"
            ));
        }
        self.seg_error(SegOpenError::Bad(what), n, seq)
    }

    /// Where `seq` is when the segment `seg` that should hold it ends (its end marker says
    /// the log continues at `next_seq` in segment `seg.number + 1`) and the listing
    /// `segs` has no segment `seg.number + 1`. Normally that segment is being published
    /// (the appender is between its end marker and the rename, or died there and the next
    /// appender will finish the roll): wait for it, or `seq` is past the end. But when a
    /// later segment exists, the next one was published and has since been deleted or
    /// lost (retention deletes oldest first, so not while `seg` is still there): damage,
    /// reported, never taken for the end of the log.
    fn after_end(
        &self,
        seg: &Segment,
        next_seq: u64,
        seq: u64,
        segs: &[u64],
    ) -> Result<Located, ReadError> {
        let next = seg.number + 1;
        let later = segs.iter().copied().find(|&m| m > next);
        if let Some(later) = later {
            // `later` was made after `next` was published. A listing can miss a file
            // renamed into place while it is read, so `next` is looked up again (after
            // the listing saw `later`: it must be there by now), then `seg`: still there,
            // it means retention did not delete `next` (it deletes oldest first).
            if !segs.contains(&next)
                && os::file::lstat(&segment_path(&self.dir, next)).is_err()
                && os::file::lstat(&seg.path).is_ok()
            {
                return Err(ReadError::Corrupt(Corruption {
                    file: segment_path(&self.dir, next),
                    segment: next,
                    offset: 0,
                    seq: next_seq,
                    reason: CorruptReason::BadSegment {
                        what: format!(
                            "it is missing, but segment {later} exists: the records from \
                             sequence number {next_seq} up to segment {later} are lost"
                        ),
                    },
                }));
            }
        }
        Ok(if next_seq == seq {
            Located::NotYet { hint: Some(next) }
        } else {
            Located::PastEnd { next: next_seq }
        })
    }

    /// The automatic acknowledgement, made when the next record is asked for and on drop.
    /// A record withheld (see [`store_ackable`](Self::store_ackable)) is not reported here:
    /// the read that comes next reports the poisoned segment, and a drop cannot.
    fn auto_ack(&self) -> Result<(), ReadError> {
        if self.ack == AckMode::Auto {
            if let Some(n) = &self.named {
                self.store_ackable(n)?;
            }
        }
        Ok(())
    }

    /// Stores the position (`self.seq`) in `n`, unless the last record returned may not
    /// have been read intact: then it stores that record's sequence number and returns the
    /// segment it was read from, whose mapping is poisoned.
    ///
    /// On the happy path this adds one load of the poison flag every access of the mapping
    /// already checks (next to the two stores and the clock read of `Named::store`); the
    /// rest is out of line.
    #[inline]
    fn store_ackable(&self, n: &Named) -> Result<Option<(u64, &Segment)>, AccessError> {
        match &self.pos {
            Pos::At { seg, .. } if seg.map().is_poisoned() => self.store_withholding(n, seg),
            _ => n.store(self.seq).map(|()| None),
        }
    }

    /// [`store_ackable`](Self::store_ackable) when the mapping of `seg`, the segment being
    /// read, is poisoned: someone truncated the file under it (or the kernel could not
    /// supply a page of it), and a read of it touched what was lost.
    ///
    /// Only the last record returned, `self.seq - 1`, can have been read from the poisoned
    /// mapping: a [`Record`] borrows the tailer, so each one before it was read before the
    /// next was asked for, and asking probes the next record (or the end marker before the
    /// next segment) in the mapping the record came from, which fails once it is poisoned.
    /// So everything before it is acknowledged, and it is not. A record returned from a
    /// segment is always from the one the tailer stands in: reads move to the next
    /// segment only when the next record is asked for, and seeks store their position.
    /// When the position stored is already `self.seq` (the record was acknowledged before
    /// the poisoning), nothing is withheld; the position never moves back.
    #[cold]
    #[inline(never)]
    fn store_withholding<'s>(
        &self,
        n: &Named,
        seg: &'s Segment,
    ) -> Result<Option<(u64, &'s Segment)>, AccessError> {
        let stored = n.load()?;
        if stored >= self.seq {
            return Ok(None);
        }
        let last = self.seq - 1;
        if last > stored {
            n.store(last)?;
        }
        Ok(Some((last, seg)))
    }

    /// Acknowledges every record returned so far: a named tailer reopened later starts
    /// after them. A no-op for anonymous tailers. The position is stored in a shared
    /// mapping (it survives a crash of this process at once, a machine crash after
    /// [`sync_position`](Self::sync_position)).
    ///
    /// A record whose read may not have completed intact is never acknowledged: when the
    /// segment the last record came from was truncated under the tailer and a read touched
    /// what was lost (its mapping is poisoned: [`AccessError::Truncated`], or
    /// [`AccessError::Fault`] for a page the kernel could not supply), every record before
    /// it is acknowledged and it is not ([`AckError::NotIntact`]). The automatic
    /// acknowledgements of [`AckMode::Auto`] withhold it the same way.
    ///
    /// # Errors
    /// [`AckError::Access`] if the position file was truncated under us,
    /// [`AckError::NotIntact`] when the last record returned was withheld.
    ///
    /// # Example
    /// See [`AckMode`] and [`AckError`].
    pub fn ack(&mut self) -> Result<(), AckError> {
        if let Some(n) = &self.named {
            let withheld = self.store_ackable(n).map_err(|source| AckError::Access {
                file: tailer_path(&self.dir, &n.name),
                source,
            })?;
            if let Some((seq, seg)) = withheld {
                return Err(not_intact(seq, seg));
            }
        }
        Ok(())
    }

    /// Writes the stored position back to disk (`msync`). A no-op for anonymous tailers.
    ///
    /// # Errors
    /// [`SyncPositionError::Access`] if the position file was truncated under us,
    /// [`SyncPositionError::Sync`] if `msync` fails.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// # mapipc::queue::Appender::open(&q)?;
    /// let mut t = mapipc::queue::TailerOptions::new().name("n").open(&q)?;
    /// t.ack()?;
    /// t.sync_position()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_position(&self) -> Result<(), SyncPositionError> {
        if let Some(n) = &self.named {
            let file = || tailer_path(&self.dir, &n.name);
            n.map.flush().map_err(|e| match e {
                FlushError::Access(source) => SyncPositionError::Access {
                    file: file(),
                    source,
                },
                FlushError::Os { source, .. } => SyncPositionError::Sync {
                    file: file(),
                    source,
                },
            })?;
        }
        Ok(())
    }

    /// Reads the next record if there is one, without waiting.
    ///
    /// # Errors
    /// [`ReadError::Corrupt`] (the position stays on the damaged record),
    /// [`ReadError::Gone`] when the position was deleted by retention, I/O errors.
    ///
    /// # Example
    /// See [`Tailer`].
    pub fn try_next(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        self.auto_ack()?;
        match self.advance()? {
            Some((off, len, seq)) => Ok(Some(self.record(off, len, seq))),
            None => Ok(None),
        }
    }

    /// Reads the next record, waiting for it as long as it takes.
    ///
    /// Spins briefly ([`TailerOptions::spin`]), then parks on the queue's notifier word
    /// (a futex in `queue.meta`) until the appender publishes something.
    ///
    /// # Errors
    /// As [`try_next`](Self::try_next), and [`ReadError::Wait`] if the futex wait fails.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// let mut app = mapipc::queue::Appender::open(&q)?;
    /// let mut t = mapipc::queue::Tailer::open(&q)?;
    /// let writer = std::thread::spawn(move || app.append(b"wake up").map(|_| ()));
    /// assert_eq!(t.next_blocking()?.to_vec()?, b"wake up");
    /// writer.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_blocking(&mut self) -> Result<Record<'_>, ReadError> {
        loop {
            if let Some((off, len, seq)) = self.next_inner(None)? {
                return Ok(self.record(off, len, seq));
            }
        }
    }

    /// Reads the next record, waiting at most `timeout` for it; `None` on timeout.
    ///
    /// # Errors
    /// As [`next_blocking`](Self::next_blocking).
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// # mapipc::queue::Appender::open(&q)?;
    /// let mut t = mapipc::queue::Tailer::open(&q)?;
    /// assert!(t.next_timeout(Duration::from_millis(10))?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record<'_>>, ReadError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.next_until(deadline),
            None => self.next_blocking().map(Some),
        }
    }

    /// Reads the next record, waiting until `deadline` at most; `None` when it passed.
    ///
    /// # Errors
    /// As [`next_blocking`](Self::next_blocking).
    ///
    /// # Example
    /// ```
    /// use std::time::{Duration, Instant};
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// # mapipc::queue::Appender::open(&q)?.append(b"x")?;
    /// let mut t = mapipc::queue::Tailer::open(&q)?;
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// assert!(t.next_until(deadline)?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_until(&mut self, deadline: Instant) -> Result<Option<Record<'_>>, ReadError> {
        match self.next_inner(Some(deadline))? {
            Some((off, len, seq)) => Ok(Some(self.record(off, len, seq))),
            None => Ok(None),
        }
    }

    fn next_inner(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<(u64, u32, u64)>, ReadError> {
        self.auto_ack()?;
        loop {
            let seen = self.meta.notify_epoch();
            if let Some(r) = self.advance()? {
                return Ok(Some(r));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            self.wait_change(seen, deadline)?;
        }
    }

    fn record(&self, off: u64, len: u32, seq: u64) -> Record<'_> {
        let Pos::At { seg, .. } = &self.pos else {
            unreachable!("advance returns a record only while positioned in its segment")
        };
        Record {
            map: seg.map(),
            off: off + RECORD_HEADER_SIZE,
            len: len as usize,
            seq,
        }
    }

    /// One step: returns the record at the position and moves past it, or `None` when there
    /// is none yet.
    fn advance(&mut self) -> Result<Option<(u64, u32, u64)>, ReadError> {
        loop {
            let (probe, off, number) = match &self.pos {
                Pos::Pending { hint } => {
                    let hint = *hint;
                    if self.resolve(hint)? {
                        continue;
                    }
                    return Ok(None);
                }
                Pos::At { seg, off } => (seg.probe(*off, self.seq, None)?, *off, seg.number),
            };
            match probe {
                Probe::Data { len, next } => {
                    let seq = self.seq;
                    if let Pos::At { off: o, .. } = &mut self.pos {
                        *o = next;
                    }
                    self.seq += 1;
                    return Ok(Some((off, len, seq)));
                }
                Probe::End { .. } => {
                    self.pos = Pos::Pending {
                        hint: Some(number + 1),
                    };
                }
                Probe::Empty { .. } => {
                    if self.committed_beyond()? {
                        return Err(self.corrupt(off, CorruptReason::Uncommitted));
                    }
                    return Ok(None);
                }
                Probe::Bad(reason) => return Err(self.corrupt(off, reason)),
            }
        }
    }

    /// Whether the appender has published records beyond an empty slot at our position:
    /// then the slot is damage (a lost commit), not the end of the log. The hint is
    /// published after the commit word, so re-probing after reading it is conclusive.
    fn committed_beyond(&self) -> Result<bool, ReadError> {
        let Some((next, _)) = self.meta.hints() else {
            return Ok(false);
        };
        if next <= self.seq {
            return Ok(false);
        }
        let Pos::At { seg, off } = &self.pos else {
            return Ok(false);
        };
        Ok(matches!(
            seg.probe(*off, self.seq, None)?,
            Probe::Empty { .. }
        ))
    }

    fn corrupt(&self, off: u64, reason: CorruptReason) -> ReadError {
        let (file, segment) = match &self.pos {
            Pos::At { seg, .. } => (seg.path.clone(), seg.number),
            Pos::Pending { hint } => (
                segment_path(&self.dir, hint.unwrap_or(0)),
                hint.unwrap_or(0),
            ),
        };
        ReadError::Corrupt(Corruption {
            file,
            segment,
            offset: off,
            seq: self.seq,
            reason,
        })
    }

    /// Waits until the notifier's epoch moves past `seen` (an append or a roll happened),
    /// or the deadline passes: spin, then park on the futex. Without a writable metadata
    /// file (a queue we may only read) there is no word to register on: it polls every
    /// millisecond instead.
    ///
    /// While it waits it checks, every check interval, that the segment it reads was not
    /// truncated under it (no append could ever come then): that ends the wait with the
    /// corruption.
    fn wait_change(&self, seen: Option<u32>, deadline: Option<Instant>) -> Result<(), ReadError> {
        if let (Some(word), Some(seen)) = (self.meta.notify_word(), seen) {
            let n = Notifier::new(word);
            let intact = || self.segment_shrunk().is_none();
            let mut opts = WaitOptions::new();
            opts.spin(self.spin).alive(&intact);
            if let Some(d) = deadline {
                opts.deadline(d);
            }
            return match n.wait_until(|| (n.epoch() != seen).then_some(()), &opts) {
                // The caller re-checks the log and the deadline either way.
                Ok(()) | Err(WaitError::TimedOut) => Ok(()),
                Err(WaitError::PeerGone) => self.check_segment_size(),
                Err(WaitError::Os(source)) => Err(ReadError::Wait {
                    dir: self.dir.clone(),
                    source,
                }),
            };
        }
        self.check_segment_size()?;
        let step = Duration::from_millis(1);
        let nap = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(step),
            None => step,
        };
        os::process::sleep(nap);
        Ok(())
    }

    /// The segment being read, if any, and what is wrong when its file was truncated.
    fn segment_shrunk(&self) -> Option<(&Segment, String)> {
        match &self.pos {
            Pos::At { seg, .. } => seg.shrunk().map(|what| (seg, what)),
            Pos::Pending { .. } => None,
        }
    }

    /// `Err(Corrupt)` when the segment being read was truncated under us.
    fn check_segment_size(&self) -> Result<(), ReadError> {
        match self.segment_shrunk() {
            None => Ok(()),
            Some((seg, what)) => Err(ReadError::Corrupt(Corruption {
                file: seg.path.clone(),
                segment: seg.number,
                offset: 0,
                seq: self.seq,
                reason: CorruptReason::BadSegment { what },
            })),
        }
    }

    /// Tries to open the segment holding `self.seq`; returns whether the tailer is now
    /// positioned.
    fn resolve(&mut self, hint: Option<u64>) -> Result<bool, ReadError> {
        if let Some(n) = hint {
            match self.open_segment(n) {
                Ok(seg) if seg.first_seq == self.seq => {
                    let off = seg.layout.data_offset;
                    self.pos = Pos::At { seg, off };
                    return Ok(true);
                }
                Ok(seg) => {
                    let what = format!(
                        "it starts at sequence number {}, but the previous segment ends at {}",
                        seg.first_seq, self.seq
                    );
                    return Err(ReadError::Corrupt(Corruption {
                        file: seg.path.clone(),
                        segment: n,
                        offset: 0,
                        seq: self.seq,
                        reason: CorruptReason::BadSegment { what },
                    }));
                }
                Err(SegOpenError::Missing) => {}
                Err(e) => return Err(self.seg_error(e, n, self.seq)),
            }
        }
        match self.locate(self.seq)? {
            Located::At { seg, off, seq } => {
                self.pos = Pos::At { seg, off };
                self.seq = seq;
                Ok(true)
            }
            Located::NotYet { hint: h } => {
                if h.is_some() && h == hint {
                    // The next segment is still being published (or the appender died
                    // mid-roll and the next one will publish it).
                    self.pos = Pos::Pending { hint: h };
                    return Ok(false);
                }
                self.pos = Pos::Pending { hint: h };
                Ok(false)
            }
            Located::PastEnd { .. } => Ok(false),
            Located::Gone { first_available } => Err(ReadError::Gone {
                dir: self.dir.clone(),
                seq: self.seq,
                first_available,
            }),
        }
    }

    /// After [`ReadError::Corrupt`], moves past the damage to the next valid record: past
    /// the damaged record when its framing is intact, else to the next record whose header
    /// and CRC check out in this segment, else to the next segment. Returns what was
    /// skipped, or `None` when nothing valid follows yet (the damage is at the end of the
    /// log; try again after more appends) or there was no damage.
    ///
    /// Segments after the damage whose headers are damaged too, or that are missing, are
    /// skipped as well (one call gets past a run of them).
    ///
    /// # Errors
    /// I/O errors, and [`ReadError::Corrupt`] when the next readable segment does not start
    /// after the damage.
    ///
    /// # Example
    /// ```
    /// use mapipc::queue::{Appender, ReadError, Tailer};
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// let mut app = Appender::open(&q)?;
    /// for m in [b"aaaa", b"bbbb", b"cccc"] { app.append(m)?; }
    /// # drop(app);
    /// # let seg = std::fs::read_dir(&q)?.map(|e| e.unwrap().path())
    /// #     .find(|p| p.extension().is_some_and(|e| e == "seg")).unwrap();
    /// # let mut bytes = std::fs::read(&seg)?;
    /// # let pos = bytes.windows(4).position(|w| w == b"bbbb").unwrap();
    /// # bytes[pos] ^= 0xff;
    /// # std::fs::write(&seg, &bytes)?;
    /// // ... a byte of record 1 flips on disk ...
    /// let mut t = Tailer::open(&q)?;
    /// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"aaaa");
    /// let err = t.try_next().unwrap_err();
    /// assert!(matches!(&err, ReadError::Corrupt(c) if c.seq == 1));
    /// assert!(err.to_string().contains("CRC mismatch"));
    /// let skipped = t.skip_corrupt()?.unwrap();
    /// assert_eq!((skipped.first, skipped.next), (1, 2));
    /// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"cccc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn skip_corrupt(&mut self) -> Result<Option<Skipped>, ReadError> {
        let first = self.seq;
        let (seg_number, off) = match &self.pos {
            Pos::At { seg, off } => (seg.number, *off),
            Pos::Pending { hint } => {
                // A damaged next-segment header: skip to the segment after it.
                let n = match *hint {
                    Some(n) => n,
                    // Not positioned yet (a named tailer resumes lazily): where a read
                    // reported the damage, a damaged or missing segment, is found again.
                    None => match self.locate(first) {
                        Err(ReadError::Corrupt(Corruption {
                            segment,
                            reason: CorruptReason::BadSegment { .. },
                            ..
                        })) => segment,
                        Err(e) => return Err(e),
                        Ok(_) => return Ok(None),
                    },
                };
                return self.skip_to_segment(n + 1, first);
            }
        };
        let Pos::At { seg, .. } = &self.pos else {
            unreachable!()
        };
        let probe = seg.probe(off, first, None)?;
        match probe {
            Probe::Data { .. } | Probe::End { .. } => return Ok(None),
            Probe::Empty { .. } if !self.committed_beyond()? => return Ok(None),
            _ => {}
        }
        // Framing intact (only the CRC or the commit word is bad): step over the record if
        // the next one then checks out.
        let h = seg.read_header(off)?;
        let after = off + super::format::record_size(h.len.into());
        if h.seq == first && after <= seg.layout.data_end() {
            if let Probe::Data { .. } | Probe::End { .. } = seg.probe(after, first + 1, None)? {
                if let Pos::At { off: o, .. } = &mut self.pos {
                    *o = after;
                }
                self.seq = first + 1;
                return Ok(Some(Skipped {
                    first,
                    next: first + 1,
                }));
            }
        }
        match seg.resync(off, first + 1)? {
            Some((r_off, r)) => {
                if let Pos::At { off: o, .. } = &mut self.pos {
                    *o = r_off;
                }
                self.seq = r.seq;
                Ok(Some(Skipped { first, next: r.seq }))
            }
            None => self.skip_to_segment(seg_number + 1, first),
        }
    }

    /// Moves to the start of segment `n`, or of the first readable one after it: segments
    /// missing in the middle, or whose headers are damaged, are skipped as well.
    fn skip_to_segment(&mut self, mut n: u64, first: u64) -> Result<Option<Skipped>, ReadError> {
        let mut listing: Option<Vec<u64>> = None;
        loop {
            match self.open_segment(n) {
                Ok(seg) if seg.first_seq > first => {
                    let next = seg.first_seq;
                    let off = seg.layout.data_offset;
                    self.pos = Pos::At { seg, off };
                    self.seq = next;
                    return Ok(Some(Skipped { first, next }));
                }
                Ok(seg) => {
                    let what = format!(
                        "it starts at sequence number {}, not after {first}",
                        seg.first_seq
                    );
                    return Err(ReadError::Corrupt(Corruption {
                        file: seg.path.clone(),
                        segment: n,
                        offset: 0,
                        seq: first,
                        reason: CorruptReason::BadSegment { what },
                    }));
                }
                // A damaged header too, or segments missing in the middle: go on with the
                // next segment there is.
                Err(SegOpenError::Bad(_) | SegOpenError::Missing) => {
                    if listing.is_none() {
                        let l = list_dir(&self.dir).map_err(|source| ReadError::Io {
                            op: "list",
                            file: self.dir.clone(),
                            source,
                        })?;
                        listing = Some(l.segments);
                    }
                    let later = listing.as_deref().unwrap_or_default();
                    match later.iter().copied().find(|&m| m > n) {
                        Some(m) => n = m,
                        // Damage at the end of the log: nothing valid follows yet.
                        None => return Ok(None),
                    }
                }
                Err(e) => return Err(self.seg_error(e, n, first)),
            }
        }
    }
}

/// The error of an acknowledgement that withheld record `seq`, read from `seg`, whose
/// mapping is poisoned.
#[cold]
fn not_intact(seq: u64, seg: &Segment) -> AckError {
    let map = seg.map();
    AckError::NotIntact {
        file: seg.path.clone(),
        seq,
        source: map
            .poison_error()
            .unwrap_or_else(|| AccessError::Truncated {
                file: map.file_name().to_string(),
            }),
    }
}

/// The indices of `lo..hi` from `mid` outwards: `mid`, `mid + 1`, `mid - 1`, `mid + 2`, …
fn outward(mid: usize, lo: usize, hi: usize) -> impl Iterator<Item = usize> {
    let span = hi - lo;
    (0..2 * span).filter_map(move |j| {
        let d = j / 2 + j % 2;
        if j % 2 == 1 {
            mid.checked_add(d).filter(|&k| k < hi)
        } else {
            mid.checked_sub(d).filter(|&k| k >= lo)
        }
    })
}

impl Drop for Tailer {
    fn drop(&mut self) {
        // At-least-once: whatever was returned before the drop has been handled.
        let _ = self.auto_ack();
    }
}

/// Opens an existing tailer position file and locks it; `None` when it does not exist.
fn open_tailer_file(path: &Path, name: &str) -> Result<Option<Named>, OpenError> {
    let map = match MapOptions::new()
        .read_write()
        .len(TAILER_FILE_SIZE as usize)
        .map_path(path)
    {
        Ok(m) => m,
        Err(MapError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(MapError::RangePastEnd { file_len, .. })
        | Err(MapError::OffsetPastEnd { file_len, .. }) => {
            return Err(OpenError::BadTailer {
                file: path.to_path_buf(),
                why: format!("the file is {file_len} bytes, expected {TAILER_FILE_SIZE}"),
            })
        }
        Err(MapError::EmptyFile { .. }) => {
            return Err(OpenError::BadTailer {
                file: path.to_path_buf(),
                why: "the file is empty".to_string(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    // The header is checked only under the lock: a copy of it made without the lock can
    // be torn by the tailer holding it, which may be upgrading the file (the version, then
    // the CRC: a copy reading the old version and the new CRC matches neither), and the
    // name is then busy, not damaged.
    let fd = map.file_fd().ok_or_else(|| OpenError::BadTailer {
        file: path.to_path_buf(),
        why: "no file behind the mapping".to_string(),
    })?;
    let locked = os::file::ofd_lock(fd, 0, 1, false).map_err(|source| OpenError::Io {
        op: "lock",
        file: path.to_path_buf(),
        source,
    })?;
    if !locked {
        return Err(OpenError::TailerBusy {
            name: name.to_string(),
            file: path.to_path_buf(),
        });
    }
    // Under the lock, nobody else writes the header.
    let mut header: TailerHeader = map.read_pod(0)?;
    let version = header.validate().map_err(|why| OpenError::BadTailer {
        file: path.to_path_buf(),
        why,
    })?;
    let named = Named {
        name: name.to_string(),
        map,
    };
    let pos = named.load_as(version)?;
    if pos >= super::format::MAX_SEQ {
        return Err(OpenError::BadTailer {
            file: path.to_path_buf(),
            why: format!("position {pos} is out of range"),
        });
    }
    if version != TAILER_FORMAT_VERSION {
        // A version-1 file: from now on it holds the complement, which builds that only
        // know version 1 would not keep in step with the position; they refuse version 2.
        // The position and its complement first, then the version (and the CRC over it: a
        // kill between the two leaves a header `validate` reads as version 1).
        named.store(pos)?;
        header.version = TAILER_FORMAT_VERSION;
        named.map.write_pod(TAILER_VERSION, &header.version)?;
        named
            .map
            .write_pod(TAILER_HEADER_CRC, &header.compute_crc())?;
    }
    Ok(Some(named))
}

/// Creates a tailer position file at `seq` (under a temporary name, moved into place with
/// `RENAME_NOREPLACE`; if another process created it first, that one is opened).
fn create_tailer_file(path: &Path, name: &str, seq: u64, meta: &Meta) -> Result<Named, OpenError> {
    let final_name = format!("{name}{}", super::format::TAILER_EXT);
    let tmp = tmpfile::create(
        &meta.dir,
        &final_name,
        meta.file_mode(),
        TAILER_FILE_SIZE,
        |map| {
            map.write_pod(0, &TailerHeader::new(seq, os::process::realtime_ns()))?;
            Ok(())
        },
    )?;
    let moved = os::storage::rename_noreplace(&tmp.path, path);
    if !matches!(moved, Ok(true)) {
        let _ = os::file::unlink(&tmp.path);
    }
    // Releases the creation lock, now that the file is in place (or removed).
    drop(tmp);
    moved.map_err(|source| OpenError::Io {
        op: "create",
        file: path.to_path_buf(),
        source,
    })?;
    open_tailer_file(path, name)?.ok_or_else(|| OpenError::Io {
        op: "open",
        file: path.to_path_buf(),
        source: std::io::ErrorKind::NotFound.into(),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::queue::{retain, stat, QueueOptions, Retention};

    /// A queue of 64 KiB segments holding `records` records of 1000 bytes.
    fn queue(dir: &Path, records: u64) -> crate::queue::Appender {
        let mut app = QueueOptions::new()
            .segment_size(64 * 1024)
            .open_appender(dir)
            .unwrap();
        for _ in 0..records {
            app.append(&[7u8; 1000]).unwrap();
        }
        app
    }

    /// A seek lists the segments, opens the one that should hold the sequence number, and
    /// finds the end marker there. When meanwhile the appender rolled twice and retention
    /// deleted both that segment and the next one, the sequence number sought (past the
    /// opened segment's end) is gone or in the segment kept; the seek said "past the end"
    /// (the next segment was missing, and so was the opened one: no retry).
    #[test]
    fn retention_deleting_two_segments_during_a_seek_is_gone_not_past_end() {
        // Where the segments start, from a queue built the same way.
        let tmp = tempfile::tempdir().unwrap();
        let probe = tmp.path().join("probe");
        drop(queue(&probe, 400));
        let firsts: Vec<u64> = stat(&probe)
            .unwrap()
            .segments
            .iter()
            .map(|s| s.first_seq)
            .collect();
        assert!(firsts.len() >= 4 && firsts[1] > 10, "{firsts:?}");
        // In segment 1 (deleted with segment 0), in segment 2 (kept), its first record.
        for (k, target) in [firsts[1] + 3, firsts[2] + 3, firsts[2]]
            .into_iter()
            .enumerate()
        {
            let dir = tmp.path().join(format!("q{k}"));
            let app = Rc::new(RefCell::new(queue(&dir, 10)));
            let mut t = Tailer::open(&dir).unwrap();
            let (d, a) = (dir.clone(), app.clone());
            let hook = move || {
                let mut app = a.borrow_mut();
                while stat(&d).unwrap().segments.len() < 3 {
                    app.append(&[7u8; 1000]).unwrap();
                }
                for _ in 0..5 {
                    app.append(&[7u8; 1000]).unwrap();
                }
                let report = retain(&d, Retention::new().max_segments(1)).unwrap();
                assert_eq!(report.deleted.len(), 2);
            };
            LOCATE_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
            let r = t.seek(StartAt::Seq(target));
            assert!(LOCATE_HOOK.with(|h| h.borrow().is_none()), "the hook ran");
            if target < firsts[2] {
                assert!(
                    matches!(r, Err(ReadError::Gone { seq, first_available, .. })
                        if seq == target && first_available == firsts[2]),
                    "seek to {target}: {r:?}"
                );
            } else {
                r.unwrap_or_else(|e| panic!("seek to {target}: {e}"));
                let rec = t.try_next().unwrap().unwrap();
                assert_eq!(rec.seq(), target);
            }
            drop(app);
        }
    }
}
