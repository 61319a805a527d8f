// SPDX-License-Identifier: GPL-2.0

//! Buffers as dma-bufs, for other drivers to import (V4L2, DRM, RDMA) and other processes to map.
//!
//! A dma-buf holds its buffer (an `Arc<Buffer>` in its private data) until the dma-buf core
//! releases it, when its last file reference and its last importer are gone; FREE and close()
//! of `/dev/contigmem` do not end it, as they do not end a mapping. Each attachment (an
//! importer's device) gets its own scatter table of the buffer's pages, one entry per physically
//! contiguous run or piece of one within the device's segment limits, built when it attaches
//! and DMA-mapped for its device while the importer maps it. CPU access brackets
//! (`DMA_BUF_IOCTL_SYNC`) sync the mapped tables for the CPU and back.
//! The dma-buf maps into user space as the buffer does through `/dev/contigmem`, with the same
//! VMA operations, and into the kernel at the memory's own kernel address (`vmap`).
//!
//! The attachments of all the dma-bufs of one buffer are in one list, the buffer's, so that
//! SYNC on `/dev/contigmem` reaches every device mapping of the buffer, and a CPU access bracket
//! of any of its dma-bufs syncs them all: they share the memory.
//!
//! Lock order: a dma-buf's reservation lock (held by the core around `map_dma_buf` and
//! `unmap_dma_buf`) -> its buffer's attachment list's mutex.

use core::ptr::NonNull;

use kernel::{
    bindings,
    mm::virt::VmaNew,
    prelude::*,
    sync::Arc, //
};

use crate::{
    buffer::Buffer,
    mapping,
    sys::dmabuf::{
        self,
        Direction,
        SegmentLimits,
        SgTable, //
    },
};

/// An attachment of one of a buffer's dma-bufs: its scatter table, and which dma-buf it
/// belongs to (by address, for identity only), so that `release` can take what an importer
/// left attached.
pub(crate) struct Attached {
    dmabuf: usize,
    table: KBox<SgTable>,
}

/// What a dma-buf's private data points to.
struct Export {
    /// The buffer, held for as long as the dma-buf lives.
    buf: Arc<Buffer>,
}

/// Exports `buf` as a dma-buf whose file has the access mode `access` (`O_RDONLY`, `O_WRONLY`,
/// `O_RDWR`); `publish` learns its file descriptor (close-on-exec if `cloexec`) before the
/// descriptor is installed, and a failure of `publish` leaves nothing behind.
pub(crate) fn export(
    buf: Arc<Buffer>,
    access: u32,
    cloexec: bool,
    publish: impl FnOnce(i32) -> Result,
) -> Result {
    let size = usize::try_from(buf.size).map_err(|_| E2BIG)?;
    let export = KBox::new(Export { buf }, GFP_KERNEL)?;
    export.buf.count_dmabuf(false);
    let raw = KBox::into_raw(export);
    // SAFETY: `OPS`' callbacks take the private data for a pointer from `KBox::into_raw` of an
    // `Export`, which `release` takes back; `OPS` is a constant promoted to a static.
    match unsafe { dmabuf::export(&OPS, raw.cast(), size, access, cloexec, publish) } {
        Ok(()) => Ok(()),
        Err((e, true)) => Err(e),
        Err((e, false)) => {
            // SAFETY: The export failed, so the pointer is still ours alone.
            drop(unsafe { take(raw) });
            Err(e)
        }
    }
}

/// Takes back the box that [`export`] gave a dma-buf, counting the dma-buf gone.
///
/// # Safety
///
/// `raw` is the pointer [`export`] made, and nothing uses it any more.
unsafe fn take(raw: *mut Export) -> KBox<Export> {
    // SAFETY: By the safety requirements `raw` is from `KBox::into_raw`, and ours.
    let export = unsafe { KBox::from_raw(raw) };
    export.buf.count_dmabuf(true);
    export
}

