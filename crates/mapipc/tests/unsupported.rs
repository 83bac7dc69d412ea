// Run with the stub OS layer selected on Linux (its own target dir, so the normal build's
// artifacts are not rebuilt back and forth):
//
//   RUSTFLAGS="--cfg mapipc_unsupported" CARGO_TARGET_DIR=target/unsupported \
//       cargo test -p mapipc --test unsupported
//
// Without the cfg this file compiles to an empty test binary.

//! What a user of a platform mapipc does not support sees: every public entry point fails
//! with an error that says mapipc supports Linux, nothing panics and nothing hangs (each
//! test holds a `common::Watchdog`, so a wait retried forever aborts the run instead of
//! stalling it). The
//! stub OS layer (`os/unsupported/`) is what every non-Linux Unix builds; the
//! `mapipc_unsupported` cfg selects it on Linux so that this can be tested here.
#![cfg(mapipc_unsupported)]

mod common;

use std::error::Error;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use common::Watchdog;
use mapipc::channel::{Channel, ChannelOptions, Kind};
use mapipc::map::{MapError, MapOptions, Mmap};
use mapipc::queue::{Appender, QueueOptions, Retention, TailerOptions};
use mapipc::region::Region;
use mapipc::sync::{futex_wait, futex_wake, Notifier, WaitError, WaitOptions};

/// The error, then each of its sources, joined as a CLI would print them.
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cur = e.source();
    }
    text
}

