//! Memory-management calls: `mmap`, `munmap`, `mremap`, `msync`, `madvise`, `mlock`,
//! `mlock2`, `mincore`, `mprotect`, and the page size.
//!
//! # References
//! - [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
//!   [`mremap(2)`](https://man7.org/linux/man-pages/man2/mremap.2.html),
//!   [`msync(2)`](https://man7.org/linux/man-pages/man2/msync.2.html),
//!   [`madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html),
//!   [`mlock(2)`](https://man7.org/linux/man-pages/man2/mlock.2.html),
//!   [`mincore(2)`](https://man7.org/linux/man-pages/man2/mincore.2.html)

use std::ffi::c_void;
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::mm::{self, MapFlags, MprotectFlags, MremapFlags, MsyncFlags, ProtFlags};

pub use crate::os::types::{Advice, MapKind, Prot};

impl Prot {
    fn flags(self) -> ProtFlags {
        let mut f = ProtFlags::empty();
        if self.read {
            f |= ProtFlags::READ;
        }
        if self.write {
            f |= ProtFlags::WRITE;
        }
        if self.exec {
            f |= ProtFlags::EXEC;
        }
        f
    }
}

impl MapKind {
    fn flags(self) -> MapFlags {
        let mut f = if self.shared {
            MapFlags::SHARED
        } else {
            MapFlags::PRIVATE
        };
        if self.populate {
            f |= MapFlags::POPULATE;
        }
        f
    }
}

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The system page size (`sysconf(_SC_PAGESIZE)`, read from the auxiliary vector once).
///
/// # Example
/// ```
/// let page = mapipc::os::mem::page_size();
/// assert!(page >= 4096 && page.is_power_of_two());
/// ```
pub fn page_size() -> usize {
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let size = rustix::param::page_size();
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// `mmap(NULL, len, prot, flags, fd, offset)` of a file.
///
/// # Safety
/// - `offset` must be a multiple of the page size and `len` non-zero (the kernel checks both,
///   so violating them gives `EINVAL`, not unsoundness);
/// - the caller owns the returned range and must unmap it exactly once with [`munmap`]
///   using the same `len`.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::{file, mem::{self, MapKind, Prot}};
/// let fd = file::memfd_create("mapped")?;
/// file::pwrite_all(fd.as_fd(), b"from the file", 0)?;
/// let len = mem::page_size();
/// let prot = Prot { read: true, write: true, exec: false };
/// let kind = MapKind { shared: true, populate: false };
/// // SAFETY: offset 0 is page-aligned, `len` is non-zero; the range is unmapped once below.
/// let ptr = unsafe { mem::mmap_file(len, prot, kind, fd.as_fd(), 0) }?;
/// let bytes = ptr.as_ptr().cast::<u8>();
/// // SAFETY: the file is 13 bytes long, inside the first (mapped) page; nobody else uses it.
/// unsafe {
///     assert_eq!(std::slice::from_raw_parts(bytes, 13), b"from the file");
///     bytes.write(b'F'); // shared: reaches the file
///     mem::msync(ptr.as_ptr(), len, true)?;
///     mem::munmap(ptr, len)?;
/// }
/// let mut first = [0];
/// file::pread(fd.as_fd(), &mut first, 0)?;
/// assert_eq!(&first, b"F");
/// # Ok::<(), std::io::Error>(())
/// ```
pub unsafe fn mmap_file(
    len: usize,
    prot: Prot,
    kind: MapKind,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<NonNull<c_void>> {
    // SAFETY: a NULL hint lets the kernel choose an unused range, so no existing mapping is
    // replaced; the caller takes ownership of the new range (see `# Safety`).
    let ptr = unsafe {
        mm::mmap(
            std::ptr::null_mut(),
            len,
            prot.flags(),
            kind.flags(),
            fd,
            offset,
        )
    }?;
    NonNull::new(ptr).ok_or_else(|| io::Error::other("mmap returned NULL"))
}

/// Whether an error of [`mmap_file`] says the file cannot be mapped at all: `ENODEV` (`/sys`,
/// most of `/proc` and other files generated on read), or `EIO`, which `/proc` files made
/// with `proc_create_single` (`/proc/cpuinfo`, `/proc/meminfo`, `/proc/version`) return
/// instead (`proc_reg_mmap` in `fs/proc/inode.c`). `mmap` reads nothing, so `EIO` is not a
/// failing disk here.
///
/// # Example
/// See [`probe_map`].
pub fn not_mappable(e: &io::Error) -> bool {
    let errno = e.raw_os_error();
    errno == Some(rustix::io::Errno::NODEV.raw_os_error())
        || errno == Some(rustix::io::Errno::IO.raw_os_error())
}

/// Whether `fd`'s file can be memory-mapped at all, whatever its size: `mmap` of one page,
/// read-only and shared, at offset 0, unmapped at once. Nothing is read (a page past the
/// end of a file is only looked up when touched), so an empty regular file maps, while a
/// file of `/proc` or `/sys` fails with `ENODEV` ([`not_mappable`]). `fd` must be readable.
/// Unlike reading a byte to tell an empty file from a generated one, this consumes nothing
/// (`/proc/kmsg` gives each byte once).
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use mapipc::os::{file, mem};
/// let empty = file::memfd_create("empty")?;
/// mem::probe_map(empty.as_fd())?; // 0 bytes, but mappable once sized
/// let proc_file = std::fs::File::open("/proc/self/status")?;
/// let err = mem::probe_map(proc_file.as_fd()).unwrap_err();
/// assert!(mem::not_mappable(&err), "{err}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn probe_map(fd: BorrowedFd<'_>) -> io::Result<()> {
    let kind = MapKind {
        shared: true,
        populate: false,
    };
    let len = page_size();
    let read = Prot {
        read: true,
        write: false,
        exec: false,
    };
    // SAFETY: offset 0 is page-aligned and `len` non-zero; the range is ours and is
    // unmapped right below with the same length, never touched in between.
    let ptr = unsafe { mmap_file(len, read, kind, fd, 0) }?;
    // SAFETY: `ptr..ptr+len` is the mapping made above, unmapped once here.
    unsafe { munmap(ptr, len) }
}

/// `mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0)`.
///
/// # Safety
/// The caller owns the returned range and must unmap it exactly once with [`munmap`] using the
/// same `len`.
///
/// # Example
/// ```
/// use mapipc::os::mem::{self, Advice, MapKind, Prot};
/// let len = 2 * mem::page_size();
/// let rw = Prot { read: true, write: true, exec: false };
/// let kind = MapKind { shared: false, populate: false };
/// // SAFETY: we own the new range and unmap it once below, after the last use.
/// let ptr = unsafe { mem::mmap_anonymous(len, rw, kind) }?;
/// let p = ptr.as_ptr();
/// // SAFETY: `p..p+len` is that private mapping, used by nothing else; every range below is
/// // page-aligned and inside it; no reference into it is held across the calls.
/// unsafe {
///     p.cast::<u8>().write(7);
///     mem::madvise(p, len, Advice::WillNeed)?;
///     mem::mprotect(p, len, Prot { read: true, write: false, exec: false })?;
///     assert_eq!(p.cast::<u8>().read(), 7);
///     mem::mprotect(p, len, rw)?;
///     mem::map_zero_pages_fixed(p, mem::page_size())?; // the first page is zeros again
///     assert_eq!(p.cast::<u8>().read(), 0);
///     // Grow it (it may move): the old pointer must not be used any more.
///     let moved = mem::mremap(ptr, len, 2 * len)?;
///     moved.as_ptr().cast::<u8>().add(2 * len - 1).write(1);
///     mem::munmap(moved, 2 * len)?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub unsafe fn mmap_anonymous(len: usize, prot: Prot, kind: MapKind) -> io::Result<NonNull<c_void>> {
    // SAFETY: a NULL hint never replaces an existing mapping.
    let ptr = unsafe { mm::mmap_anonymous(std::ptr::null_mut(), len, prot.flags(), kind.flags()) }?;
    NonNull::new(ptr).ok_or_else(|| io::Error::other("mmap returned NULL"))
}

