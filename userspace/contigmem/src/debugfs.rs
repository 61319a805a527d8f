// SPDX-License-Identifier: GPL-2.0

//! The module's debugfs files (`/sys/kernel/debug/contigmem/`, root only): every buffer whose
//! memory is held, by any process, and per-kind counters.
//!
//! ```no_run
//! for b in contigmem::debugfs::buffers()? {
//!     println!("buffer {} of pid {}: {} bytes of {}", b.id, b.pid, b.size, b.kind);
//! }
//! # Ok::<(), contigmem::Error>(())
//! ```
//!
//! Both files are text: a header line naming the columns, then one line per row, fields
//! separated by spaces. Columns are found by their header name, so columns a newer module adds
//! are ignored.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::error::{DebugfsCause, Error, Result};
use crate::Kind;

/// Where debugfs is normally mounted.
pub const MOUNT_POINT: &str = "/sys/kernel/debug";
/// The module's debugfs directory.
pub const DIR: &str = "/sys/kernel/debug/contigmem";
/// The list of buffers whose memory is held.
pub const BUFFERS_PATH: &str = "/sys/kernel/debug/contigmem/buffers";
/// The per-kind counters.
pub const STATS_PATH: &str = "/sys/kernel/debug/contigmem/stats";

/// One line of `buffers`: a buffer whose memory is held (freed-but-still-mapped ones
/// included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BufferEntry {
    /// The buffer's id (global, never reused).
    pub id: u64,
    /// The process (thread group id) that allocated it.
    pub pid: u32,
    /// The allocator it came from.
    pub kind: Kind,
    /// The bytes it holds.
    pub size: u64,
    /// Whether it is physically contiguous.
    pub contiguous: bool,
    /// The number of physically contiguous runs.
    pub segments: u64,
    /// The number of live user mappings (VMAs).
    pub mappings: u64,
    /// The NUMA node of its first page.
    pub node: i32,
    /// Pages on other nodes than `node`.
    pub off_node: u64,
    /// The physical address of its first byte.
    pub phys: u64,
}

/// One line of `stats`: the counters of one kind since the module was loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindStats {
    /// The kind.
    pub kind: Kind,
    /// Bytes held now by buffers of this kind.
    pub live_bytes: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Allocations the allocator failed (ENOMEM).
    pub failures: u64,
}

/// The columns of `buffers`, in the order the module writes them.
const BUFFER_COLUMNS: [&str; 10] = [
    "id",
    "pid",
    "kind",
    "size",
    "contiguous",
    "segments",
    "mappings",
    "node",
    "off_node",
    "phys",
];

/// The columns of `stats`.
const STATS_COLUMNS: [&str; 4] = ["kind", "live_bytes", "allocs", "failures"];

/// Every buffer whose memory is held now, from [`BUFFERS_PATH`].
pub fn buffers() -> Result<Vec<BufferEntry>> {
    buffers_from_str(&read(BUFFERS_PATH)?)
}

/// The counters of every kind, from [`STATS_PATH`].
pub fn stats() -> Result<Vec<KindStats>> {
    stats_from_str(&read(STATS_PATH)?)
}

/// Parses the text of `buffers`.
pub fn buffers_from_str(text: &str) -> Result<Vec<BufferEntry>> {
    parse(BUFFERS_PATH, text, &BUFFER_COLUMNS, |row| {
        Ok(BufferEntry {
            id: row.get(0)?,
            pid: row.get(1)?,
            kind: row.get(2)?,
            size: row.get(3)?,
            contiguous: row.flag(4)?,
            segments: row.get(5)?,
            mappings: row.get(6)?,
            node: row.get(7)?,
            off_node: row.get(8)?,
            phys: row.hex(9)?,
        })
    })
}

/// Parses the text of `stats`.
pub fn stats_from_str(text: &str) -> Result<Vec<KindStats>> {
    parse(STATS_PATH, text, &STATS_COLUMNS, |row| {
        Ok(KindStats {
            kind: row.get(0)?,
            live_bytes: row.get(1)?,
            allocs: row.get(2)?,
            failures: row.get(3)?,
        })
    })
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        let path = PathBuf::from(path);
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => Error::DebugfsUnavailable {
                path,
                cause: DebugfsCause::NotRoot,
            },
            std::io::ErrorKind::NotFound => Error::DebugfsUnavailable {
                path,
                cause: why_missing(),
            },
            _ => Error::Debugfs {
                path,
                line: 0,
                text: String::new(),
                why: e.to_string(),
            },
        }
    })
}

