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
        "Sizes and offsets accept 4096, 4k, 4KiB, 1MiB, 2GiB, 1.5KiB (every unit is a power of \
         1024; a fraction needs a unit and is rounded to the nearest byte)."
    };
}

const MAIN_AFTER_HELP: &str = "\
Examples:
  mapipc demo                                      the tutorial's IPC scenarios, narrated
  mapipc write data.bin --offset 0 --create 4KiB 'hello'
  mapipc cat data.bin --len 5                      prints: hello
  mapipc info data.bin
  mapipc region create frames --size 64KiB         a shared region, /dev/shm/frames
  mapipc region read frames --len 5 --wait &       blocks until a region write notifies
  mapipc region write frames --offset 0 'hello'
  mapipc bench --quick                             every IPC transport side by side, ~17 s

Errors print one line `error: ...` on stderr; the exit status is 1 for errors, 2 for usage
errors, 3 when a wait timed out (recv, send, region read --wait, queue tail --follow) or
--nonblock found nothing to do (recv --count N: fewer than N messages), 0 on success (also
when a reader of stdout goes away early, as in `| head`). Names and paths are printed with
control characters escaped (a newline as \\n, ESC as \\u{1b}), so a name cannot forge an
output line; --json gives them exactly (every control character, DEL and C1 included, as a
JSON \\u escape).";

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
    /// Run the tutorial's IPC scenarios (a forked child; two unrelated processes) with shared
    /// regions and notifiers, then a channel, and narrate each step.
    #[command(after_help = DEMO_AFTER_HELP)]
    Demo(DemoArgs),
    /// Shared regions: create, inspect, remove, write (and notify), read (and wait).
    #[command(subcommand)]
    Region(RegionCommand),
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
    /// A durable message queue in a directory: append, tail, stat, verify, retain,
    /// remove-damaged.
    #[command(subcommand, after_help = QUEUE_AFTER_HELP)]
    Queue(QueueCommand),
    /// Measure every IPC transport side by side on this machine: round-trip latency and
    /// throughput of pipes, sockets, raw shared-memory floors and mapipc channels.
    #[command(after_help = BENCH_AFTER_HELP)]
    Bench(BenchArgs),
}

/// `mapipc region ...`
#[derive(Debug, Subcommand)]
pub enum RegionCommand {
    /// Create a named region (fails if NAME|PATH exists).
    #[command(after_help = REGION_CREATE_AFTER_HELP)]
    Create(RegionCreateArgs),
    /// Show a region's header, its notifier and its peers (pid, alive, joined).
    #[command(after_help = REGION_INFO_AFTER_HELP)]
    Info(RegionInfoArgs),
    /// Remove (unlink) a region; processes that have it mapped keep working.
    #[command(after_help = REGION_RM_AFTER_HELP)]
    Rm(RegionRmArgs),
    /// Write bytes into a region's user data, bump its generation, and wake its waiters.
    #[command(
        after_help = REGION_WRITE_AFTER_HELP,
        override_usage = "mapipc region write <NAME|PATH> --offset <N> (<DATA> | --stdin)"
    )]
    Write(RegionWriteArgs),
    /// Print bytes of a region's user data; with --wait, first wait for the next write.
    #[command(after_help = REGION_READ_AFTER_HELP)]
    Read(RegionReadArgs),
}

/// The note on region names shared by the `region` help texts.
macro_rules! region_name_note {
    () => {
        "NAME|PATH: a bare NAME without '/' is the file /dev/shm/NAME (names may not contain
'..'); anything with a '/' is a path (./frames, /tmp/frames)."
    };
}

const REGION_CREATE_AFTER_HELP: &str = concat!(
    "\
Creates a region file (mode 0600) with SIZE bytes of user data after a 4 KiB header that
holds the format version, sizes, creation time and creator pid, a generation counter, a
notifier word and a table of 32 peer slots. The file is allocated with fallocate, so a full
/dev/shm fails now rather than later. Fails if anything exists at NAME|PATH.

",
    region_name_note!(),
    "
",
    sizes_note!(),
    "

Examples:
  mapipc region create frames --size 64KiB        (creates /dev/shm/frames)
  mapipc region create ./frames --size 4096       (a file in the current directory)"
);

