// SPDX-License-Identifier: GPL-2.0

//! read()/write() on the device: `pread`/`pwrite`/`read` at a buffer's cookie plus a byte
//! offset move the same bytes the mapping shows, stop at the buffer's end, and refuse offsets
//! that name no buffer of the file.

use std::os::fd::AsRawFd;

use contigmem::{pattern, AllocOptions, Errno, Kind};

use crate::tap::{Context, Outcome, Tap};
use crate::util::{expect_errno, expect_live, live, open, M};
use crate::{check, check_eq};

pub fn register(tap: &mut Tap) {
    for kind in Kind::ALL {
        tap.test(
            &format!("read/write: {kind}: pread/pwrite agree with the mapping"),
            || agree(kind, false),
        );
    }
    tap.test(
        "read/write: huge HUGE_MAP buffer: pread/pwrite agree with the mapping",
        || agree(Kind::Huge, true),
    );
    tap.test(
        "read/write: short at the end, 0 past it for read, ENOSPC for write",
        ends,
    );
    tap.test(
        "read/write: lseek to a cookie, then read() advances",
        sequential,
    );
    tap.test(
        "read/write: unknown, freed and negative offsets give EINVAL",
        bad_offsets,
    );
    tap.test(
        "read/write: a bad user pointer gives EFAULT, a partly bad one a short count",
        bad_pointers,
    );
    tap.test("read/write: one 64M pread of a huge buffer", big);
}

/// A page-straddling window used by [`agree`]: offset and length.
const WINDOW: (u64, usize) = (4096 - 100, 5000);

fn agree(kind: Kind, huge_map: bool) -> Outcome {
    let dev = open()?;
    let size = if kind == Kind::Huge { 4 * M } else { 3 * 4096 };
    let buf = dev
        .alloc_with(kind, size, &AllocOptions::new().huge_map(huge_map))
        .ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    pattern::fill(&mut map, 7);
    // Read the whole buffer through the device: the same bytes as the mapping.
    let mut out = vec![0u8; buf.size() as usize];
    let n = buf.read_at(0, &mut out).ctx("pread")?;
    check_eq!(n, out.len(), "pread of the whole buffer");
    check!(out[..] == map[..], "pread and the mapping disagree");
    // Write a window through the device: the mapping shows it, the rest is untouched.
    let (off, len) = WINDOW;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ 0x5a).collect();
    let n = buf.write_at(off, &data).ctx("pwrite")?;
    check_eq!(n, len, "pwrite of the window");
    let off = off as usize;
    check!(
        map[off..off + len] == data[..],
        "the mapping misses the pwrite"
    );
    check!(
        map[..off] == out[..off] && map[off + len..] == out[off + len..],
        "pwrite changed bytes outside its window"
    );
    Ok(())
}

fn ends() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 8192).ctx("ALLOC")?;
    let mut out = vec![0u8; 300];
    check_eq!(
        buf.read_at(8192 - 100, &mut out).ctx("pread")?,
        100,
        "read across the end"
    );
    check_eq!(
        buf.read_at(8192, &mut out).ctx("pread")?,
        0,
        "read at the end"
    );
    check_eq!(
        dev.pread(buf.mmap_offset() + 9000, &mut out).ctx("pread")?,
        0,
        "read past the end"
    );
    check_eq!(
        buf.write_at(8192 - 10, &out).ctx("pwrite")?,
        10,
        "write across the end"
    );
    expect_errno(buf.write_at(8192, &out), Errno::NOSPC, "write at the end")?;
    check_eq!(buf.read_at(0, &mut []).ctx("pread")?, 0, "empty read");
    check_eq!(
        buf.write_at(8192, &[]).ctx("pwrite")?,
        0,
        "empty write at the end"
    );
    Ok(())
}

fn sequential() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Vmalloc, 3 * 4096).ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    pattern::fill(&mut map, 3);
    let fd = dev.as_fd();
    let pos = rustix::fs::seek(
        fd,
        rustix::fs::SeekFrom::Start(buf.file_offset(4096).ctx("offset")?),
    )
    .ctx("lseek")?;
    check_eq!(pos, buf.mmap_offset() + 4096, "lseek result");
    let mut out = vec![0u8; 6000];
    let mut total = 0;
    loop {
        let n = rustix::io::read(fd, &mut out[total..]).ctx("read")?;
        if n == 0 {
            break;
        }
        total += n;
        check!(total <= 6000, "read returned more than asked");
        if total == out.len() {
            break;
        }
    }
    check_eq!(total, 6000, "bytes read");
    check!(
        out[..] == map[4096..4096 + 6000],
        "read() and the mapping disagree"
    );
    let pos = rustix::fs::seek(fd, rustix::fs::SeekFrom::Current(0)).ctx("lseek")?;
    check_eq!(pos, buf.mmap_offset() + 4096 + 6000, "position after read");
    Ok(())
}

