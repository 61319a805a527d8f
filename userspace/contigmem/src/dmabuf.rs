// SPDX-License-Identifier: GPL-2.0

//! dma-bufs exported from buffers (`CONTIGMEM_IOC_EXPORT`): file descriptors that hold the
//! buffer's memory, map it, and hand it to other processes and to drivers that import dma-bufs.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::io::Errno;

use crate::device::map_shared;
use crate::error::{Error, Result};
use crate::{abi, Mapping};

/// `DMA_BUF_IOCTL_SYNC`: `_IOW('b', 0, struct dma_buf_sync)` (`include/uapi/linux/dma-buf.h`).
const DMA_BUF_IOCTL_SYNC: u32 = (1 << 30) | (8 << 16) | ((b'b' as u32) << 8);
/// `DMA_BUF_SYNC_END`; READ and WRITE are `abi::SYNC_READ` and `abi::SYNC_WRITE`, whose values
/// the ABI shares with `<linux/dma-buf.h>`.
const DMA_BUF_SYNC_END: u64 = abi::SYNC_END as u64;

/// How the dma-buf's file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `O_RDONLY`: maps `PROT_READ` only.
    ReadOnly,
    /// `O_RDWR`.
    ReadWrite,
}

/// Options of [`crate::Buffer::export`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// The access mode of the dma-buf's file.
    pub access: Access,
    /// Close the descriptor on `exec` (`O_CLOEXEC`).
    pub cloexec: bool,
}

impl Default for ExportOptions {
    /// Read-write, close-on-exec: what `DMA_HEAP_IOCTL_ALLOC` users pass.
    fn default() -> Self {
        Self {
            access: Access::ReadWrite,
            cloexec: true,
        }
    }
}

impl ExportOptions {
    pub(crate) fn to_abi(self, id: u64) -> abi::Export {
        let access = match self.access {
            Access::ReadOnly => 0,
            Access::ReadWrite => 2,
        };
        abi::Export {
            id,
            fd_flags: access | if self.cloexec { abi::O_CLOEXEC } else { 0 },
            ..Default::default()
        }
    }
}

/// Which way a CPU access goes, for [`DmaBuf::sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncDir {
    /// The CPU reads what a device wrote.
    Read,
    /// The CPU writes for a device to read.
    Write,
    /// Both.
    ReadWrite,
}

impl SyncDir {
    /// The `DMA_BUF_SYNC_READ`/`WRITE` bits, which `CONTIGMEM_SYNC_*` share.
    pub(crate) fn flags(self) -> u32 {
        match self {
            SyncDir::Read => abi::SYNC_READ,
            SyncDir::Write => abi::SYNC_WRITE,
            SyncDir::ReadWrite => abi::SYNC_RW,
        }
    }
}

/// A dma-buf file descriptor of a contigmem buffer. It holds the buffer's memory until it and
/// every importer's hold are gone; it needs no `/dev/contigmem`.
#[derive(Debug)]
pub struct DmaBuf {
    fd: OwnedFd,
    size: u64,
    page_size: usize,
}

impl DmaBuf {
    pub(crate) fn new(fd: OwnedFd, size: u64, page_size: usize) -> Self {
        Self {
            fd,
            size,
            page_size,
        }
    }

    /// Takes a dma-buf descriptor (received over a Unix socket, say): its size is read with
    /// `lseek(SEEK_END)`, as dma-buf files report it.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        let size = rustix::fs::seek(&fd, rustix::fs::SeekFrom::End(0))
            .map_err(|e| Error::os("lseek on the dma-buf", e))?;
        rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0))
            .map_err(|e| Error::os("lseek on the dma-buf", e))?;
        Ok(Self::new(fd, size, rustix::param::page_size()))
    }

    /// The size in bytes: the whole buffer.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Maps the whole dma-buf, shared, readable and writable (huge-aligned as buffers are).
    pub fn map(&self) -> Result<Mapping> {
        let len = usize::try_from(self.size)
            .map_err(|_| Error::invalid(format!("{} bytes do not fit", self.size)))?;
        map_shared(self.fd.as_fd(), 0, len, self.page_size)
    }

    /// Brackets a CPU access (`DMA_BUF_IOCTL_SYNC`): `start` before the CPU touches the memory
    /// while devices may use it, then not `start` after.
    pub fn sync(&self, dir: SyncDir, start: bool) -> Result<()> {
        let mut flags = u64::from(dir.flags());
        if !start {
            flags |= DMA_BUF_SYNC_END;
        }
        let addr = std::ptr::addr_of_mut!(flags) as usize;
        crate::sys::ioctl_raw(self.fd.as_fd(), DMA_BUF_IOCTL_SYNC, addr)
            .map(|_| ())
            .map_err(|e: Errno| Error::os("DMA_BUF_IOCTL_SYNC", e))
    }

    /// Gives up the descriptor.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for DmaBuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for DmaBuf {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
