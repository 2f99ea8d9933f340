//! The two figures of an evaluation report.

use std::path::Path;

use c3_core::eval::Report;
use c3_core::published;
use plotters::prelude::*;

use crate::{FAMILY, Result, canvas, err};

/// Precision (%) against compression ratio (Qwen tokens / N, log axis): our
/// buckets (char and word precision) and the paper's published points.
pub fn precision_vs_compression(report: &Report, n_latents: usize, path: &Path) -> Result<()> {
    let root = canvas(path);
    let ours: Vec<(f64, f64, f64)> = report
        .buckets
        .iter()
        .filter(|b| b.passages > 0 && b.mean_compression > 0.0)
        .map(|b| {
            (
                b.mean_compression,
                100.0 * b.char_precision,
                100.0 * b.word_precision,
            )
        })
        .collect();
    let published = published::series();
    let xs = ours
        .iter()
        .map(|p| p.0)
        .chain(published.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
    let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Reconstruction precision vs compression (ours: N = {n_latents})"),
            (FAMILY, 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d((lo * 0.8).log10()..(hi * 1.25).log10(), 0f64..101f64)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        // The x axis is log10 of the ratio, labelled back in ratios: plotters' own
        // log scale labels only powers of ten and their multiples.
        .x_labels(12)
        .x_label_formatter(&|x| format!("{:.1}x", 10f64.powf(*x)))
        .x_desc("compression ratio (text Qwen tokens / latent vectors), log scale")
        .y_desc("precision (%)")
        .label_style((FAMILY, 15))
        .draw()
        .map_err(|e| err(path, e))?;
    let colours = [BLUE, CYAN, GREEN, MAGENTA, RGBColor(150, 90, 0)];
    for ((name, pts), c) in published.iter().zip(colours) {
        let pts: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (x.log10(), 100.0 * y)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.mix(0.6).stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(|e| err(path, e))?;
    }
    for (label, pick, c) in [
        ("ours: char precision (measured)", 1, RED),
        ("ours: word precision (measured)", 2, BLACK),
    ] {
        let pts: Vec<(f64, f64)> = ours
            .iter()
            .map(|p| (p.0.log10(), if pick == 1 { p.1 } else { p.2 }))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))
            .map_err(|e| err(path, e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        chart
            .draw_series(
                pts.into_iter()
                    .map(|p| TriangleMarker::new(p, 7, c.filled())),
            )
            .map_err(|e| err(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// Error rate (%) per decile of position in the reference text, over all passages.
pub fn error_by_position(report: &Report, path: &Path) -> Result<()> {
    let root = canvas(path);
    let top = report.decile_errors.iter().fold(0f64, |a, &e| a.max(e)) * 100.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Where errors fall: error rate by position ({} passages)",
                report.overall.passages
            ),
            (FAMILY, 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..10f64, 0f64..(top * 1.15).max(1.0))
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(10)
        .x_label_formatter(&|x| format!("{}%", 10 * (*x as usize)))
        .x_desc("position in the reference text (decile start)")
        .y_desc("reference characters in error (%)")
        .label_style((FAMILY, 15))
        .draw()
        .map_err(|e| err(path, e))?;
    let bars = report.decile_errors.iter().enumerate().map(|(d, &e)| {
        Rectangle::new(
            [(d as f64 + 0.1, 0.0), (d as f64 + 0.9, 100.0 * e)],
            RED.mix(0.7).filled(),
        )
    });
    chart.draw_series(bars).map_err(|e| err(path, e))?;
    if !report.window_boundaries.is_empty() {
        // A rug of window boundaries under the bars: errors that cluster at window
        // starts or ends would show as bars peaking where the marks crowd.
        let h = (top * 1.15).max(1.0) * 0.04;
        chart
            .draw_series(
                report.window_boundaries.iter().map(|&b| {
                    PathElement::new(vec![(10.0 * b, 0.0), (10.0 * b, h)], BLUE.mix(0.5))
                }),
            )
            .map_err(|e| err(path, e))?
            .label(format!(
                "window boundaries ({})",
                report.window_boundaries.len()
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y - 6), (x, y + 6)], BLUE));
        chart
            .configure_series_labels()
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))
}

#[cfg(test)]
mod tests {
    use c3_core::eval::{PassageResult, Report, parse_buckets};

    fn report() -> Report {
        let rs: Vec<PassageResult> = [
            ("the cat sat on the mat", "the cat sat on a hat"),
            ("abc def", "abc def"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (r, o))| PassageResult::score(i, "t".into(), r, o, 6 + i * 10, 6 + i * 10, 4))
        .collect();
        Report::build(&rs, &parse_buckets("0-32:8").unwrap())
    }

    #[test]
    fn writes_both_pngs_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b] = crate::write_report_plots(&report(), 4, dir.path()).unwrap();
        for p in [a, b] {
            let bytes = std::fs::read(&p).unwrap();
            // PNG signature, a real picture (not an empty canvas stub), no temp file left.
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", p.display());
            assert!(
                bytes.len() > 10_000,
                "{} is only {} bytes",
                p.display(),
                bytes.len()
            );
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn unwritable_target_is_an_error_naming_the_file() {
        let e = crate::write_report_plots(&report(), 4, std::path::Path::new("/nonexistent/dir"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("/nonexistent/dir/precision_vs_compression"),
            "{e}"
        );
    }
}
