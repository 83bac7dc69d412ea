//! Safe memory mappings: files (shared, read-only, copy-on-write) and anonymous memory.
//!
//! [`MapOptions`] builds a [`Mmap`]. Every pitfall of raw `mmap` is a guarantee here:
//!
//! | raw `mmap` pitfall | mapipc |
//! |---|---|
//! | `munmap` needs the original base and length | [`Mmap`] owns both; drop unmaps |
//! | `O_RDONLY` fd + `PROT_WRITE` fails with `EACCES` | [`MapError::AccessMode`] names the file, its open mode and the request |
//! | offset must be a multiple of the page size | any offset; alignment is handled inside |
//! | length 0 fails | [`MapError::ZeroLength`] / [`MapError::EmptyFile`] say how to size the file |
//! | a new file must be extended first | [`MapOptions::create`] allocates it (`fallocate`) |
//! | closing the fd keeps the mapping | the mapping owns what it needs; closing yours is fine |
//! | touching past the end crashes | every access is bounds-checked: [`AccessError::OutOfBounds`] |
//! | another process truncates the file: SIGBUS | [`AccessError::Truncated`], the process lives |
//! | the kernel cannot supply a page (I/O error, full tmpfs): SIGBUS | [`AccessError::Fault`], the process lives |
//!
//! # Soundness
//!
//! A mapping that another process can write (any `MAP_SHARED` mapping, and a `MAP_PRIVATE`
//! file mapping whose pages were not yet copied) can change under us at any time. Rust
//! references promise the opposite: the bytes behind a `&[u8]` do not change while it lives,
//! and nothing else reads the bytes behind a `&mut [u8]`. Handing such a reference out from a
//! safe function would therefore be undefined behaviour, so this module never does:
//!
//! - the safe API copies in and out through raw pointers ([`Mmap::read_at`],
//!   [`Mmap::write_at`], [`Mmap::read_pod`], the [`Cursor`]), like memory-mapped device
//!   registers: the compiler assumes nothing about memory it only reaches through raw
//!   pointers, every bit pattern is a valid `u8`, and a concurrent writer can only make the
//!   copied bytes stale or torn, never invalid. Code above (headers, rings) validates what it
//!   copied before trusting it;
//! - atomics are the sanctioned way to share a word: [`Mmap::atomic_u32`] and
//!   [`Mmap::atomic_u64`] hand out `&AtomicU32`/`&AtomicU64` at aligned offsets;
//! - borrowing slices exist as `unsafe fn` ([`Mmap::as_slice`], [`Mmap::as_mut_slice`]) whose
//!   `# Safety` sections state the obligations, and safely ([`Mmap::try_as_slice`],
//!   [`Mmap::try_as_mut_slice`]) only where nobody else can write: private anonymous memory
//!   (not shared even across `fork`, which copies it), and memfds sealed against writing and
//!   shrinking. A shared borrow additionally needs a read-only mapping, since the safe
//!   writers of this module take `&self`.
//!
//! # SIGBUS
//!
//! A truncated file raises SIGBUS when a page past the new end is touched; the handler in
//! `os::sigbus` replaces that page with a zero page and records the fault (and its address),
//! and the access that touched it returns [`AccessError::Truncated`] after its copy. From
//! then on the mapping is poisoned ([`Mmap::is_poisoned`]): every access returns that error.
//! Operations that touch no page compare the file's size with the mapping instead:
//! [`Mmap::flush`] (bytes written past the new end are lost, which `msync` does not say),
//! [`Mmap::grow`] (extending the file back would make the lost bytes read as zeros) and
//! [`Mmap::lock`] (`mlock` cannot fault in the pages past the new end) also return
//! `Truncated`, and poison the mapping.
//!
//! The methods that reach the mapping's pages by system call rather than by a checked copy
//! follow one rule. Those whose success would vouch for the bytes, [`Mmap::flush`]
//! (written back), [`Mmap::grow`] (kept) and [`Mmap::lock`] (resident), return a poisoned
//! mapping's error before making their call, as every access does. Those that only hint or
//! release, [`Mmap::advise`], [`Mmap::unlock`], [`Mmap::set_protection`] and drop, work on a
//! poisoned mapping as on any other (the zero pages standing in for lost ones hold nothing
//! that is kept), so tidying up never fails because of it.
//!
//! The kernel raises the same SIGBUS (`BUS_ADRERR`) for a page inside the file that it
//! cannot supply: an I/O error reading it, or no space to allocate it (a hole of a sparse
//! file on a full file system or tmpfs, where even a read allocates). The page is replaced
//! and the mapping poisoned the same way, but the error is [`AccessError::Fault`], naming
//! the page's file offset and a [`FaultCause`]. The hot path does not change: on the first
//! error after the fault (never in the handler) the mapping looks at the page that faulted
//! first, and
//!
//! 1. if it is at or past the file's end now (`fstat`), the error is `Truncated`;
//! 2. otherwise it asks the kernel again for that page in ways a truncation cannot make fail,
//!    since a truncation undone meanwhile (the file extended again) also leaves the page
//!    inside the file: `pread` of it (an I/O error: [`FaultCause::Io`]), then
//!    `fallocate(FALLOC_FL_KEEP_SIZE)` of the page for a shared writable mapping (which
//!    allocates what the write would have) or `fstatfs` for the others
//!    (`ENOSPC`/`EDQUOT`, or no space available: [`FaultCause::NoSpace`]);
//! 3. if nothing fails, the cause went away, or it was a truncation undone: `Truncated`, as
//!    before (the bytes touched are lost either way).
//!
//! The diagnosis is made once and every later access of the poisoned mapping repeats it.
//! [`Mmap::lock`] asks the same of a page `mlock` could not fault in (no SIGBUS then, but
//! an `ENOMEM` that reads as `RLIMIT_MEMLOCK`), once `mlock2(MLOCK_ONFAULT)` showed that
//! the limit was not the cause: [`LockError::Fault`], without poisoning the mapping.
//! Anonymous mappings are not registered with the handler: shared anonymous memory lives
//! on the kernel's internal tmpfs, which has no size limit, so running out of memory there
//! is the OOM killer's business, not a SIGBUS. Mappings of memfds are registered like files
//! and diagnosed the same way, except those sealed against shrinking, which cannot be
//! truncated and are not registered: a SIGBUS there still ends the process.
//!
//! # Example
//! ```
//! use mapipc::map::MapOptions;
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("data.bin");
//! // Create a 4 KiB file and map it shared read-write: writes reach the file.
//! let map = MapOptions::new().read_write().create(4096).map_path(&path)?;
//! map.write_at(1000, b"hello")?;
//! map.flush()?;
//! let mut buf = [0u8; 5];
//! map.read_at(1000, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//! // Any offset works, even one that is not a multiple of the page size.
//! let tail = MapOptions::new().offset(1000).len(5).map_path(&path)?;
//! assert_eq!(tail.read_vec(0, 5)?, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(unsafe_code)]

mod cursor;
mod error;

use std::ffi::c_void;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

pub use cursor::Cursor;
pub use error::{
    AccessError, AdviseError, Bounds, FaultCause, FlushError, GrowError, LockError, MapError,
    ProtectError,
};

use crate::os;
use crate::os::file::{AccessMode, FileKind, OpenHow};

bitflags::bitflags! {
    /// Memory protection: any combination of read, write and execute, or none
    /// (`PROT_NONE`, [`Protection::NONE`]).
    ///
    /// Write without read is refused ([`MapError::WriteOnly`]); execute needs
    /// [`MapOptions::allow_exec`].
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{MapError, MapOptions, Mmap, Protection};
    /// let rw = Protection::READ | Protection::WRITE;
    /// assert_eq!(rw, Protection::READ_WRITE);
    /// assert!(rw.contains(Protection::READ));
    /// assert_eq!(rw.to_string(), "read-write");
    /// assert_eq!(Protection::NONE.to_string(), "none");
    ///
    /// let mut map = Mmap::anonymous(4096)?; // anonymous memory starts read-write
    /// map.set_protection(Protection::READ)?;
    /// assert_eq!(map.protection(), Protection::READ);
    /// let exec = MapOptions::new().len(4096).protection(Protection::READ | Protection::EXEC).map_anonymous();
    /// assert!(matches!(exec, Err(MapError::ExecNotAllowed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Protection: u8 {
        /// `PROT_READ`
        const READ = 1;
        /// `PROT_WRITE`
        const WRITE = 2;
        /// `PROT_EXEC`
        const EXEC = 4;
    }
}

impl Protection {
    /// `PROT_NONE`: no access at all (address space reservation, guard pages).
    pub const NONE: Protection = Protection::empty();
    /// `PROT_READ | PROT_WRITE`.
    pub const READ_WRITE: Protection = Protection::READ.union(Protection::WRITE);

    fn to_os(self) -> os::mem::Prot {
        os::mem::Prot {
            read: self.contains(Protection::READ),
            write: self.contains(Protection::WRITE),
            exec: self.contains(Protection::EXEC),
        }
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        if self.contains(Protection::READ) {
            parts.push("read");
        }
        if self.contains(Protection::WRITE) {
            parts.push("write");
        }
        if self.contains(Protection::EXEC) {
            parts.push("exec");
        }
        f.write_str(&parts.join("-"))
    }
}

/// Whether writes are shared with the file and other processes (`MAP_SHARED`) or private
/// copy-on-write (`MAP_PRIVATE`).
///
/// # Example
/// ```
/// use mapipc::map::{MapOptions, Sharing};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// let shared = MapOptions::new().read_write().create(4096).map_path(&path)?;
/// let private = MapOptions::new().sharing(Sharing::Private).read_write().private().map_path(&path)?;
/// assert_eq!((shared.sharing(), private.sharing()), (Sharing::Shared, Sharing::Private));
/// shared.write_at(0, b"seen by all")?;
/// private.write_at(0, b"mine")?; // copies the page: later shared writes to it are not seen
/// shared.write_at(0, b"SEEN")?;
/// assert_eq!(std::fs::read(&path)?[..11], *b"SEEN by all");
/// assert_eq!(private.read_vec(0, 11)?, b"mine by all");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sharing {
    /// `MAP_SHARED`: writes reach the file (or, for anonymous memory, processes forked after
    /// the mapping was made).
    Shared,
    /// `MAP_PRIVATE`: writes go to private copies of the pages; the file never changes.
    Private,
}

