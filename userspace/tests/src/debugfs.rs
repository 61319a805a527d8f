// SPDX-License-Identifier: GPL-2.0

//! The module's debugfs files (root only): `buffers` lists what this process holds, with the
//! right columns, for as long as the memory is held; `stats` counts allocations and live bytes
//! per kind.

use contigmem::debugfs::{self, BufferEntry, KindStats};
use contigmem::{DebugfsCause, Errno, Error, Kind, Version};

use crate::check_eq;
use crate::sys;
use crate::tap::{Context, Fail, Outcome, Tap};
use crate::util::{expect_errno, open, version, K, M};

/// Registers the debugfs tests.
pub fn register(tap: &mut Tap, v: &Version) {
    tap.test_root(
        "debugfs buffers: our ALLOC is listed with its id, pid, kind, size, contiguity, INFO's facts",
        || listed(v),
    );
    tap.test_root(
        "debugfs buffers: mapped twice shows mappings 2, then 0 after munmap",
        mapped_twice,
    );
    tap.test_root(
        "debugfs buffers: FREE while mapped stays listed until munmap; FREE unmapped is gone",
        freed_while_mapped,
    );
    tap.test_root(
        "debugfs buffers: two open files, both listed; close drops one",
        two_files,
    );
    tap.test_root(
        "debugfs stats: ALLOC adds 1 alloc and the size to its kind only, FREE gives it back",
        || stats_follow(v),
    );
    tap.test_root(
        "debugfs agrees with VERSION: buffer count and bytes, per-kind live bytes",
        agrees_with_version,
    );
    tap.test_root(
        "debugfs buffers: a buffer allocated in a pid namespace shows the initial namespace's pid",
        in_pid_namespace,
    );
    tap.test_root("debugfs is refused to nobody with a typed error", as_nobody);
}

/// The `buffers` line of buffer `id`, if listed.
fn entry(id: u64) -> Result<Option<BufferEntry>, Fail> {
    Ok(debugfs::buffers()
        .ctx("reading debugfs buffers")?
        .into_iter()
        .find(|e| e.id == id))
}

/// The `buffers` line of buffer `id`, which must be listed.
fn listed_entry(id: u64, when: &str) -> Result<BufferEntry, Fail> {
    entry(id)?.ok_or_else(|| {
        format!(
            "{when}: expected buffer {id} in {}, saw it missing",
            debugfs::BUFFERS_PATH
        )
        .into()
    })
}

/// Fails if buffer `id` is listed.
fn expect_unlisted(id: u64, when: &str) -> Outcome {
    match entry(id)? {
        None => Ok(()),
        Some(e) => Err(format!(
            "{when}: expected buffer {id} gone from {}, saw {e:?}",
            debugfs::BUFFERS_PATH
        )
        .into()),
    }
}

/// The `stats` line of `kind`.
fn kind_stats(stats: &[KindStats], kind: Kind) -> Result<KindStats, Fail> {
    stats
        .iter()
        .find(|s| s.kind == kind)
        .cloned()
        .ok_or_else(|| {
            format!(
                "expected a line for {kind} in {}, saw none",
                debugfs::STATS_PATH
            )
            .into()
        })
}

fn stats() -> Result<Vec<KindStats>, Fail> {
    debugfs::stats().ctx("reading debugfs stats")
}

fn listed(v: &Version) -> Outcome {
    let dev = open()?;
    let pid = std::process::id();
    for kind in Kind::ALL.into_iter().filter(|k| v.supports(*k)) {
        let buf = dev.alloc(kind, 64 * K).ctx(format!("ALLOC {kind}"))?;
        let info = buf.info().ctx("INFO")?;
        let e = listed_entry(buf.id(), &format!("after ALLOC {kind}"))?;
        let what = |field: &str| format!("{kind} buffer {}: {field}", buf.id());
        check_eq!(e.pid, pid, what("pid"));
        check_eq!(e.kind, kind, what("kind"));
        check_eq!(e.size, buf.size(), what("size"));
        check_eq!(e.contiguous, kind.is_contiguous(), what("contiguous"));
        check_eq!(e.contiguous, info.contiguous, what("contiguous vs INFO"));
        check_eq!(e.segments, info.segments, what("segments vs INFO"));
        check_eq!(e.node, info.node, what("node vs INFO"));
        check_eq!(e.phys, info.phys_addr, what("phys vs INFO.phys_addr"));
        check_eq!(e.mappings, 0, what("mappings before mmap"));
        let id = buf.id();
        buf.free().ctx("FREE")?;
        expect_unlisted(id, &format!("after FREE of the {kind} buffer"))?;
    }
    Ok(())
}

