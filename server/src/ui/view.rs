//! The frame every page shares (title, navigation, who is signed in, the
//! CSRF token for its forms) and the formatting of sizes, times and types.
//! Templates get finished strings; askama escapes every one of them.

use asset_catalog_proto::{Asset, MediaKind};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::Viewer;
use super::static_files;
use crate::auth::Scope;

/// What the page frame (`templates/base.html`) shows.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// The session's CSRF token for the page's forms ("" without a session).
    pub csrf: String,
    /// A session exists: show who and "Sign out".
    pub signed_in: bool,
    pub who: String,
    pub may_upload: bool,
    pub is_admin: bool,
    /// Which navigation entry is current: "assets", "overview" or "".
    pub nav: &'static str,
    /// Version tag of the static files (cache busting).
    pub v: &'static str,
}

impl Chrome {
    /// The frame of a page for `viewer`.
    pub fn new(title: impl Into<String>, nav: &'static str, viewer: &Viewer) -> Self {
        let scopes = viewer.caller.scopes();
        Self {
            title: title.into(),
            csrf: viewer.csrf().to_owned(),
            signed_in: viewer.session.is_some(),
            who: viewer.describe(),
            may_upload: scopes.allows(Scope::Upload),
            is_admin: scopes.allows(Scope::Admin),
            nav,
            v: static_files::version(),
        }
    }

    /// The frame of a page shown to nobody in particular (sign-in, errors).
    pub fn bare(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            csrf: String::new(),
            signed_in: false,
            who: String::new(),
            may_upload: false,
            is_admin: false,
            nav: "",
            v: static_files::version(),
        }
    }
}

/// `1.2 MiB`.
pub fn size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

/// `2026-11-30 21:51 UTC`.
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_else(|_| iso(t))
}

/// RFC 3339, for `<time datetime>`.
pub fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `1:05` or `1:02:03`.
pub fn duration(secs: f64) -> String {
    let total = secs.round().max(0.0) as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// What an asset is, for its icon and preview: the metadata job's kind
/// where it ran, else the declared type.
pub fn kind(asset: &Asset) -> MediaKind {
    if let Some(media) = &asset.media {
        return media.kind;
    }
    let ct = asset.content_type.as_str();
    match ct.split('/').next().unwrap_or_default() {
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        "text" => MediaKind::Document,
        _ if ct.starts_with("application/pdf") || ct.starts_with("application/json") => {
            MediaKind::Document
        }
        _ => MediaKind::Other,
    }
}

/// The type icon's file under `/ui/static/`.
pub fn icon(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "icon-image.svg",
        MediaKind::Video => "icon-video.svg",
        MediaKind::Audio => "icon-audio.svg",
        MediaKind::Document => "icon-document.svg",
        MediaKind::Other => "icon-other.svg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(duration(3.0), "0:03");
        assert_eq!(duration(3725.4), "1:02:05");
        let t = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(61);
        assert_eq!(when(t), "1970-01-01 01:01 UTC");
    }
}
