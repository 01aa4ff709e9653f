//! A batch of scores on PostgreSQL as one statement: every column goes as one
//! array, `unnest` turns the arrays back into rows, and data-modifying CTEs
//! append those that changed to the history, upsert them all as the current
//! scores and leave their events pending. A single statement is one transaction. Through
//! sea-orm, each table's rows went as JSON that the scorer built and
//! PostgreSQL parsed again, in two statements plus the events': ~95 ms a
//! batch of 2,000 (issue 7, B6).

use std::sync::LazyLock;

use chrono::Utc;
use sea_orm::sqlx;

use crate::events::NewEvent;
use crate::raw::execute_error;
use crate::scores::{CURRENT_SCORE_UPSERT, RECORD_EVERY_MICROS, RECORD_STEP, encode_parts};
use crate::time::to_micros;
use crate::{LeadScoreRecord, Result, Store};

const COLUMNS: &str = "opportunity_id, pipeline, stage, owner, title, model_version, p_advance, p_win, leak_flag, \
     reason_codes, factors, days_in_stage, scored_at";

/// The batch joined with the current scores it replaces; `record` is
/// `scores::records_change` in SQL (the `{step}` and `{every}` there), and
/// the CTEs all see the current scores as they were before the statement.
/// Followed by the current scores' insert and [`CURRENT_SCORE_UPSERT`], the
/// upsert the SQLite path uses too. Built once.
static WRITE_SCORES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH batch AS ( \
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], \
             $7::float8[], $8::float8[], $9::bool[], $10::text[], $11::text[], $12::float8[], $13::int8[]) \
           AS b({COLUMNS})), \
         decided AS ( \
           SELECT b.*, c.recorded_p_advance AS prior_p, c.recorded_at AS prior_at, \
             COALESCE(c.recorded_at IS NULL OR b.stage <> c.stage OR b.model_version <> c.model_version \
               OR b.leak_flag <> c.leak_flag OR b.reason_codes <> c.reason_codes \
               OR abs(b.p_advance - c.recorded_p_advance) >= {step} OR b.scored_at - c.recorded_at >= {every}, \
               true) AS record \
           FROM batch b LEFT JOIN current_scores c ON c.opportunity_id = b.opportunity_id), \
         history AS ( \
           INSERT INTO score_history ({COLUMNS}) SELECT {COLUMNS} FROM decided WHERE record), \
         pending AS ( \
           INSERT INTO pending_events (event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
           SELECT * FROM unnest($14::text[], $15::text[], $16::uuid[], $17::text[], $18::int8[], $19::int8[])) \
         INSERT INTO current_scores ({COLUMNS}, recorded_p_advance, recorded_at) \
         SELECT {COLUMNS}, CASE WHEN record THEN p_advance ELSE prior_p END, \
           CASE WHEN record THEN scored_at ELSE prior_at END FROM decided {CURRENT_SCORE_UPSERT}",
        step = RECORD_STEP,
        every = RECORD_EVERY_MICROS,
    )
});

/// Writes `scores` and leaves `events` pending, all or nothing.
pub(crate) async fn write(store: &Store, scores: &[LeadScoreRecord], events: &[NewEvent]) -> Result<()> {
    let count = scores.len();
    let mut ids = Vec::with_capacity(count);
    let (mut pipelines, mut stages, mut owners, mut titles) =
        (Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count));
    let (mut versions, mut advances, mut wins, mut flags) =
        (Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count));
    let (mut reasons, mut factors, mut days, mut times) =
        (Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count));
    for score in scores {
        let (reason_codes, score_factors) = encode_parts(score)?;
        ids.push(score.opportunity_id.uuid());
        pipelines.push(score.pipeline.as_str());
        stages.push(score.stage.as_str());
        owners.push(score.owner.as_str());
        titles.push(score.title.as_str());
        versions.push(score.model_version);
        advances.push(score.p_advance);
        wins.push(score.p_win);
        flags.push(score.leak_flag);
        reasons.push(reason_codes);
        factors.push(score_factors);
        days.push(score.days_in_stage);
        times.push(to_micros(score.scored_at));
    }
    let recorded_at = to_micros(Utc::now());
    let event_kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    let event_pipelines: Vec<&str> = events.iter().map(|event| event.pipeline.as_str()).collect();
    let event_ids: Vec<Option<uuid::Uuid>> =
        events.iter().map(|event| event.opportunity_id.map(|id| id.uuid())).collect();
    let payloads: Vec<String> = events.iter().map(|event| event.payload.to_string()).collect();
    let occurred: Vec<i64> = events.iter().map(|event| to_micros(event.occurred_at)).collect();
    let recorded: Vec<i64> = vec![recorded_at; events.len()];
    sqlx::query(sqlx::AssertSqlSafe(WRITE_SCORES.as_str()))
        .bind(ids)
        .bind(pipelines)
        .bind(stages)
        .bind(owners)
        .bind(titles)
        .bind(versions)
        .bind(advances)
        .bind(wins)
        .bind(flags)
        .bind(reasons)
        .bind(factors)
        .bind(days)
        .bind(times)
        .bind(event_kinds)
        .bind(event_pipelines)
        .bind(event_ids)
        .bind(payloads)
        .bind(occurred)
        .bind(recorded)
        .execute(store.db.get_postgres_connection_pool())
        .await
        .map_err(execute_error)?;
    Ok(())
}
