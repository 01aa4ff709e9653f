//! `funnel.v1.ScoringService`: serves what the scorer wrote (scores, models,
//! jobs) and lets ops queue retraining and activate models.

use funnel_domain::limits;
use funnel_proto::v1::{self as pb, scoring_service_server::ScoringService};
use funnel_scoring::TrainedModel;
use funnel_store::{JobState, LeadScoreRecord, ModelRecord, ModelStatus, RetrainJob, ScoreFilter, Store, Trigger};
use tonic::{Request, Response, Status};

use crate::auth::{OwnerFilter, Scope};
use crate::convert::{self as c, timestamp};
use crate::error::{invalid_argument, store_status};

pub struct ScoringApi {
    store: Store,
}

impl ScoringApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn probability(field: &str, value: Option<f64>) -> Result<Option<f64>, Status> {
    match value {
        Some(p) if !(0.0..=1.0).contains(&p) => Err(invalid_argument(field, "must be between 0 and 1")),
        other => Ok(other),
    }
}

fn job_id(value: &str) -> Result<uuid::Uuid, Status> {
    uuid::Uuid::parse_str(value).map_err(|_| invalid_argument("id", &format!("{value:?} is not a UUID")))
}

fn version(value: i64) -> Result<i64, Status> {
    if value <= 0 { Err(invalid_argument("version", "must be a positive model version")) } else { Ok(value) }
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    async fn get_lead_score(&self, request: Request<pb::GetLeadScoreRequest>) -> Reply<pb::LeadScore> {
        let scope = Scope::of(&request);
        let pb::GetLeadScoreRequest { opportunity_id, as_of } = request.into_inner();
        let id = c::opportunity_id("opportunity_id", &opportunity_id)?;
        let as_of = c::optional_time("as_of", as_of.as_ref())?;
        // Hidden exactly as the store reports a missing score.
        let hidden_as = if as_of.is_some() { "score as of that time for opportunity" } else { "score for opportunity" };
        scope.ensure_visible(&self.store, id, hidden_as).await?;
        let score = self.store.lead_score(id, as_of).await.map_err(store_status)?;
        Ok(Response::new(score_to_pb(score)))
    }

    async fn list_lead_scores(&self, request: Request<pb::ListLeadScoresRequest>) -> Reply<pb::ListLeadScoresResponse> {
        let scope = Scope::of(&request);
        let pb::ListLeadScoresRequest {
            pipeline,
            owner,
            stage,
            flagged_only,
            min_probability,
            max_probability,
            page_size,
            page_token,
        } = request.into_inner();
        let mut filter = ScoreFilter {
            pipeline: (!pipeline.is_empty())
                .then(|| c::pipeline_name("pipeline", &pipeline).map(|name| name.to_string()))
                .transpose()?,
            owner: (!owner.is_empty()).then(|| c::text("owner", owner, limits::MAX_SHORT_TEXT)).transpose()?,
            stage: c::optional_stage("stage", &stage)?.map(|stage| stage.to_string()),
            flagged_only,
            min_probability: probability("min_probability", min_probability)?,
            max_probability: probability("max_probability", max_probability)?,
        };
        let page_size = c::page_size(page_size)?;
        let OwnerFilter::Owner(owner) = scope.owner_filter(filter.owner.take()) else {
            return Ok(Response::new(pb::ListLeadScoresResponse::default()));
        };
        filter.owner = owner;
        let page = self.store.list_scores(&filter, page_size, &page_token).await.map_err(store_status)?;
        let scores = page.items.into_iter().map(score_to_pb).collect();
        Ok(Response::new(pb::ListLeadScoresResponse { scores, next_page_token: page.next_page_token }))
    }

    async fn list_models(&self, request: Request<pb::ListModelsRequest>) -> Reply<pb::ListModelsResponse> {
        let pb::ListModelsRequest { pipeline, page_size, page_token } = request.into_inner();
        let pipeline = (!pipeline.is_empty()).then(|| c::pipeline_name("pipeline", &pipeline)).transpose()?;
        let page = self
            .store
            .list_models(pipeline.as_ref(), c::page_size(page_size)?, &page_token)
            .await
            .map_err(store_status)?;
        // Listing skips coefficients and calibration; GetModel has them.
        let models = page.items.into_iter().map(|model| model_to_pb(model, false)).collect();
        Ok(Response::new(pb::ListModelsResponse { models, next_page_token: page.next_page_token }))
    }

    async fn get_model(&self, request: Request<pb::GetModelRequest>) -> Reply<pb::Model> {
        let pb::GetModelRequest { version: requested } = request.into_inner();
        let model = self.store.get_model(version(requested)?).await.map_err(store_status)?;
        Ok(Response::new(model_to_pb(model, true)))
    }

    async fn trigger_retrain(&self, request: Request<pb::TriggerRetrainRequest>) -> Reply<pb::RetrainJob> {
        let pb::TriggerRetrainRequest { pipeline, request_id } = request.into_inner();
        let pipeline = if pipeline.is_empty() { "sales".to_owned() } else { pipeline };
        let pipeline = c::pipeline_name("pipeline", &pipeline)?;
        let request_id = c::optional_id_text("request_id", request_id)?;
        let job = self.store.queue_retrain(&pipeline, Trigger::Manual, request_id).await.map_err(store_status)?;
        Ok(Response::new(job_to_pb(job)))
    }

    async fn get_retrain_job(&self, request: Request<pb::GetRetrainJobRequest>) -> Reply<pb::RetrainJob> {
        let pb::GetRetrainJobRequest { id } = request.into_inner();
        let job = self.store.get_retrain_job(job_id(&id)?).await.map_err(store_status)?;
        Ok(Response::new(job_to_pb(job)))
    }

    async fn activate_model(&self, request: Request<pb::ActivateModelRequest>) -> Reply<pb::Model> {
        let pb::ActivateModelRequest { version: requested } = request.into_inner();
        let model =
            self.store.activate_model(version(requested)?, "activated through the API").await.map_err(store_status)?;
        Ok(Response::new(model_to_pb(model, true)))
    }
}

