// SPDX-License-Identifier: GPL-2.0

//! Buffer ids.
//!
//! An id names a buffer in its file's ioctls and, shifted into a cookie, in mmap, read and
//! write of that file. An id is held from the ALLOC that takes it until the buffer is gone
//! (freed and its last mapping closed): while anything can still use a buffer, its id and cookie
//! name no other. Ids are then reused, but as PIDs are: the search for a free id goes on from
//! the last one given out and wraps at the end of its range, so an id comes back only after
//! every other free id of the range was given out once, and a stale cookie names a newer buffer
//! only that late.
//!
//! - 64-bit processes take ids from `[COMPAT_IDS, MAX_ID)`, one range for the machine (so an id
//!   names one buffer in debugfs too): 134 million ids, a cycle of 134 million ALLOCs.
//! - 32-bit processes take them from `[1, COMPAT_IDS)`, a range of their file's own: their
//!   `mmap2` takes the offset in pages in 32 bits, which reaches the cookies of those ids only.
//!   A file can hold 255 such ids; a process can use up its own files' ranges only.
//!
//! The held ids of a range are a red-black tree under a mutex: taking and giving back an id
//! costs O(log n) in the ids held. Right after a wrap, one search may step over the run of old
//! ids still held, once a cycle.

use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode,
        RBTreeNodeReservation, //
    },
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    mapping::{
        COOKIE_SHIFT,
        MAX_ID, //
    },
    sys::PAGE_SHIFT,
};

/// The ids of 32-bit processes lie below this: `mmap2` takes the offset in pages in 32 bits,
/// which reaches cookies (ids shifted by `COOKIE_SHIFT` bits) of ids below `2^8`.
pub(crate) const COMPAT_IDS: u64 = 1 << (32 + PAGE_SHIFT - COOKIE_SHIFT);

/// A range of ids and where the search for the next free one starts.
struct Range {
    first: u64,
    end: u64,
    next: u64,
}

impl Range {
    const fn new(first: u64, end: u64) -> Self {
        Self {
            first,
            end,
            next: first,
        }
    }

    /// The first id from `next` on that `held` does not hold, wrapping once to `first`;
    /// `None` when every id of the range is held. `next` moves past it.
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

/// A range and its held ids.
struct Space {
    /// `None` until first used (a tree cannot be built in a constant); empty is the same. An
    /// empty tree owns no memory, so the global one leaks nothing when the module goes.
    held: Option<RBTree<u64, ()>>,
    range: Range,
}

impl Space {
    const fn new(first: u64, end: u64) -> Self {
        Self {
            held: None,
            range: Range::new(first, end),
        }
    }

    /// Takes a free id, entering it with `node`; `ENOSPC` when every id is held.
    fn take(&mut self, node: RBTreeNodeReservation<u64, ()>) -> Result<u64> {
        let held = self.held.get_or_insert_with(RBTree::new);
        let id = self.range.take(held).ok_or(ENOSPC)?;
        held.insert(node.into_node(id, ()));
        Ok(id)
    }

    /// Gives `id` back; its node is returned, to be freed after the lock.
    fn give(&mut self, id: u64) -> Option<RBTreeNode<u64, ()>> {
        self.held.as_mut().and_then(|held| held.remove_node(&id))
    }
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module's `init` before the device is registered.
    unsafe(uninit) static NATIVE: Mutex<Space> = Space::new(COMPAT_IDS, MAX_ID);
}

/// Initialises the machine's range.
///
/// # Safety
///
/// Must be called exactly once, before any other function of this file.
pub(crate) unsafe fn init() {
    // SAFETY: By the safety requirements this is the one call, before any use.
    unsafe { NATIVE.init() };
}

/// The 32-bit range of one open file, shared with its buffers (a buffer freed while mapped
/// holds its id after the file is closed).
#[pin_data]
pub(crate) struct FileIds {
    #[pin]
    compat: Mutex<Space>,
}

impl FileIds {
    /// A new file's range, with no id held.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                compat <- new_mutex!(Space::new(1, COMPAT_IDS)),
            }),
            GFP_KERNEL,
        )
    }
}

/// An id held by a buffer, given back when this is dropped.
///
/// # Invariants
///
/// `id` is held in the machine's range (`compat` is `None`) or in the file's 32-bit range
/// while this object lives, and was entered there by it.
pub(crate) struct Held {
    compat: Option<Arc<FileIds>>,
    id: u64,
}

