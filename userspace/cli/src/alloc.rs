// SPDX-License-Identifier: GPL-2.0

//! `contigmem alloc`: allocate one buffer, map it, write and read every page, report it; with
//! `--export`, check its dma-buf too.

use std::time::Duration;

use contigmem::{
    format_size, parse_size, AllocOptions, BufferInfo, Cache, Device, Errno, Error, Kind,
};
use serde::Serialize;

use crate::export::{self, Export};
use crate::failure::Failure;
use crate::probe::{self, Pages, Probe};
use crate::table::{duration, phys, yes_no};
use crate::Output;

/// The arguments of `contigmem alloc`.
#[derive(clap::Args)]
pub struct Args {
    /// The allocator.
    #[arg(long, value_parser = crate::kind_parser())]
    pub kind: Kind,
    /// Bytes to allocate, rounded up to whole pages.
    #[arg(long, value_parser = parse_size)]
    pub size: u64,
    /// Do not zero the memory (root only).
    #[arg(long)]
    pub uninit: bool,
    /// Prefer this NUMA node (default: the local node of the CPU the call runs on).
    #[arg(long)]
    pub node: Option<u32>,
    /// Allocate on --node only: fail (ENOMEM) rather than take another node's memory.
    #[arg(long, requires = "node")]
    pub strict_node: bool,
    /// Physical alignment: a power of two >= the page size (pages and huge only).
    #[arg(long, value_parser = parse_size)]
    pub align: Option<u64>,
    /// Caching mode: write-back, write-combining, uncached (pages and huge only; wc and uc need
    /// x86 PAT: `contigmem info` lists the modes).
    #[arg(long, value_parser = crate::cache_parser(), default_value = "wb")]
    pub cache: Cache,
    /// Keep the whole buffer below this physical address, for a device that cannot reach
    /// higher: 4G for a 32-bit DMA engine (vmalloc, pages and huge only).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub below: Option<u64>,
    /// Export the buffer as a dma-buf, map it and check that it shows the bytes written through
    /// /dev/contigmem; with --hold it stays open (see /sys/kernel/debug/dma_buf/bufinfo).
    #[arg(long)]
    pub export: bool,
    /// Keep the buffer allocated and mapped for this many seconds before freeing it.
    #[arg(long, value_name = "SECONDS")]
    pub hold: Option<u64>,
}

impl Args {
    /// The ALLOC options these arguments ask for.
    pub fn options(&self) -> AllocOptions {
        AllocOptions::new()
            .uninit(self.uninit)
            .node(self.node)
            .strict_node(self.strict_node)
            .align(self.align.unwrap_or(0))
            .cache(self.cache)
            .phys_limit(self.below.unwrap_or(0))
    }
}

/// What `contigmem alloc --json` prints: the probe's fields, and the export's with --export.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    probe: &'a Probe,
    #[serde(skip_serializing_if = "Option::is_none")]
    export: Option<&'a Export>,
}

pub fn run(dev: &Device, args: &Args, out: Output) -> Result<bool, Failure> {
    let (probe, buf, map) = probe::run(dev, args.kind, args.size, &args.options())
        .map_err(|e| explain_alloc(dev, args, e))?;
    // The dma-buf stays open until the buffer is freed: through --hold, in bufinfo.
    let (export, dmabuf) = if args.export {
        Some(export::run(&buf)?)
    } else {
        None
    }
    .unzip();
    let export = export.as_ref();
    if out.json {
        out.print_json(&Report {
            probe: &probe,
            export,
        });
    } else {
        print_human(&probe, args.cache);
        if let Some(e) = export {
            for line in export::lines(e, probe.size) {
                println!("{line}");
            }
        }
    }
    if let Some(seconds) = args.hold {
        if !out.json {
            match export {
                Some(e) => println!(
                    "holding buffer {} and its dma-buf (fd {}, inode {} in \
                     /sys/kernel/debug/dma_buf/bufinfo) for {seconds} s",
                    probe.id, e.fd, e.inode
                ),
                None => println!("holding buffer {} for {seconds} s", probe.id),
            }
        }
        std::thread::sleep(Duration::from_secs(seconds));
    }
    drop(map);
    drop(dmabuf);
    buf.free()?;
    // A buffer that was not zeroed although it should have been is a kernel bug too, as is one
    // of another caching mode than asked.
    Ok(probe.pattern_error.is_none()
        && (probe.uninit || probe.was_zero)
        && probe.info.cache == args.cache
        && export.map_or(true, |e| e.ok))
}

