//! The change feed: every mutation appends its events in its own
//! transaction, and each event gets a gap-free sequence number in commit
//! order from the one-row `event_counter`.
//!
//! On SQLite, whose writers are serialized by [`Store::write_lock`], the
//! writer bumps the counter and numbers its events itself, as the last
//! statement before commit. On PostgreSQL that would hold the counter's row
//! lock through every commit; writers insert their events unnumbered
//! instead and a short round numbers them after the commit
//! (`sequencer.rs`). Either way a watcher that has read up to n never
//! misses an event committed later with a smaller number.

use chrono::{DateTime, Utc};
use funnel_domain::{OpportunityId, PipelineName, TransitionKind};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use tokio::sync::watch;

use crate::time::{from_micros, to_micros};
use crate::{Backend, Result, Store, StoreError};

/// At most this many opportunity ids are listed in a scores event.
pub const MAX_IDS_PER_SCORES_EVENT: usize = 100;

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    PipelineCreated,
    PipelineUpdated,
    OpportunityCreated,
    OpportunityImported,
    OpportunityUpdated,
    OpportunityAdvanced,
    OpportunityMovedBack,
    OpportunityWon,
    OpportunityLeaked,
    OpportunityReopened,
    ActivityLogged,
    ScoresChanged,
    ModelRegistered,
    ModelActivated,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::PipelineCreated,
        EventKind::PipelineUpdated,
        EventKind::OpportunityCreated,
        EventKind::OpportunityImported,
        EventKind::OpportunityUpdated,
        EventKind::OpportunityAdvanced,
        EventKind::OpportunityMovedBack,
        EventKind::OpportunityWon,
        EventKind::OpportunityLeaked,
        EventKind::OpportunityReopened,
        EventKind::ActivityLogged,
        EventKind::ScoresChanged,
        EventKind::ModelRegistered,
        EventKind::ModelActivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PipelineCreated => "pipeline_created",
            EventKind::PipelineUpdated => "pipeline_updated",
            EventKind::OpportunityCreated => "opportunity_created",
            EventKind::OpportunityImported => "opportunity_imported",
            EventKind::OpportunityUpdated => "opportunity_updated",
            EventKind::OpportunityAdvanced => "opportunity_advanced",
            EventKind::OpportunityMovedBack => "opportunity_moved_back",
            EventKind::OpportunityWon => "opportunity_won",
            EventKind::OpportunityLeaked => "opportunity_leaked",
            EventKind::OpportunityReopened => "opportunity_reopened",
            EventKind::ActivityLogged => "activity_logged",
            EventKind::ScoresChanged => "scores_changed",
            EventKind::ModelRegistered => "model_registered",
            EventKind::ModelActivated => "model_activated",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    /// The event of a stage change (the creation row has its own event).
    pub(crate) fn of_transition(kind: TransitionKind) -> Self {
        match kind {
            TransitionKind::Created => EventKind::OpportunityCreated,
            TransitionKind::Advanced => EventKind::OpportunityAdvanced,
            TransitionKind::MovedBack => EventKind::OpportunityMovedBack,
            TransitionKind::Won => EventKind::OpportunityWon,
            TransitionKind::Leaked => EventKind::OpportunityLeaked,
            TransitionKind::Reopened => EventKind::OpportunityReopened,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub sequence: i64,
    pub kind: EventKind,
    pub pipeline: String,
    pub opportunity_id: Option<OpportunityId>,
    /// A JSON object; its fields depend on the kind.
    pub payload: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// Which events a reader wants; empty means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub pipeline: Option<PipelineName>,
    pub kinds: Vec<EventKind>,
}

/// An event to append, built by the repository that makes the change.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub kind: EventKind,
    pub pipeline: String,
    pub opportunity_id: Option<OpportunityId>,
    pub payload: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

pub(crate) mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        pub event_type: String,
        pub pipeline: String,
        pub opportunity_id: Option<Uuid>,
        pub payload: String,
        pub occurred_at: i64,
        pub recorded_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Numbers and inserts `events` in the caller's transaction (SQLite). Call
/// it as the last thing before commit.
pub(crate) async fn append_events(txn: &DatabaseTransaction, events: Vec<NewEvent>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len() as i64;
    let bump = Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE event_counter SET value = value + $1 WHERE id = 1 RETURNING value",
        [count.into()],
    );
    let Some(row) = txn.query_one_raw(bump).await? else {
        return Err(StoreError::Internal("the event_counter row is missing".to_owned()));
    };
    let last: i64 = row.try_get("", "value")?;
    let recorded_at = to_micros(Utc::now());
    let mut rows = Vec::with_capacity(events.len());
    for (offset, new) in (0i64..).zip(events) {
        rows.push(event::ActiveModel {
            sequence: Set(last - count + 1 + offset),
            event_type: Set(new.kind.as_str().to_owned()),
            pipeline: Set(new.pipeline),
            opportunity_id: Set(new.opportunity_id.map(|id| id.uuid())),
            payload: Set(new.payload.to_string()),
            occurred_at: Set(to_micros(new.occurred_at)),
            recorded_at: Set(recorded_at),
        });
    }
    crate::bulk::insert_all(txn, rows, "").await
}

