//! Sample grids: generated images laid out in a square grid, as one PNG.

use image::{GrayImage, ImageEncoder, Luma};

/// Lays out `count` images of `rows × cols` pixels (values in [−1, 1],
/// row-major, one after another) in a grid `per_row` wide, with a 2-pixel
/// dark border, each pixel scaled up `zoom` times.
pub fn image_grid(
    values: &[f32],
    count: usize,
    rows: usize,
    cols: usize,
    per_row: usize,
    zoom: usize,
) -> GrayImage {
    let per_row = per_row.max(1);
    let grid_rows = count.div_ceil(per_row).max(1);
    let pad = 2;
    let cell_w = cols * zoom + pad;
    let cell_h = rows * zoom + pad;
    let width = (per_row * cell_w + pad) as u32;
    let height = (grid_rows * cell_h + pad) as u32;
    let mut img = GrayImage::from_pixel(width, height, Luma([32]));
    for i in 0..count {
        let (gx, gy) = (i % per_row, i / per_row);
        let image = &values[i * rows * cols..(i + 1) * rows * cols];
        for (p, v) in image.iter().enumerate() {
            let level = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
            let (r, c) = (p / cols, p % cols);
            for dy in 0..zoom {
                for dx in 0..zoom {
                    let x = pad + gx * cell_w + c * zoom + dx;
                    let y = pad + gy * cell_h + r * zoom + dy;
                    img.put_pixel(x as u32, y as u32, Luma([level]));
                }
            }
        }
    }
    img
}

/// Encodes any 8-bit image as PNG bytes.
pub fn png_bytes<P: image::PixelWithColorType<Subpixel = u8>>(
    img: &image::ImageBuffer<P, Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        P::COLOR_TYPE,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_each_image_in_its_cell() {
        // Two 2×3 images: all black, all white; two per row, zoom 1.
        let mut values = vec![-1.0; 6];
        values.extend(vec![1.0; 6]);
        let img = image_grid(&values, 2, 2, 3, 2, 1);
        assert_eq!((img.width(), img.height()), (2 * 5 + 2, 4 + 2));
        assert_eq!(img.get_pixel(2, 2).0, [0]);
        assert_eq!(img.get_pixel(2 + 5, 2).0, [255]);
        let png = png_bytes(&img).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
