//! Temporary files: `queue.meta` and `{name}.tailer` are written under a temporary name,
//! `.{final name}.tmp-{pid}-{ns}`, then moved into place with `RENAME_NOREPLACE`. A
//! creator killed in between leaves its temporary file behind; [`remove_stale`] removes
//! such files (an appender opening the queue and [`retain`](super::retain) call it).
//!
//! The protocol, so that a live creator's file is never removed:
//!
//! - The creator holds an OFD write lock on byte [`CREATE_LOCK_BYTE`] of its temporary
//!   file from just after creating it until it has moved it into place (or given up and
//!   removed it). The kernel releases the lock when the creator dies.
//! - A cleaner removes a file of this naming scheme only while it holds that lock itself
//!   (taken without waiting: a live creator holds it), only when the file was last modified
//!   more than [`STALE_AFTER_SECS`] ago (which also spares a creator of an earlier release,
//!   which took no lock, and a creator between its `open` and its lock), and only when the
//!   name still refers to the file it locked.
//! - A creator that finds its file gone once it holds the lock (a cleaner came between
//!   its `open` and its lock, which takes a creator stopped there for longer than
//!   [`STALE_AFTER_SECS`]) starts again under a new name.

use std::path::{Path, PathBuf};

use super::error::OpenError;
use super::format::{parse_tailer_name, META_FILE};
use crate::map::{MapOptions, Mmap};
use crate::os;
use crate::os::file::OpenHow;

/// The byte of a temporary file its creator holds an OFD write lock on while it creates
/// it: the last byte of both kinds of file (4 KiB each), a byte no other lock of the
/// queue uses (`queue.meta` bytes 0 and 1 are the appender's and retention's, a
/// `{name}.tailer`'s byte 0 is its tailer's), so the lock, still held for a moment after
/// the rename, never gets in their way.
pub(crate) const CREATE_LOCK_BYTE: u64 = 4095;

/// Seconds after its last modification a temporary file nobody holds may be removed. A
/// creation writes 4 KiB: it takes milliseconds, this leaves a wide margin.
pub(crate) const STALE_AFTER_SECS: i64 = 60;

/// How many times a creator starts again when a cleaner removed its file (see the module
/// docs; a second time takes a creator stopped for a minute twice in a row).
const CREATE_ATTEMPTS: u32 = 8;

#[cfg(test)]
thread_local! {
    /// Run once (then cleared) by [`create`] when the temporary file is written and
    /// locked, before the caller moves it into place: unit tests stop creators there.
    pub(crate) static CREATE_HOOK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

/// A temporary file being created, locked by us.
pub(crate) struct TmpFile {
    pub path: PathBuf,
    /// Its mapping, whose open file description holds the creation lock until dropped.
    _locked: Mmap,
}

/// Creates `dir/.{final_name}.tmp-{pid}-{ns}`, `size` bytes with permissions `mode`,
/// mapped read-write, with the creation lock held; `fill` writes its contents. The caller
/// moves it into place (or removes it), then drops it.
pub(crate) fn create(
    dir: &Path,
    final_name: &str,
    mode: u32,
    size: u64,
    fill: impl Fn(&Mmap) -> Result<(), OpenError>,
) -> Result<TmpFile, OpenError> {
    let mut attempts = 0;
    loop {
        let path = dir.join(format!(
            ".{final_name}.tmp-{}-{}",
            os::process::pid(),
            os::process::monotonic_ns()
        ));
        let map = MapOptions::new()
            .read_write()
            .mode(mode)
            .create(size)
            .map_path(&path)?;
        let io_err = |source| OpenError::Io {
            op: "lock the temporary file",
            file: path.clone(),
            source,
        };
        let fd = map
            .file_fd()
            .ok_or_else(|| io_err(std::io::Error::other("no file behind the mapping")))?;
        // Waits only while a cleaner examines the file.
        os::file::ofd_lock(fd, CREATE_LOCK_BYTE, 1, true).map_err(io_err)?;
        let ours = os::file::fstat(fd).map_err(io_err)?;
        let linked = os::file::lstat(&path).is_ok_and(|f| (f.dev, f.ino) == (ours.dev, ours.ino));
        if !linked {
            // A cleaner removed it between our `open` and our lock.
            attempts += 1;
            if attempts == CREATE_ATTEMPTS {
                return Err(io_err(std::io::Error::other(
                    "the temporary file keeps being removed while it is created",
                )));
            }
            continue;
        }
        fill(&map)?;
        #[cfg(test)]
        if let Some(hook) = CREATE_HOOK.with(|h| h.borrow_mut().take()) {
            hook();
        }
        return Ok(TmpFile { path, _locked: map });
    }
}

/// Whether `name` is a temporary file of this scheme: `.queue.meta.tmp-{pid}-{ns}` or
/// `.{tailer name}.tailer.tmp-{pid}-{ns}`.
pub(crate) fn is_tmp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((final_name, suffix)) = rest.rsplit_once(".tmp-") else {
        return false;
    };
    let Some((pid, ns)) = suffix.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid)
        && digits(ns)
        && (final_name == META_FILE || parse_tailer_name(final_name).is_some())
}

