//! # mapipc-bench
//!
//! The measurement harness behind `mapipc bench` (issue 6): round-trip latency and one-way
//! throughput of IPC transports between two processes on this machine, side by side.
//!
//! For each transport and message size the harness forks: the parent is the client (sender),
//! the child the server (receiver), each pinned to its own CPU when there are at least two.
//! Two measurements follow, warm-up excluded:
//!
//! - **round trip**: a ping-pong, every round trip timed into an HDR histogram; reported as
//!   `rtt_p50_ns`, `rtt_p99_ns`, `rtt_p999_ns`;
//! - **throughput**: the client streams messages for the duration, the server checks each
//!   and acknowledges the end; reported as `throughput_msgs_per_s` and `throughput_gb_per_s`.
//!
//! Every message carries a sequence number (see [`frame`]); a dropped, duplicated, reordered
//! or corrupted message fails the run with an error naming the transport, the size and the
//! sequence number. A watchdog kills a server that does not finish in time. Before each
//! transport, a short spin ping-pong (the placement probe) shows whether the processes kept
//! their placement; on a VM whose vCPUs move, numbers of different groups are not comparable.
//!
//! With a single CPU (or `pin: false` on a busy machine) the busy-spinning transports can hand
//! over only when the scheduler switches processes, so their figures then mean little.
//!
//! Transports (see [`transport`] to add one): `pipe`, `uds`, `tcp` ([`kernel`]), the raw
//! shared-memory floors `shm-spin-floor`, `futex-floor`, `ring-floor` ([`floors`]), and the
//! mapipc channel kinds `spsc`, `mpsc` and `broadcast` in `spin` and `park` modes
//! ([`channel`]).
//!
//! The scaling of the channel kinds (several producer processes into one MPSC consumer,
//! fan-out to several broadcast subscribers) needs more than two processes and is measured by
//! [`kinds`] (`cargo run --release -p mapipc-bench --example kinds`).
//!
//! # Example
//! ```no_run
//! use mapipc_bench::{run, Config};
//! let report = run(&Config::quick(), &|p| eprintln!("{p:?}"))?;
//! println!("{}", report.table());
//! std::fs::write("bench.json", report.to_json())?;
//! mapipc_bench::write_svg(&report, "bench.svg")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! A small run that really executes (the uds transport, 64-byte messages, 20 ms per phase):
//! ```
//! use mapipc_bench::{run, Config, Metric};
//! let mut config = Config::smoke(&[64]);
//! config.only = vec!["uds".into()];
//! let report = run(&config, &|_| {})?;
//! let p50 = report.value("uds", None, 64, Metric::RttP50Ns).unwrap();
//! assert!(p50 > 0.0);
//! # Ok::<(), mapipc_bench::BenchError>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod channel;
mod config;
mod error;
pub mod floors;
pub mod frame;
pub mod kernel;
pub mod kinds;
mod measure;
mod plot;
mod report;
mod sys;
pub mod transport;

pub use config::{progress_bar, Config, Progress};
pub use error::{BenchError, Phase, Side};
pub use plot::{render_svg, write_svg, PlotError};
pub use report::{
    Machine, Metric, PlacementProbe, Report, Row, FUTEX_FLOOR, KERNEL_TRANSPORTS, RING_FLOOR,
    SPIN_FLOOR,
};
pub use transport::{Class, Endpoint, Pair, Transport};

use measure::{run_pair, Plan};

/// The transports measured by [`run`], in order: kernel transports, floors, then the mapipc
/// channel kinds in `spin` and `park` modes.
///
/// # Example
/// ```
/// let labels: Vec<String> = mapipc_bench::builtin_transports()
///     .iter()
///     .map(|t| mapipc_bench::transport::label(t.as_ref()))
///     .collect();
/// assert_eq!(
///     labels,
///     [
///         "pipe", "uds", "tcp", "shm-spin-floor", "futex-floor", "ring-floor",
///         "spsc (spin)", "spsc (park)", "mpsc (spin)", "mpsc (park)",
///         "broadcast (spin)", "broadcast (park)",
///     ]
/// );
/// ```
pub fn builtin_transports() -> Vec<Box<dyn Transport>> {
    use channel::{BroadcastLink, ChannelTransport, Mode, MpscLink, SpscLink};
    vec![
        Box::new(kernel::Pipe),
        Box::new(kernel::Uds),
        Box::new(kernel::Tcp),
        Box::new(floors::SpinFloorTransport),
        Box::new(floors::FutexFloorTransport),
        Box::new(floors::RingFloorTransport),
        Box::new(ChannelTransport::<SpscLink>::new(Mode::Spin)),
        Box::new(ChannelTransport::<SpscLink>::new(Mode::Park)),
        Box::new(ChannelTransport::<MpscLink>::new(Mode::Spin)),
        Box::new(ChannelTransport::<MpscLink>::new(Mode::Park)),
        Box::new(ChannelTransport::<BroadcastLink>::new(Mode::Spin)),
        Box::new(ChannelTransport::<BroadcastLink>::new(Mode::Park)),
    ]
}

