//! Segment recovery over arbitrary bytes: a queue whose last segment (its records, its
//! header and index, or the whole file) or metadata file holds whatever the fuzzer chose
//! must never make `verify`, crash recovery (opening an appender), appending or reading
//! crash, hang or panic: only results and typed errors.
//!
//! Only the public API is used: `mapipc::queue::{verify, Appender, Tailer}` on files written
//! into a temporary directory.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run queue_recovery -- -max_total_time=60`
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mapipc::queue::{self, Appender, QueueOptions, ReadError, Tailer};

const SEGMENT_SIZE: usize = 64 * 1024;

/// A valid queue to start from: its metadata file, its first segment, and where records
/// start in a segment.
struct Template {
    meta: Vec<u8>,
    segment: Vec<u8>,
    data_offset: usize,
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempdir();
        let q = dir.path().join("q");
        let mut app = QueueOptions::new()
            .segment_size(SEGMENT_SIZE as u64)
            .open_appender(&q)
            .unwrap();
        app.append(b"template-record").unwrap();
        drop(app);
        let segment = std::fs::read(segment_path(&q)).unwrap();
        let at = segment
            .windows(15)
            .position(|w| w == b"template-record")
            .unwrap();
        let data_offset = at - 24;
        let mut empty = segment.clone();
        empty[data_offset..].fill(0);
        // The index entry of record 0 points to it: clear that too.
        empty[128..data_offset].fill(0);
        Template {
            meta: std::fs::read(q.join("queue.meta")).unwrap(),
            segment: empty,
            data_offset,
        }
    })
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

fn segment_path(q: &Path) -> PathBuf {
    q.join("00000000000000000000.seg")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t = template();
    let dir = tempdir();
    let q = dir.path().join("q");
    std::fs::create_dir(&q).unwrap();
    let mut meta = t.meta.clone();
    let mut segment = t.segment.clone();
    match mode % 4 {
        // The records.
        0 => {
            let n = rest.len().min(SEGMENT_SIZE - t.data_offset);
            segment[t.data_offset..t.data_offset + n].copy_from_slice(&rest[..n]);
        }
        // The whole segment file, header and size included.
        1 => segment = rest[..rest.len().min(SEGMENT_SIZE)].to_vec(),
        // Real records, then damage: `[len, bytes...]*` up to a 0 length, then
        // `(offset lo, offset hi, xor)` triples.
        2 => {
            std::fs::write(q.join("queue.meta"), &meta).unwrap();
            std::fs::write(segment_path(&q), &segment).unwrap();
            let mut app = QueueOptions::new().open_appender(&q).unwrap();
            let mut i = 0;
            while i < rest.len() && rest[i] != 0 {
                let len = rest[i] as usize;
                let end = (i + 1 + len).min(rest.len());
                let _ = app.append(&rest[i + 1..end]);
                i = end;
            }
            drop(app);
            segment = std::fs::read(segment_path(&q)).unwrap();
            for flip in rest.get(i + 1..).unwrap_or(&[]).chunks_exact(3) {
                let off = u16::from_le_bytes([flip[0], flip[1]]) as usize % segment.len();
                segment[off] ^= flip[2];
            }
        }
        // The metadata file.
        _ => meta = rest[..rest.len().min(4096)].to_vec(),
    }
    std::fs::write(q.join("queue.meta"), &meta).unwrap();
    std::fs::write(segment_path(&q), &segment).unwrap();

    let _ = queue::verify(&q);
    let _ = queue::stat(&q);
    read_all(&q);
    // Crash recovery, then the queue must take appends (or refuse with an error).
    if let Ok(mut app) = Appender::open(&q) {
        let _ = app.append(b"after recovery");
        drop(app);
        if let Ok(report) = queue::verify(&q) {
            // Recovery leaves no damage at the tail: at most what was in the middle.
            let _ = report;
        }
        read_all(&q);
    }
});

/// Reads everything, skipping damage, with a bound on the steps (a loop would be a bug).
fn read_all(q: &Path) {
    let Ok(mut t) = Tailer::open(q) else { return };
    for _ in 0..100_000 {
        match t.try_next() {
            Ok(Some(rec)) => {
                let _ = rec.to_vec();
            }
            Ok(None) => return,
            Err(ReadError::Corrupt(_)) => match t.skip_corrupt() {
                Ok(Some(_)) => {}
                _ => return,
            },
            Err(_) => return,
        }
    }
    panic!("reading did not terminate");
}
