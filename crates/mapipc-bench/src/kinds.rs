//! How the channel kinds scale with processes (issue 5): MPSC with several producer processes
//! into one consumer, broadcast fan-out to several subscriber processes (lossless and lossy),
//! and SPSC next to them, all in one run.
//!
//! # Method
//!
//! For each [`Scenario`] (and each [`Mode`]) the harness creates the channel in anonymous
//! shared memory and forks one process per end: the *hub* (the consumer of `spsc` and `mpsc`,
//! the producer of `broadcast`) and the *spokes* (the producers of `mpsc`, the subscribers of
//! `broadcast`; the one producer of `spsc`). Each process attaches its end after the fork,
//! reports ready, and waits for the start time the parent publishes once all are ready (a
//! `CLOCK_MONOTONIC` reading, the same clock in every process). Then:
//!
//! - every producer streams `size`-byte messages until `start + warmup + duration`, committing
//!   each into the ring with one copy and publishing every 32 (the policy of the two-process
//!   harness, [`crate::channel`]), then sends an end marker carrying its count;
//! - every receiver copies each message out (`Receiver::recv_into`) and checks it with a
//!   [`Tally`]: each message carries its producer's id and sequence number; per producer the
//!   numbers must follow each other without gap, repeat or reordering, the tail word must
//!   match, and each end marker must announce exactly what arrived from that producer
//!   (for a lossy subscriber: what arrived plus what `RecvError::Lagged` reported missing).
//!   So every message is delivered exactly once and in order per producer, or the run fails
//!   naming the process, the producer and the sequence number;
//! - each process counts what it sent or received in the window
//!   `[start + warmup, start + warmup + duration]`, by its own clock readings (one every 16
//!   messages).
//!
//! Rates: `msgs_per_s` is the channel's rate, measured where it is serialised: messages
//! received by the consumer (`spsc`, `mpsc`), messages published by the producer
//! (`broadcast`). `receivers_msgs_per_s` gives each receiver's own receive rate, and
//! `deliveries_per_s` their sum (a broadcast message delivered to four subscribers counts
//! four times there).
//!
//! Receivers copy each message out rather than reading it in place (as the two-process
//! harness does) because a lossy subscriber must: the producer may overwrite a message while
//! it is read in place; the other kinds do the same so that the rows compare.
//!
//! # Placement
//!
//! With at least as many CPUs as processes, each process is pinned to its own CPU. With
//! fewer (this project's machine has 2 vCPUs, and `mpsc` with 4 producers needs 5
//! processes), the hub keeps a CPU of its own and the spokes share the others round-robin, so
//! the spokes time-share (the kernel's scheduler switches between them) and the rate is what
//! the hub can absorb or produce while its peers take turns. With one CPU nothing is pinned.
//! [`KindsRow::cpus`] and [`KindsRow::placement`] record what was done.
//!
//! # Example
//! ```
//! use mapipc_bench::kinds::{run_kinds, KindsConfig, Scenario};
//! let mut config = KindsConfig::smoke();
//! config.scenarios = vec![Scenario::Mpsc { producers: 2 }];
//! let report = run_kinds(&config, &|_, _, _| {})?;
//! let row = &report.rows[0];
//! assert_eq!((row.kind.as_str(), row.senders, row.receivers), ("mpsc", 2, 1));
//! assert!(row.msgs_per_s > 0.0);
//! assert_eq!(row.received_total[0], row.sent_total); // every message exactly once
//! # Ok::<(), mapipc_bench::kinds::KindsError>(())
//! ```
#![allow(unsafe_code)]

use std::fmt::{self, Write as _};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mapipc::channel::{
    Channel, ChannelOptions, Kind, Policy, Receiver, RecvError, StartAt, WaitStrategy,
};
use mapipc::map::Mmap;
use mapipc::os::process as osproc;
use serde::{Deserialize, Serialize};

use crate::channel::{BroadcastLink, ChanSender, LinkSender, Mode, MpscLink, SpscLink};
use crate::floors::SpinFloorTransport;
use crate::frame::{END, TAIL_KEY};
use crate::measure::{run_pair, Plan};
use crate::report::{fmt_count, Machine, PlacementProbe};
use crate::sys::{self, ChildStatus};

/// Smallest message: sequence number, producer id, tail word.
pub const MIN_SIZE: usize = 24;

/// Messages between two clock readings.
const CLOCK_EVERY: u64 = 16;

/// Mixes the producer id into the tail word.
const PRODUCER_KEY: u64 = 0x9e37_79b9_7f4a_7c15;

/// Exit status of a child that recorded a failure on the board.
const EXIT_FAILURE: i32 = 3;
/// Exit status of a child that panicked.
const EXIT_PANIC: i32 = 4;
/// Exit status of a child whose parent was already gone.
const EXIT_ORPHAN: i32 = 5;

// ---------------------------------------------------------------------------------------
// Messages and their check

/// Writes message number `seq` of `producer` into `msg` (at least [`MIN_SIZE`] bytes):
/// the sequence number in bytes `0..8`, the producer id in `8..16`, and a tail word derived
/// from both in the last 8 bytes (little-endian). The rest is left as it is.
///
/// # Panics
/// If `msg` is shorter than [`MIN_SIZE`].
///
/// # Example
/// ```
/// use mapipc_bench::kinds::{stamp, Stamp};
/// let mut msg = [0u8; 64];
/// stamp(&mut msg, 3, 41);
/// let s = Stamp::read(&msg);
/// assert_eq!((s.seq, s.producer), (41, 3));
/// assert!(s.is_intact());
/// msg[60] ^= 1;
/// assert!(!Stamp::read(&msg).is_intact());
/// ```
#[inline]
pub fn stamp(msg: &mut [u8], producer: u64, seq: u64) {
    let n = msg.len();
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg[8..16].copy_from_slice(&producer.to_le_bytes());
    msg[n - 8..].copy_from_slice(&tail_word(producer, seq).to_le_bytes());
}

#[inline]
fn tail_word(producer: u64, seq: u64) -> u64 {
    seq ^ TAIL_KEY ^ producer.wrapping_mul(PRODUCER_KEY)
}

/// The three checked words of a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Bytes `0..8`: the sequence number ([`END`] set on an end marker).
    pub seq: u64,
    /// Bytes `8..16`: the producer id.
    pub producer: u64,
    /// The last 8 bytes.
    pub tail: u64,
}

impl Stamp {
    /// Reads a received message. A message shorter than [`MIN_SIZE`] reads as zero words with
    /// a tail that does not match.
    #[inline]
    pub fn read(msg: &[u8]) -> Stamp {
        let word = |at: usize| {
            msg.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        if msg.len() < MIN_SIZE {
            return Stamp {
                seq: 0,
                producer: 0,
                tail: !tail_word(0, 0),
            };
        }
        Stamp {
            seq: word(0),
            producer: word(8),
            tail: word(msg.len() - 8),
        }
    }

    /// Whether the tail word matches the sequence number and producer id.
    #[inline]
    pub fn is_intact(&self) -> bool {
        self.tail == tail_word(self.producer, self.seq)
    }
}

/// What a receiver found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A message out of sequence for its producer.
    #[error(
        "expected message {expected} from producer {producer} but got {got} (a message was \
         dropped, duplicated or reordered)"
    )]
    Sequence {
        /// The producer id.
        producer: u64,
        /// The sequence number due.
        expected: u64,
        /// The sequence number that arrived.
        got: u64,
    },
    /// The tail word does not match the head words: torn, shifted or overwritten bytes.
    #[error(
        "corrupted message (sequence word {seq:#018x}, producer word {producer:#x}, tail \
         {tail:#018x} do not match)"
    )]
    Corrupted {
        /// The sequence word.
        seq: u64,
        /// The producer word.
        producer: u64,
        /// The tail word.
        tail: u64,
    },
    /// A producer id beyond the scenario's producers.
    #[error("message from producer {producer}, but only {producers} producers exist")]
    UnknownProducer {
        /// The id found.
        producer: u64,
        /// The number of producers.
        producers: u64,
    },
    /// A message after the producer's end marker.
    #[error("message {got} from producer {producer} after its end marker")]
    AfterEnd {
        /// The producer id.
        producer: u64,
        /// The sequence word.
        got: u64,
    },
    /// An end marker announcing another count than arrived (plus what was reported missed).
    #[error(
        "producer {producer} announced {announced} messages, but {received} arrived and \
         {missed} were reported missed"
    )]
    Count {
        /// The producer id.
        producer: u64,
        /// The count in the end marker.
        announced: u64,
        /// Messages that arrived from it.
        received: u64,
        /// Messages reported missed (`Lagged`).
        missed: u64,
    },
    /// `RecvError::Lagged` on a channel that must not lose messages.
    #[error("told it lagged by {missed} messages on a lossless channel")]
    Lagged {
        /// The count reported.
        missed: u64,
    },
}

