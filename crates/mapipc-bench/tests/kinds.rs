//! The scaling harness end to end (issue 5): every scenario runs in real processes, every
//! message is checked, and the rows account for every message exactly once. Nothing asserts
//! on the figures themselves. Each scenario is bounded by the harness's own watchdog (60 s in
//! the smoke preset), which kills its processes.

use std::sync::Mutex;

use mapipc::channel::Policy;
use mapipc_bench::channel::Mode;
use mapipc_bench::kinds::{run_kinds, KindsConfig, KindsError, KindsRow, Scenario};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_row(r: &KindsRow) {
    let label = r.label();
    assert!(
        r.msgs_per_s.is_finite() && r.msgs_per_s > 0.0,
        "{label}: {r:?}"
    );
    assert!(
        r.deliveries_per_s > 0.0 && r.gb_per_s > 0.0,
        "{label}: {r:?}"
    );
    assert_eq!(r.receivers_msgs_per_s.len(), r.receivers, "{label}");
    assert!(
        r.receivers_msgs_per_s
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0),
        "{label}: {r:?}"
    );
    assert_eq!(r.placement.len(), r.processes, "{label}");
    assert_eq!(r.processes, r.senders + r.receivers, "{label}");
    assert!(r.sent_total > 0, "{label}");
    // Every message sent is received exactly once by every receiver, or reported missed.
    for (got, missed) in r.received_total.iter().zip(&r.missed_total) {
        assert_eq!(got + missed, r.sent_total, "{label}: {r:?}");
        if r.policy.as_deref() != Some("lossy") {
            assert_eq!(*missed, 0, "{label}");
        }
    }
    assert_eq!(r.producer_shares.len(), r.senders, "{label}");
    let shares: f64 = r.producer_shares.iter().sum();
    assert!(
        (shares - 1.0).abs() < 1e-9,
        "{label}: {:?}",
        r.producer_shares
    );
}

#[test]
fn every_issue5_scenario_runs_and_accounts_for_every_message() {
    let _g = serial();
    let config = KindsConfig::smoke();
    let report = run_kinds(&config, &|_, _, _| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.rows.len(), Scenario::issue5().len());
    assert!(report.failures.is_empty());
    for r in &report.rows {
        check_row(r);
        assert_eq!((r.mode.as_str(), r.size), ("park", 64));
    }
    let mpsc4 = report
        .row(&Scenario::Mpsc { producers: 4 }, Mode::Park)
        .unwrap();
    assert_eq!((mpsc4.senders, mpsc4.receivers, mpsc4.processes), (4, 1, 5));
    let table = report.table();
    for s in Scenario::issue5() {
        assert!(table.contains(&s.label()), "{table}");
    }
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 10);
    assert_eq!(json["rows"][9]["policy"], "lossy");
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn busy_polling_and_unpinned_runs_work_too() {
    let _g = serial();
    let config = KindsConfig {
        scenarios: vec![
            Scenario::Spsc,
            Scenario::Mpsc { producers: 3 },
            Scenario::Broadcast {
                subscribers: 3,
                policy: Policy::Lossless,
            },
        ],
        modes: vec![Mode::Spin],
        size: 200,
        pin: false,
        ..KindsConfig::smoke()
    };
    let report = run_kinds(&config, &|_, _, _| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.rows.len(), 3);
    for r in &report.rows {
        check_row(r);
        assert_eq!((r.mode.as_str(), r.size), ("spin", 200));
        assert!(r.placement.iter().all(Option::is_none));
    }
}

#[test]
fn bad_configurations_are_refused() {
    let mut c = KindsConfig::smoke();
    c.size = 16;
    assert!(matches!(
        run_kinds(&c, &|_, _, _| {}),
        Err(KindsError::Config(_))
    ));
    let mut c = KindsConfig::smoke();
    c.scenarios = vec![Scenario::Broadcast {
        subscribers: 65,
        policy: Policy::Lossy,
    }];
    let err = run_kinds(&c, &|_, _, _| {}).unwrap_err();
    assert!(err.to_string().contains("1 to 64"), "{err}");
    let mut c = KindsConfig::smoke();
    c.modes.clear();
    assert!(run_kinds(&c, &|_, _, _| {}).is_err());
    // The report gives the duration in whole milliseconds: it would say 0 ms.
    let mut c = KindsConfig::smoke();
    c.duration = std::time::Duration::from_micros(500);
    let err = run_kinds(&c, &|_, _, _| {}).unwrap_err();
    assert!(err.to_string().contains("at least 1 ms"), "{err}");
}

/// Set in the copy of this test binary that [`runs_when_started_with_sigchld_ignored`] starts.
const SIGCHLD_IGNORED: &str = "MAPIPC_BENCH_TEST_SIGCHLD_IGNORED";

#[test]
fn runs_when_started_with_sigchld_ignored() {
    // A program whose parent ignored SIGCHLD inherits that across exec; the kernel then reaps
    // children by itself and `waitpid` fails with ECHILD. The harness must undo it. The check
    // runs in a fresh copy of this binary started that way, so no other test is affected.
    if std::env::var_os(SIGCHLD_IGNORED).is_some() {
        let mut config = KindsConfig::smoke();
        config.scenarios = vec![Scenario::Mpsc { producers: 2 }];
        let report = run_kinds(&config, &|_, _, _| {}).unwrap_or_else(|e| panic!("{e}"));
        check_row(&report.rows[0]);
        return;
    }
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "runs_when_started_with_sigchld_ignored",
        "--test-threads=1",
    ])
    .env(SIGCHLD_IGNORED, "1")
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls signal(2),
    // which is async-signal-safe, with constant arguments.
    unsafe {
        cmd.pre_exec(|| {
            if libc::signal(libc::SIGCHLD, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("start a copy of the test binary");
    // Watchdog: kill the copy if it has not finished after a generous minute.
    let pid = child.id();
    let (done, rx) = std::sync::mpsc::channel::<()>();
    let dog = std::thread::spawn(move || {
        if rx.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
            // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our child, not yet
            // reaped (the main thread is still waiting for it), so it cannot be recycled.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return true;
        }
        false
    });
    let out = child.wait_with_output().expect("wait for the copy");
    let _ = done.send(());
    assert!(!dog.join().unwrap(), "the watchdog killed the copy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the check did not run:\n{stdout}"
    );
}
