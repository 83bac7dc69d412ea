//! `mapipc chan create`, `mapipc send`, `mapipc recv`, `mapipc stat`: channels from the
//! shell.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mapipc::channel::{
    Channel, ChannelOpenError, ChannelOptions, Kind, RecvRef, RecvTimeoutError, SendTimeoutError,
    StartAt, Stat, TryRecvError, TrySendError,
};
use mapipc::region::Location;

use super::{
    check_parent_dir, existing, json_text, location, read_line_at_most, shown,
    stdout_reader_present, stdout_was_closed, Exit,
};
use crate::cli::{ChanCreateArgs, RecvArgs, SendArgs, StatArgs};
use crate::size::human;

/// `mapipc chan create PATH --capacity SIZE [--force]`.
pub fn create(args: &ChanCreateArgs, out: &mut dyn Write) -> Result<()> {
    let loc = location(&args.path, "channel")?;
    let capacity = usize::try_from(args.capacity).context("capacity too large")?;
    // Said here in the command's words (the library would say "cannot create region").
    let path = loc.path();
    if !args.force && std::fs::symlink_metadata(&path).is_ok() {
        bail!(
            "cannot create channel `{}`: it already exists (--force replaces it)",
            shown(path.display())
        );
    }
    check_parent_dir(&path, &format!("channel `{}`", shown(path.display())))?;
    // An option for another kind is a mistake worth saying (`--kind spsc --policy lossy`
    // would otherwise create a channel that is not what was asked for).
    let misplaced = [
        ("--policy", args.policy.is_some(), Kind::Broadcast),
        ("--max-producers", args.max_producers.is_some(), Kind::Mpsc),
        (
            "--max-subscribers",
            args.max_subscribers.is_some(),
            Kind::Broadcast,
        ),
    ];
    if let Some((flag, _, kind)) = misplaced
        .iter()
        .find(|(_, given, kind)| *given && *kind != args.kind)
    {
        return Err(Exit {
            code: 2,
            message: format!(
                "{flag} applies to {kind} channels only, and this one is {}",
                args.kind
            ),
        }
        .into());
    }
    let max_producers = args.max_producers.unwrap_or(64);
    let max_subscribers = args.max_subscribers.unwrap_or(32);
    let mut options = ChannelOptions::new(args.kind);
    options
        .capacity(capacity)
        .policy(args.policy.unwrap_or(mapipc::channel::Policy::Lossless))
        .max_producers(max_producers)
        .max_subscribers(max_subscribers);
    let chan = if args.force {
        replace(&options, &loc)?
    } else {
        options.create(&loc)?
    };
    let extra = match chan.kind() {
        Kind::Spsc => String::new(),
        Kind::Mpsc => format!(", up to {max_producers} producers"),
        Kind::Broadcast => format!(", {}, up to {} subscribers", chan.policy(), max_subscribers),
    };
    writeln!(
        out,
        "created {} channel `{}`: capacity {}, messages up to {}{extra}",
        chan.kind(),
        shown(loc.path().display()),
        human(chan.capacity() as u64),
        human(chan.max_message() as u64)
    )
    .and_then(|()| out.flush())
    .with_context(|| {
        format!(
            "channel `{}` was created; saying so failed",
            shown(loc.path().display())
        )
    })?;
    Ok(())
}

/// `chan create --force`: makes the new channel under a temporary name next to PATH, then
/// renames it over PATH. Whatever is at PATH stays until the new channel exists: options
/// the library refuses, a full file system or an interruption never leave PATH removed
/// with nothing in its place (its messages lost), and there is no moment without a file
/// at PATH. Processes that have the old channel open keep it, as after a removal.
fn replace(options: &ChannelOptions, loc: &Location) -> Result<Channel> {
    let path = loc.path();
    let name = path.file_name().with_context(|| {
        format!(
            "cannot replace `{}`: it names no file",
            shown(path.display())
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".mapipc-new-{}", std::process::id()));
    let temp = Location::Path(path.with_file_name(temp_name));
    let unchanged = || {
        format!(
            "cannot replace `{}` (left as it was)",
            shown(path.display())
        )
    };
    let chan = options.create(&temp).with_context(unchanged)?;
    if let Err(e) = std::fs::rename(temp.path(), &path) {
        let _ = std::fs::remove_file(temp.path());
        return Err(e).with_context(unchanged);
    }
    Ok(chan)
}

fn exit3(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: 3,
        message: message.into(),
    }
    .into()
}

