//! Errors of the mapping layer, one type per operation.

use std::io;

use super::Protection;
use crate::os::file::{AccessMode, FileKind};

/// Why a mapping could not be created ([`MapOptions`](super::MapOptions)`::map_*`).
///
/// Every variant is detected before the `mmap` call where possible, so the message names the
/// cause instead of a bare `EINVAL`. Where the OS refused, the OS error is the
/// [`source`](std::error::Error::source).
///
/// # Example
/// ```
/// use mapipc::map::{MapError, MapOptions};
/// use mapipc::os::file::AccessMode;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("empty.bin");
/// std::fs::write(&path, b"")?;
/// match MapOptions::new().map_path(&path) {
///     Err(MapError::EmptyFile { file }) => assert!(file.contains("empty.bin")),
///     other => panic!("expected EmptyFile, got {other:?}"),
/// }
/// // A file opened read-only cannot back a shared writable mapping.
/// std::fs::write(&path, [0; 100])?;
/// let file = std::fs::File::open(&path)?;
/// match MapOptions::new().read_write().map_fd(&file) {
///     Err(MapError::AccessMode { open_mode, .. }) => assert_eq!(open_mode, AccessMode::ReadOnly),
///     other => panic!("expected AccessMode, got {other:?}"),
/// }
/// // ... but it can back a private copy-on-write one.
/// assert!(MapOptions::new().copy_on_write().map_fd(&file).is_ok());
/// assert!(matches!(MapOptions::new().len(0).map_anonymous(), Err(MapError::ZeroLength { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The file could not be opened or created.
    #[error("cannot open `{file}`: {source}")]
    Open {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is empty and no length was asked (or the offset is past its end): `mmap` of
    /// length 0 is invalid (tutorial pitfalls 4 and 5). A file that says 0 bytes because it
    /// is generated on read (`/proc`) is [`MapError::NotMappable`] instead.
    #[error(
        "`{file}` is empty (0 bytes), and a mapping needs at least one byte: size the file \
         first (MapOptions::create(size), `mapipc write --create SIZE`, or ftruncate)"
    )]
    EmptyFile {
        /// The file.
        file: String,
    },
    /// A length of zero was asked (tutorial pitfall 4).
    #[error("zero-length mapping requested for `{file}`: a mapping needs at least one byte")]
    ZeroLength {
        /// The file, or `anonymous memory`.
        file: String,
    },
    /// The file was opened with an access mode that cannot back the requested protection
    /// (tutorial pitfall 2: `O_RDONLY` with `PROT_WRITE` on a shared mapping, or `O_WRONLY`
    /// with anything, since mapped memory is always readable).
    #[error(
        "`{file}` is opened {open_mode} but the mapping asks for {requested}: open it \
         read-write (O_RDWR) for a shared writable mapping, or map it read-only or \
         copy-on-write"
    )]
    AccessMode {
        /// The file.
        file: String,
        /// How the fd was opened.
        open_mode: AccessMode,
        /// What was asked, e.g. `shared read-write access`.
        requested: String,
    },
    /// `offset` is at or past the end of the file.
    #[error("offset {offset} is at or past the end of `{file}` ({file_len} bytes)")]
    OffsetPastEnd {
        /// The file.
        file: String,
        /// Requested offset.
        offset: u64,
        /// Current file length.
        file_len: u64,
    },
    /// `offset + len` is past the end of the file (touching it would SIGBUS).
    #[error(
        "range {offset}..{end} is past the end of `{file}` ({file_len} bytes): grow the file \
         first (MapOptions::create) or map a shorter length",
        end = *offset as u128 + *len as u128
    )]
    RangePastEnd {
        /// The file.
        file: String,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: usize,
        /// Current file length.
        file_len: u64,
    },
    /// `offset + len` does not fit the address space or `off_t`.
    #[error("offset {offset} + length {len} overflows")]
    LengthOverflow {
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
    },
    /// `PROT_WRITE` without `PROT_READ` (tutorial pitfall 4).
    #[error(
        "write-only protection requested: mapped memory must also be readable, use \
         Protection::READ | Protection::WRITE"
    )]
    WriteOnly,
    /// `PROT_EXEC` without [`MapOptions::allow_exec`](super::MapOptions::allow_exec).
    #[error("executable protection requested without opting in with MapOptions::allow_exec()")]
    ExecNotAllowed,
    /// The file could not be created or extended to the requested size (for example the disk
    /// is full); reported now instead of as a SIGBUS later.
    #[error("cannot size `{file}` to {size} bytes: {source}")]
    Create {
        /// The file.
        file: String,
        /// Requested size.
        size: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Only regular files (and memfds) can be mapped.
    #[error("`{file}` is {kind}, not a regular file: only regular files can be mapped")]
    NotRegularFile {
        /// The file.
        file: String,
        /// What it is.
        kind: FileKind,
    },
    /// The file's file system cannot map it (`mmap` fails with `ENODEV`, or `EIO` for some
    /// `/proc` files such as `/proc/cpuinfo`): typically a file generated on read, as in
    /// `/proc` and `/sys` (a `/proc` file that says 0 bytes is told from an empty one by a
    /// one-page mapping probe, which reads nothing).
    #[error(
        "`{file}` cannot be memory-mapped: its file system does not support mmap (files \
         generated on read, as in /proc and /sys, cannot be mapped; read them instead)"
    )]
    NotMappable {
        /// The file.
        file: String,
        /// The OS error (`ENODEV` or `EIO`).
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error("{call} failed for `{file}`: {source}")]
    Os {
        /// The call, e.g. `mmap`.
        call: &'static str,
        /// The file, or `anonymous memory`.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Not Linux.
    #[error("memory mapping is not supported on this platform: mapipc supports Linux")]
    Unsupported,
}

