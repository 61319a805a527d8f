// SPDX-License-Identifier: GPL-2.0

//! A buffer: memory from one back-end, shared by the file's table and every mapping of it, and
//! the byte accounting that bounds how much memory users can hold.
//!
//! A buffer is reference counted (`Arc<Buffer>`): the owning file's table holds one reference
//! until FREE or close, each VMA one more until it is unmapped. The memory is released, and the
//! bytes given back to the caps, when the last reference goes.

use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    },
    time::{
        Instant,
        Monotonic, //
    },
};

use crate::{
    dmabuf::Attached,
    ids::FileIds,
    introspect::{
        self,
        Live, //
    },
    memory::{
        Kind,
        Memory,
        Placement,
        Request, //
    },
    registry::{
        Entry,
        Facts,
        Listed, //
    },
    sys::{
        PAGE_SHIFT,
        PUD_SIZE, //
    },
};

/// Bytes held by all buffers (freed-but-mapped ones included).
static LIVE_BYTES: Atomic<u64> = Atomic::new(0);
/// Buffers whose memory is still held.
static LIVE_BUFFERS: Atomic<u64> = Atomic::new(0);

/// The global counters, as VERSION reports them.
pub(crate) fn live() -> (u64, u64) {
    (LIVE_BYTES.load(Relaxed), LIVE_BUFFERS.load(Relaxed))
}

/// Adds `bytes` to `counter` unless the sum would exceed `cap` (`ENOSPC`).
fn try_add(counter: &Atomic<u64>, bytes: u64, cap: u64) -> Result {
    let mut old = counter.load(Relaxed);
    loop {
        let new = old.checked_add(bytes).filter(|&n| n <= cap).ok_or(ENOSPC)?;
        match counter.cmpxchg(old, new, Relaxed) {
            Ok(_) => return Ok(()),
            Err(seen) => old = seen,
        }
    }
}

/// The bytes one open file holds, shared with its buffers so that a buffer freed while mapped
/// still counts against the file that allocated it.
pub(crate) struct FileBytes(Atomic<u64>);

/// The serial number of the next file opened (shown in debugfs, never reused).
static NEXT_FILE: Atomic<u64> = Atomic::new(1);

/// What a buffer takes from the open file that allocates it.
pub(crate) struct Owner {
    /// The bytes the file holds.
    bytes: Arc<FileBytes>,
    /// The file's ids.
    ids: Arc<FileIds>,
    /// The file's serial number.
    serial: u64,
    /// The file was opened with `CAP_SYS_ADMIN` (see `file`).
    pub(crate) privileged: bool,
}

impl Owner {
    /// The share of a newly opened file.
    pub(crate) fn new(privileged: bool) -> Result<Self> {
        let serial = NEXT_FILE.fetch_add(1, Relaxed);
        Ok(Self {
            bytes: Arc::new(FileBytes(Atomic::new(0)), GFP_KERNEL)?,
            ids: FileIds::new(serial)?,
            serial,
            privileged,
        })
    }
}

/// Bytes reserved against the global and the per-file cap, given back on drop.
///
/// # Invariants
///
/// `bytes` have been added to `LIVE_BYTES` and to `file`, and one buffer to `LIVE_BUFFERS`.
struct Charge {
    bytes: u64,
    file: Arc<FileBytes>,
}

impl Charge {
    fn new(bytes: u64, file: Arc<FileBytes>, caps: &Caps) -> Result<Self> {
        try_add(&file.0, bytes, caps.file)?;
        if let Err(e) = try_add(&LIVE_BYTES, bytes, caps.total) {
            file.0.fetch_sub(bytes, Relaxed);
            return Err(e);
        }
        LIVE_BUFFERS.add(1, Relaxed);
        // INVARIANT: Both counters and the buffer count were raised above.
        Ok(Self { bytes, file })
    }

    /// Gives back what was charged beyond `bytes`: the memory the allocator took at once was
    /// more than the buffer keeps.
    fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            let extra = self.bytes - bytes;
            self.file.0.fetch_sub(extra, Relaxed);
            LIVE_BYTES.fetch_sub(extra, Relaxed);
            // INVARIANT: The counters hold `bytes` of this charge now.
            self.bytes = bytes;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        // By the type invariant these were added when the charge was made.
        self.file.0.fetch_sub(self.bytes, Relaxed);
        LIVE_BYTES.fetch_sub(self.bytes, Relaxed);
        LIVE_BUFFERS.fetch_sub(1, Relaxed);
    }
}

/// The byte caps in force.
#[derive(Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) total: u64,
    pub(crate) file: u64,
}

