// SPDX-License-Identifier: GPL-2.0

//! Caching modes: for each mode of the ABI (WB, WC, UC) on PAGES and HUGE buffers, a fresh
//! buffer with that mode is mapped and every 4 KiB page touched (time, faults), written whole
//! through the mapping and then with pwrite() on the device (time, bytes), and checked through
//! the mapping, so that the two aliases are seen to agree; INFO says which mode the buffer got.
//!
//! TCG does not model caches: under it the modes' times are not hardware figures, and only the
//! faults, the bytes and the modes INFO reports mean anything. The times are still taken, so
//! that the same run on hardware (or under KVM where it honours the guest's PAT) compares the
//! modes. A mode the kernel does not offer (WC and UC need x86 PAT) becomes a row that says so.

use std::time::Instant;

use contigmem::{pattern, AllocOptions, Cache, Device, Kind, Version};
use contigmem_bench::schema::{CacheModes, CachePoint};

use crate::util::{copy_chunks, faults, progress, pwrite_all, timed, touch_range};
use crate::Plan;

/// Bytes per memcpy into the mapping and per pwrite() call, as in the transfer section.
const CHUNK: usize = 1 << 20;
/// The patterns written through the mapping and with pwrite().
const MMAP_SEED: u64 = 0x5ca1_ab1e_0000_0000;
const PWRITE_SEED: u64 = 0xc0ff_ee00_0000_0000;

/// What one round of one mode measured.
struct Round {
    info_mode: Cache,
    alloc_ns: u64,
    map_ns: u64,
    touch_ns: u64,
    faults: u64,
    write_faults: u64,
    mmap_write_ns: u64,
    pwrite_ns: u64,
    mmap_bytes: u64,
    pwrite_bytes: u64,
    unmap_ns: u64,
}

/// The user memory the writes copy from, one pattern each, filled once for the whole section.
struct Sources {
    mmap: Vec<u8>,
    pwrite: Vec<u8>,
}

impl Sources {
    fn new(len: usize) -> Self {
        let mut mmap = vec![0; len];
        let mut pwrite = vec![0; len];
        pattern::fill(&mut mmap, MMAP_SEED);
        pattern::fill(&mut pwrite, PWRITE_SEED);
        Self { mmap, pwrite }
    }
}

/// One round: ALLOC with `mode`, INFO, mmap + touch, a memcpy of the whole buffer into the
/// mapping, a pwrite() of the whole buffer, the check through the mapping, munmap + FREE.
fn round(dev: &Device, kind: Kind, size: u64, mode: Cache, src: &Sources) -> Result<Round, String> {
    let buf = dev
        .alloc_with(kind, size, &AllocOptions::new().cache(mode))
        .map_err(|e| format!("ALLOC: {e}"))?;
    let alloc_ns = buf.alloc_ns();
    let info_mode = buf.info().map_err(|e| format!("INFO: {e}"))?.cache;
    let len = usize::try_from(buf.size()).map_err(|e| e.to_string())?;
    let (Some(mmap_src), Some(pwrite_src)) = (src.mmap.get(..len), src.pwrite.get(..len)) else {
        return Err(format!(
            "ALLOC reserved {len} bytes, more than the {size} asked"
        ));
    };
    let before = faults();
    let (map, map_ns) = timed(|| buf.map());
    let mut map = map.map_err(|e| format!("mmap: {e}"))?;
    let ((), touch_ns) = timed(|| touch_range(map.as_mut_ptr(), map.len()));
    let touched = faults();
    let ((), mmap_write_ns) = timed(|| copy_chunks(&mut map, mmap_src, CHUNK));
    let (written, pwrite_ns) = timed(|| pwrite_all(&buf, pwrite_src, CHUNK));
    let pwrite_bytes = written.map_err(|e| format!("pwrite: {e}"))?;
    pattern::check(&map, PWRITE_SEED)
        .map_err(|m| format!("the mapping does not show what pwrite() wrote: {m}"))?;
    let write_faults = faults() - touched;
    let (freed, unmap_ns) = timed(|| {
        drop(map);
        buf.free()
    });
    freed.map_err(|e| format!("FREE: {e}"))?;
    Ok(Round {
        info_mode,
        alloc_ns,
        map_ns,
        touch_ns,
        faults: touched - before,
        write_faults,
        mmap_write_ns,
        pwrite_ns,
        mmap_bytes: len as u64,
        pwrite_bytes,
        unmap_ns,
    })
}

/// Folds round `r` into `row`: the best time of each phase, the most faults, the sum of the
/// bytes, and the mode INFO reported when it was not the one asked.
fn fold(row: &mut CachePoint, r: &Round) {
    let first = row.rounds == 0;
    let best = |old: u64, new: u64| if first { new } else { old.min(new) };
    row.alloc_ns = best(row.alloc_ns, r.alloc_ns);
    row.map_ns = best(row.map_ns, r.map_ns);
    row.touch_ns = best(row.touch_ns, r.touch_ns);
    row.mmap_write_ns = best(row.mmap_write_ns, r.mmap_write_ns).max(1);
    row.pwrite_ns = best(row.pwrite_ns, r.pwrite_ns).max(1);
    row.unmap_ns = best(row.unmap_ns, r.unmap_ns);
    row.faults = row.faults.max(r.faults);
    row.write_faults = row.write_faults.max(r.write_faults);
    row.mmap_bytes += r.mmap_bytes;
    row.pwrite_bytes += r.pwrite_bytes;
    if first || r.info_mode.name() != row.mode {
        row.info_mode = Some(r.info_mode.name().to_owned());
    }
    row.ok = true;
    row.rounds += 1;
}

/// MiB/s of `bytes` in `ns`.
fn mib_per_s(bytes: u64, ns: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / (ns.max(1) as f64 / 1e9)
}

