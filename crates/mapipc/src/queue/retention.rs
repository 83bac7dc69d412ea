//! Retention: deleting whole old segments beyond a count, an age or a size.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{RemoveDamagedError, RetainError};
use super::format::segment_path;
use super::inspect::{damaged_files, tailer_stat, DamagedFile};
use super::meta::Meta;
use super::segment::{SegOpenError, Segment};
use super::tailer::POSITION_LOCK_TIMEOUT;
use crate::os;

/// Bounds for [`retain`]. A segment is deleted when any bound asks for it; at least one
/// must be set. Like the crate's other builders, its setters take and return `&mut Self`.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use mapipc::queue::{retain, QueueOptions, ReadError, Retention, TailerOptions};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(&q)?;
/// while !q.join(format!("{:020}.seg", 4)).exists() {
///     app.append(&[7u8; 1000])?;
/// }
/// // A reader that has not read anything yet:
/// drop(TailerOptions::new().name("slow").open(&q)?);
///
/// let mut policy = Retention::new();
/// policy
///     .max_segments(100)
///     .max_bytes(3 * 64 * 1024) // asks to delete 2 of the 5 segments
///     .max_age(Duration::from_secs(86400)); // all were sealed just now
/// let report = retain(&q, &policy)?;
/// assert!(report.deleted.is_empty());
/// assert_eq!(report.kept_for_tailer, Some(("slow".to_string(), 0, 2)));
///
/// // Forced, it deletes them all the same; the reader finds its next record gone.
/// let report = retain(&q, policy.force(true))?;
/// assert_eq!((report.deleted.len(), report.remaining), (2, 3));
/// let mut reader = TailerOptions::new().name("slow").open(&q)?;
/// let err = reader.try_next().unwrap_err();
/// assert!(matches!(err, ReadError::Gone { seq: 0, first_available, .. }
///     if Some(first_available) == report.first_seq));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Retention {
    max_segments: Option<u64>,
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
    force: bool,
    lock_timeout: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_segments: None,
            max_age: None,
            max_bytes: None,
            force: false,
            lock_timeout: POSITION_LOCK_TIMEOUT,
        }
    }
}

impl Retention {
    /// No bound yet.
    ///
    /// # Example
    /// See [`Retention`].
    pub fn new() -> Retention {
        Retention::default()
    }

    /// Keep at most this many segments (the segment being appended to always stays, so 0
    /// behaves as 1).
    ///
    /// # Example
    /// See [`Retention`].
    pub fn max_segments(&mut self, n: u64) -> &mut Self {
        self.max_segments = Some(n);
        self
    }

    /// Delete segments sealed longer ago than this (so every record in them is older).
    ///
    /// # Example
    /// See [`Retention`].
    pub fn max_age(&mut self, age: Duration) -> &mut Self {
        self.max_age = Some(age);
        self
    }

    /// Keep the segment files' total size at or below this (at least one segment stays).
    ///
    /// # Example
    /// See [`Retention`].
    pub fn max_bytes(&mut self, bytes: u64) -> &mut Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Also delete segments holding records that named tailers have not acknowledged
    /// (they get [`ReadError::Gone`](super::ReadError::Gone) on their next read), and
    /// ignore damaged tailer files.
    ///
    /// # Example
    /// See [`Retention`].
    pub fn force(&mut self, force: bool) -> &mut Self {
        self.force = force;
        self
    }

