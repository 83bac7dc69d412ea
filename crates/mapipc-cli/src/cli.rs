//! The command line, declared with clap's derive API.
//!
//! Adding a subcommand: add a variant with its `Args` struct to [`Command`], a file
//! `command/<name>.rs` with `pub fn run(args, out) -> anyhow::Result<()>`, and one arm in
//! `command::run`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::size;

/// The note on sizes shared by the help texts.
macro_rules! sizes_note {
    () => {
        "Sizes and offsets accept 4096, 4k, 4KiB, 1MiB, 2GiB (every unit is a power of 1024)."
    };
}

const MAIN_AFTER_HELP: &str = "\
Examples:
  mapipc demo                                      the tutorial's two IPC scenarios, narrated
  mapipc write data.bin --offset 0 --create 4KiB 'hello'
  mapipc cat data.bin --len 5                      prints: hello
  mapipc info data.bin
  mapipc bench --quick                             every IPC transport side by side, ~15 s

Errors print one line `error: ...` on stderr; the exit status is 1 for errors, 2 for usage
errors, 0 on success (also when a reader of stdout goes away early, as in `| head`).";

/// Memory-mapped file I/O and shared-memory IPC on Linux.
#[derive(Debug, Parser)]
#[command(
    name = "mapipc",
    version,
    about = "Memory-mapped file I/O and shared-memory IPC on Linux",
    long_about = "Memory-mapped file I/O and shared-memory IPC on Linux.\n\n\
        Every access goes through mapipc's safe mappings: bounds-checked, any offset, and a \
        file truncated by another process is an error, never a crash (SIGBUS).",
    after_help = MAIN_AFTER_HELP
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, one file each under `command/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a file's bytes, read through a memory mapping.
    #[command(after_help = CAT_AFTER_HELP)]
    Cat(CatArgs),
    /// Write bytes into a file through a shared read-write mapping, then flush (msync).
    #[command(
        after_help = WRITE_AFTER_HELP,
        override_usage = "mapipc write <FILE> --offset <N> [--create <SIZE>] (<DATA> | --stdin)"
    )]
    Write(WriteArgs),
    /// Show a file's size, type, owner and mode, and how it would be mapped.
    #[command(after_help = INFO_AFTER_HELP)]
    Info(InfoArgs),
    /// Run the tutorial's two IPC scenarios (fork + anonymous mapping; two processes and a
    /// file) and narrate each step.
    #[command(after_help = DEMO_AFTER_HELP)]
    Demo(DemoArgs),
    /// Create channel files (`mapipc chan create`).
    #[command(subcommand)]
    Chan(ChanCommand),
    /// Send messages into a channel: each argument, or each line of standard input.
    #[command(after_help = SEND_AFTER_HELP)]
    Send(SendArgs),
    /// Receive messages from a channel, one per line.
    #[command(after_help = RECV_AFTER_HELP)]
    Recv(RecvArgs),
    /// Show a channel's counters and the state of its ends.
    #[command(after_help = STAT_AFTER_HELP)]
    Stat(StatArgs),
    /// Measure every IPC transport side by side on this machine: round-trip latency and
    /// throughput of pipes, sockets, raw shared-memory floors and mapipc channels.
    #[command(after_help = BENCH_AFTER_HELP)]
    Bench(BenchArgs),
}

const BENCH_AFTER_HELP: &str = "\
For each transport and message size, a child process is forked and the two are pinned to
different CPUs (when there are two). Round trip: a ping-pong, every round trip timed; its
p50, p99 and p99.9. Throughput: the parent streams messages for the duration and the child
checks each one; messages/s and GB/s. Every message carries a sequence number and a check
word that the receiver verifies: a dropped, duplicated or corrupted message fails the run.

Transports: pipe, uds (Unix socket pair), tcp (loopback, TCP_NODELAY); the raw
shared-memory floors shm-spin-floor (atomic ping-pong, busy spin), futex-floor (futex
ping-pong) and ring-floor (fixed-slot SPSC ring); and the mapipc channels spsc:spin
(busy-poll) and spsc:park (spin, then sleep on a futex). --only takes names (spsc) or
name:mode (spsc:park), comma-separated.

The table (stdout) gives each median round trip as a ratio to the best kernel transport
(p50/kern), shm-spin-floor and futex-floor, and each throughput as a ratio to the best kernel
transport and ring-floor. Before each transport a short spin ping-pong, the placement probe,
is measured and printed: when its value jumps, the processes were moved or a CPU was busy,
and rows measured before and after do not compare. Progress goes to stderr.

--json writes {\"machine\": {...}, \"rows\": [{\"transport\", \"mode\", \"size\", \"metric\",
\"value\"}, ...]} with the metrics rtt_p50_ns, rtt_p99_ns, rtt_p999_ns,
throughput_msgs_per_s and throughput_gb_per_s. --plot writes an SVG chart of the same.

Examples:
  mapipc bench --quick                       sizes 8 and 64, 0.3 s per phase (~15 s)
  mapipc bench --json bench.json --plot bench.svg
  mapipc bench --only uds,spsc --sizes 64,4KiB --duration 2";

/// Arguments of `mapipc bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Sizes 8 and 64, 0.3 s per phase after 50 ms of warm-up (--sizes and --duration
    /// still apply).
    #[arg(long)]
    pub quick: bool,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write an SVG chart of the results to this file.
    #[arg(long, value_name = "PATH.svg")]
    pub plot: Option<PathBuf>,
    /// Run only these transports (names, or name:mode for channels), comma-separated.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', num_args = 1..)]
    pub only: Vec<String>,
    /// Message sizes in bytes, comma-separated, each 8 to 1MiB [default: 8,64,4096,65536].
    #[arg(long, value_name = "SIZE,...", value_delimiter = ',', num_args = 1..,
          value_parser = parse_message_size)]
    pub sizes: Vec<u64>,
    /// Measured time of each phase per transport and size, in seconds (or 500ms, 2s)
    /// [default: 1, with --quick 0.3].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<std::time::Duration>,
}

