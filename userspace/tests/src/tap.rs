// SPDX-License-Identifier: GPL-2.0

//! A minimal TAP producer: each test is a closure returning `Err(Fail)` with what was expected
//! and what was seen, or a reason to skip.

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a test did not pass.
#[derive(Debug)]
pub enum Fail {
    /// It failed: what was expected and what was seen.
    Fail(String),
    /// It could not run here: why.
    Skip(String),
}

impl From<String> for Fail {
    fn from(why: String) -> Self {
        Fail::Fail(why)
    }
}

impl From<&str> for Fail {
    fn from(why: &str) -> Self {
        Fail::Fail(why.to_string())
    }
}

/// The outcome of one test.
pub type Outcome = Result<(), Fail>;

/// A reason to skip.
pub fn skip(reason: impl Into<String>) -> Fail {
    Fail::Skip(reason.into())
}

/// Adds what was being done to an error.
pub trait Context<T> {
    fn ctx(self, what: impl Display) -> Result<T, Fail>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn ctx(self, what: impl Display) -> Result<T, Fail> {
        self.map_err(|e| Fail::Fail(format!("{what}: {e}")))
    }
}

/// Whether we run as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Counts and prints TAP lines.
#[derive(Default)]
pub struct Tap {
    run: usize,
    failed: usize,
    skipped: usize,
    /// Only tests whose name contains this run (the first command-line argument).
    filter: Option<String>,
}

impl Tap {
    pub fn new() -> Self {
        println!("TAP version 13");
        Self {
            filter: std::env::args().nth(1),
            ..Self::default()
        }
    }

    /// Whether the filter selects the test `name`.
    fn selected(&self, name: &str) -> bool {
        self.filter.as_deref().map_or(true, |f| name.contains(f))
    }

    /// Runs one test and prints its `ok`/`not ok` line; a panic counts as a failure.
    pub fn test(&mut self, name: &str, f: impl FnOnce() -> Outcome) {
        if !self.selected(name) {
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(Fail::Fail("the test panicked".to_string())));
        self.report(name, outcome);
    }

    /// Runs a test that needs root, or skips it.
    pub fn test_root(&mut self, name: &str, f: impl FnOnce() -> Outcome) {
        if is_root() {
            self.test(name, f);
        } else {
            self.skip(name, "not root");
        }
    }

    /// Reports a test as skipped without running it.
    pub fn skip(&mut self, name: &str, reason: &str) {
        if !self.selected(name) {
            return;
        }
        self.report(name, Err(skip(reason)));
    }

    fn report(&mut self, name: &str, outcome: Outcome) {
        self.run += 1;
        match outcome {
            Ok(()) => println!("ok {} - {name}", self.run),
            Err(Fail::Skip(reason)) => {
                self.skipped += 1;
                println!("ok {} - {name} # SKIP {reason}", self.run);
            }
            Err(Fail::Fail(why)) => {
                self.failed += 1;
                println!("not ok {} - {name}", self.run);
                for line in why.lines() {
                    println!("#   {line}");
                }
            }
        }
    }

    /// Prints the plan and a summary, and returns the process exit status.
    pub fn finish(self) -> i32 {
        println!("1..{}", self.run);
        println!(
            "# {} passed, {} failed, {} skipped",
            self.run - self.failed - self.skipped,
            self.failed,
            self.skipped
        );
        i32::from(self.failed > 0)
    }
}

/// Fails with a message naming what was expected and what was seen.
#[macro_export]
macro_rules! check_eq {
    ($seen:expr, $want:expr, $what:expr) => {{
        let (seen, want) = (&$seen, &$want);
        if seen != want {
            return Err(format!("{}: expected {:?}, saw {:?}", $what, want, seen).into());
        }
    }};
}

/// Fails with `$why` (format arguments) unless `$cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($why:tt)+) => {{
        if !$cond {
            return Err(format!($($why)+).into());
        }
    }};
}
