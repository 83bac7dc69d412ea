//! Channel errors, one type per operation (as crossbeam-channel does): creating a channel,
//! opening one, attaching an end (and the two combined calls, open + attach and
//! create + attach), sending, receiving, and parsing a kind or a policy.
//!
//! Every send and receive error also carries the four ways the channel itself can be
//! broken (corrupted shared memory, a truncated file, a page of the file the kernel could
//! not supply, a failed futex call); one macro adds them, so each operation's type lists
//! only its own outcomes here. The create, open and
//! attach errors carry the ways that operation can find the channel broken, and each type
//! has the same `is_fault`.

use std::io;

use crate::map::{AccessError, FaultCause};
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
    #[error(
        "the kernel could not supply the page at offset {file_offset} of channel `{file}` \
         ({cause}); the file was not truncated (it is {file_len} bytes), but the channel's \
         data there is lost"
    )]
    PageUnavailable {
        file: String,
        file_offset: u64,
        file_len: u64,
        cause: FaultCause,
    },
    #[error("waiting on channel `{file}` failed: {source}")]
    Io { file: String, source: io::Error },
}

/// Declares an operation's error enum: its own variants, then `Corrupted`, `Truncated`,
/// `PageUnavailable` and `Io`, with `From<Fault>` and `is_fault`.
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
            /// The kernel could not supply a page of the channel file that is still inside
            /// it (an I/O error reading it, or no space to allocate it: a hole, punched or
            /// left by a sparse copy, on a full tmpfs or disk); the file was not truncated.
            /// The mapping is poisoned as by a truncation
            /// ([`AccessError::Fault`](crate::map::AccessError::Fault)): the bytes there are
            /// lost; open the channel again once the cause is fixed.
            #[error(
                "the kernel could not supply the page at offset {file_offset} of channel \
                 `{file}` ({cause}); the file was not truncated (it is {file_len} bytes), but \
                 the channel's data there is lost"
            )]
            PageUnavailable {
                /// The channel file.
                file: String,
                /// The file offset of the page that faulted first (a multiple of the page
                /// size).
                file_offset: u64,
                /// The file's length when the fault was examined.
                file_len: u64,
                /// Why the kernel could not supply it.
                cause: FaultCause,
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
                    Fault::PageUnavailable {
                        file,
                        file_offset,
                        file_len,
                        cause,
                    } => $name::PageUnavailable {
                        file,
                        file_offset,
                        file_len,
                        cause,
                    },
                    Fault::Io { file, source } => $name::Io { file, source },
                }
            }
        }

        impl $name {
            /// Whether the channel itself is broken (corrupted, truncated, a page the kernel
            /// could not supply, or an OS error): retrying will not help.
            pub fn is_fault(&self) -> bool {
                matches!(
                    self,
                    $name::Corrupted { .. }
                        | $name::Truncated { .. }
                        | $name::PageUnavailable { .. }
                        | $name::Io { .. }
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
        /// Broadcast, lossless: this subscriber was dropped from the channel's subscriber
        /// table while it was alive, because a peer took it for dead (its peer slot in the
        /// region was scribbled over, say). The producer no longer waits for it, and may
        /// have overwritten messages it had not received: none of those is handed out, and
        /// every receive on this subscriber returns `Evicted` from now on. Subscribe again
        /// ([`Channel::subscribe`](super::Channel::subscribe)) to go on; messages between
        /// the last one received here and the new subscription's start may be lost.
        ///
        /// # Example
        /// ```
        /// use mapipc::channel::RecvError;
        /// let e = RecvError::Evicted { file: "/dev/shm/ticks".into() };
        /// assert!(!e.is_fault()); // the channel is fine: subscribe again
        /// assert!(e.to_string().contains("`/dev/shm/ticks` was dropped as dead"), "{e}");
        /// ```
        #[error("this lossless subscriber of channel `{file}` was dropped as dead while alive: the producer no longer keeps messages for it, and those after its last receive may be lost; subscribe again")]
        Evicted {
            /// The channel file.
            file: String,
        },
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
        /// See [`RecvError::Evicted`].
        #[error("this lossless subscriber of channel `{file}` was dropped as dead while alive: the producer no longer keeps messages for it, and those after its last receive may be lost; subscribe again")]
        Evicted {
            /// The channel file.
            file: String,
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
        /// See [`RecvError::Evicted`].
        #[error("this lossless subscriber of channel `{file}` was dropped as dead while alive: the producer no longer keeps messages for it, and those after its last receive may be lost; subscribe again")]
        Evicted {
            /// The channel file.
            file: String,
        },
        /// See [`RecvError::Disconnected`].
        #[error("the sender is gone and the channel is empty")]
        Disconnected,
    }
}

/// Damage the checks of a channel's positions found (at open or at attach), before each
/// operation's error says it in its own terms.
#[derive(Debug)]
pub(crate) enum Damage {
    Corrupted {
        file: String,
        offset: u64,
        what: &'static str,
    },
    Truncated {
        file: String,
    },
    PageUnavailable {
        file: String,
        file_offset: u64,
        file_len: u64,
        cause: FaultCause,
    },
}

/// Why a region does not hold a usable channel (the checks of
/// [`Channel::from_region`](super::Channel::from_region)), before each operation's error
/// says it in its own terms.
#[derive(Debug)]
pub(crate) enum Unusable {
    /// Not a channel header of this version; `offset`: where the header starts in the file.
    BadHeader {
        file: String,
        offset: u64,
        what: &'static str,
    },
    Damage(Damage),
}

/// Why creating a channel failed: [`ChannelOptions::anonymous`],
/// [`ChannelOptions::create`], [`ChannelOptions::create_in`] and their SPSC shorthands
/// [`Channel::anonymous`], [`Channel::create`], [`Channel::create_in`].
///
/// [`ChannelOptions::anonymous`]: super::ChannelOptions::anonymous
/// [`ChannelOptions::create`]: super::ChannelOptions::create
/// [`ChannelOptions::create_in`]: super::ChannelOptions::create_in
/// [`Channel::anonymous`]: super::Channel::anonymous
/// [`Channel::create`]: super::Channel::create
/// [`Channel::create_in`]: super::Channel::create_in
///
/// # Example
/// ```
/// use mapipc::channel::{Channel, ChannelCreateError, ChannelOptions, Kind, MIN_CAPACITY};
/// use mapipc::region::{CreateError, Region};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("chan");
/// Channel::create(&path, 4096)?;
/// match Channel::create(&path, 4096) {
///     Err(ChannelCreateError::Region(CreateError::AlreadyExists { file })) => {
///         assert!(file.ends_with("chan"))
///     }
///     other => panic!("expected AlreadyExists, got {other:?}"),
/// }
/// match Channel::anonymous(usize::MAX) {
///     Err(ChannelCreateError::BadCapacity { min, .. }) => assert_eq!(min, MIN_CAPACITY as u64),
///     other => panic!("expected BadCapacity, got {other:?}"),
/// }
/// match ChannelOptions::new(Kind::Mpsc).max_producers(0).anonymous() {
///     Err(ChannelCreateError::BadEndpoints { requested, max }) => assert_eq!((requested, max), (0, 192)),
///     other => panic!("expected BadEndpoints, got {other:?}"),
/// }
/// // A ring of 8 KiB after the 4 KiB header does not fit 8 KiB of region.
/// let region = Region::memfd("small", 8192)?;
/// match Channel::create_in(region, 8192) {
///     Err(ChannelCreateError::RegionTooSmall { len, needed, .. }) => {
///         assert_eq!((len, needed), (8192, 4096 + 8192))
///     }
///     other => panic!("expected RegionTooSmall, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelCreateError {
    /// The capacity is outside the supported range.
    #[error("capacity {capacity} is not supported: use {min} bytes to 1 TiB")]
    BadCapacity {
        /// Requested capacity.
        capacity: u64,
        /// Smallest capacity.
        min: u64,
    },
    /// The requested number of producers (MPSC) or subscribers (broadcast) is out of range.
    #[error("{requested} producers or subscribers requested: use 1 to {max}")]
    BadEndpoints {
        /// Requested.
        requested: u32,
        /// Largest accepted.
        max: u32,
    },
    /// [`create_in`](super::ChannelOptions::create_in): the region's user data cannot hold
    /// the channel's header and ring.
    #[error(
        "region `{file}` has {len} bytes of user data: a channel of this capacity needs {needed}"
    )]
    RegionTooSmall {
        /// The region's file.
        file: String,
        /// Its user-data length.
        len: u64,
        /// The header and the ring.
        needed: u64,
    },
    /// The channel's region could not be created (the file exists, a bad name, no space...).
    #[error(transparent)]
    Region(#[from] CreateError),
    /// [`create_in`](super::ChannelOptions::create_in): the region is mapped read-only.
    #[error("cannot lay a channel out in region `{file}`: it is mapped read-only")]
    ReadOnly {
        /// The region's file.
        file: String,
    },
    /// Someone truncated the file while the channel was laid out in it.
    #[error("channel `{file}` was truncated while it was being created")]
    Truncated {
        /// The file.
        file: String,
    },
    /// The kernel could not supply a page of the file while the channel was laid out in it (an I/O
    /// error, no space to allocate it); the file was not truncated: see
    /// [`SendError::PageUnavailable`].
    #[error(
        "the kernel could not supply the page at offset {file_offset} of channel `{file}` \
         ({cause}); the file was not truncated (it is {file_len} bytes), but the channel's \
         data there is lost"
    )]
    PageUnavailable {
        /// The file.
        file: String,
        /// The file offset of the page that faulted first.
        file_offset: u64,
        /// The file's length when the fault was examined.
        file_len: u64,
        /// Why the kernel could not supply it.
        cause: FaultCause,
    },
    /// Writing the channel header failed otherwise (the region's size and protection were
    /// checked before: not expected).
    #[error("cannot write the channel header into `{file}`: {source}")]
    Write {
        /// The file.
        file: String,
        /// What the mapping reported.
        #[source]
        source: AccessError,
    },
    /// The channel read back after it was laid out is not what was written: another process
    /// wrote the file meanwhile.
    #[error(
        "channel `{file}` is corrupted at offset {offset}: {what} (another process wrote it \
         while it was being created)"
    )]
    Corrupted {
        /// The file.
        file: String,
        /// Byte offset in the file.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
}

