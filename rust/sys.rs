// SPDX-License-Identifier: GPL-2.0

//! The C calls the kernel crate has no abstraction for, each behind a safe function.
//!
//! Everything that touches `kernel::bindings` directly lives here, so the rest of the crate never
//! sees a raw pointer it must reason about. Each function states what it relies on.

use core::ptr::NonNull;

use crate::abi;

use kernel::{
    bindings,
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    mm::virt::{
        VmaMixedMap,
        VmaNew,
        VmaRef, //
    },
    page::BorrowedPage,
    prelude::*, //
};

/// `O_RDONLY`, `O_WRONLY`: file access modes.
pub(crate) const O_RDONLY: u32 = bindings::O_RDONLY;
/// See [`O_RDONLY`].
pub(crate) const O_WRONLY: u32 = bindings::O_WRONLY;
// The ABI spells out the file flags EXPORT takes; they are the kernel's.
const _: () = assert!(
    crate::abi::O_CLOEXEC == bindings::O_CLOEXEC && crate::abi::O_ACCMODE == bindings::O_ACCMODE
);

/// The size of a page, as a `u64` for ABI arithmetic.
pub(crate) const PAGE_SIZE: u64 = kernel::page::PAGE_SIZE as u64;
/// log2 of [`PAGE_SIZE`].
pub(crate) const PAGE_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;
/// The size a PUD entry maps (1 GiB on x86-64).
pub(crate) const PUD_SIZE: u64 = 1 << bindings::PUD_SHIFT;
/// The largest order the buddy allocator hands out (`MAX_PAGE_ORDER`).
pub(crate) const MAX_PAGE_ORDER: u32 = bindings::MAX_PAGE_ORDER;

pub(crate) mod debugfs;
pub(crate) mod dmabuf;

/// Whether the current task has `CAP_SYS_ADMIN` in the initial user namespace, without an audit
/// record when it has not.
///
/// Called when a file is opened, this is `/proc/pid/pagemap`'s rule for showing physical
/// addresses, `file_ns_capable(file, &init_user_ns, CAP_SYS_ADMIN)`: the file's credentials are
/// its opener's, which are the current task's during `open`. A task without the capability is
/// refused quietly, so that a loop of calls writes no audit records.
pub(crate) fn privileged() -> bool {
    // When it grants the capability, `ns_capable_noaudit` sets `PF_SUPERPRIV` in the current
    // task's flags (the accounting of "used superuser privileges"), which only that task touches.
    // SAFETY: It reads the current task's credentials; `init_user_ns` is a static that lives for
    // ever, and any capability number is accepted.
    unsafe {
        bindings::ns_capable_noaudit(
            core::ptr::addr_of_mut!(bindings::init_user_ns),
            bindings::CAP_SYS_ADMIN as i32,
        )
    }
}

/// Whether the current system call comes from a 32-bit (compat) process, whose `mmap2` takes
/// the offset in pages in 32 bits.
pub(crate) fn in_compat_syscall() -> bool {
    // SAFETY: Reads the current task's syscall state, which any process context may do.
    unsafe { contigmem_in_compat_syscall() }
}

// The C helpers of `helpers.c`, for static inlines of the kernel headers. `struct page` and
// `struct vm_fault` only pass by pointer; the lint sees bindgen's empty placeholders of some of
// their members (as the kernel crate's own bindings allow).
#[allow(improper_ctypes)]
extern "C" {
    fn contigmem_numa_mem_id() -> core::ffi::c_int;
    fn contigmem_pfn_to_nid(pfn: core::ffi::c_ulong) -> core::ffi::c_int;
    fn contigmem_cond_resched();
    fn contigmem_fatal_signal_pending() -> bool;
    fn contigmem_in_compat_syscall() -> bool;
    fn contigmem_folio_unfreeze(head: *mut bindings::page);
    fn contigmem_folio_put(head: *mut bindings::page);
    fn contigmem_insert_folio_pmd(
        vmf: *mut bindings::vm_fault,
        head: *mut bindings::page,
        write: bool,
    ) -> bindings::vm_fault_t;
    fn contigmem_fault_page(
        vmf: *mut bindings::vm_fault,
        page: *mut bindings::page,
    ) -> bindings::vm_fault_t;
    fn contigmem_folio_hwpoisoned(head: *mut bindings::page) -> bool;
    fn contigmem_cache_modes() -> bool;
    fn contigmem_set_memory_cache(
        addr: *mut core::ffi::c_void,
        numpages: core::ffi::c_int,
        mode: core::ffi::c_int,
    ) -> core::ffi::c_int;
    fn contigmem_vma_set_cache(vma: *mut bindings::vm_area_struct, mode: core::ffi::c_int);
    fn contigmem_mb();
}

/// A caching mode of memory (`enum contigmem_cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cache {
    /// Write-back: normal cached memory.
    WriteBack,
    /// Write-combining (PAT WC).
    WriteCombining,
    /// Uncached (PAT UC-).
    Uncached,
}

impl Cache {
    /// Every mode, in ABI order.
    pub(crate) const ALL: [Cache; abi::CACHE_COUNT as usize] =
        [Cache::WriteBack, Cache::WriteCombining, Cache::Uncached];

    /// The mode with ABI number `raw`, or `EINVAL`.
    pub(crate) fn from_abi(raw: u32) -> Result<Self> {
        Self::ALL.get(raw as usize).copied().ok_or(EINVAL)
    }

    /// The ABI number of this mode (the value `helpers.c` takes too).
    pub(crate) fn to_abi(self) -> u32 {
        self as u32
    }

    /// Whether the kernel can give RAM modes other than write-back (x86 with PAT enabled).
    pub(crate) fn others_available() -> bool {
        // SAFETY: Reads a boot-time setting.
        unsafe { contigmem_cache_modes() }
    }
}

/// `EOPNOTSUPP` (the kernel crate lists `ENOTSUPP`, the kernel-internal 524 that userspace does
/// not know).
pub(crate) fn eopnotsupp() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// Gives the direct map of `pages` pages from `addr` the mode `mode` (write-back: back to
/// normal), as the pages' PAT memtype too, [`CACHE_CHUNK`] pages at a time with a reschedule
/// point between two: the kernel flushes the caches of every page it changes, with no
/// reschedule point of its own, which for a 64 GiB buffer in one call would hold the CPU for
/// seconds. Stops at the first failure, with the pages before it changed.
///
/// # Safety
///
/// `addr` must be the direct-map address of `pages` physically contiguous pages the caller
/// owns, none of them mapped anywhere else with a different mode.
unsafe fn set_memory_cache(addr: NonNull<u8>, pages: usize, mode: Cache) -> Result {
    let mut done = 0;
    while done < pages {
        if done > 0 {
            cond_resched();
            // A task being killed stops giving pages a mode; going back to write-back never
            // stops (the pages must not be freed otherwise).
            if mode != Cache::WriteBack && fatal_signal_pending() {
                return Err(EINTR);
            }
        }
        let n = CACHE_CHUNK.min(pages - done);
        // The call changes only the attributes of the pages, splitting large direct-map pages.
        // SAFETY: By the safety requirements the range is direct-mapped memory we own, and
        // `[done, done + n)` lies inside it.
        let ret = unsafe {
            contigmem_set_memory_cache(
                addr.as_ptr().add(done << PAGE_SHIFT).cast(),
                n as core::ffi::c_int,
                mode.to_abi() as core::ffi::c_int,
            )
        };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        done += n;
    }
    Ok(())
}

