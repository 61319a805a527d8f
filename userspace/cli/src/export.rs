// SPDX-License-Identifier: GPL-2.0

//! `contigmem alloc --export`: export the buffer as a dma-buf (`CONTIGMEM_IOC_EXPORT`) and show,
//! through the dma-buf's own mapping, the pattern written through `/dev/contigmem`.

use std::os::fd::AsRawFd;

use contigmem::{format_size, Buffer, DmaBuf, Error, ExportOptions, SyncDir};
use serde::Serialize;

use crate::probe;

/// What exporting a buffer found.
#[derive(Debug, Serialize)]
pub struct Export {
    /// The dma-buf's file descriptor in this process.
    pub fd: i32,
    /// Its size as its file reports it (`lseek(SEEK_END)`): the buffer's size.
    pub size: u64,
    /// Its inode number: the `ino` column of `/sys/kernel/debug/dma_buf/bufinfo`.
    pub inode: u64,
    /// INFO's count of the buffer's live dma-bufs while this one is open: 1.
    pub dmabufs: u64,
    /// The first word where the dma-buf's mapping differs from the pattern, if one does.
    pub mismatch: Option<String>,
    /// Size, count and bytes are as expected.
    pub ok: bool,
}

/// Exports `buf`, whose whole size holds the pattern of [`probe::run`], maps the dma-buf and
/// checks the pattern through it (inside `DMA_BUF_IOCTL_SYNC` start/end, as a reader of a
/// dma-buf must). Returns the report and the dma-buf, so the caller decides how long it lives.
pub fn run(buf: &Buffer<'_>) -> Result<(Export, DmaBuf), Error> {
    let dmabuf = buf.export(ExportOptions::default())?;
    let size = rustix::fs::seek(&dmabuf, rustix::fs::SeekFrom::End(0)).map_err(|e| Error::Os {
        op: "lseek on the dma-buf",
        errno: e,
    })?;
    let inode = rustix::fs::fstat(&dmabuf)
        .map_err(|e| Error::Os {
            op: "fstat on the dma-buf",
            errno: e,
        })?
        .st_ino;
    let map = dmabuf.map()?;
    dmabuf.sync(SyncDir::Read, true)?;
    let what = format!("reading {} through the dma-buf", format_size(size));
    let mismatch = probe::find_mismatch(&what, &map);
    dmabuf.sync(SyncDir::Read, false)?;
    drop(map);
    let dmabufs = buf.info()?.dmabufs;
    let export = Export {
        fd: dmabuf.as_raw_fd(),
        size,
        inode,
        dmabufs,
        ok: mismatch.is_none() && size == buf.size() && dmabufs == 1,
        mismatch: mismatch.map(|m| m.to_string()),
    };
    Ok((export, dmabuf))
}

/// The report's lines, after the buffer's own (`buffer_size` is the buffer's size).
pub fn lines(e: &Export, buffer_size: u64) -> [String; 2] {
    let size = if e.size == buffer_size {
        format_size(e.size)
    } else {
        format!(
            "{} MISMATCH: the buffer has {}",
            format_size(e.size),
            format_size(buffer_size)
        )
    };
    let count = if e.dmabufs == 1 {
        "1 live dma-buf".to_string()
    } else {
        format!("{} live dma-bufs MISMATCH: expected 1", e.dmabufs)
    };
    let bytes = match &e.mismatch {
        None => "its mapping shows the pattern written through /dev/contigmem".to_string(),
        Some(m) => format!("MISMATCH through its mapping {m}"),
    };
    [
        format!(
            "dma-buf:     fd {}, {size}, inode {} (INFO: {count})",
            e.fd, e.inode
        ),
        format!("dma-buf map: {bytes}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export() -> Export {
        Export {
            fd: 3,
            size: 64 << 20,
            inode: 41,
            dmabufs: 1,
            mismatch: None,
            ok: true,
        }
    }

    #[test]
    fn the_lines_show_fd_size_and_the_check() {
        assert_eq!(
            lines(&export(), 64 << 20),
            [
                "dma-buf:     fd 3, 64M, inode 41 (INFO: 1 live dma-buf)",
                "dma-buf map: its mapping shows the pattern written through /dev/contigmem",
            ]
        );
    }

    #[test]
    fn the_lines_say_what_differs() {
        let bad = Export {
            size: 2 << 20,
            dmabufs: 0,
            mismatch: Some("at byte 0x10: expected 0x1, found 0x0".into()),
            ok: false,
            ..export()
        };
        let [first, second] = lines(&bad, 64 << 20);
        assert!(first.contains("2M MISMATCH: the buffer has 64M"), "{first}");
        assert!(first.contains("0 live dma-bufs MISMATCH"), "{first}");
        assert!(second.starts_with("dma-buf map: MISMATCH"), "{second}");
    }
}
