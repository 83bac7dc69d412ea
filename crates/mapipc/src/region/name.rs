//! Where a named region lives: a [`Location`] is either a path or a bare [`ShmName`] in
//! `/dev/shm`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::NameError;

/// The directory bare names live in: the tmpfs that `shm_open(3)` uses on Linux.
pub const SHM_DIR: &str = "/dev/shm";

/// The longest [`ShmName`], in bytes (`NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;

/// The longest name [`Region::memfd`](super::Region::memfd) accepts, in bytes: `memfd_create`
/// prefixes it with `memfd:` and the whole must fit `NAME_MAX`.
pub const MAX_MEMFD_NAME_LEN: usize = 249;

/// A validated name of a region in [`SHM_DIR`] (`/dev/shm`): non-empty, at most
/// [`MAX_NAME_LEN`] bytes, no `/`, no NUL, not `.` or `..` and no `..` anywhere, so it can
/// never name a file outside `/dev/shm`.
///
/// # Example
/// ```
/// use mapipc::region::{NameError, ShmName};
/// let name = ShmName::new("sensor-frames")?;
/// assert_eq!(name.path(), std::path::Path::new("/dev/shm/sensor-frames"));
/// assert!(matches!(ShmName::new("../etc/passwd"), Err(NameError::Slash { .. })));
/// assert!(matches!(ShmName::new(".."), Err(NameError::Dots { .. })));
/// # Ok::<(), NameError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShmName(String);

impl ShmName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`NameError::Empty`], [`NameError::TooLong`], [`NameError::Slash`],
    /// [`NameError::Dots`], [`NameError::DotDot`], [`NameError::Nul`]; each names the bad
    /// name and says why.
    ///
    /// # Example
    /// See [`ShmName`].
    pub fn new(name: &str) -> Result<ShmName, NameError> {
        let owned = || name.to_string();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                name: owned(),
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        if name.contains('\0') {
            return Err(NameError::Nul { name: owned() });
        }
        if name.contains('/') {
            return Err(NameError::Slash { name: owned() });
        }
        if name == "." || name == ".." {
            return Err(NameError::Dots { name: owned() });
        }
        if name.contains("..") {
            return Err(NameError::DotDot { name: owned() });
        }
        Ok(ShmName(name.to_string()))
    }

    /// The name.
    ///
    /// # Example
    /// ```
    /// assert_eq!(mapipc::region::ShmName::new("x")?.as_str(), "x");
    /// # Ok::<(), mapipc::region::NameError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file: `/dev/shm/NAME`.
    ///
    /// # Example
    /// See [`ShmName`].
    pub fn path(&self) -> PathBuf {
        Path::new(SHM_DIR).join(&self.0)
    }
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ShmName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ShmName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<ShmName, NameError> {
        ShmName::new(s)
    }
}

/// Where a named region lives.
///
/// A string containing `/` is a path (absolute or relative, e.g. `./ring`); any other string
/// is a bare name in `/dev/shm`, validated as a [`ShmName`]. A [`Path`]/[`PathBuf`] is always
/// a path. `Display` shows the file, so error messages name it.
///
/// # Example
/// ```
/// use mapipc::region::Location;
/// use std::path::Path;
/// assert_eq!(Location::parse("frames")?.path(), Path::new("/dev/shm/frames"));
/// assert_eq!(Location::parse("./frames")?.path(), Path::new("./frames"));
/// assert_eq!(Location::parse("/tmp/frames")?.to_string(), "/tmp/frames");
/// assert!(Location::parse("..").is_err());
/// # Ok::<(), mapipc::region::NameError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A file anywhere.
    Path(PathBuf),
    /// A file in `/dev/shm`.
    Shm(ShmName),
}

impl Location {
    /// Parses a path (contains `/`) or a bare `/dev/shm` name (anything else).
    ///
    /// # Errors
    /// A [`NameError`] for an invalid bare name ([`NameError::NotUtf8`] for a bare name that
    /// is not UTF-8).
    ///
    /// # Example
    /// See [`Location`].
    pub fn parse(s: impl AsRef<OsStr>) -> Result<Location, NameError> {
        let s = s.as_ref();
        if s.as_bytes().contains(&b'/') {
            return Ok(Location::Path(PathBuf::from(s)));
        }
        match s.to_str() {
            Some(name) => Ok(Location::Shm(ShmName::new(name)?)),
            None => Err(NameError::NotUtf8 {
                name: s.to_string_lossy().into_owned(),
            }),
        }
    }

