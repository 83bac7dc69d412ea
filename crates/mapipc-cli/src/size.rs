//! Byte sizes and offsets on the command line: `4096`, `4k`, `4KiB`, `1MiB`, `2GiB`.
//!
//! Every unit is a power of 1024, whether written `k`, `K`, `KB` or `KiB` (so `4k` is 4096,
//! the page size, not 4000); units go up to `E` (EiB), are case-insensitive, the `B` is
//! optional, and a space may separate them from the number. `_` groups digits (`1_000`).
//! A fraction needs a unit and is rounded to the nearest byte (`1.5KiB` is 1536); a bare
//! byte count is a whole number. Anything else (negative numbers, exponents, a value above
//! `u64::MAX`, even by rounding) is rejected with a message saying what is accepted.
//!
//! (A small grammar of our own: the `parse-size` crate used before accepted `1e3`,
//! `1__0` and `0.5` bytes, and wrapped `18446744073709551615.5` round to 0.)

/// What every size message ends with.
const ACCEPTED: &str = "expected a byte count such as 4096, 4k, 4KiB, 1MiB or 2GiB";

/// Parses a size or offset; 0 is allowed.
///
/// Used as a clap `value_parser`, so the error is the text clap prints after
/// `invalid value '...' for '--flag <N>': `.
pub fn parse(src: &str) -> Result<u64, String> {
    let s = src.trim();
    if s.is_empty() {
        return Err(format!("empty size ({ACCEPTED})"));
    }
    if s.starts_with('-') {
        return Err(format!("sizes cannot be negative ({ACCEPTED})"));
    }
    let not_a_size = || format!("not a size ({ACCEPTED})");
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let shift: u32 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        "e" | "eb" | "eib" => 60,
        _ => return Err(not_a_size()),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (number, None),
    };
    // Digits, with single `_` only between two digits.
    let digits = |part: &str| -> Option<String> {
        let ok = !part.is_empty()
            && !part.starts_with('_')
            && !part.ends_with('_')
            && !part.contains("__")
            && part.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        ok.then(|| part.replace('_', ""))
    };
    let whole = digits(whole).ok_or_else(not_a_size)?;
    let too_large = || format!("size too large: the maximum is {} bytes", u64::MAX);
    // Exact arithmetic in u128: the whole part is checked before the shift can overflow.
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    if whole > u128::from(u64::MAX) {
        return Err(too_large());
    }
    let mut bytes = whole << shift;
    if let Some(fraction) = fraction {
        let fraction = digits(fraction).ok_or_else(not_a_size)?;
        if shift == 0 {
            return Err(format!(
                "a byte count is a whole number (a fraction needs a unit: 1.5KiB is 1536) \
                 ({ACCEPTED})"
            ));
        }
        if fraction.len() > 18 {
            return Err(format!("too many decimals ({ACCEPTED})"));
        }
        let scale = 10u128.pow(fraction.len() as u32);
        let f: u128 = fraction.parse().map_err(|_| not_a_size())?;
        // Rounded to the nearest byte.
        bytes += ((f << shift) + scale / 2) / scale;
    }
    u64::try_from(bytes).map_err(|_| too_large())
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
        assert_eq!(parse("4 KiB"), Ok(4096));
        assert_eq!(parse("1.1k"), Ok(1126)); // 1126.4, rounded
        assert_eq!(parse("1e"), Ok(1 << 60));
        assert_eq!(parse("15E"), Ok(15 << 60));
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn rejects_what_is_not_a_whole_number_of_bytes() {
        assert!(parse("0.5").unwrap_err().contains("whole number"));
        assert!(parse("18446744073709551615.5")
            .unwrap_err()
            .contains("whole number"));
        assert!(parse("1e3").unwrap_err().contains("not a size"));
        for bad in [
            "_1", "1_", "1__0", "1.", ".5k", "1.5.5k", "0x10", "1 000", "4 k i b",
        ] {
            assert!(parse(bad).unwrap_err().contains("not a size"), "{bad}");
        }
        assert!(parse("16E").unwrap_err().contains("too large"));
        assert!(parse("16.0E").unwrap_err().contains("too large"));
        assert_eq!(parse("15.99999999999999999E"), Ok(u64::MAX - 11)); // 2^64 - 11.5, rounded
        assert!(parse("18446744073709551616")
            .unwrap_err()
            .contains("too large"));
        assert!(parse("99999999999999999999999999999999999999999")
            .unwrap_err()
            .contains("too large"));
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
