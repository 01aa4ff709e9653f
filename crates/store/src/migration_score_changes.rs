//! The score history keeps changes, not every rescoring: each current score
//! remembers the probability and time of the last history row written for
//! it, so a writer can tell whether a new score moved enough to record.
//! Existing rows start without (NULL), and their next score is recorded.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum CurrentScores {
    Table,
    RecordedPAdvance,
    RecordedAt,
}

pub struct RecordScoreChanges;

impl MigrationName for RecordScoreChanges {
    fn name(&self) -> &str {
        "m0007_record_score_changes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RecordScoreChanges {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(CurrentScores::Table)
                    .add_column(ColumnDef::new(CurrentScores::RecordedPAdvance).double().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CurrentScores::Table)
                    .add_column(ColumnDef::new(CurrentScores::RecordedAt).big_integer().null())
                    .to_owned(),
            )
            .await
    }
}
