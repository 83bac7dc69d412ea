//! Tests of `mapipc::region` with real processes: `fork`ed children (each waited for under
//! the watchdog of `common::Child::wait`, which kills it and fails the test) and one re-exec
//! of this test binary as an unrelated process. No assertion depends on timing.

mod common;

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use common::{child_wait_until, fork, serial, wait_until, Child, Exit};

use mapipc::region::{
    self, CreateError, HeaderError, JoinError, Liveness, Location, NameError, OpenError,
    OpenOrCreateError, Peer, ReceiveError, Region, RegionKind, RegionOptions, RemoveError,
    SendError, ShmName, HEADER_SIZE,
};
use mapipc::sync::{Notifier, WaitOptions};
use proptest::prelude::*;

const HELPER_ENV: &str = "MAPIPC_REGION_TEST_HELPER";

/// A unique `/dev/shm` name, removed again when the guard drops.
struct ShmGuard(String);

impl ShmGuard {
    fn new(tag: &str) -> ShmGuard {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        ShmGuard(format!(
            "mapipc-test-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(&self.0));
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Region>();
    check::<Peer>();
    check::<Liveness>();
    let region = Region::anonymous(8).unwrap();
    thread::scope(|s| {
        s.spawn(|| region.write_at(0, b"thread").unwrap());
    });
    assert_eq!(region.read_vec(0, 6).unwrap(), b"thread");
}

#[test]
fn anonymous_region_is_shared_with_a_forked_child() {
    let _serial = serial();
    let region = Region::anonymous(4096).unwrap();
    assert_eq!(region.kind(), RegionKind::Anonymous);
    assert_eq!(region.len(), 4096);
    let mut child = fork(|| {
        if region.write_at(100, b"written by the child").is_err() {
            return 1;
        }
        if region.bump_generation() != Ok(1) {
            return 2;
        }
        match region.notify_word() {
            Ok(w) => w.store(7, Ordering::Release),
            Err(_) => return 3,
        }
        0
    });
    assert_eq!(child.exit_code(), 0);
    assert_eq!(region.read_vec(100, 20).unwrap(), b"written by the child");
    assert_eq!(region.generation().unwrap(), 1);
    assert_eq!(region.notify_word().unwrap().load(Ordering::Acquire), 7);
}

#[test]
fn named_region_is_created_here_and_opened_by_a_forked_child() {
    let _serial = serial();
    let name = ShmGuard::new("named");
    let region = Region::create(&name.0, 8192).unwrap();
    assert!(region.was_created());
    assert_eq!(region.kind(), RegionKind::Named);
    let file = Path::new("/dev/shm").join(&name.0);
    assert_eq!(region.name(), file.to_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o} lets others in");
    region.write_at(0, b"parent").unwrap();

    let mut child = fork(|| {
        let Ok(r) = Region::open(&name.0) else {
            return 1;
        };
        if r.was_created() || r.len() != 8192 {
            return 2;
        }
        if r.read_vec(0, 6) != Ok(b"parent".to_vec()) {
            return 3;
        }
        if r.write_at(10, b"child").is_err() || r.bump_generation().is_err() {
            return 4;
        }
        0
    });
    assert_eq!(child.exit_code(), 0);
    assert_eq!(region.read_vec(10, 5).unwrap(), b"child");
    assert_eq!(region.generation().unwrap(), 1);

    let err = Region::create(&name.0, 10).unwrap_err();
    assert!(matches!(err, CreateError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains(&name.0), "{err}");

    region.remove().unwrap();
    let err = Region::open(&name.0).unwrap_err();
    assert!(matches!(err, OpenError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&name.0), "{err}");
    // Removing the name does not unmap anything.
    assert_eq!(region.read_vec(0, 6).unwrap(), b"parent");
    assert!(matches!(region.remove(), Err(RemoveError::NotFound { .. })));
}

#[test]
fn named_region_is_shared_with_an_unrelated_process() {
    let name = ShmGuard::new("unrelated");
    let region = Region::create(&name.0, 4096).unwrap();
    region.write_at(0, b"ping").unwrap();
    let helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_unrelated_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, &name.0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status = Child::adopt(helper).wait();
    assert_eq!(status, Exit::Code(0), "helper failed");
    assert_eq!(region.read_vec(0, 4).unwrap(), b"pong");
    assert_eq!(region.generation().unwrap(), 1);
    // The helper joined and left cleanly: its slot is free, not dead.
    assert!(region.peers().unwrap().is_empty());
}

/// Not a test: the other process of `named_region_is_shared_with_an_unrelated_process`,
/// which runs this binary again with `HELPER_ENV` set.
#[test]
#[ignore = "helper process of named_region_is_shared_with_an_unrelated_process"]
fn helper_unrelated_process() {
    let Ok(name) = std::env::var(HELPER_ENV) else {
        return;
    };
    let region = Region::open(name.as_str()).unwrap();
    assert_eq!(region.read_vec(0, 4).unwrap(), b"ping");
    let me = region.join().unwrap();
    assert!(region.is_alive(me.id()));
    region.write_at(0, b"pong").unwrap();
    region.bump_generation().unwrap();
    me.leave();
}

#[test]
fn open_or_create_race_has_exactly_one_creator() {
    let _serial = serial();
    for _round in 0..8 {
        let name = ShmGuard::new("race");
        // Start gate: each child bumps `ready`, then both spin until `go`.
        let gate = Region::anonymous(64).unwrap();
        let ready = gate.atomic_u32(0).unwrap();
        let go = gate.atomic_u32(4).unwrap();
        let contender = || {
            ready.fetch_add(1, Ordering::AcqRel);
            if !child_wait_until(|| go.load(Ordering::Acquire) == 1) {
                return 3;
            }
            match Region::open_or_create(&name.0, 4096) {
                Ok(r) if r.len() != 4096 => 4,
                Ok(r) if r.info().map(|i| i.data_len) != Ok(4096) => 5,
                Ok(r) if r.was_created() => 10,
                Ok(_) => 20,
                Err(_) => 1,
            }
        };
        let mut kids = [fork(contender), fork(contender)];
        wait_until("both contenders ready", || {
            ready.load(Ordering::Acquire) == 2
        });
        go.store(1, Ordering::Release);
        let mut codes: Vec<i32> = kids.iter_mut().map(Child::exit_code).collect();
        codes.sort();
        assert_eq!(codes, [10, 20], "one creator and one opener expected");
        let region = Region::open(&name.0).unwrap();
        let info = region.info().unwrap();
        let pids = kids.map(|k| k.pid);
        assert!(
            pids.contains(&(info.creator_pid as i32)),
            "creator pid {} is not one of {pids:?}",
            info.creator_pid
        );
        assert_eq!(info.data_len, 4096);
    }
}

#[test]
fn open_or_create_refuses_a_smaller_existing_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small");
    Region::create(&path, 100).unwrap();
    let err = Region::open_or_create(&path, 200).unwrap_err();
    assert!(
        matches!(
            err,
            OpenOrCreateError::TooSmall {
                len: 100,
                wanted: 200,
                ..
            }
        ),
        "{err}"
    );
    assert!(Region::open_or_create(&path, 50).unwrap().len() == 100);
}

#[test]
fn shm_names_with_slash_or_dotdot_are_refused() {
    for (bad, check) in [
        (
            "a/b",
            (|e| matches!(e, NameError::Slash { .. })) as fn(&NameError) -> bool,
        ),
        ("..", |e| matches!(e, NameError::Dots { .. })),
        (".", |e| matches!(e, NameError::Dots { .. })),
        ("x..y", |e| matches!(e, NameError::DotDot { .. })),
        ("..hidden", |e| matches!(e, NameError::DotDot { .. })),
        ("", |e| matches!(e, NameError::Empty)),
        ("nul\0byte", |e| matches!(e, NameError::Nul { .. })),
    ] {
        let err = ShmName::new(bad).unwrap_err();
        assert!(check(&err), "{bad:?}: {err}");
        if !bad.is_empty() {
            assert!(err.to_string().contains(&bad.replace('\0', "\\0")), "{err}");
        }
    }
    let long = "n".repeat(256);
    assert!(matches!(
        ShmName::new(&long),
        Err(NameError::TooLong {
            len: 256,
            max: 255,
            ..
        })
    ));
    assert!(ShmName::new(&"n".repeat(255)).is_ok());

    // Through the region API: nothing is created, opened or removed.
    for bad in ["..", ".", "x..y", "..evil"] {
        assert!(matches!(
            Region::create(bad, 10),
            Err(CreateError::InvalidName(_))
        ));
        assert!(matches!(Region::open(bad), Err(OpenError::InvalidName(_))));
        assert!(matches!(
            region::remove(bad),
            Err(RemoveError::InvalidName(_))
        ));
        assert!(matches!(
            Region::open_or_create(bad, 10),
            Err(OpenOrCreateError::Create(CreateError::InvalidName(_)))
        ));
    }
    assert!(!Path::new("/dev/shm/..evil").exists());
    // A string with '/' is a path, not a /dev/shm name.
    assert_eq!(
        Location::parse("./dir/x").unwrap(),
        Location::Path("./dir/x".into())
    );
}

#[test]
fn memfd_names_are_checked() {
    assert!(matches!(
        Region::memfd("a\0b", 1),
        Err(CreateError::InvalidName(NameError::Nul { .. }))
    ));
    assert!(matches!(
        Region::memfd(&"m".repeat(250), 1),
        Err(CreateError::InvalidName(NameError::TooLong { .. }))
    ));
    assert!(Region::memfd(&"m".repeat(249), 1).is_ok());
}

#[test]
fn symlinks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let link = dir.path().join("link");
    let dangling = dir.path().join("dangling");
    let region = Region::create(&target, 64).unwrap();
    region.write_at(0, b"t").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();

    let err = Region::open(&link).unwrap_err();
    assert!(matches!(err, OpenError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("link"), "{err}");
    assert!(matches!(
        Region::open(&dangling),
        Err(OpenError::Symlink { .. })
    ));
    assert!(matches!(
        Region::create(&link, 64),
        Err(CreateError::AlreadyExists { .. })
    ));
    assert!(matches!(
        Region::create(&dangling, 64),
        Err(CreateError::AlreadyExists { .. })
    ));
    assert!(
        !dir.path().join("nowhere").exists(),
        "created through a symlink"
    );
    assert!(matches!(
        region::remove(&link),
        Err(RemoveError::Symlink { .. })
    ));
    assert!(link.exists() && target.exists());
    assert_eq!(Region::open(&target).unwrap().read_vec(0, 1).unwrap(), b"t");
}

#[test]
fn files_of_other_users_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("theirs");
    Region::create(&path, 64).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Without root we cannot give a file away; at least our own file opens.
        assert!(Region::open(&path).is_ok());
        eprintln!("not root: foreign-owner refusal not exercised");
        return;
    }
    std::os::unix::fs::chown(&path, Some(12345), None).unwrap();
    let err = Region::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::ForeignOwner {
                uid: 12345,
                our_uid: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("theirs"), "{err}");
    let ok = RegionOptions::new()
        .allow_foreign_owner(true)
        .open(&path)
        .unwrap();
    assert_eq!(ok.len(), 64);
}

#[test]
fn not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Region::open(dir.path()),
        Err(OpenError::NotRegularFile { .. })
    ));
    assert!(matches!(
        Region::open("/dev/null"),
        Err(OpenError::NotRegularFile { .. }) | Err(OpenError::ForeignOwner { .. })
    ));
}