/// Why the files are not there: the module is not loaded, debugfs is not mounted (or hidden
/// from us: `/sys/kernel/debug` is root-only), or the module has no debugfs files.
fn why_missing() -> DebugfsCause {
    if !Path::new("/sys/module/contigmem").exists() {
        return DebugfsCause::ModuleNotLoaded;
    }
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .map(|mounts| {
            mounts.lines().any(|line| {
                let mut fields = line.split_whitespace().skip(1);
                fields.next() == Some(MOUNT_POINT) && fields.next() == Some("debugfs")
            })
        })
        .unwrap_or(false);
    if !mounted {
        DebugfsCause::NotMounted
    } else if !rustix::process::geteuid().is_root() {
        DebugfsCause::NotRoot
    } else {
        DebugfsCause::NoFiles
    }
}

/// The fields of one data line, in the module's column order.
struct Row<'a> {
    fields: Vec<&'a str>,
}

impl Row<'_> {
    fn field(&self, i: usize) -> std::result::Result<&str, String> {
        self.fields
            .get(i)
            .copied()
            .ok_or_else(|| format!("no field {i}"))
    }

    fn get<T: FromStr>(&self, i: usize) -> std::result::Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.field(i)?;
        s.parse().map_err(|e| format!("field {i} {s:?}: {e}"))
    }

    fn flag(&self, i: usize) -> std::result::Result<bool, String> {
        match self.field(i)? {
            "0" => Ok(false),
            "1" => Ok(true),
            s => Err(format!("field {i} {s:?}: expected 0 or 1")),
        }
    }

    fn hex(&self, i: usize) -> std::result::Result<u64, String> {
        let s = self.field(i)?;
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| format!("field {i} {s:?}: expected a hex number with 0x"))?;
        u64::from_str_radix(digits, 16).map_err(|e| format!("field {i} {s:?}: {e}"))
    }
}

