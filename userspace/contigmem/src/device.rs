// SPDX-License-Identifier: GPL-2.0

//! The open device: its ioctls (VERSION, ALLOC, FREE, INFO) and raw `mmap`.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};
use serde::Serialize;

use crate::buffer::{Buffer, BufferInfo};
use crate::error::{Error, Result};
use crate::sys::{self, Region};
use crate::{abi, Cache, Kind, Mapping};

/// Where the module's misc device appears.
pub const DEFAULT_PATH: &str = "/dev/contigmem";

/// What `CONTIGMEM_IOC_VERSION` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The module's ABI version; this library speaks [`abi::ABI_VERSION`].
    pub abi_version: u32,
    /// The kinds the module supports.
    pub kinds: Vec<Kind>,
    /// The kernel's page size in bytes.
    pub page_size: u64,
    /// The largest buffer of each supported kind, in bytes.
    pub max_size: BTreeMap<Kind, u64>,
    /// The cap on bytes held by all buffers together.
    pub max_total_bytes: u64,
    /// The cap on bytes held by the buffers of one open file.
    pub max_file_bytes: u64,
    /// Bytes held now by all buffers, freed-but-still-mapped ones included.
    pub live_bytes: u64,
    /// Buffers whose memory is held now.
    pub live_buffers: u64,
    /// The `CONTIGMEM_ALLOC_*` flags the module knows (0 from modules older than the field,
    /// which know only `UNINIT` and `HUGE_MAP`).
    pub alloc_flags: u32,
    /// The caching modes the module offers on this kernel ([`AllocOptions::cache`]): write-back
    /// always; write-combining and uncached with x86 PAT. Empty from modules older than the
    /// field (which take write-back only).
    pub cache_modes: Vec<Cache>,
}

impl Version {
    fn from_abi(raw: &abi::Version) -> Self {
        let kinds: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|kind| raw.kinds & (1 << kind.raw()) != 0)
            .collect();
        let max_size = kinds
            .iter()
            .map(|&kind| (kind, raw.max_size[kind.raw() as usize]))
            .collect();
        Self {
            abi_version: raw.abi_version,
            kinds,
            page_size: raw.page_size,
            max_size,
            max_total_bytes: raw.max_total_bytes,
            max_file_bytes: raw.max_file_bytes,
            live_bytes: raw.live_bytes,
            live_buffers: raw.live_buffers,
            alloc_flags: raw.alloc_flags,
            cache_modes: Cache::ALL
                .into_iter()
                .filter(|c| raw.cache_modes & (1 << c.raw()) != 0)
                .collect(),
        }
    }

    /// Whether the module takes [`AllocOptions::strict_node`].
    pub fn has_strict_node(&self) -> bool {
        self.alloc_flags & abi::ALLOC_STRICT_NODE != 0
    }

    /// Whether this library speaks the module's ABI.
    pub fn is_compatible(&self) -> bool {
        self.abi_version == abi::ABI_VERSION
    }

    /// Whether the module supports `kind`.
    pub fn supports(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The largest buffer of `kind`, or `None` if the module does not support it.
    pub fn max_size(&self, kind: Kind) -> Option<u64> {
        self.max_size.get(&kind).copied()
    }
}

/// How to allocate a buffer, beyond its kind and size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocOptions {
    /// Do not zero the memory (`CONTIGMEM_ALLOC_UNINIT`, `CAP_SYS_ADMIN` only).
    pub uninit: bool,
    /// The NUMA node to allocate on; `None` for the local node of the calling CPU. Either is a
    /// preference (the kernel falls back to other nodes) unless `strict_node` is set.
    pub node: Option<u32>,
    /// Allocate on `node` only (`CONTIGMEM_ALLOC_STRICT_NODE`): ENOMEM rather than memory of
    /// another node. Needs a `node`.
    pub strict_node: bool,
    /// The physical alignment in bytes (a power of two >= the page size, pages and huge only);
    /// 0 for the kind's natural alignment.
    pub align: u64,
    /// Map with PFN PMD/PUD entries on fault (`CONTIGMEM_ALLOC_HUGE_MAP`, pages and huge
    /// only): PUDs, and huge entries for pages, but the mappings are PFN maps that
    /// `get_user_pages` (O_DIRECT, io_uring) cannot use. Without it a huge buffer gets
    /// refcounted PMDs on fault, which it can.
    pub huge_map: bool,
    /// A physical address the whole buffer must lie below (vmalloc, pages and huge only), for
    /// a device that cannot reach higher: `1 << 32` for a 32-bit DMA engine. 0 for none.
    pub phys_limit: u64,
    /// The caching mode (pages and huge only, and only those [`Version::cache_modes`] lists):
    /// write-back by default.
    pub cache: Cache,
}

