//! Which class the probabilities are about, and honest convergence flags.

use funnel_scoring::{Error, TrainParams, fit_logistic};
use linfa::ParamGuard;
use linfa::dataset::DatasetBase;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

/// One feature; high values advance. 30 leaked versus 10 advanced, so the
/// majority class is "leaked".
fn majority_leaked() -> (Array2<f64>, Vec<bool>) {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for index in 0..40 {
        let advanced = index % 4 == 0;
        let noise = f64::from(index % 5) * 0.3;
        values.push(if advanced { 1.0 + noise } else { -0.5 + noise });
        labels.push(advanced);
    }
    let x = Array2::from_shape_vec((40, 1), values).expect("shape");
    (x, labels)
}

#[test]
fn probabilities_are_of_advancing_even_when_most_examples_leaked() {
    let (x, labels) = majority_leaked();
    let params = TrainParams::default().check().expect("valid params");
    let fit = fit_logistic(&x, &labels, 1.0, &params).expect("fit");
    assert!(fit.weights[0] > 0.0, "higher values advance more");
    let high = fit.probability(Array1::from(vec![2.0]).view());
    let low = fit.probability(Array1::from(vec![-1.0]).view());
    assert!(high > 0.5 && low < 0.5, "p(high) = {high}, p(low) = {low}");

    // linfa itself orients by frequency (rust-ml/linfa#393): its
    // probabilities are of "leaked" here, the complement of ours.
    let dataset = DatasetBase::new(x.clone(), Array1::from(labels.clone()));
    let linfa_model = LogisticRegression::default().alpha(1.0).fit(&dataset).expect("fit");
    assert!(!linfa_model.labels().pos.class, "positive class is the majority");
    let linfa_high = linfa_model.predict_probabilities(&Array2::from_elem((1, 1), 2.0))[0];
    assert!((linfa_high - (1.0 - high)).abs() < 1e-3);
}

#[test]
fn one_class_is_an_error_not_a_panic() {
    let x = Array2::from_elem((5, 1), 1.0);
    let params = TrainParams::default().check().expect("valid params");
    let result = fit_logistic(&x, &[true; 5], 1.0, &params);
    assert!(matches!(result, Err(Error::SingleClass { advanced: 5, leaked: 0 })));
}

#[test]
fn a_capped_solver_reports_that_it_did_not_converge() {
    let (x, labels) = majority_leaked();
    let capped =
        TrainParams::default().max_iterations(1).gradient_tolerance_per_example(1e-12).check().expect("valid params");
    let fit = fit_logistic(&x, &labels, 0.1, &capped).expect("fit");
    assert!(!fit.converged);
    assert_eq!(fit.iterations, 1);

    let default = TrainParams::default().check().expect("valid params");
    let fit = fit_logistic(&x, &labels, 0.1, &default).expect("fit");
    assert!(fit.converged, "gradient norm {}", fit.gradient_norm);
}

#[test]
fn invalid_parameters_are_rejected_by_name() {
    let result = TrainParams::default().alpha_grid(vec![1.0, f64::NAN]).check();
    assert!(matches!(result, Err(Error::InvalidParam { name: "alpha_grid", .. })));
    let result = TrainParams::default().validation_share(1.0).check();
    assert!(matches!(result, Err(Error::InvalidParam { name: "validation_share", .. })));
    let result = TrainParams::default().max_examples(0).check();
    assert!(matches!(result, Err(Error::InvalidParam { name: "max_examples", .. })));
}