/// Parses a header line holding at least `columns`, then one row per non-empty line.
fn parse<T>(
    path: &str,
    text: &str,
    columns: &[&str],
    row: impl Fn(&Row) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let error = |line: usize, text: &str, why: String| Error::Debugfs {
        path: PathBuf::from(path),
        line,
        text: text.to_string(),
        why,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.trim().is_empty());
    let Some((header_no, header)) = lines.next() else {
        return Err(error(
            1,
            "",
            format!("empty file: expected the header `{}`", columns.join(" ")),
        ));
    };
    let names: Vec<&str> = header.split_whitespace().collect();
    // Where each column the parser knows sits in this file.
    let index: Vec<usize> = columns
        .iter()
        .map(|column| names.iter().position(|name| name == column))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            error(
                header_no,
                header,
                format!("expected the header `{}`", columns.join(" ")),
            )
        })?;
    lines
        .map(|(no, line)| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != names.len() {
                return Err(error(
                    no,
                    line,
                    format!("{} fields, expected {}", fields.len(), names.len()),
                ));
            }
            let ordered = Row {
                fields: index.iter().map(|&i| fields[i]).collect(),
            };
            row(&ordered).map_err(|why| error(no, line, why))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUFFERS: &str = "id pid kind size contiguous segments mappings node off_node phys\n\
        7 123 huge 67108864 1 1 2 0 0 0x108000000\n\
        9 123 vmalloc 8192 0 2 0 0 1 0x4a2c000\n\
        12 456 kmalloc 4096 1 1 1 -1 0 0x0\n";

    const STATS: &str = "kind live_bytes allocs failures\n\
        kmalloc 4096 3 0\n\
        kzalloc 0 0 0\n\
        vmalloc 8192 1 0\n\
        pages 0 12 1\n\
        huge 67108864 2 4\n";

    #[test]
    fn parses_buffers() {
        let entries = buffers_from_str(BUFFERS).expect("valid buffers");
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0],
            BufferEntry {
                id: 7,
                pid: 123,
                kind: Kind::Huge,
                size: 64 << 20,
                contiguous: true,
                segments: 1,
                mappings: 2,
                node: 0,
                off_node: 0,
                phys: 0x1_0800_0000,
            }
        );
        assert_eq!(entries[1].kind, Kind::Vmalloc);
        assert!(!entries[1].contiguous);
        assert_eq!(entries[1].segments, 2);
        assert_eq!((entries[2].node, entries[2].phys), (-1, 0));
    }

    #[test]
    fn an_empty_list_has_only_the_header() {
        let header = BUFFERS.lines().next().unwrap();
        assert_eq!(buffers_from_str(header), Ok(vec![]));
        assert_eq!(buffers_from_str(&format!("{header}\n\n")), Ok(vec![]));
    }

    #[test]
    fn parses_stats() {
        let stats = stats_from_str(STATS).expect("valid stats");
        let kinds: Vec<Kind> = stats.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, Kind::ALL);
        assert_eq!(
            stats[4],
            KindStats {
                kind: Kind::Huge,
                live_bytes: 64 << 20,
                allocs: 2,
                failures: 4,
            }
        );
        assert_eq!((stats[3].allocs, stats[3].failures), (12, 1));
    }

    #[test]
    fn columns_are_found_by_name() {
        let text = "kind failures allocs live_bytes extra\npages 1 2 3 x\n";
        let stats = stats_from_str(text).expect("reordered columns");
        assert_eq!(
            stats,
            [KindStats {
                kind: Kind::Pages,
                live_bytes: 3,
                allocs: 2,
                failures: 1,
            }]
        );
    }

    #[test]
    fn a_missing_header_is_an_error() {
        let no_header = BUFFERS.lines().skip(1).collect::<Vec<_>>().join("\n");
        let err = buffers_from_str(&no_header).unwrap_err();
        assert!(matches!(err, Error::Debugfs { line: 1, .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("expected the header `id pid kind"), "{text}");
        assert!(text.contains("7 123 huge"), "{text}");
        let err = stats_from_str("").unwrap_err().to_string();
        assert!(err.contains("empty file"), "{err}");
        // The other file's header is not this one's.
        assert!(stats_from_str(BUFFERS).is_err());
    }

    #[test]
    fn a_garbage_line_is_an_error_naming_it() {
        let cases = [
            ("7 123 huge 67108864 1 1 2 0 0", "9 fields, expected 10"),
            ("7 123 slab 4096 1 1 0 0 0 0x0", "unknown kind \"slab\""),
            ("7 123 huge lots 1 1 0 0 0 0x0", "field 3 \"lots\""),
            ("7 123 huge 4096 yes 1 0 0 0 0x0", "expected 0 or 1"),
            ("7 123 huge 4096 1 1 0 0 0 1000", "expected a hex number"),
            ("7 123 huge 4096 1 1 0 0 0 0xzz", "field 9 \"0xzz\""),
            ("7 -1 huge 4096 1 1 0 0 0 0x0", "field 1 \"-1\""),
            ("7 123 huge 4096 1 1 0 0 -3 0x0", "field 8 \"-3\""),
        ];
        for (line, why) in cases {
            let text = format!("{}{line}\n", BUFFERS);
            let err = buffers_from_str(&text).unwrap_err();
            assert!(matches!(err, Error::Debugfs { line: 5, .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains("line 5"), "{msg}");
            assert!(msg.contains(line), "{msg}");
            assert!(msg.contains(why), "{line}: {msg}");
        }
        let err = stats_from_str("kind live_bytes allocs failures\nhuge 1 2\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("\"huge 1 2\""),
            "{err}"
        );
    }

    #[test]
    fn entries_serialise_with_their_names() {
        let entries = buffers_from_str(BUFFERS).unwrap();
        let json = serde_json::to_string(&entries[0]).unwrap();
        assert_eq!(
            json,
            "{\"id\":7,\"pid\":123,\"kind\":\"huge\",\"size\":67108864,\"contiguous\":true,\
             \"segments\":1,\"mappings\":2,\"node\":0,\"off_node\":0,\"phys\":4429185024}"
        );
    }
}
