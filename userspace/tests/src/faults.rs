// SPDX-License-Identifier: GPL-2.0

//! Fault injection: with failslab and fail_page_alloc failing this task's allocations, every
//! ALLOC either succeeds or fails with ENOMEM, and nothing is left behind (the live counters
//! return to where they were; kmemleak, scanned by the harness at the end, finds no leak).

use std::fs;

use contigmem::{Errno, Kind};

use crate::tap::{skip, Context, Fail, Outcome, Tap};
use crate::util::{live, open, K, M};
use crate::{check, check_eq};

const FAILSLAB: &str = "/sys/kernel/debug/failslab";
const FAIL_PAGE_ALLOC: &str = "/sys/kernel/debug/fail_page_alloc";

pub fn run(tap: &mut Tap) {
    tap.test_root(
        "fault injection: failing each allocation of ALLOC in turn (fail-nth) gives ENOMEM, nothing leaks",
        every_allocation,
    );
    for probability in [10, 50, 100] {
        tap.test_root(
            &format!(
                "fault injection at {probability}%: ALLOC gives ENOMEM or succeeds, nothing leaks"
            ),
            || random(probability),
        );
    }
}

fn write(path: &str, value: &str) -> Result<(), Fail> {
    fs::write(path, value).ctx(format!("writing {value:?} to {path}"))
}

/// Makes both injectors consider sleeping and order-0 allocations, fail `probability`% of the
/// allocations of tasks that asked for it, print nothing (a stack dump per failure would look
/// like a kernel report to the harness), and fail the N-th allocation of a task that wrote N to
/// its `fail-nth`.
fn configure(probability: u32) -> Result<(), Fail> {
    for dir in [FAILSLAB, FAIL_PAGE_ALLOC] {
        if fs::metadata(dir).is_err() {
            return Err(skip(format!(
                "{dir} missing: the kernel lacks fault injection"
            )));
        }
        write(&format!("{dir}/probability"), &probability.to_string())?;
        write(&format!("{dir}/interval"), "1")?;
        write(&format!("{dir}/times"), "-1")?;
        write(&format!("{dir}/space"), "0")?;
        write(&format!("{dir}/verbose"), "0")?;
        write(&format!("{dir}/task-filter"), "Y")?;
        write(&format!("{dir}/ignore-gfp-wait"), "N")?;
    }
    write(&format!("{FAIL_PAGE_ALLOC}/ignore-gfp-highmem"), "N")?;
    write(&format!("{FAIL_PAGE_ALLOC}/min-order"), "0")?;
    Ok(())
}

fn disable() {
    for dir in [FAILSLAB, FAIL_PAGE_ALLOC] {
        let _ = fs::write(format!("{dir}/probability"), "0");
    }
}

/// Sizes that exercise each back-end without being slow.
fn size_of(kind: Kind) -> u64 {
    match kind {
        Kind::Vmalloc | Kind::Huge => 4 * M,
        _ => 64 * K,
    }
}

