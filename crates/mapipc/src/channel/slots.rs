//! Raw access to the ring's bytes inside a mapping: the only `unsafe` of the channel.
//!
//! [`MappedRing`] implements [`RingMem`](super::ring::RingMem) over pointers into a live
//! mapping. The ring logic validates every offset before calling in (8-byte aligned,
//! `off + len <= capacity`), and [`MappedRing::new`] checks that the header fields and the
//! ring lie inside the mapping, so every access below stays inside memory we own.
//!
//! Shared bytes are only touched through raw-pointer copies and atomics, never through
//! references, as explained in [`crate::map`]'s soundness notes: a peer writing
//! concurrently can make what we copy stale or garbage (which the ring validates), not
//! undefined.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::layout::{off, RING_OFFSET};
use super::ring::RingMem;
use super::words::Words;
use crate::map::Mmap;

/// Copies of up to this many bytes into the ring are made inline (see [`copy_into_ring`]);
/// longer ones are left to `memcpy`.
const INLINE_MAX: usize = 128;

/// Copies `len` bytes from private memory into the ring, as `ptr::copy_nonoverlapping`, but
/// a short copy (up to [`INLINE_MAX`] bytes) is made inline, one part on each side of a
/// 64-byte line boundary it crosses. Every store on the producer's path waits behind the
/// ring's in the store buffer (see `ring`'s module docs), and a call to `memcpy` adds its
/// return address and the caller's spilled registers to those; and a single wide store across
/// two lines commits only once the producer owns both, lines the consumer has held, where
/// split at the boundary the first line's stores commit as soon as that line comes. A
/// 64-byte message after its record's 8-byte header is such a copy (BENCHMARKS.md,
/// "Channel", session of 2026-11-27, 16:32 UTC).
///
/// The 16-byte moves are aligned on the destination: a payload starts 8 bytes into its
/// record, so one 8-byte move goes first, and the 16-byte moves after it land on 16-byte
/// boundaries (only the last one of a length that is not a multiple of 16 overlaps the one
/// before). Measured: a batched stream of 64-byte messages 0.97x -> 1.15x the ring floor,
/// with the same number of stores (BENCHMARKS.md, "Channel", session of 2026-11-27,
/// 19:02 UTC).
///
/// # Safety
/// As for `ptr::copy_nonoverlapping(src, dst, len)`: `src` readable and `dst` writable for
/// `len` bytes, the two not overlapping.
#[inline(always)]
pub(crate) unsafe fn copy_into_ring(mut src: *const u8, mut dst: *mut u8, mut len: usize) {
    if dst as usize & 15 == 8 && (8..=INLINE_MAX).contains(&len) {
        // SAFETY: `8 <= len` bytes readable at `src` and writable at `dst`; what is left
        // (`len - 8` bytes after both) keeps the caller's contract.
        unsafe {
            std::ptr::write_unaligned(
                dst.cast::<u64>(),
                std::ptr::read_unaligned(src.cast::<u64>()),
            );
            src = src.add(8);
            dst = dst.add(8);
        }
        len -= 8;
    }
    let to_line = 64 - (dst as usize & 63);
    if len <= to_line {
        // SAFETY: the caller's contract; `len <= 64` in the first branch.
        unsafe {
            if len <= 64 {
                copy_small(src, dst, len)
            } else {
                std::ptr::copy_nonoverlapping(src, dst, len)
            }
        }
    } else if len <= INLINE_MAX && len - to_line <= 64 {
        // SAFETY: `to_line < len`, so both parts lie inside the `len` bytes the caller vouched
        // for, on both sides; each part is at most 64 bytes.
        unsafe {
            copy_small(src, dst, to_line);
            copy_small(src.add(to_line), dst.add(to_line), len - to_line);
        }
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
    }
}

/// Writes a record: the 8-byte `header` at `dst` (8-byte aligned), then `len` bytes from
/// `src`, every store aligned on the destination: at a 16-byte boundary the header and the
/// first 8 payload bytes go in one 16-byte store (one store fewer), then the rest as
/// [`copy_into_ring`] (16-byte aligned); elsewhere the header alone, then the payload, which
/// then starts at a 16-byte boundary. In the order of the addresses: for records no reader
/// can reach yet (see `RingMem::write_record`).
///
/// # Safety
/// `dst` 8-byte aligned and writable for `8 + len` bytes, `src` readable for `len`, the two
/// not overlapping.
#[inline(always)]
unsafe fn copy_record_into_ring(header: u64, src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's contract; every access lies inside `dst..dst + 8 + len` and
    // `src..src + len`.
    unsafe {
        if len >= 8 && dst as usize & 15 == 0 {
            let hi = std::ptr::read_unaligned(src.cast::<u64>());
            // One 16-byte store (SSE2 is baseline on x86_64); elsewhere a pair of words
            // (`stp` on aarch64).
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::{_mm_set_epi64x, _mm_storeu_si128};
                _mm_storeu_si128(dst.cast(), _mm_set_epi64x(hi as i64, header as i64));
            }
            #[cfg(not(target_arch = "x86_64"))]
            std::ptr::write_unaligned(dst.cast::<[u64; 2]>(), [header, hi]);
            copy_into_ring(src.add(8), dst.add(16), len - 8);
        } else {
            std::ptr::write_unaligned(dst.cast::<u64>(), header);
            copy_into_ring(src, dst.add(8), len);
        }
    }
}

