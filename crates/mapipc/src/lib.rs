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
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod map;
pub mod os;
pub mod queue;
pub mod region;
pub mod sync;
