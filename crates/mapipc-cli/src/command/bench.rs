//! `mapipc bench`: every IPC transport measured side by side on this machine, through the
//! `mapipc-bench` harness (issue 6). This file only turns the arguments into a
//! [`mapipc_bench::Config`], shows progress on stderr and writes the outputs.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mapipc_bench::{progress_bar, BenchError, Config, Progress};

use super::{describe_file_type, json_escape_c1, quoted, Exit};
use crate::cli::BenchArgs;

/// Runs `mapipc bench`.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<()> {
    let mut config = if args.quick {
        Config::quick()
    } else {
        Config::default()
    };
    config.only = args
        .only
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    // `--only ''` (an unset shell variable) names nothing, which is no reason to run
    // everything: the harness reports the empty name as unknown, listing the known ones.
    if !args.only.is_empty() && config.only.is_empty() {
        config.only.push(String::new());
    }
    if !args.sizes.is_empty() {
        config.sizes = args.sizes.iter().map(|&s| s as usize).collect();
    }
    if let Some(d) = args.duration {
        config.duration = d;
    }

    // An output that cannot be written fails now, not after minutes of measuring; and one
    // file for both would end up holding only the chart. The files are compared while both
    // exist, so that a link to where the other will be (a dangling symlink) is caught too.
    let mut created = Vec::new();
    let checked = check_outputs(args, &mut created);
    for path in created {
        let _ = std::fs::remove_file(path);
    }
    checked?;

    let interactive = std::io::stderr().is_terminal();
    let bar = if interactive {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {msg} [{elapsed}]")
                .context("progress bar template")?,
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let draw = progress_bar(&bar);
    // Without a terminal the bar draws nothing (nor its printed lines): say what happens,
    // one line per event, so logs show the placement probes and where a run stopped.
    let progress = |p: Progress| {
        if !interactive {
            log(&p);
        }
        draw(p);
    };
    let report = mapipc_bench::run(&config, &progress).map_err(|e| match e {
        // What the user asked for is wrong: say so (a usage error, status 2, as for a bad
        // `--sizes`), not that a benchmark failed.
        e @ (BenchError::UnknownTransport { .. } | BenchError::Config(_)) => Exit {
            code: 2,
            message: e.to_string(),
        }
        .into(),
        e => anyhow::Error::new(e).context("benchmark failed"),
    })?;

    // The files are written even when standard output fails (a full disk behind `>`, a
    // reader that went away, as `| less` quit during the run): the measurements took
    // minutes, and the table is only one copy of them. Its error is reported afterwards.
    let table = write!(out, "{}", report.table());
    if let Some(path) = &args.json {
        write_file(path, report_json(&report).as_bytes())?;
    }
    if let Some(path) = &args.plot {
        let svg = mapipc_bench::render_svg(&report, &path.display().to_string())?;
        write_file(path, svg.as_bytes())?;
    }
    table?;
    for path in [&args.json, &args.plot].into_iter().flatten() {
        writeln!(out, "wrote {}", quoted(path))?;
    }
    Ok(())
}

/// What `--json` writes: the report as [`mapipc_bench::Report::to_json`] pretty-prints it,
/// with DEL and the C1 controls escaped as everywhere else in the CLI's JSON (a host name or
/// a CPU model is whatever the machine says).
fn report_json(report: &mapipc_bench::Report) -> String {
    json_escape_c1(report.to_json())
}

