//! Recognizing mapipc's file formats from a file's first bytes (used by `mapipc info`).
//!
//! Extension point: when the library gains a format with a header, add a variant to
//! [`Format`] and a check to [`sniff`] that compares the header's magic; `info` then opens
//! the file through the library (which validates the whole header) and prints its fields.

/// How many bytes of the file [`sniff`] looks at (more than any header's magic and version).
pub const SNIFF_LEN: usize = 64;

/// The magic at the start of a mapipc region file (channels live in regions).
const REGION_MAGIC: &[u8; 8] = b"MAPIPCRG";

/// A file format mapipc knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// No mapipc header: a plain file, mapped as raw bytes.
    Plain,
    /// A mapipc shared region (possibly holding a channel: see its content kind).
    Region,
}

impl Format {
    /// A short machine-readable name (`--json`).
    pub fn id(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Region => "region",
        }
    }

    /// What `info` prints.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Plain => "no mapipc header (plain file)",
            Format::Region => "mapipc shared region",
        }
    }
}

/// Identifies the format of a file from its first bytes (at most [`SNIFF_LEN`]; fewer for a
/// short file). The bytes come from a file anyone may have written: a check may only
/// compare them, never trust a length or offset found in them without validation.
pub fn sniff(head: &[u8]) -> Format {
    debug_assert!(head.len() <= SNIFF_LEN);
    if head.starts_with(REGION_MAGIC) {
        Format::Region
    } else {
        Format::Plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_decides() {
        assert_eq!(sniff(b""), Format::Plain);
        assert_eq!(sniff(&[0xff; SNIFF_LEN]), Format::Plain);
        assert_eq!(sniff(b"MAPIPCRG\x01"), Format::Region);
        assert_eq!(sniff(b"MAPIPCR"), Format::Plain);
        assert_eq!(Format::Plain.describe(), "no mapipc header (plain file)");
        assert_eq!(Format::Plain.id(), "plain");
    }
}
