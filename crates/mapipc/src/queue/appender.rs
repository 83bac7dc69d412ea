//! The appender: crash recovery on open, copying and zero-copy appends, segment rolling with
//! preallocation, and the sync policies.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{AppendError, CorruptReason, Corruption, OpenError};
use super::format::{
    header_crc, prealloc_path, record_size, segment_path, RecordHeader, SegmentLayout,
    APPENDER_CLOSED, APPENDER_OPEN, DEFAULT_INDEX_INTERVAL, DEFAULT_SEGMENT_SIZE, FLAG_COMMITTED,
    KIND_DATA, KIND_END, MAX_SEGMENT_NUMBER, MAX_SEQ, RECORD_FLAGS, RECORD_HEADER_SIZE,
};
use super::meta::{Boot, Meta};
use super::repair::{self, SegmentRepair};
use super::segment::{Probe, Segment};
use super::{list_queue, notify_tailers, pack_position};
use crate::map::{AccessError, Bounds, MapError, MapOptions, Mmap};
use crate::os;

/// When appended records are written back to disk (`msync`). Whatever the policy, a
/// committed record survives a crash of the appending *process* (it is in the page cache);
/// the policy decides what survives a crash of the *machine*. See the
/// [module docs](super#durability).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use mapipc::queue::{QueueOptions, SyncPolicy};
/// # let dir = tempfile::tempdir()?;
/// let mut app = QueueOptions::new()
///     .sync(SyncPolicy::Batch { records: 100, interval: Duration::from_millis(5) })
///     .open_appender(dir.path().join("q"))?;
/// app.append(b"durable within 100 records or 5 ms")?;
/// app.sync()?; // or: everything pending is synced on drop
/// assert_eq!(app.synced_seq(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Never sync explicitly: the kernel writes dirty pages back on its own schedule
    /// (typically within 30 s). Fastest; a machine crash loses what was not written back.
    /// Rolls write nothing back either: [`Appender::sync`] writes back everything appended
    /// since the last one, in every segment rolled away from since.
    #[default]
    None,
    /// Group commit: one `msync` of everything appended since the previous one, when
    /// `records` records are pending or when an append finds the oldest pending record
    /// older than `interval`. There is no background thread: a pending record is synced by
    /// a later append, by [`Appender::sync`], or when the appender is dropped.
    Batch {
        /// Sync when this many records are pending (at least 1).
        records: u32,
        /// Sync when the oldest pending record is this old.
        interval: Duration,
    },
    /// `msync(MS_SYNC)` of every record before `append` / `commit` returns.
    Always,
}

impl SyncPolicy {
    /// The default group commit: every 1000 records or 10 ms.
    ///
    /// # Example
    /// See the [module docs](super).
    pub const BATCH: SyncPolicy = SyncPolicy::Batch {
        records: 1000,
        interval: Duration::from_millis(10),
    };
}

/// How to open (and, if needed, create) a queue for appending.
///
/// Defaults: create the queue if missing with [`DEFAULT_SEGMENT_SIZE`](super::DEFAULT_SEGMENT_SIZE)
/// segments, [`SyncPolicy::None`], fail at once if another appender holds the lock, files
/// created with mode `0o600` (directory `0o700`).
///
/// # Example
/// ```
/// use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
/// use mapipc::queue::{stat, OpenError, QueueOptions, SyncPolicy};
/// use mapipc::queue::{MAX_INDEX_INTERVAL, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("events");
/// // Open only, never create: there is no queue yet.
/// let err = QueueOptions::new().create(false).open_appender(&path).unwrap_err();
/// assert!(matches!(err, OpenError::NotAQueue { .. }));
/// // Sizes out of range are refused before anything is created:
/// for opts in [
///     QueueOptions::new().segment_size(MAX_SEGMENT_SIZE + 4096),
///     QueueOptions::new().index_interval(MAX_INDEX_INTERVAL + 1),
/// ] {
///     assert!(matches!(opts.open_appender(&path), Err(OpenError::InvalidOptions { .. })));
/// }
/// assert!(!path.exists());
///
/// let mut opts = QueueOptions::new();
/// opts.segment_size(MIN_SEGMENT_SIZE) // fixed when the queue is created
///     .index_interval(16) // a seek reads at most 16 record headers after the index
///     .sync(SyncPolicy::Always)
///     .mode(0o640); // the group may read (less the umask)
/// let mut app = opts.open_appender(&path)?;
/// assert_eq!(app.append(b"first")?, 0);
/// assert_eq!(app.synced_seq(), 1); // `Always`: on disk when `append` returns
/// let st = stat(&path)?;
/// assert_eq!((st.segment_size, st.index_interval), (MIN_SEGMENT_SIZE, 16));
/// // As any file created with mode 0o640 (the umask applies):
/// let probe = std::fs::OpenOptions::new().write(true).create(true).mode(0o640)
///     .open(dir.path().join("probe"))?;
/// let mode = |m: std::fs::Metadata| m.permissions().mode() & 0o777;
/// assert_eq!(mode(std::fs::metadata(path.join("queue.meta"))?), mode(probe.metadata()?));
///
/// // A queue keeps the segment size it was created with:
/// let err = QueueOptions::new().segment_size(2 * MIN_SEGMENT_SIZE).open_appender(&path);
/// assert!(matches!(err, Err(OpenError::SegmentSizeMismatch { existing: MIN_SEGMENT_SIZE, .. })));
///
/// // One appender at a time: a second one fails at once, or waits if asked.
/// let err = opts.open_appender(&path).unwrap_err();
/// assert!(matches!(err, OpenError::AppenderBusy { .. }));
/// let first = std::thread::spawn(move || drop(app));
/// let mut app = opts.wait_for_lock(true).open_appender(&path)?;
/// first.join().unwrap();
/// assert_eq!(app.append(b"second")?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct QueueOptions {
    segment_size: Option<u64>,
    index_interval: Option<u32>,
    sync: SyncPolicy,
    create: bool,
    wait_for_lock: bool,
    mode: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            segment_size: None,
            index_interval: None,
            sync: SyncPolicy::None,
            create: true,
            wait_for_lock: false,
            mode: 0o600,
        }
    }
}

