//! Channel errors, one type per operation (as crossbeam-channel does).
//!
//! Every send and receive error also carries the three ways the channel itself can be
//! broken (corrupted shared memory, a truncated file, a failed futex call); one macro adds
//! them, so each operation's type lists only its own outcomes here.

use std::io;

use crate::map::AccessError;
use crate::region::{CreateError, JoinError, OpenError};

/// The channel's shared state is unusable: what every operation can report besides its own
/// outcomes. Used inside the operation errors' `From` conversions.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    #[error("channel `{file}` is corrupted at offset {offset}: {what}")]
    Corrupted {
        file: String,
        offset: u64,
        what: &'static str,
    },
    #[error("channel `{file}` was truncated under us: its data is gone")]
    Truncated { file: String },
    #[error("waiting on channel `{file}` failed: {source}")]
    Io { file: String, source: io::Error },
}

/// Declares an operation's error enum: its own variants, then `Corrupted`, `Truncated` and
/// `Io`, with `From<Fault>` and `is_fault`.
macro_rules! operation_error {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($own:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name {
            $($own)*
            /// The channel's shared memory violates its format: a buggy or hostile process
            /// wrote it.
            #[error("channel `{file}` is corrupted at offset {offset}: {what}")]
            Corrupted {
                /// The channel file.
                file: String,
                /// Byte offset in the file (or mapping).
                offset: u64,
                /// What was wrong.
                what: &'static str,
            },
            /// Someone truncated the channel file under the mapping.
            #[error("channel `{file}` was truncated under us: its data is gone")]
            Truncated {
                /// The channel file.
                file: String,
            },
            /// A futex call failed.
            #[error("waiting on channel `{file}` failed: {source}")]
            Io {
                /// The channel file.
                file: String,
                /// The OS error.
                #[source]
                source: io::Error,
            },
        }

        impl From<Fault> for $name {
            fn from(f: Fault) -> $name {
                match f {
                    Fault::Corrupted { file, offset, what } => {
                        $name::Corrupted { file, offset, what }
                    }
                    Fault::Truncated { file } => $name::Truncated { file },
                    Fault::Io { file, source } => $name::Io { file, source },
                }
            }
        }

        impl $name {
            /// Whether the channel itself is broken (corrupted, truncated, or an OS error):
            /// retrying will not help.
            pub fn is_fault(&self) -> bool {
                matches!(
                    self,
                    $name::Corrupted { .. } | $name::Truncated { .. } | $name::Io { .. }
                )
            }
        }
    };
}

operation_error! {
    /// Why [`Sender::send`](super::Sender::send) failed.
    pub enum SendError {
        /// The message is empty or longer than [`max_message`](super::Channel::max_message).
        #[error("a message of {len} bytes cannot be sent: messages are 1 to {max} bytes on this channel")]
        BadLength {
            /// Requested length.
            len: usize,
            /// Largest message.
            max: usize,
        },
        /// MPSC: the consumer gave up on this message before it was committed (this producer
        /// looked dead, or took longer than the consumer's abort timeout). It was not
        /// delivered.
        #[error("the receiver aborted this message before it was committed (the sender looked dead or too slow)")]
        Aborted,
        /// The ring is full and the receiver is gone (it attached once and then left or died).
        #[error("the receiver is gone and the channel is full")]
        Disconnected,
    }
}

operation_error! {
    /// Why [`Sender::try_send`](super::Sender::try_send) failed.
    pub enum TrySendError {
        /// No room for the message now.
        #[error("the channel is full")]
        Full,
        /// See [`SendError::BadLength`].
        #[error("a message of {len} bytes cannot be sent: messages are 1 to {max} bytes on this channel")]
        BadLength {
            /// Requested length.
            len: usize,
            /// Largest message.
            max: usize,
        },
        /// See [`SendError::Aborted`].
        #[error("the receiver aborted this message before it was committed (the sender looked dead or too slow)")]
        Aborted,
        /// See [`SendError::Disconnected`]. A receiver that detached is seen at once; one
        /// that was killed, by the first `try_send` on a full ring a millisecond (or a
        /// kernel tick, when longer) after the previous liveness query: polling calls ask
        /// the kernel at most that often.
        #[error("the receiver is gone and the channel is full")]
        Disconnected,
    }
}

