//! The channel's shared header: a `#[repr(C)]` block at the start of the region's user
//! data, followed by the ring.
//!
//! ```text
//! offset  line  field                         written by
//!      0     0  magic "MAPIPCCH", version,    creator (once, magic last)
//!               kind, header size, flags,
//!               capacity, ring offset, max payload
//!     64     1  tail, sent, (broadcast) next   producer, per message
//!               sequence number
//!    128     2  head, received, (MPSC)         consumer, per message;
//!               aborted count and the note     (note: per aborted record)
//!               of the one being counted
//!    192     3  data notifier word,            consumer parks, producer wakes;
//!               consumer-never-parks flag      consumer (on mode change)
//!    256     4  space notifier word,           producer parks, consumer wakes;
//!               producer-never-parks flag      producer (on mode change)
//!    320     5  oldest-record lock, position,  broadcast producer;
//!               sequence; subscriber joins      each subscriber as it joins
//!    384     6  producer id and epoch,         each end when it attaches or
//!               consumer id and epoch          leaves (read while waiting)
//!   1024        endpoint table: 16 bytes each  MPSC producers / broadcast
//!               {ticket | peer id,              subscribers, each its own entry
//!                count or position | tag}
//!   4096        the ring
//! ```
//!
//! An endpoint-table entry's first word holds the peer id in its low half and the entry's
//! *ticket* in its high half: the number of times the entry was claimed, bumped by every
//! claim and kept when the entry is freed. A broadcast subscriber stores its position (a
//! multiple of 16) with the low 4 bits of its ticket in the 4 low bits (the *tag*): a
//! subscriber dropped from its entry as dead while alive, storing late, cannot pass its
//! position off as the next holder's (`channel/bcast.rs`, "Eviction").
//!
//! Fields each side writes in the hot path live on their own 64-byte cache line so the
//! producer and consumer never write the same line (no false sharing), and what a waiting
//! end polls (the registrations, the notifier words) sits on lines written only rarely. Everything is
//! little-endian native (the channel is for processes on one machine).

use bytemuck::{Pod, Zeroable};

use super::error::{ParseKindError, ParsePolicyError};

/// `"MAPIPCCH"`.
pub(crate) const MAGIC: [u8; 8] = *b"MAPIPCCH";
/// Format version of this layout (3: SPSC records placed by cache line, `channel/ring.rs`;
/// 4: endpoint-table tickets, and broadcast positions tagged with them).
pub(crate) const VERSION: u32 = 4;
/// What a file of another version is told (names [`VERSION`]; a test checks it does).
const OTHER_VERSION: &str =
    "unsupported channel format version (this mapipc reads version 4: re-create the channel)";
/// Where the ring starts, from the start of the header.
pub(crate) const RING_OFFSET: u64 = 4096;

/// Byte offsets of the shared fields, from the start of the header.
pub(crate) mod off {
    /// SPSC and broadcast: the producer position. MPSC: the claim hint.
    pub(crate) const TAIL: u64 = 64;
    pub(crate) const SENT: u64 = 72;

    /// Broadcast: sequence number of the next message.
    pub(crate) const NEXT_SEQ: u64 = 88;
    pub(crate) const HEAD: u64 = 128;
    pub(crate) const RECEIVED: u64 = 136;

    /// MPSC: records skipped because aborted.
    pub(crate) const ABORTED: u64 = 152;
    /// MPSC: 0, or the position of the aborted record the consumer is counting, with bit 0
    /// set; the count it is making is at `ABORT_TARGET` (`channel/mpsc.rs`, "Counting").
    pub(crate) const ABORT_NOTE: u64 = 160;
    pub(crate) const ABORT_TARGET: u64 = 168;
    pub(crate) const DATA_WORD: u64 = 192;
    /// Non-zero while the consumer busy-polls (never parks): the producer may skip waking.
    pub(crate) const CONSUMER_NEVER_PARKS: u64 = 196;
    pub(crate) const SPACE_WORD: u64 = 256;
    /// Non-zero while the producer busy-polls (never parks).
    pub(crate) const PRODUCER_NEVER_PARKS: u64 = 260;
    /// Broadcast: the latch holding the oldest intact record (`channel/bcast.rs`): its
    /// version, copy 0 (`POS`, `SEQ`) and copy 1 (`POS1`, `SEQ1`).
    pub(crate) const OLDEST_VER: u64 = 320;
    pub(crate) const OLDEST_POS: u64 = 328;
    pub(crate) const OLDEST_SEQ: u64 = 336;
    pub(crate) const OLDEST_POS1: u64 = 344;
    pub(crate) const OLDEST_SEQ1: u64 = 352;
    /// Broadcast: subscribers that joined over the channel's life. Each new subscriber
    /// bumps it after storing its position, so that a lossless producer trusting a cached
    /// minimum of the positions looks at the table again (`channel/bcast.rs`).
    pub(crate) const SUB_JOINS: u64 = 360;
    /// Registrations, on a line written only when an end attaches or leaves: each end reads
    /// the other's while it waits, and must not pull the other's hot line to do so.
    pub(crate) const PRODUCER: u64 = 384;
    pub(crate) const PRODUCER_EPOCH: u64 = 388;
    pub(crate) const CONSUMER: u64 = 392;
    pub(crate) const CONSUMER_EPOCH: u64 = 396;
    /// Start of the endpoint table (MPSC producers, broadcast subscribers): 16 bytes per
    /// entry, `{ticket << 32 | peer id: u64, position | tag or message count: u64}` (see
    /// the module docs).
    pub(crate) const TABLE: u64 = 1024;
    /// Entry size in the endpoint table.
    pub(crate) const ENTRY: u64 = 16;

