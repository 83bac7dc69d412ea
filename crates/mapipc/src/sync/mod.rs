//! Synchronisation that works across processes: futexes, an event ([`Notifier`]) and a
//! robust mutex ([`RobustMutex`]), all living in a 4-byte word of shared memory.
//!
//! - [`atomic`]: the atomics facade (`std::sync::atomic`, or `loom`'s under `cfg(loom)`);
//! - [`futex_wait`] / [`futex_wake`]: shared (not `FUTEX_PRIVATE_FLAG`) futexes, so a waiter
//!   in one process is woken by a waker in another that maps the same memory;
//! - [`Notifier`]: spin-then-park waiting on a caller's predicate; a waker that makes no
//!   syscall when nobody is parked; timeouts, deadlines, and peer liveness checks so that a
//!   waiter whose counterpart died returns [`WaitError::PeerGone`] instead of hanging;
//! - [`RobustMutex`]: a process-shared mutex that records its owner, and whose next
//!   `lock()` after the owner died returns a guard marked [`owner_died`](MutexGuard::owner_died).
//!
//! The modules [`futex`], [`notifier`] and [`mutex`] document the algorithms, word layouts
//! and hostile-peer behaviour; their public items are re-exported here.
//!
//! Liveness is not decided here: the layer above (the region's peer table) knows which
//! processes are attached and alive, and hands that knowledge in as a callback.
//!
//! # Words in a mapping, words under loom
//!
//! Every primitive here operates on a *word* through the sealed [`FutexWord`] trait, which
//! is implemented for [`std::sync::atomic::AtomicU32`] (the type [`Mmap::atomic_u32`]
//! hands out over shared memory; waits and wakes go to the kernel through `os::futex`) and,
//! in `cfg(loom)` builds only, for `loom::sync::atomic::AtomicU32` (waits and wakes go to a
//! futex emulated with loom's `Mutex` and `Condvar`, see [`futex`]). Loom cannot
//! overlay its atomics on mmap memory, so the model tests allocate the word on the heap;
//! because the algorithms are generic over the word, the *same* `Notifier` and `RobustMutex`
//! code is model-checked by loom and run in production. Production code never names the
//! trait: `Notifier::new(map.atomic_u32(0)?)` infers the std type, in loom builds too.
//!
//! Under loom time does not exist: a timed futex wait is modelled as an untimed one, so a
//! lost wake-up shows up as a deadlock that loom reports, rather than being hidden by a
//! timeout. Loom tests therefore use neither deadlines nor liveness callbacks.
//!
//! The loom models live in `notifier.rs` and `mutex.rs` (`loom_tests` modules). Run them with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mapipc --release --lib sync::`
//! (about 20 s of model checking on 2 cores; unbounded preemptions take far longer).
//!
//! # Hostile peers
//!
//! A word in shared memory can be overwritten by any process that maps it. Every state a
//! word can hold is handled: garbage only causes spurious wake-ups, extra syscalls, or (for
//! the mutex) a takeover reported as `owner_died`; never a panic, and never a wait past its
//! deadline or its liveness check interval (where one is given).
//!
//! # Example
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use mapipc::sync::{Notifier, WaitOptions};
//!
//! let map = mapipc::map::Mmap::anonymous(4096)?;
//! let (flag, word) = (map.atomic_u32(0)?, map.atomic_u32(4)?);
//! let notifier = Notifier::new(word);
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         flag.store(1, Ordering::Release);
//!         Notifier::new(word).notify_all();
//!     });
//!     let got = notifier.wait_until(
//!         || (flag.load(Ordering::Acquire) == 1).then_some("ready"),
//!         &WaitOptions::new(),
//!     );
//!     assert_eq!(got.unwrap(), "ready");
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Mmap::atomic_u32`]: crate::map::Mmap::atomic_u32

pub mod atomic;
pub mod futex;
pub mod mutex;
pub mod notifier;

pub use futex::{futex_wait, futex_wake, FutexWord, WaitOutcome};
pub use mutex::{LockError, MutexGuard, RobustMutex, TryLockError, MAX_OWNER_ID};
pub use notifier::{Notifier, WaitError, WaitOptions, DEFAULT_CHECK_INTERVAL, DEFAULT_SPIN};