fn mapped_twice() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Pages, M).ctx("ALLOC")?;
    let first = buf.map().ctx("first mmap")?;
    check_eq!(
        listed_entry(buf.id(), "mapped once")?.mappings,
        1,
        "mappings, mapped once"
    );
    let second = buf.map().ctx("second mmap")?;
    check_eq!(
        listed_entry(buf.id(), "mapped twice")?.mappings,
        2,
        "mappings, mapped twice"
    );
    check_eq!(
        buf.info().ctx("INFO")?.mappings,
        2,
        "INFO.mappings, mapped twice"
    );
    drop(first);
    drop(second);
    check_eq!(
        listed_entry(buf.id(), "after both munmaps")?.mappings,
        0,
        "mappings after both munmaps"
    );
    Ok(())
}

fn freed_while_mapped() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Vmalloc, 2 * M).ctx("ALLOC")?;
    let (id, size) = (buf.id(), buf.size());
    let map = buf.map().ctx("mmap")?;
    buf.free().ctx("FREE while mapped")?;
    let e = listed_entry(id, "after FREE, still mapped")?;
    check_eq!(e.mappings, 1, "mappings after FREE, still mapped");
    check_eq!(e.size, size, "size after FREE, still mapped");
    check_eq!(e.pid, std::process::id(), "pid after FREE, still mapped");
    drop(map);
    expect_unlisted(id, "after munmap of the freed buffer")?;

    let unmapped = dev.alloc(Kind::Kmalloc, 4 * K).ctx("ALLOC")?;
    let id = unmapped.id();
    listed_entry(id, "after ALLOC")?;
    unmapped.free().ctx("FREE")?;
    expect_unlisted(id, "after FREE of an unmapped buffer")
}

fn two_files() -> Outcome {
    let (a, b) = (open()?, open()?);
    let in_a = a.alloc(Kind::Pages, 8 * K).ctx("ALLOC in the first file")?;
    let in_b = b.alloc(Kind::Huge, 2 * M).ctx("ALLOC in the second file")?;
    let (id_a, id_b) = (in_a.id(), in_b.id());
    let all = debugfs::buffers().ctx("reading debugfs buffers")?;
    let mut ours: Vec<(u64, Kind)> = all
        .iter()
        .filter(|e| e.id == id_a || e.id == id_b)
        .map(|e| (e.id, e.kind))
        .collect();
    ours.sort();
    check_eq!(
        ours,
        vec![(id_a, Kind::Pages), (id_b, Kind::Huge)],
        format!("buffers {id_a} and {id_b} of two files (each listed once)")
    );
    for e in all.iter().filter(|e| e.id == id_a || e.id == id_b) {
        check_eq!(e.pid, std::process::id(), format!("pid of buffer {}", e.id));
    }
    // Closing the first file frees its buffer; the second file's stays.
    in_a.leak();
    drop(a);
    expect_unlisted(id_a, "after closing the first file")?;
    listed_entry(id_b, "after closing the first file")?;
    drop(in_b);
    expect_unlisted(id_b, "after FREE in the second file")
}

fn stats_follow(v: &Version) -> Outcome {
    let dev = open()?;
    for kind in Kind::ALL.into_iter().filter(|k| v.supports(*k)) {
        let before = stats()?;
        let buf = dev.alloc(kind, 64 * K).ctx(format!("ALLOC {kind}"))?;
        let size = buf.size();
        let after = stats()?;
        for other in Kind::ALL {
            let (b, a) = (kind_stats(&before, other)?, kind_stats(&after, other)?);
            let (allocs, live) = if other == kind {
                (b.allocs + 1, b.live_bytes + size)
            } else {
                (b.allocs, b.live_bytes)
            };
            check_eq!(
                a.allocs,
                allocs,
                format!("{other} allocs after ALLOC {kind}")
            );
            check_eq!(
                a.live_bytes,
                live,
                format!("{other} live_bytes after ALLOC {kind} of {size}")
            );
            check_eq!(
                a.failures,
                b.failures,
                format!("{other} failures after a successful ALLOC {kind}")
            );
        }
        buf.free().ctx("FREE")?;
        let freed = kind_stats(&stats()?, kind)?;
        let b = kind_stats(&before, kind)?;
        check_eq!(
            freed.live_bytes,
            b.live_bytes,
            format!("{kind} live_bytes after FREE")
        );
        check_eq!(
            freed.allocs,
            b.allocs + 1,
            format!("{kind} allocs after FREE")
        );
    }
    // A refused request (E2BIG, before any allocator runs) counts neither way.
    if let Some(max) = v.max_size(Kind::Pages) {
        let before = kind_stats(&stats()?, Kind::Pages)?;
        expect_errno(
            dev.alloc(Kind::Pages, max + 1),
            Errno::TOOBIG,
            "ALLOC pages of max_size + 1",
        )?;
        let after = kind_stats(&stats()?, Kind::Pages)?;
        check_eq!(after, before, "pages stats after an E2BIG ALLOC");
    }
    Ok(())
}