/// Copies `len` (at most 64) bytes with a few unaligned moves, overlapping when `len` is not
/// a power of two, as `memcpy` implementations do for short copies, but inline.
///
/// # Safety
/// As for `ptr::copy_nonoverlapping(src, dst, len)`, and `len <= 64`.
#[inline(always)]
unsafe fn copy_small(src: *const u8, dst: *mut u8, len: usize) {
    /// Copies a `T` from `src + at` to `dst + at`, unaligned.
    ///
    /// # Safety
    /// `at + size_of::<T>()` bytes readable at `src` and writable at `dst`.
    #[inline(always)]
    unsafe fn mv<T>(src: *const u8, dst: *mut u8, at: usize) {
        // SAFETY: the caller's contract; unaligned access is what these functions allow.
        unsafe {
            std::ptr::write_unaligned(
                dst.add(at).cast::<T>(),
                std::ptr::read_unaligned(src.add(at).cast::<T>()),
            )
        }
    }
    debug_assert!(len <= 64);
    type V = [u8; 16];
    // SAFETY: every move below lies inside `0..len` of both buffers, by the branch that
    // guards it; the buffers do not overlap, so the moves' order does not matter.
    unsafe {
        // A power-of-two length skips the overlapping move that would repeat a store.
        if len > 48 {
            mv::<V>(src, dst, 0);
            mv::<V>(src, dst, 16);
            mv::<V>(src, dst, 32);
            mv::<V>(src, dst, len - 16);
        } else if len >= 32 {
            mv::<V>(src, dst, 0);
            mv::<V>(src, dst, 16);
            if len > 32 {
                mv::<V>(src, dst, len - 16);
            }
        } else if len >= 16 {
            mv::<V>(src, dst, 0);
            if len > 16 {
                mv::<V>(src, dst, len - 16);
            }
        } else if len >= 8 {
            mv::<u64>(src, dst, 0);
            if len > 8 {
                mv::<u64>(src, dst, len - 8);
            }
        } else if len >= 4 {
            mv::<u32>(src, dst, 0);
            mv::<u32>(src, dst, len - 4);
        } else if len > 0 {
            mv::<u8>(src, dst, 0);
            mv::<u8>(src, dst, len / 2);
            mv::<u8>(src, dst, len - 1);
        }
    }
}

/// Ring memory inside a mapping. Holds raw pointers: the owner (the channel's shared
/// state) keeps the mapping alive for as long as this exists.
#[derive(Debug)]
pub(crate) struct MappedRing {
    header: *mut u8,
    ring: *mut u8,
    cap: u64,
}

// SAFETY: the pointers refer to a shared mapping that outlives this value (see the type
// docs); all accesses are atomics or raw copies, valid from any thread.
unsafe impl Send for MappedRing {}
// SAFETY: as above.
unsafe impl Sync for MappedRing {}

impl MappedRing {
    /// Points at a channel header `header_off` bytes into `map`, with a ring of `cap` bytes
    /// at `RING_OFFSET`. Returns `None` unless all of it lies inside the mapping and the
    /// header is 64-byte aligned.
    pub(crate) fn new(map: &Mmap, header_off: u64, cap: u64) -> Option<MappedRing> {
        let end = header_off.checked_add(RING_OFFSET)?.checked_add(cap)?;
        map.check_range(header_off, (end - header_off) as usize)
            .ok()?;
        let header = map.as_mut_ptr().wrapping_add(header_off as usize);
        if header as usize % 64 != 0 {
            return None;
        }
        Some(MappedRing {
            header,
            ring: header.wrapping_add(RING_OFFSET as usize),
            cap,
        })
    }

