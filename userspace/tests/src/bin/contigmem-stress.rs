// SPDX-License-Identifier: GPL-2.0

//! `contigmem-stress`: a seedable, randomised stress and fuzz driver for `/dev/contigmem`.
//!
//! Worker threads and forked worker processes each open the device and run random operations
//! on it: ALLOC (valid and invalid requests, through the library and the raw ioctl), FREE and
//! INFO (own, stale and random ids), mmap of random windows, partial munmap, mprotect, mremap,
//! moves, fork, close and reopen, foreign files, bad ioctls, EXPORT of dma-bufs (their mappings,
//! `DMA_BUF_IOCTL_SYNC` and close), SYNC of byte ranges, and pattern writes and checks through
//! the mappings. Each worker keeps a [`Model`] of its buffers, mappings and dma-bufs and checks
//! every result against what the contract (README "ABI" and errno tables) allows.
//!
//! ```text
//! contigmem-stress [--seed N] [--iterations N] [--seconds S] [--threads T] [--procs P]
//!                  [--max-size BYTES]
//! ```
//!
//! Output is TAP: one line per worker and one for the live counters, which must be back to
//! their start values once every worker has ended. A failure prints
//! `# seed S worker W iteration I: <op>: expected ..., saw ...`; `--seed S` with the same
//! options replays the same operations (the kernel's answers, such as ENOMEM, may differ).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use contigmem::{
    abi, pattern, AllocOptions, Cache, Device, DmaBuf, Errno, Kind, MapFlags, Mapping, ProtFlags,
    SyncDir,
};
use contigmem::{parse_size, Version};
use rustix::io::FdFlags;
use rustix::mm::{MprotectFlags, MremapFlags};
use rustix::process::{Pid, WaitOptions, WaitStatus};

const USAGE: &str = "usage: contigmem-stress [--seed N] [--iterations N] [--seconds S] \
                     [--threads T] [--procs P] [--max-size BYTES]";

/// Buffers a worker holds at most; an ALLOC beyond it frees one instead.
const MAX_BUFFERS: usize = 12;
/// Mappings a worker holds at most; an mmap beyond it unmaps one instead.
const MAX_MAPPINGS: usize = 24;
/// Stale ids a worker remembers for FREE, INFO and mmap after free.
const MAX_STALE: usize = 32;
/// Pages one WRITE or CHECK touches at most (TCG is slow).
const MAX_TOUCH: usize = 8;
/// dma-buf descriptors a worker holds at most; an EXPORT beyond it closes one instead.
const MAX_DMABUFS: usize = 8;

/// The access modes of EXPORT's `fd_flags` (`<fcntl.h>`).
const O_RDONLY: u32 = libc::O_RDONLY as u32;
const O_WRONLY: u32 = libc::O_WRONLY as u32;
const O_RDWR: u32 = libc::O_RDWR as u32;

// ---------------------------------------------------------------------------------------------
// Command line and environment
// ---------------------------------------------------------------------------------------------

/// The command line.
#[derive(Clone, Debug)]
struct Config {
    seed: u64,
    iterations: u64,
    seconds: u64,
    threads: u64,
    procs: u64,
    max_size: u64,
}

impl Config {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut cfg = Config {
            seed: time_seed(),
            iterations: 2000,
            seconds: 0,
            threads: 2,
            procs: 2,
            max_size: 8 << 20,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.to_string());
            }
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))
            };
            match flag.as_str() {
                "--seed" => cfg.seed = number()?,
                "--iterations" => cfg.iterations = number()?,
                "--seconds" => cfg.seconds = number()?,
                "--threads" => cfg.threads = number()?,
                "--procs" => cfg.procs = number()?,
                "--max-size" => {
                    cfg.max_size = parse_size(value).map_err(|e| format!("--max-size: {e}"))?
                }
                _ => return Err(format!("unknown option {flag}\n{USAGE}")),
            }
        }
        if cfg.threads + cfg.procs == 0 {
            return Err(format!("no workers: give --threads or --procs\n{USAGE}"));
        }
        if cfg.max_size == 0 {
            return Err("--max-size must be at least one byte".to_string());
        }
        Ok(cfg)
    }
}

fn time_seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs() ^ u64::from(now.subsec_nanos()) ^ u64::from(std::process::id()) << 32
}

/// What every worker needs to know: the options and what the module and system said at start.
struct Env {
    cfg: Config,
    page: usize,
    version: Version,
    /// The online NUMA nodes: ALLOC on another node is EINVAL.
    nodes: Vec<i32>,
    /// Whether we may use UNINIT and see physical addresses (root stands for CAP_SYS_ADMIN).
    privileged: bool,
}

impl Env {
    fn page64(&self) -> u64 {
        self.page as u64
    }

    fn round_up(&self, kind: Kind, size: u64) -> Option<u64> {
        size.checked_next_multiple_of(kind.granule(self.page64()))
    }

    fn pages(&self, size: u64) -> usize {
        (size / self.page64()) as usize
    }
}

/// The online nodes from sysfs (`0-1,3`), or node 0 if sysfs does not say.
fn online_nodes() -> Vec<i32> {
    let Ok(text) = std::fs::read_to_string("/sys/devices/system/node/online") else {
        return vec![0];
    };
    let mut nodes = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.parse::<i32>(), hi.parse::<i32>()) {
            nodes.extend(lo..=hi);
        }
    }
    if nodes.is_empty() {
        nodes.push(0);
    }
    nodes
}

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

/// splitmix64: small, fast and good enough to pick operations reproducibly.
struct Rng(u64);

