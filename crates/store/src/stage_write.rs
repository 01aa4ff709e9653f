//! A stage change's writes in one call: the opportunity's conditional
//! UPDATE, its history row and its event, written only when the UPDATE
//! matched. On PostgreSQL, one statement of data-modifying CTEs leaves the
//! event pending: three round trips with BEGIN and COMMIT, where three
//! statements made five (issue 7, B1). The reads before it need no
//! transaction: the UPDATE is conditioned on the version read.
//!
//! SQLite has no data-modifying CTEs; there the four statements (the event
//! numbered from `event_counter`) go as one multi-statement call, each after
//! the first conditioned on `changes()`. sqlx runs every SQLite statement on
//! the connection's own thread, so each call is a hand-over between threads,
//! and the single writer holds the write lock through its calls: three
//! (BEGIN IMMEDIATE, the write, COMMIT, the read coming before the lock)
//! where seven were (issue 7, B2).

use chrono::{DateTime, Utc};
use funnel_domain::{OpportunityId, StageKey, Transition};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::events::NewEvent;
use crate::model::Opportunity;
use crate::time::to_micros;
use crate::{Result, StoreError};

const CHANGE_STAGE: &str = "WITH updated AS ( \
       UPDATE opportunities SET stage = $3, status = $4, stage_entered_at = $5, closed_at = $6, leak_reason = $7, \
         last_change_at = $8, previous_stage = $9, sequence = $10, version = $11, updated_at = $12, \
         furthest_stage = $13 \
       WHERE id = $1 AND version = $2 RETURNING id), \
     history AS ( \
       INSERT INTO transitions (opportunity_id, sequence, from_stage, to_stage, from_status, to_status, kind, \
         occurred_at, recorded_at, actor, reason, note, previous_at) \
       SELECT id, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25 FROM updated), \
     event AS ( \
       INSERT INTO pending_events (event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
       SELECT $26, $27, id, $28, $29, $30 FROM updated) \
     SELECT count(*) AS changed FROM updated";

/// `changes()` is the row count of the statement before: each statement
/// runs only if the one before it wrote its row, so it is all four or none.
const CHANGE_STAGE_SQLITE: &str = "UPDATE opportunities SET stage = $3, status = $4, stage_entered_at = $5, \
       closed_at = $6, leak_reason = $7, last_change_at = $8, previous_stage = $9, sequence = $10, \
       version = $11, updated_at = $12, furthest_stage = $13 \
     WHERE id = $1 AND version = $2; \
     INSERT INTO transitions (opportunity_id, sequence, from_stage, to_stage, from_status, to_status, kind, \
       occurred_at, recorded_at, actor, reason, note, previous_at) \
     SELECT $1, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25 WHERE changes() = 1; \
     UPDATE event_counter SET value = value + 1 WHERE id = 1 AND changes() = 1; \
     INSERT INTO events (sequence, event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
     SELECT value, $26, $27, $1, $28, $29, $30 FROM event_counter WHERE id = 1 AND changes() = 1";

/// What one stage change writes.
pub(crate) struct StageWrite<'a> {
    /// The opportunity after the change, with its new version.
    pub opportunity: &'a Opportunity,
    pub previous_version: i64,
    pub furthest_stage: String,
    pub row: &'a Transition,
    pub previous_at: DateTime<Utc>,
    pub event: NewEvent,
    pub now: DateTime<Utc>,
}

fn text(value: &str) -> Value {
    Value::from(value.to_owned())
}

fn optional_text(value: Option<String>) -> Value {
    value.into()
}

/// Writes the change; false when the version moved on since it was read.
pub(crate) async fn write(db: &impl ConnectionTrait, id: OpportunityId, change: StageWrite<'_>) -> Result<bool> {
    let backend = db.get_database_backend();
    let StageWrite { opportunity, previous_version, furthest_stage, row, previous_at, event, now } = change;
    let state = &opportunity.state;
    let values: Vec<Value> = vec![
        id.uuid().into(),
        previous_version.into(),
        text(state.stage.as_str()),
        text(state.status.as_str()),
        to_micros(state.stage_entered_at).into(),
        state.closed_at.map(to_micros).into(),
        optional_text(state.leak_reason.clone()),
        to_micros(state.last_change_at).into(),
        optional_text(state.previous_stage.as_ref().map(StageKey::to_string)),
        state.sequence.into(),
        opportunity.version.into(),
        to_micros(opportunity.updated_at).into(),
        furthest_stage.into(),
        row.sequence.into(),
        optional_text(row.from_stage.as_ref().map(StageKey::to_string)),
        text(row.to_stage.as_str()),
        optional_text(row.from_status.map(|status| status.as_str().to_owned())),
        text(row.to_status.as_str()),
        text(row.kind.as_str()),
        to_micros(row.occurred_at).into(),
        to_micros(now).into(),
        row.actor.clone().into(),
        row.reason.clone().into(),
        row.note.clone().into(),
        Some(to_micros(previous_at)).into(),
        text(event.kind.as_str()),
        event.pipeline.into(),
        event.payload.to_string().into(),
        to_micros(event.occurred_at).into(),
        to_micros(now).into(),
    ];
    if backend == DbBackend::Sqlite {
        let statement = Statement::from_sql_and_values(backend, CHANGE_STAGE_SQLITE, values);
        return match db.execute_raw(statement).await?.rows_affected() {
            4 => Ok(true),
            0 => Ok(false),
            other => Err(StoreError::Internal(format!("a stage change wrote {other} of its 4 rows"))),
        };
    }
    let statement = Statement::from_sql_and_values(backend, CHANGE_STAGE, values);
    let Some(result) = db.query_one_raw(statement).await? else {
        return Err(StoreError::Internal("the stage change answered no row".to_owned()));
    };
    let changed: i64 = result.try_get("", "changed")?;
    Ok(changed == 1)
}