/// One stderr line per event, for runs without a terminal.
fn log(p: &Progress) {
    let line = match p {
        Progress::Started {
            total,
            pinned_cpus: Some([a, b]),
        } => format!("{total} measurements; client on CPU {a}, server on CPU {b}"),
        Progress::Started { total, .. } => {
            format!("{total} measurements; not pinned (fewer than 2 CPUs)")
        }
        Progress::Probe(probe) => format!(
            "placement probe before {}: spin ping-pong p50 {:.0} ns",
            probe.before, probe.rtt_p50_ns
        ),
        Progress::Measuring {
            done,
            total,
            transport,
            size,
        } => format!("[{}/{total}] {transport}, {size} B", done + 1),
        _ => return,
    };
    // A closed stderr is no reason to stop measuring.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Opens an output file for writing, creating it if needed, without truncating it and
/// without blocking: a FIFO, a device, a directory or any other file that is not a regular
/// one is refused (a FIFO would block the run until a reader opened it, and a device or a
/// socket is not where results are kept). The check is made on the open file, so a file
/// replaced after an earlier check is caught too; `O_NONBLOCK` makes opening a FIFO fail
/// or return at once rather than wait for a reader.
fn open_output(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = || format!("cannot write {}", quoted(path));
    // Said before opening when it can be: opening a FIFO without a reader fails with ENXIO
    // ("No such device or address"), which would not say what is wrong.
    if let Ok(meta) = std::fs::metadata(path) {
        refuse_non_regular(path, &meta)?;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(cannot)?;
    refuse_non_regular(path, &file.metadata().with_context(cannot)?)?;
    Ok(file)
}

fn refuse_non_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        bail!(
            "cannot write {}: it is {}, and --json and --plot write only regular files",
            quoted(path),
            describe_file_type(&meta.file_type())
        );
    }
    Ok(())
}

/// Replaces the contents of the output file `path` with `bytes` (see [`open_output`]).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = open_output(path)?;
    file.set_len(0)
        .and_then(|()| file.write_all(bytes))
        .with_context(|| format!("cannot write {}", quoted(path)))
}

/// Whether `a` and `b` name one file: the same path once their directories are resolved
/// (`out.json`, `./out.json`, `dir/../out.json`), or the same existing file (links).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let resolved = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(dir).ok()?.join(p.file_name()?))
    };
    if a == b {
        return true;
    }
    if let (Some(ra), Some(rb)) = (resolved(a), resolved(b)) {
        if ra == rb {
            return true;
        }
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) => ma.dev() == mb.dev() && ma.ino() == mb.ino(),
        _ => false,
    }
}

/// Checks that the `--json` and `--plot` files can be written, are regular files (or do
/// not exist yet) and are not one file. Each is opened for writing without truncating (an existing file keeps its contents until the run
/// ends), or created: the files it created are pushed on `created` (resolved: through a
/// symlink, the target), for the caller to remove.
fn check_outputs(args: &BenchArgs, created: &mut Vec<PathBuf>) -> Result<()> {
    let same = |json: &Path, plot: &Path| -> Result<()> {
        if same_file(json, plot) {
            return Err(Exit {
                code: 2,
                message: format!(
                    "--json and --plot name the same file {}: the chart would overwrite the JSON",
                    quoted(plot)
                ),
            }
            .into());
        }
        Ok(())
    };
    // By name first: a usage error, whatever the file system says.
    if let (Some(json), Some(plot)) = (&args.json, &args.plot) {
        same(json, plot)?;
    }
    for path in [&args.json, &args.plot].into_iter().flatten() {
        // A dangling symlink's target does not exist yet: the target is created, and removed
        // again (not the link).
        let existed = std::fs::metadata(path).is_ok();
        open_output(path)?;
        if !existed {
            created.push(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
        }
    }
    // Now that both exist, links to one file are one file.
    if let (Some(json), Some(plot)) = (&args.json, &args.plot) {
        same(json, plot)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mapipc_bench::{Machine, Metric, Report, Row};

    #[test]
    fn json_file_escapes_del_and_c1_controls() {
        let mut machine =
            Machine::detect(None, std::time::Duration::ZERO, std::time::Duration::ZERO);
        // A host name and a CPU model are whatever the machine says.
        machine.hostname = Some("host\x7fname\u{9b}2J".into());
        machine.cpu_model = "cpu\u{85}".into();
        let report = Report {
            machine,
            rows: vec![Row {
                transport: "uds".into(),
                mode: None,
                size: 64,
                metric: Metric::RttP50Ns,
                value: 9000.0,
            }],
        };
        let json = report_json(&report);
        assert!(
            json.contains(r#""hostname": "host\u007fname\u009b2J""#),
            "{json}"
        );
        assert!(json.contains(r#""cpu_model": "cpu\u0085""#), "{json}");
        // Still pretty-printed (its newlines are JSON whitespace), and nothing else is a
        // control character.
        assert!(json.contains("\n  \"rows\": ["), "{json}");
        assert!(
            !json.chars().any(|c| c.is_control() && c != '\n'),
            "{json:?}"
        );
        assert_eq!(Report::from_json(&json).unwrap(), report);
    }
}
