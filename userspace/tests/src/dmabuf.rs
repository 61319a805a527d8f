// SPDX-License-Identifier: GPL-2.0

//! Buffers as dma-bufs (`CONTIGMEM_IOC_EXPORT`): the dma-buf maps the buffer's bytes, lives on
//! past FREE, close() and munmap in every order (the last holder frees the memory), is listed
//! in debugfs `dma_buf/bufinfo` as the exporter `contigmem`, works in another process that
//! received it over a Unix socket and cannot open `/dev/contigmem`, and is imported by an
//! in-tree driver: V4L2's vivid with its dma-contig allocator captures frames into it.

use std::fs;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use contigmem::{
    Access, AllocOptions, Buffer, Cache, Device, DmaBuf, Errno, ExportOptions, Kind, Mapping,
    SyncDir,
};

use crate::sys;
use crate::tap::{Context, Fail, Outcome, Tap};
use crate::util::{expect_errno, live, open, size_name, K, M};
use crate::{check, check_eq};

pub fn register(tap: &mut Tap) {
    for (kind, size) in KINDS {
        tap.test(
            &format!(
                "dma-buf: a {} {kind} buffer exported, mapped, the bytes shared both ways",
                size_name(size)
            ),
            move || shared_bytes(kind, size),
        );
    }
    tap.test(
        "dma-buf: bad EXPORT requests get EINVAL, ENOENT, EACCES",
        bad_exports,
    );
    tap.test_root(
        "dma-buf: listed in debugfs dma_buf/bufinfo with exporter contigmem",
        bufinfo,
    );
    tap.test(
        "dma-buf: FREE, close() and munmap in every order while the dma-buf lives; the last holder frees the memory",
        lifetime,
    );
    tap.test_root(
        "dma-buf: sent over a Unix socket to a process that cannot open /dev/contigmem, mapped there, bytes shared both ways",
        other_process,
    );
    tap.test_root(
        "phys_limit 4G: vmalloc, pages and huge buffers lie wholly below 4 GiB, from either node's CPU",
        below_4g,
    );
    tap.test(
        "phys_limit: ENOMEM when nothing below the bound fits (1G HUGE below 1 GiB; strict node 1 below 4 GiB)",
        below_nothing,
    );
    tap.test_root(
        "dma-buf: vivid (dma-contig) captures frames into exported PAGES and HUGE buffers, refuses vmalloc's",
        vivid,
    );
}

/// The kinds and sizes the mapping test exports.
const KINDS: [(Kind, u64); 5] = [
    (Kind::Kmalloc, 64 * K),
    (Kind::Kzalloc, 64 * K),
    (Kind::Vmalloc, 4 * M),
    (Kind::Pages, 2 * M),
    (Kind::Huge, 8 * M),
];

/// The byte at `off` of a pattern keyed by `key`.
fn byte(off: usize, key: u8) -> u8 {
    ((off / 4096) as u8).wrapping_mul(31) ^ (off as u8) ^ key
}

fn fill(map: &mut Mapping, key: u8) {
    for (off, b) in map.iter_mut().enumerate() {
        *b = byte(off, key);
    }
}

fn check_pattern(map: &[u8], key: u8, what: &str) -> Result<(), String> {
    if let Some(off) = (0..map.len()).find(|&off| map[off] != byte(off, key)) {
        return Err(format!(
            "{what}: byte {off:#x} is {:#04x}, expected {:#04x}",
            map[off],
            byte(off, key)
        ));
    }
    Ok(())
}

