// SPDX-License-Identifier: GPL-2.0

//! The tests' own raw system calls: fork, dropping privileges, mprotect. The only `unsafe` of
//! the test binary.

use std::fs::File;
use std::io::{Read, Write};
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};

/// A channel between a forked child and its parent, to take turns: two pipes (the test kernel
/// has no sockets).
pub struct Chan {
    rx: File,
    tx: File,
}

impl Chan {
    /// Tells the other side to go on.
    pub fn signal(&mut self) -> Result<(), String> {
        self.tx
            .write_all(b"!")
            .map_err(|e| format!("signalling: {e}"))
    }

    /// Sends a number to the other side.
    pub fn send(&mut self, n: u64) -> Result<(), String> {
        self.tx
            .write_all(&n.to_ne_bytes())
            .map_err(|e| format!("sending to the other process: {e}"))
    }

    /// Waits for a number from the other side.
    pub fn recv(&mut self) -> Result<u64, String> {
        let mut bytes = [0u8; 8];
        self.rx.read_exact(&mut bytes).map_err(|e| {
            format!("waiting for a number from the other process: {e} (did it fail?)")
        })?;
        Ok(u64::from_ne_bytes(bytes))
    }

    /// Waits for the other side's signal.
    pub fn wait(&mut self) -> Result<(), String> {
        let mut byte = [0u8];
        self.rx
            .read_exact(&mut byte)
            .map_err(|e| format!("waiting for the other process: {e} (did it fail?)"))
    }
}

/// A pipe: (read end, write end).
fn pipe() -> Result<(File, File), String> {
    let (rx, tx) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
    Ok((File::from(rx), File::from(tx)))
}

/// Two connected channels.
fn pair() -> Result<(Chan, Chan), String> {
    let (a_rx, b_tx) = pipe()?;
    let (b_rx, a_tx) = pipe()?;
    Ok((Chan { rx: a_rx, tx: a_tx }, Chan { rx: b_rx, tx: b_tx }))
}

/// Forks: runs `child` in the child and `parent` in the parent, which can take turns through
/// their `Chan`s. The child leaves with `_exit`, so nothing of the parent (buffers, mappings,
/// files) is dropped in it. Fails with the child's error, or the parent's.
pub fn fork(
    child: impl FnOnce(&mut Chan) -> Result<(), String>,
    parent: impl FnOnce(&mut Chan) -> Result<(), String>,
) -> Result<(), String> {
    let (mut report_rx, mut report_tx) = pipe()?;
    let (parent_end, child_end) = pair()?;
    let _ = std::io::stdout().flush();
    // SAFETY: the test binary is single-threaded, so the child is a complete copy in which any
    // code may run; it never returns from this function (it ends in `_exit`).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(report_rx);
        drop(parent_end);
        let mut chan = child_end;
        let result = catch_unwind(AssertUnwindSafe(|| child(&mut chan)))
            .unwrap_or_else(|_| Err("the child panicked".to_string()));
        let code = match result {
            Ok(()) => 0,
            Err(why) => {
                let _ = report_tx.write_all(why.as_bytes());
                1
            }
        };
        drop(report_tx);
        // SAFETY: `_exit` ends the process at once, without running the parent's destructors
        // or atexit handlers in the child.
        unsafe { libc::_exit(code) };
    }
    drop(report_tx);
    drop(child_end);
    let mut chan = parent_end;
    let parent_result = parent(&mut chan);
    drop(chan);
    let mut child_report = String::new();
    let _ = report_rx.read_to_string(&mut child_report);
    let pid = Pid::from_raw(pid).ok_or("fork returned pid 0 in the parent")?;
    let status = rustix::process::waitpid(Some(pid), WaitOptions::empty())
        .map_err(|e| format!("waitpid: {e}"))?
        .map(|(_, status)| status);
    parent_result?;
    match status {
        Some(s) if s.exit_status() == Some(0) => Ok(()),
        Some(s) if s.exit_status().is_some() => Err(format!("in the child: {child_report}")),
        other => Err(format!("the child died: {other:?} {child_report}")),
    }
}