impl QueueOptions {
    /// The defaults.
    ///
    /// # Example
    /// See [`QueueOptions`].
    pub fn new() -> QueueOptions {
        QueueOptions::default()
    }

    /// Segment size for a new queue (a multiple of 4096 from 64 KiB to 1 GiB; default
    /// 64 MiB). Opening an existing queue with a different size is an error
    /// ([`OpenError::SegmentSizeMismatch`]); leave it unset to accept any.
    ///
    /// # Example
    /// See [`QueueOptions`].
    pub fn segment_size(&mut self, bytes: u64) -> &mut Self {
        self.segment_size = Some(bytes);
        self
    }

    /// Records between two entries of a segment's sparse index, for a new queue (default
    /// 64): a seek reads at most this many record headers after the index lookup.
    ///
    /// # Example
    /// See [`QueueOptions`].
    pub fn index_interval(&mut self, records: u32) -> &mut Self {
        self.index_interval = Some(records);
        self
    }

    /// The sync policy (default [`SyncPolicy::None`]).
    ///
    /// # Example
    /// See [`QueueOptions`].
    pub fn sync(&mut self, policy: SyncPolicy) -> &mut Self {
        self.sync = policy;
        self
    }

    /// Whether to create the directory and the queue when missing (default true).
    ///
    /// # Example
    /// See [`QueueOptions`].
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Wait for the appender lock instead of failing with [`OpenError::AppenderBusy`].
    ///
    /// # Example
    /// See [`QueueOptions`].
    pub fn wait_for_lock(&mut self, wait: bool) -> &mut Self {
        self.wait_for_lock = wait;
        self
    }

    /// Permission bits of the files of a new queue (default `0o600`; the directory gets `x`
    /// where files get `r`), less the process's umask. Files added later (segments, tailer
    /// positions) get the permissions of the queue's metadata file.
    ///
    /// # Example
    /// See [`QueueOptions`].
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode & 0o777;
        self
    }

    /// Opens the queue in `dir` for appending, creating it if allowed, and runs crash
    /// recovery (see the [module docs](super#crash-recovery)); [`Appender::recovery`] says
    /// what it found.
    ///
    /// # Errors
    /// [`OpenError::AppenderBusy`] when another appender is running;
    /// [`OpenError::NotAQueue`] when `dir` is missing and creation is off;
    /// [`OpenError::InvalidOptions`], [`OpenError::SegmentSizeMismatch`],
    /// [`OpenError::BadMeta`], [`OpenError::BadSegment`] (a last segment whose header
    /// reads whole but does not fit the queue, or that is not a regular file; headers and
    /// files a crash can leave are repaired instead, see [`Recovery::segment_repairs`]);
    /// [`OpenError::Io`], [`OpenError::Map`] and [`OpenError::Access`] from the files.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut app = mapipc::queue::QueueOptions::new().open_appender(dir.path().join("q"))?;
    /// assert_eq!(app.next_seq(), 0);
    /// assert!(app.recovery().is_clean());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_appender(&self, dir: impl AsRef<Path>) -> Result<Appender, OpenError> {
        Appender::open_with(dir.as_ref(), self)
    }
}

/// What crash recovery found and did when an appender opened the queue.
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// let app = mapipc::queue::Appender::open(dir.path().join("q"))?;
/// let r = app.recovery();
/// assert!(r.is_clean() && r.cut.is_none() && r.damaged.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// Whether the previous appender had closed cleanly (false after a crash).
    pub clean_close: bool,
    /// Whether the machine rebooted since the previous appender opened the queue.
    pub rebooted: bool,
    /// Whether the rest of the last segment was checked and cleared (after a crash, a
    /// reboot, or damage at the tail).
    pub deep_scan: bool,
    /// The torn or damaged record cut off the end of the log, if any: it was never
    /// completely committed (or not completely written back before a machine crash).
    pub cut: Option<Corruption>,
    /// Damage found before the end of the log (valid records follow it). Not repaired:
    /// tailers report it when they reach it.
    pub damaged: Vec<Corruption>,
    /// Bytes of garbage zeroed after the end of the log.
    pub zeroed_bytes: u64,
    /// Repairs of segment files a machine crash can leave behind (a short file, an
    /// unreadable header), made before the records were checked, in order.
    pub segment_repairs: Vec<SegmentRepair>,
    /// The sequence number the next append gets.
    pub next_seq: u64,
    /// The segment appends continue in.
    pub segment: u64,
}

impl Recovery {
    /// Whether recovery found nothing to repair or report.
    ///
    /// # Example
    /// See [`Recovery`].
    pub fn is_clean(&self) -> bool {
        self.cut.is_none()
            && self.damaged.is_empty()
            && self.zeroed_bytes == 0
            && self.segment_repairs.is_empty()
    }
}

