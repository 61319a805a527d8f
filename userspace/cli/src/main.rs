// SPDX-License-Identifier: GPL-2.0

//! `contigmem`: the command-line tool for `/dev/contigmem`.

mod alloc;
mod demo;
mod export;
mod failure;
mod info;
mod ls;
mod probe;
mod progress;
mod table;
mod verify;

use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use contigmem::{parse_size, Cache, Device, Kind};
use serde::Serialize;

use crate::failure::Failure;

/// Memory from the kernel's allocators, mapped through /dev/contigmem.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The device to open.
    #[arg(long, global = true, default_value = contigmem::DEFAULT_PATH)]
    device: String,
    /// Print JSON instead of a human-readable report.
    #[arg(long, global = true)]
    json: bool,
    /// Print no progress lines on stderr (errors still go there).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// `--kind`: the kind names, with completion and a clear error.
fn kind_parser() -> impl TypedValueParser<Value = Kind> {
    PossibleValuesParser::new(Kind::ALL.map(Kind::name)).map(|name| {
        name.parse::<Kind>()
            .expect("the possible values are kind names")
    })
}

/// `--cache`: the caching mode names, with completion and a clear error.
fn cache_parser() -> impl TypedValueParser<Value = Cache> {
    PossibleValuesParser::new(Cache::ALL.map(Cache::name)).map(|name| {
        name.parse::<Cache>()
            .expect("the possible values are cache mode names")
    })
}

#[derive(Subcommand)]
enum Command {
    /// Open the device and report the module's ABI version, limits and live buffers, and the
    /// per-kind counters from debugfs (root).
    #[command(after_help = "Examples:\n  contigmem info\n  contigmem info --json")]
    Info,
    /// List every buffer whose memory is held, by any process (from debugfs: root only).
    #[command(
        after_help = "Freed buffers still mapped somewhere are listed until their last munmap.\n\
        Columns: buffer id, allocating process, kind, size, physically contiguous, contiguous\n\
        runs (segments), live mappings, NUMA node, physical address.\n\n\
        Example:\n  \
        $ contigmem ls\n  \
        ID  PID  KIND     SIZE  CONTIG  SEGS  MAPS  NODE  PHYS\n  \
        7   123  huge     64M   yes     1     2     0     0x108000000\n  \
        9   123  vmalloc  8M    no      3     1     0     0x4a2c000\n\n  \
        contigmem ls --json"
    )]
    Ls,
    /// Allocate a buffer, map it, write and read back every page, and report it.
    #[command(after_help = "Sizes take K, M, G suffixes (powers of 1024).\n\n\
        Examples:\n  contigmem alloc --kind huge --size 1G\n  \
        contigmem alloc --kind pages --size 2M --align 2M --hold 60\n  \
        contigmem alloc --kind vmalloc --size 256M --node 1 --strict-node\n  \
        contigmem alloc --kind kmalloc --size 64K --uninit --json\n  \
        contigmem alloc --kind huge --size 64M --cache wc --below 4G --export\n  \
        contigmem alloc --kind pages --size 4M --export --hold 60")]
    Alloc(alloc::Args),
    /// Check through /proc/self/pagemap that a buffer is as contiguous as INFO says (root).
    #[command(
        after_help = "Fails (exit status 1) on any mismatch; frame numbers need root.\n\n\
        Examples:\n  contigmem verify --kind huge --size 64M\n  \
        contigmem verify --kind vmalloc --size 8M --json"
    )]
    Verify {
        /// The allocator.
        #[arg(long, value_parser = kind_parser())]
        kind: Kind,
        /// Bytes to allocate, rounded up to whole pages.
        #[arg(long, value_parser = parse_size)]
        size: u64,
    },
    /// Allocate one buffer of each kind, verify it and print them side by side.
    #[command(
        after_help = "Sizes: kmalloc 1M, kzalloc 1M, vmalloc 64M, pages 4M, huge --huge-size.\n\n\
        Examples:\n  contigmem demo\n  contigmem demo --huge-size 1G --json"
    )]
    Demo {
        /// The size of the huge buffer.
        #[arg(long, value_parser = parse_size, default_value = "64M")]
        huge_size: u64,
    },
}

/// How to print a report.
#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON.
    pub fn print_json(self, value: &impl Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("contigmem: cannot format JSON: {e}"),
        }
    }
}

