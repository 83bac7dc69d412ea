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
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::SendError;
    /// let (mut tx, rx) = mapipc::channel::pair(4096)?;
    /// match tx.send(b"") {
    ///     Err(SendError::BadLength { len, max }) => assert_eq!((len, max), (0, 2040)),
    ///     other => panic!("expected BadLength, got {other:?}"),
    /// }
    /// // Once the receiver is gone, a send that finds the ring full does not block.
    /// drop(rx);
    /// let err = loop {
    ///     if let Err(e) = tx.send(&[7; 1000]) {
    ///         break e;
    ///     }
    /// };
    /// assert!(matches!(err, SendError::Disconnected), "{err}");
    /// assert!(!err.is_fault()); // the channel itself is fine
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::TrySendError;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// let mut sent = 0;
    /// loop {
    ///     match tx.try_send(&[1; 500]) {
    ///         Ok(()) => sent += 1,
    ///         Err(TrySendError::Full) => break, // come back later
    ///         Err(e) if e.is_fault() => return Err(e.into()), // the channel is broken
    ///         Err(e) => panic!("unexpected: {e}"),
    ///     }
    /// }
    /// assert!(sent > 0);
    /// rx.recv()?; // makes room
    /// tx.try_send(&[1; 500])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::channel::SendTimeoutError;
    /// let (mut tx, _rx) = mapipc::channel::pair(4096)?;
    /// while tx.try_send(&[1; 500]).is_ok() {} // fill the ring; nobody receives
    /// match tx.send_timeout(&[1; 500], Duration::from_millis(1)) {
    ///     Err(SendTimeoutError::Timeout) => {} // still full when the time was up
    ///     other => panic!("expected Timeout, got {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Example
    /// ```
    /// use mapipc::channel::RecvError;
    /// let (mut tx, mut rx) = mapipc::channel::pair(4096)?;
    /// tx.send(b"last words")?;
    /// drop(tx);
    /// // What was committed is still delivered, then the end of the stream is reported.
    /// assert_eq!(rx.recv()?, b"last words");
    /// match rx.recv() {
    ///     Err(RecvError::Disconnected) => {}
    ///     other => panic!("expected Disconnected, got {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Example
    /// A lossy broadcast subscriber that fell behind learns how much it missed:
    /// ```
    /// use mapipc::channel::{ChannelOptions, Kind, Policy, StartAt, TryRecvError};
    /// let chan = ChannelOptions::new(Kind::Broadcast).capacity(4096).policy(Policy::Lossy).anonymous()?;
    /// let mut tx = chan.sender()?;
    /// let mut sub = chan.subscribe(StartAt::Oldest)?;
    /// assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)));
    /// for i in 0..100u32 {
    ///     tx.send(&[i as u8; 200])?; // never waits: overwrites what `sub` did not read
    /// }
    /// match sub.try_recv() {
    ///     Err(TryRecvError::Lagged { missed }) => assert!(missed > 0 && missed < 100),
    ///     other => panic!("expected Lagged, got {other:?}"),
    /// }
    /// // Receiving again continues with the oldest message still in the ring.
    /// assert_eq!(sub.try_recv()?.len(), 200);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use mapipc::channel::RecvTimeoutError;
    /// let (tx, mut rx) = mapipc::channel::pair(4096)?;
    /// let wait = Duration::from_millis(1);
    /// assert!(matches!(rx.recv_timeout(wait), Err(RecvTimeoutError::Timeout)));
    /// drop(tx);
    /// assert!(matches!(rx.recv_timeout(wait), Err(RecvTimeoutError::Disconnected)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
///
/// # Example
/// ```
/// use mapipc::channel::{Channel, ChannelError, ChannelOptions, Kind};
/// use mapipc::region::OpenError;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("chan");
/// match Channel::open(&path) {
///     Err(ChannelError::Open(OpenError::NotFound { file })) => assert!(file.ends_with("chan")),
///     other => panic!("expected NotFound, got {other:?}"),
/// }
/// let chan = Channel::create(&path, 4096)?;
/// let _rx = chan.receiver()?;
/// match chan.receiver() {
///     Err(ChannelError::Busy { role, pid, .. }) => {
///         assert_eq!(role, "consumer");
///         assert_eq!(pid, std::process::id());
///     }
///     other => panic!("expected Busy, got {other:?}"),
/// }
/// let err = ChannelOptions::new(Kind::Mpsc).max_producers(0).anonymous().unwrap_err();
/// assert!(matches!(err, ChannelError::BadEndpoints { requested: 0, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
