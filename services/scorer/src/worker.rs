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

/// Pruning statements per tick: a backlog (retention first switched on over
/// a long history) goes a slice per tick, between rescorings, instead of
/// holding them up until all of it is deleted.
const PRUNE_STATEMENTS_PER_TICK: u32 = 10;

/// After a failed prune, the next try: not at every poll.
const PRUNE_RETRY: chrono::Duration = chrono::Duration::hours(1);

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
    let mut next_prune = Utc::now();
    info!(worker = %config.train.worker, next_training = ?next_training, "scorer running");
    loop {
        if let Err(error) = tick(&store, &config, &mut next_training, &mut clocks).await {
            metrics::record_tick_failure();
            warn!(%error, "scorer tick failed; retrying");
        }
        if config.score_history_days > 0 && next_prune <= Utc::now() {
            next_prune = prune(&store, &config).await;
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

/// Deletes a slice of the score history older than `score_history_days`;
/// returns when to prune next.
async fn prune(store: &Store, config: &WorkerConfig) -> DateTime<Utc> {
    let now = Utc::now();
    let before = now - chrono::Duration::days(i64::from(config.score_history_days));
    let pruned = store.prune_score_history(before, PRUNE_BATCH, PRUNE_STATEMENTS_PER_TICK).await;
    match &pruned {
        Ok(pruned) if pruned.finished => info!(deleted = pruned.deleted, %before, "pruned the score history"),
        Ok(pruned) => info!(deleted = pruned.deleted, %before, "pruning the score history; more at the next tick"),
        Err(error) => warn!(%error, "pruning the score history failed; retrying in an hour"),
    }
    next_prune_after(now, pruned.map(|pruned| pruned.finished))
}

/// Once a day when a prune finished; at the next tick when it stopped with
/// old rows left; an hour on after a failure.
fn next_prune_after(now: DateTime<Utc>, finished: Result<bool, funnel_store::StoreError>) -> DateTime<Utc> {
    match finished {
        Ok(true) => now + chrono::Duration::days(1),
        Ok(false) => now,
        Err(_) => now + PRUNE_RETRY,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_is_daily_goes_on_while_rows_are_left_and_backs_off_after_a_failure() {
        let now = Utc::now();
        assert_eq!(next_prune_after(now, Ok(true)), now + chrono::Duration::days(1));
        assert_eq!(next_prune_after(now, Ok(false)), now, "a backlog goes on at the next tick");
        let failed = Err(funnel_store::StoreError::Internal("disk full".to_owned()));
        assert_eq!(next_prune_after(now, failed), now + chrono::Duration::hours(1));
    }
}
