//! End to end on a synthetic pipeline where cold calls and idle leads leak.

use funnel_scoring::{
    Error, ExampleCollector, OpportunityHistory, ReasonCode, Status, TrainParams, TrainedModel, TrainingOutcome, score,
    train_model, train_on_examples, training_examples,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::support::{activity, day, move_to, opportunity, stages};

pub(crate) const NOW: f64 = 420.0;

/// 600 opportunities over a year. Each visit lasts 2-30 days and advances
/// with probability 0.8, times 0.3 for cold calls and times 0.35 when
/// nobody works the lead (no activities). Owners and industries are noise.
pub(crate) fn synthetic_histories() -> Vec<OpportunityHistory> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let keys = ["lead", "qualified", "proposal", "won"];
    let sources = ["referral", "web", "cold_call"];
    let mut histories = Vec::new();
    for index in 0..600 {
        let created = f64::from(index) * 0.6;
        let source = sources[index as usize % 3];
        let mut history = opportunity(&format!("o{index}"), source, "lead", created);
        history.owner = ["ann", "bob", "cy", "di"][rng.random_range(0..4)].to_owned();
        let industry = ["retail", "tech", "health"][rng.random_range(0..3)];
        history.attributes.insert("industry".into(), industry.into());
        let employees = rng.random_range(5..5_000).to_string();
        history.attributes.insert("employees".into(), employees);
        let worked = rng.random_bool(0.6);
        let mut at = created;
        for stage_index in 0..3 {
            let length = rng.random_range(2.0..30.0);
            if worked {
                let mut touch = at + rng.random_range(0.5..3.0);
                while touch < at + length {
                    activity(&mut history, touch);
                    touch += rng.random_range(1.0..6.0);
                }
            }
            at += length;
            if at > NOW {
                break; // still open now
            }
            let mut p_advance: f64 = 0.8;
            if source == "cold_call" {
                p_advance *= 0.3;
            }
            if !worked {
                p_advance *= 0.35;
            }
            if !rng.random_bool(p_advance) {
                move_to(&mut history, at, keys[stage_index], Status::Leaked);
                break;
            }
            let status = if stage_index == 2 { Status::Won } else { Status::Open };
            move_to(&mut history, at, keys[stage_index + 1], status);
        }
        histories.push(history);
    }
    histories
}

fn trained() -> TrainedModel {
    let outcome =
        train_model(&synthetic_histories(), &stages(), &TrainParams::default(), day(NOW)).expect("training runs");
    match outcome {
        TrainingOutcome::Trained(model) => model,
        TrainingOutcome::InsufficientData { counts, .. } => panic!("too little data: {counts:?}"),
    }
}

#[test]
fn the_model_beats_the_stage_baseline_and_explains_a_flagged_lead() {
    let model = trained();
    assert!(model.converged, "gradient norm {}", model.gradient_norm);
    let evaluation = model.evaluation.as_ref().expect("a validation split");
    let model_auc = evaluation.model.roc_auc.expect("both classes");
    let baseline_auc = evaluation.baseline.roc_auc.expect("both classes");
    assert!(model_auc > baseline_auc + 0.15, "model AUC {model_auc} versus baseline {baseline_auc}");
    assert!(evaluation.model.log_loss < evaluation.baseline.log_loss);
    assert!(evaluation.model.brier < evaluation.baseline.brier);
    assert_eq!(evaluation.alpha_trials.len(), 4);
    assert_eq!(evaluation.model.calibration.len(), 10);

    // A cold call nobody has touched for three weeks.
    let idle = opportunity("idle", "cold_call", "qualified", NOW - 21.0);
    let idle_score = score(&model, &idle, &stages(), day(NOW)).expect("score");
    assert!(idle_score.leak_flag, "p_advance {}", idle_score.p_advance);
    assert!(idle_score.reasons.contains(&ReasonCode::LowScore));
    assert!(idle_score.reasons.contains(&ReasonCode::NoRecentActivity));
    let named: Vec<&str> = idle_score.factors_down.iter().map(|factor| factor.feature.as_str()).collect();
    assert!(named.contains(&"source=cold_call"), "factors down: {named:?}");
    assert!(idle_score.factors_down.len() <= 3);
    let magnitudes: Vec<f64> = idle_score.factors_down.iter().map(|factor| factor.contribution.abs()).collect();
    assert!(magnitudes.windows(2).all(|pair| pair[0] >= pair[1]));

    // A referral worked yesterday scores far higher and is not flagged.
    let mut busy = opportunity("busy", "referral", "qualified", NOW - 5.0);
    activity(&mut busy, NOW - 1.0);
    let busy_score = score(&model, &busy, &stages(), day(NOW)).expect("score");
    assert!(!busy_score.leak_flag);
    assert!(busy_score.p_advance > idle_score.p_advance + 0.3);
    assert!(busy_score.p_win_estimate < busy_score.p_advance, "proposal still ahead");
}

#[test]
fn a_model_read_back_from_json_scores_identically() {
    let model = trained();
    let json = model.to_json().expect("serialize");
    let restored = TrainedModel::from_json(&json).expect("deserialize");
    assert_eq!(restored, model);
    let lead = opportunity("x", "web", "lead", NOW - 3.0);
    let original = score(&model, &lead, &stages(), day(NOW)).expect("score");
    let again = score(&restored, &lead, &stages(), day(NOW)).expect("score");
    assert_eq!(original, again);
    assert!(json.contains("\"source=cold_call\""), "columns are named");
    assert!(json.contains("\"attr.employees\""), "numeric attribute detected");
}

#[test]
fn a_corrupt_model_is_an_error() {
    assert!(matches!(TrainedModel::from_json("{"), Err(Error::Json(_))));
}

#[test]
fn training_is_deterministic() {
    assert_eq!(trained(), trained());
}

/// The scorer streams histories a batch at a time into a collector; below
/// `max_examples`, what it trains on must not depend on the batches, nor on
/// their order.
#[test]
fn examples_collected_in_batches_train_the_same_model() {
    let histories = synthetic_histories();
    let (params, now) = (TrainParams::default(), day(NOW));
    let mut collector = ExampleCollector::new(&stages(), &params, now).expect("valid parameters");
    for batch in histories.chunks(77).rev() {
        collector.add(batch).expect("examples");
    }
    let collected = collector.finish();
    assert_eq!(collected, training_examples(&histories, &stages(), &params, now).expect("examples"));
    let outcome = train_on_examples(collected, &stages(), &params, now).expect("training runs");
    assert_eq!(outcome, TrainingOutcome::Trained(trained()));
}
