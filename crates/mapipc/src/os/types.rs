//! The plain data types of the OS layer's interface: arguments and results of the wrappers
//! in [`file`](super::file), [`mem`](super::mem) and [`futex`](super::futex). They hold no
//! platform types, so every implementation (Linux, and the stub elsewhere) re-exports these
//! same definitions and the layers above see one set of types whatever the platform.

// ---- file ----

/// How to open a file with [`open`](super::file::open).
///
/// # Example
/// See [`open`](super::file::open).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenHow {
    /// Open for writing as well as reading (`O_RDWR`, else `O_RDONLY`).
    pub write: bool,
    /// `O_CREAT`.
    pub create: bool,
    /// `O_EXCL` (with `create`: fail if the file exists).
    pub exclusive: bool,
    /// `O_NOFOLLOW`: refuse a symbolic link as the last component.
    pub no_follow: bool,
    /// `O_DIRECTORY`: the path must be a directory (opened read-only).
    pub directory: bool,
    /// `O_NONBLOCK`: never block in `open` (a FIFO without a writer would otherwise hang;
    /// no effect on regular files).
    pub nonblock: bool,
    /// Permission bits for a created file (before the umask).
    pub mode: u32,
}

/// What kind of file an fd refers to.
///
/// # Example
/// ```
/// use mapipc::os::file::{stat, FileKind};
/// assert_eq!(stat("/".as_ref())?.kind, FileKind::Directory);
/// assert_eq!(stat("/dev/null".as_ref())?.kind, FileKind::CharDevice);
/// assert_eq!(FileKind::Fifo.to_string(), "a FIFO"); // for messages: "`x` is a FIFO"
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (including a memfd).
    Regular,
    /// A directory.
    Directory,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
    /// A FIFO (named pipe).
    Fifo,
    /// A socket.
    Socket,
    /// A symbolic link (only seen with `O_PATH`).
    Symlink,
    /// Anything else.
    Other,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::BlockDevice => "a block device",
            FileKind::CharDevice => "a character device",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::Symlink => "a symbolic link",
            FileKind::Other => "not a regular file",
        })
    }
}

/// The fields of `fstat` that mapipc uses.
///
/// # Example
/// See [`fstat`](super::file::fstat).
#[derive(Clone, Copy, Debug)]
pub struct FileInfo {
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// File type.
    pub kind: FileKind,
    /// Owner (`st_uid`).
    pub uid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Device (`st_dev`).
    pub dev: u64,
    /// Inode (`st_ino`).
    pub ino: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// The access mode an fd was opened with (`fcntl(F_GETFL) & O_ACCMODE`).
///
/// # Example
/// See [`access_mode`](super::file::access_mode); `Display` names the flag:
/// ```
/// use mapipc::os::file::AccessMode;
/// assert_eq!(AccessMode::ReadOnly.to_string(), "read-only (O_RDONLY)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessMode {
    /// `O_RDONLY`
    ReadOnly,
    /// `O_WRONLY`
    WriteOnly,
    /// `O_RDWR`
    ReadWrite,
    /// `O_PATH` (no I/O at all)
    PathOnly,
}

impl std::fmt::Display for AccessMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessMode::ReadOnly => "read-only (O_RDONLY)",
            AccessMode::WriteOnly => "write-only (O_WRONLY)",
            AccessMode::ReadWrite => "read-write (O_RDWR)",
            AccessMode::PathOnly => "path-only (O_PATH)",
        })
    }
}

/// File seals (`F_SEAL_*`).
///
/// # Example
/// See [`add_seals`](super::file::add_seals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seals {
    /// `F_SEAL_SEAL`: no further seals may be added.
    pub seal: bool,
    /// `F_SEAL_SHRINK`: the file can never get smaller (so a mapping can never SIGBUS).
    pub shrink: bool,
    /// `F_SEAL_GROW`: the file can never get larger.
    pub grow: bool,
    /// `F_SEAL_WRITE`: nobody can write the file any more.
    pub write: bool,
}

// ---- mem ----

/// Protection bits, as `PROT_READ | PROT_WRITE | PROT_EXEC`; empty is `PROT_NONE`.
///
/// # Example
/// See [`mmap_anonymous`](super::mem::mmap_anonymous).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prot {
    /// `PROT_READ`
    pub read: bool,
    /// `PROT_WRITE`
    pub write: bool,
    /// `PROT_EXEC`
    pub exec: bool,
}

/// `MAP_SHARED` or `MAP_PRIVATE`, plus `MAP_POPULATE`.
///
/// # Example
/// See [`mmap_file`](super::mem::mmap_file).
#[derive(Clone, Copy, Debug)]
pub struct MapKind {
    /// `MAP_SHARED` when true, `MAP_PRIVATE` when false.
    pub shared: bool,
    /// `MAP_POPULATE`: prefault the pages.
    pub populate: bool,
}

/// Advice accepted by [`madvise`](super::mem::madvise).
///
/// # Example
/// See [`mmap_anonymous`](super::mem::mmap_anonymous).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// `MADV_NORMAL`
    Normal,
    /// `MADV_SEQUENTIAL`
    Sequential,
    /// `MADV_RANDOM`
    Random,
    /// `MADV_WILLNEED`
    WillNeed,
    /// `MADV_DONTNEED`
    DontNeed,
    /// `MADV_HUGEPAGE`
    HugePage,
    /// `MADV_NOHUGEPAGE`
    NoHugePage,
}

// ---- futex ----

/// Why [`wait`](super::futex::wait) returned.
///
/// # Example
/// See [`wait`](super::futex::wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// Woken by `FUTEX_WAKE`, or spuriously (signal, `EINTR`): re-check the condition.
    Woken,
    /// The word did not hold `expected` when the kernel looked (`EAGAIN`).
    Changed,
    /// The timeout passed (`ETIMEDOUT`).
    TimedOut,
}
