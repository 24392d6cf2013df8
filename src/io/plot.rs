//! Small PNG plots for training diagnostics, drawn with [`plotters`] into an
//! [`image::RgbImage`]:
//!
//! - [`line_plot`]: lines over a shared x axis with ticks, gridlines, a title,
//!   axis labels and a legend (e.g. discriminator/generator losses over steps);
//! - [`scatter_plot`]: 2-D scatter plots of generated samples over the real
//!   data distribution.
//!
//! Text is set in DejaVu Sans, embedded in the binary
//! (`assets/fonts/DejaVuSans.ttf`, its licence beside it) and rasterized by
//! plotters' pure-Rust `ab_glyph` feature: plots need no system fonts and no
//! font libraries.

use std::sync::OnceLock;

use anyhow::Context;
use image::RgbImage;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line on a line plot.
pub struct Series {
    pub name: String,
    pub color: [u8; 3],
    pub points: Vec<(f64, f64)>,
}

/// A region of the image being drawn.
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// A plot area with data coordinates on both axes.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

const FONT_FAMILY: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// Font size of titles, in pixels.
const TITLE_SIZE: f64 = 20.0;
/// Font size of all other text, in pixels.
const TEXT_SIZE: f64 = 15.0;

const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
const TEXT_COLOR: RGBColor = RGBColor(40, 40, 40);
const AXIS_COLOR: RGBColor = RGBColor(110, 110, 110);
const GRID_COLOR: RGBColor = RGBColor(232, 232, 232);
const BACKGROUND_POINT_COLOR: RGBColor = RGBColor(190, 190, 190);
const FOREGROUND_POINT_COLOR: RGBColor = RGBColor(214, 58, 32);

/// Margin between the image border and anything drawn.
const PAD: i32 = 12;
/// Length of the tick marks outside the plot area; plotters puts the tick
/// labels twice as far from the axis.
const TICK_LEN: i32 = 5;
/// Gap between tick labels and an axis description, and below the legend.
const GAP: i32 = 6;
/// Most ticks per axis.
const TICK_COUNT: usize = 8;
/// Opacity and width of plotted lines, so overlapping series stay visible.
const LINE_ALPHA: f64 = 0.85;
const LINE_WIDTH: u32 = 2;
/// Images narrower or lower than this stay blank: no room for a chart.
const MIN_SIDE: u32 = 120;

/// A line plot: white background, axes with nice tick values, light
/// gridlines, a title at the top, x/y axis labels and a legend row of each
/// named series' color and name above the plot. Non-finite points are
/// skipped; empty series and all-equal values get a padded range. Long
/// x-sorted series (steps) are thinned to what the plot's pixel columns can
/// show; unsorted ones are drawn segment by segment.
pub fn line_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    width: u32,
    height: u32,
) -> anyhow::Result<RgbImage> {
    render(width, height, |root| {
        let area = with_title(root, title)?;
        let (x, y) = data_axes(series);
        let (x_ticks, y_ticks) = (TickLabels::new(x), TickLabels::new(y));
        let y_label_width = y_label_area(&area, &y_ticks, !y_label.is_empty())?;
        let legend_width = area.dim_in_pixel().0 as i32 - y_label_width - 3 * PAD;
        let legend = Legend::layout(&area, series, legend_width)?;
        let (legend_area, chart_area) = area.split_vertically(legend.height());
        legend.draw(&legend_area, PAD + y_label_width)?;
        let mut chart = ChartBuilder::on(&chart_area)
            .margin(PAD)
            .margin_right(2 * PAD)
            .x_label_area_size(x_label_area(&area, !x_label.is_empty())?)
            .y_label_area_size(y_label_width)
            .build_cartesian_2d(x.min..x.max, y.min..y.max)?;
        draw_mesh(&mut chart, (&x_ticks, x_label), (&y_ticks, y_label))?;
        let columns = chart.plotting_area().dim_in_pixel().0 as usize;
        for s in series {
            draw_line_series(&mut chart, s, (x, y), columns)?;
        }
        Ok(())
    })
}