/// What a checked message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A message, the next of its producer.
    Message,
    /// The end marker of this producer.
    End {
        /// The producer id.
        producer: u64,
    },
}

/// A receiver's accounting: per producer, the next sequence number due, and whether its end
/// marker arrived. Checks that every message is delivered exactly once and in order per
/// producer.
///
/// # Example
/// ```
/// use mapipc_bench::frame::END;
/// use mapipc_bench::kinds::{stamp, Seen, Stamp, Tally, Violation};
/// let mut t = Tally::new(2);
/// let mut msg = [0u8; 32];
/// let mut check = |t: &mut Tally, producer, seq| {
///     stamp(&mut msg, producer, seq);
///     t.check(Stamp::read(&msg))
/// };
/// assert_eq!(check(&mut t, 1, 0), Ok(Seen::Message));
/// assert_eq!(check(&mut t, 0, 0), Ok(Seen::Message));
/// assert_eq!(check(&mut t, 1, 1), Ok(Seen::Message));
/// assert!(matches!(check(&mut t, 1, 1), Err(Violation::Sequence { expected: 2, got: 1, .. })));
/// assert_eq!(check(&mut t, 0, END | 1), Ok(Seen::End { producer: 0 }));
/// assert!(!t.done());
/// assert_eq!(check(&mut t, 1, END | 2), Ok(Seen::End { producer: 1 }));
/// assert!(t.done());
/// assert_eq!(t.received(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct Tally {
    next: Vec<u64>,
    ended: Vec<bool>,
    open: usize,
    received: u64,
    missed: u64,
}

impl Tally {
    /// Accounting for `producers` producers (ids `0..producers`).
    pub fn new(producers: usize) -> Tally {
        Tally {
            next: vec![0; producers],
            ended: vec![false; producers],
            open: producers,
            received: 0,
            missed: 0,
        }
    }

    /// Checks one received message.
    ///
    /// # Errors
    /// The [`Violation`] found; the tally is unusable afterwards.
    #[inline]
    pub fn check(&mut self, s: Stamp) -> Result<Seen, Violation> {
        if !s.is_intact() {
            return Err(Violation::Corrupted {
                seq: s.seq,
                producer: s.producer,
                tail: s.tail,
            });
        }
        let producers = self.next.len() as u64;
        let Some(p) = usize::try_from(s.producer)
            .ok()
            .filter(|&p| p < self.next.len())
        else {
            return Err(Violation::UnknownProducer {
                producer: s.producer,
                producers,
            });
        };
        if self.ended[p] {
            return Err(Violation::AfterEnd {
                producer: s.producer,
                got: s.seq,
            });
        }
        let due = self.next[p];
        if s.seq & END != 0 {
            let announced = s.seq & !END;
            if announced != due {
                return Err(Violation::Count {
                    producer: s.producer,
                    announced,
                    received: due - self.missed.min(due),
                    missed: self.missed,
                });
            }
            self.ended[p] = true;
            self.open -= 1;
            return Ok(Seen::End {
                producer: s.producer,
            });
        }
        if s.seq != due {
            return Err(Violation::Sequence {
                producer: s.producer,
                expected: due,
                got: s.seq,
            });
        }
        self.next[p] = due + 1;
        self.received += 1;
        Ok(Seen::Message)
    }

    /// Accounts for `missed` messages a lossy broadcast subscriber was told it lost: the next
    /// message due moves past them. Only meaningful with a single producer.
    ///
    /// # Errors
    /// [`Violation::AfterEnd`] after the end marker, [`Violation::UnknownProducer`] with
    /// several producers (a lag cannot be attributed).
    ///
    /// # Example
    /// ```
    /// use mapipc_bench::frame::END;
    /// use mapipc_bench::kinds::{stamp, Stamp, Tally};
    /// let mut t = Tally::new(1);
    /// let mut msg = [0u8; 24];
    /// stamp(&mut msg, 0, 0);
    /// t.check(Stamp::read(&msg)).unwrap();
    /// t.lagged(5).unwrap(); // messages 1..=5 were overwritten before we read them
    /// stamp(&mut msg, 0, 6);
    /// t.check(Stamp::read(&msg)).unwrap();
    /// stamp(&mut msg, 0, END | 7); // 7 sent = 2 received + 5 missed
    /// t.check(Stamp::read(&msg)).unwrap();
    /// assert_eq!((t.received(), t.missed()), (2, 5));
    /// ```
    pub fn lagged(&mut self, missed: u64) -> Result<(), Violation> {
        if self.next.len() != 1 {
            return Err(Violation::UnknownProducer {
                producer: u64::MAX,
                producers: self.next.len() as u64,
            });
        }
        if self.ended[0] {
            return Err(Violation::AfterEnd {
                producer: 0,
                got: missed,
            });
        }
        self.next[0] += missed;
        self.missed += missed;
        Ok(())
    }

    /// Every producer's end marker arrived.
    pub fn done(&self) -> bool {
        self.open == 0
    }

    /// Messages received (end markers not counted).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages reported missed.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Messages received from `producer` so far (plus those reported missed).
    pub fn next(&self, producer: usize) -> u64 {
        self.next.get(producer).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios and configuration

/// One shape of traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One producer, one consumer, SPSC channel.
    Spsc,
    /// `producers` producer processes into one consumer, MPSC channel.
    Mpsc {
        /// Producer processes.
        producers: usize,
    },
    /// One producer, `subscribers` subscriber processes, broadcast channel.
    Broadcast {
        /// Subscriber processes.
        subscribers: usize,
        /// Lossless (the producer waits for the slowest) or lossy (it never waits).
        policy: Policy,
    },
}

impl Scenario {
    /// The scenarios of issue 5: `spsc`; `mpsc` with 1, 2 and 4 producers; broadcast to 1, 2
    /// and 4 subscribers, lossless then lossy.
    ///
    /// # Example
    /// ```
    /// let labels: Vec<String> = mapipc_bench::kinds::Scenario::issue5()
    ///     .iter()
    ///     .map(|s| s.label())
    ///     .collect();
    /// assert_eq!(labels[..3], ["spsc 1->1", "mpsc 1->1", "mpsc 2->1"]);
    /// assert_eq!(labels[9], "broadcast lossy 1->4");
    /// ```
    pub fn issue5() -> Vec<Scenario> {
        let mut v = vec![Scenario::Spsc];
        v.extend([1, 2, 4].map(|producers| Scenario::Mpsc { producers }));
        for policy in [Policy::Lossless, Policy::Lossy] {
            v.extend([1, 2, 4].map(|subscribers| Scenario::Broadcast {
                subscribers,
                policy,
            }));
        }
        v
    }

