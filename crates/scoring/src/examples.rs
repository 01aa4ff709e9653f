//! Labelled training examples taken from stage visits, with every feature
//! computed as it was at the snapshot time (no look-ahead).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::history::{OpportunityHistory, Pipeline, StageInfo, Status, Visit, VisitOutcome, days_between, visits};

/// Categorical feature: the stage key.
pub const STAGE: &str = "stage";
/// Categorical feature: the lead source.
pub const SOURCE: &str = "source";
/// Categorical feature: the owner.
pub const OWNER: &str = "owner";
/// Numeric feature: days since entering the current stage.
pub const DAYS_IN_STAGE: &str = "days_in_stage";
/// Numeric feature: days since the opportunity was created.
pub const AGE_DAYS: &str = "age_days";
/// Numeric feature: `ln(1 + amount_minor)`, negative amounts as 0.
pub const LOG_AMOUNT: &str = "log1p_amount";
/// Numeric feature: activities in the 7 days up to the snapshot.
pub const ACTIVITIES_7D: &str = "activities_7d";
/// Numeric feature: activities in the 30 days up to the snapshot.
pub const ACTIVITIES_30D: &str = "activities_30d";
/// Numeric feature: days since the last activity; missing when none.
pub const DAYS_SINCE_ACTIVITY: &str = "days_since_activity";
/// Numeric feature: stage changes before the current visit.
pub const MOVES_BEFORE: &str = "moves_before";
/// Numeric feature: backward stage changes before the current visit.
pub const BACKWARD_MOVES_BEFORE: &str = "backward_moves_before";

/// Look-backs of the activity counts, in days.
const SHORT_WINDOW_DAYS: f64 = 7.0;
const LONG_WINDOW_DAYS: f64 = 30.0;

/// The activities that [`current_row`] at `now` depends on are the ones at or
/// after this moment, plus the latest one before it (for
/// [`DAYS_SINCE_ACTIVITY`]). Rescoring reads only those instead of a long
/// history's every call and email. A day early, so that no rounding on the
/// way can leave out one that counts.
pub fn activities_needed_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_sub_signed(Duration::days(LONG_WINDOW_DAYS as i64 + 1)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// One opportunity's features at one moment, before encoding.
///
/// A training run holds one per example (millions), so what a visit's or an
/// opportunity's snapshots share is shared, and the fixed numeric features
/// are keyed by the constants above instead of by owned strings.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// `stage`, `source`, `owner`; shared by the snapshots of a visit.
    pub categorical: Arc<BTreeMap<String, String>>,
    /// Fixed numeric features; `None` is missing.
    pub numeric: BTreeMap<&'static str, Option<f64>>,
    /// Raw attributes, shared by all of an opportunity's rows; the feature
    /// spec decides which are numeric.
    pub attributes: Arc<BTreeMap<String, String>>,
}

/// One labelled snapshot of a finished stage visit.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Shared by the opportunity's examples.
    pub opportunity_id: Arc<str>,
    pub stage: String,
    pub snapshot_at: DateTime<Utc>,
    /// 0 for the snapshot taken on entering the stage.
    pub snapshot_index: u32,
    /// When the visit ended, that is when the label became known.
    pub resolved_at: DateTime<Utc>,
    /// Length of the whole visit in days (an outcome, never a feature).
    pub visit_days: f64,
    /// True when the visit ended by advancing (or winning).
    pub advanced: bool,
    pub row: FeatureRow,
}

/// The current, unlabelled feature row of an open opportunity.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentRow {
    pub stage: String,
    pub days_in_stage: f64,
    pub row: FeatureRow,
}

/// How snapshots are taken from a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPlan {
    pub every_days: u32,
    pub max_per_visit: u32,
}

/// Labelled examples from every finished visit of every history, as of `now`
/// (records after `now` are ignored).
pub fn build_examples(
    histories: &[OpportunityHistory],
    stages: &[StageInfo],
    plan: SnapshotPlan,
    now: DateTime<Utc>,
) -> Result<Vec<Example>> {
    let pipeline = Pipeline::new(stages)?;
    let mut examples = Vec::new();
    push_examples(histories, &pipeline, plan, now, &mut examples)?;
    Ok(examples)
}

pub(crate) fn push_examples(
    histories: &[OpportunityHistory],
    pipeline: &Pipeline,
    plan: SnapshotPlan,
    now: DateTime<Utc>,
    examples: &mut Vec<Example>,
) -> Result<()> {
    for history in histories {
        let (all_visits, _status) = visits(history, pipeline, now)?;
        let shared = Shared::new(history);
        for visit in &all_visits {
            push_visit_examples(history, &shared, visit, plan, examples);
        }
    }
    Ok(())
}