/// A 2-D scatter plot: `background` points (e.g. real data, light grey) then
/// `foreground` points (e.g. generated samples, a strong color) as small
/// filled dots, over the square region `bounds = (min, max)` used for both
/// axes (points outside are not drawn), with axes, ticks and a title.
pub fn scatter_plot(
    title: &str,
    background: &[[f32; 2]],
    foreground: &[[f32; 2]],
    bounds: (f32, f32),
    size: u32,
) -> anyhow::Result<RgbImage> {
    render(size, size, |root| {
        let area = with_title(root, title)?;
        let axis = scatter_axis(bounds);
        let ticks = TickLabels::new(axis);
        let y_label_width = y_label_area(&area, &ticks, false)?;
        let x_label_height = x_label_area(&area, false)?;
        // Margins that leave a square plot area, centered horizontally.
        let (w, h) = area.dim_in_pixel();
        let plot_w = w as i32 - 3 * PAD - y_label_width;
        let plot_h = h as i32 - 2 * PAD - x_label_height;
        let side = plot_w.min(plot_h).max(1);
        let extra_w = (plot_w - side).max(0);
        let mut chart = ChartBuilder::on(&area)
            .margin_top(PAD)
            .margin_bottom(PAD + (plot_h - side).max(0))
            .margin_left(PAD + extra_w / 2)
            .margin_right(2 * PAD + extra_w - extra_w / 2)
            .x_label_area_size(x_label_height)
            .y_label_area_size(y_label_width)
            .build_cartesian_2d(axis.min..axis.max, axis.min..axis.max)?;
        draw_mesh(&mut chart, (&ticks, ""), (&ticks, ""))?;
        let background_radius = (f64::from(size) / 320.0).round().max(1.0) as i32;
        let foreground_radius = (f64::from(size) / 220.0).round().max(2.0) as i32;
        draw_dots(
            &mut chart,
            background,
            axis,
            background_radius,
            BACKGROUND_POINT_COLOR,
        )?;
        draw_dots(
            &mut chart,
            foreground,
            axis,
            foreground_radius,
            FOREGROUND_POINT_COLOR,
        )?;
        Ok(())
    })
}

/// A white `width`×`height` image with whatever `draw` puts on it; images too
/// small for a chart stay blank.
fn render(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<RgbImage> {
    let mut buffer = vec![255_u8; width as usize * height as usize * 3];
    if width >= MIN_SIDE && height >= MIN_SIDE {
        register_embedded_font()?;
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&BACKGROUND)?;
        draw(&root)?;
        root.present()?;
    }
    RgbImage::from_raw(width, height, buffer).context("plot buffer does not match the image size")
}

/// Registers the embedded DejaVu Sans as plotters' sans-serif font, once.
fn register_embedded_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    anyhow::ensure!(
        registered,
        "the embedded plot font is not a readable font file"
    );
    Ok(())
}

fn text_style() -> TextStyle<'static> {
    (FONT_FAMILY, TEXT_SIZE).into_font().color(&TEXT_COLOR)
}

/// Draws `title` centered at the top of `area` and returns the area below it.
fn with_title<'a>(area: &Area<'a>, title: &str) -> anyhow::Result<Area<'a>> {
    if title.is_empty() {
        return Ok(area.clone());
    }
    let style = (FONT_FAMILY, TITLE_SIZE).into_font().color(&TEXT_COLOR);
    Ok(area.margin(PAD / 2, 0, 0, 0).titled(title, style)?)
}

/// Height in pixels of one line of plot text.
fn text_height(area: &Area<'_>) -> anyhow::Result<i32> {
    Ok(area.estimate_text_size("0", &text_style())?.1 as i32)
}

/// Width of the y label area: tick marks, the widest tick label and, if
/// there is one, the rotated axis description.
fn y_label_area(area: &Area<'_>, ticks: &TickLabels, with_desc: bool) -> anyhow::Result<i32> {
    let style = text_style();
    let mut widest = 0;
    for label in ticks.labels() {
        widest = widest.max(area.estimate_text_size(&label, &style)?.0 as i32);
    }
    let desc = if with_desc {
        text_height(area)? + GAP
    } else {
        0
    };
    Ok(2 * TICK_LEN + widest + GAP + desc)
}

