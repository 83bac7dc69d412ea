//! Integration tests of the mapping layer (`mapipc::map`), issue 2.
//!
//! - `tip1_*` … `tip7_*` reproduce the seven TIPS of the tutorial
//!   (`shared/seed/mmap-ipc-tutorial.zh.md`) and assert the safe behaviour mapipc promises
//!   instead of the raw `mmap` failure (lost base pointer, `EACCES`, `EINVAL`, `SIGSEGV`);
//! - the other error variants, copy-on-write, flush, advise, grow, protection, the cursor,
//!   `find` and the borrowing rules;
//! - real processes: a forked child writing into an anonymous shared mapping, two unrelated
//!   processes (this test binary re-executed) exchanging data through one file, and another
//!   process truncating a file under a live mapping;
//! - a property test of random operation sequences against a `Vec<u8>` model.
//!
//! Every child process is guarded by the watchdog of `common::Child::wait`
//! ([`WATCHDOG`]), which kills it and fails the test if it hangs. No test asserts on elapsed
//! time.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{fork, Child, Exit, WATCHDOG};

use mapipc::map::{
    AccessError, Advice, AdviseError, Bounds, FlushError, GrowError, LockError, MapError,
    MapOptions, Mmap, ProtectError, Protection, Sharing,
};
use mapipc::os::file::{AccessMode, FileKind, Seals};
use proptest::prelude::*;

/// Environment variable that turns [`child_process_entry`] into the second process of
/// [`two_unrelated_processes_exchange_data_through_one_file`].
const CHILD_ROLE_ENV: &str = "MAPIPC_TEST_CHILD_ROLE";
/// The file the child maps.
const CHILD_FILE_ENV: &str = "MAPIPC_TEST_CHILD_FILE";

fn page() -> usize {
    mapipc::os::mem::page_size()
}

/// Deterministic bytes that differ between neighbouring offsets and are not periodic with
/// the page size, so reading from a wrong offset is always detected.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// The address ranges of `/proc/self/maps` lines that map `path`.
fn mapped_ranges_of(path: &Path) -> Vec<(usize, usize)> {
    let canonical = fs::canonicalize(path).unwrap();
    let name = canonical.to_str().unwrap();
    fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.ends_with(name))
        .map(|line| {
            let range = line.split_whitespace().next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            )
        })
        .collect()
}

fn covers(ranges: &[(usize, usize)], addr: usize, len: usize) -> bool {
    ranges.iter().any(|&(a, b)| a <= addr && addr + len <= b)
}

/// Another process truncates `path` to `size` bytes (coreutils `truncate`).
fn truncate_by_other_process(path: &Path, size: u64) {
    let child = Command::new("truncate")
        .arg("-s")
        .arg(size.to_string())
        .arg(path)
        .spawn()
        .expect("spawn `truncate`");
    let status = Child::adopt(child).wait();
    assert_eq!(status, Exit::Code(0), "truncate failed");
    assert_eq!(fs::metadata(path).unwrap().len(), size);
}

// ---------------------------------------------------------------------------------------
// The tutorial's TIPS
// ---------------------------------------------------------------------------------------

/// TIP 1: `ptr++` then `munmap(ptr, len)` fails. Here the mapping owns its base and length:
/// whatever the user does with offsets and cursors, drop unmaps the whole kernel mapping.
#[test]
fn tip1_moving_a_cursor_or_using_offsets_never_breaks_unmapping() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "tip1.bin", &pattern(5 * page(), 1));
    let map = MapOptions::new()
        .read_write()
        .offset(1000)
        .map_path(&path)
        .unwrap();
    let addr = map.as_ptr() as usize;
    assert_eq!(addr % page(), 1000, "byte 0 is 1000 bytes into a page");
    assert!(covers(&mapped_ranges_of(&path), addr, map.len()));

    // "ptr++": move a cursor all over the mapping, write and read through it.
    let mut cursor = map.cursor();
    cursor.seek(SeekFrom::Start(4097)).unwrap();
    cursor.write_all(b"moved").unwrap();
    cursor.seek(SeekFrom::End(-3)).unwrap();
    let mut tail = Vec::new();
    cursor.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, pattern(5 * page(), 1)[5 * page() - 3..]);
    cursor.seek(SeekFrom::Current(-100)).unwrap();
    assert_eq!(map.read_vec(4097, 5).unwrap(), b"moved");
    drop(map); // the cursor's borrow ended above
    assert!(
        mapped_ranges_of(&path).is_empty(),
        "after drop nothing of the file is mapped any more"
    );

    // Same after `grow`, which may move the mapping: drop unmaps the new range.
    let path2 = write_file(dir.path(), "tip1-grow.bin", &pattern(page(), 2));
    let mut map = MapOptions::new()
        .read_write()
        .offset(10)
        .map_path(&path2)
        .unwrap();
    map.grow(64 * page()).unwrap();
    assert!(covers(
        &mapped_ranges_of(&path2),
        map.as_ptr() as usize,
        map.len()
    ));
    drop(map);
    assert!(mapped_ranges_of(&path2).is_empty());
}

