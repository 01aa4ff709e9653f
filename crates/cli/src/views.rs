//! Plain, serializable views of the service's messages: what `--json`
//! prints and what the tables are drawn from. Enums become lower-case words
//! (`open`, `moved_back`), timestamps RFC 3339, money a pair.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_proto::v1 as pb;
use prost_types::Timestamp;
use serde::Serialize;

use crate::output;

/// A proto enum value as a lower-case word without its type prefix:
/// `OPPORTUNITY_STATUS_OPEN` -> `open`. Unknown numbers stay visible.
pub fn enum_word(name: Option<&str>, prefix: &str, value: i32) -> String {
    match name {
        Some(name) => name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase(),
        None => format!("unknown({value})"),
    }
}

pub fn status_word(value: i32) -> String {
    let name = pb::OpportunityStatus::try_from(value).ok().map(|status| status.as_str_name());
    enum_word(name, "OPPORTUNITY_STATUS_", value)
}

pub fn time(value: Option<Timestamp>) -> Option<DateTime<Utc>> {
    let value = value?;
    DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).ok()?)
}

/// An amount of money.
#[derive(Debug, Clone, Serialize)]
pub struct MoneyView {
    pub currency_code: String,
    pub amount_minor: i64,
}

/// An opportunity.
#[derive(Debug, Clone, Serialize)]
pub struct OpportunityView {
    pub id: String,
    pub pipeline: String,
    pub stage: String,
    pub status: String,
    pub title: String,
    pub account: String,
    pub owner: String,
    pub amount: Option<MoneyView>,
    pub source: String,
    pub external_id: String,
    pub attributes: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub stage_entered_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub leak_reason: String,
    pub etag: String,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<pb::Opportunity> for OpportunityView {
    fn from(opportunity: pb::Opportunity) -> Self {
        let pb::Opportunity {
            id,
            pipeline,
            stage,
            status,
            title,
            account,
            owner,
            amount,
            source,
            external_id,
            attributes,
            created_at,
            stage_entered_at,
            closed_at,
            leak_reason,
            etag,
            updated_at,
        } = opportunity;
        OpportunityView {
            id,
            pipeline,
            stage,
            status: status_word(status),
            title,
            account,
            owner,
            amount: amount
                .map(|money| MoneyView { currency_code: money.currency_code, amount_minor: money.amount_minor }),
            source,
            external_id,
            attributes: attributes.into_iter().collect(),
            created_at: time(created_at),
            stage_entered_at: time(stage_entered_at),
            closed_at: time(closed_at),
            leak_reason,
            etag,
            updated_at: time(updated_at),
        }
    }
}

impl OpportunityView {
    /// Name-value rows for a details table.
    pub fn detail_rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("id", self.id.clone()),
            ("title", self.title.clone()),
            ("pipeline", self.pipeline.clone()),
            ("stage", self.stage.clone()),
            ("status", self.status.clone()),
            ("owner", self.owner.clone()),
            ("account", self.account.clone()),
            (
                "amount",
                self.amount
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |money| output::money(money.amount_minor, &money.currency_code)),
            ),
            ("source", self.source.clone()),
            ("created", output::time(self.created_at)),
            ("in stage since", output::time(self.stage_entered_at)),
        ];
        if self.closed_at.is_some() {
            rows.push(("closed", output::time(self.closed_at)));
        }
        if !self.leak_reason.is_empty() {
            rows.push(("leak reason", self.leak_reason.clone()));
        }
        if !self.external_id.is_empty() {
            rows.push(("external id", self.external_id.clone()));
        }
        for (name, value) in &self.attributes {
            rows.push(("attribute", format!("{name} = {value}")));
        }
        rows
    }

    /// One line saying where it stands now.
    pub fn summary_line(&self) -> String {
        let mut line = format!("{} \"{}\" is {} in {}", self.id, self.title, self.status, self.stage);
        if !self.leak_reason.is_empty() {
            line.push_str(&format!(" (reason: {})", self.leak_reason));
        }
        line
    }
}