    /// How long [`retain`] waits, in all, for its two locks on `queue.meta` (default
    /// [`POSITION_LOCK_TIMEOUT`], 10 s): first the retention lock, while another retention
    /// run holds it (for the length of that run), then the position lock, while named
    /// tailers hold it (each for the length of one seek or creation), with what the first
    /// wait left of this one budget (at least one try). So a run gives up after about this
    /// long whichever lock is held, failing with [`RetainError::RetentionLockTimeout`] or
    /// [`RetainError::PositionLockTimeout`] having deleted nothing: a `retain` process, or
    /// a named tailer's process in the middle of a seek, stopped (`SIGSTOP`) or hung holds
    /// its lock until it dies, and must not make retention hang.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::queue::{retain, QueueOptions, Retention};
    /// # let dir = tempfile::tempdir()?;
    /// # let q = dir.path().join("q");
    /// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(&q)?;
    /// for _ in 0..2000 { app.append(&[0u8; 100])?; }
    /// let mut policy = Retention::new();
    /// policy.max_segments(2).lock_timeout(Duration::from_millis(500));
    /// assert_eq!(retain(&q, &policy)?.remaining, 2); // no tailer seeking: no wait
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lock_timeout = timeout;
        self
    }
}

/// What [`retain`] did.
///
/// # Example
/// See [`retain`] (segments deleted) and [`Retention`] (segments kept for a named tailer).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RetainReport {
    /// The deleted segment files, oldest first.
    pub deleted: Vec<PathBuf>,
    /// Segments the bounds asked to delete but a named tailer still needs: `(tailer, its
    /// position, segments kept for it)`.
    pub kept_for_tailer: Option<(String, u64, u64)>,
    /// Segments left.
    pub remaining: u64,
    /// The oldest sequence number left.
    pub first_seq: Option<u64>,
    /// Temporary files left by processes killed while they created the metadata file or a
    /// named tailer's file, removed (see "Files" in the [module docs](super)).
    pub removed_tmp: Vec<PathBuf>,
}

/// Deletes whole segments of the queue in `dir`, oldest first, as `policy` asks. Never the
/// segment being appended to (the last one), and never one with records a named tailer
/// has not acknowledged, unless [`Retention::force`]. Safe while an appender and tailers
/// run: a tailer reading a deleted segment keeps its mapping; concurrent retention runs are
/// serialized by a lock; named tailers created or seeking meanwhile wait for the run to
/// end, so a position they move to is never deleted under them, and the run waits for
/// those in the middle of a seek (for another run and for them, at most
/// [`Retention::lock_timeout`] in all; see "Retention" in the [module docs](super)).
/// Temporary files left by processes killed while creating the queue's files are removed
/// too ([`RetainReport::removed_tmp`]).
///
/// # Errors
/// [`RetainError::NoBound`]; [`RetainError::Open`] when the queue cannot be opened;
/// [`RetainError::BadTailer`] when a named tailer's file is damaged (without `force`);
/// [`RetainError::BadSegment`], [`RetainError::Map`], [`RetainError::Access`] when a
/// segment's header cannot be read; [`RetainError::Delete`];
/// [`RetainError::RetentionLockTimeout`] when another retention run held the retention
/// lock longer than [`Retention::lock_timeout`], [`RetainError::PositionLockTimeout`] when
/// named tailers held the position lock past it (nothing deleted either way);
/// [`RetainError::Io`] when a lock, the listing of the directory or its sync fails.
///
/// # Example
/// ```
/// use mapipc::queue::{retain, QueueOptions, Retention};
/// # let dir = tempfile::tempdir()?;
/// # let q = dir.path().join("q");
/// let mut app = QueueOptions::new().segment_size(64 * 1024).open_appender(&q)?;
/// for _ in 0..2000 { app.append(&[0u8; 100])?; } // about 4 segments
/// let report = retain(&q, Retention::new().max_segments(2))?;
/// assert_eq!(report.remaining, 2);
/// assert!(!report.deleted.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn retain(dir: impl AsRef<Path>, policy: &Retention) -> Result<RetainReport, RetainError> {
    let dir = dir.as_ref();
    if policy.max_segments.is_none() && policy.max_age.is_none() && policy.max_bytes.is_none() {
        return Err(RetainError::NoBound);
    }
    let meta = Meta::open(dir)?;
    let io = |op| {
        let file = meta.path.clone();
        move |source| RetainError::Io { op, file, source }
    };
    // One budget for both locks: the position lock gets what the retention lock left (at
    // least one try).
    let start = Instant::now();
    if !meta
        .lock_retention(policy.lock_timeout)
        .map_err(io("take the retention lock on"))?
    {
        // Nothing was looked at or changed yet.
        return Err(RetainError::RetentionLockTimeout {
            file: meta.path.clone(),
            waited: start.elapsed(),
        });
    }
    let result = meta
        .lock_positions_exclusive(policy.lock_timeout.saturating_sub(start.elapsed()))
        .map_err(io("take the position lock on"))
        .and_then(|taken| {
            if !taken {
                // Nothing was looked at or changed yet. Both waits, as they share the
                // budget.
                return Err(RetainError::PositionLockTimeout {
                    file: meta.path.clone(),
                    waited: start.elapsed(),
                });
            }
            let result = retain_locked(dir, &meta, policy);
            meta.unlock_positions();
            result
        });
    meta.unlock_retention();
    result
}

