//! Linux implementation of the OS layer.
#![allow(unsafe_code)]

pub mod file;
pub mod futex;
pub mod mem;
pub mod net;
pub mod process;
pub mod sigbus;
pub mod storage;

/// True on platforms where mapipc works.
pub const SUPPORTED: bool = true;
