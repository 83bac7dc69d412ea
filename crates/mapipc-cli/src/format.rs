//! Recognizing mapipc's file formats from a file's first bytes (used by `mapipc info`).
//!
//! Extension point: when the library gains a format with a header (region, channel,
//! queue), add a variant to [`Format`] and a check to [`sniff`] that compares the header's
//! magic through the library's own header validation, and let `info` print the validated
//! fields. The library defines no header yet, so today every file is [`Format::Plain`].

/// How many bytes of the file [`sniff`] looks at (more than any header's magic and version).
pub const SNIFF_LEN: usize = 64;

/// A file format mapipc knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// No mapipc header: a plain file, mapped as raw bytes.
    Plain,
}

impl Format {
    /// A short machine-readable name (`--json`).
    pub fn id(self) -> &'static str {
        match self {
            Format::Plain => "plain",
        }
    }

    /// What `info` prints.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Plain => "no mapipc header (plain file)",
        }
    }
}

/// Identifies the format of a file from its first bytes (at most [`SNIFF_LEN`]; fewer for a
/// short file). The bytes come from a file anyone may have written: a check may only
/// compare them, never trust a length or offset found in them without validation.
pub fn sniff(head: &[u8]) -> Format {
    // No mapipc format has a header yet (see the module docs), so nothing else can match.
    debug_assert!(head.len() <= SNIFF_LEN);
    Format::Plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_plain_until_formats_exist() {
        assert_eq!(sniff(b""), Format::Plain);
        assert_eq!(sniff(&[0xff; SNIFF_LEN]), Format::Plain);
        assert_eq!(Format::Plain.describe(), "no mapipc header (plain file)");
        assert_eq!(Format::Plain.id(), "plain");
    }
}
