// SPDX-License-Identifier: GPL-2.0

//! One mmap vs many: 64 MiB of a buffer mapped as one mapping vs as 16384 mappings of 4 KiB,
//! for a HUGE buffer with the default (folio) mapping and with `HUGE_MAP`.

use contigmem::{AllocOptions, Device, Kind, Mapping};
use contigmem_bench::schema::OneVsMany;

use crate::util::{faults, progress, timed, touch_range};

const SIZE: u64 = 64 << 20;
const PAGE: usize = 4096;

fn measure(dev: &Device, huge_map: bool, many: bool) -> Result<OneVsMany, String> {
    let buf = dev
        .alloc_with(Kind::Huge, SIZE, &AllocOptions::new().huge_map(huge_map))
        .map_err(|e| e.to_string())?;
    let before = faults();
    let (maps, map_ns) = timed(|| -> Result<Vec<Mapping>, String> {
        if many {
            (0..SIZE / PAGE as u64)
                .map(|page| buf.map_range(page, PAGE).map_err(|e| e.to_string()))
                .collect()
        } else {
            Ok(vec![buf.map().map_err(|e| e.to_string())?])
        }
    });
    let mut maps = maps?;
    let ((), touch_ns) = timed(|| {
        for m in &mut maps {
            touch_range(m.as_mut_ptr(), m.len());
        }
    });
    let faults = faults() - before;
    let mappings = maps.len() as u64;
    let ((), unmap_ns) = timed(|| drop(maps));
    let suffix = if huge_map { "-hugemap" } else { "" };
    Ok(OneVsMany {
        method: format!("{}{suffix}", if many { "many" } else { "one" }),
        size: SIZE,
        mappings,
        map_ns,
        touch_ns,
        unmap_ns,
        faults,
    })
}

pub fn run(dev: &Device) -> Vec<OneVsMany> {
    let mut out = Vec::new();
    for huge_map in [false, true] {
        for many in [false, true] {
            match measure(dev, huge_map, many) {
                Ok(row) => {
                    progress(&format!(
                        "  {}: {} mappings, {:.2} ms map+touch+unmap, {} faults",
                        row.method,
                        row.mappings,
                        (row.map_ns + row.touch_ns + row.unmap_ns) as f64 / 1e6,
                        row.faults
                    ));
                    out.push(row);
                }
                Err(e) => progress(&format!("  one vs many: not measured: {e}")),
            }
        }
    }
    out
}