/// The pages [`set_memory_cache`] changes with one call: 4 MiB.
const CACHE_CHUNK: usize = 1 << MAX_PAGE_ORDER;

/// A full memory barrier: `mb()` (on x86 `mfence`, which drains the write-combining buffers
/// too).
pub(crate) fn memory_barrier() {
    // SAFETY: A barrier instruction, valid anywhere.
    unsafe { contigmem_mb() }
}

/// `NUMA_NO_NODE`: no node asked for; the allocators follow the task's memory policy.
pub(crate) const NUMA_NO_NODE: i32 = bindings::NUMA_NO_NODE;

/// The local node of the calling CPU (`numa_mem_id()`: on x86, which has no memoryless-node
/// support, the CPU's own node, whose zonelist falls back to the nearest nodes with memory).
/// The task may migrate right after; the answer is a preference, as it is for the kernel.
pub(crate) fn local_node() -> i32 {
    // SAFETY: `numa_mem_id` reads a per-CPU variable; any context may call it.
    unsafe { contigmem_numa_mem_id() }
}

/// Yields the CPU if a reschedule is due, so that a long loop of the module does not hold it
/// (a soft lockup on kernels without preemption). Must be called from a context that may sleep
/// and holds no spinlock: the ioctls, mmap and VMA callbacks that take no lock of their own.
pub(crate) fn cond_resched() {
    // SAFETY: `cond_resched` may sleep; our callers are process context with no spinlock held
    // (the function's rule, checked by `might_sleep` under DEBUG_ATOMIC_SLEEP).
    unsafe { contigmem_cond_resched() }
}

/// Whether the current task has a fatal signal pending (it is being killed): a long loop
/// stops with `EINTR` rather than make it wait.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: Reads the current task's pending signals, which any process context may do.
    unsafe { contigmem_fatal_signal_pending() }
}

/// The node of page frame `pfn`.
///
/// # Safety
///
/// `pfn` must be a page frame the caller owns (so that its `struct page` is valid and stays so).
unsafe fn pfn_to_nid(pfn: u64) -> i32 {
    // SAFETY: By the safety requirements the frame's `struct page` is valid; `page_to_nid` reads
    // its flags.
    unsafe { contigmem_pfn_to_nid(pfn as core::ffi::c_ulong) }
}

/// Whether `nid` names an online NUMA node.
pub(crate) fn node_online(nid: i32) -> bool {
    let Ok(n) = usize::try_from(nid) else {
        return false;
    };
    if n >= bindings::MAX_NUMNODES as usize {
        return false;
    }
    let bits_per_long = usize::BITS as usize;
    // SAFETY: `node_states` is a global array that lives as long as the kernel; `N_ONLINE` is a
    // valid index into it, and reading a word of its bitmap races only benignly with hotplug.
    let word = unsafe {
        core::ptr::addr_of!(bindings::node_states[bindings::node_states_N_ONLINE as usize].bits)
            .cast::<usize>()
            .add(n / bits_per_long)
            .read_volatile()
    };
    word & (1 << (n % bits_per_long)) != 0
}

/// The memory the kernel manages, in bytes (`totalram_pages() << PAGE_SHIFT`).
pub(crate) fn totalram_bytes() -> u64 {
    let mut info = core::mem::MaybeUninit::<bindings::sysinfo>::zeroed();
    // SAFETY: `si_meminfo` fills the `struct sysinfo` we pass, which lives on our stack.
    unsafe { bindings::si_meminfo(info.as_mut_ptr()) };
    // SAFETY: Zeroed memory is a valid `sysinfo` (plain integers), and `si_meminfo` filled it.
    let info = unsafe { info.assume_init() };
    (info.totalram as u64).saturating_mul(u64::from(info.mem_unit))
}

/// Bytes that can be allocated for the kernel's own use without reclaiming more than page
/// cache: `MemAvailable` (`si_mem_available()`) less the free CMA pages, which only movable
/// allocations may take.
pub(crate) fn available_bytes() -> u64 {
    // SAFETY: `si_mem_available` only reads counters.
    let available = unsafe { bindings::si_mem_available() }.max(0) as u64;
    // SAFETY: `vm_zone_stat` is the kernel's array of global zone counters, always valid; a
    // volatile read of one `atomic_long_t` counter is what `global_zone_page_state()` does.
    let free_cma = unsafe {
        core::ptr::addr_of!(
            bindings::vm_zone_stat[bindings::zone_stat_item_NR_FREE_CMA_PAGES as usize].counter
        )
        .read_volatile()
    }
    .max(0) as u64;
    available.saturating_sub(free_cma) << PAGE_SHIFT
}

/// GFP flags for the raw page allocator calls (the kernel crate's `Flags` cannot express
/// `__GFP_RETRY_MAYFAIL`).
pub(crate) mod gfp {
    use kernel::bindings;

    /// Try hard, but fail rather than invoke the OOM killer, and without a warning: the failure
    /// is reported to the caller.
    pub(crate) const ALLOC: u32 =
        bindings::GFP_KERNEL | bindings::__GFP_NOWARN | (1 << bindings::___GFP_RETRY_MAYFAIL_BIT);
    /// Charge the caller's memory cgroup.
    pub(crate) const ACCOUNT: u32 = 1 << bindings::___GFP_ACCOUNT_BIT;

    /// `__GFP_THISNODE` when `strict`: the page allocator (and kmalloc, vmalloc and
    /// `alloc_contig_pages`, through `node_zonelist`'s no-fallback list) takes pages of the
    /// given node only, and fails rather than fall back to another.
    pub(crate) const fn this_node(strict: bool) -> u32 {
        if strict {
            1 << bindings::___GFP_THISNODE_BIT
        } else {
            0
        }
    }

    /// The zone modifier for memory below physical address `limit` (0: no bound): `__GFP_DMA32`
    /// below 4 GiB (ZONE_DMA32; the test kernels have no ZONE_DMA, and with one the DMA32 zone
    /// starts above it, so a bound below 16 MiB still gets ZONE_DMA32 and the check after the
    /// allocation), nothing from 4 GiB up.
    pub(crate) const fn below(limit: u64) -> u32 {
        if limit != 0 && limit <= 1 << 32 {
            1 << bindings::___GFP_DMA32_BIT
        } else {
            0
        }
    }

    /// `__GFP_ZERO` when `zero`.
    pub(crate) const fn zero(zero: bool) -> u32 {
        if zero {
            bindings::__GFP_ZERO
        } else {
            0
        }
    }
}

/// The physical address behind a kernel virtual address (direct map or vmalloc).
///
/// `slow_virt_to_phys` walks the kernel page tables, so it works for both kinds of address.
pub(crate) fn virt_to_phys(addr: NonNull<u8>) -> u64 {
    // SAFETY: `slow_virt_to_phys` only reads the kernel page tables; the callers pass addresses of
    // live allocations, which are mapped.
    unsafe { bindings::slow_virt_to_phys(addr.as_ptr().cast()) }
}