impl ChannelCreateError {
    /// Whether the file was damaged while the channel was being created
    /// ([`Corrupted`](Self::Corrupted), [`Truncated`](Self::Truncated),
    /// [`PageUnavailable`](Self::PageUnavailable)): as for the send and receive errors, the
    /// channel is broken and retrying on it will not help.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            ChannelCreateError::Corrupted { .. }
                | ChannelCreateError::Truncated { .. }
                | ChannelCreateError::PageUnavailable { .. }
        )
    }

    /// A header write's failure, in the creation's terms.
    pub(crate) fn write(file: String, source: AccessError) -> ChannelCreateError {
        match source {
            AccessError::Truncated { .. } => ChannelCreateError::Truncated { file },
            AccessError::Fault {
                file_offset,
                file_len,
                cause,
                ..
            } => ChannelCreateError::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            },
            AccessError::NotWritable { .. } => ChannelCreateError::ReadOnly { file },
            source => ChannelCreateError::Write { file, source },
        }
    }
}

impl From<Unusable> for ChannelCreateError {
    fn from(u: Unusable) -> ChannelCreateError {
        // What was just written does not read back as written: someone else wrote it.
        match u {
            Unusable::BadHeader { file, offset, what } => {
                ChannelCreateError::Corrupted { file, offset, what }
            }
            Unusable::Damage(Damage::Corrupted { file, offset, what }) => {
                ChannelCreateError::Corrupted { file, offset, what }
            }
            Unusable::Damage(Damage::Truncated { file }) => ChannelCreateError::Truncated { file },
            Unusable::Damage(Damage::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            }) => ChannelCreateError::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            },
        }
    }
}

