use std::time::Instant;
fn main() {
    let n: u64 = 20_000_000;
    let size: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(64);
    let mode = std::env::args().nth(2).unwrap_or("send".into());
    let chan = mapipc::channel::Channel::anonymous(1 << 20).unwrap();
    let c2 = chan.clone();
    let n2 = if size > 1000 { n / 100 } else { n };
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        mapipc::os::process::pin_to_cpu(1);
        let mut tx = c2.sender().unwrap();
        tx.set_wait_strategy(mapipc::channel::WaitStrategy::BusyPoll);
        let buf = vec![7u8; size];
        for i in 0..n2 {
            if mode == "grant" {
                let mut g = tx.reserve(size).unwrap();
                g.bytes().write_at(0, &i.to_le_bytes());
                g.commit();
            } else {
                tx.send(&buf).unwrap();
            }
        }
        unsafe { libc::_exit(0) };
    }
    mapipc::os::process::pin_to_cpu(0);
    let mut rx = chan.receiver().unwrap();
    rx.set_wait_strategy(mapipc::channel::WaitStrategy::BusyPoll);
    let t = Instant::now();
    let mut got = 0u64;
    if mode == "drain" || mode == "grant" {
        while got < n2 {
            got += rx.drain(usize::MAX, |_m| {}).unwrap() as u64;
        }
    } else {
        let mut v = Vec::new();
        while got < n2 {
            rx.recv_into(&mut v).unwrap();
            got += 1;
        }
    }
    let el = t.elapsed();
    println!(
        "size {size} mode {mode}: {:.2} M msg/s, {:.2} GB/s",
        n2 as f64 / el.as_secs_f64() / 1e6,
        (n2 as f64 * size as f64) / el.as_secs_f64() / 1e9
    );
}
