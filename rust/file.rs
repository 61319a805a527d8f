// SPDX-License-Identifier: GPL-2.0

//! One open file of `/dev/contigmem`: its table of buffers and the ioctls that fill it.
//!
//! Lock order: `mmap_lock` (held by the kernel around our mmap and VMA callbacks) -> the table's
//! mutex; `mmap_lock` -> the registry (`registry`); a file's 32-bit id range (`ids::FileIds`)
//! -> the registry. The table's mutex is never held while a
//! buffer is dropped (which takes the registry and frees memory), nor while user memory is
//! copied (which may fault and take `mmap_lock`).
//!
//! Privilege is the opener's, as for `/proc/pid/pagemap`: a file opened with `CAP_SYS_ADMIN`
//! shows physical addresses, whoever calls it later; a file opened without it never does, even
//! in the hands of a privileged process (a daemon working on a client's file). UNINIT memory,
//! which may hold another process's data, needs both: a privileged file and a caller with
//! `CAP_SYS_ADMIN` (a privileged file inherited by, or handed to, an unprivileged process does
//! not give it out). No check writes an audit record.

use core::mem::size_of;

use kernel::{
    fs::{
        File,
        Kiocb, //
    },
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    mm::virt::VmaNew,
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode, //
    },
    sync::{
        Arc,
        Mutex, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abi,
    buffer::{
        self,
        Buffer,
        Caps,
        Owner, //
    },
    dmabuf, mapping,
    memory::{
        Kind,
        Request, //
    },
    sys::{
        self,
        Cache,
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
};

// SAFETY: The ABI structures are `#[repr(C)]` of integers and integer arrays with no padding
// (asserted in `abi.rs`), so every bit pattern is valid and every byte is initialised.
unsafe impl FromBytes for abi::Alloc {}
// SAFETY: As above.
unsafe impl AsBytes for abi::Alloc {}
// SAFETY: As above.
unsafe impl FromBytes for abi::Free {}
// SAFETY: As above.
unsafe impl FromBytes for abi::Info {}
// SAFETY: As above.
unsafe impl AsBytes for abi::Info {}
// SAFETY: As above.
unsafe impl AsBytes for abi::Version {}
// SAFETY: As above.
unsafe impl FromBytes for abi::Export {}
// SAFETY: As above.
unsafe impl AsBytes for abi::Export {}
// SAFETY: As above.
unsafe impl FromBytes for abi::Sync {}

/// The byte caps from the module parameters (0 means a default: 3/4 of RAM for the total, the
/// total for a file).
pub(crate) fn caps() -> Caps {
    let total = match *crate::module_parameters::max_total_mb.value() {
        0 => sys::totalram_bytes() / 4 * 3,
        mb => mb.saturating_mul(1 << 20),
    };
    let file = match *crate::module_parameters::max_file_mb.value() {
        0 => total,
        mb => mb.saturating_mul(1 << 20).min(total),
    };
    Caps { total, file }
}

/// Bit `1 << mode` for each caching mode this kernel offers.
fn cache_modes() -> u32 {
    if Cache::others_available() {
        Cache::ALL.iter().fold(0, |m, c| m | 1 << c.to_abi())
    } else {
        1 << Cache::WriteBack.to_abi()
    }
}

/// The largest buffer of `kind` under `caps`.
fn max_size(kind: Kind, caps: &Caps) -> u64 {
    kind.max_size(caps.file).min(mapping::MAX_BUFFER)
}

/// The state of one open file of `/dev/contigmem`.
#[pin_data]
pub(crate) struct ContigmemFile {
    /// The buffers this file allocated and has not freed, by id.
    #[pin]
    buffers: Mutex<RBTree<u64, Arc<Buffer>>>,
    /// What its buffers take from it: its bytes, its ids, its privilege.
    owner: Owner,
}

#[vtable]
impl MiscDevice for ContigmemFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(ContigmemFile {
                buffers <- new_mutex!(RBTree::new()),
                owner: Owner::new(sys::privileged())?,
            }),
            GFP_KERNEL,
        )
    }

    /// The last close: the buffers go one at a time, each taken out under the table's lock and
    /// freed after it, with a reschedule point between two (a file may hold a million).
    fn release(me: Pin<KBox<Self>>, _file: &File) {
        loop {
            let node = me
                .buffers
                .lock()
                .cursor_front_mut()
                .map(|c| c.remove_current().1);
            let Some(node) = node else { break };
            drop(node);
            sys::cond_resched();
        }
    }

    fn ioctl(me: Pin<&ContigmemFile>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let arg = UserPtr::from_addr(arg);
        match cmd {
            abi::IOC_VERSION => me.version(arg)?,
            abi::IOC_ALLOC => me.alloc(arg)?,
            abi::IOC_FREE => me.free(arg)?,
            abi::IOC_INFO => me.info(arg)?,
            abi::IOC_EXPORT => me.export(file, arg)?,
            abi::IOC_SYNC => me.sync(arg)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    fn mmap(me: Pin<&ContigmemFile>, _file: &File, vma: &VmaNew) -> Result {
        let (id, first_page) = mapping::decode(sys::vma::pgoff(vma));
        let buf = me.find(id).ok_or(EINVAL)?;
        mapping::mmap(buf, vma, first_page)
    }

    /// `read`/`pread` at a cookie offset: the buffer's bytes from there, 0 at its end.
    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let (buf, offset, end) = kiocb.file().at(kiocb.ki_pos())?;
        if offset >= end || iov.is_empty() {
            return Ok(0);
        }
        let done = buf.memory.read(offset, end, iov);
        Self::advance(&mut kiocb, done)
    }

    /// `write`/`pwrite` at a cookie offset: into the buffer from there, `ENOSPC` at its end.
    fn write_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let (buf, offset, end) = kiocb.file().at(kiocb.ki_pos())?;
        if iov.is_empty() {
            return Ok(0);
        }
        if offset >= end {
            return Err(ENOSPC);
        }
        let done = buf.memory.write(offset, end, iov);
        Self::advance(&mut kiocb, done)
    }
}

