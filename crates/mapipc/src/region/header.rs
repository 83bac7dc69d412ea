//! The on-disk / in-memory layout of a region: the [`Header`] at offset 0, the peer table
//! right after it, then the user data. See the [module docs](super) for the table.
//!
//! Everything here is plain data: the header is copied out of the mapping with
//! [`Mmap::read_pod`](crate::map::Mmap::read_pod) and checked by [`validate`], which is a
//! pure function of the copied bytes and the real file size. After that check the region
//! works only with the validated [`Layout`] it keeps privately: a peer rewriting the header
//! later can change the live words (generation, notify word, content kind, peer table) but
//! never where the region reads or writes.

use std::mem::{offset_of, size_of};

use bytemuck::{Pod, Zeroable};

use super::error::HeaderError;

/// `b"MAPIPCRG"` read as a little-endian `u64`: the bytes appear in this order in the file.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*MAGIC_BYTES);
/// The magic as bytes.
pub(crate) const MAGIC_BYTES: &[u8; 8] = b"MAPIPCRG";

/// The region format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the fixed header in bytes.
pub const HEADER_SIZE: usize = 128;

/// Size of one peer-table slot in bytes.
pub(crate) const SLOT_SIZE: usize = 32;

/// Peer slots a region gets unless [`RegionOptions::max_peers`](super::RegionOptions::max_peers)
/// says otherwise.
pub const DEFAULT_MAX_PEERS: u32 = 32;

/// The most peer slots a region can have (the slot number lives in the low 8 bits of a peer
/// id).
pub const MAX_PEERS: u32 = 255;

/// Where new regions put the user data: the first multiple of this after the peer table, so
/// the data starts on its own page.
pub(crate) const DATA_ALIGN: u64 = 4096;

/// The alignment a valid header's data offset must have (any multiple of a cache line).
pub(crate) const MIN_DATA_ALIGN: u64 = 64;

/// First byte of the lock range: peer slot `i` is locked at byte `LOCK_BASE + i` of the file.
/// Advisory locks do not interact with I/O, so the range may lie past the end of the file (it
/// always does: no region is a TiB) and never disturbs the data.
pub(crate) const LOCK_BASE: u64 = 1 << 40;

/// The content kind of a plain region (see [`Region::content_kind`](super::Region::content_kind)).
pub const CONTENT_RAW: u32 = 0;

/// Bits of a slot generation that go into a peer id.
pub(crate) const GEN_BITS: u32 = 22;
pub(crate) const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

/// Peer slot states.
pub(crate) const SLOT_FREE: u32 = 0;
pub(crate) const SLOT_USED: u32 = 1;

/// The fixed header at offset 0 of every region. All integers are native-endian (mapipc is
/// Linux x86-64 only; the magic reads `MAPIPCRG` in a hex dump).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct Header {
    /// [`MAGIC`], stored last with `Release` by the creator: a zero magic means "being
    /// created".
    pub magic: u64,
    pub version: u32,
    /// `size_of::<Header>()`.
    pub header_size: u32,
    /// The size of the whole file.
    pub total_size: u64,
    pub data_offset: u64,
    pub data_len: u64,
    /// `CLOCK_REALTIME` at creation, ns since the epoch.
    pub created_ns: u64,
    pub creator_pid: u32,
    /// Live word (atomic): what the user data holds; [`CONTENT_RAW`] by default.
    pub content_kind: u32,
    /// Live word (atomic): bumped by writers.
    pub generation: u64,
    /// Live word (atomic): the notifier's futex word.
    pub notify: u32,
    pub peer_slots: u32,
    pub peer_table_offset: u32,
    pub peer_slot_size: u32,
    /// Reserved, zero.
    pub flags: u32,
    pub _pad: u32,
    pub _reserved: [u64; 5],
}

/// One peer-table slot. Informational: the slot's lock byte decides liveness.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct PeerSlot {
    /// [`SLOT_FREE`] or [`SLOT_USED`] (atomic).
    pub state: u32,
    /// Bumped by each join of this slot (atomic); its low [`GEN_BITS`] go into the id.
    pub generation: u32,
    pub pid: u32,
    pub _reserved0: u32,
    /// `CLOCK_REALTIME` at join, ns since the epoch.
    pub joined_ns: u64,
    pub _reserved1: u64,
}

