//! `GET /ui/static/{file}`: the stylesheet, the script, the icons and the
//! vendored libraries the script loads for large uploads (`static/vendor/`),
//! compiled into the binary (no CDN, no external font; works offline and
//! from the `.deb`). Pages link them as `…?v=<version>`, a hash of all of
//! them, so a versioned URL is cached for a year and a new build is fetched
//! at once; anything else is revalidated by its ETag.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::UiError;
use crate::http::content::not_modified;

/// Name, content type and bytes of each file.
const FILES: [(&str, &str, &[u8]); 12] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
    (
        "icon-image.svg",
        "image/svg+xml",
        include_bytes!("../../static/icon-image.svg"),
    ),
    (
        "icon-video.svg",
        "image/svg+xml",
        include_bytes!("../../static/icon-video.svg"),
    ),
    (
        "icon-audio.svg",
        "image/svg+xml",
        include_bytes!("../../static/icon-audio.svg"),
    ),
    (
        "icon-document.svg",
        "image/svg+xml",
        include_bytes!("../../static/icon-document.svg"),
    ),
    (
        "icon-other.svg",
        "image/svg+xml",
        include_bytes!("../../static/icon-other.svg"),
    ),
    // Third-party code, unmodified from npm (docs/DESIGN.md says which
    // versions and why), with its licence; the script loads it only when a
    // large file is dropped.
    (
        "tus.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/vendor/tus.min.js"),
    ),
    (
        "tus-js-client.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../static/vendor/tus-js-client.LICENSE"),
    ),
    (
        "noble-sha256.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/vendor/noble-sha256.min.js"),
    ),
    (
        "noble-hashes.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../static/vendor/noble-hashes.LICENSE"),
    ),
];

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (name, _, bytes) in FILES {
        hash.update(name.as_bytes());
        hash.update(bytes);
    }
    hex::encode(&hash.finalize()[..6])
});

/// The version tag pages put on static URLs.
pub fn version() -> &'static str {
    &VERSION
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct VersionQuery {
    v: Option<String>,
}

pub(super) async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, UiError> {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, ..)| *name == path.as_str())
    else {
        return Err(UiError::page(
            actix_web::http::StatusCode::NOT_FOUND,
            format!("no static file {:?}", path.as_str()),
        ));
    };
    let tag = format!("{}-{}", version(), path.as_str());
    let cache = if query.v.as_deref() == Some(version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let unchanged = not_modified(&req, &tag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, format!("\"{tag}\"")))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ));
    if unchanged {
        return Ok(response.finish());
    }
    Ok(response.content_type(*content_type).body(*bytes))
}
