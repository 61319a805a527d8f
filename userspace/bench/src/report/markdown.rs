// SPDX-License-Identifier: GPL-2.0
//! `report.md`: the run, the TCG caveat, the answers, the full tables and the plots, in that
//! order; and [`Md`], the small markdown writer the other sections use.

use super::plot::PlotOutcome;
use super::{answers, format, tables};
use crate::schema::{Meta, Report};

/// The caveat every report states: what the numbers of a TCG guest are good for.
pub const TCG_STATEMENT: &str = "**The guest runs under TCG (software emulation, no KVM): \
timings are ratios to compare within this one run, not hardware figures; fault counts, sizes \
and segment counts are exact.**";

/// A markdown document being written, one block at a time.
#[derive(Debug, Default)]
pub struct Md {
    text: String,
}

impl Md {
    /// A heading of `level` (1 = '#'), followed by a blank line.
    pub fn heading(&mut self, level: usize, title: &str) {
        self.para(format!("{} {title}", "#".repeat(level)));
    }

    /// One line.
    pub fn line(&mut self, text: impl AsRef<str>) {
        self.text.push_str(text.as_ref());
        self.text.push('\n');
    }

    /// A paragraph: the text and a blank line.
    pub fn para(&mut self, text: impl AsRef<str>) {
        self.line(text);
        self.text.push('\n');
    }

    /// A table with a header row; cells must already be escaped with [`format::cell`].
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        self.line(format!("| {} |", headers.join(" | ")));
        self.line(format!("|{}", "---|".repeat(headers.len())));
        for row in rows {
            self.line(format!("| {} |", row.join(" | ")));
        }
        self.text.push('\n');
    }

    /// Appends a document written elsewhere.
    pub fn append(&mut self, other: Md) {
        self.text.push_str(&other.text);
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.text
    }
}

/// The whole of `report.md` for `report`, with links to (or notes about) `plots`.
pub fn render(report: &Report, plots: &[PlotOutcome]) -> String {
    let mut md = Md::default();
    md.heading(1, "contigmem benchmark report");
    md.append(meta(&report.meta));
    md.append(answers::render(report));
    md.append(tables::render(report));
    md.append(plot_links(plots));
    md.finish()
}

/// The run: where and how it was made, and the TCG caveat.
fn meta(meta: &Meta) -> Md {
    let mut md = Md::default();
    md.heading(2, "Run");
    md.line(format!("- Kernel: {}", code_or_unknown(&meta.kernel)));
    md.line(format!(
        "- Command line: {}",
        code_or_unknown(&meta.cmdline)
    ));
    let why = if meta.accel_reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", meta.accel_reason)
    };
    md.line(format!(
        "- Accelerator: {}{why}",
        code_or_unknown(&meta.accel)
    ));
    md.line(format!("- CPUs: {}", meta.cpus));
    md.line(format!(
        "- Memory: {} (page size {})",
        format::size(meta.mem_bytes),
        format::size(meta.page_size)
    ));
    md.line(format!("- contigmem ABI version: {}", meta.abi_version));
    md.line(format!(
        "- Transparent huge pages (`transparent_hugepage/enabled`): {}",
        code_or_unknown(&meta.thp_enabled)
    ));
    md.line(format!(
        "- hugetlb pools at start: {} × 2 MiB and {} × 1 GiB pages free",
        meta.hugetlb_2m_free, meta.hugetlb_1g_free
    ));
    md.line(format!("- DMA heaps: {}", dma_heaps(&meta.dma_heaps)));
    md.line(format!("- Repeats per latency point: {}", meta.repeats));
    md.line(format!("- Run time: {:.1} s", meta.seconds));
    md.line(format!("- Notes:{}", notes(&meta.notes)));
    md.line("");
    md.para(accel_statement(&meta.accel));
    md
}

/// What the times mean under KVM: the guest's code runs on the CPU.
pub const KVM_STATEMENT: &str = "**The guest runs under KVM (hardware virtualisation): its code \
runs on the CPU, so times are close to the hardware's, with a guest's costs (nested page tables \
on TLB misses, exits on interrupts and some instructions); fault counts, sizes and segment counts \
are exact.**";

/// The label of the cache-mode tables under TCG (and any accelerator but KVM).
pub const CACHE_TCG_STATEMENT: &str = "**TCG does not model caches: guest timings of WB/WC/UC \
are not hardware figures; faults and bytes are exact.**";

/// The label of the cache-mode tables under KVM.
pub const CACHE_KVM_STATEMENT: &str = "**Under KVM the guest's WC and UC reach the memory only \
where the host's KVM honours the guest's PAT (it may keep guest RAM write-back): the timings of \
WB/WC/UC are hardware figures only then; faults and bytes are exact.**";

/// The label of the cache-mode tables for the run's accelerator.
pub fn cache_statement(accel: &str) -> &'static str {
    if accel.eq_ignore_ascii_case("kvm") {
        CACHE_KVM_STATEMENT
    } else {
        CACHE_TCG_STATEMENT
    }
}

/// The TCG caveat, the KVM one, or for another accelerator the TCG caveat, naming it.
fn accel_statement(accel: &str) -> String {
    if accel.is_empty() || accel.eq_ignore_ascii_case("tcg") {
        TCG_STATEMENT.to_string()
    } else if accel.eq_ignore_ascii_case("kvm") {
        KVM_STATEMENT.to_string()
    } else {
        format!(
            "**The guest reported the accelerator {}, not TCG: timings are still ratios to \
             compare within this one run, not hardware figures; fault counts, sizes and \
             segment counts are exact.**",
            format::code(accel)
        )
    }
}

fn code_or_unknown(text: &str) -> String {
    if text.is_empty() {
        "unknown".to_string()
    } else {
        format::code(text)
    }
}

fn dma_heaps(heaps: &[String]) -> String {
    if heaps.is_empty() {
        "none".to_string()
    } else {
        heaps
            .iter()
            .map(|heap| format::code(heap))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn notes(notes: &[String]) -> String {
    if notes.is_empty() {
        return " none".to_string();
    }
    notes
        .iter()
        .map(|note| format!("\n  - {}", note.replace(['\r', '\n'], " ")))
        .collect()
}

/// The plots: an image link for each drawn, a note for each skipped.
fn plot_links(plots: &[PlotOutcome]) -> Md {
    let mut md = Md::default();
    md.heading(2, "Plots");
    for plot in plots {
        match &plot.skipped {
            None => md.para(format!("![{}]({})", plot.title, plot.file)),
            Some(reason) => md.para(format!(
                "*{} ({}) was not drawn: {reason}.*",
                plot.title, plot.file
            )),
        }
    }
    md
}
