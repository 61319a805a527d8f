// SPDX-License-Identifier: GPL-2.0

//! mmap or read(): moving a buffer's bytes through its mapping vs through read()/pread()/
//! pwrite() on the device, for every kind.

use contigmem::{Buffer, Device, Kind};
use contigmem_bench::schema::Transfer;

use crate::util::{copy_chunks, progress, pwrite_all, timed};
use crate::Plan;

const M1: usize = 1 << 20;

/// Runs `f` `n` times and returns the fastest run's nanoseconds, or the first error.
fn best_of(n: u32, mut f: impl FnMut() -> Result<(), String>) -> Result<u64, String> {
    let mut best = u64::MAX;
    for _ in 0..n {
        let (r, ns) = timed(&mut f);
        r?;
        best = best.min(ns);
    }
    Ok(best)
}

/// Reads the whole buffer with `pread` calls of `chunk` bytes into `dst`.
fn pread_all(buf: &Buffer, dst: &mut [u8], chunk: usize) -> Result<(), String> {
    for (i, piece) in dst.chunks_mut(chunk).enumerate() {
        let n = buf
            .read_at((i * chunk) as u64, piece)
            .map_err(|e| e.to_string())?;
        if n != piece.len() {
            return Err(format!("short pread: {n} of {}", piece.len()));
        }
    }
    Ok(())
}

/// Reads the whole buffer sequentially: `lseek` to its cookie, then `read` calls of `chunk`.
fn read_all(dev: &Device, buf: &Buffer, dst: &mut [u8], chunk: usize) -> Result<(), String> {
    let fd = dev.as_fd();
    rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(buf.mmap_offset()))
        .map_err(|e| format!("lseek: {e}"))?;
    for piece in dst.chunks_mut(chunk) {
        let want = piece.len();
        let n = rustix::io::read(fd, piece).map_err(|e| format!("read: {e}"))?;
        if n != want {
            return Err(format!("short read: {n} of {want}"));
        }
    }
    Ok(())
}

/// Copies `src` into `dst` in `chunk`-byte pieces with `rep movsb`, the instruction the kernel's
/// `copy_to_user` uses on x86-64. A control for pread: under TCG, `rep movsb` is emulated far
/// more slowly than the vector loads and stores of the C library's `memcpy`, so a gap between
/// `mmap-read` and `pread` that this row shares is the emulator's, not the kernel's.
#[cfg(target_arch = "x86_64")]
fn copy_chunks_movsb(dst: &mut [u8], src: &[u8], chunk: usize) {
    for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
        let len = d.len().min(s.len());
        // SAFETY: `d` and `s` are valid, non-overlapping slices of at least `len` bytes;
        // `rep movsb` copies `rcx` bytes from `rsi` to `rdi` with the direction flag clear (the
        // ABI guarantees it at function boundaries) and touches nothing else.
        unsafe {
            core::arch::asm!(
                "rep movsb",
                inout("rcx") len => _,
                inout("rdi") d.as_mut_ptr() => _,
                inout("rsi") s.as_ptr() => _,
                options(nostack, preserves_flags)
            );
        }
    }
}

fn one_kind(dev: &Device, kind: Kind, size: u64, repeats: u32) -> Result<Vec<Transfer>, String> {
    let buf = dev.alloc(kind, size).map_err(|e| e.to_string())?;
    let len = buf.size() as usize;
    let mut map = buf.map().map_err(|e| e.to_string())?;
    map.fill(0x5a);
    let mut user = vec![0xa5u8; len];
    let mut rows = Vec::new();
    let mut row = |method: &str, chunk: usize, ns: Result<u64, String>| -> Result<(), String> {
        let ns = ns.map_err(|e| format!("{kind} {method}: {e}"))?.max(1);
        rows.push(Transfer {
            kind: kind.name().to_owned(),
            size: len as u64,
            method: method.to_owned(),
            chunk: chunk as u64,
            ns,
            mib_per_s: len as f64 / (1 << 20) as f64 / (ns as f64 / 1e9),
        });
        Ok(())
    };
    row(
        "mmap-read",
        M1,
        best_of(repeats, || {
            copy_chunks(&mut user, &map, M1);
            Ok(())
        }),
    )?;
    row(
        "mmap-write",
        M1,
        best_of(repeats, || {
            copy_chunks(&mut map, &user, M1);
            Ok(())
        }),
    )?;
    #[cfg(target_arch = "x86_64")]
    row(
        "mmap-read-movsb",
        M1,
        best_of(repeats, || {
            copy_chunks_movsb(&mut user, &map, M1);
            Ok(())
        }),
    )?;
    row(
        "mmap-cold-read",
        M1,
        best_of(repeats, || {
            let fresh = buf.map().map_err(|e| e.to_string())?;
            copy_chunks(&mut user, &fresh, M1);
            Ok(())
        }),
    )?;
    for chunk in [4096, 64 << 10, M1] {
        row(
            "pread",
            chunk,
            best_of(repeats, || pread_all(&buf, &mut user, chunk)),
        )?;
    }
    row(
        "pwrite",
        M1,
        best_of(repeats, || pwrite_all(&buf, &user, M1).map(drop)),
    )?;
    row(
        "read",
        64 << 10,
        best_of(repeats, || read_all(dev, &buf, &mut user, 64 << 10)),
    )?;
    // The last pass was a read of what the previous pwrite put there: check it arrived.
    if user.iter().zip(map.iter()).any(|(a, b)| a != b) {
        return Err(format!("{kind}: read() and the mapping disagree"));
    }
    Ok(rows)
}

pub fn run(dev: &Device, plan: &Plan) -> Vec<Transfer> {
    let big = plan.map_sizes.first().copied().unwrap_or(64 << 20);
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let size = match kind {
            Kind::Vmalloc | Kind::Huge => big,
            _ => big.min(4 << 20),
        };
        match one_kind(dev, kind, size, plan.repeats.min(5)) {
            Ok(rows) => {
                for r in &rows {
                    progress(&format!(
                        "  {kind} {} {} ({}): {:.0} MiB/s",
                        contigmem::format_size(r.size),
                        r.method,
                        contigmem::format_size(r.chunk),
                        r.mib_per_s
                    ));
                }
                out.extend(rows);
            }
            Err(e) => progress(&format!("  {kind}: not measured: {e}")),
        }
    }
    out
}
