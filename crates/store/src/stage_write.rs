//! A stage change's writes in one call: the opportunity's conditional
//! UPDATE, its history row and its event, written only when the UPDATE
//! matched. On PostgreSQL, one statement of data-modifying CTEs leaves the
//! event pending, and runs as its own transaction unless it would wait for
//! a row lock (see [`write_postgres`]): one round trip, where BEGIN, three
//! statements and COMMIT made five (issue 7, B1). The reads before it need
//! no transaction: the UPDATE is conditioned on the version read.
//!
//! SQLite has no data-modifying CTEs; there the four statements (the event
//! numbered from `event_counter`) go as one multi-statement call, each after
//! the first conditioned on `changes()`. sqlx runs every SQLite statement on
//! the connection's own thread, so each call is a hand-over between threads,
//! and the single writer holds the write lock through its calls: one, BEGIN
//! IMMEDIATE and COMMIT included, where seven were (issue 7, B2).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use funnel_domain::{OpportunityId, StageKey, Transition};
use sea_orm::sqlx::{self, Row};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::connect::SQLITE_BUSY_TIMEOUT;
use crate::events::NewEvent;
use crate::model::Opportunity;
use crate::time::to_micros;
use crate::{Backend, Result, Store, StoreError, raw};

/// The change for PostgreSQL; `{lock}` is how the row lock is taken.
const CHANGE_STAGE: &str = "WITH locked AS (SELECT id FROM opportunities WHERE id = $1 AND version = $2 {lock}), \
     updated AS ( \
       UPDATE opportunities SET stage = $3, status = $4, stage_entered_at = $5, closed_at = $6, leak_reason = $7, \
         last_change_at = $8, previous_stage = $9, sequence = $10, version = $11, updated_at = $12, \
         furthest_stage = $13 \
       WHERE id = (SELECT id FROM locked) AND version = $2 RETURNING id), \
     history AS ( \
       INSERT INTO transitions (opportunity_id, sequence, from_stage, to_stage, from_status, to_status, kind, \
         occurred_at, recorded_at, actor, reason, note, previous_at) \
       SELECT id, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25 FROM updated), \
     event AS ( \
       INSERT INTO pending_events (event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
       SELECT $26, $27, id, $28, $29, $30 FROM updated) \
     SELECT count(*) AS changed FROM updated";

/// Fails at once (`lock_not_available`) when another transaction holds the
/// row, so it never waits outside a transaction.
static CHANGE_STAGE_AT_ONCE: LazyLock<String> = LazyLock::new(|| CHANGE_STAGE.replace("{lock}", "FOR UPDATE NOWAIT"));

/// Waits for the row, inside a transaction.
static CHANGE_STAGE_WAITING: LazyLock<String> = LazyLock::new(|| CHANGE_STAGE.replace("{lock}", "FOR UPDATE"));

/// PostgreSQL's `lock_not_available`, what NOWAIT fails with.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// `changes()` is the row count of the statement before: each statement
/// runs only if the one before it wrote its row, so it is all four or none;
/// `written` is 1 when all four did.
const CHANGE_STAGE_SQLITE: &str = "UPDATE opportunities SET stage = $3, status = $4, stage_entered_at = $5, \
       closed_at = $6, leak_reason = $7, last_change_at = $8, previous_stage = $9, sequence = $10, \
       version = $11, updated_at = $12, furthest_stage = $13 \
     WHERE id = $1 AND version = $2; \
     INSERT INTO transitions (opportunity_id, sequence, from_stage, to_stage, from_status, to_status, kind, \
       occurred_at, recorded_at, actor, reason, note, previous_at) \
     SELECT $1, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25 WHERE changes() = 1; \
     UPDATE event_counter SET value = value + 1 WHERE id = 1 AND changes() = 1; \
     INSERT INTO events (sequence, event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
     SELECT value, $26, $27, $1, $28, $29, $30 FROM event_counter WHERE id = 1 AND changes() = 1; \
     SELECT changes() AS written";

/// The change with its BEGIN and COMMIT, as one call. BEGIN does not wait
/// for another process's write lock (see [`write_sqlite`]).
static CHANGE_STAGE_SQLITE_ALONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; PRAGMA busy_timeout = {busy}; {CHANGE_STAGE_SQLITE}; COMMIT",
        busy = SQLITE_BUSY_TIMEOUT.as_millis()
    )
});

/// Ends what a failed [`CHANGE_STAGE_SQLITE_ALONE`] may have left: the
/// transaction (a statement after BEGIN failed, so COMMIT never ran) and the
/// busy timeout (BEGIN failed).
static AFTER_A_FAILED_CHANGE: LazyLock<String> =
    LazyLock::new(|| format!("PRAGMA busy_timeout = {}; ROLLBACK", SQLITE_BUSY_TIMEOUT.as_millis()));

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
pub(crate) async fn write(store: &Store, id: OpportunityId, change: StageWrite<'_>) -> Result<bool> {
    let values = values(id, change);
    match store.backend() {
        Backend::Sqlite => write_sqlite(store, values).await,
        Backend::Postgres => write_postgres(store, values).await,
    }
}