/// Where messages to send come from.
enum Source<'a> {
    Args(std::iter::Enumerate<std::slice::Iter<'a, std::ffi::OsString>>),
    Lines(io::StdinLock<'static>, u64),
    Frames(io::StdinLock<'static>, u64),
}

impl Source<'_> {
    /// The next message into `buf`, with where it came from and its length (for errors).
    /// A message longer than `max` is not read whole (a frame's length is its prefix; a
    /// line is read up to `max + 1` bytes): input that cannot be sent is never buffered,
    /// however large.
    fn next(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<Option<(String, Length)>> {
        buf.clear();
        match self {
            Source::Args(it) => Ok(it.next().map(|(i, a)| {
                buf.extend_from_slice(a.as_bytes());
                (
                    format!("argument {}", i + 1),
                    Length::Exact(buf.len() as u64),
                )
            })),
            Source::Lines(input, n) => {
                let Some(whole) =
                    read_line_at_most(input, buf, max).context("cannot read standard input")?
                else {
                    return Ok(None);
                };
                *n += 1;
                let len = if whole {
                    Length::Exact(buf.len() as u64)
                } else {
                    Length::MoreThan(max as u64)
                };
                Ok(Some((format!("line {n} of standard input"), len)))
            }
            Source::Frames(input, n) => {
                // The end of the input may come only before a frame: a partial length
                // prefix is a cut frame, not the end.
                let mut len = [0u8; 4];
                let mut got = 0;
                while got < len.len() {
                    match input.read(&mut len[got..]) {
                        Ok(0) => break,
                        Ok(k) => got += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e).context("cannot read standard input"),
                    }
                }
                if got == 0 {
                    return Ok(None);
                }
                *n += 1;
                let origin = format!("frame {n} of standard input");
                if got < len.len() {
                    bail!("{origin} is cut short: {got} of the 4 bytes of its length");
                }
                let len = u32::from_le_bytes(len);
                if len as usize <= max {
                    let got = input
                        .by_ref()
                        .take(len.into())
                        .read_to_end(buf)
                        .context("cannot read standard input")?;
                    if got < len as usize {
                        bail!("{origin} is cut short: {got} of its {len} bytes");
                    }
                }
                Ok(Some((origin, Length::Exact(len.into()))))
            }
        }
    }
}

/// A message's length as far as it was read.
#[derive(Clone, Copy)]
enum Length {
    Exact(u64),
    /// A line cut off after this many bytes without its end.
    MoreThan(u64),
}

impl std::fmt::Display for Length {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Length::Exact(n) => write!(f, "{n} bytes"),
            Length::MoreThan(n) => write!(f, "more than {n} bytes"),
        }
    }
}

/// The channel `opened` at `loc`, or its error, which the library words for every kind of
/// region: a file that is not a regular one, a symlink, another user's file and one that
/// cannot be opened (permission denied) are said in the channel commands' terms (the
/// library's hint for another user's file names a library option the command line has
/// not). `doing`: what the command would do to it.
fn open_channel(
    loc: &Location,
    opened: Result<Channel, ChannelOpenError>,
    doing: &str,
) -> Result<Channel> {
    use mapipc::region::OpenError;
    let name = shown(loc);
    match opened {
        Err(ChannelOpenError::Region(OpenError::NotRegularFile { kind, .. })) => {
            bail!("`{name}` is {kind}, not a channel")
        }
        Err(ChannelOpenError::Region(OpenError::Symlink { .. })) => bail!(
            "`{name}` is a symbolic link: channels are not opened through symlinks (someone \
             could point it at another file); name the target directly"
        ),
        Err(ChannelOpenError::Region(OpenError::Open { source, .. })) => {
            bail!("cannot open channel `{name}`: {source}")
        }
        Err(ChannelOpenError::Region(OpenError::ForeignOwner { uid, our_uid, .. })) => bail!(
            "channel `{name}` belongs to uid {uid}, not to you (uid {our_uid}): mapipc does \
             not {doing} another user's channel"
        ),
        other => Ok(other?),
    }
}

