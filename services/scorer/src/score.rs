//! Rescoring every open opportunity of a pipeline, in batches with bounded
//! memory: read a batch, score it off the async runtime, write it while the
//! next batch is read and scored.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use funnel_domain::{OpportunityId, PipelineName, Status};
use funnel_scoring::{
    BaselineTally, OpportunityHistory, Score, SnapshotPlan, StageBaseline, StageInfo, TrainedModel,
    activities_needed_since, baseline_only_score, build_examples,
};
use funnel_store::{ActivitySpan, LeadScoreRecord, ScoreFactor, Store};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::convert;
use crate::error::{Result, ScorerError};
use crate::pages::HistoryPages;

/// Score writes at once: PostgreSQL works on one while it parses the other.
const WRITES_IN_FLIGHT: usize = 2;

/// Quantile of days-to-advance that marks a stage's rot point, as in training.
const ROT_QUANTILE: f64 = 0.9;

/// What a scoring run did.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreReport {
    pub pipeline: PipelineName,
    /// 0 when no model was active and stage baselines scored.
    pub model_version: i64,
    pub scored: u64,
    pub flagged: u64,
    /// Opportunities whose history could not be scored (logged).
    pub failed: u64,
    pub seconds: f64,
}

/// What scores a pipeline: its active model, or stage baselines at cold start.
enum Scorer {
    Model { version: i64, model: Arc<TrainedModel> },
    Baseline(Arc<StageBaseline>),
}

