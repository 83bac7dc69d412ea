//! The MPSC receiver over arbitrary memory: claim words, lengths, the consumer position and
//! the claim hint must never make mapipc crash, hang, panic or read outside the ring.
//!
//! Each input runs twice: as ring memory on the heap under the consumer and a producer
//! (`mapipc::channel::fuzzing::mpsc_ring`), and as damage written into a live MPSC channel's
//! shared memory under its `Receiver` and a `Sender` (`mapipc::channel::fuzzing::live`).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run mpsc_receiver -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapipc::channel::Kind;

fuzz_target!(|data: &[u8]| {
    mapipc::channel::fuzzing::mpsc_ring(data);
    mapipc::channel::fuzzing::live(Kind::Mpsc, data);
});
