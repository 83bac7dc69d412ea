//! Mapping benchmark of issue 2: a 1 GiB page-cached file read sequentially (64 KiB
//! chunks) and at random (4 KiB reads) through
//!
//! - mapipc: `Mmap::read_at` into a reused buffer (the safe, copying API),
//!   `Mmap::for_each_chunk` (the same copy through an internal L1-sized buffer), and
//!   `unsafe Mmap::as_slice` (borrowing in place, under memmap2's contract);
//! - memmap2: direct slice access (zero-copy, `unsafe` to create);
//! - `read(2)` / `pread(2)` into a buffer.
//!
//! Every variant applies the same cheap processing to each chunk (the wrapping sum of its
//! little-endian `u64` words) and checks the total against the expected one before
//! measuring, so nothing can be optimised away or be silently wrong.
//!
//! Diagnostic variants separate the causes: `memmap2_copy*` does the very copy `read_at`
//! does but without its checks, `mapipc_read_at_4KiB` uses a buffer that fits in L1, and
//! the `fresh_map` variants include mapping, first-touch faults and unmapping.
//!
//! Before the criterion groups, the bench prints the fastest of several interleaved runs of
//! every variant (robust on a shared, noisy machine; see [`interleaved_minimum`]).
//!
//! Run: `cargo bench -p mapipc --bench map` (about two and a half minutes; only the
//! interleaved table: `cargo bench -p mapipc --bench map -- nomatch`). The file is created
//! in `$MAPIPC_BENCH_DIR` (default: the system temp dir, which should be on a disk, not
//! tmpfs) and removed at the end. Results: `BENCHMARKS.md`.

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use mapipc::map::{MapOptions, Mmap};

const FILE_LEN: usize = 1 << 30;
const SCAN_CHUNK: usize = 64 * 1024;
const READ_LEN: usize = 4096;
const RANDOM_READS: usize = 16 * 1024;

/// The per-chunk processing: identical for every variant, cheap, and data-dependent.
#[inline]
fn process(chunk: &[u8]) -> u64 {
    let mut acc = 0u64;
    for w in chunk.chunks_exact(8) {
        acc = acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()));
    }
    acc
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

struct Fixture {
    _dir: tempfile::TempDir,
    file: File,
    mapipc: Mmap,
    memmap2: memmap2::Mmap,
    path: std::path::PathBuf,
    scan_sum: u64,
    offsets: Vec<u64>,
    random_sum: u64,
}

