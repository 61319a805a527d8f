// SPDX-License-Identifier: GPL-2.0

//! Exercise one buffer: allocate, map, check it reads as zero, write a pattern, read it back,
//! and look at its pages through `/proc/self/pagemap`. Shared by `alloc`, `verify` and `demo`.

use contigmem::pattern::Mismatch;
use contigmem::{
    format_size, pagemap, pattern, AllocOptions, Buffer, BufferInfo, Device, Error, Kind, Mapping,
};
use serde::Serialize;

use crate::progress::{self, Progress};

/// The pattern seed; its high bits make every word non-zero.
const SEED: u64 = 0xc0de_0000_0000_0000;

/// What `/proc/self/pagemap` says about a mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Pages {
    /// Frame numbers are visible.
    Visible {
        pages: usize,
        segments: usize,
        first_pfn: u64,
        /// `first_pfn * page_size`.
        first_phys: u64,
    },
    /// Frame numbers are hidden (not root) or unreadable; the reason says which.
    Unavailable { reason: String },
}

/// What exercising a buffer found.
#[derive(Debug, Serialize)]
pub struct Probe {
    pub kind: Kind,
    pub requested_size: u64,
    pub size: u64,
    pub id: u64,
    pub phys_addr: u64,
    pub alloc_ns: u64,
    pub uninit: bool,
    pub page_size: u64,
    /// INFO, read while the buffer is mapped once.
    pub info: BufferInfo,
    /// Whether the buffer read as zero before the pattern was written.
    pub was_zero: bool,
    /// The first pattern mismatch, if the read-back failed.
    pub pattern_error: Option<String>,
    pub pagemap: Pages,
}

/// The unit of work between progress updates: a power of two, so that the pattern of a chunk
/// at offset `base` is the pattern with seed `SEED ^ base` (see [`pattern`]).
const CHUNK: usize = 16 << 20;

/// Allocates and exercises a buffer; returns the report with the buffer and its mapping, so the
/// caller decides how long they live. Steps that take more than a second show progress on
/// stderr.
pub fn run<'dev>(
    dev: &'dev Device,
    kind: Kind,
    size: u64,
    options: &AllocOptions,
) -> Result<(Probe, Buffer<'dev>, Mapping), Error> {
    let buf = progress::timed(&format!("allocating {} {kind}", format_size(size)), || {
        dev.alloc_with(kind, size, options)
    })?;
    let mut map = buf.map()?;
    let len = map.len();
    let mut nonzero = None;
    chunked(
        &format!("checking {} reads as zero", format_size(len as u64)),
        len,
        |base, n| {
            nonzero = pattern::find_nonzero(&map[base..base + n]);
            nonzero.is_none()
        },
    );
    chunked(
        &format!("touching {}", format_size(len as u64)),
        len,
        |base, n| {
            pattern::fill(&mut map[base..base + n], seed_at(base));
            true
        },
    );
    let mismatch = find_mismatch(&format!("reading back {}", format_size(len as u64)), &map);
    let pagemap = pages(&map, dev.page_size() as u64);
    let info = buf.info()?;
    let probe = Probe {
        kind,
        requested_size: size,
        size: buf.size(),
        id: buf.id(),
        phys_addr: buf.phys_addr(),
        alloc_ns: buf.alloc_ns(),
        uninit: buf.is_uninit(),
        page_size: dev.page_size() as u64,
        info,
        was_zero: nonzero.is_none(),
        pattern_error: mismatch.map(|m| m.to_string()),
        pagemap,
    };
    Ok((probe, buf, map))
}

/// The seed that makes the chunk at `base` hold its part of the pattern of [`SEED`]: the word
/// at offset `o` of the chunk is `SEED ^ base ^ o`, which is `SEED ^ (base + o)` because `base`
/// is a multiple of the power of two [`CHUNK`] and `o < CHUNK`.
fn seed_at(base: usize) -> u64 {
    SEED ^ base as u64
}

