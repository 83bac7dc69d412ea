//! Byte sizes and offsets on the command line: `4096`, `4k`, `4KiB`, `1MiB`, `2GiB`.
//!
//! Parsed with the `parse-size` crate in its binary configuration: every unit is a power of
//! 1024, whether written `k`, `K`, `KB` or `KiB` (so `4k` is 4096, the page size, not 4000).
//! Units are case-insensitive, the `B` is optional, `_` and spaces group digits, and a
//! fraction is rounded to the nearest byte (`1.5KiB` is 1536). Negative numbers and anything
//! that is not a size are rejected with a message saying what is accepted.

use parse_size::Config;

/// What every size message ends with.
const ACCEPTED: &str = "expected a byte count such as 4096, 4k, 4KiB, 1MiB or 2GiB";

/// Parses a size or offset; 0 is allowed.
///
/// Used as a clap `value_parser`, so the error is the text clap prints after
/// `invalid value '...' for '--flag <N>': `.
pub fn parse(src: &str) -> Result<u64, String> {
    let trimmed = src.trim();
    if trimmed.starts_with('-') {
        return Err(format!("sizes cannot be negative ({ACCEPTED})"));
    }
    Config::new()
        .with_binary()
        .parse_size(trimmed)
        .map_err(|e| match e {
            parse_size::Error::Empty => format!("empty size ({ACCEPTED})"),
            parse_size::Error::PosOverflow => {
                format!("size too large: the maximum is {} bytes", u64::MAX)
            }
            _ => format!("not a size ({ACCEPTED})"),
        })
}

/// Parses a size that must be at least one byte (a mapping cannot be empty).
pub fn parse_nonzero(src: &str) -> Result<u64, String> {
    match parse(src)? {
        0 => Err("the size must be at least 1 byte: a mapping cannot be empty".to_string()),
        n => Ok(n),
    }
}

/// Formats `bytes` for people: `10000 bytes (9.8 KiB)`, or `512 bytes` below 1 KiB.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let unit = if bytes == 1 { "byte" } else { "bytes" };
    if bytes < 1024 {
        return format!("{bytes} {unit}");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut i = 0;
    while value >= 1024.0 && i + 1 < UNITS.len() {
        value /= 1024.0;
        i += 1;
    }
    format!("{bytes} {unit} ({value:.1} {})", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_binary_units() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("4k"), Ok(4096));
        assert_eq!(parse("4K"), Ok(4096));
        assert_eq!(parse("4KB"), Ok(4096));
        assert_eq!(parse("4KiB"), Ok(4096));
        assert_eq!(parse("1MiB"), Ok(1 << 20));
        assert_eq!(parse("2GiB"), Ok(2 << 30));
        assert_eq!(parse(" 1_000 "), Ok(1000));
        assert_eq!(parse("1.5KiB"), Ok(1536));
    }

    #[test]
    fn rejects_negative_garbage_and_overflow() {
        assert!(parse("-1").unwrap_err().contains("negative"));
        assert!(parse("-4KiB").unwrap_err().contains("negative"));
        assert!(parse("abc").unwrap_err().contains("not a size"));
        assert!(parse("12 parsecs").unwrap_err().contains("not a size"));
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("100EiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn nonzero_rejects_zero_only() {
        assert!(parse_nonzero("0").unwrap_err().contains("at least 1 byte"));
        assert_eq!(parse_nonzero("1"), Ok(1));
        assert!(parse_nonzero("-1").unwrap_err().contains("negative"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 bytes");
        assert_eq!(human(1), "1 byte");
        assert_eq!(human(1023), "1023 bytes");
        assert_eq!(human(10_000), "10000 bytes (9.8 KiB)");
        assert_eq!(human(3 << 30), "3221225472 bytes (3.0 GiB)");
    }
}