impl ContigmemFile {
    /// The buffer `id` of this file, if it has one.
    fn find(&self, id: u64) -> Option<Arc<Buffer>> {
        self.buffers.lock().get(&id).cloned()
    }

    /// The buffer a file position names (a cookie plus a byte offset), the offset and the
    /// buffer's size; `EINVAL` when it names no buffer of this file, as in mmap.
    fn at(&self, pos: i64) -> Result<(Arc<Buffer>, usize, usize)> {
        let (id, offset) = mapping::decode_pos(u64::try_from(pos).map_err(|_| EINVAL)?);
        let buf = self.find(id).ok_or(EINVAL)?;
        let end = usize::try_from(buf.size).map_err(|_| EINVAL)?;
        let offset = usize::try_from(offset).map_err(|_| EINVAL)?;
        Ok((buf, offset, end))
    }

    /// Moves the file position past the `done` bytes a transfer of a non-empty range copied;
    /// nothing copied means the user memory faulted.
    fn advance(kiocb: &mut Kiocb<'_, Pin<KBox<Self>>>, done: usize) -> Result<usize> {
        if done == 0 {
            return Err(EFAULT);
        }
        // `done` is at most a buffer's size, far below `i64::MAX`.
        *kiocb.ki_pos_mut() += done as i64;
        Ok(done)
    }

    fn version(&self, arg: UserPtr) -> Result {
        let caps = caps();
        let (live_bytes, live_buffers) = buffer::live();
        let mut max = [0u64; abi::KINDS_MAX];
        let mut kinds = 0;
        for kind in Kind::ALL {
            max[kind.to_abi() as usize] = max_size(kind, &caps);
            kinds |= 1 << kind.to_abi();
        }
        let version = abi::Version {
            abi_version: abi::ABI_VERSION,
            kinds,
            page_size: PAGE_SIZE,
            max_size: max,
            max_total_bytes: caps.total,
            max_file_bytes: caps.file,
            live_bytes,
            live_buffers,
            alloc_flags: abi::ALLOC_FLAGS,
            cache_modes: cache_modes(),
            reserved: [0; 1],
        };
        UserSlice::new(arg, size_of::<abi::Version>())
            .writer()
            .write(&version)
    }