/// The sole writer of a queue. See the [module docs](super) for the format and guarantees.
///
/// The appender lock belongs to an open file description, which a `fork`ed child shares:
/// a child forked while an appender is open keeps the lock held until it exits (or execs),
/// even after the parent drops the appender. Fork before opening, or let the child exec.
///
/// # Example
/// ```
/// use mapipc::queue::{Appender, Tailer, DEFAULT_SEGMENT_SIZE};
/// # let dir = tempfile::tempdir()?;
/// let q = dir.path().join("q");
/// let mut app = Appender::open(&q)?;
/// assert!(app.recovery().is_clean()); // a new queue: nothing to recover
/// assert_eq!(app.dir(), q);
/// assert!(app.max_payload() < DEFAULT_SEGMENT_SIZE);
/// let seq = app.append(b"hello")?;
/// let mut grant = app.reserve(5)?; // zero-copy: write in place, then commit
/// grant.copy_from_slice(b"world")?;
/// assert_eq!(grant.commit()?, seq + 1);
/// assert_eq!(app.next_seq(), 2);
/// // `SyncPolicy::None`: visible to tailers, safe from a crash of this process,
/// // but not known to be on disk.
/// assert_eq!(app.synced_seq(), 0);
///
/// let mut t = Tailer::open(&q)?;
/// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"hello");
/// assert_eq!(t.try_next()?.unwrap().to_vec()?, b"world");
/// assert!(t.try_next()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Appender {
    meta: Meta,
    dir: PathBuf,
    layout: SegmentLayout,
    seg: Segment,
    /// Where the next record starts in `seg`.
    next_off: u64,
    next_seq: u64,
    /// The next segment, allocated but not yet published (`.seg.pre`).
    prealloc: Option<(Mmap, PathBuf)>,
    /// `next_seq` when preallocation last failed (retried 1024 records later or at a roll).
    prealloc_failed_at: Option<u64>,
    sync: SyncPolicy,
    mode: u32,
    /// Records committed but not yet synced (batch policy).
    pending: u32,
    /// When the oldest pending record was committed.
    pending_since: Option<Instant>,
    /// Offset in `seg` from which the next sync starts: 0 while its header is not written
    /// back (a segment rolled to under [`SyncPolicy::None`]). The index entries set since
    /// the last sync are found from `synced_seq` ([`Appender::index_unsynced_from`]).
    sync_from: u64,
    /// The oldest segment rolled away from whose records, end marker, seal or index may not
    /// be written back ([`SyncPolicy::None`] only: the other policies write a segment back
    /// before they roll away from it). The next sync writes back every segment from this
    /// one to the current one's predecessor, reopening them by name: nothing is held for
    /// them meanwhile, so an appender that never syncs keeps no descriptor or mapping.
    unsynced_from: Option<u64>,
    /// Whether a segment was renamed into place since the directory was last synced
    /// ([`SyncPolicy::None`] only, as above).
    dir_unsynced: bool,
    /// Every record below this is known to be on disk (per the policy's msync calls).
    synced_seq: u64,
    recovery: Recovery,
    /// Why the appender cannot continue (a half-done roll).
    poisoned: Option<String>,
}

fn io_open(op: &'static str, file: &Path) -> impl FnOnce(std::io::Error) -> OpenError {
    let file = file.to_path_buf();
    move |source| OpenError::Io { op, file, source }
}

