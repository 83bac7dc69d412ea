//! `shm-spin-floor`: the lowest round trip two processes can have, a baton passed through one
//! word of an anonymous shared mapping with busy spinning, the message in the same cache line.
//!
//! # Self-contained
//!
//! This file is also compiled outside the harness: `crates/mapipc/benches/*.rs` include it with
//! `#[path = "../../mapipc-bench/src/floors/spin.rs"] mod spin_floor;` (add
//! `#[allow(dead_code)]` on that line if the bench uses only part of the API). It may
//! therefore use only `std`, `libc` and the public API of `mapipc`: no `crate::` path, no other
//! harness module, no other dependency. Keep it that way.
//!
//! # Protocol
//!
//! The mapping holds a `turn: AtomicU64` at offset 0 and the message slot right after it
//! (offset 8), so an 8-byte message travels in the same cache line as the word that announces
//! it; an `aborted` word sits alone on a later line. Side A holds the baton while `turn` is even,
//! side B while it is odd; the side holding the baton owns the slot.
//!
//! - [`Side::send`] waits for the baton, copies the message into the slot and passes the baton
//!   (`turn += 1`, release);
//! - [`Side::recv`] waits for the baton (acquire), which the peer passed along with its
//!   message, and reads it in place; the side keeps the baton, so a reply is written straight
//!   into the slot;
//! - a `recv` while holding the baton first passes it back empty (the slot is free again): this
//!   is how a one-way stream flows, each message costing one hand-over each way.
//!
//! A ping-pong costs exactly two cache-line transfers for messages up to 56 bytes: the floor
//! under any shared-memory round trip. Streaming through the single slot runs at one message
//! per round trip; the `ring-floor` is the throughput floor.
//!
//! Waiting spins (`std::hint::spin_loop`) and checks the `aborted` word on every turn, so a
//! watchdog in another thread can unblock a side whose peer died ([`SpinFloor::abort`]).
//!
//! # Raw access
//!
//! A floor must cost no more than the mechanism itself, so after [`SpinFloor::new`] has
//! checked the layout against the mapping once, the slot and the words are reached through
//! `Mmap::as_mut_ptr` without further checks (but one comparison per received message, in
//! `Slot::new`): copies through raw pointers (never a reference
//! to shared bytes, as in `mapipc::map`) and atomics.
//!
//! # Example
//! ```
//! # use mapipc_bench::floors::spin::SpinFloor;
//! let floor = SpinFloor::new(16)?;
//! let (mut a, mut b) = (floor.side_a(), floor.side_b());
//! a.send(b"ping ping ping !")?;
//! let first = b.recv(|m| m.read_u64_le(0))?;
//! assert_eq!(first, Some(u64::from_le_bytes(*b"ping pin")));
//! b.send(b"pong pong pong !")?;
//! let mut reply = [0u8; 16];
//! a.recv(|m| m.read_into(&mut reply))??;
//! assert_eq!(&reply, b"pong pong pong !");
//! # Ok::<(), std::io::Error>(())
//! ```

#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mapipc::map::{MapOptions, Mmap};

pub use super::slot::Slot;

const TURN: usize = 0;
const SLOT: usize = 8;
const LINE: usize = 128;

fn map_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("shm-spin-floor: {e}"))
}

/// The shared state of one spin ping-pong, created before `fork` and inherited by the child.
#[derive(Clone, Debug)]
pub struct SpinFloor {
    map: Arc<Mmap>,
    len: usize,
    /// Offset of the `aborted` word; `SLOT + len <= aborted` and `aborted + 8 <= map.len()`.
    aborted: usize,
}