    #[inline]
    fn atomic_u64(&self, field: u64) -> &AtomicU64 {
        // SAFETY: `field` is one of the 8-byte aligned offsets in `layout::off`, inside the
        // 4096-byte header checked in `new`; the mapping outlives `self`; any bit pattern is a
        // valid `AtomicU64`, and concurrent access from other processes is what atomics allow.
        unsafe { &*self.header.add(field as usize).cast::<AtomicU64>() }
    }

    /// A 4-byte aligned word of the header (notifier words, peer ids).
    #[inline]
    pub(crate) fn atomic_u32(&self, field: u64) -> &AtomicU32 {
        debug_assert!(field % 4 == 0 && field + 4 <= RING_OFFSET);
        // SAFETY: as in `atomic_u64`, for a 4-byte aligned offset inside the header.
        unsafe { &*self.header.add(field as usize).cast::<AtomicU32>() }
    }

    /// Replaces `out`'s contents with the `len` bytes at ring index `off`, copying once
    /// (no zero-fill first).
    #[inline]
    pub(crate) fn read_into_vec(&self, off: u64, len: usize, out: &mut Vec<u8>) {
        debug_assert!(off + len as u64 <= self.cap);
        out.clear();
        out.reserve(len);
        // SAFETY: `off..off+len` lies inside the ring (validated by the ring before this
        // call); `out` has capacity for `len` bytes, all of which are initialised by the copy
        // before `set_len`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.add(off as usize), out.as_mut_ptr(), len);
            out.set_len(len);
        }
    }

    /// Pointer to ring index `off` (for zero-copy grants and views).
    #[inline]
    pub(crate) fn ptr(&self, off: u64) -> *mut u8 {
        debug_assert!(off <= self.cap);
        self.ring.wrapping_add(off as usize)
    }
}

impl RingMem for MappedRing {
    #[inline]
    fn load_head(&self, order: Ordering) -> u64 {
        self.atomic_u64(off::HEAD).load(order)
    }
    #[inline]
    fn store_head(&self, head: u64, order: Ordering) {
        self.atomic_u64(off::HEAD).store(head, order)
    }
    #[inline]
    fn load_tail(&self, order: Ordering) -> u64 {
        self.atomic_u64(off::TAIL).load(order)
    }
    #[inline]
    fn store_tail(&self, tail: u64, order: Ordering) {
        self.atomic_u64(off::TAIL).store(tail, order)
    }
    #[inline]
    fn load_word(&self, off: u64, order: Ordering) -> u64 {
        self.ring_atomic(off).load(order)
    }
    #[inline]
    fn store_word(&self, off: u64, w: u64, order: Ordering) {
        self.ring_atomic(off).store(w, order)
    }
    #[inline]
    fn read_bytes(&self, off: u64, dst: &mut [u8]) {
        debug_assert!(off + dst.len() as u64 <= self.cap);
        // SAFETY: the ring checked the range lies inside `0..cap`; `dst` is private memory.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.add(off as usize), dst.as_mut_ptr(), dst.len())
        }
    }
    #[inline]
    fn write_bytes(&self, off: u64, src: &[u8]) {
        debug_assert!(off + src.len() as u64 <= self.cap);
        // SAFETY: the ring checked the range lies inside `0..cap`; `src` is private memory.
        unsafe { copy_into_ring(src.as_ptr(), self.ring.add(off as usize), src.len()) }
    }
    #[inline(always)]
    fn write_record(&self, off: u64, header: u64, src: &[u8]) {
        debug_assert!(off % 8 == 0 && off + 8 + src.len() as u64 <= self.cap);
        // SAFETY: the ring checked that the record lies inside `0..cap`; `src` is private.
        unsafe {
            copy_record_into_ring(header, src.as_ptr(), self.ring.add(off as usize), src.len())
        }
    }
}

impl MappedRing {
    #[inline]
    fn ring_atomic(&self, off: u64) -> &AtomicU64 {
        assert!(
            off % 8 == 0 && off + 8 <= self.cap,
            "ring word offset out of range"
        );
        // SAFETY: `off` is 8-byte aligned and `off + 8 <= cap` (asserted), so the word lies
        // inside the ring, which lies inside the live mapping (checked in `new`) and is
        // 8-byte aligned; any bit pattern is a valid `AtomicU64`.
        unsafe { &*self.ring.add(off as usize).cast::<AtomicU64>() }
    }

    #[inline]
    fn ctl_atomic(&self, field: u64) -> &AtomicU64 {
        assert!(
            field % 8 == 0 && field + 8 <= RING_OFFSET,
            "header field out of range"
        );
        self.atomic_u64(field)
    }
}

