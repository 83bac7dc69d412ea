//! `mapipc`: the command-line tool over the `mapipc` library.
//!
//! This file parses the command line, dispatches to `command::<name>::run`, and turns the
//! outcome into an exit status:
//! - 0 on success, and when stdout is a pipe whose reader went away (`mapipc cat f | head`);
//! - 1 on an error, printed as exactly one line `error: <cause>: <cause>...` on stderr;
//! - 3 when a wait timed out, or `--nonblock` found nothing to do (also one `error:` line);
//! - 2 on a usage error (clap's message and status).

mod cli;
mod command;
mod format;
mod size;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` go to stdout with status 0, usage errors to stderr
            // with status 2. A closed stdout is not worth reporting here either.
            match usage_error_escaped(&e) {
                Some(text) => {
                    let _ = io::stderr().lock().write_all(text.as_bytes());
                }
                None => {
                    let _ = e.print();
                }
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // A file past `ulimit -f` is then an error (EFBIG) naming the file, not a silent death
    // by SIGXFSZ. Nothing useful to do if it fails.
    let _ = mapipc::os::process::ignore_sigxfsz();
    // `demo` and `bench` fork and wait for their children: started by a parent that
    // ignored SIGCHLD, the kernel would reap them first and `waitpid` fail.
    let _ = mapipc::os::process::keep_children_waitable();
    let mut out = Stdout(io::stdout().lock());
    let result = command::run(cli.command, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Nothing sensible is left to do if stderr itself is gone.
            let _ = writeln!(io::stderr().lock(), "error: {}", error_line(&e));
            match e.downcast_ref::<command::Exit>() {
                Some(exit) => ExitCode::from(exit.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// A usage error that quotes an argument holding control characters (clap copies the value
/// into its message verbatim, so a newline in it would forge a line of output): the message
/// with those arguments escaped as everywhere else ([`command::escaped`]), uncoloured. `None`
/// for any other outcome (help, version, plain arguments), which clap prints itself.
fn usage_error_escaped(e: &clap::Error) -> Option<String> {
    if !e.use_stderr() {
        return None;
    }
    let hostile: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| a.chars().any(char::is_control))
        .collect();
    if hostile.is_empty() {
        return None;
    }
    let mut text = e.to_string();
    for arg in &hostile {
        text = text.replace(arg.as_str(), &command::escaped(arg));
        // `--flag=value`: clap quotes the value alone.
        if let Some((_, value)) = arg.split_once('=') {
            if value.chars().any(char::is_control) {
                text = text.replace(value, &command::escaped(value));
            }
        }
    }
    Some(text)
}

/// Whether the error comes from writing to a pipe whose reader has gone away (`EPIPE`; Rust
/// ignores `SIGPIPE`, so the write fails instead of killing us). Like `cat` or `rg`, that is
/// a normal way to stop, not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Standard output whose write errors say where they happened (`cannot write to standard
/// output: No space left on device`), whichever command wrote: a full disk behind `> file`
/// is named as such. The error kind is kept, so a reader that went away (`| head`) is still
/// recognised.
struct Stdout<'a>(io::StdoutLock<'a>);

impl Stdout<'_> {
    fn error(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("cannot write to standard output: {e}"))
    }
}

impl Write for Stdout<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(Self::error)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(Self::error)
    }
}

/// The error and its causes joined with `": "` on one line.
///
/// Library errors often already include their source's text (`cannot open `f`: No such
/// file or directory`) while also exposing it as `source()`; a cause whose text the line
/// already contains is skipped so nothing is printed twice, and a cause that repeats the
/// previous one's text and goes on (`cannot write to standard output` then `cannot write to
/// standard output: No space left on device`) adds only what it goes on with.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        match text.strip_prefix(last.as_str()) {
            Some(rest) if !last.is_empty() => line.push_str(rest),
            _ => {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
        }
        last = text;
    }
    // One line, whatever a cause's message contains: control characters (a newline in a
    // name the message quotes, an escape sequence) are escaped as everywhere in the human
    // output (`command::escaped`); what a command escaped already stays as it is.
    command::escaped(&line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_joins_causes_without_repeating_them() {
        let io = io::Error::new(io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(io)
            .context("cannot open `x`")
            .context("cat");
        assert_eq!(error_line(&e), "cat: cannot open `x`: No such file");
    }

    #[test]
    fn error_line_skips_a_source_already_in_the_message() {
        let err = mapipc::map::MapOptions::new()
            .map_path("/nonexistent/mapipc-test")
            .unwrap_err();
        let line = error_line(&anyhow::Error::new(err));
        assert_eq!(line.matches("No such file").count(), 1, "{line}");
        assert!(
            line.starts_with("cannot open `/nonexistent/mapipc-test`"),
            "{line}"
        );
    }

    #[test]
    fn error_line_skips_a_source_quoted_inside_the_message() {
        // `cannot allocate ... : No space left on device (os error 28) (is the file system
        // full? ...)`: the source is in the middle of the message, not at its end.
        let e = mapipc::region::CreateError::Allocate {
            file: "/dev/shm/x".into(),
            size: 1 << 40,
            source: io::Error::from_raw_os_error(28),
        };
        let line = error_line(&anyhow::Error::new(e));
        assert_eq!(line.matches("os error 28").count(), 1, "{line}");
        assert!(line.ends_with("tmpfs size)"), "{line}");
        // A file elsewhere gets its own hint.
        let e = mapipc::region::CreateError::Allocate {
            file: "./x".into(),
            size: 1 << 40,
            source: io::Error::from_raw_os_error(28),
        };
        let line = error_line(&anyhow::Error::new(e));
        assert!(line.ends_with("(is the file system full?)"), "{line}");
    }

    #[test]
    fn error_line_merges_a_cause_that_continues_the_previous_one() {
        let full = Stdout::error(io::Error::from_raw_os_error(28));
        let e = anyhow::Error::new(full)
            .context("cannot write to standard output")
            .context("printing record 7");
        assert_eq!(
            error_line(&e),
            "printing record 7: cannot write to standard output: No space left on device \
             (os error 28)"
        );
        let gone = Stdout::error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&anyhow::Error::new(gone)));
    }

    #[test]
    fn error_line_is_one_line_with_control_characters_escaped() {
        let e = anyhow::anyhow!("two\nlines");
        assert_eq!(error_line(&e), "two\\nlines");
        // A name quoted by the library (not escaped there) and by a command (escaped
        // already) read the same.
        let io = io::Error::new(io::ErrorKind::NotFound, "cannot open `a\nb\x1b[2J`");
        let e =
            anyhow::Error::new(io).context(format!("region `{}`", command::escaped("a\nb\x1b[2J")));
        assert_eq!(
            error_line(&e),
            "region `a\\nb\\u{1b}[2J`: cannot open `a\\nb\\u{1b}[2J`"
        );
    }

    #[test]
    fn broken_pipe_is_found_under_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("x");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
