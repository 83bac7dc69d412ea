//! Shared regions: a mapping with a self-describing, validated header, shared between
//! related processes (across `fork`) or unrelated ones (by name, or by passing a memfd over a
//! Unix socket), with a table of attached peers whose deaths are detected without their help.
//!
//! ```
//! use mapipc::region::Region;
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("frames"); // or a bare name such as "frames": /dev/shm/frames
//! let writer = Region::create(&path, 4096)?;
//! writer.write_at(0, b"hello")?;
//! writer.bump_generation()?;
//!
//! // Another process:
//! let reader = Region::open(&path)?;
//! assert_eq!(reader.read_vec(0, 5)?, b"hello");
//! assert_eq!(reader.generation()?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Kinds of region
//!
//! | constructor | backing | shared with | can it SIGBUS? |
//! |---|---|---|---|
//! | [`Region::anonymous`] | memfd sealed `F_SEAL_SHRINK \| F_SEAL_GROW \| F_SEAL_SEAL` | children `fork`ed after creation | no: nobody can shrink it |
//! | [`Region::memfd`] + [`send_to`](Region::send_to) / [`receive`](Region::receive) | the same, with a name shown in `/proc/PID/fd` | any process you pass the fd to over a Unix socket (`SCM_RIGHTS`) | no: the receiver refuses a file without `F_SEAL_SHRINK` before mapping it |
//! | [`Region::create`] / [`open`](Region::open) / [`open_or_create`](Region::open_or_create) | a file: a path, or a bare [`ShmName`] in `/dev/shm` | any process of the same user that knows the name | a truncation by someone else becomes [`AccessError::Truncated`] (see [`map`](crate::map)) |
//!
//! Anonymous regions are memfds rather than `MAP_SHARED|MAP_ANONYMOUS` memory because the
//! liveness locks below need a file, and because a sealed memfd can also be passed to an
//! unrelated process later.
//!
//! Named regions are created with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode `0o600` (see
//! [`RegionOptions::mode`]), sized with `fallocate` so that a full `/dev/shm` is an error at
//! creation rather than a SIGBUS later, and opened with `O_NOFOLLOW` (a symbolic link is
//! refused) after checking that the file belongs to us ([`OpenError::ForeignOwner`]).
//! Dropping a [`Region`] unmaps it and never deletes the file, unless
//! [`set_remove_on_drop`](Region::set_remove_on_drop) asked for it; [`remove`] and
//! [`Region::remove`] unlink it.
//!
//! # Layout (format version 1)
//!
//! | offset | size | field | |
//! |---|---|---|---|
//! | 0 | 8 | magic `b"MAPIPCRG"` | written last, with `Release` |
//! | 8 | 4 | format version (1) | |
//! | 12 | 4 | header size (128) | |
//! | 16 | 8 | total size (= file size) | |
//! | 24 | 8 | user-data offset (multiple of 64; 4096 for new regions) | |
//! | 32 | 8 | user-data length | |
//! | 40 | 8 | creation time, ns since the epoch | |
//! | 48 | 4 | creator pid | |
//! | 52 | 4 | content kind ([`CONTENT_RAW`] = 0) | live, atomic |
//! | 56 | 8 | generation counter | live, atomic |
//! | 64 | 4 | notifier word | live, atomic (futex) |
//! | 68 | 4 | peer slots (1..=255, default 32) | |
//! | 72 | 4 | peer table offset (128) | |
//! | 76 | 4 | peer slot size (32) | |
//! | 80 | 48 | flags and reserved, zero | |
//! | 128 | 32 × slots | peer table: per slot `state u32, generation u32, pid u32, _ u32, joined_ns u64, _ u64` | live, atomic |
//! | data offset | data length | user data | |
//!
//! Integers are native-endian (mapipc targets Linux x86-64). The layout is checked at
//! compile time (`size_of`/`offset_of` assertions) and every field is validated when a
//! region is opened or received: a wrong magic, version, header size, a total size that is
//! not the file size (truncated or grown), a data range or peer table out of bounds is a
//! [`HeaderError`] naming the file, never a crash. The region keeps the validated layout
//! privately; a peer that rewrites the header afterwards can change the live words, not
//! where this process reads and writes.
//!
//! Creation is race-free: a creator sizes the file, writes every field, then stores the magic
//! with `Release`. An opener that finds an empty file or a zero magic (a creator at work)
//! retries for up to [`RegionOptions::init_timeout`] (1 s by default), then reports
//! [`HeaderError::Empty`] or [`HeaderError::Uninitialised`]; any other magic is
//! [`HeaderError::BadMagic`] at once, and so is an empty file that cannot be mapped at all
//! ([`MapError::NotMappable`]: a file of `/proc`, which says 0 bytes). A creator that dies
//! half-way leaves a file that the next opener reports in those terms; remove it.
//!
//! # Access
//!
//! All offsets of [`read_at`](Region::read_at), [`write_at`](Region::write_at),
//! [`read_pod`](Region::read_pod), [`write_pod`](Region::write_pod),
//! [`atomic_u32`](Region::atomic_u32) and [`atomic_u64`](Region::atomic_u64) are relative to
//! the user data and bounds-checked against its length. They copy through the underlying
//! [`Mmap`], for the reasons given in [`map`](crate::map): this module has no `unsafe` code.
//! Layers built on regions use [`Region::as_mmap`] with [`Region::data_offset`], the
//! [notifier word](Region::notify_word), the [generation counter](Region::bump_generation)
//! and the [content kind](Region::set_content_kind) (a channel or queue sets its own kind so
//! tools can tell what a region holds).
//!
//! # Peers and liveness
//!
//! [`Region::join`] registers the calling process in the peer table and returns a [`Peer`].
//! Liveness is decided by the kernel, not by the peers (the design of iceoryx2's node
//! monitoring): a slot is held by an open-file-description write lock (`F_OFD_SETLK`) on
//! byte `2^40 + slot` of the region's file, taken through a fresh open file description
//! (the region's fd reopened through `/proc/self/fd`). The kernel releases it when that
//! description is closed, in particular when the process dies, even by `SIGKILL`. So:
//!
//! - a slot is free when nobody holds its lock; [`join`](Region::join) takes the first free
//!   one, which reclaims the slots of dead peers;
//! - [`is_alive(id)`](Region::is_alive) is one `F_OFD_GETLK` plus an atomic load (cheap
//!   enough for a waiter to call every few milliseconds), and [`Liveness`] is a `'static`
//!   handle for the same check;
//! - [`peers`](Region::peers) lists every slot that is held or marked used: marked but not
//!   held means the peer died without leaving.
//!
//! A [peer id](Peer::id) is `generation << 8 | (slot + 1)`: never zero, below `2^30`, and
//! different for each holder of a slot, so an id stays dead once its process is gone even
//! when a new peer reuses the slot (usable as a robust mutex's owner id). The table's pid and
//! join time are informational: a hostile peer can scribble over the table, which makes
//! `peers` report nonsense and can make ids look dead, but can never crash or hang this
//! process, because the lock decides and every slot index is validated.
//!
//! Two joins in one process are independent peers (two descriptions). A forked child
//! inherits copies of its parent's descriptions: see [`Peer`] for what that means.
#![deny(unsafe_code)]

mod error;
mod header;
mod name;
mod peers;

