//! A `Read + Write + Seek` view of a mapping.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::Mmap;

/// A file-like cursor over a [`Mmap`], created by [`Mmap::cursor`].
///
/// Reads stop at the end of the mapping (returning 0, end of file); writes past the end
/// write what fits and then return 0, so `write_all` fails with `WriteZero` instead of
/// touching memory outside the mapping. Seeking past the end is allowed, as for files.
///
/// # Example
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// let map = mapipc::map::Mmap::anonymous(64)?;
/// writeln!(map.cursor(), "line one\nline two")?;
/// let mut lines = BufReader::new(map.cursor()).lines();
/// assert_eq!(lines.next().unwrap()?, "line one");
///
/// let mut cursor = map.cursor();
/// cursor.set_position(5);
/// let mut word = [0; 3];
/// std::io::Read::read_exact(&mut cursor, &mut word)?;
/// assert_eq!(&word, b"one");
/// assert_eq!(cursor.position(), 8);
/// assert_eq!(cursor.get_ref().len(), 64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    map: &'a Mmap,
    pos: u64,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(map: &'a Mmap) -> Self {
        Cursor { map, pos: 0 }
    }

    /// The current position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Sets the position (may be past the end).
    pub fn set_position(&mut self, pos: u64) {
        self.pos = pos;
    }

    /// The mapping.
    pub fn get_ref(&self) -> &'a Mmap {
        self.map
    }

    fn remaining(&self) -> usize {
        (self.map.len() as u64).saturating_sub(self.pos) as usize
    }
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.remaining());
        if n == 0 {
            return Ok(0);
        }
        self.map.read_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Cursor<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.remaining());
        if n == 0 {
            return Ok(0);
        }
        self.map.write_at(self.pos, &data[..n])?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.map.flush().map_err(io::Error::other)
    }
}

impl Seek for Cursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(p) => {
                self.pos = p;
                return Ok(p);
            }
            SeekFrom::End(d) => (self.map.len() as u64, d),
            SeekFrom::Current(d) => (self.pos, d),
        };
        match base.checked_add_signed(delta) {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid seek to a negative or overflowing position",
            )),
        }
    }
}
