// SPDX-License-Identifier: GPL-2.0
//! The "Tables" section of `report.md`: every measurement of the report, as it is.

use super::answers::{in_order, limits_table, sorted_unique};
use super::format::{self, cell, ratio, times};
use super::markdown::{cache_statement, Md};
use crate::schema::{
    AllocPoint, CacheModes, CachePoint, MapTouch, NodePoint, OneVsMany, Report, Scale, Transfer,
};

/// The whole section.
pub fn render(report: &Report) -> Md {
    let mut md = Md::default();
    md.heading(2, "Tables");
    md.heading(3, "Allocation latency");
    md.append(alloc(&report.alloc));
    md.heading(3, "Limits");
    if report.limits.is_empty() {
        md.para("Not measured.");
    } else {
        md.append(limits_table(&report.limits));
    }
    md.heading(3, "Map and touch");
    md.append(map_touch(&report.map_touch));
    md.heading(3, "Transfer");
    md.append(transfer(&report.transfer));
    md.heading(3, "Cache modes");
    md.append(cache(&report.cache, &report.meta.accel));
    md.heading(3, "One mapping vs many");
    md.append(one_vs_many(&report.one_vs_many));
    md.heading(3, "NUMA nodes");
    md.append(numa(&report.numa));
    md.heading(3, "Many buffers");
    md.append(scale(&report.scale));
    md
}

/// "ok", or "error: why".
fn status(ok: bool, reason: Option<&str>) -> String {
    if ok {
        "ok".to_string()
    } else {
        format!("error: {}", cell(reason.unwrap_or("no reason given")))
    }
}

fn scale(scale: &Scale) -> Md {
    let mut md = Md::default();
    if scale.points.is_empty() {
        md.para("Not measured.");
        return md;
    }
    md.para(format!(
        "{} KMALLOC buffers, grown in one pass and spread over the files in turn. ALLOC+FREE is \
         one more buffer allocated and freed, seen from user space: the median round of the \
         given pairs, divided by them. The control is two VERSION ioctls on the same files \
         (touching no buffer) in place of each pair, timed right after the pairs in each \
         round; \"pair / control\" is the median of their ratio within a round, which takes \
         out how fast the guest ran at that moment. \"Grown in\" is the time spent allocating \
         the buffers from none (the measurements excluded); \"debugfs first read\" is open() \
         and the first read(4096) of `buffers`.",
        format::size(scale.buffer_size)
    ));
    let first = scale.points.first().filter(|p| p.ok).map(|p| p.pair_ns);
    let first_controlled = scale
        .points
        .first()
        .filter(|p| p.ok)
        .and_then(|p| p.pair_vs_control);
    let rows: Vec<Vec<String>> = scale
        .points
        .iter()
        .map(|p| {
            let measured = |text: String| if p.ok { text } else { "—".to_string() };
            vec![
                format::count(p.live),
                p.files.to_string(),
                status(p.ok, p.reason.as_deref()),
                measured(format::duration(p.pair_ns.round() as u64)),
                measured(times(first.and_then(|f| ratio(p.pair_ns, f)))),
                format::or_dash(p.control_ns.map(|ns| format::duration(ns.round() as u64))),
                format::or_dash(p.pair_vs_control.map(|r| format!("{r:.2}"))),
                format::or_dash(
                    p.pair_vs_control
                        .and_then(|r| first_controlled.and_then(|f| ratio(r, f)))
                        .map(|r| times(Some(r))),
                ),
                measured(format!("{} × {}", p.rounds, format::count(p.pairs))),
                measured(format::seconds(p.grow_s)),
                format::or_dash(
                    p.debugfs_first_read_us
                        .map(|us| format::duration((us * 1e3).round() as u64)),
                ),
            ]
        })
        .collect();
    md.table(
        &[
            "live buffers",
            "files",
            "status",
            "ALLOC+FREE a pair",
            "vs the first",
            "control",
            "pair / control",
            "that vs the first",
            "rounds × pairs",
            "grown in",
            "debugfs first read",
        ],
        &rows,
    );
    match &scale.close {
        None => md.para("close() of a file holding many buffers: not measured."),
        Some(c) => {
            let measured = |text: String| if c.ok { text } else { "—".to_string() };
            md.table(
                &[
                    "close(): buffers in the file",
                    "live in other files",
                    "status",
                    "fill",
                    "close()",
                    "a buffer",
                    "freed (VERSION)",
                ],
                &[vec![
                    format::count(c.buffers),
                    format::count(c.other_live),
                    status(c.ok, c.reason.as_deref()),
                    measured(format::seconds(c.fill_s)),
                    measured(format::seconds(c.close_s)),
                    measured(format::duration(
                        (c.close_s * 1e9 / c.buffers.max(1) as f64).round() as u64,
                    )),
                    measured(format::count(c.freed)),
                ]],
            );
        }
    }
    match &scale.debugfs_full {
        None => md.para("Reading debugfs `buffers` whole: not measured."),
        Some(f) => {
            let measured = |text: String| if f.ok { text } else { "—".to_string() };
            md.table(
                &[
                    "debugfs `buffers` whole: live buffers",
                    "status",
                    "time",
                    "bytes",
                    "lines",
                    "reads of 64 KiB",
                ],
                &[vec![
                    measured(format::count(f.live_buffers)),
                    status(f.ok, f.reason.as_deref()),
                    measured(format::seconds(f.seconds)),
                    measured(format::count(f.bytes)),
                    measured(format::count(f.lines)),
                    measured(format::count(f.reads)),
                ]],
            );
        }
    }
    md
}