operation_error! {
    /// Why [`Sender::send_timeout`](super::Sender::send_timeout) failed.
    pub enum SendTimeoutError {
        /// The deadline passed before there was room.
        #[error("timed out waiting for room in the channel")]
        Timeout,
        /// See [`SendError::BadLength`].
        #[error("a message of {len} bytes cannot be sent: messages are 1 to {max} bytes on this channel")]
        BadLength {
            /// Requested length.
            len: usize,
            /// Largest message.
            max: usize,
        },
        /// See [`SendError::Aborted`].
        #[error("the receiver aborted this message before it was committed (the sender looked dead or too slow)")]
        Aborted,
        /// See [`SendError::Disconnected`].
        #[error("the receiver is gone and the channel is full")]
        Disconnected,
    }
}

operation_error! {
    /// Why [`Receiver::recv`](super::Receiver::recv) failed.
    pub enum RecvError {
        /// Broadcast: this subscriber was lapped by a lossy producer; `missed` messages were
        /// overwritten before it read them. Receiving again continues with the oldest message
        /// still there.
        #[error("this subscriber fell behind and missed {missed} messages")]
        Lagged {
            /// Messages lost.
            missed: u64,
        },
        /// The producers are gone (left or died) and every message they committed was
        /// received. A new producer may attach later; receiving again then works.
        #[error("the sender is gone and the channel is empty")]
        Disconnected,
        /// [`Receiver::recv_pod`](super::Receiver::recv_pod): the next message is not the
        /// size of the type asked for. It was left in the channel: a plain receive takes it.
        #[error("the next message has {len} bytes, not the {expected} of the type asked for; it was left in the channel")]
        WrongLength {
            /// The message's length.
            len: usize,
            /// The type's size.
            expected: usize,
        },
    }
}

operation_error! {
    /// Why [`Receiver::try_recv`](super::Receiver::try_recv) failed.
    pub enum TryRecvError {
        /// Nothing to receive now.
        #[error("the channel is empty")]
        Empty,
        /// See [`RecvError::Lagged`].
        #[error("this subscriber fell behind and missed {missed} messages")]
        Lagged {
            /// Messages lost.
            missed: u64,
        },
        /// See [`RecvError::Disconnected`]. A sender that detached is seen at once; one that
        /// was killed, by the first `try_recv` (or `drain`) on an empty ring a millisecond
        /// (or a kernel tick, when longer) after the previous liveness query: polling calls
        /// ask the kernel at most that often.
        #[error("the sender is gone and the channel is empty")]
        Disconnected,
    }
}

operation_error! {
    /// Why [`Receiver::recv_timeout`](super::Receiver::recv_timeout) failed.
    pub enum RecvTimeoutError {
        /// The deadline passed with nothing to receive.
        #[error("timed out waiting for a message")]
        Timeout,
        /// See [`RecvError::Lagged`].
        #[error("this subscriber fell behind and missed {missed} messages")]
        Lagged {
            /// Messages lost.
            missed: u64,
        },
        /// See [`RecvError::Disconnected`].
        #[error("the sender is gone and the channel is empty")]
        Disconnected,
    }
}

/// Why a channel could not be created, opened, or an end attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The capacity is outside the supported range.
    #[error("capacity {capacity} is not supported: use {min} bytes to 1 TiB")]
    BadCapacity {
        /// Requested capacity.
        capacity: u64,
        /// Smallest capacity.
        min: u64,
    },
    /// The channel's region could not be created.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// The channel's region could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// No free slot in the region's peer table, or the slot lock failed.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// The region could not be written (for example it was truncated).
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The file is not a channel, or its header is damaged.
    #[error("`{file}` is not a usable mapipc channel: {what}")]
    BadHeader {
        /// The file.
        file: String,
        /// What is wrong.
        what: &'static str,
    },
    /// Every producer (MPSC) or subscriber (broadcast) slot is held by a live process.
    #[error("channel `{file}` has no free {role} slot: all {max} are held by live processes")]
    Full {
        /// The file.
        file: String,
        /// `producer` or `subscriber`.
        role: &'static str,
        /// The limit set at creation.
        max: u32,
    },
    /// The requested number of producers or subscribers is out of range.
    #[error("{requested} producers or subscribers requested: use 1 to {max}")]
    BadEndpoints {
        /// Requested.
        requested: u32,
        /// Largest accepted.
        max: u32,
    },
    /// Another live process is already the producer (or consumer) of this channel.
    #[error("channel `{file}` already has a live {role} (peer {peer}, pid {pid})")]
    Busy {
        /// The file.
        file: String,
        /// `producer` or `consumer`.
        role: &'static str,
        /// The holder's peer id.
        peer: u32,
        /// The holder's pid, as registered (0 if unknown).
        pid: u32,
    },
    /// The positions in the header are inconsistent.
    #[error("channel `{file}` is corrupted at offset {offset}: {what}")]
    Corrupted {
        /// The file.
        file: String,
        /// Byte offset.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
}