impl Rng {
    fn for_worker(seed: u64, worker: u64) -> Self {
        let mut rng = Rng(seed ^ (worker + 1).wrapping_mul(0xd1b5_4a32_d192_ed03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// A number in `lo..hi` (`lo` if the range is empty).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Expected outcomes
// ---------------------------------------------------------------------------------------------

/// A result the contract does not allow.
#[derive(Debug)]
struct Failure {
    op: String,
    expected: String,
    saw: String,
}

impl Failure {
    fn new(op: &str, expected: impl Into<String>, saw: impl Into<String>) -> Self {
        Failure {
            op: op.to_string(),
            expected: expected.into(),
            saw: saw.into(),
        }
    }
}

/// The name of an errno, as the README's tables write it.
fn errno_name(errno: Errno) -> String {
    contigmem::errno_name(errno)
        .map(str::to_string)
        .unwrap_or_else(|| format!("errno {}", errno.raw_os_error()))
}

/// The outcomes the contract allows one call: success or not, and which errnos.
struct Allowed {
    ok: bool,
    errnos: Vec<Errno>,
}

impl Allowed {
    /// The call must succeed, or fail with one of `errnos` (resource limits).
    fn success(errnos: &[Errno]) -> Self {
        Allowed {
            ok: true,
            errnos: errnos.to_vec(),
        }
    }

    /// The call must fail with one of `errnos`.
    fn failure(errnos: &[Errno]) -> Self {
        Allowed {
            ok: false,
            errnos: errnos.to_vec(),
        }
    }

    /// `failure(errnos)` if any, else `success(otherwise)`.
    fn unless(errnos: Vec<Errno>, otherwise: &[Errno]) -> Self {
        if errnos.is_empty() {
            Allowed::success(otherwise)
        } else {
            Allowed::failure(&errnos)
        }
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.errnos.iter().map(|&e| errno_name(e)).collect();
        match (self.ok, names.is_empty()) {
            (true, true) => "success".to_string(),
            (true, false) => format!("success or {}", names.join("/")),
            (false, _) => names.join("/"),
        }
    }

    /// Checks `res`: the value on an allowed success, `None` on an allowed failure.
    fn judge<T>(&self, op: &str, res: Result<T, Errno>) -> Result<Option<T>, Failure> {
        match res {
            Ok(v) if self.ok => {
                CALLS.with(|c| c.set((c.get().0 + 1, c.get().1)));
                Ok(Some(v))
            }
            Ok(_) => Err(Failure::new(op, self.describe(), "success")),
            Err(e) if self.errnos.contains(&e) => {
                CALLS.with(|c| c.set((c.get().0, c.get().1 + 1)));
                Ok(None)
            }
            Err(e) => Err(Failure::new(op, self.describe(), errno_name(e))),
        }
    }
}

thread_local! {
    /// Calls judged on this thread so far: (succeeded, failed as expected).
    static CALLS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Per operation: how often it ran, and how many of its calls succeeded or failed as the
/// contract wants (so a run shows what it exercised).
#[derive(Clone, Default)]
struct Stats {
    ran: [u64; Op::WEIGHTS.len()],
    ok: [u64; Op::WEIGHTS.len()],
    refused: [u64; Op::WEIGHTS.len()],
}

impl Stats {
    /// Runs `f` as one `op` and counts it.
    fn count<R>(&mut self, op: Op, f: impl FnOnce() -> R) -> R {
        let before = CALLS.with(Cell::get);
        let r = f();
        let after = CALLS.with(Cell::get);
        let i = op as usize;
        self.ran[i] += 1;
        self.ok[i] += after.0 - before.0;
        self.refused[i] += after.1 - before.1;
        r
    }

    fn add(&mut self, other: &Stats) {
        for i in 0..self.ran.len() {
            self.ran[i] += other.ran[i];
            self.ok[i] += other.ok[i];
            self.refused[i] += other.refused[i];
        }
    }

    /// One line of numbers, for a forked worker's report.
    fn encode(&self) -> String {
        let all: Vec<String> = [self.ran, self.ok, self.refused]
            .iter()
            .flatten()
            .map(u64::to_string)
            .collect();
        all.join(" ")
    }

    fn decode(line: &str) -> Option<Stats> {
        let n: Vec<u64> = line
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let k = Op::WEIGHTS.len();
        if n.len() != 3 * k {
            return None;
        }
        let mut s = Stats::default();
        s.ran.copy_from_slice(&n[..k]);
        s.ok.copy_from_slice(&n[k..2 * k]);
        s.refused.copy_from_slice(&n[2 * k..]);
        Some(s)
    }
}

impl fmt::Display for Stats {
    /// `Alloc 1200 (ok 600, refused 500), ...`: runs, then calls that succeeded and calls that
    /// failed as the contract requires.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Op::WEIGHTS
            .iter()
            .map(|&(op, _)| {
                let i = op as usize;
                format!(
                    "{op:?} {} (ok {}, refused {})",
                    self.ran[i], self.ok[i], self.refused[i]
                )
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// The errnos an ALLOC request must fail with; empty if it is valid.
fn alloc_errors(env: &Env, a: &abi::Alloc) -> Vec<Errno> {
    let mut errs = Vec::new();
    let kind = Kind::from_raw(a.kind).filter(|&k| env.version.supports(k));
    let bad_node = a.node != -1 && !env.nodes.contains(&a.node);
    let cache = Cache::from_raw(a.cache);
    if cache.is_none()
        || (cache != Some(Cache::Wb) && !matches!(kind, Some(Kind::Pages | Kind::Huge)))
        || a.reserved1 != 0
        || (a.phys_limit != 0
            && (a.phys_limit < env.page64()
                || !matches!(kind, Some(Kind::Vmalloc | Kind::Pages | Kind::Huge))))
        || a.flags & !abi::ALLOC_FLAGS != 0
        || kind.is_none()
        || a.size == 0
        || bad_node
    {
        errs.push(Errno::INVAL);
    }
    if let Some(kind) = kind {
        let max = env.version.max_size(kind).unwrap_or(0);
        let takes_align = matches!(kind, Kind::Pages | Kind::Huge);
        let align_ok = a.align == 0
            || (a.align.is_power_of_two()
                && a.align >= env.page64()
                && takes_align
                && a.align <= max);
        if !align_ok {
            errs.push(Errno::INVAL);
        }
        if env.round_up(kind, a.size).map_or(true, |size| size > max) {
            errs.push(Errno::TOOBIG);
        }
        if a.flags & abi::ALLOC_HUGE_MAP != 0 && !takes_align {
            errs.push(Errno::INVAL);
        }
    }
    if a.flags & abi::ALLOC_STRICT_NODE != 0 && a.node == -1 {
        errs.push(Errno::INVAL);
    }
    if a.flags & abi::ALLOC_UNINIT != 0 && !env.privileged {
        errs.push(Errno::PERM);
    }
    if cache.is_some_and(|c| c != Cache::Wb) && !env.privileged {
        errs.push(Errno::PERM);
    }
    if errs.is_empty() && cache.is_some_and(|c| !env.version.cache_modes.contains(&c)) {
        errs.push(Errno::OPNOTSUPP);
    }
    errs.dedup();
    errs
}

fn describe_alloc(how: &str, a: &abi::Alloc) -> String {
    format!(
        "{how} kind={} size={:#x} flags={:#x} node={} align={:#x} cache={:#x} \
         phys_limit={:#x} reserved1={:#x}",
        a.kind, a.size, a.flags, a.node, a.align, a.cache, a.phys_limit, a.reserved1
    )
}

// ---------------------------------------------------------------------------------------------
// The model: buffers, mappings and what their pages hold
// ---------------------------------------------------------------------------------------------

/// What a page of a buffer holds, as far as the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageState {
    Zero,
    Pattern(u64),
    Unknown,
}

/// The pages of one buffer, shared by the buffer and every mapping of it (which outlive FREE).
type Contents = Rc<RefCell<Vec<PageState>>>;

/// How a page of a mapping is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prot {
    None,
    Read,
    ReadWrite,
}

impl Prot {
    fn readable(self) -> bool {
        self != Prot::None
    }

    fn writable(self) -> bool {
        self == Prot::ReadWrite
    }
}

/// One VMA of a mapping: pages `start..end` of the mapping with one protection. contigmem
/// VMAs never merge (`VM_DONTEXPAND` is `VM_SPECIAL`), so the model can count them.
#[derive(Clone, Copy, Debug)]
struct Vma {
    start: usize,
    end: usize,
    prot: Prot,
}

/// The VMAs after `mprotect(prot)` of pages `a..b`: VMAs that change are split at the edges.
fn protect_vmas(vmas: &[Vma], a: usize, b: usize, prot: Prot) -> Vec<Vma> {
    let mut out = Vec::new();
    for v in vmas {
        if v.end <= a || v.start >= b || v.prot == prot {
            out.push(*v);
            continue;
        }
        let (s, e) = (v.start.max(a), v.end.min(b));
        if v.start < s {
            out.push(Vma { end: s, ..*v });
        }
        out.push(Vma {
            start: s,
            end: e,
            prot,
        });
        if e < v.end {
            out.push(Vma { start: e, ..*v });
        }
    }
    out
}

/// The VMAs covering pages `a..b`, renumbered from `a`.
fn slice_vmas(vmas: &[Vma], a: usize, b: usize) -> Vec<Vma> {
    vmas.iter()
        .filter(|v| v.end > a && v.start < b)
        .map(|v| Vma {
            start: v.start.max(a) - a,
            end: v.end.min(b) - a,
            prot: v.prot,
        })
        .collect()
}

/// Why a page does not hold what the model says.
enum Wrong {
    NonZero(usize),
    Pattern(pattern::Mismatch),
}

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wrong::NonZero(offset) => write!(f, "a non-zero byte at {offset:#x}"),
            Wrong::Pattern(m) => write!(f, "{m}"),
        }
    }
}

/// Checks `bytes` against `state`; allocates nothing (a forked child calls it).
fn check_state(bytes: &[u8], state: PageState) -> Result<(), Wrong> {
    match state {
        PageState::Zero => pattern::find_nonzero(bytes).map_or(Ok(()), |o| Err(Wrong::NonZero(o))),
        PageState::Pattern(seed) => pattern::check(bytes, seed).map_err(Wrong::Pattern),
        PageState::Unknown => Ok(()),
    }
}

fn describe_state(state: PageState) -> String {
    match state {
        PageState::Zero => "zeroes".to_string(),
        PageState::Pattern(seed) => format!("pattern {seed:#x}"),
        PageState::Unknown => "anything".to_string(),
    }
}

/// A buffer this worker's file holds.
struct BufModel {
    id: u64,
    kind: Kind,
    size: u64,
    offset: u64,
    uninit: bool,
    cache: Cache,
    contents: Contents,
}

/// A buffer that is gone from this worker's file (freed, or its file closed).
#[derive(Clone, Copy)]
struct Stale {
    id: u64,
    offset: u64,
    pages: usize,
}

/// A mapping of a window of a buffer, through `/dev/contigmem` or one of its dma-bufs.
struct MapModel {
    map: Mapping,
    id: u64,
    /// The buffer page at the mapping's first byte.
    first_page: usize,
    /// The length asked of mmap (the kernel maps whole pages).
    len: usize,
    page: usize,
    vmas: Vec<Vma>,
    contents: Contents,
    /// The serial of the dma-buf it maps ([`DmaBufModel::serial`]), `None` for a mapping of
    /// `/dev/contigmem`. Its VMAs hold the dma-buf's file, so the dma-buf lives while they do.
    dmabuf: Option<u64>,
}

/// A dma-buf this worker exported and holds the descriptor of. It holds its buffer's memory,
/// as a mapping does, past FREE and the close of the file the buffer came from.
struct DmaBufModel {
    buf: DmaBuf,
    /// Its number among this worker's exports, which its mappings carry.
    serial: u64,
    /// The buffer it was exported from.
    id: u64,
    /// Its file's access mode: `O_RDONLY`, `O_WRONLY` or `O_RDWR`.
    access: u32,
    contents: Contents,
}

impl MapModel {
    fn pages(&self) -> usize {
        self.len.div_ceil(self.page)
    }

    fn prot(&self, p: usize) -> Prot {
        self.vmas
            .iter()
            .find(|v| v.start <= p && p < v.end)
            .map_or(Prot::None, |v| v.prot)
    }

    fn page_addr(&self, p: usize) -> usize {
        self.map.addr() + p * self.page
    }

    /// Page `p` of the mapping, which the model says is readable.
    fn page_bytes(&self, p: usize) -> &[u8] {
        assert!(p < self.pages() && self.prot(p).readable());
        // SAFETY: page `p` lies inside the mapping (mmap maps whole pages, so the last page is
        // all there even when `len` is not a multiple), which lives as long as `self`. The model
        // sees every mprotect of it and says the page is readable. The bytes are plain u8s.
        unsafe { std::slice::from_raw_parts(self.page_addr(p) as *const u8, self.page) }
    }

    /// Page `p` of the mapping, which the model says is writable.
    fn page_bytes_mut(&mut self, p: usize) -> &mut [u8] {
        assert!(p < self.pages() && self.prot(p).writable());
        // SAFETY: as in `page_bytes`, and the page is writable. `&mut self` makes this the only
        // reference into the mapping; other mappings of the buffer are shared memory the kernel
        // keeps coherent, as the library documents.
        unsafe { std::slice::from_raw_parts_mut(self.page_addr(p) as *mut u8, self.page) }
    }

    /// Checks page `p` against the model.
    fn check_page(&self, p: usize, op: &str) -> Result<(), Failure> {
        let state = self.contents.borrow()[self.first_page + p];
        check_state(self.page_bytes(p), state).map_err(|wrong| {
            Failure::new(
                &format!(
                    "{op}: buffer {} page {} (mapping page {p})",
                    self.id,
                    self.first_page + p
                ),
                describe_state(state),
                wrong.to_string(),
            )
        })
    }

    /// Writes a fresh pattern into page `p` and records it.
    fn write_page(&mut self, p: usize, seed: u64) {
        pattern::fill(self.page_bytes_mut(p), seed);
        self.contents.borrow_mut()[self.first_page + p] = PageState::Pattern(seed);
    }

    /// A random page with protection `want` (readable or writable), if there is one.
    fn random_page(&self, rng: &mut Rng, writable: bool) -> Option<(usize, usize)> {
        let ok = |v: &&Vma| {
            if writable {
                v.prot.writable()
            } else {
                v.prot.readable()
            }
        };
        let vmas: Vec<&Vma> = self.vmas.iter().filter(ok).collect();
        if vmas.is_empty() {
            return None;
        }
        let v = vmas[rng.index(vmas.len())];
        Some((v.start + rng.index(v.end - v.start), v.end))
    }
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// The operations a worker picks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Alloc,
    AllocRaw,
    Free,
    Info,
    Map,
    Unmap,
    Protect,
    Remap,
    Move,
    Fork,
    Reopen,
    Foreign,
    BadIoctl,
    Version,
    Write,
    Check,
    Export,
    DmaBufCheck,
    DmaBufSync,
    Sync,
    DmaBufClose,
}

impl Op {
    /// Each operation and its weight.
    const WEIGHTS: [(Op, u64); 21] = [
        (Op::Alloc, 12),
        (Op::AllocRaw, 6),
        (Op::Free, 8),
        (Op::Info, 6),
        (Op::Map, 12),
        (Op::Unmap, 6),
        (Op::Protect, 6),
        (Op::Remap, 4),
        (Op::Move, 3),
        (Op::Fork, 2),
        (Op::Reopen, 1),
        (Op::Foreign, 2),
        (Op::BadIoctl, 3),
        (Op::Version, 2),
        (Op::Write, 12),
        (Op::Check, 12),
        (Op::Export, 3),
        (Op::DmaBufCheck, 4),
        (Op::DmaBufSync, 2),
        (Op::Sync, 3),
        (Op::DmaBufClose, 1),
    ];

    fn pick(rng: &mut Rng) -> Op {
        let total: u64 = Op::WEIGHTS.iter().map(|&(_, w)| w).sum();
        let mut n = rng.below(total);
        for (op, w) in Op::WEIGHTS {
            if n < w {
                return op;
            }
            n -= w;
        }
        Op::Version
    }
}

/// A buffer id to aim FREE or INFO at.
enum Target {
    Live(usize),
    Stale(Stale),
    Random(u64),
}

/// One worker's device file, buffers and mappings, and what it expects of them.
struct Model<'e> {
    env: &'e Env,
    dev: Device,
    bufs: Vec<BufModel>,
    stale: Vec<Stale>,
    maps: Vec<MapModel>,
    dmabufs: Vec<DmaBufModel>,
    /// The serial of the next dma-buf exported.
    next_serial: u64,
    /// The highest id this worker has seen: ids are global and increasing.
    highest_id: u64,
    /// Whether this worker is alone in its process, so that INFO's mapping and dma-buf counts
    /// are exact (no other thread's forked child holds copies of our VMAs and descriptors) and
    /// a mapping may be moved away and back without racing other threads' mmaps.
    alone: bool,
}

/// What a successful ALLOC returned.
struct Allocated {
    id: u64,
    size: u64,
    offset: u64,
    phys: u64,
}

impl<'e> Model<'e> {
    fn open(env: &'e Env, alone: bool) -> Result<Self, Failure> {
        let dev = Device::open()
            .map_err(|e| Failure::new("open /dev/contigmem", "success", e.to_string()))?;
        Ok(Model {
            env,
            dev,
            bufs: Vec::new(),
            stale: Vec::new(),
            maps: Vec::new(),
            dmabufs: Vec::new(),
            next_serial: 0,
            highest_id: 0,
            alone,
        })
    }

    fn step(&mut self, op: Op, rng: &mut Rng) -> Result<(), Failure> {
        match op {
            Op::Alloc => self.alloc(rng),
            Op::AllocRaw => self.alloc_raw(rng),
            Op::Free => self.free(rng),
            Op::Info => self.info(rng),
            Op::Map => self.map(rng),
            Op::Unmap => self.unmap(rng),
            Op::Protect => self.protect(rng),
            Op::Remap => self.remap(rng),
            Op::Move if self.alone => self.move_and_back(rng),
            Op::Move => self.check(rng),
            Op::Fork => self.fork(rng),
            Op::Reopen => self.reopen(),
            Op::Foreign => self.foreign(rng),
            Op::BadIoctl => self.bad_ioctl(rng),
            Op::Version => self.version(),
            Op::Write => self.write(rng),
            Op::Check => self.check(rng),
            Op::Export => self.export(rng),
            Op::DmaBufCheck => self.dmabuf_check(rng),
            Op::DmaBufSync => self.dmabuf_sync(rng),
            Op::Sync => self.sync(rng),
            Op::DmaBufClose => self.dmabuf_close(rng),
        }
    }

    // --- requests ------------------------------------------------------------------------

    /// A size for `kind`: mostly small, sometimes up to `--max-size`, sometimes invalid.
    fn random_size(&self, rng: &mut Rng, kind_max: u64) -> u64 {
        let page = self.env.page64();
        let max = self.env.cfg.max_size;
        match rng.below(20) {
            0 => 0,
            1 => u64::MAX,
            2 => u64::MAX - rng.below(page),
            3 => kind_max.saturating_add(1 + rng.below(page)),
            4..=6 => rng.range(1, page),
            7..=12 => rng.range(1, 16 * page),
            13..=15 => rng.range(1, max / page + 1) * page,
            _ => rng.range(1, max + 1),
        }
    }

    /// An alignment: mostly 0, sometimes a valid power of two, sometimes nonsense.
    fn random_align(&self, rng: &mut Rng) -> u64 {
        let page = self.env.page64();
        match rng.below(10) {
            0..=5 => 0,
            6 | 7 => page << rng.below(10),
            8 => [3, page / 2, page + 1, 1 << 40, u64::MAX][rng.index(5)],
            _ => self.env.cfg.max_size.next_power_of_two() << 1,
        }
    }

    /// Checks a successful ALLOC and adds the buffer to the model.
    fn adopt(
        &mut self,
        op: &str,
        kind: Kind,
        a: &abi::Alloc,
        got: Allocated,
    ) -> Result<(), Failure> {
        let want = self.env.round_up(kind, a.size).unwrap_or(0);
        if got.size != want {
            return Err(Failure::new(
                op,
                format!("reserved_size {want:#x}"),
                format!("{:#x}", got.size),
            ));
        }
        if got.id <= self.highest_id {
            return Err(Failure::new(
                op,
                format!("a fresh id above {}", self.highest_id),
                format!("id {}", got.id),
            ));
        }
        if !self.env.privileged && got.phys != 0 {
            return Err(Failure::new(
                op,
                "phys_addr 0 without CAP_SYS_ADMIN",
                format!("{:#x}", got.phys),
            ));
        }
        if a.flags & abi::ALLOC_STRICT_NODE != 0 {
            // A strict buffer is wholly on its node, or the ALLOC must have failed.
            let info = self
                .dev
                .info(got.id)
                .map_err(|e| Failure::new(op, "INFO of the new buffer", e.to_string()))?;
            if info.node != a.node || info.off_node_pages != 0 || !info.strict_node {
                return Err(Failure::new(
                    op,
                    format!("INFO: strict, node {}, no page elsewhere", a.node),
                    format!(
                        "strict {}, node {}, {} pages elsewhere",
                        info.strict_node, info.node, info.off_node_pages
                    ),
                ));
            }
        }
        self.highest_id = got.id;
        let uninit = a.flags & abi::ALLOC_UNINIT != 0;
        let state = if uninit {
            PageState::Unknown
        } else {
            PageState::Zero
        };
        self.bufs.push(BufModel {
            id: got.id,
            kind,
            size: got.size,
            offset: got.offset,
            uninit,
            cache: Cache::from_raw(a.cache).expect("ALLOC succeeded, so the cache mode is valid"),
            contents: Rc::new(RefCell::new(vec![state; self.env.pages(got.size)])),
        });
        Ok(())
    }

    // --- ALLOC ---------------------------------------------------------------------------

    /// ALLOC through the library: a real kind, random size, UNINIT, node and alignment.
    fn alloc(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.bufs.len() >= MAX_BUFFERS {
            return self.free(rng);
        }
        let kind = Kind::ALL[rng.index(Kind::ALL.len())];
        let kind_max = self.env.version.max_size(kind).unwrap_or(0);
        let size = self.random_size(rng, kind_max);
        let uninit = rng.one_in(6);
        // Any online node about half the time (the local one otherwise), now and then an
        // offline one; strict now and then, also with no node (EINVAL).
        let node = match rng.below(10) {
            0..=3 => Some(self.env.nodes[rng.index(self.env.nodes.len())] as u32),
            4 => Some(rng.range(1, 8) as u32),
            _ => None,
        };
        let strict_node = rng.one_in(4);
        let align = self.random_align(rng);
        // Write-back mostly; write-combining or uncached now and then (EINVAL for the kinds
        // other than pages and huge).
        let cache = match rng.index(8) {
            0 => Cache::Wc,
            1 => Cache::Uc,
            _ => Cache::Wb,
        };
        let req = abi::Alloc {
            size,
            kind: kind.raw(),
            flags: if uninit { abi::ALLOC_UNINIT } else { 0 }
                | if strict_node {
                    abi::ALLOC_STRICT_NODE
                } else {
                    0
                },
            node: node.map_or(-1, |n| n as i32),
            align,
            cache: cache.raw(),
            ..Default::default()
        };
        let op = describe_alloc("ALLOC", &req);
        let allowed = Allowed::unless(alloc_errors(self.env, &req), &[Errno::NOSPC, Errno::NOMEM]);
        let options = AllocOptions::new()
            .uninit(uninit)
            .node(node)
            .strict_node(strict_node)
            .align(align)
            .cache(cache);
        let res = self
            .dev
            .alloc_with(kind, size, &options)
            .map(|b| {
                let got = Allocated {
                    id: b.id(),
                    size: b.size(),
                    offset: b.mmap_offset(),
                    phys: b.phys_addr(),
                };
                b.leak();
                got
            })
            .map_err(|e| e.errno());
        match allowed.judge(&op, res)? {
            Some(got) => self.adopt(&op, kind, &req, got),
            None => Ok(()),
        }
    }

    /// ALLOC through the raw ioctl: any kind (5..10 invalid), unknown flags, any node,
    /// non-zero reserved fields, garbage in the output fields.
    fn alloc_raw(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.bufs.len() >= MAX_BUFFERS {
            return self.free(rng);
        }
        let kind = rng.below(11) as u32;
        let kind_max = Kind::from_raw(kind)
            .and_then(|k| self.env.version.max_size(k))
            .unwrap_or(self.env.cfg.max_size);
        let mut a = abi::Alloc {
            size: self.random_size(rng, kind_max),
            kind,
            flags: match rng.below(8) {
                0 => abi::ALLOC_UNINIT,
                1 => 1 << rng.range(1, 32),
                3 => abi::ALLOC_STRICT_NODE,
                2 => rng.next() as u32,
                _ => 0,
            },
            node: match rng.below(10) {
                0 => 0,
                1 => rng.range(1, 8) as i32,
                2 => [i32::MIN, i32::MAX, -2][rng.index(3)],
                _ => -1,
            },
            // Mostly write-back; else write-combining or uncached, or a mode that is none.
            cache: match rng.index(10) {
                0 => abi::CACHE_WC,
                1 => abi::CACHE_UC,
                2 => rng.next() as u32 | abi::CACHE_COUNT,
                _ => abi::CACHE_WB,
            },
            align: self.random_align(rng),
            // Mostly no bound; else 4 GiB (DMA32), a random one, or one below a page.
            phys_limit: match rng.index(8) {
                0 => 1 << 32,
                1 => rng.next() >> rng.index(64),
                2 => rng.below(4096),
                _ => 0,
            },
            reserved1: if rng.one_in(5) { rng.next() | 1 } else { 0 },
            id: rng.next(),
            mmap_offset: rng.next(),
            reserved_size: rng.next(),
            phys_addr: rng.next(),
            alloc_ns: rng.next(),
            reserved2: [rng.next(), rng.next()],
        };
        let req = a;
        let op = describe_alloc("ALLOC (raw)", &req);
        let allowed = Allowed::unless(alloc_errors(self.env, &req), &[Errno::NOSPC, Errno::NOMEM]);
        let res = self.dev.ioctl(&mut a).map_err(|e| e.errno());
        if allowed.judge(&op, res)?.is_none() {
            return Ok(());
        }
        if a.reserved2 != [0; 2] {
            return Err(Failure::new(
                &op,
                "reserved2 zeroed",
                format!("{:#x?}", a.reserved2),
            ));
        }
        let kind = Kind::from_raw(req.kind).expect("ALLOC succeeded, so the kind is valid");
        let got = Allocated {
            id: a.id,
            size: a.reserved_size,
            offset: a.mmap_offset,
            phys: a.phys_addr,
        };
        self.adopt(&op, kind, &req, got)
    }

    // --- FREE and INFO -------------------------------------------------------------------

    fn pick_target(&self, rng: &mut Rng) -> Target {
        if !self.bufs.is_empty() && rng.below(10) < 6 {
            return Target::Live(rng.index(self.bufs.len()));
        }
        if !self.stale.is_empty() && rng.one_in(2) {
            return Target::Stale(self.stale[rng.index(self.stale.len())]);
        }
        let id = match rng.below(8) {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 27,
            _ => self.highest_id.saturating_sub(50) + rng.below(100),
        };
        match self.bufs.iter().position(|b| b.id == id) {
            Some(i) => Target::Live(i),
            None => Target::Random(id),
        }
    }

    fn target_id(&self, target: &Target) -> u64 {
        match *target {
            Target::Live(i) => self.bufs[i].id,
            Target::Stale(s) => s.id,
            Target::Random(id) => id,
        }
    }

    /// Moves live buffer `i` to the stale list.
    fn retire(&mut self, i: usize) {
        let b = self.bufs.swap_remove(i);
        self.remember_stale(Stale {
            id: b.id,
            offset: b.offset,
            pages: self.env.pages(b.size),
        });
    }

    fn remember_stale(&mut self, s: Stale) {
        if self.stale.len() >= MAX_STALE {
            self.stale.remove(0);
        }
        self.stale.push(s);
    }

    /// FREE of an own, stale or random id, sometimes with a non-zero reserved field.
    fn free(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let target = self.pick_target(rng);
        let id = self.target_id(&target);
        let reserved = if rng.one_in(8) { rng.next() | 1 } else { 0 };
        let op = format!("FREE id={id} reserved={reserved:#x}");
        let allowed = match target {
            _ if reserved != 0 => Allowed::failure(&[Errno::INVAL]),
            Target::Live(_) => Allowed::success(&[]),
            _ => Allowed::failure(&[Errno::NOENT]),
        };
        let res = if reserved == 0 {
            self.dev.free(id)
        } else {
            self.dev.ioctl(&mut abi::Free { id, reserved })
        };
        if allowed.judge(&op, res.map_err(|e| e.errno()))?.is_some() {
            if let Target::Live(i) = target {
                self.retire(i);
            }
        }
        Ok(())
    }

    /// INFO of an own, stale or random id; an own buffer's answer must match the model.
    fn info(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let target = self.pick_target(rng);
        let id = self.target_id(&target);
        let op = format!("INFO id={id}");
        match target {
            Target::Live(i) => self.check_info(i, &op),
            _ => {
                let res = self.dev.info(id).map_err(|e| e.errno());
                Allowed::failure(&[Errno::NOENT]).judge(&op, res)?;
                Ok(())
            }
        }
    }

    /// The VMAs of this process that map buffer `id`, as the model counts them.
    fn vma_count(&self, id: u64) -> u64 {
        self.maps
            .iter()
            .filter(|m| m.id == id)
            .map(|m| m.vmas.len() as u64)
            .sum()
    }

    /// The dma-bufs of buffer `id` this worker keeps alive, by a descriptor or by a mapping
    /// (which holds its dma-buf after the descriptor is closed), as the model counts them.
    fn dmabuf_count(&self, id: u64) -> u64 {
        let mut serials: Vec<u64> = self
            .dmabufs
            .iter()
            .filter(|d| d.id == id)
            .map(|d| d.serial)
            .chain(
                self.maps
                    .iter()
                    .filter(|m| m.id == id)
                    .filter_map(|m| m.dmabuf),
            )
            .collect();
        serials.sort_unstable();
        serials.dedup();
        serials.len() as u64
    }

    /// INFO of live buffer `i`, compared field by field with the model.
    fn check_info(&self, i: usize, op: &str) -> Result<(), Failure> {
        let b = &self.bufs[i];
        let res = self.dev.info(b.id).map_err(|e| e.errno());
        let Some(info) = Allowed::success(&[]).judge(op, res)? else {
            return Ok(());
        };
        let pages = self.env.pages(b.size) as u64;
        let mappings = self.vma_count(b.id);
        let segments_ok = if b.kind.is_contiguous() {
            info.segments == 1
        } else {
            (1..=pages).contains(&info.segments)
        };
        let mappings_ok = if self.alone {
            info.mappings == mappings
        } else {
            // Another thread's forked child may hold copies of our VMAs for a while.
            info.mappings >= mappings
        };
        let dmabufs = self.dmabuf_count(b.id);
        let dmabufs_ok = if self.alone {
            info.dmabufs == dmabufs
        } else {
            // And copies of our dma-buf descriptors, which keep closed dma-bufs alive.
            info.dmabufs >= dmabufs
        };
        let checks = [
            (info.id == b.id, format!("id {}", b.id), info.id.to_string()),
            (
                info.kind == b.kind,
                format!("kind {}", b.kind),
                info.kind.to_string(),
            ),
            (
                info.size == b.size,
                format!("size {:#x}", b.size),
                format!("{:#x}", info.size),
            ),
            (
                info.mmap_offset == b.offset,
                format!("mmap_offset {:#x}", b.offset),
                format!("{:#x}", info.mmap_offset),
            ),
            (
                info.uninit == b.uninit,
                format!("uninit {}", b.uninit),
                info.uninit.to_string(),
            ),
            (
                info.contiguous == b.kind.is_contiguous(),
                format!("contiguous {}", b.kind.is_contiguous()),
                info.contiguous.to_string(),
            ),
            (
                segments_ok,
                format!("segments 1..={pages} (1 if contiguous)"),
                info.segments.to_string(),
            ),
            (
                mappings_ok,
                format!("mappings {}{mappings}", if self.alone { "" } else { ">= " }),
                info.mappings.to_string(),
            ),
            (
                dmabufs_ok,
                format!("dmabufs {}{dmabufs}", if self.alone { "" } else { ">= " }),
                info.dmabufs.to_string(),
            ),
            (
                info.cache == b.cache,
                format!("cache {}", b.cache),
                info.cache.to_string(),
            ),
            (
                self.env.privileged || info.phys_addr == 0,
                "phys_addr 0 without CAP_SYS_ADMIN".to_string(),
                format!("{:#x}", info.phys_addr),
            ),
        ];
        match checks.into_iter().find(|(ok, _, _)| !ok) {
            Some((_, expected, saw)) => Err(Failure::new(op, expected, saw)),
            None => Ok(()),
        }
    }

    // --- mmap, munmap, mprotect, mremap -------------------------------------------------

    /// mmap of a random window of a live or stale buffer: valid, empty, past the end,
    /// MAP_PRIVATE or executable.
    fn map(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.len() >= MAX_MAPPINGS {
            return self.unmap(rng);
        }
        let use_stale = self.bufs.is_empty() || (!self.stale.is_empty() && rng.one_in(7));
        let (target, live) = if use_stale {
            if self.stale.is_empty() {
                return Ok(());
            }
            (self.stale[rng.index(self.stale.len())], None)
        } else {
            let i = rng.index(self.bufs.len());
            let b = &self.bufs[i];
            let s = Stale {
                id: b.id,
                offset: b.offset,
                pages: self.env.pages(b.size),
            };
            (s, Some(b.contents.clone()))
        };
        let page = self.env.page;
        let pages = target.pages;
        let (first, len) = match rng.below(12) {
            0 => (rng.index(pages), 0),
            1 => {
                let k = rng.index(pages + 1);
                (k, (pages - k + 1 + rng.index(2)) * page)
            }
            2..=4 => (0, pages * page),
            _ => {
                let k = rng.index(pages);
                let n = 1 + rng.index((pages - k).min(32));
                let len = if rng.one_in(5) {
                    (n - 1) * page + rng.range(1, page as u64) as usize
                } else {
                    n * page
                };
                (k, len)
            }
        };
        let (prot, exec) = match rng.below(12) {
            0 => (ProtFlags::READ | ProtFlags::EXEC, true),
            1 => (ProtFlags::READ | ProtFlags::WRITE | ProtFlags::EXEC, true),
            2 | 3 => (ProtFlags::READ, false),
            _ => (ProtFlags::READ | ProtFlags::WRITE, false),
        };
        let private = rng.one_in(10);
        let flags = if private {
            MapFlags::PRIVATE
        } else {
            MapFlags::SHARED
        };
        let offset = target.offset + (first * page) as u64;
        let op = format!(
            "mmap id={} {}page={first} len={len:#x} prot={prot:?} flags={flags:?}",
            target.id,
            if live.is_none() { "(stale) " } else { "" }
        );
        let mut errs = Vec::new();
        if live.is_none() || len == 0 || first + len.div_ceil(page) > pages || private {
            errs.push(Errno::INVAL);
        }
        if exec {
            errs.push(Errno::PERM);
        }
        let allowed = Allowed::unless(errs, &[Errno::NOMEM]);
        let res = self
            .dev
            .mmap_raw(offset, len, prot, flags)
            .map_err(|e| e.errno());
        if let (Some(map), Some(contents)) = (allowed.judge(&op, res)?, live) {
            let prot = if prot.contains(ProtFlags::WRITE) {
                Prot::ReadWrite
            } else {
                Prot::Read
            };
            self.maps.push(MapModel {
                map,
                id: target.id,
                first_page: first,
                len,
                page,
                vmas: vec![Vma {
                    start: 0,
                    end: len.div_ceil(page),
                    prot,
                }],
                contents,
                dmabuf: None,
            });
        }
        Ok(())
    }

    /// munmap of a whole mapping, or of a page range inside it (which splits it).
    fn unmap(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.is_empty() {
            return Ok(());
        }
        let m = self.maps.swap_remove(rng.index(self.maps.len()));
        let page = m.page;
        let whole = m.len / page;
        if whole == 0 || rng.one_in(3) {
            drop(m);
            return Ok(());
        }
        let a = rng.index(whole);
        let b = rng.range(a as u64 + 1, whole as u64 + 1) as usize;
        let op = format!(
            "munmap pages {a}..{b} of a {}-page mapping of id {}",
            m.pages(),
            m.id
        );
        let MapModel {
            map,
            id,
            first_page,
            len,
            vmas,
            contents,
            dmabuf,
            ..
        } = m;
        let pages = len.div_ceil(page);
        let (head, tail) = map
            .unmap_range(a * page, (b - a) * page)
            .map_err(|e| Failure::new(&op, "success", errno_name(e.errno())))?;
        if let Some(map) = head {
            self.maps.push(MapModel {
                map,
                id,
                first_page,
                len: a * page,
                page,
                vmas: slice_vmas(&vmas, 0, a),
                contents: contents.clone(),
                dmabuf,
            });
        }
        if let Some(map) = tail {
            self.maps.push(MapModel {
                map,
                id,
                first_page: first_page + b,
                len: len - b * page,
                page,
                vmas: slice_vmas(&vmas, b, pages),
                contents,
                dmabuf,
            });
        }
        Ok(())
    }

    /// mprotect of a page range: none, read-only, read-write, or executable (EACCES).
    fn protect(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.is_empty() {
            return Ok(());
        }
        let i = rng.index(self.maps.len());
        let m = &mut self.maps[i];
        let pages = m.pages() as u64;
        let a = rng.below(pages) as usize;
        let b = rng.range(a as u64 + 1, pages + 1) as usize;
        let (flags, prot) = match rng.below(10) {
            0..=2 => (MprotectFlags::empty(), Some(Prot::None)),
            3..=5 => (MprotectFlags::READ, Some(Prot::Read)),
            6..=8 => (
                MprotectFlags::READ | MprotectFlags::WRITE,
                Some(Prot::ReadWrite),
            ),
            _ => (MprotectFlags::READ | MprotectFlags::EXEC, None),
        };
        let op = format!(
            "mprotect pages {a}..{b} of a mapping of id {} to {flags:?}",
            m.id
        );
        let allowed = match prot {
            Some(_) => Allowed::success(&[Errno::NOMEM]),
            None => Allowed::failure(&[Errno::ACCESS]),
        };
        // SAFETY: pages `a..b` lie inside the mapping `m` owns. No reference into it is alive
        // (pages are borrowed only inside WRITE and CHECK), and the model records the new
        // protection before any later access.
        let res = unsafe {
            rustix::mm::mprotect(
                m.page_addr(a) as *mut core::ffi::c_void,
                (b - a) * m.page,
                flags,
            )
        };
        if let (Some(()), Some(prot)) = (allowed.judge(&op, res)?, prot) {
            m.vmas = protect_vmas(&m.vmas, a, b, prot);
        }
        Ok(())
    }

    /// mremap: growing must fail with EFAULT (VM_DONTEXPAND); shrinking must work (a
    /// mapping split into several VMAs may refuse with EFAULT).
    fn remap(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.is_empty() {
            return Ok(());
        }
        let i = rng.index(self.maps.len());
        let m = &mut self.maps[i];
        let page = m.page;
        let whole = m.len / page;
        // The largest page-multiple length below `len`.
        let below = if m.len % page == 0 { whole - 1 } else { whole };
        let grow = below == 0 || rng.one_in(3);
        let new_len = if grow {
            m.len + page * (1 + rng.index(4))
        } else {
            page * rng.range(1, below as u64 + 1) as usize
        };
        let op = format!(
            "mremap id={} from {:#x} to {new_len:#x} ({} VMAs)",
            m.id,
            m.len,
            m.vmas.len()
        );
        let allowed = if grow {
            Allowed::failure(&[Errno::FAULT])
        } else if m.vmas.len() == 1 {
            Allowed::success(&[])
        } else {
            Allowed::success(&[Errno::FAULT])
        };
        let res = m.map.remap(new_len).map_err(|e| e.errno());
        if allowed.judge(&op, res)?.is_some() {
            m.len = new_len;
            m.vmas = slice_vmas(&m.vmas, 0, new_len.div_ceil(page));
        }
        Ok(())
    }

    /// mremap(MREMAP_FIXED) of a mapping onto a placeholder and back, checking a page while
    /// it is away. Only when this worker is alone in its process: between the two moves its
    /// old range is free, and another thread's mmap could take it.
    fn move_and_back(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.is_empty() {
            return Ok(());
        }
        let i = rng.index(self.maps.len());
        let m = &self.maps[i];
        let bytes = m.pages() * m.page;
        let op = format!("mremap id={} ({} VMAs) away and back", m.id, m.vmas.len());
        let old = m.map.addr() as *mut core::ffi::c_void;
        // SAFETY: a fresh anonymous PROT_NONE mapping at an address the kernel picks replaces
        // nothing.
        let spot = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                bytes,
                ProtFlags::empty(),
                MapFlags::PRIVATE,
            )
        }
        .map_err(|e| Failure::new("mmap placeholder", "success", errno_name(e)))?;
        // SAFETY: `old..old+bytes` is the mapping `m` owns (no reference into it is alive) and
        // `spot` is the placeholder we just made, which the move replaces.
        let moved =
            unsafe { rustix::mm::mremap_fixed(old, bytes, bytes, MremapFlags::MAYMOVE, spot) };
        let allowed = if m.vmas.len() == 1 {
            Allowed::success(&[])
        } else {
            // Moving several VMAs at once is refused by older kernels.
            Allowed::success(&[Errno::FAULT])
        };
        let Some(at) = allowed.judge(&op, moved).inspect_err(|_| {
            // SAFETY: the placeholder is ours and nothing refers to it.
            let _ = unsafe { rustix::mm::munmap(spot, bytes) };
        })?
        else {
            // SAFETY: as above.
            let _ = unsafe { rustix::mm::munmap(spot, bytes) };
            return Ok(());
        };
        let seen = m.random_page(rng, false).map(|(p, _)| {
            let state = m.contents.borrow()[m.first_page + p];
            // SAFETY: the mapping now lives at `at`, with the same pages and protections; page
            // `p` is readable by the model. The slice ends before the move back.
            let bytes = unsafe {
                std::slice::from_raw_parts((at as usize + p * m.page) as *const u8, m.page)
            };
            (
                p,
                state,
                check_state(bytes, state).map_err(|w| w.to_string()),
            )
        });
        // SAFETY: `at` holds our moved mapping; `old` is free again and, this worker being alone
        // in its process, nothing else was mapped there meanwhile.
        let back = unsafe { rustix::mm::mremap_fixed(at, bytes, bytes, MremapFlags::MAYMOVE, old) };
        if back != Ok(old) {
            // The library's Mapping no longer owns its range: never unmap through it.
            let lost = self.maps.swap_remove(i);
            std::mem::forget(lost);
            return Err(Failure::new(
                &format!("{op}: moving back"),
                format!("success at {old:p}"),
                format!("{back:?}"),
            ));
        }
        if let Some((p, state, Err(wrong))) = seen {
            return Err(Failure::new(
                &format!("{op}: page {p} while moved"),
                describe_state(state),
                wrong,
            ));
        }
        Ok(())
    }

