//! The channel's shared header: a `#[repr(C)]` block at the start of the region's user
//! data, followed by the ring.
//!
//! ```text
//! offset  line  field                         written by
//!      0     0  magic "MAPIPCCH", version,    creator (once, magic last)
//!               kind, header size, flags,
//!               capacity, ring offset, max payload
//!     64     1  tail, sent, producer id,       producer
//!               producer epoch
//!    128     2  head, received, consumer id,   consumer
//!               consumer epoch
//!    192     3  data notifier word,            consumer parks, producer wakes;
//!               consumer-never-parks flag      consumer (on mode change)
//!    256     4  space notifier word,           producer parks, consumer wakes;
//!               producer-never-parks flag      producer (on mode change)
//!    320     5  aborted (mpsc), reserved
//!    384        ... up to `ring offset` (4096): reserved
//!   4096        the ring: `capacity` bytes of records
//! ```
//!
//! Fields each side writes in the hot path live on their own 64-byte cache line so the
//! producer and consumer never write the same line (no false sharing). Everything is
//! little-endian native (the channel is for processes on one machine).

use bytemuck::{Pod, Zeroable};

/// `"MAPIPCCH"`.
pub(crate) const MAGIC: [u8; 8] = *b"MAPIPCCH";
/// Format version of this layout.
pub(crate) const VERSION: u32 = 1;
/// Where the ring starts, from the start of the header.
pub(crate) const RING_OFFSET: u64 = 4096;

/// Byte offsets of the shared fields, from the start of the header.
pub(crate) mod off {
    pub(crate) const TAIL: u64 = 64;
    pub(crate) const SENT: u64 = 72;
    pub(crate) const PRODUCER: u64 = 80;
    pub(crate) const PRODUCER_EPOCH: u64 = 84;
    pub(crate) const HEAD: u64 = 128;
    pub(crate) const RECEIVED: u64 = 136;
    pub(crate) const CONSUMER: u64 = 144;
    pub(crate) const CONSUMER_EPOCH: u64 = 148;
    pub(crate) const DATA_WORD: u64 = 192;
    /// Non-zero while the consumer busy-polls (never parks): the producer may skip waking.
    pub(crate) const CONSUMER_NEVER_PARKS: u64 = 196;
    pub(crate) const SPACE_WORD: u64 = 256;
    /// Non-zero while the producer busy-polls (never parks).
    pub(crate) const PRODUCER_NEVER_PARKS: u64 = 260;
}

/// Channel kinds (the `kind` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// Single producer, single consumer.
    Spsc = 1,
}

impl Kind {
    pub(crate) fn from_u32(v: u32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Spsc),
            _ => None,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Spsc => "spsc",
        })
    }
}

/// The immutable first line of the header, as plain data (read by copy, then validated).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct Fixed {
    pub(crate) magic: [u8; 8],
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) header_size: u32,
    pub(crate) flags: u32,
    pub(crate) capacity: u64,
    pub(crate) ring_offset: u64,
    pub(crate) max_payload: u64,
    pub(crate) reserved: [u64; 2],
}

const _: () = assert!(std::mem::size_of::<Fixed>() == 64);

impl Fixed {
    pub(crate) fn new(kind: Kind, capacity: u64, max_payload: u64) -> Fixed {
        Fixed {
            magic: MAGIC,
            version: VERSION,
            kind: kind as u32,
            header_size: RING_OFFSET as u32,
            flags: 0,
            capacity,
            ring_offset: RING_OFFSET,
            max_payload,
            reserved: [0; 2],
        }
    }

    /// Checks every field against what this version writes and against the space
    /// available (`area_len`: bytes from the header to the end of the region's data).
    pub(crate) fn validate(
        &self,
        area_len: u64,
    ) -> Result<(Kind, super::ring::Geometry), &'static str> {
        if self.magic != MAGIC {
            return Err("not a mapipc channel (bad magic)");
        }
        if self.version != VERSION {
            return Err("unsupported channel format version");
        }
        let kind = Kind::from_u32(self.kind).ok_or("unknown channel kind")?;
        if self.header_size as u64 != RING_OFFSET || self.ring_offset != RING_OFFSET {
            return Err("bad header size or ring offset");
        }
        let geo = super::ring::Geometry::new(self.capacity).ok_or("bad ring capacity")?;
        if self.max_payload != geo.max_payload() {
            return Err("bad maximum payload");
        }
        match RING_OFFSET.checked_add(self.capacity) {
            Some(end) if end <= area_len => {}
            _ => return Err("ring extends past the end of the region"),
        }
        Ok((kind, geo))
    }
}