impl SpinFloor {
    /// Maps (and prefaults) the shared memory for messages of exactly `len` bytes.
    ///
    /// # Errors
    /// `len == 0`, or the mapping fails.
    pub fn new(len: usize) -> io::Result<SpinFloor> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "shm-spin-floor: zero-length messages",
            ));
        }
        let aborted = (SLOT + len)
            .checked_next_multiple_of(LINE)
            .and_then(|a| a.checked_add(LINE).map(|_| a))
            .ok_or_else(|| map_err("message too large"))?;
        let map = MapOptions::new()
            .len(aborted + LINE)
            .populate()
            .map_anonymous()
            .map_err(map_err)?;
        // Validate the words once; `word` relies on it.
        for offset in [TURN, aborted] {
            map.atomic_u64(offset as u64).map_err(map_err)?;
        }
        Ok(SpinFloor {
            map: Arc::new(map),
            len,
            aborted,
        })
    }

    /// Message length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (messages are at least one byte).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Side A, which holds the baton first (it speaks first).
    pub fn side_a(&self) -> Side {
        self.side(0)
    }

    /// Side B, which starts by receiving.
    pub fn side_b(&self) -> Side {
        self.side(1)
    }

    fn side(&self, parity: u64) -> Side {
        Side {
            floor: self.clone(),
            turn: 0,
            holding: parity == 0,
        }
    }

    /// Makes every wait on this floor, in any process, fail with
    /// `io::ErrorKind::ConnectionAborted` (for a watchdog whose peer process died).
    pub fn abort(&self) {
        self.word(self.aborted).store(1, Ordering::Release);
    }

    /// The `turn` word (`TURN`) or the `aborted` word (`self.aborted`).
    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset == TURN || offset == self.aborted);
        let p = self.map.as_mut_ptr().wrapping_add(offset);
        // SAFETY: `new` checked with `Mmap::atomic_u64` that both offsets are inside the
        // mapping, 8-byte aligned and writable; the mapping lives as long as `self.map`, which
        // this borrow keeps; every bit pattern is a valid `AtomicU64`, and other processes
        // touch the word only atomically (this is what `Mmap::atomic_u64` hands out too).
        unsafe { &*p.cast::<AtomicU64>() }
    }
}

/// One side of a [`SpinFloor`], used by one process.
#[derive(Debug)]
pub struct Side {
    floor: SpinFloor,
    /// The value of `turn` as this side last saw or wrote it.
    turn: u64,
    /// This side owns the slot (side A starts with it).
    holding: bool,
}

impl Side {
    fn wait_for_baton(&mut self) -> io::Result<()> {
        let turn = self.floor.word(TURN);
        let aborted = self.floor.word(self.floor.aborted);
        loop {
            let v = turn.load(Ordering::Acquire);
            if v != self.turn {
                // Only the peer writes while we wait; it advances by exactly one.
                self.turn = v;
                self.holding = true;
                return Ok(());
            }
            if aborted.load(Ordering::Acquire) != 0 && turn.load(Ordering::Acquire) == self.turn {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "shm-spin-floor: aborted (the peer is gone)",
                ));
            }
            std::hint::spin_loop();
        }
    }

    fn pass(&mut self) {
        self.turn = self.turn.wrapping_add(1);
        self.floor.word(TURN).store(self.turn, Ordering::Release);
        self.holding = false;
    }

    /// Waits for the baton, copies `msg` into the slot and passes the baton to the peer.
    ///
    /// # Errors
    /// `msg` is not exactly [`SpinFloor::len`] bytes; the floor was aborted.
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if msg.len() != self.floor.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "shm-spin-floor: message length differs from the floor's",
            ));
        }
        if !self.holding {
            self.wait_for_baton()?;
        }
        let p = self.floor.map.as_mut_ptr().wrapping_add(SLOT);
        // SAFETY: `msg.len() == len` and `SLOT + len <= aborted < map.len()`: the destination is
        // inside the live mapping, and `msg` is private memory that cannot overlap it. We hold
        // the baton, so the peer does not read the slot until we pass it (release).
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p, msg.len()) };
        self.pass();
        Ok(())
    }

    /// Waits for the peer's message and calls `read` on it in place. Keeps the baton, so a
    /// [`send`](Self::send) may follow at once; a second `recv` first passes it back.
    ///
    /// # Errors
    /// The floor was aborted.
    pub fn recv<R>(&mut self, read: impl FnOnce(&Slot<'_>) -> R) -> io::Result<R> {
        if self.holding {
            self.pass();
        }
        self.wait_for_baton()?;
        Ok(read(&Slot::new(
            &self.floor.map,
            SLOT,
            self.floor.len,
            "shm-spin-floor",
        )))
    }
}