/// Why a read, write, view or search through a mapping failed.
///
/// Every variant names the mapping (`file`, as [`Mmap::file_name`](super::Mmap::file_name)
/// says: the file's path and fd, a memfd's or region's name, or `anonymous memory`), so a
/// message read far from the call still says which mapping refused.
///
/// # Example
/// ```
/// use mapipc::map::{AccessError, Mmap, Protection};
/// let mut map = Mmap::anonymous(4096)?;
/// match map.read_vec(4090, 10) {
///     Err(AccessError::OutOfBounds { file, offset, len, map_len, .. }) => {
///         assert_eq!((offset, len, map_len), (4090, 10, 4096));
///         assert_eq!(file, "anonymous memory");
///     }
///     other => panic!("expected OutOfBounds, got {other:?}"),
/// }
/// assert!(matches!(map.atomic_u32(2), Err(AccessError::Misaligned { offset: 2, align: 4, .. })));
/// map.set_protection(Protection::READ)?;
/// let err = map.write_at(0, b"x").unwrap_err();
/// assert!(matches!(err, AccessError::NotWritable { protection: Protection::READ, .. }));
/// assert_eq!(
///     err.to_string(),
///     "the mapping of `anonymous memory` is not writable (protection: read)"
/// );
/// // For `std::io` callers it converts to an `io::Error` of a fitting kind.
/// let io: std::io::Error = map.read_vec(5000, 1).unwrap_err().into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The range is outside the mapping (tutorial pitfall 7, as an error instead of SIGSEGV),
    /// or outside the part of it that `bounds` names (a region's user data, a queue record's
    /// payload), which `offset` is relative to and `map_len` is the length of.
    #[error(
        "{}",
        OutOfBoundsMessage { file, offset: *offset, len: *len, map_len: *map_len, bounds: *bounds }
    )]
    OutOfBounds {
        /// The mapping's file, or `anonymous memory`.
        file: String,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: usize,
        /// The length of what `bounds` names: the mapping's, a region's user data's, a
        /// record's payload's.
        map_len: usize,
        /// What the range was checked against.
        bounds: Bounds,
    },
    /// The mapping is not readable (`PROT_NONE`, or write-only is impossible).
    #[error("the mapping of `{file}` is not readable (protection: {protection})")]
    NotReadable {
        /// The mapping's file, or `anonymous memory`.
        file: String,
        /// The mapping's protection.
        protection: Protection,
    },
    /// The mapping is not writable.
    #[error("the mapping of `{file}` is not writable (protection: {protection})")]
    NotWritable {
        /// The mapping's file, or `anonymous memory`.
        file: String,
        /// The mapping's protection.
        protection: Protection,
    },
    /// An atomic view was asked at an offset that is not a multiple of its size.
    #[error("offset {offset} into the mapping of `{file}` is not aligned to {align} bytes")]
    Misaligned {
        /// The mapping's file, or `anonymous memory`.
        file: String,
        /// Requested offset (relative to the mapping).
        offset: u64,
        /// Required alignment.
        align: usize,
    },
    /// Another process truncated the file under the mapping: pages past its new end are
    /// gone. The mapping is poisoned; map the file again.
    #[error(
        "the file under this mapping ({file}) was truncated by someone else: bytes past its \
         new end are gone; map it again"
    )]
    Truncated {
        /// The file.
        file: String,
    },
    /// The kernel raised SIGBUS for a page that is inside the file: it could not supply
    /// the page (an I/O error reading it, or no space left to allocate it, as in a sparse
    /// file on a full tmpfs). The file was not truncated. As for
    /// [`Truncated`](Self::Truncated), the page was replaced by zeros and the mapping is
    /// poisoned; map the file again once the cause is fixed.
    ///
    /// How it is told from a truncation: see the [module docs](super#sigbus).
    #[error(
        "the kernel could not supply the page at offset {file_offset} of `{file}` \
         ({cause}); the file was not truncated (it is {file_len} bytes): bytes accessed \
         there are lost; map it again"
    )]
    Fault {
        /// The file.
        file: String,
        /// The file offset of the page that faulted first (a multiple of the page size).
        file_offset: u64,
        /// The file's length when the fault was examined.
        file_len: u64,
        /// Why the kernel could not supply it.
        cause: FaultCause,
    },
}