/// The first word of `mem` (a whole buffer, mapped) that does not hold the pattern [`run`]
/// wrote, checked chunk by chunk with progress shown as `what`.
pub fn find_mismatch(what: &str, mem: &[u8]) -> Option<Mismatch> {
    let mut mismatch = None;
    chunked(what, mem.len(), |base, n| {
        mismatch = pattern::check(&mem[base..base + n], seed_at(base))
            .err()
            .map(|m| Mismatch {
                offset: base + m.offset,
                ..m
            });
        mismatch.is_none()
    });
    mismatch
}

/// Calls `f(offset, len)` for each [`CHUNK`] of `len` bytes, showing progress as `what`, until
/// it returns false.
fn chunked(what: &str, len: usize, mut f: impl FnMut(usize, usize) -> bool) {
    let mut progress = Progress::new(what, Some(len as u64));
    let mut base = 0;
    while base < len {
        let n = CHUNK.min(len - base);
        if !f(base, n) {
            break;
        }
        base += n;
        progress.update(base as u64);
    }
    progress.finish();
}

fn pages(map: &Mapping, page_size: u64) -> Pages {
    map.touch();
    let mut entries = Vec::new();
    let mut error = None;
    let what = format!("reading pagemap of {}", format_size(map.len() as u64));
    chunked(&what, map.len(), |base, n| {
        match pagemap::read(map.addr() + base, n) {
            Ok(part) => entries.extend(part),
            Err(e) => error = Some(e),
        }
        error.is_none()
    });
    let pfns = match error {
        Some(e) => Err(e),
        None => pagemap::pfns(&entries),
    };
    match pfns {
        Ok(pfns) => {
            let first_pfn = pfns.first().copied().unwrap_or(0);
            Pages::Visible {
                pages: pfns.len(),
                segments: pagemap::segments(&pfns).len(),
                first_pfn,
                first_phys: first_pfn * page_size,
            }
        }
        Err(e) => Pages::Unavailable {
            reason: e.to_string(),
        },
    }
}

/// One comparison made by `verify`.
#[derive(Debug, Serialize)]
pub struct Check {
    pub what: String,
    pub expected: String,
    pub seen: String,
    pub ok: bool,
}

impl Check {
    fn new(what: &str, expected: impl ToString, seen: impl ToString) -> Self {
        let (expected, seen) = (expected.to_string(), seen.to_string());
        Self {
            what: what.into(),
            ok: expected == seen,
            expected,
            seen,
        }
    }
}

impl Probe {
    /// Every check `verify` makes on this probe. Pagemap checks need visible frame numbers;
    /// without them they fail, saying why.
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = vec![
            Check::new(
                "pattern reads back",
                "no mismatch",
                self.pattern_error.as_deref().unwrap_or("no mismatch"),
            ),
            Check::new("INFO kind", self.kind, self.info.kind),
            Check::new("INFO size", self.size, self.info.size),
            Check::new(
                "INFO contiguous flag",
                self.kind.is_contiguous(),
                self.info.contiguous,
            ),
            Check::new(
                "INFO phys_addr equals ALLOC phys_addr",
                self.phys_addr,
                self.info.phys_addr,
            ),
        ];
        if !self.uninit {
            checks.push(Check::new(
                "fresh buffer reads as zero",
                true,
                self.was_zero,
            ));
        }
        if self.kind.is_contiguous() {
            checks.push(Check::new("INFO segments", 1, self.info.segments));
        }
        match &self.pagemap {
            Pages::Visible {
                pages,
                segments,
                first_phys,
                ..
            } => {
                checks.push(Check::new(
                    "pagemap pages",
                    self.size / self.page_size.max(1),
                    pages,
                ));
                if self.kind.is_contiguous() {
                    checks.push(Check::new(
                        "pagemap segments (consecutive PFNs)",
                        1,
                        segments,
                    ));
                } else {
                    checks.push(Check::new(
                        "pagemap segments equal INFO segments",
                        self.info.segments,
                        segments,
                    ));
                }
                checks.push(Check::new(
                    "first PFN * page size equals phys_addr",
                    format!("{:#x}", self.info.phys_addr),
                    format!("{first_phys:#x}"),
                ));
            }
            Pages::Unavailable { reason } => {
                checks.push(Check::new("pagemap readable", "frame numbers", reason));
            }
        }
        checks
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use contigmem::Cache;

