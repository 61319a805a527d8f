// SPDX-License-Identifier: GPL-2.0
//! Integration tests of `contigmem-report`: renders `fixture-log.txt` (a fake guest serial log)
//! and an empty report into temporary directories and checks the files, the plots and the
//! answers computed from the fixture's numbers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use contigmem_bench::report::{
    self, format,
    markdown::{CACHE_KVM_STATEMENT, CACHE_TCG_STATEMENT, KVM_STATEMENT, TCG_STATEMENT},
};
use contigmem_bench::schema::{Report, JSON_MARKER};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixture-log.txt");
const PLOTS: [&str; 5] = [
    "alloc-latency.svg",
    "map-touch.svg",
    "faults.svg",
    "transfer.svg",
    "scale.svg",
];

/// A fresh, empty directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "contigmem-report-test-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the temporary directory");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The fixture's report, parsed here without the library: the JSON after the last marker.
fn fixture_report() -> Report {
    let log = fs::read_to_string(FIXTURE).expect("read the fixture");
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains(JSON_MARKER))
        .expect("the fixture has a marker line");
    let json = line
        .split_once(JSON_MARKER)
        .expect("marker")
        .1
        .trim_end_matches('\r');
    serde_json::from_str(json).expect("the fixture's JSON parses")
}

/// Renders the fixture into a new directory; returns it and report.md.
fn render_fixture(name: &str) -> (TempDir, String) {
    let dir = TempDir::new(name);
    let report = report::load(Path::new(FIXTURE)).expect("the fixture loads");
    report::render(&report, dir.path()).expect("the fixture renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    (dir, md)
}

/// The text of report.md from `start` to `end` (exclusive).
fn section<'a>(md: &'a str, start: &str, end: &str) -> &'a str {
    let from = md
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in report.md"));
    let rest = &md[from..];
    let to = rest.find(end).unwrap_or(rest.len());
    &rest[..to]
}

fn median(report: &Report, kind: &str, size: u64) -> Option<u64> {
    report
        .alloc
        .iter()
        .find(|p| p.kind == kind && p.size == size && p.ok > 0)
        .map(|p| p.ns_median)
}

#[test]
fn the_library_reads_the_same_report_as_the_test() {
    let report = report::load(Path::new(FIXTURE)).expect("the fixture loads");
    assert_eq!(report, fixture_report());
}

#[test]
fn fixture_writes_every_file() {
    let (dir, md) = render_fixture("files");
    for name in ["report.json", "report.md"].iter().chain(PLOTS.iter()) {
        assert!(dir.path().join(name).is_file(), "{name} was not written");
    }
    for plot in PLOTS {
        assert!(md.contains(&format!("]({plot})")), "no link to {plot}");
    }
    assert!(
        !md.contains("was not drawn"),
        "a plot of the fixture was skipped"
    );
}

#[test]
fn plots_are_svg_with_shapes_and_text() {
    let (dir, _) = render_fixture("svg");
    for plot in PLOTS {
        let svg = fs::read_to_string(dir.path().join(plot)).expect("read the plot");
        assert!(svg.starts_with("<svg"), "{plot} does not start with <svg");
        let shapes = svg.matches("<polyline").count()
            + svg.matches("<path").count()
            + svg.matches("<rect").count();
        // One <rect> is the white background.
        assert!(shapes > 1, "{plot} draws nothing");
        assert!(svg.contains("<text"), "{plot} has no text");
    }
    let latency = fs::read_to_string(dir.path().join("alloc-latency.svg")).expect("read");
    assert!(latency.contains("<polyline"), "no latency line");
    for label in ["4K", "1M", "kmalloc", "vmalloc"] {
        assert!(latency.contains(label), "alloc-latency.svg lacks {label:?}");
    }
    let faults = fs::read_to_string(dir.path().join("faults.svg")).expect("read");
    assert!(
        faults.contains("4 KiB baseline"),
        "faults.svg lacks the 4 KiB baseline"
    );
}

#[test]
fn report_json_round_trips() {
    let (dir, _) = render_fixture("json");
    let again = report::load(&dir.path().join("report.json")).expect("report.json loads");
    assert_eq!(again, fixture_report());
}

