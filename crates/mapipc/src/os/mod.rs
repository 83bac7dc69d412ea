//! The operating-system layer: the only module that makes system calls.
//!
//! Everything above this module (`map`, `region`, `sync`, `channel`, `queue`) calls these
//! thin, documented wrappers instead of `rustix` or `libc` directly, so that every syscall
//! the crate makes can be found here. Each wrapper names the C call it makes.
//!
//! On Linux the wrappers go through [`rustix`] (its raw-syscall backend, which never touches
//! `errno`, a property the SIGBUS handler in [`sigbus`] relies on) and through `libc` only
//! where rustix has no wrapper (`sigaction`, open-file-description byte-range locks).
//!
//! On every other Unix the same modules, functions, types and constants exist
//! (`os/unsupported/`), so the crate builds there and fails clearly at run time;
//! [`SUPPORTED`] tells which implementation was built. There:
//! - every function that returns `io::Result` fails with
//!   [`io::ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported) and the message
//!   "mapipc supports Linux only: CALL is not available on this platform";
//! - a function that cannot fail returns a portable value (from `std`, or from rustix calls
//!   that exist on every Unix), documented on the function;
//! - the types only a successful call creates (the SIGBUS [`Guard`](sigbus::Guard)) are
//!   uninhabited, so their methods can never run.
//!
//! The stub can also be selected on Linux, to test that the layers above handle it, by
//! building with `RUSTFLAGS="--cfg mapipc_unsupported"` (see `tests/unsupported.rs`).

mod posix;
mod types;

#[cfg(all(target_os = "linux", not(mapipc_unsupported)))]
#[path = "linux/mod.rs"]
mod imp;

#[cfg(any(not(target_os = "linux"), mapipc_unsupported))]
#[path = "unsupported/mod.rs"]
mod imp;

pub use imp::*;
