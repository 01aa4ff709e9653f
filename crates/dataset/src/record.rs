//! The generic import record: one opportunity with its full history. See
//! `FORMAT.md` in the crate directory for the wire format and its rules.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One opportunity with everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityRecord {
    /// Name of the pipeline ([`PipelineSpec::name`]) the opportunity runs in.
    pub pipeline: String,
    /// The source system's id; unique within a pipeline.
    pub external_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub account: String,
    /// The person who owns the opportunity (sales rep, agent).
    #[serde(default)]
    pub owner: String,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
    /// Amount in minor units of `currency` (cents for USD).
    pub amount_minor: i64,
    /// Lead source (`referral`, `cold_call`, ...); free text.
    #[serde(default)]
    pub source: String,
    /// Free-form features; values are never empty (absent means unknown).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// `history[0]` is the creation (entry into the first stage, open); each
    /// later entry is a change of stage or status.
    pub history: Vec<HistoryEntry>,
    #[serde(default)]
    pub activities: Vec<ActivityEntry>,
}

/// Where an opportunity stands after a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    Open,
    Won,
    /// Dropped out of the funnel (lost, disqualified, went silent).
    Leaked,
}

/// One change of stage or status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Stage key ([`StageSpec::key`]) the opportunity is in after the change.
    pub stage: String,
    pub status: RecordStatus,
    pub occurred_at: DateTime<Utc>,
    #[serde(default)]
    pub actor: String,
    /// Why it leaked; empty unless `status` is `leaked`.
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub note: String,
}

/// Kinds of touch points with the prospect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Note,
}

/// A touch point that did not change stage or status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub kind: ActivityKind,
    pub occurred_at: DateTime<Utc>,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub note: String,
}

/// A pipeline: an ordered list of stages; the last one is where deals are won.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSpec {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    pub stages: Vec<StageSpec>,
}

/// One stage of a [`PipelineSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpec {
    pub key: String,
    #[serde(default)]
    pub display_name: String,
    /// An open opportunity idle in this stage longer than this is "rotting".
    #[serde(default)]
    pub rot_after_days: Option<u32>,
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            RecordStatus::Open => "open",
            RecordStatus::Won => "won",
            RecordStatus::Leaked => "leaked",
        };
        formatter.write_str(text)
    }
}

impl fmt::Display for ActivityKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Note => "note",
        };
        formatter.write_str(text)
    }
}

impl FromStr for RecordStatus {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text {
            "open" => Ok(RecordStatus::Open),
            "won" => Ok(RecordStatus::Won),
            "leaked" => Ok(RecordStatus::Leaked),
            other => Err(format!("status {other:?} is not open, won or leaked")),
        }
    }
}

impl FromStr for ActivityKind {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text {
            "call" => Ok(ActivityKind::Call),
            "email" => Ok(ActivityKind::Email),
            "meeting" => Ok(ActivityKind::Meeting),
            "note" => Ok(ActivityKind::Note),
            other => Err(format!("activity kind {other:?} is not call, email, meeting or note")),
        }
    }
}

impl PipelineSpec {
    /// Position of a stage in the pipeline, if it belongs to it.
    pub fn stage_index(&self, key: &str) -> Option<usize> {
        self.stages.iter().position(|stage| stage.key == key)
    }
}

impl OpportunityRecord {
    /// Status after the last history entry (open for an empty history).
    pub fn final_status(&self) -> RecordStatus {
        self.history.last().map_or(RecordStatus::Open, |entry| entry.status)
    }

    /// Stage after the last history entry (empty for an empty history).
    pub fn final_stage(&self) -> &str {
        self.history.last().map_or("", |entry| entry.stage.as_str())
    }

    /// Checks the rules of FORMAT.md against `pipeline`. Importers call this
    /// after parsing: the readers only check the syntax.
    pub fn validate(&self, pipeline: &PipelineSpec) -> Result<()> {
        let invalid = |reason: String| Error::InvalidRecord { external_id: self.external_id.clone(), reason };
        if self.external_id.trim().is_empty() {
            return Err(invalid("external_id is empty".to_owned()));
        }
        if self.pipeline != pipeline.name {
            return Err(invalid(format!("pipeline {} is not {}", self.pipeline, pipeline.name)));
        }
        let currency_is_iso = self.currency.len() == 3 && self.currency.bytes().all(|byte| byte.is_ascii_uppercase());
        if !currency_is_iso {
            return Err(invalid(format!("currency {:?} is not ISO 4217", self.currency)));
        }
        if self.amount_minor < 0 {
            return Err(invalid(format!("amount_minor {} is negative", self.amount_minor)));
        }
        if let Some((name, _)) = self.attributes.iter().find(|(_, value)| value.is_empty()) {
            return Err(invalid(format!("attribute {name} is empty; omit it instead")));
        }
        self.validate_history(pipeline).map_err(invalid)?;
        let activity_times = self.activities.iter().map(|activity| activity.occurred_at);
        if !is_non_decreasing(activity_times) {
            return Err(invalid("activities are not in time order".to_owned()));
        }
        Ok(())
    }

