// SPDX-License-Identifier: GPL-2.0

//! The C side of dma-buf export, which the kernel crate has no abstraction for: the dma-buf
//! itself and its file descriptor, the scatter table an importer gets, its DMA mapping for the
//! importer's device and the syncs of that mapping.

use core::ptr::NonNull;

use kernel::{
    bindings,
    fs::file::{
        File,
        FileDescriptorReservation, //
    },
    prelude::*,
    sync::aref::ARef,
};

/// The longest scatterlist segment: `scatterlist.length` has 32 bits, and 2 GiB keeps the
/// segments of a large contiguous buffer aligned.
pub(crate) const SEGMENT_MAX: usize = 1 << 31;

/// A `struct page`, by pointer.
pub(crate) type RawPage = bindings::page;

/// A DMA direction (`enum dma_data_direction`), as the dma-buf core passes it.
pub(crate) type Direction = bindings::dma_data_direction;

/// Whether `dir` is `DMA_BIDIRECTIONAL`, `DMA_TO_DEVICE` or `DMA_FROM_DEVICE`.
pub(crate) fn valid_direction(dir: Direction) -> bool {
    matches!(
        dir,
        bindings::dma_data_direction_DMA_BIDIRECTIONAL
            | bindings::dma_data_direction_DMA_TO_DEVICE
            | bindings::dma_data_direction_DMA_FROM_DEVICE
    )
}

/// A scatter table of memory we own, and its DMA mapping for one device while it has one.
///
/// # Invariants
///
/// `table` was set up by `sg_alloc_table` with `nents` entries, of which the first `filled`
/// were set by [`SgTable::push`], each to pages the owner of the table keeps for as long as the
/// table lives. `mapped`, when set, is the device `table` is mapped for with `dma_map_sgtable`,
/// and the direction; the device stays valid while it is mapped (see [`SgTable::map`]).
pub(crate) struct SgTable {
    table: KBox<bindings::sg_table>,
    nents: usize,
    filled: usize,
    next: *mut bindings::scatterlist,
    mapped: Option<(NonNull<bindings::device>, Direction)>,
}

// SAFETY: The table is plain memory the kernel's DMA API may use from any task; the raw pointers
// point into memory it owns (`next`) or to a device that outlives the mapping (`mapped`).
unsafe impl Send for SgTable {}

