//! What to run, and progress events.

use std::time::Duration;

use crate::error::BenchError;
use crate::frame::MIN_SIZE;
use crate::report::PlacementProbe;

/// What to measure.
///
/// # Example
/// ```
/// use mapipc_bench::Config;
/// let quick = Config::quick();
/// assert_eq!(quick.sizes, [8, 64]);
/// let mut c = Config::default();
/// assert_eq!(c.sizes, [8, 64, 4096, 65536]);
/// c.only = vec!["uds".into(), "ring-floor".into()];
/// c.sizes = vec![4];
/// assert!(c.validate().is_err()); // messages carry an 8-byte sequence number
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Transports to run: names (`uds`) or names with a mode (`spsc:spin`); empty runs all.
    pub only: Vec<String>,
    /// Message sizes in bytes, each at least 8 and at most [`Config::MAX_SIZE`], measured in
    /// this order (a size given twice is measured once).
    pub sizes: Vec<usize>,
    /// Measured time of each phase (round trip, throughput) per transport and size, at least
    /// [`Config::MIN_DURATION`].
    pub duration: Duration,
    /// Time run before each phase and not recorded.
    pub warmup: Duration,
    /// Pin the client and the server to two different CPUs when at least two are available.
    pub pin: bool,
    /// Run a placement probe before each transport.
    pub probe: bool,
    /// This is the `--quick` preset (set by [`Config::quick`]; informational: the harness
    /// does not read it, and the report shows the preset only through its durations and
    /// sizes).
    pub quick: bool,
    /// The watchdog's bound for one transport at one size (fork to reaped child); past it the
    /// server is killed and the run fails. `None`: 60 s plus ten times the planned time.
    pub watchdog: Option<Duration>,
}

impl Default for Config {
    /// Sizes 8, 64, 4096 and 65536; 1 s per phase after 200 ms of warm-up; pinned; probed.
    fn default() -> Config {
        Config {
            only: Vec::new(),
            sizes: Config::DEFAULT_SIZES.to_vec(),
            duration: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            pin: true,
            probe: true,
            quick: false,
            watchdog: None,
        }
    }
}

impl Config {
    /// Sizes of a full run.
    pub const DEFAULT_SIZES: [usize; 4] = [8, 64, 4096, 65536];
    /// Sizes of a quick run.
    pub const QUICK_SIZES: [usize; 2] = [8, 64];
    /// Largest message size.
    pub const MAX_SIZE: usize = 1 << 20;
    /// Shortest measured time per phase (the report gives it in whole milliseconds).
    pub const MIN_DURATION: Duration = Duration::from_millis(1);
    /// Length of a placement probe's measured ping-pong.
    pub const PROBE_DURATION: Duration = Duration::from_millis(20);

    /// The `--quick` preset: sizes 8 and 64, 300 ms per phase after 50 ms of warm-up, so each
    /// transport takes about 1.5 s and twelve transports (the six here and the six mapipc
    /// channel modes) stay under 30 s.
    pub fn quick() -> Config {
        Config {
            sizes: Config::QUICK_SIZES.to_vec(),
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            quick: true,
            ..Config::default()
        }
    }

    /// A smoke test of the harness: the given sizes, 20 ms per phase after 5 ms of warm-up,
    /// no probe. The numbers mean little; the checks all run.
    pub fn smoke(sizes: &[usize]) -> Config {
        Config {
            sizes: sizes.to_vec(),
            duration: Duration::from_millis(20),
            warmup: Duration::from_millis(5),
            probe: false,
            ..Config::default()
        }
    }

    /// Checks sizes and durations.
    ///
    /// # Errors
    /// [`BenchError::Config`] naming the problem.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// let mut c = mapipc_bench::Config::quick();
    /// assert!(c.validate().is_ok());
    /// c.duration = Duration::from_micros(500); // would be reported as 0 ms
    /// assert!(c.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.sizes.is_empty() {
            return Err(BenchError::Config("no message sizes".into()));
        }
        if let Some(s) = self
            .sizes
            .iter()
            .find(|&&s| !(MIN_SIZE..=Config::MAX_SIZE).contains(&s))
        {
            return Err(BenchError::Config(format!(
                "message size {s} is outside {MIN_SIZE}..={} bytes (each message carries an \
                 8-byte sequence number)",
                Config::MAX_SIZE
            )));
        }
        // The report gives durations in whole milliseconds (`duration_ms`, the table's
        // header): a shorter phase would be reported as lasting 0 ms.
        if self.duration < Config::MIN_DURATION {
            return Err(BenchError::Config(
                "the duration must be at least 1 ms per phase".into(),
            ));
        }
        if self.duration > Duration::from_secs(3600) || self.warmup > Duration::from_secs(3600) {
            return Err(BenchError::Config(
                "durations above an hour per phase are refused".into(),
            ));
        }
        Ok(())
    }
}

/// What the harness is doing, for a progress display. Events arrive on the thread that
/// called [`run`](crate::run), between measurements.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// The run starts: `total` measurements (transports × sizes).
    Started {
        /// Number of (transport, size) measurements.
        total: usize,
        /// CPUs of the client and the server, when pinned.
        pinned_cpus: Option<[usize; 2]>,
    },
    /// A placement probe finished.
    Probe(PlacementProbe),
    /// A measurement starts.
    Measuring {
        /// Measurements finished so far.
        done: usize,
        /// Total measurements.
        total: usize,
        /// Transport label (`name` or `name (mode)`).
        transport: String,
        /// Message size.
        size: usize,
    },
    /// A measurement finished.
    Measured {
        /// Measurements finished so far, this one included.
        done: usize,
        /// Total measurements.
        total: usize,
        /// Transport label.
        transport: String,
        /// Message size.
        size: usize,
        /// Median round trip, nanoseconds.
        rtt_p50_ns: f64,
        /// Throughput, messages per second.
        throughput_msgs_per_s: f64,
    },
    /// Everything was measured.
    Finished,
}

/// A progress callback driving an `indicatif` bar (draw it on stderr): sets its length,
/// shows the current measurement as its message, and prints probes and results above it.
///
/// # Example
/// ```
/// use indicatif::{ProgressBar, ProgressDrawTarget};
/// let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
/// let progress = mapipc_bench::progress_bar(&bar);
/// progress(mapipc_bench::Progress::Started { total: 4, pinned_cpus: None });
/// assert_eq!(bar.length(), Some(4));
/// ```
pub fn progress_bar(bar: &indicatif::ProgressBar) -> impl Fn(Progress) + '_ {
    move |p| match p {
        Progress::Started { total, pinned_cpus } => {
            bar.set_length(total as u64);
            bar.set_position(0);
            match pinned_cpus {
                Some([a, b]) => bar.println(format!("client on CPU {a}, server on CPU {b}")),
                None => bar.println("not pinned (fewer than 2 CPUs, or pinning disabled)"),
            }
        }
        Progress::Probe(probe) => bar.println(format!(
            "placement probe before {}: spin ping-pong p50 {:.0} ns",
            probe.before, probe.rtt_p50_ns
        )),
        Progress::Measuring {
            transport, size, ..
        } => bar.set_message(format!("{transport} {size} B")),
        Progress::Measured { done, .. } => bar.set_position(done as u64),
        Progress::Finished => bar.finish_and_clear(),
    }
}