/// What the range of an [`AccessError::OutOfBounds`] was checked against: what its offset is
/// relative to and its `map_len` the length of. The message names it.
///
/// # Example
/// ```
/// use mapipc::map::{AccessError, Bounds, Mmap};
/// let map = Mmap::anonymous(16)?;
/// let err = map.read_vec(10, 10).unwrap_err();
/// assert!(matches!(err, AccessError::OutOfBounds { bounds: Bounds::Mapping, map_len: 16, .. }));
/// assert_eq!(err.to_string(), "range 10..20 is outside the mapping of `anonymous memory` (16 bytes)");
///
/// let region = mapipc::region::Region::anonymous(8)?;
/// let err = region.read_vec(4, 8).unwrap_err();
/// assert!(matches!(err, AccessError::OutOfBounds { bounds: Bounds::RegionData, map_len: 8, .. }));
/// assert!(err.to_string().starts_with("range 4..12 is outside the 8-byte user data of the region in `"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Bounds {
    /// The whole [`Mmap`](super::Mmap) (from the file offset it was mapped at).
    Mapping,
    /// The user data of a [`Region`](crate::region::Region) (after its header).
    RegionData,
    /// The payload of a queue [`Record`](crate::queue::Record).
    RecordPayload,
    /// The payload of an appender's [`Grant`](crate::queue::Grant).
    GrantPayload,
    /// [`Grant::copy_from_slice`](crate::queue::Grant::copy_from_slice), which takes exactly
    /// the payload's length: `len` is the length given, `offset` 0.
    GrantLength,
}

/// The message of [`AccessError::OutOfBounds`].
struct OutOfBoundsMessage<'a> {
    file: &'a str,
    offset: u64,
    len: usize,
    map_len: usize,
    bounds: Bounds,
}

