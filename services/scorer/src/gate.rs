//! The activation gate: a new model replaces the active one only when it
//! beats the stage baseline on held-out data and is not clearly worse than
//! the model it would replace.

/// The gate's decision, with the reason recorded in the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub activate: bool,
    pub reason: String,
}

/// `active` is the version and held-out AUC of the currently active model.
pub fn decide(
    model_auc: Option<f64>,
    baseline_auc: Option<f64>,
    active: Option<(i64, Option<f64>)>,
    tolerance: f64,
) -> Verdict {
    let refuse = |reason: String| Verdict { activate: false, reason };
    let Some(model_auc) = model_auc else {
        return refuse("no held-out AUC: the validation split lacked a class; kept as candidate".to_owned());
    };
    let Some(baseline_auc) = baseline_auc else {
        return refuse("no held-out AUC for the stage baseline; kept as candidate".to_owned());
    };
    if model_auc < baseline_auc {
        return refuse(format!("held-out AUC {model_auc:.3} is below the stage baseline's {baseline_auc:.3}"));
    }
    match active {
        Some((version, Some(active_auc))) if model_auc < active_auc - tolerance => refuse(format!(
            "held-out AUC {model_auc:.3} is worse than active model {version}'s {active_auc:.3} by more than {tolerance}"
        )),
        Some((version, active_auc)) => Verdict {
            activate: true,
            reason: format!(
                "held-out AUC {model_auc:.3} >= baseline {baseline_auc:.3} and within {tolerance} of model {version} ({})",
                active_auc.map(|auc| format!("{auc:.3}")).unwrap_or_else(|| "unmeasured".to_owned())
            ),
        },
        None => Verdict {
            activate: true,
            reason: format!("held-out AUC {model_auc:.3} >= baseline {baseline_auc:.3}; first active model"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_below_the_baseline_stays_a_candidate() {
        let verdict = decide(Some(0.60), Some(0.64), None, 0.01);
        assert!(!verdict.activate);
        assert!(verdict.reason.contains("below the stage baseline"), "{}", verdict.reason);
    }

    #[test]
    fn a_model_clearly_worse_than_the_active_one_stays_a_candidate() {
        let verdict = decide(Some(0.70), Some(0.60), Some((3, Some(0.75))), 0.01);
        assert!(!verdict.activate);
        assert!(verdict.reason.contains("active model 3"), "{}", verdict.reason);
    }

    #[test]
    fn a_model_within_tolerance_of_the_active_one_replaces_it() {
        assert!(decide(Some(0.745), Some(0.60), Some((3, Some(0.75))), 0.01).activate);
        assert!(decide(Some(0.70), Some(0.60), None, 0.01).activate);
    }

    #[test]
    fn a_model_without_evaluation_is_never_activated() {
        assert!(!decide(None, Some(0.6), None, 0.01).activate);
    }
}
