//! One module per subcommand, each with `pub fn run(args, out) -> anyhow::Result<()>`.
//!
//! Commands write their normal output to `out` (stdout, locked once by `main`) and return
//! errors with enough context to name the file and the cause; `main` prints them.

mod bench;
mod cat;
mod chan;
mod demo;
mod info;
mod queue;
mod region;
mod write;

use std::fs::FileType;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use anyhow::Context;
use mapipc::region::Location;

use crate::cli::Command;

/// Runs one subcommand.
pub fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Cat(args) => cat::run(&args, out),
        Command::Write(args) => write::run(&args, out),
        Command::Info(args) => info::run(&args, out),
        Command::Demo(args) => demo::run(&args, out),
        Command::Region(command) => {
            use crate::cli::RegionCommand as R;
            match command {
                R::Create(args) => region::create(&args, out),
                R::Info(args) => region::info(&args, out),
                R::Rm(args) => region::rm(&args, out),
                R::Write(args) => region::write(&args, out),
                R::Read(args) => region::read(&args, out),
            }
        }
        Command::Chan(crate::cli::ChanCommand::Create(args)) => chan::create(&args, out),
        Command::Send(args) => chan::send(&args, out),
        Command::Recv(args) => chan::recv(&args, out),
        Command::Stat(args) => chan::stat(&args, out),
        Command::Queue(cmd) => queue::run(cmd, out),
        Command::Bench(args) => bench::run(&args, out),
    }
}

/// Parses a channel or region argument: a path (with a `/`) or a bare name in `/dev/shm`.
/// `what` is "channel" or "region".
fn location(s: &str, what: &str) -> anyhow::Result<Location> {
    Location::parse(s).with_context(|| {
        format!(
            "bad {what} name `{}` (a NAME without '/' is a file in /dev/shm)",
            escaped(s)
        )
    })
}

/// As [`location`], for commands that open an existing channel or region: fails when
/// nothing is there. A bare NAME is `/dev/shm/NAME`; when nothing is there but the current
/// directory has a `NAME`, the user almost certainly meant that file: say how to name it
/// rather than only "does not exist".
fn existing(s: &str, what: &str) -> anyhow::Result<Location> {
    let loc = location(s, what)?;
    if let Location::Shm(_) = &loc {
        let shm = loc.path();
        if std::fs::symlink_metadata(&shm).is_err() && std::fs::symlink_metadata(s).is_ok() {
            let s = escaped(s);
            anyhow::bail!(
                "{what} {} does not exist (a NAME without '/' is a file in /dev/shm); for \
                 the file `{s}` in this directory, write `./{s}`",
                quoted(&shm)
            );
        }
    }
    // Said here in the command's own words (the library, which opens every kind as a
    // region, would say "region").
    let path = loc.path();
    if std::fs::symlink_metadata(&path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        anyhow::bail!("{what} {} does not exist", quoted(&path));
    }
    Ok(loc)
}

/// Fails when the directory `path` would be created in is missing or not a directory,
/// naming it: the OS's ENOENT or ENOTDIR would read as if `what` itself (say "channel
/// `/x/c`") were missing.
fn check_parent_dir(path: &Path, what: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            let why = if parent.exists() {
                "is not a directory"
            } else {
                "does not exist"
            };
            anyhow::bail!(
                "cannot create {what}: its directory {} {why}",
                quoted(parent)
            );
        }
    }
    Ok(())
}

/// Reads one line of standard input (or any input) into `buf`, without its `\n`, reading
/// at most `max + 1` bytes: `None` at the end of the input, `Some(false)` when the line is
/// longer than `max` (cut there; the rest stays unread). Input that cannot be used is never
/// buffered, however large (`mapipc send < /dev/zero`).
fn read_line_at_most(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let limit = max as u64 + 1;
    let got = input.by_ref().take(limit).read_until(b'\n', buf)?;
    if got == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(true));
    }
    Ok(Some((got as u64) < limit))
}

/// Reads the whole input if it has at most `max` bytes; `None` (having read `max + 1`) if it
/// has more.
fn read_all_at_most(input: impl Read, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    input.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= max).then_some(buf))
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