/// Runs the built-in transports selected by `config`, calling `progress` between
/// measurements (on this thread).
///
/// The harness forks its servers and holds each by a pidfd, through which it kills (the
/// watchdog) and reaps (`waitid(P_PIDFD)`) it: a kill can never reach a process that was given
/// a server's pid after something else in this process reaped the server. Needs Linux 5.4. If
/// this process ignores `SIGCHLD` (`SIG_IGN`, perhaps inherited from its parent) or set
/// `SA_NOCLDWAIT`, that is undone first (`SIG_DFL`; a handler is kept), since the kernel would
/// otherwise reap the servers itself.
///
/// # Errors
/// An invalid configuration or unknown transport name; any failed measurement (the first one
/// ends the run). See [`BenchError`].
pub fn run(config: &Config, progress: &dyn Fn(Progress)) -> Result<Report, BenchError> {
    let all = builtin_transports();
    let refs: Vec<&dyn Transport> = all.iter().map(|t| t.as_ref()).collect();
    run_transports(config, &refs, progress)
}

/// Whether an `only` entry (`name`, `name:mode` or `name/mode`) selects `t`.
fn selects(entry: &str, t: &dyn Transport) -> bool {
    match entry.split_once([':', '/']) {
        Some((name, mode)) => t.name() == name && t.mode() == Some(mode),
        None => t.name() == entry,
    }
}

fn select<'a>(
    transports: &[&'a dyn Transport],
    only: &[String],
) -> Result<Vec<&'a dyn Transport>, BenchError> {
    if only.is_empty() {
        return Ok(transports.to_vec());
    }
    if let Some(unknown) = only
        .iter()
        .find(|e| !transports.iter().any(|t| selects(e, *t)))
    {
        // In the syntax `only` accepts: `name`, or `name:mode` for the channel kinds.
        let mut known: Vec<String> = transports
            .iter()
            .map(|t| match t.mode() {
                Some(mode) => format!("{}:{mode}", t.name()),
                None => t.name().to_string(),
            })
            .collect();
        known.dedup();
        return Err(BenchError::UnknownTransport {
            name: unknown.clone(),
            known: known.join(", "),
        });
    }
    Ok(transports
        .iter()
        .copied()
        .filter(|t| only.iter().any(|e| selects(e, *t)))
        .collect())
}

/// Up to `max` CPUs this process may use, ascending, found by trying to pin a scratch thread.
pub(crate) fn usable_cpus(max: usize) -> Vec<usize> {
    let available = mapipc::os::process::available_cpus();
    let want = max.min(available);
    std::thread::spawn(move || {
        let mut found = Vec::new();
        for cpu in 0..1024 {
            if found.len() == want {
                break;
            }
            if mapipc::os::process::pin_to_cpu(cpu) {
                found.push(cpu);
            }
        }
        found
    })
    .join()
    .unwrap_or_default()
}

/// Two CPUs this process may use.
fn pick_cpus() -> Option<[usize; 2]> {
    match usable_cpus(2)[..] {
        [a, b] => Some([a, b]),
        _ => None,
    }
}