    // --- fork ----------------------------------------------------------------------------

    /// fork: the child checks a page, writes a pattern into a writable page, maybe frees a
    /// buffer of the shared file, and leaves with `_exit`; the parent then sees the write.
    fn fork(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let writable: Vec<usize> = (0..self.maps.len())
            .filter(|&i| self.maps[i].vmas.iter().any(|v| v.prot.writable()))
            .collect();
        if writable.is_empty() {
            return Ok(());
        }
        let i = writable[rng.index(writable.len())];
        let m = &self.maps[i];
        let (p, _) = m.random_page(rng, true).expect("a writable page");
        let (q, _) = m.random_page(rng, false).expect("a readable page");
        let q_state = m.contents.borrow()[m.first_page + q];
        let seed = rng.next();
        let free = (!self.bufs.is_empty() && rng.one_in(3)).then(|| rng.index(self.bufs.len()));
        let free_id = free.map(|j| self.bufs[j].id);
        let op = format!(
            "fork: child checks page {q}, writes page {p} of a mapping of id {}, frees {free_id:?}",
            m.id
        );
        let _ = std::io::stdout().flush();
        // SAFETY: the child runs only `fork_child`, which allocates nothing and takes no lock
        // (so it is sound after fork in a threaded process), and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = self.fork_child(i, q, q_state, p, seed, free_id);
            // SAFETY: `_exit` ends the child without running the parent's destructors or atexit
            // handlers, which must not run twice.
            unsafe { libc::_exit(code) };
        }
        if pid < 0 {
            let errno =
                Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL);
            Allowed::success(&[Errno::AGAIN, Errno::NOMEM]).judge(&op, Err::<(), _>(errno))?;
            return Ok(());
        }
        let status = wait(pid).map_err(|e| Failure::new(&op, "waitpid success", errno_name(e)))?;
        match status.exit_status() {
            Some(0) => {}
            Some(1) => {
                return Err(Failure::new(
                    &op,
                    format!("page {q} to hold {}", describe_state(q_state)),
                    "something else in the child",
                ))
            }
            Some(2) => return Err(Failure::new(&op, "FREE success in the child", "an error")),
            _ => return Err(Failure::new(&op, "child exit 0", format!("{status:?}"))),
        }
        self.maps[i].contents.borrow_mut()[self.maps[i].first_page + p] = PageState::Pattern(seed);
        if let Some(j) = free {
            self.retire(j);
        }
        self.maps[i].check_page(p, &format!("{op}: parent reads the child's write"))
    }

    /// The forked child's work; returns its exit code. Allocates nothing.
    fn fork_child(
        &mut self,
        i: usize,
        q: usize,
        q_state: PageState,
        p: usize,
        seed: u64,
        free_id: Option<u64>,
    ) -> i32 {
        let m = &mut self.maps[i];
        if check_state(m.page_bytes(q), q_state).is_err() {
            return 1;
        }
        pattern::fill(m.page_bytes_mut(p), seed);
        if let Some(id) = free_id {
            if self.dev.free(id).is_err() {
                return 2;
            }
        }
        0
    }

    // --- files ---------------------------------------------------------------------------

    /// Closes the device and opens it again: every buffer goes, mappings and dma-bufs stay
    /// valid and keep the memory of the buffers they hold.
    fn reopen(&mut self) -> Result<(), Failure> {
        let dev = Device::open()
            .map_err(|e| Failure::new("reopen /dev/contigmem", "success", e.to_string()))?;
        drop(std::mem::replace(&mut self.dev, dev));
        while !self.bufs.is_empty() {
            self.retire(self.bufs.len() - 1);
        }
        Ok(())
    }

    /// A second file must not see this file's buffers, nor this file the second's; a buffer
    /// mapped from a closed file stays readable and writable.
    fn foreign(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let other = Device::open()
            .map_err(|e| Failure::new("open a second file", "success", e.to_string()))?;
        if !self.bufs.is_empty() {
            let b = &self.bufs[rng.index(self.bufs.len())];
            let id = b.id;
            let enoent = Allowed::failure(&[Errno::NOENT]);
            enoent.judge(
                &format!("INFO id={id} on another file"),
                other.info(id).map_err(|e| e.errno()),
            )?;
            enoent.judge(
                &format!("FREE id={id} on another file"),
                other.free(id).map_err(|e| e.errno()),
            )?;
            let rw = ProtFlags::READ | ProtFlags::WRITE;
            let res = other.mmap_raw(b.offset, self.env.page, rw, MapFlags::SHARED);
            Allowed::failure(&[Errno::INVAL]).judge(
                &format!("mmap id={id} on another file"),
                res.map_err(|e| e.errno()),
            )?;
        }
        let res = other.alloc(Kind::Kzalloc, self.env.page64()).map(|b| {
            let got = (b.id(), b.mmap_offset());
            b.leak();
            got
        });
        let Some((id, offset)) = Allowed::success(&[Errno::NOSPC, Errno::NOMEM]).judge(
            "ALLOC kzalloc 1 page on another file",
            res.map_err(|e| e.errno()),
        )?
        else {
            return Ok(());
        };
        self.highest_id = self.highest_id.max(id);
        let enoent = Allowed::failure(&[Errno::NOENT]);
        enoent.judge(
            &format!("INFO of the other file's id {id}"),
            self.dev.info(id).map_err(|e| e.errno()),
        )?;
        enoent.judge(
            &format!("FREE of the other file's id {id}"),
            self.dev.free(id).map_err(|e| e.errno()),
        )?;
        let rw = ProtFlags::READ | ProtFlags::WRITE;
        Allowed::failure(&[Errno::INVAL]).judge(
            &format!("mmap of the other file's id {id}"),
            self.dev
                .mmap_raw(offset, self.env.page, rw, MapFlags::SHARED)
                .map_err(|e| e.errno()),
        )?;
        let op = format!("mmap id={id} on its own (second) file");
        let map = Allowed::success(&[Errno::NOMEM]).judge(
            &op,
            other
                .mmap_raw(offset, self.env.page, rw, MapFlags::SHARED)
                .map_err(|e| e.errno()),
        )?;
        drop(other);
        if let Some(map) = map {
            let contents = Rc::new(RefCell::new(vec![PageState::Zero]));
            let mut m = MapModel {
                map,
                id,
                first_page: 0,
                len: self.env.page,
                page: self.env.page,
                vmas: vec![Vma {
                    start: 0,
                    end: 1,
                    prot: Prot::ReadWrite,
                }],
                contents,
                dmabuf: None,
            };
            m.check_page(0, "a kzalloc buffer of a closed file")?;
            m.write_page(0, rng.next());
            m.check_page(0, "a kzalloc buffer of a closed file after a write")?;
        }
        Ok(())
    }

    // --- raw ioctls ----------------------------------------------------------------------

    /// ioctls with bad pointers, unknown or mis-sized commands, and structures the kernel can
    /// read but not write back (ALLOC must then take its buffer back: no leak).
    fn bad_ioctl(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let known = [
            abi::IOC_VERSION,
            abi::IOC_ALLOC,
            abi::IOC_FREE,
            abi::IOC_INFO,
            abi::IOC_EXPORT,
            abi::IOC_SYNC,
        ];
        match rng.below(5) {
            0 => {
                let cmd = known[rng.index(known.len())];
                let arg = [0, 1, 4095, 0xffff_8000_0000_0000, usize::MAX - 7][rng.index(5)];
                let op = format!("ioctl {cmd:#x} with pointer {arg:#x}");
                Allowed::failure(&[Errno::FAULT])
                    .judge(&op, self.dev.ioctl_raw(cmd, arg).map_err(|e| e.errno()))?;
            }
            1 => {
                let mut nr = rng.below(256) as u32;
                if (0x10..=0x15).contains(&nr) {
                    nr += 6;
                }
                let cmd = ((rng.below(4) as u32) << 30)
                    | ((rng.below(256) as u32) << 16)
                    | (abi::IOC_MAGIC << 8)
                    | nr;
                let op = format!("unknown ioctl {cmd:#x}");
                Allowed::failure(&[Errno::NOTTY])
                    .judge(&op, self.dev.ioctl_raw(cmd, 0).map_err(|e| e.errno()))?;
            }
            2 => {
                let cmd = known[rng.index(known.len())];
                let size = (cmd >> 16) & 0x3fff;
                let other = (size + 1 + rng.below(64) as u32) & 0x3fff;
                let cmd = (cmd & !(0x3fff << 16)) | (other << 16);
                let op = format!("ioctl {cmd:#x} (known number, wrong size)");
                Allowed::failure(&[Errno::NOTTY])
                    .judge(&op, self.dev.ioctl_raw(cmd, 0).map_err(|e| e.errno()))?;
            }
            3 => self.read_only_ioctl(rng)?,
            _ => self.straddling_ioctl(rng)?,
        }
        Ok(())
    }

    /// ALLOC, INFO, EXPORT or VERSION into a read-only page: EFAULT when writing back, and
    /// EXPORT must then leave no dma-buf behind.
    fn read_only_ioctl(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let scratch = Scratch::new(self.env.page)
            .map_err(|e| Failure::new("mmap scratch", "success", errno_name(e)))?;
        let mut exported = None;
        let (cmd, what) = match rng.below(4) {
            0 => {
                scratch.put(
                    0,
                    abi::Alloc {
                        size: self.env.page64(),
                        kind: abi::KIND_KMALLOC,
                        node: -1,
                        ..Default::default()
                    },
                );
                (abi::IOC_ALLOC, "ALLOC".to_string())
            }
            1 if !self.bufs.is_empty() => {
                let id = self.bufs[rng.index(self.bufs.len())].id;
                scratch.put(
                    0,
                    abi::Info {
                        id,
                        ..Default::default()
                    },
                );
                (abi::IOC_INFO, format!("INFO id={id}"))
            }
            2 if !self.bufs.is_empty() => {
                let i = rng.index(self.bufs.len());
                let id = self.bufs[i].id;
                scratch.put(
                    0,
                    abi::Export {
                        id,
                        fd_flags: O_RDWR | abi::O_CLOEXEC,
                        ..Default::default()
                    },
                );
                exported = Some(i);
                (abi::IOC_EXPORT, format!("EXPORT id={id}"))
            }
            _ => (abi::IOC_VERSION, "VERSION".to_string()),
        };
        scratch
            .protect(MprotectFlags::READ)
            .map_err(|e| Failure::new("mprotect scratch", "success", errno_name(e)))?;
        let op = format!("{what} into a read-only page");
        let allowed = match cmd {
            abi::IOC_ALLOC => Allowed::failure(&[Errno::FAULT, Errno::NOSPC, Errno::NOMEM]),
            abi::IOC_EXPORT => {
                Allowed::failure(&[Errno::FAULT, Errno::NOMEM, Errno::MFILE, Errno::NFILE])
            }
            _ => Allowed::failure(&[Errno::FAULT]),
        };
        allowed.judge(
            &op,
            self.dev.ioctl_raw(cmd, scratch.addr).map_err(|e| e.errno()),
        )?;
        match exported {
            Some(i) => self.check_info(i, &format!("{op}: INFO after")),
            None => Ok(()),
        }
    }

    /// ALLOC, FREE, EXPORT or SYNC of a structure running into an inaccessible page: EFAULT
    /// on reading it.
    fn straddling_ioctl(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let scratch = Scratch::new(self.env.page)
            .map_err(|e| Failure::new("mmap scratch", "success", errno_name(e)))?;
        let short = 1 + rng.index(8) * 2;
        let (cmd, at, what) = match rng.below(4) {
            0 => {
                let at = self.env.page - std::mem::size_of::<abi::Alloc>() + short;
                (abi::IOC_ALLOC, at, "ALLOC")
            }
            1 => {
                let at = self.env.page - std::mem::size_of::<abi::Free>() + short.min(15);
                (abi::IOC_FREE, at, "FREE")
            }
            2 => {
                let at = self.env.page - std::mem::size_of::<abi::Export>() + short;
                (abi::IOC_EXPORT, at, "EXPORT")
            }
            _ => {
                let at = self.env.page - std::mem::size_of::<abi::Sync>() + short;
                (abi::IOC_SYNC, at, "SYNC")
            }
        };
        let op = format!("{what} of a structure {short} bytes into an inaccessible page");
        Allowed::failure(&[Errno::FAULT]).judge(
            &op,
            self.dev
                .ioctl_raw(cmd, scratch.addr + at)
                .map_err(|e| e.errno()),
        )?;
        Ok(())
    }

    // --- dma-bufs: EXPORT, their mappings and DMA_BUF_IOCTL_SYNC; SYNC -------------------

    /// EXPORT of an own, stale or random id with valid or invalid `fd_flags` and `reserved`
    /// (and garbage in `fd`, an output). A new dma-buf has the buffer's size and the descriptor
    /// flags asked, counts in INFO, and is sometimes mapped.
    fn export(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.dmabufs.len() >= MAX_DMABUFS {
            return self.dmabuf_close(rng);
        }
        if rng.one_in(8) {
            return self.export_read_only(rng);
        }
        let target = self.pick_target(rng);
        let id = self.target_id(&target);
        // Mostly read-write; else read-only, write-only or the access mode that is none.
        let access = match rng.below(10) {
            0 => O_RDONLY,
            1 => O_WRONLY,
            2 => abi::O_ACCMODE,
            _ => O_RDWR,
        };
        let mut fd_flags = access | if rng.one_in(2) { abi::O_CLOEXEC } else { 0 };
        if rng.one_in(10) {
            fd_flags |= 1 << rng.range(2, 32);
        }
        let reserved = match rng.below(12) {
            0 => [rng.next() | 1, 0],
            1 => [0, rng.next() | 1],
            _ => [0, 0],
        };
        let mut e = abi::Export {
            id,
            fd_flags,
            fd: rng.next() as i32,
            reserved,
        };
        let op = format!(
            "EXPORT id={id} fd_flags={fd_flags:#o} reserved=[{:#x}, {:#x}]",
            reserved[0], reserved[1]
        );
        let mut errs = Vec::new();
        if reserved != [0; 2]
            || fd_flags & !abi::EXPORT_FD_FLAGS != 0
            || fd_flags & abi::O_ACCMODE == abi::O_ACCMODE
        {
            errs.push(Errno::INVAL);
        }
        if !matches!(target, Target::Live(_)) {
            errs.push(Errno::NOENT);
        }
        // Our file is open read-write, so no access mode is refused with EACCES.
        let allowed = Allowed::unless(errs, &[Errno::NOMEM, Errno::MFILE, Errno::NFILE]);
        let res = self.dev.ioctl(&mut e).map_err(|e| e.errno());
        if allowed.judge(&op, res)?.is_none() {
            return Ok(());
        }
        let Target::Live(i) = target else {
            unreachable!("EXPORT of a buffer not in the file was judged a failure");
        };
        let (size, contents) = (self.bufs[i].size, self.bufs[i].contents.clone());
        let k = self.adopt_dmabuf(&op, e.fd, fd_flags, id, size, contents)?;
        self.check_info(i, &format!("{op}: INFO after"))?;
        if rng.one_in(2) {
            self.map_dmabuf(k, rng)?;
        }
        Ok(())
    }

    /// EXPORT of a one-page buffer of a second file opened read-only: only a read-only
    /// dma-buf (EACCES for the others). It holds the buffer past that file's close, maps
    /// `PROT_READ` with the buffer's zeroes, and refuses a writable mapping (EACCES).
    fn export_read_only(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let ro = Device::open_read_only(contigmem::DEFAULT_PATH)
            .map_err(|e| Failure::new("open /dev/contigmem read-only", "success", e.to_string()))?;
        let res = ro.alloc(Kind::Kzalloc, self.env.page64()).map(|b| b.leak());
        let Some(id) = Allowed::success(&[Errno::NOSPC, Errno::NOMEM]).judge(
            "ALLOC kzalloc 1 page on a read-only file",
            res.map_err(|e| e.errno()),
        )?
        else {
            return Ok(());
        };
        self.highest_id = self.highest_id.max(id);
        let access = [O_RDONLY, O_WRONLY, O_RDWR][rng.index(3)];
        let fd_flags = access | abi::O_CLOEXEC;
        let mut e = abi::Export {
            id,
            fd_flags,
            ..Default::default()
        };
        let op = format!("EXPORT id={id} fd_flags={fd_flags:#o} on a read-only file");
        let allowed = if access == O_RDONLY {
            Allowed::success(&[Errno::NOMEM, Errno::MFILE, Errno::NFILE])
        } else {
            Allowed::failure(&[Errno::ACCESS])
        };
        let res = ro.ioctl(&mut e).map_err(|e| e.errno());
        if allowed.judge(&op, res)?.is_none() {
            return Ok(());
        }
        let contents = Rc::new(RefCell::new(vec![PageState::Zero]));
        let k = self.adopt_dmabuf(&op, e.fd, fd_flags, id, self.env.page64(), contents)?;
        let info = ro
            .info(id)
            .map_err(|e| Failure::new(&format!("{op}: INFO after"), "success", e.to_string()))?;
        if info.dmabufs != 1 {
            return Err(Failure::new(
                &format!("{op}: INFO after"),
                "dmabufs 1",
                info.dmabufs.to_string(),
            ));
        }
        // Now only the dma-buf holds the buffer.
        drop(ro);
        let op = format!("{op}, after the file's close");
        let d = &self.dmabufs[k];
        Allowed::failure(&[Errno::ACCESS]).judge(
            &format!("{op}: mmap read-write"),
            d.buf.map().map_err(|e| e.errno()),
        )?;
        let len = self.env.page;
        // SAFETY: a fresh shared mapping at an address the kernel picks replaces nothing.
        let res = unsafe {
            rustix::mm::mmap(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                &d.buf,
                0,
            )
        };
        let what = format!("{op}: mmap read-only");
        let Some(ptr) = Allowed::success(&[Errno::NOMEM]).judge(&what, res)? else {
            return Ok(());
        };
        // SAFETY: `ptr` is the readable page just mapped, which nothing else refers to; the
        // slice is not used after the munmap below.
        let seen = check_state(
            unsafe { std::slice::from_raw_parts(ptr as *const u8, len) },
            PageState::Zero,
        );
        // SAFETY: the mapping is ours and no reference into it is alive.
        let _ = unsafe { rustix::mm::munmap(ptr, len) };
        seen.map_err(|wrong| {
            Failure::new(&what, describe_state(PageState::Zero), wrong.to_string())
        })
    }

    /// Checks the descriptor of a successful EXPORT (`fd_flags` asked, a dma-buf of `size`
    /// bytes) and adds the dma-buf of buffer `id` to the model; returns its index.
    fn adopt_dmabuf(
        &mut self,
        op: &str,
        fd: i32,
        fd_flags: u32,
        id: u64,
        size: u64,
        contents: Contents,
    ) -> Result<usize, Failure> {
        if fd < 0 {
            return Err(Failure::new(op, "a file descriptor >= 0", fd.to_string()));
        }
        // SAFETY: the kernel installed `fd` for this process in the EXPORT that just returned,
        // and nothing else in the process knows of it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let want = (fd_flags & abi::O_CLOEXEC != 0, fd_flags & abi::O_ACCMODE);
        let seen = (
            rustix::io::fcntl_getfd(&fd).map(|f| f.contains(FdFlags::CLOEXEC)),
            rustix::fs::fcntl_getfl(&fd).map(|f| f.bits() & abi::O_ACCMODE),
        );
        if seen != (Ok(want.0), Ok(want.1)) {
            return Err(Failure::new(
                op,
                format!("close-on-exec {}, access mode {}", want.0, want.1),
                format!("close-on-exec {:?}, access mode {:?}", seen.0, seen.1),
            ));
        }
        let buf = DmaBuf::from_fd(fd)
            .map_err(|e| Failure::new(op, "lseek of the dma-buf to succeed", e.to_string()))?;
        if buf.size() != size {
            return Err(Failure::new(
                op,
                format!("a dma-buf of {size:#x} bytes"),
                format!("{:#x} bytes", buf.size()),
            ));
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.dmabufs.push(DmaBufModel {
            buf,
            serial,
            id,
            access: want.1,
            contents,
        });
        Ok(self.dmabufs.len() - 1)
    }

    /// The mappings of dma-bufs, as (index in `maps`, the dma-buf's serial).
    fn dmabuf_maps(&self) -> Vec<(usize, u64)> {
        self.maps
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, m.dmabuf?)))
            .collect()
    }

    /// mmap of held dma-buf `k` (whole, shared, read-write): a read-write dma-buf maps, of a
    /// live buffer or a freed one alike; the others are refused with EACCES.
    fn map_dmabuf(&mut self, k: usize, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.len() >= MAX_MAPPINGS {
            drop(self.maps.swap_remove(rng.index(self.maps.len())));
        }
        let d = &self.dmabufs[k];
        let op = format!(
            "mmap of dma-buf {} (id {}, access mode {})",
            d.serial, d.id, d.access
        );
        let allowed = if d.access == O_RDWR {
            Allowed::success(&[Errno::NOMEM])
        } else {
            Allowed::failure(&[Errno::ACCESS])
        };
        let Some(map) = allowed.judge(&op, d.buf.map().map_err(|e| e.errno()))? else {
            return Ok(());
        };
        let page = self.env.page;
        let len = map.len();
        let m = MapModel {
            map,
            id: d.id,
            first_page: 0,
            len,
            page,
            vmas: vec![Vma {
                start: 0,
                end: len.div_ceil(page),
                prot: Prot::ReadWrite,
            }],
            contents: d.contents.clone(),
            dmabuf: Some(d.serial),
        };
        self.maps.push(m);
        Ok(())
    }

    /// Checks a run of readable pages of a dma-buf mapping against the model, sometimes after
    /// writing fresh patterns into a run of writable pages of it; while the buffer is in the
    /// file, `pread` of the device must see the first page checked as the mapping does. With no
    /// dma-buf mapping, maps a held dma-buf instead.
    fn dmabuf_check(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let via = self.dmabuf_maps();
        if via.is_empty() {
            if self.dmabufs.is_empty() {
                return Ok(());
            }
            let k = rng.index(self.dmabufs.len());
            return self.map_dmabuf(k, rng);
        }
        let (i, serial) = via[rng.index(via.len())];
        let m = &mut self.maps[i];
        if rng.one_in(3) {
            if let Some((p, end)) = m.random_page(rng, true) {
                let n = 1 + rng.index((end - p).min(MAX_TOUCH));
                for page in p..p + n {
                    m.write_page(page, rng.next());
                }
            }
        }
        let m = &self.maps[i];
        let op = format!("CHECK through dma-buf {serial} of id {}", m.id);
        let Some((p, end)) = m.random_page(rng, false) else {
            return Ok(());
        };
        let n = 1 + rng.index((end - p).min(MAX_TOUCH));
        for page in p..p + n {
            m.check_page(page, &op)?;
        }
        let Some(b) = self.bufs.iter().find(|b| b.id == m.id) else {
            return Ok(());
        };
        let page = m.first_page + p;
        let state = m.contents.borrow()[page];
        let what = format!("{op}: pread of buffer page {page}");
        let mut bytes = vec![0; self.env.page];
        let pos = b.offset + (page * self.env.page) as u64;
        let res = self.dev.pread(pos, &mut bytes).map_err(|e| e.errno());
        if let Some(got) = Allowed::success(&[]).judge(&what, res)? {
            if got != bytes.len() {
                return Err(Failure::new(
                    &what,
                    format!("{} bytes", bytes.len()),
                    format!("{got} bytes"),
                ));
            }
        }
        check_state(&bytes, state)
            .map_err(|wrong| Failure::new(&what, describe_state(state), wrong.to_string()))
    }

    /// DMA_BUF_IOCTL_SYNC of a held dma-buf, any direction, start or end: always succeeds.
    fn dmabuf_sync(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.dmabufs.is_empty() {
            return Ok(());
        }
        let d = &self.dmabufs[rng.index(self.dmabufs.len())];
        let dir = [SyncDir::Read, SyncDir::Write, SyncDir::ReadWrite][rng.index(3)];
        let start = rng.one_in(2);
        let op = format!(
            "DMA_BUF_IOCTL_SYNC {dir:?} {} of dma-buf {} (id {})",
            if start { "start" } else { "end" },
            d.serial,
            d.id
        );
        let res = d.buf.sync(dir, start).map_err(|e| e.errno());
        Allowed::success(&[]).judge(&op, res)?;
        Ok(())
    }

    /// SYNC of an own, stale or random id: byte ranges inside, to the end, empty, past the end
    /// and overflowing; flags with READ and/or WRITE and START or END, without either, or with
    /// unknown bits; sometimes a non-zero `reserved0`.
    fn sync(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let target = self.pick_target(rng);
        let id = self.target_id(&target);
        let page = self.env.page64();
        let size = match target {
            Target::Live(i) => self.bufs[i].size,
            Target::Stale(s) => s.pages as u64 * page,
            Target::Random(_) => rng.range(1, 16) * page,
        };
        let (offset, length) = match rng.below(12) {
            0 => (0, 0),
            1 => (size, 0),
            2 => (size + rng.range(1, 2 * page), 0),
            3 => {
                let offset = rng.below(size);
                (offset, size - offset + rng.range(1, 2 * page))
            }
            4 => (u64::MAX - rng.below(page), rng.range(1, 2 * page)),
            5 => (rng.range(1, size), u64::MAX - rng.below(page)),
            _ => {
                let offset = rng.below(size);
                let length = if rng.one_in(4) {
                    0
                } else {
                    rng.range(1, size - offset + 1)
                };
                (offset, length)
            }
        };
        let dir = [abi::SYNC_READ, abi::SYNC_WRITE, abi::SYNC_RW][rng.index(3)];
        let end = if rng.one_in(2) {
            abi::SYNC_END
        } else {
            abi::SYNC_START
        };
        let flags = match rng.below(10) {
            0 => end,
            1 => dir | end | 1 << rng.range(3, 32),
            _ => dir | end,
        };
        let reserved0 = if rng.one_in(10) {
            rng.next() as u32 | 1
        } else {
            0
        };
        let op = format!(
            "SYNC id={id} offset={offset:#x} length={length:#x} flags={flags:#x} \
             reserved0={reserved0:#x}{}",
            match target {
                Target::Live(_) => format!(" of a {size:#x}-byte buffer"),
                _ => String::new(),
            }
        );
        let mut errs = Vec::new();
        if reserved0 != 0 || flags & !abi::SYNC_FLAGS != 0 || flags & abi::SYNC_RW == 0 {
            errs.push(Errno::INVAL);
        }
        if let Target::Live(_) = target {
            // Length 0 runs to the end; the range must hold at least one byte of the buffer.
            let length = if length == 0 {
                size.checked_sub(offset)
            } else {
                Some(length)
            };
            let inside = length
                .is_some_and(|l| l > 0 && offset.checked_add(l).is_some_and(|end| end <= size));
            if !inside {
                errs.push(Errno::INVAL);
            }
        } else {
            errs.push(Errno::NOENT);
        }
        errs.dedup();
        let mut s = abi::Sync {
            id,
            offset,
            length,
            flags,
            reserved0,
        };
        let res = self.dev.ioctl(&mut s).map_err(|e| e.errno());
        Allowed::unless(errs, &[]).judge(&op, res)?;
        Ok(())
    }

    /// Closes a held dma-buf's descriptor, with or without its mappings, or unmaps one mapping
    /// of a dma-buf; INFO of its buffer, if still in the file, then counts the dma-bufs that
    /// remain alive (a mapping keeps its dma-buf after the descriptor's close).
    fn dmabuf_close(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        let via = self.dmabuf_maps();
        let (id, op) = if !via.is_empty() && (self.dmabufs.is_empty() || rng.one_in(3)) {
            let (i, serial) = via[rng.index(via.len())];
            let m = self.maps.swap_remove(i);
            let id = m.id;
            drop(m);
            (
                id,
                format!("munmap of a mapping of dma-buf {serial} of id {id}"),
            )
        } else if !self.dmabufs.is_empty() {
            let d = self.dmabufs.swap_remove(rng.index(self.dmabufs.len()));
            let unmap = rng.one_in(2);
            if unmap {
                self.maps.retain(|m| m.dmabuf != Some(d.serial));
            }
            let op = format!(
                "close of dma-buf {} of id {}{}",
                d.serial,
                d.id,
                if unmap { " and its mappings" } else { "" }
            );
            let id = d.id;
            drop(d);
            (id, op)
        } else {
            return Ok(());
        };
        match self.bufs.iter().position(|b| b.id == id) {
            Some(i) => self.check_info(i, &format!("{op}: INFO after")),
            None => Ok(()),
        }
    }

    // --- VERSION, WRITE, CHECK -----------------------------------------------------------

    /// The buffers whose memory this worker holds, as (id, size): its file's, and freed ones
    /// that its mappings and dma-bufs keep.
    fn held(&self) -> Vec<(u64, u64)> {
        let page = self.env.page64();
        let mut held: Vec<(u64, u64)> = self
            .bufs
            .iter()
            .map(|b| (b.id, b.size))
            .chain(
                self.maps
                    .iter()
                    .map(|m| (m.id, m.contents.borrow().len() as u64 * page)),
            )
            .chain(self.dmabufs.iter().map(|d| (d.id, d.buf.size())))
            .collect();
        held.sort_unstable();
        held.dedup_by_key(|h| h.0);
        held
    }

    /// VERSION: the limits as at start, and live counters covering the buffers this worker
    /// holds (freed ones its mappings and dma-bufs keep included).
    fn version(&mut self) -> Result<(), Failure> {
        let op = "VERSION";
        let v = self
            .dev
            .version()
            .map_err(|e| Failure::new(op, "success", errno_name(e.errno())))?;
        let held = self.held();
        let mine: u64 = held.iter().map(|&(_, size)| size).sum();
        let start = &self.env.version;
        let checks = [
            (
                v.is_compatible(),
                "ABI version 1".to_string(),
                v.abi_version.to_string(),
            ),
            (
                v.page_size == self.env.page64(),
                format!("page size {}", self.env.page),
                v.page_size.to_string(),
            ),
            (
                v.max_size == start.max_size,
                format!("max sizes {:?}", start.max_size),
                format!("{:?}", v.max_size),
            ),
            (
                v.live_buffers >= held.len() as u64,
                format!("live_buffers >= {}", held.len()),
                v.live_buffers.to_string(),
            ),
            (
                v.live_bytes >= mine,
                format!("live_bytes >= {mine}"),
                v.live_bytes.to_string(),
            ),
            (
                v.live_bytes <= v.max_total_bytes,
                format!("live_bytes <= {}", v.max_total_bytes),
                v.live_bytes.to_string(),
            ),
        ];
        match checks.into_iter().find(|(ok, _, _)| !ok) {
            Some((_, expected, saw)) => Err(Failure::new(op, expected, saw)),
            None => Ok(()),
        }
    }

    /// Writes fresh patterns into a run of writable pages of a mapping.
    fn write(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.is_empty() {
            return self.map(rng);
        }
        let i = rng.index(self.maps.len());
        let m = &mut self.maps[i];
        let Some((p, end)) = m.random_page(rng, true) else {
            return Ok(());
        };
        let n = 1 + rng.index((end - p).min(MAX_TOUCH));
        for page in p..p + n {
            m.write_page(page, rng.next());
        }
        Ok(())
    }

    /// Checks a run of readable pages of a mapping against the model.
    fn check(&mut self, rng: &mut Rng) -> Result<(), Failure> {
        if self.maps.is_empty() {
            return Ok(());
        }
        let m = &self.maps[rng.index(self.maps.len())];
        let Some((p, end)) = m.random_page(rng, false) else {
            return Ok(());
        };
        let n = 1 + rng.index((end - p).min(MAX_TOUCH));
        for page in p..p + n {
            m.check_page(page, "CHECK")?;
        }
        Ok(())
    }

    // --- the end -------------------------------------------------------------------------

    /// Checks every live buffer's INFO, unmaps everything, checks again, closes every dma-buf,
    /// checks again, and closes the file: nothing of this worker holds memory afterwards, for
    /// the final check of the live counters.
    fn finish(mut self) -> Result<(), Failure> {
        for i in 0..self.bufs.len() {
            self.check_info(i, "INFO at the end")?;
        }
        self.maps.clear();
        for i in 0..self.bufs.len() {
            self.check_info(i, "INFO at the end, all unmapped")?;
        }
        self.dmabufs.clear();
        for i in 0..self.bufs.len() {
            self.check_info(i, "INFO at the end, all dma-bufs closed")?;
        }
        Ok(())
    }
}