fn shared_bytes(kind: Kind, size: u64) -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(kind, size).ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap of the buffer")?;
    fill(&mut map, 1);
    let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT")?;
    check_eq!(dmabuf.size(), buf.size(), "dma-buf size");
    check_eq!(buf.info().ctx("INFO")?.dmabufs, 1, "INFO dmabufs");
    let from_fd = DmaBuf::from_fd(dmabuf.as_fd().try_clone_to_owned().ctx("dup")?)
        .ctx("a dma-buf from its descriptor")?;
    check_eq!(from_fd.size(), buf.size(), "dma-buf size by lseek");
    drop(from_fd);
    let mut other = dmabuf.map().ctx("mmap of the dma-buf")?;
    dmabuf.sync(SyncDir::ReadWrite, true).ctx("SYNC start")?;
    check_pattern(&other, 1, "the dma-buf's mapping")?;
    fill(&mut other, 2);
    dmabuf.sync(SyncDir::ReadWrite, false).ctx("SYNC end")?;
    check_pattern(
        &map,
        2,
        "the buffer's mapping after writes through the dma-buf",
    )?;
    // read() of /dev/contigmem sees the same memory.
    let mut head = vec![0u8; 4096];
    buf.read_at(0, &mut head).ctx("pread")?;
    check_pattern(&head, 2, "pread of the buffer")?;
    drop(other);
    drop(dmabuf);
    check_eq!(
        buf.info().ctx("INFO")?.dmabufs,
        0,
        "INFO dmabufs after close"
    );
    Ok(())
}

fn bad_exports() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 64 * K).ctx("ALLOC")?;
    let raw = contigmem::abi::Export {
        id: buf.id(),
        fd_flags: 2,
        ..Default::default()
    };
    let try_raw = |f: &dyn Fn(&mut contigmem::abi::Export)| {
        let mut e = raw;
        f(&mut e);
        dev.ioctl(&mut e)
    };
    expect_errno(
        try_raw(&|e| e.fd_flags = 3),
        Errno::INVAL,
        "fd_flags O_ACCMODE 3",
    )?;
    expect_errno(
        try_raw(&|e| e.fd_flags = 2 | 0o4000),
        Errno::INVAL,
        "fd_flags O_NONBLOCK",
    )?;
    expect_errno(
        try_raw(&|e| e.reserved[1] = 1),
        Errno::INVAL,
        "reserved[1] != 0",
    )?;
    expect_errno(try_raw(&|e| e.id = u64::MAX), Errno::NOENT, "an unknown id")?;
    // A read-only file exports read-only dma-bufs only.
    let ro = Device::open_read_only(contigmem::DEFAULT_PATH).ctx("open O_RDONLY")?;
    let rbuf = ro
        .alloc(Kind::Pages, 64 * K)
        .ctx("ALLOC on the read-only file")?;
    let rw = ExportOptions {
        access: Access::ReadWrite,
        cloexec: true,
    };
    expect_errno(
        rbuf.export(rw).map(|_| ()),
        Errno::ACCESS,
        "a read-write dma-buf of a read-only file",
    )?;
    let ro_buf = rbuf
        .export(ExportOptions {
            access: Access::ReadOnly,
            cloexec: true,
        })
        .ctx("a read-only dma-buf of a read-only file")?;
    let err = ro_buf.map().err().map(|e| e.errno());
    check_eq!(
        err,
        Some(Errno::ACCESS),
        "PROT_WRITE mmap of a read-only dma-buf"
    );
    Ok(())
}

fn bufinfo() -> Outcome {
    const BUFINFO: &str = "/sys/kernel/debug/dma_buf/bufinfo";
    let dev = open()?;
    // A size no other dma-buf of the guest has.
    let size = 3 * M + 20 * K;
    let buf = dev.alloc(Kind::Vmalloc, size).ctx("ALLOC")?;
    let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT")?;
    let listed = |text: &str| {
        text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 5 && f[0].parse::<u64>().ok() == Some(size) && f[4] == "contigmem"
        })
    };
    let text = fs::read_to_string(BUFINFO).ctx(BUFINFO)?;
    check!(
        listed(&text),
        "no line of size {size} with exporter contigmem in {BUFINFO}:\n{text}"
    );
    drop(dmabuf);
    let text = fs::read_to_string(BUFINFO).ctx(BUFINFO)?;
    check!(!listed(&text), "{BUFINFO} still lists the closed dma-buf");
    Ok(())
}

