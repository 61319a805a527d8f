// SPDX-License-Identifier: GPL-2.0

//! The back-ends: memory from kmalloc, kzalloc, vmalloc, alloc_pages and alloc_contig_pages,
//! and how each is mapped into a user VMA.

use core::ptr::NonNull;

use kernel::{
    alloc::allocator::Vmalloc,
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    mm::virt::VmaNew,
    prelude::*, //
};

use crate::{
    abi,
    sys::{
        self,
        dmabuf::{
            self,
            RawPage,
            SegmentLimits, //
        },
        Cache,
        PageRun,
        RawAlloc,
        MAX_PAGE_ORDER,
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
};

/// The allocator a buffer comes from (`enum contigmem_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Kmalloc,
    Kzalloc,
    Vmalloc,
    Pages,
    Huge,
}

impl Kind {
    /// Every kind, in ABI order.
    pub(crate) const ALL: [Kind; abi::KIND_COUNT as usize] = [
        Kind::Kmalloc,
        Kind::Kzalloc,
        Kind::Vmalloc,
        Kind::Pages,
        Kind::Huge,
    ];

    /// The kind with ABI number `raw`, or `EINVAL`.
    pub(crate) fn from_abi(raw: u32) -> Result<Self> {
        Self::ALL.get(raw as usize).copied().ok_or(EINVAL)
    }

    /// The ABI number of this kind.
    pub(crate) fn to_abi(self) -> u32 {
        self as u32
    }

    /// The name of this kind, as the CLI and debugfs spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Kmalloc => "kmalloc",
            Kind::Kzalloc => "kzalloc",
            Kind::Vmalloc => "vmalloc",
            Kind::Pages => "pages",
            Kind::Huge => "huge",
        }
    }

    /// The granule sizes are rounded up to: a page, or for contiguous ranges a whole
    /// `MAX_PAGE_ORDER` block (4 MiB on x86-64). `alloc_contig_range()` isolates whole pageblocks
    /// and, for a range within one pageblock, expects the first isolation to still hold when it
    /// looks again; a free buddy page straddling the range's start can undo it in between, and
    /// DEBUG_VM kernels stop at `kernel BUG at mm/page_isolation.c:348` (found by
    /// `contigmem-stress`). Ranges of whole, aligned `MAX_PAGE_ORDER` blocks never take that
    /// path, and no buddy page straddles their ends.
    pub(crate) fn granule(self) -> u64 {
        match self {
            Kind::Huge => 1 << (MAX_PAGE_ORDER + PAGE_SHIFT),
            _ => PAGE_SIZE,
        }
    }

    /// Whether buffers of this kind are physically contiguous.
    pub(crate) fn contiguous(self) -> bool {
        self != Kind::Vmalloc
    }

    /// Whether mappings of this kind's buffers are normal pages (usable by `get_user_pages`)
    /// when they are not huge-mapped; slab memory is mapped as special PTEs.
    pub(crate) fn pinnable(self) -> bool {
        !matches!(self, Kind::Kmalloc | Kind::Kzalloc)
    }

    /// Whether a caller may bound the physical addresses of the memory: the kinds whose pages
    /// come from the page allocator (slab memory comes from ZONE_NORMAL's kmalloc caches).
    pub(crate) fn takes_phys_limit(self) -> bool {
        matches!(self, Self::Vmalloc | Self::Pages | Self::Huge)
    }

    /// Whether buffers of this kind may have a caching mode other than write-back: the kinds
    /// that own whole pages of the direct map. Slab pages hold other objects, and a vmalloc
    /// buffer has a second kernel alias (its vmalloc area) that `set_memory_*` cannot follow.
    pub(crate) fn takes_cache(self) -> bool {
        matches!(self, Kind::Pages | Kind::Huge)
    }

    /// Whether a caller may ask for an alignment beyond the page.
    pub(crate) fn takes_align(self) -> bool {
        matches!(self, Kind::Pages | Kind::Huge)
    }

    /// The largest buffer of this kind, in bytes, given the byte cap `cap`.
    pub(crate) fn max_size(self, cap: u64) -> u64 {
        // KMALLOC_MAX_SIZE with SLUB, and the largest buddy block: 4 MiB on x86-64.
        let max_block = 1u64 << (MAX_PAGE_ORDER + PAGE_SHIFT);
        let max = match self {
            Kind::Kmalloc | Kind::Kzalloc | Kind::Pages => max_block.min(cap),
            Kind::Vmalloc | Kind::Huge => cap.min(sys::totalram_bytes()),
        };
        max / self.granule() * self.granule()
    }
}