/// One row of an opportunity's stage history.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionView {
    pub sequence: i64,
    pub kind: String,
    pub from_stage: String,
    pub to_stage: String,
    pub from_status: String,
    pub to_status: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub reason: String,
    pub note: String,
}

impl From<pb::StageTransition> for TransitionView {
    fn from(transition: pb::StageTransition) -> Self {
        let pb::StageTransition {
            sequence,
            opportunity_id: _,
            from_stage,
            to_stage,
            from_status,
            to_status,
            kind,
            occurred_at,
            recorded_at,
            actor,
            reason,
            note,
        } = transition;
        let kind_name = pb::TransitionKind::try_from(kind).ok().map(|kind| kind.as_str_name());
        TransitionView {
            sequence,
            kind: enum_word(kind_name, "TRANSITION_KIND_", kind),
            from_stage,
            to_stage,
            from_status: status_word(from_status),
            to_status: status_word(to_status),
            occurred_at: time(occurred_at),
            recorded_at: time(recorded_at),
            actor,
            reason,
            note,
        }
    }
}

/// An activity logged against an opportunity.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityView {
    pub id: String,
    pub opportunity_id: String,
    pub kind: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub note: String,
}

impl From<pb::Activity> for ActivityView {
    fn from(activity: pb::Activity) -> Self {
        let pb::Activity { id, opportunity_id, kind, occurred_at, recorded_at: _, actor, note } = activity;
        let kind_name = pb::ActivityKind::try_from(kind).ok().map(|kind| kind.as_str_name());
        ActivityView {
            id,
            opportunity_id,
            kind: enum_word(kind_name, "ACTIVITY_KIND_", kind),
            occurred_at: time(occurred_at),
            actor,
            note,
        }
    }
}

/// One factor of a score's explanation.
#[derive(Debug, Clone, Serialize)]
pub struct FactorView {
    pub feature: String,
    pub value: String,
    pub contribution: f64,
}

/// A lead's score.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreView {
    pub opportunity_id: String,
    pub pipeline: String,
    pub stage: String,
    pub owner: String,
    pub title: String,
    pub model_version: i64,
    pub p_advance: f64,
    pub p_win_estimate: f64,
    pub leak_flag: bool,
    pub reason_codes: Vec<String>,
    pub factors_down: Vec<FactorView>,
    pub factors_up: Vec<FactorView>,
    pub scored_at: Option<DateTime<Utc>>,
    pub days_in_stage: f64,
}

fn factor_views(factors: Vec<pb::ScoreFactor>) -> Vec<FactorView> {
    let mut views = Vec::with_capacity(factors.len());
    for factor in factors {
        views.push(FactorView { feature: factor.feature, value: factor.value, contribution: factor.contribution });
    }
    views
}

impl From<pb::LeadScore> for ScoreView {
    fn from(score: pb::LeadScore) -> Self {
        let pb::LeadScore {
            opportunity_id,
            pipeline,
            stage,
            owner,
            title,
            model_version,
            p_advance,
            p_win_estimate,
            leak_flag,
            reason_codes,
            factors_down,
            factors_up,
            scored_at,
            days_in_stage,
        } = score;
        ScoreView {
            opportunity_id,
            pipeline,
            stage,
            owner,
            title,
            model_version,
            p_advance,
            p_win_estimate,
            leak_flag,
            reason_codes,
            factors_down: factor_views(factors_down),
            factors_up: factor_views(factors_up),
            scored_at: time(scored_at),
            days_in_stage,
        }
    }
}

impl ScoreView {
    /// What a rep should read first: the first reason code, else the factor
    /// pulling the score down hardest.
    pub fn top_reason(&self) -> String {
        if let Some(code) = self.reason_codes.first() {
            return code.clone();
        }
        self.factors_down.first().map_or_else(String::new, |factor| format!("{}={}", factor.feature, factor.value))
    }
}
