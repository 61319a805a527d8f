// SPDX-License-Identifier: GPL-2.0

//! The registry: every buffer whose memory is held (freed-but-mapped ones included), by id. It
//! gives out the ids, and debugfs `buffers` lists it.
//!
//! Ids are global, so that a buffer has one name in debugfs and another file's id is never found
//! in a file's table. An id is held from the ALLOC that succeeds until the buffer's memory is
//! released (its last mapping gone): while anything can still use a buffer, its id and cookie
//! name no other. Ids are then reused, but as PIDs are: the search for a free id goes on from
//! the last one given out and wraps at [`MAX_ID`], so an id comes back only after every other
//! free id was given out once (some 134 million ALLOCs), and a stale cookie names a newer buffer
//! only that late. 32-bit processes, whose `mmap2` reaches only the first [`COMPAT_IDS`]
//! cookies, get ids from a range of their own below it, in the same way.
//!
//! The registry is a red-black tree under one mutex: ALLOC and the release of a buffer cost
//! O(log n) in the number of live buffers, and no allocation grows with that number (one tree
//! node per buffer, allocated before the lock is taken).

use kernel::{
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
};

use crate::{
    mapping::MAX_ID,
    memory::Kind,
    sys::{
        debugfs::Table,
        PAGE_SHIFT, //
    },
};

/// The ids of 32-bit processes lie below this: `mmap2` takes the offset in pages in 32 bits,
/// which reaches cookies (ids shifted by `COOKIE_SHIFT` bits) of ids below `2^8`.
pub(crate) const COMPAT_IDS: u64 = 1 << (32 + PAGE_SHIFT - crate::mapping::COOKIE_SHIFT);

/// What the registry keeps of one buffer: its fixed facts, and the mapping count it shares
/// with the buffer.
pub(crate) struct Entry {
    /// The allocating process, in the initial pid namespace (root reading debugfs uses those).
    pub(crate) pid: i32,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) segments: u64,
    pub(crate) node: i32,
    pub(crate) off_node: u64,
    pub(crate) phys: u64,
    pub(crate) mappings: Arc<Atomic<u64>>,
}

/// A range of ids and where the search for the next free one starts.
struct Ids {
    first: u64,
    end: u64,
    next: u64,
}

impl Ids {
    const fn new(first: u64, end: u64) -> Self {
        Self {
            first,
            end,
            next: first,
        }
    }

    /// The first id from `next` on that `held` does not hold, wrapping once to `first`;
    /// `None` when every id of the range is held. `next` moves past it.
    ///
    /// The search steps over held ids one by one: one step per id given out, except right
    /// after a wrap, when it may step over the run of old ids still held.
    fn take<V>(&mut self, held: &mut RBTree<u64, V>) -> Option<u64> {
        let mut want = self.next.clamp(self.first, self.end);
        for _ in 0..2 {
            let mut cursor = held.cursor_lower_bound_mut(&want);
            while want < self.end {
                match cursor {
                    Some(c) if *c.current().0 == want => {
                        want += 1;
                        cursor = c.move_next();
                    }
                    _ => break,
                }
            }
            if want < self.end {
                self.next = want + 1;
                return Some(want);
            }
            want = self.first;
        }
        None
    }
}

/// The live buffers and the two id ranges.
struct Registry {
    /// `None` until first used (a tree cannot be built in a constant); empty is the same. An
    /// empty tree owns no memory, so the static leaks nothing when the module goes.
    tree: Option<RBTree<u64, Entry>>,
    native: Ids,
    compat: Ids,
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
        native: Ids::new(COMPAT_IDS, MAX_ID),
        compat: Ids::new(1, COMPAT_IDS),
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

/// A buffer's id and its entry in the registry, both given back when this is dropped.
///
/// # Invariants
///
/// The registry holds an entry with key `id` while this object lives.
pub(crate) struct Listed {
    id: u64,
}

impl Listed {
    /// Takes an id (from the 32-bit range when `compat`) and enters `entry` under it.
    /// `ENOSPC` when every id of the range is held.
    pub(crate) fn new(entry: Entry, compat: bool) -> Result<Self> {
        // Allocated before the lock, and freed after it on failure (locals drop in reverse).
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut guard = REGISTRY.lock();
        let reg = &mut *guard;
        let ids = if compat {
            &mut reg.compat
        } else {
            &mut reg.native
        };
        let id = ids.take(reg.tree.get_or_insert_with(RBTree::new)).ok_or(ENOSPC)?;
        reg.tree().insert(node.into_node(id, entry));
        // INVARIANT: The entry was just entered under `id`.
        Ok(Self { id })
    }