/// What a caller asks of a back-end.
pub(crate) struct Request {
    pub(crate) kind: Kind,
    /// Bytes, a non-zero multiple of the page size.
    pub(crate) size: u64,
    /// Bytes, a power of two >= the page size.
    pub(crate) align: u64,
    /// Skip zeroing.
    pub(crate) uninit: bool,
    /// Map with PMD/PUD entries on fault (PAGES, HUGE).
    pub(crate) huge_map: bool,
    /// An online node, or -1 for the caller's local node.
    pub(crate) node: i32,
    /// Only `node` (not -1): fail rather than fall back to another node.
    pub(crate) strict_node: bool,
    /// 0, or a physical address the whole buffer lies below (VMALLOC, PAGES, HUGE).
    pub(crate) phys_limit: u64,
    /// The caching mode (not write-back: PAGES and HUGE only).
    pub(crate) cache: Cache,
}

impl Request {
    /// Whether the buffer is mapped as a PFN map: with `HUGE_MAP`, and always in a caching mode
    /// other than write-back. Mapped as normal pages, a write-combining page could be pinned
    /// by other kernel code that maps it write-back for itself (vb2-vmalloc's USERPTR
    /// `vm_map_ram`, io_uring's `vmap` of its rings): two aliases that disagree, which x86 does
    /// not allow. `get_user_pages` refuses PFN maps, as it does graphics drivers' WC buffers.
    pub(crate) fn pfn_map(&self) -> bool {
        self.huge_map || self.cache != Cache::WriteBack
    }

    /// The order of the buddy block a PAGES buffer is cut from: its size or its alignment,
    /// whichever is larger, rounded up to a power of two.
    fn pages_order(&self) -> u32 {
        let pages = (self.size >> PAGE_SHIFT).max(self.align >> PAGE_SHIFT);
        u64::BITS - (pages - 1).leading_zeros()
    }

    /// The bytes the allocator takes at once for this request, before it gives back what the
    /// buffer does not keep: a PAGES buffer's whole buddy block, a HUGE range with the slack
    /// for its alignment (`ALLOC{HUGE, 4 MiB, align = 2 GiB}` isolates and migrates 2 GiB).
    /// The caps and the headroom rule see this, not the size alone.
    pub(crate) fn span(&self) -> u64 {
        let pages = (self.size >> PAGE_SHIFT) as usize;
        let align = (self.align >> PAGE_SHIFT) as usize;
        let span = match self.kind {
            Kind::Pages => 1usize << self.pages_order(),
            Kind::Huge => PageRun::contig_span(pages, align).unwrap_or(pages),
            _ => pages,
        };
        (span as u64) << PAGE_SHIFT
    }
}

/// Memory owned by a buffer.
pub(crate) enum Memory {
    Slab(RawAlloc),
    Vmalloc(RawAlloc),
    Pages(PageRun),
}

/// A placement in physical memory: the first PFN, the number of contiguous runs, the node of
/// the first page and how many pages are on other nodes.
pub(crate) struct Placement {
    pub(crate) pfn: u64,
    pub(crate) segments: u64,
    pub(crate) node: i32,
    pub(crate) off_node: u64,
}

