//! The channel reader over arbitrary memory: the ring's positions and records, and a whole
//! channel header, must never make mapipc crash, hang, panic or read outside the ring. The
//! input is also written as damage into a live SPSC channel's shared memory under its
//! receivers and a sender (`mapipc::channel::fuzzing::live`).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run channel_reader -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapipc::channel::Kind;

fuzz_target!(|data: &[u8]| {
    mapipc::channel::fuzzing::ring(data);
    mapipc::channel::fuzzing::channel(data);
    mapipc::channel::fuzzing::live(Kind::Spsc, data);
});
