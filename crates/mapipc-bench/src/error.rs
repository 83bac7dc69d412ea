//! Errors of a benchmark run.

use std::fmt;
use std::io;
use std::time::Duration;

/// The measurement in which something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The ping-pong measuring round-trip latency.
    RoundTrip,
    /// The one-way stream measuring throughput.
    Throughput,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::RoundTrip => "round trip",
            Phase::Throughput => "throughput",
        })
    }
}

/// The process that detected a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The parent process, which sends and measures.
    Client,
    /// The forked child, which receives, echoes and acknowledges.
    Server,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client (parent)",
            Side::Server => "server (child)",
        })
    }
}

/// Why a run failed. Every variant tied to a measurement names the transport (with its mode)
/// and the message size; the verification variants also name the sequence number.
///
/// # Example
/// ```
/// use mapipc_bench::{BenchError, Phase, Side};
/// let e = BenchError::Sequence {
///     transport: "uds".into(),
///     size: 64,
///     phase: Phase::Throughput,
///     side: Side::Server,
///     expected: 1000,
///     got: 1001,
/// };
/// assert_eq!(
///     e.to_string(),
///     "uds, 64 B, throughput: the server (child) expected message 1000 but got 1001 \
///      (a message was dropped, duplicated or reordered)"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A message arrived out of sequence.
    #[error(
        "{transport}, {size} B, {phase}: the {side} expected message {expected} but got {got} \
         (a message was dropped, duplicated or reordered)"
    )]
    Sequence {
        /// Transport label (`name` or `name (mode)`).
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// The measurement.
        phase: Phase,
        /// Who noticed.
        side: Side,
        /// The sequence number expected.
        expected: u64,
        /// The sequence number that arrived.
        got: u64,
    },
    /// A message's tail word does not match its head: the bytes were torn, shifted or
    /// overwritten.
    #[error(
        "{transport}, {size} B, {phase}: the {side} received a corrupted message where message \
         {expected} was due (head {head:#018x}, tail {tail:#018x} does not match it)"
    )]
    Corrupted {
        /// Transport label.
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// The measurement.
        phase: Phase,
        /// Who noticed.
        side: Side,
        /// The sequence number that was due.
        expected: u64,
        /// The head word found.
        head: u64,
        /// The tail word found.
        tail: u64,
    },
    /// The end-of-phase marker announced a different number of messages than arrived.
    #[error(
        "{transport}, {size} B, {phase}: the {side} received {received} messages but the \
         sender announced {announced}"
    )]
    Count {
        /// Transport label.
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// The measurement.
        phase: Phase,
        /// Who noticed.
        side: Side,
        /// The count in the end marker.
        announced: u64,
        /// The count received.
        received: u64,
    },
    /// Sending or receiving failed.
    #[error("{transport}, {size} B, {phase}: the {side} failed at message {seq}: {source}")]
    Io {
        /// Transport label.
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// The measurement.
        phase: Phase,
        /// Who failed.
        side: Side,
        /// The sequence number being sent or awaited.
        seq: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The transport could not be set up (before the fork).
    #[error("{transport}, {size} B: cannot set up the transport: {source}")]
    Setup {
        /// Transport label.
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `fork`, `waitpid` or a thread spawn failed.
    #[error("{transport}, {size} B: {what} failed: {source}")]
    Process {
        /// Transport label.
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// The call.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server process ended abnormally without reporting a verification failure.
    #[error("{transport}, {size} B: the server process {status}")]
    ServerDied {
        /// Transport label.
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// How it ended (`exited with status 3`, `was killed by signal 9`).
        status: String,
    },
    /// The measurement did not finish within the watchdog's bound; the server was killed.
    #[error(
        "{transport}, {size} B: no result after {after:?}; the watchdog killed the server process"
    )]
    Timeout {
        /// Transport label.
        transport: String,
        /// Message size in bytes.
        size: usize,
        /// The bound.
        after: Duration,
    },
    /// `only` named a transport that does not exist.
    #[error("unknown transport {name:?} (known: {known})")]
    UnknownTransport {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The configuration is unusable.
    #[error("invalid benchmark configuration: {0}")]
    Config(String),
}