/// Fuzzing entry points (built only with `--cfg fuzzing`, as cargo-fuzz does).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Validates arbitrary bytes as a region header (zero-padded to its size) against a
    /// file size taken from the 8 bytes after it (the header's own `total_size` when the
    /// input is shorter): a header that passes must give a layout whose ranges lie inside
    /// the file, in order, without overlap.
    pub fn header(data: &[u8]) {
        use super::header::{validate, Header, HEADER_SIZE, SLOT_SIZE};
        let mut bytes = [0u8; HEADER_SIZE];
        let n = data.len().min(HEADER_SIZE);
        bytes[..n].copy_from_slice(&data[..n]);
        let h: Header = bytemuck::pod_read_unaligned(&bytes);
        let actual = match data.get(HEADER_SIZE..HEADER_SIZE + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().unwrap()),
            None => h.total_size,
        };
        if let Ok(l) = validate(&h, actual, "fuzz") {
            let table_end = l.table_offset + u64::from(l.slots) * SLOT_SIZE as u64;
            assert!(
                l.table_offset >= HEADER_SIZE as u64,
                "table overlaps the header"
            );
            assert!(table_end <= l.data_offset, "table overlaps the data");
            assert!(l.data_offset <= l.total, "data offset outside the file");
            assert!(
                l.data_len <= l.total - l.data_offset,
                "data outside the file"
            );
            assert_eq!(l.total, actual);
        }
    }
}

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::{
    CreateError, HeaderError, JoinError, NameError, OpenError, OpenOrCreateError, ReceiveError,
    RemoveError, SendError,
};
pub use header::{CONTENT_RAW, DEFAULT_MAX_PEERS, FORMAT_VERSION, HEADER_SIZE, MAX_PEERS};
pub use name::{IntoLocation, Location, ShmName, MAX_MEMFD_NAME_LEN, MAX_NAME_LEN, SHM_DIR};
pub use peers::{Liveness, Peer, PeerInfo};

pub use crate::map::{AccessError, Bounds};
use crate::map::{MapError, MapOptions, Mmap, Protection};
use crate::os;
use crate::os::file::{FileKind, OpenHow, Seals};
use header::{Header, Layout, MAGIC, MAGIC_BYTES, OFF_CONTENT_KIND, OFF_GENERATION, OFF_MAGIC};

/// What a [`Region`] and its [`Peer`]s share: the mapping, an fd of the file (for liveness
/// queries and reopening), and the validated layout.
pub(crate) struct Inner {
    map: Mmap,
    fd: OwnedFd,
    name: String,
    layout: Layout,
}

/// How a region was made.
///
/// # Example
/// ```
/// use mapipc::region::{Region, RegionKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("r");
/// assert_eq!(Region::anonymous(16)?.kind(), RegionKind::Anonymous);
/// assert_eq!(Region::memfd("m", 16)?.kind(), RegionKind::Memfd);
/// assert_eq!(Region::create(&path, 16)?.kind(), RegionKind::Named);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegionKind {
    /// [`Region::anonymous`]: shared with `fork`ed children.
    Anonymous,
    /// [`Region::memfd`], or [`Region::receive`]d from another process.
    Memfd,
    /// A file at a [`Location`].
    Named,
}

/// Options for making or opening a [`Region`], in the style of `std::fs::OpenOptions`.
///
/// Defaults: mode `0o600`, [`DEFAULT_MAX_PEERS`] peer slots, content kind [`CONTENT_RAW`],
/// files of other users refused, wait up to 1 s for a region being created.
///
/// # Example
/// ```
/// use mapipc::region::RegionOptions;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("r");
/// let region = RegionOptions::new().mode(0o640).max_peers(4).content_kind(7).create(&path, 100)?;
/// assert_eq!(region.max_peers(), 4);
/// assert_eq!(region.content_kind()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RegionOptions {
    mode: u32,
    max_peers: u32,
    content_kind: u32,
    allow_foreign_owner: bool,
    init_timeout: Duration,
    read_only: bool,
}

impl Default for RegionOptions {
    fn default() -> Self {
        RegionOptions {
            mode: 0o600,
            max_peers: DEFAULT_MAX_PEERS,
            content_kind: CONTENT_RAW,
            allow_foreign_owner: false,
            init_timeout: Duration::from_secs(1),
            read_only: false,
        }
    }
}

/// Why mapping and validating an open fd failed; turned into the caller's error type.
enum Invalid {
    Header(HeaderError),
    Map(MapError),
    NotRegular(FileKind),
    Os {
        call: &'static str,
        source: std::io::Error,
    },
}

impl Invalid {
    fn into_open(self, file: &str) -> OpenError {
        match self {
            Invalid::Header(e) => OpenError::Invalid(e),
            Invalid::Map(e) => OpenError::Map(e),
            Invalid::NotRegular(kind) => OpenError::NotRegularFile {
                file: file.to_string(),
                kind,
            },
            Invalid::Os { call, source } => OpenError::Os {
                call,
                file: file.to_string(),
                source,
            },
        }
    }

    fn into_receive(self, file: &str) -> ReceiveError {
        match self {
            Invalid::Header(e) => ReceiveError::Invalid(e),
            Invalid::Map(e) => ReceiveError::Map(e),
            Invalid::NotRegular(kind) => ReceiveError::NotRegularFile {
                file: file.to_string(),
                kind,
            },
            Invalid::Os { call, source } => ReceiveError::Os {
                call,
                file: file.to_string(),
                source,
            },
        }
    }
}