/// Whether some error in the chain is an `io::Error` of kind `Unsupported`.
fn has_unsupported_io(err: &(dyn Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::Unsupported)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The error's own message (not only a source) says that mapipc supports Linux, and the
/// cause is recognisable: `MapError::Unsupported` or an `ErrorKind::Unsupported` I/O error.
#[track_caller]
fn assert_linux_only(err: &(dyn Error + 'static)) {
    let msg = err.to_string();
    assert!(
        msg.contains("supports Linux"),
        "the message does not say mapipc supports Linux: {msg:?} (chain: {:?})",
        chain(err)
    );
    let map_unsupported = chain(err).contains(&MapError::Unsupported.to_string());
    assert!(
        map_unsupported || has_unsupported_io(err),
        "no Unsupported cause in {:?}",
        chain(err)
    );
}

#[test]
fn the_os_layer_says_it_is_the_stub() {
    let _dog = Watchdog::new("the_os_layer_says_it_is_the_stub", None);
    const { assert!(!mapipc::os::SUPPORTED) };
    // The calls that cannot fail still answer sensibly.
    assert!(mapipc::os::mem::page_size().is_power_of_two());
    assert_eq!(mapipc::os::process::pid(), std::process::id());
    assert!(mapipc::os::process::available_cpus() >= 1);
    assert!(mapipc::os::process::pid_exists(std::process::id()));
    let a = mapipc::os::process::monotonic_ns();
    assert!(mapipc::os::process::monotonic_ns() >= a);
}

#[test]
fn every_fallible_os_call_fails_with_unsupported_naming_the_call() {
    let _dog = Watchdog::new(
        "every_fallible_os_call_fails_with_unsupported_naming_the_call",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let err = mapipc::os::file::open(dir.path(), Default::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        "mapipc supports Linux only: open is not available on this platform"
    );
    let err = mapipc::os::storage::create_dir(&dir.path().join("q"), 0o700).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("mkdir"), "{err}");
    let err = mapipc::os::sigbus::register(0x1000, 4096).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    assert!(
        !dir.path().join("q").exists(),
        "the stub created a directory"
    );
}

#[test]
fn mapping_a_file_is_unsupported() {
    let _dog = Watchdog::new("mapping_a_file_is_unsupported", None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"0123456789").unwrap();

    let err = MapOptions::new().map_path(&path).unwrap_err();
    assert!(matches!(err, MapError::Unsupported), "{err:?}");
    assert_linux_only(&err);

    let err = MapOptions::new()
        .read_write()
        .create(4096)
        .map_path(dir.path().join("new"))
        .unwrap_err();
    assert!(matches!(err, MapError::Unsupported), "{err:?}");
    assert!(!dir.path().join("new").exists(), "the stub created a file");

    let err = Mmap::open(&path).unwrap_err();
    assert_linux_only(&err);

    let file = std::fs::File::open(&path).unwrap();
    let err = MapOptions::new().map_fd(&file).unwrap_err();
    assert!(matches!(err, MapError::Unsupported), "{err:?}");
}

#[test]
fn anonymous_memory_is_unsupported() {
    let _dog = Watchdog::new("anonymous_memory_is_unsupported", None);
    let err = Mmap::anonymous(4096).unwrap_err();
    assert!(matches!(err, MapError::Unsupported), "{err:?}");
    assert_linux_only(&err);
    let err = MapOptions::new()
        .len(100)
        .private()
        .map_anonymous()
        .unwrap_err();
    assert!(matches!(err, MapError::Unsupported), "{err:?}");
}

#[test]
fn regions_are_unsupported() {
    let _dog = Watchdog::new("regions_are_unsupported", None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");

    assert_linux_only(&Region::create(&path, 4096).unwrap_err());
    assert!(!path.exists(), "the stub created a file");
    assert_linux_only(&Region::anonymous(4096).unwrap_err());
    assert_linux_only(&Region::memfd("stub", 4096).unwrap_err());
    assert_linux_only(&Region::open(&path).unwrap_err());
    assert_linux_only(&Region::open_or_create(&path, 4096).unwrap_err());

    let (a, _b) = UnixStream::pair().unwrap();
    assert_linux_only(&Region::receive(&a).unwrap_err());
}

#[test]
fn channels_are_unsupported() {
    let _dog = Watchdog::new("channels_are_unsupported", None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");

    assert_linux_only(&Channel::anonymous(4096).unwrap_err());
    assert_linux_only(&Channel::create(&path, 4096).unwrap_err());
    assert_linux_only(&Channel::open(&path).unwrap_err());
    assert_linux_only(&mapipc::channel::pair(4096).unwrap_err());
    for kind in [Kind::Spsc, Kind::Mpsc, Kind::Broadcast] {
        let err = ChannelOptions::new(kind).anonymous().unwrap_err();
        assert_linux_only(&err);
    }
}

#[test]
fn queues_are_unsupported() {
    let _dog = Watchdog::new("queues_are_unsupported", None);
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q");

    assert_linux_only(&QueueOptions::new().open_appender(&q).unwrap_err());
    assert!(!q.exists(), "the stub created the queue directory");
    assert_linux_only(&Appender::open(&q).unwrap_err());
    assert_linux_only(&TailerOptions::new().open(&q).unwrap_err());

    // On an existing directory too (the stub must not mistake it for "not a queue").
    std::fs::create_dir(&q).unwrap();
    assert_linux_only(&QueueOptions::new().open_appender(&q).unwrap_err());
    assert_linux_only(&mapipc::queue::stat(&q).unwrap_err());
    assert_linux_only(&mapipc::queue::verify(&q).unwrap_err());
    let err = mapipc::queue::retain(&q, Retention::new().max_segments(1)).unwrap_err();
    assert_linux_only(&err);
}

#[test]
fn futex_waits_fail_instead_of_sleeping_or_spinning() {
    let _dog = Watchdog::new("futex_waits_fail_instead_of_sleeping_or_spinning", None);
    let word = AtomicU32::new(0);
    // The word holds 0: on Linux this would sleep for the timeout; here it fails at once.
    let err = futex_wait(&word, 0, Some(Duration::from_secs(60))).unwrap_err();
    assert_linux_only(&err);
    assert_linux_only(&futex_wake(&word, 1).unwrap_err());

    // A notifier wait (never ready) ends with the error rather than looping forever.
    let mut opts = WaitOptions::new();
    opts.timeout(Duration::from_secs(60));
    let err = Notifier::new(&word)
        .wait_until(|| None::<()>, &opts)
        .unwrap_err();
    assert!(matches!(err, WaitError::Os(_)), "{err:?}");
    assert_linux_only(&err);
    // Waking nobody is not an error the caller sees.
    Notifier::new(&word).notify_all();
}
