//! `GET /ui/overview`: assets and bytes stored, uploads per day (a bar chart
//! drawn as SVG on the server), each client with its last upload, the job
//! backlog and integrity problems.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::{Date, OffsetDateTime};

use super::view::{self, Chrome};
use super::{UiError, Viewer, html, session::render_error};
use crate::http::AppState;
use crate::index::{ClientSummary, DayCount};
use crate::service::OVERVIEW_DAYS;

/// Chart geometry (SVG user units).
const CHART_W: u32 = 600;
const CHART_H: u32 = 120;

struct Bar {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    label: String,
}

struct ClientRow {
    client: String,
    sightings: u64,
    last: String,
    last_iso: String,
    href: String,
}

impl ClientRow {
    fn of(c: &ClientSummary) -> Self {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        Self {
            client: c.client.clone(),
            sightings: c.sightings,
            last: view::when(c.last_seen),
            last_iso: view::iso(c.last_seen),
            href: format!("/?{}", query.append_pair("client", &c.client).finish()),
        }
    }
}

struct JobRow {
    kind: String,
    state: String,
    count: u64,
    oldest: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    assets: u64,
    bytes: String,
    problems: u64,
    uploads: u64,
    days: u32,
    bars: Vec<Bar>,
    first_day: String,
    last_day: String,
    peak: u64,
    clients: Vec<ClientRow>,
    jobs: Vec<JobRow>,
}

pub(super) async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, UiError> {
    let report = state.catalog.overview().await?;
    let today = OffsetDateTime::now_utc().date();
    let days = last_days(today, &report.index.per_day);
    let peak = days.iter().map(|d| d.assets).max().unwrap_or(0);
    let page = OverviewPage {
        chrome: Chrome::new("Overview", "overview", &viewer),
        assets: report.index.assets,
        bytes: view::size(report.index.bytes),
        problems: report.index.problems,
        uploads: days.iter().map(|d| d.assets).sum(),
        days: OVERVIEW_DAYS,
        bars: bars(&days, peak),
        first_day: days.first().map(|d| d.day.to_string()).unwrap_or_default(),
        last_day: today.to_string(),
        peak,
        clients: report.index.clients.iter().map(ClientRow::of).collect(),
        jobs: report
            .jobs
            .iter()
            .map(|j| JobRow {
                kind: j.kind.clone(),
                state: j.state.clone(),
                count: j.count,
                oldest: view::when(j.oldest),
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render().map_err(render_error)?))
}

/// Every one of the last [`OVERVIEW_DAYS`] days up to `today`, zero where
/// nothing was uploaded.
fn last_days(today: Date, counted: &[DayCount]) -> Vec<DayCount> {
    (0..OVERVIEW_DAYS)
        .rev()
        .filter_map(|back| today.checked_sub(time::Duration::days(i64::from(back))))
        .map(|day| {
            counted
                .iter()
                .find(|c| c.day == day)
                .cloned()
                .unwrap_or(DayCount {
                    day,
                    assets: 0,
                    bytes: 0,
                })
        })
        .collect()
}

fn bars(days: &[DayCount], peak: u64) -> Vec<Bar> {
    let n = u32::try_from(days.len().max(1)).unwrap_or(1);
    let slot = CHART_W / n;
    days.iter()
        .zip(0u32..)
        .map(|(d, i)| {
            // A day with uploads shows at least 2 units tall.
            let h = if peak == 0 || d.assets == 0 {
                0
            } else {
                u32::try_from(d.assets.saturating_mul(u64::from(CHART_H)) / peak)
                    .unwrap_or(CHART_H)
                    .max(2)
            };
            Bar {
                x: i * slot + 1,
                y: CHART_H - h,
                w: slot.saturating_sub(2).max(1),
                h,
                label: format!("{}: {} uploads, {}", d.day, d.assets, view::size(d.bytes)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_days_end_today_and_bars_scale_to_the_peak() {
        let today = time::macros::date!(2026 - 11 - 30);
        let counted = [
            DayCount {
                day: today,
                assets: 10,
                bytes: 5,
            },
            DayCount {
                day: time::macros::date!(2026 - 11 - 29),
                assets: 1,
                bytes: 1,
            },
        ];
        let days = last_days(today, &counted);
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].day, time::macros::date!(2026 - 11 - 01));
        let b = bars(&days, 10);
        assert_eq!((b[29].h, b[29].y), (CHART_H, 0));
        assert_eq!(b[28].h, 12);
        assert_eq!(b[0].h, 0);
    }
}
