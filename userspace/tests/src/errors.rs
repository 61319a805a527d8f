// SPDX-License-Identifier: GPL-2.0

//! Bad inputs and the errno each must give: every check of ALLOC, FREE, INFO and mmap.

use contigmem::{abi, Device, Errno, Error, Kind, MapFlags, ProtFlags, Version};

use crate::sys;
use crate::tap::{Context, Outcome, Tap};
use crate::util::{expect_errno, open, size_name};

/// A valid ALLOC request (4 KiB of pages) changed by `edit`; frees the buffer if the kernel
/// accepted it after all.
fn alloc_raw(dev: &Device, edit: impl FnOnce(&mut abi::Alloc)) -> Result<(), Error> {
    let mut req = abi::Alloc {
        size: 4096,
        kind: abi::KIND_PAGES,
        node: -1,
        ..Default::default()
    };
    edit(&mut req);
    dev.ioctl(&mut req)?;
    let _ = dev.free(req.id);
    Ok(())
}

/// One row of the table: a name, the errno, and the call.
type Case = (String, Errno, Box<dyn Fn(&Device) -> Result<(), Error>>);

fn case(
    name: impl Into<String>,
    want: Errno,
    call: impl Fn(&Device) -> Result<(), Error> + 'static,
) -> Case {
    (name.into(), want, Box::new(call))
}

fn alloc_cases(v: &Version) -> Vec<Case> {
    let mut cases = vec![
        case("ALLOC size 0", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.size = 0)
        }),
        case("ALLOC kind 5", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.kind = 5)
        }),
        case("ALLOC kind 1000", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.kind = 1000)
        }),
        case("ALLOC kind u32::MAX", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.kind = u32::MAX)
        }),
        case("ALLOC unknown flag 1<<5", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.flags = 1 << 5)
        }),
        case("ALLOC unknown flag 1<<31", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.flags = 1 << 31)
        }),
        case("ALLOC cache mode 3", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.cache = contigmem::abi::CACHE_COUNT)
        }),
        case("ALLOC cache mode u32::MAX", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.cache = u32::MAX)
        }),
        case("ALLOC write-combining kmalloc", Errno::INVAL, |d| {
            alloc_raw(d, |a| {
                a.kind = contigmem::abi::KIND_KMALLOC;
                a.cache = contigmem::abi::CACHE_WC
            })
        }),
        case("ALLOC uncached kzalloc", Errno::INVAL, |d| {
            alloc_raw(d, |a| {
                a.kind = contigmem::abi::KIND_KZALLOC;
                a.cache = contigmem::abi::CACHE_UC
            })
        }),
        case("ALLOC write-combining vmalloc", Errno::INVAL, |d| {
            alloc_raw(d, |a| {
                a.kind = contigmem::abi::KIND_VMALLOC;
                a.cache = contigmem::abi::CACHE_WC
            })
        }),
        case("ALLOC reserved1 != 0", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.reserved1 = 1)
        }),
        case("ALLOC phys_limit below a page", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.phys_limit = 4095)
        }),
        case("ALLOC phys_limit on kmalloc", Errno::INVAL, |d| {
            alloc_raw(d, |a| {
                a.kind = contigmem::abi::KIND_KMALLOC;
                a.phys_limit = 1 << 32
            })
        }),
        case("ALLOC node 4096", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.node = 4096)
        }),
        case("ALLOC node -2", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.node = -2)
        }),
        case("ALLOC pages align 3", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.align = 3)
        }),
        case("ALLOC pages align 2048 (< page size)", Errno::INVAL, |d| {
            alloc_raw(d, |a| a.align = 2048)
        }),
        case("ALLOC kmalloc with align", Errno::INVAL, |d| {
            alloc_raw(d, |a| {
                a.kind = abi::KIND_KMALLOC;
                a.align = 4096;
            })
        }),
        case("ALLOC vmalloc with align", Errno::INVAL, |d| {
            alloc_raw(d, |a| {
                a.kind = abi::KIND_VMALLOC;
                a.align = 4096;
            })
        }),
        case("ALLOC at address 8", Errno::FAULT, |d| {
            d.ioctl_raw(abi::IOC_ALLOC, 8).map(drop)
        }),
        case("VERSION at address 8", Errno::FAULT, |d| {
            d.ioctl_raw(abi::IOC_VERSION, 8).map(drop)
        }),
        case("FREE at address 8", Errno::FAULT, |d| {
            d.ioctl_raw(abi::IOC_FREE, 8).map(drop)
        }),
        case("INFO at address 8", Errno::FAULT, |d| {
            d.ioctl_raw(abi::IOC_INFO, 8).map(drop)
        }),
        case("unknown ioctl nr 0x14", Errno::NOTTY, |d| {
            d.ioctl_raw(abi::IOC_INFO & !0xff | 0x14, 0).map(drop)
        }),
        case("ALLOC number with a wrong size", Errno::NOTTY, |d| {
            let mut big = [0u64; 32];
            let cmd = (abi::IOC_ALLOC & !(0x3fff << 16)) | ((size_of_val(&big) as u32) << 16);
            d.ioctl_raw(cmd, big.as_mut_ptr() as usize).map(drop)
        }),
    ];
    for kind in v.kinds.iter().copied() {
        for size in [u64::MAX, u64::MAX - 1] {
            cases.push(case(
                format!("ALLOC {kind} size {size:#x}"),
                Errno::TOOBIG,
                move |d| {
                    alloc_raw(d, |a| {
                        a.kind = kind.raw();
                        a.size = size;
                    })
                },
            ));
        }
        if let Some(max) = v.max_size(kind) {
            cases.push(case(
                format!("ALLOC {kind} max_size + 1 ({} + 1)", size_name(max)),
                Errno::TOOBIG,
                move |d| {
                    alloc_raw(d, |a| {
                        a.kind = kind.raw();
                        a.size = max + 1;
                    })
                },
            ));
        }
    }
    cases
}