/// Arguments of `mapipc region create`.
#[derive(Debug, Args)]
pub struct RegionCreateArgs {
    /// The region: a bare name in /dev/shm, or a path (with a '/').
    #[arg(value_name = "NAME|PATH")]
    pub name: String,
    /// Bytes of user data (0 is allowed: a region used only to notify).
    #[arg(long, value_name = "SIZE", value_parser = size::parse)]
    pub size: u64,
}

const REGION_INFO_AFTER_HELP: &str = concat!(
    "\
Validates the header (a file that is not a region, or a damaged one, is an error) and
shows its fields, the notifier (epoch: advanced by each notify, modulo 2^22; waiters
parked now, or about to park: one killed while parked, or left over by a waiter that
registered again, counts until the next notify that finds nobody parked clears it), and
every peer slot in use: peer id, pid, whether it is alive (the kernel holds a lock for
each live peer and drops it when the process dies, even by SIGKILL), and when it joined.

",
    region_name_note!(),
    "

Examples:
  mapipc region info frames
  mapipc region info ./frames --json | jq .generation"
);

/// Arguments of `mapipc region info`.
#[derive(Debug, Args)]
pub struct RegionInfoArgs {
    /// The region: a bare name in /dev/shm, or a path (with a '/').
    #[arg(value_name = "NAME|PATH")]
    pub name: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

const REGION_RM_AFTER_HELP: &str = concat!(
    "\
Removes the file after checking that it is a valid region, so that a mistyped path to some
other file is refused; --force removes whatever file is there (for example a region whose
creator died before finishing it), except a directory. Symbolic links are never followed
nor removed.

",
    region_name_note!(),
    "

Examples:
  mapipc region rm frames
  mapipc region rm ./half-made --force"
);

/// Arguments of `mapipc region rm`.
#[derive(Debug, Args)]
pub struct RegionRmArgs {
    /// The region: a bare name in /dev/shm, or a path (with a '/').
    #[arg(value_name = "NAME|PATH")]
    pub name: String,
    /// Remove the file even if it is not a valid region.
    #[arg(long)]
    pub force: bool,
}

const REGION_WRITE_AFTER_HELP: &str = concat!(
    "\
Copies DATA (as given, no newline added) or all of standard input with --stdin into the
region's user data at byte N, then increments the region's generation counter (which
publishes the bytes) and notifies the region's notifier, waking every `mapipc region read
--wait` and other waiter parked on it. Nothing is printed on success. The range must fit
in the user data; otherwise nothing is written. Regions holding a channel are refused
(use `mapipc send`).

",
    region_name_note!(),
    "
",
    sizes_note!(),
    "

Examples:
  mapipc region write frames --offset 0 'hello'
  date | mapipc region write frames --offset 1k --stdin"
);

/// Arguments of `mapipc region write`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["data", "stdin"])))]
pub struct RegionWriteArgs {
    /// The region: a bare name in /dev/shm, or a path (with a '/').
    #[arg(value_name = "NAME|PATH")]
    pub name: String,
    /// Byte of the user data where the bytes go.
    #[arg(long, value_name = "N", value_parser = size::parse, allow_hyphen_values = true)]
    pub offset: u64,
    /// The bytes to write.
    #[arg(value_name = "DATA")]
    pub data: Option<OsString>,
    /// Read the bytes to write from standard input instead of DATA.
    #[arg(long)]
    pub stdin: bool,
}

const REGION_READ_AFTER_HELP: &str = concat!(
    "\
Prints --len bytes (default: up to the end) of the region's user data from byte --offset,
raw, as they are. With --wait it first blocks (spinning briefly, then asleep on a futex, no
polling) until a writer bumps the region's generation and notifies, as `mapipc region write`
does, then prints the bytes. It waits for the next write after it starts: a write that
happened before is not waited for. With --timeout it waits at most DURATION, then exits
with status 3. While waiting it is listed as a peer by `mapipc region info`; it stops
with an error if the file is truncated, or removed or replaced while no other live peer has
it (no writer could reach it any more).

",
    region_name_note!(),
    "
",
    sizes_note!(),
    "

Examples:
  mapipc region read frames --len 5
  mapipc region read frames --offset 0 --len 5 --wait --timeout 10s"
);

/// Arguments of `mapipc region read`.
#[derive(Debug, Args)]
pub struct RegionReadArgs {
    /// The region: a bare name in /dev/shm, or a path (with a '/').
    #[arg(value_name = "NAME|PATH")]
    pub name: String,
    /// Byte of the user data to start at.
    #[arg(long, value_name = "N", default_value = "0", value_parser = size::parse, allow_hyphen_values = true)]
    pub offset: u64,
    /// Print exactly this many bytes (default: up to the end of the user data).
    #[arg(long, value_name = "N", value_parser = size::parse, allow_hyphen_values = true)]
    pub len: Option<u64>,
    /// Wait for the next write (a generation change and a notify) before reading.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: wait at most this long (e.g. 500ms, 2s, 1m); then exit with status 3.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "wait")]
    pub timeout: Option<std::time::Duration>,
}

const BENCH_AFTER_HELP: &str = "\
For each transport and message size, a child process is forked and the two are pinned to
different CPUs (when there are two). Round trip: a ping-pong, every round trip timed; its
p50, p99 and p99.9. Throughput: the parent streams messages for the duration and the child
checks each one; messages/s and GB/s. Every message carries a sequence number in its first
8 bytes and, from 16 bytes up, a check word in its last 8; the receiver verifies both: a
dropped, duplicated or corrupted message fails the run.

Transports: pipe, uds (Unix socket pair), tcp (loopback, TCP_NODELAY); the raw
shared-memory floors shm-spin-floor (atomic ping-pong, busy spin), futex-floor (futex
ping-pong) and ring-floor (fixed-slot SPSC ring); and the mapipc channel kinds spsc, mpsc
(one producer attached) and broadcast (lossless, one subscriber), each in mode spin
(busy-poll) and park (spin, then sleep on a futex). --only takes names (spsc) or name:mode
(spsc:park), comma-separated.

The table (stdout) gives each median round trip as a ratio to the best kernel transport
(p50/kern), shm-spin-floor and futex-floor, and each throughput as a ratio to the best kernel
transport and ring-floor. Before each transport a short spin ping-pong, the placement probe,
is measured and printed: when its value jumps, the processes were moved or a CPU was busy,
and rows measured before and after do not compare. Progress goes to stderr.

--json writes {\"machine\": {...}, \"rows\": [{\"transport\", \"mode\", \"size\", \"metric\",
\"value\"}, ...]} with the metrics rtt_p50_ns, rtt_p99_ns, rtt_p999_ns,
throughput_msgs_per_s and throughput_gb_per_s. --plot writes an SVG chart of the same, to
another file (one file for both is refused). Both are checked before measuring starts:
each must be a regular file or not exist yet (a FIFO, a device or a directory is refused
with an error, never waited on), and an existing file keeps its contents until the run ends.

Examples:
  mapipc bench --quick                       sizes 8 and 64, 0.3 s per phase (~17 s)
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
    /// Message sizes in bytes, comma-separated, each 8 to 1MiB [default: 8,64,4096,65536;
    /// with --quick 8,64].
    #[arg(long, value_name = "SIZE,...", value_delimiter = ',', num_args = 1..,
          value_parser = parse_message_size)]
    pub sizes: Vec<u64>,
    /// Measured time of each phase per transport and size, in seconds (or 500ms, 2s), 1ms
    /// to 1h [default: 1, with --quick 0.3].
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

/// A duration from 1ms to an hour: seconds (`2`, `0.5`) or with a unit (`500ms`, `2s`).
fn parse_seconds(src: &str) -> Result<std::time::Duration, String> {
    let src = src.trim();
    let d = match src.parse::<f64>() {
        Ok(secs) if (0.001..=3600.0).contains(&secs) => {
            // Rounded to the nanosecond, so 0.001 is exactly 1ms.
            std::time::Duration::from_nanos((secs * 1e9).round() as u64)
        }
        Ok(_) => return Err("expected a number of seconds from 0.001 to 3600".into()),
        Err(_) => humantime::parse_duration(src)
            .map_err(|e| format!("expected seconds (2, 0.5) or a duration (500ms, 2s): {e}"))?,
    };
    // The report gives the duration in whole milliseconds.
    if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(3600) {
        return Err("the duration must be at least 1ms and at most an hour".into());
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
Creates PATH (mode 0600) holding an empty channel whose ring has CAPACITY bytes (rounded up
to a power of two, at least 4 KiB). Kinds: spsc (default: one producer, one consumer; the
fastest), mpsc (up to --max-producers producers at once, one consumer; order is FIFO per
producer; a producer killed mid-message never blocks the channel), broadcast (one producer,
up to --max-subscribers subscribers that each receive every message; --policy lossless
makes the producer wait for the slowest live subscriber, lossy never waits and tells a
lapped subscriber how many messages it missed). Messages may be 1 byte up to about
CAPACITY/2 bytes (`mapipc stat` shows the exact maximum). A bare NAME without '/' lives in
/dev/shm. Fails if PATH exists, unless --force replaces it (once the new channel is made:
if it cannot be, PATH is left as it was).

",
    sizes_note!(),
    "

Examples:
  mapipc chan create /tmp/jobs --capacity 1MiB
  mapipc chan create jobs --capacity 64KiB        (creates /dev/shm/jobs)
  mapipc chan create /tmp/logs --kind mpsc --max-producers 8 --capacity 1MiB
  mapipc chan create /tmp/ticks --kind broadcast --policy lossy --capacity 1MiB"
);

/// Arguments of `mapipc chan create`.
#[derive(Debug, Args)]
pub struct ChanCreateArgs {
    /// The channel file, or a bare name in /dev/shm.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Ring size in bytes, rounded up to a power of two; the largest message is half of it
    /// less 8 bytes (spsc) or 16 (mpsc, broadcast; mpsc at most 64 MiB): `mapipc stat`
    /// shows it. Small rings (a few KiB) give the lowest round trip, large ones absorb
    /// bursts.
    #[arg(long, value_name = "SIZE", value_parser = size::parse_nonzero)]
    pub capacity: u64,
    /// Replace PATH if it exists.
    #[arg(long)]
    pub force: bool,
    /// Channel kind: spsc (one producer, one consumer), mpsc (many producers, one
    /// consumer) or broadcast (one producer, many subscribers).
    #[arg(long, value_name = "KIND", default_value = "spsc")]
    pub kind: mapipc::channel::Kind,
    /// Broadcast only: lossless (the producer waits for the slowest subscriber) or lossy (it
    /// never waits; lapped subscribers are told how many messages they missed)
    /// [default: lossless].
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<mapipc::channel::Policy>,
    /// MPSC only: most producers attached at once, 1 to 192 [default: 64].
    #[arg(long, value_name = "N")]
    pub max_producers: Option<u32>,
    /// Broadcast only: most subscribers attached at once, 1 to 192 [default: 32].
    #[arg(long, value_name = "N")]
    pub max_subscribers: Option<u32>,
}

const SEND_AFTER_HELP: &str = "\
Each MSG argument is one message. Without MSG, each line of standard input is one message
(without its newline); with --binary, standard input is a sequence of frames, each a
4-byte little-endian length followed by that many bytes. Messages are 1 byte to the
channel's maximum (`mapipc stat` shows it); an empty or too long message is an error.

When the ring is full, send waits for the receiver to make room (a channel that no
receiver has opened yet fills up, then waits). If the receiver leaves while the ring is
full, send waits for the next one to attach (a receiver may reopen the channel and go on
where the last one stopped); while no receiver is attached, a channel file removed or
replaced ends that wait with an error (no receiver can reach it). A broadcast sender does
not wait for subscribers that are not there: without any, the oldest messages make room;
with --policy lossy it never waits. With --nonblock it exits with status 3 instead of
waiting; with --timeout it waits at most DURATION per message, then exits with status 3.
An empty or too long message stops send with an error naming it (`argument 2`, `line 3
of standard input`); the messages before it were sent. A line longer than the largest
message is read no further than that (plus one byte).

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
sender is gone and every message it sent was printed (at once, if a sender came and went
before recv started: --follow waits for the next). A receiver started before any sender
has opened the channel waits for one (while no sender is attached, a channel file removed
or replaced ends the wait with an error). spsc and mpsc channels take one receiver at a time
(another recv fails with status 1). A message is consumed only once it was written out: if
writing fails, it stays in the channel for the next receiver. When standard output is a pipe
whose reader goes away (`| head -1`), recv exits 0, also while it waits for a message.

--timeout DURATION bounds each wait for the next message: when it passes, recv exits with
status 3 (also with --count N and fewer than N printed). --nonblock prints what is there
now and exits: 0 if it printed anything (or the sender is gone), 3 if the channel was
empty; with --count N, 3 if it was empty before N were printed, unless the sender is gone
and everything it sent was printed (0). --follow keeps waiting for a new sender after
the current one leaves, until the channel file is removed or replaced (an error: a new
sender would open another file). On an mpsc channel, recv exits 0 once every sender is gone.

On a broadcast channel recv subscribes (from the oldest retained message, or with
--from newest only new ones) and unsubscribes on exit, so several recv processes each get
every message. A lossy channel may lap a slow subscriber: recv then prints
`warning: missed N messages` on stderr and goes on. A lossless subscriber that a peer took
for dead while it was alive is dropped, and the producer stops keeping messages for it:
recv then exits with status 1 and an error naming the channel (run it again to subscribe
anew; messages sent meanwhile may be lost to it).

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
    /// Print what is there now and exit (status 3 if nothing was there, or, with --count N,
    /// fewer than N while a sender may still come).
    #[arg(long, conflicts_with_all = ["timeout", "follow"])]
    pub nonblock: bool,
    /// Keep waiting for a new sender after the current one leaves.
    #[arg(long)]
    pub follow: bool,
    /// Write length-prefixed binary frames instead of lines.
    #[arg(long)]
    pub binary: bool,
    /// Broadcast only: start at the oldest retained message or after the newest one (spsc
    /// and mpsc receivers continue from the last consumed message; `newest` is refused).
    #[arg(long, value_name = "WHERE", default_value = "oldest", value_parser = ["oldest", "newest"])]
    pub from: String,
}

const STAT_AFTER_HELP: &str = "\
Shows the channel's kind, capacity, bytes in use, messages sent and received (broadcast:
each subscriber's position and how far behind it is), and for each end whether it is
attached, alive, and parked (sleeping on the futex).

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
the file uses. It also says whether the file is a mapipc region (then its validated header
fields are listed, and a channel's counters if it holds one), one of a queue's files or the
queue directory itself (with the queue's record count), or a plain file. Directories and
other non-regular files are described but cannot be mapped. A mapipc file whose header
fails validation is described as far as it can be read, then info prints one `error:` line
and exits with status 1.

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
Scenario 1, related processes: an anonymous region is made before fork; the child joins
its peer table, writes a message, bumps the generation and notifies; the parent, asleep on
the region's notifier (not in waitpid), wakes up, reads the message while the child is
still alive, and only then lets it exit and reaps it. Had the child died first, the
parent's wait would have ended with `peer gone` instead of hanging.

Scenario 2, unrelated processes: a named region is created in a temporary directory; this
process blocks on its notifier while a separate `mapipc region write` process (this same
executable) writes a message and notifies; then it reads the message.

Scenario 3, a channel: a separate `mapipc send` process sends three messages through a
channel file that this process receives, in order, as they come.

Everything is removed at the end, also on an error, Ctrl-C, SIGTERM or SIGHUP. A demo
killed by SIGKILL cannot remove its temporary directory ($TMPDIR/mapipc-demo-*): the next
demo does. A running demo holds a lock on the file owner.lock in its directory, which the
kernel releases when it dies; a directory whose lock is free, which belongs to you and
holds nothing but a demo's files (region, channel, owner.lock), is removed and said so.
Anything else is left alone.

Example:
  cargo run --release -- demo";

/// Arguments of `mapipc demo` (none).
#[derive(Debug, Args)]
pub struct DemoArgs {}

const QUEUE_AFTER_HELP: &str = "\
A queue is a directory of fixed-size, preallocated segment files holding records (each with
a sequence number from 0 and a CRC32C), written by one appender at a time and read by any
number of tailers, which can be named to keep their position. It survives a crash of the
appending process with every committed record; --sync decides what survives a machine crash.

Examples:
  mapipc queue append /tmp/q 'first' 'second'
  seq 1000 | mapipc queue append /tmp/q --sync always
  mapipc queue tail /tmp/q --from 0 --count 2
  mapipc queue tail /tmp/q --name worker --follow
  mapipc queue stat /tmp/q
  mapipc queue verify /tmp/q
  mapipc queue retain /tmp/q --max-segments 10
  mapipc queue remove-damaged /tmp/q";

/// The `mapipc queue` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Append records: each MSG, or each line of standard input.
    #[command(after_help = QUEUE_APPEND_AFTER_HELP)]
    Append(QueueAppendArgs),
    /// Print records, one per line, from a position; optionally wait for more.
    #[command(after_help = QUEUE_TAIL_AFTER_HELP)]
    Tail(QueueTailArgs),
    /// Describe a queue: layout, segments, sequence numbers, appender, named tailers.
    #[command(after_help = QUEUE_STAT_AFTER_HELP)]
    Stat(QueueStatArgs),
    /// Check every record of every segment; list each damaged one.
    #[command(after_help = QUEUE_VERIFY_AFTER_HELP)]
    Verify(QueueVerifyArgs),
    /// Delete old segments beyond a count, an age or a total size.
    #[command(after_help = QUEUE_RETAIN_AFTER_HELP)]
    Retain(QueueRetainArgs),
    /// Delete the segments crash recovery set aside (NNN.seg.damaged-TIME).
    #[command(after_help = QUEUE_REMOVE_DAMAGED_AFTER_HELP)]
    RemoveDamaged(QueueRemoveDamagedArgs),
}

const QUEUE_APPEND_AFTER_HELP: &str = concat!(
    "\
Each MSG becomes one record (its bytes as given, no newline). Without MSG, each line of
standard input becomes one record, without its newline (a last line without a newline
counts too); the bytes need not be UTF-8. Nothing is printed on success.

The queue directory is created if missing, with segments of --segment-size (default
64MiB, a multiple of 4KiB from 64KiB to 1GiB); an existing queue keeps its size, and a
different --segment-size is an error. Only one appender may run at a time: another one is
an error, unless --wait is given.

--sync says when records are written back to disk: `none` leaves it to the kernel,
`batch` (the default) syncs every 1000 records, every 10 ms of appending, and at the end,
`always` syncs every record before the next one. Whatever the choice, appended records
survive a crash of this process.

",
    sizes_note!(),
    "

Examples:
  mapipc queue append /tmp/q 'hello' 'world'
  journalctl -f | mapipc queue append /var/tmp/logq --sync none
  mapipc queue append /tmp/q --segment-size 1MiB --sync always 'durable'"
);

/// When `mapipc queue append` writes records back to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncArg {
    /// Leave write-back to the kernel.
    None,
    /// Group commit: every 1000 records, every 10 ms, and at the end.
    Batch,
    /// Every record.
    Always,
}

/// Arguments of `mapipc queue append`.
#[derive(Debug, Args)]
pub struct QueueAppendArgs {
    /// The queue directory (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The records to append (default: each line of standard input).
    #[arg(value_name = "MSG")]
    pub messages: Vec<OsString>,
    /// When to write records back to disk.
    #[arg(long, value_enum, default_value = "batch")]
    pub sync: SyncArg,
    /// Segment size of a new queue.
    #[arg(long, value_name = "SIZE", value_parser = size::parse_nonzero)]
    pub segment_size: Option<u64>,
    /// Wait for another appender to finish instead of failing.
    #[arg(long)]
    pub wait: bool,
}

const QUEUE_TAIL_AFTER_HELP: &str = "\
Prints each record's bytes followed by a newline (with --seq, prefixed by its sequence
number and a tab). Without --follow, it stops after the last record and exits 0; with
--follow it waits for new records (parked on a futex; polling every millisecond only on a
queue whose metadata file it may not write; an error if the queue is removed or replaced,
or its segment truncated, meanwhile) until --count records were printed or
--timeout passes: a limit on the whole run, counted from the start, not on each wait
(exit status 3, one `error:` line, even after records were printed).

--from is `start` (the oldest record, the default), `end` (only records appended from
now on) or a sequence number, at most the next one to be appended (`queue stat`) and not
deleted by retention. A named tailer (--name) keeps its position in the queue
directory: the next run with the same name starts after the last record this one
printed (and flushed to stdout); --from moves it. One process per name at a time.
Creating or moving a named tailer waits while a `queue retain` run holds the queue's
position lock, at most --lock-timeout (default 10s: a stopped or hung `retain`), then
exits with status 3 and one `error:` line naming `queue.meta`.

A damaged record stops tail with an error naming its sequence number, segment and offset;
`mapipc queue verify` lists them all, and --from can start after one.

Examples:
  mapipc queue tail /tmp/q                          everything, then exit
  mapipc queue tail /tmp/q --from end --follow      new records as they come
  mapipc queue tail /tmp/q --from 42 --count 1      just record 42
  mapipc queue tail /tmp/q --name mailer --follow --timeout 30s";

/// Where `mapipc queue tail` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromArg {
    /// The oldest record.
    Start,
    /// After the last record.
    End,
    /// A sequence number.
    Seq(u64),
}

fn parse_from(src: &str) -> Result<FromArg, String> {
    match src {
        "start" => Ok(FromArg::Start),
        "end" => Ok(FromArg::End),
        n => n
            .parse()
            .map(FromArg::Seq)
            .map_err(|_| "expected `start`, `end` or a sequence number such as 42".to_string()),
    }
}

fn parse_duration(src: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(src.trim())
        .map_err(|e| format!("{e} (expected a duration such as 500ms, 10s, 2m or 1h)"))
}

/// Arguments of `mapipc queue tail`.
#[derive(Debug, Args)]
pub struct QueueTailArgs {
    /// The queue directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to start: start, end or a sequence number.
    #[arg(long, value_name = "start|end|SEQ", value_parser = parse_from)]
    pub from: Option<FromArg>,
    /// Keep this tailer's position in the queue directory and resume from it.
    #[arg(long, value_name = "TAILER")]
    pub name: Option<String>,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Wait for new records instead of stopping at the last one.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: give up this long after starting (exit status 3).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "follow")]
    pub timeout: Option<std::time::Duration>,
    /// Prefix each record with its sequence number and a tab.
    #[arg(long)]
    pub seq: bool,
    /// With --name: wait at most this long for a `queue retain` run to release the
    /// queue's position lock before moving or creating the tailer (default 10s; exit
    /// status 3).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "name")]
    pub lock_timeout: Option<std::time::Duration>,
}

const QUEUE_STAT_AFTER_HELP: &str = "\
Reads the metadata, the segment headers and the end of the last segment (not every
record: see `mapipc queue verify`). Reports the segment size, the number of records and
their sequence numbers, the segments, whether an appender is running, each named
tailer's position and lag, and the segments crash recovery set aside (`set aside:`, see
`mapipc queue remove-damaged`).

Examples:
  mapipc queue stat /tmp/q
  mapipc queue stat /tmp/q --json | jq .next_seq";

/// Arguments of `mapipc queue stat`.
#[derive(Debug, Args)]
pub struct QueueStatArgs {
    /// The queue directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

const QUEUE_VERIFY_AFTER_HELP: &str = "\
Reads every record of every segment and checks its header, CRC32C and sequence number,
the continuity of the segments and the sparse indexes. Each damaged record is printed on
one line with its sequence number, segment, offset and cause (`CRC mismatch`, `corrupt
header: ...`); the scan goes on after it. The exit status is 0 when nothing is damaged,
1 otherwise (with one `error:` line counting the problems).

An unfinished record at the very end (an append in progress, or a crash that the next
appender's recovery will cut) is printed as a note and is not an error.

Examples:
  mapipc queue verify /tmp/q
  mapipc queue verify /tmp/q || echo damaged";

/// Arguments of `mapipc queue verify`.
#[derive(Debug, Args)]
pub struct QueueVerifyArgs {
    /// The queue directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

const QUEUE_RETAIN_AFTER_HELP: &str = concat!(
    "\
Deletes whole segments, oldest first, while the queue has more than --max-segments, or
segments sealed longer ago than --max-age, or more than --max-bytes of segment files.
The segment being appended to always stays, and so does every segment holding records a
named tailer has not read yet, unless --force is given. Prints each deleted file, the
segments kept for a named tailer, and how many segments are left. --max-segments 0 keeps
one: the segment being appended to.

Retention runs take turns, and a run waits for named tailers in the middle of a seek: at
most --lock-timeout in all (default 10s), then it exits with status 3 and one `error:`
line naming `queue.meta` (another `retain`, or a tailer, stopped or hung), having deleted
nothing.

",
    sizes_note!(),
    " Durations accept 90s, 10m, 12h, 7days.

Examples:
  mapipc queue retain /tmp/q --max-segments 10
  mapipc queue retain /tmp/q --max-age 7days --max-bytes 10GiB
  mapipc queue retain /tmp/q --max-segments 10 --lock-timeout 1m"
);

/// Arguments of `mapipc queue retain`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("bound").required(true).multiple(true).args(["max_segments", "max_age", "max_bytes"])))]
pub struct QueueRetainArgs {
    /// The queue directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Keep at most N segments.
    #[arg(long, value_name = "N")]
    pub max_segments: Option<u64>,
    /// Delete segments sealed longer ago than this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<std::time::Duration>,
    /// Keep at most this many bytes of segment files.
    #[arg(long, value_name = "SIZE", value_parser = size::parse)]
    pub max_bytes: Option<u64>,
    /// Also delete segments that named tailers have not finished reading.
    #[arg(long)]
    pub force: bool,
    /// Wait at most this long, in all, for another retention run and for named tailers
    /// in the middle of a seek to release the queue's locks (default 10s; exit status 3).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
}

const QUEUE_REMOVE_DAMAGED_AFTER_HELP: &str = "\
After a machine crash, the next appender's recovery sets aside a last segment whose start
it cannot tie to the log and that holds records, as NNN.seg.damaged-TIME. The queue never
reads such a file and never deletes it: `mapipc queue stat` lists them (`set aside:`).
This deletes them, once their records are salvaged or not wanted, and prints each one;
no other file is touched, and a DIR that is not a queue is an error.

It takes the queue's retention lock, as `mapipc queue retain` does, and waits for a
retention run holding it at most --lock-timeout (default 10s), then exits with status 3
and one `error:` line naming `queue.meta` and how long it waited, having deleted nothing.

Examples:
  mapipc queue stat /tmp/q
  mapipc queue remove-damaged /tmp/q
  mapipc queue remove-damaged /tmp/q --lock-timeout 1m";

/// Arguments of `mapipc queue remove-damaged`.
#[derive(Debug, Args)]
pub struct QueueRemoveDamagedArgs {
    /// The queue directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Wait at most this long for a `queue retain` run to release the queue's retention
    /// lock (default 10s; exit status 3).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
}

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
        // The report gives the duration in whole milliseconds: 1ms is the least.
        assert_eq!(
            parse_seconds("0.001"),
            Ok(std::time::Duration::from_millis(1))
        );
        assert!(parse_seconds("0.0009").is_err());
        assert!(parse_seconds("999us").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("2h").is_err());
    }
}