impl Memory {
    /// Allocates the memory for `req`: zeroed unless `req.uninit`, charged to the caller's memory
    /// cgroup where the allocator allows it, and failing (without a warning, without invoking
    /// the OOM killer) rather than taking memory by force.
    pub(crate) fn alloc(req: &Request) -> Result<Self> {
        let mut mem = Self::alloc_on_node(req)?;
        if req.strict_node {
            // `__GFP_THISNODE` does the work; this holds the promise should an allocator ever
            // drop the flag (vmalloc's `GFP_VMALLOC_SUPPORTED` does not list it; only the
            // `vrealloc` path we call keeps it).
            let placement = mem.placement();
            if placement.node != req.node || placement.off_node != 0 {
                return Err(ENOMEM);
            }
        }
        // The zone (`__GFP_DMA32` below 4 GiB) bounds the memory at the zone's end; a bound
        // inside a zone is checked here. `alloc_contig_pages` searches a zone upwards, so a
        // range above the bound means none below it was free.
        if req.phys_limit != 0 && mem.end_pfn() > req.phys_limit >> PAGE_SHIFT {
            return Err(ENOMEM);
        }
        if req.cache != Cache::WriteBack {
            match &mut mem {
                // Before anything maps it: the user mappings take the same mode.
                Self::Pages(run) => run.set_cache(req.cache)?,
                _ => return Err(EINVAL),
            }
        }
        Ok(mem)
    }

    /// The caching mode of the memory: the same for its kernel alias and every user mapping.
    pub(crate) fn cache(&self) -> Cache {
        match self {
            Self::Pages(run) => run.cache(),
            _ => Cache::WriteBack,
        }
    }

    fn alloc_on_node(req: &Request) -> Result<Self> {
        let size = usize::try_from(req.size).map_err(|_| E2BIG)?;
        if req.span() > headroom(sys::available_bytes(), sys::totalram_bytes()) {
            return Err(ENOMEM);
        }
        let pages = size >> PAGE_SHIFT;
        // -1 is NUMA_NO_NODE for the page allocator, kmalloc and vmalloc: the task's memory
        // policy decides (the default policy: the local node first; `numactl --membind` or
        // `--interleave` work as for any allocation). `alloc_contig_pages` cannot take
        // NUMA_NO_NODE at all (it indexes the node array with it), so HUGE gets the local node.
        // Without `strict_node` every allocator falls back along the node's zonelist.
        let nid = match req.node {
            n if n >= 0 => n,
            _ if req.kind == Kind::Huge => sys::local_node(),
            _ => sys::NUMA_NO_NODE,
        };
        let zero = sys::gfp::zero(!req.uninit);
        let place = sys::gfp::this_node(req.strict_node) | sys::gfp::below(req.phys_limit);
        let charged = sys::gfp::ALLOC | sys::gfp::ACCOUNT | place;
        match req.kind {
            Kind::Kmalloc => {
                // kmalloc memory is zeroed after the fact (unless UNINIT), kzalloc's by the
                // allocator, so the two can be compared honestly.
                let mut mem = RawAlloc::kmalloc(size, charged, nid)?;
                if !req.uninit {
                    mem.zero();
                }
                Ok(Self::Slab(mem))
            }
            Kind::Kzalloc => Ok(Self::Slab(RawAlloc::kmalloc(size, charged | zero, nid)?)),
            Kind::Vmalloc => Ok(Self::Vmalloc(RawAlloc::vmalloc(size, charged | zero, nid)?)),
            // A buffer of exactly one PMD-order block, mapped normally, is one folio: mapped
            // with a refcounted PMD, as a HUGE buffer.
            Kind::Pages
                if !req.pfn_map()
                    && req.pages_order() == sys::PMD_ORDER
                    && pages == 1 << sys::PMD_ORDER =>
            {
                Ok(Self::Pages(PageRun::alloc_folio(charged | zero, nid)?))
            }
            Kind::Pages => Ok(Self::Pages(PageRun::alloc_pages(
                pages,
                req.pages_order(),
                charged | zero,
                nid,
            )?)),
            Kind::Huge => {
                // alloc_contig_range() refuses __GFP_ACCOUNT: contiguous ranges are not charged
                // to a memory cgroup, the byte caps bound them instead.
                // Mapped with PFN entries (`pfn_map`), the memory need not be folios; mapped
                // normally it is PMD-order folios, for refcounted PMD entries.
                let align = (req.align >> PAGE_SHIFT) as usize;
                let gfp = sys::gfp::ALLOC | zero | place;
                Ok(Self::Pages(if req.pfn_map() {
                    PageRun::alloc_contig(pages, align, gfp, nid)?
                } else {
                    PageRun::alloc_contig_folios(pages, align, gfp, nid)?
                }))
            }
        }
    }

