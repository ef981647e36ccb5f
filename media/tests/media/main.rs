//! The media crate over real content: files this suite makes with the
//! `image` crate and by hand, and real photos and icons from Debian packages
//! (skipped, loudly, when the package is absent).

mod common;

mod av;
mod describe;
mod exif;
mod robustness;
mod thumbnails;
