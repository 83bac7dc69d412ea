//! The floor files compiled the way mapipc's criterion benches include them (`#[path]`, outside
//! the harness crate, next to the `slot` file they share: this fails to build if one of them
//! reaches for any other harness module), and
//! exercised between two threads: exact order, no loss, and abort unblocking a waiter.
//!
//! A watchdog thread aborts each floor after 60 s, which makes any stuck wait return an
//! error, so a deadlock fails the test instead of hanging it. Message counts are small: on a
//! loaded machine two busy-spinning threads may share one CPU and hand over only once per
//! scheduler tick.

#[allow(dead_code)]
#[path = "../src/floors/futex.rs"]
mod futex_floor;
#[allow(dead_code)]
#[path = "../src/floors/ring.rs"]
mod ring_floor;
#[allow(dead_code)]
#[path = "../src/floors/slot.rs"]
mod slot;
#[allow(dead_code)]
#[path = "../src/floors/spin.rs"]
mod spin_floor;

use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// Calls `abort` after 60 s unless the returned sender is dropped first.
fn watchdog(abort: impl FnOnce() + Send + 'static) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(60)) == Err(mpsc::RecvTimeoutError::Timeout) {
            abort();
        }
    });
    tx
}

fn msg(len: usize, seq: u64) -> Vec<u8> {
    let mut m = vec![0xa5u8; len];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    let tail = len - 8;
    m[tail..].copy_from_slice(&(!seq).to_le_bytes());
    m
}

#[test]
fn ring_delivers_every_message_in_order_across_wraps() {
    ring_in_order(64, 32, 100_000);
}

#[test]
fn a_ring_smaller_than_its_publication_batch_does_not_deadlock() {
    // Each side publishes before it waits, so batching never hides a state the other waits on.
    ring_in_order(4, 32, 2_000);
    ring_in_order(2, 1, 2_000);
}

fn ring_in_order(slots: usize, publish_every: u64, n: u64) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let len = 24;
    let ring = ring_floor::RingFloor::with_publish_every(slots, len, publish_every).unwrap();
    let w = ring.clone();
    let _dog = watchdog(move || w.abort());
    let mut tx = ring.producer();
    let mut rx = ring.consumer();
    let producer = thread::spawn(move || {
        for seq in 0..n {
            tx.push(&msg(len, seq)).unwrap();
        }
        tx.flush().unwrap();
    });
    for seq in 0..n {
        let (head, tail) = rx
            .pop(|m| (m.read_u64_le(0), m.read_u64_le(len - 8)))
            .unwrap();
        assert_eq!(head, Some(seq));
        assert_eq!(tail, Some(!seq));
    }
    producer.join().unwrap();
    // Everything was consumed: a further pop waits, and abort ends the wait with an error.
    ring.abort();
    let err = rx.pop(|_| ()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
}

#[test]
fn ring_rejects_bad_geometry_and_lengths() {
    assert!(ring_floor::RingFloor::new(1, 8).is_err()); // fewer than 2 slots
    assert!(ring_floor::RingFloor::new(100, 8).is_err()); // not a power of two
    assert!(ring_floor::RingFloor::with_publish_every(64, 8, 0).is_err());
    assert!(ring_floor::RingFloor::new(64, 0).is_err());
    let ring = ring_floor::RingFloor::new(64, 16).unwrap();
    assert!(ring.producer().push(&[0u8; 15]).is_err());
}

#[test]
fn spin_baton_ping_pong_and_stream() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let len = 64;
    let floor = spin_floor::SpinFloor::new(len).unwrap();
    let w = floor.clone();
    let _dog = watchdog(move || w.abort());
    let mut a = floor.side_a();
    let mut b = floor.side_b();
    let server = thread::spawn(move || {
        // Echo 2000 messages, then receive a stream of 2000 without replying.
        for seq in 0..500u64 {
            let got = b.recv(|m| m.read_u64_le(0)).unwrap();
            assert_eq!(got, Some(seq));
            b.send(&msg(len, seq + 1_000_000)).unwrap();
        }
        for seq in 0..500u64 {
            let tail = b.recv(|m| m.read_u64_le(len - 8)).unwrap();
            assert_eq!(tail, Some(!seq));
        }
    });
    for seq in 0..500u64 {
        a.send(&msg(len, seq)).unwrap();
        let reply = a.recv(|m| m.read_u64_le(0)).unwrap();
        assert_eq!(reply, Some(seq + 1_000_000));
    }
    for seq in 0..500u64 {
        a.send(&msg(len, seq)).unwrap();
    }
    server.join().unwrap();
}

#[test]
fn futex_baton_ping_pong_and_abort() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let floor = futex_floor::FutexFloor::new(8).unwrap();
    let w = floor.clone();
    let _dog = watchdog(move || w.abort());
    let mut a = floor.side_a();
    let mut b = floor.side_b();
    let server = thread::spawn(move || {
        for _ in 0..500 {
            let v = b.recv(|m| m.read_u64_le(0)).unwrap().unwrap();
            b.send(&(v * 2).to_le_bytes()).unwrap();
        }
        // Now wait for a message that never comes: only abort ends this.
        b.recv(|_| ()).unwrap_err().kind()
    });
    for v in 0..500u64 {
        a.send(&v.to_le_bytes()).unwrap();
        assert_eq!(a.recv(|m| m.read_u64_le(0)).unwrap(), Some(v * 2));
    }
    // Let the server pass the baton back and block in FUTEX_WAIT, then abort it.
    thread::sleep(Duration::from_millis(50));
    floor.abort();
    assert_eq!(
        server.join().unwrap(),
        std::io::ErrorKind::ConnectionAborted
    );
}