fn fixture() -> Fixture {
    let base = std::env::var_os("MAPIPC_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("mapipc-bench")
        .tempdir_in(base)
        .unwrap();
    let path = dir.path().join("1GiB.bin");
    eprintln!("creating {} (1 GiB)…", path.display());
    {
        let mut f = File::create(&path).unwrap();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..FILE_LEN / block.len() {
            for w in block.chunks_exact_mut(8) {
                w.copy_from_slice(&xorshift(&mut state).to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
        // Write back now so that writeback does not run during the measurements.
        f.sync_all().unwrap();
    }
    // Warm the page cache (and compute the expected sums with plain reads).
    let mut file = File::open(&path).unwrap();
    let mut buf = vec![0u8; SCAN_CHUNK];
    let mut scan_sum = 0u64;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        scan_sum = scan_sum.wrapping_add(process(&buf[..n]));
    }
    let mut state = 12345u64;
    let offsets: Vec<u64> = (0..RANDOM_READS)
        .map(|_| (xorshift(&mut state) % (FILE_LEN / READ_LEN) as u64) * READ_LEN as u64)
        .collect();
    let mut page = [0u8; READ_LEN];
    let random_sum = offsets.iter().fold(0u64, |acc, &off| {
        file.read_exact_at(&mut page, off).unwrap();
        acc.wrapping_add(process(&page))
    });

    let mapipc = MapOptions::new().map_path(&path).unwrap();
    // SAFETY: the file lives in our private temp dir; nobody truncates or writes it while
    // the benchmark runs.
    let memmap2 = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    Fixture {
        _dir: dir,
        file,
        mapipc,
        memmap2,
        path,
        scan_sum,
        offsets,
        random_sum,
    }
}

fn scan_mapipc(map: &Mmap, buf: &mut [u8]) -> u64 {
    let mut acc = 0u64;
    let mut off = 0;
    while off < map.len() {
        let n = buf.len().min(map.len() - off);
        map.read_at(off as u64, &mut buf[..n]).unwrap();
        acc = acc.wrapping_add(process(&buf[..n]));
        off += n;
    }
    acc
}

fn scan_memmap2(map: &[u8]) -> u64 {
    map.chunks(SCAN_CHUNK)
        .fold(0u64, |acc, chunk| acc.wrapping_add(process(chunk)))
}

/// memmap2, but copying each chunk into the buffer first: the same copy `read_at` does,
/// without its checks. Separates the cost of the checks from the cost of the copy.
fn scan_memmap2_copy(map: &[u8], buf: &mut [u8]) -> u64 {
    map.chunks(buf.len()).fold(0u64, |acc, chunk| {
        let dst = &mut buf[..chunk.len()];
        dst.copy_from_slice(chunk);
        acc.wrapping_add(process(dst))
    })
}

fn scan_read(mut file: &File, buf: &mut [u8]) -> u64 {
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut acc = 0u64;
    loop {
        let n = file.read(buf).unwrap();
        if n == 0 {
            return acc;
        }
        acc = acc.wrapping_add(process(&buf[..n]));
    }
}

fn random_mapipc(map: &Mmap, offsets: &[u64], buf: &mut [u8; READ_LEN]) -> u64 {
    offsets.iter().fold(0u64, |acc, &off| {
        map.read_at(off, buf).unwrap();
        acc.wrapping_add(process(buf))
    })
}

fn random_memmap2(map: &[u8], offsets: &[u64]) -> u64 {
    offsets.iter().fold(0u64, |acc, &off| {
        let off = off as usize;
        acc.wrapping_add(process(&map[off..off + READ_LEN]))
    })
}

fn random_memmap2_copy(map: &[u8], offsets: &[u64], buf: &mut [u8; READ_LEN]) -> u64 {
    offsets.iter().fold(0u64, |acc, &off| {
        let off = off as usize;
        buf.copy_from_slice(&map[off..off + READ_LEN]);
        acc.wrapping_add(process(buf))
    })
}

fn random_pread(file: &File, offsets: &[u64], buf: &mut [u8; READ_LEN]) -> u64 {
    offsets.iter().fold(0u64, |acc, &off| {
        file.read_exact_at(buf, off).unwrap();
        acc.wrapping_add(process(buf))
    })
}

/// A page-aligned buffer, so that every variant copies into memory of the same alignment
/// (`rep movsb`, which glibc's `memcpy` uses at these sizes, is sensitive to it).
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + 4096];
        let start = storage.as_ptr().align_offset(4096);
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    fn get(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    fn page(&mut self) -> &mut [u8; READ_LEN] {
        self.get().try_into().unwrap()
    }
}

type Variant<'a> = (&'static str, Box<dyn FnMut() -> u64 + 'a>);

fn scan_variants(fx: &Fixture) -> Vec<Variant<'_>> {
    let mut buf = AlignedBuf::new(SCAN_CHUNK);
    let mut buf2 = AlignedBuf::new(SCAN_CHUNK);
    let mut buf3 = AlignedBuf::new(SCAN_CHUNK);
    let mut buf4 = AlignedBuf::new(SCAN_CHUNK);
    let mut small = AlignedBuf::new(4096);
    vec![
        (
            "mapipc_read_at_64KiB",
            Box::new(move || scan_mapipc(black_box(&fx.mapipc), buf.get())),
        ),
        (
            "mapipc_for_each_chunk",
            Box::new(|| {
                let mut acc = 0u64;
                black_box(&fx.mapipc)
                    .for_each_chunk(0, fx.mapipc.len(), |_, chunk| {
                        acc = acc.wrapping_add(process(chunk))
                    })
                    .unwrap();
                acc
            }),
        ),
        (
            "memmap2_slice",
            Box::new(|| scan_memmap2(black_box(&fx.memmap2))),
        ),
        // The borrowing API, under the contract memmap2's `Mmap::map` has too.
        (
            "mapipc_as_slice",
            Box::new(|| {
                // SAFETY: as for memmap2 in `fixture`: nobody writes or truncates the file
                // during the benchmark, and nothing writes through this mapping.
                scan_memmap2(unsafe { black_box(&fx.mapipc).as_slice() })
            }),
        ),
        (
            "read_64KiB",
            Box::new(move || scan_read(&fx.file, buf2.get())),
        ),
        // Diagnostics: the same copy as read_at without its checks, and an L1-sized buffer.
        (
            "memmap2_copy_64KiB",
            Box::new(move || scan_memmap2_copy(black_box(&fx.memmap2), buf3.get())),
        ),
        (
            "mapipc_read_at_4KiB",
            Box::new(move || scan_mapipc(black_box(&fx.mapipc), small.get())),
        ),
        // Mapping, first-touch page faults and unmapping included: what a one-shot reader
        // (`mapipc cat`) pays.
        (
            "mapipc_fresh_map_read_at_64KiB",
            Box::new(move || {
                let map = Mmap::open(&fx.path).unwrap();
                scan_mapipc(&map, buf4.get())
            }),
        ),
        (
            "memmap2_fresh_map_slice",
            Box::new(|| {
                // SAFETY: as in `fixture`: nobody changes the file during the benchmark.
                let map = unsafe { memmap2::Mmap::map(&fx.file) }.unwrap();
                scan_memmap2(&map)
            }),
        ),
    ]
}

fn random_variants(fx: &Fixture) -> Vec<Variant<'_>> {
    let mut page = AlignedBuf::new(READ_LEN);
    let mut page2 = AlignedBuf::new(READ_LEN);
    let mut page3 = AlignedBuf::new(READ_LEN);
    vec![
        (
            "mapipc_read_at",
            Box::new(move || random_mapipc(black_box(&fx.mapipc), &fx.offsets, page.page())),
        ),
        (
            "memmap2_slice",
            Box::new(|| random_memmap2(black_box(&fx.memmap2), &fx.offsets)),
        ),
        (
            "pread",
            Box::new(move || random_pread(&fx.file, &fx.offsets, page2.page())),
        ),
        (
            "memmap2_copy",
            Box::new(move || {
                random_memmap2_copy(black_box(&fx.memmap2), &fx.offsets, page3.page())
            }),
        ),
    ]
}

