//! The message format every transport carries, and its check.
//!
//! A message of `size` bytes (at least [`MIN_SIZE`]) is:
//!
//! | bytes | content |
//! |---|---|
//! | `0..8` | the sequence number, little-endian |
//! | `8..size-8` | filler (`0x5a`), not checked |
//! | `size-8..size` | the sequence number XOR [`TAIL_KEY`] (only when `size >= 16`) |
//!
//! The receiver checks the head against the number it expects next (a dropped, duplicated or
//! reordered message changes it) and the tail against the head (a torn, shifted or truncated
//! message changes it). The filler is not read: reading it would add a pass over the payload
//! that zero-copy transports do not need, and the head and tail already catch framing errors.
//!
//! A sequence number with [`END`] set closes a phase: its low bits carry the number of messages
//! sent in the phase.
//!
//! # Example
//! ```
//! use mapipc_bench::frame::{self, Frame};
//! let mut msg = frame::template(64);
//! frame::stamp(&mut msg, 41);
//! let f = Frame::read(&msg);
//! assert_eq!(f.check(64), Ok(41));
//! msg[63] ^= 1; // corrupt the tail
//! assert!(Frame::read(&msg).check(64).is_err());
//! ```

/// Smallest message the harness sends: the sequence number.
pub const MIN_SIZE: usize = 8;

/// XOR-ed into the sequence number to make the tail word.
pub const TAIL_KEY: u64 = 0xa5c3_5a3c_96e1_1e69;

/// Set in the sequence number of the message closing a phase.
pub const END: u64 = 1 << 63;

/// The byte that fills the middle of every message.
pub const FILLER: u8 = 0x5a;

/// Offset of the tail word in a message of `size` bytes (for sizes below 16 it overlaps the
/// head and is not checked).
pub fn tail_offset(size: usize) -> usize {
    size.saturating_sub(8)
}

/// A message of `size` bytes with sequence number 0 (`size >= 8`).
///
/// # Panics
/// If `size < MIN_SIZE`.
pub fn template(size: usize) -> Vec<u8> {
    assert!(
        size >= MIN_SIZE,
        "messages carry at least a sequence number"
    );
    let mut v = vec![FILLER; size];
    stamp(&mut v, 0);
    v
}

/// Writes `seq` into the head (and tail) of `msg` in place.
///
/// # Panics
/// If `msg` is shorter than [`MIN_SIZE`].
#[inline]
pub fn stamp(msg: &mut [u8], seq: u64) {
    let size = msg.len();
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    if size >= 16 {
        msg[size - 8..].copy_from_slice(&(seq ^ TAIL_KEY).to_le_bytes());
    }
}

/// The two checked words of a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Bytes `0..8`, little-endian.
    pub head: u64,
    /// Bytes `size-8..size`, little-endian.
    pub tail: u64,
}

/// What is wrong with a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt {
    /// The head word (the sequence number it claims).
    pub head: u64,
    /// The tail word found.
    pub tail: u64,
}

impl Frame {
    /// Reads the head and tail of a whole message.
    ///
    /// # Panics
    /// If `msg` is shorter than [`MIN_SIZE`].
    #[inline]
    pub fn read(msg: &[u8]) -> Frame {
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&msg[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Frame {
            head: word(0),
            tail: word(tail_offset(msg.len())),
        }
    }

    /// Checks the tail against the head for a message of `size` bytes and returns the
    /// sequence number.
    ///
    /// # Errors
    /// [`Corrupt`] when the tail does not match.
    #[inline]
    pub fn check(self, size: usize) -> Result<u64, Corrupt> {
        if size >= 16 && self.tail != self.head ^ TAIL_KEY {
            return Err(Corrupt {
                head: self.head,
                tail: self.tail,
            });
        }
        Ok(self.head)
    }
}
