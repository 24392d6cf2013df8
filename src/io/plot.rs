//! Small PNG plots for training diagnostics, drawn straight into an
//! [`image::RgbImage`]:
//!
//! - [`line_plot`]: line plots with nice axis ticks, gridlines, a title, axis
//!   labels and a legend (e.g. discriminator/generator losses over steps);
//! - [`scatter_plot`]: 2-D scatter plots of generated samples over the real
//!   data distribution;
//! - [`draw_text`]: text in an embedded 5×7 bitmap font.
//!
//! Everything, the font included, is hand-written on purpose: it keeps the
//! dependencies lean (only `image` with PNG support), with no plotting crate,
//! no font files and no system libraries.

use image::{Rgb, RgbImage};

/// One line on a line plot.
pub struct Series {
    pub name: String,
    pub color: [u8; 3],
    pub points: Vec<(f64, f64)>,
}

const WHITE: [u8; 3] = [255, 255, 255];
const TEXT_COLOR: [u8; 3] = [40, 40, 40];
const AXIS_COLOR: [u8; 3] = [110, 110, 110];
const GRID_COLOR: [u8; 3] = [232, 232, 232];
const BACKGROUND_POINT_COLOR: [u8; 3] = [190, 190, 190];
const FOREGROUND_POINT_COLOR: [u8; 3] = [214, 58, 32];

/// Width of a glyph in font pixels.
const GLYPH_W: u32 = 5;
/// Height of a glyph in font pixels.
const GLYPH_H: u32 = 7;
/// Rows a glyph may use: the 7-row line plus one descender row.
const GLYPH_ROWS: u32 = GLYPH_H + 1;
/// Horizontal distance from one glyph to the next, in font pixels.
const GLYPH_ADVANCE: u32 = GLYPH_W + 1;
/// Scale of all text in the plots.
const TEXT_SCALE: u32 = 2;
/// Height of plot text in image pixels.
const TEXT_H: i32 = (GLYPH_H * TEXT_SCALE) as i32;

/// Margin between the image border and anything drawn.
const PAD: i32 = 12;
/// Length of the tick marks outside the plot area.
const TICK_LEN: i32 = 5;
/// Gap between a tick mark and its label.
const TICK_LABEL_GAP: i32 = 4;
/// Roughly how many ticks each axis gets.
const TICK_TARGET: usize = 5;
/// Upper bound on ticks per axis, whatever floating-point rounding does.
const MAX_TICKS: u32 = 64;
/// Opacity of plotted lines, so overlapping series stay visible.
const LINE_ALPHA: f64 = 0.85;

/// A line plot: white background, axes with ~5 "nice" tick values on each axis
/// (labelled with the bitmap font), a title at the top, x/y axis labels, a
/// legend with each series' color and name. Non-finite points are skipped;
/// empty series or all-equal values must not panic (pad the range).
/// Long series (100k points) must draw quickly (decimate per pixel column, or similar).
pub fn line_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    width: u32,
    height: u32,
) -> RgbImage {
    let mut img = RgbImage::from_pixel(width, height, Rgb(WHITE));
    let (x_axis, y_axis) = data_axes(series);
    let x_ticks = nice_ticks(x_axis.min, x_axis.max, TICK_TARGET);
    let y_ticks = nice_ticks(y_axis.min, y_axis.max, TICK_TARGET);

    let y_label_space = if y_label.is_empty() { 0 } else { TEXT_H + 10 };
    let left = PAD + y_label_space + max_text_width(&y_ticks.labels()) + TICK_LABEL_GAP + TICK_LEN;
    let right = width as i32 - PAD - 16;
    let title_bottom = if title.is_empty() {
        PAD
    } else {
        PAD + TEXT_H + 10
    };
    let legend = Legend::layout(series, right - left);
    let top = title_bottom + legend.height() + 6;
    let x_label_space = if x_label.is_empty() { 0 } else { TEXT_H + 8 };
    let bottom = height as i32 - PAD - x_label_space - TEXT_H - TICK_LABEL_GAP - TICK_LEN;
    let frame = Frame {
        area: Rect::from_edges(left, top, right, bottom),
        x: x_axis,
        y: y_axis,
    };

    draw_grid(&mut img, &frame, &x_ticks, &y_ticks);
    for s in series {
        draw_series(&mut img, &frame, s);
    }
    draw_axes(&mut img, &frame, &x_ticks, &y_ticks);
    draw_centered_text(&mut img, width as i32 / 2, PAD, title, TEXT_COLOR);
    legend.draw(&mut img, left, title_bottom);
    let area = frame.area;
    let x_label_y = height as i32 - PAD - TEXT_H;
    draw_centered_text(&mut img, area.center_x(), x_label_y, x_label, TEXT_COLOR);
    let y_label_x = PAD;
    let y_label_bottom = area.center_y() + text_width(y_label, TEXT_SCALE) / 2;
    draw_text_vertical(&mut img, y_label_x, y_label_bottom, y_label, TEXT_COLOR);
    img
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
) -> RgbImage {
    let mut img = RgbImage::from_pixel(size, size, Rgb(WHITE));
    let axis = scatter_axis(bounds);
    let ticks = nice_ticks(axis.min, axis.max, TICK_TARGET);

    let top = if title.is_empty() {
        PAD
    } else {
        PAD + TEXT_H + 10
    };
    let left = PAD + max_text_width(&ticks.labels()) + TICK_LABEL_GAP + TICK_LEN;
    let right_margin = PAD + 12;
    let bottom_margin = PAD + TEXT_H + TICK_LABEL_GAP + TICK_LEN;
    let available_w = size as i32 - left - right_margin;
    let available_h = size as i32 - top - bottom_margin;
    let side = available_w.min(available_h).max(1);
    let left = left + (available_w - side).max(0) / 2;
    let frame = Frame {
        area: Rect {
            left,
            top,
            width: side,
            height: side,
        },
        x: axis,
        y: axis,
    };

    draw_grid(&mut img, &frame, &ticks, &ticks);
    let background_radius = (f64::from(size) / 320.0).max(1.0);
    let foreground_radius = (f64::from(size) / 220.0).max(1.5);
    draw_dots(
        &mut img,
        &frame,
        background,
        background_radius,
        BACKGROUND_POINT_COLOR,
    );
    draw_dots(
        &mut img,
        &frame,
        foreground,
        foreground_radius,
        FOREGROUND_POINT_COLOR,
    );
    draw_axes(&mut img, &frame, &ticks, &ticks);
    draw_centered_text(&mut img, size as i32 / 2, PAD, title, TEXT_COLOR);
    img
}