/// Why opening a channel failed: [`Channel::open`], [`Channel::open_read_only`],
/// [`Channel::from_region`].
///
/// [`Channel::open`]: super::Channel::open
/// [`Channel::open_read_only`]: super::Channel::open_read_only
/// [`Channel::from_region`]: super::Channel::from_region
///
/// # Example
/// ```
/// use mapipc::channel::{Channel, ChannelOpenError};
/// use mapipc::region::{OpenError, Region};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("chan");
/// match Channel::open(&path) {
///     Err(ChannelOpenError::Region(OpenError::NotFound { file })) => assert!(file.ends_with("chan")),
///     other => panic!("expected NotFound, got {other:?}"),
/// }
/// let plain = Region::anonymous(8192)?; // a region that holds no channel
/// match Channel::from_region(plain) {
///     Err(e @ ChannelOpenError::BadHeader { what, .. }) => {
///         assert!(what.contains("bad magic"), "{what}");
///         assert!(!e.is_fault()); // not a channel, rather than a broken one
///     }
///     other => panic!("expected BadHeader, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelOpenError {
    /// The channel's region could not be opened (missing file, not a region, bad name...).
    #[error(transparent)]
    Region(#[from] OpenError),
    /// The region holds no channel, a channel of another format version, or its header is
    /// damaged.
    #[error("`{file}` is not a usable mapipc channel: {what}")]
    BadHeader {
        /// The file.
        file: String,
        /// What is wrong.
        what: &'static str,
    },
    /// The channel's positions violate its format: a buggy or hostile process wrote them.
    #[error("channel `{file}` is corrupted at offset {offset}: {what}")]
    Corrupted {
        /// The file.
        file: String,
        /// Byte offset in the file.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// Someone truncated the channel file: its data is gone.
    #[error("channel `{file}` was truncated under us: its data is gone")]
    Truncated {
        /// The file.
        file: String,
    },
    /// The kernel could not supply a page of the file that the checks at open read (an I/O error,
    /// no space to allocate it); the file was not truncated: see [`SendError::PageUnavailable`].
    #[error(
        "the kernel could not supply the page at offset {file_offset} of channel `{file}` \
         ({cause}); the file was not truncated (it is {file_len} bytes), but the channel's \
         data there is lost"
    )]
    PageUnavailable {
        /// The file.
        file: String,
        /// The file offset of the page that faulted first.
        file_offset: u64,
        /// The file's length when the fault was examined.
        file_len: u64,
        /// Why the kernel could not supply it.
        cause: FaultCause,
    },
}

