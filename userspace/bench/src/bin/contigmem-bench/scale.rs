// SPDX-License-Identifier: GPL-2.0

//! Many buffers: the cost of an ALLOC+FREE pair as the number of live buffers grows (1,000 to
//! 1,000,000 4 KiB KMALLOC buffers in one growing pass, spread over several open files), the
//! time close() takes to free a file holding many buffers, and the time to read debugfs
//! `buffers` whole and to get its first 4 KiB at every point.
//!
//! The buffers are leaked (`Buffer::leak`) as they are allocated: nothing needs their handles,
//! and closing their file frees them in the kernel, without one FREE each. That is what the
//! close() measurement times, and how the section gives its memory back at the end.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use contigmem::debugfs::BUFFERS_PATH;
use contigmem::{Device, Kind};
use contigmem_bench::report::format::count;
use contigmem_bench::schema::{CloseTime, DebugfsRead, Scale, ScalePoint};

use crate::util::{progress, timed};
use crate::Plan;

/// The bytes of every buffer: the smallest KMALLOC buffer.
const SIZE: u64 = 4096;
/// The files the population is spread over, in turn.
const FILES: usize = 8;
/// Timed rounds of ALLOC+FREE pairs at each point.
const ROUNDS: u32 = 9;
/// A progress line every this many buffers, so that a long fill shows life.
const PROGRESS_EVERY: u64 = 100_000;
/// The read() size of the full debugfs read.
const READ_CHUNK: usize = 64 << 10;

/// How long the section may spend allocating, over all its fills together.
struct Budget {
    end: Instant,
    seconds: u64,
}

impl Budget {
    fn new(seconds: u64) -> Self {
        Self {
            end: Instant::now() + Duration::from_secs(seconds),
            seconds,
        }
    }

    fn check(&self) -> Result<(), String> {
        if Instant::now() > self.end {
            return Err(format!(
                "the section's time budget of {} s for allocating ran out",
                self.seconds
            ));
        }
        Ok(())
    }
}

/// Allocates buffers in `files`, taken in turn, and leaks them until `held` reaches `target`.
fn fill(
    files: &[Device],
    held: &mut u64,
    target: u64,
    budget: &Budget,
    what: &str,
) -> Result<(), String> {
    while *held < target {
        let dev = &files[(*held % files.len() as u64) as usize];
        dev.alloc(Kind::Kmalloc, SIZE)
            .map_err(|e| e.to_string())?
            .leak();
        *held += 1;
        if *held % PROGRESS_EVERY == 0 {
            progress(&format!("  {what}: {} buffers", count(*held)));
        }
        if *held % 1024 == 0 {
            budget.check()?;
        }
    }
    Ok(())
}

/// The live buffers of the whole module, from VERSION.
fn live_buffers(dev: &Device) -> Result<u64, String> {
    dev.version()
        .map(|v| v.live_buffers)
        .map_err(|e| format!("VERSION: {e}"))
}

/// The section's open files and the buffers they hold.
struct Population {
    files: Vec<Device>,
    live: u64,
    /// Seconds spent allocating them.
    grow_s: f64,
}

impl Population {
    fn open() -> Result<Self, String> {
        let files = (0..FILES)
            .map(|_| Device::open().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            files,
            live: 0,
            grow_s: 0.0,
        })
    }

    /// Grows the population to `target` buffers.
    fn grow(&mut self, target: u64, budget: &Budget) -> Result<(), String> {
        let start = Instant::now();
        let grown = fill(&self.files, &mut self.live, target, budget, "growing");
        self.grow_s += start.elapsed().as_secs_f64();
        grown.map_err(|e| format!("growing stopped at {} live buffers: {e}", self.live))
    }

    /// [`ROUNDS`] rounds, each of `pairs` ALLOC+FREE pairs (files in turn) followed by the
    /// control: as many pairs of VERSION ioctls on the same files (the same system calls,
    /// touching no buffer). Returns the medians of the pair's cost, of the control's and of
    /// their ratio within a round, in nanoseconds a pair.
    ///
    /// Under TCG the guest runs faster or slower by up to 1.7x from one moment to the next,
    /// for reasons of the host's (the control moves with it); the ratio within one round, a
    /// fraction of a second, is what the buffer bookkeeping itself costs against the machine
    /// of the moment.
    fn measure(&self, pairs: u64) -> Result<(f64, f64, f64), String> {
        let per_pair = |ns: u64| ns as f64 / pairs.max(1) as f64;
        let (mut pair, mut control, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (result, ns) = timed(|| {
                (0..pairs).try_for_each(|i| {
                    let dev = &self.files[(i % FILES as u64) as usize];
                    dev.alloc(Kind::Kmalloc, SIZE)?.free()
                })
            });
            result.map_err(|e| format!("ALLOC+FREE at {} live buffers: {e}", self.live))?;
            let (result, control_ns) = timed(|| {
                (0..pairs).try_for_each(|i| {
                    let dev = &self.files[(i % FILES as u64) as usize];
                    dev.version()?;
                    dev.version().map(|_| ())
                })
            });
            result.map_err(|e| format!("VERSION at {} live buffers: {e}", self.live))?;
            pair.push(per_pair(ns));
            control.push(per_pair(control_ns));
            ratio.push(ns as f64 / (control_ns as f64).max(1.0));
        }
        Ok((
            median_f(&mut pair),
            median_f(&mut control),
            median_f(&mut ratio),
        ))
    }
}

