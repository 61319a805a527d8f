// SPDX-License-Identifier: GPL-2.0

//! Progress lines on stderr for steps that take more than a second:
//! `contigmem: touching 1G... 512M/1G`. On a terminal the line is redrawn in place (`\r`) at
//! most every half second; otherwise a plain line is printed when the step passes a second and
//! every few seconds after. Nothing goes to stdout, so `--json` output stays clean.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use contigmem::format_size;

/// Steps shorter than this print nothing.
const QUIET: Duration = Duration::from_secs(1);
/// How often a terminal line is redrawn.
const TTY_EVERY: Duration = Duration::from_millis(500);
/// How often a plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Set by `--quiet`: no progress lines at all.
static SILENT: AtomicBool = AtomicBool::new(false);

/// Turns progress lines off (`--quiet`): for a caller that must not write while the step runs,
/// such as a test at its memory cgroup's limit, where a write to a pipe would be charged to the
/// cgroup and could wake its OOM killer.
pub fn silence() {
    SILENT.store(true, Ordering::Relaxed);
}

/// The progress of one step.
pub struct Progress {
    what: String,
    /// The step's size in bytes, or `None` for a step that only reports time.
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
    tty: bool,
    /// The length of the line last drawn on the terminal, to blank what is left of it.
    drawn: usize,
}

impl Progress {
    /// Starts step `what` (`touching 1G`) of `total` bytes.
    pub fn new(what: impl Into<String>, total: Option<u64>) -> Self {
        Self {
            what: what.into(),
            total,
            start: Instant::now(),
            last: None,
            tty: std::io::stderr().is_terminal(),
            drawn: 0,
        }
    }

    /// Reports `done` bytes done (ignored for steps without a size).
    pub fn update(&mut self, done: u64) {
        let now = Instant::now();
        if now - self.start < QUIET {
            return;
        }
        let every = if self.tty { TTY_EVERY } else { PLAIN_EVERY };
        if self.last.is_some_and(|last| now - last < every) {
            return;
        }
        self.last = Some(now);
        let line = line(&self.what, self.total.map(|t| (done, t)), now - self.start);
        self.draw(&line, false);
    }

    /// Ends the step: prints a last line saying how long it took, if anything was shown.
    pub fn finish(mut self) {
        if self.last.is_some() {
            let line = format!(
                "contigmem: {}... done in {:.1} s",
                self.what,
                self.start.elapsed().as_secs_f64()
            );
            self.draw(&line, true);
        }
    }

    fn draw(&mut self, line: &str, last: bool) {
        if SILENT.load(Ordering::Relaxed) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            let pad = self.drawn.saturating_sub(line.len());
            self.drawn = line.len();
            write!(err, "\r{line}{:pad$}{}", "", if last { "\n" } else { "" })
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// The text of a progress line.
fn line(what: &str, done: Option<(u64, u64)>, elapsed: Duration) -> String {
    match done {
        Some((done, total)) => format!(
            "contigmem: {what}... {}/{}",
            format_size(done),
            format_size(total)
        ),
        None => format!("contigmem: {what}... {:.1} s", elapsed.as_secs_f64()),
    }
}

/// Runs `f` (one blocking call, such as an ALLOC ioctl), showing `what` with the time spent
/// if it takes more than a second.
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut progress = Progress::new(what, None);
            // Wakes up every tick until `f` returns (the sender is dropped).
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                done_rx.recv_timeout(Duration::from_millis(100))
            {
                progress.update(0);
            }
            progress.finish();
        });
        let result = f();
        drop(done_tx);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_bytes_or_time() {
        assert_eq!(
            line("touching 1G", Some((512 << 20, 1 << 30)), Duration::ZERO),
            "contigmem: touching 1G... 512M/1G"
        );
        assert_eq!(
            line("allocating 1G huge", None, Duration::from_millis(2345)),
            "contigmem: allocating 1G huge... 2.3 s"
        );
    }

    #[test]
    fn quick_steps_print_nothing() {
        let mut p = Progress::new("touching 4K", Some(4096));
        p.update(4096);
        assert!(p.last.is_none());
        assert_eq!(timed("allocating", || 7), 7);
    }
}
