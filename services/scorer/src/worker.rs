//! The daemon: claims queued retraining jobs, queues its own on a cron
//! schedule and when enough new outcomes arrived, and rescores every few
//! minutes and soon after opportunities change.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use funnel_domain::{PipelineName, limits::MAX_PAGE_SIZE};
use funnel_store::{Store, Trigger};
use tracing::{info, warn};

use crate::error::Result;
use crate::metrics;
use crate::score::score_pipeline;
use crate::train::{TrainSettings, run_job};

/// What the daemon does when.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub train: TrainSettings,
    /// When to retrain every pipeline (default daily at 03:00 UTC).
    pub train_schedule: cron::Schedule,
    /// Rescore at least this often (default 5 minutes).
    pub score_every: Duration,
    /// Queue a retrain once this many new outcomes arrived (default 500; 0 = never).
    pub retrain_after_outcomes: u64,
    /// How often to look for jobs and changes (default 5 s).
    pub poll_every: Duration,
    /// Days of score history kept; older rows are deleted once a day
    /// (default 365; 0 keeps everything).
    pub score_history_days: u32,
}

/// History rows deleted per statement when pruning.
const PRUNE_BATCH: u64 = 10_000;

#[derive(Default)]
struct PipelineClock {
    last_scored: Option<DateTime<Utc>>,
    scored_change: Option<DateTime<Utc>>,
    outcomes_since: Option<DateTime<Utc>>,
}

/// Runs until `shutdown` resolves; a run in progress finishes first.
pub async fn run(store: Store, config: WorkerConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    tokio::pin!(shutdown);
    let mut next_training = config.train_schedule.upcoming(Utc).next();
    let mut clocks: HashMap<PipelineName, PipelineClock> = HashMap::new();
    let mut last_pruned = None;
    info!(worker = %config.train.worker, next_training = ?next_training, "scorer running");
    loop {
        if let Err(error) = tick(&store, &config, &mut next_training, &mut clocks).await {
            metrics::record_tick_failure();
            warn!(%error, "scorer tick failed; retrying");
        }
        if let Err(error) = prune_daily(&store, &config, &mut last_pruned).await {
            warn!(%error, "pruning the score history failed; retrying at the next tick");
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(config.poll_every) => {}
        }
    }
    info!("scorer stopped");
    Ok(())
}

async fn tick(
    store: &Store,
    config: &WorkerConfig,
    next_training: &mut Option<DateTime<Utc>>,
    clocks: &mut HashMap<PipelineName, PipelineClock>,
) -> Result<()> {
    let now = Utc::now();
    let pipelines = all_pipelines(store).await?;
    metrics::record_queued_jobs(store.queued_jobs().await?);
    if next_training.is_some_and(|due| due <= now) {
        for pipeline in &pipelines {
            store.queue_retrain(pipeline, Trigger::Schedule, None).await?;
        }
        *next_training = config.train_schedule.after(&now).next();
    }
    if config.retrain_after_outcomes > 0 {
        for pipeline in &pipelines {
            let clock = clocks.entry(pipeline.clone()).or_default();
            let since = *clock.outcomes_since.get_or_insert(now);
            if store.outcomes_since(pipeline, since).await? >= config.retrain_after_outcomes {
                info!(%pipeline, "enough new outcomes; queueing a retrain");
                store.queue_retrain(pipeline, Trigger::Event, None).await?;
                clock.outcomes_since = Some(now);
            }
        }
    }
    while let Some(job) =
        store.claim_retrain_job(&config.train.worker, config.train.lease, config.train.max_attempts).await?
    {
        let pipeline = job.pipeline.clone();
        let result = run_job(store, job, &config.train).await;
        metrics::record_training(&pipeline, &result);
        result?;
        // A new model changes every score of its pipeline.
        clocks.entry(pipeline).or_default().last_scored = None;
    }
    for pipeline in &pipelines {
        let clock = clocks.entry(pipeline.clone()).or_default();
        let last_change = store.last_change(pipeline).await?;
        let due = clock
            .last_scored
            .is_none_or(|at| now - at >= chrono::Duration::from_std(config.score_every).unwrap_or_default());
        let changed = last_change.is_some() && last_change != clock.scored_change;
        if due || changed {
            let report = score_pipeline(store, pipeline, config.train.batch_size, now, &|_| {}).await?;
            info!(%pipeline, scored = report.scored, flagged = report.flagged, model = report.model_version, "rescored");
            metrics::record_scoring(&report);
            metrics::record_active_model(pipeline, store.active_model(pipeline).await?.as_ref());
            clock.last_scored = Some(now);
            clock.scored_change = last_change;
        }
    }
    Ok(())
}

/// Deletes score history older than `score_history_days`, once a day.
async fn prune_daily(store: &Store, config: &WorkerConfig, last_pruned: &mut Option<DateTime<Utc>>) -> Result<()> {
    let now = Utc::now();
    if config.score_history_days == 0 || last_pruned.is_some_and(|at| now - at < chrono::Duration::days(1)) {
        return Ok(());
    }
    let before = now - chrono::Duration::days(i64::from(config.score_history_days));
    let deleted = store.prune_score_history(before, PRUNE_BATCH).await?;
    info!(deleted, %before, "pruned the score history");
    *last_pruned = Some(now);
    Ok(())
}

/// Every pipeline's name, through all pages.
pub async fn all_pipelines(store: &Store) -> Result<Vec<PipelineName>> {
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = store.list_pipelines(MAX_PAGE_SIZE, &token).await?;
        names.extend(page.items.into_iter().map(|pipeline| pipeline.def.name));
        if page.next_page_token.is_empty() {
            return Ok(names);
        }
        token = page.next_page_token;
    }
}
