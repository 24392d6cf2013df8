//! Strict reader (and small writer) for the IDX format used by MNIST and
//! Fashion-MNIST, raw or gzip-compressed.
//!
//! # Format
//!
//! An IDX file is a big-endian header followed by raw unsigned bytes:
//!
//! | file   | magic                   | header (u32 each)      | data                        |
//! |--------|-------------------------|------------------------|-----------------------------|
//! | images | `0x00000803` (2051)     | count, rows, cols      | `count * rows * cols` pixels |
//! | labels | `0x00000801` (2049)     | count                  | `count` labels              |
//!
//! Pixels are stored row-major, image after image. The whole file may be
//! gzip-compressed (one or more concatenated gzip members); compression is
//! detected by the gzip magic bytes `1f 8b`, never by the file name.
//!
//! # Guarantees
//!
//! * Every function returns an error instead of panicking, whatever the input.
//! * Every [`IdxError`] displays as a single line that starts with the file's
//!   path (or the name given to the `parse_*` functions) and says what is wrong.
//! * The header is validated before anything is allocated from it: at most
//!   [`MAX_SIDE`] pixels per row or column, at most [`MAX_DATA_BYTES`] data
//!   bytes, at least one item. Decompression reads at most the validated size
//!   plus one byte (plus a bounded look-ahead to report trailing garbage), so a
//!   gzip bomb is refused without being expanded.
//! * The file must hold exactly the declared data: a short header, truncated
//!   data, trailing bytes, a corrupt or truncated gzip stream (checked through
//!   its CRC and length trailer), a wrong magic number, and a name ending in
//!   `.gz` whose content is not gzip are all errors.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGE_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABEL_MAGIC: u32 = 0x0000_0801;
/// Largest accepted number of rows or columns of an image.
pub const MAX_SIDE: usize = 4096;
/// Largest accepted amount of data (pixels or labels) in one file, in bytes.
pub const MAX_DATA_BYTES: u64 = 1 << 31;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// How far past the declared data we look to report the amount of trailing garbage.
const MAX_TRAILING_SCAN: u64 = 1 << 20;

/// Decoded IDX image file: `count` images of `rows` x `cols` pixels, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Everything that can go wrong reading an IDX file. Each message is one line
/// that starts with the file's path or name.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{name}: cannot {action}: {source}")]
    Io {
        name: String,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// The name ends in `.gz` but the content does not start with the gzip magic.
    #[error("{name}: name ends in .gz but the content is not gzip (starts with {first})")]
    NotGzip { name: String, first: String },
    /// The gzip stream is corrupt or ends early.
    #[error("{name}: corrupt or truncated gzip stream: {source}")]
    Gzip {
        name: String,
        #[source]
        source: io::Error,
    },
    /// The magic number is not the one expected.
    #[error("{name}: wrong magic number {found:#010x}, expected {expected:#010x}: {hint}")]
    WrongMagic {
        name: String,
        found: u32,
        expected: u32,
        hint: String,
    },
    /// Fewer bytes than the fixed-size header.
    #[error(
        "{name}: header too short: {found} bytes, but an IDX {what} header is {expected} bytes"
    )]
    ShortHeader {
        name: String,
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// The header declares zero items.
    #[error("{name}: header declares zero {what}")]
    Empty { name: String, what: &'static str },
    /// The header declares sizes that are refused before anything is allocated.
    #[error("{name}: absurd dimensions {dims}: {reason}")]
    BadDimensions {
        name: String,
        dims: String,
        reason: String,
    },
    /// The declared data is more than this machine's available memory.
    #[error(
        "{name}: its {needed} of data is more than the memory available on this machine ({available})"
    )]
    TooLarge {
        name: String,
        needed: String,
        available: String,
    },
    /// The data ends before the size declared by the header.
    #[error(
        "{name}: truncated data: header declares {declared} ({expected} bytes) but only {found} bytes follow the header"
    )]
    Truncated {
        name: String,
        declared: String,
        expected: u64,
        found: u64,
    },
    /// Bytes follow the data declared by the header.
    #[error("{name}: trailing garbage: {}{extra} bytes after the {expected} data bytes the header declares", if *.at_least { "at least " } else { "" })]
    TrailingData {
        name: String,
        expected: u64,
        extra: u64,
        at_least: bool,
    },
    /// Image and label files disagree on the number of items.
    #[error("{images}: {image_count} images, but {labels} has {label_count} labels")]
    CountMismatch {
        images: String,
        image_count: usize,
        labels: String,
        label_count: usize,
    },
}