/// Ends the dma-buf's three other holders in the order `order` names, checking after each
/// step that the memory is held (and intact, seen through what still holds it) until the last.
fn lifetime() -> Outcome {
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Step {
        /// FREE of the buffer (its file stays open).
        Free,
        /// close() of the file (the buffer not freed first).
        Close,
        /// munmap of the buffer's mapping.
        Unmap,
        /// close() of the dma-buf.
        Dmabuf,
    }
    use Step::*;
    let orders: [[Step; 3]; 6] = [
        [Free, Unmap, Dmabuf],
        [Free, Dmabuf, Unmap],
        [Unmap, Free, Dmabuf],
        [Unmap, Dmabuf, Free],
        [Dmabuf, Free, Unmap],
        [Dmabuf, Unmap, Free],
    ];
    let watcher = open()?;
    let base = live(&watcher)?;
    for order in orders {
        for close_file in [false, true] {
            let steps: Vec<Step> = order
                .iter()
                .map(|&s| if s == Free && close_file { Close } else { s })
                .collect();
            let what = format!("{steps:?}");
            let dev = Device::open().ctx("open")?;
            let buf = dev.alloc(Kind::Huge, 4 * M).ctx("ALLOC")?;
            let mut map = Some(buf.map().ctx("mmap")?);
            fill(map.as_mut().ok_or("no map")?, 7);
            let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT")?;
            let mut view = Some(dmabuf.map().ctx("mmap of the dma-buf")?);
            let mut dmabuf = Some(dmabuf);
            // The buffer by id from here: FREE and close() are steps of their own.
            let id = buf.leak();
            let mut dev = Some(dev);
            check_eq!(
                live(&watcher)?,
                (base.0 + 4 * M, base.1 + 1),
                format!("{what}: live at start")
            );
            for (i, step) in steps.iter().enumerate() {
                match step {
                    Free => dev.as_ref().ok_or("no file")?.free(id).ctx("FREE")?,
                    Close => drop(dev.take()),
                    Unmap => drop(map.take()),
                    Dmabuf => {
                        // The dma-buf's own mapping goes with it, but it holds the buffer too:
                        // check through it first.
                        if let Some(v) = view.as_ref() {
                            check_pattern(v, 7, &format!("{what}: the dma-buf's mapping"))?;
                        }
                        drop(view.take());
                        drop(dmabuf.take());
                    }
                }
                let held = i + 1 < steps.len();
                let want = if held {
                    (base.0 + 4 * M, base.1 + 1)
                } else {
                    base
                };
                check_eq!(
                    live(&watcher)?,
                    want,
                    format!("{what}: live after step {}", i + 1)
                );
                if held {
                    if let Some(m) = map.as_ref() {
                        check_pattern(m, 7, &format!("{what}: the buffer's mapping"))?;
                    }
                }
            }
            // What is left (a freed buffer's file) goes now.
            drop(dev);
        }
    }
    Ok(())
}

fn other_process() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, 256 * K).ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    fill(&mut map, 3);
    let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT")?;
    let (ours, theirs) = sys::socketpair()?;
    let len = map.len();
    sys::fork(
        |chan| {
            sys::become_nobody()?;
            match Device::open() {
                Err(e) if e.errno() == Errno::ACCESS => {}
                other => return Err(format!("nobody opened /dev/contigmem: {other:?}")),
            }
            chan.signal()?;
            let fd: OwnedFd = sys::recv_fd(theirs.as_fd())?;
            let got = DmaBuf::from_fd(fd).map_err(|e| e.to_string())?;
            if got.size() != len as u64 {
                return Err(format!(
                    "received a dma-buf of {} bytes, expected {len}",
                    got.size()
                ));
            }
            let mut view = got.map().map_err(|e| e.to_string())?;
            check_pattern(&view, 3, "the received dma-buf")?;
            fill(&mut view, 4);
            Ok(())
        },
        |chan| {
            chan.wait()?;
            sys::send_fd(ours.as_fd(), dmabuf.as_fd())
        },
    )?;
    check_pattern(
        &map,
        4,
        "the buffer after the other process wrote through its dma-buf",
    )?;
    Ok(())
}

// V4L2 (include/uapi/linux/videodev2.h), the parts the vivid test uses, for x86-64.
const V4L2_BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
const V4L2_MEMORY_DMABUF: u32 = 4;
const V4L2_CAP_VIDEO_CAPTURE: u32 = 1;

