//! `mapipc info FILE [--json]`: what a file is and how it would be mapped.

use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mapipc::map::{MapError, MapOptions};

use super::{describe_file_type, escaped, has_contents, json_str, json_text, quoted};
use crate::cli::InfoArgs;
use crate::format::{self, Format};
use crate::size::human;

/// Everything `info` reports.
struct Info {
    path: PathBuf,
    /// Where a symbolic link given as FILE points.
    link_target: Option<PathBuf>,
    kind: &'static str,
    regular: bool,
    size: u64,
    uid: u32,
    user: Option<String>,
    gid: u32,
    group: Option<String>,
    mode: u32,
    page_size: u64,
    /// Why a regular file cannot be mapped although its size says it could be (a file
    /// generated on read, a file system without mmap).
    unmappable: Option<String>,
    format: Sniffed,
    /// Validated header fields of a mapipc file, in display order.
    header: Vec<(&'static str, serde_json::Value)>,
    /// What is wrong with a recognised mapipc file whose header (or content) fails
    /// validation; `None` for a sound one, a plain file, or one `info` could not look into
    /// for other reasons (permissions, a queue file outside its queue).
    damage: Option<String>,
}

/// Header fields, and the damage they report if any.
type Fields = (Vec<(&'static str, serde_json::Value)>, Option<String>);

/// What the first bytes say.
enum Sniffed {
    /// Not looked at: not a regular file, or empty.
    NotApplicable,
    /// Recognized (or plain).
    Known(Format),
    /// The file could not be mapped to look (e.g. no read permission).
    Unreadable(String),
}

/// How the file would be mapped.
#[derive(Debug)]
struct Mapping {
    /// Pages of address space a whole-file mapping takes.
    pages: u64,
    page_aligned: bool,
    /// Bytes of the file in its last page (a full page when aligned).
    last_page_used: u64,
}

impl Info {
    fn mapping(&self) -> Result<Mapping, String> {
        if !self.regular {
            return Err("not mappable: only regular files can be mapped".to_string());
        }
        if let Some(why) = &self.unmappable {
            return Err(format!("not mappable: {why}"));
        }
        if self.size == 0 {
            return Err(
                "not mappable: the file is empty (0 bytes) and a mapping needs at least one \
                 byte; size it first, e.g. `mapipc write FILE --offset 0 --create SIZE DATA`"
                    .to_string(),
            );
        }
        let tail = self.size % self.page_size;
        Ok(Mapping {
            pages: self.size.div_ceil(self.page_size),
            page_aligned: tail == 0,
            last_page_used: if tail == 0 { self.page_size } else { tail },
        })
    }
}

/// Runs `mapipc info`.
pub fn run(args: &InfoArgs, out: &mut dyn Write) -> Result<()> {
    let info = gather(&args.file)?;
    let text = if args.json {
        render_json(&info)
    } else {
        render_text(&info)
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    // A file whose mapipc header is recognised but fails validation is described above (what
    // could be read, and what is wrong) and is still an error: exit non-zero, as every other
    // command does on a damaged file. A plain file is described, not an error.
    if let Some(why) = &info.damage {
        bail!("{why}");
    }
    Ok(())
}

fn gather(path: &Path) -> Result<Info> {
    let meta = std::fs::metadata(path).with_context(|| {
        // `chan create NAME` and `region create NAME` put a bare NAME in /dev/shm, while
        // `info` takes a path: point at the file the user probably means.
        let shm = Path::new("/dev/shm").join(path);
        let link = std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.file_type().is_symlink())
            .then(|| std::fs::read_link(path).ok())
            .flatten();
        if let Some(target) = link {
            // The link is there; what is missing (or refused) is what it points to.
            format!(
                "cannot open {}, a symbolic link to {}",
                quoted(path),
                quoted(&target)
            )
        } else if path.components().count() == 1 && path.is_relative() && shm.exists() {
            format!(
                "cannot open {} (channels and regions created by a bare name are in \
                 /dev/shm: `mapipc info {}`)",
                quoted(path),
                escaped(&shm.to_string_lossy())
            )
        } else {
            format!("cannot open {}", quoted(path))
        }
    })?;
    let link_target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(path).ok(),
        _ => None,
    };
    let regular = meta.is_file();
    let size = meta.len();
    // A directory is a queue when its metadata file is a queue's.
    let queue_meta = path.join("queue.meta");
    let mut unmappable = None;
    let format = if regular && size > 0 {
        let (sniffed, why) = sniff_file(path, size);
        unmappable = why;
        sniffed
    } else if regular && has_contents(path) {
        // A file of /proc says 0 bytes and is generated on read: neither empty nor mappable.
        unmappable = Some(
            "the file reports a size of 0 bytes but is generated on read (as \
             the files of /proc are); read it with `cat`"
                .to_string(),
        );
        Sniffed::NotApplicable
    } else if meta.is_dir() {
        match std::fs::metadata(&queue_meta) {
            Ok(m) if m.is_file() && m.len() > 0 => match sniff_file(&queue_meta, m.len()).0 {
                Sniffed::Known(Format::QueueMeta) => Sniffed::Known(Format::QueueDir),
                // Maybe a queue, whose metadata we may not read: say so, not "nothing to
                // read".
                unreadable @ Sniffed::Unreadable(_) => unreadable,
                _ => Sniffed::NotApplicable,
            },
            _ => Sniffed::NotApplicable,
        }
    } else {
        Sniffed::NotApplicable
    };
    // The header is read from the link's target: regions refuse to be opened through a
    // symbolic link (a writer could be led elsewhere), which does not apply to reading it,
    // and a queue file's queue is the target's directory.
    let target = match &link_target {
        Some(_) => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        None => path.to_path_buf(),
    };
    let (header, damage) = match format {
        Sniffed::Known(Format::Region) => header_fields(&target),
        Sniffed::Known(Format::QueueMeta | Format::QueueSegment | Format::QueueTailer) => {
            queue_fields(&target)
        }
        Sniffed::Known(Format::QueueDir) => queue_fields(&target.join("queue.meta")),
        _ => (Vec::new(), None),
    };
    Ok(Info {
        path: path.to_path_buf(),
        link_target,
        kind: describe_file_type(&meta.file_type()),
        regular,
        size,
        uid: meta.uid(),
        user: name_of("/etc/passwd", meta.uid()),
        gid: meta.gid(),
        group: name_of("/etc/group", meta.gid()),
        mode: meta.permissions().mode() & 0o7777,
        page_size: mapipc::os::mem::page_size() as u64,
        unmappable,
        format,
        header,
        damage,
    })
}

/// Opens a region file through the library (validating its header) and lists its fields,
/// and those of the channel inside it, if any. A damaged header is reported as a field, and
/// as the damage.
fn header_fields(path: &Path) -> Fields {
    use mapipc::region::OpenError;
    use serde_json::json;
    // Read-only, and another user's file is fine: nothing is written to it.
    let region = match mapipc::region::RegionOptions::new()
        .read_only(true)
        .allow_foreign_owner(true)
        .open(path)
    {
        Ok(r) => r,
        Err(e) => {
            let damaged = matches!(e, OpenError::Invalid(_)).then(|| e.to_string());
            return (vec![("header error", json!(e.to_string()))], damaged);
        }
    };
    let mut f = Vec::new();
    match region.info() {
        Ok(i) => {
            let created = humantime::format_rfc3339_seconds(i.created).to_string();
            f.push(("region version", json!(i.version)));
            f.push(("region size", json!(i.total_size)));
            f.push(("data offset", json!(i.data_offset)));
            f.push(("data length", json!(i.data_len)));
            f.push(("created", json!(created)));
            f.push(("creator pid", json!(i.creator_pid)));
            f.push(("generation", json!(i.generation)));
            f.push(("content kind", json!(format!("{:#x}", i.content_kind))));
            f.push(("peer slots", json!(i.max_peers)));
            if i.content_kind == mapipc::channel::REGION_CONTENT_CHANNEL {
                let (c, damage) = channel_fields(region, path);
                f.extend(c);
                return (f, damage);
            }
        }
        Err(e) => {
            f.push(("header error", json!(e.to_string())));
            return (f, Some(e.to_string()));
        }
    }
    if let Ok(peers) = region.peers() {
        let live = peers.iter().filter(|p| p.alive).count();
        f.push((
            "peers",
            json!(format!("{live} alive, {} dead", peers.len() - live)),
        ));
    }
    (f, None)
}

/// The queue a file belongs to (its directory), summarised through the library's `stat`.
/// Damage is a queue file that fails validation; a file outside its queue (a copy: no
/// `queue.meta` next to it) is only described.
fn queue_fields(path: &Path) -> Fields {
    use mapipc::queue::InspectError;
    use serde_json::json;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match mapipc::queue::stat(&dir) {
        Ok(st) => {
            let mut f = vec![
                ("queue", json!(dir.display().to_string())),
                ("records", json!(st.records())),
                ("disk bytes", json!(st.disk_bytes())),
            ];
            // A segment or tailer file that fails validation is damage; one we may not read
            // is only reported (another user's queue). Something other than a regular file
            // (a FIFO in place of a segment) is damage, and is not opened: opening a FIFO
            // for reading waits for a writer (the open is non-blocking too, in case the
            // file is replaced by one meanwhile).
            let unreadable = |path: &Path| {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::metadata(path).is_ok_and(|m| m.is_file())
                    && std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(path)
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
            };
            let mut problems = Vec::new();
            let mut damage = None;
            let segments = st.segments.iter().filter_map(|seg| {
                let p = seg.problem.as_ref()?;
                Some((format!("segment {}: {p}", seg.number), &seg.path))
            });
            let tailers = st.tailers.iter().filter_map(|t| {
                let p = t.problem.as_ref()?;
                Some((format!("tailer `{}`: {p}", t.name), &t.path))
            });
            for (line, path) in segments.chain(tailers) {
                if damage.is_none() && !unreadable(path) {
                    damage = Some(format!("queue {}: {line}", quoted(&dir)));
                }
                problems.push(line);
            }
            if !problems.is_empty() {
                f.push(("queue problems", json!(problems.join("; "))));
            }
            (f, damage)
        }
        Err(e) => {
            let damaged = matches!(e, InspectError::BadMeta { .. } | InspectError::Access(_))
                .then(|| e.to_string());
            (vec![("queue error", json!(e.to_string()))], damaged)
        }
    }
}

fn channel_fields(region: mapipc::region::Region, path: &Path) -> Fields {
    use mapipc::channel::ChannelOpenError;
    use serde_json::json;
    let chan = match mapipc::channel::Channel::from_region(region) {
        Ok(c) => c,
        Err(e) => {
            let damaged = matches!(
                e,
                ChannelOpenError::BadHeader { .. }
                    | ChannelOpenError::Corrupted { .. }
                    | ChannelOpenError::Truncated { .. }
                    | ChannelOpenError::PageUnavailable { .. }
            )
            .then(|| e.to_string());
            return (vec![("channel error", json!(e.to_string()))], damaged);
        }
    };
    let st = chan.stat();
    let end = |e: &mapipc::channel::EndStat| {
        if !e.attached {
            "not attached".to_string()
        } else {
            format!(
                "{}, pid {}{}",
                if e.alive { "alive" } else { "dead" },
                e.pid,
                if e.parked { ", parked" } else { "" }
            )
        }
    };
    let fields = vec![
        ("channel", json!(st.kind.to_string())),
        ("capacity", json!(st.capacity)),
        ("max message", json!(st.max_message)),
        ("bytes in use", json!(st.bytes_used)),
        ("sent", json!(st.sent)),
        ("received", json!(st.received)),
        ("producer", json!(end(&st.producer))),
        ("consumer", json!(end(&st.consumer))),
    ];
    // Positions no honest end writes (a race-free check: see `Channel::stat`).
    let damage = (!st.positions_valid).then(|| {
        format!(
            "{}: the shared positions are inconsistent: the channel is corrupted",
            quoted(path)
        )
    });
    (fields, damage)
}

/// Maps the first bytes (read-only, through the library) and identifies the format; and
/// says why the file cannot be mapped at all if its file system refused (as `/sys` does),
/// which its size does not show.
fn sniff_file(path: &Path, size: u64) -> (Sniffed, Option<String>) {
    let len = format::SNIFF_LEN.min(usize::try_from(size).unwrap_or(usize::MAX));
    let map = match MapOptions::new().len(len).map_path(path) {
        Ok(map) => map,
        Err(e) => {
            let unmappable = match &e {
                MapError::NotMappable { source, .. } => Some(format!(
                    "its file system does not support mmap (files generated on read, as in \
                     /sys, cannot be mapped; read it with `cat`): {source}"
                )),
                _ => None,
            };
            return (Sniffed::Unreadable(e.to_string()), unmappable);
        }
    };
    match map.read_vec(0, len) {
        Ok(head) => (Sniffed::Known(format::sniff(&head)), None),
        Err(e) => (Sniffed::Unreadable(e.to_string()), None),
    }
}

/// The name for `id` in an `/etc/passwd`-style file (`name:x:id:...`), if listed.
fn name_of(db: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(db).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let found: u32 = fields.nth(1)?.parse().ok()?;
        (found == id).then(|| name.to_string())
    })
}

