//! `mapipc queue append|tail|stat|verify|retain|remove-damaged`: the durable queue of
//! `mapipc::queue`.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mapipc::queue::{
    self, AckMode, Appender, QueueOptions, QueueStat, RemoveDamagedOptions, Retention, StartAt,
    SyncPolicy, TailerOptions,
};

use super::{escaped, json_str, quoted, read_line_at_most, shown, stdout_reader_present, Exit};
use crate::cli::{
    FromArg, QueueAppendArgs, QueueCommand, QueueRemoveDamagedArgs, QueueRetainArgs, QueueStatArgs,
    QueueTailArgs, QueueVerifyArgs, SyncArg,
};
use crate::size::human;

/// Stdout is flushed (and a named tailer's position stored) at least this often while
/// records keep coming.
const FLUSH_EVERY: usize = 64 * 1024;

/// Runs one `mapipc queue` subcommand.
pub fn run(cmd: QueueCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        QueueCommand::Append(args) => append(&args, out),
        QueueCommand::Tail(args) => tail(&args, out),
        QueueCommand::Stat(args) => stat(&args, out),
        QueueCommand::Verify(args) => verify(&args, out),
        QueueCommand::Retain(args) => retain(&args, out),
        QueueCommand::RemoveDamaged(args) => remove_damaged(&args, out),
    }
}

fn append(args: &QueueAppendArgs, _out: &mut dyn Write) -> Result<()> {
    let mut opts = QueueOptions::new();
    opts.sync(match args.sync {
        SyncArg::None => SyncPolicy::None,
        SyncArg::Batch => SyncPolicy::BATCH,
        SyncArg::Always => SyncPolicy::Always,
    })
    .wait_for_lock(args.wait);
    if let Some(size) = args.segment_size {
        opts.segment_size(size);
    }
    let mut app = opts.open_appender(&args.dir)?;
    report_recovery(&args.dir, app.recovery());
    let context = |app: &Appender| {
        format!(
            "cannot append record {} to {}",
            app.next_seq(),
            quoted(&args.dir)
        )
    };
    if !args.messages.is_empty() {
        for msg in &args.messages {
            app.append(msg.as_bytes()).with_context(|| context(&app))?;
        }
    } else {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        let max = usize::try_from(app.max_payload()).unwrap_or(usize::MAX);
        let mut n = 0u64;
        while let Some(whole) =
            read_line_at_most(&mut input, &mut line, max).context("cannot read standard input")?
        {
            n += 1;
            if !whole {
                bail!(
                    "line {n} of standard input is more than {max} bytes, the largest record \
                     of {} ({} appended before it)",
                    quoted(&args.dir),
                    n - 1
                );
            }
            app.append(&line).with_context(|| context(&app))?;
        }
    }
    // Group commit: what is pending is synced now (also on drop, but here errors show).
    if args.sync != SyncArg::None {
        app.sync()
            .with_context(|| format!("cannot sync {}", quoted(&args.dir)))?;
    }
    Ok(())
}

/// Tells on stderr what opening the appender repaired after a crash (the library reports it
/// in [`queue::Recovery`]): a cut-off record, damage tailers will meet, garbage cleared after
/// the end, segment files a machine crash left short or without a header. A clean open says
/// nothing.
fn report_recovery(dir: &Path, r: &queue::Recovery) {
    if r.is_clean() {
        return;
    }
    let mut err = io::stderr().lock();
    let q = quoted(dir);
    for repair in &r.segment_repairs {
        let line = match repair {
            queue::SegmentRepair::Extended { file, len, .. } => format!(
                "extended {}, which a crash left at {len} bytes",
                quoted(file)
            ),
            queue::SegmentRepair::HeaderRewritten {
                file,
                first_seq,
                why,
                ..
            } => format!(
                "rewrote the header of {}, which a crash left unreadable ({}): the segment \
                 starts at record {first_seq}",
                quoted(file),
                escaped(why)
            ),
            queue::SegmentRepair::Removed { file, why, .. } => format!(
                "removed {}, an empty segment whose header a crash left unreadable ({})",
                quoted(file),
                escaped(why)
            ),
            queue::SegmentRepair::SetAside { file, to, why, .. } => format!(
                "set {} aside as {}: its header is unreadable ({}) and where it starts is \
                 unknown (`mapipc queue remove-damaged` deletes it)",
                quoted(file),
                quoted(to),
                escaped(why)
            ),
            other => escaped(&format!("{other:?}")).into_owned(),
        };
        let _ = writeln!(err, "warning: {q}: {line}");
    }
    if let Some(cut) = &r.cut {
        let _ = writeln!(
            err,
            "warning: {q}: cut off the unfinished or damaged record at the end of the log: {}",
            escaped(&cut.to_string())
        );
    }
    if let Some(first) = r.damaged.first() {
        let _ = writeln!(
            err,
            "warning: {q}: {} damaged record(s) before the end, left for readers to report; \
             the first: {}",
            r.damaged.len(),
            escaped(&first.to_string())
        );
    }
    if r.zeroed_bytes > 0 {
        let _ = writeln!(
            err,
            "warning: {q}: cleared {} bytes left after the end of the log",
            r.zeroed_bytes
        );
    }
}

