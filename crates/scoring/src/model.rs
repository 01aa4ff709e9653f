//! Training end to end: examples, time-based evaluation against the stage
//! baseline, alpha tuning, leak threshold, then the final refit on all data.

use chrono::{DateTime, Utc};
use linfa::ParamGuard;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::baseline::StageBaseline;
use crate::error::Result;
use crate::examples::{Example, FeatureRow, SnapshotPlan, push_examples};
use crate::features::FeatureSpec;
use crate::fit::fit_logistic;
use crate::history::{OpportunityHistory, Pipeline, StageInfo};
use crate::metrics::{LeakThreshold, Metrics, choose_leak_threshold, evaluate, log_loss};
use crate::train::{TrainParams, ValidTrainParams};

/// Labelled examples per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    pub advanced: usize,
    pub leaked: usize,
}

/// One model weight, named after its feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    pub column: String,
    pub weight: f64,
}

/// Validation log loss of one alpha of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaTrial {
    pub alpha: f64,
    pub validation_log_loss: f64,
    pub converged: bool,
}

/// The time-based hold-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Examples with a snapshot at or after this time were held out.
    pub cutoff: DateTime<Utc>,
    /// Training examples: before the cutoff AND resolved by it, since a
    /// label not known at the cutoff could not have been trained on then.
    pub train_count: usize,
    pub validation_count: usize,
    pub alpha_trials: Vec<AlphaTrial>,
    pub model: Metrics,
    /// The stage-advance-rate-only predictor on the same examples.
    pub baseline: Metrics,
}

/// Where the leak threshold was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdSource {
    Validation,
    /// The validation split lacked a class; chosen on the training data.
    InSample,
}

/// A trained scorer: everything `score` needs, serializable as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    pub trained_at: DateTime<Utc>,
    pub params: ValidTrainParams,
    pub spec: FeatureSpec,
    /// In column order of `spec`; weights give log-odds of advancing.
    pub coefficients: Vec<Coefficient>,
    pub intercept: f64,
    pub alpha: f64,
    pub converged: bool,
    pub iterations: u64,
    pub gradient_norm: f64,
    /// `None` when there was no usable validation split.
    pub evaluation: Option<Evaluation>,
    /// Rates and rot points from all examples.
    pub baseline: StageBaseline,
    pub leak_threshold: LeakThreshold,
    pub leak_threshold_source: ThresholdSource,
    /// The examples it learnt from (a sample of `examples_seen` when fewer).
    pub counts: ClassCounts,
    /// Examples the histories gave; 0 in models stored before it was recorded.
    #[serde(default)]
    pub examples_seen: u64,
}

impl TrainedModel {
    /// The model as JSON, for storing next to its scores.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Reads a model stored with [`TrainedModel::to_json`]; floats round-trip
    /// exactly, so it scores bit for bit as before.
    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }
}

/// What training produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // Built once per training run.
pub enum TrainingOutcome {
    Trained(TrainedModel),
    /// Too few examples of a class: score with `baseline_only_score`.
    InsufficientData {
        counts: ClassCounts,
        baseline: StageBaseline,
    },
}

fn rows<'a>(examples: &[&'a Example]) -> Vec<&'a FeatureRow> {
    examples.iter().map(|example| &example.row).collect()
}

fn labels(examples: &[&Example]) -> Vec<bool> {
    examples.iter().map(|example| example.advanced).collect()
}

