//! Store rows -> the scoring crate's plain input types.

use funnel_domain::{PipelineDef, Status as DomainStatus};
use funnel_scoring::{ActivityRecord, OpportunityHistory, StageInfo, Status, TransitionRecord};
use funnel_store::OpportunityHistory as StoredHistory;

pub fn stages(pipeline: &PipelineDef) -> Vec<StageInfo> {
    pipeline
        .stages()
        .iter()
        .map(|stage| StageInfo { key: stage.key.to_string(), rot_after_days: stage.rot_after_days })
        .collect()
}

fn status(status: DomainStatus) -> Status {
    match status {
        DomainStatus::Open => Status::Open,
        DomainStatus::Won => Status::Won,
        DomainStatus::Leaked => Status::Leaked,
    }
}

pub fn history(stored: StoredHistory) -> OpportunityHistory {
    let StoredHistory { opportunity, transitions, activities, earlier_activity_at } = stored;
    OpportunityHistory {
        id: opportunity.id.to_string(),
        owner: opportunity.owner,
        source: opportunity.source,
        amount_minor: opportunity.amount.map(|money| money.amount_minor).unwrap_or_default(),
        attributes: opportunity.attributes,
        created_at: opportunity.state.created_at,
        transitions: transitions
            .into_iter()
            .map(|row| TransitionRecord {
                occurred_at: row.occurred_at,
                from_stage: row.from_stage.map(|stage| stage.to_string()),
                to_stage: row.to_stage.to_string(),
                to_status: status(row.to_status),
            })
            .collect(),
        // The latest before a window, if any, then the window's, in time order.
        activities: earlier_activity_at
            .into_iter()
            .chain(activities.into_iter().map(|(occurred_at, _)| occurred_at))
            .map(|occurred_at| ActivityRecord { occurred_at })
            .collect(),
    }
}
