//! What the web UI shows beyond the listing: the overview's figures and the
//! first bytes of a text asset for its preview.

use asset_catalog_proto::Asset;
use futures_util::TryStreamExt;
use time::OffsetDateTime;

use super::{Catalog, ServiceError};
use crate::index::Overview;
use crate::index::jobs::JobCount;

/// Days of uploads the overview charts.
pub const OVERVIEW_DAYS: u32 = 30;

/// The overview page's data.
#[derive(Debug, Clone)]
pub struct OverviewReport {
    pub index: Overview,
    /// Jobs per kind and state (queued, running, failed).
    pub jobs: Vec<JobCount>,
}

impl Catalog {
    /// Totals, uploads per day, clients, job backlog and integrity problems.
    pub async fn overview(&self) -> Result<OverviewReport, ServiceError> {
        let now = OffsetDateTime::now_utc();
        let index = self.index().overview(now, OVERVIEW_DAYS).await?;
        let jobs = self.index().job_counts().await?;
        Ok(OverviewReport { index, jobs })
    }

    /// Up to `max` leading bytes of `asset` as text (invalid UTF-8 replaced,
    /// a character cut at the end dropped), and whether there was more.
    pub async fn text_preview(
        &self,
        asset: &Asset,
        max: u64,
    ) -> Result<(String, bool), ServiceError> {
        let end = asset.size.min(max);
        if end == 0 {
            return Ok((String::new(), false));
        }
        let body = self.open_content(asset, Some(0..end)).await?;
        let chunks: Vec<bytes::Bytes> = body.stream.try_collect().await?;
        let mut bytes = chunks.concat();
        // A multi-byte character cut by `max` is dropped, not shown as U+FFFD.
        if end < asset.size {
            let keep = match std::str::from_utf8(&bytes) {
                Ok(_) => bytes.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => bytes.len(),
            };
            bytes.truncate(keep);
        }
        Ok((
            String::from_utf8_lossy(&bytes).into_owned(),
            end < asset.size,
        ))
    }
}
