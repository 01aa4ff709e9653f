//! Scoring an open opportunity, with reasons and the factors behind a score.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::baseline::StageBaseline;
use crate::error::{Error, Result};
use crate::examples::{ACTIVITIES_30D, CurrentRow, current_row};
use crate::features::Raw;
use crate::fit::sigmoid;
use crate::history::{OpportunityHistory, StageInfo};
use crate::model::TrainedModel;

/// How many factors each direction lists.
const TOP_FACTORS: usize = 3;

/// Why a score deserves attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// Below the leak threshold.
    LowScore,
    /// Longer in the stage than its rot point.
    StaleInStage,
    /// Too little history for a model; the score is the stage baseline.
    InsufficientData,
    /// No activity in the last 30 days.
    NoRecentActivity,
    /// The model's solver did not converge; treat the score with care.
    ModelNotConverged,
}

/// One column's push on the log-odds of advancing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    /// Column name, e.g. `source=cold_call` or `days_since_activity`.
    pub feature: String,
    /// The raw input, e.g. `cold_call` or `41.0`.
    pub value: String,
    /// Coefficient × encoded (standardized) value.
    pub contribution: f64,
}

/// The score of one open opportunity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub stage: String,
    pub days_in_stage: f64,
    /// Probability of advancing out of the current stage.
    pub p_advance: f64,
    /// `p_advance` × the historical conversion of the later stages.
    pub p_win_estimate: f64,
    pub leak_flag: bool,
    pub reasons: Vec<ReasonCode>,
    /// Up to three factors lowering the score, largest first.
    pub factors_down: Vec<Factor>,
    /// Up to three factors raising the score, largest first.
    pub factors_up: Vec<Factor>,
}

/// Reasons that do not depend on a model.
fn history_reasons(baseline: &StageBaseline, current: &CurrentRow) -> Vec<ReasonCode> {
    let mut reasons = Vec::new();
    if baseline.rot_days(&current.stage).is_some_and(|rot_days| current.days_in_stage > rot_days) {
        reasons.push(ReasonCode::StaleInStage);
    }
    let recent = current.row.numeric.get(ACTIVITIES_30D).copied().flatten();
    if recent.is_none_or(|count| count < 1.0) {
        reasons.push(ReasonCode::NoRecentActivity);
    }
    reasons
}

/// Scores an open opportunity with a trained model.
pub fn score(
    model: &TrainedModel,
    history: &OpportunityHistory,
    stages: &[StageInfo],
    now: DateTime<Utc>,
) -> Result<Score> {
    let current = current_row(history, stages, now)?;
    let mut cells = Vec::with_capacity(model.coefficients.len());
    model.spec.cells(&current.row, |encoded, raw| cells.push((encoded, raw)));
    if cells.len() != model.coefficients.len() {
        return Err(Error::ColumnMismatch { expected: model.coefficients.len(), found: cells.len() });
    }
    let mut log_odds = model.intercept;
    // Column, contribution and raw input; only the top few get named and
    // shown, which is most of a score's cost when done for every column.
    let mut factors = Vec::new();
    for (column, ((encoded, raw), coefficient)) in cells.into_iter().zip(&model.coefficients).enumerate() {
        let contribution = coefficient.weight * encoded;
        log_odds += contribution;
        if contribution != 0.0 && contribution.is_finite() {
            factors.push((column, contribution, raw));
        }
    }
    if !log_odds.is_finite() {
        return Err(Error::InconsistentModel { reason: "non-finite log-odds".to_owned() });
    }
    factors.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let (down, up): (Vec<_>, Vec<_>) = factors.into_iter().partition(|(_, contribution, _)| *contribution < 0.0);
    let top = |factors: Vec<(usize, f64, Raw<'_>)>| -> Vec<Factor> {
        factors
            .into_iter()
            .take(TOP_FACTORS)
            .map(|(column, contribution, raw)| Factor {
                feature: model.coefficients[column].column.clone(),
                value: raw.shown(),
                contribution,
            })
            .collect()
    };

    let p_advance = sigmoid(log_odds);
    let mut reasons = Vec::new();
    if p_advance < model.leak_threshold.threshold {
        reasons.push(ReasonCode::LowScore);
    }
    reasons.extend(history_reasons(&model.baseline, &current));
    // Either signal flags a leak: a low score, or sitting past the rot point.
    let leak_flag = reasons.iter().any(|reason| matches!(reason, ReasonCode::LowScore | ReasonCode::StaleInStage));
    if !model.converged {
        reasons.push(ReasonCode::ModelNotConverged);
    }
    Ok(Score {
        p_win_estimate: p_advance * model.baseline.later_conversion(&current.stage),
        stage: current.stage,
        days_in_stage: current.days_in_stage,
        p_advance,
        leak_flag,
        reasons,
        factors_down: top(down),
        factors_up: top(up),
    })
}

/// Cold-start score: the stage's historical advance rate (0.5 for a stage
/// never seen), always with `INSUFFICIENT_DATA`. Flags a leak only for time
/// past the stage's rot point: without a model there is no validated
/// probability threshold.
pub fn baseline_only_score(
    baseline: &StageBaseline,
    history: &OpportunityHistory,
    stages: &[StageInfo],
    now: DateTime<Utc>,
) -> Result<Score> {
    let current = current_row(history, stages, now)?;
    let p_advance = baseline.rate(&current.stage);
    let mut reasons = vec![ReasonCode::InsufficientData];
    reasons.extend(history_reasons(baseline, &current));
    let leak_flag = reasons.contains(&ReasonCode::StaleInStage);
    Ok(Score {
        p_win_estimate: p_advance * baseline.later_conversion(&current.stage),
        stage: current.stage,
        days_in_stage: current.days_in_stage,
        p_advance,
        leak_flag,
        reasons,
        factors_down: Vec::new(),
        factors_up: Vec::new(),
    })
}
