//! Pure, synchronous media functions for the server's background jobs: what
//! an object is ([`sniff`]), what its bytes say about it ([`describe`]), and
//! its thumbnails ([`thumbnails`]). No I/O of its own beyond the reader it is
//! handed, no threads, no unsafe code, and bounded memory: every decoder runs
//! under [`Limits`] checked against the header before pixels are allocated.

mod av;
mod describe;
mod error;
mod exif;
mod limits;
mod matroska;
mod raster;
mod sniff;
mod thumbnail;

pub use asset_catalog_proto::{Gps, Media, MediaKind};
pub use describe::{DescribeOptions, describe};
pub use error::{Exceeded, MediaError};
pub use limits::Limits;
pub use sniff::{SNIFF_BYTES, UNKNOWN_TYPE, sniff};
pub use thumbnail::{THUMBNAIL_SIZES, Thumbnail, can_thumbnail, thumbnails};