impl AllocOptions {
    /// The defaults: zeroed, any node, natural alignment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`AllocOptions::uninit`].
    pub fn uninit(mut self, uninit: bool) -> Self {
        self.uninit = uninit;
        self
    }

    /// Sets [`AllocOptions::node`].
    pub fn node(mut self, node: Option<u32>) -> Self {
        self.node = node;
        self
    }

    /// Sets [`AllocOptions::strict_node`].
    pub fn strict_node(mut self, strict: bool) -> Self {
        self.strict_node = strict;
        self
    }

    /// Sets [`AllocOptions::huge_map`].
    pub fn huge_map(mut self, huge_map: bool) -> Self {
        self.huge_map = huge_map;
        self
    }

    /// Sets [`AllocOptions::phys_limit`].
    pub fn phys_limit(mut self, limit: u64) -> Self {
        self.phys_limit = limit;
        self
    }

    /// Sets [`AllocOptions::cache`].
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    /// Sets [`AllocOptions::align`].
    pub fn align(mut self, align: u64) -> Self {
        self.align = align;
        self
    }

    fn to_abi(self, kind: Kind, size: u64) -> Result<abi::Alloc> {
        let node = match self.node {
            None => -1,
            Some(node) => i32::try_from(node)
                .map_err(|_| Error::invalid(format!("NUMA node {node} is out of range")))?,
        };
        Ok(abi::Alloc {
            size,
            kind: kind.raw(),
            flags: if self.uninit { abi::ALLOC_UNINIT } else { 0 }
                | if self.huge_map {
                    abi::ALLOC_HUGE_MAP
                } else {
                    0
                }
                | if self.strict_node {
                    abi::ALLOC_STRICT_NODE
                } else {
                    0
                },
            node,
            align: self.align,
            phys_limit: self.phys_limit,
            cache: self.cache.raw(),
            ..Default::default()
        })
    }
}

/// Maps `len` bytes of `fd` at `offset`, shared, readable and writable, at an address aligned to
/// the largest page size (1 GiB, 2 MiB) that fits in `len`, so huge mappings get PUD or PMD
/// entries without the caller doing anything special.
pub(crate) fn map_shared(
    fd: BorrowedFd<'_>,
    offset: u64,
    len: usize,
    page_size: usize,
) -> Result<Mapping> {
    const PMD: usize = 2 << 20;
    const PUD: usize = 1 << 30;
    let prot = ProtFlags::READ | ProtFlags::WRITE;
    let region = if len >= PUD || len >= PMD {
        let align = if len >= PUD { PUD } else { PMD };
        Region::map_aligned(fd, offset, len, prot, MapFlags::SHARED, align)
    } else {
        Region::map(fd, offset, len, prot, MapFlags::SHARED)
    }
    .map_err(|errno| Error::os("mmap", errno))?;
    Ok(Mapping::new(region, page_size))
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::abi::Version {}
    impl Sealed for crate::abi::Alloc {}
    impl Sealed for crate::abi::Free {}
    impl Sealed for crate::abi::Info {}
    impl Sealed for crate::abi::Export {}
    impl Sealed for crate::abi::Sync {}
}

/// An ABI structure and the ioctl that takes it: see [`Device::ioctl`].
pub trait Request: sealed::Sealed + Sized {
    /// The ioctl number, which encodes `size_of::<Self>()`.
    const OPCODE: u32;
    /// The ioctl's name, for errors.
    const NAME: &'static str;
}

