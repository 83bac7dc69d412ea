//! The atomics facade: `std::sync::atomic` normally, `loom::sync::atomic` under `cfg(loom)`.
//!
//! Algorithm state that loom should explore (in `sync/` and `channel/`) uses these names
//! instead of `std::sync::atomic`, so that building with `RUSTFLAGS="--cfg loom"` swaps every
//! atomic operation for a loom-tracked one, and [`spin_loop`] for a loom yield (loom needs
//! spin loops to yield, or it explores them forever).
//!
//! Words that live in a mapping are a different matter: [`Mmap::atomic_u32`] always hands out
//! `std::sync::atomic::AtomicU32`, because loom's atomics cannot be placed over mmap memory.
//! Code that must run both over a mapping and under loom is therefore written generically
//! over [`FutexWord`](super::FutexWord) (as [`Notifier`](super::Notifier) and
//! [`RobustMutex`](super::RobustMutex) are), and loom tests allocate their words from this
//! facade on the heap.
//!
//! Loom atomics only work inside `loom::model`; a `cfg(loom)` build is for running loom
//! tests, nothing else.
//!
//! # Example
//! ```
//! use mapipc::sync::atomic::{AtomicU32, Ordering};
//! let a = AtomicU32::new(1);
//! a.fetch_add(1, Ordering::AcqRel);
//! assert_eq!(a.load(Ordering::Acquire), 2);
//! mapipc::sync::atomic::spin_loop();
//! ```
//!
//! [`Mmap::atomic_u32`]: crate::map::Mmap::atomic_u32

#[cfg(not(loom))]
pub use std::hint::spin_loop;
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub use loom::hint::spin_loop;
#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
