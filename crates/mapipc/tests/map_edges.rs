//! The mapping layer at its edges, each test for a bug found by a review:
//!
//! - a SIGBUS *sent* to the process (`kill -BUS`, `raise`, `sigqueue`) terminates it, as the
//!   default action does, and is never taken for a fault of a mapped page (it was swallowed
//!   by the truncation handler, which left the process unprotected from then on, and a
//!   queued one naming a mapped page made the handler zero that page);
//! - a refused `MapOptions::create` gives an extended file its old length back;
//! - sockets, directories, write-sealed memfds and file systems without mmap are named as
//!   the cause.
//!
//! Child processes are forked and waited for under the watchdog of `common::Child::wait`.

mod common;

use std::fs;

use common::{fork, Exit};
use mapipc::map::{MapError, MapOptions};
use mapipc::os::file::FileKind;

fn page() -> usize {
    mapipc::os::mem::page_size()
}

/// A file-backed mapping, so that mapipc's SIGBUS handler is installed in this process (and
/// inherited by forked children).
fn mapped_file(dir: &std::path::Path) -> mapipc::map::Mmap {
    let path = dir.join("mapped");
    fs::write(&path, vec![1u8; 2 * page()]).unwrap();
    let map = MapOptions::new().map_path(&path).unwrap();
    assert_eq!(map.read_vec(0, 1).unwrap(), [1]);
    map
}

/// Whether SIGBUS has a handler (mapipc's) in this process.
fn sigbus_handled() -> bool {
    // SAFETY: an all-zero sigaction is a valid out-parameter; a NULL `act` only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction != libc::SIG_DFL
            && old.sa_sigaction != libc::SIG_IGN
    }
}

/// `raise(SIGBUS)` (and so `kill -BUS`) must terminate the process by SIGBUS, as it does
/// without mapipc; before the fix the child survived and returned 3.
#[test]
fn a_sent_sigbus_still_terminates_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let _map = mapped_file(dir.path());
    assert!(sigbus_handled());
    let mut child = fork(|| {
        // SAFETY: plain call; the point is that it ends this process.
        unsafe { libc::raise(libc::SIGBUS) };
        if sigbus_handled() {
            2 // survived and still protected
        } else {
            3 // survived, and the handler is gone: a truncation would now kill us
        }
    });
    assert_eq!(child.wait(), Exit::Signal(libc::SIGBUS));
}

/// A queued SIGBUS (`rt_sigqueueinfo`, `si_code = SI_QUEUE`) whose address field names a
/// page of a mapipc mapping is not a fault: it must neither zero that page and poison the
/// mapping, nor be swallowed. Before the fix the child survived with a poisoned mapping (4).
#[test]
fn a_queued_sigbus_naming_a_mapped_page_is_not_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let map = mapped_file(dir.path());
    let addr = map.as_ptr() as u64;
    let mut child = fork(|| {
        // siginfo_t for x86-64: si_signo, si_errno, si_code, padding, then the union, whose
        // first 8 bytes are `si_addr` for faults and (pid, uid) for sent signals.
        let mut info = [0u64; 16];
        info[0] = libc::SIGBUS as u64;
        info[1] = libc::SI_QUEUE as u32 as u64;
        info[2] = addr;
        // SAFETY: a valid 128-byte siginfo buffer; the signal goes to this process.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigqueueinfo,
                libc::getpid(),
                libc::SIGBUS,
                info.as_ptr(),
            )
        };
        if r != 0 {
            return 10;
        }
        if map.is_truncated() {
            4
        } else {
            5
        }
    });
    assert_eq!(child.wait(), Exit::Signal(libc::SIGBUS));
    assert!(!map.is_truncated());
    assert_eq!(map.read_vec(0, 1).unwrap(), [1]);
}