impl Request for abi::Version {
    const OPCODE: u32 = abi::IOC_VERSION;
    const NAME: &'static str = "VERSION";
}

impl Request for abi::Alloc {
    const OPCODE: u32 = abi::IOC_ALLOC;
    const NAME: &'static str = "ALLOC";
}

impl Request for abi::Free {
    const OPCODE: u32 = abi::IOC_FREE;
    const NAME: &'static str = "FREE";
}

impl Request for abi::Info {
    const OPCODE: u32 = abi::IOC_INFO;
    const NAME: &'static str = "INFO";
}

impl Request for abi::Export {
    const OPCODE: u32 = abi::IOC_EXPORT;
    const NAME: &'static str = "EXPORT";
}

impl Request for abi::Sync {
    const OPCODE: u32 = abi::IOC_SYNC;
    const NAME: &'static str = "SYNC";
}

/// An open `/dev/contigmem`: every buffer allocated through it belongs to this file.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
    path: PathBuf,
    page_size: usize,
}

impl Device {
    /// Opens [`DEFAULT_PATH`].
    pub fn open() -> Result<Self> {
        Self::open_path(DEFAULT_PATH)
    }

    /// Opens the device at `path`.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_mode(path, OFlags::RDWR)
    }

    /// Opens the device at `path` read-only: such a file may allocate, free and query buffers
    /// and map them `PROT_READ` only (the kernel refuses `PROT_WRITE` with EACCES and `write`
    /// with EBADF).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_mode(path, OFlags::RDONLY)
    }

    fn open_mode(path: impl AsRef<Path>, mode: OFlags) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fd = rustix::fs::open(&path, mode | OFlags::CLOEXEC, Mode::empty())
            .map_err(|errno| Error::open(&path, errno))?;
        Ok(Self {
            fd,
            path,
            page_size: rustix::param::page_size(),
        })
    }

    /// The path this device was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The system page size: the unit of sizes and mmap offsets.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Issues the ioctl that takes `arg` and lets the kernel fill it in. This is the raw ABI,
    /// for tests of the device's checks; [`Device::alloc`] and friends are the usual way.
    pub fn ioctl<R: Request>(&self, arg: &mut R) -> Result<()> {
        sys::ioctl(self.fd.as_fd(), arg).map_err(|errno| Error::os(R::NAME, errno))
    }

    /// Issues ioctl `cmd` with a raw argument, for tests of the device's error paths: the kernel
    /// validates `arg` itself, so any value is safe to pass.
    pub fn ioctl_raw(&self, cmd: u32, arg: usize) -> Result<i32> {
        sys::ioctl_raw(self.fd.as_fd(), cmd, arg).map_err(|errno| Error::os("ioctl", errno))
    }

    /// The module's ABI version, kinds, limits and live counters.
    pub fn version(&self) -> Result<Version> {
        let mut raw = abi::Version::default();
        self.ioctl(&mut raw)?;
        Ok(Version::from_abi(&raw))
    }

    /// Allocates a zeroed buffer of at least `size` bytes from `kind`.
    pub fn alloc(&self, kind: Kind, size: u64) -> Result<Buffer<'_>> {
        self.alloc_with(kind, size, &AllocOptions::default())
    }

    /// Allocates a buffer of at least `size` bytes from `kind` with `options`.
    pub fn alloc_with(&self, kind: Kind, size: u64, options: &AllocOptions) -> Result<Buffer<'_>> {
        let mut raw = options.to_abi(kind, size)?;
        self.ioctl(&mut raw)?;
        Ok(Buffer::new(self, kind, &raw))
    }

    /// `pread(2)` at device file position `pos` (a buffer's cookie plus a byte offset).
    pub fn pread(&self, pos: u64, out: &mut [u8]) -> Result<usize> {
        rustix::io::pread(&self.fd, out, pos).map_err(|errno| Error::os("pread", errno))
    }

    /// `pwrite(2)` at device file position `pos`.
    pub fn pwrite(&self, pos: u64, data: &[u8]) -> Result<usize> {
        rustix::io::pwrite(&self.fd, data, pos).map_err(|errno| Error::os("pwrite", errno))
    }

    /// The open file, for calls the library does not wrap (`read`, `lseek`, `poll`...).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// What the kernel knows about buffer `id` of this file.
    pub fn info(&self, id: u64) -> Result<BufferInfo> {
        let mut raw = abi::Info {
            id,
            ..Default::default()
        };
        self.ioctl(&mut raw)?;
        BufferInfo::from_abi(&raw)
    }

    /// Frees buffer `id` of this file; its memory lives on until its last mapping is gone.
    pub fn free(&self, id: u64) -> Result<()> {
        self.ioctl(&mut abi::Free { id, reserved: 0 })
    }

    /// Maps `len` bytes at mmap offset `offset` with any `prot` and `flags`, for tests of the
    /// device's checks. [`Buffer::map`] is the usual way.
    ///
    /// `prot` must include `READ` and `flags` must not include `FIXED` (EINVAL otherwise), so
    /// that the result is a [`Mapping`] that is safe to read and cannot replace other memory.
    pub fn mmap_raw(
        &self,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
    ) -> Result<Mapping> {
        if !prot.contains(ProtFlags::READ) {
            return Err(Error::invalid("mmap_raw needs PROT_READ"));
        }
        if flags.contains(MapFlags::FIXED) {
            return Err(Error::invalid("mmap_raw refuses MAP_FIXED"));
        }
        let region = Region::map(self.fd.as_fd(), offset, len, prot, flags)
            .map_err(|errno| Error::os("mmap", errno))?;
        Ok(Mapping::new(region, self.page_size))
    }

    /// Maps `len` bytes at mmap offset `offset`, shared, readable and writable, at an address
    /// aligned to the largest page size (1 GiB, 2 MiB) that fits in `len`, so huge mappings get
    /// PUD or PMD entries without the caller doing anything special.
    pub(crate) fn mmap(&self, offset: u64, len: usize) -> Result<Mapping> {
        map_shared(self.fd.as_fd(), offset, len, self.page_size)
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lists_supported_kinds_only() {
        let mut raw = abi::Version {
            abi_version: abi::ABI_VERSION,
            kinds: (1 << abi::KIND_KMALLOC) | (1 << abi::KIND_HUGE) | (1 << 7),
            page_size: 4096,
            ..Default::default()
        };
        raw.max_size[abi::KIND_KMALLOC as usize] = 4 << 20;
        raw.max_size[abi::KIND_VMALLOC as usize] = 1 << 30;
        raw.max_size[abi::KIND_HUGE as usize] = 2 << 30;
        let v = Version::from_abi(&raw);
        assert!(v.is_compatible());
        assert_eq!(v.kinds, [Kind::Kmalloc, Kind::Huge]);
        assert_eq!(v.max_size(Kind::Kmalloc), Some(4 << 20));
        assert_eq!(v.max_size(Kind::Vmalloc), None);
        assert_eq!(v.max_size(Kind::Huge), Some(2 << 30));
        assert!(!v.supports(Kind::Pages));
    }

    #[test]
    fn alloc_options_fill_the_abi() {
        let raw = AllocOptions::new()
            .uninit(true)
            .node(Some(1))
            .align(1 << 21)
            .to_abi(Kind::Pages, 8192)
            .expect("valid options");
        assert_eq!(raw.size, 8192);
        assert_eq!(raw.kind, abi::KIND_PAGES);
        assert_eq!(raw.flags, abi::ALLOC_UNINIT);
        assert_eq!(raw.node, 1);
        let strict = AllocOptions::new()
            .node(Some(1))
            .strict_node(true)
            .to_abi(Kind::Vmalloc, 4096)
            .expect("valid options");
        assert_eq!((strict.flags, strict.node), (abi::ALLOC_STRICT_NODE, 1));
        assert_eq!(raw.align, 1 << 21);
        let any = AllocOptions::new().to_abi(Kind::Huge, 1).expect("defaults");
        assert_eq!((any.node, any.flags, any.align, any.cache), (-1, 0, 0, 0));
        assert!(AllocOptions::new()
            .node(Some(u32::MAX))
            .to_abi(Kind::Huge, 1)
            .is_err());
    }
}
