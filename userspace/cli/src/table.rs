// SPDX-License-Identifier: GPL-2.0

//! Human-readable output: aligned tables and short forms of durations and addresses.

use std::fmt;

/// A table printed with left-aligned columns separated by two spaces.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let width = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:<w$}"))
                .collect();
            writeln!(f, "{}", line.join("  ").trim_end())?;
        }
        Ok(())
    }
}

/// `ns` in the largest unit that keeps it readable: `850 ns`, `12.3 us`, `4.56 ms`, `1.20 s`.
pub fn duration(ns: u64) -> String {
    let ns_f = ns as f64;
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} us", ns_f / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns_f / 1e6),
        _ => format!("{:.2} s", ns_f / 1e9),
    }
}

/// A physical address in hex, or `hidden` when the kernel reported 0 (no `CAP_SYS_ADMIN`).
pub fn phys(addr: u64) -> String {
    if addr == 0 {
        "hidden".into()
    } else {
        format!("{addr:#x}")
    }
}

/// `yes` or `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let mut t = Table::new(&["KIND", "SIZE"]);
        t.row(vec!["kmalloc".into(), "1M".into()]);
        t.row(vec!["huge".into(), "64M".into()]);
        assert_eq!(t.to_string(), "KIND     SIZE\nkmalloc  1M\nhuge     64M\n");
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration(0), "0 ns");
        assert_eq!(duration(999), "999 ns");
        assert_eq!(duration(12_345), "12.3 us");
        assert_eq!(duration(4_560_000), "4.56 ms");
        assert_eq!(duration(1_200_000_000), "1.20 s");
    }

    #[test]
    fn hidden_physical_addresses_say_so() {
        assert_eq!(phys(0), "hidden");
        assert_eq!(phys(0x1_0000_0000), "0x100000000");
    }
}
