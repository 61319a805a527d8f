// SPDX-License-Identifier: GPL-2.0

//! Introspection: per-kind counters and the list of live buffers, shown in debugfs
//! (`/sys/kernel/debug/contigmem/`, readable by root only, so physical addresses may appear).
//!
//! `buffers` has one line per buffer whose memory is held (freed-but-mapped ones included):
//! id, owner pid (in the initial pid namespace), kind, size, contiguous, segments, live
//! mappings, node of the first page, pages on other nodes, physical address. It streams: a read
//! copies a few rows at a time out of the registry (see `sys::debugfs`).
//! `stats` has one line per kind: live bytes, allocations, failed allocations.

use kernel::{
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

use crate::{
    memory::Kind,
    registry::Buffers,
    sys::debugfs::{
        Dir,
        File,
        Table, //
    },
};

/// Counters of one kind.
struct KindStats {
    live_bytes: Atomic<u64>,
    allocs: Atomic<u64>,
    failures: Atomic<u64>,
}

impl KindStats {
    const fn new() -> Self {
        Self {
            live_bytes: Atomic::new(0),
            allocs: Atomic::new(0),
            failures: Atomic::new(0),
        }
    }
}

static STATS: [KindStats; Kind::ALL.len()] = [
    KindStats::new(),
    KindStats::new(),
    KindStats::new(),
    KindStats::new(),
    KindStats::new(),
];

/// Counts an allocation of `kind` that succeeded or failed.
pub(crate) fn count_alloc(kind: Kind, ok: bool) {
    let s = &STATS[kind.to_abi() as usize];
    if ok {
        s.allocs.add(1, Relaxed);
    } else {
        s.failures.add(1, Relaxed);
    }
}

/// `size` bytes of `kind` held, counted in the kind's live bytes until this is dropped.
///
/// # Invariants
///
/// `size` bytes are counted in `kind`'s live bytes while this object lives.
pub(crate) struct Live {
    kind: Kind,
    size: u64,
}

impl Live {
    pub(crate) fn new(kind: Kind, size: u64) -> Self {
        STATS[kind.to_abi() as usize].live_bytes.add(size, Relaxed);
        // INVARIANT: The bytes were just counted.
        Self { kind, size }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // By the type invariant the bytes were counted.
        STATS[self.kind.to_abi() as usize]
            .live_bytes
            .fetch_sub(self.size, Relaxed);
    }
}

/// A row of `stats`: one kind's counters.
#[derive(Clone, Copy, Zeroable)]
pub(crate) struct StatsRow {
    kind: u32,
    live_bytes: u64,
    allocs: u64,
    failures: u64,
}

/// Debugfs `stats`: one line per kind.
struct Stats;

impl Table for Stats {
    type Row = StatsRow;
    const HEADER: &'static str = "kind live_bytes allocs failures";

    fn fill(from: u64, rows: &mut [StatsRow]) -> usize {
        let mut n = 0;
        for (kind, row) in Kind::ALL
            .iter()
            .filter(|k| u64::from(k.to_abi()) + 1 >= from)
            .zip(rows.iter_mut())
        {
            let s = &STATS[kind.to_abi() as usize];
            *row = StatsRow {
                kind: kind.to_abi(),
                live_bytes: s.live_bytes.load(Relaxed),
                allocs: s.allocs.load(Relaxed),
                failures: s.failures.load(Relaxed),
            };
            n += 1;
        }
        n
    }

    fn key(row: &StatsRow) -> u64 {
        u64::from(row.kind) + 1
    }

    fn write(r: &StatsRow, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = Kind::from_abi(r.kind).map_err(|_| core::fmt::Error)?;
        write!(
            f,
            "{} {} {} {}",
            kind.name(),
            r.live_bytes,
            r.allocs,
            r.failures
        )
    }
}

/// The debugfs directory and its files. The directory is declared first, so it (and the files
/// in it) is removed before the files' operations are freed.
#[pin_data]
pub(crate) struct Debugfs {
    _dir: Dir,
    #[pin]
    _buffers: File<Buffers>,
    #[pin]
    _stats: File<Stats>,
}

impl Debugfs {
    pub(crate) fn new(module: &'static ThisModule) -> impl PinInit<Self> {
        let dir = Dir::new(c"contigmem");
        pin_init!(Self {
            _buffers <- File::new(&dir, c"buffers", module),
            _stats <- File::new(&dir, c"stats", module),
            _dir: dir,
        })
    }
}
