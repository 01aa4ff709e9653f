use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_domain::{
    DomainError, Money, OpportunityId, OpportunityState, PipelineDef, StageKey, Status, Transition, TransitionKind,
    apply, check_occurred_at, created, decide,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::entity::{opportunity, transition};
use crate::events::{self, EventKind};
use crate::model::{HistoryRow, NewOpportunity, Opportunity, OpportunityFilter, OpportunityPatch, Page, StageCommand};
use crate::pipelines::{PipelineStamp, corrupt, load as load_pipeline};
use crate::stage_write::{self, StageWrite};
use crate::time::{self, from_micros, to_micros};
use crate::{Result, Store, StoreError, opportunity_reads, page};

/// Attempts at a stage change the caller did not condition on an etag, when
/// a concurrent writer keeps winning the race.
const UNCONDITIONAL_ATTEMPTS: usize = 3;

/// A decided stage change, not yet written.
struct PlannedChange {
    opportunity: Opportunity,
    previous_version: i64,
    furthest_stage: String,
    row: Transition,
    previous_at: DateTime<Utc>,
    now: DateTime<Utc>,
}

impl Store {
    /// Creates an open opportunity and its creation history row in one
    /// transaction. A `request_id` seen before returns the first result.
    pub async fn create_opportunity(&self, new: NewOpportunity) -> Result<Opportunity> {
        let _writer = self.write_lock().await;
        if let Some(request_id) = &new.request_id
            && let Some(existing) = self.find_by_request_id(request_id).await?
        {
            return Ok(existing);
        }
        let txn = self.begin_write().await?;
        let pipeline = load_pipeline(&txn, new.pipeline.as_str()).await?.def;
        let stage = new.stage.clone().unwrap_or_else(|| pipeline.first_stage().clone());
        pipeline.require_stage("stage", &stage)?;
        if pipeline.is_won_stage(&stage) {
            return Err(DomainError::invalid(
                "stage",
                format!("{stage} is the won stage: create the opportunity earlier and move it"),
            )
            .into());
        }
        let now = time::now();
        let occurred_at = new.occurred_at.map(time::truncate).unwrap_or(now);
        check_occurred_at("occurred_at", occurred_at, None, now)?;
        let first = Transition {
            sequence: 1,
            from_stage: None,
            to_stage: stage,
            from_status: None,
            to_status: Status::Open,
            kind: TransitionKind::Created,
            occurred_at,
            actor: new.actor.clone(),
            reason: String::new(),
            note: new.note.clone(),
        };
        let state = created(&first)?;
        let opportunity = Opportunity {
            id: OpportunityId::new_v7(),
            pipeline: new.pipeline.clone(),
            state,
            title: new.title,
            account: new.account,
            owner: new.owner,
            amount: new.amount,
            source: new.source,
            external_id: new.external_id,
            attributes: new.attributes,
            version: 1,
            updated_at: now,
        };
        let mut row = to_row(&opportunity, new.request_id.clone());
        row.furthest_stage = Set(Some(opportunity.state.stage.to_string()));
        let insert = opportunity::Entity::insert(row).exec_without_returning(&txn).await;
        if let Err(error) = insert {
            let error = StoreError::from(error);
            drop(txn);
            // A concurrent retry with the same request_id committed first:
            // its result is this request's result too (AIP-155).
            if matches!(error, StoreError::AlreadyExists(_))
                && let Some(request_id) = &new.request_id
                && let Some(existing) = self.find_by_request_id(request_id).await?
            {
                return Ok(existing);
            }
            return Err(match error {
                StoreError::AlreadyExists(_) => match &opportunity.external_id {
                    Some(external_id) => StoreError::AlreadyExists(format!(
                        "pipeline {} already has an opportunity with external_id {external_id:?}",
                        opportunity.pipeline
                    )),
                    None => StoreError::AlreadyExists("the request_id was used by another create".to_owned()),
                },
                other => other,
            });
        }
        insert_transitions(&txn, opportunity.id, &[first], None, now).await?;
        let event = events::new::opportunity_created(&opportunity, EventKind::OpportunityCreated);
        self.commit_with_events(txn, vec![event]).await?;
        Ok(opportunity)
    }

    pub async fn get_opportunity(&self, id: OpportunityId) -> Result<Opportunity> {
        match opportunity_reads::by_id(self, id.uuid()).await? {
            Some(row) => from_row(row),
            None => Err(StoreError::not_found("opportunity", id)),
        }
    }

    /// Lists opportunities in creation order (ids are UUIDv7).
    pub async fn list_opportunities(
        &self,
        filter: &OpportunityFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<Opportunity>> {
        let scope = format!("opportunities|{filter:?}");
        let after = match page::decode(&scope, page_token)? {
            Some(key) => Some(Uuid::parse_str(&key).map_err(|_| DomainError::invalid("page_token", "is damaged"))?),
            None => None,
        };
        let rows = opportunity_reads::page(self, filter, after, u64::from(page_size) + 1).await?;
        let items = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(page::finish(items, page_size, &scope, |last| last.id.to_string()))
    }

    /// Changes descriptive fields; stage and status are untouched.
    pub async fn update_opportunity(
        &self,
        id: OpportunityId,
        patch: OpportunityPatch,
        expected_version: Option<i64>,
    ) -> Result<Opportunity> {
        let _writer = self.write_lock().await;
        let txn = self.begin_write().await?;
        let mut opportunity = fetch(&txn, id).await?;
        check_version(&opportunity, expected_version)?;
        let OpportunityPatch { title, account, owner, amount, source, external_id, attributes } = patch;
        let mut changed_fields = Vec::new();
        for (name, present) in [
            ("title", title.is_some()),
            ("account", account.is_some()),
            ("owner", owner.is_some()),
            ("amount", amount.is_some()),
            ("source", source.is_some()),
            ("external_id", external_id.is_some()),
            ("attributes", attributes.is_some()),
        ] {
            if present {
                changed_fields.push(name);
            }
        }
        if let Some(title) = title {
            opportunity.title = title;
        }
        if let Some(account) = account {
            opportunity.account = account;
        }
        if let Some(owner) = owner {
            opportunity.owner = owner;
        }
        if let Some(amount) = amount {
            opportunity.amount = amount;
        }
        if let Some(source) = source {
            opportunity.source = source;
        }
        if let Some(external_id) = external_id {
            opportunity.external_id = external_id;
        }
        if let Some(attributes) = attributes {
            opportunity.attributes = attributes;
        }
        let previous_version = opportunity.version;
        opportunity.version += 1;
        opportunity.updated_at = time::now();
        let result = opportunity::Entity::update_many()
            .set(to_row(&opportunity, None))
            .filter(opportunity::Column::Id.eq(id.uuid()))
            .filter(opportunity::Column::Version.eq(previous_version))
            .exec(&txn)
            .await;
        match result {
            Ok(outcome) if outcome.rows_affected == 1 => {}
            Ok(_) => return Err(lost_race(id)),
            Err(error) => {
                return Err(match StoreError::from(error) {
                    StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!(
                        "pipeline {} already has an opportunity with external_id {:?}",
                        opportunity.pipeline,
                        opportunity.external_id.as_deref().unwrap_or_default()
                    )),
                    other => other,
                });
            }
        }
        let event = events::new::opportunity_updated(&opportunity, &changed_fields);
        self.commit_with_events(txn, vec![event]).await?;
        Ok(opportunity)
    }

    /// Moves, leaks or reopens an opportunity: the state change and its
    /// history row are written in one transaction, conditioned on the version
    /// read, so a concurrent change makes this one fail instead of both landing.
    pub async fn change_stage(&self, id: OpportunityId, command: StageCommand) -> Result<Opportunity> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_change_stage(id, &command).await {
                Err(StoreError::Conflict(_))
                    if command.expected_version.is_none() && attempt < UNCONDITIONAL_ATTEMPTS =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn try_change_stage(&self, id: OpportunityId, command: &StageCommand) -> Result<Opportunity> {
        // Reads outside the transaction (on SQLite, outside the single
        // writer's lock too); one conditional call writes.
        let planned = self.plan_change(id, command).await?;
        let event = events::new::stage_changed(&planned.opportunity, &planned.row);
        let write = StageWrite {
            opportunity: &planned.opportunity,
            previous_version: planned.previous_version,
            furthest_stage: planned.furthest_stage,
            row: &planned.row,
            previous_at: planned.previous_at,
            event,
            now: planned.now,
        };
        match stage_write::write(self, id, write).await {
            Ok(true) => {}
            // The version moved on, or another writer appended the same sequence number first.
            Ok(false) | Err(StoreError::AlreadyExists(_)) => return Err(lost_race(id)),
            Err(other) => return Err(other),
        }
        self.events_landed();
        Ok(planned.opportunity)
    }

    /// Reads an opportunity and decides a stage change: the opportunity as
    /// it will be, and what to write.
    async fn plan_change(&self, id: OpportunityId, command: &StageCommand) -> Result<PlannedChange> {
        let (mut opportunity, furthest, stamp) = fetch_for_change(self, id).await?;
        check_version(&opportunity, command.expected_version)?;
        let pipeline = self.pipeline_def(&self.db, opportunity.pipeline.as_str(), stamp).await?;
        let now = time::now();
        let occurred_at =
            command.occurred_at.map(time::truncate).unwrap_or_else(|| now.max(opportunity.state.last_change_at));
        check_occurred_at("occurred_at", occurred_at, Some(opportunity.state.last_change_at), now)?;
        let row =
            decide(&pipeline, &opportunity.state, command.command.clone(), occurred_at, &command.actor, &command.note)?;
        let previous_version = opportunity.version;
        let previous_at = opportunity.state.last_change_at;
        opportunity.state = apply(&opportunity.state, &row)?;
        opportunity.version += 1;
        opportunity.updated_at = now;
        let furthest_stage = furthest_stage(&pipeline, furthest.as_deref(), &row.to_stage);
        Ok(PlannedChange { opportunity, previous_version, furthest_stage, row, previous_at, now })
    }

    /// An opportunity's history in sequence order.
    pub async fn list_history(&self, id: OpportunityId, page_size: u32, page_token: &str) -> Result<Page<HistoryRow>> {
        fetch(&self.db, id).await?;
        let scope = format!("history|{id}");
        let after = match page::decode(&scope, page_token)? {
            Some(key) => key.parse::<i64>().map_err(|_| DomainError::invalid("page_token", "is damaged"))?,
            None => 0,
        };
        let rows = transition::Entity::find()
            .filter(transition::Column::OpportunityId.eq(id.uuid()))
            .filter(transition::Column::Sequence.gt(after))
            .order_by_asc(transition::Column::Sequence)
            .limit(u64::from(page_size) + 1)
            .all(&self.db)
            .await?;
        let items = rows.into_iter().map(history_from_row).collect::<Result<Vec<_>>>()?;
        Ok(page::finish(items, page_size, &scope, |last| last.transition.sequence.to_string()))
    }

    async fn find_by_request_id(&self, request_id: &str) -> Result<Option<Opportunity>> {
        let row =
            opportunity::Entity::find().filter(opportunity::Column::RequestId.eq(request_id)).one(&self.db).await?;
        row.map(from_row).transpose()
    }
}

fn check_version(opportunity: &Opportunity, expected_version: Option<i64>) -> Result<()> {
    match expected_version {
        Some(expected) if expected != opportunity.version => Err(StoreError::Conflict(format!(
            "opportunity {} changed since it was read (etag {expected}, now {}); read it again",
            opportunity.id, opportunity.version
        ))),
        _ => Ok(()),
    }
}

fn lost_race(id: OpportunityId) -> StoreError {
    StoreError::Conflict(format!("opportunity {id} was changed concurrently; read it again and retry"))
}

pub(crate) async fn fetch(db: &impl ConnectionTrait, id: OpportunityId) -> Result<Opportunity> {
    match opportunity::Entity::find_by_id(id.uuid()).one(db).await? {
        Some(row) => from_row(row),
        None => Err(StoreError::not_found("opportunity", id)),
    }
}

/// What a stage change reads, in one query: the opportunity, its stored
/// furthest stage and its pipeline's stamp.
async fn fetch_for_change(store: &Store, id: OpportunityId) -> Result<(Opportunity, Option<String>, PipelineStamp)> {
    match opportunity_reads::for_change(store, id.uuid()).await? {
        Some(found) => {
            let mut row = found.row;
            let furthest = row.furthest_stage.take();
            let stamp = PipelineStamp { version: found.pipeline_version, created_at: found.pipeline_created_at };
            Ok((from_row(row)?, furthest, stamp))
        }
        None => Err(StoreError::not_found("opportunity", id)),
    }
}

/// The furthest stage after reaching `reached`: the later of the two by the
/// pipeline's order (a stored stage no longer in the pipeline counts as
/// nothing).
pub(crate) fn furthest_stage(pipeline: &PipelineDef, stored: Option<&str>, reached: &StageKey) -> String {
    let stored_position = stored.and_then(|key| pipeline.stages().iter().position(|stage| stage.key.as_str() == key));
    match (stored, stored_position, pipeline.position(reached)) {
        (Some(key), Some(at), Some(new)) if at >= new => key.to_owned(),
        _ => reached.to_string(),
    }
}

pub(crate) async fn insert_transitions(
    db: &impl ConnectionTrait,
    id: OpportunityId,
    rows: &[Transition],
    previous_at: Option<DateTime<Utc>>,
    recorded_at: DateTime<Utc>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut previous_at = previous_at;
    let models = rows.iter().map(|row| {
        let model = transition_row(id, row, previous_at, recorded_at);
        previous_at = Some(row.occurred_at);
        model
    });
    transition::Entity::insert_many(models).exec_without_returning(db).await?;
    Ok(())
}

pub(crate) fn transition_row(
    id: OpportunityId,
    row: &Transition,
    previous_at: Option<DateTime<Utc>>,
    recorded_at: DateTime<Utc>,
) -> transition::ActiveModel {
    transition::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        opportunity_id: Set(id.uuid()),
        sequence: Set(row.sequence),
        from_stage: Set(row.from_stage.as_ref().map(StageKey::to_string)),
        to_stage: Set(row.to_stage.to_string()),
        from_status: Set(row.from_status.map(|status| status.as_str().to_owned())),
        to_status: Set(row.to_status.as_str().to_owned()),
        kind: Set(row.kind.as_str().to_owned()),
        occurred_at: Set(to_micros(row.occurred_at)),
        recorded_at: Set(to_micros(recorded_at)),
        actor: Set(row.actor.clone()),
        reason: Set(row.reason.clone()),
        note: Set(row.note.clone()),
        previous_at: Set(previous_at.map(to_micros)),
    }
}

pub(crate) fn to_row(opportunity: &Opportunity, request_id: Option<String>) -> opportunity::ActiveModel {
    let state = &opportunity.state;
    opportunity::ActiveModel {
        id: Set(opportunity.id.uuid()),
        pipeline: Set(opportunity.pipeline.to_string()),
        stage: Set(state.stage.to_string()),
        status: Set(state.status.as_str().to_owned()),
        title: Set(opportunity.title.clone()),
        account: Set(opportunity.account.clone()),
        owner: Set(opportunity.owner.clone()),
        currency_code: Set(opportunity.amount.as_ref().map(|money| money.currency_code.clone())),
        amount_minor: Set(opportunity.amount.as_ref().map(|money| money.amount_minor)),
        source: Set(opportunity.source.clone()),
        external_id: Set(opportunity.external_id.clone()),
        attributes: Set(serde_json::to_string(&opportunity.attributes).unwrap_or_else(|_| "{}".to_owned())),
        created_at: Set(to_micros(state.created_at)),
        stage_entered_at: Set(to_micros(state.stage_entered_at)),
        closed_at: Set(state.closed_at.map(to_micros)),
        leak_reason: Set(state.leak_reason.clone()),
        last_change_at: Set(to_micros(state.last_change_at)),
        previous_stage: Set(state.previous_stage.as_ref().map(StageKey::to_string)),
        sequence: Set(state.sequence),
        version: Set(opportunity.version),
        updated_at: Set(to_micros(opportunity.updated_at)),
        // Only written on insert; updates leave the stored value alone.
        request_id: match request_id {
            Some(request_id) => Set(Some(request_id)),
            None => sea_orm::ActiveValue::NotSet,
        },
        // Set by the writes that change the stage.
        furthest_stage: sea_orm::ActiveValue::NotSet,
        // Set by the writes that add activities.
        last_activity_at: sea_orm::ActiveValue::NotSet,
    }
}

pub(crate) fn from_row(row: opportunity::Model) -> Result<Opportunity> {
    let status =
        Status::parse(&row.status).ok_or_else(|| StoreError::Internal(format!("unknown status {:?}", row.status)))?;
    let attributes: BTreeMap<String, String> = serde_json::from_str(&row.attributes)
        .map_err(|error| StoreError::Internal(format!("attributes of {}: {error}", row.id)))?;
    let amount = match (row.currency_code, row.amount_minor) {
        (Some(code), Some(minor)) => Some(Money::new("amount", &code, minor).map_err(corrupt)?),
        _ => None,
    };
    let previous_stage = match row.previous_stage {
        Some(key) => Some(StageKey::parse_owned("previous_stage", key).map_err(corrupt)?),
        None => None,
    };
    Ok(Opportunity {
        id: OpportunityId::from_uuid(row.id),
        pipeline: funnel_domain::PipelineName::parse_owned("pipeline", row.pipeline).map_err(corrupt)?,
        state: OpportunityState {
            stage: StageKey::parse_owned("stage", row.stage).map_err(corrupt)?,
            status,
            created_at: from_micros(row.created_at),
            stage_entered_at: from_micros(row.stage_entered_at),
            closed_at: row.closed_at.map(from_micros),
            leak_reason: row.leak_reason,
            last_change_at: from_micros(row.last_change_at),
            previous_stage,
            sequence: row.sequence,
        },
        title: row.title,
        account: row.account,
        owner: row.owner,
        amount,
        source: row.source,
        external_id: row.external_id,
        attributes,
        version: row.version,
        updated_at: from_micros(row.updated_at),
    })
}

pub(crate) fn history_from_row(row: transition::Model) -> Result<HistoryRow> {
    let status =
        |value: &str| Status::parse(value).ok_or_else(|| StoreError::Internal(format!("unknown status {value:?}")));
    let from_stage = match &row.from_stage {
        Some(key) => Some(StageKey::parse("from_stage", key).map_err(corrupt)?),
        None => None,
    };
    let from_status = match &row.from_status {
        Some(value) => Some(status(value)?),
        None => None,
    };
    Ok(HistoryRow {
        opportunity_id: OpportunityId::from_uuid(row.opportunity_id),
        transition: Transition {
            sequence: row.sequence,
            from_stage,
            to_stage: StageKey::parse("to_stage", &row.to_stage).map_err(corrupt)?,
            from_status,
            to_status: status(&row.to_status)?,
            kind: TransitionKind::parse(&row.kind)
                .ok_or_else(|| StoreError::Internal(format!("unknown kind {:?}", row.kind)))?,
            occurred_at: from_micros(row.occurred_at),
            actor: row.actor,
            reason: row.reason,
            note: row.note,
        },
        recorded_at: from_micros(row.recorded_at),
    })
}