#[test]
fn truncated_or_grown_region_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    let total = {
        let r = Region::create(&path, 10_000).unwrap();
        r.info().unwrap().total_size
    };
    let quick = || {
        RegionOptions::new()
            .init_timeout(Duration::from_millis(10))
            .open(&path)
    };
    let set_len = |len: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap()
    };
    let invalid = |r: Result<Region, OpenError>| match r {
        Err(OpenError::Invalid(e)) => {
            assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
            e
        }
        other => panic!("expected a header error, got {other:?}"),
    };

    set_len(total - 1);
    assert!(matches!(
        invalid(quick()),
        HeaderError::SizeMismatch { header, actual, .. } if header == total && actual == total - 1
    ));
    set_len(total + 4096);
    assert!(matches!(invalid(quick()), HeaderError::SizeMismatch { .. }));
    set_len(100);
    assert!(matches!(
        invalid(quick()),
        HeaderError::TooSmall { size: 100, .. }
    ));
    set_len(0);
    assert!(matches!(invalid(quick()), HeaderError::Empty { .. }));

    // A header whose magic was never written (a creator that died half-way).
    set_len(0);
    set_len(total);
    assert!(matches!(
        invalid(quick()),
        HeaderError::Uninitialised { .. }
    ));
}

/// A file of /proc says 0 bytes, as a region whose creator has not sized it yet does, but
/// it cannot be mapped at all: it is refused as such at once, not after waiting for a
/// creator and then blaming one that died (which gave `Empty` after the timeout).
#[test]
fn a_proc_file_is_refused_as_not_mappable_without_waiting() {
    let r = RegionOptions::new()
        .read_only(true)
        .allow_foreign_owner(true)
        .init_timeout(Duration::from_secs(20))
        .open(std::path::Path::new("/proc/self/status"));
    match r {
        Err(OpenError::Map(e @ mapipc::map::MapError::NotMappable { .. })) => {
            assert!(e.to_string().contains("`/proc/self/status`"), "{e}");
        }
        other => panic!("expected MapError::NotMappable, got {other:?}"),
    }
}