impl std::fmt::Display for OutOfBoundsMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let OutOfBoundsMessage {
            file,
            offset,
            len,
            map_len,
            bounds,
        } = *self;
        let end = offset as u128 + len as u128;
        let part = match bounds {
            Bounds::Mapping => {
                return write!(
                    f,
                    "range {offset}..{end} is outside the mapping of `{file}` ({map_len} bytes)"
                )
            }
            Bounds::GrantLength => {
                return write!(
                    f,
                    "{len} bytes given for the {map_len}-byte payload of the grant in `{file}`: \
                     copy_from_slice takes exactly its length"
                )
            }
            Bounds::RegionData => "user data of the region",
            Bounds::RecordPayload => "record payload",
            Bounds::GrantPayload => "payload of the grant",
        };
        write!(
            f,
            "range {offset}..{end} is outside the {map_len}-byte {part} in `{file}`"
        )
    }
}

/// Why the kernel could not supply a page of a file mapping ([`AccessError::Fault`]).
///
/// # Example
/// ```
/// use mapipc::map::FaultCause;
/// assert_eq!(FaultCause::Io.to_string(), "an I/O error reading it");
/// assert_eq!(FaultCause::NoSpace.to_string(), "no space left on its file system to allocate it");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultCause {
    /// Reading the page from the file failed (`pread` of it fails too, usually with `EIO`:
    /// a bad disk, a lost network file system).
    Io,
    /// The file system has no space (or quota) left for the page: a page of a hole is
    /// allocated when first touched (a write, or any access on tmpfs).
    NoSpace,
}

impl std::fmt::Display for FaultCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultCause::Io => "an I/O error reading it",
            FaultCause::NoSpace => "no space left on its file system to allocate it",
        })
    }
}

impl From<AccessError> for io::Error {
    fn from(e: AccessError) -> io::Error {
        let kind = match e {
            AccessError::OutOfBounds { .. } | AccessError::Misaligned { .. } => {
                io::ErrorKind::InvalidInput
            }
            AccessError::NotReadable { .. } | AccessError::NotWritable { .. } => {
                io::ErrorKind::PermissionDenied
            }
            AccessError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            AccessError::Fault { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Why [`Mmap::flush`](super::Mmap::flush) (msync) failed.
///
/// # Example
/// ```
/// use mapipc::map::{AccessError, FlushError, MapOptions};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// let map = MapOptions::new().read_write().create(4096).map_path(&path)?;
/// map.flush_range(0, 4096)?;
/// match map.flush_range(4000, 200) {
///     Err(FlushError::Access(AccessError::OutOfBounds { .. })) => {}
///     other => panic!("expected OutOfBounds, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The range is outside the mapping, or the file was truncated under it
    /// ([`AccessError::Truncated`]): bytes written past its new end are lost; or a page
    /// could not be supplied ([`AccessError::Fault`]): bytes written to it are lost.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// `msync` failed (for example an I/O error writing back to disk).
    #[error("msync failed for `{file}`: {source}")]
    Os {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`Mmap::advise`](super::Mmap::advise) failed.
///
/// # Example
/// ```
/// use mapipc::map::{Advice, AdviseError, MapOptions};
/// let private = MapOptions::new().len(4096).private().map_anonymous()?;
/// private.write_at(0, b"only here")?;
/// // Dropping the pages of a private mapping would lose what was written: refused.
/// assert!(matches!(private.advise(Advice::DontNeed), Err(AdviseError::WouldDiscard)));
/// assert_eq!(private.read_vec(0, 9)?, b"only here");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdviseError {
    /// The range is outside the mapping.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// `DontNeed` on a private mapping would silently throw away its private changes.
    #[error(
        "MADV_DONTNEED on a private (copy-on-write) mapping would discard its changes; \
         refused"
    )]
    WouldDiscard,
    /// `madvise` failed (for example `HugePage` on a kernel without transparent huge pages).
    #[error("madvise({advice:?}) failed for `{file}`: {source}")]
    Os {
        /// The file, or `anonymous memory`.
        file: String,
        /// The advice.
        advice: super::Advice,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`Mmap::lock`](super::Mmap::lock) or `unlock` failed.
///
/// # Example
/// Whether `mlock` succeeds depends on `RLIMIT_MEMLOCK`; a caller handles both outcomes:
/// ```
/// use mapipc::map::{LockError, Mmap};
/// let map = Mmap::anonymous(4096)?;
/// match map.lock() {
///     Ok(()) => map.unlock()?,
///     Err(LockError::Os { call, len, source, .. }) => {
///         assert_eq!((call, len), ("mlock", 4096));
///         eprintln!("running unlocked: {source}");
///     }
///     Err(e) => return Err(e.into()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The mapping is poisoned ([`AccessError::Truncated`] or [`AccessError::Fault`], as
    /// its accesses say: nothing was locked), or `mlock` found the file truncated under it:
    /// the pages past its new end cannot be locked (`mlock` says `ENOMEM`, which is not
    /// about `RLIMIT_MEMLOCK` then).
    #[error(transparent)]
    Access(#[from] AccessError),
    /// `mlock` could not fault in a page of the file that is still inside it (it said
    /// `ENOMEM` or `EAGAIN`, with `RLIMIT_MEMLOCK` not the cause): its file system has no
    /// space left for a hole of the file (on tmpfs even reading a hole allocates it), or
    /// reading the page fails. Diagnosed as for a fault ([`AccessError::Fault`], see the
    /// [module docs](super#sigbus)), but nothing was lost: the mapping is not poisoned and
    /// nothing stays locked. Touching that page would fault, though.
    #[error(
        "{}",
        LockFaultMessage {
            file, len: *len, file_offset: *file_offset, file_len: *file_len, cause: *cause
        }
    )]
    Fault {
        /// The file.
        file: String,
        /// Bytes asked to lock.
        len: usize,
        /// The file offset of the first page that could not be locked (a multiple of the
        /// page size).
        file_offset: u64,
        /// The file's length when it was examined.
        file_len: u64,
        /// Why the kernel could not supply the page.
        cause: FaultCause,
    },
    /// `mlock`/`munlock` failed. `EPERM`/`ENOMEM` usually mean `RLIMIT_MEMLOCK` is too low
    /// (see `ulimit -l`); an `ENOMEM` the limit did not cause is
    /// [`Fault`](Self::Fault) or [`Access`](Self::Access) when the file says why.
    #[error(
        "{call} of {len} bytes of `{file}` failed: {source} (check `ulimit -l`, RLIMIT_MEMLOCK)"
    )]
    Os {
        /// The file, or `anonymous memory`.
        file: String,
        /// `mlock` or `munlock`.
        call: &'static str,
        /// Bytes.
        len: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The message of [`LockError::Fault`].
struct LockFaultMessage<'a> {
    file: &'a str,
    len: usize,
    file_offset: u64,
    file_len: u64,
    cause: FaultCause,
}