    /// Where the memory is: first PFN, number of physically contiguous runs, node of the first
    /// page and the number of pages on other nodes.
    ///
    /// A physically contiguous allocation (a slab object, a buddy block, an `alloc_contig_pages`
    /// range) lies in one zone, and so on one node: the buddy allocator merges and
    /// `alloc_contig_range` takes pages of one zone only. For those the first and the last page
    /// are checked; vmalloc memory is checked page by page.
    pub(crate) fn placement(&self) -> Placement {
        match self {
            Self::Slab(mem) => {
                let last = (mem.size() >> PAGE_SHIFT) - 1;
                Placement {
                    pfn: mem.pfn(0).unwrap_or(0),
                    segments: 1,
                    node: mem.nid(0).unwrap_or(-1),
                    off_node: Self::off_node(mem.nid(0), mem.nid(last), || {
                        (0..=last).map(|i| mem.nid(i))
                    }),
                }
            }
            Self::Vmalloc(mem) => {
                let pages = mem.size() >> PAGE_SHIFT;
                let node = mem.nid(0).unwrap_or(-1);
                let mut segments = 0;
                let mut off_node = 0;
                let mut prev = u64::MAX;
                for i in 0..pages {
                    if i % sys::RESCHED_EVERY == sys::RESCHED_EVERY - 1 {
                        sys::cond_resched();
                    }
                    let (pfn, nid) = mem.page(i).unwrap_or((0, -1));
                    if prev == u64::MAX || pfn != prev + 1 {
                        segments += 1;
                    }
                    prev = pfn;
                    if nid != node {
                        off_node += 1;
                    }
                }
                Placement {
                    pfn: mem.pfn(0).unwrap_or(0),
                    segments,
                    node,
                    off_node,
                }
            }
            Self::Pages(run) => {
                let last = run.count() - 1;
                Placement {
                    pfn: run.pfn(),
                    segments: 1,
                    node: run.nid(0).unwrap_or(-1),
                    off_node: Self::off_node(run.nid(0), run.nid(last), || {
                        (0..=last).map(|i| run.nid(i))
                    }),
                }
            }
        }
    }

    /// One past the highest page frame of the memory.
    pub(crate) fn end_pfn(&self) -> u64 {
        match self {
            Self::Slab(mem) => mem.pfn(0).unwrap_or(0) + (mem.size() >> PAGE_SHIFT) as u64,
            Self::Vmalloc(mem) => {
                let mut end = 0;
                for i in 0..mem.size() >> PAGE_SHIFT {
                    if i % sys::RESCHED_EVERY == sys::RESCHED_EVERY - 1 {
                        sys::cond_resched();
                    }
                    end = end.max(mem.pfn(i).map_or(0, |p| p + 1));
                }
                end
            }
            Self::Pages(run) => run.pfn() + run.count() as u64,
        }
    }

    /// The pages of a contiguous allocation not on its first page's node: 0 when the first and
    /// the last page agree (see [`Memory::placement`]); counted page by page otherwise, which
    /// would be a kernel that splits a zone between nodes.
    fn off_node<I: Iterator<Item = Option<i32>>>(
        first: Option<i32>,
        last: Option<i32>,
        all: impl FnOnce() -> I,
    ) -> u64 {
        if first == last {
            return 0;
        }
        let mut off = 0;
        for (i, nid) in all().enumerate() {
            if i % sys::RESCHED_EVERY == sys::RESCHED_EVERY - 1 {
                sys::cond_resched();
            }
            if nid != first {
                off += 1;
            }
        }
        off
    }

    /// The memory as PMD-order folios, if it is made of them (a HUGE buffer, or a 2 MiB PAGES
    /// buffer, mapped normally):
    /// it is mapped on fault, by PMDs where they fit and PTEs elsewhere.
    pub(crate) fn folios(&self) -> Option<&PageRun> {
        match self {
            Self::Pages(run) if run.is_folios() => Some(run),
            _ => None,
        }
    }

