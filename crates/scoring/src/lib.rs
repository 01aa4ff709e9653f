//! Learns from stage histories whether an open opportunity will advance out
//! of its stage or leak, and scores open opportunities with reasons.
//!
//! Pure functions over plain data: no I/O, no async, deterministic.
//!
//! - [`build_examples`] cuts histories into labelled snapshots without
//!   look-ahead, [`current_row`] gives an open opportunity's row now;
//! - [`FeatureSpec`] encodes rows (fitted once, stored with the model);
//! - [`train_model`] evaluates against a stage baseline on a time split,
//!   tunes the L2 weight and refits on all data;
//! - [`score`] and [`baseline_only_score`] (cold start) score an open
//!   opportunity.

mod baseline;
mod error;
mod examples;
mod features;
mod fit;
mod history;
mod metrics;
mod model;
mod score;
mod train;

pub use baseline::{BaselineTally, PRIOR_ADVANCE_RATE, RotPoint, RotSource, StageBaseline, StageRate};
pub use error::{Error, Result};
pub use examples::{
    ACTIVITIES_7D, ACTIVITIES_30D, AGE_DAYS, BACKWARD_MOVES_BEFORE, CurrentRow, DAYS_IN_STAGE, DAYS_SINCE_ACTIVITY,
    Example, FeatureRow, LOG_AMOUNT, MOVES_BEFORE, OWNER, SOURCE, STAGE, SnapshotPlan, activities_needed_since,
    build_examples, current_row,
};
pub use features::{CategoricalFeature, EncodingParams, FeatureSpec, NumericFeature};
pub use fit::{LogisticFit, fit_logistic, sigmoid};
pub use history::{ActivityRecord, OpportunityHistory, StageInfo, Status, TransitionRecord};
pub use metrics::{
    CalibrationBin, LeakThreshold, Metrics, average_precision, brier, calibration, choose_leak_threshold, evaluate,
    log_loss, roc_auc,
};
pub use model::{
    AlphaTrial, ClassCounts, Coefficient, Evaluation, ExampleCollector, ThresholdSource, TrainedModel, TrainingOutcome,
    train_model, train_on_collected, train_on_examples, training_examples,
};
pub use score::{Factor, ReasonCode, Score, baseline_only_score, score};
pub use train::{DEFAULT_MAX_EXAMPLES, TrainParams, ValidTrainParams};
