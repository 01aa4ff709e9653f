//! Times `fit_logistic` on a B5-sized matrix (issue 7) without a database.
//!
//! The matrix imitates what `FeatureSpec` produces for funnel's examples:
//! one-hot blocks (a column per kept value plus "other", so every block sums
//! to one) and standardized, clipped numerics with missing flags. It is
//! generated from a fixed seed, so every run sees the same numbers (the
//! scikit-learn comparison on real data is `funnel-bench b5`).
//!
//! usage: cargo run --release -p funnel-scoring --example b5_fit -- \
//!            [--rows N] [--runs K]

use std::time::Instant;

use anyhow::Context as _;
use funnel_scoring::{TrainParams, fit_logistic, roc_auc, sigmoid};
use linfa::ParamGuard;
use ndarray::{Array2, Axis, Slice};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The L2 weight B5 fits with.
const ALPHA: f64 = 1.0;
/// Levels of each categorical feature (one-hot columns = levels + "other").
const CATEGORY_LEVELS: [usize; 5] = [20, 10, 5, 3, 1];
/// Numeric features; the first two have missing values (and flag columns).
const NUMERIC_FEATURES: usize = 4;
const MISSING_FLAGS: usize = 2;

struct Args {
    rows: usize,
    runs: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { rows: 1_000_000, runs: 1 };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rows" => args.rows = value.parse()?,
            "--runs" => args.runs = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
    let angle: f64 = rng.random_range(0.0..std::f64::consts::TAU);
    (-2.0 * uniform.ln()).sqrt() * angle.cos()
}

/// A Zipf-like pick among `levels + 1` values, the last being "other".
fn skewed_level(rng: &mut ChaCha8Rng, levels: usize) -> usize {
    let draw: f64 = rng.random();
    ((draw * draw * (levels + 1) as f64) as usize).min(levels)
}

fn generate(rows: usize) -> (Array2<f64>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let one_hot_width: usize = CATEGORY_LEVELS.iter().map(|levels| levels + 1).sum();
    let width = one_hot_width + NUMERIC_FEATURES + MISSING_FLAGS;
    let level_effects: Vec<Vec<f64>> = CATEGORY_LEVELS
        .iter()
        .map(|levels| (0..=*levels).map(|_| 0.35 * standard_normal(&mut rng)).collect())
        .collect();
    let numeric_effects = [0.35, -0.25, 0.15, 0.0];
    let mut x = Array2::<f64>::zeros((rows, width));
    let mut labels = Vec::with_capacity(rows);
    for mut row in x.rows_mut() {
        let mut logit = -0.2;
        let mut column = 0;
        for (feature, levels) in CATEGORY_LEVELS.iter().enumerate() {
            let level = skewed_level(&mut rng, *levels);
            row[column + level] = 1.0;
            logit += level_effects[feature][level];
            column += levels + 1;
        }
        for (feature, effect) in numeric_effects.iter().enumerate() {
            // Log-normal-ish raw values, standardized and clipped like FeatureSpec.
            let raw = (0.8 * standard_normal(&mut rng)).exp();
            let standardized = ((raw - 1.377) / 1.2).clamp(-10.0, 10.0);
            let missing = feature < MISSING_FLAGS && rng.random_bool(0.15);
            if missing {
                row[one_hot_width + NUMERIC_FEATURES + feature] = 1.0;
            } else {
                row[column + feature] = standardized;
                logit += effect * standardized;
            }
        }
        logit += 0.2 * standard_normal(&mut rng);
        labels.push(rng.random_bool(sigmoid(logit)));
    }
    (x, labels)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (x, labels) = generate(args.rows);
    let cut = args.rows * 4 / 5;
    println!("{} x {}, {cut} to train, alpha {ALPHA}", x.nrows(), x.ncols());
    let x_train = x.slice_axis(Axis(0), Slice::from(..cut)).to_owned();
    let x_test = x.slice_axis(Axis(0), Slice::from(cut..)).to_owned();
    let (y_train, y_test) = labels.split_at(cut);
    let params = TrainParams::default().check()?;
    for _ in 0..args.runs {
        let started = Instant::now();
        let fit = fit_logistic(&x_train, y_train, ALPHA, &params)?;
        let seconds = started.elapsed().as_secs_f64();
        let auc = roc_auc(&fit.probabilities(&x_test), y_test).unwrap_or(f64::NAN);
        println!(
            "{{\"seconds\": {seconds:.3}, \"iterations\": {}, \"converged\": {}, \"gradient_norm\": {:.3e}, \"auc\": {auc:.5}}}",
            fit.iterations, fit.converged, fit.gradient_norm
        );
    }
    Ok(())
}