/// `waitpid` for one child.
fn wait(pid: libc::pid_t) -> Result<WaitStatus, Errno> {
    let pid = Pid::from_raw(pid).ok_or(Errno::INVAL)?;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(status),
            Ok(None) => continue,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Two anonymous pages, the second inaccessible, for ioctls on awkward memory.
struct Scratch {
    addr: usize,
    page: usize,
}

impl Scratch {
    fn new(page: usize) -> Result<Self, Errno> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks replaces nothing.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                2 * page,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }?;
        let scratch = Scratch {
            addr: ptr as usize,
            page,
        };
        // SAFETY: the second page is ours and nothing refers to it.
        unsafe {
            rustix::mm::mprotect(
                (scratch.addr + page) as *mut core::ffi::c_void,
                page,
                MprotectFlags::empty(),
            )
        }?;
        Ok(scratch)
    }

    /// Writes `value` at byte `at` of the first page.
    fn put<T: Copy>(&self, at: usize, value: T) {
        assert!(at + std::mem::size_of::<T>() <= self.page);
        // SAFETY: the bytes lie inside the first page, which is still writable (`protect` comes
        // after every `put`); unaligned writes are allowed.
        unsafe { std::ptr::write_unaligned((self.addr + at) as *mut T, value) };
    }

    /// Changes the first page's protection.
    fn protect(&self, flags: MprotectFlags) -> Result<(), Errno> {
        // SAFETY: the first page is ours and no reference into it is alive.
        unsafe { rustix::mm::mprotect(self.addr as *mut core::ffi::c_void, self.page, flags) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: the two pages are ours and no reference into them outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.addr as *mut core::ffi::c_void, 2 * self.page) };
    }
}