#[test]
fn truncation_under_a_live_mapping_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    let region = Region::create(&path, 1 << 16).unwrap();
    region.write_at((1 << 16) - 1, b"z").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let err = region.read_vec((1 << 16) - 1, 1).unwrap_err();
    assert!(
        matches!(err, region::AccessError::Truncated { .. }),
        "{err}"
    );
    assert!(region.is_poisoned());
    assert!(region.write_at(0, b"x").is_err());
    // Opening it again reports the mismatch.
    assert!(matches!(
        Region::open(&path),
        Err(OpenError::Invalid(HeaderError::SizeMismatch { .. }))
    ));
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes as a region file: always a typed header error naming the file.
    #[test]
    fn random_file_contents_give_typed_errors(
        bytes in proptest::collection::vec(any::<u8>(), 0..9000),
        with_magic: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random");
        let mut bytes = bytes;
        if with_magic && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(b"MAPIPCRG");
        }
        write_file(&path, &bytes);
        let r = RegionOptions::new().init_timeout(Duration::ZERO).open(&path);
        match r {
            Err(OpenError::Invalid(e)) => {
                prop_assert!(e.to_string().contains(path.to_str().unwrap()), "{}", e);
            }
            Err(e) => prop_assert!(false, "not a header error: {}", e),
            Ok(region) => {
                // Astronomically unlikely, but then it must be self-consistent.
                prop_assert!(region.data_offset() + region.len() as u64 <= bytes.len() as u64);
            }
        }
    }

    /// A valid region file with random bytes written over part of its header or peer table:
    /// either a typed error, or a region whose every view stays in bounds.
    #[test]
    fn corrupted_headers_never_crash(
        offset in 8usize..(HEADER_SIZE + 32 * 32),
        garbage in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corrupt");
        let len = Region::create(&path, 5000).unwrap().info().unwrap().total_size as usize;
        let mut bytes = std::fs::read(&path).unwrap();
        prop_assert_eq!(bytes.len(), len);
        let end = (offset + garbage.len()).min(len);
        bytes[offset..end].copy_from_slice(&garbage[..end - offset]);
        write_file(&path, &bytes);
        match RegionOptions::new().init_timeout(Duration::ZERO).open(&path) {
            Err(OpenError::Invalid(_)) => {}
            Err(e) => prop_assert!(false, "not a header error: {}", e),
            Ok(region) => {
                let n = region.len();
                prop_assert!(region.data_offset() + n as u64 <= len as u64);
                if n > 0 {
                    region.write_at(n as u64 - 1, b"!").unwrap();
                }
                prop_assert!(region.read_at(n as u64, &mut [0]).is_err());
                let _ = region.peers().unwrap();
                let _ = region.info().unwrap();
                let p = region.join();
                let joined_or_full = p.is_ok() || matches!(p, Err(JoinError::Full { .. }));
                prop_assert!(joined_or_full, "join failed: {:?}", p.err());
            }
        }
    }

    /// A hostile peer filling the peer table with garbage: listing and liveness checks do
    /// not panic, nobody looks alive without holding a lock, and joins still work.
    #[test]
    fn garbage_in_the_peer_table_does_not_break_liveness(
        garbage in proptest::collection::vec(any::<u8>(), 32 * 32),
        ids in proptest::collection::vec(any::<u32>(), 8),
    ) {
        let region = Region::anonymous(64).unwrap();
        let table = HEADER_SIZE as u64;
        region.as_mmap().write_at(table, &garbage).unwrap();
        for p in region.peers().unwrap() {
            prop_assert!(!p.alive);
            prop_assert!(p.slot < region.max_peers());
        }
        for id in ids.iter().copied().chain([0, 1, u32::MAX, 0x3fff_ffff]) {
            prop_assert!(!region.is_alive(id));
        }
        let a = region.join().unwrap();
        prop_assert_eq!(a.slot(), 0);
        prop_assert!(region.is_alive(a.id()));
        // Scribble over the live slot too: its lock still keeps others out.
        region.as_mmap().write_at(table, &garbage[..32]).unwrap();
        let _ = region.is_alive(a.id());
        let _ = region.peers().unwrap();
        let b = region.join().unwrap();
        prop_assert_eq!(b.slot(), 1);
        prop_assert!(region.peers().unwrap().iter().filter(|p| p.alive).count() == 2);
    }
}

