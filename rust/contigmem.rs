// SPDX-License-Identifier: GPL-2.0

//! contigmem: memory from each of the kernel's allocators, mapped into userspace through the misc
//! device `/dev/contigmem`.
//!
//! The crate root declares the module and registers the device; each concern lives in a file of
//! its own (see `DESIGN.md` of the project for the architecture and the ABI contract).

mod file;

use kernel::{
    miscdevice::{
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*, //
};

module! {
    type: ContigmemModule,
    name: "contigmem",
    authors: ["The contigmem authors"],
    description: "Memory from kmalloc, vmalloc, pages and contiguous ranges, mapped to userspace",
    license: "GPL",
}

#[pin_data]
struct ContigmemModule {
    #[pin]
    _miscdev: MiscDeviceRegistration<file::ContigmemFile>,
}

impl kernel::InPlaceModule for ContigmemModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions {
            name: c"contigmem",
        };

        try_pin_init!(Self {
            _miscdev <- MiscDeviceRegistration::register(options),
        })
    }
}
