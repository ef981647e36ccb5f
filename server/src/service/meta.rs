//! Upload metadata: validating what a client says about a file (name,
//! relative path, mtime, client id, content type). Names and paths are
//! metadata only; they are checked here so that nothing odd is ever stored,
//! and they never influence a storage key beyond `storage::keys::extension_of`.

use asset_catalog_proto::Sha256Hex;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ServiceError;

/// Client id used when a request names none.
pub const ANONYMOUS_CLIENT: &str = "anonymous";
/// Longest accepted file name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest accepted relative path, in bytes.
pub const MAX_PATH_BYTES: usize = 8192;
/// Longest accepted content type.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// What the client said about a file, as received (already percent-decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawMeta {
    pub name: Option<String>,
    pub path: Option<String>,
    pub mtime: Option<String>,
    pub client: Option<String>,
    pub content_type: Option<String>,
}

/// Validated metadata of one upload or sighting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadMeta {
    pub name: String,
    pub path: String,
    pub mtime: Option<OffsetDateTime>,
    pub client: String,
    /// As sent; `None` when absent or `application/octet-stream` (then guessed).
    pub content_type: Option<String>,
}

impl UploadMeta {
    /// Validate `raw`; `sha` names files that arrive without a name or path.
    pub fn parse(raw: RawMeta, sha: &Sha256Hex) -> Result<Self, ServiceError> {
        let client = parse_client(raw.client.as_deref())?;
        let path = raw
            .path
            .map(|p| validate_path(&p).map(|()| p))
            .transpose()?;
        let name = match raw.name {
            Some(name) => {
                validate_name(&name)?;
                name
            }
            None => match path.as_deref().and_then(|p| p.rsplit('/').next()) {
                Some(last) => last.to_string(),
                None => sha.to_string(),
            },
        };
        let path = path.unwrap_or_else(|| name.clone());
        let mtime = raw.mtime.as_deref().map(parse_mtime).transpose()?;
        let content_type = raw
            .content_type
            .map(|ct| validate_content_type(&ct).map(|()| ct))
            .transpose()?
            .filter(|ct| ct != "application/octet-stream");
        Ok(Self {
            name,
            path,
            mtime,
            client,
            content_type,
        })
    }

    /// The metadata a resumable upload session recorded at its creation.
    pub fn from_upload(row: &crate::index::UploadRow) -> Result<Self, ServiceError> {
        let raw = RawMeta {
            name: Some(row.name.clone()),
            path: row.path.clone(),
            mtime: row.mtime.clone(),
            client: Some(row.client.clone()),
            content_type: None,
        };
        Self::parse(raw, &row.sha256)
    }

    /// The content type to record: the client's, else a guess from the name.
    pub fn effective_content_type(&self) -> String {
        match &self.content_type {
            Some(ct) => ct.clone(),
            None => mime_guess::from_path(&self.name)
                .first_or_octet_stream()
                .essence_str()
                .to_string(),
        }
    }
}

/// `[A-Za-z0-9._-]{1,64}`; absent → `anonymous`.
pub fn parse_client(raw: Option<&str>) -> Result<String, ServiceError> {
    let Some(client) = raw else {
        return Ok(ANONYMOUS_CLIENT.to_string());
    };
    let ok = (1..=64).contains(&client.len())
        && client
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(client.to_string())
    } else {
        Err(ServiceError::BadRequest(
            "x-asset-client must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'".into(),
        ))
    }
}

/// A file name: not empty, not `.`/`..`, no `/` or NUL, at most 1 KiB.
pub fn validate_name(name: &str) -> Result<(), ServiceError> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is '.' or '..'")
    } else if name.contains('/') {
        Some("contains '/' (send the directory part in x-asset-path)")
    } else if name.contains('\0') {
        Some("contains a NUL character")
    } else if name.len() > MAX_NAME_BYTES {
        Some("is longer than 1024 bytes")
    } else {
        None
    };
    match problem {
        Some(p) => Err(ServiceError::BadRequest(format!("the file name {p}"))),
        None => Ok(()),
    }
}

/// A relative path: `/`-separated non-empty components, none `.` or `..`,
/// no leading `/`, no NUL, at most 8 KiB.
pub fn validate_path(path: &str) -> Result<(), ServiceError> {
    let problem = if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("is absolute; send the path relative to the watched directory")
    } else if path.contains('\0') {
        Some("contains a NUL character")
    } else if path.len() > MAX_PATH_BYTES {
        Some("is longer than 8192 bytes")
    } else if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        Some("has an empty, '.' or '..' component")
    } else {
        None
    };
    match problem {
        Some(p) => Err(ServiceError::BadRequest(format!("the path {p}"))),
        None => Ok(()),
    }
}

fn parse_mtime(raw: &str) -> Result<OffsetDateTime, ServiceError> {
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|e| {
        ServiceError::BadRequest(format!(
            "x-asset-mtime {raw:?} is not an RFC 3339 time ({e}), e.g. 2026-11-24T21:00:00Z"
        ))
    })
}

fn validate_content_type(ct: &str) -> Result<(), ServiceError> {
    let ok = ct.len() <= MAX_CONTENT_TYPE_BYTES
        && ct.contains('/')
        && ct.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::BadRequest(format!(
            "Content-Type {ct:?} is not a media type such as image/png"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha() -> Sha256Hex {
        Sha256Hex::from_digest([3; 32])
    }

    fn raw(name: Option<&str>, path: Option<&str>) -> RawMeta {
        RawMeta {
            name: name.map(Into::into),
            path: path.map(Into::into),
            ..RawMeta::default()
        }
    }

    #[test]
    fn defaults_come_from_path_then_hash() {
        let m = UploadMeta::parse(raw(None, Some("a/b/c.txt")), &sha()).expect("ok");
        assert_eq!((m.name.as_str(), m.path.as_str()), ("c.txt", "a/b/c.txt"));
        assert_eq!(m.client, ANONYMOUS_CLIENT);
        assert_eq!(m.effective_content_type(), "text/plain");
        let m = UploadMeta::parse(raw(None, None), &sha()).expect("ok");
        assert_eq!(m.name, sha().to_string());
        assert_eq!(m.effective_content_type(), "application/octet-stream");
    }

    #[test]
    fn path_tricks_are_rejected() {
        for path in [
            "../../etc/passwd",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/\0b",
            "a/",
        ] {
            assert!(
                UploadMeta::parse(raw(None, Some(path)), &sha()).is_err(),
                "{path:?}"
            );
        }
        for name in ["..", ".", "a/b", "x\0y", ""] {
            assert!(
                UploadMeta::parse(raw(Some(name), None), &sha()).is_err(),
                "{name:?}"
            );
        }
        // Odd but legal Linux names are kept as text.
        let m = UploadMeta::parse(raw(Some("new\nline ünï.txt"), None), &sha()).expect("ok");
        assert_eq!(m.name, "new\nline ünï.txt");
    }

    #[test]
    fn client_and_mtime_are_checked() {
        let mut r = raw(Some("a.txt"), None);
        r.client = Some("host-1.example_x".into());
        r.mtime = Some("2026-11-24T21:00:00.5Z".into());
        let m = UploadMeta::parse(r.clone(), &sha()).expect("ok");
        assert_eq!(m.client, "host-1.example_x");
        assert!(m.mtime.is_some());
        r.client = Some("bad client".into());
        assert!(UploadMeta::parse(r.clone(), &sha()).is_err());
        r.client = None;
        r.mtime = Some("yesterday".into());
        assert!(UploadMeta::parse(r, &sha()).is_err());
    }
}