/// TIP 2: `O_RDONLY` + `PROT_READ|PROT_WRITE` fails with `EACCES` (`MAP_FAILED`). Here the
/// error names the file, its open mode and the request.
#[test]
fn tip2_fd_access_mode_conflicting_with_the_request_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "tip2.bin", b"0123456789");

    let ro = File::open(&path).unwrap();
    let err = MapOptions::new().read_write().map_fd(&ro).unwrap_err();
    match &err {
        MapError::AccessMode {
            open_mode,
            requested,
            ..
        } => {
            assert_eq!(*open_mode, AccessMode::ReadOnly);
            assert_eq!(requested, "shared read-write access");
        }
        other => panic!("expected AccessMode, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    assert!(msg.contains("read-only"), "{msg}");
    assert!(msg.contains("shared read-write access"), "{msg}");
    // Read-only and copy-on-write mappings are fine on an O_RDONLY fd.
    assert_eq!(
        MapOptions::new()
            .map_fd(&ro)
            .unwrap()
            .read_vec(0, 3)
            .unwrap(),
        b"012"
    );
    let cow = MapOptions::new().copy_on_write().map_fd(&ro).unwrap();
    cow.write_at(0, b"x").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"0123456789");

    // O_WRONLY cannot back any mapping: mapped memory is always readable.
    let wo = OpenOptions::new().write(true).open(&path).unwrap();
    for opts in [
        MapOptions::new(),
        MapOptions::new().read_write().clone(),
        MapOptions::new().copy_on_write().clone(),
    ] {
        let err = opts.map_fd(&wo).unwrap_err();
        assert!(
            matches!(
                err,
                MapError::AccessMode {
                    open_mode: AccessMode::WriteOnly,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("write-only"), "{msg}");
        assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    }
    let msg = MapOptions::new().map_fd(&wo).unwrap_err().to_string();
    assert!(msg.contains("shared read access"), "{msg}");

    // `create` needs to write the file too.
    let err = MapOptions::new().create(100).map_fd(&ro).unwrap_err();
    assert!(err.to_string().contains("create"), "{err}");
}

/// TIP 3: an offset of 1000 fails with `EINVAL` (not a multiple of 4 KiB). Here any offset
/// works and reads the right bytes.
#[test]
fn tip3_any_offset_works_and_reads_the_right_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let len = 3 * page() + 123;
    let data = pattern(len, 3);
    let path = write_file(dir.path(), "tip3.bin", &data);
    let p = page() as u64;
    for (offset, map_len) in [
        (1000, Some(100)),
        (1000, None),
        (p + 1, None),
        (p + 1, Some(17)),
        (2 * p - 1, Some(2)), // straddles a page boundary
        (2 * p, None),
        (len as u64 - 10, None),
        (len as u64 - 1, None),
        (len as u64 - 1, Some(1)),
    ] {
        let mut opts = MapOptions::new();
        opts.offset(offset);
        if let Some(l) = map_len {
            opts.len(l);
        }
        let map = opts.map_path(&path).unwrap();
        let expect =
            &data[offset as usize..offset as usize + map_len.unwrap_or(len - offset as usize)];
        assert_eq!(map.len(), expect.len(), "offset {offset}");
        assert_eq!(map.file_offset(), offset);
        assert_eq!(map.as_ptr() as usize % page(), offset as usize % page());
        assert_eq!(
            map.read_vec(0, map.len()).unwrap(),
            expect,
            "offset {offset}"
        );
        assert_eq!(map.read_pod::<u8>(0).unwrap(), data[offset as usize]);
    }

    // Writes at an unaligned offset land at that file offset.
    let map = MapOptions::new()
        .read_write()
        .offset(1000)
        .len(10)
        .map_path(&path)
        .unwrap();
    map.write_at(0, b"0123456789").unwrap();
    drop(map);
    let after = fs::read(&path).unwrap();
    assert_eq!(&after[1000..1010], b"0123456789");
    assert_eq!(&after[..1000], &data[..1000]);
    assert_eq!(&after[1010..], &data[1010..]);
}

/// TIP 4: `mmap` fails for a zero length, write-only protection, or an fd whose mode does
/// not fit (TIP 2). Here each is a typed error before the syscall; exec needs an opt-in.
#[test]
fn tip4_invalid_requests_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "tip4.bin", &pattern(8192, 4));

    let err = MapOptions::new().len(0).map_path(&path).unwrap_err();
    assert!(matches!(err, MapError::ZeroLength { .. }), "{err:?}");
    assert!(err.to_string().contains("zero-length"), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    assert!(matches!(
        MapOptions::new().len(0).map_anonymous().unwrap_err(),
        MapError::ZeroLength { .. }
    ));
    assert!(matches!(
        MapOptions::new().map_anonymous().unwrap_err(),
        MapError::ZeroLength { .. }
    ));
    assert!(matches!(
        Mmap::anonymous(0).unwrap_err(),
        MapError::ZeroLength { .. }
    ));

    for prot in [Protection::WRITE, Protection::WRITE | Protection::EXEC] {
        let mut opts = MapOptions::new();
        opts.protection(prot).allow_exec();
        assert!(matches!(
            opts.map_path(&path).unwrap_err(),
            MapError::WriteOnly
        ));
        assert!(matches!(
            opts.len(10).map_anonymous().unwrap_err(),
            MapError::WriteOnly
        ));
    }
    let err = MapOptions::new()
        .protection(Protection::READ | Protection::EXEC)
        .map_path(&path)
        .unwrap_err();
    assert!(matches!(err, MapError::ExecNotAllowed), "{err:?}");
    assert!(err.to_string().contains("allow_exec"), "{err}");
    assert!(matches!(
        MapOptions::new()
            .protection(Protection::READ | Protection::EXEC)
            .len(4096)
            .map_anonymous()
            .unwrap_err(),
        MapError::ExecNotAllowed
    ));
    // With the opt-in it works.
    let exec = MapOptions::new()
        .protection(Protection::READ | Protection::EXEC)
        .allow_exec()
        .map_path(&path)
        .unwrap();
    assert_eq!(exec.protection(), Protection::READ | Protection::EXEC);
    assert_eq!(exec.read_vec(0, 16).unwrap(), pattern(16, 4));

    // PROT_NONE is a valid mapping that refuses every access.
    let none = MapOptions::new()
        .protection(Protection::NONE)
        .map_path(&path)
        .unwrap();
    assert_eq!(
        none.read_vec(0, 1).unwrap_err(),
        AccessError::NotReadable {
            file: none.file_name().to_string(),
            protection: Protection::NONE
        }
    );
}

/// TIP 5: a new (empty) file cannot be mapped until it is extended. Here the error says how
/// to size it, and `MapOptions::create` sizes it (mode 0600 for files it creates).
#[test]
fn tip5_empty_file_error_explains_and_create_sizes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tip5.bin");
    File::create(&path).unwrap();
    for err in [
        MapOptions::new().map_path(&path).unwrap_err(),
        MapOptions::new().len(10).map_path(&path).unwrap_err(),
        MapOptions::new()
            .read_write()
            .map_fd(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .unwrap(),
            )
            .unwrap_err(),
    ] {
        assert!(matches!(err, MapError::EmptyFile { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(path.to_str().unwrap()), "{msg}");
        assert!(msg.contains("is empty"), "{msg}");
        assert!(msg.contains("MapOptions::create"), "{msg}");
    }

    // create() on a missing file: created with mode 0600 and sized.
    let fresh = dir.path().join("fresh.bin");
    let map = MapOptions::new()
        .read_write()
        .create(10_000)
        .map_path(&fresh)
        .unwrap();
    let meta = fs::metadata(&fresh).unwrap();
    assert_eq!(meta.len(), 10_000);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(map.len(), 10_000);
    assert_eq!(map.read_vec(0, 10_000).unwrap(), vec![0u8; 10_000]);
    map.write_at(9_999, b"z").unwrap();
    drop(map);
    assert_eq!(fs::read(&fresh).unwrap()[9_999], b'z');

    // An explicit mode; a read-only mapping with create() still sizes the file.
    let custom = dir.path().join("custom.bin");
    let map = MapOptions::new()
        .create(5)
        .mode(0o640)
        .map_path(&custom)
        .unwrap();
    assert_eq!(map.protection(), Protection::READ);
    assert_eq!(fs::metadata(&custom).unwrap().len(), 5);
    assert_eq!(
        fs::metadata(&custom).unwrap().permissions().mode() & 0o777,
        0o640
    );

    // create() on the existing empty file extends it; on a larger file it never shrinks it,
    // and existing data is kept.
    let map = MapOptions::new()
        .read_write()
        .create(4096)
        .map_path(&path)
        .unwrap();
    map.write_at(0, b"kept").unwrap();
    drop(map);
    let map = MapOptions::new().create(100).map_path(&path).unwrap();
    assert_eq!(map.len(), 4096);
    assert_eq!(fs::metadata(&path).unwrap().len(), 4096);
    assert_eq!(map.read_vec(0, 4).unwrap(), b"kept");

    // A size that does not fit off_t.
    assert!(matches!(
        MapOptions::new()
            .create(u64::MAX)
            .map_path(dir.path().join("huge.bin"))
            .unwrap_err(),
        MapError::LengthOverflow { .. }
    ));
}

/// TIP 6: closing the fd after `mmap` does not affect the mapping. Shown here for a `File`,
/// an `OwnedFd` consumed by `map_fd`, and `map_path` (which closes its own fd).
#[test]
fn tip6_closing_the_fd_leaves_the_mapping_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "tip6.bin", &pattern(8192, 6));

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let raw = file.as_raw_fd();
    let mut map = MapOptions::new().read_write().map_fd(&file).unwrap();
    drop(file); // close(fd)
    assert_ne!(
        map.file_fd().unwrap().as_raw_fd(),
        raw,
        "the mapping holds its own fd"
    );
    assert!(
        fs::read_link(format!("/proc/self/fd/{raw}"))
            .map(|p| p != fs::canonicalize(&path).unwrap())
            .unwrap_or(true),
        "the caller's fd is closed"
    );
    assert_eq!(map.read_vec(0, 8192).unwrap(), pattern(8192, 6));
    map.write_at(100, b"after close").unwrap();
    map.flush().unwrap();
    assert_eq!(&fs::read(&path).unwrap()[100..111], b"after close");
    // Growing still works: the mapping keeps its own duplicate of the fd.
    map.grow(3 * 8192).unwrap();
    map.write_at(3 * 8192 - 1, b"!").unwrap();
    drop(map);
    let after = fs::read(&path).unwrap();
    assert_eq!(after.len(), 3 * 8192);
    assert_eq!(after[3 * 8192 - 1], b'!');

    // An OwnedFd given by value is closed when map_fd returns.
    let owned: std::os::fd::OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap()
        .into();
    let map = MapOptions::new().read_write().map_fd(owned).unwrap();
    map.write_at(0, b"owned").unwrap();
    assert_eq!(&fs::read(&path).unwrap()[..5], b"owned");

    // map_path closes its own fd; the mapping lives on.
    let map = MapOptions::new().read_write().map_path(&path).unwrap();
    map.write_at(5, b"-path").unwrap();
    assert_eq!(&fs::read(&path).unwrap()[..10], b"owned-path");
}