    /// Offset of endpoint-table entry `i` (its peer id; the second word follows).
    #[inline]
    pub(crate) const fn subscriber(i: u32) -> u64 {
        TABLE + ENTRY * i as u64
    }

    /// Same table, read as MPSC producers.
    #[inline]
    pub(crate) const fn producer(i: u32) -> u64 {
        subscriber(i)
    }
}

/// Most endpoints the table holds (MPSC producers or broadcast subscribers).
pub(crate) const MAX_ENDPOINTS: u32 = ((RING_OFFSET - off::TABLE) / off::ENTRY) as u32;

/// The word a claim of an endpoint-table entry that holds `w` stores: peer `me`, and the
/// entry's ticket bumped (wrapping), so that no later holder's word equals an earlier one's,
/// even one with the same peer id (ids come back after 2^22 reuses of a region slot).
#[inline]
pub(crate) fn claimed_entry(w: u64, me: u32) -> u64 {
    (u64::from(((w >> 32) as u32).wrapping_add(1)) << 32) | u64::from(me)
}

/// The word that frees an endpoint-table entry holding `w`: no peer, the ticket kept.
#[inline]
pub(crate) fn freed_entry(w: u64) -> u64 {
    w & !0xffff_ffff
}

/// Channel kinds (the `kind` field).
///
/// Chosen at creation with [`ChannelOptions::new`](super::ChannelOptions::new); parsed from
/// and shown as `spsc`, `mpsc`, `broadcast`.
///
/// # Example
/// ```
/// use mapipc::channel::{Channel, ChannelOptions, Kind};
/// let kind: Kind = "mpsc".parse()?;
/// assert_eq!(kind, Kind::Mpsc);
/// assert_eq!(kind.to_string(), "mpsc");
/// assert!("fifo".parse::<Kind>().is_err());
///
/// let chan = ChannelOptions::new(kind).anonymous()?;
/// assert_eq!(chan.kind(), Kind::Mpsc);
/// assert_eq!(Channel::anonymous(4096)?.kind(), Kind::Spsc); // the default kind
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Kind {
    /// Single producer, single consumer.
    Spsc = 1,
    /// Many producers, one consumer.
    Mpsc = 2,
    /// One producer, many independent subscribers.
    Broadcast = 3,
}

impl Kind {
    pub(crate) fn from_u32(v: u32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Spsc),
            2 => Some(Kind::Mpsc),
            3 => Some(Kind::Broadcast),
            _ => None,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Spsc => "spsc",
            Kind::Mpsc => "mpsc",
            Kind::Broadcast => "broadcast",
        })
    }
}

impl std::str::FromStr for Kind {
    type Err = ParseKindError;
    fn from_str(s: &str) -> Result<Kind, ParseKindError> {
        match s {
            "spsc" => Ok(Kind::Spsc),
            "mpsc" => Ok(Kind::Mpsc),
            "broadcast" => Ok(Kind::Broadcast),
            other => Err(ParseKindError {
                input: other.to_string(),
                accepted: &["spsc", "mpsc", "broadcast"],
            }),
        }
    }
}

