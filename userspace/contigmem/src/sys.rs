// SPDX-License-Identifier: GPL-2.0

//! The raw system calls of the library: the only place with raw pointers and `unsafe`.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::mm::{MapFlags, MremapFlags, ProtFlags};

/// An ioctl whose opcode is known only at run time, passing `arg` (a pointer or null).
struct RawIoctl {
    opcode: Opcode,
    arg: *mut core::ffi::c_void,
}

// SAFETY: `opcode` and `arg` are passed unchanged; IS_MUTATING is true, so rustix assumes the
// kernel may write through `arg`, which is the conservative choice.
unsafe impl Ioctl for RawIoctl {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        self.arg
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _extract_output: *mut core::ffi::c_void,
    ) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Issues ioctl `opcode` with argument `arg` (an address the kernel must validate itself).
///
/// Passing an arbitrary address is sound for us: the kernel never dereferences it as a pointer
/// into our memory without `copy_from_user`/`copy_to_user`, which fail with EFAULT on a bad one.
/// Only callers that pass a pointer to a live object of the size the opcode names may rely on
/// the result being written.
pub(crate) fn ioctl_raw(fd: BorrowedFd<'_>, opcode: u32, arg: usize) -> Result<i32, Errno> {
    // SAFETY: see the function's comment: the kernel checks `arg` with the uaccess helpers, and
    // callers that pass real objects pass them exclusively borrowed for the call's duration.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            RawIoctl {
                opcode: opcode as Opcode,
                arg: arg as *mut core::ffi::c_void,
            },
        )
    }
}

/// Issues ioctl `R::OPCODE` on `arg`, which the kernel reads and writes in place.
pub(crate) fn ioctl<R: crate::Request>(fd: BorrowedFd<'_>, arg: &mut R) -> Result<(), Errno> {
    // SAFETY: `arg` is an exclusively borrowed, live `R` for the duration of the call, and the
    // sealed `Request` trait guarantees that `R::OPCODE` encodes `size_of::<R>()`, so the kernel
    // copies neither from nor to more than the object. Every bit pattern is a valid `R` (plain
    // integers only), so whatever the kernel writes leaves `arg` valid.
    ioctl_raw(fd, R::OPCODE, core::ptr::from_mut(arg) as usize).map(|_| ())
}

