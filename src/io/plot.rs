//! Loss curves from `loss_history.csv`: a PNG or SVG chart, or a text chart for
//! a terminal. The PNG's font is compiled into the binary, so plotting needs no
//! system fonts or graphics libraries.

use std::f64::consts::LN_2;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use thiserror::Error;

use crate::train::history::Row;

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("{path}: no rows to plot yet (the history holds only its header)")]
    Empty { path: PathBuf },
    #[error("{path}: unknown image format {ext:?}; use a .png or .svg file name")]
    Format { path: PathBuf, ext: String },
    #[error("{path}: size {width}x{height} is too small; use at least {MIN_WIDTH}x{MIN_HEIGHT}")]
    Size {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

pub const MIN_WIDTH: u32 = 200;
pub const MIN_HEIGHT: u32 = 150;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// The format a file name asks for, by its extension.
    pub fn of(path: &Path) -> Result<ImageFormat, PlotError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "png" => Ok(ImageFormat::Png),
            "svg" => Ok(ImageFormat::Svg),
            _ => Err(PlotError::Format {
                path: path.to_path_buf(),
                ext,
            }),
        }
    }
}

/// The three curves of a history, as (iteration, nats/char) points; rows whose
/// value is not finite are left out.
struct Curves {
    loss: Vec<(f64, f64)>,
    smooth: Vec<(f64, f64)>,
    val: Vec<(f64, f64)>,
}

impl Curves {
    fn of(rows: &[Row]) -> Curves {
        let pick = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|r| {
                    f(r).filter(|v| v.is_finite())
                        .map(|v| (r.iteration as f64, v))
                })
                .collect()
        };
        Curves {
            loss: pick(&|r| Some(r.loss)),
            smooth: pick(&|r| Some(r.smooth_loss)),
            val: pick(&|r| r.val_loss),
        }
    }

    fn all(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.loss.iter().chain(&self.smooth).chain(&self.val)
    }

    /// (x range, y range) covering every point, the y range padded by `pad` of its
    /// height above and below.
    fn bounds(&self, pad: f64) -> ((f64, f64), (f64, f64)) {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in self.all() {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x1 <= x0 {
            (x0, x1) = (x0 - 1.0, x1 + 1.0);
        }
        let pad = ((y1 - y0) * pad).max(1e-3);
        ((x0, x1), ((y0 - pad).max(0.0), y1 + pad))
    }
}

static FONT: Once = Once::new();

