// SPDX-License-Identifier: GPL-2.0

//! The ABI of `/dev/contigmem`: the Rust mirror of `include/uapi/linux/contigmem.h`.
//!
//! This file uses `core` only, so that the kernel module and the userspace library compile the
//! very same definitions; a host test (`userspace/contigmem/tests/abi.rs`) compiles the C header
//! and checks that every size, field offset and ioctl number agrees with it.

// The kernel module uses part of it and sees its `pub` items as crate-private.
#![allow(dead_code, unreachable_pub)]

/// The ABI version reported by `CONTIGMEM_IOC_VERSION`.
pub const ABI_VERSION: u32 = 1;

/// Number of back-ends (`enum contigmem_kind`).
pub const KIND_COUNT: u32 = 5;
/// Length of [`Version::max_size`].
pub const KINDS_MAX: usize = 8;

pub const KIND_KMALLOC: u32 = 0;
pub const KIND_KZALLOC: u32 = 1;
pub const KIND_VMALLOC: u32 = 2;
pub const KIND_PAGES: u32 = 3;
pub const KIND_HUGE: u32 = 4;

/// Do not zero the buffer: allowed to `CAP_SYS_ADMIN` only.
pub const ALLOC_UNINIT: u32 = 1 << 0;
/// Map with PMD/PUD entries on fault (PAGES, HUGE): PFN maps, not usable by `get_user_pages`.
pub const ALLOC_HUGE_MAP: u32 = 1 << 1;
/// Allocate on `node` only: `ENOMEM` rather than memory of another node.
pub const ALLOC_STRICT_NODE: u32 = 1 << 2;
/// Every flag `CONTIGMEM_IOC_ALLOC` knows.
pub const ALLOC_FLAGS: u32 = ALLOC_UNINIT | ALLOC_HUGE_MAP | ALLOC_STRICT_NODE;

/// Caching modes (`enum contigmem_cache`).
pub const CACHE_WB: u32 = 0;
pub const CACHE_WC: u32 = 1;
pub const CACHE_UC: u32 = 2;
pub const CACHE_COUNT: u32 = 3;

/// The buffer is physically contiguous.
pub const INFO_CONTIGUOUS: u32 = 1 << 0;
/// The buffer was allocated with [`ALLOC_UNINIT`].
pub const INFO_UNINIT: u32 = 1 << 1;
/// The buffer was allocated with [`ALLOC_HUGE_MAP`].
pub const INFO_HUGE_MAP: u32 = 1 << 2;
/// Mappings of the buffer work with `get_user_pages` (O_DIRECT, io_uring fixed buffers).
pub const INFO_PINNABLE: u32 = 1 << 3;
/// The buffer was allocated with [`ALLOC_STRICT_NODE`].
pub const INFO_STRICT_NODE: u32 = 1 << 4;

/// `struct contigmem_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub abi_version: u32,
    pub kinds: u32,
    pub page_size: u64,
    pub max_size: [u64; KINDS_MAX],
    pub max_total_bytes: u64,
    pub max_file_bytes: u64,
    pub live_bytes: u64,
    pub live_buffers: u64,
    /// The `CONTIGMEM_ALLOC_*` flags this module knows (0 from modules older than the field).
    pub alloc_flags: u32,
    /// Bit `1 << mode` for each caching mode the kernel offers (0 from older modules).
    pub cache_modes: u32,
    pub reserved: [u64; 1],
}

/// `struct contigmem_alloc`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alloc {
    pub size: u64,
    pub kind: u32,
    pub flags: u32,
    pub node: i32,
    /// The caching mode (`CACHE_*`).
    pub cache: u32,
    pub align: u64,
    /// 0, or a physical address the whole buffer must lie below.
    pub phys_limit: u64,
    pub reserved1: u64,
    pub id: u64,
    pub mmap_offset: u64,
    pub reserved_size: u64,
    pub phys_addr: u64,
    pub alloc_ns: u64,
    pub reserved2: [u64; 2],
}

