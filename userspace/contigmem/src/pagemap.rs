// SPDX-License-Identifier: GPL-2.0

//! Physical frames behind virtual memory, from `/proc/self/pagemap`, and the physically
//! contiguous runs (segments) they form.
//!
//! Each page has a 64-bit entry: bit 63 says the page is present, bits 0-54 hold its page frame
//! number (PFN). The kernel shows PFNs to `CAP_SYS_ADMIN` only; everyone else reads 0. Pages
//! must be present (touched) to have a frame: [`of`] touches them first.

use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::Mapping;

const PATH: &str = "/proc/self/pagemap";
const ENTRY_SIZE: usize = 8;

/// Bits 0-54: the page frame number.
pub const PFN_MASK: u64 = (1 << 55) - 1;
/// Bit 63: the page is present in RAM.
pub const PRESENT: u64 = 1 << 63;

/// One page's entry in `/proc/self/pagemap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry(pub u64);

impl Entry {
    /// Whether the page is present in RAM.
    pub fn present(self) -> bool {
        self.0 & PRESENT != 0
    }

    /// The page frame number: 0 if not present or if the caller lacks `CAP_SYS_ADMIN`.
    pub fn pfn(self) -> u64 {
        self.0 & PFN_MASK
    }
}

/// A physically contiguous run of pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// The frame number of the run's first page.
    pub first_pfn: u64,
    /// The number of pages in the run.
    pub pages: u64,
}

fn open() -> Result<OwnedFd> {
    rustix::fs::open(PATH, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| Error::os("open /proc/self/pagemap", errno))
}

/// The entries of the pages covering `[addr, addr + len)` of this process.
pub fn read(addr: usize, len: usize) -> Result<Vec<Entry>> {
    let page = rustix::param::page_size();
    let first = addr / page;
    let end = addr
        .checked_add(len)
        .ok_or_else(|| Error::invalid("pagemap range overflows"))?;
    let pages = end.div_ceil(page) - first;
    let fd = open()?;
    let mut bytes = vec![0u8; pages * ENTRY_SIZE];
    let mut done = 0;
    while done < bytes.len() {
        let offset = (first * ENTRY_SIZE + done) as u64;
        let n = rustix::io::pread(&fd, &mut bytes[done..], offset)
            .map_err(|errno| Error::os("read /proc/self/pagemap", errno))?;
        if n == 0 {
            return Err(Error::Abi {
                what: format!("short read of {PATH}: {done} of {} bytes", bytes.len()),
            });
        }
        done += n;
    }
    Ok(bytes
        .chunks_exact(ENTRY_SIZE)
        .map(|chunk| {
            let mut raw = [0; ENTRY_SIZE];
            raw.copy_from_slice(chunk);
            Entry(u64::from_ne_bytes(raw))
        })
        .collect())
}

/// The entries of every page of `mapping`, after touching each so that it is present.
pub fn of(mapping: &Mapping) -> Result<Vec<Entry>> {
    mapping.touch();
    read(mapping.addr(), mapping.len())
}

/// The frame numbers of `entries`: fails if a page is not present or PFNs are hidden.
pub fn pfns(entries: &[Entry]) -> Result<Vec<u64>> {
    if let Some(page) = entries.iter().position(|e| !e.present()) {
        return Err(Error::NotPresent { page });
    }
    if !entries.is_empty() && entries.iter().all(|e| e.pfn() == 0) {
        return Err(Error::PfnHidden);
    }
    Ok(entries.iter().map(|e| e.pfn()).collect())
}

/// Splits `pfns` (in virtual order) into runs of consecutive frame numbers.
pub fn segments(pfns: &[u64]) -> Vec<Segment> {
    let mut runs: Vec<Segment> = Vec::new();
    for &pfn in pfns {
        match runs.last_mut() {
            Some(run) if run.first_pfn.checked_add(run.pages) == Some(pfn) => run.pages += 1,
            _ => runs.push(Segment {
                first_pfn: pfn,
                pages: 1,
            }),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_present_and_pfn() {
        let e = Entry(PRESENT | (1 << 61) | 0x12345);
        assert!(e.present());
        assert_eq!(e.pfn(), 0x12345);
        assert!(!Entry(0x12345).present());
        assert_eq!(Entry(PRESENT | PFN_MASK | (1 << 55)).pfn(), PFN_MASK);
    }

    #[test]
    fn counts_runs_of_consecutive_frames() {
        assert_eq!(segments(&[]), []);
        assert_eq!(segments(&[7]).len(), 1);
        assert_eq!(
            segments(&[10, 11, 12, 13]),
            [Segment {
                first_pfn: 10,
                pages: 4
            }]
        );
        assert_eq!(
            segments(&[10, 11, 20, 21, 22, 5]),
            [
                Segment {
                    first_pfn: 10,
                    pages: 2
                },
                Segment {
                    first_pfn: 20,
                    pages: 3
                },
                Segment {
                    first_pfn: 5,
                    pages: 1
                },
            ]
        );
        // Descending or repeated frames are not contiguous.
        assert_eq!(segments(&[3, 2, 1]).len(), 3);
        assert_eq!(segments(&[4, 4]).len(), 2);
        assert_eq!(segments(&[u64::MAX, 0]).len(), 2);
    }

    #[test]
    fn pfns_need_present_pages_and_privilege() {
        let present = |pfn| Entry(PRESENT | pfn);
        assert_eq!(pfns(&[present(5), present(6)]), Ok(vec![5, 6]));
        assert_eq!(
            pfns(&[present(5), Entry(0)]),
            Err(Error::NotPresent { page: 1 })
        );
        assert_eq!(pfns(&[present(0), present(0)]), Err(Error::PfnHidden));
        assert_eq!(pfns(&[]), Ok(vec![]));
    }

    #[test]
    fn reads_this_process_own_memory() {
        let page = rustix::param::page_size();
        let mut buf = vec![1u8; 4 * page];
        buf.iter_mut().for_each(|b| *b = 2);
        let entries = read(buf.as_ptr() as usize, buf.len()).expect("pagemap is readable");
        // A page-unaligned heap range spans 4 or 5 pages, all present after the writes.
        assert!(
            entries.len() == 4 || entries.len() == 5,
            "{}",
            entries.len()
        );
        assert!(entries.iter().all(|e| e.present()));
    }
}