    /// Checks an ALLOC request and turns it into a back-end [`Request`]; `privileged`: the file
    /// was opened with `CAP_SYS_ADMIN`.
    fn request(a: &abi::Alloc, privileged: bool) -> Result<Request> {
        if a.reserved1 != 0 || a.flags & !abi::ALLOC_FLAGS != 0 {
            return Err(EINVAL);
        }
        let kind = Kind::from_abi(a.kind)?;
        let cache = Cache::from_abi(a.cache)?;
        if cache != Cache::WriteBack && !kind.takes_cache() {
            return Err(EINVAL);
        }
        if a.size == 0 || (a.node != -1 && !sys::node_online(a.node)) {
            return Err(EINVAL);
        }
        // A strict node must be named: "local only" would hold for the CPU the ioctl ran on.
        let strict_node = a.flags & abi::ALLOC_STRICT_NODE != 0;
        if strict_node && a.node == -1 {
            return Err(EINVAL);
        }
        let caps = caps();
        let max = max_size(kind, &caps);
        let align = match a.align {
            0 => PAGE_SIZE,
            al if al.is_power_of_two() && al >= PAGE_SIZE && kind.takes_align() && al <= max => al,
            _ => return Err(EINVAL),
        };
        // A size that overflows when rounded up to the granule is beyond every limit.
        let size = a
            .size
            .checked_next_multiple_of(kind.granule())
            .ok_or(E2BIG)?;
        if size > max {
            return Err(E2BIG);
        }
        let uninit = a.flags & abi::ALLOC_UNINIT != 0;
        let huge_map = a.flags & abi::ALLOC_HUGE_MAP != 0;
        if huge_map && !kind.takes_align() {
            return Err(EINVAL);
        }
        if uninit && !(privileged && sys::privileged()) {
            return Err(EPERM);
        }
        // A caching mode other than write-back splits the kernel's direct map into 4 KiB pages
        // for good (x86 does not merge them back) and flushes caches on every CPU: the
        // machine's, as UNINIT memory is, so root's.
        if cache != Cache::WriteBack && !(privileged && sys::privileged()) {
            return Err(EPERM);
        }
        // Slab memory comes from the kmalloc caches of ZONE_NORMAL (kmalloc refuses
        // `__GFP_DMA32` with a warning): no bound for it.
        if a.phys_limit != 0 && (a.phys_limit < PAGE_SIZE || !kind.takes_phys_limit()) {
            return Err(EINVAL);
        }
        let req = Request {
            kind,
            size,
            align,
            uninit,
            huge_map,
            node: a.node,
            strict_node,
            phys_limit: a.phys_limit,
            cache,
        };
        // What the allocator takes at once (a HUGE range with its alignment slack) must fit
        // the kind's largest size too, or the request could never succeed.
        if req.span() > max {
            return Err(E2BIG);
        }
        if cache_modes() & (1 << cache.to_abi()) == 0 {
            return Err(sys::eopnotsupp());
        }
        Ok(req)
    }

    fn alloc(&self, arg: UserPtr) -> Result {
        let (mut reader, mut writer) = UserSlice::new(arg, size_of::<abi::Alloc>()).reader_writer();
        let mut a: abi::Alloc = reader.read()?;
        let req = Self::request(&a, self.owner.privileged)?;
        let buf = Buffer::new(&req, &self.owner, &caps(), sys::in_compat_syscall())?;
        a.id = buf.id;
        a.mmap_offset = mapping::cookie(buf.id);
        a.reserved_size = buf.size;
        a.phys_addr = self.phys_for_caller(&buf);
        a.alloc_ns = buf.alloc_ns;
        a.reserved2 = [0; 2];
        // The tree's node is allocated before the lock is taken, so that a failure drops the
        // buffer (freeing its memory, taking the registry's lock) with the table unlocked.
        let node = RBTreeNode::new(buf.id, buf, GFP_KERNEL)?;
        let replaced = self.buffers.lock().insert(node);
        // The file's ids are unique, so nothing was replaced; were it, it would drop here,
        // unlocked.
        drop(replaced);
        if let Err(e) = writer.write(&a) {
            // The caller never learns the id: take the buffer back rather than leak it.
            let gone = self.buffers.lock().remove(&a.id);
            drop(gone);
            return Err(e);
        }
        Ok(())
    }

    fn free(&self, arg: UserPtr) -> Result {
        let f: abi::Free = UserSlice::new(arg, size_of::<abi::Free>())
            .reader()
            .read()?;
        if f.reserved != 0 {
            return Err(EINVAL);
        }
        let buf = self.buffers.lock().remove(&f.id).ok_or(ENOENT)?;
        // The memory goes now, or with the last mapping; never under the table's lock.
        drop(buf);
        Ok(())
    }

