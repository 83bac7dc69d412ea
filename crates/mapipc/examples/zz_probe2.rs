use std::time::Instant;
fn main() {
    let (mut tx, mut rx) = mapipc::channel::pair(1 << 20).unwrap();
    let buf = [7u8; 64];
    let mut v = Vec::new();
    let n = 10_000_000u64;
    let t = Instant::now();
    for _ in 0..n {
        tx.send(&buf).unwrap();
        rx.recv_into(&mut v).unwrap();
    }
    let el = t.elapsed();
    println!(
        "send+recv single thread: {:.1} ns/pair",
        el.as_nanos() as f64 / n as f64
    );
    let t = Instant::now();
    for _ in 0..n / 100 {
        for _ in 0..100 {
            tx.send(&buf).unwrap();
        }
        rx.drain(usize::MAX, |_| {}).unwrap();
    }
    let el = t.elapsed();
    println!(
        "send x100 + drain: {:.1} ns/msg",
        el.as_nanos() as f64 / n as f64
    );
}
