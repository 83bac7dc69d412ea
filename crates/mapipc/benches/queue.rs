//! Benchmarks of the durable queue (issue 7): append throughput (64 B and 4 KiB, no sync,
//! group commit, sync per record) against `write(2)` + `fdatasync` per record, reader
//! throughput, and append-to-tailer latency across two processes (parked and busy-poll).
//!
//! The queues live in `$MAPIPC_BENCH_DIR` (default: the system temporary directory, which
//! should be a real disk for the sync comparisons to mean anything; on tmpfs `fdatasync`
//! and `msync` do nothing).
//!
//! Run: `cargo bench -p mapipc --bench queue`
//!
//! `MAPIPC_QUEUE_PAIRED=ROUNDS` first alternates short blocks of group-commit appends and
//! `write` + `fdatasync` appends for ROUNDS rounds and prints the median of the per-round
//! ratios: on a machine whose disk is shared, the sync costs drift between criterion's
//! sequential runs, and the paired ratio is the number to compare.

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use mapipc::queue::{Appender, QueueOptions, StartAt, SyncPolicy, TailerOptions};

fn bench_root() -> PathBuf {
    std::env::var_os("MAPIPC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mapipc-bench-queue-")
        .tempdir_in(bench_root())
        .expect("temporary directory for the benchmark")
}

/// Per-record time of `n` appends of `size` bytes with `policy` into a fresh queue
/// (including the final sync of what is pending, except with no sync policy).
fn time_queue(size: usize, n: u64, policy: SyncPolicy) -> Duration {
    let dir = tempdir();
    let payload = vec![0xa5u8; size];
    let mut app = QueueOptions::new()
        .sync(policy)
        .open_appender(dir.path().join("q"))
        .unwrap();
    let start = Instant::now();
    for _ in 0..n {
        black_box(app.append(&payload).unwrap());
    }
    if policy != SyncPolicy::None {
        app.sync().unwrap();
    }
    start.elapsed() / n as u32
}

/// Per-record time of `n` writes of `size` bytes, each followed by `fdatasync`.
fn time_fdatasync(size: usize, n: u64) -> Duration {
    let dir = tempdir();
    let payload = vec![0xa5u8; size];
    let mut f = File::create(dir.path().join("log")).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&payload).unwrap();
        f.sync_data().unwrap();
    }
    start.elapsed() / n as u32
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The paired comparison (see the module docs).
fn paired(rounds: usize) {
    for size in [64usize, 4096] {
        let (mut none, mut batch, mut fsync, mut ratio) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let n = time_queue(size, 200_000 / (size as u64 / 64), SyncPolicy::None);
            let b = time_queue(size, 20_000, SyncPolicy::BATCH);
            let f = time_fdatasync(size, 200);
            none.push(n.as_nanos() as f64);
            batch.push(b.as_nanos() as f64);
            fsync.push(f.as_nanos() as f64);
            ratio.push(f.as_nanos() as f64 / b.as_nanos().max(1) as f64);
        }
        println!(
            "paired {size} B, {rounds} rounds (medians): none {:.0} ns/append ({:.2} M/s), \
             batch {:.0} ns/append, write+fdatasync {:.0} ns/record, fdatasync/batch {:.1}x",
            median(none.clone()),
            1e3 / median(none),
            median(batch),
            median(fsync),
            median(ratio)
        );
    }
}