#[test]
fn memfd_region_is_sent_to_a_forked_child() {
    let _serial = serial();
    let (parent_sock, child_sock) = UnixStream::pair().unwrap();
    let mut child = fork(|| {
        let r = match Region::receive(&child_sock) {
            Ok(r) => r,
            Err(_) => return 1,
        };
        if r.kind() != RegionKind::Memfd || r.len() != 4096 || !r.name().contains("sent") {
            return 2;
        }
        if r.write_at(0, b"child was here").is_err() || r.bump_generation() != Ok(1) {
            return 3;
        }
        0
    });
    // Made after the fork: the child can only reach it through the socket.
    let region = Region::memfd("sent-to-child", 4096).unwrap();
    region.send_to(&parent_sock).unwrap();
    assert_eq!(child.exit_code(), 0);
    assert_eq!(region.read_vec(0, 14).unwrap(), b"child was here");
    assert_eq!(region.generation().unwrap(), 1);
}

#[test]
fn anonymous_region_can_be_sent_too() {
    let (a, b) = UnixStream::pair().unwrap();
    let region = Region::anonymous(100).unwrap();
    region.send_to(&a).unwrap();
    let got = Region::receive(&b).unwrap();
    got.write_at(99, b"x").unwrap();
    assert_eq!(region.read_vec(99, 1).unwrap(), b"x");
}

