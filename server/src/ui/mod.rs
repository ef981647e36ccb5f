//! The web UI: server-rendered HTML pages at `/` and under `/ui/`, built
//! from askama templates (`server/templates/`, compiled into the binary and
//! escaped by default) and a little progressive JavaScript
//! (`server/static/app.js`: drag-and-drop upload, copy buttons; for large
//! files it loads the vendored `tus-js-client` and `@noble/hashes` from
//! `server/static/vendor/` on demand). Every page works without the script;
//! nothing is fetched from anywhere else.
//!
//! One file per page: [`browse`] (the grid and list with search and filters),
//! [`asset`] (preview, details, sightings, download, delete), [`overview`],
//! [`upload`] (a file in one form post) and [`uploads`] (large files over
//! tus, resumable), [`session`] (sign-in, sign-out, sign-in links, CSRF), with the
//! shared page frame and formatting in [`view`], the HTML error pages in
//! [`error`] and the embedded static files in [`static_files`].
//!
//! Safety: pages carry a strict CSP (`script-src 'self'`, no inline script or
//! style, `frame-ancestors 'none'`); uploaded content is never rendered in
//! this origin: images come through `<img>` (thumbnails, or the content route
//! for raster types, which keeps `Content-Security-Policy: sandbox`, `nosniff`
//! and `attachment`), audio and video through `<audio>`/`<video>`, text as
//! escaped text; HTML, SVG, XML, JavaScript and CSS only ever as text.

mod asset;
mod browse;
mod error;
mod overview;
mod session;
mod static_files;
mod upload;
mod uploads;
mod view;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

pub use error::UiError;
pub use session::Viewer;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "acat_session";
/// Where the drag-and-drop upload posts (the HTTP gate admits it as an upload).
pub const UPLOAD_PATH: &str = "/ui/upload";

/// The CSP of every UI page: only this origin's own scripts, styles, images
/// and media; no inline script or style, no frames, forms only to itself.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; media-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// How the UI behaves (`[ui]`).
#[derive(Debug, Clone)]
pub struct UiSettings {
    pub enabled: bool,
    pub session_lifetime: std::time::Duration,
    pub link_lifetime: std::time::Duration,
    /// Mark the session cookie `Secure` (the server speaks TLS).
    pub secure_cookie: bool,
    /// Dropped files larger than this go through tus (`/ui/uploads`).
    pub resumable_above: u64,
}

impl UiSettings {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            enabled: config.ui.enabled,
            session_lifetime: config.ui.session_lifetime(),
            link_lifetime: config.ui.link_lifetime(),
            secure_cookie: config.tls_enabled(),
            resumable_above: config.ui.resumable_above_bytes,
        }
    }
}

const BROWSE: &str = "/";
const ASSET: &str = "/ui/assets/{sha256}";
const DELETE: &str = "/ui/assets/{sha256}/delete";
const OVERVIEW: &str = "/ui/overview";
const SIGN_IN: &str = "/ui/sign-in";
const LINK: &str = "/ui/sign-in/link";
const SIGN_OUT: &str = "/ui/sign-out";
const STATIC: &str = "/ui/static/{file}";
const TUS: &str = uploads::BASE;
const TUS_SESSION: &str = "/ui/uploads/{id}";

/// Every route pattern of the UI (the `route` label of request metrics).
pub const ROUTES: [&str; 11] = [
    BROWSE,
    ASSET,
    DELETE,
    OVERVIEW,
    UPLOAD_PATH,
    SIGN_IN,
    LINK,
    SIGN_OUT,
    STATIC,
    TUS,
    TUS_SESSION,
];

/// The UI's routes (registered only when `[ui] enabled`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BROWSE, web::get().to(browse::page))
        .route(ASSET, web::get().to(asset::page))
        .route(DELETE, web::post().to(asset::delete))
        .route(OVERVIEW, web::get().to(overview::page))
        .route(UPLOAD_PATH, web::post().to(upload::post))
        .route(SIGN_IN, web::get().to(session::form))
        .route(SIGN_IN, web::post().to(session::sign_in))
        .route(LINK, web::get().to(session::link_form))
        .route(LINK, web::post().to(session::redeem_link))
        .route(SIGN_OUT, web::post().to(session::sign_out))
        .route(STATIC, web::get().to(static_files::get))
        .route(TUS, web::post().to(uploads::create))
        .route(TUS_SESSION, web::head().to(uploads::head))
        .route(TUS_SESSION, web::patch().to(uploads::patch))
        .route(TUS_SESSION, web::delete().to(uploads::delete));
}

/// An HTML page with the UI's security headers; never cached (it carries
/// the session's CSRF token).
pub(crate) fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    secure(&mut response);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// `303 See Other` to a path of this UI.
pub(crate) fn redirect(to: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    secure(&mut response);
    match HeaderValue::from_str(to) {
        Ok(v) => response.insert_header((header::LOCATION, v)),
        Err(_) => response.insert_header((header::LOCATION, "/")),
    };
    response.finish()
}

fn secure(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"));
}
