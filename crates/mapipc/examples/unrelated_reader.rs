//! Unrelated processes, the reading side: waits on a named region until a writer's data
//! arrives, prints it, and removes the region. The writing side is `unrelated_writer.rs`.
//!
//! The tutorial's second scenario has two processes map the same file; but the reader has no
//! way to know when the writer has written (mmap IPC by itself is non-blocking). Here the
//! reader:
//!
//! 1. opens the region, or creates it if the writer has not yet
//!    ([`Region::open_or_create`]; exactly one of two racing processes creates it), and
//!    joins its peer table (so `mapipc region info NAME` lists it);
//! 2. blocks in [`Notifier::wait_until`] on the region's notifier word until the
//!    [generation counter](Region::generation) differs from 0, the value of a region nobody
//!    has written yet. A writer bumps the generation *after* writing its data and *then*
//!    notifies, so: if the writer ran first, the reader sees the new generation at once and
//!    does not sleep at all; if the reader runs first, it parks on the futex until the
//!    writer's notify wakes it. (`--next` waits for the next write after the reader starts
//!    instead, ignoring what is already there.)
//! 3. prints the message, then removes the region (unless `--keep`).
//!
//! Usage: `unrelated_reader [NAME|PATH] [--timeout SECS] [--next] [--keep]`. NAME|PATH is a
//! bare name in `/dev/shm` (no `/`) or a path (with a `/`, e.g. `./r` or `/tmp/r`); the
//! default is the fixed name `mapipc-example-unrelated` (`/dev/shm/mapipc-example-unrelated`)
//! so that the two examples find each other without arguments. `--timeout` (default 60 s)
//! bounds the wait: when it passes the reader says so, removes the region (unless `--keep`)
//! and exits with status 1.
//!
//! Run it with (reader first, in two shells):
//!
//! ```text
//! cargo run -p mapipc --example unrelated_reader              # blocks...
//! cargo run -p mapipc --example unrelated_writer -- mapipc-example-unrelated 'hello'
//! ```
//!
//! or (writer first, one shell; each command exits 0 by itself):
//!
//! ```text
//! cargo run -p mapipc --example unrelated_writer
//! cargo run -p mapipc --example unrelated_reader
//! ```
//!
//! One writer at a time: two writers writing at once could mix their bytes. For many
//! messages use `mapipc::channel`; for several writers guard the data with a
//! `mapipc::sync::RobustMutex`.

use std::io::Write;
use std::time::Duration;

use mapipc::region::{Location, Region};
use mapipc::sync::{Notifier, WaitError, WaitOptions};

/// The region both examples use when given no name.
const DEFAULT_NAME: &str = "mapipc-example-unrelated";
// Layout of the user data; the same in unrelated_writer.rs.
/// Bytes of user data.
const DATA_LEN: usize = 4096;
/// The message length (`u32`).
const LEN_AT: u64 = 0;
/// The message bytes.
const MSG_AT: u64 = 8;

/// The command line.
struct Args {
    location: String,
    timeout: Duration,
    next: bool,
    keep: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        location: DEFAULT_NAME.to_string(),
        timeout: Duration::from_secs(60),
        next: false,
        keep: false,
    };
    let mut positional = 0;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs a number of seconds")?;
                args.timeout = v
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or(format!(
                        "--timeout {v}: expected seconds, such as 10 or 0.5"
                    ))?;
            }
            "--next" => args.next = true,
            "--keep" => args.keep = true,
            s if s.starts_with("--") => return Err(format!("unknown option `{s}`")),
            s if positional == 0 => {
                args.location = s.to_string();
                positional += 1;
            }
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "error: {e}\nusage: unrelated_reader [NAME|PATH] [--timeout SECS] [--next] [--keep]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let loc = Location::parse(&args.location)?;
    let region = Region::open_or_create(&loc, DATA_LEN)?;
    let _me = region.join()?;
    let start = region.generation()?;
    println!(
        "reader (pid {}): {} region {loc} (generation {start})",
        std::process::id(),
        if region.was_created() {
            "created"
        } else {
            "opened"
        }
    );
    let baseline = if args.next { start } else { 0 };
    if start == baseline {
        println!("reader: waiting on the region's notifier for a writer; run, for example:");
        println!("    cargo run -p mapipc --example unrelated_writer -- {loc} 'hello'");
    } else {
        println!("reader: a writer has already written (generation {start}): not waiting");
    }
    std::io::stdout().flush()?;

    let notifier = Notifier::new(region.notify_word()?);
    // `generation()` is an Acquire load: once it shows the writer's bump, the bytes the
    // writer wrote before bumping are visible too.
    let waited = notifier.wait_until(
        || region.generation().ok().filter(|&g| g != baseline),
        WaitOptions::new().timeout(args.timeout),
    );
    let result = match waited {
        Ok(generation) => print_message(&region, generation),
        Err(WaitError::TimedOut) => {
            Err(format!("no writer wrote to {loc} within {:?}", args.timeout).into())
        }
        Err(e) => Err(e.into()),
    };
    if args.keep {
        println!("reader: kept {loc} (--keep)");
    } else {
        region.remove()?;
        println!("reader: removed {loc}");
    }
    result
}

/// Prints the message published with generation `generation`.
fn print_message(region: &Region, generation: u64) -> Result<(), Box<dyn std::error::Error>> {
    // The length comes from shared memory, written by another program: check it.
    let len = region.read_pod::<u32>(LEN_AT)? as usize;
    let room = region.len() - MSG_AT as usize;
    if len > room {
        return Err(format!("the region holds an impossible message length {len}").into());
    }
    let message = region.read_vec(MSG_AT, len)?;
    println!(
        "reader: generation {generation}: {:?}",
        String::from_utf8_lossy(&message)
    );
    Ok(())
}
