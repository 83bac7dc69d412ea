//! `mapipc write FILE --offset N [--create SIZE] (DATA | --stdin)`: bytes into a file
//! through a shared read-write mapping, flushed with `msync`.

use std::borrow::Cow;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Context, Result};
use mapipc::map::MapOptions;

use super::{describe_file_type, has_contents, quoted, read_all_at_most};
use crate::cli::WriteArgs;

/// Runs `mapipc write`. Prints nothing on success.
pub fn run(args: &WriteArgs, _out: &mut dyn Write) -> Result<()> {
    let path = args.file.as_path();
    let offset = args.offset;
    // Check everything before touching the file, so a refused write leaves it unchanged
    // (and a refused --create does not create it).
    let create = args.create;
    let (current, size) = match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => bail!(
            "{} is {}, not a regular file: only regular files can be mapped",
            quoted(path),
            describe_file_type(&meta.file_type())
        ),
        // A file of /proc says 0 bytes but is generated on read: "past the end, use --create" would
        // send the user to a mapping that cannot be made.
        Ok(meta) if meta.len() == 0 && has_contents(path) => bail!(
            "{} reports a size of 0 bytes but is generated on read (as the \
             files of /proc are), so it cannot be mapped; nothing was written",
            quoted(path)
        ),
        Ok(meta) => (Some(meta.len()), meta.len().max(create.unwrap_or(0))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match create {
            Some(create) => (None, create),
            None => bail!(
                "{} does not exist: pass --create SIZE to create it",
                quoted(path)
            ),
        },
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", quoted(path))),
    };
    let data: Cow<'_, [u8]> = if args.stdin {
        // No more than fits: a larger input is refused without being buffered whole.
        let room = size.saturating_sub(offset);
        match read_all_at_most(io::stdin().lock(), room).context("cannot read standard input")? {
            Some(data) => Cow::Owned(data),
            None => bail!(
                "cannot write standard input at offset {offset}: it has more than the {room} \
                 bytes between there and the end of {} ({size} bytes{}); nothing was changed \
                 (--create SIZE makes room)",
                quoted(path),
                if current == Some(size) {
                    ""
                } else {
                    " at its --create size"
                }
            ),
        }
    } else {
        // clap's ArgGroup makes DATA or --stdin required; an absent DATA is empty.
        Cow::Borrowed(args.data.as_deref().map(|d| d.as_bytes()).unwrap_or(b""))
    };
    let end = offset
        .checked_add(data.len() as u64)
        .filter(|end| *end <= i64::MAX as u64)
        .with_context(|| {
            format!(
                "offset {offset} + {} bytes is beyond the largest possible file",
                data.len()
            )
        })?;
    if end > size {
        let len = data.len();
        match (current, create) {
            (Some(current), None) => bail!(
                "cannot write {len} bytes at offset {offset}: range {offset}..{end} is past \
                 the end of {} ({current} bytes); the file is unchanged (use --create SIZE to \
                 extend it)",
                quoted(path)
            ),
            _ => bail!(
                "cannot write {len} bytes at offset {offset}: range {offset}..{end} is past \
                 the end of {} even at its --create size ({size} bytes); nothing was changed \
                 (use a --create SIZE of at least {end})",
                quoted(path)
            ),
        }
    }

    let mut opts = MapOptions::new();
    opts.read_write();
    if let Some(create) = create {
        opts.create(create);
    }
    if data.is_empty() {
        // Nothing to write; --create still creates or extends the file, which mapping the
        // whole file (without touching it) does.
        if create.is_some() {
            drop(opts.map_path(path)?);
        }
        return Ok(());
    }
    let map = opts.offset(offset).len(data.len()).map_path(path)?;
    map.write_at(0, &data)
        .with_context(|| format!("cannot write to {} at offset {offset}", quoted(path)))?;
    map.flush()
        .with_context(|| format!("cannot flush {} to disk", quoted(path)))?;
    Ok(())
}