/// `mmap(addr, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)`:
/// replaces the pages at `addr` with fresh zero pages. Async-signal-safe (one raw syscall,
/// `errno` untouched).
///
/// # Safety
/// `addr..addr+len` must lie inside a mapping owned by the caller whose contents may be
/// discarded; any reference into that range becomes dangling in meaning (the bytes change).
///
/// # Example
/// See [`mmap_anonymous`].
pub unsafe fn map_zero_pages_fixed(addr: *mut c_void, len: usize) -> io::Result<()> {
    // SAFETY: MAP_FIXED replaces exactly the caller-owned range described above.
    unsafe {
        mm::mmap_anonymous(
            addr,
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE | MapFlags::FIXED,
        )
    }
    .map(|_| ())
    .map_err(Into::into)
}

/// `munmap(addr, len)`.
///
/// # Safety
/// `addr..addr+len` must be a range returned by one of the `mmap_*` functions (or
/// [`mremap`]) and not yet unmapped, and nothing may use it afterwards.
///
/// # Example
/// See [`mmap_anonymous`].
pub unsafe fn munmap(addr: NonNull<c_void>, len: usize) -> io::Result<()> {
    // SAFETY: guaranteed by the caller.
    unsafe { mm::munmap(addr.as_ptr(), len) }.map_err(Into::into)
}

