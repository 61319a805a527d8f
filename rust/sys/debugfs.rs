// SPDX-License-Identifier: GPL-2.0

//! Debugfs files that stream a table: `seq_file` iteration in batches of rows.
//!
//! The kernel crate's debugfs files print through `single_open`, which formats the whole file
//! into one buffer, and formats it all again each time that buffer must double: a table of a
//! million rows would be formatted some fifteen times into a buffer of tens of MiB, under the
//! table's lock each time. These files instead copy [`BATCH`] rows at a time out of the table
//! (the table's lock held only for the copy) and let `seq_file` hand them to `read` a page at a
//! time. A row is found again by its key, so a read that resumes after the table changed goes
//! on from the next key: a row is shown once, and rows added or removed meanwhile may or may
//! not appear, as in `/proc`.

use core::{
    fmt,
    marker::PhantomData,
    ptr, //
};

use kernel::{
    bindings,
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    types::Opaque, //
};

/// Rows copied out of a table at a time.
pub(crate) const BATCH: usize = 32;

/// A table shown as a header line and one line per row, in key order.
pub(crate) trait Table: 'static {
    /// A row, copied out of the table (zeroed memory is a valid row).
    type Row: Copy + Zeroable;
    /// The first line, without its newline.
    const HEADER: &'static str;
    /// Copies the rows whose keys are `from` or more, in key order, into `rows`, as many as it
    /// holds; returns how many it copied.
    fn fill(from: u64, rows: &mut [Self::Row]) -> usize;
    /// The row's key: unique, and 1 or more (position 0 is the header).
    fn key(row: &Self::Row) -> u64;
    /// Writes the row's line, without its newline.
    fn write(row: &Self::Row, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// `SEQ_START_TOKEN` (`(void *)1`): the header's place in the iteration, never dereferenced.
const HEADER_TOKEN: *mut c_void = ptr::without_provenance_mut(1);

/// The state of one open file: the batch being shown. `seq_open_private` allocates it zeroed
/// (an empty batch) and `seq_release_private` frees it.
#[repr(C)]
struct Batch<R> {
    len: usize,
    at: usize,
    rows: [R; BATCH],
}

/// The batch of an open file.
///
/// # Safety
///
/// `m` must be a `seq_file` opened by [`open`] for table `T`, used by one thread at a time (the
/// `seq_file` lock serialises its callbacks).
unsafe fn batch<'a, T: Table>(m: *mut bindings::seq_file) -> &'a mut Batch<T::Row> {
    // SAFETY: By the safety requirements the private data is the `Batch<T::Row>` that `open`
    // had `seq_open_private` allocate, not used elsewhere during the callback.
    unsafe { &mut *(*m).private.cast::<Batch<T::Row>>() }
}

/// Copies the rows from key `from` into the batch; returns the first, or null at the end.
///
/// A reschedule point comes first: a read of a long table, or a seek into it (which makes
/// `seq_file` step through every row before), copies batch after batch. Only the `seq_file`'s
/// own mutex is held here.
fn refill<T: Table>(b: &mut Batch<T::Row>, from: u64) -> *mut c_void {
    super::cond_resched();
    b.len = T::fill(from, &mut b.rows);
    b.at = 0;
    if b.len == 0 {
        ptr::null_mut()
    } else {
        ptr::from_mut(&mut b.rows[0]).cast()
    }
}

/// `seq_operations.start`: the header at position 0, else the row at key `*pos` or the next.
///
/// # Safety
///
/// Called by `seq_file` for a file opened by [`open`] for `T`.
unsafe extern "C" fn start<T: Table>(
    m: *mut bindings::seq_file,
    pos: *mut bindings::loff_t,
) -> *mut c_void {
    // SAFETY: `seq_file` passes its own position, valid for the call.
    let from = unsafe { *pos };
    if from == 0 {
        return HEADER_TOKEN;
    }
    // SAFETY: By the safety requirements `m` is one of our files.
    refill::<T>(unsafe { batch::<T>(m) }, from as u64)
}

/// `seq_operations.next`: the row after `v`; `*pos` becomes its key, or one past the last key
/// at the end (a position must always move).
///
/// # Safety
///
/// Called by `seq_file` for a file opened by [`open`] for `T`, with `v` from `start` or `next`.
unsafe extern "C" fn next<T: Table>(
    m: *mut bindings::seq_file,
    v: *mut c_void,
    pos: *mut bindings::loff_t,
) -> *mut c_void {
    // SAFETY: By the safety requirements `m` is one of our files.
    let b = unsafe { batch::<T>(m) };
    let p = if v == HEADER_TOKEN {
        refill::<T>(b, 1)
    } else {
        let after = T::key(&b.rows[b.at]) + 1;
        b.at += 1;
        if b.at < b.len {
            ptr::from_mut(&mut b.rows[b.at]).cast()
        } else {
            let p = refill::<T>(b, after);
            if p.is_null() {
                // SAFETY: `seq_file` passes its own position, valid for the call.
                unsafe { *pos = after as bindings::loff_t };
                return p;
            }
            p
        }
    };
    let key = if p.is_null() {
        1
    } else {
        T::key(&b.rows[b.at])
    };
    // SAFETY: As above.
    unsafe { *pos = key as bindings::loff_t };
    p
}

/// `seq_operations.stop`: nothing is held between calls.
///
/// # Safety
///
/// Called by `seq_file`; it touches nothing.
unsafe extern "C" fn stop<T: Table>(_m: *mut bindings::seq_file, _v: *mut c_void) {}

/// One row as a line.
struct Line<'a, T: Table>(&'a T::Row);