/// How often `queue tail --follow`, waiting for a record, checks that the queue is still
/// where it was.
const FOLLOW_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

fn tail(args: &QueueTailArgs, out: &mut dyn Write) -> Result<()> {
    let mut opts = TailerOptions::new();
    if let Some(name) = &args.name {
        // Positions are stored only after the printed records reached stdout.
        opts.name(name).ack(AckMode::Manual);
    }
    if let Some(from) = args.from {
        opts.from(match from {
            FromArg::Start => StartAt::Start,
            FromArg::End => StartAt::End,
            FromArg::Seq(n) => StartAt::Seq(n),
        });
    }
    if let Some(timeout) = args.lock_timeout {
        opts.lock_timeout(timeout);
    }
    let mut t = opts.open(&args.dir).map_err(|e| match &e {
        queue::OpenError::Read(read)
            if matches!(**read, queue::ReadError::PositionLockTimeout { .. }) =>
        {
            lock_timed_out(&e)
        }
        _ => e.into(),
    })?;
    let deadline = args.timeout.and_then(|d| Instant::now().checked_add(d));
    let mut printed = 0u64;
    let mut unflushed = 0usize;
    // Stores the named tailer's position once what was printed is out.
    let flush = |out: &mut dyn Write, t: &mut queue::Tailer| -> Result<()> {
        out.flush().context("cannot write to standard output")?;
        t.ack()?;
        Ok(())
    };
    // What the queue's metadata file is now, to notice it removed or replaced under a wait.
    let meta_path = args.dir.join("queue.meta");
    let meta_id = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let started_with = meta_id(&meta_path);
    let meta_moved = || started_with.is_some() && meta_id(&meta_path) != started_with;
    let timed_out = |t: &queue::Tailer, printed: u64| -> anyhow::Error {
        Exit {
            code: 3,
            message: format!(
                "timed out after {} waiting for record {} of {} ({printed} printed)",
                humantime::format_duration(args.timeout.unwrap_or_default()),
                t.next_seq(),
                quoted(&args.dir)
            ),
        }
        .into()
    };
    let result = (|| -> Result<()> {
        while args.count.map_or(true, |c| printed < c) {
            // --timeout bounds the whole run, a backlog or a slow reader included.
            if args.follow && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(timed_out(&t, printed));
            }
            let (seq, bytes) = match t.try_next()? {
                Some(rec) => (rec.seq(), rec.to_vec()?),
                None if !args.follow => break,
                None => {
                    flush(out, &mut t)?;
                    unflushed = 0;
                    // In slices, so that a queue removed or replaced meanwhile ends the wait:
                    // an appender would write another directory's files, or none.
                    loop {
                        let slice = Instant::now() + FOLLOW_CHECK;
                        if let Some(rec) = t.next_until(deadline.map_or(slice, |d| d.min(slice)))? {
                            break (rec.seq(), rec.to_vec()?);
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            return Err(timed_out(&t, printed));
                        }
                        // `queue tail --follow | head -1`: once the reader of our output is
                        // gone, end now (status 0), not when the next record comes.
                        stdout_reader_present()?;
                        if meta_moved() {
                            bail!(
                                "queue {} was removed or replaced while waiting for record {}: \
                                 an appender now writes elsewhere ({printed} printed)",
                                quoted(&args.dir),
                                t.next_seq()
                            );
                        }
                    }
                }
            };
            if args.seq {
                write!(out, "{seq}\t").context("cannot write to standard output")?;
            }
            out.write_all(&bytes)
                .and_then(|()| out.write_all(b"\n"))
                .context("cannot write to standard output")?;
            printed += 1;
            unflushed += bytes.len() + 1;
            if unflushed >= FLUSH_EVERY {
                flush(out, &mut t)?;
                unflushed = 0;
            }
        }
        Ok(())
    })();
    // Whatever happened, what was printed so far counts as read (if it can be flushed).
    let flushed = flush(out, &mut t);
    result.and(flushed)
}

