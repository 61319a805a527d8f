// SPDX-License-Identifier: GPL-2.0

//! Safe userspace API for `/dev/contigmem`: memory from each of the kernel's allocators,
//! mapped into this process.
//!
//! ```no_run
//! use contigmem::{Device, Kind};
//!
//! let dev = Device::open()?;
//! let buf = dev.alloc(Kind::Pages, 1 << 20)?;
//! let mut map = buf.map()?;
//! map[..5].copy_from_slice(b"hello");
//! println!("buffer {} at physical {:#x}", buf.id(), buf.phys_addr());
//! # Ok::<(), contigmem::Error>(())
//! ```
//!
//! The raw ABI ([`abi`]) is the very file the kernel module compiles.

#[path = "../../../rust/abi.rs"]
pub mod abi;

mod buffer;
mod cache;
pub mod debugfs;
mod device;
mod dmabuf;
mod error;
mod kind;
mod mapping;
pub mod numa;
pub mod pagemap;
pub mod pattern;
mod size;
mod sys;

pub use buffer::{Buffer, BufferInfo};
pub use cache::Cache;
pub use device::{AllocOptions, Device, Request, Version, DEFAULT_PATH};
pub use dmabuf::{Access, DmaBuf, ExportOptions, SyncDir};
pub use error::{errno_name, DebugfsCause, Error, Result};
pub use kind::{Kind, ParseKindError, HUGE_GRANULE};
pub use mapping::Mapping;
pub use rustix::io::Errno;
pub use rustix::mm::{MapFlags, ProtFlags};
pub use size::{format_size, parse_size, ParseSizeError};