/// Access-pattern advice for [`Mmap::advise`] (`madvise`).
///
/// Advice never changes what a read returns; it only tells the kernel what to prefetch or
/// drop.
///
/// # Example
/// ```
/// use mapipc::map::{Advice, MapOptions};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// let map = MapOptions::new().read_write().create(1 << 20).map_path(&path)?;
/// map.write_at(0, b"kept")?;
/// map.advise(Advice::Sequential)?;
/// map.advise_range(Advice::DontNeed, 0, 4096)?; // shared: re-read from the file
/// assert_eq!(map.read_vec(0, 4)?, b"kept");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// `MADV_NORMAL`: no special treatment.
    Normal,
    /// `MADV_SEQUENTIAL`: read ahead aggressively, free pages after use.
    Sequential,
    /// `MADV_RANDOM`: do not read ahead.
    Random,
    /// `MADV_WILLNEED`: start reading the pages in now.
    WillNeed,
    /// `MADV_DONTNEED`: drop the pages from this process; a shared mapping re-reads them from
    /// the file (no data changes). Refused on private mappings, where it would discard
    /// private changes ([`AdviseError::WouldDiscard`]).
    DontNeed,
    /// `MADV_HUGEPAGE`: back with transparent huge pages where possible.
    HugePage,
    /// `MADV_NOHUGEPAGE`: do not use transparent huge pages.
    NoHugePage,
}

/// A builder for [`Mmap`], in the style of `std::fs::OpenOptions`.
///
/// Defaults: read-only, shared, offset 0, the rest of the file, no populate, no create,
/// mode `0o600` for created files.
///
/// # Example
/// ```
/// use mapipc::map::{MapOptions, Protection, Sharing};
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("f");
/// # std::fs::write(&path, vec![7u8; 10_000]).unwrap();
/// // Copy-on-write: writes stay in this process, the file is unchanged.
/// let map = MapOptions::new().copy_on_write().offset(4097).len(100).map_path(&path)?;
/// map.write_at(0, b"private")?;
/// assert_eq!(std::fs::read(&path)?[4097], 7);
/// assert_eq!(map.protection(), Protection::READ_WRITE);
/// assert_eq!(map.sharing(), Sharing::Private);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MapOptions {
    offset: u64,
    len: Option<usize>,
    prot: Protection,
    sharing: Sharing,
    allow_exec: bool,
    populate: bool,
    create: Option<u64>,
    mode: u32,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            offset: 0,
            len: None,
            prot: Protection::READ,
            sharing: Sharing::Shared,
            allow_exec: false,
            populate: false,
            create: None,
            mode: 0o600,
        }
    }
}

impl MapOptions {
    /// Default options: a read-only shared mapping of the whole file.
    pub fn new() -> MapOptions {
        MapOptions::default()
    }

    /// Starts the mapping at byte `offset` of the file. Any offset works: the page alignment
    /// `mmap` needs is handled inside and never seen.
    pub fn offset(&mut self, offset: u64) -> &mut Self {
        self.offset = offset;
        self
    }

    /// Maps `len` bytes (default: from the offset to the end of the file).
    pub fn len(&mut self, len: usize) -> &mut Self {
        self.len = Some(len);
        self
    }

    /// Read-only, shared (`PROT_READ`, `MAP_SHARED`).
    pub fn read_only(&mut self) -> &mut Self {
        self.prot = Protection::READ;
        self.sharing = Sharing::Shared;
        self
    }

    /// Read-write, shared (`PROT_READ|PROT_WRITE`, `MAP_SHARED`): writes reach the file and
    /// every process that maps it. Needs a file opened read-write.
    pub fn read_write(&mut self) -> &mut Self {
        self.prot = Protection::READ_WRITE;
        self.sharing = Sharing::Shared;
        self
    }

    /// Read-write, private copy-on-write (`MAP_PRIVATE`): writes stay in this process and
    /// never reach the file. A read-only file is enough.
    pub fn copy_on_write(&mut self) -> &mut Self {
        self.prot = Protection::READ_WRITE;
        self.sharing = Sharing::Private;
        self
    }

    /// Sets the protection explicitly. [`Protection::EXEC`] also needs
    /// [`allow_exec`](Self::allow_exec).
    pub fn protection(&mut self, prot: Protection) -> &mut Self {
        self.prot = prot;
        self
    }

    /// Sets the sharing explicitly.
    pub fn sharing(&mut self, sharing: Sharing) -> &mut Self {
        self.sharing = sharing;
        self
    }

    /// Private (`MAP_PRIVATE`), keeping the protection.
    pub fn private(&mut self) -> &mut Self {
        self.sharing = Sharing::Private;
        self
    }

    /// Opts in to executable mappings. Without it, [`Protection::EXEC`] is refused with
    /// [`MapError::ExecNotAllowed`].
    pub fn allow_exec(&mut self) -> &mut Self {
        self.allow_exec = true;
        self
    }

    /// Prefaults the pages (`MAP_POPULATE`): no page faults on first touch.
    pub fn populate(&mut self) -> &mut Self {
        self.populate = true;
        self
    }

    /// Creates the file if it is missing (mode [`mode`](Self::mode), default `0o600`) and
    /// makes it at least `size` bytes with its blocks allocated (`fallocate`, falling back
    /// to `ftruncate` where unsupported): a full disk is an error now, not a SIGBUS later.
    /// Opens the file read-write. When that fails, nothing is left behind: a file it created
    /// is removed, and a file it was extending gets its old length back (and its disk space
    /// with it).
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{MapError, MapOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("new.bin");
    /// let map = MapOptions::new().read_write().create(4096).map_path(&path)?;
    /// assert_eq!(map.len(), 4096);
    /// // Larger than any file may be: refused, and no file is left.
    /// let big = dir.path().join("big.bin");
    /// let err = MapOptions::new().create(i64::MAX as u64).map_path(&big).unwrap_err();
    /// assert!(matches!(err, MapError::Create { .. }));
    /// assert!(!big.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(&mut self, size: u64) -> &mut Self {
        self.create = Some(size);
        self
    }