/// The [`Export`] of a dma-buf of ours.
///
/// # Safety
///
/// `dmabuf` is a live dma-buf made by [`export`]: its private data is the pointer to an
/// [`Export`] that lives until `release`.
unsafe fn export_of<'a>(dmabuf: *mut bindings::dma_buf) -> &'a Export {
    // SAFETY: By the safety requirements the private data is a live `Export`.
    unsafe { &*(*dmabuf).priv_.cast::<Export>() }
}

/// The callbacks of our dma-bufs.
const OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
    attach: Some(attach),
    detach: Some(detach),
    map_dma_buf: Some(map_dma_buf),
    unmap_dma_buf: Some(unmap_dma_buf),
    release: Some(release),
    begin_cpu_access: Some(begin_cpu_access),
    end_cpu_access: Some(end_cpu_access),
    mmap: Some(mmap),
    vmap: Some(vmap),
    vunmap: Some(vunmap),
    // Without `pin` the dma-buf core treats our dma-bufs as pinned, whose attachments it maps
    // under the reservation lock.
    // SAFETY: All other callbacks are optional and null (`None`) is a valid value for them.
    ..unsafe { core::mem::zeroed() }
};

/// The scatter table of `buf`'s memory: one entry per physically contiguous run, or per piece of
/// one within `limits`.
fn table_of(buf: &Buffer, limits: SegmentLimits) -> Result<SgTable> {
    let nents = buf.memory.runs(limits, |_, _| Ok(()))?;
    let mut table = SgTable::new(nents)?;
    buf.memory.runs(limits, |page, len| {
        // SAFETY: The run is the buffer's memory, which the dma-buf holds (through `Export`)
        // for longer than the table lives (dropped at detach, at the latest at release).
        unsafe { table.push(page, len) }
    })?;
    if !table.is_full() {
        return Err(EINVAL);
    }
    Ok(table)
}

/// A device attaches: its scatter table is built now, so that mapping it costs only the DMA
/// mapping.
///
/// # Safety
///
/// Called by the dma-buf core for one of our dma-bufs and a new attachment of it.
unsafe extern "C" fn attach(
    dmabuf: *mut bindings::dma_buf,
    attachment: *mut bindings::dma_buf_attachment,
) -> core::ffi::c_int {
    // SAFETY: By the safety requirements the dma-buf is ours and live, and the attachment is
    // valid, for the device that attaches (the core sets `dev` before it calls us).
    let (export, dev) = unsafe { (export_of(dmabuf), (*attachment).dev) };
    let Some(dev) = NonNull::new(dev) else {
        return EINVAL.to_errno();
    };
    // No entry longer than the device's DMA segment limit (64 KiB unless its driver says
    // otherwise) or across its segment boundary: the DMA API refuses such entries, and DMA-API
    // debugging reports them. The entries of a contiguous run stay contiguous, which is what
    // importers such as vb2-dma-contig check.
    // SAFETY: `dev` is the attaching device, valid for this call.
    let limits = match unsafe { SegmentLimits::of(dev) } {
        Ok(limits) => limits,
        Err(e) => return e.to_errno(),
    };
    let entry = table_of(&export.buf, limits).and_then(|t| Ok(KBox::new(t, GFP_KERNEL)?));
    let entry = match entry {
        Ok(entry) => entry,
        Err(e) => return e.to_errno(),
    };
    let key: *const SgTable = &*entry;
    let entry = Attached {
        dmabuf: dmabuf as usize,
        table: entry,
    };
    let mut list = export.buf.attachments.lock();
    if let Err(e) = list.push(entry, GFP_KERNEL) {
        return Error::from(e).to_errno();
    }
    // SAFETY: The attachment is valid; its `priv` field is the exporter's, and we set it once,
    // before any other callback of the attachment can run.
    unsafe { (*attachment).priv_ = key.cast_mut().cast() };
    0
}

