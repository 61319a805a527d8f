// SPDX-License-Identifier: GPL-2.0

//! Errors of the contigmem library: each carries the errno and says what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

/// The result type of this library.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, with the errno behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The device node does not exist: the module is not loaded.
    NotFound { path: PathBuf },
    /// The caller may not open the device.
    PermissionDenied { path: PathBuf },
    /// A system call failed; `op` names it (`ALLOC`, `mmap`, ...).
    Os { op: &'static str, errno: Errno },
    /// The library refused an argument before asking the kernel.
    Invalid { what: String },
    /// The kernel answered something this library does not understand.
    Abi { what: String },
    /// `/proc/self/pagemap` shows no frame numbers: reading them needs `CAP_SYS_ADMIN`.
    PfnHidden,
    /// A page of a mapping is not present in `/proc/self/pagemap`.
    NotPresent { page: usize },
    /// A debugfs file of the module cannot be read; `cause` says why.
    DebugfsUnavailable { path: PathBuf, cause: DebugfsCause },
    /// A debugfs file of the module could not be read or parsed: `line` (1-based, 0 for the
    /// whole file) holds `text`, and `why` says what is wrong with it.
    Debugfs {
        path: PathBuf,
        line: usize,
        text: String,
        why: String,
    },
}

/// Why the module's debugfs files cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugfsCause {
    /// Permission denied: debugfs is readable by root only.
    NotRoot,
    /// debugfs is not mounted at `/sys/kernel/debug`.
    NotMounted,
    /// The module is not loaded.
    ModuleNotLoaded,
    /// debugfs is mounted and the module loaded, but the files are not there: a module without
    /// them?
    NoFiles,
}

impl Error {
    pub(crate) fn open(path: &Path, errno: Errno) -> Self {
        let path = path.to_path_buf();
        match errno {
            Errno::NOENT | Errno::NODEV | Errno::NXIO => Error::NotFound { path },
            Errno::ACCESS | Errno::PERM => Error::PermissionDenied { path },
            errno => Error::Os { op: "open", errno },
        }
    }

    pub(crate) fn os(op: &'static str, errno: Errno) -> Self {
        Error::Os { op, errno }
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Error::Invalid { what: what.into() }
    }

    /// The errno behind this error.
    pub fn errno(&self) -> Errno {
        match self {
            Error::NotFound { .. } => Errno::NOENT,
            Error::PermissionDenied { .. } => Errno::ACCESS,
            Error::Os { errno, .. } => *errno,
            Error::Invalid { .. } => Errno::INVAL,
            Error::Abi { .. } => Errno::PROTO,
            Error::PfnHidden => Errno::PERM,
            Error::NotPresent { .. } => Errno::FAULT,
            Error::DebugfsUnavailable {
                cause: DebugfsCause::NotRoot,
                ..
            } => Errno::ACCESS,
            Error::DebugfsUnavailable { .. } => Errno::NOENT,
            Error::Debugfs { .. } => Errno::PROTO,
        }
    }

    /// What the user can do about this error, when there is something to say.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Os { op, errno } => hint(op, *errno),
            _ => None,
        }
    }
}

/// The symbolic name (`"EINVAL"`) of the errnos the device and its mappings return.
pub fn errno_name(errno: Errno) -> Option<&'static str> {
    Some(match errno {
        Errno::PERM => "EPERM",
        Errno::NOENT => "ENOENT",
        Errno::TOOBIG => "E2BIG",
        Errno::NOMEM => "ENOMEM",
        Errno::ACCESS => "EACCES",
        Errno::FAULT => "EFAULT",
        Errno::BUSY => "EBUSY",
        Errno::INVAL => "EINVAL",
        Errno::NOTTY => "ENOTTY",
        Errno::NOSPC => "ENOSPC",
        Errno::NODEV => "ENODEV",
        Errno::AGAIN => "EAGAIN",
        Errno::EXIST => "EEXIST",
        _ => return None,
    })
}