// ---------------------------------------------------------------------------------------------
// Workers
// ---------------------------------------------------------------------------------------------

/// How a worker ended: its operations and the first failure, as
/// `iteration I: <op>: expected ..., saw ...`.
struct Outcome {
    ops: u64,
    failure: Option<String>,
    stats: Stats,
}

/// Runs worker `index`'s random operations on a fresh file of its own.
fn run_worker(env: &Env, index: u64, alone: bool) -> Outcome {
    let mut rng = Rng::for_worker(env.cfg.seed, index);
    let deadline =
        (env.cfg.seconds > 0).then(|| Instant::now() + Duration::from_secs(env.cfg.seconds));
    let failed = |iteration: u64, f: Failure| {
        Some(format!(
            "iteration {iteration}: {}: expected {}, saw {}",
            f.op, f.expected, f.saw
        ))
    };
    let mut model = match Model::open(env, alone) {
        Ok(model) => model,
        Err(f) => {
            return Outcome {
                ops: 0,
                failure: failed(0, f),
                stats: Stats::default(),
            }
        }
    };
    let mut ops = 0;
    let mut stats = Stats::default();
    for iteration in 0..env.cfg.iterations {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let op = Op::pick(&mut rng);
        if let Err(f) = stats.count(op, || model.step(op, &mut rng)) {
            return Outcome {
                ops,
                failure: failed(iteration, f),
                stats,
            };
        }
        ops += 1;
    }
    Outcome {
        ops,
        failure: model.finish().err().and_then(|f| failed(ops, f)),
        stats,
    }
}

