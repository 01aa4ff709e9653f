//! Per-stage history: advance rates (the baseline predictor and the cold
//! start) and rot points (when an opportunity counts as stale).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::examples::Example;
use crate::history::{Pipeline, StageInfo};

/// Probability used for a stage with no history at all.
pub const PRIOR_ADVANCE_RATE: f64 = 0.5;

/// How often visits of one stage advanced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRate {
    pub visits: usize,
    pub advanced: usize,
    /// `(advanced + 1) / (visits + 2)`: smoothed so a stage seen twice does
    /// not get a certain 0 or 1.
    pub rate: f64,
}

/// Where a rot point comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotSource {
    /// The stage's `rot_after_days`.
    Configured,
    /// A quantile of days-to-advance of visits that advanced.
    Learned,
}

/// Days in a stage after which an open opportunity is stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotPoint {
    pub days: f64,
    pub source: RotSource,
    /// Advanced visits the learned value is based on.
    pub advanced_visits: usize,
}

/// Everything known per stage without a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageBaseline {
    /// Stage keys in pipeline order (the last is the won stage).
    pub stage_order: Vec<String>,
    pub rates: BTreeMap<String, StageRate>,
    pub rot_points: BTreeMap<String, RotPoint>,
    /// Smoothed advance rate over all visits.
    pub overall_advance_rate: f64,
}

/// Linear-interpolation quantile of `values` (sorted here), as numpy's default.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let position = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let fraction = position - lower as f64;
    Some(values[lower] + (values[upper] - values[lower]) * fraction)
}

fn smoothed(advanced: usize, visits: usize) -> f64 {
    (advanced as f64 + 1.0) / (visits as f64 + 2.0)
}

impl StageBaseline {
    /// Computes rates and rot points from examples. Each visit counts once,
    /// through its entry snapshot (`snapshot_index == 0`).
    pub fn from_examples(examples: &[&Example], stages: &[StageInfo], rot_quantile: f64) -> Result<Self> {
        let mut tally = BaselineTally::default();
        tally.add(examples.iter().copied());
        tally.finish(stages, rot_quantile)
    }
}

/// What a [`StageBaseline`] is computed from, gathered a batch of examples at
/// a time: visits and advances per stage, and the days each advanced visit
/// took (8 bytes per advanced visit, instead of every history in memory).
#[derive(Debug, Clone, Default)]
pub struct BaselineTally {
    counts: BTreeMap<String, (usize, usize)>,
    days_to_advance: BTreeMap<String, Vec<f64>>,
}

impl BaselineTally {
    /// Counts the first snapshot of each visit among `examples`.
    pub fn add<'a>(&mut self, examples: impl IntoIterator<Item = &'a Example>) {
        for example in examples.into_iter().filter(|example| example.snapshot_index == 0) {
            let entry = self.counts.entry(example.stage.clone()).or_default();
            entry.0 += 1;
            if example.advanced {
                entry.1 += 1;
                self.days_to_advance.entry(example.stage.clone()).or_default().push(example.visit_days);
            }
        }
    }

    /// The baseline of everything added.
    pub fn finish(self, stages: &[StageInfo], rot_quantile: f64) -> Result<StageBaseline> {
        let pipeline = Pipeline::new(stages)?;
        let Self { counts, mut days_to_advance } = self;
        let mut rates = BTreeMap::new();
        let (mut all_visits, mut all_advanced) = (0, 0);
        for (stage, (visits, advanced)) in counts {
            all_visits += visits;
            all_advanced += advanced;
            let rate = smoothed(advanced, visits);
            rates.insert(stage, StageRate { visits, advanced, rate });
        }
        let mut rot_points = BTreeMap::new();
        for key in pipeline.keys() {
            let mut days = days_to_advance.remove(key).unwrap_or_default();
            let advanced_visits = days.len();
            let point = match (pipeline.configured_rot(key), quantile(&mut days, rot_quantile)) {
                (Some(configured), _) => {
                    RotPoint { days: f64::from(configured), source: RotSource::Configured, advanced_visits }
                }
                (None, Some(learned)) => RotPoint { days: learned, source: RotSource::Learned, advanced_visits },
                (None, None) => continue,
            };
            rot_points.insert(key.clone(), point);
        }
        Ok(StageBaseline {
            stage_order: pipeline.keys().to_vec(),
            rates,
            rot_points,
            overall_advance_rate: smoothed(all_advanced, all_visits),
        })
    }
}

impl StageBaseline {
    /// The stage's advance rate, or the 0.5 prior for a stage never seen.
    pub fn rate(&self, stage: &str) -> f64 {
        self.rates.get(stage).map_or(PRIOR_ADVANCE_RATE, |stage_rate| stage_rate.rate)
    }

    /// Chance of getting from the stage after `stage` to won: the product of
    /// advance rates of the stages strictly between `stage` and the won
    /// stage. A stage without history uses the overall rate; an unknown
    /// stage gives 1 (nothing is known about what follows).
    pub fn later_conversion(&self, stage: &str) -> f64 {
        let Some(position) = self.stage_order.iter().position(|key| key == stage) else {
            return 1.0;
        };
        let won_position = self.stage_order.len().saturating_sub(1);
        let mut conversion = 1.0;
        for key in self.stage_order.iter().take(won_position).skip(position + 1) {
            conversion *= self.rates.get(key).map_or(self.overall_advance_rate, |stage_rate| stage_rate.rate);
        }
        conversion
    }

    /// The stage's rot point in days, if any.
    pub fn rot_days(&self, stage: &str) -> Option<f64> {
        self.rot_points.get(stage).map(|point| point.days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_like_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], 0.9) == 7.6
        let mut values = vec![10.0, 1.0, 3.0, 2.0, 4.0];
        let value = quantile(&mut values, 0.9).expect("non-empty");
        assert!((value - 7.6).abs() < 1e-12);
        assert_eq!(quantile(&mut [], 0.9), None);
    }

    fn example(stage: &str, snapshot_index: u32, visit_days: f64, advanced: bool) -> Example {
        let at = chrono::DateTime::UNIX_EPOCH;
        Example {
            opportunity_id: "".into(),
            stage: stage.to_owned(),
            snapshot_at: at,
            snapshot_index,
            resolved_at: at,
            visit_days,
            advanced,
            row: crate::examples::FeatureRow {
                categorical: Default::default(),
                numeric: BTreeMap::new(),
                attributes: Default::default(),
            },
        }
    }

    #[test]
    fn a_tally_fed_in_batches_gives_the_baseline_of_all_the_examples() {
        let stages: Vec<StageInfo> = ["prospect", "qualified", "won"]
            .map(|key| StageInfo { key: key.to_owned(), rot_after_days: None })
            .to_vec();
        let examples: Vec<Example> = (0..40)
            .map(|i| {
                let stage = if i % 3 == 0 { "qualified" } else { "prospect" };
                example(stage, u32::from(i % 4 == 1), f64::from(i % 9) + 0.5, i % 5 != 0)
            })
            .collect();
        let all: Vec<&Example> = examples.iter().collect();
        let whole = StageBaseline::from_examples(&all, &stages, 0.9).expect("baseline");

        let mut tally = BaselineTally::default();
        for batch in examples.chunks(7) {
            tally.add(batch);
        }
        assert_eq!(tally.finish(&stages, 0.9).expect("baseline"), whole);
        assert!(whole.rates["prospect"].visits > 0 && whole.rot_points.contains_key("qualified"), "{whole:?}");
    }
}