impl Appender {
    /// Opens (creating if missing) the queue in `dir` with the default
    /// [`QueueOptions`].
    ///
    /// # Errors
    /// As [`QueueOptions::open_appender`].
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut app = mapipc::queue::Appender::open(dir.path().join("q"))?;
    /// app.append(b"x")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Appender, OpenError> {
        QueueOptions::new().open_appender(dir)
    }

    fn open_with(dir: &Path, opts: &QueueOptions) -> Result<Appender, OpenError> {
        let size = opts.segment_size.unwrap_or(DEFAULT_SEGMENT_SIZE);
        let interval = opts.index_interval.unwrap_or(DEFAULT_INDEX_INTERVAL);
        let layout =
            SegmentLayout::new(size, interval).map_err(|why| OpenError::InvalidOptions {
                dir: dir.to_path_buf(),
                why,
            })?;
        if let SyncPolicy::Batch { records: 0, .. } = opts.sync {
            return Err(OpenError::InvalidOptions {
                dir: dir.to_path_buf(),
                why: "a batch sync policy needs at least 1 record per batch".to_string(),
            });
        }
        let meta = if opts.create {
            Meta::create_or_open(dir, layout, opts.mode)?.0
        } else {
            Meta::open(dir)?
        };
        if !meta.writable() {
            return Err(OpenError::Io {
                op: "open for writing",
                file: meta.path.clone(),
                source: std::io::ErrorKind::PermissionDenied.into(),
            });
        }
        if let Some(requested) = opts.segment_size {
            if requested != meta.layout.segment_size {
                return Err(OpenError::SegmentSizeMismatch {
                    dir: dir.to_path_buf(),
                    existing: meta.layout.segment_size,
                    requested,
                });
            }
        }
        if !meta.lock_appender(opts.wait_for_lock)? {
            return Err(OpenError::AppenderBusy {
                dir: dir.to_path_buf(),
                pid: meta.appender_pid(),
            });
        }
        // Housekeeping: temporary files of creators killed before they finished.
        super::tmpfile::remove_stale(dir);
        let layout = meta.layout;
        // Files made later get the permissions the queue was created with.
        let mode = meta.file_mode();
        let (clean_close, boot) = meta.previous_appender()?;
        let mut recovery = Recovery {
            clean_close,
            rebooted: boot == Boot::Other,
            ..Recovery::default()
        };
        // The hints and the "clean close" flag only vouch for the segment's tail within the
        // boot they were written in.
        let trusted = clean_close && boot == Boot::This;
        let (seg, next_off, next_seq, last_off) =
            recover(&meta, dir, layout, mode, trusted, &mut recovery)?;
        recovery.next_seq = next_seq;
        recovery.segment = seg.number;
        meta.set_appender(APPENDER_OPEN)?;
        meta.set_current_segment(seg.number)?;
        meta.set_hints(
            next_seq,
            last_off.map_or(0, |off| pack_position(seg.number, off)),
        )?;
        let mut app = Appender {
            meta,
            dir: dir.to_path_buf(),
            layout,
            sync_from: next_off,
            unsynced_from: None,
            dir_unsynced: false,
            seg,
            next_off,
            next_seq,
            prealloc: None,
            prealloc_failed_at: None,
            sync: opts.sync,
            mode,
            pending: 0,
            pending_since: None,
            synced_seq: next_seq,
            recovery,
            poisoned: None,
        };
        // A sealed last segment (a roll interrupted after its end marker) continues in a
        // new one right away.
        if let Probe::End { .. } = app.seg.probe(app.next_off, app.next_seq, None)? {
            app.finish_roll_after_end()?;
        }
        Ok(app)
    }

    /// What crash recovery found when this appender opened the queue.
    ///
    /// # Example
    /// See [`Appender`].
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The sequence number the next record gets.
    ///
    /// # Example
    /// See [`Appender`].
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Every record with a smaller sequence number is known to be on disk. It moves to
    /// [`next_seq`](Self::next_seq) when the policy or [`sync`](Self::sync) has written back
    /// everything appended, in every segment, and the directory entries of new segments;
    /// with [`SyncPolicy::None`], only `sync` moves it.
    ///
    /// It starts at the end of the log that recovery found at open: the records of an
    /// earlier appender count as on disk without being written back again. That holds when
    /// that appender synced them (a `Batch` or `Always` appender that closed cleanly), and
    /// after a machine crash (recovery read them from the disk, and writes back what it
    /// repairs itself); not necessarily otherwise: after a `None` appender, or a crash of
    /// that process with records pending, within the same boot, a machine crash may still
    /// lose them.
    ///
    /// The first [`sync`](Self::sync) does not write those back: which segments that
    /// appender left dirty is not recorded, so it would take an `fdatasync` of every
    /// segment of the queue (or a format change to record them), for a guarantee its
    /// policy never gave. A program that needs them durable before it goes on can have
    /// the file system written back (`syncfs(2)`, `sync(1)`).
    ///
    /// # Example
    /// See [`Appender`].
    pub fn synced_seq(&self) -> u64 {
        self.synced_seq
    }

    /// The queue directory.
    ///
    /// # Example
    /// See [`Appender`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The largest payload a record can carry (a segment minus its header, index and
    /// framing).
    ///
    /// # Example
    /// See [`Appender`].
    pub fn max_payload(&self) -> u64 {
        self.layout.max_payload()
    }

    fn check_usable(&self) -> Result<(), AppendError> {
        match &self.poisoned {
            Some(why) => Err(AppendError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Makes room for a record of `len` payload bytes: rolls to the next segment when the
    /// current one is full. Returns the offset and sequence number.
    fn place(&mut self, len: u64) -> Result<(u64, u64), AppendError> {
        self.check_usable()?;
        let max = self.layout.max_payload();
        if len > max {
            return Err(AppendError::TooLarge { len, max });
        }
        if self.next_seq + 1 >= MAX_SEQ {
            return Err(AppendError::SeqExhausted);
        }
        if self.next_off + record_size(len) > self.layout.data_end() {
            self.roll()?;
        }
        Ok((self.next_off, self.next_seq))
    }

    /// Appends a copy of `payload`; returns its sequence number. The record is visible to
    /// tailers (and safe from a crash of this process) when this returns; see
    /// [`SyncPolicy`] for a machine crash.
    ///
    /// # Errors
    /// [`AppendError::TooLarge`]; [`AppendError::NoSpace`] when the next segment cannot be
    /// allocated; [`AppendError::Sync`] when the policy's `msync` failed (the record *was*
    /// appended, as `next_seq() - 1`); [`AppendError::Access`] if a segment was truncated
    /// under us; [`AppendError::Poisoned`] after a failed roll.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut app = mapipc::queue::Appender::open(dir.path().join("q"))?;
    /// assert_eq!(app.append(b"a")?, 0);
    /// assert_eq!(app.append(b"")?, 1); // empty records are fine
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, AppendError> {
        let len = payload.len() as u64;
        let (off, seq) = self.place(len)?;
        let crc = crc32c::crc32c_append(header_crc(len as u32, KIND_DATA, seq), payload);
        let header = RecordHeader {
            len: len as u32,
            flags: 0,
            seq,
            crc,
            reserved: 0,
        };
        self.seg.write_at(off, bytemuck::bytes_of(&header))?;
        self.seg.write_at(off + RECORD_HEADER_SIZE, payload)?;
        self.publish(off, seq, len)
    }

    /// Reserves room for a record of `len` bytes and returns a [`Grant`] to write it in
    /// place (zero-copy); [`Grant::commit`] publishes it. Dropping the grant abandons the
    /// record (nothing is published, the room is reused).
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut app = mapipc::queue::Appender::open(dir.path().join("q"))?;
    /// let mut g = app.reserve(12)?;
    /// g.write_pod(0, &7u32)?;
    /// g.write_at(4, b"in place")?;
    /// let seq = g.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, AppendError> {
        let (off, seq) = self.place(len as u64)?;
        // The length goes in first, so that recovery after a crash mid-write knows how far
        // the unfinished record reaches.
        let header = RecordHeader {
            len: len as u32,
            flags: 0,
            seq,
            crc: 0,
            reserved: 0,
        };
        self.seg.write_at(off, bytemuck::bytes_of(&header))?;
        Ok(Grant {
            app: self,
            off,
            seq,
            len,
            done: false,
        })
    }

    /// Commits the record written at `off`: the commit word last, with `Release`, then the
    /// index, the hints, the wake-up, the sync policy and preallocation.
    fn publish(&mut self, off: u64, seq: u64, len: u64) -> Result<u64, AppendError> {
        self.seg
            .store_u32(off + RECORD_FLAGS, FLAG_COMMITTED | KIND_DATA)?;
        let rel = seq - self.seg.first_seq;
        let interval = u64::from(self.layout.index_interval);
        if rel % interval == 0 {
            self.seg.set_index_entry(rel / interval, off)?;
        }
        self.next_off = off + record_size(len);
        self.next_seq = seq + 1;
        self.meta
            .set_hints(self.next_seq, pack_position(self.seg.number, off))?;
        notify_tailers(&self.meta);
        match self.sync {
            SyncPolicy::None => {}
            SyncPolicy::Always => self.sync()?,
            SyncPolicy::Batch { records, interval } => {
                self.pending += 1;
                let since = *self.pending_since.get_or_insert_with(Instant::now);
                if self.pending >= records || since.elapsed() >= interval {
                    self.sync()?;
                }
            }
        }
        if self.prealloc.is_none() && self.next_off >= self.layout.segment_size / 2 {
            let retry = self
                .prealloc_failed_at
                .map_or(true, |at| self.next_seq >= at + 1024);
            if retry {
                // A failure here is retried later, and reported by the roll that needs it.
                if self.preallocate().is_err() {
                    self.prealloc_failed_at = Some(self.next_seq);
                }
            }
        }
        Ok(seq)
    }

    /// Writes back everything appended so far, whatever the policy: the records appended
    /// since the last sync, with their index entries, in the current segment
    /// (`msync(MS_SYNC)` of that range) and in every segment rolled away from since
    /// (`fdatasync`: their records, end marker and sealed header), the header of each
    /// segment created since, and the directory entries of those segments (`fsync` of the
    /// directory). [`synced_seq`](Self::synced_seq) moves to
    /// [`next_seq`](Self::next_seq) only when all of it succeeded; after an error, the next
    /// call starts again from what is still unsynced. The cost is that of the unsynced part:
    /// nothing is done when everything is synced.
    ///
    /// # Errors
    /// [`AppendError::Sync`] when the write-back of the current segment failed;
    /// [`AppendError::Io`] when that of an earlier segment or of the directory failed.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut app = mapipc::queue::Appender::open(dir.path().join("q"))?;
    /// app.append(b"x")?;
    /// app.sync()?;
    /// assert_eq!(app.synced_seq(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&mut self) -> Result<(), AppendError> {
        if self.synced_seq == self.next_seq
            && self.unsynced_from.is_none()
            && !self.dir_unsynced
            && self.sync_from >= self.next_off
        {
            return Ok(());
        }
        // Files first, the directory last: a directory entry written back before its
        // file's header could name a segment that reads as zeros after a machine crash.
        // The segments rolled away from, oldest first (progress is kept on an error).
        if let Some(first) = self.unsynced_from {
            for n in first..self.seg.number {
                write_back_file(&segment_path(&self.dir, n))?;
                self.unsynced_from = Some(n + 1);
            }
            self.unsynced_from = None;
        }
        // The current segment: one `msync` from the first unsynced byte (header, index
        // entry or record) to the end of the last record. The kernel writes back only the
        // dirty pages of the range (it finds them by their page-cache tags), so the clean
        // pages between the index and the records cost nothing, and one call is one
        // write-back and journal commit instead of two.
        let from = self.sync_from.min(self.index_unsynced_from());
        self.seg.flush_range(from, self.next_off)?;
        self.sync_from = self.next_off;
        if self.dir_unsynced {
            sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        self.synced_seq = self.next_seq;
        self.pending = 0;
        self.pending_since = None;
        Ok(())
    }

    /// The offset of the first index entry of the current segment set since the last sync
    /// (entries are set with their records: those of the records from `synced_seq` on), or
    /// `u64::MAX` when there is none.
    fn index_unsynced_from(&self) -> u64 {
        let first = self.seg.first_seq;
        let interval = u64::from(self.layout.index_interval);
        let k = (self.synced_seq.max(first) - first).div_ceil(interval);
        if first + k * interval < self.next_seq {
            self.layout.index_slot(k).unwrap_or(u64::MAX)
        } else {
            u64::MAX
        }
    }

    /// Allocates the next segment file (`.seg.pre`) with `fallocate`, ahead of need.
    fn preallocate(&mut self) -> Result<(), AppendError> {
        let number = self.seg.number + 1;
        if number >= MAX_SEGMENT_NUMBER {
            return Err(AppendError::SeqExhausted);
        }
        let path = prealloc_path(&self.dir, number);
        // A stale file from a crash may hold anything: start from scratch.
        let _ = os::file::unlink(&path);
        let map = MapOptions::new()
            .read_write()
            .mode(self.mode)
            .create(self.layout.segment_size)
            .len(self.layout.segment_size as usize)
            .map_path(&path)
            .inspect_err(|_| {
                // Do not leave a half-made file behind.
                let _ = os::file::unlink(&path);
            })
            .map_err(|e| match e {
                MapError::Create { source, .. } | MapError::Open { source, .. } => {
                    AppendError::NoSpace {
                        file: path.clone(),
                        source,
                    }
                }
                other => AppendError::Map(other),
            })?;
        self.prealloc = Some((map, path));
        self.prealloc_failed_at = None;
        Ok(())
    }

    /// Ends the current segment with an end marker and continues in the next one.
    ///
    /// Order: (1) the next segment is allocated (failing here changes nothing); (2) the end
    /// marker is committed and the segment sealed; (3) the new segment's header is written
    /// and the file renamed into place (tailers that saw the end marker wait until it
    /// appears); (4) tailers are woken. A crash after (2) leaves a sealed last segment, which
    /// the next appender continues from.
    fn roll(&mut self) -> Result<(), AppendError> {
        if self.prealloc.is_none() {
            self.preallocate()?;
        }
        let off = self.next_off;
        let seq = self.next_seq;
        let end = RecordHeader {
            len: 0,
            flags: 0,
            seq,
            crc: header_crc(0, KIND_END, seq),
            reserved: 0,
        };
        self.seg.write_at(off, bytemuck::bytes_of(&end))?;
        self.seg
            .store_u32(off + RECORD_FLAGS, FLAG_COMMITTED | KIND_END)?;
        self.seg.mark_sealed(off, seq, os::process::realtime_ns())?;
        self.finish_roll_after_end()
    }

    /// Steps (3) and (4) of [`roll`](Self::roll): the current segment is sealed with an end
    /// marker for `next_seq` at `next_off`; publish the next segment.
    ///
    /// Except under [`SyncPolicy::None`], the old segment (records, end marker, sealed
    /// header, index) is written back first, then the new segment's header, then the
    /// directory after the rename. Under `None` none of it is, and the next
    /// [`sync`](Appender::sync) does it all (`unsynced_from`, `dir_unsynced`, and
    /// `sync_from = 0` for the new segment's header).
    fn finish_roll_after_end(&mut self) -> Result<(), AppendError> {
        if self.prealloc.is_none() {
            self.preallocate()?;
        }
        if self.sync != SyncPolicy::None {
            // One `msync` from the header to the end marker: the kernel writes back only
            // the dirty pages of the range (what is left since the last sync, the seal,
            // index entries), and the sealed header of a segment recovery sealed at open.
            self.seg
                .flush_range(0, self.next_off + RECORD_HEADER_SIZE)?;
        }
        let number = self.seg.number + 1;
        let Some((map, pre_path)) = self.prealloc.take() else {
            unreachable!("preallocated just above")
        };
        let path = segment_path(&self.dir, number);
        let result = (|| -> Result<Segment, AppendError> {
            let mut seg = Segment::init(
                map,
                &path,
                self.layout,
                number,
                self.next_seq,
                os::process::realtime_ns(),
            )?;
            if self.sync != SyncPolicy::None {
                seg.flush_range(0, self.layout.data_offset)?;
            }
            os::storage::rename(&pre_path, &path).map_err(|source| AppendError::Io {
                op: "publish segment",
                file: path.clone(),
                source,
            })?;
            seg.published();
            if self.sync != SyncPolicy::None {
                sync_dir(&self.dir)?;
            }
            Ok(seg)
        })();
        let seg = match result {
            Ok(seg) => seg,
            Err(e) => {
                // The old segment is sealed; appending into it is impossible. A new
                // appender's recovery finishes the roll.
                let _ = os::file::unlink(&pre_path);
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut self.seg, seg);
        self.next_off = self.layout.data_offset;
        if self.sync == SyncPolicy::None {
            self.unsynced_from.get_or_insert(old.number);
            self.dir_unsynced = true;
            self.sync_from = 0;
        } else {
            self.sync_from = self.next_off;
            self.synced_seq = self.next_seq;
            self.pending = 0;
            self.pending_since = None;
        }
        self.meta.set_current_segment(number)?;
        notify_tailers(&self.meta);
        Ok(())
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if let SyncPolicy::Batch { .. } | SyncPolicy::Always = self.sync {
            let _ = self.sync();
        }
        if let Some((_, path)) = self.prealloc.take() {
            let _ = os::file::unlink(&path);
        }
        if self.poisoned.is_none() {
            let _ = self.meta.set_appender(APPENDER_CLOSED);
        }
        // The appender lock goes with the metadata mapping's file description.
    }
}

/// Room for one record, reserved by [`Appender::reserve`], written in place and published
/// by [`commit`](Self::commit). The bytes live in a shared mapping: they are written through
/// copying methods (no `&mut [u8]` into shared memory is handed out safely; see
/// [`as_mut_slice`](Self::as_mut_slice)). Dropping the grant without committing abandons
/// the record.
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// let mut app = mapipc::queue::Appender::open(dir.path().join("q"))?;
/// let mut g = app.reserve(8)?;
/// assert_eq!((g.seq(), g.len(), g.is_empty()), (0, 8, false));
/// g.fill(0xab)?;
/// g.write_at(0, b"hi")?;
/// assert!(g.write_at(7, b"no").is_err()); // out of the grant
/// g.commit()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Grant<'a> {
    app: &'a mut Appender,
    off: u64,
    seq: u64,
    len: usize,
    done: bool,
}

impl Grant<'_> {
    /// The payload length reserved.
    ///
    /// # Example
    /// See [`Grant`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the record is empty.
    ///
    /// # Example
    /// See [`Grant`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sequence number the record gets when committed.
    ///
    /// # Example
    /// See [`Grant`].
    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn check(&self, offset: usize, len: usize) -> Result<u64, AccessError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.off + RECORD_HEADER_SIZE + offset as u64),
            _ => Err(AccessError::OutOfBounds {
                file: self.app.seg.map().file_name().to_string(),
                offset: offset as u64,
                len,
                map_len: self.len,
                bounds: Bounds::GrantPayload,
            }),
        }
    }

    /// Copies `data` into the payload at `offset`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] outside the grant (nothing written);
    /// [`AccessError::Truncated`] if the segment was truncated under us.
    ///
    /// # Example
    /// See [`Grant`].
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<(), AccessError> {
        let at = self.check(offset, data.len())?;
        self.app.seg.write_at(at, data)
    }

    /// Copies `data`, which must be exactly [`len`](Self::len) bytes, into the payload.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] when the lengths differ.
    ///
    /// # Example
    /// See [`Appender`].
    pub fn copy_from_slice(&mut self, data: &[u8]) -> Result<(), AccessError> {
        if data.len() != self.len {
            return Err(AccessError::OutOfBounds {
                file: self.app.seg.map().file_name().to_string(),
                offset: 0,
                len: data.len(),
                map_len: self.len,
                bounds: Bounds::GrantLength,
            });
        }
        self.write_at(0, data)
    }

    /// Writes a plain-old-data value at `offset` (any alignment).
    ///
    /// # Errors
    /// As [`write_at`](Self::write_at).
    ///
    /// # Example
    /// See [`Appender::reserve`].
    pub fn write_pod<T: bytemuck::NoUninit>(
        &mut self,
        offset: usize,
        value: &T,
    ) -> Result<(), AccessError> {
        self.write_at(offset, bytemuck::bytes_of(value))
    }

    /// Sets every payload byte to `byte`.
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// See [`Grant`].
    pub fn fill(&mut self, byte: u8) -> Result<(), AccessError> {
        let at = self.check(0, self.len)?;
        self.app.seg.map().fill(at, self.len, byte)
    }

    /// Borrows the payload as a mutable slice, to serialize into it directly.
    ///
    /// # Safety
    /// The payload lives in a `MAP_SHARED` file mapping. While the slice lives:
    /// - no other process may write the queue's segment files (only this appender writes
    ///   them, unless someone edits them by hand or maliciously);
    /// - no other process may truncate the segment file (the slice would then refer to
    ///   pages that read as zeros, or the access would be turned into an error the slice
    ///   cannot report).
    ///
    /// Tailers only read committed records, and this one is not committed, so they do not
    /// look at these bytes.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut app = mapipc::queue::Appender::open(dir.path().join("q"))?;
    /// let mut g = app.reserve(4)?;
    /// // SAFETY: nobody else writes or truncates the queue's files.
    /// unsafe { g.as_mut_slice() }.copy_from_slice(b"fast");
    /// g.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(unsafe_code)]
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        let at = self.off + RECORD_HEADER_SIZE;
        // SAFETY: forwarded to the caller (see `# Safety`); the range is inside the
        // segment mapping (checked when the room was reserved), and `&mut self` makes this
        // the only borrow of the grant.
        unsafe { super::view::mut_slice(self.app.seg.map(), at, self.len) }
    }

    /// Publishes the record: computes its CRC, then stores the commit word with `Release`.
    /// Returns its sequence number.
    ///
    /// # Errors
    /// As [`Appender::append`].
    ///
    /// # Example
    /// See [`Appender::reserve`].
    pub fn commit(mut self) -> Result<u64, AppendError> {
        self.done = true;
        let start = self.off + RECORD_HEADER_SIZE;
        let crc = self.app.seg.crc_range(
            header_crc(self.len as u32, KIND_DATA, self.seq),
            start,
            self.len,
        )?;
        self.app.seg.map().write_pod(self.off + 16, &crc)?;
        self.app.publish(self.off, self.seq, self.len as u64)
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Abandoned: clear the payload, then the header, so the room is clean for the
            // next record (nothing was published, tailers never looked). The header goes
            // last: killed in between, the header still gives recovery the extent of the
            // unfinished record to skip (a payload may hold images of valid records, which
            // recovery would otherwise find searching the bytes left after a cleared
            // header, and take for records after damage).
            let map = self.app.seg.map();
            let size = record_size(self.len as u64) - RECORD_HEADER_SIZE;
            let _ = map.fill(self.off + RECORD_HEADER_SIZE, size as usize, 0);
            let _ = map.fill(self.off, RECORD_HEADER_SIZE as usize, 0);
        }
    }
}

