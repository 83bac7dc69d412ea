//! Word-level access to a channel's shared memory, for the multi-writer kinds (MPSC and
//! broadcast), whose protocols need atomic read-modify-writes on ring words and on header
//! fields.
//!
//! Offsets are byte offsets: `field` into the channel header (8-byte aligned, below the
//! ring), `off` into the ring (8-byte aligned, `off + 8 <= capacity`). Callers validate
//! offsets before calling; implementations must stay sound for any bytes a peer wrote.

use std::sync::atomic::Ordering;

/// Atomic words of the header and the ring.
pub(crate) trait Words {
    /// Loads a header field.
    fn ctl_load(&self, field: u64, order: Ordering) -> u64;
    /// Stores a header field.
    fn ctl_store(&self, field: u64, value: u64, order: Ordering);
    /// Compare-and-swap of a header field (`AcqRel` on success, `Acquire` on failure).
    fn ctl_cas(&self, field: u64, current: u64, new: u64) -> Result<u64, u64>;
    /// Loads a ring word.
    fn word_load(&self, off: u64, order: Ordering) -> u64;
    /// Stores a ring word.
    fn word_store(&self, off: u64, value: u64, order: Ordering);
    /// Compare-and-swap of a ring word (`AcqRel` on success, `Acquire` on failure).
    fn word_cas(&self, off: u64, current: u64, new: u64) -> Result<u64, u64>;
}

#[cfg(any(test, fuzzing))]
pub(crate) mod heap {
    //! Header and ring in heap memory, every word atomic (loom's under `cfg(loom)`), so that
    //! model checks see payload words through the same memory model as the protocol words.
    //! Lossless models use [`HeapWords::tracked`], which also makes loom check that payload
    //! copies are ordered by the protocol (a stale value alone often goes unseen).

    #[cfg(loom)]
    use loom::sync::atomic::AtomicU64;
    #[cfg(not(loom))]
    use std::sync::atomic::AtomicU64;
    use std::sync::atomic::Ordering;

    use super::Words;

    /// Heap-backed channel memory: a 4096-byte header and a ring.
    pub(crate) struct HeapWords {
        ctl: Box<[AtomicU64]>,
        ring: Box<[AtomicU64]>,
        /// [`tracked`](Self::tracked): causality tracking of payload copies, one cell per
        /// ring word.
        #[cfg(loom)]
        payload: Option<Box<[loom::cell::UnsafeCell<()>]>>,
    }

    impl HeapWords {
        pub(crate) fn new(cap: u64) -> HeapWords {
            HeapWords {
                ctl: (0..512).map(|_| AtomicU64::new(0)).collect(),
                ring: (0..cap / 8).map(|_| AtomicU64::new(0)).collect(),
                #[cfg(loom)]
                payload: None,
            }
        }

        /// Like [`new`](Self::new), and payload copies ([`read_bytes`](Self::read_bytes),
        /// [`write_bytes`](Self::write_bytes)) also access a `loom::cell::UnsafeCell` per word.
        /// Loom does not produce every stale value a weak load may return, so a missing
        /// Release/Acquire often goes unseen as a stale payload value; it does track
        /// happens-before for cells, and fails the model when a payload read is not ordered
        /// after the write it reads, or a write after a read of the bytes it reuses. For
        /// lossless protocols only: a lossy reader's copy races with overwrites by design.
        #[cfg(loom)]
        pub(crate) fn tracked(cap: u64) -> HeapWords {
            HeapWords {
                payload: Some(
                    (0..cap / 8)
                        .map(|_| loom::cell::UnsafeCell::new(()))
                        .collect(),
                ),
                ..HeapWords::new(cap)
            }
        }

        #[cfg(loom)]
        fn track(&self, off: u64, len: usize, write: bool) {
            if let Some(cells) = &self.payload {
                super::super::atomic::track_payload(cells, off, len, write);
            }
        }
    }

    impl Words for HeapWords {
        fn ctl_load(&self, field: u64, order: Ordering) -> u64 {
            self.ctl[(field / 8) as usize].load(order)
        }
        fn ctl_store(&self, field: u64, value: u64, order: Ordering) {
            self.ctl[(field / 8) as usize].store(value, order)
        }
        fn ctl_cas(&self, field: u64, current: u64, new: u64) -> Result<u64, u64> {
            self.ctl[(field / 8) as usize].compare_exchange(
                current,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
        }
        fn word_load(&self, off: u64, order: Ordering) -> u64 {
            self.ring[(off / 8) as usize].load(order)
        }
        fn word_store(&self, off: u64, value: u64, order: Ordering) {
            self.ring[(off / 8) as usize].store(value, order)
        }
        fn word_cas(&self, off: u64, current: u64, new: u64) -> Result<u64, u64> {
            self.ring[(off / 8) as usize].compare_exchange(
                current,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
        }
    }

    impl HeapWords {
        /// Copies payload bytes out, word by word (Relaxed atomics).
        pub(crate) fn read_bytes(&self, off: u64, dst: &mut [u8]) {
            #[cfg(loom)]
            self.track(off, dst.len(), false);
            for (k, chunk) in dst.chunks_mut(8).enumerate() {
                let w = self.ring[(off / 8) as usize + k]
                    .load(Ordering::Relaxed)
                    .to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
        }
        /// Copies payload bytes in, word by word (Relaxed atomics).
        pub(crate) fn write_bytes(&self, off: u64, src: &[u8]) {
            #[cfg(loom)]
            self.track(off, src.len(), true);
            for (k, chunk) in src.chunks(8).enumerate() {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                self.ring[(off / 8) as usize + k].store(u64::from_le_bytes(w), Ordering::Relaxed);
            }
        }
    }
}