/// Registers the bad-input tests.
pub fn register(tap: &mut Tap, v: &Version) {
    for (name, want, call) in alloc_cases(v) {
        tap.test(&format!("{name} -> {want:?}"), || {
            let dev = open()?;
            expect_errno(call(&dev), want, &name)
        });
    }
    tap.test("FREE twice -> ENOENT", free_twice);
    tap.test("FREE and INFO of an id never issued -> ENOENT", unknown_id);
    tap.test(
        "FREE and INFO of another open file's id -> ENOENT",
        other_files_id,
    );
    tap.test(
        "FREE with reserved != 0 -> EINVAL, buffer kept",
        free_reserved,
    );
    tap.test("mmap of an unknown cookie -> EINVAL", mmap_unknown);
    tap.test("mmap of a freed buffer's cookie -> EINVAL", mmap_freed);
    tap.test(
        "mmap of another open file's cookie -> EINVAL",
        mmap_other_file,
    );
    tap.test("mmap of a window past the end -> EINVAL", mmap_past_end);
    tap.test("mmap MAP_PRIVATE -> EINVAL", mmap_private);
    tap.test("mmap PROT_EXEC -> EPERM", mmap_exec);
    tap.test("mprotect(PROT_EXEC) of a mapping -> EACCES", mprotect_exec);
    tap.test("mremap growth -> EFAULT, mapping kept", mremap_grow);
}

fn free_twice() -> Outcome {
    let dev = open()?;
    let id = dev.alloc(Kind::Pages, 4096).ctx("ALLOC")?.leak();
    dev.free(id).ctx("first FREE")?;
    expect_errno(dev.free(id), Errno::NOENT, "second FREE")
}

fn unknown_id() -> Outcome {
    let dev = open()?;
    for id in [0, u64::MAX, 1 << 62] {
        expect_errno(dev.free(id), Errno::NOENT, format!("FREE {id:#x}"))?;
        expect_errno(dev.info(id), Errno::NOENT, format!("INFO {id:#x}"))?;
    }
    Ok(())
}

fn other_files_id() -> Outcome {
    let owner = open()?;
    let other = open()?;
    let buf = owner.alloc(Kind::Kmalloc, 4096).ctx("ALLOC")?;
    expect_errno(
        other.info(buf.id()),
        Errno::NOENT,
        "INFO through another file",
    )?;
    expect_errno(
        other.free(buf.id()),
        Errno::NOENT,
        "FREE through another file",
    )?;
    buf.info().ctx("INFO through the owner afterwards")?;
    buf.free().ctx("FREE through the owner")
}

fn free_reserved() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 4096).ctx("ALLOC")?;
    let mut req = abi::Free {
        id: buf.id(),
        reserved: 1,
    };
    expect_errno(dev.ioctl(&mut req), Errno::INVAL, "FREE with reserved 1")?;
    buf.info().ctx("INFO after the rejected FREE")?;
    buf.free().ctx("FREE")
}

fn rw() -> ProtFlags {
    ProtFlags::READ | ProtFlags::WRITE
}