fn append(c: &mut Criterion) {
    if let Some(rounds) = std::env::var("MAPIPC_QUEUE_PAIRED")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        paired(rounds.max(1));
    }
    let mut g = c.benchmark_group("queue_append");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(1));
    for size in [64usize, 4096] {
        // Bounds the bytes written per sample (each sample starts a fresh queue).
        g.measurement_time(Duration::from_secs(if size == 64 { 3 } else { 1 }));
        let payload = vec![0xa5u8; size];
        let policies = [
            ("none", SyncPolicy::None),
            ("batch", SyncPolicy::BATCH),
            ("always", SyncPolicy::Always),
        ];
        for (name, policy) in policies {
            g.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter_custom(|iters| {
                    let dir = tempdir();
                    let mut app = QueueOptions::new()
                        .sync(policy)
                        .open_appender(dir.path().join("q"))
                        .unwrap();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(app.append(&payload).unwrap());
                    }
                    // Group commit: what is pending at the end is part of the cost.
                    if policy != SyncPolicy::None {
                        app.sync().unwrap();
                    }
                    let t = start.elapsed();
                    drop(app);
                    t
                })
            });
        }
        // The baseline: the same records written to a plain file, fdatasync after each.
        g.bench_function(BenchmarkId::new("write_fdatasync", size), |b| {
            b.iter_custom(|iters| {
                let dir = tempdir();
                let mut f = File::create(dir.path().join("log")).unwrap();
                let start = Instant::now();
                for _ in 0..iters {
                    f.write_all(&payload).unwrap();
                    f.sync_data().unwrap();
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_read");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for (size, count) in [(64usize, 2_000_000u64), (4096, 100_000)] {
        let dir = tempdir();
        let q = dir.path().join("q");
        let mut app = Appender::open(&q).unwrap();
        let payload = vec![0x5au8; size];
        for _ in 0..count {
            app.append(&payload).unwrap();
        }
        drop(app);
        let mut t = TailerOptions::new().open(&q).unwrap();
        let mut buf = Vec::with_capacity(size);
        g.bench_function(BenchmarkId::new("view", size), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let rec = match t.try_next().unwrap() {
                        Some(rec) => rec,
                        None => {
                            t.seek(StartAt::Start).unwrap();
                            t.try_next().unwrap().unwrap()
                        }
                    };
                    black_box(rec.len());
                }
                start.elapsed()
            })
        });
        g.bench_function(BenchmarkId::new("copy", size), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    match t.try_next().unwrap() {
                        Some(rec) => rec.copy_into(&mut buf).unwrap(),
                        None => {
                            t.seek(StartAt::Start).unwrap();
                            t.try_next().unwrap().unwrap().copy_into(&mut buf).unwrap();
                        }
                    }
                    black_box(&buf);
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// Round trips between this process and a forked echo process through two queues: we
/// append to `ping`, the child tails it and appends the same bytes to `pong`, we tail
/// `pong`. One round trip is two append-to-tailer hops.
fn latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_latency_round_trip");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (mode, parked) in [("parked", true), ("busy_poll", false)] {
        let dir = tempdir();
        let (ping, pong) = (dir.path().join("ping"), dir.path().join("pong"));
        let mut to_child = QueueOptions::new()
            .segment_size(64 << 20)
            .open_appender(&ping)
            .unwrap();
        drop(QueueOptions::new().open_appender(&pong).unwrap());
        drop(to_child);
        // SAFETY: fork has no memory-safety preconditions; the child only runs the echo
        // loop below and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = echo(&ping, &pong, parked);
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        to_child = Appender::open(&ping).unwrap();
        let mut from_child = TailerOptions::new()
            .spin(if parked { 0 } else { 1000 })
            .open(&pong)
            .unwrap();
        let msg = [7u8; 64];
        g.bench_function(mode, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    to_child.append(&msg).unwrap();
                    if parked {
                        black_box(from_child.next_blocking().unwrap().len());
                    } else {
                        loop {
                            if let Some(r) = from_child.try_next().unwrap() {
                                black_box(r.len());
                                break;
                            }
                            std::hint::spin_loop();
                        }
                    }
                }
                start.elapsed()
            })
        });
        to_child.append(b"").unwrap(); // empty: stop
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    g.finish();
}

fn echo(ping: &std::path::Path, pong: &std::path::Path, parked: bool) -> i32 {
    let Ok(mut t) = TailerOptions::new()
        .spin(if parked { 0 } else { 1000 })
        .open(ping)
    else {
        return 2;
    };
    let Ok(mut app) = Appender::open(pong) else {
        return 3;
    };
    let mut buf = Vec::new();
    loop {
        let got = if parked {
            t.next_blocking().map(Some)
        } else {
            t.try_next()
        };
        match got {
            Ok(Some(rec)) => {
                if rec.is_empty() {
                    return 0;
                }
                if rec.copy_into(&mut buf).is_err() {
                    return 4;
                }
            }
            Ok(None) => {
                std::hint::spin_loop();
                continue;
            }
            Err(_) => return 5,
        }
        if app.append(&buf).is_err() {
            return 6;
        }
    }
}

criterion_group!(benches, append, read, latency);
criterion_main!(benches);
