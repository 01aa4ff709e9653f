//! The logistic-regression fit, with linfa-logistic.
//!
//! Facts about linfa-logistic 0.8.1 that shape this module:
//! - its labels are oriented by class frequency, not by value: the fitted
//!   `params()` give the probability of the MORE FREQUENT class
//!   (rust-ml/linfa#393). We read `labels().pos` and flip the sign so our
//!   weights always give P(advanced);
//! - its objective is a sum over examples plus `alpha/2 * ||w||^2` (the
//!   intercept is not penalized) and its gradient tolerance is absolute, and
//!   it does not report non-convergence. We scale the tolerance with N and
//!   check the gradient norm at the solution ourselves;
//! - it does not report how many iterations it took, and every restart costs
//!   L-BFGS its curvature memory and a long first line search, so a fit runs
//!   in few, long chunks;
//! - on large data the passes over X are the cost. Upstream makes about five
//!   per L-BFGS iteration; the vendored copy (vendor/README.md) evaluates
//!   cost and gradient together and remembers the last point, which makes it
//!   one, so what is left to save is iterations: hence the warm start below.
//!   Issue 7 (B5) has the measurements.

use std::cmp::Ordering;

use linfa::dataset::DatasetBase;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, ShapeBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::train::ValidTrainParams;

/// The solver runs in chunks of this many iterations, warm-started from the
/// previous chunk, so the iteration count is known to this granularity. Large
/// enough that a fit at the default tolerance is one chunk (B5, 800,000 x 50,
/// needs about 25 iterations from zero), because a restart forgets L-BFGS's
/// curvature and costs about 4 iterations' worth of evaluations.
const ITERATION_CHUNK: u64 = 50;

/// Design matrices with at least this many values (8 MiB) are handed to the
/// solver column-major (see `fit_logistic`).
const COLUMN_MAJOR_FROM_ELEMENTS: usize = 1 << 20;

/// Fits on at least this many rows start from a fit on every
/// `WARM_START_STRIDE`-th row (see `subsample_start`).
const WARM_START_FROM_ROWS: usize = 160_000;
const WARM_START_STRIDE: usize = 16;

/// Rows transposed together when copying to column-major: a block of rows
/// stays in cache while each of its columns is written out.
const TRANSPOSE_BLOCK_ROWS: usize = 512;

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
    /// Solver iterations spent on the full data: an upper bound, counted in
    /// chunks of 50 (linfa does not report the count).
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

/// Whether `fit_logistic` hands a design matrix of this shape to the solver
/// column-major. Training encodes such matrices column-major to begin with
/// ([`crate::FeatureSpec::transform_for_fit`]), which spares the copy.
pub(crate) fn fits_column_major(rows: usize, columns: usize) -> bool {
    rows.saturating_mul(columns) >= COLUMN_MAJOR_FROM_ELEMENTS
}

fn is_column_major(x: &Array2<f64>) -> bool {
    x.t().is_standard_layout()
}

/// `x` copied column-major, a block of rows at a time.
fn column_major(x: &Array2<f64>) -> Array2<f64> {
    let (rows, columns) = x.dim();
    let mut transposed = Array2::<f64>::zeros(x.raw_dim().f());
    if let (Some(source), Some(destination)) = (x.as_slice(), transposed.as_slice_memory_order_mut())
        && columns > 0
    {
        for first_row in (0..rows).step_by(TRANSPOSE_BLOCK_ROWS) {
            let end_row = rows.min(first_row + TRANSPOSE_BLOCK_ROWS);
            let block = &source[first_row * columns..end_row * columns];
            for (column, column_values) in destination.chunks_exact_mut(rows).enumerate() {
                let block_column = block.iter().skip(column).step_by(columns);
                for (value, source_value) in column_values[first_row..end_row].iter_mut().zip(block_column) {
                    *value = *source_value;
                }
            }
        }
    } else {
        transposed.assign(x);
    }
    transposed
}