    /// Permission bits for files [`create`](Self::create) makes (default `0o600`).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    fn validate_prot(&self) -> Result<(), MapError> {
        if self.prot.contains(Protection::WRITE) && !self.prot.contains(Protection::READ) {
            return Err(MapError::WriteOnly);
        }
        if self.prot.contains(Protection::EXEC) && !self.allow_exec {
            return Err(MapError::ExecNotAllowed);
        }
        Ok(())
    }

    fn needs_rdwr_fd(&self) -> bool {
        self.create.is_some()
            || (self.prot.contains(Protection::WRITE) && self.sharing == Sharing::Shared)
    }

    /// Opens `path` (read-write when the mapping or [`create`](Self::create) needs it) and maps
    /// it. The fd is closed when this returns; the mapping keeps what it needs.
    ///
    /// # Errors
    /// Every [`MapError`] variant but `Unsupported` on Linux; see [`map_fd`](Self::map_fd).
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{MapError, MapOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("new.bin");
    /// std::fs::File::create(&path)?; // empty
    /// let err = MapOptions::new().map_path(&path).unwrap_err();
    /// assert!(matches!(err, MapError::EmptyFile { .. }));
    /// assert!(err.to_string().contains("is empty"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_path(&self, path: impl AsRef<Path>) -> Result<Mmap, MapError> {
        if !os::SUPPORTED {
            return Err(MapError::Unsupported);
        }
        let path = path.as_ref();
        self.validate_prot()?;
        let how = OpenHow {
            write: self.needs_rdwr_fd(),
            mode: self.mode,
            // A FIFO must not hang the open; fstat then refuses it as not regular.
            nonblock: true,
            ..OpenHow::default()
        };
        let open_err = |source: std::io::Error| {
            // Opening a socket fails with ENXIO ("No such device or address"), a directory
            // opened for writing with EISDIR: say what the file is instead.
            match os::file::stat(path) {
                Ok(info) if info.kind != FileKind::Regular => MapError::NotRegularFile {
                    file: path.display().to_string(),
                    kind: info.kind,
                },
                _ => MapError::Open {
                    file: path.display().to_string(),
                    source,
                },
            }
        };
        // With `create`, a file we create is removed again if it cannot be sized or mapped:
        // a refused create leaves nothing behind. (Exclusive first, to know whether it is
        // ours; a file that appears meanwhile is opened as an existing one.)
        let (fd, created) = if self.create.is_some() {
            let excl = OpenHow {
                create: true,
                exclusive: true,
                ..how
            };
            match os::file::open(path, excl) {
                Ok(fd) => (fd, true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let shared = OpenHow {
                        create: true,
                        ..how
                    };
                    (os::file::open(path, shared).map_err(open_err)?, false)
                }
                Err(e) => return Err(open_err(e)),
            }
        } else {
            (os::file::open(path, how).map_err(open_err)?, false)
        };
        let mapped = self.map_inner(fd.as_fd(), path.display().to_string());
        if mapped.is_err() && created {
            let _ = os::file::unlink(path);
        }
        mapped
    }

    /// Maps an open file (anything that is `AsFd`: `File`, `OwnedFd`, a memfd). The fd's
    /// access mode must allow the mapping: any readable fd for read-only and copy-on-write,
    /// a read-write fd for shared writable mappings and for [`create`](Self::create).
    ///
    /// The mapping does not borrow the fd: it duplicates it for [`Mmap::grow`], and stays
    /// valid after the caller closes theirs (tutorial pitfall 6).
    ///
    /// # Errors
    /// [`MapError::AccessMode`] when the fd's mode does not fit (tutorial pitfall 2),
    /// [`MapError::EmptyFile`], [`MapError::ZeroLength`], [`MapError::OffsetPastEnd`],
    /// [`MapError::RangePastEnd`], [`MapError::LengthOverflow`], [`MapError::WriteOnly`],
    /// [`MapError::ExecNotAllowed`], [`MapError::NotRegularFile`], [`MapError::Create`],
    /// [`MapError::NotMappable`] (a file system without mmap, such as `/sys`),
    /// [`MapError::Os`].
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{MapError, MapOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("f");
    /// # std::fs::write(&path, b"0123456789").unwrap();
    /// let ro = std::fs::File::open(&path)?; // O_RDONLY
    /// // Shared read-write needs O_RDWR: a clear error, not EACCES.
    /// let err = MapOptions::new().read_write().map_fd(&ro).unwrap_err();
    /// assert!(matches!(err, MapError::AccessMode { .. }));
    /// // Copy-on-write is fine on a read-only fd.
    /// let map = MapOptions::new().copy_on_write().map_fd(&ro)?;
    /// drop(ro); // closing the fd leaves the mapping alive
    /// assert_eq!(map.read_vec(3, 4)?, b"3456");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_fd(&self, fd: impl AsFd) -> Result<Mmap, MapError> {
        self.validate_prot()?;
        let fd = fd.as_fd();
        let name = os::file::fd_name(fd);
        self.map_inner(fd, name)
    }

    /// As [`map_fd`](Self::map_fd), naming the file `file` in errors (and in the mapping's
    /// later errors) rather than by what `/proc/self/fd` says: the caller knows the name the
    /// user gave, which `/proc` resolves into an absolute path with `(fd N)` after it.
    pub(crate) fn map_fd_named(&self, fd: BorrowedFd<'_>, file: &str) -> Result<Mmap, MapError> {
        self.validate_prot()?;
        self.map_inner(fd, file.to_string())
    }

    fn map_inner(&self, fd: BorrowedFd<'_>, file: String) -> Result<Mmap, MapError> {
        if !os::SUPPORTED {
            return Err(MapError::Unsupported);
        }
        let os_err = |call: &'static str, file: &str| {
            let file = file.to_string();
            move |source| MapError::Os { call, file, source }
        };
        let info = os::file::fstat(fd).map_err(os_err("fstat", &file))?;
        if info.kind != FileKind::Regular {
            return Err(MapError::NotRegularFile {
                file,
                kind: info.kind,
            });
        }
        let mode = os::file::access_mode(fd).map_err(os_err("fcntl(F_GETFL)", &file))?;
        let requested = self.describe_request();
        match mode {
            AccessMode::WriteOnly | AccessMode::PathOnly => {
                return Err(MapError::AccessMode {
                    file,
                    open_mode: mode,
                    requested,
                })
            }
            AccessMode::ReadOnly if self.needs_rdwr_fd() => {
                return Err(MapError::AccessMode {
                    file,
                    open_mode: mode,
                    requested,
                })
            }
            _ => {}
        }
        let mut file_len = info.size;
        if let Some(size) = self.create {
            if size > i64::MAX as u64 {
                return Err(MapError::LengthOverflow {
                    offset: 0,
                    len: size,
                });
            }
            if file_len < size {
                os::file::allocate(fd, size).map_err(|source| MapError::Create {
                    file: file.clone(),
                    size,
                    source,
                })?;
                file_len = size;
            }
        }
        let mapped = self.map_sized(fd, file, file_len);
        if mapped.is_err() && file_len != info.size {
            // We extended the file for a mapping that was then refused (an offset past the
            // new size, a zero length, a failed `mmap`): give it its old length back, and its
            // disk space with it, as `create` promises. (Same assumption as `allocate`'s own
            // clean-up: nobody else resizes the file at this moment.)
            let _ = os::file::set_len(fd, info.size);
        }
        mapped
    }

    /// The part of [`map_inner`](Self::map_inner) after the file has its final size
    /// `file_len`: the range checks, `mmap` and the SIGBUS registration.
    fn map_sized(&self, fd: BorrowedFd<'_>, file: String, file_len: u64) -> Result<Mmap, MapError> {
        let os_err = |call: &'static str, file: &str| {
            let file = file.to_string();
            move |source| MapError::Os { call, file, source }
        };
        // A file that says 0 bytes may be one generated on read (/proc, /sys): "empty, size
        // it first" would send the caller the wrong way. A one-page probe tells them apart
        // without reading anything.
        let empty = |file: String| match os::mem::probe_map(fd) {
            Err(source) if os::mem::not_mappable(&source) => MapError::NotMappable { file, source },
            _ => MapError::EmptyFile { file },
        };
        if file_len == 0 && self.len.is_none() {
            return Err(empty(file));
        }
        if self.len == Some(0) {
            return Err(MapError::ZeroLength { file });
        }
        if self.offset >= file_len {
            if file_len == 0 {
                return Err(empty(file));
            }
            return Err(MapError::OffsetPastEnd {
                file,
                offset: self.offset,
                file_len,
            });
        }
        let len = match self.len {
            Some(l) => l,
            None => {
                usize::try_from(file_len - self.offset).map_err(|_| MapError::LengthOverflow {
                    offset: self.offset,
                    len: file_len - self.offset,
                })?
            }
        };
        let end = self
            .offset
            .checked_add(len as u64)
            .filter(|e| *e <= i64::MAX as u64)
            .ok_or(MapError::LengthOverflow {
                offset: self.offset,
                len: len as u64,
            })?;
        if end > file_len {
            return Err(MapError::RangePastEnd {
                file,
                offset: self.offset,
                len,
                file_len,
            });
        }
        let page = os::mem::page_size() as u64;
        let aligned = self.offset & !(page - 1);
        let delta = (self.offset - aligned) as usize;
        let map_len = delta.checked_add(len).ok_or(MapError::LengthOverflow {
            offset: self.offset,
            len: len as u64,
        })?;
        let kind = os::mem::MapKind {
            shared: self.sharing == Sharing::Shared,
            populate: self.populate,
        };
        // SAFETY: the offset is page-aligned and the length non-zero; we take ownership of the
        // new range and `Mmap::drop` unmaps it once with the same length.
        let base = unsafe { os::mem::mmap_file(map_len, self.prot.to_os(), kind, fd, aligned) }
            .map_err(|source| {
                if os::mem::not_mappable(&source) {
                    MapError::NotMappable {
                        file: file.clone(),
                        source,
                    }
                } else {
                    os_err("mmap", &file)(source)
                }
            })?;
        // Build the owner right away so any error below unmaps.
        let mut map = Mmap {
            base,
            map_len,
            delta,
            len,
            prot: self.prot,
            sharing: self.sharing,
            allow_exec: self.allow_exec,
            backing: Backing::Anonymous,
            guard: None,
            poison: OnceLock::new(),
        };
        let seals = os::file::get_seals(fd).unwrap_or_default();
        let dup = os::file::dup(fd).map_err(os_err("fcntl(F_DUPFD_CLOEXEC)", &file))?;
        if !seals.shrink {
            map.guard = Some(
                os::sigbus::register(base.as_ptr() as usize, map_len)
                    .map_err(os_err("sigaction(SIGBUS)", &file))?,
            );
        }
        map.backing = Backing::File {
            fd: dup,
            name: file,
            offset: self.offset,
            sealed_write: seals.write && seals.shrink,
        };
        Ok(map)
    }

    fn describe_request(&self) -> String {
        let sharing = match self.sharing {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
        };
        let mut s = format!("{sharing} {} access", self.prot);
        if self.create.is_some() {
            s.push_str(" and to create/extend the file");
        }
        s
    }

    /// Maps anonymous memory of [`len`](Self::len) bytes, zero-filled, read-write unless
    /// [`protection`](Self::protection) says otherwise.
    ///
    /// With [`Sharing::Shared`] (the default) the memory is `MAP_SHARED|MAP_ANONYMOUS`: a
    /// child created by `fork` after this call shares it with the parent, which is how related
    /// processes communicate (the tutorial's first scenario). With
    /// [`private`](Self::private) it is private to this process (a child gets a copy), and
    /// [`Mmap::try_as_mut_slice`] may borrow it safely.
    ///
    /// # Errors
    /// [`MapError::ZeroLength`] without a non-zero length; [`MapError::Os`] from `mmap`.
    ///
    /// # Example
    /// ```
    /// use mapipc::map::MapOptions;
    /// let shared = MapOptions::new().len(4096).map_anonymous()?;
    /// shared.write_at(0, b"inherited by fork")?;
    /// let mut private = MapOptions::new().len(100).private().map_anonymous()?;
    /// private.try_as_mut_slice().unwrap()[0] = 1;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_anonymous(&self) -> Result<Mmap, MapError> {
        if !os::SUPPORTED {
            return Err(MapError::Unsupported);
        }
        let file = "anonymous memory".to_string();
        let len = match self.len {
            Some(0) | None => return Err(MapError::ZeroLength { file }),
            Some(l) => l,
        };
        // Anonymous memory defaults to read-write: read-only zeros are rarely what one wants.
        let mut opts = self.clone();
        if opts.prot == Protection::READ {
            opts.prot = Protection::READ_WRITE;
        }
        opts.validate_prot()?;
        let kind = os::mem::MapKind {
            shared: opts.sharing == Sharing::Shared,
            populate: opts.populate,
        };
        // SAFETY: non-zero length; we own the new range and `Mmap::drop` unmaps it.
        let base =
            unsafe { os::mem::mmap_anonymous(len, opts.prot.to_os(), kind) }.map_err(|source| {
                MapError::Os {
                    call: "mmap",
                    file,
                    source,
                }
            })?;
        Ok(Mmap {
            base,
            map_len: len,
            delta: 0,
            len,
            prot: opts.prot,
            sharing: opts.sharing,
            allow_exec: opts.allow_exec,
            backing: Backing::Anonymous,
            guard: None,
            poison: OnceLock::new(),
        })
    }
}

#[derive(Debug)]
enum Backing {
    Anonymous,
    File {
        fd: OwnedFd,
        name: String,
        offset: u64,
        /// Sealed with `F_SEAL_WRITE | F_SEAL_SHRINK`: nobody can change the bytes.
        sealed_write: bool,
    },
}

/// An owned memory mapping. Drop unmaps it with the base and length it was created with,
/// whatever was done with offsets and cursors in between.
///
/// All safe access is bounds-checked and copies (see the [module docs](self) for why):
/// [`read_at`](Self::read_at), [`write_at`](Self::write_at), [`read_pod`](Self::read_pod),
/// [`write_pod`](Self::write_pod), [`cursor`](Self::cursor), [`find`](Self::find), and atomic
/// views. `Mmap` is `Send` and `Sync`: concurrent use from several threads has the same
/// meaning as concurrent use from several processes.
///
/// # Example
/// ```
/// use mapipc::map::{MapOptions, Mmap, Protection, Sharing};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// # std::fs::write(&path, [0u8; 10_000])?;
/// let map = MapOptions::new().read_write().offset(5000).len(100).map_path(&path)?;
/// assert_eq!(map.len(), 100);
/// assert!(map.is_file_backed());
/// assert_eq!(map.file_offset(), 5000);
/// assert!(map.file_name().contains("data.bin"));
/// assert_eq!((map.protection(), map.sharing()), (Protection::READ_WRITE, Sharing::Shared));
/// assert!(!map.is_poisoned());
/// assert!(map.file_fd().is_some());
/// assert_eq!(map.check_range(90, 10)?, 90);
/// assert!(map.check_range(90, 11).is_err());
///
/// map.write_pod(0, &1234u64)?;
/// assert_eq!(std::fs::read(&path)?[5000..5008], 1234u64.to_ne_bytes());
///
/// let anon = Mmap::anonymous(100)?;
/// assert!(!anon.is_file_backed() && anon.file_fd().is_none());
/// assert_eq!(anon.file_name(), "anonymous memory");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Mmap {
    /// Page-aligned start of the kernel mapping.
    base: NonNull<c_void>,
    /// Length of the kernel mapping (from `base`).
    map_len: usize,
    /// Distance from `base` to the first byte the user sees.
    delta: usize,
    /// Bytes the user sees.
    len: usize,
    prot: Protection,
    sharing: Sharing,
    allow_exec: bool,
    backing: Backing,
    guard: Option<os::sigbus::Guard>,
    /// Why the mapping is poisoned, decided at the first error after the poisoning.
    poison: OnceLock<Poison>,
}

