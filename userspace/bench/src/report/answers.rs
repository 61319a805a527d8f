// SPDX-License-Identifier: GPL-2.0
//! The "Answers" section of `report.md`: the questions the benchmark exists for, each answered
//! from the data of the report (and "not measured" where the data is missing).

use super::format::{self, cell, ratio, times};
use super::markdown::Md;
use crate::schema::{AllocPoint, CloseTime, Limit, MapTouch, Report, Scale, Transfer};

/// The method every map-and-touch time is also compared with.
pub const HUGETLB_2M: &str = "hugetlb-2m";
/// The 4 KiB-faulting anonymous mapping, the fault baseline.
pub const ANON_4K: &str = "anon-4k";
/// contigmem's own huge mappings, which must be no worse than hugetlbfs 2 MiB.
pub const CONTIGMEM_HUGE: [&str; 2] = ["contigmem-huge-hugemap", "contigmem-huge-folio"];
/// The dma-buf system heap's method key.
pub const DMABUF_SYSTEM: &str = "dmabuf-system";
/// contigmem's default mappings and the peers each is held to (issue 15): the folio mapping
/// of HUGE against the system heap and hugetlbfs 2 MiB, the 4 KiB mapping against the heap.
pub const PHASE_TARGETS: [(&str, &[&str]); 2] = [
    ("contigmem-huge-folio", &[DMABUF_SYSTEM, HUGETLB_2M]),
    ("contigmem-vmalloc", &[DMABUF_SYSTEM]),
];
/// The most an ALLOC+FREE pair may cost at the last many-buffer point, relative to the first.
pub const SCALE_TARGET: f64 = 1.5;
/// The most the first read of debugfs `buffers` may grow from the first many-buffer point to
/// the last for the file to count as streamed (a file built whole grows with the buffers).
pub const FIRST_READ_FLAT: f64 = 2.0;

/// The whole section.
pub fn render(report: &Report) -> Md {
    let mut md = Md::default();
    md.heading(2, "Answers");
    md.heading(3, "a) Is vmalloc slower than kmalloc to allocate?");
    md.append(vmalloc_vs_kmalloc(&report.alloc));
    md.heading(3, "b) Where does kmalloc stop?");
    md.append(limits(&report.limits));
    md.heading(3, "c) What do huge mappings save?");
    md.append(huge_savings(&report.map_touch));
    md.heading(3, "d) mmap or read()?");
    md.append(mmap_or_read(&report.transfer));
    md.heading(
        3,
        "e) Does contigmem stay cheap with a million live buffers?",
    );
    md.append(scale(&report.scale));
    md
}

/// Sorted distinct values.
pub fn sorted_unique(values: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// Distinct names in the order they first appear.
pub fn in_order<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// The median allocation time of `kind` at `size`, when at least one sample succeeded.
pub fn alloc_median(alloc: &[AllocPoint], kind: &str, size: u64) -> Option<u64> {
    alloc
        .iter()
        .find(|p| p.kind == kind && p.size == size && p.ok > 0)
        .map(|p| p.ns_median)
}

/// One size at which kmalloc and vmalloc both succeeded.
struct AllocRow {
    size: u64,
    kmalloc: u64,
    kzalloc: Option<u64>,
    vmalloc: u64,
}

impl AllocRow {
    fn vs_kmalloc(&self) -> Option<f64> {
        ratio(self.vmalloc as f64, self.kmalloc as f64)
    }

    fn vs_kzalloc(&self) -> Option<f64> {
        self.kzalloc
            .and_then(|kz| ratio(self.vmalloc as f64, kz as f64))
    }
}

/// a) The vmalloc/kmalloc and vmalloc/kzalloc ratios of the median times, per size.
fn vmalloc_vs_kmalloc(alloc: &[AllocPoint]) -> Md {
    let mut md = Md::default();
    let rows: Vec<AllocRow> = sorted_unique(alloc.iter().map(|p| p.size))
        .into_iter()
        .filter_map(|size| {
            Some(AllocRow {
                size,
                kmalloc: alloc_median(alloc, "kmalloc", size)?,
                kzalloc: alloc_median(alloc, "kzalloc", size),
                vmalloc: alloc_median(alloc, "vmalloc", size)?,
            })
        })
        .collect();
    if rows.is_empty() {
        md.para("Not measured: there is no size at which both kmalloc and vmalloc succeeded.");
        return md;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                format::size(row.size),
                format::duration(row.kmalloc),
                format::or_dash(row.kzalloc.map(format::duration)),
                format::duration(row.vmalloc),
                times(row.vs_kmalloc()),
                times(row.vs_kzalloc()),
            ]
        })
        .collect();
    md.para(
        "Median in-kernel allocation time (ALLOC's `alloc_ns`), at each size where both succeeded:",
    );
    md.table(
        &[
            "size",
            "kmalloc",
            "kzalloc",
            "vmalloc",
            "vmalloc/kmalloc",
            "vmalloc/kzalloc",
        ],
        &table,
    );
    md.para(ratio_summary(&rows));
    md
}

