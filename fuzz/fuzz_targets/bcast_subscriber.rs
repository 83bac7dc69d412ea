//! The broadcast subscriber over arbitrary memory: the producer position, the oldest-record
//! latch, the subscriber table, record headers and sequence numbers must never make mapipc
//! crash, hang, panic or read outside the ring.
//!
//! Each input runs twice: as header fields and ring memory on the heap under subscribers and
//! the producer (`mapipc::channel::fuzzing::bcast_ring`), and as damage written into a live
//! broadcast channel's shared memory under its subscribers and a `Sender`
//! (`mapipc::channel::fuzzing::live`).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run bcast_subscriber -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapipc::channel::Kind;

fuzz_target!(|data: &[u8]| {
    mapipc::channel::fuzzing::bcast_ring(data);
    mapipc::channel::fuzzing::live(Kind::Broadcast, data);
});
