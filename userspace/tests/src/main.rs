// SPDX-License-Identifier: GPL-2.0

//! In-guest integration tests of `/dev/contigmem`, printed as TAP.
//!
//! Run as root in the test guest with the module loaded: `contigmem-tests`. Tests that need
//! root report `# SKIP not root` otherwise.

mod alloc;
mod cache;
mod debugfs;
mod dmabuf;
mod errors;
mod exhaust;
mod faults;
mod folios;
mod hardening;
mod hugemap;
mod lifetime;
mod numa;
mod privilege;
mod rw;
mod scale;
mod sys;
mod tap;
mod util;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::PermissionsExt;

use contigmem::{Device, Errno};

use tap::{Outcome, Tap};

fn device_node() -> Outcome {
    let meta = std::fs::metadata(contigmem::DEFAULT_PATH)
        .map_err(|e| format!("stat {}: {e}", contigmem::DEFAULT_PATH))?;
    check_eq!(
        meta.file_type().is_char_device(),
        true,
        "is a character device"
    );
    check_eq!(
        format!("{:o}", meta.permissions().mode() & 0o777),
        "600",
        "mode"
    );
    Ok(())
}

fn open_close_many() -> Outcome {
    let devs = (0..64)
        .map(|_| Device::open())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("opening 64 files: {e}"))?;
    drop(devs);
    Ok(())
}

fn unknown_ioctl_is_enotty() -> Outcome {
    let dev = Device::open().map_err(|e| e.to_string())?;
    for cmd in [0u32, 0xdead_beef, 0x8008_4300, 0xc040_43ff] {
        let errno = dev.ioctl_raw(cmd, 0).err().map(|e| e.errno());
        check_eq!(errno, Some(Errno::NOTTY), format!("ioctl {cmd:#x}"));
    }
    Ok(())
}

fn version_is_sane(v: &contigmem::Version) -> Outcome {
    check_eq!(v.abi_version, contigmem::abi::ABI_VERSION, "ABI version");
    check_eq!(v.page_size, rustix::param::page_size() as u64, "page size");
    check_eq!(v.kinds, contigmem::Kind::ALL.to_vec(), "supported kinds");
    for (kind, max) in &v.max_size {
        check!(
            *max >= v.page_size,
            "{kind}: max_size {max} is less than a page"
        );
        check!(
            max % v.page_size == 0,
            "{kind}: max_size {max} is not whole pages"
        );
    }
    check!(
        v.max_file_bytes <= v.max_total_bytes,
        "per-file cap {} exceeds the global cap {}",
        v.max_file_bytes,
        v.max_total_bytes
    );
    Ok(())
}

fn main() {
    let mut tap = Tap::new();
    tap.test("device node is a char device with mode 0600", device_node);
    tap.test("64 files open and close", open_close_many);
    tap.test("unknown ioctl fails with ENOTTY", unknown_ioctl_is_enotty);

    let start = Device::open().and_then(|dev| Ok((dev.version()?, dev)));
    let (version, dev) = match start {
        Ok(started) => started,
        Err(e) => {
            tap.test("VERSION", || {
                Err(format!("cannot open and query the device: {e}").into())
            });
            std::process::exit(tap.finish());
        }
    };
    tap.test("VERSION reports the ABI, all kinds and sane limits", || {
        version_is_sane(&version)
    });
    alloc::register(&mut tap, &version);
    lifetime::register(&mut tap);
    privilege::register(&mut tap);
    debugfs::register(&mut tap, &version);
    // The folio tests take the guest's one free aligned GiB before anything loads brd, whose
    // unmovable pages could land in it.
    folios::register(&mut tap);
    hugemap::register(&mut tap);
    privilege::register_pud(&mut tap);
    rw::register(&mut tap);
    dmabuf::register(&mut tap);
    cache::register(&mut tap, &version);
    errors::register(&mut tap, &version);
    numa::register(&mut tap);
    hardening::register(&mut tap);
    scale::register(&mut tap);
    // Fault injection and exhaustion change the machine's state (injectors, module caps): they
    // run only when asked for by name (`contigmem-tests 'fault injection'`, `... exhaust`).
    if std::env::args().nth(1).is_some() {
        faults::run(&mut tap);
        exhaust::run(&mut tap);
    }
    tap.test("live counters are back where they started", || {
        util::expect_live(
            &dev,
            (version.live_bytes, version.live_buffers),
            "after all tests",
        )
    });
    std::process::exit(tap.finish());
}
