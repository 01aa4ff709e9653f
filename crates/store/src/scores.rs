//! Lead scores: the current score of every scored opportunity, and the
//! append-only history of how they changed (for "as of" questions).
//!
//! A rescoring replaces every current score but records one in the history
//! only when it changed: a new opportunity, stage, model version, leak flag
//! or reasons, a probability [`RECORD_STEP`] away from the last one
//! recorded, or a day since then. Rescoring every few minutes would
//! otherwise add a row per open lead each time (~830 bytes with indexes:
//! ~7 GB a day for 29,127 open leads at the default 5 minutes), nearly all
//! repeating the row before.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use funnel_domain::{DomainError, OpportunityId};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
    Statement,
};
use serde::{Deserialize, Serialize};

use crate::bulk::insert_all;
use crate::entity::{current_score, opportunity, score_history};
use crate::time::{from_micros, to_micros};
use crate::{Backend, Page, Result, Store, StoreError, page, score_writes};

/// The current score is replaced by each new one (both backends accept
/// `excluded`).
pub(crate) const CURRENT_SCORE_UPSERT: &str = "ON CONFLICT (opportunity_id) DO UPDATE SET pipeline = excluded.pipeline, \
    stage = excluded.stage, owner = excluded.owner, title = excluded.title, model_version = excluded.model_version, \
    p_advance = excluded.p_advance, p_win = excluded.p_win, leak_flag = excluded.leak_flag, \
    reason_codes = excluded.reason_codes, factors = excluded.factors, days_in_stage = excluded.days_in_stage, \
    scored_at = excluded.scored_at, recorded_p_advance = excluded.recorded_p_advance, \
    recorded_at = excluded.recorded_at";

/// How far the probability moves from the last recorded score before a
/// new one is recorded.
pub(crate) const RECORD_STEP: f64 = 0.01;

/// Longest time between recorded scores of an opportunity (microseconds):
/// a day, so an "as of" answer is never more than a day older than asked.
pub(crate) const RECORD_EVERY_MICROS: i64 = 86_400_000_000;

/// Whether `score` (with `reasons` encoded) goes into the history, given
/// the current score it replaces. [`crate::score_writes`] applies the same
/// rule in SQL on PostgreSQL.
fn records_change(prior: Option<&current_score::Model>, score: &LeadScoreRecord, reasons: &str) -> bool {
    let Some(prior) = prior else { return true };
    let (Some(recorded_p), Some(recorded_at)) = (prior.recorded_p_advance, prior.recorded_at) else { return true };
    prior.stage != score.stage
        || prior.model_version != score.model_version
        || prior.leak_flag != score.leak_flag
        || prior.reason_codes != reasons
        || (score.p_advance - recorded_p).abs() >= RECORD_STEP
        || to_micros(score.scored_at) - recorded_at >= RECORD_EVERY_MICROS
}

/// One factor of a score's explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreFactor {
    pub feature: String,
    pub value: String,
    pub contribution: f64,
}

/// A score as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadScoreRecord {
    pub opportunity_id: OpportunityId,
    pub pipeline: String,
    pub stage: String,
    pub owner: String,
    pub title: String,
    /// 0 when no model existed and the stage baseline scored it.
    pub model_version: i64,
    pub p_advance: f64,
    pub p_win: f64,
    pub leak_flag: bool,
    pub reason_codes: Vec<String>,
    pub factors_down: Vec<ScoreFactor>,
    pub factors_up: Vec<ScoreFactor>,
    pub days_in_stage: f64,
    pub scored_at: DateTime<Utc>,
}

/// What a call of [`Store::prune_score_history`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: u64,
    /// No row older than the cut-off is left; false when the call stopped
    /// at its number of statements.
    pub finished: bool,
}

/// Filters of ListLeadScores; only open opportunities are listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreFilter {
    pub pipeline: Option<String>,
    pub owner: Option<String>,
    pub stage: Option<String>,
    pub flagged_only: bool,
    pub min_probability: Option<f64>,
    pub max_probability: Option<f64>,
}

#[derive(Deserialize)]
struct Factors {
    down: Vec<ScoreFactor>,
    up: Vec<ScoreFactor>,
}

/// [`Factors`] as written, borrowed from the score rather than cloned.
#[derive(Serialize)]
struct FactorsOf<'a> {
    down: &'a [ScoreFactor],
    up: &'a [ScoreFactor],
}

