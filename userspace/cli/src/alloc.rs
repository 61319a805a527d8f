// SPDX-License-Identifier: GPL-2.0

//! `contigmem alloc`: allocate one buffer, map it, write and read every page, report it.

use std::time::Duration;

use contigmem::{format_size, AllocOptions, Device, Error, Kind};

use crate::probe::{self, Pages, Probe};
use crate::table::{duration, phys, yes_no};
use crate::Output;

pub struct Args {
    pub kind: Kind,
    pub size: u64,
    pub options: AllocOptions,
    pub hold: Option<u64>,
}

pub fn run(dev: &Device, args: &Args, out: Output) -> Result<bool, Error> {
    let (probe, buf, map) = probe::run(dev, args.kind, args.size, &args.options)?;
    if out.json {
        out.print_json(&probe);
    } else {
        print_human(&probe);
    }
    if let Some(seconds) = args.hold {
        if !out.json {
            println!("holding buffer {} for {seconds} s", probe.id);
        }
        std::thread::sleep(Duration::from_secs(seconds));
    }
    drop(map);
    buf.free()?;
    // A buffer that was not zeroed although it should have been is a kernel bug too.
    Ok(probe.pattern_error.is_none() && (probe.uninit || probe.was_zero))
}

fn print_human(p: &Probe) {
    println!("id:          {}", p.id);
    println!("kind:        {}", p.kind);
    println!(
        "size:        {} (asked {})",
        format_size(p.size),
        format_size(p.requested_size)
    );
    println!("phys addr:   {}", phys(p.phys_addr));
    println!("contiguous:  {}", yes_no(p.info.contiguous));
    print!("segments:    {} (INFO)", p.info.segments);
    match &p.pagemap {
        Pages::Visible { segments, .. } => println!(", {segments} (pagemap)"),
        Pages::Unavailable { .. } => println!(),
    }
    println!("node:        {}", p.info.node);
    println!("alloc time:  {}", duration(p.alloc_ns));
    println!("uninit:      {}", yes_no(p.uninit));
    println!("read zero:   {}", yes_no(p.was_zero));
    match &p.pattern_error {
        None => println!("pattern:     written and read back"),
        Some(m) => println!("pattern:     MISMATCH {m}"),
    }
}
