// SPDX-License-Identifier: GPL-2.0

//! The registry: every buffer whose memory is held (freed-but-mapped ones included), in the
//! order they were allocated, for debugfs `buffers`.
//!
//! A red-black tree under one mutex, keyed by a serial number that is never reused (64 bits:
//! it does not run out): entering and removing a buffer cost O(log n) in the live buffers, and
//! no allocation grows with their number (one tree node per buffer, allocated before the lock
//! is taken). Buffer ids are the files' business (`ids`); the registry shows each buffer's id
//! and the serial number of its file.

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
    memory::Kind,
    sys::debugfs::Table, //
};

/// What the registry keeps of one buffer: its fixed facts, and the mapping count it shares
/// with the buffer.
pub(crate) struct Entry {
    /// The buffer's id in its file.
    pub(crate) id: u64,
    /// The serial number of the file that allocated it.
    pub(crate) file: u64,
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

/// The live buffers, by serial number.
struct Registry {
    /// `None` until first used (a tree cannot be built in a constant); empty is the same. An
    /// empty tree owns no memory, so the static leaks nothing when the module goes.
    tree: Option<RBTree<u64, Entry>>,
    /// The next serial number.
    next: u64,
}

impl Registry {
    fn tree(&mut self) -> &mut RBTree<u64, Entry> {
        self.tree.get_or_insert_with(RBTree::new)
    }
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module's `init` before the device is registered.
    unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry { tree: None, next: 1 };
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

/// A buffer's entry in the registry, removed when this is dropped.
///
/// # Invariants
///
/// The registry holds an entry under `serial` while this object lives.
pub(crate) struct Listed {
    serial: u64,
}

impl Listed {
    /// Enters `entry` under the next serial number.
    pub(crate) fn new(entry: Entry) -> Result<Self> {
        // Allocated before the lock.
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut reg = REGISTRY.lock();
        let serial = reg.next;
        reg.next += 1;
        reg.tree().insert(node.into_node(serial, entry));
        // INVARIANT: The entry was just entered under `serial`.
        Ok(Self { serial })
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        // By the type invariant the entry is there; it is freed after the lock.
        let gone = REGISTRY.lock().tree().remove_node(&self.serial);
        drop(gone);
    }
}

/// A row of debugfs `buffers`: an entry, copied with its mapping count of the moment.
#[derive(Clone, Copy, Zeroable)]
pub(crate) struct Row {
    serial: u64,
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

/// Debugfs `buffers`: one line per buffer whose memory is held, by id.
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
            let (&serial, e) = c.current();
            rows[n] = Row {
                serial,
                id: e.id,
                file: e.file,
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
        row.serial
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
