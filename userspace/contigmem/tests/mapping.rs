// SPDX-License-Identifier: GPL-2.0

//! `Mapping` and `pagemap` on the host: a regular file stands in for the device, since both are
//! mapped the same way (`MAP_SHARED` at an offset).

use std::path::PathBuf;

use contigmem::{pagemap, pattern, Device, Errno, MapFlags, ProtFlags};

fn file(name: &str, pages: usize) -> (Device, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    let page = rustix::param::page_size();
    std::fs::write(&path, vec![0u8; pages * page]).expect("writing the stand-in file");
    (
        Device::open_path(&path).expect("opening the stand-in file"),
        path,
    )
}

fn rw() -> ProtFlags {
    ProtFlags::READ | ProtFlags::WRITE
}

#[test]
fn a_mapping_reads_and_writes_the_file() {
    let (dev, path) = file("rw", 4);
    let page = dev.page_size();
    let mut map = dev
        .mmap_raw(0, 4 * page, rw(), MapFlags::SHARED)
        .expect("mmap");
    assert_eq!(map.len(), 4 * page);
    pattern::fill(&mut map, 42);
    let second = dev
        .mmap_raw(page as u64, page, ProtFlags::READ, MapFlags::SHARED)
        .expect("mmap of page 1");
    assert!(!second.is_writable());
    assert_eq!(second[..], map[page..2 * page]);
    drop((map, second));
    let mut on_disk = std::fs::read(path).expect("reading back");
    pattern::check(&on_disk, 42).expect("the file holds the pattern");
    on_disk[0] ^= 1;
    assert!(pattern::check(&on_disk, 42).is_err());
}

#[test]
fn the_middle_of_a_mapping_can_be_unmapped() {
    let (dev, _path) = file("split", 3);
    let page = dev.page_size();
    let mut map = dev
        .mmap_raw(0, 3 * page, rw(), MapFlags::SHARED)
        .expect("mmap");
    pattern::fill(&mut map, 7);
    let mut whole = vec![0u8; 3 * page];
    pattern::fill(&mut whole, 7);
    let hole = map.addr() + page;
    let (head, tail) = map
        .unmap_range(page, page)
        .expect("munmap of the middle page");
    let (head, tail) = (head.expect("a head"), tail.expect("a tail"));
    assert_eq!(head[..], whole[..page]);
    assert_eq!(tail[..], whole[2 * page..]);
    assert_eq!(tail.addr(), hole + page);
    let entries = pagemap::read(hole, page).expect("pagemap of the hole");
    assert!(!entries[0].present(), "the hole is still mapped");

    let (none, rest) = head
        .unmap_range(0, page)
        .expect("munmap of a whole mapping");
    assert!(none.is_none() && rest.is_none());
}

#[test]
fn misaligned_unmaps_are_refused() {
    let (dev, _path) = file("misaligned", 2);
    let map = dev
        .mmap_raw(0, 2 * dev.page_size(), rw(), MapFlags::SHARED)
        .expect("mmap");
    let err = map
        .unmap_range(1, dev.page_size())
        .expect_err("misaligned offset");
    assert_eq!(err.errno(), Errno::INVAL);
}

#[test]
fn remap_shrinks_and_grows_a_file_mapping() {
    let (dev, _path) = file("remap", 2);
    let page = dev.page_size();
    let mut map = dev
        .mmap_raw(0, 2 * page, rw(), MapFlags::SHARED)
        .expect("mmap");
    pattern::fill(&mut map[..page], 3);
    map.remap(page).expect("shrink");
    assert_eq!(map.len(), page);
    map.remap(2 * page)
        .expect("a regular file mapping may grow again");
    pattern::check(&map[..page], 3).expect("data kept across mremap");
}

#[test]
fn mmap_raw_refuses_what_would_be_unsound() {
    let (dev, _path) = file("refuse", 1);
    let page = dev.page_size();
    let write_only = dev.mmap_raw(0, page, ProtFlags::WRITE, MapFlags::SHARED);
    assert_eq!(write_only.expect_err("write-only").errno(), Errno::INVAL);
    let fixed = dev.mmap_raw(0, page, rw(), MapFlags::SHARED | MapFlags::FIXED);
    assert_eq!(fixed.expect_err("MAP_FIXED").errno(), Errno::INVAL);
    let past = dev.mmap_raw(0, 0, rw(), MapFlags::SHARED);
    assert_eq!(past.expect_err("empty mapping").errno(), Errno::INVAL);
}

#[test]
fn pagemap_sees_touched_pages() {
    let (dev, _path) = file("pagemap", 8);
    let map = dev
        .mmap_raw(0, 8 * dev.page_size(), ProtFlags::READ, MapFlags::SHARED)
        .expect("mmap");
    let entries = pagemap::of(&map).expect("pagemap");
    assert_eq!(entries.len(), 8);
    assert!(entries.iter().all(|e| e.present()), "{entries:?}");
    match pagemap::pfns(&entries) {
        Ok(pfns) => assert_eq!(
            pagemap::segments(&pfns)
                .iter()
                .map(|s| s.pages)
                .sum::<u64>(),
            8
        ),
        Err(contigmem::Error::PfnHidden) => assert!(!rustix::process::geteuid().is_root()),
        Err(e) => panic!("pagemap: {e}"),
    }
}
