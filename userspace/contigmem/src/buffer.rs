// SPDX-License-Identifier: GPL-2.0

//! A buffer allocated through a [`Device`]: its identity, its state in the kernel, and its
//! mappings.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::{abi, Cache, Device, DmaBuf, ExportOptions, Kind, Mapping, SyncDir};

/// A buffer of an open device, freed (`FREE`) on drop.
///
/// Dropping or freeing a buffer never invalidates its [`Mapping`]s: the kernel releases the
/// memory when the last mapping is gone.
///
/// After `fork()` the child shares the open file: a buffer dropped in the child frees the
/// parent's buffer too. Children should leave with `_exit`.
#[derive(Debug)]
pub struct Buffer<'dev> {
    dev: &'dev Device,
    kind: Kind,
    id: u64,
    size: u64,
    mmap_offset: u64,
    phys_addr: u64,
    alloc_ns: u64,
    uninit: bool,
}

impl<'dev> Buffer<'dev> {
    pub(crate) fn new(dev: &'dev Device, kind: Kind, raw: &abi::Alloc) -> Self {
        Self {
            dev,
            kind,
            id: raw.id,
            size: raw.reserved_size,
            mmap_offset: raw.mmap_offset,
            phys_addr: raw.phys_addr,
            alloc_ns: raw.alloc_ns,
            uninit: raw.flags & abi::ALLOC_UNINIT != 0,
        }
    }

    /// The device the buffer belongs to.
    pub fn device(&self) -> &'dev Device {
        self.dev
    }

    /// The buffer's id (global, never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The allocator it came from.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bytes reserved: the requested size rounded up to whole pages.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The mmap offset of its first page (an opaque cookie).
    pub fn mmap_offset(&self) -> u64 {
        self.mmap_offset
    }

    /// The physical address of its first byte; 0 without `CAP_SYS_ADMIN`.
    pub fn phys_addr(&self) -> u64 {
        self.phys_addr
    }

    /// How long the allocation (and zeroing) took in the kernel, in nanoseconds.
    pub fn alloc_ns(&self) -> u64 {
        self.alloc_ns
    }

    /// Whether it was allocated without zeroing.
    pub fn is_uninit(&self) -> bool {
        self.uninit
    }

    /// What the kernel knows about the buffer now.
    pub fn info(&self) -> Result<BufferInfo> {
        self.dev.info(self.id)
    }

    /// Maps the whole buffer, shared, readable and writable.
    pub fn map(&self) -> Result<Mapping> {
        let len = usize::try_from(self.size).map_err(|_| {
            Error::invalid(format!("{} bytes do not fit the address space", self.size))
        })?;
        self.dev.mmap(self.mmap_offset, len)
    }

    /// Maps `len` bytes starting at page `page_offset` of the buffer. The kernel checks that the
    /// window lies inside the buffer (EINVAL otherwise).
    pub fn map_range(&self, page_offset: u64, len: usize) -> Result<Mapping> {
        let offset = page_offset
            .checked_mul(self.dev.page_size() as u64)
            .and_then(|bytes| bytes.checked_add(self.mmap_offset))
            .ok_or_else(|| Error::invalid(format!("page offset {page_offset} overflows")))?;
        self.dev.mmap(offset, len)
    }

    /// Reads into `out` from byte `offset` of the buffer with `pread(2)` on the device (at the
    /// buffer's cookie plus `offset`). Returns the bytes read: fewer than asked at the end of the
    /// buffer, 0 past it.
    pub fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<usize> {
        self.dev.pread(self.file_offset(offset)?, out)
    }

    /// Writes `data` into the buffer from byte `offset` with `pwrite(2)` on the device. Returns
    /// the bytes written: fewer than given at the end of the buffer; ENOSPC past it.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<usize> {
        self.dev.pwrite(self.file_offset(offset)?, data)
    }

    /// The device file position of byte `offset` of the buffer.
    pub fn file_offset(&self, offset: u64) -> Result<u64> {
        if offset > self.size {
            return Err(Error::invalid(format!(
                "offset {offset} is past the end of a {}-byte buffer",
                self.size
            )));
        }
        Ok(self.mmap_offset + offset)
    }

    /// Exports the buffer as a dma-buf (`CONTIGMEM_IOC_EXPORT`), which holds its memory for as
    /// long as it lives: past [`Buffer::free`] and the device's close.
    pub fn export(&self, options: ExportOptions) -> Result<DmaBuf> {
        let mut raw = options.to_abi(self.id);
        self.dev.ioctl(&mut raw)?;
        let fd = crate::sys::owned_fd(raw.fd).map_err(|e| Error::os("EXPORT", e))?;
        Ok(DmaBuf::new(fd, self.size, self.dev.page_size()))
    }

    /// Brackets a CPU access to `len` bytes from `offset` (`len` 0: to the end) with
    /// `CONTIGMEM_IOC_SYNC`: `start` before the CPU touches memory that devices may have
    /// written, then not `start` before devices use it again. It syncs the device mappings of
    /// the buffer's dma-bufs and ends with a full barrier.
    pub fn sync(&self, offset: u64, len: u64, dir: SyncDir, start: bool) -> Result<()> {
        let mut raw = abi::Sync {
            id: self.id,
            offset,
            length: len,
            flags: dir.flags()
                | if start {
                    abi::SYNC_START
                } else {
                    abi::SYNC_END
                },
            reserved0: 0,
        };
        self.dev.ioctl(&mut raw)
    }

    /// Frees the buffer now, reporting errors that drop would swallow.
    pub fn free(self) -> Result<()> {
        let (dev, id) = (self.dev, self.id);
        std::mem::forget(self);
        dev.free(id)
    }

    /// Gives up the buffer without freeing it: it lives until the device is closed. Returns its
    /// id.
    pub fn leak(self) -> u64 {
        let id = self.id;
        std::mem::forget(self);
        id
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        // ENOENT means it is gone already (through `Device::free` with its id); nothing else
        // can be reported from drop.
        let _ = self.dev.free(self.id);
    }
}

