// SPDX-License-Identifier: GPL-2.0

//! Mapping buffers into user address spaces: the mmap cookie, the checks on a new VMA, and the
//! VMA operations that keep a buffer alive for as long as any VMA maps it.

use kernel::{
    bindings,
    mm::virt::{
        flags,
        VmaNew, //
    },
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};

use crate::{
    buffer::Buffer,
    sys::{
        self,
        MAX_PAGE_ORDER,
        PAGE_SHIFT, //
    },
};

/// A buffer's mmap offset is its id shifted by this many bits; the low bits select the first
/// page of a window (or, for read and write, the byte). Ids stay below [`MAX_ID`] so that
/// offsets fit a non-negative `off_t`.
pub(crate) const COOKIE_SHIFT: u32 = 36;
/// The first id that no longer fits a cookie.
pub(crate) const MAX_ID: u64 = 1 << (63 - COOKIE_SHIFT);
/// The largest buffer: a cookie's span (64 GiB) less one HUGE granule (4 MiB), so that the
/// position just past a buffer's last byte still decodes to that buffer (and reads as its end)
/// rather than carry into the next id's cookie.
pub(crate) const MAX_BUFFER: u64 = (1 << COOKIE_SHIFT) - (1 << (MAX_PAGE_ORDER + PAGE_SHIFT));
/// The bits of a file position or page offset below the id.
const OFFSET_MASK: u64 = (1 << COOKIE_SHIFT) - 1;

/// The mmap offset of buffer `id`.
pub(crate) fn cookie(id: u64) -> u64 {
    id << COOKIE_SHIFT
}

/// Splits a VMA's page offset into the buffer id and the first page of the window.
pub(crate) fn decode(pgoff: u64) -> (u64, u64) {
    let shift = COOKIE_SHIFT - PAGE_SHIFT;
    (pgoff >> shift, pgoff & ((1 << shift) - 1))
}

/// Splits a file position (for read and write) into the buffer id and the byte offset.
pub(crate) fn decode_pos(pos: u64) -> (u64, u64) {
    (pos >> COOKIE_SHIFT, pos & OFFSET_MASK)
}

/// Maps `buf` into `vma`, from page `first_page` for the VMA's length.
///
/// Only shared, non-executable windows inside the buffer are accepted; the VMA cannot grow
/// (`VM_DONTEXPAND`), and it holds a reference to the buffer until it is closed.
pub(crate) fn mmap(buf: Arc<Buffer>, vma: &VmaNew, first_page: u64) -> Result {
    // MAP_SHARED sets VM_MAYSHARE always, VM_SHARED only for files opened for writing: a
    // read-only file maps PROT_READ windows (and the kernel refuses it PROT_WRITE, EACCES).
    if vma.flags() & sys::vma::MAYSHARE == 0 {
        return Err(EINVAL);
    }
    // And never a copy-on-write mapping, whatever the flag constants say: a private writable
    // PFN map would reach `BUG_ON(is_cow_mapping())` in `vmf_insert_pfn` on first touch.
    let may = vma.flags() & (flags::SHARED | flags::MAYWRITE);
    if may == flags::MAYWRITE {
        return Err(EINVAL);
    }
    if vma.executable() {
        return Err(EPERM);
    }
    vma.try_clear_mayexec()?;
    let pages = ((vma.end() - vma.start()) as u64) >> PAGE_SHIFT;
    match first_page.checked_add(pages) {
        Some(end) if end <= buf.pages() => {}
        _ => return Err(EINVAL),
    }
    vma.set_dontexpand();
    // Before anything is inserted: every entry takes the mode of the kernel's alias.
    sys::vma::set_cache(vma, buf.memory.cache());
    let ops = if buf.pfn_map {
        // Nothing is mapped now: the fault handlers map PMDs and PUDs where they can.
        sys::vma::set_pfnmap(vma);
        &HUGE_VM_OPS
    } else if buf.memory.folios().is_some() {
        // Nothing is mapped now: the fault handlers map the folios, by PMDs where they fit.
        sys::vma::set_hugepage(vma);
        &FOLIO_VM_OPS
    } else {
        buf.memory.map(vma, first_page)?;
        &VM_OPS
    };
    buf.mapped();
    // SAFETY: The operations are constants promoted to statics; their callbacks take the
    // pointer from `Arc::into_raw` as their private data, which is what we pass.
    unsafe { sys::vma::set_ops(vma, ops, Arc::into_raw(buf).cast_mut().cast()) };
    Ok(())
}

