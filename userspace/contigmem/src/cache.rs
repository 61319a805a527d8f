// SPDX-License-Identifier: GPL-2.0

//! Caching modes of a buffer (`enum contigmem_cache`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::abi;

/// How the CPU caches a buffer's memory: its user mappings, its dma-bufs' mappings and the
/// kernel's own alias all use the same mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cache {
    /// Write-back: normal cached memory.
    #[default]
    Wb,
    /// Write-combining: uncached, writes merged in the CPU's write-combining buffers (PAT WC).
    Wc,
    /// Uncached (PAT UC-).
    Uc,
}

impl Cache {
    /// Every mode, in ABI order.
    pub const ALL: [Cache; abi::CACHE_COUNT as usize] = [Cache::Wb, Cache::Wc, Cache::Uc];

    /// The name the CLI and debugfs use: `wb`, `wc`, `uc`.
    pub fn name(self) -> &'static str {
        match self {
            Cache::Wb => "wb",
            Cache::Wc => "wc",
            Cache::Uc => "uc",
        }
    }

    /// The ABI value.
    pub fn raw(self) -> u32 {
        match self {
            Cache::Wb => abi::CACHE_WB,
            Cache::Wc => abi::CACHE_WC,
            Cache::Uc => abi::CACHE_UC,
        }
    }

    /// The mode with ABI value `raw`.
    pub fn from_raw(raw: u32) -> Option<Cache> {
        Cache::ALL.into_iter().find(|c| c.raw() == raw)
    }
}

impl fmt::Display for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Cache {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cache::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown cache mode {s:?}: expected one of wb, wc, uc"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for c in Cache::ALL {
            assert_eq!(c.name().parse::<Cache>(), Ok(c));
            assert_eq!(Cache::from_raw(c.raw()), Some(c));
        }
        assert_eq!(Cache::from_raw(abi::CACHE_COUNT), None);
        assert!("wt".parse::<Cache>().is_err());
        assert_eq!(Cache::default(), Cache::Wb);
    }
}