/// Options for [`remove_damaged_with`]: how long it waits for the retention lock. Like the
/// crate's other builders, its setters take and return `&mut Self`; the defaults are what
/// [`remove_damaged`] uses.
///
/// # Example
/// See [`RemoveDamagedOptions::lock_timeout`].
#[derive(Clone, Debug)]
pub struct RemoveDamagedOptions {
    lock_timeout: Duration,
}

impl Default for RemoveDamagedOptions {
    fn default() -> Self {
        RemoveDamagedOptions {
            lock_timeout: POSITION_LOCK_TIMEOUT,
        }
    }
}

impl RemoveDamagedOptions {
    /// The defaults.
    ///
    /// # Example
    /// See [`RemoveDamagedOptions::lock_timeout`].
    pub fn new() -> RemoveDamagedOptions {
        RemoveDamagedOptions::default()
    }

    /// How long [`remove_damaged_with`] waits for the queue's retention lock while a
    /// [`retain`] run or another removal holds it (default [`POSITION_LOCK_TIMEOUT`],
    /// 10 s). Past it, the removal fails with [`RemoveDamagedError::RetentionLockTimeout`]
    /// having deleted nothing: a `retain` process stopped (`SIGSTOP`) or hung holds the lock
    /// until it dies, and must not make the removal hang.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::queue::{remove_damaged_with, Appender, RemoveDamagedOptions};
    /// # let tmp = tempfile::tempdir()?;
    /// # let q = tmp.path().join("q");
    /// Appender::open(&q)?.append(b"x")?;
    /// std::fs::write(q.join("00000000000000000003.seg.damaged-1764000000000000000"), [1u8; 100])?;
    /// let mut opts = RemoveDamagedOptions::new();
    /// opts.lock_timeout(Duration::from_millis(500));
    /// // No retention run holds the lock: no wait.
    /// assert_eq!(remove_damaged_with(&q, &opts)?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lock_timeout = timeout;
        self
    }
}

