//! Sign-in, sign-out and sign-in links, and who a UI request comes from
//! ([`Viewer`]), with the CSRF rule every state-changing form obeys:
//!
//! 1. the request comes from this origin: its `Origin` names this host, or,
//!    without `Origin`, `Sec-Fetch-Site` is `same-origin` or `none` (a
//!    client sending neither is no browser, and sends no cookie on its own);
//! 2. its CSRF token (form field `csrf`, or header `X-CSRF-Token` for the
//!    upload script) is the session's, compared in constant time.
//!
//! The session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure`
//! when the server speaks TLS, and expires with the session.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::view::Chrome;
use super::{SESSION_COOKIE, UiError, html, redirect};
use crate::auth::Scope;
use crate::http::AppState;
use crate::service::{Caller, ServiceError, SignedIn, UiSession};

/// Who a UI request comes from: a session, or (authentication off, or a
/// bearer token sent by a script) a caller without one.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    pub session: Option<UiSession>,
}

impl FromRequest for Viewer {
    type Error = UiError;
    type Future = Ready<Result<Self, UiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ext = req.extensions();
        let viewer = if let Some(session) = ext.get::<UiSession>() {
            Ok(Self {
                caller: session.caller.clone(),
                session: Some(session.clone()),
            })
        } else if let Some(caller) = ext.get::<Caller>() {
            Ok(Self {
                caller: caller.clone(),
                session: None,
            })
        } else {
            let next = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            Err(UiError::SignIn { next })
        };
        // Every page shows the catalog: a token that may only upload sees none of it.
        ready(viewer.and_then(|v| v.require(Scope::Read, "see the catalog").map(|()| v)))
    }
}

impl Viewer {
    /// The session's CSRF token ("" without a session).
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }

    /// "token 3f2a… (read, upload)", for the page header.
    pub fn describe(&self) -> String {
        let scopes = self.caller.scopes();
        match (self.caller.token_id(), &self.session) {
            (Some(id), _) => format!("token {id} ({scopes})"),
            (None, Some(_)) => format!("sign-in link ({scopes})"),
            (None, None) => "authentication off".into(),
        }
    }

    /// Refuse a viewer without `scope`.
    pub fn require(&self, scope: Scope, to: &str) -> Result<(), UiError> {
        if self.caller.scopes().allows(scope) {
            Ok(())
        } else {
            Err(UiError::forbidden(format!(
                "{} cannot {to}: that needs the `{scope}` scope; sign in with a token that has it",
                self.describe()
            )))
        }
    }

    /// The CSRF rule (module docs) for a state-changing request.
    pub fn check_form(&self, req: &HttpRequest, token: Option<&str>) -> Result<(), UiError> {
        if !same_origin(req) {
            return Err(UiError::forbidden(
                "this form was sent from another site; open the page on this server and send it from there",
            ));
        }
        let Some(session) = &self.session else {
            // Authentication off (or a bearer token): nothing to forge.
            return Ok(());
        };
        let matches =
            token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())));
        if matches {
            Ok(())
        } else {
            Err(UiError::forbidden(
                "this form's security token is missing or from another session; reload the page and try again",
            ))
        }
    }
}

/// Rule 1 of the module docs.
pub(super) fn same_origin(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = req.connection_info().host().to_ascii_lowercase();
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        return authority == Some(host.as_str());
    }
    match headers.get("sec-fetch-site").map(|v| v.to_str()) {
        Some(Ok(site)) => site == "same-origin" || site == "none",
        Some(Err(_)) => false,
        None => true,
    }
}

/// A local path to go to after signing in: `/…`, never `//host` or `/\host`.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => p,
        _ => "/",
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    chrome: Chrome,
    next: &'a str,
    error: &'a str,
}

fn sign_in_page(status: StatusCode, next: &str, error: &str) -> Result<HttpResponse, UiError> {
    let page = SignInPage {
        chrome: Chrome::bare("Sign in"),
        next: local_path(Some(next)),
        error,
    };
    Ok(html(status, page.render().map_err(render_error)?))
}

