//! Training parameters: an unchecked builder checked into valid parameters
//! (linfa's `ParamGuard` style).

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::EncodingParams;

/// Checked training parameters. Build them with [`TrainParams`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidTrainParams {
    pub(crate) snapshot_every_days: u32,
    pub(crate) max_snapshots_per_visit: u32,
    pub(crate) encoding: EncodingParams,
    pub(crate) alpha_grid: Vec<f64>,
    pub(crate) max_iterations: u64,
    pub(crate) gradient_tolerance_per_example: f64,
    pub(crate) validation_share: f64,
    pub(crate) min_examples_per_class: usize,
    pub(crate) target_leak_precision: f64,
    pub(crate) rot_quantile: f64,
    /// Models stored before this setting existed were trained on every example.
    #[serde(default = "unbounded")]
    pub(crate) max_examples: usize,
}

fn unbounded() -> usize {
    usize::MAX
}

/// Examples a training run keeps by default. A kept example costs ~2 KiB
/// until the fit (sampled ones share less with each other than all of an
/// opportunity's do), so ~1 GiB, within the scorer's 1.5 GiB limit
/// (`deploy/`); ~50 weights are as well determined by half a million
/// examples as by millions.
pub const DEFAULT_MAX_EXAMPLES: usize = 500_000;

/// Unchecked training parameters (linfa's `ParamGuard` style): set what you
/// need, then `check()` (or let `train_model` check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainParams(ValidTrainParams);

impl Default for TrainParams {
    fn default() -> Self {
        Self(ValidTrainParams {
            snapshot_every_days: 7,
            max_snapshots_per_visit: 8,
            encoding: EncodingParams { min_category_count: 5, max_categories: 20, numeric_attribute_share: 0.9 },
            alpha_grid: vec![0.1, 1.0, 10.0, 100.0],
            max_iterations: 400,
            gradient_tolerance_per_example: 1e-4,
            validation_share: 0.2,
            min_examples_per_class: 40,
            target_leak_precision: 0.8,
            rot_quantile: 0.9,
            max_examples: DEFAULT_MAX_EXAMPLES,
        })
    }
}

impl TrainParams {
    /// Days between snapshots of one stage visit; default 7.
    pub fn snapshot_every_days(mut self, days: u32) -> Self {
        self.0.snapshot_every_days = days;
        self
    }
    /// Snapshots taken from one visit at most; default 8.
    pub fn max_snapshots_per_visit(mut self, count: u32) -> Self {
        self.0.max_snapshots_per_visit = count;
        self
    }
    /// One-hot and attribute settings; default min count 5, at most 20
    /// categories per feature, attributes numeric when 90% parse.
    pub fn encoding(mut self, encoding: EncodingParams) -> Self {
        self.0.encoding = encoding;
        self
    }
    /// L2 weights tried on the validation split (linfa's `alpha`, on a summed
    /// loss); default `[0.1, 1, 10, 100]`.
    pub fn alpha_grid(mut self, grid: Vec<f64>) -> Self {
        self.0.alpha_grid = grid;
        self
    }
    /// Solver iteration cap; default 400.
    pub fn max_iterations(mut self, iterations: u64) -> Self {
        self.0.max_iterations = iterations;
        self
    }
    /// Gradient-norm tolerance per example (multiplied by N because the loss
    /// is a sum); default 1e-4. That is scikit-learn's default `tol`, which it
    /// applies to the largest component of the mean gradient; ours bounds the
    /// Euclidean norm, so it is at least as strict (issue 7, B5).
    pub fn gradient_tolerance_per_example(mut self, tolerance: f64) -> Self {
        self.0.gradient_tolerance_per_example = tolerance;
        self
    }
    /// Most recent share of examples held out for validation; default 0.2.
    pub fn validation_share(mut self, share: f64) -> Self {
        self.0.validation_share = share;
        self
    }
    /// Fewer advanced or leaked examples than this means cold start;
    /// default 40.
    pub fn min_examples_per_class(mut self, count: usize) -> Self {
        self.0.min_examples_per_class = count;
        self
    }
    /// Precision for leaks the flag threshold aims at; default 0.8.
    pub fn target_leak_precision(mut self, precision: f64) -> Self {
        self.0.target_leak_precision = precision;
        self
    }
    /// Quantile of days-to-advance that makes a stage's rot point; default 0.9.
    pub fn rot_quantile(mut self, quantile: f64) -> Self {
        self.0.rot_quantile = quantile;
        self
    }
    /// Examples kept for training at most; beyond it a uniform random sample
    /// of this size, so memory stays bounded however long the history;
    /// default [`DEFAULT_MAX_EXAMPLES`].
    pub fn max_examples(mut self, count: usize) -> Self {
        self.0.max_examples = count;
        self
    }
}

fn invalid(name: &'static str, reason: &str) -> Error {
    Error::InvalidParam { name, reason: reason.to_owned() }
}

fn is_share(value: f64) -> bool {
    value.is_finite() && (0.0..=1.0).contains(&value)
}

impl ParamGuard for TrainParams {
    type Checked = ValidTrainParams;
    type Error = Error;

    fn check_ref(&self) -> Result<&ValidTrainParams> {
        let params = &self.0;
        if params.snapshot_every_days == 0 {
            return Err(invalid("snapshot_every_days", "must be at least 1"));
        }
        if params.max_snapshots_per_visit == 0 {
            return Err(invalid("max_snapshots_per_visit", "must be at least 1"));
        }
        if params.encoding.max_categories == 0 {
            return Err(invalid("max_categories", "must be at least 1"));
        }
        if !is_share(params.encoding.numeric_attribute_share) {
            return Err(invalid("numeric_attribute_share", "must be within [0, 1]"));
        }
        let bad_alpha = |alpha: &f64| !alpha.is_finite() || *alpha <= 0.0;
        if params.alpha_grid.is_empty() || params.alpha_grid.iter().any(bad_alpha) {
            return Err(invalid("alpha_grid", "must be non-empty and positive"));
        }
        if params.max_iterations == 0 {
            return Err(invalid("max_iterations", "must be at least 1"));
        }
        let tolerance = params.gradient_tolerance_per_example;
        if !tolerance.is_finite() || tolerance <= 0.0 {
            return Err(invalid("gradient_tolerance_per_example", "must be positive"));
        }
        if !is_share(params.validation_share) || params.validation_share >= 1.0 {
            return Err(invalid("validation_share", "must be within [0, 1)"));
        }
        if !is_share(params.target_leak_precision) {
            return Err(invalid("target_leak_precision", "must be within [0, 1]"));
        }
        if !is_share(params.rot_quantile) {
            return Err(invalid("rot_quantile", "must be within [0, 1]"));
        }
        if params.max_examples == 0 {
            return Err(invalid("max_examples", "must be at least 1"));
        }
        Ok(params)
    }

    fn check(self) -> Result<ValidTrainParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}