/// TIP 7: touching past the end of a mapping is a segmentation fault. Here every access is
/// bounds-checked against the mapping's length (not the page's) and returns `OutOfBounds`.
#[test]
fn tip7_out_of_bounds_access_is_an_error_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // The tutorial's 100-byte mapping: bytes 100..4096 share the page, but are not ours.
    let path = write_file(dir.path(), "tip7.bin", &pattern(100, 7));
    let map = MapOptions::new().read_write().map_path(&path).unwrap();
    let oob = |offset: u64, len: usize| AccessError::OutOfBounds {
        file: map.file_name().to_string(),
        offset,
        len,
        map_len: 100,
        bounds: Bounds::Mapping,
    };
    let mut buf = [0u8; 2];
    assert_eq!(map.read_at(99, &mut buf).unwrap_err(), oob(99, 2));
    assert_eq!(map.read_at(100, &mut buf[..1]).unwrap_err(), oob(100, 1));
    assert_eq!(map.read_at(4000, &mut buf).unwrap_err(), oob(4000, 2));
    assert_eq!(
        map.read_at(u64::MAX, &mut buf).unwrap_err(),
        oob(u64::MAX, 2)
    );
    assert_eq!(map.write_at(99, b"ab").unwrap_err(), oob(99, 2));
    assert_eq!(
        map.write_at(u64::MAX - 1, b"ab").unwrap_err(),
        oob(u64::MAX - 1, 2)
    );
    assert_eq!(map.fill(1, usize::MAX, 0).unwrap_err(), oob(1, usize::MAX));
    assert_eq!(map.read_vec(50, 51).unwrap_err(), oob(50, 51));
    assert_eq!(map.read_pod::<u64>(93).unwrap_err(), oob(93, 8));
    assert_eq!(map.write_pod(97, &0u32).unwrap_err(), oob(97, 4));
    assert_eq!(map.atomic_u32(100).unwrap_err(), oob(100, 4)); // aligned, past the end
    assert_eq!(map.atomic_u32(3996).unwrap_err(), oob(3996, 4)); // same page, not ours
    assert_eq!(map.atomic_u64(96).unwrap_err(), oob(96, 8));
    assert_eq!(map.atomic_u64(4096).unwrap_err(), oob(4096, 8));
    assert!(matches!(
        map.atomic_u32(2).unwrap_err(),
        AccessError::Misaligned {
            offset: 2,
            align: 4,
            ..
        }
    ));
    assert_eq!(map.find_from(b"x", 101).unwrap_err(), oob(101, 0));
    assert!(matches!(
        map.flush_range(90, 11).unwrap_err(),
        FlushError::Access(AccessError::OutOfBounds { .. })
    ));
    assert!(matches!(
        map.advise_range(Advice::WillNeed, 0, 101).unwrap_err(),
        AdviseError::Access(AccessError::OutOfBounds { .. })
    ));
    let msg = oob(99, 2).to_string();
    assert!(
        msg.contains("99..101")
            && msg.contains("100 bytes")
            && msg.contains(path.to_str().unwrap()),
        "{msg}"
    );

    // Nothing was written by the refused calls, and the in-range edges work.
    map.read_at(0, &mut []).unwrap();
    map.read_at(100, &mut []).unwrap();
    assert_eq!(
        map.atomic_u32(92).unwrap().load(Ordering::SeqCst),
        map.read_pod::<u32>(92).unwrap()
    );
    map.atomic_u32(96) // the last word
        .unwrap()
        .store(u32::from_ne_bytes(*b"wxyz"), Ordering::SeqCst);
    map.write_at(98, b"ab").unwrap();
    drop(map);
    let mut expect = pattern(100, 7);
    expect[96..].copy_from_slice(b"wxab");
    assert_eq!(fs::read(&path).unwrap(), expect);

    // A cursor stops at the end instead of running past it.
    let map = Mmap::anonymous(10).unwrap();
    let mut c = map.cursor();
    c.set_position(8);
    assert_eq!(c.write(b"abcdef").unwrap(), 2);
    assert_eq!(c.write(b"x").unwrap(), 0);
    assert_eq!(
        c.write_all(b"x").unwrap_err().kind(),
        io::ErrorKind::WriteZero
    );
}

// ---------------------------------------------------------------------------------------
// More errors and operations
// ---------------------------------------------------------------------------------------

