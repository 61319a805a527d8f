// SPDX-License-Identifier: GPL-2.0

//! One open file of `/dev/contigmem`: the `MiscDevice` callbacks.

use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    prelude::*, //
};

/// The state of one open file of `/dev/contigmem`.
pub(crate) struct ContigmemFile;

#[vtable]
impl MiscDevice for ContigmemFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(ContigmemFile, GFP_KERNEL)?)
    }

    fn ioctl(_me: &ContigmemFile, _file: &File, _cmd: u32, _arg: usize) -> Result<isize> {
        Err(ENOTTY)
    }
}
