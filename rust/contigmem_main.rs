// SPDX-License-Identifier: GPL-2.0

//! contigmem: memory from each of the kernel's allocators, mapped into userspace through the misc
//! device `/dev/contigmem`.
//!
//! The crate root declares the module, its parameters and the device; each concern lives in a
//! file of its own:
//!
//! - `abi`: the ioctl structures, shared with userspace and checked against the C header;
//! - `file`: an open file, its table of buffers and the ioctls;
//! - `buffer`: a reference-counted buffer and the byte caps;
//! - `ids`: the search for free buffer ids (the machine's, each file's for 32-bit processes);
//! - `introspect`: counters and the debugfs files;
//! - `memory`: the back-ends (kmalloc, kzalloc, vmalloc, pages, contiguous ranges);
//! - `mapping`: mmap cookies and the VMA operations that keep buffers alive;
//! - `registration`: the misc device, owned by this module;
//! - `registry`: every live buffer and so the held ids, for debugfs;
//! - `sys`: the few raw C calls the kernel crate has no abstraction for.

mod abi;
mod buffer;
mod dmabuf;
mod file;
mod ids;
mod introspect;
mod mapping;
mod memory;
mod registration;
mod registry;
mod sys;

use kernel::prelude::*;

// Buffers of many pages are walked with `struct page` pointer arithmetic, which is valid across
// sections only with a virtually contiguous memmap.
#[cfg(not(CONFIG_SPARSEMEM_VMEMMAP))]
compile_error!("contigmem needs CONFIG_SPARSEMEM_VMEMMAP");

module! {
    type: ContigmemModule,
    name: "contigmem",
    authors: ["The contigmem authors"],
    description: "Memory from kmalloc, vmalloc, pages and contiguous ranges, mapped to userspace",
    license: "GPL",
    params: {
        max_total_mb: u64 {
            default: 0,
            description: "Cap on the bytes all buffers hold, in MiB (0: 3/4 of RAM)",
        },
        max_file_mb: u64 {
            default: 0,
            description: "Cap on the bytes one open file's buffers hold, in MiB (0: the total cap)",
        },
        mode: u16 {
            default: 0o600,
            description: "Mode of /dev/contigmem (default 0600)",
        },
    },
}

#[pin_data]
struct ContigmemModule {
    #[pin]
    _debugfs: introspect::Debugfs,
    // Dropped after the debugfs files: no file can be opened once they are gone.
    #[pin]
    _miscdev: registration::Registration<file::ContigmemFile>,
}

impl kernel::InPlaceModule for ContigmemModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let mode = *module_parameters::mode.value() & 0o777;
        // SAFETY: `init` runs once, and nothing uses the registry before the device exists.
        unsafe { registry::init() };
        // The device first: were its registration to fail, the module would be freed at once,
        // and no debugfs file of it may have been opened by then. Fields drop in declaration
        // order, the debugfs files first.
        try_pin_init!(Self {
            _miscdev <- registration::Registration::register(c"contigmem", mode, module),
            _debugfs <- introspect::Debugfs::new(module),
        })
    }
}
