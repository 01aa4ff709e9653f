//! Schema migrations, applied at start-up by every binary that opens a store.
//! Timestamps are stored as microseconds since the Unix epoch (BIGINT) so that
//! time arithmetic in SQL is the same on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateCoreTables),
            Box::new(SeedDefaultPipeline),
            Box::new(crate::migration_scoring::CreateScoringTables),
            Box::new(crate::migration_events::CreateEventTables),
            Box::new(crate::migration_visits::AddStageVisits),
            Box::new(crate::migration_outbox::CreateEventOutbox),
            Box::new(crate::migration_score_changes::RecordScoreChanges),
            Box::new(crate::migration_event_round::AddEventRoundFunction),
            Box::new(crate::migration_last_activity::AddLastActivity),
        ]
    }
}

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    Name,
    DisplayName,
    Version,
    CreatedAt,
    UpdatedAt,
    RequestId,
}

#[derive(DeriveIden)]
enum Stages {
    Table,
    Pipeline,
    Key,
    Position,
    DisplayName,
    RotAfterDays,
}

#[derive(DeriveIden)]
enum Opportunities {
    Table,
    Id,
    Pipeline,
    Stage,
    Status,
    Title,
    Account,
    Owner,
    CurrencyCode,
    AmountMinor,
    Source,
    ExternalId,
    Attributes,
    CreatedAt,
    StageEnteredAt,
    ClosedAt,
    LeakReason,
    LastChangeAt,
    PreviousStage,
    Sequence,
    Version,
    UpdatedAt,
    RequestId,
}

#[derive(DeriveIden)]
enum Transitions {
    Table,
    Id,
    OpportunityId,
    Sequence,
    FromStage,
    ToStage,
    FromStatus,
    ToStatus,
    Kind,
    OccurredAt,
    RecordedAt,
    Actor,
    Reason,
    Note,
}

#[derive(DeriveIden)]
enum Activities {
    Table,
    Id,
    OpportunityId,
    Kind,
    OccurredAt,
    RecordedAt,
    Actor,
    Note,
    RequestId,
}

struct CreateCoreTables;