/// Maps the whole file read-write and validates its header, waiting up to `wait` for a
/// creator that has not finished (empty file, or zero magic).
fn map_validated(
    fd: BorrowedFd<'_>,
    file: &str,
    wait: Duration,
    write: bool,
) -> Result<(Mmap, Layout), Invalid> {
    let start = os::process::monotonic_ns();
    let mut pause = Duration::from_millis(1);
    loop {
        let info = os::file::fstat(fd).map_err(|source| Invalid::Os {
            call: "fstat",
            source,
        })?;
        if info.kind != FileKind::Regular {
            return Err(Invalid::NotRegular(info.kind));
        }
        if info.size >= HEADER_SIZE as u64 {
            let mut opts = MapOptions::new();
            if write {
                opts.read_write();
            } else {
                opts.read_only();
            }
            let map = opts.map_fd_named(fd, file).map_err(Invalid::Map)?;
            let header_err = |e: AccessError| Invalid::Header(e.into());
            // Acquire pairs with the creator's Release store of the magic: once we see it,
            // every other field the creator wrote is visible.
            let magic = map
                .load_u64(OFF_MAGIC, Ordering::Acquire)
                .map_err(header_err)?;
            if magic == MAGIC {
                let h: Header = map.read_pod(0).map_err(header_err)?;
                let layout =
                    header::validate(&h, map.len() as u64, file).map_err(Invalid::Header)?;
                return Ok((map, layout));
            }
            if magic != 0 {
                return Err(Invalid::Header(HeaderError::BadMagic {
                    file: file.to_string(),
                    found: magic.to_le_bytes(),
                }));
            }
        } else if info.size > 0 {
            // A creator sizes the file in one step, so this is not a region being created.
            return Err(Invalid::Header(HeaderError::TooSmall {
                file: file.to_string(),
                size: info.size,
                min: HEADER_SIZE as u64,
            }));
        } else if let Err(source) = os::mem::probe_map(fd) {
            // An empty regular file maps (a region whose creator has not sized it yet); one
            // that cannot be mapped at all (a file of /proc says 0 bytes) is no region being
            // made: waiting would only delay the answer.
            let file = file.to_string();
            return Err(Invalid::Map(if os::mem::not_mappable(&source) {
                MapError::NotMappable { file, source }
            } else {
                MapError::Os {
                    call: "mmap",
                    file,
                    source,
                }
            }));
        }
        let waited = Duration::from_nanos(os::process::monotonic_ns().saturating_sub(start));
        if waited >= wait {
            let file = file.to_string();
            return Err(Invalid::Header(if info.size == 0 {
                HeaderError::Empty { file, waited }
            } else {
                HeaderError::Uninitialised { file, waited }
            }));
        }
        os::process::sleep(pause.min(wait - waited));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Unlinks `path` if it still names the file open as `fd` (cleanup after a failed create).
fn unlink_if_same(path: &std::path::Path, fd: BorrowedFd<'_>) {
    if let (Ok(a), Ok(b)) = (os::file::lstat(path), os::file::fstat(fd)) {
        if a.dev == b.dev && a.ino == b.ino {
            let _ = os::file::unlink(path);
        }
    }
}

impl RegionOptions {
    /// The defaults.
    ///
    /// # Example
    /// See [`RegionOptions`].
    pub fn new() -> RegionOptions {
        RegionOptions::default()
    }

    /// Permission bits of created files (before the umask). Default `0o600`: only the owner.
    ///
    /// # Example
    /// See [`RegionOptions`].
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Peer slots of created regions, 1 to [`MAX_PEERS`] (default [`DEFAULT_MAX_PEERS`]).
    ///
    /// # Example
    /// See [`RegionOptions`].
    pub fn max_peers(&mut self, slots: u32) -> &mut Self {
        self.max_peers = slots;
        self
    }

    /// The content kind written into created regions (default [`CONTENT_RAW`]).
    ///
    /// # Example
    /// See [`RegionOptions`].
    pub fn content_kind(&mut self, kind: u32) -> &mut Self {
        self.content_kind = kind;
        self
    }

    /// Whether [`open`](Self::open) accepts files owned by another user (default: no,
    /// [`OpenError::ForeignOwner`]).
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("r");
    /// # mapipc::region::Region::create(&path, 16)?;
    /// let region = mapipc::region::RegionOptions::new().allow_foreign_owner(true).open(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow_foreign_owner(&mut self, allow: bool) -> &mut Self {
        self.allow_foreign_owner = allow;
        self
    }

    /// How long [`open`](Self::open) waits for a region that another process is still
    /// creating (empty file or header not yet written) before giving up (default 1 s).
    ///
    /// # Example
    /// ```
    /// use mapipc::region::{HeaderError, OpenError, RegionOptions};
    /// use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("empty");
    /// std::fs::File::create(&path)?;
    /// let err = RegionOptions::new().init_timeout(Duration::ZERO).open(&path).unwrap_err();
    /// assert!(matches!(err, OpenError::Invalid(HeaderError::Empty { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn init_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.init_timeout = timeout;
        self
    }

    /// Makes [`open`](Self::open) open the file for reading only and map it read-only, so
    /// that inspecting a region needs only read permission on its file (another user's
    /// file, a read-only mount). Such a region reads as usual, but cannot be written:
    /// [`Region::join`] fails with [`JoinError::ReadOnly`], and writes and atomic views
    /// through the mapping fail with [`AccessError::NotWritable`]; use the load methods
    /// ([`Region::generation`], [`Mmap::load_u32`](crate::map::Mmap::load_u32)). `create`,
    /// `open_or_create` and `receive` always give a writable region.
    ///
    /// # Example
    /// ```
    /// use mapipc::region::{JoinError, RegionOptions};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("r");
    /// mapipc::region::Region::create(&path, 16)?.write_at(0, b"hi")?;
    /// let region = RegionOptions::new().read_only(true).open(&path)?;
    /// assert!(region.is_read_only());
    /// let mut buf = [0u8; 2];
    /// region.read_at(0, &mut buf)?;
    /// assert_eq!(&buf, b"hi");
    /// assert!(region.write_at(0, b"no").is_err());
    /// assert!(matches!(region.join(), Err(JoinError::ReadOnly { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_only(&mut self, read_only: bool) -> &mut Self {
        self.read_only = read_only;
        self
    }

    fn layout(&self, len: usize) -> Result<Layout, CreateError> {
        if self.max_peers == 0 || self.max_peers > MAX_PEERS {
            return Err(CreateError::PeerCount {
                count: self.max_peers,
                max: MAX_PEERS,
            });
        }
        let mut layout = Layout::for_new(len as u64, self.max_peers)
            .ok_or(CreateError::TooLarge { len: len as u64 })?;
        layout.created_ns = os::process::realtime_ns();
        layout.creator_pid = os::process::pid();
        Ok(layout)
    }

    /// Maps a freshly sized file and writes the header, magic last.
    fn init(&self, fd: BorrowedFd<'_>, file: &str, layout: &Layout) -> Result<Mmap, CreateError> {
        let map = MapOptions::new().read_write().map_fd_named(fd, file)?;
        if map.len() as u64 != layout.total {
            return Err(CreateError::Os {
                call: "fstat",
                file: file.to_string(),
                source: std::io::Error::other(format!(
                    "the file is {} bytes, not the {} just allocated: another process \
                     resized it during creation",
                    map.len(),
                    layout.total
                )),
            });
        }
        let h = layout.new_header(self.content_kind, layout.created_ns, layout.creator_pid);
        map.write_pod(0, &h)?;
        // Release: an opener that sees the magic (Acquire) sees the whole header.
        map.atomic_u64(OFF_MAGIC)?.store(MAGIC, Ordering::Release);
        Ok(map)
    }

    fn make_memfd(
        &self,
        memfd_name: &str,
        file: String,
        len: usize,
        kind: RegionKind,
    ) -> Result<Region, CreateError> {
        let layout = self.layout(len)?;
        let fd = os::file::memfd_create(memfd_name).map_err(|source| CreateError::Os {
            call: "memfd_create",
            file: file.clone(),
            source,
        })?;
        os::file::allocate(fd.as_fd(), layout.total).map_err(|source| CreateError::Allocate {
            file: file.clone(),
            size: layout.total,
            source,
        })?;
        let seals = Seals {
            seal: true,
            shrink: true,
            grow: true,
            write: false,
        };
        os::file::add_seals(fd.as_fd(), seals).map_err(|source| CreateError::Os {
            call: "fcntl(F_ADD_SEALS)",
            file: file.clone(),
            source,
        })?;
        let map = self.init(fd.as_fd(), &file, &layout)?;
        Ok(Region::new(
            Inner {
                map,
                fd,
                name: file,
                layout,
            },
            kind,
            None,
            true,
        ))
    }

    /// Makes an anonymous region with `len` bytes of user data; see [`Region::anonymous`].
    ///
    /// # Errors
    /// As [`Region::anonymous`], plus [`CreateError::PeerCount`].
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::RegionOptions::new().max_peers(2).anonymous(64)?;
    /// let (_a, _b) = (region.join()?, region.join()?);
    /// assert!(region.join().is_err()); // both slots taken
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn anonymous(&self, len: usize) -> Result<Region, CreateError> {
        self.make_memfd(
            "mapipc-anonymous-region",
            "anonymous region".to_string(),
            len,
            RegionKind::Anonymous,
        )
    }

    /// Makes a sealed memfd region; see [`Region::memfd`].
    ///
    /// # Errors
    /// As [`Region::memfd`], plus [`CreateError::PeerCount`].
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::RegionOptions::new().content_kind(3).memfd("ring", 64)?;
    /// assert_eq!(region.content_kind()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memfd(&self, name: &str, len: usize) -> Result<Region, CreateError> {
        if name.contains('\0') {
            return Err(NameError::Nul {
                name: name.to_string(),
            }
            .into());
        }
        if name.len() > MAX_MEMFD_NAME_LEN {
            return Err(NameError::TooLong {
                name: name.to_string(),
                len: name.len(),
                max: MAX_MEMFD_NAME_LEN,
            }
            .into());
        }
        self.make_memfd(name, format!("memfd:{name}"), len, RegionKind::Memfd)
    }

    /// Creates a named region; see [`Region::create`].
    ///
    /// # Errors
    /// As [`Region::create`], plus [`CreateError::PeerCount`].
    ///
    /// # Example
    /// See [`RegionOptions`].
    pub fn create(&self, loc: impl IntoLocation, len: usize) -> Result<Region, CreateError> {
        let loc = loc.into_location()?;
        let layout = self.layout(len)?;
        let path = loc.path();
        let file = loc.to_string();
        let how = OpenHow {
            write: true,
            create: true,
            exclusive: true,
            no_follow: true,
            directory: false,
            nonblock: true,
            mode: self.mode,
        };
        let fd = os::file::open(&path, how).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                CreateError::AlreadyExists { file: file.clone() }
            } else {
                CreateError::Open {
                    file: file.clone(),
                    source,
                }
            }
        })?;
        let made = os::file::allocate(fd.as_fd(), layout.total)
            .map_err(|source| CreateError::Allocate {
                file: file.clone(),
                size: layout.total,
                source,
            })
            .and_then(|()| self.init(fd.as_fd(), &file, &layout));
        match made {
            Ok(map) => Ok(Region::new(
                Inner {
                    map,
                    fd,
                    name: file,
                    layout,
                },
                RegionKind::Named,
                Some(loc),
                true,
            )),
            Err(e) => {
                // We made this file: do not leave a half-made region behind.
                unlink_if_same(&path, fd.as_fd());
                Err(e)
            }
        }
    }

    /// Opens a named region; see [`Region::open`].
    ///
    /// # Errors
    /// As [`Region::open`].
    ///
    /// # Example
    /// See [`allow_foreign_owner`](Self::allow_foreign_owner).
    pub fn open(&self, loc: impl IntoLocation) -> Result<Region, OpenError> {
        let loc = loc.into_location()?;
        let path = loc.path();
        let file = loc.to_string();
        // Refuse what is not a regular file before opening it: opening is not always
        // harmless (a FIFO's open wakes a writer waiting for a reader, a watchdog device's
        // arms it). The checks after the open still catch a file replaced meanwhile.
        match os::file::lstat(&path) {
            Ok(info) if info.kind == FileKind::Symlink => {
                return Err(OpenError::Symlink { file });
            }
            Ok(info) if info.kind != FileKind::Regular => {
                return Err(OpenError::NotRegularFile {
                    file,
                    kind: info.kind,
                });
            }
            // Missing, or not visible to us: the open says which, in its own words.
            _ => {}
        }
        let how = OpenHow {
            write: !self.read_only,
            no_follow: true,
            // A FIFO put there since the check must not hang the open; it is then refused
            // as not a regular file.
            nonblock: true,
            ..OpenHow::default()
        };
        let fd = os::file::open(&path, how).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                return OpenError::NotFound { file: file.clone() };
            }
            match os::file::lstat(&path) {
                Ok(info) if info.kind == FileKind::Symlink => {
                    OpenError::Symlink { file: file.clone() }
                }
                Ok(info) if info.kind != FileKind::Regular => OpenError::NotRegularFile {
                    file: file.clone(),
                    kind: info.kind,
                },
                _ => OpenError::Open {
                    file: file.clone(),
                    source,
                },
            }
        })?;
        let info = os::file::fstat(fd.as_fd()).map_err(|source| OpenError::Os {
            call: "fstat",
            file: file.clone(),
            source,
        })?;
        if info.kind != FileKind::Regular {
            return Err(OpenError::NotRegularFile {
                file,
                kind: info.kind,
            });
        }
        let our_uid = os::process::euid();
        if info.uid != our_uid && !self.allow_foreign_owner {
            return Err(OpenError::ForeignOwner {
                file,
                uid: info.uid,
                our_uid,
            });
        }
        let (map, layout) = map_validated(fd.as_fd(), &file, self.init_timeout, !self.read_only)
            .map_err(|e| e.into_open(&file))?;
        Ok(Region::new(
            Inner {
                map,
                fd,
                name: file,
                layout,
            },
            RegionKind::Named,
            Some(loc),
            false,
        ))
    }

    /// Opens the named region, or creates it if it does not exist; see
    /// [`Region::open_or_create`].
    ///
    /// # Errors
    /// As [`Region::open_or_create`].
    ///
    /// # Example
    /// See [`Region::open_or_create`].
    pub fn open_or_create(
        &self,
        loc: impl IntoLocation,
        len: usize,
    ) -> Result<Region, OpenOrCreateError> {
        const ATTEMPTS: u32 = 16;
        let loc = loc.into_location().map_err(CreateError::from)?;
        for _ in 0..ATTEMPTS {
            match self.create(&loc, len) {
                Ok(r) => return Ok(r),
                Err(CreateError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            match self.open(&loc) {
                Ok(r) if r.len() < len => {
                    return Err(OpenOrCreateError::TooSmall {
                        file: loc.to_string(),
                        len: r.len() as u64,
                        wanted: len as u64,
                    })
                }
                Ok(r) => return Ok(r),
                // Removed between our create and our open: try again.
                Err(OpenError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpenOrCreateError::Raced {
            file: loc.to_string(),
            attempts: ATTEMPTS,
        })
    }

    /// Receives a region sent with [`Region::send_to`]; see [`Region::receive`].
    ///
    /// # Errors
    /// As [`Region::receive`].
    ///
    /// # Example
    /// See [`Region::receive`].
    pub fn receive(&self, sock: &UnixStream) -> Result<Region, ReceiveError> {
        let mut buf = [0u8; 64];
        let (n, fd) = os::net::recv_fd(sock.as_fd(), &mut buf).map_err(ReceiveError::Recv)?;
        let Some(fd) = fd else {
            return Err(if n == 0 {
                ReceiveError::Closed
            } else {
                ReceiveError::NoFd { len: n }
            });
        };
        let file = os::file::fd_name(fd.as_fd());
        if n != SEND_PAYLOAD_LEN || buf[..8] != MAGIC_BYTES[..] {
            return Err(ReceiveError::BadPayload { file, len: n });
        }
        let mut size = [0u8; 8];
        size.copy_from_slice(&buf[8..16]);
        let announced = u64::from_le_bytes(size);
        let os_err = |call: &'static str, file: &str| {
            let file = file.to_string();
            move |source| ReceiveError::Os { call, file, source }
        };
        let info = os::file::fstat(fd.as_fd()).map_err(os_err("fstat", &file))?;
        if info.kind != FileKind::Regular {
            return Err(ReceiveError::NotRegularFile {
                file,
                kind: info.kind,
            });
        }
        // Check the seals before mapping: an unsealed file could be truncated under us.
        let seals = os::file::get_seals(fd.as_fd()).map_err(os_err("fcntl(F_GET_SEALS)", &file))?;
        if !seals.shrink {
            return Err(ReceiveError::NotSealed { file });
        }
        if seals.write {
            // `mmap` would only say "Operation not permitted".
            return Err(ReceiveError::WriteSealed { file });
        }
        if info.size != announced {
            return Err(ReceiveError::SizeMismatch {
                file,
                announced,
                actual: info.size,
            });
        }
        let (map, layout) = map_validated(fd.as_fd(), &file, Duration::ZERO, true)
            .map_err(|e| e.into_receive(&file))?;
        Ok(Region::new(
            Inner {
                map,
                fd,
                name: file,
                layout,
            },
            RegionKind::Memfd,
            None,
            false,
        ))
    }
}

/// Bytes sent with the fd by [`Region::send_to`]: the magic and the total size.
const SEND_PAYLOAD_LEN: usize = 16;

/// A shared region: a mapping with a validated header, user data, a notifier word, a
/// generation counter and a peer table. See the [module docs](self).
///
/// `Region` is `Send` and `Sync`. Dropping it unmaps this process's view; a named region's
/// file stays (see [`remove`](Self::remove)).
///
/// # Example
/// Related processes: the child inherits the region across `fork`.
/// ```no_run
/// use mapipc::region::Region;
/// let region = Region::anonymous(4096)?;
/// // SAFETY: fork has no memory-safety preconditions; the child only writes to the region
/// // and leaves with _exit.
/// match unsafe { libc::fork() } {
///     0 => {
///         let _ = region.write_at(0, b"from the child");
///         // SAFETY: ends the child without running the parent's destructors.
///         unsafe { libc::_exit(0) };
///     }
///     pid => {
///         // SAFETY: a null status pointer is allowed.
///         unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
///         assert_eq!(region.read_vec(0, 14)?, b"from the child");
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Region {
    inner: Arc<Inner>,
    kind: RegionKind,
    location: Option<Location>,
    created: bool,
    remove_on_drop: bool,
}

impl Region {
    fn new(inner: Inner, kind: RegionKind, location: Option<Location>, created: bool) -> Region {
        Region {
            inner: Arc::new(inner),
            kind,
            location,
            created,
            remove_on_drop: false,
        }
    }

    /// A region with `len` bytes of user data for related processes: children `fork`ed after
    /// this call share it. It is a memfd sealed against shrinking and growing (it can never
    /// SIGBUS) and can also be [sent](Self::send_to) to unrelated processes. `len` may be 0
    /// (a region used only for its notifier word and peer table).
    ///
    /// # Errors
    /// [`CreateError::TooLarge`], [`CreateError::Allocate`] (not enough memory in the
    /// tmpfs), [`CreateError::Os`], [`CreateError::Map`].
    ///
    /// # Example
    /// See [`Region`].
    pub fn anonymous(len: usize) -> Result<Region, CreateError> {
        RegionOptions::new().anonymous(len)
    }

    /// A sealed memfd region named `name` (shown as `/memfd:NAME` in `/proc/PID/fd`; names
    /// need not be unique), meant to be [sent](Self::send_to) to another process.
    ///
    /// # Errors
    /// [`CreateError::InvalidName`] for a name with NUL or longer than
    /// [`MAX_MEMFD_NAME_LEN`], else as [`anonymous`](Self::anonymous).
    ///
    /// # Example
    /// See [`receive`](Self::receive).
    pub fn memfd(name: &str, len: usize) -> Result<Region, CreateError> {
        RegionOptions::new().memfd(name, len)
    }

    /// Creates a named region with `len` bytes of user data at `loc` (a path, or a bare
    /// name in `/dev/shm`), mode `0o600`; fails if anything exists there (a symbolic link
    /// included).
    ///
    /// # Errors
    /// [`CreateError::InvalidName`], [`CreateError::AlreadyExists`], [`CreateError::Open`]
    /// (e.g. a missing directory), [`CreateError::Allocate`] (file system full; the file is
    /// removed again), [`CreateError::TooLarge`], [`CreateError::Map`].
    ///
    /// # Example
    /// ```
    /// use mapipc::region::{CreateError, Region};
    /// let name = format!("doc-create-{}", std::process::id());
    /// let region = Region::create(&name, 1 << 16)?; // /dev/shm/doc-create-PID
    /// assert!(matches!(Region::create(&name, 10), Err(CreateError::AlreadyExists { .. })));
    /// region.remove()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(loc: impl IntoLocation, len: usize) -> Result<Region, CreateError> {
        RegionOptions::new().create(loc, len)
    }

    /// Opens the named region at `loc` read-write and validates its header. Symbolic links
    /// and files owned by another user are refused; a region still being created is
    /// waited for (up to 1 s, [`RegionOptions::init_timeout`]).
    ///
    /// # Errors
    /// [`OpenError::InvalidName`], [`OpenError::NotFound`], [`OpenError::Symlink`],
    /// [`OpenError::ForeignOwner`], [`OpenError::NotRegularFile`], [`OpenError::Open`]
    /// (e.g. permission denied), [`OpenError::Invalid`] (not a region, truncated, ...),
    /// [`OpenError::Map`].
    ///
    /// # Example
    /// ```
    /// use mapipc::region::{HeaderError, OpenError, Region};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("not-a-region");
    /// std::fs::write(&path, vec![b'x'; 8192])?;
    /// let err = Region::open(&path).unwrap_err();
    /// assert!(matches!(err, OpenError::Invalid(HeaderError::BadMagic { .. })));
    /// assert!(err.to_string().contains("not-a-region"));
    /// assert!(matches!(Region::open("no-such-region-here"), Err(OpenError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(loc: impl IntoLocation) -> Result<Region, OpenError> {
        RegionOptions::new().open(loc)
    }

    /// Opens the region at `loc`, creating it with `len` bytes of user data if it does not
    /// exist. Race-free: when several processes do this at once, exactly one creates it
    /// ([`was_created`](Self::was_created)) and the others open what it made.
    ///
    /// # Errors
    /// [`OpenOrCreateError::Create`] / [`OpenOrCreateError::Open`] as [`create`](Self::create)
    /// and [`open`](Self::open); [`OpenOrCreateError::TooSmall`] when the existing region has
    /// less than `len` bytes of user data.
    ///
    /// # Example
    /// ```
    /// use mapipc::region::Region;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("r");
    /// let first = Region::open_or_create(&path, 100)?;
    /// let second = Region::open_or_create(&path, 100)?;
    /// assert!(first.was_created() && !second.was_created());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(loc: impl IntoLocation, len: usize) -> Result<Region, OpenOrCreateError> {
        RegionOptions::new().open_or_create(loc, len)
    }

    /// Receives a region that another process sent with [`send_to`](Self::send_to) over a
    /// connected Unix stream socket. The file must be sealed against shrinking
    /// (`F_SEAL_SHRINK`), which is checked before mapping it, and its header is validated.
    /// Blocks until a message arrives.
    ///
    /// # Errors
    /// [`ReceiveError::Recv`], [`ReceiveError::Closed`], [`ReceiveError::NoFd`],
    /// [`ReceiveError::BadPayload`], [`ReceiveError::NotSealed`], [`ReceiveError::WriteSealed`],
    /// [`ReceiveError::SizeMismatch`], [`ReceiveError::Invalid`], [`ReceiveError::Map`].
    ///
    /// # Example
    /// ```
    /// use mapipc::region::Region;
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair()?;
    /// let mine = Region::memfd("frames", 4096)?;
    /// mine.send_to(&a)?;
    /// let theirs = Region::receive(&b)?; // normally in another process
    /// theirs.write_at(0, b"hi")?;
    /// assert_eq!(mine.read_vec(0, 2)?, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn receive(sock: &UnixStream) -> Result<Region, ReceiveError> {
        RegionOptions::new().receive(sock)
    }

    /// Sends this region's file descriptor (and a 16-byte announcement: magic and size) over
    /// a connected Unix stream socket with `SCM_RIGHTS`; the other end calls
    /// [`receive`](Self::receive). Only sealed regions ([`memfd`](Self::memfd),
    /// [`anonymous`](Self::anonymous)) can be sent: open named regions by name.
    ///
    /// # Errors
    /// [`SendError::NotSealed`], [`SendError::Os`].
    ///
    /// # Example
    /// See [`receive`](Self::receive).
    pub fn send_to(&self, sock: &UnixStream) -> Result<(), SendError> {
        let fd = self.inner.fd.as_fd();
        let seals = os::file::get_seals(fd).map_err(|source| SendError::Os {
            call: "fcntl(F_GET_SEALS)",
            file: self.inner.name.clone(),
            source,
        })?;
        if !seals.shrink {
            return Err(SendError::NotSealed {
                file: self.inner.name.clone(),
            });
        }
        let mut payload = [0u8; SEND_PAYLOAD_LEN];
        payload[..8].copy_from_slice(MAGIC_BYTES);
        payload[8..].copy_from_slice(&self.inner.layout.total.to_le_bytes());
        os::net::send_fd(sock.as_fd(), fd, &payload).map_err(|source| SendError::Os {
            call: "sendmsg(SCM_RIGHTS)",
            file: self.inner.name.clone(),
            source,
        })
    }

    /// Unlinks a named region's file. Processes that have it mapped keep working; new opens
    /// fail. Refuses when the name now refers to another file (someone removed and recreated
    /// it).
    ///
    /// # Errors
    /// [`RemoveError::NotNamed`] for anonymous and memfd regions, [`RemoveError::NotFound`],
    /// [`RemoveError::Replaced`], [`RemoveError::Os`].
    ///
    /// # Example
    /// See [`create`](Self::create).
    pub fn remove(&self) -> Result<(), RemoveError> {
        let Some(loc) = &self.location else {
            return Err(RemoveError::NotNamed {
                file: self.inner.name.clone(),
            });
        };
        let path = loc.path();
        let file = || loc.to_string();
        let there = os::file::lstat(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                RemoveError::NotFound { file: file() }
            } else {
                RemoveError::Os {
                    call: "lstat",
                    file: file(),
                    source,
                }
            }
        })?;
        let ours = os::file::fstat(self.inner.fd.as_fd()).map_err(|source| RemoveError::Os {
            call: "fstat",
            file: file(),
            source,
        })?;
        if there.dev != ours.dev || there.ino != ours.ino {
            return Err(RemoveError::Replaced { file: file() });
        }
        os::file::unlink(&path).map_err(|source| RemoveError::Os {
            call: "unlink",
            file: file(),
            source,
        })
    }

    /// Whether dropping this value also [removes](Self::remove) the named region's file
    /// (default: no). Errors at drop are ignored.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("r");
    /// let mut region = mapipc::region::Region::create(&path, 16)?;
    /// region.set_remove_on_drop(true);
    /// drop(region);
    /// assert!(!path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_remove_on_drop(&mut self, remove: bool) {
        self.remove_on_drop = remove;
    }

    /// A readable name for messages: the path, `/dev/shm/NAME`, `memfd:NAME`,
    /// `anonymous region`, or the received fd's name.
    ///
    /// # Example
    /// ```
    /// assert_eq!(mapipc::region::Region::memfd("x", 1)?.name(), "memfd:x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where a named region lives; `None` for anonymous, memfd and received regions.
    ///
    /// # Example
    /// ```
    /// assert!(mapipc::region::Region::anonymous(1)?.location().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// How the region was made.
    ///
    /// # Example
    /// ```
    /// use mapipc::region::{Region, RegionKind};
    /// assert_eq!(Region::anonymous(1)?.kind(), RegionKind::Anonymous);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kind(&self) -> RegionKind {
        self.kind
    }

    /// Whether this value created the region (as opposed to opening or receiving it).
    ///
    /// # Example
    /// See [`open_or_create`](Self::open_or_create).
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// Length of the user data in bytes.
    ///
    /// # Example
    /// ```
    /// assert_eq!(mapipc::region::Region::anonymous(1000)?.len(), 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        // Validated to fit in the mapping, hence in usize.
        self.inner.layout.data_len as usize
    }

    /// Whether the user data is empty (a region used only for its header words and peers).
    ///
    /// # Example
    /// ```
    /// assert!(mapipc::region::Region::anonymous(0)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.layout.data_len == 0
    }

    /// Offset of the user data within [`as_mmap`](Self::as_mmap) (a multiple of 64; 4096 for
    /// regions made by this version).
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(16)?;
    /// region.write_at(0, b"x")?;
    /// assert_eq!(region.as_mmap().read_vec(region.data_offset(), 1)?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn data_offset(&self) -> u64 {
        self.inner.layout.data_offset
    }

    /// The whole mapping, header included, for layers built on regions. Offsets here are
    /// absolute: the user data starts at [`data_offset`](Self::data_offset).
    ///
    /// # Example
    /// See [`data_offset`](Self::data_offset).
    pub fn as_mmap(&self) -> &Mmap {
        &self.inner.map
    }

    /// Number of peer slots.
    ///
    /// # Example
    /// See [`RegionOptions`].
    pub fn max_peers(&self) -> u32 {
        self.inner.layout.slots
    }

    /// Whether the mapping is poisoned ([`Mmap::is_poisoned`]): someone truncated a named
    /// region's file under it and a page past the new end was touched (every access then
    /// fails with [`AccessError::Truncated`]), or the kernel could not supply a page of the
    /// file, such as on an I/O error or a full tmpfs (accesses then fail with
    /// [`AccessError::Fault`]). Anonymous regions are never poisoned.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("r");
    /// use mapipc::region::{AccessError, Region};
    /// let region = Region::create(&path, 1 << 16)?;
    /// assert!(!region.is_poisoned());
    /// std::fs::File::options().write(true).open(&path)?.set_len(4096)?; // someone truncates
    /// let err = region.read_vec((1 << 16) - 1, 1).unwrap_err(); // a lost page: SIGBUS, caught
    /// assert!(matches!(err, AccessError::Truncated { .. }));
    /// assert!(region.is_poisoned());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.inner.map.is_poisoned()
    }

    /// The old name of [`is_poisoned`](Self::is_poisoned), which it returns: true also for a
    /// page the kernel could not supply ([`AccessError::Fault`]), not only for a truncation.
    #[deprecated(note = "true for any poisoning, not only a truncation: use `is_poisoned`")]
    #[inline]
    pub fn is_truncated(&self) -> bool {
        self.is_poisoned()
    }

    /// Whether the file now holds fewer bytes than the region: someone truncated it, even if
    /// no page past its new end was touched yet (which [`is_poisoned`](Self::is_poisoned)
    /// waits for). A system call (`fstat`), for periodic checks such as those of a long
    /// wait; a failing `fstat` counts as not shrunk.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("r");
    /// use mapipc::region::Region;
    /// let region = Region::create(&path, 8192)?;
    /// assert!(!region.file_shrunk());
    /// std::fs::File::options().write(true).open(&path)?.set_len(4096)?;
    /// assert!(region.file_shrunk());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file_shrunk(&self) -> bool {
        os::file::fstat(self.inner.fd.as_fd()).is_ok_and(|info| info.size < self.inner.layout.total)
    }

    /// Whether the region's name no longer leads to it: its file was removed, or replaced
    /// by another file. Processes that open the name now reach another file, or none (those
    /// that have the region already are not affected). `false` for regions without a name.
    /// Two system calls (`lstat`, `fstat`), for periodic checks.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("r");
    /// use mapipc::region::Region;
    /// let region = Region::create(&path, 64)?;
    /// assert!(!region.file_moved());
    /// std::fs::remove_file(&path)?;
    /// assert!(region.file_moved());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file_moved(&self) -> bool {
        let Some(loc) = &self.location else {
            return false;
        };
        match (
            os::file::lstat(&loc.path()),
            os::file::fstat(self.inner.fd.as_fd()),
        ) {
            (Ok(there), Ok(ours)) => there.dev != ours.dev || there.ino != ours.ino,
            (Err(e), _) => e.kind() == std::io::ErrorKind::NotFound,
            // Our own fd cannot be examined: nothing to say.
            (Ok(_), Err(_)) => false,
        }
    }

    fn data_range(&self, offset: u64, len: usize) -> Result<u64, AccessError> {
        let l = &self.inner.layout;
        match offset.checked_add(len as u64) {
            Some(end) if end <= l.data_len => Ok(l.data_offset + offset),
            _ => Err(AccessError::OutOfBounds {
                file: self.inner.map.file_name().to_string(),
                offset,
                len,
                map_len: l.data_len as usize,
                bounds: Bounds::RegionData,
            }),
        }
    }

    /// Copies `buf.len()` bytes of user data at `offset` into `buf`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] (relative to the user data), [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(8)?;
    /// let mut buf = [1u8; 4];
    /// region.read_at(4, &mut buf)?;
    /// assert_eq!(buf, [0; 4]);
    /// assert!(region.read_at(5, &mut buf).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        let abs = self.data_range(offset, buf.len())?;
        self.inner.map.read_at(abs, buf)
    }

    /// Copies `len` bytes of user data at `offset` into a new `Vec`.
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    ///
    /// # Example
    /// See [`Region`].
    pub fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, AccessError> {
        let abs = self.data_range(offset, len)?;
        self.inner.map.read_vec(abs, len)
    }

    /// Copies `data` into the user data at `offset`.
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(8)?;
    /// region.write_at(6, b"ok")?;
    /// assert!(region.write_at(7, b"no").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), AccessError> {
        let abs = self.data_range(offset, data.len())?;
        self.inner.map.write_at(abs, data)
    }

    /// Sets `len` bytes of user data at `offset` to `byte`.
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(8)?;
    /// region.fill(0, 8, 0xaa)?;
    /// assert_eq!(region.read_vec(7, 1)?, [0xaa]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fill(&self, offset: u64, len: usize, byte: u8) -> Result<(), AccessError> {
        let abs = self.data_range(offset, len)?;
        self.inner.map.fill(abs, len, byte)
    }

    /// Reads a plain-old-data value from the user data at `offset` (any alignment).
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    ///
    /// # Example
    /// ```
    /// #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Point { x: u32, y: u32 }
    /// let region = mapipc::region::Region::anonymous(64)?;
    /// region.write_pod(8, &Point { x: 1, y: 2 })?;
    /// assert_eq!(region.read_pod::<Point>(8)?, Point { x: 1, y: 2 });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_pod<T: bytemuck::Pod>(&self, offset: u64) -> Result<T, AccessError> {
        let abs = self.data_range(offset, std::mem::size_of::<T>())?;
        self.inner.map.read_pod(abs)
    }

    /// Writes a plain-old-data value into the user data at `offset` (any alignment).
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    ///
    /// # Example
    /// See [`read_pod`](Self::read_pod).
    pub fn write_pod<T: bytemuck::NoUninit>(
        &self,
        offset: u64,
        value: &T,
    ) -> Result<(), AccessError> {
        let abs = self.data_range(offset, std::mem::size_of::<T>())?;
        self.inner.map.write_pod(abs, value)
    }

    /// An atomic view of the 4 bytes of user data at `offset`, which must be a multiple of 4.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`], [`AccessError::Misaligned`],
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let region = mapipc::region::Region::anonymous(64)?;
    /// region.atomic_u32(4)?.fetch_add(5, Ordering::AcqRel);
    /// assert_eq!(region.read_pod::<u32>(4)?, 5);
    /// assert!(region.atomic_u32(6).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn atomic_u32(&self, offset: u64) -> Result<&AtomicU32, AccessError> {
        let abs = self.data_range(offset, 4)?;
        if offset % 4 != 0 {
            return Err(AccessError::Misaligned {
                file: self.inner.map.file_name().to_string(),
                offset,
                align: 4,
            });
        }
        self.inner.map.atomic_u32(abs)
    }

    /// An atomic view of the 8 bytes of user data at `offset`, which must be a multiple of 8.
    ///
    /// # Errors
    /// As [`atomic_u32`](Self::atomic_u32).
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let region = mapipc::region::Region::anonymous(64)?;
    /// region.atomic_u64(8)?.store(u64::MAX, Ordering::Release);
    /// assert_eq!(region.read_pod::<u64>(8)?, u64::MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn atomic_u64(&self, offset: u64) -> Result<&AtomicU64, AccessError> {
        let abs = self.data_range(offset, 8)?;
        if offset % 8 != 0 {
            return Err(AccessError::Misaligned {
                file: self.inner.map.file_name().to_string(),
                offset,
                align: 8,
            });
        }
        self.inner.map.atomic_u64(abs)
    }

    /// The header's notifier word: a 4-byte aligned `AtomicU32` shared by every process that
    /// maps the region, for a futex-based notifier (`sync::Notifier`) to wait and wake on.
    ///
    /// # Errors
    /// [`AccessError::Truncated`] when the file was truncated under this mapping.
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let region = mapipc::region::Region::anonymous(0)?;
    /// let word = region.notify_word()?;
    /// word.store(1, Ordering::Release);
    /// assert_eq!(word.load(Ordering::Acquire), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify_word(&self) -> Result<&AtomicU32, AccessError> {
        self.inner.map.atomic_u32(header::OFF_NOTIFY)
    }

    /// The generation counter: a number writers bump after publishing a change, so readers
    /// can tell whether anything changed since they last looked.
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(0)?;
    /// assert_eq!(region.generation()?, 0);
    /// assert_eq!(region.bump_generation()?, 1);
    /// assert_eq!(region.generation()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generation(&self) -> Result<u64, AccessError> {
        self.inner.map.load_u64(OFF_GENERATION, Ordering::Acquire)
    }

    /// Increments the generation counter (`AcqRel`: the writes made before it are visible to
    /// a reader that sees the new value) and returns the new value.
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// See [`generation`](Self::generation).
    pub fn bump_generation(&self) -> Result<u64, AccessError> {
        Ok(self
            .inner
            .map
            .atomic_u64(OFF_GENERATION)?
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1))
    }

    /// What the user data holds: [`CONTENT_RAW`] (0) for a plain region; layers built on
    /// regions (channels, queues) set their own value so tools can recognise them.
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// use mapipc::region::{Region, CONTENT_RAW};
    /// let region = Region::anonymous(0)?;
    /// assert_eq!(region.content_kind()?, CONTENT_RAW);
    /// region.set_content_kind(0x4348_414e)?;
    /// assert_eq!(region.content_kind()?, 0x4348_414e);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn content_kind(&self) -> Result<u32, AccessError> {
        self.inner.map.load_u32(OFF_CONTENT_KIND, Ordering::Acquire)
    }

    /// Sets the content kind (`Release`).
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// See [`content_kind`](Self::content_kind).
    pub fn set_content_kind(&self, kind: u32) -> Result<(), AccessError> {
        self.inner
            .map
            .atomic_u32(OFF_CONTENT_KIND)?
            .store(kind, Ordering::Release);
        Ok(())
    }

    /// A snapshot of the header, for display (`mapipc region info`).
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(100)?;
    /// let info = region.info()?;
    /// assert_eq!(info.data_len, 100);
    /// assert_eq!(info.creator_pid, std::process::id());
    /// assert_eq!(info.total_size, info.data_offset + 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> Result<RegionInfo, AccessError> {
        let l = &self.inner.layout;
        Ok(RegionInfo {
            name: self.inner.name.clone(),
            kind: self.kind,
            version: l.version,
            total_size: l.total,
            data_offset: l.data_offset,
            data_len: l.data_len,
            created: UNIX_EPOCH
                .checked_add(Duration::from_nanos(l.created_ns))
                .unwrap_or(UNIX_EPOCH),
            creator_pid: l.creator_pid,
            content_kind: self.content_kind()?,
            generation: self.generation()?,
            max_peers: l.slots,
        })
    }

    /// Joins the peer table: claims the first slot whose lock nobody holds (a free slot or a
    /// dead peer's) through a fresh open file description. The returned [`Peer`] holds the
    /// slot until it is dropped or the process dies.
    ///
    /// # Errors
    /// [`JoinError::Full`] when every slot is held, [`JoinError::ReadOnly`] for a region
    /// opened read-only, [`JoinError::Reopen`] when `/proc/self/fd` is unusable,
    /// [`JoinError::Lock`], [`JoinError::Access`].
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(0)?;
    /// let a = region.join()?;
    /// let b = region.join()?; // a second, independent peer
    /// assert_ne!(a.id(), b.id());
    /// let peers = region.peers()?;
    /// assert_eq!(peers.len(), 2);
    /// assert!(peers.iter().all(|p| p.alive && p.pid == std::process::id()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<Peer, JoinError> {
        if self.is_read_only() {
            return Err(JoinError::ReadOnly {
                file: self.inner.name.clone(),
            });
        }
        peers::join(&self.inner)
    }

    /// Whether the region was opened read-only ([`RegionOptions::read_only`]).
    ///
    /// # Example
    /// ```
    /// assert!(!mapipc::region::Region::anonymous(0)?.is_read_only());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_read_only(&self) -> bool {
        !self.inner.map.protection().contains(Protection::WRITE)
    }

    /// The notifier word's current value (an atomic load), which a read-only region can
    /// read too; [`Notifier::epoch_of`](crate::sync::Notifier::epoch_of) and
    /// [`Notifier::waiters_of`](crate::sync::Notifier::waiters_of) decode it.
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// use mapipc::sync::Notifier;
    /// let region = mapipc::region::Region::anonymous(0)?;
    /// Notifier::new(region.notify_word()?).notify_all();
    /// assert_eq!(Notifier::epoch_of(region.notify_value()?), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify_value(&self) -> Result<u32, AccessError> {
        self.inner
            .map
            .load_u32(header::OFF_NOTIFY, Ordering::Acquire)
    }

    /// Lists the slots that are held (live peers) or marked used without being held (peers
    /// that died without leaving; their slots are reclaimed by the next
    /// [`join`](Self::join)).
    ///
    /// # Errors
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// See [`join`](Self::join).
    pub fn peers(&self) -> Result<Vec<PeerInfo>, AccessError> {
        peers::peers(&self.inner)
    }

    /// Whether `id` is something [`join`](Self::join) on this region could have produced
    /// (a well-formed id naming one of its slots), alive or not: a value read from shared
    /// memory that fails this is garbage, not a peer that left. No syscall.
    ///
    /// # Example
    /// ```
    /// let region = mapipc::region::Region::anonymous(4096)?;
    /// let me = region.join()?;
    /// assert!(region.is_peer_id(me.id()));
    /// assert!(!region.is_peer_id(0) && !region.is_peer_id(u32::MAX));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_peer_id(&self, id: u32) -> bool {
        peers::is_peer_id(&self.inner, id)
    }

    /// Whether the peer with this id is alive: its slot lock is held and the slot still
    /// belongs to it. `false` for ids no join produced. One `fcntl(F_OFD_GETLK)` and an
    /// atomic load.
    ///
    /// # Example
    /// See [`Peer`].
    pub fn is_alive(&self, id: u32) -> bool {
        peers::is_alive(&self.inner, id)
    }

    /// A `'static` handle for [`is_alive`](Self::is_alive).
    ///
    /// # Example
    /// See [`Liveness`].
    pub fn liveness(&self) -> Liveness {
        Liveness {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = self.remove();
        }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("name", &self.inner.name)
            .field("kind", &self.kind)
            .field("len", &self.inner.layout.data_len)
            .field("data_offset", &self.inner.layout.data_offset)
            .field("max_peers", &self.inner.layout.slots)
            .finish()
    }
}