/// A shared mapping of part of the device, unmapped on drop.
///
/// # Invariants
///
/// `ptr` is the start of a mapping of `len` bytes (`len > 0`) that this object alone owns: no
/// other code unmaps or remaps it. It is readable; it is writable when `writable` is true.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: a `Region` owns its memory as a `Vec<u8>` owns its buffer; the bytes may be shared with
// other mappings and processes, which the kernel keeps coherent, not the type system.
unsafe impl Send for Region {}
// SAFETY: as for `Send`: `&Region` gives only shared access to the bytes.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes of `fd` at `offset` with `prot` and `flags`.
    ///
    /// `prot` must contain `READ` and `flags` must not contain `FIXED` (callers check both).
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
    ) -> Result<Self, Errno> {
        debug_assert!(prot.contains(ProtFlags::READ) && !flags.contains(MapFlags::FIXED));
        // SAFETY: with a null hint and no MAP_FIXED the kernel picks an address range that is
        // not in use, so no existing memory of this process is replaced.
        let ptr = unsafe { rustix::mm::mmap(core::ptr::null_mut(), len, prot, flags, fd, offset) }?;
        let ptr = NonNull::new(ptr.cast()).ok_or(Errno::FAULT)?;
        // INVARIANT: the kernel created a fresh mapping of `len` bytes (non-zero, or mmap would
        // have failed with EINVAL) at `ptr`, readable because `prot` contains READ.
        Ok(Self {
            ptr,
            len,
            writable: prot.contains(ProtFlags::WRITE),
        })
    }

    /// As [`Region::map`], at an address aligned to `align` (a power of two): a range of
    /// `len + align` bytes is reserved (`PROT_NONE`, anonymous), the file is mapped over its
    /// aligned part with `MAP_FIXED`, and the rest of the reservation is unmapped. Huge-mapped
    /// buffers need this for PUD (1 GiB) entries; the module already aligns to 2 MiB.
    pub(crate) fn map_aligned(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
        align: usize,
    ) -> Result<Self, Errno> {
        debug_assert!(align.is_power_of_two() && !flags.contains(MapFlags::FIXED));
        let total = len.checked_add(align).ok_or(Errno::NOMEM)?;
        // SAFETY: with a null hint and no MAP_FIXED the kernel picks an unused range; nothing
        // of this process is replaced, and the reservation is private to this function.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                total,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }? as usize;
        let start = base.next_multiple_of(align);
        // SAFETY: `[start, start + len)` lies inside the reservation made above, which no other
        // code knows of, so MAP_FIXED replaces only our own PROT_NONE pages.
        let mapped = unsafe {
            rustix::mm::mmap(
                start as *mut _,
                len,
                prot,
                flags | MapFlags::FIXED,
                fd,
                offset,
            )
        };
        // SAFETY: The head and tail of the reservation (or all of it if the mapping failed) are
        // ours and hold nothing.
        unsafe {
            if let Err(e) = mapped {
                let _ = rustix::mm::munmap(base as *mut _, total);
                return Err(e);
            }
            if start > base {
                let _ = rustix::mm::munmap(base as *mut _, start - base);
            }
            let end = start + len;
            if base + total > end {
                let _ = rustix::mm::munmap(end as *mut _, base + total - end);
            }
        }
        let ptr = NonNull::new(start as *mut u8).ok_or(Errno::FAULT)?;
        // INVARIANT: the kernel created a mapping of `len` bytes at `ptr` (MAP_FIXED succeeded),
        // readable because `prot` contains READ.
        Ok(Self {
            ptr,
            len,
            writable: prot.contains(ProtFlags::WRITE),
        })
    }

    /// The start address of the mapping.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Whether the mapping may be written.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The mapped bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: by the type invariant `ptr` is a readable mapping of `len` bytes that lives as
        // long as `self`. Bytes are valid for any value.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapped bytes, writable; `None` if the mapping is read-only.
    pub(crate) fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: as in `as_slice`, and the mapping is writable; `&mut self` makes this the only
        // reference into the region from this object.
        Some(unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) })
    }

    /// Reads one byte of every `page`-sized step so that each page is faulted in.
    pub(crate) fn touch(&self, page: usize) {
        for offset in (0..self.len).step_by(page.max(1)) {
            // SAFETY: `offset < len`, so the byte is inside the readable mapping; a volatile read
            // keeps the compiler from dropping the access whose side effect (the fault) we want.
            unsafe { core::ptr::read_volatile(self.ptr.as_ptr().add(offset)) };
        }
    }

    /// Resizes the mapping to `new_len` bytes, letting the kernel move it.
    pub(crate) fn remap(&mut self, new_len: usize) -> Result<(), Errno> {
        // SAFETY: `ptr`/`len` describe a mapping this object owns (type invariant), and `&mut
        // self` proves no reference into it is alive, so moving or shrinking it invalidates
        // nothing.
        let ptr = unsafe {
            rustix::mm::mremap(
                self.ptr.as_ptr().cast(),
                self.len,
                new_len,
                MremapFlags::MAYMOVE,
            )
        }?;
        // INVARIANT: on success the kernel moved or resized the mapping to `new_len` bytes at
        // `ptr`; the old range is no longer ours.
        self.ptr = NonNull::new(ptr.cast()).ok_or(Errno::FAULT)?;
        self.len = new_len;
        Ok(())
    }

    /// Unmaps `len` bytes at `offset` (both page aligned, inside the mapping) and returns what is
    /// left before and after the hole.
    pub(crate) fn punch(
        self,
        offset: usize,
        len: usize,
    ) -> Result<(Option<Self>, Option<Self>), Errno> {
        let end = offset.checked_add(len).ok_or(Errno::INVAL)?;
        if len == 0 || end > self.len {
            return Err(Errno::INVAL);
        }
        // SAFETY: `[offset, end)` lies inside the mapping this object owns, and `self` is
        // consumed, so no reference into the hole can be alive.
        unsafe { rustix::mm::munmap(self.ptr.as_ptr().add(offset).cast(), len) }?;
        let me = core::mem::ManuallyDrop::new(self);
        let part = |start: usize, len: usize| {
            if len == 0 {
                return None;
            }
            // SAFETY: `start + len <= me.len`, so the address is inside the original mapping and
            // cannot be null.
            let ptr = unsafe { NonNull::new_unchecked(me.ptr.as_ptr().add(start)) };
            // INVARIANT: each part is a disjoint, non-empty piece of the original mapping, which
            // is never dropped itself (ManuallyDrop): each piece now owns its own range.
            Some(Region {
                ptr,
                len,
                writable: me.writable,
            })
        };
        Ok((part(0, offset), part(end, me.len - end)))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by this object (type invariant) and no reference into it
        // outlives `self`. A failure cannot be reported from drop; munmap of a range we mapped
        // does not fail.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Takes ownership of descriptor `fd`, which the kernel has just installed for us (EXPORT).
pub(crate) fn owned_fd(fd: i32) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: The kernel installed `fd` for this process just now, in the ioctl that returned
    // it, and nothing else in the process knows of it yet.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