/// One statement, its own transaction: BEGIN and COMMIT were two of the
/// move's four round trips (issue 7, B1: 1,553-1,786 -> 1,825-2,237 tx/s,
/// ratio 0.50-0.53 -> 0.55-0.61, in two A/B runs).
/// A request dropped while the statement runs cannot stop it, as one
/// dropped while COMMIT is on its way cannot; what must not happen is a
/// statement left waiting for a lock, past a client's deadline, to commit
/// on its own later. So it takes the row lock without waiting, and when
/// another transaction holds the row, the change waits inside a
/// transaction of its own, which a dropped request rolls back.
///
/// Straight through sqlx, as the read before it: sea-orm's transaction and
/// statement wrappers are service CPU on every move.
async fn write_postgres(store: &Store, values: Vec<Value>) -> Result<bool> {
    let pool = store.db.get_postgres_connection_pool();
    let at_once = postgres_change(&CHANGE_STAGE_AT_ONCE, &values)?;
    match at_once.fetch_one(pool).await.and_then(|row| changed(&row)) {
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {}
        Err(error) => return Err(raw::execute_error(error)),
        Ok(changed) => return Ok(changed),
    }
    let waiting = postgres_change(&CHANGE_STAGE_WAITING, &values)?;
    let mut txn = pool.begin().await.map_err(raw::execute_error)?;
    let changed = waiting.fetch_one(&mut *txn).await.and_then(|row| changed(&row)).map_err(raw::query_error)?;
    if changed {
        txn.commit().await.map_err(raw::query_error)?;
    }
    Ok(changed)
}

type PgQuery<'v> = sqlx::query::Query<'v, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A PostgreSQL form of the change with its values bound, borrowed: the
/// form that waits may need them too.
fn postgres_change<'v>(sql: &'static str, values: &'v [Value]) -> Result<PgQuery<'v>> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in values {
        query = match value {
            Value::BigInt(value) => query.bind(*value),
            Value::String(value) => query.bind(value.as_deref()),
            Value::Uuid(value) => query.bind(*value),
            other => return Err(StoreError::Internal(format!("a stage change cannot bind {other:?}"))),
        };
    }
    Ok(query)
}

/// Whether the change's answer says it changed the row.
fn changed(row: &sqlx::postgres::PgRow) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(0)? == 1)
}

/// The whole transaction as one call: a call is a hand-over to the
/// connection's thread, and BEGIN IMMEDIATE and COMMIT as calls of their own
/// made three inside the write lock (B2: 2,732-3,016 -> 2,951-3,328 tx/s,
/// three A/B runs minutes apart). A dropped request must not stop it between BEGIN and
/// COMMIT, so it runs in a task of its own once the in-process lock is
/// taken. Waiting for another process's write lock is left to a
/// transaction of the usual kind, which a dropped request rolls back.
async fn write_sqlite(store: &Store, values: Vec<Value>) -> Result<bool> {
    let writer = store.write_lock().await;
    let db = store.write_connection().clone();
    let statement =
        Statement::from_sql_and_values(DbBackend::Sqlite, CHANGE_STAGE_SQLITE_ALONE.as_str(), values.clone());
    let call = tokio::spawn(async move {
        let result = db.query_all_raw(statement).await;
        if result.is_err()
            && let Err(error) = db.execute_unprepared(&AFTER_A_FAILED_CHANGE).await
            && !error.to_string().contains("no transaction is active")
        {
            tracing::error!(%error, "cleaning up after a failed stage change failed");
        }
        (result, writer)
    });
    let (result, _writer) =
        call.await.map_err(|error| StoreError::Internal(format!("the stage change's task failed: {error}")))?;
    let rows = match result {
        Ok(rows) => rows,
        Err(error) if error.to_string().contains("database is locked") => {
            let txn = store.begin_write().await?;
            let statement = Statement::from_sql_and_values(DbBackend::Sqlite, CHANGE_STAGE_SQLITE, values);
            let rows = txn.query_all_raw(statement).await?;
            txn.commit().await?;
            rows
        }
        Err(error) => return Err(error.into()),
    };
    // The last row is `written`'s (each PRAGMA answers one before it).
    let Some(row) = rows.last() else {
        return Err(StoreError::Internal("the stage change answered no row".to_owned()));
    };
    let written: i64 = row.try_get("", "written")?;
    Ok(written == 1)
}

fn values(id: OpportunityId, change: StageWrite<'_>) -> Vec<Value> {
    let StageWrite { opportunity, previous_version, furthest_stage, row, previous_at, event, now } = change;
    let state = &opportunity.state;
    vec![
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
    ]
}
