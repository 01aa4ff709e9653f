//! `funnel report`: the funnel of a pipeline drawn in the terminal, one bar
//! per stage with its counts, conversion to the next stage and leak rate.
//! The numbers come from GetFunnelReport (computed in the database).

use chrono::{DateTime, NaiveDate, Utc};
use funnel_proto::v1 as pb;
use serde::Serialize;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Report};
use crate::views::time;

/// Width of the longest bar, in characters.
const BAR_WIDTH: usize = 40;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportArgs {
    /// Pipeline to report on.
    #[arg(long, default_value = "sales")]
    pub pipeline: String,
    /// Start of the window (YYYY-MM-DD or RFC 3339), inclusive; default: all time.
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window (YYYY-MM-DD or RFC 3339), exclusive; default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// Select opportunities with stage changes in the window instead of
    /// those created in it.
    #[arg(long)]
    pub by_activity: bool,
    /// Only this owner's opportunities.
    #[arg(long)]
    pub owner: Option<String>,
    /// Only opportunities of this lead source.
    #[arg(long)]
    pub source: Option<String>,
}

/// One stage's line.
#[derive(Debug, Clone, Serialize)]
pub struct StageLine {
    pub stage: String,
    pub reached: i64,
    pub entered: i64,
    pub advanced: i64,
    pub moved_back: i64,
    pub leaked: i64,
    pub still_open: i64,
    pub conversion_to_next: f64,
    pub cumulative_conversion: f64,
    pub leak_rate: f64,
    pub median_days_to_advance: Option<f64>,
    pub p90_days_to_advance: Option<f64>,
    pub stale: i64,
    pub top_leak_reason: Option<String>,
}

/// The report as printed and as `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct FunnelView {
    pub pipeline: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub opportunities: i64,
    pub won: i64,
    pub leaked: i64,
    pub open: i64,
    pub win_rate: f64,
    pub median_days_to_win: Option<f64>,
    pub stages: Vec<StageLine>,
}

fn parse_time(flag: &str, value: &Option<String>) -> Result<Option<prost_types::Timestamp>> {
    let Some(value) = value else { return Ok(None) };
    let at = match DateTime::parse_from_rfc3339(value) {
        Ok(at) => at.with_timezone(&Utc),
        Err(_) => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|at| at.and_utc())
            .ok_or_else(|| CliError::invalid(flag, format!("{value:?} is neither YYYY-MM-DD nor RFC 3339")))?,
    };
    Ok(Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }))
}

fn days(duration: Option<&prost_types::Duration>) -> Option<f64> {
    duration.map(|duration| (duration.seconds as f64 + f64::from(duration.nanos) / 1e9) / 86_400.0)
}

pub async fn report(client: &Client, args: &ReportArgs) -> Result<FunnelView> {
    let request = pb::GetFunnelReportRequest {
        pipeline: args.pipeline.clone(),
        start: parse_time("--since", &args.since)?,
        end: parse_time("--until", &args.until)?,
        mode: if args.by_activity { pb::ReportWindowMode::Activity } else { pb::ReportWindowMode::Cohort } as i32,
        owner: args.owner.clone().unwrap_or_default(),
        source: args.source.clone().unwrap_or_default(),
    };
    let response = client.pipeline().get_funnel_report(request).await.map_err(CliError::rpc("GetFunnelReport"))?;
    Ok(view(response.into_inner()))
}

fn view(report: pb::FunnelReport) -> FunnelView {
    let stages = report
        .stages
        .into_iter()
        .map(|stage| {
            let advance = stage.time_to_advance.unwrap_or_default();
            StageLine {
                top_leak_reason: stage.leak_reasons.first().map(|reason| reason.reason.clone()),
                stage: stage.stage,
                reached: stage.reached,
                entered: stage.entered,
                advanced: stage.advanced,
                moved_back: stage.moved_back,
                leaked: stage.leaked,
                still_open: stage.still_open,
                conversion_to_next: stage.conversion_to_next,
                cumulative_conversion: stage.cumulative_conversion,
                leak_rate: stage.leak_rate,
                median_days_to_advance: days(advance.median.as_ref()),
                p90_days_to_advance: days(advance.p90.as_ref()),
                stale: stage.stale,
            }
        })
        .collect();
    FunnelView {
        pipeline: report.pipeline,
        start: time(report.start),
        end: time(report.end),
        opportunities: report.opportunities,
        won: report.won,
        leaked: report.leaked,
        open: report.open,
        win_rate: report.win_rate,
        median_days_to_win: days(report.median_time_to_win.as_ref()),
        stages,
    }
}

impl Report for FunnelView {
    fn human(&self) -> String {
        let mut lines = vec![format!(
            "{}: {} opportunities, {} won, {} leaked, {} open; win rate {}{}",
            self.pipeline,
            self.opportunities,
            self.won,
            self.leaked,
            self.open,
            output::percent(self.win_rate),
            self.median_days_to_win.map_or_else(String::new, |days| format!(", median {days:.1} days to win")),
        )];
        let widest = self.stages.iter().map(|stage| stage.reached).max().unwrap_or(0).max(1);
        let name_width = self.stages.iter().map(|stage| stage.stage.len()).max().unwrap_or(0);
        let last = self.stages.len().saturating_sub(1);
        for (position, stage) in self.stages.iter().enumerate() {
            let filled = (stage.reached as f64 / widest as f64 * BAR_WIDTH as f64).round() as usize;
            let bar = format!("{}{}", "█".repeat(filled), " ".repeat(BAR_WIDTH - filled.min(BAR_WIDTH)));
            let mut line = format!("{:<name_width$} {bar} {:>8} reached", stage.stage, stage.reached);
            if position < last {
                line.push_str(&format!(
                    "  → {} to next, {} leaked ({} open, {} stale)",
                    output::percent(stage.conversion_to_next),
                    output::percent(stage.leak_rate),
                    stage.still_open,
                    stage.stale,
                ));
                if let Some(median) = stage.median_days_to_advance {
                    line.push_str(&format!(", median {median:.1} d to advance"));
                }
            } else {
                line.push_str(&format!("  ({} of the top)", output::percent(stage.cumulative_conversion)));
            }
            lines.push(line);
        }
        lines.push("conversion: reached(next) / reached(stage), by furthest stage reached".to_owned());
        lines.join("\n")
    }
}
