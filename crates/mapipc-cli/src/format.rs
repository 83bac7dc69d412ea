//! Recognizing mapipc's file formats from a file's first bytes (used by `mapipc info`).
//!
//! Extension point: when the library gains a format with a header, add a variant to
//! [`Format`] and a check to [`sniff`] that compares the header's magic; `info` then opens
//! the file through the library (which validates the whole header) and prints its fields.

/// How many bytes of the file [`sniff`] looks at (more than any header's magic and version).
pub const SNIFF_LEN: usize = 64;

/// The magic at the start of a mapipc region file (channels live in regions).
const REGION_MAGIC: &[u8; 8] = b"MAPIPCRG";
/// The magics of a durable queue's files: its metadata, a segment, a named tailer.
const QUEUE_META_MAGIC: &[u8; 8] = b"MAPIPCQM";
const QUEUE_SEGMENT_MAGIC: &[u8; 8] = b"MAPIPCQS";
const QUEUE_TAILER_MAGIC: &[u8; 8] = b"MAPIPCQT";

/// A file format mapipc knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// No mapipc header: a plain file, mapped as raw bytes.
    Plain,
    /// A mapipc shared region (possibly holding a channel: see its content kind).
    Region,
    /// A durable queue's metadata file.
    QueueMeta,
    /// A durable queue's segment file.
    QueueSegment,
    /// A durable queue's named-tailer position file.
    QueueTailer,
    /// A directory holding a durable queue (its metadata file is a queue's).
    QueueDir,
}

impl Format {
    /// A short machine-readable name (`--json`).
    pub fn id(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Region => "region",
            Format::QueueMeta => "queue-meta",
            Format::QueueSegment => "queue-segment",
            Format::QueueTailer => "queue-tailer",
            Format::QueueDir => "queue-dir",
        }
    }

    /// What `info` prints.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Plain => "no mapipc header (plain file)",
            Format::Region => "mapipc shared region",
            Format::QueueMeta => "mapipc queue metadata (see `mapipc queue stat DIR`)",
            Format::QueueSegment => "mapipc queue segment (see `mapipc queue verify DIR`)",
            Format::QueueTailer => "mapipc queue named-tailer position",
            Format::QueueDir => "mapipc queue directory (see `mapipc queue stat DIR`)",
        }
    }
}

/// Identifies the format of a file from its first bytes (at most [`SNIFF_LEN`]; fewer for a
/// short file). The bytes come from a file anyone may have written: a check may only
/// compare them, never trust a length or offset found in them without validation.
pub fn sniff(head: &[u8]) -> Format {
    debug_assert!(head.len() <= SNIFF_LEN);
    match head.get(..8) {
        Some(m) if m == REGION_MAGIC => Format::Region,
        Some(m) if m == QUEUE_META_MAGIC => Format::QueueMeta,
        Some(m) if m == QUEUE_SEGMENT_MAGIC => Format::QueueSegment,
        Some(m) if m == QUEUE_TAILER_MAGIC => Format::QueueTailer,
        _ => Format::Plain,
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
        assert_eq!(sniff(b"MAPIPCQS\0\0"), Format::QueueSegment);
        assert_eq!(sniff(b"MAPIPCQM"), Format::QueueMeta);
        assert_eq!(Format::Plain.describe(), "no mapipc header (plain file)");
        assert_eq!(Format::Plain.id(), "plain");
    }
}
