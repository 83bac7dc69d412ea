//! Channel builders shared by the MPSC and broadcast tests (`kinds.rs`,
//! `kinds_semantics.rs`): anonymous channels, so that forked children share them.
#![allow(dead_code)]

use mapipc::channel::{Channel, ChannelOptions, Kind, Policy};

/// An anonymous MPSC channel of `capacity` bytes with `producers` producer slots.
pub fn mpsc(capacity: usize, producers: u32) -> Channel {
    ChannelOptions::new(Kind::Mpsc)
        .capacity(capacity)
        .max_producers(producers)
        .anonymous()
        .unwrap()
}

/// An anonymous broadcast channel of `capacity` bytes with 8 subscriber slots.
pub fn bcast(capacity: usize, policy: Policy) -> Channel {
    ChannelOptions::new(Kind::Broadcast)
        .capacity(capacity)
        .policy(policy)
        .max_subscribers(8)
        .anonymous()
        .unwrap()
}