/// Memory from kmalloc or vmalloc, allocated with GFP flags the kernel crate's `Flags` cannot
/// express (`__GFP_RETRY_MAYFAIL`: fail instead of invoking the OOM killer, globally or in the
/// caller's memory cgroup).
///
/// # Invariants
///
/// `ptr` is a live, page-aligned allocation of `size` bytes, owned by this object, from
/// `krealloc_node_align` when `vmalloc` is false and from `vrealloc_node_align` when it is true.
pub(crate) struct RawAlloc {
    ptr: NonNull<u8>,
    size: usize,
    vmalloc: bool,
}

// SAFETY: A `RawAlloc` owns its memory exclusively; kmalloc and vmalloc memory may be used and
// freed from any thread.
unsafe impl Send for RawAlloc {}
// SAFETY: `&RawAlloc` only gives out the address and the size.
unsafe impl Sync for RawAlloc {}

impl RawAlloc {
    /// `kmalloc_node(size, gfp, nid)`, page aligned.
    pub(crate) fn kmalloc(size: usize, gfp: u32, nid: i32) -> Result<Self> {
        Self::alloc(size, gfp, nid, false)
    }

    /// `vmalloc_node(size, gfp, nid)`.
    pub(crate) fn vmalloc(size: usize, gfp: u32, nid: i32) -> Result<Self> {
        Self::alloc(size, gfp, nid, true)
    }

    fn alloc(size: usize, gfp: u32, nid: i32, vmalloc: bool) -> Result<Self> {
        if size == 0 || size % (PAGE_SIZE as usize) != 0 {
            return Err(EINVAL);
        }
        let align = PAGE_SIZE as usize;
        // `nid` is an online node or `NUMA_NO_NODE` (the caller's check): both allocators take it.
        // SAFETY: A null pointer asks for a new allocation; `size` is non-zero, `align` a power
        // of two, `gfp` built from the kernel's flags and `nid` valid (above).
        let raw = unsafe {
            if vmalloc {
                bindings::vrealloc_node_align(core::ptr::null(), size, align, gfp, nid)
            } else {
                bindings::krealloc_node_align(core::ptr::null(), size, align, gfp, nid)
            }
        };
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: `ptr` is a fresh allocation of `size` bytes from the function `vmalloc`
        // names; its alignment is checked next.
        let this = Self { ptr, size, vmalloc };
        if (ptr.as_ptr() as usize) % (PAGE_SIZE as usize) != 0 {
            return Err(ENOMEM);
        }
        Ok(this)
    }

    /// The start of the allocation.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The size of the allocation in bytes, a multiple of the page size.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The page frame of page `i` of the allocation, `None` past its end.
    pub(crate) fn pfn(&self, i: usize) -> Option<u64> {
        if i >= self.size >> PAGE_SHIFT {
            return None;
        }
        // SAFETY: Page `i` lies inside our live allocation (checked above).
        let addr = unsafe { self.ptr.as_ptr().add(i << PAGE_SHIFT) };
        Some(if self.vmalloc {
            // SAFETY: `addr` is a mapped page of our vmalloc area, where `vmalloc_to_pfn` finds
            // its page.
            unsafe { bindings::vmalloc_to_pfn(addr.cast()) as u64 }
        } else {
            // SAFETY: `addr` is in the direct map (kmalloc memory), mapped while we own it.
            virt_to_phys(unsafe { NonNull::new_unchecked(addr) }) >> PAGE_SHIFT
        })
    }

    /// The NUMA node of page `i` of the allocation, `None` past its end.
    pub(crate) fn nid(&self, i: usize) -> Option<i32> {
        self.page(i).map(|(_, nid)| nid)
    }

    /// The page frame and the node of page `i` of the allocation, `None` past its end.
    pub(crate) fn page(&self, i: usize) -> Option<(u64, i32)> {
        // SAFETY: The frame is one of our allocation's pages, which we own.
        self.pfn(i).map(|pfn| (pfn, unsafe { pfn_to_nid(pfn) }))
    }

    /// Fills the allocation with zeroes.
    pub(crate) fn zero(&mut self) {
        // SAFETY: By the type invariant `ptr` is valid for writes of `size` bytes, and `&mut
        // self` means no one else accesses it now.
        unsafe { core::ptr::write_bytes(self.ptr.as_ptr(), 0, self.size) };
    }
}

impl Drop for RawAlloc {
    fn drop(&mut self) {
        // `vrealloc` to size 0 is `vfree` (which the bindings do not export), as the kernel
        // crate's `Vmalloc` allocator frees.
        // SAFETY: By the type invariant `ptr` is a live allocation of the matching allocator,
        // owned by us; no VMA maps it any more (each VMA holds the buffer that owns this).
        unsafe {
            if self.vmalloc {
                let _ = bindings::vrealloc_node_align(
                    self.ptr.as_ptr().cast(),
                    0,
                    PAGE_SIZE as usize,
                    bindings::GFP_KERNEL,
                    bindings::NUMA_NO_NODE,
                );
            } else {
                bindings::kfree(self.ptr.as_ptr().cast());
            }
        }
    }
}

/// How many pages a long loop handles between two [`cond_resched`] calls.
pub(crate) const RESCHED_EVERY: usize = 4096;

/// The order of a PMD-sized folio (9 on x86-64: 2 MiB).
pub(crate) const PMD_ORDER: u32 = bindings::PMD_SHIFT - PAGE_SHIFT;

/// A run of physically contiguous pages this crate owns: order-0 pages with a reference count
/// each (as `split_page` and `alloc_contig_pages` leave them), or PMD-order folios with one
/// reference each (see [`PageRun::alloc_contig_folios`]).
///
/// # Invariants
///
/// `first` points to the first of `count` pages, physically contiguous from `pfn`, with
/// contiguous `struct page`s (SPARSEMEM_VMEMMAP), owned by this object. The first
/// `folios << PMD_ORDER` of them are `folios` PMD-order folios (compound pages), aligned to
/// their size, of which this object holds one reference each; the rest are order-0 pages, each
/// with a reference this object holds. Dropping the run drops those references; a page or
/// folio still mapped or pinned by someone else is freed by its last `put_page`.
pub(crate) struct PageRun {
    first: NonNull<bindings::page>,
    pfn: u64,
    count: usize,
    folios: usize,
    /// The caching mode given to the run's direct map (and PAT memtype) by
    /// [`PageRun::set_cache`], put back to write-back before the pages are freed.
    cache: Cache,
}

// SAFETY: A `PageRun` owns its pages exclusively; pages may be freed from any thread.
unsafe impl Send for PageRun {}
// SAFETY: `&PageRun` only gives out the PFN, the count and borrowed pages, which are safe to use
// from any thread.
unsafe impl Sync for PageRun {}