    fn info(&self, arg: UserPtr) -> Result {
        let (mut reader, mut writer) = UserSlice::new(arg, size_of::<abi::Info>()).reader_writer();
        let mut info: abi::Info = reader.read()?;
        let buf = self.find(info.id).ok_or(ENOENT)?;
        let mut flags = 0;
        if buf.kind.contiguous() {
            flags |= abi::INFO_CONTIGUOUS;
        }
        if buf.uninit {
            flags |= abi::INFO_UNINIT;
        }
        if buf.huge_map {
            flags |= abi::INFO_HUGE_MAP;
        }
        if !buf.pfn_map && buf.kind.pinnable() {
            flags |= abi::INFO_PINNABLE;
        }
        if buf.strict_node {
            flags |= abi::INFO_STRICT_NODE;
        }
        info = abi::Info {
            id: buf.id,
            kind: buf.kind.to_abi(),
            flags,
            size: buf.size,
            mmap_offset: mapping::cookie(buf.id),
            phys_addr: self.phys_for_caller(&buf),
            segments: buf.placement.segments,
            mappings: buf.mappings(),
            node: buf.placement.node,
            cache: buf.memory.cache().to_abi(),
            off_node_pages: buf.placement.off_node,
            dmabufs: buf.dmabufs(),
            reserved: [0; 1],
        };
        writer.write(&info)
    }

    /// EXPORT: a dma-buf of the buffer, as a new file descriptor. The dma-buf may do no more than
    /// the file could: reading needs a file opened for reading, writing one opened for writing
    /// (`EACCES`), as for mmap.
    fn export(&self, file: &File, arg: UserPtr) -> Result {
        let (mut reader, mut writer) =
            UserSlice::new(arg, size_of::<abi::Export>()).reader_writer();
        let mut e: abi::Export = reader.read()?;
        let access = e.fd_flags & abi::O_ACCMODE;
        if e.reserved != [0; 2] || e.fd_flags & !abi::EXPORT_FD_FLAGS != 0 || access == 3 {
            return Err(EINVAL);
        }
        let buf = self.find(e.id).ok_or(ENOENT)?;
        let mode = file.flags() & abi::O_ACCMODE;
        let can_read = mode != sys::O_WRONLY;
        let can_write = mode != sys::O_RDONLY;
        if (access != sys::O_WRONLY && !can_read) || (access != sys::O_RDONLY && !can_write) {
            return Err(EACCES);
        }
        let cloexec = e.fd_flags & abi::O_CLOEXEC != 0;
        dmabuf::export(buf, access, cloexec, |fd| {
            e.fd = fd;
            writer.write(&e)
        })
    }

    /// SYNC: the bracket of a CPU access to a byte range of a buffer: the device mappings of its
    /// dma-bufs synced, then a full barrier (see `CONTIGMEM_IOC_SYNC`).
    fn sync(&self, arg: UserPtr) -> Result {
        let s: abi::Sync = UserSlice::new(arg, size_of::<abi::Sync>())
            .reader()
            .read()?;
        if s.reserved0 != 0 || s.flags & !abi::SYNC_FLAGS != 0 || s.flags & abi::SYNC_RW == 0 {
            return Err(EINVAL);
        }
        let buf = self.find(s.id).ok_or(ENOENT)?;
        let length = match s.length {
            0 => buf.size.checked_sub(s.offset).ok_or(EINVAL)?,
            n => n,
        };
        match s.offset.checked_add(length) {
            Some(end) if length > 0 && end <= buf.size => {}
            _ => return Err(EINVAL),
        }
        let for_cpu = s.flags & abi::SYNC_END == 0;
        // The range is checked; the device mappings are synced whole (see `dmabuf::sync`).
        dmabuf::sync(&buf, for_cpu);
        sys::memory_barrier();
        Ok(())
    }

    /// The buffer's physical address, or 0 for a file opened without `CAP_SYS_ADMIN` (the rule
    /// of `/proc/pid/pagemap`).
    fn phys_for_caller(&self, buf: &Buffer) -> u64 {
        if self.owner.privileged {
            buf.placement.pfn << PAGE_SHIFT
        } else {
            0
        }
    }
}

#[kunit_tests(contigmem_file)]
mod tests {
    use super::*;

    fn req(size: u64, kind: u32) -> abi::Alloc {
        abi::Alloc {
            size,
            kind,
            node: -1,
            ..Default::default()
        }
    }

    fn check(a: abi::Alloc) -> Result<u64> {
        ContigmemFile::request(&a, true).map(|r| r.size)
    }