/// The class linfa-logistic 0.8.1 labels positive: the more frequent one, and
/// on a tie the one it meets first (rust-ml/linfa#393).
fn linfa_positive_is_advanced(advanced: &[bool]) -> bool {
    let advanced_count = advanced.iter().filter(|label| **label).count();
    match (2 * advanced_count).cmp(&advanced.len()) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => advanced.first() == Some(&true),
    }
}

/// One linfa-logistic run from `start`, weights then intercept, both oriented
/// to P(advanced) like the answer.
fn solve(
    records: ArrayView2<'_, f64>,
    advanced: &[bool],
    alpha: f64,
    tolerance: f64,
    max_iterations: u64,
    start: &Array1<f64>,
) -> Result<Array1<f64>> {
    let start_sign = if linfa_positive_is_advanced(advanced) { 1.0 } else { -1.0 };
    let solver = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(max_iterations)
        .gradient_tolerance(tolerance)
        .initial_params(start * start_sign);
    let fitted = solver.fit(&DatasetBase::new(records, Array1::from(advanced.to_vec())))?;
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let mut solution: Vec<f64> = fitted.params().iter().map(|weight| sign * weight).collect();
    solution.push(sign * fitted.intercept());
    Ok(Array1::from(solution))
}

/// A starting point for a large fit: the solution on every
/// `WARM_START_STRIDE`-th row, with `alpha` scaled by the same share so both
/// objectives have about the same minimizer. The full fit then starts within
/// sampling noise of its answer and saves about a third of its passes over X
/// (issue 7, B5). Zero when the subsample cannot be fitted (one class).
fn subsample_start(x: &Array2<f64>, advanced: &[bool], alpha: f64, params: &ValidTrainParams) -> Array1<f64> {
    let zero = Array1::<f64>::zeros(x.ncols() + 1);
    let rows: Vec<usize> = (0..x.nrows()).step_by(WARM_START_STRIDE).collect();
    let sample_labels: Vec<bool> = rows.iter().map(|row| advanced[*row]).collect();
    let sample = column_major(&x.select(Axis(0), &rows));
    let share = rows.len() as f64 / x.nrows() as f64;
    let tolerance = params.gradient_tolerance_per_example * rows.len() as f64;
    solve(sample.view(), &sample_labels, alpha * share, tolerance, ITERATION_CHUNK, &zero).unwrap_or(zero)
}

/// Fits P(advanced | x) with L2 weight `alpha`.
pub fn fit_logistic(x: &Array2<f64>, advanced: &[bool], alpha: f64, params: &ValidTrainParams) -> Result<LogisticFit> {
    let advanced_count = advanced.iter().filter(|label| **label).count();
    let leaked_count = advanced.len() - advanced_count;
    if advanced_count == 0 || leaked_count == 0 || x.nrows() != advanced.len() {
        return Err(Error::SingleClass { advanced: advanced_count, leaked: leaked_count });
    }
    let tolerance = params.gradient_tolerance_per_example * x.nrows() as f64;
    let mut start = if x.nrows() >= WARM_START_FROM_ROWS {
        subsample_start(x, advanced, alpha, params)
    } else {
        Array1::zeros(x.ncols() + 1)
    };
    // Column-major once X outgrows the caches: the solver's blocks of rows
    // then read each column contiguously (issue 7, B5: 800,000 x 50 fits in
    // 1.3 s instead of 1.8 s with the copy counted). Small fits keep the layout, and
    // with it the rounding the known-answer test pins.
    let column_major_copy = (fits_column_major(x.nrows(), x.ncols()) && !is_column_major(x)).then(|| column_major(x));
    let records = column_major_copy.as_ref().map_or(x.view(), Array2::view);
    let mut best: Option<LogisticFit> = None;
    let mut iterations = 0_u64;
    while iterations < params.max_iterations {
        let budget = ITERATION_CHUNK.min(params.max_iterations - iterations);
        let solution = match solve(records, advanced, alpha, tolerance, budget, &start) {
            Ok(solution) => solution,
            // A line search can fail right at the optimum; keep what we have.
            Err(_) if best.is_some() => break,
            Err(error) => return Err(error),
        };
        iterations += budget;
        let columns = x.ncols();
        let mut candidate = LogisticFit {
            weights: solution.iter().take(columns).copied().collect(),
            intercept: solution[columns],
            alpha,
            converged: false,
            iterations,
            gradient_norm: 0.0,
        };
        candidate.gradient_norm = gradient_norm(x, advanced, &candidate);
        candidate.converged = candidate.gradient_norm <= tolerance;
        start = solution;
        let done = candidate.converged || !candidate.gradient_norm.is_finite();
        best = Some(candidate);
        if done {
            break;
        }
    }
    best.ok_or(Error::InvalidParam { name: "max_iterations", reason: "no iteration was run".to_owned() })
}