/// A worker catching its own panic, so that it reports like any failure.
fn run_worker_guarded(env: &Env, index: u64, alone: bool) -> Outcome {
    std::panic::catch_unwind(AssertUnwindSafe(|| run_worker(env, index, alone))).unwrap_or_else(
        |p| {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome {
                ops: 0,
                failure: Some(format!("panicked: {what}")),
                stats: Stats::default(),
            }
        },
    )
}

/// A forked worker process and the pipe it reports through.
struct ProcWorker {
    pid: libc::pid_t,
    report: OwnedFd,
}

/// Forks worker `index` as a process of its own; it reports `ops N` and a failure line on the
/// pipe, and exits 0 (passed) or 1 (failed).
fn spawn_proc(env: &Env, index: u64) -> Result<ProcWorker, Errno> {
    let (reader, writer) = rustix::pipe::pipe()?;
    let _ = std::io::stdout().flush();
    // SAFETY: called before any other thread exists, so the child is a full copy of a
    // single-threaded process and may do anything; it leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL));
    }
    if pid == 0 {
        drop(reader);
        let outcome = run_worker_guarded(env, index, true);
        let mut report = format!("ops {}\n{}\n", outcome.ops, outcome.stats.encode());
        if let Some(f) = &outcome.failure {
            report.push_str(&f.replace('\n', " "));
            report.push('\n');
        }
        let _ = std::fs::File::from(writer).write_all(report.as_bytes());
        // SAFETY: leave without running the parent's destructors and atexit handlers again.
        unsafe { libc::_exit(i32::from(outcome.failure.is_some())) };
    }
    Ok(ProcWorker {
        pid,
        report: reader,
    })
}

