//! Each opportunity records the time of its latest activity. Rescoring
//! looks at the activities of the last 30 days and the time of the latest
//! before them; for an opportunity with none in the window that time is on
//! its row, so only opportunities active since then need an index probe
//! into `activities` (issue 7, B6: the probes were a quarter of
//! PostgreSQL's time in a rescoring run). Existing rows are backfilled here.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Opportunities {
    Table,
    LastActivityAt,
}

/// Sets every opportunity's `last_activity_at` from its activities.
const BACKFILL_LAST_ACTIVITY_AT: &str = "UPDATE opportunities SET last_activity_at = (SELECT MAX(a.occurred_at) \
     FROM activities a WHERE a.opportunity_id = opportunities.id)";

pub struct AddLastActivity;

impl MigrationName for AddLastActivity {
    fn name(&self) -> &str {
        "m0009_add_last_activity"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddLastActivity {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Opportunities::Table)
                    .add_column(ColumnDef::new(Opportunities::LastActivityAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager.get_connection().execute_unprepared(BACKFILL_LAST_ACTIVITY_AT).await.map(|_| ())
    }
}
