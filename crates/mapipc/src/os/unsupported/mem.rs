//! Memory-management calls (stub): no mapping can be made, so every call fails with an
//! "unsupported" error; only [`page_size`] answers. See the [`os` module docs](crate::os).
//!
//! The `unsafe fn`s keep their Linux signatures and contracts (callers uphold those); this
//! stub never touches memory.

use std::ffi::c_void;
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use super::unsupported;

pub use crate::os::types::{Advice, MapKind, Prot};

/// The system page size: `sysconf(_SC_PAGESIZE)` through [`rustix::param::page_size`],
/// which exists on every Unix (std has no page size). The real value, not a guess such as
/// 4096: Apple silicon uses 16 KiB pages.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// `mmap` of a file on Linux; unsupported here.
///
/// # Safety
/// As on Linux: `offset` a multiple of the page size, `len` non-zero, and the caller owns
/// (and must unmap) a returned range. This stub never returns one.
pub unsafe fn mmap_file(
    _len: usize,
    _prot: Prot,
    _kind: MapKind,
    _fd: BorrowedFd<'_>,
    _offset: u64,
) -> io::Result<NonNull<c_void>> {
    Err(unsupported("mmap"))
}

/// On Linux, whether an mmap error says the file system cannot map files; never here.
pub fn not_mappable(_e: &io::Error) -> bool {
    false
}

/// On Linux, whether a file can be mapped at all (a one-page `mmap`); unsupported here.
pub fn probe_map(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Err(unsupported("mmap"))
}

/// Anonymous `mmap` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: the caller owns (and must unmap) a returned range. This stub never returns
/// one.
pub unsafe fn mmap_anonymous(
    _len: usize,
    _prot: Prot,
    _kind: MapKind,
) -> io::Result<NonNull<c_void>> {
    Err(unsupported("mmap"))
}

/// Replaces pages with zero pages (`mmap(MAP_FIXED)`) on Linux; unsupported here.
///
/// # Safety
/// As on Linux: `addr..addr+len` lies inside a mapping owned by the caller. This stub
/// never touches it.
pub unsafe fn map_zero_pages_fixed(_addr: *mut c_void, _len: usize) -> io::Result<()> {
    Err(unsupported("mmap(MAP_FIXED)"))
}

/// `munmap(addr, len)` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: the range came from an `mmap_*` function. None can exist here.
pub unsafe fn munmap(_addr: NonNull<c_void>, _len: usize) -> io::Result<()> {
    Err(unsupported("munmap"))
}

/// `mremap(addr, old_len, new_len, MREMAP_MAYMOVE)` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: `addr..addr+old_len` is a live mapping owned by the caller. None can exist
/// here.
pub unsafe fn mremap(
    _addr: NonNull<c_void>,
    _old_len: usize,
    _new_len: usize,
) -> io::Result<NonNull<c_void>> {
    Err(unsupported("mremap"))
}

/// `msync(addr, len, MS_SYNC or MS_ASYNC)` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: a page-aligned range inside a live mapping owned by the caller.
pub unsafe fn msync(_addr: *mut c_void, _len: usize, _sync: bool) -> io::Result<()> {
    Err(unsupported("msync"))
}

/// `madvise(addr, len, advice)` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: a page-aligned range inside a live mapping owned by the caller.
pub unsafe fn madvise(_addr: *mut c_void, _len: usize, _advice: Advice) -> io::Result<()> {
    Err(unsupported("madvise"))
}

/// `mlock` or `munlock` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: a range inside a live mapping owned by the caller.
pub unsafe fn mlock(_addr: *mut c_void, _len: usize, _lock: bool) -> io::Result<()> {
    Err(unsupported("mlock"))
}

/// `mlock2(addr, len, MLOCK_ONFAULT)` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: a range inside a live mapping owned by the caller.
pub unsafe fn mlock_on_fault(_addr: *mut c_void, _len: usize) -> io::Result<()> {
    Err(unsupported("mlock2"))
}

/// `mincore(addr, len, vec)` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: a page-aligned range inside a live mapping owned by the caller.
pub unsafe fn first_not_resident(_addr: *mut c_void, _len: usize) -> io::Result<Option<usize>> {
    Err(unsupported("mincore"))
}

/// `mprotect(addr, len, prot)` on Linux; unsupported here.
///
/// # Safety
/// As on Linux: a page-aligned range inside a live mapping owned by the caller.
pub unsafe fn mprotect(_addr: *mut c_void, _len: usize, _prot: Prot) -> io::Result<()> {
    Err(unsupported("mprotect"))
}