#[test]
fn states_that_the_guest_runs_under_tcg() {
    let (_dir, md) = render_fixture("tcg");
    assert!(md.contains(TCG_STATEMENT));
    assert!(md.contains("**The guest runs under TCG (software emulation, no KVM)"));
    // Meta first, then the statement, then the answers, the tables and the plots.
    let order = [
        "## Run",
        TCG_STATEMENT,
        "## Answers",
        "## Tables",
        "## Plots",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| md.find(s).unwrap_or_else(|| panic!("no {s:?}")))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "sections out of order"
    );
}

#[test]
fn vmalloc_kmalloc_ratio_rows_come_from_the_data() {
    let report = fixture_report();
    let (_dir, md) = render_fixture("ratio");
    let answer = section(&md, "### a)", "### b)");
    let mut rows = 0;
    for point in report
        .alloc
        .iter()
        .filter(|p| p.kind == "kmalloc" && p.ok > 0)
    {
        let Some(vmalloc) = median(&report, "vmalloc", point.size) else {
            continue;
        };
        let ratio = vmalloc as f64 / point.ns_median as f64;
        let prefix = format!("| {} |", format::size(point.size));
        let row = answer
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row for {prefix}"));
        assert!(
            row.contains(&format!("| {ratio:.2}× |")),
            "{row} lacks {ratio:.2}×"
        );
        let kzalloc = median(&report, "kzalloc", point.size).expect("kzalloc in the fixture");
        let kz_ratio = vmalloc as f64 / kzalloc as f64;
        assert!(
            row.ends_with(&format!("| {kz_ratio:.2}× |")),
            "{row} lacks {kz_ratio:.2}×"
        );
        rows += 1;
    }
    assert!(
        rows >= 3,
        "the fixture should compare at least 3 sizes, got {rows}"
    );
    // kmalloc failed at 8 MiB in the fixture: no row there.
    assert!(!answer.contains("| 8 MiB |"));
    assert!(
        answer.contains("**Yes**"),
        "vmalloc is slower at every size of the fixture"
    );
}

#[test]
fn states_where_kmalloc_stops() {
    let report = fixture_report();
    let limit = report
        .limits
        .iter()
        .find(|l| l.kind == "kmalloc")
        .expect("the fixture has kmalloc's limit");
    assert_eq!(limit.largest_ok, 4 << 20);
    assert_eq!(limit.first_fail, Some(8 << 20));
    assert_eq!(limit.errno.as_deref(), Some("E2BIG"));
    let (_dir, md) = render_fixture("limit");
    let answer = section(&md, "### b)", "### c)");
    assert!(
        answer.contains("**kmalloc stops at 4 MiB**: 8 MiB failed with E2BIG"),
        "{answer}"
    );
    for limit in &report.limits {
        assert!(
            answer.contains(&format!("| {} |", limit.kind)),
            "no limit row for {}",
            limit.kind
        );
    }
}