/// `mremap(addr, old_len, new_len, MREMAP_MAYMOVE)`.
///
/// # Safety
/// `addr..addr+old_len` must be a live mapping owned by the caller. On success the old range
/// must no longer be used (the mapping may have moved); the new range is owned instead.
///
/// # Example
/// See [`mmap_anonymous`].
pub unsafe fn mremap(
    addr: NonNull<c_void>,
    old_len: usize,
    new_len: usize,
) -> io::Result<NonNull<c_void>> {
    // SAFETY: guaranteed by the caller; MAYMOVE lets the kernel pick a free range.
    let ptr = unsafe { mm::mremap(addr.as_ptr(), old_len, new_len, MremapFlags::MAYMOVE) }?;
    NonNull::new(ptr).ok_or_else(|| io::Error::other("mremap returned NULL"))
}

/// `msync(addr, len, MS_SYNC or MS_ASYNC)`.
///
/// # Safety
/// `addr` must be page-aligned and `addr..addr+len` inside a live mapping owned by the caller.
///
/// # Example
/// See [`mmap_file`].
pub unsafe fn msync(addr: *mut c_void, len: usize, sync: bool) -> io::Result<()> {
    let flags = if sync {
        MsyncFlags::SYNC
    } else {
        MsyncFlags::ASYNC
    };
    // SAFETY: guaranteed by the caller; msync never changes memory contents.
    unsafe { mm::msync(addr, len, flags) }.map_err(Into::into)
}

/// `madvise(addr, len, advice)`.
///
/// # Safety
/// `addr` must be page-aligned and `addr..addr+len` inside a live mapping owned by the caller.
/// With [`Advice::DontNeed`] on a private mapping, its private changes are discarded: the
/// caller must hold no reference into the range and accept the loss.
///
/// # Example
/// See [`mmap_anonymous`].
pub unsafe fn madvise(addr: *mut c_void, len: usize, advice: Advice) -> io::Result<()> {
    let a = match advice {
        Advice::Normal => mm::Advice::Normal,
        Advice::Sequential => mm::Advice::Sequential,
        Advice::Random => mm::Advice::Random,
        Advice::WillNeed => mm::Advice::WillNeed,
        Advice::DontNeed => mm::Advice::LinuxDontNeed,
        Advice::HugePage => mm::Advice::LinuxHugepage,
        Advice::NoHugePage => mm::Advice::LinuxNoHugepage,
    };
    // SAFETY: guaranteed by the caller.
    unsafe { mm::madvise(addr, len, a) }.map_err(Into::into)
}

/// `mlock(addr, len)` or `munlock(addr, len)`.
///
/// # Safety
/// `addr..addr+len` must be inside a live mapping owned by the caller.
///
/// # Example
/// Whether locking succeeds depends on `RLIMIT_MEMLOCK` (`ulimit -l`):
/// ```
/// use mapipc::os::mem::{self, MapKind, Prot};
/// let len = mem::page_size();
/// let rw = Prot { read: true, write: true, exec: false };
/// // SAFETY: we own the new range and unmap it once below.
/// let ptr = unsafe { mem::mmap_anonymous(len, rw, MapKind { shared: false, populate: true }) }?;
/// // SAFETY: the whole live mapping made above.
/// match unsafe { mem::mlock(ptr.as_ptr(), len, true) } {
///     Ok(()) => unsafe { mem::mlock(ptr.as_ptr(), len, false)? }, // SAFETY: as above
///     Err(e) => assert!(matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOMEM)), "{e}"),
/// }
/// // SAFETY: unmapped once, never used again.
/// unsafe { mem::munmap(ptr, len) }?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub unsafe fn mlock(addr: *mut c_void, len: usize, lock: bool) -> io::Result<()> {
    // SAFETY: guaranteed by the caller; locking never changes memory contents.
    let r = unsafe {
        if lock {
            mm::mlock(addr, len)
        } else {
            mm::munlock(addr, len)
        }
    };
    r.map_err(Into::into)
}

