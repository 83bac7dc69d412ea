//! The result of a run: the machine, one row per (transport, mode, size, metric), JSON and a
//! text table.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// The names of the kernel transports; the best of them is the "kernel" reference.
pub const KERNEL_TRANSPORTS: [&str; 3] = ["pipe", "uds", "tcp"];
/// The spin round-trip floor.
pub const SPIN_FLOOR: &str = "shm-spin-floor";
/// The futex round-trip floor.
pub const FUTEX_FLOOR: &str = "futex-floor";
/// The ring throughput floor.
pub const RING_FLOOR: &str = "ring-floor";

/// Placement probes further apart than this factor trigger a warning in the table.
const PROBE_SPREAD: f64 = 1.5;

/// What a row measures. Serialized as the exact names of issue 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Metric {
    /// Median round trip, nanoseconds.
    #[serde(rename = "rtt_p50_ns")]
    RttP50Ns,
    /// 99th percentile round trip, nanoseconds.
    #[serde(rename = "rtt_p99_ns")]
    RttP99Ns,
    /// 99.9th percentile round trip, nanoseconds.
    #[serde(rename = "rtt_p999_ns")]
    RttP999Ns,
    /// One-way throughput, messages per second.
    #[serde(rename = "throughput_msgs_per_s")]
    ThroughputMsgsPerS,
    /// One-way throughput, 10^9 bytes of messages per second.
    #[serde(rename = "throughput_gb_per_s")]
    ThroughputGbPerS,
}

impl Metric {
    /// All five, in table order.
    pub const ALL: [Metric; 5] = [
        Metric::RttP50Ns,
        Metric::RttP99Ns,
        Metric::RttP999Ns,
        Metric::ThroughputMsgsPerS,
        Metric::ThroughputGbPerS,
    ];

    /// The JSON name, e.g. `rtt_p50_ns`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::RttP50Ns => "rtt_p50_ns",
            Metric::RttP99Ns => "rtt_p99_ns",
            Metric::RttP999Ns => "rtt_p999_ns",
            Metric::ThroughputMsgsPerS => "throughput_msgs_per_s",
            Metric::ThroughputGbPerS => "throughput_gb_per_s",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `pipe`, `uds`, `tcp`, `shm-spin-floor`, `futex-floor`, `ring-floor`, `spsc`, `mpsc`,
    /// `broadcast`.
    pub transport: String,
    /// `"spin"` or `"park"` for channel kinds, `null` otherwise.
    pub mode: Option<String>,
    /// Message size in bytes.
    pub size: usize,
    /// What was measured.
    pub metric: Metric,
    /// The value, in the metric's unit.
    pub value: f64,
}

/// A short ping-pong measured before a transport's group of measurements: when it moves
/// between groups, the scheduler or hypervisor moved the processes, and numbers of different
/// groups are not comparable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementProbe {
    /// The transport measured right after the probe.
    pub before: String,
    /// Median round trip of a busy-spin ping-pong of 8-byte messages, nanoseconds.
    pub rtt_p50_ns: f64,
}

/// The machine and the conditions of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Host name, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Start of the run, RFC 3339, UTC.
    pub date: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// Version of the harness (and mapipc).
    pub mapipc_version: String,
    /// The CPUs the client and the server were pinned to, `null` when unpinned.
    pub pinned_cpus: Option<[usize; 2]>,
    /// Measured time per phase, milliseconds (warm-up excluded).
    pub duration_ms: u64,
    /// Warm-up per phase, milliseconds.
    pub warmup_ms: u64,
    /// Cost of one `Instant::now()`, nanoseconds; each round-trip sample includes one.
    pub clock_ns: f64,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started: other work on the machine
    /// shows in the numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<[f64; 3]>,
    /// Placement probes, one before each transport.
    pub placement_probes: Vec<PlacementProbe>,
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

fn clock_ns() -> f64 {
    const N: u32 = 10_000;
    let t = Instant::now();
    let mut last = t;
    for _ in 0..N {
        last = std::hint::black_box(Instant::now());
    }
    (last - t).as_nanos() as f64 / f64::from(N)
}

impl Machine {
    /// Describes this machine now.
    ///
    /// # Example
    /// ```
    /// let m = mapipc_bench::Machine::detect(None, std::time::Duration::from_secs(1), std::time::Duration::ZERO);
    /// assert!(m.cores >= 1);
    /// assert!(!m.kernel.is_empty());
    /// ```
    pub fn detect(
        pinned_cpus: Option<[usize; 2]>,
        duration: Duration,
        warmup: Duration,
    ) -> Machine {
        Machine {
            cpu_model: cpu_model(),
            cores: mapipc::os::process::available_cpus(),
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            arch: std::env::consts::ARCH.to_string(),
            mapipc_version: env!("CARGO_PKG_VERSION").to_string(),
            pinned_cpus,
            duration_ms: duration.as_millis() as u64,
            warmup_ms: warmup.as_millis() as u64,
            clock_ns: clock_ns(),
            load_average: load_average(),
            placement_probes: Vec::new(),
        }
    }
}