fn agrees_with_version() -> Outcome {
    let dev = open()?;
    let _held = [
        dev.alloc(Kind::Vmalloc, M).ctx("ALLOC vmalloc")?,
        dev.alloc(Kind::Kzalloc, 16 * K).ctx("ALLOC kzalloc")?,
    ];
    let v = version(&dev)?;
    let buffers = debugfs::buffers().ctx("reading debugfs buffers")?;
    let stats = stats()?;
    check_eq!(
        buffers.len() as u64,
        v.live_buffers,
        "lines in debugfs buffers vs VERSION.live_buffers"
    );
    check_eq!(
        buffers.iter().map(|e| e.size).sum::<u64>(),
        v.live_bytes,
        "sum of debugfs buffers sizes vs VERSION.live_bytes"
    );
    let kinds: Vec<Kind> = stats.iter().map(|s| s.kind).collect();
    check_eq!(kinds, Kind::ALL.to_vec(), "kinds in debugfs stats");
    for s in &stats {
        let listed: u64 = buffers
            .iter()
            .filter(|e| e.kind == s.kind)
            .map(|e| e.size)
            .sum();
        check_eq!(
            s.live_bytes,
            listed,
            format!(
                "{} live_bytes in stats vs the sizes listed in buffers",
                s.kind
            )
        );
    }
    Ok(())
}

fn as_nobody() -> Outcome {
    sys::fork(
        |_| {
            sys::become_nobody()?;
            match debugfs::buffers() {
                Err(Error::DebugfsUnavailable {
                    cause: DebugfsCause::NotRoot,
                    ..
                }) => Ok(()),
                Err(e) => Err(format!(
                    "reading {} as nobody: expected a not-root error, saw {e:?}",
                    debugfs::BUFFERS_PATH
                )),
                Ok(list) => Err(format!(
                    "reading {} as nobody: expected a not-root error, saw {} buffers",
                    debugfs::BUFFERS_PATH,
                    list.len()
                )),
            }
        },
        |_| Ok(()),
    )?;
    // And as root it is readable.
    debugfs::stats().ctx("reading debugfs stats as root")?;
    Ok(())
}

/// A process that is pid 1 of a new pid namespace allocates: root, reading debugfs from the
/// initial namespace, must see the pid it knows the process by, which `/proc/PID/status` confirms
/// (its `NSpid` line: that pid, then 1).
fn in_pid_namespace() -> Outcome {
    sys::fork(
        |_| {
            sys::unshare_pid_namespace()?;
            sys::fork(
                |chan| {
                    let own = std::process::id();
                    if own != 1 {
                        return Err(format!(
                            "in the new pid namespace: expected pid 1, saw {own}"
                        ));
                    }
                    let dev = open().map_err(|f| format!("{f:?}"))?;
                    let buf = dev
                        .alloc(Kind::Kmalloc, 4 * K)
                        .map_err(|e| format!("ALLOC: {e}"))?;
                    chan.send(buf.id())?;
                    chan.wait()
                },
                |chan| {
                    let id = chan.recv()?;
                    let checked = pid_in_namespace(id);
                    chan.signal()?;
                    checked
                },
            )
        },
        |_| Ok(()),
    )?;
    Ok(())
}

/// Checks that debugfs shows buffer `id` with the pid, in this namespace, of a process that is
/// pid 1 of its own namespace.
fn pid_in_namespace(id: u64) -> Result<(), String> {
    let e = listed_entry(id, "while its holder lives").map_err(|f| format!("{f:?}"))?;
    if e.pid == 1 {
        return Err(format!(
            "buffer {id}: debugfs shows pid 1, the holder's pid in its own namespace: expected \
             its pid in the initial namespace"
        ));
    }
    let status_path = format!("/proc/{}/status", e.pid);
    let status = std::fs::read_to_string(&status_path)
        .map_err(|err| format!("debugfs shows pid {}: {status_path}: {err}", e.pid))?;
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let want = format!("{} 1", e.pid);
    if nspid != want {
        return Err(format!(
            "buffer {id}: debugfs shows pid {}, whose NSpid is '{nspid}': expected '{want}' (the \
             holder, pid 1 of its namespace, by its initial-namespace pid)",
            e.pid
        ));
    }
    Ok(())
}