/// Tells this process's watchers that events were committed.
pub(crate) type EventSignal = watch::Sender<u64>;

impl Store {
    /// Appends `events` and commits: the one way a mutation ends, so that
    /// this process's watchers are woken right after the commit.
    pub(crate) async fn commit_with_events(&self, txn: DatabaseTransaction, events: Vec<NewEvent>) -> Result<()> {
        let any = !events.is_empty();
        match self.backend() {
            Backend::Sqlite => append_events(&txn, events).await?,
            Backend::Postgres => crate::sequencer::append_pending(&txn, events).await?,
        }
        txn.commit().await?;
        if any {
            self.events_landed();
        }
        Ok(())
    }

    /// After a commit that wrote events: on SQLite they are numbered
    /// already and this process's watchers are woken; on PostgreSQL a round
    /// numbers them in the background (and wakes them).
    pub(crate) fn events_landed(&self) {
        match self.backend() {
            Backend::Sqlite => self.event_signal.send_modify(|commits| *commits = commits.wrapping_add(1)),
            Backend::Postgres => self.ask_for_round(),
        }
    }

    /// Changes whenever this process commits events. Writes of other
    /// processes (the scorer, other replicas) are not signalled: poll too.
    pub fn subscribe_events(&self) -> watch::Receiver<u64> {
        self.event_signal.subscribe()
    }

    /// The latest sequence number handed out (0 before the first event),
    /// once every event committed before the call is numbered.
    pub async fn last_event_sequence(&self) -> Result<i64> {
        self.number_pending_events().await?;
        let statement =
            Statement::from_string(self.db.get_database_backend(), "SELECT value FROM event_counter WHERE id = 1");
        let Some(row) = self.db.query_one_raw(statement).await? else {
            return Err(StoreError::Internal("the event_counter row is missing".to_owned()));
        };
        Ok(row.try_get("", "value")?)
    }

    /// Up to `limit` events after sequence `after` matching `filter`, in
    /// sequence order, once every event committed before the call is
    /// numbered.
    pub async fn events_after(&self, after: i64, filter: &EventFilter, limit: u64) -> Result<Vec<EventRecord>> {
        self.number_pending_events().await?;
        let mut query = event::Entity::find()
            .filter(event::Column::Sequence.gt(after))
            .order_by_asc(event::Column::Sequence)
            .limit(limit);
        if let Some(pipeline) = &filter.pipeline {
            query = query.filter(event::Column::Pipeline.eq(pipeline.as_str()));
        }
        if !filter.kinds.is_empty() {
            query = query.filter(event::Column::EventType.is_in(filter.kinds.iter().map(|kind| kind.as_str())));
        }
        let rows = query.all(&self.db).await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let kind = EventKind::parse(&row.event_type)
                .ok_or_else(|| StoreError::Internal(format!("unknown event type {:?}", row.event_type)))?;
            events.push(EventRecord {
                sequence: row.sequence,
                kind,
                pipeline: row.pipeline,
                opportunity_id: row.opportunity_id.map(OpportunityId::from_uuid),
                payload: row.payload,
                occurred_at: from_micros(row.occurred_at),
                recorded_at: from_micros(row.recorded_at),
            });
        }
        Ok(events)
    }
}

/// The events each mutation appends, in one place so that payloads stay
/// consistent.
pub(crate) mod new {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use funnel_domain::{PipelineName, Transition};
    use serde_json::json;

    use super::{EventKind, MAX_IDS_PER_SCORES_EVENT, NewEvent};
    use crate::model::{Activity, Opportunity, Pipeline};
    use crate::registry::ModelRecord;
    use crate::scores::LeadScoreRecord;

    fn amount(opportunity: &Opportunity) -> serde_json::Value {
        match &opportunity.amount {
            Some(money) => json!({ "currency_code": money.currency_code, "amount_minor": money.amount_minor }),
            None => serde_json::Value::Null,
        }
    }