#[test]
fn unsealed_files_are_refused_by_receive() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut announce = [0u8; 16];
    announce[..8].copy_from_slice(b"MAPIPCRG");

    // A perfectly valid region in a plain file: only the missing seal is wrong.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain");
    let named = Region::create(&path, 64).unwrap();
    let err = named.send_to(&a).unwrap_err();
    assert!(matches!(err, SendError::NotSealed { .. }), "{err}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    announce[8..].copy_from_slice(&file.metadata().unwrap().len().to_le_bytes());
    mapipc::os::net::send_fd(a.as_fd(), file.as_fd(), &announce).unwrap();
    let err = Region::receive(&b).unwrap_err();
    assert!(matches!(err, ReceiveError::NotSealed { .. }), "{err}");

    // An unsealed memfd.
    let fd = mapipc::os::file::memfd_create("unsealed").unwrap();
    mapipc::os::file::allocate(fd.as_fd(), 8192).unwrap();
    announce[8..].copy_from_slice(&8192u64.to_le_bytes());
    mapipc::os::net::send_fd(a.as_fd(), fd.as_fd(), &announce).unwrap();
    let err = Region::receive(&b).unwrap_err();
    assert!(matches!(err, ReceiveError::NotSealed { .. }), "{err}");
    assert!(err.to_string().contains("unsealed"), "{err}");

    // A sealed memfd that is not a region.
    mapipc::os::file::add_seals(
        fd.as_fd(),
        mapipc::os::file::Seals {
            shrink: true,
            ..Default::default()
        },
    )
    .unwrap();
    mapipc::os::net::send_fd(a.as_fd(), fd.as_fd(), &announce).unwrap();
    assert!(matches!(
        Region::receive(&b),
        Err(ReceiveError::Invalid(HeaderError::Uninitialised { .. }))
    ));

    // Wrong announcements, a message without fd, a closed socket.
    mapipc::os::net::send_fd(a.as_fd(), fd.as_fd(), b"hello").unwrap();
    assert!(matches!(
        Region::receive(&b),
        Err(ReceiveError::BadPayload { len: 5, .. })
    ));
    announce[8..].copy_from_slice(&1u64.to_le_bytes());
    mapipc::os::net::send_fd(a.as_fd(), fd.as_fd(), &announce).unwrap();
    assert!(matches!(
        Region::receive(&b),
        Err(ReceiveError::SizeMismatch {
            announced: 1,
            actual: 8192,
            ..
        })
    ));
    use std::io::Write;
    (&a).write_all(b"no fd here").unwrap();
    assert!(matches!(
        Region::receive(&b),
        Err(ReceiveError::NoFd { len: 10 })
    ));
    drop(a);
    assert!(matches!(Region::receive(&b), Err(ReceiveError::Closed)));
}