/// Reads an image file; gzip is detected by its magic bytes (1f 8b). A file
/// whose name ends in `.gz` but isn't gzip is an error saying so.
pub fn read_images(path: &Path) -> Result<Images, IdxError> {
    let (name, file) = open(path)?;
    decode(file, &name, Kind::Images).map(images_from)
}

/// Reads a label file, like [`read_images`].
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    let (name, file) = open(path)?;
    decode(file, &name, Kind::Labels).map(|idx| idx.data)
}

/// Same as [`read_images`], from bytes already in memory (compressed or not);
/// `name` is used in messages (e.g. "embedded fashion-mnist t10k images"). A
/// `name` ending in `.gz` (any case) requires gzip content, as for a path.
pub fn parse_images(bytes: &[u8], name: &str) -> Result<Images, IdxError> {
    decode(bytes, name, Kind::Images).map(images_from)
}

/// Same as [`read_labels`], from bytes already in memory; see [`parse_images`].
pub fn parse_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>, IdxError> {
    decode(bytes, name, Kind::Labels).map(|idx| idx.data)
}

/// Reads images and labels and checks their counts agree.
pub fn read_labelled(images: &Path, labels: &Path) -> Result<(Images, Vec<u8>), IdxError> {
    let imgs = read_images(images)?;
    let labs = read_labels(labels)?;
    if imgs.count != labs.len() {
        return Err(IdxError::CountMismatch {
            images: images.display().to_string(),
            image_count: imgs.count,
            labels: labels.display().to_string(),
            label_count: labs.len(),
        });
    }
    Ok((imgs, labs))
}

/// Writes an (uncompressed, or gzip if `gzip`) IDX image file — used by tests
/// and tools. Fails with `InvalidInput` if `pixels.len()` is not
/// `count * rows * cols` or a dimension does not fit in a `u32`.
pub fn write_images(path: &Path, images: &Images, gzip: bool) -> io::Result<()> {
    let expected = images
        .count
        .checked_mul(images.rows)
        .and_then(|n| n.checked_mul(images.cols));
    if expected != Some(images.pixels.len()) {
        return Err(invalid_input(format!(
            "{} pixels given for {} images of {}x{}",
            images.pixels.len(),
            images.count,
            images.rows,
            images.cols
        )));
    }
    let dims = [
        dim_u32(images.count)?,
        dim_u32(images.rows)?,
        dim_u32(images.cols)?,
    ];
    write_file(path, IMAGE_MAGIC, &dims, &images.pixels, gzip)
}

/// Writes an (uncompressed, or gzip if `gzip`) IDX label file.
pub fn write_labels(path: &Path, labels: &[u8], gzip: bool) -> io::Result<()> {
    write_file(path, LABEL_MAGIC, &[dim_u32(labels.len())?], labels, gzip)
}

/// Which of the two IDX file types is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Images => IMAGE_MAGIC,
            Kind::Labels => LABEL_MAGIC,
        }
    }

    fn ndims(self) -> usize {
        match self {
            Kind::Images => 3,
            Kind::Labels => 1,
        }
    }

    fn header_len(self) -> usize {
        4 + 4 * self.ndims()
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Images => "image",
            Kind::Labels => "label",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Images => "images",
            Kind::Labels => "labels",
        }
    }
}

/// A validated header and exactly the data it declares.
struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

fn images_from(idx: Idx) -> Images {
    Images {
        count: idx.dims[0],
        rows: idx.dims[1],
        cols: idx.dims[2],
        pixels: idx.data,
    }
}