    /// A probe of an 8K buffer of `kind` at 0x100000, for the tests of the reports.
    pub(crate) fn probe(kind: Kind, segments: u64, pagemap: Pages) -> Probe {
        Probe {
            kind,
            requested_size: 8192,
            size: 8192,
            id: 1,
            phys_addr: 0x10_0000,
            alloc_ns: 1000,
            uninit: false,
            page_size: 4096,
            info: BufferInfo {
                id: 1,
                kind,
                contiguous: kind.is_contiguous(),
                uninit: false,
                huge_map: false,
                pinnable: true,
                size: 8192,
                mmap_offset: 0,
                phys_addr: 0x10_0000,
                segments,
                mappings: 1,
                node: 0,
                off_node_pages: 0,
                strict_node: false,
                dmabufs: 0,
                cache: Cache::Wb,
            },
            was_zero: true,
            pattern_error: None,
            pagemap,
        }
    }

    fn visible(segments: usize, first_pfn: u64) -> Pages {
        Pages::Visible {
            pages: 2,
            segments,
            first_pfn,
            first_phys: first_pfn * 4096,
        }
    }

    #[test]
    fn chunked_patterns_are_the_whole_pattern() {
        let len = 2 * CHUNK + 4096 + 12;
        let mut whole = vec![0u8; len];
        pattern::fill(&mut whole, SEED);
        let mut parts = vec![0u8; len];
        chunked("test", len, |base, n| {
            pattern::fill(&mut parts[base..base + n], seed_at(base));
            true
        });
        assert!(
            whole == parts,
            "the chunked fill differs from the whole fill"
        );
        let mut seen = Vec::new();
        chunked("test", len, |base, n| {
            seen.push((base, n));
            base == 0
        });
        assert_eq!(seen, [(0, CHUNK), (CHUNK, CHUNK)]);
        assert_eq!(find_mismatch("test", &whole), None);
        whole[CHUNK + 16] ^= 1;
        assert_eq!(
            find_mismatch("test", &whole).map(|m| m.offset),
            Some(CHUNK + 16)
        );
    }

    #[test]
    fn a_contiguous_buffer_passes() {
        let checks = probe(Kind::Pages, 1, visible(1, 0x100)).checks();
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    }

    #[test]
    fn scattered_pages_of_a_contiguous_kind_fail() {
        let checks = probe(Kind::Huge, 1, visible(2, 0x100)).checks();
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(failed, ["pagemap segments (consecutive PFNs)"]);
    }

    #[test]
    fn a_wrong_physical_address_fails() {
        let checks = probe(Kind::Kmalloc, 1, visible(1, 0x200)).checks();
        assert!(checks
            .iter()
            .any(|c| !c.ok && c.what.starts_with("first PFN")));
    }

    #[test]
    fn vmalloc_segments_must_match_info() {
        assert!(probe(Kind::Vmalloc, 2, visible(2, 0x100))
            .checks()
            .iter()
            .all(|c| c.ok));
        assert!(probe(Kind::Vmalloc, 1, visible(2, 0x100))
            .checks()
            .iter()
            .any(|c| !c.ok));
    }

    #[test]
    fn hidden_frames_fail_and_say_why() {
        let hidden = Pages::Unavailable {
            reason: "run as root".into(),
        };
        let checks = probe(Kind::Pages, 1, hidden).checks();
        let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].seen, "run as root");
    }
}