/// Fails with `BrokenPipe` (which `main` treats as a normal end, exit 0) when standard
/// output is a pipe whose reader has gone away: a waiting `recv` or `queue tail --follow`
/// would otherwise notice only when the next message comes, maybe never
/// (`mapipc recv jobs --follow | head -1`). A pipe's writing end polls as `POLLERR` once
/// it has no reader; other outputs never do.
fn stdout_reader_present() -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags};
    let stdout = io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    // An output that cannot be polled is left to the next write to judge.
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if poll(&mut fds, Some(&zero)).is_ok() && fds[0].revents().contains(PollFlags::ERR) {
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the reader of standard output went away",
        ));
    }
    Ok(())
}

/// Whether standard output was closed when mapipc started (`mapipc recv c >&-`): the Rust
/// runtime then opens `/dev/null` on descriptor 1, read-write, and whatever is written there
/// is gone. A shell's `>/dev/null` opens it write-only, and is an explicit choice to discard,
/// which stays allowed (as does the rare `1<>/dev/null`, which this takes for a closed
/// output). Commands that consume what they print (`recv`) refuse to run then: the messages
/// would be taken from the channel and lost.
fn stdout_was_closed() -> bool {
    use rustix::fs::{fcntl_getfl, fstat, major, minor, FileType, OFlags};
    let stdout = io::stdout();
    let Ok(st) = fstat(&stdout) else {
        return false;
    };
    let null = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
        && (major(st.st_rdev), minor(st.st_rdev)) == (1, 3);
    null && fcntl_getfl(&stdout).is_ok_and(|f| f & OFlags::RWMODE == OFlags::RDWR)
}

/// Whether a regular file that reports 0 bytes is generated on read (as the files of
/// `/proc` are): its file system cannot map it, where an empty file maps (see
/// [`mapipc::os::mem::probe_map`]; nothing is read, so nothing is consumed from a file
/// such as `/proc/kmsg`). A file that cannot be opened counts as no: it is then treated
/// as empty, and whatever uses it reports the failure.
fn has_contents(path: &std::path::Path) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        // Replaced by a FIFO since it was checked: do not wait for a writer.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .is_ok_and(|f| {
            mapipc::os::mem::probe_map(f.as_fd()).is_err_and(|e| mapipc::os::mem::not_mappable(&e))
        })
}

/// `path` as printed in messages: `` `path` ``, [`escaped`].
fn quoted(path: &Path) -> String {
    format!("`{}`", escaped(&path.to_string_lossy()))
}

/// A name, path or location as printed in human output (success lines, tables, errors):
/// [`escaped`].
fn shown(name: impl std::fmt::Display) -> String {
    escaped(&name.to_string()).into_owned()
}

/// `text` (a name or path from the command line or from a file, or a message quoting one)
/// as printed in human output: control characters and other unprintable ones are escaped
/// as Rust's `escape_debug` writes them (`\n`, `\r`, `\t`, `\u{1b}`), so that a hostile
/// name (`mapipc region create $'a\nremoved region b'`) can neither forge an output line nor
/// send the terminal an escape sequence. Everything else is left as it is, quotes and
/// backslashes included: escaping twice changes nothing, so `main` escapes every error line
/// whole (library messages quote names too) without doubling what a command escaped.
/// (A name holding a backslash followed by `n` therefore reads like one holding a newline;
/// `--json`, where there is one, tells them apart.) Invalid UTF-8 in a path is shown as
/// U+FFFD, as `Path::display` does.
pub(crate) fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.escape_debug();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        // Every backslash `escape_debug` writes starts an escape: `\\`, `\'` and `\"`
        // stand for the character itself, which is kept as it is.
        match chars.next() {
            Some(q @ ('\\' | '\'' | '"')) => out.push(q),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    if out == text {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(out)
    }
}

