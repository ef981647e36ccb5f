//! The gate every request passes before a handler: header size (431),
//! bearer token and scope (401/403), storage known to be down (503 for
//! uploads, before anything else is spent on them) and the concurrent-upload
//! cap (429).
//!
//! Scopes per route: `GET`/`HEAD` need `read`; `PUT`/`POST` (upload, form
//! upload, check, sightings) need `upload`; `DELETE` needs `admin`; `admin`
//! allows everything. Resumable uploads (`/v1/uploads…`, tus) need `upload`
//! for every method but `OPTIONS`, which is open, and a `PATCH` holds an
//! upload permit. `/healthz`, `/readyz` and `/v1/openapi.json` are open;
//! `/metrics` needs `read` unless `[auth] metrics_public = true`. The token is looked up in
//! the index on every request (no cache), so a revocation applies at once.
//! Neither the `Authorization` header nor the token is ever logged.
//!
//! The web UI (`/` and `/ui/…`, its tus routes `/ui/uploads…` included, whose
//! `PATCH` holds an upload permit too) is open here: its pages send a browser
//! without a session to the sign-in page themselves. A browser's session
//! cookie (see `service::session`) stands in for a bearer token on the UI's
//! routes and on `GET`/`HEAD` of the API (thumbnails, content); never on an
//! API write, so a cross-site form cannot use it (the UI's own forms carry a
//! CSRF token, checked by `crate::ui`).
//!
//! The verified [`Caller`] (or [`Caller::trusted`] with auth off) goes into
//! the request's extensions for the handlers, with the [`UiSession`] when a
//! cookie named one. `/readyz` stays open; a valid
//! token sent with it earns the detailed answer, any other the short one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use asset_catalog_proto::ErrorCode;
use futures_util::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use super::AppState;
use crate::auth::{Presented, Scope};
use crate::error::ApiError;
use crate::service::{Caller, UiSession};
use crate::ui::SESSION_COOKIE;

/// `last_used` is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Last `last_used` write per token id.
#[derive(Debug, Clone, Default)]
pub struct TouchLog(Arc<Mutex<HashMap<String, Instant>>>);

impl TouchLog {
    /// True (and recorded) when `id` is due for a `last_used` write.
    fn due(&self, id: &str) -> bool {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match map.get(id) {
            Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                map.insert(id.to_owned(), now);
                true
            }
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Open,
    /// Open, but a token sent along is verified and identifies the caller.
    OpenOrToken,
    /// Any valid token (unknown methods: the router answers 405).
    AnyToken,
    /// A web UI page: a session cookie, if sent, identifies the caller.
    Ui,
    Scope(Scope),
}

fn need(method: &Method, path: &str, metrics_public: bool) -> Need {
    match path {
        "/healthz" | super::openapi::PATH => return Need::Open,
        "/readyz" => return Need::OpenOrToken,
        "/metrics" if metrics_public => return Need::Open,
        "/" => return Need::Ui,
        // The UI's stylesheet, script and icons are the same for everyone.
        p if p.starts_with("/ui/static/") => return Need::Open,
        p if p.starts_with("/ui/") => return Need::Ui,
        // tus: a client asks what the server supports before it has a token
        // in hand; every other tus request (HEAD included) is an upload's.
        "/v1/uploads" if *method == Method::OPTIONS => return Need::Open,
        p if p == "/v1/uploads" || p.starts_with("/v1/uploads/") => {
            return Need::Scope(Scope::Upload);
        }
        _ => {}
    }
    match *method {
        Method::GET | Method::HEAD => Need::Scope(Scope::Read),
        Method::PUT | Method::POST => Need::Scope(Scope::Upload),
        Method::DELETE => Need::Scope(Scope::Admin),
        _ => Need::AnyToken,
    }
}

/// Uploads hold a permit for their whole duration.
fn is_upload(method: &Method, path: &str) -> bool {
    let tus_session = path.starts_with("/v1/uploads/") || path.starts_with("/ui/uploads/");
    (*method == Method::PATCH && tus_session)
        || (*method == Method::PUT && path.starts_with("/v1/assets/"))
        || (*method == Method::POST && (path == "/v1/assets" || path == crate::ui::UPLOAD_PATH))
}

pub(super) async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let limits = &state.limits;
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > limits.max_header_bytes {
        let e = ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!(
                "the request's header fields total {header_bytes} bytes; this server accepts at most {}",
                limits.max_header_bytes
            ),
        );
        return Ok(reject(req, &e));
    }
    let caller = if limits.auth_enabled {
        let needed = need(req.method(), req.path(), limits.metrics_public);
        match authorize(&state, &req, needed).await {
            Ok(caller) => caller,
            // An open route stays open: a bad token just earns no details.
            Err(_) if needed == Need::OpenOrToken => None,
            Err(e) => return Ok(reject(req, &e)),
        }
    } else {
        Some(Authorized::Caller(Caller::trusted()))
    };
    let caller = caller.map(|who| who.into_caller(&req));
    let _permit = if is_upload(req.method(), req.path()) {
        let caller = caller.clone().unwrap_or_else(Caller::trusted);
        match admit_upload(&state, &caller) {
            Ok(permit) => Some(permit),
            Err(e) => {
                drain(&mut req).await;
                return Ok(reject(req, &e));
            }
        }
    } else {
        None
    };
    if let Some(caller) = caller {
        req.extensions_mut().insert(caller);
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Storage first (an outage answers 503 without taking a slot), then a slot.
fn admit_upload(state: &AppState, caller: &Caller) -> Result<OwnedSemaphorePermit, ApiError> {
    state.catalog.admit_upload(caller)?;
    Arc::clone(&state.limits.uploads)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::TooManyRequests,
                "the server is at its limit of concurrent uploads ([server] max_concurrent_uploads); retry later",
            )
        })
}