fn numa(points: &[NodePoint]) -> Md {
    let mut md = Md::default();
    if points.is_empty() {
        md.para("Not measured.");
        return md;
    }
    md.para(
        "Strict allocations (`STRICT_NODE`) on each node from one CPU: the largest contiguous \
         block the node gave, and the median in-kernel allocation time. **TCG does not model \
         NUMA latency: the local and remote times below are not a NUMA measurement; the sizes \
         are exact.**",
    );
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            let ns = |ns: u64| {
                if ns == 0 {
                    "—".to_string()
                } else {
                    format::duration(ns)
                }
            };
            vec![
                p.node.to_string(),
                format::size(p.mem_bytes),
                format!(
                    "CPU {} (node {}, {})",
                    p.cpu,
                    p.cpu_node,
                    if p.cpu_node == p.node {
                        "local"
                    } else {
                        "remote"
                    }
                ),
                format::size(p.largest_huge),
                ns(p.pages_4m_ns),
                ns(p.huge_64m_ns),
            ]
        })
        .collect();
    md.table(
        &[
            "node",
            "memory",
            "measured from",
            "largest huge block",
            "pages 4 MiB",
            "huge 64 MiB",
        ],
        &rows,
    );
    md
}

fn alloc(points: &[AllocPoint]) -> Md {
    let mut md = Md::default();
    if points.is_empty() {
        md.para("Not measured.");
        return md;
    }
    md.para("Times are the in-kernel allocation time over the successful samples; \"ioctl\" is the whole ALLOC ioctl seen from user space.");
    let rows: Vec<Vec<String>> = points.iter().map(alloc_row).collect();
    md.table(
        &[
            "kind",
            "size",
            "samples",
            "ok",
            "errno",
            "min",
            "median",
            "max",
            "ioctl median",
            "segments",
        ],
        &rows,
    );
    md.para(vmalloc_segments(points));
    md
}

fn alloc_row(p: &AllocPoint) -> Vec<String> {
    let measured = |ns| {
        if p.ok > 0 {
            format::duration(ns)
        } else {
            "—".to_string()
        }
    };
    vec![
        cell(&p.kind),
        format::size(p.size),
        p.samples.to_string(),
        p.ok.to_string(),
        format::or_dash(p.errno.as_deref().map(cell)),
        measured(p.ns_min),
        measured(p.ns_median),
        measured(p.ns_max),
        measured(p.ioctl_ns_median),
        if p.ok > 0 {
            p.segments.to_string()
        } else {
            "—".to_string()
        },
    ]
}

/// The note on vmalloc: its buffers are only virtually contiguous.
fn vmalloc_segments(points: &[AllocPoint]) -> String {
    let largest = points
        .iter()
        .filter(|p| p.kind == "vmalloc" && p.ok > 0)
        .max_by_key(|p| p.size);
    match largest {
        None => "Segments of vmalloc: not measured.".to_string(),
        Some(p) => format!(
            "Note the segments of vmalloc: its memory is only virtually contiguous; at {} it \
             was {} physically contiguous {} ({} 4 KiB pages).",
            format::size(p.size),
            p.segments,
            if p.segments == 1 { "run" } else { "runs" },
            p.size.div_ceil(4096)
        ),
    }
}