/// `mapipc send PATH [MSG...] [--binary] [--nonblock] [--timeout D]`.
pub fn send(args: &SendArgs, _out: &mut dyn Write) -> Result<()> {
    let loc = existing(&args.path, "channel")?;
    let chan = open_channel(&loc, Channel::open(&loc), "send to")?;
    let mut tx = chan.sender()?;
    let max = tx.max_message();
    let mut source = if !args.msgs.is_empty() {
        Source::Args(args.msgs.iter().enumerate())
    } else if args.binary {
        Source::Frames(io::stdin().lock(), 0)
    } else {
        Source::Lines(io::stdin().lock(), 0)
    };
    let mut buf = Vec::new();
    let mut sent = 0u64;
    while let Some((origin, len)) = source.next(&mut buf, max)? {
        if !matches!(len, Length::Exact(n) if n >= 1 && n <= max as u64) {
            bail!(
                "{origin} is {len}: messages on `{}` are 1 to {max} bytes ({sent} sent before it)",
                shown(loc.path().display())
            );
        }
        // A timeout past what the clock can represent: no deadline.
        let deadline = args.timeout.and_then(|t| Instant::now().checked_add(t));
        let what = |sent: u64| format!("`{}` ({sent} sent)", shown(loc.path().display()));
        loop {
            let r = if args.nonblock {
                match tx.try_send(&buf) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full) => {
                        return Err(exit3(format!(
                            "channel {} is full (--nonblock)",
                            what(sent)
                        )))
                    }
                    Err(TrySendError::Disconnected) => {
                        return Err(exit3(format!(
                            "channel {} is full and no receiver is attached (--nonblock)",
                            what(sent)
                        )))
                    }
                    Err(e) => Err(anyhow::Error::new(e)),
                }
            } else {
                // Every wait in slices, so that a channel file removed or replaced while no
                // receiver is attached ends it: a receiver opening that name would reach
                // another file, or none.
                let timed_out = || deadline.is_some_and(|d| Instant::now() >= d);
                let orphaned = || -> Result<()> {
                    if chan.region().file_moved() && !readers_attached(&chan) {
                        bail!(
                            "channel {} was removed or replaced while waiting for a receiver \
                             to make room: a receiver opening that name now reaches another \
                             file, or none",
                            what(sent)
                        );
                    }
                    Ok(())
                };
                match tx.send_deadline(&buf, slice_end(deadline)) {
                    Ok(()) => Ok(()),
                    Err(SendTimeoutError::Timeout) if !timed_out() => {
                        orphaned()?;
                        continue;
                    }
                    Err(SendTimeoutError::Timeout) => {
                        return Err(exit3(format!(
                            "timed out after {} waiting for room in {}",
                            humantime::format_duration(args.timeout.unwrap_or_default()),
                            what(sent)
                        )))
                    }
                    Err(SendTimeoutError::Disconnected) => {
                        // Full, and the receiver left: wait for the next one to make room.
                        if !tx.wait_for_receiver(Some(slice_end(deadline))) {
                            if timed_out() {
                                return Err(exit3(format!(
                                    "timed out after {} waiting for a receiver to make room in \
                                     {}",
                                    humantime::format_duration(args.timeout.unwrap_or_default()),
                                    what(sent)
                                )));
                            }
                            orphaned()?;
                        }
                        continue;
                    }
                    Err(e) => Err(anyhow::Error::new(e)),
                }
            };
            r.with_context(|| format!("sending {origin}"))?;
            break;
        }
        sent += 1;
    }
    Ok(())
}

/// How often a waiting `send` or `recv` checks that the channel's name still leads to its
/// file (when nobody on the other side is attached, a removed or replaced file ends the wait).
const FOLLOW_CHECK: Duration = Duration::from_millis(100);

/// The end of the next slice of a wait that ends at `deadline` (if any).
fn slice_end(deadline: Option<Instant>) -> Instant {
    let slice = Instant::now() + FOLLOW_CHECK;
    deadline.map_or(slice, |d| d.min(slice))
}

/// Fails when the channel's shared positions are inconsistent: every sender that tries to
/// attach would be refused as corrupted, and `recv` would wait for ever for one. (The
/// library's wait reports its own position overwritten; this also covers the producer's
/// position and, for MPSC, the claim hint. `Channel::stat`'s check is race-free: a busy
/// healthy channel never fails it.)
fn positions_valid(chan: &Channel, loc: &Location, printed: u64) -> Result<()> {
    if !chan.stat().positions_valid {
        bail!(
            "channel `{}`: the shared positions are inconsistent: the channel is corrupted \
             ({printed} received)",
            shown(loc.path().display())
        );
    }
    Ok(())
}