    /// Maps `vma`'s length of this memory from page `first_page` into `vma`.
    ///
    /// Pages with a reference count of their own (vmalloc, split buddy pages, contiguous
    /// ranges) are inserted as normal pages, so the mapping works with `get_user_pages` and
    /// `/proc/pid/pagemap`, in batches of [`INSERT_BATCH`] (`vm_insert_pages` walks to each PMD
    /// and takes each PTE lock once for up to eight pages, where `vm_insert_page` does both for
    /// every page). Slab memory cannot be inserted that way and is mapped as special PTEs of a
    /// mixed map: visible in pagemap, not pinnable.
    pub(crate) fn map(&self, vma: &VmaNew, first_page: u64) -> Result {
        let pages = (vma.end() - vma.start()) >> PAGE_SHIFT;
        let first = usize::try_from(first_page).map_err(|_| EINVAL)?;
        match first.checked_add(pages) {
            Some(end) if end <= self.pages() => {}
            _ => return Err(EINVAL),
        }
        let mixed = vma.set_mixedmap();
        let mut batch = KVec::with_capacity(INSERT_BATCH.min(pages), GFP_KERNEL)?;
        let mut done = 0;
        while done < pages {
            if done > 0 {
                // A 64 GiB window is 16 million inserts: yield, and stop for a task being
                // killed (the kernel unmaps what was inserted when mmap fails).
                sys::cond_resched();
                if sys::fatal_signal_pending() {
                    return Err(EINTR);
                }
            }
            let n = INSERT_BATCH.min(pages - done);
            let addr = vma.start() + (done << PAGE_SHIFT);
            match self {
                Self::Slab(mem) => {
                    for i in 0..n {
                        let pfn = mem.pfn(first + done + i).ok_or(EINVAL)?;
                        sys::vma::insert_mixed(mixed, addr + (i << PAGE_SHIFT), pfn)?;
                    }
                }
                Self::Vmalloc(mem) => {
                    batch.clear();
                    for i in first + done..first + done + n {
                        // SAFETY: Page `i` lies inside our live vmalloc allocation (checked
                        // above), which outlives the mapping.
                        let page = unsafe { Vmalloc::to_page(mem.ptr().add(i << PAGE_SHIFT)) };
                        batch.push(page.as_ptr(), GFP_KERNEL)?;
                    }
                    sys::vma::insert_pages(mixed, addr, &mut batch)?;
                }
                Self::Pages(run) => {
                    batch.clear();
                    for i in first + done..first + done + n {
                        batch.push(run.page(i).ok_or(EINVAL)?.as_ptr(), GFP_KERNEL)?;
                    }
                    sys::vma::insert_pages(mixed, addr, &mut batch)?;
                }
            }
            done += n;
        }
        Ok(())
    }

    /// Calls `f` with each physically contiguous run of the memory, in order: its first page and
    /// its length in bytes, within `limits` (a run longer than the limit, or across the
    /// boundary, comes in pieces). Returns the
    /// number of runs, or the first error of `f`.
    ///
    /// A slab object and a page run are one run (a slab object of whole pages starts a page: a
    /// large kmalloc is a buddy block, and the 4 and 8 KiB caches align objects to their size);
    /// vmalloc memory is cut where one page's frame does not follow the last.
    pub(crate) fn runs(
        &self,
        limits: SegmentLimits,
        mut f: impl FnMut(NonNull<RawPage>, usize) -> Result,
    ) -> Result<usize> {
        let mut count = 0;
        let mut pieces = |first: NonNull<RawPage>, len: usize| -> Result {
            // SAFETY: `first` is a page of our memory.
            let phys = unsafe { dmabuf::page_to_phys(first) };
            let mut done = 0;
            while done < len {
                if count % sys::RESCHED_EVERY == sys::RESCHED_EVERY - 1 {
                    sys::cond_resched();
                }
                // Whole pages: the limits are multiples of a page, and so is every boundary.
                let n = limits.piece(phys + done as u64, len - done);
                // Pieces of a run stay within it: `struct page`s of contiguous frames are
                // contiguous with SPARSEMEM_VMEMMAP, which the crate requires.
                let page = first.as_ptr().wrapping_add(done >> PAGE_SHIFT);
                // SAFETY: Derived from a non-null page pointer of our memory.
                f(unsafe { NonNull::new_unchecked(page) }, n)?;
                count += 1;
                done += n;
            }
            Ok(())
        };
        match self {
            Self::Slab(mem) => {
                let pfn = mem.pfn(0).ok_or(EINVAL)?;
                // SAFETY: The frame is the first of our slab object, which we own.
                pieces(unsafe { dmabuf::pfn_to_page(pfn) }, mem.size())?;
            }
            Self::Vmalloc(mem) => {
                let pages = mem.size() >> PAGE_SHIFT;
                let mut start = 0;
                for i in 1..=pages {
                    if i % sys::RESCHED_EVERY == 0 {
                        sys::cond_resched();
                    }
                    if i < pages && mem.pfn(i) == mem.pfn(i - 1).map(|p| p + 1) {
                        continue;
                    }
                    // SAFETY: Page `start` lies inside our live vmalloc allocation.
                    let page = unsafe { Vmalloc::to_page(mem.ptr().add(start << PAGE_SHIFT)) };
                    // SAFETY: A page pointer of the allocation is never null.
                    let page = unsafe { NonNull::new_unchecked(page.as_ptr()) };
                    pieces(page, (i - start) << PAGE_SHIFT)?;
                    start = i;
                }
            }
            Self::Pages(run) => {
                let first = run.page(0).ok_or(EINVAL)?;
                // SAFETY: A page pointer of the run is never null.
                let first = unsafe { NonNull::new_unchecked(first.as_ptr()) };
                pieces(first, run.count() << PAGE_SHIFT)?;
            }
        }
        Ok(count)
    }