/// Height of the x label area: tick marks, tick labels and, if there is one,
/// the axis description.
fn x_label_area(area: &Area<'_>, with_desc: bool) -> anyhow::Result<i32> {
    let line = text_height(area)?;
    let desc = if with_desc { line + GAP } else { 0 };
    Ok(2 * TICK_LEN + line + GAP + desc)
}

/// Gridlines at the ticks, the axes, tick labels and the axis descriptions
/// (empty ones are left out).
fn draw_mesh(
    chart: &mut Chart<'_, '_>,
    (x_ticks, x_desc): (&TickLabels, &str),
    (y_ticks, y_desc): (&TickLabels, &str),
) -> anyhow::Result<()> {
    let format_x = |v: &f64| x_ticks.format(*v);
    let format_y = |v: &f64| y_ticks.format(*v);
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID_COLOR)
        .max_light_lines(0)
        .axis_style(AXIS_COLOR)
        .set_all_tick_mark_size(TICK_LEN)
        .label_style(text_style())
        .axis_desc_style(text_style())
        .x_labels(TICK_COUNT)
        .y_labels(TICK_COUNT)
        .x_label_formatter(&format_x)
        .y_label_formatter(&format_y);
    if !x_desc.is_empty() {
        mesh.x_desc(x_desc);
    }
    if !y_desc.is_empty() {
        mesh.y_desc(y_desc);
    }
    mesh.draw()?;
    Ok(())
}

/// Draws one series as a line; a series with a single visible point as a dot.
fn draw_line_series(
    chart: &mut Chart<'_, '_>,
    series: &Series,
    (x, y): (Axis, Axis),
    columns: usize,
) -> anyhow::Result<()> {
    let [r, g, b] = series.color;
    let style = RGBColor(r, g, b).mix(LINE_ALPHA).stroke_width(LINE_WIDTH);
    // Clamping keeps rasterization bounded for values beyond the axes.
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter(|(px, py)| px.is_finite() && py.is_finite())
        .map(|&(px, py)| (px.clamp(x.min, x.max), py.clamp(y.min, y.max)))
        .collect();
    if let [point] = points[..] {
        chart.draw_series(std::iter::once(Circle::new(point, 3, style.filled())))?;
        return Ok(());
    }
    let sorted = points.windows(2).all(|w| w[0].0 <= w[1].0);
    let points = if sorted && points.len() > 4 * columns {
        thin_to_columns(&points, x, columns)
    } else {
        points
    };
    // One path per segment: plotters outlines a wide path as one polygon
    // with mitred joins, which spike far out of the plot at sharp turns.
    let segments = points
        .windows(2)
        .map(|pair| PathElement::new(pair.to_vec(), style));
    chart.draw_series(segments)?;
    Ok(())
}

/// Filled dots of `radius` pixels at the points inside `axis` on both axes.
fn draw_dots(
    chart: &mut Chart<'_, '_>,
    points: &[[f32; 2]],
    axis: Axis,
    radius: i32,
    color: RGBColor,
) -> anyhow::Result<()> {
    let inside = |v: f64| v >= axis.min && v <= axis.max;
    let dots = points
        .iter()
        .map(|p| (f64::from(p[0]), f64::from(p[1])))
        .filter(|&(x, y)| inside(x) && inside(y))
        .map(|p| Circle::new(p, radius, color.filled()));
    chart.draw_series(dots)?;
    Ok(())
}

/// An x-sorted series reduced to at most four points per pixel column (the
/// column's first, lowest, highest and last, in the order they occur): the
/// same line as the full series at that width, drawn in time proportional
/// to the plot width instead of the series length.
fn thin_to_columns(points: &[(f64, f64)], x: Axis, columns: usize) -> Vec<(f64, f64)> {
    let columns = columns.max(1);
    let column_of = |px: f64| {
        let fraction = (px - x.min) / (x.max - x.min);
        ((fraction * columns as f64) as usize).min(columns - 1)
    };
    let mut thinned = Vec::with_capacity(4 * columns);
    for span in points.chunk_by(|a, b| column_of(a.0) == column_of(b.0)) {
        let (mut lowest, mut highest) = (0, 0);
        for (i, p) in span.iter().enumerate() {
            if p.1 < span[lowest].1 {
                lowest = i;
            }
            if p.1 > span[highest].1 {
                highest = i;
            }
        }
        let (first_extreme, second_extreme) = (lowest.min(highest), lowest.max(highest));
        thinned.extend([
            span[0],
            span[first_extreme],
            span[second_extreme],
            span[span.len() - 1],
        ]);
    }
    thinned
}