/// The index of `attachment`'s table in `list`.
///
/// # Safety
///
/// `attachment` is an attachment of the dma-buf `list` belongs to.
unsafe fn find(
    list: &KVec<Attached>,
    attachment: *mut bindings::dma_buf_attachment,
) -> Option<usize> {
    // SAFETY: By the safety requirements the attachment is valid; `attach` set its key.
    let key = unsafe { (*attachment).priv_ }
        .cast::<SgTable>()
        .cast_const();
    list.iter().position(|a| core::ptr::eq(&*a.table, key))
}

/// A device detaches: its table goes (unmapped first, should the importer not have).
///
/// # Safety
///
/// Called by the dma-buf core for one of our dma-bufs and an attachment of it that [`attach`]
/// accepted.
unsafe extern "C" fn detach(
    dmabuf: *mut bindings::dma_buf,
    attachment: *mut bindings::dma_buf_attachment,
) {
    // SAFETY: By the safety requirements the dma-buf is ours and live.
    let export = unsafe { export_of(dmabuf) };
    let mut list = export.buf.attachments.lock();
    // SAFETY: The attachment is one of this dma-buf's.
    if let Some(i) = unsafe { find(&list, attachment) } {
        let gone = list.remove(i);
        drop(list);
        drop(gone);
    }
}

/// The importer maps its attachment for DMA: its table, DMA-mapped for its device.
///
/// # Safety
///
/// Called by the dma-buf core for an attachment of one of our dma-bufs that [`attach`]
/// accepted.
unsafe extern "C" fn map_dma_buf(
    attachment: *mut bindings::dma_buf_attachment,
    dir: Direction,
) -> *mut bindings::sg_table {
    // SAFETY: By the safety requirements the attachment is valid and its dma-buf is ours.
    let (export, dev) = unsafe { (export_of((*attachment).dmabuf), (*attachment).dev) };
    // `dma_map_sgtable` BUGs on a direction that is none of the three.
    let Some(dev) = NonNull::new(dev).filter(|_| dmabuf::valid_direction(dir)) else {
        return EINVAL.to_ptr();
    };
    let mut list = export.buf.attachments.lock();
    // SAFETY: The attachment is one of this dma-buf's.
    let Some(i) = (unsafe { find(&list, attachment) }) else {
        return EINVAL.to_ptr();
    };
    let table = &mut list[i].table;
    // SAFETY: The importer's device stays valid while it is attached, and the table is unmapped
    // at the latest when it detaches.
    match unsafe { table.map(dev, dir) } {
        Ok(()) => table.as_ptr(),
        Err(e) => e.to_ptr(),
    }
}

/// The importer is done with its DMA mapping.
///
/// # Safety
///
/// Called by the dma-buf core for an attachment of one of our dma-bufs and the table
/// [`map_dma_buf`] gave it.
unsafe extern "C" fn unmap_dma_buf(
    attachment: *mut bindings::dma_buf_attachment,
    _table: *mut bindings::sg_table,
    _dir: Direction,
) {
    // SAFETY: By the safety requirements the attachment is valid and its dma-buf is ours.
    let export = unsafe { export_of((*attachment).dmabuf) };
    let mut list = export.buf.attachments.lock();
    // SAFETY: The attachment is one of this dma-buf's.
    if let Some(i) = unsafe { find(&list, attachment) } {
        list[i].table.unmap();
    }
}

/// Syncs every DMA-mapped attachment of `buf`'s dma-bufs, whole, for the CPU (`for_cpu`) or
/// back for its device: the DMA API syncs a mapped scatterlist as it was mapped (with DMA-API
/// debugging, a sync of part of its entries is reported).
pub(crate) fn sync(buf: &Buffer, for_cpu: bool) {
    for a in buf.attachments.lock().iter_mut() {
        a.table.sync(for_cpu);
    }
}

