//! proto <-> domain conversions. Requests are validated here, field by field,
//! so that every INVALID_ARGUMENT names the field the caller sent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_domain::{
    ActivityKind, Money, OpportunityId, PipelineName, StageDef, StageKey, Status as DomainStatus, TransitionKind,
    limits,
};
use funnel_proto::v1 as pb;
use funnel_store::{Activity, HistoryRow, Opportunity, Pipeline};
use prost_types::Timestamp;
use tonic::Status;

use crate::error::{domain_status, invalid_argument};

pub type Checked<T> = Result<T, Status>;

pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

pub fn optional_time(field: &str, value: Option<&Timestamp>) -> Checked<Option<DateTime<Utc>>> {
    let Some(value) = value else { return Ok(None) };
    let nanos = u32::try_from(value.nanos).ok().filter(|nanos| *nanos < 1_000_000_000);
    let at = nanos.and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos));
    // Microseconds are what is stored; the range keeps the value representable.
    let in_range = at.is_some_and(|at| at.timestamp_micros() > 0 && at.timestamp() < 253_402_300_800);
    match at {
        Some(at) if in_range => Ok(Some(at)),
        _ => Err(invalid_argument(field, "is not a valid timestamp between 1970 and 9999")),
    }
}

pub fn pipeline_name(field: &str, value: &str) -> Checked<PipelineName> {
    PipelineName::parse(field, value).map_err(domain_status)
}

pub fn stage_key(field: &str, value: &str) -> Checked<StageKey> {
    StageKey::parse(field, value).map_err(domain_status)
}

pub fn optional_stage(field: &str, value: &str) -> Checked<Option<StageKey>> {
    if value.is_empty() { Ok(None) } else { stage_key(field, value).map(Some) }
}

pub fn opportunity_id(field: &str, value: &str) -> Checked<OpportunityId> {
    OpportunityId::parse(field, value).map_err(domain_status)
}

pub fn text(field: &str, value: String, max_len: usize) -> Checked<String> {
    limits::check_text(field, &value, max_len).map_err(domain_status)?;
    Ok(value)
}

pub fn required_text(field: &str, value: String, max_len: usize) -> Checked<String> {
    limits::check_required_text(field, &value, max_len).map_err(domain_status)?;
    Ok(value)
}

pub fn optional_id_text(field: &str, value: String) -> Checked<Option<String>> {
    let value = text(field, value, limits::MAX_ID_TEXT)?;
    Ok((!value.is_empty()).then_some(value))
}

pub fn page_size(value: i32) -> Checked<u32> {
    limits::page_size("page_size", value).map_err(domain_status)
}

/// An etag is the version number the service returned; empty means
/// "whatever is current".
pub fn etag(field: &str, value: &str) -> Checked<Option<i64>> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<i64>()
        .map(Some)
        .map_err(|_| invalid_argument(field, "is not an etag this service returned; read the resource again"))
}

pub fn money(field: &str, value: Option<pb::Money>) -> Checked<Option<Money>> {
    let Some(pb::Money { currency_code, amount_minor }) = value else { return Ok(None) };
    Money::new(field, &currency_code, amount_minor).map(Some).map_err(domain_status)
}

pub fn attributes(attributes: BTreeMap<String, String>) -> Checked<BTreeMap<String, String>> {
    funnel_store::check_attributes(&attributes).map_err(domain_status)?;
    Ok(attributes)
}

pub fn stages(field: &str, value: Vec<pb::Stage>) -> Checked<Vec<StageDef>> {
    let mut stages = Vec::with_capacity(value.len());
    for (index, pb::Stage { key, display_name, rot_after_days }) in value.into_iter().enumerate() {
        let key = stage_key(&format!("{field}[{index}].key"), &key)?;
        let display_name = text(&format!("{field}[{index}].display_name"), display_name, limits::MAX_SHORT_TEXT)?;
        let display_name = if display_name.trim().is_empty() { key.to_string() } else { display_name };
        stages.push(StageDef { key, display_name, rot_after_days });
    }
    Ok(stages)
}

pub fn status_filter(value: i32) -> Checked<Option<DomainStatus>> {
    match pb::OpportunityStatus::try_from(value) {
        Ok(pb::OpportunityStatus::Unspecified) => Ok(None),
        Ok(pb::OpportunityStatus::Open) => Ok(Some(DomainStatus::Open)),
        Ok(pb::OpportunityStatus::Won) => Ok(Some(DomainStatus::Won)),
        Ok(pb::OpportunityStatus::Leaked) => Ok(Some(DomainStatus::Leaked)),
        Err(_) => Err(invalid_argument("status", &format!("{value} is not an OpportunityStatus"))),
    }
}

