//! `--plot`: an SVG chart of a [`Report`], drawn with `plotters` (SVG backend only, no font
//! libraries: the viewer renders the text).
//!
//! One column per message size, one row per metric (round trip p50, p99, p99.9, msgs/s,
//! GB/s), one horizontal bar per transport on a logarithmic axis, coloured by family:
//! kernel transports blue, floors grey, mapipc channels orange.
//!
//! The strings the chart takes from the report (CPU model, kernel release, date, transport
//! and mode names) are escaped: markup characters by plotters, control characters (which
//! XML 1.0 cannot carry) as Rust's `escape_debug` writes them, so a hostile report still
//! gives a well-formed SVG.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::report::{Metric, Report, FUTEX_FLOOR, KERNEL_TRANSPORTS, RING_FLOOR, SPIN_FLOOR};

/// Why the chart could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The report has no rows.
    #[error("cannot plot {path}: the report has no measurements")]
    Empty {
        /// The output file.
        path: String,
    },
    /// Drawing or writing the file failed.
    #[error("cannot write the chart {path}: {message}")]
    Draw {
        /// The output file.
        path: String,
        /// What plotters reported.
        message: String,
    },
}

const KERNEL_COLOR: RGBColor = RGBColor(0x3b, 0x6e, 0xb5);
const FLOOR_COLOR: RGBColor = RGBColor(0x90, 0x90, 0x90);
const CHANNEL_COLOR: RGBColor = RGBColor(0xe6, 0x7e, 0x22);

fn color(transport: &str) -> RGBColor {
    if KERNEL_TRANSPORTS.contains(&transport) {
        KERNEL_COLOR
    } else if [SPIN_FLOOR, FUTEX_FLOOR, RING_FLOOR].contains(&transport) {
        FLOOR_COLOR
    } else {
        CHANNEL_COLOR
    }
}

/// `1.5k`, `20M`, `0.5`, `0.012`: about two significant digits.
fn si(v: f64) -> String {
    if v > 0.0 && v < 1.0 {
        let decimals = (1 - v.log10().floor() as i32).clamp(1, 9) as usize;
        let s = format!("{v:.decimals$}");
        return s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let (d, s) = if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if x >= 10.0 || x == x.round() {
        format!("{x:.0}{s}")
    } else {
        format!("{x:.1}{s}")
    }
}

/// `text` from the report (a CPU model, kernel release, date, transport or mode name: a
/// report may come from [`Report::from_json`]) as the chart draws it. plotters escapes the
/// markup characters (`<`, `>`, `&`, `"`, `'`) of every text it writes, but passes the
/// others through, and XML 1.0 cannot carry most control characters even escaped (a
/// document holding one is not well-formed), nor U+FFFE and U+FFFF. Those, and every other
/// control character (newline, DEL and C1 included), are written as Rust's `escape_debug`
/// writes them (`\n`, `\u{1b}`), as the CLI shows names.
fn svg_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

const PANELS: [(Metric, &str); 5] = [
    (Metric::RttP50Ns, "round trip p50, ns"),
    (Metric::RttP99Ns, "round trip p99, ns"),
    (Metric::RttP999Ns, "round trip p99.9, ns"),
    (Metric::ThroughputMsgsPerS, "throughput, msgs/s"),
    (Metric::ThroughputGbPerS, "throughput, GB/s"),
];

/// Writes an SVG chart of `report` to `path` (see [`render_svg`] to get the SVG text and
/// write it yourself).
///
/// # Errors
/// [`PlotError::Empty`] for a report without rows, [`PlotError::Draw`] when the chart cannot
/// be drawn or the file cannot be written.
///
/// # Example
/// ```
/// use mapipc_bench::{write_svg, Machine, Metric, Report, Row};
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("bench.svg");
/// let machine = Machine::detect(None, std::time::Duration::from_secs(1), std::time::Duration::ZERO);
/// let rows = Metric::ALL
///     .iter()
///     .map(|&metric| Row { transport: "uds".into(), mode: None, size: 64, metric, value: 1000.0 })
///     .collect();
/// write_svg(&Report { machine, rows }, &path)?;
/// assert!(std::fs::read_to_string(&path)?.contains("<svg"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_svg(report: &Report, path: impl AsRef<Path>) -> Result<(), PlotError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let svg = render_svg(report, &name)?;
    std::fs::write(path, svg).map_err(|e| PlotError::Draw {
        path: name,
        message: e.to_string(),
    })
}

