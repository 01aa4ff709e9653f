//! One training run: read the pipeline's history through the store, train
//! off the async runtime, gate, and register the model with its job in one
//! transaction. The pipeline's lease is held (and renewed) throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use funnel_domain::{PipelineName, Status};
use funnel_scoring::{
    ExampleCollector, OpportunityHistory, StageInfo, TrainParams, TrainedModel, TrainingOutcome, train_on_collected,
};
use funnel_store::{JobState, ModelRecord, NewModel, RetrainJob, Store, Trigger};
use tracing::{info, warn};

use crate::convert;
use crate::error::{Result, ScorerError};
use crate::gate::{self, Verdict};
use crate::pages::HistoryPages;

/// How a worker trains.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub params: TrainParams,
    /// How much worse than the active model's AUC a new model may be and
    /// still replace it (default 0.01).
    pub auc_tolerance: f64,
    /// This worker's name in leases and jobs.
    pub worker: String,
    /// How long a lease lasts without renewal (default 60 s).
    pub lease: Duration,
    /// Opportunities read per query (default 2,000).
    pub batch_size: u64,
    /// Times a job is retried after its worker died (default 3).
    pub max_attempts: i32,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            params: TrainParams::default(),
            auc_tolerance: 0.01,
            worker: format!("scorer-{}", std::process::id()),
            lease: Duration::from_secs(60),
            batch_size: 2_000,
            max_attempts: 3,
        }
    }
}

/// What a training run did.
#[derive(Debug, Clone)]
pub enum TrainOutcome {
    Registered { model: ModelRecord, trained: Box<TrainedModel>, verdict: Verdict },
    InsufficientData { advanced: usize, leaked: usize, message: String },
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub pipeline: PipelineName,
    pub job: RetrainJob,
    pub opportunities: usize,
    /// Examples the histories gave; the model learnt from at most
    /// `max_examples` of them, a uniform sample.
    pub examples_seen: u64,
    pub seconds: f64,
    pub outcome: TrainOutcome,
}

/// Where a training run is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainProgress {
    /// Opportunities read and cut into examples so far.
    Reading { read: u64 },
    /// Every history is read; fitting on this many examples.
    Fitting { examples: u64 },
}