pub fn activity_kind(field: &str, value: i32) -> Checked<ActivityKind> {
    match pb::ActivityKind::try_from(value) {
        Ok(pb::ActivityKind::Call) => Ok(ActivityKind::Call),
        Ok(pb::ActivityKind::Email) => Ok(ActivityKind::Email),
        Ok(pb::ActivityKind::Meeting) => Ok(ActivityKind::Meeting),
        Ok(pb::ActivityKind::Note) => Ok(ActivityKind::Note),
        Ok(pb::ActivityKind::Unspecified) => Err(invalid_argument(field, "is required: call, email, meeting or note")),
        Err(_) => Err(invalid_argument(field, &format!("{value} is not an ActivityKind"))),
    }
}

pub fn status_to_pb(status: DomainStatus) -> pb::OpportunityStatus {
    match status {
        DomainStatus::Open => pb::OpportunityStatus::Open,
        DomainStatus::Won => pb::OpportunityStatus::Won,
        DomainStatus::Leaked => pb::OpportunityStatus::Leaked,
    }
}

fn kind_to_pb(kind: TransitionKind) -> pb::TransitionKind {
    match kind {
        TransitionKind::Created => pb::TransitionKind::Created,
        TransitionKind::Advanced => pb::TransitionKind::Advanced,
        TransitionKind::MovedBack => pb::TransitionKind::MovedBack,
        TransitionKind::Won => pb::TransitionKind::Won,
        TransitionKind::Leaked => pb::TransitionKind::Leaked,
        TransitionKind::Reopened => pb::TransitionKind::Reopened,
    }
}

fn activity_kind_to_pb(kind: ActivityKind) -> pb::ActivityKind {
    match kind {
        ActivityKind::Call => pb::ActivityKind::Call,
        ActivityKind::Email => pb::ActivityKind::Email,
        ActivityKind::Meeting => pb::ActivityKind::Meeting,
        ActivityKind::Note => pb::ActivityKind::Note,
    }
}

pub fn pipeline_to_pb(pipeline: Pipeline) -> pb::Pipeline {
    let stages = pipeline
        .def
        .stages()
        .iter()
        .map(|stage| pb::Stage {
            key: stage.key.to_string(),
            display_name: stage.display_name.clone(),
            rot_after_days: stage.rot_after_days,
        })
        .collect();
    pb::Pipeline {
        name: pipeline.def.name.to_string(),
        display_name: pipeline.def.display_name.clone(),
        stages,
        created_at: Some(timestamp(pipeline.created_at)),
        updated_at: Some(timestamp(pipeline.updated_at)),
        etag: pipeline.version.to_string(),
    }
}

pub fn opportunity_to_pb(opportunity: Opportunity) -> pb::Opportunity {
    let state = opportunity.state;
    pb::Opportunity {
        id: opportunity.id.to_string(),
        pipeline: opportunity.pipeline.into_string(),
        stage: state.stage.into_string(),
        status: status_to_pb(state.status) as i32,
        title: opportunity.title,
        account: opportunity.account,
        owner: opportunity.owner,
        amount: opportunity
            .amount
            .map(|money| pb::Money { currency_code: money.currency_code, amount_minor: money.amount_minor }),
        source: opportunity.source,
        external_id: opportunity.external_id.unwrap_or_default(),
        attributes: opportunity.attributes,
        created_at: Some(timestamp(state.created_at)),
        stage_entered_at: Some(timestamp(state.stage_entered_at)),
        closed_at: state.closed_at.map(timestamp),
        leak_reason: state.leak_reason.unwrap_or_default(),
        etag: opportunity.version.to_string(),
        updated_at: Some(timestamp(opportunity.updated_at)),
    }
}

pub fn history_to_pb(row: HistoryRow) -> pb::StageTransition {
    let transition = row.transition;
    pb::StageTransition {
        sequence: transition.sequence,
        opportunity_id: row.opportunity_id.to_string(),
        from_stage: transition.from_stage.map(|stage| stage.to_string()).unwrap_or_default(),
        to_stage: transition.to_stage.to_string(),
        from_status: transition.from_status.map(status_to_pb).unwrap_or(pb::OpportunityStatus::Unspecified) as i32,
        to_status: status_to_pb(transition.to_status) as i32,
        kind: kind_to_pb(transition.kind) as i32,
        occurred_at: Some(timestamp(transition.occurred_at)),
        recorded_at: Some(timestamp(row.recorded_at)),
        actor: transition.actor,
        reason: transition.reason,
        note: transition.note,
    }
}

pub fn activity_to_pb(activity: Activity) -> pb::Activity {
    pb::Activity {
        id: activity.id.to_string(),
        opportunity_id: activity.opportunity_id.to_string(),
        kind: activity_kind_to_pb(activity.kind) as i32,
        occurred_at: Some(timestamp(activity.occurred_at)),
        recorded_at: Some(timestamp(activity.recorded_at)),
        actor: activity.actor,
        note: activity.note,
    }
}