/// The operations of a huge-mapped VMA: as [`VM_OPS`], plus fault handlers.
const HUGE_VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    fault: Some(vma_fault),
    huge_fault: Some(vma_huge_fault),
    may_split: Some(vma_may_split),
    // SAFETY: All other callbacks are optional and null (`None`) is a valid value for them.
    ..unsafe { core::mem::zeroed() }
};

/// The buffer of a fault on one of our VMAs.
fn fault_buffer(f: &sys::Fault) -> ArcBorrow<'_, Buffer> {
    // SAFETY: The VMA is one of ours, so its private data is the `Arc<Buffer>` pointer that
    // `mmap` or `vma_open` stored, alive while the VMA exists (and so for the fault, which
    // `f` cannot outlive).
    unsafe { ArcBorrow::<Buffer>::from_raw(f.private().cast::<Buffer>()) }
}

/// The buffer page at the start of the `1 << order` pages around the faulting address, if the
/// VMA holds them all, the buffer has them all and its memory there is aligned to their size.
fn fault_window(f: &sys::Fault, buf: &Buffer, order: u32) -> Option<u64> {
    let (start, end, pgoff) = f.vma_range();
    let span = 1usize << (order + PAGE_SHIFT);
    let addr = f.address() & !(span - 1);
    if addr < start || end - addr < span {
        return None;
    }
    let index = decode(pgoff).1 + ((addr - start) >> PAGE_SHIFT) as u64;
    let pages = 1u64 << order;
    if index + pages > buf.pages() || (buf.placement.pfn + index) % pages != 0 {
        return None;
    }
    Some(index)
}

/// Maps the `1 << order` pages around the faulting address of a huge-mapped VMA if
/// [`fault_window`] allows; `FALLBACK` (or `SIGBUS` for a single page) otherwise.
fn fault(f: &sys::Fault, order: u32) -> u32 {
    let miss = if order == 0 {
        sys::fault_result::SIGBUS
    } else {
        sys::fault_result::FALLBACK
    };
    let buf = fault_buffer(f);
    // A PUD where the memory happens to be 1 GiB-aligned would tell where it is.
    if order + PAGE_SHIFT >= bindings::PUD_SHIFT && !buf.pud_ok {
        return miss;
    }
    let Some(index) = fault_window(f, &buf, order) else {
        return miss;
    };
    // SAFETY: The pages from `placement.pfn + index` are the buffer's (checked by
    // `fault_window`), which the VMA holds; they lie at the aligned address inside the VMA and
    // are aligned to their size.
    unsafe { f.insert(buf.placement.pfn + index, order) }
}

/// The operations of a VMA of a buffer made of PMD-order folios: as [`VM_OPS`], with nothing
/// mapped at mmap; the fault handlers map each folio with a refcounted PMD where the VMA holds
/// it whole and aligned, and its pages with PTEs elsewhere. The entries are normal ones (the
/// VMA is no PFN or mixed map), so `get_user_pages` pins them, and the kernel's own code
/// splits, moves and zaps them (a split PMD is zapped, as for a file THP, and faulted again as
/// a PMD where the VMA still holds the whole folio, as PTEs elsewhere). PUD-sized faults never
/// come: for a file VMA that is not DAX the fault code offers orders up to the page cache's
/// largest (`THP_ORDERS_ALL_FILE_DEFAULT`), a PMD on x86-64.
const FOLIO_VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    fault: Some(folio_fault),
    huge_fault: Some(folio_huge_fault),
    // SAFETY: All other callbacks are optional and null (`None`) is a valid value for them.
    ..unsafe { core::mem::zeroed() }
};