/// Deletes the segments crash recovery set aside in the queue in `dir`
/// (`{n:020}.seg.damaged-{ns}`, listed in [`QueueStat::damaged`](super::QueueStat::damaged)),
/// and nothing else: only files named exactly so. Recovery keeps them because they hold
/// records it could not tie to the log; the queue never reads them, so deleting them
/// changes nothing for appenders and tailers, but their records are gone. Returns what was
/// deleted, oldest segment first.
///
/// Takes the queue's retention lock, as [`retain`] does, so it never runs during a
/// retention run or another removal (and waits for one to end, up to
/// [`POSITION_LOCK_TIMEOUT`](super::POSITION_LOCK_TIMEOUT); [`remove_damaged_with`] sets
/// another wait); it needs no position lock, since no tailer reads these files. A file
/// recovery sets aside while it runs (an appender opening the queue) may or may not be
/// deleted with the others.
///
/// # Errors
/// [`RemoveDamagedError::Open`] when `dir` is not a queue (nothing is deleted there);
/// [`RemoveDamagedError::RetentionLockTimeout`] when a retention run (or another removal)
/// holds the retention lock that long (nothing is deleted then);
/// [`RemoveDamagedError::Delete`]; [`RemoveDamagedError::Io`] when the lock, the listing of
/// the directory, reading a file's size or the directory's sync fails.
///
/// # Example
/// ```
/// use mapipc::queue::{remove_damaged, stat, Appender};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// Appender::open(&q)?.append(b"x")?;
/// // As crash recovery leaves one (see "Crash recovery" in the module docs):
/// let damaged = q.join("00000000000000000003.seg.damaged-1764000000000000000");
/// std::fs::write(&damaged, [1u8; 100])?;
/// std::fs::write(q.join("notes.seg.damaged-1"), b"not the queue's")?;
///
/// let st = stat(&q)?;
/// assert_eq!((st.damaged.len(), st.damaged_bytes()), (1, 100));
/// assert_eq!((st.damaged[0].segment, &st.damaged[0].path), (3, &damaged));
///
/// let removed = remove_damaged(&q)?;
/// assert_eq!(removed, st.damaged);
/// assert!(!damaged.exists() && q.join("notes.seg.damaged-1").exists());
/// assert!(stat(&q)?.damaged.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove_damaged(dir: impl AsRef<Path>) -> Result<Vec<DamagedFile>, RemoveDamagedError> {
    remove_damaged_with(dir, &RemoveDamagedOptions::new())
}

/// [`remove_damaged`], waiting for the retention lock at most
/// [`RemoveDamagedOptions::lock_timeout`] instead of
/// [`POSITION_LOCK_TIMEOUT`](super::POSITION_LOCK_TIMEOUT).
///
/// # Errors
/// As [`remove_damaged`]: [`RemoveDamagedError::RetentionLockTimeout`] once the lock was
/// held past `opts`' lock timeout, with the time it waited.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use mapipc::queue::{remove_damaged_with, Appender, RemoveDamagedError, RemoveDamagedOptions};
/// # let tmp = tempfile::tempdir()?;
/// # let q = tmp.path().join("q");
/// Appender::open(&q)?.append(b"x")?;
/// // The retention lock (an OFD lock on byte 1 of `queue.meta`) held, as by a `retain` run
/// // stopped in another process:
/// let meta = std::fs::OpenOptions::new().read(true).write(true).open(q.join("queue.meta"))?;
/// assert!(mapipc::os::file::ofd_lock(meta.as_fd(), 1, 1, false)?);
///
/// let mut opts = RemoveDamagedOptions::new();
/// opts.lock_timeout(Duration::from_millis(50));
/// let err = remove_damaged_with(&q, &opts).unwrap_err();
/// assert!(matches!(err, RemoveDamagedError::RetentionLockTimeout { waited, .. }
///     if waited >= Duration::from_millis(50)), "{err}");
/// drop(meta); // the lock goes with it
/// assert!(remove_damaged_with(&q, &opts)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove_damaged_with(
    dir: impl AsRef<Path>,
    opts: &RemoveDamagedOptions,
) -> Result<Vec<DamagedFile>, RemoveDamagedError> {
    let dir = dir.as_ref();
    let meta = Meta::open(dir)?;
    let io = |op, file: &Path| {
        let file = file.to_path_buf();
        move |source| RemoveDamagedError::Io { op, file, source }
    };
    let start = Instant::now();
    let taken = meta
        .lock_retention(opts.lock_timeout)
        .map_err(io("take the retention lock on", &meta.path))?;
    if !taken {
        return Err(RemoveDamagedError::RetentionLockTimeout {
            file: meta.path.clone(),
            waited: start.elapsed(),
        });
    }
    let result = remove_damaged_locked(dir);
    meta.unlock_retention();
    result
}