/// `fdatasync` of the file at `path` (a segment rolled away from): writes back its dirty
/// pages and the metadata needed to read them. A file that is gone (deleted by retention)
/// has nothing left to write back.
fn write_back_file(path: &Path) -> Result<(), AppendError> {
    #[cfg(test)]
    super::segment::writeback_log::record(super::segment::writeback_log::Event::File(
        path.to_path_buf(),
    ));
    let io = |source| AppendError::Io {
        op: "write back",
        file: path.to_path_buf(),
        source,
    };
    let fd = match os::file::open(path, os::file::OpenHow::default()) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    os::file::fdatasync(std::os::fd::AsFd::as_fd(&fd)).map_err(io)
}

/// `fsync` of the queue directory: makes the entries of the segments published since the
/// last one durable.
fn sync_dir(dir: &Path) -> Result<(), AppendError> {
    #[cfg(test)]
    super::segment::writeback_log::record(super::segment::writeback_log::Event::Dir(
        dir.to_path_buf(),
    ));
    os::storage::fsync_dir(dir).map_err(|source| AppendError::Io {
        op: "sync the directory",
        file: dir.to_path_buf(),
        source,
    })
}

/// Crash recovery: finds the end of the log in the last segment, cuts a torn or damaged
/// tail, clears garbage after it, and reports damage found before the end. Returns the
/// segment to append to, the next offset and sequence number, and the last record's offset.
fn recover(
    meta: &Meta,
    dir: &Path,
    layout: SegmentLayout,
    mode: u32,
    trusted: bool,
    report: &mut Recovery,
) -> Result<(Segment, u64, u64, Option<u64>), OpenError> {
    let listing = list_queue(dir)?;
    for pre in &listing.prealloc {
        let path = prealloc_path(dir, *pre);
        os::file::unlink(&path).map_err(io_open("remove a stale preallocated segment", &path))?;
    }
    let mut segments = listing.segments;
    let opened = repair::open_last(dir, layout, &mut segments, report)?;
    // A repaired segment's tail vouches for nothing: check it whole.
    let trusted = trusted && report.segment_repairs.is_empty();
    let Some(seg) = opened else {
        // A new queue (or one whose segments were all removed by hand: continue the
        // numbering from the hints).
        let next_seq = meta.raw_next_seq().min(MAX_SEQ - 1);
        let number = if next_seq > 0 {
            (meta.raw_current_segment() + 1).min(MAX_SEGMENT_NUMBER - 1)
        } else {
            0
        };
        let seg = create_published(dir, layout, number, next_seq, mode)?;
        let off = layout.data_offset;
        return Ok((seg, off, next_seq, None));
    };
    let (last, path) = (seg.number, seg.path.clone());
    let (mut off, mut seq) = seg.last_indexed()?;
    let mut last_off = None;
    loop {
        let end = seg.walk(off, seq, None)?;
        if end.last_data.is_some() {
            last_off = end.last_data;
        }
        off = end.off;
        seq = end.seq;
        let stop = end.stop;
        let damaged = match stop {
            Probe::End { .. } => {
                if !seg.sealed_flag()? {
                    seg.mark_sealed(off, seq, os::process::realtime_ns())?;
                }
                if !trusted {
                    clear_index_after(&seg, seq, report)?;
                }
                repair_index(&seg, last_off, seq)?;
                return Ok((seg, off, seq, last_off));
            }
            Probe::Data { .. } => unreachable!("walk stops only on non-data"),
            Probe::Empty { torn } => torn,
            Probe::Bad(_) => true,
        };
        let deep = damaged || !trusted;
        if !deep {
            break;
        }
        report.deep_scan = true;
        // Damage or possible garbage: is there a valid record further on (damage in the
        // middle), or is this the end (a torn tail)?
        let h = seg.read_header(off)?;
        let skip_to =
            if damaged && h.seq == seq && off + record_size(h.len.into()) <= layout.data_end() {
                // The unfinished record's own extent: its payload may contain anything.
                off + record_size(h.len.into()) - 8
            } else {
                off
            };
        let corruption = |reason| Corruption {
            file: path.clone(),
            segment: last,
            offset: off,
            seq,
            reason,
        };
        let mut found = seg.resync(skip_to, seq)?;
        if found.is_none() && skip_to != off {
            if let Probe::Bad(_) = stop {
                // A committed record that fails its checks may have a damaged length: its
                // stated extent cannot be trusted to skip valid records. Cutting is for a
                // tail with nothing valid after it, so look again from the record itself.
                found = seg.resync(off, seq)?;
            }
        }
        match found {
            Some((r_off, r)) => {
                let reason = match stop {
                    Probe::Bad(reason) => reason,
                    _ => CorruptReason::Uncommitted,
                };
                report.damaged.push(corruption(reason));
                off = r_off;
                seq = r.seq;
                continue;
            }
            None => {
                if damaged {
                    report.cut = Some(corruption(match stop {
                        Probe::Bad(reason) => reason,
                        _ => CorruptReason::Uncommitted,
                    }));
                }
                break;
            }
        }
    }
    if seg.sealed_flag()? {
        // Sealed, but the end marker is not where the log ends: lost in a machine crash
        // (the header page was written back, the end marker's was not). Appends go on here.
        seg.clear_seal()?;
    }
    if !trusted {
        clear_index_after(&seg, seq, report)?;
    }
    if report.deep_scan {
        // Everything after the header at the end first, written back, then that header: an
        // unfinished record's header gives its extent, which a recovery interrupted here
        // (killed, or a machine crash writing pages back in any order) must still find,
        // or it would search the payload bytes left behind, which may hold images of valid
        // records.
        let body = off + RECORD_HEADER_SIZE;
        for (from, to) in [(body, layout.segment_size), (off, body)] {
            if let Some((from, to)) = seg.zero_range(from, to)? {
                report.zeroed_bytes += to - from;
                seg.flush_range(from, to)?;
            }
        }
    }
    repair_index(&seg, last_off, seq)?;
    Ok((seg, off, seq, last_off))
}

