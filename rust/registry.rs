// SPDX-License-Identifier: GPL-2.0

//! The registry: every buffer whose id is held, from its ALLOC until it is gone (freed and
//! unmapped), for debugfs `buffers` and as the set of held ids.
//!
//! A red-black tree under one mutex, keyed by the buffer's id (a 32-bit process's ids by a key
//! of their file's, above every 64-bit id: see `ids`). A buffer's row is entered when its id is
//! taken, before its memory is allocated, in the same tree search that finds the free id; the
//! facts the allocation brings (placement) are filled in afterwards through a shared `Facts`,
//! without a second search, and debugfs shows the row once they are there. Entering and
//! leaving cost one search each, O(log n) in the buffers, and no allocation grows with their
//! number (one tree node per buffer, allocated before the lock is taken).

use kernel::{
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        Arc,
    },
};

use crate::{
    ids::{
        self,
        FileIds,
        Range, //
    },
    memory::{
        Kind,
        Placement, //
    },
    sys::{
        debugfs::Table,
        PAGE_SHIFT, //
    },
};

/// What a buffer learns once its memory is allocated, and its mapping count: shared by the
/// buffer and its row, so that neither needs the registry's lock to change them.
pub(crate) struct Facts {
    /// Set (with release ordering) once the fields below are.
    ready: Atomic<bool>,
    segments: Atomic<u64>,
    node: Atomic<i32>,
    off_node: Atomic<u64>,
    phys: Atomic<u64>,
    /// Live VMAs mapping the buffer.
    pub(crate) mappings: Atomic<u64>,
    /// Live dma-bufs exported from the buffer.
    pub(crate) dmabufs: Atomic<u64>,
}

impl Facts {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                ready: Atomic::new(false),
                segments: Atomic::new(0),
                node: Atomic::new(0),
                off_node: Atomic::new(0),
                phys: Atomic::new(0),
                mappings: Atomic::new(0),
                dmabufs: Atomic::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    /// Fills in where the memory lies; the row is shown from now on.
    pub(crate) fn publish(&self, placement: &Placement) {
        self.segments.store(placement.segments, Relaxed);
        self.node.store(placement.node, Relaxed);
        self.off_node.store(placement.off_node, Relaxed);
        self.phys.store(placement.pfn << PAGE_SHIFT, Relaxed);
        self.ready.store(true, Release);
    }
}

/// What the registry keeps of one buffer: its fixed facts, and those it shares with the buffer.
pub(crate) struct Entry {
    /// The buffer's id in its file.
    pub(crate) id: u64,
    /// The serial number of the file that allocated it.
    pub(crate) file: u64,
    /// The allocating process, in the initial pid namespace (root reading debugfs uses those).
    pub(crate) pid: i32,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) facts: Arc<Facts>,
}

/// The buffers, by key, and the search state of the machine's id range.
struct Registry {
    /// `None` until first used (a tree cannot be built in a constant); empty is the same. An
    /// empty tree owns no memory, so the static leaks nothing when the module goes.
    tree: Option<RBTree<u64, Entry>>,
    native: Range,
}

impl Registry {
    fn tree(&mut self) -> &mut RBTree<u64, Entry> {
        self.tree.get_or_insert_with(RBTree::new)
    }
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module's `init` before the device is registered.
    unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry {
        tree: None,
        native: ids::native(),
    };
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

/// A buffer's row in the registry, and so its id: both go when this is dropped.
///
/// # Invariants
///
/// The registry holds a row under `key` while this object lives, entered by it.
pub(crate) struct Listed {
    key: u64,
    id: u64,
}

impl Listed {
    /// Takes a free id, from `file`'s 32-bit range when `compat` and from the machine's
    /// otherwise, and enters the row `entry(id)` under it. `ENOSPC` when every id of the range
    /// is held.
    pub(crate) fn take(
        file: &FileIds,
        compat: bool,
        entry: impl FnOnce(u64) -> Entry,
    ) -> Result<Self> {
        // Allocated before a lock is taken: the allocation may sleep in reclaim. On ENOSPC it
        // is freed under the lock, which `kfree` does not mind.
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        if compat {
            // The file's range lock, then the registry's (the one place both are held).
            let mut range = file.compat.lock();
            let key = range.claim(REGISTRY.lock().tree(), node, |key| entry(file.id(key)))?;
            // INVARIANT: The row was just entered under `key`.
            Ok(Self {
                key,
                id: file.id(key),
            })
        } else {
            let mut reg = REGISTRY.lock();
            let Registry { tree, native } = &mut *reg;
            let key = native.claim(tree.get_or_insert_with(RBTree::new), node, entry)?;
            // INVARIANT: The row was just entered under `key`.
            Ok(Self { key, id: key })
        }
    }

