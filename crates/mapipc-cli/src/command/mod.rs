//! One module per subcommand, each with `pub fn run(args, out) -> anyhow::Result<()>`.
//!
//! Commands write their normal output to `out` (stdout, locked once by `main`) and return
//! errors with enough context to name the file and the cause; `main` prints them.

mod cat;
mod demo;
mod info;
mod write;

use std::fs::FileType;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::cli::Command;

/// Runs one subcommand.
pub fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Cat(args) => cat::run(&args, out),
        Command::Write(args) => write::run(&args, out),
        Command::Info(args) => info::run(&args, out),
        Command::Demo(args) => demo::run(&args, out),
    }
}

/// `a regular file`, `a directory`, ... (the article reads well in messages).
fn describe_file_type(ft: &FileType) -> &'static str {
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// `path` as printed in messages: `` `path` ``.
fn quoted(path: &Path) -> String {
    format!("`{}`", path.display())
}