impl SgTable {
    /// A table of `nents` entries, to be filled by [`SgTable::push`].
    pub(crate) fn new(nents: usize) -> Result<Self> {
        let nents_c = u32::try_from(nents).map_err(|_| E2BIG)?;
        if nents == 0 {
            return Err(EINVAL);
        }
        let mut table = KBox::new(bindings::sg_table::default(), GFP_KERNEL)?;
        // Charged to the importer's memory cgroup, and failing rather than invoking the OOM
        // killer: a 64 GiB buffer at 64 KiB segments is a million entries (32 MiB).
        let gfp = crate::sys::gfp::ALLOC | crate::sys::gfp::ACCOUNT;
        // SAFETY: `table` is a zeroed `sg_table` we own; `sg_alloc_table` chains as many pages
        // of entries as `nents` needs and frees them itself when it fails.
        let ret = unsafe { bindings::sg_alloc_table(&mut *table, nents_c, gfp) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        let next = table.sgl;
        // INVARIANT: The table was set up with `nents` entries; none is filled yet.
        Ok(Self {
            table,
            nents,
            filled: 0,
            next,
            mapped: None,
        })
    }

    /// Sets the next entry to the `len` bytes from the start of `page`.
    ///
    /// # Safety
    ///
    /// The `len` bytes from `page` must be physically contiguous memory that the caller keeps
    /// for as long as the table lives.
    pub(crate) unsafe fn push(&mut self, page: NonNull<bindings::page>, len: usize) -> Result {
        let len = u32::try_from(len).map_err(|_| E2BIG)?;
        if self.filled == self.nents {
            return Err(EINVAL);
        }
        // SAFETY: `next` is entry `filled` of the table (fewer than `nents`, checked above), so
        // a valid entry; the memory is the caller's (the safety requirements).
        unsafe { contigmem_sg_set_page(self.next, page.as_ptr(), len) };
        self.filled += 1;
        if self.filled < self.nents {
            // SAFETY: `next` is a valid entry that is not the table's last, so `sg_next` steps to
            // the next one (across a chain link if need be).
            self.next = unsafe { bindings::sg_next(self.next) };
        }
        // INVARIANT: The entry was set to memory the caller keeps.
        Ok(())
    }

    /// Whether every entry is filled.
    pub(crate) fn is_full(&self) -> bool {
        self.filled == self.nents
    }

    /// Maps the table for DMA by `dev` in direction `dir`; `EBUSY` if it is mapped already.
    ///
    /// # Safety
    ///
    /// `dev` must be a valid device that stays valid until [`SgTable::unmap`] is called or the
    /// table is dropped.
    pub(crate) unsafe fn map(&mut self, dev: NonNull<bindings::device>, dir: Direction) -> Result {
        if self.mapped.is_some() {
            return Err(EBUSY);
        }
        if !self.is_full() {
            return Err(EINVAL);
        }
        // SAFETY: The table is set up and every entry filled (checked above) with memory we
        // keep; `dev` is valid (the safety requirements). It maps every entry or none.
        let ret = unsafe { bindings::dma_map_sgtable(dev.as_ptr(), &mut *self.table, dir, 0) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Mapped for `dev`, which stays valid while it is (the safety requirements).
        self.mapped = Some((dev, dir));
        Ok(())
    }

    /// Ends the DMA mapping, if the table has one.
    pub(crate) fn unmap(&mut self) {
        if let Some((dev, dir)) = self.mapped.take() {
            // SAFETY: By the type invariant the table is mapped for `dev`, which is still valid,
            // with `dir`.
            unsafe { bindings::dma_unmap_sgtable(dev.as_ptr(), &mut *self.table, dir, 0) };
        }
    }

    /// Hands the mapping, if any, to the CPU (`for_cpu`) or back to the device, in the direction
    /// it was mapped with (the DMA API wants the two to agree).
    pub(crate) fn sync(&mut self, for_cpu: bool) {
        if let Some((dev, dir)) = self.mapped {
            // SAFETY: By the type invariant the table is mapped for `dev` (valid) with `dir`.
            unsafe { contigmem_dma_sync_sgtable(dev.as_ptr(), &mut *self.table, dir, for_cpu) };
        }
    }

    /// The table, for the importer.
    pub(crate) fn as_ptr(&mut self) -> *mut bindings::sg_table {
        &mut *self.table
    }
}

impl Drop for SgTable {
    fn drop(&mut self) {
        self.unmap();
        // SAFETY: By the type invariant the table was set up by `sg_alloc_table`, and it is no
        // longer mapped.
        unsafe { bindings::sg_free_table(&mut *self.table) };
    }
}

/// What a device's scatterlist entries must keep to.
#[derive(Clone, Copy)]
pub(crate) struct SegmentLimits {
    /// The longest entry, in bytes: the device's `dma_get_max_seg_size` (64 KiB unless its
    /// driver set a limit), the DMA API's `dma_max_mapping_size` for it (swiotlb's 256 KiB where
    /// it bounces), and [`SEGMENT_MAX`], whichever is least.
    pub(crate) max: usize,
    /// An entry may not cross a multiple of `boundary + 1` (`dma_get_seg_boundary`: 4 GiB for
    /// PCI devices).
    pub(crate) boundary: u64,
}

impl SegmentLimits {
    /// The limits of `dev`; `EINVAL` if an entry could not hold one page.
    ///
    /// # Safety
    ///
    /// `dev` must be a valid device.
    pub(crate) unsafe fn of(dev: NonNull<bindings::device>) -> Result<Self> {
        // SAFETY: By the safety requirements `dev` is valid; the calls read its DMA parameters.
        let (seg, mapping, boundary) = unsafe {
            (
                contigmem_dma_max_seg_size(dev.as_ptr()),
                bindings::dma_max_mapping_size(dev.as_ptr()),
                contigmem_dma_seg_boundary(dev.as_ptr()),
            )
        };
        let page = kernel::page::PAGE_SIZE;
        let max = (seg as usize).min(mapping).min(SEGMENT_MAX) & !(page - 1);
        if max < page || boundary < page as u64 - 1 {
            return Err(EINVAL);
        }
        Ok(Self { max, boundary })
    }

    /// The bytes an entry may take from physical address `phys` when `left` remain.
    pub(crate) fn piece(&self, phys: u64, left: usize) -> usize {
        let to_boundary = (self.boundary - (phys & self.boundary)).saturating_add(1);
        (left.min(self.max) as u64).min(to_boundary) as usize
    }
}

/// The physical address of `page`.
///
/// # Safety
///
/// `page` must be a valid page of memory the caller owns.
pub(crate) unsafe fn page_to_phys(page: NonNull<bindings::page>) -> u64 {
    // SAFETY: By the safety requirements the page is valid.
    (unsafe { contigmem_page_to_pfn(page.as_ptr()) } as u64) << kernel::page::PAGE_SHIFT
}

/// The `struct page` of page frame `pfn`.
///
/// # Safety
///
/// `pfn` must be a page frame the caller owns.
pub(crate) unsafe fn pfn_to_page(pfn: u64) -> NonNull<bindings::page> {
    // SAFETY: By the safety requirements the frame is memory, so it has a `struct page`.
    let page = unsafe { contigmem_pfn_to_page(pfn as core::ffi::c_ulong) };
    // SAFETY: `pfn_to_page` of a valid frame is never null (vmemmap arithmetic).
    unsafe { NonNull::new_unchecked(page) }
}

/// Points `map` at `vaddr`, kernel memory (not I/O memory).
///
/// # Safety
///
/// `map` must be the `iosys_map` the dma-buf core passed to a `vmap` callback.
pub(crate) unsafe fn set_vaddr(map: *mut bindings::iosys_map, vaddr: NonNull<u8>) {
    // SAFETY: By the safety requirements `map` is valid for writes.
    unsafe { contigmem_iosys_map_set_vaddr(map, vaddr.as_ptr().cast()) }
}

/// Exports `size` bytes as a dma-buf with `ops` and the private data `priv_`, opened with the
/// access mode in `file_flags`, and gives it a file descriptor (close-on-exec if `cloexec`):
/// `publish` learns the descriptor before it is installed, and nothing is installed if it fails.
///
/// An error comes with whether `priv_` went to the dma-buf: `false` when the export itself
/// failed (the caller still owns `priv_`), `true` when a later step did (the dma-buf was put,
/// and its `release` callback took `priv_` back).
///
/// # Safety
///
/// `ops` must be callbacks that accept `priv_` as the dma-buf's private data for as long as the
/// dma-buf lives, and release it in `release`; `ops` must live for ever.
pub(crate) unsafe fn export(
    ops: &'static bindings::dma_buf_ops,
    priv_: *mut core::ffi::c_void,
    size: usize,
    file_flags: u32,
    cloexec: bool,
    publish: impl FnOnce(i32) -> Result,
) -> core::result::Result<(), (Error, bool)> {
    let info = bindings::dma_buf_export_info {
        exp_name: c"contigmem".as_char_ptr(),
        owner: crate::THIS_MODULE.as_ptr(),
        ops,
        size,
        flags: file_flags as i32,
        resv: core::ptr::null_mut(),
        priv_,
    };
    // The dma-buf holds our module while it lives, so the callbacks stay loaded.
    // SAFETY: `info` is a valid export request: a static name, our module, callbacks that accept
    // `priv_` (the safety requirements), a page-multiple size and file flags; a null `resv`.
    let dmabuf = unsafe { bindings::dma_buf_export(&info) };
    let dmabuf = match kernel::error::from_err_ptr(dmabuf) {
        Ok(d) => d,
        Err(e) => return Err((e, false)),
    };
    let put = |e: Error| {
        // SAFETY: `dmabuf` is the dma-buf made above, whose one reference (its file's) we
        // still own: this drops it, and its `release` callback takes `priv_` back.
        unsafe { bindings::dma_buf_put(dmabuf) };
        (e, true)
    };
    let flags = if cloexec { bindings::O_CLOEXEC } else { 0 };
    let fd = FileDescriptorReservation::get_unused_fd_flags(flags).map_err(put)?;
    let number = i32::try_from(fd.reserved_fd()).map_err(|_| put(EMFILE))?;
    publish(number).map_err(put)?;
    // SAFETY: A dma-buf's file is valid and is a `struct file`, which `File` wraps
    // transparently; the reference the dma-buf was made with is ours, and `fd_install` takes it.
    let file = unsafe { ARef::from_raw(NonNull::new_unchecked((*dmabuf).file.cast::<File>())) };
    fd.fd_install(file);
    Ok(())
}

#[allow(improper_ctypes)]
extern "C" {
    fn contigmem_pfn_to_page(pfn: core::ffi::c_ulong) -> *mut bindings::page;
    fn contigmem_dma_max_seg_size(dev: *mut bindings::device) -> core::ffi::c_uint;
    fn contigmem_dma_seg_boundary(dev: *mut bindings::device) -> u64;
    fn contigmem_page_to_pfn(page: *mut bindings::page) -> core::ffi::c_ulong;
    fn contigmem_sg_set_page(
        sg: *mut bindings::scatterlist,
        page: *mut bindings::page,
        len: core::ffi::c_uint,
    );
    fn contigmem_dma_sync_sgtable(
        dev: *mut bindings::device,
        sgt: *mut bindings::sg_table,
        dir: Direction,
        for_cpu: bool,
    );
    fn contigmem_iosys_map_set_vaddr(map: *mut bindings::iosys_map, vaddr: *mut core::ffi::c_void);
}