/// Zeroes (and writes back) the sparse index entries of records from `end_seq` on: there
/// are none, so an entry there is garbage (an index page written back by a machine crash
/// without the records it points to, or damage). Entries are hints, checked before use,
/// but `verify` reports such ones, and appends after the end would not overwrite them all.
fn clear_index_after(seg: &Segment, end_seq: u64, report: &mut Recovery) -> Result<(), OpenError> {
    let interval = u64::from(seg.layout.index_interval);
    let k = (end_seq.max(seg.first_seq) - seg.first_seq).div_ceil(interval);
    if let Some(from) = seg.layout.index_slot(k) {
        if let Some((a, b)) = seg.zero_range(from, seg.layout.data_offset)? {
            report.zeroed_bytes += b - a;
            seg.flush_range(a, b)?;
        }
    }
    Ok(())
}

/// An appender killed between a record's commit and its index entry leaves that entry
/// unset (only that one: entries are stored right after their record's commit). Sets it,
/// so the set entries stay a prefix. `last_off` is the offset of record `end_seq - 1`.
fn repair_index(seg: &Segment, last_off: Option<u64>, end_seq: u64) -> Result<(), AccessError> {
    let Some(off) = last_off else { return Ok(()) };
    let rel = end_seq - 1 - seg.first_seq;
    let interval = u64::from(seg.layout.index_interval);
    if rel % interval == 0 && seg.index_entry(rel / interval)? != off {
        seg.set_index_entry(rel / interval, off)?;
    }
    Ok(())
}