/// Maps one page of a folio VMA: the fault code maps it with a PTE.
///
/// # Safety
///
/// Called by the fault code for a VMA with [`FOLIO_VM_OPS`].
unsafe extern "C" fn folio_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: By the safety requirements `vmf` is a fault on one of our VMAs.
    let f = unsafe { sys::Fault::from_raw(vmf) };
    let buf = fault_buffer(&f);
    let (Some(run), Some(index)) = (buf.memory.folios(), fault_window(&f, &buf, 0)) else {
        return sys::fault_result::SIGBUS;
    };
    // SAFETY: The page is the buffer's at the faulting address (`fault_window`), the VMA holds
    // the buffer, and a VMA with these operations is neither a PFN nor a mixed map.
    unsafe { run.fault_page(&f, index as usize) }
}

/// Maps a PMD of a folio VMA where a whole folio lies aligned under it, or asks for a
/// fallback to PTEs.
///
/// # Safety
///
/// Called by the fault code for a VMA with [`FOLIO_VM_OPS`].
unsafe extern "C" fn folio_huge_fault(
    vmf: *mut bindings::vm_fault,
    order: core::ffi::c_uint,
) -> bindings::vm_fault_t {
    // SAFETY: By the safety requirements `vmf` is a fault on one of our VMAs.
    let f = unsafe { sys::Fault::from_raw(vmf) };
    let buf = fault_buffer(&f);
    if order != sys::PMD_ORDER {
        return sys::fault_result::FALLBACK;
    }
    let (Some(run), Some(index)) = (buf.memory.folios(), fault_window(&f, &buf, order)) else {
        return sys::fault_result::FALLBACK;
    };
    // SAFETY: The PMD-aligned pages from `index` are the buffer's and lie whole inside the VMA
    // (`fault_window`); the VMA holds the buffer and is neither a PFN nor a mixed map.
    unsafe { run.insert_folio_pmd(&f, index as usize) }
}

/// Maps one page of a huge-mapped VMA.
///
/// # Safety
///
/// Called by the fault code for a VMA with [`HUGE_VM_OPS`].
unsafe extern "C" fn vma_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: By the safety requirements `vmf` is a fault on one of our VMAs.
    fault(&unsafe { sys::Fault::from_raw(vmf) }, 0)
}

/// Maps a PMD or PUD of a huge-mapped VMA, or asks for a fallback to smaller entries.
///
/// # Safety
///
/// Called by the fault code for a VMA with [`HUGE_VM_OPS`].
unsafe extern "C" fn vma_huge_fault(
    vmf: *mut bindings::vm_fault,
    order: core::ffi::c_uint,
) -> bindings::vm_fault_t {
    // SAFETY: By the safety requirements `vmf` is a fault on one of our VMAs.
    fault(&unsafe { sys::Fault::from_raw(vmf) }, order)
}

/// Called before a huge-mapped VMA is split at `addr` (partial munmap, mprotect, mremap of a
/// part): unmaps a PUD that straddles `addr`, which the kernel's split cannot handle. The split
/// is always allowed.
///
/// # Safety
///
/// Called by the VMA split code for a VMA with [`HUGE_VM_OPS`], with the mmap lock held for
/// writing.
unsafe extern "C" fn vma_may_split(
    vma: *mut bindings::vm_area_struct,
    addr: usize,
) -> core::ffi::c_int {
    // SAFETY: By the safety requirements `vma` is one of our huge-mapped VMAs (a PFN map) and
    // the mmap lock is held for writing.
    unsafe { sys::vma::unmap_pud_straddling(vma, addr) };
    0
}

/// The operations of a normal (pre-populated) VMA: each VMA holds one reference to its buffer,
/// and a page zapped by MADV_DONTNEED is mapped again on the next touch.
const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    fault: Some(vma_refault),
    // SAFETY: All other callbacks are optional and null (`None`) is a valid value for them.
    ..unsafe { core::mem::zeroed() }
};

