//! Who is calling: the token the HTTP gate verified (its id, scopes, client
//! binding and quotas), or the trusted caller when `[auth] enabled = false`.
//! The service attributes every write to [`Caller::token_id`], refuses a
//! bound token that names another client, and shows a caller without `read`
//! only what its own request said (see [`Caller::shown`]).

use asset_catalog_proto::Asset;
use time::OffsetDateTime;

use super::ServiceError;
use super::meta::{ANONYMOUS_CLIENT, UploadMeta};
use crate::auth::{Scope, Scopes};
use crate::index::{TokenGrant, TokenLimits};

/// The identity behind one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    token: Option<String>,
    scopes: Scopes,
    limits: TokenLimits,
}

impl Caller {
    /// Authentication is off: everything is allowed, nothing is attributed.
    pub fn trusted() -> Self {
        Self {
            token: None,
            scopes: Scopes::new(vec![Scope::Admin]),
            limits: TokenLimits::default(),
        }
    }

    /// A verified token.
    pub fn from_grant(grant: TokenGrant) -> Self {
        Self {
            token: Some(grant.id),
            scopes: grant.scopes,
            limits: grant.limits,
        }
    }

    /// A web UI session opened by a sign-in link: its scopes, no token.
    pub fn session(scopes: Scopes) -> Self {
        Self {
            token: None,
            scopes,
            limits: TokenLimits::default(),
        }
    }

    /// The token's id (never its secret); `None` with auth off.
    pub fn token_id(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// For log lines: the token id, or `-` with auth off.
    pub fn log_id(&self) -> &str {
        self.token.as_deref().unwrap_or("-")
    }

    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    pub fn limits(&self) -> &TokenLimits {
        &self.limits
    }

    /// May see names, paths and other callers' sightings.
    pub fn may_read(&self) -> bool {
        self.scopes.allows(Scope::Read)
    }

    /// A token bound to a client id speaks only for that client: a request
    /// naming no client is taken as the bound one, naming another is refused.
    pub fn bind_client(&self, meta: &mut UploadMeta) -> Result<(), ServiceError> {
        let Some(bound) = &self.limits.client else {
            return Ok(());
        };
        if meta.client == ANONYMOUS_CLIENT {
            meta.client.clone_from(bound);
        }
        if &meta.client == bound {
            Ok(())
        } else {
            Err(ServiceError::WrongClient {
                token: self.log_id().to_owned(),
                bound: bound.clone(),
                named: meta.client.clone(),
            })
        }
    }

    /// `asset` as this caller may see it. Without `read`, an answer says only
    /// that the content exists: name and type are the ones this request sent,
    /// both times are `now`, the sighting count is 0 and what the jobs
    /// learned is absent (not disclosed).
    pub fn shown(&self, asset: Asset, meta: &UploadMeta, now: OffsetDateTime) -> Asset {
        if self.may_read() {
            return asset;
        }
        Asset {
            name: meta.name.clone(),
            content_type: meta.effective_content_type(),
            first_seen: now,
            last_seen: now,
            sighting_count: 0,
            media: None,
            thumbnail: None,
            ..asset
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(client: &str) -> UploadMeta {
        UploadMeta {
            name: "mine.txt".into(),
            path: "dir/mine.txt".into(),
            mtime: None,
            client: client.into(),
            content_type: None,
        }
    }

    fn bound(client: &str, scopes: Vec<Scope>) -> Caller {
        Caller::from_grant(TokenGrant {
            id: "0123456789ab".into(),
            scopes: Scopes::new(scopes),
            limits: TokenLimits {
                client: Some(client.into()),
                ..TokenLimits::default()
            },
        })
    }

    #[test]
    fn a_bound_token_speaks_only_for_its_client() {
        let caller = bound("laptop", vec![Scope::Upload]);
        let mut named = meta("laptop");
        assert!(caller.bind_client(&mut named).is_ok());
        let mut unnamed = meta(ANONYMOUS_CLIENT);
        caller.bind_client(&mut unnamed).expect("defaults");
        assert_eq!(unnamed.client, "laptop");
        let err = caller
            .bind_client(&mut meta("desktop"))
            .expect_err("another client");
        assert!(err.to_string().contains("desktop"), "{err}");
        assert!(Caller::trusted().bind_client(&mut meta("any")).is_ok());
    }

    #[test]
    fn an_upload_only_caller_sees_only_its_own_description() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let now = t + time::Duration::days(1);
        let asset = Asset {
            sha256: asset_catalog_proto::Sha256Hex::from_digest([3; 32]),
            key: "k".into(),
            size: 5,
            content_type: "image/png".into(),
            name: "someone-elses-secret.png".into(),
            first_seen: t,
            last_seen: t,
            sighting_count: 7,
            media: None,
            thumbnail: Some(true),
            integrity: asset_catalog_proto::Integrity::Ok,
            verified_at: Some(t),
        };
        let shown = bound("laptop", vec![Scope::Upload]).shown(asset.clone(), &meta("laptop"), now);
        assert_eq!(
            (shown.name.as_str(), shown.sighting_count, shown.first_seen),
            ("mine.txt", 0, now)
        );
        let reader = bound("laptop", vec![Scope::Upload, Scope::Read]);
        assert_eq!(reader.shown(asset.clone(), &meta("laptop"), now), asset);
    }
}
