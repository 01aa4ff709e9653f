//! Too little data, or odd data: cold start or errors, never panics.

use funnel_scoring::{
    Error, PRIOR_ADVANCE_RATE, ReasonCode, Status, TrainParams, TrainingOutcome, baseline_only_score, train_model,
};

use crate::support::{day, move_to, opportunity, stages};

#[test]
fn few_examples_give_insufficient_data_and_a_baseline_score() {
    let mut histories = Vec::new();
    for index in 0..6 {
        let mut history = opportunity(&format!("o{index}"), "web", "lead", 0.0);
        // Two of three leads advance.
        if index % 3 == 0 {
            move_to(&mut history, 3.0, "lead", Status::Leaked);
        } else {
            move_to(&mut history, 3.0, "qualified", Status::Open);
        }
        // NaN-ish and odd attributes must not break anything.
        history.attributes.insert("employees".into(), "NaN".into());
        histories.push(history);
    }
    let outcome = train_model(&histories, &stages(), &TrainParams::default(), day(10.0)).expect("training runs");
    let TrainingOutcome::InsufficientData { counts, baseline } = outcome else {
        panic!("six examples are not enough");
    };
    assert_eq!((counts.advanced, counts.leaked), (4, 2));
    // Smoothed: (4 + 1) / (6 + 2).
    assert!((baseline.rate("lead") - 5.0 / 8.0).abs() < 1e-12);

    let open = opportunity("new", "web", "lead", 9.0);
    let lead_score = baseline_only_score(&baseline, &open, &stages(), day(10.0)).expect("score");
    assert!((lead_score.p_advance - 5.0 / 8.0).abs() < 1e-12);
    assert!(lead_score.reasons.contains(&ReasonCode::InsufficientData));
    assert!(!lead_score.leak_flag);

    // No history for "proposal": the prior.
    let later = opportunity("later", "web", "proposal", 9.0);
    let prior_score = baseline_only_score(&baseline, &later, &stages(), day(10.0)).expect("score");
    assert_eq!(prior_score.p_advance, PRIOR_ADVANCE_RATE);
}

#[test]
fn no_histories_at_all_is_a_cold_start() {
    let outcome = train_model(&[], &stages(), &TrainParams::default(), day(0.0)).expect("runs");
    assert!(matches!(
        outcome,
        TrainingOutcome::InsufficientData { counts, .. } if counts.advanced == 0 && counts.leaked == 0
    ));
}

#[test]
fn a_single_class_never_trains() {
    let histories: Vec<_> = (0..100)
        .map(|index| {
            let mut history = opportunity(&format!("o{index}"), "web", "lead", 0.0);
            move_to(&mut history, 3.0, "qualified", Status::Open);
            history
        })
        .collect();
    let params = TrainParams::default().min_examples_per_class(1);
    let outcome = train_model(&histories, &stages(), &params, day(10.0)).expect("runs");
    assert!(matches!(outcome, TrainingOutcome::InsufficientData { .. }));
}

#[test]
fn duplicate_stages_are_rejected() {
    let mut pipeline = stages();
    pipeline.push(pipeline[0].clone());
    let result = train_model(&[], &pipeline, &TrainParams::default(), day(0.0));
    assert!(matches!(result, Err(Error::DuplicateStage { key }) if key == "lead"));
}

#[test]
fn a_configured_rot_point_overrides_the_learned_one() {
    let mut pipeline = stages();
    pipeline[0].rot_after_days = Some(2);
    let mut history = opportunity("o1", "web", "lead", 0.0);
    move_to(&mut history, 5.0, "qualified", Status::Open);
    let outcome = train_model(&[history], &pipeline, &TrainParams::default(), day(6.0)).expect("runs");
    let TrainingOutcome::InsufficientData { baseline, .. } = outcome else {
        panic!("one example is not enough");
    };
    assert_eq!(baseline.rot_days("lead"), Some(2.0));
    let stale = opportunity("stale", "web", "lead", 0.0);
    let stale_score = baseline_only_score(&baseline, &stale, &pipeline, day(3.0)).expect("score");
    assert!(stale_score.reasons.contains(&ReasonCode::StaleInStage));
    // "qualified" learned nothing (no visit finished there).
    assert_eq!(baseline.rot_days("qualified"), None);
}