/// Maps a page of a normal VMA again after it was zapped (MADV_DONTNEED): the same page of the
/// buffer, as mmap mapped it.
///
/// # Safety
///
/// Called by the fault code for a VMA with [`VM_OPS`].
unsafe extern "C" fn vma_refault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: By the safety requirements `vmf` is a fault on one of our VMAs.
    let f = unsafe { sys::Fault::from_raw(vmf) };
    let buf = fault_buffer(&f);
    let (start, _, pgoff) = f.vma_range();
    let index = decode(pgoff).1 + ((f.address() - start) >> PAGE_SHIFT) as u64;
    match usize::try_from(index) {
        Ok(index) => buf.memory.refault(&f, index),
        Err(_) => sys::fault_result::SIGBUS,
    }
}

/// Called when a VMA is copied (fork, split by a partial munmap or mprotect, mremap): the copy
/// takes a reference of its own.
///
/// # Safety
///
/// `vma` is a valid VMA whose `vm_private_data` was set by [`mmap`] (copied from the original).
unsafe extern "C" fn vma_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: By the safety requirements, the private data is a pointer from `Arc::into_raw`
    // whose reference is held by the original VMA, which outlives this call.
    let buf = unsafe { ArcBorrow::<Buffer>::from_raw((*vma).vm_private_data.cast::<Buffer>()) };
    let buf: Arc<Buffer> = buf.into();
    buf.mapped();
    if buf.pfn_map && buf.pud_ok && buf.pages() >= 1 << (bindings::PUD_SHIFT - PAGE_SHIFT) {
        // A buffer large enough for PUD mappings: see `unmap_siblings` (mremap cannot move
        // them).
        // SAFETY: `vma` is one of our VMAs being opened by the kernel, which holds the mmap lock
        // for writing when it copies a VMA within the caller's address space.
        unsafe { sys::vma::unmap_siblings(vma) };
    }
    // The new VMA owns this reference until `vma_close`.
    let _ = Arc::into_raw(buf);
}

/// Called when a VMA goes away: drops its reference, freeing the buffer if it was the last.
///
/// # Safety
///
/// `vma` is a valid VMA whose `vm_private_data` holds a reference from [`mmap`] or [`vma_open`].
unsafe extern "C" fn vma_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: By the safety requirements the private data owns one reference, which we take back;
    // the VMA is going away and never uses it again.
    let buf = unsafe { Arc::<Buffer>::from_raw((*vma).vm_private_data.cast::<Buffer>()) };
    buf.unmapped();
    drop(buf);
}

#[kunit_tests(contigmem_mapping)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trips() {
        for id in [1u64, 2, 1000, MAX_ID - 1] {
            let pgoff = cookie(id) >> PAGE_SHIFT;
            assert_eq!(decode(pgoff), (id, 0));
            assert_eq!(decode(pgoff + 7), (id, 7));
        }
    }

    #[test]
    fn cookies_fit_off_t() {
        assert!(cookie(MAX_ID - 1) + (MAX_BUFFER - 1) <= i64::MAX as u64);
    }

    #[test]
    fn window_pages_stay_in_their_buffer() {
        let last = (MAX_BUFFER >> PAGE_SHIFT) - 1;
        assert_eq!(decode((cookie(5) >> PAGE_SHIFT) + last), (5, last));
        let span = 1u64 << (COOKIE_SHIFT - PAGE_SHIFT);
        assert_eq!(decode((cookie(5) >> PAGE_SHIFT) + span), (6, 0));
    }

    #[test]
    fn the_end_of_the_largest_buffer_is_its_own() {
        // read() and write() of the largest buffer end at this position: it must name the
        // same buffer, at its end, not the next id's first byte.
        assert_eq!(decode_pos(cookie(5) + MAX_BUFFER), (5, MAX_BUFFER));
        assert_eq!(decode_pos(cookie(5) + MAX_BUFFER - 1), (5, MAX_BUFFER - 1));
        assert_eq!(MAX_BUFFER % (1 << (MAX_PAGE_ORDER + PAGE_SHIFT)), 0);
    }
}
