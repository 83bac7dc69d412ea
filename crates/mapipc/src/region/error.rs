//! Errors of the region layer, one type per operation. Every message names the file (a path,
//! `/dev/shm/NAME`, or the memfd) and the cause.

use std::io;
use std::time::Duration;

use crate::map::{AccessError, MapError};
use crate::os::file::FileKind;

/// Why a region name was refused ([`ShmName::new`](super::ShmName::new),
/// [`Location::parse`](super::Location::parse), [`Region::memfd`](super::Region::memfd)).
///
/// # Example
/// ```
/// use mapipc::region::{CreateError, NameError, Region, ShmName, MAX_NAME_LEN};
/// assert_eq!(ShmName::new(""), Err(NameError::Empty));
/// match ShmName::new(&"x".repeat(300)) {
///     Err(NameError::TooLong { len, max, .. }) => assert_eq!((len, max), (300, MAX_NAME_LEN)),
///     other => panic!("expected TooLong, got {other:?}"),
/// }
/// // Operations that take a name report it inside their own error.
/// match Region::memfd("bad\0name", 16) {
///     Err(CreateError::InvalidName(NameError::Nul { name })) => assert_eq!(name, "bad\0name"),
///     other => panic!("expected Nul, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("invalid region name: the name is empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("invalid region name `{name}`: {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `/dev/shm` name contains `/`.
    #[error(
        "invalid shared-memory name `{name}`: contains '/' (a bare name lives directly in \
         /dev/shm; give a path such as `./{name}` for a file elsewhere)"
    )]
    Slash {
        /// The name.
        name: String,
    },
    /// The name is `.` or `..`.
    #[error("invalid shared-memory name `{name}`: `.` and `..` name directories, not regions")]
    Dots {
        /// The name.
        name: String,
    },
    /// The name contains `..`.
    #[error("invalid shared-memory name `{name}`: contains `..`")]
    DotDot {
        /// The name.
        name: String,
    },
    /// The name contains a NUL byte.
    #[error("invalid region name {name:?}: contains a NUL byte")]
    Nul {
        /// The name.
        name: String,
    },
    /// A bare `/dev/shm` name that is not UTF-8.
    #[error("invalid shared-memory name `{name}`: not valid UTF-8")]
    NotUtf8 {
        /// The name, lossily converted.
        name: String,
    },
}