    /// The number of pages of the memory.
    fn pages(&self) -> usize {
        match self {
            Self::Slab(mem) | Self::Vmalloc(mem) => mem.size() >> PAGE_SHIFT,
            Self::Pages(run) => run.count(),
        }
    }

    /// Maps page `index` of this memory at the faulting address of a normal VMA again, as
    /// [`Memory::map`] did (after MADV_DONTNEED zapped it). Returns the fault code.
    pub(crate) fn refault(&self, f: &sys::Fault, index: usize) -> u32 {
        match self {
            Self::Slab(mem) => match mem.pfn(index) {
                // SAFETY: The frame is page `index` of the buffer, which the VMA holds.
                Some(pfn) => unsafe { f.insert_mixed(pfn) },
                None => sys::fault_result::SIGBUS,
            },
            Self::Vmalloc(mem) => {
                if index >= mem.size() >> PAGE_SHIFT {
                    return sys::fault_result::SIGBUS;
                }
                // SAFETY: Page `index` lies inside our live vmalloc allocation (checked above),
                // which outlives the borrowed page.
                let page = unsafe { Vmalloc::to_page(mem.ptr().add(index << PAGE_SHIFT)) };
                // SAFETY: An order-0 page of the buffer, which the VMA holds.
                unsafe { f.insert_page(&page) }
            }
            Self::Pages(run) => match run.page(index) {
                // SAFETY: An order-0 page of the buffer, which the VMA holds.
                Some(page) => unsafe { f.insert_page(&page) },
                None => sys::fault_result::SIGBUS,
            },
        }
    }

    /// The kernel address of the memory: slab and vmalloc memory and a contiguous page run are
    /// each virtually contiguous in the kernel.
    pub(crate) fn kaddr(&self) -> NonNull<u8> {
        match self {
            Self::Slab(mem) | Self::Vmalloc(mem) => mem.ptr(),
            Self::Pages(run) => run.kaddr(),
        }
    }

    /// Copies `dest.len()` bytes, or up to `end`, from byte `offset` of the memory into `dest`.
    /// Returns the bytes copied: fewer when the destination faults or a signal is pending.
    ///
    /// The caller guarantees `offset <= end` and that `end` is at most the memory's size.
    pub(crate) fn read(&self, offset: usize, end: usize, dest: &mut IovIterDest<'_>) -> usize {
        let base = self.kaddr().as_ptr();
        let stop = end.min(offset.saturating_add(dest.len()));
        copy_in_chunks(offset, stop, |at, len| {
            // SAFETY: `offset <= at < at + len <= stop <= end`: inside the memory, which we own
            // for as long as `&self` lives.
            unsafe { sys::copy_to_iter(base.add(at), len, dest) }
        })
    }