impl ChannelOpenError {
    /// Whether the channel is broken ([`Corrupted`](Self::Corrupted),
    /// [`Truncated`](Self::Truncated), [`PageUnavailable`](Self::PageUnavailable)), as for
    /// the send and receive errors: opening it again will not help (for a page the kernel
    /// could not supply, not before its cause is fixed). [`BadHeader`](Self::BadHeader) is
    /// not counted: the file may be something else than a channel.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            ChannelOpenError::Corrupted { .. }
                | ChannelOpenError::Truncated { .. }
                | ChannelOpenError::PageUnavailable { .. }
        )
    }
}

impl From<Unusable> for ChannelOpenError {
    fn from(u: Unusable) -> ChannelOpenError {
        match u {
            Unusable::BadHeader { file, what, .. } => ChannelOpenError::BadHeader { file, what },
            Unusable::Damage(d) => d.into(),
        }
    }
}

impl From<Damage> for ChannelOpenError {
    fn from(d: Damage) -> ChannelOpenError {
        match d {
            Damage::Corrupted { file, offset, what } => {
                ChannelOpenError::Corrupted { file, offset, what }
            }
            Damage::Truncated { file } => ChannelOpenError::Truncated { file },
            Damage::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            } => ChannelOpenError::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            },
        }
    }
}

