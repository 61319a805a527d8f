// SPDX-License-Identifier: GPL-2.0

//! The back-ends a buffer can come from (`enum contigmem_kind`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::abi;

/// The kernel allocator behind a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `kmalloc`: physically contiguous, up to `KMALLOC_MAX_SIZE`.
    Kmalloc,
    /// `kzalloc`: as `kmalloc`, zeroed by the allocator.
    Kzalloc,
    /// `vmalloc`: virtually contiguous only.
    Vmalloc,
    /// `alloc_pages(order)`: physically contiguous and naturally aligned.
    Pages,
    /// `alloc_contig_pages`: physically contiguous, 1 GiB and more.
    Huge,
}

/// The granule of `huge` buffer sizes: a `MAX_PAGE_ORDER` block (4 MiB on x86-64). The module
/// rounds huge sizes up to it, so that every contiguous range is whole, aligned buddy blocks.
pub const HUGE_GRANULE: u64 = 4 << 20;

impl Kind {
    /// The granule sizes of this kind are rounded up to, given the page size.
    pub fn granule(self, page_size: u64) -> u64 {
        match self {
            Kind::Huge => HUGE_GRANULE.max(page_size),
            _ => page_size,
        }
    }

    /// Every kind, in ABI order.
    pub const ALL: [Kind; 5] = [
        Kind::Kmalloc,
        Kind::Kzalloc,
        Kind::Vmalloc,
        Kind::Pages,
        Kind::Huge,
    ];

    /// The lowercase name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kmalloc => "kmalloc",
            Kind::Kzalloc => "kzalloc",
            Kind::Vmalloc => "vmalloc",
            Kind::Pages => "pages",
            Kind::Huge => "huge",
        }
    }

    /// The ABI value (`CONTIGMEM_KIND_*`).
    pub fn raw(self) -> u32 {
        match self {
            Kind::Kmalloc => abi::KIND_KMALLOC,
            Kind::Kzalloc => abi::KIND_KZALLOC,
            Kind::Vmalloc => abi::KIND_VMALLOC,
            Kind::Pages => abi::KIND_PAGES,
            Kind::Huge => abi::KIND_HUGE,
        }
    }

    /// The kind with ABI value `raw`, if there is one.
    pub fn from_raw(raw: u32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.raw() == raw)
    }

    /// Whether buffers of this kind are physically contiguous.
    pub fn is_contiguous(self) -> bool {
        self != Kind::Vmalloc
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A string that names no kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseKindError(String);

impl fmt::Display for ParseKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        write!(
            f,
            "unknown kind {:?}: expected one of {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for ParseKindError {}

impl FromStr for Kind {
    type Err = ParseKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseKindError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.to_string().parse::<Kind>(), Ok(kind));
            assert_eq!(Kind::from_raw(kind.raw()), Some(kind));
        }
        assert_eq!("HUGE".parse::<Kind>(), Ok(Kind::Huge));
    }

    #[test]
    fn raw_values_follow_the_abi() {
        let raws: Vec<u32> = Kind::ALL.iter().map(|k| k.raw()).collect();
        assert_eq!(raws, (0..abi::KIND_COUNT).collect::<Vec<_>>());
        assert_eq!(Kind::from_raw(abi::KIND_COUNT), None);
    }

    #[test]
    fn unknown_names_list_the_kinds() {
        let err = "slab".parse::<Kind>().unwrap_err().to_string();
        assert!(
            err.contains("kmalloc, kzalloc, vmalloc, pages, huge"),
            "{err}"
        );
    }

    #[test]
    fn only_vmalloc_is_scattered() {
        let scattered: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| !k.is_contiguous())
            .collect();
        assert_eq!(scattered, [Kind::Vmalloc]);
    }
}
