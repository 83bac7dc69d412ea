//! The operating-system layer: the only module that makes system calls.
//!
//! Everything above this module (`map`, `region`, `sync`, `channel`, `queue`) calls these
//! thin, documented wrappers instead of `rustix` or `libc` directly, so that every syscall
//! the crate makes can be found here. Each wrapper names the C call it makes.
//!
//! On Linux the wrappers go through [`rustix`] (its raw-syscall backend, which never touches
//! `errno`, a property the SIGBUS handler in [`sigbus`] relies on) and through `libc` only
//! where rustix has no wrapper (`sigaction`, open-file-description byte-range locks).
//! On every other platform the same functions exist and return an "unsupported" error, so
//! the crate builds everywhere and fails clearly at run time.

#[cfg(target_os = "linux")]
#[path = "linux/mod.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "unsupported.rs"]
mod imp;

pub use imp::*;
