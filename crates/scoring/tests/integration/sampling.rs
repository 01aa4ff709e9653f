//! Training keeps at most `max_examples`: a uniform, repeatable sample.

use funnel_scoring::{Example, ExampleCollector, TrainParams, TrainedModel, TrainingOutcome, train_on_examples};

use linfa::ParamGuard;

use crate::support::{day, stages};
use crate::synthetic::{NOW, synthetic_histories};

type Key = (String, String, u32, i64);

fn key(example: &Example) -> Key {
    (
        example.opportunity_id.to_string(),
        example.stage.clone(),
        example.snapshot_index,
        example.snapshot_at.timestamp_micros(),
    )
}

/// A collector keeping at most `max_examples`, fed in batches of 77
/// opportunities, and the key of every example it was offered, batch by
/// batch (within a batch in time order: any fixed order of the examples
/// works for judging a uniform sample).
fn collect(max_examples: usize) -> (ExampleCollector, Vec<Key>) {
    let params = TrainParams::default().max_examples(max_examples);
    let mut collector = ExampleCollector::new(&stages(), &params, day(NOW)).expect("valid parameters");
    let mut offered = Vec::new();
    for batch in synthetic_histories().chunks(77) {
        let mut one = ExampleCollector::new(&stages(), &TrainParams::default(), day(NOW)).expect("valid parameters");
        one.add(batch).expect("examples");
        offered.extend(one.finish().iter().map(key));
        collector.add(batch).expect("examples");
    }
    (collector, offered)
}

#[test]
fn past_max_examples_a_collector_keeps_a_uniform_sample() {
    let (full, offered) = collect(usize::MAX);
    let total = offered.len();
    assert_eq!(full.seen(), total as u64);
    assert_eq!(full.len(), total, "below the cap everything is kept");
    let cap = total / 2;
    assert!(cap >= 1_000, "{total} examples are too few to judge a sample");
    let (sampled, _) = collect(cap);
    assert_eq!(sampled.seen(), total as u64);
    assert_eq!(sampled.len(), cap);

    let kept: Vec<Key> = sampled.finish().iter().map(key).collect();
    let mut unique = kept.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), cap, "an example was kept twice");
    let position = |wanted: &Key| offered.iter().position(|key| key == wanted).expect("a kept example was offered");
    let positions: Vec<usize> = kept.iter().map(position).collect();
    // Uniform: each quarter of the examples offered holds about a quarter of
    // the sample. Keeping the first ones, or favouring the latest, fails this.
    for quarter in 0..4 {
        let range = quarter * total / 4..(quarter + 1) * total / 4;
        let share = positions.iter().filter(|at| range.contains(at)).count() as f64 / cap as f64;
        assert!((share - 0.25).abs() < 0.04, "quarter {quarter} holds {share:.3} of the sample");
    }
}

#[test]
fn the_sample_repeats_and_trains_a_model_on_it() {
    let (total, _) = collect(usize::MAX);
    let cap = total.len() / 3;
    let advanced_share = |examples: &[Example]| {
        examples.iter().filter(|example| example.advanced).count() as f64 / examples.len() as f64
    };
    let everything = total.finish();
    let (first, _) = collect(cap);
    let (second, _) = collect(cap);
    let (first, second) = (first.finish(), second.finish());
    assert_eq!(first, second, "same histories in the same order, same sample");
    let (all_share, sample_share) = (advanced_share(&everything), advanced_share(&first));
    assert!((all_share - sample_share).abs() < 0.03, "advance rate {all_share:.3} overall, {sample_share:.3} sampled");

    let params = TrainParams::default().max_examples(cap);
    let outcome = train_on_examples(first, &stages(), &params, day(NOW)).expect("training runs");
    let TrainingOutcome::Trained(model) = outcome else { panic!("too little data") };
    assert_eq!(model.counts.advanced + model.counts.leaked, cap);
    let roc_auc = model.evaluation.as_ref().and_then(|evaluation| evaluation.model.roc_auc).expect("held-out AUC");
    assert!(roc_auc > 0.7, "held-out AUC {roc_auc}");
}

/// Models stored before `max_examples` existed were trained on everything.
#[test]
fn a_model_stored_without_max_examples_still_loads() {
    let (collector, _) = collect(usize::MAX);
    let outcome = train_on_examples(collector.finish(), &stages(), &TrainParams::default(), day(NOW)).expect("runs");
    let TrainingOutcome::Trained(model) = outcome else { panic!("too little data") };
    let mut json: serde_json::Value = serde_json::from_str(&model.to_json().expect("json")).expect("parses");
    let params = json["params"].as_object_mut().expect("params are an object");
    assert!(params.remove("max_examples").is_some(), "params name max_examples: {params:?}");
    let loaded = TrainedModel::from_json(&json.to_string()).expect("an older model loads");
    assert_eq!(loaded.params, TrainParams::default().max_examples(usize::MAX).check().expect("valid"));
    assert_eq!(loaded.coefficients, model.coefficients);
}