/// `text` as a JSON string literal, quotes included. Besides what JSON requires escaped
/// (`"`, `\\` and C0 controls), DEL and the C1 controls (U+007F..=U+009F, every `char`
/// for which [`char::is_control`] holds) are written as `\u007f`..`\u009f`: valid JSON
/// that decodes to the same string, and a hostile file or channel name cannot send the
/// terminal a control sequence (C1 has a one-character CSI, U+009B) through `--json`.
pub(crate) fn json_str(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => push_json_escape(&mut s, c),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Appends `\uXXXX` for `c`, a control character (all of them are in the BMP).
fn push_json_escape(s: &mut String, c: char) {
    use std::fmt::Write as _;
    let _ = write!(s, "\\u{:04x}", u32::from(c));
}

/// `value` as compact JSON text, as its `Display` writes it but with DEL and the C1
/// controls escaped too (see [`json_str`] and [`json_escape_c1`]).
pub(crate) fn json_text(value: &serde_json::Value) -> String {
    json_escape_c1(value.to_string())
}

/// JSON text as serde_json writes it, compact or pretty, with DEL and the C1 controls
/// (U+007F..=U+009F) escaped as `\u007f`..`\u009f`, as [`json_str`] writes them (serde_json
/// escapes only what JSON requires: `"`, `\\` and C0 controls). serde_json writes no C0
/// control raw inside a string, so those it writes are whitespace between tokens (a pretty
/// text's newlines), left as they are; outside string literals JSON text is otherwise ASCII
/// punctuation, digits and keywords, so every DEL or C1 character in it is inside a string,
/// where its `\u` escape means the same.
pub(crate) fn json_escape_c1(raw: String) -> String {
    let escaped = |c: char| c.is_control() && c >= '\x7f';
    if !raw.chars().any(escaped) {
        return raw;
    }
    let mut s = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        if escaped(c) {
            push_json_escape(&mut s, c);
        } else {
            s.push(c);
        }
    }
    s
}

/// An outcome that is not success but not a failure either, with its own exit status
/// (for example 3: timed out, or nothing to receive with `--nonblock`). `main` prints the
/// message as an `error:` line and exits with `code`.
#[derive(Debug)]
pub struct Exit {
    /// Exit status.
    pub code: u8,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_escapes_control_and_unprintable_characters_only() {
        assert_eq!(escaped("plain/name.bin"), "plain/name.bin");
        assert!(matches!(escaped("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escaped("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(
            escaped("\x1b[2J\x07\x7f\u{85}"),
            "\\u{1b}[2J\\u{7}\\u{7f}\\u{85}"
        );
        // A right-to-left override would reorder what follows it on the terminal.
        assert_eq!(escaped("a\u{202e}b"), "a\\u{202e}b");
        // Quotes, backslashes and printable Unicode are left alone.
        assert_eq!(escaped(r#"it's "x" \n \\"#), r#"it's "x" \n \\"#);
        assert_eq!(escaped("日本語 é"), "日本語 é");
        // Escaping twice changes nothing (`main` escapes error lines whole).
        for s in ["a\nb", "\x1b[1m\\", "\u{301}x\t", "`q\n`"] {
            let once = escaped(s).into_owned();
            assert_eq!(escaped(&once), once, "{s:?}");
            assert!(!once.chars().any(char::is_control), "{once:?}");
        }
    }

    #[test]
    fn json_escapes_every_control_character_and_round_trips() {
        assert_eq!(json_str("a\x7fb"), "\"a\\u007fb\"");
        assert_eq!(
            json_str("\u{80}\u{9b}[2J\u{9f}"),
            "\"\\u0080\\u009b[2J\\u009f\""
        );
        assert_eq!(json_str("\x1b\n\"\\"), r#""\u001b\n\"\\""#);
        // Printable characters on either side of C1 are left as they are.
        assert_eq!(json_str("~\u{a0}é日"), "\"~\u{a0}é日\"");
        let every_control: String = (0u32..0x100)
            .filter_map(char::from_u32)
            .chain(['\u{2028}', '\u{202e}', 'x'])
            .collect();
        let value = serde_json::json!({ "name\u{85}": every_control, "n": [1, null] });
        for text in [json_str(&every_control), json_text(&value)] {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        let back: String = serde_json::from_str(&json_str(&every_control)).unwrap();
        assert_eq!(back, every_control);
        let back: serde_json::Value = serde_json::from_str(&json_text(&value)).unwrap();
        assert_eq!(back, value);
        assert!(json_text(&value).contains("\"name\\u0085\":"));
        // Nothing to escape: the same text as serde_json's.
        let plain = serde_json::json!({ "a": "b\n", "c": 1.5 });
        assert_eq!(json_text(&plain), plain.to_string());
    }

    #[test]
    fn quoted_and_shown_escape() {
        assert_eq!(quoted(Path::new("/tmp/a\nb")), "`/tmp/a\\nb`");
        assert_eq!(shown(Path::new("x\r").display()), "x\\r");
        let loc = Location::parse("/dev/shm/n\x1bm").unwrap();
        assert_eq!(shown(&loc), "/dev/shm/n\\u{1b}m");
    }
}