/// `error`, with its cause when ALLOC refused what these arguments ask for.
fn explain_alloc(dev: &Device, args: &Args, error: Error) -> Failure {
    let Error::Os { op: "ALLOC", errno } = error else {
        return error.into();
    };
    // The modes offered tell a module without PAT from one older than cache modes.
    let offered = (args.cache != Cache::Wb)
        .then(|| dev.version().ok().map(|v| v.cache_modes))
        .flatten();
    match why_alloc_failed(args, errno, offered.as_deref(), dev.page_size() as u64) {
        Some(why) => Failure::explained(error, why),
        None => error.into(),
    }
}

/// What the arguments have to do with ALLOC's `errno`, when they explain it: the kinds that
/// take `--cache` and `--below`, the modes this kernel offers (`offered`, from VERSION, when
/// known), a limit too low or with nothing free below it.
fn why_alloc_failed(
    args: &Args,
    errno: Errno,
    offered: Option<&[Cache]>,
    page_size: u64,
) -> Option<String> {
    let (kind, cache) = (args.kind, args.cache);
    let below = args.below.unwrap_or(0);
    let takes_cache = matches!(kind, Kind::Pages | Kind::Huge);
    let takes_below = matches!(kind, Kind::Vmalloc | Kind::Pages | Kind::Huge);
    let modes = |modes: &[Cache]| {
        modes
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(match errno {
        Errno::INVAL if cache != Cache::Wb && !takes_cache => format!(
            "--cache {cache}: only kinds pages and huge take a caching mode; {kind} is \
             write-back only (drop --cache or use --kind pages or huge)"
        ),
        Errno::INVAL if cache != Cache::Wb && offered.is_some_and(<[Cache]>::is_empty) => {
            format!(
                "--cache {cache}: the module is older than caching modes (write-back only): \
                 load a contigmem.ko that lists them in `contigmem info`"
            )
        }
        Errno::INVAL if below != 0 && !takes_below => format!(
            "--below {}: only kinds vmalloc, pages and huge take a physical limit, not {kind}",
            format_size(below)
        ),
        Errno::INVAL if below != 0 && below < page_size => format!(
            "--below {}: the limit must be at least a page ({})",
            format_size(below),
            format_size(page_size)
        ),
        Errno::OPNOTSUPP if cache != Cache::Wb => format!(
            "--cache {cache}: this kernel does not offer it{}: write-combining and uncached \
             need x86 PAT (`nopat` turns it off)",
            offered
                .map(|m| format!(" (it offers {})", modes(m)))
                .unwrap_or_default()
        ),
        Errno::NOMEM if below != 0 => format!(
            "no {} of {kind} memory found below {}: below 4G it comes from ZONE_DMA32, and a \
             bound other than 4G can fail although memory below it is free (the allocator \
             need not hand out the lowest); try a smaller size or a higher --below",
            format_size(args.size),
            format_size(below)
        ),
        _ => return None,
    })
}

fn print_human(p: &Probe, cache: Cache) {
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
    println!("cache:       {}", cache_line(&p.info, cache));
    println!("alloc time:  {}", duration(p.alloc_ns));
    println!("uninit:      {}", yes_no(p.uninit));
    println!("read zero:   {}", yes_no(p.was_zero));
    match &p.pattern_error {
        None => println!("pattern:     written and read back"),
        Some(m) => println!("pattern:     MISMATCH {m}"),
    }
}

/// The cache line: the mode INFO reports, and what was asked when it differs.
fn cache_line(info: &BufferInfo, asked: Cache) -> String {
    if info.cache == asked {
        info.cache.to_string()
    } else {
        format!("{} MISMATCH: asked {asked}", info.cache)
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

    fn info() -> BufferInfo {
        BufferInfo {
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
            cache: Cache::Wb,
        }
    }

    fn args(kind: Kind, cache: Cache, below: Option<u64>) -> Args {
        Args {
            kind,
            size: 64 << 20,
            uninit: false,
            node: None,
            strict_node: false,
            align: None,
            cache,
            below,
            export: false,
            hold: None,
        }
    }

    #[test]
    fn the_json_report_adds_the_export_to_the_probe() {
        let probe = crate::probe::tests::probe(
            Kind::Pages,
            1,
            Pages::Unavailable {
                reason: "hidden".into(),
            },
        );
        let plain = serde_json::to_value(Report {
            probe: &probe,
            export: None,
        })
        .expect("serialisable");
        assert_eq!(plain, serde_json::to_value(&probe).expect("serialisable"));
        assert_eq!(plain["info"]["cache"], "wb");
        let export = Export {
            fd: 3,
            size: 8192,
            inode: 41,
            dmabufs: 1,
            mismatch: None,
            ok: true,
        };
        let with = serde_json::to_value(Report {
            probe: &probe,
            export: Some(&export),
        })
        .expect("serialisable");
        assert_eq!(with["id"], 1);
        assert_eq!(with["pagemap"]["status"], "unavailable");
        assert_eq!(
            with["export"],
            serde_json::json!({
                "fd": 3, "size": 8192, "inode": 41, "dmabufs": 1, "mismatch": null, "ok": true
            })
        );
    }

    #[test]
    fn the_node_line_says_where_the_pages_are() {
        let mut info = info();
        assert_eq!(node_line(&info), "1 (every page, strict)");
        info.off_node_pages = 12;
        info.strict_node = false;
        assert_eq!(node_line(&info), "1 (12 pages on other nodes)");
    }

    #[test]
    fn the_cache_line_shows_a_mode_other_than_asked() {
        let mut info = info();
        assert_eq!(cache_line(&info, Cache::Wb), "wb");
        info.cache = Cache::Wc;
        assert_eq!(cache_line(&info, Cache::Wc), "wc");
        assert_eq!(cache_line(&info, Cache::Uc), "wc MISMATCH: asked uc");
    }

    #[test]
    fn einval_for_a_cache_mode_names_the_kinds_that_take_it() {
        let why = |kind| {
            why_alloc_failed(&args(kind, Cache::Wc, None), Errno::INVAL, None, 4096)
                .expect("explained")
        };
        for kind in [Kind::Kmalloc, Kind::Kzalloc, Kind::Vmalloc] {
            let why = why(kind);
            assert!(
                why.starts_with("--cache wc: only kinds pages and huge"),
                "{why}"
            );
            assert!(why.contains(&format!("{kind} is write-back only")), "{why}");
        }
        let older = why_alloc_failed(
            &args(Kind::Pages, Cache::Uc, None),
            Errno::INVAL,
            Some(&[]),
            4096,
        )
        .expect("explained");
        assert!(older.contains("older than caching modes"), "{older}");
        // Nothing to say when the arguments do not explain it: the library's hint stays.
        let plain = args(Kind::Pages, Cache::Wb, None);
        assert_eq!(why_alloc_failed(&plain, Errno::INVAL, None, 4096), None);
        let huge_wc = args(Kind::Huge, Cache::Wc, None);
        assert_eq!(
            why_alloc_failed(&huge_wc, Errno::INVAL, Some(&Cache::ALL), 4096),
            None
        );
    }

    #[test]
    fn eopnotsupp_lists_the_modes_offered() {
        let args = args(Kind::Huge, Cache::Wc, None);
        let why =
            why_alloc_failed(&args, Errno::OPNOTSUPP, Some(&[Cache::Wb]), 4096).expect("explained");
        assert!(why.starts_with("--cache wc: this kernel does not offer it (it offers wb)"));
        assert!(why.contains("x86 PAT"), "{why}");
        let unknown = why_alloc_failed(&args, Errno::OPNOTSUPP, None, 4096).expect("explained");
        assert!(
            unknown.starts_with("--cache wc: this kernel does not offer it:"),
            "{unknown}"
        );
    }

    #[test]
    fn below_errors_name_the_kinds_and_the_bound() {
        let slab = args(Kind::Kmalloc, Cache::Wb, Some(4 << 30));
        let why = why_alloc_failed(&slab, Errno::INVAL, None, 4096).expect("explained");
        assert_eq!(
            why,
            "--below 4G: only kinds vmalloc, pages and huge take a physical limit, not kmalloc"
        );
        let tiny = args(Kind::Pages, Cache::Wb, Some(1024));
        let why = why_alloc_failed(&tiny, Errno::INVAL, None, 4096).expect("explained");
        assert!(why.contains("at least a page (4K)"), "{why}");
        let full = args(Kind::Huge, Cache::Wb, Some(4 << 30));
        let why = why_alloc_failed(&full, Errno::NOMEM, None, 4096).expect("explained");
        assert!(
            why.starts_with("no 64M of huge memory found below 4G"),
            "{why}"
        );
        let unbounded = args(Kind::Huge, Cache::Wb, None);
        assert_eq!(why_alloc_failed(&unbounded, Errno::NOMEM, None, 4096), None);
    }
}