/// Renders `text` at (x, y) (top-left) in `color`, scale `scale` (1 = 5×7 px glyphs + 1 px spacing).
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, text: &str, color: [u8; 3], scale: u32) {
    let scale = scale.max(1) as i32;
    let advance = GLYPH_ADVANCE as i32 * scale;
    for (i, c) in text.chars().enumerate() {
        let glyph_x = x + i as i32 * advance;
        for_each_glyph_pixel(c, |gx, gy| {
            fill_rect(
                img,
                glyph_x + gx * scale,
                y + gy * scale,
                scale,
                scale,
                color,
            );
        });
    }
}

/// Renders `text` rotated 90° counter-clockwise (reading bottom to top), with
/// the glyph tops facing left: `x` is the left edge, `bottom` the start.
fn draw_text_vertical(img: &mut RgbImage, x: i32, bottom: i32, text: &str, color: [u8; 3]) {
    let scale = TEXT_SCALE as i32;
    let advance = GLYPH_ADVANCE as i32 * scale;
    for (i, c) in text.chars().enumerate() {
        let glyph_bottom = bottom - i as i32 * advance;
        for_each_glyph_pixel(c, |gx, gy| {
            let px = x + gy * scale;
            let py = glyph_bottom - (gx + 1) * scale;
            fill_rect(img, px, py, scale, scale, color);
        });
    }
}

/// Draws plot-sized text horizontally centered on `center_x`.
fn draw_centered_text(img: &mut RgbImage, center_x: i32, y: i32, text: &str, color: [u8; 3]) {
    let x = center_x - text_width(text, TEXT_SCALE) / 2;
    draw_text(img, x, y, text, color, TEXT_SCALE);
}

/// Width in pixels of `text` drawn at `scale` (no trailing spacing).
fn text_width(text: &str, scale: u32) -> i32 {
    let chars = text.chars().count() as i32;
    if chars == 0 {
        return 0;
    }
    (chars * GLYPH_ADVANCE as i32 - 1) * scale.max(1) as i32
}

/// Widest of `texts` at plot text scale.
fn max_text_width(texts: &[String]) -> i32 {
    texts
        .iter()
        .map(|t| text_width(t, TEXT_SCALE))
        .max()
        .unwrap_or(0)
}

/// Calls `f(column, row)` for each lit pixel of the glyph for `c`; characters
/// outside the font draw as an empty box.
fn for_each_glyph_pixel(c: char, mut f: impl FnMut(i32, i32)) {
    match glyph(c) {
        Some(columns) => {
            for (gx, bits) in columns.iter().enumerate() {
                for gy in 0..GLYPH_ROWS {
                    if bits & (1 << gy) != 0 {
                        f(gx as i32, gy as i32);
                    }
                }
            }
        }
        None => {
            let (w, h) = (GLYPH_W as i32, GLYPH_H as i32);
            for gx in 0..w {
                for gy in 0..h {
                    if gx == 0 || gy == 0 || gx == w - 1 || gy == h - 1 {
                        f(gx, gy);
                    }
                }
            }
        }
    }
}

