// SPDX-License-Identifier: GPL-2.0
//! `contigmem-report <input> <outdir>`: the host side of `make bench`.
//!
//! `<input>` is the benchmark's JSON (a `.json` file) or the guest's serial log, in which the
//! last `CONTIGMEM-BENCH-JSON` line is taken. Writes `report.json`, `report.md` and the SVG
//! plots into `<outdir>`.

use std::path::PathBuf;
use std::process::ExitCode;

use contigmem_bench::report;

const USAGE: &str = "usage: contigmem-report <input.json | guest.log> <outdir>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let [input, outdir] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(&PathBuf::from(input), &PathBuf::from(outdir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("contigmem-report: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &std::path::Path, outdir: &std::path::Path) -> report::Result<()> {
    let data = report::load(input)?;
    let rendered = report::render(&data, outdir)?;
    for file in &rendered.files {
        println!("wrote {}", file.display());
    }
    for (file, reason) in &rendered.skipped {
        println!("skipped {file}: {reason}");
    }
    Ok(())
}