/// What a broadcast producer does when the ring is full.
///
/// # Example
/// ```
/// use mapipc::channel::{ChannelOptions, Kind, Policy};
/// assert_eq!(Policy::default(), Policy::Lossless);
/// let policy: Policy = "lossy".parse()?;
/// let chan = ChannelOptions::new(Kind::Broadcast).policy(policy).anonymous()?;
/// assert_eq!(chan.policy(), Policy::Lossy);
/// assert_eq!(chan.stat().policy, Some(Policy::Lossy));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum Policy {
    /// Wait for the slowest live subscriber (dead ones are dropped; a live one taken for
    /// dead is told: [`RecvError::Evicted`](super::RecvError::Evicted)).
    #[default]
    Lossless = 0,
    /// Never wait: overwrite the oldest messages; lapped subscribers are told how many
    /// they missed.
    Lossy = 1,
}

impl Policy {
    pub(crate) fn from_u32(v: u32) -> Option<Policy> {
        match v {
            0 => Some(Policy::Lossless),
            1 => Some(Policy::Lossy),
            _ => None,
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Lossless => "lossless",
            Policy::Lossy => "lossy",
        })
    }
}

impl std::str::FromStr for Policy {
    type Err = ParsePolicyError;
    fn from_str(s: &str) -> Result<Policy, ParsePolicyError> {
        match s {
            "lossless" => Ok(Policy::Lossless),
            "lossy" => Ok(Policy::Lossy),
            other => Err(ParsePolicyError {
                input: other.to_string(),
                accepted: &["lossless", "lossy"],
            }),
        }
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
    /// Broadcast policy (0 for the other kinds).
    pub(crate) policy: u32,
    /// MPSC: most producers; broadcast: most subscribers; SPSC: 0.
    pub(crate) max_endpoints: u32,
    pub(crate) reserved: u64,
}

const _: () = assert!(std::mem::size_of::<Fixed>() == 64);

impl Fixed {
    pub(crate) fn new(
        kind: Kind,
        capacity: u64,
        max_payload: u64,
        policy: Policy,
        max_endpoints: u32,
    ) -> Fixed {
        Fixed {
            magic: MAGIC,
            version: VERSION,
            kind: kind as u32,
            header_size: RING_OFFSET as u32,
            flags: 0,
            capacity,
            ring_offset: RING_OFFSET,
            max_payload,
            policy: policy as u32,
            max_endpoints,
            reserved: 0,
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
            return Err(OTHER_VERSION);
        }
        let kind = Kind::from_u32(self.kind).ok_or("unknown channel kind")?;
        if self.header_size as u64 != RING_OFFSET || self.ring_offset != RING_OFFSET {
            return Err("bad header size or ring offset");
        }
        let geo = super::ring::Geometry::new(self.capacity).ok_or("bad ring capacity")?;
        if self.max_payload != max_payload(kind, geo) {
            return Err("bad maximum payload");
        }
        Policy::from_u32(self.policy).ok_or("unknown broadcast policy")?;
        let endpoints_ok = match kind {
            Kind::Spsc => self.max_endpoints == 0,
            Kind::Mpsc => {
                (1..=MAX_ENDPOINTS.min(super::mpsc::MAX_OWNERS)).contains(&self.max_endpoints)
            }
            Kind::Broadcast => (1..=MAX_ENDPOINTS).contains(&self.max_endpoints),
        };
        if !endpoints_ok {
            return Err("bad number of producers or subscribers");
        }
        match RING_OFFSET.checked_add(self.capacity) {
            Some(end) if end <= area_len => {}
            _ => return Err("ring extends past the end of the region"),
        }
        Ok((kind, geo))
    }
}

/// Largest message of a channel kind on a ring.
pub(crate) fn max_payload(kind: Kind, geo: super::ring::Geometry) -> u64 {
    match kind {
        Kind::Spsc => geo.max_payload(),
        Kind::Mpsc => super::mpsc::max_payload(geo),
        Kind::Broadcast => super::bcast::max_payload(geo),
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, Policy};

    /// The names a parse error lists are the ones that parse, and what `Display` shows.
    #[test]
    fn parse_errors_list_the_accepted_names() {
        let kinds = "x".parse::<Kind>().unwrap_err().accepted;
        assert_eq!(kinds.len(), 3);
        for name in kinds {
            assert_eq!(name.parse::<Kind>().unwrap().to_string(), *name);
        }
        let policies = "x".parse::<Policy>().unwrap_err().accepted;
        assert_eq!(policies.len(), 2);
        for name in policies {
            assert_eq!(name.parse::<Policy>().unwrap().to_string(), *name);
        }
    }

    #[test]
    fn version_message_names_the_version() {
        assert!(super::OTHER_VERSION.contains(&format!("version {}:", super::VERSION)));
    }
}