impl std::fmt::Display for LockFaultMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let LockFaultMessage {
            file,
            len,
            file_offset,
            file_len,
            cause,
        } = *self;
        write!(
            f,
            "mlock of {len} bytes of `{file}` failed at the page at offset {file_offset} \
             (the file is {file_len} bytes): "
        )?;
        match cause {
            FaultCause::NoSpace => f.write_str(
                "it is a hole of the file, and its file system has no space left to \
                 allocate it (free space there, or allocate the file's blocks before \
                 mapping it, as MapOptions::create does)",
            )?,
            FaultCause::Io => f.write_str("the kernel cannot read it (an I/O error)")?,
        }
        f.write_str("; nothing was locked, nothing was lost")
    }
}

/// Why [`Mmap::grow`](super::Mmap::grow) failed. The mapping is unchanged on error.
///
/// # Example
/// ```
/// use mapipc::map::{GrowError, MapOptions, Mmap};
/// let mut anon = Mmap::anonymous(4096)?;
/// assert!(matches!(anon.grow(8192), Err(GrowError::Anonymous)));
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// let mut map = MapOptions::new().read_write().create(8192).map_path(&path)?;
/// match map.grow(4096) {
///     Err(GrowError::Shrink { len, new_len }) => assert_eq!((len, new_len), (8192, 4096)),
///     other => panic!("expected Shrink, got {other:?}"),
/// }
/// assert_eq!(map.len(), 8192); // unchanged
/// // A read-only mapping never extends its file, even through a read-write fd.
/// let file = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
/// let mut ro = MapOptions::new().map_fd(&file)?;
/// assert!(matches!(ro.grow(16384), Err(GrowError::ReadOnlyMapping { .. })));
/// assert_eq!(std::fs::metadata(&path)?.len(), 8192);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrowError {
    /// Anonymous mappings have no file to extend.
    #[error("an anonymous mapping cannot grow; create a larger one")]
    Anonymous,
    /// `new_len` is smaller than the current length.
    #[error("grow to {new_len} bytes would shrink the mapping of {len} bytes")]
    Shrink {
        /// Current length.
        len: usize,
        /// Requested length.
        new_len: usize,
    },
    /// The file must be extended but was opened read-only. A read-only mapping is refused
    /// earlier ([`GrowError::ReadOnlyMapping`]) and a writable shared one needs a read-write
    /// fd to exist, so this is a last check before `fallocate`, not an expected outcome.
    #[error("`{file}` must grow to {size} bytes but is opened read-only")]
    ReadOnlyFile {
        /// The file.
        file: String,
        /// Needed file size.
        size: u64,
    },
    /// A private (copy-on-write) mapping would have to extend its file, which it never
    /// changes: grow the file first (through a shared mapping or `set_len`), or map a new
    /// private copy of anonymous memory.
    #[error(
        "`{file}` is {file_len} bytes and would have to grow to {size}, but this mapping is \
         private (copy-on-write) and never changes its file: extend the file first"
    )]
    Private {
        /// The file.
        file: String,
        /// Needed file size.
        size: u64,
        /// The file's current size.
        file_len: u64,
    },
    /// A shared mapping without write protection (read-only, or `PROT_NONE`) would have to
    /// extend its file: a mapping asked to be read-only never changes its file, even when
    /// its fd was opened read-write. Extend the file first (`set_len`, or through a writable
    /// mapping), or map it read-write.
    #[error(
        "`{file}` is {file_len} bytes and would have to grow to {size}, but this mapping is \
         not writable (protection: {protection}) and never changes its file: extend the file \
         first or map it read-write"
    )]
    ReadOnlyMapping {
        /// The file.
        file: String,
        /// Needed file size.
        size: u64,
        /// The file's current size.
        file_len: u64,
        /// The mapping's protection.
        protection: Protection,
    },
    /// The mapping is poisoned (by a truncation, or a page the kernel could not supply), or
    /// the file is now shorter than the mapping (another process truncated it): extending
    /// it again would not bring the bytes back.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Extending the file failed (for example the disk is full, or the file is sealed).
    #[error("cannot extend `{file}` to {size} bytes: {source}")]
    Extend {
        /// The file.
        file: String,
        /// Needed file size.
        size: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `offset + new_len` overflows.
    #[error("length {new_len} overflows")]
    Overflow {
        /// Requested length.
        new_len: usize,
    },
    /// `mremap` failed (for example no room in the address space, `RLIMIT_AS`). A file this
    /// call extended gets its old length back (unless someone else resized it meanwhile).
    #[error("mremap of `{file}` to {new_len} bytes failed: {source}")]
    Remap {
        /// The file.
        file: String,
        /// Requested length.
        new_len: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`Mmap::set_protection`](super::Mmap::set_protection) failed.
///
/// # Example
/// ```
/// use mapipc::map::{MapError, Mmap, Protection, ProtectError};
/// let mut map = Mmap::anonymous(4096)?;
/// match map.set_protection(Protection::WRITE) {
///     Err(ProtectError::Invalid(MapError::WriteOnly)) => {}
///     other => panic!("expected WriteOnly, got {other:?}"),
/// }
/// assert_eq!(map.protection(), Protection::READ_WRITE); // unchanged
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectError {
    /// Same validation as at creation (write-only, exec without opt-in, access mode).
    #[error(transparent)]
    Invalid(#[from] MapError),
    /// `mprotect` (or reading the fd's access mode) failed.
    #[error("{call} failed for `{file}`: {source}")]
    Os {
        /// The call, `mprotect` or `fcntl(F_GETFL)`.
        call: &'static str,
        /// The file, or `anonymous memory`.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