const _: () = {
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, header_size) == 12);
    assert!(offset_of!(Header, total_size) == 16);
    assert!(offset_of!(Header, data_offset) == 24);
    assert!(offset_of!(Header, data_len) == 32);
    assert!(offset_of!(Header, created_ns) == 40);
    assert!(offset_of!(Header, creator_pid) == 48);
    assert!(offset_of!(Header, content_kind) == 52);
    assert!(offset_of!(Header, generation) == 56);
    assert!(offset_of!(Header, notify) == 64);
    assert!(offset_of!(Header, peer_slots) == 68);
    assert!(offset_of!(Header, peer_table_offset) == 72);
    assert!(offset_of!(Header, peer_slot_size) == 76);
    assert!(offset_of!(Header, flags) == 80);
    assert!(size_of::<PeerSlot>() == SLOT_SIZE);
    assert!(offset_of!(PeerSlot, state) == 0);
    assert!(offset_of!(PeerSlot, generation) == 4);
    assert!(offset_of!(PeerSlot, pid) == 8);
    assert!(offset_of!(PeerSlot, joined_ns) == 16);
    // The live atomic words are naturally aligned (the mapping starts on a page).
    assert!(offset_of!(Header, magic) % 8 == 0);
    assert!(offset_of!(Header, generation) % 8 == 0);
    assert!(offset_of!(Header, notify) % 4 == 0);
    assert!(offset_of!(Header, content_kind) % 4 == 0);
    assert!(HEADER_SIZE % 8 == 0 && SLOT_SIZE % 8 == 0);
    // The whole table of a maximal region fits before the first data page it could use.
    assert!(HEADER_SIZE as u64 + MAX_PEERS as u64 * SLOT_SIZE as u64 <= 3 * DATA_ALIGN);
    assert!(GEN_BITS + 8 <= 30);
};

pub(crate) const OFF_MAGIC: u64 = offset_of!(Header, magic) as u64;
pub(crate) const OFF_CONTENT_KIND: u64 = offset_of!(Header, content_kind) as u64;
pub(crate) const OFF_GENERATION: u64 = offset_of!(Header, generation) as u64;
pub(crate) const OFF_NOTIFY: u64 = offset_of!(Header, notify) as u64;
pub(crate) const SLOT_OFF_STATE: u64 = offset_of!(PeerSlot, state) as u64;
pub(crate) const SLOT_OFF_GENERATION: u64 = offset_of!(PeerSlot, generation) as u64;
pub(crate) const SLOT_OFF_PID: u64 = offset_of!(PeerSlot, pid) as u64;
pub(crate) const SLOT_OFF_JOINED: u64 = offset_of!(PeerSlot, joined_ns) as u64;

/// A validated layout: every offset in it is inside the mapping of `total` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub total: u64,
    pub data_offset: u64,
    pub data_len: u64,
    pub table_offset: u64,
    pub slots: u32,
    pub version: u32,
    pub created_ns: u64,
    pub creator_pid: u32,
}

impl Layout {
    /// The layout of a new region with `len` bytes of user data and `slots` peer slots;
    /// `None` when the total does not fit a file or the address space.
    pub fn for_new(len: u64, slots: u32) -> Option<Layout> {
        let table_offset = HEADER_SIZE as u64;
        let table_end = table_offset + slots as u64 * SLOT_SIZE as u64;
        let data_offset = table_end.div_ceil(DATA_ALIGN) * DATA_ALIGN;
        let total = data_offset
            .checked_add(len)
            .filter(|t| *t <= i64::MAX as u64 && *t <= isize::MAX as u64)?;
        Some(Layout {
            total,
            data_offset,
            data_len: len,
            table_offset,
            slots,
            version: FORMAT_VERSION,
            created_ns: 0,
            creator_pid: 0,
        })
    }

    /// The header a creator writes, with a zero magic (the magic is stored last, atomically).
    pub fn new_header(&self, content_kind: u32, created_ns: u64, creator_pid: u32) -> Header {
        Header {
            magic: 0,
            version: FORMAT_VERSION,
            header_size: HEADER_SIZE as u32,
            total_size: self.total,
            data_offset: self.data_offset,
            data_len: self.data_len,
            created_ns,
            creator_pid,
            content_kind,
            generation: 0,
            notify: 0,
            peer_slots: self.slots,
            peer_table_offset: self.table_offset as u32,
            peer_slot_size: SLOT_SIZE as u32,
            flags: 0,
            _pad: 0,
            _reserved: [0; 5],
        }
    }

