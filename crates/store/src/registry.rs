//! The model registry: every trained model with its metrics and its status
//! (candidate, active, retired). At most one model per pipeline is active.

use chrono::{DateTime, Utc};
use funnel_domain::{DomainError, PipelineName};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::model_registry as model;
use crate::events::{EventKind, new as new_event};
use crate::jobs::{JobState, finish_job};
use crate::pipelines::corrupt;
use crate::time::{from_micros, to_micros};
use crate::{Page, Result, Store, StoreError, page};

/// Where a model is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStatus {
    Candidate,
    Active,
    Retired,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Candidate => "candidate",
            ModelStatus::Active => "active",
            ModelStatus::Retired => "retired",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value {
            "candidate" => Ok(ModelStatus::Candidate),
            "active" => Ok(ModelStatus::Active),
            "retired" => Ok(ModelStatus::Retired),
            other => Err(StoreError::Internal(format!("unknown model status {other:?}"))),
        }
    }
}

/// What started a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
    Event,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Event => "event",
        }
    }

    pub(crate) fn parse(value: &str) -> Result<Self> {
        match value {
            "schedule" => Ok(Trigger::Schedule),
            "manual" => Ok(Trigger::Manual),
            "event" => Ok(Trigger::Event),
            other => Err(StoreError::Internal(format!("unknown trigger {other:?}"))),
        }
    }
}

/// A registered model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    pub version: i64,
    pub pipeline: PipelineName,
    pub status: ModelStatus,
    pub status_reason: String,
    pub trigger: Trigger,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub advanced_examples: i64,
    pub leaked_examples: i64,
    pub roc_auc: Option<f64>,
    pub baseline_roc_auc: Option<f64>,
    pub training_seconds: f64,
    /// The serialized trained model (owned by the scoring crate).
    pub body: String,
}

/// A model to register, with the gate's verdict.
#[derive(Debug, Clone)]
pub struct NewModel {
    pub pipeline: PipelineName,
    pub trigger: Trigger,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub advanced_examples: i64,
    pub leaked_examples: i64,
    pub roc_auc: Option<f64>,
    pub baseline_roc_auc: Option<f64>,
    pub training_seconds: f64,
    pub body: String,
    /// The gate passed it: it replaces the active model.
    pub activate: bool,
    pub status_reason: String,
}

impl Store {
    /// Registers a model and, when the gate passed it, makes it the active one,
    /// finishing `job` in the same transaction: a run that dies before this
    /// leaves nothing behind.
    pub async fn register_model(&self, new: NewModel, job: Option<Uuid>) -> Result<ModelRecord> {
        let _writer = self.write_lock().await;
        let txn = self.begin_write().await?;
        let now = to_micros(Utc::now());
        if new.activate {
            retire_active(&txn, new.pipeline.as_str()).await?;
        }
        let status = if new.activate { ModelStatus::Active } else { ModelStatus::Candidate };
        let row = model::ActiveModel {
            version: NotSet,
            pipeline: Set(new.pipeline.to_string()),
            status: Set(status.as_str().to_owned()),
            status_reason: Set(new.status_reason.clone()),
            trigger: Set(new.trigger.as_str().to_owned()),
            created_at: Set(now),
            activated_at: Set(new.activate.then_some(now)),
            window_start: Set(to_micros(new.window_start)),
            window_end: Set(to_micros(new.window_end)),
            advanced_examples: Set(new.advanced_examples),
            leaked_examples: Set(new.leaked_examples),
            roc_auc: Set(new.roc_auc),
            baseline_roc_auc: Set(new.baseline_roc_auc),
            training_seconds: Set(new.training_seconds),
            body: Set(new.body),
        };
        let inserted = model::Entity::insert(row).exec(&txn).await?;
        let version = inserted.last_insert_id;
        if let Some(job) = job {
            finish_job(&txn, job, JobState::Succeeded, Some(version), &new.status_reason).await?;
        }
        let record = fetch(&txn, version).await?;
        let kind = if new.activate { EventKind::ModelActivated } else { EventKind::ModelRegistered };
        let event = new_event::model_changed(&record, kind, from_micros(now));
        self.commit_with_events(txn, vec![event]).await?;
        Ok(record)
    }