/// Column bitmaps (bit 0 = top row) of the glyph for `c`, if the font has it.
fn glyph(c: char) -> Option<&'static [u8; 5]> {
    let code = c as u32;
    if (32..=126).contains(&code) {
        Some(&FONT[(code - 32) as usize])
    } else {
        None
    }
}

/// The classic 5×7 LCD font for ASCII 32..=126: five columns per glyph,
/// bit 0 of each column is the top row. Lowercase g, j, p, q and y use bit 7
/// for a descender one row below the 7-row line (into the line spacing).
const FONT: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // !
    [0x00, 0x07, 0x00, 0x07, 0x00], // "
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // #
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // $
    [0x23, 0x13, 0x08, 0x64, 0x62], // %
    [0x36, 0x49, 0x55, 0x22, 0x50], // &
    [0x00, 0x05, 0x03, 0x00, 0x00], // '
    [0x00, 0x1C, 0x22, 0x41, 0x00], // (
    [0x00, 0x41, 0x22, 0x1C, 0x00], // )
    [0x14, 0x08, 0x3E, 0x08, 0x14], // *
    [0x08, 0x08, 0x3E, 0x08, 0x08], // +
    [0x00, 0x50, 0x30, 0x00, 0x00], // ,
    [0x08, 0x08, 0x08, 0x08, 0x08], // -
    [0x00, 0x60, 0x60, 0x00, 0x00], // .
    [0x20, 0x10, 0x08, 0x04, 0x02], // /
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // 0
    [0x00, 0x42, 0x7F, 0x40, 0x00], // 1
    [0x42, 0x61, 0x51, 0x49, 0x46], // 2
    [0x21, 0x41, 0x45, 0x4B, 0x31], // 3
    [0x18, 0x14, 0x12, 0x7F, 0x10], // 4
    [0x27, 0x45, 0x45, 0x45, 0x39], // 5
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // 6
    [0x01, 0x71, 0x09, 0x05, 0x03], // 7
    [0x36, 0x49, 0x49, 0x49, 0x36], // 8
    [0x06, 0x49, 0x49, 0x29, 0x1E], // 9
    [0x00, 0x36, 0x36, 0x00, 0x00], // :
    [0x00, 0x56, 0x36, 0x00, 0x00], // ;
    [0x08, 0x14, 0x22, 0x41, 0x00], // <
    [0x14, 0x14, 0x14, 0x14, 0x14], // =
    [0x00, 0x41, 0x22, 0x14, 0x08], // >
    [0x02, 0x01, 0x51, 0x09, 0x06], // ?
    [0x32, 0x49, 0x79, 0x41, 0x3E], // @
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // A
    [0x7F, 0x49, 0x49, 0x49, 0x36], // B
    [0x3E, 0x41, 0x41, 0x41, 0x22], // C
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // D
    [0x7F, 0x49, 0x49, 0x49, 0x41], // E
    [0x7F, 0x09, 0x09, 0x09, 0x01], // F
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // G
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // H
    [0x00, 0x41, 0x7F, 0x41, 0x00], // I
    [0x20, 0x40, 0x41, 0x3F, 0x01], // J
    [0x7F, 0x08, 0x14, 0x22, 0x41], // K
    [0x7F, 0x40, 0x40, 0x40, 0x40], // L
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // M
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // N
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // O
    [0x7F, 0x09, 0x09, 0x09, 0x06], // P
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // Q
    [0x7F, 0x09, 0x19, 0x29, 0x46], // R
    [0x46, 0x49, 0x49, 0x49, 0x31], // S
    [0x01, 0x01, 0x7F, 0x01, 0x01], // T
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // U
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // V
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // W
    [0x63, 0x14, 0x08, 0x14, 0x63], // X
    [0x07, 0x08, 0x70, 0x08, 0x07], // Y
    [0x61, 0x51, 0x49, 0x45, 0x43], // Z
    [0x00, 0x7F, 0x41, 0x41, 0x00], // [
    [0x02, 0x04, 0x08, 0x10, 0x20], // \
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ]
    [0x04, 0x02, 0x01, 0x02, 0x04], // ^
    [0x40, 0x40, 0x40, 0x40, 0x40], // _
    [0x00, 0x01, 0x02, 0x04, 0x00], // `
    [0x20, 0x54, 0x54, 0x54, 0x78], // a
    [0x7F, 0x48, 0x44, 0x44, 0x38], // b
    [0x38, 0x44, 0x44, 0x44, 0x20], // c
    [0x38, 0x44, 0x44, 0x48, 0x7F], // d
    [0x38, 0x54, 0x54, 0x54, 0x18], // e
    [0x08, 0x7E, 0x09, 0x01, 0x02], // f
    [0x18, 0xA4, 0xA4, 0xA4, 0x7C], // g
    [0x7F, 0x08, 0x04, 0x04, 0x78], // h
    [0x00, 0x44, 0x7D, 0x40, 0x00], // i
    [0x40, 0x80, 0x84, 0x7D, 0x00], // j
    [0x7F, 0x10, 0x28, 0x44, 0x00], // k
    [0x00, 0x41, 0x7F, 0x40, 0x00], // l
    [0x7C, 0x04, 0x18, 0x04, 0x78], // m
    [0x7C, 0x08, 0x04, 0x04, 0x78], // n
    [0x38, 0x44, 0x44, 0x44, 0x38], // o
    [0xFC, 0x24, 0x24, 0x24, 0x18], // p
    [0x18, 0x24, 0x24, 0x24, 0xFC], // q
    [0x7C, 0x08, 0x04, 0x04, 0x08], // r
    [0x48, 0x54, 0x54, 0x54, 0x20], // s
    [0x04, 0x3F, 0x44, 0x40, 0x20], // t
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // u
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // v
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // w
    [0x44, 0x28, 0x10, 0x28, 0x44], // x
    [0x1C, 0xA0, 0xA0, 0xA0, 0x7C], // y
    [0x44, 0x64, 0x54, 0x4C, 0x44], // z
    [0x00, 0x08, 0x36, 0x41, 0x00], // {
    [0x00, 0x00, 0x7F, 0x00, 0x00], // |
    [0x00, 0x41, 0x36, 0x08, 0x00], // }
    [0x08, 0x04, 0x08, 0x10, 0x08], // ~
];