/// Everything a run measured.
///
/// # Example
/// ```
/// use mapipc_bench::{Machine, Metric, Report, Row};
/// let mut report = Report {
///     machine: Machine::detect(None, std::time::Duration::from_secs(1), std::time::Duration::ZERO),
///     rows: vec![],
/// };
/// report.rows.push(Row { transport: "uds".into(), mode: None, size: 64, metric: Metric::RttP50Ns, value: 9000.0 });
/// let json = report.to_json();
/// assert!(json.contains(r#""metric": "rtt_p50_ns""#));
/// assert_eq!(Report::from_json(&json)?, report);
/// assert_eq!(report.value("uds", None, 64, Metric::RttP50Ns), Some(9000.0));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Where and how it ran.
    pub machine: Machine,
    /// One row per transport, mode, size and metric.
    pub rows: Vec<Row>,
}

/// A (transport, mode) pair in run order.
type Key = (String, Option<String>);

impl Report {
    /// `{"machine": {...}, "rows": [...]}`, pretty-printed.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and finite numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses what [`to_json`](Self::to_json) wrote.
    ///
    /// # Errors
    /// Malformed JSON or missing fields.
    pub fn from_json(s: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// The value of one metric, if measured.
    pub fn value(
        &self,
        transport: &str,
        mode: Option<&str>,
        size: usize,
        metric: Metric,
    ) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| {
                r.transport == transport
                    && r.mode.as_deref() == mode
                    && r.size == size
                    && r.metric == metric
            })
            .map(|r| r.value)
    }

    /// Transports (with modes) in the order they were run.
    pub fn transports(&self) -> Vec<(String, Option<String>)> {
        let mut seen: Vec<Key> = Vec::new();
        for r in &self.rows {
            let k = (r.transport.clone(), r.mode.clone());
            if !seen.contains(&k) {
                seen.push(k);
            }
        }
        seen
    }

    /// Message sizes, ascending.
    pub fn sizes(&self) -> Vec<usize> {
        self.rows
            .iter()
            .map(|r| r.size)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn best_kernel(&self, size: usize, metric: Metric, lower_is_better: bool) -> Option<f64> {
        KERNEL_TRANSPORTS
            .iter()
            .filter_map(|t| self.value(t, None, size, metric))
            .reduce(|a, b| if (a < b) == lower_is_better { a } else { b })
    }

    /// A text table, one block per size: percentiles, throughput, and ratios of the median
    /// round trip to the best kernel transport (lowest of pipe/uds/tcp), `shm-spin-floor` and
    /// `futex-floor`, and of msgs/s to the best kernel transport (highest) and `ring-floor`.
    /// A `-` marks a reference that was not measured.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "{} ({} CPUs), Linux {}, {}; pinned: {}; {} ms per phase after {} ms warm-up",
            m.cpu_model,
            m.cores,
            m.kernel,
            m.date,
            match m.pinned_cpus {
                Some([a, b]) => format!("client on CPU {a}, server on CPU {b}"),
                None => "no".into(),
            },
            m.duration_ms,
            m.warmup_ms,
        );
        if let Some([a, b, c]) = m.load_average {
            let _ = writeln!(out, "load average at start: {a:.2} {b:.2} {c:.2}");
        }
        if !m.placement_probes.is_empty() {
            let probes: Vec<String> = m
                .placement_probes
                .iter()
                .map(|p| format!("{} {}", p.before, fmt_ns(p.rtt_p50_ns)))
                .collect();
            let _ = writeln!(
                out,
                "placement probe (spin ping-pong p50, ns) before: {}",
                probes.join(", ")
            );
            let values = m.placement_probes.iter().map(|p| p.rtt_p50_ns);
            let lo = values.clone().fold(f64::INFINITY, f64::min);
            let hi = values.fold(0.0, f64::max);
            if hi > lo * PROBE_SPREAD {
                let _ = writeln!(
                    out,
                    "warning: the probes differ by more than {PROBE_SPREAD}x ({} to {} ns): the \
                     processes were moved between CPUs or a CPU was busy, so only rows measured \
                     after similar probes compare",
                    fmt_ns(lo),
                    fmt_ns(hi)
                );
            }
        }
        let header = [
            "transport",
            "mode",
            "p50",
            "p99",
            "p99.9",
            "msgs/s",
            "GB/s",
            "p50/kern",
            "p50/spin",
            "p50/futex",
            "tput/kern",
            "tput/ring",
        ];
        for size in self.sizes() {
            let _ = writeln!(out, "\n{size} B messages");
            let kern_rtt = self.best_kernel(size, Metric::RttP50Ns, true);
            let kern_tput = self.best_kernel(size, Metric::ThroughputMsgsPerS, false);
            let spin = self.value(SPIN_FLOOR, None, size, Metric::RttP50Ns);
            let futex = self.value(FUTEX_FLOOR, None, size, Metric::RttP50Ns);
            let ring = self.value(RING_FLOOR, None, size, Metric::ThroughputMsgsPerS);
            let mut lines: Vec<[String; 12]> = vec![header.map(String::from)];
            for (t, mode) in self.transports() {
                let v = |metric| self.value(&t, mode.as_deref(), size, metric);
                if Metric::ALL.iter().all(|&mt| v(mt).is_none()) {
                    continue;
                }
                let p50 = v(Metric::RttP50Ns);
                let tput = v(Metric::ThroughputMsgsPerS);
                lines.push([
                    t.clone(),
                    mode.clone().unwrap_or_else(|| "-".into()),
                    opt(p50, fmt_ns),
                    opt(v(Metric::RttP99Ns), fmt_ns),
                    opt(v(Metric::RttP999Ns), fmt_ns),
                    opt(tput, fmt_count),
                    opt(v(Metric::ThroughputGbPerS), |g| format!("{g:.2}")),
                    ratio(p50, kern_rtt),
                    ratio(p50, spin),
                    ratio(p50, futex),
                    ratio(tput, kern_tput),
                    ratio(tput, ring),
                ]);
            }
            let widths: Vec<usize> = (0..12)
                .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
                .collect();
            for l in &lines {
                let mut s = String::new();
                for (c, cell) in l.iter().enumerate() {
                    if c < 2 {
                        let _ = write!(s, "{cell:<w$}  ", w = widths[c]);
                    } else {
                        let _ = write!(s, "{cell:>w$}  ", w = widths[c]);
                    }
                }
                let _ = writeln!(out, "{}", s.trim_end());
            }
        }
        let _ = writeln!(
            out,
            "\nround trips in ns (one clock read of ~{:.0} ns included); ratios: value / reference \
             (p50: lower is better; tput = msgs/s: higher is better)",
            m.clock_ns
        );
        out
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