/// Why a region's header was refused (on open and on receive). Every value is checked
/// before use: a file of random bytes gives one of these, never a crash.
///
/// # Example
/// ```
/// use mapipc::region::{HeaderError, OpenError, Region};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("r");
/// std::fs::write(&path, b"short")?;
/// match Region::open(&path) {
///     Err(OpenError::Invalid(HeaderError::TooSmall { size, .. })) => assert_eq!(size, 5),
///     other => panic!("expected TooSmall, got {other:?}"),
/// }
/// std::fs::remove_file(&path)?;
/// let total = Region::create(&path, 100)?.info()?.total_size;
/// // Someone grows the file behind the header's back.
/// std::fs::OpenOptions::new().write(true).open(&path)?.set_len(total + 4096)?;
/// match Region::open(&path) {
///     Err(OpenError::Invalid(HeaderError::SizeMismatch { header, actual, .. })) => {
///         assert_eq!((header, actual), (total, total + 4096));
///     }
///     other => panic!("expected SizeMismatch, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The file is smaller than a header.
    #[error(
        "`{file}` is {size} bytes, too small to be a mapipc region (the header alone is \
         {min} bytes): it was truncated, or it is not a region"
    )]
    TooSmall {
        /// The file.
        file: String,
        /// Its size.
        size: u64,
        /// The header size.
        min: u64,
    },
    /// The first 8 bytes are not `MAPIPCRG`.
    #[error(
        "`{file}` is not a mapipc region: it starts with b\"{}\" instead of b\"MAPIPCRG\"",
        .found.escape_ascii()
    )]
    BadMagic {
        /// The file.
        file: String,
        /// The first 8 bytes.
        found: [u8; 8],
    },
    /// The file stayed empty: its creator died before sizing it, or it is not a region.
    #[error(
        "`{file}` is empty and stayed so for {waited:?}: its creator died before sizing it, \
         or it is not a region; remove it and create it again"
    )]
    Empty {
        /// The file.
        file: String,
        /// How long we waited for a creator.
        waited: Duration,
    },
    /// The file is sized but its header was never completed.
    #[error(
        "`{file}` has no header yet and got none within {waited:?}: its creator may have \
         died while creating it; remove it and create it again"
    )]
    Uninitialised {
        /// The file.
        file: String,
        /// How long we waited for a creator.
        waited: Duration,
    },
    /// A format version this build does not read.
    #[error(
        "`{file}` is a mapipc region of format version {found}; this build reads version \
         {supported}"
    )]
    UnsupportedVersion {
        /// The file.
        file: String,
        /// The version in the header.
        found: u32,
        /// The version this build supports.
        supported: u32,
    },
    /// The header-size field is wrong for this version.
    #[error("`{file}`: the header says it is {found} bytes, version 1 headers are {expected}")]
    HeaderSize {
        /// The file.
        file: String,
        /// The header's value.
        found: u32,
        /// The right value.
        expected: u32,
    },
    /// The file size differs from the size in the header.
    #[error(
        "`{file}` is {actual} bytes but its header says {header}: someone truncated or \
         grew it"
    )]
    SizeMismatch {
        /// The file.
        file: String,
        /// The header's total size.
        header: u64,
        /// The real size.
        actual: u64,
    },
    /// The user-data range does not fit in the file.
    #[error(
        "`{file}`: user data at offset {offset}, {len} bytes long, does not fit in the \
         {total}-byte region"
    )]
    DataRange {
        /// The file.
        file: String,
        /// The header's data offset.
        offset: u64,
        /// The header's data length.
        len: u64,
        /// The file size.
        total: u64,
    },
    /// The user-data offset is not aligned.
    #[error("`{file}`: user data offset {offset} is not a multiple of {align}")]
    DataMisaligned {
        /// The file.
        file: String,
        /// The header's data offset.
        offset: u64,
        /// The required alignment.
        align: u64,
    },
    /// The peer table description is out of range.
    #[error(
        "`{file}`: invalid peer table ({slots} slots of {slot_size} bytes at offset \
         {offset}): {reason}"
    )]
    PeerTable {
        /// The file.
        file: String,
        /// Table offset.
        offset: u64,
        /// Slot count.
        slots: u32,
        /// Slot size.
        slot_size: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// Reading the header through the mapping failed (the file was truncated meanwhile).
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// Why a region could not be created ([`Region::create`](super::Region::create),
/// [`Region::anonymous`](super::Region::anonymous), [`Region::memfd`](super::Region::memfd)).
///
/// # Example
/// ```
/// use mapipc::region::{CreateError, Region, RegionOptions};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("r");
/// Region::create(&path, 16)?;
/// match Region::create(&path, 16) {
///     Err(CreateError::AlreadyExists { file }) => assert!(file.ends_with("/r")),
///     other => panic!("expected AlreadyExists, got {other:?}"),
/// }
/// match Region::create(dir.path().join("no-such-dir/r"), 16) {
///     Err(CreateError::Open { source, .. }) => {
///         assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
///     }
///     other => panic!("expected Open, got {other:?}"),
/// }
/// let err = RegionOptions::new().max_peers(0).anonymous(16).unwrap_err();
/// assert!(matches!(err, CreateError::PeerCount { count: 0, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name is invalid.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// A file (or symbolic link) already exists at the location.
    #[error("cannot create region `{file}`: it already exists (open it, or remove it first)")]
    AlreadyExists {
        /// The file.
        file: String,
    },
    /// The requested size does not fit a file or the address space.
    #[error("a region with {len} bytes of user data is too large")]
    TooLarge {
        /// Requested user-data length.
        len: u64,
    },
    /// The peer-slot count is out of range.
    #[error("a region has 1 to {max} peer slots, {count} asked")]
    PeerCount {
        /// Requested count.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// The file could not be opened or created.
    #[error("cannot create region `{file}`: {source}")]
    Open {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file could not be sized (for example the file system or `/dev/shm` is full):
    /// reported now instead of as a SIGBUS later.
    #[error("cannot allocate {size} bytes for region `{file}`: {source} ({})", allocate_hint(.file))]
    Allocate {
        /// The file.
        file: String,
        /// The size asked.
        size: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another system call failed.
    #[error("{call} failed for region `{file}`: {source}")]
    Os {
        /// The call.
        call: &'static str,
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Mapping the file failed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// Writing the header failed (someone truncated the file meanwhile).
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// Why a named region could not be opened ([`Region::open`](super::Region::open)).
///
/// # Example
/// ```
/// use mapipc::os::file::FileKind;
/// use mapipc::region::{OpenError, Region};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("r");
/// assert!(matches!(Region::open(&path), Err(OpenError::NotFound { .. })));
/// Region::create(&path, 16)?;
/// let link = dir.path().join("link");
/// std::os::unix::fs::symlink(&path, &link)?;
/// assert!(matches!(Region::open(&link), Err(OpenError::Symlink { .. })));
/// match Region::open(dir.path()) {
///     Err(OpenError::NotRegularFile { kind, .. }) => assert_eq!(kind, FileKind::Directory),
///     other => panic!("expected NotRegularFile, got {other:?}"),
/// }
/// assert!(Region::open(&path).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is invalid.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No file at the location.
    #[error("region `{file}` does not exist")]
    NotFound {
        /// The file.
        file: String,
    },
    /// The location is a symbolic link; regions are opened with `O_NOFOLLOW`.
    #[error(
        "`{file}` is a symbolic link: regions are not opened through symlinks (someone \
         could point it at another file); open the target directly"
    )]
    Symlink {
        /// The file.
        file: String,
    },
    /// The file belongs to another user.
    #[error(
        "`{file}` belongs to uid {uid}, not to us (uid {our_uid}): refusing to share memory \
         with another user's file (RegionOptions::allow_foreign_owner to accept it)"
    )]
    ForeignOwner {
        /// The file.
        file: String,
        /// Its owner.
        uid: u32,
        /// Our effective uid.
        our_uid: u32,
    },
    /// Not a regular file.
    #[error("`{file}` is {kind}, not a region")]
    NotRegularFile {
        /// The file.
        file: String,
        /// What it is.
        kind: FileKind,
    },
    /// `open` failed (for example permission denied).
    #[error("cannot open region `{file}`: {source}")]
    Open {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another system call failed.
    #[error("{call} failed for region `{file}`: {source}")]
    Os {
        /// The call.
        call: &'static str,
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Mapping the file failed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The header is not a valid region header.
    #[error(transparent)]
    Invalid(#[from] HeaderError),
}

/// Why [`Region::open_or_create`](super::Region::open_or_create) failed.
///
/// # Example
/// ```
/// use mapipc::region::{OpenOrCreateError, Region};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("r");
/// Region::open_or_create(&path, 100)?;
/// match Region::open_or_create(&path, 200) {
///     Err(OpenOrCreateError::TooSmall { len, wanted, .. }) => assert_eq!((len, wanted), (100, 200)),
///     other => panic!("expected TooSmall, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenOrCreateError {
    /// Creating failed for another reason than "it exists".
    #[error(transparent)]
    Create(#[from] CreateError),
    /// Opening the existing region failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The existing region is smaller than asked.
    #[error("region `{file}` exists with {len} bytes of user data, {wanted} were asked")]
    TooSmall {
        /// The file.
        file: String,
        /// Its user-data length.
        len: u64,
        /// The length asked.
        wanted: u64,
    },
    /// The file kept appearing and disappearing (someone removes it in a loop).
    #[error("region `{file}` was removed and created again {attempts} times while we opened it")]
    Raced {
        /// The file.
        file: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// Why [`Region::receive`](super::Region::receive) failed.
///
/// # Example
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use mapipc::region::{ReceiveError, Region};
/// let (mut a, b) = UnixStream::pair()?;
/// a.write_all(b"hello")?; // bytes, but no file descriptor
/// assert!(matches!(Region::receive(&b), Err(ReceiveError::NoFd { len: 5 })));
/// drop(a);
/// assert!(matches!(Region::receive(&b), Err(ReceiveError::Closed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// `recvmsg` failed.
    #[error("receiving a region from the socket failed: {0}")]
    Recv(#[source] io::Error),
    /// The sender closed the socket.
    #[error("the socket was closed before a region arrived")]
    Closed,
    /// A message without a file descriptor.
    #[error("a {len}-byte message arrived without a file descriptor: not a region message")]
    NoFd {
        /// Payload length.
        len: usize,
    },
    /// A file descriptor came with a payload that is not a region announcement.
    #[error("`{file}` arrived with a {len}-byte payload that is not a mapipc region message")]
    BadPayload {
        /// The received file.
        file: String,
        /// Payload length.
        len: usize,
    },
    /// The received fd is not a regular file.
    #[error("`{file}` is {kind}, not a region")]
    NotRegularFile {
        /// The received file.
        file: String,
        /// What it is.
        kind: FileKind,
    },
    /// The received file is not sealed against shrinking: its owner could truncate it and
    /// make our accesses fault.
    #[error(
        "`{file}` is not sealed against shrinking (F_SEAL_SHRINK): its sender could truncate \
         it under our mapping; refusing it (send a region made with Region::memfd)"
    )]
    NotSealed {
        /// The received file.
        file: String,
    },
    /// The file is sealed against writing (`F_SEAL_WRITE`): nobody can map it writable, so
    /// it cannot be a region (regions hold live words: generation, notifier, peer table).
    #[error(
        "`{file}` is sealed against writing (F_SEAL_WRITE): a region must be writable \
         (send a region made with Region::memfd)"
    )]
    WriteSealed {
        /// The received file.
        file: String,
    },
    /// The size announced in the message differs from the file's.
    #[error("`{file}` was announced as {announced} bytes but is {actual}")]
    SizeMismatch {
        /// The received file.
        file: String,
        /// Size in the message.
        announced: u64,
        /// Real size.
        actual: u64,
    },
    /// Another system call failed.
    #[error("{call} failed for received region `{file}`: {source}")]
    Os {
        /// The call.
        call: &'static str,
        /// The received file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Mapping the file failed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The header is not a valid region header.
    #[error(transparent)]
    Invalid(#[from] HeaderError),
}

/// Why [`Region::send_to`](super::Region::send_to) failed.
///
/// # Example
/// ```
/// use std::os::unix::net::UnixStream;
/// use mapipc::region::{Region, SendError};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("r");
/// let (a, _b) = UnixStream::pair()?;
/// let named = Region::create(&path, 16)?; // anyone may truncate a named file: not sendable
/// assert!(matches!(named.send_to(&a), Err(SendError::NotSealed { .. })));
/// Region::memfd("ok", 16)?.send_to(&a)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Only sealed regions (anonymous and memfd) can be sent; the receiver would refuse
    /// anything else.
    #[error(
        "region `{file}` is not sealed against shrinking; only regions made by \
         Region::memfd or Region::anonymous can be sent (open named regions by name)"
    )]
    NotSealed {
        /// The file.
        file: String,
    },
    /// A system call failed.
    #[error("{call} failed while sending region `{file}`: {source}")]
    Os {
        /// The call.
        call: &'static str,
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`Region::join`](super::Region::join) failed.
///
/// # Example
/// ```
/// use mapipc::region::{JoinError, Region, RegionOptions};
/// let region = RegionOptions::new().max_peers(1).anonymous(0)?;
/// let me = region.join()?;
/// match region.join() {
///     Err(JoinError::Full { slots, .. }) => assert_eq!(slots, 1),
///     other => panic!("expected Full, got {other:?}"),
/// }
/// drop(me); // frees the slot
/// region.join()?;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("r");
/// Region::create(&path, 16)?;
/// let look = RegionOptions::new().read_only(true).open(&path)?;
/// assert!(matches!(look.join(), Err(JoinError::ReadOnly { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// Every slot is held by a live peer.
    #[error("region `{file}` has all its {slots} peer slots taken by live peers")]
    Full {
        /// The file.
        file: String,
        /// Slot count.
        slots: u32,
    },
    /// Opening a fresh file description (through `/proc/self/fd`) failed.
    #[error("cannot reopen region `{file}` through /proc/self/fd to take a slot lock: {source}")]
    Reopen {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The slot lock call failed.
    #[error("locking a peer slot of region `{file}` failed: {source}")]
    Lock {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The region was opened read-only ([`RegionOptions::read_only`](super::RegionOptions::read_only)).
    #[error("region `{file}` is open read-only: joining it would write its peer table")]
    ReadOnly {
        /// The file.
        file: String,
    },
    /// Writing the slot failed (the file was truncated).
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// Why removing a region failed ([`remove`](super::remove), [`Region::remove`](super::Region::remove)).
///
/// # Example
/// ```
/// use mapipc::region::{Region, RemoveError};
/// assert!(matches!(Region::anonymous(16)?.remove(), Err(RemoveError::NotNamed { .. })));
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("r");
/// let old = Region::create(&path, 16)?;
/// std::fs::remove_file(&path)?;
/// let new = Region::create(&path, 16)?; // same name, another file
/// // `old` must not delete the region someone else made since.
/// assert!(matches!(old.remove(), Err(RemoveError::Replaced { .. })));
/// new.remove()?;
/// assert!(matches!(new.remove(), Err(RemoveError::NotFound { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// The name is invalid.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Anonymous and memfd regions have no name.
    #[error(
        "`{file}` has no name to remove: anonymous and memfd regions vanish when the last \
         process unmaps them"
    )]
    NotNamed {
        /// The region.
        file: String,
    },
    /// Nothing at the location.
    #[error("region `{file}` does not exist")]
    NotFound {
        /// The file.
        file: String,
    },
    /// The location is a symbolic link.
    #[error("`{file}` is a symbolic link, not a region: not removing it")]
    Symlink {
        /// The file.
        file: String,
    },
    /// The name now refers to another file than this region.
    #[error(
        "`{file}` now names another file (the region was removed and created again): not \
         removing it"
    )]
    Replaced {
        /// The file.
        file: String,
    },
    /// A system call failed.
    #[error("{call} failed for region `{file}`: {source}")]
    Os {
        /// The call.
        call: &'static str,
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// What to check when sizing a region's file failed: `/dev/shm` (and anonymous regions,
/// memory files) are limited by the tmpfs size or memory; other files by their file system.
fn allocate_hint(file: &str) -> &'static str {
    if file.starts_with("/dev/shm/") {
        "is /dev/shm full? it is limited by its tmpfs size"
    } else if file == "anonymous region" || file.starts_with("memfd:") {
        "memory files are limited by the memory available"
    } else {
        "is the file system full?"
    }
}