/// One sentence on the range of vmalloc/kmalloc.
fn ratio_summary(rows: &[AllocRow]) -> String {
    let ratios: Vec<(u64, f64)> = rows
        .iter()
        .filter_map(|row| Some((row.size, row.vs_kmalloc()?)))
        .collect();
    let (Some(low), Some(high)) = (
        ratios.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
        ratios.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
    ) else {
        return "The ratio cannot be computed: kmalloc's median time is 0.".to_string();
    };
    let slower = ratios.iter().filter(|(_, r)| *r > 1.0).count();
    let verdict = if slower == ratios.len() {
        "**Yes**".to_string()
    } else if slower == 0 {
        "**No**".to_string()
    } else {
        format!("**Slower at {slower} of {} sizes**", ratios.len())
    };
    let span = if ratios.len() == 1 {
        format!("{} at {}", times(Some(low.1)), format::size(low.0))
    } else {
        format!(
            "from {} (at {}) to {} (at {})",
            times(Some(low.1)),
            format::size(low.0),
            times(Some(high.1)),
            format::size(high.0)
        )
    };
    format!(
        "{verdict}: over the {} where both succeeded, vmalloc took {span} the time of kmalloc.",
        format::plural(ratios.len() as u64, "size")
    )
}

/// b) Every kind's limit, and a sentence for kmalloc.
fn limits(limits: &[Limit]) -> Md {
    let mut md = Md::default();
    if limits.is_empty() {
        md.para("Not measured: the report has no limits.");
    } else {
        md.append(limits_table(limits));
    }
    md.para(kmalloc_limit_sentence(limits));
    md
}

/// The limits as a table (used in the answers and the full tables).
pub fn limits_table(limits: &[Limit]) -> Md {
    let mut md = Md::default();
    let rows: Vec<Vec<String>> = limits
        .iter()
        .map(|limit| {
            vec![
                cell(&limit.kind),
                format::size(limit.advertised),
                largest_ok(limit),
                format::or_dash(limit.first_fail.map(format::size)),
                format::or_dash(limit.errno.as_deref().map(cell)),
            ]
        })
        .collect();
    md.table(
        &[
            "kind",
            "advertised max",
            "largest OK",
            "first failure",
            "errno",
        ],
        &rows,
    );
    md
}

fn largest_ok(limit: &Limit) -> String {
    if limit.largest_ok == 0 {
        "none".to_string()
    } else {
        format::size(limit.largest_ok)
    }
}

