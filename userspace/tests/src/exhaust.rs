// SPDX-License-Identifier: GPL-2.0

//! Exhaustion: allocating until the memory runs out ends in ENOMEM, not in an OOM kill, and the
//! system is usable again once the buffers are freed. Needs caps above the memory
//! (`insmod contigmem.ko max_total_mb=65536 max_file_mb=65536`), else it is skipped.

use std::fs;

use contigmem::{Errno, Kind};

use crate::tap::{skip, Context, Outcome, Tap};
use crate::util::{live, open, version, M};
use crate::{check, check_eq};

pub fn run(tap: &mut Tap) {
    for kind in Kind::ALL {
        tap.test_root(
            &format!("exhaust {kind}: ENOMEM at the end, no OOM kill, usable after freeing"),
            || exhaust(kind),
        );
    }
}

/// Lines of the kernel log about the OOM killer.
fn oom_kills() -> usize {
    std::process::Command::new("dmesg")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("Out of memory") || l.contains("oom-kill"))
                .count()
        })
        .unwrap_or(0)
}

fn exhaust(kind: Kind) -> Outcome {
    let dev = open()?;
    let v = version(&dev)?;
    let total = fs::read_to_string("/proc/meminfo")
        .ctx("/proc/meminfo")?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or("no MemTotal in /proc/meminfo")?;
    if v.max_total_bytes < total {
        return Err(skip(
            "the byte cap is below the memory: load with max_total_mb=65536 max_file_mb=65536",
        ));
    }
    let chunk = v.max_size(kind).ok_or("kind not supported")?.min(64 * M);
    let before = live(&dev)?;
    let kills = oom_kills();
    let mut held = Vec::new();
    let limit = total / chunk + 64;
    let end = loop {
        match dev.alloc(kind, chunk) {
            Ok(buf) => held.push(buf),
            Err(e) => break e,
        }
        check!(
            (held.len() as u64) <= limit,
            "{} buffers of {chunk} bytes exceed the memory ({total} bytes)",
            held.len()
        );
    };
    let count = held.len();
    drop(held);
    check_eq!(
        end.errno(),
        Errno::NOMEM,
        format!("the error after {count} buffers of {chunk} bytes")
    );
    check_eq!(live(&dev)?, before, "live (bytes, buffers) after freeing");
    check_eq!(oom_kills(), kills, "OOM-killer lines in the kernel log");
    dev.alloc(kind, chunk)
        .ctx("ALLOC after freeing everything")?;
    println!(
        "# {kind}: {count} buffers of {} MiB before ENOMEM",
        chunk / M
    );
    Ok(())
}
