//! The queue's only `unsafe` code: borrowing record payloads in a segment mapping as
//! slices, for callers who accept the obligations of [`Mmap::as_slice`].
#![allow(unsafe_code)]

use crate::map::Mmap;

/// `&map[off..off + len]`.
///
/// # Safety
/// - `off..off + len` must lie inside `map` (callers pass ranges they bounds-checked);
/// - the obligations of [`Mmap::as_slice`] for that range: nobody writes or truncates those
///   bytes while the slice lives.
pub(crate) unsafe fn slice(map: &Mmap, off: u64, len: usize) -> &[u8] {
    debug_assert!(map.check_range(off, len).is_ok());
    // SAFETY: in bounds (first obligation) and immutable while borrowed (second one).
    unsafe { std::slice::from_raw_parts(map.as_ptr().add(off as usize), len) }
}

/// `&mut map[off..off + len]`.
///
/// # Safety
/// As [`slice`], and no one else may read or write those bytes while the slice lives, and
/// the mapping must be writable.
#[allow(clippy::mut_from_ref)]
pub(crate) unsafe fn mut_slice(map: &Mmap, off: u64, len: usize) -> &mut [u8] {
    debug_assert!(map.check_range(off, len).is_ok());
    // SAFETY: in bounds, exclusive and writable, per the caller's obligations.
    unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().add(off as usize), len) }
}