/// "kmalloc stops at 4 MiB: 8 MiB failed with E2BIG (advertised maximum 4 MiB)."
pub fn kmalloc_limit_sentence(limits: &[Limit]) -> String {
    let Some(limit) = limits.iter().find(|l| l.kind == "kmalloc") else {
        return "kmalloc's limit: not measured.".to_string();
    };
    let errno = limit.errno.as_deref().unwrap_or("an unnamed error");
    let advertised = format::size(limit.advertised);
    match limit.first_fail {
        Some(fail) if limit.largest_ok == 0 => format!(
            "**kmalloc failed from the first size**: {} failed with {errno} \
             (advertised maximum {advertised}).",
            format::size(fail)
        ),
        Some(fail) => format!(
            "**kmalloc stops at {}**: {} failed with {errno} (advertised maximum {advertised}).",
            format::size(limit.largest_ok),
            format::size(fail)
        ),
        None => format!(
            "**kmalloc did not stop**: every size up to {} succeeded (advertised maximum \
             {advertised}).",
            format::size(limit.largest_ok)
        ),
    }
}

/// c) Faults and time of each map-and-touch method against the 4 KiB baseline and hugetlbfs.
fn huge_savings(map_touch: &[MapTouch]) -> Md {
    let mut md = Md::default();
    if map_touch.is_empty() {
        md.para("Not measured: the report has no map-and-touch results.");
        return md;
    }
    for size in sorted_unique(map_touch.iter().map(|m| m.size)) {
        let rows: Vec<&MapTouch> = map_touch.iter().filter(|m| m.size == size).collect();
        md.append(savings_at(size, &rows));
    }
    md
}

/// The measured row of `method`, when it ran.
fn ran<'a>(rows: &[&'a MapTouch], method: &str) -> Option<&'a MapTouch> {
    rows.iter().copied().find(|m| m.method == method && m.ok)
}

/// The savings at one size.
fn savings_at(size: u64, rows: &[&MapTouch]) -> Md {
    let mut md = Md::default();
    let size_name = format::size(size);
    md.heading(4, &size_name);
    let anon = ran(rows, ANON_4K);
    let baseline = anon.map_or_else(|| rows.first().map_or(0, |m| m.faults_4k), |a| a.faults);
    md.para(match anon {
        Some(a) => format!(
            "4 KiB baseline: {} measured with {} ({ANON_4K}).",
            format::plural(baseline, "fault"),
            cell(&a.label)
        ),
        None => format!(
            "4 KiB baseline: {} (size / 4 KiB; {ANON_4K} not measured).",
            format::plural(baseline, "fault")
        ),
    });
    let hugetlb = ran(rows, HUGETLB_2M);
    for row in rows {
        md.line(format!(
            "- {}",
            saving_line(&size_name, row, baseline, anon, hugetlb)
        ));
    }
    md.line("");
    md.para(format!(
        "contigmem's huge mappings against {HUGETLB_2M}. Map+touch is the mmap call and the \
         first write to every page. contigmem zeroes its memory at ALLOC, hugetlbfs at the \
         first fault, so the allocation is counted as well: for contigmem the ALLOC ioctl, for \
         hugetlbfs 2 MiB growing its pool to the size (`nr_hugepages`); a boot-time pool (1 \
         GiB pages) has no allocation to count:"
    ));
    for method in CONTIGMEM_HUGE {
        md.line(format!("- {}", hugetlb_verdict(&size_name, rows, method)));
    }
    md.line("");
    md.para(
        "The mapping alone, phase by phase (the target: at most 1.0× the peer's), mmap+touch \
         and munmap:",
    );
    for (method, peers) in PHASE_TARGETS {
        for peer in peers {
            md.line(format!(
                "- {}",
                phase_verdict(&size_name, rows, method, peer)
            ));
        }
    }
    md.line("");
    md
}