/// The SVG text of the chart [`write_svg`] writes, for a caller that writes the file itself
/// (`mapipc bench` opens it without blocking and refuses anything but a regular file).
/// `name` is what the errors call the chart (its file, say); the chart does not show it.
/// Strings from the report are escaped (markup characters, and control characters as
/// `escape_debug` writes them), so a hostile report still gives a well-formed SVG.
///
/// # Errors
/// [`PlotError::Empty`] for a report without rows, [`PlotError::Draw`] when drawing fails.
///
/// # Example
/// ```
/// use mapipc_bench::{render_svg, Machine, Metric, Report, Row};
/// let machine = Machine::detect(None, std::time::Duration::from_secs(1), std::time::Duration::ZERO);
/// let rows = Metric::ALL
///     .iter()
///     .map(|&metric| Row { transport: "uds".into(), mode: None, size: 64, metric, value: 1000.0 })
///     .collect();
/// let svg = render_svg(&Report { machine, rows }, "bench.svg")?;
/// assert!(svg.starts_with("<svg"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_svg(report: &Report, name: &str) -> Result<String, PlotError> {
    let sizes = report.sizes();
    let transports = report.transports();
    if sizes.is_empty() || transports.is_empty() {
        return Err(PlotError::Empty {
            path: name.to_string(),
        });
    }
    let mut svg = String::new();
    draw(report, &mut svg, &sizes, &transports).map_err(|message| PlotError::Draw {
        path: name.to_string(),
        message,
    })?;
    Ok(svg)
}

