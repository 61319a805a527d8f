// SPDX-License-Identifier: GPL-2.0
//! The SVG plots of `report.md`, drawn with plotters' own SVG backend.
//!
//! Text is written as SVG `<text>` elements: plotters is built without a font feature, so it
//! only estimates text extents for the layout, and the viewer renders the glyphs. A plot with
//! no data to show is skipped, with the reason, instead of drawn empty.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::answers::{best_transfer, in_order, sorted_unique, SCALE_TARGET};
use super::{format, ReportError, Result};
use crate::schema::{MapTouch, Report};

/// What became of one plot.
#[derive(Debug, Clone)]
pub struct PlotOutcome {
    /// The file name in the output directory.
    pub file: &'static str,
    /// A title for the link.
    pub title: &'static str,
    /// Why the plot was not drawn, when it was not.
    pub skipped: Option<String>,
}

/// A plot's drawing function: draws `report` into `path`, or says why there is nothing to draw.
type DrawFn = fn(&Report, &Path) -> Result<Option<String>>;

/// The plots, in the order the markdown links them.
const PLOTS: [(&str, &str, DrawFn); 5] = [
    ("alloc-latency.svg", "Allocation latency", alloc_latency),
    ("map-touch.svg", "Map and touch: total time", map_touch_time),
    ("faults.svg", "Map and touch: page faults", map_touch_faults),
    ("transfer.svg", "Transfer throughput", transfer),
    ("scale.svg", "ALLOC+FREE cost against live buffers", scale),
];

const FONT: &str = "sans-serif";

/// Draws every plot into `outdir`.
pub fn draw_all(report: &Report, outdir: &Path) -> Result<Vec<PlotOutcome>> {
    PLOTS
        .iter()
        .map(|(file, title, draw)| {
            Ok(PlotOutcome {
                file,
                title,
                skipped: draw(report, &outdir.join(file))?,
            })
        })
        .collect()
}

/// Turns a plotters error into ours, naming the file.
fn plot_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> ReportError {
    let path = path.to_path_buf();
    move |error| ReportError::Plot {
        path: path.clone(),
        message: error.to_string(),
    }
}

/// The colour of series `i`.
fn color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

