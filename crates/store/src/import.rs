//! Bulk import of historical opportunities. Each batch is one transaction;
//! each record is checked on its own so that one bad record is reported
//! (with the field) and the rest of the batch still lands.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use funnel_domain::{
    ActivityKind, Command, DomainError, Money, OpportunityId, PipelineDef, PipelineName, StageKey, Status, Transition,
    TransitionKind, apply, check_occurred_at, created, decide, limits,
};
use sea_orm::ActiveValue::Set;
use uuid::Uuid;

use crate::activities::to_row as activity_row;
use crate::bulk::{insert_all, insert_returning};
use crate::entity::{activity, opportunity, transition};
use crate::events::{EventKind, new as new_event};
use crate::model::{Activity, Opportunity};
use crate::opportunities::{furthest_stage, to_row as opportunity_row, transition_row};
use crate::pipelines::load as load_pipeline;
use crate::time::to_micros;
use crate::{Result, Store, StoreError};

/// Opportunities already imported are skipped, by the unique index.
const NEW_EXTERNAL_IDS_ONLY: &str = "ON CONFLICT (pipeline, external_id) DO NOTHING RETURNING id";

/// One record of an import stream as received; checked here.
#[derive(Debug, Clone, Default)]
pub struct ImportRecord {
    /// Position in the whole stream, for error reports.
    pub index: i64,
    pub pipeline: String,
    pub external_id: String,
    pub title: String,
    pub account: String,
    pub owner: String,
    /// `(currency_code, amount_minor)`; `None` when unknown.
    pub amount: Option<(String, i64)>,
    pub source: String,
    pub attributes: BTreeMap<String, String>,
    /// Oldest first; the first entry is the creation.
    pub history: Vec<ImportHistory>,
    pub activities: Vec<ImportActivity>,
}

#[derive(Debug, Clone)]
pub struct ImportHistory {
    pub stage: String,
    pub status: Option<Status>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub reason: String,
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct ImportActivity {
    pub kind: Option<ActivityKind>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub note: String,
}

/// Why one record was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRejection {
    pub index: i64,
    pub external_id: String,
    pub field: String,
    pub reason: String,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    pub imported: u64,
    pub already_present: u64,
    pub rejections: Vec<ImportRejection>,
}

struct Checked {
    opportunity: Opportunity,
    furthest_stage: String,
    history: Vec<Transition>,
    activities: Vec<Activity>,
}

impl Store {
    /// Imports one batch in one transaction. Records whose `(pipeline,
    /// external_id)` exists are skipped, so importing a file twice changes
    /// nothing.
    pub async fn import_batch(&self, mut records: Vec<ImportRecord>) -> Result<ImportOutcome> {
        let _writer = self.write_lock().await;
        let txn = self.begin_write().await?;
        let mut outcome = ImportOutcome::default();
        // The keys reach queries before the records are checked: reject
        // malformed ones first (PostgreSQL refuses a NUL byte outright).
        records.retain(|record| {
            let key_error = PipelineName::parse("pipeline", &record.pipeline)
                .err()
                .or_else(|| limits::check_required_text("external_id", &record.external_id, limits::MAX_ID_TEXT).err());
            let Some(DomainError::InvalidArgument { field, reason }) = key_error else { return true };
            outcome.rejections.push(ImportRejection {
                index: record.index,
                external_id: record.external_id.clone(),
                field,
                reason,
            });
            false
        });
        let mut pipelines: HashMap<String, Option<PipelineDef>> = HashMap::new();
        for record in &records {
            if !pipelines.contains_key(&record.pipeline) {
                let def = match load_pipeline(&txn, &record.pipeline).await {
                    Ok(found) => Some(found.def),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(other) => return Err(other),
                };
                pipelines.insert(record.pipeline.clone(), def);
            }
        }
        let now = Utc::now();
        let mut seen = HashSet::new();
        let mut accepted = Vec::with_capacity(records.len());
        for record in records {
            let reject = |field: &str, reason: String| ImportRejection {
                index: record.index,
                external_id: record.external_id.clone(),
                field: field.to_owned(),
                reason,
            };
            let Some(Some(pipeline)) = pipelines.get(&record.pipeline) else {
                outcome.rejections.push(reject("pipeline", format!("no pipeline named {:?}", record.pipeline)));
                continue;
            };
            let key = (record.pipeline.clone(), record.external_id.clone());
            if !seen.insert(key) {
                outcome.rejections.push(reject("external_id", "appears twice in one batch".to_owned()));
                continue;
            }
            match check_record(pipeline, &record, now) {
                Ok(checked) => accepted.push(checked),
                Err(DomainError::InvalidArgument { field, reason }) => outcome.rejections.push(reject(&field, reason)),
                Err(DomainError::FailedPrecondition(reason)) => outcome.rejections.push(reject("history", reason)),
            }
        }
        let offered = accepted.len();
        let accepted = write(&txn, accepted, now).await?;
        outcome.already_present = (offered - accepted.len()) as u64;
        let events = accepted
            .iter()
            .map(|checked| new_event::opportunity_created(&checked.opportunity, EventKind::OpportunityImported))
            .collect();
        self.commit_with_events(txn, events).await?;
        outcome.imported = accepted.len() as u64;
        Ok(outcome)
    }
}