impl Held {
    /// Takes a free id: from `file`'s 32-bit range when `compat`, else from the machine's.
    /// `ENOSPC` when every id of the range is held.
    pub(crate) fn take(file: &Arc<FileIds>, compat: bool) -> Result<Self> {
        // Allocated before a lock is taken: the allocation may sleep in reclaim. On ENOSPC it
        // is freed under the lock, which `kfree` does not mind.
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        if compat {
            let id = file.compat.lock().take(node)?;
            // INVARIANT: `id` was just entered in the file's range.
            Ok(Self {
                compat: Some(file.clone()),
                id,
            })
        } else {
            let id = NATIVE.lock().take(node)?;
            // INVARIANT: `id` was just entered in the machine's range.
            Ok(Self { compat: None, id })
        }
    }

    /// The id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // By the type invariant the id is held there; its node is freed after the lock.
        let gone = match &self.compat {
            Some(file) => file.compat.lock().give(self.id),
            None => NATIVE.lock().give(self.id),
        };
        drop(gone);
    }
}

#[kunit_tests(contigmem_ids)]
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
        let mut range = Range::new(1, 8);
        assert_eq!(range.take(&mut tree), Some(1));
        assert_eq!(range.take(&mut tree), Some(2));
        // Freed ids are not reused before the range wraps.
        assert_eq!(range.take(&mut held(&[1])), Some(3));
    }

    #[test]
    fn ids_wrap_and_skip_held_ones() {
        let mut range = Range::new(1, 8);
        range.next = 6;
        let mut tree = held(&[6, 7, 1, 2]);
        // 6 and 7 are held, 8 is the end: wrap, skip 1 and 2.
        assert_eq!(range.take(&mut tree), Some(3));
        assert_eq!(range.next, 4);
        let mut tree = held(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(range.take(&mut tree), None);
        let mut tree = held(&[1, 2, 3, 5, 6, 7]);
        assert_eq!(range.take(&mut tree), Some(4));
    }

    #[test]
    fn a_held_id_is_never_given_out() {
        // Cycles over a small range with every third id kept (a buffer still mapped): a kept
        // id never comes back while it is held, and once all are kept there is none to give.
        let mut range = Range::new(1, 64);
        let mut tree: RBTree<u64, ()> = RBTree::new();
        for i in 0..200u64 {
            let Some(id) = range.take(&mut tree) else {
                break;
            };
            assert!(tree.get(&id).is_none());
            if i % 3 == 0 {
                let _ = tree.try_create_and_insert(id, (), GFP_KERNEL);
            }
        }
        assert_eq!(tree.iter().count(), 63);
        assert_eq!(range.take(&mut tree), None);
    }

    #[test]
    fn files_have_their_own_32_bit_ids() {
        let (a, b) = (FileIds::new(), FileIds::new());
        assert!(a.is_ok() && b.is_ok());
        let (Ok(a), Ok(b)) = (a, b) else {
            return;
        };
        let native = Held::take(&a, false).map(|h| h.id());
        assert!(matches!(native, Ok(id) if (COMPAT_IDS..MAX_ID).contains(&id)));
        assert_eq!(Held::take(&a, true).map(|h| h.id()), Ok(1));
        // The 32-bit range is the file's: 255 held in `a` leave `b`'s untouched.
        let mut kept = KVec::new();
        while let Ok(h) = Held::take(&a, true) {
            if kept.push(h, GFP_KERNEL).is_err() {
                break;
            }
        }
        assert_eq!(kept.len() as u64, COMPAT_IDS - 1);
        assert_eq!(Held::take(&a, true).map(|h| h.id()), Err(ENOSPC));
        assert_eq!(Held::take(&b, true).map(|h| h.id()), Ok(1));
        drop(kept);
        // Given back, they come again (after the wrap).
        assert!(Held::take(&a, true).is_ok());
    }

    #[test]
    fn the_ranges_match_the_cookie_layout() {
        assert_eq!(COMPAT_IDS, 256);
        // The last compat id's last page is a 32-bit page offset.
        let last =
            (crate::mapping::cookie(COMPAT_IDS - 1) + crate::mapping::MAX_BUFFER - 1) >> PAGE_SHIFT;
        assert!(last <= u64::from(u32::MAX));
    }
}