/// The physical frame number of `page`.
///
/// # Safety
///
/// `page` must point to a valid `struct page` of memory the caller owns.
unsafe fn page_to_pfn(page: NonNull<bindings::page>) -> u64 {
    // On 64-bit kernels every page is in the direct map: `kmap_local_page` returns its
    // permanent address.
    // SAFETY: By the safety requirements `page` is valid; `kunmap_local` is paired at once.
    unsafe {
        let addr = bindings::kmap_local_page(page.as_ptr());
        let phys = bindings::slow_virt_to_phys(addr);
        bindings::kunmap_local(addr);
        phys >> PAGE_SHIFT
    }
}

impl PageRun {
    /// Allocates `count` contiguous pages from the buddy allocator: one block of order
    /// `order >= log2(count)` (so aligned to `1 << order` pages), split into order-0 pages, the
    /// tail beyond `count` given back at once.
    pub(crate) fn alloc_pages(count: usize, order: u32, gfp: u32, nid: i32) -> Result<Self> {
        if order > MAX_PAGE_ORDER || count == 0 || count > (1usize << order) {
            return Err(EINVAL);
        }
        if nid != NUMA_NO_NODE && !node_online(nid) {
            return Err(EINVAL);
        }
        // `alloc_pages` follows the task's memory policy; `__alloc_pages` indexes the node array
        // with `nid`, and a null nodemask means the zonelist's nodes.
        // SAFETY: `order` is at most `MAX_PAGE_ORDER` (checked above), `gfp` is built by the
        // caller from the kernel's constants, and `nid` is an online node (checked above).
        let raw = unsafe {
            if nid == NUMA_NO_NODE {
                bindings::alloc_pages(gfp, order)
            } else {
                bindings::__alloc_pages_noprof(gfp, order, nid, core::ptr::null_mut())
            }
        };
        let first = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `first` is the head of a fresh, non-compound block of order `order` that we own;
        // `split_page` turns it into `1 << order` order-0 pages with a reference count each.
        unsafe { bindings::split_page(first.as_ptr(), order) };
        for i in count..(1usize << order) {
            // SAFETY: Page `i` lies inside the block we own (a buddy block's `struct page`s are
            // contiguous), and after `split_page` each page is freed on its own with order 0.
            unsafe { bindings::__free_pages(first.as_ptr().add(i), 0) };
        }
        // SAFETY: `first` is a valid page we own.
        let pfn = unsafe { page_to_pfn(first) };
        // INVARIANT: We own the `count` order-0 pages starting at `first`, contiguous from `pfn`.
        Ok(Self {
            first,
            pfn,
            count,
            folios: 0,
            cache: Cache::WriteBack,
        })
    }

    /// Allocates one PMD-order folio (2 MiB on x86-64, aligned to its size) from the buddy
    /// allocator: a buffer of exactly that size that can be mapped with a refcounted PMD.
    pub(crate) fn alloc_folio(gfp: u32, nid: i32) -> Result<Self> {
        if nid != NUMA_NO_NODE && !node_online(nid) {
            return Err(EINVAL);
        }
        let gfp = gfp | (1 << bindings::___GFP_COMP_BIT);
        // SAFETY: As in `alloc_pages`, for the order `PMD_ORDER` (at most `MAX_PAGE_ORDER`).
        let raw = unsafe {
            if nid == NUMA_NO_NODE {
                bindings::alloc_pages(gfp, PMD_ORDER)
            } else {
                bindings::__alloc_pages_noprof(gfp, PMD_ORDER, nid, core::ptr::null_mut())
            }
        };
        let first = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `first` is a valid page we own.
        let pfn = unsafe { page_to_pfn(first) };
        // INVARIANT: With `__GFP_COMP` the block is one compound page of order `PMD_ORDER`
        // with the one reference `alloc_pages` gives, ours.
        Ok(Self {
            first,
            pfn,
            count: 1 << PMD_ORDER,
            folios: 1,
            cache: Cache::WriteBack,
        })
    }

    /// Allocates `count` contiguous pages with `alloc_contig_pages`, aligned to `align_pages`
    /// (a power of two).
    ///
    /// The range asked of the kernel is always whole `MAX_PAGE_ORDER` blocks (see
    /// `Kind::granule` for the kernel BUG this avoids): a multiple of the block is searched
    /// block-aligned; a power of two comes aligned to itself; otherwise the range is
    /// over-allocated by `align_pages` less a block. The unaligned head and the tail (whole
    /// blocks) are given back at once.
    pub(crate) fn alloc_contig(
        count: usize,
        align_pages: usize,
        gfp: u32,
        nid: i32,
    ) -> Result<Self> {
        let total = Self::contig_span(count, align_pages)?;
        if !node_online(nid) {
            // `alloc_contig_pages` takes `node_zonelist(nid)`, which indexes the node array
            // with `nid` on NUMA kernels: `NUMA_NO_NODE` (-1) reads before it (a KASAN
            // global-out-of-bounds, then a general protection fault). Only online nodes come
            // here.
            return Err(EINVAL);
        }
        // `__GFP_THISNODE` picks the node's no-fallback zonelist and is then ignored; a null
        // nodemask means the zonelist's nodes.
        // SAFETY: `total` is non-zero, `gfp` holds only flags `alloc_contig_range` accepts (the
        // caller builds it), and `nid` is an online node (checked above).
        let raw =
            unsafe { bindings::alloc_contig_pages_noprof(total, gfp, nid, core::ptr::null_mut()) };
        let base = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `base` is the first of `total` pages we own.
        let base_pfn = unsafe { page_to_pfn(base) };
        let head = ((base_pfn.next_multiple_of(align_pages as u64)) - base_pfn) as usize;
        let tail = total - head - count;
        // SAFETY: The head `[base_pfn, base_pfn + head)` and the tail after `count` pages lie in
        // the range we just allocated and own; `free_contig_range` frees non-compound pages.
        unsafe {
            if head > 0 {
                bindings::free_contig_range(base_pfn as usize, head as usize);
            }
            if tail > 0 {
                bindings::free_contig_range(
                    (base_pfn + (head + count) as u64) as usize,
                    tail as usize,
                );
            }
        }
        // SAFETY: With SPARSEMEM_VMEMMAP the `struct page`s of a contiguous PFN range are
        // contiguous, and page `head` lies inside the range we allocated.
        let first = unsafe { NonNull::new_unchecked(base.as_ptr().add(head)) };
        // INVARIANT: We own the `count` order-0 pages from `base_pfn + head`, each with a
        // reference count of one (`alloc_contig_pages` leaves them so).
        Ok(Self {
            first,
            pfn: base_pfn + head as u64,
            count,
            folios: 0,
            cache: Cache::WriteBack,
        })
    }