#[repr(C)]
struct Capability {
    driver: [u8; 16],
    card: [u8; 32],
    bus_info: [u8; 32],
    version: u32,
    capabilities: u32,
    device_caps: u32,
    reserved: [u32; 3],
}

#[repr(C)]
struct Format {
    kind: u32,
    _pad: u32,
    // `struct v4l2_pix_format` and the rest of the 200-byte union.
    width: u32,
    height: u32,
    pixelformat: u32,
    field: u32,
    bytesperline: u32,
    sizeimage: u32,
    rest: [u32; 44],
}

#[repr(C)]
struct RequestBuffers {
    count: u32,
    kind: u32,
    memory: u32,
    capabilities: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct V4l2Buffer {
    index: u32,
    kind: u32,
    bytesused: u32,
    flags: u32,
    field: u32,
    _pad: u32,
    timestamp: [i64; 2],
    timecode: [u32; 4],
    sequence: u32,
    memory: u32,
    fd: i32,
    _m_pad: u32,
    length: u32,
    reserved2: u32,
    request_fd: i32,
    _pad2: u32,
}

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((b'V' as u32) << 8) | nr
}
const VIDIOC_QUERYCAP: u32 = ioc(2, 0, size_of::<Capability>());
const VIDIOC_G_FMT: u32 = ioc(3, 4, size_of::<Format>());
const VIDIOC_REQBUFS: u32 = ioc(3, 8, size_of::<RequestBuffers>());
const VIDIOC_QBUF: u32 = ioc(3, 15, size_of::<V4l2Buffer>());
const VIDIOC_DQBUF: u32 = ioc(3, 17, size_of::<V4l2Buffer>());
const VIDIOC_STREAMON: u32 = ioc(1, 18, size_of::<i32>());
const VIDIOC_STREAMOFF: u32 = ioc(1, 19, size_of::<i32>());
const _: () = assert!(size_of::<Capability>() == 104);
const _: () = assert!(size_of::<Format>() == 208);
const _: () = assert!(size_of::<RequestBuffers>() == 20);
const _: () = assert!(size_of::<V4l2Buffer>() == 88);

/// Loads vivid with one instance using the dma-contig allocator, and its modules, from the
/// initramfs (qemu/run.sh packs them as /vivid/N-NAME.ko, N the load order).
fn load_vivid() -> Result<(), Fail> {
    if fs::metadata("/sys/module/vivid").is_ok() {
        return Ok(());
    }
    let mut mods: Vec<String> = fs::read_dir("/vivid")
        .ctx("/vivid (qemu/run.sh packs vivid and its modules there when the kernel has them)")?
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .collect();
    mods.sort_by_key(|m| {
        m.trim_start_matches("/vivid/")
            .split('-')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
    });
    for m in &mods {
        let mut cmd = std::process::Command::new("insmod");
        cmd.arg(m);
        if m.ends_with("-vivid.ko") {
            cmd.args(["n_devs=1", "allocators=1"]);
        }
        let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
        check!(ok, "insmod {m} failed");
    }
    Ok(())
}

/// The first vivid video capture node.
fn capture_node() -> Result<fs::File, Fail> {
    for n in 0..64 {
        let path = format!("/dev/video{n}");
        let Ok(file) = fs::OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        let mut cap = Capability {
            driver: [0; 16],
            card: [0; 32],
            bus_info: [0; 32],
            version: 0,
            capabilities: 0,
            device_caps: 0,
            reserved: [0; 3],
        };
        if sys::ioctl_ptr(file.as_fd(), VIDIOC_QUERYCAP, &mut cap).is_err() {
            continue;
        }
        if cap.driver.starts_with(b"vivid\0") && cap.device_caps & V4L2_CAP_VIDEO_CAPTURE != 0 {
            return Ok(file);
        }
    }
    Err("no vivid video capture node among /dev/video0-63".into())
}