/// Reads every opportunity of a pipeline (optionally of one status) with its
/// history, in batches; `progress` is told how many were read so far.
pub async fn load_histories(
    store: &Store,
    pipeline: &PipelineName,
    status: Option<Status>,
    batch_size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<OpportunityHistory>> {
    let mut histories = Vec::new();
    let mut pages = HistoryPages::new(store, pipeline, status, batch_size);
    while let Some(batch) = pages.next().await? {
        histories.extend(batch.into_iter().map(convert::history));
        progress(histories.len() as u64);
    }
    Ok(histories)
}

/// Cuts every history of a pipeline into training examples as of `now`, a
/// batch at a time, so that only the examples stay in memory. Also returns
/// how many opportunities were read and when the oldest was created.
async fn collect_examples(
    store: &Store,
    pipeline: &PipelineName,
    stages: &[StageInfo],
    settings: &TrainSettings,
    now: DateTime<Utc>,
    progress: &(dyn Fn(TrainProgress) + Sync),
) -> Result<(ExampleCollector, usize, DateTime<Utc>)> {
    let mut collector = ExampleCollector::new(stages, &settings.params, now)?;
    let (mut opportunities, mut window_start) = (0, None::<DateTime<Utc>>);
    let mut pages = HistoryPages::new(store, pipeline, None, settings.batch_size);
    while let Some(batch) = pages.next().await? {
        opportunities += batch.len();
        if let Some(oldest) = batch.iter().map(|stored| stored.opportunity.state.created_at).min() {
            window_start = Some(window_start.map_or(oldest, |start| start.min(oldest)));
        }
        // CPU work per batch: off the runtime, which may be serving gRPC (dev mode).
        let (returned, added) = tokio::task::spawn_blocking(move || {
            let histories: Vec<OpportunityHistory> = batch.into_iter().map(convert::history).collect();
            let added = collector.add(&histories);
            (collector, added)
        })
        .await
        .map_err(|error| ScorerError::Task(error.to_string()))?;
        collector = returned;
        added?;
        progress(TrainProgress::Reading { read: opportunities as u64 });
    }
    Ok((collector, opportunities, window_start.unwrap_or(now)))
}

/// Queues and runs a training job for `pipeline` now, on this worker.
pub async fn train_now(
    store: &Store,
    pipeline: &PipelineName,
    trigger: Trigger,
    settings: &TrainSettings,
) -> Result<TrainReport> {
    train_now_with_progress(store, pipeline, trigger, settings, &|_| {}).await
}

/// [`train_now`], telling `progress` how far it got.
pub async fn train_now_with_progress(
    store: &Store,
    pipeline: &PipelineName,
    trigger: Trigger,
    settings: &TrainSettings,
    progress: &(dyn Fn(TrainProgress) + Sync),
) -> Result<TrainReport> {
    if !store.acquire_lease(pipeline, &settings.worker, settings.lease).await? {
        return Err(ScorerError::Busy(pipeline.to_string()));
    }
    let job = store.queue_retrain(pipeline, trigger, None).await?;
    let Some(job) = store.start_job(job.id, &settings.worker).await? else {
        store.release_lease(pipeline, &settings.worker).await?;
        return Err(ScorerError::Busy(pipeline.to_string()));
    };
    run_claimed(store, job, settings, progress).await
}

/// Runs a job this worker has claimed (and whose lease it holds), then
/// releases the lease whatever happened.
pub async fn run_job(store: &Store, job: RetrainJob, settings: &TrainSettings) -> Result<TrainReport> {
    run_claimed(store, job, settings, &|_| {}).await
}

async fn run_claimed(
    store: &Store,
    job: RetrainJob,
    settings: &TrainSettings,
    progress: &(dyn Fn(TrainProgress) + Sync),
) -> Result<TrainReport> {
    let pipeline = job.pipeline.clone();
    let result = train_job(store, &job, settings, progress).await;
    if let Err(error) = &result
        && !matches!(error, ScorerError::LeaseLost(_))
    {
        warn!(job = %job.id, %error, "training failed");
        store.finish_job_without_model(job.id, JobState::Failed, &error.to_string()).await?;
    }
    store.release_lease(&pipeline, &settings.worker).await?;
    result
}

async fn train_job(
    store: &Store,
    job: &RetrainJob,
    settings: &TrainSettings,
    progress: &(dyn Fn(TrainProgress) + Sync),
) -> Result<TrainReport> {
    let started = Instant::now();
    let pipeline = store.get_pipeline(&job.pipeline).await?;
    let stages = convert::stages(&pipeline.def);
    info!(job = %job.id, pipeline = %job.pipeline, "training started");

    let lease_lost = Arc::new(AtomicBool::new(false));
    let heartbeat =
        AbortOnDrop(tokio::spawn(keep_lease(store.clone(), job.clone(), settings.clone(), lease_lost.clone())));
    let now = Utc::now();
    let collected = collect_examples(store, &job.pipeline, &stages, settings, now, progress).await;
    let (examples, opportunities, window_start) = match collected {
        Ok(collected) => collected,
        Err(error) => {
            drop(heartbeat);
            return Err(error);
        }
    };
    let examples_seen = examples.seen();
    if examples_seen > examples.len() as u64 {
        info!(seen = examples_seen, kept = examples.len(), "training on a uniform sample of the examples");
    }
    progress(TrainProgress::Fitting { examples: examples.len() as u64 });
    let params = settings.params.clone();
    // CPU-bound: keep it off the async runtime.
    let training = tokio::task::spawn_blocking(move || train_on_collected(examples, &stages, &params, now)).await;
    drop(heartbeat);
    if lease_lost.load(Ordering::SeqCst) {
        return Err(ScorerError::LeaseLost(job.pipeline.to_string()));
    }
    let outcome = training.map_err(|error| ScorerError::Task(error.to_string()))??;
    let seconds = started.elapsed().as_secs_f64();
    let outcome = match outcome {
        TrainingOutcome::Trained(trained) => {
            let model_auc = trained.evaluation.as_ref().and_then(|evaluation| evaluation.model.roc_auc);
            let baseline_auc = trained.evaluation.as_ref().and_then(|evaluation| evaluation.baseline.roc_auc);
            let active = store.active_model(&job.pipeline).await?.map(|model| (model.version, model.roc_auc));
            let verdict = gate::decide(model_auc, baseline_auc, active, settings.auc_tolerance);
            let new = NewModel {
                pipeline: job.pipeline.clone(),
                trigger: job.trigger,
                window_start,
                window_end: now,
                advanced_examples: trained.counts.advanced as i64,
                leaked_examples: trained.counts.leaked as i64,
                roc_auc: model_auc,
                baseline_roc_auc: baseline_auc,
                training_seconds: seconds,
                body: trained.to_json()?,
                activate: verdict.activate,
                status_reason: verdict.reason.clone(),
            };
            let model = store.register_model(new, Some(job.id)).await?;
            info!(version = model.version, active = verdict.activate, reason = %verdict.reason, "model registered");
            TrainOutcome::Registered { model, trained: Box::new(trained), verdict }
        }
        TrainingOutcome::InsufficientData { counts, .. } => {
            let message = format!(
                "insufficient data: {} advanced and {} leaked examples, below the minimum per class; \
                 scoring uses stage baselines",
                counts.advanced, counts.leaked
            );
            store.finish_job_without_model(job.id, JobState::Succeeded, &message).await?;
            info!(%message, "no model trained");
            TrainOutcome::InsufficientData { advanced: counts.advanced, leaked: counts.leaked, message }
        }
    };
    let job = store.get_retrain_job(job.id).await?;
    Ok(TrainReport { pipeline: job.pipeline.clone(), job, opportunities, examples_seen, seconds, outcome })
}

/// Stops the lease renewal when a run ends however it ends: a run that is
/// cancelled (its future dropped) must not keep its lease alive forever, or
/// no worker could ever take the pipeline over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every third of its length; flags when it was lost.
async fn keep_lease(store: Store, job: RetrainJob, settings: TrainSettings, lost: Arc<AtomicBool>) {
    let every = settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match store.heartbeat_job(job.id, &job.pipeline, &settings.worker, settings.lease).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A passing database error: the next beat may succeed before the lease runs out.
            Err(error) => warn!(%error, "lease renewal failed"),
        }
    }
}