fn remove_damaged_locked(dir: &Path) -> Result<Vec<DamagedFile>, RemoveDamagedError> {
    let listing = super::list_dir(dir).map_err(|source| RemoveDamagedError::Io {
        op: "list",
        file: dir.to_path_buf(),
        source,
    })?;
    let found = damaged_files(dir, &listing).map_err(|(file, source)| RemoveDamagedError::Io {
        op: "examine",
        file,
        source,
    })?;
    let mut removed = Vec::new();
    for file in found {
        match os::file::unlink(&file.path) {
            Ok(()) => removed.push(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RemoveDamagedError::Delete {
                    file: file.path,
                    source,
                })
            }
        }
    }
    if !removed.is_empty() {
        os::storage::fsync_dir(dir).map_err(|source| RemoveDamagedError::Io {
            op: "sync the directory",
            file: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(removed)
}

#[cfg(test)]
thread_local! {
    /// Run once (then cleared) by `retain_locked` after the named tailers' positions were
    /// read, before any segment is deleted: unit tests move tailers there.
    static RETAIN_HOOK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

fn retain_locked(dir: &Path, meta: &Meta, policy: &Retention) -> Result<RetainReport, RetainError> {
    let layout = meta.layout;
    let listing = super::list_dir(dir).map_err(|source| RetainError::Io {
        op: "list",
        file: dir.to_path_buf(),
        source,
    })?;
    // Headers of every segment but the last (which always stays): first sequence number
    // (the previous one's end) and seal time.
    let mut info = Vec::new();
    for &n in &listing.segments {
        let path = segment_path(dir, n);
        match Segment::open(&path, n, layout, false) {
            Ok(seg) => info.push((n, seg.first_seq, seg.sealed_ns()?)),
            Err(SegOpenError::Missing) => continue,
            Err(SegOpenError::Bad(why)) => return Err(RetainError::BadSegment { file: path, why }),
            Err(SegOpenError::Map(e)) => return Err(e.into()),
            Err(SegOpenError::Access(e)) => return Err(e.into()),
        }
    }
    let total = info.len() as u64;
    let candidates = total.saturating_sub(1);
    let mut delete = 0u64;
    if let Some(max) = policy.max_segments {
        delete = delete.max(total.saturating_sub(max.max(1)));
    }
    if let Some(max) = policy.max_bytes {
        let keep = (max / layout.segment_size).max(1);
        delete = delete.max(total.saturating_sub(keep));
    }
    if let Some(age) = policy.max_age {
        let now = os::process::realtime_ns();
        let limit = now.saturating_sub(u64::try_from(age.as_nanos()).unwrap_or(u64::MAX));
        let old = info
            .iter()
            .take(candidates as usize)
            .take_while(|(_, _, sealed_ns)| *sealed_ns != 0 && *sealed_ns <= limit)
            .count() as u64;
        delete = delete.max(old);
    }
    delete = delete.min(candidates);
    let mut report = RetainReport::default();
    if !policy.force {
        // The oldest position among named tailers bounds what may go: segment i may be
        // deleted only if all its records (below segment i+1's first) are acknowledged.
        let mut oldest: Option<(String, u64)> = None;
        for name in &listing.tailers {
            let st = tailer_stat(dir, name);
            if let Some(why) = st.problem {
                return Err(RetainError::BadTailer {
                    file: super::format::tailer_path(dir, name),
                    why,
                });
            }
            if oldest.as_ref().map_or(true, |(_, s)| st.next_seq < *s) {
                oldest = Some((st.name, st.next_seq));
            }
        }
        if let Some((name, pos)) = oldest {
            let allowed = (0..delete as usize)
                .take_while(|&i| info[i + 1].1 <= pos)
                .count() as u64;
            if allowed < delete {
                report.kept_for_tailer = Some((name, pos, delete - allowed));
                delete = allowed;
            }
        }
    }
    #[cfg(test)]
    if let Some(hook) = RETAIN_HOOK.with(|h| h.borrow_mut().take()) {
        hook();
    }
    for &(n, _, _) in info.iter().take(delete as usize) {
        let path = segment_path(dir, n);
        match os::file::unlink(&path) {
            Ok(()) => report.deleted.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RetainError::Delete { file: path, source }),
        }
    }
    if !report.deleted.is_empty() {
        os::storage::fsync_dir(dir).map_err(|source| RetainError::Io {
            op: "sync the directory",
            file: dir.to_path_buf(),
            source,
        })?;
    }
    report.removed_tmp = super::tmpfile::remove_stale(dir);
    report.remaining = total - delete;
    report.first_seq = info.get(delete as usize).map(|(_, first, _)| *first);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::atomic::Ordering;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::queue::meta::POSITION_LOCK_CONTENDED;
    use crate::queue::{QueueOptions, StartAt, TailerOptions};

    /// A named tailer created at the start, or moved back to it, after retention read the
    /// positions and before it deleted the segments (the hook runs there, and the tailer
    /// moves in another thread): retention deleted the segment the new position was in,
    /// so the tailer, reopened, found its records gone. Now the tailer waits for the
    /// position lock until retention is done, and its position is the oldest record left.
    #[test]
    fn a_named_tailer_created_or_moved_back_during_retention_keeps_its_records() {
        let tmp = tempfile::tempdir().unwrap();
        for moved_back in [false, true] {
            let dir = tmp.path().join(format!("q{moved_back}"));
            let mut app = QueueOptions::new()
                .segment_size(64 * 1024)
                .open_appender(&dir)
                .unwrap();
            for _ in 0..400 {
                app.append(&[7u8; 1000]).unwrap();
            }
            if moved_back {
                // Ahead of everything: retention may delete all but the last segment.
                TailerOptions::new()
                    .name("late")
                    .from(StartAt::End)
                    .open(&dir)
                    .unwrap();
            }
            let mover: Rc<RefCell<Option<JoinHandle<u64>>>> = Rc::default();
            let (d, m) = (dir.clone(), mover.clone());
            let hook = move || {
                let contended = POSITION_LOCK_CONTENDED.load(Ordering::SeqCst);
                let h = std::thread::spawn(move || {
                    let mut t = if moved_back {
                        let mut t = TailerOptions::new()
                            .name("late")
                            .lock_timeout(Duration::from_secs(120))
                            .open(&d)
                            .unwrap();
                        t.seek(StartAt::Start).unwrap();
                        t
                    } else {
                        TailerOptions::new()
                            .name("late")
                            .from(StartAt::Start)
                            .lock_timeout(Duration::from_secs(120))
                            .open(&d)
                            .unwrap()
                    };
                    t.ack().unwrap();
                    t.next_seq()
                });
                // Until the tailer has moved, or waits for retention to finish (a watchdog
                // turns a hang into a failure).
                let deadline = Instant::now() + Duration::from_secs(120);
                while !h.is_finished()
                    && POSITION_LOCK_CONTENDED.load(Ordering::SeqCst) == contended
                {
                    assert!(Instant::now() < deadline, "watchdog: the tailer hangs");
                    std::thread::yield_now();
                }
                *m.borrow_mut() = Some(h);
            };
            RETAIN_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
            let report = retain(&dir, Retention::new().max_segments(2)).unwrap();
            let moved_to = mover
                .borrow_mut()
                .take()
                .expect("the hook ran")
                .join()
                .unwrap();
            assert!(report.deleted.len() >= 3, "{report:?}");
            let first = report.first_seq.unwrap();
            assert_eq!(moved_to, first, "moved back: {moved_back}");
            let mut t = TailerOptions::new().name("late").open(&dir).unwrap();
            match t.try_next() {
                Ok(Some(rec)) => assert_eq!(rec.seq(), first),
                other => panic!("moved back: {moved_back}: {other:?}"),
            }
            drop((t, app));
        }
    }
}