#[test]
fn offset_and_range_errors_name_the_file_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "range.bin", &pattern(5000, 8));
    let file = path.to_str().unwrap();

    for offset in [5000, 5001, u64::MAX] {
        let err = MapOptions::new()
            .offset(offset)
            .map_path(&path)
            .unwrap_err();
        match &err {
            MapError::OffsetPastEnd {
                offset: o,
                file_len,
                ..
            } => assert_eq!((*o, *file_len), (offset, 5000)),
            other => panic!("expected OffsetPastEnd, got {other:?}"),
        }
        assert!(err.to_string().contains(file), "{err}");
    }

    let err = MapOptions::new()
        .offset(4000)
        .len(1001)
        .map_path(&path)
        .unwrap_err();
    match &err {
        MapError::RangePastEnd {
            offset,
            len,
            file_len,
            ..
        } => assert_eq!((*offset, *len, *file_len), (4000, 1001, 5000)),
        other => panic!("expected RangePastEnd, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("4000..5001") && msg.contains(file), "{msg}");
    assert_eq!(
        MapOptions::new()
            .offset(4000)
            .len(1000)
            .map_path(&path)
            .unwrap()
            .len(),
        1000
    );

    for (offset, len) in [(0, usize::MAX), (1, usize::MAX - 1), (4999, usize::MAX)] {
        let err = MapOptions::new()
            .offset(offset)
            .len(len)
            .map_path(&path)
            .unwrap_err();
        assert!(
            matches!(err, MapError::LengthOverflow { .. }),
            "({offset}, {len}): {err:?}"
        );
    }
}

#[test]
fn only_regular_files_can_be_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let err = MapOptions::new().map_path(dir.path()).unwrap_err();
    match &err {
        MapError::NotRegularFile { kind, .. } => assert_eq!(*kind, FileKind::Directory),
        other => panic!("expected NotRegularFile, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("a directory"), "{msg}");
    assert!(msg.contains(dir.path().to_str().unwrap()), "{msg}");

    let err = MapOptions::new().map_path("/dev/null").unwrap_err();
    assert!(
        matches!(
            err,
            MapError::NotRegularFile {
                kind: FileKind::CharDevice,
                ..
            }
        ),
        "{err:?}"
    );

    let err = MapOptions::new()
        .map_path(dir.path().join("missing"))
        .unwrap_err();
    assert!(
        matches!(&err, MapError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    );
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn copy_on_write_never_changes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(3 * page(), 9);
    let path = write_file(dir.path(), "cow.bin", &data);
    let cow = MapOptions::new()
        .copy_on_write()
        .offset(10)
        .map_path(&path)
        .unwrap();
    assert_eq!(cow.sharing(), Sharing::Private);
    cow.write_at(0, b"private bytes").unwrap();
    cow.fill(page() as u64, 100, 0xee).unwrap();
    cow.flush().unwrap(); // a no-op for private mappings
    cow.flush_async().unwrap();
    assert_eq!(cow.read_vec(0, 13).unwrap(), b"private bytes");
    // Another mapping of the file, and the file itself, do not see the writes.
    let shared = Mmap::open(&path).unwrap();
    assert_eq!(shared.read_vec(10, 13).unwrap(), &data[10..23]);
    drop(cow);
    assert_eq!(fs::read(&path).unwrap(), data);
}

#[test]
fn flush_variants_write_back_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flush.bin");
    let map = MapOptions::new()
        .read_write()
        .create(4 * page() as u64)
        .offset(100)
        .map_path(&path)
        .unwrap();
    map.write_at(0, b"first").unwrap();
    map.flush().unwrap();
    map.write_at(page() as u64 - 2, b"straddle").unwrap();
    map.flush_range(page() as u64 - 2, 8).unwrap();
    map.write_at(2 * page() as u64, b"async").unwrap();
    map.flush_async().unwrap();
    map.flush_async_range(2 * page() as u64, 5).unwrap();
    map.flush_range(map.len() as u64, 0).unwrap(); // empty range at the end
    let on_disk = fs::read(&path).unwrap();
    assert_eq!(&on_disk[100..105], b"first");
    assert_eq!(&on_disk[100 + page() - 2..100 + page() + 6], b"straddle");
    assert_eq!(&on_disk[100 + 2 * page()..105 + 2 * page()], b"async");
    assert!(matches!(
        map.flush_range(10, map.len()).unwrap_err(),
        FlushError::Access(AccessError::OutOfBounds { .. })
    ));
    // Anonymous memory has nothing to flush.
    Mmap::anonymous(100).unwrap().flush().unwrap();
}

#[test]
fn advise_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(16 * page(), 10);
    let path = write_file(dir.path(), "advise.bin", &data);
    let map = MapOptions::new().read_write().map_path(&path).unwrap();
    for advice in [
        Advice::Sequential,
        Advice::Random,
        Advice::WillNeed,
        Advice::Normal,
    ] {
        map.advise(advice).unwrap();
        map.advise_range(advice, 5000, 3).unwrap();
    }
    // DontNeed on a shared mapping drops the pages; they come back from the file.
    map.write_at(123, b"still here").unwrap();
    map.advise(Advice::DontNeed).unwrap();
    assert_eq!(map.read_vec(123, 10).unwrap(), b"still here");
    assert_eq!(map.read_vec(4096, 100).unwrap(), &data[4096..4196]);
    // Huge pages may be unavailable for files: an error naming the advice, not a crash.
    for advice in [Advice::HugePage, Advice::NoHugePage] {
        match map.advise(advice) {
            Ok(()) => {}
            Err(AdviseError::Os { advice: a, .. }) => assert_eq!(a, advice),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    // DontNeed on private memory would discard its changes: refused, data kept.
    let cow = MapOptions::new().copy_on_write().map_path(&path).unwrap();
    cow.write_at(0, b"mine").unwrap();
    let err = cow.advise(Advice::DontNeed).unwrap_err();
    assert!(matches!(err, AdviseError::WouldDiscard), "{err:?}");
    assert!(err.to_string().contains("discard"), "{err}");
    assert_eq!(cow.read_vec(0, 4).unwrap(), b"mine");
    let private = MapOptions::new()
        .len(4096)
        .private()
        .map_anonymous()
        .unwrap();
    assert!(matches!(
        private.advise_range(Advice::DontNeed, 0, 1).unwrap_err(),
        AdviseError::WouldDiscard
    ));

    // mlock: works, or fails with a message pointing at RLIMIT_MEMLOCK.
    match map.lock() {
        Ok(()) => map.unlock().unwrap(),
        Err(e @ LockError::Os { .. }) => assert!(e.to_string().contains("RLIMIT_MEMLOCK")),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[test]
fn grow_keeps_data_and_extends_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.bin");
    let mut map = MapOptions::new()
        .read_write()
        .create(4096)
        .map_path(&path)
        .unwrap();
    map.write_at(0, b"head").unwrap();
    map.write_at(4090, b"tail!!").unwrap();
    let new_len = 3 * 4096 + 5;
    map.grow(new_len).unwrap();
    assert_eq!(map.len(), new_len);
    assert_eq!(fs::metadata(&path).unwrap().len(), new_len as u64);
    assert_eq!(map.read_vec(0, 4).unwrap(), b"head");
    assert_eq!(map.read_vec(4090, 6).unwrap(), b"tail!!");
    assert_eq!(
        map.read_vec(4096, new_len - 4096).unwrap(),
        vec![0; new_len - 4096]
    );
    map.write_at(new_len as u64 - 3, b"end").unwrap();
    map.grow(new_len).unwrap(); // same length: no-op
    let err = map.grow(10).unwrap_err();
    assert!(
        matches!(err, GrowError::Shrink { len, new_len: 10 } if len == new_len),
        "{err:?}"
    );
    assert!(matches!(
        map.grow(usize::MAX).unwrap_err(),
        GrowError::Overflow { .. }
    ));
    assert_eq!(
        map.len(),
        new_len,
        "failed grows leave the mapping unchanged"
    );
    drop(map);
    let on_disk = fs::read(&path).unwrap();
    assert_eq!(&on_disk[..4], b"head");
    assert_eq!(&on_disk[new_len - 3..], b"end");

    // An unaligned offset: the file grows to offset + new_len.
    let data = pattern(10_000, 11);
    let path = write_file(dir.path(), "grow-offset.bin", &data);
    let mut map = MapOptions::new()
        .read_write()
        .offset(5000)
        .map_path(&path)
        .unwrap();
    map.grow(20_000).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 25_000);
    assert_eq!(map.read_vec(0, 5000).unwrap(), &data[5000..]);
    map.write_at(19_999, b"Z").unwrap();
    drop(map);
    assert_eq!(fs::read(&path).unwrap()[24_999], b'Z');

    // Read-only: growing within the file works (the bytes come from the file); past its
    // end is refused, since a read-only mapping never changes its file.
    let mut ro = MapOptions::new().len(4096).map_path(&path).unwrap();
    ro.grow(8192).unwrap();
    assert_eq!(ro.read_vec(5000, 10).unwrap(), &data[5000..5010]);
    let err = ro.grow(30_000).unwrap_err();
    assert!(
        matches!(
            &err,
            GrowError::ReadOnlyMapping {
                size: 30_000,
                file_len: 25_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not writable"), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    assert_eq!(ro.len(), 8192);
    assert_eq!(fs::metadata(&path).unwrap().len(), 25_000);

    // Anonymous memory has no file to extend.
    let mut anon = Mmap::anonymous(4096).unwrap();
    assert!(matches!(anon.grow(8192).unwrap_err(), GrowError::Anonymous));
    assert_eq!(anon.len(), 4096);
}

#[test]
fn set_protection_checks_like_creation() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "prot.bin", &pattern(4096, 12));
    let mut map = MapOptions::new().read_write().map_path(&path).unwrap();
    map.set_protection(Protection::READ).unwrap();
    assert_eq!(
        map.write_at(0, b"x").unwrap_err(),
        AccessError::NotWritable {
            file: map.file_name().to_string(),
            protection: Protection::READ
        }
    );
    assert!(
        map.atomic_u32(0).is_err(),
        "atomics need a writable mapping"
    );
    map.set_protection(Protection::NONE).unwrap();
    assert_eq!(
        map.read_vec(0, 1).unwrap_err(),
        AccessError::NotReadable {
            file: map.file_name().to_string(),
            protection: Protection::NONE
        }
    );
    assert!(matches!(
        map.find(b"x").unwrap_err(),
        AccessError::NotReadable { .. }
    ));
    assert!(matches!(
        map.set_protection(Protection::WRITE).unwrap_err(),
        ProtectError::Invalid(MapError::WriteOnly)
    ));
    assert!(matches!(
        map.set_protection(Protection::READ | Protection::EXEC)
            .unwrap_err(),
        ProtectError::Invalid(MapError::ExecNotAllowed)
    ));
    map.set_protection(Protection::READ_WRITE).unwrap();
    map.write_at(0, b"rw again").unwrap();
    assert_eq!(&fs::read(&path).unwrap()[..8], b"rw again");

    // A shared mapping of an O_RDONLY fd cannot become writable.
    let mut ro = Mmap::open(&path).unwrap();
    let err = ro.set_protection(Protection::READ_WRITE).unwrap_err();
    assert!(
        matches!(
            err,
            ProtectError::Invalid(MapError::AccessMode {
                open_mode: AccessMode::ReadOnly,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(ro.protection(), Protection::READ);
    // A private one can (copy-on-write).
    let mut cow = MapOptions::new()
        .protection(Protection::READ)
        .private()
        .map_path(&path)
        .unwrap();
    cow.set_protection(Protection::READ_WRITE).unwrap();
    cow.write_at(0, b"cow").unwrap();
    assert_eq!(&fs::read(&path).unwrap()[..3], b"rw ");
}

#[test]
fn cursor_read_write_seek_edge_cases() {
    let map = Mmap::anonymous(100).unwrap();
    let mut c = map.cursor();
    assert_eq!(c.seek(SeekFrom::End(0)).unwrap(), 100);
    assert_eq!(c.read(&mut [0u8; 10]).unwrap(), 0, "end of file");
    assert_eq!(c.seek(SeekFrom::End(-10)).unwrap(), 90);
    assert_eq!(c.write(&[7u8; 20]).unwrap(), 10, "short write at the end");
    assert_eq!(c.position(), 100);
    assert_eq!(c.seek(SeekFrom::Current(-100)).unwrap(), 0);
    // Negative and overflowing seeks are errors and leave the position alone.
    assert_eq!(
        c.seek(SeekFrom::Current(-1)).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        c.seek(SeekFrom::End(-101)).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    c.seek(SeekFrom::Start(u64::MAX)).unwrap();
    assert!(c.seek(SeekFrom::Current(1)).is_err());
    assert_eq!(c.position(), u64::MAX);
    // Far past the end: reads return 0, writes 0, nothing is touched.
    assert_eq!(c.read(&mut [0u8; 4]).unwrap(), 0);
    assert_eq!(c.write(b"abc").unwrap(), 0);
    c.set_position(1 << 40);
    assert_eq!(c.read(&mut [0u8; 4]).unwrap(), 0);

    c.seek(SeekFrom::Start(0)).unwrap();
    c.write_all(b"hello ").unwrap();
    write!(c, "world {}", 42).unwrap();
    c.flush().unwrap();
    c.rewind().unwrap();
    let mut s = [0u8; 14];
    c.read_exact(&mut s).unwrap();
    assert_eq!(&s, b"hello world 42");
    c.seek(SeekFrom::Start(95)).unwrap();
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 5);
    assert_eq!(rest, [7u8; 5]);
    let mut too_long = [0u8; 6];
    c.seek(SeekFrom::Start(95)).unwrap();
    assert_eq!(
        c.read_exact(&mut too_long).unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );

    // io::copy through the cursor of a file mapping with an unaligned offset.
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(70_000, 13);
    let path = write_file(dir.path(), "cursor.bin", &data);
    let fmap = MapOptions::new().offset(777).map_path(&path).unwrap();
    let mut out = Vec::new();
    io::copy(&mut fmap.cursor(), &mut out).unwrap();
    assert_eq!(out, &data[777..]);
    // Writing through a read-only mapping's cursor is a PermissionDenied error.
    let err = fmap.cursor().write(b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(fmap.cursor().get_ref().len(), fmap.len());
}

#[test]
fn find_across_the_chunk_boundary_and_at_the_end() {
    const CHUNK: usize = Mmap::CHUNK; // find's internal window
    let len = 3 * CHUNK + 123;
    let map = Mmap::anonymous(len).unwrap();
    let needle = b"NEEDLE-42";
    assert_eq!(map.find(needle).unwrap(), None);
    // The needle at every position around the first and second window boundaries.
    for boundary in [CHUNK, 2 * CHUNK - needle.len() + 1] {
        for d in 0..needle.len() + 2 {
            let at = (boundary - d) as u64;
            map.write_at(at, needle).unwrap();
            assert_eq!(map.find(needle).unwrap(), Some(at), "at {at}");
            assert_eq!(map.find_from(needle, at).unwrap(), Some(at));
            assert_eq!(map.find_from(needle, at + 1).unwrap(), None);
            map.fill(at, needle.len(), 0).unwrap();
        }
    }
    // At the very end, and cut off by the end.
    let end = (len - needle.len()) as u64;
    map.write_at(end, needle).unwrap();
    assert_eq!(map.find(needle).unwrap(), Some(end));
    assert_eq!(map.find(b"NEEDLE-42\0").unwrap(), None);
    assert_eq!(
        map.find_from(b"2", len as u64 - 1).unwrap(),
        Some(len as u64 - 1)
    );
    assert_eq!(map.find_from(b"2", len as u64).unwrap(), None);
    map.fill(end, needle.len(), 0).unwrap();
    map.write_at(len as u64 - 4, b"NEED").unwrap();
    assert_eq!(map.find(needle).unwrap(), None);
    assert_eq!(map.find(b"NEED").unwrap(), Some(len as u64 - 4));
    // The first of several occurrences; empty needles; needles longer than the mapping.
    map.write_at(5, b"ab").unwrap();
    map.write_at(CHUNK as u64 * 2, b"ab").unwrap();
    assert_eq!(map.find(b"ab").unwrap(), Some(5));
    assert_eq!(map.find_from(b"ab", 6).unwrap(), Some(CHUNK as u64 * 2));
    assert_eq!(map.find(b"").unwrap(), Some(0));
    assert_eq!(map.find_from(b"", len as u64).unwrap(), Some(len as u64));
    let small = Mmap::anonymous(3).unwrap();
    assert_eq!(small.find(b"\0\0\0\0").unwrap(), None);
    assert_eq!(small.find(b"\0\0\0").unwrap(), Some(0));
    assert_eq!(small.find_from(b"\0\0", 2).unwrap(), None);
    assert_eq!(small.find_from(b"\0", 2).unwrap(), Some(2));
    // A needle longer than the internal window.
    let long = pattern(CHUNK + 1000, 14);
    map.write_at(CHUNK as u64 + 17, &long).unwrap();
    assert_eq!(map.find(&long).unwrap(), Some(CHUNK as u64 + 17));
}

#[test]
fn for_each_chunk_streams_exactly_the_range_in_order() {
    let data = pattern(5 * Mmap::CHUNK + 777, 21);
    let map = Mmap::anonymous(data.len()).unwrap();
    map.write_at(0, &data).unwrap();
    for (offset, len) in [
        (0, data.len()),
        (13, data.len() - 13),
        (Mmap::CHUNK as u64 - 1, 2),
        (100, 0),
        (data.len() as u64, 0),
    ] {
        let mut got = Vec::new();
        let mut next = offset;
        map.for_each_chunk(offset, len, |at, bytes| {
            assert_eq!(at, next, "chunks in order, without gaps");
            assert!(!bytes.is_empty() && bytes.len() <= Mmap::CHUNK);
            next += bytes.len() as u64;
            got.extend_from_slice(bytes);
        })
        .unwrap();
        let o = offset as usize;
        assert_eq!(got, &data[o..o + len], "offset {offset} len {len}");
    }
    // Out of range: an error before any chunk.
    let mut calls = 0;
    let err = map
        .for_each_chunk(10, data.len(), |_, _| calls += 1)
        .unwrap_err();
    assert!(matches!(err, AccessError::OutOfBounds { .. }), "{err}");
    assert_eq!(calls, 0);
}

#[test]
fn for_each_chunk_stops_with_an_error_when_the_file_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(1 << 20, 23);
    let path = write_file(dir.path(), "shrinks.bin", &data);
    let map = MapOptions::new().map_path(&path).unwrap();
    let mut seen = 0usize;
    let err = map
        .for_each_chunk(0, map.len(), |at, bytes| {
            // Every chunk handed out holds the file's bytes, never the zeros a lost page
            // reads as.
            let at = at as usize;
            assert_eq!(bytes, &data[at..at + bytes.len()]);
            seen += bytes.len();
            if seen == 4 * Mmap::CHUNK {
                truncate_by_other_process(&path, 4096 * 20);
            }
        })
        .unwrap_err();
    assert!(matches!(err, AccessError::Truncated { .. }), "{err}");
    assert!((4 * Mmap::CHUNK..=4096 * 20).contains(&seen), "{seen}");
}

#[test]
fn borrowing_is_offered_only_where_nobody_else_can_write() {
    // Shared anonymous memory: a forked child could write it.
    let mut shared = Mmap::anonymous(64).unwrap();
    assert!(shared.try_as_slice().is_none());
    assert!(shared.try_as_mut_slice().is_none());

    // Private anonymous memory: exclusively ours.
    let mut private = MapOptions::new().len(64).private().map_anonymous().unwrap();
    private.try_as_mut_slice().unwrap()[..5].copy_from_slice(b"mine!");
    assert_eq!(private.read_vec(0, 5).unwrap(), b"mine!");
    // A shared borrow of writable memory is refused: `write_at(&self)` could change it
    // behind the slice. Once read-only, it can be borrowed.
    assert!(private.try_as_slice().is_none());
    private.set_protection(Protection::READ).unwrap();
    assert_eq!(&private.try_as_slice().unwrap()[..5], b"mine!");
    assert!(private.try_as_mut_slice().is_none(), "not writable");
    private.set_protection(Protection::NONE).unwrap();
    assert!(private.try_as_slice().is_none(), "not readable");

    // Files: someone else may write (or truncate) them.
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "borrow.bin", &pattern(100, 15));
    assert!(Mmap::open(&path).unwrap().try_as_slice().is_none());
    let mut cow = MapOptions::new().copy_on_write().map_path(&path).unwrap();
    assert!(cow.try_as_slice().is_none());
    assert!(cow.try_as_mut_slice().is_none());

    // A memfd sealed against writing and shrinking: nobody can change it.
    let data = pattern(10_000, 16);
    let memfd = mapipc::os::file::memfd_create("mapipc-test-sealed").unwrap();
    mapipc::os::file::pwrite_all(std::os::fd::AsFd::as_fd(&memfd), &data, 0).unwrap();
    let only_shrink = MapOptions::new().map_fd(&memfd).unwrap();
    mapipc::os::file::add_seals(
        std::os::fd::AsFd::as_fd(&memfd),
        Seals {
            shrink: true,
            ..Seals::default()
        },
    )
    .unwrap();
    assert!(only_shrink.try_as_slice().is_none(), "sealed after mapping");
    let shrink_sealed = MapOptions::new().map_fd(&memfd).unwrap();
    assert!(
        shrink_sealed.try_as_slice().is_none(),
        "still writable by others"
    );
    // F_SEAL_WRITE needs every shared mapping that could become writable gone.
    drop((only_shrink, shrink_sealed));
    mapipc::os::file::add_seals(
        std::os::fd::AsFd::as_fd(&memfd),
        Seals {
            write: true,
            ..Seals::default()
        },
    )
    .unwrap();
    let sealed = MapOptions::new().offset(1).map_fd(&memfd).unwrap();
    assert_eq!(sealed.try_as_slice().unwrap(), &data[1..]);
    let mut sealed_again = MapOptions::new().map_fd(&memfd).unwrap();
    assert!(sealed_again.try_as_mut_slice().is_none());
    // Shared writable mappings of a write-sealed memfd are refused by the kernel.
    assert!(MapOptions::new().read_write().map_fd(&memfd).is_err());
    // A private writable mapping of it could be changed by our own write_at.
    let sealed_cow = MapOptions::new().copy_on_write().map_fd(&memfd).unwrap();
    assert!(sealed_cow.try_as_slice().is_none());
    sealed_cow.write_at(0, b"x").unwrap();
    assert_eq!(
        sealed.try_as_slice().unwrap(),
        &data[1..],
        "the memfd is unchanged"
    );
}

// ---------------------------------------------------------------------------------------
// Related processes: fork
// ---------------------------------------------------------------------------------------

/// The tutorial's first scenario: the parent creates an anonymous shared mapping, forks, the
/// child writes a message, the parent reads it after `waitpid`.
#[test]
fn fork_child_writes_into_anonymous_shared_map_parent_reads() {
    let map = Mmap::anonymous(4096).unwrap();
    let counter = map.atomic_u64(4088).unwrap();
    map.write_at(0, b"from parent").unwrap();
    let mut child = fork(|| {
        let mut seen = [0u8; 11];
        if map.read_at(0, &mut seen).is_err() || &seen != b"from parent" {
            return 2;
        }
        if map.write_at(100, b"nihao a, son!!!").is_err() {
            return 3;
        }
        for _ in 0..1000 {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        0
    });
    for _ in 0..1000 {
        counter.fetch_add(1, Ordering::SeqCst);
    }
    child.expect_ok("anonymous shared child");
    assert_eq!(map.read_vec(100, 15).unwrap(), b"nihao a, son!!!");
    assert_eq!(
        counter.load(Ordering::SeqCst),
        2000,
        "atomics are shared too"
    );
}

/// The tutorial's actual example maps a file and forks: same result, and the file holds it.
#[test]
fn fork_child_writes_into_shared_file_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fork.bin");
    let map = MapOptions::new()
        .read_write()
        .create(64)
        .map_path(&path)
        .unwrap();
    let mut child = fork(|| match map.write_at(0, b"nihao a, son!!!") {
        Ok(()) => 0,
        Err(_) => 2,
    });
    child.expect_ok("file child");
    assert_eq!(map.read_vec(0, 15).unwrap(), b"nihao a, son!!!");
    drop(map);
    assert_eq!(&fs::read(&path).unwrap()[..15], b"nihao a, son!!!");
}

/// Private anonymous memory is copied by fork: the child's writes stay in the child.
#[test]
fn fork_private_anonymous_map_is_not_shared() {
    let map = MapOptions::new()
        .len(4096)
        .private()
        .map_anonymous()
        .unwrap();
    map.write_at(0, b"parent").unwrap();
    let mut child = fork(|| {
        let mut seen = [0u8; 6];
        if map.read_at(0, &mut seen).is_err() || &seen != b"parent" {
            return 2; // the child starts with a copy of the parent's bytes
        }
        match map.write_at(0, b"child!") {
            Ok(()) => 0,
            Err(_) => 3,
        }
    });
    child.expect_ok("private child");
    assert_eq!(map.read_vec(0, 6).unwrap(), b"parent");
}

// ---------------------------------------------------------------------------------------
// Unrelated processes: this test binary, executed again
// ---------------------------------------------------------------------------------------

// Layout of the exchange file.
const FLAG_AT: u64 = 0; // u32: 1 = parent wrote, 2 = child replied, 3 = parent acknowledged
const MSG_LEN_AT: u64 = 8; // u32
const MSG_AT: u64 = 64;
const REPLY_LEN_AT: u64 = 12; // u32
const REPLY_AT: u64 = 1024;

fn wait_for_flag(map: &Mmap, want: u32, mut alive: impl FnMut() -> bool) -> Result<(), String> {
    let flag = map.atomic_u32(FLAG_AT).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + WATCHDOG;
    while flag.load(Ordering::Acquire) != want {
        if !alive() {
            return Err(format!("peer gone while waiting for flag {want}"));
        }
        if Instant::now() > deadline {
            return Err(format!("flag {want} not seen after {WATCHDOG:?}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Entry point of the second process of
/// [`two_unrelated_processes_exchange_data_through_one_file`]: when this binary is run with
/// [`CHILD_ROLE_ENV`] set, this "test" maps the file named by [`CHILD_FILE_ENV`], reads the
/// parent's message and writes a reply. In a normal test run the variable is unset and it
/// returns immediately.
#[test]
fn child_process_entry() {
    if std::env::var_os(CHILD_ROLE_ENV).is_none() {
        return;
    }
    let path = std::env::var_os(CHILD_FILE_ENV).expect("file to map");
    // An independent mapping of the file, in an unrelated process.
    let map = MapOptions::new().read_write().map_path(&path).unwrap();
    let parent_pid = std::os::unix::process::parent_id();
    wait_for_flag(&map, 1, || mapipc::os::process::pid_exists(parent_pid)).unwrap();
    let n = map.read_pod::<u32>(MSG_LEN_AT).unwrap() as usize;
    let msg = String::from_utf8(map.read_vec(MSG_AT, n).unwrap()).unwrap();
    assert!(msg.starts_with("hello from parent"), "{msg:?}");
    let reply = format!("child {} got: {msg}", std::process::id());
    map.write_at(REPLY_AT, reply.as_bytes()).unwrap();
    map.write_pod(REPLY_LEN_AT, &(reply.len() as u32)).unwrap();
    map.atomic_u32(FLAG_AT).unwrap().store(2, Ordering::Release);
    // Stay alive until the parent has read the reply: both processes map the file at once.
    wait_for_flag(&map, 3, || mapipc::os::process::pid_exists(parent_pid)).unwrap();
    map.flush().unwrap();
}

/// The tutorial's second scenario: two unrelated processes map the same file and talk.
#[test]
fn two_unrelated_processes_exchange_data_through_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exchange.bin");
    let map = MapOptions::new()
        .read_write()
        .create(4096)
        .map_path(&path)
        .unwrap();
    let msg = format!("hello from parent {}", std::process::id());
    map.write_at(MSG_AT, msg.as_bytes()).unwrap();
    map.write_pod(MSG_LEN_AT, &(msg.len() as u32)).unwrap();
    map.atomic_u32(FLAG_AT).unwrap().store(1, Ordering::Release);

    let mut child = Child::adopt(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ROLE_ENV, "reply")
            .env(CHILD_FILE_ENV, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child_pid = child.pid;
    let waited = wait_for_flag(&map, 2, || child.try_wait().is_none());
    if let Err(e) = waited {
        let status = child.kill9();
        panic!("{e} (child status {status:?})");
    }
    // The child is still running: we read its reply through our own, older mapping.
    let n = map.read_pod::<u32>(REPLY_LEN_AT).unwrap() as usize;
    let reply = String::from_utf8(map.read_vec(REPLY_AT, n).unwrap()).unwrap();
    // Release the child before asserting, so a failure here does not leave it waiting.
    map.atomic_u32(FLAG_AT).unwrap().store(3, Ordering::Release);
    let status = child.wait();
    assert_eq!(reply, format!("child {child_pid} got: {msg}"));
    assert_eq!(status, Exit::Code(0), "child failed");
    drop(map);
    let on_disk = fs::read(&path).unwrap();
    assert_eq!(
        &on_disk[REPLY_AT as usize..REPLY_AT as usize + n],
        reply.as_bytes()
    );
}

// ---------------------------------------------------------------------------------------
// Truncation by another process
// ---------------------------------------------------------------------------------------

#[test]
fn truncation_by_another_process_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(1 << 20, 17);
    let path = write_file(dir.path(), "victim.bin", &data);
    let other_data = pattern(64 * 1024, 18);
    let other_path = write_file(dir.path(), "bystander.bin", &other_data);

    let map = MapOptions::new().read_write().map_path(&path).unwrap();
    let second = MapOptions::new().offset(1000).map_path(&path).unwrap();
    let other = MapOptions::new()
        .read_write()
        .map_path(&other_path)
        .unwrap();
    let word = map.atomic_u64(512 * 1024).unwrap();
    word.store(42, Ordering::SeqCst);
    assert!(!map.is_poisoned());

    truncate_by_other_process(&path, 4096);

    // The first page still exists; nothing faulted yet.
    let mut buf = vec![0u8; 4096];
    map.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, &data[..4096]);
    // Past the new end: an error, and the process lives.
    let err = map.read_at(8192, &mut buf[..100]).unwrap_err();
    assert_eq!(
        err,
        AccessError::Truncated {
            file: path.display().to_string()
        }
    );
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(map.is_poisoned());
    // The mapping is poisoned: every later access says so, even below the new end.
    assert!(matches!(
        map.read_at(0, &mut buf[..10]),
        Err(AccessError::Truncated { .. })
    ));
    assert!(matches!(
        map.read_vec(300_000, 10),
        Err(AccessError::Truncated { .. })
    ));
    assert!(matches!(
        map.write_at(100_000, b"x"),
        Err(AccessError::Truncated { .. })
    ));
    assert!(matches!(
        map.fill(0, 10, 1),
        Err(AccessError::Truncated { .. })
    ));
    assert!(matches!(
        map.read_pod::<u64>(0),
        Err(AccessError::Truncated { .. })
    ));
    assert!(matches!(
        map.find(b"zz"),
        Err(AccessError::Truncated { .. })
    ));
    assert!(matches!(
        map.atomic_u32(0),
        Err(AccessError::Truncated { .. })
    ));
    let io_err = map.cursor().read(&mut buf).unwrap_err();
    assert_eq!(io_err.kind(), io::ErrorKind::UnexpectedEof);
    // The atomic view taken before the truncation reads zeros instead of crashing.
    assert_eq!(word.load(Ordering::SeqCst), 0);
    word.store(7, Ordering::SeqCst); // lands in a throw-away page

    // The second mapping of the same file is independent: fine until it touches a lost page.
    assert!(!second.is_poisoned());
    assert_eq!(second.read_vec(0, 100).unwrap(), &data[1000..1100]);
    assert!(matches!(
        second.read_vec(4000, 200),
        Err(AccessError::Truncated { .. })
    ));
    assert!(second.is_poisoned());

    // Other mappings are unaffected.
    assert!(!other.is_poisoned());
    assert_eq!(other.read_vec(0, other.len()).unwrap(), other_data);
    other.write_at(0, b"still fine").unwrap();

    // The writes into lost pages did not resurrect the file, and a fresh mapping works.
    assert_eq!(fs::read(&path).unwrap(), &data[..4096]);
    let fresh = Mmap::open(&path).unwrap();
    assert_eq!(fresh.len(), 4096);
    assert_eq!(fresh.read_vec(0, 4096).unwrap(), &data[..4096]);

    let mut map = map;
    assert!(matches!(
        map.grow(2 << 20),
        Err(GrowError::Access(AccessError::Truncated { .. }))
    ));
}

/// The load-only accessors (usable on read-only mappings) report the truncation on the
/// very access that found it, not a zero read from the page put in place of the lost one.
#[test]
fn loads_report_truncation_on_the_first_access() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(64 * 1024, 19);
    let path = write_file(dir.path(), "loads.bin", &data);
    let map = MapOptions::new().map_path(&path).unwrap();
    assert_eq!(
        map.load_u64(8, Ordering::Acquire).unwrap(),
        u64::from_le_bytes(data[8..16].try_into().unwrap())
    );
    assert!(map.atomic_u64(8).is_err(), "read-only: no atomic view");
    truncate_by_other_process(&path, 4096);
    assert!(matches!(
        map.load_u64(32 * 1024, Ordering::Acquire),
        Err(AccessError::Truncated { .. })
    ));
    assert!(map.is_poisoned());
    assert!(matches!(
        map.load_u32(0, Ordering::Acquire),
        Err(AccessError::Truncated { .. })
    ));
}

/// `grow` may move the mapping (`mremap`); the SIGBUS registration must follow it.
#[test]
fn truncation_after_grow_is_still_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grown.bin");
    let mut map = MapOptions::new()
        .read_write()
        .offset(100)
        .create(4096)
        .map_path(&path)
        .unwrap();
    let _neighbour = Mmap::anonymous(4096).unwrap(); // makes an in-place grow less likely
    map.grow(1 << 20).unwrap();
    map.fill(0, 1 << 20, 0xab).unwrap();
    truncate_by_other_process(&path, 0);
    assert!(matches!(
        map.read_vec(500_000, 10),
        Err(AccessError::Truncated { .. })
    ));
    assert!(map.is_poisoned());
}

/// A private (copy-on-write) mapping also faults on truncated pages it never copied.
#[test]
fn truncation_under_a_private_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(64 * 1024, 19);
    let path = write_file(dir.path(), "private-victim.bin", &data);
    let cow = MapOptions::new().copy_on_write().map_path(&path).unwrap();
    cow.write_at(40_000, b"copied page").unwrap();
    truncate_by_other_process(&path, 0);
    assert!(matches!(
        cow.read_vec(20_000, 10),
        Err(AccessError::Truncated { .. })
    ));
}

/// A SIGBUS that is not in a registered mapping is not swallowed: the handler passes it on
/// and the process dies as it would without mapipc. Shown in a forked child, which first
/// survives a fault in a mapipc mapping and then dies at a fault in a raw mapping.
#[test]
fn foreign_sigbus_still_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let len = 64 * 1024;
    let ours_path = write_file(dir.path(), "ours.bin", &pattern(len, 20));
    let raw_path = write_file(dir.path(), "raw.bin", &pattern(len, 21));
    let ours_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ours_path)
        .unwrap();
    let raw_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&raw_path)
        .unwrap();
    // A mapipc mapping (installs the handler) with an atomic view on its 9th page.
    let ours = MapOptions::new().read_write().map_fd(&ours_file).unwrap();
    let word = ours.atomic_u64(32 * 1024).unwrap();
    word.store(99, Ordering::SeqCst);
    // A raw mapping mapipc knows nothing about.
    // SAFETY: a fresh shared read-only mapping of a 64 KiB file; unmapped below; only the
    // forked child touches it after truncating the file (which is the point).
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            raw_file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(raw, libc::MAP_FAILED);
    let (ours_fd, raw_fd) = (ours_file.as_raw_fd(), raw_file.as_raw_fd());
    let raw_addr = raw as usize;

    let mut child = fork(|| {
        // SAFETY: plain syscalls on valid arguments; `old` is a valid out-pointer.
        unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == libc::SIG_DFL
            {
                return 10; // mapipc's handler is not installed: the test would prove nothing
            }
            if libc::ftruncate(ours_fd, 0) != 0 {
                return 11;
            }
        }
        if word.load(Ordering::SeqCst) != 0 {
            return 12;
        }
        if !ours.is_poisoned() {
            return 13;
        }
        // SAFETY: plain syscall.
        if unsafe { libc::ftruncate(raw_fd, 0) } != 0 {
            return 14;
        }
        // SAFETY: the address is inside the raw mapping; the page is past the new end of the
        // file, so this read raises SIGBUS, which must kill us.
        let v = unsafe { std::ptr::read_volatile((raw_addr + 8192) as *const u8) };
        std::hint::black_box(v);
        15 // survived a foreign SIGBUS: the handler swallowed it
    });
    let status = child.wait();
    assert_eq!(
        status,
        Exit::Signal(libc::SIGBUS),
        "expected death by SIGBUS"
    );
    // The child's truncation is visible here too, and is an error here as well.
    assert!(matches!(
        ours.read_vec(40 * 1024, 8),
        Err(AccessError::Truncated { .. })
    ));
    assert_eq!(
        mapipc::os::sigbus::foreign_faults(),
        0,
        "none in this process"
    );
    // SAFETY: the raw mapping made above, unmapped once; nothing references it.
    assert_eq!(unsafe { libc::munmap(raw, len) }, 0);
}

// ---------------------------------------------------------------------------------------
// Property test: random operations against a Vec<u8> model
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Read { off: u64, len: usize },
    Write { off: u64, data: Vec<u8> },
    Fill { off: u64, len: usize, byte: u8 },
    Grow { by: usize },
    Flush,
    FlushRange { off: u64, len: usize },
    FlushAsync,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    // Offsets reach a little past the largest possible mapping so some ops are out of bounds.
    let off = 0u64..40_000;
    prop_oneof![
        3 => (off.clone(), 0usize..5000).prop_map(|(off, len)| Op::Read { off, len }),
        4 => (off.clone(), proptest::collection::vec(any::<u8>(), 0..3000))
            .prop_map(|(off, data)| Op::Write { off, data }),
        2 => (off.clone(), 0usize..6000, any::<u8>())
            .prop_map(|(off, len, byte)| Op::Fill { off, len, byte }),
        1 => (0usize..6000).prop_map(|by| Op::Grow { by }),
        1 => Just(Op::Flush),
        1 => (off, 0usize..9000).prop_map(|(off, len)| Op::FlushRange { off, len }),
        1 => Just(Op::FlushAsync),
    ]
}

fn in_bounds(off: u64, len: usize, map_len: usize) -> bool {
    off.checked_add(len as u64)
        .is_some_and(|end| end <= map_len as u64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_a_vec_model(
        file_len in 1usize..12_000,
        offset_frac in 0.0f64..1.0,
        len_frac in proptest::option::of(0.0f64..1.0),
        ops in proptest::collection::vec(op_strategy(), 1..24),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut file_model = pattern(file_len, file_len as u64);
        let path = write_file(dir.path(), "model.bin", &file_model);
        let offset = ((file_len - 1) as f64 * offset_frac) as usize;
        let mut opts = MapOptions::new();
        opts.read_write().offset(offset as u64);
        let mut map_len = file_len - offset;
        if let Some(f) = len_frac {
            map_len = 1 + ((map_len - 1) as f64 * f) as usize;
            opts.len(map_len);
        }
        let mut map = opts.map_path(&path).unwrap();
        prop_assert_eq!(map.len(), map_len);

        for op in &ops {
            match op {
                Op::Read { off, len } => {
                    let got = map.read_vec(*off, *len);
                    if in_bounds(*off, *len, map_len) {
                        let start = offset + *off as usize;
                        prop_assert_eq!(got.unwrap(), &file_model[start..start + len]);
                    } else {
                        prop_assert_eq!(got.unwrap_err(), AccessError::OutOfBounds {
                            file: map.file_name().to_string(), offset: *off, len: *len, map_len,
                            bounds: Bounds::Mapping,
                        });
                    }
                }
                Op::Write { off, data } => {
                    let got = map.write_at(*off, data);
                    if in_bounds(*off, data.len(), map_len) {
                        prop_assert!(got.is_ok());
                        let start = offset + *off as usize;
                        file_model[start..start + data.len()].copy_from_slice(data);
                    } else {
                        prop_assert!(
                            matches!(got, Err(AccessError::OutOfBounds { .. })),
                            "{:?}", got
                        );
                    }
                }
                Op::Fill { off, len, byte } => {
                    let got = map.fill(*off, *len, *byte);
                    if in_bounds(*off, *len, map_len) {
                        prop_assert!(got.is_ok());
                        let start = offset + *off as usize;
                        file_model[start..start + len].fill(*byte);
                    } else {
                        prop_assert!(
                            matches!(got, Err(AccessError::OutOfBounds { .. })),
                            "{:?}", got
                        );
                    }
                }
                Op::Grow { by } => {
                    map_len += by;
                    map.grow(map_len).unwrap();
                    if offset + map_len > file_model.len() {
                        file_model.resize(offset + map_len, 0);
                    }
                    prop_assert_eq!(map.len(), map_len);
                    prop_assert_eq!(fs::metadata(&path).unwrap().len(), file_model.len() as u64);
                }
                Op::Flush | Op::FlushAsync => {
                    if matches!(op, Op::Flush) {
                        map.flush().unwrap();
                    } else {
                        map.flush_async().unwrap();
                    }
                    // The file, read with read(2), already holds every write.
                    prop_assert_eq!(fs::read(&path).unwrap(), &file_model[..]);
                }
                Op::FlushRange { off, len } => {
                    let got = map.flush_range(*off, *len);
                    prop_assert_eq!(got.is_ok(), in_bounds(*off, *len, map_len));
                }
            }
        }
        prop_assert_eq!(
            map.read_vec(0, map_len).unwrap(),
            &file_model[offset..offset + map_len]
        );
        drop(map);
        prop_assert_eq!(fs::read(&path).unwrap(), file_model);
    }
}
