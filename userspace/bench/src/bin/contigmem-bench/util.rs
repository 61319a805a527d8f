// SPDX-License-Identifier: GPL-2.0

//! What the measurements share: page-fault counts, timing, raw mappings, sysfs knobs, copies
//! into a buffer.

use std::time::Instant;

use contigmem::{Buffer, Errno};

/// Prints a progress line on stderr.
pub fn progress(what: &str) {
    eprintln!("contigmem-bench: {what}");
}

/// Page faults (minor + major) of this process so far.
pub fn faults() -> u64 {
    // SAFETY: `getrusage` fills the zeroed struct we pass, which lives on our stack.
    let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: As above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    (usage.ru_minflt + usage.ru_majflt) as u64
}

/// Runs `f` and returns its result and the nanoseconds it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_nanos() as u64)
}

/// The median of `v` (0 when empty).
pub fn median(v: &mut [u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// The errno name of `e` ("ENOMEM"), or its number.
pub fn errno_name(e: Errno) -> String {
    contigmem::errno_name(e)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("errno {}", e.raw_os_error()))
}

/// The last OS error as an errno name.
pub fn last_errno() -> String {
    errno_name(Errno::from_raw_os_error(
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    ))
}

/// Writes `value` to a sysfs/procfs file.
pub fn write_knob(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("writing {value:?} to {path}: {e}"))
}

/// Reads a sysfs/procfs file, trimmed; empty when it cannot be read.
pub fn read_knob(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A mapping made with `mmap(2)` directly (anonymous, hugetlbfs, dma-buf), unmapped on drop.
pub struct RawMap {
    addr: *mut u8,
    len: usize,
}

impl RawMap {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, flags, fd, 0)`.
    pub fn new(len: usize, flags: i32, fd: i32) -> Result<Self, String> {
        // SAFETY: A new mapping at an address the kernel picks replaces nothing of ours.
        let addr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", last_errno()));
        }
        Ok(Self {
            addr: addr.cast(),
            len,
        })
    }

    /// `madvise(advice)` on the whole mapping.
    pub fn advise(&self, advice: i32) -> Result<(), String> {
        // SAFETY: The range is our own mapping.
        if unsafe { libc::madvise(self.addr.cast(), self.len, advice) } != 0 {
            return Err(format!("madvise: {}", last_errno()));
        }
        Ok(())
    }

    /// The start of the mapping.
    pub fn addr(&self) -> *mut u8 {
        self.addr
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // SAFETY: The range is our own mapping, used by no one after this.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

/// Writes one byte in every 4 KiB page of `[addr, addr + len)`.
pub fn touch_range(addr: *mut u8, len: usize) {
    for off in (0..len).step_by(4096) {
        // SAFETY: The callers pass a writable mapping of `len` bytes they own; volatile so the
        // store (and its page fault) happens.
        unsafe { addr.add(off).write_volatile(off as u8 | 1) };
    }
}

/// Copies `src` into `dst` in `chunk`-byte memcpys.
pub fn copy_chunks(dst: &mut [u8], src: &[u8], chunk: usize) {
    for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
        d.copy_from_slice(s);
    }
}

/// Writes the whole buffer with `pwrite` calls of `chunk` bytes from `src`; returns the bytes
/// written (all of `src`: a short write is an error).
pub fn pwrite_all(buf: &Buffer, src: &[u8], chunk: usize) -> Result<u64, String> {
    let mut written = 0;
    for (i, piece) in src.chunks(chunk).enumerate() {
        let n = buf
            .write_at((i * chunk) as u64, piece)
            .map_err(|e| e.to_string())?;
        if n != piece.len() {
            return Err(format!("short pwrite: {n} of {}", piece.len()));
        }
        written += n as u64;
    }
    Ok(written)
}
