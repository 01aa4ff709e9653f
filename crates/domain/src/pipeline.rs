use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_SHORT_TEXT, MAX_STAGES, check_text};
use crate::{DomainError, PipelineName, Result, StageKey};

/// One stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageDef {
    pub key: StageKey,
    pub display_name: String,
    /// An open opportunity idle in the stage longer than this is stale.
    pub rot_after_days: Option<u32>,
}

/// A validated pipeline: at least two stages, unique keys; the last stage is
/// the won stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDef {
    pub name: PipelineName,
    pub display_name: String,
    stages: Vec<StageDef>,
}

impl PipelineDef {
    pub fn new(name: PipelineName, display_name: String, stages: Vec<StageDef>) -> Result<Self> {
        check_text("display_name", &display_name, MAX_SHORT_TEXT)?;
        check_stages(&stages)?;
        let display_name = if display_name.trim().is_empty() { name.to_string() } else { display_name };
        Ok(Self { name, display_name, stages })
    }

    pub fn stages(&self) -> &[StageDef] {
        &self.stages
    }

    pub fn position(&self, key: &StageKey) -> Option<usize> {
        self.stages.iter().position(|stage| &stage.key == key)
    }

    pub fn first_stage(&self) -> &StageKey {
        &self.stages[0].key
    }

    pub fn won_stage(&self) -> &StageKey {
        &self.stages[self.stages.len() - 1].key
    }

    pub fn is_won_stage(&self, key: &StageKey) -> bool {
        self.won_stage() == key
    }

    /// Looks a stage up by key, or says which keys exist.
    pub fn require_stage(&self, field: &str, key: &StageKey) -> Result<usize> {
        self.position(key).ok_or_else(|| {
            let known: Vec<&str> = self.stages.iter().map(|stage| stage.key.as_str()).collect();
            DomainError::invalid(
                field,
                format!("pipeline {} has no stage {key} (its stages: {})", self.name, known.join(", ")),
            )
        })
    }

    /// Compares this pipeline's stages with a proposed new list.
    pub fn stage_change(&self, new_stages: &[StageDef]) -> StageChange {
        let new_keys: HashSet<&StageKey> = new_stages.iter().map(|stage| &stage.key).collect();
        let old_keys: HashSet<&StageKey> = self.stages.iter().map(|stage| &stage.key).collect();
        let removed =
            self.stages.iter().filter(|stage| !new_keys.contains(&stage.key)).map(|s| s.key.clone()).collect();
        // A surviving stage is reordered when the set of surviving stages before
        // it differs: that is what changes its meaning for the opportunities in it.
        let old_order: Vec<&StageKey> = self.stages.iter().map(|s| &s.key).filter(|k| new_keys.contains(k)).collect();
        let new_order: Vec<&StageKey> = new_stages.iter().map(|s| &s.key).filter(|k| old_keys.contains(k)).collect();
        let mut reordered = Vec::new();
        for (new_index, key) in new_order.iter().enumerate() {
            let Some(old_index) = old_order.iter().position(|old| old == key) else { continue };
            let before_old: HashSet<&&StageKey> = old_order[..old_index].iter().collect();
            let before_new: HashSet<&&StageKey> = new_order[..new_index].iter().collect();
            if before_old != before_new {
                reordered.push((*key).clone());
            }
        }
        let won_stage_changed = new_stages.last().map(|stage| &stage.key) != Some(self.won_stage());
        StageChange { removed, reordered, won_stage_changed }
    }

    /// Replaces the stage list; the caller has checked [`Self::stage_change`]
    /// against the opportunities it affects.
    pub fn with_stages(&self, stages: Vec<StageDef>) -> Result<Self> {
        check_stages(&stages)?;
        Ok(Self { name: self.name.clone(), display_name: self.display_name.clone(), stages })
    }
}

/// What replacing a pipeline's stage list would do to existing stages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageChange {
    pub removed: Vec<StageKey>,
    pub reordered: Vec<StageKey>,
    pub won_stage_changed: bool,
}

fn check_stages(stages: &[StageDef]) -> Result<()> {
    if stages.len() < 2 {
        return Err(DomainError::invalid(
            "stages",
            "a pipeline needs at least two stages; the last one is the won stage",
        ));
    }
    if stages.len() > MAX_STAGES {
        return Err(DomainError::invalid("stages", format!("at most {MAX_STAGES} stages, got {}", stages.len())));
    }
    let mut seen = HashSet::new();
    for (index, stage) in stages.iter().enumerate() {
        if !seen.insert(&stage.key) {
            return Err(DomainError::invalid(
                format!("stages[{index}].key"),
                format!("stage key {} is used twice", stage.key),
            ));
        }
        check_text(&format!("stages[{index}].display_name"), &stage.display_name, MAX_SHORT_TEXT)?;
        if stage.rot_after_days == Some(0) || stage.rot_after_days.is_some_and(|days| days > 3650) {
            return Err(DomainError::invalid(
                format!("stages[{index}].rot_after_days"),
                "must be between 1 and 3650 days",
            ));
        }
    }
    Ok(())
}

/// The classic funnel every fresh database starts with.
pub fn default_pipeline() -> PipelineDef {
    let stage = |key: &str, display_name: &str| StageDef {
        key: StageKey::parse("stages", key).expect("built-in stage keys are valid"),
        display_name: display_name.to_owned(),
        rot_after_days: None,
    };
    PipelineDef {
        name: PipelineName::parse("name", "sales").expect("built-in pipeline name is valid"),
        display_name: "Sales".to_owned(),
        stages: vec![
            stage("prospect", "Prospect"),
            stage("qualified", "Qualified"),
            stage("committed", "Committed"),
            stage("transacted", "Transacted"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(keys: &[&str]) -> Vec<StageDef> {
        keys.iter()
            .map(|key| StageDef {
                key: StageKey::parse("k", key).expect("test key"),
                display_name: String::new(),
                rot_after_days: None,
            })
            .collect()
    }

    #[test]
    fn adding_a_stage_in_the_middle_reorders_nothing() {
        let change =
            default_pipeline().stage_change(&stages(&["prospect", "demo", "qualified", "committed", "transacted"]));
        assert_eq!(change, StageChange::default());
    }

    #[test]
    fn swapping_two_stages_reorders_both() {
        let change = default_pipeline().stage_change(&stages(&["qualified", "prospect", "committed", "transacted"]));
        let keys: Vec<&str> = change.reordered.iter().map(StageKey::as_str).collect();
        assert_eq!(keys, ["qualified", "prospect"]);
    }

    #[test]
    fn removing_a_stage_and_the_won_stage_is_reported() {
        let change = default_pipeline().stage_change(&stages(&["prospect", "qualified", "committed"]));
        let removed: Vec<&str> = change.removed.iter().map(StageKey::as_str).collect();
        assert_eq!(removed, ["transacted"]);
        assert!(change.won_stage_changed);
    }

    #[test]
    fn duplicate_keys_name_the_second_one() {
        let error =
            PipelineDef::new(PipelineName::parse("name", "p").expect("valid"), String::new(), stages(&["a", "b", "a"]))
                .expect_err("duplicate");
        assert!(matches!(error, DomainError::InvalidArgument { ref field, .. } if field == "stages[2].key"));
    }
}