    pub(crate) fn opportunity_created(opportunity: &Opportunity, kind: EventKind) -> NewEvent {
        let state = &opportunity.state;
        NewEvent {
            kind,
            pipeline: opportunity.pipeline.to_string(),
            opportunity_id: Some(opportunity.id),
            payload: json!({
                "stage": state.stage.as_str(),
                "status": state.status.as_str(),
                "title": opportunity.title,
                "owner": opportunity.owner,
                "source": opportunity.source,
                "amount": amount(opportunity),
                "external_id": opportunity.external_id,
                "version": opportunity.version,
            }),
            occurred_at: if kind == EventKind::OpportunityImported { state.last_change_at } else { state.created_at },
        }
    }

    pub(crate) fn opportunity_updated(opportunity: &Opportunity, fields: &[&str]) -> NewEvent {
        NewEvent {
            kind: EventKind::OpportunityUpdated,
            pipeline: opportunity.pipeline.to_string(),
            opportunity_id: Some(opportunity.id),
            payload: json!({
                "fields": fields,
                "title": opportunity.title,
                "owner": opportunity.owner,
                "source": opportunity.source,
                "amount": amount(opportunity),
                "version": opportunity.version,
            }),
            occurred_at: opportunity.updated_at,
        }
    }

    pub(crate) fn stage_changed(opportunity: &Opportunity, row: &Transition) -> NewEvent {
        NewEvent {
            kind: EventKind::of_transition(row.kind),
            pipeline: opportunity.pipeline.to_string(),
            opportunity_id: Some(opportunity.id),
            payload: json!({
                "from_stage": row.from_stage.as_ref().map(|stage| stage.as_str()),
                "to_stage": row.to_stage.as_str(),
                "from_status": row.from_status.map(|status| status.as_str()),
                "to_status": row.to_status.as_str(),
                "reason": row.reason,
                "actor": row.actor,
                "history_sequence": row.sequence,
                "version": opportunity.version,
            }),
            occurred_at: row.occurred_at,
        }
    }

    pub(crate) fn activity_logged(pipeline: &PipelineName, activity: &Activity) -> NewEvent {
        NewEvent {
            kind: EventKind::ActivityLogged,
            pipeline: pipeline.to_string(),
            opportunity_id: Some(activity.opportunity_id),
            payload: json!({
                "activity_id": activity.id.to_string(),
                "kind": activity.kind.as_str(),
                "actor": activity.actor,
            }),
            occurred_at: activity.occurred_at,
        }
    }

    /// One event per pipeline of a batch, listing at most
    /// [`MAX_IDS_PER_SCORES_EVENT`] ids so that an event stays small.
    pub(crate) fn scores_changed(scores: &[LeadScoreRecord]) -> Vec<NewEvent> {
        let mut by_pipeline: BTreeMap<&str, Vec<&LeadScoreRecord>> = BTreeMap::new();
        for score in scores {
            by_pipeline.entry(&score.pipeline).or_default().push(score);
        }
        let mut events = Vec::with_capacity(by_pipeline.len());
        for (pipeline, batch) in by_pipeline {
            let ids: Vec<String> =
                batch.iter().take(MAX_IDS_PER_SCORES_EVENT).map(|score| score.opportunity_id.to_string()).collect();
            let mut versions: Vec<i64> = batch.iter().map(|score| score.model_version).collect();
            versions.sort_unstable();
            versions.dedup();
            let flagged = batch.iter().filter(|score| score.leak_flag).count();
            let scored_at = batch.iter().map(|score| score.scored_at).max().unwrap_or_else(Utc::now);
            events.push(NewEvent {
                kind: EventKind::ScoresChanged,
                pipeline: pipeline.to_owned(),
                opportunity_id: None,
                payload: json!({
                    "count": batch.len(),
                    "flagged": flagged,
                    "model_versions": versions,
                    "opportunity_ids": ids,
                    "truncated": batch.len() > MAX_IDS_PER_SCORES_EVENT,
                }),
                occurred_at: scored_at,
            });
        }
        events
    }

    pub(crate) fn model_changed(model: &ModelRecord, kind: EventKind, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            kind,
            pipeline: model.pipeline.to_string(),
            opportunity_id: None,
            payload: json!({
                "version": model.version,
                "status": model.status.as_str(),
                "reason": model.status_reason,
                "roc_auc": model.roc_auc,
            }),
            occurred_at: at,
        }
    }

    pub(crate) fn pipeline_changed(pipeline: &Pipeline, kind: EventKind) -> NewEvent {
        let stages: Vec<serde_json::Value> = pipeline
            .def
            .stages()
            .iter()
            .map(|stage| json!({ "key": stage.key.as_str(), "rot_after_days": stage.rot_after_days }))
            .collect();
        NewEvent {
            kind,
            pipeline: pipeline.def.name.to_string(),
            opportunity_id: None,
            payload: json!({
                "display_name": pipeline.def.display_name,
                "stages": stages,
                "version": pipeline.version,
            }),
            occurred_at: pipeline.updated_at,
        }
    }
}