/// Captures one frame into `dmabuf` (as buffer 0 of a DMABUF queue) on `video`; returns the
/// bytes the driver reports, or the errno of the first step that failed and its name.
/// Captures one frame into `dmabuf`, `buf`'s dma-buf, and syncs `buf` for the CPU with
/// `CONTIGMEM_IOC_SYNC` while vivid still holds its DMA mapping (vb2 unmaps at REQBUFS 0).
fn capture(
    video: &fs::File,
    buf: &Buffer<'_>,
    dmabuf: &DmaBuf,
) -> Result<u32, (Errno, &'static str)> {
    let fd = video.as_fd();
    let mut req = RequestBuffers {
        count: 1,
        kind: V4L2_BUF_TYPE_VIDEO_CAPTURE,
        memory: V4L2_MEMORY_DMABUF,
        capabilities: 0,
        flags: 0,
    };
    sys::ioctl_ptr(fd, VIDIOC_REQBUFS, &mut req).map_err(|e| (e, "REQBUFS"))?;
    let result = (|| {
        let mut qbuf = V4l2Buffer {
            kind: V4L2_BUF_TYPE_VIDEO_CAPTURE,
            memory: V4L2_MEMORY_DMABUF,
            fd: dmabuf.as_raw_fd(),
            ..Default::default()
        };
        sys::ioctl_ptr(fd, VIDIOC_QBUF, &mut qbuf).map_err(|e| (e, "QBUF"))?;
        let mut kind = V4L2_BUF_TYPE_VIDEO_CAPTURE as i32;
        sys::ioctl_ptr(fd, VIDIOC_STREAMON, &mut kind).map_err(|e| (e, "STREAMON"))?;
        let ready = sys::poll_in(fd, 30_000).map_err(|_| (Errno::IO, "poll"))?;
        if !ready {
            return Err((Errno::TIMEDOUT, "poll (30 s, no frame)"));
        }
        let mut dq = V4l2Buffer {
            kind: V4L2_BUF_TYPE_VIDEO_CAPTURE,
            memory: V4L2_MEMORY_DMABUF,
            ..Default::default()
        };
        sys::ioctl_ptr(fd, VIDIOC_DQBUF, &mut dq).map_err(|e| (e, "DQBUF"))?;
        buf.sync(0, 0, SyncDir::Read, true)
            .map_err(|e| (e.errno(), "SYNC start with vivid's mapping live"))?;
        Ok(dq.bytesused)
    })();
    let mut kind = V4L2_BUF_TYPE_VIDEO_CAPTURE as i32;
    let _ = sys::ioctl_ptr(fd, VIDIOC_STREAMOFF, &mut kind);
    req.count = 0;
    let _ = sys::ioctl_ptr(fd, VIDIOC_REQBUFS, &mut req);
    result
}