#[test]
fn peers_join_and_leave_in_one_process() {
    let _serial = serial();
    let region = RegionOptions::new().max_peers(3).anonymous(0).unwrap();
    let a = region.join().unwrap();
    let b = region.join().unwrap();
    assert_eq!((a.slot(), b.slot()), (0, 1));
    assert_ne!(a.id(), b.id());
    assert!(a.id() != 0 && a.id() < 1 << 30);
    assert!(region.is_alive(a.id()) && region.is_alive(b.id()));
    let listed = region.peers().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|p| p.alive && p.pid == std::process::id()));

    let a_id = a.id();
    drop(a);
    assert!(!region.is_alive(a_id));
    assert_eq!(
        region.peers().unwrap().len(),
        1,
        "a clean leave frees the slot"
    );
    let c = region.join().unwrap();
    assert_eq!(c.slot(), 0, "the freed slot is reused");
    assert_ne!(c.id(), a_id, "a reused slot gives a new id");
    assert!(!region.is_alive(a_id));
    assert!(region.is_alive(c.id()));

    let d = region.join().unwrap();
    let err = region.join().unwrap_err();
    assert!(matches!(err, JoinError::Full { slots: 3, .. }), "{err}");
    drop(d);
    assert!(region.join().is_ok());

    // A liveness handle outlives the region value.
    let live = region.liveness();
    let b_id = b.id();
    drop(region);
    assert!(live.is_alive(b_id));
    drop(b);
    assert!(!live.is_alive(b_id));
}