fn check_record(pipeline: &PipelineDef, record: &ImportRecord, now: DateTime<Utc>) -> Result<Checked, DomainError> {
    limits::check_required_text("external_id", &record.external_id, limits::MAX_ID_TEXT)?;
    limits::check_text("title", &record.title, limits::MAX_SHORT_TEXT)?;
    limits::check_text("account", &record.account, limits::MAX_SHORT_TEXT)?;
    limits::check_required_text("owner", &record.owner, limits::MAX_SHORT_TEXT)?;
    limits::check_text("source", &record.source, limits::MAX_SHORT_TEXT)?;
    check_attributes(&record.attributes)?;
    let amount = match &record.amount {
        Some((code, minor)) => Some(Money::new("amount", code, *minor)?),
        None => None,
    };
    if record.history.len() > limits::MAX_IMPORT_HISTORY || record.activities.len() > limits::MAX_IMPORT_HISTORY {
        return Err(DomainError::invalid(
            "history",
            format!("at most {} entries and activities", limits::MAX_IMPORT_HISTORY),
        ));
    }
    let history = check_history(pipeline, &record.history, now)?;
    let mut state = created(&history[0])?;
    for row in &history[1..] {
        state = apply(&state, row)?;
    }
    let id = OpportunityId::new_v7();
    let mut activities = Vec::with_capacity(record.activities.len());
    for (index, entry) in record.activities.iter().enumerate() {
        let field = |name: &str| format!("activities[{index}].{name}");
        let kind = entry.kind.ok_or_else(|| DomainError::invalid(field("kind"), "is required"))?;
        let occurred_at = entry.occurred_at.ok_or_else(|| DomainError::invalid(field("occurred_at"), "is required"))?;
        check_occurred_at(&field("occurred_at"), occurred_at, Some(state.created_at), now)?;
        limits::check_text(&field("actor"), &entry.actor, limits::MAX_SHORT_TEXT)?;
        limits::check_text(&field("note"), &entry.note, limits::MAX_LONG_TEXT)?;
        activities.push(Activity {
            id: Uuid::now_v7(),
            opportunity_id: id,
            kind,
            occurred_at,
            recorded_at: now,
            actor: entry.actor.clone(),
            note: entry.note.clone(),
        });
    }
    let opportunity = Opportunity {
        id,
        pipeline: pipeline.name.clone(),
        state,
        title: record.title.clone(),
        account: record.account.clone(),
        owner: record.owner.clone(),
        amount,
        source: record.source.clone(),
        external_id: Some(record.external_id.clone()),
        attributes: record.attributes.clone(),
        version: 1,
        updated_at: now,
    };
    let mut furthest: Option<String> = None;
    for row in &history {
        furthest = Some(furthest_stage(pipeline, furthest.as_deref(), &row.to_stage));
    }
    let furthest_stage = furthest.unwrap_or_else(|| opportunity.state.stage.to_string());
    Ok(Checked { opportunity, furthest_stage, history, activities })
}

