//! Unrelated processes, the writing side: writes a message into a named region, bumps its
//! generation and notifies whoever waits on it. The reading side is `unrelated_reader.rs`.
//!
//! The writer:
//!
//! 1. opens the region, or creates it if no reader has yet ([`Region::open_or_create`]);
//! 2. writes the message (a `u32` length, then the bytes) into the user data;
//! 3. [bumps the generation](Region::bump_generation): the release that publishes the bytes
//!    to any reader that sees the new value;
//! 4. notifies through the region's notifier word ([`Notifier::notify_all`]): one atomic
//!    operation, plus one `futex_wake` system call only if a reader is parked.
//!
//! Then it exits: the region stays for the reader, which removes it. A reader started later
//! finds the new generation and reads the message without waiting.
//!
//! Usage: `unrelated_writer [NAME|PATH] [MESSAGE]`: a bare name in `/dev/shm` (no `/`) or
//! a path (with a `/`); default `mapipc-example-unrelated` (`/dev/shm/mapipc-example-unrelated`,
//! the reader's default too) and the message `hello from an unrelated process`.
//!
//! Run it with (see `unrelated_reader.rs` for the reader-first order):
//!
//! ```text
//! cargo run -p mapipc --example unrelated_writer
//! cargo run -p mapipc --example unrelated_reader
//! ```
//!
//! One writer at a time: two writers writing at once could mix their bytes.

use mapipc::region::{Location, Region};
use mapipc::sync::Notifier;

/// The region both examples use when given no name.
const DEFAULT_NAME: &str = "mapipc-example-unrelated";
/// The message written when none is given.
const DEFAULT_MESSAGE: &str = "hello from an unrelated process";
// Layout of the user data; the same in unrelated_reader.rs.
/// Bytes of user data.
const DATA_LEN: usize = 4096;
/// The message length (`u32`).
const LEN_AT: u64 = 0;
/// The message bytes.
const MSG_AT: u64 = 8;

fn main() {
    let mut args = std::env::args().skip(1);
    let location = args.next().unwrap_or_else(|| DEFAULT_NAME.to_string());
    let message = args.next().unwrap_or_else(|| DEFAULT_MESSAGE.to_string());
    if let Some(extra) = args.next() {
        eprintln!(
            "error: unexpected argument `{extra}`\nusage: unrelated_writer [NAME|PATH] [MESSAGE]"
        );
        std::process::exit(2);
    }
    if let Err(e) = run(&location, message.as_bytes()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(location: &str, message: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    let loc = Location::parse(location)?;
    let room = DATA_LEN - MSG_AT as usize;
    if message.len() > room {
        return Err(format!(
            "the message is {} bytes; {loc} has room for {room}",
            message.len()
        )
        .into());
    }
    let region = Region::open_or_create(&loc, DATA_LEN)?;
    let readers: Vec<u32> = region
        .peers()?
        .iter()
        .filter(|p| p.alive)
        .map(|p| p.pid)
        .collect();
    println!(
        "writer (pid {}): {} region {loc}; live peers (readers): {readers:?}",
        std::process::id(),
        if region.was_created() {
            "created"
        } else {
            "opened"
        }
    );
    region.write_at(MSG_AT, message)?;
    region.write_pod(LEN_AT, &(message.len() as u32))?;
    let generation = region.bump_generation()?;
    let woke = Notifier::new(region.notify_word()?).notify_all();
    println!(
        "writer: wrote {:?}, generation -> {generation}; {}",
        String::from_utf8_lossy(message),
        if woke {
            "a reader was parked on the notifier: woke it (one futex wake)"
        } else {
            "nobody was parked (no syscall): a reader will find the new generation"
        }
    );
    Ok(())
}