/// What all the rows of one opportunity share.
struct Shared {
    id: Arc<str>,
    attributes: Arc<BTreeMap<String, String>>,
}

impl Shared {
    fn new(history: &OpportunityHistory) -> Self {
        Self { id: Arc::from(history.id.as_str()), attributes: Arc::new(history.attributes.clone()) }
    }

    fn categorical(&self, history: &OpportunityHistory, visit: &Visit) -> Arc<BTreeMap<String, String>> {
        Arc::new(BTreeMap::from([
            (STAGE.to_owned(), visit.stage.clone()),
            (SOURCE.to_owned(), history.source.clone()),
            (OWNER.to_owned(), history.owner.clone()),
        ]))
    }
}

fn push_visit_examples(
    history: &OpportunityHistory,
    shared: &Shared,
    visit: &Visit,
    plan: SnapshotPlan,
    examples: &mut Vec<Example>,
) {
    let Some((ended_at, Some(outcome))) = visit.ended else {
        return;
    };
    let categorical = shared.categorical(history, visit);
    let step = Duration::days(i64::from(plan.every_days.max(1)));
    let mut snapshot_at = visit.entered_at;
    for snapshot_index in 0..plan.max_per_visit {
        // A snapshot is only taken while the opportunity is still in the stage.
        if snapshot_at >= ended_at {
            break;
        }
        examples.push(Example {
            opportunity_id: shared.id.clone(),
            stage: visit.stage.clone(),
            snapshot_at,
            snapshot_index,
            resolved_at: ended_at,
            visit_days: days_between(visit.entered_at, ended_at),
            advanced: outcome == VisitOutcome::Advanced,
            row: FeatureRow {
                categorical: categorical.clone(),
                numeric: numeric_at(history, visit, snapshot_at),
                attributes: shared.attributes.clone(),
            },
        });
        snapshot_at += step;
    }
}

/// The feature row of an open opportunity at `now`, for scoring.
pub fn current_row(history: &OpportunityHistory, stages: &[StageInfo], now: DateTime<Utc>) -> Result<CurrentRow> {
    let pipeline = Pipeline::new(stages)?;
    let (all_visits, status) = visits(history, &pipeline, now)?;
    let open_visit = all_visits.last().filter(|visit| visit.ended.is_none());
    let (Status::Open, Some(visit)) = (status, open_visit) else {
        return Err(Error::NotOpen { id: history.id.clone(), status: format!("{status:?}") });
    };
    let shared = Shared::new(history);
    Ok(CurrentRow {
        stage: visit.stage.clone(),
        days_in_stage: days_between(visit.entered_at, now).max(0.0),
        row: FeatureRow {
            categorical: shared.categorical(history, visit),
            numeric: numeric_at(history, visit, now),
            attributes: shared.attributes,
        },
    })
}

/// Numeric features as they were at `at`: only activities up to `at` count.
fn numeric_at(history: &OpportunityHistory, visit: &Visit, at: DateTime<Utc>) -> BTreeMap<&'static str, Option<f64>> {
    let mut activities_7d = 0_u32;
    let mut activities_30d = 0_u32;
    let mut last_activity: Option<DateTime<Utc>> = None;
    for activity in &history.activities {
        if activity.occurred_at > at {
            continue;
        }
        let age = days_between(activity.occurred_at, at);
        if age <= SHORT_WINDOW_DAYS {
            activities_7d += 1;
        }
        if age <= LONG_WINDOW_DAYS {
            activities_30d += 1;
        }
        if last_activity.is_none_or(|last| activity.occurred_at > last) {
            last_activity = Some(activity.occurred_at);
        }
    }
    let amount = history.amount_minor.max(0) as f64;
    BTreeMap::from([
        (DAYS_IN_STAGE, Some(days_between(visit.entered_at, at))),
        (AGE_DAYS, Some(days_between(history.created_at, at).max(0.0))),
        (LOG_AMOUNT, Some(amount.ln_1p())),
        (ACTIVITIES_7D, Some(f64::from(activities_7d))),
        (ACTIVITIES_30D, Some(f64::from(activities_30d))),
        (DAYS_SINCE_ACTIVITY, last_activity.map(|last| days_between(last, at))),
        (MOVES_BEFORE, Some(f64::from(visit.moves_before))),
        (BACKWARD_MOVES_BEFORE, Some(f64::from(visit.backward_moves_before))),
    ])
}