impl Words for MappedRing {
    #[inline]
    fn ctl_load(&self, field: u64, order: Ordering) -> u64 {
        self.ctl_atomic(field).load(order)
    }
    #[inline]
    fn ctl_store(&self, field: u64, value: u64, order: Ordering) {
        self.ctl_atomic(field).store(value, order)
    }
    #[inline]
    fn ctl_cas(&self, field: u64, current: u64, new: u64) -> Result<u64, u64> {
        self.ctl_atomic(field)
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
    }
    #[inline]
    fn word_load(&self, off: u64, order: Ordering) -> u64 {
        self.ring_atomic(off).load(order)
    }
    #[inline]
    fn word_store(&self, off: u64, value: u64, order: Ordering) {
        self.ring_atomic(off).store(value, order)
    }
    #[inline]
    fn word_cas(&self, off: u64, current: u64, new: u64) -> Result<u64, u64> {
        self.ring_atomic(off)
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
    }
}

/// A read-only view of a message inside the ring, handed out by zero-copy receives.
///
/// It gives no `&[u8]` safely (a hostile producer could change the bytes behind it), but
/// copies any part out, reads plain-old-data values in place, or hands a raw pointer.
///
/// # Example
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// let mut msg = 7u32.to_le_bytes().to_vec();
/// msg.extend_from_slice(b"payload");
/// tx.send(&msg)?;
///
/// let got = rx.recv_ref()?;
/// let bytes = got.bytes();
/// assert_eq!(bytes.len(), 11);
/// assert_eq!(bytes.read_pod::<u32>(0), Some(7)); // in place, any alignment
/// assert_eq!(bytes.get(4), Some(b'p'));
/// let mut word = [0; 7];
/// assert!(bytes.read_at(4, &mut word));
/// assert_eq!(&word, b"payload");
/// assert!(!bytes.read_at(8, &mut word)); // out of range: nothing copied
/// assert_eq!(bytes.to_vec(), msg);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Bytes<'a> {
    ptr: *const u8,
    len: usize,
    _life: std::marker::PhantomData<&'a u8>,
}

impl<'a> Bytes<'a> {
    /// # Safety
    /// `ptr..ptr+len` must stay mapped and readable for `'a`.
    #[inline]
    pub(crate) unsafe fn new(ptr: *const u8, len: usize) -> Bytes<'a> {
        Bytes {
            ptr,
            len,
            _life: std::marker::PhantomData,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes (never, for a message).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `dst.len()` bytes starting at `offset`; `false` if out of range.
    #[inline]
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> bool {
        match offset.checked_add(dst.len()) {
            Some(end) if end <= self.len => {
                // SAFETY: in range of a live, readable view (constructor contract); `dst` is
                // private memory.
                unsafe {
                    std::ptr::copy_nonoverlapping(self.ptr.add(offset), dst.as_mut_ptr(), dst.len())
                };
                true
            }
            _ => false,
        }
    }

    /// Copies all bytes into `dst`, which must have the same length; `false` otherwise.
    pub fn copy_to_slice(&self, dst: &mut [u8]) -> bool {
        dst.len() == self.len && self.read_at(0, dst)
    }

    /// Copies the bytes into a new `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.read_at(0, &mut v);
        v
    }

    /// Reads a plain-old-data value at `offset` (any alignment); `None` if out of range.
    #[inline]
    pub fn read_pod<T: bytemuck::Pod>(&self, offset: usize) -> Option<T> {
        let mut v = T::zeroed();
        self.read_at(offset, bytemuck::bytes_of_mut(&mut v))
            .then_some(v)
    }

    /// The byte at `index`.
    pub fn get(&self, index: usize) -> Option<u8> {
        // SAFETY: `index < len` inside the live view; a volatile read of shared memory.
        (index < self.len).then(|| unsafe { self.ptr.add(index).read_volatile() })
    }

    /// Raw pointer to the first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Borrows the bytes in place.
    ///
    /// # Safety
    /// Nobody may write these bytes while the slice lives. Every mapipc producer leaves a
    /// committed message alone, so this holds unless a buggy or hostile process writes into
    /// the channel.
    pub unsafe fn as_slice(&self) -> &'a [u8] {
        // SAFETY: live, readable (constructor contract); immutability is the caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bytes").field("len", &self.len).finish()
    }
}

/// A writable view of space reserved in the ring, handed out by zero-copy sends.
///
/// # Example
/// ```
/// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
/// let mut grant = tx.reserve(12)?;
/// let mut bytes = grant.bytes();
/// assert_eq!(bytes.len(), 12);
/// bytes.fill(0);
/// assert!(bytes.write_pod(0, &42u64));
/// assert!(bytes.write_at(8, b"tail"));
/// assert!(!bytes.write_at(10, b"tail")); // out of range: nothing written
/// grant.commit()?;
///
/// let msg = rx.recv()?;
/// assert_eq!(&msg[..8], &42u64.to_ne_bytes());
/// assert_eq!(&msg[8..], b"tail");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BytesMut<'a> {
    ptr: *mut u8,
    len: usize,
    _life: std::marker::PhantomData<&'a mut u8>,
}