/// Why a poisoned mapping is poisoned (see [`Mmap::diagnose`]).
#[derive(Clone, Copy, Debug)]
enum Poison {
    Truncated,
    Fault {
        file_offset: u64,
        file_len: u64,
        cause: FaultCause,
    },
}

// SAFETY: `Mmap` owns its mapping; the raw pointer is not tied to a thread, and every access
// through `&self` is a raw-pointer copy or an atomic (see the module-level soundness notes).
unsafe impl Send for Mmap {}
// SAFETY: as above: shared access from threads is no different from shared access from
// processes, which the API is built for.
unsafe impl Sync for Mmap {}

impl fmt::Debug for Mmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mmap")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len)
            .field("protection", &self.prot)
            .field("sharing", &self.sharing)
            .field("file", &self.file_name())
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl Mmap {
    /// Shorthand for a read-only shared mapping of a whole file.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("f");
    /// # std::fs::write(&path, b"abc").unwrap();
    /// let map = mapipc::map::Mmap::open(&path)?;
    /// assert_eq!(map.len(), 3);
    /// # Ok::<(), mapipc::map::MapError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Mmap, MapError> {
        MapOptions::new().map_path(path)
    }

    /// Shorthand for an anonymous shared read-write mapping that `fork`ed children inherit.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(1 << 20)?;
    /// assert_eq!(map.read_vec(0, 4)?, [0, 0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn anonymous(len: usize) -> Result<Mmap, MapError> {
        MapOptions::new().len(len).map_anonymous()
    }

    /// Number of bytes visible through this mapping (never 0).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a mapping has at least one byte. Present for API symmetry.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The current protection.
    pub fn protection(&self) -> Protection {
        self.prot
    }

    /// Shared or private.
    pub fn sharing(&self) -> Sharing {
        self.sharing
    }

    /// Whether this maps a file (as opposed to anonymous memory).
    pub fn is_file_backed(&self) -> bool {
        matches!(self.backing, Backing::File { .. })
    }

    /// The file offset of byte 0 of the mapping (0 for anonymous memory).
    pub fn file_offset(&self) -> u64 {
        match &self.backing {
            Backing::File { offset, .. } => *offset,
            Backing::Anonymous => 0,
        }
    }

    /// A readable name of the backing file (path and fd), or `anonymous memory`.
    pub fn file_name(&self) -> &str {
        match &self.backing {
            Backing::File { name, .. } => name,
            Backing::Anonymous => "anonymous memory",
        }
    }

    /// Names the backing file `file` from now on in [`file_name`](Self::file_name) and in
    /// errors: the file was renamed since it was mapped. Anonymous memory keeps its name.
    pub(crate) fn set_file_name(&mut self, file: String) {
        if let Backing::File { name, .. } = &mut self.backing {
            *name = file;
        }
    }

    /// Whether the mapping is poisoned: someone truncated the file under it and a page past
    /// the new end was touched (or `flush`, `grow` or `lock` found the file shorter), or the
    /// kernel could not supply a page of it. Every access then returns
    /// [`AccessError::Truncated`] or [`AccessError::Fault`] (see the [module docs](self#sigbus)).
    /// Poisoning is for good: extending the file again does not bring the lost bytes back.
    /// Anonymous memory and sealed memfds are never poisoned.
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{AccessError, MapOptions};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("f");
    /// let map = MapOptions::new().read_write().create(8192).map_path(&path)?;
    /// assert!(!map.is_poisoned());
    /// std::fs::File::options().write(true).open(&path)?.set_len(4096)?; // someone truncates
    /// let err = map.read_vec(4096, 1).unwrap_err(); // the lost page: SIGBUS, caught
    /// assert!(matches!(err, AccessError::Truncated { .. }));
    /// assert!(map.is_poisoned());
    /// assert_eq!(map.read_vec(0, 1).unwrap_err(), err); // even below the new end
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.guard.as_ref().is_some_and(|g| g.faulted())
    }

    /// The old name of [`is_poisoned`](Self::is_poisoned), which it returns: true also for a
    /// page the kernel could not supply ([`AccessError::Fault`]), not only for a truncation.
    #[deprecated(note = "true for any poisoning, not only a truncation: use `is_poisoned`")]
    #[inline]
    pub fn is_truncated(&self) -> bool {
        self.is_poisoned()
    }

    /// A raw pointer to byte 0. Reading or writing through it is the caller's business (and
    /// `unsafe`); the safe methods are bounds-checked.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.as_mut_ptr()
    }

    /// A raw mutable pointer to byte 0.
    #[inline]
    pub fn as_mut_ptr(&self) -> *mut u8 {
        // `delta < page size <= map_len`, so this stays inside the mapping.
        self.base.as_ptr().cast::<u8>().wrapping_add(self.delta)
    }

    // The errors below allocate the mapping's name, so they are built only once a check
    // has failed: out of line and cold, keeping the checks' success paths free of it.

    /// The error of a poisoned mapping: [`AccessError::Truncated`], or
    /// [`AccessError::Fault`] when the page that faulted is still inside the file and the
    /// kernel still refuses it. Decided once, at the first error after the fault, then kept:
    /// every later access of the poisoned mapping says the same.
    #[cold]
    #[inline(never)]
    fn poisoned_error(&self) -> AccessError {
        let file = self.file_name().to_string();
        match *self.poison.get_or_init(|| self.diagnose()) {
            Poison::Truncated => AccessError::Truncated { file },
            Poison::Fault {
                file_offset,
                file_len,
                cause,
            } => AccessError::Fault {
                file,
                file_offset,
                file_len,
                cause,
            },
        }
    }

    /// The error every access of this mapping returns once it is poisoned
    /// ([`is_poisoned`](Self::is_poisoned)): [`AccessError::Truncated`] or
    /// [`AccessError::Fault`], diagnosed once as for the accesses (the diagnosis is kept);
    /// `None` while it is not poisoned. For layers that report the poisoning in their own
    /// terms, such as the channels.
    pub(crate) fn poison_error(&self) -> Option<AccessError> {
        self.is_poisoned().then(|| self.poisoned_error())
    }

    /// Why the SIGBUS handler poisoned this mapping. The kernel raises SIGBUS for a page at
    /// or past the end of the file (a truncation), and also for a page inside it that it
    /// cannot supply (an I/O error reading it, no space to allocate it); `siginfo` does not
    /// tell them apart (`BUS_ADRERR` for both). So, after the fault, outside the handler:
    ///
    /// 1. the file's size (`fstat`): the page that faulted first at or past the end is a
    ///    truncation, as always;
    /// 2. inside the file, the fault may still be a truncation undone since (the file
    ///    extended again, which makes the page a hole reading zeros), so the kernel is asked
    ///    again for that page in ways a truncation cannot fail: `pread` of its first byte
    ///    (an I/O error), then, for a shared writable mapping, `fallocate(KEEP_SIZE)` of the
    ///    page (`ENOSPC`/`EDQUOT`; allocating it is what the write would have done), and
    ///    otherwise `fstatfs` (no space available at all);
    /// 3. when none of them fails, the cause is gone or was a truncation: `Truncated`, as
    ///    before this check existed (the bytes are lost either way).
    ///
    /// Mappings poisoned by [`check_file_size`](Self::check_file_size) (no page faulted)
    /// are truncated.
    fn diagnose(&self) -> Poison {
        let (Backing::File { fd, offset, .. }, Some(guard)) = (&self.backing, &self.guard) else {
            return Poison::Truncated;
        };
        let Some(addr) = guard.first_fault() else {
            return Poison::Truncated;
        };
        let in_map = addr.wrapping_sub(self.base.as_ptr() as usize);
        if in_map >= self.map_len {
            return Poison::Truncated;
        }
        let page = os::mem::page_size();
        // `base` maps the file from `offset - delta`, a page boundary.
        let file_offset = (offset - self.delta as u64) + (in_map & !(page - 1)) as u64;
        let fd = fd.as_fd();
        let Ok(info) = os::file::fstat(fd) else {
            return Poison::Truncated;
        };
        if info.size <= file_offset {
            return Poison::Truncated;
        }
        match self.page_refused(fd, file_offset) {
            Some(cause) => Poison::Fault {
                file_offset,
                file_len: info.size,
                cause,
            },
            None => Poison::Truncated,
        }
    }

    /// Step 2 of [`diagnose`](Self::diagnose), for the page at `file_offset`, inside the
    /// file: why the kernel still refuses it (`pread` fails: [`FaultCause::Io`];
    /// `fallocate(KEEP_SIZE)` of it for a shared writable mapping, or else `fstatfs`, says
    /// there is no space: [`FaultCause::NoSpace`]), or `None` when it does not. Also what
    /// [`lock`](Self::lock) asks of a page `mlock` could not fault in.
    fn page_refused(&self, fd: BorrowedFd<'_>, file_offset: u64) -> Option<FaultCause> {
        if os::file::pread(fd, &mut [0u8], file_offset).is_err() {
            return Some(FaultCause::Io);
        }
        if self.sharing == Sharing::Shared && self.prot.contains(Protection::WRITE) {
            match os::file::reserve(fd, file_offset, os::mem::page_size() as u64) {
                Ok(()) => return None,
                Err(e) if os::file::no_space(&e) => return Some(FaultCause::NoSpace),
                // Not supported by the file system: ask it for its free space instead.
                Err(_) => {}
            }
        }
        match os::file::space_available(fd) {
            Ok(0) => Some(FaultCause::NoSpace),
            _ => None,
        }
    }

    #[cold]
    #[inline(never)]
    fn out_of_bounds(&self, offset: u64, len: usize) -> AccessError {
        AccessError::OutOfBounds {
            file: self.file_name().to_string(),
            offset,
            len,
            map_len: self.len,
            bounds: Bounds::Mapping,
        }
    }

    #[cold]
    #[inline(never)]
    fn not_readable(&self) -> AccessError {
        AccessError::NotReadable {
            file: self.file_name().to_string(),
            protection: self.prot,
        }
    }

    #[cold]
    #[inline(never)]
    fn not_writable(&self) -> AccessError {
        AccessError::NotWritable {
            file: self.file_name().to_string(),
            protection: self.prot,
        }
    }

    #[cold]
    #[inline(never)]
    fn misaligned(&self, offset: u64, align: usize) -> AccessError {
        AccessError::Misaligned {
            file: self.file_name().to_string(),
            offset,
            align,
        }
    }

    #[inline]
    fn check_alive(&self) -> Result<(), AccessError> {
        if self.is_poisoned() {
            Err(self.poisoned_error())
        } else {
            Ok(())
        }
    }

    /// Compares the file's current size `file_size` with the end of the mapping. Shorter means
    /// someone truncated the file under us: the bytes past the new end are lost even where no
    /// page of them was touched yet (no SIGBUS happened to say so), and stay lost if the file
    /// is extended again. The mapping is poisoned, as by a fault. Mappings of sealed memfds
    /// have no guard: they cannot shrink.
    fn check_file_size(&self, file_size: u64) -> Result<(), AccessError> {
        let (Backing::File { offset, .. }, Some(guard)) = (&self.backing, &self.guard) else {
            return Ok(());
        };
        if file_size < offset.saturating_add(self.len as u64) {
            guard.poison();
            // Later accesses say so too (unless a fault was diagnosed before: then this says
            // the same as they do).
            let _ = self.poison.set(Poison::Truncated);
            return Err(self.poisoned_error());
        }
        Ok(())
    }

    /// Checks that `offset..offset+len` is inside the mapping; returns `offset` as `usize`.
    #[inline]
    pub fn check_range(&self, offset: u64, len: usize) -> Result<usize, AccessError> {
        if let Ok(off) = usize::try_from(offset) {
            if off.checked_add(len).is_some_and(|end| end <= self.len) {
                return Ok(off);
            }
        }
        Err(self.out_of_bounds(offset, len))
    }

    #[inline]
    fn check_read(&self, offset: u64, len: usize) -> Result<usize, AccessError> {
        if !self.prot.contains(Protection::READ) {
            return Err(self.not_readable());
        }
        let off = self.check_range(offset, len)?;
        self.check_alive()?;
        Ok(off)
    }

    #[inline]
    fn check_write(&self, offset: u64, len: usize) -> Result<usize, AccessError> {
        if !self.prot.contains(Protection::WRITE) {
            return Err(self.not_writable());
        }
        self.check_read(offset, len)
    }

    /// Copies `buf.len()` bytes starting at `offset` into `buf`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] when the range is not inside the mapping (nothing is
    /// read), [`AccessError::NotReadable`], [`AccessError::Truncated`] when the file was
    /// truncated under the mapping (the contents of `buf` are then unspecified).
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{AccessError, Mmap};
    /// let map = Mmap::anonymous(100)?;
    /// let mut buf = [0u8; 8];
    /// map.read_at(92, &mut buf)?;
    /// assert!(matches!(map.read_at(93, &mut buf), Err(AccessError::OutOfBounds { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        let off = self.check_read(offset, buf.len())?;
        // SAFETY: `off..off+buf.len()` is inside the mapping (checked above) and readable;
        // `buf` is a distinct, private allocation. The source may be written concurrently by
        // other processes: we copy through raw pointers and never form a reference to it.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(off), buf.as_mut_ptr(), buf.len())
        };
        self.check_alive()
    }

    /// Streams `offset..offset + len` to `f` in order, as the chunk's offset and its bytes,
    /// through an internal buffer of [`CHUNK`](Self::CHUNK) bytes.
    ///
    /// This is how to scan a mapping that another process may write, with the safe API, at
    /// close to the speed of reading it in place: each chunk is copied once (a borrowed
    /// `&[u8]` of shared memory would be undefined behaviour, see the module docs), and a
    /// buffer that stays in the L1 cache makes that copy cheap. With a 64 KiB buffer of your
    /// own and [`read_at`](Self::read_at), every byte goes out to L2 and back: a 1 GiB scan
    /// measured 2.0x memmap2's in-place scan, against 1.1x this way (BENCHMARKS.md).
    ///
    /// A chunk is handed to `f` only after the copy was checked: if the file was truncated
    /// under the mapping, the call stops with [`AccessError::Truncated`] before the chunk
    /// that touched the missing pages.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] (before any call to `f`), [`AccessError::NotReadable`],
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(100_000)?;
    /// map.write_at(99_999, b"!")?;
    /// let (mut total, mut bangs) = (0, 0);
    /// map.for_each_chunk(0, map.len(), |_offset, bytes| {
    ///     total += bytes.len();
    ///     bangs += bytes.iter().filter(|b| **b == b'!').count();
    /// })?;
    /// assert_eq!((total, bangs), (100_000, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_each_chunk(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<(), AccessError> {
        self.check_read(offset, len)?;
        let mut buf = [0u8; Self::CHUNK];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(Self::CHUNK);
            let at = offset + done as u64;
            self.read_at(at, &mut buf[..n])?;
            f(at, &buf[..n]);
            done += n;
        }
        Ok(())
    }

    /// The chunk size of [`for_each_chunk`](Self::for_each_chunk) and [`find`](Self::find):
    /// 4 KiB. Source and copy then stay well inside a 32 KiB L1 data cache; in the 1 GiB scan
    /// of BENCHMARKS.md 8 KiB chunks were 1.46x memmap2, 4 KiB ones 1.1x.
    pub const CHUNK: usize = 4 * 1024;

    /// Copies `len` bytes starting at `offset` into a new `Vec`.
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(16)?;
    /// assert_eq!(map.read_vec(0, 3)?, vec![0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, AccessError> {
        self.check_read(offset, len)?;
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }

    /// Copies `data` into the mapping at `offset`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] (nothing is written), [`AccessError::NotWritable`],
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(16)?;
    /// map.write_at(14, b"hi")?;
    /// assert!(map.write_at(15, b"hi").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), AccessError> {
        let off = self.check_write(offset, data.len())?;
        // SAFETY: the range is inside the mapping and writable (checked above); `data` is a
        // distinct allocation; shared memory is only written through raw pointers.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_mut_ptr().add(off), data.len())
        };
        self.check_alive()
    }

    /// Sets `len` bytes at `offset` to `byte`.
    ///
    /// # Errors
    /// As [`write_at`](Self::write_at).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(16)?;
    /// map.fill(4, 4, 0xff)?;
    /// assert_eq!(map.read_vec(3, 6)?, [0, 255, 255, 255, 255, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fill(&self, offset: u64, len: usize, byte: u8) -> Result<(), AccessError> {
        let off = self.check_write(offset, len)?;
        // SAFETY: as in `write_at`.
        unsafe { std::ptr::write_bytes(self.as_mut_ptr().add(off), byte, len) };
        self.check_alive()
    }

    /// Reads a plain-old-data value at `offset` (any alignment).
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// map.write_pod(3, &0xdead_beef_u32)?;
    /// assert_eq!(map.read_pod::<u32>(3)?, 0xdead_beef);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_pod<T: bytemuck::Pod>(&self, offset: u64) -> Result<T, AccessError> {
        let mut v = T::zeroed();
        self.read_at(offset, bytemuck::bytes_of_mut(&mut v))?;
        Ok(v)
    }

    /// Writes a plain-old-data value at `offset` (any alignment).
    ///
    /// # Errors
    /// As [`write_at`](Self::write_at).
    ///
    /// # Example
    /// See [`read_pod`](Self::read_pod).
    pub fn write_pod<T: bytemuck::NoUninit>(
        &self,
        offset: u64,
        value: &T,
    ) -> Result<(), AccessError> {
        self.write_at(offset, bytemuck::bytes_of(value))
    }

    /// A pointer to an `A` at `offset` of a writable mapping, checked and aligned.
    fn atomic_ptr<A>(&self, offset: u64) -> Result<*mut A, AccessError> {
        let off = self.check_write(offset, std::mem::size_of::<A>())?;
        self.aligned_ptr(off, offset)
    }

    /// A pointer to an `A` at `offset` of a readable mapping, checked and aligned (for loads).
    fn load_ptr<A>(&self, offset: u64) -> Result<*const A, AccessError> {
        let off = self.check_read(offset, std::mem::size_of::<A>())?;
        Ok(self.aligned_ptr::<A>(off, offset)?.cast_const())
    }

    /// The pointer to byte `off` (a checked range) as `*mut A`, if aligned for `A`.
    fn aligned_ptr<A>(&self, off: usize, offset: u64) -> Result<*mut A, AccessError> {
        let p = self.as_mut_ptr().wrapping_add(off);
        if (p as usize) % std::mem::align_of::<A>() != 0 {
            return Err(self.misaligned(offset, std::mem::align_of::<A>()));
        }
        Ok(p.cast())
    }

    /// An atomic view of the 4 bytes at `offset`, for sharing a word (counters, flags,
    /// futexes) with other processes. The mapping must be readable and writable (an atomic
    /// store to read-only memory would crash) and the address 4-byte aligned.
    ///
    /// If the file is truncated under the mapping, accesses through the view read zeros
    /// instead of crashing, and the mapping reports [`is_poisoned`](Self::is_poisoned).
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`], [`AccessError::Misaligned`],
    /// [`AccessError::NotWritable`], [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// let counter = map.atomic_u32(8)?;
    /// counter.fetch_add(2, Ordering::SeqCst);
    /// assert_eq!(map.read_pod::<u32>(8)?, 2);
    /// assert!(map.atomic_u32(9).is_err()); // misaligned
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn atomic_u32(&self, offset: u64) -> Result<&AtomicU32, AccessError> {
        let p = self.atomic_ptr::<AtomicU32>(offset)?;
        // SAFETY: `p` is inside the mapping, aligned, readable and writable, and stays mapped
        // for the lifetime of `&self` (unmapping and remapping need `&mut self` or drop).
        // `AtomicU32` has the size and alignment of `u32` and any bit pattern is valid; other
        // processes may access the word concurrently, which atomics permit.
        Ok(unsafe { &*p })
    }

    /// An atomic view of the 8 bytes at `offset` (8-byte aligned). See
    /// [`atomic_u32`](Self::atomic_u32).
    ///
    /// # Errors
    /// As [`atomic_u32`](Self::atomic_u32).
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// map.atomic_u64(16)?.store(u64::MAX, Ordering::Release);
    /// assert_eq!(map.read_pod::<u64>(16)?, u64::MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn atomic_u64(&self, offset: u64) -> Result<&AtomicU64, AccessError> {
        let p = self.atomic_ptr::<AtomicU64>(offset)?;
        // SAFETY: as in `atomic_u32`, for an 8-byte aligned word.
        Ok(unsafe { &*p })
    }

    /// An atomic load of the 4 bytes at `offset` (4-byte aligned), which works on a
    /// read-only mapping too (unlike [`atomic_u32`](Self::atomic_u32), whose view could
    /// store): for reading words other processes update, from a mapping opened for
    /// inspection.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`], [`AccessError::Misaligned`],
    /// [`AccessError::NotReadable`], [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// map.atomic_u32(8)?.store(7, Ordering::Release);
    /// assert_eq!(map.load_u32(8, Ordering::Acquire)?, 7);
    /// assert!(map.load_u32(9, Ordering::Acquire).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_u32(&self, offset: u64, order: Ordering) -> Result<u32, AccessError> {
        let p = self.load_ptr::<AtomicU32>(offset)?;
        // SAFETY: `p` is inside the mapping, aligned and readable, and stays mapped while
        // `&self` lives. Only a load is made through it, which the standard library allows on
        // read-only memory for lock-free atomics such as `AtomicU32`.
        let v = unsafe { (*p).load(order) };
        // A load that found the file truncated read the zero page put in its place.
        self.check_alive()?;
        Ok(v)
    }

    /// An atomic load of the 8 bytes at `offset` (8-byte aligned). See
    /// [`load_u32`](Self::load_u32).
    ///
    /// # Errors
    /// As [`load_u32`](Self::load_u32).
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let map = mapipc::map::Mmap::anonymous(64)?;
    /// map.atomic_u64(8)?.store(u64::MAX, Ordering::Release);
    /// assert_eq!(map.load_u64(8, Ordering::Acquire)?, u64::MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_u64(&self, offset: u64, order: Ordering) -> Result<u64, AccessError> {
        let p = self.load_ptr::<AtomicU64>(offset)?;
        // SAFETY: as in `load_u32`, for an 8-byte aligned word.
        let v = unsafe { (*p).load(order) };
        self.check_alive()?;
        Ok(v)
    }

    /// A [`Cursor`] at position 0 implementing `std::io::{Read, Write, Seek}`, like a file
    /// over the mapping. Moving the cursor never affects what [`Drop`] unmaps.
    ///
    /// # Example
    /// ```
    /// use std::io::{Read, Seek, SeekFrom, Write};
    /// let map = mapipc::map::Mmap::anonymous(32)?;
    /// let mut c = map.cursor();
    /// c.write_all(b"hello world")?;
    /// c.seek(SeekFrom::Start(6))?;
    /// let mut s = String::new();
    /// Read::by_ref(&mut c).take(5).read_to_string(&mut s)?;
    /// assert_eq!(s, "world");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor::new(self)
    }

    /// The offset of the first occurrence of `needle`, like Python's `mmap.find`; `None`
    /// when absent. An empty needle is found at 0.
    ///
    /// # Errors
    /// [`AccessError::NotReadable`], [`AccessError::Truncated`].
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(1 << 20)?;
    /// map.write_at(700_000, b"needle")?;
    /// assert_eq!(map.find(b"needle")?, Some(700_000));
    /// assert_eq!(map.find_from(b"needle", 700_001)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find(&self, needle: &[u8]) -> Result<Option<u64>, AccessError> {
        self.find_from(needle, 0)
    }

    /// The offset of the first occurrence of `needle` at or after `start`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] when `start > len()`, [`AccessError::NotReadable`],
    /// [`AccessError::Truncated`].
    ///
    /// # Example
    /// See [`find`](Self::find).
    pub fn find_from(&self, needle: &[u8], start: u64) -> Result<Option<u64>, AccessError> {
        self.check_read(start, 0)?;
        if needle.is_empty() {
            return Ok(Some(start));
        }
        let len = self.len as u64;
        if needle.len() as u64 > len - start {
            // Cannot fit: give up before building a finder or a window for it.
            return Ok(None);
        }
        let finder = memchr::memmem::Finder::new(needle);
        // An L1-sized window (the copy is then cheap: see `for_each_chunk`), never more than
        // what is left to search.
        let window = Self::CHUNK
            .max(needle.len().saturating_mul(2))
            .min((len - start) as usize);
        let mut buf = vec![0u8; window];
        let mut pos = start;
        while pos < len {
            let n = (len - pos).min(window as u64) as usize;
            if n < needle.len() {
                break;
            }
            self.read_at(pos, &mut buf[..n])?;
            if let Some(i) = finder.find(&buf[..n]) {
                return Ok(Some(pos + i as u64));
            }
            if pos + n as u64 >= len {
                break;
            }
            pos += (n - (needle.len() - 1)) as u64;
        }
        Ok(None)
    }

    /// The page-aligned start and the length of the pages covering `offset..offset+len`, or
    /// `None` for an empty range: there is nothing to flush or advise, and rounding an empty
    /// range at the very end of the mapping to a page would name the page *after* it, which
    /// belongs to some other mapping (`madvise(MADV_DONTNEED)` there would discard its data).
    fn page_range(
        &self,
        offset: u64,
        len: usize,
    ) -> Result<Option<(*mut c_void, usize)>, AccessError> {
        let off = self.check_range(offset, len)?;
        if len == 0 {
            return Ok(None);
        }
        let page = os::mem::page_size();
        let start = self.delta + off;
        let aligned = start & !(page - 1);
        let span = (start - aligned) + len;
        Ok(Some((
            self.base.as_ptr().cast::<u8>().wrapping_add(aligned).cast(),
            span,
        )))
    }

    /// Writes dirty pages back to the file and waits (`msync(MS_SYNC)`). A no-op for
    /// anonymous and private mappings.
    ///
    /// If the file was truncated under a shared file mapping, bytes written past its new end
    /// are lost, which `msync` does not report: `flush` then fails with
    /// [`AccessError::Truncated`] and poisons the mapping (one `fstat` after the write-back).
    /// A shared file mapping already poisoned ([`is_poisoned`](Self::is_poisoned)) returns
    /// its error without calling `msync`.
    ///
    /// # Errors
    /// [`FlushError::Os`] when the write-back fails (for example an I/O error);
    /// [`FlushError::Access`] with [`AccessError::Truncated`] as above, or with a poisoned
    /// mapping's error ([`AccessError::Truncated`] or [`AccessError::Fault`]).
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("f");
    /// let map = mapipc::map::MapOptions::new().read_write().create(4096).map_path(&path)?;
    /// map.write_at(0, b"durable")?;
    /// map.flush()?;
    /// assert_eq!(&std::fs::read(&path)?[..7], b"durable");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> Result<(), FlushError> {
        self.flush_range(0, self.len)
    }

    /// `msync(MS_SYNC)` of `offset..offset+len` (rounded out to pages).
    ///
    /// # Errors
    /// [`FlushError::Access`] for a range outside the mapping, else as [`flush`](Self::flush).
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("f");
    /// let map = mapipc::map::MapOptions::new().read_write().create(8192).map_path(&path)?;
    /// map.write_at(5000, b"x")?;
    /// map.flush_range(5000, 1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_range(&self, offset: u64, len: usize) -> Result<(), FlushError> {
        self.msync(offset, len, true)
    }

    /// Starts writing dirty pages back without waiting (`msync(MS_ASYNC)`).
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(4096)?;
    /// map.flush_async()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_async(&self) -> Result<(), FlushError> {
        self.flush_async_range(0, self.len)
    }

    /// `msync(MS_ASYNC)` of a range.
    ///
    /// # Errors
    /// As [`flush_range`](Self::flush_range).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(4096)?;
    /// map.flush_async_range(10, 10)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_async_range(&self, offset: u64, len: usize) -> Result<(), FlushError> {
        self.msync(offset, len, false)
    }

    fn msync(&self, offset: u64, len: usize, sync: bool) -> Result<(), FlushError> {
        let Some((addr, span)) = self.page_range(offset, len)? else {
            return Ok(());
        };
        let Backing::File { fd, .. } = &self.backing else {
            return Ok(());
        };
        if self.sharing == Sharing::Private {
            return Ok(());
        }
        let os_err = |source| FlushError::Os {
            file: self.file_name().to_string(),
            source,
        };
        // A poisoned mapping has lost bytes: say which, rather than an error of `msync`.
        self.check_alive()?;
        // SAFETY: `addr..addr+span` is page-aligned and inside our live mapping.
        unsafe { os::mem::msync(addr, span, sync) }.map_err(os_err)?;
        // `msync` does not know about bytes that were lost: written into pages a truncation
        // took away (the kernel drops them silently), or into the zero pages the SIGBUS
        // handler put in their place. Say so instead of letting the caller think they are
        // written back. (Checked after the write-back: a truncation after this check came
        // after the bytes reached the file.)
        self.check_alive()?;
        let info = os::file::fstat(fd.as_fd()).map_err(os_err)?;
        self.check_file_size(info.size)?;
        Ok(())
    }

    /// Gives the kernel advice about the access pattern of the whole mapping. A hint, which
    /// changes no byte: it works on a poisoned mapping too (see the [module docs](self#sigbus)).
    ///
    /// # Errors
    /// [`AdviseError::WouldDiscard`] for [`Advice::DontNeed`] on a private mapping;
    /// [`AdviseError::Os`] when the kernel refuses (e.g. no transparent huge pages).
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{Advice, Mmap};
    /// let map = Mmap::anonymous(1 << 20)?;
    /// map.advise(Advice::Sequential)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn advise(&self, advice: Advice) -> Result<(), AdviseError> {
        self.advise_range(advice, 0, self.len)
    }

    /// Advice for `offset..offset+len` (rounded out to pages).
    ///
    /// # Errors
    /// As [`advise`](Self::advise), plus [`AdviseError::Access`] for a range outside.
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{Advice, Mmap};
    /// let map = Mmap::anonymous(1 << 20)?;
    /// map.advise_range(Advice::WillNeed, 4096, 8192)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn advise_range(&self, advice: Advice, offset: u64, len: usize) -> Result<(), AdviseError> {
        let range = self.page_range(offset, len)?;
        if advice == Advice::DontNeed && self.sharing == Sharing::Private {
            return Err(AdviseError::WouldDiscard);
        }
        let Some((addr, span)) = range else {
            return Ok(());
        };
        let a = match advice {
            Advice::Normal => os::mem::Advice::Normal,
            Advice::Sequential => os::mem::Advice::Sequential,
            Advice::Random => os::mem::Advice::Random,
            Advice::WillNeed => os::mem::Advice::WillNeed,
            Advice::DontNeed => os::mem::Advice::DontNeed,
            Advice::HugePage => os::mem::Advice::HugePage,
            Advice::NoHugePage => os::mem::Advice::NoHugePage,
        };
        // SAFETY: the range is page-aligned and inside our mapping; DontNeed is only used on
        // shared mappings, where it drops pages that are re-read from the file or the shared
        // memory object, so no data changes.
        unsafe { os::mem::madvise(addr, span, a) }.map_err(|source| AdviseError::Os {
            file: self.file_name().to_string(),
            advice,
            source,
        })
    }

    /// Locks the mapping's pages in RAM (`mlock`): no page faults, no swap.
    ///
    /// A poisoned mapping ([`is_poisoned`](Self::is_poisoned)) is not locked: `lock` returns
    /// its error, as every access does, without calling `mlock` (which would lock the zero
    /// pages standing in for the lost ones, or fail on the pages the kernel still cannot
    /// supply with an `ENOMEM` that says nothing of the cause).
    ///
    /// A failed `lock` leaves the whole mapping unlocked. `mlock` marks the range locked
    /// before it faults the pages in, and a page it cannot fault in (past the end of a
    /// truncated file, or on a full tmpfs) ends it with an error that leaves the pages
    /// before locked and the whole range counted against `RLIMIT_MEMLOCK`: `lock` then
    /// unlocks the range (`munlock`) before returning the error, which also undoes an
    /// earlier successful `lock`. (A range over `RLIMIT_MEMLOCK` is refused before anything
    /// is locked.)
    ///
    /// `mlock` says `ENOMEM` both for a range over `RLIMIT_MEMLOCK` and for a page it could
    /// not fault in, so after that unlock a file mapping's `ENOMEM` (or `EAGAIN`) is
    /// examined before it is blamed on the limit:
    ///
    /// 1. the file shorter than the mapping (`fstat`) is a truncation;
    /// 2. `mlock2(MLOCK_ONFAULT)` of the range, which checks the limit as `mlock` does but
    ///    faults nothing in (undone at once), refused: the limit, [`LockError::Os`];
    /// 3. otherwise the first page of the mapping not resident (`mincore`: `mlock` faults
    ///    the pages in order) is asked for as after a fault ([module docs](self#sigbus),
    ///    step 2): `pread` of it fails ([`FaultCause::Io`]), or `fallocate` of it (shared
    ///    writable mappings; this allocates the page, as `mlock` would have on tmpfs) or
    ///    `fstatfs` says there is no space ([`FaultCause::NoSpace`]): [`LockError::Fault`].
    ///    The mapping is not poisoned: no page was lost.
    ///
    /// When none of them says why, the error is [`LockError::Os`].
    ///
    /// # Errors
    /// [`LockError::Os`], usually `RLIMIT_MEMLOCK`; [`LockError::Fault`] when a page of the
    /// file cannot be faulted in (a hole on a full file system, as a sparse file on a full
    /// tmpfs, or an I/O error); [`LockError::Access`] with the poisoned mapping's
    /// [`AccessError::Truncated`] or [`AccessError::Fault`], or with
    /// [`AccessError::Truncated`] when `mlock` fails because the file was truncated under
    /// the mapping (its pages past the new end cannot be locked; the mapping is then
    /// poisoned).
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(4096)?;
    /// if map.lock().is_ok() { map.unlock()?; }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<(), LockError> {
        self.check_alive()?;
        // SAFETY: the whole live mapping; locking does not change contents.
        let Err(source) = (unsafe { os::mem::mlock(self.base.as_ptr(), self.map_len, true) })
        else {
            return Ok(());
        };
        // A failure part-way leaves what was faulted in locked (see above): undo it. Its own
        // error would hide the one that matters, and leaves nothing more locked.
        // SAFETY: as above; unlocking does not change contents either.
        let _ = unsafe { os::mem::mlock(self.base.as_ptr(), self.map_len, false) };
        Err(self.lock_failure(source))
    }

    /// Why `mlock` failed with `source` (already undone): see [`lock`](Self::lock).
    #[cold]
    #[inline(never)]
    fn lock_failure(&self, source: std::io::Error) -> LockError {
        let os = |source| LockError::Os {
            file: self.file_name().to_string(),
            call: "mlock",
            len: self.map_len,
            source,
        };
        let Some(fd) = self.file_fd() else {
            return os(source);
        };
        // `mlock` faults every page in, and a page past the end of a truncated file
        // cannot be: that `ENOMEM` is the truncation, not `RLIMIT_MEMLOCK`.
        let Ok(info) = os::file::fstat(fd) else {
            return os(source);
        };
        if self.guard.is_some() {
            if let Err(e) = self.check_file_size(info.size) {
                return LockError::Access(e);
            }
        }
        use std::io::ErrorKind::{OutOfMemory, WouldBlock};
        if !matches!(source.kind(), OutOfMemory | WouldBlock) {
            return os(source);
        }
        // SAFETY: the whole live mapping; nothing is faulted in, and the mark is undone.
        if unsafe { os::mem::mlock_on_fault(self.base.as_ptr(), self.map_len) }.is_err() {
            return os(source); // refused before faulting anything in: the limit
        }
        // SAFETY: as above.
        let _ = unsafe { os::mem::mlock(self.base.as_ptr(), self.map_len, false) };
        // SAFETY: the whole live mapping, page-aligned; `mincore` changes nothing.
        let Ok(Some(in_map)) =
            (unsafe { os::mem::first_not_resident(self.base.as_ptr(), self.map_len) })
        else {
            return os(source);
        };
        let Backing::File { offset, .. } = &self.backing else {
            return os(source);
        };
        // `base` maps the file from `offset - delta`, a page boundary.
        let file_offset = (offset - self.delta as u64) + in_map as u64;
        if file_offset >= info.size {
            return os(source);
        }
        match self.page_refused(fd, file_offset) {
            Some(cause) => LockError::Fault {
                file: self.file_name().to_string(),
                len: self.map_len,
                file_offset,
                file_len: info.size,
                cause,
            },
            None => os(source),
        }
    }

    /// Unlocks the pages (`munlock`). Works on a poisoned mapping too: it only releases.
    ///
    /// # Errors
    /// [`LockError::Os`].
    ///
    /// # Example
    /// See [`lock`](Self::lock).
    pub fn unlock(&self) -> Result<(), LockError> {
        // SAFETY: the whole live mapping.
        unsafe { os::mem::mlock(self.base.as_ptr(), self.map_len, false) }.map_err(|source| {
            LockError::Os {
                file: self.file_name().to_string(),
                call: "munlock",
                len: self.map_len,
                source,
            }
        })
    }

    /// Changes the protection of the whole mapping (`mprotect`), with the same checks as at
    /// creation: no write-only, no exec without opt-in, and shared write needs a read-write fd.
    /// Works on a poisoned mapping too; its accesses still return its error.
    ///
    /// # Errors
    /// [`ProtectError::Invalid`], [`ProtectError::Os`].
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{AccessError, Mmap, Protection};
    /// let mut map = Mmap::anonymous(4096)?;
    /// map.set_protection(Protection::NONE)?;
    /// assert!(matches!(map.read_vec(0, 1), Err(AccessError::NotReadable { .. })));
    /// map.set_protection(Protection::READ)?;
    /// assert!(map.write_at(0, b"x").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_protection(&mut self, prot: Protection) -> Result<(), ProtectError> {
        let mut opts = MapOptions::new();
        opts.protection(prot).sharing(self.sharing);
        if self.allow_exec {
            opts.allow_exec();
        }
        opts.validate_prot()?;
        if let Backing::File { fd, name, .. } = &self.backing {
            if opts.needs_rdwr_fd() {
                let mode =
                    os::file::access_mode(fd.as_fd()).map_err(|source| ProtectError::Os {
                        call: "fcntl(F_GETFL)",
                        file: name.clone(),
                        source,
                    })?;
                if mode != AccessMode::ReadWrite {
                    return Err(MapError::AccessMode {
                        file: name.clone(),
                        open_mode: mode,
                        requested: opts.describe_request(),
                    }
                    .into());
                }
            }
        }
        // SAFETY: the whole live mapping; `&mut self` guarantees no view (atomic references)
        // into it is alive, and every later safe access checks the new protection.
        unsafe { os::mem::mprotect(self.base.as_ptr(), self.map_len, prot.to_os()) }.map_err(
            |source| ProtectError::Os {
                call: "mprotect",
                file: self.file_name().to_string(),
                source,
            },
        )?;
        self.prot = prot;
        Ok(())
    }

    /// Grows the mapping to `new_len` bytes, extending the file first when needed (with
    /// `fallocate`, so a full disk is an error here) and remapping with `mremap`. The data is
    /// kept; the mapping may move, which is why this takes `&mut self`.
    ///
    /// A private (copy-on-write) mapping grows only within its file, which it never changes;
    /// so does a shared mapping without write protection (read-only or `PROT_NONE`), even
    /// when its fd was opened read-write: a read-only mapping never changes its file.
    /// If the file was truncated under the mapping (it is now shorter than the mapping), the
    /// grow is refused and the mapping poisoned rather than the file extended back: the lost
    /// bytes would read back as zeros without an error. When `mremap` fails after this call
    /// extended the file, the file gets its old length back (unless someone else resized it
    /// meanwhile: then their size stays).
    ///
    /// # Errors
    /// [`GrowError::Anonymous`], [`GrowError::Shrink`], [`GrowError::Private`],
    /// [`GrowError::ReadOnlyMapping`], [`GrowError::ReadOnlyFile`], [`GrowError::Extend`],
    /// [`GrowError::Remap`], [`GrowError::Overflow`], [`GrowError::Access`] when poisoned or
    /// truncated.
    ///
    /// # Example
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("f");
    /// let mut map = mapipc::map::MapOptions::new().read_write().create(4096).map_path(&path)?;
    /// map.write_at(0, b"kept")?;
    /// map.grow(1 << 20)?;
    /// assert_eq!(map.len(), 1 << 20);
    /// assert_eq!(map.read_vec(0, 4)?, b"kept");
    /// assert_eq!(std::fs::metadata(&path)?.len(), 1 << 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn grow(&mut self, new_len: usize) -> Result<(), GrowError> {
        let Backing::File {
            fd, name, offset, ..
        } = &self.backing
        else {
            return Err(GrowError::Anonymous);
        };
        if new_len < self.len {
            return Err(GrowError::Shrink {
                len: self.len,
                new_len,
            });
        }
        self.check_alive()?;
        if new_len == self.len {
            return Ok(());
        }
        let needed = offset
            .checked_add(new_len as u64)
            .filter(|n| *n <= i64::MAX as u64)
            .ok_or(GrowError::Overflow { new_len })?;
        let new_map_len = self
            .delta
            .checked_add(new_len)
            .ok_or(GrowError::Overflow { new_len })?;
        let info = os::file::fstat(fd.as_fd()).map_err(|source| GrowError::Extend {
            file: name.clone(),
            size: needed,
            source,
        })?;
        // A file shorter than the mapping was truncated under it: extending it back would
        // turn the lost bytes into zeros that read back without an error.
        self.check_file_size(info.size)?;
        if info.size < needed && self.sharing == Sharing::Private {
            // Copy-on-write never changes the file, not even its length.
            return Err(GrowError::Private {
                file: name.clone(),
                size: needed,
                file_len: info.size,
            });
        }
        if info.size < needed && !self.prot.contains(Protection::WRITE) {
            // Nor does a mapping asked to be read-only, whatever its fd allows.
            return Err(GrowError::ReadOnlyMapping {
                file: name.clone(),
                size: needed,
                file_len: info.size,
                protection: self.prot,
            });
        }
        let extended = info.size < needed;
        if extended {
            let mode = os::file::access_mode(fd.as_fd()).map_err(|source| GrowError::Extend {
                file: name.clone(),
                size: needed,
                source,
            })?;
            if mode != AccessMode::ReadWrite {
                return Err(GrowError::ReadOnlyFile {
                    file: name.clone(),
                    size: needed,
                });
            }
            os::file::allocate(fd.as_fd(), needed).map_err(|source| GrowError::Extend {
                file: name.clone(),
                size: needed,
                source,
            })?;
        }
        // Unregister the range while the mapping moves: once `mremap` has freed the old range,
        // another thread may map something there and register it, and a fault in it must not
        // be charged to (or hidden by) this mapping's stale entry. Nothing touches this
        // mapping meanwhile (`&mut self`).
        if let Some(g) = &self.guard {
            g.update(0, 0);
        }
        // SAFETY: `base..base+map_len` is our live mapping; `&mut self` guarantees nothing
        // borrows it; on success we switch to the new range and never touch the old one.
        let remapped = unsafe { os::mem::mremap(self.base, self.map_len, new_map_len) };
        if let Ok(new_base) = remapped {
            self.base = new_base;
            self.map_len = new_map_len;
            self.len = new_len;
        }
        if let Some(g) = &self.guard {
            g.update(self.base.as_ptr() as usize, self.map_len);
        }
        remapped.map(|_| ()).map_err(|source| {
            if extended {
                self.unextend(info.size, needed);
            }
            GrowError::Remap {
                file: self.file_name().to_string(),
                new_len,
                source,
            }
        })
    }

    /// After a failed [`grow`](Self::grow) that extended the file from `old` to `new` bytes:
    /// gives it its old length back (and the blocks `fallocate` allocated), as a refused
    /// [`MapOptions::create`] does. Only while the file still has the length we gave it:
    /// another size means someone else resized it meanwhile, and their size stays. (A
    /// process that set exactly `new` bytes in between cannot be told from us.) Best
    /// effort: the error reported is the remap's.
    fn unextend(&self, old: u64, new: u64) {
        let Backing::File { fd, .. } = &self.backing else {
            return;
        };
        if os::file::fstat(fd.as_fd()).is_ok_and(|info| info.size == new) {
            let _ = os::file::set_len(fd.as_fd(), old);
        }
    }

    /// Borrows the mapping as a byte slice.
    ///
    /// # Safety
    /// For as long as the returned slice lives:
    /// - no other process, thread or mapping of the same file may write these bytes (a
    ///   `MAP_SHARED` mapping, or a `MAP_PRIVATE` one whose pages were not yet copied, sees
    ///   other processes' writes, which would change memory behind a `&[u8]`);
    /// - nothing may write them through this `Mmap` either: [`write_at`](Self::write_at),
    ///   [`fill`](Self::fill), [`write_pod`](Self::write_pod), a [`Cursor`] or an atomic view
    ///   all take `&self`, so the borrow checker does not stop them;
    /// - nobody may truncate the file (touching a page past the new end would read zeros
    ///   where the slice promised stable bytes);
    /// - the mapping must be readable.
    ///
    /// Prefer [`read_at`](Self::read_at), or [`try_as_slice`](Self::try_as_slice) which
    /// checks these conditions where they can be known.
    ///
    /// # Example
    /// ```
    /// let map = mapipc::map::Mmap::anonymous(16)?;
    /// // SAFETY: fresh anonymous memory, no other process or thread has it yet.
    /// let bytes = unsafe { map.as_slice() };
    /// assert_eq!(bytes.len(), 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is our live mapping; immutability is the caller's obligation.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// Borrows the mapping as a mutable byte slice.
    ///
    /// # Safety
    /// As [`as_slice`](Self::as_slice), and additionally no other process may read these bytes
    /// while the slice lives (they would observe writes that Rust assumes are private), and
    /// the mapping must be writable.
    ///
    /// # Example
    /// ```
    /// let mut map = mapipc::map::Mmap::anonymous(16)?;
    /// // SAFETY: fresh anonymous memory, not shared with anyone yet.
    /// let bytes = unsafe { map.as_mut_slice() };
    /// bytes[0] = 42;
    /// assert_eq!(map.read_vec(0, 1)?, [42]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the range is our live mapping; exclusivity is the caller's obligation.
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), self.len) }
    }

    fn exclusive_private(&self) -> bool {
        matches!(self.backing, Backing::Anonymous) && self.sharing == Sharing::Private
    }

    /// Borrows the bytes when that is provably sound: a read-only mapping of private
    /// anonymous memory (nobody else can reach it; `fork` gives the child a copy), or a
    /// read-only mapping of a memfd sealed with `F_SEAL_WRITE | F_SEAL_SHRINK` (nobody can
    /// change or truncate it). `None` otherwise.
    ///
    /// A writable mapping is refused because this `Mmap`'s own safe writers
    /// ([`write_at`](Self::write_at), [`fill`](Self::fill), the cursor, atomic views) take
    /// `&self` and could change the bytes behind the slice; borrow writable private memory
    /// with [`try_as_mut_slice`](Self::try_as_mut_slice), or make it read-only first with
    /// [`set_protection`](Self::set_protection) (which needs `&mut self`, so it cannot
    /// happen while the slice lives).
    ///
    /// # Example
    /// ```
    /// use mapipc::map::{MapOptions, Mmap, Protection};
    /// assert!(Mmap::anonymous(8)?.try_as_slice().is_none()); // shared: could change
    /// let mut private = MapOptions::new().len(8).private().map_anonymous()?;
    /// private.try_as_mut_slice().unwrap()[0] = 1;
    /// assert!(private.try_as_slice().is_none()); // writable through `write_at(&self)`
    /// private.set_protection(Protection::READ)?;
    /// assert_eq!(private.try_as_slice().unwrap(), &[1, 0, 0, 0, 0, 0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_as_slice(&self) -> Option<&[u8]> {
        let sealed = matches!(
            self.backing,
            Backing::File {
                sealed_write: true,
                ..
            }
        );
        if self.prot.contains(Protection::WRITE)
            || !self.prot.contains(Protection::READ)
            || !(sealed || self.exclusive_private())
        {
            return None;
        }
        // SAFETY: checked just above: nobody else can write or truncate these bytes; the
        // mapping is readable and not writable, so no safe method of this `Mmap` can write
        // them either, and making it writable (`set_protection`) or remapping it (`grow`)
        // needs `&mut self`, which the returned borrow excludes.
        Some(unsafe { self.as_slice() })
    }

    /// Mutably borrows private anonymous memory; `None` for every other kind of mapping and
    /// for mappings that are not readable and writable.
    ///
    /// # Example
    /// ```
    /// let mut scratch = mapipc::map::MapOptions::new().len(4096).private().map_anonymous()?;
    /// scratch.try_as_mut_slice().unwrap().fill(1);
    /// assert_eq!(scratch.read_vec(4095, 1)?, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_as_mut_slice(&mut self) -> Option<&mut [u8]> {
        if !self.prot.contains(Protection::READ_WRITE) || !self.exclusive_private() {
            return None;
        }
        // SAFETY: private anonymous memory is reachable only through this `Mmap` (a forked
        // child gets its own copy), `&mut self` excludes other borrows, and it is read-write.
        Some(unsafe { self.as_mut_slice() })
    }

    /// The duplicated fd of the backing file, if any (for seals, locks, `fstat`).
    pub fn file_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.backing {
            Backing::File { fd, .. } => Some(fd.as_fd()),
            Backing::Anonymous => None,
        }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // Unregister from the SIGBUS registry first, then unmap.
        self.guard = None;
        // SAFETY: `base..base+map_len` is the range we own (kept in sync by `grow`), unmapped
        // exactly once here; nothing can use it after drop.
        let _ = unsafe { os::mem::munmap(self.base, self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty range at the very end of a page-sized mapping must not touch the page after
    /// it, which belongs to some other mapping: `advise_range(DontNeed, len, 0)` once
    /// discarded the first page of the neighbouring mapping.
    ///
    /// The neighbour is made, not hoped for from the kernel's placement (which other threads
    /// change): a shared anonymous `Mmap` of two pages gets a private page (another kernel
    /// mapping, which `MADV_DONTNEED` would zero) in place of its second one, and its user
    /// range is cut to the first page. So the mapping the calls see is one page long and is
    /// followed by the neighbour's data. (`map_len` keeps both pages, which drop unmaps.)
    #[test]
    fn empty_range_at_the_end_never_touches_the_neighbouring_mapping() {
        let page = os::mem::page_size();
        let mut ours = Mmap::anonymous(2 * page).unwrap();
        assert_eq!(ours.sharing(), Sharing::Shared); // else DontNeed stops at WouldDiscard
        let neighbour = ours.as_mut_ptr().wrapping_add(page).cast::<c_void>();
        // SAFETY: the second page lies inside `ours`, which this test owns and nobody
        // borrows; its bytes may be discarded.
        unsafe { os::mem::map_zero_pages_fixed(neighbour, page) }.unwrap();
        ours.fill(page as u64, page, 0x5a).unwrap();
        ours.len = page;
        ours.advise_range(Advice::DontNeed, page as u64, 0).unwrap();
        ours.flush_range(page as u64, 0).unwrap();
        ours.flush_async_range(page as u64, 0).unwrap();
        ours.len = 2 * page;
        let kept = ours.read_vec(page as u64, page).unwrap();
        assert!(
            kept.iter().all(|&b| b == 0x5a),
            "the neighbouring mapping's data was discarded"
        );
    }
}