/// `struct contigmem_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Free {
    pub id: u64,
    pub reserved: u64,
}

/// `struct contigmem_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub id: u64,
    pub kind: u32,
    pub flags: u32,
    pub size: u64,
    pub mmap_offset: u64,
    pub phys_addr: u64,
    pub segments: u64,
    pub mappings: u64,
    pub node: i32,
    /// The caching mode (`CACHE_*`).
    pub cache: u32,
    /// Pages of the buffer that are not on `node`.
    pub off_node_pages: u64,
    /// Live dma-bufs exported from the buffer.
    pub dmabufs: u64,
    pub reserved: [u64; 1],
}

/// `O_CLOEXEC` (`include/uapi/asm-generic/fcntl.h`; x86 uses these values).
pub const O_CLOEXEC: u32 = 0o2000000;
/// `O_ACCMODE`: the access mode bits of `O_RDONLY`, `O_WRONLY`, `O_RDWR`.
pub const O_ACCMODE: u32 = 0o3;
/// The flags [`Export::fd_flags`] takes, as `DMA_HEAP_IOCTL_ALLOC`'s `fd_flags`.
pub const EXPORT_FD_FLAGS: u32 = O_CLOEXEC | O_ACCMODE;

/// `struct contigmem_export`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Export {
    pub id: u64,
    /// `O_CLOEXEC`, and the dma-buf file's access mode.
    pub fd_flags: u32,
    /// The dma-buf's file descriptor.
    pub fd: i32,
    pub reserved: [u64; 2],
}

/// `DMA_BUF_SYNC_*` values, for [`Sync::flags`].
pub const SYNC_READ: u32 = 1 << 0;
pub const SYNC_WRITE: u32 = 1 << 1;
pub const SYNC_RW: u32 = SYNC_READ | SYNC_WRITE;
pub const SYNC_START: u32 = 0;
pub const SYNC_END: u32 = 1 << 2;
pub const SYNC_FLAGS: u32 = SYNC_RW | SYNC_END;

/// `struct contigmem_sync`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sync {
    pub id: u64,
    pub offset: u64,
    /// Bytes, or 0: to the end of the buffer.
    pub length: u64,
    pub flags: u32,
    pub reserved0: u32,
}

/// The ioctl type ("magic") of contigmem.
pub const IOC_MAGIC: u32 = 0xCD;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` as in `include/uapi/asm-generic/ioctl.h`.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (IOC_MAGIC << 8) | nr
}

pub const IOC_VERSION: u32 = ioc(IOC_READ, 0x10, core::mem::size_of::<Version>());
pub const IOC_ALLOC: u32 = ioc(IOC_READ | IOC_WRITE, 0x11, core::mem::size_of::<Alloc>());
pub const IOC_FREE: u32 = ioc(IOC_WRITE, 0x12, core::mem::size_of::<Free>());
pub const IOC_INFO: u32 = ioc(IOC_READ | IOC_WRITE, 0x13, core::mem::size_of::<Info>());
pub const IOC_EXPORT: u32 = ioc(IOC_READ | IOC_WRITE, 0x14, core::mem::size_of::<Export>());
pub const IOC_SYNC: u32 = ioc(IOC_WRITE, 0x15, core::mem::size_of::<Sync>());

// The structures have no implicit padding: each size is the sum of its fields.
const _: () =
    assert!(core::mem::size_of::<Version>() == 4 + 4 + 8 + 8 * KINDS_MAX + 4 * 8 + 4 + 4 + 8);
const _: () = assert!(core::mem::size_of::<Alloc>() == 8 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + 5 * 8 + 16);
const _: () = assert!(core::mem::size_of::<Free>() == 16);
const _: () = assert!(core::mem::size_of::<Info>() == 8 + 4 + 4 + 5 * 8 + 4 + 4 + 8 + 8 + 8);
const _: () = assert!(core::mem::size_of::<Export>() == 8 + 4 + 4 + 16);
const _: () = assert!(core::mem::size_of::<Sync>() == 3 * 8 + 4 + 4);
