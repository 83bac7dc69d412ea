//! `mapipc queue ...` at its edges: a follower whose output reader goes away, and
//! a queue with a segment missing in the middle. Every test runs the built executable as a
//! real process under a watchdog that kills it after [`TIMEOUT`] and fails the test; no
//! assertion depends on timing.

use std::io::BufRead;
use std::process::Stdio;

mod common;

use common::*;

clitest!(
    queue_tail_follow_ends_when_the_reader_of_its_output_goes_away,
    |dir| {
        // `mapipc queue tail q --follow | head -1`: once head has its line and exits, the
        // follower must end (status 0, as on any closed pipe) while it waits, not only when
        // the next record comes, which may be never.
        dir.run(&["queue", "append", "q", "only"]).ok();
        let mut cmd = dir.command(&["queue", "tail", "q", "--follow", "--name", "w"]);
        cmd.stdin(Stdio::null());
        let mut follower = cmd.spawn().expect("spawn mapipc");
        let mut first = String::new();
        {
            let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap());
            lines.read_line(&mut first).unwrap();
        } // the reader goes away
        assert_eq!(first, "only\n");
        finish(follower, None).ok();
        // What was printed counts as read.
        let out = dir.run(&["queue", "tail", "q", "--name", "w"]);
        out.ok();
        assert!(out.stdout.is_empty(), "{}", out.stdout_str());
    }
);

/// The segment files of the queue `q`, oldest first.
fn segments(dir: &TestDir) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.path("q"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".seg"))
        .collect();
    v.sort();
    v
}

clitest!(queue_tail_reports_a_segment_missing_in_the_middle, |dir| {
    // A deleted middle segment used to make `queue tail` spin for ever at the gap (and
    // `--from` a record after it say "past the end"): the records after the gap exist, so
    // the gap is damage, reported on one `error:` line.
    let lines: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    dir.run_with_stdin(
        &["queue", "append", "q", "--segment-size", "64KiB"],
        lines.as_bytes(),
    )
    .ok();
    let segs = segments(&dir);
    assert!(segs.len() > 4, "{segs:?}");
    std::fs::remove_file(&segs[2]).unwrap();

    for args in [
        &["queue", "tail", "q"][..],
        &["queue", "tail", "q", "--follow"][..],
    ] {
        let out = dir.run(args);
        let line = out.error().to_string();
        assert!(
            line.contains("missing") && line.contains("00000000000000000002.seg"),
            "{line}"
        );
        let printed = out.stdout_str();
        let n = printed.lines().count();
        assert!(n > 0, "the records before the gap are printed");
        assert_eq!(printed.lines().last(), Some(format!("{}", n - 1).as_str()));
    }
    // A record inside the gap: damage, not "past the end".
    let out = dir.run(&["queue", "tail", "q", "--from", "5000"]);
    let line = out.error();
    assert!(line.contains("missing"), "{line}");
    // `verify` names the gap too.
    let out = dir.run(&["queue", "verify", "q"]);
    assert!(out.error().contains("damaged"));
    assert!(out.stdout_str().contains("missing"), "{}", out.stdout_str());
});

/// The names in the queue `q`, sorted.
fn files(dir: &TestDir) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir.path("q"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

clitest!(
    stat_lists_a_segment_recovery_set_aside_and_remove_damaged_deletes_it,
    |dir| {
        use std::os::unix::fs::FileExt;
        let lines: String = (0..6_000).map(|i| format!("record {i}\n")).collect();
        dir.run_with_stdin(
            &["queue", "append", "q", "--segment-size", "64KiB"],
            lines.as_bytes(),
        )
        .ok();
        let segs = segments(&dir);
        let n = segs.len();
        assert!(n >= 3, "{segs:?}");
        // What a machine crash can leave: the end marker of the segment before the last
        // lost (its offset is at 88 in the header), and the last one's header page.
        let zero = |path: &std::path::Path, offset: u64, len: usize| {
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.write_all_at(&vec![0; len], offset).unwrap();
        };
        let header = std::fs::read(&segs[n - 2]).unwrap();
        zero(
            &segs[n - 2],
            u64::from_ne_bytes(header[88..96].try_into().unwrap()),
            24,
        );
        zero(&segs[n - 1], 0, 4096);
        // The next appender's recovery sets the last segment aside.
        let out = dir.run(&["queue", "append", "q", "after"]);
        assert!(out.status.success(), "{}", out.stderr);
        assert!(out.stderr.contains(" aside as "), "{}", out.stderr);
        let before = files(&dir);
        let set_aside: Vec<&String> = before
            .iter()
            .filter(|f| f.contains(".seg.damaged-"))
            .collect();
        let [name] = set_aside[..] else {
            panic!("{before:?}")
        };
        let name = name.clone();
        assert!(
            name.starts_with(&format!("{:020}.seg.damaged-", n - 1)),
            "{name}"
        );
        dir.write(&format!("q/{name}.bak"), b"not a set-aside segment");
        let before = files(&dir);

        let text = dir.run(&["queue", "stat", "q"]).ok().stdout_str();
        assert!(
            text.contains(&format!("set aside:      {name}, 65536 bytes (64.0 KiB)")),
            "{text}"
        );
        let out = dir.run(&["queue", "stat", "q", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.ok().stdout).unwrap();
        assert_eq!(v["damaged_bytes"], 65536, "{v}");
        assert_eq!(v["damaged"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["damaged"][0]["segment"], n as u64 - 1);
        assert_eq!(v["damaged"][0]["bytes"], 65536);
        let path = v["damaged"][0]["path"].as_str().unwrap().to_string();
        assert!(path.ends_with(&format!("q/{name}")), "{path}");

        let out = dir.run(&["queue", "remove-damaged", "q"]);
        assert_eq!(
            out.ok().stdout_str(),
            format!("removed {name}, 65536 bytes (64.0 KiB)\n1 set-aside segment removed\n")
        );
        let expected: Vec<String> = before.into_iter().filter(|f| *f != name).collect();
        assert_eq!(files(&dir), expected);
        let out = dir.run(&["queue", "remove-damaged", "q"]);
        assert_eq!(out.ok().stdout_str(), "no set-aside segments\n");
        let text = dir.run(&["queue", "stat", "q"]).ok().stdout_str();
        assert!(!text.contains("set aside"), "{text}");
        // Not a queue: an error, and nothing there is deleted.
        std::fs::create_dir(dir.path("elsewhere")).unwrap();
        dir.write(&format!("elsewhere/{name}"), b"x");
        let out = dir.run(&["queue", "remove-damaged", "elsewhere"]);
        assert!(out.error().contains("not a queue"), "{}", out.stderr);
        assert!(dir.path(&format!("elsewhere/{name}")).exists());
    }
);