    /// Allocates `count` contiguous pages (a multiple of a PMD-order folio) as
    /// [`Self::alloc_contig`] does, aligned to `align_pages` and at least to a folio, made of
    /// PMD-order folios: memory that can be mapped with refcounted PMD entries
    /// (`vmf_insert_folio_pmd`), which `get_user_pages` can pin.
    ///
    /// `alloc_contig_pages` finds a range but only hands out order-0 pages, and
    /// `alloc_contig_frozen_range` builds a compound page only of an exact buddy block at a
    /// place given to it. So the range is found first (without zeroing), and each folio's
    /// worth of it is then given back and taken again at once as one compound page (zeroed if
    /// `gfp` says so). A given-back piece stays an order-9 buddy block: the block it would
    /// merge with is the other half of its aligned `MAX_PAGE_ORDER` block, which is inside the
    /// run (every HUGE range is whole blocks) and still ours. Should another allocation take
    /// part of it in between, `alloc_contig_frozen_range` migrates that away, or fails; a
    /// failure gives everything back. Each piece costs one `alloc_contig_frozen_range` (page
    /// isolation, a drain of the per-CPU lists, an expedited RCU grace period in
    /// `lru_cache_disable`): the price of folios, measured by `make bench`.
    pub(crate) fn alloc_contig_folios(
        count: usize,
        align_pages: usize,
        gfp: u32,
        nid: i32,
    ) -> Result<Self> {
        let folio = 1usize << PMD_ORDER;
        if count % folio != 0 {
            return Err(EINVAL);
        }
        let mut run = Self::alloc_contig(
            count,
            align_pages.max(folio),
            gfp & !bindings::__GFP_ZERO,
            nid,
        )?;
        for k in 0..count / folio {
            let pfn = (run.pfn as usize) + k * folio;
            // SAFETY: `[pfn, pfn + folio)` is a piece of the run past its folios: order-0 pages
            // we own with a reference each (type invariant), freed here and then no longer
            // ours until taken again below.
            unsafe { bindings::free_contig_range(pfn, folio) };
            // A racing allocation that took part of the piece and cannot be migrated at once
            // (a reference held for a moment) gets two more tries.
            let mut ret = 0;
            for _ in 0..3 {
                // SAFETY: The range lies in one zone (the run does) and is 2 MiB, aligned to
                // its size; `gfp` holds only flags `alloc_contig_range` accepts (the caller's,
                // plus `__GFP_COMP`); 0 is `ACR_FLAGS_NONE`.
                ret = unsafe {
                    bindings::alloc_contig_frozen_range_noprof(
                        pfn,
                        pfn + folio,
                        0,
                        gfp | (1 << bindings::___GFP_COMP_BIT),
                    )
                };
                if ret != -(bindings::EBUSY as i32) {
                    break;
                }
            }
            if ret != 0 {
                // Pieces `[0, k)` are folios, piece `k` was given back, the rest are ours.
                let rest = (k + 1) * folio;
                if rest < count {
                    // SAFETY: The pieces after `k` are order-0 pages we own.
                    unsafe { bindings::free_contig_range(pfn + folio, count - rest) };
                }
                // INVARIANT: What is left to drop is the `k` folios.
                run.count = k * folio;
                return Err(if ret == -(bindings::EINTR as i32) {
                    EINTR
                } else {
                    ENOMEM
                });
            }
            // SAFETY: The range is now one frozen compound page of order `PMD_ORDER` that we
            // own, headed by page `k * folio` of the run; it takes the reference we hold.
            unsafe { contigmem_folio_unfreeze(run.first.as_ptr().add(k * folio)) };
            // INVARIANT: One more leading piece is a folio with our reference.
            run.folios = k + 1;
            if k % 64 == 63 {
                cond_resched();
            }
        }
        Ok(run)
    }

    /// Whether the run is made of PMD-order folios.
    pub(crate) fn is_folios(&self) -> bool {
        self.folios > 0 && self.folios << PMD_ORDER == self.count
    }

    /// Maps the folio that begins at page `i` at the PMD-aligned faulting address of `f`, or
    /// falls back (`i` not the start of one of the run's folios).
    ///
    /// # Safety
    ///
    /// `f` is a fault of a VMA that holds this run's memory, with the folio's place in the
    /// buffer at the aligned faulting address, the whole PMD inside the VMA, and the VMA not a
    /// PFN or mixed map (so the entry is a normal, refcounted one).
    pub(crate) unsafe fn insert_folio_pmd(&self, f: &Fault, i: usize) -> u32 {
        let folio = 1usize << PMD_ORDER;
        if i % folio != 0 || i / folio >= self.folios {
            return fault_result::FALLBACK;
        }
        let head = self.first.as_ptr().wrapping_add(i);
        // SAFETY: Page `i` heads one of our folios (checked above).
        if unsafe { contigmem_folio_hwpoisoned(head) } {
            // PTEs, so that the fault code refuses the poisoned page alone (VM_FAULT_HWPOISON).
            return fault_result::FALLBACK;
        }
        // SAFETY: Page `i` heads one of our folios (checked above), which outlives the VMA's
        // mapping of it (the entry takes a reference of its own); the rest is the caller's.
        unsafe { contigmem_insert_folio_pmd(f.vmf, head, f.write()) }
    }

    /// Answers a PTE fault of `f` with page `i` of the run, to be mapped by the fault code as a
    /// refcounted page of its folio. `SIGBUS` past the end.
    ///
    /// # Safety
    ///
    /// As for [`Self::insert_folio_pmd`], for a single page at the faulting address.
    pub(crate) unsafe fn fault_page(&self, f: &Fault, i: usize) -> u32 {
        if i >= self.count {
            return fault_result::SIGBUS;
        }
        // SAFETY: Page `i` is ours (checked above); the fault code takes the reference the
        // helper gives it along with the page.
        unsafe { contigmem_fault_page(f.vmf, self.first.as_ptr().add(i)) }
    }

    /// The pages [`Self::alloc_contig`] asks of the kernel at once for `count` pages aligned
    /// to `align_pages` (a power of two).
    pub(crate) fn contig_span(count: usize, align_pages: usize) -> Result<usize> {
        if count == 0 || !align_pages.is_power_of_two() {
            return Err(EINVAL);
        }
        let block = 1usize << MAX_PAGE_ORDER;
        let rounded = count.checked_next_multiple_of(block).ok_or(E2BIG)?;
        let natural = rounded.is_power_of_two() && rounded >= align_pages;
        if natural || align_pages <= block {
            Ok(rounded)
        } else {
            rounded.checked_add(align_pages - block).ok_or(E2BIG)
        }
    }

    /// The PFN of the first page.
    pub(crate) fn pfn(&self) -> u64 {
        self.pfn
    }

