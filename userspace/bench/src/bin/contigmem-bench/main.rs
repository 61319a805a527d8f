// SPDX-License-Identifier: GPL-2.0

//! `contigmem-bench`: the measurements of `make bench`, taken in one guest boot and printed as
//! one JSON line (`CONTIGMEM-BENCH-JSON {...}`) for `contigmem-report` on the host.
//!
//! Run as root in the benchmark guest with the module loaded. Progress goes to stderr. Each
//! section is independent: a comparison that cannot be made (no dma-buf heap, no 1 GiB pool)
//! becomes a row with `ok: false` and the reason, never a missing row or a made-up number.
//!
//! Usage: `contigmem-bench [--quick] [--accel NAME] [--only SECTION,...]` (`--quick`: fewer
//! repeats and sizes, for the test suite's smoke run; `--accel`: the accelerator to record,
//! by default `$CONTIGMEM_ACCEL`, which qemu/run.sh sets; `--only`: just those sections, of
//! [`SECTIONS`], the others left empty in the report).

mod alloc;
mod cache;
mod maptouch;
mod meta;
mod numa;
mod onevsmany;
mod scale;
mod transfer;
mod util;

use std::time::Instant;

use contigmem::Device;
use contigmem_bench::schema::{Report, JSON_MARKER};

/// How much to measure.
#[derive(Clone, Copy)]
pub struct Plan {
    /// Repeats of each latency point at small sizes (fewer for big ones).
    pub repeats: u32,
    /// The map-and-touch sizes.
    pub map_sizes: &'static [u64],
    /// Largest size of the allocation-latency sweep.
    pub sweep_max: u64,
    /// Largest size the limit probe tries (u64::MAX: up to each kind's advertised maximum).
    pub limit_max: u64,
    /// The live-buffer counts of the scale section, reached in one growing pass.
    pub scale_points: &'static [u64],
    /// ALLOC+FREE pairs per timed round at each of them.
    pub scale_pairs: u64,
    /// The point at which close() of a file holding that many buffers is timed.
    pub scale_close: u64,
    /// The point at which debugfs `buffers` is read whole.
    pub scale_debugfs: u64,
    /// Seconds the scale section may spend growing its population before it gives up.
    pub scale_budget_s: u64,
    /// The PAGES and HUGE buffers of the cache-mode section.
    pub cache_pages: u64,
    pub cache_huge: u64,
}

const FULL: Plan = Plan {
    repeats: 9,
    map_sizes: &[256 << 20, 1 << 30],
    sweep_max: 1 << 30,
    limit_max: u64::MAX,
    scale_points: &[1_000, 16_000, 256_000, 1_000_000],
    scale_pairs: 2_000,
    scale_close: 256_000,
    scale_debugfs: 1_000_000,
    scale_budget_s: 900,
    cache_pages: 4 << 20,
    cache_huge: 64 << 20,
};

const QUICK: Plan = Plan {
    repeats: 2,
    map_sizes: &[8 << 20],
    sweep_max: 8 << 20,
    limit_max: 64 << 20,
    scale_points: &[1_000, 16_000],
    scale_pairs: 500,
    scale_close: 16_000,
    scale_debugfs: 16_000,
    scale_budget_s: 120,
    cache_pages: 4 << 20,
    cache_huge: 8 << 20,
};

/// The sections, in the order they run.
pub const SECTIONS: [&str; 8] = [
    "alloc",
    "maptouch",
    "transfer",
    "cache",
    "onevsmany",
    "numa",
    "scale",
    "limits",
];

fn usage(why: &str) -> ! {
    eprintln!("contigmem-bench: {why}");
    eprintln!("usage: contigmem-bench [--quick] [--accel NAME] [--only SECTION,...]");
    eprintln!("sections: {}", SECTIONS.join(", "));
    std::process::exit(2);
}

fn main() {
    let mut plan = FULL;
    // qemu/run.sh tells the guest which accelerator it chose, and why.
    let mut accel = std::env::var("CONTIGMEM_ACCEL").unwrap_or_else(|_| "unknown".into());
    let mut only: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => plan = QUICK,
            "--accel" => accel = args.next().unwrap_or_default(),
            "--only" => {
                let list: Vec<String> = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_string)
                    .collect();
                if let Some(bad) = list.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                    usage(&format!("unknown section {bad:?}"));
                }
                only = Some(list);
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let wanted = |section: &str| only.as_ref().is_none_or(|l| l.iter().any(|s| s == section));
    if let Err(e) = run(plan, accel, wanted) {
        eprintln!("contigmem-bench: {e}");
        std::process::exit(1);
    }
}

fn run(plan: Plan, accel: String, wanted: impl Fn(&str) -> bool) -> Result<(), String> {
    let start = Instant::now();
    let dev = Device::open().map_err(|e| e.to_string())?;
    let version = dev.version().map_err(|e| format!("VERSION: {e}"))?;
    let mut report = Report {
        meta: meta::collect(&version, accel, plan.repeats),
        ..Default::default()
    };
    if wanted("alloc") {
        util::progress("allocation latency");
        report.alloc = alloc::latency(&dev, &plan);
    }
    if wanted("maptouch") {
        util::progress("map and touch");
        report.map_touch = maptouch::run(&dev, &plan, &mut report.meta.notes);
    }
    if wanted("transfer") {
        util::progress("mmap vs read()");
        report.transfer = transfer::run(&dev, &plan);
    }
    if wanted("cache") {
        util::progress("cache modes (TCG does not model caches: faults and bytes are exact)");
        report.cache = cache::run(&dev, &version, &plan, &mut report.meta.notes);
    }
    if wanted("onevsmany") {
        util::progress("one mmap vs many");
        report.one_vs_many = onevsmany::run(&dev);
    }
    if wanted("numa") {
        util::progress("NUMA nodes");
        report.numa = numa::run(&dev, &plan, &mut report.meta.notes);
    }
    if wanted("scale") {
        util::progress("many buffers");
        report.scale = scale::run(&dev, &plan, &mut report.meta.notes);
    }
    // Last: probing for the largest allocation runs memory low.
    if wanted("limits") {
        util::progress("limits");
        report.limits = alloc::limits(&dev, &version, plan.limit_max);
    }
    report.meta.seconds = start.elapsed().as_secs_f64();
    let json = serde_json::to_string(&report).map_err(|e| format!("JSON: {e}"))?;
    println!("{JSON_MARKER}{json}");
    util::progress(&format!("done in {:.1} s", report.meta.seconds));
    Ok(())
}