fn open(path: &Path) -> Result<(String, File), IdxError> {
    let name = path.display().to_string();
    match File::open(path) {
        Ok(file) => Ok((name, file)),
        Err(source) => Err(IdxError::Io {
            name,
            action: "open",
            source,
        }),
    }
}

/// Decodes one IDX file of the given kind from `raw` (gzip or not).
fn decode<R: Read>(mut raw: R, name: &str, kind: Kind) -> Result<Idx, IdxError> {
    let mut peek = [0u8; 4];
    let peeked = read_up_to(&mut raw, &mut peek).map_err(|source| IdxError::Io {
        name: name.to_owned(),
        action: "read",
        source,
    })?;
    let peek = &peek[..peeked];
    let gzip = peek.starts_with(&GZIP_MAGIC);
    if name.to_ascii_lowercase().ends_with(".gz") && !gzip {
        return Err(IdxError::NotGzip {
            name: name.to_owned(),
            first: describe_start(peek),
        });
    }
    let chained = peek.chain(raw);
    let mut stream = if gzip {
        Stream::new(MultiGzDecoder::new(chained), name, true)
    } else {
        Stream::new(chained, name, false)
    };
    let dims = read_header(&mut stream, kind)?;
    let data = read_data(&mut stream, kind, &dims)?;
    Ok(Idx { dims, data })
}

/// A reader that turns I/O failures into [`IdxError`]s for one named file.
struct Stream<'a> {
    inner: Box<dyn Read + 'a>,
    name: &'a str,
    gzip: bool,
}

impl<'a> Stream<'a> {
    fn new(inner: impl Read + 'a, name: &'a str, gzip: bool) -> Self {
        Stream {
            inner: Box::new(inner),
            name,
            gzip,
        }
    }

