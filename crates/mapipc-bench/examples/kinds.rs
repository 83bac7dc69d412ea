//! How the channel kinds scale with processes (issue 5): MPSC with 1, 2 and 4 producer
//! processes, broadcast to 1, 2 and 4 subscriber processes (lossless and lossy), next to SPSC,
//! in one run. See `mapipc_bench::kinds` for the method. A failed scenario (a message lost,
//! repeated or corrupted, a channel error) is printed in the table and makes the example exit
//! with an error after the others ran.
//!
//! ```text
//! cargo run --release -p mapipc-bench --example kinds -- [--quick] [--modes park,spin]
//!     [--duration-ms 1000] [--warmup-ms 200] [--size 64] [--no-pin] [--json out.json]
//! ```
use std::time::Duration;

use mapipc_bench::channel::Mode;
use mapipc_bench::kinds::{run_kinds, KindsConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = KindsConfig {
        keep_going: true,
        ..KindsConfig::default()
    };
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => {
                let quick = KindsConfig::quick();
                (config.duration, config.warmup, config.modes) =
                    (quick.duration, quick.warmup, quick.modes);
            }
            "--modes" => {
                config.modes = value()?
                    .split(',')
                    .map(|m| match m {
                        "spin" => Ok(Mode::Spin),
                        "park" => Ok(Mode::Park),
                        other => Err(format!("unknown mode {other} (spin, park)")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--duration-ms" => config.duration = Duration::from_millis(value()?.parse()?),
            "--warmup-ms" => config.warmup = Duration::from_millis(value()?.parse()?),
            "--size" => config.size = value()?.parse()?,
            "--no-pin" => config.pin = false,
            "--json" => json = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let report = run_kinds(&config, &|done, total, label| {
        if !label.is_empty() {
            eprintln!("[{}/{total}] {label}", done + 1);
        }
    })?;
    print!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(&path, report.to_json())?;
    }
    if !report.failures.is_empty() {
        return Err(format!(
            "{} scenario(s) failed (see the table)",
            report.failures.len()
        )
        .into());
    }
    Ok(())
}