fn vivid() -> Outcome {
    load_vivid()?;
    let video = capture_node()?;
    let mut fmt = Format {
        kind: V4L2_BUF_TYPE_VIDEO_CAPTURE,
        _pad: 0,
        width: 0,
        height: 0,
        pixelformat: 0,
        field: 0,
        bytesperline: 0,
        sizeimage: 0,
        rest: [0; 44],
    };
    sys::ioctl_ptr(video.as_fd(), VIDIOC_G_FMT, &mut fmt).map_err(|e| format!("G_FMT: {e}"))?;
    let frame = fmt.sizeimage as usize;
    println!(
        "# vivid: {}x{} frames of {frame} bytes",
        fmt.width, fmt.height
    );
    check!(frame > 0, "G_FMT reports frames of 0 bytes");
    let dev = open()?;
    // vivid's dma-contig device has a 32-bit DMA mask: node 0, the memory below 4 GiB, keeps the
    // buffers in its reach (node 1 lies above 4 GiB, where swiotlb cannot bounce a whole frame).
    let low = AllocOptions::new().node(Some(0)).strict_node(true);
    // Contiguous buffers: the frame lands in them, nothing past it.
    // A write-combining buffer too: vivid writes its frames through vmap, the direct map.
    for (kind, size, cache) in [
        (Kind::Pages, (frame as u64).next_power_of_two(), Cache::Wb),
        (Kind::Huge, 4 * M, Cache::Wb),
        (Kind::Huge, 4 * M, Cache::Wc),
    ] {
        let buf = dev
            .alloc_with(kind, size, &low.cache(cache))
            .ctx(format!("ALLOC {kind} cache {cache}"))?;
        let map = buf.map().ctx("mmap")?;
        let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT")?;
        let used = capture(&video, &buf, &dmabuf)
            .map_err(|(e, step)| format!("{kind} {cache}: {step}: {e}"))?;
        check_eq!(
            used as usize,
            frame,
            format!("{kind}: bytes of the captured frame")
        );
        dmabuf.sync(SyncDir::Read, true).ctx("SYNC start")?;
        let zero = map[..frame].iter().filter(|&&b| b == 0).count();
        println!(
            "# vivid into {kind} {} ({cache}): {frame} bytes, {zero} of them 0",
            size_name(size)
        );
        check!(
            zero * 100 < frame,
            "{kind}: {zero} of the frame's {frame} bytes are still 0: the frame did not land in the buffer"
        );
        check!(
            map[frame..].iter().all(|&b| b == 0),
            "{kind}: bytes past the frame changed"
        );
        dmabuf.sync(SyncDir::Read, false).ctx("SYNC end")?;
    }
    // A vmalloc buffer is no one contiguous chunk: vb2-dma-contig refuses it.
    let buf = dev
        .alloc_with(Kind::Vmalloc, (frame as u64).next_multiple_of(4 * K), &low)
        .ctx("ALLOC vmalloc")?;
    let segments = buf.info().ctx("INFO")?.segments;
    let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT vmalloc")?;
    match capture(&video, &buf, &dmabuf) {
        Err((e, "QBUF")) => {
            println!("# vivid refuses the vmalloc buffer ({segments} segments) at QBUF: {e}")
        }
        Err((e, step)) if segments == 1 => {
            println!("# the vmalloc buffer is one segment by chance; {step}: {e}")
        }
        other if segments == 1 => {
            println!("# the vmalloc buffer is one segment by chance: {other:?}")
        }
        other => {
            return Err(format!(
                "a vmalloc buffer of {segments} segments: expected QBUF to fail, saw {other:?}"
            )
            .into())
        }
    }
    Ok(())
}

fn below_4g() -> Outcome {
    const LIMIT: u64 = 1 << 32;
    let dev = open()?;
    for node in [None, Some(0), Some(1)] {
        let options = AllocOptions::new().node(node).phys_limit(LIMIT);
        for (kind, size) in [
            (Kind::Vmalloc, 8 * M),
            (Kind::Pages, 4 * M),
            (Kind::Huge, 64 * M),
        ] {
            let buf = dev
                .alloc_with(kind, size, &options)
                .ctx(format!("ALLOC {kind} below 4G, node {node:?}"))?;
            let map = buf.map().ctx("mmap")?;
            let pfns = crate::util::pfns(&map)?;
            let page = map.page_size() as u64;
            let top = pfns.iter().map(|&p| (p + 1) * page).max().unwrap_or(0);
            check!(
                top <= LIMIT,
                "{kind} {} (node {node:?}) reaches {top:#x}, above the bound {LIMIT:#x}",
                size_name(size)
            );
            if kind != Kind::Vmalloc {
                let info = buf.info().ctx("INFO")?;
                check!(
                    info.phys_addr + info.size <= LIMIT,
                    "INFO: {kind} at {:#x}+{:#x}, above the bound",
                    info.phys_addr,
                    info.size
                );
            }
        }
    }
    Ok(())
}

fn below_nothing() -> Outcome {
    let dev = open()?;
    let r = dev.alloc_with(
        Kind::Huge,
        1 << 30,
        &AllocOptions::new().phys_limit(1 << 30),
    );
    expect_errno(
        r.map(|_| ()),
        Errno::NOMEM,
        "1G HUGE below 1 GiB (the kernel lies there)",
    )?;
    let strict = AllocOptions::new()
        .node(Some(1))
        .strict_node(true)
        .phys_limit(1 << 32);
    for kind in [Kind::Pages, Kind::Huge] {
        let r = dev.alloc_with(kind, 4 * M, &strict);
        expect_errno(
            r.map(|_| ()),
            Errno::NOMEM,
            format!("{kind} on node 1 (above 4 GiB) below 4 GiB"),
        )?;
    }
    Ok(())
}
