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