    /// `spsc`, `mpsc` or `broadcast`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scenario::Spsc => "spsc",
            Scenario::Mpsc { .. } => "mpsc",
            Scenario::Broadcast { .. } => "broadcast",
        }
    }

    /// `lossless` or `lossy` for broadcast.
    pub fn policy(&self) -> Option<&'static str> {
        match self {
            Scenario::Broadcast {
                policy: Policy::Lossy,
                ..
            } => Some("lossy"),
            Scenario::Broadcast { .. } => Some("lossless"),
            _ => None,
        }
    }

    /// Producer processes.
    pub fn senders(&self) -> usize {
        match *self {
            Scenario::Mpsc { producers } => producers,
            _ => 1,
        }
    }

    /// Receiving processes (consumer or subscribers).
    pub fn receivers(&self) -> usize {
        match *self {
            Scenario::Broadcast { subscribers, .. } => subscribers,
            _ => 1,
        }
    }

    /// All processes of the scenario.
    pub fn processes(&self) -> usize {
        self.senders() + self.receivers()
    }

    /// `mpsc 4->1`, `broadcast lossy 1->2`.
    pub fn label(&self) -> String {
        let mut s = self.kind().to_string();
        if let Some(p) = self.policy() {
            s.push(' ');
            s.push_str(p);
        }
        let _ = write!(s, " {}->{}", self.senders(), self.receivers());
        s
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// What [`run_kinds`] measures.
#[derive(Clone, Debug, PartialEq)]
pub struct KindsConfig {
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// Wait modes; every scenario runs in each, modes outermost.
    pub modes: Vec<Mode>,
    /// Message size in bytes, at least [`MIN_SIZE`].
    pub size: usize,
    /// Time after the start not counted.
    pub warmup: Duration,
    /// Counted time.
    pub duration: Duration,
    /// Pin processes (see the module docs).
    pub pin: bool,
    /// A placement probe (spin ping-pong between two pinned processes) before each scenario.
    pub probe: bool,
    /// Bound for one scenario, fork to the last child reaped; `None`: a minute plus ten times
    /// the planned time.
    pub watchdog: Option<Duration>,
    /// After a failed scenario, record it in [`KindsReport::failures`] and go on with the
    /// next, instead of ending the run with the error.
    pub keep_going: bool,
}

impl Default for KindsConfig {
    /// Issue 5's scenarios in `park` then `spin` mode, 64-byte messages, 1 s counted after
    /// 200 ms, pinned, probed.
    fn default() -> KindsConfig {
        KindsConfig {
            scenarios: Scenario::issue5(),
            modes: vec![Mode::Park, Mode::Spin],
            size: 64,
            warmup: Duration::from_millis(200),
            duration: Duration::from_secs(1),
            pin: true,
            probe: true,
            watchdog: None,
            keep_going: false,
        }
    }
}

impl KindsConfig {
    /// Issue 5's scenarios in `park` mode, 300 ms after 50 ms.
    pub fn quick() -> KindsConfig {
        KindsConfig {
            modes: vec![Mode::Park],
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            ..KindsConfig::default()
        }
    }

    /// A smoke test: issue 5's scenarios in `park` mode, 100 ms after 10 ms, no probe, a 60 s
    /// watchdog. The checks all run; the figures mean little.
    pub fn smoke() -> KindsConfig {
        KindsConfig {
            modes: vec![Mode::Park],
            duration: Duration::from_millis(100),
            warmup: Duration::from_millis(10),
            probe: false,
            watchdog: Some(Duration::from_secs(60)),
            ..KindsConfig::default()
        }
    }

    /// Checks sizes, counts and durations.
    ///
    /// # Errors
    /// [`KindsError::Config`] naming the problem.
    ///
    /// # Example
    /// ```
    /// use mapipc_bench::kinds::{KindsConfig, Scenario};
    /// let mut c = KindsConfig::smoke();
    /// assert!(c.validate().is_ok());
    /// c.scenarios = vec![Scenario::Mpsc { producers: 0 }];
    /// assert!(c.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), KindsError> {
        let bad = |s: String| Err(KindsError::Config(s));
        if self.size < MIN_SIZE || self.size > crate::Config::MAX_SIZE {
            return bad(format!(
                "message size {} is outside {MIN_SIZE}..={} bytes (each message carries a \
                 sequence number, a producer id and a check word)",
                self.size,
                crate::Config::MAX_SIZE
            ));
        }
        if self.scenarios.is_empty() || self.modes.is_empty() {
            return bad("no scenario or no mode".into());
        }
        let in_range = |n: usize| (1..=MAX_SPOKES).contains(&n);
        if let Some(s) = self
            .scenarios
            .iter()
            .find(|s| !in_range(s.senders()) || !in_range(s.receivers()))
        {
            return bad(format!(
                "{s}: the numbers of producers and subscribers must be 1 to {MAX_SPOKES}"
            ));
        }
        // Reported in whole milliseconds (`duration_ms`), as by the two-process harness.
        if self.duration < crate::Config::MIN_DURATION {
            return bad("the duration must be at least 1 ms".into());
        }
        if self.duration > Duration::from_secs(3600) || self.warmup > Duration::from_secs(3600) {
            return bad("durations above an hour are refused".into());
        }
        Ok(())
    }

    fn bound(&self) -> Duration {
        self.watchdog
            .unwrap_or(Duration::from_secs(60) + (self.warmup + self.duration) * 10)
    }
}

/// Most producers or subscribers in one scenario.
pub const MAX_SPOKES: usize = 64;

// ---------------------------------------------------------------------------------------
// Results

/// One scenario in one mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindsRow {
    /// `spsc`, `mpsc` or `broadcast`.
    pub kind: String,
    /// `lossless` or `lossy` (broadcast), `null` otherwise.
    pub policy: Option<String>,
    /// `spin` or `park`.
    pub mode: String,
    /// Producer processes.
    pub senders: usize,
    /// Receiving processes (consumer or subscribers).
    pub receivers: usize,
    /// All processes of the scenario.
    pub processes: usize,
    /// CPUs this process tree could use.
    pub cpus: usize,
    /// The CPU of each process, hub first (the consumer of `spsc`/`mpsc`, the producer of
    /// `broadcast`), then the spokes; `null` when not pinned.
    pub placement: Vec<Option<usize>>,
    /// Message size in bytes.
    pub size: usize,
    /// The channel's rate in the counted window: messages received by the consumer
    /// (`spsc`, `mpsc`) or published by the producer (`broadcast`).
    pub msgs_per_s: f64,
    /// Each receiver's own receive rate in the window.
    pub receivers_msgs_per_s: Vec<f64>,
    /// Messages delivered per second, all receivers together.
    pub deliveries_per_s: f64,
    /// `deliveries_per_s` in 10^9 bytes per second.
    pub gb_per_s: f64,
    /// `mpsc`: each producer's share of the messages the consumer received in the window.
    pub producer_shares: Vec<f64>,
    /// Messages sent over the whole run (warm-up and drain included), all producers.
    pub sent_total: u64,
    /// Messages each receiver received over the whole run.
    pub received_total: Vec<u64>,
    /// Messages each receiver was told it missed (`Lagged`; lossy broadcast only).
    pub missed_total: Vec<u64>,
    /// The placement probe measured just before (median spin ping-pong, ns), when probed:
    /// rows compare only with rows measured after a similar probe.
    #[serde(default)]
    pub probe_ns: Option<f64>,
}

impl KindsRow {
    /// `label (mode)`, e.g. `mpsc 4->1 (park)`.
    pub fn label(&self) -> String {
        let mut s = self.kind.clone();
        if let Some(p) = &self.policy {
            s.push(' ');
            s.push_str(p);
        }
        let _ = write!(s, " {}->{} ({})", self.senders, self.receivers, self.mode);
        s
    }

    /// The fraction of published messages the receivers missed over the run (lossy
    /// broadcast), averaged over receivers; 0 otherwise.
    pub fn missed_fraction(&self) -> f64 {
        if self.sent_total == 0 || self.missed_total.is_empty() {
            return 0.0;
        }
        let missed: u64 = self.missed_total.iter().sum();
        missed as f64 / (self.sent_total as f64 * self.missed_total.len() as f64)
    }
}