    /// Page `i` of the run.
    pub(crate) fn page(&self, i: usize) -> Option<BorrowedPage<'_>> {
        if i >= self.count {
            return None;
        }
        // SAFETY: Page `i` lies inside the run (checked above), whose `struct page`s are
        // contiguous by the type invariant and live as long as `self`.
        Some(unsafe { BorrowedPage::from_raw(NonNull::new_unchecked(self.first.as_ptr().add(i))) })
    }

    /// The kernel address of the run. Every page of a 64-bit kernel is in the direct map (there
    /// is no HIGHMEM), where a physically contiguous run is virtually contiguous too.
    pub(crate) fn kaddr(&self) -> NonNull<u8> {
        // SAFETY: By the type invariant `first` is a valid page we own. Without HIGHMEM
        // `kmap_local_page` is `page_address`, the page's permanent direct-map address, so
        // unmapping at once leaves the address valid for as long as we own the page.
        unsafe {
            let addr = bindings::kmap_local_page(self.first.as_ptr());
            bindings::kunmap_local(addr);
            NonNull::new_unchecked(addr.cast())
        }
    }

    /// The NUMA node of page `i`, `None` past the end.
    pub(crate) fn nid(&self, i: usize) -> Option<i32> {
        if i >= self.count {
            return None;
        }
        // SAFETY: Page `i` lies inside the run (checked above), whose pages we own.
        Some(unsafe { bindings::page_to_nid(self.first.as_ptr().add(i)) })
    }

    /// The number of pages.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The caching mode of the run.
    pub(crate) fn cache(&self) -> Cache {
        self.cache
    }

    /// Gives the run's direct-map alias (and PAT memtype) the caching mode `mode`, for as long
    /// as the run lives; the run must be write-back and mapped nowhere else yet. The kernel
    /// flushes the caches of the range as it changes the attribute, so the zeroes written
    /// through the cache reach memory. A failure may leave part of the range changed: the run
    /// counts as changed then, and its drop puts it all back.
    pub(crate) fn set_cache(&mut self, mode: Cache) -> Result {
        if self.cache != Cache::WriteBack {
            return Err(EBUSY);
        }
        if mode == Cache::WriteBack {
            return Ok(());
        }
        self.cache = mode;
        // SAFETY: `kaddr` is the direct-map address of the run's `count` contiguous pages, ours
        // by the type invariant; the caller maps them nowhere yet.
        unsafe { set_memory_cache(self.kaddr(), self.count, mode) }
    }
}

impl Drop for PageRun {
    fn drop(&mut self) {
        if self.cache != Cache::WriteBack {
            // No VMA maps the run any more (each holds the buffer that owns it); the pages must
            // be write-back again before the allocator hands them out. Should that fail they
            // are never freed: a page the next owner maps write-back while the kernel's alias
            // is not would break PAT's one-mode rule.
            // SAFETY: As in `set_cache`: the run's own direct-map range.
            if let Err(e) = unsafe { set_memory_cache(self.kaddr(), self.count, Cache::WriteBack) }
            {
                pr_err!(
                    "cannot make {} pages from pfn {:#x} write-back again ({:?}): leaked\n",
                    self.count,
                    self.pfn,
                    e
                );
                return;
            }
        }
        let folio = 1usize << PMD_ORDER;
        for k in 0..self.folios {
            if k % 64 == 63 {
                cond_resched();
            }
            let head = self.first.as_ptr().wrapping_add(k * folio);
            // SAFETY: By the type invariant piece `k` is a folio we hold.
            if unsafe { contigmem_folio_hwpoisoned(head) } {
                // Freed at order 9 the poisoned page would go back to the page allocator (its
                // check is for order-0 frees only) and be handed out again: the folio is kept
                // out of use for good, as the allocator keeps a poisoned order-0 page.
                continue;
            }
            // SAFETY: By the type invariant piece `k` is a folio whose reference we own; what
            // still maps or pins it holds references of its own.
            unsafe { contigmem_folio_put(head) };
        }
        for i in self.folios * folio..self.count {
            if i % RESCHED_EVERY == RESCHED_EVERY - 1 {
                // A 64 GiB run is 16 million pages; the last reference to a buffer is dropped
                // in process context (FREE, close, munmap) without a spinlock held.
                cond_resched();
            }
            // SAFETY: By the type invariant page `i` is an order-0 page whose reference we own;
            // no VMA maps it any more (each VMA holds the buffer that owns this run).
            unsafe { bindings::__free_pages(self.first.as_ptr().add(i), 0) };
        }
    }
}

#[cfg(CONFIG_HIGHMEM)]
compile_error!(
    "contigmem needs every page in the direct map: build it for a kernel without HIGHMEM"
);

/// Copies up to `len` bytes from kernel address `src` to `dest`; returns the bytes copied, fewer
/// when the destination faults.
///
/// This and [`copy_from_iter`] take raw pointers rather than slices on purpose: the memory is
/// also mapped into user space, which may change it during the copy, so no Rust reference to it
/// may exist.
///
/// # Safety
///
/// `src` must be valid for reads of `len` bytes for the duration of the call.
pub(crate) unsafe fn copy_to_iter(src: *const u8, len: usize, dest: &mut IovIterDest<'_>) -> usize {
    // SAFETY: `src` is valid for `len` bytes by the safety requirements, and `dest` is a valid
    // destination iterator by its type invariant.
    unsafe { bindings::_copy_to_iter(src.cast(), len, dest.as_raw()) }
}

/// Copies up to `len` bytes from `source` to kernel address `dst`; returns the bytes copied,
/// fewer when the source faults.
///
/// # Safety
///
/// `dst` must be valid for writes of `len` bytes for the duration of the call.
pub(crate) unsafe fn copy_from_iter(
    dst: *mut u8,
    len: usize,
    source: &mut IovIterSource<'_>,
) -> usize {
    // SAFETY: `dst` is valid for `len` bytes by the safety requirements, and `source` is a valid
    // source iterator by its type invariant.
    unsafe { bindings::_copy_from_iter(dst.cast(), len, source.as_raw()) }
}

/// The mapping-related raw operations on a new VMA.
pub(crate) mod vma {
    use super::*;

    /// `VM_MAYSHARE`, from its bit number: the kernel crate's `flags::MAYSHARE` (and
    /// `bindings::VM_MAYSHARE`) is `VM_MAYEXEC` in 7.2, through a typo in
    /// `rust/bindings/bindings_helper.h` (`RUST_CONST_HELPER_VM_MAYSHARE = VM_MAYEXEC`), so a
    /// MAP_PRIVATE mapping would pass a test of it. The guest test of MAP_PRIVATE found it.
    pub(crate) const MAYSHARE: bindings::vm_flags_t = 1 << bindings::VMA_MAYSHARE_BIT;

    /// The VMA's page offset (`vm_pgoff`): the mmap offset the caller passed, in pages.
    pub(crate) fn pgoff(vma: &VmaNew) -> u64 {
        // SAFETY: `vma` is a valid VMA under construction; `vm_pgoff` is a plain field set by
        // mmap before calling the driver and not changed concurrently.
        unsafe { (*vma.as_ptr()).vm_pgoff as u64 }
    }

    /// Maps the page frame `pfn` at `addr` of a `VM_MIXEDMAP` VMA as a special PTE: for memory
    /// without a refcountable `struct page` of its own, such as slab objects.
    pub(crate) fn insert_mixed(vma: &VmaMixedMap, addr: usize, pfn: u64) -> Result {
        if addr < vma.start() || addr >= vma.end() {
            return Err(EINVAL);
        }
        // SAFETY: `vma` is a valid mixed-map VMA whose mmap lock is held (we are in its mmap
        // callback), `addr` lies inside it (checked above), and the caller maps memory that
        // outlives the VMA (the VMA holds a reference to the buffer owning it).
        let ret = unsafe { bindings::vmf_insert_mixed(vma.as_ptr(), addr, pfn as usize) };
        if ret == bindings::vm_fault_reason_VM_FAULT_NOPAGE {
            Ok(())
        } else if ret & bindings::vm_fault_reason_VM_FAULT_OOM != 0 {
            Err(ENOMEM)
        } else {
            Err(EFAULT)
        }
    }