/// Most of a refused upload's body read and dropped, and for how long.
const DRAIN_MAX: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Read and drop (a bounded part of) a refused upload's body: a client that
/// sends its whole body before it reads the answer then reads the refusal
/// rather than a reset connection. Past the bound the connection is closed.
async fn drain(req: &mut ServiceRequest) {
    let mut payload = req.take_payload();
    let mut seen = 0u64;
    let read = async {
        while let Some(Ok(chunk)) = payload.next().await {
            seen += chunk.len() as u64;
            if seen > DRAIN_MAX {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

fn reject<B>(req: ServiceRequest, e: &ApiError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(e.error_response()).map_into_right_body()
}

/// Who a request's credentials name.
enum Authorized {
    Caller(Caller),
    Session(UiSession),
}

impl Authorized {
    /// The caller; a session also goes into the request for the UI's pages.
    fn into_caller(self, req: &ServiceRequest) -> Caller {
        match self {
            Self::Caller(caller) => caller,
            Self::Session(session) => {
                let caller = session.caller.clone();
                req.extensions_mut().insert(session);
                caller
            }
        }
    }
}

impl From<Caller> for Authorized {
    fn from(caller: Caller) -> Self {
        Self::Caller(caller)
    }
}

/// The caller a request's token (or session cookie) names, if the route
/// needs (or got) one.
async fn authorize(
    state: &AppState,
    req: &ServiceRequest,
    needed: Need,
) -> Result<Option<Authorized>, ApiError> {
    let header = req.headers().get(header::AUTHORIZATION);
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    match (needed, header) {
        (Need::Open, _) | (Need::OpenOrToken, None) => return Ok(None),
        (Need::Ui, None) => return Ok(session(state, req).await?.map(Authorized::Session)),
        (Need::Scope(scope), None) if safe => {
            if let Some(session) = session(state, req).await? {
                return match session.caller.scopes().allows(scope) {
                    true => Ok(Some(Authorized::Session(session))),
                    false => Err(ApiError::new(
                        ErrorCode::Forbidden,
                        format!("this session lacks the `{scope}` scope this request needs"),
                    )),
                };
            }
        }
        _ => {}
    }
    let unauthorized = |m: &str| ApiError::new(ErrorCode::Unauthorized, m);
    let value = header
        .ok_or_else(|| unauthorized("this route needs a bearer token (Authorization: Bearer …)"))?;
    let text = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
    let presented = Presented::parse(text).ok_or_else(|| unauthorized("unknown token"))?;
    let grant = state.catalog.verify_token(&presented).await?;
    let (id, scopes) = (grant.id.clone(), grant.scopes.clone());
    if state.limits.touched.due(&id) {
        state.catalog.record_token_use(&id);
    }
    match needed {
        Need::Scope(scope) if !scopes.allows(scope) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("token {id} ({scopes}) lacks the `{scope}` scope this request needs"),
        )),
        _ => Ok(Some(Caller::from_grant(grant).into())),
    }
}

/// The live session the request's cookie names, if any.
async fn session(state: &AppState, req: &ServiceRequest) -> Result<Option<UiSession>, ApiError> {
    match req.cookie(SESSION_COOKIE) {
        Some(cookie) => Ok(state.catalog.ui_session(cookie.value()).await?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_per_route() {
        let n = |m: Method, p: &str| need(&m, p, false);
        assert_eq!(n(Method::GET, "/healthz"), Need::Open);
        assert_eq!(n(Method::GET, "/readyz"), Need::OpenOrToken);
        assert_eq!(n(Method::GET, "/v1/openapi.json"), Need::Open);
        assert_eq!(n(Method::GET, "/metrics"), Need::Scope(Scope::Read));
        assert_eq!(need(&Method::GET, "/metrics", true), Need::Open);
        assert_eq!(
            n(Method::POST, "/v1/assets/check"),
            Need::Scope(Scope::Upload)
        );
        assert_eq!(n(Method::DELETE, "/v1/assets/x"), Need::Scope(Scope::Admin));
        assert_eq!(n(Method::PATCH, "/v1/assets/x"), Need::AnyToken);
        assert_eq!(n(Method::GET, "/"), Need::Ui);
        assert_eq!(n(Method::POST, "/ui/assets/x/delete"), Need::Ui);
        assert_eq!(n(Method::GET, "/ui/static/app.css"), Need::Open);
        assert!(is_upload(&Method::POST, "/ui/upload"));
        assert_eq!(n(Method::OPTIONS, "/v1/uploads"), Need::Open);
        assert_eq!(
            n(Method::HEAD, "/v1/uploads/ab"),
            Need::Scope(Scope::Upload)
        );
        assert!(is_upload(&Method::PATCH, "/v1/uploads/ab"));
        assert!(is_upload(&Method::PATCH, "/ui/uploads/ab"));
        assert_eq!(n(Method::PATCH, "/ui/uploads/ab"), Need::Ui);
        assert!(!is_upload(&Method::HEAD, "/ui/uploads/ab"));
        assert!(is_upload(&Method::PUT, "/v1/assets/ab"));
        assert!(!is_upload(&Method::POST, "/v1/assets/check"));
    }
}