    /// Errors without an OS code inside a gzip stream come from the decoder.
    fn error(&self, source: io::Error) -> IdxError {
        let name = self.name.to_owned();
        if self.gzip && source.raw_os_error().is_none() {
            IdxError::Gzip { name, source }
        } else {
            IdxError::Io {
                name,
                action: "read",
                source,
            }
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, IdxError> {
        read_up_to(&mut self.inner, buf).map_err(|e| self.error(e))
    }

    /// Appends at most `limit` bytes to `buf`; returns how many were read.
    fn read_limited(&mut self, buf: &mut Vec<u8>, limit: u64) -> Result<u64, IdxError> {
        let mut taken = (&mut self.inner).take(limit);
        match taken.read_to_end(buf) {
            Ok(n) => Ok(n as u64),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Counts (up to `limit`) the bytes left in the stream, without keeping them.
    fn skip_limited(&mut self, limit: u64) -> Result<u64, IdxError> {
        let mut taken = (&mut self.inner).take(limit);
        io::copy(&mut taken, &mut io::sink()).map_err(|e| self.error(e))
    }
}

/// Reads and validates the header; returns the dimensions (count first).
fn read_header(stream: &mut Stream, kind: Kind) -> Result<Vec<usize>, IdxError> {
    let mut header = [0u8; 16];
    let header = &mut header[..kind.header_len()];
    let found = stream.fill(header)?;
    let short = || IdxError::ShortHeader {
        name: stream.name.to_owned(),
        what: kind.noun(),
        expected: kind.header_len(),
        found,
    };
    if found < 4 {
        return Err(short());
    }
    let magic = be_u32(&header[..4]);
    if magic != kind.magic() {
        return Err(IdxError::WrongMagic {
            name: stream.name.to_owned(),
            found: magic,
            expected: kind.magic(),
            hint: magic_hint(magic, kind),
        });
    }
    if found < header.len() {
        return Err(short());
    }
    let dims: Vec<usize> = header[4..].chunks_exact(4).map(be_usize).collect();
    check_dims(stream.name, kind, &dims)?;
    Ok(dims)
}

/// Refuses zero items and sizes that are absurd or would overflow.
fn check_dims(name: &str, kind: Kind, dims: &[usize]) -> Result<(), IdxError> {
    let bad = |reason: String| IdxError::BadDimensions {
        name: name.to_owned(),
        dims: format_dims(dims),
        reason,
    };
    if let Some(&side) = dims[1..].iter().find(|&&d| d == 0 || d > MAX_SIDE) {
        return Err(bad(format!(
            "rows and cols must be 1..={MAX_SIDE}, found {side}"
        )));
    }
    if dims[0] == 0 {
        return Err(IdxError::Empty {
            name: name.to_owned(),
            what: kind.plural(),
        });
    }
    match data_len(dims) {
        Some(total) if total <= MAX_DATA_BYTES => Ok(()),
        _ => Err(bad(format!(
            "more than {MAX_DATA_BYTES} bytes of data ({} {})",
            dims[0],
            kind.plural()
        ))),
    }
}

/// Reads exactly the declared data, refusing truncation and trailing bytes.
fn read_data(stream: &mut Stream, kind: Kind, dims: &[usize]) -> Result<Vec<u8>, IdxError> {
    // `check_dims` has bounded this by MAX_DATA_BYTES.
    let expected = data_len(dims).unwrap_or(u64::MAX);
    check_memory(stream.name, expected)?;
    // The declared size (bounded by MAX_DATA_BYTES and the memory available),
    // read into one allocation: no doubling on the way, so the peak is the data.
    let mut data = Vec::with_capacity(usize::try_from(expected + 1).unwrap_or(0));
    let found = stream.read_limited(&mut data, expected + 1)?;
    if found < expected {
        return Err(IdxError::Truncated {
            name: stream.name.to_owned(),
            declared: describe_declared(kind, dims),
            expected,
            found,
        });
    }
    if found > expected {
        let more = stream.skip_limited(MAX_TRAILING_SCAN)?;
        return Err(IdxError::TrailingData {
            name: stream.name.to_owned(),
            expected,
            extra: 1 + more,
            at_least: more == MAX_TRAILING_SCAN,
        });
    }
    Ok(data)
}

/// Refuses data that this machine's available memory cannot hold.
fn check_memory(name: &str, bytes: u64) -> Result<(), IdxError> {
    let Some(available) = crate::gan::footprint::available_memory() else {
        return Ok(());
    };
    if u128::from(bytes) <= available {
        return Ok(());
    }
    Err(IdxError::TooLarge {
        name: name.to_owned(),
        needed: crate::gan::footprint::human_bytes(bytes.into()),
        available: crate::gan::footprint::human_bytes(available),
    })
}

/// Product of the dimensions, or `None` on overflow.
fn data_len(dims: &[usize]) -> Option<u64> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

fn describe_declared(kind: Kind, dims: &[usize]) -> String {
    match kind {
        Kind::Images => format!("{} images of {}x{}", dims[0], dims[1], dims[2]),
        Kind::Labels => format!("{} labels", dims[0]),
    }
}

fn format_dims(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    parts.join("x")
}

/// Explains what a wrong magic number most likely means.
fn magic_hint(found: u32, kind: Kind) -> String {
    let [zero0, zero1, elem, ndims] = found.to_be_bytes();
    match (found, kind) {
        (LABEL_MAGIC, Kind::Images) => "a label file given where images were expected".into(),
        (IMAGE_MAGIC, Kind::Labels) => "an image file given where labels were expected".into(),
        _ if zero0 == 0 && zero1 == 0 && matches!(elem, 0x08 | 0x09 | 0x0b..=0x0e) => format!(
            "an IDX file of element type {elem:#04x} with {ndims} dimensions, not unsigned-byte {}",
            kind.plural()
        ),
        _ => "not an IDX file".into(),
    }
}

fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing: the file is empty".into();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(" ")
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

fn be_usize(bytes: &[u8]) -> usize {
    // u32 always fits in usize on the 32- and 64-bit targets we build for;
    // saturate elsewhere so the size checks refuse it.
    usize::try_from(be_u32(bytes)).unwrap_or(usize::MAX)
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn write_file(path: &Path, magic: u32, dims: &[u32], data: &[u8], gzip: bool) -> io::Result<()> {
    let file = BufWriter::new(File::create(path)?);
    let mut file = if gzip {
        let mut encoder = GzEncoder::new(file, Compression::default());
        write_idx(&mut encoder, magic, dims, data)?;
        encoder.finish()?
    } else {
        let mut file = file;
        write_idx(&mut file, magic, dims, data)?;
        file
    };
    file.flush()?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn write_idx(out: &mut impl Write, magic: u32, dims: &[u32], data: &[u8]) -> io::Result<()> {
    out.write_all(&magic.to_be_bytes())?;
    for dim in dims {
        out.write_all(&dim.to_be_bytes())?;
    }
    out.write_all(data)
}

fn dim_u32(value: usize) -> io::Result<u32> {
    u32::try_from(value).map_err(|_| invalid_input(format!("dimension {value} exceeds u32")))
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const SHARED_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("idx-test-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Deterministic SplitMix64, enough for fuzz-style tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn sample_images() -> Images {
        let (count, rows, cols) = (3, 4, 5);
        let pixels = (0..count * rows * cols)
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        Images {
            count,
            rows,
            cols,
            pixels,
        }
    }

    fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_idx(&mut out, magic, dims, data).unwrap();
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn sample_image_bytes() -> Vec<u8> {
        let img = sample_images();
        idx_bytes(IMAGE_MAGIC, &[3, 4, 5], &img.pixels)
    }

    fn sample_label_bytes() -> Vec<u8> {
        idx_bytes(LABEL_MAGIC, &[3], &[1, 2, 9])
    }

    /// Asserts the message is one line, names the file, and contains every part.
    fn assert_msg(err: &IdxError, name: &str, parts: &[&str]) {
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "multi-line message: {msg:?}");
        assert!(
            msg.starts_with(name),
            "message {msg:?} does not start with {name:?}"
        );
        for part in parts {
            assert!(msg.contains(part), "message {msg:?} lacks {part:?}");
        }
    }

    fn image_err(bytes: &[u8], name: &str) -> IdxError {
        parse_images(bytes, name).expect_err("expected an error")
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let dir = TempDir::new("round-trip");
        let images = sample_images();
        let labels = vec![0u8, 5, 9];
        for gz in [false, true] {
            let ext = if gz { ".gz" } else { "" };
            let ip = dir.path(&format!("images{ext}"));
            let lp = dir.path(&format!("labels{ext}"));
            write_images(&ip, &images, gz).unwrap();
            write_labels(&lp, &labels, gz).unwrap();
            let head = std::fs::read(&ip).unwrap();
            assert_eq!(head.starts_with(&GZIP_MAGIC), gz);
            assert_eq!(read_images(&ip).unwrap(), images);
            assert_eq!(read_labels(&lp).unwrap(), labels);
            let (i2, l2) = read_labelled(&ip, &lp).unwrap();
            assert_eq!((i2, l2), (images.clone(), labels.clone()));
            assert_eq!(parse_images(&head, "mem").unwrap(), images);
        }
    }

    #[test]
    fn gzip_detected_by_content_not_name() {
        let dir = TempDir::new("gzip-no-ext");
        let path = dir.path("images.idx");
        write_images(&path, &sample_images(), true).unwrap();
        assert_eq!(read_images(&path).unwrap(), sample_images());
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let raw = sample_image_bytes();
        let mut bytes = gzip(&raw[..20]);
        bytes.extend(gzip(&raw[20..]));
        assert_eq!(
            parse_images(&bytes, "two members").unwrap(),
            sample_images()
        );
    }

    #[test]
    fn write_refuses_inconsistent_images() {
        let dir = TempDir::new("write-bad");
        let mut images = sample_images();
        images.pixels.pop();
        let err = write_images(&dir.path("x"), &images, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn missing_file() {
        let dir = TempDir::new("missing");
        let path = dir.path("nope-images-idx3-ubyte");
        let name = path.display().to_string();
        let err = read_images(&path).unwrap_err();
        assert!(matches!(err, IdxError::Io { .. }));
        assert_msg(&err, &name, &["cannot open", "No such file"]);
        let err = read_labels(&path).unwrap_err();
        assert_msg(&err, &name, &["cannot open"]);
    }

    #[test]
    fn directory_cannot_be_read() {
        let dir = TempDir::new("dir");
        let err = read_images(&dir.0).unwrap_err();
        assert!(matches!(err, IdxError::Io { .. }), "{err}");
        assert_msg(&err, &dir.0.display().to_string(), &["cannot"]);
    }

    #[test]
    fn gz_name_but_not_gzip() {
        let dir = TempDir::new("not-gzip");
        let path = dir.path("train-images-idx3-ubyte.gz");
        std::fs::write(&path, sample_image_bytes()).unwrap();
        let err = read_images(&path).unwrap_err();
        assert!(matches!(err, IdxError::NotGzip { .. }));
        assert_msg(
            &err,
            &path.display().to_string(),
            &["not gzip", "00 00 08 03"],
        );
        let err = image_err(&[], "empty.gz");
        assert_msg(&err, "empty.gz", &["not gzip", "empty"]);
    }

    #[test]
    fn corrupt_gzip() {
        let mut bytes = gzip(&sample_image_bytes());
        let n = bytes.len();
        bytes[n - 6] ^= 0xff; // CRC32 in the trailer
        let err = image_err(&bytes, "bad-crc.gz");
        assert!(matches!(err, IdxError::Gzip { .. }), "{err}");
        assert_msg(&err, "bad-crc.gz", &["corrupt or truncated gzip"]);

        let mut bytes = gzip(&sample_image_bytes());
        bytes[10] = 0xff; // first byte of the deflate stream: invalid block type
        let err = image_err(&bytes, "bad-deflate.gz");
        assert_msg(&err, "bad-deflate.gz", &["corrupt or truncated gzip"]);
    }

    #[test]
    fn truncated_gzip() {
        let bytes = gzip(&sample_image_bytes());
        let err = image_err(&bytes[..bytes.len() - 3], "short.gz");
        assert!(matches!(err, IdxError::Gzip { .. }), "{err}");
        assert_msg(&err, "short.gz", &["corrupt or truncated gzip"]);
    }

    #[test]
    fn garbage_after_gzip_stream() {
        let mut bytes = gzip(&sample_image_bytes());
        bytes.extend_from_slice(b"junk");
        let err = image_err(&bytes, "junk-after.gz");
        assert!(matches!(err, IdxError::Gzip { .. }), "{err}");
    }

    #[test]
    fn wrong_magic() {
        let err = image_err(&sample_label_bytes(), "labels-as-images");
        assert!(matches!(err, IdxError::WrongMagic { .. }));
        assert_msg(
            &err,
            "labels-as-images",
            &[
                "0x00000801",
                "0x00000803",
                "a label file given where images were expected",
            ],
        );
        let err = parse_labels(&sample_image_bytes(), "images-as-labels").unwrap_err();
        assert_msg(
            &err,
            "images-as-labels",
            &["an image file given where labels were expected"],
        );
        let err = image_err(&idx_bytes(0x0d03, &[1, 1, 1], &[0; 4]), "floats");
        assert_msg(&err, "floats", &["element type 0x0d", "3 dimensions"]);
        let err = image_err(b"PNG\0 this is not idx at all", "text");
        assert_msg(&err, "text", &["wrong magic", "not an IDX file"]);
    }

    #[test]
    fn short_header() {
        let full = sample_image_bytes();
        for len in [0, 3, 4, 15] {
            let err = image_err(&full[..len], "short");
            assert!(matches!(err, IdxError::ShortHeader { .. }), "{len}: {err}");
            assert_msg(
                &err,
                "short",
                &["header too short", &format!("{len} bytes"), "16"],
            );
        }
        let err = parse_labels(&sample_label_bytes()[..7], "short-labels").unwrap_err();
        assert_msg(
            &err,
            "short-labels",
            &["header too short", "7 bytes", "8 bytes"],
        );
        let err = image_err(&gzip(&full[..10]), "short-gz.gz");
        assert_msg(&err, "short-gz.gz", &["header too short", "10 bytes"]);
    }

    #[test]
    fn truncated_data() {
        let full = sample_image_bytes();
        let err = image_err(&full[..full.len() - 1], "cut");
        assert!(matches!(err, IdxError::Truncated { .. }));
        assert_msg(
            &err,
            "cut",
            &["truncated", "3 images of 4x5", "60 bytes", "only 59"],
        );
        let err = image_err(&gzip(&full[..30]), "cut.gz");
        assert_msg(&err, "cut.gz", &["truncated", "60 bytes", "only 14"]);
        let labels = sample_label_bytes();
        let err = parse_labels(&labels[..labels.len() - 2], "cut-labels").unwrap_err();
        assert_msg(&err, "cut-labels", &["3 labels (3 bytes)", "only 1"]);
    }

    #[test]
    fn trailing_garbage() {
        let mut bytes = sample_image_bytes();
        bytes.extend_from_slice(&[1, 2, 3]);
        let err = image_err(&bytes, "long");
        assert!(matches!(err, IdxError::TrailingData { .. }));
        assert_msg(
            &err,
            "long",
            &["trailing garbage", "3 bytes after the 60 data bytes"],
        );
        let err = image_err(&gzip(&bytes), "long.gz");
        assert_msg(&err, "long.gz", &["trailing garbage: 3 bytes"]);
        let mut labels = sample_label_bytes();
        labels.push(0);
        let err = parse_labels(&labels, "long-labels").unwrap_err();
        assert_msg(&err, "long-labels", &["1 bytes after the 3 data bytes"]);
    }

    #[test]
    fn gzip_bomb_is_refused_without_expanding() {
        // One 28x28 image followed by 256 MiB of zeros, compressed to ~256 KiB.
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&idx_bytes(IMAGE_MAGIC, &[1, 28, 28], &[0; 784]))
            .unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        let start = std::time::Instant::now();
        let err = image_err(&bomb, "bomb.gz");
        assert!(start.elapsed().as_secs_f64() < 1.0, "{:?}", start.elapsed());
        assert_msg(
            &err,
            "bomb.gz",
            &["trailing garbage: at least 1048577 bytes"],
        );
    }

    #[test]
    fn zero_items() {
        let err = image_err(&idx_bytes(IMAGE_MAGIC, &[0, 28, 28], &[]), "none");
        assert!(matches!(err, IdxError::Empty { .. }));
        assert_msg(&err, "none", &["zero images"]);
        let err = parse_labels(&idx_bytes(LABEL_MAGIC, &[0], &[]), "no-labels").unwrap_err();
        assert_msg(&err, "no-labels", &["zero labels"]);
    }

    #[test]
    fn absurd_dimensions() {
        let cases: [([u32; 3], &str); 5] = [
            ([10, 0, 28], "found 0"),
            ([10, 28, 0], "found 0"),
            ([10, 4097, 28], "found 4097"),
            ([10, 28, u32::MAX], "found 4294967295"),
            ([u32::MAX, 4096, 4096], "more than 2147483648 bytes"),
        ];
        for (dims, part) in cases {
            let err = image_err(&idx_bytes(IMAGE_MAGIC, &dims, &[]), "huge");
            assert!(matches!(err, IdxError::BadDimensions { .. }), "{err}");
            assert_msg(&err, "huge", &["absurd dimensions", part]);
        }
        let just_over = idx_bytes(IMAGE_MAGIC, &[128 + 1, 4096, 4096], &[]);
        assert_msg(&image_err(&just_over, "over"), "over", &["129x4096x4096"]);
        let labels = idx_bytes(LABEL_MAGIC, &[u32::MAX], &[]);
        let err = parse_labels(&labels, "many-labels").unwrap_err();
        assert_msg(&err, "many-labels", &["absurd dimensions 4294967295"]);
        // Exactly at the cap is allowed by the header check; the data is then missing.
        let at_cap = idx_bytes(IMAGE_MAGIC, &[128, 4096, 4096], &[]);
        assert!(matches!(
            image_err(&at_cap, "cap"),
            IdxError::Truncated { .. }
        ));
    }

    #[test]
    fn count_mismatch() {
        let dir = TempDir::new("mismatch");
        let ip = dir.path("imgs");
        let lp = dir.path("labs");
        write_images(&ip, &sample_images(), false).unwrap();
        write_labels(&lp, &[1, 2], true).unwrap();
        let err = read_labelled(&ip, &lp).unwrap_err();
        assert!(matches!(err, IdxError::CountMismatch { .. }));
        let (iname, lname) = (ip.display().to_string(), lp.display().to_string());
        assert_msg(&err, &iname, &["3 images", &lname, "2 labels"]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let raw = sample_image_bytes();
        let gz = gzip(&raw);
        for bytes in [&raw, &gz] {
            for len in 0..bytes.len() {
                assert!(
                    parse_images(&bytes[..len], "prefix").is_err(),
                    "prefix {len}"
                );
            }
            assert!(parse_images(bytes, "whole").is_ok());
        }
        let raw = sample_label_bytes();
        let gz = gzip(&raw);
        for bytes in [&raw, &gz] {
            for len in 0..bytes.len() {
                assert!(
                    parse_labels(&bytes[..len], "prefix").is_err(),
                    "prefix {len}"
                );
            }
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        let mut rng = Rng(0x1dc0_ffee);
        let sources = [
            sample_image_bytes(),
            gzip(&sample_image_bytes()),
            sample_label_bytes(),
            gzip(&sample_label_bytes()),
        ];
        for round in 0..2000 {
            let mut bytes = sources[round % sources.len()].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(4) {
                    0 => bytes[at] = rng.next() as u8,
                    1 => bytes[at] ^= 1 << rng.below(8),
                    2 => bytes.truncate(at),
                    _ => bytes.insert(at, rng.next() as u8),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            for name in ["mutant", "mutant.gz"] {
                let images = parse_images(&bytes, name);
                let labels = parse_labels(&bytes, name);
                for msg in [images.err(), labels.err()].into_iter().flatten() {
                    assert!(msg.to_string().starts_with(name));
                }
            }
        }
    }

    /// Reads a real t10k/train pair from the shared data directory, if present.
    fn check_real(dataset: &str, split: &str, count: usize) {
        let dir = Path::new(SHARED_DATA).join(dataset);
        let ip = dir.join(format!("{split}-images-idx3-ubyte.gz"));
        let lp = dir.join(format!("{split}-labels-idx1-ubyte.gz"));
        if !ip.exists() || !lp.exists() {
            println!(
                "skipping {dataset} {split}: {} or {} absent",
                ip.display(),
                lp.display()
            );
            return;
        }
        let (images, labels) = read_labelled(&ip, &lp).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (count, 28, 28));
        assert_eq!(images.pixels.len(), count * 28 * 28);
        assert_eq!(labels.len(), count);
        assert!(labels.iter().all(|&l| l < 10));
        let mut seen = [false; 10];
        labels.iter().for_each(|&l| seen[l as usize] = true);
        assert!(seen.iter().all(|&s| s), "some class never appears");
        assert!(images.pixels.contains(&255));
        let bytes = std::fs::read(&ip).unwrap();
        let again = parse_images(&bytes, "embedded").unwrap();
        assert_eq!(again, images);
    }

    #[test]
    fn real_fashion_mnist_t10k() {
        check_real("fashion-mnist", "t10k", 10_000);
    }

    #[test]
    fn real_mnist_t10k() {
        check_real("mnist", "t10k", 10_000);
    }

    #[test]
    fn real_train_sets() {
        check_real("fashion-mnist", "train", 60_000);
        check_real("mnist", "train", 60_000);
    }

    #[test]
    fn real_files_swapped_are_refused() {
        let dir = Path::new(SHARED_DATA).join("mnist");
        let ip = dir.join("t10k-images-idx3-ubyte.gz");
        let lp = dir.join("t10k-labels-idx1-ubyte.gz");
        if !ip.exists() || !lp.exists() {
            println!("skipping swapped real files: {} absent", dir.display());
            return;
        }
        let err = read_images(&lp).unwrap_err();
        assert_msg(
            &err,
            &lp.display().to_string(),
            &["a label file given where images were expected"],
        );
    }
}
