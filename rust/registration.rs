// SPDX-License-Identifier: GPL-2.0

//! The misc device registration, with the module as the owner of its file operations.
//!
//! The kernel crate's `MiscDeviceRegistration` leaves `file_operations.owner` null, so an open
//! file does not pin the module: `rmmod` succeeds under an open file and the next call through
//! it (even the final `close`) jumps into freed memory. This registration copies the vtable the
//! kernel crate builds for our `MiscDevice`, sets `owner` and the node's mode, and registers
//! that, so the VFS takes a module reference for every open file (and so for every mapping,
//! which holds its file).

use core::marker::PhantomData;

use kernel::{
    bindings,
    error::to_result,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions, //
    },
    prelude::*,
    types::Opaque, //
};

/// A registered misc device whose file operations are owned by this module.
///
/// # Invariants
///
/// `misc` is registered with `misc_register` (its `fops` pointing at `fops`) from the end of a
/// successful initialisation until drop.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: MiscDevice> {
    #[pin]
    fops: Opaque<bindings::file_operations>,
    #[pin]
    misc: Opaque<bindings::miscdevice>,
    _t: PhantomData<T>,
}

// SAFETY: The registration only hands its raw structures to the misc core, which may be called
// from any thread; nothing in it is tied to the registering thread.
unsafe impl<T: MiscDevice> Send for Registration<T> {}
// SAFETY: `&Registration` gives access to nothing: the structures are only read by the kernel.
unsafe impl<T: MiscDevice> Sync for Registration<T> {}

impl<T: MiscDevice> Registration<T> {
    /// Registers `/dev/<name>` with mode `mode` and `module` as the owner of its files.
    pub(crate) fn register(
        name: &'static CStr,
        mode: u16,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        let raw = MiscDeviceOptions { name }.into_raw::<T>();
        try_pin_init!(&this in Self {
            fops <- Opaque::ffi_init(move |slot: *mut bindings::file_operations| {
                // `thp_get_unmapped_area` places mappings of 2 MiB and more at 2 MiB-aligned
                // addresses (congruent with the offset), so huge mappings can use PMDs.
                // SAFETY: `raw.fops` points to the kernel crate's static vtable for `T`, and
                // `slot` is valid for writes while this field is initialised.
                unsafe {
                    slot.write(raw.fops.read());
                    (*slot).owner = module.as_ptr();
                    (*slot).get_unmapped_area = Some(bindings::thp_get_unmapped_area);
                    // `lseek(fd, cookie, SEEK_SET)` before `read`/`write`; no end to seek from.
                    (*slot).llseek = Some(bindings::default_llseek);
                }
            }),
            misc <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                // SAFETY: `this` points to the structure under construction, whose `fops` field
                // was initialised above and is pinned as long as the registration lives.
                let fops = unsafe { (*this.as_ptr()).fops.get() };
                // The vtable's `open` casts the `miscdevice` to `MiscDeviceRegistration<T>`, a
                // `#[repr(transparent)]` wrapper of `Opaque<miscdevice>`: the layout it expects.
                // SAFETY: `slot` is valid for writes, and the misc core keeps the pointer until
                // `misc_deregister` in `drop`; the field has the layout `open` expects (above).
                unsafe {
                    slot.write(bindings::miscdevice {
                        fops,
                        mode,
                        ..raw
                    });
                    to_result(bindings::misc_register(slot))
                }
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: MiscDevice> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `misc` is registered.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}