/// The start of a CPU access (`DMA_BUF_IOCTL_SYNC` with `DMA_BUF_SYNC_START`, or a kernel
/// user): what the devices wrote becomes visible to the CPU.
///
/// # Safety
///
/// Called by the dma-buf core for one of our dma-bufs.
unsafe extern "C" fn begin_cpu_access(
    dmabuf: *mut bindings::dma_buf,
    _dir: Direction,
) -> core::ffi::c_int {
    // SAFETY: By the safety requirements the dma-buf is ours and live.
    sync(&unsafe { export_of(dmabuf) }.buf, true);
    0
}

/// The end of a CPU access: what the CPU wrote becomes visible to the devices.
///
/// # Safety
///
/// Called by the dma-buf core for one of our dma-bufs.
unsafe extern "C" fn end_cpu_access(
    dmabuf: *mut bindings::dma_buf,
    _dir: Direction,
) -> core::ffi::c_int {
    // SAFETY: By the safety requirements the dma-buf is ours and live.
    sync(&unsafe { export_of(dmabuf) }.buf, false);
    // What the CPU wrote through a write-combining mapping is in memory before a device looks.
    crate::sys::memory_barrier();
    0
}

/// mmap of the dma-buf (by its holder, or by an importer for its own users): the buffer from
/// page `vm_pgoff`, as `/dev/contigmem` maps it. The core has checked the window is inside.
///
/// # Safety
///
/// Called by the dma-buf core for one of our dma-bufs and a VMA in its initial setup.
unsafe extern "C" fn mmap(
    dmabuf: *mut bindings::dma_buf,
    vma: *mut bindings::vm_area_struct,
) -> core::ffi::c_int {
    // SAFETY: By the safety requirements the dma-buf is ours and live.
    let export = unsafe { export_of(dmabuf) };
    // SAFETY: By the safety requirements the VMA is being set up by mmap, for this call.
    let (vma, first) = unsafe { (VmaNew::from_raw(vma), (*vma).vm_pgoff as u64) };
    match mapping::mmap(export.buf.clone(), vma, first) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A kernel mapping of the whole dma-buf: the memory's own kernel address (slab and page
/// memory in the direct map, vmalloc memory in its vmalloc area), valid while the dma-buf lives.
///
/// # Safety
///
/// Called by the dma-buf core for one of our dma-bufs, with a map to fill.
unsafe extern "C" fn vmap(
    dmabuf: *mut bindings::dma_buf,
    map: *mut bindings::iosys_map,
) -> core::ffi::c_int {
    // SAFETY: By the safety requirements the dma-buf is ours and live.
    let export = unsafe { export_of(dmabuf) };
    // SAFETY: By the safety requirements `map` is the core's map to fill.
    unsafe { dmabuf::set_vaddr(map, export.buf.memory.kaddr()) };
    0
}

/// The end of a kernel mapping: nothing to undo.
///
/// # Safety
///
/// Called by the dma-buf core for one of our dma-bufs.
unsafe extern "C" fn vunmap(_dmabuf: *mut bindings::dma_buf, _map: *mut bindings::iosys_map) {}

/// The dma-buf goes: its hold on the buffer with it.
///
/// # Safety
///
/// Called by the dma-buf core once, for one of our dma-bufs that nothing uses any more.
unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
    // SAFETY: By the safety requirements the private data is the pointer `export` made, and this
    // is its last use.
    let export = unsafe { take((*dmabuf).priv_.cast::<Export>()) };
    // Every importer detached before the last reference went, unless one did not (the core
    // warns of it): its tables go with this dma-buf, unmapped, rather than stay in the buffer's
    // list for another dma-buf's syncs to reach with a device that may be gone. Dropping a
    // table (a DMA unmap and a free) does not take the list's lock.
    export
        .buf
        .attachments
        .lock()
        .retain(|a| a.dmabuf != dmabuf as usize);
    drop(export);
}
