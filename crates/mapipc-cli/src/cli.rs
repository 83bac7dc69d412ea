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
}
