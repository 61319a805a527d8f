// SPDX-License-Identifier: GPL-2.0

//! Byte sizes as people write them: `4096`, `4K`, `2M`, `1G`, `1GiB`, `0x1000`.

use std::fmt;

/// A string that is not a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSizeError {
    input: String,
    why: &'static str,
}

impl fmt::Display for ParseSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid size {:?}: {} (examples: 4096, 4K, 2M, 1G, 0x1000)",
            self.input, self.why
        )
    }
}

impl std::error::Error for ParseSizeError {}

/// Parses a size in bytes with an optional binary suffix: K, M, G, T (powers of 1024),
/// optionally followed by `iB` or `B`, in any case; a `0x` prefix reads hexadecimal.
pub fn parse_size(input: &str) -> Result<u64, ParseSizeError> {
    let err = |why| ParseSizeError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    let (digits, radix, rest) =
        if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            let end = hex
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(hex.len());
            (&hex[..end], 16, &hex[end..])
        } else {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            (&s[..end], 10, &s[end..])
        };
    if digits.is_empty() {
        return Err(err("no number"));
    }
    let value = u64::from_str_radix(digits, radix).map_err(|_| err("too large"))?;
    let unit = rest.trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(err("unknown unit")),
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| err("too large"))
}

/// Formats `bytes` for people: in the largest binary unit it reaches, exactly when it is a
/// whole number of that unit (`4K`, `64M`, `1G`), otherwise with two decimals (`2.46G`,
/// `1.50M`); below 1K as bytes (`1000B`). Only exact forms read back with [`parse_size`].
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
    for (i, &(shift, unit)) in UNITS.iter().enumerate() {
        if bytes >> shift == 0 {
            continue;
        }
        if bytes.trailing_zeros() >= shift {
            return format!("{}{unit}", bytes >> shift);
        }
        let value = bytes as f64 / (1u64 << shift) as f64;
        // 1023.999M would print as 1024.00M: say 1.00G instead.
        if value >= 1023.995 && i > 0 {
            let (bigger, unit) = UNITS[i - 1];
            return format!("{:.2}{unit}", bytes as f64 / (1u64 << bigger) as f64);
        }
        return format!("{value:.2}{unit}");
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_suffixed_sizes() {
        let cases = [
            ("0", 0),
            ("4096", 4096),
            ("4K", 4096),
            ("4k", 4096),
            ("64KiB", 64 << 10),
            ("1M", 1 << 20),
            ("2mb", 2 << 20),
            ("1G", 1 << 30),
            (" 16 G ", 16 << 30),
            ("1T", 1 << 40),
            ("0x1000", 4096),
            ("0x10M", 16 << 20),
            ("12B", 12),
            ("18446744073709551615", u64::MAX),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_size() {
        for input in [
            "",
            "K",
            "-1",
            "1.5M",
            "4X",
            "1KK",
            "0x",
            "18446744073709551616",
            "16777216T",
            "1 2",
        ] {
            let err = parse_size(input).expect_err(input);
            assert!(err.to_string().contains("invalid size"), "{err}");
        }
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(1023), "1023B");
        assert_eq!(format_size(4096), "4K");
        assert_eq!(format_size(6 << 10), "6K");
        assert_eq!(format_size(1 << 20), "1M");
        assert_eq!(format_size(64 << 20), "64M");
        assert_eq!(format_size(1 << 30), "1G");
        assert_eq!(format_size(3 << 40), "3T");
        for bytes in [4096, 1 << 20, 1000, 1 << 30, 3 << 40] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
    }

    #[test]
    fn formats_inexact_sizes_with_two_decimals() {
        assert_eq!(format_size(2_578_848 << 10), "2.46G");
        assert_eq!(format_size(5000), "4.88K");
        assert_eq!(format_size(1536 << 20), "1.50G");
        assert_eq!(format_size(1025), "1.00K");
        assert_eq!(format_size((1 << 20) + (512 << 10) + 1), "1.50M");
        assert_eq!(format_size((1 << 30) + 4096), "1.00G");
        assert_eq!(format_size((1 << 30) - 4096), "1.00G");
        assert_eq!(format_size((1 << 20) - 1), "1.00M");
        assert_eq!(format_size(u64::MAX), "16777216.00T");
    }
}