/// Why attaching an end failed: [`Channel::sender`], [`Channel::receiver`],
/// [`Channel::subscribe`].
///
/// [`Channel::sender`]: super::Channel::sender
/// [`Channel::receiver`]: super::Channel::receiver
/// [`Channel::subscribe`]: super::Channel::subscribe
///
/// # Example
/// ```
/// use mapipc::channel::{AttachError, Channel, ChannelOptions, Kind};
/// use mapipc::region::JoinError;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("chan");
/// let chan = Channel::create(&path, 4096)?;
/// let _rx = chan.receiver()?;
/// match chan.receiver() {
///     Err(AttachError::Busy { role, pid, .. }) => {
///         assert_eq!(role, "consumer");
///         assert_eq!(pid, std::process::id());
///     }
///     other => panic!("expected Busy, got {other:?}"),
/// }
/// let mpsc = ChannelOptions::new(Kind::Mpsc).max_producers(1).anonymous()?;
/// let _tx = mpsc.sender()?;
/// match mpsc.sender() {
///     Err(AttachError::Full { role, max, .. }) => assert_eq!((role, max), ("producer", 1)),
///     other => panic!("expected Full, got {other:?}"),
/// }
/// let look = Channel::open_read_only(&path)?;
/// match look.sender() {
///     Err(e @ AttachError::Join(JoinError::ReadOnly { .. })) => assert!(!e.is_fault()),
///     other => panic!("expected ReadOnly, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// Another live process is already the producer (SPSC, broadcast) or the consumer (SPSC,
    /// MPSC) of this channel.
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
    /// Joining the channel's region failed: its peer table is full, the slot lock failed,
    /// or the channel was opened read-only ([`JoinError::ReadOnly`]). A truncated file is
    /// [`Truncated`](Self::Truncated).
    #[error(transparent)]
    Join(JoinError),
    /// The channel's positions violate its format: a buggy or hostile process wrote them.
    #[error("channel `{file}` is corrupted at offset {offset}: {what}")]
    Corrupted {
        /// The file.
        file: String,
        /// Byte offset in the file.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// Someone truncated the channel file: its data is gone.
    #[error("channel `{file}` was truncated under us: its data is gone")]
    Truncated {
        /// The file.
        file: String,
    },
    /// The kernel could not supply a page of the file that attaching read or wrote (an I/O error,
    /// no space to allocate it); the file was not truncated: see [`SendError::PageUnavailable`].
    #[error(
        "the kernel could not supply the page at offset {file_offset} of channel `{file}` \
         ({cause}); the file was not truncated (it is {file_len} bytes), but the channel's \
         data there is lost"
    )]
    PageUnavailable {
        /// The file.
        file: String,
        /// The file offset of the page that faulted first.
        file_offset: u64,
        /// The file's length when the fault was examined.
        file_len: u64,
        /// Why the kernel could not supply it.
        cause: FaultCause,
    },
}

impl AttachError {
    /// Whether the channel is broken ([`Corrupted`](Self::Corrupted),
    /// [`Truncated`](Self::Truncated), [`PageUnavailable`](Self::PageUnavailable)), as for
    /// the send and receive errors: attaching again will not help.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            AttachError::Corrupted { .. }
                | AttachError::Truncated { .. }
                | AttachError::PageUnavailable { .. }
        )
    }
}

impl From<JoinError> for AttachError {
    fn from(e: JoinError) -> AttachError {
        match e {
            JoinError::Access(AccessError::Truncated { file }) => AttachError::Truncated { file },
            JoinError::Access(AccessError::Fault {
                file,
                file_offset,
                file_len,
                cause,
            }) => AttachError::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            },
            e => AttachError::Join(e),
        }
    }
}

impl From<Damage> for AttachError {
    fn from(d: Damage) -> AttachError {
        match d {
            Damage::Corrupted { file, offset, what } => {
                AttachError::Corrupted { file, offset, what }
            }
            Damage::Truncated { file } => AttachError::Truncated { file },
            Damage::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            } => AttachError::PageUnavailable {
                file,
                file_offset,
                file_len,
                cause,
            },
        }
    }
}

