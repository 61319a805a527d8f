// SPDX-License-Identifier: GPL-2.0
//! The host side of `make bench`: reads the [`Report`] that `contigmem-bench` printed in the
//! guest (from a JSON file or from the guest's serial log) and writes, into one directory,
//! `report.json`, `report.md` and SVG plots.
//!
//! Everything the markdown says is computed from the report: a section without data says
//! "not measured", and a plot without data is skipped and the markdown says so.

pub mod answers;
pub mod format;
pub mod markdown;
pub mod plot;
pub mod tables;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::schema::{Report, JSON_MARKER};

/// Why a report could not be read or written.
#[derive(Debug)]
pub enum ReportError {
    /// Reading or writing a file failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The input has no `CONTIGMEM-BENCH-JSON` line.
    NoMarker { input: String, lines: usize },
    /// The JSON document does not parse as a [`Report`].
    Json {
        input: String,
        source: serde_json::Error,
    },
    /// Drawing a plot failed.
    Plot { path: PathBuf, message: String },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::NoMarker { input, lines } => write!(
                f,
                "{input}: no line with the marker `{}` in {lines} lines: \
                 did contigmem-bench run to the end in the guest?",
                JSON_MARKER.trim_end()
            ),
            Self::Json { input, source } => {
                write!(f, "{input}: the benchmark JSON does not parse: {source}")
            }
            Self::Plot { path, message } => {
                write!(f, "{}: drawing the plot failed: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Json { source, .. } => Some(source),
            Self::NoMarker { .. } | Self::Plot { .. } => None,
        }
    }
}

/// The result of this module's fallible functions.
pub type Result<T> = std::result::Result<T, ReportError>;

/// Reads a report from `path`: a `.json` file (or any file that starts with '{') holding the
/// report, or a guest log with a `CONTIGMEM-BENCH-JSON` line.
pub fn load(path: &Path) -> Result<Report> {
    let bytes = fs::read(path).map_err(|source| io_error(path, source))?;
    // A serial log may hold bytes that are not UTF-8 (boot noise); they cannot be in the JSON.
    let text = String::from_utf8_lossy(&bytes);
    let name = path.display().to_string();
    let is_json = path.extension().is_some_and(|ext| ext == "json");
    if is_json || text.trim_start().starts_with('{') {
        parse_json(&text, &name)
    } else {
        parse_log(&text, &name)
    }
}

/// Finds the last `CONTIGMEM-BENCH-JSON` line of a guest log (carriage returns removed) and
/// parses the JSON after the marker. `name` names the input in errors.
pub fn parse_log(log: &str, name: &str) -> Result<Report> {
    let json = log
        .lines()
        .rev()
        .find_map(|line| {
            let at = line.find(JSON_MARKER)?;
            Some(line[at + JSON_MARKER.len()..].replace('\r', ""))
        })
        .ok_or_else(|| ReportError::NoMarker {
            input: name.to_string(),
            lines: log.lines().count(),
        })?;
    parse_json(&json, name)
}

/// Parses a report from its JSON text. `name` names the input in errors.
pub fn parse_json(json: &str, name: &str) -> Result<Report> {
    serde_json::from_str(json.trim()).map_err(|source| ReportError::Json {
        input: name.to_string(),
        source,
    })
}

/// What [`render`] wrote.
#[derive(Debug)]
pub struct Rendered {
    /// Every file written, report.json and report.md included.
    pub files: Vec<PathBuf>,
    /// Plots not drawn, with the reason (also said in report.md).
    pub skipped: Vec<(String, String)>,
}

/// Writes `report.json`, the SVG plots and `report.md` into `outdir`, creating it if needed.
pub fn render(report: &Report, outdir: &Path) -> Result<Rendered> {
    fs::create_dir_all(outdir).map_err(|source| io_error(outdir, source))?;
    let mut files = Vec::new();

    let json = serde_json::to_string_pretty(report).map_err(|source| ReportError::Json {
        input: "report".to_string(),
        source,
    })?;
    files.push(write(outdir, "report.json", &(json + "\n"))?);

    let plots = plot::draw_all(report, outdir)?;
    let mut skipped = Vec::new();
    for plot in &plots {
        match &plot.skipped {
            None => files.push(outdir.join(plot.file)),
            Some(reason) => {
                remove_stale(&outdir.join(plot.file))?;
                skipped.push((plot.file.to_string(), reason.clone()));
            }
        }
    }

    files.push(write(
        outdir,
        "report.md",
        &markdown::render(report, &plots),
    )?);
    Ok(Rendered { files, skipped })
}

/// Writes `text` to `outdir/name` and returns the path.
fn write(outdir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = outdir.join(name);
    fs::write(&path, text).map_err(|source| io_error(&path, source))?;
    Ok(path)
}

/// Removes a plot left by an earlier run, so that a skipped plot cannot be taken for this
/// run's.
fn remove_stale(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io_error(path, error)),
        _ => Ok(()),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> ReportError {
    ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_last_marker_line() {
        let log = "boot\r\nCONTIGMEM-BENCH-JSON {\"meta\":{}}\r\n\
                   [ 1.0] CONTIGMEM-BENCH-JSON {\"alloc\":[],\"limits\":[],\"map_touch\":[],\
                   \"transfer\":[],\"one_vs_many\":[],\"meta\":{\"kernel\":\"6.x\",\"cmdline\":\"\",\
                   \"accel\":\"tcg\",\"cpus\":1,\"mem_bytes\":0,\"page_size\":4096,\"abi_version\":1,\
                   \"thp_enabled\":\"\",\"hugetlb_2m_free\":0,\"hugetlb_1g_free\":0,\"dma_heaps\":[],\
                   \"repeats\":1,\"seconds\":1.0,\"notes\":[]}}\r\n";
        let report = parse_log(log, "log").expect("parses");
        assert_eq!(report.meta.kernel, "6.x");
    }

    #[test]
    fn no_marker_is_an_error() {
        let error = parse_log("a\r\nb\r\n", "serial.log").expect_err("no marker");
        assert!(error.to_string().contains("CONTIGMEM-BENCH-JSON"));
    }
}