/// "256 MiB: contigmem HUGE, default … against dma-buf system heap: mmap+touch 0.80× (…),
/// munmap 1.10× (…): worse at munmap".
pub fn phase_verdict(size: &str, rows: &[&MapTouch], method: &str, peer: &str) -> String {
    let find = |key: &str| rows.iter().copied().find(|m| m.method == key);
    let (row, reference) = match (find(method), find(peer)) {
        (Some(row), Some(reference)) if row.ok && reference.ok => (row, reference),
        (row, reference) => {
            return format!(
                "{size}: {method} vs {peer}: not measured ({}; {})",
                missing(method, row),
                missing(peer, reference)
            )
        }
    };
    let phase = |name: &str, a: u64, b: u64| {
        (
            a <= b,
            format!(
                "{name} {} ({} vs {})",
                times(ratio(a as f64, b as f64)),
                format::duration(a),
                format::duration(b)
            ),
        )
    };
    let map_touch = |m: &MapTouch| m.map_ns.saturating_add(m.touch_ns);
    let (mt_ok, mt) = phase("mmap+touch", map_touch(row), map_touch(reference));
    let (un_ok, un) = phase("munmap", row.unmap_ns, reference.unmap_ns);
    let worse: Vec<&str> = [(mt_ok, "mmap+touch"), (un_ok, "munmap")]
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, name)| name)
        .collect();
    let verdict = if worse.is_empty() {
        "within the target".to_string()
    } else {
        format!("over the target at {}", worse.join(" and "))
    };
    format!(
        "{size}: {} against {}: {mt}, {un}: **{verdict}**.",
        cell(&row.label),
        cell(&reference.label),
    )
}

/// "1 GiB contigmem HUGE_MAP: 1 fault vs 262144 (4 KiB); total time 12.34 ms, 0.50× of anon
/// 4 KiB, 0.93× of hugetlbfs 2 MiB".
fn saving_line(
    size: &str,
    row: &MapTouch,
    baseline: u64,
    anon: Option<&MapTouch>,
    hugetlb: Option<&MapTouch>,
) -> String {
    let label = cell(&row.label);
    if !row.ok {
        let why = row.error.as_deref().unwrap_or("no reason given");
        return format!("{size} {label}: not measured ({})", cell(why));
    }
    let faults = if anon.is_some_and(|a| a.method == row.method) {
        format!(
            "{} (the 4 KiB baseline)",
            format::plural(row.faults, "fault")
        )
    } else {
        format!(
            "{} vs {baseline} (4 KiB){}",
            format::plural(row.faults, "fault"),
            fewer(baseline, row.faults)
        )
    };
    let mut line = format!(
        "{size} {label}: {faults}; total time {}",
        format::duration(row.total_ns)
    );
    for reference in [anon, hugetlb].into_iter().flatten() {
        if reference.method != row.method {
            let r = ratio(row.total_ns as f64, reference.total_ns as f64);
            line.push_str(&format!(", {} of {}", times(r), cell(&reference.label)));
        }
    }
    line
}

/// ", 512× fewer" or ", 2.00× more" against the baseline; nothing when about the same.
fn fewer(baseline: u64, faults: u64) -> String {
    match ratio(baseline as f64, faults as f64) {
        Some(r) if r >= 1.5 => format!(", {r:.0}× fewer"),
        Some(r) if r <= 1.0 / 1.5 => format!(", {:.2}× more", 1.0 / r),
        _ => String::new(),
    }
}

/// Whether `method` is no worse than hugetlbfs 2 MiB by total time at this size.
pub fn hugetlb_verdict(size: &str, rows: &[&MapTouch], method: &str) -> String {
    let find = |key: &str| rows.iter().copied().find(|m| m.method == key);
    let (row, reference) = match (find(method), find(HUGETLB_2M)) {
        (Some(row), Some(reference)) if row.ok && reference.ok => (row, reference),
        (row, reference) => {
            return format!(
                "{size}: {method} vs {HUGETLB_2M}: not measured ({}; {})",
                missing(method, row),
                missing(HUGETLB_2M, reference)
            )
        }
    };
    let verdict = |a: u64, b: u64| if a <= b { "no worse" } else { "worse" };
    let map_touch = |m: &MapTouch| m.map_ns.saturating_add(m.touch_ns);
    let (mt, mt_ref) = (map_touch(row), map_touch(reference));
    format!(
        "**{size}: {} is {} than {} at map+touch**: {} vs {} ({}); counting the allocation \
         too it is {}: {} vs {} ({}).",
        cell(&row.label),
        verdict(mt, mt_ref),
        cell(&reference.label),
        format::duration(mt),
        format::duration(mt_ref),
        times(ratio(mt as f64, mt_ref as f64)),
        verdict(row.total_ns, reference.total_ns),
        format::duration(row.total_ns),
        format::duration(reference.total_ns),
        times(ratio(row.total_ns as f64, reference.total_ns as f64))
    )
}