/// A message size for `bench --sizes`: a size (`64`, `4k`) from 8 bytes (the sequence
/// number every message carries) to 1 MiB.
fn parse_message_size(src: &str) -> Result<u64, String> {
    const MAX: u64 = 1 << 20;
    match size::parse(src)? {
        n if (8..=MAX).contains(&n) => Ok(n),
        n => Err(format!(
            "message size {n} is outside 8..={MAX} bytes (each message carries an 8-byte \
             sequence number; the largest is 1MiB)"
        )),
    }
}

/// A positive duration: seconds (`2`, `0.5`) or with a unit (`500ms`, `2s`), at most an hour.
fn parse_seconds(src: &str) -> Result<std::time::Duration, String> {
    let src = src.trim();
    let d = match src.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 3600.0 => {
            std::time::Duration::from_secs_f64(secs)
        }
        Ok(_) => return Err("expected a number of seconds above 0 and at most 3600".into()),
        Err(_) => humantime::parse_duration(src)
            .map_err(|e| format!("expected seconds (2, 0.5) or a duration (500ms, 2s): {e}"))?,
    };
    if d.is_zero() || d > std::time::Duration::from_secs(3600) {
        return Err("the duration must be above 0 and at most an hour".into());
    }
    Ok(d)
}

/// `mapipc chan ...`
#[derive(Debug, Subcommand)]
pub enum ChanCommand {
    /// Create a channel file.
    #[command(after_help = CHAN_CREATE_AFTER_HELP)]
    Create(ChanCreateArgs),
}

const CHAN_CREATE_AFTER_HELP: &str = concat!(
    "\
Creates PATH (mode 0600) holding an empty single-producer single-consumer channel whose
ring has CAPACITY bytes (rounded up to a power of two, at least 4 KiB). Messages may be 1
byte up to CAPACITY/2 - 8 bytes. A bare NAME without '/' lives in /dev/shm. Fails if PATH
exists, unless --force replaces it.

",
    sizes_note!(),
    "

Examples:
  mapipc chan create /tmp/jobs --capacity 1MiB
  mapipc chan create jobs --capacity 64KiB        (creates /dev/shm/jobs)"
);