#[cfg(test)]
mod tests {
    use linfa::ParamGuard;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::train::TrainParams;

    /// Three features with known effects; `intercept` sets the class balance.
    fn synthetic(rows: usize, intercept: f64) -> (Array2<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut x = Array2::<f64>::zeros((rows, 3));
        let mut advanced = Vec::with_capacity(rows);
        for mut row in x.rows_mut() {
            row[0] = rng.random_range(-2.0..2.0);
            row[1] = f64::from(u8::from(rng.random_bool(0.4)));
            row[2] = rng.random_range(0.0..1.0);
            let logit = intercept + row[0] - 0.5 * row[1] + 0.3 * row[2];
            advanced.push(rng.random_bool(sigmoid(logit)));
        }
        (x, advanced)
    }

    fn max_difference(left: &Array1<f64>, right: &Array1<f64>) -> f64 {
        left.iter().zip(right).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn column_major_copies_every_value() {
        let x = Array2::from_shape_fn((TRANSPOSE_BLOCK_ROWS * 2 + 77, 5), |(row, column)| (row * 10 + column) as f64);
        let copy = column_major(&x);
        assert_eq!(copy, x);
        assert!(copy.t().is_standard_layout(), "not column-major");
    }

    #[test]
    fn linfa_orientation_is_predicted_for_majorities_and_ties() {
        let x = Array2::from_shape_fn((4, 1), |(row, _)| row as f64);
        let label_sets = [
            [true, true, true, false],
            [false, true, false, false],
            [true, false, false, true],
            [false, true, true, false],
        ];
        for labels in label_sets {
            let dataset = DatasetBase::new(x.clone(), Array1::from(labels.to_vec()));
            let fitted = LogisticRegression::default().max_iterations(5).fit(&dataset).expect("fit");
            assert_eq!(fitted.labels().pos.class, linfa_positive_is_advanced(&labels), "labels {labels:?}");
        }
    }

    #[test]
    fn a_fit_started_at_its_solution_stays_there() {
        // Either class in the majority: a start given in the wrong orientation
        // would be far from the solution and move.
        for intercept in [-1.0, 1.0] {
            let (x, advanced) = synthetic(2_000, intercept);
            let zero = Array1::zeros(4);
            let solution = solve(x.view(), &advanced, 1.0, 1e-9, 200, &zero).expect("fit from zero");
            let again = solve(x.view(), &advanced, 1.0, 1e-9, 1, &solution).expect("fit from the solution");
            assert!(max_difference(&solution, &again) < 1e-6, "intercept {intercept}: {solution} then {again}");
        }
    }

    #[test]
    fn the_subsample_start_is_near_the_answer_and_leads_to_it() {
        let (x, advanced) = synthetic(WARM_START_STRIDE * 1_000, -0.5);
        let params = TrainParams::default().check().expect("valid params");
        let start = subsample_start(&x, &advanced, 1.0, &params);
        let zero = Array1::zeros(4);
        let cold = solve(x.view(), &advanced, 1.0, 1e-9 * x.nrows() as f64, 200, &zero).expect("cold fit");
        let warm = solve(x.view(), &advanced, 1.0, 1e-9 * x.nrows() as f64, 200, &start).expect("warm fit");
        assert!(max_difference(&start, &cold) < 0.25, "start {start}, answer {cold}");
        assert!(max_difference(&start, &zero) > 0.25, "start {start} is not a fit");
        assert!(max_difference(&warm, &cold) < 1e-6, "warm {warm}, cold {cold}");
    }
}