fn stat(args: &QueueStatArgs, out: &mut dyn Write) -> Result<()> {
    let st = queue::stat(&args.dir)?;
    let text = if args.json {
        render_json(&st)
    } else {
        render_text(&st)
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}

fn render_text(st: &QueueStat) -> String {
    let mut s = String::new();
    // Every value through `escaped`: the queue's path, and the names of its files and
    // tailers (and the problems that quote them), come from the file system.
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<16}{}\n", escaped(&v)));
    line("queue:", st.dir.display().to_string());
    line("segment size:", human(st.segment_size));
    line("index interval:", format!("{} records", st.index_interval));
    line("max record:", human(st.max_payload));
    line(
        "records:",
        match st.first_seq {
            Some(first) if st.next_seq > first => format!(
                "{} (sequence numbers {first} to {})",
                st.records(),
                st.next_seq - 1
            ),
            _ => format!("none (the next is sequence number {})", st.next_seq),
        },
    );
    let sealed = st.segments.iter().filter(|s| s.sealed).count();
    line(
        "segments:",
        match (st.segments.first(), st.segments.last()) {
            (Some(a), Some(b)) => format!(
                "{} ({} on disk), numbers {} to {}, {sealed} sealed",
                st.segments.len(),
                human(st.disk_bytes()),
                a.number,
                b.number
            ),
            _ => "none".to_string(),
        },
    );
    for seg in &st.segments {
        if let Some(why) = &seg.problem {
            line("damaged:", format!("segment {}: {why}", seg.number));
        }
    }
    for d in &st.damaged {
        line(
            "set aside:",
            format!("{}, {}", file_name(&d.path), human(d.bytes)),
        );
    }
    line(
        "appender:",
        match st.appender {
            Some(pid) => format!("running (pid {pid})"),
            None => "none".to_string(),
        },
    );
    if st.tailers.is_empty() {
        line("tailers:", "none".to_string());
    }
    for t in &st.tailers {
        let v = match &t.problem {
            Some(why) => format!("{}: damaged: {why}", t.name),
            None => format!(
                "{}: next {}, {} behind{}",
                t.name,
                t.next_seq,
                st.next_seq.saturating_sub(t.next_seq),
                if t.active { ", active" } else { "" }
            ),
        };
        line("tailer:", v);
    }
    s
}

fn json_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn render_json(st: &QueueStat) -> String {
    let segments: Vec<String> = st
        .segments
        .iter()
        .map(|s| {
            format!(
                "{{\"number\":{},\"path\":{},\"first_seq\":{},\"sealed\":{},\"created_ns\":{},\
                 \"sealed_ns\":{},\"problem\":{}}}",
                s.number,
                json_str(&s.path.display().to_string()),
                s.first_seq,
                s.sealed,
                s.created_ns,
                s.sealed_ns,
                json_opt(s.problem.as_deref().map(json_str))
            )
        })
        .collect();
    let tailers: Vec<String> = st
        .tailers
        .iter()
        .map(|t| {
            format!(
                "{{\"name\":{},\"next_seq\":{},\"active\":{},\"problem\":{}}}",
                json_str(&t.name),
                t.next_seq,
                t.active,
                json_opt(t.problem.as_deref().map(json_str))
            )
        })
        .collect();
    let damaged: Vec<String> = st
        .damaged
        .iter()
        .map(|d| {
            format!(
                "{{\"segment\":{},\"path\":{},\"set_aside_ns\":{},\"bytes\":{}}}",
                d.segment,
                json_str(&d.path.display().to_string()),
                d.set_aside_ns,
                d.bytes
            )
        })
        .collect();
    format!(
        "{{\"dir\":{},\"segment_size\":{},\"index_interval\":{},\"max_payload\":{},\
         \"first_seq\":{},\"next_seq\":{},\"records\":{},\"disk_bytes\":{},\"appender_pid\":{},\
         \"segments\":[{}],\"tailers\":[{}],\"damaged\":[{}],\"damaged_bytes\":{}}}\n",
        json_str(&st.dir.display().to_string()),
        st.segment_size,
        st.index_interval,
        st.max_payload,
        json_opt(st.first_seq),
        st.next_seq,
        st.records(),
        st.disk_bytes(),
        json_opt(st.appender),
        segments.join(","),
        tailers.join(","),
        damaged.join(","),
        st.damaged_bytes()
    )
}