#[test]
fn a_sigkilled_peer_is_seen_dead_and_its_slot_reclaimed() {
    let _serial = serial();
    let region = Region::anonymous(64).unwrap();
    // Joined before the fork: the child inherits a copy, whose drop must not free our slot.
    let mine = RefCell::new(Some(region.join().unwrap()));
    let my_id = mine.borrow().as_ref().unwrap().id();
    let child_id = region.atomic_u32(0).unwrap();
    let joined = region.atomic_u32(4).unwrap();
    let mut child = fork(|| {
        let me = match region.join() {
            Ok(p) => p,
            Err(_) => return 1,
        };
        drop(mine.borrow_mut().take());
        child_id.store(me.id(), Ordering::Relaxed);
        joined.store(1, Ordering::Release);
        // Wait to be killed (bounded by the watchdog time).
        child_wait_until(|| false);
        2
    });
    wait_until("the child joined", || joined.load(Ordering::Acquire) == 1);
    let child_id = child_id.load(Ordering::Relaxed);

    assert!(region.is_alive(my_id), "the child's drop freed our slot");
    assert!(region.is_alive(child_id));
    let listed = region.peers().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|p| p.alive));
    let child_entry = listed.iter().find(|p| p.pid == child.pid as u32).unwrap();
    assert_eq!(child_entry.id, child_id);
    assert!(listed
        .iter()
        .any(|p| p.pid == std::process::id() && p.id == my_id));

    assert_eq!(child.kill9(), Exit::Signal(libc::SIGKILL));

    wait_until("the killed child is seen dead", || {
        !region.is_alive(child_id)
    });
    assert!(region.is_alive(my_id));
    let listed = region.peers().unwrap();
    let dead = listed.iter().find(|p| p.id == child_id).unwrap();
    assert!(!dead.alive, "{listed:?}");
    assert_eq!(dead.pid, child.pid as u32);

    let again = region.join().unwrap();
    assert_eq!(
        again.slot(),
        child_entry.slot,
        "the dead peer's slot is reclaimed"
    );
    assert_ne!(again.id(), child_id);
    assert!(!region.is_alive(child_id));
    assert!(region.is_alive(again.id()));
    assert!(region.peers().unwrap().iter().all(|p| p.alive));
}

/// Whether process `pid` is asleep (state `S` in `/proc/PID/stat`), as a child parked on a
/// futex is. Only used to make a kill land while parked; the test holds either way.
fn process_sleeps(pid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('S'))
}

/// Forks a child that parks on the region's notifier for ever (no predicate ever holds) and
/// SIGKILLs it there: its registration stays in the word.
fn leave_a_dead_waiter(region: &Region) {
    let word = region.notify_word().unwrap();
    let n = Notifier::new(word);
    let before = n.waiters();
    let mut doomed = fork(|| {
        let mut opts = WaitOptions::new();
        opts.spin(0).check_interval(Duration::from_secs(3600));
        let _ = Notifier::new(word).wait_until(|| None::<()>, &opts);
        1
    });
    wait_until("the doomed child to register", || n.waiters() == before + 1);
    wait_until("the doomed child to sleep", || process_sleeps(doomed.pid));
    assert_eq!(doomed.kill9(), Exit::Signal(libc::SIGKILL));
    assert_eq!(
        n.waiters(),
        before + 1,
        "a waiter killed while parked stays counted"
    );
}

/// A waiter SIGKILLed while parked on a region's notifier: the first notify that finds
/// nobody parked clears its registration (no more wake syscalls, `waiters` back to 0).
/// Then, with another dead registration next to a live waiter taking one token per
/// `notify_one` (one-hour check interval: a lost wake-up hangs until the watchdog), every
/// token is taken, and once the waiter is gone one notify leaves the count at 0.
#[test]
fn a_waiter_killed_while_parked_is_cleared_by_a_notify() {
    let _serial = serial();
    let region = Region::anonymous(4096).unwrap();
    let n = Notifier::new(region.notify_word().unwrap());

    leave_a_dead_waiter(&region);
    let epoch = n.epoch();
    assert!(n.notify_one(), "a counted waiter costs a wake syscall");
    assert_eq!(
        n.waiters(),
        0,
        "the notify found nobody parked and cleared the count"
    );
    assert_eq!(
        n.epoch(),
        (epoch + 3) & ((1 << 22) - 1),
        "a notify plus a clear"
    );
    assert!(!n.notify_one(), "nobody counted: no syscall");
    assert!(!n.notify_all());

    leave_a_dead_waiter(&region);
    const ROUNDS: u32 = 500;
    let (tokens, taken) = (region.atomic_u32(0).unwrap(), region.atomic_u32(4).unwrap());
    let mut live = fork(|| {
        let n = Notifier::new(region.notify_word().unwrap());
        let mut opts = WaitOptions::new();
        opts.spin(0).check_interval(Duration::from_secs(3600));
        let take = || {
            tokens
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
                .ok()
                .map(|_| ())
        };
        for _ in 0..ROUNDS {
            if n.wait_until(take, &opts).is_err() {
                return 2;
            }
            taken.fetch_add(1, Ordering::AcqRel);
        }
        0
    });
    for round in 1..=ROUNDS {
        tokens.fetch_add(1, Ordering::AcqRel);
        n.notify_one();
        wait_until("the live waiter to take the token", || {
            taken.load(Ordering::Acquire) == round || live.try_wait().is_some()
        });
        assert_eq!(
            taken.load(Ordering::Acquire),
            round,
            "the live waiter ended early"
        );
    }
    live.expect_ok("live waiter");
    n.notify_all();
    assert_eq!(
        n.waiters(),
        0,
        "leftover registrations are cleared by a quiet notify"
    );
    assert!(!n.notify_one());
}