/// One buffer.
#[pin_data]
pub(crate) struct Buffer {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    /// Bytes, a multiple of the page size.
    pub(crate) size: u64,
    pub(crate) uninit: bool,
    /// Allocated with `HUGE_MAP`.
    pub(crate) huge_map: bool,
    /// Mapped as a PFN map, with PTE, PMD and PUD entries on fault, rather than as normal pages:
    /// `HUGE_MAP`, or a caching mode other than write-back (see `Request::pfn_map`).
    pub(crate) pfn_map: bool,
    /// PUD entries may map it where its memory is 1 GiB-aligned: the file may see physical
    /// addresses, or the buffer was asked for 1 GiB-aligned. Otherwise where PUDs appear would
    /// tell bits 22-29 of the physical address that INFO hides.
    pub(crate) pud_ok: bool,
    /// Allocated on its node only.
    pub(crate) strict_node: bool,
    pub(crate) alloc_ns: u64,
    pub(crate) placement: Placement,
    /// Its placement and live VMAs, shared with its registry row.
    facts: Arc<Facts>,
    /// The attachments of its dma-bufs (the importers' devices): the scatter table of each, by
    /// the address of its entry (see `dmabuf`). Each dma-buf holds the buffer, and the dma-buf
    /// core detaches every importer before it releases a dma-buf, so the list is empty by the
    /// time the buffer drops; were it not (an importer that never detached), its tables are
    /// unmapped here, before the memory goes.
    #[pin]
    pub(crate) attachments: Mutex<KVec<Attached>>,
    // Fields drop in order: the buffer leaves the registry, giving its id back (nothing can
    // name it any more: it is in no file's table and no VMA holds it), so debugfs never shows
    // memory that is being freed; then the memory is freed, and its bytes are given back to the
    // counters and the caps.
    _listed: Listed,
    pub(crate) memory: Memory,
    _live: Live,
    _charge: Charge,
}

impl Buffer {
    /// Charges the caps, takes an id of `owner`'s file (a 32-bit one when `compat`) with the
    /// buffer's registry row, allocates `req` and times the allocation.
    ///
    /// The caps are charged first (counters only), so that an ALLOC refused by them takes no
    /// id and does not move the id search on; the id comes next, so that a file out of ids is
    /// refused before any memory is touched. The caps are charged with all the memory the
    /// allocator takes at once (a HUGE range over-allocated for its alignment), then with what
    /// the buffer keeps. The buffer's registry row is shown once the buffer exists.
    pub(crate) fn new(
        req: &Request,
        owner: &Owner,
        caps: &Caps,
        compat: bool,
    ) -> Result<Arc<Self>> {
        let facts = Facts::new()?;
        let pid = kernel::current!().group_leader().pid();
        let row = |id| Entry {
            id,
            file: owner.serial,
            pid,
            kind: req.kind,
            size: req.size,
            facts: facts.clone(),
        };
        let mut charge = Charge::new(req.span(), owner.bytes.clone(), caps)?;
        let listed = Listed::take(&owner.ids, compat, row)?;
        let start = Instant::<Monotonic>::now();
        let memory = Memory::alloc(req);
        let alloc_ns = start.elapsed().as_nanos().max(0) as u64;
        introspect::count_alloc(req.kind, memory.is_ok());
        let memory = memory?;
        charge.shrink_to(req.size);
        let placement = memory.placement();
        let buf = Arc::pin_init(
            try_pin_init!(Self {
                id: listed.id(),
                kind: req.kind,
                size: req.size,
                uninit: req.uninit,
                huge_map: req.huge_map,
                pfn_map: req.pfn_map(),
                pud_ok: owner.privileged || req.align >= PUD_SIZE,
                strict_node: req.strict_node,
                alloc_ns,
                placement,
                facts,
                attachments <- new_mutex!(KVec::new()),
                _listed: listed,
                memory,
                _live: Live::new(req.kind, req.size),
                _charge: charge,
            }),
            GFP_KERNEL,
        )?;
        buf.facts.publish(&buf.placement);
        Ok(buf)
    }

    /// The number of pages.
    pub(crate) fn pages(&self) -> u64 {
        self.size >> PAGE_SHIFT
    }

    /// Live VMAs mapping this buffer.
    pub(crate) fn mappings(&self) -> u64 {
        self.facts.mappings.load(Relaxed)
    }

    /// Counts a new VMA.
    pub(crate) fn mapped(&self) {
        self.facts.mappings.add(1, Relaxed);
    }

    /// Counts a VMA gone.
    pub(crate) fn unmapped(&self) {
        self.facts.mappings.fetch_sub(1, Relaxed);
    }

    /// Live dma-bufs exported from this buffer.
    pub(crate) fn dmabufs(&self) -> u64 {
        self.facts.dmabufs.load(Relaxed)
    }

    /// Counts a new dma-buf (`gone`: false) or one released (true).
    pub(crate) fn count_dmabuf(&self, gone: bool) {
        if gone {
            self.facts.dmabufs.fetch_sub(1, Relaxed);
        } else {
            self.facts.dmabufs.add(1, Relaxed);
        }
    }
}

#[kunit_tests(contigmem_buffer)]
mod tests {
    use super::*;

    #[test]
    fn try_add_respects_the_cap() {
        let counter = Atomic::new(0u64);
        assert_eq!(try_add(&counter, 10, 15), Ok(()));
        assert_eq!(try_add(&counter, 6, 15), Err(ENOSPC));
        assert_eq!(counter.load(Relaxed), 10);
        assert_eq!(try_add(&counter, 5, 15), Ok(()));
        assert_eq!(counter.load(Relaxed), 15);
    }

    #[test]
    fn try_add_refuses_overflow() {
        let counter = Atomic::new(u64::MAX - 1);
        assert_eq!(try_add(&counter, 2, u64::MAX), Err(ENOSPC));
        assert_eq!(counter.load(Relaxed), u64::MAX - 1);
    }
}
