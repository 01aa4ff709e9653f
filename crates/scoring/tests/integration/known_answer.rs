//! The fit against coefficients computed by another tool.

use funnel_scoring::{TrainParams, ValidTrainParams, fit_logistic};
use linfa::ParamGuard;
use ndarray::{Array2, array};

/// 20 rows × 2 features; the first 12 leaked (0), the last 8 advanced (1).
fn data() -> (Array2<f64>, Vec<bool>) {
    let x = array![
        [-1.2, 0.4],
        [-0.8, -1.1],
        [-0.5, 0.9],
        [-1.6, 0.2],
        [-0.3, -0.7],
        [0.1, 1.3],
        [-0.9, -0.2],
        [-1.1, 1.0],
        [0.4, -1.4],
        [-0.2, 0.1],
        [0.6, -0.5],
        [-0.7, 0.6],
        [1.1, 0.3],
        [0.8, -0.9],
        [1.5, 0.7],
        [0.3, 1.2],
        [0.9, -0.1],
        [-0.4, 1.5],
        [1.3, -1.2],
        [0.2, 0.8]
    ];
    let labels = (0..20).map(|row| row >= 12).collect();
    (x, labels)
}

fn tight_params() -> ValidTrainParams {
    TrainParams::default().gradient_tolerance_per_example(1e-9).max_iterations(2_000).check().expect("valid params")
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-3, "{what}: got {actual}, scikit-learn says {expected}");
}

// linfa minimizes sum(logloss) + alpha/2 ||w||^2 with the intercept
// unpenalized; scikit-learn minimizes C * sum(logloss) + 1/2 ||w||^2, also
// without penalizing the intercept (lbfgs). So alpha = 1 / C.
// Computed with scikit-learn 1.9.1:
//   LogisticRegression(C=1/alpha, tol=1e-10, max_iter=10000).fit(X, y)
// with X, y as in `data()`; predict_proba(X[[0, 12, 17]])[:, 1].
#[test]
fn coefficients_and_probabilities_match_scikit_learn() {
    let cases = [
        // (alpha, coef, intercept, probabilities of rows 0, 12, 17)
        (1.0, [1.680_063_122_4, 0.597_793_193_1], -0.629_283_803_6, [0.082_697_928_8, 0.801_885_961_6, 0.400_203_02]),
        (4.0, [0.830_947_56, 0.241_401_08], -0.466_815_7, [0.203_041_48, 0.627_065_2, 0.392_433_84]),
    ];
    let (x, labels) = data();
    let params = tight_params();
    for (alpha, coef, intercept, probabilities) in cases {
        let fit = fit_logistic(&x, &labels, alpha, &params).expect("fit");
        assert!(fit.converged, "alpha {alpha}: gradient norm {}", fit.gradient_norm);
        assert_close(fit.weights[0], coef[0], "w0");
        assert_close(fit.weights[1], coef[1], "w1");
        assert_close(fit.intercept, intercept, "intercept");
        for (row, expected) in [0, 12, 17].into_iter().zip(probabilities) {
            assert_close(fit.probability(x.row(row)), expected, "probability");
        }
    }
}