/// Removes the temporary files in `dir` whose creator is gone (see the module docs);
/// returns them. Files it cannot examine or remove are left as they are: this is
/// housekeeping, never a reason for the caller to fail.
pub(crate) fn remove_stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(names) = os::storage::list_dir(dir) else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| name.to_str())
        .filter(|name| is_tmp_name(name))
        .map(|name| dir.join(name))
        .filter(|path| remove_if_stale(path))
        .collect()
}

/// Removes the temporary file `path` if nobody holds its creation lock and it is older than
/// [`STALE_AFTER_SECS`]; returns whether it did.
fn remove_if_stale(path: &Path) -> bool {
    let how = OpenHow {
        write: true,
        no_follow: true,
        nonblock: true,
        ..OpenHow::default()
    };
    let Ok(fd) = os::file::open(path, how) else {
        return false;
    };
    let fd = std::os::fd::AsFd::as_fd(&fd);
    let Ok(info) = os::file::fstat(fd) else {
        return false;
    };
    if info.kind != os::file::FileKind::Regular {
        return false;
    }
    // A live creator holds the lock until its file is in place.
    if !matches!(os::file::ofd_lock(fd, CREATE_LOCK_BYTE, 1, false), Ok(true)) {
        return false;
    }
    let now = i64::try_from(os::process::realtime_ns() / 1_000_000_000).unwrap_or(i64::MAX);
    if now.saturating_sub(info.mtime) <= STALE_AFTER_SECS {
        return false;
    }
    // Still the file we locked under that name (not one a creator made since).
    let same = os::file::lstat(path).is_ok_and(|f| (f.dev, f.ino) == (info.dev, info.ino));
    same && os::file::unlink(path).is_ok()
    // The lock goes with `fd`, closed on return: after the unlink.
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::queue::{retain, QueueOptions, Retention, TailerOptions};

    /// The temporary files in `dir`, sorted.
    fn tmp_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        v.sort();
        v
    }

    /// Sets the modification time of `dir/name` an hour back.
    fn age(dir: &Path, name: &str) {
        let f = std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }

    /// In a thread, creates the named tailer `name` (or, without a name, the queue in
    /// `dir`), running `hook` when its temporary file is written and locked.
    fn create_in_thread(
        dir: &Path,
        name: Option<&'static str>,
        hook: impl FnOnce() + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            CREATE_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
            match name {
                Some(name) => drop(TailerOptions::new().name(name).open(&dir).unwrap()),
                None => drop(QueueOptions::new().open_appender(&dir).unwrap()),
            }
        })
    }

    /// Temporary files of creators that died before moving them into place (the hook
    /// panics there: the file stays, its lock goes, as with a kill) were never removed.
    /// Now an appender opening the queue, and `retain`, remove them; never the file of a
    /// live creator (stopped in the hook), however old, nor a recent one nobody holds (a
    /// creator of an earlier release, which takes no lock), nor files of other names.
    #[test]
    fn temporary_files_of_dead_creators_are_removed_and_no_others() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("q");
        drop(QueueOptions::new().open_appender(&dir).unwrap());
        // Unwinds without the panic message: the creator "dies" there.
        let die = || std::panic::resume_unwind(Box::new("the creator dies here"));
        assert!(create_in_thread(&dir, Some("dead"), die).join().is_err());
        let dead = tmp_files(&dir);
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(dead[0].starts_with(".dead.tailer.tmp-"), "{dead:?}");
        // A creator stopped with its file written.
        let (ready_tx, ready) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let live = create_in_thread(&dir, Some("live"), move || {
            ready_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        ready.recv().unwrap();
        let live_tmp: Vec<String> = tmp_files(&dir)
            .into_iter()
            .filter(|n| n.starts_with(".live."))
            .collect();
        assert_eq!(live_tmp.len(), 1);
        let others = [
            ".young.tailer.tmp-1-2",
            ".other.tmp-1-2",
            "queue.meta.tmp-1-2",
            ".bad name.tailer.tmp-1-2",
        ];
        for name in others {
            std::fs::write(dir.join(name), [0u8; 64]).unwrap();
        }
        let aged = others[1..].iter().map(|s| s.to_string());
        for name in dead.iter().chain(&live_tmp).cloned().chain(aged) {
            age(&dir, &name);
        }
        // An appender opening the queue removes only the dead creator's file.
        drop(QueueOptions::new().open_appender(&dir).unwrap());
        let mut left: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        left.push(live_tmp[0].clone());
        left.sort();
        assert_eq!(tmp_files(&dir), left);
        // The live creator finishes: its file is in place, the temporary one gone.
        go.send(()).unwrap();
        live.join().unwrap();
        assert!(dir.join("live.tailer").exists());
        left.retain(|n| *n != live_tmp[0]);
        assert_eq!(tmp_files(&dir), left);

        // `retain` removes them too.
        assert!(create_in_thread(&dir, Some("dead2"), die).join().is_err());
        let dead2 = tmp_files(&dir)
            .into_iter()
            .find(|n| n.starts_with(".dead2."))
            .unwrap();
        age(&dir, &dead2);
        age(&dir, others[0]);
        let report = retain(&dir, Retention::new().max_segments(5)).unwrap();
        let mut removed = report.removed_tmp.clone();
        removed.sort();
        let mut expected = vec![dir.join(others[0]), dir.join(&dead2)];
        expected.sort();
        assert_eq!(removed, expected);
        left.retain(|n| n != others[0]);
        assert_eq!(tmp_files(&dir), left);

        // A queue whose creator died: the next appender creates it and removes the file.
        let dir2 = tmp.path().join("q2");
        assert!(create_in_thread(&dir2, None, die).join().is_err());
        let meta_tmp = tmp_files(&dir2);
        assert!(
            meta_tmp.len() == 1 && meta_tmp[0].starts_with(".queue.meta.tmp-"),
            "{meta_tmp:?}"
        );
        age(&dir2, &meta_tmp[0]);
        drop(QueueOptions::new().open_appender(&dir2).unwrap());
        assert_eq!(tmp_files(&dir2), Vec::<String>::new());
    }

    #[test]
    fn temporary_names() {
        for good in [
            ".queue.meta.tmp-12-345",
            ".worker.tailer.tmp-1-2",
            ".a.b.tailer.tmp-9-9",
        ] {
            assert!(is_tmp_name(good), "{good}");
        }
        for bad in [
            "queue.meta.tmp-12-345",
            ".queue.meta.tmp-12",
            ".queue.meta.tmp-x-1",
            ".queue.meta.tmp-1-",
            ".other.tmp-1-2",
            "..x.tailer.tmp-1-2",
            ".bad name.tailer.tmp-1-2",
            ".worker.tailer",
            "00000000000000000000.seg",
        ] {
            assert!(!is_tmp_name(bad), "{bad}");
        }
    }
}
