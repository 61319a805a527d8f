// SPDX-License-Identifier: GPL-2.0

//! Introspection: per-kind counters and the list of live buffers, shown in debugfs
//! (`/sys/kernel/debug/contigmem/`, readable by root only, so physical addresses may appear).
//!
//! `buffers` has one line per buffer whose memory is held (freed-but-mapped ones included):
//! id, owner pid, kind, size, contiguous, segments, live mappings, node of the first page, pages
//! on other nodes, physical address.
//! `stats` has one line per kind: live bytes, allocations, failed allocations.

use core::fmt;

use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
};

use crate::memory::Kind;

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

/// Counts an allocation of `kind` that succeeded or failed; the live bytes are counted by
/// [`Listed`], which exists only for buffers whose memory was allocated.
pub(crate) fn count_alloc(kind: Kind, ok: bool) {
    let s = &STATS[kind.to_abi() as usize];
    if ok {
        s.allocs.add(1, Relaxed);
    } else {
        s.failures.add(1, Relaxed);
    }
}

/// What the `buffers` file shows of one buffer: its fixed facts, and the mapping count it
/// shares with the buffer.
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) pid: i32,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) segments: u64,
    pub(crate) node: i32,
    pub(crate) off_node: u64,
    pub(crate) phys: u64,
    pub(crate) mappings: Arc<Atomic<u64>>,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module's `init` before the device is registered.
    unsafe(uninit) static REGISTRY: Mutex<KVec<Entry>> = KVec::new();
}

/// Initialises the registry.
///
/// # Safety
///
/// Must be called exactly once, before any other function of this file.
pub(crate) unsafe fn init() {
    // SAFETY: By the safety requirements this is the one call, before any use.
    unsafe { REGISTRY.init() };
}

/// A buffer's line in the registry and its bytes in its kind's live count, both removed when
/// this is dropped.
///
/// # Invariants
///
/// The registry holds an entry with id `id` while this object lives, and `size` bytes are
/// counted in `kind`'s live bytes.
pub(crate) struct Listed {
    id: u64,
    kind: Kind,
    size: u64,
}

impl Listed {
    /// Adds `entry` to the registry.
    pub(crate) fn new(entry: Entry) -> Result<Self> {
        let (id, kind, size) = (entry.id, entry.kind, entry.size);
        REGISTRY.lock().push(entry, GFP_KERNEL)?;
        STATS[kind.to_abi() as usize].live_bytes.add(size, Relaxed);
        // INVARIANT: The entry was just added and its bytes counted.
        Ok(Self { id, kind, size })
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        STATS[self.kind.to_abi() as usize]
            .live_bytes
            .fetch_sub(self.size, Relaxed);
        let mut list = REGISTRY.lock();
        // By the type invariant the entry is there; its `Arc` is dropped after the lock.
        let gone = list
            .iter()
            .position(|e| e.id == self.id)
            .and_then(|i| list.remove(i).ok());
        drop(list);
        drop(gone);
    }
}

fn write_buffers(_: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "id pid kind size contiguous segments mappings node off_node phys"
    )?;
    for e in REGISTRY.lock().iter() {
        writeln!(
            f,
            "{} {} {} {} {} {} {} {} {} {:#x}",
            e.id,
            e.pid,
            e.kind.name(),
            e.size,
            u8::from(e.kind.contiguous()),
            e.segments,
            e.mappings.load(Relaxed),
            e.node,
            e.off_node,
            e.phys
        )?;
    }
    Ok(())
}

fn write_stats(_: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "kind live_bytes allocs failures")?;
    for kind in Kind::ALL {
        let s = &STATS[kind.to_abi() as usize];
        writeln!(
            f,
            "{} {} {} {}",
            kind.name(),
            s.live_bytes.load(Relaxed),
            s.allocs.load(Relaxed),
            s.failures.load(Relaxed)
        )?;
    }
    Ok(())
}

/// The debugfs directory and its files; they go away when this is dropped, and so does the
/// registry's storage (a static is never dropped: without this, each module unload would leak
/// it).
#[pin_data(PinnedDrop)]
pub(crate) struct Debugfs {
    _dir: Dir,
    #[pin]
    _buffers: File<()>,
    #[pin]
    _stats: File<()>,
}

#[pinned_drop]
impl PinnedDrop for Debugfs {
    fn drop(self: Pin<&mut Self>) {
        // The module is going: no file is open, so no buffer is left and the list is empty.
        let storage = core::mem::take(&mut *REGISTRY.lock());
        drop(storage);
    }
}

impl Debugfs {
    pub(crate) fn new() -> impl PinInit<Self> {
        let dir = Dir::new(c"contigmem");
        pin_init!(Self {
            _buffers <- dir.read_callback_file(c"buffers", (), &write_buffers),
            _stats <- dir.read_callback_file(c"stats", (), &write_stats),
            _dir: dir,
        })
    }
}