    /// The buffer's id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        // By the type invariant the entry is there; it is freed after the lock.
        let gone = REGISTRY.lock().tree().remove_node(&self.id);
        drop(gone);
    }
}

/// A row of debugfs `buffers`: an entry, copied with its mapping count of the moment.
#[derive(Clone, Copy, Zeroable)]
pub(crate) struct Row {
    id: u64,
    pid: i32,
    kind: u32,
    size: u64,
    segments: u64,
    mappings: u64,
    node: i32,
    off_node: u64,
    phys: u64,
}

/// Debugfs `buffers`: one line per buffer whose memory is held, by id.
pub(crate) struct Buffers;

impl Table for Buffers {
    type Row = Row;
    const HEADER: &'static str = "id pid kind size contiguous segments mappings node off_node phys";

    fn fill(from: u64, rows: &mut [Row]) -> usize {
        let mut reg = REGISTRY.lock();
        let mut cursor = reg.tree().cursor_lower_bound_mut(&from);
        let mut n = 0;
        while n < rows.len() {
            let Some(c) = cursor else { break };
            let (&id, e) = c.current();
            rows[n] = Row {
                id,
                pid: e.pid,
                kind: e.kind.to_abi(),
                size: e.size,
                segments: e.segments,
                mappings: e.mappings.load(Relaxed),
                node: e.node,
                off_node: e.off_node,
                phys: e.phys,
            };
            n += 1;
            cursor = c.move_next();
        }
        n
    }

    fn key(row: &Row) -> u64 {
        row.id
    }

    fn write(r: &Row, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = Kind::from_abi(r.kind).map_err(|_| core::fmt::Error)?;
        write!(
            f,
            "{} {} {} {} {} {} {} {} {} {:#x}",
            r.id,
            r.pid,
            kind.name(),
            r.size,
            u8::from(kind.contiguous()),
            r.segments,
            r.mappings,
            r.node,
            r.off_node,
            r.phys
        )
    }
}

#[kunit_tests(contigmem_registry)]
mod tests {
    use super::*;

    fn held(ids: &[u64]) -> RBTree<u64, ()> {
        let mut tree = RBTree::new();
        for &id in ids {
            let _ = tree.try_create_and_insert(id, (), GFP_KERNEL);
        }
        tree
    }

    #[test]
    fn ids_go_on_from_the_last_one() {
        let mut tree = held(&[]);
        let mut ids = Ids::new(1, 8);
        assert_eq!(ids.take(&mut tree), Some(1));
        assert_eq!(ids.take(&mut tree), Some(2));
        // Freed ids are not reused before the range wraps.
        assert_eq!(ids.take(&mut held(&[1])), Some(3));
    }

    #[test]
    fn ids_wrap_and_skip_held_ones() {
        let mut ids = Ids::new(1, 8);
        ids.next = 6;
        let mut tree = held(&[6, 7, 1, 2]);
        // 6 and 7 are held, 8 is the end: wrap, skip 1 and 2.
        assert_eq!(ids.take(&mut tree), Some(3));
        assert_eq!(ids.next, 4);
        let mut tree = held(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(ids.take(&mut tree), None);
        let mut tree = held(&[1, 2, 3, 5, 6, 7]);
        assert_eq!(ids.take(&mut tree), Some(4));
    }

    #[test]
    fn a_held_id_is_never_given_out() {
        // A full cycle and more over a small range with every third id kept: a kept id (a
        // buffer still mapped) never comes back while it is held.
        let mut ids = Ids::new(1, 64);
        let mut tree: RBTree<u64, ()> = RBTree::new();
        for i in 0..200u64 {
            let Some(id) = ids.take(&mut tree) else { break };
            assert!(tree.get(&id).is_none());
            if i % 3 == 0 {
                let _ = tree.try_create_and_insert(id, (), GFP_KERNEL);
            }
        }
        // Every id ended up kept, and then there is none to give.
        assert_eq!(tree.iter().count(), 63);
        assert_eq!(ids.take(&mut tree), None);
    }

    #[test]
    fn the_ranges_match_the_cookie_layout() {
        assert_eq!(COMPAT_IDS, 256);
        // The last compat id's last page is a 32-bit page offset.
        let last = (crate::mapping::cookie(COMPAT_IDS - 1) + crate::mapping::MAX_BUFFER - 1)
            >> PAGE_SHIFT;
        assert!(last <= u64::from(u32::MAX));
        let native = Ids::new(COMPAT_IDS, MAX_ID);
        assert_eq!(native.next, 256);
    }
}
