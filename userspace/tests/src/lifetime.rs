// SPDX-License-Identifier: GPL-2.0

//! Buffer lifetime: the memory lives while it is mapped, whatever happens to the buffer, the
//! file or the process; the counters come back once it is all gone.

use contigmem::{pattern, Errno, Kind};

use crate::sys;
use crate::tap::{Context, Outcome, Tap};
use crate::util::{expect_errno, expect_live, live, open, M};
use crate::{check, check_eq};

/// Registers the lifetime tests.
pub fn register(tap: &mut Tap) {
    tap.test(
        "FREE while mapped: the mapping works, live bytes stay until munmap",
        free_while_mapped,
    );
    tap.test(
        "close while mapped: the mapping works, live bytes stay until munmap",
        close_while_mapped,
    );
    tap.test(
        "fork: the child writes, the parent reads, INFO.mappings is 2",
        fork_shares,
    );
    tap.test(
        "munmap of the middle page: INFO.mappings goes 1 -> 2, counters come back",
        partial_munmap,
    );
    tap.test(
        "exit with a buffer mapped and not freed releases it",
        exit_releases,
    );
}

fn free_while_mapped() -> Outcome {
    let dev = open()?;
    let base = live(&dev)?;
    let buf = dev.alloc(Kind::Pages, M).ctx("ALLOC")?;
    let (id, size) = (buf.id(), buf.size());
    let mut map = buf.map().ctx("mmap")?;
    pattern::fill(&mut map, 1);
    let held = (base.0 + size, base.1 + 1);
    expect_live(&dev, held, "after ALLOC")?;
    buf.free().ctx("FREE while mapped")?;
    expect_errno(dev.info(id), Errno::NOENT, "INFO after FREE")?;
    pattern::check(&map, 1).map_err(|m| format!("reading after FREE: {m}"))?;
    pattern::fill(&mut map, 2);
    pattern::check(&map, 2).map_err(|m| format!("writing after FREE: {m}"))?;
    expect_live(&dev, held, "after FREE, still mapped")?;
    drop(map);
    expect_live(&dev, base, "after munmap")
}

fn close_while_mapped() -> Outcome {
    let watcher = open()?;
    let base = live(&watcher)?;
    let dev = open()?;
    let buf = dev.alloc(Kind::Huge, 2 * M).ctx("ALLOC")?;
    let size = buf.size();
    let mut map = buf.map().ctx("mmap")?;
    pattern::fill(&mut map, 3);
    buf.leak();
    drop(dev);
    let held = (base.0 + size, base.1 + 1);
    expect_live(&watcher, held, "after close, still mapped")?;
    pattern::check(&map, 3).map_err(|m| format!("reading after close: {m}"))?;
    pattern::fill(&mut map, 4);
    pattern::check(&map, 4).map_err(|m| format!("writing after close: {m}"))?;
    drop(map);
    expect_live(&watcher, base, "after munmap")
}

fn fork_shares() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, M).ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    pattern::fill(&mut map, 5);
    check_eq!(
        buf.info().ctx("INFO")?.mappings,
        1,
        "INFO.mappings before fork"
    );
    let child_map = &mut map;
    sys::fork(
        |chan| {
            pattern::check(child_map, 5)
                .map_err(|m| format!("child reads the parent's data: {m}"))?;
            pattern::fill(child_map, 6);
            chan.signal()?;
            chan.wait()
        },
        |chan| {
            chan.wait()?;
            let mappings = buf.info().map_err(|e| format!("INFO: {e}"))?.mappings;
            if mappings != 2 {
                return Err(format!(
                    "INFO.mappings with the child alive: expected 2, saw {mappings}"
                ));
            }
            chan.signal()
        },
    )?;
    pattern::check(&map, 6).map_err(|m| format!("parent reads the child's data: {m}"))?;
    check_eq!(
        buf.info().ctx("INFO")?.mappings,
        1,
        "INFO.mappings after the child exited"
    );
    Ok(())
}

fn partial_munmap() -> Outcome {
    let dev = open()?;
    let base = live(&dev)?;
    let page = dev.page_size();
    let buf = dev.alloc(Kind::Pages, 3 * page as u64).ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    pattern::fill(&mut map, 7);
    check_eq!(
        buf.info().ctx("INFO")?.mappings,
        1,
        "INFO.mappings with one mapping"
    );
    let (head, tail) = map
        .unmap_range(page, page)
        .ctx("munmap of the middle page")?;
    let (head, tail) = head.zip(tail).ok_or("munmap left no head or no tail")?;
    check_eq!(
        buf.info().ctx("INFO")?.mappings,
        2,
        "INFO.mappings after the split"
    );
    let mut whole = vec![0u8; 3 * page];
    pattern::fill(&mut whole, 7);
    check!(
        head[..] == whole[..page],
        "the first page changed after the split"
    );
    check!(
        tail[..] == whole[2 * page..],
        "the last page changed after the split"
    );
    buf.free().ctx("FREE")?;
    drop(head);
    check!(
        live(&dev)?.1 > base.1,
        "the buffer was released while its last page was still mapped"
    );
    check!(
        tail[..] == whole[2 * page..],
        "the last page changed after FREE"
    );
    drop(tail);
    expect_live(&dev, base, "after FREE and munmap of both parts")
}

fn exit_releases() -> Outcome {
    let dev = open()?;
    let base = live(&dev)?;
    sys::fork(
        |_| {
            let dev = contigmem::Device::open().map_err(|e| e.to_string())?;
            let buf = dev.alloc(Kind::Vmalloc, 4 * M).map_err(|e| e.to_string())?;
            let mut map = buf.map().map_err(|e| e.to_string())?;
            pattern::fill(&mut map, 8);
            // Leave as a crash would: nothing unmapped, freed or closed.
            std::mem::forget(map);
            std::mem::forget(buf);
            std::mem::forget(dev);
            Ok(())
        },
        |_| Ok(()),
    )?;
    expect_live(&dev, base, "after the child exited")
}