/// `mlock2(addr, len, MLOCK_ONFAULT)`: locks the pages of the range that are resident and
/// marks the rest to be locked when they are faulted in, without faulting anything in. The
/// kernel checks `RLIMIT_MEMLOCK` (and `CAP_IPC_LOCK`) as for [`mlock`], so a range this
/// call accepts was not refused by the limit. Undo it with `mlock(addr, len, false)`.
///
/// # Safety
/// `addr..addr+len` must be inside a live mapping owned by the caller.
///
/// # Example
/// ```
/// use mapipc::os::mem::{self, MapKind, Prot};
/// let len = 4 * mem::page_size();
/// let rw = Prot { read: true, write: true, exec: false };
/// // SAFETY: we own the new range and unmap it once below.
/// let ptr = unsafe { mem::mmap_anonymous(len, rw, MapKind { shared: false, populate: false }) }?;
/// // SAFETY: the whole live mapping made above (for every call below).
/// unsafe {
///     if mem::mlock_on_fault(ptr.as_ptr(), len).is_ok() {
///         // Nothing was faulted in.
///         assert_eq!(mem::first_not_resident(ptr.as_ptr(), len)?, Some(0));
///         mem::mlock(ptr.as_ptr(), len, false)?;
///     }
///     mem::munmap(ptr, len)?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "mlock2")]
pub unsafe fn mlock_on_fault(addr: *mut c_void, len: usize) -> io::Result<()> {
    // SAFETY: guaranteed by the caller; locking never changes memory contents.
    unsafe { mm::mlock_with(addr, len, mm::MlockFlags::ONFAULT) }.map_err(Into::into)
}

/// `mincore(addr, len, vec)`: the offset from `addr` of the first page of the range that
/// is not resident (in the page cache, for a file mapping), or `None` if every page is.
/// Asks in batches of 4096 pages.
///
/// # Safety
/// `addr` must be page-aligned and `addr..addr+len` inside a live mapping owned by the
/// caller (the kernel checks both, failing with `EINVAL`/`ENOMEM`, so this is about
/// meaning, not soundness; the call changes nothing).
///
/// # Example
/// See [`mlock_on_fault`].
#[doc(alias = "mincore")]
pub unsafe fn first_not_resident(addr: *mut c_void, len: usize) -> io::Result<Option<usize>> {
    const BATCH: usize = 4096;
    let page = page_size();
    let mut vec = [0u8; BATCH];
    let mut done = 0;
    while done < len {
        let span = (len - done).min(BATCH * page);
        // SAFETY: `vec` has room for the `span.div_ceil(page) <= BATCH` bytes the kernel
        // writes; the range is the caller's (see `# Safety`). rustix has no `mincore`.
        let r = unsafe {
            libc::mincore(
                addr.cast::<u8>().wrapping_add(done).cast(),
                span,
                vec.as_mut_ptr(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(i) = vec[..span.div_ceil(page)].iter().position(|b| b & 1 == 0) {
            return Ok(Some(done + i * page));
        }
        done += span;
    }
    Ok(None)
}

/// `mprotect(addr, len, prot)`.
///
/// # Safety
/// `addr` must be page-aligned and `addr..addr+len` inside a live mapping owned by the
/// caller; no reference into the range may be used in a way the new protection forbids.
///
/// # Example
/// See [`mmap_anonymous`].
pub unsafe fn mprotect(addr: *mut c_void, len: usize, prot: Prot) -> io::Result<()> {
    let mut f = MprotectFlags::empty();
    if prot.read {
        f |= MprotectFlags::READ;
    }
    if prot.write {
        f |= MprotectFlags::WRITE;
    }
    if prot.exec {
        f |= MprotectFlags::EXEC;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { mm::mprotect(addr, len, f) }.map_err(Into::into)
}
