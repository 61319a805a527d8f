// SPDX-License-Identifier: GPL-2.0

//! `contigmem verify`: check through `/proc/self/pagemap` that a buffer is what INFO says.

use contigmem::{AllocOptions, Device, Error, Kind};
use serde::Serialize;

use crate::probe::{self, Check, Probe};
use crate::table::Table;
use crate::Output;

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    probe: &'a Probe,
    checks: &'a [Check],
}

/// Runs the checks; `Ok(false)` when one fails.
pub fn run(dev: &Device, kind: Kind, size: u64, out: Output) -> Result<bool, Error> {
    let (probe, buf, map) = probe::run(dev, kind, size, &AllocOptions::default())?;
    drop(map);
    buf.free()?;
    let checks = probe.checks();
    let ok = checks.iter().all(|c| c.ok);
    if out.json {
        out.print_json(&Report {
            ok,
            probe: &probe,
            checks: &checks,
        });
    } else {
        let mut table = Table::new(&["CHECK", "EXPECTED", "SEEN", "RESULT"]);
        for c in &checks {
            let result = if c.ok { "ok" } else { "FAIL" };
            table.row(vec![
                c.what.clone(),
                c.expected.clone(),
                c.seen.clone(),
                result.into(),
            ]);
        }
        print!("{table}");
        println!(
            "{} {} buffer {}: {}",
            kind,
            contigmem::format_size(probe.size),
            probe.id,
            if ok { "verified" } else { "MISMATCH" }
        );
    }
    Ok(ok)
}