    #[test]
    fn sizes_round_up_to_pages() {
        assert_eq!(check(req(1, abi::KIND_PAGES)), Ok(PAGE_SIZE));
        assert_eq!(
            check(req(PAGE_SIZE + 1, abi::KIND_VMALLOC)),
            Ok(2 * PAGE_SIZE)
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        assert_eq!(check(req(0, abi::KIND_KMALLOC)), Err(EINVAL));
        assert_eq!(check(req(u64::MAX, abi::KIND_KMALLOC)), Err(E2BIG));
        assert_eq!(check(req(PAGE_SIZE, abi::KIND_COUNT)), Err(EINVAL));
        let max = max_size(Kind::Kmalloc, &caps());
        assert_eq!(check(req(max + 1, abi::KIND_KMALLOC)), Err(E2BIG));
        assert_eq!(check(req(max, abi::KIND_KMALLOC)), Ok(max));
        let mut a = req(PAGE_SIZE, abi::KIND_PAGES);
        a.flags = 1 << 5;
        assert_eq!(check(a), Err(EINVAL));
        let mut a = req(PAGE_SIZE, abi::KIND_PAGES);
        a.reserved1 = 1;
        assert_eq!(check(a), Err(EINVAL));
        let mut a = req(PAGE_SIZE, abi::KIND_KMALLOC);
        a.phys_limit = 1 << 32;
        assert_eq!(check(a), Err(EINVAL));
        let mut a = req(PAGE_SIZE, abi::KIND_PAGES);
        a.phys_limit = PAGE_SIZE - 1;
        assert_eq!(check(a), Err(EINVAL));
        a.phys_limit = 1 << 32;
        assert_eq!(check(a), Ok(PAGE_SIZE));
        let mut a = req(PAGE_SIZE, abi::KIND_PAGES);
        a.node = kernel::bindings::MAX_NUMNODES as i32;
        assert_eq!(check(a), Err(EINVAL));
    }

    #[test]
    fn cache_rules() {
        for kind in [abi::KIND_KMALLOC, abi::KIND_KZALLOC, abi::KIND_VMALLOC] {
            let mut a = req(PAGE_SIZE, kind);
            a.cache = abi::CACHE_WC;
            assert_eq!(check(a), Err(EINVAL));
            a.cache = abi::CACHE_WB;
            assert_eq!(check(a), Ok(PAGE_SIZE));
        }
        let mut a = req(PAGE_SIZE, abi::KIND_HUGE);
        a.cache = abi::CACHE_COUNT;
        assert_eq!(check(a), Err(EINVAL));
        a.cache = u32::MAX;
        assert_eq!(check(a), Err(EINVAL));
        for mode in [abi::CACHE_WC, abi::CACHE_UC] {
            a.cache = mode;
            let want = if cache_modes() & (1 << mode) != 0 {
                Ok(Kind::Huge.granule())
            } else {
                Err(sys::eopnotsupp())
            };
            assert_eq!(check(a), want);
        }
        assert_eq!(cache_modes() & 1, 1);
    }

    #[test]
    fn node_rules() {
        let mut a = req(PAGE_SIZE, abi::KIND_HUGE);
        a.node = -2;
        assert_eq!(check(a), Err(EINVAL));
        a.node = i32::MIN;
        assert_eq!(check(a), Err(EINVAL));
        a.node = -1;
        a.flags = abi::ALLOC_STRICT_NODE;
        // Strict needs a named node.
        assert_eq!(check(a), Err(EINVAL));
        a.node = 0;
        assert_eq!(check(a).map(|_| ()), Ok(()));
        let r = ContigmemFile::request(&a, true).map(|r| (r.node, r.strict_node));
        assert_eq!(r, Ok((0, true)));
        a.flags = 0;
        let r = ContigmemFile::request(&a, true).map(|r| (r.node, r.strict_node));
        assert_eq!(r, Ok((0, false)));
    }

    #[test]
    fn uninit_needs_a_privileged_opener() {
        let mut a = req(PAGE_SIZE, abi::KIND_KMALLOC);
        a.flags = abi::ALLOC_UNINIT;
        assert_eq!(ContigmemFile::request(&a, false).map(|_| ()), Err(EPERM));
        assert_eq!(ContigmemFile::request(&a, true).map(|r| r.uninit), Ok(true));
        let mut a = req(PAGE_SIZE, abi::KIND_PAGES);
        a.cache = abi::CACHE_WC;
        assert_eq!(ContigmemFile::request(&a, false).map(|_| ()), Err(EPERM));
        a.cache = abi::CACHE_WB;
        assert_eq!(
            ContigmemFile::request(&a, false).map(|r| r.pfn_map()),
            Ok(false)
        );
    }

    #[test]
    fn alignment_rules() {
        let mut a = req(PAGE_SIZE, abi::KIND_PAGES);
        a.align = 3;
        assert_eq!(check(a), Err(EINVAL));
        a.align = 2 * PAGE_SIZE;
        assert_eq!(check(a), Ok(PAGE_SIZE));
        let mut a = req(PAGE_SIZE, abi::KIND_KMALLOC);
        a.align = 2 * PAGE_SIZE;
        assert_eq!(check(a), Err(EINVAL));
    }
}