fn mmap_unknown() -> Outcome {
    let dev = open()?;
    for offset in [0, 1 << 40, 1 << 50] {
        expect_errno(
            dev.mmap_raw(offset, 4096, rw(), MapFlags::SHARED),
            Errno::INVAL,
            format!("mmap at {offset:#x} with no buffer"),
        )?;
    }
    let buf = dev.alloc(Kind::Pages, 4096).ctx("ALLOC")?;
    let beyond = buf.mmap_offset() + (1 << 40);
    expect_errno(
        dev.mmap_raw(beyond, 4096, rw(), MapFlags::SHARED),
        Errno::INVAL,
        format!("mmap at cookie + 1T ({beyond:#x})"),
    )
}

fn mmap_freed() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 4096).ctx("ALLOC")?;
    let cookie = buf.mmap_offset();
    buf.free().ctx("FREE")?;
    expect_errno(
        dev.mmap_raw(cookie, 4096, rw(), MapFlags::SHARED),
        Errno::INVAL,
        "mmap of the freed cookie",
    )
}

fn mmap_other_file() -> Outcome {
    let owner = open()?;
    let other = open()?;
    let buf = owner.alloc(Kind::Pages, 4096).ctx("ALLOC")?;
    expect_errno(
        other.mmap_raw(buf.mmap_offset(), 4096, rw(), MapFlags::SHARED),
        Errno::INVAL,
        "mmap through another file",
    )
}

fn mmap_past_end() -> Outcome {
    let dev = open()?;
    let page = dev.page_size();
    let buf = dev.alloc(Kind::Pages, 2 * page as u64).ctx("ALLOC")?;
    for (first, pages) in [(0, 3), (1, 2), (2, 1), (3, 1)] {
        expect_errno(
            buf.map_range(first, pages * page),
            Errno::INVAL,
            format!("mmap of pages {first}..{} of 2", first as usize + pages),
        )?;
    }
    let tail = buf.map_range(1, page).ctx("mmap of the last page")?;
    check_len(&tail, page)
}

fn check_len(map: &[u8], want: usize) -> Outcome {
    if map.len() != want {
        return Err(format!("mapping length: expected {want}, saw {}", map.len()).into());
    }
    Ok(())
}

fn mmap_private() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 4096).ctx("ALLOC")?;
    expect_errno(
        dev.mmap_raw(buf.mmap_offset(), 4096, rw(), MapFlags::PRIVATE),
        Errno::INVAL,
        "MAP_PRIVATE read-write",
    )?;
    expect_errno(
        dev.mmap_raw(buf.mmap_offset(), 4096, ProtFlags::READ, MapFlags::PRIVATE),
        Errno::INVAL,
        "MAP_PRIVATE read-only",
    )
}

fn mmap_exec() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 4096).ctx("ALLOC")?;
    let exec = ProtFlags::READ | ProtFlags::EXEC;
    expect_errno(
        dev.mmap_raw(buf.mmap_offset(), 4096, exec, MapFlags::SHARED),
        Errno::PERM,
        "PROT_READ|PROT_EXEC",
    )?;
    expect_errno(
        dev.mmap_raw(
            buf.mmap_offset(),
            4096,
            rw() | ProtFlags::EXEC,
            MapFlags::SHARED,
        ),
        Errno::PERM,
        "PROT_READ|PROT_WRITE|PROT_EXEC",
    )
}

fn mprotect_exec() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 4096).ctx("ALLOC")?;
    let map = buf.map().ctx("mmap")?;
    match sys::make_executable(&map) {
        Err(Errno::ACCESS) => Ok(()),
        Err(e) => Err(format!("mprotect(PROT_EXEC): expected EACCES, saw {e}").into()),
        Ok(()) => {
            Err("mprotect(PROT_EXEC): expected EACCES, but the mapping became executable".into())
        }
    }
}

fn mremap_grow() -> Outcome {
    let dev = open()?;
    let page = dev.page_size();
    let buf = dev.alloc(Kind::Pages, 2 * page as u64).ctx("ALLOC")?;
    let mut map = buf.map_range(0, page).ctx("mmap of the first page")?;
    contigmem::pattern::fill(&mut map, 9);
    expect_errno(
        map.remap(2 * page),
        Errno::FAULT,
        "mremap from 1 to 2 pages",
    )?;
    check_len(&map, page)?;
    contigmem::pattern::check(&map, 9).map_err(|m| format!("after the failed mremap: {m}"))?;
    Ok(())
}