#[test]
fn compares_contigmem_huge_with_hugetlb_2m() {
    let report = fixture_report();
    let (_dir, md) = render_fixture("huge");
    let answer = section(&md, "### c)", "### d)");
    let times = |method: &str, size: u64| {
        report
            .map_touch
            .iter()
            .find(|m| m.method == method && m.size == size && m.ok)
            .map(|m| (m.label.clone(), m.map_ns + m.touch_ns, m.total_ns))
    };
    let verdict = |a: u64, b: u64| if a <= b { "no worse" } else { "worse" };
    let mut checked = 0;
    for size in [64u64 << 20, 1 << 30] {
        let (ref_label, ref_mt, ref_total) =
            times("hugetlb-2m", size).expect("hugetlb-2m in the fixture");
        for method in ["contigmem-huge-hugemap", "contigmem-huge-folio"] {
            let (label, mt, total) = times(method, size).expect("contigmem in the fixture");
            let sentence = format!(
                "**{}: {label} is {} than {ref_label} at map+touch**",
                format::size(size),
                verdict(mt, ref_mt)
            );
            assert!(answer.contains(&sentence), "missing {sentence:?}");
            let tail = format!(
                "counting the allocation too it is {}: {}",
                verdict(total, ref_total),
                format::duration(total)
            );
            assert!(answer.contains(&tail), "missing {tail:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
    // The fixture's 1 GiB HUGE_MAP takes one fault, against the measured anon-4k baseline.
    let anon = report
        .map_touch
        .iter()
        .find(|m| m.method == "anon-4k" && m.size == 1 << 30)
        .expect("anon-4k at 1 GiB");
    let line = format!(
        "1 GiB contigmem HUGE_MAP: 1 fault vs {} (4 KiB)",
        anon.faults
    );
    assert!(answer.contains(&line), "missing {line:?}");
    assert!(answer.contains("dma-buf CMA heap: not measured (no /dev/dma_heap/reserved)"));
}

#[test]
fn answers_mmap_or_read_per_kind() {
    let report = fixture_report();
    let (_dir, md) = render_fixture("transfer");
    let answer = section(&md, "### d)", "## Tables");
    let best = |kind: &str, method: &str| {
        report
            .transfer
            .iter()
            .filter(|t| t.kind == kind && t.method == method)
            .map(|t| t.mib_per_s)
            .fold(f64::NAN, f64::max)
    };
    for kind in ["huge", "vmalloc", "kmalloc"] {
        let ratio = best(kind, "mmap-read") / best(kind, "pread");
        let row = answer
            .lines()
            .find(|line| line.starts_with(&format!("| {kind} |")))
            .unwrap_or_else(|| panic!("no transfer row for {kind}"));
        assert!(
            row.contains(&format!("| {ratio:.2}× |")),
            "{row} lacks {ratio:.2}×"
        );
        let verdict = if ratio > 1.05 {
            "mmap:"
        } else if ratio < 0.95 {
            "read():"
        } else {
            "either:"
        };
        assert!(row.contains(verdict), "{row} lacks the verdict {verdict}");
    }
}

#[test]
fn full_tables_cover_every_section() {
    let report = fixture_report();
    let (_dir, md) = render_fixture("tables");
    let tables = section(&md, "## Tables", "## Plots");
    let failed = report.map_touch.iter().find(|m| !m.ok).expect("a failure");
    assert!(tables.contains(&format!(
        "error: {}",
        failed.error.as_deref().expect("its error")
    )));
    assert!(tables.contains("| kmalloc | 8 MiB | 9 | 0 | E2BIG |"));
    assert!(tables.contains("Note the segments of vmalloc"));
    let one = report
        .one_vs_many
        .iter()
        .find(|r| r.method == "one" && r.size == 64 << 20)
        .expect("one at 64 MiB");
    let many = report
        .one_vs_many
        .iter()
        .find(|r| r.method == "many" && r.size == 64 << 20)
        .expect("many at 64 MiB");
    let time = |r: &contigmem_bench::schema::OneVsMany| (r.map_ns + r.touch_ns + r.unmap_ns) as f64;
    let row = format!(
        "| 64 MiB | default (folio) | {:.2}× | {:.2}× |",
        time(many) / time(one),
        many.faults as f64 / one.faults as f64
    );
    assert!(tables.contains(&row), "missing {row:?}");
    assert_eq!(
        tables
            .matches("| contigmem HUGE_MAP (`contigmem-huge-hugemap`) |")
            .count(),
        2
    );
}

#[test]
fn states_the_accelerator_and_why() {
    let dir = TempDir::new("kvm");
    let mut kvm = Report::default();
    kvm.meta.accel = "kvm".into();
    kvm.meta.accel_reason = "the CPU has vmx and /dev/kvm creates VMs".into();
    report::render(&kvm, dir.path()).expect("renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(md.contains(KVM_STATEMENT), "{md}");
    assert!(!md.contains(TCG_STATEMENT));
    assert!(
        md.contains("- Accelerator: `kvm` (the CPU has vmx and /dev/kvm creates VMs)"),
        "{md}"
    );
}

#[test]
fn empty_report_renders_without_panic() {
    let dir = TempDir::new("empty");
    let rendered = report::render(&Report::default(), dir.path()).expect("renders");
    assert_eq!(rendered.skipped.len(), PLOTS.len(), "every plot is skipped");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(md.contains(TCG_STATEMENT));
    assert!(md.matches("Not measured").count() >= 4, "{md}");
    assert!(md.contains("kmalloc's limit: not measured."));
    for plot in PLOTS {
        assert!(!dir.path().join(plot).exists(), "{plot} drawn from no data");
        assert!(
            md.contains(&format!("({plot}) was not drawn")),
            "no note for {plot}"
        );
    }
    assert!(dir.path().join("report.json").is_file());
}

#[test]
fn a_log_without_the_marker_is_a_clear_error() {
    let dir = TempDir::new("nomarker");
    let log = dir.path().join("serial.log");
    fs::write(&log, "SeaBIOS\r\n[    1.0] Kernel panic - not syncing\r\n").expect("write");
    let error = report::load(&log).expect_err("no marker");
    let message = error.to_string();
    assert!(message.contains("CONTIGMEM-BENCH-JSON"), "{message}");
    assert!(message.contains("serial.log"), "{message}");
    assert!(matches!(error, report::ReportError::NoMarker { .. }));
}

#[test]
fn a_truncated_marker_line_is_a_json_error() {
    let error = report::parse_log("CONTIGMEM-BENCH-JSON {\"meta\":\r\n", "log").expect_err("bad");
    assert!(matches!(error, report::ReportError::Json { .. }), "{error}");
}

#[test]
fn the_command_line_tool_writes_the_report() {
    let dir = TempDir::new("cli");
    let out = dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_contigmem-report"))
        .arg(FIXTURE)
        .arg(&out)
        .output()
        .expect("run contigmem-report");
    assert!(status.status.success(), "{status:?}");
    assert!(out.join("report.md").is_file());

    let usage = Command::new(env!("CARGO_BIN_EXE_contigmem-report"))
        .output()
        .expect("run contigmem-report");
    assert_eq!(usage.status.code(), Some(2));

    let log = dir.path().join("empty.log");
    fs::write(&log, "nothing\r\n").expect("write");
    let failed = Command::new(env!("CARGO_BIN_EXE_contigmem-report"))
        .arg(&log)
        .arg(&out)
        .output()
        .expect("run contigmem-report");
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("CONTIGMEM-BENCH-JSON"));
}

#[test]
fn a_report_of_failures_only_renders() {
    let mut report = fixture_report();
    for point in &mut report.alloc {
        point.ok = 0;
    }
    for row in &mut report.map_touch {
        row.ok = false;
        row.error = Some("ENOMEM".to_string());
    }
    report.transfer.truncate(1);
    report.one_vs_many.retain(|r| r.method == "one");
    for point in &mut report.scale.points {
        point.ok = false;
        point.reason = Some("not reached: growing stopped at 12 live buffers".to_string());
    }
    let dir = TempDir::new("failures");
    // A plot of an earlier run in the same directory must not survive a skipped plot.
    report::render(&fixture_report(), dir.path()).expect("renders");
    assert!(dir.path().join("faults.svg").is_file());
    let rendered = report::render(&report, dir.path()).expect("renders");
    let skipped: Vec<&str> = rendered.skipped.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "alloc-latency.svg",
            "map-touch.svg",
            "faults.svg",
            "scale.svg"
        ]
    );
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(md.contains("Not measured: there is no size at which both kmalloc and vmalloc"));
    assert!(md.contains("contigmem-huge-hugemap vs hugetlb-2m: not measured"));
    assert!(md.contains("| 64 MiB | default (folio) | not measured | not measured |"));
    assert!(dir.path().join("transfer.svg").is_file());
    for file in skipped {
        assert!(!dir.path().join(file).exists(), "stale {file} left behind");
    }
}

#[test]
fn judges_scale_against_the_control_when_measured() {
    let mut report = fixture_report();
    let n = report.scale.points.len();
    for (i, p) in report.scale.points.iter_mut().enumerate() {
        // The guest ran twice as fast at the last point: raw 0.75x, against the control 1.5x.
        p.control_ns = Some(if i + 1 == n { 5_000.0 } else { 10_000.0 });
        p.pair_vs_control = Some(if i + 1 == n { 6.0 } else { 4.0 });
    }
    let (first, last) = (
        report.scale.points[0].clone(),
        report.scale.points[n - 1].clone(),
    );
    let dir = TempDir::new("scale-control");
    report::render(&report, dir.path()).expect("renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    let answer = section(&md, "### e)", "## Tables");
    assert!(
        answer.contains(
            "**Within the target: ALLOC+FREE at 1,000,000 live buffers costs 1.50× what it \
             costs at 1,000, against the machine's speed of the moment (target ≤ 1.5×)**: a pair \
             took 6.00× and 4.00× the control"
        ),
        "{answer}"
    );
    let raw = format!("{:.2}×", last.pair_ns / first.pair_ns);
    assert!(answer.contains(&format!("({raw})")), "{answer}");
    let tables = section(&md, "### Many buffers", "## Plots");
    assert!(tables.contains("| 10.00 µs | 4.00 | 1.00× |"), "{tables}");
    assert!(tables.contains("| 5.00 µs | 6.00 | 1.50× |"), "{tables}");
}

#[test]
fn answers_whether_alloc_free_scales() {
    let report = fixture_report();
    let (first, last) = (&report.scale.points[0], &report.scale.points[3]);
    assert_eq!((first.live, last.live), (1_000, 1_000_000));
    let (_dir, md) = render_fixture("scale");
    let answer = section(&md, "### e)", "## Tables");
    let verdict = format!(
        "**Within the target: ALLOC+FREE at 1,000,000 live buffers costs {:.2}× what it costs \
         at 1,000 (target ≤ 1.5×)**",
        last.pair_ns / first.pair_ns
    );
    assert!(answer.contains(&verdict), "missing {verdict:?} in {answer}");
    assert!(
        answer.contains("**close() of a file holding 256,000 buffers took 412.00 ms**"),
        "{answer}"
    );
    assert!(answer.contains("it freed all 256,000"), "{answer}");
    assert!(
        answer.contains("with 1,000,000 live buffers took 3.27 s**"),
        "{answer}"
    );
    assert!(
        answer.contains("1,000,001 lines (one per live buffer and the header)"),
        "{answer}"
    );
    assert!(answer.contains("flat (within 2×)"), "{answer}");
    let tables = section(&md, "### Many buffers", "## Plots");
    assert!(
        tables.contains(
            "| 256,000 | 8 | ok | 12.90 µs | 1.09× | — | — | — | 5 × 2,000 | 5.41 s | 41.00 µs |"
        ),
        "{tables}"
    );
    assert!(tables.contains("| 256,000 | 256,000 | ok | 5.38 s | 412.00 ms | 1.61 µs | 256,000 |"));
    assert!(tables.contains("| 1,000,000 | ok | 3.27 s | 61,888,913 | 1,000,001 | 945 |"));
    assert!(md.contains("](scale.svg)"));
}

#[test]
fn scale_answers_say_what_went_wrong() {
    let mut report = fixture_report();
    report.scale.points[0].pair_ns = 1_000.0;
    report
        .scale
        .debugfs_full
        .as_mut()
        .expect("a full read")
        .lines = 17;
    report.scale.points[3].debugfs_first_read_us = Some(900_000.0);
    let dir = TempDir::new("scale-over");
    report::render(&report, dir.path()).expect("renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(md.contains("**Over the target: ALLOC+FREE at 1,000,000 live buffers costs 13.60×"));
    assert!(md.contains("17 lines (expected 1,000,001"));
    assert!(md.contains("it grows with the buffers"));

    let last = report.scale.points.last_mut().expect("a point");
    last.ok = false;
    last.reason =
        Some("not reached: growing stopped at 999,424 live buffers: ALLOC: ENOMEM".into());
    report.scale.close = None;
    report.scale.debugfs_full = Some(contigmem_bench::schema::DebugfsRead {
        reason: last.reason.clone(),
        ..Default::default()
    });
    report::render(&report, dir.path()).expect("renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(md.contains(
        "Not measured: ALLOC+FREE at 1,000,000 live buffers: not reached: growing stopped at \
         999,424 live buffers: ALLOC: ENOMEM."
    ));
    assert!(md.contains("close() of a file holding many buffers: not measured."));
    assert!(md.contains("Reading debugfs `buffers` whole: not measured (not reached"));
    assert!(md.contains("| 1,000,000 | 8 | error: not reached: growing stopped"));
    // The plot still shows the points that were measured.
    assert!(dir.path().join("scale.svg").is_file());
}

#[test]
fn a_report_without_the_scale_section_still_parses() {
    let json = r#"{"meta":{"kernel":"6.x","cmdline":"","accel":"tcg","cpus":1,"mem_bytes":0,
        "page_size":4096,"abi_version":1,"thp_enabled":"","hugetlb_2m_free":0,
        "hugetlb_1g_free":0,"dma_heaps":[],"repeats":1,"seconds":1.0,"notes":[]},
        "alloc":[],"limits":[],"map_touch":[],"transfer":[],"one_vs_many":[]}"#;
    let report = report::parse_json(json, "old").expect("an old report parses");
    assert_eq!(report.scale, Default::default());
    assert_eq!(report.cache, Default::default());
    let dir = TempDir::new("old");
    report::render(&report, dir.path()).expect("renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(md.contains("Not measured: the report has no many-buffer points."));
    assert!(md.contains("### Cache modes\n\nNot measured.\n"), "{md}");
}

#[test]
fn holds_the_default_mappings_to_their_peers_phase_by_phase() {
    let (_dir, md) = render_fixture("phases");
    let answer = section(&md, "### c)", "### d)");
    // 1 GiB in the fixture: the folio mapping's mmap+touch 68.80 ms and munmap 68.80 ms, the
    // system heap's 2.22 s and 416.00 ms, hugetlbfs 2 MiB's 465.64 ms and 62.40 ms.
    assert!(
        answer.contains("1 GiB: contigmem prepopulated against dma-buf system heap: mmap+touch 0.03× (68.80 ms vs 2.22 s), munmap 0.17× (68.80 ms vs 416.00 ms): **within the target**."),
        "{answer}"
    );
    assert!(
        answer.contains("1 GiB: contigmem prepopulated against hugetlbfs 2 MiB: mmap+touch 0.15× (68.80 ms vs 465.64 ms), munmap 1.10× (68.80 ms vs 62.40 ms): **over the target at munmap**."),
        "{answer}"
    );
    // The fixture has no VMALLOC mapping row.
    assert!(answer.contains(
        "1 GiB: contigmem-vmalloc vs dmabuf-system: not measured (contigmem-vmalloc did not run; dmabuf-system ran)"
    ));
}

/// The cache-mode section of report.md.
fn cache_section(md: &str) -> &str {
    section(md, "### Cache modes", "### One mapping vs many")
}

#[test]
fn cache_modes_are_labelled_and_compared_with_write_back() {
    let report = fixture_report();
    let (_dir, md) = render_fixture("cache");
    let tables = cache_section(&md);
    // The label comes first, before any number.
    let label = tables.find(CACHE_TCG_STATEMENT).expect("the TCG label");
    assert!(label < tables.find('|').expect("a table"), "{tables}");
    assert!(
        tables.contains("VERSION offered: `wb`, `wc`, `uc`."),
        "{tables}"
    );
    assert!(tables.contains("The section took 8.40 s."), "{tables}");
    assert_eq!(
        report.cache.points.len(),
        6,
        "pages and huge, three modes each"
    );
    for p in &report.cache.points {
        let wb = report
            .cache
            .points
            .iter()
            .find(|w| w.kind == p.kind && w.mode == "wb")
            .expect("write-back in the fixture");
        let counted = format!(
            "| {} | {} | {} | ok | {} | 3 of 3 | {} | {} | 0 | {} | {} |",
            p.kind,
            format::size(p.size),
            p.mode,
            p.mode,
            p.faults,
            format::count(p.faults_4k),
            format::size(p.mmap_bytes),
            format::size(p.pwrite_bytes)
        );
        assert!(tables.contains(&counted), "missing {counted:?} in {tables}");
        let map_touch = |c: &contigmem_bench::schema::CachePoint| (c.map_ns + c.touch_ns) as f64;
        let timed = format!(
            "| {} | {} | {} | {} | {:.2}× | {} | {:.2}× | {} | {:.2}× | {} | {:.2}× | {} | \
             {:.2}× |",
            p.kind,
            format::size(p.size),
            p.mode,
            format::duration(p.alloc_ns),
            p.alloc_ns as f64 / wb.alloc_ns as f64,
            format::duration(p.map_ns + p.touch_ns),
            map_touch(p) / map_touch(wb),
            format::rate(p.mmap_write_mib_per_s),
            p.mmap_write_mib_per_s / wb.mmap_write_mib_per_s,
            format::rate(p.pwrite_mib_per_s),
            p.pwrite_mib_per_s / wb.pwrite_mib_per_s,
            format::duration(p.unmap_ns),
            p.unmap_ns as f64 / wb.unmap_ns as f64,
        );
        assert!(tables.contains(&timed), "missing {timed:?} in {tables}");
    }
    assert!(
        tables.contains("| huge | 64 MiB | wc | 305.00 ms | 1.04× |"),
        "{tables}"
    );
    assert!(tables.contains("- INFO reported the mode asked for every buffer measured."));
    assert!(tables.contains(
        "- huge 64 MiB: every mode took the faults of write-back at map+touch (32 faults)."
    ));
    assert!(!tables.contains("Not offered"), "{tables}");
}

#[test]
fn cache_modes_say_what_was_not_offered_applied_or_finished() {
    let mut report = fixture_report();
    let why = "not offered by this kernel: VERSION cache_modes lists wb, wc (WC and UC need \
               x86 PAT)";
    report.cache.offered = vec!["wb".into(), "wc".into()];
    for p in &mut report.cache.points {
        match (p.kind.as_str(), p.mode.as_str()) {
            (_, "uc") => {
                *p = contigmem_bench::schema::CachePoint {
                    kind: p.kind.clone(),
                    mode: p.mode.clone(),
                    size: p.size,
                    faults_4k: p.faults_4k,
                    rounds_planned: 3,
                    error: Some(why.into()),
                    ..Default::default()
                }
            }
            ("huge", "wc") => {
                p.info_mode = Some("wb".into());
                p.faults = 16_384;
            }
            ("pages", "wc") => {
                p.rounds = 2;
                p.error = Some("ALLOC: ENOMEM".into());
            }
            _ => {}
        }
    }
    let dir = TempDir::new("cache-missing");
    report::render(&report, dir.path()).expect("renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    let tables = cache_section(&md);
    assert!(tables.contains("VERSION offered: `wb`, `wc`."), "{tables}");
    assert!(
        tables.contains(&format!(
            "| huge | 64 MiB | uc | {why} | — | — | — | 16,384 |"
        )),
        "{tables}"
    );
    assert!(
        tables.contains("| huge | 64 MiB | uc | — | — | — | — |"),
        "{tables}"
    );
    assert!(tables.contains("- Not offered by this kernel, so not measured: uc."));
    assert!(
        tables.contains("| huge | 64 MiB | wc | ok | **wb (asked wc)** |"),
        "{tables}"
    );
    assert!(tables.contains("- **INFO reported another mode than the one asked: huge wc got wb.**"));
    assert!(tables.contains(
        "- **huge 64 MiB: map+touch faults differ from write-back's 32: wc 16384 faults.**"
    ));
    assert!(
        tables.contains("| pages | 4 MiB | wc | ok, 2 of 3 rounds; then: ALLOC: ENOMEM |"),
        "{tables}"
    );

    // No mode measured at all, under KVM: its own label, and nothing compared.
    report.meta.accel = "kvm".into();
    for p in &mut report.cache.points {
        p.ok = false;
        p.error.get_or_insert_with(|| "ALLOC: EOPNOTSUPP".into());
    }
    report::render(&report, dir.path()).expect("renders");
    let md = fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    let tables = cache_section(&md);
    assert!(tables.contains(CACHE_KVM_STATEMENT), "{tables}");
    assert!(!tables.contains(CACHE_TCG_STATEMENT), "{tables}");
    assert!(
        tables.contains("| huge | 64 MiB | wb | error: ALLOC: EOPNOTSUPP |"),
        "{tables}"
    );
    assert!(tables.contains("- No mode was measured."), "{tables}");
    assert!(
        !tables
            .lines()
            .any(|l| l.starts_with('|') && l.contains('×')),
        "a ratio from no data: {tables}"
    );
}