/// Sets one pixel, ignoring coordinates outside the image.
fn put_pixel(img: &mut RgbImage, x: i32, y: i32, color: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(color));
    }
}

/// Fills a `w`×`h` rectangle with top-left (x, y), clipped to the image.
fn fill_rect(img: &mut RgbImage, x: i32, y: i32, w: i32, h: i32, color: [u8; 3]) {
    for py in y..y + h {
        for px in x..x + w {
            put_pixel(img, px, py, color);
        }
    }
}

/// Mixes `color` over `base` with opacity `alpha` in 0..=1.
fn blend(base: [u8; 3], color: [u8; 3], alpha: f64) -> [u8; 3] {
    let mix = |b: u8, c: u8| (f64::from(b) * (1.0 - alpha) + f64::from(c) * alpha).round() as u8;
    [
        mix(base[0], color[0]),
        mix(base[1], color[1]),
        mix(base[2], color[2]),
    ]
}

/// An axis-aligned rectangle of image pixels.
#[derive(Clone, Copy, Debug)]
struct Rect {
    left: i32,
    top: i32,
    width: i32,
    height: i32,
}

impl Rect {
    /// The rectangle spanning `left..=right` and `top..=bottom`, at least 1×1.
    fn from_edges(left: i32, top: i32, right: i32, bottom: i32) -> Self {
        Rect {
            left,
            top,
            width: (right - left + 1).max(1),
            height: (bottom - top + 1).max(1),
        }
    }

    fn right(&self) -> i32 {
        self.left + self.width - 1
    }

    fn bottom(&self) -> i32 {
        self.top + self.height - 1
    }

    fn center_x(&self) -> i32 {
        self.left + self.width / 2
    }

    fn center_y(&self) -> i32 {
        self.top + self.height / 2
    }

    fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.left && x <= self.right() && y >= self.top && y <= self.bottom()
    }
}

/// The data range shown along one axis.
#[derive(Clone, Copy, Debug)]
struct Axis {
    min: f64,
    max: f64,
}

impl Axis {
    /// Where `v` lies in the range: 0 at `min`, 1 at `max`.
    fn fraction(&self, v: f64) -> f64 {
        (v - self.min) / (self.max - self.min)
    }
}

/// A plot area on the image together with the data ranges it shows.
struct Frame {
    area: Rect,
    x: Axis,
    y: Axis,
}

impl Frame {
    /// Image x coordinate (fractional) of data value `x`.
    fn pixel_x(&self, x: f64) -> f64 {
        f64::from(self.area.left) + self.x.fraction(x) * f64::from(self.area.width - 1)
    }

    /// Image y coordinate (fractional) of data value `y`; larger values are higher up.
    fn pixel_y(&self, y: f64) -> f64 {
        f64::from(self.area.bottom()) - self.y.fraction(y) * f64::from(self.area.height - 1)
    }
}

/// Tick positions along one axis, `step` apart.
#[derive(Debug)]
struct Ticks {
    values: Vec<f64>,
    step: f64,
}