/// `create(size)` extends an existing smaller file; when the mapping is then refused, the file
/// gets its old length back (the docs of `MapOptions::create` say so).
#[test]
fn a_refused_create_gives_an_extended_file_its_length_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"0123456789").unwrap();
    let err = MapOptions::new()
        .read_write()
        .create(4096)
        .offset(5000)
        .map_path(&path)
        .unwrap_err();
    assert!(matches!(err, MapError::OffsetPastEnd { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"0123456789");
    let err = MapOptions::new()
        .read_write()
        .create(8192)
        .len(0)
        .map_path(&path)
        .unwrap_err();
    assert!(matches!(err, MapError::ZeroLength { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"0123456789");
    // Through an fd too.
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let err = MapOptions::new()
        .read_write()
        .create(4096)
        .offset(4096)
        .map_fd(&file)
        .unwrap_err();
    assert!(matches!(err, MapError::OffsetPastEnd { .. }), "{err}");
    assert_eq!(file.metadata().unwrap().len(), 10);
    // A successful create still extends it.
    let map = MapOptions::new()
        .read_write()
        .create(4096)
        .map_path(&path)
        .unwrap();
    assert_eq!(map.len(), 4096);
    assert_eq!(fs::metadata(&path).unwrap().len(), 4096);
}

/// Opening a socket fails with ENXIO; the error says it is a socket, not "No such device or
/// address". A directory opened to be created/extended says it is a directory.
#[test]
fn sockets_and_directories_by_path_are_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let err = MapOptions::new().map_path(&sock).unwrap_err();
    assert!(
        matches!(
            err,
            MapError::NotRegularFile {
                kind: FileKind::Socket,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("socket"), "{err}");
    let err = MapOptions::new()
        .read_write()
        .create(10)
        .map_path(dir.path())
        .unwrap_err();
    assert!(
        matches!(
            err,
            MapError::NotRegularFile {
                kind: FileKind::Directory,
                ..
            }
        ),
        "{err}"
    );
}

/// A `/sys` attribute reports a size but its file system has no `mmap`: a typed error that
/// says so, not `mmap failed: No such device`.
#[test]
fn a_file_system_without_mmap_is_named_as_the_cause() {
    let attr = "/sys/kernel/uevent_seqnum";
    if !std::path::Path::new(attr).exists() {
        eprintln!("{attr} is missing: nothing to check here");
        return;
    }
    let err = MapOptions::new().map_path(attr).unwrap_err();
    assert!(matches!(err, MapError::NotMappable { .. }), "{err:?}");
    assert!(err.to_string().contains(attr), "{err}");
}

/// A `/proc` file says 0 bytes: it is not an empty file to size first (`EmptyFile` sent
/// callers that way, `queue stat` with a `queue.meta` linked to one said "the file is
/// empty") but one that cannot be mapped, with or without an explicit length or offset. An
/// empty regular file is still `EmptyFile`.
#[test]
fn a_proc_file_is_not_mappable_rather_than_empty() {
    let file = "/proc/self/status";
    for opts in [
        MapOptions::new(),
        MapOptions::new().len(4096).clone(),
        MapOptions::new().offset(4096).clone(),
    ] {
        let err = opts.map_path(file).unwrap_err();
        assert!(
            matches!(err, MapError::NotMappable { .. }),
            "{opts:?}: {err:?}"
        );
        assert!(err.to_string().contains(file), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let err = MapOptions::new().map_path(&empty).unwrap_err();
    assert!(matches!(err, MapError::EmptyFile { .. }), "{err:?}");
}

/// A peer sends a memfd sealed against shrinking *and* writing: refused by name before
/// mapping (it said `mmap failed ...: Operation not permitted`).
#[test]
fn a_received_write_sealed_memfd_is_refused_by_name() {
    use mapipc::os::file::Seals;
    use mapipc::region::{ReceiveError, Region};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    let memfd = mapipc::os::file::memfd_create("write-sealed").unwrap();
    mapipc::os::file::set_len(memfd.as_fd(), 8192).unwrap();
    let seals = Seals {
        seal: false,
        shrink: true,
        grow: false,
        write: true,
    };
    mapipc::os::file::add_seals(memfd.as_fd(), seals).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(b"MAPIPCRG");
    payload[8..].copy_from_slice(&8192u64.to_le_bytes());
    mapipc::os::net::send_fd(a.as_fd(), memfd.as_fd(), &payload).unwrap();
    let err = Region::receive(&b).unwrap_err();
    assert!(matches!(err, ReceiveError::WriteSealed { .. }), "{err:?}");
    assert!(err.to_string().contains("write-sealed"), "{err}");
}
