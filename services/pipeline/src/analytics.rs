//! GetFunnelReport and GetMovementStats: request validation, the rot points
//! learned by the active model, and proto conversions. The numbers
//! themselves are computed in SQL by the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_domain::{PipelineName, limits};
use funnel_proto::v1 as pb;
use funnel_scoring::{RotSource as LearnedSource, TrainedModel};
use funnel_store::{
    DurationFigures, FunnelFigures, MoneyFigure, MovementFigures, MovementQuery, ReportQuery, RotSource, Store,
    WindowMode,
};
use tracing::warn;

use crate::convert::{self as c, Checked};
use crate::error::{invalid_argument, store_status};

const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// The window `[start, end)`: `end` defaults to now and must follow `start`.
fn window(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
) -> Checked<(Option<DateTime<Utc>>, DateTime<Utc>)> {
    let start = c::optional_time("start", start)?;
    let end = c::optional_time("end", end)?.unwrap_or(now);
    if let Some(start) = start
        && start >= end
    {
        return Err(invalid_argument("end", &format!("{end} is not after start {start}")));
    }
    Ok((start, end))
}

fn optional_filter(field: &str, value: String) -> Checked<Option<String>> {
    let value = c::text(field, value, limits::MAX_SHORT_TEXT)?;
    Ok((!value.is_empty()).then_some(value))
}

pub async fn report_query(store: &Store, request: pb::GetFunnelReportRequest) -> Checked<ReportQuery> {
    let pb::GetFunnelReportRequest { pipeline, start, end, mode, owner, source } = request;
    let pipeline = c::pipeline_name("pipeline", &pipeline)?;
    let now = funnel_store::time::now();
    let (start, end) = window(start.as_ref(), end.as_ref(), now)?;
    let mode = match pb::ReportWindowMode::try_from(mode) {
        Ok(pb::ReportWindowMode::Unspecified | pb::ReportWindowMode::Cohort) => WindowMode::Cohort,
        Ok(pb::ReportWindowMode::Activity) => WindowMode::Activity,
        Err(_) => return Err(invalid_argument("mode", &format!("{mode} is not a ReportWindowMode"))),
    };
    let owner = optional_filter("owner", owner)?;
    let source = optional_filter("source", source)?;
    let learned_rot_points = learned_rot_points(store, &pipeline).await?;
    Ok(ReportQuery { pipeline, start, end, mode, owner, source, learned_rot_points, now })
}

/// Rot points the active model learned (stages with `rot_after_days` keep
/// theirs). A model that cannot be read only costs the learned points.
async fn learned_rot_points(store: &Store, pipeline: &PipelineName) -> Checked<BTreeMap<String, i64>> {
    let Some(model) = store.active_model(pipeline).await.map_err(store_status)? else {
        return Ok(BTreeMap::new());
    };
    let version = model.version;
    // Parsing a model is CPU work: off the async threads.
    let parsed = tokio::task::spawn_blocking(move || TrainedModel::from_json(&model.body)).await;
    let trained = match parsed {
        Ok(Ok(trained)) => trained,
        Ok(Err(error)) => {
            warn!(model_version = version, %error, "active model unreadable: no learned rot points");
            return Ok(BTreeMap::new());
        }
        Err(error) => {
            warn!(model_version = version, %error, "reading the active model failed: no learned rot points");
            return Ok(BTreeMap::new());
        }
    };
    let mut points = BTreeMap::new();
    for (stage, point) in trained.baseline.rot_points {
        if point.source == LearnedSource::Learned && point.days.is_finite() && point.days > 0.0 {
            points.insert(stage, (point.days * MICROS_PER_DAY).round() as i64);
        }
    }
    Ok(points)
}