/// Runs the command: `Ok(false)` when it ran but found a failure.
fn run(cli: &Cli) -> Result<bool, Failure> {
    let out = Output { json: cli.json };
    let open = || Device::open_path(&cli.device);
    Ok(match &cli.command {
        Command::Info => info::run(&cli.device, out).map(|()| true)?,
        Command::Ls => ls::run(out).map(|()| true)?,
        Command::Alloc(args) => alloc::run(&open()?, args, out)?,
        Command::Verify { kind, size } => verify::run(&open()?, *kind, *size, out)?,
        Command::Demo { huge_size } => demo::run(&open()?, *huge_size, out)?,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.quiet {
        progress::silence();
    }
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("contigmem: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `contigmem alloc --kind pages --size 4K` and `extra`, parsed.
    fn alloc(extra: &[&str]) -> Result<alloc::Args, clap::Error> {
        let base = ["contigmem", "alloc", "--kind", "pages", "--size", "4K"];
        let cli = Cli::try_parse_from(base.iter().chain(extra))?;
        match cli.command {
            Command::Alloc(args) => Ok(args),
            _ => panic!("parsed as another command"),
        }
    }

    #[test]
    fn alloc_parses_kinds_and_sizes() {
        let cli = Cli::try_parse_from([
            "contigmem",
            "alloc",
            "--kind",
            "huge",
            "--size",
            "1G",
            "--align",
            "2M",
        ])
        .expect("valid arguments");
        match cli.command {
            Command::Alloc(args) => {
                assert_eq!(
                    (args.kind, args.size, args.align),
                    (Kind::Huge, 1 << 30, Some(2 << 20))
                );
                assert_eq!(args.options().align, 2 << 20);
            }
            _ => panic!("parsed as another command"),
        }
        assert!(
            Cli::try_parse_from(["contigmem", "alloc", "--kind", "slab", "--size", "1M"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["contigmem", "alloc", "--kind", "pages", "--size", "1Q"]).is_err()
        );
    }

    #[test]
    fn strict_node_needs_a_node() {
        assert!(alloc(&["--strict-node"]).is_err());
        let args = alloc(&["--node", "1", "--strict-node"]).expect("valid arguments");
        assert_eq!((args.node, args.strict_node), (Some(1), true));
        let options = args.options();
        assert_eq!((options.node, options.strict_node), (Some(1), true));
    }

    #[test]
    fn alloc_takes_a_cache_mode() {
        for (name, cache) in [("wb", Cache::Wb), ("wc", Cache::Wc), ("uc", Cache::Uc)] {
            let args = alloc(&["--cache", name]).expect("valid arguments");
            assert_eq!((args.cache, args.options().cache), (cache, cache));
        }
        assert_eq!(alloc(&[]).expect("defaults").options().cache, Cache::Wb);
        let err = alloc(&["--cache", "wt"]).err().expect("wt is no mode");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(err.to_string().contains("wb, wc, uc"), "{err}");
        assert!(alloc(&["--cache"]).is_err());
    }

    #[test]
    fn alloc_below_is_the_physical_limit() {
        let args = alloc(&["--below", "4G"]).expect("valid arguments");
        assert_eq!(args.below, Some(4 << 30));
        assert_eq!(args.options().phys_limit, 4 << 30);
        assert_eq!(
            alloc(&["--below", "0x80000000"])
                .expect("hex is a size")
                .options()
                .phys_limit,
            1 << 31
        );
        assert_eq!(alloc(&[]).expect("defaults").options().phys_limit, 0);
        assert!(alloc(&["--below", "4Q"]).is_err());
        assert!(alloc(&["--below"]).is_err());
    }

    #[test]
    fn alloc_export_is_a_switch() {
        assert!(!alloc(&[]).expect("defaults").export);
        let args = alloc(&["--export", "--hold", "5", "--cache", "wc", "--below", "4G"])
            .expect("valid arguments");
        assert!(args.export);
        assert_eq!(args.hold, Some(5));
        assert!(alloc(&["--export", "yes"]).is_err());
    }

    #[test]
    fn ls_takes_json() {
        let cli = Cli::try_parse_from(["contigmem", "ls", "--json"]).expect("valid arguments");
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Ls));
        assert!(Cli::try_parse_from(["contigmem", "ls", "extra"]).is_err());
    }

    #[test]
    fn json_is_global() {
        let cli = Cli::try_parse_from(["contigmem", "demo", "--json"]).expect("valid arguments");
        assert!(cli.json);
        match cli.command {
            Command::Demo { huge_size } => assert_eq!(huge_size, 64 << 20),
            _ => panic!("parsed as another command"),
        }
    }
}