impl Ticks {
    /// Tick labels: fixed-point with just enough decimals for the step, or
    /// scientific notation for very large or very small values.
    fn labels(&self) -> Vec<String> {
        let magnitude = self.values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let scientific = magnitude >= 1e5 || self.step < 1e-3;
        self.values
            .iter()
            .map(|&v| format_tick(v, self.step, scientific))
            .collect()
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

/// Picks about `target` tick values inside `min..=max`, spaced by a "nice"
/// step of 1, 2 or 5 × 10^k.
fn nice_ticks(min: f64, max: f64, target: usize) -> Ticks {
    let span = max - min;
    if !(span.is_finite() && span > 0.0) {
        return Ticks {
            values: if min.is_finite() { vec![min] } else { vec![] },
            step: 1.0,
        };
    }
    let exponent = (span / target as f64).log10().floor();
    let mut best: Option<(f64, f64)> = None;
    for e in [exponent - 1.0, exponent, exponent + 1.0] {
        for mantissa in [1.0, 2.0, 5.0] {
            let step = mantissa * 10f64.powf(e);
            let miss = (tick_count(min, max, step) - target as f64).abs();
            // Ties go to the larger step: fewer, rounder labels.
            if best.is_none_or(|(best_miss, _)| miss <= best_miss) {
                best = Some((miss, step));
            }
        }
    }
    let step = best.map_or(span, |(_, step)| step);
    let (first, last) = tick_index_range(min, max, step);
    let count = ((last - first + 1.0).max(0.0) as u32).min(MAX_TICKS);
    let values = (0..count).map(|i| (first + f64::from(i)) * step).collect();
    Ticks { values, step }
}

/// Index range (inclusive) of the multiples of `step` inside `min..=max`.
fn tick_index_range(min: f64, max: f64, step: f64) -> (f64, f64) {
    let epsilon = 1e-9;
    (
        (min / step - epsilon).ceil(),
        (max / step + epsilon).floor(),
    )
}

/// How many multiples of `step` lie inside `min..=max`.
fn tick_count(min: f64, max: f64, step: f64) -> f64 {
    let (first, last) = tick_index_range(min, max, step);
    (last - first + 1.0).max(0.0)
}

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

/// `min..max` widened by `margin` of its span on each side; an empty range
/// becomes 0..1 and a single value gets a window around it.
fn padded_axis(min: f64, max: f64, margin: f64) -> Axis {
    if !(min.is_finite() && max.is_finite()) || min > max {
        return Axis { min: 0.0, max: 1.0 };
    }
    let span = max - min;
    if !(span.is_finite() && span > f64::EPSILON * min.abs().max(max.abs())) {
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

/// Light gridlines at every tick inside the plot area.
fn draw_grid(img: &mut RgbImage, frame: &Frame, x_ticks: &Ticks, y_ticks: &Ticks) {
    let area = frame.area;
    for &v in &x_ticks.values {
        let x = frame.pixel_x(v).round() as i32;
        fill_rect(img, x, area.top, 1, area.height, GRID_COLOR);
    }
    for &v in &y_ticks.values {
        let y = frame.pixel_y(v).round() as i32;
        fill_rect(img, area.left, y, area.width, 1, GRID_COLOR);
    }
}

/// The plot area's border with outward tick marks and tick labels.
fn draw_axes(img: &mut RgbImage, frame: &Frame, x_ticks: &Ticks, y_ticks: &Ticks) {
    let area = frame.area;
    fill_rect(img, area.left, area.top, area.width, 1, AXIS_COLOR);
    fill_rect(img, area.left, area.bottom(), area.width, 1, AXIS_COLOR);
    fill_rect(img, area.left, area.top, 1, area.height, AXIS_COLOR);
    fill_rect(img, area.right(), area.top, 1, area.height, AXIS_COLOR);

    let label_top = area.bottom() + TICK_LEN + TICK_LABEL_GAP;
    for (&v, label) in x_ticks.values.iter().zip(x_ticks.labels()) {
        let x = frame.pixel_x(v).round() as i32;
        fill_rect(img, x, area.bottom() + 1, 1, TICK_LEN, AXIS_COLOR);
        draw_centered_text(img, x, label_top, &label, TEXT_COLOR);
    }
    let label_right = area.left - TICK_LEN - TICK_LABEL_GAP;
    for (&v, label) in y_ticks.values.iter().zip(y_ticks.labels()) {
        let y = frame.pixel_y(v).round() as i32;
        fill_rect(img, area.left - TICK_LEN, y, TICK_LEN, 1, AXIS_COLOR);
        let x = label_right - text_width(&label, TEXT_SCALE);
        draw_text(img, x, y - TEXT_H / 2, &label, TEXT_COLOR, TEXT_SCALE);
    }
}

/// Filled dots of `radius` at the points inside the frame's ranges.
fn draw_dots(img: &mut RgbImage, frame: &Frame, points: &[[f32; 2]], radius: f64, color: [u8; 3]) {
    let inside = |v: f64, axis: &Axis| v >= axis.min && v <= axis.max;
    for p in points {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        if inside(x, &frame.x) && inside(y, &frame.y) {
            let cx = frame.pixel_x(x).round() as i32;
            let cy = frame.pixel_y(y).round() as i32;
            draw_disk(img, frame.area, cx, cy, radius, color);
        }
    }
}

/// A filled disk centered on (cx, cy), clipped to `clip`.
fn draw_disk(img: &mut RgbImage, clip: Rect, cx: i32, cy: i32, radius: f64, color: [u8; 3]) {
    let reach = radius.ceil() as i32;
    let limit = radius * radius + 0.25;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (x, y) = (cx + dx, cy + dy);
            if f64::from(dx * dx + dy * dy) <= limit && clip.contains(x, y) {
                put_pixel(img, x, y, color);
            }
        }
    }
}

/// Which pixels of the plot area a series covers, so that each pixel is
/// blended once however many segments cross it.
struct Mask {
    width: i32,
    height: i32,
    covered: Vec<bool>,
}

impl Mask {
    fn new(width: i32, height: i32) -> Self {
        Mask {
            width,
            height,
            covered: vec![false; (width * height) as usize],
        }
    }

    /// Covers a `pen`×`pen` square at (x, y), clipped to the mask.
    fn stamp(&mut self, x: i32, y: i32, pen: i32) {
        for py in y..y + pen {
            for px in x..x + pen {
                if px >= 0 && py >= 0 && px < self.width && py < self.height {
                    self.covered[(py * self.width + px) as usize] = true;
                }
            }
        }
    }

    /// Covers the pixels of a straight segment (Bresenham).
    fn segment(&mut self, from: (i32, i32), to: (i32, i32), pen: i32) {
        let (mut x, mut y) = from;
        let dx = (to.0 - x).abs();
        let dy = -(to.1 - y).abs();
        let step_x = if x < to.0 { 1 } else { -1 };
        let step_y = if y < to.1 { 1 } else { -1 };
        let mut err = dx + dy;
        loop {
            self.stamp(x, y, pen);
            if (x, y) == to {
                break;
            }
            let doubled = 2 * err;
            if doubled >= dy {
                err += dy;
                x += step_x;
            }
            if doubled <= dx {
                err += dx;
                y += step_y;
            }
        }
    }

    /// Blends `color` into `img` at every covered pixel, the mask's origin
    /// being the top-left of `area`.
    fn composite(&self, img: &mut RgbImage, area: Rect, color: [u8; 3], alpha: f64) {
        for (i, _) in self.covered.iter().enumerate().filter(|(_, c)| **c) {
            let x = (area.left + i as i32 % self.width) as u32;
            let y = (area.top + i as i32 / self.width) as u32;
            if x < img.width() && y < img.height() {
                let base = img.get_pixel(x, y).0;
                img.put_pixel(x, y, Rgb(blend(base, color, alpha)));
            }
        }
    }
}

/// Draws one series as a line in the plot area.
fn draw_series(img: &mut RgbImage, frame: &Frame, series: &Series) {
    let area = frame.area;
    let to_local = |&(x, y): &(f64, f64)| {
        let px = frame.pixel_x(x) - f64::from(area.left);
        let py = frame.pixel_y(y) - f64::from(area.top);
        // Clamping keeps rasterization bounded even for absurd values.
        let px = px.clamp(-2.0, f64::from(area.width + 1));
        let py = py.clamp(-2.0, f64::from(area.height + 1));
        (px, py)
    };
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(to_local)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let mut mask = Mask::new(area.width, area.height);
    let sorted = points.windows(2).all(|w| w[0].0 <= w[1].0);
    if points.len() == 1 {
        let (x, y) = round_point(points[0]);
        mask.segment((x - 2, y), (x + 2, y), 2);
        mask.segment((x, y - 2), (x, y + 2), 2);
    } else if sorted && points.len() > 2 * area.width as usize {
        rasterize_decimated(&mut mask, &points);
    } else {
        rasterize_polyline(&mut mask, &points, 2);
    }
    mask.composite(img, area, series.color, LINE_ALPHA);
}

fn round_point((x, y): (f64, f64)) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

/// Connects consecutive points with segments of width `pen`.
fn rasterize_polyline(mask: &mut Mask, points: &[(f64, f64)], pen: i32) {
    for pair in points.windows(2) {
        mask.segment(round_point(pair[0]), round_point(pair[1]), pen);
    }
}

/// The y values of the points falling in one pixel column, in order.
#[derive(Clone, Copy)]
struct ColumnSpan {
    first: f64,
    last: f64,
    min: f64,
    max: f64,
}

/// Draws a long x-sorted series in time proportional to its length plus the
/// plot width: each pixel column keeps only its first, last, lowest and
/// highest y, which renders exactly like the full polyline at 1 px.
fn rasterize_decimated(mask: &mut Mask, points: &[(f64, f64)]) {
    let mut columns: Vec<Option<ColumnSpan>> = vec![None; mask.width.max(1) as usize];
    for &(x, y) in points {
        let column = (x.round().max(0.0) as usize).min(columns.len() - 1);
        let span = columns[column].get_or_insert(ColumnSpan {
            first: y,
            last: y,
            min: y,
            max: y,
        });
        span.last = y;
        span.min = span.min.min(y);
        span.max = span.max.max(y);
    }
    let mut previous: Option<(i32, f64)> = None;
    for (column, span) in columns.iter().enumerate() {
        let Some(span) = span else { continue };
        let x = column as i32;
        if let Some((previous_x, previous_y)) = previous {
            let from = (previous_x, previous_y.round() as i32);
            mask.segment(from, (x, span.first.round() as i32), 1);
        }
        mask.segment(
            (x, span.min.round() as i32),
            (x, span.max.round() as i32),
            1,
        );
        previous = Some((x, span.last));
    }
}

/// Legend entries (color swatch and name) laid out in rows that wrap at a
/// maximum width.
struct Legend {
    entries: Vec<LegendEntry>,
    rows: i32,
}

struct LegendEntry {
    name: String,
    color: [u8; 3],
    x: i32,
    row: i32,
}

const SWATCH_W: i32 = 22;
const SWATCH_H: i32 = 4;
const SWATCH_GAP: i32 = 6;
const LEGEND_ENTRY_GAP: i32 = 24;
const LEGEND_ROW_H: i32 = TEXT_H + 6;

impl Legend {
    /// Lays out the named series left to right, wrapping past `max_width`.
    fn layout(series: &[Series], max_width: i32) -> Self {
        let mut entries = Vec::new();
        let (mut x, mut row) = (0, 0);
        for s in series.iter().filter(|s| !s.name.is_empty()) {
            let width = SWATCH_W + SWATCH_GAP + text_width(&s.name, TEXT_SCALE);
            if x > 0 && x + width > max_width {
                x = 0;
                row += 1;
            }
            entries.push(LegendEntry {
                name: s.name.clone(),
                color: s.color,
                x,
                row,
            });
            x += width + LEGEND_ENTRY_GAP;
        }
        let rows = if entries.is_empty() { 0 } else { row + 1 };
        Legend { entries, rows }
    }

    /// Vertical space the legend takes.
    fn height(&self) -> i32 {
        self.rows * LEGEND_ROW_H
    }

    /// Draws the legend with its top-left corner at (left, top).
    fn draw(&self, img: &mut RgbImage, left: i32, top: i32) {
        for entry in &self.entries {
            let x = left + entry.x;
            let y = top + entry.row * LEGEND_ROW_H;
            let swatch_y = y + (TEXT_H - SWATCH_H) / 2;
            fill_rect(img, x, swatch_y, SWATCH_W, SWATCH_H, entry.color);
            let text_x = x + SWATCH_W + SWATCH_GAP;
            draw_text(img, text_x, y, &entry.name, TEXT_COLOR, TEXT_SCALE);
        }
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

    /// Pixels that are predominantly `color`'s hue (line colors are blended).
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

    fn is_nice_step(step: f64) -> bool {
        let exponent = step.log10().floor();
        let mantissa = step / 10f64.powf(exponent);
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .any(|m| (mantissa - m).abs() < 1e-6)
    }

    #[test]
    fn nice_ticks_use_1_2_5_steps_inside_the_range() {
        for (min, max) in [
            (0.0, 1.0),
            (0.0, 7.3),
            (-3.0, 47.0),
            (0.013, 0.0172),
            (-1e6, 3e6),
            (99.5, 100.5),
            (-0.75, 0.75),
        ] {
            let ticks = nice_ticks(min, max, 5);
            assert!(
                is_nice_step(ticks.step),
                "{min}..{max}: step {}",
                ticks.step
            );
            assert!(
                (3..=8).contains(&ticks.values.len()),
                "{min}..{max}: {ticks:?}"
            );
            for &v in &ticks.values {
                assert!(
                    v >= min - 1e-9 && v <= max + 1e-9,
                    "{v} outside {min}..{max}"
                );
                let multiple = v / ticks.step;
                assert!((multiple - multiple.round()).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn nice_ticks_for_known_ranges() {
        let labels = |min, max| nice_ticks(min, max, 5).labels();
        assert_eq!(labels(0.0, 1.0), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(labels(0.0, 100.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(-3.0, 47.0), ["0", "10", "20", "30", "40"]);
        assert_eq!(labels(0.0, 4e6), ["0", "1e6", "2e6", "3e6", "4e6"]);
        assert_eq!(labels(-1e-4, 1e-4), ["-1e-4", "-5e-5", "0", "5e-5", "1e-4"]);
    }

    #[test]
    fn degenerate_tick_ranges_do_not_panic() {
        assert_eq!(nice_ticks(3.0, 3.0, 5).values, [3.0]);
        assert!(nice_ticks(f64::NAN, 1.0, 5).values.is_empty());
        assert!(nice_ticks(0.0, f64::INFINITY, 5).values.len() <= 1);
        assert!(nice_ticks(1e15, 1e15 + 1e-3, 5).values.len() <= 64);
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
        let img = line_plot("t", "x", "y", &[rising, falling], 400, 300);
        assert_eq!(img.dimensions(), (400, 300));
        // Well inside the plot area, away from the legend swatches.
        let middle = |x: u32, y: u32| (150..300).contains(&x) && (120..250).contains(&y);
        assert!(count_near(&img, RED, middle) > 20);
        assert!(count_near(&img, BLUE, middle) > 20);
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
            for (w, h) in [(320, 240), (10, 10), (1, 1), (0, 0)] {
                let img = line_plot("degenerate", "x", "y", case, w, h);
                assert_eq!(img.dimensions(), (w, h));
            }
        }
        let one = line_plot("", "", "", &cases[2], 200, 200);
        assert!(
            count_near(&one, RED, |_, _| true) > 0,
            "single point is visible"
        );
    }

    #[test]
    fn long_series_are_decimated_and_still_drawn() {
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
        );
        let inside = |x: u32, y: u32| (100..550).contains(&x) && (80..330).contains(&y);
        assert!(count_near(&img, RED, inside) > 10_000);
    }

    #[test]
    fn scatter_draws_foreground_where_a_point_is() {
        let foreground = [[0.5_f32, 0.5_f32]];
        let background = [[-0.5_f32, -0.5_f32]];
        let img = scatter_plot("s", &background, &foreground, (-1.0, 1.0), 300);
        let found: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == FOREGROUND_POINT_COLOR)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(!found.is_empty());
        // The point at (0.5, 0.5) is in the upper-right quadrant of the image.
        assert!(found.iter().all(|&(x, y)| x > 150 && y < 150), "{found:?}");
        assert!(img.pixels().any(|p| p.0 == BACKGROUND_POINT_COLOR));
    }

    #[test]
    fn scatter_skips_points_outside_bounds() {
        let outside = [
            [2.0_f32, 0.0],
            [0.0, -3.0],
            [f32::NAN, 0.0],
            [0.0, f32::INFINITY],
        ];
        let img = scatter_plot("s", &outside, &outside, (-1.0, 1.0), 200);
        assert!(!img.pixels().any(|p| p.0 == FOREGROUND_POINT_COLOR));
        assert!(!img.pixels().any(|p| p.0 == BACKGROUND_POINT_COLOR));
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
            for size in [0, 1, 20, 128] {
                let img = scatter_plot("d", &points, &points, bounds, size);
                assert_eq!(img.dimensions(), (size, size));
            }
        }
    }

    #[test]
    fn draw_text_changes_pixels_and_tolerates_unknown_chars() {
        let mut img = RgbImage::from_pixel(100, 30, Rgb(WHITE));
        draw_text(&mut img, 2, 2, "Ab1", RED, 2);
        let lit = img.pixels().filter(|p| p.0 == RED).count();
        assert!(lit > 20);
        // Nothing right of the three glyphs (3 × 6 × 2 px).
        assert!(
            img.enumerate_pixels()
                .all(|(x, _, p)| x < 2 + 36 || p.0 == WHITE)
        );

        let mut unknown = RgbImage::from_pixel(40, 20, Rgb(WHITE));
        draw_text(&mut unknown, 1, 1, "é→", BLUE, 1);
        let boxed = unknown.pixels().filter(|p| p.0 == BLUE).count();
        assert_eq!(boxed, 2 * 20, "each unknown char is a 5×7 outline");

        let mut clipped = RgbImage::new(5, 5);
        draw_text(&mut clipped, -10, -3, "clip me", RED, 3);
    }

    #[test]
    fn font_covers_printable_ascii() {
        assert!((32..=126u8).all(|c| glyph(c as char).is_some()));
        assert!(glyph('\n').is_none());
        let blank = |c| glyph(c).unwrap().iter().all(|col| *col == 0);
        assert!(blank(' '));
        assert!(('!'..='~').all(|c| !blank(c)));
    }

    #[test]
    fn text_width_matches_glyph_advance() {
        assert_eq!(text_width("", 2), 0);
        assert_eq!(text_width("a", 1), 5);
        assert_eq!(text_width("ab", 2), 22);
    }
}