/// Evaluation on the most recent examples, and the alpha it selects. `None`
/// when either part lacks a class.
fn evaluate_on_holdout(
    sorted: &[&Example],
    stages: &[StageInfo],
    params: &ValidTrainParams,
) -> Result<Option<(Evaluation, f64, LeakThreshold)>> {
    let validation_count = (sorted.len() as f64 * params.validation_share).ceil() as usize;
    let first_validation = sorted.len().saturating_sub(validation_count);
    let Some(cutoff_example) = sorted.get(first_validation) else {
        return Ok(None);
    };
    let cutoff = cutoff_example.snapshot_at;
    let validation = &sorted[first_validation..];
    let train: Vec<&Example> =
        sorted[..first_validation].iter().copied().filter(|example| example.resolved_at <= cutoff).collect();
    let train_labels = labels(&train);
    let validation_labels = labels(validation);
    let has_both = |labels: &[bool]| labels.contains(&true) && labels.contains(&false);
    if !has_both(&train_labels) || !has_both(&validation_labels) {
        return Ok(None);
    }

    // One encoding serves every alpha of the grid.
    let spec = FeatureSpec::fit(&rows(&train), &params.encoding);
    let train_matrix = spec.transform_for_fit(&rows(&train));
    let validation_matrix = spec.transform_all(&rows(validation));
    let mut alpha_trials = Vec::new();
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    for &alpha in &params.alpha_grid {
        let fit = fit_logistic(&train_matrix, &train_labels, alpha, params)?;
        let predicted = fit.probabilities(&validation_matrix);
        let loss = log_loss(&predicted, &validation_labels);
        alpha_trials.push(AlphaTrial { alpha, validation_log_loss: loss, converged: fit.converged });
        if best.as_ref().is_none_or(|(_, best_loss, _)| loss < *best_loss) {
            best = Some((alpha, loss, predicted));
        }
    }
    let Some((alpha, _, predicted)) = best else {
        return Ok(None);
    };

    let train_baseline = StageBaseline::from_examples(&train, stages, params.rot_quantile)?;
    let baseline_predicted: Vec<f64> = validation.iter().map(|example| train_baseline.rate(&example.stage)).collect();
    let Some(threshold) = choose_leak_threshold(&predicted, &validation_labels, params.target_leak_precision) else {
        return Ok(None);
    };
    let evaluation = Evaluation {
        cutoff,
        train_count: train.len(),
        validation_count: validation.len(),
        alpha_trials,
        model: evaluate(&predicted, &validation_labels),
        baseline: evaluate(&baseline_predicted, &validation_labels),
    };
    Ok(Some((evaluation, alpha, threshold)))
}

/// Gathers training examples a batch of histories at a time, so that a
/// training run never holds every history (issue 7), and keeps at most
/// `max_examples` of them: past that, a uniform sample of all it was given
/// (reservoir sampling, Vitter's algorithm R), so memory stays bounded
/// however long the history grows.
pub struct ExampleCollector {
    pipeline: Pipeline,
    plan: SnapshotPlan,
    now: DateTime<Utc>,
    max_examples: usize,
    examples: Vec<Example>,
    /// Examples offered so far, kept or not.
    seen: u64,
    /// Seeded: the same histories in the same order give the same sample.
    rng: ChaCha8Rng,
}

/// Seed of the sampling; any fixed value keeps training repeatable.
const SAMPLE_SEED: u64 = 0x5EED_F0E1;

impl ExampleCollector {
    pub fn new(stages: &[StageInfo], params: &TrainParams, now: DateTime<Utc>) -> Result<Self> {
        let params = params.check_ref()?;
        let plan =
            SnapshotPlan { every_days: params.snapshot_every_days, max_per_visit: params.max_snapshots_per_visit };
        Ok(Self {
            pipeline: Pipeline::new(stages)?,
            plan,
            now,
            max_examples: params.max_examples,
            examples: Vec::new(),
            seen: 0,
            rng: ChaCha8Rng::seed_from_u64(SAMPLE_SEED),
        })
    }

    /// Adds the examples of `histories`, as of `now`.
    pub fn add(&mut self, histories: &[OpportunityHistory]) -> Result<()> {
        let mut batch = Vec::new();
        push_examples(histories, &self.pipeline, self.plan, self.now, &mut batch)?;
        for example in batch {
            self.offer(example);
        }
        Ok(())
    }

    /// Keeps the i-th example offered (counting from 0) with probability
    /// max / (i + 1), in place of a random kept one: every example offered
    /// is then kept with the same probability.
    fn offer(&mut self, example: Example) {
        self.seen += 1;
        if self.examples.len() < self.max_examples {
            self.examples.push(example);
            return;
        }
        let slot = self.rng.random_range(0..self.seen);
        if let Some(kept) = usize::try_from(slot).ok().and_then(|slot| self.examples.get_mut(slot)) {
            *kept = example;
        }
    }

    /// Examples kept (at most `max_examples`).
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Examples offered, kept or not: more than [`Self::len`] when sampled.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The examples in [`train_on_examples`]'s order: by snapshot time, then
    /// a total order, so the time split does not depend on input order.
    pub fn finish(mut self) -> Vec<Example> {
        self.examples.sort_by(|a, b| {
            (a.snapshot_at, &a.opportunity_id, a.snapshot_index, &a.stage).cmp(&(
                b.snapshot_at,
                &b.opportunity_id,
                b.snapshot_index,
                &b.stage,
            ))
        });
        self.examples
    }
}