/// A scenario that failed in a run with [`KindsConfig::keep_going`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindsFailure {
    /// Scenario label with mode, e.g. `broadcast lossy 1->2 (spin)`.
    pub scenario: String,
    /// The error.
    pub error: String,
}

/// Everything [`run_kinds`] measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindsReport {
    /// The machine (its `pinned_cpus` are the hub's and the first spoke's CPU, when pinned).
    pub machine: Machine,
    /// One row per scenario and mode that succeeded, in run order.
    pub rows: Vec<KindsRow>,
    /// Scenarios that failed (only with [`KindsConfig::keep_going`]).
    pub failures: Vec<KindsFailure>,
}

impl KindsReport {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The row of `scenario` in `mode`.
    pub fn row(&self, scenario: &Scenario, mode: Mode) -> Option<&KindsRow> {
        self.rows.iter().find(|r| {
            r.kind == scenario.kind()
                && r.policy.as_deref() == scenario.policy()
                && r.senders == scenario.senders()
                && r.receivers == scenario.receivers()
                && r.mode == mode.as_str()
        })
    }

    /// A text table: one line per row, with the channel's rate, the receivers' rates and
    /// their sum, each relative to `spsc` in the same mode, the processes per CPU, and for
    /// `mpsc` the producers' shares and for lossy broadcast the share of messages missed.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "{} ({} CPUs), Linux {}, {}; {} B messages; {} ms counted after {} ms",
            m.cpu_model,
            m.cores,
            m.kernel,
            m.date,
            self.rows.first().map_or(0, |r| r.size),
            m.duration_ms,
            m.warmup_ms
        );
        if let Some([a, b, c]) = m.load_average {
            let _ = writeln!(out, "load average at start: {a:.2} {b:.2} {c:.2}");
        }
        let _ = writeln!(
            out,
            "{:<30} {:>5} {:>7} {:>9} {:>7} {:>19} {:>11} {:>7} {:>6} {:>6}  notes",
            "scenario",
            "procs",
            "procs/",
            "msgs/s",
            "x spsc",
            "per receiver",
            "deliveries",
            "x spsc",
            "GB/s",
            "probe"
        );
        let _ = writeln!(out, "{:<30} {:>5} {:>7}", "", "", "CPU");
        for r in &self.rows {
            let spsc = self
                .rows
                .iter()
                .find(|s| s.kind == "spsc" && s.mode == r.mode)
                .map(|s| (s.msgs_per_s, s.deliveries_per_s));
            let ratio = |v: f64, base: Option<f64>| match base {
                Some(b) if b > 0.0 => format!("{:.2}x", v / b),
                _ => "-".into(),
            };
            let (lo, hi) = r
                .receivers_msgs_per_s
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            let per = if r.receivers_msgs_per_s.len() > 1 {
                format!("{}..{}", fmt_count(lo), fmt_count(hi))
            } else {
                fmt_count(hi)
            };
            let mut notes = String::new();
            if r.producer_shares.len() > 1 {
                let shares: Vec<String> = r
                    .producer_shares
                    .iter()
                    .map(|s| format!("{:.0}", s * 100.0))
                    .collect();
                let _ = write!(notes, "shares % {}", shares.join("/"));
            }
            if r.policy.as_deref() == Some("lossy") {
                let _ = write!(
                    notes,
                    "missed {:.1}% (exact, per subscriber: {})",
                    r.missed_fraction() * 100.0,
                    r.missed_total
                        .iter()
                        .map(|m| fmt_count(*m as f64))
                        .collect::<Vec<_>>()
                        .join("/")
                );
            }
            let probe = r.probe_ns.map_or("-".into(), |p| format!("{p:.0}"));
            let _ = writeln!(
                out,
                "{:<30} {:>5} {:>7.1} {:>9} {:>7} {:>19} {:>11} {:>7} {:>6.2} {:>6}  {}",
                r.label(),
                r.processes,
                r.processes as f64 / r.cpus.max(1) as f64,
                fmt_count(r.msgs_per_s),
                ratio(r.msgs_per_s, spsc.map(|s| s.0)),
                per,
                fmt_count(r.deliveries_per_s),
                ratio(r.deliveries_per_s, spsc.map(|s| s.1)),
                r.gb_per_s,
                probe,
                notes
            );
        }
        for f in &self.failures {
            let _ = writeln!(out, "{:<30} FAILED: {}", f.scenario, f.error);
        }
        let _ = writeln!(
            out,
            "msgs/s: the channel's rate (received by the consumer; published by a broadcast \
             producer); deliveries: all receivers together; procs/CPU above 1: processes \
             time-share CPUs; probe: spin ping-pong p50 (ns) just before the row, compare only \
             rows with similar probes"
        );
        out
    }
}