fn duration(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

fn duration_stats(figures: DurationFigures) -> pb::DurationStats {
    pb::DurationStats {
        count: figures.count,
        median: figures.median_micros.map(duration),
        p90: figures.p90_micros.map(duration),
    }
}

fn money_sums(figures: Vec<MoneyFigure>) -> Vec<pb::MoneySum> {
    figures
        .into_iter()
        .map(|figure| pb::MoneySum {
            currency_code: figure.currency_code.unwrap_or_default(),
            amount_minor: figure.amount_minor,
            opportunities: figure.opportunities,
        })
        .collect()
}

fn mode_to_pb(mode: WindowMode) -> pb::ReportWindowMode {
    match mode {
        WindowMode::Cohort => pb::ReportWindowMode::Cohort,
        WindowMode::Activity => pb::ReportWindowMode::Activity,
    }
}

pub fn report_to_pb(query: &ReportQuery, figures: FunnelFigures) -> pb::FunnelReport {
    let stages = figures
        .stages
        .into_iter()
        .map(|stage| pb::StageReport {
            stage: stage.key,
            display_name: stage.display_name,
            position: stage.position as i32,
            reached: stage.reached,
            entered: stage.entered,
            advanced: stage.advanced,
            moved_back: stage.moved_back,
            leaked: stage.leaked,
            still_open: stage.still_open,
            conversion_to_next: stage.conversion_to_next,
            cumulative_conversion: stage.cumulative_conversion,
            leak_rate: stage.leak_rate,
            leak_reasons: stage
                .leak_reasons
                .into_iter()
                .map(|(reason, count)| pb::LeakReasonCount { reason, count })
                .collect(),
            time_to_advance: Some(duration_stats(stage.time_to_advance)),
            time_to_leak: Some(duration_stats(stage.time_to_leak)),
            open_amount: money_sums(stage.open_amount),
            weighted_open_amount: money_sums(stage.weighted_open_amount),
            stale: stage.stale,
            rot_point: stage.rot_point.map(|point| duration(point.after_micros)),
            rot_point_source: match stage.rot_point.map(|point| point.source) {
                None => pb::RotPointSource::Unspecified,
                Some(RotSource::Configured) => pb::RotPointSource::Configured,
                Some(RotSource::Learned) => pb::RotPointSource::Learned,
            } as i32,
        })
        .collect();
    pb::FunnelReport {
        pipeline: figures.pipeline.name.to_string(),
        start: query.start.map(c::timestamp),
        end: Some(c::timestamp(query.end)),
        mode: mode_to_pb(query.mode) as i32,
        opportunities: figures.opportunities,
        won: figures.won,
        leaked: figures.leaked,
        open: figures.open,
        win_rate: figures.win_rate,
        median_time_to_win: figures.median_time_to_win_micros.map(duration),
        stages,
        computed_at: Some(c::timestamp(query.now)),
    }
}

pub fn movement_query(request: pb::GetMovementStatsRequest) -> Checked<MovementQuery> {
    let pb::GetMovementStatsRequest { pipeline, start, end, by_owner, owner } = request;
    let pipeline = c::pipeline_name("pipeline", &pipeline)?;
    if start.is_none() {
        return Err(invalid_argument("start", "is required"));
    }
    let (start, end) = window(start.as_ref(), end.as_ref(), funnel_store::time::now())?;
    let Some(start) = start else { return Err(invalid_argument("start", "is required")) };
    let owner = optional_filter("owner", owner)?;
    Ok(MovementQuery { pipeline, start, end, by_owner, owner })
}

fn moves(pairs: Vec<(String, String, i64)>) -> Vec<pb::StageMove> {
    pairs.into_iter().map(|(from_stage, to_stage, count)| pb::StageMove { from_stage, to_stage, count }).collect()
}

pub fn movement_to_pb(query: &MovementQuery, lines: Vec<MovementFigures>) -> pb::GetMovementStatsResponse {
    let stats = lines
        .into_iter()
        .map(|line| pb::MovementStats {
            owner: line.owner,
            created: line.created,
            advanced: moves(line.advanced),
            moved_back: moves(line.moved_back),
            won: line.won,
            leaked: line.leaked,
            reopened: line.reopened,
            open_at_end: line.open_at_end,
            average_open_age: line.average_open_age_micros.map(|micros| duration(micros.round() as i64)),
        })
        .collect();
    pb::GetMovementStatsResponse { start: Some(c::timestamp(query.start)), end: Some(c::timestamp(query.end)), stats }
}