/// Runs `transports` (filtered by `config.only`) like [`run`]. This is how tests and
/// out-of-tree transports use the harness.
///
/// # Errors
/// As [`run`].
pub fn run_transports(
    config: &Config,
    transports: &[&dyn Transport],
    progress: &dyn Fn(Progress),
) -> Result<Report, BenchError> {
    config.validate()?;
    let selected = select(transports, &config.only)?;
    // A program started by a parent that ignored SIGCHLD inherits that, and then cannot
    // wait for its servers. Should this fail (it does not for SIGCHLD), the wait reports it.
    let _ = mapipc::os::process::keep_children_waitable();
    let cpus = if config.pin { pick_cpus() } else { None };
    let cpu_pair = cpus.map(|[a, b]| (a, b));
    let mut machine = Machine::detect(cpus, config.duration, config.warmup);
    // A size given twice is measured once (in the order given): two sets of rows for one
    // (transport, size, metric) would leave the table and the chart showing only the first.
    let mut sizes: Vec<usize> = Vec::with_capacity(config.sizes.len());
    for &size in &config.sizes {
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    let total = selected.len() * sizes.len();
    progress(Progress::Started {
        total,
        pinned_cpus: cpus,
    });
    let plan = Plan {
        warmup: config.warmup,
        duration: config.duration,
        round_trip: true,
        throughput: true,
        watchdog: config.watchdog,
    };
    let probe_plan = Plan {
        warmup: Config::PROBE_DURATION / 4,
        duration: Config::PROBE_DURATION,
        round_trip: true,
        throughput: false,
        watchdog: config.watchdog,
    };
    let mut rows = Vec::new();
    let mut done = 0;
    for t in selected {
        let label = transport::label(t);
        if config.probe {
            let m = run_pair(
                &floors::SpinFloorTransport,
                "placement probe",
                8,
                &probe_plan,
                cpu_pair,
            )?;
            let probe = PlacementProbe {
                before: label.clone(),
                rtt_p50_ns: m.latency.map_or(0.0, |l| l.p50),
            };
            machine.placement_probes.push(probe.clone());
            progress(Progress::Probe(probe));
        }
        for &size in &sizes {
            progress(Progress::Measuring {
                done,
                total,
                transport: label.clone(),
                size,
            });
            let m = run_pair(t, &label, size, &plan, cpu_pair)?;
            let mut push = |metric, value: Option<f64>| {
                if let Some(value) = value {
                    rows.push(Row {
                        transport: t.name().to_string(),
                        mode: t.mode().map(str::to_string),
                        size,
                        metric,
                        value,
                    });
                }
            };
            let (lat, tput) = (m.latency, m.throughput);
            push(Metric::RttP50Ns, lat.map(|l| l.p50));
            push(Metric::RttP99Ns, lat.map(|l| l.p99));
            push(Metric::RttP999Ns, lat.map(|l| l.p999));
            push(Metric::ThroughputMsgsPerS, tput.map(|t| t.msgs_per_s));
            push(Metric::ThroughputGbPerS, tput.map(|t| t.gb_per_s));
            done += 1;
            progress(Progress::Measured {
                done,
                total,
                transport: label.clone(),
                size,
                rtt_p50_ns: lat.map_or(0.0, |l| l.p50),
                throughput_msgs_per_s: tput.map_or(0.0, |t| t.msgs_per_s),
            });
        }
    }
    progress(Progress::Finished);
    Ok(Report { machine, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepts_names_and_modes_and_rejects_unknown_names() {
        let all = builtin_transports();
        let refs: Vec<&dyn Transport> = all.iter().map(|t| t.as_ref()).collect();
        let picked = select(&refs, &["ring-floor".into(), "uds".into()]).unwrap();
        let names: Vec<&str> = picked.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["uds", "ring-floor"]); // run order, not argument order
        let picked = select(&refs, &["spsc:spin".into()]).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!((picked[0].name(), picked[0].mode()), ("spsc", Some("spin")));
        assert_eq!(select(&refs, &["spsc".into()]).unwrap().len(), 2);
        for kind in ["mpsc", "broadcast"] {
            let picked = select(&refs, &[kind.into()]).unwrap();
            let modes: Vec<_> = picked.iter().map(|t| (t.name(), t.mode())).collect();
            assert_eq!(modes, [(kind, Some("spin")), (kind, Some("park"))]);
            assert!(picked.iter().all(|t| t.class() == Class::Channel));
        }
        let picked = select(&refs, &["broadcast/park".into()]).unwrap();
        assert_eq!(
            (picked[0].name(), picked[0].mode()),
            ("broadcast", Some("park"))
        );
        let err = select(&refs, &["spsc:fast".into()]).err().unwrap();
        assert!(err.to_string().contains("unknown transport \"spsc:fast\""));
        assert!(err.to_string().contains("ring-floor"));
        assert!(err.to_string().contains("spsc:spin, spsc:park"), "{err}");
        assert!(select(&refs, &["uds:spin".into()]).is_err());
    }
}