fn bad_offsets() -> Outcome {
    let dev = open()?;
    let before = live(&dev)?;
    let buf = dev.alloc(Kind::Kmalloc, 4096).ctx("ALLOC")?;
    let mut out = [0u8; 16];
    // An id no buffer of this file has, and another file's buffer.
    expect_errno(
        dev.pread(buf.mmap_offset() << 1, &mut out),
        Errno::INVAL,
        "unknown id",
    )?;
    let other = open()?;
    let theirs = other.alloc(Kind::Kmalloc, 4096).ctx("ALLOC")?;
    expect_errno(
        dev.pread(theirs.mmap_offset(), &mut out),
        Errno::INVAL,
        "another file's buffer",
    )?;
    expect_errno(
        dev.pwrite(0, &out),
        Errno::INVAL,
        "offset 0 (no buffer has id 0)",
    )?;
    // A freed buffer, even one still mapped, is no longer reachable by offset.
    let cookie = buf.mmap_offset();
    let map = buf.map().ctx("mmap")?;
    buf.free().ctx("FREE")?;
    expect_errno(
        dev.pread(cookie, &mut out),
        Errno::INVAL,
        "freed, still mapped",
    )?;
    drop(map);
    // Negative positions are refused by the VFS.
    // SAFETY: pread on our open fd into a live stack buffer of the given length.
    let r = unsafe { libc::pread(dev.as_fd().as_raw_fd(), out.as_mut_ptr().cast(), 16, -4096) };
    check_eq!(
        (r, std::io::Error::last_os_error().raw_os_error()),
        (-1, Some(libc::EINVAL)),
        "negative offset"
    );
    expect_live(
        &dev,
        (before.0 + 4096, before.1 + 1),
        "with the other file's buffer",
    )?;
    drop(theirs);
    drop(other);
    expect_live(&dev, before, "after all closed")
}

fn bad_pointers() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 8192).ctx("ALLOC")?;
    let fd = dev.as_fd().as_raw_fd();
    let pos = buf.mmap_offset() as i64;
    // SAFETY: The kernel checks the user pointer; address 8 is never mapped, so nothing of
    // ours is read or written.
    let (r, e) = unsafe {
        let r = libc::pread(fd, 8 as *mut libc::c_void, 4096, pos);
        (r, std::io::Error::last_os_error().raw_os_error())
    };
    check_eq!((r, e), (-1, Some(libc::EFAULT)), "pread into address 8");
    // SAFETY: As above, for reading.
    let (r, e) = unsafe {
        let r = libc::pwrite(fd, 8 as *const libc::c_void, 4096, pos);
        (r, std::io::Error::last_os_error().raw_os_error())
    };
    check_eq!((r, e), (-1, Some(libc::EFAULT)), "pwrite from address 8");
    // A destination whose second page is PROT_NONE: the first page is copied, then it stops.
    // SAFETY: A fresh anonymous mapping of two pages, which we own and unmap below.
    let area = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    check!(
        area != libc::MAP_FAILED,
        "mmap of two anonymous pages failed"
    );
    // SAFETY: `area` is our two-page mapping; the second page becomes inaccessible and the
    // kernel copies only into what it can reach.
    let r = unsafe {
        libc::mprotect(area.cast::<u8>().add(4096).cast(), 4096, libc::PROT_NONE);
        let r = libc::pread(fd, area, 8192, pos);
        libc::munmap(area, 8192);
        r
    };
    check_eq!(r, 4096, "pread into one good page then a PROT_NONE one");
    Ok(())
}

fn big() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Huge, 64 * M).ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    pattern::fill(&mut map, 11);
    let mut out = vec![0u8; buf.size() as usize];
    let n = buf.read_at(0, &mut out).ctx("pread")?;
    check_eq!(n, out.len(), "one pread of the whole buffer");
    pattern::check(&out, 11).map_err(|m| format!("pread data: {m}"))?;
    Ok(())
}