fn map_touch(rows: &[MapTouch]) -> Md {
    let mut md = Md::default();
    if rows.is_empty() {
        md.para("Not measured.");
        return md;
    }
    md.para("Times in ms; total = alloc + map + touch.");
    let table: Vec<Vec<String>> = rows.iter().map(map_touch_row).collect();
    md.table(
        &[
            "method",
            "size",
            "ok",
            "alloc ms",
            "map ms",
            "touch ms",
            "unmap ms",
            "total ms",
            "faults",
            "faults 4 KiB",
        ],
        &table,
    );
    md
}

fn map_touch_row(m: &MapTouch) -> Vec<String> {
    let status = if m.ok {
        "ok".to_string()
    } else {
        format!(
            "error: {}",
            cell(m.error.as_deref().unwrap_or("no reason given"))
        )
    };
    let mut row = vec![
        format!("{} ({})", cell(&m.label), format::code(&m.method)),
        format::size(m.size),
        status,
    ];
    let values = [m.alloc_ns, m.map_ns, m.touch_ns, m.unmap_ns, m.total_ns];
    if m.ok {
        row.extend(values.iter().map(|ns| format::ms(*ns)));
        row.push(m.faults.to_string());
    } else {
        row.extend(vec!["—".to_string(); values.len() + 1]);
    }
    row.push(m.faults_4k.to_string());
    row
}

fn transfer(rows: &[Transfer]) -> Md {
    let mut md = Md::default();
    if rows.is_empty() {
        md.para("Not measured.");
        return md;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|t| {
            vec![
                cell(&t.kind),
                format::size(t.size),
                cell(&t.method),
                format::size(t.chunk),
                format::duration(t.ns),
                format::rate(t.mib_per_s),
            ]
        })
        .collect();
    md.table(
        &[
            "kind",
            "size",
            "method",
            "chunk",
            "time (best)",
            "throughput",
        ],
        &table,
    );
    md
}

/// Map + touch + unmap time of one row.
fn mtu(row: &OneVsMany) -> u64 {
    row.map_ns
        .saturating_add(row.touch_ns)
        .saturating_add(row.unmap_ns)
}

fn one_vs_many(rows: &[OneVsMany]) -> Md {
    let mut md = Md::default();
    if rows.is_empty() {
        md.para("Not measured.");
        return md;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                cell(&r.method),
                format::size(r.size),
                r.mappings.to_string(),
                format::duration(r.map_ns),
                format::duration(r.touch_ns),
                format::duration(r.unmap_ns),
                format::duration(mtu(r)),
                r.faults.to_string(),
            ]
        })
        .collect();
    md.table(
        &[
            "method",
            "size",
            "mappings",
            "map",
            "touch",
            "unmap",
            "map+touch+unmap",
            "faults",
        ],
        &table,
    );
    md.append(one_vs_many_ratios(rows));
    md
}

/// The buffer of a one/many pair: "" is the default (folio) mapping.
fn variant_name(variant: &str) -> String {
    match variant.trim_start_matches('-') {
        "" => "default (folio)".to_string(),
        other => cell(other),
    }
}

/// many/one of the map+touch+unmap time and of the faults, per size.
fn one_vs_many_ratios(rows: &[OneVsMany]) -> Md {
    let mut md = Md::default();
    let find = |method: &str, size: u64| rows.iter().find(|r| r.method == method && r.size == size);
    // "one" pairs with "many", "one-hugemap" with "many-hugemap".
    let variants = in_order(rows.iter().filter_map(|r| r.method.strip_prefix("one")));
    let pairs: Vec<(u64, &str)> = sorted_unique(rows.iter().map(|r| r.size))
        .into_iter()
        .flat_map(|size| variants.iter().map(move |v| (size, *v)))
        .collect();
    let table: Vec<Vec<String>> = pairs
        .into_iter()
        .map(|(size, variant)| {
            let (one, many) = (format!("one{variant}"), format!("many{variant}"));
            (size, variant, find(&one, size), find(&many, size))
        })
        .map(|(size, variant, one, many)| match (one, many) {
            (Some(one), Some(many)) => vec![
                format::size(size),
                variant_name(variant),
                times(ratio(mtu(many) as f64, mtu(one) as f64)),
                times(ratio(many.faults as f64, one.faults as f64)),
            ],
            _ => vec![
                format::size(size),
                variant_name(variant),
                "not measured".to_string(),
                "not measured".to_string(),
            ],
        })
        .collect();
    md.para(
        "Many mappings relative to one, of the map + touch + unmap time and of the faults \
         (\"—\" where one mapping took no fault):",
    );
    md.table(
        &["size", "buffer", "many/one time", "many/one faults"],
        &table,
    );
    md
}