/// The VERSION list of modes, for the reason a mode was not measured.
fn offered_list(version: &Version) -> String {
    if version.cache_modes.is_empty() {
        "none (a module before the field, which takes write-back only)".to_owned()
    } else {
        let names: Vec<&str> = version.cache_modes.iter().map(|c| c.name()).collect();
        names.join(", ")
    }
}

/// Every mode of the ABI on a PAGES buffer of `plan.cache_pages` and a HUGE one of
/// `plan.cache_huge`, in `plan.repeats` (at most 3) rounds; modes the kernel does not offer get
/// a row and a note that say so.
pub fn run(dev: &Device, version: &Version, plan: &Plan, notes: &mut Vec<String>) -> CacheModes {
    let start = Instant::now();
    let rounds = plan.repeats.min(3);
    let offered = |mode: Cache| mode == Cache::Wb || version.cache_modes.contains(&mode);
    let missing: Vec<&str> = Cache::ALL
        .into_iter()
        .filter(|&mode| !offered(mode))
        .map(Cache::name)
        .collect();
    let why_not = format!(
        "not offered by this kernel: VERSION cache_modes lists {} (WC and UC need x86 PAT)",
        offered_list(version)
    );
    if !missing.is_empty() {
        notes.push(format!("cache modes {}: {why_not}", missing.join(", ")));
        progress(&format!("  {}: {why_not}", missing.join(", ")));
    }
    let mut rows: Vec<(Kind, Cache, CachePoint)> = [
        (Kind::Pages, plan.cache_pages),
        (Kind::Huge, plan.cache_huge),
    ]
    .into_iter()
    .flat_map(|(kind, size)| Cache::ALL.map(|mode| (kind, size, mode)))
    .map(|(kind, size, mode)| {
        let row = CachePoint {
            kind: kind.name().to_owned(),
            mode: mode.name().to_owned(),
            size,
            offered: offered(mode),
            error: (!offered(mode)).then(|| why_not.clone()),
            rounds_planned: rounds,
            faults_4k: size / 4096,
            chunk: CHUNK as u64,
            ..Default::default()
        };
        (kind, mode, row)
    })
    .collect();
    let largest = rows.iter().map(|(_, _, row)| row.size).max().unwrap_or(0);
    let sources = Sources::new(usize::try_from(largest).unwrap_or(0));
    // Round by round, every mode in turn: the guest's speed under TCG drifts from moment to
    // moment, and this way the drift falls on every mode alike.
    for _ in 0..rounds {
        for (kind, mode, row) in &mut rows {
            if row.error.is_some() {
                continue;
            }
            match round(dev, *kind, row.size, *mode, &sources) {
                Ok(r) => fold(row, &r),
                Err(e) => row.error = Some(e),
            }
        }
    }
    let points = rows
        .into_iter()
        .map(|(kind, mode, mut row)| {
            if row.ok {
                let per_round = |bytes: u64| bytes / u64::from(row.rounds);
                row.mmap_write_mib_per_s = mib_per_s(per_round(row.mmap_bytes), row.mmap_write_ns);
                row.pwrite_mib_per_s = mib_per_s(per_round(row.pwrite_bytes), row.pwrite_ns);
            }
            progress(&format!(
                "  {kind} {} {mode}: {}",
                contigmem::format_size(row.size),
                match (&row.error, row.ok) {
                    (Some(e), false) => format!("not measured: {e}"),
                    _ => format!(
                        "INFO {}, {} faults, map+touch {:.2} ms, mmap write {:.0} MiB/s, \
                         pwrite {:.0} MiB/s{}",
                        row.info_mode.as_deref().unwrap_or("-"),
                        row.faults,
                        (row.map_ns + row.touch_ns) as f64 / 1e6,
                        row.mmap_write_mib_per_s,
                        row.pwrite_mib_per_s,
                        row.error
                            .as_deref()
                            .map(|e| format!(" (then: {e})"))
                            .unwrap_or_default()
                    ),
                }
            ));
            row
        })
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    progress(&format!("  cache modes: {seconds:.1} s"));
    CacheModes {
        seconds,
        offered: version
            .cache_modes
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(info_mode: Cache, ns: u64, faults: u64) -> Round {
        Round {
            info_mode,
            alloc_ns: ns,
            map_ns: ns,
            touch_ns: ns,
            faults,
            write_faults: faults,
            mmap_write_ns: ns,
            pwrite_ns: ns,
            mmap_bytes: 4096,
            pwrite_bytes: 4096,
            unmap_ns: ns,
        }
    }

    #[test]
    fn rounds_fold_into_best_times_most_faults_and_all_bytes() {
        let mut row = CachePoint {
            mode: "wc".into(),
            ..Default::default()
        };
        fold(&mut row, &measured(Cache::Wc, 300, 1));
        fold(&mut row, &measured(Cache::Wc, 100, 8));
        fold(&mut row, &measured(Cache::Wc, 200, 2));
        assert!(row.ok);
        assert_eq!(row.rounds, 3);
        assert_eq!((row.alloc_ns, row.touch_ns, row.pwrite_ns), (100, 100, 100));
        assert_eq!((row.faults, row.write_faults), (8, 8));
        assert_eq!((row.mmap_bytes, row.pwrite_bytes), (3 * 4096, 3 * 4096));
        assert_eq!(row.info_mode.as_deref(), Some("wc"));
    }

    #[test]
    fn a_mode_info_did_not_report_is_kept() {
        let mut row = CachePoint {
            mode: "uc".into(),
            ..Default::default()
        };
        fold(&mut row, &measured(Cache::Wb, 100, 0));
        fold(&mut row, &measured(Cache::Uc, 100, 0));
        assert_eq!(row.info_mode.as_deref(), Some("wb"));
    }
}
