//! PostgreSQL's event outbox: writers insert their events here, unnumbered,
//! and the sequencer (`sequencer.rs`) moves them into `events` with their
//! sequence numbers. SQLite keeps numbering in the writer's transaction,
//! so the table exists on PostgreSQL only.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveIden)]
enum PendingEvents {
    Table,
    Id,
    EventType,
    Pipeline,
    OpportunityId,
    Payload,
    OccurredAt,
    RecordedAt,
}

pub struct CreateEventOutbox;

impl MigrationName for CreateEventOutbox {
    fn name(&self) -> &str {
        "m0006_create_event_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .create_table(
                Table::create()
                    .table(PendingEvents::Table)
                    // Only orders one transaction's events among themselves
                    // and a round's batch; the feed's order is the sequence.
                    .col(ColumnDef::new(PendingEvents::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(PendingEvents::EventType).string_len(32).not_null())
                    .col(ColumnDef::new(PendingEvents::Pipeline).string_len(63).not_null())
                    .col(ColumnDef::new(PendingEvents::OpportunityId).uuid().null())
                    .col(ColumnDef::new(PendingEvents::Payload).text().not_null())
                    .col(ColumnDef::new(PendingEvents::OccurredAt).big_integer().not_null())
                    .col(ColumnDef::new(PendingEvents::RecordedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }
}