/// The median of `v` (the upper one of an even count); 0 for none.
fn median_f(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// open() and the first read(4096) of debugfs `buffers`, in microseconds.
fn first_read_us() -> Result<f64, String> {
    let mut chunk = [0u8; 4096];
    let start = Instant::now();
    let mut file = File::open(BUFFERS_PATH).map_err(|e| format!("{BUFFERS_PATH}: {e}"))?;
    let n = file
        .read(&mut chunk)
        .map_err(|e| format!("read of {BUFFERS_PATH}: {e}"))?;
    let us = start.elapsed().as_secs_f64() * 1e6;
    if n == 0 {
        return Err(format!("{BUFFERS_PATH} is empty: expected its header"));
    }
    Ok(us)
}

/// Fills one more file with `out.buffers` buffers and times its close().
fn fill_and_close(probe: &Device, out: &mut CloseTime, budget: &Budget) -> Result<(), String> {
    let file = Device::open().map_err(|e| e.to_string())?;
    let mut held = 0;
    let start = Instant::now();
    let filled = fill(
        std::slice::from_ref(&file),
        &mut held,
        out.buffers,
        budget,
        "filling one file to close",
    );
    out.fill_s = start.elapsed().as_secs_f64();
    // On failure the file is dropped here, untimed, and frees what it got.
    filled.map_err(|e| format!("filling the file stopped at {held} buffers: {e}"))?;
    let before = live_buffers(probe)?;
    let ((), ns) = timed(move || drop(file));
    out.close_s = ns as f64 / 1e9;
    out.freed = before.saturating_sub(live_buffers(probe)?);
    Ok(())
}

/// Reads debugfs `buffers` whole with [`READ_CHUNK`]-byte reads.
fn read_whole(probe: &Device, out: &mut DebugfsRead) -> Result<(), String> {
    out.live_buffers = live_buffers(probe)?;
    let mut chunk = vec![0u8; READ_CHUNK];
    let start = Instant::now();
    let mut file = File::open(BUFFERS_PATH).map_err(|e| format!("{BUFFERS_PATH}: {e}"))?;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read of {BUFFERS_PATH} at byte {}: {e}", out.bytes)),
        };
        out.reads += 1;
        out.bytes += n as u64;
        out.lines += chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(())
}

/// The measurements at a point the population reached.
fn point(p: &Population, plan: &Plan, debugfs_error: &mut Option<String>) -> ScalePoint {
    let mut point = ScalePoint {
        live: p.live,
        files: FILES as u32,
        grow_s: p.grow_s,
        pairs: plan.scale_pairs,
        rounds: ROUNDS,
        ..Default::default()
    };
    point.debugfs_first_read_us = match first_read_us() {
        Ok(us) => Some(us),
        Err(e) => {
            debugfs_error.get_or_insert(e);
            None
        }
    };
    match p.measure(plan.scale_pairs) {
        Ok((pair, control, ratio)) => {
            point.ok = true;
            point.pair_ns = pair;
            point.control_ns = Some(control);
            point.pair_vs_control = Some(ratio);
        }
        Err(e) => point.reason = Some(e),
    }
    progress(&format!(
        "  {} live buffers in {FILES} files: ALLOC+FREE {:.0} ns a pair (VERSION twice {}, \
         pair/control {}), grown in {:.1} s, debugfs first read {}{}",
        count(p.live),
        point.pair_ns,
        point
            .control_ns
            .map_or_else(|| "-".to_string(), |ns| format!("{ns:.0} ns")),
        point
            .pair_vs_control
            .map_or_else(|| "-".to_string(), |r| format!("{r:.2}")),
        point.grow_s,
        point
            .debugfs_first_read_us
            .map_or_else(|| "-".to_string(), |us| format!("{us:.0} µs")),
        why(&point.reason)
    ));
    point
}