impl MigrationName for CreateCoreTables {
    fn name(&self) -> &str {
        "m0001_create_core_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCoreTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Pipelines::Table)
                    .col(ColumnDef::new(Pipelines::Name).string_len(63).not_null().primary_key())
                    .col(ColumnDef::new(Pipelines::DisplayName).string().not_null())
                    .col(ColumnDef::new(Pipelines::Version).big_integer().not_null())
                    .col(ColumnDef::new(Pipelines::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Pipelines::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Pipelines::RequestId).string().null().unique_key())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Stages::Table)
                    .col(ColumnDef::new(Stages::Pipeline).string_len(63).not_null())
                    .col(ColumnDef::new(Stages::Key).string_len(32).not_null())
                    .col(ColumnDef::new(Stages::Position).integer().not_null())
                    .col(ColumnDef::new(Stages::DisplayName).string().not_null())
                    .col(ColumnDef::new(Stages::RotAfterDays).integer().null())
                    .primary_key(Index::create().col(Stages::Pipeline).col(Stages::Key))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Stages::Table, Stages::Pipeline)
                            .to(Pipelines::Table, Pipelines::Name),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Opportunities::Table)
                    .col(ColumnDef::new(Opportunities::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Opportunities::Pipeline).string_len(63).not_null())
                    .col(ColumnDef::new(Opportunities::Stage).string_len(32).not_null())
                    .col(ColumnDef::new(Opportunities::Status).string_len(8).not_null())
                    .col(ColumnDef::new(Opportunities::Title).string().not_null())
                    .col(ColumnDef::new(Opportunities::Account).string().not_null())
                    .col(ColumnDef::new(Opportunities::Owner).string().not_null())
                    .col(ColumnDef::new(Opportunities::CurrencyCode).string_len(3).null())
                    .col(ColumnDef::new(Opportunities::AmountMinor).big_integer().null())
                    .col(ColumnDef::new(Opportunities::Source).string().not_null())
                    .col(ColumnDef::new(Opportunities::ExternalId).string().null())
                    .col(ColumnDef::new(Opportunities::Attributes).text().not_null())
                    .col(ColumnDef::new(Opportunities::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Opportunities::StageEnteredAt).big_integer().not_null())
                    .col(ColumnDef::new(Opportunities::ClosedAt).big_integer().null())
                    .col(ColumnDef::new(Opportunities::LeakReason).text().null())
                    .col(ColumnDef::new(Opportunities::LastChangeAt).big_integer().not_null())
                    .col(ColumnDef::new(Opportunities::PreviousStage).string_len(32).null())
                    .col(ColumnDef::new(Opportunities::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(Opportunities::Version).big_integer().not_null())
                    .col(ColumnDef::new(Opportunities::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Opportunities::RequestId).string().null().unique_key())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Opportunities::Table, Opportunities::Pipeline)
                            .to(Pipelines::Table, Pipelines::Name),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Transitions::Table)
                    .col(ColumnDef::new(Transitions::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Transitions::OpportunityId).uuid().not_null())
                    .col(ColumnDef::new(Transitions::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(Transitions::FromStage).string_len(32).null())
                    .col(ColumnDef::new(Transitions::ToStage).string_len(32).not_null())
                    .col(ColumnDef::new(Transitions::FromStatus).string_len(8).null())
                    .col(ColumnDef::new(Transitions::ToStatus).string_len(8).not_null())
                    .col(ColumnDef::new(Transitions::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Transitions::OccurredAt).big_integer().not_null())
                    .col(ColumnDef::new(Transitions::RecordedAt).big_integer().not_null())
                    .col(ColumnDef::new(Transitions::Actor).string().not_null())
                    .col(ColumnDef::new(Transitions::Reason).text().not_null())
                    .col(ColumnDef::new(Transitions::Note).text().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Transitions::Table, Transitions::OpportunityId)
                            .to(Opportunities::Table, Opportunities::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Activities::Table)
                    .col(ColumnDef::new(Activities::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Activities::OpportunityId).uuid().not_null())
                    .col(ColumnDef::new(Activities::Kind).string_len(8).not_null())
                    .col(ColumnDef::new(Activities::OccurredAt).big_integer().not_null())
                    .col(ColumnDef::new(Activities::RecordedAt).big_integer().not_null())
                    .col(ColumnDef::new(Activities::Actor).string().not_null())
                    .col(ColumnDef::new(Activities::Note).text().not_null())
                    .col(ColumnDef::new(Activities::RequestId).string().null().unique_key())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Activities::Table, Activities::OpportunityId)
                            .to(Opportunities::Table, Opportunities::Id),
                    )
                    .to_owned(),
            )
            .await?;

        // One index per list filter, and history by opportunity and time.
        let indexes = [
            Index::create()
                .name("ux_opportunities_external_id")
                .table(Opportunities::Table)
                .col(Opportunities::Pipeline)
                .col(Opportunities::ExternalId)
                .unique()
                .to_owned(),
            Index::create()
                .name("ix_opportunities_pipeline_stage_status")
                .table(Opportunities::Table)
                .col(Opportunities::Pipeline)
                .col(Opportunities::Stage)
                .col(Opportunities::Status)
                .col(Opportunities::Id)
                .to_owned(),
            Index::create()
                .name("ix_opportunities_owner_status")
                .table(Opportunities::Table)
                .col(Opportunities::Owner)
                .col(Opportunities::Status)
                .col(Opportunities::Id)
                .to_owned(),
            Index::create()
                .name("ix_opportunities_status")
                .table(Opportunities::Table)
                .col(Opportunities::Status)
                .col(Opportunities::Id)
                .to_owned(),
            Index::create()
                .name("ux_transitions_opportunity_sequence")
                .table(Transitions::Table)
                .col(Transitions::OpportunityId)
                .col(Transitions::Sequence)
                .unique()
                .to_owned(),
            Index::create()
                .name("ix_transitions_occurred_at")
                .table(Transitions::Table)
                .col(Transitions::OccurredAt)
                .to_owned(),
            Index::create()
                .name("ix_activities_opportunity_occurred_at")
                .table(Activities::Table)
                .col(Activities::OpportunityId)
                .col(Activities::OccurredAt)
                .col(Activities::Id)
                .to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }
}

struct SeedDefaultPipeline;

impl MigrationName for SeedDefaultPipeline {
    fn name(&self) -> &str {
        "m0002_seed_default_pipeline"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SeedDefaultPipeline {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let pipeline = funnel_domain::default_pipeline();
        let now = crate::time::to_micros(chrono::Utc::now());
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Pipelines::Table)
                    .columns([
                        Pipelines::Name,
                        Pipelines::DisplayName,
                        Pipelines::Version,
                        Pipelines::CreatedAt,
                        Pipelines::UpdatedAt,
                    ])
                    .values_panic([
                        pipeline.name.as_str().into(),
                        pipeline.display_name.clone().into(),
                        1i64.into(),
                        now.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        let mut insert = Query::insert()
            .into_table(Stages::Table)
            .columns([Stages::Pipeline, Stages::Key, Stages::Position, Stages::DisplayName, Stages::RotAfterDays])
            .to_owned();
        for (position, stage) in pipeline.stages().iter().enumerate() {
            insert.values_panic([
                pipeline.name.as_str().into(),
                stage.key.as_str().into(),
                (position as i32).into(),
                stage.display_name.clone().into(),
                Option::<i32>::None.into(),
            ]);
        }
        manager.exec_stmt(insert).await
    }
}
