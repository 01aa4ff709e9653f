//! The change feed (an `events` table with a gap-free, commit-ordered
//! sequence kept in the one-row `event_counter`) and the indexes the funnel
//! report needs.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Events {
    Table,
    Sequence,
    EventType,
    Pipeline,
    OpportunityId,
    Payload,
    OccurredAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum EventCounter {
    Table,
    Id,
    Value,
}

#[derive(DeriveIden)]
enum Opportunities {
    Table,
    Pipeline,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Transitions {
    Table,
    Kind,
    ToStage,
    OpportunityId,
}

pub struct CreateEventTables;

impl MigrationName for CreateEventTables {
    fn name(&self) -> &str {
        "m0004_create_event_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    // Assigned from `event_counter`, never by the database:
                    // an auto-increment is neither gap-free nor commit-ordered.
                    .col(ColumnDef::new(Events::Sequence).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(Events::EventType).string_len(32).not_null())
                    .col(ColumnDef::new(Events::Pipeline).string_len(63).not_null())
                    .col(ColumnDef::new(Events::OpportunityId).uuid().null())
                    .col(ColumnDef::new(Events::Payload).text().not_null())
                    .col(ColumnDef::new(Events::OccurredAt).big_integer().not_null())
                    .col(ColumnDef::new(Events::RecordedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventCounter::Table)
                    .col(ColumnDef::new(EventCounter::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(EventCounter::Value).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(EventCounter::Table)
                    .columns([EventCounter::Id, EventCounter::Value])
                    .values_panic([1i32.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        let indexes = [
            // WatchEvents filtered by pipeline.
            Index::create()
                .name("ix_events_pipeline_sequence")
                .table(Events::Table)
                .col(Events::Pipeline)
                .col(Events::Sequence)
                .to_owned(),
            // The report's cohort window.
            Index::create()
                .name("ix_opportunities_pipeline_created_at")
                .table(Opportunities::Table)
                .col(Opportunities::Pipeline)
                .col(Opportunities::CreatedAt)
                .to_owned(),
            // Leak reasons per stage.
            Index::create()
                .name("ix_transitions_kind_stage")
                .table(Transitions::Table)
                .col(Transitions::Kind)
                .col(Transitions::ToStage)
                .col(Transitions::OpportunityId)
                .to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }
}