/// Fails the first, second, third... allocation of one ALLOC of each kind until an ALLOC runs
/// through without reaching the injected failure: every failure point gives ENOMEM and leaves
/// the counters where they were.
fn every_allocation() -> Outcome {
    let dev = open()?;
    let before = live(&dev)?;
    configure(0)?;
    // `/proc/thread-self/fail-nth` cannot seek, and opening it allocates (which would be
    // counted and failed): each round opens a file to write with and one to read with before
    // arming the count.
    const FAIL_NTH: &str = "/proc/thread-self/fail-nth";
    let arm = |n: u32| -> Result<(fs::File, fs::File), Fail> {
        use std::io::Write;
        let mut w = fs::OpenOptions::new()
            .write(true)
            .open(FAIL_NTH)
            .ctx(FAIL_NTH)?;
        let r = fs::File::open(FAIL_NTH).ctx(FAIL_NTH)?;
        w.write_all(n.to_string().as_bytes())
            .ctx("writing fail-nth")?;
        Ok((w, r))
    };
    // Returns what is left of the count (0: the failure was injected) and disarms it.
    let disarm = |(mut w, mut r): (fs::File, fs::File)| -> Result<u32, Fail> {
        use std::io::{Read, Write};
        let mut left = String::new();
        r.read_to_string(&mut left).ctx("reading fail-nth")?;
        w.write_all(b"0").ctx("writing fail-nth")?;
        left.trim()
            .parse()
            .map_err(|_| format!("fail-nth reads {left:?}").into())
    };
    let result = (|| -> Result<u32, Fail> {
        let mut points = 0;
        for kind in Kind::ALL {
            let size = size_of(kind);
            for nth in 1..=10_000u32 {
                let armed = arm(nth)?;
                let result = dev.alloc(kind, size);
                let injected = disarm(armed)? == 0;
                match result {
                    Ok(buf) => {
                        buf.free().ctx("FREE")?;
                        if !injected {
                            break;
                        }
                    }
                    Err(e) if e.errno() == Errno::NOMEM => points += 1,
                    Err(e) => {
                        return Err(format!(
                            "ALLOC {kind} {size} with allocation {nth} failed: expected ENOMEM, saw {e}"
                        )
                        .into())
                    }
                }
                check_eq!(
                    live(&dev)?,
                    before,
                    format!(
                        "live (bytes, buffers) after ALLOC {kind} with allocation {nth} failed"
                    )
                );
            }
        }
        Ok(points)
    })();
    disable();
    let points = result?;
    check!(
        points >= Kind::ALL.len() as u32,
        "only {points} failure points found"
    );
    println!("# {points} allocation failures injected, each gave ENOMEM");
    Ok(())
}

/// ALLOCs each kind 20 times with `probability`% of the allocations failing.
fn random(probability: u32) -> Outcome {
    let dev = open()?;
    let before = live(&dev)?;
    configure(probability)?;
    let result = alloc_under_faults(&dev, probability);
    disable();
    let (ok, enomem) = result?;
    check_eq!(
        live(&dev)?,
        before,
        "live (bytes, buffers) after every buffer was freed"
    );
    if probability == 100 {
        check_eq!(
            ok,
            0,
            "allocations that succeeded with every allocation failing"
        );
    }
    check!(
        enomem > 0,
        "no allocation failed at {probability}% ({ok} succeeded)"
    );
    println!("# {probability}%: {ok} succeeded, {enomem} failed with ENOMEM");
    Ok(())
}

/// One ALLOC in a thread of its own that asked for failures: the flag cannot be cleared (the
/// write to clear it would be failed too), so it goes with the thread.
fn alloc_failing(
    dev: &contigmem::Device,
    kind: Kind,
    size: u64,
) -> Result<Result<contigmem::Buffer<'_>, contigmem::Error>, Fail> {
    std::thread::scope(|s| {
        s.spawn(|| -> Result<_, Fail> {
            write("/proc/thread-self/make-it-fail", "1")?;
            Ok(dev.alloc(kind, size))
        })
        .join()
        .map_err(|_| Fail::from("the allocating thread panicked"))?
    })
}

/// ALLOCs each kind 20 times with faults injected; returns (succeeded, ENOMEM).
fn alloc_under_faults(dev: &contigmem::Device, probability: u32) -> Result<(u32, u32), Fail> {
    let (mut ok, mut enomem) = (0, 0);
    let mut held = Vec::with_capacity(Kind::ALL.len() * 20);
    for kind in Kind::ALL {
        let size = size_of(kind);
        for _ in 0..20 {
            match alloc_failing(dev, kind, size)? {
                Ok(buf) => {
                    ok += 1;
                    held.push(buf);
                }
                Err(e) if e.errno() == Errno::NOMEM => enomem += 1,
                Err(e) => {
                    return Err(format!(
                        "ALLOC {kind} {size} at {probability}%: expected success or ENOMEM, saw {e}"
                    )
                    .into())
                }
            }
        }
    }
    for buf in held {
        buf.free().ctx("FREE")?;
    }
    Ok((ok, enomem))
}