/// Whether a receiver (the consumer, or a broadcast subscriber) is attached and alive.
fn readers_attached(chan: &Channel) -> bool {
    let st = chan.stat();
    st.consumer.alive || st.subscribers.iter().any(|s| s.end.alive)
}

/// `mapipc recv PATH [--count N] [--timeout D] [--nonblock] [--follow] [--binary]`.
pub fn recv(args: &RecvArgs, out: &mut dyn Write) -> Result<()> {
    if stdout_was_closed() {
        return Err(Exit {
            code: 2,
            message: "standard output is closed: the messages received would be consumed and \
                      lost (to discard them, redirect it to /dev/null)"
                .to_string(),
        }
        .into());
    }
    let loc = existing(&args.path, "channel")?;
    let chan = open_channel(&loc, Channel::open(&loc), "receive from")?;
    // An spsc or mpsc consumer continues from the last consumed position: `--from newest`
    // cannot be honoured there, and silently printing old messages is not what was asked.
    if args.from == "newest" && chan.kind() != Kind::Broadcast {
        return Err(Exit {
            code: 2,
            message: format!(
                "--from newest applies to broadcast channels only, and `{}` is an {} channel \
                 (its receiver continues from the last consumed message)",
                shown(loc.path().display()),
                chan.kind()
            ),
        }
        .into());
    }
    let start = if args.from == "newest" {
        StartAt::Newest
    } else {
        StartAt::Oldest
    };
    let mut rx = chan.subscribe(start)?;
    let mut printed = 0u64;
    let lagged = |missed: u64| {
        // Not an error: the lossy broadcast producer overwrote messages we had not read.
        let _ = writeln!(
            io::stderr(),
            "warning: missed {missed} messages (this subscriber fell behind)"
        );
    };
    let want = args.count.unwrap_or(u64::MAX);
    let mut buf = Vec::new();
    let emit = |out: &mut dyn Write, m: &[u8]| -> io::Result<()> {
        if args.binary {
            out.write_all(&frame_prefix(m.len())?)?;
            out.write_all(m)?;
        } else {
            out.write_all(m)?;
            out.write_all(b"\n")?;
        }
        // Each message is out before it is consumed (and interactive readers see each
        // message as it comes).
        out.flush()
    };
    while printed < want {
        if args.nonblock {
            match rx.try_recv_ref() {
                Ok(m) => {
                    printed += u64::from(deliver(m, &mut buf, out, emit)?);
                    continue;
                }
                // Without --count, printing what was there is the whole job; with it, an
                // empty channel before N messages is a shortfall (status 3), unless the
                // producers are gone (`Disconnected`: everything committed was printed).
                Err(TryRecvError::Empty) if args.count.is_none() && printed > 0 => break,
                Err(TryRecvError::Empty) => {
                    let of = args.count.map_or_else(String::new, |n| {
                        format!(": {printed} of {n} messages received")
                    });
                    return Err(exit3(format!(
                        "channel `{}` is empty (--nonblock){of}",
                        shown(loc.path().display())
                    )));
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Lagged { missed }) => {
                    lagged(missed);
                    continue;
                }
                Err(TryRecvError::Evicted { .. }) => return Err(evicted(&loc, printed)),
                Err(e) => return Err(e.into()),
            }
        }
        // A timeout past what the clock can represent: no deadline.
        let deadline = args.timeout.and_then(|t| Instant::now().checked_add(t));
        // The message is written out inside the receive's own expression, so that its guard
        // (a borrow of `rx`) is gone before the error arms use `rx` again. The wait is in
        // slices: standard output whose reader went away (`recv ... | head -1`) ends it as
        // a failed write would, and, without a deadline, so does a channel file removed or
        // replaced while no sender is attached (a sender opening that name would reach
        // another file, or none); an attached sender keeps the channel alive without its
        // name.
        let received = loop {
            let slice = deadline.map_or(FOLLOW_CHECK, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(FOLLOW_CHECK)
            });
            match rx
                .recv_ref_timeout(slice)
                .map(|m| deliver(m, &mut buf, out, emit))
            {
                Err(RecvTimeoutError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break Err(RecvTimeoutError::Timeout);
                    }
                    stdout_reader_present()?;
                    positions_valid(&chan, &loc, printed)?;
                    if deadline.is_none() && chan.region().file_moved() && !rx.producer_alive() {
                        bail!(
                            "channel `{}` was removed or replaced while waiting for a sender: \
                             a sender opening that name now reaches another file, or none \
                             ({printed} received)",
                            shown(loc.path().display())
                        );
                    }
                }
                other => break other,
            }
        };
        match received {
            Ok(delivered) => printed += u64::from(delivered?),
            Err(RecvTimeoutError::Timeout) => {
                let of = args.count.map_or_else(String::new, |n| format!(" of {n}"));
                return Err(exit3(format!(
                    "timed out after {} waiting for a message on `{}` ({printed}{of} received)",
                    humantime::format_duration(args.timeout.unwrap_or_default()),
                    shown(loc.path().display())
                )));
            }
            Err(RecvTimeoutError::Lagged { missed }) => lagged(missed),
            Err(RecvTimeoutError::Evicted { .. }) => return Err(evicted(&loc, printed)),
            Err(RecvTimeoutError::Disconnected) => {
                if !args.follow {
                    break;
                }
                out.flush()?;
                // In slices, so that a channel file removed or replaced meanwhile ends the
                // wait: a new sender would open another file, or none.
                loop {
                    let slice = Instant::now() + FOLLOW_CHECK;
                    if rx.wait_for_producer(Some(deadline.map_or(slice, |d| d.min(slice)))) {
                        break;
                    }
                    stdout_reader_present()?;
                    positions_valid(&chan, &loc, printed)?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(exit3(format!(
                            "timed out after {} waiting for a new sender on `{}` ({printed} \
                             received)",
                            humantime::format_duration(args.timeout.unwrap_or(Duration::ZERO)),
                            shown(loc.path().display())
                        )));
                    }
                    if chan.region().file_moved() {
                        bail!(
                            "channel `{}` was removed or replaced while waiting for a new \
                             sender: a sender opening that name now reaches another file, or \
                             none ({printed} received)",
                            shown(loc.path().display())
                        );
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A lossless broadcast subscription dropped as dead while alive (`Evicted`: a peer took it
/// for dead, and the producer stopped keeping messages for it). Status 1, an error, not the
/// 3 of a wait that found nothing: messages may have been lost for this subscriber.
fn evicted(loc: &Location, printed: u64) -> anyhow::Error {
    anyhow::anyhow!(
        "the subscriber of broadcast channel `{}` was dropped as dead while alive, after \
         {printed} received: the producer no longer keeps messages for it, and those since may \
         be lost; run recv again to subscribe anew",
        shown(loc.path().display())
    )
}

/// The 4-byte little-endian length that starts a `--binary` frame. A message too long for
/// it (possible on a channel of 16 GiB or more) is an error, not a length cut to 32 bits
/// that would make the reader misparse everything after it.
fn frame_prefix(len: usize) -> io::Result<[u8; 4]> {
    u32::try_from(len).map(u32::to_le_bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a message of {len} bytes does not fit a --binary frame (its length prefix \
                 holds at most {} bytes)",
                u32::MAX
            ),
        )
    })
}

/// Writes a received message out, and consumes it only once that succeeded: a message
/// whose write failed (a full disk, a reader gone) stays in the channel for the next
/// receive, so nothing that was not delivered is lost. Returns whether it was written: a
/// message a lossy broadcast producer overwrote while we copied it is not (the next
/// receive reports the lag), nor one read from a file truncated under us, or with a page
/// the kernel could not supply (not consumed either: the next receive reports that).
fn deliver(
    m: RecvRef<'_>,
    buf: &mut Vec<u8>,
    out: &mut dyn Write,
    emit: impl Fn(&mut dyn Write, &[u8]) -> io::Result<()>,
) -> Result<bool> {
    buf.resize(m.len(), 0);
    m.bytes().copy_to_slice(buf);
    if !m.is_intact() {
        return Ok(false);
    }
    match emit(out, buf) {
        Ok(()) => Ok(true),
        Err(e) => {
            m.leave();
            Err(anyhow::Error::new(e).context("message not delivered; it stays in the channel"))
        }
    }
}

/// `mapipc stat PATH [--json]`.
pub fn stat(args: &StatArgs, out: &mut dyn Write) -> Result<()> {
    let loc = existing(&args.path, "channel")?;
    // Read-only: looking needs read permission only, and writes nothing.
    let chan = open_channel(&loc, Channel::open_read_only(&loc), "read")?;
    let st = chan.stat();
    if args.json {
        writeln!(out, "{}", json_text(&stat_json(&loc, &st)))?;
    } else {
        write!(out, "{}", stat_text(&loc, &st))?;
    }
    // Described above, and still an error, as every command on a damaged file (since the
    // check is race-free, a busy healthy channel never trips it).
    if !st.positions_valid {
        bail!(
            "channel `{}`: the shared positions are inconsistent: the channel is corrupted",
            shown(loc.path().display())
        );
    }
    Ok(())
}

fn stat_text(loc: &Location, st: &Stat) -> String {
    let end = |e: &mapipc::channel::EndStat| {
        if !e.attached {
            "not attached".to_string()
        } else {
            format!(
                "{} (peer {}, pid {}){}",
                if e.alive { "alive" } else { "DEAD" },
                e.peer,
                e.pid,
                if e.parked { ", parked" } else { "" }
            )
        }
    };
    use std::fmt::Write as _;
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<11} {v}");
    };
    line("channel", shown(loc.path().display()));
    line(
        "kind",
        match st.policy {
            Some(p) => format!("{} ({p})", st.kind),
            None => st.kind.to_string(),
        },
    );
    line("capacity", human(st.capacity));
    line("max message", human(st.max_message));
    match st.kind {
        Kind::Broadcast => {
            line("retained", human(st.bytes_used));
            line("sent", st.sent.to_string());
            line("producer", end(&st.producer));
            line("subscribers", st.subscribers.len().to_string());
            for sub in &st.subscribers {
                line(
                    &format!("  slot {}", sub.slot),
                    format!("{}, {} behind", end(&sub.end), human(sub.behind)),
                );
            }
        }
        kind => {
            line(
                "in use",
                match st.sent.saturating_sub(st.received + st.aborted) {
                    1 => format!("{} (1 message waiting)", human(st.bytes_used)),
                    n => format!("{} ({n} messages waiting)", human(st.bytes_used)),
                },
            );
            line("sent", st.sent.to_string());
            line("received", st.received.to_string());
            if kind == Kind::Mpsc {
                line("aborted", st.aborted.to_string());
                line("producers", st.producers.len().to_string());
                for p in &st.producers {
                    line("  producer", end(p));
                }
            } else {
                line("producer", end(&st.producer));
            }
            line("consumer", end(&st.consumer));
        }
    }
    if !st.positions_valid {
        line(
            "WARNING",
            "the shared positions are inconsistent: the channel is corrupted".into(),
        );
    }
    s
}

