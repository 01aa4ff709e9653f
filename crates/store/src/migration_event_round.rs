//! The sequencer's round (`sequencer.rs`) as a PL/pgSQL function on
//! PostgreSQL. Sent as SQL text, a round's statements were parsed, analysed
//! and planned again every time; a function keeps its plans for the
//! session, and `SELECT funnel_event_round()` is one prepared statement,
//! its own transaction. The function takes the counter's table lock as the
//! text did, so rounds of processes of either version still run one at a
//! time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Moves every committed pending event into `events`, numbered on from the
/// counter in insertion order, advances the counter, and returns how many
/// it moved (0, writing nothing, when there were none).
const CREATE_ROUND: &str = "CREATE OR REPLACE FUNCTION funnel_event_round() RETURNS bigint LANGUAGE plpgsql AS $round$
DECLARE
  moved_count bigint;
BEGIN
  LOCK TABLE event_counter IN EXCLUSIVE MODE;
  WITH moved AS (
    DELETE FROM pending_events
    RETURNING id, event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at),
  numbered AS (
    SELECT (SELECT value FROM event_counter WHERE id = 1) + row_number() OVER (ORDER BY id) AS sequence, *
    FROM moved),
  inserted AS (
    INSERT INTO events (sequence, event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at)
    SELECT sequence, event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at FROM numbered
    RETURNING 1),
  total AS (SELECT count(*) AS moved FROM inserted)
  UPDATE event_counter SET value = value + total.moved FROM total
  WHERE id = 1 AND total.moved > 0 RETURNING total.moved INTO moved_count;
  RETURN coalesce(moved_count, 0);
END
$round$";

pub struct AddEventRoundFunction;

impl MigrationName for AddEventRoundFunction {
    fn name(&self) -> &str {
        "m0008_add_event_round_function"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddEventRoundFunction {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(CREATE_ROUND).await.map(|_| ())
    }
}
