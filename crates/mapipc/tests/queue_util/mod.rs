//! Helpers shared by the queue's integration tests (`queue.rs`, `queue_crashes.rs`): where
//! queues live, their segment files, a queue of small segments, and a whole-log check
//! against each file's own payload function.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mapipc::queue::{Appender, QueueOptions, Tailer};

/// A temporary directory on tmpfs when there is one (these tests write hundreds of MiB),
/// else in the default temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// The segment files of a queue, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".seg"))
        .collect();
    v.sort();
    v
}

/// Opens (creating) the queue in `dir` with 64 KiB segments, the smallest: rolls come
/// quickly.
pub fn small_segments(dir: &Path) -> Appender {
    QueueOptions::new()
        .segment_size(64 * 1024)
        .open_appender(dir)
        .unwrap()
}

/// Reads the whole log from the start in this process; every record must be
/// `payload(seq)` with contiguous sequence numbers. Returns how many.
pub fn check_log_of(dir: &Path, payload: fn(u64) -> Vec<u8>) -> u64 {
    let mut t = Tailer::open(dir).unwrap();
    let mut n = 0u64;
    while let Some(rec) = t.try_next().unwrap() {
        assert_eq!(rec.seq(), n, "records are contiguous");
        assert_eq!(rec.to_vec().unwrap(), payload(n), "payload of record {n}");
        n += 1;
    }
    n
}