/// Legend entries (color swatch and name) laid out left to right in rows
/// that wrap at a maximum width.
struct Legend {
    entries: Vec<LegendEntry>,
    rows: i32,
    row_height: i32,
}

struct LegendEntry {
    name: String,
    color: RGBColor,
    x: i32,
    row: i32,
}

const SWATCH_W: i32 = 22;
const SWATCH_H: i32 = 4;
const SWATCH_GAP: i32 = 6;
const LEGEND_ENTRY_GAP: i32 = 24;

impl Legend {
    /// Lays out the named series, wrapping rows past `max_width`.
    fn layout(area: &Area<'_>, series: &[Series], max_width: i32) -> anyhow::Result<Self> {
        let style = text_style();
        let mut entries = Vec::new();
        let (mut x, mut row) = (0, 0);
        for s in series.iter().filter(|s| !s.name.is_empty()) {
            let text_w = area.estimate_text_size(&s.name, &style)?.0 as i32;
            let width = SWATCH_W + SWATCH_GAP + text_w;
            if x > 0 && x + width > max_width {
                x = 0;
                row += 1;
            }
            let [r, g, b] = s.color;
            entries.push(LegendEntry {
                name: s.name.clone(),
                color: RGBColor(r, g, b),
                x,
                row,
            });
            x += width + LEGEND_ENTRY_GAP;
        }
        let rows = if entries.is_empty() { 0 } else { row + 1 };
        let row_height = text_height(area)? + GAP;
        Ok(Legend {
            entries,
            rows,
            row_height,
        })
    }

    /// Vertical space the legend takes.
    fn height(&self) -> i32 {
        self.rows * self.row_height
    }

    /// Draws the legend into `area`, starting `left` pixels from its edge.
    fn draw(&self, area: &Area<'_>, left: i32) -> anyhow::Result<()> {
        let style = text_style().pos(Pos::new(HPos::Left, VPos::Center));
        for entry in &self.entries {
            let x = left + entry.x;
            let middle = entry.row * self.row_height + self.row_height / 2;
            let swatch_top = middle - SWATCH_H / 2;
            let swatch = [(x, swatch_top), (x + SWATCH_W, swatch_top + SWATCH_H)];
            area.draw(&Rectangle::new(swatch, entry.color.filled()))?;
            let text_x = x + SWATCH_W + SWATCH_GAP;
            area.draw(&Text::new(entry.name.as_str(), (text_x, middle), &style))?;
        }
        Ok(())
    }
}

/// The data range shown along one axis.
#[derive(Clone, Copy, Debug)]
struct Axis {
    min: f64,
    max: f64,
}

/// Largest magnitude an axis reaches, so that its span stays finite.
const AXIS_LIMIT: f64 = 1e300;

/// Ranges of the finite points of all series: x exactly, y with a margin;
/// empty or constant ranges are padded so they have a width.
fn data_axes(series: &[Series]) -> (Axis, Axis) {
    let points = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let mut x = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y = (f64::INFINITY, f64::NEG_INFINITY);
    for &(px, py) in points {
        x = (x.0.min(px), x.1.max(px));
        y = (y.0.min(py), y.1.max(py));
    }
    (padded_axis(x.0, x.1, 0.0), padded_axis(y.0, y.1, 0.05))
}