    /// Offset of slot `slot` (the caller checked `slot < slots`).
    pub fn slot_offset(&self, slot: u32) -> u64 {
        self.table_offset + slot as u64 * SLOT_SIZE as u64
    }
}

/// Checks a header copied from a file of `actual` bytes called `file`.
///
/// Returns a [`Layout`] whose ranges all lie inside `0..actual` and do not overlap: the
/// header, then the peer table (8-byte aligned), then the user data (64-byte aligned).
pub(crate) fn validate(h: &Header, actual: u64, file: &str) -> Result<Layout, HeaderError> {
    let file = || file.to_string();
    if h.magic != MAGIC {
        return Err(HeaderError::BadMagic {
            file: file(),
            found: h.magic.to_le_bytes(),
        });
    }
    if h.version != FORMAT_VERSION {
        return Err(HeaderError::UnsupportedVersion {
            file: file(),
            found: h.version,
            supported: FORMAT_VERSION,
        });
    }
    if h.header_size as usize != HEADER_SIZE {
        return Err(HeaderError::HeaderSize {
            file: file(),
            found: h.header_size,
            expected: HEADER_SIZE as u32,
        });
    }
    if h.total_size != actual {
        return Err(HeaderError::SizeMismatch {
            file: file(),
            header: h.total_size,
            actual,
        });
    }
    let table_offset = h.peer_table_offset as u64;
    let bad_table = |reason: &'static str| HeaderError::PeerTable {
        file: file(),
        offset: table_offset,
        slots: h.peer_slots,
        slot_size: h.peer_slot_size,
        reason,
    };
    if h.peer_slot_size as usize != SLOT_SIZE {
        return Err(bad_table("wrong slot size"));
    }
    if h.peer_slots == 0 || h.peer_slots > MAX_PEERS {
        return Err(bad_table("slot count out of range"));
    }
    if table_offset < HEADER_SIZE as u64 || table_offset % 8 != 0 {
        return Err(bad_table("table overlaps the header or is misaligned"));
    }
    // No overflow: both factors are small (u32 offset, at most 255 slots of 32 bytes).
    let table_end = table_offset + h.peer_slots as u64 * SLOT_SIZE as u64;
    if h.data_offset % MIN_DATA_ALIGN != 0 {
        return Err(HeaderError::DataMisaligned {
            file: file(),
            offset: h.data_offset,
            align: MIN_DATA_ALIGN,
        });
    }
    if h.data_offset > actual || h.data_len > actual - h.data_offset {
        return Err(HeaderError::DataRange {
            file: file(),
            offset: h.data_offset,
            len: h.data_len,
            total: actual,
        });
    }
    if table_end > h.data_offset {
        return Err(bad_table("table overlaps the user data"));
    }
    Ok(Layout {
        total: actual,
        data_offset: h.data_offset,
        data_len: h.data_len,
        table_offset,
        slots: h.peer_slots,
        version: h.version,
        created_ns: h.created_ns,
        creator_pid: h.creator_pid,
    })
}

/// A peer id: `generation << 8 | (slot + 1)`, never zero, top two bits clear.
pub(crate) fn make_id(generation: u32, slot: u32) -> u32 {
    ((generation & GEN_MASK) << 8) | (slot + 1)
}

