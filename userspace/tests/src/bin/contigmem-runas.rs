// SPDX-License-Identifier: GPL-2.0

//! `contigmem-runas UID GID CMD [ARGS...]`: runs CMD as UID with GID as its only group, for the
//! guest's permission tests (busybox has no `su` without /etc/passwd, nor `chpst`).

use std::ffi::CString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(uid), Some(gid), Some(_)) = (
        args.first().and_then(|u| u.parse::<u32>().ok()),
        args.get(1).and_then(|g| g.parse::<u32>().ok()),
        args.get(2),
    ) else {
        eprintln!("usage: contigmem-runas UID GID CMD [ARGS...]");
        return ExitCode::from(2);
    };
    let groups = [gid];
    // SAFETY: Plain system calls on this process's credentials; `groups` outlives the call and
    // holds one element, as the count says.
    let dropped = unsafe {
        libc::setgroups(1, groups.as_ptr()) == 0
            && libc::setresgid(gid, gid, gid) == 0
            && libc::setresuid(uid, uid, uid) == 0
    };
    if !dropped {
        eprintln!("contigmem-runas: {}", std::io::Error::last_os_error());
        return ExitCode::FAILURE;
    }
    let Ok(argv) = args[2..]
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
    else {
        eprintln!("contigmem-runas: an argument holds a NUL byte");
        return ExitCode::from(2);
    };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(core::ptr::null());
    // SAFETY: `ptrs` is a null-terminated array of pointers to NUL-terminated strings that live
    // until `execvp` replaces the process or returns.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    eprintln!(
        "contigmem-runas: {}: {}",
        args[2],
        std::io::Error::last_os_error()
    );
    ExitCode::from(127)
}