    /// Maps `pages` (order-0 pages, or pages of driver-allocated folios) at `addr` onwards in a
    /// `VM_MIXEDMAP` VMA as refcounted normal pages, with `vm_insert_pages`.
    pub(crate) fn insert_pages(
        vma: &VmaMixedMap,
        addr: usize,
        pages: &mut [*mut bindings::page],
    ) -> Result {
        let len = pages.len() << PAGE_SHIFT;
        if addr < vma.start() || vma.end() - addr < len {
            return Err(EINVAL);
        }
        let mut num = pages.len();
        // We are in the VMA's mmap callback; the VMA holds the buffer owning the pages.
        // SAFETY: `vma` is a valid mixed-map VMA whose mmap lock is held for writing, the range
        // lies inside it (checked above), and the `num` pages outlive the VMA.
        let ret =
            unsafe { bindings::vm_insert_pages(vma.as_ptr(), addr, pages.as_mut_ptr(), &mut num) };
        match ret {
            0 => Ok(()),
            r => Err(Error::from_errno(r)),
        }
    }

    /// Makes the new VMA a PFN map (`VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP`), as
    /// `remap_pfn_range` would: its pages are inserted by the fault handlers as PFNs, at PTE,
    /// PMD or PUD level.
    pub(crate) fn set_pfnmap(vma: &VmaNew) {
        let set = (bindings::VM_PFNMAP
            | bindings::VM_IO
            | bindings::VM_DONTEXPAND
            | bindings::VM_DONTDUMP) as bindings::vm_flags_t;
        // SAFETY: The VMA is being set up in the mmap callback and is not shared yet (as in
        // `VmaNew::update_flags`); these flags are valid for a driver mapping.
        unsafe { (*vma.as_ptr()).__bindgen_anon_2.vm_flags |= set };
    }

    /// Gives the user mappings of the new VMA the caching mode `mode`: every entry inserted
    /// from now on (at mmap, on fault, as PTEs, PMDs or PUDs) takes it, and the kernel keeps it
    /// when it recomputes the VMA's protection (mprotect).
    pub(crate) fn set_cache(vma: &VmaNew, mode: Cache) {
        if mode != Cache::WriteBack {
            // SAFETY: The VMA is being set up in the mmap callback and is not shared yet (as in
            // `set_pfnmap`); nothing is mapped in it yet.
            unsafe { contigmem_vma_set_cache(vma.as_ptr(), mode.to_abi() as core::ffi::c_int) };
        }
    }

    /// Marks the new VMA `VM_HUGEPAGE` (as MADV_HUGEPAGE would): with transparent huge pages
    /// set to `madvise` (or `always`) the fault code then offers a file VMA's `huge_fault`
    /// PMD-sized faults (`vma_can_map_huge_file`); with `never`, or THP disabled for the
    /// process, it does not, and the VMA is mapped by PTEs.
    pub(crate) fn set_hugepage(vma: &VmaNew) {
        // SAFETY: As in `set_pfnmap`.
        unsafe { (*vma.as_ptr()).__bindgen_anon_2.vm_flags |= bindings::VM_HUGEPAGE };
    }

    /// Unmaps the PUD-sized (1 GiB) range around `addr` if the VMA covers it whole, so that no
    /// PUD mapping straddles `addr` when the VMA is split there.
    ///
    /// The kernel's VMA split (`__split_vma` -> `vma_adjust_trans_huge`) splits huge PMDs that
    /// straddle the split address, but not huge PUDs: it looks the address up with
    /// `mm_find_pmd`, which takes a present leaf PUD for a PMD table, and `__split_huge_pmd`
    /// then locks a "PMD" inside the 1 GiB of user memory the PUD maps (a general protection
    /// fault, found by this module's tests). Device DAX, the other driver that maps PUDs,
    /// avoids it by refusing unaligned splits (`dev_dax_may_split`); we unmap instead, and the
    /// fault handlers map the range again with the PMDs and PTEs the smaller VMAs allow.
    ///
    /// # Safety
    ///
    /// `vma` is a valid PFN-map VMA of ours and its mm's mmap lock is held for writing (as it is
    /// in the `may_split` callback).
    pub(crate) unsafe fn unmap_pud_straddling(vma: *mut bindings::vm_area_struct, addr: usize) {
        // SAFETY: `vma` is valid and the mmap lock is held for writing for this whole call
        // (safety requirements), more than `VmaRef` needs.
        let vma = unsafe { VmaRef::from_raw(vma) };
        let span = 1usize << bindings::PUD_SHIFT;
        let start = addr & !(span - 1);
        if start == addr || start < vma.start() || vma.end() - start < span {
            // Aligned, or the VMA cannot hold a PUD around `addr`: nothing straddles.
            return;
        }
        // `__vma_start_write` waits out faults that hold the per-VMA lock and keeps new ones from
        // taking it (they fall back to the mmap lock, which we hold), so no fault maps the PUD
        // again before the split. It is idempotent if the VMA is write-locked.
        // SAFETY: The mmap lock is held for writing (safety requirements), as it asserts.
        unsafe { bindings::__vma_start_write(vma.as_ptr(), bindings::TASK_UNINTERRUPTIBLE as i32) };
        // Clears the entries only: the memory is the buffer's, which the VMA holds.
        vma.zap_vma_range(start, span);
    }

    /// Unmaps every other VMA of the caller's address space that maps the same buffer through
    /// the same file as `copy` (same `vm_file` and `vm_private_data`), when `copy` is a new VMA
    /// of the caller's own address space (a split or an mremap move; fork's copies live in the
    /// child's and are left alone).
    ///
    /// mremap moves page tables after it has made the copy, and on x86 it cannot move a PUD
    /// mapping: `get_old_pud` takes a present leaf PUD for a bad table entry, prints
    /// "bad pud" and clears it. Unmapping first leaves it nothing to move; the fault handlers
    /// map the new place on first touch.
    ///
    /// # Safety
    ///
    /// `copy` is a valid VMA of ours being set up by the kernel (`vm_ops->open`), with its mm's
    /// mmap lock held for writing when that mm is the caller's (split and mremap hold it).
    pub(crate) unsafe fn unmap_siblings(copy: *mut bindings::vm_area_struct) {
        // SAFETY: `copy` is valid (safety requirements); `vm_mm`, `vm_file` and
        // `vm_private_data` were copied from the original and do not change during `open`.
        let (mm, file, data) = unsafe { ((*copy).vm_mm, (*copy).vm_file, (*copy).vm_private_data) };
        // SAFETY: Reading `current->mm` of the running task is not a data race.
        let own = unsafe { (*bindings::get_current()).mm };
        if mm != own {
            return;
        }
        let mut addr = 0;
        loop {
            // SAFETY: `mm` is the caller's, whose mmap lock is held (safety requirements).
            let vma = unsafe { bindings::find_vma(mm, addr) };
            if vma.is_null() {
                break;
            }
            // SAFETY: `find_vma` returned a VMA of `mm`, valid while the mmap lock is held.
            let vma = unsafe { VmaRef::from_raw(vma) };
            // SAFETY: As above: the fields are stable under the mmap lock.
            let same = unsafe {
                (*vma.as_ptr()).vm_file == file && (*vma.as_ptr()).vm_private_data == data
            };
            if same && vma.as_ptr() != copy {
                // SAFETY: The mmap lock is held for writing (safety requirements), as
                // `__vma_start_write` requires; see `unmap_pud_straddling`.
                unsafe {
                    bindings::__vma_start_write(vma.as_ptr(), bindings::TASK_UNINTERRUPTIBLE as i32)
                };
                vma.zap_vma_range(vma.start(), vma.end() - vma.start());
            }
            addr = vma.end();
        }
    }