/// The (generation, slot) of an id, or `None` for a value no join can produce.
pub(crate) fn split_id(id: u32) -> Option<(u32, u32)> {
    let low = id & 0xff;
    if low == 0 || id >> (GEN_BITS + 8) != 0 {
        return None;
    }
    Some((id >> 8, low - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid(len: u64, slots: u32) -> (Header, u64) {
        let l = Layout::for_new(len, slots).unwrap();
        let mut h = l.new_header(CONTENT_RAW, 1, 2);
        h.magic = MAGIC;
        (h, l.total)
    }

    #[test]
    fn new_layouts_validate() {
        for slots in [1, DEFAULT_MAX_PEERS, MAX_PEERS] {
            for len in [0, 1, 4095, 4096, 1 << 20] {
                let (h, total) = valid(len, slots);
                let l = validate(&h, total, "f").unwrap();
                assert_eq!(l.data_len, len);
                assert_eq!(l.data_offset % DATA_ALIGN, 0);
                assert_eq!(l.slots, slots);
            }
        }
    }

    #[test]
    fn each_field_is_checked() {
        let (h, total) = valid(100, 32);
        let check = |f: &dyn Fn(&mut Header), actual: u64| {
            let mut bad = h;
            f(&mut bad);
            validate(&bad, actual, "f").unwrap_err()
        };
        assert!(matches!(
            check(&|h| h.magic ^= 1, total),
            HeaderError::BadMagic { .. }
        ));
        assert!(matches!(
            check(&|h| h.version = 2, total),
            HeaderError::UnsupportedVersion { found: 2, .. }
        ));
        assert!(matches!(
            check(&|h| h.header_size = 64, total),
            HeaderError::HeaderSize { .. }
        ));
        assert!(matches!(
            check(&|_| {}, total - 1),
            HeaderError::SizeMismatch { .. }
        ));
        assert!(matches!(
            check(&|h| h.peer_slots = 0, total),
            HeaderError::PeerTable { .. }
        ));
        assert!(matches!(
            check(&|h| h.peer_slots = 256, total),
            HeaderError::PeerTable { .. }
        ));
        assert!(matches!(
            check(&|h| h.peer_slot_size = 8, total),
            HeaderError::PeerTable { .. }
        ));
        assert!(matches!(
            check(&|h| h.peer_table_offset = 64, total),
            HeaderError::PeerTable { .. }
        ));
        assert!(matches!(
            check(&|h| h.data_offset = 1024, total),
            HeaderError::PeerTable { .. }
        ));
        assert!(matches!(
            check(&|h| h.data_offset += 1, total),
            HeaderError::DataMisaligned { .. }
        ));
        assert!(matches!(
            check(&|h| h.data_len += 1, total),
            HeaderError::DataRange { .. }
        ));
        assert!(matches!(
            check(&|h| h.data_len = u64::MAX, total),
            HeaderError::DataRange { .. }
        ));
        assert!(matches!(
            check(&|h| h.data_offset = u64::MAX - 63, total),
            HeaderError::DataRange { .. }
        ));
    }

    #[test]
    fn ids_round_trip() {
        for slot in [0, 1, 254] {
            for gen in [0, 1, GEN_MASK] {
                let id = make_id(gen, slot);
                assert_ne!(id, 0);
                assert_eq!(id >> 30, 0);
                assert_eq!(split_id(id), Some((gen, slot)));
            }
        }
        assert_eq!(split_id(0), None);
        assert_eq!(split_id(0x100), None);
        assert_eq!(split_id(1 << 31 | 1), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Arbitrary header bytes never panic, and whatever validates is in bounds.
        #[test]
        fn random_headers(bytes in proptest::collection::vec(any::<u8>(), HEADER_SIZE),
                          actual in any::<u64>(), keep_magic: bool) {
            let mut h: Header = bytemuck::pod_read_unaligned(&bytes);
            if keep_magic { h.magic = MAGIC; }
            if let Ok(l) = validate(&h, actual, "f") {
                prop_assert!(l.table_offset >= HEADER_SIZE as u64);
                prop_assert!(l.table_offset + l.slots as u64 * SLOT_SIZE as u64 <= l.data_offset);
                prop_assert!(l.data_offset + l.data_len <= actual);
                prop_assert!(l.slots >= 1 && l.slots <= MAX_PEERS);
            }
        }

        /// A valid header with one field replaced by an arbitrary value: never a panic,
        /// and the result is in bounds when accepted.
        #[test]
        fn mutated_headers(len in 0u64..1 << 20, slots in 1u32..=MAX_PEERS,
                           field in 0usize..16, value in any::<u64>()) {
            let (mut h, total) = valid(len, slots);
            let mut words: [u64; 16] = bytemuck::cast(h);
            words[field] = value;
            h = bytemuck::cast(words);
            if let Ok(l) = validate(&h, total, "f") {
                prop_assert!(l.data_offset + l.data_len <= total);
                prop_assert!(l.table_offset + l.slots as u64 * SLOT_SIZE as u64 <= l.data_offset);
            }
        }
    }
}
