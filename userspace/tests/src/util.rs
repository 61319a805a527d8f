// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the tests: opening the device, reading the counters, expecting errnos.

use std::fmt::Display;

use contigmem::{pagemap, AllocOptions, Buffer, Device, Errno, Error, Kind, Mapping, Version};

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

/// A HUGE buffer of `size` with `options`; from 1 GiB up, ENOMEM is tried again a few times.
///
/// The guest has one free aligned GiB ([1G, 2G) of node 0, see qemu/run.sh). When a GiB buffer is
/// freed its 4 MiB blocks go to the head of the free lists, so the next unmovable allocations
/// that fall back to movable memory (page tables and stacks of forked processes, slab pages) take
/// pageblocks in it. Most of those pages go back soon after (an RCU grace period after their
/// process exits), the caches' slab pages when the caches are dropped: each retry drops the page
/// and slab caches and waits a second. Each retry is printed.
pub fn alloc_huge<'d>(
    dev: &'d Device,
    size: u64,
    options: &AllocOptions,
) -> Result<Buffer<'d>, Fail> {
    const TRIES: u32 = 8;
    let mut tries = 1;
    loop {
        match dev.alloc_with(Kind::Huge, size, options) {
            Err(e) if e.errno() == Errno::NOMEM && size >= G && tries < TRIES => {
                println!(
                    "# ALLOC HUGE {}: ENOMEM on try {tries} of {TRIES}; dropping caches, again in 1 s",
                    size_name(size)
                );
                // Best effort: without root the caches stay, and the wait alone must do.
                let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
                std::thread::sleep(std::time::Duration::from_secs(1));
                tries += 1;
            }
            other => return other.ctx(format!("ALLOC HUGE {}", size_name(size))),
        }
    }
}
