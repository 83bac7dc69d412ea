//! Directory and durability calls used by the durable queue (stub): every fallible call
//! fails with an "unsupported" error; see the [`os` module docs](crate::os).

use std::ffi::OsString;
use std::io;
use std::path::Path;

use super::unsupported;

/// `mkdir(path, mode)` on Linux; unsupported here.
pub fn create_dir(_path: &Path, _mode: u32) -> io::Result<bool> {
    Err(unsupported("mkdir"))
}

/// Whether `path` is a directory, following symbolic links: [`Path::is_dir`] (a `stat`, as
/// on Linux).
pub fn is_dir(path: &Path) -> bool {
    path.is_dir()
}

/// The names in a directory (`getdents64`) on Linux; unsupported here.
pub fn list_dir(_path: &Path) -> io::Result<Vec<OsString>> {
    Err(unsupported("getdents64"))
}

/// `rename(from, to)` on Linux; unsupported here.
pub fn rename(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(unsupported("rename"))
}

/// `renameat2(from, to, RENAME_NOREPLACE)` on Linux; unsupported here.
pub fn rename_noreplace(_from: &Path, _to: &Path) -> io::Result<bool> {
    Err(unsupported("renameat2(RENAME_NOREPLACE)"))
}

/// `fsync` of a directory on Linux; unsupported here.
pub fn fsync_dir(_path: &Path) -> io::Result<()> {
    Err(unsupported("fsync"))
}

/// The kernel's boot id: all zeros here, what Linux also returns when
/// `/proc/sys/kernel/random/boot_id` cannot be read.
pub fn boot_id() -> [u8; 16] {
    [0u8; 16]
}
