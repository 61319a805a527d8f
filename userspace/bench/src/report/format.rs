// SPDX-License-Identifier: GPL-2.0
//! Human formats shared by the markdown and the plots: sizes in binary units ("4 KiB",
//! "2 MiB", "1 GiB"), times in ns/µs/ms/s, ratios ("3.42×") and markdown table cells.

/// Binary units from the largest, with their long and short names.
const UNITS: [(u64, &str, &str); 4] = [
    (1 << 40, "TiB", "T"),
    (1 << 30, "GiB", "G"),
    (1 << 20, "MiB", "M"),
    (1 << 10, "KiB", "K"),
];

/// `bytes` in the largest binary unit it reaches: "4 KiB", "1.5 MiB", "100 B".
/// A size just past a round one keeps its remainder ("4 MiB + 4 KiB"), where two decimals
/// would hide it.
pub fn size(bytes: u64) -> String {
    match UNITS.iter().find(|(unit, _, _)| bytes >= *unit) {
        Some((unit, name, _)) if bytes % unit != 0 && bytes % unit < unit / 200 => {
            format!("{} {name} + {}", bytes / unit, size(bytes % unit))
        }
        Some((unit, name, _)) => format!("{} {name}", scaled(bytes, *unit)),
        None => format!("{bytes} B"),
    }
}

/// `bytes` the short way, for plot axes: "4K", "2M", "1G", "512".
pub fn size_short(bytes: u64) -> String {
    match UNITS.iter().find(|(unit, _, _)| bytes >= *unit) {
        Some((unit, _, short)) => format!("{}{short}", scaled(bytes, *unit)),
        None => bytes.to_string(),
    }
}

/// `bytes / unit` as an integer when exact, else with at most two decimals.
fn scaled(bytes: u64, unit: u64) -> String {
    if bytes % unit == 0 {
        (bytes / unit).to_string()
    } else {
        trim_decimals(&format!("{:.2}", bytes as f64 / unit as f64))
    }
}

/// "1.50" -> "1.5", "2.00" -> "2".
fn trim_decimals(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// A duration for tables: "812 ns", "12.34 µs", "4.56 ms", "1.23 s".
pub fn duration(ns: u64) -> String {
    duration_with(ns as f64, |value| format!("{value:.2}"))
}

/// A duration for plot axes, without trailing zeros: "100 µs", "1.5 ms".
pub fn duration_short(ns: f64) -> String {
    duration_with(ns, |value| trim_decimals(&format!("{value:.2}")))
}

fn duration_with(ns: f64, number: impl Fn(f64) -> String) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{} µs", number(ns / 1e3))
    } else if ns < 1e9 {
        format!("{} ms", number(ns / 1e6))
    } else {
        format!("{} s", number(ns / 1e9))
    }
}

/// Seconds as a duration for tables: "420.00 ms", "1.23 s".
pub fn seconds(s: f64) -> String {
    duration((s * 1e9).round() as u64)
}

/// Nanoseconds as milliseconds with two decimals, without the unit: "12.34".
pub fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

/// A throughput: "1234.5 MiB/s".
pub fn rate(mib_per_s: f64) -> String {
    format!("{mib_per_s:.1} MiB/s")
}

/// `num / den`, or None when the denominator is zero or either is not a finite number.
pub fn ratio(num: f64, den: f64) -> Option<f64> {
    let value = num / den;
    (den != 0.0 && value.is_finite()).then_some(value)
}

/// A ratio as "3.42×", or "—" when there is none.
pub fn times(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{v:.2}×"))
}

/// An optional value, or "—".
pub fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".to_string())
}

/// Text made safe for one markdown table cell: no '|' column breaks, no line breaks.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Text as inline code; backticks inside become quotes, so the span cannot break.
pub fn code(text: &str) -> String {
    format!("`{}`", cell(&text.replace('`', "'")))
}

/// A count with thousands separators: "1,000,000".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A count the short way, for plot axes: "500", "1k", "16k", "1.5M"; empty for a fraction.
pub fn count_short(n: f64) -> String {
    if !n.is_finite() || n < 0.0 || n.fract() != 0.0 {
        return String::new();
    }
    let value = |unit: f64| trim_decimals(&format!("{:.2}", n / unit));
    if n >= 1e9 {
        format!("{}G", value(1e9))
    } else if n >= 1e6 {
        format!("{}M", value(1e6))
    } else if n >= 1e3 {
        format!("{}k", value(1e3))
    } else {
        format!("{n:.0}")
    }
}

/// "1 fault", "2 faults".
pub fn plural(count: u64, word: &str) -> String {
    if count == 1 {
        format!("1 {word}")
    } else {
        format!("{count} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(4096), "4 KiB");
        assert_eq!(size(2 << 20), "2 MiB");
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(3 << 19), "1.5 MiB");
        assert_eq!(size(100), "100 B");
        assert_eq!(size_short(4096), "4K");
        assert_eq!(size_short(1 << 30), "1G");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(812), "812 ns");
        assert_eq!(duration(12_345), "12.35 µs");
        assert_eq!(duration(4_560_000), "4.56 ms");
        assert_eq!(duration(1_230_000_000), "1.23 s");
        assert_eq!(duration_short(100_000.0), "100 µs");
        assert_eq!(ms(12_345_678), "12.35");
        assert_eq!(seconds(1.234), "1.23 s");
        assert_eq!(seconds(0.42), "420.00 ms");
    }

    #[test]
    fn ratios() {
        assert_eq!(times(ratio(3.0, 2.0)), "1.50×");
        assert_eq!(times(ratio(3.0, 0.0)), "—");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(256_000), "256,000");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count_short(500.0), "500");
        assert_eq!(count_short(1_000.0), "1k");
        assert_eq!(count_short(16_000.0), "16k");
        assert_eq!(count_short(1_500_000.0), "1.5M");
        assert_eq!(count_short(2.5), "");
    }
}
