//! Training parameters and the logistic-regression fit.
//!
//! Two facts about linfa-logistic 0.8.1 shape this module:
//! - its labels are oriented by class frequency, not by value: the fitted
//!   `params()` give the probability of the MORE FREQUENT class
//!   (rust-ml/linfa#393). We read `labels().pos` and flip the sign so our
//!   weights always give P(advanced);
//! - its objective is a sum over examples plus `alpha/2 * ||w||^2` (the
//!   intercept is not penalized) and its gradient tolerance is absolute, and
//!   it does not report non-convergence. We scale the tolerance with N and
//!   check the gradient norm at the solution ourselves.

use linfa::ParamGuard;
use linfa::dataset::DatasetBase;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ArrayView1, ShapeBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::EncodingParams;

/// The solver runs in chunks of this many iterations, warm-started from the
/// previous chunk, so the iteration count is known to this granularity.
const ITERATION_CHUNK: u64 = 20;

/// Design matrices with at least this many values (8 MiB) are handed to the
/// solver column-major (see `fit_logistic`).
const COLUMN_MAJOR_FROM_ELEMENTS: usize = 1 << 20;

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
}

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
            gradient_tolerance_per_example: 1e-5,
            validation_share: 0.2,
            min_examples_per_class: 40,
            target_leak_precision: 0.8,
            rot_quantile: 0.9,
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
    /// is a sum); default 1e-5.
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
        Ok(params)
    }

    fn check(self) -> Result<ValidTrainParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// A fitted logistic regression, oriented so that `sigmoid(w·x + b)` is the
/// probability of advancing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticFit {
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub alpha: f64,
    /// Whether the gradient norm of the penalized objective at the solution
    /// is within the tolerance.
    pub converged: bool,
    /// Solver iterations spent (an upper bound, counted in chunks).
    pub iterations: u64,
    pub gradient_norm: f64,
}

/// Numerically stable logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let exp = z.exp();
        exp / (1.0 + exp)
    }
}

impl LogisticFit {
    /// P(advanced) for one encoded row.
    pub fn probability(&self, row: ArrayView1<'_, f64>) -> f64 {
        let z: f64 = self.intercept + row.iter().zip(&self.weights).map(|(x, w)| x * w).sum::<f64>();
        sigmoid(z)
    }

    /// P(advanced) for every row of a design matrix.
    pub fn probabilities(&self, matrix: &Array2<f64>) -> Vec<f64> {
        matrix.rows().into_iter().map(|row| self.probability(row)).collect()
    }
}

/// Norm of the gradient of `sum logloss + alpha/2 ||w||^2` at (w, b), the
/// objective linfa minimizes (with labels 0/1 the gradient is X'(p - y)).
fn gradient_norm(x: &Array2<f64>, advanced: &[bool], fit: &LogisticFit) -> f64 {
    let mut gradient = Array1::<f64>::zeros(fit.weights.len() + 1);
    for (row, label) in x.rows().into_iter().zip(advanced) {
        let residual = fit.probability(row) - f64::from(u8::from(*label));
        for (column, value) in row.iter().enumerate() {
            gradient[column] += residual * value;
        }
        gradient[fit.weights.len()] += residual;
    }
    for (column, weight) in fit.weights.iter().enumerate() {
        gradient[column] += fit.alpha * weight;
    }
    gradient.dot(&gradient).sqrt()
}

/// Fits P(advanced | x) with L2 weight `alpha`.
pub fn fit_logistic(x: &Array2<f64>, advanced: &[bool], alpha: f64, params: &ValidTrainParams) -> Result<LogisticFit> {
    let advanced_count = advanced.iter().filter(|label| **label).count();
    let leaked_count = advanced.len() - advanced_count;
    if advanced_count == 0 || leaked_count == 0 || x.nrows() != advanced.len() {
        return Err(Error::SingleClass { advanced: advanced_count, leaked: leaked_count });
    }
    let tolerance = params.gradient_tolerance_per_example * x.nrows() as f64;
    // Column-major once X outgrows the caches, so the gradient's X^T (p - y)
    // walks contiguous memory: without BLAS, ndarray computes it row by row of
    // X^T, and on a row-major X each such row is a strided pass over the whole
    // matrix (issue 7, B5: 4x faster at 800,000 x 50). Small fits keep the
    // layout, and with it the rounding the known-answer test pins.
    let records = if x.len() >= COLUMN_MAJOR_FROM_ELEMENTS {
        let mut column_major = Array2::<f64>::zeros(x.raw_dim().f());
        column_major.assign(x);
        column_major
    } else {
        x.clone()
    };
    let dataset = DatasetBase::new(records, Array1::from(advanced.to_vec()));
    let mut warm_start: Option<Array1<f64>> = None;
    let mut best: Option<LogisticFit> = None;
    let mut iterations = 0_u64;
    while iterations < params.max_iterations {
        let budget = ITERATION_CHUNK.min(params.max_iterations - iterations);
        let mut solver =
            LogisticRegression::default().alpha(alpha).max_iterations(budget).gradient_tolerance(tolerance);
        if let Some(initial) = &warm_start {
            solver = solver.initial_params(initial.clone());
        }
        let fitted = match solver.fit(&dataset) {
            Ok(fitted) => fitted,
            // A line search can fail right at the optimum; keep what we have.
            Err(_) if best.is_some() => break,
            Err(error) => return Err(error.into()),
        };
        iterations += budget;
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        let mut candidate = LogisticFit {
            weights: fitted.params().iter().map(|w| sign * w).collect(),
            intercept: sign * fitted.intercept(),
            alpha,
            converged: false,
            iterations,
            gradient_norm: 0.0,
        };
        candidate.gradient_norm = gradient_norm(x, advanced, &candidate);
        candidate.converged = candidate.gradient_norm <= tolerance;
        let mut next_start = fitted.params().to_vec();
        next_start.push(fitted.intercept());
        warm_start = Some(Array1::from(next_start));
        let done = candidate.converged || !candidate.gradient_norm.is_finite();
        best = Some(candidate);
        if done {
            break;
        }
    }
    best.ok_or(Error::InvalidParam { name: "max_iterations", reason: "no iteration was run".to_owned() })
}
