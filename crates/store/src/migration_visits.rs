//! Stage visits without window functions: each history row records when
//! the row before it happened (`previous_at`), so a row that leaves an open
//! opportunity closes the visit begun by its predecessor, with its duration,
//! and each opportunity records the furthest stage it has reached. The
//! funnel report then aggregates plain columns instead of sorting every
//! history row by opportunity, which is what made it slow at a million
//! opportunities. Existing rows are backfilled here.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::Statement;

#[derive(DeriveIden)]
enum Opportunities {
    Table,
    FurthestStage,
}

#[derive(DeriveIden)]
enum Transitions {
    Table,
    PreviousAt,
}

/// Sets `previous_at` of every row from its predecessor.
const BACKFILL_PREVIOUS_AT: &str = "UPDATE transitions SET previous_at = (SELECT p.occurred_at FROM transitions p \
     WHERE p.opportunity_id = transitions.opportunity_id AND p.sequence = transitions.sequence - 1) \
     WHERE sequence > 1";

/// The furthest current stage each opportunity of a pipeline has been in,
/// by the stages' present order (`$1`: the pipeline). Also run when a
/// pipeline's stages are removed or reordered.
pub(crate) const RECOMPUTE_FURTHEST_STAGE: &str = "UPDATE opportunities SET furthest_stage = (SELECT t.to_stage \
     FROM transitions t JOIN stages st ON st.pipeline = opportunities.pipeline AND st.key = t.to_stage \
     WHERE t.opportunity_id = opportunities.id ORDER BY st.position DESC LIMIT 1) WHERE pipeline = $1";

pub struct AddStageVisits;

impl MigrationName for AddStageVisits {
    fn name(&self) -> &str {
        "m0005_add_stage_visits"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddStageVisits {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Transitions::Table)
                    .add_column(ColumnDef::new(Transitions::PreviousAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Opportunities::Table)
                    .add_column(ColumnDef::new(Opportunities::FurthestStage).string_len(32).null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(BACKFILL_PREVIOUS_AT).await?;
        let backend = manager.get_database_backend();
        let pipelines = db.query_all_raw(Statement::from_string(backend, "SELECT name FROM pipelines")).await?;
        for row in pipelines {
            let name: String = row.try_get("", "name")?;
            db.execute_raw(Statement::from_sql_and_values(backend, RECOMPUTE_FURTHEST_STAGE, [name.into()])).await?;
        }
        Ok(())
    }
}