/// The write-back row of `kind`, when it ran: what the other modes are compared with.
fn write_back<'a>(points: &'a [CachePoint], kind: &str) -> Option<&'a CachePoint> {
    points
        .iter()
        .find(|p| p.kind == kind && p.mode == "wb" && p.ok)
}

/// "ok", "ok, 2 of 3 rounds; then: why", "not offered by this kernel: …" or "error: why".
fn cache_status(p: &CachePoint) -> String {
    match (&p.error, p.ok) {
        (None, true) => "ok".to_string(),
        (Some(e), true) => format!(
            "ok, {} of {} rounds; then: {}",
            p.rounds,
            p.rounds_planned,
            cell(e)
        ),
        (Some(e), false) if !p.offered => cell(e),
        (e, false) => status(false, e.as_deref()),
    }
}

/// The mode INFO reported: bold, with the one asked, when they differ.
fn info_mode(p: &CachePoint) -> String {
    match p.info_mode.as_deref() {
        None => "—".to_string(),
        Some(mode) if mode == p.mode => cell(mode),
        Some(mode) => format!("**{} (asked {})**", cell(mode), cell(&p.mode)),
    }
}

/// The caching modes: what is exact, then the times with their ratio to write-back, then what
/// the run can say for sure.
fn cache(cache: &CacheModes, accel: &str) -> Md {
    let mut md = Md::default();
    if cache.points.is_empty() {
        md.para("Not measured.");
        return md;
    }
    md.para(cache_statement(accel));
    let offered = if cache.offered.is_empty() {
        "none (a module before the field: write-back only)".to_string()
    } else {
        cache
            .offered
            .iter()
            .map(|mode| format::code(mode))
            .collect::<Vec<_>>()
            .join(", ")
    };
    md.para(format!(
        "VERSION offered: {offered}. Each round allocates a fresh buffer in the mode (ALLOC \
         `cache`), maps it and writes one byte in every 4 KiB page (map+touch), writes it whole \
         through the mapping in {chunk} memcpys, then whole with {chunk} pwrite() calls on the \
         device, and checks through the mapping that pwrite()'s bytes are there; the rounds \
         take the modes in turn. \"INFO\" is the mode the kernel reported for the buffer. \
         Faults are getrusage's (minor + major), the most of any round; \"after the touch\" \
         counts those of the writes and the check. The section took {seconds}.",
        chunk = format::size(cache.points.first().map_or(1 << 20, |p| p.chunk)),
        seconds = format::seconds(cache.seconds),
    ));
    let counted: Vec<Vec<String>> = cache
        .points
        .iter()
        .map(|p| {
            let measured = |text: String| if p.ok { text } else { "—".to_string() };
            vec![
                cell(&p.kind),
                format::size(p.size),
                cell(&p.mode),
                cache_status(p),
                info_mode(p),
                measured(format!("{} of {}", p.rounds, p.rounds_planned)),
                measured(format::count(p.faults)),
                format::count(p.faults_4k),
                measured(format::count(p.write_faults)),
                measured(format::size(p.mmap_bytes)),
                measured(format::size(p.pwrite_bytes)),
            ]
        })
        .collect();
    md.table(
        &[
            "kind",
            "size",
            "mode",
            "status",
            "INFO",
            "rounds",
            "map+touch faults",
            "4 KiB faults",
            "faults after the touch",
            "written through the mapping",
            "written by pwrite()",
        ],
        &counted,
    );
    md.para(
        "Times, the best of the rounds, and their ratio to write-back (\"/ WB\") of the same \
         kind in this run: for the times above 1.00× is slower, for the throughputs below \
         1.00× is slower. Allocation is ALLOC's in-kernel time, which includes setting the \
         mode on the kernel's alias of the pages; FREE gives the alias write-back again.",
    );
    let timed: Vec<Vec<String>> = cache
        .points
        .iter()
        .map(|p| {
            let wb = write_back(&cache.points, &p.kind).filter(|_| p.ok);
            let time = |ns: u64, wb_ns: Option<u64>| {
                if p.ok {
                    (
                        format::duration(ns),
                        times(wb_ns.and_then(|w| ratio(ns as f64, w as f64))),
                    )
                } else {
                    ("—".to_string(), "—".to_string())
                }
            };
            let rate = |mib: f64, wb_mib: Option<f64>| {
                if p.ok {
                    (format::rate(mib), times(wb_mib.and_then(|w| ratio(mib, w))))
                } else {
                    ("—".to_string(), "—".to_string())
                }
            };
            let map_touch = |p: &CachePoint| p.map_ns.saturating_add(p.touch_ns);
            let (alloc, alloc_wb) = time(p.alloc_ns, wb.map(|w| w.alloc_ns));
            let (touch, touch_wb) = time(map_touch(p), wb.map(map_touch));
            let (mmap, mmap_wb) = rate(p.mmap_write_mib_per_s, wb.map(|w| w.mmap_write_mib_per_s));
            let (pwrite, pwrite_wb) = rate(p.pwrite_mib_per_s, wb.map(|w| w.pwrite_mib_per_s));
            let (unmap, unmap_wb) = time(p.unmap_ns, wb.map(|w| w.unmap_ns));
            vec![
                cell(&p.kind),
                format::size(p.size),
                cell(&p.mode),
                alloc,
                alloc_wb,
                touch,
                touch_wb,
                mmap,
                mmap_wb,
                pwrite,
                pwrite_wb,
                unmap,
                unmap_wb,
            ]
        })
        .collect();
    md.table(
        &[
            "kind",
            "size",
            "mode",
            "allocation",
            "/ WB",
            "map+touch",
            "/ WB",
            "write through the mapping",
            "/ WB",
            "pwrite()",
            "/ WB",
            "munmap+FREE",
            "/ WB",
        ],
        &timed,
    );
    for line in cache_findings(cache) {
        md.line(format!("- {line}"));
    }
    md.line("");
    md
}