/// Puts the children this process forks from now on in a new pid namespace, whose pid 1 the
/// next one is (`unshare(CLONE_NEWPID)`). Meant for a forked child.
pub fn unshare_pid_namespace() -> Result<(), String> {
    // SAFETY: a plain system call; CLONE_NEWPID changes only the namespace of children to come,
    // not this process's memory or threads.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWPID): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Drops to uid and gid 65534 (nobody) for good, with no supplementary groups, losing every
/// capability. Meant for a forked child.
pub fn become_nobody() -> Result<(), String> {
    const NOBODY: u32 = 65534;
    // SAFETY: plain system calls on this process's credentials; the pointer is null with a
    // count of 0.
    let rc = unsafe { libc::setgroups(0, core::ptr::null()) };
    if rc != 0 {
        return Err(format!("setgroups: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::setresgid(NOBODY, NOBODY, NOBODY) } != 0 {
        return Err(format!("setresgid: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(NOBODY, NOBODY, NOBODY) } != 0 {
        return Err(format!("setresuid: {}", std::io::Error::last_os_error()));
    }
    let euid = rustix::process::geteuid().as_raw();
    if euid != NOBODY {
        return Err(format!("still euid {euid} after setresuid"));
    }
    Ok(())
}

/// Runs `f` with the effective user id `euid` (root's capabilities leave the effective set
/// with it), then returns to euid 0, which the saved user id (still root) allows.
pub fn with_euid<T, E: std::fmt::Display>(
    euid: u32,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, String> {
    // SAFETY: plain system calls on this process's credentials.
    if unsafe { libc::seteuid(euid) } != 0 {
        return Err(format!(
            "seteuid({euid}): {}",
            std::io::Error::last_os_error()
        ));
    }
    let out = f().map_err(|e| e.to_string());
    // SAFETY: as above.
    if unsafe { libc::seteuid(0) } != 0 {
        return Err(format!("seteuid(0): {}", std::io::Error::last_os_error()));
    }
    out
}

/// `mprotect(addr, len, PROT_READ | PROT_WRITE | PROT_EXEC)` on a mapping we own.
pub fn make_executable(mem: &[u8]) -> Result<(), Errno> {
    // SAFETY: `mem` is a readable and writable mapping of ours; adding PROT_EXEC only widens
    // its protection, so every reference into it stays valid.
    let rc = unsafe {
        libc::mprotect(
            mem.as_ptr() as *mut libc::c_void,
            mem.len(),
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

/// Makes the pages of `mem` read-only (`mprotect(PROT_READ)`).
pub fn mprotect_read_only(mem: &[u8]) -> Result<(), String> {
    // SAFETY: `mem` is a live mapping of ours; removing write access cannot break Rust's
    // guarantees for a shared borrow, and no one writes through it while the result is used.
    let rc = unsafe { libc::mprotect(mem.as_ptr() as *mut _, mem.len(), libc::PROT_READ) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("mprotect: {}", std::io::Error::last_os_error()))
    }
}

/// `madvise(MADV_DONTNEED)` over all of `mem`.
pub fn dontneed(mem: &[u8]) -> Result<(), Errno> {
    // SAFETY: `mem` is a mapping of ours; MADV_DONTNEED on a shared file mapping only drops its
    // page-table entries, and the next access maps the file's pages again, so every reference
    // into it stays valid.
    let rc = unsafe {
        libc::madvise(
            mem.as_ptr() as *mut libc::c_void,
            mem.len(),
            libc::MADV_DONTNEED,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

/// `mprotect(PROT_READ | PROT_WRITE)` of a read-only mapping: must fail, so no reference into
/// it is ever made writable.
pub fn make_writable(mem: &[u8]) -> Result<(), Errno> {
    // SAFETY: `mem` is a mapping of ours; the call is expected to fail, and if it succeeded
    // it would only widen the protection, so every reference into it stays valid.
    let rc = unsafe {
        libc::mprotect(
            mem.as_ptr() as *mut libc::c_void,
            mem.len(),
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

/// A connected pair of Unix stream sockets.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a live array of the two ints `socketpair` fills.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(format!("socketpair: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: The kernel made both descriptors for us just now; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The control-message buffer of one descriptor, aligned as `cmsghdr` needs.
#[repr(C, align(8))]
struct FdCmsg([u8; 32]);

/// A message of the one byte `iov` names and the control buffer `control`, of which
/// `control_len` bytes are used; the caller keeps both alive while the message is.
fn message(iov: &mut libc::iovec, control: &mut FdCmsg, control_len: usize) -> libc::msghdr {
    // SAFETY: `msghdr` is plain data; zero is a valid value for each field.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control_len.min(control.0.len());
    msg
}

/// Sends descriptor `fd` over the Unix socket `sock` (`SCM_RIGHTS`), with one byte of data.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<(), String> {
    let mut byte = [b'!'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = FdCmsg([0; 32]);
    // SAFETY: `CMSG_SPACE` is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(size_of::<i32>() as u32) } as usize;
    let msg = message(&mut iov, &mut control, space);
    // SAFETY: `msg` points at `control`, which has room for one header and an int (32 bytes
    // against CMSG_SPACE(4) = 24), so the first header and its data lie inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<i32>() as u32) as usize;
        core::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd.as_raw_fd());
    }
    // SAFETY: `msg` and everything it points at live across the call.
    if unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) } != 1 {
        return Err(format!("sendmsg: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Receives a descriptor sent with [`send_fd`] on `sock`.
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd, String> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = FdCmsg([0; 32]);
    let mut msg = message(&mut iov, &mut control, 32);
    // SAFETY: `msg` and everything it points at live across the call.
    let got = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if got != 1 {
        return Err(format!(
            "recvmsg: got {got}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: The kernel filled `control` with `msg_controllen` bytes; the header, if any, lies
    // inside it, and an SCM_RIGHTS header of one int carries one descriptor, now ours.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err("recvmsg: no SCM_RIGHTS message".into());
        }
        let fd = core::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// ioctl `request` on `fd` with a pointer to `arg`, a `#[repr(C)]` structure of the size the
/// request encodes. Returns the errno of a failure.
pub fn ioctl_ptr<T>(fd: BorrowedFd<'_>, request: u32, arg: &mut T) -> Result<i32, Errno> {
    // SAFETY: `arg` is a live, exclusively borrowed object of the size the request names (the
    // caller's rule); the kernel reads and writes it through the uaccess helpers only.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::c_ulong, arg as *mut T) };
    if rc < 0 {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    } else {
        Ok(rc)
    }
}

/// Waits up to `ms` milliseconds for `fd` to be readable; false on a timeout.
pub fn poll_in(fd: BorrowedFd<'_>, ms: i32) -> Result<bool, String> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one live `pollfd`.
    match unsafe { libc::poll(&mut pfd, 1, ms) } {
        n if n < 0 => Err(format!("poll: {}", std::io::Error::last_os_error())),
        n => Ok(n > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_and_parent_take_turns() {
        let result = fork(
            |chan| {
                chan.signal()?;
                chan.wait()
            },
            |chan| {
                chan.wait()?;
                chan.signal()
            },
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn child_failures_reach_the_parent() {
        let result = fork(|_| Err("expected 2, saw 3".into()), |_| Ok(()));
        assert_eq!(result, Err("in the child: expected 2, saw 3".into()));
        let result = fork(|_| panic!("boom"), |_| Ok(()));
        assert_eq!(result, Err("in the child: the child panicked".into()));
    }

    #[test]
    fn parent_failures_win() {
        let result = fork(
            |chan| chan.wait().or(Ok(())),
            |_| Err("parent failed".into()),
        );
        assert_eq!(result, Err("parent failed".into()));
    }
}

/// An io_uring with one registered ("fixed") buffer: registering pins its pages
/// (`IORING_REGISTER_BUFFERS`, a long-term `pin_user_pages`), which stay pinned, and usable by
/// the ring, until the buffer is unregistered or the ring closed, whatever becomes of the
/// mapping they came from.
pub struct FixedRing {
    ring: io_uring::IoUring,
    addr: usize,
    len: usize,
}

impl FixedRing {
    /// Registers `mem` as buffer 0 of a new ring.
    pub fn register(mem: &[u8]) -> Result<Self, String> {
        let ring = io_uring::IoUring::new(4).map_err(|e| format!("io_uring_setup: {e}"))?;
        let iov = libc::iovec {
            iov_base: mem.as_ptr() as *mut libc::c_void,
            iov_len: mem.len(),
        };
        // SAFETY: The buffer is a mapping of ours, alive now; the ring uses it only through
        // `read` and `write` below, which stay inside it, and through the pages it pins, which
        // outlive the mapping.
        unsafe { ring.submitter().register_buffers(&[iov]) }
            .map_err(|e| format!("IORING_REGISTER_BUFFERS: {e}"))?;
        Ok(Self {
            ring,
            addr: mem.as_ptr() as usize,
            len: mem.len(),
        })
    }

    /// Reads `len` bytes of `file` from `file_off` into the fixed buffer at `at`.
    pub fn read(
        &mut self,
        file: &File,
        at: usize,
        len: u32,
        file_off: u64,
    ) -> Result<usize, String> {
        self.io(file, at, len, file_off, false)
    }

    /// Writes `len` bytes of the fixed buffer from `at` to `file` at `file_off`.
    pub fn write(
        &mut self,
        file: &File,
        at: usize,
        len: u32,
        file_off: u64,
    ) -> Result<usize, String> {
        self.io(file, at, len, file_off, true)
    }

    fn io(
        &mut self,
        file: &File,
        at: usize,
        len: u32,
        off: u64,
        write: bool,
    ) -> Result<usize, String> {
        use io_uring::{opcode, types};
        use std::os::fd::AsRawFd;
        if at + len as usize > self.len {
            return Err(format!("{at:#x}+{len:#x} is outside the fixed buffer"));
        }
        let fd = types::Fd(file.as_raw_fd());
        let ptr = (self.addr + at) as *mut u8;
        let sqe = if write {
            opcode::WriteFixed::new(fd, ptr, len, 0).offset(off).build()
        } else {
            opcode::ReadFixed::new(fd, ptr, len, 0).offset(off).build()
        };
        // SAFETY: The entry names the registered buffer 0 inside its range (checked above),
        // which the ring's pins keep valid, and a file that outlives the wait below.
        unsafe { self.ring.submission().push(&sqe) }.map_err(|_| "submission queue full")?;
        self.ring
            .submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter: {e}"))?;
        let cqe = self.ring.completion().next().ok_or("no completion")?;
        let res = cqe.result();
        if res < 0 {
            return Err(format!(
                "{}_FIXED: {}",
                if write { "WRITE" } else { "READ" },
                std::io::Error::from_raw_os_error(-res)
            ));
        }
        Ok(res as usize)
    }

    /// Unregisters the buffer: its pages are unpinned.
    pub fn unregister(self) -> Result<(), String> {
        self.ring
            .submitter()
            .unregister_buffers()
            .map_err(|e| format!("IORING_UNREGISTER_BUFFERS: {e}"))
    }
}
