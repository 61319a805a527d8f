// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the tests: opening the device, reading the counters, expecting errnos.

use std::fmt::Display;

use contigmem::{pagemap, Device, Errno, Error, Mapping, Version};

use crate::tap::{Context, Fail};

pub const K: u64 = 1 << 10;
pub const M: u64 = 1 << 20;
pub const G: u64 = 1 << 30;

/// Opens `/dev/contigmem`.
pub fn open() -> Result<Device, Fail> {
    Device::open().ctx("open")
}

/// VERSION through `dev`.
pub fn version(dev: &Device) -> Result<Version, Fail> {
    dev.version().ctx("VERSION")
}

/// `size` rounded up to whole pages.
pub fn round_up(size: u64, page: u64) -> u64 {
    size.div_ceil(page) * page
}

/// Fails unless `result` failed with `want`.
pub fn expect_errno<T>(
    result: Result<T, Error>,
    want: Errno,
    what: impl Display,
) -> Result<(), Fail> {
    match result {
        Err(e) if e.errno() == want => Ok(()),
        Err(e) => Err(format!("{what}: expected {want}, saw {e}").into()),
        Ok(_) => Err(format!("{what}: expected {want}, but it succeeded").into()),
    }
}

/// The live counters of VERSION: (bytes, buffers).
pub fn live(dev: &Device) -> Result<(u64, u64), Fail> {
    let v = version(dev)?;
    Ok((v.live_bytes, v.live_buffers))
}

/// Fails unless VERSION's live counters equal `want`.
pub fn expect_live(dev: &Device, want: (u64, u64), when: &str) -> Result<(), Fail> {
    let seen = live(dev)?;
    if seen != want {
        return Err(format!(
            "{when}: expected live_bytes/live_buffers {}/{}, saw {}/{}",
            want.0, want.1, seen.0, seen.1
        )
        .into());
    }
    Ok(())
}

/// The frame numbers behind every page of `map` (touching them first); needs root.
pub fn pfns(map: &Mapping) -> Result<Vec<u64>, Fail> {
    let entries = pagemap::of(map).ctx("reading /proc/self/pagemap")?;
    pagemap::pfns(&entries).ctx("pagemap")
}

/// A size for test names: `4K`, `1G`.
pub fn size_name(size: u64) -> String {
    contigmem::format_size(size)
}
