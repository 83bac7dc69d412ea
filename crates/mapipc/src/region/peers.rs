//! Peer liveness: a slot per attached process, held by an open-file-description lock that
//! the kernel drops when the process dies. See the [module docs](super#peers-and-liveness).

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::JoinError;
use super::header::{
    make_id, split_id, GEN_MASK, LOCK_BASE, SLOT_FREE, SLOT_OFF_GENERATION, SLOT_OFF_JOINED,
    SLOT_OFF_PID, SLOT_OFF_STATE, SLOT_USED,
};
use super::Inner;
use crate::map::AccessError;
use crate::os;

/// A process's membership in a region's peer table, made by
/// [`Region::join`](super::Region::join). Dropping it (or [`leave`](Self::leave)) frees the
/// slot; if the process dies instead, the kernel releases the slot lock and every other peer
/// sees it dead.
///
/// A `Peer` is independent of the [`Region`](super::Region) value it came from (it keeps the
/// mapping alive itself), so it can be stored next to it or moved to another thread.
///
/// After `fork`, the child holds a copy of the parent's `Peer`: dropping it in the child
/// only closes the child's copy and leaves the parent's slot alone. While the child lives
/// (and has not dropped the copy), the parent's slot stays locked, so the parent looks alive
/// even if it died: drop inherited peers early in children that outlive their parent.
///
/// # Example
/// ```
/// let region = mapipc::region::Region::anonymous(4096)?;
/// let me = region.join()?;
/// assert!(region.is_alive(me.id()));
/// let id = me.id();
/// drop(me);
/// assert!(!region.is_alive(id));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Peer {
    inner: Arc<Inner>,
    /// The fresh open file description holding the slot lock.
    fd: OwnedFd,
    slot: u32,
    id: u32,
    /// The process that joined: a forked child that inherited this value must not free it.
    pid: u32,
}

impl Peer {
    /// This peer's id: non-zero, below `2^30` (the top two bits are free for flags in a lock
    /// word), and different from every earlier holder of the same slot (up to 2^22 reuses).
    /// Another process checks it with [`Region::is_alive`](super::Region::is_alive).
    ///
    /// # Example
    /// See [`Peer`].
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The slot index (0-based).
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(64)?;
    /// assert_eq!(region.join()?.slot(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The process that joined.
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(64)?;
    /// assert_eq!(region.join()?.pid(), std::process::id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Leaves the peer table now (the same as dropping).
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(64)?;
    /// let p = region.join()?;
    /// let id = p.id();
    /// p.leave();
    /// assert!(region.peers()?.is_empty());
    /// assert!(!region.is_alive(id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn leave(self) {}
}

impl Drop for Peer {
    fn drop(&mut self) {
        if os::process::pid() != self.pid {
            // A forked child's copy: closing our fd (when `self.fd` drops) does not release
            // the lock while the parent holds the description, and the table is the parent's.
            return;
        }
        // Mark the slot free while we still hold its lock (nobody else can claim it yet),
        // then release the lock explicitly: an explicit unlock releases it for the whole
        // description, even if a forked child still holds a copy of the fd.
        if let Ok(state) = self
            .inner
            .map
            .atomic_u32(self.inner.layout.slot_offset(self.slot) + SLOT_OFF_STATE)
        {
            state.store(SLOT_FREE, Ordering::Release);
        }
        let _ = os::file::ofd_unlock(self.fd.as_fd(), LOCK_BASE + self.slot as u64, 1);
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("region", &self.inner.name)
            .field("id", &self.id)
            .field("slot", &self.slot)
            .field("pid", &self.pid)
            .finish()
    }
}

/// One entry of [`Region::peers`](super::Region::peers).
///
/// `alive` comes from the kernel (the slot lock); `pid` and `joined` come from the shared
/// table, which any peer can write: treat them as information, not proof.
///
/// # Example
/// ```
/// let region = mapipc::region::Region::anonymous(0)?;
/// let me = region.join()?;
/// let peers = region.peers()?;
/// assert_eq!(peers.len(), 1);
/// let p = &peers[0];
/// assert_eq!((p.id, p.slot, p.pid), (me.id(), me.slot(), std::process::id()));
/// assert!(p.alive);
/// assert!(p.joined <= std::time::SystemTime::now());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The id the slot's current (or last) holder got.
    pub id: u32,
    /// Slot index.
    pub slot: u32,
    /// The pid recorded at join.
    pub pid: u32,
    /// When it joined.
    pub joined: SystemTime,
    /// Whether the slot lock is held: the process is alive (or still holds the slot).
    pub alive: bool,
}

/// A cheap, cloneable, `'static` handle answering "is peer `id` alive?" for one region, for
/// code that must not borrow the [`Region`](super::Region) (a waiter thread, a liveness
/// callback given to a lock).
///
/// # Example
/// ```
/// let region = mapipc::region::Region::anonymous(64)?;
/// let peer = region.join()?;
/// let liveness = region.liveness();
/// let check = move |id: u32| liveness.is_alive(id);
/// assert!(check(peer.id()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Liveness {
    pub(super) inner: Arc<Inner>,
}