/// Why a scaling run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KindsError {
    /// A receiver found a message that was dropped, repeated, reordered or corrupted.
    #[error("{scenario}: the {who} found a bad message: {violation}")]
    Check {
        /// Scenario label with mode.
        scenario: String,
        /// Which process (`consumer`, `subscriber 2`).
        who: String,
        /// What it found.
        violation: Violation,
    },
    /// A channel call failed in a child process.
    #[error("{scenario}: the {who} failed: {message}")]
    Channel {
        /// Scenario label with mode.
        scenario: String,
        /// Which process.
        who: String,
        /// The error, as the child printed it.
        message: String,
    },
    /// A child process ended abnormally without recording why.
    #[error("{scenario}: the {who} {status}")]
    Died {
        /// Scenario label with mode.
        scenario: String,
        /// Which process.
        who: String,
        /// How it ended.
        status: String,
    },
    /// The scenario did not finish within the watchdog's bound; its processes were killed.
    #[error("{scenario}: not finished after {after:?}; the watchdog killed its processes")]
    Timeout {
        /// Scenario label with mode.
        scenario: String,
        /// The bound.
        after: Duration,
    },
    /// Creating the channel or the control page, or `fork`/`waitpid`, failed.
    #[error("{scenario}: {what} failed: {source}")]
    Setup {
        /// Scenario label with mode.
        scenario: String,
        /// The call.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The placement probe failed.
    #[error("placement probe: {0}")]
    Probe(#[source] crate::BenchError),
    /// The configuration is unusable.
    #[error("invalid scaling configuration: {0}")]
    Config(String),
}

// ---------------------------------------------------------------------------------------
// The control page shared by the parent and the children

/// A page (or a few) of anonymous shared memory: start signal, and one slot per process for
/// its results or its failure, written without allocating.
struct Board {
    map: Mmap,
}

/// Words of a slot (byte offsets within it).
mod w {
    pub const STATE: u64 = 0;
    pub const COUNT: u64 = 8;
    pub const NANOS: u64 = 16;
    pub const TOTAL: u64 = 24;
    pub const MISSED: u64 = 32;
    /// Written by the consumer into a producer's slot: that producer's messages in the window.
    pub const CONSUMED: u64 = 40;
    pub const FAIL: u64 = 48; // 5 words
    pub const TEXT_LEN: u64 = 96;
    pub const TEXT: u64 = 128;
    pub const TEXT_MAX: usize = 384;
}

const READY: u64 = 0;
const GO: u64 = 8;
const SLOTS: u64 = 512;
const SLOT: u64 = 512;

const STATE_OK: u64 = 1;
const STATE_VIOLATION: u64 = 2;
const STATE_CHANNEL: u64 = 3;

impl Board {
    fn new(processes: usize) -> io::Result<Board> {
        let len = (SLOTS + SLOT * processes as u64).next_multiple_of(4096);
        let map = Mmap::anonymous(len as usize).map_err(io::Error::other)?;
        Ok(Board { map })
    }

    fn word(&self, at: u64) -> Option<&AtomicU64> {
        self.map.atomic_u64(at).ok()
    }

    fn load(&self, at: u64) -> u64 {
        self.word(at).map_or(0, |w| w.load(Ordering::Acquire))
    }

    fn store(&self, at: u64, v: u64) {
        if let Some(w) = self.word(at) {
            w.store(v, Ordering::Release);
        }
    }

    fn slot(i: usize) -> u64 {
        SLOTS + SLOT * i as u64
    }

    fn ready(&self) {
        if let Some(w) = self.word(READY) {
            w.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// In a child: waits for the start time and returns it.
    fn wait_go(&self) -> u64 {
        loop {
            let go = self.load(GO);
            if go != 0 {
                return go;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    fn set(&self, slot: usize, field: u64, v: u64) {
        self.store(Self::slot(slot) + field, v);
    }

    fn get(&self, slot: usize, field: u64) -> u64 {
        self.load(Self::slot(slot) + field)
    }

    fn write_violation(&self, slot: usize, v: &Violation) {
        let (kind, a, b, c, d) = match *v {
            Violation::Sequence {
                producer,
                expected,
                got,
            } => (1, producer, expected, got, 0),
            Violation::Corrupted {
                seq,
                producer,
                tail,
            } => (2, seq, producer, tail, 0),
            Violation::UnknownProducer {
                producer,
                producers,
            } => (3, producer, producers, 0, 0),
            Violation::AfterEnd { producer, got } => (4, producer, got, 0, 0),
            Violation::Count {
                producer,
                announced,
                received,
                missed,
            } => (5, producer, announced, received, missed),
            Violation::Lagged { missed } => (6, missed, 0, 0, 0),
        };
        for (i, x) in [kind, a, b, c, d].into_iter().enumerate() {
            self.set(slot, w::FAIL + 8 * i as u64, x);
        }
        self.set(slot, w::STATE, STATE_VIOLATION);
    }

    fn read_violation(&self, slot: usize) -> Option<Violation> {
        let f = |i: u64| self.get(slot, w::FAIL + 8 * i);
        let (a, b, c, d) = (f(1), f(2), f(3), f(4));
        Some(match f(0) {
            1 => Violation::Sequence {
                producer: a,
                expected: b,
                got: c,
            },
            2 => Violation::Corrupted {
                seq: a,
                producer: b,
                tail: c,
            },
            3 => Violation::UnknownProducer {
                producer: a,
                producers: b,
            },
            4 => Violation::AfterEnd {
                producer: a,
                got: b,
            },
            5 => Violation::Count {
                producer: a,
                announced: b,
                received: c,
                missed: d,
            },
            6 => Violation::Lagged { missed: a },
            _ => return None,
        })
    }

    /// In a child: records a channel error's text (formatted into a stack buffer).
    fn write_text(&self, slot: usize, what: &str, e: &dyn fmt::Display) {
        let mut buf = [0u8; w::TEXT_MAX];
        let mut cur = io::Cursor::new(&mut buf[..]);
        let _ = io::Write::write_fmt(&mut cur, format_args!("{what}: {e}"));
        let n = cur.position() as usize;
        let _ = self.map.write_at(Self::slot(slot) + w::TEXT, &buf[..n]);
        self.set(slot, w::TEXT_LEN, n as u64);
        self.set(slot, w::STATE, STATE_CHANNEL);
    }

    fn read_text(&self, slot: usize) -> String {
        let n = (self.get(slot, w::TEXT_LEN) as usize).min(w::TEXT_MAX);
        let mut buf = vec![0u8; n];
        let _ = self.map.read_at(Self::slot(slot) + w::TEXT, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

// ---------------------------------------------------------------------------------------
// The counted window

/// Counts, by clock readings, what happened in `[start, end]` (monotonic nanoseconds).
struct Window {
    start: u64,
    end: u64,
    state: u8,
    t0: u64,
    n0: u64,
    m0: u64,
    t1: u64,
    n1: u64,
    m1: u64,
}

impl Window {
    fn new(go: u64, warmup: Duration, duration: Duration) -> Window {
        let start = go.saturating_add(warmup.as_nanos() as u64);
        Window {
            start,
            end: start.saturating_add(duration.as_nanos() as u64),
            state: 0,
            t0: 0,
            n0: 0,
            m0: 0,
            t1: 0,
            n1: 0,
            m1: 0,
        }
    }

    /// Looks at the clock with `n` messages and `m` missed so far; returns whether the window
    /// has ended.
    #[inline]
    fn tick(&mut self, n: u64, m: u64) -> bool {
        if self.state == 2 {
            return true;
        }
        let now = osproc::monotonic_ns();
        if self.state == 0 && now >= self.start {
            (self.t0, self.n0, self.m0, self.state) = (now, n, m, 1);
        }
        if self.state == 1 && now >= self.end {
            (self.t1, self.n1, self.m1, self.state) = (now, n, m, 2);
        }
        self.state == 2
    }

    /// Closes the window at the end of the run if it is still open.
    fn close(&mut self, n: u64, m: u64) {
        let now = osproc::monotonic_ns();
        match self.state {
            0 => (self.t0, self.n0, self.m0, self.t1, self.n1, self.m1) = (now, n, m, now, n, m),
            1 => (self.t1, self.n1, self.m1) = (now, n, m),
            _ => {}
        }
        self.state = 2;
    }

    fn record(&self, board: &Board, slot: usize) {
        board.set(slot, w::COUNT, self.n1 - self.n0);
        board.set(slot, w::NANOS, self.t1 - self.t0);
    }
}

// ---------------------------------------------------------------------------------------
// The processes

/// What one child does.
enum Role {
    /// Produces into the channel as producer `id`; skips sequence number `skip` (tests).
    Producer {
        id: u64,
        msg: Vec<u8>,
        skip: Option<u64>,
    },
    /// Consumes (SPSC/MPSC) or subscribes (broadcast), checking with `tally`.
    Receiver {
        tally: Tally,
        buf: Vec<u8>,
        /// Per producer: messages received at the window's start and end.
        window_counts: Vec<(u64, u64)>,
        lossy: bool,
    },
}

/// A failure in a child, recorded on the board.
enum ChildFail {
    Violation(Violation),
    Channel(&'static str, String),
}

fn channel_fail<E: fmt::Display>(what: &'static str) -> impl FnOnce(E) -> ChildFail {
    move |e| ChildFail::Channel(what, e.to_string())
}

struct Ctx<'a> {
    chan: &'a Channel,
    board: &'a Board,
    slot: usize,
    wait: WaitStrategy,
    warmup: Duration,
    duration: Duration,
}

fn produce(cx: &Ctx<'_>, id: u64, msg: &mut [u8], skip: Option<u64>) -> Result<(), ChildFail> {
    let tx = cx
        .chan
        .sender()
        .map_err(channel_fail("attaching a sender"))?;
    let mut tx = ChanSender::new(tx, cx.wait);
    cx.board.ready();
    let mut win = Window::new(cx.board.wait_go(), cx.warmup, cx.duration);
    let mut seq = 0u64;
    loop {
        for _ in 0..CLOCK_EVERY {
            if skip == Some(seq) {
                seq += 1;
            }
            stamp(msg, id, seq);
            tx.send(msg).map_err(channel_fail("sending"))?;
            seq += 1;
        }
        if win.tick(seq, 0) {
            break;
        }
    }
    stamp(msg, id, END | seq);
    tx.send(msg)
        .map_err(channel_fail("sending the end marker"))?;
    tx.flush().map_err(channel_fail("flushing"))?;
    win.record(cx.board, cx.slot);
    cx.board.set(cx.slot, w::TOTAL, seq);
    Ok(())
}

fn attach_receiver(cx: &Ctx<'_>) -> Result<Receiver, ChildFail> {
    let mut rx = match cx.chan.kind() {
        Kind::Broadcast => cx.chan.subscribe(StartAt::Oldest),
        _ => cx.chan.receiver(),
    }
    .map_err(channel_fail("attaching the receiver"))?;
    rx.set_wait_strategy(cx.wait);
    Ok(rx)
}

fn receive(
    cx: &Ctx<'_>,
    tally: &mut Tally,
    buf: &mut Vec<u8>,
    window_counts: &mut [(u64, u64)],
    lossy: bool,
) -> Result<(), ChildFail> {
    let mut rx = attach_receiver(cx)?;
    cx.board.ready();
    let mut win = Window::new(cx.board.wait_go(), cx.warmup, cx.duration);
    let mut since_tick = 0u64;
    let snapshot = |tally: &Tally, counts: &mut [(u64, u64)], end: bool| {
        for (p, c) in counts.iter_mut().enumerate() {
            if end {
                c.1 = tally.next(p);
            } else {
                c.0 = tally.next(p);
            }
        }
    };
    while !tally.done() {
        match rx.recv_into(buf) {
            Ok(()) => {
                tally
                    .check(Stamp::read(buf))
                    .map_err(ChildFail::Violation)?;
            }
            Err(RecvError::Lagged { missed }) if lossy => {
                tally.lagged(missed).map_err(ChildFail::Violation)?;
            }
            Err(RecvError::Lagged { missed }) => {
                return Err(ChildFail::Violation(Violation::Lagged { missed }))
            }
            Err(e) => return Err(channel_fail("receiving")(&e)),
        }
        since_tick += 1;
        if since_tick >= CLOCK_EVERY {
            since_tick = 0;
            let before = win.state;
            win.tick(tally.received(), tally.missed());
            if before == 0 && win.state >= 1 {
                snapshot(tally, window_counts, false);
            }
            if before <= 1 && win.state == 2 {
                snapshot(tally, window_counts, true);
            }
        }
    }
    let before = win.state;
    win.close(tally.received(), tally.missed());
    if before == 0 {
        snapshot(tally, window_counts, false);
    }
    if before <= 1 {
        snapshot(tally, window_counts, true);
    }
    win.record(cx.board, cx.slot);
    cx.board.set(cx.slot, w::TOTAL, tally.received());
    cx.board.set(cx.slot, w::MISSED, tally.missed());
    if window_counts.len() > 1 {
        // The consumer tells each producer's slot how much of the window was its.
        for (p, (a, b)) in window_counts.iter().enumerate() {
            cx.board.set(1 + p, w::CONSUMED, b - a);
        }
    }
    Ok(())
}

/// The body of a child process; returns its exit status.
fn child_main(role: &mut Role, cx: &Ctx<'_>, cpu: Option<usize>, parent: u32) -> i32 {
    if !sys::die_with_parent(parent) {
        return EXIT_ORPHAN;
    }
    if let Some(cpu) = cpu {
        osproc::pin_to_cpu(cpu);
    }
    let body = || match role {
        Role::Producer { id, msg, skip } => produce(cx, *id, msg, *skip),
        Role::Receiver {
            tally,
            buf,
            window_counts,
            lossy,
        } => receive(cx, tally, buf, window_counts, *lossy),
    };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            cx.board.set(cx.slot, w::STATE, STATE_OK);
            0
        }
        Ok(Err(ChildFail::Violation(v))) => {
            cx.board.write_violation(cx.slot, &v);
            EXIT_FAILURE
        }
        Ok(Err(ChildFail::Channel(what, e))) => {
            cx.board.write_text(cx.slot, what, &e);
            EXIT_FAILURE
        }
        Err(_) => EXIT_PANIC,
    }
}

// ---------------------------------------------------------------------------------------
// The parent

/// CPUs for the hub and each of `spokes` spokes, given the usable `cpus`: one each when
/// there are enough; otherwise the hub keeps the first CPU to itself and the spokes share the
/// others round-robin; nothing pinned with fewer than two CPUs.
///
/// # Example
/// ```
/// use mapipc_bench::kinds::placement;
/// assert_eq!(placement(&[0, 1], 1), [Some(0), Some(1)]);
/// assert_eq!(placement(&[0, 1], 4), [Some(0), Some(1), Some(1), Some(1), Some(1)]);
/// assert_eq!(placement(&[0, 1, 2], 4), [Some(0), Some(1), Some(2), Some(1), Some(2)]);
/// assert_eq!(placement(&[3], 2), [None, None, None]);
/// ```
pub fn placement(cpus: &[usize], spokes: usize) -> Vec<Option<usize>> {
    if cpus.len() < 2 {
        return vec![None; spokes + 1];
    }
    if cpus.len() > spokes {
        return cpus[..=spokes].iter().copied().map(Some).collect();
    }
    let others = &cpus[1..];
    std::iter::once(Some(cpus[0]))
        .chain((0..spokes).map(|i| Some(others[i % others.len()])))
        .collect()
}

fn create_channel(
    s: &Scenario,
    size: usize,
) -> Result<Channel, mapipc::channel::ChannelCreateError> {
    let kind = match s {
        Scenario::Spsc => Kind::Spsc,
        Scenario::Mpsc { .. } => Kind::Mpsc,
        Scenario::Broadcast { .. } => Kind::Broadcast,
    };
    let mut opts = ChannelOptions::new(kind);
    match *s {
        Scenario::Spsc => opts.capacity(SpscLink::capacity_for(size)),
        Scenario::Mpsc { producers } => opts
            .capacity(MpscLink::capacity_for(size))
            .max_producers(producers.max(64) as u32),
        Scenario::Broadcast {
            subscribers,
            policy,
        } => opts
            .capacity(BroadcastLink::capacity_for(size))
            .policy(policy)
            .max_subscribers(subscribers.max(32) as u32),
    };
    opts.anonymous()
}

/// Who a process is, for messages: slot 0 is the hub.
fn who(s: &Scenario, slot: usize) -> String {
    match (s, slot) {
        (Scenario::Broadcast { .. }, 0) => "producer".into(),
        (Scenario::Broadcast { .. }, i) => format!("subscriber {}", i - 1),
        (_, 0) => "consumer".into(),
        (_, i) => format!("producer {}", i - 1),
    }
}

/// A fault to inject (tests): producer `producer` skips sequence number `at`.
#[derive(Clone, Copy, Debug)]
struct Skip {
    producer: u64,
    at: u64,
}

/// Measures one scenario in one mode.
fn run_scenario(
    config: &KindsConfig,
    s: &Scenario,
    mode: Mode,
    cpus: &[usize],
    skip: Option<Skip>,
) -> Result<KindsRow, KindsError> {
    let label = format!("{} ({})", s.label(), mode.as_str());
    let setup = |what: &'static str| {
        let label = label.clone();
        move |source: io::Error| KindsError::Setup {
            scenario: label,
            what,
            source,
        }
    };
    let size = config.size;
    let chan =
        create_channel(s, size).map_err(|e| setup("creating the channel")(io::Error::other(e)))?;
    if chan.max_message() < size {
        return Err(KindsError::Config(format!(
            "{size}-byte messages exceed the {} channel's maximum of {}",
            s.kind(),
            chan.max_message()
        )));
    }
    let processes = s.processes();
    let board = Board::new(processes).map_err(setup("mapping the control page"))?;
    let spokes = processes - 1;
    let places = if config.pin {
        placement(cpus, spokes)
    } else {
        vec![None; processes]
    };
    let is_bcast = matches!(s, Scenario::Broadcast { .. });
    let lossy = matches!(
        s,
        Scenario::Broadcast {
            policy: Policy::Lossy,
            ..
        }
    );
    // Slot 0 is the hub; the roles are built before the fork, so children do not allocate.
    let mut roles: Vec<Role> = (0..processes)
        .map(|slot| {
            let producer = if is_bcast { slot == 0 } else { slot > 0 };
            if producer {
                let id = if is_bcast { 0 } else { slot as u64 - 1 };
                Role::Producer {
                    id,
                    msg: vec![crate::frame::FILLER; size],
                    skip: skip.filter(|k| k.producer == id).map(|k| k.at),
                }
            } else {
                Role::Receiver {
                    tally: Tally::new(s.senders()),
                    buf: Vec::with_capacity(size),
                    window_counts: vec![(0, 0); s.senders()],
                    lossy,
                }
            }
        })
        .collect();

    let parent = osproc::pid();
    // Each child held by its pidfd: a kill reaches only that child, never a process given
    // its pid after something else reaped it.
    let mut pids: Vec<Option<sys::Child>> = Vec::with_capacity(processes);
    let kill_all = |pids: &[Option<sys::Child>]| {
        for child in pids.iter().flatten() {
            let _ = child.kill();
        }
    };
    let reap_all = |pids: &mut [Option<sys::Child>]| {
        for p in pids.iter_mut() {
            if let Some(child) = p.take() {
                let _ = child.wait(true);
            }
        }
    };
    for (slot, role) in roles.iter_mut().enumerate() {
        let cx = Ctx {
            chan: &chan,
            board: &board,
            slot,
            wait: mode.wait_strategy(),
            warmup: config.warmup,
            duration: config.duration,
        };
        // SAFETY: the child only runs `child_main` on its role (allocated before the fork),
        // the channel and the board, and ends with `_exit`, never returning into this frame.
        match unsafe { sys::fork() } {
            Err(e) => {
                kill_all(&pids);
                reap_all(&mut pids);
                return Err(setup("fork")(e));
            }
            Ok(sys::Forked::Child) => {
                let code = child_main(role, &cx, places[slot], parent);
                sys::exit_child(code)
            }
            Ok(sys::Forked::Parent(child)) => pids.push(Some(child)),
        }
    }

    let started = Instant::now();
    let bound = config.bound();
    let mut statuses: Vec<Option<ChildStatus>> = vec![None; processes];
    let mut go = false;
    let mut failed = false;
    let mut timed_out = false;
    loop {
        let mut running = 0;
        for (slot, p) in pids.iter_mut().enumerate() {
            if let Some(child) = p {
                match child.wait(false) {
                    Ok(Some(st)) => {
                        statuses[slot] = Some(st);
                        *p = None;
                        if st != ChildStatus::Exited(0) {
                            failed = true;
                        }
                    }
                    Ok(None) => running += 1,
                    Err(e) => {
                        kill_all(&pids);
                        reap_all(&mut pids);
                        return Err(setup("waitpid")(e));
                    }
                }
            }
        }
        if running == 0 {
            break;
        }
        if failed {
            // One process failed: the others may wait for it forever.
            kill_all(&pids);
            reap_all(&mut pids);
            break;
        }
        if started.elapsed() > bound {
            timed_out = true;
            kill_all(&pids);
            reap_all(&mut pids);
            break;
        }
        if !go && board.load(READY) == processes as u64 {
            board.store(GO, osproc::monotonic_ns());
            go = true;
        }
        std::thread::sleep(Duration::from_millis(if go { 5 } else { 1 }));
    }

    // What a child checked and reported comes first: it is the root cause (the others then
    // only see their peer gone). Receivers (the checkers) before producers.
    let mut order: Vec<usize> = (0..processes).collect();
    order.sort_by_key(|&slot| {
        let receiver = matches!(roles[slot], Role::Receiver { .. });
        (board.get(slot, w::STATE) != STATE_VIOLATION, !receiver)
    });
    for slot in order {
        match board.get(slot, w::STATE) {
            STATE_VIOLATION => {
                if let Some(violation) = board.read_violation(slot) {
                    return Err(KindsError::Check {
                        scenario: label,
                        who: who(s, slot),
                        violation,
                    });
                }
            }
            STATE_CHANNEL => {
                return Err(KindsError::Channel {
                    scenario: label,
                    who: who(s, slot),
                    message: board.read_text(slot),
                })
            }
            _ => {}
        }
    }
    if timed_out {
        return Err(KindsError::Timeout {
            scenario: label,
            after: bound,
        });
    }
    if let Some((slot, st)) = statuses.iter().enumerate().find_map(|(i, st)| {
        st.filter(|st| *st != ChildStatus::Exited(0))
            .map(|st| (i, st))
    }) {
        let status = match st {
            ChildStatus::Exited(EXIT_PANIC) => "panicked".to_string(),
            ChildStatus::Exited(EXIT_ORPHAN) => "lost its parent".to_string(),
            other => other.to_string(),
        };
        return Err(KindsError::Died {
            scenario: label,
            who: who(s, slot),
            status,
        });
    }

    let rate = |slot: usize| {
        let ns = board.get(slot, w::NANOS);
        if ns == 0 {
            0.0
        } else {
            board.get(slot, w::COUNT) as f64 * 1e9 / ns as f64
        }
    };
    let receiver_slots: Vec<usize> = if is_bcast {
        (1..processes).collect()
    } else {
        vec![0]
    };
    let sender_slots: Vec<usize> = if is_bcast {
        vec![0]
    } else {
        (1..processes).collect()
    };
    let receivers_msgs_per_s: Vec<f64> = receiver_slots.iter().map(|&r| rate(r)).collect();
    let deliveries_per_s: f64 = receivers_msgs_per_s.iter().sum();
    let msgs_per_s = if is_bcast {
        rate(0)
    } else {
        receivers_msgs_per_s[0]
    };
    let producer_shares = if sender_slots.len() > 1 {
        let consumed: Vec<u64> = sender_slots
            .iter()
            .map(|&p| board.get(p, w::CONSUMED))
            .collect();
        let total: u64 = consumed.iter().sum();
        consumed
            .iter()
            .map(|&c| {
                if total == 0 {
                    0.0
                } else {
                    c as f64 / total as f64
                }
            })
            .collect()
    } else {
        vec![1.0]
    };
    Ok(KindsRow {
        kind: s.kind().into(),
        policy: s.policy().map(String::from),
        mode: mode.as_str().into(),
        senders: s.senders(),
        receivers: s.receivers(),
        processes,
        cpus: osproc::available_cpus(),
        placement: places,
        size,
        msgs_per_s,
        receivers_msgs_per_s,
        deliveries_per_s,
        gb_per_s: deliveries_per_s * size as f64 / 1e9,
        producer_shares,
        sent_total: sender_slots.iter().map(|&p| board.get(p, w::TOTAL)).sum(),
        received_total: receiver_slots
            .iter()
            .map(|&r| board.get(r, w::TOTAL))
            .collect(),
        missed_total: receiver_slots
            .iter()
            .map(|&r| board.get(r, w::MISSED))
            .collect(),
        probe_ns: None,
    })
}

/// Runs every scenario of `config` in every mode, calling `progress(done, total, label)`
/// before each (on this thread).
///
/// # Errors
/// An invalid configuration, or the first failed scenario ([`KindsError`]).
///
/// # Example
/// See the [module docs](self).
pub fn run_kinds(
    config: &KindsConfig,
    progress: &dyn Fn(usize, usize, &str),
) -> Result<KindsReport, KindsError> {
    config.validate()?;
    // As in `crate::run_transports`: children must stay waitable.
    let _ = mapipc::os::process::keep_children_waitable();
    let most = config
        .scenarios
        .iter()
        .map(Scenario::processes)
        .max()
        .unwrap_or(2);
    let cpus = if config.pin {
        crate::usable_cpus(most)
    } else {
        Vec::new()
    };
    let pair = match cpus[..] {
        [a, b, ..] => Some([a, b]),
        _ => None,
    };
    let mut machine = Machine::detect(pair, config.duration, config.warmup);
    let probe_plan = Plan {
        warmup: crate::Config::PROBE_DURATION / 4,
        duration: crate::Config::PROBE_DURATION,
        round_trip: true,
        throughput: false,
        watchdog: config.watchdog,
    };
    let total = config.scenarios.len() * config.modes.len();
    let mut rows = Vec::with_capacity(total);
    let mut failures = Vec::new();
    let mut done = 0;
    for &mode in &config.modes {
        for s in &config.scenarios {
            let label = format!("{} ({})", s.label(), mode.as_str());
            progress(done, total, &label);
            done += 1;
            let mut probe_ns = None;
            if config.probe {
                let m = run_pair(
                    &SpinFloorTransport,
                    "placement probe",
                    8,
                    &probe_plan,
                    pair.map(|[a, b]| (a, b)),
                )
                .map_err(KindsError::Probe)?;
                let p50 = m.latency.map_or(0.0, |l| l.p50);
                probe_ns = Some(p50);
                machine.placement_probes.push(PlacementProbe {
                    before: label.clone(),
                    rtt_p50_ns: p50,
                });
            }
            match run_scenario(config, s, mode, &cpus, None) {
                Ok(row) => rows.push(KindsRow { probe_ns, ..row }),
                Err(e) if config.keep_going => failures.push(KindsFailure {
                    scenario: label,
                    error: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
    }
    progress(done, total, "");
    Ok(KindsReport {
        machine,
        rows,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(producer: u64, seq: u64) -> Stamp {
        let mut m = [0u8; 64];
        stamp(&mut m, producer, seq);
        Stamp::read(&m)
    }

    #[test]
    fn tally_accepts_interleaved_producers_in_order() {
        let mut t = Tally::new(3);
        for seq in 0..100 {
            for p in [2, 0, 1] {
                assert_eq!(t.check(msg(p, seq)), Ok(Seen::Message));
            }
        }
        for p in 0..3 {
            assert_eq!(t.check(msg(p, END | 100)), Ok(Seen::End { producer: p }));
        }
        assert!(t.done());
        assert_eq!((t.received(), t.missed()), (300, 0));
    }

    #[test]
    fn tally_catches_drops_repeats_reorders_and_strangers() {
        let mut t = Tally::new(2);
        t.check(msg(0, 0)).unwrap();
        assert_eq!(
            t.check(msg(0, 2)),
            Err(Violation::Sequence {
                producer: 0,
                expected: 1,
                got: 2
            })
        );
        let mut t = Tally::new(2);
        t.check(msg(1, 0)).unwrap();
        assert_eq!(
            t.check(msg(1, 0)),
            Err(Violation::Sequence {
                producer: 1,
                expected: 1,
                got: 0
            })
        );
        let mut t = Tally::new(2);
        assert!(matches!(
            t.check(msg(2, 0)),
            Err(Violation::UnknownProducer {
                producer: 2,
                producers: 2
            })
        ));
        let mut m = [0u8; 64];
        stamp(&mut m, 1, 0);
        m[8] = 0; // the producer word no longer matches the tail
        assert!(matches!(
            Tally::new(2).check(Stamp::read(&m)),
            Err(Violation::Corrupted { .. })
        ));
        assert!(matches!(
            Tally::new(1).check(Stamp::read(&m[..16])),
            Err(Violation::Corrupted { .. })
        ));
    }

    #[test]
    fn tally_checks_end_counts_and_what_follows_them() {
        let mut t = Tally::new(1);
        t.check(msg(0, 0)).unwrap();
        assert_eq!(
            t.check(msg(0, END | 2)),
            Err(Violation::Count {
                producer: 0,
                announced: 2,
                received: 1,
                missed: 0
            })
        );
        let mut t = Tally::new(1);
        t.check(msg(0, END)).unwrap();
        assert_eq!(
            t.check(msg(0, 0)),
            Err(Violation::AfterEnd {
                producer: 0,
                got: 0
            })
        );
        assert!(t.lagged(1).is_err());
    }

    #[test]
    fn tally_accounts_lags_exactly() {
        let mut t = Tally::new(1);
        t.check(msg(0, 0)).unwrap();
        t.lagged(3).unwrap();
        // After a lag the next message is the first one not missed.
        assert_eq!(
            t.check(msg(0, 5)),
            Err(Violation::Sequence {
                producer: 0,
                expected: 4,
                got: 5
            })
        );
        let mut t = Tally::new(1);
        t.check(msg(0, 0)).unwrap();
        t.lagged(3).unwrap();
        t.check(msg(0, 4)).unwrap();
        // One more reported missed than really was: the end marker's count disagrees.
        t.lagged(1).unwrap();
        assert!(matches!(
            t.check(msg(0, END | 5)),
            Err(Violation::Count { announced: 5, .. })
        ));
        assert!(Tally::new(2).lagged(1).is_err());
    }

    #[test]
    fn board_carries_every_violation_and_text() {
        let board = Board::new(3).unwrap();
        let all = [
            Violation::Sequence {
                producer: 1,
                expected: 2,
                got: 3,
            },
            Violation::Corrupted {
                seq: 4,
                producer: 5,
                tail: 6,
            },
            Violation::UnknownProducer {
                producer: 7,
                producers: 2,
            },
            Violation::AfterEnd {
                producer: 1,
                got: 9,
            },
            Violation::Count {
                producer: 0,
                announced: 10,
                received: 8,
                missed: 1,
            },
            Violation::Lagged { missed: 11 },
        ];
        for v in all {
            board.write_violation(2, &v);
            assert_eq!(board.get(2, w::STATE), STATE_VIOLATION);
            assert_eq!(board.read_violation(2), Some(v));
        }
        let long = "x".repeat(1000);
        board.write_text(1, "receiving", &long);
        assert_eq!(board.get(1, w::STATE), STATE_CHANNEL);
        let text = board.read_text(1);
        assert!(
            text.starts_with("receiving: xxx") && text.len() == w::TEXT_MAX,
            "{text}"
        );
        assert_eq!(board.read_violation(0), None);
    }

    #[test]
    fn a_skipped_message_fails_the_scenario_naming_producer_and_number() {
        let config = KindsConfig::smoke();
        let cpus = crate::usable_cpus(3);
        let skip = Some(Skip {
            producer: 1,
            at: 1000,
        });
        let err = run_scenario(
            &config,
            &Scenario::Mpsc { producers: 2 },
            Mode::Park,
            &cpus,
            skip,
        )
        .unwrap_err();
        match &err {
            KindsError::Check { who, violation, .. } => {
                assert_eq!(who, "consumer");
                assert_eq!(
                    *violation,
                    Violation::Sequence {
                        producer: 1,
                        expected: 1000,
                        got: 1001
                    }
                );
            }
            other => panic!("unexpected error: {other}"),
        }
        assert!(
            err.to_string()
                .starts_with("mpsc 2->1 (park): the consumer"),
            "{err}"
        );
        // Every subscriber of a lossless broadcast catches it.
        let s = Scenario::Broadcast {
            subscribers: 2,
            policy: Policy::Lossless,
        };
        let skip = Some(Skip {
            producer: 0,
            at: 10,
        });
        let err = run_scenario(&config, &s, Mode::Spin, &cpus, skip).unwrap_err();
        assert!(
            matches!(
                &err,
                KindsError::Check {
                    who,
                    violation: Violation::Sequence {
                        producer: 0,
                        expected: 10,
                        got: 11
                    },
                    ..
                } if who.starts_with("subscriber")
            ),
            "{err}"
        );
    }

    #[test]
    fn window_counts_only_inside_it() {
        let now = osproc::monotonic_ns();
        let mut win = Window::new(now, Duration::ZERO, Duration::from_secs(3600));
        assert!(!win.tick(10, 0));
        assert_eq!(win.state, 1);
        win.close(25, 2);
        assert_eq!((win.n1 - win.n0, win.m1 - win.m0), (15, 2));
        assert!(win.t1 >= win.t0);
        // A window that has not started by the end of the run counts nothing.
        let mut late = Window::new(now, Duration::from_secs(3600), Duration::from_secs(1));
        assert!(!late.tick(5, 0));
        late.close(9, 0);
        assert_eq!((late.n1 - late.n0, late.t1 - late.t0), (0, 0));
    }
}
