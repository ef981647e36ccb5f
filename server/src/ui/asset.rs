//! `GET /ui/assets/{sha256}`: one asset: its preview, what is known about it
//! (size, type, hash, dimensions, EXIF, integrity), every sighting, a
//! download link, and for admins a delete form.
//! `POST /ui/assets/{sha256}/delete` deletes it (admin, CSRF, a ticked
//! confirmation box).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use asset_catalog_proto::{Asset, Integrity, MediaKind};
use serde::Deserialize;

use super::view::{self, Chrome};
use super::{UiError, Viewer, html, redirect, session::render_error};
use crate::auth::Scope;
use crate::http::AppState;
use crate::http::request::parse_hash;

/// Sightings shown on the page; the API pages through the rest.
const SIGHTINGS: usize = 200;
/// Bytes of a text asset shown.
const TEXT_PREVIEW: u64 = 64 * 1024;

/// Raster image types a browser shows from `<img>` without running anything.
const RASTER: [&str; 8] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/avif",
    "image/x-icon",
    "image/apng",
];

/// How the page previews the asset.
enum Preview {
    Image(String),
    Audio(String),
    Video(String),
    Text { text: String, cut: bool },
    Icon(&'static str),
}

struct SightingRow {
    client: String,
    path: String,
    seen: String,
    seen_iso: String,
    mtime: String,
}

#[derive(Template)]
#[template(path = "asset.html")]
struct AssetPage {
    chrome: Chrome,
    sha: String,
    name: String,
    preview: Preview,
    facts: Vec<(&'static str, String)>,
    integrity: &'static str,
    integrity_ok: bool,
    sightings: Vec<SightingRow>,
    more_sightings: bool,
    content_href: String,
}

pub(super) async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let sha = parse_hash(&path)?;
    let detail = state
        .catalog
        .detail(&viewer.caller, &sha, Some(SIGHTINGS), None)
        .await?;
    let asset = &detail.asset;
    let content_href = format!("/v1/assets/{sha}/content");
    let preview = preview(&state, asset, &content_href).await?;
    let page = AssetPage {
        chrome: Chrome::new(asset.name.clone(), "assets", &viewer),
        sha: sha.to_string(),
        name: asset.name.clone(),
        preview,
        facts: facts(asset),
        integrity: asset.integrity.as_str(),
        integrity_ok: matches!(asset.integrity, Integrity::Ok | Integrity::Unverified),
        sightings: detail
            .sightings
            .iter()
            .map(|s| SightingRow {
                client: s.client.clone(),
                path: s.path.clone(),
                seen: view::when(s.seen_at),
                seen_iso: view::iso(s.seen_at),
                mtime: s.mtime.map(view::when).unwrap_or_default(),
            })
            .collect(),
        more_sightings: detail.sightings_cursor.is_some(),
        content_href,
    };
    Ok(html(StatusCode::OK, page.render().map_err(render_error)?))
}

/// The preview: never the content itself where it could be active (HTML,
/// SVG, XML, scripts and styles are shown as text, if at all).
async fn preview(state: &AppState, asset: &Asset, content: &str) -> Result<Preview, UiError> {
    let ct = asset
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let kind = view::kind(asset);
    let sha = &asset.sha256;
    Ok(match kind {
        MediaKind::Image if asset.thumbnail == Some(true) => {
            Preview::Image(format!("/v1/assets/{sha}/thumbnail?size=1024"))
        }
        MediaKind::Image if RASTER.contains(&ct.as_str()) => Preview::Image(content.to_owned()),
        MediaKind::Audio if ct.starts_with("audio/") => Preview::Audio(content.to_owned()),
        MediaKind::Video if ct.starts_with("video/") => Preview::Video(content.to_owned()),
        _ if is_text(&ct) => {
            let (text, cut) = state.catalog.text_preview(asset, TEXT_PREVIEW).await?;
            Preview::Text { text, cut }
        }
        _ => Preview::Icon(view::icon(kind)),
    })
}

fn is_text(ct: &str) -> bool {
    ct.starts_with("text/")
        || ct.ends_with("+xml")
        || ct.ends_with("+json")
        || matches!(
            ct,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/toml"
                | "application/x-sh"
        )
}

/// Label and value of each known fact, in the order shown.
fn facts(asset: &Asset) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            "Size",
            format!("{} ({} bytes)", view::size(asset.size), asset.size),
        ),
        ("Type", asset.content_type.clone()),
        ("Kind", view::kind(asset).as_str().to_owned()),
        ("First seen", view::when(asset.first_seen)),
        ("Last seen", view::when(asset.last_seen)),
    ];
    if let Some(t) = asset.verified_at {
        out.push(("Verified", view::when(t)));
    }
    let Some(media) = &asset.media else {
        return out;
    };
    if let (Some(w), Some(h)) = (media.width, media.height) {
        // EXIF orientations 5 to 8 turn the picture a quarter: show it as seen.
        let (w, h) = match media.orientation {
            Some(5..=8) => (h, w),
            _ => (w, h),
        };
        out.push(("Dimensions", format!("{w} × {h}")));
    }
    if let Some(secs) = media.duration_secs {
        out.push(("Duration", view::duration(secs)));
    }
    if let Some(t) = media.taken_at {
        out.push(("Taken", view::when(t)));
    }
    let camera = [media.camera_make.as_deref(), media.camera_model.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !camera.is_empty() {
        out.push(("Camera", camera));
    }
    if let Some(gps) = &media.gps {
        out.push((
            "Location",
            format!("{:.5}, {:.5}", gps.latitude, gps.longitude),
        ));
    }
    out
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteForm {
    csrf: Option<String>,
    confirm: Option<String>,
}

pub(super) async fn delete(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, UiError> {
    viewer.check_form(&req, form.csrf.as_deref())?;
    viewer.require(Scope::Admin, "delete assets")?;
    let sha = parse_hash(&path)?;
    if form.confirm.as_deref() != Some("yes") {
        return Err(UiError::bad_request(
            "nothing was deleted: tick \"Yes, delete it\" to confirm, then press Delete",
        ));
    }
    state.catalog.delete(&viewer.caller, &sha).await?;
    Ok(redirect(&format!("/?deleted={sha}")))
}
