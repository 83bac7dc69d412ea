//! # mapipc
//!
//! Memory-mapped file I/O and inter-process communication through shared mappings on
//! Linux, with a safe API: the pitfalls of raw `mmap` (a lost base pointer, an `O_RDONLY`
//! fd mapped writable, an unaligned offset, a zero length, an empty file, an access past
//! the end, a file truncated by another process) are clear errors, never crashes.
//!
//! Layers, lowest first (each uses only those below it):
//! - [`os`]: the only module making system calls;
//! - [`map`]: safe mappings of files and anonymous memory;
//! - [`region`]: shared regions with a validated header, named, anonymous or memfd, and a
//!   peer table whose liveness the kernel tracks;
//! - [`sync`]: futexes, an event ([`sync::Notifier`]) and a robust mutex
//!   ([`sync::RobustMutex`]) living in shared words, for processes to wait for each other;
//! - [`channel`]: lock-free message channels between processes;
//! - [`queue`]: a durable, replayable message log in memory-mapped segment files, with
//!   crash recovery.
//!
//! ```
//! use mapipc::map::MapOptions;
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("hello.bin");
//! let map = MapOptions::new().read_write().create(4096).map_path(&path)?;
//! map.write_at(0, b"hello, mmap")?;
//! assert_eq!(map.find(b"mmap")?, Some(7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Waking another process
//!
//! Shared memory carries bytes, not wake-ups. A [`region::Region`] has a generation counter
//! and a notifier word: a writer writes, bumps the generation (publishing what it wrote),
//! then notifies; a reader sleeps on a [`sync::Notifier`] until the generation changes.
//!
//! ```
//! use std::time::Duration;
//! use mapipc::region::Region;
//! use mapipc::sync::{Notifier, WaitOptions};
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("frames");
//! let reader = Region::create(&path, 4096)?;
//!
//! let writer = Region::open(&path)?; // normally in another process
//! let t = std::thread::spawn(move || -> Result<(), mapipc::map::AccessError> {
//!     writer.write_at(0, b"hello")?;
//!     writer.bump_generation()?; // publishes the bytes
//!     Notifier::new(writer.notify_word()?).notify_all(); // a futex wake if someone sleeps
//!     Ok(())
//! });
//!
//! // Sleeps (spin, then futex) until the generation is no longer 0.
//! let generation = Notifier::new(reader.notify_word()?).wait_until(
//!     || reader.generation().ok().filter(|&g| g != 0),
//!     WaitOptions::new().timeout(Duration::from_secs(10)),
//! )?;
//! assert_eq!(generation, 1);
//! assert_eq!(reader.read_vec(0, 5)?, b"hello");
//! # t.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! To wait for one particular process, give the wait its liveness
//! ([`WaitOptions::alive`](sync::WaitOptions::alive) with
//! [`Region::liveness`](region::Region::liveness)): if it dies, the wait ends with
//! [`WaitError::PeerGone`](sync::WaitError::PeerGone) instead of hanging. The programs in
//! `crates/mapipc/examples/` do this between a parent and a forked child
//! (`parent_child.rs`) and between two unrelated processes (`unrelated_reader.rs`,
//! `unrelated_writer.rs`).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

// The crate is written against `std::os::fd` and `std::os::unix` throughout: other Unix
// platforms build (every OS call then fails with an "unsupported" error, see `os`), anything
// else stops here.
#[cfg(not(unix))]
compile_error!("mapipc needs a Unix platform; it supports Linux");

pub mod channel;
pub mod map;
pub mod os;
pub mod queue;
pub mod region;
pub mod sync;

/// The Rust examples of the repository's README, run as doctests so they stay correct.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