/// close() of an extra file of `buffers` buffers, with `other_live` held elsewhere.
fn close(probe: &Device, buffers: u64, other_live: u64, budget: &Budget) -> CloseTime {
    let mut out = CloseTime {
        buffers,
        other_live,
        ..Default::default()
    };
    match fill_and_close(probe, &mut out, budget) {
        Ok(()) => out.ok = true,
        Err(e) => out.reason = Some(e),
    }
    progress(&format!(
        "  close() of a file holding {} buffers: {:.3} s, {} freed{}",
        count(buffers),
        out.close_s,
        count(out.freed),
        why(&out.reason)
    ));
    out
}

/// debugfs `buffers` read whole.
fn full_read(probe: &Device) -> DebugfsRead {
    let mut out = DebugfsRead::default();
    match read_whole(probe, &mut out) {
        Ok(()) => out.ok = true,
        Err(e) => out.reason = Some(e),
    }
    progress(&format!(
        "  debugfs buffers read whole: {:.3} s, {} bytes, {} lines ({} live buffers){}",
        out.seconds,
        count(out.bytes),
        count(out.lines),
        count(out.live_buffers),
        why(&out.reason)
    ));
    out
}

/// " (reason)" for a progress line, or nothing.
fn why(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default()
}

pub fn run(dev: &Device, plan: &Plan, notes: &mut Vec<String>) -> Scale {
    // On one CPU throughout: under TCG the two vCPUs run at different speeds from moment to
    // moment (a pair cost up to 1.7x more on one than on the other in the same boot), and the
    // scheduler moving the process between them would make the points disagree for that alone.
    if let Err(e) = contigmem::numa::pin_to_cpu(Some(0)) {
        notes.push(format!("many buffers: could not pin to CPU 0: {e}"));
    }
    let budget = Budget::new(plan.scale_budget_s);
    let mut scale = Scale {
        buffer_size: SIZE,
        ..Default::default()
    };
    // Why the population stopped short of the current point, once it has.
    let (mut population, mut stopped) = match Population::open() {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(format!("opening the files failed: {e}"))),
    };
    let mut debugfs_error = None;
    for &live in plan.scale_points {
        if let (Some(p), None) = (population.as_mut(), &stopped) {
            stopped = p.grow(live, &budget).err();
        }
        match (population.as_ref(), &stopped) {
            (Some(p), None) => {
                scale.points.push(point(p, plan, &mut debugfs_error));
                if live == plan.scale_close {
                    scale.close = Some(close(dev, live, p.live, &budget));
                }
                if live == plan.scale_debugfs {
                    scale.debugfs_full = Some(full_read(dev));
                }
            }
            (_, why) => {
                let why = format!("not reached: {}", why.as_deref().unwrap_or("no files"));
                progress(&format!("  {} live buffers: {why}", count(live)));
                if live == plan.scale_close {
                    scale.close = Some(CloseTime {
                        buffers: live,
                        reason: Some(why.clone()),
                        ..Default::default()
                    });
                }
                if live == plan.scale_debugfs {
                    scale.debugfs_full = Some(DebugfsRead {
                        reason: Some(why.clone()),
                        ..Default::default()
                    });
                }
                scale.points.push(ScalePoint {
                    live,
                    files: FILES as u32,
                    reason: Some(why),
                    ..Default::default()
                });
            }
        }
    }
    scale.ratio_last_first = match (scale.points.first(), scale.points.last()) {
        (Some(first), Some(last)) if scale.points.len() > 1 && first.ok && last.ok => {
            (first.pair_ns > 0.0).then(|| last.pair_ns / first.pair_ns)
        }
        _ => None,
    };
    scale.controlled_ratio_last_first = match (scale.points.first(), scale.points.last()) {
        (Some(first), Some(last)) if scale.points.len() > 1 => {
            match (first.pair_vs_control, last.pair_vs_control) {
                (Some(f), Some(l)) if f > 0.0 => Some(l / f),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(e) = debugfs_error {
        notes.push(format!(
            "many buffers: debugfs `buffers` could not be read: {e}"
        ));
    }
    let _ = contigmem::numa::pin_to_cpu(None);
    if let Some(p) = population {
        let held = p.live;
        let ((), ns) = timed(move || drop(p));
        progress(&format!(
            "  closed the {FILES} files, freeing {} buffers, in {:.1} s",
            count(held),
            ns as f64 / 1e9
        ));
    }
    scale
}