/// Reads a forked worker's report and reaps it.
fn reap_proc(p: ProcWorker) -> Outcome {
    let mut text = String::new();
    let read = std::fs::File::from(p.report).read_to_string(&mut text);
    let status = wait(p.pid);
    let mut lines = text.lines();
    let ops = lines
        .next()
        .and_then(|l| l.strip_prefix("ops "))
        .and_then(|n| n.parse().ok());
    let stats = lines.next().and_then(Stats::decode);
    let failure = lines.next().map(str::to_string);
    let failure = match (read, status, ops) {
        (Err(e), _, _) => Some(format!("reading its report: {e}")),
        (_, Err(e), _) => Some(format!("waitpid: {}", errno_name(e))),
        (_, _, None) => Some(format!("no report; status {status:?}")),
        _ if stats.is_none() => Some(format!("no statistics in its report {text:?}")),
        (_, Ok(s), Some(_)) if s.exit_status() == Some(i32::from(failure.is_some())) => failure,
        (_, Ok(s), Some(_)) => Some(format!(
            "exit status {s:?} does not match its report {}",
            failure.as_deref().unwrap_or("(passed)")
        )),
    };
    Outcome {
        ops: ops.unwrap_or(0),
        failure,
        stats: stats.unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

/// Waits up to two seconds for the live counters to return to `start`.
fn counters_back(start: (u64, u64)) -> Result<(u64, u64), String> {
    let dev = Device::open().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    loop {
        let v = dev.version().map_err(|e| e.to_string())?;
        let now = (v.live_bytes, v.live_buffers);
        if now == start {
            if t0.elapsed() > Duration::from_millis(50) {
                println!("# counters settled after {} ms", t0.elapsed().as_millis());
            }
            return Ok(now);
        }
        if t0.elapsed() > Duration::from_secs(2) {
            return Err(format!(
                "expected {} bytes in {} buffers, saw {} bytes in {} buffers",
                start.0, start.1, now.0, now.1
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_env(cfg: Config) -> Result<Env, String> {
    let dev = Device::open().map_err(|e| e.to_string())?;
    let version = dev.version().map_err(|e| e.to_string())?;
    if !version.is_compatible() {
        return Err(format!(
            "module ABI {}, this tool speaks {}",
            version.abi_version,
            abi::ABI_VERSION
        ));
    }
    Ok(Env {
        cfg,
        page: dev.page_size(),
        version,
        nodes: online_nodes(),
        privileged: rustix::process::geteuid().is_root(),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match Config::parse(&args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!("# seed {}", cfg.seed);
    let env = match start_env(cfg) {
        Ok(env) => env,
        Err(e) => {
            println!("1..0 # SKIP cannot use /dev/contigmem: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = (env.version.live_bytes, env.version.live_buffers);
    let (threads, procs) = (env.cfg.threads, env.cfg.procs);
    println!("TAP version 13");
    println!("1..{}", threads + procs + 1);
    let t0 = Instant::now();

    // Processes first, while this process has a single thread.
    let forked: Vec<Result<ProcWorker, Errno>> = (threads..threads + procs)
        .map(|w| spawn_proc(&env, w))
        .collect();
    let mut outcomes: Vec<(u64, &str, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let env = &env;
                (w, s.spawn(move || run_worker_guarded(env, w, threads == 1)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(w, h)| {
                let outcome = h.join().unwrap_or(Outcome {
                    ops: 0,
                    failure: Some("thread panicked".to_string()),
                    stats: Stats::default(),
                });
                (w, "thread", outcome)
            })
            .collect()
    });
    for (w, p) in (threads..).zip(forked) {
        let outcome = match p {
            Ok(p) => reap_proc(p),
            Err(e) => Outcome {
                ops: 0,
                failure: Some(format!("fork: {}", errno_name(e))),
                stats: Stats::default(),
            },
        };
        outcomes.push((w, "proc", outcome));
    }

    let seed = env.cfg.seed;
    let mut failed = false;
    let mut total = 0;
    let mut stats = Stats::default();
    for (n, (w, how, o)) in outcomes.iter().enumerate() {
        total += o.ops;
        stats.add(&o.stats);
        let ok = if o.failure.is_some() { "not ok" } else { "ok" };
        println!("{ok} {} - worker {w} ({how}): {} ops", n + 1, o.ops);
        if let Some(f) = &o.failure {
            println!("# seed {seed} worker {w} {f}");
            failed = true;
        }
    }
    let n = outcomes.len() + 1;
    match counters_back(start) {
        Ok((bytes, buffers)) => {
            println!("ok {n} - live counters back to start ({bytes} bytes, {buffers} buffers)")
        }
        Err(e) => {
            println!("not ok {n} - live counters back to start");
            println!("# seed {seed}: live counters after all workers: {e}");
            failed = true;
        }
    }
    println!("# {stats}");
    println!(
        "# {total} ops, seed {seed}, {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