pub(super) fn render_error(e: askama::Error) -> UiError {
    tracing::error!(error = %e, "rendering a page failed");
    UiError::page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "this page could not be rendered; the server's log says why",
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// `GET /ui/sign-in`: the form (or straight on, when already signed in).
pub(super) async fn form(
    req: HttpRequest,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, UiError> {
    let next = local_path(query.next.as_deref());
    if req.extensions().get::<UiSession>().is_some() {
        return Ok(redirect(next));
    }
    sign_in_page(StatusCode::OK, next, "")
}

#[derive(Debug, Deserialize)]
pub(super) struct SignInForm {
    token: String,
    next: Option<String>,
}

/// `POST /ui/sign-in`: a token's text for a session cookie.
pub(super) async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, UiError> {
    let next = local_path(form.next.as_deref());
    if !same_origin(&req) {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            next,
            "This sign-in came from another site; sign in on this page.",
        );
    }
    let settings = &state.limits.ui;
    match state
        .catalog
        .sign_in(&form.token, settings.session_lifetime)
        .await
    {
        Ok(signed_in) => Ok(with_cookie(
            redirect(next),
            &signed_in,
            settings.secure_cookie,
        )),
        Err(ServiceError::Unauthorized(m)) => sign_in_page(StatusCode::UNAUTHORIZED, next, &m),
        Err(ServiceError::Forbidden(m)) => sign_in_page(StatusCode::FORBIDDEN, next, &m),
        Err(e) => Err(e.into()),
    }
}

fn with_cookie(mut response: HttpResponse, signed_in: &SignedIn, secure: bool) -> HttpResponse {
    let cookie = Cookie::build(SESSION_COOKIE, signed_in.secret.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .expires(signed_in.expires)
        .finish();
    if let Err(e) = response.add_cookie(&cookie) {
        tracing::error!(error = %e, "setting the session cookie failed");
    }
    response
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /ui/sign-out`: end the session, drop the cookie.
pub(super) async fn sign_out(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    viewer.check_form(&req, form.csrf.as_deref())?;
    if let Some(session) = &viewer.session {
        state.catalog.sign_out(session).await?;
    }
    let mut response = redirect("/ui/sign-in");
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    if let Err(e) = response.add_cookie(&gone) {
        tracing::error!(error = %e, "clearing the session cookie failed");
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "sign_in_link.html")]
struct LinkPage<'a> {
    chrome: Chrome,
    link: &'a str,
}

#[derive(Debug, Deserialize)]
pub(super) struct LinkQuery {
    link: Option<String>,
}

/// `GET /ui/sign-in/link?link=…`: a button that redeems the link (a GET
/// never spends it, so a mail scanner following links cannot).
pub(super) async fn link_form(query: web::Query<LinkQuery>) -> Result<HttpResponse, UiError> {
    let page = LinkPage {
        chrome: Chrome::bare("Sign in with a link"),
        link: query.link.as_deref().unwrap_or_default(),
    };
    Ok(html(StatusCode::OK, page.render().map_err(render_error)?))
}

/// `POST /ui/sign-in/link`: redeem the link once for a session.
pub(super) async fn redeem_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LinkQuery>,
) -> Result<HttpResponse, UiError> {
    if !same_origin(&req) {
        return Err(UiError::forbidden("this sign-in came from another site"));
    }
    let settings = &state.limits.ui;
    let secret = form.link.as_deref().unwrap_or_default();
    match state
        .catalog
        .redeem_sign_in_link(secret, settings.session_lifetime)
        .await?
    {
        Some(signed_in) => Ok(with_cookie(
            redirect("/"),
            &signed_in,
            settings.secure_cookie,
        )),
        None => Err(UiError::page(
            StatusCode::UNAUTHORIZED,
            "this sign-in link is unknown, used or expired; run `asset-catalog-server ui-link` for a new one",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(local_path(Some("/ui/overview?x=1")), "/ui/overview?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }
}
