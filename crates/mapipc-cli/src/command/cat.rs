//! `mapipc cat FILE [--offset N] [--len N]`: a file's bytes, read through a mapping.

use std::io::Write;

use anyhow::{bail, Context, Result};
use mapipc::map::{Advice, MapOptions};

use super::{describe_file_type, has_contents, quoted};
use crate::cli::CatArgs;

/// Bytes copied out of the mapping per write to stdout: large enough to stream at memory
/// speed, small enough that a huge file never needs a huge buffer.
const CHUNK: usize = 1 << 20;

/// Runs `mapipc cat`.
pub fn run(args: &CatArgs, out: &mut dyn Write) -> Result<()> {
    let path = args.file.as_path();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot open {}", quoted(path)))?;
    // Refuse non-regular files here, before anything opens them (opening a FIFO would block
    // until a writer appears). For a regular file, settle the cases that need no mapping
    // (an empty range) and give CLI-worded errors for the others; the library checks again
    // when mapping, so a file changing in between is still caught.
    if !meta.is_file() {
        bail!(
            "{} is {}, not a regular file: only regular files can be mapped",
            quoted(path),
            describe_file_type(&meta.file_type())
        );
    }
    let size = meta.len();
    if size == 0 && has_contents(path) {
        // A file of /proc (or any generated file) says 0 bytes but is not empty; printing
        // nothing and succeeding would pass for an empty file.
        bail!(
            "{} reports a size of 0 bytes but is generated on read (as the \
             files of /proc are), so it cannot be mapped; read it with `cat`",
            quoted(path)
        );
    }
    if args.offset > size {
        bail!(
            "offset {} is past the end of {} ({size} bytes)",
            args.offset,
            quoted(path)
        );
    }
    let available = size - args.offset;
    match args.len {
        Some(len) if len > available => bail!(
            "range {}..{} is past the end of {} ({size} bytes)",
            args.offset,
            u128::from(args.offset) + u128::from(len),
            quoted(path)
        ),
        Some(0) => return Ok(()),
        None if available == 0 => return Ok(()),
        _ => {}
    }

    let mut opts = MapOptions::new();
    opts.read_only().offset(args.offset);
    if let Some(len) = args.len {
        let len = usize::try_from(len)
            .with_context(|| format!("--len {len} does not fit in this machine's memory"))?;
        opts.len(len);
    }
    let map = opts.map_path(path)?;
    // Only a hint: reading ahead helps a scan, and failing to advise changes nothing.
    let _ = map.advise(Advice::Sequential);

    let mut buf = vec![0u8; CHUNK.min(map.len())];
    let mut pos = 0usize;
    while pos < map.len() {
        let n = buf.len().min(map.len() - pos);
        let chunk = &mut buf[..n];
        map.read_at(pos as u64, chunk).with_context(|| {
            format!(
                "cannot read {} at offset {}",
                quoted(path),
                args.offset + pos as u64
            )
        })?;
        out.write_all(chunk)
            .context("cannot write to standard output")?;
        pos += n;
    }
    out.flush().context("cannot write to standard output")?;
    Ok(())
}