/// Runs every variant `rounds` times, interleaved (round-robin), and prints the fastest
/// run of each and its ratio to memmap2. On a shared, noisy machine the minimum of
/// interleaved runs is far more stable than a mean: interference only ever adds time, and
/// interleaving exposes every variant to the same conditions.
fn interleaved_minimum(group: &str, variants: &mut [Variant<'_>], rounds: usize) {
    let mut best = vec![Duration::MAX; variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            black_box(f());
            best[i] = best[i].min(t.elapsed());
        }
    }
    let reference = variants
        .iter()
        .position(|(name, _)| name.starts_with("memmap2_slice"))
        .map(|i| best[i]);
    eprintln!("{group}: fastest of {rounds} interleaved runs");
    for ((name, _), t) in variants.iter().zip(&best) {
        let ratio = reference.map_or(f64::NAN, |r| t.as_secs_f64() / r.as_secs_f64());
        eprintln!(
            "  {name:34} {:9.2} ms  {ratio:5.2}x memmap2",
            t.as_secs_f64() * 1e3
        );
    }
}

fn bench_map(c: &mut Criterion) {
    let fx = fixture();
    let mut scan = scan_variants(&fx);
    let mut random = random_variants(&fx);
    // Correctness first (this also faults every page of the long-lived mappings in once).
    for (name, f) in scan.iter_mut() {
        assert_eq!(f(), fx.scan_sum, "{name}");
    }
    for (name, f) in random.iter_mut() {
        assert_eq!(f(), fx.random_sum, "{name}");
    }
    interleaved_minimum("scan_1GiB", &mut scan, 9);
    interleaved_minimum("random_4KiB", &mut random, 31);

    let mut g = c.benchmark_group("scan_1GiB");
    g.throughput(Throughput::Bytes(FILE_LEN as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, f) in scan.iter_mut() {
        g.bench_function(*name, |b| b.iter(|| black_box(f())));
    }
    g.finish();

    let mut g = c.benchmark_group("random_4KiB");
    g.throughput(Throughput::Bytes((RANDOM_READS * READ_LEN) as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, f) in random.iter_mut() {
        g.bench_function(*name, |b| b.iter(|| black_box(f())));
    }
    g.finish();
}

criterion_group!(benches, bench_map);
criterion_main!(benches);