    pub async fn get_model(&self, version: i64) -> Result<ModelRecord> {
        fetch(&self.db, version).await
    }

    pub async fn active_model(&self, pipeline: &PipelineName) -> Result<Option<ModelRecord>> {
        let row = model::Entity::find()
            .filter(model::Column::Pipeline.eq(pipeline.as_str()))
            .filter(model::Column::Status.eq(ModelStatus::Active.as_str()))
            .one(&self.db)
            .await?;
        row.map(from_row).transpose()
    }

    /// Models, newest first.
    pub async fn list_models(
        &self,
        pipeline: Option<&PipelineName>,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<ModelRecord>> {
        let scope = format!("models|{pipeline:?}");
        let mut query = model::Entity::find().order_by_desc(model::Column::Version);
        if let Some(pipeline) = pipeline {
            query = query.filter(model::Column::Pipeline.eq(pipeline.as_str()));
        }
        if let Some(key) = page::decode(&scope, page_token)? {
            let before: i64 = key.parse().map_err(|_| DomainError::invalid("page_token", "is damaged"))?;
            query = query.filter(model::Column::Version.lt(before));
        }
        let rows = query.limit(u64::from(page_size) + 1).all(&self.db).await?;
        let items = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(page::finish(items, page_size, &scope, |last| last.version.to_string()))
    }

    /// Makes a model its pipeline's active one, retiring the current one.
    /// Also how ops roll back to an earlier version.
    pub async fn activate_model(&self, version: i64, reason: &str) -> Result<ModelRecord> {
        let _writer = self.write_lock().await;
        let txn = self.begin_write().await?;
        let target = fetch(&txn, version).await?;
        if target.status == ModelStatus::Active {
            return Err(DomainError::FailedPrecondition(format!("model {version} is already active")).into());
        }
        retire_active(&txn, target.pipeline.as_str()).await?;
        model::Entity::update_many()
            .col_expr(model::Column::Status, Expr::value(ModelStatus::Active.as_str()))
            .col_expr(model::Column::StatusReason, Expr::value(reason))
            .col_expr(model::Column::ActivatedAt, Expr::value(to_micros(Utc::now())))
            .filter(model::Column::Version.eq(version))
            .exec(&txn)
            .await?;
        let record = fetch(&txn, version).await?;
        let activated_at = record.activated_at.unwrap_or_else(Utc::now);
        let event = new_event::model_changed(&record, EventKind::ModelActivated, activated_at);
        self.commit_with_events(txn, vec![event]).await?;
        Ok(record)
    }
}

async fn retire_active(db: &impl ConnectionTrait, pipeline: &str) -> Result<()> {
    model::Entity::update_many()
        .col_expr(model::Column::Status, Expr::value(ModelStatus::Retired.as_str()))
        .filter(model::Column::Pipeline.eq(pipeline))
        .filter(model::Column::Status.eq(ModelStatus::Active.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

async fn fetch(db: &impl ConnectionTrait, version: i64) -> Result<ModelRecord> {
    match model::Entity::find_by_id(version).one(db).await? {
        Some(row) => from_row(row),
        None => Err(StoreError::not_found("model", version)),
    }
}

fn from_row(row: model::Model) -> Result<ModelRecord> {
    Ok(ModelRecord {
        version: row.version,
        pipeline: PipelineName::parse("pipeline", &row.pipeline).map_err(corrupt)?,
        status: ModelStatus::parse(&row.status)?,
        status_reason: row.status_reason,
        trigger: Trigger::parse(&row.trigger)?,
        created_at: from_micros(row.created_at),
        activated_at: row.activated_at.map(from_micros),
        window_start: from_micros(row.window_start),
        window_end: from_micros(row.window_end),
        advanced_examples: row.advanced_examples,
        leaked_examples: row.leaked_examples,
        roc_auc: row.roc_auc,
        baseline_roc_auc: row.baseline_roc_auc,
        training_seconds: row.training_seconds,
        body: row.body,
    })
}
