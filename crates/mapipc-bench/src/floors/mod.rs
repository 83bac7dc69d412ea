//! The floors: raw shared-memory mechanisms that bound what any shared-memory channel can do,
//! measured side by side with it.
//!
//! - [`spin`] (`shm-spin-floor`): the lowest round trip, a baton in one shared word, busy spin;
//! - [`futex`] (`futex-floor`): the same baton with `FUTEX_WAIT`/`FUTEX_WAKE`, the lowest
//!   round trip for processes that sleep instead of spinning;
//! - [`ring`] (`ring-floor`): a fixed-slot SPSC ring publishing its indices every 32
//!   messages, the throughput floor.
//!
//! Each of the three files is self-contained (only `std`, `libc` and mapipc's public API) so
//! that mapipc's criterion benches can include it with `#[path]`. This module adds the
//! [`Transport`] adapters the harness uses.

pub mod futex;
pub mod ring;
pub mod slot;
pub mod spin;

use std::io;

use crate::frame::{self, Frame};
use crate::transport::{Class, Endpoint, Pair, Transport};

fn frame_of(read_u64: impl Fn(usize) -> Option<u64>, size: usize) -> Frame {
    Frame {
        head: read_u64(0).unwrap_or(0),
        tail: read_u64(frame::tail_offset(size)).unwrap_or(0),
    }
}

/// A baton floor (`spin` or `futex`: one slot, two sides) as a [`Transport`]: the client is
/// side A, the server side B. The two differ only in how a side waits.
macro_rules! baton_transport {
    ($(#[$doc:meta])* $transport:ident, $end:ident, $module:ident, $floor:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $transport;

        struct $end {
            side: $module::Side,
            msg: Vec<u8>,
        }

        impl Endpoint for $end {
            #[inline]
            fn send(&mut self, seq: u64) -> io::Result<()> {
                frame::stamp(&mut self.msg, seq);
                self.side.send(&self.msg)
            }

            #[inline]
            fn recv(&mut self) -> io::Result<Frame> {
                let size = self.msg.len();
                self.side.recv(|m| frame_of(|at| m.read_u64_le(at), size))
            }
        }

        impl Transport for $transport {
            fn name(&self) -> &str {
                $name
            }

            fn class(&self) -> Class {
                Class::Floor
            }

            fn connect(&self, size: usize) -> io::Result<Pair> {
                let floor = $module::$floor::new(size)?;
                let client = $end {
                    side: floor.side_a(),
                    msg: frame::template(size),
                };
                let server = $end {
                    side: floor.side_b(),
                    msg: frame::template(size),
                };
                Ok(Pair::new(client, server).with_abort(move || floor.abort()))
            }
        }
    };
}

baton_transport!(
    /// `shm-spin-floor` as a [`Transport`]: the client is side A, the server side B.
    SpinFloorTransport,
    SpinEnd,
    spin,
    SpinFloor,
    "shm-spin-floor"
);

baton_transport!(
    /// `futex-floor` as a [`Transport`]: the client is side A, the server side B.
    FutexFloorTransport,
    FutexEnd,
    futex,
    FutexFloor,
    "futex-floor"
);

/// `ring-floor` as a [`Transport`]: one ring per direction.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingFloorTransport;

impl RingFloorTransport {
    /// Slots per ring for `size`-byte messages: about 1 MiB of slots, between 64 and 4096.
    ///
    /// # Example
    /// ```
    /// use mapipc_bench::floors::RingFloorTransport;
    /// assert_eq!(RingFloorTransport::slots_for(64), 4096);
    /// assert_eq!(RingFloorTransport::slots_for(4096), 256);
    /// assert_eq!(RingFloorTransport::slots_for(65536), 64);
    /// ```
    pub fn slots_for(size: usize) -> usize {
        let slot = size.next_multiple_of(8).max(8);
        let fit = (1usize << 20) / slot;
        let pow2 = if fit == 0 {
            1
        } else {
            1 << (usize::BITS - 1 - fit.leading_zeros())
        };
        pow2.clamp(64, 4096)
    }
}

struct RingEnd {
    tx: ring::Producer,
    rx: ring::Consumer,
    msg: Vec<u8>,
}

impl Endpoint for RingEnd {
    #[inline]
    fn send(&mut self, seq: u64) -> io::Result<()> {
        frame::stamp(&mut self.msg, seq);
        self.tx.push(&self.msg)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tx.flush()
    }

    #[inline]
    fn recv(&mut self) -> io::Result<Frame> {
        let size = self.msg.len();
        self.rx.pop(|m| frame_of(|at| m.read_u64_le(at), size))
    }
}

impl Transport for RingFloorTransport {
    fn name(&self) -> &str {
        "ring-floor"
    }

    fn class(&self) -> Class {
        Class::Floor
    }

    fn connect(&self, size: usize) -> io::Result<Pair> {
        let slots = Self::slots_for(size);
        let to_server = ring::RingFloor::new(slots, size)?;
        let to_client = ring::RingFloor::new(slots, size)?;
        let client = RingEnd {
            tx: to_server.producer(),
            rx: to_client.consumer(),
            msg: frame::template(size),
        };
        let server = RingEnd {
            tx: to_client.producer(),
            rx: to_server.consumer(),
            msg: frame::template(size),
        };
        Ok(Pair::new(client, server).with_abort(move || {
            to_server.abort();
            to_client.abort();
        }))
    }
}