fn draw(
    report: &Report,
    svg: &mut String,
    sizes: &[usize],
    transports: &[(String, Option<String>)],
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let n = transports.len();
    let labels: Vec<String> = transports
        .iter()
        .map(|(t, m)| match m {
            Some(m) => svg_text(&format!("{t} ({m})")),
            None => svg_text(t),
        })
        .collect();
    let panel_w = 400u32;
    let panel_h = 70 + 20 * n as u32;
    let width = panel_w * sizes.len() as u32;
    let height = 50 + panel_h * PANELS.len() as u32;
    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let m = &report.machine;
    let title = svg_text(&format!(
        "mapipc bench: {}, {} CPUs, Linux {}, {}",
        m.cpu_model, m.cores, m.kernel, m.date
    ));
    let (header, root) = root.split_vertically(50);
    header
        .draw(&Text::new(title, (10, 8), ("sans-serif", 18)))
        .map_err(|e| err(&e))?;
    let legend = [
        (KERNEL_COLOR, "kernel transport"),
        (FLOOR_COLOR, "raw shared-memory floor"),
        (CHANNEL_COLOR, "mapipc channel"),
    ];
    let mut x = 10;
    for (c, what) in legend {
        header
            .draw(&Rectangle::new([(x, 32), (x + 12, 44)], c.filled()))
            .map_err(|e| err(&e))?;
        header
            .draw(&Text::new(what, (x + 16, 31), ("sans-serif", 13)))
            .map_err(|e| err(&e))?;
        x += 30 + 7 * what.len() as i32;
    }
    let areas = root.split_evenly((PANELS.len(), sizes.len()));
    for (row, (metric, what)) in PANELS.iter().enumerate() {
        for (col, &size) in sizes.iter().enumerate() {
            let area = &areas[row * sizes.len() + col];
            let values: Vec<Option<f64>> = transports
                .iter()
                .map(|(t, mode)| {
                    report
                        .value(t, mode.as_deref(), size, *metric)
                        .filter(|v| v.is_finite() && *v > 0.0)
                })
                .collect();
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let caption = format!("{what}, {size} B");
            if present.is_empty() {
                area.titled(&caption, ("sans-serif", 14))
                    .map_err(|e| err(&e))?;
                continue;
            }
            let lo = present.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
            let hi = present.iter().copied().fold(0.0, f64::max) * 6.0;
            let mut chart = ChartBuilder::on(area)
                .caption(&caption, ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(22)
                .y_label_area_size(130)
                .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
                .map_err(|e| err(&e))?;
            // Segment i from the bottom holds transport n-1-i, so the first one is on top.
            let label_of = |v: &SegmentValue<usize>| match v {
                SegmentValue::CenterOf(i) if *i < n => labels[n - 1 - i].clone(),
                _ => String::new(),
            };
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n)
                .y_label_formatter(&label_of)
                .x_labels(6)
                .x_label_formatter(&|v| si(*v))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| err(&e))?;
            chart
                .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                    let v = (*v)?;
                    let y = n - 1 - i;
                    let mut bar = Rectangle::new(
                        [
                            (lo, SegmentValue::Exact(y)),
                            (v, SegmentValue::Exact(y + 1)),
                        ],
                        color(&transports[i].0).filled(),
                    );
                    bar.set_margin(3, 3, 0, 0);
                    Some(bar)
                }))
                .map_err(|e| err(&e))?;
            chart
                .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                    let v = (*v)?;
                    let y = n - 1 - i;
                    Some(Text::new(
                        si(v),
                        (v * 1.1, SegmentValue::CenterOf(y)),
                        ("sans-serif", 11).into_font().color(&BLACK),
                    ))
                }))
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_prefixes() {
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(20e6), "20M");
        assert_eq!(si(0.5), "0.5");
        assert_eq!(si(3.0), "3");
        assert_eq!(si(0.012), "0.012");
        assert_eq!(si(0.05), "0.05");
    }

    /// Checks what an XML 1.0 parser would refuse in the SVG text plotters writes: a
    /// character XML cannot carry, an `&` that starts no entity, a `<` that starts no tag,
    /// unbalanced tags.
    fn assert_well_formed(svg: &str) {
        if let Some(c) = svg
            .chars()
            .find(|&c| (c.is_control() && c != '\n') || c == '\u{fffe}' || c == '\u{ffff}')
        {
            panic!("{c:?} in the SVG");
        }
        for (i, _) in svg.match_indices('&') {
            let rest = &svg[i + 1..];
            assert!(
                ["lt;", "gt;", "amp;", "quot;", "apos;", "#"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "a bare & at {}",
                &svg[i..(i + 20).min(svg.len())]
            );
        }
        let mut open: Vec<&str> = Vec::new();
        for piece in svg.split('<').skip(1) {
            let tag = &piece[..piece.find('>').expect("an unclosed tag")];
            if let Some(closing) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(closing.trim()), "unbalanced </{closing}>");
            } else if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                assert!(tag.len() > 1, "an empty tag");
            } else {
                let n = tag.split_whitespace().next().unwrap_or("");
                assert!(
                    n.starts_with(|c: char| c.is_ascii_alphabetic()),
                    "a < that starts no tag: <{tag}>"
                );
                open.push(n);
            }
        }
        assert!(open.is_empty(), "unclosed {open:?}");
    }

    /// Every string the chart takes from the report (CPU model, kernel, date, transport and
    /// mode names; a report may come from `Report::from_json`) reaches the SVG escaped,
    /// control characters included, and the document stays well-formed. (The `name` given
    /// to `render_svg`, the `--plot` path, is not drawn: only errors quote it.)
    #[test]
    fn hostile_report_strings_are_escaped_in_the_svg() {
        let hostile = "<script>&\"'\u{1}\u{1b}[31m\u{7f}\u{9b}\u{fffe}\n";
        let mut machine = crate::Machine::detect(
            None,
            std::time::Duration::from_secs(1),
            std::time::Duration::ZERO,
        );
        machine.cpu_model = format!("cpu{hostile}");
        machine.kernel = format!("kernel{hostile}");
        machine.date = format!("date{hostile}");
        machine.hostname = Some(format!("host{hostile}"));
        let rows = [("uds", None), ("spsc", Some(format!("mode{hostile}")))]
            .into_iter()
            .flat_map(|(t, mode)| {
                Metric::ALL.iter().map(move |&metric| crate::Row {
                    transport: format!("{t}{hostile}"),
                    mode: mode.clone(),
                    size: 64,
                    metric,
                    value: 1000.0,
                })
            })
            .collect();
        let report = Report { machine, rows };
        let svg = render_svg(&report, &format!("{hostile}.svg")).unwrap();
        assert_well_formed(&svg);
        assert!(!svg.contains("<script"), "{svg}");
        let escaped = "&lt;script&gt;&amp;&quot;&apos;\\u{1}\\u{1b}[31m\\u{7f}\\u{9b}\\u{fffe}\\n";
        for what in ["cpu", "kernel", "date", "uds", "spsc", "mode"] {
            assert!(
                svg.contains(&format!("{what}{escaped}")),
                "{what} is not escaped: {svg}"
            );
        }
    }
}