/// `-rw-------`-style permission string (without the type letter).
fn mode_string(mode: u32) -> String {
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let exec =
        |x: u32, special: u32, set: char, unset: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        };
    [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect()
}

fn id_text(name: &Option<String>, kind: &str, id: u32) -> String {
    match name {
        Some(name) => format!("{name} ({kind} {id})"),
        None => format!("{kind} {id}"),
    }
}

fn render_text(info: &Info) -> String {
    let mut s = String::new();
    // Every value through `escaped`: the file's name, a link's target, and header fields
    // or errors that quote names come from the file system.
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(s, "{:<14} {}", format!("{label}:"), escaped(value));
    };
    line("file", &info.path.display().to_string());
    if let Some(target) = &info.link_target {
        line("link to", &target.display().to_string());
    }
    line("type", info.kind);
    line("size", &human(info.size));
    line(
        "owner",
        &format!(
            "{}, group {}",
            id_text(&info.user, "uid", info.uid),
            id_text(&info.group, "gid", info.gid)
        ),
    );
    line(
        "mode",
        &format!("{:04o} ({})", info.mode, mode_string(info.mode)),
    );
    line("page size", &human(info.page_size));
    match info.mapping() {
        Ok(m) => {
            let pages = if m.pages == 1 { "page" } else { "pages" };
            let alignment = if m.page_aligned {
                "the size is page-aligned: every mapped byte is in the file".to_string()
            } else {
                format!(
                    "the size is not page-aligned: the last page holds {} of its {} bytes; the \
                     rest reads as zeros and is not part of the file",
                    m.last_page_used, info.page_size
                )
            };
            line(
                "mapping",
                &format!(
                    "{} {pages} = {} bytes of address space; {alignment}",
                    m.pages,
                    m.pages * info.page_size
                ),
            );
        }
        Err(why) => line("mapping", &why),
    }
    match &info.format {
        Sniffed::NotApplicable => line("format", "none (nothing to read)"),
        Sniffed::Known(f) => line("format", f.describe()),
        Sniffed::Unreadable(e) => line("format", &format!("unknown: cannot read the header: {e}")),
    }
    for (k, v) in &info.header {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        line(k, &v);
    }
    s
}