impl Store {
    /// Writes a batch of scores: upserted as the current scores, and those
    /// that changed appended to the history (module documentation), in one
    /// transaction.
    pub async fn write_scores(&self, scores: &[LeadScoreRecord]) -> Result<()> {
        if scores.is_empty() {
            return Ok(());
        }
        if self.backend() == Backend::Postgres {
            let events = crate::events::new::scores_changed(scores);
            score_writes::write(self, scores, &events).await?;
            self.events_landed();
            return Ok(());
        }
        let _writer = self.write_lock().await;
        let txn = self.begin_write().await?;
        let ids = scores.iter().map(|score| score.opportunity_id.uuid());
        let priors: HashMap<uuid::Uuid, current_score::Model> = current_score::Entity::find()
            .filter(current_score::Column::OpportunityId.is_in(ids))
            .all(&txn)
            .await?
            .into_iter()
            .map(|row| (row.opportunity_id, row))
            .collect();
        let (mut history, mut current) = (Vec::new(), Vec::with_capacity(scores.len()));
        for score in scores {
            let (reasons, factors) = encode_parts(score)?;
            let prior = priors.get(&score.opportunity_id.uuid());
            let recorded = if records_change(prior, score, &reasons) {
                history.push(history_row(score, reasons.clone(), factors.clone()));
                (Some(score.p_advance), Some(to_micros(score.scored_at)))
            } else {
                (prior.and_then(|prior| prior.recorded_p_advance), prior.and_then(|prior| prior.recorded_at))
            };
            current.push(current_row(score, reasons, factors, recorded));
        }
        insert_all(&txn, history, "").await?;
        insert_all(&txn, current, CURRENT_SCORE_UPSERT).await?;
        self.commit_with_events(txn, crate::events::new::scores_changed(scores)).await?;
        Ok(())
    }

    /// Deletes the history's scores recorded before `before`, `batch` rows
    /// per statement (each its own transaction, so a long prune holds no
    /// lock for long), at most `statements` of them: a caller with other
    /// work works a backlog off a slice at a time. An "as of" question
    /// before `before` then has no answer (NOT_FOUND); current scores stay.
    pub async fn prune_score_history(&self, before: DateTime<Utc>, batch: u64, statements: u32) -> Result<Pruned> {
        let backend = self.db.get_database_backend();
        let batch = batch.max(1);
        let mut pruned = Pruned { deleted: 0, finished: false };
        for _ in 0..statements {
            // Rows are appended in time order, so the oldest come first in a
            // scan and a batch is found without an index on `scored_at`.
            let statement = Statement::from_sql_and_values(
                backend,
                "DELETE FROM score_history WHERE id IN \
                 (SELECT id FROM score_history WHERE scored_at < $1 ORDER BY id LIMIT $2)",
                [to_micros(before).into(), i64::try_from(batch).unwrap_or(i64::MAX).into()],
            );
            let _writer = self.write_lock().await;
            let gone = self.write_connection().execute_raw(statement).await?.rows_affected();
            pruned.deleted += gone;
            if gone < batch {
                pruned.finished = true;
                break;
            }
        }
        Ok(pruned)
    }

    /// The current score of an opportunity, or the one recorded in force at
    /// `as_of`.
    pub async fn lead_score(&self, id: OpportunityId, as_of: Option<DateTime<Utc>>) -> Result<LeadScoreRecord> {
        let Some(as_of) = as_of else {
            return match current_score::Entity::find_by_id(id.uuid()).one(&self.db).await? {
                Some(row) => from_current_row(row),
                None => Err(StoreError::not_found("score for opportunity", id)),
            };
        };
        let recorded = score_history::Entity::find()
            .filter(score_history::Column::OpportunityId.eq(id.uuid()))
            .filter(score_history::Column::ScoredAt.lte(to_micros(as_of)))
            .order_by_desc(score_history::Column::ScoredAt)
            .order_by_desc(score_history::Column::Id)
            .one(&self.db)
            .await?;
        match recorded {
            Some(row) => from_history_row(row),
            None => Err(StoreError::not_found("score as of that time for opportunity", id)),
        }
    }

