//! Evaluation of predicted advance probabilities against outcomes.
//!
//! The positive class is "advanced" throughout; leak precision is about the
//! negative class.

use serde::{Deserialize, Serialize};

/// Probabilities are clipped to [EPS, 1 - EPS] in the log loss, as
/// scikit-learn does, so one confident miss gives a large but finite loss.
const EPS: f64 = 1e-15;

/// Summary metrics of one predictor on one data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub count: usize,
    pub advanced: usize,
    /// `None` when only one class is present.
    pub roc_auc: Option<f64>,
    /// Average precision for the advanced class; `None` without positives.
    pub pr_auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    pub calibration: Vec<CalibrationBin>,
}

/// One of ten equal-width bins of predicted probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// 0 for [0, 0.1), ..., 9 for [0.9, 1].
    pub bin: usize,
    pub count: usize,
    /// `None` for an empty bin.
    pub mean_predicted: Option<f64>,
    /// Share that advanced; `None` for an empty bin.
    pub observed_rate: Option<f64>,
}

/// The probability below which an opportunity is flagged as leaking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakThreshold {
    /// Flag when `p_advance < threshold`.
    pub threshold: f64,
    pub target_precision: f64,
    /// Share of flagged examples that really leaked.
    pub precision: f64,
    /// Share of leaked examples that were flagged.
    pub recall: f64,
    pub flagged: usize,
    /// False when no threshold reached the target; `threshold` then has the
    /// best precision found.
    pub target_reached: bool,
}

/// Computes all metrics. `predicted` and `advanced` have equal length.
pub fn evaluate(predicted: &[f64], advanced: &[bool]) -> Metrics {
    Metrics {
        count: predicted.len(),
        advanced: advanced.iter().filter(|label| **label).count(),
        roc_auc: roc_auc(predicted, advanced),
        pr_auc: average_precision(predicted, advanced),
        log_loss: log_loss(predicted, advanced),
        brier: brier(predicted, advanced),
        calibration: calibration(predicted, advanced, 10),
    }
}

/// Indices sorted by descending prediction; NaN sorts last (least confident).
fn descending(predicted: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|&a, &b| predicted[b].total_cmp(&predicted[a]));
    order
}

/// Groups of tied predictions in descending order: (positives, negatives).
fn tied_groups(predicted: &[f64], advanced: &[bool]) -> Vec<(usize, usize)> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut previous: Option<f64> = None;
    for index in descending(predicted) {
        let value = predicted[index];
        if previous.is_none_or(|last| last.total_cmp(&value).is_ne()) {
            groups.push((0, 0));
        }
        previous = Some(value);
        if let Some(group) = groups.last_mut() {
            if advanced[index] {
                group.0 += 1;
            } else {
                group.1 += 1;
            }
        }
    }
    groups
}

/// ROC AUC: the chance a random positive is ranked above a random negative,
/// ties counting one half.
pub fn roc_auc(predicted: &[f64], advanced: &[bool]) -> Option<f64> {
    let groups = tied_groups(predicted, advanced);
    let positives: usize = groups.iter().map(|group| group.0).sum();
    let negatives: usize = groups.iter().map(|group| group.1).sum();
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Walk from the highest score down: each negative ranks below every
    // positive seen so far and ties with the positives in its own group.
    let mut positives_above = 0.0;
    let mut wins = 0.0;
    for (group_positives, group_negatives) in groups {
        let tied = group_positives as f64;
        wins += group_negatives as f64 * (positives_above + 0.5 * tied);
        positives_above += tied;
    }
    Some(wins / (positives as f64 * negatives as f64))
}

/// Average precision (scikit-learn's definition): the sum over thresholds of
/// precision times the gain in recall, tied scores forming one threshold.
pub fn average_precision(predicted: &[f64], advanced: &[bool]) -> Option<f64> {
    let groups = tied_groups(predicted, advanced);
    let positives: usize = groups.iter().map(|group| group.0).sum();
    if positives == 0 {
        return None;
    }
    let mut true_positives = 0_usize;
    let mut flagged = 0_usize;
    let mut area = 0.0;
    for (group_positives, group_negatives) in groups {
        true_positives += group_positives;
        flagged += group_positives + group_negatives;
        let precision = true_positives as f64 / flagged as f64;
        area += precision * group_positives as f64 / positives as f64;
    }
    Some(area)
}

/// Mean negative log-likelihood; NaN predictions count as 0.5.
pub fn log_loss(predicted: &[f64], advanced: &[bool]) -> f64 {
    if predicted.is_empty() {
        return 0.0;
    }
    let mut total = 0.0;
    for (p, label) in predicted.iter().zip(advanced) {
        let clipped = sanitize(*p).clamp(EPS, 1.0 - EPS);
        total -= if *label { clipped.ln() } else { (1.0 - clipped).ln() };
    }
    total / predicted.len() as f64
}

/// Mean squared error of the probability.
pub fn brier(predicted: &[f64], advanced: &[bool]) -> f64 {
    if predicted.is_empty() {
        return 0.0;
    }
    let mut total = 0.0;
    for (p, label) in predicted.iter().zip(advanced) {
        total += (sanitize(*p) - f64::from(u8::from(*label))).powi(2);
    }
    total / predicted.len() as f64
}

