//! `mapipc region create|info|rm|write|read`: shared regions from the shell.
//!
//! `write` and `read --wait` follow the protocol of the library's examples: a writer copies
//! its bytes, bumps the region's generation counter (publishing them), then notifies the
//! region's notifier; a waiter sleeps on the notifier until the generation differs from the
//! one it saw when it started.

use std::cell::Cell;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mapipc::region::{
    JoinError, Location, OpenError, PeerInfo, Region, RegionInfo, RegionOptions, CONTENT_RAW,
};
use mapipc::sync::{Notifier, WaitError, WaitOptions};

use super::{check_parent_dir, existing, json_text, location, read_all_at_most, shown, Exit};
use crate::cli::{RegionCreateArgs, RegionInfoArgs, RegionReadArgs, RegionRmArgs, RegionWriteArgs};
use crate::size::human;

/// Checks that `len` bytes at `offset` fit in the user data; `verb` is "read" or "write".
fn check_range(region: &Region, loc: &Location, verb: &str, offset: u64, len: u64) -> Result<()> {
    let name = shown(loc);
    let data_len = region.len() as u64;
    match offset.checked_add(len) {
        Some(end) if end <= data_len => Ok(()),
        end => bail!(
            "cannot {verb} {len} bytes at offset {offset} of region `{name}`: range {offset}..{} \
             is past the end of its user data, which is {}",
            end.map_or_else(|| "overflow".to_string(), |e| e.to_string()),
            human(data_len)
        ),
    }
}

/// What a content kind means, for people.
fn describe_content(kind: u32) -> String {
    match kind {
        CONTENT_RAW => "raw bytes".to_string(),
        mapipc::channel::REGION_CONTENT_CHANNEL => format!("a channel ({kind:#x})"),
        other => format!("unknown ({other:#x})"),
    }
}

/// `mapipc region create NAME|PATH --size SIZE`.
pub fn create(args: &RegionCreateArgs, out: &mut dyn Write) -> Result<()> {
    let loc = location(&args.name, "region")?;
    let name = shown(&loc);
    let len = usize::try_from(args.size).context("size too large")?;
    // As `chan create` says it: the OS's ENOENT reads as if the region itself were missing.
    let path = loc.path();
    check_parent_dir(&path, &format!("region `{name}`"))?;
    let region = Region::create(&loc, len)?;
    writeln!(
        out,
        "created region `{name}`: {} of user data, {} peer slots",
        human(region.len() as u64),
        region.max_peers()
    )
    .and_then(|()| out.flush())
    .with_context(|| format!("region `{name}` was created; saying so failed"))?;
    Ok(())
}

/// `mapipc region info NAME|PATH [--json]`.
pub fn info(args: &RegionInfoArgs, out: &mut dyn Write) -> Result<()> {
    let loc = existing(&args.name, "region")?;
    let region = open_for_reading(&loc)?;
    let info = region.info()?;
    let peers = region.peers()?;
    let word = region.notify_value()?;
    let (epoch, waiters) = (Notifier::epoch_of(word), Notifier::waiters_of(word));
    if args.json {
        writeln!(
            out,
            "{}",
            json_text(&info_json(&loc, &info, epoch, waiters, &peers))
        )?;
    } else {
        write!(out, "{}", info_text(&loc, &info, epoch, waiters, &peers))?;
    }
    Ok(())
}

fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn info_text(
    loc: &Location,
    info: &RegionInfo,
    epoch: u32,
    waiters: u32,
    peers: &[PeerInfo],
) -> String {
    let live = peers.iter().filter(|p| p.alive).count();
    let name = shown(loc);
    let mut s = format!(
        "region      {name}\n\
         version     {}\n\
         file size   {}\n\
         user data   {} at offset {}\n\
         created     {} by pid {}\n\
         content     {}\n\
         generation  {}\n\
         notifier    epoch {epoch}, {waiters} waiter{} parked\n\
         peer slots  {}\n\
         peers       {} ({live} alive, {} dead)\n",
        info.version,
        human(info.total_size),
        human(info.data_len),
        info.data_offset,
        rfc3339(info.created),
        info.creator_pid,
        describe_content(info.content_kind),
        info.generation,
        if waiters == 1 { "" } else { "s" },
        info.max_peers,
        peers.len(),
        peers.len() - live,
    );
    for p in peers {
        s.push_str(&format!(
            "  slot {:<3} peer {:<10} pid {:<8} {:<5} joined {}\n",
            p.slot,
            p.id,
            p.pid,
            if p.alive { "alive" } else { "DEAD" },
            rfc3339(p.joined)
        ));
    }
    s
}