/// Arguments of `mapipc chan create`.
#[derive(Debug, Args)]
pub struct ChanCreateArgs {
    /// The channel file, or a bare name in /dev/shm.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Ring size in bytes.
    #[arg(long, value_name = "SIZE", value_parser = size::parse_nonzero)]
    pub capacity: u64,
    /// Replace PATH if it exists.
    #[arg(long)]
    pub force: bool,
}

const SEND_AFTER_HELP: &str = "\
Each MSG argument is one message. Without MSG, each line of standard input is one message
(without its newline); with --binary, standard input is a sequence of frames, each a
4-byte little-endian length followed by that many bytes. Messages are 1 byte to the
channel's maximum (capacity/2 - 8); an empty or too long message is an error.

When the ring is full, send waits for the receiver to make room (a channel that no
receiver has opened yet fills up, then waits). With --nonblock it exits with status 3
instead; with --timeout it waits at most DURATION, then exits with status 3. If the
receiver is gone while the ring is full, send fails (status 1).

Examples:
  mapipc send /tmp/jobs 'first job' 'second job'
  seq 1000 | mapipc send /tmp/jobs
  mapipc send /tmp/jobs --timeout 2s 'give up after two seconds if full'";

/// Arguments of `mapipc send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The channel file, or a bare name in /dev/shm.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Messages to send; none: read standard input.
    #[arg(value_name = "MSG")]
    pub msgs: Vec<OsString>,
    /// Read length-prefixed binary frames from standard input.
    #[arg(long, conflicts_with = "msgs")]
    pub binary: bool,
    /// Never wait: exit with status 3 if the ring is full.
    #[arg(long, conflicts_with = "timeout")]
    pub nonblock: bool,
    /// Wait at most this long for room (e.g. 500ms, 2s, 1m); then exit with status 3.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

const RECV_AFTER_HELP: &str = "\
Prints each message followed by a newline (with --binary: as 4-byte little-endian length
frames, the format `send --binary` reads). Exits 0 after --count messages, and 0 when the
sender is gone and every message it sent was printed. A receiver started before any sender
has opened the channel waits for one.

--timeout DURATION bounds each wait for the next message: when it passes, recv exits with
status 3. --nonblock prints what is there now and exits: 0 if it printed anything (or the
sender is gone), 3 if the channel was empty. --follow keeps waiting for a new sender after
the current one leaves.

Examples:
  mapipc recv /tmp/jobs --count 2
  mapipc recv /tmp/jobs --follow --timeout 30s";

/// Arguments of `mapipc recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// The channel file, or a bare name in /dev/shm.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Exit after this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Longest wait for the next message (e.g. 500ms, 2s); then exit with status 3.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Print what is there now and exit (status 3 if nothing was there).
    #[arg(long, conflicts_with_all = ["timeout", "follow"])]
    pub nonblock: bool,
    /// Keep waiting for a new sender after the current one leaves.
    #[arg(long)]
    pub follow: bool,
    /// Write length-prefixed binary frames instead of lines.
    #[arg(long)]
    pub binary: bool,
}

const STAT_AFTER_HELP: &str = "\
Shows the channel's kind, capacity, bytes in use, messages sent and received, and for each
end whether it is attached, alive, and parked (sleeping on the futex).

Examples:
  mapipc stat /tmp/jobs
  mapipc stat /tmp/jobs --json | jq .sent";

/// Arguments of `mapipc stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// The channel file, or a bare name in /dev/shm.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

const CAT_AFTER_HELP: &str = concat!(
    "\
The file is mapped read-only and copied to stdout in 1 MiB chunks, so huge files stream.
Any offset works, page-aligned or not. An empty file (or an empty range: --len 0, or
--offset equal to the size) prints nothing and succeeds; an offset past the end, or a
--len reaching past it, is an error. If another process truncates the file while it is
being read, cat stops with `error: ... truncated ...` and exit status 1.

",
    sizes_note!(),
    "

Examples:
  mapipc cat data.bin                       the whole file
  mapipc cat data.bin --offset 1000         from byte 1000 (not page-aligned: fine)
  mapipc cat data.bin --offset 4KiB --len 16 | od -c"
);