/// Turns imported entries into history rows with the same rules as live
/// calls, so imported history replays exactly like recorded history.
fn check_history(
    pipeline: &PipelineDef,
    entries: &[ImportHistory],
    now: DateTime<Utc>,
) -> Result<Vec<Transition>, DomainError> {
    let Some(first) = entries.first() else {
        return Err(DomainError::invalid("history", "is empty: the first entry is the creation"));
    };
    let stage = |index: usize, value: &str| -> Result<StageKey, DomainError> {
        let key = StageKey::parse(&format!("history[{index}].stage"), value)?;
        pipeline.require_stage(&format!("history[{index}].stage"), &key)?;
        Ok(key)
    };
    let first_stage = stage(0, &first.stage)?;
    if first.status.is_some_and(|status| status != Status::Open) || pipeline.is_won_stage(&first_stage) {
        return Err(DomainError::invalid("history[0]", "the creation must be open and not in the won stage"));
    }
    let created_at = first.occurred_at.ok_or_else(|| DomainError::invalid("history[0].occurred_at", "is required"))?;
    check_occurred_at("history[0].occurred_at", created_at, None, now)?;
    check_entry_text(0, first)?;
    let creation = Transition {
        sequence: 1,
        from_stage: None,
        to_stage: first_stage,
        from_status: None,
        to_status: Status::Open,
        kind: TransitionKind::Created,
        occurred_at: created_at,
        actor: first.actor.clone(),
        reason: String::new(),
        note: first.note.clone(),
    };
    let mut state = created(&creation)?;
    let mut rows = vec![creation];
    for (index, entry) in entries.iter().enumerate().skip(1) {
        let field = |name: &str| format!("history[{index}].{name}");
        let target = stage(index, &entry.stage)?;
        let status = entry.status.ok_or_else(|| DomainError::invalid(field("status"), "is required"))?;
        let occurred_at = entry.occurred_at.ok_or_else(|| DomainError::invalid(field("occurred_at"), "is required"))?;
        check_occurred_at(&field("occurred_at"), occurred_at, Some(state.last_change_at), now)?;
        check_entry_text(index, entry)?;
        let command = match (state.status, status) {
            (Status::Open, Status::Leaked) if target == state.stage => Command::Leak { reason: entry.reason.clone() },
            (Status::Open, Status::Open | Status::Won) => Command::Move { to: target.clone() },
            (Status::Won | Status::Leaked, Status::Open) => Command::Reopen { stage: Some(target.clone()) },
            (from, to) => {
                return Err(DomainError::invalid(
                    field("status"),
                    format!("cannot go from {from} in {} to {to} in {target}", state.stage),
                ));
            }
        };
        let row = decide(pipeline, &state, command, occurred_at, &entry.actor, &entry.note)
            .map_err(|error| DomainError::invalid(format!("history[{index}]"), error.to_string()))?;
        if row.to_status != status {
            return Err(DomainError::invalid(
                field("status"),
                format!("moving to {target} makes the opportunity {}, not {status}", row.to_status),
            ));
        }
        state = apply(&state, &row)?;
        rows.push(row);
    }
    Ok(rows)
}

fn check_entry_text(index: usize, entry: &ImportHistory) -> Result<(), DomainError> {
    limits::check_text(&format!("history[{index}].actor"), &entry.actor, limits::MAX_SHORT_TEXT)?;
    limits::check_text(&format!("history[{index}].reason"), &entry.reason, limits::MAX_LONG_TEXT)?;
    limits::check_text(&format!("history[{index}].note"), &entry.note, limits::MAX_LONG_TEXT)
}

/// Checks an attribute map against the limits; shared with live calls.
pub fn check_attributes(attributes: &BTreeMap<String, String>) -> Result<(), DomainError> {
    if attributes.len() > limits::MAX_ATTRIBUTES {
        return Err(DomainError::invalid(
            "attributes",
            format!("at most {} entries, got {}", limits::MAX_ATTRIBUTES, attributes.len()),
        ));
    }
    for (key, value) in attributes {
        if key.is_empty() {
            return Err(DomainError::invalid("attributes", "keys must not be empty"));
        }
        limits::check_text(&format!("attributes[{key:?}]"), key, limits::MAX_ATTRIBUTE_KEY)?;
        limits::check_text(&format!("attributes[{key:?}]"), value, limits::MAX_ATTRIBUTE_VALUE)?;
    }
    Ok(())
}

/// Writes the opportunities whose `(pipeline, external_id)` is new and
/// their history and activities; returns those. The unique index decides
/// (rather than a lookup first), so a concurrent import of the same records
/// waits for the other's commit and then skips them.
async fn write(db: &impl sea_orm::ConnectionTrait, accepted: Vec<Checked>, now: DateTime<Utc>) -> Result<Vec<Checked>> {
    let opportunities: Vec<opportunity::ActiveModel> = accepted
        .iter()
        .map(|checked| {
            let mut row = opportunity_row(&checked.opportunity, None);
            row.furthest_stage = Set(Some(checked.furthest_stage.clone()));
            row.last_activity_at = Set(checked.activities.iter().map(|stored| to_micros(stored.occurred_at)).max());
            row
        })
        .collect();
    let mut inserted = HashSet::with_capacity(accepted.len());
    for row in insert_returning(db, opportunities, NEW_EXTERNAL_IDS_ONLY).await? {
        let id: Uuid = row.try_get("", "id")?;
        inserted.insert(id);
    }
    let accepted: Vec<Checked> =
        accepted.into_iter().filter(|checked| inserted.contains(&checked.opportunity.id.uuid())).collect();
    let history: Vec<transition::ActiveModel> = accepted
        .iter()
        .flat_map(|checked| {
            let previous = std::iter::once(None).chain(checked.history.iter().map(|row| Some(row.occurred_at)));
            checked
                .history
                .iter()
                .zip(previous)
                .map(|(row, previous_at)| transition_row(checked.opportunity.id, row, previous_at, now))
        })
        .collect();
    insert_all(db, history, "").await?;
    let activities: Vec<activity::ActiveModel> = accepted
        .iter()
        .flat_map(|checked| checked.activities.iter().map(|stored| activity_row(stored, None)))
        .collect();
    insert_all(db, activities, "").await?;
    Ok(accepted)
}
