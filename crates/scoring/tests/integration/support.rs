//! Builders for histories used across the tests.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use funnel_scoring::{ActivityRecord, OpportunityHistory, StageInfo, Status, TransitionRecord};

/// Day `offset` after a fixed epoch, so tests never depend on the clock.
pub fn day(offset: f64) -> DateTime<Utc> {
    let epoch = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().expect("valid epoch");
    epoch + Duration::seconds((offset * 86_400.0) as i64)
}

/// lead -> qualified -> proposal -> won, nothing configured.
pub fn stages() -> Vec<StageInfo> {
    ["lead", "qualified", "proposal", "won"]
        .into_iter()
        .map(|key| StageInfo { key: key.to_owned(), rot_after_days: None })
        .collect()
}

/// A history created in `stage` on `created`, with no moves yet.
pub fn opportunity(id: &str, source: &str, stage: &str, created: f64) -> OpportunityHistory {
    OpportunityHistory {
        id: id.to_owned(),
        owner: "ann".to_owned(),
        source: source.to_owned(),
        amount_minor: 100_000,
        attributes: BTreeMap::new(),
        created_at: day(created),
        transitions: vec![TransitionRecord {
            occurred_at: day(created),
            from_stage: None,
            to_stage: stage.to_owned(),
            to_status: Status::Open,
        }],
        activities: Vec::new(),
    }
}

/// Appends a transition to `to_stage` with `status` on day `at`.
pub fn move_to(history: &mut OpportunityHistory, at: f64, to_stage: &str, status: Status) {
    let from = history.transitions.last().map(|record| record.to_stage.clone());
    history.transitions.push(TransitionRecord {
        occurred_at: day(at),
        from_stage: from,
        to_stage: to_stage.to_owned(),
        to_status: status,
    });
}

/// Appends an activity on day `at`.
pub fn activity(history: &mut OpportunityHistory, at: f64) {
    history.activities.push(ActivityRecord { occurred_at: day(at) });
}