    fn validate_history(&self, pipeline: &PipelineSpec) -> std::result::Result<(), String> {
        let Some(creation) = self.history.first() else {
            return Err("history is empty".to_owned());
        };
        let Some(first_stage) = pipeline.stages.first() else {
            return Err(format!("pipeline {} has no stages", pipeline.name));
        };
        if creation.stage != first_stage.key || creation.status != RecordStatus::Open {
            return Err(format!(
                "history[0] must be open in {}, found {} in {}",
                first_stage.key, creation.status, creation.stage
            ));
        }
        let last_index = self.history.len() - 1;
        for (index, entry) in self.history.iter().enumerate() {
            let Some(stage_index) = pipeline.stage_index(&entry.stage) else {
                return Err(format!("history[{index}] has unknown stage {}", entry.stage));
            };
            // Won is terminal and only reachable in the last stage.
            let is_last_stage = stage_index + 1 == pipeline.stages.len();
            if entry.status == RecordStatus::Won && (index != last_index || !is_last_stage) {
                return Err(format!("history[{index}] is won but not the final entry in the last stage"));
            }
            if entry.status != RecordStatus::Leaked && !entry.reason.is_empty() {
                return Err(format!("history[{index}] has a reason but did not leak"));
            }
        }
        let history_times = self.history.iter().map(|entry| entry.occurred_at);
        if !is_non_decreasing(history_times) {
            return Err("history is not in time order".to_owned());
        }
        Ok(())
    }
}

fn is_non_decreasing(times: impl Iterator<Item = DateTime<Utc>>) -> bool {
    let mut previous: Option<DateTime<Utc>> = None;
    for time in times {
        if previous.is_some_and(|earlier| time < earlier) {
            return false;
        }
        previous = Some(time);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::default_pipeline;

    fn record_with_history(history: Vec<HistoryEntry>) -> OpportunityRecord {
        OpportunityRecord {
            pipeline: "sales".to_owned(),
            external_id: "x-1".to_owned(),
            title: String::new(),
            account: String::new(),
            owner: String::new(),
            currency: "USD".to_owned(),
            amount_minor: 100,
            source: String::new(),
            attributes: BTreeMap::new(),
            history,
            activities: Vec::new(),
        }
    }

    fn entry(stage: &str, status: RecordStatus, day: u32) -> HistoryEntry {
        let occurred_at = format!("2024-01-{day:02}T00:00:00Z").parse().expect("literal timestamp parses");
        HistoryEntry {
            stage: stage.to_owned(),
            status,
            occurred_at,
            actor: String::new(),
            reason: String::new(),
            note: String::new(),
        }
    }

    #[test]
    fn won_outside_the_last_stage_is_rejected() {
        let record = record_with_history(vec![
            entry("prospect", RecordStatus::Open, 1),
            entry("qualified", RecordStatus::Won, 2),
        ]);
        let outcome = record.validate(&default_pipeline());
        assert!(matches!(outcome, Err(Error::InvalidRecord { reason, .. }) if reason.contains("won")));
    }

    #[test]
    fn history_must_start_open_in_the_first_stage_and_keep_time_order() {
        let starts_late = record_with_history(vec![entry("qualified", RecordStatus::Open, 1)]);
        assert!(starts_late.validate(&default_pipeline()).is_err());
        let goes_back_in_time = record_with_history(vec![
            entry("prospect", RecordStatus::Open, 5),
            entry("qualified", RecordStatus::Open, 4),
        ]);
        assert!(goes_back_in_time.validate(&default_pipeline()).is_err());
        let fine = record_with_history(vec![
            entry("prospect", RecordStatus::Open, 1),
            entry("prospect", RecordStatus::Leaked, 2),
            entry("prospect", RecordStatus::Open, 3),
            entry("transacted", RecordStatus::Won, 4),
        ]);
        fine.validate(&default_pipeline()).expect("reopen then win in the last stage is valid");
    }
}
