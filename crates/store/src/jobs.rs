//! Retraining jobs and the per-pipeline training lease. A worker trains a
//! pipeline only while it holds that pipeline's lease, so two workers against
//! one database never train the same pipeline at once; a worker that dies
//! stops renewing it, and its job is retried or failed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use funnel_domain::{DomainError, PipelineName};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::{retrain_job as job, training_lease as lease};
use crate::pipelines::{corrupt, load as load_pipeline};
use crate::registry::Trigger;
use crate::time::{from_micros, to_micros};
use crate::{Result, Store, StoreError};

/// Where a retraining job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "succeeded" => Ok(JobState::Succeeded),
            "failed" => Ok(JobState::Failed),
            other => Err(StoreError::Internal(format!("unknown job state {other:?}"))),
        }
    }
}

/// A queued, running or finished training run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrainJob {
    pub id: Uuid,
    pub pipeline: PipelineName,
    pub state: JobState,
    pub trigger: Trigger,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub model_version: Option<i64>,
    pub message: String,
    pub attempts: i32,
}

impl Store {
    /// Queues a training run. While one is already queued for the pipeline,
    /// that one is returned instead: a second would train on the same data.
    pub async fn queue_retrain(
        &self,
        pipeline: &PipelineName,
        trigger: Trigger,
        request_id: Option<String>,
    ) -> Result<RetrainJob> {
        let _writer = self.write_lock().await;
        let txn = self.begin_write().await?;
        load_pipeline(&txn, pipeline.as_str()).await?;
        if let Some(request_id) = &request_id
            && let Some(existing) =
                job::Entity::find().filter(job::Column::RequestId.eq(request_id.as_str())).one(&txn).await?
        {
            return from_row(existing);
        }
        let queued = job::Entity::find()
            .filter(job::Column::Pipeline.eq(pipeline.as_str()))
            .filter(job::Column::State.eq(JobState::Queued.as_str()))
            .one(&txn)
            .await?;
        if let Some(queued) = queued {
            return from_row(queued);
        }
        let row = job::ActiveModel {
            id: Set(Uuid::now_v7()),
            pipeline: Set(pipeline.to_string()),
            state: Set(JobState::Queued.as_str().to_owned()),
            trigger: Set(trigger.as_str().to_owned()),
            created_at: Set(to_micros(Utc::now())),
            started_at: Set(None),
            finished_at: Set(None),
            heartbeat_at: Set(None),
            worker: Set(None),
            model_version: Set(None),
            message: Set(String::new()),
            attempts: Set(0),
            request_id: Set(request_id),
        };
        let inserted = job::Entity::insert(row).exec_with_returning(&txn).await?;
        txn.commit().await?;
        from_row(inserted)
    }

    pub async fn get_retrain_job(&self, id: Uuid) -> Result<RetrainJob> {
        match job::Entity::find_by_id(id).one(&self.db).await? {
            Some(row) => from_row(row),
            None => Err(StoreError::not_found("retrain job", id)),
        }
    }

    /// Jobs waiting for a worker.
    pub async fn queued_jobs(&self) -> Result<u64> {
        Ok(job::Entity::find().filter(job::Column::State.eq(JobState::Queued.as_str())).count(&self.db).await?)
    }

    /// Claims the oldest queued job whose pipeline lease this worker can take.
    /// Jobs of workers that stopped heartbeating are first requeued (or
    /// failed after `max_attempts`).
    pub async fn claim_retrain_job(
        &self,
        worker: &str,
        lease_for: Duration,
        max_attempts: i32,
    ) -> Result<Option<RetrainJob>> {
        self.requeue_abandoned(max_attempts).await?;
        let queued = job::Entity::find()
            .filter(job::Column::State.eq(JobState::Queued.as_str()))
            .order_by_asc(job::Column::CreatedAt)
            .limit(32)
            .all(&self.db)
            .await?;
        for candidate in queued {
            let pipeline = PipelineName::parse("pipeline", &candidate.pipeline).map_err(corrupt)?;
            if !self.acquire_lease(&pipeline, worker, lease_for).await? {
                continue;
            }
            if let Some(started) = self.start_job(candidate.id, worker).await? {
                return Ok(Some(started));
            }
            self.release_lease(&pipeline, worker).await?;
        }
        Ok(None)
    }