/// What `CONTIGMEM_IOC_INFO` reports about a buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BufferInfo {
    /// The buffer's id.
    pub id: u64,
    /// The allocator it came from.
    pub kind: Kind,
    /// Whether it is physically contiguous.
    pub contiguous: bool,
    /// Whether it was allocated without zeroing.
    pub uninit: bool,
    /// Whether it is mapped with PMD/PUD entries on fault.
    pub huge_map: bool,
    /// Whether its mappings work with `get_user_pages` (O_DIRECT, io_uring fixed buffers).
    pub pinnable: bool,
    /// The bytes reserved.
    pub size: u64,
    /// Its mmap offset.
    pub mmap_offset: u64,
    /// The physical address of its first byte; 0 without `CAP_SYS_ADMIN`.
    pub phys_addr: u64,
    /// The number of physically contiguous runs.
    pub segments: u64,
    /// The number of live user mappings (VMAs).
    pub mappings: u64,
    /// The NUMA node of its first page.
    pub node: i32,
    /// Pages on other nodes than [`BufferInfo::node`] (0: the whole buffer is on it).
    pub off_node_pages: u64,
    /// Whether it was allocated on its node only ([`crate::AllocOptions::strict_node`]).
    pub strict_node: bool,
    /// Live dma-bufs exported from it ([`Buffer::export`]).
    pub dmabufs: u64,
    /// Its caching mode.
    pub cache: Cache,
}

impl BufferInfo {
    pub(crate) fn from_abi(raw: &abi::Info) -> Result<Self> {
        let kind = Kind::from_raw(raw.kind).ok_or_else(|| Error::Abi {
            what: format!("INFO reported unknown kind {}", raw.kind),
        })?;
        let cache = Cache::from_raw(raw.cache).ok_or_else(|| Error::Abi {
            what: format!("INFO reported unknown cache mode {}", raw.cache),
        })?;
        Ok(Self {
            id: raw.id,
            kind,
            cache,
            contiguous: raw.flags & abi::INFO_CONTIGUOUS != 0,
            uninit: raw.flags & abi::INFO_UNINIT != 0,
            huge_map: raw.flags & abi::INFO_HUGE_MAP != 0,
            pinnable: raw.flags & abi::INFO_PINNABLE != 0,
            size: raw.size,
            mmap_offset: raw.mmap_offset,
            phys_addr: raw.phys_addr,
            segments: raw.segments,
            mappings: raw.mappings,
            node: raw.node,
            off_node_pages: raw.off_node_pages,
            strict_node: raw.flags & abi::INFO_STRICT_NODE != 0,
            dmabufs: raw.dmabufs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_decodes_flags_and_kind() {
        let raw = abi::Info {
            id: 3,
            kind: abi::KIND_PAGES,
            flags: abi::INFO_CONTIGUOUS | abi::INFO_STRICT_NODE,
            size: 8192,
            segments: 1,
            mappings: 2,
            node: 1,
            off_node_pages: 5,
            ..Default::default()
        };
        let info = BufferInfo::from_abi(&raw).expect("valid info");
        assert_eq!(info.kind, Kind::Pages);
        assert!(info.contiguous && !info.uninit && info.strict_node);
        assert_eq!((info.node, info.off_node_pages), (1, 5));
        assert_eq!((info.size, info.segments, info.mappings), (8192, 1, 2));
        let bad = abi::Info { kind: 9, ..raw };
        assert!(matches!(BufferInfo::from_abi(&bad), Err(Error::Abi { .. })));
    }
}
