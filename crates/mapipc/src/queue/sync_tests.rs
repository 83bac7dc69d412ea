//! What [`Appender::sync`] and the sync policies write back, checked byte by byte.
//!
//! Page-cache write-back cannot be observed from user space (a killed process does not
//! lose the page cache; only a machine crash does), so these tests compare the segment
//! files after every operation with their previous contents, mark each changed byte
//! unsynced, and clear what the write-backs recorded by
//! [`writeback_log`](crate::queue::segment::writeback_log) cover. Whenever the appender claims
//! every record is on disk (`synced_seq() == next_seq()`), no changed byte of any segment
//! may be left unsynced, nor the directory after a segment appeared in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::queue::format::{parse_segment_name, record_size, segment_path, MIN_SEGMENT_SIZE};
use crate::queue::segment::writeback_log::{self, Event};
use crate::queue::{Appender, QueueOptions, SyncPolicy};

/// The bytes of every published segment file of the queue in `dir`.
fn segments(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if parse_segment_name(name).is_some() {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// Which bytes of which segment changed and were not written back since.
struct Unsynced {
    dir: PathBuf,
    seen: BTreeMap<PathBuf, Vec<u8>>,
    /// Per file, one flag per byte.
    bytes: BTreeMap<PathBuf, Vec<bool>>,
    /// A segment appeared since the directory was last synced.
    dir_entries: bool,
}

impl Unsynced {
    /// Starts tracking from the current contents, taken as written back.
    fn start(dir: &Path) -> Unsynced {
        writeback_log::start();
        Unsynced {
            dir: dir.to_path_buf(),
            seen: segments(dir),
            bytes: BTreeMap::new(),
            dir_entries: false,
        }
    }

    /// Accounts for the operation just done (its writes, then its write-backs) and checks
    /// that the appender claims no more than is written back. Returns the write-backs.
    fn after(&mut self, app: &Appender, what: &str) -> Vec<Event> {
        let now = segments(&self.dir);
        let zeros = vec![0u8; MIN_SEGMENT_SIZE as usize];
        for (path, bytes) in &now {
            let before = match self.seen.get(path) {
                Some(b) => b,
                None => {
                    // A new segment: its `.pre` file held zeros before it was renamed.
                    self.dir_entries = true;
                    &zeros
                }
            };
            let flags = self
                .bytes
                .entry(path.clone())
                .or_insert_with(|| vec![false; bytes.len()]);
            for (i, (a, b)) in bytes.iter().zip(before).enumerate() {
                if a != b {
                    flags[i] = true;
                }
            }
        }
        let events = writeback_log::take();
        for event in events.clone() {
            match event {
                Event::Range { path, from, to } => {
                    if let Some(flags) = self.bytes.get_mut(&path) {
                        flags[from as usize..to as usize].fill(false);
                    }
                }
                Event::File(path) => {
                    if let Some(flags) = self.bytes.get_mut(&path) {
                        flags.fill(false);
                    }
                }
                Event::Dir(dir) => {
                    assert_eq!(dir, self.dir);
                    self.dir_entries = false;
                }
            }
        }
        self.seen = now;
        if app.synced_seq() == app.next_seq() {
            for (path, flags) in &self.bytes {
                let dirty: Vec<usize> = (0..flags.len()).filter(|&i| flags[i]).collect();
                assert!(
                    dirty.is_empty(),
                    "{what}: synced_seq() = next_seq() = {}, but {} bytes of {} were never \
                     written back, from offset {} to {}",
                    app.next_seq(),
                    dirty.len(),
                    path.display(),
                    dirty[0],
                    dirty[dirty.len() - 1],
                );
            }
            assert!(
                !self.dir_entries,
                "{what}: synced_seq() = next_seq() = {}, but the directory was not synced \
                 after a segment was published",
                app.next_seq()
            );
        }
        events
    }
}

/// ~3.5 segments of records, appended by copy and by `reserve`/`commit`,
/// with abandoned grants, checked after every operation; rolls happen in each of the three
/// ways (an append, a committed grant, an abandoned grant). Then a `sync` must leave
/// nothing unsynced, in any segment, nor the directory.
fn sync_writes_back_everything(policy: SyncPolicy) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let mut app = QueueOptions::new()
        .segment_size(MIN_SEGMENT_SIZE)
        .index_interval(4)
        .sync(policy)
        .open_appender(&dir)
        .unwrap();
    for _ in 0..5 {
        app.append(&[7u8; 1000]).unwrap();
    }
    app.sync().unwrap();
    assert_eq!(app.synced_seq(), 5);
    let first_segment = app.seg.number;
    let mut unsynced = Unsynced::start(&dir);
    // Rolls by: an append, a committed grant, an abandoned grant.
    let mut rolls = [0u32; 3];
    for i in 0..260u32 {
        let fill = (i % 250 + 1) as u8;
        let what = format!("{policy:?}, operation {i}");
        let full = app.next_off + record_size(1000) > app.layout.data_end();
        let kind = match rolls.iter().position(|&n| n == 0) {
            Some(k) if full => k,
            _ if i % 7 == 3 => 2,
            _ if i % 3 == 0 => 1,
            _ => 0,
        };
        let before = app.seg.number;
        match kind {
            0 => drop(app.append(&[fill; 1000]).unwrap()),
            1 => {
                let mut g = app.reserve(1000).unwrap();
                g.fill(fill).unwrap();
                g.commit().unwrap();
            }
            _ => drop(app.reserve(1000).unwrap()),
        }
        rolls[kind] += u32::from(app.seg.number != before);
        let _ = unsynced.after(&app, &what);
    }
    assert!(app.seg.number >= first_segment + 3, "{policy:?}: rolled");
    assert!(rolls.iter().all(|&n| n > 0), "{policy:?}: rolls {rolls:?}");
    if policy == SyncPolicy::None {
        assert_eq!(app.synced_seq(), 5, "None: nothing synced but by `sync`");
    }
    app.sync().unwrap();
    assert_eq!(app.synced_seq(), app.next_seq());
    unsynced.after(&app, &format!("{policy:?}, sync"));
    // Nothing left: a second sync does nothing.
    app.sync().unwrap();
    assert_eq!(unsynced.after(&app, &format!("{policy:?}, sync again")), []);
    // Only what is unsynced is written back: one record in the current segment is
    // one `msync` of it, no other segment, no directory.
    app.append(b"one more").unwrap();
    if policy != SyncPolicy::Always {
        app.sync().unwrap();
    }
    let events = unsynced.after(&app, &format!("{policy:?}, one more"));
    assert!(
        matches!(&events[..], [Event::Range { path, .. }] if *path == app.seg.path),
        "{policy:?}: {events:?}"
    );
}

#[test]
fn sync_writes_back_everything_under_no_policy() {
    sync_writes_back_everything(SyncPolicy::None);
}

/// Syncs at rolls only (and at the final `sync`).
#[test]
fn sync_writes_back_everything_under_batch_policy_at_rolls() {
    sync_writes_back_everything(SyncPolicy::Batch {
        records: 1_000_000,
        interval: Duration::from_secs(3600),
    });
}

/// Rolls fall in the middle of batches (59 records fill a segment).
#[test]
fn sync_writes_back_everything_under_batch_policy_across_rolls() {
    sync_writes_back_everything(SyncPolicy::Batch {
        records: 5,
        interval: Duration::from_secs(3600),
    });
}

#[test]
fn sync_writes_back_everything_under_always_policy() {
    sync_writes_back_everything(SyncPolicy::Always);
}

/// A roll under [`SyncPolicy::None`] leaves the old segment to the next `sync`, which
/// writes back each segment rolled away from since the previous one (by name: one
/// deleted meanwhile is skipped), then the current one from its header, then the
/// directory, and only then moves `synced_seq`.
#[test]
fn sync_after_rolls_under_no_policy_covers_each_rolled_segment_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let mut app = QueueOptions::new()
        .segment_size(MIN_SEGMENT_SIZE)
        .open_appender(&dir)
        .unwrap();
    writeback_log::start();
    while app.seg.number < 3 {
        app.append(&[1u8; 1000]).unwrap();
    }
    assert_eq!(
        writeback_log::take(),
        [],
        "None: no write-back while appending"
    );
    assert_eq!(app.synced_seq(), 0);
    // Retention may delete a segment rolled away from before the sync: nothing to do.
    std::fs::remove_file(segment_path(&dir, 1)).unwrap();
    app.sync().unwrap();
    let seg = |n| segment_path(&dir, n);
    assert_eq!(
        writeback_log::take(),
        [
            Event::File(seg(0)),
            Event::File(seg(1)),
            Event::File(seg(2)),
            Event::Range {
                path: seg(3),
                from: 0,
                to: app.next_off
            },
            Event::Dir(dir.clone()),
        ]
    );
    assert_eq!(app.synced_seq(), app.next_seq());
}