    /// Copies `source.len()` bytes, or up to `end`, from `source` into the memory at byte
    /// `offset`. Returns the bytes copied, as [`Memory::read`] does.
    pub(crate) fn write(&self, offset: usize, end: usize, source: &mut IovIterSource<'_>) -> usize {
        let base = self.kaddr().as_ptr();
        let stop = end.min(offset.saturating_add(source.len()));
        copy_in_chunks(offset, stop, |at, len| {
            // SAFETY: As in `read`. Writing through `&self` is sound: the memory is not a Rust
            // object but bytes shared with user space, only ever touched through raw pointers.
            unsafe { sys::copy_from_iter(base.add(at), len, source) }
        })
    }
}

/// The pages [`Memory::map`] inserts with one call: 4 KiB of page pointers, allocated once per
/// mmap.
const INSERT_BATCH: usize = 512;

/// How many bytes one allocation may take when `available` bytes are available: all but a
/// sixteenth of RAM (`total`).
///
/// `__GFP_RETRY_MAYFAIL` keeps the allocation itself from invoking the OOM killer, but while a
/// buffer close to all free memory is being gathered every other task's allocations find
/// nothing, and they do invoke it. A vmalloc of 5.9 GiB in an 8 GiB guest with a CMA area had
/// the OOM killer take the allocating task and then panic with no task left to kill (found by
/// `make bench`). Refusing up front what would leave less than the reserve avoids that.
fn headroom(available: u64, total: u64) -> u64 {
    available.saturating_sub(total / 16)
}

/// Runs `copy(at, len)` over `[start, end)` in chunks of at most 1 MiB, so a long transfer stops
/// early for a pending signal; stops at the first short copy. Returns the bytes copied.
fn copy_in_chunks(start: usize, end: usize, mut copy: impl FnMut(usize, usize) -> usize) -> usize {
    const CHUNK: usize = 1 << 20;
    let mut at = start;
    while at < end {
        let len = (end - at).min(CHUNK);
        let done = copy(at, len);
        at += done;
        if done < len || kernel::current!().signal_pending() {
            break;
        }
    }
    at - start
}

#[kunit_tests(contigmem_memory)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_abi() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(Kind::from_abi(i as u32), Ok(*kind));
            assert_eq!(kind.to_abi(), i as u32);
        }
        assert_eq!(Kind::from_abi(abi::KIND_COUNT), Err(EINVAL));
        assert_eq!(Kind::from_abi(u32::MAX), Err(EINVAL));
        assert_eq!(Kind::Huge.to_abi(), abi::KIND_HUGE);
    }

    #[test]
    fn limits() {
        let block = 1u64 << (MAX_PAGE_ORDER + PAGE_SHIFT);
        assert_eq!(Kind::Kmalloc.max_size(u64::MAX), block);
        assert_eq!(Kind::Pages.max_size(u64::MAX), block);
        assert_eq!(Kind::Kmalloc.max_size(PAGE_SIZE), PAGE_SIZE);
        assert!(Kind::Huge.max_size(u64::MAX) <= sys::totalram_bytes());
        assert!(!Kind::Vmalloc.contiguous());
        assert_eq!(headroom(1 << 30, 4 << 30), 768 << 20);
        assert_eq!(headroom(100 << 20, 4 << 30), 0);
        assert!(Kind::Huge.contiguous() && Kind::Kzalloc.contiguous());
    }

    #[test]
    fn span_counts_what_the_allocator_takes() {
        let req = |kind, size, align| Request {
            kind,
            size,
            align,
            uninit: false,
            huge_map: false,
            node: -1,
            strict_node: false,
            phys_limit: 0,
            cache: Cache::WriteBack,
        };
        // 4 MiB aligned to 2 GiB: 2 GiB are isolated and migrated, then all but 4 MiB freed.
        assert_eq!(req(Kind::Huge, 4 << 20, 2 << 30).span(), 2 << 30);
        assert_eq!(req(Kind::Huge, 8 << 20, PAGE_SIZE).span(), 8 << 20);
        assert_eq!(req(Kind::Huge, 12 << 20, 8 << 20).span(), 16 << 20);
        assert_eq!(req(Kind::Pages, 12 << 10, PAGE_SIZE).span(), 16 << 10);
        assert_eq!(req(Kind::Pages, 4 << 10, 64 << 10).span(), 64 << 10);
        assert_eq!(req(Kind::Kmalloc, 12 << 10, PAGE_SIZE).span(), 12 << 10);
    }
}