/// What the run says for sure: the modes not offered, whether INFO reported the modes asked,
/// whether the faults of each mode are write-back's.
fn cache_findings(cache: &CacheModes) -> Vec<String> {
    let mut lines = Vec::new();
    let not_offered = in_order(
        cache
            .points
            .iter()
            .filter(|p| !p.offered)
            .map(|p| p.mode.as_str()),
    );
    if !not_offered.is_empty() {
        lines.push(format!(
            "Not offered by this kernel, so not measured: {}.",
            not_offered.join(", ")
        ));
    }
    let measured: Vec<&CachePoint> = cache.points.iter().filter(|p| p.ok).collect();
    let wrong: Vec<String> = measured
        .iter()
        .filter(|p| p.info_mode.as_deref() != Some(p.mode.as_str()))
        .map(|p| {
            format!(
                "{} {} got {}",
                cell(&p.kind),
                cell(&p.mode),
                cell(p.info_mode.as_deref().unwrap_or("no INFO"))
            )
        })
        .collect();
    lines.push(if measured.is_empty() {
        "No mode was measured.".to_string()
    } else if wrong.is_empty() {
        "INFO reported the mode asked for every buffer measured.".to_string()
    } else {
        format!(
            "**INFO reported another mode than the one asked: {}.**",
            wrong.join("; ")
        )
    });
    for kind in in_order(measured.iter().map(|p| p.kind.as_str())) {
        let Some(wb) = write_back(&cache.points, kind) else {
            lines.push(format!(
                "{}: write-back did not run, so no mode is compared with it.",
                cell(kind)
            ));
            continue;
        };
        let others: Vec<&&CachePoint> = measured
            .iter()
            .filter(|p| p.kind == kind && p.mode != "wb")
            .collect();
        if others.is_empty() {
            continue;
        }
        let differ: Vec<String> = others
            .iter()
            .filter(|p| p.faults != wb.faults)
            .map(|p| format!("{} {}", cell(&p.mode), format::plural(p.faults, "fault")))
            .collect();
        lines.push(if differ.is_empty() {
            format!(
                "{} {}: every mode took the faults of write-back at map+touch ({}).",
                cell(kind),
                format::size(wb.size),
                format::plural(wb.faults, "fault")
            )
        } else {
            format!(
                "**{} {}: map+touch faults differ from write-back's {}: {}.**",
                cell(kind),
                format::size(wb.size),
                wb.faults,
                differ.join(", ")
            )
        });
    }
    lines
}