/// What to do when system call `op` fails with `errno`.
fn hint(op: &str, errno: Errno) -> Option<&'static str> {
    Some(match (op, errno) {
        ("ALLOC", Errno::TOOBIG) => {
            "the size is over this kind's maximum: `contigmem info` lists the limits; \
             use kind huge for large contiguous buffers"
        }
        ("ALLOC", Errno::NOSPC) => {
            "the module's byte cap (global or per open file) is reached: free buffers, or load \
             the module with larger caps (`contigmem info` shows them)"
        }
        ("ALLOC", Errno::NOMEM) => {
            "no memory for it: the allocator found none, or it would leave less than 1/16 of RAM \
             available (MemAvailable less free CMA); try a smaller size; huge needs free \
             contiguous memory (give the machine more RAM or allocate earlier, before memory \
             fragments)"
        }
        ("ALLOC", Errno::PERM) => {
            "uninitialised buffers need CAP_SYS_ADMIN: run as root or drop --uninit"
        }
        ("ALLOC", Errno::INVAL) => {
            "the kernel rejected the request: check the kind, the node (an online NUMA node) \
             and the alignment (a power of two >= the page size, pages and huge only)"
        }
        ("FREE" | "INFO", Errno::NOENT) => {
            "no buffer with this id in this open file (freed already, or allocated through \
             another open file)"
        }
        ("mmap", Errno::INVAL) => {
            "the window is not inside a live buffer of this file, or the mapping is not \
             MAP_SHARED"
        }
        ("mmap", Errno::PERM) => "executable mappings of contigmem buffers are refused",
        ("mremap", Errno::FAULT) => "contigmem mappings cannot grow: map a new window instead",
        (_, Errno::NOTTY) => {
            "the device does not know this ioctl: are the module and this tool from the same \
             version? (`contigmem info`)"
        }
        _ => return None,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { path } => write!(
                f,
                "{} not found: is the module loaded? (`insmod contigmem.ko`, or try `make run`)",
                path.display()
            ),
            Error::PermissionDenied { path } => write!(
                f,
                "{}: permission denied: run as root or ask for access to the device",
                path.display()
            ),
            Error::Os { op, errno } => {
                write!(f, "{op}: ")?;
                if let Some(name) = errno_name(*errno) {
                    write!(f, "{name}: ")?;
                }
                write!(f, "{errno}")?;
                if let Some(hint) = hint(op, *errno) {
                    write!(f, ": {hint}")?;
                }
                Ok(())
            }
            Error::Invalid { what } => write!(f, "invalid argument: {what}"),
            Error::Abi { what } => write!(
                f,
                "unexpected answer from the kernel: {what}: are the module and this tool from \
                 the same version?"
            ),
            Error::PfnHidden => write!(
                f,
                "/proc/self/pagemap hides physical frame numbers: run as root (CAP_SYS_ADMIN)"
            ),
            Error::NotPresent { page } => write!(
                f,
                "page {page} of the mapping is not present in /proc/self/pagemap: touch it first"
            ),
            Error::DebugfsUnavailable { path, cause } => {
                write!(f, "cannot read {}: ", path.display())?;
                match cause {
                    DebugfsCause::NotRoot => write!(
                        f,
                        "permission denied: debugfs is readable by root only: run as root"
                    ),
                    DebugfsCause::NotMounted => write!(
                        f,
                        "debugfs is not mounted (or not visible to this user): as root, \
                         `mount -t debugfs none /sys/kernel/debug`"
                    ),
                    DebugfsCause::ModuleNotLoaded => write!(
                        f,
                        "the module is not loaded (`insmod contigmem.ko`, or try `make run`)"
                    ),
                    DebugfsCause::NoFiles => write!(
                        f,
                        "the module shows no debugfs files: is it an older version than this \
                         tool?"
                    ),
                }
            }
            Error::Debugfs {
                path,
                line,
                text,
                why,
            } => {
                write!(f, "{}", path.display())?;
                if *line > 0 {
                    write!(f, " line {line} {text:?}")?;
                }
                write!(f, ": {why}")?;
                if *line > 0 {
                    write!(f, ": are the module and this tool from the same version?")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_errors_say_what_to_do() {
        let e = Error::os("ALLOC", Errno::TOOBIG);
        let text = e.to_string();
        assert!(text.starts_with("ALLOC: E2BIG: "), "{text}");
        assert!(text.contains("contigmem info"), "{text}");
        assert_eq!(e.errno(), Errno::TOOBIG);
        assert!(Error::os("ALLOC", Errno::NOSPC).hint().is_some());
        assert!(Error::os("ALLOC", Errno::PERM).to_string().contains("root"));
    }

    #[test]
    fn unknown_errors_have_no_hint() {
        let e = Error::os("FREE", Errno::IO);
        assert_eq!(e.hint(), None);
        assert!(e.to_string().starts_with("FREE: "));
    }

    #[test]
    fn open_errors_map_to_variants() {
        let path = Path::new("/dev/contigmem");
        assert!(matches!(
            Error::open(path, Errno::NOENT),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            Error::open(path, Errno::ACCESS),
            Error::PermissionDenied { .. }
        ));
        assert!(Error::open(path, Errno::NOENT)
            .to_string()
            .contains("is the module loaded"));
    }

    #[test]
    fn debugfs_errors_say_what_to_do() {
        let unavailable = |cause| Error::DebugfsUnavailable {
            path: PathBuf::from("/sys/kernel/debug/contigmem/stats"),
            cause,
        };
        let text = unavailable(DebugfsCause::NotMounted).to_string();
        assert!(
            text.contains("mount -t debugfs none /sys/kernel/debug"),
            "{text}"
        );
        assert!(unavailable(DebugfsCause::NotRoot)
            .to_string()
            .contains("run as root"));
        assert_eq!(unavailable(DebugfsCause::NotRoot).errno(), Errno::ACCESS);
        assert!(unavailable(DebugfsCause::ModuleNotLoaded)
            .to_string()
            .contains("module is not loaded"));
        assert_eq!(unavailable(DebugfsCause::NoFiles).errno(), Errno::NOENT);
    }
}