    /// Installs `ops` and `data` as the VMA's operations and private data.
    ///
    /// # Safety
    ///
    /// `ops` must stay valid for as long as the VMA (the module cannot unload while a VMA exists:
    /// the VMA holds the file, the file the module), and its callbacks must accept `data`.
    pub(crate) unsafe fn set_ops(
        vma: &VmaNew,
        ops: &'static bindings::vm_operations_struct,
        data: *mut core::ffi::c_void,
    ) {
        // SAFETY: `vma` is valid and exclusively ours during the mmap callback.
        unsafe {
            (*vma.as_ptr()).vm_ops = ops;
            (*vma.as_ptr()).vm_private_data = data;
        }
    }
}

/// A page fault on one of our VMAs, as the fault handlers see it.
///
/// # Invariants
///
/// `vmf` points to a valid `struct vm_fault` for the duration of the fault handler that made
/// this object, whose VMA is one of ours (its private data set by `mapping::mmap`).
pub(crate) struct Fault {
    vmf: *mut bindings::vm_fault,
}

/// `vm_fault_t` values.
pub(crate) mod fault_result {
    use kernel::bindings;

    pub(crate) const SIGBUS: u32 = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    pub(crate) const FALLBACK: u32 = bindings::vm_fault_reason_VM_FAULT_FALLBACK;
}

impl Fault {
    /// Wraps `vmf`.
    ///
    /// # Safety
    ///
    /// `vmf` must be the fault a `fault` or `huge_fault` handler of one of our VMAs received,
    /// and the object must not outlive that call.
    pub(crate) unsafe fn from_raw(vmf: *mut bindings::vm_fault) -> Self {
        // INVARIANT: By the safety requirements.
        Self { vmf }
    }

    fn vma(&self) -> *mut bindings::vm_area_struct {
        // SAFETY: By the type invariant `vmf` is valid; `vma` is set by the fault code.
        unsafe { (*self.vmf).__bindgen_anon_1.vma }
    }

    /// The faulting address.
    pub(crate) fn address(&self) -> usize {
        // SAFETY: By the type invariant `vmf` is valid.
        unsafe { (*self.vmf).__bindgen_anon_1.address }
    }

    /// The VMA's start, end and page offset.
    pub(crate) fn vma_range(&self) -> (usize, usize, u64) {
        // SAFETY: The VMA of a fault is valid, and its bounds stable, while the fault code holds
        // its lock, which outlasts `self`.
        let vma = unsafe { VmaRef::from_raw(self.vma()) };
        // SAFETY: As above; `vm_pgoff` is a plain field.
        let pgoff = unsafe { (*self.vma()).vm_pgoff as u64 };
        (vma.start(), vma.end(), pgoff)
    }

    /// The private data `mapping::mmap` set.
    pub(crate) fn private(&self) -> *mut core::ffi::c_void {
        // SAFETY: As in `vma_range`.
        unsafe { (*self.vma()).vm_private_data }
    }

    /// Whether the fault is a write.
    pub(crate) fn write(&self) -> bool {
        // SAFETY: By the type invariant `vmf` is valid.
        unsafe { (*self.vmf).flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0 }
    }

    /// Maps `page` at the faulting address of a normal (`VM_MIXEDMAP`) VMA as a refcounted
    /// page, as the VMA's mmap did before it was zapped (MADV_DONTNEED). A page another thread
    /// mapped first is a success.
    ///
    /// # Safety
    ///
    /// The VMA must be a mixed map, and `page` an order-0 page of memory that outlives it (the
    /// VMA holds its buffer), at the faulting address's place in the buffer.
    pub(crate) unsafe fn insert_page(&self, page: &kernel::page::Page) -> u32 {
        let addr = self.address() & !(PAGE_SIZE as usize - 1);
        // Without `map_pages` the fault code runs `fault` with the mmap lock held for reading
        // (`vmf_can_call_fault` retries a per-VMA-lock fault under it), which is what
        // `vm_insert_page` needs when `VM_MIXEDMAP` is already set (it leaves the flags alone).
        // SAFETY: The VMA is a valid mixed map (safety requirements) under the mmap lock
        // (above), and `addr` lies in the VMA (it faulted there).
        let ret = unsafe { bindings::vm_insert_page(self.vma(), addr, page.as_ptr()) };
        Self::inserted(ret)
    }

    /// Maps page frame `pfn` at the faulting address of a normal VMA as a special PTE, for slab
    /// memory, as [`vma::insert_mixed`] did at mmap time.
    ///
    /// # Safety
    ///
    /// As for [`Fault::insert_page`], for the frame `pfn`.
    pub(crate) unsafe fn insert_mixed(&self, pfn: u64) -> u32 {
        let addr = self.address() & !(PAGE_SIZE as usize - 1);
        // SAFETY: As in `insert_page`; `vmf_insert_mixed` returns a fault code itself.
        unsafe { bindings::vmf_insert_mixed(self.vma(), addr, pfn as usize) }
    }

    /// The fault code for an errno of an insert.
    fn inserted(ret: core::ffi::c_int) -> u32 {
        match ret {
            0 => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            // Another thread's fault mapped it first.
            r if r == -(bindings::EBUSY as i32) => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            r if r == -(bindings::ENOMEM as i32) => bindings::vm_fault_reason_VM_FAULT_OOM,
            _ => fault_result::SIGBUS,
        }
    }

    /// Maps `1 << order` pages from `pfn` at the (aligned) faulting address: a PTE (order 0),
    /// a PMD (order 9) or a PUD (order 18).
    ///
    /// # Safety
    ///
    /// The pages must belong to memory that outlives the VMA (the VMA holds its buffer), lie
    /// inside the VMA at the aligned address, and be aligned to their size.
    pub(crate) unsafe fn insert(&self, pfn: u64, order: u32) -> u32 {
        let pfn = pfn as usize;
        let write = self.write();
        // SAFETY: By the safety requirements; the fault code holds the locks these need.
        unsafe {
            match order {
                0 => bindings::vmf_insert_pfn(
                    self.vma(),
                    self.address() & !(PAGE_SIZE as usize - 1),
                    pfn,
                ),
                o if o == bindings::PMD_SHIFT - PAGE_SHIFT => {
                    bindings::vmf_insert_pfn_pmd(self.vmf, pfn, write)
                }
                o if o == bindings::PUD_SHIFT - PAGE_SHIFT => {
                    bindings::vmf_insert_pfn_pud(self.vmf, pfn, write)
                }
                _ => fault_result::FALLBACK,
            }
        }
    }
}
