//! `futex-floor`: the lowest round trip two processes can have when the waiting side sleeps in
//! the kernel, a baton passed through one shared word with `FUTEX_WAIT` / `FUTEX_WAKE`.
//!
//! # Self-contained
//!
//! This file is also compiled outside the harness: `crates/mapipc/benches/*.rs` include it with
//! `#[path = "../../mapipc-bench/src/floors/futex.rs"] mod futex_floor;` (add
//! `#[allow(dead_code)]` on that line if the bench uses only part of the API). It may
//! therefore use only `std`, `libc` and the public API of `mapipc`: no `crate::` path, no other
//! harness module, no other dependency. Keep it that way.
//!
//! # Protocol
//!
//! The same baton as `shm-spin-floor` (`turn` even: side A owns the slot, odd: side B; the
//! message slot follows the word in its cache line), but nobody spins:
//!
//! - passing the baton stores `turn + 1` (release) and always calls `FUTEX_WAKE` (one
//!   syscall, as a raw futex ping-pong does, with no "is anybody parked" flag);
//! - waiting loads `turn` once and, while it still holds the value this side wrote, calls
//!   `FUTEX_WAIT` on it (`mapipc::os::futex::wait`, which returns at once if the word moved).
//!
//! So each hand-over costs a wake syscall on one side and a sleep and wake-up on the other:
//! the floor for a round trip between two processes that block instead of spinning.
//! [`Side::recv`] after a `recv` passes the baton back empty, which is how a one-way stream
//! flows (one hand-over each way per message).
//!
//! Waits time out every 100 ms to look at the `aborted` word, so a watchdog in another thread
//! can unblock a side whose peer died ([`FutexFloor::abort`], which also wakes the word).
//!
//! # Example
//! ```
//! # use mapipc_bench::floors::futex::FutexFloor;
//! let floor = FutexFloor::new(8)?;
//! let (mut a, mut b) = (floor.side_a(), floor.side_b());
//! a.send(&7u64.to_le_bytes())?;
//! assert_eq!(b.recv(|m| m.read_u64_le(0))?, Some(7));
//! b.send(&8u64.to_le_bytes())?;
//! assert_eq!(a.recv(|m| m.read_u64_le(0))?, Some(8));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mapipc::map::{MapOptions, Mmap};

use mapipc::os::futex;

pub use super::slot::Slot;

const TURN: u64 = 0;
const SLOT: u64 = 8;
const LINE: usize = 128;
const ABORT_POLL: Duration = Duration::from_millis(100);

fn map_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("futex-floor: {e}"))
}

/// The shared state of one futex ping-pong, created before `fork` and inherited by the child.
#[derive(Clone, Debug)]
pub struct FutexFloor {
    map: Arc<Mmap>,
    len: usize,
    aborted: u64,
}

impl FutexFloor {
    /// Maps (and prefaults) the shared memory for messages of exactly `len` bytes.
    ///
    /// # Errors
    /// `len == 0`, or the mapping fails.
    pub fn new(len: usize) -> io::Result<FutexFloor> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "futex-floor: zero-length messages",
            ));
        }
        let aborted = (SLOT as usize + len).div_ceil(LINE) * LINE;
        let map = MapOptions::new()
            .len(aborted + LINE)
            .populate()
            .map_anonymous()
            .map_err(map_err)?;
        Ok(FutexFloor {
            map: Arc::new(map),
            len,
            aborted: aborted as u64,
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
        self.side(true)
    }

    /// Side B, which starts by receiving.
    pub fn side_b(&self) -> Side {
        self.side(false)
    }

    fn side(&self, holding: bool) -> Side {
        Side {
            floor: self.clone(),
            turn: 0,
            holding,
        }
    }

    /// Makes every wait on this floor, in any process, fail with
    /// `io::ErrorKind::ConnectionAborted` (for a watchdog whose peer process died).
    pub fn abort(&self) {
        if let Ok(w) = self.map.atomic_u32(self.aborted) {
            w.store(1, Ordering::Release);
        }
        if let Ok(turn) = self.turn() {
            let _ = futex::wake(turn, u32::MAX);
        }
    }

    fn turn(&self) -> io::Result<&AtomicU32> {
        self.map.atomic_u32(TURN).map_err(map_err)
    }

    fn aborted(&self) -> io::Result<&AtomicU32> {
        self.map.atomic_u32(self.aborted).map_err(map_err)
    }
}

/// One side of a [`FutexFloor`], used by one process.
#[derive(Debug)]
pub struct Side {
    floor: FutexFloor,
    /// The value of `turn` as this side last saw or wrote it.
    turn: u32,
    /// This side owns the slot (side A starts with it).
    holding: bool,
}

impl Side {
    fn wait_for_baton(&mut self) -> io::Result<()> {
        let turn = self.floor.turn()?;
        let aborted = self.floor.aborted()?;
        loop {
            let v = turn.load(Ordering::Acquire);
            if v != self.turn {
                self.turn = v;
                self.holding = true;
                return Ok(());
            }
            if aborted.load(Ordering::Acquire) != 0 && turn.load(Ordering::Acquire) == self.turn {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "futex-floor: aborted (the peer is gone)",
                ));
            }
            futex::wait(turn, v, Some(ABORT_POLL))?;
        }
    }

    fn pass(&mut self) -> io::Result<()> {
        self.turn = self.turn.wrapping_add(1);
        let turn = self.floor.turn()?;
        turn.store(self.turn, Ordering::Release);
        futex::wake(turn, 1)?;
        self.holding = false;
        Ok(())
    }

    /// Waits for the baton, copies `msg` into the slot and passes the baton to the peer.
    ///
    /// # Errors
    /// `msg` is not exactly [`FutexFloor::len`] bytes; the floor was aborted; a futex call
    /// failed.
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if msg.len() != self.floor.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "futex-floor: message length differs from the floor's",
            ));
        }
        if !self.holding {
            self.wait_for_baton()?;
        }
        self.floor.map.write_at(SLOT, msg).map_err(map_err)?;
        self.pass()
    }

    /// Waits for the peer's message and calls `read` on it in place. Keeps the baton, so a
    /// [`send`](Self::send) may follow at once; a second `recv` first passes it back.
    ///
    /// # Errors
    /// The floor was aborted; a futex call failed.
    pub fn recv<R>(&mut self, read: impl FnOnce(&Slot<'_>) -> R) -> io::Result<R> {
        if self.holding {
            self.pass()?;
        }
        self.wait_for_baton()?;
        Ok(read(&Slot::new(
            &self.floor.map,
            SLOT as usize,
            self.floor.len,
            "futex-floor",
        )))
    }
}