/// Why a row cannot be compared, or that it can.
fn missing(method: &str, row: Option<&MapTouch>) -> String {
    match row {
        None => format!("{method} did not run"),
        Some(row) if !row.ok => format!(
            "{method} failed: {}",
            cell(row.error.as_deref().unwrap_or("no reason given"))
        ),
        Some(_) => format!("{method} ran"),
    }
}

/// The fastest measurement of `method` on `kind`.
pub fn best_transfer<'a>(
    transfer: &'a [Transfer],
    kind: &str,
    method: &str,
) -> Option<&'a Transfer> {
    transfer
        .iter()
        .filter(|t| t.kind == kind && t.method == method)
        .max_by(|a, b| a.mib_per_s.total_cmp(&b.mib_per_s))
}

/// d) Per kind: copying out of the mapping vs pread, and into it vs pwrite.
fn mmap_or_read(transfer: &[Transfer]) -> Md {
    let mut md = Md::default();
    if transfer.is_empty() {
        md.para("Not measured: the report has no transfer results.");
        return md;
    }
    let rows: Vec<Vec<String>> = in_order(transfer.iter().map(|t| t.kind.as_str()))
        .into_iter()
        .map(|kind| transfer_row(transfer, kind))
        .collect();
    md.para("Best of the repeats, per buffer kind (MiB/s; higher is better):");
    md.table(
        &[
            "kind",
            "mmap-read",
            "pread",
            "mmap-read/pread",
            "mmap-write",
            "pwrite",
            "mmap-write/pwrite",
            "mmap-read with rep movsb",
            "pread / rep movsb",
            "verdict",
        ],
        &rows,
    );
    md.para(movsb_note(transfer));
    md
}

/// What the `rep movsb` control says about the gap between mmap-read and pread.
fn movsb_note(transfer: &[Transfer]) -> String {
    let kinds = in_order(transfer.iter().map(|t| t.kind.as_str()));
    let ratios: Vec<f64> = kinds
        .iter()
        .filter_map(|kind| {
            let pread = best_transfer(transfer, kind, "pread")?.mib_per_s;
            let movsb = best_transfer(transfer, kind, "mmap-read-movsb")?.mib_per_s;
            ratio(pread, movsb)
        })
        .collect();
    let (Some(low), Some(high)) = (
        ratios.iter().copied().reduce(f64::min),
        ratios.iter().copied().reduce(f64::max),
    ) else {
        return "The `rep movsb` control (mmap-read-movsb) was not measured.".to_string();
    };
    let control = "The control row mmap-read-movsb copies out of the mapping with `rep movsb`, \
                   the instruction the kernel's `copy_to_user` uses on x86-64, instead of the C \
                   library's vector `memcpy`.";
    let verdict = if low >= 0.5 {
        "so most of the gap between mmap-read and pread in this run is the cost of `rep movsb` \
         under TCG, and pread's own overhead (the system call, the iov_iter, the buffer lookup) \
         is what separates pread from the control. This run cannot say how far apart the two \
         are on hardware, where `rep movsb` is fast; what holds anywhere is that a mapping, \
         once made, moves no data through the kernel."
    } else {
        "so the copy instruction does not explain the gap: pread's own overhead (the system \
         call, the iov_iter, the buffer lookup) does."
    };
    format!(
        "{control} pread reached {low:.2}× to {high:.2}× of the control's throughput, {verdict}"
    )
}

