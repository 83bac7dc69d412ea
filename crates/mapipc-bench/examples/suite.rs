//! Runs the IPC benchmark suite programmatically, as `mapipc bench` does.
//!
//! ```text
//! cargo run --release -p mapipc-bench --example suite -- [--quick] [--sizes 8,64,4096,65536]
//!     [--duration-ms 1000] [--only uds,ring-floor] [--json out.json] [--plot out.svg]
//! ```
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mapipc_bench::{progress_bar, run, write_svg, Config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    let (mut json, mut plot) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => {
                let only = std::mem::take(&mut config.only);
                config = Config {
                    only,
                    ..Config::quick()
                };
            }
            "--sizes" => {
                config.sizes = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--duration-ms" => config.duration = Duration::from_millis(value()?.parse()?),
            "--only" => config.only = value()?.split(',').map(String::from).collect(),
            "--json" => json = Some(value()?),
            "--plot" => plot = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")?);
    let report = run(&config, &progress_bar(&bar))?;

    print!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(&path, report.to_json())?;
    }
    if let Some(path) = plot {
        write_svg(&report, &path)?;
    }
    Ok(())
}