    /// Current scores of open opportunities, lowest probability first.
    pub async fn list_scores(
        &self,
        filter: &ScoreFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<LeadScoreRecord>> {
        let scope = format!("scores|{filter:?}");
        let mut query = current_score::Entity::find()
            .join(sea_orm::JoinType::InnerJoin, current_score::Relation::Opportunity.def())
            .filter(opportunity::Column::Status.eq("open"))
            .order_by_asc(current_score::Column::PAdvance)
            .order_by_asc(current_score::Column::OpportunityId);
        if let Some(pipeline) = &filter.pipeline {
            query = query.filter(opportunity::Column::Pipeline.eq(pipeline.as_str()));
        }
        if let Some(owner) = &filter.owner {
            query = query.filter(opportunity::Column::Owner.eq(owner.as_str()));
        }
        if let Some(stage) = &filter.stage {
            query = query.filter(opportunity::Column::Stage.eq(stage.as_str()));
        }
        if filter.flagged_only {
            query = query.filter(current_score::Column::LeakFlag.eq(true));
        }
        if let Some(min) = filter.min_probability {
            query = query.filter(current_score::Column::PAdvance.gte(min));
        }
        if let Some(max) = filter.max_probability {
            query = query.filter(current_score::Column::PAdvance.lte(max));
        }
        if let Some(key) = page::decode(&scope, page_token)? {
            let damaged = || DomainError::invalid("page_token", "is damaged");
            let (probability, id) = key.split_once('/').ok_or_else(damaged)?;
            let probability: f64 = probability.parse().map_err(|_| damaged())?;
            let id = uuid::Uuid::parse_str(id).map_err(|_| damaged())?;
            query = query.filter(
                Condition::any().add(current_score::Column::PAdvance.gt(probability)).add(
                    Condition::all()
                        .add(current_score::Column::PAdvance.eq(probability))
                        .add(current_score::Column::OpportunityId.gt(id)),
                ),
            );
        }
        let rows = query.limit(u64::from(page_size) + 1).all(&self.db).await?;
        let items = rows.into_iter().map(from_current_row).collect::<Result<Vec<_>>>()?;
        Ok(page::finish(items, page_size, &scope, |last| format!("{}/{}", last.p_advance, last.opportunity_id)))
    }
}

pub(crate) fn encode_parts(score: &LeadScoreRecord) -> Result<(String, String)> {
    let reasons =
        serde_json::to_string(&score.reason_codes).map_err(|error| StoreError::Internal(error.to_string()))?;
    let factors = FactorsOf { down: &score.factors_down, up: &score.factors_up };
    let factors = serde_json::to_string(&factors).map_err(|error| StoreError::Internal(error.to_string()))?;
    Ok((reasons, factors))
}

fn history_row(score: &LeadScoreRecord, reasons: String, factors: String) -> score_history::ActiveModel {
    score_history::ActiveModel {
        id: NotSet,
        opportunity_id: Set(score.opportunity_id.uuid()),
        pipeline: Set(score.pipeline.clone()),
        stage: Set(score.stage.clone()),
        owner: Set(score.owner.clone()),
        title: Set(score.title.clone()),
        model_version: Set(score.model_version),
        p_advance: Set(score.p_advance),
        p_win: Set(score.p_win),
        leak_flag: Set(score.leak_flag),
        reason_codes: Set(reasons),
        factors: Set(factors),
        days_in_stage: Set(score.days_in_stage),
        scored_at: Set(to_micros(score.scored_at)),
    }
}

fn current_row(
    score: &LeadScoreRecord,
    reasons: String,
    factors: String,
    (recorded_p_advance, recorded_at): (Option<f64>, Option<i64>),
) -> current_score::ActiveModel {
    current_score::ActiveModel {
        opportunity_id: Set(score.opportunity_id.uuid()),
        pipeline: Set(score.pipeline.clone()),
        stage: Set(score.stage.clone()),
        owner: Set(score.owner.clone()),
        title: Set(score.title.clone()),
        model_version: Set(score.model_version),
        p_advance: Set(score.p_advance),
        p_win: Set(score.p_win),
        leak_flag: Set(score.leak_flag),
        reason_codes: Set(reasons),
        factors: Set(factors),
        days_in_stage: Set(score.days_in_stage),
        scored_at: Set(to_micros(score.scored_at)),
        recorded_p_advance: Set(recorded_p_advance),
        recorded_at: Set(recorded_at),
    }
}

/// History rows carry the same fields as current ones, plus their own id.
fn from_history_row(row: score_history::Model) -> Result<LeadScoreRecord> {
    let score_history::Model {
        id: _,
        opportunity_id,
        pipeline,
        stage,
        owner,
        title,
        model_version,
        p_advance,
        p_win,
        leak_flag,
        reason_codes,
        factors,
        days_in_stage,
        scored_at,
    } = row;
    from_current_row(current_score::Model {
        opportunity_id,
        pipeline,
        stage,
        owner,
        title,
        model_version,
        p_advance,
        p_win,
        leak_flag,
        reason_codes,
        factors,
        days_in_stage,
        scored_at,
        recorded_p_advance: None,
        recorded_at: None,
    })
}

fn from_current_row(row: current_score::Model) -> Result<LeadScoreRecord> {
    let id = row.opportunity_id;
    let reason_codes: Vec<String> = serde_json::from_str(&row.reason_codes)
        .map_err(|error| StoreError::Internal(format!("reason codes of {id}: {error}")))?;
    let factors: Factors = serde_json::from_str(&row.factors)
        .map_err(|error| StoreError::Internal(format!("factors of {id}: {error}")))?;
    Ok(LeadScoreRecord {
        opportunity_id: OpportunityId::from_uuid(id),
        pipeline: row.pipeline,
        stage: row.stage,
        owner: row.owner,
        title: row.title,
        model_version: row.model_version,
        p_advance: row.p_advance,
        p_win: row.p_win,
        leak_flag: row.leak_flag,
        reason_codes,
        factors_down: factors.down,
        factors_up: factors.up,
        days_in_stage: row.days_in_stage,
        scored_at: from_micros(row.scored_at),
    })
}