/// `min..max` (within ±[`AXIS_LIMIT`]) widened by `margin` of its span on
/// each side; an empty range becomes 0..1 and a single value gets a window
/// around it.
fn padded_axis(min: f64, max: f64, margin: f64) -> Axis {
    if !(min.is_finite() && max.is_finite()) || min > max {
        return Axis { min: 0.0, max: 1.0 };
    }
    let (min, max) = (
        min.clamp(-AXIS_LIMIT, AXIS_LIMIT),
        max.clamp(-AXIS_LIMIT, AXIS_LIMIT),
    );
    let span = max - min;
    if span <= f64::EPSILON * min.abs().max(max.abs()) {
        let half = (min.abs() * 0.1).max(0.5);
        return Axis {
            min: min - half,
            max: max + half,
        };
    }
    Axis {
        min: min - span * margin,
        max: max + span * margin,
    }
}

/// The scatter plot's axis from user bounds, tolerating swapped, equal or
/// non-finite bounds.
fn scatter_axis(bounds: (f32, f32)) -> Axis {
    let (a, b) = (f64::from(bounds.0), f64::from(bounds.1));
    padded_axis(a.min(b), a.max(b), 0.0)
}

/// Tick labels for one axis: plotters picks the tick values (1, 2 or 5 ×
/// 10^k apart); they are written with just enough decimals for that
/// spacing, or in scientific notation for very large or very small values.
struct TickLabels {
    values: Vec<f64>,
    step: f64,
    scientific: bool,
}

impl TickLabels {
    fn new(axis: Axis) -> Self {
        let values = RangedCoordf64::from(axis.min..axis.max).key_points(TICK_COUNT);
        let step = match values[..] {
            [first, second, ..] => second - first,
            _ => axis.max - axis.min,
        };
        let magnitude = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        TickLabels {
            scientific: magnitude >= 1e5 || step < 1e-3,
            values,
            step,
        }
    }

    fn format(&self, value: f64) -> String {
        format_tick(value, self.step, self.scientific)
    }

    fn labels(&self) -> Vec<String> {
        self.values.iter().map(|&v| self.format(v)).collect()
    }
}

/// Formats one tick value; `step` decides the precision.
fn format_tick(value: f64, step: f64, scientific: bool) -> String {
    if value.abs() < step * 1e-6 || value == 0.0 {
        return "0".to_string();
    }
    let step_exponent = (step.log10() + 1e-9).floor();
    if scientific {
        let value_exponent = (value.abs().log10() + 1e-9).floor();
        let digits = (value_exponent - step_exponent).clamp(0.0, 4.0) as usize;
        let text = format!("{value:.digits$e}");
        strip_mantissa_zeros(&text)
    } else {
        let decimals = (-step_exponent).max(0.0) as usize;
        format!("{value:.decimals$}")
    }
}

