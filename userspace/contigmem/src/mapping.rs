// SPDX-License-Identifier: GPL-2.0

//! A mapping of (part of) a buffer into this process: bytes to read and write, unmapped on drop.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::error::{Error, Result};
use crate::sys::Region;

/// A window of a buffer mapped into this process, unmapped on drop.
///
/// A mapping does not borrow its [`Buffer`](crate::Buffer) or the [`Device`](crate::Device): the
/// kernel keeps the memory alive while it is mapped, even after `FREE` or `close()`.
///
/// The bytes are shared: other mappings of the same buffer, here or in another process (after
/// `fork()`), see every write at once. Rust's aliasing rules cannot see that; treat a buffer
/// mapped twice like memory shared with a device.
pub struct Mapping {
    region: Region,
    page_size: usize,
}

impl Mapping {
    pub(crate) fn new(region: Region, page_size: usize) -> Self {
        Self { region, page_size }
    }

    /// The address of the first byte.
    pub fn addr(&self) -> usize {
        self.region.addr()
    }

    /// Whether the mapping may be written (it was mapped with `PROT_WRITE`).
    pub fn is_writable(&self) -> bool {
        self.region.writable()
    }

    /// The system page size, the unit of [`Mapping::unmap_range`].
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Faults every page in by reading one byte of each, so that `/proc/self/pagemap` shows it.
    pub fn touch(&self) {
        self.region.touch(self.page_size);
    }

    /// Resizes the mapping with `mremap(MREMAP_MAYMOVE)`. contigmem mappings cannot grow: a
    /// larger `new_len` fails with EFAULT and leaves the mapping as it was.
    pub fn remap(&mut self, new_len: usize) -> Result<()> {
        self.region
            .remap(new_len)
            .map_err(|errno| Error::os("mremap", errno))
    }

    /// Unmaps `len` bytes at `offset` (both multiples of the page size) and returns the parts
    /// of the mapping before and after the hole, each unmapped on its own drop.
    ///
    /// On error the whole mapping is unmapped.
    pub fn unmap_range(
        self,
        offset: usize,
        len: usize,
    ) -> Result<(Option<Mapping>, Option<Mapping>)> {
        if offset % self.page_size != 0 || len % self.page_size != 0 {
            return Err(Error::invalid(format!(
                "unmap of {len:#x} bytes at {offset:#x}: not multiples of the page size {:#x}",
                self.page_size
            )));
        }
        let page_size = self.page_size;
        let (head, tail) = self
            .region
            .punch(offset, len)
            .map_err(|errno| Error::os("munmap", errno))?;
        let wrap = |r: Option<Region>| r.map(|region| Mapping::new(region, page_size));
        Ok((wrap(head), wrap(tail)))
    }
}

impl Deref for Mapping {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.region.as_slice()
    }
}

impl DerefMut for Mapping {
    /// # Panics
    ///
    /// If the mapping is read-only (made by [`Device::mmap_raw`](crate::Device::mmap_raw)
    /// without `PROT_WRITE`).
    fn deref_mut(&mut self) -> &mut [u8] {
        self.region
            .as_mut_slice()
            .expect("a read-only contigmem mapping cannot be written")
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("addr", &format_args!("{:#x}", self.addr()))
            .field("len", &self.len())
            .field("writable", &self.is_writable())
            .finish()
    }
}