impl<T: Table> kernel::fmt::Display for Line<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        T::write(self.0, f)
    }
}

/// `seq_operations.show`: the header or the current row.
///
/// # Safety
///
/// Called by `seq_file` for a file opened by [`open`] for `T`, with `v` from `start` or `next`.
unsafe extern "C" fn show<T: Table>(m: *mut bindings::seq_file, v: *mut c_void) -> c_int {
    // SAFETY: `m` is a live `seq_file`, used by this thread for the call.
    let seq = unsafe { SeqFile::from_raw(m) };
    if v == HEADER_TOKEN {
        seq_print!(seq, "{}\n", T::HEADER);
    } else {
        // SAFETY: By the safety requirements `m` is one of our files, and `v` its current row.
        let b = unsafe { batch::<T>(m) };
        seq_print!(seq, "{}\n", Line::<T>(&b.rows[b.at]));
    }
    0
}

/// The iteration of table `T` (a constant promoted to a static where it is referenced).
struct Ops<T>(PhantomData<T>);

impl<T: Table> Ops<T> {
    const SEQ: bindings::seq_operations = bindings::seq_operations {
        start: Some(start::<T>),
        next: Some(next::<T>),
        stop: Some(stop::<T>),
        show: Some(show::<T>),
    };
}

/// `file_operations.open`: a `seq_file` with an empty batch.
///
/// # Safety
///
/// Called by the VFS (through debugfs) for a file created by [`File::new`] for `T`.
unsafe extern "C" fn open<T: Table>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // The operations are a static that lives as long as the module, which the open file holds.
    // SAFETY: `file` is being opened; the operations live long enough (above); the size is that
    // of the batch the callbacks cast the private data to.
    unsafe {
        bindings::seq_open_private(
            file,
            &Ops::<T>::SEQ,
            core::mem::size_of::<Batch<T::Row>>() as c_int,
        )
    }
}

/// A debugfs directory, removed with everything in it when dropped. Without `CONFIG_DEBUG_FS`
/// (where the debugfs calls are static inlines that do nothing) there is none.
///
/// # Invariants
///
/// `dentry` is what `debugfs_create_dir` returned: a directory, or an error pointer when
/// debugfs is not there (which every debugfs call accepts and ignores); null without
/// `CONFIG_DEBUG_FS`.
pub(crate) struct Dir {
    dentry: *mut bindings::dentry,
}

// SAFETY: The directory is only handed to debugfs calls, which may be made from any thread.
unsafe impl Send for Dir {}
// SAFETY: `&Dir` gives access to nothing but the pointer, passed to debugfs calls.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates `/sys/kernel/debug/<name>`.
    pub(crate) fn new(name: &CStr) -> Self {
        #[cfg(CONFIG_DEBUG_FS)]
        // SAFETY: `name` is a NUL-terminated string; a null parent is the debugfs root.
        let dentry = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), ptr::null_mut()) };
        #[cfg(not(CONFIG_DEBUG_FS))]
        let dentry = {
            let _ = name;
            ptr::null_mut()
        };
        // INVARIANT: `dentry` is what `debugfs_create_dir` returned.
        Self { dentry }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        #[cfg(CONFIG_DEBUG_FS)]
        // SAFETY: By the type invariant `dentry` came from `debugfs_create_dir`. Removal waits
        // for reads in progress; no file can be open (each holds the module).
        unsafe {
            bindings::debugfs_remove(self.dentry)
        };
    }
}

/// The file operations of a streamed table in a [`Dir`]. It must outlive the file, which the
/// directory removes: declare it after the directory in the owning structure.
#[pin_data]
pub(crate) struct File<T: Table> {
    #[pin]
    fops: Opaque<bindings::file_operations>,
    _t: PhantomData<T>,
}

// SAFETY: The operations are only read by the VFS, from any thread.
unsafe impl<T: Table> Send for File<T> {}
// SAFETY: As above.
unsafe impl<T: Table> Sync for File<T> {}

impl<T: Table> File<T> {
    /// Creates `name` in `dir`, readable by root only, with `module` as the owner of its open
    /// files: an open file holds the module, so `rmmod` cannot free the operations under it.
    pub(crate) fn new(
        dir: &Dir,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> impl PinInit<Self> {
        let parent = dir.dentry;
        pin_init!(Self {
            fops <- Opaque::ffi_init(move |slot: *mut bindings::file_operations| {
                // `parent` is the directory's dentry (or an error pointer, which debugfs
                // ignores); the name is NUL-terminated; the file has no private data.
                // SAFETY: `slot` is valid for writes while this field is initialised, and
                // pinned for as long as the file exists (the owner removes `dir` first).
                unsafe {
                    slot.write(bindings::file_operations {
                        owner: module.as_ptr(),
                        open: Some(open::<T>),
                        read: Some(bindings::seq_read),
                        llseek: Some(bindings::seq_lseek),
                        release: Some(bindings::seq_release_private),
                        ..pin_init::zeroed()
                    });
                    #[cfg(CONFIG_DEBUG_FS)]
                    bindings::debugfs_create_file_full(
                        name.as_char_ptr(),
                        0o400,
                        parent,
                        ptr::null_mut(),
                        ptr::null(),
                        slot,
                    );
                }
            }),
            _t: PhantomData,
        })
    }
}