/// Creates segment `number` under its `.pre` name, writes its header and renames it into
/// place, so a tailer listing the directory never sees a half-made segment.
fn create_published(
    dir: &Path,
    layout: SegmentLayout,
    number: u64,
    first_seq: u64,
    mode: u32,
) -> Result<Segment, OpenError> {
    let pre = prealloc_path(dir, number);
    let path = segment_path(dir, number);
    let _ = os::file::unlink(&pre);
    let map = MapOptions::new()
        .read_write()
        .mode(mode)
        .create(layout.segment_size)
        .len(layout.segment_size as usize)
        .map_path(&pre)?;
    let mut seg = Segment::init(
        map,
        &path,
        layout,
        number,
        first_seq,
        os::process::realtime_ns(),
    )?;
    seg.flush_range(0, layout.data_offset)?;
    os::storage::rename(&pre, &path).map_err(io_open("publish segment", &path))?;
    seg.published();
    os::storage::fsync_dir(dir).map_err(io_open("sync the directory", dir))?;
    Ok(seg)
}

impl From<AppendError> for OpenError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Map(e) => OpenError::Map(e),
            AppendError::Access(e) => OpenError::Access(e),
            AppendError::Sync(e) => OpenError::Flush(e),
            AppendError::NoSpace { file, source } | AppendError::Io { file, source, .. } => {
                OpenError::Io {
                    op: "create the next segment",
                    file,
                    source,
                }
            }
            other => OpenError::Io {
                op: "continue",
                file: PathBuf::new(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod sync_tests;