/// Arguments of `mapipc cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// The file to print.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Start at this byte of the file (any value, page-aligned or not).
    #[arg(long, value_name = "N", default_value = "0", value_parser = size::parse, allow_hyphen_values = true)]
    pub offset: u64,
    /// Print exactly this many bytes (default: up to the end of the file).
    #[arg(long, value_name = "N", value_parser = size::parse, allow_hyphen_values = true)]
    pub len: Option<u64>,
}

const WRITE_AFTER_HELP: &str = concat!(
    "\
The bytes are DATA as given (no escapes, no newline added) or all of standard input with
--stdin. Only the bytes being written are mapped (shared, read-write), at any offset; after
the copy they are flushed to the file with msync(MS_SYNC). Nothing is printed on success.

Without --create the file must exist and the range must fit in it: otherwise this is an
error naming the file, its size and the range, and the file is left unchanged. With
--create SIZE a missing file is created (mode 0600) and a shorter one is extended to SIZE
(blocks allocated with fallocate, so a full disk fails here); a longer file is never shrunk.

Empty DATA (or empty standard input) writes nothing and succeeds after the same checks
(the file exists or --create is given, OFFSET is not past the end); --create still creates
or extends the file.

",
    sizes_note!(),
    "

Examples:
  mapipc write data.bin --offset 0 --create 4KiB 'hello'
  mapipc write data.bin --offset 1000 'unaligned is fine'
  date | mapipc write data.bin --offset 2k --stdin
  mapipc write data.bin --offset 0 -- '-starts with a dash'"
);

/// Arguments of `mapipc write`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["data", "stdin"])))]
pub struct WriteArgs {
    /// The file to write into.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Byte of the file where the data starts (any value, page-aligned or not).
    #[arg(long, value_name = "N", value_parser = size::parse, allow_hyphen_values = true)]
    pub offset: u64,
    /// Create the file (mode 0600) if missing, or extend it to SIZE bytes if shorter.
    #[arg(long, value_name = "SIZE", value_parser = size::parse_nonzero, allow_hyphen_values = true)]
    pub create: Option<u64>,
    /// The bytes to write.
    #[arg(value_name = "DATA")]
    pub data: Option<OsString>,
    /// Read the bytes to write from standard input instead of DATA.
    #[arg(long)]
    pub stdin: bool,
}

const INFO_AFTER_HELP: &str = "\
Reports the file's type, size, owner and mode, the page size, and how the file would be
mapped: how many pages, whether the size is page-aligned and how much of the last page
the file uses. It also says whether the file starts with a mapipc header (none are
defined yet: every file is reported as a plain file). Directories and other non-regular
files are described but cannot be mapped.

Examples:
  mapipc info data.bin
  mapipc info data.bin --json | jq .mapping.pages";

/// Arguments of `mapipc info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The file to describe.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

const DEMO_AFTER_HELP: &str = "\
Scenario 1, related processes: an anonymous shared mapping (MAP_SHARED|MAP_ANONYMOUS) is
made, the process forks, the child writes a message into it and exits, and the parent,
after waitpid, reads the message from its own mapping.

Scenario 2, unrelated processes: a temporary file is created and mapped, a separate
`mapipc write FILE --offset 0 DATA` process is started, and after it exits the first
process reads the data through its mapping. The file is removed at the end.

Example:
  cargo run --release -- demo";

/// Arguments of `mapipc demo` (none yet).
#[derive(Debug, Args)]
pub struct DemoArgs {}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_sizes_and_durations() {
        assert_eq!(parse_message_size("64"), Ok(64));
        assert_eq!(parse_message_size("4k"), Ok(4096));
        assert_eq!(parse_message_size("1MiB"), Ok(1 << 20));
        assert!(parse_message_size("4")
            .unwrap_err()
            .contains("outside 8..="));
        assert!(parse_message_size("2MiB").is_err());
        assert!(parse_message_size("x").is_err());
        assert_eq!(parse_seconds("2"), Ok(std::time::Duration::from_secs(2)));
        assert_eq!(
            parse_seconds("0.5"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            parse_seconds("300ms"),
            Ok(std::time::Duration::from_millis(300))
        );
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("2h").is_err());
    }
}
