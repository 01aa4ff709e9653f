//! Batched reads of opportunities with their history, for the scorer: one
//! query for a page of opportunities, one for their transitions, one for
//! their activities (when scoring, only for those active since the window's
//! start), so memory stays bounded by the batch size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use funnel_domain::{ActivityKind, OpportunityId, PipelineName, Status, Transition};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, RelationTrait};
use uuid::Uuid;

use crate::entity::{opportunity, transition};
use crate::opportunities::{from_row, history_from_row};
use crate::time::{from_micros, to_micros};
use crate::{Opportunity, OpportunityFilter, Result, Store, StoreError, history_reads, opportunity_reads};

/// Which activities a history batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivitySpan {
    /// Every one: what training learns from.
    All,
    /// Those at or after the moment, and the time of each opportunity's
    /// latest one before it ([`OpportunityHistory::earlier_activity_at`]):
    /// all that scoring at one moment looks at, a small part of a long
    /// history.
    Since(DateTime<Utc>),
}

/// An opportunity with everything the scorer learns from.
#[derive(Debug, Clone)]
pub struct OpportunityHistory {
    pub opportunity: Opportunity,
    /// In sequence order.
    pub transitions: Vec<Transition>,
    /// `(occurred_at, kind)` in time order: all of them, or those of an
    /// [`ActivitySpan::Since`].
    pub activities: Vec<(DateTime<Utc>, ActivityKind)>,
    /// With [`ActivitySpan::Since`], when the latest activity before the
    /// moment occurred, if there is one; `None` with [`ActivitySpan::All`].
    pub earlier_activity_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Up to `limit` opportunities of a pipeline with ids after `after`, in id
    /// order, with their transitions and the activities of `span`; only those
    /// with `status` when given.
    pub async fn history_batch(
        &self,
        pipeline: &PipelineName,
        status: Option<Status>,
        after: Option<OpportunityId>,
        limit: u64,
        span: ActivitySpan,
    ) -> Result<Vec<OpportunityHistory>> {
        let filter = OpportunityFilter { pipeline: Some(pipeline.clone()), status, ..OpportunityFilter::default() };
        let rows = opportunity_reads::page(self, &filter, after.map(|id| id.uuid()), limit).await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        // An opportunity with no activity since the moment has the time of
        // its latest on its row; only the others need the activities table.
        // One logged after the row was read waits for the next run, as one
        // logged after the activities were read always did.
        let mut earlier: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
        let since = match span {
            ActivitySpan::All => None,
            ActivitySpan::Since(since) => Some(to_micros(since)),
        };
        let mut active = Vec::new();
        if let Some(since) = since {
            for row in &rows {
                match row.last_activity_at {
                    Some(at) if at >= since => active.push(row.id),
                    Some(at) => {
                        earlier.insert(row.id, from_micros(at));
                    }
                    None => {}
                }
            }
        }
        // Two connections at once, so the database works on both.
        let activity_rows = async {
            match since {
                None => history_reads::activities(self, &ids).await,
                Some(since) => history_reads::activities_since(self, &active, since).await,
            }
        };
        let (transition_rows, activity_rows) = tokio::try_join!(history_reads::transitions(self, &ids), activity_rows)?;
        let mut transitions: HashMap<Uuid, Vec<Transition>> = HashMap::new();
        for row in transition_rows {
            let history = history_from_row(row)?;
            transitions.entry(history.opportunity_id.uuid()).or_default().push(history.transition);
        }
        let mut activities: HashMap<Uuid, Vec<(DateTime<Utc>, ActivityKind)>> = HashMap::new();
        for row in activity_rows {
            if row.earlier {
                earlier.insert(row.opportunity_id, from_micros(row.occurred_at));
                continue;
            }
            let kind = ActivityKind::parse(&row.kind)
                .ok_or_else(|| StoreError::Internal(format!("unknown activity kind {:?}", row.kind)))?;
            activities.entry(row.opportunity_id).or_default().push((from_micros(row.occurred_at), kind));
        }
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id;
            batch.push(OpportunityHistory {
                opportunity: from_row(row)?,
                transitions: transitions.remove(&id).unwrap_or_default(),
                activities: activities.remove(&id).unwrap_or_default(),
                earlier_activity_at: earlier.remove(&id),
            });
        }
        Ok(batch)
    }

    /// Outcomes (advances, wins, leaks, moves back) recorded in a pipeline
    /// since `since`: what decides an event-triggered retrain.
    pub async fn outcomes_since(&self, pipeline: &PipelineName, since: DateTime<Utc>) -> Result<u64> {
        let count = transition::Entity::find()
            .join(sea_orm::JoinType::InnerJoin, transition::Relation::Opportunity.def())
            .filter(opportunity::Column::Pipeline.eq(pipeline.as_str()))
            .filter(transition::Column::Kind.is_in(["advanced", "moved_back", "won", "leaked"]))
            .filter(transition::Column::RecordedAt.gt(to_micros(since)))
            .count(&self.db)
            .await?;
        Ok(count)
    }

    /// When any opportunity of the pipeline last changed; the scorer rescores
    /// soon after this moves.
    pub async fn last_change(&self, pipeline: &PipelineName) -> Result<Option<DateTime<Utc>>> {
        let latest: Option<Option<i64>> = opportunity::Entity::find()
            .select_only()
            .column_as(opportunity::Column::UpdatedAt.max(), "latest")
            .filter(opportunity::Column::Pipeline.eq(pipeline.as_str()))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(latest.flatten().map(from_micros))
    }
}

impl Store {
    /// Opportunities of a pipeline, optionally only those with `status`.
    pub async fn count_opportunities(&self, pipeline: &PipelineName, status: Option<Status>) -> Result<u64> {
        let mut query = opportunity::Entity::find().filter(opportunity::Column::Pipeline.eq(pipeline.as_str()));
        if let Some(status) = status {
            query = query.filter(opportunity::Column::Status.eq(status.as_str()));
        }
        Ok(query.count(&self.db).await?)
    }
}