impl Liveness {
    /// Whether the peer with this id is alive: see
    /// [`Region::is_alive`](super::Region::is_alive).
    ///
    /// # Example
    /// See [`Liveness`].
    pub fn is_alive(&self, id: u32) -> bool {
        is_alive(&self.inner, id)
    }
}

impl fmt::Debug for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Liveness")
            .field("region", &self.inner.name)
            .finish()
    }
}

fn slot_locked(inner: &Inner, slot: u32) -> bool {
    // An error here would be a bug (our own fd, a valid range); count it as "held" so a live
    // peer is never declared dead by mistake.
    os::file::ofd_is_locked(inner.fd.as_fd(), LOCK_BASE + slot as u64, 1).unwrap_or(true)
}

pub(super) fn is_peer_id(inner: &Inner, id: u32) -> bool {
    split_id(id).is_some_and(|(_, slot)| slot < inner.layout.slots)
}

pub(super) fn is_alive(inner: &Inner, id: u32) -> bool {
    let Some((generation, slot)) = split_id(id) else {
        return false;
    };
    if slot >= inner.layout.slots {
        return false;
    }
    // Lock first, generation second: a live holder keeps both stable, so a live peer is
    // never reported dead; a dead peer whose slot was just re-locked by a joiner may look
    // alive until the joiner bumps the generation, a moment later.
    if !slot_locked(inner, slot) {
        return false;
    }
    match inner.map.load_u32(
        inner.layout.slot_offset(slot) + SLOT_OFF_GENERATION,
        Ordering::Acquire,
    ) {
        Ok(g) => g & GEN_MASK == generation,
        // The table is unreadable (file truncated): the lock is the truth.
        Err(_) => true,
    }
}

pub(super) fn join(inner: &Arc<Inner>) -> Result<Peer, JoinError> {
    let file = || inner.name.clone();
    let fd = os::file::reopen(inner.fd.as_fd(), true).map_err(|source| JoinError::Reopen {
        file: file(),
        source,
    })?;
    for slot in 0..inner.layout.slots {
        let got = os::file::ofd_lock(fd.as_fd(), LOCK_BASE + slot as u64, 1, false).map_err(
            |source| JoinError::Lock {
                file: file(),
                source,
            },
        )?;
        if !got {
            continue;
        }
        // The slot is ours (a free slot or a dead peer's): fill it. If anything fails,
        // dropping `fd` releases the lock.
        let pid = os::process::pid();
        let base = inner.layout.slot_offset(slot);
        let gen_word = inner.map.atomic_u32(base + SLOT_OFF_GENERATION)?;
        let mut generation = gen_word.load(Ordering::Relaxed).wrapping_add(1) & GEN_MASK;
        if generation == 0 {
            generation = 1;
        }
        gen_word.store(generation, Ordering::Release);
        inner
            .map
            .atomic_u32(base + SLOT_OFF_PID)?
            .store(pid, Ordering::Relaxed);
        inner
            .map
            .atomic_u64(base + SLOT_OFF_JOINED)?
            .store(os::process::realtime_ns(), Ordering::Relaxed);
        inner
            .map
            .atomic_u32(base + SLOT_OFF_STATE)?
            .store(SLOT_USED, Ordering::Release);
        return Ok(Peer {
            inner: Arc::clone(inner),
            fd,
            slot,
            id: make_id(generation, slot),
            pid,
        });
    }
    Err(JoinError::Full {
        file: file(),
        slots: inner.layout.slots,
    })
}

pub(super) fn peers(inner: &Inner) -> Result<Vec<PeerInfo>, AccessError> {
    let mut out = Vec::new();
    for slot in 0..inner.layout.slots {
        let base = inner.layout.slot_offset(slot);
        let locked = slot_locked(inner, slot);
        let state = inner
            .map
            .load_u32(base + SLOT_OFF_STATE, Ordering::Acquire)?;
        if state == SLOT_FREE && !locked {
            continue;
        }
        let generation = inner
            .map
            .load_u32(base + SLOT_OFF_GENERATION, Ordering::Acquire)?;
        let pid = inner.map.load_u32(base + SLOT_OFF_PID, Ordering::Relaxed)?;
        let joined_ns = inner
            .map
            .load_u64(base + SLOT_OFF_JOINED, Ordering::Relaxed)?;
        out.push(PeerInfo {
            id: make_id(generation, slot),
            slot,
            pid,
            joined: UNIX_EPOCH
                .checked_add(Duration::from_nanos(joined_ns))
                .unwrap_or(UNIX_EPOCH),
            alive: locked,
        });
    }
    Ok(out)
}
