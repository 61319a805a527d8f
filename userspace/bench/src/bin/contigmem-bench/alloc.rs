// SPDX-License-Identifier: GPL-2.0

//! Allocation latency of each kind across sizes, and where each kind stops.

use contigmem::{Device, Kind, Version};
use contigmem_bench::schema::{AllocPoint, Limit};

use crate::util::{errno_name, median, progress, timed};
use crate::Plan;

/// The sweep: every power of two from 4 KiB to 4 MiB, then ×4 to `max`.
fn sizes(max: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut s = 4096;
    while s <= max {
        v.push(s);
        s *= if s < 4 << 20 { 2 } else { 4 };
    }
    v
}

/// Repeats at `size`: the plan's at small sizes, fewer as the sizes grow.
fn repeats(plan: &Plan, size: u64) -> u32 {
    match size {
        s if s >= 256 << 20 => plan.repeats.min(3),
        s if s >= 16 << 20 => plan.repeats.min(5),
        _ => plan.repeats,
    }
}

/// One latency point: `samples` ALLOC/INFO/FREE rounds.
fn point(dev: &Device, kind: Kind, size: u64, samples: u32) -> AllocPoint {
    let mut kernel_ns = Vec::new();
    let mut ioctl_ns = Vec::new();
    let mut p = AllocPoint {
        kind: kind.name().to_owned(),
        size,
        samples,
        ..Default::default()
    };
    for _ in 0..samples {
        let (result, ns) = timed(|| dev.alloc(kind, size));
        match result {
            Ok(buf) => {
                kernel_ns.push(buf.alloc_ns());
                ioctl_ns.push(ns);
                if let Ok(info) = buf.info() {
                    p.segments = info.segments;
                }
                p.ok += 1;
            }
            Err(e) => {
                p.errno.get_or_insert_with(|| errno_name(e.errno()));
                // A size that fails once will fail again: don't grind the allocator.
                break;
            }
        }
    }
    p.samples = p.ok + u32::from(p.errno.is_some());
    p.ns_min = kernel_ns.iter().copied().min().unwrap_or(0);
    p.ns_max = kernel_ns.iter().copied().max().unwrap_or(0);
    p.ns_median = median(&mut kernel_ns);
    p.ioctl_ns_median = median(&mut ioctl_ns);
    p
}

/// Allocation latency of every kind at every size of the sweep up to the kind's limit (and
/// one size past it, to show the failure).
pub fn latency(dev: &Device, plan: &Plan) -> Vec<AllocPoint> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for size in sizes(plan.sweep_max) {
            let p = point(dev, kind, size, repeats(plan, size));
            let failed = p.ok == 0;
            progress(&format!(
                "  {kind} {}: median {} ns{}",
                contigmem::format_size(size),
                p.ns_median,
                p.errno
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
            out.push(p);
            if failed {
                break;
            }
        }
    }
    out
}

/// For each kind: double the size from 4 KiB until ALLOC fails or the advertised maximum (or
/// `most`) is passed; then the advertised maximum itself and one page more, when within `most`.
pub fn limits(dev: &Device, version: &Version, most: u64) -> Vec<Limit> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let advertised = version.max_size(kind).unwrap_or(0);
        let mut limit = Limit {
            kind: kind.name().to_owned(),
            advertised,
            ..Default::default()
        };
        let try_size = |size: u64, limit: &mut Limit| match dev.alloc(kind, size) {
            Ok(_) => {
                limit.largest_ok = limit.largest_ok.max(size);
                true
            }
            Err(e) => {
                if limit.first_fail.is_none() {
                    limit.first_fail = Some(size);
                    limit.errno = Some(errno_name(e.errno()));
                }
                false
            }
        };
        let mut size = 4096;
        while size <= advertised.min(most) && try_size(size, &mut limit) {
            size *= 2;
        }
        if limit.first_fail.is_none() && advertised < most {
            try_size(advertised, &mut limit);
            try_size(advertised + version.page_size, &mut limit);
        }
        progress(&format!(
            "  {kind}: largest {} ok, first failure {} ({})",
            contigmem::format_size(limit.largest_ok),
            limit
                .first_fail
                .map(contigmem::format_size)
                .unwrap_or_default(),
            limit.errno.as_deref().unwrap_or("-")
        ));
        out.push(limit);
    }
    out
}
