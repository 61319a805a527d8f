// SPDX-License-Identifier: GPL-2.0

//! `contigmem alloc`: allocate one buffer, map it, write and read every page, report it.

use std::time::Duration;

use contigmem::{format_size, AllocOptions, BufferInfo, Device, Error, Kind};

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
    println!("node:        {}", node_line(&p.info));
    println!("alloc time:  {}", duration(p.alloc_ns));
    println!("uninit:      {}", yes_no(p.uninit));
    println!("read zero:   {}", yes_no(p.was_zero));
    match &p.pattern_error {
        None => println!("pattern:     written and read back"),
        Some(m) => println!("pattern:     MISMATCH {m}"),
    }
}

/// The node line: where the first page is, whether the rest is there too, strict or not.
fn node_line(info: &BufferInfo) -> String {
    let pages = if info.off_node_pages == 0 {
        "every page".to_string()
    } else {
        format!("{} pages on other nodes", info.off_node_pages)
    };
    let strict = if info.strict_node { ", strict" } else { "" };
    format!("{} ({pages}{strict})", info.node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_line_says_where_the_pages_are() {
        let mut info = BufferInfo {
            id: 1,
            kind: Kind::Vmalloc,
            contiguous: false,
            uninit: false,
            huge_map: false,
            pinnable: true,
            size: 1 << 20,
            mmap_offset: 0,
            phys_addr: 0,
            segments: 3,
            mappings: 0,
            node: 1,
            off_node_pages: 0,
            strict_node: true,
            dmabufs: 0,
        };
        assert_eq!(node_line(&info), "1 (every page, strict)");
        info.off_node_pages = 12;
        info.strict_node = false;
        assert_eq!(node_line(&info), "1 (12 pages on other nodes)");
    }
}
