// SPDX-License-Identifier: GPL-2.0

//! Privilege is the opener's, as for `/proc/pid/pagemap`: a file opened without `CAP_SYS_ADMIN`
//! may allocate and map, but neither shows physical addresses nor skips zeroing, whoever uses it
//! later (a privileged daemon working on a client's file included); a file opened with it shows
//! physical addresses after its holder drops privileges, but UNINIT needs the caller's
//! privilege as well. Such a file also never maps a buffer with PUDs
//! it did not ask to be 1 GiB-aligned, since where PUDs appear would tell physical address bits.

use std::os::unix::fs::PermissionsExt;

use contigmem::{pattern, AllocOptions, Device, Errno, Kind};

use crate::sys;
use crate::tap::{Context, Fail, Outcome, Tap};
use crate::util::{alloc_huge, expect_errno, open, G};
use crate::{check, check_eq};

/// Registers the privilege tests.
pub fn register(tap: &mut Tap) {
    tap.test_root(
        "unprivileged opener: ALLOC works, phys_addr is 0, UNINIT gives EPERM",
        || as_nobody(|dev| unprivileged_file(&dev)),
    );
    tap.test_root(
        "a file opened unprivileged stays so in a privileged process: phys_addr 0, UNINIT EPERM",
        opened_unprivileged_used_by_root,
    );
    tap.test_root(
        "a file opened by root shows phys_addr after its holder drops to nobody (pagemap's rule), UNINIT EPERM",
        opened_by_root_used_by_nobody,
    );
}

/// Registers the PUD test, after the huge-map tests, which allocate the guest's one free aligned
/// GiB too and leave it free.
pub fn register_pud(tap: &mut Tap) {
    tap.test_root(
        "unprivileged opener: 1G HUGE huge map uses PMDs (512 faults), a PUD only when aligned 1G",
        || {
            let _open = OpenToAll::new()?;
            let dev = sys::with_euid(65534, Device::open)
                .map_err(|e| format!("open with euid nobody: {e}"))?;
            no_pud_unless_asked(&dev)
        },
    );
}

/// `/dev/contigmem` opened to everyone while this lives (the device is 0600 root otherwise).
struct OpenToAll;

impl OpenToAll {
    fn new() -> Result<Self, Fail> {
        set_mode(0o666)?;
        Ok(Self)
    }
}

impl Drop for OpenToAll {
    fn drop(&mut self) {
        let _ = set_mode(0o600);
    }
}

fn set_mode(mode: u32) -> Result<(), Fail> {
    std::fs::set_permissions(
        contigmem::DEFAULT_PATH,
        std::fs::Permissions::from_mode(mode),
    )
    .map_err(|e| format!("chmod {mode:o} {}: {e}", contigmem::DEFAULT_PATH).into())
}

/// Runs `f` in a child that became nobody and opened the device itself.
fn as_nobody(f: impl FnOnce(Device) -> Outcome) -> Outcome {
    let _open = OpenToAll::new()?;
    sys::fork(
        |_| {
            sys::become_nobody()?;
            let dev = Device::open().map_err(|e| format!("open as nobody: {e}"))?;
            f(dev).map_err(|f| format!("{f:?}"))
        },
        |_| Ok(()),
    )?;
    Ok(())
}

/// What a file without privilege gives: zeroed memory, no physical address, no UNINIT.
fn unprivileged_file(dev: &Device) -> Outcome {
    dev.version().ctx("VERSION")?;
    for kind in [Kind::Kmalloc, Kind::Pages, Kind::Huge] {
        let buf = dev.alloc(kind, 64 << 10).ctx(format!("ALLOC {kind}"))?;
        check_eq!(buf.phys_addr(), 0, format!("{kind}: ALLOC.phys_addr"));
        let info = buf.info().ctx("INFO")?;
        check_eq!(info.phys_addr, 0, format!("{kind}: INFO.phys_addr"));
        let mut map = buf.map().ctx("mmap")?;
        if let Some(at) = pattern::find_nonzero(&map) {
            return Err(format!("{kind}: fresh buffer not zero at {at:#x}").into());
        }
        pattern::fill(&mut map, 10);
        pattern::check(&map, 10).map_err(|m| format!("{kind}: {m}"))?;
    }
    for kind in [Kind::Kmalloc, Kind::Vmalloc] {
        let uninit = AllocOptions::new().uninit(true);
        expect_errno(
            dev.alloc_with(kind, 4096, &uninit),
            Errno::PERM,
            format!("ALLOC {kind} UNINIT"),
        )?;
    }
    Ok(())
}

/// A root process that opened the device with its effective ids set to nobody's (as a daemon
/// handed a client's file): back to root, it gets no more from that file than nobody would.
fn opened_unprivileged_used_by_root() -> Outcome {
    let _open = OpenToAll::new()?;
    sys::fork(
        |_| {
            let dev = sys::with_euid(65534, Device::open)
                .map_err(|e| format!("open with euid nobody: {e}"))?;
            check_eq!(rustix::process::geteuid().as_raw(), 0, "euid after");
            unprivileged_file(&dev).map_err(|f| format!("{f:?}"))
        },
        |_| Ok(()),
    )?;
    Ok(())
}

/// A file root opened, used by the same process after it became nobody: physical addresses, as
/// `/proc/pid/pagemap` opened by root still shows frame numbers, but no UNINIT memory (which may
/// hold another process's data): that needs the caller's privilege too.
fn opened_by_root_used_by_nobody() -> Outcome {
    let dev = open()?;
    sys::fork(
        |_| {
            sys::become_nobody()?;
            let buf = dev
                .alloc(Kind::Pages, 64 << 10)
                .map_err(|e| format!("ALLOC as nobody: {e}"))?;
            let info = buf.info().map_err(|e| format!("INFO as nobody: {e}"))?;
            if info.phys_addr == 0 || buf.phys_addr() != info.phys_addr {
                return Err(format!(
                    "phys_addr through root's file: ALLOC {:#x}, INFO {:#x}",
                    buf.phys_addr(),
                    info.phys_addr
                ));
            }
            match dev.alloc_with(Kind::Kmalloc, 4096, &AllocOptions::new().uninit(true)) {
                Err(e) if e.errno() == Errno::PERM => Ok(()),
                other => Err(format!(
                    "ALLOC UNINIT as nobody through root's file: expected EPERM, saw {:?}",
                    other.map(|b| b.id())
                )),
            }
        },
        |_| Ok(()),
    )?;
    Ok(())
}

/// 1 GiB HUGE with huge mappings through an unprivileged file: a 1 GiB range comes 1 GiB-aligned
/// from `alloc_contig_pages`, yet the mapping must use PMDs unless the caller asked for the
/// alignment (then the PUD tells nothing the request did not). The file is opened with euid
/// nobody by the test process itself: a forked child's own kernel allocations (page tables,
/// stack) may land in the guest's one free aligned GiB and leave no room for the buffer.
fn no_pud_unless_asked(dev: &Device) -> Outcome {
    for (align, want) in [(0, 512), (G, 1)] {
        let options = AllocOptions::new().huge_map(true).align(align);
        let buf = alloc_huge(dev, G, &options)?;
        let mut map = buf.map().ctx("mmap")?;
        check!(
            map.addr() as u64 % G == 0,
            "the library placed the mapping at {:#x}, not 1G-aligned",
            map.addr()
        );
        let faults = crate::hugemap::touch(&mut map);
        println!("# unprivileged 1G HUGE, align {align:#x}: {faults} faults");
        check_eq!(
            faults,
            want,
            format!("faults touching 1G (align {align:#x})")
        );
    }
    Ok(())
}
