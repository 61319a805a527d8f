// SPDX-License-Identifier: GPL-2.0

//! `contigmem info`: the kernel, the module, the device and what VERSION reports.

use std::path::Path;

use contigmem::{format_size, Device, Error, Kind, Version};
use serde::Serialize;

use crate::table::Table;
use crate::Output;

/// What `contigmem info` reports.
#[derive(Serialize)]
struct Info {
    device: String,
    kernel: String,
    module_loaded: bool,
    mode: String,
    opened: bool,
    /// What VERSION reported, when the device opened and answered.
    version: Option<Version>,
    /// The ABI version this tool speaks.
    tool_abi_version: u32,
    /// Why the device could not be opened or queried.
    error: Option<String>,
}

pub fn run(device: &str, out: Output) -> Result<(), Error> {
    let uname = rustix::system::uname();
    let mode = rustix::fs::stat(device)
        .map(|st| format!("{:04o}", st.st_mode & 0o7777))
        .unwrap_or_else(|_| "-".into());
    let dev = Device::open_path(device);
    let version = dev.as_ref().map_err(Clone::clone).and_then(Device::version);
    let report = Info {
        device: device.to_string(),
        kernel: uname.release().to_string_lossy().into_owned(),
        module_loaded: Path::new("/sys/module/contigmem").exists(),
        mode,
        opened: dev.is_ok(),
        version: version.as_ref().ok().cloned(),
        tool_abi_version: contigmem::abi::ABI_VERSION,
        error: version.as_ref().err().map(ToString::to_string),
    };
    if out.json {
        out.print_json(&report);
    } else {
        print_human(&report);
    }
    match version {
        Ok(v) if !v.is_compatible() => Err(Error::Abi {
            what: format!(
                "the module speaks ABI version {}, this tool {}",
                v.abi_version,
                contigmem::abi::ABI_VERSION
            ),
        }),
        other => other.map(|_| ()),
    }
}

fn print_human(report: &Info) {
    println!("kernel:        {}", report.kernel);
    println!(
        "module loaded: {}",
        crate::table::yes_no(report.module_loaded)
    );
    println!("device:        {} (mode {})", report.device, report.mode);
    println!("opened:        {}", crate::table::yes_no(report.opened));
    let Some(v) = &report.version else { return };
    println!(
        "ABI version:   {} (this tool: {})",
        v.abi_version, report.tool_abi_version
    );
    println!("page size:     {}", format_size(v.page_size));
    println!("global cap:    {}", format_size(v.max_total_bytes));
    println!("per-file cap:  {}", format_size(v.max_file_bytes));
    println!(
        "live:          {} in {} buffers",
        format_size(v.live_bytes),
        v.live_buffers
    );
    println!();
    let mut table = Table::new(&["KIND", "SUPPORTED", "MAX SIZE", "CONTIGUOUS"]);
    for kind in Kind::ALL {
        table.row(vec![
            kind.to_string(),
            crate::table::yes_no(v.supports(kind)).into(),
            v.max_size(kind)
                .map(format_size)
                .unwrap_or_else(|| "-".into()),
            crate::table::yes_no(kind.is_contiguous()).into(),
        ]);
    }
    print!("{table}");
}