fn stat_json(loc: &Location, st: &Stat) -> serde_json::Value {
    let end = |e: &mapipc::channel::EndStat| {
        serde_json::json!({
            "attached": e.attached,
            "alive": e.alive,
            "peer": e.peer,
            "pid": e.pid,
            "attaches": e.attaches,
            "parked": e.parked,
        })
    };
    serde_json::json!({
        "path": loc.path().display().to_string(),
        "kind": st.kind.to_string(),
        "policy": st.policy.map(|p| p.to_string()),
        "capacity": st.capacity,
        "max_message": st.max_message,
        "bytes_used": st.bytes_used,
        "sent": st.sent,
        "received": st.received,
        "aborted": st.aborted,
        "producer": end(&st.producer),
        "consumer": end(&st.consumer),
        "producers": st.producers.iter().map(end).collect::<Vec<_>>(),
        "subscribers": st.subscribers.iter().map(|s| serde_json::json!({
            "slot": s.slot,
            "position": s.position,
            "behind": s.behind,
            "end": end(&s.end),
        })).collect::<Vec<_>>(),
        "positions_valid": st.positions_valid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_prefix_is_little_endian_and_refuses_what_does_not_fit() {
        assert_eq!(frame_prefix(0x0102_0304).unwrap(), [4, 3, 2, 1]);
        assert_eq!(frame_prefix(u32::MAX as usize).unwrap(), [0xff; 4]);
        let e = frame_prefix(1 << 32).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("4294967296 bytes"), "{e}");
    }
}
