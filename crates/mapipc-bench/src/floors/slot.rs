//! The read-only view of one message in a floor's shared memory, handed to the receive
//! callbacks of all three floors (as `super::slot`: the channel bench, which includes the
//! floors with `#[path]`, includes this file next to them).

#![allow(unsafe_code)]

use std::io;

use mapipc::map::Mmap;

/// A read-only view of one message in shared memory, valid during a receive callback. It
/// copies out of shared memory and never hands out a reference into it.
#[derive(Debug)]
pub struct Slot<'a> {
    map: &'a Mmap,
    /// `offset + len <= map.len()` (checked by [`Slot::new`]).
    offset: usize,
    len: usize,
    /// The floor's name, for errors.
    floor: &'static str,
}

impl<'a> Slot<'a> {
    /// A view of `len` bytes at `offset` of `map`, which the floor's protocol handed to the
    /// reader (release/acquire): nobody writes them while the view lives.
    ///
    /// # Panics
    /// If the range is not inside `map`.
    #[inline]
    pub(crate) fn new(map: &'a Mmap, offset: usize, len: usize, floor: &'static str) -> Self {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= map.len()),
            "{floor}: slot outside the mapping"
        );
        Slot {
            map,
            offset,
            len,
            floor,
        }
    }

    /// Message length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The little-endian `u64` at byte `at` of the message, `None` past its end.
    #[inline]
    pub fn read_u64_le(&self, at: usize) -> Option<u64> {
        if at.checked_add(8)? > self.len {
            return None;
        }
        let p = self.map.as_ptr().wrapping_add(self.offset + at);
        // SAFETY: `offset + at + 8 <= offset + len <= map.len()` (checked by `Slot::new`), so
        // the 8 bytes are inside the mapping, which `self.map` keeps alive; an unaligned raw
        // read of plain bytes that nobody writes while the view lives.
        Some(u64::from_le(unsafe { p.cast::<u64>().read_unaligned() }))
    }

    /// Copies the first `buf.len()` bytes of the message into `buf`.
    ///
    /// # Errors
    /// `buf` is longer than the message.
    pub fn read_into(&self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: buffer longer than the message", self.floor),
            ));
        }
        let p = self.map.as_ptr().wrapping_add(self.offset);
        // SAFETY: `buf.len() <= len` and `offset + len <= map.len()`: the source is inside the
        // live mapping; `buf` is private memory that cannot overlap it.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}
