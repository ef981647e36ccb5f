//! HTTP API v1 on actix-web: routes, extractor error handlers and the
//! fallbacks that make every error (malformed JSON, bad query, unknown route,
//! wrong method) a JSON `{code, message}` body. One file per resource; the
//! handlers are thin and call into [`crate::service`].

mod asset;
pub(crate) mod assets;
pub(crate) mod content;
mod errors;
mod guard;
mod health;
mod observe;
mod openapi;
mod pace;
pub(crate) mod request;
mod sightings;
mod thumbnail;
pub(crate) mod uploads;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{App, Resource, web};

use crate::metrics::Metrics;
use crate::service::Catalog;

/// Largest JSON request body (a full check batch is ~0.7 MB).
pub const JSON_LIMIT: usize = 2 * 1024 * 1024;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub catalog: Catalog,
    pub metrics: Arc<Metrics>,
    pub metrics_enabled: bool,
    pub limits: RequestLimits,
}

/// Who may call what, and the abuse limits enforced before a handler runs.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Require bearer tokens (`[auth] enabled`).
    pub auth_enabled: bool,
    /// `/metrics` without a token (`[auth] metrics_public`).
    pub metrics_public: bool,
    /// Total header bytes accepted (`[server] max_header_bytes`).
    pub max_header_bytes: usize,
    /// Slow-sender limits of upload bodies.
    pub pace: pace::Pace,
    /// Permits for uploads in flight (`[server] max_concurrent_uploads`).
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// When each token's `last_used` was last written (rate-limits those writes).
    pub touched: guard::TouchLog,
    /// The web UI's settings (`[ui]`).
    pub ui: crate::ui::UiSettings,
    /// Resumable uploads (`[uploads]`).
    pub resumable: UploadSettings,
}

/// How resumable upload sessions behave.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// A session expires this long after it began.
    pub expire_after: Duration,
}

impl RequestLimits {
    /// From the configuration.
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            auth_enabled: config.auth.enabled,
            metrics_public: config.auth.metrics_public,
            max_header_bytes: config.server.max_header_bytes,
            pace: pace::Pace {
                stall: Duration::from_secs(config.server.body_stall_timeout_secs),
                min_rate: config.server.min_upload_bytes_per_sec,
                deadline: Duration::from_secs(config.server.upload_deadline_secs),
            },
            uploads: Arc::new(tokio::sync::Semaphore::new(
                config.server.max_concurrent_uploads,
            )),
            touched: guard::TouchLog::default(),
            ui: crate::ui::UiSettings::from_config(config),
            resumable: UploadSettings {
                expire_after: config.uploads.expire_after(),
            },
        }
    }
}

/// The complete application, as served by `run` and by handler-level tests.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let ui = state.limits.ui.enabled;
    App::new()
        .app_data(web::Data::new(state))
        .wrap(from_fn(guard::guard))
        .wrap(from_fn(observe::observe))
        .configure(|cfg| {
            if ui {
                crate::ui::routes(cfg);
            }
            routes(cfg);
        })
}

/// One route: its path pattern and every method it serves (the `Allow` of its 405).
pub type Route = (&'static str, &'static str);

const HEALTHZ: Route = ("/healthz", "GET");
const READYZ: Route = ("/readyz", "GET");
const METRICS: Route = ("/metrics", "GET");
const OPENAPI: Route = (openapi::PATH, "GET");
const ASSETS: Route = ("/v1/assets", "GET, POST");
const CHECK: Route = ("/v1/assets/check", "POST");
const ASSET: Route = ("/v1/assets/{sha256}", "GET, HEAD, PUT, DELETE");
const CONTENT: Route = ("/v1/assets/{sha256}/content", "GET, HEAD");
const SIGHTINGS: Route = ("/v1/assets/{sha256}/sightings", "POST");
const THUMBNAIL: Route = ("/v1/assets/{sha256}/thumbnail", "GET, HEAD");
const UPLOADS: Route = (uploads::API_BASE, "OPTIONS, POST");
const UPLOAD: Route = ("/v1/uploads/{id}", "HEAD, PATCH, DELETE");

/// Every route [`routes`] registers; the OpenAPI test holds the document to it.
pub const ROUTES: [Route; 12] = [
    HEALTHZ, READYZ, METRICS, OPENAPI, ASSETS, CHECK, ASSET, CONTENT, SIGHTINGS, THUMBNAIL,
    UPLOADS, UPLOAD,
];

/// Routes, extractor configuration and fallbacks.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(errors::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(errors::query_error))
    .app_data(web::PathConfig::default().error_handler(errors::path_error))
    .service(resource(HEALTHZ).route(web::get().to(health::healthz)))
    .service(resource(READYZ).route(web::get().to(health::readyz)))
    .service(resource(METRICS).route(web::get().to(health::metrics)))
    .service(resource(OPENAPI).route(web::get().to(openapi::document)))
    .service(
        resource(ASSETS)
            .route(web::get().to(assets::list))
            .route(web::post().to(assets::form_upload)),
    )
    .service(resource(CHECK).route(web::post().to(assets::check)))
    .service(
        resource(ASSET)
            .route(web::get().to(asset::get))
            .route(web::head().to(asset::get))
            .route(web::put().to(asset::put))
            .route(web::delete().to(asset::delete)),
    )
    .service(
        resource(CONTENT)
            .route(web::get().to(content::get))
            .route(web::head().to(content::get)),
    )
    .service(resource(SIGHTINGS).route(web::post().to(sightings::post)))
    .service(
        resource(THUMBNAIL)
            .route(web::get().to(thumbnail::get))
            .route(web::head().to(thumbnail::get)),
    )
    .service(
        resource(UPLOADS)
            .route(web::method(Method::OPTIONS).to(uploads::options))
            .route(web::post().to(uploads::create)),
    )
    .service(
        resource(UPLOAD)
            .route(web::head().to(uploads::head))
            .route(web::patch().to(uploads::patch))
            .route(web::delete().to(uploads::delete)),
    )
    .default_service(web::to(errors::route_not_found));
}

/// A resource whose unmatched methods get a JSON 405 with `Allow`.
fn resource((path, allow): Route) -> Resource {
    web::resource(path).default_service(web::to(move || errors::method_not_allowed(allow)))
}