fn transfer_row(transfer: &[Transfer], kind: &str) -> Vec<String> {
    let rate = |method| best_transfer(transfer, kind, method).map(|t| t.mib_per_s);
    let pair = |a: Option<f64>, b: Option<f64>| a.zip(b).and_then(|(a, b)| ratio(a, b));
    let (mmap_read, pread) = (rate("mmap-read"), rate("pread"));
    let (mmap_write, pwrite) = (rate("mmap-write"), rate("pwrite"));
    let read_ratio = pair(mmap_read, pread);
    let movsb = rate("mmap-read-movsb");
    vec![
        cell(kind),
        format::or_dash(mmap_read.map(format::rate)),
        format::or_dash(pread.map(format::rate)),
        times(read_ratio),
        format::or_dash(mmap_write.map(format::rate)),
        format::or_dash(pwrite.map(format::rate)),
        times(pair(mmap_write, pwrite)),
        format::or_dash(movsb.map(format::rate)),
        times(pair(pread, movsb)),
        read_verdict(read_ratio),
    ]
}

/// One line: which way to read a buffer of this kind.
fn read_verdict(mmap_over_pread: Option<f64>) -> String {
    match mmap_over_pread {
        None => "not measured".to_string(),
        Some(r) if r > 1.05 => format!("mmap: reading the mapping is {r:.2}× pread"),
        Some(r) if r < 0.95 => format!("read(): pread is {:.2}× reading the mapping", 1.0 / r),
        Some(_) => "either: mmap and pread are within 5%".to_string(),
    }
}

/// e) ALLOC+FREE against live buffers, close() of a full file, debugfs `buffers` read whole.
fn scale(scale: &Scale) -> Md {
    let mut md = Md::default();
    md.para(scale_verdict(scale));
    md.line(format!("- {}", close_sentence(scale.close.as_ref())));
    md.line(format!("- {}", debugfs_full_sentence(scale)));
    md.line(format!("- {}", first_read_sentence(scale)));
    md.line("");
    md
}

/// "ALLOC+FREE at 1,000,000 live buffers costs 1.12× what it costs at 1,000 (target ≤ 1.5×)".
pub fn scale_verdict(scale: &Scale) -> String {
    let (Some(first), Some(last)) = (scale.points.first(), scale.points.last()) else {
        return "Not measured: the report has no many-buffer points.".to_string();
    };
    if scale.points.len() < 2 {
        return "Not measured: the report has only one many-buffer point.".to_string();
    }
    if let Some(p) = [first, last].into_iter().find(|p| !p.ok) {
        return format!(
            "Not measured: ALLOC+FREE at {} live buffers: {}.",
            format::count(p.live),
            cell(p.reason.as_deref().unwrap_or("no reason given"))
        );
    }
    let Some(r) = ratio(last.pair_ns, first.pair_ns) else {
        return format!(
            "The ratio cannot be computed: ALLOC+FREE at {} live buffers took 0 ns.",
            format::count(first.live)
        );
    };
    let verdict = |r: f64| {
        if r <= SCALE_TARGET {
            "Within the target"
        } else {
            "Over the target"
        }
    };
    if let (Some(fc), Some(lc)) = (first.pair_vs_control, last.pair_vs_control) {
        if let Some(rc) = ratio(lc, fc) {
            return format!(
                "**{}: ALLOC+FREE at {} live buffers costs {} what it costs at {}, against the \
                 machine's speed of the moment (target ≤ {SCALE_TARGET}×)**: a pair took {:.2}× \
                 and {:.2}× the control (two VERSION ioctls on the same files, timed right after \
                 the pairs in each of {} rounds; the median ratio). Raw: {} vs {} a pair of 4 KiB \
                 KMALLOC buffers ({}), while the control took {} and {}: under TCG the whole \
                 guest runs faster or slower from moment to moment, which the control measures.",
                verdict(rc),
                format::count(last.live),
                times(Some(rc)),
                format::count(first.live),
                lc,
                fc,
                last.rounds,
                format::duration(last.pair_ns.round() as u64),
                format::duration(first.pair_ns.round() as u64),
                times(Some(r)),
                format::duration(last.control_ns.unwrap_or(0.0).round() as u64),
                format::duration(first.control_ns.unwrap_or(0.0).round() as u64),
            );
        }
    }
    let verdict = verdict(r);
    format!(
        "**{verdict}: ALLOC+FREE at {} live buffers costs {} what it costs at {} (target ≤ \
         {SCALE_TARGET}×)**: {} vs {} a pair of 4 KiB KMALLOC buffers (the median round of {} \
         pairs, the buffers spread over {} files).",
        format::count(last.live),
        times(Some(r)),
        format::count(first.live),
        format::duration(last.pair_ns.round() as u64),
        format::duration(first.pair_ns.round() as u64),
        format::count(last.pairs),
        last.files
    )
}

