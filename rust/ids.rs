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
//! The held ids are the registry's keys (`registry`): the row a buffer has there from its ALLOC
//! until it is gone is what holds its id, so taking an id and entering the buffer are one
//! red-black tree search under one mutex, and so are giving it back and leaving. Taking and
//! giving back an id cost O(log n) in the buffers held. Right after a wrap, one search may step
//! over the run of old ids still held, once a cycle. A 32-bit range's ids are keyed above every
//! 64-bit id, at a place of their file's own (`FileIds`).

use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{
        self,
        RBTree,
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
pub(crate) struct Range {
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

    /// Enters the value `value(id)` in `held` under a free id of the range, as [`Range::take`]
    /// finds it, with `node`; `ENOSPC` when every id is held. The usual case, the id right
    /// after the last one given out being free, is one search of the tree.
    pub(crate) fn claim<V>(
        &mut self,
        held: &mut RBTree<u64, V>,
        node: RBTreeNodeReservation<u64, V>,
        value: impl FnOnce(u64) -> V,
    ) -> Result<u64> {
        let want = self.next.clamp(self.first, self.end);
        if want < self.end {
            if let rbtree::Entry::Vacant(slot) = held.entry(want) {
                slot.insert(value(want), node);
                self.next = want + 1;
                return Ok(want);
            }
        }
        let id = self.take(held).ok_or(ENOSPC)?;
        held.insert(node.into_node(id, value(id)));
        Ok(id)
    }
}

/// The machine's range of ids, for 64-bit processes: its keys are the ids.
pub(crate) const fn native() -> Range {
    Range::new(COMPAT_IDS, MAX_ID)
}

/// Where the 32-bit ranges' keys start: above every 64-bit id.
const COMPAT_KEYS: u64 = 1 << 32;

/// The 32-bit range of one open file: its search state, and where its keys lie among the
/// registry's. A buffer freed while mapped holds its id, by its registry row, after the file
/// is closed; the file's serial number is never reused, so no other file takes those keys.
#[pin_data]
pub(crate) struct FileIds {
    /// The key of id 0 of the range.
    base: u64,
    /// Taken before the registry's lock, never inside it.
    #[pin]
    pub(crate) compat: Mutex<Range>,
}

impl FileIds {
    /// The range of the file with serial number `file`, with no id held; `ENOSPC` for a serial
    /// number whose keys would not fit a file position (`loff_t`, which debugfs reads resume
    /// at): about 2^55 files opened.
    pub(crate) fn new(file: u64) -> Result<Arc<Self>> {
        let base = file
            .checked_mul(COMPAT_IDS)
            .and_then(|b| b.checked_add(COMPAT_KEYS))
            .filter(|b| {
                b.checked_add(COMPAT_IDS)
                    .is_some_and(|end| end <= i64::MAX as u64)
            })
            .ok_or(ENOSPC)?;
        let (first, end) = (base + 1, base + COMPAT_IDS);
        Arc::pin_init(
            pin_init!(Self {
                base,
                compat <- new_mutex!(Range::new(first, end)),
            }),
            GFP_KERNEL,
        )
    }

    /// The 32-bit id of this file's key `key`.
    pub(crate) fn id(&self, key: u64) -> u64 {
        key - self.base
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
    fn claim_enters_the_next_free_id() {
        let mut range = Range::new(1, 8);
        let mut tree: RBTree<u64, u64> = RBTree::new();
        let mut claim = |tree: &mut RBTree<u64, u64>| {
            let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
            range.claim(tree, node, |id| id * 10)
        };
        assert_eq!(claim(&mut tree), Ok(1));
        assert_eq!(claim(&mut tree), Ok(2));
        assert_eq!(tree.get(&2), Some(&20));
        // 3 held by someone else (a stale search state): the slow path skips it.
        let _ = tree.try_create_and_insert(3, 0, GFP_KERNEL);
        assert_eq!(claim(&mut tree), Ok(4));
        for want in 5..8 {
            assert_eq!(claim(&mut tree), Ok(want));
        }
        assert_eq!(claim(&mut tree), Err(ENOSPC));
        let _ = tree.remove(&2);
        // After the wrap, the one free id.
        assert_eq!(claim(&mut tree), Ok(2));
    }

    /// The registry's key of `file`'s 32-bit id `id`.
    fn key(file: &FileIds, id: u64) -> u64 {
        file.base + id
    }

    #[test]
    fn files_have_their_own_32_bit_keys() {
        let (a, b) = (FileIds::new(1), FileIds::new(2));
        assert!(a.is_ok() && b.is_ok());
        let (Ok(a), Ok(b)) = (a, b) else {
            return;
        };
        // Above every 64-bit id, and apart.
        assert!(key(&a, 1) >= MAX_ID);
        assert_eq!(key(&a, COMPAT_IDS - 1) + 1, key(&b, 0));
        assert_eq!(a.id(key(&a, 255)), 255);
        assert!(FileIds::new(u64::MAX / COMPAT_IDS).is_err());
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