    /// Moves a queued job to running for `worker`, who holds its pipeline's
    /// lease; `None` when another worker started it first.
    pub async fn start_job(&self, id: Uuid, worker: &str) -> Result<Option<RetrainJob>> {
        let now = to_micros(Utc::now());
        let _writer = self.write_lock().await;
        let claimed = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(JobState::Running.as_str()))
            .col_expr(job::Column::Worker, Expr::value(worker))
            .col_expr(job::Column::StartedAt, Expr::value(now))
            .col_expr(job::Column::HeartbeatAt, Expr::value(now))
            .col_expr(job::Column::Attempts, Expr::col(job::Column::Attempts).add(1))
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::State.eq(JobState::Queued.as_str()))
            .exec(self.write_connection())
            .await?;
        drop(_writer);
        if claimed.rows_affected != 1 {
            return Ok(None);
        }
        self.get_retrain_job(id).await.map(Some)
    }

    /// Renews a running job's heartbeat and its pipeline lease. `false` when
    /// the lease was lost (another worker took over): stop and write nothing.
    pub async fn heartbeat_job(
        &self,
        id: Uuid,
        pipeline: &PipelineName,
        worker: &str,
        lease_for: Duration,
    ) -> Result<bool> {
        let _writer = self.write_lock().await;
        let now = Utc::now();
        let renewed = lease::Entity::update_many()
            .col_expr(lease::Column::ExpiresAt, Expr::value(to_micros(now) + lease_for.as_micros() as i64))
            .filter(lease::Column::Pipeline.eq(pipeline.as_str()))
            .filter(lease::Column::Holder.eq(worker))
            .exec(self.write_connection())
            .await?;
        job::Entity::update_many()
            .col_expr(job::Column::HeartbeatAt, Expr::value(to_micros(now)))
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::Worker.eq(worker))
            .exec(self.write_connection())
            .await?;
        Ok(renewed.rows_affected == 1)
    }

    /// Finishes a job that produced no model (too little data, or a failure).
    pub async fn finish_job_without_model(&self, id: Uuid, state: JobState, message: &str) -> Result<()> {
        let _writer = self.write_lock().await;
        finish_job(self.write_connection(), id, state, None, message).await
    }

    /// Takes the training lease of a pipeline if it is free, expired or ours.
    pub async fn acquire_lease(&self, pipeline: &PipelineName, worker: &str, lease_for: Duration) -> Result<bool> {
        let _writer = self.write_lock().await;
        let now = to_micros(Utc::now());
        let expires_at = now + lease_for.as_micros() as i64;
        let txn = self.begin_write().await?;
        let current = lease::Entity::find_by_id(pipeline.to_string()).one(&txn).await?;
        let acquired = match current {
            None => {
                let row = lease::ActiveModel {
                    pipeline: Set(pipeline.to_string()),
                    holder: Set(worker.to_owned()),
                    expires_at: Set(expires_at),
                };
                match lease::Entity::insert(row).exec_without_returning(&txn).await.map_err(StoreError::from) {
                    Ok(_) => true,
                    // Another worker inserted it first.
                    Err(StoreError::AlreadyExists(_)) => return Ok(false),
                    Err(other) => return Err(other),
                }
            }
            Some(held) if held.holder == worker || held.expires_at < now => {
                // Conditional on what was read, so two takers cannot both win.
                let taken = lease::Entity::update_many()
                    .col_expr(lease::Column::Holder, Expr::value(worker))
                    .col_expr(lease::Column::ExpiresAt, Expr::value(expires_at))
                    .filter(lease::Column::Pipeline.eq(pipeline.as_str()))
                    .filter(lease::Column::Holder.eq(held.holder.as_str()))
                    .filter(lease::Column::ExpiresAt.eq(held.expires_at))
                    .exec(&txn)
                    .await?;
                taken.rows_affected == 1
            }
            Some(_) => false,
        };
        txn.commit().await?;
        Ok(acquired)
    }

    pub async fn release_lease(&self, pipeline: &PipelineName, worker: &str) -> Result<()> {
        let _writer = self.write_lock().await;
        lease::Entity::delete_many()
            .filter(lease::Column::Pipeline.eq(pipeline.as_str()))
            .filter(lease::Column::Holder.eq(worker))
            .exec(self.write_connection())
            .await?;
        Ok(())
    }

    /// A running job is abandoned when its worker no longer holds a live
    /// lease on the job's pipeline: the worker died or lost it.
    async fn requeue_abandoned(&self, max_attempts: i32) -> Result<()> {
        let _writer = self.write_lock().await;
        let now = to_micros(Utc::now());
        let running =
            job::Entity::find().filter(job::Column::State.eq(JobState::Running.as_str())).all(&self.db).await?;
        for stale in running {
            let held = lease::Entity::find_by_id(stale.pipeline.clone()).one(&self.db).await?;
            let alive = held.is_some_and(|held| Some(&held.holder) == stale.worker.as_ref() && held.expires_at >= now);
            if alive {
                continue;
            }
            let (state, message) = if stale.attempts >= max_attempts {
                (JobState::Failed, format!("worker stopped responding {} times; giving up", stale.attempts))
            } else {
                (JobState::Queued, format!("worker {} stopped responding; retrying", stale.worker.unwrap_or_default()))
            };
            job::Entity::update_many()
                .col_expr(job::Column::State, Expr::value(state.as_str()))
                .col_expr(job::Column::Message, Expr::value(message))
                .col_expr(job::Column::FinishedAt, Expr::value((state == JobState::Failed).then_some(now)))
                .filter(job::Column::Id.eq(stale.id))
                .filter(job::Column::State.eq(JobState::Running.as_str()))
                .exec(self.write_connection())
                .await?;
        }
        Ok(())
    }
}

pub(crate) async fn finish_job(
    db: &impl ConnectionTrait,
    id: Uuid,
    state: JobState,
    model_version: Option<i64>,
    message: &str,
) -> Result<()> {
    if !matches!(state, JobState::Succeeded | JobState::Failed) {
        return Err(DomainError::invalid("state", "a job finishes as succeeded or failed").into());
    }
    job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(state.as_str()))
        .col_expr(job::Column::FinishedAt, Expr::value(to_micros(Utc::now())))
        .col_expr(job::Column::ModelVersion, Expr::value(model_version))
        .col_expr(job::Column::Message, Expr::value(message))
        .filter(job::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

fn from_row(row: job::Model) -> Result<RetrainJob> {
    Ok(RetrainJob {
        id: row.id,
        pipeline: PipelineName::parse("pipeline", &row.pipeline).map_err(corrupt)?,
        state: JobState::parse(&row.state)?,
        trigger: Trigger::parse(&row.trigger)?,
        created_at: from_micros(row.created_at),
        started_at: row.started_at.map(from_micros),
        finished_at: row.finished_at.map(from_micros),
        model_version: row.model_version,
        message: row.message,
        attempts: row.attempts,
    })
}