/// close() of the file holding many buffers.
pub fn close_sentence(close: Option<&CloseTime>) -> String {
    let Some(c) = close else {
        return "close() of a file holding many buffers: not measured.".to_string();
    };
    let what = format!(
        "close() of a file holding {} buffers",
        format::count(c.buffers)
    );
    if !c.ok {
        let why = c.reason.as_deref().unwrap_or("no reason given");
        return format!("{what}: not measured ({}).", cell(why));
    }
    let freed = if c.freed == c.buffers {
        format!("it freed all {}", format::count(c.buffers))
    } else {
        format!(
            "VERSION counted {} fewer live buffers after it, not {}",
            format::count(c.freed),
            format::count(c.buffers)
        )
    };
    format!(
        "**{what} took {}** ({} a buffer, with {} more live in other files); {freed}.",
        format::seconds(c.close_s),
        format::duration((c.close_s * 1e9 / c.buffers.max(1) as f64).round() as u64),
        format::count(c.other_live)
    )
}

/// debugfs `buffers` read whole.
pub fn debugfs_full_sentence(scale: &Scale) -> String {
    let Some(f) = &scale.debugfs_full else {
        return "Reading debugfs `buffers` whole: not measured.".to_string();
    };
    if !f.ok {
        let why = f.reason.as_deref().unwrap_or("no reason given");
        return format!(
            "Reading debugfs `buffers` whole: not measured ({}).",
            cell(why)
        );
    }
    let expected = f.live_buffers + 1;
    let lines = if f.lines == expected {
        "one per live buffer and the header".to_string()
    } else {
        format!(
            "expected {} (one per live buffer and the header)",
            format::count(expected)
        )
    };
    format!(
        "**Reading debugfs `buffers` whole with {} live buffers took {}**: {} in {} lines \
         ({lines}), {} reads of up to 64 KiB.",
        format::count(f.live_buffers),
        format::seconds(f.seconds),
        format::size(f.bytes),
        format::count(f.lines),
        format::count(f.reads)
    )
}

/// Whether the first read of debugfs `buffers` grows with the number of buffers.
pub fn first_read_sentence(scale: &Scale) -> String {
    let measured: Vec<(u64, f64)> = scale
        .points
        .iter()
        .filter_map(|p| Some((p.live, p.debugfs_first_read_us?)))
        .collect();
    let (Some(first), Some(last)) = (measured.first(), measured.last()) else {
        return "The first read of debugfs `buffers`: not measured.".to_string();
    };
    let us = |us: f64| format::duration((us * 1e3).round() as u64);
    if measured.len() < 2 {
        return format!(
            "open() and the first 4 KiB read of debugfs `buffers` took {} at {} live buffers \
             (one point only).",
            us(first.1),
            format::count(first.0)
        );
    }
    let r = ratio(last.1, first.1);
    let verdict = match r {
        Some(r) if r <= FIRST_READ_FLAT => format!(
            "flat (within {FIRST_READ_FLAT}×): the first read does not wait for the whole file"
        ),
        Some(_) => "it grows with the buffers: the first read waits for the whole file".to_string(),
        None => "the ratio cannot be computed".to_string(),
    };
    format!(
        "open() and the first 4 KiB read of debugfs `buffers` took {} at {} live buffers and {} \
         at {} ({}): {verdict}.",
        us(first.1),
        format::count(first.0),
        us(last.1),
        format::count(last.0),
        times(r)
    )
}
