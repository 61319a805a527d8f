// SPDX-License-Identifier: GPL-2.0

//! `contigmem demo`: one buffer of each kind, side by side.

use contigmem::{format_size, AllocOptions, Device, Error, Kind};
use serde::Serialize;

use crate::probe::{self, Pages};
use crate::table::{duration, phys, yes_no, Table};
use crate::Output;

/// A representative size for each kind; huge is a knob.
fn size_of(kind: Kind, huge: u64) -> u64 {
    match kind {
        Kind::Kmalloc | Kind::Kzalloc => 1 << 20,
        Kind::Vmalloc => 64 << 20,
        Kind::Pages => 4 << 20,
        Kind::Huge => huge,
    }
}

/// One row of the demo.
#[derive(Serialize)]
struct Row {
    kind: Kind,
    size: u64,
    contiguous: Option<bool>,
    /// INFO's segment count.
    segments: Option<u64>,
    /// The segment count from pagemap, when frame numbers are visible.
    pagemap_segments: Option<usize>,
    phys_addr: Option<u64>,
    alloc_ns: Option<u64>,
    /// Every check of `verify` passed (pagemap checks only when frame numbers are visible).
    verified: bool,
    error: Option<String>,
}

/// Runs the demo; `Ok(false)` when a kind failed.
pub fn run(dev: &Device, huge_size: u64, out: Output) -> Result<bool, Error> {
    let version = dev.version()?;
    let rows: Vec<Row> = Kind::ALL
        .into_iter()
        .filter(|&kind| version.supports(kind))
        .map(|kind| row(dev, kind, size_of(kind, huge_size)))
        .collect();
    let ok = rows.iter().all(|r| r.verified);
    if out.json {
        out.print_json(&rows);
        return Ok(ok);
    }
    let mut table = Table::new(&[
        "KIND",
        "SIZE",
        "CONTIGUOUS",
        "SEGMENTS",
        "PHYS ADDR",
        "ALLOC TIME",
        "VERIFIED",
    ]);
    for r in &rows {
        let dash = || "-".to_string();
        table.row(vec![
            r.kind.to_string(),
            format_size(r.size),
            r.contiguous
                .map(|c| yes_no(c).to_string())
                .unwrap_or_else(dash),
            r.segments.map(|s| s.to_string()).unwrap_or_else(dash),
            r.phys_addr.map(phys).unwrap_or_else(dash),
            r.alloc_ns.map(duration).unwrap_or_else(dash),
            match &r.error {
                Some(e) => format!("FAIL: {e}"),
                None => yes_no(r.verified).to_string(),
            },
        ]);
    }
    print!("{table}");
    Ok(ok)
}

fn row(dev: &Device, kind: Kind, size: u64) -> Row {
    let failed = |error: String| Row {
        kind,
        size,
        contiguous: None,
        segments: None,
        pagemap_segments: None,
        phys_addr: None,
        alloc_ns: None,
        verified: false,
        error: Some(error),
    };
    let (probe, buf, map) = match probe::run(dev, kind, size, &AllocOptions::default()) {
        Ok(done) => done,
        Err(e) => return failed(e.to_string()),
    };
    drop(map);
    if let Err(e) = buf.free() {
        return failed(e.to_string());
    }
    let hidden = matches!(probe.pagemap, Pages::Unavailable { .. });
    // Without root, the pagemap checks cannot run; the others still must pass.
    let failures: Vec<String> = probe
        .checks()
        .into_iter()
        .filter(|c| !(c.ok || hidden && c.what == "pagemap readable"))
        .map(|c| format!("{}: expected {}, saw {}", c.what, c.expected, c.seen))
        .collect();
    Row {
        kind,
        size: probe.size,
        contiguous: Some(probe.info.contiguous),
        segments: Some(probe.info.segments),
        pagemap_segments: match probe.pagemap {
            Pages::Visible { segments, .. } => Some(segments),
            Pages::Unavailable { .. } => None,
        },
        phys_addr: Some(probe.phys_addr),
        alloc_ns: Some(probe.alloc_ns),
        verified: failures.is_empty(),
        error: (!failures.is_empty()).then(|| failures.join("; ")),
    }
}
