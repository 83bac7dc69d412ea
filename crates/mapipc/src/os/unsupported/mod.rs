//! The OS layer on platforms mapipc does not support (every target but Linux; on Linux too
//! when built with `--cfg mapipc_unsupported`, to test this path).
//!
//! It has the same modules, functions, types and constants as `os/linux/`, so the layers
//! above build unchanged; the policy is in the `os` module docs. Nothing here uses
//! `unsafe`: the `unsafe fn`s keep the Linux signatures so that their callers, which call
//! them in `unsafe` blocks, compile the same on every platform.

use std::io;

pub mod file;
pub mod futex;
pub mod mem;
pub mod net;
pub mod process;
pub mod sigbus;
pub mod storage;

/// True on platforms where mapipc works: false here.
pub const SUPPORTED: bool = false;

/// The error every fallible call of this stub returns: `ErrorKind::Unsupported`, naming
/// the call and saying that mapipc supports Linux only.
fn unsupported(call: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("mapipc supports Linux only: {call} is not available on this platform"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_error_names_the_call_and_linux() {
        let e = super::unsupported("open");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            "mapipc supports Linux only: open is not available on this platform"
        );
    }
}
