// SPDX-License-Identifier: GPL-2.0

//! What an unprivileged holder of an open file may do: allocate and map, but neither read
//! physical addresses nor skip zeroing.

use contigmem::{pattern, AllocOptions, Errno, Kind};

use crate::sys;
use crate::tap::{Context, Outcome, Tap};
use crate::util::{expect_errno, open};

/// Registers the privilege tests.
pub fn register(tap: &mut Tap) {
    tap.test_root(
        "unprivileged: ALLOC works, phys_addr is 0, UNINIT gives EPERM",
        unprivileged,
    );
}

fn unprivileged() -> Outcome {
    let dev = open()?;
    sys::fork(
        |_| {
            sys::become_nobody()?;
            run_as_nobody(&dev).map_err(|f| format!("{f:?}"))
        },
        |_| Ok(()),
    )?;
    Ok(())
}

fn run_as_nobody(dev: &contigmem::Device) -> Outcome {
    dev.version().ctx("VERSION as nobody")?;
    for kind in [Kind::Kmalloc, Kind::Pages, Kind::Huge] {
        let buf = dev
            .alloc(kind, 64 << 10)
            .ctx(format!("ALLOC {kind} as nobody"))?;
        if buf.phys_addr() != 0 {
            return Err(format!(
                "{kind}: ALLOC.phys_addr as nobody: expected 0, saw {:#x}",
                buf.phys_addr()
            )
            .into());
        }
        let info = buf.info().ctx("INFO as nobody")?;
        if info.phys_addr != 0 {
            return Err(format!(
                "{kind}: INFO.phys_addr as nobody: expected 0, saw {:#x}",
                info.phys_addr
            )
            .into());
        }
        let mut map = buf.map().ctx("mmap as nobody")?;
        if let Some(at) = pattern::find_nonzero(&map) {
            return Err(format!("{kind}: fresh buffer not zero at {at:#x}").into());
        }
        pattern::fill(&mut map, 10);
        pattern::check(&map, 10).map_err(|m| format!("{kind} as nobody: {m}"))?;
    }
    for kind in [Kind::Kmalloc, Kind::Vmalloc] {
        let uninit = AllocOptions::new().uninit(true);
        expect_errno(
            dev.alloc_with(kind, 4096, &uninit),
            Errno::PERM,
            format!("ALLOC {kind} UNINIT as nobody"),
        )?;
    }
    Ok(())
}