/// Turns e.g. "2.50e6" into "2.5e6" and "2.0e6" into "2e6".
fn strip_mantissa_zeros(text: &str) -> String {
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: [u8; 3] = [230, 20, 20];
    const BLUE: [u8; 3] = [20, 40, 230];

    fn series(name: &str, color: [u8; 3], points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_string(),
            color,
            points,
        }
    }

    fn rgb(color: RGBColor) -> [u8; 3] {
        [color.0, color.1, color.2]
    }

    /// Pixels in `region` close to `color` (line colors are blended).
    fn count_near(img: &RgbImage, color: [u8; 3], region: impl Fn(u32, u32) -> bool) -> usize {
        img.enumerate_pixels()
            .filter(|(x, y, p)| {
                region(*x, *y)
                    && p.0
                        .iter()
                        .zip(color)
                        .all(|(&a, b)| (i32::from(a) - i32::from(b)).abs() <= 45)
            })
            .count()
    }

    /// Pixels in `region` much darker than the background: text, axes.
    fn count_dark(img: &RgbImage, region: impl Fn(u32, u32) -> bool) -> usize {
        img.enumerate_pixels()
            .filter(|(x, y, p)| region(*x, *y) && p.0.iter().all(|&c| c < 160))
            .count()
    }

    /// Where two same-sized images differ.
    fn differences(a: &RgbImage, b: &RgbImage) -> Vec<(u32, u32)> {
        a.enumerate_pixels()
            .zip(b.pixels())
            .filter(|((_, _, p), q)| p != q)
            .map(|((x, y, _), _)| (x, y))
            .collect()
    }

    fn labels(min: f64, max: f64) -> Vec<String> {
        TickLabels::new(Axis { min, max }).labels()
    }

    #[test]
    fn tick_labels_for_known_ranges() {
        assert_eq!(labels(0.0, 1.0), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(labels(0.0, 100.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(-3.0, 47.0), ["0", "10", "20", "30", "40"]);
        assert_eq!(labels(0.0, 4e6), ["0", "1e6", "2e6", "3e6", "4e6"]);
        assert_eq!(labels(-1e-4, 1e-4), ["-1e-4", "-5e-5", "0", "5e-5", "1e-4"]);
    }

    #[test]
    fn tick_values_are_evenly_spaced_inside_the_range() {
        for (min, max) in [
            (0.0, 7.3),
            (0.013, 0.0172),
            (-1e6, 3e6),
            (99.5, 100.5),
            (-0.75, 0.75),
            (1e6, 1e6 + 1e4),
        ] {
            let ticks = TickLabels::new(Axis { min, max });
            assert!(
                (2..=TICK_COUNT).contains(&ticks.values.len()),
                "{min}..{max}: {:?}",
                ticks.values
            );
            for pair in ticks.values.windows(2) {
                let gap = pair[1] - pair[0];
                assert!((gap - ticks.step).abs() <= ticks.step * 1e-6, "{pair:?}");
            }
            for &v in &ticks.values {
                assert!(v >= min && v <= max, "{v} outside {min}..{max}");
            }
            let labels = ticks.labels();
            let distinct: std::collections::HashSet<_> = labels.iter().collect();
            assert_eq!(distinct.len(), labels.len(), "{labels:?}");
        }
    }

    #[test]
    fn tick_precision_follows_the_step() {
        assert_eq!(format_tick(0.5, 0.1, false), "0.5");
        assert_eq!(format_tick(3.0, 1.0, false), "3");
        assert_eq!(format_tick(0.015, 0.005, false), "0.015");
        assert_eq!(format_tick(2.5e6, 5e5, true), "2.5e6");
        assert_eq!(format_tick(-5e-5, 5e-5, true), "-5e-5");
        assert_eq!(format_tick(1e-12, 0.1, false), "0");
    }

    #[test]
    fn axes_are_finite_and_wide_whatever_the_data() {
        for (min, max) in [
            (3.0, 3.0),
            (f64::NAN, 1.0),
            (0.0, f64::INFINITY),
            (2.0, 1.0),
            (-1e308, 1e308),
            (1e15, 1e15 + 1e-3),
            (0.0, 0.0),
        ] {
            let axis = padded_axis(min, max, 0.05);
            assert!(axis.min < axis.max, "{min}..{max}: {axis:?}");
            assert!((axis.max - axis.min).is_finite(), "{min}..{max}: {axis:?}");
            assert!(!TickLabels::new(axis).values.is_empty());
        }
    }

    #[test]
    fn plots_have_the_requested_size() {
        let line = [series("a", RED, vec![(0.0, 0.0), (1.0, 1.0)])];
        for (w, h) in [(900, 500), (400, 300), (120, 120), (119, 400), (400, 119)] {
            let img = line_plot("t", "x", "y", &line, w, h).unwrap();
            assert_eq!(img.dimensions(), (w, h));
        }
        for size in [600, 300, 120, 119] {
            let img = scatter_plot("s", &[[0.0, 0.0]], &[], (-1.0, 1.0), size).unwrap();
            assert_eq!(img.dimensions(), (size, size));
        }
    }

    #[test]
    fn line_plot_draws_series_colors_inside_the_plot_area() {
        let rising = series(
            "rising",
            RED,
            (0..50).map(|i| (i as f64, i as f64)).collect(),
        );
        let falling = series(
            "falling",
            BLUE,
            (0..50).map(|i| (i as f64, 49.0 - i as f64)).collect(),
        );
        let img = line_plot("t", "x", "y", &[rising, falling], 400, 300).unwrap();
        // Well inside the plot area, away from the legend swatches.
        let middle = |x: u32, y: u32| (150..300).contains(&x) && (120..250).contains(&y);
        assert!(count_near(&img, RED, middle) > 20);
        assert!(count_near(&img, BLUE, middle) > 20);
    }

    #[test]
    fn line_plot_draws_title_legend_and_axis_labels() {
        let flat = |name: &str| series(name, RED, (0..50).map(|i| (i as f64, 5.0)).collect());
        let (w, h) = (600, 400);
        let labelled = line_plot(
            "Training losses",
            "step",
            "loss / mean",
            &[flat("D loss")],
            w,
            h,
        )
        .unwrap();
        let bare = line_plot("", "", "", &[flat("")], w, h).unwrap();

        // The title is centered in the top rows.
        let title_band = |x: u32, y: u32| (200..400).contains(&x) && y < PAD as u32 + 20;
        assert!(count_dark(&labelled, title_band) > 30);
        assert_eq!(count_dark(&bare, title_band), 0);
        // The legend swatch sits above the plot; the flat line is mid-height.
        let legend_band = |_: u32, y: u32| y < 60;
        assert!(count_near(&labelled, RED, legend_band) > 20);
        assert_eq!(count_near(&bare, RED, legend_band), 0);
        // The y label is rotated along the left edge, left of any tick label.
        let y_label_strip =
            |x: u32, y: u32| x < (PAD + GAP - 1) as u32 && (h / 3..2 * h / 3).contains(&y);
        assert!(count_dark(&labelled, y_label_strip) > 10);
        assert_eq!(count_dark(&bare, y_label_strip), 0);
        // The x label is centered below the tick labels, alone in its band.
        let x_label_band = |y: u32| y >= h - PAD as u32 - 16;
        let centered = |x: u32| (280..360).contains(&x);
        assert!(count_dark(&labelled, |x, y| x_label_band(y) && centered(x)) > 10);
        assert_eq!(
            count_dark(&labelled, |x, y| x_label_band(y) && !centered(x)),
            0
        );
    }

    #[test]
    fn plots_of_any_size_draw_without_errors() {
        let line = [
            series("a long legend entry", RED, vec![(0.0, 0.0), (1.0, 1.0)]),
            series("another one", BLUE, vec![(0.0, 1e6), (1.0, -1e6)]),
        ];
        let title = "a rather long title for a small plot";
        for w in (100..300).step_by(9) {
            for h in [119, 120, 121, 160, w] {
                line_plot(title, "x label", "y label", &line, w, h).unwrap();
                line_plot("", "", "", &line, h, w).unwrap();
                scatter_plot(title, &[[0.0, 0.0]], &[[0.5, 0.5]], (-1e6, 1e6), w).unwrap();
            }
        }
    }

    #[test]
    fn line_plot_handles_degenerate_inputs() {
        let cases = vec![
            vec![],
            vec![series("empty", RED, vec![])],
            vec![series("one", RED, vec![(1.0, 2.0)])],
            vec![series(
                "flat",
                RED,
                vec![(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)],
            )],
            vec![series("vertical", RED, vec![(3.0, 0.0), (3.0, 1.0)])],
            vec![series(
                "nan",
                RED,
                vec![
                    (0.0, f64::NAN),
                    (f64::INFINITY, 1.0),
                    (1.0, 2.0),
                    (2.0, 1.0),
                ],
            )],
            vec![series("all nan", RED, vec![(f64::NAN, f64::NAN)])],
            vec![series("huge", RED, vec![(0.0, -1e308), (1.0, 1e308)])],
            vec![series("", BLUE, vec![(0.0, 0.0), (1.0, 1.0)])],
        ];
        for case in &cases {
            for (w, h) in [(320, 240), (120, 120), (10, 10), (1, 1), (0, 0)] {
                let img = line_plot("degenerate", "x", "y", case, w, h).unwrap();
                assert_eq!(img.dimensions(), (w, h));
            }
        }
        let one = line_plot("", "", "", &cases[2], 200, 200).unwrap();
        assert!(
            count_near(&one, RED, |_, _| true) > 0,
            "single point is visible"
        );
        let huge = line_plot("", "", "", &cases[7], 200, 200).unwrap();
        assert!(
            count_near(&huge, RED, |_, _| true) > 0,
            "huge values are drawn"
        );
    }

    #[test]
    fn long_series_are_thinned_and_still_drawn() {
        let points = (0..100_000)
            .map(|i| (i as f64, ((i * 7919) % 1000) as f64))
            .collect();
        let img = line_plot(
            "long",
            "step",
            "loss",
            &[series("noise", RED, points)],
            600,
            400,
        )
        .unwrap();
        let inside = |x: u32, y: u32| (100..550).contains(&x) && (80..330).contains(&y);
        assert!(count_near(&img, RED, inside) > 10_000);
        // Nothing spills over the title, the tick labels or the y label.
        let outside = |x: u32, y: u32| !(28..=350).contains(&y) || x < 40;
        assert_eq!(count_near(&img, RED, outside), 0);
    }

    #[test]
    fn thinning_keeps_each_columns_first_last_and_extremes() {
        let points: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (f64::from(i), f64::from((i * 7919) % 1000)))
            .collect();
        let x = Axis {
            min: 0.0,
            max: 9_999.0,
        };
        let columns = 300;
        let thinned = thin_to_columns(&points, x, columns);
        assert!(thinned.len() <= 4 * columns, "{}", thinned.len());
        assert_eq!(thinned.first(), points.first());
        assert_eq!(thinned.last(), points.last());
        assert!(thinned.windows(2).all(|w| w[0].0 <= w[1].0), "order kept");
        let column =
            |p: &(f64, f64)| (p.0 / x.max * columns as f64).min(columns as f64 - 1.0) as usize;
        let extremes = |ps: &[(f64, f64)]| {
            let mut by_column = vec![(f64::INFINITY, f64::NEG_INFINITY); columns];
            for p in ps {
                let e = &mut by_column[column(p)];
                *e = (e.0.min(p.1), e.1.max(p.1));
            }
            by_column
        };
        assert_eq!(extremes(&thinned), extremes(&points));
    }

    #[test]
    fn scatter_draws_each_point_set_where_its_points_are() {
        let empty = scatter_plot("s", &[], &[], (-1.0, 1.0), 300).unwrap();
        let foreground = scatter_plot("s", &[], &[[0.5, 0.5]], (-1.0, 1.0), 300).unwrap();
        let background = scatter_plot("s", &[[-0.5, -0.5]], &[], (-1.0, 1.0), 300).unwrap();
        let upper_right = differences(&foreground, &empty);
        assert!(!upper_right.is_empty());
        assert!(
            upper_right.iter().all(|&(x, y)| x > 150 && y < 150),
            "{upper_right:?}"
        );
        let foreground_color = rgb(FOREGROUND_POINT_COLOR);
        assert!(foreground.pixels().any(|p| p.0 == foreground_color));
        let lower_left = differences(&background, &empty);
        assert!(!lower_left.is_empty());
        assert!(
            lower_left.iter().all(|&(x, y)| x < 150 && y > 150),
            "{lower_left:?}"
        );
        let background_color = rgb(BACKGROUND_POINT_COLOR);
        assert!(
            lower_left
                .iter()
                .any(|&(x, y)| background.get_pixel(x, y).0 == background_color)
        );
    }

    #[test]
    fn scatter_skips_points_outside_bounds() {
        let outside = [
            [2.0_f32, 0.0],
            [0.0, -3.0],
            [f32::NAN, 0.0],
            [0.0, f32::INFINITY],
        ];
        let img = scatter_plot("s", &outside, &outside, (-1.0, 1.0), 200).unwrap();
        let empty = scatter_plot("s", &[], &[], (-1.0, 1.0), 200).unwrap();
        assert_eq!(differences(&img, &empty), []);
    }

    #[test]
    fn scatter_handles_degenerate_bounds_and_sizes() {
        let points = [[0.0_f32, 0.0]];
        for bounds in [
            (1.0, 1.0),
            (1.0, -1.0),
            (f32::NAN, 1.0),
            (0.0, f32::INFINITY),
        ] {
            for size in [0, 1, 20, 120, 128] {
                let img = scatter_plot("d", &points, &points, bounds, size).unwrap();
                assert_eq!(img.dimensions(), (size, size));
            }
        }
    }
}
