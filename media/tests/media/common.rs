//! Content for the tests: generated images, hand-made containers, Debian
//! files, and a seeded byte generator (no randomness between runs).

use std::io::Cursor;

use asset_catalog_media::{DescribeOptions, Media, SNIFF_BYTES, describe};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// The goexif package ships real camera JPEGs with EXIF as test data.
pub const GOEXIF_PACKAGE: &str = "golang-github-rwcarlsen-goexif-dev";
pub const GOEXIF_DIR: &str = "/usr/share/gocode/src/github.com/rwcarlsen/goexif/exif";

/// A file from a Debian package, or `None` after saying loudly what to install.
pub fn debian_file(package: &str, path: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            eprintln!(
                "SKIPPED: {path} is not readable ({e}); `apt-get install {package}` to run this test"
            );
            None
        }
    }
}

/// A picture with structure at every scale: gradients, a grid, and a red
/// block in the top-left corner to check orientation by.
pub fn picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        if x < width / 4 && y < height / 4 {
            return Rgb([255, 0, 0]);
        }
        let grid = if (x / 16 + y / 16) % 2 == 0 { 40 } else { 0 };
        Rgb([
            (x * 200 / width.max(1)) as u8 + grid,
            (y * 200 / height.max(1)) as u8 + grid,
            128,
        ])
    })
}

/// Like [`picture`], with a transparent hole in the middle.
pub fn transparent_picture(width: u32, height: u32) -> RgbaImage {
    let rgb = picture(width, height);
    RgbaImage::from_fn(width, height, |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0;
        let hole = x > width / 3 && x < 2 * width / 3 && y > height / 3 && y < 2 * height / 3;
        Rgba([r, g, b, if hole { 0 } else { 255 }])
    })
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, format)
        .expect("the image crate encodes its own formats");
    bytes.into_inner()
}

pub fn describe_bytes(bytes: &[u8], name: &str, keep_gps: bool) -> Media {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let options = DescribeOptions {
        keep_gps,
        ..DescribeOptions::default()
    };
    describe(Cursor::new(bytes), head, name, &options).expect("describe fails only on I/O")
}

/// A seeded xorshift generator: the same bytes on every run.
pub struct Bytes(u64);

impl Bytes {
    pub fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    pub fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// An ISO media box: 32-bit size, type, payload.
pub fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

/// A PNG chunk with its CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims `width` x `height` RGB pixels and whose data
/// is a few bytes: a decompression bomb's shape.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    // A zlib stream of a few zeros; a real bomb has gigabytes behind it.
    png.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    png.extend(png_chunk(b"IEND", &[]));
    png
}
