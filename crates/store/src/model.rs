//! What the repositories take and return: domain types plus bookkeeping.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_domain::{
    ActivityKind, Money, OpportunityId, OpportunityState, PipelineDef, PipelineName, StageKey, Status, Transition,
};
use uuid::Uuid;

/// A stored pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub def: PipelineDef,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored opportunity.
#[derive(Debug, Clone, PartialEq)]
pub struct Opportunity {
    pub id: OpportunityId,
    pub pipeline: PipelineName,
    pub state: OpportunityState,
    pub title: String,
    pub account: String,
    pub owner: String,
    pub amount: Option<Money>,
    pub source: String,
    pub external_id: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// A validated request to create an opportunity.
#[derive(Debug, Clone)]
pub struct NewOpportunity {
    pub pipeline: PipelineName,
    /// The first stage when `None`.
    pub stage: Option<StageKey>,
    pub title: String,
    pub account: String,
    pub owner: String,
    pub amount: Option<Money>,
    pub source: String,
    pub external_id: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Now when `None`.
    pub occurred_at: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
    pub actor: String,
    pub note: String,
}

/// Descriptive fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OpportunityPatch {
    pub title: Option<String>,
    pub account: Option<String>,
    pub owner: Option<String>,
    pub amount: Option<Option<Money>>,
    pub source: Option<String>,
    pub external_id: Option<Option<String>>,
    pub attributes: Option<BTreeMap<String, String>>,
}

/// A change of stage or status with its bookkeeping.
#[derive(Debug, Clone)]
pub struct StageCommand {
    pub command: funnel_domain::Command,
    /// Expected version; a mismatch is a conflict.
    pub expected_version: Option<i64>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub note: String,
}

/// Filters of a list call; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpportunityFilter {
    pub pipeline: Option<PipelineName>,
    pub stage: Option<StageKey>,
    pub status: Option<Status>,
    pub owner: Option<String>,
}

/// One history row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub opportunity_id: OpportunityId,
    pub transition: Transition,
    pub recorded_at: DateTime<Utc>,
}

/// A stored activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: Uuid,
    pub opportunity_id: OpportunityId,
    pub kind: ActivityKind,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub note: String,
}

/// A validated request to log an activity.
#[derive(Debug, Clone)]
pub struct NewActivity {
    pub opportunity_id: OpportunityId,
    pub kind: ActivityKind,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub note: String,
    pub request_id: Option<String>,
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_page_token: String,
}
