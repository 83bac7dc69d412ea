//! Header validation of the files mapipc opens: region, channel and queue headers read from
//! a file must never make mapipc crash, hang or panic, and a header that passes must
//! describe ranges inside the file.
//!
//! The first byte picks what the rest is:
//! - 0: a region header, validated as bytes (`mapipc::region::fuzzing::header`);
//! - 1: queue metadata, segment and named-tailer headers (`mapipc::queue::fuzzing::headers`);
//! - 2: a channel header's fixed line (`mapipc::channel::fuzzing::fixed`);
//! - 3: a whole region file, opened with `RegionOptions::open`, then used as a region and
//!   as a channel;
//! - 4: a valid channel file (its kind from the next byte) damaged by `(offset: u16,
//!   value: u64)` writes, then opened and used the same way;
//! - 5: a named tailer's file in a valid queue (with the next byte even, the rest of the
//!   input; odd, the valid file damaged by `(offset, value)` writes), then the tailer
//!   queue's `stat` taken and the tailer opened, read and acknowledged.
//!
//! Files live in a temporary directory in `/dev/shm` (or the system's).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run headers -- -max_total_time=60`
#![no_main]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mapipc::channel::{Channel, ChannelOptions, Kind};
use mapipc::queue::{Appender, QueueOptions, ReadError, TailerOptions};
use mapipc::region::RegionOptions;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 6 {
        0 => mapipc::region::fuzzing::header(rest),
        1 => mapipc::queue::fuzzing::headers(rest),
        2 => mapipc::channel::fuzzing::fixed(rest),
        3 => {
            let dir = tempdir();
            let path = dir.path().join("region");
            std::fs::write(&path, &rest[..rest.len().min(64 * 1024)]).unwrap();
            use_file(&path);
        }
        4 => {
            let Some((&kind, patches)) = rest.split_first() else {
                return;
            };
            let dir = tempdir();
            let path = dir.path().join("chan");
            let kind = [Kind::Spsc, Kind::Mpsc, Kind::Broadcast][usize::from(kind % 3)];
            let Ok(chan) = ChannelOptions::new(kind)
                .capacity(4096)
                .max_producers(4)
                .max_subscribers(4)
                .create(&path)
            else {
                return;
            };
            drop(chan);
            let mut bytes = std::fs::read(&path).unwrap();
            patch(&mut bytes, patches);
            std::fs::write(&path, &bytes).unwrap();
            use_file(&path);
        }
        _ => {
            let t = template();
            let dir = tempdir();
            let q = dir.path().join("q");
            copy_dir(t.path(), &q);
            let Some((&how, rest)) = rest.split_first() else {
                return;
            };
            let file = q.join("t.tailer");
            if how & 1 == 0 {
                std::fs::write(&file, &rest[..rest.len().min(8192)]).unwrap();
            } else {
                // The valid file, damaged: past byte 24 the header CRC still holds.
                let mut bytes = std::fs::read(&file).unwrap();
                patch(&mut bytes, rest);
                std::fs::write(&file, &bytes).unwrap();
            }
            let _ = mapipc::queue::stat(&q);
            if let Ok(mut tailer) = TailerOptions::new().name("t").open(&q) {
                for _ in 0..16 {
                    match tailer.try_next() {
                        Ok(Some(rec)) => {
                            let _ = rec.to_vec();
                        }
                        Ok(None) => break,
                        Err(ReadError::Corrupt(_)) => {
                            if !matches!(tailer.skip_corrupt(), Ok(Some(_))) {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
                let _ = tailer.ack();
            }
        }
    }
});

/// Opens a file as a region (not waiting for a creator: a zero magic is refused at once),
/// uses it, then as a channel.
fn use_file(path: &Path) {
    let Ok(region) = RegionOptions::new().init_timeout(Duration::ZERO).open(path) else {
        return;
    };
    assert!(region.data_offset() + region.len() as u64 <= region.as_mmap().len() as u64);
    let _ = region.info();
    let _ = region.peers();
    let _ = region.generation();
    if let Ok(peer) = region.join() {
        assert!(region.is_alive(peer.id()));
        drop(peer);
    }
    let Ok(chan) = Channel::from_region(region) else {
        return;
    };
    mapipc::channel::fuzzing::exercise(&chan);
}

/// Applies `(offset: u16, value: u64)` writes, offsets modulo the length.
fn patch(bytes: &mut [u8], patches: &[u8]) {
    let len = bytes.len();
    for p in patches.chunks_exact(10) {
        let off = usize::from(u16::from_le_bytes([p[0], p[1]])) % len;
        let n = (len - off).min(8);
        bytes[off..off + n].copy_from_slice(&p[2..2 + n]);
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// A queue with a few records, to copy for each input.
fn template() -> &'static tempfile::TempDir {
    static T: OnceLock<tempfile::TempDir> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempdir();
        let q = dir.path().join("q");
        let mut app: Appender = QueueOptions::new()
            .segment_size(64 * 1024)
            .open_appender(&q)
            .unwrap();
        for i in 0..8u8 {
            app.append(&[i; 10]).unwrap();
        }
        drop(app);
        // A named tailer's file as the library writes it, for the fuzzer's seeds.
        drop(TailerOptions::new().name("t").open(&q).unwrap());
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    let from = from.join("q");
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