/// Draws the history's curves into `out` (PNG or SVG by extension), `width` x
/// `height` pixels, and writes it atomically.
pub fn render(
    rows: &[Row],
    history: &Path,
    out: &Path,
    width: u32,
    height: u32,
) -> Result<(), PlotError> {
    let format = ImageFormat::of(out)?;
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return Err(PlotError::Size {
            path: out.to_path_buf(),
            width,
            height,
        });
    }
    let curves = Curves::of(rows);
    if curves.smooth.is_empty() && curves.loss.is_empty() {
        return Err(PlotError::Empty {
            path: history.to_path_buf(),
        });
    }
    // both backends measure text with this font (the SVG names it, the PNG draws it)
    FONT.call_once(|| {
        // the font is a constant that parses; failing here would be a build problem
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
    let title = history
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = match format {
        ImageFormat::Svg => {
            let mut svg = String::new();
            draw(
                SVGBackend::with_string(&mut svg, (width, height)),
                &curves,
                &title,
            )?;
            svg.into_bytes()
        }
        ImageFormat::Png => {
            let mut rgb = vec![0u8; width as usize * height as usize * 3];
            draw(
                BitMapBackend::with_buffer(&mut rgb, (width, height)),
                &curves,
                &title,
            )?;
            encode_png(&rgb, width, height)
                .map_err(|e| PlotError::Draw(format!("encoding the PNG: {e}")))?
        }
    };
    crate::io::fsutil::write_atomic(out, &bytes).map_err(|cause| PlotError::Io {
        path: out.to_path_buf(),
        cause,
    })
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(bytes)
}

fn draw<B: DrawingBackend>(backend: B, curves: &Curves, title: &str) -> Result<(), PlotError> {
    let err = |e: DrawingAreaErrorKind<B::ErrorType>| PlotError::Draw(e.to_string());
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let ((x0, x1), (y0, y1)) = curves.bounds(0.05);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?
        // the right-hand axis reads the same curves in bits per character
        .set_secondary_coord(x0..x1, y0 / LN_2..y1 / LN_2);
    chart
        .configure_mesh()
        .x_desc("iteration")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("loss (nats/char)")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc("bits/char")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;

    let light = RGBColor(150, 180, 225);
    let smooth = RGBColor(20, 70, 170);
    let val = RGBColor(210, 80, 30);
    chart
        .draw_series(LineSeries::new(
            curves.loss.iter().copied(),
            light.stroke_width(1),
        ))
        .map_err(err)?
        .label("loss")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], light.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            curves.smooth.iter().copied(),
            smooth.stroke_width(2),
        ))
        .map_err(err)?
        .label("smooth loss")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], smooth.stroke_width(2)));
    if !curves.val.is_empty() {
        chart
            .draw_series(LineSeries::new(
                curves.val.iter().copied(),
                val.stroke_width(2),
            ))
            .map_err(err)?
            .label("validation loss")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], val.stroke_width(2)));
        chart
            .draw_series(curves.val.iter().map(|&p| Circle::new(p, 3, val.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// A text chart of smooth loss (`*`) and validation loss (`o`) against
/// iteration, `width` x `height` characters of plotting area, with axis labels
/// and a summary line under it.
pub fn terminal(rows: &[Row], width: usize, height: usize) -> String {
    let curves = Curves::of(rows);
    if curves.smooth.is_empty() {
        return "no rows yet\n".to_string();
    }
    let (width, height) = (width.max(10), height.max(4));
    let shown = Curves {
        loss: Vec::new(),
        smooth: curves.smooth.clone(),
        val: curves.val.clone(),
    };
    let ((x0, x1), (y0, y1)) = shown.bounds(0.0);
    let col = |x: f64| (((x - x0) / (x1 - x0)) * (width - 1) as f64).round() as usize;
    let line = |y: f64| (((y1 - y) / (y1 - y0)) * (height - 1) as f64).round() as usize;
    let mut grid = vec![vec![' '; width]; height];
    for &(x, y) in &shown.smooth {
        grid[line(y).min(height - 1)][col(x).min(width - 1)] = '*';
    }
    for &(x, y) in &shown.val {
        grid[line(y).min(height - 1)][col(x).min(width - 1)] = 'o';
    }
    let mut out = String::new();
    for (i, row) in grid.iter().enumerate() {
        let y = y1 - (y1 - y0) * i as f64 / (height - 1) as f64;
        let label = if i == 0 || i == height - 1 || i == height / 2 {
            format!("{y:7.3}")
        } else {
            String::new()
        };
        out += &format!(
            "{label:>7} |{}\n",
            row.iter().collect::<String>().trim_end()
        );
    }
    out += &format!("{:>7} +{}\n", "", "-".repeat(width));
    let (first, last) = (format!("{x0:.0}"), format!("{x1:.0}"));
    let gap = (width + 1).saturating_sub(first.len() + last.len());
    out += &format!("{:>8}{first}{}{last}  iteration\n", "", " ".repeat(gap));
    let last_row = &rows[rows.len() - 1];
    out += &format!(
        "nats/char; * smooth loss {:.4} ({:.4} bits/char) at iteration {}",
        last_row.smooth_loss,
        last_row.smooth_loss / LN_2,
        last_row.iteration
    );
    if let Some(&(x, v)) = shown.val.last() {
        out += &format!(
            ", o validation {v:.4} ({:.4} bits/char) at {x:.0}",
            v / LN_2
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: u64) -> Vec<Row> {
        (1..=n)
            .map(|i| {
                let s = 4.0 / (1.0 + i as f64 / 10.0);
                Row {
                    iteration: i * 100,
                    loss: s + 0.1,
                    smooth_loss: s,
                    chars_per_sec: 1e4,
                    elapsed_s: i as f64,
                    val_loss: (i % 5 == 0).then_some(s + 0.05),
                }
            })
            .collect()
    }

    #[test]
    fn format_comes_from_the_extension() {
        assert_eq!(
            ImageFormat::of(Path::new("a/loss.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert_eq!(
            ImageFormat::of(Path::new("loss.svg")).unwrap(),
            ImageFormat::Svg
        );
        let err = ImageFormat::of(Path::new("loss.jpg"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"jpg\"") && err.contains(".png or .svg"),
            "{err}"
        );
    }

    #[test]
    fn terminal_chart_puts_the_falling_curve_high_on_the_left_and_low_on_the_right() {
        let text = terminal(&rows(40), 40, 10);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10 + 3, "{text}");
        let first_star = |l: &str| l.find('*');
        // top line: the curve starts there (first column); bottom line: it ends there
        assert_eq!(first_star(lines[0]), Some(9), "{text}");
        assert!(
            lines[9].trim_end().ends_with('*') || lines[9].trim_end().ends_with('o'),
            "{text}"
        );
        assert!(text.contains('o'), "validation points are drawn: {text}");
        assert!(lines[12].contains("at iteration 4000"), "{text}");
    }

    #[test]
    fn empty_history_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = render(&[], Path::new("h.csv"), &dir.path().join("x.png"), 400, 300).unwrap_err();
        assert!(
            err.to_string().contains("h.csv") && err.to_string().contains("no rows"),
            "{err}"
        );
    }
}