/// The examples [`train_model`] learns from, in its order.
pub fn training_examples(
    histories: &[OpportunityHistory],
    stages: &[StageInfo],
    params: &TrainParams,
    now: DateTime<Utc>,
) -> Result<Vec<Example>> {
    let mut collector = ExampleCollector::new(stages, params, now)?;
    collector.add(histories)?;
    Ok(collector.finish())
}

/// Trains a scorer on histories as of `now`. Returns `InsufficientData`
/// (not an error) when a class has fewer than `min_examples_per_class`
/// examples.
pub fn train_model(
    histories: &[OpportunityHistory],
    stages: &[StageInfo],
    params: &TrainParams,
    now: DateTime<Utc>,
) -> Result<TrainingOutcome> {
    train_on_examples(training_examples(histories, stages, params, now)?, stages, params, now)
}

/// [`train_model`] on examples already gathered by an [`ExampleCollector`]
/// (in its order). Takes them by value: they are dropped once encoded, before
/// the final fit, whose matrix is then the largest thing held.
pub fn train_on_examples(
    examples: Vec<Example>,
    stages: &[StageInfo],
    params: &TrainParams,
    now: DateTime<Utc>,
) -> Result<TrainingOutcome> {
    let params = params.check_ref()?.clone();
    let seen = examples.len() as u64;
    let all: Vec<&Example> = examples.iter().collect();
    let baseline = StageBaseline::from_examples(&all, stages, params.rot_quantile)?;
    let advanced = all.iter().filter(|example| example.advanced).count();
    let counts = ClassCounts { advanced, leaked: all.len() - advanced };
    if counts.advanced < params.min_examples_per_class.max(1) || counts.leaked < params.min_examples_per_class.max(1) {
        return Ok(TrainingOutcome::InsufficientData { counts, baseline });
    }

    let holdout = evaluate_on_holdout(&all, stages, &params)?;
    let fallback_alpha = params.alpha_grid[params.alpha_grid.len() / 2];
    let alpha = holdout.as_ref().map_or(fallback_alpha, |(_, alpha, _)| *alpha);
    let spec = FeatureSpec::fit(&rows(&all), &params.encoding);
    let matrix = spec.transform_for_fit(&rows(&all));
    let all_labels = labels(&all);
    drop(all);
    drop(examples);
    let fit = fit_logistic(&matrix, &all_labels, alpha, &params)?;
    let (evaluation, leak_threshold, leak_threshold_source) = match holdout {
        Some((evaluation, _, threshold)) => (Some(evaluation), threshold, ThresholdSource::Validation),
        None => {
            let in_sample = fit.probabilities(&matrix);
            let threshold =
                choose_leak_threshold(&in_sample, &all_labels, params.target_leak_precision).unwrap_or(LeakThreshold {
                    threshold: 0.0,
                    target_precision: params.target_leak_precision,
                    precision: 0.0,
                    recall: 0.0,
                    flagged: 0,
                    target_reached: false,
                });
            (None, threshold, ThresholdSource::InSample)
        }
    };
    let coefficients = spec
        .column_names()
        .into_iter()
        .zip(&fit.weights)
        .map(|(column, weight)| Coefficient { column, weight: *weight })
        .collect();
    Ok(TrainingOutcome::Trained(TrainedModel {
        trained_at: now,
        params,
        spec,
        coefficients,
        intercept: fit.intercept,
        alpha,
        converged: fit.converged,
        iterations: fit.iterations,
        gradient_norm: fit.gradient_norm,
        evaluation,
        baseline,
        leak_threshold,
        leak_threshold_source,
        counts,
        examples_seen: seen,
    }))
}

/// [`train_on_examples`] on what `collector` kept, recording how many
/// examples it was offered.
pub fn train_on_collected(
    collector: ExampleCollector,
    stages: &[StageInfo],
    params: &TrainParams,
    now: DateTime<Utc>,
) -> Result<TrainingOutcome> {
    let seen = collector.seen();
    let mut outcome = train_on_examples(collector.finish(), stages, params, now)?;
    if let TrainingOutcome::Trained(model) = &mut outcome {
        model.examples_seen = seen;
    }
    Ok(outcome)
}
