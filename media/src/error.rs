//! The one error type of this crate, with messages a person can act on, and
//! the single place that says which failures are worth retrying.

use std::fmt;

/// Which bound an image is over (see [`crate::Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// The widest image allowed, in pixels.
    Width(u32),
    /// The highest image allowed, in pixels.
    Height(u32),
    /// The most pixels allowed in one image.
    Pixels(u64),
    /// The most bytes that decoding may allocate.
    Memory(u64),
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Width(max) => write!(f, "{max} pixels wide"),
            Self::Height(max) => write!(f, "{max} pixels high"),
            Self::Pixels(max) => write!(f, "{} megapixels", megapixels(max)),
            Self::Memory(max) => write!(f, "{} MiB of memory to decode", max >> 20),
        }
    }
}

/// One decimal place, without a float in sight of the caller.
fn megapixels(pixels: u64) -> String {
    let tenths = pixels / 100_000;
    match tenths % 10 {
        0 => format!("{}", tenths / 10),
        rest => format!("{}.{rest}", tenths / 10),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The header claims more pixels than [`crate::Limits`] allow: nothing
    /// was decoded.
    #[error("the image is {width} x {height} pixels, over the limit of {limit}")]
    TooLarge {
        width: u32,
        height: u32,
        limit: Exceeded,
    },
    /// The bytes are not a whole, valid file of their type.
    #[error("the file is damaged or incomplete: {0}")]
    Corrupt(String),
    /// A type or a feature this crate does not handle.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Reading the object failed; another attempt may succeed.
    #[error("could not read the object: {0}")]
    Io(#[from] std::io::Error),
}

impl MediaError {
    /// Whether the same bytes would fail the same way again: everything but
    /// I/O. A job marks a permanent failure done; it retries the others.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Io(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        let e = MediaError::TooLarge {
            width: 100_000,
            height: 100_000,
            limit: Exceeded::Width(32_768),
        };
        assert_eq!(
            e.to_string(),
            "the image is 100000 x 100000 pixels, over the limit of 32768 pixels wide"
        );
        assert_eq!(
            Exceeded::Pixels(134_217_728).to_string(),
            "134.2 megapixels"
        );
        assert_eq!(Exceeded::Pixels(100_000_000).to_string(), "100 megapixels");
        assert_eq!(
            Exceeded::Memory(1 << 30).to_string(),
            "1024 MiB of memory to decode"
        );
    }

    #[test]
    fn only_io_is_worth_retrying() {
        assert!(MediaError::Corrupt("x".into()).is_permanent());
        assert!(MediaError::Unsupported("x".into()).is_permanent());
        assert!(!MediaError::Io(std::io::Error::other("disk")).is_permanent());
    }
}