/// The name of category `value` on an axis whose categories sit at 0, 1, 2...; empty between.
fn category(value: f64, names: &[String]) -> String {
    let index = value.round();
    if (value - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    names.get(index as usize).cloned().unwrap_or_default()
}

/// An axis label for log2(size): "4K", "1G"; empty between powers of two.
fn log2_size_label(exponent: f64) -> String {
    let rounded = exponent.round();
    if (exponent - rounded).abs() > 1e-6 || !(0.0..64.0).contains(&rounded) {
        return String::new();
    }
    format::size_short(1u64 << rounded as u32)
}

/// A log axis from below `low` to above `high` (both > 0), with room for the bar values.
fn log_bounds(low: f64, high: f64) -> (f64, f64) {
    let low = 10f64.powf(low.log10().floor()) / 2.0;
    let high = 10f64.powf(high.log10().ceil()) * 4.0;
    (low, high)
}

/// The smallest and largest of positive `values`.
fn positive_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// One line per kind: (log2 size, median ns) of the sizes with a success.
fn alloc_series(report: &Report) -> Vec<(String, Vec<(f64, f64)>)> {
    in_order(report.alloc.iter().map(|p| p.kind.as_str()))
        .into_iter()
        .map(|kind| {
            let mut points: Vec<(f64, f64)> = report
                .alloc
                .iter()
                .filter(|p| p.kind == kind && p.ok > 0 && p.ns_median > 0 && p.size > 0)
                .map(|p| ((p.size as f64).log2(), p.ns_median as f64))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (kind.to_string(), points)
        })
        .filter(|(_, points)| !points.is_empty())
        .collect()
}

/// 1. Median allocation time against size, log-log, one line per kind.
fn alloc_latency(report: &Report, path: &Path) -> Result<Option<String>> {
    let series = alloc_series(report);
    let all = || series.iter().flat_map(|(_, points)| points.iter());
    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (
        positive_range(all().map(|p| p.0)),
        positive_range(all().map(|p| p.1)),
    ) else {
        return Ok(Some("no allocation succeeded".to_string()));
    };
    let err = plot_error(path);
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (x_lo, x_hi) = (x_lo.floor() - 0.5, x_hi.ceil() + 0.5);
    let (y_lo, y_hi) = log_bounds(y_lo, y_hi);
    let mut chart = ChartBuilder::on(&root)
        .caption("Allocation latency (median, log-log)", (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_labels(((x_hi - x_lo) as usize + 2).min(40))
        .x_label_formatter(&|x| log2_size_label(*x))
        .y_label_formatter(&|y| format::duration_short(*y))
        .x_desc("size")
        .y_desc("median in-kernel allocation time")
        .draw()
        .map_err(&err)?;
    for (i, (kind, points)) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
            .map_err(&err)?
            .label(kind.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .map_err(&err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(None)
}

/// One horizontal bar of a panel.
struct Bar {
    label: String,
    /// None when the method did not run.
    value: Option<f64>,
    /// The value as text, at the end of the bar.
    text: String,
}

/// One panel of horizontal bars: the methods at one size.
struct Panel {
    title: String,
    bars: Vec<Bar>,
    /// A reference line: (value, legend).
    baseline: Option<(f64, String)>,
}

/// Horizontal log-scale bars, one panel per size.
struct BarChart<'a> {
    path: PathBuf,
    caption: &'a str,
    x_desc: &'a str,
    x_label: fn(f64) -> String,
    panels: Vec<Panel>,
}

/// The map-and-touch panels, one per size, one bar per method.
fn map_touch_panels(
    report: &Report,
    value: impl Fn(&MapTouch) -> f64,
    text: impl Fn(&MapTouch) -> String,
    baseline: impl Fn(&[&MapTouch]) -> Option<(f64, String)>,
) -> Vec<Panel> {
    sorted_unique(report.map_touch.iter().map(|m| m.size))
        .into_iter()
        .map(|size| {
            let rows: Vec<&MapTouch> = report.map_touch.iter().filter(|m| m.size == size).collect();
            let bars = rows
                .iter()
                .map(|m| Bar {
                    label: m.label.clone(),
                    value: m.ok.then(|| value(m)),
                    text: if m.ok { text(m) } else { "failed".to_string() },
                })
                .collect();
            Panel {
                title: format::size(size),
                bars,
                baseline: baseline(&rows),
            }
        })
        .collect()
}

/// 2a. Total map-and-touch time per method, per size.
fn map_touch_time(report: &Report, path: &Path) -> Result<Option<String>> {
    let panels = map_touch_panels(
        report,
        |m| m.total_ns as f64,
        |m| format::duration(m.total_ns),
        |_| None,
    );
    BarChart {
        path: path.to_path_buf(),
        caption: "Map and touch every page: total time (alloc + map + touch), log scale",
        x_desc: "total time",
        x_label: format::duration_short,
        panels,
    }
    .draw()
}

/// 2b. Page faults per method, per size, with the 4 KiB baseline.
fn map_touch_faults(report: &Report, path: &Path) -> Result<Option<String>> {
    let panels = map_touch_panels(
        report,
        |m| m.faults as f64,
        |m| format::plural(m.faults, "fault"),
        |rows| {
            let faults = rows.first()?.faults_4k;
            Some((faults as f64, format!("4 KiB baseline: {faults} faults")))
        },
    );
    BarChart {
        path: path.to_path_buf(),
        caption: "Map and touch every page: page faults, log scale",
        x_desc: "page faults (minor + major)",
        x_label: |v| format!("{v}"),
        panels,
    }
    .draw()
}

impl BarChart<'_> {
    /// Draws the panels stacked, or says why not.
    fn draw(&self) -> Result<Option<String>> {
        if !self
            .panels
            .iter()
            .flat_map(|p| &p.bars)
            .any(|b| b.value.is_some())
        {
            return Ok(Some("no method ran".to_string()));
        }
        let values = self.panels.iter().flat_map(|p| {
            let bars = p.bars.iter().filter_map(|b| b.value);
            bars.chain(p.baseline.iter().map(|b| b.0))
        });
        let Some((lo, hi)) = positive_range(values) else {
            return Ok(Some("no method produced a value".to_string()));
        };
        let range = log_bounds(lo, hi);
        let err = plot_error(&self.path);
        let most = self.panels.iter().map(|p| p.bars.len()).max().unwrap_or(1);
        let height = (self.panels.len() * (110 + 34 * most)) as u32 + 40;
        let root = SVGBackend::new(&self.path, (1000, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let body = root.titled(self.caption, (FONT, 20)).map_err(&err)?;
        for (panel, area) in self
            .panels
            .iter()
            .zip(body.split_evenly((self.panels.len(), 1)))
        {
            self.draw_panel(panel, &area, range)?;
        }
        root.present().map_err(&err)?;
        Ok(None)
    }

    fn draw_panel(
        &self,
        panel: &Panel,
        area: &DrawingArea<SVGBackend<'_>, Shift>,
        (lo, hi): (f64, f64),
    ) -> Result<()> {
        let err = plot_error(&self.path);
        let n = panel.bars.len();
        // The first bar on top: category j from the bottom is bar n - 1 - j.
        let names: Vec<String> = panel.bars.iter().rev().map(|b| b.label.clone()).collect();
        let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0);
        let x_label = self.x_label;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, (FONT, 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size((longest * 8 + 20) as u32)
            .build_cartesian_2d((lo..hi).log_scale(), -0.5..(n as f64 - 0.5))
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(2 * n + 1)
            .y_label_formatter(&|y| category(*y, &names))
            .x_label_formatter(&|x| x_label(*x))
            .x_desc(self.x_desc)
            .draw()
            .map_err(&err)?;
        let text = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, bar) in panel.bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let end = bar.value.filter(|v| *v > lo).unwrap_or(lo);
            if end > lo {
                let rect = Rectangle::new([(lo, y - 0.35), (end, y + 0.35)], color(i).filled());
                chart.draw_series(std::iter::once(rect)).map_err(&err)?;
            }
            let label = Text::new(bar.text.clone(), (end * 1.15, y), text.clone());
            chart.draw_series(std::iter::once(label)).map_err(&err)?;
        }
        if let Some((value, legend)) = &panel.baseline {
            let line = vec![(*value, -0.5), (*value, n as f64 - 0.5)];
            chart
                .draw_series(LineSeries::new(line, RED.stroke_width(2)))
                .map_err(&err)?
                .label(legend.as_str())
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(&err)?;
        }
        Ok(())
    }
}

/// The transfer methods in the order they are drawn; others follow as found.
const TRANSFER_METHODS: [&str; 5] = ["mmap-read", "mmap-write", "pread", "pwrite", "read"];

/// 3. Best MiB/s per method, grouped by method, one bar per kind.
fn transfer(report: &Report, path: &Path) -> Result<Option<String>> {
    let found = in_order(report.transfer.iter().map(|t| t.method.as_str()));
    let mut methods: Vec<&str> = TRANSFER_METHODS
        .into_iter()
        .filter(|m| found.contains(m))
        .collect();
    methods.extend(found.iter().filter(|m| !TRANSFER_METHODS.contains(m)));
    let kinds = in_order(report.transfer.iter().map(|t| t.kind.as_str()));
    let rate = |kind, method| best_transfer(&report.transfer, kind, method).map(|t| t.mib_per_s);
    let Some((_, top)) = positive_range(report.transfer.iter().map(|t| t.mib_per_s)) else {
        return Ok(Some("no transfer was measured".to_string()));
    };
    let err = plot_error(path);
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let names: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Transfer throughput (best of the repeats and chunk sizes)",
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..(methods.len() as f64 - 0.5), 0.0..top * 1.15)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * methods.len() + 1)
        .x_label_formatter(&|x| category(*x, &names))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("method")
        .y_desc("MiB/s")
        .draw()
        .map_err(&err)?;
    let width = 0.8 / kinds.len() as f64;
    for (k, kind) in kinds.iter().enumerate() {
        let c = color(k);
        let bars = methods.iter().enumerate().filter_map(|(m, method)| {
            let left = m as f64 - 0.4 + k as f64 * width;
            let value = rate(kind, method)?;
            Some(Rectangle::new(
                [(left, 0.0), (left + width * 0.9, value)],
                c.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(&err)?
            .label(*kind)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(None)
}

/// 4. ALLOC+FREE time of a pair against live buffers (log x), with the target line.
fn scale(report: &Report, path: &Path) -> Result<Option<String>> {
    let points: Vec<(f64, f64)> = report
        .scale
        .points
        .iter()
        .filter(|p| p.ok && p.live > 0 && p.pair_ns > 0.0 && p.pair_ns.is_finite())
        .map(|p| (p.live as f64, p.pair_ns))
        .collect();
    let Some((x_lo, x_hi)) = positive_range(points.iter().map(|p| p.0)) else {
        return Ok(Some("no many-buffer point was measured".to_string()));
    };
    // The target: the cost at the first point, times SCALE_TARGET, when the first point ran.
    let first = report.scale.points.first().filter(|p| p.ok);
    let target = first
        .filter(|p| p.pair_ns > 0.0)
        .map(|p| (p.pair_ns * SCALE_TARGET, p.live));
    let top = points
        .iter()
        .map(|p| p.1)
        .chain(target.map(|t| t.0))
        .fold(0.0, f64::max);
    // Room for the first and last points' labels: half and twice them on the log axis.
    let (x_lo, x_hi) = (x_lo / 2.0, x_hi * 2.0);
    let err = plot_error(path);
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "ALLOC+FREE of a 4 KiB KMALLOC buffer against live buffers (log x)",
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..top * 1.25)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format::count_short(*x))
        .y_label_formatter(&|y| format::duration_short(*y))
        .x_desc("live buffers")
        .y_desc("ALLOC+FREE a pair (median round)")
        .draw()
        .map_err(&err)?;
    let c = color(0);
    chart
        .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
        .map_err(&err)?
        .label("ALLOC+FREE a pair")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    chart
        .draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))
        .map_err(&err)?;
    let text = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(
            points
                .iter()
                .map(|&(x, y)| Text::new(format::duration_short(y), (x, y * 1.04), text.clone())),
        )
        .map_err(&err)?;
    if let Some((value, live)) = target {
        let line = vec![(x_lo, value), (x_hi, value)];
        chart
            .draw_series(LineSeries::new(line, RED.stroke_width(2)))
            .map_err(&err)?
            .label(format!(
                "target: {SCALE_TARGET}× the cost at {} live buffers",
                format::count(live)
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels() {
        let names = vec!["a".to_string(), "b".to_string()];
        assert_eq!(category(1.0, &names), "b");
        assert_eq!(category(0.5, &names), "");
        assert_eq!(category(2.0, &names), "");
        assert_eq!(log2_size_label(12.0), "4K");
        assert_eq!(log2_size_label(30.0), "1G");
        assert_eq!(log2_size_label(12.5), "");
    }
}