fn score_to_pb(score: LeadScoreRecord) -> pb::LeadScore {
    let factor = |factor: funnel_store::ScoreFactor| pb::ScoreFactor {
        feature: factor.feature,
        value: factor.value,
        contribution: factor.contribution,
    };
    pb::LeadScore {
        opportunity_id: score.opportunity_id.to_string(),
        pipeline: score.pipeline,
        stage: score.stage,
        owner: score.owner,
        title: score.title,
        model_version: score.model_version,
        p_advance: score.p_advance,
        p_win_estimate: score.p_win,
        leak_flag: score.leak_flag,
        reason_codes: score.reason_codes,
        factors_down: score.factors_down.into_iter().map(factor).collect(),
        factors_up: score.factors_up.into_iter().map(factor).collect(),
        scored_at: Some(timestamp(score.scored_at)),
        days_in_stage: score.days_in_stage,
    }
}

fn trigger_to_pb(trigger: Trigger) -> pb::RetrainTrigger {
    match trigger {
        Trigger::Schedule => pb::RetrainTrigger::Schedule,
        Trigger::Manual => pb::RetrainTrigger::Manual,
        Trigger::Event => pb::RetrainTrigger::Event,
    }
}

fn job_to_pb(job: RetrainJob) -> pb::RetrainJob {
    let state = match job.state {
        JobState::Queued => pb::RetrainJobState::Queued,
        JobState::Running => pb::RetrainJobState::Running,
        JobState::Succeeded => pb::RetrainJobState::Succeeded,
        JobState::Failed => pb::RetrainJobState::Failed,
    };
    pb::RetrainJob {
        id: job.id.to_string(),
        pipeline: job.pipeline.to_string(),
        state: state as i32,
        trigger: trigger_to_pb(job.trigger) as i32,
        created_at: Some(timestamp(job.created_at)),
        started_at: job.started_at.map(timestamp),
        finished_at: job.finished_at.map(timestamp),
        model_version: job.model_version.unwrap_or_default(),
        message: job.message,
        attempts: job.attempts,
    }
}

fn metrics_to_pb(metrics: &funnel_scoring::Metrics, with_calibration: bool) -> pb::ModelMetrics {
    let calibration = if with_calibration {
        metrics
            .calibration
            .iter()
            .map(|bin| pb::CalibrationBin {
                lower: bin.bin as f64 / 10.0,
                upper: (bin.bin + 1) as f64 / 10.0,
                mean_predicted: bin.mean_predicted.unwrap_or(f64::NAN),
                observed_rate: bin.observed_rate.unwrap_or(f64::NAN),
                count: bin.count as i64,
            })
            .collect()
    } else {
        Vec::new()
    };
    pb::ModelMetrics {
        roc_auc: metrics.roc_auc.unwrap_or(f64::NAN),
        pr_auc: metrics.pr_auc.unwrap_or(f64::NAN),
        log_loss: metrics.log_loss,
        brier: metrics.brier,
        calibration,
        examples: metrics.count as i64,
    }
}

fn model_to_pb(model: ModelRecord, detailed: bool) -> pb::Model {
    let status = match model.status {
        ModelStatus::Candidate => pb::ModelStatus::Candidate,
        ModelStatus::Active => pb::ModelStatus::Active,
        ModelStatus::Retired => pb::ModelStatus::Retired,
    };
    // The body is the scorer's own serialization; a body this build cannot
    // read still lists with the registry's columns.
    let trained = TrainedModel::from_json(&model.body).ok();
    let evaluation = trained.as_ref().and_then(|trained| trained.evaluation.as_ref());
    let coefficients = match (&trained, detailed) {
        (Some(trained), true) => trained
            .coefficients
            .iter()
            .map(|coefficient| pb::Coefficient { feature: coefficient.column.clone(), weight: coefficient.weight })
            .collect(),
        _ => Vec::new(),
    };
    pb::Model {
        version: model.version,
        pipeline: model.pipeline.to_string(),
        status: status as i32,
        status_reason: model.status_reason,
        trigger: trigger_to_pb(model.trigger) as i32,
        created_at: Some(timestamp(model.created_at)),
        activated_at: model.activated_at.map(timestamp),
        window_start: Some(timestamp(model.window_start)),
        window_end: Some(timestamp(model.window_end)),
        advanced_examples: model.advanced_examples,
        leaked_examples: model.leaked_examples,
        metrics: evaluation.map(|evaluation| metrics_to_pb(&evaluation.model, detailed)),
        baseline_metrics: evaluation.map(|evaluation| metrics_to_pb(&evaluation.baseline, detailed)),
        coefficients,
        intercept: trained.as_ref().map(|trained| trained.intercept).unwrap_or_default(),
        alpha: trained.as_ref().map(|trained| trained.alpha).unwrap_or_default(),
        converged: trained.as_ref().is_some_and(|trained| trained.converged),
        iterations: trained.as_ref().map(|trained| trained.iterations as i64).unwrap_or_default(),
        leak_threshold: trained.as_ref().map(|trained| trained.leak_threshold.threshold).unwrap_or_default(),
        training_seconds: model.training_seconds,
        examples_seen: trained
            .as_ref()
            .map(|trained| i64::try_from(trained.examples_seen).unwrap_or(i64::MAX))
            .unwrap_or_default(),
    }
}
