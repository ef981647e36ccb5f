//! `GET`/`HEAD /v1/assets/{sha256}/content`: the bytes, with a strong ETag
//! (the hash), immutable caching, `If-None-Match` → 304, one `Range` → 206
//! (416 when unsatisfiable), and a `Content-Disposition` carrying the
//! original name as RFC 6266 / RFC 5987 `filename*` plus an ASCII fallback.
//! User content is served as an attachment with `nosniff` and a sandboxing CSP.

use actix_web::http::header::{
    self, ByteRangeSpec, Charset, ContentDisposition, DispositionParam, DispositionType,
    ExtendedValue, HeaderValue, Range,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use asset_catalog_proto::{Asset, misleads_when_shown};
use futures_util::TryStreamExt;

use super::AppState;
use super::request::parse_hash;
use crate::error::ApiError;
use crate::service::ServiceError;

const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    let asset = state.catalog.asset(&sha).await?;
    let etag = format!("\"{}\"", asset.sha256);
    if not_modified(&req, asset.sha256.as_str()) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
            .finish());
    }
    let range = requested_range(&req, &etag, asset.size)?;
    let mut builder = match range {
        Some((first, last)) => {
            let mut b = HttpResponse::build(StatusCode::PARTIAL_CONTENT);
            b.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{}", asset.size),
            ));
            b
        }
        None => HttpResponse::Ok(),
    };
    content_headers(&mut builder, &asset, etag);
    let len = range.map_or(asset.size, |(first, last)| last - first + 1);
    builder.no_chunking(len);
    if req.method() == Method::HEAD {
        return Ok(builder.streaming(futures_util::stream::empty::<
            Result<bytes::Bytes, std::io::Error>,
        >()));
    }
    let body = state
        .catalog
        .open_content(&asset, range.map(|(first, last)| first..last + 1))
        .await?;
    let stream = body.stream.map_err(|e| {
        tracing::error!(error = %e, "reading content failed mid-stream");
        std::io::Error::other(e.to_string())
    });
    Ok(builder.streaming(stream))
}

fn content_headers(b: &mut HttpResponseBuilder, asset: &Asset, etag: String) {
    b.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .insert_header(content_disposition(&asset.name));
    match HeaderValue::from_str(&asset.content_type) {
        Ok(v) => b.insert_header((header::CONTENT_TYPE, v)),
        Err(_) => b.insert_header((header::CONTENT_TYPE, "application/octet-stream")),
    };
}

/// `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded`,
/// controls and bidi controls replaced by `_` in both.
pub(crate) fn content_disposition(name: &str) -> ContentDisposition {
    let shown: String = name
        .chars()
        .map(|c| if misleads_when_shown(c) { '_' } else { c })
        .collect();
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(fallback),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: shown.into_bytes(),
            }),
        ],
    }
}

/// `If-None-Match` lists the ETag `tag` (unquoted; weak comparison) or is `*`.
pub(crate) fn not_modified(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == tag)
}

/// The single byte range asked for, as inclusive `(first, last)`; `None` to
/// send everything (no/unparsable/multi-range header, or `If-Range` mismatch).
fn requested_range(
    req: &HttpRequest,
    etag: &str,
    size: u64,
) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    if let Some(if_range) = req.headers().get(header::IF_RANGE)
        && if_range.as_bytes() != etag.as_bytes()
    {
        return Ok(None);
    }
    let Ok(Range::Bytes(specs)) = raw.parse::<Range>() else {
        return Ok(None);
    };
    let [spec]: [ByteRangeSpec; 1] = match specs.try_into() {
        Ok(one) => one,
        Err(_) => return Ok(None),
    };
    match spec.to_satisfiable_range(size) {
        Some(range) => Ok(Some(range)),
        None => Err(ServiceError::RangeNotSatisfiable { size }.into()),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::TryIntoHeaderValue;

    use super::*;

    #[test]
    fn disposition_is_safely_encoded() {
        let value = content_disposition("ünï \"q\";\r\n../x%.txt")
            .try_into_value()
            .expect("header value");
        let text = value.to_str().expect("ascii");
        assert!(
            text.starts_with("attachment; filename=\"_n_ _q__"),
            "{text}"
        );
        assert!(
            text.contains("filename*=UTF-8''%C3%BCn%C3%AF%20%22q%22%3B__..%2Fx%25.txt"),
            "{text}"
        );
    }

    #[test]
    fn bidi_and_escape_characters_never_reach_the_header() {
        let value = content_disposition("photo\u{202e}gpj.exe\u{1b}[31m\u{2067}")
            .try_into_value()
            .expect("header value");
        let text = value.to_str().expect("ascii");
        assert!(
            text.ends_with("filename*=UTF-8''photo_gpj.exe_%5B31m_"),
            "{text}"
        );
    }
}