/// Rescores every open opportunity of `pipeline` as of `now`.
pub async fn score_pipeline(
    store: &Store,
    pipeline: &PipelineName,
    batch_size: u64,
    now: DateTime<Utc>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ScoreReport> {
    let started = Instant::now();
    let stages = Arc::new(convert::stages(&store.get_pipeline(pipeline).await?.def));
    let scorer = match store.active_model(pipeline).await? {
        Some(record) => {
            Scorer::Model { version: record.version, model: Arc::new(TrainedModel::from_json(&record.body)?) }
        }
        None => Scorer::Baseline(Arc::new(cold_start_baseline(store, pipeline, &stages, batch_size, now).await?)),
    };
    let model_version = match &scorer {
        Scorer::Model { version, .. } => *version,
        Scorer::Baseline(_) => 0,
    };
    let mut report =
        ScoreReport { pipeline: pipeline.clone(), model_version, scored: 0, flagged: 0, failed: 0, seconds: 0.0 };
    // Four batches in flight at most: the next one is read while this one
    // is scored, and the two before are written meanwhile.
    let mut reading = Some(read_open_batch(store, pipeline, None, batch_size, now));
    let mut writing: VecDeque<JoinHandle<funnel_store::Result<()>>> = VecDeque::new();
    while let Some(read) = reading.take() {
        let batch = read.await.map_err(|error| ScorerError::Task(error.to_string()))??;
        let Some(last) = batch.last() else { break };
        let full_batch = batch.len() as u64 == batch_size;
        if full_batch {
            reading = Some(read_open_batch(store, pipeline, Some(last.opportunity.id), batch_size, now));
        }
        let records = score_batch(&scorer, &stages, batch, now).await?;
        for record in &records {
            match record {
                Ok(score) if score.leak_flag => report.flagged += 1,
                Ok(_) => {}
                Err(()) => report.failed += 1,
            }
        }
        let records: Vec<LeadScoreRecord> = records.into_iter().flatten().collect();
        report.scored += records.len() as u64;
        if writing.len() == WRITES_IN_FLIGHT
            && let Some(oldest) = writing.pop_front()
        {
            finish_write(oldest).await?;
        }
        let writer = store.clone();
        writing.push_back(tokio::spawn(async move { writer.write_scores(&records).await }));
        progress(report.scored + report.failed);
    }
    for write in writing {
        finish_write(write).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads the open opportunities after `after`, with only the activities a
/// score at `now` looks at, in a task of its own so that it runs while the
/// caller scores the batch before.
fn read_open_batch(
    store: &Store,
    pipeline: &PipelineName,
    after: Option<OpportunityId>,
    batch_size: u64,
    now: DateTime<Utc>,
) -> JoinHandle<funnel_store::Result<Vec<funnel_store::OpportunityHistory>>> {
    let (store, pipeline) = (store.clone(), pipeline.clone());
    let span = ActivitySpan::Since(activities_needed_since(now));
    tokio::spawn(async move { store.history_batch(&pipeline, Some(Status::Open), after, batch_size, span).await })
}

/// Waits for a batch's write.
async fn finish_write(writing: JoinHandle<funnel_store::Result<()>>) -> Result<()> {
    writing.await.map_err(|error| ScorerError::Task(error.to_string()))??;
    Ok(())
}

async fn score_batch(
    scorer: &Scorer,
    stages: &Arc<Vec<StageInfo>>,
    batch: Vec<funnel_store::OpportunityHistory>,
    now: DateTime<Utc>,
) -> Result<Vec<Result<LeadScoreRecord, ()>>> {
    let (model, baseline) = match scorer {
        Scorer::Model { version, model } => (Some((*version, model.clone())), None),
        Scorer::Baseline(baseline) => (None, Some(baseline.clone())),
    };
    let stages = stages.clone();
    let work = move || {
        let mut records = Vec::with_capacity(batch.len());
        for stored in batch {
            let opportunity = stored.opportunity.clone();
            let history = convert::history(stored);
            let scored = match (&model, &baseline) {
                (Some((_, model)), _) => funnel_scoring::score(model, &history, &stages, now),
                (None, Some(baseline)) => baseline_only_score(baseline, &history, &stages, now),
                (None, None) => continue,
            };
            let version = model.as_ref().map(|(version, _)| *version).unwrap_or(0);
            records.push(match scored {
                Ok(score) => Ok(record(&opportunity, version, score, now)),
                Err(error) => {
                    warn!(opportunity = %opportunity.id, %error, "could not score");
                    Err(())
                }
            });
        }
        records
    };
    tokio::task::spawn_blocking(work).await.map_err(|error| ScorerError::Task(error.to_string()))
}

fn record(
    opportunity: &funnel_store::Opportunity,
    model_version: i64,
    score: Score,
    now: DateTime<Utc>,
) -> LeadScoreRecord {
    let factor = |factor: funnel_scoring::Factor| ScoreFactor {
        feature: factor.feature,
        value: factor.value,
        contribution: factor.contribution,
    };
    LeadScoreRecord {
        opportunity_id: opportunity.id,
        pipeline: opportunity.pipeline.to_string(),
        stage: score.stage,
        owner: opportunity.owner.clone(),
        title: opportunity.title.clone(),
        model_version,
        p_advance: score.p_advance,
        p_win: score.p_win_estimate,
        leak_flag: score.leak_flag,
        reason_codes: score
            .reasons
            .iter()
            .map(|reason| {
                serde_json::to_value(reason)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect(),
        factors_down: score.factors_down.into_iter().map(factor).collect(),
        factors_up: score.factors_up.into_iter().map(factor).collect(),
        days_in_stage: score.days_in_stage,
        scored_at: now,
    }
}

/// Stage advance rates from all history, for scoring before any model exists.
async fn cold_start_baseline(
    store: &Store,
    pipeline: &PipelineName,
    stages: &Arc<Vec<StageInfo>>,
    batch_size: u64,
    now: DateTime<Utc>,
) -> Result<StageBaseline> {
    // Only visit entries count toward stage rates; one snapshot per visit is enough.
    let plan = SnapshotPlan { every_days: 7, max_per_visit: 1 };
    // A batch of histories at a time: the tally keeps a number per visit,
    // not the histories (issue 7: 3.9 GB for 100,000 opportunities before).
    let mut tally = BaselineTally::default();
    let mut pages = HistoryPages::new(store, pipeline, None, batch_size);
    while let Some(batch) = pages.next().await? {
        let batch_stages = stages.clone();
        let work = move || -> Result<BaselineTally> {
            let histories: Vec<OpportunityHistory> = batch.into_iter().map(convert::history).collect();
            let examples = build_examples(&histories, &batch_stages, plan, now)?;
            tally.add(&examples);
            Ok(tally)
        };
        tally = tokio::task::spawn_blocking(work).await.map_err(|error| ScorerError::Task(error.to_string()))??;
    }
    Ok(tally.finish(stages, ROT_QUANTILE)?)
}