fn verify(args: &QueueVerifyArgs, out: &mut dyn Write) -> Result<()> {
    let report = queue::verify(&args.dir)?;
    let mut text = String::new();
    // The problems and notes name the queue's files, whose names come from the directory.
    for p in &report.problems {
        text.push_str(&format!("{}\n", shown(p)));
    }
    for n in &report.notes {
        text.push_str(&format!("note: {}\n", shown(n)));
    }
    let range = match report.first_seq {
        Some(first) if report.next_seq > first => {
            format!(" (sequence numbers {first} to {})", report.next_seq - 1)
        }
        _ => String::new(),
    };
    text.push_str(&format!(
        "checked {} segments, {} valid records{range}: {}\n",
        report.segments,
        report.records,
        match report.problems.len() {
            0 => "no damage".to_string(),
            1 => "1 damaged record or segment".to_string(),
            n => format!("{n} damaged records or segments"),
        }
    ));
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    if !report.is_ok() {
        out.flush().context("cannot write to standard output")?;
        bail!(
            "{} is damaged: {} problem{} found (listed above)",
            quoted(&args.dir),
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn retain(args: &QueueRetainArgs, out: &mut dyn Write) -> Result<()> {
    let mut r = Retention::new();
    r.force(args.force);
    if let Some(n) = args.max_segments {
        r.max_segments(n);
    }
    if let Some(age) = args.max_age {
        r.max_age(age);
    }
    if let Some(bytes) = args.max_bytes {
        r.max_bytes(bytes);
    }
    if let Some(timeout) = args.lock_timeout {
        r.lock_timeout(timeout);
    }
    let report = queue::retain(&args.dir, &r).map_err(|e| match e {
        queue::RetainError::RetentionLockTimeout { .. }
        | queue::RetainError::PositionLockTimeout { .. } => lock_timed_out(&e),
        e => e.into(),
    })?;
    let mut text = String::new();
    for path in &report.deleted {
        text.push_str(&format!("deleted {}\n", escaped(&file_name(path))));
    }
    for path in &report.removed_tmp {
        text.push_str(&format!(
            "removed {}, left by a process killed while creating a file of the queue\n",
            escaped(&file_name(path))
        ));
    }
    if let Some((name, pos, n)) = &report.kept_for_tailer {
        text.push_str(&format!(
            "kept {n} segment{} that tailer `{name}` has not finished (it is at sequence \
             number {pos}); --force deletes them anyway\n",
            if *n == 1 { "" } else { "s" },
            name = escaped(name)
        ));
    }
    text.push_str(&format!(
        "{} segment{} left{}\n",
        report.remaining,
        if report.remaining == 1 { "" } else { "s" },
        report
            .first_seq
            .map_or(String::new(), |f| format!(", from sequence number {f}"))
    ));
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}

/// A wait for one of the queue's locks that timed out: status 3, as other timeouts, with
/// the library's message (it names `queue.meta` and who holds the lock).
fn lock_timed_out(e: &dyn std::fmt::Display) -> anyhow::Error {
    Exit {
        code: 3,
        message: format!("{e}; --lock-timeout sets how long to wait"),
    }
    .into()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn remove_damaged(args: &QueueRemoveDamagedArgs, out: &mut dyn Write) -> Result<()> {
    let mut opts = RemoveDamagedOptions::new();
    if let Some(timeout) = args.lock_timeout {
        opts.lock_timeout(timeout);
    }
    let removed = queue::remove_damaged_with(&args.dir, &opts).map_err(|e| match e {
        queue::RemoveDamagedError::RetentionLockTimeout { .. } => lock_timed_out(&e),
        e => e.into(),
    })?;
    let mut text = String::new();
    for d in &removed {
        text.push_str(&format!(
            "removed {}, {}\n",
            escaped(&file_name(&d.path)),
            human(d.bytes)
        ));
    }
    text.push_str(&match removed.len() {
        0 => "no set-aside segments\n".to_string(),
        1 => "1 set-aside segment removed\n".to_string(),
        n => format!("{n} set-aside segments removed\n"),
    });
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}
