//! Directory and durability calls used by the durable queue: `mkdir`, `getdents64`
//! (directory listing), `renameat2(RENAME_NOREPLACE)`, `rename`, `fsync` of a directory,
//! and reading the kernel's boot id.
//!
//! # References
//! - [`mkdir(2)`](https://man7.org/linux/man-pages/man2/mkdir.2.html),
//!   [`getdents64(2)`](https://man7.org/linux/man-pages/man2/getdents64.2.html),
//!   [`rename(2)`](https://man7.org/linux/man-pages/man2/rename.2.html) (`renameat2`,
//!   `RENAME_NOREPLACE`), [`fsync(2)`](https://man7.org/linux/man-pages/man2/fsync.2.html),
//!   [`random(4)`](https://man7.org/linux/man-pages/man4/random.4.html) (`boot_id`)

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self, Mode, OFlags, RenameFlags, CWD};
use rustix::io::Errno;

use super::file::{self, OpenHow};

/// `mkdir(path, mode)`. Returns `Ok(true)` when the directory was created, `Ok(false)` when
/// `path` already exists as a directory (following symbolic links), and an error otherwise
/// (`EEXIST` when it exists but is not a directory).
///
/// # Example
/// ```
/// use mapipc::os::storage;
/// # let dir = tempfile::tempdir()?;
/// let sub = dir.path().join("sub");
/// assert!(storage::create_dir(&sub, 0o700)?);
/// assert!(!storage::create_dir(&sub, 0o700)?); // already there
/// assert!(storage::is_dir(&sub));
/// std::fs::write(sub.join("f"), b"")?;
/// assert!(!storage::is_dir(&sub.join("f")));
/// assert!(storage::create_dir(&sub.join("f"), 0o700).is_err()); // exists, not a directory
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_dir(path: &Path, mode: u32) -> io::Result<bool> {
    match fs::mkdir(path, Mode::from_raw_mode(mode)) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => {
            let st = fs::stat(path)?;
            if fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Directory {
                Ok(false)
            } else {
                Err(Errno::EXIST.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// `stat(path)` (following symbolic links): whether `path` is a directory.
///
/// # Example
/// See [`create_dir`].
pub fn is_dir(path: &Path) -> bool {
    fs::stat(path)
        .is_ok_and(|st| fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Directory)
}

/// The names in directory `path` (`open(O_DIRECTORY)` + `getdents64`), without `.` and
/// `..`, in no particular order.
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a"), b"")?;
/// std::fs::create_dir(dir.path().join("b"))?;
/// let mut names = mapipc::os::storage::list_dir(dir.path())?;
/// names.sort();
/// assert_eq!(names, ["a", "b"]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn list_dir(path: &Path) -> io::Result<Vec<OsString>> {
    let fd = file::open(
        path,
        OpenHow {
            directory: true,
            ..OpenHow::default()
        },
    )?;
    let mut dir = fs::Dir::new(fd)?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(std::ffi::OsStr::from_bytes(name).to_os_string());
    }
    Ok(names)
}

/// `rename(from, to)`: atomically replaces `to`.
///
/// # Example
/// ```
/// use mapipc::os::storage;
/// # let dir = tempfile::tempdir()?;
/// let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
/// std::fs::write(&a, b"new")?;
/// std::fs::write(&b, b"old")?;
/// assert!(!storage::rename_noreplace(&a, &b)?); // `b` exists: nothing moved
/// assert!(a.exists());
/// assert!(storage::rename_noreplace(&a, &c)?);
/// storage::rename(&c, &b)?; // replaces `b`
/// assert_eq!(std::fs::read(&b)?, b"new");
/// storage::fsync_dir(dir.path())?; // makes the renames durable
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    Ok(fs::rename(from, to)?)
}

/// `renameat2(from, to, RENAME_NOREPLACE)`: moves `from` to `to` unless `to` exists, as one
/// atomic step. Returns `Ok(false)` (and leaves `from` in place) when `to` exists. On a
/// filesystem without `RENAME_NOREPLACE` it falls back to `link(from, to)` + `unlink(from)`,
/// which is just as exclusive.
///
/// # Example
/// See [`rename`].
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<bool> {
    match fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(Errno::INVAL) | Err(Errno::NOSYS) => match fs::link(from, to) {
            Ok(()) => {
                fs::unlink(from)?;
                Ok(true)
            }
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// `fsync` of a directory (`open(O_DIRECTORY)` + `fsync`): makes the creation, renaming and
/// removal of its entries durable.
///
/// # Example
/// See [`rename`].
pub fn fsync_dir(path: &Path) -> io::Result<()> {
    let fd = file::open(
        path,
        OpenHow {
            directory: true,
            ..OpenHow::default()
        },
    )?;
    Ok(fs::fsync(fd)?)
}

/// The kernel's random boot id (`/proc/sys/kernel/random/boot_id`, a UUID chosen at every
/// boot) as 16 bytes: two values differ exactly when the machine rebooted in between. All
/// zeros when `/proc` is not available. Read once per process (it cannot change while the
/// process lives).
///
/// # Example
/// ```
/// let id = mapipc::os::storage::boot_id();
/// assert_eq!(id, mapipc::os::storage::boot_id()); // stable within a boot
/// assert_ne!(id, [0; 16]); // /proc is there on Linux
/// ```
pub fn boot_id() -> [u8; 16] {
    static ID: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    *ID.get_or_init(read_boot_id)
}

fn read_boot_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    let Ok(fd) = fs::open(
        "/proc/sys/kernel/random/boot_id",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return id;
    };
    let mut text = [0u8; 64];
    let n = loop {
        match rustix::io::read(&fd, &mut text) {
            Ok(n) => break n,
            Err(Errno::INTR) => continue,
            Err(_) => return id,
        }
    };
    let hex = text[..n].iter().filter(|b| b.is_ascii_hexdigit());
    let mut nibbles = 0usize;
    for (i, b) in hex.take(32).enumerate() {
        let v = (*b as char).to_digit(16).unwrap_or(0) as u8;
        id[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
        nibbles += 1;
    }
    if nibbles != 32 {
        return [0u8; 16];
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_id_is_stable_and_not_zero() {
        let a = boot_id();
        assert_ne!(a, [0u8; 16]);
        assert_eq!(a, boot_id());
    }

    #[test]
    fn rename_noreplace_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        assert!(!rename_noreplace(&a, &b).unwrap());
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        std::fs::remove_file(&b).unwrap();
        assert!(rename_noreplace(&a, &b).unwrap());
        assert!(!a.exists());
    }

    #[test]
    fn create_and_list_dir() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("q");
        assert!(create_dir(&sub, 0o700).unwrap());
        assert!(!create_dir(&sub, 0o700).unwrap());
        std::fs::write(sub.join("x"), b"").unwrap();
        assert_eq!(list_dir(&sub).unwrap(), vec![OsString::from("x")]);
        let file = sub.join("x");
        assert!(create_dir(&file, 0o700).is_err());
        fsync_dir(&sub).unwrap();
    }
}