#[test]
fn region_info_reports_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("info");
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    let region = RegionOptions::new()
        .content_kind(42)
        .max_peers(5)
        .create(&path, 1000)
        .unwrap();
    let info = Region::open(&path).unwrap().info().unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.data_len, 1000);
    assert_eq!(info.data_offset % 4096, 0);
    assert_eq!(info.total_size, std::fs::metadata(&path).unwrap().len());
    assert_eq!(info.content_kind, 42);
    assert_eq!(info.max_peers, 5);
    assert_eq!(info.creator_pid, std::process::id());
    assert!(info.created >= before);
    assert_eq!(&std::fs::read(&path).unwrap()[..8], b"MAPIPCRG");
    region.set_content_kind(43).unwrap();
    assert_eq!(Region::open(&path).unwrap().content_kind().unwrap(), 43);
    assert!(matches!(
        RegionOptions::new().max_peers(0).anonymous(1),
        Err(CreateError::PeerCount { count: 0, .. })
    ));
    assert!(matches!(
        RegionOptions::new().max_peers(256).anonymous(1),
        Err(CreateError::PeerCount { count: 256, .. })
    ));
    assert!(matches!(
        Region::anonymous(usize::MAX),
        Err(CreateError::TooLarge { .. })
    ));
}

#[test]
fn views_are_relative_to_the_user_data_and_bounds_checked() {
    let region = Region::anonymous(64).unwrap();
    region.write_pod(60, &0xdead_beef_u32).unwrap();
    let abs = region.data_offset() + 60;
    assert_eq!(region.as_mmap().read_pod::<u32>(abs).unwrap(), 0xdead_beef);
    assert!(region.write_pod(61, &0u32).is_err());
    assert!(region.read_vec(u64::MAX, 2).is_err());
    assert!(region.atomic_u64(56).is_ok());
    assert!(matches!(
        region.atomic_u64(52),
        Err(region::AccessError::Misaligned {
            offset: 52,
            align: 8,
            ..
        })
    ));
    assert!(matches!(
        region.atomic_u32(64),
        Err(region::AccessError::OutOfBounds {
            offset: 64,
            len: 4,
            map_len: 64,
            bounds: region::Bounds::RegionData,
            ..
        })
    ));
    // Writes through views never reach the header.
    region.fill(0, 64, 0xff).unwrap();
    assert_eq!(region.generation().unwrap(), 0);
    assert_eq!(region.content_kind().unwrap(), 0);

    // The region's own checks name it, as the mapping's do.
    let named = Region::memfd("views", 64).unwrap();
    for e in [
        named.atomic_u64(52).unwrap_err(),
        named.atomic_u32(64).unwrap_err(),
    ] {
        assert!(e.to_string().contains("memfd:views"), "{e}");
    }
    // ... and say that the length is the user data's, not the mapping's.
    let e = named.atomic_u32(64).unwrap_err().to_string();
    assert!(
        e.starts_with("range 64..68 is outside the 64-byte user data of the region in `")
            && e.ends_with("memfd:views`"),
        "{e}"
    );
}