impl<'a> BytesMut<'a> {
    /// # Safety
    /// `ptr..ptr+len` must stay mapped and writable for `'a`, and reserved for the holder.
    #[inline]
    pub(crate) unsafe fn new(ptr: *mut u8, len: usize) -> BytesMut<'a> {
        BytesMut {
            ptr,
            len,
            _life: std::marker::PhantomData,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes (never, for a grant).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `src` to `offset`; `false` (and nothing written) if out of range.
    #[inline]
    pub fn write_at(&mut self, offset: usize, src: &[u8]) -> bool {
        match offset.checked_add(src.len()) {
            Some(end) if end <= self.len => {
                // SAFETY: in range of the live reserved view (constructor contract); `src` is
                // private memory.
                unsafe { copy_into_ring(src.as_ptr(), self.ptr.add(offset), src.len()) };
                true
            }
            _ => false,
        }
    }

    /// Copies `src` to the start; `false` if longer than the view.
    #[inline]
    pub fn copy_from_slice(&mut self, src: &[u8]) -> bool {
        self.write_at(0, src)
    }

    /// Writes a plain-old-data value at `offset`; `false` if out of range.
    pub fn write_pod<T: bytemuck::NoUninit>(&mut self, offset: usize, value: &T) -> bool {
        self.write_at(offset, bytemuck::bytes_of(value))
    }

    /// Fills the whole view with `byte`.
    pub fn fill(&mut self, byte: u8) {
        // SAFETY: the whole live reserved view.
        unsafe { std::ptr::write_bytes(self.ptr, byte, self.len) }
    }

    /// Raw pointer to the first byte.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    /// Borrows the reserved space as a mutable slice.
    ///
    /// # Safety
    /// Nobody else may read or write these bytes while the slice lives. Every mapipc consumer
    /// leaves unpublished space alone, so this holds unless a buggy or hostile process
    /// touches the channel.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: live, writable, reserved (constructor contract); exclusivity promised.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl std::fmt::Debug for BytesMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BytesMut").field("len", &self.len).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{copy_into_ring, copy_record_into_ring};

    /// A line-aligned buffer, so that destination offsets are offsets within lines.
    #[repr(C, align(64))]
    struct Lines([u8; 512]);

    #[test]
    fn copies_into_the_ring_exactly_at_every_line_offset_and_length() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for at in 0..64 {
            for len in 0..=300 {
                let mut dst = Lines([0xEE; 512]);
                // SAFETY: `at + len <= 364 <= 512` bytes of `dst`, `len <= 300` of `src`;
                // distinct allocations.
                unsafe { copy_into_ring(src.as_ptr(), dst.0.as_mut_ptr().add(at), len) };
                assert!(
                    dst.0[..at].iter().all(|&b| b == 0xEE),
                    "bytes before the copy touched (at {at}, len {len})"
                );
                assert_eq!(&dst.0[at..at + len], &src[..len], "at {at}, len {len}");
                assert!(
                    dst.0[at + len..].iter().all(|&b| b == 0xEE),
                    "bytes after the copy touched (at {at}, len {len})"
                );
            }
        }
    }
    #[test]
    fn writes_a_record_exactly_at_every_aligned_line_offset_and_length() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let header = 0x0123_4567_89ab_cdef_u64;
        for at in (0..64).step_by(8) {
            for len in 0..=300 {
                let mut dst = Lines([0xEE; 512]);
                // SAFETY: `at + 8 + len <= 364 <= 512` bytes of `dst`, 8-byte aligned;
                // `len <= 300` of `src`; distinct allocations.
                unsafe {
                    copy_record_into_ring(header, src.as_ptr(), dst.0.as_mut_ptr().add(at), len)
                };
                assert!(
                    dst.0[..at].iter().all(|&b| b == 0xEE),
                    "bytes before the record touched (at {at}, len {len})"
                );
                assert_eq!(
                    &dst.0[at..at + 8],
                    &header.to_ne_bytes(),
                    "at {at}, len {len}"
                );
                assert_eq!(
                    &dst.0[at + 8..at + 8 + len],
                    &src[..len],
                    "at {at}, len {len}"
                );
                assert!(
                    dst.0[at + 8 + len..].iter().all(|&b| b == 0xEE),
                    "bytes after the record touched (at {at}, len {len})"
                );
            }
        }
    }
}
