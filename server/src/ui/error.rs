//! What a UI page shows when it cannot show itself: a browser without a
//! session goes to the sign-in page (and comes back after it), anything else
//! gets an HTML page that says what went wrong and what to do.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use asset_catalog_proto::ErrorCode;

use super::view::Chrome;
use crate::error::ApiError;
use crate::service::ServiceError;

/// Why a UI request did not get its page.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in (or the session ended): sign in, then go to `next`.
    SignIn { next: String },
    /// Shown as an error page.
    Page { status: StatusCode, message: String },
}

impl UiError {
    pub fn page(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::page(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::page(StatusCode::BAD_REQUEST, message)
    }
}

impl fmt::Display for UiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SignIn { next } => write!(f, "sign in to see {next}"),
            Self::Page { message, .. } => f.write_str(message),
        }
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self::page(e.status_code(), e.message())
    }
}

/// For the UI's script-facing routes (`uploads`), which answer JSON: no
/// session is a 401 (a script must not follow a redirect to the sign-in
/// form), a refusal a 403.
impl From<UiError> for ApiError {
    fn from(e: UiError) -> Self {
        let code = match &e {
            UiError::SignIn { .. } => ErrorCode::Unauthorized,
            UiError::Page { status, .. } if *status == StatusCode::FORBIDDEN => {
                ErrorCode::Forbidden
            }
            UiError::Page { status, .. } if status.is_server_error() => ErrorCode::Internal,
            UiError::Page { .. } => ErrorCode::BadRequest,
        };
        let message = match e {
            UiError::SignIn { .. } => "sign in first: this needs the web UI's session".into(),
            UiError::Page { message, .. } => message,
        };
        ApiError::new(code, message)
    }
}

impl From<ServiceError> for UiError {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Page { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { next } => super::redirect(&format!(
                "/ui/sign-in?next={}",
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            )),
            Self::Page { status, message } => {
                let page = ErrorPage {
                    chrome: Chrome::bare("Error"),
                    status: status.as_u16(),
                    reason: status.canonical_reason().unwrap_or("Error"),
                    message,
                };
                match page.render() {
                    Ok(body) => super::html(*status, body),
                    Err(e) => {
                        tracing::error!(error = %e, "rendering the error page failed");
                        HttpResponse::build(*status).body(message.clone())
                    }
                }
            }
        }
    }
}