/// Why [`Sender::open`](super::Sender::open) or [`Receiver::open`](super::Receiver::open)
/// failed: opening the channel, or attaching the end.
///
/// # Example
/// ```
/// use mapipc::channel::{AttachError, Channel, ChannelOpenError, OpenAttachError, Receiver};
/// use mapipc::region::OpenError;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("chan");
/// match Receiver::open(&path) {
///     Err(OpenAttachError::Open(ChannelOpenError::Region(OpenError::NotFound { .. }))) => {}
///     other => panic!("expected NotFound, got {other:?}"),
/// }
/// Channel::create(&path, 4096)?;
/// let _rx = Receiver::open(&path)?;
/// match Receiver::open(&path) {
///     Err(e @ OpenAttachError::Attach(AttachError::Busy { .. })) => assert!(!e.is_fault()),
///     other => panic!("expected Busy, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAttachError {
    /// Opening the channel failed.
    #[error(transparent)]
    Open(#[from] ChannelOpenError),
    /// The channel opened, but the end could not attach.
    #[error(transparent)]
    Attach(#[from] AttachError),
}

impl OpenAttachError {
    /// Whether the channel is broken: see [`ChannelOpenError::is_fault`] and
    /// [`AttachError::is_fault`].
    pub fn is_fault(&self) -> bool {
        match self {
            OpenAttachError::Open(e) => e.is_fault(),
            OpenAttachError::Attach(e) => e.is_fault(),
        }
    }
}

/// Why [`pair`](super::pair) failed: creating the channel, or attaching one of its ends.
///
/// # Example
/// ```
/// use mapipc::channel::{pair, ChannelCreateError, PairError};
/// match pair(usize::MAX) {
///     Err(e @ PairError::Create(ChannelCreateError::BadCapacity { .. })) => {
///         assert!(!e.is_fault());
///         assert!(e.to_string().contains("not supported"), "{e}");
///     }
///     other => panic!("expected BadCapacity, got {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// Creating the channel failed.
    #[error(transparent)]
    Create(#[from] ChannelCreateError),
    /// Attaching one of its ends failed (joining the region: an OS error).
    #[error(transparent)]
    Attach(#[from] AttachError),
}

impl PairError {
    /// Whether the channel is broken: see [`ChannelCreateError::is_fault`] and
    /// [`AttachError::is_fault`].
    pub fn is_fault(&self) -> bool {
        match self {
            PairError::Create(e) => e.is_fault(),
            PairError::Attach(e) => e.is_fault(),
        }
    }
}

/// Why a string is not a channel [`Kind`](super::Kind) (its `FromStr`).
///
/// # Example
/// ```
/// use mapipc::channel::{Kind, ParseKindError};
/// let err: ParseKindError = "fifo".parse::<Kind>().unwrap_err();
/// assert_eq!(err.input, "fifo");
/// assert_eq!(err.accepted, ["spsc", "mpsc", "broadcast"]);
/// assert_eq!(err.to_string(), "unknown channel kind `fifo`: use spsc, mpsc or broadcast");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel kind `{input}`: use spsc, mpsc or broadcast")]
#[non_exhaustive]
pub struct ParseKindError {
    /// The string given.
    pub input: String,
    /// The names accepted.
    pub accepted: &'static [&'static str],
}

/// Why a string is not a broadcast [`Policy`](super::Policy) (its `FromStr`).
///
/// # Example
/// ```
/// use mapipc::channel::{ParsePolicyError, Policy};
/// let err: ParsePolicyError = "Lossy".parse::<Policy>().unwrap_err(); // names are lower case
/// assert_eq!(err.input, "Lossy");
/// assert_eq!(err.accepted, ["lossless", "lossy"]);
/// assert_eq!(err.to_string(), "unknown broadcast policy `Lossy`: use lossless or lossy");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown broadcast policy `{input}`: use lossless or lossy")]
#[non_exhaustive]
pub struct ParsePolicyError {
    /// The string given.
    pub input: String,
    /// The names accepted.
    pub accepted: &'static [&'static str],
}