    /// The file this location names.
    ///
    /// # Example
    /// See [`Location`].
    pub fn path(&self) -> PathBuf {
        match self {
            Location::Path(p) => p.clone(),
            Location::Shm(n) => n.path(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Path(p) => write!(f, "{}", p.display()),
            Location::Shm(n) => write!(f, "{SHM_DIR}/{n}"),
        }
    }
}

impl From<ShmName> for Location {
    fn from(n: ShmName) -> Location {
        Location::Shm(n)
    }
}

impl FromStr for Location {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Location, NameError> {
        Location::parse(s)
    }
}

/// Anything [`Region::create`](super::Region::create) and friends accept as a location:
/// strings are [parsed](Location::parse) (bare name or path), `Path`s are paths.
///
/// # Example
/// ```
/// use mapipc::region::{IntoLocation, Location};
/// assert!(matches!("name".into_location()?, Location::Shm(_)));
/// assert!(matches!(std::path::Path::new("name").into_location()?, Location::Path(_)));
/// # Ok::<(), mapipc::region::NameError>(())
/// ```
pub trait IntoLocation {
    /// Converts, validating bare names.
    ///
    /// # Errors
    /// A [`NameError`] for an invalid bare name.
    fn into_location(self) -> Result<Location, NameError>;
}

impl IntoLocation for Location {
    fn into_location(self) -> Result<Location, NameError> {
        Ok(self)
    }
}

impl IntoLocation for &Location {
    fn into_location(self) -> Result<Location, NameError> {
        Ok(self.clone())
    }
}

impl IntoLocation for ShmName {
    fn into_location(self) -> Result<Location, NameError> {
        Ok(Location::Shm(self))
    }
}

impl IntoLocation for &ShmName {
    fn into_location(self) -> Result<Location, NameError> {
        Ok(Location::Shm(self.clone()))
    }
}

impl IntoLocation for &str {
    fn into_location(self) -> Result<Location, NameError> {
        Location::parse(self)
    }
}

impl IntoLocation for String {
    fn into_location(self) -> Result<Location, NameError> {
        Location::parse(self)
    }
}

impl IntoLocation for &String {
    fn into_location(self) -> Result<Location, NameError> {
        Location::parse(self)
    }
}

impl IntoLocation for &OsStr {
    fn into_location(self) -> Result<Location, NameError> {
        Location::parse(self)
    }
}

impl IntoLocation for OsString {
    fn into_location(self) -> Result<Location, NameError> {
        Location::parse(self)
    }
}

impl IntoLocation for &Path {
    fn into_location(self) -> Result<Location, NameError> {
        Ok(Location::Path(self.to_path_buf()))
    }
}

impl IntoLocation for PathBuf {
    fn into_location(self) -> Result<Location, NameError> {
        Ok(Location::Path(self))
    }
}

impl IntoLocation for &PathBuf {
    fn into_location(self) -> Result<Location, NameError> {
        Ok(Location::Path(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(ShmName::new("ok-name_1.2").is_ok());
        assert!(ShmName::new(&"x".repeat(255)).is_ok());
        assert!(matches!(
            ShmName::new(&"x".repeat(256)),
            Err(NameError::TooLong { len: 256, .. })
        ));
        assert!(matches!(ShmName::new(""), Err(NameError::Empty)));
        assert!(matches!(ShmName::new("."), Err(NameError::Dots { .. })));
        assert!(matches!(
            ShmName::new("a..b"),
            Err(NameError::DotDot { .. })
        ));
        assert!(matches!(ShmName::new("a/b"), Err(NameError::Slash { .. })));
        assert!(matches!(ShmName::new("a\0b"), Err(NameError::Nul { .. })));
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("a/b").unwrap(),
            Location::Path(PathBuf::from("a/b"))
        );
        assert_eq!(Location::parse("r").unwrap().to_string(), "/dev/shm/r");
        let bad = OsStr::from_bytes(b"\xff\xfe");
        assert!(matches!(
            Location::parse(bad),
            Err(NameError::NotUtf8 { .. })
        ));
    }
}