    /// The buffer's id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        // By the type invariant the row is there; it is freed after the lock.
        let gone = REGISTRY.lock().tree().remove_node(&self.key);
        drop(gone);
    }
}

/// A row of debugfs `buffers`: an entry, copied with its shared facts of the moment.
#[derive(Clone, Copy, Zeroable)]
pub(crate) struct Row {
    key: u64,
    id: u64,
    file: u64,
    pid: i32,
    kind: u32,
    size: u64,
    segments: u64,
    mappings: u64,
    node: i32,
    off_node: u64,
    phys: u64,
}

/// Debugfs `buffers`: one line per buffer whose memory is held: 64-bit processes' by id, then
/// 32-bit processes', by file and id.
pub(crate) struct Buffers;

impl Table for Buffers {
    type Row = Row;
    const HEADER: &'static str =
        "id pid kind size contiguous segments mappings node off_node phys file";

    fn fill(from: u64, rows: &mut [Row]) -> usize {
        let mut reg = REGISTRY.lock();
        let mut cursor = reg.tree().cursor_lower_bound_mut(&from);
        let mut n = 0;
        while n < rows.len() {
            let Some(c) = cursor else { break };
            let (&key, e) = c.current();
            let facts = &e.facts;
            // A buffer still being allocated holds its id but has no memory to show yet.
            if facts.ready.load(Acquire) {
                rows[n] = Row {
                    key,
                    id: e.id,
                    file: e.file,
                    pid: e.pid,
                    kind: e.kind.to_abi(),
                    size: e.size,
                    segments: facts.segments.load(Relaxed),
                    mappings: facts.mappings.load(Relaxed),
                    node: facts.node.load(Relaxed),
                    off_node: facts.off_node.load(Relaxed),
                    phys: facts.phys.load(Relaxed),
                };
                n += 1;
            }
            cursor = c.move_next();
        }
        n
    }

    fn key(row: &Row) -> u64 {
        row.key
    }

    fn write(r: &Row, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = Kind::from_abi(r.kind).map_err(|_| core::fmt::Error)?;
        write!(
            f,
            "{} {} {} {} {} {} {} {} {} {:#x} {}",
            r.id,
            r.pid,
            kind.name(),
            r.size,
            u8::from(kind.contiguous()),
            r.segments,
            r.mappings,
            r.node,
            r.off_node,
            r.phys,
            r.file
        )
    }
}

#[kunit_tests(contigmem_registry)]
mod tests {
    use super::*;

    fn entry(id: u64) -> Result<Entry> {
        Ok(Entry {
            id,
            file: 0,
            pid: 0,
            kind: Kind::Kmalloc,
            size: 0,
            facts: Facts::new()?,
        })
    }

    /// Takes an id of `file` (its 32-bit range when `compat`): the id, or the error.
    fn take(file: &FileIds, compat: bool) -> Result<Listed> {
        let e = entry(0)?;
        Listed::take(file, compat, move |id| Entry { id, ..e })
    }

    #[test]
    fn files_have_their_own_32_bit_ids() {
        let (a, b) = (FileIds::new(1 << 40), FileIds::new((1 << 40) + 1));
        assert!(a.is_ok() && b.is_ok());
        let (Ok(a), Ok(b)) = (a, b) else {
            return;
        };
        let native = take(&a, false).map(|h| h.id());
        let range = ids::COMPAT_IDS..crate::mapping::MAX_ID;
        assert!(matches!(native, Ok(id) if range.contains(&id)));
        assert_eq!(take(&a, true).map(|h| h.id()), Ok(1));
        // The 32-bit range is the file's: 255 held in `a` leave `b`'s untouched.
        let mut kept = KVec::new();
        while let Ok(h) = take(&a, true) {
            if kept.push(h, GFP_KERNEL).is_err() {
                break;
            }
        }
        assert_eq!(kept.len() as u64, ids::COMPAT_IDS - 1);
        assert_eq!(take(&a, true).map(|h| h.id()), Err(ENOSPC));
        assert_eq!(take(&b, true).map(|h| h.id()), Ok(1));
        drop(kept);
        // Given back, they come again (after the wrap).
        assert!(take(&a, true).is_ok());
    }

    #[test]
    fn a_row_holds_its_id_until_dropped() {
        let Ok(file) = FileIds::new((1 << 40) + 2) else {
            return;
        };
        let first = take(&file, false);
        assert!(first.is_ok());
        let Ok(first) = first else { return };
        let held = first.id();
        // The next ids go on from it; the held one is not given out again.
        let second = take(&file, false).map(|l| l.id());
        assert!(matches!(second, Ok(id) if id != held));
        assert!(REGISTRY.lock().tree().get(&held).is_some());
        drop(first);
        assert!(REGISTRY.lock().tree().get(&held).is_none());
    }
}