fn info_json(
    loc: &Location,
    info: &RegionInfo,
    epoch: u32,
    waiters: u32,
    peers: &[PeerInfo],
) -> serde_json::Value {
    use serde_json::json;
    let peers: Vec<_> = peers
        .iter()
        .map(|p| {
            json!({
                "slot": p.slot,
                "id": p.id,
                "pid": p.pid,
                "alive": p.alive,
                "joined": rfc3339(p.joined),
            })
        })
        .collect();
    json!({
        "path": loc.path().display().to_string(),
        "version": info.version,
        "total_size": info.total_size,
        "data_offset": info.data_offset,
        "data_len": info.data_len,
        "created": rfc3339(info.created),
        "creator_pid": info.creator_pid,
        "content_kind": info.content_kind,
        "generation": info.generation,
        "notifier": { "epoch": epoch, "waiters": waiters },
        "max_peers": info.max_peers,
        "peers": peers,
    })
}

/// `mapipc region rm NAME|PATH [--force]`.
pub fn rm(args: &RegionRmArgs, out: &mut dyn Write) -> Result<()> {
    let loc = existing(&args.name, "region")?;
    let name = shown(&loc);
    if args.force {
        mapipc::region::remove(&loc)?;
    } else {
        // Only a valid region is removed: a mistyped path to another file is refused.
        // Removing takes write permission on the directory, not ownership of the file (as
        // with --force), so checking it is one takes read permission only.
        let region = match open_for_reading(&loc) {
            Ok(r) => r,
            Err(OpenError::Invalid(e)) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "not removing `{name}`: it is not a valid region \
                     (--force removes it anyway)"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        region.remove()?;
    }
    writeln!(out, "removed region `{name}`")
        .and_then(|()| out.flush())
        .with_context(|| format!("region `{name}` was removed; saying so failed"))?;
    Ok(())
}

/// `mapipc region write NAME|PATH --offset N (DATA | --stdin)`.
pub fn write(args: &RegionWriteArgs, _out: &mut dyn Write) -> Result<()> {
    let loc = existing(&args.name, "region")?;
    let name = shown(&loc);
    let region = open_for_writing(&loc)?;
    let kind = region.content_kind()?;
    if kind != CONTENT_RAW {
        bail!(
            "region `{name}` holds {}: writing raw bytes into it would corrupt it \
             (use `mapipc send` for channels)",
            describe_content(kind)
        );
    }
    let data = match &args.data {
        Some(d) => d.as_bytes().to_vec(),
        None => {
            // No more than fits: a larger input is refused without being buffered whole.
            let room = (region.len() as u64).saturating_sub(args.offset);
            match read_all_at_most(io::stdin().lock(), room)
                .context("cannot read standard input")?
            {
                Some(data) => data,
                None => bail!(
                    "cannot write standard input at offset {} of region `{name}`: it has more \
                     than the {} of user data from there; nothing was written",
                    args.offset,
                    human(room)
                ),
            }
        }
    };
    check_range(&region, &loc, "write", args.offset, data.len() as u64)?;
    region
        .write_at(args.offset, &data)
        .with_context(|| format!("cannot write to region `{name}`"))?;
    // Publish (the bump is a release), then wake whoever waits for a new generation.
    region.bump_generation()?;
    Notifier::new(region.notify_word()?).notify_all();
    Ok(())
}

/// `mapipc region read NAME|PATH [--offset N] [--len N] [--wait [--timeout D]]`.
pub fn read(args: &RegionReadArgs, out: &mut dyn Write) -> Result<()> {
    let loc = existing(&args.name, "region")?;
    let name = shown(&loc);
    // Waiting registers with the notifier, which writes; reading alone does not.
    let region = if args.wait {
        open_for_writing(&loc)?
    } else {
        open_for_reading(&loc)?
    };
    let len = match args.len {
        Some(len) => len,
        None => (region.len() as u64)
            .checked_sub(args.offset)
            .with_context(|| {
                format!(
                    "offset {} is past the end of region `{name}`'s user data ({})",
                    args.offset,
                    human(region.len() as u64)
                )
            })?,
    };
    check_range(&region, &loc, "read", args.offset, len)?;
    if args.wait {
        wait_for_write(&region, &loc, args.timeout)?;
    }
    // In chunks, as `cat` does: the user data fits in the address space (it is mapped), not
    // necessarily in memory a second time (a large region was read whole into one buffer,
    // and an allocation that failed aborted the process).
    let mut buf = vec![0u8; READ_CHUNK.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        let at = args.offset + done;
        region.read_at(at, &mut buf[..n]).with_context(|| {
            format!("cannot read region `{name}` at offset {at} of its user data")
        })?;
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// Bytes `region read` copies out of the mapping per write to stdout.
const READ_CHUNK: usize = 1 << 20;

/// Opens a region to write to it (or to join it), which only its owner's regions allow.
/// The library's refusal of another user's file names the library option that lifts it,
/// which the command line has not: say it in the command's terms.
fn open_for_writing(loc: &Location) -> Result<Region> {
    let name = shown(loc);
    match Region::open(loc) {
        Err(OpenError::ForeignOwner { uid, our_uid, .. }) => bail!(
            "region `{name}` belongs to uid {uid}, not to you (uid {our_uid}): mapipc does not \
             write to or wait on another user's region (`region info` and `region read` \
             without --wait only read it)"
        ),
        other => Ok(other?),
    }
}

/// Opens a region to look at it: read-only, so read permission is enough, and another
/// user's file is fine (nothing is written to it).
fn open_for_reading(loc: &Location) -> Result<Region, OpenError> {
    RegionOptions::new()
        .read_only(true)
        .allow_foreign_owner(true)
        .open(loc)
}

/// Why [`wait_for_write`] stopped waiting before a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Truncated,
    Removed,
}

/// Whether a live peer other than `me` is in the region's peer table (a process that has
/// the region open and may still write to it). A table that cannot be read counts as one:
/// keep waiting rather than stop on a guess.
fn other_live_peer(region: &Region, me: Option<u32>) -> bool {
    region.peers().map_or(true, |peers| {
        peers.iter().any(|p| p.alive && Some(p.id) != me)
    })
}

/// Blocks until the generation differs from its value now (a writer wrote and notified), or
/// `timeout` passes (exit status 3).
fn wait_for_write(
    region: &Region,
    loc: &Location,
    timeout: Option<std::time::Duration>,
) -> Result<()> {
    let name = shown(loc);
    // Be listed as a peer while waiting (`region info`); a full table only loses that.
    let _me = match region.join() {
        Ok(peer) => Some(peer),
        Err(JoinError::Full { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let start = region.generation()?;
    let my_id = _me.as_ref().map(|p| p.id());
    // Checked every interval: a truncated file can never be written again (and a cut that
    // spares the header would go unnoticed otherwise); a file removed or replaced can no
    // longer be opened by a writer (`region write` opens it by name), so unless another
    // live peer still has it, nobody is left to write.
    let ended = Cell::new(None);
    let intact = || {
        if region.file_shrunk() {
            ended.set(Some(Ended::Truncated));
        } else if region.file_moved() && !other_live_peer(region, my_id) {
            ended.set(Some(Ended::Removed));
        }
        ended.get().is_none()
    };
    let mut opts = WaitOptions::new();
    opts.alive(&intact);
    if let Some(t) = timeout {
        if let Some(deadline) = Instant::now().checked_add(t) {
            opts.deadline(deadline);
        }
    }
    let notifier = Notifier::new(region.notify_word()?);
    let waited = notifier.wait_until(
        || match region.generation() {
            Ok(g) if g == start => None,
            other => Some(other),
        },
        &opts,
    );
    match waited {
        Ok(generation) => {
            generation?;
            Ok(())
        }
        Err(WaitError::TimedOut) => Err(Exit {
            code: 3,
            message: format!(
                "timed out after {} waiting for a write to region `{name}` (generation still {start})",
                humantime::format_duration(timeout.unwrap_or_default())
            ),
        }
        .into()),
        Err(WaitError::PeerGone) if ended.get() == Some(Ended::Removed) => bail!(
            "region `{name}` was removed or replaced while waiting for a write: a writer \
             opening that name now reaches another file, or none, and no other peer has it \
             (generation still {start})"
        ),
        Err(WaitError::PeerGone) => bail!(
            "region `{name}` was truncated while waiting for a write: its data is gone, and \
             nobody can write to it any more"
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!("waiting on region `{name}`"))),
    }
}