fn json_opt_str(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_string(), json_str)
}

/// One JSON object, keys in a fixed order; numbers are plain JSON numbers.
fn render_json(info: &Info) -> String {
    let mapping = match info.mapping() {
        Ok(m) => format!(
            "{{\"mappable\":true,\"pages\":{},\"mapped_bytes\":{},\"page_aligned\":{},\
             \"last_page_used\":{},\"reason\":null}}",
            m.pages,
            m.pages * info.page_size,
            m.page_aligned,
            m.last_page_used
        ),
        Err(why) => format!(
            "{{\"mappable\":false,\"pages\":0,\"mapped_bytes\":0,\"page_aligned\":null,\
             \"last_page_used\":null,\"reason\":{}}}",
            json_str(&why)
        ),
    };
    let format = match &info.format {
        Sniffed::NotApplicable => "null".to_string(),
        Sniffed::Known(f) => format!(
            "{{\"id\":{},\"description\":{}}}",
            json_str(f.id()),
            json_str(f.describe())
        ),
        Sniffed::Unreadable(e) => format!(
            "{{\"id\":\"unknown\",\"description\":{}}}",
            json_str(&format!("cannot read the header: {e}"))
        ),
    };
    let link = info.link_target.as_ref().map(|t| t.display().to_string());
    let header = if info.header.is_empty() {
        "null".to_string()
    } else {
        let map: serde_json::Map<String, serde_json::Value> = info
            .header
            .iter()
            .map(|(k, v)| (k.replace(' ', "_"), v.clone()))
            .collect();
        json_text(&serde_json::Value::Object(map))
    };
    format!(
        "{{\"file\":{},\"link_to\":{},\"type\":{},\"size\":{},\"uid\":{},\"user\":{},\
         \"gid\":{},\"group\":{},\"mode\":{},\"page_size\":{},\"mapping\":{mapping},\
         \"format\":{format},\"header\":{header}}}\n",
        json_str(&info.path.display().to_string()),
        json_opt_str(link.as_deref()),
        json_str(info.kind.trim_start_matches("a ")),
        info.size,
        info.uid,
        json_opt_str(info.user.as_deref()),
        info.gid,
        json_opt_str(info.group.as_deref()),
        json_str(&format!("{:04o}", info.mode)),
        info.page_size,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_like_ls() {
        assert_eq!(mode_string(0o600), "rw-------");
        assert_eq!(mode_string(0o755), "rwxr-xr-x");
        assert_eq!(mode_string(0o4755), "rwsr-xr-x");
        assert_eq!(mode_string(0o2644), "rw-r-Sr--");
        assert_eq!(mode_string(0o1777), "rwxrwxrwt");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(json_str("\x7f\u{9b}2J"), "\"\\u007f\\u009b2J\"");
        assert_eq!(json_opt_str(None), "null");
    }

    fn info(size: u64, regular: bool) -> Info {
        Info {
            path: PathBuf::from("f"),
            link_target: None,
            kind: "a regular file",
            regular,
            size,
            uid: 0,
            user: None,
            gid: 0,
            group: None,
            mode: 0o600,
            page_size: 4096,
            unmappable: None,
            format: Sniffed::NotApplicable,
            header: Vec::new(),
            damage: None,
        }
    }

    #[test]
    fn mapping_geometry() {
        let m = info(10_000, true).mapping().unwrap();
        assert_eq!(
            (m.pages, m.page_aligned, m.last_page_used),
            (3, false, 1808)
        );
        let m = info(8192, true).mapping().unwrap();
        assert_eq!((m.pages, m.page_aligned, m.last_page_used), (2, true, 4096));
        let m = info(1, true).mapping().unwrap();
        assert_eq!((m.pages, m.page_aligned, m.last_page_used), (1, false, 1));
        assert!(info(0, true).mapping().unwrap_err().contains("empty"));
        assert!(info(10, false).mapping().unwrap_err().contains("regular"));
    }
}