/// A snapshot of a region's header ([`Region::info`]).
///
/// # Example
/// ```
/// use mapipc::region::{RegionKind, RegionOptions, FORMAT_VERSION};
/// let region = RegionOptions::new().max_peers(3).content_kind(42).memfd("info", 100)?;
/// region.bump_generation()?;
/// let info = region.info()?;
/// assert_eq!(info.name, "memfd:info");
/// assert_eq!((info.kind, info.version), (RegionKind::Memfd, FORMAT_VERSION));
/// assert_eq!((info.max_peers, info.content_kind, info.generation), (3, 42, 1));
/// assert!(info.created <= std::time::SystemTime::now());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegionInfo {
    /// The region's name ([`Region::name`]).
    pub name: String,
    /// How it was made or obtained.
    pub kind: RegionKind,
    /// Format version.
    pub version: u32,
    /// File size.
    pub total_size: u64,
    /// Offset of the user data.
    pub data_offset: u64,
    /// Length of the user data.
    pub data_len: u64,
    /// Creation time (as recorded by the creator).
    pub created: SystemTime,
    /// The creator's pid (as recorded by the creator).
    pub creator_pid: u32,
    /// The content kind.
    pub content_kind: u32,
    /// The generation counter.
    pub generation: u64,
    /// Peer slots.
    pub max_peers: u32,
}

/// Unlinks the named region at `loc` (a path or a bare `/dev/shm` name). Processes that have
/// it mapped keep working. A symbolic link is refused.
///
/// # Errors
/// [`RemoveError::InvalidName`], [`RemoveError::NotFound`], [`RemoveError::Symlink`],
/// [`RemoveError::Os`].
///
/// # Example
/// ```
/// use mapipc::region::{remove, Region, RemoveError};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("r");
/// Region::create(&path, 10)?;
/// remove(&path)?;
/// assert!(matches!(remove(&path), Err(RemoveError::NotFound { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove(loc: impl IntoLocation) -> Result<(), RemoveError> {
    let loc = loc.into_location()?;
    let path = loc.path();
    let file = || loc.to_string();
    let os_err = |call: &'static str| {
        move |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                RemoveError::NotFound { file: file() }
            } else {
                RemoveError::Os {
                    call,
                    file: file(),
                    source,
                }
            }
        }
    };
    let info = os::file::lstat(&path).map_err(os_err("lstat"))?;
    if info.kind == FileKind::Symlink {
        return Err(RemoveError::Symlink { file: file() });
    }
    os::file::unlink(&path).map_err(os_err("unlink"))
}