fn ratio(v: Option<f64>, reference: Option<f64>) -> String {
    match (v, reference) {
        (Some(v), Some(r)) if r > 0.0 => format!("{:.2}x", v / r),
        _ => "-".into(),
    }
}

/// Rounded nanoseconds with thousands separators: `12,345`.
fn fmt_ns(ns: f64) -> String {
    let n = ns.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `12.3M`, `850k`, `999`.
pub(crate) fn fmt_count(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(fmt_ns(1234567.4), "1,234,567");
        assert_eq!(fmt_ns(999.0), "999");
        assert_eq!(fmt_count(15_300_000.0), "15.30M");
        assert_eq!(fmt_count(850_000.0), "850.0k");
        assert_eq!(ratio(Some(2.0), Some(4.0)), "0.50x");
        assert_eq!(ratio(Some(2.0), None), "-");
    }

    fn report(probes: &[f64]) -> Report {
        let mut machine = Machine::detect(None, Duration::from_secs(1), Duration::ZERO);
        machine.placement_probes = probes
            .iter()
            .map(|&rtt_p50_ns| PlacementProbe {
                before: "uds".into(),
                rtt_p50_ns,
            })
            .collect();
        let mut rows = Vec::new();
        for (t, p50, tput) in [
            ("uds", 20_000.0, 3e5),
            ("pipe", 30_000.0, 6e5),
            (SPIN_FLOOR, 200.0, 3e6),
        ] {
            rows.push(Row {
                transport: t.into(),
                mode: None,
                size: 64,
                metric: Metric::RttP50Ns,
                value: p50,
            });
            rows.push(Row {
                transport: t.into(),
                mode: None,
                size: 64,
                metric: Metric::ThroughputMsgsPerS,
                value: tput,
            });
        }
        Report { machine, rows }
    }

    #[test]
    fn table_ratios_use_the_best_kernel_transport_and_the_floors() {
        let table = report(&[]).table();
        let spin_line = table.lines().find(|l| l.starts_with(SPIN_FLOOR)).unwrap();
        // p50 200 / best kernel 20,000 = 0.01x; 200 / itself = 1.00x; no futex floor: -;
        // 3M msgs/s / best kernel 600k = 5.00x; no ring floor: -.
        let cells: Vec<&str> = spin_line.split_whitespace().collect();
        assert_eq!(
            &cells[cells.len() - 5..],
            ["0.01x", "1.00x", "-", "5.00x", "-"]
        );
        let pipe_line = table.lines().find(|l| l.starts_with("pipe")).unwrap();
        assert!(pipe_line.contains("1.50x"), "{pipe_line}"); // 30,000 / 20,000
    }

    #[test]
    fn table_warns_when_placement_probes_disagree() {
        assert!(!report(&[130.0, 150.0]).table().contains("warning"));
        let t = report(&[130.0, 400.0]).table();
        assert!(t.contains("warning: the probes differ"), "{t}");
    }
}