fn sanitize(probability: f64) -> f64 {
    if probability.is_nan() { 0.5 } else { probability.clamp(0.0, 1.0) }
}

/// Equal-width calibration table with `bins` bins over [0, 1].
pub fn calibration(predicted: &[f64], advanced: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut sums = vec![(0_usize, 0.0, 0_usize); bins];
    for (p, label) in predicted.iter().zip(advanced) {
        let probability = sanitize(*p);
        let bin = ((probability * bins as f64) as usize).min(bins - 1);
        sums[bin].0 += 1;
        sums[bin].1 += probability;
        sums[bin].2 += usize::from(*label);
    }
    let mut table = Vec::with_capacity(bins);
    for (bin, (count, predicted_sum, advanced_count)) in sums.into_iter().enumerate() {
        let denominator = count as f64;
        table.push(CalibrationBin {
            bin,
            count,
            mean_predicted: (count > 0).then(|| predicted_sum / denominator),
            observed_rate: (count > 0).then(|| advanced_count as f64 / denominator),
        });
    }
    table
}

/// Chooses the leak threshold: the largest one whose leak precision reaches
/// `target_precision` (flagging as many leaks as possible), else the one
/// with the best precision. `None` without examples.
pub fn choose_leak_threshold(predicted: &[f64], advanced: &[bool], target_precision: f64) -> Option<LeakThreshold> {
    let total_leaked = advanced.iter().filter(|label| !**label).count();
    // Ascending order: flagging "p < t" flags a prefix of it.
    let mut order = descending(predicted);
    order.reverse();
    let mut best: Option<LeakThreshold> = None;
    let mut flagged = 0_usize;
    let mut leaked = 0_usize;
    for (position, &index) in order.iter().enumerate() {
        flagged += 1;
        leaked += usize::from(!advanced[index]);
        let value = sanitize(predicted[index]);
        let next = order.get(position + 1).map(|&next| sanitize(predicted[next]));
        if next.is_some_and(|next_value| next_value <= value) {
            continue; // Ties are flagged together.
        }
        let threshold = next.map_or(value.next_up(), |next_value| 0.5 * (value + next_value));
        let candidate = LeakThreshold {
            threshold,
            target_precision,
            precision: leaked as f64 / flagged as f64,
            recall: leaked as f64 / total_leaked.max(1) as f64,
            flagged,
            target_reached: leaked as f64 / flagged as f64 >= target_precision,
        };
        let better = match &best {
            None => true,
            Some(_) if candidate.target_reached => true,
            Some(current) => !current.target_reached && candidate.precision > current.precision,
        };
        if better {
            best = Some(candidate);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_and_a_reversed_ranking() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // Pairs (pos, neg): (0.8,0.1) win, (0.8,0.4) win, (0.4,0.1) win,
        // (0.4,0.4) tie: 3.5 / 4.
        let auc = roc_auc(&[0.1, 0.4, 0.4, 0.8], &[false, false, true, true]);
        assert_eq!(auc, Some(0.875));
        assert_eq!(roc_auc(&[0.3, 0.3], &[true, true]), None);
    }

    #[test]
    fn average_precision_matches_hand_computation() {
        // Ranked: pos, neg, pos: precision 1 at recall 0.5, 2/3 at recall 1.
        let ap = average_precision(&[0.9, 0.5, 0.3], &[true, false, true]).expect("has positives");
        assert!((ap - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn brier_and_log_loss_match_hand_computation() {
        let predicted = [0.8, 0.4];
        let labels = [true, false];
        assert!((brier(&predicted, &labels) - (0.04 + 0.16) / 2.0).abs() < 1e-12);
        let expected = -(0.8_f64.ln() + 0.6_f64.ln()) / 2.0;
        assert!((log_loss(&predicted, &labels) - expected).abs() < 1e-12);
        // A confident miss stays finite thanks to clipping.
        assert!(log_loss(&[1.0], &[false]).is_finite());
    }

    #[test]
    fn calibration_puts_probabilities_in_their_bins() {
        let table = calibration(&[0.05, 0.15, 0.12, 1.0], &[false, true, false, true], 10);
        assert_eq!(table.len(), 10);
        assert_eq!(table[1].count, 2);
        assert_eq!(table[1].observed_rate, Some(0.5));
        assert_eq!(table[9].count, 1, "1.0 belongs to the last bin");
        assert_eq!(table[5].mean_predicted, None);
    }

    #[test]
    fn leak_threshold_is_the_widest_reaching_the_target_precision() {
        // Ascending: 0.1 leak, 0.2 leak, 0.3 adv, 0.4 leak, 0.9 adv.
        let predicted = [0.1, 0.2, 0.3, 0.4, 0.9];
        let labels = [false, false, true, false, true];
        let chosen = choose_leak_threshold(&predicted, &labels, 0.75).expect("has examples");
        // Flagging four gives 3/4 leaks: widest threshold at 0.75 precision.
        assert_eq!(chosen.flagged, 4);
        assert!((chosen.threshold - 0.65).abs() < 1e-12);
        assert!(chosen.target_reached);
        assert!((chosen.recall - 1.0).abs() < 1e-12);

        let unreachable = choose_leak_threshold(&[0.1, 0.2], &[true, false], 0.9).expect("has examples");
        assert!(!unreachable.target_reached);
        assert!((unreachable.precision - 0.5).abs() < 1e-12);
    }
}
